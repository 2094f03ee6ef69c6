//! BMP as TF reads it (decode_image_op.cc `DecodeBmpV2`): only the header fields TF reads
//! (pixel offset, width, height, bits per pixel), uncompressed 8/24/32-bit rows padded to 4
//! bytes, bottom-up unless the height is negative, BGR(A) swapped to RGB(A). TF's checks and
//! error texts are kept, including that the file size must match exactly.

use super::{Image, Pixels};
use crate::ops::OpError;

fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Decodes to `channels` (0 = the file's; 1 is refused as in TF) channels.
pub(super) fn decode(
    bytes: &[u8],
    channels: usize,
    check: &dyn Fn(usize, usize, usize) -> Result<(), OpError>,
) -> Result<Image, OpError> {
    if channels == 1 {
        return Err(OpError::invalid(format!(
            "`channels` must be 0, 3 or 4 for BMP, but got {channels}"
        )));
    }
    if bytes.len() < 32 {
        return Err(OpError::invalid(format!(
            "Incomplete bmp content, requires at least 32 bytes to find the header size, \
             width, height, and bpp, got {} bytes",
            bytes.len()
        )));
    }
    let header = i32_at(bytes, 10);
    let width = i32_at(bytes, 18);
    let height = i32_at(bytes, 22);
    let bpp = i16::from_le_bytes([bytes[28], bytes[29]]);
    let src_c = (bpp / 8) as i64;
    if !matches!(src_c, 1 | 3 | 4) {
        return Err(OpError::invalid(format!(
            "Number of channels inherent in the image must be 1, 3 or 4, was {src_c}"
        )));
    }
    let want = if channels == 0 {
        src_c as usize
    } else {
        channels
    };
    if width <= 0 {
        return Err(OpError::invalid("Width must be positive"));
    }
    if height == 0 {
        return Err(OpError::invalid("Height must be nonzero"));
    }
    if header < 0 {
        return Err(OpError::invalid("header size must be nonnegative"));
    }
    let (w, abs_h) = (i64::from(width), i64::from(height).abs());
    if w * abs_h >= i64::from(i32::MAX / 8) {
        return Err(OpError::invalid(
            "Total possible pixel bytes must be less than 2^30",
        ));
    }
    let row = (src_c * w + 3) / 4 * 4;
    let diff = bytes.len() as i64 - i64::from(header) - row * abs_h;
    if diff != 0 {
        return Err(OpError::invalid(format!(
            "Input size should match (header_size + row_size * abs_height) but they differ \
             by {diff}"
        )));
    }
    let (w, h, row, src_c, header) = (
        w as usize,
        abs_h as usize,
        row as usize,
        src_c as usize,
        header as usize,
    );
    check(h, w, want)?;
    let top_down = height < 0;
    let pixels = &bytes[header..];
    let mut out = vec![0u8; h * w * want];
    for i in 0..h {
        let src_row = if top_down { i } else { h - 1 - i };
        let src = &pixels[src_row * row..][..w * src_c];
        let dst = &mut out[i * w * want..][..w * want];
        for (s, d) in src.chunks_exact(src_c).zip(dst.chunks_exact_mut(want)) {
            match src_c {
                1 => {
                    d[0] = s[0];
                    if want >= 3 {
                        d[1] = s[0];
                        d[2] = s[0];
                    }
                    if want == 4 {
                        d[3] = u8::MAX;
                    }
                }
                3 => {
                    d[..3].copy_from_slice(&[s[2], s[1], s[0]]);
                    if want == 4 {
                        d[3] = u8::MAX;
                    }
                }
                _ => {
                    d[..3].copy_from_slice(&[s[2], s[1], s[0]]);
                    if want == 4 {
                        d[3] = s[3];
                    }
                }
            }
        }
    }
    Ok(Image {
        frames: 1,
        h,
        w,
        c: want,
        px: Pixels::U8(out),
    })
}

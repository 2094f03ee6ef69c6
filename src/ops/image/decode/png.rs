//! PNG through the `png` crate (palette, tRNS, low bit depths and Adam7 expanded by it),
//! then libpng's channel transforms exactly as TF's `png::CommonInitDecode` asks for them:
//! strip or add alpha (filler `(1 << bit_depth) - 1`, a libpng quirk kept as is),
//! RGB→gray with libpng's fixed-point (0.299, 0.587) coefficients, gray→RGB, 16→8 bits by
//! dropping the low byte, 8→16 by `v * 257`.

use std::io::Cursor;

use super::{Image, Pixels};
use crate::ops::OpError;

/// libpng's `png_set_rgb_to_gray(.., 0.299, 0.587)` coefficients in 1/32768
/// (`29900 * 32768 / 100000` truncated, and the same for green; blue takes the rest).
const RC: u32 = 9797;
const GC: u32 = 19234;
const BC: u32 = 32768 - RC - GC;

fn init_err() -> OpError {
    OpError::invalid("Invalid PNG. Failed to initialize decoder.")
}

/// Decodes `bytes` to `channels` (0 = the file's own) channels of 8 or 16 bits.
/// `check` sees `(height, width, channels)` before any pixel buffer is allocated.
pub(super) fn decode(
    bytes: &[u8],
    channels: usize,
    sixteen: bool,
    check: &dyn Fn(usize, usize, usize) -> Result<(), OpError>,
) -> Result<Image, OpError> {
    let data_err = || OpError::invalid(format!("Invalid PNG data, size {}", bytes.len()));
    let mut dec = png::Decoder::new(Cursor::new(bytes));
    dec.set_transformations(png::Transformations::EXPAND);
    let mut reader = dec.read_info().map_err(|_| init_err())?;
    let (h, w, want, depth) = {
        let info = reader.info();
        // libpng's png_handle_PLTE / png_set_PLTE fail a palette image whose PLTE is empty,
        // not a whole number of entries or over 256 entries (inside png_read_info, so TF
        // reports the init error); other colour types ignore the chunk. The `png` crate
        // takes any length and its palette expansion indexed past the end (libFuzzer: a
        // 53-byte PLTE panicked in png 0.18.1's create_rgba_palette).
        if info.color_type == png::ColorType::Indexed {
            match info.palette.as_deref() {
                Some(p) if !p.is_empty() && p.len() % 3 == 0 && p.len() <= 3 * 256 => {}
                _ => return Err(init_err()),
            }
        }
        let auto = match info.color_type {
            png::ColorType::Indexed => 3 + usize::from(info.trns.is_some()),
            png::ColorType::Grayscale => 1,
            png::ColorType::GrayscaleAlpha => 2,
            png::ColorType::Rgb => 3,
            png::ColorType::Rgba => 4,
        };
        let want = if channels == 0 { auto } else { channels };
        (info.height, info.width, want, info.bit_depth as u32)
    };
    let total = u64::from(w) * u64::from(h);
    if w == 0 || h == 0 || w >= 1 << 27 || h >= 1 << 27 || total >= 1 << 29 {
        return Err(OpError::invalid(format!(
            "PNG size too large for int: {w} by {h}"
        )));
    }
    let (h, w) = (h as usize, w as usize);
    check(h, w, want)?;
    let size = reader.output_buffer_size().ok_or_else(data_err)?;
    let mut raw = vec![0u8; size];
    reader.next_frame(&mut raw).map_err(|_| data_err())?;
    // libpng's png_read_end reads to IEND; a file cut after its image data fails in TF.
    reader.finish().map_err(|_| data_err())?;
    let (out_color, out_depth) = reader.output_color_type();
    let src_c = out_color.samples();
    let src16 = out_depth == png::BitDepth::Sixteen;
    let line = reader.output_line_size(w as u32).ok_or_else(data_err)?;
    // Filler for an added alpha channel, in the source's (expanded) depth.
    let filler: u32 = if src16 {
        0xffff
    } else {
        ((1u32 << depth.min(8)) - 1) & 0xff
    };
    let mut out16 = Vec::new();
    let mut out8 = Vec::new();
    let n = h * w * want;
    if sixteen {
        out16.reserve_exact(n);
    } else {
        out8.reserve_exact(n);
    }
    let mut px = [0u32; 4];
    for row in raw.chunks(line).take(h) {
        for x in 0..w {
            for (k, p) in px.iter_mut().enumerate().take(src_c) {
                *p = if src16 {
                    let i = (x * src_c + k) * 2;
                    u32::from(u16::from_be_bytes([row[i], row[i + 1]]))
                } else {
                    u32::from(row[x * src_c + k])
                };
            }
            let (color, alpha) = match src_c {
                1 => ([px[0]; 3], None),
                2 => ([px[0]; 3], Some(px[1])),
                3 => ([px[0], px[1], px[2]], None),
                _ => ([px[0], px[1], px[2]], Some(px[3])),
            };
            let src_gray = src_c < 3;
            let mut vals = [0u32; 4];
            let mut m = 0;
            if want < 3 {
                let [r, g, b] = color;
                vals[0] = if src_gray {
                    r
                } else if src16 {
                    (RC * r + GC * g + BC * b + 16384) >> 15
                } else if r != g || r != b {
                    (RC * r + GC * g + BC * b) >> 15
                } else {
                    r
                };
                m = 1;
            } else {
                vals[..3].copy_from_slice(&color);
                m += 3;
            }
            if want % 2 == 0 {
                vals[m] = alpha.unwrap_or(filler);
                m += 1;
            }
            for &v in &vals[..m] {
                match (sixteen, src16) {
                    (true, true) => out16.push(v as u16),
                    (true, false) => out16.push((v as u16) * 257),
                    (false, true) => out8.push((v >> 8) as u8),
                    (false, false) => out8.push(v as u8),
                }
            }
        }
    }
    let px = if sixteen {
        Pixels::U16(out16)
    } else {
        Pixels::U8(out8)
    };
    Ok(Image {
        frames: 1,
        h,
        w,
        c: want,
        px,
    })
}

/// `EncodePng`: 8- or 16-bit gray / gray+alpha / RGB / RGBA rows to PNG bytes.
pub(super) fn encode(
    h: usize,
    w: usize,
    c: usize,
    samples: &[u8],
    sixteen: bool,
    compression: i64,
) -> Result<Vec<u8>, OpError> {
    let color = match c {
        1 => png::ColorType::Grayscale,
        2 => png::ColorType::GrayscaleAlpha,
        3 => png::ColorType::Rgb,
        4 => png::ColorType::Rgba,
        _ => return Err(OpError::invalid("image must have 1, 2, 3, or 4 channels")),
    };
    let (w32, h32) = (
        u32::try_from(w).map_err(|_| OpError::invalid("image too wide for PNG"))?,
        u32::try_from(h).map_err(|_| OpError::invalid("image too tall for PNG"))?,
    );
    let mut out = Vec::new();
    let err = |e: png::EncodingError| OpError::invalid(format!("PNG encoding failed: {e}"));
    {
        let mut enc = png::Encoder::new(&mut out, w32, h32);
        enc.set_color(color);
        enc.set_depth(if sixteen {
            png::BitDepth::Sixteen
        } else {
            png::BitDepth::Eight
        });
        enc.set_compression(match compression {
            0..=3 => png::Compression::Fast,
            -1 | 4..=6 => png::Compression::Balanced,
            _ => png::Compression::High,
        });
        let mut wr = enc.write_header().map_err(err)?;
        wr.write_image_data(samples).map_err(err)?;
        wr.finish().map_err(err)?;
    }
    Ok(out)
}

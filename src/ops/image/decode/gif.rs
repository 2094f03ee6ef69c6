//! GIF as TF's gif_io.cc composes it: the canvas is the largest frame's width and height
//! (not the logical screen), each frame starts as a copy of the previous one (disposal
//! methods are ignored), transparent indices keep the previous pixel (black on frame 0),
//! a first frame that does not cover the canvas leaves black around it. Indices past the
//! colour map are an error, as in TF.

use std::io::Cursor;

use super::{Image, Pixels};
use crate::ops::OpError;

struct Frame {
    left: usize,
    top: usize,
    width: usize,
    height: usize,
    transparent: Option<u8>,
    palette: Option<Vec<u8>>,
    indices: Vec<u8>,
}

/// Decodes every frame (only the first when `!all`) to RGB. `check` sees
/// `(frames * height, width, 3)` before the output is allocated.
pub(super) fn decode(
    bytes: &[u8],
    all: bool,
    max_pixels: usize,
    check: &dyn Fn(usize, usize, usize) -> Result<(), OpError>,
) -> Result<Image, OpError> {
    let err =
        |what: String| OpError::invalid(format!("Invalid GIF data (size {}), {what}", bytes.len()));
    let mut opts = gif::DecodeOptions::new();
    opts.set_color_output(gif::ColorOutput::Indexed);
    let mut dec = opts
        .read_info(Cursor::new(bytes))
        .map_err(|e| err(format!("failed to open gif file: {e}")))?;
    let global = dec.global_palette().map(<[u8]>::to_vec);
    let mut frames = Vec::new();
    let mut pixels = 0usize;
    loop {
        match dec.read_next_frame() {
            Ok(Some(f)) => {
                pixels = pixels.saturating_add(usize::from(f.width) * usize::from(f.height));
                if pixels > max_pixels {
                    return Err(OpError::Limit(format!(
                        "GIF frames hold more than {max_pixels} pixels (Limits::max_image_pixels)"
                    )));
                }
                frames.push(Frame {
                    left: f.left.into(),
                    top: f.top.into(),
                    width: f.width.into(),
                    height: f.height.into(),
                    transparent: f.transparent,
                    palette: f.palette.clone(),
                    indices: f.buffer.to_vec(),
                });
            }
            Ok(None) => break,
            Err(e) => {
                // giflib's DGifSlurp keeps the frames read before a late error, but not when
                // the file ends early or nothing was read.
                if frames.is_empty()
                    || matches!(
                        e,
                        gif::DecodingError::Io(_) | gif::DecodingError::UnexpectedEof
                    )
                {
                    return Err(err(format!("failed to slurp gif file: {e}")));
                }
                break;
            }
        }
    }
    if frames.is_empty() {
        return Err(err("gif file does not contain any image".into()));
    }
    let w = frames.iter().map(|f| f.width).max().unwrap_or(0);
    let h = frames.iter().map(|f| f.height).max().unwrap_or(0);
    let n = if all { frames.len() } else { 1 };
    check(n * h, w, 3)?;
    let plane = h * w * 3;
    let mut out = vec![0u8; n * plane];
    for (k, f) in frames.iter().take(n).enumerate() {
        if k > 0 {
            let (prev, cur) = out.split_at_mut(k * plane);
            cur[..plane].copy_from_slice(&prev[(k - 1) * plane..]);
        }
        let dst = &mut out[k * plane..][..plane];
        let (mut x0, mut y0) = (f.left, f.top);
        let (mut x1, mut y1) = (f.left + f.width, f.top + f.height);
        if f.left != 0 || f.top != 0 || f.width != w || f.height != h {
            // (Frame 0's uncovered canvas is already black.)
            x0 = x0.min(w);
            y0 = y0.min(h);
            x1 = x1.min(w);
            y1 = y1.min(h);
        }
        let map = f
            .palette
            .as_deref()
            .or(global.as_deref())
            .ok_or_else(|| err(format!("missing color map for frame {k}")))?;
        let colors = map.len() / 3;
        for i in y0..y1 {
            for j in x0..x1 {
                let idx = f.indices[(i - f.top) * f.width + (j - f.left)];
                let d = &mut dst[(i * w + j) * 3..][..3];
                if Some(idx) == f.transparent {
                    if k == 0 {
                        d.fill(0);
                    }
                    continue;
                }
                if usize::from(idx) >= colors {
                    return Err(err(format!(
                        "found color index {idx} outside of color map range {colors}"
                    )));
                }
                d.copy_from_slice(&map[usize::from(idx) * 3..][..3]);
            }
        }
    }
    Ok(Image {
        frames: n,
        h,
        w,
        c: 3,
        px: Pixels::U8(out),
    })
}

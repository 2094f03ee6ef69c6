//! WebP through the pure-Rust `image-webp` crate, with TF's `DecodeWebP` semantics
//! (decode_image_op.cc `DecodeWebP` + core/lib/webp/webp_io.cc, libwebp underneath):
//!
//! - the file's channel count is 4 when its header announces alpha, else 3; `channels`
//!   must be 0 or that count (no conversion), and only uint8 output exists;
//! - a still image is `[1, h, w, c]` (every op type, since only `DecodeImage` with
//!   `expand_animations=false` asks for `[h, w, c]`); an animation is composited on a
//!   transparent canvas (`WebPAnimDecoder`, which ignores the file's background colour) to
//!   `[frames, h, w, 4]`, or its first frame only without `expand_animations`.
//!
//! Lossless files decode bit-exactly; lossy ones use libwebp's VP8 reconstruction, YUV→RGB
//! constants and "fancy" chroma upsampling (image-webp follows libwebp there; the agreement
//! with TF is measured in tests/image.rs). An animation whose header lacks the alpha flag
//! is refused: TF copies 4-channel frames into a 3-channel output there (an overrun).
//!
//! `image-webp` is tfhub's patched copy (vendor/image-webp/PATCHES.md): 0.2.4 panicked on a
//! corrupt animation libFuzzer found; a panic in it is a bug to fix there, not to catch here.

use std::io::Cursor;

use image_webp::WebPDecoder;

use super::{Image, Pixels};
use crate::ops::OpError;

/// Decodes `bytes`; `channels` is the requested count (0, 3 or 4). `check` sees
/// `(frames * height, width, channels)` before pixels are decoded. Returns the image and
/// whether the output is 4-D.
pub(super) fn decode(
    bytes: &[u8],
    channels: usize,
    expand_animations: bool,
    max_pixels: usize,
    check: &dyn Fn(usize, usize, usize) -> Result<(), OpError>,
) -> Result<(Image, bool), OpError> {
    if !matches!(channels, 0 | 3 | 4) {
        return Err(OpError::invalid("WebP only supports 3 or 4 channels"));
    }
    let header_err = || OpError::invalid("Failed to decode WebP header.");
    let mut d = WebPDecoder::new(Cursor::new(bytes)).map_err(|_| header_err())?;
    let (w, h) = d.dimensions();
    let (w, h) = (w as usize, h as usize);
    let c = if d.has_alpha() { 4 } else { 3 };
    if channels != 0 && channels != c {
        return Err(OpError::invalid(
            "Number of channels requested does not match input",
        ));
    }
    if w.saturating_mul(h) > max_pixels {
        return Err(OpError::Limit(format!(
            "a {h}x{w} WebP exceeds the {max_pixels} pixel cap (Limits::max_image_pixels)"
        )));
    }
    // The decoder's own allocations stay within a few frame buffers.
    d.set_memory_limit(w.saturating_mul(h).saturating_mul(16).max(1 << 20));
    if !d.is_animated() {
        check(h, w, c)?;
        let mut px = vec![0u8; h * w * c];
        d.read_image(&mut px)
            .map_err(|_| OpError::invalid("Failed to decode WebP image."))?;
        let img = Image {
            frames: 1,
            h,
            w,
            c,
            px: Pixels::U8(px),
        };
        return Ok((img, expand_animations));
    }
    if channels != 0 && channels != 4 {
        return Err(OpError::invalid("WebP Animation must be 4 channel RGBA"));
    }
    if c != 4 {
        return Err(OpError::Unimplemented(
            "an animated WebP without the alpha flag (TF's kernel writes 4-channel frames \
             into a 3-channel output)"
                .into(),
        ));
    }
    let n = if expand_animations {
        d.num_frames() as usize
    } else {
        1
    };
    check(n.saturating_mul(h), w, 4)?;
    // libwebp's WebPAnimDecoder starts from, and disposes to, transparent black.
    d.set_background_color([0, 0, 0, 0])
        .map_err(|e| OpError::invalid(format!("Failed to decode WebP Animation: {e}")))?;
    let frame = h * w * 4;
    let mut px = vec![0u8; n * frame];
    for (k, out) in px.chunks_exact_mut(frame).enumerate() {
        d.read_frame(out).map_err(|_| {
            OpError::invalid(format!(
                "Failed to decode WebP Animation: failed to decode frame: {k}"
            ))
        })?;
    }
    let img = Image {
        frames: n,
        h,
        w,
        c: 4,
        px: Pixels::U8(px),
    };
    Ok((img, expand_animations))
}

//! `cargo +nightly fuzz run webp_decode`: the patched `image-webp` copy (vendor/image-webp)
//! alone, driven as `src/ops/image/decode/webp.rs` drives it (pixel cap, memory limit,
//! `read_image`, or every animation frame on a transparent background), so the mutator
//! spends all its time inside the WebP decoder; `image_decode` covers the op around it.
#![no_main]

use std::io::Cursor;

use image_webp::WebPDecoder;
use libfuzzer_sys::fuzz_target;

/// `tfhub::fuzzing::limits().max_image_pixels`.
const MAX_PIXELS: usize = 1 << 22;

fn decode(data: &[u8]) -> Result<(), image_webp::DecodingError> {
    let mut d = WebPDecoder::new(Cursor::new(data))?;
    let (w, h) = d.dimensions();
    let (w, h) = (w as usize, h as usize);
    if w.saturating_mul(h) > MAX_PIXELS {
        return Ok(());
    }
    d.set_memory_limit(w.saturating_mul(h).saturating_mul(16).max(1 << 20));
    let c = if d.has_alpha() { 4 } else { 3 };
    if !d.is_animated() {
        let mut px = vec![0u8; h * w * c];
        return d.read_image(&mut px);
    }
    if c != 4 {
        return Ok(());
    }
    d.set_background_color([0, 0, 0, 0])?;
    let mut px = vec![0u8; h * w * 4];
    for _ in 0..d.num_frames().min(64) {
        d.read_frame(&mut px)?;
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    // Errors are fine; a panic, abort, timeout or OOM is the bug.
    let _ = decode(data);
});

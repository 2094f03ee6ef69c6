//! JPEG through `zune-jpeg` (pure Rust). TF uses libjpeg-turbo with its `IFAST` IDCT by
//! default; zune's IDCT and chroma upsampling are its own, so pixels may differ from TF's by
//! a few levels (the agreement is measured in tests/image.rs and stated in the README).
//! `dct_method` and `fancy_upscaling` are accepted and do not change the decoder;
//! `try_recover_truncated` turns off zune's strict mode so a cut file still decodes.

use super::{Image, Pixels};
use crate::ops::OpError;
use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::{DecoderOptions, JpegScale};
use zune_jpeg::JpegDecoder;

/// `DecodeJpeg` attributes that change what is decoded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JpegFlags {
    /// Downscale factor: 1, 2, 4 or 8.
    pub ratio: u8,
    /// Decode as much as possible of a truncated file.
    pub try_recover_truncated: bool,
}

impl Default for JpegFlags {
    fn default() -> Self {
        JpegFlags {
            ratio: 1,
            try_recover_truncated: false,
        }
    }
}

fn fail() -> OpError {
    OpError::invalid("jpeg::Uncompress failed. Invalid JPEG data or crop window.")
}

/// True if an end-of-image marker follows the first start-of-scan (entropy-coded data
/// cannot contain `FF D9`, so a file cut short has none there; an EXIF thumbnail's EOI
/// comes before the first scan and does not count).
fn has_eoi(bytes: &[u8]) -> bool {
    memchr::memmem::find(bytes, b"\xff\xda")
        .is_some_and(|sos| memchr::memmem::find(&bytes[sos..], b"\xff\xd9").is_some())
}

/// `(height, width, components)` from the frame header.
pub(super) fn shape(bytes: &[u8]) -> Result<(usize, usize, usize), OpError> {
    // JPEG's own limit (65535) rather than zune's default 16384, so that a huge header
    // reaches the pixel cap with its true size.
    let opts = DecoderOptions::default()
        .set_max_width(usize::from(u16::MAX))
        .set_max_height(usize::from(u16::MAX));
    let mut d = JpegDecoder::new_with_options(ZCursor::new(bytes), opts);
    d.decode_headers()
        .map_err(|e| OpError::invalid(format!("Invalid JPEG data or crop window: {e:?}")))?;
    let info = d.info().ok_or_else(fail)?;
    Ok((
        usize::from(info.height),
        usize::from(info.width),
        usize::from(info.components),
    ))
}

/// Decodes to `channels` (0 = 1 for grayscale files, else 3) channels; `crop` is
/// `[y, x, height, width]` (DecodeAndCropJpeg). `check` sees the output's
/// `(height, width, channels)` before pixels are decoded.
pub(super) fn decode(
    bytes: &[u8],
    channels: usize,
    flags: JpegFlags,
    crop: Option<[i32; 4]>,
    check: &dyn Fn(usize, usize, usize) -> Result<(), OpError>,
) -> Result<Image, OpError> {
    let (h, w, comps) = shape(bytes)?;
    if !flags.try_recover_truncated && !has_eoi(bytes) {
        // libjpeg-turbo under TF's memory source stops at a premature end and TF fails;
        // zune would pad the missing scans instead.
        return Err(fail());
    }
    let c = match channels {
        0 if comps == 1 => 1,
        0 => 3,
        c => c,
    };
    let ratio = usize::from(flags.ratio);
    let (oh, ow) = (h.div_ceil(ratio), w.div_ceil(ratio));
    check(oh, ow, c)?;
    let mut opts = DecoderOptions::default()
        .set_strict_mode(!flags.try_recover_truncated)
        .set_max_width(usize::from(u16::MAX))
        .set_max_height(usize::from(u16::MAX))
        .jpeg_set_out_colorspace(if c == 1 {
            ColorSpace::Luma
        } else {
            ColorSpace::RGB
        });
    opts = match flags.ratio {
        2 => opts.jpeg_set_scale(JpegScale::Half),
        4 => opts.jpeg_set_scale(JpegScale::Quarter),
        8 => opts.jpeg_set_scale(JpegScale::Eighth),
        _ => opts,
    };
    let mut d = JpegDecoder::new_with_options(ZCursor::new(bytes), opts);
    let px = d.decode().map_err(|_| fail())?;
    if px.len() != oh * ow * c {
        return Err(OpError::Unimplemented(format!(
            "JPEG decode at ratio {ratio} gave {} samples for {oh}x{ow}x{c}",
            px.len()
        )));
    }
    let Some([y, x, ch, cw]) = crop else {
        return Ok(Image {
            frames: 1,
            h: oh,
            w: ow,
            c,
            px: Pixels::U8(px),
        });
    };
    // TF's crop checks (jpeg_mem.cc): inside the image, non-empty.
    if y < 0 || x < 0 || ch <= 0 || cw <= 0 {
        return Err(fail());
    }
    let (y, x, ch, cw) = (y as usize, x as usize, ch as usize, cw as usize);
    if y + ch > oh || x + cw > ow {
        return Err(fail());
    }
    let mut out = Vec::with_capacity(ch * cw * c);
    for r in y..y + ch {
        out.extend_from_slice(&px[(r * ow + x) * c..][..cw * c]);
    }
    Ok(Image {
        frames: 1,
        h: ch,
        w: cw,
        c,
        px: Pixels::U8(out),
    })
}

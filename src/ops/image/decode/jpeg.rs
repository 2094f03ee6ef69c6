//! JPEG through tfhub's own decoder (`tfhub_kernels::image::jpeg`), which follows
//! libjpeg-turbo's decompression path with the settings TF's `jpeg_mem.cc` uses:
//! `dct_method` picks the fast (default) or accurate IDCT, `fancy_upscaling` the triangle or
//! box chroma upsampling, `ratio` the scaled IDCTs, and DecodeAndCropJpeg crops the way
//! `jpeg_crop_scanline` does. A truncated file fails unless `try_recover_truncated`, or
//! unless enough rows were decoded for `acceptable_fraction` (the rest are black), as TF.
//! CMYK/YCCK files asked for colour are converted by TF's formula (inverted when an Adobe
//! marker was seen).

use super::{Image, Pixels};
use crate::ops::OpError;
use tfhub_kernels::image::jpeg::{self as kj, Crop, JpegError, Options};

/// `DecodeJpeg` attributes that change what is decoded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JpegFlags {
    /// Downscale factor: 1, 2, 4 or 8.
    pub ratio: u8,
    /// Decode as much as possible of a truncated file.
    pub try_recover_truncated: bool,
    /// `fancy_upscaling`.
    pub fancy_upscaling: bool,
    /// `dct_method == "INTEGER_ACCURATE"`.
    pub accurate_dct: bool,
    /// `acceptable_fraction`: the share of rows a truncated file must yield.
    pub acceptable_fraction: f32,
}

impl Default for JpegFlags {
    fn default() -> Self {
        JpegFlags {
            ratio: 1,
            try_recover_truncated: false,
            fancy_upscaling: true,
            accurate_dct: false,
            acceptable_fraction: 1.0,
        }
    }
}

fn fail() -> OpError {
    OpError::invalid("jpeg::Uncompress failed. Invalid JPEG data or crop window.")
}

fn err(e: JpegError) -> OpError {
    match e {
        JpegError::TooLarge { height, width, cap } => OpError::Limit(format!(
            "a {height}x{width} JPEG exceeds the {cap} pixel cap (Limits::max_image_pixels)"
        )),
        JpegError::Unsupported(what) => OpError::Unimplemented(format!("JPEG: {what}")),
        _ => fail(),
    }
}

/// `(height, width, components)` from the frame header.
pub(super) fn shape(bytes: &[u8]) -> Result<(usize, usize, usize), OpError> {
    let h = kj::header(bytes)
        .map_err(|e| OpError::invalid(format!("Invalid JPEG data or crop window: {e}")))?;
    Ok((h.height, h.width, h.components))
}

/// Decodes to `channels` (0 = 1 for grayscale files, else 3) channels; `crop` is
/// `[y, x, height, width]` (DecodeAndCropJpeg). `check` sees the output's
/// `(height, width, channels)` before pixels are decoded.
pub(super) fn decode(
    bytes: &[u8],
    channels: usize,
    flags: JpegFlags,
    crop: Option<[i32; 4]>,
    max_pixels: usize,
    check: &dyn Fn(usize, usize, usize) -> Result<(), OpError>,
) -> Result<Image, OpError> {
    let header = kj::header(bytes).map_err(err)?;
    // TF: components 0 means min(file's, 3); 2-component files cannot become gray or RGB.
    let c = match channels {
        0 => header.components.min(3),
        c => c,
    };
    if !matches!(c, 1 | 3) {
        return Err(fail());
    }
    let mut opts = Options {
        channels: c,
        ratio: usize::from(flags.ratio),
        fancy_upsampling: flags.fancy_upscaling,
        accurate_dct: flags.accurate_dct,
        try_recover_truncated: flags.try_recover_truncated,
        crop: None,
        max_pixels,
    };
    let (oh, ow, _) = kj::output_size(&header, &opts);
    let (h, w) = match crop {
        None => (oh, ow),
        Some([y, x, ch, cw]) => {
            // TF's IsCropWindowValid: non-empty and inside the (scaled) image.
            if y < 0 || x < 0 || ch <= 0 || cw <= 0 {
                return Err(fail());
            }
            let (y, x, ch, cw) = (y as usize, x as usize, ch as usize, cw as usize);
            if y + ch > oh || x + cw > ow {
                return Err(fail());
            }
            opts.crop = Some(Crop {
                y,
                x,
                height: ch,
                width: cw,
            });
            (ch, cw)
        }
    };
    check(h, w, c)?;
    // jpeg_mem.cc refuses outputs of 2^29 samples or more before decoding.
    if (oh as u64) * (ow as u64) * (header.components as u64) >= 1 << 29 {
        return Err(fail());
    }
    let d = kj::decode(bytes, &opts).map_err(err)?;
    // TF: fail if fewer than acceptable_fraction of the rows were read; black the rest.
    if d.rows_valid < d.height {
        let read = d.rows_valid as f32 / d.height as f32;
        if read < flags.acceptable_fraction.min(1.0) {
            return Err(fail());
        }
    }
    let px = if d.channels == 4 {
        // jpeg_mem.cc's CMYK -> RGB (integer division).
        let mut out = Vec::with_capacity(d.height * d.width * 3);
        for p in d.pixels.chunks_exact(4) {
            let [cy, m, ye, k] = [p[0], p[1], p[2], p[3]].map(u32::from);
            let rgb = if d.adobe {
                [k * cy / 255, k * m / 255, k * ye / 255]
            } else {
                [
                    (255 - k) * (255 - cy) / 255,
                    (255 - k) * (255 - m) / 255,
                    (255 - k) * (255 - ye) / 255,
                ]
            };
            out.extend(rgb.map(|v| v as u8));
        }
        out
    } else {
        d.pixels
    };
    let mut px = px;
    // Rows past a truncation are black in TF (after the CMYK conversion).
    let row = d.width * c;
    px[(d.rows_valid * row).min(d.height * row)..].fill(0);
    Ok(Image {
        frames: 1,
        h: d.height,
        w: d.width,
        c,
        px: Pixels::U8(px),
    })
}

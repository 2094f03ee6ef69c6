//! `EncodeJpeg` and `EncodeJpegVariableQuality` through tfhub's encoder
//! (`tfhub_kernels::image::jpeg::encode`), which follows libjpeg-turbo 2.1.4 with the settings
//! TF's `jpeg::Compress` (core/lib/jpeg/jpeg_mem.cc) uses, so the bytes equal TF's for
//! baseline output, with or without `optimize_size`, and for `progressive=true` (SOF2 with
//! `jpeg_simple_progression`'s scans). TF reference: core/kernels/image/encode_jpeg_op.cc.

use crate::ops::{BuildCtx, EvalCtx, Op, OpError, Tensors};
use crate::tensor::{DType, Tensor};
use tfhub_kernels::image::jpeg::{self as kj, EncodeOptions, JpegError};

/// `format`: '' (from the channel count), 'grayscale' or 'rgb'.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Format {
    Auto,
    Gray,
    Rgb,
}

#[derive(Debug)]
pub(super) struct EncodeJpeg {
    format: Format,
    /// The `format` attribute as given (for TF's error text).
    format_name: String,
    /// `None` for `EncodeJpegVariableQuality` (quality is input 1).
    quality: Option<u8>,
    opts: EncodeOptions,
}

impl EncodeJpeg {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        // TF's CompressFlags defaults; EncodeJpegVariableQuality uses them as they are.
        let mut opts = EncodeOptions {
            quality: 95,
            chroma_downsampling: true,
            optimize_coding: false,
            progressive: false,
            density_unit: 1,
            x_density: 300,
            y_density: 300,
            xmp: Vec::new(),
        };
        if cx.op == "EncodeJpegVariableQuality" {
            cx.expect_inputs(2)?;
            return Ok(Box::new(EncodeJpeg {
                format: Format::Auto,
                format_name: String::new(),
                quality: None,
                opts,
            }));
        }
        cx.expect_inputs(1)?;
        let format_name = cx.attr_opt_str("format").unwrap_or_default();
        let format = match format_name.as_str() {
            "" => Format::Auto,
            "grayscale" => Format::Gray,
            "rgb" => Format::Rgb,
            f => {
                return Err(OpError::invalid(format!(
                    "format must be '', grayscale or rgb, got {f}"
                )))
            }
        };
        let quality = cx.attr_opt_i64("quality").unwrap_or(95);
        if !(0..=100).contains(&quality) {
            return Err(OpError::invalid(format!(
                "quality must be in [0,100], got {quality}"
            )));
        }
        opts.progressive = cx.attr_opt_bool("progressive").unwrap_or(false);
        opts.optimize_coding = cx.attr_opt_bool("optimize_size").unwrap_or(false);
        opts.chroma_downsampling = cx.attr_opt_bool("chroma_downsampling").unwrap_or(true);
        let unit = cx
            .attr_opt_str("density_unit")
            .unwrap_or_else(|| "in".into());
        opts.density_unit = match unit.as_str() {
            "in" => 1,
            "cm" => 2,
            // TF's text, missing space included.
            u => {
                return Err(OpError::invalid(format!(
                    "density_unit must be 'in' or 'cm'{u}"
                )))
            }
        };
        // TF stores the int attributes in libjpeg's UINT16 fields: they wrap modulo 2^16.
        opts.x_density = cx.attr_opt_i64("x_density").unwrap_or(300) as u16;
        opts.y_density = cx.attr_opt_i64("y_density").unwrap_or(300) as u16;
        opts.xmp = cx
            .attr_opt_bytes("xmp_metadata")
            .unwrap_or_default()
            .to_vec();
        Ok(Box::new(EncodeJpeg {
            format,
            format_name,
            quality: Some(quality as u8),
            opts,
        }))
    }
}

impl Op for EncodeJpeg {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let image = &inputs[0];
        let [h, w, c] = *image.shape() else {
            return Err(OpError::invalid(format!(
                "image must be 3-dimensional{:?}",
                image.shape()
            )));
        };
        if image.dtype() != DType::U8 {
            return Err(OpError::dtype(0, "uint8", image.dtype()));
        }
        if image.len() >= i32::MAX as usize {
            return Err(OpError::invalid(
                "Cannot encode images with >= max int32 elements",
            ));
        }
        let mut opts = self.opts.clone();
        opts.quality = match self.quality {
            Some(q) => q,
            None => {
                let q = &inputs[1];
                if q.rank() != 0 {
                    return Err(OpError::invalid(format!(
                        "quality must be scalar: {:?}",
                        q.shape()
                    )));
                }
                let q = q.as_slice::<i32>()?[0];
                if !(0..=100).contains(&q) {
                    return Err(OpError::invalid(format!(
                        "quality must be in [0,100], got {q}"
                    )));
                }
                q as u8
            }
        };
        let want = match self.format {
            Format::Auto => {
                if !matches!(c, 1 | 3) {
                    return Err(OpError::invalid(format!(
                        "image must have 1 or 3 channels, got {:?}",
                        image.shape()
                    )));
                }
                c
            }
            Format::Gray => 1,
            Format::Rgb => 3,
        };
        if want != c {
            return Err(OpError::invalid(format!(
                "format {} expects {want} channels, got {:?}",
                self.format_name,
                image.shape()
            )));
        }
        // jpeg::Compress refuses empty images and 2^29 pixels or more ("JPEG encoding
        // failed", an Internal error in TF).
        if h == 0 || w == 0 || h.saturating_mul(w) >= 1 << 29 {
            return Err(OpError::invalid(format!(
                "JPEG encoding failed: a {h}x{w} image cannot be encoded"
            )));
        }
        // Working set: the colour planes and the quantized blocks (2 bytes per sample),
        // padded to whole MCUs.
        let padded = (h.div_ceil(16) * 16) as u128 * (w.div_ceil(16) * 16) as u128 * c as u128;
        cx.limits().check_bytes(padded * 4)?;
        let bytes = kj::encode(image.as_slice::<u8>()?, w, h, c, &opts).map_err(|e| match e {
            JpegError::Unsupported(what) => {
                OpError::invalid(format!("JPEG encoding failed: {what}"))
            }
            e => OpError::invalid(format!("JPEG encoding failed: {e}")),
        })?;
        Ok(tensors![Tensor::from_strings(&[], vec![bytes])?])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{Limits, Session};

    fn op(format: Format, quality: Option<u8>) -> EncodeJpeg {
        EncodeJpeg {
            format,
            format_name: String::new(),
            quality,
            opts: EncodeOptions {
                quality: 95,
                chroma_downsampling: true,
                density_unit: 1,
                x_density: 300,
                y_density: 300,
                ..Default::default()
            },
        }
    }

    fn eval(op: &EncodeJpeg, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, OpError> {
        let session = Session::new(".".into(), None, Limits::default());
        op.eval(&mut EvalCtx::new(&session), inputs.into())
            .map(Tensors::into_vec)
    }

    fn img(h: usize, w: usize, c: usize) -> Tensor {
        let v: Vec<u8> = (0..h * w * c).map(|i| (i * 37 % 251) as u8).collect();
        Tensor::from_vec(&[h, w, c], v).unwrap()
    }

    #[test]
    fn bad_images_are_typed_errors() {
        let auto = op(Format::Auto, Some(90));
        for (t, want) in [
            (img(4, 4, 4), "1 or 3 channels"),
            (img(4, 4, 2), "1 or 3 channels"),
            (img(0, 4, 3), "JPEG encoding failed"),
            (img(4, 0, 1), "JPEG encoding failed"),
            (
                Tensor::from_vec(&[4, 12], vec![0u8; 48]).unwrap(),
                "3-dimensional",
            ),
            (
                Tensor::from_vec(&[2, 2, 3], vec![0f32; 12]).unwrap(),
                "uint8",
            ),
        ] {
            let e = eval(&auto, vec![t]).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
        let e = eval(&op(Format::Gray, Some(90)), vec![img(3, 3, 3)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("expects 1 channels"), "{e}");
        let var = op(Format::Auto, None);
        for q in [-1, 101] {
            let e = eval(&var, vec![img(3, 3, 3), Tensor::scalar(q)])
                .unwrap_err()
                .to_string();
            assert!(e.contains("quality must be in [0,100]"), "{e}");
        }
        let e = eval(&var, vec![img(3, 3, 3), Tensor::vector(vec![5i32])])
            .unwrap_err()
            .to_string();
        assert!(e.contains("quality must be scalar"), "{e}");
        // An XMP packet longer than a marker can hold fails as libjpeg's JERR_BAD_LENGTH.
        let mut big = op(Format::Auto, Some(90));
        big.opts.xmp = vec![b'x'; 70000];
        let e = eval(&big, vec![img(3, 3, 3)]).unwrap_err().to_string();
        assert!(e.contains("JPEG encoding failed"), "{e}");
    }

    #[test]
    fn encodes_decode_back() {
        for (c, sub) in [(1, true), (3, true), (3, false)] {
            let mut o = op(Format::Auto, Some(100));
            o.opts.chroma_downsampling = sub;
            let t = img(13, 21, c);
            let out = eval(&o, vec![t.clone()]).unwrap();
            let bytes = &out[0].as_slice::<bytes::Bytes>().unwrap()[0];
            let d = kj::decode(
                bytes,
                &kj::Options {
                    channels: c,
                    ratio: 1,
                    fancy_upsampling: true,
                    accurate_dct: true,
                    try_recover_truncated: false,
                    crop: None,
                    max_pixels: 1 << 20,
                },
            )
            .unwrap();
            assert_eq!((d.height, d.width, d.channels), (13, 21, c));
            if sub && c == 3 {
                continue; // 4:2:0 averages chroma away; TF's goldens cover it exactly.
            }
            // Quality 100 without subsampling: DCT and colour rounding only.
            let worst = d
                .pixels
                .iter()
                .zip(t.as_slice::<u8>().unwrap())
                .map(|(&a, &b)| (i32::from(a) - i32::from(b)).abs())
                .max()
                .unwrap();
            assert!(worst <= 4, "{c} {sub}: {worst}");
        }
    }
}

//! `DecodeJpeg`, `DecodeAndCropJpeg`, `DecodePng`, `DecodeGif`, `DecodeBmp`, `DecodeImage`,
//! `ExtractJpegShape`, `EncodePng`, `EncodeJpeg` / `EncodeJpegVariableQuality` (in
//! `jpeg_encode`). TF reference: core/kernels/image/decode_image_op.cc (one kernel for every decode op: any op decodes JPEG, PNG and GIF, the op type only
//! fixes attributes, output rank and a few refusals), core/lib/{png/png_io,gif/gif_io,
//! jpeg/jpeg_mem}.cc, core/kernels/image/{encode_png_op,extract_jpeg_shape_op}.cc.
//!
//! Image bytes are untrusted: every decoder reports the image's size from its header
//! first, and the size is checked against `Limits::max_image_pixels` and the tensor caps
//! before any pixel buffer exists. Corrupt and truncated files are `OpError::Invalid` with
//! TF's messages. WebP (`webp`) goes through the pure-Rust `image-webp` crate.

mod bmp;
mod gif;
mod jpeg;
mod jpeg_encode;
mod png;
mod webp;

use jpeg::JpegFlags;

use crate::ops::{take_inputs, BuildCtx, EvalCtx, Op, OpError, Registry, Tensors};
use crate::tensor::{DType, Tensor};

pub(crate) fn register(r: &mut Registry) {
    r.add("DecodeAndCropJpeg", |cx| {
        Decode::build(cx, Kind::AndCropJpeg)
    });
    r.add("DecodeBmp", |cx| Decode::build(cx, Kind::Bmp));
    r.add("DecodeGif", |cx| Decode::build(cx, Kind::Gif));
    r.add("DecodeImage", |cx| Decode::build(cx, Kind::Image));
    r.add("DecodeJpeg", |cx| Decode::build(cx, Kind::Jpeg));
    r.add("DecodePng", |cx| Decode::build(cx, Kind::Png));
    r.add("DecodeWebP", |cx| Decode::build(cx, Kind::Webp));
    r.add("EncodeJpeg", jpeg_encode::EncodeJpeg::build);
    r.add("EncodeJpegVariableQuality", jpeg_encode::EncodeJpeg::build);
    r.add("EncodePng", EncodePng::build);
    r.add("ExtractJpegShape", ExtractJpegShape::build);
}

/// Decoded samples.
pub(crate) enum Pixels {
    U8(Vec<u8>),
    U16(Vec<u16>),
}

/// A decoded image: `frames × h × w × c` samples, row-major.
pub(crate) struct Image {
    pub frames: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub px: Pixels,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    AndCropJpeg,
    Bmp,
    Gif,
    Image,
    Jpeg,
    Png,
    Webp,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Format {
    Bmp,
    Gif,
    Jpeg,
    Png,
    Webp,
    Jxl,
    Unknown,
}

/// TF's `ClassifyFileFormat` (magic bytes).
fn classify(b: &[u8]) -> Format {
    if b.starts_with(b"\xff\xd8\xff") {
        Format::Jpeg
    } else if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        Format::Png
    } else if b.starts_with(b"GIF8") {
        Format::Gif
    } else if b.starts_with(b"BM") {
        Format::Bmp
    } else if b.starts_with(b"RIFF") && b.len() > 12 && &b[8..12] == b"WEBP" {
        Format::Webp
    } else if b.starts_with(b"\xff\x0a") || b.starts_with(b"\0\0\0\x0cJXL \r\n\x87\n") {
        // jxl::HasJxlHeader: a bare codestream or the ISOBMFF container signature.
        Format::Jxl
    } else {
        Format::Unknown
    }
}

/// Every decode op (one kernel in TF too).
#[derive(Debug)]
struct Decode {
    kind: Kind,
    channels: usize,
    dtype: DType,
    expand_animations: bool,
    jpeg: JpegFlags,
}

impl Decode {
    fn build(cx: &mut BuildCtx<'_>, kind: Kind) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(if kind == Kind::AndCropJpeg { 2 } else { 1 })?;
        let mut jpeg = JpegFlags::default();
        if matches!(kind, Kind::Jpeg | Kind::AndCropJpeg) {
            let ratio = cx.attr_opt_i64("ratio").unwrap_or(1);
            if !matches!(ratio, 1 | 2 | 4 | 8) {
                return Err(OpError::invalid(format!(
                    "ratio must be 1, 2, 4, or 8, got {ratio}"
                )));
            }
            jpeg.ratio = ratio as u8;
            jpeg.try_recover_truncated = cx.attr_opt_bool("try_recover_truncated").unwrap_or(false);
            let dct = cx.attr_opt_str("dct_method").unwrap_or_default();
            if !matches!(dct.as_str(), "" | "INTEGER_FAST" | "INTEGER_ACCURATE") {
                return Err(OpError::invalid(
                    "dct_method must be one of {'', 'INTEGER_FAST', 'INTEGER_ACCURATE'}",
                ));
            }
            jpeg.accurate_dct = dct == "INTEGER_ACCURATE";
            jpeg.fancy_upscaling = cx.attr_opt_bool("fancy_upscaling").unwrap_or(true);
            jpeg.acceptable_fraction = cx.attr_opt_f32("acceptable_fraction").unwrap_or(1.0);
        }
        let dtype = match kind {
            Kind::Png | Kind::Image => cx.attr_opt_type("dtype")?.unwrap_or(DType::U8),
            _ => DType::U8,
        };
        let ok = match kind {
            Kind::Png => matches!(dtype, DType::U8 | DType::U16),
            Kind::Image => matches!(dtype, DType::U8 | DType::U16 | DType::F32),
            _ => true,
        };
        if !ok {
            return Err(OpError::invalid(format!(
                "`dtype` for `{}` must be uint8, uint16{} but got: {dtype}",
                cx.op,
                if kind == Kind::Image { ", float" } else { "" }
            )));
        }
        let channels = if kind == Kind::Gif {
            3
        } else {
            cx.attr_opt_i64("channels").unwrap_or(0)
        };
        if !matches!(channels, 0 | 1 | 3 | 4) {
            return Err(OpError::invalid(format!(
                "`channels` must be 0, 1, 3 or 4 but got {channels}"
            )));
        }
        Ok(Box::new(Decode {
            kind,
            channels: channels as usize,
            dtype,
            expand_animations: cx.attr_opt_bool("expand_animations").unwrap_or(true),
            jpeg,
        }))
    }

    fn wrong_op(&self, format: &str) -> OpError {
        match self.kind {
            Kind::AndCropJpeg => OpError::invalid(format!(
                "DecodeAndCropJpeg operation can run on JPEG only, but detected {format}."
            )),
            _ => OpError::invalid(format!(
                "Trying to decode {format} format using DecodeBmp op. Use `decode_{}` or \
                 `decode_image` instead.",
                format.to_ascii_lowercase()
            )),
        }
    }

    fn decode(
        &self,
        cx: &EvalCtx<'_>,
        bytes: &[u8],
        crop: Option<[i32; 4]>,
    ) -> Result<(Image, bool), OpError> {
        let limits = cx.limits();
        let out_dtype = self.dtype;
        let check = |h: usize, w: usize, c: usize| -> Result<(), OpError> {
            let pixels = h.saturating_mul(w);
            if pixels > limits.max_image_pixels {
                return Err(OpError::Limit(format!(
                    "a {h}x{w} image exceeds the {} pixel cap (Limits::max_image_pixels)",
                    limits.max_image_pixels
                )));
            }
            limits.check_alloc(pixels.saturating_mul(c), out_dtype)
        };
        let fmt = classify(bytes);
        // (image, output is 4-D)
        Ok(match fmt {
            Format::Jpeg => {
                if self.channels == 4 {
                    return Err(OpError::invalid("JPEG does not support 4 channels"));
                }
                if self.kind == Kind::Bmp {
                    return Err(self.wrong_op("JPEG"));
                }
                let img = jpeg::decode(
                    bytes,
                    self.channels,
                    self.jpeg,
                    crop,
                    limits.max_image_pixels,
                    &check,
                )?;
                (img, self.kind == Kind::Gif)
            }
            Format::Png => {
                if matches!(self.kind, Kind::Bmp | Kind::AndCropJpeg) {
                    return Err(self.wrong_op("PNG"));
                }
                let sixteen = self.dtype != DType::U8;
                (
                    png::decode(bytes, self.channels, sixteen, &check)?,
                    self.kind == Kind::Gif,
                )
            }
            Format::Gif => {
                if !matches!(self.channels, 0 | 3) {
                    return Err(OpError::invalid(format!(
                        "channels must be 0 or 3 for GIF, got {}",
                        self.channels
                    )));
                }
                if matches!(self.kind, Kind::Bmp | Kind::AndCropJpeg) {
                    return Err(self.wrong_op("GIF"));
                }
                // gif::Decode's allocator knows no DecodeWebP (TF fails after decoding).
                if self.kind == Kind::Webp {
                    return Err(OpError::invalid("Bad op type DecodeWebP"));
                }
                let all = self.kind != Kind::Image || self.expand_animations;
                let img = gif::decode(bytes, all, limits.max_image_pixels, &check)?;
                let four = match self.kind {
                    Kind::Png | Kind::Jpeg => {
                        if img.frames != 1 {
                            return Err(OpError::invalid(format!(
                                "Got {} frames, but animated gifs can only be decoded by \
                                 tf.io.decode_gif or tf.io.decode_image",
                                img.frames
                            )));
                        }
                        false
                    }
                    Kind::Gif => true,
                    _ => self.expand_animations,
                };
                (img, four)
            }
            Format::Bmp => {
                if !matches!(self.kind, Kind::Bmp | Kind::Image) {
                    return Err(if self.kind == Kind::AndCropJpeg {
                        self.wrong_op("BMP")
                    } else {
                        OpError::invalid(format!(
                            "Trying to decode BMP format using a wrong op. Use `decode_bmp` \
                             or `decode_image` instead. Op used: {}",
                            match self.kind {
                                Kind::Webp => "DecodeWebP".to_string(),
                                k => format!("Decode{k:?}"),
                            }
                        ))
                    });
                }
                (bmp::decode(bytes, self.channels, &check)?, false)
            }
            Format::Webp => {
                // TF decodes WebP under every decode op (no op-type check), uint8 only; the
                // output is 4-D unless DecodeImage has expand_animations=false.
                if self.dtype != DType::U8 {
                    return Err(OpError::invalid("WebP only supports uint8 for dtype"));
                }
                let expand = self.kind != Kind::Image || self.expand_animations;
                webp::decode(
                    bytes,
                    self.channels,
                    expand,
                    limits.max_image_pixels,
                    &check,
                )?
            }
            Format::Jxl => {
                return Err(OpError::Unimplemented(
                    "decoding JPEG XL images (TF's DecodeJxl path, libjxl)".into(),
                ))
            }
            Format::Unknown => {
                return Err(OpError::invalid(
                    "Unknown image file format. One of JPEG, JPEG XL, PNG, GIF, BMP, WebP \
                     required.",
                ))
            }
        })
    }
}

impl Op for Decode {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let contents = &inputs[0];
        if contents.rank() != 0 {
            return Err(OpError::invalid(format!(
                "`contents` must be scalar but got shape{:?}",
                contents.shape()
            )));
        }
        let crop = if self.kind == Kind::AndCropJpeg {
            let w = &inputs[1];
            if w.rank() != 1 {
                return Err(OpError::invalid(format!(
                    "crop_window must be 1-D, got shape {:?}",
                    w.shape()
                )));
            }
            if w.len() != 4 {
                return Err(OpError::invalid(format!(
                    "crop_size must have four elements {:?}",
                    w.shape()
                )));
            }
            let v = w.as_slice::<i32>()?;
            Some([v[0], v[1], v[2], v[3]])
        } else {
            None
        };
        let bytes = &contents.as_slice::<bytes::Bytes>()?[0];
        if bytes.is_empty() {
            return Err(OpError::invalid("Input is empty."));
        }
        if classify(bytes) != Format::Jpeg && crop.is_some() && self.kind != Kind::AndCropJpeg {
            return Err(OpError::invalid("crop window on a non-JPEG"));
        }
        let (img, four) = self.decode(cx, bytes, crop)?;
        let shape: Vec<usize> = if four {
            vec![img.frames, img.h, img.w, img.c]
        } else {
            vec![img.h, img.w, img.c]
        };
        // TF scales 8-bit sources to uint16 by 256 and to float by 1/255 (a float32 scale);
        // 16-bit PNG to float by 1/65535.
        let t = match (img.px, self.dtype) {
            (Pixels::U8(v), DType::U8) => Tensor::from_vec(&shape, v)?,
            (Pixels::U8(v), DType::U16) => {
                Tensor::from_vec(&shape, v.into_iter().map(|x| u16::from(x) * 256).collect())?
            }
            (Pixels::U8(v), _) => {
                let s = (1.0f64 / 255.0) as f32;
                Tensor::from_vec(&shape, v.into_iter().map(|x| f32::from(x) * s).collect())?
            }
            (Pixels::U16(v), DType::F32) => {
                let s = (1.0f64 / 65535.0) as f32;
                Tensor::from_vec(&shape, v.into_iter().map(|x| f32::from(x) * s).collect())?
            }
            (Pixels::U16(v), _) => Tensor::from_vec(&shape, v)?,
        };
        Ok(tensors![t])
    }
}

/// `ExtractJpegShape`: `[height, width, components]` of a JPEG, as `output_type`.
#[derive(Debug)]
struct ExtractJpegShape {
    int64: bool,
}

impl ExtractJpegShape {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(1)?;
        let t = cx.attr_opt_type("output_type")?.unwrap_or(DType::I32);
        Ok(Box::new(ExtractJpegShape {
            int64: t == DType::I64,
        }))
    }
}

impl Op for ExtractJpegShape {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [contents] = take_inputs(inputs)?;
        if contents.rank() != 0 {
            return Err(OpError::invalid(format!(
                "contents must be scalar, got shape {:?}",
                contents.shape()
            )));
        }
        let bytes = &contents.as_slice::<bytes::Bytes>()?[0];
        let (h, w, c) = jpeg::shape(bytes).map_err(|_| {
            OpError::invalid("Invalid JPEG data, size ".to_string() + &bytes.len().to_string())
        })?;
        Ok(tensors![if self.int64 {
            Tensor::vector(vec![h as i64, w as i64, c as i64])
        } else {
            Tensor::vector(vec![h as i32, w as i32, c as i32])
        }])
    }
}

/// `EncodePng`: a `[h, w, c]` uint8/uint16 image to PNG bytes (zlib stream differs from
/// libpng's; the pixels round-trip exactly).
#[derive(Debug)]
struct EncodePng {
    compression: i64,
}

impl EncodePng {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(1)?;
        let compression = cx.attr_opt_i64("compression").unwrap_or(-1);
        if !(-1..=9).contains(&compression) {
            return Err(OpError::invalid(
                "compression should be in [-1,9], got ".to_string() + &compression.to_string(),
            ));
        }
        Ok(Box::new(EncodePng { compression }))
    }
}

impl Op for EncodePng {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [image] = take_inputs(inputs)?;
        let [h, w, c] = *image.shape() else {
            return Err(OpError::invalid(format!(
                "image must be 3-dimensional{:?}",
                image.shape()
            )));
        };
        if !(1..=4).contains(&c) {
            return Err(OpError::invalid(format!(
                "image must have 1, 2, 3, or 4 channels, got {c}"
            )));
        }
        cx.limits().check_bytes(image.nbytes() as u128 + 1024)?;
        let bytes = match image.dtype() {
            DType::U8 => png::encode(h, w, c, image.as_slice::<u8>()?, false, self.compression)?,
            DType::U16 => {
                let be: Vec<u8> = image
                    .as_slice::<u16>()?
                    .iter()
                    .flat_map(|v| v.to_be_bytes())
                    .collect();
                png::encode(h, w, c, &be, true, self.compression)?
            }
            d => return Err(OpError::dtype(0, "uint8 or uint16", d)),
        };
        Ok(tensors![Tensor::from_strings(&[], vec![bytes])?])
    }
}

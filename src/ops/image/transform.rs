//! `ImageProjectiveTransformV2` / `V3`: what Keras' RandomRotation / RandomZoom /
//! RandomTranslation / RandomShear layers (and `tf.raw_ops` users) compile to. TF reference:
//! core/kernels/image/image_ops.{h,cc}; the per-pixel arithmetic is in
//! `tfhub_kernels::image::transform`.

use super::{f32_to_dtype, nhwc, with_samples};
use crate::ops::kernels::image::transform::{self, FillMode, Interpolation};
use crate::ops::{take_inputs, BuildCtx, EvalCtx, Op, OpError, Registry, Tensors};
use crate::tensor::{DType, Data, Tensor};

pub(crate) fn register(r: &mut Registry) {
    r.add("ImageProjectiveTransformV2", Transform::build);
    r.add("ImageProjectiveTransformV3", Transform::build);
}

#[derive(Debug)]
struct Transform {
    interpolation: Interpolation,
    mode: FillMode,
    /// V3 takes a `fill_value` input.
    v3: bool,
}

impl Transform {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        let v3 = cx.op == "ImageProjectiveTransformV3";
        cx.expect_inputs(if v3 { 4 } else { 3 })?;
        let interpolation = match cx
            .attr_opt_str("interpolation")
            .unwrap_or_default()
            .as_str()
        {
            "NEAREST" => Interpolation::Nearest,
            "BILINEAR" => Interpolation::Bilinear,
            s => {
                return Err(OpError::invalid(format!(
                    "Invalid interpolation {s}. Supported types: NEAREST, BILINEAR"
                )))
            }
        };
        let mode = match cx
            .attr_opt_str("fill_mode")
            .unwrap_or_else(|| "CONSTANT".into())
            .as_str()
        {
            "REFLECT" => FillMode::Reflect,
            "WRAP" => FillMode::Wrap,
            "CONSTANT" => FillMode::Constant,
            "NEAREST" => FillMode::Nearest,
            s => {
                return Err(OpError::invalid(format!(
                    "Invalid mode {s}. Supported types: REFLECT, WRAP, CONSTANT, NEAREST"
                )))
            }
        };
        Ok(Box::new(Transform {
            interpolation,
            mode,
            v3,
        }))
    }
}

/// `static_cast<T>(v)` then back to `f32` (the fill value as the bilinear path reads it).
fn through_dtype(d: &Data, v: f32) -> Result<f32, OpError> {
    let t = f32_to_dtype(d, &[1], vec![v])?;
    let v: f32 = with_samples!(t, 3, s => tfhub_kernels::image::Sample::to_f32(s[0]));
    Ok(v)
}

impl Op for Transform {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let (images, transforms, shape, fill) = if self.v3 {
            let [a, b, c, d] = take_inputs(inputs)?;
            (a, b, c, Some(d))
        } else {
            let [a, b, c] = take_inputs(inputs)?;
            (a, b, c, None)
        };
        if images.rank() != 4 {
            return Err(OpError::invalid("Input images must have rank 4"));
        }
        let [n, h, w, c] = nhwc(&images, "images")?;
        let ok = matches!(*transforms.shape(), [b, 8] if b == n || b == 1);
        if !ok || transforms.dtype() != DType::F32 {
            return Err(OpError::invalid(
                "Input transform should be num_images x 8 or 1 x 8",
            ));
        }
        if shape.rank() != 1 || shape.len() != 2 || shape.dtype() != DType::I32 {
            return Err(OpError::invalid("output shape must have two elements"));
        }
        let s = shape.as_slice::<i32>()?;
        if s[0] <= 0 || s[1] <= 0 {
            return Err(OpError::invalid("output dimensions must be positive"));
        }
        let (oh, ow) = (s[0] as usize, s[1] as usize);
        let fill = match fill {
            None => 0.0,
            Some(f) => {
                if f.rank() != 0 || f.dtype() != DType::F32 {
                    return Err(OpError::invalid("fill_value must be a scalar"));
                }
                f.as_slice::<f32>()?[0]
            }
        };
        if !matches!(
            images.dtype(),
            DType::U8
                | DType::I32
                | DType::I64
                | DType::F16
                | DType::F32
                | DType::F64
                | DType::BF16
        ) {
            return Err(OpError::dtype(
                0,
                "uint8, int32, int64, half, float, double or bfloat16",
                images.dtype(),
            ));
        }
        let len = [n, oh, ow, c]
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| OpError::Limit("output size overflows".into()))?;
        cx.limits().check_alloc(len, images.dtype())?;
        let tf = transforms.as_slice::<f32>()?;
        let out_shape = [n, oh, ow, c];
        let plane = h * w * c;
        // Per (batch, y, x): the mapped input coordinate, or None for the fill value.
        let coord = |b: usize, y: usize, x: usize| {
            let t: [f32; 8] =
                std::array::from_fn(|k| tf[if tf.len() == 8 { k } else { b * 8 + k }]);
            transform::source(&t, x, y, h, w, self.mode)
        };
        if self.interpolation == Interpolation::Nearest {
            // Nearest copies input elements (no float round trip), TF's `T` values.
            let fill_t = f32_to_dtype(images.data(), &[1], vec![fill])?;
            let mut idx: Vec<Option<usize>> = Vec::with_capacity(n * oh * ow);
            for b in 0..n {
                for y in 0..oh {
                    for x in 0..ow {
                        idx.push(coord(b, y, x).and_then(|(sx, sy)| {
                            transform::nearest(sx, sy, h, w)
                                .map(|(r, col)| b * plane + (r * w + col) * c)
                        }));
                    }
                }
            }
            return Ok(tensors![gather(&images, &fill_t, &idx, c, &out_shape)?]);
        }
        let fill_f = through_dtype(images.data(), fill)?;
        let mut out = vec![0f32; len];
        with_samples!(images, 0, s => {
            let mut o = 0;
            for b in 0..n {
                let img = &s[b * plane..(b + 1) * plane];
                for y in 0..oh {
                    for x in 0..ow {
                        match coord(b, y, x) {
                            None => out[o..o + c].fill(fill_f),
                            Some((sx, sy)) => {
                                for ch in 0..c {
                                    out[o + ch] = transform::bilinear(img, [h, w, c], sx, sy, ch, fill_f);
                                }
                            }
                        }
                        o += c;
                    }
                }
            }
        });
        Ok(tensors![f32_to_dtype(images.data(), &out_shape, out)?])
    }
}

/// Output of `c`-channel pixels copied from `src` at `idx` (element offsets), or `fill`.
fn gather(
    src: &Tensor,
    fill: &Tensor,
    idx: &[Option<usize>],
    c: usize,
    shape: &[usize],
) -> Result<Tensor, OpError> {
    macro_rules! g {
        ($a:expr, $f:expr) => {{
            let (a, f) = ($a, $f[0]);
            let mut v = Vec::with_capacity(idx.len() * c);
            for i in idx {
                match i {
                    Some(p) => v.extend_from_slice(&a[*p..*p + c]),
                    None => v.extend(std::iter::repeat_n(f, c)),
                }
            }
            Tensor::from_vec(shape, v)?
        }};
    }
    Ok(match (src.data(), fill.data()) {
        (Data::U8(a), Data::U8(f)) => g!(a, f),
        (Data::I32(a), Data::I32(f)) => g!(a, f),
        (Data::I64(a), Data::I64(f)) => g!(a, f),
        (Data::F16(a), Data::F16(f)) => g!(a, f),
        (Data::BF16(a), Data::BF16(f)) => g!(a, f),
        (Data::F32(a), Data::F32(f)) => g!(a, f),
        (Data::F64(a), Data::F64(f)) => g!(a, f),
        _ => {
            return Err(OpError::dtype(
                0,
                "uint8, int32, int64, half, float, double or bfloat16",
                src.dtype(),
            ))
        }
    })
}

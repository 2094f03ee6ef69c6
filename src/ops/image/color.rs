//! `RGBToHSV`, `HSVToRGB`, `AdjustContrastv2`, `AdjustSaturation`, `AdjustHue`.
//! TF reference: core/kernels/image/{colorspace_op,adjust_contrast_op,
//! adjust_saturation_op,adjust_hue_op}.cc. Each TF kernel has its own RGB/HSV code and the
//! three round differently, so `tfhub_kernels::image::color` keeps all three.
//! Computation is in `f32` (TF computes `half`/`bfloat16` in float too, except the
//! colourspace ops, which run in `T`; `float64` here runs in `f32` only for the adjust ops,
//! which TF registers for float and half only).

use super::f32_to_dtype;
use crate::ops::kernels::image::color::{adjust_hue, adjust_saturation, hsv_to_rgb, rgb_to_hsv};
use crate::ops::{take_inputs, BuildCtx, EvalCtx, Op, OpError, Registry, Tensors};
use crate::tensor::{DType, Tensor};

pub(crate) fn register(r: &mut Registry) {
    r.add("AdjustContrastv2", |cx| Adjust::build(cx, Kind::Contrast));
    r.add("AdjustHue", |cx| Adjust::build(cx, Kind::Hue));
    r.add("AdjustSaturation", |cx| Adjust::build(cx, Kind::Saturation));
    r.add("HSVToRGB", |cx| Convert::build(cx, false));
    r.add("RGBToHSV", |cx| Convert::build(cx, true));
}

/// The input as `f32` values (float dtypes only).
fn floats(t: &Tensor) -> Result<Vec<f32>, OpError> {
    Ok(match t.dtype() {
        DType::F32 => t.as_slice::<f32>()?.to_vec(),
        DType::F64 => t.as_slice::<f64>()?.iter().map(|&v| v as f32).collect(),
        DType::F16 => t
            .as_slice::<half::f16>()?
            .iter()
            .map(|v| v.to_f32())
            .collect(),
        DType::BF16 => t
            .as_slice::<half::bf16>()?
            .iter()
            .map(|v| v.to_f32())
            .collect(),
        d => return Err(OpError::dtype(0, "a float type", d)),
    })
}

fn last_dim_3(t: &Tensor, what: &str) -> Result<(), OpError> {
    if t.rank() < 1 || t.shape()[t.rank() - 1] != 3 {
        return Err(OpError::invalid(format!(
            "{what} must have 3 channels but input only has {} channels.",
            t.shape().last().copied().unwrap_or(0)
        )));
    }
    Ok(())
}

/// `RGBToHSV` / `HSVToRGB` over the last dimension.
#[derive(Debug)]
struct Convert {
    to_hsv: bool,
}

impl Convert {
    fn build(cx: &mut BuildCtx<'_>, to_hsv: bool) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(1)?;
        Ok(Box::new(Convert { to_hsv }))
    }
}

impl Op for Convert {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [x] = take_inputs(inputs)?;
        last_dim_3(&x, "input")?;
        if x.dtype() == DType::F64 {
            // f64 runs the same formulas in f64 would be needed for exactness; refuse rather
            // than round.
            return Err(OpError::Unimplemented(format!(
                "{} on float64",
                if self.to_hsv { "RGBToHSV" } else { "HSVToRGB" }
            )));
        }
        let mut v = floats(&x)?;
        for p in v.chunks_exact_mut(3) {
            let o = if self.to_hsv {
                rgb_to_hsv(p[0], p[1], p[2])
            } else {
                hsv_to_rgb(p[0], p[1], p[2])
            };
            p.copy_from_slice(&o);
        }
        Ok(tensors![f32_to_dtype(x.data(), x.shape(), v)?])
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Contrast,
    Hue,
    Saturation,
}

/// `AdjustContrastv2` (`(x - mean) * factor + mean`, mean per image and channel over
/// height and width), `AdjustHue` (delta in turns), `AdjustSaturation` (scale).
#[derive(Debug)]
struct Adjust {
    kind: Kind,
}

impl Adjust {
    fn build(cx: &mut BuildCtx<'_>, kind: Kind) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(2)?;
        Ok(Box::new(Adjust { kind }))
    }
}

impl Op for Adjust {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [x, f] = take_inputs(inputs)?;
        if x.rank() < 3 {
            return Err(OpError::invalid(format!(
                "input must be at least 3-D, got shape{:?}",
                x.shape()
            )));
        }
        if f.rank() != 0 {
            return Err(OpError::invalid(format!(
                "factor must be scalar: {:?}",
                f.shape()
            )));
        }
        let factor = f.scalar_value::<f32>()?;
        let mut v = floats(&x)?;
        let shape = x.shape();
        match self.kind {
            Kind::Contrast => {
                let c = shape[shape.len() - 1];
                let hw = shape[shape.len() - 3] * shape[shape.len() - 2];
                if c > 0 && hw > 0 {
                    for img in v.chunks_exact_mut(hw * c) {
                        let mut sums = vec![0.0f64; c];
                        for p in img.chunks_exact(c) {
                            for (s, &x) in sums.iter_mut().zip(p) {
                                *s += f64::from(x);
                            }
                        }
                        let means: Vec<f32> = sums.iter().map(|s| (s / hw as f64) as f32).collect();
                        for p in img.chunks_exact_mut(c) {
                            for (x, &m) in p.iter_mut().zip(&means) {
                                *x = (*x - m) * factor + m;
                            }
                        }
                    }
                }
            }
            Kind::Hue | Kind::Saturation => {
                last_dim_3(&x, "input")?;
                for p in v.chunks_exact_mut(3) {
                    let rgb = [p[0], p[1], p[2]];
                    let o = if self.kind == Kind::Hue {
                        adjust_hue(rgb, factor)
                    } else {
                        adjust_saturation(rgb, factor)
                    };
                    p.copy_from_slice(&o);
                }
            }
        }
        Ok(tensors![f32_to_dtype(x.data(), shape, v)?])
    }
}

//! `ExtractGlimpse` (v1) and `ExtractGlimpseV2`: one `[window_h, window_w]` window per image
//! at an offset, as TF's kernels/image/attention_ops.cc + kernels/eigen_attention.h
//! (`GlimpseExtractionOp`) compute it, quirks included:
//!
//! - coordinates are un-normalized / un-centered in `f32` in Eigen's order, and v1 always
//!   subtracts half the window while v2 does so only when both `normalized` and `centered`;
//! - the window's corner is the float offset truncated toward zero (C's `(Index) x`);
//! - a window touching the right/bottom edge (`offset + size >= input`, even when it fits
//!   exactly) or starting before the left/top edge is a "partial overlap": it is first
//!   filled with noise, then the overlapping part is copied in. A window starting before the
//!   left edge puts that part at `size - max(0, size + offset)`, and the copied extent is
//!   also clamped to the input size, so a window larger than the image that hangs over the
//!   left edge shows the image shifted right, as TF does.
//!
//! Noise: `noise="zero"` fills zeros. TF's `uniform` and `gaussian` noise come from an
//! unseeded random generator, so no output can match them: when noise would be visible in
//! an output (the copied part does not cover the whole window) the op fails with an error
//! naming the noise mode; windows covered by the image are computed for every mode.

use super::nhwc;
use crate::ops::{take_inputs, BuildCtx, EvalCtx, Op, OpError, Registry, Tensors};
use crate::tensor::{DType, Tensor};

pub(crate) fn register(r: &mut Registry) {
    r.add("ExtractGlimpse", ExtractGlimpse::build);
    r.add("ExtractGlimpseV2", ExtractGlimpse::build);
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Noise {
    Uniform,
    Gaussian,
    Zero,
}

#[derive(Debug)]
struct ExtractGlimpse {
    v1: bool,
    normalized: bool,
    centered: bool,
    noise: Noise,
}

impl ExtractGlimpse {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(3)?;
        let uniform_noise = cx.attr_opt_bool("uniform_noise").unwrap_or(true);
        let noise = cx.attr_opt_str("noise").unwrap_or_else(|| "uniform".into());
        if uniform_noise && !(noise.is_empty() || noise == "uniform") {
            return Err(OpError::invalid(
                "The uniform_noise and noise could not be specified at the same time",
            ));
        }
        let noise = match noise.as_str() {
            "" if uniform_noise => Noise::Uniform,
            "" => Noise::Gaussian,
            "uniform" => Noise::Uniform,
            "gaussian" => Noise::Gaussian,
            "zero" => Noise::Zero,
            n => {
                // TF's text, missing space included.
                return Err(OpError::invalid(format!(
                    "The noise could only be uniform, gaussian, or zero, got{n}"
                )));
            }
        };
        Ok(Box::new(ExtractGlimpse {
            v1: cx.op == "ExtractGlimpse",
            normalized: cx.attr_opt_bool("normalized").unwrap_or(true),
            centered: cx.attr_opt_bool("centered").unwrap_or(true),
            noise,
        }))
    }

    /// The window's top-left corner (x or y) from an offset, in `f32` as Eigen does.
    fn corner(&self, mut v: f32, input: usize, window: usize) -> i64 {
        let (input, window) = (input as f32, window as f32);
        if self.v1 {
            if self.normalized {
                v *= input;
            }
            if self.centered {
                v /= 2.0;
                v += input / 2.0;
            }
            v -= window / 2.0;
        } else if self.normalized {
            v *= input;
            if self.centered {
                v /= 2.0;
                v += input / 2.0;
                v -= window / 2.0;
            }
        } else if self.centered {
            v += input / 2.0;
        }
        // `(Index) x`: truncation (Rust's cast saturates where C++'s is undefined).
        v as i64
    }
}

/// One axis of `GlimpseExtractionOp`: `(source start, extent, destination start, glimpse
/// size, partial overlap)`.
fn axis(off: i64, win: i64, input: i64) -> (i64, i64, i64, i64, bool) {
    if off < 0 {
        let g = win.saturating_add(off).max(0);
        (0, g.min(input), win - g, g, true)
    } else if off.saturating_add(win) >= input {
        let g = (input - off).max(0);
        (off, g.min(input), 0, g, true)
    } else {
        (off, win.min(input), 0, win, false)
    }
}

impl Op for ExtractGlimpse {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [input, size, offsets] = take_inputs(inputs)?;
        let [n, ih, iw, c] = nhwc(&input, "input").map_err(|_| {
            OpError::invalid(format!(
                "input must be 4-dimensional (batch_size, height, width, depth){:?}",
                input.shape()
            ))
        })?;
        if input.dtype() != DType::F32 {
            return Err(OpError::dtype(0, "float32", input.dtype()));
        }
        if size.shape() != [2] {
            return Err(OpError::invalid(format!(
                "input must be a vector of size 2 (height, width){:?}",
                size.shape()
            )));
        }
        let s = size.as_slice::<i32>()?;
        let (oh, ow) = (s[0], s[1]);
        if oh < 0 || ow < 0 {
            return Err(OpError::invalid(format!(
                "Dimension {} must be >= 0",
                oh.min(ow)
            )));
        }
        let (oh, ow) = (oh as usize, ow as usize);
        if offsets.rank() != 2 {
            return Err(OpError::invalid(format!(
                "input must be a matrix{:?}",
                offsets.shape()
            )));
        }
        if offsets.shape()[0] != n {
            return Err(OpError::invalid(format!(
                "first dimension should be batch{:?}",
                offsets.shape()
            )));
        }
        if offsets.shape()[1] != 2 {
            return Err(OpError::invalid(format!(
                "second dimension should be of size 2 (y,x){:?}",
                offsets.shape()
            )));
        }
        let total = n
            .checked_mul(oh)
            .and_then(|v| v.checked_mul(ow))
            .and_then(|v| v.checked_mul(c))
            .ok_or_else(|| OpError::Limit("glimpse output size overflows".into()))?;
        cx.limits().check_alloc(total, DType::F32)?;
        let mut out = vec![0f32; total];
        let src = input.as_slice::<f32>()?;
        let offs = offsets.as_slice::<f32>()?;
        for b in 0..n {
            let x = self.corner(offs[2 * b + 1], iw, ow);
            let y = self.corner(offs[2 * b], ih, oh);
            let (sx, ex, dx, gw, px) = axis(x, ow as i64, iw as i64);
            let (sy, ey, dy, gh, py) = axis(y, oh as i64, ih as i64);
            let copy = gw != 0 && gh != 0;
            let covered = copy && ex == ow as i64 && ey == oh as i64;
            if (px || py) && !covered && self.noise != Noise::Zero {
                return Err(OpError::Unimplemented(format!(
                    "{} with {:?} noise: the window of image {b} reaches outside the image, \
                     and TF fills that part with unseeded random noise (use noise=\"zero\")",
                    if self.v1 {
                        "ExtractGlimpse"
                    } else {
                        "ExtractGlimpseV2"
                    },
                    self.noise
                )));
            }
            if !copy {
                continue;
            }
            let (sx, ex, dx, sy, ey, dy) = (
                sx as usize,
                ex as usize,
                dx as usize,
                sy as usize,
                ey as usize,
                dy as usize,
            );
            let img = &src[b * ih * iw * c..][..ih * iw * c];
            let dst = &mut out[b * oh * ow * c..][..oh * ow * c];
            for r in 0..ey {
                let from = ((sy + r) * iw + sx) * c;
                let to = ((dy + r) * ow + dx) * c;
                dst[to..to + ex * c].copy_from_slice(&img[from..from + ex * c]);
            }
        }
        Ok(tensors![Tensor::from_vec(&[n, oh, ow, c], out)?])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{Limits, Session};

    fn run(op: &ExtractGlimpse, size: [i32; 2], off: [f32; 2]) -> Result<Vec<Tensor>, OpError> {
        let session = Session::new(".".into(), None, Limits::default());
        let img = Tensor::from_vec(&[1, 4, 5, 1], (0..20).map(|v| v as f32).collect()).unwrap();
        op.eval(
            &mut EvalCtx::new(&session),
            tensors![
                img,
                Tensor::vector(size.to_vec()),
                Tensor::from_vec(&[1, 2], off.to_vec()).unwrap(),
            ],
        )
        .map(Tensors::into_vec)
    }

    #[test]
    fn random_noise_is_refused_only_where_visible() {
        let op = ExtractGlimpse {
            v1: false,
            normalized: false,
            centered: false,
            noise: Noise::Uniform,
        };
        // Ends exactly at the right/bottom edges: a partial overlap in TF, but covered.
        let out = run(&op, [2, 3], [2.0, 2.0]).unwrap();
        assert_eq!(
            out[0].as_slice::<f32>().unwrap(),
            &[12.0, 13.0, 14.0, 17.0, 18.0, 19.0]
        );
        let e = run(&op, [2, 3], [3.0, 2.0]).unwrap_err().to_string();
        assert!(
            e.contains("ExtractGlimpseV2") && e.contains("Uniform"),
            "{e}"
        );
        let zero = ExtractGlimpse {
            noise: Noise::Zero,
            ..op
        };
        let out = run(&zero, [2, 3], [3.0, -1.0]).unwrap();
        assert_eq!(
            out[0].as_slice::<f32>().unwrap(),
            &[0.0, 15.0, 16.0, 0.0, 0.0, 0.0]
        );
        for (size, off, want) in [
            ([-1, 2], [0.0, 0.0], "must be >= 0"),
            ([2, 2], [f32::NAN, 0.0], ""),
        ] {
            match run(&zero, size, off) {
                Err(e) => assert!(e.to_string().contains(want), "{e}"),
                Ok(o) => assert!(want.is_empty(), "{:?}", o[0].shape()),
            }
        }
    }
}

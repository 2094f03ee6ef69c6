//! `Conv2DBackpropInput` (transposed convolution: the decoder half of segmentation,
//! super-resolution and style-transfer models, what Keras `Conv2DTranspose` emits) and
//! `LRN`. TF reference: core/kernels/conv_grad_input_ops.cc, core/kernels/lrn_op.cc.
//!
//! The transposed convolution is one GEMM (`dy[n·oh·ow, cout] × Wᵀ[cout, kh·kw·cin]`, the
//! crate's packed f32 GEMM) followed by a col2im scatter-add; NHWC and float32 only.

use crate::ops::kernels::gemm::gemm_f32;
use crate::ops::kernels::image::crop::{col2im, Deconv};
use crate::ops::{take_inputs, BuildCtx, EvalCtx, Op, OpError, Registry, Tensors};
use crate::tensor::{DType, Tensor};

pub(crate) fn register(r: &mut Registry) {
    r.add("Conv2DBackpropInput", ConvTranspose::build);
    r.add("LRN", Lrn::build);
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Padding {
    Same,
    Valid,
    Explicit([(usize, usize); 2]),
}

/// `Conv2DBackpropInput`.
#[derive(Debug)]
struct ConvTranspose {
    strides: (usize, usize),
    dilations: (usize, usize),
    padding: Padding,
}

fn hw_list(cx: &BuildCtx<'_>, name: &str) -> Result<(usize, usize), OpError> {
    let v = cx.attr_list_i64(name);
    if v.is_empty() && name == "dilations" {
        return Ok((1, 1));
    }
    if v.len() != 4 || v.iter().any(|&x| x < 1) {
        return Err(OpError::Attr {
            name: name.into(),
            what: format!("expected 4 positive values, got {v:?}"),
        });
    }
    if v[0] != 1 || v[3] != 1 {
        return Err(OpError::Unimplemented(format!(
            "{name} in the batch or depth dimensions ({v:?})"
        )));
    }
    Ok((v[1] as usize, v[2] as usize))
}

impl ConvTranspose {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(3)?;
        let f = cx
            .attr_opt_str("data_format")
            .unwrap_or_else(|| "NHWC".into());
        if f != "NHWC" {
            return Err(OpError::Unimplemented(format!(
                "Conv2DBackpropInput with data_format {f} (only NHWC)"
            )));
        }
        let padding = match cx.attr_str("padding")?.as_str() {
            "SAME" => Padding::Same,
            "VALID" => Padding::Valid,
            "EXPLICIT" => {
                let p = cx.attr_list_i64("explicit_paddings");
                if p.len() != 8 || p.iter().any(|&v| v < 0) || p[0] + p[1] + p[6] + p[7] != 0 {
                    return Err(OpError::Attr {
                        name: "explicit_paddings".into(),
                        what: format!("expected 8 non-negative values, spatial only, got {p:?}"),
                    });
                }
                let u = |i: usize| p[i] as usize;
                Padding::Explicit([(u(2), u(3)), (u(4), u(5))])
            }
            p => {
                return Err(OpError::Attr {
                    name: "padding".into(),
                    what: format!("unknown mode {p:?}"),
                })
            }
        };
        let dilations = hw_list(cx, "dilations")?;
        if dilations != (1, 1) {
            // TF's CPU kernel refuses them too.
            return Err(OpError::Unimplemented(
                "Current CPU implementations do not yet support dilation rates larger than 1."
                    .into(),
            ));
        }
        Ok(Box::new(ConvTranspose {
            strides: hw_list(cx, "strides")?,
            dilations,
            padding,
        }))
    }
}

/// Forward output size and leading pad of one axis (TF's `GetWindowedOutputSizeVerbose`).
fn forward_dim(
    input: usize,
    k: usize,
    stride: usize,
    dil: usize,
    pad: Padding,
    axis: usize,
) -> (usize, usize) {
    let eff = (k - 1) * dil + 1;
    match pad {
        Padding::Valid => (
            if input >= eff {
                (input - eff) / stride + 1
            } else {
                0
            },
            0,
        ),
        Padding::Same => {
            let out = input.div_ceil(stride);
            let total = ((out.max(1) - 1) * stride + eff).saturating_sub(input);
            (out, total / 2)
        }
        Padding::Explicit(p) => {
            let (a, b) = p[axis];
            let padded = input + a + b;
            (
                if padded >= eff {
                    (padded - eff) / stride + 1
                } else {
                    0
                },
                a,
            )
        }
    }
}

impl Op for ConvTranspose {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [sizes, filter, dy] = take_inputs(inputs)?;
        if filter.dtype() != DType::F32 || dy.dtype() != DType::F32 {
            return Err(OpError::dtype(1, "float32", filter.dtype()));
        }
        let [kh, kw, cin, cout] = *filter.shape() else {
            return Err(OpError::invalid("filter must be 4-dimensional"));
        };
        let [n, oh, ow, dc] = *dy.shape() else {
            return Err(OpError::invalid("out_backprop must be 4-dimensional"));
        };
        let s = sizes.to_i64_vec()?;
        let (h, w) = match s.as_slice() {
            [b, h, w, c] => {
                if *b as usize != n || *c as usize != cin {
                    return Err(OpError::invalid(format!(
                        "input_sizes {s:?} disagree with out_backprop batch {n} / filter in \
                         depth {cin}"
                    )));
                }
                (*h, *w)
            }
            [h, w] => (*h, *w),
            _ => {
                return Err(OpError::invalid(format!(
                    "input_sizes must be 4-dimensional, got: {}",
                    s.len()
                )))
            }
        };
        if h < 0 || w < 0 || dc != cout || kh == 0 || kw == 0 {
            return Err(OpError::invalid(format!(
                "Conv2DBackpropInput: depth of out_backprop {dc} and filter {cout} (or sizes \
                 {s:?}) do not match"
            )));
        }
        let (h, w) = (h as usize, w as usize);
        let (eh, ph) = forward_dim(h, kh, self.strides.0, self.dilations.0, self.padding, 0);
        let (ew, pw) = forward_dim(w, kw, self.strides.1, self.dilations.1, self.padding, 1);
        if (eh, ew) != (oh, ow) {
            return Err(OpError::invalid(format!(
                "Conv2DBackpropInput: Size of out_backprop doesn't match computed: actual = \
                 [{oh}, {ow}], computed = [{eh}, {ew}]"
            )));
        }
        let taps = kh * kw * cin;
        let rows = n * oh * ow;
        let out_len = n
            .checked_mul(h)
            .and_then(|v| v.checked_mul(w))
            .and_then(|v| v.checked_mul(cin))
            .ok_or_else(|| OpError::Limit("output size overflows".into()))?;
        let cols_len = rows
            .checked_mul(taps)
            .ok_or_else(|| OpError::Limit("column buffer size overflows".into()))?;
        cx.limits().check_alloc(out_len, DType::F32)?;
        cx.limits().check_alloc(cols_len + out_len, DType::F32)?;
        let mut cols = vec![0.0f32; cols_len];
        if rows > 0 && taps > 0 {
            // B[co, tap] = filter[tap * cout + co].
            gemm_f32(
                rows,
                taps,
                cout,
                dy.as_slice::<f32>()?,
                (cout, 1),
                filter.as_slice::<f32>()?,
                (1, cout),
                &mut cols,
                taps,
                false,
            );
        }
        let mut out = vec![0.0f32; out_len];
        let g = Deconv {
            input: [n, h, w, cin],
            kernel: (kh, kw),
            output: (oh, ow, cout),
            strides: self.strides,
            dilations: self.dilations,
            pads: (ph, pw),
        };
        col2im(&g, &cols, &mut out);
        Ok(tensors![Tensor::from_vec(&[n, h, w, cin], out)?])
    }
}

/// `LRN`: `x / (bias + alpha · Σ x²)^beta`, the sum over `depth_radius` channels either
/// side, as TF's CPU kernel computes it (`rsqrt` for beta 0.5, reciprocal for 1,
/// `exp(-beta·log)` otherwise).
#[derive(Debug)]
struct Lrn {
    radius: usize,
    bias: f32,
    alpha: f32,
    beta: f32,
}

impl Lrn {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(1)?;
        let radius = cx.attr_opt_i64("depth_radius").unwrap_or(5);
        if !(0..=i32::MAX as i64).contains(&radius) {
            return Err(OpError::invalid(
                "depth_radius = ".to_string() + &radius.to_string() + " out of range",
            ));
        }
        Ok(Box::new(Lrn {
            radius: radius as usize,
            bias: cx.attr_opt_f32("bias").unwrap_or(1.0),
            alpha: cx.attr_opt_f32("alpha").unwrap_or(1.0),
            beta: cx.attr_opt_f32("beta").unwrap_or(0.5),
        }))
    }
}

impl Op for Lrn {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [x] = take_inputs(inputs)?;
        if x.rank() != 4 {
            return Err(OpError::invalid("in must be 4-dimensional"));
        }
        if x.dtype() != DType::F32 {
            return Err(OpError::dtype(0, "float32", x.dtype()));
        }
        let depth = x.shape()[3];
        let src = x.as_slice::<f32>()?;
        let mut out = vec![0.0f32; src.len()];
        if depth > 0 {
            for (row, o) in src.chunks_exact(depth).zip(out.chunks_exact_mut(depth)) {
                for d in 0..depth {
                    let lo = d.saturating_sub(self.radius);
                    let hi = (d + self.radius).min(depth - 1);
                    let sum: f32 = row[lo..=hi].iter().map(|v| v * v).sum();
                    let t = sum * self.alpha + self.bias;
                    let f = if self.beta == 1.0 {
                        1.0 / t
                    } else if self.beta == 0.5 {
                        1.0 / t.sqrt()
                    } else {
                        (t.ln() * -self.beta).exp()
                    };
                    o[d] = row[d] * f;
                }
            }
        }
        Ok(tensors![Tensor::from_vec(x.shape(), out)?])
    }
}

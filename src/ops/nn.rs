//! Convolution, pooling and batch-norm ops over NHWC `f32`: `Conv2D`,
//! `DepthwiseConv2dNative`, `MaxPool`, `MaxPoolV2`, `AvgPool`, `FusedBatchNorm{,V2,V3}`
//! (inference mode). TF reference: core/kernels/{conv_ops,depthwise_conv_op,
//! maxpooling_op,avgpooling_op,fused_batch_norm_op}.cc and core/framework/kernel_shape_util.cc.
//!
//! Padding modes are resolved here into the explicit geometry (`Window2d`) that the
//! `tfhub_kernels::conv` kernels take; NCHW is refused, as TF's CPU kernels refuse it.

use super::fused::{ConvSpec, EpilogueProducer};
use super::kernels::conv::{
    avg_pool_nhwc_f32, conv2d_nhwc_f32_packed, conv2d_uses_gemm, conv2d_uses_winograd,
    conv2d_winograd_f32, depthwise_conv2d_nhwc_f32_ep, max_pool_nhwc_f32, pack_conv_filter,
    pack_winograd_filter, Window2d, WinogradFilter,
};
use super::kernels::epilogue::Epilogue;
use super::kernels::gemm::PackedB;
use super::kernels::Isa;
use super::{take_inputs, BuildCtx, EvalCtx, Op, OpError, Registry};
use crate::ops::Tensors;
use crate::tensor::{DType, Tensor};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub(crate) fn register(r: &mut Registry) {
    r.add("AvgPool", Pool::build);
    r.add("Conv2D", |cx| Conv::build(cx, false));
    r.add("DepthwiseConv2dNative", |cx| Conv::build(cx, true));
    r.add("FusedBatchNorm", FusedBatchNorm::build);
    r.add("FusedBatchNormV2", FusedBatchNorm::build);
    r.add("FusedBatchNormV3", FusedBatchNorm::build);
    r.add("MaxPool", Pool::build);
    r.add("MaxPoolV2", Pool::build);
}

/// A padding mode; `Explicit` holds `((top, bottom), (left, right))`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Padding {
    Same,
    Valid,
    Explicit([(usize, usize); 2]),
}

fn attr_err(name: &str, what: impl std::fmt::Display) -> OpError {
    OpError::Attr {
        name: name.into(),
        what: what.to_string(),
    }
}

/// Reads `padding` (and `explicit_paddings` for `EXPLICIT`, 8 values in NHWC order).
fn padding(cx: &BuildCtx<'_>) -> Result<Padding, OpError> {
    match cx.attr_str("padding")?.as_str() {
        "SAME" => Ok(Padding::Same),
        "VALID" => Ok(Padding::Valid),
        "EXPLICIT" => {
            let p = cx.attr_list_i64("explicit_paddings");
            if p.len() != 8 || p.iter().any(|&v| v < 0) {
                return Err(attr_err(
                    "explicit_paddings",
                    format!("expected 8 non-negative values, got {p:?}"),
                ));
            }
            if p[0] != 0 || p[1] != 0 || p[6] != 0 || p[7] != 0 {
                return Err(OpError::Unimplemented(
                    "explicit padding in the batch or depth dimensions".into(),
                ));
            }
            let u = |i: usize| p[i] as usize;
            Ok(Padding::Explicit([(u(2), u(3)), (u(4), u(5))]))
        }
        other => Err(attr_err("padding", format!("unknown mode {other:?}"))),
    }
}

/// Refuses any data format but NHWC.
fn nhwc(cx: &BuildCtx<'_>) -> Result<(), OpError> {
    let f = cx
        .attr_opt_str("data_format")
        .unwrap_or_else(|| "NHWC".into());
    if f != "NHWC" {
        return Err(OpError::Unimplemented(format!(
            "{} with data_format {f} (only NHWC; TF's CPU kernels do not support it either)",
            cx.op
        )));
    }
    Ok(())
}

/// `(h, w)` from a 4-element NHWC list whose batch and depth entries must be 1.
fn spatial(name: &str, v: &[i64]) -> Result<(usize, usize), OpError> {
    if v.len() != 4 || v.iter().any(|&x| x < 1) {
        return Err(attr_err(
            name,
            format!("expected 4 positive values, got {v:?}"),
        ));
    }
    if v[0] != 1 || v[3] != 1 {
        return Err(OpError::Unimplemented(format!(
            "{name} in the batch or depth dimensions ({v:?})"
        )));
    }
    Ok((v[1] as usize, v[2] as usize))
}

/// Output size and leading pad of one spatial axis (TF's `GetWindowedOutputSizeVerbose`).
fn out_dim(
    input: usize,
    k: usize,
    stride: usize,
    dilation: usize,
    pad: Padding,
    axis: usize,
) -> Result<(usize, usize), OpError> {
    let eff = (k - 1)
        .checked_mul(dilation)
        .and_then(|x| x.checked_add(1))
        .ok_or_else(|| OpError::invalid("window size overflows"))?;
    let (i, s) = (input as i128, stride as i128);
    let (out, before) = match pad {
        Padding::Valid => ((i - eff as i128 + s) / s, 0),
        Padding::Same => {
            let out = (i + s - 1) / s;
            // TF: pad_total = max((out-1)*stride + eff - in, 0), pad_before = pad_total / 2.
            let total = ((out - 1) * s + eff as i128 - i).max(0);
            (out, (total / 2) as usize)
        }
        Padding::Explicit(p) => {
            let (b, a) = p[axis];
            ((i + b as i128 + a as i128 - eff as i128 + s) / s, b)
        }
    };
    if out < 0 || (out == 0 && pad != Padding::Same && i + 1 < eff as i128) {
        return Err(OpError::invalid(format!(
            "Computed output size would be negative: {out} [input_size: {input}, \
             effective_filter_size: {eff}, stride: {stride}]"
        )));
    }
    Ok((out as usize, before))
}

/// Resolves the geometry of a window over an NHWC input.
fn window(
    input: &[usize],
    kernel: (usize, usize),
    strides: (usize, usize),
    dilations: (usize, usize),
    pad: Padding,
) -> Result<Window2d, OpError> {
    let [n, h, w, c] = <[usize; 4]>::try_from(input)
        .map_err(|_| OpError::invalid(format!("input must be 4-dimensional: {input:?}")))?;
    let (oh, pt) = out_dim(h, kernel.0, strides.0, dilations.0, pad, 0)?;
    let (ow, pl) = out_dim(w, kernel.1, strides.1, dilations.1, pad, 1)?;
    Ok(Window2d {
        input: [n, h, w, c],
        kernel,
        strides,
        dilations,
        pads: (pt, pl),
        output: (oh, ow),
    })
}

/// A zeroed f32 output of `[n, oh, ow, c]`, size-checked.
fn alloc_out(cx: &EvalCtx<'_>, g: &Window2d, c: usize) -> Result<(Vec<usize>, Vec<f32>), OpError> {
    let shape = vec![g.input[0], g.output.0, g.output.1, c];
    let n = crate::tensor::num_elements(&shape)
        .ok_or_else(|| OpError::Limit(format!("output shape {shape:?} overflows")))?;
    cx.limits().check_alloc(n, DType::F32)?;
    // Every caller's kernel writes each element.
    Ok((shape, crate::tensor::pool::f32_for_overwrite(n)))
}

/// `Conv2D` (HWIO filter) and `DepthwiseConv2dNative` (filter `[kh, kw, in, multiplier]`).
#[derive(Debug)]
struct Conv {
    depthwise: bool,
    strides: (usize, usize),
    dilations: (usize, usize),
    pad: Padding,
    cache: FilterCache<PackedB>,
    /// The Winograd transform of the filter (3×3 stride-1 convolutions with enough channels).
    wino: FilterCache<WinogradFilter>,
}

/// The GEMM packing (or Winograd transform) of a `Conv2D` filter, reused while the filter is the same buffer (as
/// `MatMul`'s packed right-hand side): the cache holds a clone of the filter tensor (an
/// `Arc` share), so the buffer can be neither freed nor mutated in place while the cache
/// refers to it; same address and shape means same contents. A filter is packed the second
/// time in a row it is seen (frozen weights are the same constant on every call).
#[derive(Debug)]
struct FilterCache<T> {
    /// Address of the last filter buffer seen (a hint, never dereferenced).
    last: AtomicUsize,
    packed: Mutex<Option<(Tensor, Arc<T>)>>,
}

impl<T> Default for FilterCache<T> {
    fn default() -> Self {
        FilterCache {
            last: AtomicUsize::new(0),
            packed: Mutex::new(None),
        }
    }
}

impl<T> FilterCache<T> {
    /// The packing of `f` from the cache, or made now by `pack` (`len` floats, checked
    /// against the memory limit); `None` to pack per call. `eager` packs a filter the first
    /// time it is seen (the planner knows it is a constant).
    fn get(
        &self,
        cx: &EvalCtx<'_>,
        f: &Tensor,
        fs: &[f32],
        len: Option<usize>,
        eager: bool,
        pack: impl FnOnce() -> T,
    ) -> Option<Arc<T>> {
        let same = |t: &Tensor| {
            t.shape() == f.shape()
                && t.as_slice::<f32>()
                    .is_ok_and(|s| s.as_ptr() == fs.as_ptr() && s.len() == fs.len())
        };
        let mut slot = self.packed.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((t, p)) = &*slot {
            if same(t) {
                return Some(p.clone());
            }
        }
        let addr = fs.as_ptr() as usize;
        if self.last.swap(addr, Ordering::Relaxed) != addr && !eager {
            return None;
        }
        cx.limits().check_alloc(len?, DType::F32).ok()?;
        let p = Arc::new(pack());
        // The GEMM reads only the packing from now on: a mapped filter's pages can go.
        f.release_mapped();
        *slot = Some((f.clone(), p.clone()));
        Some(p)
    }
}

impl Conv {
    fn build(cx: &mut BuildCtx<'_>, depthwise: bool) -> Result<Box<dyn Op>, OpError> {
        nhwc(cx)?;
        let dil = cx.attr_list_i64("dilations");
        Ok(Box::new(Conv {
            depthwise,
            strides: spatial("strides", &cx.attr_list_i64("strides"))?,
            dilations: if dil.is_empty() {
                (1, 1)
            } else {
                spatial("dilations", &dil)?
            },
            pad: padding(cx)?,
            cache: FilterCache::default(),
            wino: FilterCache::default(),
        }))
    }
}

impl Op for Conv {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        Ok(tensors![self.eval_epilogue(
            cx,
            inputs,
            &Epilogue::default(),
        )?])
    }

    fn epilogue_producer(&self) -> Option<&dyn EpilogueProducer> {
        Some(self)
    }

    fn profile_detail(&self, inputs: &[Tensor]) -> Option<String> {
        let [x, f] = inputs else { return None };
        let (xs, fs) = (x.shape(), f.shape());
        if xs.len() != 4 || fs.len() != 4 {
            return None;
        }
        // A depthwise filter is `[kh, kw, in, multiplier]`: output channels `in · multiplier`.
        let (kind, cout) = if self.depthwise {
            ("dw", fs[2].saturating_mul(fs[3]))
        } else {
            ("conv", fs[3])
        };
        Some(format!(
            "{kind} {}x{} s{} {}x{}x{}->{cout}",
            fs[0], fs[1], self.strides.0, xs[1], xs[2], xs[3]
        ))
    }
}

impl EpilogueProducer for Conv {
    fn conv_spec(&self, cx: &EvalCtx<'_>, x: &[usize], f: &Tensor) -> Option<ConvSpec> {
        let fs = f.as_slice::<f32>().ok()?;
        let fshape = f.shape();
        if fshape.len() != 4
            || x.len() != 4
            || fshape[2] != x[3]
            || fshape[0] == 0
            || fshape[1] == 0
        {
            return None;
        }
        let geom = window(
            x,
            (fshape[0], fshape[1]),
            self.strides,
            self.dilations,
            self.pad,
        )
        .ok()?;
        let cout = if self.depthwise {
            x[3].checked_mul(fshape[3])?
        } else {
            fshape[3]
        };
        let packed = (!self.depthwise && cout > 0 && conv2d_uses_gemm(&geom))
            .then(|| {
                let kdim = fs.len() / cout;
                let len = PackedB::packed_len(Isa::best(), kdim, cout);
                self.cache
                    .get(cx, f, fs, len, true, || pack_conv_filter(fs, kdim, cout))
            })
            .flatten();
        Some(ConvSpec {
            geom,
            depthwise: self.depthwise,
            cout,
            packed,
        })
    }

    fn out_channels(&self, inputs: &[Tensor]) -> Option<usize> {
        let [x, f] = inputs else { return None };
        let fs = f.shape();
        if x.dtype() != DType::F32 || f.dtype() != DType::F32 || x.rank() != 4 || fs.len() != 4 {
            return None;
        }
        if self.depthwise {
            fs[2].checked_mul(fs[3])
        } else {
            Some(fs[3])
        }
    }

    fn eval_epilogue(
        &self,
        cx: &mut EvalCtx<'_>,
        inputs: Tensors,
        ep: &Epilogue<'_>,
    ) -> Result<Tensor, OpError> {
        let [x, f] = take_inputs(inputs)?;
        let xs = x
            .as_slice::<f32>()
            .map_err(|_| OpError::dtype(0, "float32", x.dtype()))?;
        let fs = f
            .as_slice::<f32>()
            .map_err(|_| OpError::dtype(1, "float32", f.dtype()))?;
        let fshape = f.shape();
        if fshape.len() != 4 || x.rank() != 4 {
            return Err(OpError::invalid(format!(
                "input and filter must be 4-dimensional: {:?} {fshape:?}",
                x.shape()
            )));
        }
        let cin = x.shape()[3];
        if fshape[2] != cin {
            return Err(
                if !self.depthwise && fshape[2] > 0 && cin % fshape[2] == 0 {
                    OpError::Unimplemented("grouped Conv2D (input depth != filter depth)".into())
                } else {
                    OpError::invalid(format!(
                        "input depth must be evenly divisible by filter depth: {cin} vs {}",
                        fshape[2]
                    ))
                },
            );
        }
        if fshape[0] == 0 || fshape[1] == 0 {
            return Err(OpError::invalid("filter spatial size must be positive"));
        }
        let g = window(
            x.shape(),
            (fshape[0], fshape[1]),
            self.strides,
            self.dilations,
            self.pad,
        )?;
        let cout = if self.depthwise {
            cin.checked_mul(fshape[3])
                .ok_or_else(|| OpError::invalid("output depth overflows"))?
        } else {
            fshape[3]
        };
        let (shape, mut out) = alloc_out(cx, &g, cout)?;
        if self.depthwise {
            depthwise_conv2d_nhwc_f32_ep(Isa::best(), xs, fs, fshape[3], &g, ep, &mut out);
        } else if !(conv2d_uses_winograd(&g, cout)
            && self.winograd(cx, xs, &f, fs, &g, cout, ep, &mut out))
        {
            let packed = (cout > 0 && conv2d_uses_gemm(&g))
                .then(|| {
                    let kdim = fs.len() / cout.max(1);
                    let len = PackedB::packed_len(Isa::best(), kdim, cout);
                    self.cache
                        .get(cx, &f, fs, len, false, || pack_conv_filter(fs, kdim, cout))
                })
                .flatten();
            conv2d_nhwc_f32_packed(xs, fs, packed.as_deref(), cout, &g, ep, &mut out);
        }
        Ok(Tensor::from_vec(&shape, out)?)
    }
}

impl Conv {
    /// The convolution by Winograd F(2×2, 3×3) with the cached filter transform (transformed
    /// for this call until the cache holds it, so every call takes the same path). False,
    /// leaving `out` untouched, if the transform would exceed the memory limit: the direct
    /// path runs instead.
    #[allow(clippy::too_many_arguments)]
    fn winograd(
        &self,
        cx: &EvalCtx<'_>,
        x: &[f32],
        f: &Tensor,
        fs: &[f32],
        g: &Window2d,
        cout: usize,
        ep: &Epilogue<'_>,
        out: &mut [f32],
    ) -> bool {
        let cin = g.input[3];
        let len = WinogradFilter::packed_len(cin, cout);
        if len.is_none_or(|l| cx.limits().check_alloc(l, DType::F32).is_err()) {
            return false;
        }
        let cached = self.wino.get(cx, f, fs, len, false, || {
            pack_winograd_filter(fs, cin, cout)
        });
        let owned;
        let wf = match cached.as_deref() {
            Some(w) => w,
            None => {
                owned = pack_winograd_filter(fs, cin, cout);
                &owned
            }
        };
        conv2d_winograd_f32(x, wf, g, ep, out);
        true
    }
}

/// The `Conv2D` / `DepthwiseConv2dNative` of `node`, whose padding must be `VALID`, rebuilt
/// with explicit zero padding `[(top, bottom), (left, right)]`: the planner folds a `Pad` that
/// only this convolution reads into it (`graph::fuse::fold_pads`; Keras' `ZeroPadding2D` before
/// a strided convolution). A VALID window over the zero-padded input and the explicit window
/// over the input read the same values, so only the `Pad` copy goes away. `None` unless the
/// node is an NHWC VALID convolution with well-formed strides and dilations.
pub(crate) fn conv_padded(
    node: &crate::proto::NodeDef,
    pads: [(usize, usize); 2],
) -> Option<Box<dyn Op>> {
    use crate::proto::attr_value::Value;
    let attr = |k: &str| node.attr.get(k).and_then(|a| a.value.as_ref());
    let list = |k: &str| match attr(k) {
        Some(Value::List(l)) => Some(l.i.clone()),
        _ => None,
    };
    if !matches!(node.op.as_str(), "Conv2D" | "DepthwiseConv2dNative") {
        return None;
    }
    if !matches!(attr("padding"), Some(Value::S(p)) if p.as_slice() == b"VALID") {
        return None;
    }
    match attr("data_format") {
        None => {}
        Some(Value::S(f)) if f.as_slice() == b"NHWC" => {}
        _ => return None,
    }
    let dil = list("dilations").unwrap_or_default();
    Some(Box::new(Conv {
        depthwise: node.op == "DepthwiseConv2dNative",
        strides: spatial("strides", &list("strides")?).ok()?,
        dilations: if dil.is_empty() {
            (1, 1)
        } else {
            spatial("dilations", &dil).ok()?
        },
        pad: Padding::Explicit(pads),
        cache: FilterCache::default(),
        wino: FilterCache::default(),
    }))
}

/// `MaxPool`, `MaxPoolV2` (ksize and strides as inputs 1 and 2), `AvgPool`.
#[derive(Debug)]
struct Pool {
    max: bool,
    /// `(ksize, strides)` from attributes; `None` for `MaxPoolV2`.
    window: Option<((usize, usize), (usize, usize))>,
    pad: Padding,
}

impl Pool {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        nhwc(cx)?;
        let pad = padding(cx)?;
        if cx.op == "AvgPool" && matches!(pad, Padding::Explicit(_)) {
            return Err(attr_err("padding", "AvgPool takes SAME or VALID"));
        }
        let window = if cx.op == "MaxPoolV2" {
            None
        } else {
            Some((
                spatial("ksize", &cx.attr_list_i64("ksize"))?,
                spatial("strides", &cx.attr_list_i64("strides"))?,
            ))
        };
        Ok(Box::new(Pool {
            max: cx.op != "AvgPool",
            window,
            pad,
        }))
    }
}

impl Op for Pool {
    fn eval(&self, cx: &mut EvalCtx<'_>, mut inputs: Tensors) -> Result<Tensors, OpError> {
        let (k, s) = match self.window {
            Some(w) => w,
            None => {
                let [x, k, s] = take_inputs(inputs)?;
                let w = (
                    spatial("ksize", &k.to_i64_vec()?)?,
                    spatial("strides", &s.to_i64_vec()?)?,
                );
                inputs = tensors![x];
                w
            }
        };
        let [x] = take_inputs(inputs)?;
        let xs = x
            .as_slice::<f32>()
            .map_err(|_| OpError::dtype(0, "float32", x.dtype()))?;
        let g = window(x.shape(), k, s, (1, 1), self.pad)?;
        let (shape, mut out) = alloc_out(cx, &g, g.input[3])?;
        if self.max {
            max_pool_nhwc_f32(xs, &g, &mut out);
        } else {
            avg_pool_nhwc_f32(xs, &g, &mut out);
        }
        Ok(tensors![Tensor::from_vec(&shape, out)?])
    }
}

/// `FusedBatchNorm`, `V2`, `V3` with `is_training = false`:
/// `y = (x - mean) * (rsqrt(variance + epsilon) * scale) + offset` per channel, in TF's
/// operation order. Outputs `y, mean, variance` then reserve spaces (TF's CPU kernel leaves
/// them unspecified; here they repeat mean and variance, and V3's third is an empty scalar).
#[derive(Debug)]
struct FusedBatchNorm {
    epsilon: f32,
    channels_last: bool,
    v3: bool,
}

impl FusedBatchNorm {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        if cx.attr_opt_bool("is_training").unwrap_or(true) {
            return Err(OpError::Unimplemented(format!(
                "{} with is_training=true (batch statistics)",
                cx.op
            )));
        }
        let format = cx
            .attr_opt_str("data_format")
            .unwrap_or_else(|| "NHWC".into());
        let channels_last = match format.as_str() {
            "NHWC" | "NDHWC" => true,
            "NCHW" | "NCDHW" => false,
            f => return Err(attr_err("data_format", format!("unknown format {f:?}"))),
        };
        Ok(Box::new(FusedBatchNorm {
            epsilon: cx.attr_opt_f32("epsilon").unwrap_or(1e-4),
            channels_last,
            v3: cx.op == "FusedBatchNormV3",
        }))
    }
}

impl Op for FusedBatchNorm {
    fn eval(&self, _cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [x, scale, offset, mean, var] = take_inputs(inputs)?;
        let shape = x.shape().to_vec();
        if shape.len() != 4 && shape.len() != 5 {
            return Err(OpError::invalid(format!(
                "input must be 4 or 5-dimensional: {shape:?}"
            )));
        }
        let c = if self.channels_last {
            shape[shape.len() - 1]
        } else {
            shape[1]
        };
        let params = [&scale, &offset, &mean, &var];
        let mut p: Vec<&[f32]> = Vec::with_capacity(4);
        for (i, t) in params.iter().enumerate() {
            let s = t
                .as_slice::<f32>()
                .map_err(|_| OpError::dtype(i + 1, "float32", t.dtype()))?;
            if s.len() != c || t.rank() != 1 {
                return Err(OpError::invalid(format!(
                    "input {} must be a vector of {c} channels, got shape {:?}",
                    i + 1,
                    t.shape()
                )));
            }
            p.push(s);
        }
        let factor: Vec<f32> = (0..c)
            .map(|j| (1.0 / (p[3][j] + self.epsilon).sqrt()) * p[0][j])
            .collect();
        let inner: usize = if self.channels_last {
            1
        } else {
            shape[2..].iter().product()
        };
        let mut y = x.into_vec::<f32>().map_err(|e| match e {
            crate::tensor::TensorError::DType { got, .. } => OpError::dtype(0, "float32", got),
            e => e.into(),
        })?;
        for (i, v) in y.iter_mut().enumerate() {
            let j = (i / inner) % c.max(1);
            *v = (*v - p[2][j]) * factor[j] + p[1][j];
        }
        let mut out = vec![
            Tensor::from_vec(&shape, y)?,
            mean.clone(),
            var.clone(),
            mean,
            var,
        ];
        if self.v3 {
            out.push(Tensor::scalar(0f32));
        }
        Ok(out.into())
    }
}

#[cfg(test)]
mod tests {
    //! Values from TF 2.21: `x = np.arange(50, dtype=np.float32).reshape(1,5,5,2)*0.1-2.0`,
    //! `f = np.arange(18, dtype=np.float32).reshape(3,3,2,1)*0.05-0.4`, `R = tf.raw_ops`.
    use super::super::array::tests::{run, run1, t, A};
    use crate::tensor::Tensor;

    fn x() -> Tensor {
        t(
            &[1, 5, 5, 2],
            (0..50).map(|i| i as f32 * 0.1 - 2.0).collect(),
        )
    }
    fn f() -> Tensor {
        t(
            &[3, 3, 2, 1],
            (0..18).map(|i| i as f32 * 0.05 - 0.4).collect(),
        )
    }
    fn close(got: &Tensor, shape: &[usize], want: &[f32]) {
        assert_eq!(got.shape(), shape);
        let g = got.as_slice::<f32>().unwrap();
        for (a, b) in g.iter().zip(want) {
            assert!((a - b).abs() < 1e-4, "{g:?} vs {want:?}");
        }
        assert_eq!(g.len(), want.len());
    }

    #[test]
    fn conv2d_padding_modes() {
        // R.Conv2D(input=x, filter=f, strides=[1,2,2,1], padding="SAME")
        let s = [("strides", A::L(&[1, 2, 2, 1])), ("padding", A::S("SAME"))];
        let o = run1("Conv2D", &s, vec![x(), f()]);
        let want = [-1.78, -1.13, -0.1, 2.61, 4.065, 2.25, -0.34, -1.85, -2.5];
        close(&o, &[1, 3, 3, 1], &want);
        // R.Conv2D(..., strides=[1,1,1,1], padding="VALID", dilations=[1,2,2,1])
        let a = [
            ("strides", A::L(&[1, 1, 1, 1])),
            ("padding", A::S("VALID")),
            ("dilations", A::L(&[1, 2, 2, 1])),
        ];
        close(&run1("Conv2D", &a, vec![x(), f()]), &[1, 1, 1, 1], &[7.905]);
        // R.Conv2D(..., strides=[1,3,3,1], padding="EXPLICIT",
        //          explicit_paddings=[0,0,1,2,0,1,0,0])
        let a = [
            ("strides", A::L(&[1, 3, 3, 1])),
            ("padding", A::S("EXPLICIT")),
            ("explicit_paddings", A::L(&[0, 0, 1, 2, 0, 1, 0, 0])),
        ];
        let o = run1("Conv2D", &a, vec![x(), f()]);
        close(&o, &[1, 2, 2, 1], &[-1.55, -0.1, 4.425, 1.95]);
        let nchw = [
            ("strides", A::L(&[1, 1, 1, 1])),
            ("padding", A::S("SAME")),
            ("data_format", A::S("NCHW")),
        ];
        let e = run("Conv2D", &nchw, vec![x(), f()]).unwrap_err();
        assert!(matches!(e, crate::ops::OpError::Unimplemented(_)), "{e}");
    }

    #[test]
    fn conv2d_filter_cache_follows_the_filter_buffer() {
        use super::{Conv, FilterCache, Padding};
        use crate::ops::{EvalCtx, Op, Session};
        let conv = || Conv {
            depthwise: false,
            strides: (1, 1),
            dilations: (1, 1),
            pad: Padding::Same,
            cache: FilterCache::default(),
            wino: FilterCache::default(),
        };
        let session = Session::new(".".into(), None, Default::default());
        let mut cx = EvalCtx::new(&session);
        let val = |n: usize, k: f32| (0..n).map(|i| ((i * 37) % 23) as f32 * k - 0.5).collect();
        let x = t(&[1, 6, 7, 20], val(6 * 7 * 20, 0.05));
        let f1 = t(&[3, 3, 20, 24], val(9 * 20 * 24, 0.01));
        let f2 = t(&[3, 3, 20, 24], val(9 * 20 * 24, -0.02));
        let mut fresh = |f: &Tensor| {
            conv()
                .eval(&mut cx, tensors![x.clone(), f.clone()])
                .unwrap()[0]
                .as_slice::<f32>()
                .unwrap()
                .to_vec()
        };
        let (want1, want2) = (fresh(&f1), fresh(&f2));
        assert_ne!(want1, want2);
        // One op: the filter is packed on its second call and reused on the third; a new
        // filter buffer must not hit the old packing.
        let op = conv();
        for (f, want) in [(&f1, &want1), (&f1, &want1), (&f1, &want1), (&f2, &want2)] {
            let got = op.eval(&mut cx, tensors![x.clone(), f.clone()]).unwrap();
            assert_eq!(got[0].as_slice::<f32>().unwrap(), want.as_slice());
        }
        assert!(op.cache.packed.lock().unwrap().is_some());
    }

    #[test]
    fn conv2d_winograd_path_is_cached_and_matches_the_direct_kernel() {
        use super::super::kernels::conv::{conv2d_nhwc_f32, conv2d_uses_winograd};
        use super::{Conv, FilterCache, Padding, Window2d};
        use crate::ops::{EvalCtx, Op, Session};
        let conv = |pad| Conv {
            depthwise: false,
            strides: (1, 1),
            dilations: (1, 1),
            pad,
            cache: FilterCache::default(),
            wino: FilterCache::default(),
        };
        let session = Session::new(".".into(), None, Default::default());
        let mut cx = EvalCtx::new(&session);
        let val = |n: usize, k: f32| (0..n).map(|i| ((i * 37) % 23) as f32 * k - 0.5).collect();
        let (h, w, cin, cout) = (15, 13, 24, 20);
        let x = t(&[1, h, w, cin], val(h * w * cin, 0.05));
        let f = t(&[3, 3, cin, cout], val(9 * cin * cout, 0.01));
        for (pad, pads, out) in [
            (Padding::Same, (1, 1), (h, w)),
            (Padding::Valid, (0, 0), (h - 2, w - 2)),
        ] {
            let g = Window2d {
                input: [1, h, w, cin],
                kernel: (3, 3),
                strides: (1, 1),
                dilations: (1, 1),
                pads,
                output: out,
            };
            let mut direct = vec![0.0f32; out.0 * out.1 * cout];
            conv2d_nhwc_f32(
                x.as_slice::<f32>().unwrap(),
                f.as_slice::<f32>().unwrap(),
                cout,
                &g,
                &mut direct,
            );
            // Calls 1 and 2 transform the filter for the call, call 3 reads the cached
            // transform: every call the same path and the same bits.
            let op = conv(pad);
            let mut first: Option<Vec<f32>> = None;
            for _ in 0..3 {
                let got = op.eval(&mut cx, tensors![x.clone(), f.clone()]).unwrap()[0]
                    .as_slice::<f32>()
                    .unwrap()
                    .to_vec();
                for (a, b) in got.iter().zip(&direct) {
                    assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
                }
                match &first {
                    Some(want) => assert_eq!(&got, want),
                    None => first = Some(got),
                }
            }
            let winograd = conv2d_uses_winograd(&g, cout);
            assert_eq!(op.wino.packed.lock().unwrap().is_some(), winograd);
            assert_eq!(op.cache.packed.lock().unwrap().is_some(), !winograd);
        }
    }

    #[test]
    fn depthwise_conv() {
        // fd = concat([f, -f*0.5], axis=3); R.DepthwiseConv2dNative(input=x[:,:3,:3,:],
        //   filter=fd, strides=[1,1,1,1], padding="SAME")
        let fv = f().into_vec::<f32>().unwrap();
        let fd: Vec<f32> = fv.iter().flat_map(|&v| [v, -0.5 * v]).collect();
        let xv = x().into_vec::<f32>().unwrap();
        let xs: Vec<f32> = (0..3)
            .flat_map(|r| xv[r * 10..r * 10 + 6].to_vec())
            .collect();
        let a = [("strides", A::L(&[1, 1, 1, 1])), ("padding", A::S("SAME"))];
        let o = run1(
            "DepthwiseConv2dNative",
            &a,
            vec![t(&[1, 3, 3, 2], xs), t(&[3, 3, 2, 2], fd)],
        );
        let want = [
            -0.8, 0.4, -0.98, 0.49, -0.64, 0.32, -0.91, 0.455, -0.16, 0.08, -0.34, 0.17, 0.96,
            -0.48, 0.75, -0.375, 1.92, -0.96, 1.605, -0.8025, 1.44, -0.72, 1.23, -0.615, 0.48,
            -0.24, 0.38, -0.19, 0.8, -0.4, 0.65, -0.325, 0.48, -0.24, 0.38, -0.19,
        ];
        close(&o, &[1, 3, 3, 4], &want);
    }

    #[test]
    fn pools() {
        let a = [
            ("ksize", A::L(&[1, 3, 3, 1])),
            ("strides", A::L(&[1, 2, 2, 1])),
            ("padding", A::S("SAME")),
        ];
        // R.MaxPool(input=x, ksize=[1,3,3,1], strides=[1,2,2,1], padding="SAME")
        let want = [
            -0.8, -0.7, -0.4, -0.3, -0.2, -0.1, 1.2, 1.3, 1.6, 1.7, 1.8, 1.9, 2.2, 2.3, 2.6, 2.7,
            2.8, 2.9,
        ];
        close(&run1("MaxPool", &a, vec![x()]), &[1, 3, 3, 2], &want);
        // R.AvgPool(value=x, ...same...): padded cells are left out of the average.
        let want = [
            -1.4, -1.3, -1.1, -1.0, -0.8, -0.7, 0.1, 0.2, 0.4, 0.5, 0.7, 0.8, 1.6, 1.7, 1.9, 2.0,
            2.2, 2.3,
        ];
        close(&run1("AvgPool", &a, vec![x()]), &[1, 3, 3, 2], &want);
        // R.AvgPool(value=x, ksize=[1,2,2,1], strides=[1,2,2,1], padding="VALID")
        let v = [("padding", A::S("VALID"))];
        let ins = vec![
            x(),
            Tensor::vector(vec![1i32, 2, 2, 1]),
            Tensor::vector(vec![1i32, 2, 2, 1]),
        ];
        let want = [-1.4, -1.3, -1.0, -0.9, 0.6, 0.7, 1.0, 1.1];
        let o = run1("MaxPoolV2", &v, ins);
        assert_eq!(o.shape(), [1, 2, 2, 2]);
        let a = [
            ("ksize", A::L(&[1, 2, 2, 1])),
            ("strides", A::L(&[1, 2, 2, 1])),
            ("padding", A::S("VALID")),
        ];
        close(&run1("AvgPool", &a, vec![x()]), &[1, 2, 2, 2], &want);
    }

    #[test]
    fn fused_batch_norm_inference() {
        // R.FusedBatchNormV3(x=x[:,:1,:2,:], scale=[2.0,0.5], offset=[0.1,-0.1],
        //   mean=[-1.0,0.5], variance=[4.0,0.25], epsilon=0.001, is_training=False)
        let a = [("epsilon", A::F(0.001)), ("is_training", A::B(false))];
        let v = |x: [f32; 2]| Tensor::vector(x.to_vec());
        let ins = vec![
            t(&[1, 1, 2, 2], vec![-2.0f32, -1.9, -1.8, -1.7]),
            v([2.0, 0.5]),
            v([0.1, -0.1]),
            v([-1.0, 0.5]),
            v([4.0, 0.25]),
        ];
        let o = run("FusedBatchNormV3", &a, ins).unwrap();
        assert_eq!(o.len(), 6);
        close(
            &o[0],
            &[1, 1, 2, 2],
            &[-0.89988, -2.49521, -0.6999, -2.29561],
        );
        close(&o[1], &[2], &[-1.0, 0.5]);
        let train = [("is_training", A::B(true))];
        assert!(run("FusedBatchNorm", &train, vec![]).is_err());
    }
}

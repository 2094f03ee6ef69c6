//! An inverted-residual block as one op: `expand 1×1 → depthwise k×k → project 1×1 (+
//! residual)`, each a [`FusedChain`] (convolution + per-channel epilogue), built by the
//! planner (`graph::fuse::block`) when each chain's output is read only by the next and the
//! filters are constants. MobileNetV2 (and EfficientNet's `expand → depthwise`, whose
//! squeeze-and-excitation needs the whole depthwise output) spend most of their time moving
//! the 6×-channel expanded tensor through memory; here `tfhub_kernels::conv::
//! inverted_residual_f32` computes the block in bands of rows so those tensors stay in
//! cache, bit-identical to the chains run one after the other.
//!
//! Per call the op checks that the fast path applies (`f32`, the 1×1 convolutions unit-stride
//! and unpadded with packed filters, a multiplier-1 depthwise, every chain's tail a
//! per-channel epilogue, the project's optionally ending in an `Add` of a tensor of the
//! output's shape); otherwise, or for any error, the chains run one after the other, so
//! results and errors are those of the unfused graph.

use super::{FastEpilogue, FusedChain, TailKind};
use crate::ops::kernels::conv::{
    inverted_residual_f32, InvertedResidual as Block, Pointwise, Window2d,
};
use crate::ops::kernels::epilogue::Epilogue;
use crate::ops::kernels::Isa;
use crate::ops::{EvalCtx, Op, OpError, Tensors};
use crate::tensor::{DType, Tensor};

/// The fused block. Inputs: the expand chain's (or, without one, the depthwise chain's), then
/// the depthwise chain's and the project chain's after their first (the chained value).
#[derive(Debug)]
pub(crate) struct InvertedResidual {
    expand: Option<FusedChain>,
    dw: FusedChain,
    project: Option<FusedChain>,
    /// Inputs of each chain, the chained value included.
    n_expand: usize,
    n_dw: usize,
    n_project: usize,
    /// The depthwise stride (for the profile).
    dw_stride: usize,
}

/// A chain's epilogue covering its whole tail (or all but a final residual `Add`, whose full
/// operand is `residual`).
pub(super) struct Parts<'a> {
    pub(super) fe: FastEpilogue<'a>,
    pub(super) residual: Option<&'a Tensor>,
}

impl InvertedResidual {
    /// Chains `expand` (if any, taking `n_expand` inputs), `dw` (`n_dw`) and `project` (if
    /// any, `n_project`); at least one of `expand` and `project` is present.
    pub(crate) fn new(
        expand: Option<(FusedChain, usize)>,
        dw: (FusedChain, usize),
        project: Option<(FusedChain, usize)>,
        dw_stride: usize,
    ) -> InvertedResidual {
        let (expand, n_expand) = expand.map_or((None, 0), |(c, n)| (Some(c), n));
        let (project, n_project) = project.map_or((None, 0), |(c, n)| (Some(c), n));
        InvertedResidual {
            expand,
            dw: dw.0,
            project,
            n_expand,
            n_dw: dw.1,
            n_project,
            dw_stride,
        }
    }

    /// `(expand inputs, depthwise inputs after the chained one, project inputs after it)`;
    /// the first is the depthwise chain's whole input list when there is no expand chain.
    fn split<'a>(
        &self,
        inputs: &'a [Tensor],
    ) -> Option<(&'a [Tensor], &'a [Tensor], &'a [Tensor])> {
        let first = if self.expand.is_some() {
            self.n_expand
        } else {
            self.n_dw
        };
        let dw_rest = if self.expand.is_some() {
            self.n_dw.checked_sub(1)?
        } else {
            0
        };
        let p_rest = self.n_project.saturating_sub(1);
        if inputs.len() != first + dw_rest + p_rest {
            return None;
        }
        let (a, rest) = inputs.split_at(first);
        let (b, c) = rest.split_at(dw_rest);
        Some((a, b, c))
    }

    /// The chains one after the other.
    fn eval_unfused(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensor, OpError> {
        let (a, b, c) = self.split(&inputs).ok_or(OpError::Arity {
            expected: self.n_expand + self.n_dw + self.n_project,
            got: inputs.len(),
        })?;
        let first = |outs: Tensors| {
            outs.into_iter()
                .next()
                .ok_or_else(|| OpError::invalid("fused block step returned no output"))
        };
        let mut x = match &self.expand {
            Some(e) => {
                let e_out = first(e.eval(cx, a.iter().cloned().collect::<Tensors>())?)?;
                let mut ins = tensors![e_out];
                ins.extend(b.iter().cloned());
                first(self.dw.eval(cx, ins)?)?
            }
            None => first(self.dw.eval(cx, a.iter().cloned().collect::<Tensors>())?)?,
        };
        if let Some(p) = &self.project {
            let mut ins = tensors![x];
            ins.extend(c.iter().cloned());
            x = first(p.eval(cx, ins)?)?;
        }
        Ok(x)
    }

    /// The whole tail of `chain` as an epilogue over `channels`, leaving a final residual
    /// `Add` of a full `out_shape` tensor when `residual_ok`; `factors` are the chain's
    /// batch-norm factors.
    pub(super) fn parts<'a>(
        chain: &FusedChain,
        sides: &'a [Tensor],
        factors: &'a [Vec<f32>],
        channels: usize,
        residual_ok: Option<&[usize]>,
    ) -> Option<Parts<'a>> {
        if sides.iter().any(|t| t.dtype() != DType::F32) {
            return None;
        }
        let fe = chain.epilogue(sides, factors, channels, 4)?;
        if fe.tails == chain.tail.len() {
            return Some(Parts { fe, residual: None });
        }
        let shape = residual_ok?;
        let last = chain.tail.last()?;
        if fe.tails + 1 != chain.tail.len() || !last.residual || last.kind != TailKind::Add {
            return None;
        }
        let r = sides.get(fe.sides)?;
        (fe.sides + 1 == sides.len() && r.shape() == shape).then_some(Parts {
            fe,
            residual: Some(r),
        })
    }

    /// The fused path, or `None` when it does not apply.
    fn eval_fused(&self, cx: &EvalCtx<'_>, inputs: &[Tensor]) -> Option<Tensor> {
        let (a, b, c) = self.split(inputs)?;
        let x = a.first()?;
        let xs = x.as_slice::<f32>().ok()?;
        let xshape = x.shape();
        if xshape.len() != 4 {
            return None;
        }
        let [n, h, w, _] = <[usize; 4]>::try_from(xshape).ok()?;
        let spec = |chain: &FusedChain, shape: &[usize], f: &Tensor| {
            chain.head.epilogue_producer()?.conv_spec(cx, shape, f)
        };
        let pointwise = |s: &super::ConvSpec| {
            let g = &s.geom;
            !s.depthwise
                && g.kernel == (1, 1)
                && g.strides == (1, 1)
                && g.pads == (0, 0)
                && g.output == (g.input[1], g.input[2])
        };
        // Expand: `x → [n, h, w, hidden]`.
        let (e_spec, e_sides, dw_in, dw_filter, dw_sides) = match &self.expand {
            Some(e) => {
                let s = spec(e, xshape, a.get(1)?)?;
                if !pointwise(&s) {
                    return None;
                }
                let sides = a.get(e.head_inputs..)?;
                (Some(s), sides, [n, h, w, 0], b.first()?, b.get(1..)?)
            }
            None => (None, &a[..0], [n, h, w, 0], a.get(1)?, a.get(2..)?),
        };
        let hidden = e_spec.as_ref().map_or(xshape[3], |s| s.cout);
        let dw_in = [dw_in[0], dw_in[1], dw_in[2], hidden];
        let d_spec = spec(&self.dw, &dw_in, dw_filter)?;
        if !d_spec.depthwise || d_spec.cout != hidden || dw_filter.shape()[3] != 1 {
            return None;
        }
        let g: Window2d = d_spec.geom;
        let (oh, ow) = g.output;
        let p_spec = match &self.project {
            Some(p) => {
                let s = spec(p, &[n, oh, ow, hidden], c.first()?)?;
                if !pointwise(&s) {
                    return None;
                }
                Some(s)
            }
            None => None,
        };
        let cout = p_spec.as_ref().map_or(hidden, |s| s.cout);
        let out_shape = [n, oh, ow, cout];
        // Small maps with wide filters (MobileNetV2's 7×7×960): each band would stream the
        // 1×1 filters from L3 again for little activation traffic saved; the separate
        // convolutions block their GEMMs over the whole batch instead.
        let weights = xshape[3]
            .saturating_mul(hidden)
            .saturating_add(hidden.saturating_mul(cout));
        if h.saturating_mul(w).saturating_mul(hidden) < weights.saturating_mul(2) {
            return None;
        }
        // Epilogues.
        let e_f = match &self.expand {
            Some(e) => e.batch_norm_factors(e_sides, hidden, 4)?,
            None => Vec::new(),
        };
        let d_f = self.dw.batch_norm_factors(dw_sides, hidden, 4)?;
        let p_sides = c.get(1..).unwrap_or(&[]);
        let p_f = match &self.project {
            Some(p) => p.batch_norm_factors(p_sides, cout, 4)?,
            None => Vec::new(),
        };
        let e_parts = match &self.expand {
            Some(e) => Some(Self::parts(e, e_sides, &e_f, hidden, None)?),
            None => None,
        };
        let d_parts = Self::parts(&self.dw, dw_sides, &d_f, hidden, None)?;
        let p_parts = match &self.project {
            Some(p) => Some(Self::parts(p, p_sides, &p_f, cout, Some(&out_shape))?),
            None => None,
        };
        let ep = |p: &Parts<'_>| Epilogue {
            ops: &[],
            act: p.fe.act,
        };
        let (e_ep, d_ep, p_ep) = (
            e_parts.as_ref().map(|p| Epilogue {
                ops: &p.fe.ops,
                ..ep(p)
            }),
            Epilogue {
                ops: &d_parts.fe.ops,
                ..ep(&d_parts)
            },
            p_parts.as_ref().map(|p| Epilogue {
                ops: &p.fe.ops,
                ..ep(p)
            }),
        );
        let residual = match p_parts.as_ref().and_then(|p| p.residual) {
            Some(r) => Some(r.as_slice::<f32>().ok()?),
            None => None,
        };
        let e_packed = match &e_spec {
            Some(s) => Some(s.packed.clone()?),
            None => None,
        };
        let p_packed = match &p_spec {
            Some(s) => Some(s.packed.clone()?),
            None => None,
        };
        let blk = Block {
            expand: e_packed
                .as_deref()
                .zip(e_ep.as_ref())
                .map(|(filter, ep)| Pointwise { filter, ep }),
            dw_filter: dw_filter.as_slice::<f32>().ok()?,
            dw_geom: g,
            dw_ep: &d_ep,
            project: p_packed
                .as_deref()
                .zip(p_ep.as_ref())
                .map(|(filter, ep)| Pointwise { filter, ep }),
            residual,
        };
        let len = crate::tensor::num_elements(&out_shape)?;
        cx.limits().check_alloc(len, DType::F32).ok()?;
        // The kernel writes every element.
        let mut out = crate::tensor::pool::f32_for_overwrite(len);
        inverted_residual_f32(Isa::best(), &blk, xs, &mut out);
        Tensor::from_vec(&out_shape, out).ok()
    }
}

impl Op for InvertedResidual {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        if let Some(t) = self.eval_fused(cx, &inputs) {
            return Ok(tensors![t]);
        }
        Ok(tensors![self.eval_unfused(cx, inputs)?])
    }

    fn profile_detail(&self, inputs: &[Tensor]) -> Option<String> {
        let (a, b, c) = self.split(inputs)?;
        let xs = a.first()?.shape();
        let dwf = if self.expand.is_some() {
            b.first()?
        } else {
            a.get(1)?
        };
        let hidden = dwf.shape().get(2)?;
        let cout = match &self.project {
            Some(_) => *c.first()?.shape().get(3)?,
            None => *hidden,
        };
        let k = dwf.shape().first()?;
        // A residual operand has the output's shape, not one value per channel.
        let res = match c.last() {
            Some(r) if self.project.is_some() && r.rank() == 4 && r.len() > cout => "+res",
            _ => "",
        };
        Some(format!(
            "block {}x{}x{}->{hidden} dw {k}x{k} s{} ->{cout}{res}",
            xs.get(1)?,
            xs.get(2)?,
            xs.get(3)?,
            self.dw_stride,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::super::Tail;
    use super::*;
    use crate::ops::array::tests::{attr_map, build_op, hashed_f32};
    use crate::ops::Session;
    use crate::proto::attr_value::Value;

    fn build(op: &str, attrs: &[(&str, Value)], n: usize) -> Box<dyn Op> {
        build_op(op, &attr_map(attrs), n).expect("builds")
    }

    fn tensor(shape: &[usize], seed: u32) -> Tensor {
        hashed_f32(shape, seed, 1.0)
    }

    fn list(v: &[i64]) -> Value {
        Value::List(Box::new(crate::proto::attr_value::ListValue {
            i: v.to_vec(),
            ..Default::default()
        }))
    }

    /// `head → Mul → AddV2 → (Relu6 | AddV2 residual | nothing)`.
    fn chain(head: Box<dyn Op>, last: Option<&str>) -> FusedChain {
        let step = |op: &str, kind, residual| Tail {
            op: build(op, &[], if op == "Relu6" { 1 } else { 2 }),
            kind,
            x_first: true,
            residual,
        };
        let mut tail = vec![
            step("Mul", TailKind::Mul, false),
            step("AddV2", TailKind::Add, true),
        ];
        match last {
            Some("Relu6") => tail.push(step("Relu6", TailKind::Relu6, false)),
            Some(_) => tail.push(step("AddV2", TailKind::Add, true)),
            None => {}
        }
        FusedChain::new(head, 2, tail)
    }

    #[test]
    fn block_op_is_bit_identical_to_its_chains() {
        let session = Session::new(".".into(), None, Default::default());
        let mut cx = EvalCtx::new(&session);
        let conv = || {
            build(
                "Conv2D",
                &[
                    ("strides", list(&[1, 1, 1, 1])),
                    ("padding", Value::S(b"VALID".to_vec())),
                ],
                2,
            )
        };
        // (h, w, cin, hidden, cout, k, stride, expand, residual)
        for (h, w, cin, hidden, cout, k, s, ex, res) in [
            (20usize, 18usize, 8, 48, 8, 3, 1i64, true, true),
            (21, 16, 8, 48, 16, 5, 2, true, false),
            (24, 20, 16, 16, 8, 3, 1, false, false),
        ] {
            let dw = build(
                "DepthwiseConv2dNative",
                &[
                    ("strides", list(&[1, s, s, 1])),
                    ("padding", Value::S(b"SAME".to_vec())),
                ],
                2,
            );
            let k = k as usize;
            let (oh, ow) = (h.div_ceil(s as usize), w.div_ceil(s as usize));
            let mut inputs = vec![tensor(&[2, h, w, cin], 1)];
            if ex {
                inputs.extend([
                    tensor(&[1, 1, cin, hidden], 2),
                    tensor(&[hidden], 3),
                    tensor(&[hidden], 4),
                ]);
            }
            inputs.extend([
                tensor(&[k, k, hidden, 1], 5),
                tensor(&[hidden], 6),
                tensor(&[hidden], 7),
                tensor(&[1, 1, hidden, cout], 8),
                tensor(&[cout], 9),
                tensor(&[cout], 10),
            ]);
            if res {
                inputs.push(tensor(&[2, oh, ow, cout], 11));
            }
            let op = InvertedResidual::new(
                ex.then(|| (chain(conv(), Some("Relu6")), 4)),
                (chain(dw, Some("Relu6")), 4),
                Some((chain(conv(), res.then_some("AddV2")), 4 + usize::from(res))),
                s as usize,
            );
            let fused = op.eval_fused(&cx, &inputs).expect("fast path applies");
            let plain = op
                .eval_unfused(&mut cx, Tensors::from_vec(inputs.clone()))
                .expect("unfused");
            assert_eq!(fused.shape(), [2, oh, ow, cout]);
            assert_eq!(fused.as_slice::<f32>().ok(), plain.as_slice::<f32>().ok());
            assert_eq!(
                op.eval(&mut cx, inputs.into()).expect("eval")[0].shape(),
                fused.shape()
            );
        }
    }
}

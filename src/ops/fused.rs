//! Producer + per-channel epilogue, built by the planner's fusion pass (`graph::fuse`).
//!
//! A chain `MatMul | Conv2D | DepthwiseConv2dNative → (BiasAdd | Add | AddV2 | Mul | Sub |
//! FusedBatchNorm*)* → (Relu | Relu6)?` whose intermediate values have no other reader becomes
//! one [`FusedChain`]
//! op, like TF grappler's remapper (`_FusedMatMul`, `_FusedConv2D`). It keeps every original
//! op: when the producer supports an epilogue, every side operand is an `f32` vector with one
//! value per output channel, and the output is `f32`, the per-channel steps and the activation
//! run on each output tile while it is in cache ([`tfhub_kernels::epilogue`], bit-identical
//! to separate passes); otherwise the original ops run one after the other, so semantics and
//! errors are exactly those of the unfused graph.
//!
//! An inference-mode batch norm is three per-channel steps, in the order of TF's CPU kernel
//! (`FusedBatchNorm<CPUDevice>` in core/kernels/fused_batch_norm_op.cc, also grappler's
//! `_FusedConv2D` output kernel): `((x - mean) * factor) + offset` with
//! `factor = rsqrt(variance + epsilon) * scale`, computed per call from the current
//! parameters (one value per channel, so its cost is negligible next to the producer).

use crate::ops::kernels::conv::Window2d;
use crate::ops::kernels::epilogue::{Activation, ChannelOp, Epilogue};
use crate::ops::kernels::gemm::PackedB;
use crate::ops::{EvalCtx, Op, OpError, Tensors};
use crate::tensor::{DType, Tensor};
use std::sync::Arc;

mod block;
mod se;
pub(crate) use block::InvertedResidual;
pub(crate) use se::ScaledProject;

/// A producer that can apply an [`Epilogue`] to its output 0 (channels = last dimension).
pub trait EpilogueProducer {
    /// Output channels for these inputs if the fused path applies (`f32` operands of valid
    /// rank), `None` to take the unfused path.
    fn out_channels(&self, inputs: &[Tensor]) -> Option<usize>;

    /// Evaluates with `ep` applied to output 0; returns output 0.
    fn eval_epilogue(
        &self,
        cx: &mut EvalCtx<'_>,
        inputs: Tensors,
        ep: &Epilogue<'_>,
    ) -> Result<Tensor, OpError>;

    /// For a convolution: its geometry over an `f32` input of shape `x` with this (`f32`)
    /// filter, and the filter's GEMM packing when it has one (packed now if need be: the
    /// planner builds blocks only on constant filters), so a fused block
    /// ([`InvertedResidual`]) can run it on parts of its input; `None` when the shapes are
    /// invalid (the op's own evaluation reports the error) or the producer is no convolution.
    fn conv_spec(&self, _cx: &EvalCtx<'_>, _x: &[usize], _filter: &Tensor) -> Option<ConvSpec> {
        None
    }
}

/// What [`EpilogueProducer::conv_spec`] tells about a convolution.
#[derive(Debug)]
pub struct ConvSpec {
    /// Geometry over the input (`input[3]` the input channels).
    pub geom: Window2d,
    /// Depthwise (filter `[kh, kw, cin, multiplier]`) rather than full (HWIO).
    pub depthwise: bool,
    /// Output channels.
    pub cout: usize,
    /// The packed filter of a full convolution that runs as a GEMM, once packed.
    pub packed: Option<Arc<PackedB>>,
}

/// What a tail op does to the chain value `x`, given its side operand `v`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum TailKind {
    /// `BiasAdd` (NHWC) or `Add`/`AddV2`: `x + v` (either operand order).
    Add,
    /// `Mul`: `x * v` (either operand order).
    Mul,
    /// `Sub` with `x` on the left: `x - v`.
    Sub,
    /// `Sub` with `x` on the right: `v - x`.
    SubFrom,
    /// `Relu` (no side operand; ends the chain).
    Relu,
    /// `Relu6` (no side operand; ends the chain).
    Relu6,
    /// `FusedBatchNorm*` in inference mode, channels last: four side operands (scale, offset,
    /// mean, variance), output 0 only.
    BatchNorm { epsilon: f32 },
    /// A [`Swish`] step (`x · Sigmoid(x)`, no side operand; ends the chain).
    Swish,
}

impl TailKind {
    /// Side operands the step takes besides the chain value.
    fn sides(self) -> usize {
        match self {
            TailKind::Relu | TailKind::Relu6 | TailKind::Swish => 0,
            TailKind::BatchNorm { .. } => 4,
            _ => 1,
        }
    }
}

/// `rsqrt(variance + epsilon) * scale` per channel, as the unfused `FusedBatchNorm` op (and
/// TF) computes it.
pub(crate) fn batch_norm_factor(scale: &[f32], variance: &[f32], epsilon: f32) -> Vec<f32> {
    scale
        .iter()
        .zip(variance)
        .map(|(&s, &v)| (1.0 / (v + epsilon).sqrt()) * s)
        .collect()
}

/// One op after the producer.
#[derive(Debug)]
pub(crate) struct Tail {
    /// The original op (run on the unfused path).
    pub op: Box<dyn Op>,
    pub kind: TailKind,
    /// For binary steps: whether the chain value is the op's first input.
    pub x_first: bool,
    /// `Add` / `AddV2` (not `BiasAdd`): a side operand of the output's full shape (a residual
    /// connection) is added in place after the producer.
    pub residual: bool,
}

/// The fused op: inputs are the producer's, then each tail step's side operands in order.
#[derive(Debug)]
pub(crate) struct FusedChain {
    head: Box<dyn Op>,
    head_inputs: usize,
    tail: Vec<Tail>,
    /// The fused steps' op types after the head (`+BiasAdd+Relu`), for the profile.
    label: String,
}

impl FusedChain {
    /// Fuses `head` (taking `head_inputs` inputs) with `tail`.
    pub(crate) fn new(head: Box<dyn Op>, head_inputs: usize, tail: Vec<Tail>) -> FusedChain {
        FusedChain {
            head,
            head_inputs,
            tail,
            label: String::new(),
        }
    }

    /// Names the tail steps for the profile (`+BiasAdd+Relu`).
    pub(crate) fn with_label(mut self, label: String) -> FusedChain {
        self.label = label;
        self
    }

    /// The batch-norm factors of every `BatchNorm` tail, in order, if its four side operands
    /// are `f32` vectors of `channels` values and the output has rank 4 (anything else takes
    /// the unfused path, which reports TF's error).
    fn batch_norm_factors(
        &self,
        sides: &[Tensor],
        channels: usize,
        out_rank: usize,
    ) -> Option<Vec<Vec<f32>>> {
        let mut factors = Vec::new();
        let mut at = 0;
        for t in &self.tail {
            let n = t.kind.sides();
            if let TailKind::BatchNorm { epsilon } = t.kind {
                let p = sides.get(at..at + 4)?;
                let vecs: Vec<&[f32]> = p
                    .iter()
                    .map(|t| {
                        (t.rank() == 1 && t.len() == channels)
                            .then(|| t.as_slice::<f32>().ok())
                            .flatten()
                    })
                    .collect::<Option<_>>()?;
                if out_rank != 4 {
                    return None;
                }
                factors.push(batch_norm_factor(vecs[0], vecs[3], epsilon));
            }
            at += n;
        }
        Some(factors)
    }

    /// The epilogue of the longest prefix of the tail whose side operands are `f32` vectors
    /// of `channels` values laid out along the last axis (`[C]` or `[1, .., 1, C]` of rank
    /// <= `out_rank`), and how many tail steps and side operands it covers; `factors` are
    /// [`Self::batch_norm_factors`]. The steps after the prefix (a residual `Add` of a full
    /// tensor, and what follows it) run after the producer ([`Self::run_tail`]).
    fn epilogue<'a>(
        &self,
        sides: &'a [Tensor],
        factors: &'a [Vec<f32>],
        channels: usize,
        out_rank: usize,
    ) -> Option<FastEpilogue<'a>> {
        let mut ops = Vec::new();
        let mut act = Activation::None;
        let mut factors = factors.iter();
        let vec = |t: &'a Tensor| -> Option<&'a [f32]> {
            let s = t.shape();
            let fits = !s.is_empty()
                && s.len() <= out_rank
                && s[s.len() - 1] == channels
                && s[..s.len() - 1].iter().all(|&d| d == 1);
            if fits {
                t.as_slice::<f32>().ok()
            } else {
                None
            }
        };
        let (mut tails, mut at) = (0, 0);
        for t in &self.tail {
            match t.kind {
                TailKind::Relu => act = Activation::Relu,
                TailKind::Relu6 => act = Activation::Relu6,
                TailKind::Swish => act = Activation::Swish,
                TailKind::BatchNorm { .. } => {
                    let p = sides.get(at..at + 4)?;
                    let (Some(mean), Some(offset)) = (vec(&p[2]), vec(&p[1])) else {
                        break;
                    };
                    ops.push(ChannelOp::Sub(mean));
                    ops.push(ChannelOp::Mul(factors.next()?));
                    ops.push(ChannelOp::Add(offset));
                }
                kind => {
                    let Some(v) = vec(sides.get(at)?) else { break };
                    ops.push(match kind {
                        TailKind::Add => ChannelOp::Add(v),
                        TailKind::Mul => ChannelOp::Mul(v),
                        TailKind::Sub => ChannelOp::Sub(v),
                        _ => ChannelOp::SubFrom(v),
                    });
                }
            }
            tails += 1;
            at += t.kind.sides();
        }
        Some(FastEpilogue {
            ops,
            act,
            tails,
            sides: at,
        })
    }

    /// Runs `tail` on `x`, taking side operands from `sides`: each step's original op, except
    /// an `Add`/`AddV2` of an `f32` operand of exactly `x`'s shape (a residual connection),
    /// which adds in place (the same rounding as the op).
    fn run_tail(
        cx: &mut EvalCtx<'_>,
        mut x: Tensor,
        tail: &[Tail],
        sides: Vec<Tensor>,
    ) -> Result<Tensor, OpError> {
        let mut sides = sides.into_iter();
        for t in tail {
            let ins = match t.kind {
                TailKind::Relu | TailKind::Relu6 | TailKind::Swish => vec![x],
                TailKind::BatchNorm { .. } => {
                    let mut ins = vec![x];
                    for _ in 0..4 {
                        ins.push(sides.next().ok_or_else(|| {
                            OpError::invalid("fused batch norm is missing an operand")
                        })?);
                    }
                    ins
                }
                _ => {
                    let v = sides
                        .next()
                        .ok_or_else(|| OpError::invalid("fused chain is missing an operand"))?;
                    if t.residual && t.kind == TailKind::Add && add_in_place(&mut x, &v) {
                        continue;
                    }
                    if t.x_first {
                        vec![x, v]
                    } else {
                        vec![v, x]
                    }
                }
            };
            let mut outs = t.op.eval(cx, ins.into())?;
            if outs.is_empty() {
                return Err(OpError::invalid("fused step returned no output"));
            }
            x = outs.swap_remove(0);
        }
        Ok(x)
    }

    /// The original ops one after the other.
    fn eval_unfused(&self, cx: &mut EvalCtx<'_>, mut inputs: Tensors) -> Result<Tensors, OpError> {
        let sides: Vec<Tensor> = inputs.drain(self.head_inputs..).collect();
        let mut outs = self.head.eval(cx, inputs)?;
        if outs.is_empty() {
            return Err(OpError::invalid("fused producer returned no output"));
        }
        let x = outs.swap_remove(0);
        Ok(tensors![Self::run_tail(cx, x, &self.tail, sides)?])
    }
}

/// `x += v` elementwise when both are `f32` of the same shape (bit-identical to `AddV2`,
/// whose sum commutes); false (nothing done) otherwise.
fn add_in_place(x: &mut Tensor, v: &Tensor) -> bool {
    if x.shape() != v.shape() || x.dtype() != DType::F32 {
        return false;
    }
    let (Ok(vs), Ok(xs)) = (v.as_slice::<f32>(), x.as_mut_slice::<f32>()) else {
        return false;
    };
    crate::ops::kernels::elementwise::add_assign_f32(xs, vs);
    true
}

/// The fused part of a chain's tail: per-channel steps, the activation, and how many tail
/// steps and side operands they cover.
struct FastEpilogue<'a> {
    ops: Vec<ChannelOp<'a>>,
    act: Activation,
    tails: usize,
    sides: usize,
}

impl Op for FusedChain {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        if inputs.len() < self.head_inputs {
            return Err(OpError::Arity {
                expected: self.head_inputs,
                got: inputs.len(),
            });
        }
        let Some(producer) = self.head.epilogue_producer() else {
            return self.eval_unfused(cx, inputs);
        };
        let (head, sides) = inputs.split_at(self.head_inputs);
        let channels = producer.out_channels(head);
        let out_rank = head.first().map_or(0, Tensor::rank).max(2);
        let factors = channels.and_then(|c| self.batch_norm_factors(sides, c, out_rank));
        let fast = channels
            .zip(factors.as_deref())
            .and_then(|(c, f)| self.epilogue(sides, f, c, out_rank));
        let Some(fe) = fast else {
            return self.eval_unfused(cx, inputs);
        };
        let ep = Epilogue {
            ops: &fe.ops,
            act: fe.act,
        };
        let x = producer.eval_epilogue(cx, head.iter().cloned().collect(), &ep)?;
        let rest = sides[fe.sides..].to_vec();
        Ok(tensors![Self::run_tail(
            cx,
            x,
            &self.tail[fe.tails..],
            rest
        )?])
    }

    fn profile_detail(&self, inputs: &[Tensor]) -> Option<String> {
        let head = inputs.get(..self.head_inputs)?;
        let d = self.head.profile_detail(head).unwrap_or_default();
        Some(format!("{d}{}", self.label))
    }
}

/// `Pad(x, paddings)` read only by a VALID `Conv2D` / `DepthwiseConv2dNative`, as one
/// convolution with explicit zero padding (built by `graph::fuse::fold_pads`, the paddings a
/// constant that pads height and width only). Inputs: `x`, the filter. For a rank-4 `f32`
/// `x` the folded convolution runs (and may carry a fused epilogue); anything else, or any
/// error, runs the original `Pad` then convolution, so results and errors are those of the
/// unfused graph. Skipped taps replace products with zero, so only the sign of an all-zero
/// window's result can differ (`-0.0` vs `+0.0`).
#[derive(Debug)]
pub(crate) struct PaddedConv {
    pad: Box<dyn Op>,
    paddings: Tensor,
    conv: Box<dyn Op>,
    folded: Box<dyn Op>,
}

impl PaddedConv {
    pub(crate) fn new(
        pad: Box<dyn Op>,
        paddings: Tensor,
        conv: Box<dyn Op>,
        folded: Box<dyn Op>,
    ) -> PaddedConv {
        PaddedConv {
            pad,
            paddings,
            conv,
            folded,
        }
    }

    fn applies(inputs: &[Tensor]) -> bool {
        matches!(inputs, [x, _] if x.dtype() == DType::F32 && x.rank() == 4)
    }

    fn unfused(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [x, f] = crate::ops::take_inputs(inputs)?;
        let mut p = self.pad.eval(cx, tensors![x, self.paddings.clone()])?;
        if p.is_empty() {
            return Err(OpError::invalid("fused pad returned no output"));
        }
        self.conv.eval(cx, tensors![p.swap_remove(0), f])
    }
}

impl Op for PaddedConv {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        if Self::applies(&inputs) {
            if let Ok(out) = self.folded.eval(cx, inputs.clone()) {
                return Ok(out);
            }
        }
        self.unfused(cx, inputs)
    }

    fn epilogue_producer(&self) -> Option<&dyn EpilogueProducer> {
        Some(self)
    }

    fn profile_detail(&self, inputs: &[Tensor]) -> Option<String> {
        self.folded
            .profile_detail(inputs)
            .map(|d| format!("{d} pad"))
    }
}

impl EpilogueProducer for PaddedConv {
    fn conv_spec(&self, cx: &EvalCtx<'_>, x: &[usize], filter: &Tensor) -> Option<ConvSpec> {
        self.folded.epilogue_producer()?.conv_spec(cx, x, filter)
    }

    fn out_channels(&self, inputs: &[Tensor]) -> Option<usize> {
        if !Self::applies(inputs) {
            return None;
        }
        self.folded.epilogue_producer()?.out_channels(inputs)
    }

    fn eval_epilogue(
        &self,
        cx: &mut EvalCtx<'_>,
        inputs: Tensors,
        ep: &Epilogue<'_>,
    ) -> Result<Tensor, OpError> {
        let producer = self
            .folded
            .epilogue_producer()
            .ok_or_else(|| OpError::invalid("folded convolution has no epilogue"))?;
        match producer.eval_epilogue(cx, inputs.clone(), ep) {
            Ok(t) => Ok(t),
            // The unfused ops report TF's error (the folded geometry may word it differently).
            Err(e) => Err(self.unfused(cx, inputs).err().unwrap_or(e)),
        }
    }
}

/// `Mul(x, Sigmoid(x))` (either operand order) as one pass over `x`: Keras' swish / SiLU,
/// built by the planner (`graph::fuse::fuse_swish`) when the sigmoid has no other reader.
/// For `f32` it is bit-identical to the two ops (same vectorized sigmoid, rounded before the
/// product); any other dtype runs the original two ops.
#[derive(Debug)]
pub(crate) struct Swish {
    sigmoid: Box<dyn Op>,
    mul: Box<dyn Op>,
    /// Whether `x` is the `Mul`'s first operand.
    x_first: bool,
    /// Keras 3's `sigmoid(beta * x)` with the constant `beta = 1.0` (`f32`).
    beta: Option<SwishBeta>,
}

/// The `Mul(beta, x)` in front of a swish's sigmoid: `beta` is the `f32` constant `1.0`
/// (checked by the planner), so `beta · x` is `x` exactly on the `f32` path; other dtypes
/// run the op.
#[derive(Debug)]
pub(crate) struct SwishBeta {
    pub op: Box<dyn Op>,
    pub c: Tensor,
    /// Whether the constant is the `Mul`'s first operand.
    pub c_first: bool,
}

impl Swish {
    pub(crate) fn new(
        sigmoid: Box<dyn Op>,
        mul: Box<dyn Op>,
        x_first: bool,
        beta: Option<SwishBeta>,
    ) -> Swish {
        Swish {
            sigmoid,
            mul,
            x_first,
            beta,
        }
    }
}

impl Op for Swish {
    fn profile_detail(&self, _inputs: &[Tensor]) -> Option<String> {
        Some("swish".into())
    }

    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [x] = crate::ops::take_inputs(inputs)?;
        if let Ok(src) = x.as_slice::<f32>() {
            // The kernel writes every element.
            let mut out = crate::tensor::pool::f32_for_overwrite(src.len());
            crate::ops::kernels::elementwise::swish_f32(src, &mut out);
            return Ok(tensors![Tensor::from_vec(x.shape(), out)?]);
        }
        let z = match &self.beta {
            None => x.clone(),
            Some(b) => {
                let ins = if b.c_first {
                    vec![b.c.clone(), x.clone()]
                } else {
                    vec![x.clone(), b.c.clone()]
                };
                let mut z = b.op.eval(cx, ins.into())?;
                if z.is_empty() {
                    return Err(OpError::invalid("fused beta product returned no output"));
                }
                z.swap_remove(0)
            }
        };
        let mut s = self.sigmoid.eval(cx, tensors![z])?;
        if s.is_empty() {
            return Err(OpError::invalid("fused sigmoid returned no output"));
        }
        let s = s.swap_remove(0);
        let ins = if self.x_first { vec![x, s] } else { vec![s, x] };
        self.mul.eval(cx, ins.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::array::tests::{build_op, hashed_f32};
    use crate::ops::Session;
    use crate::proto::{attr_value, AttrValue};
    use std::collections::BTreeMap;

    /// Builds a registry op with the given attrs.
    fn build(op: &str, attrs: BTreeMap<String, AttrValue>, n: usize) -> Box<dyn Op> {
        build_op(op, &attrs, n).expect("builds")
    }

    fn tensor(shape: &[usize], seed: u32) -> Tensor {
        hashed_f32(shape, seed, 4.0)
    }

    fn chain(head: &str, head_attrs: BTreeMap<String, crate::proto::AttrValue>) -> FusedChain {
        let tail = vec![
            Tail {
                op: build("BiasAdd", BTreeMap::new(), 2),
                kind: TailKind::Add,
                x_first: true,
                residual: false,
            },
            Tail {
                op: build("Mul", BTreeMap::new(), 2),
                kind: TailKind::Mul,
                x_first: false,
                residual: false,
            },
            Tail {
                op: build("Sub", BTreeMap::new(), 2),
                kind: TailKind::SubFrom,
                x_first: false,
                residual: false,
            },
            Tail {
                op: build("Relu6", BTreeMap::new(), 1),
                kind: TailKind::Relu6,
                x_first: true,
                residual: false,
            },
        ];
        FusedChain::new(build(head, head_attrs, 2), 2, tail)
    }

    fn run_both(f: &FusedChain, inputs: Vec<Tensor>) -> (Tensor, Tensor) {
        let session = Session::new(".".into(), None, Default::default());
        let mut cx = EvalCtx::new(&session);
        let fused = f
            .eval(&mut cx, Tensors::from_vec(inputs.clone()))
            .expect("fused");
        let plain = f.eval_unfused(&mut cx, inputs.into()).expect("unfused");
        (fused[0].clone(), plain[0].clone())
    }

    #[test]
    fn fused_matmul_epilogue_matches_separate_ops() {
        let f = chain("MatMul", BTreeMap::new());
        for m in [1usize, 3, 70] {
            let (k, n) = (37, 29);
            let inputs = vec![
                tensor(&[m, k], 1),
                tensor(&[k, n], 2),
                tensor(&[n], 3),
                tensor(&[1, n], 4),
                tensor(&[n], 5),
            ];
            let (a, b) = run_both(&f, inputs);
            assert_eq!(a.shape(), b.shape());
            assert_eq!(a.as_slice::<f32>().ok(), b.as_slice::<f32>().ok(), "m={m}");
        }
    }

    #[test]
    fn fused_falls_back_when_side_operand_is_not_a_channel_vector() {
        let f = chain("MatMul", BTreeMap::new());
        let (m, k, n) = (4, 5, 6);
        // A full [m, n] scale broadcasts fine in TF but is not per-channel: unfused path.
        let inputs = vec![
            tensor(&[m, k], 1),
            tensor(&[k, n], 2),
            tensor(&[n], 3),
            tensor(&[m, n], 4),
            tensor(&[n], 5),
        ];
        let (a, b) = run_both(&f, inputs);
        assert_eq!(a.as_slice::<f32>().ok(), b.as_slice::<f32>().ok());
        // A bad bias length is the BiasAdd error, as without fusion.
        let session = Session::new(".".into(), None, Default::default());
        let mut cx = EvalCtx::new(&session);
        let bad = vec![
            tensor(&[m, k], 1),
            tensor(&[k, n], 2),
            tensor(&[n + 1], 3),
            tensor(&[n], 4),
            tensor(&[n], 5),
        ];
        let err = f.eval(&mut cx, bad.into()).expect_err("bias length");
        assert!(err.to_string().contains("biases"), "{err}");
    }

    fn attrs(list: &[(&str, attr_value::Value)]) -> BTreeMap<String, AttrValue> {
        list.iter()
            .map(|(k, v)| {
                let a = AttrValue {
                    value: Some(v.clone()),
                };
                (k.to_string(), a)
            })
            .collect()
    }

    /// `head → FusedBatchNormV3 → Relu6`.
    fn bn_chain(head: &str, head_attrs: BTreeMap<String, AttrValue>) -> FusedChain {
        let bn = attrs(&[
            ("is_training", attr_value::Value::B(false)),
            ("epsilon", attr_value::Value::F(0.001)),
        ]);
        let tail = vec![
            Tail {
                op: build("FusedBatchNormV3", bn, 5),
                kind: TailKind::BatchNorm { epsilon: 0.001 },
                x_first: true,
                residual: false,
            },
            Tail {
                op: build("Relu6", BTreeMap::new(), 1),
                kind: TailKind::Relu6,
                x_first: true,
                residual: false,
            },
        ];
        FusedChain::new(build(head, head_attrs, 2), 2, tail)
    }

    fn bn_params(c: usize) -> Vec<Tensor> {
        let var: Vec<f32> = (0..c).map(|j| 0.2 + j as f32 * 0.37).collect();
        vec![
            tensor(&[c], 6),
            tensor(&[c], 7),
            tensor(&[c], 8),
            Tensor::vector(var),
        ]
    }

    #[test]
    fn fused_batch_norm_after_conv_is_bit_identical() {
        use attr_value::Value;
        let list = |v: &[i64]| {
            Value::List(Box::new(attr_value::ListValue {
                i: v.to_vec(),
                ..Default::default()
            }))
        };
        for (head, c_in, filter_c) in [("Conv2D", 3, 5), ("DepthwiseConv2dNative", 5, 1)] {
            let conv = attrs(&[
                ("strides", list(&[1, 2, 2, 1])),
                ("padding", Value::S(b"SAME".to_vec())),
            ]);
            let f = bn_chain(head, conv);
            let c_out = if filter_c == 1 { c_in } else { filter_c };
            let mut inputs = vec![
                tensor(&[2, 7, 6, c_in], 1),
                tensor(&[3, 3, c_in, filter_c], 2),
            ];
            inputs.extend(bn_params(c_out));
            let (a, b) = run_both(&f, inputs);
            assert_eq!(a.shape(), [2, 4, 3, c_out]);
            assert_eq!(a.as_slice::<f32>().ok(), b.as_slice::<f32>().ok(), "{head}");
        }
    }

    #[test]
    fn residual_add_after_the_epilogue_is_bit_identical() {
        use attr_value::Value;
        let conv = attrs(&[
            (
                "strides",
                Value::List(Box::new(attr_value::ListValue {
                    i: vec![1, 1, 1, 1],
                    ..Default::default()
                })),
            ),
            ("padding", Value::S(b"VALID".to_vec())),
        ]);
        let step = |op: &str, kind, residual| Tail {
            op: build(op, BTreeMap::new(), if op == "Relu" { 1 } else { 2 }),
            kind,
            x_first: true,
            residual,
        };
        // conv → Mul → AddV2 (per channel) → AddV2 (residual) → Relu (ResNet's order).
        let f = FusedChain::new(
            build("Conv2D", conv, 2),
            2,
            vec![
                step("Mul", TailKind::Mul, false),
                step("AddV2", TailKind::Add, true),
                step("AddV2", TailKind::Add, true),
                step("Relu", TailKind::Relu, false),
            ],
        );
        let x = tensor(&[2, 5, 6, 7], 1);
        let inputs = vec![
            x,
            tensor(&[1, 1, 7, 9], 2),
            tensor(&[9], 3),
            tensor(&[9], 4),
            tensor(&[2, 5, 6, 9], 5),
        ];
        let (a, b) = run_both(&f, inputs.clone());
        assert_eq!(a.shape(), [2, 5, 6, 9]);
        assert_eq!(a.as_slice::<f32>().ok(), b.as_slice::<f32>().ok());
        // A residual that only broadcasts runs the op (same result as unfused).
        let mut bcast = inputs;
        bcast[4] = tensor(&[5, 6, 9], 6);
        let (a, b) = run_both(&f, bcast);
        assert_eq!(a.as_slice::<f32>().ok(), b.as_slice::<f32>().ok());
    }

    #[test]
    fn fused_batch_norm_falls_back_where_tf_would_fail() {
        // FusedBatchNormV3 needs a 4-D input: after a MatMul the unfused op's error stands.
        let f = bn_chain("MatMul", BTreeMap::new());
        let mut inputs = vec![tensor(&[3, 4], 1), tensor(&[4, 5], 2)];
        inputs.extend(bn_params(5));
        let session = Session::new(".".into(), None, Default::default());
        let mut cx = EvalCtx::new(&session);
        let err = f.eval(&mut cx, inputs.into()).expect_err("rank 2");
        assert!(err.to_string().contains("4 or 5-dimensional"), "{err}");
        // A scale of the wrong length: the op's own error, not a fused result.
        let f = bn_chain(
            "Conv2D",
            attrs(&[
                (
                    "strides",
                    attr_value::Value::List(Box::new(attr_value::ListValue {
                        i: vec![1, 1, 1, 1],
                        ..Default::default()
                    })),
                ),
                ("padding", attr_value::Value::S(b"VALID".to_vec())),
            ]),
        );
        let mut inputs = vec![tensor(&[1, 3, 3, 2], 1), tensor(&[1, 1, 2, 4], 2)];
        let mut p = bn_params(4);
        p[0] = tensor(&[3], 6);
        inputs.extend(p);
        let err = f.eval(&mut cx, inputs.into()).expect_err("scale length");
        assert!(err.to_string().contains("channels"), "{err}");
    }
}

//! Plan-time fusion of the exact GELU chain into one pass.
//!
//! Keras 3 (`keras.activations.gelu(x, approximate=False)` on the TF backend) and TF's
//! `tf.nn.gelu(approximate=False)` both trace `0.5 * x * erfc(-x * (1/√2))` as five ops:
//! `m = Mul(0.5, x)`, `n = Neg(x)`, `z = Mul(n, c)`, `e = Erfc(z)`, `y = Mul(m, e)` (each
//! `Mul` in either operand order). Over BERT's `[batch, 128, 4·hidden]` FFN activations that
//! is five memory passes; [`fuse_gelu`] replaces the chain, when every intermediate is read
//! once and is not a plan output, by one [`Gelu`] step taking `x`. For `f32` the step runs
//! `kernels::elementwise::gelu_f32`, which rounds each product exactly as the separate ops do
//! and uses the same `erfc` lane function as the `Erfc` op, so the result is bit-identical;
//! other dtypes run the original five ops.

use std::collections::HashMap;

use super::compile::{step_positions, use_counts, PendingStep, Src};
use crate::ops::{EvalCtx, Op, OpError, Tensors};
use crate::proto::NodeDef;
use crate::tensor::{DType, Tensor};

/// A binary op of the chain with its constant operand and that operand's position.
#[derive(Debug)]
struct ConstMul {
    op: Box<dyn Op>,
    c: Tensor,
    c_first: bool,
}

impl ConstMul {
    fn eval(&self, cx: &mut EvalCtx<'_>, x: Tensor) -> Result<Tensor, OpError> {
        let ins = if self.c_first {
            vec![self.c.clone(), x]
        } else {
            vec![x, self.c.clone()]
        };
        first(self.op.eval(cx, ins.into())?)
    }
}

fn first(mut v: Tensors) -> Result<Tensor, OpError> {
    if v.is_empty() {
        return Err(OpError::invalid("fused GELU step returned no output"));
    }
    Ok(v.swap_remove(0))
}

/// `(0.5·x) · erfc((-x)·c)` as one step (see the module docs).
#[derive(Debug)]
pub(crate) struct Gelu {
    half: ConstMul,
    neg: Box<dyn Op>,
    scale: ConstMul,
    erfc: Box<dyn Op>,
    mul: Box<dyn Op>,
    /// Whether the final `Mul` reads `0.5·x` first.
    m_first: bool,
    /// `c` as `f32` (the fast path's scale; `scale.c` is an `f32` scalar).
    c: f32,
}

impl Op for Gelu {
    fn profile_detail(&self, _inputs: &[Tensor]) -> Option<String> {
        Some("gelu".into())
    }

    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [x] = crate::ops::take_inputs(inputs)?;
        if let Ok(src) = x.as_slice::<f32>() {
            // The kernel writes every element.
            let mut out = crate::tensor::pool::f32_for_overwrite(src.len());
            crate::ops::kernels::elementwise::gelu_f32(src, self.c, &mut out);
            return Ok(tensors![Tensor::from_vec(x.shape(), out)?]);
        }
        let m = self.half.eval(cx, x.clone())?;
        let n = first(self.neg.eval(cx, tensors![x])?)?;
        let z = self.scale.eval(cx, n)?;
        let e = first(self.erfc.eval(cx, tensors![z])?)?;
        let ins = if self.m_first { vec![m, e] } else { vec![e, m] };
        self.mul.eval(cx, ins.into())
    }
}

/// The `f32` scalar (rank 0) value of a constant.
fn f32_scalar(c: Option<&Tensor>) -> Option<f32> {
    c.filter(|t| t.dtype() == DType::F32 && t.rank() == 0)
        .and_then(|t| t.as_slice::<f32>().ok().map(|v| v[0]))
}

/// Rewrites the exact GELU chain (module docs) into one [`Gelu`] step at the position and
/// under the node of its final `Mul`, taking `x`. Also returns, for each such step's node,
/// its constant `c` (so `fuse_dense` can fold the step into a producer's epilogue).
pub(super) fn fuse_gelu(
    nodes: &[NodeDef],
    steps: Vec<PendingStep>,
    consts: &HashMap<Src, Tensor>,
    outs: &[Src],
) -> (Vec<PendingStep>, HashMap<usize, f32>) {
    let uses = use_counts(&steps, outs);
    let pos_of = step_positions(&steps);
    // The step producing `v` if it is output 0 of an `op` node read exactly once.
    let once = |v: Src, op: &str| -> Option<usize> {
        let Src::Out(n, 0) = v else { return None };
        let &si = pos_of.get(&n)?;
        (nodes[n].op == op && uses.get(&v) == Some(&1)).then_some(si)
    };
    // `Mul` step `si` with one `f32` scalar constant operand: (other operand, const, c_first).
    let const_mul = |si: usize| -> Option<(Src, f32, bool)> {
        let [a, b] = steps[si].2.as_slice() else {
            return None;
        };
        match (f32_scalar(consts.get(a)), f32_scalar(consts.get(b))) {
            (Some(c), None) => Some((*b, c, true)),
            (None, Some(c)) => Some((*a, c, false)),
            _ => None,
        }
    };
    // (final mul, half mul, neg, scale mul, erfc, m_first, x, c)
    let mut found = Vec::new();
    for (si, (ni, _, ins)) in steps.iter().enumerate() {
        let [a, b] = ins.as_slice() else { continue };
        if nodes[*ni].op != "Mul" {
            continue;
        }
        for (m, e, m_first) in [(*a, *b, true), (*b, *a, false)] {
            let (Some(hsi), Some(esi)) = (once(m, "Mul"), once(e, "Erfc")) else {
                continue;
            };
            let Some((x, half, _)) = const_mul(hsi) else {
                continue;
            };
            let [z] = steps[esi].2.as_slice() else {
                continue;
            };
            let Some(zsi) = once(*z, "Mul") else { continue };
            let Some((n, c, _)) = const_mul(zsi) else {
                continue;
            };
            let Some(nsi) = once(n, "Neg") else { continue };
            if half != 0.5 || steps[nsi].2.as_slice() != [x] || consts.contains_key(&x) {
                continue;
            }
            found.push((si, hsi, nsi, zsi, esi, m_first, x, c));
            break;
        }
    }
    let mut fused = HashMap::new();
    if found.is_empty() {
        return (steps, fused);
    }
    let mut slots: Vec<Option<PendingStep>> = steps.into_iter().map(Some).collect();
    for (si, hsi, nsi, zsi, esi, m_first, x, c) in found {
        if [si, hsi, nsi, zsi, esi].iter().any(|&i| slots[i].is_none()) {
            continue;
        }
        let take =
            |slots: &mut Vec<Option<PendingStep>>, i: usize| slots[i].take().expect("checked");
        let (ni, mul, _) = take(&mut slots, si);
        let (_, half_op, half_ins) = take(&mut slots, hsi);
        let (_, neg, _) = take(&mut slots, nsi);
        let (_, scale_op, scale_ins) = take(&mut slots, zsi);
        let (_, erfc, _) = take(&mut slots, esi);
        let const_of = |op: Box<dyn Op>, ins: &[Src]| {
            let c_first = consts.contains_key(&ins[0]);
            let c = consts[&ins[if c_first { 0 } else { 1 }]].clone();
            ConstMul { op, c, c_first }
        };
        let gelu = Gelu {
            half: const_of(half_op, &half_ins),
            neg,
            scale: const_of(scale_op, &scale_ins),
            erfc,
            mul,
            m_first,
            c,
        };
        fused.insert(ni, c);
        slots[si] = Some((ni, Box::new(gelu), vec![x]));
    }
    (slots.into_iter().flatten().collect(), fused)
}

//! Plan-time fusion of Keras 3's attention core: scores, scale, softmax, context.
//!
//! `keras.layers.MultiHeadAttention` (TF backend, no mask, no dropout at inference) traces
//! `s = Einsum("BTNH,BSNH->BNTS", q, k)`, `m = Mul(s, scale)`, `p = Softmax(m)`,
//! `o = Einsum("BNTS,BSNH->BTNH", p, v)` (any letters; `scale` an `f32` scalar constant, in
//! either operand order). Separately, each op writes and re-reads the `[B, N, T, S]` score
//! tensor (4 MB per layer for BERT at batch 8). [`fuse_attention`] replaces the four steps,
//! when `s`, `m` and `p` are each read once and are no plan output, by one [`Attention`]
//! step that runs each `(batch, head)` pair's `T×S` score block through all four in a
//! per-task buffer that stays in L2, the pairs in parallel.
//!
//! Bit-identical to the separate ops: each block's two products are the very GEMM calls
//! `Einsum`'s strided path makes for that pair (same operands, strides and instruction set,
//! so the same blocking and summation order; the output's leading dimension does not enter
//! the arithmetic), the scale is one `f32` product per element, and the softmax is the
//! `Softmax` op's fused row pass (max, shifted `exp`, sum with the same reduction kernel,
//! reciprocal, scale). Anything else (dtypes, shapes, a single `(batch, head)` pair, where
//! `Einsum` would take its packed path) runs the original four ops.

use std::collections::HashMap;

use rayon::prelude::*;

use super::compile::{use_counts, PendingStep, Src};
use crate::ops::kernels::gemm::gemm_f32_ptr;
use crate::ops::kernels::reduce::{reduce_f32, ReduceOp};
use crate::ops::kernels::transcend::exp_serial;
use crate::ops::kernels::Isa;
use crate::ops::{EvalCtx, Op, OpError, Tensors};
use crate::proto::{attr_value, NodeDef};
use crate::tensor::{DType, Tensor};

/// The four ops and the scale (see the module docs). Inputs: `q`, `k`, `v`.
#[derive(Debug)]
pub(crate) struct Attention {
    scores: Box<dyn Op>,
    mul: Box<dyn Op>,
    /// The `Mul`'s constant and whether it is the first operand.
    scale: Tensor,
    scale_first: bool,
    softmax: Box<dyn Op>,
    context: Box<dyn Op>,
}

fn first(mut v: Tensors) -> Result<Tensor, OpError> {
    if v.is_empty() {
        return Err(OpError::invalid("fused attention step returned no output"));
    }
    Ok(v.swap_remove(0))
}

/// Raw output pointer shared by the `(batch, head)` tasks, which write disjoint windows.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: each task writes only its own (batch, head) window of the output (see `fast`).
unsafe impl Send for OutPtr {}
// SAFETY: as above.
unsafe impl Sync for OutPtr {}

impl OutPtr {
    fn get(self) -> *mut f32 {
        self.0
    }
}

/// `Softmax`'s fused row pass (`ops::math::reduce::softmax_f32`) on each `c`-long row of
/// `rows`, in place through `shifted` (a `c`-long scratch row): the same kernels in the same
/// order, so the same results.
fn softmax_rows(rows: &mut [f32], c: usize, shifted: &mut [f32]) {
    let mut acc = [0f32];
    for row in rows.chunks_exact_mut(c) {
        reduce_f32(ReduceOp::Max, row, 1, c, 1, &mut acc);
        let m = acc[0];
        for (s, &v) in shifted.iter_mut().zip(row.iter()) {
            *s = v - m;
        }
        exp_serial(shifted, row);
        reduce_f32(ReduceOp::Sum, row, 1, c, 1, &mut acc);
        let inv = 1.0 / acc[0];
        row.iter_mut().for_each(|v| *v *= inv);
    }
}

impl Attention {
    /// The fused evaluation, `None` when it does not apply.
    fn fast(
        &self,
        cx: &EvalCtx<'_>,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
    ) -> Result<Option<Tensor>, OpError> {
        let f32s = [q, k, v, &self.scale]
            .iter()
            .all(|t| t.dtype() == DType::F32);
        if !f32s || self.scale.rank() != 0 || q.rank() != 4 || k.shape() != v.shape() {
            return Ok(None);
        }
        let (qs, ks) = (q.shape(), k.shape());
        let (b, t, n, h) = (qs[0], qs[1], qs[2], qs[3]);
        let s = ks[1];
        if ks.len() != 4 || ks[0] != b || ks[2] != n || ks[3] != h {
            return Ok(None);
        }
        // `Einsum` runs a single pair on its packed path, and empty or degenerate blocks on
        // its matrix-vector or zero-fill paths: leave those to the ops.
        if b * n < 2 || t < 2 || s < 2 || h == 0 {
            return Ok(None);
        }
        let total = q.len();
        cx.limits().check_alloc(total, DType::F32)?;
        cx.limits().check_alloc(t * s, DType::F32)?;
        let c = self.scale.as_slice::<f32>()?[0];
        let (qd, kd, vd) = (
            q.as_slice::<f32>()?,
            k.as_slice::<f32>()?,
            v.as_slice::<f32>()?,
        );
        let nh = n * h;
        // Every output element is written: the (batch, head) windows tile the output.
        let mut out = crate::tensor::pool::f32_for_overwrite(total);
        let op = OutPtr(out.as_mut_ptr());
        let isa = Isa::best();
        let pair = |(scores, shifted): &mut (Vec<f32>, Vec<f32>), p: usize| {
            let (bi, hi) = (p / n, p % n);
            let (qo, ko) = (bi * t * nh + hi * h, bi * s * nh + hi * h);
            // SAFETY: `scores` holds t·s floats (ldc s); the operands lie inside q and k
            // (checked by the GEMM); the output window (rows bi·t.., columns hi·h..hi·h+h at
            // stride nh) belongs to this pair alone.
            unsafe {
                // Einsum 1: [t, h] (strides nh, 1) · [h, s] (strides 1, nh).
                gemm_f32_ptr(
                    isa,
                    false,
                    t,
                    s,
                    h,
                    &qd[qo..],
                    (nh, 1),
                    &kd[ko..],
                    (1, nh),
                    scores.as_mut_ptr(),
                    s,
                    false,
                );
            }
            // Mul by the scalar (IEEE product, commutative), then the softmax rows.
            scores.iter_mut().for_each(|x| *x *= c);
            softmax_rows(scores, s, shifted);
            // SAFETY: as above; einsum 2: [t, s] (strides s, 1) · [s, h] (strides nh, 1).
            unsafe {
                gemm_f32_ptr(
                    isa,
                    false,
                    t,
                    h,
                    s,
                    scores,
                    (s, 1),
                    &vd[ko..],
                    (nh, 1),
                    op.get().add(qo),
                    nh,
                    false,
                );
            }
        };
        let init = || (vec![0f32; t * s], vec![0f32; s]);
        (0..b * n).into_par_iter().for_each_init(init, pair);
        Ok(Some(Tensor::from_vec(qs, out)?))
    }
}

impl Op for Attention {
    fn profile_detail(&self, _inputs: &[Tensor]) -> Option<String> {
        Some("attention: Einsum+Mul+Softmax+Einsum".into())
    }

    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [q, k, v] = crate::ops::take_inputs(inputs)?;
        if let Some(o) = self.fast(cx, &q, &k, &v)? {
            return Ok(tensors![o]);
        }
        let sc = first(self.scores.eval(cx, tensors![q, k])?)?;
        let ins = if self.scale_first {
            vec![self.scale.clone(), sc]
        } else {
            vec![sc, self.scale.clone()]
        };
        let m = first(self.mul.eval(cx, ins.into())?)?;
        let p = first(self.softmax.eval(cx, tensors![m])?)?;
        self.context.eval(cx, tensors![p, v])
    }
}

/// The equation of an `Einsum` node, split into its two inputs and output (4 labels each).
fn equation(node: &NodeDef) -> Option<[[u8; 4]; 3]> {
    let Some(attr_value::Value::S(eq)) = node.attr.get("equation").and_then(|v| v.value.as_ref())
    else {
        return None;
    };
    let eq = std::str::from_utf8(eq).ok()?;
    let (ins, out) = eq.split_once("->")?;
    let (a, b) = ins.split_once(',')?;
    let four = |s: &str| -> Option<[u8; 4]> {
        let s = s.trim().as_bytes();
        let v: [u8; 4] = s.try_into().ok()?;
        v.iter().all(|c| c.is_ascii_alphabetic()).then_some(v)
    };
    Some([four(a)?, four(b)?, four(out)?])
}

/// Whether the two equations are Keras 3's `BTNH,BSNH->BNTS` and `BNTS,BSNH->BTNH` (any
/// four distinct letters, the same in both).
fn keras_attention(e1: [[u8; 4]; 3], e2: [[u8; 4]; 3]) -> bool {
    let [[b, t, n, h], [b2, s, n2, h2], o1] = e1;
    let distinct = [b, t, n, h, s]
        .iter()
        .enumerate()
        .all(|(i, x)| [b, t, n, h, s][..i].iter().all(|y| y != x));
    distinct
        && [b2, n2, h2] == [b, n, h]
        && o1 == [b, n, t, s]
        && e2 == [[b, n, t, s], [b, s, n, h], [b, t, n, h]]
}

/// Rewrites Keras' attention core (module docs) into one [`Attention`] step at the position
/// and under the node of the context `Einsum`.
pub(super) fn fuse_attention(
    nodes: &[NodeDef],
    steps: Vec<PendingStep>,
    consts: &HashMap<Src, Tensor>,
    outs: &[Src],
) -> Vec<PendingStep> {
    let uses = use_counts(&steps, outs);
    let pos_of = super::compile::step_positions(&steps);
    // The step producing `v` if it is output 0 of an `op` node read exactly once.
    let once = |v: Src, op: &str| -> Option<usize> {
        let Src::Out(ni, 0) = v else { return None };
        let &si = pos_of.get(&ni)?;
        (nodes[ni].op == op && uses.get(&v) == Some(&1)).then_some(si)
    };
    let scalar_f32 = |s: &Src| {
        consts
            .get(s)
            .is_some_and(|t| t.dtype() == DType::F32 && t.rank() == 0)
    };
    // (context einsum, softmax, mul, scores einsum, scale_first)
    let mut found = Vec::new();
    for (si, (ni, _, ins)) in steps.iter().enumerate() {
        let [p, _v] = ins.as_slice() else { continue };
        if nodes[*ni].op != "Einsum" {
            continue;
        }
        let Some(smx) = once(*p, "Softmax") else {
            continue;
        };
        let [m] = steps[smx].2.as_slice() else {
            continue;
        };
        let Some(mul) = once(*m, "Mul") else { continue };
        let [x, y] = steps[mul].2.as_slice() else {
            continue;
        };
        let (sc, scale_first) = match (scalar_f32(x), scalar_f32(y)) {
            (false, true) => (*x, false),
            (true, false) => (*y, true),
            _ => continue,
        };
        let Some(e1) = once(sc, "Einsum") else {
            continue;
        };
        if steps[e1].2.len() != 2 {
            continue;
        }
        let (Some(q1), Some(q2)) = (equation(&nodes[steps[e1].0]), equation(&nodes[*ni])) else {
            continue;
        };
        if keras_attention(q1, q2) {
            found.push((si, smx, mul, e1, scale_first));
        }
    }
    if found.is_empty() {
        return steps;
    }
    let mut slots: Vec<Option<PendingStep>> = steps.into_iter().map(Some).collect();
    for (si, smx, mul, e1, scale_first) in found {
        if [si, smx, mul, e1].iter().any(|&i| slots[i].is_none()) {
            continue;
        }
        let mut take = |i: usize| slots[i].take().expect("checked");
        let (ni, context, cins) = take(si);
        let (_, softmax, _) = take(smx);
        let (_, mul_op, mins) = take(mul);
        let (_, scores, sins) = take(e1);
        let scale = consts[&mins[if scale_first { 0 } else { 1 }]].clone();
        let op = Attention {
            scores,
            mul: mul_op,
            scale,
            scale_first,
            softmax,
            context,
        };
        slots[si] = Some((ni, Box::new(op), vec![sins[0], sins[1], cins[1]]));
    }
    slots.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognizes_keras3_attention_equations_only() {
        let e = |s: &str| {
            let mut n = NodeDef::default();
            n.attr.insert(
                "equation".into(),
                crate::proto::AttrValue {
                    value: Some(attr_value::Value::S(s.as_bytes().to_vec())),
                },
            );
            equation(&n).expect("parses")
        };
        assert!(keras_attention(e("BTNH,BSNH->BNTS"), e("BNTS,BSNH->BTNH")));
        assert!(keras_attention(e("abcd,aecd->acbe"), e("acbe,aecd->abcd")));
        // Keras 2's key-first scores, or a context over other labels, do not match.
        assert!(!keras_attention(e("aecd,abcd->acbe"), e("acbe,aecd->abcd")));
        assert!(!keras_attention(e("BTNH,BSNH->BNTS"), e("BNTS,BSNH->BNTH")));
        assert!(!keras_attention(e("BTNH,BTNH->BNTT"), e("BNTT,BTNH->BTNH")));
    }
}

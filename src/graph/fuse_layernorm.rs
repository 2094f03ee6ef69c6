//! Plan-time fusion of the elementwise tail of Keras' `LayerNormalization`.
//!
//! Keras 3 (TF backend) normalizes with `moments` and then traces the affine part as
//! `mul = Mul(rsqrt, gamma)`, `mul_1 = Mul(Neg(mean), mul)`, `add_1 = AddV2(mul_1, beta)`,
//! `mul_2 = Mul(x, mul)`, `y = AddV2(mul_2, add_1)`: five passes over the `[batch, seq,
//! hidden]` activations, four of them writing a fresh full-size tensor (`mul` is already full
//! size: `rsqrt` is per row, `gamma` per channel). [`fuse_layernorm_tail`] replaces those five
//! ops, when `mul` is read only by `mul_1` and `mul_2` and the other intermediates only once
//! (none a plan output), by one [`LayerNormTail`] step. The statistics (`Mean`,
//! `SquaredDifference`, `Rsqrt`, `Neg`) stay separate ops, so the summation order is untouched.
//! For `f32` operands of the usual shapes the step computes, per element,
//! `x·m + ((-mean)·m + beta)` with `m = rsqrt·gamma`, each product and sum rounded as the
//! separate ops round it (IEEE `+` and `·` are commutative, so operand order does not matter):
//! bit-identical, in one pass. Anything else runs the original five ops.
//!
//! When the statistics are Keras 3's `moments` as well (`mean = Mean(x, axis, keep_dims)`,
//! `sq = SquaredDifference(x, mean)` (the `StopGradient` between is forwarded),
//! `var = Mean(sq, axis, keep_dims)`, `r = Rsqrt(AddV2(var, eps))`, `nm = Neg(mean)`; each
//! intermediate read only inside the chain, `eps` a constant), the whole layer norm becomes
//! one [`LayerNorm`] step on `x`, `gamma`, `beta`. For `f32` rows reduced over the last axis
//! its per-row pass calls the very reduction kernel `Mean` calls on each row (the op's
//! `[rows, c, 1]` reduction reduces every row independently with the same code), so the
//! summation order is unchanged and the result bit-identical to the eleven separate ops, with
//! the row in L1 instead of five full-size passes over memory. Anything else runs the ops.

use rayon::prelude::*;

use std::collections::HashMap;

use super::compile::{step_positions, use_counts, PendingStep, Src};
use crate::ops::kernels::reduce::{reduce_f32, ReduceOp};
use crate::ops::{EvalCtx, Op, OpError};
use crate::proto::{attr_value, NodeDef};
use crate::tensor::{DType, Tensor};

/// The five ops, each with the positions of its operands in the fused step's inputs
/// (`0..5` = `x, ma, mb, nm, beta`; `5` = `mul`, `6` = `mul_1`, `7` = `add_1`, `8` = `mul_2`).
#[derive(Debug)]
pub(crate) struct LayerNormTail {
    ops: Vec<(Box<dyn Op>, [usize; 2])>,
}

fn first(mut v: Vec<Tensor>) -> Result<Tensor, OpError> {
    if v.is_empty() {
        return Err(OpError::invalid("fused layer-norm step returned no output"));
    }
    Ok(v.swap_remove(0))
}

/// Whether `t` is `f32` with all dims 1 except a last one of `c` (a per-channel vector).
fn channel_vec(t: &Tensor, c: usize) -> bool {
    let s = t.shape();
    t.dtype() == crate::tensor::DType::F32
        && s.last() == Some(&c)
        && s[..s.len() - 1].iter().all(|&d| d == 1)
}

/// Whether `t` is `f32` of shape `x`'s with the last dim 1 (a per-row statistic).
fn row_vec(t: &Tensor, x: &[usize]) -> bool {
    let s = t.shape();
    t.dtype() == crate::tensor::DType::F32
        && s.len() == x.len()
        && s[..s.len() - 1] == x[..x.len() - 1]
        && s[s.len() - 1] == 1
}

impl LayerNormTail {
    /// The one-pass `f32` result, or `None` when the operands do not have the usual shapes.
    fn fast(&self, ins: &[Tensor]) -> Result<Option<Tensor>, OpError> {
        let [x, ma, mb, nm, beta] = ins else {
            return Ok(None);
        };
        let xs = x.shape();
        let Some(&c) = xs.last() else { return Ok(None) };
        if x.dtype() != crate::tensor::DType::F32 || c < 2 || x.is_empty() {
            return Ok(None);
        }
        let (r, g) = if row_vec(ma, xs) && channel_vec(mb, c) {
            (ma, mb)
        } else if row_vec(mb, xs) && channel_vec(ma, c) {
            (mb, ma)
        } else {
            return Ok(None);
        };
        if !row_vec(nm, xs) || !channel_vec(beta, c) {
            return Ok(None);
        }
        let (xv, rv, gv, nv, bv) = (
            x.as_slice::<f32>()?,
            r.as_slice::<f32>()?,
            g.as_slice::<f32>()?,
            nm.as_slice::<f32>()?,
            beta.as_slice::<f32>()?,
        );
        // Every element is written below.
        let mut out = crate::tensor::pool::f32_for_overwrite(xv.len());
        let row = |(i, (o, x)): (usize, (&mut [f32], &[f32]))| {
            let (r, n) = (rv[i], nv[i]);
            for (((o, &x), &g), &b) in o.iter_mut().zip(x).zip(gv).zip(bv) {
                let m = r * g;
                *o = x * m + (n * m + b);
            }
        };
        if xv.len() >= 1 << 15 {
            out.par_chunks_mut(c)
                .zip(xv.par_chunks(c))
                .enumerate()
                .for_each(row);
        } else {
            out.chunks_mut(c)
                .zip(xv.chunks(c))
                .enumerate()
                .for_each(row);
        }
        Ok(Some(Tensor::from_vec(xs, out)?))
    }
}

impl Op for LayerNormTail {
    fn profile_detail(&self, _inputs: &[Tensor]) -> Option<String> {
        Some("layer-norm tail".into())
    }

    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, OpError> {
        if inputs.len() != 5 {
            return Err(OpError::Arity {
                expected: 5,
                got: inputs.len(),
            });
        }
        if let Some(y) = self.fast(&inputs)? {
            return Ok(vec![y]);
        }
        let mut vals = inputs;
        for (op, [a, b]) in &self.ops {
            let ins = vec![vals[*a].clone(), vals[*b].clone()];
            vals.push(first(op.eval(cx, ins)?)?);
        }
        Ok(vec![vals.pop().expect("five results")])
    }
}

/// An operand of one of [`LayerNorm`]'s statistics ops: an earlier value or a constant.
#[derive(Debug)]
enum In {
    V(usize),
    C(Tensor),
}

/// A whole Keras 3 layer norm (module docs). Inputs: `x`, `gamma`, `beta`.
#[derive(Debug)]
pub(crate) struct LayerNorm {
    /// `Mean`, `SquaredDifference`, `Mean`, `AddV2`, `Rsqrt`, `Neg`, appending values
    /// `3..9` to `[x, gamma, beta]` (`mean, sq, var, var+eps, r, nm`).
    stats: Vec<(Box<dyn Op>, Vec<In>)>,
    /// The two reduction axes and `eps`, for the one-pass path.
    axes: [Tensor; 2],
    eps: Tensor,
    /// Whether `gamma` is the first operand of the tail's `mul`.
    gamma_first: bool,
    tail: LayerNormTail,
}

/// Whether `axis` (an integer scalar or 1-vector) names the last axis of a rank-`rank` tensor.
fn last_axis(axis: &Tensor, rank: usize) -> bool {
    axis.to_i64_vec()
        .is_ok_and(|a| a.len() == 1 && (a[0] == -1 || a[0] == rank as i64 - 1))
}

impl LayerNorm {
    /// The one-pass `f32` result, or `None` when the operands do not have the usual shapes.
    fn fast(&self, x: &Tensor, gamma: &Tensor, beta: &Tensor) -> Result<Option<Tensor>, OpError> {
        let xs = x.shape();
        let Some(&c) = xs.last() else { return Ok(None) };
        let f32s = [x, gamma, beta, &self.eps]
            .iter()
            .all(|t| t.dtype() == DType::F32);
        if !f32s
            || c < 2
            || x.is_empty()
            || self.eps.len() != 1
            || self.eps.rank() > 1
            || !self.axes.iter().all(|a| last_axis(a, xs.len()))
            || !channel_vec(gamma, c)
            || !channel_vec(beta, c)
        {
            return Ok(None);
        }
        let eps = self.eps.as_slice::<f32>()?[0];
        let (xv, gv, bv) = (
            x.as_slice::<f32>()?,
            gamma.as_slice::<f32>()?,
            beta.as_slice::<f32>()?,
        );
        // Every element is written below.
        let mut out = crate::tensor::pool::f32_for_overwrite(xv.len());
        // Each step as the separate ops round it: `Mean` (the same kernel on the same row),
        // `(x - mean)²`, `Mean`, `+ eps`, `1 / sqrt`, `-mean`, then the tail.
        let row = |sq: &mut Vec<f32>, (o, x): (&mut [f32], &[f32])| {
            let mut acc = [0f32];
            reduce_f32(ReduceOp::Mean, x, 1, c, 1, &mut acc);
            let mean = acc[0];
            for (s, &v) in sq.iter_mut().zip(x) {
                *s = (v - mean) * (v - mean);
            }
            reduce_f32(ReduceOp::Mean, sq, 1, c, 1, &mut acc);
            let (r, n) = (1.0 / (acc[0] + eps).sqrt(), -mean);
            for (((o, &x), &g), &b) in o.iter_mut().zip(x).zip(gv).zip(bv) {
                let m = r * g;
                *o = x * m + (n * m + b);
            }
        };
        let init = || vec![0f32; c];
        if xv.len() >= 1 << 15 {
            out.par_chunks_mut(c)
                .zip(xv.par_chunks(c))
                .for_each_init(init, row);
        } else {
            let mut sq = init();
            out.chunks_mut(c)
                .zip(xv.chunks(c))
                .for_each(|p| row(&mut sq, p));
        }
        Ok(Some(Tensor::from_vec(xs, out)?))
    }
}

impl Op for LayerNorm {
    fn profile_detail(&self, _inputs: &[Tensor]) -> Option<String> {
        Some("layer norm: moments+Rsqrt+tail".into())
    }

    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, OpError> {
        let [x, gamma, beta] = crate::ops::take_inputs(inputs)?;
        if let Some(y) = self.fast(&x, &gamma, &beta)? {
            return Ok(vec![y]);
        }
        let mut vals = vec![x, gamma, beta];
        for (op, ins) in &self.stats {
            let ins = ins
                .iter()
                .map(|i| match i {
                    In::V(v) => vals[*v].clone(),
                    In::C(t) => t.clone(),
                })
                .collect();
            vals.push(first(op.eval(cx, ins)?)?);
        }
        let (g, r) = (vals[1].clone(), vals[7].clone());
        let (ma, mb) = if self.gamma_first { (g, r) } else { (r, g) };
        let ins = vec![vals[0].clone(), ma, mb, vals[8].clone(), vals[2].clone()];
        self.tail.eval(cx, ins)
    }
}

/// The statistics feeding a matched tail (module docs), as the steps to absorb (`mean`, `sq`,
/// `var`, `add`, `rsqrt`, `neg`), the [`LayerNorm`] program's operands, and `gamma`.
type Stats = ([usize; 6], [Vec<In>; 6], [Tensor; 2], Tensor, Src, bool);

/// Matches Keras 3's `moments` + `Rsqrt` + `Neg` behind a tail with operands
/// `[x, ma, mb, nm, beta]`.
fn match_stats(
    nodes: &[NodeDef],
    steps: &[PendingStep],
    consts: &HashMap<Src, Tensor>,
    uses: &HashMap<Src, usize>,
    pos_of: &HashMap<usize, usize>,
    srcs: &[Src; 5],
) -> Option<Stats> {
    let [x, ma, mb, nm, _beta] = *srcs;
    // The step producing `v` (output 0 of an `ops` node read `count` times) and its inputs.
    let prod = |v: Src, ops: &[&str], count: usize| -> Option<(usize, &[Src])> {
        let Src::Out(n, 0) = v else { return None };
        let &si = pos_of.get(&n)?;
        (ops.contains(&nodes[n].op.as_str()) && uses.get(&v) == Some(&count))
            .then_some((si, steps[si].2.as_slice()))
    };
    let keep_dims = |si: usize| {
        matches!(
            nodes[steps[si].0]
                .attr
                .get("keep_dims")
                .and_then(|a| a.value.as_ref()),
            Some(attr_value::Value::B(true))
        )
    };
    let (gamma, r, gamma_first) = match (prod(ma, &["Rsqrt"], 1), prod(mb, &["Rsqrt"], 1)) {
        (Some(_), None) => (mb, ma, false),
        (None, Some(_)) => (ma, mb, true),
        _ => return None,
    };
    let (rs, &[e]) = prod(r, &["Rsqrt"], 1)? else {
        return None;
    };
    let (neg, &[mean]) = prod(nm, &["Neg"], 1)? else {
        return None;
    };
    let (adds, &[p, q]) = prod(e, &["AddV2", "Add"], 1)? else {
        return None;
    };
    let (var, eps, eps_first) = match (consts.get(&p), consts.get(&q)) {
        (None, Some(t)) => (p, t, false),
        (Some(t), None) => (q, t, true),
        _ => return None,
    };
    let (vs, &[sq, ax2]) = prod(var, &["Mean"], 1)? else {
        return None;
    };
    let (sqs, &[s0, s1]) = prod(sq, &["SquaredDifference"], 1)? else {
        return None;
    };
    let (ms, &[x1, ax1]) = prod(mean, &["Mean"], 2)? else {
        return None;
    };
    let sq_mean_first = match (s0, s1) {
        (a, b) if a == x && b == mean => false,
        (a, b) if a == mean && b == x => true,
        _ => return None,
    };
    if x1 != x || !keep_dims(vs) || !keep_dims(ms) {
        return None;
    }
    let (a1, a2) = (consts.get(&ax1)?.clone(), consts.get(&ax2)?.clone());
    if [x, gamma].contains(&mean) || eps.dtype() != DType::F32 {
        return None;
    }
    let pair = |first: bool, a: In, b: In| if first { vec![a, b] } else { vec![b, a] };
    let progs = [
        vec![In::V(0), In::C(a1.clone())],
        pair(sq_mean_first, In::V(3), In::V(0)),
        vec![In::V(4), In::C(a2.clone())],
        pair(eps_first, In::C(eps.clone()), In::V(5)),
        vec![In::V(6)],
        vec![In::V(3)],
    ];
    Some((
        [ms, sqs, vs, adds, rs, neg],
        progs,
        [a1, a2],
        eps.clone(),
        gamma,
        gamma_first,
    ))
}

/// Rewrites Keras' layer-norm tail (module docs) into one [`LayerNormTail`] step at the
/// position and under the node of its final `AddV2`, or, with Keras 3's statistics before it,
/// the whole layer norm into one [`LayerNorm`] step there.
pub(super) fn fuse_layernorm_tail(
    nodes: &[NodeDef],
    steps: Vec<PendingStep>,
    consts: &HashMap<Src, Tensor>,
    outs: &[Src],
) -> Vec<PendingStep> {
    let uses = use_counts(&steps, outs);
    let pos_of = step_positions(&steps);
    let is = |n: usize, ops: &[&str]| ops.contains(&nodes[n].op.as_str());
    // The binary step producing `v` (output 0 of an `ops` node read `count` times).
    let binary = |v: Src, ops: &[&str], count: usize| -> Option<(usize, Src, Src)> {
        let Src::Out(n, 0) = v else { return None };
        let &si = pos_of.get(&n)?;
        let [a, b] = steps[si].2.as_slice() else {
            return None;
        };
        (is(n, ops) && uses.get(&v) == Some(&count)).then_some((si, *a, *b))
    };
    const ADD: &[&str] = &["AddV2", "Add"];
    const MUL: &[&str] = &["Mul"];
    // Steps (add_2, mul_2, add_1, mul_1, mul), inputs (x, ma, mb, nm, beta), and whether
    // each op reads the chain value first.
    type Found = ([usize; 5], [Src; 5], [bool; 5], Option<Stats>);
    let mut found: Vec<Found> = Vec::new();
    for (si, (ni, _, ins)) in steps.iter().enumerate() {
        let [p, q] = ins.as_slice() else { continue };
        if !is(*ni, ADD) {
            continue;
        }
        'order: for (v2, v1, o_add2) in [(*p, *q, true), (*q, *p, false)] {
            let (Some((m2si, m2a, m2b)), Some((a1si, a1a, a1b))) =
                (binary(v2, MUL, 1), binary(v1, ADD, 1))
            else {
                continue;
            };
            for (v_mul1, beta, o_add1) in [(a1a, a1b, true), (a1b, a1a, false)] {
                let Some((m1si, m1a, m1b)) = binary(v_mul1, MUL, 1) else {
                    continue;
                };
                for (mul, nm, o_mul1) in [(m1b, m1a, false), (m1a, m1b, true)] {
                    let Some((msi, ma, mb)) = binary(mul, MUL, 2) else {
                        continue;
                    };
                    let (x, o_mul2) = if m2b == mul {
                        (m2a, true)
                    } else if m2a == mul {
                        (m2b, false)
                    } else {
                        continue;
                    };
                    let srcs = [x, ma, mb, nm, beta];
                    if srcs.contains(&mul) || srcs.contains(&v_mul1) || srcs.contains(&v2) {
                        continue;
                    }
                    let stats = match_stats(nodes, &steps, consts, &uses, &pos_of, &srcs);
                    found.push((
                        [si, m2si, a1si, m1si, msi],
                        srcs,
                        [o_add2, o_mul2, o_add1, o_mul1, true],
                        stats,
                    ));
                    break 'order;
                }
            }
        }
    }
    if found.is_empty() {
        return steps;
    }
    let mut slots: Vec<Option<PendingStep>> = steps.into_iter().map(Some).collect();
    for ([si, m2si, a1si, m1si, msi], srcs, [o_add2, o_mul2, o_add1, o_mul1, _], stats) in found {
        if [si, m2si, a1si, m1si, msi]
            .iter()
            .any(|&i| slots[i].is_none())
        {
            continue;
        }
        let stats = stats.filter(|st| st.0.iter().all(|&i| slots[i].is_some()));
        let ni = slots[si].as_ref().expect("checked").0;
        let mut take = |i: usize| slots[i].take().expect("checked").1;
        // Operand indices: 0..5 = x, ma, mb, nm, beta; 5 = mul, 6 = mul_1, 7 = add_1,
        // 8 = mul_2. `o_*` says whether the chain's own value is the op's first operand.
        let pair = |first_is_a: bool, a: usize, b: usize| if first_is_a { [a, b] } else { [b, a] };
        let ops = vec![
            (take(msi), [1, 2]),
            (take(m1si), pair(!o_mul1, 3, 5)),
            (take(a1si), pair(o_add1, 6, 4)),
            (take(m2si), pair(o_mul2, 0, 5)),
            (take(si), pair(o_add2, 8, 7)),
        ];
        let tail = LayerNormTail { ops };
        let Some((idx, progs, axes, eps, gamma, gamma_first)) = stats else {
            slots[si] = Some((ni, Box::new(tail), srcs.to_vec()));
            continue;
        };
        let stats = idx
            .into_iter()
            .zip(progs)
            .map(|(i, ins)| (slots[i].take().expect("checked").1, ins))
            .collect();
        let op = LayerNorm {
            stats,
            axes,
            eps,
            gamma_first,
            tail,
        };
        slots[si] = Some((ni, Box::new(op), vec![srcs[0], gamma, srcs[4]]));
    }
    slots.into_iter().flatten().collect()
}

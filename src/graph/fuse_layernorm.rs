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
//!
//! Keras 2 (`tf_keras`) traces the same moments and then `tf.nn.batch_normalization`:
//! `mul = Mul(r, gamma)`, `y = AddV2(Mul(x, mul), Sub(beta, Mul(mean, mul)))`. As
//! `beta - mean·m` is exactly `(-mean)·m + beta` (negation is exact, `a - b` is `a + (-b)`),
//! the same one-pass [`LayerNorm`] step serves it, bit-identical too.

use rayon::prelude::*;

use std::collections::HashMap;

use super::compile::{step_positions, use_counts, PendingStep, Src};
use crate::ops::kernels::reduce::{reduce_f32, ReduceOp};
use crate::ops::{EvalCtx, Op, OpError, Tensors};
use crate::proto::{attr_value, NodeDef};
use crate::tensor::{DType, Tensor};

/// The five ops, each with the positions of its operands in the fused step's inputs
/// (`0..5` = `x, ma, mb, nm, beta`; `5` = `mul`, `6` = `mul_1`, `7` = `add_1`, `8` = `mul_2`).
#[derive(Debug)]
pub(crate) struct LayerNormTail {
    ops: Vec<(Box<dyn Op>, [usize; 2])>,
}

fn first(mut v: Tensors) -> Result<Tensor, OpError> {
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

    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        if inputs.len() != 5 {
            return Err(OpError::Arity {
                expected: 5,
                got: inputs.len(),
            });
        }
        if let Some(y) = self.fast(&inputs)? {
            return Ok(tensors![y]);
        }
        let mut vals = inputs;
        for (op, [a, b]) in &self.ops {
            let ins = vec![vals[*a].clone(), vals[*b].clone()];
            vals.push(first(op.eval(cx, ins.into())?)?);
        }
        Ok(tensors![vals.pop().expect("five results")])
    }
}

/// An operand of one of [`LayerNorm`]'s ops: an earlier value or a constant.
#[derive(Debug)]
enum In {
    V(usize),
    C(Tensor),
}

/// A whole Keras 3 or Keras 2 layer norm (module docs). Inputs: `x`, `gamma`, `beta`.
#[derive(Debug)]
pub(crate) struct LayerNorm {
    /// The original ops in graph order, each appending its result to `[x, gamma, beta]`; the
    /// last one's is the output.
    prog: Vec<(Box<dyn Op>, Vec<In>)>,
    /// The two reduction axes and `eps`, for the one-pass path.
    axes: [Tensor; 2],
    eps: Tensor,
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
        // `(x - mean)²`, `Mean`, `+ eps`, `1 / sqrt`, then the tail (Keras 2's
        // `beta - mean·m` equals Keras 3's `(-mean)·m + beta` exactly: negation is exact).
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

    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [x, gamma, beta] = crate::ops::take_inputs(inputs)?;
        if let Some(y) = self.fast(&x, &gamma, &beta)? {
            return Ok(tensors![y]);
        }
        let mut vals = vec![x, gamma, beta];
        for (op, ins) in &self.prog {
            let ins = ins
                .iter()
                .map(|i| match i {
                    In::V(v) => vals[*v].clone(),
                    In::C(t) => t.clone(),
                })
                .collect();
            vals.push(first(op.eval(cx, ins)?)?);
        }
        Ok(tensors![vals.pop().expect("a non-empty program")])
    }
}

/// The plan being rewritten, with its read counts and step positions.
struct Graph<'a> {
    nodes: &'a [NodeDef],
    steps: &'a [PendingStep],
    consts: &'a HashMap<Src, Tensor>,
    uses: HashMap<Src, usize>,
    pos_of: HashMap<usize, usize>,
}

impl Graph<'_> {
    /// The step producing `v` (output 0 of an `ops` node read `count` times) and its inputs.
    fn prod(&self, v: Src, ops: &[&str], count: usize) -> Option<(usize, &[Src])> {
        let Src::Out(n, 0) = v else { return None };
        let &si = self.pos_of.get(&n)?;
        (ops.contains(&self.nodes[n].op.as_str()) && self.uses.get(&v) == Some(&count))
            .then_some((si, self.steps[si].2.as_slice()))
    }

    /// The two operands of binary step `v` (see [`Self::prod`]).
    fn binary(&self, v: Src, ops: &[&str], count: usize) -> Option<(usize, Src, Src)> {
        match self.prod(v, ops, count)? {
            (si, &[a, b]) => Some((si, a, b)),
            _ => None,
        }
    }

    fn keep_dims(&self, si: usize) -> bool {
        matches!(
            self.nodes[self.steps[si].0]
                .attr
                .get("keep_dims")
                .and_then(|a| a.value.as_ref()),
            Some(attr_value::Value::B(true))
        )
    }
}

/// `moments` + `Rsqrt`: steps (mean, sq, var, add, rsqrt), their operands (values `3..8`
/// after `[x, gamma, beta]`), the axes and `eps`.
type Moments = (Vec<usize>, Vec<Vec<In>>, [Tensor; 2], Tensor);

/// Matches `r = Rsqrt(AddV2(Mean(SquaredDifference(x, mean)), eps))` with
/// `mean = Mean(x)` read twice (by the `SquaredDifference` and the tail), `keep_dims` set.
fn match_moments(g: &Graph<'_>, x: Src, r: Src, mean: Src) -> Option<Moments> {
    let (rs, &[e]) = g.prod(r, &["Rsqrt"], 1)? else {
        return None;
    };
    let (adds, p, q) = g.binary(e, &["AddV2", "Add"], 1)?;
    let (var, eps, eps_first) = match (g.consts.get(&p), g.consts.get(&q)) {
        (None, Some(t)) => (p, t, false),
        (Some(t), None) => (q, t, true),
        _ => return None,
    };
    let (vs, sq, ax2) = g.binary(var, &["Mean"], 1)?;
    let (sqs, s0, s1) = g.binary(sq, &["SquaredDifference"], 1)?;
    let (ms, x1, ax1) = g.binary(mean, &["Mean"], 2)?;
    let sq_mean_first = match (s0, s1) {
        (a, b) if a == x && b == mean => false,
        (a, b) if a == mean && b == x => true,
        _ => return None,
    };
    if x1 != x || !g.keep_dims(vs) || !g.keep_dims(ms) || eps.dtype() != DType::F32 {
        return None;
    }
    let (a1, a2) = (g.consts.get(&ax1)?.clone(), g.consts.get(&ax2)?.clone());
    let progs = vec![
        vec![In::V(0), In::C(a1.clone())],
        pair(sq_mean_first, In::V(3), In::V(0)),
        vec![In::V(4), In::C(a2.clone())],
        pair(eps_first, In::C(eps.clone()), In::V(5)),
        vec![In::V(6)],
    ];
    Some((vec![ms, sqs, vs, adds, rs], progs, [a1, a2], eps.clone()))
}

/// `[a, b]` when `first`, else `[b, a]`.
fn pair<T>(first: bool, a: T, b: T) -> Vec<T> {
    if first {
        vec![a, b]
    } else {
        vec![b, a]
    }
}

/// Of `mul`'s operands `ma`, `mb`: (`gamma`, `r`, whether `gamma` is first), `r` being an
/// `Rsqrt` result read once.
fn gamma_and_r(g: &Graph<'_>, ma: Src, mb: Src) -> Option<(Src, Src, bool)> {
    match (g.prod(ma, &["Rsqrt"], 1), g.prod(mb, &["Rsqrt"], 1)) {
        (Some(_), None) => Some((mb, ma, false)),
        (None, Some(_)) => Some((ma, mb, true)),
        _ => None,
    }
}

/// A whole layer norm: its steps in program order (the last is the output step), the
/// program's operands, the axes and `eps`, and the inputs `[x, gamma, beta]`.
type Whole = (Vec<usize>, Vec<Vec<In>>, [Tensor; 2], Tensor, [Src; 3]);

/// The Keras 3 tail `[x, ma, mb, nm, beta]` (steps and operand order as in
/// [`fuse_layernorm_tail`]) with its statistics, as a [`Whole`].
fn keras3_whole(
    g: &Graph<'_>,
    srcs: [Src; 5],
    tail_steps: [usize; 5],
    tail_ins: [[usize; 2]; 5],
) -> Option<Whole> {
    let [x, ma, mb, nm, beta] = srcs;
    let (gamma, r, gamma_first) = gamma_and_r(g, ma, mb)?;
    let (neg, &[mean]) = g.prod(nm, &["Neg"], 1)? else {
        return None;
    };
    let (mut steps, mut progs, axes, eps) = match_moments(g, x, r, mean)?;
    steps.push(neg);
    progs.push(vec![In::V(3)]);
    // Values: 0 x, 1 gamma, 2 beta, 3..8 moments, 8 nm, 9.. the tail's (its 5..).
    let map = |i: usize| match i {
        0 => 0,
        1 => [7, 1][usize::from(gamma_first)],
        2 => [1, 7][usize::from(gamma_first)],
        3 => 8,
        4 => 2,
        k => k + 4,
    };
    steps.extend(tail_steps);
    progs.extend(tail_ins.map(|[a, b]| vec![In::V(map(a)), In::V(map(b))]));
    Some((steps, progs, axes, eps, [x, gamma, beta]))
}

/// Keras 2's `tf.nn.batch_normalization` tail ending at `AddV2` step `si` (inputs `p`, `q`):
/// `mul = Mul(r, gamma)`, `mul_1 = Mul(x, mul)`, `mul_2 = Mul(mean, mul)`,
/// `sub = Sub(beta, mul_2)`, `y = AddV2(mul_1, sub)` (any operand order but `Sub`'s), with
/// its statistics, as a [`Whole`].
fn keras2_whole(g: &Graph<'_>, si: usize, p: Src, q: Src) -> Option<Whole> {
    for (v1, vs, o_add) in [(p, q, true), (q, p, false)] {
        let Some((subs, beta, v2)) = g.binary(vs, &["Sub"], 1) else {
            continue;
        };
        let (m1s, a1, b1) = g.binary(v1, &["Mul"], 1)?;
        let (m2s, a2, b2) = g.binary(v2, &["Mul"], 1)?;
        // `mul` is the operand the two products share.
        for (mul, x, o_m1) in [(b1, a1, true), (a1, b1, false)] {
            let (mean, o_m2) = if b2 == mul {
                (a2, true)
            } else if a2 == mul {
                (b2, false)
            } else {
                continue;
            };
            let Some((ms, ma, mb)) = g.binary(mul, &["Mul"], 2) else {
                continue;
            };
            let (gamma, r, gamma_first) = gamma_and_r(g, ma, mb)?;
            let (mut steps, mut progs, axes, eps) = match_moments(g, x, r, mean)?;
            if [x, gamma, beta].contains(&mean) || [x, beta].contains(&mul) {
                return None;
            }
            // Values: 0 x, 1 gamma, 2 beta, 3..8 moments (3 mean, 7 r), 8 mul, 9 mul_1,
            // 10 mul_2, 11 sub, 12 y.
            steps.extend([ms, m1s, m2s, subs, si]);
            progs.extend([
                pair(!gamma_first, In::V(7), In::V(1)),
                pair(o_m1, In::V(0), In::V(8)),
                pair(o_m2, In::V(3), In::V(8)),
                vec![In::V(2), In::V(10)],
                pair(o_add, In::V(9), In::V(11)),
            ]);
            return Some((steps, progs, axes, eps, [x, gamma, beta]));
        }
    }
    None
}

/// Rewrites Keras' layer-norm tail (module docs) into one [`LayerNormTail`] step at the
/// position and under the node of its final `AddV2`, or, with the statistics before it (Keras
/// 3's or Keras 2's), the whole layer norm into one [`LayerNorm`] step there.
pub(super) fn fuse_layernorm_tail(
    nodes: &[NodeDef],
    steps: Vec<PendingStep>,
    consts: &HashMap<Src, Tensor>,
    outs: &[Src],
) -> Vec<PendingStep> {
    let g = Graph {
        nodes,
        steps: &steps,
        consts,
        uses: use_counts(&steps, outs),
        pos_of: step_positions(&steps),
    };
    let is = |n: usize, ops: &[&str]| ops.contains(&nodes[n].op.as_str());
    const ADD: &[&str] = &["AddV2", "Add"];
    const MUL: &[&str] = &["Mul"];
    // Steps (mul, mul_1, add_1, mul_2, add_2) and their operands (indices as in
    // `LayerNormTail::ops`), and inputs (x, ma, mb, nm, beta).
    type Found = ([usize; 5], [[usize; 2]; 5], [Src; 5]);
    let mut found: Vec<Found> = Vec::new();
    let mut wholes: Vec<Whole> = Vec::new();
    for (si, (ni, _, ins)) in steps.iter().enumerate() {
        let [p, q] = ins.as_slice() else { continue };
        if !is(*ni, ADD) {
            continue;
        }
        if let Some(w) = keras2_whole(&g, si, *p, *q) {
            wholes.push(w);
            continue;
        }
        'order: for (v2, v1, o_add2) in [(*p, *q, true), (*q, *p, false)] {
            let (Some((m2si, m2a, m2b)), Some((a1si, a1a, a1b))) =
                (g.binary(v2, MUL, 1), g.binary(v1, ADD, 1))
            else {
                continue;
            };
            for (v_mul1, beta, o_add1) in [(a1a, a1b, true), (a1b, a1a, false)] {
                let Some((m1si, m1a, m1b)) = g.binary(v_mul1, MUL, 1) else {
                    continue;
                };
                for (mul, nm, o_mul1) in [(m1b, m1a, false), (m1a, m1b, true)] {
                    let Some((msi, ma, mb)) = g.binary(mul, MUL, 2) else {
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
                    // Operand indices: 0..5 = x, ma, mb, nm, beta; 5 = mul, 6 = mul_1,
                    // 7 = add_1, 8 = mul_2. `o_*`: whether the chain's value is the first.
                    let two = |first_is_a: bool, a: usize, b: usize| {
                        if first_is_a {
                            [a, b]
                        } else {
                            [b, a]
                        }
                    };
                    let tail_steps = [msi, m1si, a1si, m2si, si];
                    let tail_ins = [
                        [1, 2],
                        two(!o_mul1, 3, 5),
                        two(o_add1, 6, 4),
                        two(o_mul2, 0, 5),
                        two(o_add2, 8, 7),
                    ];
                    match keras3_whole(&g, srcs, tail_steps, tail_ins) {
                        Some(w) => wholes.push(w),
                        None => found.push((tail_steps, tail_ins, srcs)),
                    }
                    break 'order;
                }
            }
        }
    }
    if found.is_empty() && wholes.is_empty() {
        return steps;
    }
    let mut slots: Vec<Option<PendingStep>> = steps.into_iter().map(Some).collect();
    for (idx, progs, axes, eps, ins) in wholes {
        if idx.iter().any(|&i| slots[i].is_none()) {
            continue;
        }
        let si = *idx.last().expect("non-empty");
        let ni = slots[si].as_ref().expect("checked").0;
        let prog = idx
            .into_iter()
            .zip(progs)
            .map(|(i, ins)| (slots[i].take().expect("checked").1, ins))
            .collect();
        let op = LayerNorm { prog, axes, eps };
        slots[si] = Some((ni, Box::new(op), ins.to_vec()));
    }
    for (idx, ins, srcs) in found {
        if idx.iter().any(|&i| slots[i].is_none()) {
            continue;
        }
        let si = idx[4];
        let ni = slots[si].as_ref().expect("checked").0;
        let ops = idx
            .into_iter()
            .zip(ins)
            .map(|(i, ab)| (slots[i].take().expect("checked").1, ab))
            .collect();
        slots[si] = Some((ni, Box::new(LayerNormTail { ops }), srcs.to_vec()));
    }
    slots.into_iter().flatten().collect()
}

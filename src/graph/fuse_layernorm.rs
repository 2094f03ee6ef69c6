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

use rayon::prelude::*;

use super::compile::{step_positions, use_counts, PendingStep, Src};
use crate::ops::{EvalCtx, Op, OpError, Tensors};
use crate::proto::NodeDef;
use crate::tensor::Tensor;

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

/// Rewrites Keras' layer-norm tail (module docs) into one [`LayerNormTail`] step at the
/// position and under the node of its final `AddV2`.
pub(super) fn fuse_layernorm_tail(
    nodes: &[NodeDef],
    steps: Vec<PendingStep>,
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
    type Found = ([usize; 5], [Src; 5], [bool; 5]);
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
                    found.push((
                        [si, m2si, a1si, m1si, msi],
                        srcs,
                        [o_add2, o_mul2, o_add1, o_mul1, true],
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
    for ([si, m2si, a1si, m1si, msi], srcs, [o_add2, o_mul2, o_add1, o_mul1, _]) in found {
        if [si, m2si, a1si, m1si, msi]
            .iter()
            .any(|&i| slots[i].is_none())
        {
            continue;
        }
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
        slots[si] = Some((ni, Box::new(LayerNormTail { ops }), srcs.to_vec()));
    }
    slots.into_iter().flatten().collect()
}

//! Plan-time fusion of a dense layer's bias (and exact GELU) into its matrix product.
//!
//! Keras traces a `Dense` on a `[batch, seq, d]` input as `MatMul` (on the input reshaped to
//! a matrix) → `Reshape` back to rank 3 → `BiasAdd` → activation, and its `EinsumDense`
//! projections (Keras 3's attention) as `BatchMatMulV2` (activation × 2-D kernel) →
//! `Reshape` to `[batch, seq, heads, head_dim]` → `AddV2(bias [heads, head_dim])`, or
//! `BatchMatMulV2` → `BiasAdd` for the output projection. The `Reshape` between product and
//! bias kept `graph::fuse`'s epilogue chains from forming, so the bias (and GELU, BERT's FFN
//! activation: one [`fuse_gelu`](super::fuse_gelu) step) each cost a pass over the full
//! `[batch·seq, n]` output. [`fuse_dense`] replaces `product → [Reshape] → bias → [GELU]`,
//! when every intermediate is read once and is not a plan output, by one [`DenseBias`] step
//! (a plain `MatMul → BiasAdd` without either is left to `graph::fuse`'s chains)
//! that runs the GEMM with the bias (broadcast to one value per output column) and GELU in
//! its epilogue, on each tile while it is in L1, then reshapes.
//!
//! Bit-identical to the separate ops: the GEMM is the producer's own (same packing, blocking
//! and summation order), the bias is one `f32` addition per element (IEEE addition is
//! commutative), and the GELU is the same lane function as the `Gelu` step. Anything the
//! fast path does not cover (dtypes, shapes, a bias that broadcasts beyond the columns, a
//! GELU constant other than `f32` `1/√2`) runs the original ops.

use std::collections::{HashMap, HashSet};

use super::compile::{use_counts, PendingStep, Src};
use crate::ops::kernels::epilogue::{Activation, ChannelOp, Epilogue, GELU_C};
use crate::ops::{EvalCtx, Op, OpError, Tensors};
use crate::proto::{attr_value, NodeDef};
use crate::tensor::{DType, Tensor};

/// The producer and its output layout before any `Reshape`.
#[derive(Debug, Clone, Copy)]
enum Head {
    /// `MatMul` (`[m, n]` output).
    MatMul,
    /// `BatchMatMulV2/V3` flattened to one GEMM: the output is `x`'s shape with the last
    /// dimension replaced by `n`.
    BatchMatMul,
}

/// `product → [Reshape] → bias → [GELU]` as one step (see the module docs). Inputs: the
/// product's two operands, the `Reshape`'s shape (when there is one), the bias.
#[derive(Debug)]
pub(crate) struct DenseBias {
    head_kind: Head,
    head: Box<dyn Op>,
    reshape: Option<Box<dyn Op>>,
    bias: Box<dyn Op>,
    /// `BiasAdd` (bias rank 1 over the last axis) rather than `Add`/`AddV2`.
    bias_add: bool,
    /// Whether the bias is the `Add`'s first operand.
    bias_first: bool,
    /// The fused GELU step (its constant is `GELU_C`).
    gelu: Option<Box<dyn Op>>,
    label: String,
}

fn first(mut v: Tensors) -> Result<Tensor, OpError> {
    if v.is_empty() {
        return Err(OpError::invalid("fused dense step returned no output"));
    }
    Ok(v.swap_remove(0))
}

/// `Reshape`'s target for `total` elements (TF's rules: one `-1` inferred, other entries
/// non-negative); `None` when invalid (the op then reports the error).
fn reshape_target(shape: &Tensor, total: usize) -> Option<Vec<usize>> {
    if shape.rank() > 1 || !matches!(shape.dtype(), DType::I32 | DType::I64) {
        return None;
    }
    let dims = shape.to_i64_vec().ok()?;
    let mut known = 1usize;
    let mut infer = None;
    for (i, &d) in dims.iter().enumerate() {
        match d {
            -1 if infer.is_none() => infer = Some(i),
            d if d >= 0 => known = known.checked_mul(d as usize)?,
            _ => return None,
        }
    }
    let mut out: Vec<usize> = dims.iter().map(|&d| d.max(0) as usize).collect();
    if let Some(i) = infer {
        if known == 0 || total % known != 0 {
            return None;
        }
        out[i] = total / known;
    } else if known != total {
        return None;
    }
    Some(out)
}

/// The bias as one value per product column, when adding it to an output of shape `target`
/// (whose trailing dims hold the `n` columns) broadcasts within the columns; `None` else.
fn bias_columns(bias: &Tensor, target: &[usize], n: usize, bias_add: bool) -> Option<Vec<f32>> {
    let b = bias.as_slice::<f32>().ok()?;
    let bs = bias.shape();
    if bias_add && (bs.len() != 1 || target.len() < 2 || target.last() != Some(&bs[0])) {
        return None;
    }
    if bs.len() > target.len() {
        return None;
    }
    // The trailing dims of `target` spanning exactly the `n` columns.
    let mut at = target.len();
    let mut prod = 1usize;
    while prod < n && at > 0 {
        at -= 1;
        prod = prod.checked_mul(target[at])?;
    }
    if prod != n || n == 0 {
        return None;
    }
    let suffix = &target[at..];
    let lead = bs.iter().take_while(|&&d| d == 1).count();
    let core = &bs[lead..];
    if core.len() > suffix.len() {
        return None;
    }
    let off = suffix.len() - core.len();
    if core
        .iter()
        .zip(&suffix[off..])
        .any(|(&c, &s)| c != s && c != 1)
    {
        return None;
    }
    // Column j = row-major index over `suffix`; the bias index uses `core`'s strides
    // (0 where it broadcasts).
    let mut strides = vec![0usize; suffix.len()];
    let mut s = 1;
    for i in (0..core.len()).rev() {
        strides[off + i] = if core[i] == 1 { 0 } else { s };
        s *= core[i];
    }
    let mut out = Vec::with_capacity(n);
    let mut idx = vec![0usize; suffix.len()];
    for _ in 0..n {
        let bi: usize = idx.iter().zip(&strides).map(|(i, s)| i * s).sum();
        out.push(*b.get(bi)?);
        for d in (0..suffix.len()).rev() {
            idx[d] += 1;
            if idx[d] < suffix[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    Some(out)
}

impl DenseBias {
    /// The fused evaluation, `None` when it does not apply.
    fn fast(
        &self,
        cx: &mut EvalCtx<'_>,
        a: &Tensor,
        w: &Tensor,
        shape: Option<&Tensor>,
        bias: &Tensor,
    ) -> Result<Option<Tensor>, OpError> {
        let Some(producer) = self.head.epilogue_producer() else {
            return Ok(None);
        };
        if bias.dtype() != DType::F32 || a.dtype() != DType::F32 || w.rank() != 2 {
            return Ok(None);
        }
        let Some(n) = producer.out_channels(&[a.clone(), w.clone()]) else {
            return Ok(None);
        };
        if n == 0 || w.len() % n != 0 {
            return Ok(None);
        }
        let k = w.len() / n;
        if k == 0 || a.len() % k != 0 {
            return Ok(None);
        }
        let total = a.len() / k * n;
        let natural = match self.head_kind {
            Head::MatMul => vec![total / n, n],
            Head::BatchMatMul => {
                let mut s = a.shape().to_vec();
                match s.last_mut() {
                    Some(d) => *d = n,
                    None => return Ok(None),
                }
                s
            }
        };
        let target = match (shape, &self.reshape) {
            (Some(s), Some(_)) => match reshape_target(s, total) {
                Some(t) => t,
                None => return Ok(None),
            },
            _ => natural,
        };
        let Some(cols) = bias_columns(bias, &target, n, self.bias_add) else {
            return Ok(None);
        };
        let ops = [ChannelOp::Add(&cols)];
        let ep = Epilogue {
            ops: &ops,
            act: if self.gelu.is_some() {
                Activation::Gelu
            } else {
                Activation::None
            },
        };
        let out = producer.eval_epilogue(cx, tensors![a.clone(), w.clone()], &ep)?;
        Ok(Some(out.reshape(&target)?))
    }
}

impl Op for DenseBias {
    fn profile_detail(&self, _inputs: &[Tensor]) -> Option<String> {
        Some(self.label.clone())
    }

    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let want = 3 + usize::from(self.reshape.is_some());
        if inputs.len() != want {
            return Err(OpError::invalid(format!(
                "fused dense step expects {want} inputs, got {}",
                inputs.len()
            )));
        }
        let mut it = inputs.into_iter();
        let (Some(a), Some(w)) = (it.next(), it.next()) else {
            return Err(OpError::invalid("fused dense step: missing operands"));
        };
        let shape = if self.reshape.is_some() {
            it.next()
        } else {
            None
        };
        let Some(bias) = it.next() else {
            return Err(OpError::invalid("fused dense step: missing bias"));
        };
        if let Some(t) = self.fast(cx, &a, &w, shape.as_ref(), &bias)? {
            return Ok(tensors![t]);
        }
        let mut x = first(self.head.eval(cx, tensors![a, w])?)?;
        if let (Some(op), Some(s)) = (&self.reshape, shape) {
            x = first(op.eval(cx, tensors![x, s])?)?;
        }
        let ins = if self.bias_first {
            vec![bias, x]
        } else {
            vec![x, bias]
        };
        x = first(self.bias.eval(cx, ins.into())?)?;
        if let Some(g) = &self.gelu {
            x = first(g.eval(cx, tensors![x])?)?;
        }
        Ok(tensors![x])
    }
}

fn attr_bool(node: &NodeDef, name: &str) -> bool {
    matches!(
        node.attr.get(name).and_then(|v| v.value.as_ref()),
        Some(attr_value::Value::B(true))
    )
}

/// Rewrites `product → [Reshape] → bias → [GELU]` (module docs) into one [`DenseBias`] step
/// at the position and under the node of its last op. `gelu` maps the node of each fused
/// GELU step to its `1/√2` constant.
pub(super) fn fuse_dense(
    nodes: &[NodeDef],
    steps: Vec<PendingStep>,
    outs: &[Src],
    gelu: &HashMap<usize, f32>,
) -> Vec<PendingStep> {
    let uses = use_counts(&steps, outs);
    let mut consumer: HashMap<Src, usize> = HashMap::new();
    for (si, (_, _, ins)) in steps.iter().enumerate() {
        for s in ins {
            consumer.insert(*s, si);
        }
    }
    // The only reader of output 0 of step `si`, if it comes later.
    let next = |si: usize| -> Option<(usize, Src)> {
        let x = Src::Out(steps[si].0, 0);
        if uses.get(&x) != Some(&1) {
            return None;
        }
        let &c = consumer.get(&x)?;
        (c > si).then_some((c, x))
    };
    // (head, reshape, bias, bias_first, bias_add, gelu)
    let mut found = Vec::new();
    let mut taken = HashSet::new();
    for (si, (ni, op, ins)) in steps.iter().enumerate() {
        let node = &nodes[*ni];
        let head_kind = match node.op.as_str() {
            "MatMul" => Head::MatMul,
            "BatchMatMulV2" | "BatchMatMulV3" if !attr_bool(node, "adj_x") => Head::BatchMatMul,
            _ => continue,
        };
        if ins.len() != 2 || op.epilogue_producer().is_none() || gelu.contains_key(ni) {
            continue;
        }
        let Some((mut cur, mut x)) = next(si) else {
            continue;
        };
        let mut reshape = None;
        if nodes[steps[cur].0].op == "Reshape" && steps[cur].2.len() == 2 && steps[cur].2[0] == x {
            reshape = Some(cur);
            let Some(nx) = next(cur) else { continue };
            (cur, x) = nx;
        }
        let (bni, bins) = (steps[cur].0, &steps[cur].2);
        let bnode = &nodes[bni];
        let (bias_first, bias_add) = match (bnode.op.as_str(), bins.as_slice()) {
            ("BiasAdd" | "BiasAddV1", [p, b]) if *p == x && *b != x => {
                let nchw = matches!(
                    bnode.attr.get("data_format").and_then(|v| v.value.as_ref()),
                    Some(attr_value::Value::S(s)) if s.as_slice() == b"NCHW"
                );
                if nchw {
                    continue;
                }
                (false, true)
            }
            ("Add" | "AddV2", [p, q]) if (*p == x) != (*q == x) && !gelu.contains_key(&bni) => {
                (*q == x, false)
            }
            _ => continue,
        };
        let bias_step = cur;
        let mut gelu_step = None;
        if let Some((g, y)) = next(bias_step) {
            let gni = steps[g].0;
            if gelu.get(&gni) == Some(&GELU_C) && steps[g].2 == [y] {
                gelu_step = Some(g);
            }
        }
        // A plain `MatMul → BiasAdd` is `graph::fuse`'s epilogue chain (which also takes a
        // following ReLU): leave it there.
        if matches!(head_kind, Head::MatMul) && reshape.is_none() && gelu_step.is_none() {
            continue;
        }
        let all: Vec<usize> = [Some(si), reshape, Some(bias_step), gelu_step]
            .into_iter()
            .flatten()
            .collect();
        if all.iter().any(|s| taken.contains(s)) {
            continue;
        }
        taken.extend(all.iter().copied());
        found.push((
            si, head_kind, reshape, bias_step, bias_first, bias_add, gelu_step,
        ));
    }
    if found.is_empty() {
        return steps;
    }
    let mut slots: Vec<Option<PendingStep>> = steps.into_iter().map(Some).collect();
    for (si, head_kind, reshape, bias_step, bias_first, bias_add, gelu_step) in found {
        let take = |slots: &mut Vec<Option<PendingStep>>, i: usize| slots[i].take();
        let (Some((hni, head, hins)), Some((bni, bias, bins))) =
            (take(&mut slots, si), take(&mut slots, bias_step))
        else {
            continue;
        };
        let mut inputs = hins;
        let mut label = format!("dense {}", nodes[hni].op);
        let reshape = reshape.and_then(|r| take(&mut slots, r));
        let reshape = reshape.map(|(_, op, ins)| {
            inputs.push(ins[1]);
            label.push_str("+Reshape");
            op
        });
        inputs.push(if bias_first { bins[0] } else { bins[1] });
        label.push('+');
        label.push_str(&nodes[bni].op);
        let (mut last_si, mut last_ni) = (bias_step, bni);
        let gelu = gelu_step.and_then(|g| {
            let (gni, op, _) = take(&mut slots, g)?;
            (last_si, last_ni) = (g, gni);
            label.push_str("+gelu");
            Some(op)
        });
        let op = DenseBias {
            head_kind,
            head,
            reshape,
            bias,
            bias_add,
            bias_first,
            gelu,
            label,
        };
        slots[last_si] = Some((last_ni, Box::new(op), inputs));
    }
    slots.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t_i64(v: &[i64]) -> Tensor {
        Tensor::from_vec(&[v.len()], v.to_vec()).unwrap()
    }

    #[test]
    fn reshape_target_infers_one_dim() {
        assert_eq!(
            reshape_target(&t_i64(&[8, -1, 512]), 8 * 128 * 512),
            Some(vec![8, 128, 512])
        );
        assert_eq!(reshape_target(&t_i64(&[8, 3]), 25), None);
        assert_eq!(reshape_target(&t_i64(&[-1, -1]), 25), None);
        assert_eq!(reshape_target(&t_i64(&[-2, 5]), 10), None);
    }

    #[test]
    fn bias_columns_broadcast_within_columns_only() {
        // [heads, head_dim] bias over [b, s, heads, head_dim] with n = heads·head_dim.
        let b = Tensor::from_vec(&[2, 3], vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        assert_eq!(
            bias_columns(&b, &[4, 5, 2, 3], 6, false),
            Some(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
        );
        // A per-head_dim bias repeats over heads.
        let h = Tensor::from_vec(&[1, 3], vec![1.0f32, 2.0, 3.0]).unwrap();
        assert_eq!(
            bias_columns(&h, &[4, 5, 2, 3], 6, false),
            Some(vec![1.0, 2.0, 3.0, 1.0, 2.0, 3.0])
        );
        // A bias over rows (beyond the columns) does not fuse.
        let r = Tensor::from_vec(&[5, 1, 1], vec![0.0f32; 5]).unwrap();
        assert_eq!(bias_columns(&r, &[4, 5, 2, 3], 6, false), None);
        // BiasAdd needs a rank-1 bias of the last dim; rank > output rank never fuses.
        assert_eq!(bias_columns(&b, &[4, 5, 2, 3], 6, true), None);
        let big = Tensor::from_vec(&[1, 1, 1, 1, 6], vec![0.0f32; 6]).unwrap();
        assert_eq!(bias_columns(&big, &[4, 5, 6], 6, false), None);
        let v = Tensor::from_vec(&[6], vec![0.5f32; 6]).unwrap();
        assert_eq!(bias_columns(&v, &[20, 6], 6, true), Some(vec![0.5; 6]));
    }
}

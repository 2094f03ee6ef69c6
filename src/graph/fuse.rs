//! Plan-time fusion of `producer → per-channel steps → activation` chains.
//!
//! Finds `MatMul | Conv2D | DepthwiseConv2dNative` followed by `BiasAdd` (NHWC), `Add`,
//! `AddV2`, `Mul`, `Sub`, inference-mode channels-last `FusedBatchNorm{,V2,V3}` (only its
//! output 0 read) steps and at most one final `Relu | Relu6`, where every
//! intermediate value is read by exactly one op and is not a plan output, and replaces the
//! chain with one [`FusedChain`] step at the position (and under the node name) of its last
//! op. The fused op decides per call whether the fast path applies and otherwise runs the
//! original ops, so the rewrite is purely structural (see `ops::fused`).
//!
//! Before that, [`fuse_swish`] turns `Mul(x, Sigmoid(x))` (the sigmoid read only by the `Mul`;
//! also Keras 3's `Mul(x, Sigmoid(Mul(1.0, x)))`, its `silu` with `beta = 1`) into one [`Swish`]
//! step, which in turn may end a chain as its activation (EfficientNet's
//! `conv → batch norm → swish`).

use std::collections::{HashMap, HashSet};

use super::compile::{step_positions, use_counts, PendingStep, Src};

mod block;
use crate::ops::fused::{FusedChain, PaddedConv, Swish, SwishBeta, Tail, TailKind};
use crate::ops::Op;
use crate::proto::{attr_value, NodeDef};
use crate::tensor::{DType, Tensor};

/// Whether `node` may head a chain.
fn is_head(node: &NodeDef, op: &dyn Op) -> bool {
    matches!(
        node.op.as_str(),
        "MatMul" | "Conv2D" | "DepthwiseConv2dNative"
    ) && op.epilogue_producer().is_some()
}

fn attr<'a>(node: &'a NodeDef, name: &str) -> Option<&'a attr_value::Value> {
    node.attr.get(name).and_then(|v| v.value.as_ref())
}

/// `FusedBatchNorm*` that the fused op can apply per channel: inference mode, channels last.
/// Returns its epsilon (TF's default `0.0001` when stripped, as the op's builder does).
fn batch_norm_epsilon(node: &NodeDef) -> Option<f32> {
    use attr_value::Value;
    if !matches!(attr(node, "is_training"), Some(Value::B(false))) {
        return None;
    }
    match attr(node, "data_format") {
        None => {}
        Some(Value::S(s)) if s.as_slice() == b"NHWC" => {}
        Some(_) => return None,
    }
    match attr(node, "epsilon") {
        None => Some(1e-4),
        Some(Value::F(e)) => Some(*e),
        Some(_) => None,
    }
}

/// Makes readers of an `IdentityN` output read the matching input instead, and drops the
/// `IdentityN` steps nobody reads any more (Keras 3 wraps `silu` in one for its custom
/// gradient: `IdentityN(x * sigmoid(x), x)`, whose extra read of `x` would stop fusion).
/// Outputs of the plan keep their `IdentityN`.
pub(super) fn bypass_identity_n(
    nodes: &[NodeDef],
    mut steps: Vec<PendingStep>,
    outs: &[Src],
) -> Vec<PendingStep> {
    let mut forward: HashMap<Src, Src> = HashMap::new();
    for (ni, _, ins) in &steps {
        if nodes[*ni].op == "IdentityN" {
            for (i, s) in ins.iter().enumerate() {
                // An IdentityN reading another one: follow it (steps are in plan order).
                let s = forward.get(s).copied().unwrap_or(*s);
                forward.insert(Src::Out(*ni, i), s);
            }
        }
    }
    if forward.is_empty() {
        return steps;
    }
    for (ni, _, ins) in steps.iter_mut() {
        if nodes[*ni].op == "IdentityN" {
            continue;
        }
        for s in ins.iter_mut() {
            if let Some(t) = forward.get(s) {
                *s = *t;
            }
        }
    }
    let uses = use_counts(&steps, outs);
    steps.retain(|(ni, _, ins)| {
        nodes[*ni].op != "IdentityN" || (0..ins.len()).any(|i| uses.contains_key(&Src::Out(*ni, i)))
    });
    steps
}

/// Whether `c` is the `f32` scalar (rank 0) `1.0`.
fn is_f32_one(c: Option<&Tensor>) -> bool {
    c.filter(|t| t.dtype() == DType::F32 && t.rank() == 0)
        .and_then(|t| t.as_slice::<f32>().ok().map(|v| v[0] == 1.0))
        .unwrap_or(false)
}

/// Rewrites `s = Sigmoid(x); y = Mul(x, s)` (or `Mul(s, x)`), where `s` has no other reader
/// and is not a plan output, into one [`Swish`] step at the `Mul`'s position taking `x`.
/// Keras 3's `silu` computes `x * sigmoid(beta * x)` with a constant `beta = 1.0`: a
/// `Mul(1.0, x)` (either order, `f32` scalar constant, read only by the sigmoid) feeding the
/// sigmoid is absorbed too (`1.0 · x` is `x` exactly, so the result is unchanged; the `Mul`
/// stays in the step for the non-`f32` path). Returns the rewritten steps and the node indices
/// of the swish steps (their `Mul`s).
pub(super) fn fuse_swish(
    nodes: &[NodeDef],
    steps: Vec<PendingStep>,
    consts: &HashMap<Src, Tensor>,
    outs: &[Src],
) -> (Vec<PendingStep>, HashSet<usize>) {
    let mut swish = HashSet::new();
    let uses = use_counts(&steps, outs);
    let pos_of = step_positions(&steps);
    // `Mul(1.0, x)` / `Mul(x, 1.0)` steps read only once: their position, `x` and the
    // constant's position.
    let scaled = |v: Src| -> Option<(usize, Src, bool)> {
        let Src::Out(n, 0) = v else { return None };
        let &si = pos_of.get(&n)?;
        let ins = &steps[si].2;
        if nodes[n].op != "Mul" || ins.len() != 2 || uses.get(&v) != Some(&1) {
            return None;
        }
        if is_f32_one(consts.get(&ins[0])) && !consts.contains_key(&ins[1]) {
            Some((si, ins[1], true))
        } else if is_f32_one(consts.get(&ins[1])) && !consts.contains_key(&ins[0]) {
            Some((si, ins[0], false))
        } else {
            None
        }
    };
    // (mul step, sigmoid step, beta step and whether its constant comes first, x, x_first)
    let mut found = Vec::new();
    for (si, (ni, _, ins)) in steps.iter().enumerate() {
        if nodes[*ni].op != "Mul" || ins.len() != 2 {
            continue;
        }
        for (s_pos, x_first) in [(1, true), (0, false)] {
            let (s, x) = (ins[s_pos], ins[1 - s_pos]);
            let Src::Out(sn, 0) = s else { continue };
            let Some(&ssi) = pos_of.get(&sn) else {
                continue;
            };
            if nodes[sn].op != "Sigmoid" || uses.get(&s) != Some(&1) || s == x {
                continue;
            }
            let [sin] = steps[ssi].2.as_slice() else {
                continue;
            };
            if *sin == x {
                found.push((si, ssi, None, x, x_first));
                break;
            }
            if let Some((bsi, bx, c_first)) = scaled(*sin) {
                if bx == x {
                    found.push((si, ssi, Some((bsi, c_first)), x, x_first));
                    break;
                }
            }
        }
    }
    if found.is_empty() {
        return (steps, swish);
    }
    let mut slots: Vec<Option<PendingStep>> = steps.into_iter().map(Some).collect();
    for (si, ssi, beta, x, x_first) in found {
        let (Some((ni, mul, _)), Some((_, sig, _))) = (slots[si].take(), slots[ssi].take()) else {
            continue;
        };
        let beta = match beta {
            None => None,
            Some((bsi, c_first)) => {
                let Some((_, op, ins)) = slots[bsi].take() else {
                    continue;
                };
                let c = consts[&ins[if c_first { 0 } else { 1 }]].clone();
                Some(SwishBeta { op, c, c_first })
            }
        };
        swish.insert(ni);
        slots[si] = Some((ni, Box::new(Swish::new(sig, mul, x_first, beta)), vec![x]));
    }
    (slots.into_iter().flatten().collect(), swish)
}

/// `[(top, bottom), (left, right)]` of a constant `Pad` paddings tensor (`[4, 2]`, int32 or
/// int64) that pads height and width only.
fn paddings_hw(t: &Tensor) -> Option<[(usize, usize); 2]> {
    if t.shape() != [4, 2] {
        return None;
    }
    let v: Vec<i64> = match t.dtype() {
        DType::I32 => t
            .as_slice::<i32>()
            .ok()?
            .iter()
            .map(|&v| v as i64)
            .collect(),
        DType::I64 => t.as_slice::<i64>().ok()?.to_vec(),
        _ => return None,
    };
    // Paddings this large fail in `Pad` anyway; keep them on the unfused path.
    if v.iter().any(|&p| !(0..=1 << 20).contains(&p)) || v[0..2] != [0, 0] || v[6..8] != [0, 0] {
        return None;
    }
    let u = |i: usize| v[i] as usize;
    Some([(u(2), u(3)), (u(4), u(5))])
}

/// Folds `p = Pad(x, paddings); y = Conv2D | DepthwiseConv2dNative(p, f)` with `padding =
/// VALID`, constant paddings on height and width only and `p` read by nothing else, into one
/// [`PaddedConv`] step at the convolution's position (explicit padding, no padded copy).
/// Runs before [`fuse_epilogues`], which sees the step as the convolution it stands for.
pub(super) fn fold_pads(
    nodes: &[NodeDef],
    steps: Vec<PendingStep>,
    consts: &HashMap<Src, Tensor>,
    outs: &[Src],
) -> Vec<PendingStep> {
    let uses = use_counts(&steps, outs);
    let pos_of = step_positions(&steps);
    // (conv step, pad step, x, paddings value, the folded convolution)
    let mut found = Vec::new();
    for (si, (ni, _, ins)) in steps.iter().enumerate() {
        let [p, _] = ins.as_slice() else { continue };
        let Src::Out(pn, 0) = *p else { continue };
        if nodes[pn].op != "Pad" || uses.get(p) != Some(&1) {
            continue;
        }
        let Some(&psi) = pos_of.get(&pn) else {
            continue;
        };
        let [x, pads] = steps[psi].2.as_slice() else {
            continue;
        };
        let Some(c) = consts.get(pads) else { continue };
        let Some(hw) = paddings_hw(c) else { continue };
        let Some(folded) = crate::ops::conv_padded(&nodes[*ni], hw) else {
            continue;
        };
        found.push((si, psi, *x, c.clone(), folded));
    }
    if found.is_empty() {
        return steps;
    }
    let mut slots: Vec<Option<PendingStep>> = steps.into_iter().map(Some).collect();
    for (si, psi, x, paddings, folded) in found {
        let (Some((ni, conv, ins)), Some((_, pad, _))) = (slots[si].take(), slots[psi].take())
        else {
            continue;
        };
        let op = PaddedConv::new(pad, paddings, conv, folded);
        slots[si] = Some((ni, Box::new(op), vec![x, ins[1]]));
    }
    slots.into_iter().flatten().collect()
}

/// How `node` (reading the chain value `x` among `inputs`) extends a chain, if it can;
/// `only_out0` says whether nobody reads the node's other outputs; `swish` says whether the
/// step is a [`Swish`] built by [`fuse_swish`].
fn tail_kind(
    node: &NodeDef,
    inputs: &[Src],
    x: Src,
    only_out0: bool,
    swish: bool,
) -> Option<(TailKind, bool)> {
    if swish {
        return (inputs == [x]).then_some((TailKind::Swish, true));
    }
    match (node.op.as_str(), inputs) {
        ("FusedBatchNorm" | "FusedBatchNormV2" | "FusedBatchNormV3", [a, rest @ ..])
            if *a == x && rest.len() == 4 && !rest.contains(&x) && only_out0 =>
        {
            batch_norm_epsilon(node).map(|epsilon| (TailKind::BatchNorm { epsilon }, true))
        }
        ("Relu", [a]) if *a == x => Some((TailKind::Relu, true)),
        ("Relu6", [a]) if *a == x => Some((TailKind::Relu6, true)),
        ("BiasAdd" | "BiasAddV1", [a, b]) if *a == x && *b != x => {
            let nchw = node.attr.get("data_format").is_some_and(
                |v| matches!(&v.value, Some(attr_value::Value::S(s)) if s.as_slice() == b"NCHW"),
            );
            (!nchw).then_some((TailKind::Add, true))
        }
        ("Add" | "AddV2" | "Mul" | "Sub", [a, b]) if (*a == x) != (*b == x) => {
            let x_first = *a == x;
            let kind = match node.op.as_str() {
                "Mul" => TailKind::Mul,
                "Sub" if x_first => TailKind::Sub,
                "Sub" => TailKind::SubFrom,
                _ => TailKind::Add,
            };
            Some((kind, x_first))
        }
        _ => None,
    }
}

/// Rewrites fusable chains in `steps` (in plan order); `outs` are the plan's outputs.
pub(super) fn fuse_epilogues(
    nodes: &[NodeDef],
    steps: Vec<PendingStep>,
    consts: &HashMap<Src, Tensor>,
    outs: &[Src],
    swish: &HashSet<usize>,
) -> Vec<PendingStep> {
    let uses = use_counts(&steps, outs);
    // The last reader of each value (the only one, where `uses` says 1).
    let mut consumer: HashMap<Src, usize> = HashMap::new();
    for (si, (_, _, ins)) in steps.iter().enumerate() {
        for s in ins {
            consumer.insert(*s, si);
        }
    }
    // Chains of step indices, each with the tail kinds.
    let mut taken = vec![false; steps.len()];
    let mut chains: Vec<Vec<(usize, TailKind, bool)>> = Vec::new();
    for si in 0..steps.len() {
        let (ni, op, _) = &steps[si];
        if taken[si] || !is_head(&nodes[*ni], op.as_ref()) {
            continue;
        }
        let mut chain = Vec::new();
        let mut cur = si;
        loop {
            let x = Src::Out(steps[cur].0, 0);
            if uses.get(&x) != Some(&1) {
                break;
            }
            let Some(&next) = consumer.get(&x) else { break };
            if taken[next] || next <= cur {
                break;
            }
            let (nj, _, ins) = &steps[next];
            let only_out0 = (1..6).all(|k| !uses.contains_key(&Src::Out(*nj, k)));
            let is_swish = swish.contains(nj);
            let Some((kind, x_first)) = tail_kind(&nodes[*nj], ins, x, only_out0, is_swish) else {
                break;
            };
            chain.push((next, kind, x_first));
            cur = next;
            if matches!(kind, TailKind::Relu | TailKind::Relu6 | TailKind::Swish) {
                break;
            }
        }
        if !chain.is_empty() {
            taken[si] = true;
            for &(c, _, _) in &chain {
                taken[c] = true;
            }
            let mut full = vec![(si, TailKind::Add, true)];
            full.extend(chain);
            chains.push(full);
        }
    }
    if chains.is_empty() {
        return steps;
    }
    let mut slots: Vec<Option<PendingStep>> = steps.into_iter().map(Some).collect();
    let mut built = Vec::new();
    for chain in chains {
        let Some((head_ni, head, mut inputs)) = slots[chain[0].0].take() else {
            continue;
        };
        let head_inputs = inputs.len();
        let mut tail = Vec::new();
        let mut label = String::new();
        let mut last_ni = 0;
        for &(si, kind, x_first) in &chain[1..] {
            let Some((ni, op, ins)) = slots[si].take() else {
                continue;
            };
            match kind {
                TailKind::Relu | TailKind::Relu6 | TailKind::Swish => {}
                TailKind::BatchNorm { .. } => inputs.extend_from_slice(&ins[1..]),
                _ => inputs.push(if x_first { ins[1] } else { ins[0] }),
            }
            label.push('+');
            label.push_str(if kind == TailKind::Swish {
                "Swish"
            } else {
                &nodes[ni].op
            });
            let residual = matches!(nodes[ni].op.as_str(), "Add" | "AddV2");
            tail.push(Tail {
                op,
                kind,
                x_first,
                residual,
            });
            last_ni = ni;
        }
        let last_si = chain[chain.len() - 1].0;
        built.push(block::Built {
            slot: last_si,
            ni: last_ni,
            head_ni,
            chain: FusedChain::new(head, head_inputs, tail).with_label(label),
            inputs,
        });
    }
    let built = block::group(nodes, consts, outs, &mut slots, built);
    let built = block::group_scaled(nodes, consts, outs, &mut slots, built);
    for b in built {
        slots[b.slot] = Some((b.ni, Box::new(b.chain) as Box<dyn Op>, b.inputs));
    }
    slots.into_iter().flatten().collect()
}

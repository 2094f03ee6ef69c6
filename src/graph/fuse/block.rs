//! Plan-time grouping of fused convolution chains into inverted-residual blocks
//! (`ops::fused::InvertedResidual`): a depthwise chain (`DepthwiseConv2dNative`, possibly with
//! a folded `Pad`, + epilogue) together with the 1×1 `Conv2D` chain that alone produces its
//! input (expand) and/or the 1×1 `Conv2D` chain that alone reads its output (project, which
//! may end in the residual `Add`). Filters must be constants (frozen weights), 1×1 with unit
//! strides for the pointwise convolutions and multiplier 1 for the depthwise; the chained
//! values must have no other reader and not be plan outputs. The op still checks every
//! shape per call and runs the chains one after the other when the fast path does not apply.
//!
//! Runs inside `fuse_epilogues`, after the chains are found and before they are boxed.
//! `TFHUB_NO_BLOCK_FUSION=1` in the environment turns it off (for comparisons), as does
//! turning fusion off altogether.

use std::collections::HashMap;

use super::super::compile::{PendingStep, Src};
use crate::ops::fused::{FusedChain, InvertedResidual, ScaledProject};
use crate::ops::Op;
use crate::proto::{attr_value, NodeDef};
use crate::tensor::Tensor;

/// A fused chain before boxing: its step slot and node (the last op's), the head's node and
/// the inputs.
pub(super) struct Built {
    pub slot: usize,
    pub ni: usize,
    pub head_ni: usize,
    pub chain: FusedChain,
    pub inputs: Vec<Src>,
}

/// The block fusion switch: off when `TFHUB_NO_BLOCK_FUSION` is set to anything but `0`.
fn enabled() -> bool {
    std::env::var_os("TFHUB_NO_BLOCK_FUSION").is_none_or(|v| v.is_empty() || v == "0")
}

/// `strides` of `node` as `(h, w)`, when the batch and depth strides are 1.
fn strides(node: &NodeDef) -> Option<(i64, i64)> {
    match node.attr.get("strides").and_then(|a| a.value.as_ref()) {
        Some(attr_value::Value::List(l)) if l.i.len() == 4 && l.i[0] == 1 && l.i[3] == 1 => {
            Some((l.i[1], l.i[2]))
        }
        _ => None,
    }
}

/// Undilated (`dilations` absent or all 1).
fn undilated(node: &NodeDef) -> bool {
    match node.attr.get("dilations").and_then(|a| a.value.as_ref()) {
        None => true,
        Some(attr_value::Value::List(l)) => l.i.iter().all(|&d| d == 1),
        Some(_) => false,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Role {
    /// A 1×1 unit-stride `Conv2D` chain.
    Pointwise,
    /// A multiplier-1 `DepthwiseConv2dNative` chain, with its height stride.
    Depthwise(usize),
}

fn role(nodes: &[NodeDef], consts: &HashMap<Src, Tensor>, b: &Built) -> Option<Role> {
    let node = &nodes[b.head_ni];
    let f = consts.get(b.inputs.get(1)?)?;
    let fs = f.shape();
    if fs.len() != 4 || !undilated(node) {
        return None;
    }
    let (sh, sw) = strides(node)?;
    match node.op.as_str() {
        "Conv2D" if fs[0] == 1 && fs[1] == 1 && (sh, sw) == (1, 1) => Some(Role::Pointwise),
        "DepthwiseConv2dNative" if fs[3] == 1 && sh >= 1 => Some(Role::Depthwise(sh as usize)),
        _ => None,
    }
}

/// How many times each value is read: by the plain steps in `slots`, the built chains and
/// the body's outputs (a fused intermediate must have no other reader).
fn read_counts(
    slots: &[Option<PendingStep>],
    built: &[Built],
    outs: &[Src],
) -> HashMap<Src, usize> {
    let mut uses: HashMap<Src, usize> = HashMap::new();
    let reads = slots
        .iter()
        .flatten()
        .flat_map(|st| st.2.iter())
        .chain(built.iter().flat_map(|b| b.inputs.iter()))
        .chain(outs);
    for s in reads {
        *uses.entry(*s).or_default() += 1;
    }
    uses
}

/// Replaces each `expand? → depthwise → project?` group of `built` (at least one of the two
/// pointwise chains present) by one [`InvertedResidual`] step in `slots`, at the slot of its
/// last chain; returns the chains left alone.
pub(super) fn group(
    nodes: &[NodeDef],
    consts: &HashMap<Src, Tensor>,
    outs: &[Src],
    slots: &mut [Option<PendingStep>],
    built: Vec<Built>,
) -> Vec<Built> {
    if !enabled() || built.is_empty() {
        return built;
    }
    let uses = read_counts(slots, &built, outs);
    let roles: Vec<Option<Role>> = built.iter().map(|b| role(nodes, consts, b)).collect();
    let by_out: HashMap<Src, usize> = built
        .iter()
        .enumerate()
        .map(|(i, b)| (Src::Out(b.ni, 0), i))
        .collect();
    // Pointwise chains by their first input.
    let by_in: HashMap<Src, usize> = built
        .iter()
        .enumerate()
        .filter(|(i, _)| roles[*i] == Some(Role::Pointwise))
        .filter_map(|(i, b)| Some((*b.inputs.first()?, i)))
        .collect();
    let single = |s: &Src| uses.get(s) == Some(&1);
    let mut taken = vec![false; built.len()];
    // (expand, depthwise, project, depthwise stride)
    let mut groups = Vec::new();
    for (d, b) in built.iter().enumerate() {
        let Some(Role::Depthwise(stride)) = roles[d] else {
            continue;
        };
        let Some(x) = b.inputs.first() else { continue };
        let expand = by_out
            .get(x)
            .copied()
            .filter(|&e| roles[e] == Some(Role::Pointwise) && !taken[e] && single(x));
        let out = Src::Out(b.ni, 0);
        let project = by_in
            .get(&out)
            .copied()
            .filter(|&p| !taken[p] && single(&out));
        if expand.is_none() && project.is_none() {
            continue;
        }
        taken[d] = true;
        for i in expand.iter().chain(&project) {
            taken[*i] = true;
        }
        groups.push((expand, d, project, stride));
    }
    if groups.is_empty() {
        return built;
    }
    let mut built: Vec<Option<Built>> = built.into_iter().map(Some).collect();
    for (e, d, p, stride) in groups {
        let (Some(db), eb, pb) = (
            built[d].take(),
            e.and_then(|i| built[i].take()),
            p.and_then(|i| built[i].take()),
        ) else {
            continue;
        };
        let mut inputs = Vec::new();
        let expand = eb.map(|eb| {
            inputs.extend_from_slice(&eb.inputs);
            (eb.chain, eb.inputs.len())
        });
        let n_dw = db.inputs.len();
        let skip = usize::from(expand.is_some());
        inputs.extend_from_slice(&db.inputs[skip..]);
        let (mut slot, mut ni) = (db.slot, db.ni);
        let project = pb.map(|pb| {
            inputs.extend_from_slice(&pb.inputs[1..]);
            (slot, ni) = (pb.slot, pb.ni);
            (pb.chain, pb.inputs.len())
        });
        let op = InvertedResidual::new(expand, (db.chain, n_dw), project, stride);
        slots[slot] = Some((ni, Box::new(op) as Box<dyn Op>, inputs));
    }
    built.into_iter().flatten().collect()
}

/// Replaces each `Mul(x, s) → 1×1 Conv2D chain` of `built` (the `Mul` a plain step read only
/// by the chain, which `group` left alone) by one [`ScaledProject`] step at the chain's slot:
/// EfficientNet's squeeze-and-excitation gate applied inside the project convolution. The op
/// checks per call that one operand is a per-image, per-channel gate. Returns the chains left
/// alone.
pub(super) fn group_scaled(
    nodes: &[NodeDef],
    consts: &HashMap<Src, Tensor>,
    outs: &[Src],
    slots: &mut [Option<PendingStep>],
    built: Vec<Built>,
) -> Vec<Built> {
    if !enabled() || built.is_empty() {
        return built;
    }
    let uses = read_counts(slots, &built, outs);
    let slot_of: HashMap<usize, usize> = slots
        .iter()
        .enumerate()
        .filter_map(|(i, st)| Some((st.as_ref()?.0, i)))
        .collect();
    let mut left = Vec::new();
    for b in built {
        let found = (|| {
            if role(nodes, consts, &b)? != Role::Pointwise {
                return None;
            }
            let x = *b.inputs.first()?;
            let Src::Out(mn, 0) = x else { return None };
            if nodes[mn].op != "Mul" || uses.get(&x) != Some(&1) {
                return None;
            }
            let &ms = slot_of.get(&mn)?;
            let ins = &slots[ms].as_ref()?.2;
            // Both operands computed (a constant factor is a per-channel epilogue instead).
            let ok = ins.len() == 2
                && ins[0] != ins[1]
                && ins.iter().all(|s| !consts.contains_key(s))
                && ms < b.slot;
            ok.then_some(ms)
        })();
        match found {
            Some(ms) => {
                let Some((_, mul, mut inputs)) = slots[ms].take() else {
                    left.push(b);
                    continue;
                };
                inputs.extend_from_slice(&b.inputs[1..]);
                let op = ScaledProject::new(mul, b.chain, b.inputs.len());
                slots[b.slot] = Some((b.ni, Box::new(op) as Box<dyn Op>, inputs));
            }
            None => left.push(b),
        }
    }
    left
}

//! Plan-time fusion of `tf.nn.embedding_lookup_sparse`'s combine:
//!
//! ```text
//! y, idx = Unique(ids)                     ids: int32/int64 vector
//! rows   = ResourceGather(var, y)          or GatherV2(params, y, axis = 0)
//! rows   = Identity(rows)                  (any number, optional)
//! out    = SparseSegment{Sum,Mean,SqrtN}[WithNumSegments](rows, idx, seg[, n])
//! ```
//!
//! becomes one op, `out = fused(var | params, ids, seg[, n])`, that reads each row of the
//! (possibly memory-mapped) params straight into its segment sum: no unique ids, no gathered
//! copy. It is bit-identical (see `ops::sparse::fused`). The rewrite only fires when every
//! intermediate (`y`, `idx`, the gathered rows and each `Identity`) has exactly one consumer
//! and is not a plan output, when the gather has `batch_dims = 0` and float32/float64 params
//! (other dtypes would be widened whole), and when no stateful step runs between the gather
//! and the segment op (the variable is read at the segment op's position). Partitioned params
//! (`DynamicPartition` + several gathers + `DynamicStitch`) do not match and stay unfused.
//!
//! `LoadOptions::fusion = false` (the CLI's `TFHUB_NO_FUSION=1`) turns the pass off.

use std::collections::{HashMap, HashSet};

use super::{step_positions, use_counts, PendingStep, Src};
use crate::ops::{fused_embedding_segment, ParamsFrom};
use crate::proto::{attr_value::Value, NodeDef};
use crate::tensor::{DType, Tensor};

/// Rewrites every matching pattern in `steps` (in place, dropping the fused-away steps) and
/// returns the node indices of the segment ops that now run fused.
pub(super) fn embedding_lookups(
    nodes: &[NodeDef],
    steps: &mut Vec<PendingStep>,
    consts: &HashMap<Src, Tensor>,
    outs: &[Src],
) -> HashSet<usize> {
    let mut fused = HashSet::new();
    let uses = use_counts(steps, outs);
    let single = |s: &Src| uses.get(s) == Some(&1);
    let pos_of = step_positions(steps);
    let mut remove: HashSet<usize> = HashSet::new();
    for si in 0..steps.len() {
        let Some(m) = match_at(nodes, steps, consts, &pos_of, &single, si) else {
            continue;
        };
        if m.between_stateful(steps, si) {
            continue;
        }
        let Some(op) = fused_embedding_segment(&nodes[steps[si].0].op, m.from) else {
            continue;
        };
        let st = &mut steps[si];
        st.1 = op;
        st.2[0] = m.params;
        st.2[1] = m.ids;
        fused.insert(st.0);
        remove.extend(m.removed);
    }
    if !remove.is_empty() {
        let mut i = 0;
        steps.retain(|_| {
            i += 1;
            !remove.contains(&(i - 1))
        });
    }
    fused
}

/// The op type shown for a step (in errors): fused segment ops are marked.
pub(super) fn op_type(fused: &HashSet<usize>, node_index: usize, op: &str) -> String {
    if fused.contains(&node_index) {
        format!("{op} (fused with Unique and Gather)")
    } else {
        op.to_string()
    }
}

struct Match {
    from: ParamsFrom,
    params: Src,
    ids: Src,
    /// Step indices of the gather, its `Identity`s and the `Unique`.
    removed: Vec<usize>,
    gather: usize,
}

impl Match {
    /// True if a stateful step other than the removed ones runs between the gather and the
    /// segment op (it might write the variable the fused op now reads later).
    fn between_stateful(&self, steps: &[PendingStep], si: usize) -> bool {
        (self.gather + 1..si).any(|k| !self.removed.contains(&k) && steps[k].1.is_stateful())
    }
}

fn attr<'a>(node: &'a NodeDef, name: &str) -> Option<&'a Value> {
    node.attr.get(name).and_then(|a| a.value.as_ref())
}

fn attr_type(node: &NodeDef, name: &str) -> Option<DType> {
    match attr(node, name)? {
        Value::Type(t) => DType::from_proto(*t),
        _ => None,
    }
}

/// `batch_dims` absent or zero.
fn no_batch_dims(node: &NodeDef) -> bool {
    match attr(node, "batch_dims") {
        None => true,
        Some(Value::I(0)) => true,
        Some(_) => false,
    }
}

fn match_at(
    nodes: &[NodeDef],
    steps: &[PendingStep],
    consts: &HashMap<Src, Tensor>,
    pos_of: &HashMap<usize, usize>,
    single: &impl Fn(&Src) -> bool,
    si: usize,
) -> Option<Match> {
    let (ni, _, ins) = &steps[si];
    let seg_op = nodes[*ni].op.as_str();
    let base = seg_op.strip_suffix("WithNumSegments").unwrap_or(seg_op);
    if !matches!(
        base,
        "SparseSegmentSum" | "SparseSegmentMean" | "SparseSegmentSqrtN"
    ) || ins.len() < 3
    {
        return None;
    }
    let mut removed = Vec::new();
    // Follow single-use Identity steps back to the gather.
    let mut data = ins[0];
    let gather = loop {
        let Src::Out(gi, 0) = data else { return None };
        if !single(&data) {
            return None;
        }
        let gsi = *pos_of.get(&gi)?;
        removed.push(gsi);
        if nodes[gi].op == "Identity" {
            data = *steps[gsi].2.first()?;
            continue;
        }
        break gsi;
    };
    let (gi, _, gins) = &steps[gather];
    let gnode = &nodes[*gi];
    let from = match gnode.op.as_str() {
        "ResourceGather" if gins.len() == 2 => {
            if !matches!(attr_type(gnode, "dtype"), Some(DType::F32 | DType::F64)) {
                return None;
            }
            ParamsFrom::Variable
        }
        "GatherV2" if gins.len() == 3 => {
            if !matches!(attr_type(gnode, "Tparams"), Some(DType::F32 | DType::F64)) {
                return None;
            }
            if consts.get(&gins[2])?.scalar_value_i64().ok()? != 0 {
                return None;
            }
            ParamsFrom::Tensor
        }
        _ => return None,
    };
    if !no_batch_dims(gnode) {
        return None;
    }
    // `y` of a Unique feeding only the gather, `idx` of the same Unique only the segment op.
    let y = gins[1];
    let Src::Out(ui, 0) = y else { return None };
    if nodes[ui].op != "Unique" || !single(&y) {
        return None;
    }
    if ins[1] != Src::Out(ui, 1) || !single(&ins[1]) {
        return None;
    }
    if !matches!(attr_type(&nodes[ui], "T"), Some(DType::I32 | DType::I64)) {
        return None;
    }
    let usi = *pos_of.get(&ui)?;
    // Nobody else may read `Unique`'s outputs (checked above for 0 and 1; it has no others).
    removed.push(usi);
    Some(Match {
        from,
        params: gins[0],
        ids: *steps[usi].2.first()?,
        removed,
        gather,
    })
}

#[cfg(test)]
#[path = "fuse_tests.rs"]
mod tests;

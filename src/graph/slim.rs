//! Plan-time removal of steps that compute nothing: readers of an identity-like op
//! (`Identity`, `IdentityN`, `Snapshot`, `StopGradient`, `PreventGradient`, `EnsureShape`,
//! `PlaceholderWithDefault`: all built as the same pass-through op) read its input instead, and
//! `NoOp` steps are dropped.
//!
//! Why: exported TF2 functions are full of these (every `tf.debugging.assert_*` guard body,
//! every `tf.identity` around a return value, the control-dependency anchors of `If`
//! branches); in a small-tensor graph such as BERT preprocessing they were a quarter of the op
//! evaluations of a call. In the sequential plan executor they do nothing: values are
//! immutable, and the plan's order (already fixed, honouring control edges) does not change,
//! so forwarding a value cannot move a stateful op before or after anything.
//!
//! Not forwarded: an identity reading a TF1 ref edge (it reads the variable's value at that
//! point of the run) and outputs beyond the op's inputs (left to fail at run time as before).

use std::collections::{HashMap, HashSet};

use super::compile::{PendingStep, Src};
use crate::proto::NodeDef;

/// Op types built as the pass-through `Identity` op (`ops::control`).
const PASS_THROUGH: &[&str] = &[
    "Identity",
    "IdentityN",
    "Snapshot",
    "StopGradient",
    "PreventGradient",
    "EnsureShape",
    "PlaceholderWithDefault",
];

/// Forwards identity-like steps' outputs to their inputs in `steps` and `outs`, then drops the
/// identity steps nobody reads any more and every `NoOp` step.
pub(super) fn forward_identities(
    nodes: &[NodeDef],
    mut steps: Vec<PendingStep>,
    outs: &mut [Src],
) -> Vec<PendingStep> {
    let is_ref = |s: &Src| matches!(s, Src::Out(j, _) if crate::ops::REF_PRODUCERS.contains(&nodes[*j].op.as_str()));
    let mut forward: HashMap<Src, Src> = HashMap::new();
    let mut pass: HashSet<usize> = HashSet::new();
    // Steps are in plan order, so an identity reading another one resolves to the first's
    // source as it is recorded.
    for (ni, _, ins) in &steps {
        if !PASS_THROUGH.contains(&nodes[*ni].op.as_str()) || ins.iter().any(is_ref) {
            continue;
        }
        pass.insert(*ni);
        for (i, s) in ins.iter().enumerate() {
            let s = forward.get(s).copied().unwrap_or(*s);
            forward.insert(Src::Out(*ni, i), s);
        }
    }
    let has_noop = steps.iter().any(|(ni, _, _)| nodes[*ni].op == "NoOp");
    if forward.is_empty() && !has_noop {
        return steps;
    }
    for (_, _, ins) in steps.iter_mut() {
        for s in ins.iter_mut() {
            if let Some(t) = forward.get(s) {
                *s = *t;
            }
        }
    }
    for s in outs.iter_mut() {
        if let Some(t) = forward.get(s) {
            *s = *t;
        }
    }
    // Nodes some output of which is still read (an output past an identity's inputs is).
    let read: HashSet<usize> = steps
        .iter()
        .flat_map(|st| st.2.iter())
        .chain(outs.iter())
        .filter_map(|s| match s {
            Src::Out(n, _) => Some(*n),
            Src::Arg(_) => None,
        })
        .collect();
    steps.retain(|(ni, _, _)| match nodes[*ni].op.as_str() {
        "NoOp" => false,
        _ => !pass.contains(ni) || read.contains(ni),
    });
    steps
}

#[cfg(test)]
mod tests {
    use crate::graph::{Compiler, Feed, Fetch};
    use crate::ops::{EvalCtx, Limits, Registry, Session};
    use crate::proto::{attr_value, AttrValue, NodeDef};
    use crate::tensor::{DType, Tensor};

    fn node(name: &str, op: &str, inputs: &[&str]) -> NodeDef {
        let t = AttrValue {
            value: Some(attr_value::Value::Type(DType::F32.to_proto())),
        };
        let attr = [("T", t.clone()), ("dtype", t)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        NodeDef {
            name: name.into(),
            op: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            attr,
            ..Default::default()
        }
    }

    /// `out = Identity(Neg(Snapshot(Identity(x))))`, a `NoOp` anchored on it, and `a`
    /// (an identity of the feed) fetched directly.
    fn graph() -> Vec<NodeDef> {
        vec![
            node("x", "Placeholder", &[]),
            node("a", "Identity", &["x"]),
            node("b", "Snapshot", &["a"]),
            node("c", "Neg", &["b"]),
            node("out", "Identity", &["c", "^a"]),
            node("anchor", "NoOp", &["^out"]),
        ]
    }

    #[test]
    fn identities_and_noops_leave_the_plan_but_not_the_results(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let nodes = graph();
        let reg = Registry::with_all_ops();
        let fetches = [
            Fetch::Tensor(Feed::parse("out")),
            Fetch::Tensor(Feed::parse("a")),
            Fetch::Tensor(Feed::parse("b")),
            Fetch::Target("anchor".into()),
        ];
        let mut c = Compiler::new(&reg, None, None, Limits::default());
        let plan = c.compile_graph(&nodes, &[Feed::parse("x")], &fetches)?;
        // Only the Neg is evaluated.
        let ops: Vec<&str> = plan.steps.iter().map(|s| s.op_type.as_str()).collect();
        assert_eq!(ops, ["Neg"]);
        let session = Session::new(std::path::PathBuf::new(), None, Limits::default());
        let x = Tensor::vector(vec![1.5f32, -2.0]);
        let outs = plan.run(&mut EvalCtx::new(&session), vec![x])?;
        assert_eq!(outs[0].as_slice::<f32>()?, [-1.5, 2.0]);
        assert_eq!(outs[1].as_slice::<f32>()?, [1.5, -2.0]);
        assert_eq!(outs[2].as_slice::<f32>()?, [1.5, -2.0]);
        Ok(())
    }
}

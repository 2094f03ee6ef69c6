//! Freezing resource variables at load (issue #17): weights become constants.
//!
//! The loader runs the restore and init plans before it compiles the signatures; then every
//! resource variable that holds a value and that nothing the signatures can reach ever writes
//! is frozen: the signatures are compiled (once) with their `ReadVariableOp`s of those
//! variables replaced by the variables' values, so constant folding and fusion see the weights (Keras 3's decomposed batch norm,
//! `Rsqrt`/`Mul`/`Sub` on variables, folds to two per-channel vectors that then fuse into the
//! producing convolution's epilogue). Handles reach the reads through function calls
//! (`StatefulPartitionedCall` passes them as arguments), so a call passing frozen handles
//! is compiled against a copy of the function specialised for them (`Compiler::specialized_ref`).
//!
//! "Nothing writes" is decided conservatively: if any node reachable from the signatures'
//! fetches (through data and control edges, and every function referenced on the way, whole)
//! is a resource-writing op (`Assign*VariableOp`, `ResourceScatter*`, `ResourceApply*`, ...),
//! no variable is frozen and the model keeps today's per-call reads; a signature that does not
//! compile frozen is compiled again without freezing. The values are shared
//! (reference-counted), not copied. `LoadOptions::freeze = false` (the CLI's
//! `TFHUB_NO_FREEZE=1`) turns the pass off.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::compile::{Fetch, Src};
use crate::ops::Session;
use crate::proto::{attr_value, AttrValue, GraphDef, NodeDef};
use crate::tensor::{DType, Tensor};

/// What freezing does to one node while a body is compiled.
pub(super) enum Frozen {
    /// Not affected.
    No,
    /// The node yields the handle of this frozen variable (`VarHandleOp`, `Identity`).
    Handle(String),
    /// The node (a `ReadVariableOp`) is this constant.
    Value(Tensor),
    /// A call whose arguments carry these frozen handles: compile a specialised copy.
    Call(Vec<Option<String>>),
}

/// How freezing affects `node` (in function `scope`, inputs `inputs`), given the values known
/// to be frozen handles; `is_call` says whether the node calls a function with its inputs as
/// the arguments (`PartitionedCall`, `StatefulPartitionedCall`, a library function's name).
pub(super) fn frozen_step(
    frozen: &HashMap<String, Tensor>,
    is_call: bool,
    node: &NodeDef,
    attrs: &BTreeMap<String, AttrValue>,
    scope: &str,
    inputs: &[Src],
    var_of: &HashMap<Src, String>,
) -> Frozen {
    match node.op.as_str() {
        "VarHandleOp" => {
            let key = crate::ops::resource_key(attrs, scope, &node.name);
            if frozen.contains_key(&key) {
                return Frozen::Handle(key);
            }
        }
        "Identity" => {
            if let Some(key) = inputs.first().and_then(|s| var_of.get(s)) {
                return Frozen::Handle(key.clone());
            }
        }
        "ReadVariableOp" => {
            let Some(key) = inputs.first().and_then(|s| var_of.get(s)) else {
                return Frozen::No;
            };
            let Some(value) = frozen.get(key) else {
                return Frozen::No;
            };
            // A dtype mismatch stays a run-time error, as without freezing.
            let want = match attrs.get("dtype").and_then(|a| a.value.as_ref()) {
                Some(attr_value::Value::Type(t)) => DType::from_proto(*t),
                _ => None,
            };
            if want.is_none_or(|d| d == value.dtype()) {
                return Frozen::Value(value.clone());
            }
        }
        _ if is_call => {
            let binding: Vec<Option<String>> =
                inputs.iter().map(|s| var_of.get(s).cloned()).collect();
            if binding.iter().any(Option::is_some) {
                return Frozen::Call(binding);
            }
        }
        _ => {}
    }
    Frozen::No
}

/// True for ops that may write a resource variable.
fn writes_resource(op: &str) -> bool {
    (op.starts_with("Assign") && op != "AssertNextDataset")
        || op.starts_with("ResourceApply")
        || op.starts_with("ResourceSparseApply")
        || op.starts_with("ResourceScatter")
        || op.starts_with("_Resource")
        || op == "ResourceStridedSliceAssign"
        || op == "DestroyResourceOp"
        || op.starts_with("Scatter")
}

/// Function names a node refers to (its op, or function-valued attributes).
fn functions_of<'a>(node: &'a NodeDef, out: &mut Vec<&'a str>) {
    out.push(node.op.as_str());
    for a in node.attr.values() {
        match &a.value {
            Some(attr_value::Value::Func(f)) => out.push(f.name.as_str()),
            Some(attr_value::Value::List(l)) => out.extend(l.func.iter().map(|f| f.name.as_str())),
            _ => {}
        }
    }
}

/// Whether anything reachable from `roots` (top-level node names) may write a variable.
fn reachable_writes(graph: &GraphDef, roots: &[String]) -> bool {
    let index: HashMap<&str, &NodeDef> = graph.node.iter().map(|n| (n.name.as_str(), n)).collect();
    let library: HashMap<&str, &crate::proto::FunctionDef> = graph
        .library
        .as_ref()
        .map(|l| {
            l.function
                .iter()
                .filter_map(|f| f.signature.as_ref().map(|s| (s.name.as_str(), f)))
                .collect()
        })
        .unwrap_or_default();
    let mut seen: HashSet<&str> = HashSet::new();
    let mut stack: Vec<&str> = roots.iter().map(String::as_str).collect();
    let mut funcs: Vec<&str> = Vec::new();
    while let Some(name) = stack.pop() {
        if !seen.insert(name) {
            continue;
        }
        let Some(node) = index.get(name) else {
            continue;
        };
        if writes_resource(&node.op) {
            return true;
        }
        functions_of(node, &mut funcs);
        for inp in &node.input {
            let n = inp.trim_start_matches('^');
            stack.push(n.split(':').next().unwrap_or(n));
        }
    }
    let mut seen_f: HashSet<&str> = HashSet::new();
    while let Some(f) = funcs.pop() {
        if !seen_f.insert(f) {
            continue;
        }
        let Some(fdef) = library.get(f) else { continue };
        for node in &fdef.node_def {
            if writes_resource(&node.op) {
                return true;
            }
            functions_of(node, &mut funcs);
        }
    }
    false
}

/// The variables to freeze for signatures fetching `fetches` (resource key → value): none when
/// anything reachable from the fetches may write a variable; else every variable holding a
/// value in `session`, so run this after restore and init. The loader compiles the signatures
/// once, with these given to `Compiler::freeze_variables`.
pub(crate) fn frozen_values(
    graph: &GraphDef,
    session: &Session,
    fetches: &[Fetch],
) -> HashMap<String, Tensor> {
    if may_write(graph, fetches) {
        return HashMap::new();
    }
    session.variable_values()
}

/// Whether anything reachable from `fetches` may write a variable (freezing does not apply).
pub(crate) fn may_write(graph: &GraphDef, fetches: &[Fetch]) -> bool {
    let roots: Vec<String> = fetches
        .iter()
        .map(|f| match f {
            Fetch::Tensor(t) => t.node.clone(),
            Fetch::Target(n) => n.trim_start_matches('^').to_string(),
        })
        .collect();
    reachable_writes(graph, &roots)
}

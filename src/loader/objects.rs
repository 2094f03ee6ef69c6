//! The TF2 object graph (`SavedObjectGraph`): attribute paths to functions, concrete-function
//! choice, captured inputs, and calls. Mirrors `python/saved_model/load.py` and
//! `function_deserialization.py` for inference:
//!
//! - a dotted path walks `children` by local name from the root; an object with a `__call__`
//!   child is callable;
//! - a `function` node binds `(args, kwargs)` against its saved `FullArgSpec` (defaults filled,
//!   positional-or-keyword values moved into the positional tuple), then tries its concrete
//!   functions in saved order, first without and then with conversion of Python values, and
//!   calls the first whose `canonicalized_input_signature` accepts the call;
//! - a `bare_concrete_function` (signatures, `trace_N`) is called by keyword (`signatures`)
//!   or flat, as TF's flat signature;
//! - captured inputs (`bound_inputs`) are bound as TF's `restore_captures` does: variables are
//!   restored from the checkpoint by the key the checkpoint's own object graph gives, assets
//!   become `<dir>/assets/<file>`, constants the main graph's `Const` value, resources (lookup
//!   tables) the result of `_create_resource` followed by `_initialize`.
//!
//! Refused by name: `captured_tensor` captures, composite specs other than RaggedTensorSpec,
//! variables the checkpoint's object graph does not name. Every walk is iterative or capped.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use prost::Message;

use super::structure::{flatten, pack, Spec, Value};
use super::{replay, Loaded};
use crate::error::{Error, Result};
use crate::graph::{Compiler, Plan};
use crate::ops::EvalCtx;
use crate::proto::saved_object::Kind;
use crate::proto::{SavedObject, SavedObjectGraph, TrackableObjectGraph};
use crate::tensor::{Bytes, DType, Tensor};

/// Deepest chain of captures that need other captures (a table's initializer capturing an
/// asset and the table itself is 2).
const MAX_CAPTURE_DEPTH: usize = 32;
/// Most callable attributes listed.
const MAX_LISTED: usize = 2000;
/// Deepest attribute path listed (deeper ones are still callable by path).
const MAX_LIST_DEPTH: usize = 32;

/// A concrete function's plan, or why it could not be compiled (kept: per entry point).
type Compiled = std::result::Result<Arc<Plan>, Arc<Error>>;

/// Lazily built state of the object graph of a loaded model.
#[derive(Debug, Default)]
pub(crate) struct Objects {
    /// Compiled concrete functions (or why they failed), by name.
    plans: Mutex<HashMap<String, Compiled>>,
    /// Bound capture values by node id.
    captures: Mutex<HashMap<i32, Tensor>>,
    /// Saved node id → checkpoint key of its VARIABLE_VALUE.
    keys: Mutex<Option<Arc<HashMap<i32, String>>>>,
}

/// One callable attribute and its concrete signatures.
#[derive(Debug, Clone)]
pub struct CallableInfo {
    /// Dotted attribute path (`tokenize`, `signatures.serving_default`, `__call__`).
    pub path: String,
    /// `function` or `bare_concrete_function`.
    pub kind: &'static str,
    /// One line per concrete function: `(args) -> outputs`.
    pub signatures: Vec<String>,
}

fn graph(l: &Loaded) -> Result<&SavedObjectGraph> {
    l.meta
        .object_graph_def
        .as_ref()
        .filter(|g| !g.nodes.is_empty())
        .ok_or_else(|| {
            Error::invalid(
                &l.dir,
                "the model has no object graph (a TF1 SavedModel or frozen graph): call its signatures",
            )
        })
}

fn node(g: &SavedObjectGraph, id: i32) -> Result<&SavedObject> {
    usize::try_from(id)
        .ok()
        .and_then(|i| g.nodes.get(i))
        .ok_or_else(|| Error::invalid("object graph", format!("node id {id} out of range")))
}

fn child(g: &SavedObjectGraph, id: i32, name: &str) -> Option<i32> {
    let n = node(g, id).ok()?;
    n.children
        .iter()
        .find(|c| c.local_name == name)
        .map(|c| c.node_id)
}

fn kind_name(n: &SavedObject) -> &'static str {
    match &n.kind {
        Some(Kind::UserObject(_)) => "user_object",
        Some(Kind::Asset(_)) => "asset",
        Some(Kind::Function(_)) => "function",
        Some(Kind::Variable(_)) => "variable",
        Some(Kind::BareConcreteFunction(_)) => "bare_concrete_function",
        Some(Kind::Constant(_)) => "constant",
        Some(Kind::Resource(_)) => "resource",
        Some(Kind::CapturedTensor(_)) => "captured_tensor",
        None => "empty",
    }
}

/// A callable attribute of a loaded model (see [`crate::api::Model::function`]).
#[derive(Debug, Clone)]
pub(crate) struct FnRef {
    pub path: String,
    pub node: i32,
}

/// Resolves a dotted attribute path (empty = the root object) to a callable node: a function,
/// a bare concrete function, or an object with a `__call__` child.
pub(crate) fn resolve(l: &Loaded, path: &str) -> Result<FnRef> {
    let g = graph(l)?;
    let mut id = 0i32;
    if !path.is_empty() {
        for part in path.split('.') {
            id = child(g, id, part).ok_or_else(|| not_found(l, path))?;
        }
    }
    let n = node(g, id)?;
    match &n.kind {
        Some(Kind::Function(_)) | Some(Kind::BareConcreteFunction(_)) => Ok(FnRef {
            path: path.to_string(),
            node: id,
        }),
        _ => match child(g, id, "__call__") {
            Some(c) if matches!(node(g, c)?.kind, Some(Kind::Function(_))) => Ok(FnRef {
                path: if path.is_empty() {
                    "__call__".into()
                } else {
                    format!("{path}.__call__")
                },
                node: c,
            }),
            _ => Err(not_found(l, path)),
        },
    }
}

fn not_found(l: &Loaded, path: &str) -> Error {
    Error::NotFound {
        what: "callable attribute",
        name: path.to_string(),
        available: list(l)
            .map(|v| v.into_iter().map(|c| c.path).collect())
            .unwrap_or_default(),
    }
}

/// Every callable attribute reachable from the root by a path of public names (no `_`
/// prefix, no `trace_N` / `capture_N` children) at most [`MAX_LIST_DEPTH`] deep, breadth-first
/// so each node gets its shortest path; cycles and shared nodes are visited once.
pub(crate) fn list(l: &Loaded) -> Result<Vec<CallableInfo>> {
    list_graph(graph(l)?)
}

/// [`list`] on a bare object graph (for `inspect`, which loads nothing).
pub fn list_graph(g: &SavedObjectGraph) -> Result<Vec<CallableInfo>> {
    let mut out = Vec::new();
    let mut seen: HashSet<i32> = HashSet::from([0]);
    let mut queue: VecDeque<(i32, String, usize)> = VecDeque::from([(0, String::new(), 0)]);
    while let Some((id, path, depth)) = queue.pop_front() {
        let n = node(g, id)?;
        if !matches!(n.kind, Some(Kind::UserObject(_))) || depth >= MAX_LIST_DEPTH {
            continue;
        }
        for c in &n.children {
            let hidden = (c.local_name.starts_with('_') && c.local_name != "__call__")
                || c.local_name.starts_with("trace_")
                || c.local_name.starts_with("capture_");
            if hidden || !seen.insert(c.node_id) {
                continue;
            }
            let p = if path.is_empty() {
                c.local_name.clone()
            } else {
                format!("{path}.{}", c.local_name)
            };
            let Ok(cn) = node(g, c.node_id) else { continue };
            match &cn.kind {
                Some(Kind::Function(_)) | Some(Kind::BareConcreteFunction(_))
                    if out.len() < MAX_LISTED =>
                {
                    out.push(CallableInfo {
                        kind: kind_name(cn),
                        signatures: concrete_signatures(g, cn),
                        path: p,
                    });
                }
                Some(Kind::UserObject(_)) => queue.push_back((c.node_id, p, depth + 1)),
                _ => {}
            }
        }
    }
    Ok(out)
}

fn concrete_names(n: &SavedObject) -> Vec<&str> {
    match &n.kind {
        Some(Kind::Function(f)) => f.concrete_functions.iter().map(String::as_str).collect(),
        Some(Kind::BareConcreteFunction(b)) => vec![b.concrete_function_name.as_str()],
        _ => Vec::new(),
    }
}

/// `(inputs) -> outputs` per concrete function, as TF prints structured signatures.
fn concrete_signatures(g: &SavedObjectGraph, n: &SavedObject) -> Vec<String> {
    concrete_names(n)
        .into_iter()
        .map(|name| match g.concrete_functions.get(name) {
            Some(cf) => {
                let show = |v: &Option<crate::proto::StructuredValue>| match v {
                    Some(v) => Spec::decode(v).map_or_else(|e| format!("<{e}>"), |s| s.to_string()),
                    None => "None".into(),
                };
                format!(
                    "{} -> {}",
                    show(&cf.canonicalized_input_signature),
                    show(&cf.output_signature)
                )
            }
            None => format!("<{name}: not in the object graph's concrete functions>"),
        })
        .collect()
}

/// Python's `FullArgSpec`, as saved.
#[derive(Debug, Default)]
struct ArgSpec {
    args: Vec<String>,
    varargs: bool,
    varkw: bool,
    defaults: Vec<Spec>,
    kwonly: Vec<String>,
    kwonly_defaults: BTreeMap<String, Spec>,
}

fn arg_spec(fs: &crate::proto::FunctionSpec) -> Result<ArgSpec> {
    let bad = |what: String| Error::invalid("object graph", format!("FullArgSpec: {what}"));
    let spec = match &fs.fullargspec {
        Some(v) => Spec::decode(v).map_err(|e| bad(e.0))?,
        None => return Ok(ArgSpec::default()),
    };
    let Spec::NamedTuple(_, fields) = spec else {
        return Err(bad("not a namedtuple".into()));
    };
    let get = |k: &str| fields.iter().find(|f| f.0 == k).map(|f| &f.1);
    let strings = |v: Option<&Spec>| -> Vec<String> {
        match v {
            Some(Spec::List(l) | Spec::Tuple(l)) => l
                .iter()
                .filter_map(|s| match s {
                    Spec::Str(s) => Some(s.clone()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    };
    let mut args = strings(get("args"));
    if fs.is_method && !args.is_empty() {
        args.remove(0);
    }
    let defaults = match get("defaults") {
        Some(Spec::List(l) | Spec::Tuple(l)) => l.clone(),
        _ => Vec::new(),
    };
    let kwonly_defaults = match get("kwonlydefaults") {
        Some(Spec::Dict(d)) => d.iter().cloned().collect(),
        _ => BTreeMap::new(),
    };
    Ok(ArgSpec {
        args,
        varargs: matches!(get("varargs"), Some(Spec::Str(_))),
        varkw: matches!(get("varkw"), Some(Spec::Str(_))),
        defaults,
        kwonly: strings(get("kwonlyargs")),
        kwonly_defaults,
    })
}

fn spec_value(s: &Spec) -> Value {
    match s {
        Spec::Bool(b) => Value::Bool(*b),
        Spec::Int(i) => Value::Int(*i),
        Spec::Float(x) => Value::Float(*x),
        Spec::Str(s) => Value::Str(s.clone()),
        Spec::List(v) => Value::List(v.iter().map(spec_value).collect()),
        Spec::Tuple(v) => Value::Tuple(v.iter().map(spec_value).collect()),
        Spec::Dict(v) | Spec::NamedTuple(_, v) => {
            Value::Dict(v.iter().map(|(k, x)| (k.clone(), spec_value(x))).collect())
        }
        _ => Value::None,
    }
}

/// Python's binding of `(args, kwargs)` to the argspec, in TF's canonical form: every
/// positional-or-keyword value in the positional tuple, keyword-only and `**kwargs` values in
/// the dict, defaults filled.
fn bind(
    spec: &ArgSpec,
    path: &str,
    mut args: Vec<Value>,
    mut kwargs: BTreeMap<String, Value>,
) -> Result<(Vec<Value>, BTreeMap<String, Value>)> {
    let err = |what: String| Error::Call {
        function: path.to_string(),
        what: format!("binding inputs failed: {what}"),
    };
    let n = spec.args.len();
    let extra = if args.len() > n {
        if !spec.varargs {
            return Err(err(format!(
                "too many positional arguments ({} given, takes {n})",
                args.len()
            )));
        }
        args.split_off(n)
    } else {
        Vec::new()
    };
    let mut pos: Vec<Option<Value>> = args.into_iter().map(Some).collect();
    pos.resize(n, None);
    for (i, name) in spec.args.iter().enumerate() {
        if let Some(v) = kwargs.remove(name) {
            if pos[i].is_some() {
                return Err(err(format!("multiple values for argument {name:?}")));
            }
            pos[i] = Some(v);
        }
    }
    let first_default = n.saturating_sub(spec.defaults.len());
    let mut positional = Vec::with_capacity(n + extra.len());
    for (i, v) in pos.into_iter().enumerate() {
        match v {
            Some(v) => positional.push(v),
            None if i >= first_default => {
                positional.push(spec_value(&spec.defaults[i - first_default]))
            }
            None => {
                return Err(err(format!(
                    "missing a required argument: {:?}",
                    spec.args[i]
                )))
            }
        }
    }
    positional.extend(extra);
    let mut kw = BTreeMap::new();
    for name in &spec.kwonly {
        match kwargs.remove(name) {
            Some(v) => kw.insert(name.clone(), v),
            None => match spec.kwonly_defaults.get(name) {
                Some(d) => kw.insert(name.clone(), spec_value(d)),
                None => return Err(err(format!("missing a required argument: {name:?}"))),
            },
        };
    }
    if !kwargs.is_empty() {
        if !spec.varkw {
            return Err(err(format!(
                "unexpected keyword arguments: {}",
                kwargs.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
        kw.extend(kwargs);
    }
    Ok((positional, kw))
}

/// Calls the callable `f` on `(args, kwargs)`.
pub(crate) fn call(
    l: &Loaded,
    f: &FnRef,
    args: Vec<Value>,
    kwargs: BTreeMap<String, Value>,
) -> Result<Value> {
    let g = graph(l)?;
    let n = node(g, f.node)?;
    match &n.kind {
        Some(Kind::Function(func)) => {
            if func.concrete_functions.is_empty() {
                return Err(Error::Call {
                    function: f.path.clone(),
                    what: "Found zero restored functions for caller function.".into(),
                });
            }
            let spec = match &func.function_spec {
                Some(fs) => arg_spec(fs)?,
                None => ArgSpec::default(),
            };
            let (pos, kw) = bind(&spec, &f.path, args, kwargs)?;
            let canonical = Value::Tuple(vec![Value::Tuple(pos), Value::Dict(kw)]);
            let mut options = Vec::new();
            for convert in [false, true] {
                for name in &func.concrete_functions {
                    let cf = g.concrete_functions.get(name).ok_or_else(|| {
                        Error::invalid("object graph", format!("no concrete function {name:?}"))
                    })?;
                    let Some(sig) = &cf.canonicalized_input_signature else {
                        continue;
                    };
                    let sig = Spec::decode(sig).map_err(|e| Error::Call {
                        function: f.path.clone(),
                        what: format!("concrete function {name}: {}", e.0),
                    })?;
                    let mut flat = Vec::new();
                    match flatten(&sig, &canonical, convert, &mut flat) {
                        Ok(()) => return run_concrete(l, &f.path, name, flat),
                        Err(why) if !convert => options.push(format!("  {sig}\n    ({why})")),
                        Err(_) => {}
                    }
                }
            }
            Err(Error::NoMatchingFunction {
                function: f.path.clone(),
                got: canonical.describe_call(),
                options,
            })
        }
        Some(Kind::BareConcreteFunction(b)) => {
            let name = &b.concrete_function_name;
            let cf = g.concrete_functions.get(name).ok_or_else(|| {
                Error::invalid("object graph", format!("no concrete function {name:?}"))
            })?;
            let sig = cf
                .canonicalized_input_signature
                .as_ref()
                .map(Spec::decode)
                .transpose()
                .map_err(|e| Error::Call {
                    function: f.path.clone(),
                    what: e.0,
                })?
                .unwrap_or(Spec::Tuple(vec![Spec::Tuple(vec![]), Spec::Dict(vec![])]));
            let allowed = usize::try_from(b.allowed_positional_arguments).unwrap_or(0);
            if args.len() > allowed {
                return Err(Error::Call {
                    function: f.path.clone(),
                    what: format!(
                        "takes at most {allowed} positional arguments, got {}",
                        args.len()
                    ),
                });
            }
            let mut by_kw: BTreeMap<String, Value> = BTreeMap::new();
            for (k, v) in b.argument_keywords.iter().zip(args) {
                by_kw.insert(k.clone(), v);
            }
            for (k, v) in kwargs {
                if !b.argument_keywords.contains(&k) || by_kw.contains_key(&k) {
                    return Err(Error::Call {
                        function: f.path.clone(),
                        what: format!(
                            "unexpected keyword argument {k:?}; arguments: {}",
                            b.argument_keywords.join(", ")
                        ),
                    });
                }
                by_kw.insert(k, v);
            }
            let keyword_style = matches!(&sig, Spec::Tuple(t) if t.len() == 2
                && matches!(&t[0], Spec::Tuple(a) if a.is_empty()));
            let mut flat = Vec::new();
            let result = if keyword_style {
                let canonical = Value::Tuple(vec![Value::Tuple(vec![]), Value::Dict(by_kw)]);
                flatten(&sig, &canonical, true, &mut flat)
            } else {
                // TF's flat signature: one tensor per argument keyword, in order.
                let comps = sig.flat_components();
                let mut r = Ok(());
                for (i, k) in b.argument_keywords.iter().enumerate() {
                    let Some(v) = by_kw.remove(k) else {
                        r = Err(format!("missing required argument {k:?}"));
                        break;
                    };
                    let Some((dtype, shape)) = comps.get(i).cloned() else {
                        r = Err(format!("argument {k:?} has no input"));
                        break;
                    };
                    let s = Spec::Tensor(super::structure::TensorSpec {
                        dtype,
                        shape,
                        name: k.clone(),
                    });
                    if let Err(e) = flatten(&s, &v, true, &mut flat) {
                        r = Err(e);
                        break;
                    }
                }
                r
            };
            result.map_err(|why| Error::NoMatchingFunction {
                function: f.path.clone(),
                got: why,
                options: vec![format!("  {sig}")],
            })?;
            run_concrete(l, &f.path, name, flat)
        }
        _ => Err(not_found(l, &f.path)),
    }
}

impl Value {
    fn describe_call(&self) -> String {
        match self {
            Value::Tuple(v) if v.len() == 2 => {
                let pos = match &v[0] {
                    Value::Tuple(p) => p.iter().map(Value::describe).collect::<Vec<_>>(),
                    _ => Vec::new(),
                };
                let kw = match &v[1] {
                    Value::Dict(m) => m
                        .iter()
                        .map(|(k, x)| format!("{k}={}", x.describe()))
                        .collect::<Vec<_>>(),
                    _ => Vec::new(),
                };
                format!(
                    "positional ({}), keyword {{{}}}",
                    pos.join(", "),
                    kw.join(", ")
                )
            }
            other => other.describe(),
        }
    }
}

/// The compiled plan of concrete function `name`, compiled on first use; a failure is kept
/// and reported again on every later use (it concerns this entry point only).
pub(crate) fn plan(l: &Loaded, name: &str) -> Result<Arc<Plan>> {
    if let Some(r) = l
        .objects
        .plans
        .lock()
        .ok()
        .and_then(|m| m.get(name).cloned())
    {
        return r.map_err(|e| replay(&e));
    }
    let graph = l
        .meta
        .graph_def
        .as_ref()
        .ok_or_else(|| Error::invalid(&l.dir, "meta graph has no graph_def"))?;
    let op_list = l
        .meta
        .meta_info_def
        .as_ref()
        .and_then(|m| m.stripped_op_list.as_ref());
    let mut c = Compiler::new(
        super::registry(),
        graph.library.as_ref(),
        op_list,
        l.opts.limits.clone(),
    );
    c.set_fusion(l.opts.fusion);
    let r = c.compile_function(name).map(Arc::new).map_err(Arc::new);
    if let Ok(mut m) = l.objects.plans.lock() {
        m.insert(name.to_string(), r.clone());
    }
    r.map_err(|e| replay(&e))
}

fn run_concrete(l: &Loaded, path: &str, name: &str, mut flat: Vec<Tensor>) -> Result<Value> {
    let g = graph(l)?;
    let cf = g
        .concrete_functions
        .get(name)
        .ok_or_else(|| Error::invalid("object graph", format!("no concrete function {name:?}")))?;
    let out_spec = match &cf.output_signature {
        Some(v) => Spec::decode(v).map_err(|e| Error::Call {
            function: path.to_string(),
            what: format!("output signature: {}", e.0),
        })?,
        None => Spec::None,
    };
    let p = plan(l, name)?;
    for &id in &cf.bound_inputs {
        flat.push(capture(l, id, 0)?);
    }
    if flat.len() != p.arg_slots.len() {
        return Err(Error::Call {
            function: path.to_string(),
            what: format!(
                "concrete function {name} takes {} inputs; the call gave {} (with {} captures)",
                p.arg_slots.len(),
                flat.len(),
                cf.bound_inputs.len()
            ),
        });
    }
    let mut cx = EvalCtx::new(&l.session);
    let outs = p.run(&mut cx, flat)?;
    pack(&out_spec, outs).map_err(|what| Error::Call {
        function: path.to_string(),
        what,
    })
}

/// The value bound for capture node `id` (memoised per load).
fn capture(l: &Loaded, id: i32, depth: usize) -> Result<Tensor> {
    if let Some(t) = l
        .objects
        .captures
        .lock()
        .ok()
        .and_then(|m| m.get(&id).cloned())
    {
        return Ok(t);
    }
    if depth > MAX_CAPTURE_DEPTH {
        return Err(Error::invalid(
            "object graph",
            format!("captures nested deeper than {MAX_CAPTURE_DEPTH} (at node {id})"),
        ));
    }
    let g = graph(l)?;
    let n = node(g, id)?;
    let t = match &n.kind {
        Some(Kind::Variable(v)) => {
            let keys = checkpoint_keys(l)?;
            let key = keys.get(&id).ok_or_else(|| {
                Error::invalid(
                    "object graph",
                    format!(
                        "variable {:?} (node {id}) has no value in the checkpoint's object graph",
                        v.name
                    ),
                )
            })?;
            let reader = l.session.checkpoint.as_ref().ok_or_else(|| {
                Error::invalid(&l.dir, "the model captures variables but has no checkpoint")
            })?;
            let value = crate::saved_model::checkpoint_tensor(reader, key)?;
            let h = l.session.resource(&format!("@object_graph/{id}"), || {
                crate::ops::variables::Variable::with_value(value)
            });
            let h = h.map_err(|e| Error::invalid("object graph", e))?;
            Tensor::handles(&[], vec![h], DType::Resource)?
        }
        Some(Kind::Asset(a)) => {
            let idx = usize::try_from(a.asset_file_def_index).ok();
            let file = idx
                .and_then(|i| l.meta.asset_file_def.get(i))
                .ok_or_else(|| {
                    Error::invalid("object graph", format!("asset node {id}: bad asset index"))
                })?;
            let p = l.root.join("assets").join(&file.filename);
            Tensor::scalar(Bytes::from(p.to_string_lossy().into_owned()))
        }
        Some(Kind::Constant(c)) => {
            let gd = l.meta.graph_def.as_ref();
            let nd = gd
                .and_then(|g| g.node.iter().find(|n| n.name == c.operation))
                .ok_or_else(|| {
                    Error::invalid(
                        "object graph",
                        format!("constant {:?} is not a node of the graph", c.operation),
                    )
                })?;
            match nd.attr.get("value").and_then(|a| a.value.as_ref()) {
                Some(crate::proto::attr_value::Value::Tensor(tp)) => {
                    let max = l.opts.limits.max_tensor_bytes;
                    crate::saved_model::tensor_proto::tensor_from_proto(tp, max).map_err(|e| {
                        Error::invalid("object graph", format!("constant {:?}: {e}", c.operation))
                    })?
                }
                _ => {
                    return Err(Error::invalid(
                        "object graph",
                        format!("constant {:?} has no value", c.operation),
                    ))
                }
            }
        }
        Some(Kind::Resource(_)) => {
            let handle = resource_call(l, id, "_create_resource", depth)?
                .into_iter()
                .next()
                .ok_or_else(|| {
                    Error::invalid("object graph", format!("resource {id}: no handle"))
                })?;
            if let Ok(mut m) = l.objects.captures.lock() {
                m.insert(id, handle.clone());
            }
            // TF runs `_initialize` on every resource after the restore; a table the main
            // graph's init op already filled is left as is by the initializer ops.
            if child(g, id, "_initialize").is_some() {
                resource_call(l, id, "_initialize", depth)?;
            }
            return Ok(handle);
        }
        _ => {
            return Err(Error::invalid(
                "object graph",
                format!(
                    "capture node {id} is a {}, which tfhub cannot bind",
                    kind_name(n)
                ),
            ))
        }
    };
    if let Ok(mut m) = l.objects.captures.lock() {
        m.insert(id, t.clone());
    }
    Ok(t)
}

/// Runs the zero-argument function child `name` of resource node `id`.
fn resource_call(l: &Loaded, id: i32, name: &str, depth: usize) -> Result<Vec<Tensor>> {
    let g = graph(l)?;
    let f = child(g, id, name)
        .ok_or_else(|| Error::invalid("object graph", format!("resource {id} has no {name}")))?;
    let cf_name = concrete_names(node(g, f)?)
        .first()
        .map(|s| s.to_string())
        .ok_or_else(|| {
            Error::invalid(
                "object graph",
                format!("resource {id}: {name} has no trace"),
            )
        })?;
    let cf = g.concrete_functions.get(&cf_name).ok_or_else(|| {
        Error::invalid("object graph", format!("no concrete function {cf_name:?}"))
    })?;
    let p = plan(l, &cf_name)?;
    let mut args = Vec::new();
    for &b in &cf.bound_inputs {
        args.push(capture(l, b, depth + 1)?);
    }
    let mut cx = EvalCtx::new(&l.session);
    p.run(&mut cx, args)
}

/// Saved node id → checkpoint key, by walking the SavedObjectGraph and the checkpoint's
/// `_CHECKPOINTABLE_OBJECT_GRAPH` together by child name from the root, as TF's
/// `TrackableSaver.restore` matches them (never by synthesised key).
fn checkpoint_keys(l: &Loaded) -> Result<Arc<HashMap<i32, String>>> {
    if let Some(k) = l.objects.keys.lock().ok().and_then(|k| k.clone()) {
        return Ok(k);
    }
    let g = graph(l)?;
    let mut keys = HashMap::new();
    if let Some(reader) = &l.session.checkpoint {
        let t = crate::saved_model::checkpoint_tensor(reader, "_CHECKPOINTABLE_OBJECT_GRAPH")?;
        let bytes = match t.data() {
            crate::tensor::Data::String(b) if b.len() == 1 => b[0].to_vec(),
            _ => {
                return Err(Error::invalid(
                    &l.dir,
                    "_CHECKPOINTABLE_OBJECT_GRAPH is not a scalar string",
                ))
            }
        };
        let tog =
            TrackableObjectGraph::decode(bytes.as_slice()).map_err(|source| Error::Decode {
                path: l.dir.join("variables"),
                what: "TrackableObjectGraph",
                source,
            })?;
        let mut seen = HashSet::from([0i32]);
        let mut queue = VecDeque::from([(0i32, 0i32)]);
        while let Some((sid, cid)) = queue.pop_front() {
            let (Ok(sn), Some(cn)) = (
                node(g, sid),
                usize::try_from(cid).ok().and_then(|i| tog.nodes.get(i)),
            ) else {
                continue;
            };
            if let Some(a) = cn.attributes.iter().find(|a| a.name == "VARIABLE_VALUE") {
                keys.insert(sid, a.checkpoint_key.clone());
            }
            for c in &sn.children {
                if !seen.insert(c.node_id) {
                    continue;
                }
                if let Some(cc) = cn.children.iter().find(|x| x.local_name == c.local_name) {
                    queue.push_back((c.node_id, cc.node_id));
                }
            }
        }
    }
    let keys = Arc::new(keys);
    if let Ok(mut k) = l.objects.keys.lock() {
        *k = Some(keys.clone());
    }
    Ok(keys)
}

/// True if `f` is a `function` whose saved argument spec has an argument `name` (positional
/// or keyword-only), as `hub.KerasLayer` checks for `training`.
pub(crate) fn takes_argument(l: &Loaded, f: &FnRef, name: &str) -> bool {
    let Ok(g) = graph(l) else { return false };
    let Ok(n) = node(g, f.node) else { return false };
    match &n.kind {
        Some(Kind::Function(func)) => func
            .function_spec
            .as_ref()
            .and_then(|fs| arg_spec(fs).ok())
            .is_some_and(|s| s.args.iter().chain(&s.kwonly).any(|a| a == name)),
        _ => false,
    }
}

//! Compiling a `GraphDef` or `FunctionDef` body into a [`Plan`].

mod cse;
mod frames;
mod fuse;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use super::{FunctionPlan, FunctionRef, Plan, Slot, Step};
use crate::error::{Error, RefusedOp, UnsupportedOp};
use crate::ops::{
    self, BuildCtx, Callable, EvalCtx, FunctionResolver, Limits, Op, OpError, Tensors,
};
use crate::ops::{Registry, Session};
use crate::proto::{AttrValue, FunctionDef, NodeDef, OpDef, OpList};
use crate::tensor::Tensor;

/// A plan step before slots are assigned: (node index, built op, inputs). Both plan-time
/// fusion passes (`compile/fuse.rs`, `graph/fuse.rs`) rewrite a list of these.
pub(super) type PendingStep = (usize, Box<dyn Op>, Vec<Src>);

/// Where each node's step stands in `steps` (node index → step index), for the fusions
/// that walk from a step back to its producers.
pub(super) fn step_positions(steps: &[PendingStep]) -> HashMap<usize, usize> {
    steps
        .iter()
        .enumerate()
        .map(|(si, st)| (st.0, si))
        .collect()
}

/// How many times each value is read by `steps` or returned as one of `outs`: a fusion may
/// only swallow a value read exactly once.
pub(super) fn use_counts(steps: &[PendingStep], outs: &[Src]) -> HashMap<Src, usize> {
    let mut uses: HashMap<Src, usize> = HashMap::new();
    for s in steps.iter().flat_map(|st| st.2.iter()).chain(outs) {
        *uses.entry(*s).or_default() += 1;
    }
    uses
}

/// A tensor fed by the caller: output `index` of node `node`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Feed {
    /// Node name.
    pub node: String,
    /// Output index.
    pub index: usize,
}

impl Feed {
    /// Parses a tensor name `node:idx` (or `node`, meaning output 0).
    pub fn parse(name: &str) -> Feed {
        let (node, index) = split_tensor_name(name);
        Feed {
            node: node.to_string(),
            index,
        }
    }
}

/// Something a plan must produce or run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetch {
    /// A tensor to return.
    Tensor(Feed),
    /// A node to run for its effects (`^name` or a bare op name such as an init `NoOp`).
    Target(String),
}

fn split_tensor_name(name: &str) -> (&str, usize) {
    match name.rsplit_once(':') {
        Some((n, i)) => match i.parse() {
            Ok(i) => (n, i),
            Err(_) => (name, 0),
        },
        None => (name, 0),
    }
}

/// Where a value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Src {
    /// Caller-provided argument `i`.
    Arg(usize),
    /// Output `flat index` of node `i`.
    Out(usize, usize),
}

/// Compiles graphs and the functions they reach.
pub struct Compiler<'a> {
    registry: &'a Registry,
    library: HashMap<&'a str, &'a FunctionDef>,
    op_defs: HashMap<&'a str, &'a OpDef>,
    functions: HashMap<String, FunctionRef>,
    /// `functions` in the order they were first referenced (callers before callees).
    order: Vec<FunctionRef>,
    /// Plan-time fusion on (`LoadOptions::fusion`; the CLI's `TFHUB_NO_FUSION=1` turns it off).
    fusion: bool,
    /// Functions to compile, each with its argument bindings (see `frozen`).
    pending: Vec<(FunctionRef, Vec<Option<String>>)>,
    /// Frozen variables (`graph::freeze`): resource key → value. `ReadVariableOp` of a handle
    /// known to be one of them becomes a constant; empty unless the loader froze variables.
    frozen: HashMap<String, Tensor>,
    /// Copies of functions specialised for calls that pass frozen variables' handles:
    /// (function, key bound to each argument) → plan.
    specialized: HashMap<(String, Vec<Option<String>>), FunctionRef>,
    /// The argument bindings for the call op being built (read by `FunctionResolver`).
    call_binding: Option<Vec<Option<String>>>,
    unsupported: Vec<UnsupportedOp>,
    refused: Vec<RefusedOp>,
    /// Nodes compiled so far (graph plans and functions), against `Limits::max_graph_nodes`.
    nodes_seen: usize,
    /// Bytes of constants produced by folding, against `Limits::max_live_bytes`.
    folded_bytes: usize,
    fold_session: Session,
    limits: Limits,
}

impl std::fmt::Debug for Compiler<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Compiler({} functions)", self.functions.len())
    }
}

impl FunctionResolver for Compiler<'_> {
    fn function(&mut self, name: &str) -> Result<Arc<dyn Callable>, OpError> {
        match self.call_binding.take() {
            Some(binding) => Ok(self.specialized_ref(name, binding)?),
            None => Ok(self.function_ref(name)?),
        }
    }
}

impl<'a> Compiler<'a> {
    /// A compiler for a graph's function library and the op definitions that fill in stripped
    /// default attributes.
    pub fn new(
        registry: &'a Registry,
        library: Option<&'a crate::proto::FunctionDefLibrary>,
        op_list: Option<&'a OpList>,
        limits: Limits,
    ) -> Self {
        let library = library
            .map(|l| {
                l.function
                    .iter()
                    .filter_map(|f| f.signature.as_ref().map(|s| (s.name.as_str(), f)))
                    .collect()
            })
            .unwrap_or_default();
        let mut op_defs: HashMap<&'a str, &'a OpDef> = op_list
            .map(|l| l.op.iter().map(|o| (o.name.as_str(), o)).collect())
            .unwrap_or_default();
        // TF's registry for ops the model lists no OpDef for (`ops::op_defaults`).
        for (name, def) in ops::op_defaults::table() {
            op_defs.entry(name.as_str()).or_insert(def);
        }
        Compiler {
            registry,
            library,
            op_defs,
            functions: HashMap::new(),
            order: Vec::new(),
            fusion: true,
            pending: Vec::new(),
            frozen: HashMap::new(),
            specialized: HashMap::new(),
            call_binding: None,
            unsupported: Vec::new(),
            refused: Vec::new(),
            nodes_seen: 0,
            folded_bytes: 0,
            fold_session: Session::new(PathBuf::new(), None, limits.clone()),
            limits,
        }
    }

    /// Makes `ReadVariableOp` of these variables (resource key → value) constants in every
    /// plan compiled from now on, specialising called functions per frozen handle argument.
    pub(crate) fn freeze_variables(&mut self, frozen: HashMap<String, Tensor>) {
        self.frozen = frozen;
    }

    /// The copy of function `name` whose arguments are bound to frozen variables as in
    /// `binding` (compiled once per distinct binding).
    fn specialized_ref(
        &mut self,
        name: &str,
        binding: Vec<Option<String>>,
    ) -> Result<FunctionRef, OpError> {
        let key = (name.to_string(), binding);
        if let Some(f) = self.specialized.get(&key) {
            return Ok(f.clone());
        }
        let f = self.new_function_ref(name)?;
        self.pending.push((f.clone(), key.1.clone()));
        self.specialized.insert(key, f.clone());
        Ok(f)
    }

    /// A not-yet-compiled plan for library function `name` (the caller queues it).
    fn new_function_ref(&self, name: &str) -> Result<FunctionRef, OpError> {
        if !self.library.contains_key(name) {
            return Err(OpError::invalid(format!(
                "function {name:?} is not in the graph's function library"
            )));
        }
        Ok(Arc::new(FunctionPlan {
            name: name.to_string(),
            plan: OnceLock::new(),
        }))
    }

    fn function_ref(&mut self, name: &str) -> Result<FunctionRef, OpError> {
        if let Some(f) = self.functions.get(name) {
            return Ok(f.clone());
        }
        let f = self.new_function_ref(name)?;
        self.functions.insert(name.to_string(), f.clone());
        self.order.push(f.clone());
        self.pending.push((f.clone(), Vec::new()));
        Ok(f)
    }

    /// Compiles a top-level graph: `feeds` become the plan's arguments (in order), `fetches`
    /// its outputs and targets. Every function reached is compiled too (iteratively, so deep
    /// call chains cannot overflow the stack).
    ///
    /// # Errors
    /// [`Error::UnsupportedOps`] listing every missing op reached, or the first build error.
    pub fn compile_graph(
        &mut self,
        nodes: &'a [NodeDef],
        feeds: &[Feed],
        fetches: &[Fetch],
    ) -> Result<Plan, Error> {
        let body = Body::graph(nodes, feeds)?;
        let mut outs = Vec::new();
        let mut targets = Vec::new();
        for f in fetches {
            match f {
                Fetch::Tensor(t) => outs.push(body.tensor_src(&t.node, t.index, &t.node)?),
                Fetch::Target(n) => targets.push(body.node_index(n.trim_start_matches('^'))?),
            }
        }
        let mut plan = self.compile_body("", &body, &outs, &targets, &[])?;
        self.drain()?;
        self.check_unsupported()?;
        plan.library = super::Library(self.order.clone());
        Ok(plan)
    }

    /// Turns plan-time fusion on or off for everything compiled from now on.
    pub fn set_fusion(&mut self, on: bool) {
        self.fusion = on;
    }

    /// Compiles library function `name` (and everything it reaches) as a plan whose arguments
    /// and outputs are the function's own.
    ///
    /// # Errors
    /// As [`Compiler::compile_graph`]; [`Error::InvalidModel`] if `name` is not in the library.
    pub fn compile_function(&mut self, name: &str) -> Result<Plan, Error> {
        let fdef = *self.library.get(name).ok_or_else(|| {
            Error::invalid(name, "function is not in the graph's function library")
        })?;
        let body = Body::function(fdef)?;
        let sig = fdef
            .signature
            .as_ref()
            .expect("library entries have signatures");
        let mut outs = Vec::new();
        for arg in &sig.output_arg {
            let r = fdef.ret.get(&arg.name).ok_or_else(|| {
                Error::invalid(name, format!("output {:?} has no return value", arg.name))
            })?;
            outs.push(body.input_src(r, name)?);
        }
        let mut targets = Vec::new();
        for n in fdef.control_ret.values() {
            targets.push(body.node_index(n)?);
        }
        let mut plan = self.compile_body(name, &body, &outs, &targets, &[])?;
        self.drain()?;
        self.check_unsupported()?;
        plan.library = super::Library(self.order.clone());
        Ok(plan)
    }

    /// The refused, then the unsupported ops found so far.
    fn check_unsupported(&mut self) -> Result<(), Error> {
        if !self.refused.is_empty() {
            let mut seen = HashSet::new();
            let list: Vec<RefusedOp> = std::mem::take(&mut self.refused)
                .into_iter()
                .filter(|r| seen.insert(r.op.clone()))
                .collect();
            self.unsupported.clear();
            return Err(Error::RefusedOps(list));
        }
        if self.unsupported.is_empty() {
            return Ok(());
        }
        let mut seen = HashSet::new();
        let list: Vec<UnsupportedOp> = std::mem::take(&mut self.unsupported)
            .into_iter()
            .filter(|u| seen.insert(u.op.clone()))
            .collect();
        Err(Error::UnsupportedOps(list))
    }

    fn drain(&mut self) -> Result<(), Error> {
        let mut budget = 1_000_000usize;
        while let Some((f, binding)) = self.pending.pop() {
            budget = budget.saturating_sub(1);
            if budget == 0 {
                return Err(Error::invalid(&f.name, "too many functions"));
            }
            let fdef = self.library[f.name.as_str()];
            let body = Body::function(fdef)?;
            let sig = fdef
                .signature
                .as_ref()
                .expect("library entries have signatures");
            let mut outs = Vec::new();
            for arg in &sig.output_arg {
                let r = fdef.ret.get(&arg.name).ok_or_else(|| {
                    Error::invalid(
                        &f.name,
                        format!("output {:?} has no return value", arg.name),
                    )
                })?;
                outs.push(body.input_src(r, &f.name)?);
            }
            let mut targets = Vec::new();
            for n in fdef.control_ret.values() {
                targets.push(body.node_index(n)?);
            }
            let plan = self.compile_body(&f.name, &body, &outs, &targets, &binding)?;
            // `set` only fails if already set, which cannot happen: each is queued once.
            let _ = f.plan.set(plan);
        }
        Ok(())
    }

    fn filled_attrs(&self, node: &NodeDef) -> BTreeMap<String, AttrValue> {
        let mut attrs = node.attr.clone();
        if let Some(def) = self.op_defs.get(node.op.as_str()) {
            for a in &def.attr {
                if let Some(d) = &a.default_value {
                    attrs.entry(a.name.clone()).or_insert_with(|| d.clone());
                }
            }
        }
        attrs
    }

    fn compile_body(
        &mut self,
        name: &str,
        body: &Body<'a>,
        outs: &[Src],
        targets: &[usize],
        arg_vars: &[Option<String>],
    ) -> Result<Plan, Error> {
        let deref_outputs = ref_outputs(body, outs);
        if body.nodes.iter().any(|n| frames::is_dataflow_op(&n.op)) {
            let needed = body.needed(outs, targets);
            if (0..body.nodes.len()).any(|i| needed[i] && frames::is_dataflow_op(&body.nodes[i].op))
            {
                let flow = self.compile_flow(name, body, outs, targets, &needed)?;
                return Ok(Plan {
                    name: name.to_string(),
                    steps: Vec::new(),
                    num_slots: 0,
                    arg_slots: Vec::new(),
                    outputs: Vec::new(),
                    consts: Vec::new(),
                    deref_outputs,
                    flow: flow.map(Box::new),
                    library: Default::default(),
                    hop: Default::default(),
                });
            }
        }
        let order = body.order(outs, targets, name)?;
        self.nodes_seen = self.nodes_seen.saturating_add(order.len());
        if self.nodes_seen > self.limits.max_graph_nodes {
            return Err(Error::invalid(
                if name.is_empty() { "graph" } else { name },
                format!(
                    "limit exceeded: more than {} nodes to compile (Limits::max_graph_nodes)",
                    self.limits.max_graph_nodes
                ),
            ));
        }
        // Resolve every needed node's inputs first (needs attrs for output-arg offsets).
        let mut steps: Vec<PendingStep> = Vec::new();
        let mut consts: HashMap<Src, Tensor> = HashMap::new();
        // Values known to be the handle of a frozen variable (its resource key).
        let mut var_of: HashMap<Src, String> = HashMap::new();
        for (i, key) in arg_vars.iter().enumerate() {
            if let Some(k) = key {
                var_of.insert(Src::Arg(i), k.clone());
            }
        }
        // Repeated stateless steps are built once (`compile/cse.rs`).
        let mut cse = cse::Cse::default();
        for &ni in &order {
            let node = &body.nodes[ni];
            let attrs = self.filled_attrs(node);
            let mut inputs = Vec::new();
            for inp in &node.input {
                if inp.starts_with('^') {
                    continue;
                }
                inputs.push(cse.resolve(self.resolve_input(body, inp, name, &node.name)?));
            }
            if !self.frozen.is_empty() {
                let is_call = matches!(
                    node.op.as_str(),
                    "PartitionedCall" | "StatefulPartitionedCall"
                ) || self.library.contains_key(node.op.as_str());
                let f = &self.frozen;
                match super::freeze::frozen_step(f, is_call, node, &attrs, name, &inputs, &var_of) {
                    super::freeze::Frozen::Handle(key) => {
                        var_of.insert(Src::Out(ni, 0), key);
                    }
                    super::freeze::Frozen::Value(t) => {
                        consts.insert(Src::Out(ni, 0), t);
                        continue;
                    }
                    super::freeze::Frozen::Call(binding) => self.call_binding = Some(binding),
                    super::freeze::Frozen::No => {}
                }
            }
            let built = self.build(node, &attrs, inputs.len(), name);
            self.call_binding = None;
            let op = match built {
                Ok(Some(op)) => ops::deref_inputs(op, ref_reads(body, node, &inputs)),
                Ok(None) => continue, // unsupported: recorded
                Err(source) => {
                    return Err(Error::Node {
                        node: qualify(name, &node.name),
                        op: node.op.clone(),
                        source: Box::new(source),
                    })
                }
            };
            if let Some(c) = op.constant() {
                consts.insert(Src::Out(ni, 0), c.clone());
                continue;
            }
            if !op.is_stateful()
                && !inputs.is_empty()
                && inputs.iter().all(|s| consts.contains_key(s))
            {
                let vals: Tensors = inputs.iter().map(|s| consts[s].clone()).collect();
                let mut cx = EvalCtx::new(&self.fold_session);
                // Folded values live as long as the model: their total is capped too (past
                // the cap, ops stay in the plan and are counted per call instead).
                let folded = op.eval(&mut cx, vals).ok().filter(|outs| {
                    let bytes: usize = outs.iter().map(Tensor::nbytes).sum();
                    self.folded_bytes.saturating_add(bytes) <= self.limits.max_live_bytes
                });
                if let Some(outs) = folded {
                    self.folded_bytes += outs.iter().map(Tensor::nbytes).sum::<usize>();
                    for (i, t) in outs.into_iter().enumerate() {
                        consts.insert(Src::Out(ni, i), t);
                    }
                    continue;
                }
            }
            if !op.is_stateful()
                && !inputs.is_empty()
                && !inputs.iter().any(|s| is_ref_src(body, s))
                && cse.merge(
                    ni,
                    &node.op,
                    &attrs,
                    &inputs,
                    &mut controls(body, node, &cse),
                    &consts,
                )
            {
                continue;
            }
            // Constant inputs the op can take at plan time (`Op::bind_constants`).
            let (op, inputs) = if inputs.iter().any(|s| consts.contains_key(s)) {
                let known: Vec<Option<&Tensor>> = inputs.iter().map(|s| consts.get(s)).collect();
                match op.bind_constants(&known) {
                    Some(bound) => {
                        let rest = inputs.into_iter().filter(|s| !consts.contains_key(s));
                        (bound, rest.collect())
                    }
                    None => (op, inputs),
                }
            } else {
                (op, inputs)
            };
            steps.push((ni, op, inputs));
        }
        if !self.unsupported.is_empty() || !self.refused.is_empty() {
            // Keep collecting across functions, but a plan with holes is never run.
            return Ok(Plan {
                name: name.to_string(),
                steps: Vec::new(),
                num_slots: 0,
                arg_slots: Vec::new(),
                outputs: Vec::new(),
                consts: Vec::new(),
                library: Default::default(),
                deref_outputs: Vec::new(),
                flow: None,
                hop: Default::default(),
            });
        }
        // Identity-like steps forwarded, NoOps dropped (`graph/slim.rs`).
        let mut outs_fwd: Vec<Src> = outs.iter().map(|s| cse.resolve(*s)).collect();
        let mut steps = super::slim::forward_identities(body.nodes, steps, &mut outs_fwd);
        let outs = &outs_fwd[..];
        // Plan-time rewrites: embedding lookups (`compile/fuse.rs`), then swish and
        // producer + epilogue chains (`graph/fuse.rs`). Both keep node indices of the step
        // they replace, so `fused` stays valid for naming.
        let (fused, steps) = if self.fusion {
            let fused = fuse::embedding_lookups(body.nodes, &mut steps, &consts, outs);
            let steps = super::fuse::bypass_identity_n(body.nodes, steps, outs);
            let steps = super::fuse::fold_pads(body.nodes, steps, &consts, outs);
            let (steps, gelu) = super::fuse_gelu::fuse_gelu(body.nodes, steps, &consts, outs);
            let steps = super::fuse_dense::fuse_dense(body.nodes, steps, outs, &gelu);
            let steps = super::fuse_attention::fuse_attention(body.nodes, steps, &consts, outs);
            let steps =
                super::fuse_layernorm::fuse_layernorm_tail(body.nodes, steps, &consts, outs);
            let (steps, swish) = super::fuse::fuse_swish(body.nodes, steps, &consts, outs);
            (
                fused,
                super::fuse::fuse_epilogues(body.nodes, steps, &consts, outs, &swish),
            )
        } else {
            (HashSet::new(), steps)
        };
        // Slots.
        let mut slot_of: HashMap<Src, Slot> = HashMap::new();
        let mut next = 0usize;
        let mut slot = |s: Src, slot_of: &mut HashMap<Src, Slot>| {
            *slot_of.entry(s).or_insert_with(|| {
                next += 1;
                next - 1
            })
        };
        let arg_slots: Vec<Slot> = (0..body.num_args)
            .map(|i| slot(Src::Arg(i), &mut slot_of))
            .collect();
        let mut last_use: HashMap<Slot, (usize, usize)> = HashMap::new();
        let mut built: Vec<Step> = Vec::new();
        for (si, (ni, op, inputs)) in steps.into_iter().enumerate() {
            let node = &body.nodes[ni];
            let ins: smallvec::SmallVec<[(Slot, bool); 4]> = inputs
                .iter()
                .enumerate()
                .map(|(pos, s)| {
                    let sl = slot(*s, &mut slot_of);
                    last_use.insert(sl, (si, pos));
                    (sl, false)
                })
                .collect();
            built.push(Step {
                node: node.name.clone(),
                op_type: fuse::op_type(&fused, ni, &node.op),
                op,
                inputs: ins,
                outputs: Default::default(),
            });
        }
        let out_slots: Vec<Slot> = outs.iter().map(|s| slot(*s, &mut slot_of)).collect();
        for s in &out_slots {
            last_use.remove(s);
        }
        for (sl, (si, pos)) in &last_use {
            built[*si].inputs[*pos].1 = true;
            let _ = sl;
        }
        // Outputs each step must store.
        let step_of_node: HashMap<usize, usize> = built
            .iter()
            .enumerate()
            .filter_map(|(si, st)| body.index.get(st.node.as_str()).map(|&ni| (ni, si)))
            .collect();
        let mut const_slots = Vec::new();
        for (src, &sl) in &slot_of {
            match src {
                Src::Out(ni, idx) => {
                    if let Some(&si) = step_of_node.get(ni) {
                        built[si].outputs.push((*idx, sl));
                    } else if let Some(c) = consts.get(src) {
                        const_slots.push((sl, c.clone()));
                    } else {
                        return Err(Error::invalid(
                            qualify(name, &body.nodes[*ni].name),
                            format!("output {idx} is used but never produced"),
                        ));
                    }
                }
                Src::Arg(_) => {}
            }
        }
        for st in &mut built {
            st.outputs.sort_unstable();
        }
        const_slots.sort_by_key(|(s, _)| *s);
        // Constants take the lowest slots, so the executor hands them to ops straight from
        // the plan (`Plan::consts[slot]`) instead of copying each into a per-call slot.
        let mut remap = vec![usize::MAX; next];
        for (k, (s, _)) in const_slots.iter().enumerate() {
            remap[*s] = k;
        }
        let unset = remap.iter_mut().filter(|r| **r == usize::MAX);
        for (k, r) in (const_slots.len()..).zip(unset) {
            *r = k;
        }
        for st in &mut built {
            for (s, _) in st.inputs.iter_mut() {
                *s = remap[*s];
            }
            for (_, s) in st.outputs.iter_mut() {
                *s = remap[*s];
            }
        }
        let arg_slots = arg_slots.into_iter().map(|s| remap[s]).collect();
        let out_slots = out_slots.into_iter().map(|s| remap[s]).collect();
        let consts = const_slots.into_iter().map(|(_, t)| t).collect();
        Ok(Plan {
            name: name.to_string(),
            steps: built,
            num_slots: next,
            arg_slots,
            outputs: out_slots,
            consts,
            library: Default::default(),
            deref_outputs,
            flow: None,
            hop: Default::default(),
        })
    }

    fn build(
        &mut self,
        node: &NodeDef,
        attrs: &BTreeMap<String, AttrValue>,
        num_inputs: usize,
        scope: &str,
    ) -> Result<Option<Box<dyn Op>>, OpError> {
        // Checked before the registry and the library: a refused op is never built.
        if let Some(reason) = ops::refused::refusal(&node.op, attrs) {
            self.refused.push(RefusedOp {
                op: node.op.clone(),
                node: qualify(scope, &node.name),
                reason,
            });
            return Ok(None);
        }
        if let Some(b) = self.registry.get(&node.op) {
            let max_const_elements = self.limits.max_const_elements;
            let mut cx = BuildCtx {
                node: &node.name,
                op: &node.op,
                attrs,
                num_inputs,
                scope,
                max_const_elements,
                functions: self,
            };
            return b(&mut cx).map(Some);
        }
        if self.library.contains_key(node.op.as_str()) {
            let f = match self.call_binding.take() {
                Some(binding) => self.specialized_ref(&node.op, binding)?,
                None => self.function_ref(&node.op)?,
            };
            return Ok(Some(ops::direct_call(f)));
        }
        self.unsupported.push(UnsupportedOp {
            op: node.op.clone(),
            node: qualify(scope, &node.name),
        });
        Ok(None)
    }

    fn resolve_input(
        &self,
        body: &Body<'a>,
        inp: &str,
        scope: &str,
        node: &str,
    ) -> Result<Src, Error> {
        if !body.is_function {
            let (n, i) = split_tensor_name(inp);
            return body.tensor_src(n, i, &qualify(scope, node));
        }
        body.input_src_with(inp, scope, |op, out_arg, idx, attrs| {
            self.output_offset(op, out_arg, idx, attrs)
        })
    }

    /// Flat output index of `out_arg:idx` on an op of type `op` with these attributes.
    fn output_offset(
        &self,
        op: &str,
        out_arg: &str,
        idx: usize,
        attrs: &BTreeMap<String, AttrValue>,
    ) -> Option<usize> {
        if let Some(f) = self.library.get(op) {
            let sig = f.signature.as_ref()?;
            let pos = sig.output_arg.iter().position(|a| a.name == out_arg)?;
            return Some(pos + idx);
        }
        let Some(def) = self.op_defs.get(op) else {
            // No OpDef in the model nor in TF's registry table (`ops::op_defaults`, which
            // covers ops TF's export uses only inside While/If bodies and leaves out of the
            // stripped op list): hand-made functions; assume a single output arg.
            return Some(idx);
        };
        let mut off = 0usize;
        for a in &def.output_arg {
            if a.name == out_arg {
                return Some(off + idx);
            }
            off += arg_len(a, attrs, &self.op_defs, op)?;
        }
        None
    }
}

fn arg_len(
    a: &crate::proto::op_def::ArgDef,
    attrs: &BTreeMap<String, AttrValue>,
    op_defs: &HashMap<&str, &OpDef>,
    op: &str,
) -> Option<usize> {
    use crate::proto::attr_value::Value;
    let get = |name: &str| {
        attrs.get(name).and_then(|v| v.value.clone()).or_else(|| {
            op_defs.get(op).and_then(|d| {
                d.attr
                    .iter()
                    .find(|x| x.name == name)
                    .and_then(|x| x.default_value.as_ref())
                    .and_then(|v| v.value.clone())
            })
        })
    };
    if !a.number_attr.is_empty() {
        match get(&a.number_attr)? {
            Value::I(n) => usize::try_from(n).ok(),
            _ => None,
        }
    } else if !a.type_list_attr.is_empty() {
        match get(&a.type_list_attr)? {
            Value::List(l) => Some(l.r#type.len()),
            _ => None,
        }
    } else {
        Some(1)
    }
}

/// True if `s` is an output of a TF1 ref-producing op (`VariableV2`, `Assign`, `RefSwitch`...).
/// `node`'s control inputs for [`cse::Cse::merge`]: each the index of the node standing for
/// it (`n<index>`), or its name when it names no node of the body.
fn controls(body: &Body<'_>, node: &NodeDef, cse: &cse::Cse) -> Vec<String> {
    node.input
        .iter()
        .filter_map(|i| i.strip_prefix('^'))
        .map(|c| match body.index.get(c) {
            Some(&ci) => format!("n{}", cse.node(ci)),
            None => c.to_string(),
        })
        .collect()
}

fn is_ref_src(body: &Body<'_>, s: &Src) -> bool {
    matches!(s, Src::Out(j, _) if ops::REF_PRODUCERS.contains(&body.nodes[*j].op.as_str()))
}

/// Input positions of `node` that read a ref edge into a non-ref input (TF reads the
/// variable there).
fn ref_reads(body: &Body<'_>, node: &NodeDef, inputs: &[Src]) -> Vec<usize> {
    inputs
        .iter()
        .enumerate()
        .filter(|(pos, s)| is_ref_src(body, s) && !ops::takes_ref(&node.op, *pos))
        .map(|(pos, _)| pos)
        .collect()
}

/// Positions of `outs` that are ref edges (fetched by value).
fn ref_outputs(body: &Body<'_>, outs: &[Src]) -> Vec<usize> {
    outs.iter()
        .enumerate()
        .filter(|(_, s)| is_ref_src(body, s))
        .map(|(i, _)| i)
        .collect()
}

fn qualify(scope: &str, node: &str) -> String {
    if scope.is_empty() {
        node.to_string()
    } else {
        format!("{scope}/{node}")
    }
}

/// A graph or function body, indexed.
struct Body<'a> {
    nodes: &'a [NodeDef],
    index: HashMap<&'a str, usize>,
    /// Function argument names → index; top-level feeds → index.
    args: HashMap<String, usize>,
    feeds: HashMap<(String, usize), usize>,
    num_args: usize,
    is_function: bool,
}

impl<'a> Body<'a> {
    fn graph(nodes: &'a [NodeDef], feeds: &[Feed]) -> Result<Body<'a>, Error> {
        let index = index_nodes(nodes, "")?;
        let mut fm = HashMap::new();
        for (i, f) in feeds.iter().enumerate() {
            if !index.contains_key(f.node.as_str()) {
                return Err(Error::NotFound {
                    what: "feed node",
                    name: f.node.clone(),
                    available: Vec::new(),
                });
            }
            fm.insert((f.node.clone(), f.index), i);
        }
        Ok(Body {
            nodes,
            index,
            args: HashMap::new(),
            feeds: fm,
            num_args: feeds.len(),
            is_function: false,
        })
    }

    fn function(f: &'a FunctionDef) -> Result<Body<'a>, Error> {
        let sig = f
            .signature
            .as_ref()
            .ok_or_else(|| Error::invalid("function", "function without signature"))?;
        let index = index_nodes(&f.node_def, &sig.name)?;
        let args = sig
            .input_arg
            .iter()
            .enumerate()
            .map(|(i, a)| (a.name.clone(), i))
            .collect();
        Ok(Body {
            nodes: &f.node_def,
            index,
            args,
            feeds: HashMap::new(),
            num_args: sig.input_arg.len(),
            is_function: true,
        })
    }

    fn node_index(&self, name: &str) -> Result<usize, Error> {
        self.index
            .get(name)
            .copied()
            .ok_or_else(|| Error::NotFound {
                what: "node",
                name: name.to_string(),
                available: Vec::new(),
            })
    }

    fn tensor_src(&self, node: &str, idx: usize, ctx: &str) -> Result<Src, Error> {
        if let Some(&a) = self.feeds.get(&(node.to_string(), idx)) {
            return Ok(Src::Arg(a));
        }
        let ni = self
            .index
            .get(node)
            .copied()
            .ok_or_else(|| Error::invalid(ctx, format!("input {node:?} names no node")))?;
        Ok(Src::Out(ni, idx))
    }

    /// A function-body reference (`arg`, `node:out_arg:idx`, `node:idx`, `node`) without
    /// output-arg offsets (only for return values resolved by [`Compiler`]).
    fn input_src(&self, r: &str, scope: &str) -> Result<Src, Error> {
        self.input_src_with(r, scope, |_, _, idx, _| Some(idx))
    }

    fn input_src_with(
        &self,
        r: &str,
        scope: &str,
        offset: impl Fn(&str, &str, usize, &BTreeMap<String, AttrValue>) -> Option<usize>,
    ) -> Result<Src, Error> {
        let parts: Vec<&str> = r.split(':').collect();
        match parts.as_slice() {
            [a] => {
                if let Some(&i) = self.args.get(*a) {
                    return Ok(Src::Arg(i));
                }
                self.tensor_src(a, 0, scope)
            }
            [n, i] => {
                let idx = i
                    .parse()
                    .map_err(|_| Error::invalid(scope, format!("bad input reference {r:?}")))?;
                self.tensor_src(n, idx, scope)
            }
            [n, out, i] => {
                let idx: usize = i
                    .parse()
                    .map_err(|_| Error::invalid(scope, format!("bad input reference {r:?}")))?;
                let ni = self.node_index(n)?;
                let node = &self.nodes[ni];
                let flat = offset(&node.op, out, idx, &node.attr).ok_or_else(|| {
                    Error::invalid(
                        scope,
                        format!(
                            "cannot resolve output {out:?} of {} ({})",
                            node.name, node.op
                        ),
                    )
                })?;
                Ok(Src::Out(ni, flat))
            }
            _ => Err(Error::invalid(scope, format!("bad input reference {r:?}"))),
        }
    }

    /// Nodes (data and control) that node `ni` waits for; fed tensors are not dependencies.
    fn deps_of(&self, ni: usize) -> Vec<usize> {
        let node = &self.nodes[ni];
        let mut d = Vec::new();
        for inp in &node.input {
            let name = inp.trim_start_matches('^');
            let base = name.split(':').next().unwrap_or(name);
            if !inp.starts_with('^') {
                if self.args.contains_key(base) {
                    continue;
                }
                let (n, i) = split_tensor_name(name);
                if !self.is_function && self.feeds.contains_key(&(n.to_string(), i)) {
                    continue;
                }
            }
            if let Some(&j) = self.index.get(base) {
                d.push(j);
            }
        }
        d
    }

    /// Which nodes the outputs and targets need, transitively.
    fn needed(&self, outs: &[Src], targets: &[usize]) -> Vec<bool> {
        let mut needed = vec![false; self.nodes.len()];
        let mut stack: Vec<usize> = targets.to_vec();
        for s in outs {
            if let Src::Out(n, _) = s {
                stack.push(*n);
            }
        }
        while let Some(n) = stack.pop() {
            if needed[n] {
                continue;
            }
            needed[n] = true;
            stack.extend(self.deps_of(n));
        }
        needed
    }

    /// Needed nodes in a deterministic topological order (data and control edges).
    fn order(&self, outs: &[Src], targets: &[usize], scope: &str) -> Result<Vec<usize>, Error> {
        let needed = self.needed(outs, targets);
        topo_order(&needed, |ni| self.deps_of(ni)).map_err(|stuck| {
            let stuck: Vec<&str> = stuck.iter().map(|&n| self.nodes[n].name.as_str()).collect();
            Error::invalid(
                if scope.is_empty() { "graph" } else { scope },
                format!("graph has a cycle through {stuck:?}"),
            )
        })
    }
}

/// Kahn's algorithm over the `needed` nodes, lowest node index first, so the order is
/// deterministic. `deps(n)` yields `n`'s inputs (data and control); inputs that are not
/// needed are ignored. On a cycle, returns up to five of the nodes left waiting.
pub(super) fn topo_order<I: IntoIterator<Item = usize>>(
    needed: &[bool],
    deps: impl Fn(usize) -> I,
) -> Result<Vec<usize>, Vec<usize>> {
    use std::cmp::Reverse;
    let n = needed.len();
    let mut indeg = vec![0usize; n];
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); n];
    for ni in (0..n).filter(|&i| needed[i]) {
        for d in deps(ni) {
            if needed[d] {
                indeg[ni] += 1;
                users[d].push(ni);
            }
        }
    }
    let mut ready: std::collections::BinaryHeap<Reverse<usize>> = (0..n)
        .filter(|&i| needed[i] && indeg[i] == 0)
        .map(Reverse)
        .collect();
    let mut order = Vec::new();
    while let Some(Reverse(ni)) = ready.pop() {
        order.push(ni);
        for &u in &users[ni] {
            indeg[u] -= 1;
            if indeg[u] == 0 {
                ready.push(Reverse(u));
            }
        }
    }
    if order.len() == needed.iter().filter(|&&b| b).count() {
        Ok(order)
    } else {
        Err((0..n)
            .filter(|&i| needed[i] && indeg[i] > 0)
            .take(5)
            .collect())
    }
}

fn index_nodes<'a>(nodes: &'a [NodeDef], scope: &str) -> Result<HashMap<&'a str, usize>, Error> {
    let mut index = HashMap::with_capacity(nodes.len());
    for (i, n) in nodes.iter().enumerate() {
        if index.insert(n.name.as_str(), i).is_some() {
            return Err(Error::invalid(
                if scope.is_empty() { "graph" } else { scope },
                format!("duplicate node name {:?}", n.name),
            ));
        }
    }
    Ok(index)
}

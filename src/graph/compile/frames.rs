//! Compiling a body with TF1 dataflow control flow into a [`FlowPlan`] (run by
//! `graph::dataflow`, whose `//!` gives the semantics).
//!
//! Frames are found the way TF's `BuildControlFlowInfo` does (core/common_runtime/
//! graph_view / executor.cc): a node's output lives in the frame of its inputs; an `Enter`'s
//! output lives in the child frame named by its `frame_name` (one per parent frame and name);
//! an `Exit`'s output lives in the parent of its input's frame; inputs from two frames are an
//! error. Each frame becomes one step of its parent body, placed by a topological order over
//! the parent's nodes and child frames, with `NextIteration -> Merge` back edges cut. No
//! constant folding or fusion runs in such bodies: deadness travels along control edges that
//! folding would drop.

use std::collections::{BinaryHeap, HashMap};

use super::{qualify, ref_reads, Body, Compiler, Src};
use crate::error::Error;
use crate::graph::dataflow::{Body as FBody, FStep, FlowPlan, Frame, FrameInput, Kind};
use crate::graph::Slot;
use crate::ops;
use crate::proto::NodeDef;

/// The ops that need the frame executor.
pub(super) fn is_dataflow_op(op: &str) -> bool {
    cf(op) != Cf::Plain
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cf {
    Plain,
    Switch,
    Merge,
    Enter,
    Exit,
    Next,
}

fn cf(op: &str) -> Cf {
    match op {
        "Switch" | "RefSwitch" => Cf::Switch,
        "Merge" | "RefMerge" => Cf::Merge,
        "Enter" | "RefEnter" => Cf::Enter,
        "Exit" | "RefExit" => Cf::Exit,
        "NextIteration" | "RefNextIteration" => Cf::Next,
        _ => Cf::Plain,
    }
}

/// A value, token or loop-carried value as one body sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Val(Src),
    Token(usize),
    Carry(usize),
}

#[derive(Debug)]
struct FrameInfo {
    name: String,
    parent: usize,
    depth: usize,
    anchor: Option<String>,
    /// `Enter` nodes into this frame, in graph order.
    enters: Vec<usize>,
    /// `Exit` nodes out of this frame, in graph order.
    exits: Vec<usize>,
}

/// Per-node facts shared by every body.
struct Flow<'b, 'a> {
    body: &'b Body<'a>,
    scope: &'b str,
    /// Data inputs (resolved) and control-input nodes of every needed node.
    data: HashMap<usize, Vec<Src>>,
    ctrl: HashMap<usize, Vec<usize>>,
    /// Position in the global order (back edges cut).
    pos: HashMap<usize, usize>,
    order: Vec<usize>,
    home: HashMap<usize, usize>,
    out_frame: HashMap<usize, usize>,
    frames: Vec<FrameInfo>,
}

impl Flow<'_, '_> {
    fn node(&self, i: usize) -> &NodeDef {
        &self.body.nodes[i]
    }
    fn is_back_edge(&self, consumer: usize, src: usize) -> bool {
        cf(&self.node(consumer).op) == Cf::Merge && cf(&self.node(src).op) == Cf::Next
    }
    fn err(&self, node: usize, what: impl std::fmt::Display) -> Error {
        Error::Node {
            node: qualify(self.scope, &self.node(node).name),
            op: self.node(node).op.clone(),
            source: Box::new(ops::OpError::invalid(what)),
        }
    }
}

impl<'a> Compiler<'a> {
    /// Compiles a body that uses TF1 control flow; `None` if unsupported ops were found (they
    /// are recorded, as in `compile_body`).
    pub(super) fn compile_flow(
        &mut self,
        name: &str,
        body: &Body<'a>,
        outs: &[Src],
        targets: &[usize],
        needed: &[bool],
    ) -> Result<Option<FlowPlan>, Error> {
        let total = needed.iter().filter(|&&b| b).count();
        self.nodes_seen = self.nodes_seen.saturating_add(total);
        if self.nodes_seen > self.limits.max_graph_nodes {
            return Err(Error::invalid(
                if name.is_empty() { "graph" } else { name },
                format!(
                    "limit exceeded: more than {} nodes to compile (Limits::max_graph_nodes)",
                    self.limits.max_graph_nodes
                ),
            ));
        }
        let mut flow = Flow {
            body,
            scope: name,
            data: HashMap::new(),
            ctrl: HashMap::new(),
            pos: HashMap::new(),
            order: Vec::new(),
            home: HashMap::new(),
            out_frame: HashMap::new(),
            frames: vec![FrameInfo {
                name: String::new(),
                parent: 0,
                depth: 0,
                anchor: None,
                enters: Vec::new(),
                exits: Vec::new(),
            }],
        };
        for ni in (0..body.nodes.len()).filter(|&i| needed[i]) {
            let node = &body.nodes[ni];
            let mut data = Vec::new();
            let mut ctrl = Vec::new();
            for inp in &node.input {
                if let Some(c) = inp.strip_prefix('^') {
                    if let Some(&j) = body.index.get(c) {
                        ctrl.push(j);
                    }
                } else {
                    data.push(self.resolve_input(body, inp, name, &node.name)?);
                }
            }
            flow.data.insert(ni, data);
            flow.ctrl.insert(ni, ctrl);
        }
        flow.order = order_cut(&flow, needed, name)?;
        flow.pos = flow
            .order
            .iter()
            .enumerate()
            .map(|(p, &n)| (n, p))
            .collect();
        assign_frames(&mut flow, self.limits.max_call_depth)?;
        // Outputs and targets must live in the root frame.
        for s in outs {
            if let Src::Out(j, _) = s {
                if flow.out_frame[j] != 0 {
                    return Err(flow.err(*j, "is fetched but lives inside a while loop"));
                }
            }
        }
        for &t in targets {
            if flow.home[&t] != 0 {
                return Err(flow.err(t, "is a target but lives inside a while loop"));
            }
        }
        let keep: Vec<Key> = outs.iter().map(|s| Key::Val(*s)).collect();
        let (root, slots) = self.flow_body(&flow, 0, &keep)?;
        if !self.unsupported.is_empty() || !self.refused.is_empty() {
            return Ok(None);
        }
        let arg_slots = (0..body.num_args)
            .map(|i| {
                slots
                    .get(&Key::Val(Src::Arg(i)))
                    .copied()
                    .unwrap_or(usize::MAX)
            })
            .collect::<Vec<_>>();
        // Arguments nobody reads still need a place to land.
        let mut root = root;
        let arg_slots = arg_slots
            .into_iter()
            .map(|s| {
                if s == usize::MAX {
                    root.num_slots += 1;
                    root.num_slots - 1
                } else {
                    s
                }
            })
            .collect();
        let outputs = outs.iter().map(|s| slots[&Key::Val(*s)]).collect();
        Ok(Some(FlowPlan {
            root,
            arg_slots,
            outputs,
        }))
    }

    /// Builds frame `f`'s body. `keep` are keys read after the body ran (never moved out).
    fn flow_body(
        &mut self,
        flow: &Flow<'_, 'a>,
        f: usize,
        keep: &[Key],
    ) -> Result<(FBody, HashMap<Key, Slot>), Error> {
        // Units: member nodes and child frames, ordered by a topological sort.
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        enum Unit {
            Node(usize),
            Frame(usize),
        }
        let members: Vec<usize> = flow
            .order
            .iter()
            .copied()
            .filter(|n| flow.home[n] == f)
            .collect();
        let children: Vec<usize> = (1..flow.frames.len())
            .filter(|&c| flow.frames[c].parent == f && c != f)
            .collect();
        let unit_of = |j: usize| -> Option<Unit> {
            if flow.home[&j] == f {
                Some(Unit::Node(j))
            } else if cf(&flow.node(j).op) == Cf::Exit && flow.frames[flow.home[&j]].parent == f {
                Some(Unit::Frame(flow.home[&j]))
            } else {
                None
            }
        };
        let mut deps: HashMap<Unit, Vec<Unit>> = HashMap::new();
        let mut key: HashMap<Unit, usize> = HashMap::new();
        for &m in &members {
            let mut d = Vec::new();
            for s in &flow.data[&m] {
                if let Src::Out(j, _) = s {
                    if !flow.is_back_edge(m, *j) {
                        d.extend(unit_of(*j));
                    }
                }
            }
            for &j in &flow.ctrl[&m] {
                d.extend(unit_of(j));
            }
            deps.insert(Unit::Node(m), d);
            key.insert(Unit::Node(m), flow.pos[&m]);
        }
        for &c in &children {
            let enters = &flow.frames[c].enters;
            deps.insert(
                Unit::Frame(c),
                enters.iter().map(|&e| Unit::Node(e)).collect(),
            );
            let k = enters.iter().map(|e| flow.pos[e]).min().unwrap_or(0);
            key.insert(Unit::Frame(c), k);
        }
        let mut indeg: HashMap<Unit, usize> = HashMap::new();
        let mut users: HashMap<Unit, Vec<Unit>> = HashMap::new();
        for (u, ds) in &deps {
            indeg.insert(*u, ds.len());
            for d in ds {
                users.entry(*d).or_default().push(*u);
            }
        }
        let mut ready: BinaryHeap<std::cmp::Reverse<(usize, Unit)>> = indeg
            .iter()
            .filter(|(_, &d)| d == 0)
            .map(|(u, _)| std::cmp::Reverse((key[u], *u)))
            .collect();
        let mut units = Vec::new();
        while let Some(std::cmp::Reverse((_, u))) = ready.pop() {
            units.push(u);
            for v in users.get(&u).into_iter().flatten() {
                let d = indeg.get_mut(v).expect("every unit has an in-degree");
                *d -= 1;
                if *d == 0 {
                    ready.push(std::cmp::Reverse((key[v], *v)));
                }
            }
        }
        if units.len() != deps.len() {
            let what = if f == 0 {
                "graph".to_string()
            } else {
                format!("while loop {:?}", flow.frames[f].name)
            };
            return Err(Error::invalid(
                qualify(flow.scope, &what),
                "has a cycle that is not a NextIteration -> Merge back edge (a loop's outputs \
                 feed its own inputs?)",
            ));
        }

        // Steps with keys; slots are assigned afterwards.
        struct Pending {
            node: usize,
            kind: Kind,
            inputs: Vec<Key>,
            controls: Vec<Key>,
            deref: Vec<usize>,
            /// Output keys (index, key) this step produces.
            produces: Vec<(usize, Key)>,
            token: Key,
        }
        let mut pending: Vec<Pending> = Vec::new();
        let mut child_frames: Vec<(usize, Frame, Vec<usize>)> = Vec::new();
        for u in units {
            match u {
                Unit::Node(m) => {
                    let node = flow.node(m);
                    let data = &flow.data[&m];
                    let inputs: Vec<Key> = data
                        .iter()
                        .map(|s| match s {
                            Src::Out(j, _) if flow.is_back_edge(m, *j) => Ok(Key::Carry(*j)),
                            Src::Arg(_) if f != 0 => {
                                Err(flow.err(m, "reads a fed tensor from inside a while loop"))
                            }
                            s => Ok(Key::Val(*s)),
                        })
                        .collect::<Result<_, _>>()?;
                    let controls = flow.ctrl[&m].iter().map(|&j| Key::Token(j)).collect();
                    let refs = ref_reads(flow.body, node, data);
                    let n_out = match cf(&node.op) {
                        Cf::Switch | Cf::Merge => 2,
                        Cf::Plain => usize::MAX,
                        _ => 1,
                    };
                    let (kind, deref) = match cf(&node.op) {
                        Cf::Plain => {
                            let attrs = self.filled_attrs(node);
                            match self.build(node, &attrs, data.len(), flow.scope) {
                                Ok(Some(op)) => (
                                    Kind::Op {
                                        op: ops::deref_inputs(op, refs),
                                        always_live: node.op == "ControlTrigger",
                                    },
                                    Vec::new(),
                                ),
                                Ok(None) => continue,
                                Err(source) => {
                                    return Err(Error::Node {
                                        node: qualify(flow.scope, &node.name),
                                        op: node.op.clone(),
                                        source: Box::new(source),
                                    })
                                }
                            }
                        }
                        Cf::Switch if data.len() != 2 => {
                            return Err(flow.err(m, "Switch takes 2 inputs (data, pred)"))
                        }
                        Cf::Switch => (Kind::Switch, refs),
                        Cf::Merge if data.is_empty() => {
                            return Err(flow.err(m, "Merge needs at least one input"))
                        }
                        Cf::Merge => (Kind::Merge, refs),
                        _ if data.len() != 1 => {
                            return Err(flow.err(m, format!("{} takes 1 input", node.op)))
                        }
                        _ => (Kind::Forward, refs),
                    };
                    pending.push(Pending {
                        node: m,
                        kind,
                        inputs,
                        controls,
                        deref,
                        produces: if n_out == usize::MAX {
                            Vec::new() // filled from readers below
                        } else {
                            (0..n_out).map(|i| (i, Key::Val(Src::Out(m, i)))).collect()
                        },
                        token: Key::Token(m),
                    });
                }
                Unit::Frame(c) => {
                    let info = &flow.frames[c];
                    // The child reads its Exits and NextIteration values after each iteration.
                    let mut child_keep: Vec<Key> = info
                        .exits
                        .iter()
                        .map(|&x| Key::Val(Src::Out(x, 0)))
                        .collect();
                    let nexts: Vec<usize> = flow
                        .order
                        .iter()
                        .copied()
                        .filter(|n| flow.home[n] == c && cf(&flow.node(*n).op) == Cf::Next)
                        .collect();
                    child_keep.extend(nexts.iter().map(|&x| Key::Val(Src::Out(x, 0))));
                    let (mut cbody, mut cslots) = self.flow_body(flow, c, &child_keep)?;
                    let slot = |k: Key, b: &mut FBody, m: &mut HashMap<Key, Slot>| {
                        *m.entry(k).or_insert_with(|| {
                            b.num_slots += 1;
                            b.num_slots - 1
                        })
                    };
                    let inputs = info
                        .enters
                        .iter()
                        .map(|&e| {
                            let constant = matches!(
                                flow.node(e)
                                    .attr
                                    .get("is_constant")
                                    .and_then(|a| a.value.as_ref()),
                                Some(crate::proto::attr_value::Value::B(true))
                            );
                            FrameInput {
                                slot: slot(Key::Val(Src::Out(e, 0)), &mut cbody, &mut cslots),
                                token: cslots.get(&Key::Token(e)).copied(),
                                constant,
                            }
                        })
                        .collect();
                    let exits = info
                        .exits
                        .iter()
                        .map(|&x| slot(Key::Val(Src::Out(x, 0)), &mut cbody, &mut cslots))
                        .collect();
                    let back_edges = nexts
                        .iter()
                        .map(|&x| {
                            (
                                slot(Key::Val(Src::Out(x, 0)), &mut cbody, &mut cslots),
                                slot(Key::Carry(x), &mut cbody, &mut cslots),
                            )
                        })
                        .collect();
                    let anchor = info.anchor.clone().unwrap_or_else(|| {
                        info.enters
                            .first()
                            .map(|&e| flow.node(e).name.clone())
                            .unwrap_or_default()
                    });
                    child_frames.push((
                        pending.len(),
                        Frame {
                            name: info.name.clone(),
                            anchor: qualify(flow.scope, &anchor),
                            body: cbody,
                            inputs,
                            exits,
                            exit_tokens: Vec::new(),
                            back_edges,
                        },
                        info.exits.clone(),
                    ));
                    let enters = info.enters.clone();
                    let exits = info.exits.clone();
                    pending.push(Pending {
                        node: *enters.first().expect("a frame exists because of an Enter"),
                        kind: Kind::Forward, // replaced by the frame below
                        inputs: enters.iter().map(|&e| Key::Val(Src::Out(e, 0))).collect(),
                        controls: Vec::new(),
                        deref: Vec::new(),
                        produces: exits
                            .iter()
                            .enumerate()
                            .map(|(k, &x)| (k, Key::Val(Src::Out(x, 0))))
                            .collect(),
                        token: Key::Token(usize::MAX),
                    });
                }
            }
        }
        // Which keys are read in this body (or kept, or written into a child frame's inputs).
        let mut read: HashMap<Key, ()> = HashMap::new();
        for p in &pending {
            for k in p.inputs.iter().chain(&p.controls) {
                read.insert(*k, ());
            }
        }
        for k in keep {
            read.insert(*k, ());
        }
        // Slots: frame inputs of this body keep the keys the parent will fill.
        let mut slots: HashMap<Key, Slot> = HashMap::new();
        let mut next = 0usize;
        let mut slot_for = |k: Key, slots: &mut HashMap<Key, Slot>| {
            *slots.entry(k).or_insert_with(|| {
                next += 1;
                next - 1
            })
        };
        let mut steps: Vec<FStep> = Vec::new();
        let mut frame_iter = child_frames.into_iter().peekable();
        let mut last_use: HashMap<Slot, (usize, usize)> = HashMap::new();
        for (pi, p) in pending.into_iter().enumerate() {
            let node = flow.node(p.node);
            let inputs: Vec<(Slot, bool)> = p
                .inputs
                .iter()
                .enumerate()
                .map(|(pos, k)| {
                    let s = slot_for(*k, &mut slots);
                    last_use.insert(s, (steps.len(), pos));
                    (s, false)
                })
                .collect();
            let controls = p
                .controls
                .iter()
                .map(|k| slot_for(*k, &mut slots))
                .collect();
            let mut outputs: Vec<(usize, Slot)> = Vec::new();
            let mut kind = p.kind;
            let mut op_type = node.op.clone();
            let mut step_node = node.name.clone();
            let mut token = None;
            if matches!(frame_iter.peek(), Some((i, _, _)) if *i == pi) {
                let (_, mut frame, exits) = frame_iter.next().expect("peeked");
                for (k, &x) in exits.iter().enumerate() {
                    let v = Key::Val(Src::Out(x, 0));
                    let t = Key::Token(x);
                    if read.contains_key(&t) {
                        frame.exit_tokens.push((k, slot_for(t, &mut slots)));
                    }
                    if read.contains_key(&v) || read.contains_key(&t) {
                        outputs.push((k, slot_for(v, &mut slots)));
                    }
                }
                op_type = "while_loop".into();
                step_node = frame.name.clone();
                kind = Kind::Frame(Box::new(frame));
            } else {
                let produced: Vec<(usize, Key)> = if p.produces.is_empty() {
                    read.keys()
                        .filter_map(|k| match k {
                            Key::Val(Src::Out(j, i)) if *j == p.node => {
                                Some((*i, Key::Val(Src::Out(*j, *i))))
                            }
                            _ => None,
                        })
                        .collect()
                } else {
                    p.produces
                };
                for (i, k) in produced {
                    if read.contains_key(&k) {
                        outputs.push((i, slot_for(k, &mut slots)));
                    }
                }
                if read.contains_key(&p.token) {
                    token = Some(slot_for(p.token, &mut slots));
                }
            }
            outputs.sort_unstable();
            steps.push(FStep {
                node: step_node,
                op_type,
                kind,
                inputs,
                controls,
                deref: p.deref,
                outputs,
                token,
            });
        }
        for k in keep {
            let s = slot_for(*k, &mut slots);
            last_use.remove(&s);
        }
        for (_, (si, pos)) in last_use {
            steps[si].inputs[pos].1 = true;
        }
        Ok((
            FBody {
                steps,
                num_slots: next,
            },
            slots,
        ))
    }
}

/// Needed nodes in a topological order with `NextIteration -> Merge` edges cut.
fn order_cut(flow: &Flow<'_, '_>, needed: &[bool], scope: &str) -> Result<Vec<usize>, Error> {
    let deps = |ni: usize| -> Vec<usize> {
        let mut d: Vec<usize> = flow.data[&ni]
            .iter()
            .filter_map(|s| match s {
                Src::Out(j, _) if !flow.is_back_edge(ni, *j) => Some(*j),
                _ => None,
            })
            .collect();
        d.extend(flow.ctrl[&ni].iter().copied());
        d
    };
    super::topo_order(needed, deps).map_err(|stuck| {
        let stuck: Vec<&str> = stuck.iter().map(|&i| flow.node(i).name.as_str()).collect();
        Error::invalid(
            if scope.is_empty() { "graph" } else { scope },
            format!(
                "graph has a cycle that is not a NextIteration -> Merge edge, through {stuck:?}"
            ),
        )
    })
}

/// Frames of every needed node (see the module docs).
fn assign_frames(flow: &mut Flow<'_, '_>, max_depth: usize) -> Result<(), Error> {
    let order = flow.order.clone();
    for &ni in &order {
        let mut in_frames: Vec<(usize, usize)> = Vec::new(); // (frame, source node)
        for s in &flow.data[&ni] {
            match s {
                Src::Out(j, _) if flow.is_back_edge(ni, *j) => {}
                Src::Out(j, _) => in_frames.push((flow.out_frame[j], *j)),
                Src::Arg(_) => in_frames.push((0, usize::MAX)),
            }
        }
        for &j in &flow.ctrl[&ni] {
            in_frames.push((flow.out_frame[&j], j));
        }
        let f = match in_frames.first() {
            None => 0,
            Some(&(f0, _)) => {
                if let Some(&(f1, j)) = in_frames.iter().find(|(f, _)| *f != f0) {
                    let name = |f: usize| {
                        if f == 0 {
                            "the root frame".to_string()
                        } else {
                            format!("frame {:?}", flow.frames[f].name)
                        }
                    };
                    let other = if j == usize::MAX {
                        "a fed tensor".to_string()
                    } else {
                        format!("{:?}", flow.node(j).name)
                    };
                    return Err(flow.err(
                        ni,
                        format!(
                            "has inputs from different frames: {} and {} ({other})",
                            name(f0),
                            name(f1)
                        ),
                    ));
                }
                f0
            }
        };
        let (home, out) = match cf(&flow.node(ni).op) {
            Cf::Enter => {
                let fname = match flow
                    .node(ni)
                    .attr
                    .get("frame_name")
                    .and_then(|a| a.value.as_ref())
                {
                    Some(crate::proto::attr_value::Value::S(s)) => {
                        String::from_utf8_lossy(s).into_owned()
                    }
                    _ => return Err(flow.err(ni, "Enter without a frame_name")),
                };
                let child = match (1..flow.frames.len())
                    .find(|&c| flow.frames[c].parent == f && flow.frames[c].name == fname)
                {
                    Some(c) => c,
                    None => {
                        let depth = flow.frames[f].depth + 1;
                        if depth > max_depth {
                            return Err(flow.err(
                                ni,
                                format!(
                                    "while loops nested more than {max_depth} deep \
                                     (Limits::max_call_depth)"
                                ),
                            ));
                        }
                        flow.frames.push(FrameInfo {
                            name: fname,
                            parent: f,
                            depth,
                            anchor: None,
                            enters: Vec::new(),
                            exits: Vec::new(),
                        });
                        flow.frames.len() - 1
                    }
                };
                flow.frames[child].enters.push(ni);
                (f, child)
            }
            Cf::Exit => {
                if f == 0 {
                    return Err(flow.err(ni, "Exit outside of a while loop"));
                }
                flow.frames[f].exits.push(ni);
                (f, flow.frames[f].parent)
            }
            _ => {
                if flow.node(ni).op == "LoopCond" && f != 0 && flow.frames[f].anchor.is_none() {
                    flow.frames[f].anchor = Some(flow.node(ni).name.clone());
                }
                (f, f)
            }
        };
        flow.home.insert(ni, home);
        flow.out_frame.insert(ni, out);
    }
    // A back edge must stay inside its frame.
    for &ni in &order {
        for s in &flow.data[&ni] {
            if let Src::Out(j, _) = s {
                if flow.is_back_edge(ni, *j) && flow.out_frame[j] != flow.out_frame[&ni] {
                    return Err(flow.err(ni, "NextIteration input from another frame"));
                }
            }
        }
    }
    Ok(())
}

//! The frame executor: runs graphs with TF1 dataflow control flow (`Switch`, `Merge`, `Enter`,
//! `Exit`, `NextIteration`, `LoopCond`, their `Ref` twins, `ControlTrigger`) with TF's
//! executor semantics (core/common_runtime/{executor,propagator_state}.cc).
//!
//! Design (2026-12): instead of TF's tagged-token scheduler, each while-loop *frame* found at
//! compile time (`compile/frames.rs`) becomes one structured step of its parent body, holding
//! the frame's own body (a DAG once `NextIteration -> Merge` back edges are cut). Running the
//! step runs the body once per iteration, in order, which gives the results of TF's executor
//! with `parallel_iterations = 1` (the value of `parallel_iterations` never changes results).
//! Within a body, values are live, dead or absent:
//! - an op with a dead data or control input does not run and all its outputs are dead
//!   (`ControlTrigger` stays live, as in TF);
//! - `Switch(data, pred)` sends `data` to output `pred as usize` and kills the other output;
//! - `Merge` forwards its first live input and its index, is dead when no input is live, and
//!   ignores control-input deadness (TF: only data inputs count for a Merge);
//! - an `Enter` value reaches iteration 0 only, or every iteration when `is_constant`;
//! - a `Merge` input from a `NextIteration` is the value of the previous iteration (absent in
//!   iteration 0); a new iteration starts only if some `NextIteration` produced a live value;
//! - an `Exit` output is the value it had when it was live, or dead if it never was (the
//!   whole loop ran dead, e.g. on the untaken side of a `cond`).
//!
//! Loops respect [`crate::ops::Limits::max_loop_iterations`] and the call's time and memory caps.

use crate::error::Error;
use crate::ops::{EvalCtx, Op, OpError};
use crate::tensor::Tensor;

use super::Slot;

/// A value slot's content while a body runs.
#[derive(Debug, Clone, Default)]
pub(crate) enum Val {
    /// Not produced in this iteration (a non-constant `Enter` after iteration 0, a back edge
    /// in iteration 0).
    #[default]
    Absent,
    /// Produced dead (on the untaken side of a `Switch`).
    Dead,
    /// A control token: the node ran live (it has no value on this edge).
    Token,
    /// A live value.
    Live(Tensor),
}

impl Val {
    fn is_dead(&self) -> bool {
        matches!(self, Val::Dead)
    }
    fn is_live(&self) -> bool {
        matches!(self, Val::Live(_) | Val::Token)
    }
}

/// What a step does.
#[derive(Debug)]
pub(crate) enum Kind {
    /// A kernel; `always_live` for `ControlTrigger`.
    Op { op: Box<dyn Op>, always_live: bool },
    /// `Switch` / `RefSwitch`: inputs `[data, pred]`, outputs `[false branch, true branch]`.
    Switch,
    /// `Merge` / `RefMerge`: outputs `[value, value_index]`.
    Merge,
    /// `Enter`, `Exit`, `NextIteration` (and `Ref` twins): forward input 0.
    Forward,
    /// A child while-loop frame.
    Frame(Box<Frame>),
}

/// One step of a body.
#[derive(Debug)]
pub(crate) struct FStep {
    pub node: String,
    pub op_type: String,
    pub kind: Kind,
    /// Data input slots, and whether this is the slot's last read in the body.
    pub inputs: Vec<(Slot, bool)>,
    /// Control-token slots this step waits for.
    pub controls: Vec<Slot>,
    /// Data inputs that are TF1 ref edges into non-ref inputs (read before use).
    pub deref: Vec<usize>,
    /// (output index, slot) for every output somebody reads.
    pub outputs: Vec<(usize, Slot)>,
    /// Where to record whether this step ran live, if a control edge reads it.
    pub token: Option<Slot>,
}

/// A frame's (or the root graph's) steps, in an order that respects every edge but back edges.
#[derive(Debug, Default)]
pub(crate) struct Body {
    pub steps: Vec<FStep>,
    pub num_slots: usize,
}

/// A value entering a child frame.
#[derive(Debug)]
pub(crate) struct FrameInput {
    /// Slot in the child body.
    pub slot: Slot,
    /// The `Enter`'s control-token slot in the child body, if read.
    pub token: Option<Slot>,
    /// `is_constant`: the value is seen by every iteration, not just the first.
    pub constant: bool,
}

/// A while-loop frame: the inputs of its `Enter`s come from the parent step's inputs, its
/// `Exit`s are the parent step's outputs.
#[derive(Debug)]
pub(crate) struct Frame {
    /// TF's `frame_name`.
    pub name: String,
    /// For errors: the frame's `LoopCond` (or first `Enter`) node.
    pub anchor: String,
    pub body: Body,
    /// One per parent-step input, in order.
    pub inputs: Vec<FrameInput>,
    /// Child-body slots of the `Exit`s; the parent step's output `k` is `exits[k]`.
    pub exits: Vec<Slot>,
    /// Parent-body slots of the `Exit`s' control tokens (output k's token). An exit whose
    /// token is read is also stored as an output of the step.
    pub exit_tokens: Vec<(usize, Slot)>,
    /// (slot written by a `NextIteration`, slot its `Merge` reads in the next iteration).
    pub back_edges: Vec<(Slot, Slot)>,
}

/// A compiled graph with TF1 control flow.
#[derive(Debug)]
pub(crate) struct FlowPlan {
    pub root: Body,
    pub arg_slots: Vec<Slot>,
    pub outputs: Vec<Slot>,
}

impl FlowPlan {
    /// Number of steps over all frames.
    pub fn len(&self) -> usize {
        fn count(b: &Body) -> usize {
            b.steps
                .iter()
                .map(|s| match &s.kind {
                    Kind::Frame(f) => 1 + count(&f.body),
                    _ => 1,
                })
                .sum()
        }
        count(&self.root)
    }

    pub fn run(
        &self,
        cx: &mut EvalCtx<'_>,
        args: Vec<Tensor>,
        plan: &str,
    ) -> Result<Vec<Tensor>, Error> {
        if args.len() != self.arg_slots.len() {
            return Err(Error::invalid(
                plan,
                format!(
                    "plan takes {} arguments, got {}",
                    self.arg_slots.len(),
                    args.len()
                ),
            ));
        }
        let mut vals = vec![Val::Absent; self.root.num_slots];
        for (&s, t) in self.arg_slots.iter().zip(args) {
            vals[s] = Val::Live(t);
        }
        let mut exec = Exec { cx, plan };
        exec.body(&self.root, &mut vals)?;
        self.outputs
            .iter()
            .map(|&s| match &vals[s] {
                Val::Live(t) => Ok(t.clone()),
                Val::Dead => Err(Error::invalid(
                    plan,
                    "a fetched tensor is dead (it is on the untaken side of a Switch)",
                )),
                _ => Err(Error::invalid(plan, format!("output slot {s} empty"))),
            })
            .collect()
    }
}

/// Whether output `k` of a step (stored in `outputs`' slot) is live, if it was stored.
fn vals_of(outputs: &[(usize, Slot)], k: usize, vals: &[Val]) -> Option<bool> {
    outputs
        .iter()
        .find(|(i, _)| *i == k)
        .map(|&(_, s)| vals[s].is_live())
}

struct Exec<'c, 'a> {
    cx: &'c mut EvalCtx<'a>,
    plan: &'c str,
}

impl Exec<'_, '_> {
    fn fail(&self, step: &FStep, source: OpError) -> Error {
        Error::Node {
            node: if self.plan.is_empty() {
                step.node.clone()
            } else {
                format!("{}/{}", self.plan, step.node)
            },
            op: step.op_type.clone(),
            source: Box::new(source),
        }
    }

    /// Runs `body` once over `vals`; every live value it stored is released from the call's
    /// live set when it returns (values that leave the body are counted again by the reader).
    fn body(&mut self, body: &Body, vals: &mut [Val]) -> Result<(), Error> {
        let base = self.cx.call.live_bytes;
        let r = self.steps(body, vals);
        self.cx.call.live_bytes = base;
        r
    }

    fn steps(&mut self, body: &Body, vals: &mut [Val]) -> Result<(), Error> {
        for step in &body.steps {
            self.cx.call.check_time().map_err(|e| self.fail(step, e))?;
            let control_dead = step.controls.iter().any(|&c| vals[c].is_dead());
            if let Some(&c) = step
                .controls
                .iter()
                .find(|&&c| matches!(vals[c], Val::Absent))
            {
                return Err(self.fail(
                    step,
                    OpError::invalid(format!(
                        "control input slot {c} was not produced in this iteration (a \
                         non-constant Enter read after the first iteration?)"
                    )),
                ));
            }
            let mut inputs: Vec<Val> = Vec::with_capacity(step.inputs.len());
            for &(slot, last) in &step.inputs {
                inputs.push(if last {
                    std::mem::take(&mut vals[slot])
                } else {
                    vals[slot].clone()
                });
            }
            for &p in &step.deref {
                if let Some(Val::Live(t)) = inputs.get_mut(p) {
                    let v = std::mem::replace(t, Tensor::scalar(false));
                    *t = crate::ops::deref_ref(v).map_err(|e| self.fail(step, e))?;
                }
            }
            let (outs, live) = self.eval(step, inputs, control_dead)?;
            if let Some(t) = step.token {
                vals[t] = if live { Val::Token } else { Val::Dead };
            }
            let n = outs.len();
            let mut outs: Vec<Option<Val>> = outs.into_iter().map(Some).collect();
            for &(idx, slot) in &step.outputs {
                let v = match outs.get_mut(idx).and_then(Option::take) {
                    Some(v) => v,
                    None if !live => Val::Dead,
                    None => {
                        return Err(self.fail(
                            step,
                            OpError::invalid(format!(
                                "output {idx} requested but the op produced {n}"
                            )),
                        ))
                    }
                };
                if let Val::Live(t) = &v {
                    let bytes = t.nbytes();
                    self.cx
                        .call
                        .check_live(bytes as u128)
                        .map_err(|e| self.fail(step, e))?;
                    self.cx.call.live_bytes += bytes;
                }
                vals[slot] = v;
            }
            if let Kind::Frame(f) = &step.kind {
                for &(k, slot) in &f.exit_tokens {
                    vals[slot] = match &vals_of(&step.outputs, k, vals) {
                        Some(true) => Val::Token,
                        _ => Val::Dead,
                    };
                }
            }
        }
        Ok(())
    }

    /// Evaluates one step: its outputs and whether it ran live (for its control token).
    fn eval(
        &mut self,
        step: &FStep,
        inputs: Vec<Val>,
        control_dead: bool,
    ) -> Result<(Vec<Val>, bool), Error> {
        let data_dead = inputs.iter().any(Val::is_dead);
        match &step.kind {
            Kind::Frame(f) => Ok((self.frame(f, inputs)?, true)),
            Kind::Merge => {
                let first = inputs.into_iter().enumerate().find_map(|(i, v)| match v {
                    Val::Live(t) => Some((i, t)),
                    _ => None,
                });
                Ok(match first {
                    Some((i, t)) => (
                        vec![Val::Live(t), Val::Live(Tensor::scalar(i as i32))],
                        true,
                    ),
                    None => (vec![Val::Dead, Val::Dead], false),
                })
            }
            Kind::Op {
                always_live: true, ..
            } if data_dead || control_dead => Ok((Vec::new(), true)),
            _ if data_dead || control_dead => Ok((Vec::new(), false)),
            kind => {
                let mut ts = Vec::with_capacity(inputs.len());
                for (i, v) in inputs.into_iter().enumerate() {
                    match v {
                        Val::Live(t) => ts.push(t),
                        _ => {
                            return Err(self.fail(
                                step,
                                OpError::invalid(format!(
                                    "input {i} was not produced in this iteration (a \
                                     non-constant Enter read after the first iteration?)"
                                )),
                            ))
                        }
                    }
                }
                let outs = match kind {
                    Kind::Op { op, .. } => {
                        let outs = op
                            .eval(self.cx, ts.into())
                            .map_err(|e| self.fail(step, e))?;
                        outs.into_iter().map(Val::Live).collect()
                    }
                    Kind::Forward => ts.into_iter().take(1).map(Val::Live).collect(),
                    Kind::Switch => {
                        let [data, pred]: [Tensor; 2] = ts.try_into().map_err(|v: Vec<_>| {
                            self.fail(
                                step,
                                OpError::Arity {
                                    expected: 2,
                                    got: v.len(),
                                },
                            )
                        })?;
                        let p = pred.scalar_value::<bool>().map_err(|e| {
                            self.fail(
                                step,
                                OpError::invalid(format!("pred must be a scalar bool: {e}")),
                            )
                        })?;
                        if p {
                            vec![Val::Dead, Val::Live(data)]
                        } else {
                            vec![Val::Live(data), Val::Dead]
                        }
                    }
                    Kind::Merge | Kind::Frame(_) => unreachable!("handled above"),
                };
                Ok((outs, true))
            }
        }
    }

    /// Runs a while-loop frame to completion; returns one value per `Exit`. A dead `Enter`
    /// value is dead in the frame (a `Merge` fed by it is dead, as TF's `is_enter` rule says).
    fn frame(&mut self, f: &Frame, enters: Vec<Val>) -> Result<Vec<Val>, Error> {
        let mut exits: Vec<Option<Tensor>> = vec![None; f.exits.len()];
        let mut carry: Vec<Val> = vec![Val::Absent; f.back_edges.len()];
        let cap = self.cx.limits().max_loop_iterations;
        let mut iter: u64 = 0;
        loop {
            if iter >= cap {
                return Err(Error::Node {
                    node: f.anchor.clone(),
                    op: "LoopCond".into(),
                    source: Box::new(OpError::Limit(format!(
                        "while loop {:?} ran more than {cap} iterations \
                         (Limits::max_loop_iterations)",
                        f.name
                    ))),
                });
            }
            let mut vals = vec![Val::Absent; f.body.num_slots];
            for (inp, t) in f.inputs.iter().zip(&enters) {
                if iter == 0 || inp.constant {
                    vals[inp.slot] = t.clone();
                    if let Some(tok) = inp.token {
                        vals[tok] = if t.is_dead() { Val::Dead } else { Val::Token };
                    }
                }
            }
            for (&(_, read), c) in f.back_edges.iter().zip(carry.iter_mut()) {
                vals[read] = std::mem::take(c);
            }
            self.body(&f.body, &mut vals)?;
            for (k, &s) in f.exits.iter().enumerate() {
                if let Val::Live(t) = &vals[s] {
                    exits[k] = Some(t.clone());
                }
            }
            let mut again = false;
            for (&(next, _), c) in f.back_edges.iter().zip(carry.iter_mut()) {
                *c = std::mem::take(&mut vals[next]);
                again |= c.is_live();
            }
            if !again {
                break;
            }
            iter += 1;
        }
        Ok(exits
            .into_iter()
            .map(|e| e.map_or(Val::Dead, Val::Live))
            .collect())
    }
}

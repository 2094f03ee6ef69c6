//! TF1 graph ops: reference variables (`VariableV2`, `Assign`, ...), `TensorArrayV3`, and the
//! small ops of TF1 dataflow control flow that are plain kernels (`LoopCond`,
//! `ControlTrigger`). TF reference: core/kernels/{variable_ops,assign_op,dense_update_ops,
//! tensor_array_ops,control_flow_ops}.cc.
//!
//! **Ref tensors.** A TF1 `Ref(T)` edge is a mutable alias of a variable's buffer; an op
//! taking a plain `T` from a ref edge reads the current value (TF dereferences at the edge).
//! Here a ref-producing op outputs a scalar `resource` tensor holding a [`RefVar`], and the
//! planner wraps every consumer that takes a non-ref input from a ref-producing op so that the
//! input is read first ([`deref_inputs`]); [`REF_PRODUCERS`] and [`takes_ref`] mirror the
//! `is_ref` flags of TF's OpDefs for the ops tfhub implements. Values read this way are
//! snapshots (copy-on-write buffers), like TF's `Identity` of a ref.
//!
//! The `Switch`/`Merge`/`Enter`/`Exit`/`NextIteration` family is not here: those move and kill
//! values between frames and iterations, which is executor semantics (`graph::dataflow`).

mod ref_var;
mod tensor_array;

use super::{BuildCtx, EvalCtx, Op, OpError, Registry};
use crate::ops::Tensors;
use crate::tensor::{Data, Tensor};

pub(crate) use ref_var::RefVar;

pub(crate) fn register(r: &mut Registry) {
    use ref_var::{Assign, Kind};
    r.add("Assign", |cx| Assign::build(cx, Kind::Set));
    r.add("AssignAdd", |cx| Assign::build(cx, Kind::Add));
    r.add("AssignSub", |cx| Assign::build(cx, Kind::Sub));
    r.add("ControlTrigger", ControlTrigger::build);
    r.add("IsVariableInitialized", ref_var::IsInitialized::build);
    r.add("LoopCond", LoopCond::build);
    r.add("RefIdentity", LoopCond::build);
    r.add("TensorArrayCloseV3", tensor_array::Close::build);
    r.add("TensorArrayConcatV3", tensor_array::Concat::build);
    r.add("TensorArrayGatherV3", tensor_array::Gather::build);
    r.add("TensorArrayReadV3", tensor_array::Read::build);
    r.add("TensorArrayScatterV3", tensor_array::Scatter::build);
    r.add("TensorArraySizeV3", tensor_array::Size::build);
    r.add("TensorArraySplitV3", tensor_array::Split::build);
    r.add("TensorArrayV3", tensor_array::Create::build);
    r.add("TensorArrayWriteV3", tensor_array::Write::build);
    r.add("Variable", ref_var::VariableV2::build);
    r.add("VariableV2", ref_var::VariableV2::build);
}

/// Ops whose outputs are TF1 ref tensors (every output, for the ops listed).
pub(crate) const REF_PRODUCERS: &[&str] = &[
    "Assign",
    "AssignAdd",
    "AssignSub",
    "RefEnter",
    "RefExit",
    "RefIdentity",
    "RefMerge",
    "RefNextIteration",
    "RefSwitch",
    "Variable",
    "VariableV2",
];

/// True if input `pos` of op `op` is declared `Ref(T)` (it takes the ref itself, no read).
pub(crate) fn takes_ref(op: &str, pos: usize) -> bool {
    match op {
        "Assign"
        | "AssignAdd"
        | "AssignSub"
        | "IsVariableInitialized"
        | "RefEnter"
        | "RefExit"
        | "RefIdentity"
        | "RefNextIteration"
        | "RefSwitch" => pos == 0,
        "RefMerge" => true,
        // TF1 table and TensorArray handles are `Ref(string)` too; tfhub's handles of those
        // are resource tensors that are never read, so any position of their ops keeps them.
        op => op.starts_with("LookupTable") || op.starts_with("InitializeTable"),
    }
}

/// The value behind a ref tensor (a [`RefVar`] handle); any other tensor as is.
///
/// # Errors
/// The variable is read before it was assigned ("uninitialized value", as TF says).
pub(crate) fn deref(t: Tensor) -> Result<Tensor, OpError> {
    match t.data() {
        Data::Resource(b) if b.len() == 1 && b[0].value.is::<RefVar>() => ref_var::read(&b[0]),
        _ => Ok(t),
    }
}

/// Wraps `op` so that the inputs at `positions` (ref edges into non-ref inputs) are read first.
pub(crate) fn deref_inputs(op: Box<dyn Op>, positions: Vec<usize>) -> Box<dyn Op> {
    if positions.is_empty() {
        return op;
    }
    Box::new(DerefInputs {
        inner: op,
        positions,
    })
}

#[derive(Debug)]
struct DerefInputs {
    inner: Box<dyn Op>,
    positions: Vec<usize>,
}

impl Op for DerefInputs {
    fn eval(&self, cx: &mut EvalCtx<'_>, mut inputs: Tensors) -> Result<Tensors, OpError> {
        for &p in &self.positions {
            if let Some(slot) = inputs.get_mut(p) {
                let t = std::mem::replace(slot, Tensor::scalar(false));
                *slot = deref(t)?;
            }
        }
        self.inner.eval(cx, inputs)
    }
    // Reads a variable: never folded.
    fn is_stateful(&self) -> bool {
        true
    }
}

/// `LoopCond` (forwards its bool input; the executor reads it through `Switch`) and
/// `RefIdentity` (forwards a ref).
#[derive(Debug)]
struct LoopCond;

impl LoopCond {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(1)?;
        Ok(Box::new(LoopCond))
    }
}

impl Op for LoopCond {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        Ok(inputs)
    }
}

/// `ControlTrigger`: no outputs; only orders control edges (the executor keeps it live even
/// when its inputs are dead, as TF does).
#[derive(Debug)]
struct ControlTrigger;

impl ControlTrigger {
    fn build(_: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(ControlTrigger))
    }
}

impl Op for ControlTrigger {
    fn eval(&self, _: &mut EvalCtx<'_>, _: Tensors) -> Result<Tensors, OpError> {
        Ok(Tensors::new())
    }
    fn is_stateful(&self) -> bool {
        true
    }
}

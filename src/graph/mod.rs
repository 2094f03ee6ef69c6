//! Plans: a graph or function compiled once into an ordered list of built ops.
//!
//! Owns pruning (only what the requested outputs and targets need), topological order
//! (data and control edges), constant folding (stateless ops whose inputs are all constant
//! run once at load), and lifetimes (each value is dropped right after its last use, so a call
//! holds only its live set). Unsupported ops are collected across the whole reachable program
//! and reported together. Functions (`FunctionDef`s) are compiled lazily on first reference
//! and memoised, so a function that calls itself compiles once and recursion is bounded at run
//! time by the call-depth cap.
//!
//! Does not know op semantics (that is `ops`), nor how signatures map to feeds (that is `api`).

mod compile;
mod dataflow;
pub(crate) mod freeze;
mod fuse;
mod fuse_attention;
mod fuse_dense;
mod fuse_gelu;
mod fuse_layernorm;
mod hop;
pub mod profile;
mod slim;

pub use compile::{Compiler, Feed, Fetch};

use std::sync::{Arc, OnceLock};

use smallvec::SmallVec;

use crate::error::Error;
use crate::ops::{Callable, EvalCtx, Op, OpError, Tensors};
use crate::tensor::Tensor;

/// Index of a value slot in a plan.
pub(crate) type Slot = usize;

#[derive(Debug)]
pub(crate) struct Step {
    pub node: String,
    pub op_type: String,
    pub op: Box<dyn Op>,
    /// Input slots and whether this is the slot's last use (then it is moved, not cloned).
    /// Inline (as `outputs`) so the executor reads a step without chasing pointers.
    pub inputs: SmallVec<[(Slot, bool); 4]>,
    /// (output index, slot) for every output somebody reads.
    pub outputs: SmallVec<[(usize, Slot); 2]>,
}

/// A compiled graph or function body.
#[derive(Debug)]
pub struct Plan {
    pub(crate) name: String,
    pub(crate) steps: Vec<Step>,
    pub(crate) num_slots: usize,
    /// Slots filled by the caller (feeds or function arguments), in order.
    pub(crate) arg_slots: Vec<Slot>,
    /// Slots returned, in order (a slot may appear twice).
    pub(crate) outputs: Vec<Slot>,
    /// Constant values known at plan time (folded): the value of slot `i` for every
    /// `i < consts.len()` (constants take the lowest slots). Ops get a clone (a reference
    /// count) at each use; nothing is copied per call.
    pub(crate) consts: Vec<Tensor>,
    /// Outputs that are TF1 ref tensors: the caller gets the variable's value, as a
    /// `Session.run` fetch of a ref does.
    pub(crate) deref_outputs: Vec<usize>,
    /// A graph with TF1 dataflow control flow runs on the frame executor instead of `steps`.
    pub(crate) flow: Option<Box<dataflow::FlowPlan>>,
    /// Every library function compiled with this plan, callers before callees. Declared after
    /// `steps`, so it is dropped after them: each function is then released by this list, not
    /// by its caller's plan, and a 100,000-deep call chain drops without recursing.
    pub(crate) library: Library,
    /// Whether top-level calls hop onto the pool (`hop.rs`).
    pub(crate) hop: hop::Chooser,
}

/// The functions a plan keeps alive (see [`Plan::library`]); `Debug` prints only their count,
/// so a plan's debug text shows each function body once, where it is called.
#[derive(Default)]
pub(crate) struct Library(pub(crate) Vec<FunctionRef>);

impl std::fmt::Debug for Library {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} functions", self.0.len())
    }
}

impl Plan {
    /// Number of steps (ops evaluated per call).
    pub fn len(&self) -> usize {
        match &self.flow {
            Some(f) => f.len(),
            None => self.steps.len(),
        }
    }

    /// True if the plan evaluates nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs the plan on `args` (one per feed or function argument, in order).
    ///
    /// Accounting: every value an op stores adds its bytes to the call's live set
    /// (`cx.call.live_bytes`) and a value's last use removes them; crossing
    /// [`crate::ops::Limits::max_live_bytes`] or the wall-time cap fails the call with a typed
    /// error naming the node. Arguments are counted by whoever made them, and everything this
    /// plan held is released when it returns (its outputs are counted again by the caller).
    ///
    /// Buffers: while the plan runs, the model's buffer pool is this thread's current pool,
    /// so large intermediates freed by their last use (or at the end) are reused by later
    /// allocations and calls (`tensor::pool`); outputs are never recycled while referenced.
    ///
    /// Threads: a top-level call runs on a worker of the current rayon pool, with the other
    /// workers kept looking for work while it runs (`tfhub_kernels::threads::on_worker`), so
    /// the parallel ops inside start without waking a sleeping thread each time; except
    /// when this plan's calls measured faster on the calling thread (short calls of serial
    /// ops, where the hop's two thread wake-ups are the cost: `hop.rs`).
    pub fn run(&self, cx: &mut EvalCtx<'_>, args: Vec<Tensor>) -> Result<Vec<Tensor>, Error> {
        let args = Tensors::from_vec(args);
        // One hop onto rayon's pool per call, not one cold entry per parallel op, unless
        // running in place measured faster for this plan (`hop.rs`).
        self.hop
            .run(|hop| {
                if hop {
                    tfhub_kernels::threads::on_worker(|| self.run_here(cx, args))
                } else {
                    self.run_here(cx, args)
                }
            })
            .map(Tensors::into_vec)
    }

    /// [`Plan::run`] on the calling thread.
    fn run_here(&self, cx: &mut EvalCtx<'_>, args: Tensors) -> Result<Tensors, Error> {
        let _pool = crate::tensor::pool::enter(cx.session.pool());
        let base = cx.call.live_bytes;
        let r = match &self.flow {
            Some(f) => f
                .run(cx, args.into_vec(), &self.name)
                .map(Tensors::from_vec),
            None => self.run_counted(cx, args),
        };
        cx.call.live_bytes = base;
        let mut outs = r?;
        for &i in &self.deref_outputs {
            if let Some(t) = outs.get_mut(i) {
                let v = std::mem::replace(t, Tensor::scalar(false));
                *t = crate::ops::deref_ref(v)
                    .map_err(|e| Error::invalid(&self.name, format!("fetch {i}: {e}")))?;
            }
        }
        Ok(outs)
    }

    fn run_counted(&self, cx: &mut EvalCtx<'_>, args: Tensors) -> Result<Tensors, Error> {
        if args.len() != self.arg_slots.len() {
            return Err(Error::invalid(
                &self.name,
                format!(
                    "plan takes {} arguments, got {}",
                    self.arg_slots.len(),
                    args.len()
                ),
            ));
        }
        if self.steps.is_empty() {
            // A body that computes nothing (the passing branch of an assert guard, once its
            // identities are forwarded): outputs straight from the arguments and constants.
            return self
                .outputs
                .iter()
                .map(|&slot| self.trivial_output(slot, &args))
                .collect();
        }
        // Slots below `nconst` are the plan's constants; `values[slot - nconst]` holds the
        // others.
        let nconst = self.consts.len();
        let mut values: Vec<Option<Tensor>> = Vec::new();
        values.resize_with(self.num_slots - nconst, || None);
        // Bytes each slot adds to the live set (0 for arguments and mapped data).
        let mut held: Vec<usize> = vec![0; self.num_slots - nconst];
        for (&slot, t) in self.arg_slots.iter().zip(args) {
            values[slot - nconst] = Some(t);
        }
        for step in &self.steps {
            let fail = |source: OpError| Error::Node {
                node: self.qualified(&step.node),
                op: step.op_type.clone(),
                source: Box::new(source),
            };
            cx.call.check_time().map_err(fail)?;
            let mut inputs = Tensors::new();
            let mut freed = 0usize;
            for &(slot, last) in &step.inputs {
                let v = match slot.checked_sub(nconst) {
                    None => Some(self.consts[slot].clone()),
                    Some(d) if last => {
                        freed += std::mem::take(&mut held[d]);
                        values[d].take()
                    }
                    Some(d) => values[d].clone(),
                };
                inputs.push(v.ok_or_else(|| {
                    fail(OpError::invalid(format!("input slot {slot} has no value")))
                })?);
            }
            let mut result = if cx.session.profile {
                let key = match step.op.profile_detail(&inputs) {
                    Some(d) => format!("{} [{d}]", step.op_type),
                    None => step.op_type.clone(),
                };
                let t = std::time::Instant::now();
                let outs = step.op.eval(cx, inputs);
                profile::record(&key, t.elapsed());
                outs
            } else {
                step.op.eval(cx, inputs)
            };
            // Read through a borrow: moving the inline outputs out of the `Result` (and
            // into an iterator) copied them twice per step.
            let outs = match &mut result {
                Ok(outs) => outs,
                Err(e) => return Err(fail(std::mem::replace(e, OpError::invalid(String::new())))),
            };
            // Inputs used for the last time were alive until the op returned.
            cx.call.live_bytes = cx.call.live_bytes.saturating_sub(freed);
            let n = outs.len();
            // `step.outputs` is sorted by output index, each index once: one pass.
            let mut outs = outs.drain(..).enumerate();
            for &(idx, slot) in &step.outputs {
                let t = outs
                    .find(|(i, _)| *i == idx)
                    .map(|(_, t)| t)
                    .ok_or_else(|| {
                        fail(OpError::invalid(format!(
                            "output {idx} requested but the op produced {n}"
                        )))
                    })?;
                let bytes = counted_bytes(&t);
                cx.call.check_live(bytes as u128).map_err(fail)?;
                cx.call.live_bytes += bytes;
                // Step outputs never land in constant slots (the compiler gives those only
                // to values no step produces).
                let d = slot - nconst;
                held[d] = bytes;
                values[d] = Some(t);
            }
        }
        self.outputs
            .iter()
            .map(|&slot| match slot.checked_sub(nconst) {
                None => Ok(self.consts[slot].clone()),
                Some(d) => values[d]
                    .clone()
                    .ok_or_else(|| Error::invalid(&self.name, format!("output slot {slot} empty"))),
            })
            .collect()
    }

    /// Output `slot` of a plan without steps: an argument or a constant.
    fn trivial_output(&self, slot: Slot, args: &[Tensor]) -> Result<Tensor, Error> {
        if let Some(pos) = self.arg_slots.iter().position(|&a| a == slot) {
            return Ok(args[pos].clone());
        }
        match self.consts.get(slot) {
            Some(t) => Ok(t.clone()),
            None => Err(Error::invalid(
                &self.name,
                format!("output slot {slot} empty"),
            )),
        }
    }

    fn qualified(&self, node: &str) -> String {
        if self.name.is_empty() {
            node.to_string()
        } else {
            format!("{}/{}", self.name, node)
        }
    }
}

/// A library function: compiled lazily, callable by ops.
#[derive(Debug)]
pub(crate) struct FunctionPlan {
    pub name: String,
    pub plan: OnceLock<Plan>,
}

impl Callable for FunctionPlan {
    fn name(&self) -> &str {
        &self.name
    }

    fn call(&self, cx: &mut EvalCtx<'_>, args: Tensors) -> Result<Tensors, OpError> {
        let plan = self
            .plan
            .get()
            .ok_or_else(|| OpError::invalid(format!("function {} was not compiled", self.name)))?;
        if cx.depth >= cx.limits().max_call_depth {
            return Err(OpError::Limit(format!(
                "function call depth {} exceeds the cap of {} (at {})",
                cx.depth + 1,
                cx.limits().max_call_depth,
                self.name
            )));
        }
        let mut inner = cx.nested();
        // Already inside a call (on its thread): no hop onto the pool per function call, which
        // would cost a thread hand-off per `If`/`While` iteration when the outer call ran in
        // place (`on_worker` on a contended machine).
        plan.run_here(&mut inner, args).map_err(|e| OpError::Call {
            function: self.name.clone(),
            source: Box::new(e),
        })
    }
}

/// Bytes a value adds to a call's live set: its heap payload, except memory-mapped
/// checkpoint data (owned by the model, not allocated by the call).
fn counted_bytes(t: &Tensor) -> usize {
    use crate::tensor::Data;
    let mapped = match t.data() {
        Data::BF16(b) => b.is_mapped(),
        Data::F16(b) => b.is_mapped(),
        Data::F32(b) => b.is_mapped(),
        Data::F64(b) => b.is_mapped(),
        Data::I8(b) => b.is_mapped(),
        Data::I16(b) => b.is_mapped(),
        Data::I32(b) => b.is_mapped(),
        Data::I64(b) => b.is_mapped(),
        Data::U8(b) => b.is_mapped(),
        Data::U16(b) => b.is_mapped(),
        Data::U32(b) => b.is_mapped(),
        Data::U64(b) => b.is_mapped(),
        Data::Bool(_) | Data::C64(_) | Data::C128(_) => false,
        Data::String(_) | Data::Resource(_) | Data::Variant(_) => false,
    };
    if mapped {
        0
    } else {
        t.nbytes()
    }
}

pub(crate) type FunctionRef = Arc<FunctionPlan>;

//! The traits a built op and a callable function implement: [`Op`] (built once, evaluated
//! many times), [`Callable`] (a compiled function ops may call) and [`FunctionResolver`]
//! (how builders find those functions).

use std::fmt;
use std::sync::Arc;

use smallvec::SmallVec;

use super::{fused, EvalCtx, OpError};
use crate::tensor::Tensor;

/// An op's inputs or outputs: inline up to two (most steps take one or two data inputs once
/// constant inputs are bound at plan time, and produce one or two outputs), so a step's
/// evaluation allocates no vector for them. Not more: the inline array is copied whenever
/// the value moves, and with four inline the BERT preprocessor ran slower than with `Vec`.
pub type Tensors = SmallVec<[Tensor; 2]>;

/// A built op.
pub trait Op: Send + Sync + fmt::Debug {
    /// Evaluates the op. `inputs` are the data inputs in order (control inputs are not passed);
    /// an input is moved in when this is its last use, so in-place updates are free.
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError>;

    /// True if the op reads or writes state or the outside world (never constant-folded,
    /// never pruned as dead code when it is a target).
    fn is_stateful(&self) -> bool {
        false
    }

    /// For `Const`: the value, so the planner can fold ops downstream of it.
    fn constant(&self) -> Option<&Tensor> {
        None
    }

    /// Called at plan time with the inputs whose values are plan constants (`Some`; the
    /// others `None`): an equivalent op that takes only the non-constant inputs, in order,
    /// with the constants read once here instead of at every call; `None` keeps this op.
    /// Only an op whose results for every input value are those of `self` may be returned.
    fn bind_constants(&self, _known: &[Option<&Tensor>]) -> Option<Box<dyn Op>> {
        None
    }

    /// For producers that can fuse a per-channel epilogue (see [`fused`]).
    fn epilogue_producer(&self) -> Option<&dyn fused::EpilogueProducer> {
        None
    }

    /// With `TFHUB_PROFILE`: a finer key for these inputs than the op type (a convolution's
    /// kernel size and stride, a fused chain's steps), so the per-op profile separates them.
    fn profile_detail(&self, _inputs: &[Tensor]) -> Option<String> {
        None
    }
}

/// A compiled function that ops can call (`PartitionedCall`, `If`, `While`, ...).
pub trait Callable: Send + Sync + fmt::Debug {
    /// The function's name.
    fn name(&self) -> &str;
    /// Runs the function on `args`, returning its outputs in signature order.
    fn call(&self, cx: &mut EvalCtx<'_>, args: Tensors) -> Result<Tensors, OpError>;
}

/// Resolves function names to compiled functions while ops are being built.
pub trait FunctionResolver {
    /// The compiled function `name` (compiled on first request).
    fn function(&mut self, name: &str) -> Result<Arc<dyn Callable>, OpError>;
}

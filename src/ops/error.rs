//! [`OpError`]: why an op could not be built or evaluated. One enum for every op family, so
//! the executor can wrap any of them with the node and op name (`graph::ExecError`).

use std::fmt;
use std::time::Duration;

use super::kernels;

use crate::saved_model::checkpoint::CheckpointError;
use crate::saved_model::tensor_proto::TensorProtoError;
use crate::tensor::{DType, TensorError};

/// Why an op could not be built or evaluated. The executor adds the node and op name.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpError {
    /// Missing or ill-typed attribute.
    #[error("attr {name:?}: {what}")]
    Attr {
        /// Attribute name.
        name: String,
        /// What is wrong.
        what: String,
    },
    /// Wrong number of inputs.
    #[error("expected {expected} inputs, got {got}")]
    Arity {
        /// Inputs expected (minimum for variadic ops).
        expected: usize,
        /// Inputs given.
        got: usize,
    },
    /// An input has a dtype the op does not take.
    #[error("input {index}: dtype {got} is not supported here (expected {expected})")]
    DType {
        /// Input position.
        index: usize,
        /// What the op takes.
        expected: String,
        /// What it got.
        got: DType,
    },
    /// Inputs have incompatible shapes (or a shape-like input is invalid).
    #[error("{0}")]
    Shape(String),
    /// Any other invalid argument (index out of range, bad value), as TF's `InvalidArgument`.
    #[error("{0}")]
    Invalid(String),
    /// A feature of this op that tfhub does not implement.
    #[error("not implemented: {0}")]
    Unimplemented(String),
    /// A resource (variable, table) was missing or of the wrong kind.
    #[error("resource {name:?}: {what}")]
    Resource {
        /// Resource name.
        name: String,
        /// What is wrong.
        what: String,
    },
    /// A cap on memory, time, iterations or depth was exceeded.
    #[error("limit exceeded: {0}")]
    Limit(String),
    /// The call's live tensors would exceed [`Limits::max_live_bytes`].
    #[error(
        "limit exceeded: the call's live tensors would take {needed} bytes, over the \
         {cap} byte cap (Limits::max_live_bytes)"
    )]
    MemoryCap {
        /// Bytes the live set would reach.
        needed: u128,
        /// The cap.
        cap: usize,
    },
    /// The call ran longer than [`Limits::max_call_time`].
    #[error("limit exceeded: the call ran for {elapsed:?}, over the {cap:?} cap (Limits::max_call_time)")]
    TimeCap {
        /// Time spent when the cap was noticed (checked before each op).
        elapsed: Duration,
        /// The cap.
        cap: Duration,
    },
    /// The op would read outside the model directory or touch the outside world.
    #[error("refused: {0}")]
    Refused(String),
    /// A constant did not decode.
    #[error(transparent)]
    TensorProto(#[from] TensorProtoError),
    /// A tensor could not be built.
    #[error(transparent)]
    Tensor(#[from] TensorError),
    /// A checkpoint read failed.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A data-dependent kernel failure.
    #[error(transparent)]
    Kernel(#[from] kernels::KernelError),
    /// A failure inside a called function (the error names the inner node).
    #[error("in function {function:?}")]
    Call {
        /// Function name.
        function: String,
        /// The inner error.
        #[source]
        source: Box<crate::Error>,
    },
}

impl OpError {
    /// Shorthand for [`OpError::Invalid`].
    pub fn invalid(what: impl fmt::Display) -> OpError {
        OpError::Invalid(what.to_string())
    }
    /// Shorthand for [`OpError::Shape`].
    pub fn shape(what: impl fmt::Display) -> OpError {
        OpError::Shape(what.to_string())
    }
    /// Shorthand for [`OpError::DType`].
    pub fn dtype(index: usize, expected: &str, got: DType) -> OpError {
        OpError::DType {
            index,
            expected: expected.to_string(),
            got,
        }
    }
}

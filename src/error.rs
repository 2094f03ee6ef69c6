//! `tfhub::Error`: every failure a user can see, with the *where* (file, node, op, signature)
//! added once by the layer that knows it. Lower layers' errors ride along as `#[source]`.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::hub::HubError;
use crate::ops::OpError;
use crate::saved_model::checkpoint::CheckpointError;
use crate::tensor::TensorError;

/// One op the interpreter does not implement, and a node that uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedOp {
    /// TensorFlow op type.
    pub op: String,
    /// A node (`function/node` inside functions) that uses it.
    pub node: String,
}

fn fmt_ops(ops: &[UnsupportedOp]) -> String {
    ops.iter()
        .map(|u| format!("{} (node {})", u.op, u.node))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An op tfhub refuses to run because it reaches outside the model (files, network, code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedOp {
    /// TensorFlow op type.
    pub op: String,
    /// A node (`function/node` inside functions) that uses it.
    pub node: String,
    /// What the op would do (`writes files`, `runs host-language code`, ...).
    pub reason: &'static str,
}

fn fmt_refused(ops: &[RefusedOp]) -> String {
    ops.iter()
        .map(|r| format!("refused op {} (node {}): {}", r.op, r.node, r.reason))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Any tfhub failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read or written.
    #[error("cannot read {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A protobuf file did not decode.
    #[error("{}: not a valid {what} protobuf", path.display())]
    Decode {
        /// The file.
        path: PathBuf,
        /// The expected message (`SavedModel`, `GraphDef`).
        what: &'static str,
        /// The cause.
        #[source]
        source: prost::DecodeError,
    },
    /// The model is structurally invalid (missing pieces, inconsistent references).
    #[error("{}: {what}", path.display())]
    InvalidModel {
        /// The model file or directory.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// A checkpoint tensor could not be read (the error names the file and key).
    #[error(transparent)]
    Checkpoint(Box<CheckpointError>),
    /// An op failed (at load, while building or folding, or during a call).
    #[error("node {node:?} ({op})")]
    Node {
        /// Node name (`function/node` inside functions).
        node: String,
        /// Op type.
        op: String,
        /// The cause.
        #[source]
        source: Box<OpError>,
    },
    /// The graph uses ops tfhub does not implement; every one is listed.
    #[error("unsupported ops: {}", fmt_ops(.0))]
    UnsupportedOps(Vec<UnsupportedOp>),
    /// The graph reaches ops with ambient authority (file, network or code access); every one
    /// is listed. Nothing was run.
    #[error("{}; tfhub never runs ops with ambient authority", fmt_refused(.0))]
    RefusedOps(Vec<RefusedOp>),
    /// A signature, meta graph or tensor that was asked for does not exist.
    #[error("{what} {name:?} not found; available: {}", available.join(", "))]
    NotFound {
        /// What kind of thing (`signature`, `meta graph with tags`, `output`).
        what: &'static str,
        /// The name asked for.
        name: String,
        /// What exists.
        available: Vec<String>,
    },
    /// Inputs given to a signature do not match it.
    #[error("signature {signature:?}: {what}")]
    Input {
        /// The signature.
        signature: String,
        /// What is wrong (names the expected input, dtype or shape).
        what: String,
    },
    /// A call to an object-graph function (or its binding) failed.
    #[error("function {function:?}: {what}")]
    Call {
        /// The attribute path (`tokenize`, `__call__`).
        function: String,
        /// What is wrong.
        what: String,
    },
    /// No concrete function of an object-graph function accepts the call; every concrete
    /// input signature that exists is listed.
    #[error("function {function:?}: no concrete function matches the call (got {got}); it has {n} option(s):\n{}", .options.join("\n"), n = .options.len())]
    NoMatchingFunction {
        /// The attribute path.
        function: String,
        /// The arguments given.
        got: String,
        /// The concrete input signatures (and why each one refused the call).
        options: Vec<String>,
    },
    /// Resolving or downloading a handle failed.
    #[error(transparent)]
    Hub(Box<HubError>),
    /// A tensor could not be built as asked.
    #[error(transparent)]
    Tensor(#[from] TensorError),
}

impl Error {
    pub(crate) fn invalid(path: impl Into<PathBuf>, what: impl fmt::Display) -> Error {
        Error::InvalidModel {
            path: path.into(),
            what: what.to_string(),
        }
    }
}

impl Error {
    /// The innermost op failure (through nested function calls), if this is one: match it to
    /// tell a cap ([`OpError::Limit`], [`OpError::MemoryCap`], [`OpError::TimeCap`]) or a
    /// confinement refusal ([`OpError::Refused`]) from other failures.
    pub fn op_error(&self) -> Option<&OpError> {
        let mut e = self;
        loop {
            match e {
                Error::Node { source, .. } => match source.as_ref() {
                    OpError::Call { source, .. } => e = source,
                    other => return Some(other),
                },
                _ => return None,
            }
        }
    }
}

impl From<CheckpointError> for Error {
    fn from(e: CheckpointError) -> Self {
        Error::Checkpoint(Box::new(e))
    }
}

impl From<crate::saved_model::SavedModelError> for Error {
    fn from(e: crate::saved_model::SavedModelError) -> Self {
        use crate::saved_model::SavedModelError as S;
        match e {
            S::Io { path, source } => Error::Io { path, source },
            S::Decode { path, what, source } => Error::Decode { path, what, source },
            S::Invalid { path, what } => Error::InvalidModel { path, what },
            S::NoMetaGraph { tags, available } => Error::NotFound {
                what: "meta graph with tags",
                name: tags,
                available,
            },
        }
    }
}

impl From<HubError> for Error {
    fn from(e: HubError) -> Self {
        Error::Hub(Box::new(e))
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

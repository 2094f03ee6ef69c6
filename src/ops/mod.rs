//! TensorFlow op semantics: one registry mapping op names to builders, one file per family.
//!
//! An op is built once at load from its `NodeDef` (attributes read and checked into typed fields
//! by a builder closure registered in [`Registry`]) and evaluated many times.
//! Ops never name their node: the executor in `graph` wraps their errors with node and op.
//! Ops that reach outside pure computation (variables, tables, checkpoint reads, function calls)
//! do so only through [`Session`] and [`EvalCtx`], which hold the model directory, the caps
//! and the resource manager.

mod array;
mod control;
mod detection;
pub mod fused;
mod image;
mod list;
mod lookup;
mod math;
mod nn;
pub(crate) mod op_defaults;
pub(crate) mod refused;
mod sentencepiece;
mod signal;
mod sparse;
pub(crate) mod strings;
mod text;
mod tf1;
pub(crate) mod variables;

mod build;
mod error;
mod limits;
mod op;
mod registry;
mod session;

pub(crate) use build::resource_key;
pub use build::BuildCtx;
pub use error::OpError;
pub use limits::{CallLimits, Limits};
pub use op::{Callable, FunctionResolver, Op, Tensors};
pub use registry::{Builder, Registry};
pub(crate) use session::take_inputs;
pub use session::{EvalCtx, Session};

pub use tfhub_kernels as kernels;

pub(crate) use control::direct_call;
pub(crate) use nn::conv_padded;
pub(crate) use sparse::{fused_embedding_segment, ParamsFrom};
pub(crate) use tf1::{deref as deref_ref, deref_inputs, takes_ref, REF_PRODUCERS};

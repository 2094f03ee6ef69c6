//! tfhub: TensorFlow Hub models in pure Rust.
//!
//! Module boundaries: `cli → api → { hub | loader → { saved_model, graph → ops → kernels } }`,
//! `graph → saved_model → proto`; `tensor` is shared. `loader` owns the load sequence, the
//! checked meta-graph view and the TF2 object graph; `api` is the thin public surface.
#![warn(missing_debug_implementations)]

/// [`ops::Tensors`] from a list of tensors, as `vec!` builds a `Vec` (crate-wide by textual
/// scope: defined before the modules).
macro_rules! tensors {
    ($($t:tt)*) => {
        smallvec::smallvec![$($t)*]
    };
}

pub mod api;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod graph;
pub mod hub;
pub mod loader;
pub mod ops;
#[doc(hidden)]
pub mod proto;
pub mod saved_model;
pub mod sentencepiece;
#[cfg(feature = "serve")]
pub mod serve;
pub mod tensor;

pub use api::{load, Function, KerasLayer, Model, Signature, Value};
pub use error::{Error, Result};
pub use tensor::{Bytes, DType, Tensor};

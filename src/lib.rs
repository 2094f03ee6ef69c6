//! tfhub: TensorFlow Hub models in pure Rust.
//!
//! Module boundaries: `cli → api → { hub | graph → ops → kernels }`, `graph → saved_model →
//! proto`; `tensor` is shared.
#![warn(missing_debug_implementations)]

pub mod api;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod graph;
pub mod hub;
pub mod ops;
#[doc(hidden)]
pub mod proto;
pub mod saved_model;
pub mod sentencepiece;
#[cfg(feature = "serve")]
pub mod serve;
pub mod tensor;

pub use api::{load, KerasLayer, Model, Signature};
pub use error::{Error, Result};
pub use tensor::{Bytes, DType, Tensor};

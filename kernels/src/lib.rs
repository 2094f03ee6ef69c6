//! Numeric and string kernels for tfhub.
//!
//! This crate knows nothing about TensorFlow: kernels see slices, `&[usize]` shapes or strides
//! and scalars, and write into buffers the caller allocated (so memory caps stay with the
//! caller). They are named for their maths (`gemm_f32`, `segment_sum`), not for TF ops.
//!
//! Vectorized kernels pick AVX-512, AVX2+FMA or portable code at run time (see [`simd::Isa`]).
//! Shape/length mismatches are caller bugs and panic (documented under `# Panics`); failures
//! that depend on data values (indices, ids) return [`KernelError`].

#![warn(missing_docs)]

pub mod alloc;
pub mod broadcast;
pub mod conv;
pub mod elementwise;
pub mod epilogue;
mod epilogue_x86;
pub mod error;
pub mod fft;
pub mod gemm;
pub mod image;
pub mod nms;
pub mod reduce;
pub mod segment;
pub mod simd;
pub mod strings;
pub mod threads;
pub mod transcend;
pub mod transpose;

#[cfg(test)]
mod testutil;

pub use error::{IndexLike, KernelError};
pub use simd::Isa;

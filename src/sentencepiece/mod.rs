//! SentencePiece in pure Rust, bit-exact with the sentencepiece v0.1.96 that tensorflow_text's
//! ops embed: model proto parsing (untrusted input: caps, typed errors), the normalizer with
//! its precompiled charsmap (a darts double array), unigram Viterbi (with v0.1.96's mix of f32
//! and f64 scores, which decides ties), BPE merges, and decoding. Knows nothing about
//! TensorFlow; the ops in `ops::sentencepiece` wrap it.
//!
//! Sampling (unigram lattice sampling, n-best sampling, BPE-dropout with 0 < alpha < 1) is
//! random in sentencepiece and not implemented; [`SpmError::Unsupported`] names it.

mod darts;
mod model;
mod normalizer;
mod trie;

pub use model::{Encoding, ExtraOptions, Processor, Token, TokenText};

/// Why a model did not load or a text did not encode or decode.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SpmError {
    /// The model proto is not a valid protobuf.
    #[error("sentencepiece model proto does not parse: {0}")]
    Proto(String),
    /// The model parsed but is inconsistent (sentencepiece's load-time checks).
    #[error("sentencepiece model: {0}")]
    Load(String),
    /// A cap on model or text size was exceeded.
    #[error("sentencepiece limit exceeded: {0}")]
    Limit(String),
    /// Encoding failed (sentencepiece's internal checks, or a hostile charsmap).
    #[error("sentencepiece encode: {0}")]
    Encode(String),
    /// An id outside `[0, vocab size)`.
    #[error("Invalid id: {0}")]
    InvalidId(i64),
    /// bos/eos was requested but the piece is not in the vocabulary.
    #[error("id for `{0}` is not defined.")]
    UndefinedPiece(String),
    /// A mode tfhub does not implement (named).
    #[error("not implemented: {0}")]
    Unsupported(String),
}

//! tensorflow_text ops (the `tensorflow-text` pip package's kernels: TF Hub's BERT and
//! SentencePiece-free preprocessors), plus the TF core ragged variant ops `tf.map_fn` over
//! RaggedTensors compiles to. One family, one [`register`]; each file owns:
//!
//! - `normalize`: `CaseFoldUTF8`, `NormalizeUTF8` (ICU4X normalizer and case mapper).
//! - `offsets_map`: `NormalizeUTF8WithOffsetsMap` / `FindSourceOffsets` (ICU's edit spans).
//! - `regex_split`: `RegexSplitWithOffsets` (RE2 semantics on `regex`).
//! - `wordpiece`: `WordpieceTokenizeWithOffsets` (classic WordPiece over a lookup table).
//! - `trim`: `TFText>RoundRobinTrim` / `TFText>RoundRobinGenerateMasks` (BERT packing).
//! - `tokenize`: `WhitespaceTokenizeWithOffsets` (V1, code points),
//!   `TFText>WhitespaceTokenizeWithOffsetsV2` (bytes + config bitset),
//!   `UnicodeScriptTokenizeWithOffsets` (ICU 77 / Unicode 16 scripts).
//! - `fast_wordpiece`: `FastWordpieceTokenizeWithOffsets`, `TFText>FastWordpieceDetokenize`,
//!   `FastBertNormalize` (flatbuffer models).
//! - `fast_sentencepiece`: `TFText>FastSentencepieceTokenize` / `...Detokenize` (flatbuffer
//!   models converted from a SentencePiece proto; the proto-based `Sentencepiece*Op`s are the
//!   separate `sentencepiece` family).
//! - `flatbuf`: the bounds-checked FlatBuffers reader and darts-clone trie those models share.
//! - `ragged_variant`: `RaggedTensorToVariant` / `RaggedTensorFromVariant` (TF core; used by
//!   the 2020-21 BERT preprocessors' `map_fn` truncation).
//!
//! TF reference: tensorflow_text/core/kernels/*.cc at the 2.21 release and TF core's ragged
//! kernels; facts checked against TF 2.21 + tensorflow-text 2.21.1 are in the project's
//! tensorflow-text-facts reference.
//!
//! Strings are byte strings: every op here accepts ill-formed UTF-8 the way the TF kernel
//! does (copied through, or cut into maximal ill-formed subsequences), never failing on it.

mod fast_sentencepiece;
mod fast_wordpiece;
mod flatbuf;
mod normalize;
mod offsets_map;
mod ragged_variant;
mod regex_split;
mod tokenize;
mod trim;
mod wordpiece;

use rayon::prelude::*;

use super::{OpError, Registry};
use crate::tensor::{Bytes, DType, Tensor};

pub(crate) fn register(r: &mut Registry) {
    r.add("CaseFoldUTF8", normalize::Normalize::build);
    r.add(
        "FastBertNormalize",
        fast_wordpiece::FastBertNormalize::build,
    );
    r.add(
        "FastWordpieceTokenizeWithOffsets",
        fast_wordpiece::FastWordpiece::build,
    );
    r.add("FindSourceOffsets", offsets_map::FindSourceOffsets::build);
    r.add("NormalizeUTF8", normalize::Normalize::build);
    r.add(
        "NormalizeUTF8WithOffsetsMap",
        offsets_map::NormalizeWithOffsets::build,
    );
    r.add(
        "RaggedTensorFromVariant",
        ragged_variant::FromVariant::build,
    );
    r.add("RaggedTensorToVariant", ragged_variant::ToVariant::build);
    r.add("RegexSplitWithOffsets", regex_split::RegexSplit::build);
    r.add(
        "TFText>FastSentencepieceDetokenize",
        fast_sentencepiece::FastSentencepieceDetokenize::build,
    );
    r.add(
        "TFText>FastSentencepieceTokenize",
        fast_sentencepiece::FastSentencepieceTokenize::build,
    );
    r.add(
        "TFText>FastWordpieceDetokenize",
        fast_wordpiece::FastWordpieceDetokenize::build,
    );
    r.add("TFText>RoundRobinGenerateMasks", trim::RoundRobin::build);
    r.add("TFText>RoundRobinTrim", trim::RoundRobin::build);
    r.add(
        "TFText>WhitespaceTokenizeWithOffsetsV2",
        tokenize::WhitespaceV2::build,
    );
    r.add(
        "UnicodeScriptTokenizeWithOffsets",
        tokenize::ScriptTokenize::build,
    );
    r.add(
        "WhitespaceTokenizeWithOffsets",
        tokenize::WhitespaceCodepoints::build,
    );
    r.add("WordpieceTokenizeWithOffsets", wordpiece::Wordpiece::build);
}

/// Strings at least this many are mapped on rayon's threads.
const PAR_STRINGS: usize = 64;

/// The elements of a string input, or a dtype error naming input `index`.
fn strings(t: &Tensor, index: usize) -> Result<&[Bytes], OpError> {
    t.as_slice::<Bytes>()
        .map_err(|_| OpError::dtype(index, "string", t.dtype()))
}

/// Maps every element of a string tensor through `f` (which appends the new bytes to its
/// second argument), keeping the shape.
fn map_bytes(t: Tensor, f: impl Fn(&[u8], &mut Vec<u8>) + Sync) -> Result<Tensor, OpError> {
    if t.dtype() != DType::String {
        return Err(OpError::dtype(0, "string", t.dtype()));
    }
    let shape = t.shape().to_vec();
    let input = strings(&t, 0)?;
    let one = |s: &Bytes| {
        let mut out = Vec::with_capacity(s.len());
        f(s, &mut out);
        if out[..] == s[..] {
            s.clone()
        } else {
            Bytes::from(out)
        }
    };
    let v: Vec<Bytes> = if input.len() >= PAR_STRINGS {
        input.par_iter().map(one).collect()
    } else {
        input.iter().map(one).collect()
    };
    Ok(Tensor::from_vec(&shape, v)?)
}

/// The only element of a scalar string input.
fn scalar_string(t: &Tensor, index: usize, what: &str) -> Result<Bytes, OpError> {
    match strings(t, index)? {
        [s] if t.rank() == 0 => Ok(s.clone()),
        _ => Err(OpError::invalid(format!(
            "{what} must be scalar, but received shape {:?}",
            t.shape()
        ))),
    }
}

#[cfg(test)]
mod tests;

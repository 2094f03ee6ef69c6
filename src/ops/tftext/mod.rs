//! tensorflow_text ops beyond the classic BERT preprocessing set of [`super::text`]: the
//! whitespace and Unicode-script tokenizers, FastWordpiece / FastBertNormalize and
//! FastSentencepiece (flatbuffer models), and the ragged variant ops that `tf.map_fn`
//! over RaggedTensors compiles to (TF core ops, used by the 2020-21 BERT preprocessors).
//! TF reference: tensorflow_text/core/kernels/*.cc at 2.21 and TF core's ragged kernels; facts
//! checked against TF 2.21 + tensorflow-text 2.21.1 are in the tensorflow-text-facts reference.

mod fast_sentencepiece;
mod fast_wordpiece;
mod flatbuf;
mod ragged_variant;
mod tokenize;

use super::{OpError, Registry};
use crate::tensor::{Bytes, Tensor};

/// The elements of a string input, or a dtype error naming input `index`.
fn strings(t: &Tensor, index: usize) -> Result<&[Bytes], OpError> {
    t.as_slice::<Bytes>()
        .map_err(|_| OpError::dtype(index, "string", t.dtype()))
}

pub(crate) fn register(r: &mut Registry) {
    r.add(
        "FastBertNormalize",
        fast_wordpiece::FastBertNormalize::build,
    );
    r.add(
        "FastWordpieceTokenizeWithOffsets",
        fast_wordpiece::FastWordpiece::build,
    );
    r.add(
        "RaggedTensorFromVariant",
        ragged_variant::FromVariant::build,
    );
    r.add("RaggedTensorToVariant", ragged_variant::ToVariant::build);
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
}

#[cfg(test)]
mod tests;

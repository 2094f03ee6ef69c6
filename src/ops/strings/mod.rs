//! String ops: splitting, regex replacement, case mapping, hashing, joining and slicing.
//! TF reference: core/kernels/{string_split_op,regex_replace_op,string_lower_op,
//! string_to_hash_bucket_op,string_join_op,substr_op,string_length_op,reduce_join_op}.cc.
//!
//! Strings are byte strings (`Vec<u8>`), as in TF: nothing here assumes UTF-8 unless the op
//! asks for it (`encoding = "utf-8"`, `unit = "UTF8_CHAR"`, regexes), and bytes that are not
//! UTF-8 never make an op fail where TF succeeds. Children: `split` (StringSplit, StringSplitV2),
//! `regex` (RE2-compatible replacement), `hash` (StringToHashBucket*), `format` (AsString),
//! `convert` (StringToNumber, base64), `ngrams` (StringNGrams), `segment_join`
//! (UnsortedSegmentJoin), `unicode` (UnicodeDecode*, UnicodeEncode, UnicodeTranscode), `misc`
//! (the rest).

mod convert;
mod format;
mod hash;
mod misc;
mod ngrams;
pub(crate) mod regex;
mod segment_join;
mod split;
mod unicode;

use super::{BuildCtx, OpError, Registry};
use crate::ops::Tensors;
use crate::tensor::{Bytes, DType, Tensor};

pub(crate) fn register(r: &mut Registry) {
    r.add("AsString", format::AsString::build);
    r.add("DecodeBase64", convert::Base64::build);
    r.add("EncodeBase64", convert::Base64::build);
    r.add("ReduceJoin", misc::ReduceJoin::build);
    r.add("RegexFullMatch", regex::RegexFullMatch::build);
    r.add("RegexReplace", regex::RegexReplace::build);
    r.add("StaticRegexFullMatch", regex::StaticRegexFullMatch::build);
    r.add("StaticRegexReplace", regex::StaticRegexReplace::build);
    r.add("StringJoin", misc::StringJoin::build);
    r.add("StringLength", misc::StringLength::build);
    r.add("StringLower", misc::CaseMap::build);
    r.add("StringSplit", split::StringSplit::build);
    r.add("StringSplitV2", split::StringSplitV2::build);
    r.add("StringStrip", misc::StringStrip::build);
    r.add("StringToNumber", convert::StringToNumber::build);
    use hash::{HashBucket, Hasher};
    r.add("StringToHashBucket", |cx| {
        HashBucket::build(cx, Some(Hasher::Legacy))
    });
    r.add("StringToHashBucketFast", |cx| {
        HashBucket::build(cx, Some(Hasher::Fast))
    });
    r.add("StringToHashBucketStrong", |cx| HashBucket::build(cx, None));
    r.add("StringUpper", misc::CaseMap::build);
    r.add("StringNGrams", ngrams::StringNGrams::build);
    r.add("Substr", misc::Substr::build);
    r.add("UnicodeDecode", unicode::UnicodeDecode::build);
    r.add("UnicodeDecodeWithOffsets", unicode::UnicodeDecode::build);
    r.add("UnicodeEncode", unicode::UnicodeEncode::build);
    r.add("UnicodeTranscode", unicode::UnicodeTranscode::build);
    r.add(
        "UnsortedSegmentJoin",
        segment_join::UnsortedSegmentJoin::build,
    );
}

/// The `Tsplits` attr of a ragged-producing op: int32 or int64 (TF's default).
fn tsplits_attr(cx: &BuildCtx<'_>) -> Result<DType, OpError> {
    match cx.attr_opt_type("Tsplits")? {
        None | Some(DType::I64) => Ok(DType::I64),
        Some(DType::I32) => Ok(DType::I32),
        Some(other) => Err(OpError::Attr {
            name: "Tsplits".into(),
            what: format!("must be int32 or int64, got {other}"),
        }),
    }
}

/// A splits/offsets vector in `dtype` (int32 or int64); a value past int32 is an error.
fn splits_tensor(v: Vec<i64>, dtype: DType) -> Result<Tensor, OpError> {
    match dtype {
        DType::I64 => Ok(Tensor::vector(v)),
        DType::I32 => {
            let narrow = v
                .into_iter()
                .map(|x| {
                    i32::try_from(x)
                        .map_err(|_| OpError::invalid(format!("split value {x} overflows int32")))
                })
                .collect::<Result<Vec<i32>, OpError>>()?;
            Ok(Tensor::vector(narrow))
        }
        other => Err(OpError::dtype(1, "int32 or int64", other)),
    }
}

/// The elements of a string input, or a dtype error naming input `index`.
fn strings(t: &Tensor, index: usize) -> Result<&[Bytes], OpError> {
    t.as_slice::<Bytes>()
        .map_err(|_| OpError::dtype(index, "string", t.dtype()))
}

/// The only element of a scalar string input.
fn scalar_string(t: &Tensor, index: usize, what: &str) -> Result<Bytes, OpError> {
    match strings(t, index)? {
        [s] if t.rank() == 0 => Ok(s.clone()),
        _ => Err(OpError::shape(format!(
            "{what} must be a scalar, got shape {:?}",
            t.shape()
        ))),
    }
}

/// Maps every element of a string tensor through `f`, keeping the shape; an element's bytes
/// are edited in place when nothing else shares them (`Vec::from(Bytes)` then takes them).
fn map_strings(t: Tensor, f: impl Fn(&mut Vec<u8>)) -> Result<Tensor, OpError> {
    if t.dtype() != DType::String {
        return Err(OpError::dtype(0, "string", t.dtype()));
    }
    let shape = t.shape().to_vec();
    let mut v = t.into_vec::<Bytes>()?;
    for s in &mut v {
        let mut bytes = Vec::from(std::mem::take(s));
        f(&mut bytes);
        *s = Bytes::from(bytes);
    }
    Ok(Tensor::from_vec(&shape, v)?)
}

/// The TF `SparseTensor` triple for rows of tokens: `indices` int64 `[n, 2]`, `values` string
/// `[n]`, `dense_shape` int64 `[rows, max_tokens]`.
fn sparse_tokens(rows: usize, tokens: Vec<(usize, Bytes)>) -> Result<Tensors, OpError> {
    let n = tokens.len();
    let mut indices = Vec::with_capacity(2 * n);
    let mut values = Vec::with_capacity(n);
    let mut max = 0i64;
    let mut current = (usize::MAX, 0i64);
    for (row, tok) in tokens {
        if row != current.0 {
            current = (row, 0);
        }
        indices.extend_from_slice(&[row as i64, current.1]);
        current.1 += 1;
        max = max.max(current.1);
        values.push(tok);
    }
    Ok(tensors![
        Tensor::from_vec(&[n, 2], indices)?,
        Tensor::from_vec(&[n], values)?,
        Tensor::vector(vec![rows as i64, max]),
    ])
}

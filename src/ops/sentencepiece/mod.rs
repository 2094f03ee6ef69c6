//! tensorflow_text's SentencePiece ops (tensorflow_text/core/kernels/sentencepiece_kernels.cc)
//! over the pure-Rust [`crate::sentencepiece`] processor.
//!
//! `SentencepieceOp` parses its `model` attribute once, at build, and evaluates to a resource
//! holding the processor; the other ops take that handle. TF keeps bos/eos/reverse on the
//! shared resource and sets them from each call's inputs before use, so passing them per call
//! is equivalent. Rows are encoded in parallel above [`PAR_ROWS`] rows, as TF shards them.
//!
//! Refused by name: `return_nbest=true` (n-best lists), and sampling (`nbest_size` other
//! than 0/1), which is random in sentencepiece, except the deterministic BPE cases (alpha <= 0
//! or >= 1). `TFText>FastSentencepieceTokenize`/`Detokenize` (the flatbuffer model of
//! `FastSentencepieceTokenizer`) are not registered.

use std::sync::Arc;

use rayon::prelude::*;

use super::{take_inputs, BuildCtx, EvalCtx, Op, OpError, Registry};
use crate::ops::Tensors;
use crate::sentencepiece::{ExtraOptions, Processor, SpmError};
use crate::tensor::{Bytes, DType, Data, Tensor};

pub(crate) fn register(r: &mut Registry) {
    r.add("SentencepieceOp", ModelOp::build);
    r.add("SentencepieceTokenizeOp", Tokenize::build);
    r.add("SentencepieceTokenizeWithOffsetsOp", Tokenize::build);
    r.add("SentencepieceDetokenizeOp", Detokenize::build);
    r.add("SentencepieceVocabSizeOp", VocabSize::build);
    r.add("SentencepieceIdToStringOp", IdToString::build);
    r.add("SentencepieceStringToIdOp", StringToId::build);
}

/// Rows at least this many are encoded on rayon's threads.
const PAR_ROWS: usize = 16;

/// The resource behind a `SentencepieceOp` handle.
#[derive(Debug)]
struct SpResource {
    processor: Arc<Processor>,
}

fn spm_err(e: SpmError) -> OpError {
    match e {
        SpmError::Unsupported(s) => OpError::Unimplemented(s),
        SpmError::Limit(s) => OpError::Limit(s),
        e => OpError::Invalid(e.to_string()),
    }
}

/// `SentencepieceOp`: the model attribute, parsed at build; a load error surfaces when the op
/// runs, as in TF.
#[derive(Debug)]
struct ModelOp {
    key: String,
    model: Result<Arc<Processor>, SpmError>,
}

impl ModelOp {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        let bytes = cx.attr_opt_bytes("model").unwrap_or_default();
        let model = if bytes.is_empty() {
            Err(SpmError::Load("Model argument must be specified.".into()))
        } else {
            Processor::from_bytes(bytes).map(Arc::new)
        };
        Ok(Box::new(ModelOp {
            key: cx.resource_key(),
            model,
        }))
    }
}

impl Op for ModelOp {
    fn eval(&self, cx: &mut EvalCtx<'_>, _: Tensors) -> Result<Tensors, OpError> {
        let processor = self.model.clone().map_err(spm_err)?;
        let h = cx
            .session
            .resource(&self.key, || SpResource { processor })?;
        Ok(tensors![Tensor::handles(&[], vec![h], DType::Resource)?])
    }
    fn is_stateful(&self) -> bool {
        true
    }
}

fn processor_of(t: &Tensor) -> Result<Arc<Processor>, OpError> {
    let h = match t.data() {
        Data::Resource(b) if b.len() == 1 => &b[0],
        _ => return Err(OpError::dtype(0, "a scalar resource handle", t.dtype())),
    };
    h.value
        .downcast_ref::<SpResource>()
        .map(|r| r.processor.clone())
        .ok_or_else(|| OpError::Resource {
            name: h.name.to_string(),
            what: "is not a SentencePiece model".into(),
        })
}

fn scalar_bool(t: &Tensor, index: usize) -> Result<bool, OpError> {
    if t.dtype() != DType::Bool {
        return Err(OpError::dtype(index, "bool", t.dtype()));
    }
    if t.len() != 1 {
        return Err(OpError::shape(format!(
            "input {index} must be a scalar, got shape {:?}",
            t.shape()
        )));
    }
    Ok(t.as_slice::<bool>()?[0])
}

/// `add_bos`, `add_eos`, `reverse` (inputs `first`, `first + 1`, `first + 2`).
fn extra_options(t: [&Tensor; 3], first: usize) -> Result<ExtraOptions, OpError> {
    Ok(ExtraOptions {
        bos: scalar_bool(t[0], first)?,
        eos: scalar_bool(t[1], first + 1)?,
        reverse: scalar_bool(t[2], first + 2)?,
    })
}

fn strings(t: &Tensor, index: usize) -> Result<&[Bytes], OpError> {
    if t.dtype() != DType::String {
        return Err(OpError::dtype(index, "string", t.dtype()));
    }
    Ok(t.as_slice::<Bytes>()?)
}

/// A per-row scalar-or-vector input (`nbest_size`, `alpha`): TF reads element i of a vector.
fn per_row<T: crate::tensor::Element + Copy>(
    t: &Tensor,
    index: usize,
    rows: usize,
    dtype: DType,
) -> Result<Vec<T>, OpError> {
    if t.dtype() != dtype {
        return Err(OpError::dtype(index, dtype.name(), t.dtype()));
    }
    let v = t.as_slice::<T>()?;
    match t.rank() {
        0 => Ok(vec![v[0]; rows]),
        1 if v.len() >= rows => Ok(v[..rows].to_vec()),
        _ => Err(OpError::shape(format!(
            "input {index} must be a scalar or have one element per row, got shape {:?}",
            t.shape()
        ))),
    }
}

fn splits_tensor(splits: Vec<usize>, dtype: DType) -> Result<Tensor, OpError> {
    Ok(if dtype == DType::I32 {
        let v = splits
            .into_iter()
            .map(|s| i32::try_from(s).map_err(|_| OpError::Limit("row split over i32".into())))
            .collect::<Result<Vec<_>, _>>()?;
        Tensor::vector(v)
    } else {
        Tensor::vector(splits.into_iter().map(|s| s as i64).collect::<Vec<_>>())
    })
}

fn splits_dtype(cx: &BuildCtx<'_>) -> Result<DType, OpError> {
    let t = cx.attr_opt_type("Tsplits")?.unwrap_or(DType::I64);
    if !matches!(t, DType::I32 | DType::I64) {
        return Err(OpError::Attr {
            name: "Tsplits".into(),
            what: format!("{t} is not int32 or int64"),
        });
    }
    Ok(t)
}

/// `SentencepieceTokenizeOp` / `SentencepieceTokenizeWithOffsetsOp`.
#[derive(Debug)]
struct Tokenize {
    strings: bool,
    splits: DType,
    offsets: bool,
}

impl Tokenize {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(7)?;
        let out = cx.attr_opt_type("out_type")?.unwrap_or(DType::I32);
        if !matches!(out, DType::I32 | DType::String) {
            return Err(OpError::Attr {
                name: "out_type".into(),
                what: format!("{out} is not int32 or string"),
            });
        }
        if cx.attr_opt_bool("return_nbest") == Some(true) {
            return Err(OpError::Unimplemented(format!(
                "{} with return_nbest=true (n-best lists)",
                cx.op
            )));
        }
        Ok(Box::new(Tokenize {
            strings: out == DType::String,
            splits: splits_dtype(cx)?,
            offsets: cx.op == "SentencepieceTokenizeWithOffsetsOp",
        }))
    }
}

/// One encoded row, in the output form.
#[derive(Default)]
struct Row {
    ids: Vec<i32>,
    pieces: Vec<Vec<u8>>,
    starts: Vec<i64>,
    limits: Vec<i64>,
}

impl Op for Tokenize {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [handle, input, nbest, alpha, bos, eos, reverse] = take_inputs(inputs)?;
        let sp = processor_of(&handle)?;
        let texts = strings(&input, 1)?;
        let rows = texts.len();
        let nbest = per_row::<i32>(&nbest, 2, rows, DType::I32)?;
        let alpha = per_row::<f32>(&alpha, 3, rows, DType::F32)?;
        let opts = extra_options([&bos, &eos, &reverse], 4)?;
        // The normalized text and its offset map take ~9 bytes per normalized byte.
        let max_len = cx.limits().max_tensor_bytes / 16;
        let (want_str, want_off) = (self.strings, self.offsets);
        let one = |i: usize| -> Result<Row, OpError> {
            let text: &[u8] = &texts[i];
            let enc = if nbest[i] == 0 || nbest[i] == 1 {
                sp.encode(text, opts, max_len)
            } else {
                sp.sample_encode(text, nbest[i], alpha[i], opts, max_len)
            }
            .map_err(spm_err)?;
            let mut row = Row::default();
            for t in &enc.tokens {
                if want_str {
                    row.pieces.push(sp.token_text(&enc, t).into_owned());
                } else {
                    row.ids.push(t.id);
                }
                if want_off {
                    row.starts.push(t.begin as i64);
                    row.limits.push(t.end as i64);
                }
            }
            Ok(row)
        };
        let out: Vec<Row> = if rows >= PAR_ROWS {
            (0..rows)
                .into_par_iter()
                .map(one)
                .collect::<Result<_, _>>()?
        } else {
            (0..rows).map(one).collect::<Result<_, _>>()?
        };
        let total: usize = out
            .iter()
            .map(|r| {
                if want_str {
                    r.pieces.len()
                } else {
                    r.ids.len()
                }
            })
            .sum();
        cx.limits()
            .check_alloc(total, if want_str { DType::I64 } else { DType::I32 })?;
        let mut splits = Vec::with_capacity(rows + 1);
        splits.push(0);
        let mut acc = 0;
        for r in &out {
            acc += if want_str {
                r.pieces.len()
            } else {
                r.ids.len()
            };
            splits.push(acc);
        }
        let values = if want_str {
            Tensor::from_strings(&[total], out.iter().flat_map(|r| r.pieces.iter()))?
        } else {
            Tensor::vector(out.iter().flat_map(|r| r.ids.iter().copied()).collect())
        };
        let mut res = vec![values, splits_tensor(splits, self.splits)?];
        if want_off {
            res.push(Tensor::vector(
                out.iter().flat_map(|r| r.starts.iter().copied()).collect(),
            ));
            res.push(Tensor::vector(
                out.iter().flat_map(|r| r.limits.iter().copied()).collect(),
            ));
        }
        Ok(res.into())
    }
    fn is_stateful(&self) -> bool {
        true
    }
}

/// `SentencepieceDetokenizeOp`: one string per row of (ids or pieces, splits).
#[derive(Debug)]
struct Detokenize;

impl Detokenize {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(6)?;
        splits_dtype(cx)?;
        Ok(Box::new(Detokenize))
    }
}

impl Op for Detokenize {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [handle, values, splits, bos, eos, reverse] = take_inputs(inputs)?;
        let sp = processor_of(&handle)?;
        if !matches!(splits.dtype(), DType::I32 | DType::I64) {
            return Err(OpError::dtype(2, "int32 or int64", splits.dtype()));
        }
        let splits = splits.to_i64_vec()?;
        if splits.is_empty() {
            return Err(OpError::invalid(
                "input_splits must have at least 1 element.",
            ));
        }
        let opts = extra_options([&bos, &eos, &reverse], 3)?;
        let rows = splits.len() - 1;
        if values.is_empty() {
            // TF checks the options, then leaves every row empty without calling Decode.
            sp.check_options(opts).map_err(spm_err)?;
            return Ok(tensors![Tensor::from_strings(&[rows], vec![b""; rows])?]);
        }
        let n = values.len() as i64;
        let mut ranges = Vec::with_capacity(rows);
        for w in splits.windows(2) {
            let (a, b) = (w[0], w[1]);
            // TF checks only `a <= n`; anything else would read out of bounds there.
            if a < 0 || b < a || b > n {
                return Err(OpError::invalid(format!(
                    "Splits and values do not match; split {a}..{b} but values size is {n}"
                )));
            }
            ranges.push((a as usize, b as usize));
        }
        let out: Vec<Vec<u8>> = match values.dtype() {
            DType::I32 => {
                let ids = values.as_slice::<i32>()?;
                ranges
                    .iter()
                    .map(|&(a, b)| sp.decode_ids(&ids[a..b], opts))
                    .collect::<Result<_, _>>()
            }
            DType::String => {
                let p = values.as_slice::<Bytes>()?;
                ranges
                    .iter()
                    .map(|&(a, b)| sp.decode_pieces(&p[a..b], opts))
                    .collect::<Result<_, _>>()
            }
            d => return Err(OpError::dtype(1, "int32 or string", d)),
        }
        .map_err(|e| match e {
            SpmError::InvalidId(_) => OpError::invalid(format!("OutOfRange: {e}")),
            e => spm_err(e),
        })?;
        Ok(tensors![Tensor::from_strings(&[rows], out)?])
    }
    fn is_stateful(&self) -> bool {
        true
    }
}

/// `SentencepieceVocabSizeOp`: the piece count, int32 scalar.
#[derive(Debug)]
struct VocabSize;

impl VocabSize {
    fn build(_: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(VocabSize))
    }
}

impl Op for VocabSize {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [handle] = take_inputs(inputs)?;
        let sp = processor_of(&handle)?;
        Ok(tensors![Tensor::scalar(sp.vocab_size() as i32)])
    }
    fn is_stateful(&self) -> bool {
        true
    }
}

/// `SentencepieceIdToStringOp`: pieces of ids, same shape. TF does no bounds check (an id
/// outside the vocabulary crashes the process); here it is an error.
#[derive(Debug)]
struct IdToString;

impl IdToString {
    fn build(_: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(IdToString))
    }
}

impl Op for IdToString {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [handle, ids] = take_inputs(inputs)?;
        let sp = processor_of(&handle)?;
        if ids.dtype() != DType::I32 {
            return Err(OpError::dtype(1, "int32", ids.dtype()));
        }
        let pieces = ids
            .as_slice::<i32>()?
            .iter()
            .map(|&id| sp.id_to_piece(id as i64))
            .collect::<Result<Vec<_>, _>>()
            .map_err(spm_err)?;
        Ok(tensors![Tensor::from_strings(ids.shape(), pieces)?])
    }
    fn is_stateful(&self) -> bool {
        true
    }
}

/// `SentencepieceStringToIdOp`: ids of pieces, same shape; unknown strings give unk.
#[derive(Debug)]
struct StringToId;

impl StringToId {
    fn build(_: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(StringToId))
    }
}

impl Op for StringToId {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [handle, pieces] = take_inputs(inputs)?;
        let sp = processor_of(&handle)?;
        let ids: Vec<i32> = strings(&pieces, 1)?
            .iter()
            .map(|p| sp.piece_to_id(p))
            .collect();
        Ok(tensors![Tensor::from_vec(pieces.shape(), ids)?])
    }
    fn is_stateful(&self) -> bool {
        true
    }
}

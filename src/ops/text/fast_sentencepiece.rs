//! `TFText>FastSentencepieceTokenize` / `TFText>FastSentencepieceDetokenize`: the ops of
//! `text.FastSentencepieceTokenizer`, which run on flatbuffers (`EncoderConfig`,
//! `DecoderConfig`) that tensorflow_text's model_converter.cc builds from a SentencePiece model
//! proto at export and that the graph holds as uint8 Consts.
//! TF reference: tensorflow_text/core/kernels/sentencepiece/{optimized_encoder.cc,
//! optimized_decoder.cc, double_array_trie.h, encoder_config.fbs, decoder_config.fbs,
//! sentencepiece_tokenizer_kernel.cc, sentencepiece_detokenizer_kernel.cc}.
//!
//! This is not sentencepiece's algorithm (that is [`crate::sentencepiece`]): the encoder is
//! tensorflow_text's own. It normalizes greedily with the charsmap trie, treats \t \r \n as
//! whitespace, runs a pure-f32 Viterbi over *bytes* with a one-byte unknown step (consecutive
//! unknown bytes merge into one unknown id), and USER_DEFINED pieces score like any piece. The
//! decoder concatenates pre-converted piece strings. Every quirk is copied as TF has it.
//!
//! The model buffers are untrusted: each read is bounds-checked, a missing table TF would
//! dereference is an error, and normalized text is capped by [`crate::ops::Limits`].
//! Refused by name: `out_type=string` and `Tsplits=int64` on the tokenizer (TF's kernel only
//! writes int32 outputs and aborts otherwise; tensorflow_text never emits them).

use super::flatbuf::{FlatError, Table};
use super::strings;
use crate::ops::{BuildCtx, EvalCtx, Op, OpError, Tensors};
use crate::tensor::{Bytes, DType, Tensor};

const TOKENIZE: &str = "TFText>FastSentencepieceTokenize";
const DETOKENIZE: &str = "TFText>FastSentencepieceDetokenize";

/// `EncoderVersion::SENTENCE_PIECE`, the only version.
const VERSION_SENTENCE_PIECE: u8 = 0;

const SPACE_SYMBOL: &[u8] = "\u{2581}".as_bytes();

/// A `[uint32]` (or `[float]`) vector read in place from the buffer.
#[derive(Clone, Copy)]
struct Words<'a>(&'a [u8]);

impl Words<'_> {
    fn get(&self, i: usize) -> Option<u32> {
        let b = self.0.get(i.checked_mul(4)?..i.checked_mul(4)? + 4)?;
        Some(u32::from_le_bytes(b.try_into().ok()?))
    }
}

/// The darts-clone double array of tensorflow_text's `DoubleArrayTrie`.
#[derive(Clone, Copy)]
struct DoubleArrayTrie<'a> {
    nodes: Words<'a>,
}

fn offset(unit: u32) -> u32 {
    (unit >> 10) << ((unit & 0x200) >> 6)
}

impl DoubleArrayTrie<'_> {
    /// `IteratePrefixMatches`: calls `f(id, length)` for every piece that is a prefix of
    /// `input`, shortest first. A node outside the array ends the walk, as in TF.
    fn prefix_matches(&self, input: &[u8], mut f: impl FnMut(u32, usize)) {
        let Some(root) = self.nodes.get(0) else {
            return;
        };
        let mut pos = offset(root);
        for (i, &c) in input.iter().enumerate() {
            pos ^= c as u32;
            let Some(unit) = self.nodes.get(pos as usize) else {
                return;
            };
            // A leaf unit has the MSB set, so its label never equals a byte.
            if unit & 0x8000_00ff != c as u32 {
                return;
            }
            pos ^= offset(unit);
            let Some(leaf) = self.nodes.get(pos as usize) else {
                return;
            };
            if unit & 0x100 != 0 {
                f(leaf & 0x7fff_ffff, i + 1);
            }
        }
    }

    /// `LongestPrefixMatch`: the last match reported, if any.
    fn longest_prefix_match(&self, input: &[u8]) -> Option<(u32, usize)> {
        let mut m = None;
        self.prefix_matches(input, |id, len| m = Some((id, len)));
        m
    }
}

fn corrupt(op: &str, what: impl std::fmt::Display) -> OpError {
    OpError::invalid(format!("{op}: corrupt model: {what}"))
}

fn flat(op: &'static str) -> impl Fn(FlatError) -> OpError {
    move |e| OpError::invalid(format!("{op}: {e}"))
}

/// The `nodes` vector of a `Trie` sub-table; `None` when the table is absent.
fn trie<'a>(t: &Table<'a>, field: usize) -> Result<Option<DoubleArrayTrie<'a>>, FlatError> {
    let Some(sub) = t.table(field)? else {
        return Ok(None);
    };
    let nodes = sub
        .bytes_of(0, 4)?
        .ok_or_else(|| FlatError("Trie without nodes".into()))?;
    Ok(Some(DoubleArrayTrie {
        nodes: Words(nodes),
    }))
}

/// A parsed `EncoderConfig` (encoder_config.fbs), borrowing the buffer.
struct Encoder<'a> {
    start_code: i32,
    end_code: i32,
    unknown_code: i32,
    unknown_penalty: f32,
    encoding_offset: i32,
    pieces: DoubleArrayTrie<'a>,
    scores: Words<'a>,
    remove_extra_whitespaces: bool,
    add_dummy_prefix: bool,
    escape_whitespaces: bool,
    /// `normalized_prefixes` and `normalized_replacements`, when both are present.
    normalizer: Option<(DoubleArrayTrie<'a>, &'a [u8])>,
}

impl<'a> Encoder<'a> {
    fn parse(buf: &'a [u8]) -> Result<Encoder<'a>, OpError> {
        let e = flat(TOKENIZE);
        let t = Table::root(buf).map_err(&e)?;
        let version = t.u8(0, VERSION_SENTENCE_PIECE).map_err(&e)?;
        if version != VERSION_SENTENCE_PIECE {
            // TF: EncoderResultType::WRONG_CONFIG.
            return Err(OpError::invalid(format!(
                "{TOKENIZE}: Sentencepiece conversion failed (encoder version {version})"
            )));
        }
        let pieces = trie(&t, 6)
            .map_err(&e)?
            .ok_or_else(|| corrupt(TOKENIZE, "EncoderConfig has no pieces trie"))?;
        let scores = t
            .bytes_of(7, 4)
            .map_err(&e)?
            .ok_or_else(|| corrupt(TOKENIZE, "EncoderConfig has no pieces_scores"))?;
        let prefixes = t.table(11).map_err(&e)?;
        let replacements = t.bytes(12).map_err(&e)?;
        let normalizer = match (prefixes, replacements) {
            (Some(_), Some(r)) => Some((trie(&t, 11).map_err(&e)?.expect("present"), r)),
            _ => None,
        };
        Ok(Encoder {
            start_code: t.i32(1, 0).map_err(&e)?,
            end_code: t.i32(2, 0).map_err(&e)?,
            unknown_code: t.i32(3, -1).map_err(&e)?,
            unknown_penalty: t.f32(4, 0.0).map_err(&e)?,
            encoding_offset: t.i32(5, 0).map_err(&e)?,
            pieces,
            scores: Words(scores),
            remove_extra_whitespaces: t.bool(8).map_err(&e)?,
            add_dummy_prefix: t.bool(9).map_err(&e)?,
            escape_whitespaces: t.bool(10).map_err(&e)?,
            normalizer,
        })
    }

    /// `NormalizeString` without the offsets (the op does not output them). `cap` bounds
    /// the normalized length: a replacement can be longer than what it replaces.
    fn normalize(&self, input: &[u8], cap: usize) -> Result<Vec<u8>, OpError> {
        let mut s = Vec::with_capacity(input.len() + 1);
        if input.is_empty() {
            return Ok(s);
        }
        if self.add_dummy_prefix {
            s.push(b' ');
        }
        s.extend_from_slice(input);
        if let Some((trie, repl)) = self.normalizer {
            s = process(&s, cap, |rest| {
                let Some((id, len)) = trie.longest_prefix_match(rest) else {
                    return (0, &[][..]);
                };
                // The longest match only: an invalid id there means "no replacement", even
                // if a shorter match is valid. The replacement is a C string in the pool (a
                // foreign pool may lack the NUL; it then ends at the pool's end).
                match repl.get(id as usize..) {
                    Some(r) => (len, &r[..r.iter().position(|&b| b == 0).unwrap_or(r.len())]),
                    None => (0, &[][..]),
                }
            })?;
        }
        if self.remove_extra_whitespaces {
            s = process(&s, cap, |rest| {
                // A run of two or more whitespace bytes becomes one space; a single one is
                // kept as it is (so a lone \t survives until escaping).
                if rest.first().is_none_or(|&b| !is_whitespace(b)) {
                    return (0, &[][..]);
                }
                let run = rest.iter().take_while(|&&b| is_whitespace(b)).count();
                if run > 1 {
                    (run, &b" "[..])
                } else {
                    (0, &[][..])
                }
            })?;
            // Only one trailing whitespace byte is dropped (leading ones are not).
            if s.last().is_some_and(|&b| is_whitespace(b)) {
                s.pop();
            }
        }
        if self.escape_whitespaces {
            s = process(&s, cap, |rest| match rest.first() {
                Some(&b) if is_whitespace(b) => (1, SPACE_SYMBOL),
                _ => (0, &[][..]),
            })?;
        }
        Ok(s)
    }

    /// `EncodeNormalizedString`: Viterbi over byte positions, f32 scores.
    fn encode(&self, s: &[u8], add_bos: bool, add_eos: bool, reverse: bool) -> Vec<i32> {
        #[derive(Clone, Copy)]
        struct Element {
            score: f32,
            code: i32,
            prev: i64,
        }
        let n = s.len();
        let unk = self.unknown_code;
        let mut lattice = vec![
            Element {
                score: 0.0,
                code: -1,
                prev: -1,
            };
            n + 1
        ];
        for i in 0..n {
            if i > 0 && lattice[i].prev < 0 {
                continue; // unreachable
            }
            let here = lattice[i];
            if unk >= 0 {
                let penalized = here.score + self.unknown_penalty;
                let cur = &mut lattice[i + 1];
                if cur.prev < 0 || cur.score < penalized {
                    *cur = Element {
                        score: penalized,
                        code: unk,
                        // Consecutive unknown bytes merge into one unknown piece.
                        prev: if here.code == unk {
                            here.prev
                        } else {
                            i as i64
                        },
                    };
                }
            }
            self.pieces.prefix_matches(&s[i..], |id, len| {
                let Some(piece) = self.scores.get(id as usize) else {
                    return;
                };
                let score = here.score + f32::from_bits(piece);
                let t = &mut lattice[i + len];
                if t.prev < 0 || t.score < score {
                    *t = Element {
                        score,
                        code: id as i32,
                        prev: i as i64,
                    };
                }
            });
        }
        let mut codes = Vec::new();
        if add_eos {
            codes.push(self.end_code);
        }
        if lattice[n].prev >= 0 {
            let mut pos = n;
            while pos > 0 {
                let e = lattice[pos];
                let code = if e.code != unk {
                    e.code.wrapping_add(self.encoding_offset)
                } else {
                    e.code
                };
                codes.push(code);
                // Every reached position's predecessor lies before it.
                pos = usize::try_from(e.prev).map_or(0, |p| p.min(pos - 1));
            }
        }
        if add_bos {
            codes.push(self.start_code);
        }
        if !reverse {
            codes.reverse();
        }
        codes
    }
}

/// optimized_encoder.cc's `is_whitespace`: space, \t, \r, \n (not sentencepiece's rule).
fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// `process_string`: at each position `pc` returns (bytes consumed, replacement); 0 consumed
/// copies one byte.
fn process<'r>(
    input: &[u8],
    cap: usize,
    pc: impl Fn(&[u8]) -> (usize, &'r [u8]),
) -> Result<Vec<u8>, OpError> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let (consumed, rep) = pc(&input[i..]);
        if consumed == 0 {
            out.push(input[i]);
            i += 1;
            continue;
        }
        out.extend_from_slice(rep);
        if out.len() > cap {
            return Err(OpError::Limit(format!(
                "{TOKENIZE}: normalized text exceeds {cap} bytes"
            )));
        }
        i += consumed;
    }
    Ok(out)
}

fn model_bytes<'t>(op: &str, t: &'t Tensor) -> Result<&'t [u8], OpError> {
    t.as_slice::<u8>()
        .map_err(|_| OpError::invalid(format!("{op}: sp_model must be uint8, got {}", t.dtype())))
}

fn scalar_bool(op: &str, t: &Tensor, name: &str) -> Result<bool, OpError> {
    match t.as_slice::<bool>() {
        Ok([b]) => Ok(*b),
        _ => Err(OpError::invalid(format!(
            "{op}: {name} must be a bool scalar, got {} of shape {:?}",
            t.dtype(),
            t.shape()
        ))),
    }
}

/// `TFText>FastSentencepieceTokenize` (inputs `sp_model: uint8`, `input: string` [n],
/// `nbest_size`, `alpha` (both ignored by TF's kernel), `add_bos`, `add_eos`, `reverse`):
/// int32 ids and int32 row splits.
#[derive(Debug)]
pub(super) struct FastSentencepieceTokenize {
    out_type: DType,
    tsplits: DType,
}

impl FastSentencepieceTokenize {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(FastSentencepieceTokenize {
            out_type: cx.attr_opt_type("out_type")?.unwrap_or(DType::I32),
            tsplits: cx.attr_opt_type("Tsplits")?.unwrap_or(DType::I32),
        }))
    }
}

impl Op for FastSentencepieceTokenize {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        if self.out_type != DType::I32 || self.tsplits != DType::I32 {
            return Err(OpError::Unimplemented(format!(
                "{TOKENIZE} with out_type={} and Tsplits={}: TF's kernel writes int32 ids and \
                 int32 splits only",
                self.out_type, self.tsplits
            )));
        }
        let [model, input, _nbest, _alpha, bos, eos, reverse] = crate::ops::take_inputs(inputs)?;
        let text = strings(&input, 1)?;
        let add_bos = scalar_bool(TOKENIZE, &bos, "add_bos")?;
        let add_eos = scalar_bool(TOKENIZE, &eos, "add_eos")?;
        let reverse = scalar_bool(TOKENIZE, &reverse, "reverse")?;
        let enc = Encoder::parse(model_bytes(TOKENIZE, &model)?)?;
        // Normalized bytes, lattice (12 bytes per byte) and codes must fit a tensor.
        let cap = cx.call.max_tensor_bytes / 16;
        let mut ids: Vec<i32> = Vec::new();
        let mut splits = Vec::with_capacity(text.len() + 1);
        splits.push(0i32);
        for s in text {
            let norm = enc.normalize(s, cap)?;
            cx.call
                .check_alloc(ids.len() + norm.len() + 2, DType::I32)?;
            ids.extend(enc.encode(&norm, add_bos, add_eos, reverse));
            let n = i32::try_from(ids.len()).map_err(|_| {
                OpError::invalid(format!(
                    "{TOKENIZE}: Encoded input must contain less than 2^31 characters."
                ))
            })?;
            splits.push(n);
        }
        Ok(tensors![Tensor::vector(ids), Tensor::vector(splits)])
    }
}

/// A parsed `DecoderConfig` (decoder_config.fbs).
struct Decoder<'a> {
    encoding_offset: i32,
    pieces: Vec<&'a [u8]>,
    remove_dummy_prefix: bool,
}

impl<'a> Decoder<'a> {
    fn parse(buf: &'a [u8]) -> Result<Decoder<'a>, OpError> {
        let e = flat(DETOKENIZE);
        let t = Table::root(buf).map_err(&e)?;
        let version = t.u8(0, VERSION_SENTENCE_PIECE).map_err(&e)?;
        if version != VERSION_SENTENCE_PIECE {
            return Err(OpError::invalid(format!(
                "{DETOKENIZE}: Sentencepiece conversion failed (decoder version {version})"
            )));
        }
        let pieces = t
            .strings(2)
            .map_err(&e)?
            .ok_or_else(|| corrupt(DETOKENIZE, "DecoderConfig has no decode_pieces"))?;
        Ok(Decoder {
            encoding_offset: t.i32(1, 0).map_err(&e)?,
            // TF appends `c_str()`: a piece ends at its first NUL.
            pieces: pieces
                .into_iter()
                .map(|p| &p[..p.iter().position(|&b| b == 0).unwrap_or(p.len())])
                .collect(),
            remove_dummy_prefix: t.bool(5).map_err(&e)?,
        })
    }

    /// `DecodeString`.
    fn decode(&self, codes: &[i32], out: &mut Vec<u8>) -> Result<(), OpError> {
        let mut strip = self.remove_dummy_prefix;
        for &code in codes {
            let real = code.wrapping_sub(self.encoding_offset);
            // TF compares the int with the unsigned size: negative ids are out of range too.
            let Some(&piece) = self.pieces.get(real as u32 as usize) else {
                return Err(OpError::invalid(format!(
                    "{DETOKENIZE}: Sentencepiece conversion failed: id {code} is not in [{}, {})",
                    self.encoding_offset,
                    self.encoding_offset as i64 + self.pieces.len() as i64
                )));
            };
            let piece = match piece {
                [b' ', rest @ ..] if strip => rest,
                p => p,
            };
            out.extend_from_slice(piece);
            strip = false;
        }
        Ok(())
    }
}

/// `TFText>FastSentencepieceDetokenize` (inputs `sp_model: uint8`, `input_values: int32`,
/// `input_splits: Tsplits`): one string per row.
#[derive(Debug)]
pub(super) struct FastSentencepieceDetokenize;

impl FastSentencepieceDetokenize {
    pub(super) fn build(_: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(FastSentencepieceDetokenize))
    }
}

impl Op for FastSentencepieceDetokenize {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [model, values, splits] = crate::ops::take_inputs(inputs)?;
        let codes = values
            .as_slice::<i32>()
            .map_err(|_| OpError::dtype(1, "int32", values.dtype()))?;
        let splits: Vec<i64> = match splits.dtype() {
            DType::I32 => splits
                .as_slice::<i32>()?
                .iter()
                .map(|&v| v as i64)
                .collect(),
            DType::I64 => splits.as_slice::<i64>()?.to_vec(),
            d => return Err(OpError::dtype(2, "int32 or int64", d)),
        };
        if splits.is_empty() {
            return Err(OpError::invalid(format!(
                "{DETOKENIZE}: input_splits must have at least 1 element."
            )));
        }
        let dec = Decoder::parse(model_bytes(DETOKENIZE, &model)?)?;
        let mut rows = Vec::with_capacity(splits.len() - 1);
        let mut at = 0usize;
        let mut bytes = 0u128;
        for w in splits.windows(2) {
            // TF takes each row's size as an int (a difference of splits, truncated) and reads
            // rows one after another from the start of the values: splits[0] is not used.
            let size = w[1].wrapping_sub(w[0]) as i32;
            let end = usize::try_from(size)
                .ok()
                .and_then(|n| at.checked_add(n))
                .filter(|&e| e <= codes.len())
                .ok_or_else(|| {
                    OpError::invalid(format!(
                        "{DETOKENIZE}: input_splits must be monotonically non-decreasing and \
                         within bounds."
                    ))
                })?;
            let mut text = Vec::new();
            dec.decode(&codes[at..end], &mut text)?;
            at = end;
            bytes += text.len() as u128 + 16;
            cx.call.check_bytes(bytes)?;
            rows.push(Bytes::from(text));
        }
        Ok(tensors![Tensor::vector(rows)])
    }
}

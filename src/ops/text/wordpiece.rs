//! `WordpieceTokenizeWithOffsets` (tensorflow_text core/kernels/wordpiece_kernel.cc,
//! wordpiece_tokenizer.cc `WordpieceTokenize` / `TokenizeL2RGreedy`): greedy longest-match-first
//! WordPiece over a vocabulary lookup table, with byte offsets inside each word.
//!
//! Per word: longer than `max_bytes_per_word` bytes -> one piece, the unknown token at
//! (0, len(unknown token)) (TF quirk: not the word's length) or the word itself. Otherwise,
//! from each start, candidate ends are the next character boundaries (a maximal ill-formed
//! subsequence counts as one character, like ICU's `U8_NEXT`), at most
//! `max_chars_per_token` of them when that is > 0; the longest candidate in the vocabulary
//! wins, prefixed by the suffix indicator past the start. No candidate: with
//! `split_unknown_characters` one character becomes the unknown token (prefixed too:
//! "##[UNK]"); else the word's pieces so far are dropped and it becomes one unknown piece at
//! (0, len(word)). "In the vocabulary" means the table's value is not -1 (the kernel's own
//! default; the table's default is not used).

use rayon::prelude::*;

use super::strings;
use crate::ops::lookup::with_string_table;
use crate::ops::{take_inputs, BuildCtx, EvalCtx, Op, OpError, Tensors};
use crate::tensor::{Bytes, DType, Tensor};

/// Words at least this many are tokenized on rayon's threads.
const PAR_WORDS: usize = 512;

#[derive(Debug)]
pub(super) struct Wordpiece {
    suffix: Vec<u8>,
    max_bytes_per_word: i64,
    max_chars_per_token: i64,
    use_unknown_token: bool,
    unknown_token: Bytes,
    split_unknown_characters: bool,
    row_splits: bool,
}

impl Wordpiece {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        let row_splits = match cx.attr_opt_str("output_row_partition_type").as_deref() {
            None | Some("row_lengths") => false,
            Some("row_splits") => true,
            Some(other) => {
                return Err(OpError::Attr {
                    name: "output_row_partition_type".into(),
                    what: format!("unexpected value {other:?}"),
                })
            }
        };
        Ok(Box::new(Wordpiece {
            suffix: cx
                .attr_opt_bytes("suffix_indicator")
                .unwrap_or(b"##")
                .to_vec(),
            max_bytes_per_word: cx.attr_opt_i64("max_bytes_per_word").unwrap_or(100),
            max_chars_per_token: cx.attr_opt_i64("max_chars_per_token").unwrap_or(0),
            use_unknown_token: cx.attr_opt_bool("use_unknown_token").unwrap_or(true),
            unknown_token: Bytes::copy_from_slice(
                cx.attr_opt_bytes("unknown_token").unwrap_or(b"[UNK]"),
            ),
            split_unknown_characters: cx
                .attr_opt_bool("split_unknown_characters")
                .unwrap_or(false),
            row_splits,
        }))
    }
}

/// Byte length of the character at the start of `s` (non-empty), or of the maximal ill-formed
/// subsequence there.
pub(super) fn char_len(s: &[u8]) -> usize {
    if s[0] < 0x80 {
        return 1;
    }
    let w = &s[..s.len().min(4)];
    match std::str::from_utf8(w) {
        Ok(v) => v.chars().next().map_or(1, char::len_utf8),
        Err(e) if e.valid_up_to() > 0 => {
            let v = std::str::from_utf8(&w[..e.valid_up_to()]).unwrap_or_default();
            v.chars().next().map_or(1, char::len_utf8)
        }
        Err(e) => e.error_len().unwrap_or(w.len()),
    }
}

/// Pieces: (piece, start, limit).
type Pieces = Vec<(Bytes, i64, i64)>;

/// Words per task when a long input is tokenized on rayon's threads.
const CHUNK_WORDS: usize = 256;

/// The pieces of a run of words, flat, with each word's piece count: one buffer per run
/// instead of a vector per word (and the lookup key and candidate ends reused across words).
struct Run {
    pieces: Pieces,
    counts: Vec<usize>,
}

impl Wordpiece {
    fn tokenize_run(&self, words: &[Bytes], vocab: &dyn Fn(&[u8]) -> Option<i64>) -> Run {
        let mut run = Run {
            pieces: Vec::with_capacity(words.len() + words.len() / 2),
            counts: Vec::with_capacity(words.len()),
        };
        let (mut key, mut ends) = (Vec::new(), Vec::new());
        for w in words {
            let before = run.pieces.len();
            self.tokenize(w, vocab, &mut run.pieces, &mut key, &mut ends);
            run.counts.push(run.pieces.len() - before);
        }
        run
    }

    /// Appends `word`'s pieces to `out` (`key`, `ends`: scratch).
    fn tokenize(
        &self,
        word: &Bytes,
        vocab: &dyn Fn(&[u8]) -> Option<i64>,
        out: &mut Pieces,
        key: &mut Vec<u8>,
        ends: &mut Vec<usize>,
    ) {
        let len = word.len();
        if len as i64 > self.max_bytes_per_word {
            if self.use_unknown_token {
                out.push((
                    self.unknown_token.clone(),
                    0,
                    self.unknown_token.len() as i64,
                ));
            } else {
                out.push((word.clone(), 0, len as i64));
            }
            return;
        }
        let first = out.len();
        let mut start = 0;
        while start < len {
            ends.clear();
            let mut i = start;
            while i < len {
                i += char_len(&word[i..]);
                ends.push(i);
                if self.max_chars_per_token > 0 && ends.len() as i64 == self.max_chars_per_token {
                    break;
                }
            }
            let mut found = None;
            for &end in ends.iter().rev() {
                key.clear();
                if start > 0 {
                    key.extend_from_slice(&self.suffix);
                }
                key.extend_from_slice(&word[start..end]);
                if vocab(key).is_some_and(|v| v != -1) {
                    found = Some(end);
                    break;
                }
            }
            match found {
                Some(end) => {
                    let piece = if start > 0 {
                        Bytes::copy_from_slice(key)
                    } else {
                        word.slice(start..end)
                    };
                    out.push((piece, start as i64, end as i64));
                    start = end;
                }
                None if self.split_unknown_characters => {
                    let end = ends[0];
                    let body: &[u8] = if self.use_unknown_token {
                        &self.unknown_token
                    } else {
                        &word[start..end]
                    };
                    let piece = if start > 0 {
                        let mut p = self.suffix.clone();
                        p.extend_from_slice(body);
                        Bytes::from(p)
                    } else {
                        Bytes::copy_from_slice(body)
                    };
                    out.push((piece, start as i64, end as i64));
                    start = end;
                }
                None => {
                    out.truncate(first);
                    let piece = if self.use_unknown_token {
                        self.unknown_token.clone()
                    } else {
                        word.clone()
                    };
                    out.push((piece, 0, len as i64));
                    return;
                }
            }
        }
    }
}

impl Op for Wordpiece {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [input, table] = take_inputs(inputs)?;
        let words = strings(&input, 0)?;
        let runs: Vec<Run> = with_string_table(&table, |vocab| {
            Ok(if words.len() >= PAR_WORDS {
                words
                    .par_chunks(CHUNK_WORDS)
                    .map(|c| self.tokenize_run(c, vocab))
                    .collect()
            } else {
                vec![self.tokenize_run(words, vocab)]
            })
        })?;
        let n: usize = runs.iter().map(|r| r.pieces.len()).sum();
        cx.call.check_alloc(n, DType::String)?;
        let mut values = Vec::with_capacity(n);
        let mut starts = Vec::with_capacity(n);
        let mut limits = Vec::with_capacity(n);
        let mut partition = Vec::with_capacity(words.len() + 1);
        if self.row_splits {
            partition.push(0i64);
        }
        for run in runs {
            for &k in &run.counts {
                let k = k as i64;
                partition.push(if self.row_splits {
                    partition.last().copied().unwrap_or(0) + k
                } else {
                    k
                });
            }
            for (p, s, l) in run.pieces {
                values.push(p);
                starts.push(s);
                limits.push(l);
            }
        }
        Ok(tensors![
            Tensor::from_vec(&[n], values)?,
            Tensor::vector(partition),
            Tensor::vector(starts),
            Tensor::vector(limits),
        ])
    }
}

//! `FastWordpieceTokenizeWithOffsets`, `TFText>FastWordpieceDetokenize` and `FastBertNormalize`:
//! the ops of `text.FastWordpieceTokenizer` / `text.FastBertTokenizer`, which run on flatbuffer
//! models built by tensorflow_text's Python at export and stored as uint8 Consts.
//! TF reference: tensorflow_text/core/kernels/fast_wordpiece_tokenizer.cc (LinMaxMatch over a
//! darts-clone trie with failure links and failure pops), fast_wordpiece_tokenizer_utils.h,
//! fast_bert_normalizer.h, and their `*_kernel_template.h`.
//!
//! The tokenizer interprets the model's trie and failure structures exactly as TF's kernel
//! does, so it matches whatever the builder stored. The model is untrusted: every array read is
//! bounds-checked, every token must lie inside its word, and a corrupt model gives an error.

use icu_properties::props::GeneralCategory;
use icu_properties::CodePointMapData;

use super::flatbuf::{Cursor, FlatError, Table, Trie};
use super::strings;
use super::tokenize::{in_unicode_16, is_white_space, u8_next};
use crate::ops::{BuildCtx, EvalCtx, Op, OpError, Tensors};
use crate::tensor::{Bytes, DType, Tensor};

impl From<FlatError> for OpError {
    fn from(e: FlatError) -> OpError {
        OpError::invalid(e)
    }
}

/// The model buffer input (a uint8 vector).
fn model_bytes(t: &Tensor, index: usize) -> Result<&[u8], OpError> {
    t.as_slice::<u8>()
        .map_err(|_| OpError::dtype(index, "uint8", t.dtype()))
}

/// Unicode 16 general category P* (ICU `u_ispunct` in TF's ICU 77): ICU4X's data, with code
/// points not yet assigned in Unicode 16 excluded.
fn u_ispunct(c: u32) -> bool {
    use GeneralCategory as G;
    let g = CodePointMapData::<GeneralCategory>::new().get32(c);
    matches!(
        g,
        G::ConnectorPunctuation
            | G::DashPunctuation
            | G::OpenPunctuation
            | G::ClosePunctuation
            | G::InitialPunctuation
            | G::FinalPunctuation
            | G::OtherPunctuation
    ) && in_unicode_16(c)
}

/// `fast_wordpiece_tokenizer_utils::IsPunctuationOrChineseChar` (U_SENTINEL = -1 is neither).
fn is_punct_or_chinese(c: i64) -> bool {
    let Ok(cp) = u32::try_from(c) else {
        return false;
    };
    matches!(cp,
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2A6DF | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F | 0x2B820..=0x2CEAF | 0xF900..=0xFAFF | 0x2F800..=0x2FA1F
        | 33..=47 | 58..=64 | 91..=96 | 123..=126)
        || (cp <= 0x10FFFF && u_ispunct(cp))
}

const NULL_NODE: u32 = u32::MAX;

/// A parsed `FastWordpieceTokenizerConfig`.
#[derive(Debug)]
struct Model {
    trie: Trie,
    /// (failure_link, failure_pops_offset_length) per trie node.
    failure: Vec<(u32, u32)>,
    pops_pool: Vec<u32>,
    suffix_root: u32,
    max_bytes: i64,
    suffix: Vec<u8>,
    unk: Vec<u8>,
    unk_id: i64,
    precomputed: Option<Vec<u32>>,
    punct_failure_node: u32,
    end_to_end: bool,
    support_detokenization: bool,
    vocab: Option<Vec<Vec<u8>>>,
    is_suffix: Option<Vec<u8>>,
}

impl Model {
    fn parse(buf: &[u8]) -> Result<Model, FlatError> {
        let t = Table::root(buf)?;
        let trie = t.u32s(0)?.ok_or_else(|| {
            FlatError("FastWordpieceTokenizerConfig or its trie_array is null.".into())
        })?;
        let failure = t.u32_pairs(1)?.unwrap_or_default();
        Ok(Model {
            trie: Trie::new(trie)?,
            failure,
            pops_pool: t.u32s(2)?.unwrap_or_default(),
            suffix_root: t.u32(3, 0)?,
            max_bytes: t.i32(4, 0)? as i64,
            suffix: t.string(5)?.unwrap_or_default().to_vec(),
            unk: t.string(6)?.unwrap_or_default().to_vec(),
            unk_id: t.i32(7, 0)? as i64,
            precomputed: t.u32s(8)?,
            punct_failure_node: t.u32(9, 0)?,
            end_to_end: t.bool(10)?,
            support_detokenization: t.bool(11)?,
            vocab: t
                .strings(12)?
                .map(|v| v.into_iter().map(<[u8]>::to_vec).collect()),
            is_suffix: t.bytes(13)?.map(<[u8]>::to_vec),
        })
    }
}

fn token_id(enc: u32) -> i64 {
    ((enc & 0x3FFF_FF00) >> 8) as i64
}

fn token_len(enc: u32) -> usize {
    (enc & 0xFF) as usize + 1
}

fn is_suffix_token(enc: u32) -> bool {
    enc >> 30 != 0
}

/// Output of one call, all rows appended.
#[derive(Default)]
struct Out {
    pieces: Vec<Bytes>,
    ids: Vec<i64>,
    starts: Vec<i64>,
    ends: Vec<i64>,
}

impl Out {
    fn truncate(&mut self, n: usize) {
        self.pieces.truncate(n);
        self.ids.truncate(n);
        self.starts.truncate(n);
        self.ends.truncate(n);
    }
}

fn corrupt(what: &str) -> FlatError {
    FlatError(format!("FastWordpieceTokenizerConfig: {what}"))
}

/// The tokenizer state over one model (TF's `FastWordpieceTokenizer`).
struct Tokenizer<'m> {
    m: &'m Model,
}

impl Tokenizer<'_> {
    fn append(
        &self,
        word: &[u8],
        word_off: usize,
        cur: &mut usize,
        enc: u32,
        out: &mut Out,
    ) -> Result<(), FlatError> {
        let id = token_id(enc);
        let mut len = token_len(enc);
        if *cur == 0 && is_suffix_token(enc) {
            len += self.m.suffix.len();
        }
        // In a well-formed model every popped token lies inside the word.
        let sub = word
            .get(*cur..*cur + len)
            .ok_or_else(|| corrupt("a token runs past the end of its word"))?;
        let sub = if id == self.m.unk_id {
            &self.m.unk[..]
        } else {
            sub
        };
        let piece = if *cur != 0 {
            [&self.m.suffix[..], sub].concat()
        } else {
            sub.to_vec()
        };
        out.pieces.push(Bytes::from(piece));
        out.ids.push(id);
        out.starts.push((word_off + *cur) as i64);
        out.ends.push((word_off + *cur + len) as i64);
        *cur += len;
        Ok(())
    }

    fn failure(&self, node: u32) -> Result<(u32, u32), FlatError> {
        self.m
            .failure
            .get(node as usize)
            .copied()
            .ok_or_else(|| corrupt("failure_struct_array is shorter than the trie"))
    }

    fn follow_failure(
        &self,
        word: &[u8],
        word_off: usize,
        cur: &mut usize,
        node: &mut Cursor,
        out: &mut Out,
    ) -> Result<bool, FlatError> {
        if let Some(d) = self.m.trie.data(node)? {
            self.append(word, word_off, cur, d as u32, out)?;
            *node = self.m.trie.cursor(self.failure(node.node)?.0)?;
            return Ok(true);
        }
        let (link, pops) = self.failure(node.node)?;
        if link == NULL_NODE {
            return Ok(false);
        }
        let (off, n) = ((pops >> 8) as usize, (pops & 0xFF) as usize + 1);
        let pops = self
            .m
            .pops_pool
            .get(off..off + n)
            .ok_or_else(|| corrupt("failure pops out of range"))?;
        for &enc in pops {
            self.append(word, word_off, cur, enc, out)?;
        }
        *node = self.m.trie.cursor(link)?;
        Ok(true)
    }

    fn unk(&self, word_off: usize, size: usize, orig: &mut usize, out: &mut Out) {
        out.truncate(*orig);
        out.pieces.push(Bytes::from(self.m.unk.clone()));
        out.ids.push(self.m.unk_id);
        out.starts.push(word_off as i64);
        out.ends.push((word_off + size) as i64);
        *orig += 1;
    }

    /// `TryHandleTheInputWordBeingSuffixIndicatorItself`.
    fn suffix_itself(
        &self,
        word: &[u8],
        word_off: usize,
        node: &Cursor,
        cur: &mut usize,
        orig: usize,
        out: &mut Out,
    ) -> Result<bool, FlatError> {
        if node.node != self.m.suffix_root || out.ids.len() != orig {
            return Ok(false);
        }
        let pre = self
            .m
            .precomputed
            .as_ref()
            .ok_or_else(|| corrupt("precomputed_result_for_suffix_indicator is null"))?;
        if pre.len() == 1 && token_id(pre[0]) == self.m.unk_id {
            let mut o = orig;
            self.unk(word_off, word.len(), &mut o, out);
            return Ok(true);
        }
        for &enc in pre {
            self.append(word, word_off, cur, enc, out)?;
        }
        Ok(true)
    }

    fn handle_remaining(
        &self,
        word: &[u8],
        word_off: usize,
        node: &mut Cursor,
        orig: &mut usize,
        cur: &mut usize,
        out: &mut Out,
    ) -> Result<(), FlatError> {
        if node.node == 0 {
            return Ok(());
        }
        if self.suffix_itself(word, word_off, node, cur, *orig, out)? {
            *orig = out.ids.len();
            return Ok(());
        }
        while node.node != self.m.suffix_root && node.node != self.m.punct_failure_node {
            if !self.follow_failure(word, word_off, cur, node, out)? {
                self.unk(word_off, word.len(), orig, out);
                return Ok(());
            }
        }
        *orig = out.ids.len();
        Ok(())
    }

    fn single_word(&self, word: &[u8], out: &mut Out) -> Result<(), FlatError> {
        if word.is_empty() {
            return Ok(());
        }
        let mut orig = out.ids.len();
        // TF compares size_t with int: a negative max_bytes_per_token never triggers.
        if self.m.max_bytes >= 0 && word.len() as i64 > self.m.max_bytes {
            self.unk(0, word.len(), &mut orig, out);
            return Ok(());
        }
        let mut cur = 0;
        let mut node = self.m.trie.root();
        for &ch in word {
            while !self.m.trie.step(&mut node, &[ch])? {
                if !self.follow_failure(word, 0, &mut cur, &mut node, out)? {
                    self.unk(0, word.len(), &mut orig, out);
                    return Ok(());
                }
            }
        }
        self.handle_remaining(word, 0, &mut node, &mut orig, &mut cur, out)
    }

    /// `SkipTheRemainingOfWordAndTrailingWhiteSpaces`.
    fn skip_rest(text: &[u8], pos: &mut usize) -> usize {
        let mut end = *pos;
        while *pos < text.len() {
            let (c, l) = u8_next(text, *pos);
            let c = c.map_or(-1, |c| c as i64);
            let next = *pos + l;
            if is_white_space(c) {
                *pos = next;
                break;
            }
            if is_punct_or_chinese(c) {
                break;
            }
            end = next;
            *pos = next;
        }
        end
    }

    /// `TokenizeTextImpl`: end-to-end mode (split on whitespace and punctuation).
    fn text(&self, text: &[u8], out: &mut Out) -> Result<(), OpError> {
        let n = text.len();
        let mut prev_pos: Option<usize> = None;
        let mut cur_pos = 0usize;
        let mut next_pos = 0usize;
        let mut orig = out.ids.len();
        let mut prev_char: i64 = -1;
        let mut cur_char: i64 = -1;
        let no_progress =
            || OpError::invalid("Failed to make any progress in tokenizing the input text.");
        while cur_pos < n {
            if prev_pos == Some(cur_pos) {
                return Err(no_progress());
            }
            prev_pos = Some(cur_pos);
            let mut cur = 0usize;
            let mut node = self.m.trie.root();
            let mut word_len = 0usize;
            let word_off = cur_pos;
            let substr = &text[cur_pos..];
            let mut prev_inner: Option<usize> = None;
            'inner: while cur_pos < n {
                if prev_inner == Some(cur_pos) {
                    return Err(no_progress());
                }
                prev_inner = Some(cur_pos);
                prev_char = cur_char;
                let (c, l) = u8_next(text, cur_pos);
                cur_char = c.map_or(-1, |c| c as i64);
                next_pos = cur_pos + l;
                if (word_len + l) as i64 > self.m.max_bytes {
                    break;
                }
                while !self.m.trie.step(&mut node, &text[cur_pos..next_pos])? {
                    if !self.follow_failure(substr, word_off, &mut cur, &mut node, out)? {
                        break 'inner;
                    }
                }
                word_len += l;
                cur_pos = next_pos;
            }
            if cur_pos >= n {
                self.handle_remaining(substr, word_off, &mut node, &mut orig, &mut cur, out)?;
                break;
            }
            let ws = is_white_space(cur_char);
            if ws
                || is_punct_or_chinese(cur_char)
                || (cur_pos != 0 && is_punct_or_chinese(prev_char))
            {
                let cur_str = &substr[..cur_pos - word_off];
                self.handle_remaining(cur_str, word_off, &mut node, &mut orig, &mut cur, out)?;
                if ws {
                    cur_pos = next_pos;
                } else if cur_str.is_empty() {
                    cur_pos = next_pos;
                    self.unk(word_off, cur_pos - word_off, &mut orig, out);
                }
                continue;
            }
            cur_pos = next_pos;
            let end = Self::skip_rest(text, &mut cur_pos);
            self.unk(word_off, end - word_off, &mut orig, out);
        }
        Ok(())
    }
}

/// `FastWordpieceTokenizeWithOffsets` (inputs `input_values: string` [n], `wp_model: uint8`):
/// outputs subwords, int64 ids, row splits and byte offsets.
#[derive(Debug)]
pub(super) struct FastWordpiece;

impl FastWordpiece {
    pub(super) fn build(_: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(FastWordpiece))
    }
}

impl Op for FastWordpiece {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [values, model] = crate::ops::take_inputs(inputs)?;
        let input = strings(&values, 0)?;
        let m = Model::parse(model_bytes(&model, 1)?)?;
        let tok = Tokenizer { m: &m };
        let mut out = Out::default();
        let mut splits = vec![0i64];
        for s in input {
            // At most one token per input byte (plus one per row), so the outputs are bounded.
            cx.call
                .check_alloc(out.ids.len() + s.len() + 1, DType::I64)?;
            if m.end_to_end {
                tok.text(s, &mut out)?;
            } else {
                tok.single_word(s, &mut out)?;
            }
            splits.push(out.ids.len() as i64);
        }
        Ok(tensors![
            Tensor::vector(out.pieces),
            Tensor::vector(out.ids),
            Tensor::vector(splits),
            Tensor::vector(out.starts),
            Tensor::vector(out.ends),
        ])
    }
}

/// `TFText>FastWordpieceDetokenize` (inputs `input_values: int32`, `input_row_splits: int64`,
/// `wp_model: uint8`): per row, subwords joined into words (a suffix token continues the
/// previous word), words joined with " ".
#[derive(Debug)]
pub(super) struct FastWordpieceDetokenize;

impl FastWordpieceDetokenize {
    pub(super) fn build(_: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(FastWordpieceDetokenize))
    }
}

impl Op for FastWordpieceDetokenize {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [values, splits, model] = crate::ops::take_inputs(inputs)?;
        if values.dtype() != DType::I32 {
            return Err(OpError::dtype(0, "int32", values.dtype()));
        }
        if splits.dtype() != DType::I64 {
            return Err(OpError::dtype(1, "int64", splits.dtype()));
        }
        let ids = values.as_slice::<i32>()?;
        let s = splits.as_slice::<i64>()?;
        if s.windows(2).any(|w| w[0] > w[1])
            || s.first().is_some_and(|&a| a < 0)
            || s.last().is_some_and(|&b| b as usize > ids.len())
        {
            return Err(OpError::invalid(
                "input_row_splits must be non-decreasing and within input_values",
            ));
        }
        let m = Model::parse(model_bytes(&model, 2)?)?;
        if !m.support_detokenization {
            return Err(OpError::invalid(
                "Detokenize function is only enabled when support_detokenization is true in \
                 the config flatbuffer. Please rebuild the model flatbuffer by setting \
                 support_detokenization=true.",
            ));
        }
        let (Some(vocab), Some(is_suffix)) = (&m.vocab, &m.is_suffix) else {
            return Err(OpError::invalid(
                "Missing vocab_array or vocab_is_suffix_array in config.",
            ));
        };
        let mut rows = Vec::with_capacity(s.len().saturating_sub(1));
        let mut bytes = 0usize;
        for w in s.windows(2) {
            let mut words: Vec<Vec<u8>> = Vec::new();
            let mut word: Option<Vec<u8>> = None;
            for &id in &ids[w[0] as usize..w[1] as usize] {
                let (Some(v), Some(&suf)) = (
                    usize::try_from(id).ok().and_then(|i| vocab.get(i)),
                    usize::try_from(id).ok().and_then(|i| is_suffix.get(i)),
                ) else {
                    return Err(OpError::invalid(format!("Token ID out of bounds: {id}")));
                };
                let suf = suf != 0;
                if !suf {
                    words.extend(word.take());
                }
                let cur = word.get_or_insert_with(|| {
                    // A suffix token opening the row keeps its suffix indicator.
                    if suf {
                        m.suffix.clone()
                    } else {
                        Vec::new()
                    }
                });
                cur.extend_from_slice(v);
                bytes += v.len() + 1;
            }
            words.extend(word);
            cx.call.check_bytes(bytes as u128)?;
            rows.push(Bytes::from(words.join(&b" "[..])));
        }
        Ok(tensors![Tensor::vector(rows)])
    }
}

/// A parsed `FastBertNormalizerModel`.
struct Normalizer {
    trie: Trie,
    zero: i32,
    pool: Vec<u8>,
}

impl Normalizer {
    fn parse(buf: &[u8]) -> Result<Normalizer, FlatError> {
        let t = Table::root(buf)?;
        let (Some(trie), Some(pool)) = (t.u32s(1)?, t.bytes(3)?) else {
            return Err(FlatError(
                "FastBertNormalizerModel or its required fields are null".into(),
            ));
        };
        Ok(Normalizer {
            trie: Trie::new(trie)?,
            zero: t.i32(2, 0)?,
            pool: pool.to_vec(),
        })
    }

    fn lookup(&self, cp: &[u8]) -> Result<i32, FlatError> {
        if cp.first().is_none_or(|&b| b == 0) {
            return Ok(self.zero);
        }
        let mut c = self.trie.root();
        if !self.trie.step(&mut c, cp)? {
            return Ok(0);
        }
        Ok(self.trie.data(&c)?.unwrap_or(0))
    }

    /// `NormalizeText`: one code point at a time (ICU `U8_FWD_1`, so a maximal ill-formed
    /// subpart is one unit, looked up like any other and normally copied). Returns `None` when
    /// the output equals the input; `offsets` gets one entry per output byte plus the end.
    fn normalize(
        &self,
        s: &[u8],
        offsets: Option<&mut Vec<i64>>,
    ) -> Result<Option<Vec<u8>>, FlatError> {
        let mut out = Vec::new();
        let mut offs = Vec::new();
        let mut last = 0usize;
        let mut pos = 0usize;
        while pos < s.len() {
            let (_, l) = u8_next(s, pos);
            let data = self.lookup(&s[pos..pos + l])? as u32;
            if data & 0x4000_0000 == 0 {
                pos += l;
                continue;
            }
            let len = (data & 0x3F) as usize;
            let off = ((data & 0x3FFF_FFC0) >> 6) as usize;
            // TF returns "" for a replacement outside the pool.
            let rep = if len == 0 {
                &[][..]
            } else {
                self.pool.get(off..off + len).unwrap_or(&[])
            };
            out.extend_from_slice(&s[last..pos]);
            offs.extend(last as i64..pos as i64);
            out.extend_from_slice(rep);
            offs.extend(std::iter::repeat_n(pos as i64, rep.len()));
            pos += l;
            last = pos;
        }
        if last == 0 {
            if let Some(o) = offsets {
                o.extend(0..=s.len() as i64);
            }
            return Ok(None);
        }
        out.extend_from_slice(&s[last..]);
        offs.extend(last as i64..s.len() as i64);
        offs.push(s.len() as i64);
        if let Some(o) = offsets {
            o.extend(offs);
        }
        Ok(Some(out))
    }
}

/// `FastBertNormalize` (inputs `input_values: string` [n], `fast_bert_normalizer_model: uint8`;
/// attr `get_offsets`): outputs the normalized strings, and with get_offsets the per-byte source
/// offsets (one list per string, each ending with the input length) and their row splits.
#[derive(Debug)]
pub(super) struct FastBertNormalize {
    get_offsets: bool,
}

impl FastBertNormalize {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(FastBertNormalize {
            get_offsets: cx.attr_opt_bool("get_offsets").unwrap_or(false),
        }))
    }
}

impl Op for FastBertNormalize {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [values, model] = crate::ops::take_inputs(inputs)?;
        let input = strings(&values, 0)?;
        let norm = Normalizer::parse(model_bytes(&model, 1)?)?;
        let mut outs = Vec::with_capacity(input.len());
        let mut offsets = Vec::new();
        let mut splits = Vec::new();
        if self.get_offsets {
            splits.push(0i64);
        }
        for s in input {
            // A code point maps to at most 63 bytes.
            cx.call.check_bytes(s.len() as u128 * 64)?;
            let o = self.get_offsets.then_some(&mut offsets);
            match norm.normalize(s, o)? {
                None => outs.push(s.clone()),
                Some(v) => outs.push(Bytes::from(v)),
            }
            if self.get_offsets {
                splits.push(offsets.len() as i64);
            }
        }
        Ok(tensors![
            Tensor::from_vec(values.shape(), outs)?,
            Tensor::vector(offsets),
            Tensor::vector(splits),
        ])
    }
}

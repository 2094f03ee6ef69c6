//! The whitespace and Unicode-script tokenizers: `TFText>WhitespaceTokenizeWithOffsetsV2`
//! (what `text.WhitespaceTokenizer` runs since 2.7: bytes + a whitespace bitset built at export),
//! the older codepoint `WhitespaceTokenizeWithOffsets`, and `UnicodeScriptTokenizeWithOffsets`.
//! TF reference: tensorflow_text/core/kernels/whitespace_tokenizer.{h,cc},
//! whitespace_tokenizer_kernel_template.h, whitespace_tokenize_kernel.cc,
//! unicode_script_tokenize_kernel.cc.
//!
//! Unicode data: TF's ICU is 77.1 (Unicode 16). `u_isUWhiteSpace` is the White_Space property
//! (stable since Unicode 6, hard-coded here). `uscript_getScript` is the Script property, taken
//! from ICU4X, with code points not yet assigned in Unicode 16 (per `regex`'s Age tables) read
//! as Unknown, as ICU 77 sees them.

use std::sync::OnceLock;

use icu_properties::props::Script;
use icu_properties::CodePointMapData;

use super::strings;
use crate::ops::{BuildCtx, EvalCtx, Op, OpError, Tensors};
use crate::tensor::{Bytes, DType, Tensor};

/// ICU's `U8_NEXT`: the code point at `s[pos..]` and its length; an ill-formed sequence is one
/// maximal ill-formed subpart (as `Utf8Error::error_len` cuts it) and decodes to `None`
/// (ICU's `U_SENTINEL`). `pos` must be < `s.len()`.
pub(crate) fn u8_next(s: &[u8], pos: usize) -> (Option<char>, usize) {
    let end = (pos + 4).min(s.len());
    let chunk = &s[pos..end];
    let valid = match std::str::from_utf8(chunk) {
        Ok(v) => v,
        Err(e) if e.valid_up_to() > 0 => {
            std::str::from_utf8(&chunk[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(e) => return (None, e.error_len().unwrap_or(chunk.len()).max(1)),
    };
    match valid.chars().next() {
        Some(c) => (Some(c), c.len_utf8()),
        None => (None, 1),
    }
}

/// ICU `u_isUWhiteSpace` (the White_Space property), for any int32 code point.
pub(crate) fn is_white_space(c: i64) -> bool {
    matches!(
        c,
        0x09..=0x0D
            | 0x20
            | 0x85
            | 0xA0
            | 0x1680
            | 0x2000..=0x200A
            | 0x2028
            | 0x2029
            | 0x202F
            | 0x205F
            | 0x3000
    )
}

/// Code points assigned in Unicode 16.0 (sorted ranges).
fn assigned_in_16() -> &'static [(u32, u32)] {
    static R: OnceLock<Vec<(u32, u32)>> = OnceLock::new();
    R.get_or_init(|| {
        let hir = regex_syntax::parse(r"\p{Age=V16_0}").expect("static class");
        match hir.kind() {
            regex_syntax::hir::HirKind::Class(regex_syntax::hir::Class::Unicode(c)) => c
                .ranges()
                .iter()
                .map(|r| (r.start() as u32, r.end() as u32))
                .collect(),
            _ => Vec::new(),
        }
    })
}

/// ICU `uscript_getScript` as TF's ICU 77 (Unicode 16) answers it: `None` is
/// `USCRIPT_INVALID_CODE` (a value outside 0..=0x10FFFF, where ICU reports an error that the
/// kernel maps to the invalid code).
fn script_of(c: i64) -> Option<Script> {
    let c = u32::try_from(c).ok().filter(|&c| c <= 0x10FFFF)?;
    if !in_unicode_16(c) {
        return Some(Script::Unknown);
    }
    Some(CodePointMapData::<Script>::new().get32(c))
}

/// True if code point `c` is assigned in Unicode 16.0 (TF's ICU 77).
pub(crate) fn in_unicode_16(c: u32) -> bool {
    let r = assigned_in_16();
    let i = r.partition_point(|&(_, hi)| hi < c);
    r.get(i).is_some_and(|&(lo, _)| lo <= c)
}

fn splits_dtype(cx: &BuildCtx<'_>) -> Result<DType, OpError> {
    let t = cx.attr_opt_type("Tsplits")?.unwrap_or(DType::I64);
    if !matches!(t, DType::I32 | DType::I64) {
        return Err(OpError::Attr {
            name: "Tsplits".into(),
            what: format!("must be int32 or int64, got {t}"),
        });
    }
    Ok(t)
}

fn splits_out(v: Vec<i64>, dtype: DType) -> Tensor {
    if dtype == DType::I32 {
        Tensor::vector(v.into_iter().map(|x| x as i32).collect::<Vec<_>>())
    } else {
        Tensor::vector(v)
    }
}

/// Codepoints + splits inputs of the codepoint tokenizers, checked (TF reads them unchecked).
fn codepoint_inputs(inputs: &[Tensor]) -> Result<(Vec<i64>, Vec<i64>), OpError> {
    let [values, splits] = inputs else {
        return Err(OpError::Arity {
            expected: 2,
            got: inputs.len(),
        });
    };
    if values.dtype() != DType::I32 {
        return Err(OpError::dtype(0, "int32", values.dtype()));
    }
    if !matches!(splits.dtype(), DType::I32 | DType::I64) || splits.rank() != 1 {
        return Err(OpError::invalid(
            "input_splits must be an int32/int64 vector",
        ));
    }
    let v = values.to_i64_vec()?;
    let s = splits.to_i64_vec()?;
    if s.is_empty()
        || s[0] < 0
        || s.windows(2).any(|w| w[0] > w[1])
        || s.last().is_some_and(|&l| l as usize > v.len())
    {
        return Err(OpError::invalid(format!(
            "input_splits must be non-empty, non-decreasing and within the {} values",
            v.len()
        )));
    }
    Ok((v, s))
}

/// The output of a codepoint tokenizer (`output_values`, `_inner_splits`, `_offset_starts`,
/// `_offset_limits`, `output_outer_splits`), in codepoint indices relative to each string.
#[derive(Default)]
struct CodepointTokens {
    values: Vec<i32>,
    inner: Vec<i64>,
    starts: Vec<i64>,
    limits: Vec<i64>,
    outer: Vec<i64>,
}

impl CodepointTokens {
    fn into_tensors(mut self, split: DType) -> Tensors {
        self.outer.push(self.starts.len() as i64);
        self.inner.push(self.values.len() as i64);
        tensors![
            Tensor::vector(self.values),
            splits_out(self.inner, split),
            Tensor::vector(self.starts),
            Tensor::vector(self.limits),
            splits_out(self.outer, split),
        ]
    }
}

/// `WhitespaceTokenizeWithOffsets` (inputs `input_values: int32` codepoints, `input_splits`):
/// the pre-2.7 whitespace tokenizer over `UnicodeDecode` output.
#[derive(Debug)]
pub(super) struct WhitespaceCodepoints {
    split: DType,
}

impl WhitespaceCodepoints {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(WhitespaceCodepoints {
            split: splits_dtype(cx)?,
        }))
    }
}

impl Op for WhitespaceCodepoints {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let (v, s) = codepoint_inputs(&inputs)?;
        cx.call.check_alloc(v.len() * 4, DType::I64)?;
        let mut o = CodepointTokens::default();
        for w in s.windows(2) {
            o.outer.push(o.starts.len() as i64);
            let (lo, hi) = (w[0] as usize, w[1] as usize);
            let mut in_token = false;
            let mut skipped = 0i64;
            for (i, &c) in v[lo..hi].iter().enumerate() {
                if is_white_space(c) {
                    if in_token {
                        o.limits.push(i as i64 - skipped);
                    }
                    in_token = false;
                    skipped += 1;
                } else {
                    if !in_token {
                        o.starts.push(i as i64);
                        o.inner.push(o.values.len() as i64);
                        in_token = true;
                    }
                    o.values.push(c as i32);
                    skipped = 0;
                }
            }
            if in_token {
                // TF quirk copied: the limit subtracts the trailing whitespace run, which is
                // always 0 here (a token is open only after a non-space).
                o.limits.push((hi - lo) as i64 - skipped);
            }
        }
        Ok(o.into_tensors(self.split))
    }
}

/// `UnicodeScriptTokenizeWithOffsets` (inputs codepoints + splits, attr `keep_whitespace`):
/// a token ends where `uscript_getScript` changes (and, with keep_whitespace, where
/// whitespace-ness changes); whitespace is dropped unless kept.
#[derive(Debug)]
pub(super) struct ScriptTokenize {
    split: DType,
    keep_whitespace: bool,
}

impl ScriptTokenize {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(ScriptTokenize {
            split: splits_dtype(cx)?,
            keep_whitespace: cx.attr_opt_bool("keep_whitespace").unwrap_or(false),
        }))
    }
}

impl Op for ScriptTokenize {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let (v, s) = codepoint_inputs(&inputs)?;
        cx.call.check_alloc(v.len() * 4, DType::I64)?;
        let keep = self.keep_whitespace;
        let mut o = CodepointTokens::default();
        for w in s.windows(2) {
            o.outer.push(o.starts.len() as i64);
            let (lo, hi) = (w[0] as usize, w[1] as usize);
            // TF starts from USCRIPT_INVALID_CODE (`None`), which is also the script of an
            // invalid code point.
            let mut prev: Option<Script> = None;
            let mut in_token = false;
            let mut skipped = 0i64;
            let mut was_space = false;
            for (i, &c) in v[lo..hi].iter().enumerate() {
                let space = is_white_space(c);
                let script = script_of(c);
                if script != prev || (keep && space != was_space) {
                    if in_token {
                        o.limits.push(i as i64 - skipped);
                    }
                    prev = script;
                    in_token = false;
                }
                if !space || keep {
                    if !in_token {
                        o.starts.push(i as i64);
                        o.inner.push(o.values.len() as i64);
                        in_token = true;
                    }
                    o.values.push(c as i32);
                }
                if !keep {
                    skipped = if space { skipped + 1 } else { 0 };
                }
                was_space = space;
            }
            if in_token {
                o.limits.push((hi - lo) as i64 - skipped);
            }
        }
        Ok(o.into_tensors(self.split))
    }
}

/// `TFText>WhitespaceTokenizeWithOffsetsV2` (inputs `input_values: string` [n],
/// `input_config: string` scalar, the bitset `BuildWhitespaceTokenizerConfig` made at export):
/// outputs tokens, int64 row splits and int32 byte offsets.
#[derive(Debug)]
pub(super) struct WhitespaceV2;

impl WhitespaceV2 {
    pub(super) fn build(_: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(WhitespaceV2))
    }
}

impl Op for WhitespaceV2 {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [values, config] = crate::ops::take_inputs(inputs)?;
        let input = strings(&values, 0)?;
        if values.rank() != 1 {
            return Err(OpError::invalid(format!(
                "input_values must be a vector, got shape {:?}",
                values.shape()
            )));
        }
        let cfg = match strings(&config, 1)? {
            [c] => c.clone(),
            _ => return Err(OpError::invalid("input_config must be a scalar")),
        };
        let is_ws = |c: Option<char>| {
            c.is_some_and(|c| {
                let c = c as usize;
                cfg.get(c >> 3).is_some_and(|b| b & (1 << (c & 7)) != 0)
            })
        };
        let total: usize = input.iter().map(|s| s.len()).sum();
        cx.call.check_bytes(total as u128 * 2)?;
        let (mut tokens, mut starts, mut ends) = (Vec::new(), Vec::new(), Vec::new());
        let mut splits = vec![0i64];
        for s in input {
            let mut pos = 0;
            let mut start: Option<usize> = None;
            while pos < s.len() {
                let prev = pos;
                let (c, n) = u8_next(s, pos);
                pos += n;
                if is_ws(c) {
                    if let Some(a) = start.take() {
                        // TF quirk copied: the token ends one byte before the end of the
                        // whitespace, so a multi-byte space leaves its lead bytes in the token.
                        let e = pos - 1;
                        tokens.push(Bytes::from(s[a..e].to_vec()));
                        starts.push(a as i32);
                        ends.push(e as i32);
                    }
                } else if start.is_none() {
                    start = Some(prev);
                }
            }
            if let Some(a) = start {
                tokens.push(Bytes::from(s[a..].to_vec()));
                starts.push(a as i32);
                ends.push(s.len() as i32);
            }
            splits.push(tokens.len() as i64);
        }
        Ok(tensors![
            Tensor::vector(tokens),
            Tensor::vector(splits),
            Tensor::vector(starts),
            Tensor::vector(ends),
        ])
    }
}

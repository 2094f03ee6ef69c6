//! `RegexSplitWithOffsets` (tensorflow_text core/kernels/regex_split{,_kernels}.cc): splits
//! each string at the matches of a delimiter regex (RE2 semantics through
//! `strings::regex::compile_re2`), optionally keeping delimiters that fully match a second
//! regex. Offsets are bytes.
//!
//! The kernel loops `RE2::FindAndConsume(&leftover, re, &group1)`: the text between the end of
//! the previous match and the start of capture group 1 is a token when non-empty, then group 1
//! is a token when the keep pattern is non-empty and `FullMatch`es it; the rest after the last
//! match is a token when non-empty. TF quirks copied: the search restarts on the leftover
//! slice as if it were the whole text; a pattern without a capture group never splits;
//! the input is read as a C string, so it ends at its first NUL. Not copied: a delimiter
//! that matches the empty string at the current position makes TF loop forever; here it is
//! an error.

use std::sync::{Arc, Mutex};

use rayon::prelude::*;
use regex::bytes::Regex;

use super::{scalar_string, strings};
use crate::ops::strings::regex::compile_re2;
use crate::ops::{take_inputs, BuildCtx, EvalCtx, Op, OpError, Tensors};
use crate::tensor::{Bytes, Tensor};

/// Rows at least this many are split on rayon's threads.
const PAR_ROWS: usize = 32;

#[derive(Debug)]
struct Compiled {
    delim_src: Bytes,
    keep_src: Bytes,
    delim: Regex,
    /// `None` when the keep pattern is empty (nothing is kept).
    keep: Option<Regex>,
    groups: usize,
    /// The whole delimiter pattern is capture group 1 (`(\s+|[!-/]|...)`, as BERT's is), so
    /// group 1 is the match and the faster `find` gives it.
    group1_is_match: bool,
}

/// `RegexSplitWithOffsets`: inputs `input` (string, any shape, read flat),
/// `delim_regex_pattern`, `keep_delim_regex_pattern` (scalars); outputs `tokens`,
/// `begin_offsets`, `end_offsets` (int64) and `row_splits` (int64).
#[derive(Debug, Default)]
pub(super) struct RegexSplit {
    /// The last compiled pattern pair (TF caches one per op kernel too).
    cache: Mutex<Option<Arc<Compiled>>>,
}

impl RegexSplit {
    pub(super) fn build(_: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::<RegexSplit>::default())
    }

    fn compiled(&self, delim: Bytes, keep: Bytes) -> Result<Arc<Compiled>, OpError> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = cache.as_ref() {
            if c.delim_src == delim && c.keep_src == keep {
                return Ok(c.clone());
            }
        }
        let invalid = |p: &Bytes, e: OpError| {
            OpError::invalid(format!(
                "Invalid pattern: {}, error: {e}",
                String::from_utf8_lossy(p)
            ))
        };
        let re = compile_re2(&delim, false).map_err(|e| invalid(&delim, e))?;
        let keep_re = if keep.is_empty() {
            None
        } else {
            Some(compile_re2(&keep, true).map_err(|e| invalid(&keep, e))?)
        };
        let c = Arc::new(Compiled {
            groups: re.captures_len() - 1,
            group1_is_match: group1_is_whole(re.as_str()),
            delim_src: delim,
            keep_src: keep,
            delim: re,
            keep: keep_re,
        });
        *cache = Some(c.clone());
        Ok(c)
    }
}

/// Whether the (translated) pattern is one capture group around everything.
fn group1_is_whole(pattern: &str) -> bool {
    // The same syntax options as `regex::bytes::Regex` (Unicode on, UTF-8 matches not
    // required); a parse failure only means the general path is taken.
    regex_syntax::ParserBuilder::new()
        .utf8(false)
        .build()
        .parse(pattern)
        .is_ok_and(|h| matches!(h.kind(), regex_syntax::hir::HirKind::Capture(c) if c.index == 1))
}

/// One row's tokens as (begin, end) byte ranges.
fn split_one(c: &Compiled, s: &[u8], out: &mut Vec<(usize, usize)>) -> Result<(), OpError> {
    // TF reads the string through `data()` as a C string.
    let s = match memchr::memchr(0, s) {
        Some(n) => &s[..n],
        None => s,
    };
    let mut pos = 0;
    if c.groups >= 1 {
        let mut locs = c.delim.capture_locations();
        while pos <= s.len() {
            let hay = &s[pos..];
            let (m_end, group1) = if c.group1_is_match {
                match c.delim.find(hay) {
                    Some(m) => (m.end(), Some((m.start(), m.end()))),
                    None => break,
                }
            } else {
                if c.delim.captures_read(&mut locs, hay).is_none() {
                    break;
                }
                let (_, m_end) = locs.get(0).expect("group 0 always participates");
                (m_end, locs.get(1))
            };
            let Some((g_start, g_end)) = group1 else {
                return Err(OpError::Unimplemented(
                    "RegexSplitWithOffsets: a delimiter match in which capture group 1 \
                     does not participate"
                        .into(),
                ));
            };
            if m_end == 0 {
                return Err(OpError::invalid(format!(
                    "RegexSplitWithOffsets: the delimiter pattern {:?} matches the empty \
                     string at byte {pos} (TensorFlow loops forever here)",
                    String::from_utf8_lossy(&c.delim_src)
                )));
            }
            if g_start > 0 {
                out.push((pos, pos + g_start));
            }
            if let Some(keep) = &c.keep {
                if keep.is_match(&hay[g_start..g_end]) {
                    out.push((pos + g_start, pos + g_end));
                }
            }
            pos += m_end;
        }
    }
    if pos < s.len() {
        out.push((pos, s.len()));
    }
    Ok(())
}

impl Op for RegexSplit {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [input, delim, keep] = take_inputs(inputs)?;
        let delim = scalar_string(&delim, 1, "Pattern")?;
        let keep = scalar_string(&keep, 2, "Pattern")?;
        let c = self.compiled(delim, keep)?;
        let rows = strings(&input, 0)?;
        let row = |s: &Bytes| {
            let mut r = Vec::new();
            split_one(&c, s, &mut r).map(|()| r)
        };
        let per_row: Vec<Vec<(usize, usize)>> = if rows.len() >= PAR_ROWS {
            rows.par_iter().map(row).collect::<Result<_, _>>()?
        } else {
            rows.iter().map(row).collect::<Result<_, _>>()?
        };
        let n: usize = per_row.iter().map(Vec::len).sum();
        cx.call.check_alloc(n, crate::tensor::DType::String)?;
        let mut tokens = Vec::with_capacity(n);
        let mut begins = Vec::with_capacity(n);
        let mut ends = Vec::with_capacity(n);
        let mut splits = Vec::with_capacity(rows.len() + 1);
        splits.push(0i64);
        for (s, r) in rows.iter().zip(&per_row) {
            for &(a, b) in r {
                tokens.push(s.slice(a..b));
                begins.push(a as i64);
                ends.push(b as i64);
            }
            splits.push(tokens.len() as i64);
        }
        Ok(tensors![
            Tensor::from_vec(&[n], tokens)?,
            Tensor::vector(begins),
            Tensor::vector(ends),
            Tensor::vector(splits),
        ])
    }
}

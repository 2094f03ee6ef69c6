//! `StringSplit` (TF1) and `StringSplitV2`. TF reference: core/kernels/string_split_op.cc.

use super::{scalar_string, sparse_tokens, strings};
use crate::ops::kernels::strings::{is_ascii_space, split_on_delimiter, split_whitespace_ascii};
use crate::ops::{take_inputs, BuildCtx, EvalCtx, Op, OpError, Tensors};
use crate::tensor::{Bytes, Tensor};
use rayon::prelude::*;

fn vector_input(t: &Tensor) -> Result<&[Bytes], OpError> {
    if t.rank() != 1 {
        return Err(OpError::shape(format!(
            "input must be a vector, got shape {:?}",
            t.shape()
        )));
    }
    strings(t, 0)
}

/// `StringSplitV2`: Python `str.split(sep, maxsplit)` per element of a string vector, as a
/// sparse tensor. An empty `sep` splits on runs of ASCII whitespace (C `isspace`) and drops
/// empty tokens; a non-empty `sep` keeps them.
#[derive(Debug)]
pub(super) struct StringSplitV2 {
    maxsplit: i64,
}

impl StringSplitV2 {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(StringSplitV2 {
            maxsplit: cx.attr_opt_i64("maxsplit").unwrap_or(-1),
        }))
    }
}

impl Op for StringSplitV2 {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [input, sep] = take_inputs(inputs)?;
        let sep = scalar_string(&sep, 1, "sep")?;
        let input = vector_input(&input)?;
        // A negative maxsplit means no limit; maxsplit = 0 keeps the (whitespace-stripped)
        // string whole.
        let max = usize::try_from(self.maxsplit).ok();
        let split = |s: &[u8], ranges: &mut Vec<(usize, usize)>| match (sep.is_empty(), max) {
            (true, None) => split_whitespace_ascii(s, ranges),
            (true, Some(m)) => split_whitespace_limited(s, m, ranges),
            // TF quirk (unlike the kernel helper): "" with a non-empty sep is one empty
            // token, as in Python `"".split(" ") == [""]`.
            (false, _) if s.is_empty() => ranges.push((0, 0)),
            (false, None) => split_on_delimiter(s, &sep, ranges),
            (false, Some(m)) => split_delimiter_limited(s, &sep, m, ranges),
        };
        split_rows(input, split)
    }
}

/// Rows at least this many are split in parallel, in chunks of this many rows.
const PAR_ROWS: usize = 256;

/// The sparse triple (`indices` `[n, 2]`, `values` `[n]`, `dense_shape` `[rows, max]`) of
/// every token of every row, in row order; `split` appends a row's token byte ranges to its
/// (cleared) second argument. Large inputs are split on rayon's threads, each chunk of rows
/// writing its own indices and values (no intermediate `(row, token)` list).
fn split_rows(
    input: &[Bytes],
    split: impl Fn(&[u8], &mut Vec<(usize, usize)>) + Sync,
) -> Result<Tensors, OpError> {
    struct Part {
        indices: Vec<i64>,
        values: Vec<Bytes>,
        max: usize,
    }
    let chunk = |first: usize, rows: &[Bytes]| {
        let mut ranges = Vec::new();
        let mut p = Part {
            indices: Vec::new(),
            values: Vec::new(),
            max: 0,
        };
        for (i, s) in rows.iter().enumerate() {
            ranges.clear();
            split(s, &mut ranges);
            p.max = p.max.max(ranges.len());
            for (col, &(a, b)) in ranges.iter().enumerate() {
                p.indices
                    .extend_from_slice(&[(first + i) as i64, col as i64]);
                p.values.push(s.slice(a..b));
            }
        }
        p
    };
    let whole = if input.len() < 2 * PAR_ROWS {
        chunk(0, input)
    } else {
        let parts: Vec<Part> = input
            .par_chunks(PAR_ROWS)
            .enumerate()
            .map(|(c, rows)| chunk(c * PAR_ROWS, rows))
            .collect();
        let n = parts.iter().map(|p| p.values.len()).sum();
        let mut whole = Part {
            indices: Vec::with_capacity(2 * n),
            values: Vec::with_capacity(n),
            max: 0,
        };
        for p in parts {
            whole.indices.extend_from_slice(&p.indices);
            whole.values.extend(p.values);
            whole.max = whole.max.max(p.max);
        }
        whole
    };
    let n = whole.values.len();
    Ok(tensors![
        Tensor::from_vec(&[n, 2], whole.indices)?,
        Tensor::from_vec(&[n], whole.values)?,
        Tensor::vector(vec![input.len() as i64, whole.max as i64]),
    ])
}

/// `str.split(sep, maxsplit)` for a non-empty `sep`: at most `max` splits, the rest is the
/// last token.
fn split_delimiter_limited(s: &[u8], sep: &[u8], max: usize, out: &mut Vec<(usize, usize)>) {
    let (mut start, mut i) = (0, 0);
    while out.len() < max && i + sep.len() <= s.len() {
        if &s[i..i + sep.len()] == sep {
            out.push((start, i));
            i += sep.len();
            start = i;
        } else {
            i += 1;
        }
    }
    out.push((start, s.len()));
}

/// `str.split(None, maxsplit)`: leading whitespace is skipped; after `max` tokens the rest
/// (from the next non-space byte, trailing whitespace kept) is the last token.
fn split_whitespace_limited(s: &[u8], max: usize, out: &mut Vec<(usize, usize)>) {
    let n = s.len();
    let mut i = 0;
    loop {
        while i < n && is_ascii_space(s[i]) {
            i += 1;
        }
        if i == n {
            return;
        }
        if out.len() == max {
            out.push((i, n));
            return;
        }
        let start = i;
        while i < n && !is_ascii_space(s[i]) {
            i += 1;
        }
        out.push((start, i));
    }
}

/// `StringSplit` (TF1): splits on any byte of `delimiter` (on every byte if it is empty);
/// `skip_empty` (default true) drops empty tokens. An empty string has no tokens.
#[derive(Debug)]
pub(super) struct StringSplit {
    skip_empty: bool,
}

impl StringSplit {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(StringSplit {
            skip_empty: cx.attr_opt_bool("skip_empty").unwrap_or(true),
        }))
    }
}

impl Op for StringSplit {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [input, delim] = take_inputs(inputs)?;
        let delim = scalar_string(&delim, 1, "delimiter")?;
        let input = vector_input(&input)?;
        let mut tokens = Vec::new();
        for (row, s) in input.iter().enumerate() {
            if s.is_empty() {
                continue;
            }
            if delim.is_empty() {
                // TF quirk: an empty delimiter splits into single bytes, even inside UTF-8.
                tokens.extend((0..s.len()).map(|i| (row, s.slice(i..i + 1))));
                continue;
            }
            let mut start = 0;
            for tok in s.split(|b| delim.contains(b)) {
                if !(self.skip_empty && tok.is_empty()) {
                    tokens.push((row, s.slice(start..start + tok.len())));
                }
                start += tok.len() + 1;
            }
        }
        sparse_tokens(input.len(), tokens)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{EvalCtx, Limits, Session};

    fn run(op: &dyn Op, input: &[&str], sep: &str) -> (Vec<i64>, Vec<String>, Vec<i64>) {
        let session = Session::new(".".into(), None, Limits::default());
        let mut cx = EvalCtx::new(&session);
        let out = op
            .eval(
                &mut cx,
                tensors![
                    Tensor::from_strings(&[input.len()], input).unwrap(),
                    Tensor::scalar(crate::tensor::Bytes::copy_from_slice(sep.as_bytes())),
                ],
            )
            .unwrap();
        let vals = out[1].as_slice::<crate::tensor::Bytes>().unwrap();
        (
            out[0].to_i64_vec().unwrap(),
            vals.iter()
                .map(|s| String::from_utf8(s.to_vec()).unwrap())
                .collect(),
            out[2].to_i64_vec().unwrap(),
        )
    }

    #[test]
    fn split_v2_edge_cases() {
        // gen_string_ops.string_split_v2(["", "   ", "a<>b<>"], sep=...)
        let op = StringSplitV2 { maxsplit: -1 };
        let (idx, vals, shape) = run(&op, &["", "   "], " ");
        assert_eq!(idx, [0, 0, 1, 0, 1, 1, 1, 2, 1, 3]);
        assert_eq!(vals, ["", "", "", "", ""]);
        assert_eq!(shape, [2, 4]);
        assert_eq!(run(&op, &["a<>b<>"], "<>").1, ["a", "b", ""]);
        assert_eq!(run(&op, &["aaa"], "aa").1, ["", "a"]);
        let (_, vals, shape) = run(&op, &["  a\x0bb ", "", " "], "");
        assert_eq!(vals, ["a", "b"]);
        assert_eq!(shape, [3, 2]);
    }

    #[test]
    fn split_v2_maxsplit() {
        // string_split_v2(["a b c d", " x  y "], sep=" ", maxsplit=2) -> a,b,"c d","",x," y "
        let op = StringSplitV2 { maxsplit: 2 };
        let (_, vals, shape) = run(&op, &["a b c d", " x  y "], " ");
        assert_eq!(vals, ["a", "b", "c d", "", "x", " y "]);
        assert_eq!(shape, [2, 3]);
        // sep="", maxsplit=1: "  a  b  c  " -> ["a", "b  c  "]
        let op = StringSplitV2 { maxsplit: 1 };
        assert_eq!(run(&op, &["  a  b  c  "], "").1, ["a", "b  c  "]);
        let op = StringSplitV2 { maxsplit: 0 };
        assert_eq!(run(&op, &["a b"], " ").1, ["a b"]);
    }

    #[test]
    fn split_v2_parallel_matches_row_by_row() {
        // Enough rows for the parallel path; empty rows, runs of spaces, repeated words.
        let words = ["a", "bb", "", " ", "ccc", "  dd ", "e\tf"];
        let rows: Vec<String> = (0..1500)
            .map(|i| {
                (0..i % 9)
                    .map(|j| words[(i * 7 + j * 3) % words.len()])
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        let refs: Vec<&str> = rows.iter().map(String::as_str).collect();
        for (op, sep) in [
            (StringSplitV2 { maxsplit: -1 }, ""),
            (StringSplitV2 { maxsplit: -1 }, " "),
            (StringSplitV2 { maxsplit: 2 }, ""),
        ] {
            let (idx, vals, shape) = run(&op, &refs, sep);
            let (mut want_idx, mut want_vals, mut width) = (Vec::new(), Vec::new(), 0);
            for (r, row) in refs.iter().enumerate() {
                let (i, v, s) = run(&op, &[row], sep);
                want_idx.extend(i.chunks(2).flat_map(|p| [r as i64, p[1]]));
                want_vals.extend(v);
                width = width.max(s[1]);
            }
            assert_eq!(idx, want_idx, "sep {sep:?}");
            assert_eq!(vals, want_vals, "sep {sep:?}");
            assert_eq!(shape, [refs.len() as i64, width]);
        }
    }

    #[test]
    fn split_v1() {
        // string_split(["a b,c d", " x  y ", ""], delimiter=" ,", skip_empty=False)
        let op = StringSplit { skip_empty: false };
        let (_, vals, shape) = run(&op, &["a b,c d", " x  y ", ""], " ,");
        assert_eq!(vals, ["a", "b", "c", "d", "", "x", "", "y", ""]);
        assert_eq!(shape, [3, 5]);
        let op = StringSplit { skip_empty: true };
        assert_eq!(run(&op, &[" x  y "], " ").1, ["x", "y"]);
        assert_eq!(run(&op, &["ab"], "").1, ["a", "b"]);
        assert_eq!(run(&op, &["", ""], " ").2, [2, 0]);
    }
}

//! `StringNGrams`: the n-grams of each row of a ragged string vector (`data` + `data_splits`),
//! as a ragged string vector. TF reference: core/kernels/string_ngrams_op.cc.

use super::{splits_tensor, strings, tsplits_attr};
use crate::ops::{take_inputs, BuildCtx, EvalCtx, Op, OpError, Tensors};
use crate::tensor::{Bytes, DType, Tensor};

/// Attrs: `separator`, `ngram_widths`, `left_pad`, `right_pad`, `pad_width` (< 0: each width
/// is padded by `width - 1`), `preserve_short_sequences`, `Tsplits`.
#[derive(Debug)]
pub(super) struct StringNGrams {
    separator: Vec<u8>,
    widths: Vec<i64>,
    left_pad: Vec<u8>,
    right_pad: Vec<u8>,
    pad_width: i64,
    preserve_short: bool,
    tsplits: DType,
}

/// TF reads the int attrs into C++ `int`: anything outside int32 fails at construction.
fn int32_attr(name: &str, v: i64) -> Result<i64, OpError> {
    i32::try_from(v).map(i64::from).map_err(|_| OpError::Attr {
        name: name.into(),
        what: format!("{v} is out of int32 range"),
    })
}

impl StringNGrams {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        let widths = cx
            .attr_list_i64("ngram_widths")
            .into_iter()
            .map(|w| int32_attr("ngram_widths", w))
            .collect::<Result<_, _>>()?;
        let bytes = |n: &str| cx.attr_opt_bytes(n).unwrap_or_default().to_vec();
        Ok(Box::new(StringNGrams {
            separator: bytes("separator"),
            left_pad: bytes("left_pad"),
            right_pad: bytes("right_pad"),
            widths,
            pad_width: int32_attr("pad_width", cx.attr_opt_i64("pad_width").unwrap_or(-1))?,
            preserve_short: cx
                .attr_opt_bool("preserve_short_sequences")
                .unwrap_or(false),
            tsplits: tsplits_attr(cx)?,
        }))
    }

    /// Padding on each side for `width`: `pad_width` (or `width - 1` when negative), never
    /// more than `width - 1`.
    fn pad_for(&self, width: i64) -> i64 {
        let p = if self.pad_width < 0 {
            width - 1
        } else {
            self.pad_width
        };
        p.min(width - 1)
    }

    fn count(&self, len: i64, width: i64) -> i64 {
        (len + 2 * self.pad_for(width) - width + 1).max(0)
    }

    /// The `count` n-grams of `width` over `row`, as (left pads, token range, right pads).
    fn plan(&self, row_start: usize, count: i64, width: i64, out: &mut Vec<Gram>) {
        let pad = self.pad_for(width);
        for k in 0..count {
            let left = (pad - k).max(0);
            let right = (pad - (count - (k + 1))).max(0);
            // `left + right <= width` by construction (their sum is `width - len` when
            // both are positive), so `tokens >= 0`.
            let tokens = (width - left - right).max(0);
            let first = if left > 0 { 0 } else { k - pad };
            out.push(Gram {
                left: left as usize,
                first: row_start + first as usize,
                tokens: tokens as usize,
                right: right as usize,
            });
        }
    }

    fn gram_len(&self, g: &Gram, prefix: &[usize]) -> usize {
        let tokens = prefix[g.first + g.tokens] - prefix[g.first];
        let seps = (g.left + g.right + g.tokens).saturating_sub(1);
        g.left
            .saturating_mul(self.left_pad.len())
            .saturating_add(tokens)
            .saturating_add(g.right.saturating_mul(self.right_pad.len()))
            .saturating_add(seps.saturating_mul(self.separator.len()))
    }

    fn write(&self, g: &Gram, data: &[Bytes], out: &mut Vec<u8>) {
        let sep = &self.separator[..];
        for _ in 0..g.left {
            out.extend_from_slice(&self.left_pad);
            out.extend_from_slice(sep);
        }
        let toks = &data[g.first..g.first + g.tokens];
        if let Some((last, rest)) = toks.split_last() {
            for t in rest {
                out.extend_from_slice(t);
                out.extend_from_slice(sep);
            }
            out.extend_from_slice(last);
            for _ in 0..g.right {
                out.extend_from_slice(sep);
                out.extend_from_slice(&self.right_pad);
            }
        } else {
            // Only padding: the left pads already ended in a separator, so the n-gram
            // ends with a right pad, not a separator.
            for i in 0..g.right {
                if i > 0 {
                    out.extend_from_slice(sep);
                }
                out.extend_from_slice(&self.right_pad);
            }
        }
    }
}

/// One n-gram: `left` left pads, `tokens` tokens from `data[first..]`, `right` right pads.
struct Gram {
    left: usize,
    first: usize,
    tokens: usize,
    right: usize,
}

/// Checks TF's row-partition rules: first 0, non-decreasing, within `[prev, size]`, last ==
/// `size`. Empty splits are allowed (no rows).
fn check_splits(splits: &[i64], size: usize) -> Result<(), OpError> {
    let Some((&first, rest)) = splits.split_first() else {
        return Ok(());
    };
    if first != 0 {
        return Err(OpError::invalid(format!(
            "First split value must be 0, got {first}"
        )));
    }
    let size = size as i64;
    let mut prev = first;
    for &s in rest {
        if s < prev || s > size {
            return Err(OpError::invalid(format!(
                "Invalid split value {s}, must be in [{prev}, {size}]"
            )));
        }
        prev = s;
    }
    if prev != size {
        return Err(OpError::invalid(format!(
            "Last split value must be data size. Expected {size}, got {prev}"
        )));
    }
    Ok(())
}

impl Op for StringNGrams {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [data, splits] = take_inputs(inputs)?;
        if self.widths.iter().any(|&w| w <= 0) {
            return Err(OpError::invalid(
                "ngram_widths must contain positive values",
            ));
        }
        for (t, what) in [(&data, "data"), (&splits, "data_splits")] {
            if t.rank() != 1 {
                return Err(OpError::shape(format!(
                    "{what} must be a vector, got shape {:?}",
                    t.shape()
                )));
            }
        }
        if !matches!(splits.dtype(), DType::I32 | DType::I64) {
            return Err(OpError::dtype(1, "int32 or int64", splits.dtype()));
        }
        let words = strings(&data, 0)?;
        let sp = splits.to_i64_vec()?;
        check_splits(&sp, words.len())?;
        if words.is_empty() || sp.is_empty() {
            // TF quirk: with no splits the n-grams output keeps data's shape, all empty
            // strings (allocated but never written); the splits are all zero.
            let empty = vec![Bytes::new(); words.len()];
            return Ok(tensors![
                Tensor::from_vec(&[words.len()], empty)?,
                splits_tensor(vec![0; sp.len()], self.tsplits)?,
            ]);
        }
        // Plan every n-gram (row by row, width by width), then size the output before
        // writing a byte.
        let mut grams = Vec::new();
        let mut out_splits = Vec::with_capacity(sp.len());
        out_splits.push(0i64);
        for w in sp.windows(2) {
            let (start, len) = (w[0] as usize, w[1] - w[0]);
            let before = grams.len();
            let n: i64 = self.widths.iter().map(|&wd| self.count(len, wd)).sum();
            cx.limits()
                .check_alloc(before.saturating_add(n as usize), DType::String)?;
            for &wd in &self.widths {
                self.plan(start, self.count(len, wd), wd, &mut grams);
            }
            if self.preserve_short && len > 0 && grams.len() == before {
                // No width fits this short row: emit it whole, padded by `pad_width`. With
                // dynamic padding (-1) every non-empty row yields an n-gram, so this is
                // reached only with no widths at all.
                if self.pad_width < 0 {
                    return Err(OpError::invalid(format!(
                        "Pad width should be >= 0 when preserve_short_sequences is True \
                         and ngram_widths are not provided, got {}",
                        self.pad_width
                    )));
                }
                self.plan(start, 1, len + 2 * self.pad_width, &mut grams);
            }
            out_splits.push(grams.len() as i64);
        }
        let mut prefix = Vec::with_capacity(words.len() + 1);
        prefix.push(0usize);
        for w in words {
            prefix.push(prefix.last().copied().unwrap_or(0).saturating_add(w.len()));
        }
        let total = grams.iter().fold(0usize, |acc, g| {
            acc.saturating_add(self.gram_len(g, &prefix))
        });
        cx.limits().check_alloc(total, DType::U8)?;
        let mut buf = Vec::with_capacity(total);
        let mut ends = Vec::with_capacity(grams.len());
        for g in &grams {
            self.write(g, words, &mut buf);
            ends.push(buf.len());
        }
        let buf = Bytes::from(buf);
        let mut start = 0;
        let out: Vec<Bytes> = ends
            .into_iter()
            .map(|end| {
                let s = buf.slice(start..end);
                start = end;
                s
            })
            .collect();
        Ok(tensors![
            Tensor::from_vec(&[out.len()], out)?,
            splits_tensor(out_splits, self.tsplits)?,
        ])
    }
}

#[cfg(test)]
#[path = "ngrams_tests.rs"]
mod tests;

//! `TFText>RoundRobinTrim` and `TFText>RoundRobinGenerateMasks` (tensorflow_text
//! core/kernels/round_robin_trimmer{.h,_kernel.cc}): the per-row budget split BERT packing uses
//! to fit N segments into `max_sequence_length` tokens.
//!
//! Per batch row, with budget = max(max_sequence_length, 0): sort the segments by length
//! (shortest first); take whole segments while length x (segments not yet filled) fits in the
//! remaining budget; give each remaining one floor(remaining / count); then, in the original
//! order, one more to each segment still short while budget is left; keep each segment's
//! first `used` values. Unlike TF, which takes the row count from segment 0 and trusts the
//! splits, every segment's splits are checked (same row count, start 0, non-decreasing,
//! ending at its values' length).

use crate::ops::array::gather;
use crate::ops::{BuildCtx, EvalCtx, Op, OpError, Tensors};
use crate::tensor::{DType, Tensor};

#[derive(Debug)]
pub(super) struct RoundRobin {
    masks: bool,
}

impl RoundRobin {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(RoundRobin {
            masks: cx.op.ends_with("GenerateMasks"),
        }))
    }
}

/// The number of values each segment keeps in one batch row (`sizes` in segment order).
pub(crate) fn round_robin_used(sizes: &[i64], budget: i64) -> Vec<i64> {
    let n = sizes.len() as i64;
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by_key(|&i| sizes[i]);
    let mut used = vec![0i64; sizes.len()];
    let mut left = budget.max(0);
    let mut filled = 0i64;
    for &i in &order {
        if sizes[i].saturating_mul(n - filled) > left {
            break;
        }
        used[i] = sizes[i];
        left -= sizes[i];
        filled += 1;
    }
    if filled < n {
        let count = left / (n - filled);
        for &i in &order[filled as usize..] {
            used[i] = count;
            left -= count;
        }
    }
    for (u, &size) in used.iter_mut().zip(sizes) {
        if left <= 0 {
            break;
        }
        if *u < size {
            *u += 1;
            left -= 1;
        }
    }
    used
}

/// Checked row splits of segment `s`.
fn splits_of(t: &Tensor, values_len: usize, s: usize) -> Result<Vec<i64>, OpError> {
    if !matches!(t.dtype(), DType::I32 | DType::I64) || t.rank() != 1 {
        return Err(OpError::invalid(format!(
            "input_row_splits[{s}] must be an int32/int64 vector, got {} {:?}",
            t.dtype(),
            t.shape()
        )));
    }
    let v = t.to_i64_vec()?;
    let ok = v.first() == Some(&0)
        && v.windows(2).all(|w| w[0] <= w[1])
        && v.last().copied() == Some(values_len as i64);
    if !ok {
        return Err(OpError::invalid(format!(
            "input_row_splits[{s}] must start at 0, be non-decreasing and end at the \
             length of input_values[{s}] ({values_len})"
        )));
    }
    Ok(v)
}

fn splits_tensor(v: Vec<i64>, dtype: DType) -> Tensor {
    if dtype == DType::I32 {
        Tensor::vector(v.into_iter().map(|x| x as i32).collect::<Vec<_>>())
    } else {
        Tensor::vector(v)
    }
}

impl Op for RoundRobin {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        if inputs.len() < 3 || inputs.len() % 2 == 0 {
            return Err(OpError::Arity {
                expected: 3,
                got: inputs.len(),
            });
        }
        let n = (inputs.len() - 1) / 2;
        let max_len = match inputs[0].to_i64_vec()?.as_slice() {
            [m] if inputs[0].rank() == 0 => *m,
            _ => {
                return Err(OpError::invalid(format!(
                    "max_sequence_length must be a scalar, got shape {:?}",
                    inputs[0].shape()
                )))
            }
        };
        let values = &inputs[1..=n];
        let mut splits = Vec::with_capacity(n);
        for (s, v) in values.iter().enumerate() {
            if v.rank() != 1 {
                return Err(OpError::invalid(format!(
                    "input_values[{s}] must be a vector, got shape {:?}",
                    v.shape()
                )));
            }
            splits.push(splits_of(&inputs[1 + n + s], v.len(), s)?);
        }
        let rows = splits[0].len() - 1;
        if let Some(s) = splits.iter().position(|v| v.len() != rows + 1) {
            return Err(OpError::invalid(format!(
                "input_row_splits[{s}] has {} rows, input_row_splits[0] has {rows}",
                splits[s].len() - 1
            )));
        }
        let mut keep: Vec<Vec<i64>> = vec![Vec::new(); n];
        let mut masks: Vec<Vec<bool>> = vec![Vec::new(); n];
        let mut out_splits: Vec<Vec<i64>> = vec![vec![0]; n];
        let mut sizes = vec![0i64; n];
        for r in 0..rows {
            for (size, sp) in sizes.iter_mut().zip(&splits) {
                *size = sp[r + 1] - sp[r];
            }
            let used = round_robin_used(&sizes, max_len);
            for (s, sp) in splits.iter().enumerate() {
                let start = sp[r];
                if self.masks {
                    let m = &mut masks[s];
                    m.extend(std::iter::repeat_n(true, used[s] as usize));
                    m.extend(std::iter::repeat_n(false, (sizes[s] - used[s]) as usize));
                } else {
                    keep[s].extend(start..start + used[s]);
                    let last = *out_splits[s].last().unwrap_or(&0);
                    out_splits[s].push(last + used[s]);
                }
            }
        }
        if self.masks {
            return Ok(masks.into_iter().map(Tensor::vector).collect());
        }
        let mut out = Vec::with_capacity(2 * n);
        for (k, v) in keep.into_iter().zip(values) {
            out.push(gather(cx, v, &Tensor::vector(k), 0)?);
        }
        for (s, v) in out_splits.into_iter().enumerate() {
            out.push(splits_tensor(v, inputs[1 + n + s].dtype()));
        }
        Ok(out.into())
    }
}

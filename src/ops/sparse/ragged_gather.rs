//! `RaggedGather` and `RaggedRange`, the ragged core ops tensorflow_text's `combine_segments`
//! and `RoundRobinTrimmer` compile to. TF reference: core/kernels/ragged_gather_op.cc,
//! core/kernels/ragged_range_op.cc.
//!
//! Every split comes from data and is checked (starts at 0, non-decreasing, ends at the next
//! level's length) before it is used as an index; output sizes go through `check_alloc`.

use crate::ops::array::gather;
use crate::ops::{BuildCtx, EvalCtx, Op, OpError, Tensors};
use crate::tensor::{DType, Tensor};

/// Checked splits of one level whose next level has `inner` rows.
fn checked_splits(t: &Tensor, inner: usize, what: &str) -> Result<Vec<i64>, OpError> {
    if !matches!(t.dtype(), DType::I32 | DType::I64) || t.rank() != 1 {
        return Err(OpError::invalid(format!(
            "{what} must be an int32/int64 vector, got {} {:?}",
            t.dtype(),
            t.shape()
        )));
    }
    let v = t.to_i64_vec()?;
    if v.first() != Some(&0)
        || v.windows(2).any(|w| w[0] > w[1])
        || v.last() != Some(&(inner as i64))
    {
        return Err(OpError::invalid(format!(
            "{what} must start at 0, be non-decreasing and end at {inner}"
        )));
    }
    Ok(v)
}

fn splits_out(v: Vec<i64>, dtype: DType) -> Tensor {
    if dtype == DType::I32 {
        Tensor::vector(v.into_iter().map(|x| x as i32).collect::<Vec<_>>())
    } else {
        Tensor::vector(v)
    }
}

/// `RaggedGather` (inputs `params_nested_splits` x PARAMS_RAGGED_RANK,
/// `params_dense_values`, `indices`): gathers whole rows of the outermost ragged dimension;
/// an indices tensor of rank k adds k - 1 uniform outer levels.
#[derive(Debug)]
pub(super) struct RaggedGather {
    params_ragged_rank: usize,
}

impl RaggedGather {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        let r = cx.attr_usize("PARAMS_RAGGED_RANK")?;
        if r == 0 {
            return Err(OpError::Attr {
                name: "PARAMS_RAGGED_RANK".into(),
                what: "must be >= 1".into(),
            });
        }
        Ok(Box::new(RaggedGather {
            params_ragged_rank: r,
        }))
    }
}

impl Op for RaggedGather {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let r = self.params_ragged_rank;
        if inputs.len() != r + 2 {
            return Err(OpError::Arity {
                expected: r + 2,
                got: inputs.len(),
            });
        }
        let values = &inputs[r];
        let indices = &inputs[r + 1];
        if !matches!(indices.dtype(), DType::I32 | DType::I64) {
            return Err(OpError::dtype(r + 1, "int32 or int64", indices.dtype()));
        }
        if values.rank() == 0 {
            return Err(OpError::invalid("params.rank must be nonzero"));
        }
        let split_dtype = inputs[0].dtype();
        // Check splits innermost first: level k's last value is level k+1's row count.
        let mut splits: Vec<Vec<i64>> = vec![Vec::new(); r];
        let mut inner = values.shape()[0];
        for k in (0..r).rev() {
            splits[k] = checked_splits(&inputs[k], inner, "params_nested_splits")?;
            inner = splits[k].len() - 1;
        }
        let nrows = splits[0].len() - 1;
        let idx = indices.to_i64_vec()?;
        // Each level's gathered ranges, outermost first.
        let mut ranges: Vec<(i64, i64)> = Vec::with_capacity(idx.len());
        for (i, &v) in idx.iter().enumerate() {
            if v < 0 || v as usize >= nrows {
                return Err(OpError::invalid(format!(
                    "indices[{i}] = {v} is not in [0, {nrows})"
                )));
            }
            ranges.push((v, v + 1));
        }
        let mut out_splits: Vec<Vec<i64>> = Vec::new();
        // Uniform outer levels for rank-k indices.
        let ishape = indices.shape();
        if ishape.len() > 1 {
            // Level j (0-based) has prod(ishape[..=j]) rows of ishape[j+1] entries each.
            let mut n = 1usize;
            for pair in ishape.windows(2) {
                n *= pair[0];
                let w = pair[1] as i64;
                out_splits.push((0..=n as i64).map(|i| i * w).collect());
            }
        }
        for level in &splits {
            let mut s = Vec::with_capacity(ranges.len() + 1);
            s.push(0i64);
            let mut next = Vec::with_capacity(ranges.len());
            for &(a, b) in &ranges {
                for row in a..b {
                    let (lo, hi) = (level[row as usize], level[row as usize + 1]);
                    let last = *s.last().unwrap_or(&0);
                    s.push(last + hi - lo);
                }
                next.push((level[a as usize], level[b as usize]));
            }
            cx.call.check_alloc(s.len(), DType::I64)?;
            out_splits.push(s);
            ranges = next;
        }
        let n: usize = ranges.iter().map(|&(a, b)| (b - a) as usize).sum();
        cx.call.check_alloc(n, DType::I64)?;
        let mut vidx = Vec::with_capacity(n);
        for &(a, b) in &ranges {
            vidx.extend(a..b);
        }
        let out_values = gather(cx, values, &Tensor::vector(vidx), 0)?;
        let mut out: Vec<Tensor> = out_splits
            .into_iter()
            .map(|s| splits_out(s, split_dtype))
            .collect();
        out.push(out_values);
        Ok(out.into())
    }
}

/// `RaggedRange` (inputs `starts`, `limits`, `deltas`, each a scalar or a vector; outputs
/// `rt_nested_splits`, `rt_dense_values`). TF quirk copied: values are accumulated with
/// `value += delta`, so float ranges drift like TF's (0.1 steps end at 0.9000001).
#[derive(Debug)]
pub(super) struct RaggedRange {
    splits: DType,
}

impl RaggedRange {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        let splits = cx.attr_opt_type("Tsplits")?.unwrap_or(DType::I64);
        if !matches!(splits, DType::I32 | DType::I64) {
            return Err(OpError::Attr {
                name: "Tsplits".into(),
                what: format!("must be int32 or int64, got {splits}"),
            });
        }
        Ok(Box::new(RaggedRange { splits }))
    }
}

trait RangeValue: Copy + PartialOrd + std::ops::AddAssign + crate::tensor::Element {
    fn zero() -> Self;
    /// The row size TF computes (0 when the range runs the wrong way).
    fn size(start: Self, limit: Self, delta: Self) -> Result<i64, OpError>;
}

macro_rules! int_range {
    ($t:ty) => {
        impl RangeValue for $t {
            fn zero() -> Self {
                0
            }
            fn size(s: Self, l: Self, d: Self) -> Result<i64, OpError> {
                if (d > 0 && l < s) || (d < 0 && l > s) {
                    return Ok(0);
                }
                let (s, l, d) = (s as i128, l as i128, d as i128);
                Ok((((l - s).abs() + d.abs() - 1) / d.abs()) as i64)
            }
        }
    };
}
int_range!(i32);
int_range!(i64);

macro_rules! float_range {
    ($t:ty) => {
        impl RangeValue for $t {
            fn zero() -> Self {
                0.0
            }
            fn size(s: Self, l: Self, d: Self) -> Result<i64, OpError> {
                if (d > 0.0 && l < s) || (d < 0.0 && l > s) {
                    return Ok(0);
                }
                let n = ((l - s) / d).abs().ceil();
                if !n.is_finite() || n > i64::MAX as $t {
                    return Err(OpError::invalid(format!(
                        "RaggedRange: row size {n} is not representable"
                    )));
                }
                Ok(n as i64)
            }
        }
    };
}
float_range!(f32);
float_range!(f64);

fn ragged_range<T: RangeValue>(
    cx: &EvalCtx<'_>,
    inputs: &[Tensor],
    splits_dtype: DType,
) -> Result<Tensors, OpError> {
    let mut cols: Vec<&[T]> = Vec::with_capacity(3);
    let mut nrows: Option<usize> = None;
    for (i, t) in inputs.iter().enumerate() {
        if t.rank() > 1 {
            return Err(OpError::invalid(format!(
                "RaggedRange: input {i} must be a scalar or vector, got shape {:?}",
                t.shape()
            )));
        }
        let v = t
            .as_slice::<T>()
            .map_err(|_| OpError::dtype(i, T::DTYPE.name(), t.dtype()))?;
        if t.rank() == 1 {
            match nrows {
                Some(n) if n != v.len() => {
                    return Err(OpError::invalid(
                        "starts, limits, and deltas must have the same shape",
                    ))
                }
                _ => nrows = Some(v.len()),
            }
        }
        cols.push(v);
    }
    let nrows = nrows.unwrap_or(1);
    let at = |c: &[T], i: usize| if c.len() == 1 { c[0] } else { c[i] };
    let mut splits = Vec::with_capacity(nrows + 1);
    splits.push(0i64);
    for i in 0..nrows {
        let (s, l, d) = (at(cols[0], i), at(cols[1], i), at(cols[2], i));
        if d == T::zero() {
            return Err(OpError::invalid("Requires delta != 0"));
        }
        let n = T::size(s, l, d)?;
        let last = *splits.last().unwrap_or(&0);
        let total = last
            .checked_add(n)
            .ok_or_else(|| OpError::invalid("RaggedRange: too many values"))?;
        splits.push(total);
    }
    let total = *splits.last().unwrap_or(&0) as usize;
    cx.call.check_alloc(total, T::DTYPE)?;
    let mut values = Vec::with_capacity(total);
    for i in 0..nrows {
        let (mut v, d) = (at(cols[0], i), at(cols[2], i));
        for _ in splits[i]..splits[i + 1] {
            values.push(v);
            v += d;
        }
    }
    Ok(tensors![
        splits_out(splits, splits_dtype),
        Tensor::vector(values),
    ])
}

impl Op for RaggedRange {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        if inputs.len() != 3 {
            return Err(OpError::Arity {
                expected: 3,
                got: inputs.len(),
            });
        }
        match inputs[0].dtype() {
            DType::I32 => ragged_range::<i32>(cx, &inputs, self.splits),
            DType::I64 => ragged_range::<i64>(cx, &inputs, self.splits),
            DType::F32 => ragged_range::<f32>(cx, &inputs, self.splits),
            DType::F64 => ragged_range::<f64>(cx, &inputs, self.splits),
            d => Err(OpError::dtype(0, "int32, int64, float or double", d)),
        }
    }
}

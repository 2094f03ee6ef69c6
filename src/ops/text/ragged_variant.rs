//! `RaggedTensorToVariant` / `RaggedTensorFromVariant`: what `tf.map_fn` over RaggedTensors
//! compiles to (the 2020-21 BERT preprocessors' `round_robin_truncate_inputs`, user models
//! mapping over ragged rows). TF reference: core/kernels/ragged_tensor_to_variant_op.cc,
//! ragged_tensor_from_variant_op.cc, ragged_tensor_variant.h.
//!
//! A ragged tensor travels as a `variant` element whose [`Handle`] holds a [`RaggedVariant`]
//! (TF's `RaggedTensorVariant`: nested splits + flat values). Batched encoding makes one such
//! element per row, so the existing `TensorList` ops move rows in and out of a `While` loop
//! unchanged. Every split is checked before it is used as an index.

use std::sync::Arc;

use crate::ops::{BuildCtx, EvalCtx, Op, OpError, Tensors};
use crate::tensor::{Buf, DType, Data, Element, Handle, Tensor};

/// TF's `RaggedTensorVariant`: `splits.len()` is the ragged rank; `values` has rank >= 1
/// when it came from a valid ragged tensor.
#[derive(Debug, Clone)]
pub(crate) struct RaggedVariant {
    pub(crate) splits: Vec<Tensor>,
    pub(crate) values: Tensor,
}

impl RaggedVariant {
    fn into_handle(self) -> Handle {
        Handle {
            name: Arc::from("RaggedTensorVariant"),
            value: Arc::new(self),
        }
    }
}

fn check_split_dtype(cx: &BuildCtx<'_>) -> Result<DType, OpError> {
    let t = cx.attr_opt_type("Tsplits")?.unwrap_or(DType::I64);
    if !matches!(t, DType::I32 | DType::I64) {
        return Err(OpError::Attr {
            name: "Tsplits".into(),
            what: format!("must be int32 or int64, got {t}"),
        });
    }
    Ok(t)
}

/// Splits as i64, checked: rank 1, starts at 0, non-decreasing, ends at `inner` (when given).
fn checked_splits(t: &Tensor, inner: Option<usize>, what: &str) -> Result<Vec<i64>, OpError> {
    if t.rank() != 1 {
        return Err(OpError::invalid(format!(
            "{what} must have rank 1, got shape {:?}",
            t.shape()
        )));
    }
    let v = t.to_i64_vec()?;
    let ok = v.first() == Some(&0)
        && v.windows(2).all(|w| w[0] <= w[1])
        && inner.is_none_or(|n| v.last() == Some(&(n as i64)));
    if !ok {
        return Err(OpError::invalid(format!(
            "{what} must start at 0, be non-decreasing and end at the size of the next level"
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

/// Rows `[a, b)` of `t` along dim 0 (checked by the caller).
fn rows(t: &Tensor, a: usize, b: usize) -> Result<Tensor, OpError> {
    fn go<T: Element>(
        buf: &Buf<T>,
        shape: &[usize],
        a: usize,
        b: usize,
    ) -> Result<Tensor, OpError> {
        let inner: usize = shape[1..].iter().product();
        let part = buf
            .get(a * inner..b * inner)
            .ok_or_else(|| OpError::invalid("ragged values are shorter than their splits"))?;
        let mut s = shape.to_vec();
        s[0] = b - a;
        Ok(Tensor::new(&s, T::wrap(Buf::from(part.to_vec())))?)
    }
    crate::match_any!(t.data(), buf => go(buf, t.shape(), a, b))
}

/// `parts` (same dtype, same inner dims) concatenated along dim 0.
fn concat_rows(parts: &[&Tensor], inner_shape: &[usize], dtype: DType) -> Result<Tensor, OpError> {
    fn go<T: Element>(_like: &Buf<T>, parts: &[&Tensor], n: usize) -> Result<Data, OpError> {
        let mut out: Vec<T> = Vec::with_capacity(n);
        for p in parts {
            out.extend_from_slice(p.as_slice::<T>()?);
        }
        Ok(T::wrap(Buf::from(out)))
    }
    let rows: usize = parts.iter().map(|p| p.shape()[0]).sum();
    let mut shape = vec![rows];
    shape.extend_from_slice(inner_shape);
    let Some(first) = parts.first() else {
        return Ok(Tensor::zeros(dtype, &shape)?);
    };
    let n: usize = parts.iter().map(|p| p.len()).sum();
    let data = crate::match_any!(first.data(), b => go(b, parts, n)?);
    Ok(Tensor::new(&shape, data)?)
}

/// `RaggedTensorToVariant` (inputs `rt_nested_splits` x RAGGED_RANK, `rt_dense_values`):
/// `batched_input=false` gives a scalar variant holding the whole ragged tensor; `true` one
/// variant per row of the outermost dimension, each with RAGGED_RANK - 1 splits rebased to 0.
#[derive(Debug)]
pub(super) struct ToVariant {
    ragged_rank: usize,
    batched: bool,
}

impl ToVariant {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        check_split_dtype(cx)?;
        let ragged_rank = cx.attr_usize("RAGGED_RANK")?;
        let batched = cx.attr_bool("batched_input")?;
        if batched && ragged_rank == 0 {
            return Err(OpError::Attr {
                name: "RAGGED_RANK".into(),
                what: "must be >= 1 when batched_input is true".into(),
            });
        }
        Ok(Box::new(ToVariant {
            ragged_rank,
            batched,
        }))
    }
}

impl Op for ToVariant {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let r = self.ragged_rank;
        if inputs.len() != r + 1 {
            return Err(OpError::Arity {
                expected: r + 1,
                got: inputs.len(),
            });
        }
        let mut inputs = inputs;
        let values = inputs.pop().expect("arity checked");
        let splits = inputs;
        if values.rank() == 0 {
            return Err(OpError::invalid("ragged values must have rank >= 1"));
        }
        let split_dtype = splits.first().map(Tensor::dtype);
        if splits.iter().any(|s| Some(s.dtype()) != split_dtype)
            || split_dtype.is_some_and(|d| !matches!(d, DType::I32 | DType::I64))
        {
            return Err(OpError::invalid(
                "rt_nested_splits must all be int32 or int64",
            ));
        }
        // Check innermost first: level k ends at level k+1's row count.
        let mut checked: Vec<Vec<i64>> = vec![Vec::new(); r];
        let mut inner = values.shape()[0];
        for k in (0..r).rev() {
            checked[k] = checked_splits(&splits[k], Some(inner), "rt_nested_splits")?;
            inner = checked[k].len() - 1;
        }
        if !self.batched {
            let h = RaggedVariant {
                splits: splits.into_vec(),
                values,
            }
            .into_handle();
            return Ok(tensors![Tensor::new(&[], Data::Variant(vec![h].into()))?]);
        }
        let split_dtype = split_dtype.expect("ragged rank >= 1 when batched");
        let nrows = checked[0].len() - 1;
        cx.call.check_alloc(nrows, DType::Variant)?;
        let mut out = Vec::with_capacity(nrows);
        for i in 0..nrows {
            // Row i's range at each level, outermost first.
            let (mut a, mut b) = (checked[0][i] as usize, checked[0][i + 1] as usize);
            let mut row_splits = Vec::with_capacity(r - 1);
            for level in &checked[1..] {
                let s = &level[a..=b];
                let base = s[0];
                row_splits.push(splits_tensor(
                    s.iter().map(|x| x - base).collect(),
                    split_dtype,
                ));
                (a, b) = (level[a] as usize, level[b] as usize);
            }
            let v = rows(&values, a, b)?;
            out.push(
                RaggedVariant {
                    splits: row_splits,
                    values: v,
                }
                .into_handle(),
            );
        }
        Ok(tensors![Tensor::new(&[nrows], Data::Variant(out.into()))?])
    }
}

/// `RaggedTensorFromVariant` (input `encoded_ragged` of rank d; outputs
/// `output_nested_splits` x output_ragged_rank, `output_dense_values`): d = 0 returns the
/// encoded tensor; otherwise the d-dimensional array of ragged components is stacked, giving
/// d uniform/row-length split levels above the components' own (input_ragged_rank) levels.
#[derive(Debug)]
pub(super) struct FromVariant {
    input_ragged_rank: i64,
    output_ragged_rank: usize,
    values: DType,
    split: DType,
}

impl FromVariant {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        let split = check_split_dtype(cx)?;
        let input_ragged_rank = cx.attr_i64("input_ragged_rank")?;
        if input_ragged_rank < -1 {
            return Err(OpError::Attr {
                name: "input_ragged_rank".into(),
                what: "must be >= -1".into(),
            });
        }
        Ok(Box::new(FromVariant {
            input_ragged_rank,
            output_ragged_rank: cx.attr_usize("output_ragged_rank")?,
            values: cx.attr_type("Tvalues")?,
            split,
        }))
    }

    /// The components, checked as TF's `RaggedComponentsFromVariant` does.
    fn components<'t>(
        &self,
        t: &'t Tensor,
        ragged_rank: usize,
    ) -> Result<Vec<&'t RaggedVariant>, OpError> {
        let Data::Variant(b) = t.data() else {
            return Err(OpError::dtype(0, "variant", t.dtype()));
        };
        b.iter()
            .enumerate()
            .map(|(i, h)| {
                let c = h.value.downcast_ref::<RaggedVariant>().ok_or_else(|| {
                    OpError::invalid(format!(
                        "Input Variant element at index {i} doesn't hold a RaggedTensorVariant: {}",
                        h.name
                    ))
                })?;
                if c.splits.len() != ragged_rank {
                    return Err(OpError::invalid(format!(
                        "Encoded input RaggedTensorVariant has ragged_rank={}.  Expected \
                         ragged_rank={ragged_rank}.",
                        c.splits.len()
                    )));
                }
                if c.values.dtype() != self.values {
                    return Err(OpError::invalid(format!(
                        "Expected values Tensor dtype: {}, found: {}",
                        self.values,
                        c.values.dtype()
                    )));
                }
                if c.values.rank() < 1 {
                    return Err(OpError::invalid(format!(
                        "Ragged values must have rank >= 1; encoded scalar element at index \
                         {i} has a scalar values Tensor"
                    )));
                }
                for s in &c.splits {
                    if s.dtype() != self.split {
                        return Err(OpError::invalid(format!(
                            "Expected row_splits Tensor dtype: {}, found: {}",
                            self.split,
                            s.dtype()
                        )));
                    }
                }
                Ok(c)
            })
            .collect()
    }
}

impl Op for FromVariant {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [t] = crate::ops::take_inputs(inputs)?;
        let d = t.rank();
        let input_rr = if self.input_ragged_rank == -1 {
            let r = self.output_ragged_rank as i64 - d as i64;
            if r < 0 {
                return Err(OpError::invalid(format!(
                    "Inferred input_ragged_rank (output_ragged_rank - encoded_variant.dims()) \
                     must be >= 0, found output_ragged_rank: {}, encoded_variant.dims(): {d}, \
                     inferred input_ragged_rank: {r}",
                    self.output_ragged_rank
                )));
            }
            r as usize
        } else {
            self.input_ragged_rank as usize
        };
        if self.output_ragged_rank != d + input_rr {
            return Err(OpError::invalid(format!(
                "output_ragged_rank must be equal to input_ragged_rank + encoded_ragged.dims(); \
                 output_ragged_rank: {}, input_ragged_rank: {input_rr}, \
                 encoded_variant.dims(): {d}.",
                self.output_ragged_rank
            )));
        }
        let comps = self.components(&t, input_rr)?;
        // Each component's splits must be consistent before their values are indexed.
        for c in &comps {
            let mut inner = c.values.shape()[0];
            for s in c.splits.iter().rev() {
                inner = checked_splits(s, Some(inner), "encoded row_splits")?.len() - 1;
            }
        }
        if d == 0 {
            let c = comps
                .first()
                .ok_or_else(|| OpError::invalid("empty variant"))?;
            let mut out = c.splits.clone();
            out.push(c.values.clone());
            return Ok(out.into());
        }
        let mut out: Vec<Vec<i64>> = Vec::with_capacity(self.output_ragged_rank);
        // Uniform splits for the leading d - 1 dimensions. TF quirk copied
        // (`NestedStackRaggedTensors`): level i has dims[i] + 1 entries j * dims[i + 1],
        // not one entry per row of the level above, so for d >= 3 the levels below the
        // first are shorter than a consistent RaggedTensor needs (TF 2.21 returns them so:
        // shape [2, 2, 2] gives [0, 2, 4], [0, 2, 4], then 9 component splits).
        let dims = t.shape();
        for w in dims.windows(2) {
            cx.call.check_alloc(w[0].saturating_add(1), DType::I64)?;
            out.push((0..=w[0] as i64).map(|j| j * w[1] as i64).collect());
        }
        // One row per component: its outer length.
        let mut s = Vec::with_capacity(comps.len() + 1);
        s.push(0i64);
        for c in &comps {
            let len = match c.splits.first() {
                Some(sp) if input_rr != 0 => sp.len() as i64 - 1,
                _ => c.values.shape()[0] as i64,
            };
            s.push(s[s.len() - 1] + len);
        }
        out.push(s);
        // The components' own levels, offset-concatenated.
        for level in 0..input_rr {
            let mut s = vec![0i64];
            for c in &comps {
                let v = c.splits[level].to_i64_vec()?;
                let base = s[s.len() - 1];
                s.extend(v[1..].iter().map(|x| x + base));
            }
            cx.call.check_alloc(s.len(), DType::I64)?;
            out.push(s);
        }
        // Values: same rank and inner dims everywhere (TF: "must match").
        let inner_shape: Vec<usize> = match comps.first() {
            Some(c) => c.values.shape()[1..].to_vec(),
            None => Vec::new(),
        };
        for (i, c) in comps.iter().enumerate() {
            if c.values.shape()[1..] != inner_shape[..] {
                return Err(OpError::invalid(format!(
                    "Rank of values must match for all components; values shape at index 0: \
                     {:?}, values shape at index {i}: {:?} (check fn_output_signature)",
                    comps[0].values.shape(),
                    c.values.shape()
                )));
            }
        }
        let total: usize = comps.iter().map(|c| c.values.len()).sum();
        cx.call.check_alloc(total, self.values)?;
        let parts: Vec<&Tensor> = comps.iter().map(|c| &c.values).collect();
        let values = concat_rows(&parts, &inner_shape, self.values)?;
        let mut res: Vec<Tensor> = out
            .into_iter()
            .map(|s| splits_tensor(s, self.split))
            .collect();
        res.push(values);
        Ok(res.into())
    }
}

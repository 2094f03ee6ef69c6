//! `RaggedTensorToTensor`: a ragged tensor (row partitions plus flat values) padded or
//! truncated into a dense tensor. TF reference: core/kernels/ragged_tensor_to_tensor_op.cc,
//! core/util/ragged_to_dense_util.cc.
//!
//! Every row partition comes from data. Unlike TF's kernel, which trusts them (and reads
//! past the values when a partition overshoots), each is checked here: row splits start at
//! 0, never decrease and end at the next level's length; value row ids are sorted and in
//! range; the last level covers exactly the flat values.

use crate::ops::{BuildCtx, EvalCtx, Op, OpError, Tensors};
use crate::tensor::{Buf, Data, Element, Tensor};

/// How one row partition tensor describes its level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Partition {
    /// `[rows + 1]` offsets of each row in the next level.
    RowSplits,
    /// `[next level length]` sorted parent row of each entry of the next level.
    ValueRowIds,
}

/// `RaggedTensorToTensor` (inputs `shape`, `values`, `default_value`,
/// `row_partition_tensors...`).
#[derive(Debug)]
pub(super) struct RaggedToTensor {
    /// Whether the first partition tensor is the `FIRST_DIM_SIZE` scalar.
    first_dim_size: bool,
    /// One partition per ragged dimension (the `FIRST_DIM_SIZE` entry excluded).
    levels: Vec<Partition>,
}

impl RaggedToTensor {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        let types = cx.attr_list_str("row_partition_types");
        let n = cx
            .attr_opt_i64("num_row_partition_tensors")
            .unwrap_or(types.len() as i64);
        if n != types.len() as i64 {
            return Err(OpError::Attr {
                name: "row_partition_types".into(),
                what: format!("{} types for {n} row partition tensors", types.len()),
            });
        }
        let first_dim_size = types.first().map(String::as_str) == Some("FIRST_DIM_SIZE");
        let mut levels = Vec::with_capacity(types.len());
        for (i, t) in types.iter().enumerate().skip(usize::from(first_dim_size)) {
            levels.push(match t.as_str() {
                "ROW_SPLITS" => Partition::RowSplits,
                "VALUE_ROWIDS" if i > 0 => Partition::ValueRowIds,
                "VALUE_ROWIDS" => {
                    return Err(OpError::invalid(
                        "cannot handle VALUE_ROWIDS in the first dimension",
                    ))
                }
                "FIRST_DIM_SIZE" => {
                    return Err(OpError::invalid(
                        "FIRST_DIM_SIZE may only be the first row partition type",
                    ))
                }
                other => {
                    return Err(OpError::Unimplemented(format!(
                        "RaggedTensorToTensor row partition type {other:?}"
                    )))
                }
            });
        }
        if levels.is_empty() {
            return Err(OpError::invalid(format!(
                "row_partition_types {types:?} describe no ragged dimension"
            )));
        }
        cx.expect_inputs(3 + types.len())?;
        Ok(Box::new(RaggedToTensor {
            first_dim_size,
            levels,
        }))
    }

    /// The requested output shape: `None` for the fully unknown scalar `-1`.
    fn requested_shape(shape: &Tensor) -> Result<Option<Vec<i64>>, OpError> {
        let dims = shape.to_i64_vec()?;
        match shape.rank() {
            0 if dims == [-1] => Ok(None),
            0 => Err(OpError::invalid(
                "the only valid scalar shape tensor is the fully unknown shape specified as -1",
            )),
            1 => {
                if let Some(&d) = dims.iter().find(|&&d| d < -1) {
                    return Err(OpError::invalid(format!("dimension {d} must be >= -1")));
                }
                Ok(Some(dims))
            }
            r => Err(OpError::shape(format!(
                "shape must be a scalar or a vector, got rank {r}"
            ))),
        }
    }

    /// Every level as row splits, checked against its parent count; the last level must
    /// cover exactly `nvals` values.
    fn splits(
        &self,
        cx: &EvalCtx<'_>,
        parts: &[Tensor],
        mut parents: usize,
        nvals: usize,
    ) -> Result<Vec<Vec<usize>>, OpError> {
        let mut out = Vec::with_capacity(self.levels.len());
        for (k, (kind, t)) in self.levels.iter().zip(parts).enumerate() {
            if t.rank() != 1 {
                return Err(OpError::shape(format!(
                    "row partition {k} must be a vector, got shape {:?}",
                    t.shape()
                )));
            }
            let p = t.i64_cow()?;
            cx.limits()
                .check_alloc(parents + 1, crate::tensor::DType::I64)?;
            let splits = match kind {
                Partition::RowSplits => {
                    if p.len() != parents + 1 {
                        return Err(OpError::invalid(format!(
                            "row_splits of ragged dimension {} has {} entries, expected {} \
                             (one more than its {parents} rows)",
                            k + 1,
                            p.len(),
                            parents + 1
                        )));
                    }
                    if p[0] != 0 {
                        return Err(OpError::invalid(format!(
                            "row_splits of ragged dimension {} must start with 0, not {}",
                            k + 1,
                            p[0]
                        )));
                    }
                    if let Some(i) = p.windows(2).position(|w| w[0] > w[1]) {
                        return Err(OpError::invalid(format!(
                            "row_splits of ragged dimension {} decrease at {i}: {} > {}",
                            k + 1,
                            p[i],
                            p[i + 1]
                        )));
                    }
                    // Non-negative and non-decreasing from 0.
                    p.iter().map(|&v| v as usize).collect::<Vec<_>>()
                }
                Partition::ValueRowIds => {
                    let mut splits = vec![0usize; parents + 1];
                    let mut last = 0i64;
                    for (i, &r) in p.iter().enumerate() {
                        if r < 0 || r as u64 >= parents as u64 {
                            return Err(OpError::invalid(format!(
                                "value_rowids[{i}] = {r} of ragged dimension {} is not in \
                                 [0, {parents})",
                                k + 1
                            )));
                        }
                        if r < last {
                            return Err(OpError::invalid(format!(
                                "value_rowids of ragged dimension {} are not sorted at {i}",
                                k + 1
                            )));
                        }
                        last = r;
                        splits[r as usize + 1] += 1;
                    }
                    let mut sum = 0;
                    for s in &mut splits {
                        sum += *s;
                        *s = sum;
                    }
                    splits
                }
            };
            parents = *splits.last().expect("parents + 1 entries");
            out.push(splits);
        }
        if parents != nvals {
            return Err(OpError::invalid(format!(
                "the row partitions describe {parents} values but values has {nvals} rows"
            )));
        }
        Ok(out)
    }
}

/// TF's `ValidateDefaultValueShape`: rank below the values' and each dim (aligned with the
/// values' inner dims from the left) 1 or equal.
fn check_default_shape(default: &[usize], values: &[usize]) -> Result<(), OpError> {
    let bad = default.len() >= values.len()
        || default
            .iter()
            .zip(&values[1..])
            .any(|(&d, &v)| d != 1 && d != v);
    if bad {
        return Err(OpError::invalid(format!(
            "default_value.shape={default:?} and rt_input.flat_values.shape={values:?} are \
             incompatible"
        )));
    }
    Ok(())
}

/// One default element of `elem` shape: TF fills with a single value, uses a default of the
/// element's size as is (flat, even when its shape differs), and otherwise broadcasts it
/// (numpy-style, from the right).
fn default_element<T: Clone>(
    d: &[T],
    d_shape: &[usize],
    elem: &[usize],
) -> Result<Vec<T>, OpError> {
    let n: usize = elem.iter().product();
    if d.len() == 1 {
        return Ok(vec![d[0].clone(); n]);
    }
    if d.len() == n {
        return Ok(d.to_vec());
    }
    let off = elem.len() - d_shape.len(); // d_shape.len() < elem.len() + 1 was checked
    if d_shape
        .iter()
        .zip(&elem[off..])
        .any(|(&a, &b)| a != 1 && a != b)
    {
        return Err(OpError::invalid("error broadcasting default_value"));
    }
    let mut out = Vec::with_capacity(n);
    for e in 0..n {
        // Index of element `e` in `elem`, folded into `d_shape` (size-1 dims pinned to 0).
        let (mut rem, mut src, mut stride) = (e, 0usize, 1usize);
        for ax in (0..elem.len()).rev() {
            let i = rem % elem[ax];
            rem /= elem[ax];
            if ax >= off {
                let dd = d_shape[ax - off];
                if dd != 1 {
                    src += i * stride;
                }
                stride *= dd;
            }
        }
        out.push(d[src].clone());
    }
    Ok(out)
}

/// Fills the output with the default element, then copies each kept value's element to
/// its slot (`pos[v]`, in elements of `elem_n`).
fn place<T: Element>(
    values: &[T],
    default: &[T],
    d_shape: &[usize],
    elem: &[usize],
    pos: &[Option<usize>],
    total: usize,
) -> Result<Data, OpError> {
    let elem_n: usize = elem.iter().product();
    let d = default_element(default, d_shape, elem)?;
    let mut out: Vec<T> = Vec::with_capacity(total);
    for _ in 0..total.checked_div(elem_n).unwrap_or(0) {
        out.extend_from_slice(&d);
    }
    for (v, p) in pos.iter().enumerate() {
        if let Some(p) = *p {
            out[p * elem_n..(p + 1) * elem_n]
                .clone_from_slice(&values[v * elem_n..(v + 1) * elem_n]);
        }
    }
    Ok(T::wrap(Buf::from(out)))
}

impl Op for RaggedToTensor {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let nparts = self.levels.len() + usize::from(self.first_dim_size);
        if inputs.len() != 3 + nparts {
            return Err(OpError::Arity {
                expected: 3 + nparts,
                got: inputs.len(),
            });
        }
        let (shape, values, default) = (&inputs[0], &inputs[1], &inputs[2]);
        let parts = &inputs[3..];
        if values.dtype() != default.dtype() {
            return Err(OpError::dtype(2, values.dtype().name(), default.dtype()));
        }
        let vshape = values.shape();
        let nvals = *vshape
            .first()
            .ok_or_else(|| OpError::shape("values must have rank >= 1"))?;
        if parts[0].is_empty() {
            return Err(OpError::invalid(
                "invalid first partition input: it requires at least one element",
            ));
        }
        let first_dim = if self.first_dim_size {
            let v = parts[0].scalar_value_i64()?;
            usize::try_from(v)
                .map_err(|_| OpError::invalid(format!("dimension {v} must be >= 0")))?
        } else {
            parts[0].len() - 1
        };
        let ragged = self.levels.len();
        let splits = self.splits(
            cx,
            &parts[usize::from(self.first_dim_size)..],
            first_dim,
            nvals,
        )?;

        // Output shape (TF's CombineRaggedTensorToTensorShapes, then -1 filled in).
        let rank = ragged + vshape.len();
        let mut want = Self::requested_shape(shape)?.unwrap_or_else(|| vec![-1; rank]);
        if want.len() != rank {
            return Err(OpError::invalid(format!(
                "rt_input.shape and shape={want:?} are incompatible: rt_input.rank = {rank} \
                 but shape.rank = {}",
                want.len()
            )));
        }
        for (i, &vd) in vshape.iter().enumerate().skip(1) {
            let o = &mut want[ragged + i];
            if *o >= 0 && *o as u64 != vd as u64 {
                return Err(OpError::invalid(format!(
                    "rt_input.shape and shape are incompatible: rt_input.shape[{}] = {vd} but \
                     shape[{}] = {o}",
                    i + ragged,
                    i + ragged
                )));
            }
            *o = vd as i64;
        }
        check_default_shape(default.shape(), vshape)?;
        let mut out_shape: Vec<usize> = Vec::with_capacity(rank);
        for (i, &d) in want.iter().enumerate() {
            out_shape.push(match d {
                -1 if i == 0 => first_dim,
                -1 => splits[i - 1]
                    .windows(2)
                    .map(|w| w[1] - w[0])
                    .max()
                    .unwrap_or(0),
                d => usize::try_from(d)
                    .map_err(|_| OpError::invalid(format!("invalid dimension size {d}")))?,
            });
        }
        let total = crate::tensor::num_elements(&out_shape)
            .ok_or_else(|| OpError::Limit(format!("output shape {out_shape:?} overflows")))?;
        cx.limits().check_alloc(total, values.dtype())?;
        if total == 0 {
            // As TF: nothing to place (and the strides below could overflow when a zero
            // dimension hides huge ones).
            return Ok(tensors![Tensor::zeros(values.dtype(), &out_shape)?]);
        }

        // `mult[i]`: output entries (of inner elements) one step along dimension i moves.
        let mut mult = vec![1usize; ragged + 1];
        for i in (0..ragged).rev() {
            mult[i] = mult[i + 1] * out_shape[i + 1];
        }
        // Output slot of each entry, level by level; `None` once truncated away.
        let mut pos: Vec<Option<usize>> = (0..first_dim)
            .map(|i| (i < out_shape[0]).then(|| i * mult[0]))
            .collect();
        for (k, s) in splits.iter().enumerate() {
            let mut next = Vec::with_capacity(*s.last().expect("non-empty"));
            for (p, w) in pos.iter().zip(s.windows(2)) {
                for j in 0..w[1] - w[0] {
                    next.push(
                        p.filter(|_| j < out_shape[k + 1])
                            .map(|p| p + j * mult[k + 1]),
                    );
                }
            }
            pos = next;
        }
        let elem = &out_shape[ragged + 1..];
        let data = crate::match_any!(values.data(), b => {
            let d = Element::buf(default.data()).expect("dtype checked above");
            place(&b[..], &d[..], default.shape(), elem, &pos, total)?
        });
        Ok(tensors![Tensor::new(&out_shape, data)?])
    }
}

#[cfg(test)]
#[path = "ragged_tests.rs"]
mod tests;

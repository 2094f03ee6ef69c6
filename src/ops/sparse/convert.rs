//! `SparseFillEmptyRows`, `SparseReshape`, `SparseToDense`, `RaggedTensorToSparse`,
//! `DenseBincount` / `Bincount`, `RaggedBincount`, `SparseBincount`.

use super::{dims, index_matrix, shape_vector};
use crate::ops::{take_inputs, BuildCtx, EvalCtx, Op, OpError, Tensors};
use crate::tensor::{DType, Data, Element, Tensor};

/// `SparseFillEmptyRows`: adds `[row, 0, ..., 0] = default_value` for every empty row.
/// Outputs `output_indices`, `output_values`, `empty_row_indicator` (bool `[rows]`) and
/// `reverse_index_map` (int64 `[n]`, input entry -> output position). Output rows are in
/// ascending order and entries of one row keep their input order, as TF's CPU kernel does
/// even for unordered input.
#[derive(Debug)]
pub(super) struct FillEmptyRows;

impl FillEmptyRows {
    pub(super) fn build(_: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(FillEmptyRows))
    }
}

impl Op for FillEmptyRows {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [indices, values, dense_shape, default] = take_inputs(inputs)?;
        let (n, rank, idx) = index_matrix(&indices, "indices")?;
        let shape = shape_vector(&dense_shape, "dense_shape")?;
        if shape.len() != rank || rank == 0 || values.rank() != 1 || values.len() != n {
            return Err(OpError::shape(format!(
                "indices {:?}, values {:?} and dense_shape {:?} do not describe a sparse tensor",
                indices.shape(),
                values.shape(),
                dense_shape.shape()
            )));
        }
        if default.len() != 1 || default.dtype() != values.dtype() {
            return Err(OpError::shape(
                "default_value must be a scalar of the values' dtype",
            ));
        }
        let rows = usize::try_from(shape[0])
            .map_err(|_| OpError::invalid(format!("dense_shape[0] = {} is negative", shape[0])))?;
        if rows == 0 && n > 0 {
            return Err(OpError::invalid(format!(
                "received SparseTensor with dense_shape[0] = 0 but indices.shape[0] = {n}"
            )));
        }
        cx.limits().check_alloc(rows, DType::I64)?;
        // Entries per row, whether rows are already non-decreasing (TF's `rows_are_ordered`).
        let mut count = vec![0usize; rows];
        let mut ordered = true;
        let mut last = 0i64;
        for (i, row) in idx.chunks_exact(rank).enumerate() {
            let r = row[0];
            if r as u64 >= rows as u64 {
                return Err(OpError::invalid(format!(
                    "indices({i}, 0) is invalid: {r} >= {rows}"
                )));
            }
            count[r as usize] += 1;
            ordered &= r >= last;
            last = r;
        }
        let empty: Vec<bool> = count.iter().map(|&c| c == 0).collect();
        if ordered && !empty.contains(&true) && indices.dtype() == DType::I64 {
            // Nothing to fill or reorder: TF forwards indices and values as they are.
            drop(idx);
            return Ok(tensors![
                indices,
                values,
                Tensor::from_vec(&[rows], empty)?,
                Tensor::from_vec(&[n], (0..n as i64).collect())?,
            ]);
        }
        // Start of each row in the output (an empty row takes one slot); becomes the next
        // free slot of the row as its entries are placed.
        let mut next = Vec::with_capacity(rows);
        let mut total = 0usize;
        for &c in &count {
            next.push(total);
            total += c.max(1);
        }
        cx.limits()
            .check_alloc(total.saturating_mul(rank), DType::I64)?;
        let mut out_idx = vec![0i64; total * rank];
        let mut reverse = vec![0i64; n];
        for (row, rev) in idx.chunks_exact(rank).zip(&mut reverse) {
            let r = row[0] as usize;
            let pos = next[r];
            next[r] += 1;
            out_idx[pos * rank..(pos + 1) * rank].copy_from_slice(row);
            *rev = pos as i64;
        }
        // Row `r`'s filled slot is where its (empty) run started: `next[r]` never advanced.
        for (r, &e) in empty.iter().enumerate() {
            if e {
                out_idx[next[r] * rank] = r as i64;
            }
        }
        fn place<T: Element>(v: &[T], d: &T, reverse: &[i64], total: usize) -> Data {
            let mut out = vec![d.clone(); total];
            for (x, &p) in v.iter().zip(reverse) {
                out[p as usize] = x.clone();
            }
            T::wrap(out.into())
        }
        let out_vals = crate::match_any!(values.data(), b => {
            let d = Element::buf(default.data()).expect("dtype checked above");
            place(&b[..], &d[0], &reverse, total)
        });
        Ok(tensors![
            Tensor::from_vec(&[total, rank], out_idx)?,
            Tensor::new(&[total], out_vals)?,
            Tensor::from_vec(&[rows], empty)?,
            Tensor::from_vec(&[n], reverse)?,
        ])
    }
}

/// `SparseReshape`: re-linearizes the indices for `new_shape` (at most one `-1`).
#[derive(Debug)]
pub(super) struct SparseReshape;

impl SparseReshape {
    pub(super) fn build(_: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(SparseReshape))
    }
}

impl Op for SparseReshape {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [indices, in_shape, new_shape] = take_inputs(inputs)?;
        let (n, rank) = match indices.shape() {
            &[n, rank] => (n, rank),
            s => {
                return Err(OpError::shape(format!(
                    "input_indices must be a matrix, got shape {s:?}"
                )))
            }
        };
        let in_shape = shape_vector(&in_shape, "input_shape")?;
        if in_shape.len() != rank {
            return Err(OpError::shape(format!(
                "input_indices has rank {rank} but input_shape has {} dims",
                in_shape.len()
            )));
        }
        let (in_dims, dense) = dims(&in_shape, "input_shape")?;
        let mut out = shape_vector(&new_shape, "new_shape")?;
        let mut unknown = None;
        let mut product = 1usize;
        for (d, &v) in out.iter().enumerate() {
            match v {
                -1 if unknown.is_none() => unknown = Some(d),
                -1 => return Err(OpError::invalid("only one output dimension may be -1")),
                v if v < 0 => {
                    return Err(OpError::invalid(format!(
                        "size {d} must be non-negative, not {v}"
                    )))
                }
                v => {
                    product = product
                        .checked_mul(v as usize)
                        .ok_or_else(|| OpError::Limit("new_shape overflows".into()))?
                }
            }
        }
        if let Some(d) = unknown {
            if product == 0 {
                return Err(OpError::invalid(
                    "reshape cannot infer the missing input size for an empty tensor unless all \
                     specified input sizes are non-zero",
                ));
            }
            out[d] = (dense / product) as i64;
            product *= dense / product;
        }
        if product != dense {
            return Err(OpError::invalid(format!(
                "input to reshape is a tensor with {dense} dense values, but the requested \
                 shape has {product}"
            )));
        }
        if out == in_shape && indices.dtype() == DType::I64 {
            // TF quirk (reshape_util.cc): reshaping to the same shape forwards the indices
            // untouched, without checking them against the shape.
            return Ok(tensors![indices, Tensor::vector(out)]);
        }
        let idx = indices.to_i64_vec()?;
        let out_rank = out.len();
        cx.limits()
            .check_alloc(n.saturating_mul(out_rank), DType::I64)?;
        let (out_dims, _) = dims(&out, "new_shape")?;
        let mut result = vec![0i64; n * out_rank];
        for i in 0..n {
            let mut linear = 0usize;
            for (d, &size) in in_dims.iter().enumerate() {
                let v = idx[i * rank + d];
                if v < 0 || v as usize >= size {
                    return Err(OpError::invalid(format!(
                        "index {v} of entry {i} is out of range for input_shape {in_shape:?}"
                    )));
                }
                linear = linear * size + v as usize;
            }
            for d in (0..out_rank).rev() {
                result[i * out_rank + d] = (linear % out_dims[d]) as i64;
                linear /= out_dims[d];
            }
        }
        Ok(tensors![
            Tensor::from_vec(&[n, out_rank], result)?,
            Tensor::vector(out),
        ])
    }
}

/// `SparseToDense`: scatters `sparse_values` (scalar or `[n]`) into a dense tensor of
/// `output_shape` filled with `default_value`. Indices are always bounds-checked; with
/// `validate_indices` (default) they must also be strictly increasing (no duplicates).
#[derive(Debug)]
pub(super) struct SparseToDense {
    validate: bool,
}

impl SparseToDense {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(SparseToDense {
            validate: cx.attr_opt_bool("validate_indices").unwrap_or(true),
        }))
    }
}

impl Op for SparseToDense {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [indices, out_shape, values, default] = take_inputs(inputs)?;
        let shape = shape_vector(&out_shape, "output_shape")?;
        let (out_dims, total) = dims(&shape, "output_shape")?;
        let rank = out_dims.len();
        let idx = indices.to_i64_vec()?;
        let (n, cols) = match indices.shape() {
            [] => (1, idx.len()),
            &[n] => (n, 1),
            &[n, c] => (n, c),
            s => {
                return Err(OpError::shape(format!(
                    "sparse_indices has rank {}",
                    s.len()
                )))
            }
        };
        if cols != rank {
            return Err(OpError::shape(format!(
                "sparse_indices has {cols} columns but output_shape has rank {rank}"
            )));
        }
        if (values.len() != n && values.len() != 1) || values.rank() > 1 || default.len() != 1 {
            return Err(OpError::shape(format!(
                "sparse_values {:?} / default_value {:?} do not fit {n} indices",
                values.shape(),
                default.shape()
            )));
        }
        if values.dtype() != default.dtype() {
            return Err(OpError::dtype(3, values.dtype().name(), default.dtype()));
        }
        cx.limits().check_alloc(total, values.dtype())?;
        let mut flat = Vec::with_capacity(n);
        for i in 0..n {
            let row = &idx[i * rank..(i + 1) * rank];
            let mut linear = 0usize;
            for (d, &v) in row.iter().enumerate() {
                if v < 0 || v as usize >= out_dims[d] {
                    return Err(OpError::invalid(format!(
                        "indices[{i}] = {row:?} is out of bounds: need 0 <= index < {out_dims:?}"
                    )));
                }
                linear = linear * out_dims[d] + v as usize;
            }
            if self.validate && i > 0 && flat[i - 1] >= linear {
                let what = if flat[i - 1] == linear {
                    "is repeated"
                } else {
                    "is out of order"
                };
                return Err(OpError::invalid(format!("indices[{i}] = {row:?} {what}")));
            }
            flat.push(linear);
        }
        fn scatter<T: Element>(v: &[T], d: &T, flat: &[usize], total: usize) -> Data {
            let mut out = vec![d.clone(); total];
            for (i, &p) in flat.iter().enumerate() {
                out[p] = v[if v.len() == 1 { 0 } else { i }].clone();
            }
            T::wrap(out.into())
        }
        let data = crate::match_any!(values.data(), b => {
            let d = Element::buf(default.data()).expect("dtype checked above");
            scatter(&b[..], &d[0], &flat, total)
        });
        Ok(tensors![Tensor::new(&out_dims, data)?])
    }
}

/// `RaggedTensorToSparse`: `RAGGED_RANK` row-splits vectors plus dense values to a sparse
/// tensor; the dense shape uses the longest row at each ragged level.
#[derive(Debug)]
pub(super) struct RaggedToSparse {
    ragged_rank: usize,
}

impl RaggedToSparse {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        let ragged_rank = cx.attr_usize("RAGGED_RANK")?;
        if ragged_rank == 0 || cx.num_inputs != ragged_rank + 1 {
            return Err(OpError::Arity {
                expected: ragged_rank + 1,
                got: cx.num_inputs,
            });
        }
        Ok(Box::new(RaggedToSparse { ragged_rank }))
    }
}

impl Op for RaggedToSparse {
    fn eval(&self, cx: &mut EvalCtx<'_>, mut inputs: Tensors) -> Result<Tensors, OpError> {
        if inputs.len() != self.ragged_rank + 1 {
            return Err(OpError::Arity {
                expected: self.ragged_rank + 1,
                got: inputs.len(),
            });
        }
        let values = inputs.pop().expect("length checked");
        let nvals = *values
            .shape()
            .first()
            .ok_or_else(|| OpError::shape("rt_dense_values must have rank >= 1"))?;
        let inner = &values.shape()[1..];
        let inner_n: usize = inner.iter().product();
        // `prefix[p]` = index path (one entry per level so far) of position p.
        let mut prefix: Vec<i64> = Vec::new();
        let mut width = 0;
        let mut dense_shape = Vec::new();
        for (k, t) in inputs.iter().enumerate() {
            let s = t.i64_cow()?;
            if t.rank() != 1 || s.first() != Some(&0) || s.windows(2).any(|w| w[0] > w[1]) {
                return Err(OpError::invalid(format!(
                    "rt_nested_splits[{k}] is not a valid row partition"
                )));
            }
            let parents = s.len() - 1;
            if k == 0 {
                dense_shape.push(parents as i64);
                prefix = (0..parents as i64).collect();
                width = 1;
            } else if parents * width != prefix.len() {
                return Err(OpError::invalid(format!(
                    "rt_nested_splits[{k}] has {parents} rows, expected {}",
                    prefix.len() / width.max(1)
                )));
            }
            let children = *s.last().expect("non-empty") as usize;
            cx.limits()
                .check_alloc(children.saturating_mul(width + 1), DType::I64)?;
            // Child `c`'s path is its parent's followed by its position in the parent. The
            // splits are non-decreasing from 0, so there are exactly `children` slots.
            let mut next = vec![0i64; children * (width + 1)];
            let mut slots = next.chunks_exact_mut(width + 1);
            let mut longest = 0;
            for p in 0..parents {
                let (a, b) = (s[p], s[p + 1]);
                longest = longest.max(b - a);
                let path = &prefix[p * width..(p + 1) * width];
                for (j, slot) in (0..b - a).zip(&mut slots) {
                    if width == 1 {
                        slot[0] = path[0];
                    } else {
                        slot[..width].copy_from_slice(path);
                    }
                    slot[width] = j;
                }
            }
            dense_shape.push(longest);
            prefix = next;
            width += 1;
        }
        if prefix.len() / width != nvals {
            return Err(OpError::invalid(format!(
                "last row split ends at {} but rt_dense_values has {nvals} rows",
                prefix.len() / width
            )));
        }
        dense_shape.extend(inner.iter().map(|&d| d as i64));
        if inner.is_empty() {
            // Scalar values (the usual tokens case): the index paths are the indices.
            return Ok(tensors![
                Tensor::from_vec(&[nvals, width], prefix)?,
                values,
                Tensor::vector(dense_shape),
            ]);
        }
        let out_rank = width + inner.len();
        let total = nvals * inner_n;
        cx.limits()
            .check_alloc(total.saturating_mul(out_rank), DType::I64)?;
        let mut idx = Vec::with_capacity(total * out_rank);
        let mut pos = vec![0usize; inner.len()];
        for v in 0..nvals {
            for e in 0..inner_n {
                idx.extend_from_slice(&prefix[v * width..(v + 1) * width]);
                let mut rem = e;
                for d in (0..inner.len()).rev() {
                    pos[d] = rem % inner[d];
                    rem /= inner[d];
                }
                idx.extend(pos.iter().map(|&p| p as i64));
            }
        }
        let flat = values.reshape(&[total])?;
        Ok(tensors![
            Tensor::from_vec(&[total, out_rank], idx)?,
            flat,
            Tensor::vector(dense_shape),
        ])
    }
}

/// `DenseBincount` / `Bincount`: counts (or sums `weights` of) each value of a 1-D or 2-D
/// int input into `size` bins; values `>= size` are ignored, negative ones are an error.
/// With `binary_output`, a bin is 1 if its value occurs.
#[derive(Debug)]
pub(super) struct Bincount {
    binary: bool,
}

impl Bincount {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(Bincount {
            binary: cx.attr_opt_bool("binary_output").unwrap_or(false),
        }))
    }
}

/// Counts `arr` into `out` (zeroed, one row of `size` bins); values `>= size` are dropped,
/// as in TF. The mode is matched once, outside the loop.
fn bincount_into<T>(arr: &[i64], w: Option<&[T]>, binary: bool, out: &mut [T])
where
    T: Copy + Default + std::ops::AddAssign + From<u8>,
{
    match (binary, w) {
        (true, _) => {
            for &v in arr {
                if let Some(bin) = out.get_mut(v as usize) {
                    *bin = T::from(1);
                }
            }
        }
        (false, Some(w)) => {
            for (&v, &x) in arr.iter().zip(w) {
                if let Some(bin) = out.get_mut(v as usize) {
                    *bin += x;
                }
            }
        }
        (false, None) => {
            for &v in arr {
                if let Some(bin) = out.get_mut(v as usize) {
                    *bin += T::from(1);
                }
            }
        }
    }
}

impl Op for Bincount {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [arr, size, weights] = take_inputs(inputs)?;
        let size = size.scalar_value_i64()?;
        let size = usize::try_from(size)
            .map_err(|_| OpError::invalid(format!("size ({size}) must be non-negative")))?;
        let values = arr.i64_cow()?;
        if values.iter().fold(false, |neg, &v| neg | (v < 0)) {
            return Err(OpError::invalid("input arr must be non-negative"));
        }
        let (rows, out_shape) = match arr.shape() {
            [] | [_] => (1, vec![size]),
            &[b, _] => (b, vec![b, size]),
            s => {
                return Err(OpError::shape(format!(
                    "input must be 1-D or 2-D, got {s:?}"
                )))
            }
        };
        let has_w = !weights.is_empty();
        if has_w && weights.shape() != arr.shape() {
            return Err(OpError::shape(format!(
                "weights {:?} must be empty or have the input's shape {:?}",
                weights.shape(),
                arr.shape()
            )));
        }
        cx.limits()
            .check_alloc(rows.saturating_mul(size), weights.dtype())?;
        let per = values.len() / rows.max(1);
        macro_rules! go {
            ($t:ty) => {{
                let w = if has_w {
                    Some(weights.as_slice::<$t>()?)
                } else {
                    None
                };
                let mut out = vec![<$t>::default(); rows * size];
                for (r, row) in out.chunks_exact_mut(size.max(1)).enumerate() {
                    let (a, b) = (r * per, (r + 1) * per);
                    bincount_into::<$t>(&values[a..b], w.map(|w| &w[a..b]), self.binary, row);
                }
                Tensor::from_vec(&out_shape, out)?
            }};
        }
        let out = match weights.dtype() {
            DType::F32 => go!(f32),
            DType::F64 => go!(f64),
            DType::I32 => go!(i32),
            DType::I64 => go!(i64),
            d => return Err(OpError::dtype(2, "float, double, int32 or int64", d)),
        };
        Ok(tensors![out])
    }
}

/// Runs `$body` with `$t` bound to the bincount output type (the weights' dtype `T`).
macro_rules! by_weight_dtype {
    ($dtype:expr, $t:ident => $body:expr) => {
        match $dtype {
            DType::F32 => {
                type $t = f32;
                $body
            }
            DType::F64 => {
                type $t = f64;
                $body
            }
            DType::I32 => {
                type $t = i32;
                $body
            }
            DType::I64 => {
                type $t = i64;
                $body
            }
            d => return Err(OpError::dtype(3, "float, double, int32 or int64", d)),
        }
    };
}

/// The `size` input: a non-negative scalar.
fn bin_count_size(size: &Tensor) -> Result<usize, OpError> {
    if size.rank() != 0 {
        return Err(OpError::shape(format!(
            "size must be a scalar, got shape {:?}",
            size.shape()
        )));
    }
    let v = size.scalar_value_i64()?;
    usize::try_from(v).map_err(|_| OpError::invalid(format!("size ({v}) must be non-negative")))
}

/// `rows x size` bins; value `i` (already known non-negative) goes to row `row_of(i)` and
/// is dropped when `>= size`.
fn bincount_rows<T>(
    rows: usize,
    size: usize,
    vals: &[i64],
    row_of: impl Fn(usize) -> usize,
    w: Option<&[T]>,
    binary: bool,
) -> Vec<T>
where
    T: Copy + Default + std::ops::AddAssign + From<u8>,
{
    let mut out = vec![T::default(); rows * size];
    for (i, &v) in vals.iter().enumerate() {
        if (v as u64) < size as u64 {
            let bin = &mut out[row_of(i) * size + v as usize];
            match (binary, w) {
                (true, _) => *bin = T::from(1),
                (false, Some(w)) => *bin += w[i],
                (false, None) => *bin += T::from(1),
            }
        }
    }
    out
}

/// Non-empty `weights` must pair with the values (TF's kernels read past shorter ones).
/// `binary_output` ignores them.
fn bincount_weights(weights: &Tensor, n: usize, binary: bool) -> Result<bool, OpError> {
    let has_w = !binary && !weights.is_empty();
    if has_w && weights.len() != n {
        return Err(OpError::invalid(format!(
            "weights has {} elements but there are {n} values (weights must be empty or \
             pair with the values)",
            weights.len()
        )));
    }
    Ok(has_w)
}

/// `RaggedBincount` (inputs `splits` int64, `values`, `size`, `weights`): one row of
/// `size` bins per ragged row. Negative values are an error; values `>= size` are dropped.
#[derive(Debug)]
pub(super) struct RaggedBincount {
    binary: bool,
}

impl RaggedBincount {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(RaggedBincount {
            binary: cx.attr_opt_bool("binary_output").unwrap_or(false),
        }))
    }
}

impl Op for RaggedBincount {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [splits, values, size, weights] = take_inputs(inputs)?;
        let size = bin_count_size(&size)?;
        let splits = splits.i64_cow()?;
        let vals = values.i64_cow()?;
        let n = vals.len();
        let (&first, &last) = match (splits.first(), splits.last()) {
            (Some(f), Some(l)) => (f, l),
            _ => return Err(OpError::invalid("splits must be non-empty")),
        };
        if first != 0 {
            return Err(OpError::invalid(format!(
                "splits must start with 0, not with {first}"
            )));
        }
        if last as u64 != n as u64 {
            return Err(OpError::invalid(format!(
                "splits must end with the number of values, got {last} instead of {n}"
            )));
        }
        if vals.iter().any(|&v| v < 0) {
            return Err(OpError::invalid("input must be non-negative"));
        }
        let rows = splits.len() - 1;
        let has_w = bincount_weights(&weights, n, self.binary)?;
        cx.limits()
            .check_alloc(rows.saturating_mul(size), weights.dtype())?;
        // Each value's row as TF's kernel scans for it: the first split past the value's
        // position. TF does not require the splits to be sorted, and neither does the scan
        // (it ends by `splits[rows] == n`); for sorted splits it is the usual row.
        let mut row_of = Vec::with_capacity(n);
        let mut b = 0usize;
        for idx in 0..n as i64 {
            while b < rows && idx >= splits[b] {
                b += 1;
            }
            row_of.push(b.saturating_sub(1));
        }
        let out = by_weight_dtype!(weights.dtype(), T => {
            let w = if has_w { Some(weights.as_slice::<T>()?) } else { None };
            let out = bincount_rows::<T>(rows, size, &vals, |i| row_of[i], w, self.binary);
            Tensor::from_vec(&[rows, size], out)?
        });
        Ok(tensors![out])
    }
}

/// `SparseBincount` (inputs `indices`, `values`, `dense_shape`, `size`, `weights`): a 1-D
/// sparse input gives `[size]` bins (values `>= size` dropped); otherwise one row of bins
/// per `dense_shape[0]`, keyed by each entry's first index, where TF rejects values
/// `>= size`. Negative values and batch indices are errors (TF's 2-D path would write
/// out of bounds).
#[derive(Debug)]
pub(super) struct SparseBincount {
    binary: bool,
}

impl SparseBincount {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(SparseBincount {
            binary: cx.attr_opt_bool("binary_output").unwrap_or(false),
        }))
    }
}

impl Op for SparseBincount {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [indices, values, dense_shape, size, weights] = take_inputs(inputs)?;
        let size = bin_count_size(&size)?;
        let vals = values.i64_cow()?;
        let n = vals.len();
        let shape = shape_vector(&dense_shape, "dense_shape")?;
        let has_w = bincount_weights(&weights, n, self.binary)?;
        if vals.iter().any(|&v| v < 0) {
            return Err(OpError::invalid("input arr must be non-negative"));
        }
        let (rows, out_shape, row_of) = if shape.len() == 1 {
            (1, vec![size], vec![0usize; n])
        } else {
            let rows = match shape.first() {
                Some(&r) => usize::try_from(r)
                    .map_err(|_| OpError::invalid(format!("dense_shape[0] = {r} is negative")))?,
                None => return Err(OpError::shape("dense_shape must not be empty")),
            };
            let (m, rank, idx) = index_matrix(&indices, "indices")?;
            if m != n || rank != shape.len() {
                return Err(OpError::shape(format!(
                    "indices {:?}, values {:?} and dense_shape {shape:?} do not describe a \
                     sparse tensor",
                    indices.shape(),
                    values.shape()
                )));
            }
            let mut row_of = Vec::with_capacity(n);
            for (i, (row, &bin)) in idx.chunks_exact(rank).zip(vals.iter()).enumerate() {
                let batch = row[0];
                if batch < 0 || batch as u64 >= rows as u64 {
                    return Err(OpError::invalid(format!(
                        "index out of bound: batch indices[{i}, 0] = {batch} must be in [0, {rows})"
                    )));
                }
                if bin as u64 >= size as u64 {
                    return Err(OpError::invalid(format!(
                        "index out of bound: bin values[{i}] = {bin} must be less than size {size}"
                    )));
                }
                row_of.push(batch as usize);
            }
            (rows, vec![rows, size], row_of)
        };
        cx.limits()
            .check_alloc(rows.saturating_mul(size), weights.dtype())?;
        let out = by_weight_dtype!(weights.dtype(), T => {
            let w = if has_w { Some(weights.as_slice::<T>()?) } else { None };
            let out = bincount_rows::<T>(rows, size, &vals, |i| row_of[i], w, self.binary);
            Tensor::from_vec(&out_shape, out)?
        });
        Ok(tensors![out])
    }
}

#[cfg(test)]
#[path = "convert_tests.rs"]
mod tests;

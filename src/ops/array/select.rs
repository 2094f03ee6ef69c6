//! Index-driven ops: `GatherV2`, `GatherNd`, `OneHot`, `Where`, `Unique`.
//! TF reference: core/kernels/{gather_op,gather_nd_op,one_hot_op,where_op,unique_op}.cc.

use std::collections::HashMap;

use half::{bf16, f16};

use super::{checked_len, norm_axis, tensor_of};
use crate::ops::{take_inputs, BuildCtx, EvalCtx, Op, OpError, Tensors};
use crate::tensor::{Buf, Bytes, DType, Data, Element, Tensor};

/// Gathers slices of `params` along `axis` at `indices` (int32/int64); out-of-range indices
/// are an error, as on TF's CPU kernel.
pub(crate) fn gather(
    cx: &EvalCtx<'_>,
    params: &Tensor,
    indices: &Tensor,
    axis: usize,
) -> Result<Tensor, OpError> {
    gather_batched(cx, params, indices, axis, 0)
}

/// [`gather`] with `batch_dims` leading dims shared by `params` and `indices`:
/// `out[b.., o.., j.., i..] = params[b.., o.., indices[b.., j..], i..]`.
fn gather_batched(
    cx: &EvalCtx<'_>,
    params: &Tensor,
    indices: &Tensor,
    axis: usize,
    batch_dims: usize,
) -> Result<Tensor, OpError> {
    let idx = indices.i64_cow()?;
    let shape = params.shape();
    if axis >= shape.len() {
        return Err(OpError::shape(format!(
            "axis {axis} out of range for rank {}",
            shape.len()
        )));
    }
    if batch_dims > axis || batch_dims > indices.rank() {
        return Err(OpError::invalid(format!(
            "batch_dims ({batch_dims}) must be <= axis ({axis}) and <= rank(indices) ({})",
            indices.rank()
        )));
    }
    if shape[..batch_dims] != indices.shape()[..batch_dims] {
        return Err(OpError::invalid(format!(
            "params.shape[:{batch_dims}] {:?} must equal indices.shape[:{batch_dims}] {:?}",
            &shape[..batch_dims],
            &indices.shape()[..batch_dims]
        )));
    }
    let batch: usize = shape[..batch_dims].iter().product();
    let outer: usize = shape[batch_dims..axis].iter().product();
    let n = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let mut out_shape: Vec<usize> = shape[..axis].to_vec();
    out_shape.extend_from_slice(&indices.shape()[batch_dims..]);
    out_shape.extend_from_slice(&shape[axis + 1..]);
    checked_len(cx, &out_shape, params)?;
    // A branch-free scan (vectorises); the search for the culprit only runs on error.
    let limit = n as u64;
    if idx.iter().fold(false, |bad, &i| bad | (i as u64 >= limit)) {
        let i = idx
            .iter()
            .find(|&&i| i as u64 >= limit)
            .expect("found above");
        return Err(OpError::invalid(format!(
            "indices value {i} is not in [0, {n})"
        )));
    }
    let m = idx.len().checked_div(batch).unwrap_or(0);
    fn run<T: Clone>(
        p: &[T],
        idx: &[i64],
        (batch, outer, n, inner, m): (usize, usize, usize, usize, usize),
    ) -> Vec<T> {
        let mut out = Vec::with_capacity(batch * outer * m * inner);
        for b in 0..batch {
            for o in 0..outer {
                let base = (b * outer + o) * n;
                let rows = &p[base * inner..(base + n) * inner];
                let ids = &idx[b * m..(b + 1) * m];
                match inner {
                    1 => out.extend(ids.iter().map(|&i| rows[i as usize].clone())),
                    2 => rows_of::<T, 2>(&mut out, rows, ids),
                    4 => rows_of::<T, 4>(&mut out, rows, ids),
                    _ => {
                        for &i in ids {
                            let start = i as usize * inner;
                            out.extend_from_slice(&rows[start..start + inner]);
                        }
                    }
                }
            }
        }
        out
    }
    /// Rows of a compile-time width `K`: for `Copy` elements each row is a fixed-size copy
    /// the compiler inlines, not a `memmove` call per (tiny) row.
    fn rows_of<T: Clone, const K: usize>(out: &mut Vec<T>, rows: &[T], ids: &[i64]) {
        for &i in ids {
            let start = i as usize * K;
            out.extend_from_slice(&rows[start..start + K]);
        }
    }
    let dims = (batch, outer, n, inner, m);
    let data = crate::match_any!(params.data(), b => {
        Element::wrap(Buf::from(run(&b[..], &idx, dims)))
    });
    Ok(Tensor::new(&out_shape, data)?)
}

/// `GatherV2`, with `batch_dims` (negative counts from the indices' rank).
#[derive(Debug)]
pub(super) struct GatherV2 {
    batch_dims: i64,
}

impl GatherV2 {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(GatherV2 {
            batch_dims: cx.attr_opt_i64("batch_dims").unwrap_or(0),
        }))
    }
}

impl Op for GatherV2 {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [params, indices, axis] = take_inputs(inputs)?;
        let a = norm_axis(axis.scalar_value_i64()?, params.rank())?;
        let bd = if self.batch_dims < 0 {
            self.batch_dims + indices.rank() as i64
        } else {
            self.batch_dims
        };
        let bd = usize::try_from(bd).map_err(|_| {
            OpError::invalid(format!(
                "Expected batch_dims in the range [-{r}, {r}], but got {}",
                self.batch_dims,
                r = indices.rank()
            ))
        })?;
        Ok(tensors![gather_batched(cx, &params, &indices, a, bd)?])
    }
}

/// `GatherNd`: `out[i.., j..] = params[indices[i.., :], j..]`; out-of-range indices are an
/// error (TF's CPU default `bad_indices_policy`).
#[derive(Debug)]
pub(super) struct GatherNd;

impl GatherNd {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        match cx.attr_opt_str("bad_indices_policy").as_deref() {
            None | Some("") | Some("DEFAULT") | Some("ERROR") => Ok(Box::new(GatherNd)),
            Some(p) => Err(OpError::Unimplemented(format!(
                "GatherNd with bad_indices_policy {p:?}"
            ))),
        }
    }
}

impl Op for GatherNd {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [params, indices] = take_inputs(inputs)?;
        let ps = params.shape();
        let is = indices.shape();
        let Some((&k, lead)) = is.split_last() else {
            return Err(OpError::invalid("indices must be at least a vector"));
        };
        if k > ps.len() {
            return Err(OpError::invalid(format!(
                "index innermost dimension length must be <= params rank; saw: {k} vs. {}",
                ps.len()
            )));
        }
        let mut out_shape = lead.to_vec();
        out_shape.extend_from_slice(&ps[k..]);
        checked_len(cx, &out_shape, &params)?;
        let inner: usize = ps[k..].iter().product();
        let idx = indices.to_i64_vec()?;
        let strides = super::row_strides(&ps[..k]);
        let mut offsets = Vec::with_capacity(lead.iter().product());
        for (n, tuple) in idx.chunks(k.max(1)).enumerate().take(if k == 0 {
            lead.iter().product()
        } else {
            usize::MAX
        }) {
            let mut off = 0usize;
            for (d, &v) in tuple.iter().enumerate().take(k) {
                if v < 0 || v as usize >= ps[d] {
                    return Err(OpError::invalid(format!(
                        "indices[{n}] = {:?} does not index into param shape {ps:?}",
                        &tuple[..k]
                    )));
                }
                off += v as usize * strides[d];
            }
            offsets.push(off * inner);
        }
        if k == 0 {
            offsets = vec![0; lead.iter().product()];
        }
        fn run<T: Clone>(p: &[T], offsets: &[usize], inner: usize) -> Vec<T> {
            let mut out = Vec::with_capacity(offsets.len() * inner);
            for &o in offsets {
                out.extend_from_slice(&p[o..o + inner]);
            }
            out
        }
        let data = crate::match_any!(params.data(), b => {
            Element::wrap(Buf::from(run(&b[..], &offsets, inner)))
        });
        Ok(tensors![Tensor::new(&out_shape, data)?])
    }
}

/// `OneHot`: `on_value` where `indices == d` along the new `axis`, `off_value` elsewhere
/// (out-of-range indices give an all-off row).
#[derive(Debug)]
pub(super) struct OneHot {
    axis: i64,
}

impl OneHot {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(OneHot {
            axis: cx.attr_opt_i64("axis").unwrap_or(-1),
        }))
    }
}

impl Op for OneHot {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [indices, depth, on, off] = take_inputs(inputs)?;
        let r = indices.rank();
        if self.axis < -1 || self.axis > r as i64 {
            return Err(OpError::invalid(format!(
                "Expected axis to be -1 or between [0, {r}).  But received: {}",
                self.axis
            )));
        }
        let axis = if self.axis == -1 {
            r
        } else {
            self.axis as usize
        };
        let d = depth.scalar_value_i64()?;
        let depth = usize::try_from(d)
            .map_err(|_| OpError::invalid(format!("depth must be non-negative, got: {d}")))?;
        if on.dtype() != off.dtype() {
            return Err(OpError::dtype(3, on.dtype().name(), off.dtype()));
        }
        let mut out_shape = indices.shape().to_vec();
        out_shape.insert(axis, depth);
        checked_len(cx, &out_shape, &on)?;
        let prefix: usize = indices.shape()[..axis].iter().product();
        let suffix: usize = indices.shape()[axis..].iter().product();
        let idx = indices.to_i64_vec()?;
        fn run<T: Element>(
            on: &Buf<T>,
            off: &Tensor,
            idx: &[i64],
            (prefix, depth, suffix): (usize, usize, usize),
        ) -> Result<Data, OpError> {
            let (on, off) = (on[0].clone(), off.scalar_value::<T>()?);
            let mut out = Vec::with_capacity(prefix * depth * suffix);
            for p in 0..prefix {
                for d in 0..depth {
                    for s in 0..suffix {
                        let hit = idx[p * suffix + s] == d as i64;
                        out.push(if hit { on.clone() } else { off.clone() });
                    }
                }
            }
            Ok(T::wrap(Buf::from(out)))
        }
        if on.len() != 1 || off.len() != 1 {
            return Err(OpError::invalid("on_value and off_value must be scalars"));
        }
        let dims = (prefix, depth, suffix);
        let data = crate::match_any!(on.data(), b => run(b, &off, &idx, dims)?);
        Ok(tensors![Tensor::new(&out_shape, data)?])
    }
}

/// `Where` with one input: the int64 coordinates `[N, rank]` of the non-zero (true)
/// elements, in row-major order.
#[derive(Debug)]
pub(super) struct Where;

impl Where {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(1)?;
        Ok(Box::new(Where))
    }
}

impl Op for Where {
    fn eval(&self, _cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [x] = take_inputs(inputs)?;
        // NaN counts as non-zero (`x != 0`), as in TF.
        fn coords<T: PartialEq + Default>(s: &[T], shape: &[usize]) -> (usize, Vec<i64>) {
            let zero = T::default();
            // Counting first sizes the output exactly (and the count vectorises).
            let hits = s.iter().filter(|v| **v != zero).count();
            let r = shape.len();
            if r == 0 || hits == 0 {
                return (hits, Vec::new());
            }
            if r == 1 {
                // Branch-free: write every position, advance only past the hits. The
                // extra slot takes the writes after the last hit.
                let mut out = vec![0i64; hits + 1];
                let mut k = 0;
                for (i, v) in s.iter().enumerate() {
                    out[k] = i as i64;
                    k += usize::from(*v != zero);
                }
                out.truncate(hits);
                return (hits, out);
            }
            // Rank >= 2 (no dim is 0, as there are hits): walk the rows of the last dim
            // with the leading coordinates in a counter.
            let last = shape[r - 1];
            let mut out = Vec::with_capacity(hits * r);
            let mut lead = vec![0i64; r - 1];
            for row in s.chunks_exact(last) {
                for (j, v) in row.iter().enumerate() {
                    if *v != zero {
                        if r == 2 {
                            out.push(lead[0]);
                        } else {
                            out.extend_from_slice(&lead);
                        }
                        out.push(j as i64);
                    }
                }
                for d in (0..r - 1).rev() {
                    lead[d] += 1;
                    if (lead[d] as usize) < shape[d] {
                        break;
                    }
                    lead[d] = 0;
                }
            }
            (hits, out)
        }
        let shape = x.shape();
        let (hits, out) = crate::match_numeric!(x.data(), b => coords(&b[..], shape), _ => match x.data() {
            Data::Bool(b) => coords(&b[..], shape),
            _ => return Err(OpError::dtype(0, "numeric or bool", x.dtype())),
        });
        Ok(tensors![tensor_of(&[hits, shape.len()], out)?])
    }
}

/// `Unique`: distinct elements of a vector in order of first occurrence, and for each input
/// element the index of its value in `y` (`out_idx`, int32 by default).
#[derive(Debug)]
pub(super) struct Unique {
    out_idx: DType,
    /// `UniqueWithCounts`: a third output, how often each unique value occurs.
    counts: bool,
}

impl Unique {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        let out_idx = cx.attr_opt_type("out_idx")?.unwrap_or(DType::I32);
        if !matches!(out_idx, DType::I32 | DType::I64) {
            return Err(OpError::Attr {
                name: "out_idx".into(),
                what: format!("{out_idx} is not int32 or int64"),
            });
        }
        Ok(Box::new(Unique {
            out_idx,
            counts: cx.op == "UniqueWithCounts",
        }))
    }
}

/// Hash key of an element for `Unique`: equal keys ⇔ equal values (`None`: equal to nothing,
/// for NaN; `-0.0` and `0.0` share a key).
trait UniqueKey {
    fn key(&self) -> Option<u64>;
}

macro_rules! ukey_int {
    ($($t:ty),*) => {$(
        impl UniqueKey for $t {
            fn key(&self) -> Option<u64> {
                Some(*self as u64)
            }
        }
    )*};
}
ukey_int!(i8, i16, i32, i64, u8, u16, u32, u64);

macro_rules! ukey_float {
    ($($t:ty),*) => {$(
        impl UniqueKey for $t {
            fn key(&self) -> Option<u64> {
                let v = f64::from(*self);
                if v.is_nan() {
                    None
                } else if v == 0.0 {
                    Some(0)
                } else {
                    Some(v.to_bits())
                }
            }
        }
    )*};
}
ukey_float!(f32, f64, f16, bf16);

impl UniqueKey for bool {
    fn key(&self) -> Option<u64> {
        Some(u64::from(*self))
    }
}

fn unique_by<'a, T: Clone, K: Eq + std::hash::Hash>(
    s: &'a [T],
    key: impl Fn(&'a T) -> Option<K>,
) -> (Vec<T>, Vec<i64>) {
    let mut seen: HashMap<K, i64> = HashMap::new();
    let mut y = Vec::new();
    let mut idx = Vec::with_capacity(s.len());
    for v in s {
        let next = y.len() as i64;
        let i = match key(v) {
            Some(k) => *seen.entry(k).or_insert(next),
            None => next,
        };
        if i == next {
            y.push(v.clone());
        }
        idx.push(i);
    }
    (y, idx)
}

impl Op for Unique {
    fn eval(&self, _cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [x] = take_inputs(inputs)?;
        if x.rank() != 1 {
            return Err(OpError::invalid(format!(
                "unique expects a 1D vector, got shape {:?}",
                x.shape()
            )));
        }
        fn go<T: Element + UniqueKey>(b: &Buf<T>) -> Result<(Tensor, Vec<i64>), OpError> {
            let (y, idx) = unique_by(&b[..], |v: &T| v.key());
            Ok((tensor_of(&[y.len()], y)?, idx))
        }
        let (y, idx) = crate::match_numeric!(x.data(), b => go(b)?, _ => match x.data() {
            Data::Bool(b) => go(b)?,
            Data::String(b) => {
                let (y, idx) = unique_by(&b[..], |v: &Bytes| Some(&v[..]));
                (tensor_of(&[y.len()], y)?, idx)
            }
            _ => return Err(OpError::dtype(0, "numeric, bool or string", x.dtype())),
        });
        let index_tensor = |v: Vec<i64>| -> Result<Tensor, OpError> {
            Ok(match self.out_idx {
                DType::I32 => Tensor::vector(
                    v.into_iter()
                        .map(|i| i32::try_from(i).map_err(|_| OpError::invalid("too many uniques")))
                        .collect::<Result<Vec<_>, _>>()?,
                ),
                _ => Tensor::vector(v),
            })
        };
        let count = self.counts.then(|| {
            let mut count = vec![0i64; y.len()];
            for &i in &idx {
                count[i as usize] += 1;
            }
            count
        });
        let mut out = vec![y, index_tensor(idx)?];
        if let Some(count) = count {
            out.push(index_tensor(count)?);
        }
        Ok(out.into())
    }
}

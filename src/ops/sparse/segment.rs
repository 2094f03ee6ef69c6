//! `SparseSegment{Sum,Mean,SqrtN}[WithNumSegments]`, `Segment{Sum,Prod,Max,Min,Mean}` and
//! `UnsortedSegment{Sum,Prod,Max,Min}`.
//! TF reference: core/kernels/segment_reduction_ops_impl.h.

use crate::ops::kernels::reduce::Reducible;
use crate::ops::kernels::segment::{
    sparse_segment_reduce_f32, unsorted_segment_reduce, SegmentReduction,
};
use crate::ops::{take_inputs, BuildCtx, EvalCtx, Op, OpError, Tensors};
use crate::tensor::{DType, Element, Tensor};

/// Rows of `data` (its first dim) and the elements per row.
fn rows_and_dim(data: &Tensor) -> Result<(usize, usize), OpError> {
    match data.shape() {
        [] => Err(OpError::shape("data must be at least rank 1")),
        [rows, inner @ ..] => Ok((*rows, inner.iter().product())),
    }
}

/// Output shape `[segments, data.shape[1..]]`, checked against the caps.
fn out_shape(cx: &EvalCtx<'_>, data: &Tensor, segments: usize) -> Result<Vec<usize>, OpError> {
    let mut shape = data.shape().to_vec();
    shape[0] = segments;
    let n = crate::tensor::num_elements(&shape)
        .ok_or_else(|| OpError::Limit("segment output overflows".into()))?;
    cx.limits().check_alloc(n, data.dtype())?;
    Ok(shape)
}

/// Segments implied by sorted ids without `num_segments`: last id + 1 (0 if none).
fn implied_segments(ids: &[i64]) -> Result<usize, OpError> {
    match ids.last() {
        None => Ok(0),
        Some(&last) => usize::try_from(last)
            .ok()
            .and_then(|l| l.checked_add(1))
            .ok_or_else(|| OpError::invalid(format!("segment id {last} is out of range"))),
    }
}

fn num_segments(t: &Tensor) -> Result<usize, OpError> {
    let n = t.scalar_value_i64()?;
    usize::try_from(n).map_err(|_| OpError::invalid(format!("num_segments {n} is negative")))
}

/// `SparseSegment{Sum,Mean,SqrtN}` and their `WithNumSegments` forms:
/// `out[s] = combine(data[indices[p]] for p with segment_ids[p] == s)`; ids must be sorted.
/// float32 runs the fused gather + reduce kernel (reading each needed row of a possibly
/// memory-mapped embedding matrix once); f16/bf16 go through it in float32, float64 through
/// a plain loop.
#[derive(Debug)]
pub(super) struct SparseSegment {
    mode: SegmentReduction,
    with_num: bool,
}

impl SparseSegment {
    pub(super) fn new(mode: SegmentReduction, with_num: bool) -> Self {
        SparseSegment { mode, with_num }
    }

    pub(super) fn build(
        cx: &mut BuildCtx<'_>,
        mode: SegmentReduction,
        with_num: bool,
    ) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(if with_num { 4 } else { 3 })?;
        Ok(Box::new(SparseSegment { mode, with_num }))
    }
}

impl Op for SparseSegment {
    fn eval(&self, cx: &mut EvalCtx<'_>, mut inputs: Tensors) -> Result<Tensors, OpError> {
        let segments = if self.with_num {
            Some(num_segments(&inputs.pop().ok_or(OpError::Arity {
                expected: 4,
                got: 0,
            })?)?)
        } else {
            None
        };
        let [data, indices, ids] = take_inputs(inputs)?;
        if indices.rank() != 1 || ids.shape() != indices.shape() {
            return Err(OpError::shape(format!(
                "indices {:?} and segment_ids {:?} must be vectors of one length",
                indices.shape(),
                ids.shape()
            )));
        }
        let (_, dim) = rows_and_dim(&data)?;
        let (idx, ids) = (indices.i64_cow()?, ids.i64_cow()?);
        let segments = match segments {
            Some(n) => n,
            None => implied_segments(&ids)?,
        };
        let shape = out_shape(cx, &data, segments)?;
        let run = |d: &[f32]| -> Result<Vec<f32>, OpError> {
            // The kernel writes every output row (a segment without rows as zeros).
            let mut out = crate::tensor::pool::f32_for_overwrite(segments * dim);
            sparse_segment_reduce_f32(d, dim, &idx, &ids, segments, self.mode, &mut out)?;
            Ok(out)
        };
        let out = match data.dtype() {
            DType::F32 => Tensor::from_vec(&shape, run(data.as_slice::<f32>()?)?)?,
            DType::F16 => {
                let d: Vec<f32> = data
                    .as_slice::<half::f16>()?
                    .iter()
                    .map(|v| v.to_f32())
                    .collect();
                let o = run(&d)?
                    .into_iter()
                    .map(half::f16::from_f32)
                    .collect::<Vec<_>>();
                Tensor::from_vec(&shape, o)?
            }
            DType::BF16 => {
                let d: Vec<f32> = data
                    .as_slice::<half::bf16>()?
                    .iter()
                    .map(|v| v.to_f32())
                    .collect();
                let o = run(&d)?
                    .into_iter()
                    .map(half::bf16::from_f32)
                    .collect::<Vec<_>>();
                Tensor::from_vec(&shape, o)?
            }
            DType::F64 => {
                let d = data.as_slice::<f64>()?;
                let mut out = vec![0f64; segments * dim];
                // Same validation as the f32 kernel, then a plain loop.
                let rows = d.len().checked_div(dim).unwrap_or(0);
                reduce_f64(d, dim, rows, &idx, &ids, segments, self.mode, &mut out)?;
                Tensor::from_vec(&shape, out)?
            }
            d => return Err(OpError::dtype(0, "a float type", d)),
        };
        Ok(tensors![out])
    }
}

#[allow(clippy::too_many_arguments)]
fn reduce_f64(
    data: &[f64],
    dim: usize,
    rows: usize,
    idx: &[i64],
    ids: &[i64],
    segments: usize,
    mode: SegmentReduction,
    out: &mut [f64],
) -> Result<(), OpError> {
    let mut counts = vec![0usize; segments];
    let mut prev = 0;
    for (p, (&i, &s)) in idx.iter().zip(ids).enumerate() {
        if s < prev {
            return Err(OpError::invalid("segment ids are not increasing"));
        }
        prev = s;
        if s < 0 || s as usize >= segments {
            return Err(OpError::invalid(format!(
                "segment id {s} is out of range [0, {segments})"
            )));
        }
        if dim > 0 && (i < 0 || i as usize >= rows) {
            return Err(OpError::invalid(format!(
                "indices[{p}] = {i} is not in [0, {rows})"
            )));
        }
        let (s, i) = (s as usize, i as usize);
        counts[s] += 1;
        for k in 0..dim {
            out[s * dim + k] += data[i * dim + k];
        }
    }
    for (s, &c) in counts.iter().enumerate() {
        let scale = match mode {
            SegmentReduction::Sum => continue,
            SegmentReduction::Mean if c > 0 => 1.0 / c as f64,
            SegmentReduction::SqrtN if c > 0 => 1.0 / (c as f64).sqrt(),
            _ => continue,
        };
        out[s * dim..(s + 1) * dim]
            .iter_mut()
            .for_each(|v| *v *= scale);
    }
    Ok(())
}

/// How a `Segment*` / `UnsortedSegment*` op folds the rows of one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fold {
    Sum,
    Prod,
    Max,
    Min,
    /// Sorted ops only (TF has no `UnsortedSegmentMean`).
    Mean,
}

/// The element types the segment reductions take (TF registers all real types; these are the
/// ones models use). The arithmetic is the reductions' own ([`Reducible`]: wrapping integer
/// add/mul, truncating integer mean); only the empty-segment value of max/min differs:
/// TF's unsorted segment max/min leave `std::numeric_limits<T>::lowest()` / `max()`, which is
/// finite for floats where `reduce_max` of nothing gives `-inf`.
trait SegNum: Reducible + Element {
    const EMPTY_MAX: Self;
    const EMPTY_MIN: Self;
}

macro_rules! seg_num {
    ($($t:ty),*) => {$(
        impl SegNum for $t {
            const EMPTY_MAX: Self = <$t>::MIN;
            const EMPTY_MIN: Self = <$t>::MAX;
        }
    )*};
}
seg_num!(f32, f64, i32, i64);

/// `Segment{Sum,Prod,Max,Min,Mean}` (sorted ids over data's first dim; `last id + 1` output
/// rows) and `UnsortedSegment{Sum,Prod,Max,Min}` (ids with a prefix of data's shape,
/// `num_segments` rows; ids `< 0` are dropped as in TF's CPU kernel, ids `>= num_segments` are
/// an error).
///
/// Empty segments follow TF's registrations: the sorted ops write their `default_value` (0,
/// or 1 for `SegmentProd`), the unsorted ones leave the fold's identity (0, 1,
/// `numeric_limits::lowest()` for max, `max()` for min).
#[derive(Debug)]
pub(super) struct SegmentReduce {
    fold: Fold,
    sorted: bool,
}

impl SegmentReduce {
    /// `Segment*` (`sorted`) or `UnsortedSegment*` folding with `fold`.
    pub(super) fn build(
        _: &mut BuildCtx<'_>,
        fold: Fold,
        sorted: bool,
    ) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(SegmentReduce { fold, sorted }))
    }
}

impl Op for SegmentReduce {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let (data, ids, segments) = if self.sorted {
            let [data, ids] = take_inputs(inputs)?;
            let (rows, _) = rows_and_dim(&data)?;
            if ids.rank() != 1 || ids.len() != rows {
                return Err(OpError::shape(format!(
                    "segment_ids {:?} must be a vector of data's first dim {rows}",
                    ids.shape()
                )));
            }
            let ids = ids.to_i64_vec()?;
            if let Some(w) = ids.windows(2).find(|w| w[0] > w[1]) {
                return Err(OpError::invalid(format!(
                    "segment ids are not increasing: {} follows {}",
                    w[1], w[0]
                )));
            }
            if ids.first().is_some_and(|&i| i < 0) {
                return Err(OpError::invalid("segment ids must be non-negative"));
            }
            let segments = implied_segments(&ids)?;
            (data, ids, segments)
        } else {
            let [data, ids, n] = take_inputs(inputs)?;
            if !data.shape().starts_with(ids.shape()) {
                return Err(OpError::shape(format!(
                    "segment_ids {:?} must be a prefix of data's shape {:?}",
                    ids.shape(),
                    data.shape()
                )));
            }
            let k = ids.rank();
            let flat: Vec<usize> = std::iter::once(ids.len())
                .chain(data.shape()[k..].iter().copied())
                .collect();
            (data.reshape(&flat)?, ids.to_i64_vec()?, num_segments(&n)?)
        };
        let shape = out_shape(cx, &data, segments)?;
        let out = match data.dtype() {
            DType::F32 => self.fold_rows::<f32>(&data, &ids, segments, &shape)?,
            DType::F64 => self.fold_rows::<f64>(&data, &ids, segments, &shape)?,
            DType::I32 => self.fold_rows::<i32>(&data, &ids, segments, &shape)?,
            DType::I64 => self.fold_rows::<i64>(&data, &ids, segments, &shape)?,
            d => return Err(OpError::dtype(0, "float, double, int32 or int64", d)),
        };
        Ok(tensors![out])
    }
}

impl SegmentReduce {
    fn fold_rows<T: SegNum>(
        &self,
        data: &Tensor,
        ids: &[i64],
        segments: usize,
        shape: &[usize],
    ) -> Result<Tensor, OpError> {
        let (_, dim) = rows_and_dim(data)?;
        let x = data.as_slice::<T>()?;
        let mut out = vec![T::ZERO; segments * dim];
        let (init, combine): (T, fn(&mut T, T)) = match self.fold {
            Fold::Sum | Fold::Mean => (T::ZERO, |a, x| *a = a.add(x)),
            Fold::Prod => (T::ONE, |a, x| *a = a.mul(x)),
            // std::max(acc, x) / std::min(acc, x), as TF's functors: a NaN already in the
            // accumulator stays, a NaN arriving is skipped.
            Fold::Max => (T::EMPTY_MAX, |a, x| {
                if *a < x {
                    *a = x
                }
            }),
            Fold::Min => (T::EMPTY_MIN, |a, x| {
                if x < *a {
                    *a = x
                }
            }),
        };
        unsorted_segment_reduce(x, dim, ids, segments, &mut out, init, combine)?;
        if self.sorted && matches!(self.fold, Fold::Max | Fold::Min | Fold::Mean) {
            let mut count = vec![0usize; segments];
            for &i in ids {
                count[i as usize] += 1;
            }
            for (row, &n) in out.chunks_exact_mut(dim.max(1)).zip(&count) {
                match (n, self.fold) {
                    (0, _) => row.fill(T::ZERO),
                    (n, Fold::Mean) => row.iter_mut().for_each(|v| *v = v.div_count(n)),
                    _ => {}
                }
            }
        }
        Ok(Tensor::from_vec(shape, out)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{Limits, Session};

    fn eval(op: &dyn Op, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, OpError> {
        let session = Session::new(".".into(), None, Limits::default());
        op.eval(&mut EvalCtx::new(&session), inputs.into())
            .map(Tensors::into_vec)
    }

    #[test]
    fn sparse_segment_mean_and_sqrtn() {
        let data = Tensor::from_vec(&[3, 2], vec![1f32, 2., 3., 4., 5., 6.]).unwrap();
        // sparse_segment_mean(data, [0,2,1], [0,0,2]) -> [[3,4],[0,0],[3,4]]
        let op = SparseSegment {
            mode: SegmentReduction::Mean,
            with_num: false,
        };
        let ins = vec![
            data.clone(),
            Tensor::vector(vec![0i32, 2, 1]),
            Tensor::vector(vec![0i32, 0, 2]),
        ];
        let out = eval(&op, ins).unwrap();
        assert_eq!(out[0].shape(), [3, 2]);
        assert_eq!(out[0].as_slice::<f32>().unwrap(), [3., 4., 0., 0., 3., 4.]);
        // sparse_segment_sqrt_n_with_num_segments(data, [0,2,1], [0,0,2], 4)
        let op = SparseSegment {
            mode: SegmentReduction::SqrtN,
            with_num: true,
        };
        let ins = vec![
            data.clone(),
            Tensor::vector(vec![0i64, 2, 1]),
            Tensor::vector(vec![0i64, 0, 2]),
            Tensor::scalar(4i32),
        ];
        let out = eval(&op, ins).unwrap();
        // The kernel scales by 1/sqrt(n) where TF divides by sqrt(n): within 1 ulp.
        let want = [4.242_640_5f32, 5.656_854, 0., 0., 3., 4., 0., 0.];
        for (g, w) in out[0].as_slice::<f32>().unwrap().iter().zip(want) {
            assert!((g - w).abs() <= 1e-6 * w.abs(), "{g} vs {w}");
        }
        let d64 = Tensor::from_vec(&[3, 2], vec![1f64, 2., 3., 4., 5., 6.]).unwrap();
        let ins = vec![
            d64,
            Tensor::vector(vec![0i64, 2, 1]),
            Tensor::vector(vec![0i64, 0, 2]),
            Tensor::scalar(4i32),
        ];
        let out = eval(&op, ins).unwrap();
        assert!((out[0].as_slice::<f64>().unwrap()[0] - 6.0 / 2f64.sqrt()).abs() < 1e-12);
        let op = SparseSegment {
            mode: SegmentReduction::Sum,
            with_num: false,
        };
        let unsorted = eval(
            &op,
            vec![
                data.clone(),
                Tensor::vector(vec![0i32, 1]),
                Tensor::vector(vec![1i32, 0]),
            ],
        );
        assert!(unsorted.is_err());
        let empty = eval(
            &op,
            vec![
                data,
                Tensor::vector(Vec::<i32>::new()),
                Tensor::vector(Vec::<i32>::new()),
            ],
        )
        .unwrap();
        assert_eq!(empty[0].shape(), [0, 2]);
    }

    const UNSORTED_SUM: SegmentReduce = SegmentReduce {
        fold: Fold::Sum,
        sorted: false,
    };

    #[test]
    fn segment_sums() {
        // segment_sum([1,2,3,4], [0,0,2,2]) -> [3,0,7]
        let out = eval(
            &SegmentReduce {
                fold: Fold::Sum,
                sorted: true,
            },
            vec![
                Tensor::vector(vec![1i32, 2, 3, 4]),
                Tensor::vector(vec![0i32, 0, 2, 2]),
            ],
        )
        .unwrap();
        assert_eq!(out[0].to_i64_vec().unwrap(), [3, 0, 7]);
        // unsorted_segment_sum([1,2,3,4], [0,-1,2,2], 4) -> [1,0,7,0]
        let ins = vec![
            Tensor::vector(vec![1i64, 2, 3, 4]),
            Tensor::vector(vec![0i32, -1, 2, 2]),
            Tensor::scalar(4i32),
        ];
        let out = eval(&UNSORTED_SUM, ins).unwrap();
        assert_eq!(out[0].to_i64_vec().unwrap(), [1, 0, 7, 0]);
        let ins = vec![
            Tensor::vector(vec![1f32]),
            Tensor::vector(vec![4i32]),
            Tensor::scalar(4i32),
        ];
        assert!(eval(&UNSORTED_SUM, ins).is_err());
    }

    #[test]
    fn segment_max_min_prod_mean() {
        let data = || Tensor::vector(vec![1f32, 5., 3., -2., 7., 0.5, 9., -1.]);
        let run = |fold: Fold, sorted: bool, ids: Vec<i32>| {
            let mut ins = vec![data(), Tensor::vector(ids)];
            if !sorted {
                ins.push(Tensor::scalar(5i32));
            }
            eval(&SegmentReduce { fold, sorted }, ins).unwrap()[0]
                .as_slice::<f32>()
                .unwrap()
                .to_vec()
        };
        // From TF 2.21: tf.math.unsorted_segment_max(data, [0,1,0,2,1,0,3,3], 5); the empty
        // segment holds numeric_limits<float>::lowest(), not -inf.
        let unsorted = vec![0, 1, 0, 2, 1, 0, 3, 3];
        assert_eq!(
            run(Fold::Max, false, unsorted.clone()),
            [3., 7., -2., 9., f32::MIN]
        );
        assert_eq!(
            run(Fold::Min, false, unsorted.clone()),
            [0.5, 5., -2., -1., f32::MAX]
        );
        assert_eq!(run(Fold::Prod, false, unsorted), [1.5, 35., -2., -9., 1.]);
        // tf.math.segment_mean(data, [0,0,1,1,1,2,2,4]): the empty segment 3 is 0.
        let sorted = vec![0, 0, 1, 1, 1, 2, 2, 4];
        assert_eq!(
            run(Fold::Mean, true, sorted.clone()),
            [3., 8. / 3., 4.75, 0., -1.]
        );
        assert_eq!(run(Fold::Max, true, sorted), [5., 7., 9., 0., -1.]);
    }
}

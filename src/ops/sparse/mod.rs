//! Sparse, ragged and segment ops. TF reference: core/kernels/{sparse_fill_empty_rows_op,
//! reshape_util,sparse_to_dense_op,segment_reduction_ops_impl.h,bincount_op}.cc,
//! core/kernels/ragged_tensor_to_sparse_kernel.cc.
//!
//! A TF `SparseTensor` travels as three tensors: `indices` int64 `[n, rank]`, `values` `[n]`
//! and `dense_shape` int64 `[rank]`. Every index and shape here comes from data, so each is
//! range-checked and every output sized from one goes through `check_alloc` first. Children:
//! `segment` (segment reductions, including the fused embedding gather of
//! `SparseSegment{Sum,Mean,SqrtN}`), `convert` (the sparse/ragged/dense conversions and the
//! bincounts) and `ragged` (`RaggedTensorToTensor`).

mod convert;
mod fused;
mod ragged;
mod ragged_gather;
mod segment;

pub(crate) use fused::{fused_embedding_segment, ParamsFrom};

use super::{OpError, Registry};
use crate::tensor::Tensor;

pub(crate) fn register(r: &mut Registry) {
    r.add("Bincount", convert::Bincount::build);
    r.add("DenseBincount", convert::Bincount::build);
    r.add("RaggedBincount", convert::RaggedBincount::build);
    r.add("RaggedTensorToSparse", convert::RaggedToSparse::build);
    r.add("RaggedGather", ragged_gather::RaggedGather::build);
    r.add("RaggedRange", ragged_gather::RaggedRange::build);
    r.add("RaggedTensorToTensor", ragged::RaggedToTensor::build);
    {
        use segment::{Fold, SegmentReduce as S};
        r.add("SegmentMax", |cx| S::build(cx, Fold::Max, true));
        r.add("SegmentMean", |cx| S::build(cx, Fold::Mean, true));
        r.add("SegmentMin", |cx| S::build(cx, Fold::Min, true));
        r.add("SegmentProd", |cx| S::build(cx, Fold::Prod, true));
        r.add("SegmentSum", |cx| S::build(cx, Fold::Sum, true));
    }
    r.add("SparseBincount", convert::SparseBincount::build);
    r.add("SparseFillEmptyRows", convert::FillEmptyRows::build);
    r.add("SparseReshape", convert::SparseReshape::build);
    {
        use crate::ops::kernels::segment::SegmentReduction::{Mean, SqrtN, Sum};
        use segment::SparseSegment as S;
        r.add("SparseSegmentMean", |cx| S::build(cx, Mean, false));
        r.add("SparseSegmentMeanWithNumSegments", |cx| {
            S::build(cx, Mean, true)
        });
        r.add("SparseSegmentSqrtN", |cx| S::build(cx, SqrtN, false));
        r.add("SparseSegmentSqrtNWithNumSegments", |cx| {
            S::build(cx, SqrtN, true)
        });
        r.add("SparseSegmentSum", |cx| S::build(cx, Sum, false));
        r.add("SparseSegmentSumWithNumSegments", |cx| {
            S::build(cx, Sum, true)
        });
    }
    r.add("SparseToDense", convert::SparseToDense::build);
    {
        use segment::{Fold, SegmentReduce as S};
        r.add("UnsortedSegmentMax", |cx| S::build(cx, Fold::Max, false));
        r.add("UnsortedSegmentMin", |cx| S::build(cx, Fold::Min, false));
        r.add("UnsortedSegmentProd", |cx| S::build(cx, Fold::Prod, false));
        r.add("UnsortedSegmentSum", |cx| S::build(cx, Fold::Sum, false));
    }
}

/// A `[n, rank]` int64 index matrix: `(n, rank, flat values)`.
fn index_matrix<'a>(
    t: &'a Tensor,
    what: &str,
) -> Result<(usize, usize, std::borrow::Cow<'a, [i64]>), OpError> {
    match t.shape() {
        &[n, rank] => Ok((n, rank, t.i64_cow()?)),
        s => Err(OpError::shape(format!(
            "{what} must be a matrix, got shape {s:?}"
        ))),
    }
}

/// A 1-D shape tensor as i64 dims.
fn shape_vector(t: &Tensor, what: &str) -> Result<Vec<i64>, OpError> {
    if t.rank() != 1 {
        return Err(OpError::shape(format!(
            "{what} must be a vector, got shape {:?}",
            t.shape()
        )));
    }
    Ok(t.to_i64_vec()?)
}

/// Non-negative dims as `usize`, with their product checked for overflow.
fn dims(shape: &[i64], what: &str) -> Result<(Vec<usize>, usize), OpError> {
    let d: Vec<usize> = shape
        .iter()
        .map(|&v| usize::try_from(v))
        .collect::<Result<_, _>>()
        .map_err(|_| OpError::invalid(format!("{what} {shape:?} has a negative dimension")))?;
    let n = crate::tensor::num_elements(&d)
        .ok_or_else(|| OpError::Limit(format!("{what} {shape:?} overflows")))?;
    Ok((d, n))
}

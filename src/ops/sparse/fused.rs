//! The fused embedding combine that the plan compiler substitutes for
//! `SparseSegment{Sum,Mean,SqrtN}(Gather(params, Unique(ids).y), Unique(ids).idx, seg)`
//! (what `tf.nn.embedding_lookup_sparse` emits): one pass that reads each needed row of
//! `params` (often a memory-mapped embedding matrix) straight into its segment's sum, without
//! materialising the unique ids or the gathered rows.
//!
//! Semantics are those of the three ops: `gathered[idx[p]] = params[y[idx[p]]] = params[ids[p]]`,
//! so `out[s]` combines `params[ids[p]]` over the positions `p` of segment `s`, summed in
//! position order exactly as the unfused segment op sums `gathered[idx[p]]`: bit-identical.

use super::segment::SparseSegment;
use crate::ops::kernels::segment::SegmentReduction;
use crate::ops::{EvalCtx, Op, OpError, Tensors};
use crate::tensor::{DType, Data};

/// Where the fused op finds `params`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParamsFrom {
    /// Input 0 is the params tensor (`GatherV2`, axis 0).
    Tensor,
    /// Input 0 is a resource variable handle (`ResourceGather`).
    Variable,
}

/// Fused `SparseSegment*(Gather(params, Unique(ids)))`. Inputs: `params` (or a variable
/// handle), `ids` (the `Unique` input, int32/int64 vector), `segment_ids`, and
/// `num_segments` for the `WithNumSegments` forms.
#[derive(Debug)]
pub(crate) struct FusedEmbeddingSegment {
    from: ParamsFrom,
    segment: SparseSegment,
}

/// Builds the fused op for the segment op named `segment_op` (`SparseSegmentSqrtN`,
/// `SparseSegmentMeanWithNumSegments`, ...). `None` for any other op name.
pub(crate) fn fused_embedding_segment(segment_op: &str, from: ParamsFrom) -> Option<Box<dyn Op>> {
    let (base, with_num) = match segment_op.strip_suffix("WithNumSegments") {
        Some(b) => (b, true),
        None => (segment_op, false),
    };
    let mode = match base {
        "SparseSegmentSum" => SegmentReduction::Sum,
        "SparseSegmentMean" => SegmentReduction::Mean,
        "SparseSegmentSqrtN" => SegmentReduction::SqrtN,
        _ => return None,
    };
    Some(Box::new(FusedEmbeddingSegment {
        from,
        segment: SparseSegment::new(mode, with_num),
    }))
}

impl Op for FusedEmbeddingSegment {
    fn eval(&self, cx: &mut EvalCtx<'_>, mut inputs: Tensors) -> Result<Tensors, OpError> {
        if inputs.is_empty() {
            return Err(OpError::Arity {
                expected: 3,
                got: 0,
            });
        }
        if self.from == ParamsFrom::Variable {
            let params = match inputs[0].data() {
                Data::Resource(b) if b.len() == 1 => crate::ops::variables::read_variable(&b[0])?,
                _ => {
                    return Err(OpError::dtype(
                        0,
                        "a scalar resource handle",
                        inputs[0].dtype(),
                    ))
                }
            };
            inputs[0] = params;
        }
        let (params, ids) = (
            &inputs[0],
            inputs.get(1).ok_or(OpError::Arity {
                expected: 3,
                got: 1,
            })?,
        );
        // What `Unique` and the gather would have refused.
        if ids.rank() != 1 {
            return Err(OpError::shape(format!(
                "unique: ids must be a vector, got shape {:?}",
                ids.shape()
            )));
        }
        if !matches!(ids.dtype(), DType::I32 | DType::I64) {
            return Err(OpError::dtype(1, "int32 or int64", ids.dtype()));
        }
        let rows = match params.shape() {
            [] => return Err(OpError::shape("gather: params must be at least rank 1")),
            [rows, ..] => *rows,
        };
        if params.is_empty() {
            // The segment kernel cannot range-check without row data: do it here.
            if let Some((p, i)) = ids
                .to_i64_vec()?
                .into_iter()
                .enumerate()
                .find(|&(_, i)| usize::try_from(i).map_or(true, |i| i >= rows))
            {
                return Err(OpError::invalid(format!(
                    "indices[{p}] = {i} is not in [0, {rows})"
                )));
            }
        }
        self.segment.eval(cx, inputs)
    }
    fn is_stateful(&self) -> bool {
        // Reads a variable like `ResourceGather`; never folded at plan time.
        self.from == ParamsFrom::Variable
    }
}

#[cfg(test)]
#[path = "fused_tests.rs"]
mod tests;

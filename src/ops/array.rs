//! Array and shape ops. TF reference: core/kernels/{gather_op,reshape_op,...}.cc.

use super::{take_inputs, BuildCtx, EvalCtx, Op, OpError, Registry};
use crate::tensor::{Element, Tensor};

pub(crate) fn register(r: &mut Registry) {
    r.add("GatherV2", GatherV2::build);
}

/// Gathers slices of `params` along `axis` at `indices` (int32/int64); out-of-range indices
/// are an error, as on TF's CPU kernel.
pub(crate) fn gather(
    cx: &EvalCtx<'_>,
    params: &Tensor,
    indices: &Tensor,
    axis: usize,
) -> Result<Tensor, OpError> {
    let idx = indices.to_i64_vec()?;
    let shape = params.shape();
    if axis >= shape.len() {
        return Err(OpError::shape(format!(
            "axis {axis} out of range for rank {}",
            shape.len()
        )));
    }
    let outer: usize = shape[..axis].iter().product();
    let n = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let mut out_shape: Vec<usize> = shape[..axis].to_vec();
    out_shape.extend_from_slice(indices.shape());
    out_shape.extend_from_slice(&shape[axis + 1..]);
    let total = crate::tensor::num_elements(&out_shape)
        .ok_or_else(|| OpError::Limit("gather output overflows".into()))?;
    cx.limits().check_alloc(total, params.dtype())?;
    for &i in &idx {
        if i < 0 || i as usize >= n {
            return Err(OpError::invalid(format!(
                "indices value {i} is not in [0, {n})"
            )));
        }
    }
    fn go<T: Element>(p: &[T], idx: &[i64], outer: usize, n: usize, inner: usize) -> Vec<T> {
        let mut out = Vec::with_capacity(outer * idx.len() * inner);
        for o in 0..outer {
            for &i in idx {
                let start = (o * n + i as usize) * inner;
                out.extend_from_slice(&p[start..start + inner]);
            }
        }
        out
    }
    let data = crate::match_any!(params.data(), b => {
        crate::tensor::Element::wrap(go(&b[..], &idx, outer, n, inner).into())
    });
    Ok(Tensor::new(&out_shape, data)?)
}

/// `GatherV2` with `batch_dims` = 0.
#[derive(Debug)]
struct GatherV2;

impl GatherV2 {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        if cx.attr_opt_i64("batch_dims").unwrap_or(0) != 0 {
            return Err(OpError::Unimplemented("GatherV2 with batch_dims != 0".into()));
        }
        Ok(Box::new(GatherV2))
    }
}

impl Op for GatherV2 {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, OpError> {
        let [params, indices, axis] = take_inputs(inputs)?;
        let a = axis.scalar_value_i64()?;
        let rank = params.rank() as i64;
        let a = if a < 0 { a + rank } else { a };
        if a < 0 || a >= rank {
            return Err(OpError::shape(format!("axis out of range for rank {rank}")));
        }
        Ok(vec![gather(cx, &params, &indices, a as usize)?])
    }
}

//! Joining and splitting: `Concat`, `ConcatV2`, `Pack`, `Split`, `SplitV`, `Unpack`.
//! TF reference: core/kernels/{concat_op,pack_op,split_op,split_v_op,unpack_op}.cc.

use super::{checked_len, norm_axis, tensor_of};
use crate::ops::{take_inputs, BuildCtx, EvalCtx, Op, OpError, Tensors};
use crate::tensor::{Buf, Data, Element, Tensor};

/// Concatenates `parts` along an axis: each part is `outer` blocks of `inner[i]` elements.
fn concat_data<T: Element>(
    first: &Buf<T>,
    parts: &[&Tensor],
    outer: usize,
    inner: &[usize],
) -> Result<Data, OpError> {
    let _ = first;
    let slices = parts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            t.as_slice::<T>()
                .map_err(|_| OpError::dtype(i, T::DTYPE.name(), t.dtype()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = Vec::with_capacity(outer * inner.iter().sum::<usize>());
    for o in 0..outer {
        for (s, &n) in slices.iter().zip(inner) {
            out.extend_from_slice(&s[o * n..(o + 1) * n]);
        }
    }
    Ok(T::wrap(Buf::from(out)))
}

/// Concatenates same-rank tensors along `axis` (already normalized).
fn concat(cx: &EvalCtx<'_>, parts: &[&Tensor], axis: usize) -> Result<Tensor, OpError> {
    let first = parts[0];
    let s0 = first.shape();
    let mut out_shape = s0.to_vec();
    out_shape[axis] = 0;
    for (i, t) in parts.iter().enumerate() {
        let s = t.shape();
        let ok = s.len() == s0.len()
            && s.iter()
                .zip(s0)
                .enumerate()
                .all(|(k, (a, b))| k == axis || a == b);
        if !ok {
            return Err(OpError::invalid(format!(
                "ConcatOp : Dimension {axis} in both shapes must be equal: shape[0] = {s0:?} \
                 vs. shape[{i}] = {s:?}"
            )));
        }
        out_shape[axis] += s[axis];
    }
    checked_len(cx, &out_shape, first)?;
    if parts.len() == 1 {
        return Ok(first.clone());
    }
    let outer: usize = s0[..axis].iter().product();
    let inner: Vec<usize> = parts
        .iter()
        .map(|t| t.shape()[axis..].iter().product())
        .collect();
    let data = crate::match_any!(first.data(), b => concat_data(b, parts, outer, &inner)?);
    Ok(Tensor::new(&out_shape, data)?)
}

/// `ConcatV2` (axis last) and `Concat` (axis first).
#[derive(Debug)]
pub(super) struct Concat {
    axis_first: bool,
}

impl Concat {
    /// `Concat` (`axis_first`: the axis is input 0) or `ConcatV2` (the axis is last).
    pub(super) fn build(cx: &mut BuildCtx<'_>, axis_first: bool) -> Result<Box<dyn Op>, OpError> {
        if cx.num_inputs < 2 {
            return Err(OpError::Arity {
                expected: 2,
                got: cx.num_inputs,
            });
        }
        Ok(Box::new(Concat { axis_first }))
    }
}

impl Op for Concat {
    fn eval(&self, cx: &mut EvalCtx<'_>, mut inputs: Tensors) -> Result<Tensors, OpError> {
        if inputs.len() < 2 {
            return Err(OpError::Arity {
                expected: 2,
                got: inputs.len(),
            });
        }
        let axis = if self.axis_first {
            inputs.remove(0)
        } else {
            inputs.pop().expect("checked len >= 2")
        };
        let rank = inputs[0].rank();
        if rank == 0 {
            return Err(OpError::invalid(
                "Can't concatenate scalars (use tf.stack instead)",
            ));
        }
        let a = norm_axis(axis.scalar_value_i64()?, rank)?;
        let parts: Vec<&Tensor> = inputs.iter().collect();
        Ok(tensors![concat(cx, &parts, a)?])
    }
}

/// `Pack`: stacks same-shape tensors along a new axis.
#[derive(Debug)]
pub(super) struct Pack {
    axis: i64,
}

impl Pack {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(Pack {
            axis: cx.attr_opt_i64("axis").unwrap_or(0),
        }))
    }
}

impl Op for Pack {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let Some(first) = inputs.first() else {
            return Err(OpError::Arity {
                expected: 1,
                got: 0,
            });
        };
        let s0 = first.shape().to_vec();
        let a = norm_axis(self.axis, s0.len() + 1)?;
        let mut expanded = Vec::with_capacity(inputs.len());
        for (i, t) in inputs.into_iter().enumerate() {
            if t.shape() != s0.as_slice() {
                return Err(OpError::invalid(format!(
                    "Shapes of all inputs must match: values[0].shape = {s0:?} != \
                     values[{i}].shape = {:?}",
                    t.shape()
                )));
            }
            let mut s = s0.clone();
            s.insert(a, 1);
            expanded.push(t.reshape(&s)?);
        }
        let parts: Vec<&Tensor> = expanded.iter().collect();
        Ok(tensors![concat(cx, &parts, a)?])
    }
}

/// Splits `x` along `axis` into pieces of `sizes` (summing to the axis length).
fn split(x: &Tensor, axis: usize, sizes: &[usize]) -> Result<Tensors, OpError> {
    fn go<T: Element>(
        b: &Buf<T>,
        shape: &[usize],
        axis: usize,
        sizes: &[usize],
    ) -> Result<Tensors, OpError> {
        let outer: usize = shape[..axis].iter().product();
        let inner: usize = shape[axis + 1..].iter().product();
        let row = shape[axis] * inner;
        let mut off = 0;
        let mut outs = Tensors::with_capacity(sizes.len());
        for &n in sizes {
            let mut v = Vec::with_capacity(outer * n * inner);
            for o in 0..outer {
                let s = o * row + off * inner;
                v.extend_from_slice(&b[s..s + n * inner]);
            }
            let mut sh = shape.to_vec();
            sh[axis] = n;
            outs.push(tensor_of(&sh, v)?);
            off += n;
        }
        Ok(outs)
    }
    if sizes.len() == 1 {
        return Ok(tensors![x.clone()]);
    }
    crate::match_any!(x.data(), b => go(b, x.shape(), axis, sizes))
}

/// `Split` (axis first, `num_split` equal pieces) and `SplitV` (sizes, one may be -1).
#[derive(Debug)]
pub(super) struct Split {
    num: usize,
    v: bool,
}

impl Split {
    /// `Split` or `SplitV` (`v`: sizes given as an input).
    pub(super) fn build(cx: &mut BuildCtx<'_>, v: bool) -> Result<Box<dyn Op>, OpError> {
        let num = cx.attr_usize("num_split")?;
        if num == 0 {
            return Err(OpError::Attr {
                name: "num_split".into(),
                what: "must be at least 1".into(),
            });
        }
        Ok(Box::new(Split { num, v }))
    }
}

impl Op for Split {
    fn eval(&self, _cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let (x, sizes, axis) = if self.v {
            let [x, sizes, axis] = take_inputs(inputs)?;
            (x, Some(sizes), axis)
        } else {
            let [axis, x] = take_inputs(inputs)?;
            (x, None, axis)
        };
        let a = norm_axis(axis.scalar_value_i64()?, x.rank())?;
        let dim = x.shape()[a];
        let sizes = match sizes {
            None => {
                if dim % self.num != 0 {
                    return Err(OpError::invalid(format!(
                        "Number of ways to split should evenly divide the split dimension, \
                         but got split_dim {a} (size = {dim}) and num_split {}",
                        self.num
                    )));
                }
                vec![dim / self.num; self.num]
            }
            Some(s) => split_sizes(&s.to_i64_vec()?, self.num, dim)?,
        };
        split(&x, a, &sizes)
    }
}

/// Resolves `SplitV` sizes: at most one -1, the rest non-negative, summing to `dim`.
fn split_sizes(s: &[i64], num: usize, dim: usize) -> Result<Vec<usize>, OpError> {
    if s.len() != num {
        return Err(OpError::invalid(format!(
            "Length of size_splits should be equal to the value of num_split: {} vs {num}",
            s.len()
        )));
    }
    let mut unknown = None;
    let mut total: i64 = 0;
    for (i, &v) in s.iter().enumerate() {
        if v == -1 {
            if unknown.is_some() {
                return Err(OpError::invalid("There can only be one -1 in the input."));
            }
            unknown = Some(i);
        } else if v < 0 {
            return Err(OpError::invalid(format!(
                "Split size at index {i} must be >= 0. Got: {v}"
            )));
        } else {
            total = total.saturating_add(v);
        }
    }
    let dim_i = dim as i64;
    let mut out: Vec<usize> = s.iter().map(|&v| v.max(0) as usize).collect();
    match unknown {
        Some(u) if total <= dim_i => out[u] = (dim_i - total) as usize,
        None if total == dim_i => {}
        _ => {
            return Err(OpError::invalid(format!(
                "Determined shape must either match input shape along split_dim exactly if \
                 fully specified, or be less than the size of the input along split_dim if not \
                 fully specified.  Got: {total}"
            )))
        }
    }
    Ok(out)
}

/// `Unpack`: splits along `axis` into `num` tensors with that axis removed.
#[derive(Debug)]
pub(super) struct Unpack {
    num: usize,
    axis: i64,
}

impl Unpack {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(Unpack {
            num: cx.attr_usize("num")?,
            axis: cx.attr_opt_i64("axis").unwrap_or(0),
        }))
    }
}

impl Op for Unpack {
    fn eval(&self, _cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [x] = take_inputs(inputs)?;
        let a = norm_axis(self.axis, x.rank())?;
        let n = x.shape()[a];
        if n != self.num {
            return Err(OpError::invalid(format!(
                "Input shape axis {a} must equal {}, got shape {:?}",
                self.num,
                x.shape()
            )));
        }
        let mut sh = x.shape().to_vec();
        sh.remove(a);
        let parts = if n == 1 {
            tensors![x]
        } else {
            split(&x, a, &vec![1; n])?
        };
        parts.into_iter().map(|t| Ok(t.reshape(&sh)?)).collect()
    }
}

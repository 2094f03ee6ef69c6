//! `UnsortedSegmentJoin`: joins the strings of `inputs` that share a segment id, in input
//! order. TF reference: core/kernels/unsorted_segment_join_op.cc.

use super::strings;
use crate::ops::{take_inputs, BuildCtx, EvalCtx, Op, OpError, Tensors};
use crate::tensor::{Bytes, DType, Tensor};

/// Attr `separator` (`Tindices` / `Tnumsegments` are read off the inputs).
#[derive(Debug)]
pub(super) struct UnsortedSegmentJoin {
    separator: Vec<u8>,
}

impl UnsortedSegmentJoin {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        let sep = cx.attr_opt_bytes("separator").unwrap_or_default();
        // TF appends `separator_.c_str()`: the separator stops at its first NUL byte.
        let end = sep.iter().position(|&b| b == 0).unwrap_or(sep.len());
        Ok(Box::new(UnsortedSegmentJoin {
            separator: sep[..end].to_vec(),
        }))
    }
}

impl Op for UnsortedSegmentJoin {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [input, ids, num] = take_inputs(inputs)?;
        let values = strings(&input, 0)?;
        for (i, t) in [(1, &ids), (2, &num)] {
            if !matches!(t.dtype(), DType::I32 | DType::I64) {
                return Err(OpError::dtype(i, "int32 or int64", t.dtype()));
            }
        }
        if num.is_empty() {
            return Err(OpError::invalid("Number of segments cannot be empty."));
        }
        if num.rank() != 0 {
            return Err(OpError::invalid("Number of segments must be a scalar"));
        }
        let num = num.scalar_value_i64()?;
        let num = usize::try_from(num).map_err(|_| {
            OpError::invalid(format!(
                "Number of segments must be non-negative but got {num}"
            ))
        })?;
        let k = ids.rank();
        if k == 0 {
            return Err(OpError::invalid("Segment_id cannot have rank 0"));
        }
        if k > input.rank() {
            return Err(OpError::invalid(format!(
                "Invalid segment_id rank {k} for input with {} dimension(s)",
                input.rank()
            )));
        }
        if ids.shape() != &input.shape()[..k] {
            return Err(OpError::shape(format!(
                "segment_ids shape {:?} must be a prefix of the input shape {:?}",
                ids.shape(),
                input.shape()
            )));
        }
        let inner: usize = input.shape()[k..].iter().product();
        let shape: Vec<usize> = std::iter::once(num)
            .chain(input.shape()[k..].iter().copied())
            .collect();
        let n = crate::tensor::num_elements(&shape)
            .ok_or_else(|| OpError::Limit(format!("output shape {shape:?} overflows")))?;
        cx.limits().check_alloc(n, DType::String)?;
        let ids = ids.to_i64_vec()?;
        let mut segs = Vec::with_capacity(ids.len());
        for &id in &ids {
            match usize::try_from(id) {
                Ok(s) if s < num => segs.push(s),
                _ => {
                    return Err(OpError::invalid(format!(
                        "segment_ids are not allowed to exceed num_segments or to have \
                         negative values (got {id}, num_segments {num})"
                    )))
                }
            }
        }
        let bytes = values
            .iter()
            .fold(0usize, |a, v| a.saturating_add(v.len()))
            .saturating_add(values.len().saturating_mul(self.separator.len()));
        cx.limits().check_alloc(bytes, DType::U8)?;
        let mut out = vec![Vec::new(); n];
        for (row, &seg) in segs.iter().enumerate() {
            for j in 0..inner {
                let o = &mut out[seg * inner + j];
                // TF quirk: the separator goes in only when the joined string so far is
                // non-empty, so empty strings at the start of a segment leave no separator
                // ("", "a" -> "a") while later ones do ("a", "", "b" -> "a,,b").
                if !o.is_empty() {
                    o.extend_from_slice(&self.separator);
                }
                o.extend_from_slice(&values[row * inner + j]);
            }
        }
        let out: Vec<Bytes> = out.into_iter().map(Bytes::from).collect();
        Ok(tensors![Tensor::from_vec(&shape, out)?])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{Limits, Session};

    fn run(sep: &[u8], inputs: Vec<Tensor>) -> Result<Vec<Tensor>, OpError> {
        let op = UnsortedSegmentJoin {
            separator: sep.to_vec(),
        };
        let session = Session::new(".".into(), None, Limits::default());
        op.eval(&mut EvalCtx::new(&session), inputs.into())
            .map(Tensors::into_vec)
    }

    fn strs(v: &[&str]) -> Tensor {
        Tensor::from_strings(&[v.len()], v).unwrap()
    }

    #[test]
    fn bad_segments_are_errors() {
        let err = |ids: Tensor, num: Tensor| run(b",", vec![strs(&["a", "b"]), ids, num]);
        // Out of range and negative ids.
        assert!(err(Tensor::vector(vec![0i32, 2]), Tensor::scalar(2i32)).is_err());
        assert!(err(Tensor::vector(vec![0i64, -1]), Tensor::scalar(2i64)).is_err());
        // Rank-0 ids, ids not a prefix of the input's shape, ids of higher rank.
        assert!(err(Tensor::scalar(0i32), Tensor::scalar(1i32)).is_err());
        assert!(err(Tensor::vector(vec![0i32]), Tensor::scalar(1i32)).is_err());
        let ids = Tensor::from_vec(&[2, 1], vec![0i32, 0]).unwrap();
        assert!(err(ids, Tensor::scalar(1i32)).is_err());
        // num_segments empty, not a scalar, negative, or a float.
        let ids = || Tensor::vector(vec![0i32, 0]);
        assert!(err(ids(), Tensor::vector(Vec::<i32>::new())).is_err());
        assert!(err(ids(), Tensor::vector(vec![1i32])).is_err());
        assert!(err(ids(), Tensor::scalar(-1i32)).is_err());
        assert!(err(ids(), Tensor::scalar(1.0f32)).is_err());
        // A huge num_segments hits the allocation cap instead of allocating.
        let e = err(ids(), Tensor::scalar(i64::MAX)).unwrap_err();
        assert!(matches!(e, OpError::Limit(_)), "{e}");
    }

    #[test]
    fn empty_strings_skip_the_leading_separator() {
        // tf.strings.unsorted_segment_join(["", "a", "", "b", ""], [0,0,0,0,1], 3,
        // separator=",") -> ["a,,b", "", ""]
        let out = run(
            b",",
            vec![
                strs(&["", "a", "", "b", ""]),
                Tensor::vector(vec![0i32, 0, 0, 0, 1]),
                Tensor::scalar(3i64),
            ],
        )
        .unwrap();
        let got: Vec<&[u8]> = out[0]
            .as_slice::<Bytes>()
            .unwrap()
            .iter()
            .map(|b| &b[..])
            .collect();
        assert_eq!(got, [&b"a,,b"[..], b"", b""]);
    }
}

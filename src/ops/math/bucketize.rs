//! `Bucketize`: which of the sorted `boundaries` buckets each element falls in.
//! TF reference: core/kernels/bucketize_op.cc.

use super::Registry;
use crate::ops::{take_inputs, BuildCtx, EvalCtx, Op, OpError, Tensors};
use crate::tensor::Tensor;

pub(crate) fn register(r: &mut Registry) {
    r.add("Bucketize", Bucketize::build);
}

/// `out[i] = |{b in boundaries : b <= x[i]}|` as int32 (`std::upper_bound`), so a NaN, which
/// compares false with everything, lands past the last boundary, as in TF.
#[derive(Debug)]
struct Bucketize {
    boundaries: Vec<f32>,
}

/// TF's `std::is_sorted` check (non-decreasing; a NaN next to anything fails it).
fn is_sorted(b: &[f32]) -> bool {
    b.windows(2).all(|w| w[0] <= w[1])
}

impl Bucketize {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        let boundaries = cx.attr_list_f32("boundaries");
        if !is_sorted(&boundaries) {
            return Err(OpError::invalid("Expected sorted boundaries"));
        }
        Ok(Box::new(Bucketize { boundaries }))
    }

    /// `upper_bound` with C++'s comparison `x < b`, in the type C++ compares in.
    fn bucket<T: Copy>(&self, x: T, less: impl Fn(T, f32) -> bool) -> i32 {
        self.boundaries.partition_point(|&b| !less(x, b)) as i32
    }
}

impl Op for Bucketize {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [x] = take_inputs(inputs)?;
        // C++'s usual arithmetic conversions: an integer meets a float boundary as float, a
        // double meets it as double.
        let out: Vec<i32> = match x.dtype() {
            crate::tensor::DType::F32 => x
                .as_slice::<f32>()?
                .iter()
                .map(|&v| self.bucket(v, |v, b| v < b))
                .collect(),
            crate::tensor::DType::F64 => x
                .as_slice::<f64>()?
                .iter()
                .map(|&v| self.bucket(v, |v, b| v < f64::from(b)))
                .collect(),
            crate::tensor::DType::I32 => x
                .as_slice::<i32>()?
                .iter()
                .map(|&v| self.bucket(v, |v, b| (v as f32) < b))
                .collect(),
            crate::tensor::DType::I64 => x
                .as_slice::<i64>()?
                .iter()
                .map(|&v| self.bucket(v, |v, b| (v as f32) < b))
                .collect(),
            d => return Err(OpError::dtype(0, "int32, int64, float or double", d)),
        };
        Ok(tensors![Tensor::from_vec(x.shape(), out)?])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{Limits, Session};

    #[test]
    fn buckets_and_unsorted_boundaries() {
        let op = Bucketize {
            boundaries: vec![0., 1., 2.5],
        };
        let session = Session::new(".".into(), None, Limits::default());
        let x = Tensor::vector(vec![-1f32, 0., 0.5, 1., 2.5, 3., f32::NAN]);
        let out = op.eval(&mut EvalCtx::new(&session), tensors![x]).unwrap();
        // tf.raw_ops.Bucketize(input=x, boundaries=[0., 1., 2.5]) in TF 2.21.
        assert_eq!(out[0].as_slice::<i32>().unwrap(), [0, 1, 1, 2, 3, 3, 3]);
        assert!(is_sorted(&[0., 0., 1.]));
        assert!(!is_sorted(&[1., 0.]));
        assert!(!is_sorted(&[0., f32::NAN, 1.]));
    }
}

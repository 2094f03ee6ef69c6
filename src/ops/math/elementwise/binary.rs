//! Binary arithmetic with broadcasting, plus `BiasAdd` and `AddN`. TF reference:
//! tensorflow/core/kernels/cwise_ops.h (functors), cwise_op_*.cc, bias_op.cc,
//! aggregate_ops.cc.

use half::{bf16, f16};

use super::num::{fmax, fmin, Float, FloatElem, Int};
use super::{alloc_len, broadcast_shape, broadcast_strides, map2, map2_to, writable, zip_in_place};
use crate::ops::kernels::elementwise::{self as k, BinaryOp};
use crate::ops::{take_inputs, BuildCtx, EvalCtx, Limits, Op, OpError, Tensors};
use crate::tensor::{Bytes, Complex32, Complex64, DType, Element, Tensor};

/// Which binary arithmetic op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BinOp {
    Add,
    Atan2,
    /// TF's `Div`: IEEE on floats, truncating (and erroring on zero) on integers.
    Div,
    DivNoNan,
    FloorDiv,
    FloorMod,
    Maximum,
    Minimum,
    Mul,
    Pow,
    RealDiv,
    SquaredDifference,
    Sub,
    TruncateDiv,
    TruncateMod,
}

/// `Add`, `AddV2`, `Sub`, `Mul`, `Div`, `RealDiv`, ... `Atan2`: broadcasting binary arithmetic.
#[derive(Debug)]
pub(super) struct Binary {
    op: BinOp,
}

impl Binary {
    pub(super) fn build(cx: &mut BuildCtx<'_>, op: BinOp) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(2)?;
        Ok(Box::new(Binary { op }))
    }
}

impl Op for Binary {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [a, b] = take_inputs(inputs)?;
        let dt = a.dtype();
        if b.dtype() != dt {
            return Err(OpError::dtype(1, dt.name(), b.dtype()));
        }
        let l = cx.limits();
        let out = match dt {
            DType::F32 => match f32_fast(l, self.op, &a, &b)? {
                Some(t) => Some(t),
                None => float::<f32>(l, self.op, a, b)?,
            },
            DType::F64 => float::<f64>(l, self.op, a, b)?,
            DType::F16 => float::<f16>(l, self.op, a, b)?,
            DType::BF16 => float::<bf16>(l, self.op, a, b)?,
            DType::I8 => int::<i8>(l, self.op, a, b)?,
            DType::I16 => int::<i16>(l, self.op, a, b)?,
            DType::I32 => int::<i32>(l, self.op, a, b)?,
            DType::I64 => int::<i64>(l, self.op, a, b)?,
            DType::U8 => int::<u8>(l, self.op, a, b)?,
            DType::U16 => int::<u16>(l, self.op, a, b)?,
            DType::U32 => int::<u32>(l, self.op, a, b)?,
            DType::U64 => int::<u64>(l, self.op, a, b)?,
            DType::C64 => complex::<Complex32>(l, self.op, &a, &b)?,
            DType::C128 => complex::<Complex64>(l, self.op, &a, &b)?,
            // `Add` concatenates strings.
            DType::String if self.op == BinOp::Add => {
                Some(map2_to::<Bytes, Bytes>(l, &a, &b, |x, y| {
                    Bytes::from([&x[..], &y[..]].concat())
                })?)
            }
            _ => None,
        };
        out.map(|t| tensors![t])
            .ok_or_else(|| OpError::dtype(0, "a numeric type this op supports", dt))
    }
}

/// Complex `+ - * /` (`std::complex` arithmetic, as TF's functors).
fn complex<C>(l: &Limits, op: BinOp, a: &Tensor, b: &Tensor) -> Result<Option<Tensor>, OpError>
where
    C: Element + Default + Copy + Sync + std::ops::Add<Output = C> + std::ops::Sub<Output = C>,
    C: std::ops::Mul<Output = C> + std::ops::Div<Output = C>,
{
    Ok(Some(match op {
        BinOp::Add => map2_to::<C, C>(l, a, b, |x, y| *x + *y)?,
        BinOp::Sub => map2_to::<C, C>(l, a, b, |x, y| *x - *y)?,
        BinOp::Mul => map2_to::<C, C>(l, a, b, |x, y| *x * *y)?,
        BinOp::Div | BinOp::RealDiv => map2_to::<C, C>(l, a, b, |x, y| *x / *y)?,
        _ => return Ok(None),
    }))
}

/// f32 `+ - * /` with same shapes or a scalar side, when no input buffer can be reused: the
/// kernels crate's vectorized loops (the in-place paths give bit-identical results).
fn f32_fast(l: &Limits, op: BinOp, a: &Tensor, b: &Tensor) -> Result<Option<Tensor>, OpError> {
    let kop = match op {
        BinOp::Add => BinaryOp::Add,
        BinOp::Sub => BinaryOp::Sub,
        BinOp::Mul => BinaryOp::Mul,
        BinOp::Div | BinOp::RealDiv => BinaryOp::Div,
        _ => return Ok(None),
    };
    let (x, y) = (a.as_slice::<f32>()?, b.as_slice::<f32>()?);
    let shape = broadcast_shape(a.shape(), b.shape())?;
    let reusable = |t: &Tensor| t.shape() == shape.as_slice() && writable::<f32>(t);
    if reusable(a) || reusable(b) {
        return Ok(None);
    }
    let n = alloc_len(l, &shape, DType::F32)?;
    // Each kernel below writes every element (the buffer is dropped unused otherwise).
    let mut out = crate::tensor::pool::f32_for_overwrite(n);
    if a.shape() == b.shape() {
        k::binary_f32(kop, x, y, &mut out);
    } else if y.len() == 1 && x.len() == n {
        k::binary_scalar_rhs_f32(kop, x, y[0], &mut out);
    } else if x.len() == 1 && y.len() == n {
        k::binary_scalar_lhs_f32(kop, x[0], y, &mut out);
    } else {
        return Ok(None);
    }
    Ok(Some(Tensor::from_vec(&shape, out)?))
}

/// Float arithmetic in `S::C` (f16/bf16 in f32, rounded once per op).
fn float<S: FloatElem>(
    l: &Limits,
    op: BinOp,
    a: Tensor,
    b: Tensor,
) -> Result<Option<Tensor>, OpError> {
    use BinOp::*;
    fn go<S: FloatElem>(
        l: &Limits,
        a: Tensor,
        b: Tensor,
        f: impl Fn(S::C, S::C) -> S::C + Sync,
    ) -> Result<Tensor, OpError> {
        map2::<S>(l, a, b, |x, y| S::store(f(x.load(), y.load())))
    }
    let zero = <S::C as Float>::ZERO;
    Ok(Some(match op {
        Add => go::<S>(l, a, b, |x, y| x + y)?,
        Atan2 => go::<S>(l, a, b, |y, x| y.atan2(x))?,
        Div | RealDiv => go::<S>(l, a, b, |x, y| x / y)?,
        DivNoNan => go::<S>(l, a, b, move |x, y| if y == zero { zero } else { x / y })?,
        FloorDiv => go::<S>(l, a, b, |x, y| (x / y).floor())?,
        // TF: fmod, then shifted by y when the signs of y and the remainder differ.
        FloorMod => go::<S>(l, a, b, move |x, y| {
            let m = x % y;
            if m != zero && ((y < zero) != (m < zero)) {
                m + y
            } else {
                m
            }
        })?,
        Maximum => go::<S>(l, a, b, fmax)?,
        Minimum => go::<S>(l, a, b, fmin)?,
        Mul => go::<S>(l, a, b, |x, y| x * y)?,
        Pow => go::<S>(l, a, b, |x, y| x.powf(y))?,
        SquaredDifference => go::<S>(l, a, b, |x, y| (x - y) * (x - y))?,
        Sub => go::<S>(l, a, b, |x, y| x - y)?,
        TruncateDiv => go::<S>(l, a, b, |x, y| (x / y).trunc())?,
        TruncateMod => go::<S>(l, a, b, |x, y| x % y)?,
    }))
}

/// Integer arithmetic, wrapping like TF's C++. Division by zero is an error (TF checks every
/// divisor; with an empty output no divisor is used).
fn int<I: Int>(l: &Limits, op: BinOp, a: Tensor, b: Tensor) -> Result<Option<Tensor>, OpError> {
    use BinOp::*;
    let divides = matches!(op, Div | FloorDiv | FloorMod | TruncateDiv | TruncateMod);
    let used = !a.is_empty() && !b.is_empty();
    if divides && used && b.as_slice::<I>()?.contains(&I::ZERO) {
        return Err(OpError::invalid("Integer division by zero"));
    }
    if op == Pow && used && b.as_slice::<I>()?.iter().any(|v| v.is_neg()) {
        return Err(OpError::invalid(
            "Integers to negative integer powers are not allowed",
        ));
    }
    Ok(Some(match op {
        Add => map2::<I>(l, a, b, I::wadd)?,
        Div | TruncateDiv => map2::<I>(l, a, b, I::tdiv)?,
        DivNoNan => map2::<I>(l, a, b, |x, y| if y == I::ZERO { y } else { x.tdiv(y) })?,
        FloorDiv => map2::<I>(l, a, b, |x, y| {
            let q = x.tdiv(y);
            if x.trem(y) != I::ZERO && (x.is_neg() != y.is_neg()) {
                q.wsub(I::ONE)
            } else {
                q
            }
        })?,
        FloorMod => map2::<I>(l, a, b, |x, y| {
            let m = x.trem(y);
            if m != I::ZERO && (y.is_neg() != m.is_neg()) {
                m.wadd(y)
            } else {
                m
            }
        })?,
        Maximum => map2::<I>(l, a, b, |x, y| x.max(y))?,
        Minimum => map2::<I>(l, a, b, |x, y| x.min(y))?,
        Mul => map2::<I>(l, a, b, I::wmul)?,
        Pow => map2::<I>(l, a, b, I::wpow)?,
        SquaredDifference => map2::<I>(l, a, b, |x, y| {
            let d = x.wsub(y);
            d.wmul(d)
        })?,
        Sub => map2::<I>(l, a, b, I::wsub)?,
        TruncateMod => map2::<I>(l, a, b, I::trem)?,
        Atan2 | RealDiv => return Ok(None),
    }))
}

/// `BiasAdd` / `BiasAddV1`: adds a 1-D bias along the channel axis (last for NHWC, 1 for
/// NCHW) of a tensor of rank >= 2. TF reference: bias_op.cc.
#[derive(Debug)]
pub(super) struct BiasAdd {
    nchw: bool,
}

impl BiasAdd {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(2)?;
        let fmt = cx
            .attr_opt_str("data_format")
            .unwrap_or_else(|| "NHWC".into());
        let nchw = match fmt.as_str() {
            "NHWC" => false,
            "NCHW" => true,
            other => return Err(OpError::invalid(format!("invalid data_format {other:?}"))),
        };
        Ok(Box::new(BiasAdd { nchw }))
    }
}

impl Op for BiasAdd {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [value, bias] = take_inputs(inputs)?;
        let rank = value.rank();
        if rank < 2 {
            return Err(OpError::invalid(format!(
                "Input tensor must be at least 2D: {:?}",
                value.shape()
            )));
        }
        if bias.rank() != 1 {
            return Err(OpError::invalid(format!(
                "Biases must be 1D: {:?}",
                bias.shape()
            )));
        }
        let axis = if self.nchw { 1 } else { rank - 1 };
        if bias.len() != value.shape()[axis] {
            return Err(OpError::invalid(format!(
                "Must provide as many biases as the channel dimension of the input tensor: \
                 {:?} vs. {:?}",
                bias.shape(),
                value.shape()
            )));
        }
        if bias.dtype() != value.dtype() {
            return Err(OpError::dtype(1, value.dtype().name(), bias.dtype()));
        }
        let mut st = vec![0; rank];
        st[axis] = 1;
        let out = match value.dtype() {
            DType::F32 => add_along::<f32>(cx.limits(), value, &bias, &st, |x, y| x + y)?,
            DType::F64 => add_along::<f64>(cx.limits(), value, &bias, &st, |x, y| x + y)?,
            DType::F16 => add_along::<f16>(cx.limits(), value, &bias, &st, |x, y| {
                f16::from_f32(x.to_f32() + y.to_f32())
            })?,
            DType::BF16 => add_along::<bf16>(cx.limits(), value, &bias, &st, |x, y| {
                bf16::from_f32(x.to_f32() + y.to_f32())
            })?,
            DType::I8 => add_along::<i8>(cx.limits(), value, &bias, &st, i8::wadd)?,
            DType::I16 => add_along::<i16>(cx.limits(), value, &bias, &st, i16::wadd)?,
            DType::I32 => add_along::<i32>(cx.limits(), value, &bias, &st, i32::wadd)?,
            DType::I64 => add_along::<i64>(cx.limits(), value, &bias, &st, i64::wadd)?,
            DType::U8 => add_along::<u8>(cx.limits(), value, &bias, &st, u8::wadd)?,
            DType::U16 => add_along::<u16>(cx.limits(), value, &bias, &st, u16::wadd)?,
            DType::U32 => add_along::<u32>(cx.limits(), value, &bias, &st, u32::wadd)?,
            DType::U64 => add_along::<u64>(cx.limits(), value, &bias, &st, u64::wadd)?,
            dt => return Err(OpError::dtype(0, "a numeric type", dt)),
        };
        Ok(tensors![out])
    }
}

/// `value op bias` with `bias` read through `bias_strides`, in `value`'s buffer (copied first
/// when it is mapped or shared).
fn add_along<T: Element + Copy>(
    l: &Limits,
    mut value: Tensor,
    bias: &Tensor,
    bias_strides: &[usize],
    f: impl Fn(T, T) -> T + Sync,
) -> Result<Tensor, OpError> {
    alloc_len(l, value.shape(), T::DTYPE)?;
    let shape = value.shape().to_vec();
    let b = bias.as_slice::<T>()?;
    zip_in_place(value.as_mut_slice::<T>()?, &shape, b, bias_strides, f);
    Ok(value)
}

/// `AddN`: the sum of N tensors of one shape and dtype, added left to right as TF does.
/// TF reference: aggregate_ops.cc.
#[derive(Debug)]
pub(super) struct AddN;

impl AddN {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        if cx.num_inputs == 0 {
            return Err(OpError::Arity {
                expected: 1,
                got: 0,
            });
        }
        Ok(Box::new(AddN))
    }
}

impl Op for AddN {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let mut it = inputs.into_iter();
        let first = it.next().ok_or(OpError::Arity {
            expected: 1,
            got: 0,
        })?;
        let rest: Vec<Tensor> = it.collect();
        for (i, t) in rest.iter().enumerate() {
            if t.shape() != first.shape() {
                return Err(OpError::invalid(format!(
                    "Inputs to operation AddN must have the same size and shape. Input 0: \
                     {:?} != input {}: {:?}",
                    first.shape(),
                    i + 1,
                    t.shape()
                )));
            }
            if t.dtype() != first.dtype() {
                return Err(OpError::dtype(i + 1, first.dtype().name(), t.dtype()));
            }
        }
        let l = cx.limits();
        let out = match first.dtype() {
            DType::F32 => sum::<f32>(l, first, &rest, |x, y| x + y)?,
            DType::F64 => sum::<f64>(l, first, &rest, |x, y| x + y)?,
            DType::F16 => sum::<f16>(l, first, &rest, |x, y| {
                f16::from_f32(x.to_f32() + y.to_f32())
            })?,
            DType::BF16 => sum::<bf16>(l, first, &rest, |x, y| {
                bf16::from_f32(x.to_f32() + y.to_f32())
            })?,
            DType::I8 => sum::<i8>(l, first, &rest, i8::wadd)?,
            DType::I16 => sum::<i16>(l, first, &rest, i16::wadd)?,
            DType::I32 => sum::<i32>(l, first, &rest, i32::wadd)?,
            DType::I64 => sum::<i64>(l, first, &rest, i64::wadd)?,
            DType::U8 => sum::<u8>(l, first, &rest, u8::wadd)?,
            DType::U16 => sum::<u16>(l, first, &rest, u16::wadd)?,
            DType::U32 => sum::<u32>(l, first, &rest, u32::wadd)?,
            DType::U64 => sum::<u64>(l, first, &rest, u64::wadd)?,
            dt => return Err(OpError::dtype(0, "a numeric type", dt)),
        };
        Ok(tensors![out])
    }
}

fn sum<T: Element + Copy>(
    l: &Limits,
    first: Tensor,
    rest: &[Tensor],
    f: impl Fn(T, T) -> T + Sync + Copy,
) -> Result<Tensor, OpError> {
    let shape = first.shape().to_vec();
    let st = broadcast_strides(&shape, shape.len());
    let mut acc = first;
    alloc_len(l, &shape, T::DTYPE)?;
    for t in rest {
        zip_in_place(acc.as_mut_slice::<T>()?, &shape, t.as_slice::<T>()?, &st, f);
    }
    Ok(acc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Session;

    fn eval(op: &dyn Op, inputs: Vec<Tensor>) -> Result<Tensor, OpError> {
        let session = Session::new(".".into(), None, Default::default());
        let mut cx = EvalCtx::new(&session);
        Ok(op.eval(&mut cx, inputs.into())?.remove(0))
    }
    fn bin(op: BinOp, a: Tensor, b: Tensor) -> Result<Tensor, OpError> {
        eval(&Binary { op }, vec![a, b])
    }
    fn v<T: Element>(x: &[T]) -> Tensor {
        Tensor::vector(x.to_vec())
    }

    #[test]
    fn integer_division_family_matches_tf() {
        // tf.raw_ops.Div(x=[-7, 7, -7, 7], y=[2, 2, -2, -2]) -> [-3, 3, 3, -3]
        let r = bin(BinOp::Div, v(&[-7i32, 7, -7, 7]), v(&[2i32, 2, -2, -2])).unwrap();
        assert_eq!(r.as_slice::<i32>().unwrap(), [-3, 3, 3, -3]);
        // FloorMod(x=[-7, 7, 7, -7], y=[2, -2, 3, -3]) -> [1, -1, 1, -1]
        let r = bin(
            BinOp::FloorMod,
            v(&[-7i32, 7, 7, -7]),
            v(&[2i32, -2, 3, -3]),
        )
        .unwrap();
        assert_eq!(r.as_slice::<i32>().unwrap(), [1, -1, 1, -1]);
        let r = bin(
            BinOp::FloorDiv,
            v(&[-7i64, 7, i64::MIN]),
            v(&[2i64, -2, -1]),
        )
        .unwrap();
        assert_eq!(r.as_slice::<i64>().unwrap(), [-4, -4, i64::MIN]);
        // Div(x=[-7], y=[0]) -> InvalidArgument: Integer division by zero
        assert!(matches!(
            bin(BinOp::Div, v(&[-7i32]), v(&[0i32])),
            Err(OpError::Invalid(_))
        ));
        // Pow(x=[2], y=[-1]) -> InvalidArgument; Pow(x=[2, 3, -2], y=[31, 2, 3])
        assert!(bin(BinOp::Pow, v(&[2i32]), v(&[-1i32])).is_err());
        let r = bin(BinOp::Pow, v(&[2i32, 3, -2]), v(&[31i32, 2, 3])).unwrap();
        assert_eq!(r.as_slice::<i32>().unwrap(), [i32::MIN, 9, -8]);
    }

    #[test]
    fn float_semantics_match_tf() {
        let nan = f32::NAN;
        // FloorMod(x=[-7, 7, 1, -0., 5.5, 3], y=[2, -2, 0, 3, -2, inf]) -> [1, -1, nan, -0, -0.5, 3]
        let r = bin(
            BinOp::FloorMod,
            v(&[-7.0f32, 7.0, 1.0, -0.0, 5.5, 3.0]),
            v(&[2.0f32, -2.0, 0.0, 3.0, -2.0, f32::INFINITY]),
        )
        .unwrap();
        let r = r.as_slice::<f32>().unwrap();
        assert_eq!([r[0], r[1], r[4], r[5]], [1.0, -1.0, -0.5, 3.0]);
        assert!(r[2].is_nan() && r[3].to_bits() == (-0.0f32).to_bits());
        // FloorDiv(x=[-7., 1., -1.], y=[2., 0., 0.]) -> [-4, inf, -inf]
        let r = bin(
            BinOp::FloorDiv,
            v(&[-7.0f32, 1.0, -1.0]),
            v(&[2.0f32, 0.0, 0.0]),
        )
        .unwrap();
        assert_eq!(
            r.as_slice::<f32>().unwrap(),
            [-4.0, f32::INFINITY, f32::NEG_INFINITY]
        );
        // DivNoNan(x=[1., 0., nan], y=[0., 0., 0.]) -> [0, 0, 0]
        let r = bin(
            BinOp::DivNoNan,
            v(&[1.0f64, 0.0, f64::NAN]),
            v(&[0.0f64; 3]),
        )
        .unwrap();
        assert_eq!(r.as_slice::<f64>().unwrap(), [0.0; 3]);
        // Maximum(x=[nan, 1.], y=[1., nan]) -> [nan, nan]
        let r = bin(BinOp::Maximum, v(&[nan, 1.0]), v(&[1.0f32, nan])).unwrap();
        assert!(r.as_slice::<f32>().unwrap().iter().all(|x| x.is_nan()));
        // Atan2(y=[1., -0.], x=[-1., -1.]) -> [2.356194496154785, -3.1415927410125732]
        let r = bin(BinOp::Atan2, v(&[1.0f32, -0.0]), v(&[-1.0f32, -1.0])).unwrap();
        assert_eq!(
            r.as_slice::<f32>().unwrap(),
            [2.3561945, -std::f32::consts::PI]
        );
    }

    #[test]
    fn broadcasting_and_buffer_reuse() {
        let a = Tensor::from_vec(&[2, 3], vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let b = Tensor::from_vec(&[2, 1], vec![10.0f32, 20.0]).unwrap();
        let keep = a.clone(); // shared: the op must not write into `keep`.
        let r = bin(BinOp::Sub, b.clone(), a).unwrap();
        assert_eq!(
            r.as_slice::<f32>().unwrap(),
            [9.0, 8.0, 7.0, 16.0, 15.0, 14.0]
        );
        assert_eq!(keep.as_slice::<f32>().unwrap()[0], 1.0);
        let r = bin(BinOp::Mul, Tensor::scalar(2.0f32), v(&[1.0f32, 2.0])).unwrap();
        assert_eq!(r.as_slice::<f32>().unwrap(), [2.0, 4.0]);
        let r = bin(BinOp::Add, v(&[1.0f32, 2.0]), v(&[3.0f32, 4.0])).unwrap();
        assert_eq!(r.as_slice::<f32>().unwrap(), [4.0, 6.0]);
        assert!(matches!(
            bin(BinOp::Add, v(&[1.0f32, 2.0]), v(&[1.0f32; 3])),
            Err(OpError::Shape(_))
        ));
        assert!(bin(BinOp::Add, v(&[1.0f32]), v(&[1.0f64])).is_err());
        // tf.raw_ops.Add(x=["a", "b"], y="c") -> [b"ac", b"bc"]
        let s = bin(
            BinOp::Add,
            v(&[
                crate::tensor::Bytes::from_static(b"a"),
                crate::tensor::Bytes::from_static(b"b"),
            ]),
            Tensor::scalar(crate::tensor::Bytes::from_static(b"c")),
        );
        assert_eq!(
            s.unwrap().as_slice::<crate::tensor::Bytes>().unwrap(),
            [b"ac".to_vec(), b"bc".to_vec()]
        );
    }

    #[test]
    fn bias_add_and_add_n() {
        // BiasAdd(value=zeros([2,3,2]), bias=[1,2,3], data_format="NCHW")
        let value = Tensor::zeros(DType::F32, &[2, 3, 2]).unwrap();
        let r = eval(&BiasAdd { nchw: true }, vec![value, v(&[1.0f32, 2.0, 3.0])]).unwrap();
        assert_eq!(
            r.as_slice::<f32>().unwrap()[..6],
            [1.0, 1.0, 2.0, 2.0, 3.0, 3.0]
        );
        let value = Tensor::zeros(DType::I64, &[2, 2]).unwrap();
        let r = eval(&BiasAdd { nchw: false }, vec![value, v(&[1i64, 2])]).unwrap();
        assert_eq!(r.as_slice::<i64>().unwrap(), [1, 2, 1, 2]);
        // Rank-1 value: "Input tensor must be at least 2D"
        assert!(eval(&BiasAdd { nchw: false }, vec![v(&[0.0f32]), v(&[1.0f32])]).is_err());
        // AddN([[1,2],[3,4],[5,6]]) -> [9, 12]; shapes must match exactly
        let r = eval(&AddN, vec![v(&[1i32, 2]), v(&[3i32, 4]), v(&[5i32, 6])]).unwrap();
        assert_eq!(r.as_slice::<i32>().unwrap(), [9, 12]);
        assert!(eval(&AddN, vec![v(&[1i32, 2]), Tensor::scalar(3i32)]).is_err());
    }
}

//! Unary elementwise ops: math functions and activations. TF reference:
//! tensorflow/core/kernels/cwise_op_*.cc, relu_op_functor.h, softplus_op.h, softsign_op.h.

use half::{bf16, f16};

use super::num::{Float, FloatElem, Int};
use super::{map1, map1_to};
use crate::ops::kernels::elementwise as k;
use crate::ops::{take_inputs, BuildCtx, EvalCtx, Op, OpError, Tensors};
use crate::tensor::{Complex32, Complex64, DType, Tensor};

/// The complex maps TF defines with `std::complex` (others are refused by dtype).
macro_rules! complex {
    ($c:ty, $op:expr, $x:expr) => {{
        let f: Option<fn($c) -> $c> = match $op {
            UnOp::Exp => Some(|z| z.exp()),
            UnOp::Log => Some(|z| z.ln()),
            UnOp::Neg => Some(|z| -z),
            UnOp::Reciprocal => Some(|z| z.inv()),
            UnOp::Sqrt => Some(|z| z.sqrt()),
            UnOp::Square => Some(|z| z * z),
            _ => None,
        };
        match f {
            Some(f) => Some(map1_to::<$c, $c>(&$x, f)?),
            None => None,
        }
    }};
}

/// Which unary op; `LeakyRelu` carries its `alpha`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum UnOp {
    Abs,
    Acos,
    Acosh,
    Asin,
    Asinh,
    Atan,
    Atanh,
    Ceil,
    Cos,
    Cosh,
    Elu,
    Erf,
    Erfc,
    Exp,
    Expm1,
    Floor,
    IsFinite,
    IsInf,
    IsNan,
    LeakyRelu(f32),
    Log,
    Log1p,
    Neg,
    Reciprocal,
    Relu,
    Relu6,
    Rint,
    Round,
    Rsqrt,
    Selu,
    Sigmoid,
    Sign,
    Sin,
    Sinh,
    Softplus,
    Softsign,
    Sqrt,
    Square,
    Tan,
    Tanh,
}

/// Every unary math op and activation (`Abs` ... `Tanh`), for the dtypes TF's CPU kernels take.
#[derive(Debug)]
pub(super) struct Unary {
    op: UnOp,
}

impl Unary {
    pub(super) fn build(cx: &mut BuildCtx<'_>, op: UnOp) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(1)?;
        Ok(Box::new(Unary { op }))
    }
}

impl Op for Unary {
    fn eval(&self, _cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [x] = take_inputs(inputs)?;
        let dt = x.dtype();
        let out = match dt {
            DType::F32 => match f32_kernel(self.op) {
                Some(kernel) => {
                    let src = x.as_slice::<f32>()?;
                    // The kernel writes every element.
                    let mut out = crate::tensor::pool::f32_for_overwrite(src.len());
                    kernel(src, &mut out);
                    Some(Tensor::from_vec(x.shape(), out)?)
                }
                None => float::<f32>(self.op, x)?,
            },
            DType::F64 => float::<f64>(self.op, x)?,
            DType::F16 => float::<f16>(self.op, x)?,
            DType::BF16 => float::<bf16>(self.op, x)?,
            DType::I8 => int::<i8>(self.op, x)?,
            DType::I16 => int::<i16>(self.op, x)?,
            DType::I32 => int::<i32>(self.op, x)?,
            DType::I64 => int::<i64>(self.op, x)?,
            DType::U8 => int::<u8>(self.op, x)?,
            DType::U16 => int::<u16>(self.op, x)?,
            DType::U32 => int::<u32>(self.op, x)?,
            DType::U64 => int::<u64>(self.op, x)?,
            DType::C64 => complex!(Complex32, self.op, x),
            DType::C128 => complex!(Complex64, self.op, x),
            _ => None,
        };
        out.map(|t| tensors![t])
            .ok_or_else(|| OpError::dtype(0, "a numeric type this op supports", dt))
    }
}

/// A kernels-crate map from a slice into an equally long one.
type F32Map = fn(&[f32], &mut [f32]);

/// The kernels crate's f32 maps, used out of place (vectorized polynomial transcendentals, run
/// in parallel when large; using them on every path keeps results independent of buffer reuse,
/// and the fused swish (`ops::fused::Swish`) uses the same sigmoid).
fn f32_kernel(op: UnOp) -> Option<F32Map> {
    Some(match op {
        UnOp::Erf => k::erf_f32,
        UnOp::Erfc => k::erfc_f32,
        UnOp::Exp => k::exp_f32,
        UnOp::Tanh => k::tanh_f32,
        UnOp::Sigmoid => k::sigmoid_f32,
        _ => return None,
    })
}

/// Float ops, computed in `S::C` (f16/bf16 in f32, rounding once, as Eigen does).
fn float<S: FloatElem>(op: UnOp, x: Tensor) -> Result<Option<Tensor>, OpError> {
    use UnOp::*;
    fn go<S: FloatElem>(x: Tensor, f: impl Fn(S::C) -> S::C + Sync) -> Result<Tensor, OpError> {
        map1::<S>(x, |v| S::store(f(v.load())))
    }
    fn test<S: FloatElem>(x: &Tensor, f: impl Fn(S::C) -> bool + Sync) -> Result<Tensor, OpError> {
        map1_to::<S, bool>(x, |v| f(v.load()))
    }
    let c = <S::C as Float>::of;
    let (zero, one) = (c(0.0), c(1.0));
    Ok(Some(match op {
        Abs => go::<S>(x, |v| v.abs())?,
        Acos => go::<S>(x, |v| v.acos())?,
        Acosh => go::<S>(x, |v| v.acosh())?,
        Asin => go::<S>(x, |v| v.asin())?,
        Asinh => go::<S>(x, |v| v.asinh())?,
        Atan => go::<S>(x, |v| v.atan())?,
        Atanh => go::<S>(x, |v| v.atanh())?,
        Ceil => go::<S>(x, |v| v.ceil())?,
        Cos => go::<S>(x, |v| v.cos())?,
        Cosh => go::<S>(x, |v| v.cosh())?,
        // TF quirk: `exp(x) - 1`, not `expm1` (so Elu(-1e-8) is exactly 0 in f32).
        Elu => go::<S>(x, |v| if v < zero { v.exp() - one } else { v })?,
        Erf => go::<S>(x, |v| v.erf())?,
        Erfc => go::<S>(x, |v| v.erfc())?,
        Exp => go::<S>(x, |v| v.exp())?,
        Expm1 => go::<S>(x, |v| v.exp_m1())?,
        Floor => go::<S>(x, |v| v.floor())?,
        IsFinite => test::<S>(&x, |v| v.is_finite())?,
        IsInf => test::<S>(&x, |v| v.is_infinite())?,
        IsNan => test::<S>(&x, |v| v.is_nan())?,
        LeakyRelu(alpha) => {
            let a = c(alpha as f64);
            go::<S>(x, move |v| if v > zero { v } else { v * a })?
        }
        Log => go::<S>(x, |v| v.ln())?,
        Log1p => go::<S>(x, |v| v.ln_1p())?,
        Neg => go::<S>(x, |v| -v)?,
        Reciprocal => go::<S>(x, |v| one / v)?,
        // NaN and -0.0 pass through, as in TF.
        Relu => go::<S>(x, |v| if v < zero { zero } else { v })?,
        Relu6 => {
            let six = c(6.0);
            go::<S>(x, move |v| {
                if v < zero {
                    zero
                } else if v > six {
                    six
                } else {
                    v
                }
            })?
        }
        // Both round half to even in TF.
        Rint | Round => go::<S>(x, |v| v.rint())?,
        Rsqrt => go::<S>(x, |v| one / v.sqrt())?,
        Selu => {
            // TF's constants, and `exp(x) - 1` as in Elu.
            let scale = c(1.0507009873554805);
            let scale_alpha = c(1.7580993408473768);
            go::<S>(x, move |v| {
                if v < zero {
                    scale_alpha * (v.exp() - one)
                } else {
                    scale * v
                }
            })?
        }
        Sigmoid => go::<S>(x, |v| v.sigmoid())?,
        // Sign(NaN) is NaN and Sign(-0.0) is +0.0, as in TF.
        Sign => go::<S>(x, |v| {
            if v.is_nan() {
                v
            } else if v > zero {
                one
            } else if v < zero {
                -one
            } else {
                zero
            }
        })?,
        Sin => go::<S>(x, |v| v.sin())?,
        Sinh => go::<S>(x, |v| v.sinh())?,
        Softplus => {
            // TF: x above -threshold, e^x below threshold, else log(e^x + 1) (not log1p),
            // threshold = log(eps) + 2 of the compute type (f16 computes in f32 in TF too).
            let threshold = <S::C as Float>::EPS.ln() + c(2.0);
            go::<S>(x, move |v| {
                if v > -threshold {
                    v
                } else if v < threshold {
                    v.exp()
                } else {
                    (v.exp() + one).ln()
                }
            })?
        }
        Softsign => go::<S>(x, |v| v / (one + v.abs()))?,
        Sqrt => go::<S>(x, |v| v.sqrt())?,
        Square => go::<S>(x, |v| v * v)?,
        Tan => go::<S>(x, |v| v.tan())?,
        Tanh => go::<S>(x, |v| v.tanh())?,
    }))
}

/// Integer ops (wrapping, as TF's C++); `None` for ops TF has no integer kernel for.
fn int<I: Int>(op: UnOp, x: Tensor) -> Result<Option<Tensor>, OpError> {
    use UnOp::*;
    Ok(Some(match op {
        Abs => map1::<I>(x, |v| v.wabs())?,
        Neg => map1::<I>(x, |v| v.wneg())?,
        Relu => map1::<I>(x, |v| v.max(I::ZERO))?,
        Relu6 => map1::<I>(x, |v| v.max(I::ZERO).min(I::SIX))?,
        // TF quirk: Eigen's round-half-to-even functor on integers computes
        // `2 * floor(T(0.5) * x + T(0.5))` with T(0.5) == 0, so every value rounds to 0.
        Round => map1::<I>(x, |_| I::ZERO)?,
        Sign => map1::<I>(x, |v| {
            if v.is_neg() {
                I::ZERO.wsub(I::ONE)
            } else if v > I::ZERO {
                I::ONE
            } else {
                I::ZERO
            }
        })?,
        Square => map1::<I>(x, |v| v.wmul(v))?,
        _ => return Ok(None),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(op: &str, x: Tensor) -> Result<Tensor, OpError> {
        let u = Unary { op: op_of(op) };
        let session = crate::ops::Session::new(".".into(), None, Default::default());
        let mut cx = EvalCtx::new(&session);
        Ok(u.eval(&mut cx, tensors![x])?.remove(0))
    }

    fn op_of(name: &str) -> UnOp {
        use UnOp::*;
        match name {
            "Elu" => Elu,
            "Erfc" => Erfc,
            "Exp" => Exp,
            "LeakyRelu" => LeakyRelu(0.2),
            "Relu" => Relu,
            "Relu6" => Relu6,
            "Round" => Round,
            "Selu" => Selu,
            "Sign" => Sign,
            "Softplus" => Softplus,
            "IsNan" => IsNan,
            "Abs" => Abs,
            "Sigmoid" => Sigmoid,
            _ => panic!("{name}"),
        }
    }

    /// TF's printed float32 values, as f32.
    fn tf(v: &[f64]) -> Vec<f32> {
        v.iter().map(|&x| x as f32).collect()
    }

    fn f32s(op: &str, v: &[f32]) -> Vec<f32> {
        run(op, Tensor::vector(v.to_vec()))
            .unwrap()
            .into_vec::<f32>()
            .unwrap()
    }

    #[test]
    fn activations_match_tf() {
        let nan = f32::NAN;
        // tf.raw_ops.Relu(features=[nan, -0., -1.]) -> [nan, -0.0, 0.0]
        let r = f32s("Relu", &[nan, -0.0, -1.0]);
        assert!(r[0].is_nan() && r[1].to_bits() == (-0.0f32).to_bits() && r[2] == 0.0);
        assert_eq!(f32s("Relu6", &[-0.0, 7.0, 3.0])[1..], [6.0, 3.0]);
        // LeakyRelu(alpha=.2)([-3., 4.]) -> [-0.6, 4.0]
        assert_eq!(f32s("LeakyRelu", &[-3.0, 4.0]), [-0.6, 4.0]);
        // Elu([-1e-8, -0.3]) -> [0.0, -0x1.0966f4p-2]: exp(x)-1, not expm1
        assert_eq!(f32s("Elu", &[-1e-8, -0.3]), tf(&[0.0, -0.2591817975]));
        // Selu([-1., 2.]) -> [-1.1113307476043701, 2.1014020442962646]
        assert_eq!(
            f32s("Selu", &[-1.0, 2.0]),
            tf(&[-1.1113307476043701, 2.1014020442962646])
        );
        // Softplus([-20., 0., 15.]) -> [2.06115369216775e-09, 0.6931471824645996, 15.0]
        assert_eq!(
            f32s("Softplus", &[-20.0, 0.0, 15.0]),
            [2.0611537e-9, std::f32::consts::LN_2, 15.0]
        );
        // Sigmoid([-100., 0.5]) -> [0.0, 0.622459352016449] (TF flushes the denormal to 0)
        let s = f32s("Sigmoid", &[-100.0, 0.5]);
        assert!(s[0] < f32::MIN_POSITIVE && s[1] == 0.62245935);
        // Erfc([-1., 3.]) -> [1.842700719833374, 2.2090496713644825e-05]; TF is 1 ulp low at
        // -1. The vectorized kernel (`kernels::transcend`, ≤ 4 ulp relative) may differ from
        // TF's by an ulp or two, as TF's own Eigen approximation differs from the exact value.
        let got = f32s("Erfc", &[-1.0, 3.0]);
        for (g, want) in got.iter().zip([1.8427008f32, 2.2090497e-5]) {
            let ulps = (g.to_bits() as i64 - want.to_bits() as i64).abs();
            assert!(ulps <= 2, "Erfc: {g} vs TF {want} ({ulps} ulp)");
        }
    }

    #[test]
    fn rounding_and_sign_match_tf() {
        // tf.raw_ops.Round(x=[.5, 1.5, 2.5, -.5, -1.5, 2.4, -2.6]) -> [0, 2, 2, -0, -2, 2, -3]
        let r = f32s("Round", &[0.5, 1.5, 2.5, -0.5, -1.5, 2.4, -2.6]);
        assert_eq!(r, [0.0, 2.0, 2.0, -0.0, -2.0, 2.0, -3.0]);
        // tf.raw_ops.Round(x=[3, 4, -5]) -> [0, 0, 0] (TF quirk)
        let r = run("Round", Tensor::vector(vec![3i32, 4, -5])).unwrap();
        assert_eq!(r.as_slice::<i32>().unwrap(), [0, 0, 0]);
        // Sign([-0., nan, -3.]) -> [0.0, nan, -1.0]
        let s = f32s("Sign", &[-0.0, f32::NAN, -3.0]);
        assert!(s[0].to_bits() == 0 && s[1].is_nan() && s[2] == -1.0);
        // Abs(int32 min) wraps: Abs([-2**31]) -> [-2147483648]
        let a = run("Abs", Tensor::vector(vec![i32::MIN, -4])).unwrap();
        assert_eq!(a.as_slice::<i32>().unwrap(), [i32::MIN, 4]);
    }

    #[test]
    fn dtypes() {
        let h = run("Exp", Tensor::vector(vec![f16::from_f32(1.0)])).unwrap();
        assert_eq!(
            h.as_slice::<f16>().unwrap(),
            [f16::from_f32(std::f32::consts::E)]
        );
        let b = run("IsNan", Tensor::vector(vec![f64::NAN, 1.0])).unwrap();
        assert_eq!(b.as_slice::<bool>().unwrap(), [true, false]);
        assert!(matches!(
            run("Exp", Tensor::vector(vec![1i32])),
            Err(OpError::DType { .. })
        ));
        assert!(matches!(
            run("Abs", Tensor::vector(vec![true])),
            Err(OpError::DType { .. })
        ));
    }
}

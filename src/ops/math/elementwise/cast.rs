//! `Cast` between every numeric dtype and bool, with TF's CPU conversion rules. TF reference:
//! tensorflow/core/kernels/cast_op.cc, cast_op_impl.h.
//!
//! Each element goes through an exact intermediate (`i128` for integers, `f64` for floats),
//! which the compiler folds away per (source, destination) pair.

use half::{bf16, f16};

use super::with_numeric;
use crate::ops::{take_inputs, BuildCtx, EvalCtx, Op, OpError, Tensors};
use crate::tensor::{DType, Element, Tensor};

/// `Cast` to `DstT`. `Truncate` zeroes the mantissa bits a float→narrower-float cast drops,
/// instead of rounding (TF's `LSBZeroSetter`).
#[derive(Debug)]
pub(super) struct Cast {
    dst: DType,
    truncate: bool,
}

impl Cast {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(1)?;
        Ok(Box::new(Cast {
            dst: cx.attr_type("DstT")?,
            truncate: cx.attr_opt_bool("Truncate").unwrap_or(false),
        }))
    }
}

impl Op for Cast {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [x] = take_inputs(inputs)?;
        let src = x.dtype();
        if src == self.dst {
            return Ok(tensors![x]);
        }
        cx.limits().check_alloc(x.len(), self.dst)?;
        let unsupported =
            || OpError::Unimplemented(format!("Cast {src} to {} is not supported", self.dst));
        // Bits of an f64 mantissa that the destination float type does not keep.
        let drop_bits = match (self.truncate && src.is_float(), self.dst) {
            (true, DType::F32) => 52 - 23,
            (true, DType::F16) => 52 - 10,
            (true, DType::BF16) => 52 - 7,
            _ => 0,
        };
        let out = if src == DType::Bool {
            convert::<bool>(&x, self.dst, drop_bits)?
        } else {
            with_numeric!(src, S => convert::<S>(&x, self.dst, drop_bits)?, _ => None)
        };
        out.map(|t| tensors![t]).ok_or_else(unsupported)
    }
}

/// An element on its way through a cast.
#[derive(Clone, Copy)]
enum Val {
    Bool(bool),
    Float(f64),
    Int(i128),
}

trait Conv: Element + Copy {
    fn to_val(self) -> Val;
    fn from_val(v: Val) -> Self;
}

/// x86 `cvttsd2si` (what TF's C++ `static_cast` compiles to): truncate toward zero, and give
/// the "integer indefinite" value `MIN` for NaN and out-of-range inputs.
fn cvtt32(x: f64) -> i32 {
    let t = x.trunc();
    if (-2147483648.0..=2147483647.0).contains(&t) {
        t as i32
    } else {
        i32::MIN
    }
}
fn cvtt64(x: f64) -> i64 {
    let t = x.trunc();
    if (-9223372036854775808.0..9223372036854775808.0).contains(&t) {
        t as i64
    } else {
        i64::MIN
    }
}

/// Float → integer as TF computes it on x86-64: 8-, 16- and 32-bit targets go through a
/// 32-bit conversion and keep its low bits, `uint32` goes through 64 bits, `uint64` is
/// exact in [2^63, 2^64) and otherwise through 64 bits; NaN and out-of-range values become
/// the indefinite `MIN` of the conversion used (TF 2.21: float 300 → uint8 44, -1 → 255,
/// 1e10 → 0; NaN → int32 -2147483648).
fn float_to_int(x: f64, bits: u32, signed: bool) -> i128 {
    match (bits, signed) {
        (64, true) => cvtt64(x) as i128,
        (64, false) if x >= 9223372036854775808.0 => {
            if x < 18446744073709551616.0 {
                x as u64 as i128
            } else {
                1 << 63
            }
        }
        (64, false) => cvtt64(x) as u64 as i128,
        (32, false) => cvtt64(x) as i128,
        _ => cvtt32(x) as i128,
    }
}

macro_rules! conv_int {
    ($($t:ty),*) => {$(
        impl Conv for $t {
            fn to_val(self) -> Val {
                Val::Int(self as i128)
            }
            fn from_val(v: Val) -> Self {
                match v {
                    Val::Bool(b) => b as $t,
                    // Two's-complement wrap, as C++ integer conversions.
                    Val::Int(i) => i as $t,
                    Val::Float(f) => float_to_int(f, <$t>::BITS, <$t>::MIN != 0) as $t,
                }
            }
        }
    )*};
}
conv_int!(i8, i16, i32, i64, u8, u16, u32, u64);

impl Conv for bool {
    fn to_val(self) -> Val {
        Val::Bool(self)
    }
    fn from_val(v: Val) -> Self {
        match v {
            Val::Bool(b) => b,
            Val::Int(i) => i != 0,
            // NaN is true; -0.0 is false.
            Val::Float(f) => f != 0.0,
        }
    }
}

impl Conv for f32 {
    fn to_val(self) -> Val {
        Val::Float(self as f64)
    }
    fn from_val(v: Val) -> Self {
        match v {
            Val::Bool(b) => b as u8 as f32,
            Val::Int(i) => i as f32,
            Val::Float(f) => f as f32,
        }
    }
}

impl Conv for f64 {
    fn to_val(self) -> Val {
        Val::Float(self)
    }
    fn from_val(v: Val) -> Self {
        match v {
            Val::Bool(b) => b as u8 as f64,
            Val::Int(i) => i as f64,
            Val::Float(f) => f,
        }
    }
}

// Eigen converts anything to half/bfloat16 through float, rounding twice (TF 2.21:
// float64 1 + 2^-11 + 2^-40 → float16 1.0; int64 2049 → float16 2048).
macro_rules! conv_half {
    ($($t:ty),*) => {$(
        impl Conv for $t {
            fn to_val(self) -> Val {
                Val::Float(self.to_f64())
            }
            fn from_val(v: Val) -> Self {
                <$t>::from_f32(f32::from_val(v))
            }
        }
    )*};
}
conv_half!(f16, bf16);

/// Converts `x` (element type `S`) to `dst`, or `None` if `dst` is not numeric or bool.
fn convert<S: Conv>(x: &Tensor, dst: DType, drop_bits: u32) -> Result<Option<Tensor>, OpError> {
    fn go<S: Conv, D: Conv>(x: &Tensor, drop_bits: u32) -> Result<Tensor, OpError> {
        let src = x.as_slice::<S>()?;
        let out: Vec<D> = if drop_bits == 0 {
            src.iter().map(|&v| D::from_val(v.to_val())).collect()
        } else {
            let mask = !((1u64 << drop_bits) - 1);
            src.iter()
                .map(|&v| match v.to_val() {
                    Val::Float(f) if !f.is_nan() => {
                        D::from_val(Val::Float(f64::from_bits(f.to_bits() & mask)))
                    }
                    other => D::from_val(other),
                })
                .collect()
        };
        Ok(Tensor::from_vec(x.shape(), out)?)
    }
    Ok(Some(match dst {
        DType::Bool => go::<S, bool>(x, drop_bits)?,
        dt => with_numeric!(dt, D => go::<S, D>(x, drop_bits)?, _ => return Ok(None)),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Session;

    fn cast<S: Element, D: Element>(v: &[S], truncate: bool) -> Result<Vec<D>, OpError> {
        let session = Session::new(".".into(), None, Default::default());
        let mut cx = EvalCtx::new(&session);
        let op = Cast {
            dst: D::DTYPE,
            truncate,
        };
        let out = op
            .eval(&mut cx, tensors![Tensor::vector(v.to_vec())])?
            .remove(0);
        Ok(out.into_vec::<D>()?)
    }

    #[test]
    fn float_to_int_matches_tf_on_x86() {
        let nan = f32::NAN;
        // tf.cast([nan, 1e10, -1e10, 3.7, -3.7, inf], tf.int32)
        let r: Vec<i32> = cast(&[nan, 1e10, -1e10, 3.7, -3.7, f32::INFINITY], false).unwrap();
        assert_eq!(r, [i32::MIN, i32::MIN, i32::MIN, 3, -3, i32::MIN]);
        // tf.cast([300., -1., 255.9, -300., nan, 1e10], tf.uint8) -> [44, 255, 255, 212, 0, 0]
        let r: Vec<u8> = cast(&[300.0f32, -1.0, 255.9, -300.0, nan, 1e10], false).unwrap();
        assert_eq!(r, [44, 255, 255, 212, 0, 0]);
        // tf.cast([-1., 5e9, 3.5], tf.uint32) -> [4294967295, 705032704, 3]
        let r: Vec<u32> = cast(&[-1.0f32, 5e9, 3.5], false).unwrap();
        assert_eq!(r, [4294967295, 705032704, 3]);
        // tf.cast(float64 [1e19, nan, -5e18, -1e19, 1e20], tf.uint64)
        let r: Vec<u64> = cast(&[1e19f64, f64::NAN, -5e18, -1e19, 1e20], false).unwrap();
        assert_eq!(
            r,
            [
                10000000000000000000,
                1 << 63,
                13446744073709551616,
                1 << 63,
                1 << 63
            ]
        );
        // tf.cast([nan, 70000., -1., 3e9], tf.int16) -> [0, 4464, -1, 0]
        let r: Vec<i16> = cast(&[nan, 70000.0, -1.0, 3e9], false).unwrap();
        assert_eq!(r, [0, 4464, -1, 0]);
        // float16 [300, -3.5, inf] -> uint8 [44, 253, 0]
        let h: Vec<f16> = [300.0, -3.5, f32::INFINITY].map(f16::from_f32).to_vec();
        assert_eq!(cast::<f16, u8>(&h, false).unwrap(), [44, 253, 0]);
    }

    #[test]
    fn other_conversions_match_tf() {
        // tf.cast([0., -0., nan, 0.1], tf.bool) -> [F, F, T, T]
        let r: Vec<bool> = cast(&[0.0f32, -0.0, f32::NAN, 0.1], false).unwrap();
        assert_eq!(r, [false, false, true, true]);
        assert_eq!(
            cast::<bool, f32>(&[true, false], false).unwrap(),
            [1.0, 0.0]
        );
        assert_eq!(cast::<i32, u8>(&[300, -1], false).unwrap(), [44, 255]);
        assert_eq!(cast::<i64, i32>(&[(1 << 40) + 5], false).unwrap(), [5]);
        // int64 2^60 + 2^36 + 1 -> float32 1.1529216420458004e18 (one rounding)
        let r: Vec<f32> = cast(&[(1i64 << 60) + (1 << 36) + 1], false).unwrap();
        assert_eq!(r, [1.1529216420458004e18f64 as f32]);
        // int64 [2049, 70000] -> float16 [2048, inf]
        let r: Vec<f16> = cast(&[2049i64, 70000], false).unwrap();
        assert_eq!(r, [f16::from_f32(2048.0), f16::INFINITY]);
        // float64 1 + 2^-11 + 2^-40 -> float16 1.0 (through float32)
        let r: Vec<f16> = cast(&[1.0 + 2f64.powi(-11) + 2f64.powi(-40)], false).unwrap();
        assert_eq!(r, [f16::ONE]);
    }

    #[test]
    fn truncate_and_errors() {
        let x = [1.0f32 + 2f32.powi(-8) + 2f32.powi(-10)];
        // Cast(x, DstT=bfloat16) -> 1.0078125; with Truncate=True -> 1.0
        assert_eq!(
            cast::<f32, bf16>(&x, false).unwrap(),
            [bf16::from_f32(1.0078125)]
        );
        assert_eq!(cast::<f32, bf16>(&x, true).unwrap(), [bf16::ONE]);
        let y = [1.0f64 + 2f64.powi(-24) + 2f64.powi(-30)];
        assert_eq!(cast::<f64, f32>(&y, true).unwrap(), [1.0]);
        // Cast(["1"], DstT=int32) -> Unimplemented
        let r =
            cast::<crate::tensor::Bytes, i32>(&[crate::tensor::Bytes::from_static(b"1")], false);
        assert!(matches!(r, Err(OpError::Unimplemented(_))));
    }
}

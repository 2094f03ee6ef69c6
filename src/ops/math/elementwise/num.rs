//! Per-dtype scalar semantics shared by the elementwise ops: [`Float`] (the f32/f64 compute
//! types), [`FloatElem`] (storage types that compute in a `Float`, as Eigen computes
//! f16/bf16 in f32), and [`Int`] (TF's wrapping integer arithmetic).

use std::ops::{Add, Div, Mul, Neg, Rem, Sub};

use half::{bf16, f16};

use crate::tensor::Element;

/// A floating-point compute type (f32 or f64).
pub(super) trait Float:
    Copy
    + PartialOrd
    + Send
    + Sync
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Rem<Output = Self>
    + Neg<Output = Self>
{
    const ZERO: Self;
    const NAN: Self;
    /// Machine epsilon.
    const EPS: Self;
    fn of(v: f64) -> Self;
    fn abs(self) -> Self;
    fn floor(self) -> Self;
    fn ceil(self) -> Self;
    fn trunc(self) -> Self;
    fn rint(self) -> Self;
    fn sqrt(self) -> Self;
    fn exp(self) -> Self;
    fn exp_m1(self) -> Self;
    fn ln(self) -> Self;
    fn ln_1p(self) -> Self;
    fn sin(self) -> Self;
    fn cos(self) -> Self;
    fn tan(self) -> Self;
    fn asin(self) -> Self;
    fn acos(self) -> Self;
    fn atan(self) -> Self;
    fn sinh(self) -> Self;
    fn cosh(self) -> Self;
    fn tanh(self) -> Self;
    fn asinh(self) -> Self;
    fn acosh(self) -> Self;
    fn atanh(self) -> Self;
    fn atan2(self, x: Self) -> Self;
    fn powf(self, e: Self) -> Self;
    fn erf(self) -> Self;
    fn erfc(self) -> Self;
    /// `1 / (1 + e^-x)`.
    fn sigmoid(self) -> Self;
    fn is_nan(self) -> bool;
    fn is_infinite(self) -> bool;
    fn is_finite(self) -> bool;
}

macro_rules! float {
    ($t:ty, $erf:expr, $erfc:expr, $sigmoid:expr) => {
        impl Float for $t {
            const ZERO: Self = 0.0;
            const NAN: Self = <$t>::NAN;
            const EPS: Self = <$t>::EPSILON;
            fn of(v: f64) -> Self {
                v as $t
            }
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            fn floor(self) -> Self {
                <$t>::floor(self)
            }
            fn ceil(self) -> Self {
                <$t>::ceil(self)
            }
            fn trunc(self) -> Self {
                <$t>::trunc(self)
            }
            fn rint(self) -> Self {
                <$t>::round_ties_even(self)
            }
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            fn exp_m1(self) -> Self {
                <$t>::exp_m1(self)
            }
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            fn ln_1p(self) -> Self {
                <$t>::ln_1p(self)
            }
            fn sin(self) -> Self {
                <$t>::sin(self)
            }
            fn cos(self) -> Self {
                <$t>::cos(self)
            }
            fn tan(self) -> Self {
                <$t>::tan(self)
            }
            fn asin(self) -> Self {
                <$t>::asin(self)
            }
            fn acos(self) -> Self {
                <$t>::acos(self)
            }
            fn atan(self) -> Self {
                <$t>::atan(self)
            }
            fn sinh(self) -> Self {
                <$t>::sinh(self)
            }
            fn cosh(self) -> Self {
                <$t>::cosh(self)
            }
            fn tanh(self) -> Self {
                <$t>::tanh(self)
            }
            fn asinh(self) -> Self {
                <$t>::asinh(self)
            }
            fn acosh(self) -> Self {
                <$t>::acosh(self)
            }
            fn atanh(self) -> Self {
                <$t>::atanh(self)
            }
            fn atan2(self, x: Self) -> Self {
                <$t>::atan2(self, x)
            }
            fn powf(self, e: Self) -> Self {
                <$t>::powf(self, e)
            }
            fn erf(self) -> Self {
                $erf(self)
            }
            fn erfc(self) -> Self {
                $erfc(self)
            }
            fn sigmoid(self) -> Self {
                $sigmoid(self)
            }
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
            fn is_infinite(self) -> bool {
                <$t>::is_infinite(self)
            }
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
        }
    };
}

// f32 erf/erfc/sigmoid are evaluated in f64 and rounded once (within 1 ulp), as the kernels
// crate does for sigmoid.
float!(
    f32,
    |v: f32| super::erf::erf(v as f64) as f32,
    |v: f32| super::erf::erfc(v as f64) as f32,
    |v: f32| (1.0 / (1.0 + (-(v as f64)).exp())) as f32
);
float!(f64, super::erf::erf, super::erf::erfc, |v: f64| {
    // e^-x overflows for x < -709: the limit is 0 either way.
    1.0 / (1.0 + (-v).exp())
});

/// A floating-point storage type and the type it computes in.
pub(super) trait FloatElem: Element + Copy + Default {
    type C: Float;
    fn load(self) -> Self::C;
    fn store(c: Self::C) -> Self;
}

impl FloatElem for f32 {
    type C = f32;
    fn load(self) -> f32 {
        self
    }
    fn store(c: f32) -> Self {
        c
    }
}
impl FloatElem for f64 {
    type C = f64;
    fn load(self) -> f64 {
        self
    }
    fn store(c: f64) -> Self {
        c
    }
}
impl FloatElem for f16 {
    type C = f32;
    fn load(self) -> f32 {
        self.to_f32()
    }
    fn store(c: f32) -> Self {
        f16::from_f32(c)
    }
}
impl FloatElem for bf16 {
    type C = f32;
    fn load(self) -> f32 {
        self.to_f32()
    }
    fn store(c: f32) -> Self {
        bf16::from_f32(c)
    }
}

/// An integer element type with TF's (two's-complement, wrapping) arithmetic.
pub(super) trait Int: Element + Copy + Ord + Default {
    const ZERO: Self;
    const ONE: Self;
    /// 6, for `Relu6`.
    const SIX: Self;
    fn wadd(self, o: Self) -> Self;
    fn wsub(self, o: Self) -> Self;
    fn wmul(self, o: Self) -> Self;
    fn wneg(self) -> Self;
    fn wabs(self) -> Self;
    /// Truncating division; `o` must be non-zero (`MIN / -1` wraps to `MIN`).
    fn tdiv(self, o: Self) -> Self;
    /// Truncating remainder; `o` must be non-zero (`MIN % -1` is 0).
    fn trem(self, o: Self) -> Self;
    fn is_neg(self) -> bool;
    /// `self^e` by squaring, wrapping; `e` must not be negative.
    fn wpow(self, e: Self) -> Self;
}

macro_rules! int {
    ($($t:ty),*) => {$(
        impl Int for $t {
            const ZERO: Self = 0;
            const ONE: Self = 1;
            const SIX: Self = 6;
            fn wadd(self, o: Self) -> Self { self.wrapping_add(o) }
            fn wsub(self, o: Self) -> Self { self.wrapping_sub(o) }
            fn wmul(self, o: Self) -> Self { self.wrapping_mul(o) }
            fn wneg(self) -> Self { self.wrapping_neg() }
            #[allow(unused_comparisons)]
            fn wabs(self) -> Self { if self < 0 { self.wrapping_neg() } else { self } }
            fn tdiv(self, o: Self) -> Self { self.wrapping_div(o) }
            fn trem(self, o: Self) -> Self { self.wrapping_rem(o) }
            #[allow(unused_comparisons)]
            fn is_neg(self) -> bool { self < 0 }
            fn wpow(self, e: Self) -> Self {
                let (mut base, mut e, mut acc) = (self, e, 1 as $t);
                while e > 0 {
                    if e & 1 == 1 {
                        acc = acc.wrapping_mul(base);
                    }
                    base = base.wrapping_mul(base);
                    e >>= 1;
                }
                acc
            }
        }
    )*};
}
int!(i8, i16, i32, i64, u8, u16, u32, u64);

/// `max` as Eigen's `scalar_max_op` with NaN propagation: NaN if either side is NaN, else
/// `a < b ? b : a` (so `max(-0.0, 0.0)` is `-0.0`, as in TF).
pub(super) fn fmax<F: Float>(a: F, b: F) -> F {
    if a.is_nan() || b.is_nan() {
        F::NAN
    } else if a < b {
        b
    } else {
        a
    }
}

/// `min` with NaN propagation: NaN if either side is NaN, else `b < a ? b : a`.
pub(super) fn fmin<F: Float>(a: F, b: F) -> F {
    if a.is_nan() || b.is_nan() {
        F::NAN
    } else if b < a {
        b
    } else {
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_wrapping() {
        assert_eq!(i32::MIN.tdiv(-1), i32::MIN);
        assert_eq!(i32::MIN.trem(-1), 0);
        assert_eq!(2i32.wpow(31), i32::MIN);
        assert_eq!((-2i32).wpow(3), -8);
        assert_eq!(3i64.wpow(0), 1);
        assert_eq!(i32::MIN.wabs(), i32::MIN);
        assert_eq!(7u8.wabs(), 7);
    }

    #[test]
    fn nan_propagating_max_min() {
        assert!(fmax(f32::NAN, 1.0).is_nan() && fmax(1.0, f32::NAN).is_nan());
        assert!(fmax(-0.0f32, 0.0).is_sign_negative() && fmax(0.0f32, -0.0).is_sign_positive());
        assert!(fmin(-0.0f32, 0.0).is_sign_negative() && fmin(0.0f32, -0.0).is_sign_positive());
    }
}

//! Elementwise maps: activations, arithmetic on equal-length slices or with a scalar, and
//! accurate transcendental maps (broadcasting lives in [`crate::broadcast`]).
//!
//! Arithmetic and activation kernels are compiled for AVX-512, AVX2 and baseline and
//! dispatched at run time; they are exact IEEE operations, so every path gives identical
//! results. Transcendentals (`exp`, `tanh`, `erf`, `sigmoid`) use the `libm` crate's
//! correctly-rounded-or-within-1-ulp `f32` routines (sigmoid is evaluated in `f64`), so they
//! agree with TensorFlow/Eigen within its own few-ulp error; large slices are split across
//! rayon tasks.

use crate::simd::multiversion;
use rayon::prelude::*;

/// A binary arithmetic operation on `f32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a * b`
    Mul,
    /// `a / b` (IEEE: division by zero gives ±inf or NaN)
    Div,
}

#[cfg(test)]
fn apply(op: BinaryOp, a: f32, b: f32) -> f32 {
    match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
    }
}

/// Runs `body(f)` with `f` the closure for `op`, so each operation gets its own inlined,
/// vectorized loop.
macro_rules! per_op {
    ($op:expr, $run:ident($($arg:expr),*)) => {
        match $op {
            BinaryOp::Add => $run($($arg,)* |x: f32, y: f32| x + y),
            BinaryOp::Sub => $run($($arg,)* |x: f32, y: f32| x - y),
            BinaryOp::Mul => $run($($arg,)* |x: f32, y: f32| x * y),
            BinaryOp::Div => $run($($arg,)* |x: f32, y: f32| x / y),
        }
    };
}

multiversion! {
    /// `out[i] = a[i] op b[i]`.
    ///
    /// # Panics
    ///
    /// If `a`, `b` and `out` lengths differ.
    pub fn binary_f32 / binary_f32_with(op: BinaryOp, a: &[f32], b: &[f32], out: &mut [f32]) {
        assert!(a.len() == out.len() && b.len() == out.len(), "binary_f32: length mismatch");
        #[inline(always)]
        fn run(out: &mut [f32], a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) {
            for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                *o = f(x, y);
            }
        }
        per_op!(op, run(out, a, b))
    }
}

multiversion! {
    /// `out[i] = a[i] op s` (scalar right operand).
    ///
    /// # Panics
    ///
    /// If `a` and `out` lengths differ.
    pub fn binary_scalar_rhs_f32 / binary_scalar_rhs_f32_with(op: BinaryOp, a: &[f32], s: f32, out: &mut [f32]) {
        assert_eq!(a.len(), out.len(), "binary_scalar_rhs_f32: length mismatch");
        #[inline(always)]
        fn run(out: &mut [f32], a: &[f32], s: f32, f: impl Fn(f32, f32) -> f32) {
            for (o, &x) in out.iter_mut().zip(a) {
                *o = f(x, s);
            }
        }
        per_op!(op, run(out, a, s))
    }
}

multiversion! {
    /// `out[i] = s op b[i]` (scalar left operand).
    ///
    /// # Panics
    ///
    /// If `b` and `out` lengths differ.
    pub fn binary_scalar_lhs_f32 / binary_scalar_lhs_f32_with(op: BinaryOp, s: f32, b: &[f32], out: &mut [f32]) {
        assert_eq!(b.len(), out.len(), "binary_scalar_lhs_f32: length mismatch");
        #[inline(always)]
        fn run(out: &mut [f32], s: f32, b: &[f32], f: impl Fn(f32, f32) -> f32) {
            for (o, &y) in out.iter_mut().zip(b) {
                *o = f(s, y);
            }
        }
        per_op!(op, run(out, s, b))
    }
}

multiversion! {
    /// `x[i] += b[i]` in place (a residual connection added to a producer's output).
    ///
    /// # Panics
    ///
    /// If the lengths differ.
    pub fn add_assign_f32 / add_assign_f32_with(x: &mut [f32], b: &[f32]) {
        assert_eq!(x.len(), b.len(), "add_assign_f32: length mismatch");
        for (o, &y) in x.iter_mut().zip(b) {
            *o += y;
        }
    }
}

/// `out[i] = a[i] + b[i]`. # Panics: if lengths differ.
pub fn add_f32(a: &[f32], b: &[f32], out: &mut [f32]) {
    binary_f32(BinaryOp::Add, a, b, out)
}
/// `out[i] = a[i] - b[i]`. # Panics: if lengths differ.
pub fn sub_f32(a: &[f32], b: &[f32], out: &mut [f32]) {
    binary_f32(BinaryOp::Sub, a, b, out)
}
/// `out[i] = a[i] * b[i]`. # Panics: if lengths differ.
pub fn mul_f32(a: &[f32], b: &[f32], out: &mut [f32]) {
    binary_f32(BinaryOp::Mul, a, b, out)
}
/// `out[i] = a[i] / b[i]`. # Panics: if lengths differ.
pub fn div_f32(a: &[f32], b: &[f32], out: &mut [f32]) {
    binary_f32(BinaryOp::Div, a, b, out)
}

multiversion! {
    /// `out[i] = max(x[i], 0)`, computed as `if x < 0 { 0 } else { x }`: NaN and `-0.0` pass
    /// through unchanged.
    ///
    /// # Panics
    ///
    /// If lengths differ.
    pub fn relu_f32 / relu_f32_with(x: &[f32], out: &mut [f32]) {
        assert_eq!(x.len(), out.len(), "relu_f32: length mismatch");
        for (o, &v) in out.iter_mut().zip(x) {
            *o = if v < 0.0 { 0.0 } else { v };
        }
    }
}

multiversion! {
    /// `out[i] = min(max(x[i], 0), 6)`; NaN passes through (`if x < 0 {0} else if x > 6 {6}
    /// else {x}`).
    ///
    /// # Panics
    ///
    /// If lengths differ.
    pub fn relu6_f32 / relu6_f32_with(x: &[f32], out: &mut [f32]) {
        assert_eq!(x.len(), out.len(), "relu6_f32: length mismatch");
        for (o, &v) in out.iter_mut().zip(x) {
            let r = if v < 0.0 { 0.0 } else { v };
            *o = if r > 6.0 { 6.0 } else { r };
        }
    }
}

/// Runs the slice map `f` on `x` → `out`, in rayon tasks of 16 Ki elements when large.
fn par_chunks(x: &[f32], out: &mut [f32], f: impl Fn(&[f32], &mut [f32]) + Sync) {
    assert_eq!(x.len(), out.len(), "elementwise map: length mismatch");
    const CHUNK: usize = 1 << 14;
    if x.len() <= CHUNK {
        f(x, out)
    } else {
        out.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .for_each(|(o, x)| f(x, o));
    }
}

/// `out[i] = e^x[i]` (vectorized Cephes `expf`, ≤ 2 ulp; see [`crate::transcend`]).
///
/// # Panics
///
/// If lengths differ.
pub fn exp_f32(x: &[f32], out: &mut [f32]) {
    par_chunks(x, out, crate::transcend::exp_serial)
}

/// `out[i] = tanh(x[i])` (vectorized, ≤ 4 ulp; see [`crate::transcend`]).
///
/// # Panics
///
/// If lengths differ.
pub fn tanh_f32(x: &[f32], out: &mut [f32]) {
    par_chunks(x, out, crate::transcend::tanh_serial)
}

/// `out[i] = erf(x[i])` (vectorized, ≤ 4 ulp; see [`crate::transcend`]).
///
/// # Panics
///
/// If lengths differ.
pub fn erf_f32(x: &[f32], out: &mut [f32]) {
    par_chunks(x, out, crate::transcend::erf_serial)
}

/// `out[i] = erfc(x[i])` (vectorized, ≤ 4 ulp relative; see [`crate::transcend`]).
///
/// # Panics
///
/// If lengths differ.
pub fn erfc_f32(x: &[f32], out: &mut [f32]) {
    par_chunks(x, out, crate::transcend::erfc_serial)
}

/// `out[i] = 1 / (1 + e^-x[i])` (vectorized, ≤ 4 ulp; see [`crate::transcend`]).
///
/// # Panics
///
/// If lengths differ.
pub fn sigmoid_f32(x: &[f32], out: &mut [f32]) {
    par_chunks(x, out, crate::transcend::sigmoid_serial)
}

/// `out[i] = x[i] · sigmoid(x[i])` (swish / SiLU; equal to [`sigmoid_f32`] then a product).
///
/// # Panics
///
/// If lengths differ.
pub fn swish_f32(x: &[f32], out: &mut [f32]) {
    par_chunks(x, out, crate::transcend::swish_serial)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::Isa;
    use crate::testutil::Rng;

    #[test]
    fn binary_all_isas_match_scalar_loop() {
        let mut rng = Rng::new(21);
        for n in [0, 1, 7, 8, 15, 16, 17, 33, 100] {
            let a = rng.vec_f32(n);
            let b: Vec<f32> = rng.vec_f32(n).iter().map(|v| v + 1.5).collect();
            let s = 0.37f32;
            for op in [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div] {
                for isa in Isa::available() {
                    let mut out = vec![0.0; n];
                    binary_f32_with(isa, op, &a, &b, &mut out);
                    for i in 0..n {
                        assert_eq!(out[i].to_bits(), apply(op, a[i], b[i]).to_bits());
                    }
                    binary_scalar_rhs_f32_with(isa, op, &a, s, &mut out);
                    for i in 0..n {
                        assert_eq!(out[i].to_bits(), apply(op, a[i], s).to_bits());
                    }
                    binary_scalar_lhs_f32_with(isa, op, s, &b, &mut out);
                    for i in 0..n {
                        assert_eq!(out[i].to_bits(), apply(op, s, b[i]).to_bits());
                    }
                }
            }
        }
    }

    #[test]
    fn relu_all_isas() {
        let x: Vec<f32> = vec![
            -1.0,
            -0.0,
            0.0,
            0.5,
            6.0,
            7.5,
            f32::NAN,
            -f32::INFINITY,
            3.0,
            100.0,
            -3.0,
            2.0,
            1.0,
            6.5,
            -6.5,
            5.9,
            0.1,
        ];
        for isa in Isa::available() {
            let mut o = vec![0.0; x.len()];
            relu_f32_with(isa, &x, &mut o);
            for (v, r) in x.iter().zip(&o) {
                let want = if *v < 0.0 { 0.0 } else { *v };
                assert_eq!(r.to_bits(), want.to_bits());
            }
            relu6_f32_with(isa, &x, &mut o);
            for (v, r) in x.iter().zip(&o) {
                let want = v.clamp(0.0, 6.0);
                assert_eq!(r.to_bits(), want.to_bits());
            }
        }
    }

    fn ulp_diff(a: f32, b: f64) -> f64 {
        let bf = b as f32;
        if a == bf {
            return 0.0;
        }
        let ulp = (f32::from_bits(bf.abs().to_bits() + 1) - bf.abs()) as f64;
        ((a as f64) - b).abs() / ulp
    }

    #[test]
    fn transcendentals_within_4_ulp_of_f64() {
        // exp and sigmoid flush results below the smallest normal f32 to zero (as TF's FTZ).
        let flushed = |y: f32, want: f64| y == 0.0 && want.abs() < f32::MIN_POSITIVE as f64;
        let xs: Vec<f32> = (0..200_001)
            .map(|i| (i as f32 - 100_000.0) * 1e-4 * 9.0)
            .collect();
        let mut o = vec![0.0; xs.len()];
        exp_f32(&xs, &mut o);
        for (x, y) in xs.iter().zip(&o) {
            let want = (*x as f64).exp();
            assert!(ulp_diff(*y, want) <= 2.0 || flushed(*y, want), "exp({x})");
        }
        tanh_f32(&xs, &mut o);
        for (x, y) in xs.iter().zip(&o) {
            assert!(ulp_diff(*y, (*x as f64).tanh()) <= 4.0, "tanh({x})");
        }
        erf_f32(&xs, &mut o);
        for (x, y) in xs.iter().zip(&o) {
            assert!(ulp_diff(*y, libm::erf(*x as f64)) <= 2.0, "erf({x})");
        }
        sigmoid_f32(&xs, &mut o);
        for (x, y) in xs.iter().zip(&o) {
            let want = 1.0 / (1.0 + (-*x as f64).exp());
            assert!(
                ulp_diff(*y, want) <= 4.0 || flushed(*y, want) || want < f32::MIN_POSITIVE as f64,
                "sigmoid({x})"
            );
        }
    }
}

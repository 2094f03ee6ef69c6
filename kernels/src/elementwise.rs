//! Elementwise maps: activations, arithmetic on equal-length slices or with a scalar, a
//! general strided-broadcast binary driver, and accurate transcendental maps.
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

/// Merges adjacent axes that are contiguous for both operands; drops size-1 axes.
fn collapse(shape: &[usize], sa: &[usize], sb: &[usize]) -> (Vec<usize>, Vec<usize>, Vec<usize>) {
    let (mut d, mut a, mut b) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..shape.len() {
        if shape[i] == 1 {
            continue;
        }
        if let (Some(&la), Some(&lb)) = (a.last(), b.last()) {
            if la == sa[i] * shape[i] && lb == sb[i] * shape[i] {
                *d.last_mut().unwrap() *= shape[i];
                *a.last_mut().unwrap() = sa[i];
                *b.last_mut().unwrap() = sb[i];
                continue;
            }
        }
        d.push(shape[i]);
        a.push(sa[i]);
        b.push(sb[i]);
    }
    (d, a, b)
}

/// General broadcasting binary map: for every index `idx` of the row-major `shape`,
/// `out[linear(idx)] = f(a[Σ idx[i]*a_strides[i]], b[Σ idx[i]*b_strides[i]])`.
///
/// Broadcast axes have stride 0 (so a scalar operand has all-zero strides). `out` is
/// contiguous row-major. Adjacent axes contiguous in both operands are merged first; the
/// innermost loop has specialised cases for contiguous/contiguous, scalar/contiguous and
/// contiguous/scalar operands. Serial.
///
/// # Panics
///
/// If `a_strides`/`b_strides` lengths differ from `shape.len()`, `out.len()` is not the
/// product of `shape`, or an operand's largest offset is outside its slice.
pub fn broadcast_binary<T: Copy, F: Fn(T, T) -> T>(
    shape: &[usize],
    a: &[T],
    a_strides: &[usize],
    b: &[T],
    b_strides: &[usize],
    out: &mut [T],
    f: F,
) {
    assert_eq!(
        a_strides.len(),
        shape.len(),
        "broadcast_binary: a_strides rank"
    );
    assert_eq!(
        b_strides.len(),
        shape.len(),
        "broadcast_binary: b_strides rank"
    );
    let total: usize = shape.iter().product();
    assert_eq!(out.len(), total, "broadcast_binary: out length");
    if total == 0 {
        return;
    }
    let max_off =
        |s: &[usize]| -> usize { shape.iter().zip(s).map(|(&d, &st)| (d - 1) * st).sum() };
    assert!(
        max_off(a_strides) < a.len(),
        "broadcast_binary: a too short"
    );
    assert!(
        max_off(b_strides) < b.len(),
        "broadcast_binary: b too short"
    );
    let (dims, sa, sb) = collapse(shape, a_strides, b_strides);
    if dims.is_empty() {
        out[0] = f(a[0], b[0]);
        return;
    }
    let r = dims.len();
    let n = dims[r - 1];
    let (ia, ib) = (sa[r - 1], sb[r - 1]);
    let mut idx = vec![0usize; r - 1];
    let (mut oa, mut ob) = (0usize, 0usize);
    for orow in out.chunks_exact_mut(n) {
        match (ia, ib) {
            (1, 1) => {
                for ((o, &x), &y) in orow.iter_mut().zip(&a[oa..oa + n]).zip(&b[ob..ob + n]) {
                    *o = f(x, y);
                }
            }
            (0, 1) => {
                let x = a[oa];
                for (o, &y) in orow.iter_mut().zip(&b[ob..ob + n]) {
                    *o = f(x, y);
                }
            }
            (1, 0) => {
                let y = b[ob];
                for (o, &x) in orow.iter_mut().zip(&a[oa..oa + n]) {
                    *o = f(x, y);
                }
            }
            _ => {
                for (j, o) in orow.iter_mut().enumerate() {
                    *o = f(a[oa + j * ia], b[ob + j * ib]);
                }
            }
        }
        // Advance the odometer over the outer axes.
        for ax in (0..r - 1).rev() {
            idx[ax] += 1;
            oa += sa[ax];
            ob += sb[ax];
            if idx[ax] < dims[ax] {
                break;
            }
            oa -= sa[ax] * dims[ax];
            ob -= sb[ax] * dims[ax];
            idx[ax] = 0;
        }
    }
}

/// Row-major strides of `shape` with stride 0 on axes where `shape[i] == 1`, right-aligned
/// to `out_rank` axes (numpy broadcasting): convenient input for [`broadcast_binary`].
///
/// # Panics
///
/// If `shape.len() > out_rank`.
pub fn broadcast_strides(shape: &[usize], out_rank: usize) -> Vec<usize> {
    assert!(shape.len() <= out_rank, "broadcast_strides: rank too large");
    let mut strides = vec![0usize; out_rank];
    let off = out_rank - shape.len();
    let mut s = 1;
    for i in (0..shape.len()).rev() {
        strides[off + i] = if shape[i] == 1 { 0 } else { s };
        s *= shape[i];
    }
    strides
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

    #[test]
    fn broadcast_binary_cases() {
        // [2,3] + [3] and [2,1] * [1,3] and scalar, plus a transposed (strided) operand.
        let a = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let b = [10.0f32, 20.0, 30.0];
        let mut out = [0.0f32; 6];
        broadcast_binary(
            &[2, 3],
            &a,
            &[3, 1],
            &b,
            &broadcast_strides(&[3], 2),
            &mut out,
            |x, y| x + y,
        );
        assert_eq!(out, [11.0, 22.0, 33.0, 14.0, 25.0, 36.0]);
        broadcast_binary(
            &[2, 3],
            &[2.0f32, 3.0],
            &[1, 0],
            &b,
            &[0, 1],
            &mut out,
            |x, y| x * y,
        );
        assert_eq!(out, [20.0, 40.0, 60.0, 30.0, 60.0, 90.0]);
        broadcast_binary(
            &[2, 3],
            &[1.0f32],
            &[0, 0],
            &a,
            &[3, 1],
            &mut out,
            |x, y| x - y,
        );
        assert_eq!(out, [0.0, -1.0, -2.0, -3.0, -4.0, -5.0]);
        // a viewed transposed: shape [3,2] of a (2x3) -> strides (1,3)
        broadcast_binary(
            &[3, 2],
            &a,
            &[1, 3],
            &[0.0f32],
            &[0, 0],
            &mut out,
            |x, y| x + y,
        );
        assert_eq!(out, [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        // Generic T and higher rank against a naive loop.
        let mut rng = Rng::new(5);
        let shape = [3, 1, 4, 5];
        let av: Vec<i64> = (0..60).map(|_| rng.below(100) as i64).collect();
        let bv: Vec<i64> = (0..20).map(|_| rng.below(100) as i64).collect();
        let sa = broadcast_strides(&[3, 1, 4, 5], 4);
        let sb = broadcast_strides(&[4, 5], 4);
        let mut o = vec![0i64; 60];
        broadcast_binary(&shape, &av, &sa, &bv, &sb, &mut o, |x, y| x * 1000 + y);
        for i in 0..3 {
            for k in 0..4 {
                for l in 0..5 {
                    let e = av[i * 20 + k * 5 + l] * 1000 + bv[k * 5 + l];
                    assert_eq!(o[i * 20 + k * 5 + l], e);
                }
            }
        }
        let sb2 = [0, 0, 1, 4];
        broadcast_binary(&shape, &av, &sa, &bv, &sb2, &mut o, |x, y| x * 1000 + y);
        assert_eq!(
            o[2 * 20 + 3 * 5 + 1],
            av[2 * 20 + 3 * 5 + 1] * 1000 + bv[3 + 4]
        );
    }
}

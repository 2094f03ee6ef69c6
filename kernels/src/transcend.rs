//! Vectorized `f32` transcendental maps: `exp`, `sigmoid`, `tanh`, `x·sigmoid(x)` (swish),
//! `erf` and `erfc`.
//!
//! Each is written as branch-free per-lane arithmetic (polynomials, bit tricks and selects) so
//! that the `multiversion!` copies compile to straight AVX-512 / AVX2+FMA / baseline vector
//! code; the previous per-element libm calls (f64 `exp` for sigmoid) cost 20-40 ns each and
//! dominated EfficientNet (issue #17).
//!
//! Accuracy (checked against f64 references in the tests): `exp` ≤ 2 ulp (Cephes `expf`
//! range reduction and polynomial), `sigmoid` and `tanh` ≤ 4 ulp, well inside TF's own float
//! kernels' error (Eigen's `pexp`, `scalar_logistic_op` and fast `tanh` are approximations
//! too); `erfc` ≤ 4 ulp relative in `f32` lanes (see `erfc_lane`; `erfc_dense_sweep` measures
//! it); `erf` ≤ 4 ulp relative (evaluated in `f64` lanes: fdlibm's rational
//! approximation of `erf` below 0.84375, Numerical Recipes' Chebyshev fit `erfcc`, relative
//! error < 1.2e-7, elsewhere). Results whose magnitude is below the smallest normal `f32` are flushed to zero, as TF
//! does on CPU (it runs kernels with flush-to-zero set). NaN inputs give NaN.

// The coefficients are kept digit for digit as Cephes / fdlibm / Numerical Recipes publish them.
#![allow(clippy::excessive_precision)]

use crate::simd::multiversion;

// Cephes `expf` constants.
const LOG2E: f32 = std::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Above this, `e^x` overflows `f32`.
const EXP_HI: f32 = 88.722_84;
/// Below this, `e^x` is not a normal `f32` (flushed to zero).
const EXP_LO: f32 = -87.336_55;

/// `e^x` for one lane, branch-free.
#[inline(always)]
fn exp_lane(x: f32) -> f32 {
    let xc = x.clamp(EXP_LO, EXP_HI);
    // n = round(x / ln 2) by the 1.5·2^23 trick (|x·log2e| < 2^22 after the clamp).
    const MAGIC: f32 = 12_582_912.0;
    let n = (xc * LOG2E + MAGIC) - MAGIC;
    let r = xc - n * LN2_HI - n * LN2_LO;
    let r2 = r * r;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 5.000_000_1e-1;
    let p = p * r2 + r + 1.0;
    // 2^n in two factors so that n = 128 (x near EXP_HI) and n = -126 stay representable.
    let ni = n as i32;
    let h = ni >> 1;
    let s1 = f32::from_bits(((h + 127) as u32) << 23);
    let s2 = f32::from_bits(((ni - h + 127) as u32) << 23);
    let y = p * s1 * s2;
    let y = if x > EXP_HI { f32::INFINITY } else { y };
    let y = if x < EXP_LO { 0.0 } else { y };
    if x.is_nan() {
        x
    } else {
        y
    }
}

/// `1 / (1 + e^-x)` for one lane (also the epilogue's swish activation).
#[inline(always)]
pub(crate) fn sigmoid_lane(x: f32) -> f32 {
    1.0 / (1.0 + exp_lane(-x))
}

/// `tanh(x)` for one lane: Cephes `tanhf` (odd polynomial below 0.625, else via `e^2|x|`).
#[inline(always)]
fn tanh_lane(x: f32) -> f32 {
    let a = x.abs();
    let z = x * x;
    let mut p = -5.704_988_7e-3f32;
    p = p * z + 2.063_908_9e-2;
    p = p * z - 5.373_971_6e-2;
    p = p * z + 1.333_144_2e-1;
    p = p * z - 3.333_328_2e-1;
    let small = p * z * x + x;
    let e = exp_lane(2.0 * a.min(9.0));
    let big = (1.0 - 2.0 / (e + 1.0)).copysign(x);
    let y = if a < 0.625 { small } else { big };
    if x.is_nan() {
        x
    } else {
        y
    }
}

/// `e^x` in `f64` for `-700 <= x <= 0`-ish arguments (no overflow handling needed by the
/// callers): range reduction by `ln 2` and a degree-11 Taylor polynomial (< 3e-15 relative).
#[inline(always)]
fn exp_lane_f64(x: f64) -> f64 {
    const LN2_HI: f64 = 6.931_471_803_691_238e-1;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5 · 2^52
    let x = x.clamp(-700.0, 700.0);
    let t = x * std::f64::consts::LOG2_E + MAGIC;
    let n = t - MAGIC;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.0 / 39_916_800.0; // 1/11!
    p = p * r + 1.0 / 3_628_800.0;
    p = p * r + 1.0 / 362_880.0;
    p = p * r + 1.0 / 40_320.0;
    p = p * r + 1.0 / 5_040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    // n sits in the low mantissa bits of t: 2^n = (n + 1023) << 52, in integer lanes.
    let ni = t.to_bits().wrapping_sub(MAGIC.to_bits());
    let scale = f64::from_bits(ni.wrapping_add(1023) << 52);
    p * scale
}

/// `erfc(|x|)` for `|x| >= 0` by Numerical Recipes' `erfcc` (relative error < 1.2e-7).
#[inline(always)]
fn erfc_abs_lane(ax: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.5 * ax);
    let mut p = 0.170_872_77;
    p = p * t - 0.822_152_23;
    p = p * t + 1.488_515_87;
    p = p * t - 1.135_203_98;
    p = p * t + 0.278_868_07;
    p = p * t - 0.186_288_06;
    p = p * t + 0.096_784_18;
    p = p * t + 0.374_091_96;
    p = p * t + 1.000_023_68;
    p = p * t - 1.265_512_23;
    t * exp_lane_f64(-ax * ax + p)
}

/// `erf(x) / x - 1` for `|x| < 0.84375`: fdlibm's `pp/qq` rational in `x²`.
#[inline(always)]
fn erf_small_ratio(x: f64) -> f64 {
    let z = x * x;
    let pp = 1.283_791_670_955_125_6e-1
        + z * (-3.250_421_072_470_015e-1
            + z * (-2.848_174_957_559_851e-2
                + z * (-5.770_270_296_489_442e-3 + z * -2.376_301_665_665_016_3e-5)));
    let qq = 1.0
        + z * (3.979_172_239_591_553_5e-1
            + z * (6.502_224_998_876_73e-2
                + z * (5.081_306_281_875_766e-3
                    + z * (1.324_947_380_043_216_4e-4 + z * -3.960_228_278_775_368e-6))));
    pp / qq
}

/// `erf(x)` for one lane (in `f64`, rounded once).
#[inline(always)]
fn erf_lane(x: f32) -> f32 {
    let xd = x as f64;
    let ax = xd.abs();
    let small = xd + xd * erf_small_ratio(xd);
    let big = (1.0 - erfc_abs_lane(ax.min(10.0))).copysign(xd);
    let y = if ax < 0.84375 { small } else { big } as f32;
    if x.is_nan() {
        x
    } else {
        y
    }
}

/// `erfc(x)` for one lane, in `f32` (max 3 ulp against the correctly rounded value over
/// `[-10, 10]`; below the smallest normal `f32`: 0). For `a = |x|`:
/// `erfc(a) = exp(-a²) · (1 + P(q)) / (1 + 2a)` with `q = (a - 2) / (a + 2)` mapping
/// `[0, 10.06]` to `[-1, 0.67]` and `P` a degree-9 polynomial fitted (weighted least squares,
/// relative error 2.6e-8 with these f32 coefficients) to `(1 + 2a)·exp(a²)·erfc(a) - 1`
/// (Laplace's continued fraction suggests the `(1 + 2a)` scaling; N. Juffa published the same
/// scheme for CUDA). `exp(-a²)` is taken as `exp(-s)·(1 + t)` with `s = a·a` rounded and
/// `t = s - a²` exact by FMA, so the rounding of `a²` (up to 64 ulp of `exp` at `a = 9`) does
/// not leak into the result. `x < 0` uses `erfc(x) = 2 - erfc(-x)`.
#[inline(always)]
fn erfc_lane(x: f32) -> f32 {
    let a = x.abs().min(10.5);
    let q = (a - 2.0) / (a + 2.0);
    let mut p = -4.010_943_5e-4f32;
    p = p.mul_add(q, -1.230_811_6e-3);
    p = p.mul_add(q, 1.313_617_8e-3);
    p = p.mul_add(q, 8.632_405e-3);
    p = p.mul_add(q, -8.059_752e-3);
    p = p.mul_add(q, -5.420_448_6e-2);
    p = p.mul_add(q, 1.640_553_2e-1);
    p = p.mul_add(q, -1.660_314_05e-1);
    p = p.mul_add(q, -9.276_397_5e-2);
    p = p.mul_add(q, 2.769_784_03e-1);
    // `(1 + p) / d`; near `a = 0` (`y` near 1) as `1 + (p - 2a) / d`, which rounds once
    // at the end instead of rounding `1 + p` first (4 ulp → 2 at `a = 1e-4`).
    let d = 2.0f32.mul_add(a, 1.0);
    let y = if a < 0.5 {
        1.0 + (p - 2.0 * a) / d
    } else {
        (1.0 + p) / d
    };
    let s = a * a;
    let t = (-a).mul_add(a, s);
    let ye = y * exp_lane(-s);
    let r = ye.mul_add(t, ye);
    let r = if r < f32::MIN_POSITIVE { 0.0 } else { r };
    let r = if x < 0.0 { 2.0 - r } else { r };
    if x.is_nan() {
        x
    } else {
        r
    }
}

/// `erfc(x)` for one lane in `f64` lanes (the previous kernel, kept as the reference the
/// `f32` one is tested against).
#[cfg(test)]
fn erfc_lane_f64(x: f32) -> f32 {
    let xd = x as f64;
    let ax = xd.abs();
    let small = 1.0 - (xd + xd * erf_small_ratio(xd));
    let e = erfc_abs_lane(ax.min(27.0));
    let big = if xd < 0.0 { 2.0 - e } else { e };
    let y = if ax < 0.84375 { small } else { big };
    let y = if y < f32::MIN_POSITIVE as f64 {
        0.0
    } else {
        y as f32
    };
    if x.is_nan() {
        x
    } else {
        y
    }
}

/// Keras / TF exact GELU for one lane, in TF's graph order: `(0.5·x) · erfc((-x)·(1/√2))`,
/// with `c` the graph's `1/√2` constant (each product rounded as the separate ops do).
#[inline(always)]
pub(crate) fn gelu_lane(x: f32, c: f32) -> f32 {
    (0.5 * x) * erfc_lane((-x) * c)
}

multiversion! {
    /// `out[i] = erf(x[i])`, serial.
    ///
    /// # Panics
    ///
    /// If lengths differ.
    pub fn erf_serial / erf_serial_with(x: &[f32], out: &mut [f32]) {
        assert_eq!(x.len(), out.len(), "erf: length mismatch");
        for (o, &v) in out.iter_mut().zip(x) {
            *o = erf_lane(v);
        }
    }
}

multiversion! {
    /// `out[i] = erfc(x[i])`, serial.
    ///
    /// # Panics
    ///
    /// If lengths differ.
    pub fn erfc_serial / erfc_serial_with(x: &[f32], out: &mut [f32]) {
        assert_eq!(x.len(), out.len(), "erfc: length mismatch");
        for (o, &v) in out.iter_mut().zip(x) {
            *o = erfc_lane(v);
        }
    }
}

multiversion! {
    /// `out[i] = (0.5·x[i]) · erfc((-x[i])·c)`: Keras' exact GELU (`c = 1/√2`) as one pass,
    /// bit-identical to the `Mul`, `Neg`, `Mul`, `Erfc`, `Mul` ops it replaces. Serial.
    ///
    /// # Panics
    ///
    /// If lengths differ.
    pub fn gelu_serial / gelu_serial_with(x: &[f32], c: f32, out: &mut [f32]) {
        assert_eq!(x.len(), out.len(), "gelu: length mismatch");
        for (o, &v) in out.iter_mut().zip(x) {
            *o = gelu_lane(v, c);
        }
    }
}

multiversion! {
    /// `out[i] = e^x[i]`, serial.
    ///
    /// # Panics
    ///
    /// If lengths differ.
    pub fn exp_serial / exp_serial_with(x: &[f32], out: &mut [f32]) {
        assert_eq!(x.len(), out.len(), "exp: length mismatch");
        for (o, &v) in out.iter_mut().zip(x) {
            *o = exp_lane(v);
        }
    }
}

multiversion! {
    /// `out[i] = 1 / (1 + e^-x[i])`, serial.
    ///
    /// # Panics
    ///
    /// If lengths differ.
    pub fn sigmoid_serial / sigmoid_serial_with(x: &[f32], out: &mut [f32]) {
        assert_eq!(x.len(), out.len(), "sigmoid: length mismatch");
        for (o, &v) in out.iter_mut().zip(x) {
            *o = sigmoid_lane(v);
        }
    }
}

multiversion! {
    /// `out[i] = x[i] · sigmoid(x[i])` (swish / SiLU), serial; the sigmoid is rounded to
    /// `f32` before the product, so this equals `Mul(x, Sigmoid(x))` exactly.
    ///
    /// # Panics
    ///
    /// If lengths differ.
    pub fn swish_serial / swish_serial_with(x: &[f32], out: &mut [f32]) {
        assert_eq!(x.len(), out.len(), "swish: length mismatch");
        for (o, &v) in out.iter_mut().zip(x) {
            *o = v * sigmoid_lane(v);
        }
    }
}

multiversion! {
    /// `x[i] = x[i] · sigmoid(x[i])` in place (see [`swish_serial`]).
    pub fn swish_inplace / swish_inplace_with(x: &mut [f32]) {
        for v in x.iter_mut() {
            *v *= sigmoid_lane(*v);
        }
    }
}

multiversion! {
    /// `out[i] = tanh(x[i])`, serial.
    ///
    /// # Panics
    ///
    /// If lengths differ.
    pub fn tanh_serial / tanh_serial_with(x: &[f32], out: &mut [f32]) {
        assert_eq!(x.len(), out.len(), "tanh: length mismatch");
        for (o, &v) in out.iter_mut().zip(x) {
            *o = tanh_lane(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::Isa;

    /// Distance in ulps between `got` and the f64 reference rounded to f32.
    fn ulps(got: f32, want: f64) -> u32 {
        let w = want as f32;
        if got == w || (got.is_nan() && w.is_nan()) {
            return 0;
        }
        if w.abs() < f32::MIN_POSITIVE && got.abs() < f32::MIN_POSITIVE {
            return 0; // flushed to zero
        }
        (got.to_bits() as i64 - w.to_bits() as i64).unsigned_abs() as u32
    }

    fn inputs() -> Vec<f32> {
        let mut v: Vec<f32> = (-20_000..=20_000).map(|i| i as f32 * 0.005).collect();
        v.extend((-1000..=1000).map(|i| i as f32 * 1e-5));
        v.extend([
            0.0,
            -0.0,
            88.7,
            88.72,
            89.0,
            -87.3,
            -87.4,
            -100.0,
            -104.0,
            1e-30,
            -1e-30,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MAX,
            f32::MIN,
            0.624,
            0.626,
            9.5,
            -9.5,
        ]);
        v
    }

    fn check(name: &str, f: fn(Isa, &[f32], &mut [f32]), reference: fn(f64) -> f64, max_ulps: u32) {
        let x = inputs();
        for isa in Isa::available() {
            let mut out = vec![0.0f32; x.len()];
            f(isa, &x, &mut out);
            for (&xv, &g) in x.iter().zip(&out) {
                let u = ulps(g, reference(xv as f64));
                assert!(u <= max_ulps, "{name} {isa:?} x={xv}: {g} ({u} ulp)");
            }
            let mut nan = [0.0f32];
            f(isa, &[f32::NAN], &mut nan);
            assert!(nan[0].is_nan(), "{name} {isa:?} NaN");
        }
    }

    #[test]
    fn exp_within_2_ulp() {
        check("exp", exp_serial_with, f64::exp, 2);
    }

    #[test]
    fn sigmoid_within_4_ulp() {
        check(
            "sigmoid",
            sigmoid_serial_with,
            |x| 1.0 / (1.0 + (-x).exp()),
            4,
        );
    }

    #[test]
    fn tanh_within_4_ulp() {
        check("tanh", tanh_serial_with, f64::tanh, 4);
    }

    #[test]
    fn erf_within_4_ulp() {
        check("erf", erf_serial_with, libm::erf, 4);
    }

    #[test]
    fn erfc_within_4_ulp() {
        check("erfc", erfc_serial_with, libm::erfc, 4);
    }

    /// Dense sweep of `erfc` over `[-10, 10]` (step 2^-14) plus every 97th f32 bit pattern:
    /// max ulp against the correctly rounded value (`libm::erfc` in f64, then rounded) and
    /// against the previous f64-lane kernel.
    #[test]
    fn erfc_dense_sweep() {
        let mut x: Vec<f32> = (-(10 << 14)..=(10 << 14))
            .map(|i| i as f32 / 16384.0)
            .collect();
        x.extend((0..u32::MAX / 97).map(|i| f32::from_bits(i * 97)));
        for isa in Isa::available() {
            let mut out = vec![0.0f32; x.len()];
            erfc_serial_with(isa, &x, &mut out);
            let (mut worst, mut worst_old, mut old_ref, mut at) = (0u32, 0u32, 0u32, 0.0f32);
            let mut rel = 0.0f64;
            for (&xv, &g) in x.iter().zip(&out) {
                if xv.is_nan() {
                    assert!(g.is_nan());
                    continue;
                }
                let want = libm::erfc(xv as f64);
                let u = ulps(g, want);
                if u > worst {
                    (worst, at) = (u, xv);
                }
                if want >= f32::MIN_POSITIVE as f64 {
                    rel = rel.max(((g as f64 - want) / want).abs());
                }
                let old = erfc_lane_f64(xv);
                worst_old = worst_old.max(ulps(g, old as f64));
                old_ref = old_ref.max(ulps(old, want));
            }
            eprintln!(
                "erfc {isa:?}: max {worst} ulp at x={at} (max rel {rel:.3e}), max {worst_old} ulp from the f64 kernel (itself max {old_ref} ulp)"
            );
            assert!(worst <= 4, "erfc {isa:?}: {worst} ulp at x={at}");
        }
    }

    #[test]
    fn gelu_is_the_graph_ops_in_order() {
        let c = std::f32::consts::FRAC_1_SQRT_2;
        let x = inputs();
        for isa in Isa::available() {
            let mut e = vec![0.0f32; x.len()];
            let neg: Vec<f32> = x.iter().map(|&v| (-v) * c).collect();
            erfc_serial_with(isa, &neg, &mut e);
            let mut g = vec![0.0f32; x.len()];
            gelu_serial_with(isa, &x, c, &mut g);
            for i in 0..x.len() {
                let want = (0.5 * x[i]) * e[i];
                assert!(
                    want.to_bits() == g[i].to_bits() || (want.is_nan() && g[i].is_nan()),
                    "gelu {isa:?} x={}",
                    x[i]
                );
            }
        }
    }

    #[test]
    fn swish_is_x_times_sigmoid() {
        let x = inputs();
        for isa in Isa::available() {
            let mut s = vec![0.0f32; x.len()];
            sigmoid_serial_with(isa, &x, &mut s);
            let mut w = vec![0.0f32; x.len()];
            swish_serial_with(isa, &x, &mut w);
            let mut inplace = x.clone();
            swish_inplace_with(isa, &mut inplace);
            for i in 0..x.len() {
                let want = x[i] * s[i];
                assert!(want.to_bits() == w[i].to_bits() || (want.is_nan() && w[i].is_nan()));
                assert!(want.to_bits() == inplace[i].to_bits() || (want.is_nan() && w[i].is_nan()));
            }
        }
    }
}

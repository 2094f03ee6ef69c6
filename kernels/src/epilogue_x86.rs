//! Explicit AVX-512 / AVX2 bodies of [`crate::epilogue`]'s per-row epilogue.
//!
//! The portable epilogue loops (one pass per step, ReLU6 and swish written per lane) are not
//! reliably auto-vectorized: on EfficientNet the swish epilogue of the convolutions cost more
//! than the convolutions' products (issue #17). Here each vector of a row goes through all
//! steps and the activation in registers. Every step is the same IEEE operation as the
//! portable code (no fused multiply-add; `exp` is Cephes' `expf` evaluated in the same
//! operation order as `transcend::exp_lane`), so results are bit-identical to it (tested).

#![cfg(target_arch = "x86_64")]
// The coefficients are kept digit for digit as Cephes publishes them.
#![allow(clippy::excessive_precision)]

use crate::epilogue::{Activation, ChannelOp, Epilogue};
use crate::simd::Isa;
use std::arch::x86_64::*;

// Cephes `expf`: the constants of `transcend::exp_lane` (kept equal; tested).
const LOG2E: f32 = std::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
const EXP_HI: f32 = 88.722_84;
const EXP_LO: f32 = -87.336_55;
const MAGIC: f32 = 12_582_912.0;
// `transcend::erfc_lane`'s polynomial in `q`, highest degree first (kept equal; tested).
const ERFC_P: [f32; 10] = [
    -4.010_943_5e-4,
    -1.230_811_6e-3,
    1.313_617_8e-3,
    8.632_405e-3,
    -8.059_752e-3,
    -5.420_448_6e-2,
    1.640_553_2e-1,
    -1.660_314_05e-1,
    -9.276_397_5e-2,
    2.769_784_03e-1,
];
const P: [f32; 6] = [
    1.987_569_1e-4,
    1.398_199_9e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    1.666_666_5e-1,
    5.000_000_1e-1,
];

/// Applies `ep` to `row` (columns `col0..`) with `isa`'s vector code, leaving a tail shorter
/// than one vector; returns the number of leading elements done (0 when `isa` has no vector
/// body, so the caller runs the portable code on everything).
pub(crate) fn apply_row_prefix(isa: Isa, ep: &Epilogue<'_>, row: &mut [f32], col0: usize) -> usize {
    for op in ep.ops {
        let v = match *op {
            ChannelOp::Add(v) | ChannelOp::Mul(v) | ChannelOp::Sub(v) | ChannelOp::SubFrom(v) => v,
        };
        assert!(
            col0 + row.len() <= v.len(),
            "epilogue: columns out of range"
        );
    }
    match isa.clamp_supported() {
        // SAFETY: the CPU supports the level; every step's vector covers the columns.
        Isa::Avx512 => unsafe { avx512::row(ep, row, col0) },
        // SAFETY: as above.
        Isa::Avx2 => unsafe { avx2::row(ep, row, col0) },
        Isa::Scalar => 0,
    }
}

macro_rules! isa_body {
    (
        $m:ident, $feat:literal, $lanes:expr, $v:ty, $vi:ty,
        set1 = $set1:ident, set1i = $set1i:ident, load = $load:ident, store = $store:ident,
        add = $add:ident, sub = $sub:ident, mul = $mul:ident, div = $div:ident,
        min = $min:ident, max = $max:ident, cvtt = $cvtt:ident, srai = $srai:ident,
        slli = $slli:ident, addi = $addi:ident, subi = $subi:ident, cast = $cast:ident,
        castps = $castps:ident, xori = $xori:ident, andi = $andi:ident, fma = $fma:ident,
        sel_gt = $selgt:ident, sel_lt = $sellt:ident, sel_nan = $selnan:ident
    ) => {
        pub(crate) mod $m {
            use super::*;

            /// `e^x` per lane, bit-identical to `transcend::exp_lane`.
            #[target_feature(enable = $feat)]
            #[inline]
            pub(crate) unsafe fn exp(x: $v) -> $v {
                let xc = $min($max(x, $set1(EXP_LO)), $set1(EXP_HI));
                let n = $sub($add($mul(xc, $set1(LOG2E)), $set1(MAGIC)), $set1(MAGIC));
                let r = $sub($sub(xc, $mul(n, $set1(LN2_HI))), $mul(n, $set1(LN2_LO)));
                let r2 = $mul(r, r);
                let mut p = $set1(P[0]);
                for &c in &P[1..] {
                    p = $add($mul(p, r), $set1(c));
                }
                let p = $add($add($mul(p, r2), r), $set1(1.0));
                let ni: $vi = $cvtt(n);
                let h = $srai::<1>(ni);
                let s1 = $cast($slli::<23>($addi(h, $set1i(127))));
                let s2 = $cast($slli::<23>($addi($subi(ni, h), $set1i(127))));
                let y = $mul($mul(p, s1), s2);
                let y = $selgt(x, $set1(EXP_HI), y, $set1(f32::INFINITY));
                let y = $sellt(x, $set1(EXP_LO), y, $set1(0.0));
                $selnan(x, y)
            }

            /// `x · sigmoid(x)`, bit-identical to `x * transcend::sigmoid_lane(x)`.
            #[target_feature(enable = $feat)]
            #[inline]
            pub(crate) unsafe fn swish(x: $v) -> $v {
                let neg = $cast($xori($castps(x), $set1i(i32::MIN)));
                let one = $set1(1.0);
                $mul(x, $div(one, $add(one, exp(neg))))
            }

            /// `erfc(x)` per lane, bit-identical to `transcend::erfc_lane` (the same
            /// operations in the same order, its `mul_add`s as FMAs).
            #[target_feature(enable = $feat)]
            #[inline]
            pub(crate) unsafe fn erfc(x: $v) -> $v {
                let one = $set1(1.0);
                let two = $set1(2.0);
                // `x.abs().min(10.5)`: MINPS returns its second operand for NaN, as
                // `f32::min` returns the non-NaN one.
                let a = $min($cast($andi($castps(x), $set1i(i32::MAX))), $set1(10.5));
                let q = $div($sub(a, two), $add(a, two));
                let mut p = $set1(ERFC_P[0]);
                for &c in &ERFC_P[1..] {
                    p = $fma(p, q, $set1(c));
                }
                let d = $fma(two, a, one);
                let small = $add(one, $div($sub(p, $mul(two, a)), d));
                let big = $div($add(one, p), d);
                let y = $sellt(a, $set1(0.5), big, small);
                let s = $mul(a, a);
                let neg_a = $cast($xori($castps(a), $set1i(i32::MIN)));
                let t = $fma(neg_a, a, s);
                let neg_s = $cast($xori($castps(s), $set1i(i32::MIN)));
                let ye = $mul(y, exp(neg_s));
                let r = $fma(ye, t, ye);
                let r = $sellt(r, $set1(f32::MIN_POSITIVE), r, $set1(0.0));
                let r = $sellt(x, $set1(0.0), r, $sub(two, r));
                $selnan(x, r)
            }

            /// Exact GELU `(0.5·x) · erfc((-x)·GELU_C)`, bit-identical to
            /// `transcend::gelu_lane(x, GELU_C)`. Never inlined: inlined, its ~40 operations
            /// made [`vec`] too big to inline into the GEMM and convolution kernels (an
            /// out-of-line call per vector cost ResNet50 ~3%).
            #[target_feature(enable = $feat)]
            #[inline(never)]
            pub(crate) unsafe fn gelu(x: $v) -> $v {
                let neg = $cast($xori($castps(x), $set1i(i32::MIN)));
                let z = $mul(neg, $set1(crate::epilogue::GELU_C));
                $mul($mul($set1(0.5), x), erfc(z))
            }

            /// The epilogue on one vector of columns `col..col + lanes`.
            ///
            /// # Safety
            /// CPU supports the features; every step's vector covers the columns.
            #[target_feature(enable = $feat)]
            #[inline]
            pub(crate) unsafe fn vec(ep: &Epilogue<'_>, mut x: $v, col: usize) -> $v {
                for op in ep.ops {
                    x = match *op {
                        ChannelOp::Add(v) => $add(x, $load(v.as_ptr().add(col))),
                        ChannelOp::Mul(v) => $mul(x, $load(v.as_ptr().add(col))),
                        ChannelOp::Sub(v) => $sub(x, $load(v.as_ptr().add(col))),
                        ChannelOp::SubFrom(v) => $sub($load(v.as_ptr().add(col)), x),
                    };
                }
                match ep.act {
                    Activation::None => x,
                    // `if x < 0 {0} else {x}`: MAXPS returns its second operand unless the
                    // first is greater, so NaN and -0.0 pass through as in the portable code.
                    Activation::Relu => $max($set1(0.0), x),
                    Activation::Relu6 => $min($set1(6.0), $max($set1(0.0), x)),
                    Activation::Swish => swish(x),
                    Activation::Gelu => gelu(x),
                }
            }

            /// The epilogue on a tile of `P` pixels × `V` vectors, vector `v` of every pixel
            /// holding columns `col0 + v·lanes..`: each step's channel vectors are loaded once
            /// for all pixels and each step (and the activation) is dispatched once per tile,
            /// not per vector. The same operations per element as [`vec`] (bit-identical).
            ///
            /// # Safety
            /// As [`vec`] for columns `col0..col0 + V·lanes`.
            #[target_feature(enable = $feat)]
            #[inline]
            pub(crate) unsafe fn tile<const P: usize, const V: usize>(
                ep: &Epilogue<'_>,
                x: &mut [[$v; V]; P],
                col0: usize,
            ) {
                // One step over the tile: `$f(x, s)` with `s` the step's vector.
                macro_rules! step {
                    ($vals:expr, |$a:ident, $b:ident| $e:expr) => {
                        for j in 0..V {
                            let $b = $load($vals.as_ptr().add(col0 + j * $lanes));
                            for px in x.iter_mut() {
                                let $a = px[j];
                                px[j] = $e;
                            }
                        }
                    };
                }
                for op in ep.ops {
                    match *op {
                        ChannelOp::Add(v) => step!(v, |a, s| $add(a, s)),
                        ChannelOp::Mul(v) => step!(v, |a, s| $mul(a, s)),
                        ChannelOp::Sub(v) => step!(v, |a, s| $sub(a, s)),
                        ChannelOp::SubFrom(v) => step!(v, |a, s| $sub(s, a)),
                    }
                }
                match ep.act {
                    Activation::None => {}
                    Activation::Relu => {
                        for px in x.iter_mut() {
                            for e in px.iter_mut() {
                                *e = $max($set1(0.0), *e);
                            }
                        }
                    }
                    Activation::Relu6 => {
                        for px in x.iter_mut() {
                            for e in px.iter_mut() {
                                *e = $min($set1(6.0), $max($set1(0.0), *e));
                            }
                        }
                    }
                    Activation::Swish => {
                        for px in x.iter_mut() {
                            for e in px.iter_mut() {
                                *e = swish(*e);
                            }
                        }
                    }
                    Activation::Gelu => {
                        for px in x.iter_mut() {
                            for e in px.iter_mut() {
                                *e = gelu(*e);
                            }
                        }
                    }
                }
            }

            /// Whole vectors of `row`; returns how many elements were done.
            ///
            /// # Safety
            /// As [`vec`] for columns `col0..col0 + row.len()`.
            #[target_feature(enable = $feat)]
            pub(crate) unsafe fn row(ep: &Epilogue<'_>, row: &mut [f32], col0: usize) -> usize {
                let done = row.len() - row.len() % $lanes;
                let p = row.as_mut_ptr();
                let mut i = 0;
                while i < done {
                    $store(p.add(i), vec(ep, $load(p.add(i)), col0 + i));
                    i += $lanes;
                }
                done
            }
        }
    };
}

/// `a > b ? v : y` per lane (ordered).
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn gt512(a: __m512, b: __m512, y: __m512, v: __m512) -> __m512 {
    _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_GT_OQ>(a, b), y, v)
}
/// `a < b ? v : y` per lane (ordered).
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn lt512(a: __m512, b: __m512, y: __m512, v: __m512) -> __m512 {
    _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_LT_OQ>(a, b), y, v)
}
/// `x` where it is NaN, else `y`.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn nan512(x: __m512, y: __m512) -> __m512 {
    _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_UNORD_Q>(x, x), y, x)
}
/// `a > b ? v : y` per lane (ordered).
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn gt256(a: __m256, b: __m256, y: __m256, v: __m256) -> __m256 {
    _mm256_blendv_ps(y, v, _mm256_cmp_ps::<_CMP_GT_OQ>(a, b))
}
/// `a < b ? v : y` per lane (ordered).
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn lt256(a: __m256, b: __m256, y: __m256, v: __m256) -> __m256 {
    _mm256_blendv_ps(y, v, _mm256_cmp_ps::<_CMP_LT_OQ>(a, b))
}
/// `x` where it is NaN, else `y`.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn nan256(x: __m256, y: __m256) -> __m256 {
    _mm256_blendv_ps(y, x, _mm256_cmp_ps::<_CMP_UNORD_Q>(x, x))
}

isa_body!(
    avx512,
    "avx512f",
    16,
    __m512,
    __m512i,
    set1 = _mm512_set1_ps,
    set1i = _mm512_set1_epi32,
    load = _mm512_loadu_ps,
    store = _mm512_storeu_ps,
    add = _mm512_add_ps,
    sub = _mm512_sub_ps,
    mul = _mm512_mul_ps,
    div = _mm512_div_ps,
    min = _mm512_min_ps,
    max = _mm512_max_ps,
    cvtt = _mm512_cvttps_epi32,
    srai = _mm512_srai_epi32,
    slli = _mm512_slli_epi32,
    addi = _mm512_add_epi32,
    subi = _mm512_sub_epi32,
    cast = _mm512_castsi512_ps,
    castps = _mm512_castps_si512,
    xori = _mm512_xor_si512,
    andi = _mm512_and_si512,
    fma = _mm512_fmadd_ps,
    sel_gt = gt512,
    sel_lt = lt512,
    sel_nan = nan512
);

isa_body!(
    avx2,
    "avx2,fma",
    8,
    __m256,
    __m256i,
    set1 = _mm256_set1_ps,
    set1i = _mm256_set1_epi32,
    load = _mm256_loadu_ps,
    store = _mm256_storeu_ps,
    add = _mm256_add_ps,
    sub = _mm256_sub_ps,
    mul = _mm256_mul_ps,
    div = _mm256_div_ps,
    min = _mm256_min_ps,
    max = _mm256_max_ps,
    cvtt = _mm256_cvttps_epi32,
    srai = _mm256_srai_epi32,
    slli = _mm256_slli_epi32,
    addi = _mm256_add_epi32,
    subi = _mm256_sub_epi32,
    cast = _mm256_castsi256_ps,
    castps = _mm256_castps_si256,
    xori = _mm256_xor_si256,
    andi = _mm256_and_si256,
    fma = _mm256_fmadd_ps,
    sel_gt = gt256,
    sel_lt = lt256,
    sel_nan = nan256
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::epilogue::apply_row_with;

    #[test]
    fn vector_gelu_is_bit_identical_to_lane_function() {
        // Dense over [-12, 12] (step 2^-10: erfc's branch points 0.5 and 10.5, exp's
        // underflow) plus every 65521st bit pattern (NaNs, infinities, subnormals).
        let mut xs: Vec<f32> = (-12 * 1024..=12 * 1024)
            .map(|i| i as f32 / 1024.0)
            .collect();
        xs.extend((0..=u32::MAX / 65521).map(|i| f32::from_bits(i * 65521)));
        let ep = Epilogue {
            ops: &[],
            act: Activation::Gelu,
        };
        for isa in Isa::available() {
            let mut got = xs.clone();
            apply_row_with(isa, &ep, &mut got, 0);
            for (&x, g) in xs.iter().zip(&got) {
                let w = crate::transcend::gelu_lane(x, crate::epilogue::GELU_C);
                assert!(
                    g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()),
                    "{isa:?} x={x:e}: {g:e} vs {w:e}"
                );
            }
        }
    }

    #[test]
    fn vector_epilogue_is_bit_identical_to_portable() {
        // Values across exp's range, its clamps, zeros of both signs, infinities.
        let mut xs: Vec<f32> = (0..4000)
            .map(|i| ((i as f32) * 0.0537 - 107.0) * if i % 3 == 0 { 1.0 } else { 0.37 })
            .collect();
        xs.extend([
            0.0,
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            88.8,
            -87.4,
            6.0,
            -1e-40,
        ]);
        let c = xs.len();
        let b: Vec<f32> = (0..c).map(|j| (j % 7) as f32 * 0.3 - 1.0).collect();
        let s: Vec<f32> = (0..c).map(|j| 1.25 - (j % 5) as f32 * 0.2).collect();
        let ops = [
            ChannelOp::Mul(&s),
            ChannelOp::Add(&b),
            ChannelOp::Sub(&b),
            ChannelOp::SubFrom(&s),
        ];
        for act in [
            Activation::None,
            Activation::Relu,
            Activation::Relu6,
            Activation::Swish,
            Activation::Gelu,
        ] {
            for ops in [&ops[..0], &ops[..2], &ops[..]] {
                let ep = Epilogue { ops, act };
                let mut want = xs.clone();
                // Portable reference, lane by lane.
                for (j, x) in want.iter_mut().enumerate() {
                    let mut one = [*x];
                    apply_row_with(Isa::Scalar, &ep, &mut one, j);
                    *x = one[0];
                }
                for isa in Isa::available() {
                    let mut got = xs.clone();
                    // An odd split so both the vector part and the tail are exercised.
                    let (lo, hi) = got.split_at_mut(1001);
                    apply_row_with(isa, &ep, lo, 0);
                    apply_row_with(isa, &ep, hi, 1001);
                    for (j, (g, w)) in got.iter().zip(&want).enumerate() {
                        assert!(
                            g.to_bits() == w.to_bits(),
                            "{isa:?} {act:?} ops {} at {j} (x {}): {g} vs {w}",
                            ops.len(),
                            xs[j]
                        );
                    }
                }
            }
        }
    }
}

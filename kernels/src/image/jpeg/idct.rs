//! Inverse DCTs with libjpeg-turbo's integer arithmetic, so that decoded samples are
//! bit-identical to its output: the AA&N "fast" 8×8 transform (`jidctfst.c`), the LL&M
//! "slow" 8×8 transform (`jidctint.c`) and the reduced-size 4×4, 2×2 and 1×1 transforms
//! used for scaled decoding (`jidctred.c`).
//!
//! Blocks are in natural (row-major) order and already hold the quantised coefficients;
//! the multiplier tables come from [`ifast_table`] (fast) or are the raw quantisation
//! values (every other transform).
//!
//! Out-of-range results: the x86 SIMD versions (which libjpeg-turbo uses where it can, and
//! which are designed to equal the C code for in-range data) saturate when packing to bytes,
//! so the 8×8, 4×4 and 2×2 transforms clamp; the 1×1 transform has no SIMD version and wraps
//! through the C code's 1024-entry range-limit table.

/// One 8×8 coefficient block, natural order.
pub(crate) type Block = [i16; 64];

/// Per-coefficient multipliers derived from a quantisation table.
pub(crate) type Mults = [i64; 64];

/// AA&N scale factors, scaled by 2^14 (`jddctmgr.c`'s `aanscales`).
const AANSCALES: [i64; 64] = [
    16384, 22725, 21407, 19266, 16384, 12873, 8867, 4520, 22725, 31521, 29692, 26722, 22725, 17855,
    12299, 6270, 21407, 29692, 27969, 25172, 21407, 16819, 11585, 5906, 19266, 26722, 25172, 22654,
    19266, 15137, 10426, 5315, 16384, 22725, 21407, 19266, 16384, 12873, 8867, 4520, 12873, 17855,
    16819, 15137, 12873, 10114, 6967, 3552, 8867, 12299, 11585, 10426, 8867, 6967, 4799, 2446,
    4520, 6270, 5906, 5315, 4520, 3552, 2446, 1247,
];

/// The fast IDCT's multipliers: `DESCALE(q * aanscale, 14 - 2)`.
pub(crate) fn ifast_table(q: &[u16; 64]) -> Mults {
    std::array::from_fn(|i| (i64::from(q[i]) * AANSCALES[i] + (1 << 11)) >> 12)
}

/// The slow and reduced IDCTs' multipliers: the quantisation values themselves.
pub(crate) fn islow_table(q: &[u16; 64]) -> Mults {
    std::array::from_fn(|i| i64::from(q[i]))
}

/// Saturating range limit (SIMD packing): `x + 128` clamped to a byte.
#[inline(always)]
fn clamp(x: i64) -> u8 {
    (x + 128).clamp(0, 255) as u8
}

/// The C range-limit table (`prepare_range_limit_table`): `x & 1023`, then in-range values
/// are shifted by 128, moderately large ones saturate and larger ones wrap.
#[inline(always)]
fn wrap(x: i64) -> u8 {
    let v = x & 1023;
    match v {
        0..=127 => (v + 128) as u8,
        128..=511 => 255,
        512..=895 => 0,
        _ => (v - 896) as u8,
    }
}

#[inline(always)]
fn descale(x: i64, n: u32) -> i64 {
    (x + (1 << (n - 1))) >> n
}

/// `jpeg_idct_ifast`: 8×8 output rows of `out` (row `r` at `out[r * stride..]`).
pub(crate) fn ifast(block: &Block, m: &Mults, out: &mut [u8], stride: usize) {
    const F1_082: i64 = 277;
    const F1_414: i64 = 362;
    const F1_847: i64 = 473;
    const F2_613: i64 = 669;
    // MULTIPLY with CONST_BITS = 8, truncating (no rounding in this transform).
    let mul = |v: i64, c: i64| (v * c) >> 8;
    let mut ws = [0i64; 64];
    for c in 0..8 {
        let i = |r: usize| i64::from(block[r * 8 + c]) * m[r * 8 + c];
        if (1..8).all(|r| block[r * 8 + c] == 0) {
            let dc = i(0);
            for r in 0..8 {
                ws[r * 8 + c] = dc;
            }
            continue;
        }
        let (t0, t1, t2, t3) = (i(0), i(2), i(4), i(6));
        let t10 = t0 + t2;
        let t11 = t0 - t2;
        let t13 = t1 + t3;
        let t12 = mul(t1 - t3, F1_414) - t13;
        let (e0, e3, e1, e2) = (t10 + t13, t10 - t13, t11 + t12, t11 - t12);
        let (t4, t5, t6, t7) = (i(1), i(3), i(5), i(7));
        let z13 = t6 + t5;
        let z10 = t6 - t5;
        let z11 = t4 + t7;
        let z12 = t4 - t7;
        let o7 = z11 + z13;
        let t11 = mul(z11 - z13, F1_414);
        let z5 = mul(z10 + z12, F1_847);
        let t10 = mul(z12, F1_082) - z5;
        let t12 = mul(z10, -F2_613) + z5;
        let o6 = t12 - o7;
        let o5 = t11 - o6;
        let o4 = t10 + o5;
        ws[c] = e0 + o7;
        ws[56 + c] = e0 - o7;
        ws[8 + c] = e1 + o6;
        ws[48 + c] = e1 - o6;
        ws[16 + c] = e2 + o5;
        ws[40 + c] = e2 - o5;
        ws[32 + c] = e3 + o4;
        ws[24 + c] = e3 - o4;
    }
    // PASS1_BITS = 2: descale by 2^5 (truncating).
    for r in 0..8 {
        let w = &ws[r * 8..r * 8 + 8];
        let o = &mut out[r * stride..r * stride + 8];
        if w[1..].iter().all(|&v| v == 0) {
            o.fill(clamp(w[0] >> 5));
            continue;
        }
        let t10 = w[0] + w[4];
        let t11 = w[0] - w[4];
        let t13 = w[2] + w[6];
        let t12 = mul(w[2] - w[6], F1_414) - t13;
        let (e0, e3, e1, e2) = (t10 + t13, t10 - t13, t11 + t12, t11 - t12);
        let z13 = w[5] + w[3];
        let z10 = w[5] - w[3];
        let z11 = w[1] + w[7];
        let z12 = w[1] - w[7];
        let o7 = z11 + z13;
        let t11 = mul(z11 - z13, F1_414);
        let z5 = mul(z10 + z12, F1_847);
        let t10 = mul(z12, F1_082) - z5;
        let t12 = mul(z10, -F2_613) + z5;
        let o6 = t12 - o7;
        let o5 = t11 - o6;
        let o4 = t10 + o5;
        o[0] = clamp((e0 + o7) >> 5);
        o[7] = clamp((e0 - o7) >> 5);
        o[1] = clamp((e1 + o6) >> 5);
        o[6] = clamp((e1 - o6) >> 5);
        o[2] = clamp((e2 + o5) >> 5);
        o[5] = clamp((e2 - o5) >> 5);
        o[4] = clamp((e3 + o4) >> 5);
        o[3] = clamp((e3 - o4) >> 5);
    }
}

const F0_298: i64 = 2446;
const F0_390: i64 = 3196;
const F0_541: i64 = 4433;
const F0_765: i64 = 6270;
const F0_899: i64 = 7373;
const F1_175: i64 = 9633;
const F1_501: i64 = 12299;
const F1_847: i64 = 15137;
const F1_961: i64 = 16069;
const F2_053: i64 = 16819;
const F2_562: i64 = 20995;
const F3_072: i64 = 25172;

/// The LL&M 8-point butterfly of `jidctint.c`: returns the even part
/// `(tmp10, tmp11, tmp12, tmp13)` and odd part `(tmp0, tmp1, tmp2, tmp3)`, both scaled by
/// 2^13 relative to the inputs.
#[inline(always)]
fn llm(x: [i64; 8]) -> ([i64; 4], [i64; 4]) {
    let (z2, z3) = (x[2], x[6]);
    let z1 = (z2 + z3) * F0_541;
    let tmp2 = z1 + z3 * -F1_847;
    let tmp3 = z1 + z2 * F0_765;
    let tmp0 = (x[0] + x[4]) << 13;
    let tmp1 = (x[0] - x[4]) << 13;
    let even = [tmp0 + tmp3, tmp1 + tmp2, tmp1 - tmp2, tmp0 - tmp3];
    let (mut t0, mut t1, mut t2, mut t3) = (x[7], x[5], x[3], x[1]);
    let z1 = t0 + t3;
    let z2 = t1 + t2;
    let z3 = t0 + t2;
    let z4 = t1 + t3;
    let z5 = (z3 + z4) * F1_175;
    t0 *= F0_298;
    t1 *= F2_053;
    t2 *= F3_072;
    t3 *= F1_501;
    let z1 = z1 * -F0_899;
    let z2 = z2 * -F2_562;
    let z3 = z3 * -F1_961 + z5;
    let z4 = z4 * -F0_390 + z5;
    t0 += z1 + z3;
    t1 += z2 + z4;
    t2 += z2 + z3;
    t3 += z1 + z4;
    (even, [t0, t1, t2, t3])
}

/// `jpeg_idct_islow`.
pub(crate) fn islow(block: &Block, m: &Mults, out: &mut [u8], stride: usize) {
    let mut ws = [0i64; 64];
    for c in 0..8 {
        let i = |r: usize| i64::from(block[r * 8 + c]) * m[r * 8 + c];
        if (1..8).all(|r| block[r * 8 + c] == 0) {
            let dc = i(0) << 2;
            for r in 0..8 {
                ws[r * 8 + c] = dc;
            }
            continue;
        }
        let (e, o) = llm(std::array::from_fn(i));
        // CONST_BITS - PASS1_BITS = 11
        ws[c] = descale(e[0] + o[3], 11);
        ws[56 + c] = descale(e[0] - o[3], 11);
        ws[8 + c] = descale(e[1] + o[2], 11);
        ws[48 + c] = descale(e[1] - o[2], 11);
        ws[16 + c] = descale(e[2] + o[1], 11);
        ws[40 + c] = descale(e[2] - o[1], 11);
        ws[24 + c] = descale(e[3] + o[0], 11);
        ws[32 + c] = descale(e[3] - o[0], 11);
    }
    for r in 0..8 {
        let w: [i64; 8] = std::array::from_fn(|k| ws[r * 8 + k]);
        let o = &mut out[r * stride..r * stride + 8];
        if w[1..].iter().all(|&v| v == 0) {
            o.fill(clamp(descale(w[0], 5)));
            continue;
        }
        let (e, d) = llm(w);
        // CONST_BITS + PASS1_BITS + 3 = 18
        o[0] = clamp(descale(e[0] + d[3], 18));
        o[7] = clamp(descale(e[0] - d[3], 18));
        o[1] = clamp(descale(e[1] + d[2], 18));
        o[6] = clamp(descale(e[1] - d[2], 18));
        o[2] = clamp(descale(e[2] + d[1], 18));
        o[5] = clamp(descale(e[2] - d[1], 18));
        o[3] = clamp(descale(e[3] + d[0], 18));
        o[4] = clamp(descale(e[3] - d[0], 18));
    }
}

const F0_211: i64 = 1730;
const F0_509: i64 = 4176;
const F0_601: i64 = 4926;
const F0_720: i64 = 5906;
const F0_850: i64 = 6967;
const F1_061: i64 = 8697;
const F1_272: i64 = 10426;
const F1_451: i64 = 11893;
const F2_172: i64 = 17799;
const F3_624: i64 = 29692;

/// `jpeg_idct_4x4`'s 4-point kernel over 8 inputs (index 4 unused): returns
/// `(tmp10, tmp12, tmp0, tmp2)`.
#[inline(always)]
fn red4(x: [i64; 8]) -> (i64, i64, i64, i64) {
    let t0 = x[0] << 14;
    let t2 = x[2] * F1_847 + x[6] * -F0_765;
    let (t10, t12) = (t0 + t2, t0 - t2);
    let (z1, z2, z3, z4) = (x[7], x[5], x[3], x[1]);
    let o0 = z1 * -F0_211 + z2 * F1_451 + z3 * -F2_172 + z4 * F1_061;
    let o2 = z1 * -F0_509 + z2 * -F0_601 + z3 * F0_899 + z4 * F2_562;
    (t10, t12, o0, o2)
}

/// `jpeg_idct_4x4`: 4×4 output.
pub(crate) fn idct4(block: &Block, m: &Mults, out: &mut [u8], stride: usize) {
    let mut ws = [0i64; 32];
    for c in 0..8 {
        if c == 4 {
            continue;
        }
        let i = |r: usize| i64::from(block[r * 8 + c]) * m[r * 8 + c];
        if [1, 2, 3, 5, 6, 7].iter().all(|&r| block[r * 8 + c] == 0) {
            let dc = i(0) << 2;
            for r in 0..4 {
                ws[r * 8 + c] = dc;
            }
            continue;
        }
        let (t10, t12, o0, o2) = red4(std::array::from_fn(i));
        // CONST_BITS - PASS1_BITS + 1 = 12
        ws[c] = descale(t10 + o2, 12);
        ws[24 + c] = descale(t10 - o2, 12);
        ws[8 + c] = descale(t12 + o0, 12);
        ws[16 + c] = descale(t12 - o0, 12);
    }
    for r in 0..4 {
        let w: [i64; 8] = std::array::from_fn(|k| ws[r * 8 + k]);
        let o = &mut out[r * stride..r * stride + 4];
        if [1, 2, 3, 5, 6, 7].iter().all(|&k| w[k] == 0) {
            o.fill(clamp(descale(w[0], 5)));
            continue;
        }
        let (t10, t12, o0, o2) = red4(w);
        // CONST_BITS + PASS1_BITS + 3 + 1 = 19
        o[0] = clamp(descale(t10 + o2, 19));
        o[3] = clamp(descale(t10 - o2, 19));
        o[1] = clamp(descale(t12 + o0, 19));
        o[2] = clamp(descale(t12 - o0, 19));
    }
}

/// `jpeg_idct_2x2`: 2×2 output.
pub(crate) fn idct2(block: &Block, m: &Mults, out: &mut [u8], stride: usize) {
    let odd = |x: [i64; 8]| x[7] * -F0_720 + x[5] * F0_850 + x[3] * -F1_272 + x[1] * F3_624;
    let mut ws = [0i64; 16];
    for c in [0usize, 1, 3, 5, 7] {
        let i = |r: usize| i64::from(block[r * 8 + c]) * m[r * 8 + c];
        if [1, 3, 5, 7].iter().all(|&r| block[r * 8 + c] == 0) {
            let dc = i(0) << 2;
            ws[c] = dc;
            ws[8 + c] = dc;
            continue;
        }
        let x: [i64; 8] = std::array::from_fn(i);
        let t10 = x[0] << 15;
        let t0 = odd(x);
        // CONST_BITS - PASS1_BITS + 2 = 13
        ws[c] = descale(t10 + t0, 13);
        ws[8 + c] = descale(t10 - t0, 13);
    }
    for r in 0..2 {
        let w: [i64; 8] = std::array::from_fn(|k| ws[r * 8 + k]);
        let o = &mut out[r * stride..r * stride + 2];
        if [1, 3, 5, 7].iter().all(|&k| w[k] == 0) {
            o.fill(clamp(descale(w[0], 5)));
            continue;
        }
        let t10 = w[0] << 15;
        let t0 = odd(w);
        // CONST_BITS + PASS1_BITS + 3 + 2 = 20
        o[0] = clamp(descale(t10 + t0, 20));
        o[1] = clamp(descale(t10 - t0, 20));
    }
}

/// `jpeg_idct_1x1`: the block's mean.
pub(crate) fn idct1(block: &Block, m: &Mults, out: &mut [u8]) {
    out[0] = wrap(descale(i64::from(block[0]) * m[0], 3));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DC-only block decodes to a flat block of `dc * q / 8 + 128` in every transform.
    #[test]
    fn dc_only_blocks_are_flat() {
        let mut b = [0i16; 64];
        b[0] = 20;
        let q = [2u16; 64];
        let mut out = [0u8; 64];
        islow(&b, &islow_table(&q), &mut out, 8);
        assert!(out.iter().all(|&v| v == 133));
        ifast(&b, &ifast_table(&q), &mut out, 8);
        assert!(out.iter().all(|&v| v == 133));
        idct4(&b, &islow_table(&q), &mut out, 4);
        assert!(out[..16].iter().all(|&v| v == 133));
        idct1(&b, &islow_table(&q), &mut out);
        assert_eq!(out[0], 133);
    }
}

//! Reductions over a tensor viewed as `[outer, reduced, inner]` (row-major).
//!
//! The caller collapses its axes: reducing axes `r..s` of a shape `d` means
//! `outer = Π d[..r]`, `reduced = Π d[r..s]`, `inner = Π d[s..]` (reducing non-adjacent axes
//! needs a transpose first, or several passes). Outputs are `[outer, inner]` row-major.
//!
//! # Summation order (f32 sum / mean)
//!
//! * `inner == 1` (contiguous rows): pairwise summation — the row is split in halves
//!   recursively down to blocks of at most 256 elements; a block is summed in 16 interleaved
//!   lanes (element `i` goes to lane `i % 16`), and the lanes are combined by a fixed binary
//!   tree. Error grows like `O(log n)` ulps. The order is the same on every instruction set
//!   and thread count, so results are bit-identical across paths.
//! * `inner > 1`: each output element sums its `reduced` values in order within blocks of 256
//!   rows (vectorized across `inner`), then adds the block sums in order.
//!
//! Other element types (`f64`, `i32`, `i64`) and `prod` use plain sequential order; integer
//! sums wrap on overflow, and integer mean truncates toward zero (as TF does).

use crate::simd::multiversion;
use rayon::prelude::*;

/// The reduction to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReduceOp {
    /// Sum (0 for an empty reduction).
    Sum,
    /// Sum divided by the count (NaN for an empty `f32`/`f64` reduction, as 0/0).
    Mean,
    /// Maximum; NaN propagates. Empty: the type's lowest value (`-inf` for floats).
    Max,
    /// Minimum; NaN propagates. Empty: the type's highest value (`+inf` for floats).
    Min,
    /// Product (1 for an empty reduction).
    Prod,
}

/// Element types supported by the generic [`reduce`].
pub trait Reducible: Copy + Send + Sync + PartialOrd {
    /// Additive identity.
    const ZERO: Self;
    /// Multiplicative identity.
    const ONE: Self;
    /// Identity of max (lowest value or `-inf`).
    const LOWEST: Self;
    /// Identity of min (highest value or `+inf`).
    const HIGHEST: Self;
    /// Addition (wrapping for integers).
    fn add(self, o: Self) -> Self;
    /// Multiplication (wrapping for integers).
    fn mul(self, o: Self) -> Self;
    /// Division by a count (truncating for integers; `n == 0` gives 0 for integers).
    fn div_count(self, n: usize) -> Self;
    /// Whether the value is NaN.
    fn is_nan(self) -> bool;
}

macro_rules! reducible_float {
    ($t:ty) => {
        impl Reducible for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const LOWEST: Self = <$t>::NEG_INFINITY;
            const HIGHEST: Self = <$t>::INFINITY;
            #[inline(always)]
            fn add(self, o: Self) -> Self {
                self + o
            }
            #[inline(always)]
            fn mul(self, o: Self) -> Self {
                self * o
            }
            #[inline(always)]
            fn div_count(self, n: usize) -> Self {
                self / n as $t
            }
            #[inline(always)]
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
        }
    };
}
reducible_float!(f32);
reducible_float!(f64);

macro_rules! reducible_int {
    ($t:ty) => {
        impl Reducible for $t {
            const ZERO: Self = 0;
            const ONE: Self = 1;
            const LOWEST: Self = <$t>::MIN;
            const HIGHEST: Self = <$t>::MAX;
            #[inline(always)]
            fn add(self, o: Self) -> Self {
                self.wrapping_add(o)
            }
            #[inline(always)]
            fn mul(self, o: Self) -> Self {
                self.wrapping_mul(o)
            }
            #[inline(always)]
            fn div_count(self, n: usize) -> Self {
                if n == 0 {
                    0
                } else {
                    self.wrapping_div(n as $t)
                }
            }
            #[inline(always)]
            fn is_nan(self) -> bool {
                false
            }
        }
    };
}
reducible_int!(i32);
reducible_int!(i64);

fn check_dims(len: usize, outer: usize, reduced: usize, inner: usize, out_len: usize) {
    assert_eq!(
        len,
        outer * reduced * inner,
        "reduce: input length != outer*reduced*inner"
    );
    assert_eq!(
        out_len,
        outer * inner,
        "reduce: output length != outer*inner"
    );
}

#[inline(always)]
fn combine<T: Reducible>(op: ReduceOp, acc: T, x: T) -> T {
    match op {
        ReduceOp::Sum | ReduceOp::Mean => acc.add(x),
        ReduceOp::Prod => acc.mul(x),
        // NaN propagates: once acc is NaN it stays (comparisons with NaN are false).
        ReduceOp::Max => {
            if x > acc || x.is_nan() {
                if acc.is_nan() {
                    acc
                } else {
                    x
                }
            } else {
                acc
            }
        }
        ReduceOp::Min => {
            if x < acc || x.is_nan() {
                if acc.is_nan() {
                    acc
                } else {
                    x
                }
            } else {
                acc
            }
        }
    }
}

fn identity<T: Reducible>(op: ReduceOp) -> T {
    match op {
        ReduceOp::Sum | ReduceOp::Mean => T::ZERO,
        ReduceOp::Prod => T::ONE,
        ReduceOp::Max => T::LOWEST,
        ReduceOp::Min => T::HIGHEST,
    }
}

/// Generic reduction over `[outer, reduced, inner]` into `out` (`[outer, inner]`),
/// sequential order (see the [module docs](self)). For `f32` prefer [`reduce_f32`].
///
/// # Panics
///
/// If `x.len() != outer*reduced*inner` or `out.len() != outer*inner`.
pub fn reduce<T: Reducible>(
    op: ReduceOp,
    x: &[T],
    outer: usize,
    reduced: usize,
    inner: usize,
    out: &mut [T],
) {
    check_dims(x.len(), outer, reduced, inner, out.len());
    if out.is_empty() {
        return;
    }
    if inner == 1 {
        // Each output folds one contiguous run, in the same order as below; with the op
        // fixed per loop the fold compiles to a plain (often vectorised) loop.
        fn fold<T: Reducible>(op: ReduceOp, row: &[T]) -> T {
            row.iter().fold(identity(op), |acc, &v| combine(op, acc, v))
        }
        for (o, acc) in out.iter_mut().enumerate() {
            let row = &x[o * reduced..(o + 1) * reduced];
            *acc = match op {
                ReduceOp::Sum => fold(ReduceOp::Sum, row),
                ReduceOp::Mean => fold(ReduceOp::Mean, row).div_count(reduced),
                ReduceOp::Prod => fold(ReduceOp::Prod, row),
                ReduceOp::Max => fold(ReduceOp::Max, row),
                ReduceOp::Min => fold(ReduceOp::Min, row),
            };
        }
        return;
    }
    for (o, orow) in out.chunks_exact_mut(inner).enumerate() {
        orow.fill(identity(op));
        let base = o * reduced * inner;
        for r in 0..reduced {
            let row = &x[base + r * inner..base + (r + 1) * inner];
            for (acc, &v) in orow.iter_mut().zip(row) {
                *acc = combine(op, *acc, v);
            }
        }
        if op == ReduceOp::Mean {
            for acc in orow.iter_mut() {
                *acc = acc.div_count(reduced);
            }
        }
    }
}

const BLOCK: usize = 256;
const LANES: usize = 16;

/// Pairwise sum of a contiguous slice (fixed order, see module docs).
#[inline(always)]
fn pairwise_sum(x: &[f32]) -> f32 {
    if x.len() <= BLOCK {
        let mut lanes = [0.0f32; LANES];
        let mut chunks = x.chunks_exact(LANES);
        for c in &mut chunks {
            for l in 0..LANES {
                lanes[l] += c[l];
            }
        }
        for (l, &v) in chunks.remainder().iter().enumerate() {
            lanes[l] += v;
        }
        let mut w = LANES;
        while w > 1 {
            w /= 2;
            for l in 0..w {
                lanes[l] += lanes[l + w];
            }
        }
        lanes[0]
    } else {
        // Split on a BLOCK boundary so the tree does not depend on anything but the length.
        let half = (x.len() / 2).div_ceil(BLOCK) * BLOCK;
        pairwise_sum(&x[..half]) + pairwise_sum(&x[half..])
    }
}

multiversion! {
    /// One `[reduced, inner]` slab of an f32 reduction into `orow` (`inner` elements).
    fn reduce_slab_f32 / reduce_slab_f32_with(op: ReduceOp, x: &[f32], reduced: usize, orow: &mut [f32]) {
        let inner = orow.len();
        if inner == 1 {
            orow[0] = match op {
                ReduceOp::Sum => pairwise_sum(x),
                ReduceOp::Mean => pairwise_sum(x) / reduced as f32,
                _ => {
                    // Max / Min / Prod: 16 lanes (max/min are order-independent; prod
                    // order is fixed as for sums).
                    let mut lanes = [identity::<f32>(op); LANES];
                    let mut chunks = x.chunks_exact(LANES);
                    for c in &mut chunks {
                        for l in 0..LANES {
                            lanes[l] = combine(op, lanes[l], c[l]);
                        }
                    }
                    for (l, &v) in chunks.remainder().iter().enumerate() {
                        lanes[l] = combine(op, lanes[l], v);
                    }
                    lanes.iter().fold(identity::<f32>(op), |a, &v| combine(op, a, v))
                }
            };
            return;
        }
        orow.fill(identity(op));
        if matches!(op, ReduceOp::Sum | ReduceOp::Mean) && reduced > BLOCK {
            let mut part = vec![0.0f32; inner];
            for blk in x.chunks(BLOCK * inner) {
                part.fill(0.0);
                for row in blk.chunks_exact(inner) {
                    for (p, &v) in part.iter_mut().zip(row) {
                        *p += v;
                    }
                }
                for (o, &p) in orow.iter_mut().zip(&part) {
                    *o += p;
                }
            }
        } else {
            for row in x.chunks_exact(inner) {
                for (acc, &v) in orow.iter_mut().zip(row) {
                    *acc = combine(op, *acc, v);
                }
            }
        }
        if op == ReduceOp::Mean {
            let n = reduced as f32;
            for acc in orow.iter_mut() {
                *acc /= n;
            }
        }
    }
}

/// `f32` reduction over `[outer, reduced, inner]` into `out` (`[outer, inner]`), vectorized,
/// with the summation order described in the [module docs](self); parallel over `outer`
/// when large.
///
/// # Panics
///
/// If `x.len() != outer*reduced*inner` or `out.len() != outer*inner`.
pub fn reduce_f32(
    op: ReduceOp,
    x: &[f32],
    outer: usize,
    reduced: usize,
    inner: usize,
    out: &mut [f32],
) {
    reduce_f32_with(crate::simd::Isa::best(), op, x, outer, reduced, inner, out)
}

/// [`reduce_f32`] on an explicit instruction set.
///
/// # Panics
///
/// As [`reduce_f32`].
pub fn reduce_f32_with(
    isa: crate::simd::Isa,
    op: ReduceOp,
    x: &[f32],
    outer: usize,
    reduced: usize,
    inner: usize,
    out: &mut [f32],
) {
    check_dims(x.len(), outer, reduced, inner, out.len());
    if out.is_empty() {
        return;
    }
    let slab = reduced * inner;
    if reduced == 0 {
        out.fill(match op {
            ReduceOp::Mean => f32::NAN,
            _ => identity(op),
        });
        return;
    }
    let run = |(o, orow): (usize, &mut [f32])| {
        reduce_slab_f32_with(isa, op, &x[o * slab..(o + 1) * slab], reduced, orow)
    };
    if x.len() >= 1 << 18 && outer > 1 {
        out.par_chunks_mut(inner).enumerate().for_each(run);
    } else {
        out.chunks_mut(inner).enumerate().for_each(run);
    }
}

/// Index of the maximum (`is_max`) or minimum along `reduced` for each `(outer, inner)`,
/// written to `out` (`[outer, inner]`). Ties resolve to the **first** index, like TF.
/// Comparisons are strict `>` / `<`, so a NaN never replaces the current best (and a NaN at
/// index 0 is never replaced, since every comparison with it is false).
///
/// # Panics
///
/// If `reduced == 0`, or `x.len() != outer*reduced*inner` or `out.len() != outer*inner`.
pub fn arg_reduce<T: Copy + PartialOrd>(
    is_max: bool,
    x: &[T],
    outer: usize,
    reduced: usize,
    inner: usize,
    out: &mut [i64],
) {
    check_dims(x.len(), outer, reduced, inner, out.len());
    assert!(reduced > 0, "arg_reduce: empty reduction");
    if out.is_empty() {
        return;
    }
    let better = |a: T, b: T| if is_max { a > b } else { a < b };
    if inner == 1 {
        for (o, row) in out.iter_mut().zip(x.chunks_exact(reduced)) {
            let mut bi = 0;
            let mut bv = row[0];
            for (i, &v) in row.iter().enumerate().skip(1) {
                if better(v, bv) {
                    bi = i;
                    bv = v;
                }
            }
            *o = bi as i64;
        }
        return;
    }
    for (orow, slab) in out
        .chunks_exact_mut(inner)
        .zip(x.chunks_exact(reduced * inner))
    {
        let mut best: Vec<T> = slab[..inner].to_vec();
        orow.fill(0);
        for (r, row) in slab.chunks_exact(inner).enumerate().skip(1) {
            for ((b, o), &v) in best.iter_mut().zip(orow.iter_mut()).zip(row) {
                if better(v, *b) {
                    *b = v;
                    *o = r as i64;
                }
            }
        }
    }
}

/// [`arg_reduce`] for the maximum (TF `ArgMax`).
///
/// # Panics
///
/// As [`arg_reduce`].
pub fn argmax<T: Copy + PartialOrd>(
    x: &[T],
    outer: usize,
    reduced: usize,
    inner: usize,
    out: &mut [i64],
) {
    arg_reduce(true, x, outer, reduced, inner, out)
}

/// [`arg_reduce`] for the minimum (TF `ArgMin`).
///
/// # Panics
///
/// As [`arg_reduce`].
pub fn argmin<T: Copy + PartialOrd>(
    x: &[T],
    outer: usize,
    reduced: usize,
    inner: usize,
    out: &mut [i64],
) {
    arg_reduce(false, x, outer, reduced, inner, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::Isa;
    use crate::testutil::Rng;

    #[test]
    fn f32_reductions_all_isas_match_f64() {
        let mut rng = Rng::new(31);
        for &(outer, reduced, inner) in &[
            (1, 1, 1),
            (3, 17, 1),
            (2, 1000, 1),
            (1, 70000, 1),
            (4, 5, 7),
            (2, 600, 33),
            (3, 300, 1000),
            (2, 0, 3),
        ] {
            let x = rng.vec_f32(outer * reduced * inner);
            for op in [
                ReduceOp::Sum,
                ReduceOp::Mean,
                ReduceOp::Max,
                ReduceOp::Min,
                ReduceOp::Prod,
            ] {
                let mut want = vec![0.0f32; outer * inner];
                for o in 0..outer {
                    for i in 0..inner {
                        let vals = (0..reduced).map(|r| x[(o * reduced + r) * inner + i] as f64);
                        want[o * inner + i] = match op {
                            ReduceOp::Sum => vals.sum::<f64>() as f32,
                            ReduceOp::Mean => (vals.sum::<f64>() / reduced as f64) as f32,
                            ReduceOp::Max => vals.fold(f64::NEG_INFINITY, f64::max) as f32,
                            ReduceOp::Min => vals.fold(f64::INFINITY, f64::min) as f32,
                            ReduceOp::Prod => vals.product::<f64>() as f32,
                        };
                    }
                }
                let mut first: Option<Vec<f32>> = None;
                for isa in Isa::available() {
                    let mut out = vec![0.0f32; outer * inner];
                    reduce_f32_with(isa, op, &x, outer, reduced, inner, &mut out);
                    for (g, w) in out.iter().zip(&want) {
                        let ok = (g.is_nan() && w.is_nan())
                            || g == w
                            || (g - w).abs()
                                <= 1e-5 * (1.0 + (reduced as f32).sqrt()) + 1e-6 * w.abs();
                        assert!(ok, "{op:?} {outer}x{reduced}x{inner} {isa:?}: {g} vs {w}");
                    }
                    // Bit-identical across instruction sets.
                    match &first {
                        None => first = Some(out),
                        Some(f) => {
                            assert!(f.iter().zip(&out).all(|(a, b)| a.to_bits() == b.to_bits()))
                        }
                    }
                }
                // Generic path agrees approximately too.
                let mut g = vec![0.0f32; outer * inner];
                reduce(op, &x, outer, reduced, inner, &mut g);
                for (g, w) in g.iter().zip(&want) {
                    assert!(
                        (g.is_nan() && w.is_nan())
                            || g == w
                            || (g - w).abs() <= 1e-3 * (1.0 + w.abs())
                    );
                }
            }
        }
    }

    #[test]
    fn nan_propagates_in_max_min() {
        let x = [1.0f32, f32::NAN, 3.0, 0.0];
        let mut o = [0.0f32];
        for isa in Isa::available() {
            reduce_f32_with(isa, ReduceOp::Max, &x, 1, 4, 1, &mut o);
            assert!(o[0].is_nan());
            reduce_f32_with(isa, ReduceOp::Min, &x, 1, 4, 1, &mut o);
            assert!(o[0].is_nan());
        }
    }

    /// `reduce` with `inner == 1` (one folded run per output) against the general loop:
    /// the same rows with a duplicate column (`inner == 2`), column 0 of which must match.
    fn single_runs_match_general<T: Reducible + std::fmt::Debug>(
        x: &[T],
        outer: usize,
        reduced: usize,
        same: impl Fn(&T, &T) -> bool,
    ) {
        let wide: Vec<T> = x.iter().flat_map(|&v| [v, v]).collect();
        for op in [
            ReduceOp::Sum,
            ReduceOp::Mean,
            ReduceOp::Prod,
            ReduceOp::Max,
            ReduceOp::Min,
        ] {
            let mut got = vec![T::ONE; outer];
            reduce(op, x, outer, reduced, 1, &mut got);
            let mut want = vec![T::ONE; outer * 2];
            reduce(op, &wide, outer, reduced, 2, &mut want);
            for (g, w) in got.iter().zip(want.iter().step_by(2)) {
                assert!(same(g, w), "{op:?} {outer}x{reduced}: {g:?} vs {w:?}");
            }
        }
    }

    #[test]
    fn single_run_reductions_match_general_loop() {
        let mut rng = Rng::new(5);
        for (outer, reduced) in [(1, 0), (2, 0), (1, 1), (1, 7), (3, 5), (1, 1000), (2, 333)] {
            let f: Vec<f32> = (0..outer * reduced)
                .map(|i| match i % 97 {
                    13 if reduced > 50 => f32::NAN,
                    _ => rng.vec_f32(1)[0] * 4.0 - 2.0,
                })
                .collect();
            single_runs_match_general(&f, outer, reduced, |a, b| {
                a.to_bits() == b.to_bits() || a.is_nan() && b.is_nan()
            });
            let i: Vec<i64> = (0..outer * reduced)
                .map(|_| rng.below(1 << 20) as i64 - (1 << 19))
                .collect();
            single_runs_match_general(&i, outer, reduced, |a, b| a == b);
            let i: Vec<i32> = i.iter().map(|&v| v as i32).collect();
            single_runs_match_general(&i, outer, reduced, |a, b| a == b);
        }
    }

    #[test]
    fn integer_reductions_and_arg() {
        let x: Vec<i64> = vec![3, -1, 4, 1, -5, 9, 2, 6];
        let mut o = vec![0i64; 2];
        reduce(ReduceOp::Sum, &x, 2, 4, 1, &mut o);
        assert_eq!(o, [7, 12]);
        reduce(ReduceOp::Mean, &x, 2, 4, 1, &mut o);
        assert_eq!(o, [1, 3]);
        reduce(ReduceOp::Max, &x, 1, 4, 2, &mut o);
        assert_eq!(o, [4, 9]);
        let xi: Vec<i32> = vec![1, 5, 5, 2, 0, 0];
        let mut a = vec![0i64; 1];
        argmax(&xi, 1, 6, 1, &mut a);
        assert_eq!(a, [1]);
        argmin(&xi, 1, 6, 1, &mut a);
        assert_eq!(a, [4]);
        // [outer=1, reduced=3, inner=2]
        let xf = [1.0f32, 7.0, 3.0, 7.0, 3.0, 2.0];
        let mut a = vec![0i64; 2];
        argmax(&xf, 1, 3, 2, &mut a);
        assert_eq!(a, [1, 0]);
        argmin(&xf, 1, 3, 2, &mut a);
        assert_eq!(a, [0, 2]);
    }
}

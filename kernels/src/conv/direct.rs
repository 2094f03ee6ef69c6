//! Explicit AVX-512 / AVX2 rows of the direct convolution for inputs with few channels (the
//! image stems: 3×3 / 32 on MobileNet and EfficientNet, 7×7 / 64 on ResNet), with the
//! epilogue applied in registers (`epilogue_x86`) before each store.
//!
//! The portable kernel in the parent module keeps one pixel's accumulators in registers, so
//! each accumulator waits on the previous addition (a latency-bound chain of `kh·kw·cin`
//! adds). Here [`TILE`] neighbouring output pixels and up to [`NV`] vectors of output channels
//! are accumulated together, each input value is broadcast once per tap and each filter
//! vector loaded once for the whole tile.
//!
//! Summation order: exactly the portable kernel's (and so bit-identical to it): every
//! output starts from zero and adds `x · f` over the in-bounds taps in `(ky, kx, ci)` order,
//! the product and the sum rounded separately (a multiply then an add, never a fused
//! multiply-add). Out-of-bounds taps are skipped, not added as zeros, as there.

use super::{RowGeom, Window2d};
use crate::epilogue::Epilogue;
use crate::simd::Isa;

/// Output pixels computed together in the interior of a row.
const TILE: usize = 4;

/// Most output-channel vectors accumulated at once (`TILE · NV` accumulators).
const NV: usize = 4;

/// What the SIMD bodies need of a row.
struct RowCtx {
    g: RowGeom,
    cin: usize,
    cout: usize,
}

/// Computes the vector-width channels of one output row `(b, oy)` of a direct convolution
/// with `isa`'s kernel and applies `ep` to them; returns how many leading channels of each
/// pixel were done (`0` when `isa` has no vector kernel; the caller does the rest).
///
/// `input`, `filter` (`[kh, kw, cin, cout]`) and `orow` (`[ow, cout]`) lengths are checked
/// by the caller.
#[allow(clippy::too_many_arguments)]
pub(super) fn row(
    isa: Isa,
    input: &[f32],
    filter: &[f32],
    cout: usize,
    geom: &Window2d,
    ep: &Epilogue<'_>,
    b: usize,
    oy: usize,
    orow: &mut [f32],
) -> usize {
    let isa = isa.clamp_supported();
    let lanes = match isa {
        Isa::Avx512 => 16,
        Isa::Avx2 => 8,
        _ => return 0,
    };
    let cv = cout - cout % lanes;
    if cv == 0 {
        return 0;
    }
    let [n, h, w, cin] = geom.input;
    let (kh, kw) = geom.kernel;
    assert!(b < n && oy < geom.output.0);
    assert_eq!(input.len(), n * h * w * cin);
    assert_eq!(filter.len(), kh * kw * cin * cout);
    assert_eq!(orow.len(), geom.output.1 * cout);
    let cx = RowCtx {
        g: RowGeom::new(geom, b, oy, cin),
        cin,
        cout,
    };
    let (lo, hi) = (cx.g.lo, cx.g.hi);
    // SAFETY: `clamp_supported` returned a level the CPU supports; interior columns read
    // taps inside the input rows, border columns check each tap, rows come from `in_y`, and
    // channel blocks stay below `cv <= cout`.
    unsafe {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => x86::avx512::row(&cx, input, filter, ep, (lo, hi), cv, orow),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => x86::avx2::row(&cx, input, filter, ep, (lo, hi), cv, orow),
            _ => return 0,
        }
    }
    cv
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    macro_rules! direct_isa {
        ($m:ident, $feat:literal, $lanes:expr, $v:ty, $zero:ident, $load:ident,
         $set1:ident, $mul:ident, $add:ident, $store:ident, $ep:ident) => {
            pub(crate) mod $m {
                use super::super::*;
                use crate::epilogue_x86::$ep;
                use std::arch::x86_64::*;

                /// One output row: interior tiles of [`TILE`] pixels, then single pixels.
                ///
                /// # Safety
                /// CPU supports the features; geometry consistent with the slices;
                /// `cv` a multiple of the lanes, at most `cout`.
                #[target_feature(enable = $feat)]
                pub(crate) unsafe fn row(
                    cx: &RowCtx,
                    input: &[f32],
                    filter: &[f32],
                    ep: &Epilogue<'_>,
                    (lo, hi): (usize, usize),
                    cv: usize,
                    orow: &mut [f32],
                ) {
                    let ow = orow.len() / cx.cout;
                    let mut ox = 0;
                    while ox < ow {
                        if ox >= lo && ox + TILE <= hi {
                            channels::<TILE>(cx, input, filter, ep, ox, cv, orow);
                            ox += TILE;
                        } else {
                            channels::<1>(cx, input, filter, ep, ox, cv, orow);
                            ox += 1;
                        }
                    }
                }

                /// `P` pixels from `ox0` (all interior when `P > 1`), every channel block.
                #[target_feature(enable = $feat)]
                #[inline]
                unsafe fn channels<const P: usize>(
                    cx: &RowCtx,
                    input: &[f32],
                    filter: &[f32],
                    ep: &Epilogue<'_>,
                    ox0: usize,
                    cv: usize,
                    orow: &mut [f32],
                ) {
                    let mut c0 = 0;
                    while c0 + NV * $lanes <= cv {
                        block::<P, NV>(cx, input, filter, ep, ox0, c0, orow);
                        c0 += NV * $lanes;
                    }
                    while c0 < cv {
                        block::<P, 1>(cx, input, filter, ep, ox0, c0, orow);
                        c0 += $lanes;
                    }
                }

                /// `P` pixels × `V` vectors of channels from `c0`.
                #[target_feature(enable = $feat)]
                #[inline]
                unsafe fn block<const P: usize, const V: usize>(
                    cx: &RowCtx,
                    input: &[f32],
                    filter: &[f32],
                    ep: &Epilogue<'_>,
                    ox0: usize,
                    c0: usize,
                    orow: &mut [f32],
                ) {
                    let (cin, cout) = (cx.cin, cx.cout);
                    let ip = input.as_ptr();
                    let fp = filter.as_ptr();
                    let mut acc = [[$zero(); V]; P];
                    for &(ky, roff) in cx.g.rows() {
                        for kx in 0..cx.g.kw {
                            // Input offset of this tap for each pixel; a lone border pixel
                            // skips taps outside the row (as the portable kernel does).
                            let mut xoff = [0usize; P];
                            if P == 1 {
                                match cx.g.in_x(ox0, kx) {
                                    Some(ix) => xoff[0] = roff + ix * cin,
                                    None => continue,
                                }
                            } else {
                                for (p, o) in xoff.iter_mut().enumerate() {
                                    *o = roff + cx.g.interior_x(ox0 + p, kx) * cin;
                                }
                            }
                            let ftap = fp.add((ky * cx.g.kw + kx) * cin * cout + c0);
                            for ci in 0..cin {
                                let fr = ftap.add(ci * cout);
                                let mut f = [$zero(); V];
                                for (v, fv) in f.iter_mut().enumerate() {
                                    *fv = $load(fr.add(v * $lanes));
                                }
                                for p in 0..P {
                                    let x = $set1(*ip.add(xoff[p] + ci));
                                    for v in 0..V {
                                        acc[p][v] = $add(acc[p][v], $mul(x, f[v]));
                                    }
                                }
                            }
                        }
                    }
                    let op = orow.as_mut_ptr();
                    for p in 0..P {
                        for v in 0..V {
                            let c = c0 + v * $lanes;
                            $store(op.add((ox0 + p) * cout + c), $ep::vec(ep, acc[p][v], c));
                        }
                    }
                }
            }
        };
    }

    direct_isa!(
        avx512,
        "avx512f,avx512vl,avx2,fma",
        16,
        __m512,
        _mm512_setzero_ps,
        _mm512_loadu_ps,
        _mm512_set1_ps,
        _mm512_mul_ps,
        _mm512_add_ps,
        _mm512_storeu_ps,
        avx512
    );
    direct_isa!(
        avx2,
        "avx2,fma",
        8,
        __m256,
        _mm256_setzero_ps,
        _mm256_loadu_ps,
        _mm256_set1_ps,
        _mm256_mul_ps,
        _mm256_add_ps,
        _mm256_storeu_ps,
        avx2
    );
}

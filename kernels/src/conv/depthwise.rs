//! Explicit AVX-512 / AVX2 depthwise convolution rows (channel multiplier 1), with the
//! epilogue applied in registers (`epilogue_x86`) before each store.
//!
//! MobileNet- and EfficientNet-style models spend a large share of their time in 3×3 and
//! 5×5 depthwise convolutions (stride 1 and 2). The portable kernel in the parent module
//! builds a tap list per pixel and relies on auto-vectorization; here channels sit in vector
//! lanes, [`TILE`] output pixels × up to 4 channel vectors are computed per iteration (each
//! filter vector loaded once for all pixels; 8 to 16 independent accumulator chains, so the
//! FMA latency and the swish epilogue's long dependency chain overlap), interior pixels run
//! without bounds checks and border pixels (most of a 7×7 map under a 5×5 window) test each
//! tap but still accumulate 4 channel vectors at once. Channels past the last full vector
//! take a scalar loop. Undilated 3- and 5-wide kernels at stride 1 or 2 (MobileNet's and
//! EfficientNet's) slide along the input row instead: each input vector is loaded once and
//! feeds every tap and pixel of the tile it belongs to (the general tile loads it once per
//! tap), which leaves the fused multiply-adds, not the loads, as the bound (1.2-1.35x on
//! MobileNetV2's layers). For 5-wide kernels the tiles also cover the borders (skipping the
//! columns outside the row), so a 7×7 map is two tiles instead of seven lone pixels (1.2-1.6x
//! on EfficientNetB0's 7×7×1152 layers, 1.1-1.2x on its 14×14×672 ones, Emerald Rapids).
//!
//! Summation order: every output still sums its in-bounds taps in `(ky, kx)` order starting
//! from zero, as the portable kernel and TF's `DepthwiseConv2dNative` CPU kernel do, but each
//! step is a fused multiply-add (one rounding instead of two), so results may differ from
//! the portable path in the last bits.

use super::{RowGeom, Window2d};
use crate::epilogue::Epilogue;
use crate::simd::Isa;

/// Output pixels computed together in the interior of a row.
const TILE: usize = 4;

/// What the SIMD bodies need of a row.
struct RowCtx {
    g: RowGeom,
    c: usize,
}

/// Computes one output row `(b, oy)` of a multiplier-1 depthwise convolution with `isa`'s
/// vector kernel and applies `ep`; returns `false` (doing nothing) when `isa` has no vector
/// kernel here, so the caller runs the portable path.
///
/// `input`, `filter` (`[kh, kw, c]`) and `orow` (`[ow, c]`) lengths are checked by the caller.
#[allow(clippy::too_many_arguments)]
pub(super) fn row_mult1(
    isa: Isa,
    input: &[f32],
    filter: &[f32],
    geom: &Window2d,
    ep: &Epilogue<'_>,
    b: usize,
    oy: usize,
    orow: &mut [f32],
) -> bool {
    let isa = isa.clamp_supported();
    if isa == Isa::Scalar {
        return false;
    }
    let [n, h, w, c] = geom.input;
    let (kh, kw) = geom.kernel;
    assert!(b < n && oy < geom.output.0);
    assert_eq!(input.len(), n * h * w * c);
    assert_eq!(filter.len(), kh * kw * c);
    assert_eq!(orow.len(), geom.output.1 * c);
    let cx = RowCtx {
        g: RowGeom::new(geom, b, oy, c),
        c,
    };
    let (lo, hi) = (cx.g.lo, cx.g.hi);
    // SAFETY: `clamp_supported` returned a level the CPU supports; every index the bodies
    // form is inside the slices (interior columns read taps inside the input rows, border
    // columns check each tap, rows come from `in_y`).
    unsafe {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => x86::avx512::row(&cx, input, filter, ep, (lo, hi), orow),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => x86::avx2::row(&cx, input, filter, ep, (lo, hi), orow),
            _ => return false,
        }
    }
    true
}

#[cfg(target_arch = "x86_64")]
mod x86 {

    macro_rules! dw_isa {
        ($m:ident, $feat:literal, $lanes:expr, $vt:ty, $tile_v:literal, $one_v:literal, $zero:ident,
         $load:ident, $fma:ident, $store:ident, $ep:ident) => {
            pub(crate) mod $m {
                use super::super::*;
                use crate::epilogue::apply_row_with;
                use crate::epilogue_x86::$ep;
                use std::arch::x86_64::*;

                /// One output row: interior tiles, single interior pixels, border pixels.
                ///
                /// # Safety
                /// CPU supports the features; geometry consistent with the slices.
                #[target_feature(enable = $feat)]
                pub(crate) unsafe fn row(
                    cx: &RowCtx,
                    input: &[f32],
                    filter: &[f32],
                    ep: &Epilogue<'_>,
                    lohi: (usize, usize),
                    orow: &mut [f32],
                ) {
                    // 3- and 5-wide undilated kernels at stride 1 or 2 slide over the row.
                    let args = (cx, input, filter, ep, lohi, orow);
                    match (cx.g.kw, cx.g.sw, cx.g.dw) {
                        (3, 1, 1) => row_kw::<3, 1>(args),
                        (3, 2, 1) => row_kw::<3, 2>(args),
                        (5, 1, 1) => row_kw::<5, 1>(args),
                        (5, 2, 1) => row_kw::<5, 2>(args),
                        _ => row_kw::<0, 0>(args),
                    }
                }

                /// [`row`] for kernels `KW` wide at stride `SW` without dilation (`0, 0`:
                /// any geometry, read from `cx`).
                ///
                /// # Safety
                /// As [`row`]; `KW, SW` are `0, 0` or `cx.g.kw, cx.g.sw` with `cx.g.dw == 1`.
                #[target_feature(enable = $feat)]
                #[inline]
                #[allow(clippy::type_complexity)]
                unsafe fn row_kw<const KW: usize, const SW: usize>(
                    (cx, input, filter, ep, (lo, hi), orow): (
                        &RowCtx,
                        &[f32],
                        &[f32],
                        &Epilogue<'_>,
                        (usize, usize),
                        &mut [f32],
                    ),
                ) {
                    let c = cx.c;
                    let ow = orow.len() / c;
                    let isa = if $lanes == 16 { Isa::Avx512 } else { Isa::Avx2 };
                    // 5-wide sliding kernels take the row in tiles from its start, border
                    // tiles included (they skip the columns outside the row). A remainder of
                    // more than half a tile is one more tile ending at the row's end
                    // (recomputing pixels of the one before: cheaper than lone pixels, which
                    // load every tap), a shorter one goes pixel by pixel. (3-wide kernels,
                    // and 5-wide ones at stride 2 on AVX2, whose tiles hold only 8
                    // accumulators, measured 5-20% slower that way: their lone pixels are
                    // cheaper.)
                    let slide = KW >= 5 && ($lanes == 16 || SW == 1) && ow >= TILE;
                    let full = if slide { ow - ow % TILE } else { 0 };
                    let overlap = slide && 2 * (ow % TILE) > TILE;
                    let mut ox = 0;
                    while ox < ow {
                        if ox >= full && overlap {
                            ox = ow - TILE;
                        }
                        let (npix, interior) =
                            if ox < full || overlap || (ox >= lo && ox + TILE <= hi) {
                                (TILE, ox >= lo && ox + TILE <= hi)
                            } else {
                                (1, ox >= lo && ox < hi)
                            };
                        let tile = &mut orow[ox * c..(ox + npix) * c];
                        if npix == TILE {
                            pixels::<KW, SW, TILE, $tile_v>(
                                cx, input, filter, ep, ox, !interior, tile,
                            );
                        } else {
                            pixels::<KW, SW, 1, $one_v>(cx, input, filter, ep, ox, !interior, tile);
                        }
                        // Channels past the last whole vector: the epilogue in memory.
                        let cv = c - c % $lanes;
                        if cv < c {
                            for px in tile.chunks_exact_mut(c) {
                                apply_row_with(isa, ep, &mut px[cv..], cv);
                            }
                        }
                        ox += npix;
                    }
                }

                /// `P` pixels from `ox0` (all interior when `P > 1`; a lone `border` pixel
                /// checks each tap), every channel: blocks of `V` vectors, then fewer, then
                /// a scalar tail.
                #[target_feature(enable = $feat)]
                #[inline]
                unsafe fn pixels<
                    const KW: usize,
                    const SW: usize,
                    const P: usize,
                    const V: usize,
                >(
                    cx: &RowCtx,
                    input: &[f32],
                    filter: &[f32],
                    ep: &Epilogue<'_>,
                    ox0: usize,
                    border: bool,
                    out: &mut [f32],
                ) {
                    let c = cx.c;
                    let cv = c - c % $lanes;
                    let mut c0 = 0;
                    while c0 + V * $lanes <= cv {
                        block::<KW, SW, P, V>(cx, input, filter, ep, ox0, border, c0, out);
                        c0 += V * $lanes;
                    }
                    if V > 2 && c0 + 2 * $lanes <= cv {
                        block::<KW, SW, P, 2>(cx, input, filter, ep, ox0, border, c0, out);
                        c0 += 2 * $lanes;
                    }
                    while c0 < cv {
                        block::<KW, SW, P, 1>(cx, input, filter, ep, ox0, border, c0, out);
                        c0 += $lanes;
                    }
                    if cv < c {
                        scalar_tail::<P>(cx, input, filter, ox0, border, cv, out);
                    }
                }

                /// Input offsets (relative to a row start) of tap `kx` for `P` pixels from
                /// `ox0`, or `None` for a border pixel whose tap leaves the row.
                #[inline(always)]
                fn tap_offsets<const P: usize>(
                    cx: &RowCtx,
                    ox0: usize,
                    kx: usize,
                    border: bool,
                ) -> Option<[usize; P]> {
                    let mut xoff = [0usize; P];
                    if P == 1 && border {
                        xoff[0] = cx.g.in_x(ox0, kx)? * cx.c;
                    } else {
                        for (p, o) in xoff.iter_mut().enumerate() {
                            *o = cx.g.interior_x(ox0 + p, kx) * cx.c;
                        }
                    }
                    Some(xoff)
                }

                /// `P` pixels × `V` vectors of channels from `c0`: `P · V` independent
                /// accumulator chains (one chain per output would wait on the FMA latency),
                /// the epilogue in registers before each store.
                #[target_feature(enable = $feat)]
                #[inline]
                #[allow(clippy::too_many_arguments)]
                unsafe fn block<
                    const KW: usize,
                    const SW: usize,
                    const P: usize,
                    const V: usize,
                >(
                    cx: &RowCtx,
                    input: &[f32],
                    filter: &[f32],
                    ep: &Epilogue<'_>,
                    ox0: usize,
                    border: bool,
                    c0: usize,
                    out: &mut [f32],
                ) {
                    let c = cx.c;
                    let ip = input.as_ptr();
                    let fp = filter.as_ptr();
                    let op = out.as_mut_ptr();
                    if KW > 0 && P > 1 {
                        if border {
                            slide::<KW, SW, P, V, true>(cx, input, filter, ep, ox0, c0, out);
                        } else {
                            slide::<KW, SW, P, V, false>(cx, input, filter, ep, ox0, c0, out);
                        }
                        return;
                    }
                    let mut acc = [[$zero(); V]; P];
                    let kw = cx.g.kw;
                    for &(ky, roff) in cx.g.rows() {
                        let frow = fp.add(ky * kw * c + c0);
                        let irow = ip.add(roff + c0);
                        for kx in 0..kw {
                            let Some(xoff) = tap_offsets::<P>(cx, ox0, kx, border) else {
                                continue;
                            };
                            let mut f = [$zero(); V];
                            for (v, fv) in f.iter_mut().enumerate() {
                                *fv = $load(frow.add(kx * c + v * $lanes));
                            }
                            for p in 0..P {
                                for v in 0..V {
                                    let x = $load(irow.add(xoff[p] + v * $lanes));
                                    acc[p][v] = $fma(x, f[v], acc[p][v]);
                                }
                            }
                        }
                    }
                    store_tile::<P, V>(ep, &mut acc, c0, op, c);
                }

                /// The sliding tile of [`block`]: `P > 1` pixels of a `KW`-wide kernel at
                /// stride `SW`; `BORDER` tiles skip the input columns outside the row.
                #[target_feature(enable = $feat)]
                #[inline]
                #[allow(clippy::too_many_arguments)]
                unsafe fn slide<
                    const KW: usize,
                    const SW: usize,
                    const P: usize,
                    const V: usize,
                    const BORDER: bool,
                >(
                    cx: &RowCtx,
                    input: &[f32],
                    filter: &[f32],
                    ep: &Epilogue<'_>,
                    ox0: usize,
                    c0: usize,
                    out: &mut [f32],
                ) {
                    let c = cx.c;
                    let ip = input.as_ptr();
                    let fp = filter.as_ptr();
                    let op = out.as_mut_ptr();
                    let mut acc = [[$zero(); V]; P];
                    // Kernel width and stride known: slide along the row, loading each input
                    // vector once for all the taps and pixels it serves (each output still
                    // sums its taps in (ky, kx) order: input column `j` is tap
                    // `kx = j - p·SW` of pixel `p`, and `j` rises). A border tile skips the
                    // columns outside the row: those taps are not summed, as for a lone
                    // border pixel.
                    let x0 = (ox0 * SW) as isize - cx.g.pl as isize;
                    let w = cx.g.w as isize;
                    for &(ky, roff) in cx.g.rows() {
                        let frow = fp.add(ky * KW * c + c0);
                        // Column `x0` of the row (left of it for a border tile: only
                        // columns inside the row are read).
                        let irow = if BORDER {
                            ip.wrapping_offset((roff + c0) as isize + x0 * c as isize)
                        } else {
                            ip.add(roff + x0 as usize * c + c0)
                        };
                        for v in 0..V {
                            let mut f = [$zero(); KW];
                            for (kx, fv) in f.iter_mut().enumerate() {
                                *fv = $load(frow.add(kx * c + v * $lanes));
                            }
                            for j in 0..(P - 1) * SW + KW {
                                let xj = x0 + j as isize;
                                if BORDER && (xj < 0 || xj >= w) {
                                    continue;
                                }
                                let at = j * c + v * $lanes;
                                let x = $load(if BORDER {
                                    irow.wrapping_add(at)
                                } else {
                                    irow.add(at)
                                });
                                for (kx, fv) in f.iter().enumerate() {
                                    if j >= kx && (j - kx) % SW == 0 && (j - kx) / SW < P {
                                        let p = (j - kx) / SW;
                                        acc[p][v] = $fma(x, *fv, acc[p][v]);
                                    }
                                }
                            }
                        }
                    }
                    store_tile::<P, V>(ep, &mut acc, c0, op, c);
                }

                /// The epilogue on `P` pixels × `V` vectors of channels from `c0`, stored to
                /// pixel `p`'s row at `op + p·c`. AVX2 runs it step by step over the tile
                /// (each channel vector loaded once for all pixels: 1.1-1.4x on the depthwise
                /// layers); AVX-512 vector by vector (its tile version measured up to 10%
                /// slower with swish). Bit-identical either way.
                #[target_feature(enable = $feat)]
                #[inline]
                unsafe fn store_tile<const P: usize, const V: usize>(
                    ep: &Epilogue<'_>,
                    acc: &mut [[$vt; V]; P],
                    c0: usize,
                    op: *mut f32,
                    c: usize,
                ) {
                    if $lanes == 8 {
                        $ep::tile::<P, V>(ep, acc, c0);
                        for (p, px) in acc.iter().enumerate() {
                            for (v, &a) in px.iter().enumerate() {
                                $store(op.add(p * c + c0 + v * $lanes), a);
                            }
                        }
                    } else {
                        for (p, px) in acc.iter().enumerate() {
                            for (v, &a) in px.iter().enumerate() {
                                let col = c0 + v * $lanes;
                                $store(op.add(p * c + col), $ep::vec(ep, a, col));
                            }
                        }
                    }
                }

                /// Channels `cv..c` (fewer than a vector) of `P` pixels, one lane at a time
                /// (the caller applies the epilogue).
                #[target_feature(enable = $feat)]
                #[inline]
                unsafe fn scalar_tail<const P: usize>(
                    cx: &RowCtx,
                    input: &[f32],
                    filter: &[f32],
                    ox0: usize,
                    border: bool,
                    cv: usize,
                    out: &mut [f32],
                ) {
                    let c = cx.c;
                    if P > 1 && border {
                        // Taps are checked per pixel.
                        for p in 0..P {
                            let px = &mut out[p * c..];
                            scalar_tail::<1>(cx, input, filter, ox0 + p, true, cv, px);
                        }
                        return;
                    }
                    let ip = input.as_ptr();
                    let fp = filter.as_ptr();
                    let op = out.as_mut_ptr();
                    for c0 in cv..c {
                        let mut acc = [0.0f32; P];
                        for &(ky, roff) in cx.g.rows() {
                            for kx in 0..cx.g.kw {
                                let Some(xoff) = tap_offsets::<P>(cx, ox0, kx, border) else {
                                    continue;
                                };
                                let f = *fp.add((ky * cx.g.kw + kx) * c + c0);
                                for p in 0..P {
                                    let x = *ip.add(roff + xoff[p] + c0);
                                    acc[p] = x.mul_add(f, acc[p]);
                                }
                            }
                        }
                        for (p, a) in acc.iter().enumerate() {
                            *op.add(p * c + c0) = *a;
                        }
                    }
                }
            }
        };
    }

    dw_isa!(
        avx512,
        "avx512f,avx512vl,avx2,fma",
        16,
        __m512,
        4,
        4,
        _mm512_setzero_ps,
        _mm512_loadu_ps,
        _mm512_fmadd_ps,
        _mm512_storeu_ps,
        avx512
    );
    dw_isa!(
        avx2,
        "avx2,fma",
        8,
        __m256,
        2,
        4,
        _mm256_setzero_ps,
        _mm256_loadu_ps,
        _mm256_fmadd_ps,
        _mm256_storeu_ps,
        avx2
    );
}

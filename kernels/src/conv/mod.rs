//! 2-D convolutions and pooling over NHWC `f32` tensors.
//!
//! Geometry is resolved by the caller (padding mode → explicit `pads` and output size), so
//! these kernels only need the numbers: output pixel `(oy, ox)` reads input rows
//! `iy = oy*stride_h + ky*dilation_h - pad_top` and columns
//! `ix = ox*stride_w + kx*dilation_w - pad_left`; positions outside the input are padding
//! (zero for convolutions, skipped for pooling).
//!
//! `depthwise.rs` holds the explicit AVX-512 / AVX2 depthwise kernels; full convolutions run
//! on the packed GEMM (`gemm::PackedB`, packed once per filter by the caller when it can).

mod block;
mod depthwise;
mod direct;
mod winograd;

pub use winograd::{
    conv2d_uses_winograd, conv2d_winograd_f32, conv2d_winograd_f32_with, pack_winograd_filter,
    pack_winograd_filter_with, WinogradFilter,
};

pub use block::{
    inverted_residual_f32, scaled_pointwise_f32, InvertedResidual, Pointwise, ScaledPointwise,
};

use crate::epilogue::Epilogue;
use crate::gemm::{gemm_packed_f32_with, PackedB};
use crate::simd::multiversion;
use crate::simd::Isa;
use rayon::prelude::*;

/// Geometry of a 2-D convolution or pooling window over an NHWC input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window2d {
    /// Input shape `[batch, height, width, channels]`.
    pub input: [usize; 4],
    /// Window / kernel size `(kh, kw)`.
    pub kernel: (usize, usize),
    /// Strides `(sh, sw)`, each `>= 1`.
    pub strides: (usize, usize),
    /// Dilations `(dh, dw)`, each `>= 1` (pooling ignores this: use `(1, 1)`).
    pub dilations: (usize, usize),
    /// Padding before the first row and column `(top, left)`; bottom/right padding is implied
    /// by the output size.
    pub pads: (usize, usize),
    /// Output spatial size `(oh, ow)`.
    pub output: (usize, usize),
}

impl Window2d {
    fn validate(&self, what: &str) {
        assert!(
            self.strides.0 >= 1 && self.strides.1 >= 1,
            "{what}: strides must be >= 1"
        );
        assert!(
            self.dilations.0 >= 1 && self.dilations.1 >= 1,
            "{what}: dilations must be >= 1"
        );
    }

    /// Input row for output row `oy` and kernel row `ky`, if inside the input.
    #[inline(always)]
    fn in_y(&self, oy: usize, ky: usize) -> Option<usize> {
        let y = (oy * self.strides.0 + ky * self.dilations.0).checked_sub(self.pads.0)?;
        (y < self.input[1]).then_some(y)
    }

    /// Input column for output column `ox` and kernel column `kx`, if inside the input.
    #[inline(always)]
    fn in_x(&self, ox: usize, kx: usize) -> Option<usize> {
        let x = (ox * self.strides.1 + kx * self.dilations.1).checked_sub(self.pads.1)?;
        (x < self.input[2]).then_some(x)
    }

    fn out_len(&self, channels: usize) -> usize {
        self.input[0] * self.output.0 * self.output.1 * channels
    }
}

/// Target size (floats) of one im2col chunk.
const IM2COL_CHUNK: usize = 1 << 18;

/// Inputs with at most this many channels are convolved directly (no im2col, no GEMM): with
/// so few channels per tap the im2col copies and the packing cost more than the products.
/// (im2col + packed GEMM measured faster on image stems, 1.5× for 3×3 / 32 and 2× for
/// ResNet's 7×7 / 64, but its summation order moved the `mobilenet_v2_small` fixture past
/// its 1e-5 tolerance, so stems stay direct.)
const DIRECT_MAX_CIN: usize = 4;

/// 2-D convolution, NHWC input, HWIO filter, groups = 1 (TF `Conv2D`):
/// `out[b, oy, ox, co] = Σ_{ky, kx, ci} in[b, iy, ix, ci] · filter[ky, kx, ci, co]`
/// with `iy, ix` as in the [module docs](self) (padding reads as zero).
///
/// * `input`: `[n, h, w, cin]` (`geom.input`) row-major.
/// * `filter`: `[kh, kw, cin, cout]` row-major (`geom.kernel = (kh, kw)`).
/// * `out`: `[n, oh, ow, cout]` row-major, overwritten.
///
/// A 1×1 kernel with unit stride and no padding is a GEMM on the input in place (in chunks
/// of pixels); a 1×1 kernel with other
/// strides is one strided GEMM per output row; an input with at most 4 channels is convolved
/// directly (per pixel, 32 output channels at a time in registers); anything else is im2col
/// in chunks of output pixels (scratch of about 1 MB per task) followed by GEMM, with chunks
/// run in parallel.
///
/// # Panics
///
/// If a stride or dilation is 0, or the slice lengths do not match the shapes.
pub fn conv2d_nhwc_f32(
    input: &[f32],
    filter: &[f32],
    cout: usize,
    geom: &Window2d,
    out: &mut [f32],
) {
    conv2d_nhwc_f32_ep(input, filter, cout, geom, &Epilogue::default(), out)
}

/// [`conv2d_nhwc_f32`] followed by a per-output-channel [`Epilogue`] (bias, scale, shift,
/// activation), applied to each output tile while it is still in cache.
///
/// Packs the filter for this call; [`conv2d_nhwc_f32_packed`] reuses a packing.
///
/// # Panics
///
/// As [`conv2d_nhwc_f32`], or if an epilogue vector is not `cout` long.
pub fn conv2d_nhwc_f32_ep(
    input: &[f32],
    filter: &[f32],
    cout: usize,
    geom: &Window2d,
    ep: &Epilogue<'_>,
    out: &mut [f32],
) {
    conv2d_nhwc_f32_packed(input, filter, None, cout, geom, ep, out)
}

/// True if a convolution with this geometry runs as a GEMM against the filter seen as a
/// `[kh*kw*cin, cout]` matrix, so a [`PackedB`] of it ([`pack_conv_filter`]) is used.
pub fn conv2d_uses_gemm(geom: &Window2d) -> bool {
    let (kh, kw) = geom.kernel;
    !(geom.input[3] <= DIRECT_MAX_CIN && !(kh == 1 && kw == 1))
}

/// The HWIO filter `[kh, kw, cin, cout]` packed for the GEMM paths of
/// [`conv2d_nhwc_f32_packed`] (on the best instruction set of this CPU).
///
/// # Panics
///
/// If `filter` is not `kh*kw*cin*cout` long.
pub fn pack_conv_filter(filter: &[f32], kdim: usize, cout: usize) -> PackedB {
    assert_eq!(filter.len(), kdim * cout, "conv2d: filter length");
    PackedB::new(kdim, cout, filter, (cout, 1))
}

/// [`conv2d_nhwc_f32_ep`] with the filter already packed (`packed`, from
/// [`pack_conv_filter`] of the same `filter`), or packed now when `None`.
///
/// A 1×1 kernel with unit stride and no padding is one packed GEMM on the input in place
/// (split over pixels, or over output channels when there are few pixels); a 1×1 kernel
/// with other strides is one strided GEMM per output row; an input with at most 4 channels
/// is convolved directly; anything else is im2col in chunks of output pixels into a
/// per-thread scratch buffer (about 1 MB) followed by the packed GEMM, chunks in parallel.
/// The epilogue runs on each finished register tile of the GEMM.
///
/// # Panics
///
/// As [`conv2d_nhwc_f32_ep`], or if `packed` is not `kh*kw*cin × cout`.
pub fn conv2d_nhwc_f32_packed(
    input: &[f32],
    filter: &[f32],
    packed: Option<&PackedB>,
    cout: usize,
    geom: &Window2d,
    ep: &Epilogue<'_>,
    out: &mut [f32],
) {
    geom.validate("conv2d");
    ep.validate(cout);
    let [n, h, w, cin] = geom.input;
    let (kh, kw) = geom.kernel;
    assert_eq!(input.len(), n * h * w * cin, "conv2d: input length");
    assert_eq!(filter.len(), kh * kw * cin * cout, "conv2d: filter length");
    assert_eq!(out.len(), geom.out_len(cout), "conv2d: output length");
    if out.is_empty() {
        return;
    }
    let kdim = kh * kw * cin;
    if !conv2d_uses_gemm(geom) {
        direct_conv(Isa::best(), input, filter, cout, geom, ep, out);
        return;
    }
    let owned;
    let pb = match packed {
        Some(p) => {
            assert!(
                p.k() == kdim && p.n() == cout,
                "conv2d: packed filter shape"
            );
            p
        }
        None => {
            owned = pack_conv_filter(filter, kdim, cout);
            &owned
        }
    };
    conv_gemm(input, pb, geom, ep, out);
}

/// The GEMM paths of [`conv2d_nhwc_f32_packed`] (shapes checked by the caller).
fn conv_gemm(input: &[f32], pb: &PackedB, geom: &Window2d, ep: &Epilogue<'_>, out: &mut [f32]) {
    let [n, h, w, cin] = geom.input;
    let (kh, kw) = geom.kernel;
    let (oh, ow) = geom.output;
    let (kdim, cout) = (pb.k(), pb.n());
    debug_assert_eq!(kdim, kh * kw * cin);
    if kh == 1 && kw == 1 && geom.pads == (0, 0) {
        if geom.strides == (1, 1) && (oh, ow) == (h, w) {
            gemm_packed_f32_with(true, n * h * w, input, (cin, 1), pb, out, cout, ep);
            return;
        }
        // Strided 1×1: each output row is a strided view of one input row.
        if oh <= h.div_ceil(geom.strides.0) && ow <= w.div_ceil(geom.strides.1) {
            let (sh, sw) = geom.strides;
            let rows = n * oh;
            let par = n * oh * ow * cin * cout >= 1 << 20 && rows > 1;
            let row = |(r, orow): (usize, &mut [f32])| {
                let (b, oy) = (r / oh, r % oh);
                let base = ((b * h + oy * sh) * w) * cin;
                let a = &input[base..];
                gemm_packed_f32_with(!par, ow, a, (sw * cin, 1), pb, orow, cout, ep);
            };
            if par {
                out.par_chunks_mut(ow * cout)
                    .enumerate()
                    .with_max_len(crate::threads::grain(rows, 1))
                    .for_each(row);
            } else {
                out.chunks_mut(ow * cout).enumerate().for_each(row);
            }
            return;
        }
    }
    let m_total = n * oh * ow;
    // Chunks fit the cache and give each worker several (`threads::grain`) when they stay
    // at least 64 pixels; with fewer pixels one chunk splits its GEMM (and its im2col).
    let chunk_rows = (IM2COL_CHUNK / kdim.max(1))
        .clamp(16, 4096)
        .min(crate::threads::grain(m_total, 64).div_ceil(16) * 16)
        .min(m_total);
    let single = m_total <= chunk_rows || m_total < 64 * 2 * rayon::current_num_threads();
    let run_chunk = |(ci, ochunk): (usize, &mut [f32])| {
        let m0 = ci * chunk_rows;
        let rows = ochunk.len() / cout;
        COL_BUF.with(|buf| {
            // Busy when this thread, waiting inside a lone chunk's parallel GEMM, picked up a
            // chunk of another call's convolution: that one gets its own scratch.
            let mut own = Vec::new();
            let mut held = buf.try_borrow_mut().ok();
            let buf = held.as_deref_mut().unwrap_or(&mut own);
            if buf.len() < rows * kdim {
                buf.resize(rows * kdim, 0.0);
            }
            let col = &mut buf[..rows * kdim];
            if single && rows * kdim >= 1 << 16 {
                // The lone chunk's im2col in parallel too (rows of `g` pixels).
                let g = crate::threads::grain(rows, 8);
                col.par_chunks_mut(g * kdim)
                    .enumerate()
                    .for_each(|(i, c)| im2col_rows(input, geom, m0 + i * g, c));
            } else {
                im2col_rows(input, geom, m0, col);
            }
            // A lone chunk splits its GEMM over the pool (over output channels when the
            // pixels are few); chunks run in parallel otherwise.
            gemm_packed_f32_with(single, rows, col, (kdim, 1), pb, ochunk, cout, ep);
        });
    };
    if single {
        run_chunk((0, out));
    } else {
        out.par_chunks_mut(chunk_rows * cout)
            .enumerate()
            .for_each(run_chunk);
    }
}

thread_local! {
    /// im2col scratch of the current thread, reused across chunks and calls.
    static COL_BUF: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// im2col of `col.len() / kdim` output pixels from flat pixel index `m0`: row `r` holds the
/// window of pixel `m0 + r` in `(ky, kx, ci)` order, padding as zeros.
fn im2col_rows(input: &[f32], geom: &Window2d, m0: usize, col: &mut [f32]) {
    let [_, h, w, cin] = geom.input;
    let (kh, kw) = geom.kernel;
    let (oh, ow) = geom.output;
    let kdim = kh * kw * cin;
    for (r, crow) in col.chunks_exact_mut(kdim).enumerate() {
        let pix = m0 + r;
        let (b, rem) = (pix / (oh * ow), pix % (oh * ow));
        let (oy, ox) = (rem / ow, rem % ow);
        for ky in 0..kh {
            let dst_ky = &mut crow[ky * kw * cin..(ky + 1) * kw * cin];
            let Some(iy) = geom.in_y(oy, ky) else {
                dst_ky.fill(0.0);
                continue;
            };
            let row0 = (b * h + iy) * w;
            if geom.dilations.1 == 1 {
                // Contiguous run of in-bounds taps: one copy.
                let x0 = (ox * geom.strides.1) as isize - geom.pads.1 as isize;
                let kx_lo = (-x0).max(0) as usize;
                let kx_hi = ((w as isize - x0).max(0) as usize).min(kw);
                if kx_lo >= kx_hi {
                    dst_ky.fill(0.0);
                    continue;
                }
                dst_ky[..kx_lo * cin].fill(0.0);
                dst_ky[kx_hi * cin..].fill(0.0);
                let src = (row0 + (x0 + kx_lo as isize) as usize) * cin;
                dst_ky[kx_lo * cin..kx_hi * cin]
                    .copy_from_slice(&input[src..src + (kx_hi - kx_lo) * cin]);
                continue;
            }
            for (kx, dst) in dst_ky.chunks_exact_mut(cin).enumerate() {
                match geom.in_x(ox, kx) {
                    Some(ix) => {
                        let src = (row0 + ix) * cin;
                        dst.copy_from_slice(&input[src..src + cin]);
                    }
                    None => dst.fill(0.0),
                }
            }
        }
    }
}

/// Channels per register block of the direct kernels: 4 AVX2 (2 AVX-512) accumulators, so
/// the per-tap additions of neighbouring lanes are independent.
const CBLOCK: usize = 32;

/// `(input offset, filter tap)` of every in-bounds window position of output pixel
/// `(b, oy, ox)`, in `(ky, kx)` order, into `taps` (cleared first).
#[inline(always)]
fn window_taps(geom: &Window2d, b: usize, oy: usize, ox: usize, taps: &mut Vec<(usize, usize)>) {
    let [_, h, w, c] = geom.input;
    let (kh, kw) = geom.kernel;
    taps.clear();
    for ky in 0..kh {
        let Some(iy) = geom.in_y(oy, ky) else {
            continue;
        };
        for kx in 0..kw {
            let Some(ix) = geom.in_x(ox, kx) else {
                continue;
            };
            taps.push((((b * h + iy) * w + ix) * c, ky * kw + kx));
        }
    }
}

/// Row geometry of the explicit vector kernels (`direct.rs`, `depthwise.rs`), which compute
/// one output row `(b, oy)` at a time: the kernel rows that land inside the input, the
/// window's column arithmetic and the interior columns (every `kx` inside the input row).
struct RowGeom {
    /// `(ky, offset of input row iy)` of each kernel row inside the input, in `ky` order
    /// (the first `nrows` of `inline`, or `heap` for kernels taller than 16).
    inline: [(usize, usize); 16],
    nrows: usize,
    heap: Vec<(usize, usize)>,
    kw: usize,
    sw: usize,
    dw: usize,
    pl: usize,
    w: usize,
    /// Output columns `lo..hi` read no padding.
    lo: usize,
    hi: usize,
}

impl RowGeom {
    /// The geometry of output row `(b, oy)` of `geom` (input pixels `channels` floats apart).
    fn new(geom: &Window2d, b: usize, oy: usize, channels: usize) -> RowGeom {
        let [_, h, w, _] = geom.input;
        let (kh, kw) = geom.kernel;
        let mut g = RowGeom {
            inline: [(0, 0); 16],
            nrows: 0,
            heap: Vec::new(),
            kw,
            sw: geom.strides.1,
            dw: geom.dilations.1,
            pl: geom.pads.1,
            w,
            lo: 0,
            hi: 0,
        };
        for ky in 0..kh {
            if let Some(iy) = geom.in_y(oy, ky) {
                let r = (ky, (b * h + iy) * w * channels);
                if kh <= g.inline.len() {
                    g.inline[g.nrows] = r;
                    g.nrows += 1;
                } else {
                    g.heap.push(r);
                }
            }
        }
        let ow = geom.output.1;
        g.lo = g.pl.div_ceil(g.sw).min(ow);
        let span = (kw - 1) * g.dw;
        g.hi = if w + g.pl > span {
            ((w - 1 + g.pl - span) / g.sw + 1).clamp(g.lo, ow)
        } else {
            g.lo
        };
        g
    }

    /// The kernel rows inside the input: `(ky, offset of input row iy)`.
    #[inline(always)]
    fn rows(&self) -> &[(usize, usize)] {
        if self.heap.is_empty() {
            &self.inline[..self.nrows]
        } else {
            &self.heap
        }
    }

    /// Input column of output column `ox` and tap `kx`, if inside the row.
    #[inline(always)]
    fn in_x(&self, ox: usize, kx: usize) -> Option<usize> {
        let x = (ox * self.sw + kx * self.dw).checked_sub(self.pl)?;
        (x < self.w).then_some(x)
    }

    /// Input column of interior output column `ox` (`lo <= ox < hi`) and tap `kx`.
    #[inline(always)]
    fn interior_x(&self, ox: usize, kx: usize) -> usize {
        ox * self.sw + kx * self.dw - self.pl
    }
}

/// `acc[l] = Σ_taps x[l] * f[l]` over `N` channels starting at `c0`, summing taps in order
/// from zero (mul then add, as separate roundings), written to `o`.
#[inline(always)]
fn depthwise_block<const N: usize>(
    input: &[f32],
    filter: &[f32],
    cout: usize,
    taps: &[(usize, usize)],
    c0: usize,
    o: &mut [f32],
) {
    let mut acc = [0.0f32; N];
    for &(src, tap) in taps {
        let x = &input[src + c0..src + c0 + N];
        let f = &filter[tap * cout + c0..tap * cout + c0 + N];
        for ((a, &x), &f) in acc.iter_mut().zip(x).zip(f) {
            *a += x * f;
        }
    }
    o[c0..c0 + N].copy_from_slice(&acc);
}

/// `N` output channels from `c0` of one pixel of a direct convolution: the sum over the
/// window's in-bounds taps and the input channels, in `(ky, kx, ci)` order, then the
/// epilogue, all in registers.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn direct_block<const N: usize>(
    input: &[f32],
    filter: &[f32],
    cin: usize,
    cout: usize,
    taps: &[(usize, usize)],
    c0: usize,
    ep: &Epilogue<'_>,
    o: &mut [f32],
) {
    let mut acc = [0.0f32; N];
    for &(src, tap) in taps {
        for ci in 0..cin {
            let x = input[src + ci];
            let f0 = (tap * cin + ci) * cout + c0;
            for (a, &f) in acc.iter_mut().zip(&filter[f0..f0 + N]) {
                *a += x * f;
            }
        }
    }
    ep.apply_block(&mut acc, c0);
    o[c0..c0 + N].copy_from_slice(&acc);
}

multiversion! {
    /// One output row of a direct convolution (see [`direct_block`]), channels from
    /// `c_start` on (the ones before are done by `direct.rs`).
    #[allow(clippy::too_many_arguments)]
    fn direct_row / direct_row_with(
        input: &[f32],
        filter: &[f32],
        cout: usize,
        geom: &Window2d,
        ep: &Epilogue<'_>,
        b: usize,
        oy: usize,
        c_start: usize,
        orow: &mut [f32],
    ) {
        let cin = geom.input[3];
        let mut taps = Vec::with_capacity(geom.kernel.0 * geom.kernel.1);
        for (ox, o) in orow.chunks_exact_mut(cout).enumerate() {
            window_taps(geom, b, oy, ox, &mut taps);
            let mut c0 = c_start;
            while c0 + CBLOCK <= cout {
                direct_block::<CBLOCK>(input, filter, cin, cout, &taps, c0, ep, o);
                c0 += CBLOCK;
            }
            while c0 + 8 <= cout {
                direct_block::<8>(input, filter, cin, cout, &taps, c0, ep, o);
                c0 += 8;
            }
            while c0 < cout {
                direct_block::<1>(input, filter, cin, cout, &taps, c0, ep, o);
                c0 += 1;
            }
        }
    }
}

/// Direct convolution (few input channels), parallel over output rows.
fn direct_conv(
    isa: Isa,
    input: &[f32],
    filter: &[f32],
    cout: usize,
    geom: &Window2d,
    ep: &Epilogue<'_>,
    out: &mut [f32],
) {
    let oh = geom.output.0;
    let row = |(r, orow): (usize, &mut [f32])| {
        let (b, oy) = (r / oh, r % oh);
        let done = direct::row(isa, input, filter, cout, geom, ep, b, oy, orow);
        if done < cout {
            direct_row_with(isa, input, filter, cout, geom, ep, b, oy, done, orow);
        }
    };
    let work = out.len() * geom.kernel.0 * geom.kernel.1 * geom.input[3];
    if work >= 1 << 16 {
        let rows = out.len() / (geom.output.1 * cout);
        out.par_chunks_mut(geom.output.1 * cout)
            .enumerate()
            .with_max_len(crate::threads::grain(rows, 1))
            .for_each(row);
    } else {
        out.chunks_mut(geom.output.1 * cout)
            .enumerate()
            .for_each(row);
    }
}

multiversion! {
    /// One output row (`ow` pixels × `cin*mult` channels) of a depthwise convolution.
    fn depthwise_row / depthwise_row_with(
        input: &[f32],
        filter: &[f32],
        mult: usize,
        geom: &Window2d,
        b: usize,
        oy: usize,
        orow: &mut [f32],
    ) {
        let cin = geom.input[3];
        let cout = cin * mult;
        let mut taps = Vec::with_capacity(geom.kernel.0 * geom.kernel.1);
        for (ox, o) in orow.chunks_exact_mut(cout).enumerate() {
            window_taps(geom, b, oy, ox, &mut taps);
            if mult == 1 {
                // Accumulators stay in registers across the taps of a channel block.
                let mut c0 = 0;
                while c0 + CBLOCK <= cin {
                    depthwise_block::<CBLOCK>(input, filter, cout, &taps, c0, o);
                    c0 += CBLOCK;
                }
                while c0 + 8 <= cin {
                    depthwise_block::<8>(input, filter, cout, &taps, c0, o);
                    c0 += 8;
                }
                while c0 < cin {
                    depthwise_block::<1>(input, filter, cout, &taps, c0, o);
                    c0 += 1;
                }
                continue;
            }
            o.fill(0.0);
            for &(src, tap) in &taps {
                let iv = &input[src..src + cin];
                let fv = &filter[tap * cout..(tap + 1) * cout];
                for ((oc, fc), &x) in o.chunks_exact_mut(mult).zip(fv.chunks_exact(mult)).zip(iv) {
                    for (ov, &f) in oc.iter_mut().zip(fc) {
                        *ov += x * f;
                    }
                }
            }
        }
    }
}

/// Depthwise 2-D convolution, NHWC (TF `DepthwiseConv2dNative`):
/// `out[b, oy, ox, c*mult + q] = Σ_{ky, kx} in[b, iy, ix, c] · filter[ky, kx, c, q]`.
///
/// * `input`: `[n, h, w, cin]` (`geom.input`); `filter`: `[kh, kw, cin, mult]`;
/// * `out`: `[n, oh, ow, cin*mult]`, overwritten.
///
/// Direct algorithm vectorized over channels, parallel over output rows. Each output sums
/// its taps in `(ky, kx)` order; with a multiplier of 1 on AVX2 / AVX-512 the explicit
/// kernels of `depthwise.rs` run (fused multiply-adds, epilogue per tile of pixels).
///
/// # Panics
///
/// If a stride or dilation is 0, or the slice lengths do not match the shapes.
pub fn depthwise_conv2d_nhwc_f32(
    input: &[f32],
    filter: &[f32],
    mult: usize,
    geom: &Window2d,
    out: &mut [f32],
) {
    depthwise_conv2d_nhwc_f32_with(crate::simd::Isa::best(), input, filter, mult, geom, out)
}

/// [`depthwise_conv2d_nhwc_f32`] on an explicit instruction set (for tests and benchmarks).
///
/// # Panics
///
/// As [`depthwise_conv2d_nhwc_f32`].
pub fn depthwise_conv2d_nhwc_f32_with(
    isa: crate::simd::Isa,
    input: &[f32],
    filter: &[f32],
    mult: usize,
    geom: &Window2d,
    out: &mut [f32],
) {
    depthwise_conv2d_nhwc_f32_ep(isa, input, filter, mult, geom, &Epilogue::default(), out)
}

/// [`depthwise_conv2d_nhwc_f32_with`] followed by a per-output-channel [`Epilogue`],
/// applied to each output row right after it is computed.
///
/// # Panics
///
/// As [`depthwise_conv2d_nhwc_f32`], or if an epilogue vector is not `cin*mult` long.
pub fn depthwise_conv2d_nhwc_f32_ep(
    isa: crate::simd::Isa,
    input: &[f32],
    filter: &[f32],
    mult: usize,
    geom: &Window2d,
    ep: &Epilogue<'_>,
    out: &mut [f32],
) {
    geom.validate("depthwise_conv2d");
    ep.validate(geom.input[3] * mult);
    let [n, h, w, cin] = geom.input;
    let (kh, kw) = geom.kernel;
    let (oh, ow) = geom.output;
    assert_eq!(
        input.len(),
        n * h * w * cin,
        "depthwise_conv2d: input length"
    );
    assert_eq!(
        filter.len(),
        kh * kw * cin * mult,
        "depthwise_conv2d: filter length"
    );
    assert_eq!(
        out.len(),
        geom.out_len(cin * mult),
        "depthwise_conv2d: output length"
    );
    if out.is_empty() {
        return;
    }
    let row = |(r, orow): (usize, &mut [f32])| {
        let (b, oy) = (r / oh, r % oh);
        if mult == 1 && depthwise::row_mult1(isa, input, filter, geom, ep, b, oy, orow) {
            return;
        }
        depthwise_row_with(isa, input, filter, mult, geom, b, oy, orow);
        crate::epilogue::apply_rows_with(isa, ep, orow, cin * mult);
    };
    if out.len() * kh * kw >= 1 << 16 {
        out.par_chunks_mut(ow * cin * mult)
            .enumerate()
            .with_max_len(crate::threads::grain(n * oh, 1))
            .for_each(row);
    } else {
        out.chunks_mut(ow * cin * mult).enumerate().for_each(row);
    }
}

/// Max (`IS_MAX`) or sum of the window elements of `N` channels from `c0`, then the
/// average's division, written to `o`. Max starts at `f32::MIN` and keeps the running value
/// unless `x > running` (so NaN only wins when first).
#[inline(always)]
fn pool_block<const N: usize, const IS_MAX: bool>(
    input: &[f32],
    taps: &[(usize, usize)],
    c0: usize,
    o: &mut [f32],
) {
    let mut acc = [if IS_MAX { f32::MIN } else { 0.0 }; N];
    for &(src, _) in taps {
        let x = &input[src + c0..src + c0 + N];
        for (a, &x) in acc.iter_mut().zip(x) {
            *a = if IS_MAX {
                if x > *a {
                    x
                } else {
                    *a
                }
            } else {
                *a + x
            };
        }
    }
    if !IS_MAX && taps.len() > 1 {
        let div = taps.len() as f32;
        for a in &mut acc {
            *a /= div;
        }
    }
    o[c0..c0 + N].copy_from_slice(&acc);
}

#[inline(always)]
fn pool_pixel<const IS_MAX: bool>(input: &[f32], taps: &[(usize, usize)], o: &mut [f32]) {
    let c = o.len();
    let mut c0 = 0;
    while c0 + CBLOCK <= c {
        pool_block::<CBLOCK, IS_MAX>(input, taps, c0, o);
        c0 += CBLOCK;
    }
    while c0 + 8 <= c {
        pool_block::<8, IS_MAX>(input, taps, c0, o);
        c0 += 8;
    }
    while c0 < c {
        pool_block::<1, IS_MAX>(input, taps, c0, o);
        c0 += 1;
    }
}

multiversion! {
    /// One output row of max (`is_max`) or average pooling.
    fn pool_row / pool_row_with(
        input: &[f32],
        geom: &Window2d,
        is_max: bool,
        b: usize,
        oy: usize,
        orow: &mut [f32],
    ) {
        let c = geom.input[3];
        let mut taps = Vec::with_capacity(geom.kernel.0 * geom.kernel.1);
        for (ox, o) in orow.chunks_exact_mut(c).enumerate() {
            window_taps(geom, b, oy, ox, &mut taps);
            if is_max {
                pool_pixel::<true>(input, &taps, o);
            } else {
                pool_pixel::<false>(input, &taps, o);
            }
        }
    }
}

fn pool(isa: crate::simd::Isa, input: &[f32], geom: &Window2d, is_max: bool, out: &mut [f32]) {
    geom.validate("pool");
    let [n, h, w, c] = geom.input;
    let (oh, ow) = geom.output;
    assert_eq!(input.len(), n * h * w * c, "pool: input length");
    assert_eq!(out.len(), geom.out_len(c), "pool: output length");
    if out.is_empty() {
        return;
    }
    let row = |(r, orow): (usize, &mut [f32])| {
        pool_row_with(isa, input, geom, is_max, r / oh, r % oh, orow)
    };
    if out.len() * geom.kernel.0 * geom.kernel.1 >= 1 << 16 {
        out.par_chunks_mut(ow * c)
            .enumerate()
            .with_max_len(crate::threads::grain(n * oh, 1))
            .for_each(row);
    } else {
        out.chunks_mut(ow * c).enumerate().for_each(row);
    }
}

/// Max pooling over NHWC `f32` (TF `MaxPool`): `out[b, oy, ox, c]` is the maximum of the
/// in-bounds window elements (padding is skipped, never compared). An output whose window
/// has no in-bounds element is `f32::MIN` (TF's "lowest" initial value). NaN inputs are not
/// propagated unless first in the window.
///
/// `geom.dilations` must be `(1, 1)` for TF semantics (other values dilate the window).
///
/// # Panics
///
/// If a stride is 0, or the slice lengths do not match `geom` (`out` is `[n, oh, ow, c]`).
pub fn max_pool_nhwc_f32(input: &[f32], geom: &Window2d, out: &mut [f32]) {
    pool(crate::simd::Isa::best(), input, geom, true, out)
}

/// Average pooling over NHWC `f32` (TF `AvgPool`).
///
/// Each output is the sum of the **in-bounds** window elements divided by their count:
/// padded positions are excluded from both numerator and denominator. This is TensorFlow's
/// semantics for `SAME` padding (a 3×3 window at a corner averages 4 values, not 9). An
/// output whose window has no in-bounds element is 0.
///
/// # Panics
///
/// If a stride is 0, or the slice lengths do not match `geom` (`out` is `[n, oh, ow, c]`).
pub fn avg_pool_nhwc_f32(input: &[f32], geom: &Window2d, out: &mut [f32]) {
    pool(crate::simd::Isa::best(), input, geom, false, out)
}

/// [`max_pool_nhwc_f32`] (`is_max`) or [`avg_pool_nhwc_f32`] on an explicit instruction set.
///
/// # Panics
///
/// As those functions.
pub fn pool_nhwc_f32_with(
    isa: crate::simd::Isa,
    input: &[f32],
    geom: &Window2d,
    is_max: bool,
    out: &mut [f32],
) {
    pool(isa, input, geom, is_max, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::Isa;
    use crate::testutil::Rng;

    fn naive_conv(
        input: &[f32],
        filter: &[f32],
        cout: usize,
        g: &Window2d,
        depthwise_mult: Option<usize>,
    ) -> Vec<f32> {
        let [n, h, w, cin] = g.input;
        let (kh, kw) = g.kernel;
        let (oh, ow) = g.output;
        let co_total = depthwise_mult.map_or(cout, |m| cin * m);
        let mut out = vec![0.0f32; n * oh * ow * co_total];
        for b in 0..n {
            for oy in 0..oh {
                for ox in 0..ow {
                    for co in 0..co_total {
                        let mut s = 0.0f64;
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (oy * g.strides.0 + ky * g.dilations.0) as isize
                                    - g.pads.0 as isize;
                                let ix = (ox * g.strides.1 + kx * g.dilations.1) as isize
                                    - g.pads.1 as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                    continue;
                                }
                                let base = ((b * h + iy as usize) * w + ix as usize) * cin;
                                match depthwise_mult {
                                    None => {
                                        for ci in 0..cin {
                                            s += input[base + ci] as f64
                                                * filter[((ky * kw + kx) * cin + ci) * cout + co]
                                                    as f64;
                                        }
                                    }
                                    Some(m) => {
                                        let ci = co / m;
                                        s += input[base + ci] as f64
                                            * filter[(ky * kw + kx) * cin * m + co] as f64;
                                    }
                                }
                            }
                        }
                        out[((b * oh + oy) * ow + ox) * co_total + co] = s as f32;
                    }
                }
            }
        }
        out
    }

    fn close(a: &[f32], b: &[f32], tol: f32) {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= tol * (1.0 + y.abs()), "at {i}: {x} vs {y}");
        }
    }

    fn geoms() -> Vec<(Window2d, usize)> {
        let g = |input, kernel, strides, dilations, pads, output| Window2d {
            input,
            kernel,
            strides,
            dilations,
            pads,
            output,
        };
        vec![
            (g([2, 5, 6, 3], (1, 1), (1, 1), (1, 1), (0, 0), (5, 6)), 4),
            (g([1, 7, 7, 5], (1, 1), (2, 2), (1, 1), (0, 0), (4, 4)), 6),
            (g([2, 6, 5, 3], (3, 3), (1, 1), (1, 1), (1, 1), (6, 5)), 7),
            (g([1, 9, 8, 4], (3, 2), (2, 3), (1, 1), (1, 0), (5, 3)), 5),
            (g([1, 9, 9, 2], (3, 3), (1, 1), (2, 2), (2, 2), (9, 9)), 3),
            (
                g([3, 20, 20, 16], (3, 3), (1, 1), (1, 1), (1, 1), (20, 20)),
                32,
            ),
            // 43 channels: a 32-wide block, an 8-wide block and 3 single channels.
            (g([2, 7, 6, 43], (3, 3), (2, 2), (1, 1), (1, 1), (4, 3)), 9),
        ]
    }

    #[test]
    fn conv2d_matches_naive() {
        let mut rng = Rng::new(11);
        for (g, cout) in geoms() {
            let [n, h, w, cin] = g.input;
            let input = rng.vec_f32(n * h * w * cin);
            let filter = rng.vec_f32(g.kernel.0 * g.kernel.1 * cin * cout);
            let mut out = vec![f32::NAN; g.out_len(cout)];
            conv2d_nhwc_f32(&input, &filter, cout, &g, &mut out);
            close(&out, &naive_conv(&input, &filter, cout, &g, None), 1e-4);
        }
    }

    #[test]
    fn depthwise_matches_naive_all_isas() {
        let mut rng = Rng::new(12);
        for (g, mult) in geoms() {
            let mult = mult % 3 + 1;
            let [n, h, w, cin] = g.input;
            let input = rng.vec_f32(n * h * w * cin);
            let filter = rng.vec_f32(g.kernel.0 * g.kernel.1 * cin * mult);
            let want = naive_conv(&input, &filter, 0, &g, Some(mult));
            for isa in Isa::available() {
                let mut out = vec![f32::NAN; g.out_len(cin * mult)];
                depthwise_conv2d_nhwc_f32_with(isa, &input, &filter, mult, &g, &mut out);
                close(&out, &want, 1e-5);
            }
        }
    }

    /// Depthwise geometries for the vector kernels: channel counts around the vector
    /// widths, 3×3 / 5×5, strides 1 and 2, SAME-style borders, a dilation, rows wide enough
    /// for interior tiles.
    fn dw_geoms() -> Vec<Window2d> {
        let g =
            |input, kernel: (usize, usize), strides: (usize, usize), dil, pads, output| Window2d {
                input,
                kernel,
                strides,
                dilations: dil,
                pads,
                output,
            };
        vec![
            g([1, 9, 13, 16], (3, 3), (1, 1), (1, 1), (1, 1), (9, 13)),
            g([2, 8, 11, 19], (3, 3), (2, 2), (1, 1), (0, 0), (3, 5)),
            g([1, 12, 15, 35], (5, 5), (1, 1), (1, 1), (2, 2), (12, 15)),
            g([1, 11, 17, 48], (5, 5), (2, 2), (1, 1), (1, 2), (5, 8)),
            g([1, 10, 14, 24], (3, 3), (1, 1), (2, 2), (2, 2), (10, 14)),
            g([1, 3, 2, 7], (3, 3), (1, 1), (1, 1), (1, 1), (3, 2)),
            g([1, 4, 20, 5], (1, 7), (1, 3), (1, 1), (0, 3), (4, 7)),
            // Several channel-vector blocks and their tails (6·16 + 4; 9·16), small maps
            // where every pixel is a border pixel.
            g([1, 7, 7, 100], (5, 5), (1, 1), (1, 1), (2, 2), (7, 7)),
            g([1, 9, 14, 144], (3, 3), (2, 2), (1, 1), (0, 1), (4, 7)),
            g([1, 6, 11, 200], (3, 3), (1, 1), (1, 1), (1, 1), (6, 11)),
            // One tile over both borders of a row (3×3 on 4 columns, 5×5 / 2 on 7 columns
            // with TF's SAME pads), rows of 5 and 6 (the last tile overlaps the one before).
            g([1, 4, 4, 32], (3, 3), (1, 1), (1, 1), (1, 1), (4, 4)),
            g([1, 7, 7, 40], (5, 5), (2, 2), (1, 1), (1, 1), (4, 4)),
            g([1, 5, 5, 21], (5, 5), (1, 1), (1, 1), (2, 2), (5, 5)),
            g([2, 6, 12, 64], (3, 3), (2, 2), (1, 1), (0, 0), (3, 6)),
        ]
    }

    /// The vector depthwise kernels (sliding rows for 3×3 / 5×5 at stride 1 and 2, the
    /// general tap loop otherwise) sum each output's taps in `(ky, kx)` order with fused
    /// multiply-adds from zero: bit-identical to that loop written out per output.
    #[test]
    fn depthwise_vector_kernels_are_bit_identical_to_fma_taps_in_order() {
        use crate::epilogue::{Activation, ChannelOp};
        let mut rng = Rng::new(24);
        for g in dw_geoms() {
            let [n, h, w, c] = g.input;
            let (kh, kw) = g.kernel;
            let (oh, ow) = g.output;
            let input = rng.vec_f32(n * h * w * c);
            let filter = rng.vec_f32(kh * kw * c);
            let bias = rng.vec_f32(c);
            let ops = [ChannelOp::Add(&bias)];
            let ep = Epilogue {
                ops: &ops,
                act: Activation::Relu6,
            };
            let mut want = vec![0.0f32; g.out_len(c)];
            for b in 0..n {
                for oy in 0..oh {
                    for ox in 0..ow {
                        for ch in 0..c {
                            let mut acc = 0.0f32;
                            for ky in 0..kh {
                                for kx in 0..kw {
                                    if let (Some(iy), Some(ix)) = (g.in_y(oy, ky), g.in_x(ox, kx)) {
                                        let x = input[((b * h + iy) * w + ix) * c + ch];
                                        acc = x.mul_add(filter[(ky * kw + kx) * c + ch], acc);
                                    }
                                }
                            }
                            want[((b * oh + oy) * ow + ox) * c + ch] = acc;
                        }
                    }
                }
            }
            crate::epilogue::apply_rows_with(Isa::Scalar, &ep, &mut want, c);
            for isa in Isa::available().into_iter().filter(|&i| i != Isa::Scalar) {
                let mut out = vec![f32::NAN; g.out_len(c)];
                depthwise_conv2d_nhwc_f32_ep(isa, &input, &filter, 1, &g, &ep, &mut out);
                let same = out
                    .iter()
                    .zip(&want)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{isa:?} {g:?}");
            }
        }
    }

    #[test]
    fn depthwise_vector_kernels_match_naive_with_epilogue() {
        use crate::epilogue::{Activation, ChannelOp};
        let mut rng = Rng::new(21);
        for g in dw_geoms() {
            let [n, h, w, c] = g.input;
            let input = rng.vec_f32(n * h * w * c);
            let filter = rng.vec_f32(g.kernel.0 * g.kernel.1 * c);
            let bias = rng.vec_f32(c);
            let scale = rng.vec_f32(c);
            let ops = [ChannelOp::Mul(&scale), ChannelOp::Add(&bias)];
            let plain = naive_conv(&input, &filter, 0, &g, Some(1));
            for act in [Activation::None, Activation::Relu6, Activation::Swish] {
                let ep = Epilogue { ops: &ops, act };
                let mut want = plain.clone();
                crate::epilogue::apply_rows_with(Isa::Scalar, &ep, &mut want, c);
                for isa in Isa::available() {
                    let mut out = vec![f32::NAN; g.out_len(c)];
                    depthwise_conv2d_nhwc_f32_ep(isa, &input, &filter, 1, &g, &ep, &mut out);
                    close(&out, &want, 1e-5);
                }
            }
        }
    }

    #[test]
    fn direct_vector_rows_are_bit_identical_to_portable() {
        use crate::epilogue::{Activation, ChannelOp};
        let mut rng = Rng::new(23);
        let g = |input, kernel, strides, dilations, pads, output| Window2d {
            input,
            kernel,
            strides,
            dilations,
            pads,
            output,
        };
        let cases = [
            // MobileNet / EfficientNet stem (folded asymmetric pad), ResNet's 7x7 stem.
            (
                g([1, 17, 19, 3], (3, 3), (2, 2), (1, 1), (0, 0), (9, 10)),
                32,
            ),
            (
                g([2, 23, 21, 3], (7, 7), (2, 2), (1, 1), (3, 3), (12, 11)),
                64,
            ),
            // Channel tails: 40 = 2·16 + 8, 5 (no whole vector), 24 on AVX-512.
            (
                g([1, 9, 13, 4], (3, 3), (1, 1), (1, 1), (1, 1), (9, 13)),
                40,
            ),
            (g([1, 6, 7, 2], (3, 3), (1, 1), (1, 1), (1, 1), (6, 7)), 5),
            (g([1, 8, 12, 1], (5, 5), (1, 2), (2, 1), (4, 2), (8, 6)), 24),
            // Narrower than a tile.
            (g([1, 3, 2, 3], (3, 3), (1, 1), (1, 1), (1, 1), (3, 2)), 16),
        ];
        for (g, cout) in cases {
            let [n, h, w, cin] = g.input;
            let input = rng.vec_f32(n * h * w * cin);
            let filter = rng.vec_f32(g.kernel.0 * g.kernel.1 * cin * cout);
            let scale = rng.vec_f32(cout);
            let bias = rng.vec_f32(cout);
            let ops = [ChannelOp::Mul(&scale), ChannelOp::Add(&bias)];
            for act in [Activation::None, Activation::Relu6, Activation::Swish] {
                let ep = Epilogue { ops: &ops, act };
                let mut want = vec![f32::NAN; g.out_len(cout)];
                direct_conv(Isa::Scalar, &input, &filter, cout, &g, &ep, &mut want);
                let mut plain = naive_conv(&input, &filter, cout, &g, None);
                ep.apply_rows(&mut plain, cout);
                close(&want, &plain, 1e-4);
                for isa in Isa::available() {
                    let mut got = vec![f32::NAN; g.out_len(cout)];
                    direct_conv(isa, &input, &filter, cout, &g, &ep, &mut got);
                    let same = got
                        .iter()
                        .zip(&want)
                        .all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(same, "{isa:?} {g:?} cout {cout} {act:?}");
                }
            }
        }
    }

    #[test]
    fn conv2d_prepacked_with_epilogue_matches_naive() {
        use crate::epilogue::{Activation, ChannelOp};
        let mut rng = Rng::new(22);
        let mut gs: Vec<(Window2d, usize)> = geoms();
        gs.extend(dw_geoms().into_iter().map(|g| (g, 21)));
        for (g, cout) in gs {
            let [n, h, w, cin] = g.input;
            let input = rng.vec_f32(n * h * w * cin);
            let filter = rng.vec_f32(g.kernel.0 * g.kernel.1 * cin * cout);
            let bias = rng.vec_f32(cout);
            let ops = [ChannelOp::Add(&bias)];
            let ep = Epilogue {
                ops: &ops,
                act: Activation::Relu,
            };
            let mut want = naive_conv(&input, &filter, cout, &g, None);
            ep.apply_rows(&mut want, cout);
            let kdim = g.kernel.0 * g.kernel.1 * cin;
            let packed = pack_conv_filter(&filter, kdim, cout);
            for p in [None, Some(&packed)] {
                let mut out = vec![f32::NAN; g.out_len(cout)];
                conv2d_nhwc_f32_packed(&input, &filter, p, cout, &g, &ep, &mut out);
                close(&out, &want, 1e-4);
            }
        }
    }

    #[test]
    fn pools_match_naive_all_isas() {
        let mut rng = Rng::new(13);
        for (mut g, _) in geoms() {
            g.dilations = (1, 1);
            let [n, h, w, c] = g.input;
            let input = rng.vec_f32(n * h * w * c);
            let (oh, ow) = g.output;
            let mut want_max = vec![0.0f32; g.out_len(c)];
            let mut want_avg = vec![0.0f32; g.out_len(c)];
            for b in 0..n {
                for oy in 0..oh {
                    for ox in 0..ow {
                        for ch in 0..c {
                            let (mut mx, mut s, mut cnt) = (f32::MIN, 0.0f64, 0);
                            for ky in 0..g.kernel.0 {
                                for kx in 0..g.kernel.1 {
                                    let iy = (oy * g.strides.0 + ky) as isize - g.pads.0 as isize;
                                    let ix = (ox * g.strides.1 + kx) as isize - g.pads.1 as isize;
                                    if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                        continue;
                                    }
                                    let v =
                                        input[((b * h + iy as usize) * w + ix as usize) * c + ch];
                                    mx = mx.max(v);
                                    s += v as f64;
                                    cnt += 1;
                                }
                            }
                            let o = ((b * oh + oy) * ow + ox) * c + ch;
                            want_max[o] = mx;
                            want_avg[o] = if cnt == 0 {
                                0.0
                            } else {
                                (s / cnt as f64) as f32
                            };
                        }
                    }
                }
            }
            for isa in Isa::available() {
                let mut out = vec![f32::NAN; g.out_len(c)];
                pool_nhwc_f32_with(isa, &input, &g, true, &mut out);
                assert_eq!(out, want_max);
                pool_nhwc_f32_with(isa, &input, &g, false, &mut out);
                close(&out, &want_avg, 1e-6);
            }
        }
        // SAME-padding corner: 3x3 window over a 2x2 input of ones averages 4 values.
        let g = Window2d {
            input: [1, 2, 2, 1],
            kernel: (3, 3),
            strides: (1, 1),
            dilations: (1, 1),
            pads: (1, 1),
            output: (2, 2),
        };
        let mut out = [0.0f32; 4];
        avg_pool_nhwc_f32(&[1.0, 2.0, 3.0, 4.0], &g, &mut out);
        assert_eq!(out, [2.5; 4]);
        max_pool_nhwc_f32(&[1.0, 2.0, 3.0, 4.0], &g, &mut out);
        assert_eq!(out, [4.0; 4]);
    }
}

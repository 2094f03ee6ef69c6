//! Winograd F(2×2, 3×3) convolution for 3×3, stride-1, undilated `Conv2D` with enough
//! channels that the GEMM dominates (ResNet's, VGG's and Inception's 3×3 layers).
//!
//! Each 2×2 block of output pixels ("tile") is computed from the 4×4 input patch that covers
//! its windows: `Y = Aᵀ · [ (G g Gᵀ) ⊙ (Bᵀ d B) ] · A` (Lavin & Gray, "Fast Algorithms for
//! Convolutional Neural Networks", 2015). The element-wise product, summed over input
//! channels, is 16 independent GEMMs, one per transform point `t`:
//! `M_t[tile, co] = Σ_ci V_t[tile, ci] · U_t[ci, co]`, which run on the packed GEMM with
//! `U_t` packed once per filter ([`WinogradFilter`], cached by the `Conv2D` op like the
//! direct path's packing). A tile needs 16 products per channel pair instead of 36: 2.25×
//! fewer multiply-adds, paid for by the input and output transforms (additions only; the
//! transform coefficients are 0, ±1 and ±½, all exact in `f32`).
//!
//! # Summation order (numerics)
//!
//! The direct path sums `x·w` over `(ky, kx, ci)` in one chain. Here the sum is regrouped:
//! the input transform first forms differences and sums of input pixels (one rounding each,
//! two levels), the filter transform is computed in `f64` and rounded once, each point's GEMM
//! sums over `ci`, and the output transform adds 9 of the 16 point results per output (two
//! levels). The result differs from the direct path by rounding of the intermediate sums,
//! which can be larger than the output when neighbouring pixels cancel: the error is bounded
//! by a few ulps of `Σ |x|·|w|` over the window, as for the direct path, times a small constant
//! (the transforms at most quadruple magnitudes). Tested against an `f64` reference in
//! `conv::tests`.
//!
//! Work is split into blocks of tiles: each block's input transform (`V`, `16 × tiles × cin`),
//! 16 GEMMs and output transform (with the epilogue) run on one thread while `V` and `M`
//! stay in L2, blocks split evenly over the pool. When that would make blocks of fewer than
//! 48 tiles (small maps at batch 1), the three phases run one after another over all tiles,
//! each split over the pool (the GEMMs over the 16 points).
//!
//! `TFHUB_NO_WINOGRAD=1` in the environment (read once) turns the path off, for comparisons.

use super::Window2d;
use crate::epilogue::Epilogue;
use crate::gemm::{gemm_packed_f32_with, PackedB};
use crate::simd::{multiversion, Isa};
use rayon::prelude::*;
use std::cell::RefCell;

/// Fewest tiles per block when splitting blocks over the pool; smaller splits run the three
/// phases over the whole map instead ([`whole`]).
const MIN_BLOCK: usize = 48;

/// Transform points per tile (4×4).
const POINTS: usize = 16;
/// Output tile side.
const TILE: usize = 2;
/// Channels per step of the transforms (a few AVX-512 vectors; the temporaries stay in L1).
const CH: usize = 64;

/// Minimum input and output channels for the Winograd path. Measured on one Zen 4 core
/// (thread CPU time, AVX-512, against the im2col + packed GEMM path): 16 → 16 channels at
/// 56×56 ran 1.07× faster, 32 → 16 at 112×112 1.49×, 64 → 64 at 56×56 1.48×, 256 → 256 at
/// 14×14 1.8×. Below 16 the per-point GEMMs are thinner than a microkernel tile and the
/// transforms cost more than they save.
const MIN_CHANNELS: usize = 16;

/// Minimum tiles (2×2 output blocks over the batch) for the Winograd path. Each point's GEMM
/// streams its whole `cin × cout` filter transform, 16/9 the bytes of the filter, for `tiles`
/// rows: with few rows (ResNet's 7×7 maps at batch 1: 16 tiles) the product is bound by
/// reading the weights, which are cold in a whole model, and the direct path reads fewer.
const MIN_TILES: usize = 40;

/// True if the Winograd path is disabled by `TFHUB_NO_WINOGRAD=1`.
fn disabled() -> bool {
    static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OFF.get_or_init(|| {
        std::env::var_os("TFHUB_NO_WINOGRAD").is_some_and(|v| !v.is_empty() && v != "0")
    })
}

/// True if `Conv2D` with this geometry and `cout` output channels runs as Winograd
/// F(2×2, 3×3): a 3×3 kernel, stride 1, no dilation, at least 16 input and output channels,
/// an output at least 2×2 with at least 40 tiles over the batch, and `TFHUB_NO_WINOGRAD`
/// unset.
pub fn conv2d_uses_winograd(geom: &Window2d, cout: usize) -> bool {
    geom.kernel == (3, 3)
        && geom.strides == (1, 1)
        && geom.dilations == (1, 1)
        && geom.input[3] >= MIN_CHANNELS
        && cout >= MIN_CHANNELS
        && geom.output.0 >= TILE
        && geom.output.1 >= TILE
        && geom.input[0] * geom.output.0.div_ceil(TILE) * geom.output.1.div_ceil(TILE) >= MIN_TILES
        && !disabled()
}

/// A 3×3 HWIO filter transformed for F(2×2, 3×3): `U_t = G g Gᵀ` for each of the 16 points,
/// each packed as the `cin × cout` right-hand side of the point's GEMM.
#[derive(Debug, Clone)]
pub struct WinogradFilter {
    cin: usize,
    cout: usize,
    points: Vec<PackedB>,
}

impl WinogradFilter {
    /// Floats a transformed `cin × cout` filter occupies (for memory caps); `None` on overflow.
    pub fn packed_len(cin: usize, cout: usize) -> Option<usize> {
        PackedB::packed_len(Isa::best(), cin, cout)?.checked_mul(POINTS)
    }

    /// Floats held.
    pub fn len(&self) -> usize {
        self.points.iter().map(PackedB::len).sum()
    }

    /// True if the filter holds no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Input channels.
    pub fn cin(&self) -> usize {
        self.cin
    }

    /// Output channels.
    pub fn cout(&self) -> usize {
        self.cout
    }
}

/// `G` of F(2×2, 3×3).
const G: [[f64; 3]; 4] = [
    [1.0, 0.0, 0.0],
    [0.5, 0.5, 0.5],
    [0.5, -0.5, 0.5],
    [0.0, 0.0, 1.0],
];

/// Transforms and packs the HWIO filter `[3, 3, cin, cout]` for the best instruction set.
///
/// # Panics
///
/// If `filter` is not `9 * cin * cout` long.
pub fn pack_winograd_filter(filter: &[f32], cin: usize, cout: usize) -> WinogradFilter {
    pack_winograd_filter_with(Isa::best(), filter, cin, cout)
}

/// [`pack_winograd_filter`] for an explicit instruction set (clamped to the CPU).
///
/// # Panics
///
/// As [`pack_winograd_filter`].
pub fn pack_winograd_filter_with(
    isa: Isa,
    filter: &[f32],
    cin: usize,
    cout: usize,
) -> WinogradFilter {
    assert_eq!(filter.len(), 9 * cin * cout, "winograd: filter length");
    let plane = cin * cout;
    // One point at a time: U_t = Σ_{k,l} G[i][k] · G[j][l] · g[k][l] over the taps with a
    // non-zero coefficient, accumulated in f64 (streaming over the filter planes, so the
    // loop vectorizes) and rounded once.
    let mut acc = vec![0.0f64; plane];
    let mut u = vec![0.0f32; plane];
    let points = (0..POINTS)
        .map(|t| {
            let (i, j) = (t / 4, t % 4);
            acc.fill(0.0);
            for k in 0..3 {
                for l in 0..3 {
                    let c = G[i][k] * G[j][l];
                    if c != 0.0 {
                        let g = &filter[(k * 3 + l) * plane..][..plane];
                        for (a, &gv) in acc.iter_mut().zip(g) {
                            *a += c * gv as f64;
                        }
                    }
                }
            }
            for (uv, &a) in u.iter_mut().zip(&acc) {
                *uv = a as f32;
            }
            PackedB::new_with(isa, cin, cout, &u, (cout, 1))
        })
        .collect();
    WinogradFilter { cin, cout, points }
}

/// Output pointer shared by tasks that write disjoint output pixels.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: tasks write disjoint tiles of the output (see the use sites).
unsafe impl Send for OutPtr {}
// SAFETY: as above.
unsafe impl Sync for OutPtr {}

thread_local! {
    /// `(V, M)` scratch of the current thread for one block of tiles.
    static SCRATCH: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Tile geometry shared by the phases.
#[derive(Clone, Copy)]
struct Tiles {
    /// Tiles per image row and column.
    th: usize,
    tw: usize,
    total: usize,
}

impl Tiles {
    /// `(b, ty, tx)` of flat tile `t`.
    #[inline(always)]
    fn at(&self, t: usize) -> (usize, usize, usize) {
        let per = self.th * self.tw;
        (t / per, (t % per) / self.tw, t % self.tw)
    }
}

/// [`conv2d_winograd_f32`] on an explicit instruction set for the transforms (the GEMMs use
/// the filter's packing).
///
/// # Panics
///
/// As [`conv2d_winograd_f32`].
pub fn conv2d_winograd_f32_with(
    isa: Isa,
    input: &[f32],
    wf: &WinogradFilter,
    geom: &Window2d,
    ep: &Epilogue<'_>,
    out: &mut [f32],
) {
    let [n, h, w, cin] = geom.input;
    let (oh, ow) = geom.output;
    let cout = wf.cout;
    assert!(
        geom.kernel == (3, 3) && geom.strides == (1, 1) && geom.dilations == (1, 1),
        "winograd: needs a 3x3 stride-1 undilated window"
    );
    assert_eq!(wf.cin, cin, "winograd: filter input channels");
    assert_eq!(input.len(), n * h * w * cin, "winograd: input length");
    assert_eq!(out.len(), n * oh * ow * cout, "winograd: output length");
    ep.validate(cout);
    if out.is_empty() {
        return;
    }
    let tiles = Tiles {
        th: oh.div_ceil(TILE),
        tw: ow.div_ceil(TILE),
        total: n * oh.div_ceil(TILE) * ow.div_ceil(TILE),
    };
    // A block's V and M (16 points × tiles × channels) in about 512 KB of L2, in multiples of
    // 12 tiles (the row block of every GEMM kernel); the blocks split evenly over the pool.
    let cap = ((1 << 17) / (POINTS * (cin + cout))).clamp(1, 20) * 12;
    let threads = rayon::current_num_threads();
    let blocks = tiles.total.div_ceil(cap).div_ceil(threads) * threads;
    let tb = tiles.total.div_ceil(blocks).div_ceil(12) * 12;
    let blocks = tiles.total.div_ceil(tb);
    let op = OutPtr(out.as_mut_ptr());
    if threads > 1 && tb < MIN_BLOCK {
        // Blocks this small would each stream all 16 point filters for a few rows.
        whole(isa, input, wf, geom, ep, tiles, op);
        return;
    }
    let run_block = |blk: usize| {
        let t0 = blk * tb;
        let nt = (tiles.total - t0).min(tb);
        SCRATCH.with(|s| {
            let mut own = (Vec::new(), Vec::new());
            let mut held = s.try_borrow_mut().ok();
            let (v, m) = match held.as_deref_mut() {
                Some((v, m)) => (v, m),
                None => (&mut own.0, &mut own.1),
            };
            grow(v, POINTS * nt * cin);
            grow(m, POINTS * nt * cout);
            let (v, m) = (&mut v[..POINTS * nt * cin], &mut m[..POINTS * nt * cout]);
            let vp = OutPtr(v.as_mut_ptr());
            for i in 0..nt {
                input_tile_with(isa, input, geom, tiles.at(t0 + i), vp, nt, i);
            }
            let none = Epilogue::default();
            for (t, pb) in wf.points.iter().enumerate() {
                let (vt, mt) = (
                    &v[t * nt * cin..],
                    &mut m[t * nt * cout..(t + 1) * nt * cout],
                );
                gemm_packed_f32_with(false, nt, vt, (cin, 1), pb, mt, cout, &none);
            }
            for i in 0..nt {
                // SAFETY: tile t0 + i is written by this task only; its pixels lie inside
                // `out` (checked in output_tile).
                unsafe { finish_tile(isa, m, nt, i, geom, cout, tiles.at(t0 + i), ep, op) };
            }
        });
    };
    if threads > 1 {
        (0..blocks).into_par_iter().for_each(run_block);
    } else {
        (0..blocks).for_each(run_block);
    }
}

/// Conv2D (3×3, stride 1, no dilation, NHWC input, filter transformed by
/// [`pack_winograd_filter`]) by Winograd F(2×2, 3×3), then the epilogue on each output pixel.
/// Geometry as [`conv2d_nhwc_f32`](super::conv2d_nhwc_f32): `geom.pads` are the top/left
/// padding, positions outside the input read as zero.
///
/// # Panics
///
/// If the window is not 3×3 / stride 1 / undilated, the filter's input channels differ from
/// the input's, or a slice length does not match the shapes.
pub fn conv2d_winograd_f32(
    input: &[f32],
    wf: &WinogradFilter,
    geom: &Window2d,
    ep: &Epilogue<'_>,
    out: &mut [f32],
) {
    conv2d_winograd_f32_with(Isa::best(), input, wf, geom, ep, out)
}

fn grow(v: &mut Vec<f32>, len: usize) {
    if v.len() < len {
        v.resize(len, 0.0);
    }
}

/// The three phases over all tiles at once, each split over the pool: for few tiles (small
/// maps at batch 1), where blocks of tiles would leave workers idle.
fn whole(
    isa: Isa,
    input: &[f32],
    wf: &WinogradFilter,
    geom: &Window2d,
    ep: &Epilogue<'_>,
    tiles: Tiles,
    op: OutPtr,
) {
    let (cin, cout, nt) = (wf.cin, wf.cout, tiles.total);
    let mut v = vec![0.0f32; POINTS * nt * cin];
    let mut m = vec![0.0f32; POINTS * nt * cout];
    let vp = OutPtr(v.as_mut_ptr());
    let g = crate::threads::grain(nt, 4);
    (0..nt.div_ceil(g)).into_par_iter().for_each(|c| {
        // Tasks write the disjoint tiles c*g.. of every point plane of `v`.
        for i in c * g..((c + 1) * g).min(nt) {
            input_tile_with(isa, input, geom, tiles.at(i), vp, nt, i);
        }
    });
    let none = Epilogue::default();
    m.par_chunks_mut(nt * cout)
        .zip(v.par_chunks(nt * cin))
        .zip(wf.points.par_iter())
        .for_each(|((mt, vt), pb)| {
            gemm_packed_f32_with(false, nt, vt, (cin, 1), pb, mt, cout, &none);
        });
    (0..nt.div_ceil(g)).into_par_iter().for_each(|c| {
        for i in c * g..((c + 1) * g).min(nt) {
            // SAFETY: tile i is written by this task only.
            unsafe { finish_tile(isa, &m, nt, i, geom, cout, tiles.at(i), ep, op) };
        }
    });
}

/// `dst.copy_from_slice(src)`, as a fixed-length copy (vector moves, no `memcpy` call) for
/// runs of 64, 32 or 16 channels: the transforms copy 20 runs per tile.
#[inline(always)]
fn copy_run(dst: &mut [f32], src: &[f32]) {
    fn fixed<const N: usize>(dst: &mut [f32], src: &[f32]) -> bool {
        match (<&mut [f32; N]>::try_from(dst), <&[f32; N]>::try_from(src)) {
            (Ok(d), Ok(s)) => {
                *d = *s;
                true
            }
            _ => false,
        }
    }
    match dst.len() {
        CH => assert!(fixed::<CH>(dst, src)),
        32 => assert!(fixed::<32>(dst, src)),
        16 => assert!(fixed::<16>(dst, src)),
        _ => dst.copy_from_slice(src),
    }
}

multiversion! {
    /// Input transform of tile `(b, ty, tx)`: `V_t[i] = (Bᵀ d B)_t` for each point `t`, where
    /// `d` is the 4×4 input patch at `(2·ty - pad_top, 2·tx - pad_left)` (zero outside the
    /// input), written to `v[(t * nt + i) * cin ..][..cin]`. Contract (a private function,
    /// callers uphold it): `v` points at `16 * nt * cin` floats, and no other thread accesses
    /// this tile's rows during the call.
    fn input_tile / input_tile_with(
        input: &[f32],
        geom: &Window2d,
        tile: (usize, usize, usize),
        v: OutPtr,
        nt: usize,
        i: usize,
    ) {
        let cin = geom.input[3];
        let mut c0 = 0;
        while c0 < cin {
            // Arrays sized to the run, so narrow layers do not transform padding lanes.
            let ch = (cin - c0).min(CH);
            let at = (tile, nt, i, c0, ch);
            if ch > CH / 2 {
                input_chunk::<CH>(input, geom, v, at);
            } else if ch > CH / 4 {
                input_chunk::<{ CH / 2 }>(input, geom, v, at);
            } else {
                input_chunk::<{ CH / 4 }>(input, geom, v, at);
            }
            c0 += CH;
        }
    }
}

/// Where a transform chunk works: `(tile, nt, i, c0, ch)`, channels `c0..c0 + ch` of tile
/// `i` (coordinates `tile`) of a block of `nt`.
type ChunkAt = ((usize, usize, usize), usize, usize, usize, usize);

/// Channels `c0..c0 + ch` (`ch <= C`) of [`input_tile_with`] (same contract).
#[inline(always)]
fn input_chunk<const C: usize>(input: &[f32], geom: &Window2d, v: OutPtr, at: ChunkAt) {
    let [_, h, w, cin] = geom.input;
    let ((b, ty, tx), nt, i, c0, ch) = at;
    let y0 = (ty * TILE) as isize - geom.pads.0 as isize;
    let x0 = (tx * TILE) as isize - geom.pads.1 as isize;
    // The 16 pixels' channel runs, read in place when the run is a whole `C` (the usual
    // case: channel counts are multiples of 16); zeros outside the input; a zero-padded
    // copy for a ragged last run.
    let zeros = [0.0f32; C];
    let mut d: [[&[f32; C]; 4]; 4] = [[&zeros; 4]; 4];
    let whole = ch == C;
    let mut tails = if whole {
        None
    } else {
        Some([[[0.0f32; C]; 4]; 4])
    };
    let mut tails_rows = tails.as_mut().map(|t| t.iter_mut());
    for (r, drow) in d.iter_mut().enumerate() {
        let mut trow = tails_rows
            .as_mut()
            .and_then(|t| t.next())
            .map(|t| t.iter_mut());
        let y = y0 + r as isize;
        for (q, dv) in drow.iter_mut().enumerate() {
            let tv = trow.as_mut().and_then(|t| t.next());
            let x = x0 + q as isize;
            if y < 0 || y >= h as isize || x < 0 || x >= w as isize {
                continue;
            }
            let src = &input[((b * h + y as usize) * w + x as usize) * cin + c0..][..ch];
            match (<&[f32; C]>::try_from(src), tv) {
                (Ok(run), _) => *dv = run,
                (Err(_), Some(tv)) => {
                    tv[..ch].copy_from_slice(src);
                    *dv = tv;
                }
                (Err(_), None) => unreachable!("a ragged run has a tail buffer"),
            }
        }
    }
    // Columns of Bᵀ d: t0 = d0 - d2, t1 = d1 + d2, t2 = d2 - d1, t3 = d1 - d3 (rows).
    let mut t = [[[0.0f32; C]; 4]; 4];
    for q in 0..4 {
        for c in 0..C {
            let (d0, d1, d2, d3) = (d[0][q][c], d[1][q][c], d[2][q][c], d[3][q][c]);
            t[0][q][c] = d0 - d2;
            t[1][q][c] = d1 + d2;
            t[2][q][c] = d2 - d1;
            t[3][q][c] = d1 - d3;
        }
    }
    // (Bᵀ d) B: the same combination along each row.
    for (r, trow) in t.iter().enumerate() {
        let mut o = [[0.0f32; C]; 4];
        for c in 0..C {
            let (a0, a1, a2, a3) = (trow[0][c], trow[1][c], trow[2][c], trow[3][c]);
            o[0][c] = a0 - a2;
            o[1][c] = a1 + a2;
            o[2][c] = a2 - a1;
            o[3][c] = a1 - a3;
        }
        for (q, ov) in o.iter().enumerate() {
            let dst = ((r * 4 + q) * nt + i) * cin + c0;
            // SAFETY: row i of point plane r*4+q, inside V (caller's contract).
            let dst = unsafe { std::slice::from_raw_parts_mut(v.0.add(dst), ch) };
            copy_run(dst, &ov[..ch]);
        }
    }
}

multiversion! {
    /// Output transform of tile `(b, ty, tx)` from the point results
    /// `m[(t * nt + i) * cout ..][..cout]`: `Y = Aᵀ M A` (2×2 pixels), each pixel inside the
    /// output written to `out`. Contract (a private function, callers uphold it): `out` points
    /// at the `[n, oh, ow, cout]` output, and no other thread accesses this tile's pixels
    /// during the call.
    fn output_tile / output_tile_with(
        m: &[f32],
        nt: usize,
        i: usize,
        geom: &Window2d,
        cout: usize,
        tile: (usize, usize, usize),
        out: OutPtr,
    ) {
        let mut c0 = 0;
        while c0 < cout {
            let ch = (cout - c0).min(CH);
            let at = (tile, nt, i, c0, ch);
            if ch > CH / 2 {
                output_chunk::<CH>(m, geom, cout, out, at);
            } else if ch > CH / 4 {
                output_chunk::<{ CH / 2 }>(m, geom, cout, out, at);
            } else {
                output_chunk::<{ CH / 4 }>(m, geom, cout, out, at);
            }
            c0 += CH;
        }
    }
}

/// Channels `c0..c0 + ch` (`ch <= C`) of [`output_tile_with`] (same contract).
#[inline(always)]
fn output_chunk<const C: usize>(m: &[f32], geom: &Window2d, cout: usize, out: OutPtr, at: ChunkAt) {
    let (oh, ow) = geom.output;
    let ((b, ty, tx), nt, i, c0, ch) = at;
    let (y0, x0) = (ty * TILE, tx * TILE);
    let rows = (oh - y0).min(TILE);
    let cols = (ow - x0).min(TILE);
    let mut s = [[[0.0f32; C]; 4]; 2];
    // Aᵀ M: s0 = m0 + m1 + m2, s1 = m1 - m2 - m3 (rows of the 4×4 point grid).
    for q in 0..4 {
        let at = |r: usize| &m[((r * 4 + q) * nt + i) * cout + c0..][..ch];
        let (m0, m1, m2, m3) = (at(0), at(1), at(2), at(3));
        for c in 0..ch {
            s[0][q][c] = m0[c] + m1[c] + m2[c];
            s[1][q][c] = m1[c] - m2[c] - m3[c];
        }
    }
    for (r, srow) in s.iter().enumerate().take(rows) {
        let mut y = [[0.0f32; C]; 2];
        for c in 0..C {
            let (a0, a1, a2, a3) = (srow[0][c], srow[1][c], srow[2][c], srow[3][c]);
            y[0][c] = a0 + a1 + a2;
            y[1][c] = a1 - a2 - a3;
        }
        for (q, yv) in y.iter().enumerate().take(cols) {
            let o = ((b * oh + y0 + r) * ow + x0 + q) * cout + c0;
            // SAFETY: pixel (y0 + r, x0 + q) is inside the output (r < rows, q < cols) and
            // owned by this call (caller's contract).
            let dst = unsafe { std::slice::from_raw_parts_mut(out.0.add(o), ch) };
            copy_run(dst, &yv[..ch]);
        }
    }
}

/// The output transform of one tile ([`output_tile_with`]), then the epilogue on each of its
/// pixels while they are in L1.
///
/// # Safety
///
/// `out` points at the `[n, oh, ow, cout]` output, and no other thread accesses this tile's
/// pixels during the call.
#[allow(clippy::too_many_arguments)]
unsafe fn finish_tile(
    isa: Isa,
    m: &[f32],
    nt: usize,
    i: usize,
    geom: &Window2d,
    cout: usize,
    tile: (usize, usize, usize),
    ep: &Epilogue<'_>,
    out: OutPtr,
) {
    output_tile_with(isa, m, nt, i, geom, cout, tile, out);
    if ep.is_identity() {
        return;
    }
    let (oh, ow) = geom.output;
    let (b, ty, tx) = tile;
    let (y0, x0) = (ty * TILE, tx * TILE);
    for y in y0..(y0 + TILE).min(oh) {
        for x in x0..(x0 + TILE).min(ow) {
            // SAFETY: the pixel is inside the output and owned by this call.
            let row =
                std::slice::from_raw_parts_mut(out.0.add(((b * oh + y) * ow + x) * cout), cout);
            crate::epilogue::apply_row_with(isa, ep, row, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::epilogue::{Activation, ChannelOp};
    use crate::testutil::Rng;

    /// `f64` convolution and, per output, `Σ |x·w|` over its window (the scale of its
    /// rounding error).
    fn reference(input: &[f32], filter: &[f32], cout: usize, g: &Window2d) -> (Vec<f64>, Vec<f64>) {
        let [n, h, w, cin] = g.input;
        let (oh, ow) = g.output;
        let mut out = vec![0.0; n * oh * ow * cout];
        let mut mag = vec![0.0; n * oh * ow * cout];
        for b in 0..n {
            for oy in 0..oh {
                for ox in 0..ow {
                    let o = ((b * oh + oy) * ow + ox) * cout;
                    for ky in 0..3 {
                        for kx in 0..3 {
                            let (Some(iy), Some(ix)) = (g.in_y(oy, ky), g.in_x(ox, kx)) else {
                                continue;
                            };
                            for ci in 0..cin {
                                let xv = input[((b * h + iy) * w + ix) * cin + ci] as f64;
                                let fr = &filter[((ky * 3 + kx) * cin + ci) * cout..][..cout];
                                for (co, &fv) in fr.iter().enumerate() {
                                    out[o + co] += xv * fv as f64;
                                    mag[o + co] += (xv * fv as f64).abs();
                                }
                            }
                        }
                    }
                }
            }
        }
        (out, mag)
    }

    fn geoms() -> Vec<(Window2d, usize)> {
        let g = |input, pads: (usize, usize), output| Window2d {
            input,
            kernel: (3, 3),
            strides: (1, 1),
            dilations: (1, 1),
            pads,
            output,
        };
        vec![
            // SAME, odd sizes (ragged last tile row and column), batch > 1.
            (g([2, 7, 5, 32], (1, 1), (7, 5)), 32),
            // VALID (output 2 smaller), cin and cout off the vector widths and CH.
            (g([1, 9, 8, 33], (0, 0), (7, 6)), 40),
            (g([3, 6, 6, 70], (1, 1), (6, 6)), 67),
            // Explicit asymmetric padding (a folded `Pad`): top 2, left 0.
            (g([1, 5, 6, 36], (2, 0), (6, 4)), 48),
            // Smallest output, every input pixel a border pixel.
            (g([1, 2, 2, 32], (1, 1), (2, 2)), 32),
            // Many tiles: several blocks of 12 tiles and a partial one.
            (g([2, 23, 19, 48], (1, 1), (23, 19)), 96),
        ]
    }

    /// Winograd against the `f64` reference, every ISA, with and without an epilogue.
    ///
    /// Tolerance `2e-6 · Σ|x·w|` per output: the direct path's own error is about
    /// `k·ε·Σ|x·w|` in the worst case for a `k = 9·cin` chain; here the input transform
    /// (two roundings, magnitudes up to 4×), the `f32` filter transform (one rounding,
    /// magnitudes up to 2.25×) and the output transform (two roundings over 9 terms) each add
    /// a few `ε = 6e-8` relative to the transformed magnitudes, which are at most ~9× the
    /// window's `Σ|x·w|`: about 30 ε in all, or 2e-6. The measured worst case is well
    /// below it (printed with `--nocapture`).
    #[test]
    fn winograd_matches_f64_reference_all_isas() {
        let mut rng = Rng::new(31);
        for (g, cout) in geoms() {
            let [n, h, w, cin] = g.input;
            let input = rng.vec_f32(n * h * w * cin);
            let filter = rng.vec_f32(9 * cin * cout);
            let bias = rng.vec_f32(cout);
            let scale = rng.vec_f32(cout);
            let (want, mag) = reference(&input, &filter, cout, &g);
            let ops = [ChannelOp::Mul(&scale), ChannelOp::Add(&bias)];
            for isa in Isa::available() {
                let wf = pack_winograd_filter_with(isa, &filter, cin, cout);
                let mut worst = 0.0f64;
                for act in [Activation::None, Activation::Relu] {
                    let ep = Epilogue {
                        ops: if act == Activation::None { &[] } else { &ops },
                        act,
                    };
                    let mut got = vec![f32::NAN; want.len()];
                    conv2d_winograd_f32_with(isa, &input, &wf, &g, &ep, &mut got);
                    for (o, (&gv, (&wv, &mv))) in got.iter().zip(want.iter().zip(&mag)).enumerate()
                    {
                        let co = o % cout;
                        let (wv, mv) = match act {
                            Activation::None => (wv, mv),
                            _ => {
                                let s = scale[co] as f64;
                                ((wv * s + bias[co] as f64).max(0.0), mv * s.abs() + 1.0)
                            }
                        };
                        let err = (gv as f64 - wv).abs();
                        worst = worst.max(err / mv.max(1e-30));
                        assert!(
                            err <= 2e-6 * mv,
                            "{isa:?} {g:?} cout {cout} {act:?} at {o}: {gv} vs {wv} (scale {mv})"
                        );
                    }
                }
                println!(
                    "{isa:?} {:?} cout {cout}: worst err / Σ|x·w| = {worst:.2e}",
                    g.input
                );
            }
        }
    }

    /// Results do not depend on the thread count (blocked split, the whole-map split, one
    /// thread): each tile's transforms are the same code and the GEMMs' tiles are split-free.
    #[test]
    fn winograd_is_bit_identical_across_thread_counts() {
        let mut rng = Rng::new(32);
        for (g, cout) in geoms() {
            let [n, h, w, cin] = g.input;
            let input = rng.vec_f32(n * h * w * cin);
            let filter = rng.vec_f32(9 * cin * cout);
            let wf = pack_winograd_filter(&filter, cin, cout);
            let ep = Epilogue::default();
            let mut want = vec![f32::NAN; n * g.output.0 * g.output.1 * cout];
            let one = rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .unwrap();
            one.install(|| conv2d_winograd_f32(&input, &wf, &g, &ep, &mut want));
            for threads in [2, 3, 8] {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                let mut got = vec![f32::NAN; want.len()];
                pool.install(|| conv2d_winograd_f32(&input, &wf, &g, &ep, &mut got));
                assert!(got == want, "{g:?} threads={threads}");
            }
        }
    }

    #[test]
    fn winograd_applies_only_to_3x3_stride_1_with_channels() {
        let g = Window2d {
            input: [1, 16, 16, 64],
            kernel: (3, 3),
            strides: (1, 1),
            dilations: (1, 1),
            pads: (1, 1),
            output: (16, 16),
        };
        if disabled() {
            assert!(!conv2d_uses_winograd(&g, 64));
            return;
        }
        assert!(conv2d_uses_winograd(&g, 64));
        assert!(!conv2d_uses_winograd(&g, 8));
        for bad in [
            Window2d {
                strides: (2, 2),
                output: (8, 8),
                ..g
            },
            // 16 tiles: ResNet's 7×7 maps at batch 1.
            Window2d {
                input: [1, 7, 7, 512],
                output: (7, 7),
                ..g
            },
            Window2d {
                dilations: (2, 2),
                pads: (2, 2),
                ..g
            },
            Window2d {
                kernel: (5, 5),
                pads: (2, 2),
                ..g
            },
            Window2d {
                input: [1, 16, 16, 8],
                ..g
            },
        ] {
            assert!(!conv2d_uses_winograd(&bad, 64), "{bad:?}");
        }
    }
}

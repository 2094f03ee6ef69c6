//! Dense matrix multiplication: `C = A·B` or `C += A·B`.
//!
//! # Layout
//!
//! Operands are described by a slice plus `(row_stride, col_stride)` in elements: element
//! `(i, p)` of `A` is `a[i * a_strides.0 + p * a_strides.1]`. A row-major `m×k` matrix has
//! strides `(k, 1)`; its transpose viewed as `k×m` has strides `(1, k)`. So TF's
//! `transpose_a/b` / `adj_x/adj_y` (real types) need no copy: swap the strides. `C` is
//! row-major with leading dimension `ldc` (`c[i * ldc + j]`).
//!
//! # Algorithm (f32)
//!
//! * `m == 1` or `n == 1`: a dedicated matrix–vector path (axpy over contiguous rows, or dot
//!   products over contiguous columns), split over output columns with rayon when large.
//! * otherwise the Goto/BLIS scheme: `B` is packed in `KC×NC` blocks of `NR`-wide panels,
//!   `A` in `MC×KC` blocks of `MR`-tall panels (both zero-padded to full panels), and a
//!   register-tile microkernel does `MR×NR` outer-product FMAs: 12×32 with AVX-512,
//!   6×16 with AVX2+FMA, 4×8 portable. Block sizes fit Zen 4/5 caches: an `MR×KC` tile of
//!   `A` (9-12 KB) stays in the 32-48 KB L1d while the `KC×NC` block of `B` (~580 KB, in the
//!   1 MB L2) streams past it panel by panel. One driver ([`drive`]) serves every kernel and
//!   both a strided and a pre-packed ([`PackedB`]) right-hand side.
//! * when `m·n·k` is large the problem is split into independent sub-problems along `M`
//!   (or along `N` when `m` is small) run in parallel on the current rayon pool.
//!
//! Packing buffers are thread-local and reused between calls (a few MB per thread at most);
//! they are the only memory the kernel allocates.
//!
//! # Batching
//!
//! Batched products (TF `BatchMatMul`) are left to callers: call [`gemm_f32`] once per batch
//! entry on sub-slices. For many small matrices parallelise over the batch yourself (e.g.
//! `par_chunks_mut` on the output); [`gemm_f32`] only goes parallel for large products, and
//! nesting inside rayon is fine.
//!
//! # Summation order
//!
//! Each `C` element is accumulated over `k` in order within `KC`-sized chunks, with FMA on the
//! SIMD paths; results therefore differ from a naive loop by normal rounding (a few ulp times
//! `sqrt(k)`), and may differ slightly between instruction-set paths.

use crate::epilogue::Epilogue;
use crate::simd::Isa;
use rayon::prelude::*;
use std::cell::RefCell;

mod packed;
pub use packed::{gemm_packed_f32, gemm_packed_f32_with, PackedB};

/// Raw pointer that may be shared between rayon tasks which touch disjoint elements.
#[derive(Clone, Copy)]
struct SendPtr<T>(*mut T);
// SAFETY: only used to hand disjoint regions of an exclusively borrowed output buffer to
// parallel tasks; every use site documents the disjointness.
unsafe impl<T> Send for SendPtr<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for SendPtr<T> {}

impl<T> SendPtr<T> {
    /// The pointer (a method, so closures capture the whole `Send` wrapper).
    #[inline(always)]
    fn get(self) -> *mut T {
        self.0
    }
}

/// Minimum `m*n*k` before the blocked product is split across threads.
const PAR_MNK: usize = 1 << 21;
/// Minimum `k*n` before the matrix-vector path is split across threads.
const PAR_GEMV: usize = 1 << 17;

/// Checks that the strided `rows×cols` operand lies inside a slice of `len` elements.
fn check_operand(name: &str, rows: usize, cols: usize, strides: (usize, usize), len: usize) {
    if rows == 0 || cols == 0 {
        return;
    }
    let last = (rows - 1).checked_mul(strides.0).and_then(|r| {
        (cols - 1)
            .checked_mul(strides.1)
            .and_then(|c| r.checked_add(c))
    });
    match last {
        Some(last) if last < len => {}
        _ => panic!(
            "gemm: operand {name} ({rows}x{cols}, strides {strides:?}) does not fit in {len} elements"
        ),
    }
}

fn check_c(m: usize, n: usize, c_len: usize, ldc: usize) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(m == 1 || ldc >= n, "gemm: ldc ({ldc}) < n ({n})");
    let last = (m - 1).checked_mul(ldc).and_then(|r| r.checked_add(n - 1));
    assert!(
        matches!(last, Some(l) if l < c_len),
        "gemm: C ({m}x{n}, ldc {ldc}) does not fit in {c_len} elements"
    );
}

/// Computes `C = A·B` (or `C += A·B` when `accumulate`) for `f32`, choosing the best
/// instruction set and using the current rayon pool for large products.
///
/// * `A` is `m×k`: element `(i, p)` at `a[i * a_strides.0 + p * a_strides.1]`.
/// * `B` is `k×n`: element `(p, j)` at `b[p * b_strides.0 + j * b_strides.1]`.
/// * `C` is `m×n` row-major with leading dimension `ldc`: element `(i, j)` at `c[i*ldc + j]`.
///   Elements of `c` outside the `m×n` window are not touched.
///
/// With `accumulate == false`, `C` is overwritten (its old contents, even NaN, are ignored);
/// with `k == 0` that means `C` is zero-filled.
///
/// # Panics
///
/// If any operand does not fit in its slice for the given shape and strides, or if `m > 1`
/// and `ldc < n`.
#[allow(clippy::too_many_arguments)]
pub fn gemm_f32(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    a_strides: (usize, usize),
    b: &[f32],
    b_strides: (usize, usize),
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
) {
    gemm_f32_with(
        Isa::best(),
        true,
        m,
        n,
        k,
        a,
        a_strides,
        b,
        b_strides,
        c,
        ldc,
        accumulate,
    )
}

/// [`gemm_f32`] with an explicit instruction set (clamped to what the CPU supports) and
/// `parallel == false` to stay on the calling thread.
///
/// # Panics
///
/// As [`gemm_f32`].
#[allow(clippy::too_many_arguments)]
pub fn gemm_f32_with(
    isa: Isa,
    parallel: bool,
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    a_strides: (usize, usize),
    b: &[f32],
    b_strides: (usize, usize),
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
) {
    check_c(m, n, c.len(), ldc);
    // SAFETY: `c` is exclusively borrowed and covers the m×n window at `ldc` (checked).
    unsafe {
        gemm_f32_ptr(
            isa,
            parallel,
            m,
            n,
            k,
            a,
            a_strides,
            b,
            b_strides,
            c.as_mut_ptr(),
            ldc,
            accumulate,
        )
    }
}

/// [`gemm_f32_with`] writing through a raw pointer, for callers that run several products
/// at once into interleaved (but disjoint) windows of one output buffer, such as batched
/// products whose output matrices are strided views (`[b, m, h, n]` written per `(b, h)`).
///
/// # Safety
///
/// `c` must be valid for reads and writes of the `m×n` window `c[i*ldc + j]`, `ldc >= n`
/// when `m > 1`, and no other thread may access that window during the call.
///
/// # Panics
///
/// If `A` or `B` do not fit their slices.
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm_f32_ptr(
    isa: Isa,
    parallel: bool,
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    a_strides: (usize, usize),
    b: &[f32],
    b_strides: (usize, usize),
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
) {
    check_operand("A", m, k, a_strides, a.len());
    check_operand("B", k, n, b_strides, b.len());
    assert!(m <= 1 || ldc >= n, "gemm: ldc ({ldc}) < n ({n})");
    if m == 0 || n == 0 {
        return;
    }
    let isa = isa.clamp_supported();
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                // SAFETY: the caller guarantees the window.
                std::slice::from_raw_parts_mut(c.add(i * ldc), n).fill(0.0);
            }
        }
        return;
    }
    let threads = if parallel {
        rayon::current_num_threads()
    } else {
        1
    };
    let cp = SendPtr(c);
    if m == 1 {
        // y (1×n, stride 1) = x (1×k, stride a.1) · B
        // SAFETY: operand extents were checked above; C row 0 holds n elements.
        unsafe {
            gemv_par(
                isa,
                threads,
                n,
                k,
                a.as_ptr(),
                a_strides.1,
                b.as_ptr(),
                b_strides,
                cp,
                1,
                accumulate,
            )
        };
        return;
    }
    if n == 1 {
        // Cᵀ (1×m, stride ldc) = bᵀ (1×k, stride b.0) · Aᵀ (k×m, strides (a.1, a.0))
        // SAFETY: as above; C column 0 holds m elements at stride ldc.
        unsafe {
            gemv_par(
                isa,
                threads,
                m,
                k,
                b.as_ptr(),
                b_strides.0,
                a.as_ptr(),
                (a_strides.1, a_strides.0),
                cp,
                ldc,
                accumulate,
            )
        };
        return;
    }
    let a = Operand {
        ptr: a.as_ptr(),
        rs: a_strides.0,
        cs: a_strides.1,
    };
    let b = Operand {
        ptr: b.as_ptr(),
        rs: b_strides.0,
        cs: b_strides.1,
    };
    let run = |m: usize, n: usize, a: Operand, b: Operand, c: SendPtr<f32>| {
        // SAFETY: each call gets a sub-problem whose operands lie inside the checked
        // extents, and whose C window is disjoint from every other concurrent call's.
        unsafe {
            let (b, c) = (BSrc::Strided(b), c.get());
            match isa {
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 => drive::<Avx512Kernel>(m, k, a, b, (0, n), c, ldc, accumulate, None),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => drive::<Avx2Kernel>(m, k, a, b, (0, n), c, ldc, accumulate, None),
                _ => drive::<ScalarKernel>(m, k, a, b, (0, n), c, ldc, accumulate, None),
            }
        }
    };
    let mnk = m.saturating_mul(n).saturating_mul(k);
    if threads <= 1 || mnk < PAR_MNK {
        run(m, n, a, b, cp);
        return;
    }
    // Split along M in multiples of 16 rows or along N in multiples of 32 columns, ~2 tasks
    // per thread for load balance; each task packs its own panels. A split along M makes every
    // task pack all of B (k×n), one along N all of A (m×k), so split the longer side: with
    // m = 128, n = 3072 an M split had 4 tasks each repacking a 9 MB B (a third of the CPU
    // time on 2 threads). A task's C elements see the same KC chunks either way.
    let (split_m, len, unit) = if m >= n || n < 32 * 2 * threads {
        (true, m, 16)
    } else {
        (false, n, 32)
    };
    let units = len.div_ceil(unit);
    let tasks = (2 * threads).min(units).max(1);
    let per = units.div_ceil(tasks) * unit;
    (0..len.div_ceil(per)).into_par_iter().for_each(|t| {
        let lo = t * per;
        let hi = (lo + per).min(len);
        if split_m {
            // SAFETY: rows lo..hi of A and C; C windows of different tasks are disjoint rows.
            let (asub, csub) = unsafe { (a.offset(lo, 0), SendPtr(cp.get().add(lo * ldc))) };
            run(hi - lo, n, asub, b, csub);
        } else {
            // SAFETY: columns lo..hi of B and C; C windows of different tasks are disjoint.
            let (bsub, csub) = unsafe { (b.offset(0, lo), SendPtr(cp.get().add(lo))) };
            run(m, hi - lo, a, bsub, csub);
        }
    });
}

/// Computes `C = A·B` (or `C += A·B`) for `f64` with the same layout contract as
/// [`gemm_f32`]. Simple cache-friendly loops (auto-vectorized when `B` rows are contiguous),
/// no packing, single-threaded.
///
/// # Panics
///
/// As [`gemm_f32`].
#[allow(clippy::too_many_arguments)]
pub fn gemm_f64(
    m: usize,
    n: usize,
    k: usize,
    a: &[f64],
    a_strides: (usize, usize),
    b: &[f64],
    b_strides: (usize, usize),
    c: &mut [f64],
    ldc: usize,
    accumulate: bool,
) {
    check_operand("A", m, k, a_strides, a.len());
    check_operand("B", k, n, b_strides, b.len());
    check_c(m, n, c.len(), ldc);
    if m == 0 || n == 0 {
        return;
    }
    let (ars, acs) = a_strides;
    let (brs, bcs) = b_strides;
    for i in 0..m {
        let crow = &mut c[i * ldc..i * ldc + n];
        if !accumulate {
            crow.fill(0.0);
        }
        for p in 0..k {
            let aip = a[i * ars + p * acs];
            if bcs == 1 {
                let brow = &b[p * brs..p * brs + n];
                for (cv, bv) in crow.iter_mut().zip(brow) {
                    *cv += aip * bv;
                }
            } else {
                for (j, cv) in crow.iter_mut().enumerate() {
                    *cv += aip * b[p * brs + j * bcs];
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Blocked GEMM driver
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
struct Operand {
    ptr: *const f32,
    rs: usize,
    cs: usize,
}
// SAFETY: read-only view of a borrowed slice, shared between tasks that only read it.
unsafe impl Send for Operand {}
// SAFETY: as above.
unsafe impl Sync for Operand {}

impl Operand {
    /// # Safety
    /// `(r, c)` must be inside the operand.
    #[inline(always)]
    unsafe fn offset(self, r: usize, c: usize) -> Operand {
        Operand {
            ptr: self.ptr.add(r * self.rs + c * self.cs),
            ..self
        }
    }
    /// # Safety
    /// `(r, c)` must be inside the operand.
    #[inline(always)]
    unsafe fn at(self, r: usize, c: usize) -> f32 {
        *self.ptr.add(r * self.rs + c * self.cs)
    }
}

/// A register-tile microkernel and its cache blocking.
trait Kernel {
    const MR: usize;
    const NR: usize;
    const KC: usize;
    const MC: usize;
    const NC: usize;
    /// `C[0..mr, 0..nr] (+)= Apanel(MR×kc) · Bpanel(kc×NR)`; panels are packed, zero-padded.
    /// With `ep = Some((ep, col0))` the tile's columns are `col0..col0 + nr` of the product
    /// and `ep` is applied to the finished values (in registers where the kernel can).
    ///
    /// # Safety
    /// `a` holds `kc*MR`, `b` holds `kc*NR` floats; `c` is valid for `mr` rows of `nr`
    /// elements at stride `ldc`; `mr <= MR`, `nr <= NR`, `kc >= 1`; CPU supports the ISA;
    /// every vector of `ep` covers columns `col0..col0 + nr`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn run(
        kc: usize,
        a: *const f32,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        mr: usize,
        nr: usize,
        acc: bool,
        ep: TileEp<'_>,
    );

    /// True if [`Kernel::run_rows`] exists: `MR` whole rows of a row-major `A` are read in
    /// place (no `pack_a`), with the same products summed in the same order as [`Kernel::run`].
    const ROWS_A: bool = false;

    /// As [`Kernel::run`] with `A` as `MR` rows of `kc` contiguous floats at stride `lda`
    /// instead of a packed panel.
    ///
    /// # Safety
    /// As [`Kernel::run`]; `a` covers `MR` rows (not just `mr`) of `kc` floats at stride `lda`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn run_rows(
        _kc: usize,
        _a: *const f32,
        _lda: usize,
        _b: *const f32,
        _c: *mut f32,
        _ldc: usize,
        _mr: usize,
        _nr: usize,
        _acc: bool,
        _ep: TileEp<'_>,
    ) {
        unreachable!("run_rows without ROWS_A")
    }
}

/// The epilogue of a microkernel tile and the product column of its first column.
type TileEp<'a> = Option<(&'a Epilogue<'a>, usize)>;

/// Applies a tile's epilogue after the tile was stored (kernels without an in-register path,
/// and edge tiles).
///
/// # Safety
/// `c` is valid for `mr` rows of `nr` elements at stride `ldc`.
unsafe fn tile_ep_in_memory(
    isa: Isa,
    ep: TileEp<'_>,
    c: *mut f32,
    ldc: usize,
    mr: usize,
    nr: usize,
) {
    if let Some((ep, col0)) = ep {
        for r in 0..mr {
            let row = std::slice::from_raw_parts_mut(c.add(r * ldc), nr);
            crate::epilogue::apply_row_with(isa, ep, row, col0);
        }
    }
}

/// Packs the panels of `mc×kc` of `A` that [`Kernel::run_rows`] cannot read in place: all of
/// them unless `A` is row-major and the kernel has `run_rows`, else only a partial last panel.
/// Returns whether whole panels are read in place.
///
/// In-place rows are skipped when their stride is a multiple of 4 KB and the block is wider
/// than four panels (`nc` columns): then all `MR` rows fall into one L1 set and evict each
/// other (BERT-base's `128×3072×768` ran ~10% slower in place), while the packing is
/// amortised over the panels.
///
/// # Safety
/// As [`pack_a`].
unsafe fn pack_a_needed<K: Kernel>(
    mc: usize,
    kc: usize,
    nc: usize,
    a: Operand,
    dst: &mut [f32],
) -> bool {
    let aliasing = a.rs.is_multiple_of(1024) && nc > 4 * K::NR;
    if !(K::ROWS_A && a.cs == 1) || aliasing {
        pack_a::<K>(mc, kc, a, dst);
        return false;
    }
    let full = mc / K::MR * K::MR;
    if full < mc {
        pack_a::<K>(mc - full, kc, a.offset(full, 0), &mut dst[full * kc..]);
    }
    true
}

/// One microkernel call for the rows `ir..ir + mr` of an `A` block: in place when
/// `in_place` and the panel is whole, else from the packed panel.
///
/// # Safety
/// As [`Kernel::run`] / [`Kernel::run_rows`]; `a` is the block's operand, `ap` its packing
/// by [`pack_a_needed`].
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn run_tile<K: Kernel>(
    in_place: bool,
    kc: usize,
    a: Operand,
    ap: *const f32,
    ir: usize,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    mr: usize,
    nr: usize,
    acc: bool,
    ep: TileEp<'_>,
) {
    if in_place && mr == K::MR {
        K::run_rows(kc, a.offset(ir, 0).ptr, a.rs, b, c, ldc, mr, nr, acc, ep);
    } else {
        K::run(kc, ap.add(ir * kc), b, c, ldc, mr, nr, acc, ep);
    }
}

thread_local! {
    static PACK_BUFS: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Returns a 64-byte aligned sub-slice of `v` holding `len` floats (grows `v` if needed).
fn aligned(v: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if v.len() < len + 16 {
        v.resize(len + 16, 0.0);
    }
    let off = v.as_ptr().align_offset(64).min(16);
    &mut v[off..off + len]
}

/// Packs `mc×kc` of `A` into `tile`-tall panels: panel `q`, step `p`, row `r` at
/// `q*kc*tile + p*tile + r`; rows past `mc` are zero.
///
/// # Safety
/// `a` must cover `mc×kc`.
unsafe fn pack_a<K: Kernel>(mc: usize, kc: usize, a: Operand, dst: &mut [f32]) {
    let tile = K::MR;
    for (q, panel) in dst.chunks_exact_mut(kc * tile).enumerate() {
        let i0 = q * tile;
        let rows = (mc - i0).min(tile);
        let ap = a.offset(i0, 0);
        if rows == tile && a.rs == 1 {
            for (p, d) in panel.chunks_exact_mut(tile).enumerate() {
                let src = ap.ptr.add(p * a.cs);
                d.copy_from_slice(std::slice::from_raw_parts(src, tile));
            }
        } else if rows == tile && a.cs == 1 {
            // Row-major A: read each row contiguously, scatter into the panel (in L1).
            for r in 0..tile {
                let src = std::slice::from_raw_parts(ap.ptr.add(r * a.rs), kc);
                for (p, &v) in src.iter().enumerate() {
                    *panel.get_unchecked_mut(p * tile + r) = v;
                }
            }
        } else if rows == tile {
            for (p, d) in panel.chunks_exact_mut(tile).enumerate() {
                for (r, dv) in d.iter_mut().enumerate() {
                    *dv = ap.at(r, p);
                }
            }
        } else {
            for (p, d) in panel.chunks_exact_mut(tile).enumerate() {
                for (r, dv) in d.iter_mut().enumerate() {
                    *dv = if r < rows { ap.at(r, p) } else { 0.0 };
                }
            }
        }
    }
}

/// Packs `kc×nc` of `B` into `tile`-wide panels: panel `q`, step `p`, column `j` at
/// `q*kc*tile + p*tile + j`; columns past `nc` are zero.
///
/// # Safety
/// `b` must cover `kc×nc`.
unsafe fn pack_b<K: Kernel>(kc: usize, nc: usize, b: Operand, dst: &mut [f32]) {
    let tile = K::NR;
    let full = nc / tile;
    if b.cs == 1 && full > 0 {
        // Row-major B: stream each source row once (sequential reads) and scatter its
        // full-width pieces into the panels; the ragged last panel is done below.
        for p in 0..kc {
            let src = std::slice::from_raw_parts(b.ptr.add(p * b.rs), full * tile);
            for (q, piece) in src.chunks_exact(tile).enumerate() {
                dst.get_unchecked_mut(q * kc * tile + p * tile..q * kc * tile + (p + 1) * tile)
                    .copy_from_slice(piece);
            }
        }
        if full * tile == nc {
            return;
        }
        let rest = b.offset(0, full * tile);
        pack_b_panels::<K>(kc, nc - full * tile, rest, &mut dst[full * kc * tile..]);
        return;
    }
    pack_b_panels::<K>(kc, nc, b, dst)
}

/// Panel-by-panel packing of `B` (any strides), see [`pack_b`].
///
/// # Safety
/// `b` must cover `kc×nc`.
unsafe fn pack_b_panels<K: Kernel>(kc: usize, nc: usize, b: Operand, dst: &mut [f32]) {
    let tile = K::NR;
    for (q, panel) in dst.chunks_exact_mut(kc * tile).enumerate() {
        let j0 = q * tile;
        let cols = (nc - j0).min(tile);
        let bp = b.offset(0, j0);
        if cols == tile && b.cs == 1 {
            for (p, d) in panel.chunks_exact_mut(tile).enumerate() {
                let src = bp.ptr.add(p * b.rs);
                d.copy_from_slice(std::slice::from_raw_parts(src, tile));
            }
        } else if cols == tile && b.rs == 1 {
            // Column-major B (transposed weights): read each column contiguously.
            for j in 0..tile {
                let src = bp.ptr.add(j * b.cs);
                for p in 0..kc {
                    *panel.get_unchecked_mut(p * tile + j) = *src.add(p);
                }
            }
        } else {
            for (p, d) in panel.chunks_exact_mut(tile).enumerate() {
                for (j, dv) in d.iter_mut().enumerate() {
                    *dv = if j < cols { bp.at(p, j) } else { 0.0 };
                }
            }
        }
    }
}

/// Where the blocked driver reads `B` from.
#[derive(Clone, Copy)]
enum BSrc<'a> {
    /// A strided operand: the driver packs each `KC×NC` block into its thread-local buffer.
    Strided(Operand),
    /// `B` pre-packed for this kernel by [`PackedB`] (`n_pad` columns, zero-padded).
    Packed(&'a [f32], usize),
}

/// Single-threaded blocked product (the one driver of every ISA): rows `0..m` of `A` times
/// columns `cols.0..cols.1` of `B` into the same columns of `C` (`c` points at `C(0, 0)`),
/// `C (+)= A·B`, then `ep` on each finished tile (columns numbered from 0).
///
/// Loops (Goto/BLIS): `NC` columns → `KC` deep (pack `B`'s block unless pre-packed) → `MC`
/// rows (pack `A` unless read in place) → `MR` tile of `A` → `NR` panel of `B`. Each `C`
/// element sums its `KC` chunks in order, whatever the split and loop order, so results
/// depend only on the kernel and `KC`.
///
/// # Safety
/// `a` covers `m×k`; `b` covers `k×cols.1` (strided) or is `B` packed for `K` with
/// `cols.0 % K::NR == 0`; `c` is valid for `m` rows at stride `ldc` over columns
/// `cols.0..cols.1`; the CPU supports `K`'s instruction set; `ep`'s vectors cover the
/// columns.
#[allow(clippy::too_many_arguments)]
unsafe fn drive<K: Kernel>(
    m: usize,
    k: usize,
    a: Operand,
    b: BSrc<'_>,
    cols: (usize, usize),
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
    ep: Option<&Epilogue<'_>>,
) {
    let ep = ep.filter(|e| !e.is_identity());
    PACK_BUFS.with(|bufs| {
        let mut bufs = bufs.borrow_mut();
        let (abuf, bbuf) = &mut *bufs;
        let kc_max = k.min(K::KC);
        let mc_max = m.min(K::MC).div_ceil(K::MR) * K::MR;
        let nc_max = (cols.1 - cols.0).min(K::NC).div_ceil(K::NR) * K::NR;
        let apack = aligned(abuf, kc_max * mc_max);
        let bpack = match b {
            BSrc::Strided(_) => aligned(bbuf, kc_max * nc_max),
            BSrc::Packed(..) => &mut [],
        };
        let mut jc = cols.0;
        while jc < cols.1 {
            let nc = (cols.1 - jc).min(K::NC);
            let mut pc = 0;
            while pc < k {
                let kc = (k - pc).min(K::KC);
                let acc = accumulate || pc > 0;
                let last = pc + kc == k;
                // Panel `q` of this block at `bblock + q*kc*NR`.
                let bblock = match b {
                    BSrc::Strided(op) => {
                        let bp = &mut bpack[..kc * nc.div_ceil(K::NR) * K::NR];
                        pack_b::<K>(kc, nc, op.offset(pc, jc), bp);
                        bp.as_ptr()
                    }
                    BSrc::Packed(data, n_pad) => data[pc * n_pad + jc * kc..].as_ptr(),
                };
                let mut ic = 0;
                while ic < m {
                    let mc = (m - ic).min(K::MC);
                    let mc_pad = mc.div_ceil(K::MR) * K::MR;
                    let ap = &mut apack[..kc * mc_pad];
                    let ablock = a.offset(ic, pc);
                    let in_place = pack_a_needed::<K>(mc, kc, nc, ablock, ap);
                    // One `A` tile (MR×kc, 9-12 KB) stays in L1 while the block's `B`
                    // panels stream past it from L2 (the block is sized for L2).
                    for ir in (0..mc).step_by(K::MR) {
                        let mr = (mc - ir).min(K::MR);
                        for jr in (0..nc).step_by(K::NR) {
                            let nr = (nc - jr).min(K::NR);
                            run_tile::<K>(
                                in_place,
                                kc,
                                ablock,
                                ap.as_ptr(),
                                ir,
                                bblock.add(jr * kc),
                                c.add((ic + ir) * ldc + jc + jr),
                                ldc,
                                mr,
                                nr,
                                acc,
                                ep.filter(|_| last).map(|e| (e, jc + jr)),
                            );
                        }
                    }
                    ic += mc;
                }
                pc += kc;
            }
            jc += nc;
        }
    })
}

// ---------------------------------------------------------------------------------------
// Microkernels
// ---------------------------------------------------------------------------------------

/// How many `k` steps ahead the vector microkernels prefetch their `B` panel into L1. The
/// panel streams from L2 (one or two lines per step); without the hint the Emerald Rapids
/// VM this was measured on (2 FMA ports, 12 steps of 24 FMAs ≈ 12 cycles per step) waited on
/// L2: `gemm_gflops` on BERT's `128×768×3072` went from 140 to 150 GFLOP/s on AVX-512
/// (+3–5% on AVX2). 16 steps is 2 KB (AVX-512) or 1 KB (AVX2) ahead; past a panel's end the
/// hint warms the next panel, which follows it in a packed `B`. Prefetches never fault, so
/// the address is computed with `wrapping_add`.
#[cfg(target_arch = "x86_64")]
const B_PREFETCH: usize = 16;

/// Portable 4×8 microkernel.
struct ScalarKernel;

impl Kernel for ScalarKernel {
    const MR: usize = 4;
    const NR: usize = 8;
    const KC: usize = 256;
    const MC: usize = 128;
    const NC: usize = 512;

    unsafe fn run(
        kc: usize,
        a: *const f32,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        mr: usize,
        nr: usize,
        acc: bool,
        ep: TileEp<'_>,
    ) {
        let mut t = [[0.0f32; 8]; 4];
        // SAFETY (whole fn): the caller guarantees `a`/`b` hold `kc` packed steps and `c`
        // covers `mr×nr` at stride `ldc`.
        let a = std::slice::from_raw_parts(a, kc * 4);
        let b = std::slice::from_raw_parts(b, kc * 8);
        for (av, bv) in a.chunks_exact(4).zip(b.chunks_exact(8)) {
            for r in 0..4 {
                for j in 0..8 {
                    t[r][j] += av[r] * bv[j];
                }
            }
        }
        for (r, tr) in t.iter().enumerate().take(mr) {
            let crow = std::slice::from_raw_parts_mut(c.add(r * ldc), nr);
            for (cv, &tv) in crow.iter_mut().zip(tr) {
                *cv = if acc { *cv + tv } else { tv };
            }
        }
        tile_ep_in_memory(Isa::Scalar, ep, c, ldc, mr, nr);
    }
}

/// AVX2+FMA 6×16 microkernel (12 accumulators of 8 lanes).
#[cfg(target_arch = "x86_64")]
struct Avx2Kernel;

#[cfg(target_arch = "x86_64")]
impl Kernel for Avx2Kernel {
    const MR: usize = 6;
    const NR: usize = 16;
    const KC: usize = 256;
    const MC: usize = 6 * 64;
    const NC: usize = 576;

    unsafe fn run(
        kc: usize,
        a: *const f32,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        mr: usize,
        nr: usize,
        acc: bool,
        ep: TileEp<'_>,
    ) {
        kernel_avx2_6x16::<false>(kc, a, 0, b, c, ldc, mr, nr, acc, ep)
    }

    const ROWS_A: bool = true;

    unsafe fn run_rows(
        kc: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        mr: usize,
        nr: usize,
        acc: bool,
        ep: TileEp<'_>,
    ) {
        kernel_avx2_6x16::<true>(kc, a, lda, b, c, ldc, mr, nr, acc, ep)
    }
}

/// # Safety
/// See [`Kernel::run`]; needs AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn kernel_avx2_6x16<const ROWS: bool>(
    kc: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    mr: usize,
    nr: usize,
    acc: bool,
    ep: TileEp<'_>,
) {
    use std::arch::x86_64::*;
    // Pull the C tile toward L1 while the k loop runs (prefetches never fault).
    for r in 0..mr {
        let cp = c.wrapping_add(r * ldc) as *const i8;
        _mm_prefetch::<_MM_HINT_T0>(cp);
        _mm_prefetch::<_MM_HINT_T0>(cp.wrapping_add(60));
    }
    let mut c0 = [_mm256_setzero_ps(); 6];
    let mut c1 = [_mm256_setzero_ps(); 6];
    let mut ap = a;
    let mut bp = b;
    if nr <= 8 {
        // A half-width tile (the last panel of 8, 24, 40… columns): only the left
        // accumulators, same FMAs in the same order (`c1` stays zero, never stored).
        for _ in 0..kc {
            // SAFETY: as in the full loop below.
            let b0 = _mm256_loadu_ps(bp);
            _mm_prefetch::<_MM_HINT_T0>(bp.wrapping_add(B_PREFETCH * 16) as *const i8);
            for (r, cr) in c0.iter_mut().enumerate() {
                let av = _mm256_broadcast_ss(&*ap.add(if ROWS { r * lda } else { r }));
                *cr = _mm256_fmadd_ps(av, b0, *cr);
            }
            ap = ap.add(if ROWS { 1 } else { 6 });
            bp = bp.add(16);
        }
    }
    for _ in 0..if nr <= 8 { 0 } else { kc } {
        // SAFETY: packed panels hold kc steps of 6 (A) and 16 (B) floats; with ROWS, A has
        // 6 rows of kc floats at stride lda.
        let b0 = _mm256_loadu_ps(bp);
        let b1 = _mm256_loadu_ps(bp.add(8));
        // The step B_PREFETCH ahead (one line), past the panel's end into the next panel.
        _mm_prefetch::<_MM_HINT_T0>(bp.wrapping_add(B_PREFETCH * 16) as *const i8);
        for r in 0..6 {
            let av = _mm256_broadcast_ss(&*ap.add(if ROWS { r * lda } else { r }));
            c0[r] = _mm256_fmadd_ps(av, b0, c0[r]);
            c1[r] = _mm256_fmadd_ps(av, b1, c1[r]);
        }
        ap = ap.add(if ROWS { 1 } else { 6 });
        bp = bp.add(16);
    }
    if mr == 6 && nr == 16 {
        for r in 0..6 {
            // SAFETY: full tile: row r of C has 16 valid elements; ep's vectors cover the
            // tile's 16 columns.
            let cp = c.add(r * ldc);
            let (mut v0, mut v1) = (c0[r], c1[r]);
            if acc {
                v0 = _mm256_add_ps(_mm256_loadu_ps(cp), v0);
                v1 = _mm256_add_ps(_mm256_loadu_ps(cp.add(8)), v1);
            }
            if let Some((ep, col0)) = ep {
                v0 = crate::epilogue_x86::avx2::vec(ep, v0, col0);
                v1 = crate::epilogue_x86::avx2::vec(ep, v1, col0 + 8);
            }
            _mm256_storeu_ps(cp, v0);
            _mm256_storeu_ps(cp.add(8), v1);
        }
    } else {
        let mut t = [0.0f32; 96];
        for r in 0..6 {
            _mm256_storeu_ps(t.as_mut_ptr().add(r * 16), c0[r]);
            _mm256_storeu_ps(t.as_mut_ptr().add(r * 16 + 8), c1[r]);
        }
        for r in 0..mr {
            // SAFETY: row r < mr of C has nr valid elements.
            let crow = std::slice::from_raw_parts_mut(c.add(r * ldc), nr);
            for (j, cv) in crow.iter_mut().enumerate() {
                let tv = t[r * 16 + j];
                *cv = if acc { *cv + tv } else { tv };
            }
        }
        tile_ep_in_memory(Isa::Avx2, ep, c, ldc, mr, nr);
    }
}

/// AVX-512 12×32 microkernel (24 accumulators of 16 lanes, masked edge stores).
#[cfg(target_arch = "x86_64")]
struct Avx512Kernel;

#[cfg(target_arch = "x86_64")]
impl Kernel for Avx512Kernel {
    const MR: usize = 12;
    const NR: usize = 32;
    const KC: usize = 192;
    const MC: usize = 12 * 40;
    const NC: usize = 768;

    unsafe fn run(
        kc: usize,
        a: *const f32,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        mr: usize,
        nr: usize,
        acc: bool,
        ep: TileEp<'_>,
    ) {
        kernel_avx512_12x32::<false>(kc, a, 0, b, c, ldc, mr, nr, acc, ep)
    }

    const ROWS_A: bool = true;

    unsafe fn run_rows(
        kc: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        mr: usize,
        nr: usize,
        acc: bool,
        ep: TileEp<'_>,
    ) {
        kernel_avx512_12x32::<true>(kc, a, lda, b, c, ldc, mr, nr, acc, ep)
    }
}

/// # Safety
/// See [`Kernel::run`]; needs AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn kernel_avx512_12x32<const ROWS: bool>(
    kc: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    mr: usize,
    nr: usize,
    acc: bool,
    ep: TileEp<'_>,
) {
    use std::arch::x86_64::*;
    // Pull the C tile toward L1 while the k loop runs (prefetches never fault).
    for r in 0..mr {
        let cp = c.wrapping_add(r * ldc) as *const i8;
        _mm_prefetch::<_MM_HINT_T0>(cp);
        _mm_prefetch::<_MM_HINT_T0>(cp.wrapping_add(64));
        _mm_prefetch::<_MM_HINT_T0>(cp.wrapping_add(124));
    }
    let mut c0 = [_mm512_setzero_ps(); 12];
    let mut c1 = [_mm512_setzero_ps(); 12];
    let mut ap = a;
    let mut bp = b;
    if nr <= 16 {
        // A half-width tile (the last panel of 16, 24+16, 40, 80, 112… columns): the right
        // half of the panel is zero padding, so only the left accumulators are computed, with
        // the same FMAs in the same order (`c1` stays zero and is masked off below).
        for _ in 0..kc {
            // SAFETY: as in the full loop below.
            let b0 = _mm512_loadu_ps(bp);
            _mm_prefetch::<_MM_HINT_T0>(bp.wrapping_add(B_PREFETCH * 32) as *const i8);
            for (r, cr) in c0.iter_mut().enumerate() {
                let av = _mm512_set1_ps(*ap.add(if ROWS { r * lda } else { r }));
                *cr = _mm512_fmadd_ps(av, b0, *cr);
            }
            ap = ap.add(if ROWS { 1 } else { 12 });
            bp = bp.add(32);
        }
    }
    for _ in 0..if nr <= 16 { 0 } else { kc } {
        // SAFETY: packed panels hold kc steps of 12 (A) and 32 (B) floats; with ROWS, A has
        // 12 rows of kc floats at stride lda.
        let b0 = _mm512_loadu_ps(bp);
        let b1 = _mm512_loadu_ps(bp.add(16));
        // The step B_PREFETCH ahead (two lines), past the panel's end into the next panel.
        _mm_prefetch::<_MM_HINT_T0>(bp.wrapping_add(B_PREFETCH * 32) as *const i8);
        _mm_prefetch::<_MM_HINT_T0>(bp.wrapping_add(B_PREFETCH * 32 + 16) as *const i8);
        for r in 0..12 {
            let av = _mm512_set1_ps(*ap.add(if ROWS { r * lda } else { r }));
            c0[r] = _mm512_fmadd_ps(av, b0, c0[r]);
            c1[r] = _mm512_fmadd_ps(av, b1, c1[r]);
        }
        ap = ap.add(if ROWS { 1 } else { 12 });
        bp = bp.add(32);
    }
    let m0: __mmask16 = if nr >= 16 {
        0xffff
    } else {
        ((1u32 << nr) - 1) as u16
    };
    let m1: __mmask16 = if nr > 16 {
        ((1u32 << (nr - 16)) - 1) as u16
    } else {
        0
    };
    for r in 0..mr {
        // SAFETY: row r < mr of C has nr valid elements; masked-off lanes are neither read
        // nor written (and cannot fault), and wrapping_add avoids out-of-bounds `add`.
        let cp = c.add(r * ldc);
        let cp1 = cp.wrapping_add(16);
        let (mut v0, mut v1) = (c0[r], c1[r]);
        if acc {
            v0 = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, cp), v0);
            v1 = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, cp1), v1);
        }
        if let (Some((ep, col0)), 32) = (ep, nr) {
            // SAFETY: a whole-width tile: ep's vectors cover its 32 columns.
            v0 = crate::epilogue_x86::avx512::vec(ep, v0, col0);
            v1 = crate::epilogue_x86::avx512::vec(ep, v1, col0 + 16);
        }
        _mm512_mask_storeu_ps(cp, m0, v0);
        _mm512_mask_storeu_ps(cp1, m1, v1);
    }
    if nr < 32 {
        tile_ep_in_memory(Isa::Avx512, ep, c, ldc, mr, nr);
    }
}

// ---------------------------------------------------------------------------------------
// Matrix-vector path
// ---------------------------------------------------------------------------------------

/// `y[j*ys] (+)= Σ_p x[p*xs] · M[p*rs + j*cs]` for `j < n`, split over `j` when large.
///
/// # Safety
/// `x` covers `k` elements at stride `xs`, `mat` covers `k×n` at `(rs, cs)`, `y` covers `n`
/// elements at stride `ys`; `isa` is supported.
#[allow(clippy::too_many_arguments)]
unsafe fn gemv_par(
    isa: Isa,
    threads: usize,
    n: usize,
    k: usize,
    x: *const f32,
    xs: usize,
    mat: *const f32,
    (rs, cs): (usize, usize),
    y: SendPtr<f32>,
    ys: usize,
    acc: bool,
) {
    let xp = SendPtr(x as *mut f32);
    let mp = SendPtr(mat as *mut f32);
    if threads <= 1 || k.saturating_mul(n) < PAR_GEMV || n < 64 {
        gemv_serial(isa, n, k, x, xs, mat, rs, cs, y.0, ys, acc);
        return;
    }
    let tasks = (2 * threads).min(n / 32).max(1);
    let per = n.div_ceil(tasks).div_ceil(16) * 16;
    (0..n.div_ceil(per)).into_par_iter().for_each(|t| {
        let lo = t * per;
        let hi = (lo + per).min(n);
        // SAFETY: columns lo..hi: inside the checked extents; tasks write disjoint y ranges.
        unsafe {
            gemv_serial(
                isa,
                hi - lo,
                k,
                xp.get(),
                xs,
                mp.get().add(lo * cs),
                rs,
                cs,
                y.get().add(lo * ys),
                ys,
                acc,
            )
        }
    });
}

/// Serial matrix-vector product, see [`gemv_par`].
///
/// # Safety
/// As [`gemv_par`].
#[allow(clippy::too_many_arguments)]
unsafe fn gemv_serial(
    isa: Isa,
    n: usize,
    k: usize,
    x: *const f32,
    xs: usize,
    mat: *const f32,
    rs: usize,
    cs: usize,
    y: *mut f32,
    ys: usize,
    acc: bool,
) {
    if cs == 1 && ys == 1 {
        let y = std::slice::from_raw_parts_mut(y, n);
        if !acc {
            y.fill(0.0);
        }
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => gemv_rows_avx512(n, k, x, xs, mat, rs, y.as_mut_ptr()),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => gemv_rows_avx2(n, k, x, xs, mat, rs, y.as_mut_ptr()),
            _ => {
                for p in 0..k {
                    let s = *x.add(p * xs);
                    let row = std::slice::from_raw_parts(mat.add(p * rs), n);
                    for (yv, &mv) in y.iter_mut().zip(row) {
                        *yv += s * mv;
                    }
                }
            }
        }
    } else if rs == 1 && xs == 1 {
        let xv = std::slice::from_raw_parts(x, k);
        let mut j = 0;
        while j + 4 <= n {
            let cols = [0, 1, 2, 3].map(|q| std::slice::from_raw_parts(mat.add((j + q) * cs), k));
            let d = match isa {
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 => dot4_avx512(xv, cols),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => dot4_avx2(xv, cols),
                _ => dot4_scalar(xv, cols),
            };
            for (q, dv) in d.into_iter().enumerate() {
                let yp = y.add((j + q) * ys);
                *yp = if acc { *yp + dv } else { dv };
            }
            j += 4;
        }
        while j < n {
            let col = std::slice::from_raw_parts(mat.add(j * cs), k);
            let dv = dot4_scalar(xv, [col, col, col, col])[0];
            let yp = y.add(j * ys);
            *yp = if acc { *yp + dv } else { dv };
            j += 1;
        }
    } else {
        for j in 0..n {
            let mut s = 0.0f32;
            for p in 0..k {
                s += *x.add(p * xs) * *mat.add(p * rs + j * cs);
            }
            let yp = y.add(j * ys);
            *yp = if acc { *yp + s } else { s };
        }
    }
}

fn dot4_scalar(x: &[f32], cols: [&[f32]; 4]) -> [f32; 4] {
    let mut out = [0.0f32; 4];
    for (o, col) in out.iter_mut().zip(cols) {
        let mut lanes = [0.0f32; 8];
        let mut xc = x.chunks_exact(8);
        let mut cc = col.chunks_exact(8);
        for (xa, ca) in (&mut xc).zip(&mut cc) {
            for l in 0..8 {
                lanes[l] += xa[l] * ca[l];
            }
        }
        let mut s: f32 = lanes.iter().sum();
        for (xv, cv) in xc.remainder().iter().zip(cc.remainder()) {
            s += xv * cv;
        }
        *o = s;
    }
    out
}

/// # Safety
/// Needs AVX2+FMA; slices all have length `x.len()`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot4_avx2(x: &[f32], cols: [&[f32]; 4]) -> [f32; 4] {
    use std::arch::x86_64::*;
    let k = x.len();
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut p = 0;
    while p + 8 <= k {
        // SAFETY: p + 8 <= k and every column has k elements.
        let xv = _mm256_loadu_ps(x.as_ptr().add(p));
        for q in 0..4 {
            acc[q] = _mm256_fmadd_ps(xv, _mm256_loadu_ps(cols[q].as_ptr().add(p)), acc[q]);
        }
        p += 8;
    }
    let mut out = [0.0f32; 4];
    for q in 0..4 {
        let mut lanes = [0.0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), acc[q]);
        let mut s: f32 = lanes.iter().sum();
        for pp in p..k {
            s = x[pp].mul_add(cols[q][pp], s);
        }
        out[q] = s;
    }
    out
}

/// # Safety
/// Needs AVX-512F; slices all have length `x.len()`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn dot4_avx512(x: &[f32], cols: [&[f32]; 4]) -> [f32; 4] {
    use std::arch::x86_64::*;
    let k = x.len();
    let mut acc = [_mm512_setzero_ps(); 4];
    let mut p = 0;
    while p < k {
        let rem = k - p;
        let m: __mmask16 = if rem >= 16 {
            0xffff
        } else {
            ((1u32 << rem) - 1) as u16
        };
        // SAFETY: lanes past k are masked off (no access, no fault).
        let xv = _mm512_maskz_loadu_ps(m, x.as_ptr().add(p));
        for q in 0..4 {
            let cv = _mm512_maskz_loadu_ps(m, cols[q].as_ptr().add(p));
            acc[q] = _mm512_fmadd_ps(xv, cv, acc[q]);
        }
        p += 16;
    }
    acc.map(|v| _mm512_reduce_add_ps(v))
}

/// `y[j] += Σ_p x[p*xs] · M[p*rs + j]`, four rows of `M` per pass over `y` (a ragged last
/// group goes row by row, never multiplying a real row by a padding weight of 0, which would
/// turn `inf` into NaN).
///
/// # Safety
/// Needs AVX2+FMA; pointers cover their extents (see [`gemv_par`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn gemv_rows_avx2(
    n: usize,
    k: usize,
    x: *const f32,
    xs: usize,
    mat: *const f32,
    rs: usize,
    y: *mut f32,
) {
    let mut p = 0;
    while p + 4 <= k {
        let s = [0, 1, 2, 3].map(|q| *x.add((p + q) * xs));
        let r = [0, 1, 2, 3].map(|q| mat.add((p + q) * rs));
        axpy_rows_avx2::<4>(n, s, r, y);
        p += 4;
    }
    while p < k {
        axpy_rows_avx2::<1>(n, [*x.add(p * xs)], [mat.add(p * rs)], y);
        p += 1;
    }
}

/// `y[j] += Σ_q s[q] · r[q][j]` for `j < n`.
///
/// # Safety
/// Needs AVX2+FMA; every `r[q]` and `y` cover `n` elements.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn axpy_rows_avx2<const R: usize>(n: usize, s: [f32; R], r: [*const f32; R], y: *mut f32) {
    use std::arch::x86_64::*;
    let sv = s.map(|v| _mm256_set1_ps(v));
    let mut j = 0;
    while j + 8 <= n {
        // SAFETY: j + 8 <= n.
        let mut yv = _mm256_loadu_ps(y.add(j));
        for q in 0..R {
            yv = _mm256_fmadd_ps(sv[q], _mm256_loadu_ps(r[q].add(j)), yv);
        }
        _mm256_storeu_ps(y.add(j), yv);
        j += 8;
    }
    while j < n {
        let mut yv = *y.add(j);
        for q in 0..R {
            yv = s[q].mul_add(*r[q].add(j), yv);
        }
        *y.add(j) = yv;
        j += 1;
    }
}

/// AVX-512 version of [`gemv_rows_avx2`] with masked tails.
///
/// # Safety
/// Needs AVX-512F; pointers cover their extents (see [`gemv_par`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn gemv_rows_avx512(
    n: usize,
    k: usize,
    x: *const f32,
    xs: usize,
    mat: *const f32,
    rs: usize,
    y: *mut f32,
) {
    let mut p = 0;
    while p + 4 <= k {
        let s = [0, 1, 2, 3].map(|q| *x.add((p + q) * xs));
        let r = [0, 1, 2, 3].map(|q| mat.add((p + q) * rs));
        axpy_rows_avx512::<4>(n, s, r, y);
        p += 4;
    }
    while p < k {
        axpy_rows_avx512::<1>(n, [*x.add(p * xs)], [mat.add(p * rs)], y);
        p += 1;
    }
}

/// `y[j] += Σ_q s[q] · r[q][j]` for `j < n`, masked tail.
///
/// # Safety
/// Needs AVX-512F; every `r[q]` and `y` cover `n` elements.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn axpy_rows_avx512<const R: usize>(n: usize, s: [f32; R], r: [*const f32; R], y: *mut f32) {
    use std::arch::x86_64::*;
    let sv = s.map(|v| _mm512_set1_ps(v));
    let mut j = 0;
    while j < n {
        let rem = n - j;
        let m: __mmask16 = if rem >= 16 {
            0xffff
        } else {
            ((1u32 << rem) - 1) as u16
        };
        // SAFETY: lanes past n are masked off (no access, no fault); wrapping_add keeps the
        // pointer arithmetic defined.
        let mut yv = _mm512_maskz_loadu_ps(m, y.wrapping_add(j));
        for q in 0..R {
            let rv = _mm512_maskz_loadu_ps(m, r[q].wrapping_add(j));
            yv = _mm512_fmadd_ps(sv[q], rv, yv);
        }
        _mm512_mask_storeu_ps(y.wrapping_add(j), m, yv);
        j += 16;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Rng;

    /// `c = a · b` with `a` row-major `m×k`, `b` at `b_strides`, `c` row-major `m×n`: the
    /// plain case most tests compare against.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn gemm_rows(
        isa: Isa,
        par: bool,
        (m, n, k): (usize, usize, usize),
        a: &[f32],
        b: &[f32],
        b_strides: (usize, usize),
        c: &mut [f32],
    ) {
        gemm_f32_with(isa, par, m, n, k, a, (k, 1), b, b_strides, c, n, false);
    }

    #[allow(clippy::too_many_arguments)]
    fn naive(
        m: usize,
        n: usize,
        k: usize,
        a: &[f32],
        (ars, acs): (usize, usize),
        b: &[f32],
        (brs, bcs): (usize, usize),
        c: &mut [f64],
        ldc: usize,
        acc: bool,
    ) {
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0f64;
                for p in 0..k {
                    s += a[i * ars + p * acs] as f64 * b[p * brs + j * bcs] as f64;
                }
                let cv = &mut c[i * ldc + j];
                *cv = if acc { *cv + s } else { s };
            }
        }
    }

    /// Runs one case on every ISA, serial and parallel, with each operand layout.
    fn check(m: usize, n: usize, k: usize, rng: &mut Rng) {
        for layout in 0..4 {
            let a_t = layout & 1 != 0;
            let b_t = layout & 2 != 0;
            // Padded leading dimensions to catch stride mistakes.
            let a_strides = if a_t { (1, m + 3) } else { (k + 2, 1) };
            let b_strides = if b_t { (1, k + 1) } else { (n + 5, 1) };
            let a = rng.vec_f32((m + 3) * (k + 2) + 8);
            let b = rng.vec_f32((k + 1) * (n + 5) + 8);
            let ldc = n + 7;
            let c0 = rng.vec_f32(m * ldc + 8);
            for acc in [false, true] {
                let mut want: Vec<f64> = c0.iter().map(|&v| v as f64).collect();
                naive(m, n, k, &a, a_strides, &b, b_strides, &mut want, ldc, acc);
                for isa in Isa::available() {
                    for par in [false, true] {
                        let mut c = c0.clone();
                        gemm_f32_with(
                            isa, par, m, n, k, &a, a_strides, &b, b_strides, &mut c, ldc, acc,
                        );
                        for (idx, (&got, &w)) in c.iter().zip(&want).enumerate() {
                            let tol = 1e-5 * (k as f64 + 1.0) + 1e-6 * w.abs();
                            assert!(
                                (got as f64 - w).abs() <= tol,
                                "{isa:?} par={par} m={m} n={n} k={k} layout={layout} acc={acc} idx={idx}: {got} vs {w}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn gemm_small_shapes_all_paths() {
        let mut rng = Rng::new(1);
        for &m in &[1, 2, 5, 6, 7, 12, 13, 25] {
            for &n in &[1, 3, 16, 17, 33, 70] {
                for &k in &[0, 1, 7, 64] {
                    check(m, n, k, &mut rng);
                }
            }
        }
    }

    #[test]
    fn gemm_block_edges_all_paths() {
        let mut rng = Rng::new(2);
        // k > KC (several pc blocks), m > MC, n > NC, and a parallel-sized product.
        check(3, 5, 600, &mut rng);
        check(500, 37, 300, &mut rng);
        check(13, 3100, 20, &mut rng);
        check(130, 150, 140, &mut rng);
        check(1, 3000, 300, &mut rng);
        check(700, 1, 300, &mut rng);
    }

    #[test]
    fn parallel_split_is_bit_identical_to_serial() {
        // Results must not depend on the thread count: every split (along M, along N) keeps
        // each C element's KC chunking and order.
        let mut rng = Rng::new(3);
        for &(m, n, k) in &[(128, 3000, 300), (3000, 128, 300), (200, 200, 700)] {
            let a = rng.vec_f32(m * k);
            let b = rng.vec_f32(k * n);
            for isa in Isa::available() {
                let mut want = vec![0.0f32; m * n];
                gemm_rows(isa, false, (m, n, k), &a, &b, (n, 1), &mut want);
                for threads in [2, 3] {
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(threads)
                        .build()
                        .unwrap();
                    let mut got = vec![f32::NAN; m * n];
                    pool.install(|| gemm_rows(isa, true, (m, n, k), &a, &b, (n, 1), &mut got));
                    assert!(got == want, "{m}x{n}x{k} {isa:?} threads={threads}");
                }
            }
        }
    }

    #[test]
    fn half_width_tiles_match_full_width_columns() {
        // n = 8 makes every kernel's only panel a half-width tile (left accumulators only);
        // the same columns inside a 40-wide product come from full-width tiles. Same FMAs in
        // the same order: bit-identical, serial, over several KC chunks and row tails.
        let mut rng = Rng::new(4);
        let (m, k, n) = (29, 450, 40);
        let a = rng.vec_f32(m * k);
        let b = rng.vec_f32(k * n);
        for isa in Isa::available() {
            let mut full = vec![0.0f32; m * n];
            gemm_rows(isa, false, (m, n, k), &a, &b, (n, 1), &mut full);
            let mut half = vec![0.0f32; m * 8];
            gemm_f32_with(
                isa,
                false,
                m,
                8,
                k,
                &a,
                (k, 1),
                &b,
                (n, 1),
                &mut half,
                8,
                false,
            );
            for i in 0..m {
                assert_eq!(
                    half[i * 8..i * 8 + 8],
                    full[i * n..i * n + 8],
                    "{isa:?} row {i}"
                );
            }
        }
    }

    #[test]
    fn gemv_inf_row_does_not_leak_nan() {
        // k = 5: a ragged row group; row 4 holds inf with weight 1, others finite.
        let (k, n) = (5, 19);
        let mut b = vec![1.0f32; k * n];
        b[4 * n + 3] = f32::INFINITY;
        let a = vec![1.0f32; k];
        for isa in Isa::available() {
            let mut c = vec![0.0f32; n];
            gemm_f32_with(
                isa,
                false,
                1,
                n,
                k,
                &a,
                (k, 1),
                &b,
                (n, 1),
                &mut c,
                n,
                false,
            );
            assert_eq!(c[3], f32::INFINITY, "{isa:?}");
            assert!(
                c.iter().enumerate().all(|(j, &v)| j == 3 || v == 5.0),
                "{isa:?}"
            );
        }
    }

    #[test]
    fn gemm_f64_matches_naive() {
        let mut rng = Rng::new(3);
        let (m, n, k) = (7, 9, 11);
        let a: Vec<f64> = (0..m * k).map(|_| rng.f32() as f64).collect();
        let b: Vec<f64> = (0..k * n).map(|_| rng.f32() as f64).collect();
        let mut c = vec![1.0f64; m * n];
        gemm_f64(m, n, k, &a, (1, m), &b, (n, 1), &mut c, n, true);
        for i in 0..m {
            for j in 0..n {
                let s: f64 = (0..k).map(|p| a[p * m + i] * b[p * n + j]).sum();
                assert!((c[i * n + j] - 1.0 - s).abs() < 1e-12);
            }
        }
    }

    #[test]
    #[should_panic(expected = "does not fit")]
    fn gemm_panics_on_short_operand() {
        let a = [0.0f32; 5];
        let b = [0.0f32; 6];
        let mut c = [0.0f32; 4];
        gemm_f32(2, 2, 3, &a, (3, 1), &b, (2, 1), &mut c, 2, false);
    }
}

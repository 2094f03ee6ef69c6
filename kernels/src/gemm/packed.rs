//! GEMM against a pre-packed right-hand side, with a fused per-column epilogue.
//!
//! A model's weight matrix is multiplied by a new left-hand side on every call; packing it
//! into microkernel panels once ([`PackedB::new`]) removes the per-call repacking (4 MB per
//! 1024×1024 layer, repeated by every task of a parallel split). [`gemm_packed_f32`] then
//! splits the work so that each task owns whole `B` panels (split along `N`, each task packs
//! its own copy of the small `A`) or whole rows of `A` (split along `M` when `m` is large),
//! and applies an [`Epilogue`] to each finished `C` tile while it is still in L1.

use super::{drive, pack_b, BSrc, Kernel, Operand, ScalarKernel, SendPtr, PAR_MNK};
#[cfg(target_arch = "x86_64")]
use super::{Avx2Kernel, Avx512Kernel};
use crate::epilogue::Epilogue;
use crate::simd::Isa;
use rayon::prelude::*;

/// A `k×n` right-hand side packed into the panels of one instruction set's microkernel.
///
/// Layout: for each `KC`-deep block of rows starting at `pc`, all `NR`-wide panels of the
/// block (zero-padded to `n_pad` columns), panel `q` at `pc*n_pad + q*kc*NR`.
#[derive(Clone)]
pub struct PackedB {
    isa: Isa,
    k: usize,
    n: usize,
    data: Vec<f32>,
}

impl std::fmt::Debug for PackedB {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackedB")
            .field("isa", &self.isa)
            .field("k", &self.k)
            .field("n", &self.n)
            .finish_non_exhaustive()
    }
}

/// `(NR, KC)` of the microkernel used for `isa` (already clamped).
fn geometry(isa: Isa) -> (usize, usize) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => (Avx512Kernel::NR, Avx512Kernel::KC),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => (Avx2Kernel::NR, Avx2Kernel::KC),
        _ => (ScalarKernel::NR, ScalarKernel::KC),
    }
}

impl PackedB {
    /// Number of `f32`s a packed `k×n` matrix occupies on `isa` (clamped to the CPU), so the
    /// caller can check a memory cap before packing. `None` on overflow.
    pub fn packed_len(isa: Isa, k: usize, n: usize) -> Option<usize> {
        let (nr, _) = geometry(isa.clamp_supported());
        n.div_ceil(nr).checked_mul(nr)?.checked_mul(k)
    }

    /// Packs `B` (`k×n`, element `(p, j)` at `b[p * strides.0 + j * strides.1]`) for the
    /// best instruction set of this CPU.
    ///
    /// # Panics
    ///
    /// If `B` does not fit in `b` for the given shape and strides, or the packed size
    /// overflows `usize`.
    pub fn new(k: usize, n: usize, b: &[f32], strides: (usize, usize)) -> PackedB {
        PackedB::new_with(Isa::best(), k, n, b, strides)
    }

    /// [`PackedB::new`] for an explicit instruction set (clamped to what the CPU supports).
    ///
    /// # Panics
    ///
    /// As [`PackedB::new`].
    pub fn new_with(isa: Isa, k: usize, n: usize, b: &[f32], strides: (usize, usize)) -> PackedB {
        super::check_operand("B", k, n, strides, b.len());
        let isa = isa.clamp_supported();
        let len = PackedB::packed_len(isa, k, n).expect("gemm: packed B size overflows");
        let mut data = vec![0.0f32; len];
        if len > 0 {
            let b = Operand {
                ptr: b.as_ptr(),
                rs: strides.0,
                cs: strides.1,
            };
            // SAFETY: `b` covers k×n (checked above); `data` holds every block's panels.
            unsafe {
                match isa {
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx512 => pack_all::<Avx512Kernel>(k, n, b, &mut data),
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx2 => pack_all::<Avx2Kernel>(k, n, b, &mut data),
                    _ => pack_all::<ScalarKernel>(k, n, b, &mut data),
                }
            }
        }
        PackedB { isa, k, n, data }
    }

    /// Rows (`k`) of the packed matrix.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Columns (`n`) of the packed matrix.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Floats held (for memory accounting).
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True if the packed matrix holds no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// # Safety
/// `b` covers `k×n`; `dst` holds `packed_len` floats.
unsafe fn pack_all<K: Kernel>(k: usize, n: usize, b: Operand, dst: &mut [f32]) {
    let n_pad = n.div_ceil(K::NR) * K::NR;
    let mut pc = 0;
    while pc < k {
        let kc = (k - pc).min(K::KC);
        pack_b::<K>(
            kc,
            n,
            b.offset(pc, 0),
            &mut dst[pc * n_pad..(pc + kc) * n_pad],
        );
        pc += kc;
    }
}

/// `C = epilogue(A·B)` with `B` pre-packed: `A` is `m×k` (strides as in
/// [`gemm_f32`](super::gemm_f32)), `C` row-major `m×n` with leading dimension `ldc`. Uses the
/// current rayon pool when the product is large.
///
/// # Panics
///
/// If `A` or `C` do not fit their slices, `ldc < n` with `m > 1`, or an epilogue vector is
/// not `n` long.
pub fn gemm_packed_f32(
    m: usize,
    a: &[f32],
    a_strides: (usize, usize),
    b: &PackedB,
    c: &mut [f32],
    ldc: usize,
    ep: &Epilogue<'_>,
) {
    gemm_packed_f32_with(true, m, a, a_strides, b, c, ldc, ep)
}

/// [`gemm_packed_f32`] with `parallel == false` to stay on the calling thread.
///
/// # Panics
///
/// As [`gemm_packed_f32`].
#[allow(clippy::too_many_arguments)]
pub fn gemm_packed_f32_with(
    parallel: bool,
    m: usize,
    a: &[f32],
    a_strides: (usize, usize),
    b: &PackedB,
    c: &mut [f32],
    ldc: usize,
    ep: &Epilogue<'_>,
) {
    let (k, n) = (b.k, b.n);
    super::check_operand("A", m, k, a_strides, a.len());
    super::check_c(m, n, c.len(), ldc);
    ep.validate(n);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        for i in 0..m {
            let row = &mut c[i * ldc..i * ldc + n];
            row.fill(0.0);
            ep.apply_row(row, 0);
        }
        return;
    }
    let a = Operand {
        ptr: a.as_ptr(),
        rs: a_strides.0,
        cs: a_strides.1,
    };
    let cp = SendPtr(c.as_mut_ptr());
    let isa = b.isa;
    let (nr, _) = geometry(isa);
    let panels = n.div_ceil(nr);
    // (row range, panel range) of one task.
    let run = |rows: (usize, usize), pans: (usize, usize)| {
        // SAFETY: the row range lies inside A and C; the panel range inside the packed B;
        // concurrent tasks get disjoint C windows (disjoint rows or disjoint columns).
        unsafe {
            let a = a.offset(rows.0, 0);
            let c = cp.get().add(rows.0 * ldc);
            let m = rows.1 - rows.0;
            let bsrc = BSrc::Packed(&b.data, panels * nr);
            let cols = (pans.0 * nr, (pans.1 * nr).min(n));
            match isa {
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 => drive::<Avx512Kernel>(m, k, a, bsrc, cols, c, ldc, false, Some(ep)),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => drive::<Avx2Kernel>(m, k, a, bsrc, cols, c, ldc, false, Some(ep)),
                _ => drive::<ScalarKernel>(m, k, a, bsrc, cols, c, ldc, false, Some(ep)),
            }
        }
    };
    let threads = if parallel {
        rayon::current_num_threads()
    } else {
        1
    };
    let mnk = m.saturating_mul(n).saturating_mul(k);
    if threads <= 1 || mnk < PAR_MNK {
        run((0, m), (0, panels));
        return;
    }
    // The C grid of (12-row block, B panel) tiles is cut into equal runs of tiles,
    // `threads::grain` runs per worker; a run is at most three rectangles (the end of one
    // line of the grid, whole lines, the start of another). Lines are row blocks when the
    // grid is tall and panel columns when it is wide, so a run of a wide product (BERT at
    // batch 1: 128 rows × 3072 columns) keeps a few panels of B in L2 for all its rows
    // instead of streaming every panel of B from L3 for each 12-row block. Tall products
    // get row bands (B is packed already, so a band costs only its A packing), and small
    // ones (7×7 pixels × 160 channels) still split evenly where a split along one side alone
    // had 5 tasks for 2 threads. 12 is a multiple of every MR, so every tile is the one the
    // serial loop computes: results do not depend on the split. A run is at least ~0.5 M
    // multiply-adds.
    const RB: usize = 12;
    let row_blocks = m.div_ceil(RB);
    let tiles = row_blocks * panels;
    let tile_macs = (RB * nr * k).max(1);
    let per = crate::threads::grain(tiles, ((1 << 19) / tile_macs).max(1));
    let panel_major = row_blocks < panels;
    let line = if panel_major { row_blocks } else { panels };
    // (range of lines, range within a line) -> (row-block range, panel range).
    let rect = |lines: (usize, usize), within: (usize, usize)| {
        let (rb, pans) = if panel_major {
            (within, lines)
        } else {
            (lines, within)
        };
        if rb.0 < rb.1 && pans.0 < pans.1 {
            run((rb.0 * RB, (rb.1 * RB).min(m)), pans);
        }
    };
    (0..tiles.div_ceil(per)).into_par_iter().for_each(|t| {
        let (lo, hi) = (t * per, ((t + 1) * per).min(tiles));
        let (l0, w0) = (lo / line, lo % line);
        let (l1, w1) = (hi / line, hi % line);
        if l0 == l1 {
            rect((l0, l0 + 1), (w0, w1));
            return;
        }
        // End of line l0, whole lines between, start of line l1.
        let first_whole = if w0 == 0 { l0 } else { l0 + 1 };
        if w0 > 0 {
            rect((l0, l0 + 1), (w0, line));
        }
        rect((first_whole, l1), (0, line));
        rect((l1, l1 + 1), (0, w1));
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::epilogue::{Activation, ChannelOp};
    use crate::gemm::tests::gemm_rows;
    use crate::testutil::Rng;

    fn check(m: usize, n: usize, k: usize, transposed_b: bool, rng: &mut Rng) {
        let a = rng.vec_f32(m * k);
        let b = rng.vec_f32(k * n);
        let bias = rng.vec_f32(n);
        let scale = rng.vec_f32(n);
        let b_strides = if transposed_b { (1, k) } else { (n, 1) };
        let ops = [ChannelOp::Add(&bias), ChannelOp::Mul(&scale)];
        for isa in Isa::available() {
            let acts = [
                Activation::None,
                Activation::Relu,
                Activation::Relu6,
                Activation::Swish,
                Activation::Gelu,
            ];
            for act in acts {
                let ep = Epilogue { ops: &ops, act };
                // Reference: the unpacked kernel on the same ISA, then separate passes.
                let mut want = vec![0.0f32; m * n];
                gemm_rows(isa, false, (m, n, k), &a, &b, b_strides, &mut want);
                for row in want.chunks_exact_mut(n.max(1)) {
                    for j in 0..n {
                        row[j] += bias[j];
                        row[j] *= scale[j];
                    }
                }
                // The activation by the portable epilogue (the kernels' in-register one is
                // bit-identical to it, tested in `epilogue_x86`).
                let act_only = Epilogue { ops: &[], act };
                crate::epilogue::apply_rows_with(Isa::Scalar, &act_only, &mut want, n.max(1));
                let packed = PackedB::new_with(isa, k, n, &b, b_strides);
                for parallel in [false, true] {
                    let mut got = vec![f32::NAN; m * n];
                    gemm_packed_f32_with(parallel, m, &a, (k, 1), &packed, &mut got, n, &ep);
                    if m == 1 {
                        // The unpacked kernel takes its matrix-vector path here.
                        for (g, w) in got.iter().zip(&want) {
                            assert!((g - w).abs() <= 1e-4 * (1.0 + w.abs()), "{g} vs {w}");
                        }
                    } else {
                        // Same ISA, blocking and summation order: bit-identical.
                        assert_eq!(got, want, "{m}x{n}x{k} {isa:?} {act:?} par={parallel}");
                    }
                }
            }
        }
    }

    #[test]
    fn packed_matches_unpacked_odd_sizes_and_tails() {
        let mut rng = Rng::new(7);
        for &(m, n, k) in &[
            (2, 3, 1),
            (7, 17, 5),
            (13, 33, 300),
            (64, 40, 257),
            (1, 16, 16),
            (100, 7, 3),
            // Whole-width tiles of both vector kernels (epilogue in registers), row tails.
            (25, 64, 40),
            (30, 96, 200),
        ] {
            check(m, n, k, false, &mut rng);
            check(m, n, k, true, &mut rng);
        }
    }

    #[test]
    fn packed_parallel_splits_match() {
        // Large enough to split along N (m small) and along M (m tall).
        let mut rng = Rng::new(11);
        check(64, 300, 130, false, &mut rng);
        check(400, 50, 120, false, &mut rng);
    }

    #[test]
    fn packed_tile_runs_match_serial_on_odd_pools() {
        // Runs of the (row block, panel) grid that start and end inside row blocks, ragged
        // last row blocks and panels, and thread counts that do not divide the grid: every
        // result bit-identical to the serial product.
        let mut rng = Rng::new(17);
        for &(m, n, k) in &[
            (49, 160, 960),
            (49, 1280, 320),
            (196, 576, 96),
            (1000, 70, 300),
        ] {
            let a = rng.vec_f32(m * k);
            let b = rng.vec_f32(k * n);
            for isa in Isa::available() {
                let packed = PackedB::new_with(isa, k, n, &b, (n, 1));
                let ep = Epilogue::default();
                let mut want = vec![0.0f32; m * n];
                gemm_packed_f32_with(false, m, &a, (k, 1), &packed, &mut want, n, &ep);
                for threads in [2, 3, 5] {
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(threads)
                        .build()
                        .unwrap();
                    let mut got = vec![f32::NAN; m * n];
                    pool.install(|| {
                        gemm_packed_f32_with(true, m, &a, (k, 1), &packed, &mut got, n, &ep)
                    });
                    assert!(got == want, "{m}x{n}x{k} {isa:?} threads={threads}");
                }
            }
        }
    }

    #[test]
    fn packed_k_zero_applies_epilogue_to_zeros() {
        let bias = [1.0f32, -2.0, 3.0];
        let ops = [ChannelOp::Add(&bias)];
        let ep = Epilogue {
            ops: &ops,
            act: Activation::Relu,
        };
        let packed = PackedB::new(0, 3, &[], (3, 1));
        let mut c = vec![f32::NAN; 6];
        gemm_packed_f32(2, &[], (0, 1), &packed, &mut c, 3, &ep);
        assert_eq!(c, [1.0, 0.0, 3.0, 1.0, 0.0, 3.0]);
    }
}

//! Row gathers and segment reductions over row-major `rows × dim` matrices.
//!
//! Indices and segment ids come from data, so bad values are reported as [`KernelError`]
//! rather than panics. All validation happens before any output is written.

use crate::error::{check_index, IndexLike, KernelError};
use crate::simd::multiversion;
use rayon::prelude::*;

/// How rows of a segment are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentReduction {
    /// Sum of the rows.
    Sum,
    /// Sum divided by the number of rows.
    Mean,
    /// Sum divided by the square root of the number of rows.
    SqrtN,
}

/// Below this many gathered elements everything stays on the calling thread.
const PAR_ELEMS: usize = 1 << 16;

multiversion! {
    /// Sums `data` rows `indices[pos]` for `pos in range` into `out` (overwritten) and
    /// applies the mode's scaling. Indices must already be validated.
    fn combine_rows / combine_rows_with<I: IndexLike>(
        data: &[f32],
        dim: usize,
        indices: &[I],
        mode: SegmentReduction,
        out: &mut [f32],
    ) {
        // Column blocks summed in registers and stored once: accumulating into `out` in
        // memory makes every row a load/add/store chain through store forwarding. Each
        // element still sums its rows in position order, starting from 0.0.
        let mut col = 0;
        while col + 64 <= dim {
            sum_columns::<I, 64>(data, dim, col, indices, &mut out[col..col + 64]);
            col += 64;
        }
        while col + 16 <= dim {
            sum_columns::<I, 16>(data, dim, col, indices, &mut out[col..col + 16]);
            col += 16;
        }
        while col < dim {
            sum_columns::<I, 1>(data, dim, col, indices, &mut out[col..col + 1]);
            col += 1;
        }
        let n = indices.len();
        if n > 1 {
            let div = match mode {
                SegmentReduction::Sum => return,
                SegmentReduction::Mean => n as f32,
                SegmentReduction::SqrtN => (n as f32).sqrt(),
            };
            for o in out.iter_mut() {
                *o /= div;
            }
        }
    }
}

/// `out[k] = Σ data[indices[p] * dim + col + k]` over `p` in order, for `k < W`
/// (`out.len() == W`), accumulated in a `[f32; W]` the compiler keeps in registers.
/// Inlined into each instruction-set variant of [`combine_rows`].
#[inline(always)]
fn sum_columns<I: IndexLike, const W: usize>(
    data: &[f32],
    dim: usize,
    col: usize,
    indices: &[I],
    out: &mut [f32],
) {
    let mut acc = [0.0f32; W];
    for &idx in indices {
        let start = idx.to_i64() as usize * dim + col;
        let row = &data[start..start + W];
        for (a, &v) in acc.iter_mut().zip(row) {
            *a += v;
        }
    }
    out.copy_from_slice(&acc);
}

/// Fused gather + segment reduction (TF `SparseSegmentSum/Mean/SqrtN`):
/// `out[s] = combine({ data[indices[p]] : segment_ids[p] == s })` for `s < num_segments`.
///
/// * `data`: row-major `rows × dim` (`rows = data.len() / dim`); rows are read in place, so
///   it may be a memory-mapped matrix.
/// * `indices[p]`: row of `data` for position `p`; `segment_ids[p]`: its output row. Ids
///   must be sorted ascending (repeats allowed).
/// * `out`: row-major `num_segments × dim`, fully overwritten; segments with no rows are
///   zero. Mean divides by the row count, SqrtN by its square root.
///
/// Each output element sums its rows in position order. Large inputs are split across
/// rayon tasks by segment.
///
/// # Errors
///
/// [`KernelError::IndexOutOfRange`] for an index outside `[0, rows)`,
/// [`KernelError::SegmentIdOutOfRange`] for an id outside `[0, num_segments)`, and
/// [`KernelError::SegmentIdsNotSorted`]; `out` is not written then. With `dim == 0` indices are not range-checked (`rows` is unknown).
///
/// # Panics
///
/// If `indices.len() != segment_ids.len()`, `out.len() != num_segments * dim`, or
/// `data.len()` is not a multiple of `dim`.
#[allow(clippy::too_many_arguments)]
pub fn sparse_segment_reduce_f32<I: IndexLike, S: IndexLike>(
    data: &[f32],
    dim: usize,
    indices: &[I],
    segment_ids: &[S],
    num_segments: usize,
    mode: SegmentReduction,
    out: &mut [f32],
) -> Result<(), KernelError> {
    assert_eq!(
        indices.len(),
        segment_ids.len(),
        "sparse_segment_reduce: indices and segment_ids lengths differ"
    );
    assert_eq!(
        out.len(),
        num_segments * dim,
        "sparse_segment_reduce: out.len() != num_segments * dim"
    );
    if dim == 0 {
        check_sorted_ids(segment_ids, num_segments)?;
        return Ok(());
    }
    assert!(
        data.len().is_multiple_of(dim),
        "sparse_segment_reduce: data.len() is not a multiple of dim"
    );
    let rows = data.len() / dim;
    check_sorted_ids(segment_ids, num_segments)?;
    for (p, &idx) in indices.iter().enumerate() {
        check_index(idx, p, rows)?;
    }
    let work = indices.len().saturating_mul(dim);
    // Segments `s0..` into `out` (whole rows), their positions starting at `segment_ids`'
    // first id >= s0; each segment's run is found by walking the sorted ids.
    let combine_from = |s0: usize, out: &mut [f32]| {
        let mut pos = segment_ids.partition_point(|&id| (id.to_i64() as usize) < s0);
        for (ds, orow) in out.chunks_exact_mut(dim).enumerate() {
            let s = s0 + ds;
            let end = pos
                + segment_ids[pos..]
                    .iter()
                    .take_while(|&&id| id.to_i64() as usize == s)
                    .count();
            combine_rows(data, dim, &indices[pos..end], mode, orow);
            pos = end;
        }
    };
    if work < PAR_ELEMS || num_segments < 2 {
        combine_from(0, out);
        return Ok(());
    }
    // ~8 tasks per thread, each a contiguous range of segments (start by binary search).
    let tasks = (8 * rayon::current_num_threads()).min(num_segments);
    let per = num_segments.div_ceil(tasks);
    out.par_chunks_mut(per * dim)
        .enumerate()
        .for_each(|(t, chunk)| combine_from(t * per, chunk));
    Ok(())
}

/// Checks `0 <= ids[p] < num_segments` and ascending order.
fn check_sorted_ids<S: IndexLike>(ids: &[S], num_segments: usize) -> Result<(), KernelError> {
    let mut prev = i64::MIN;
    for (p, &id) in ids.iter().enumerate() {
        let v = id.to_i64();
        if v < 0 || v as u64 >= num_segments as u64 {
            return Err(KernelError::SegmentIdOutOfRange {
                id: v,
                position: p,
                num_segments,
            });
        }
        if v < prev {
            return Err(KernelError::SegmentIdsNotSorted {
                id: v,
                position: p,
                previous: prev,
            });
        }
        prev = v;
    }
    Ok(())
}

/// Gathers rows: `out[p] = data[indices[p]]` for row-major `data` (`rows × dim`) and `out`
/// (`indices.len() × dim`). Large gathers are split across rayon tasks.
///
/// # Errors
///
/// [`KernelError::IndexOutOfRange`] if an index is outside `[0, rows)`; `out` is not written
/// then. With `dim == 0` indices are not checked (`rows` is unknown).
///
/// # Panics
///
/// If `out.len() != indices.len() * dim` or `data.len()` is not a multiple of `dim`.
pub fn gather_rows<T: Copy + Send + Sync, I: IndexLike>(
    data: &[T],
    dim: usize,
    indices: &[I],
    out: &mut [T],
) -> Result<(), KernelError> {
    assert_eq!(
        out.len(),
        indices.len() * dim,
        "gather_rows: out.len() != indices.len() * dim"
    );
    if dim == 0 {
        return Ok(());
    }
    assert!(
        data.len().is_multiple_of(dim),
        "gather_rows: data.len() is not a multiple of dim"
    );
    let rows = data.len() / dim;
    for (p, &idx) in indices.iter().enumerate() {
        check_index(idx, p, rows)?;
    }
    let copy = |(idx, orow): (&I, &mut [T])| {
        let r = idx.to_i64() as usize;
        orow.copy_from_slice(&data[r * dim..r * dim + dim]);
    };
    if out.len() < PAR_ELEMS {
        indices.iter().zip(out.chunks_exact_mut(dim)).for_each(copy);
    } else {
        let rows_per_task = (PAR_ELEMS / 4 / dim).max(1);
        indices
            .par_chunks(rows_per_task)
            .zip(out.par_chunks_mut(rows_per_task * dim))
            .for_each(|(ix, o)| ix.iter().zip(o.chunks_exact_mut(dim)).for_each(copy));
    }
    Ok(())
}

/// Scatter-add rows (TF `UnsortedSegmentSum`): `out[s] = Σ { data[p] : segment_ids[p] == s }`
/// for row-major `data` (`segment_ids.len() × dim`) and `out` (`num_segments × dim`, fully
/// overwritten; empty segments are zero). Rows with a **negative** id are dropped, as in TF.
/// Rows are added in position order (serial).
///
/// # Errors
///
/// [`KernelError::SegmentIdOutOfRange`] for an id `>= num_segments` (checked before `out` is
/// written).
///
/// # Panics
///
/// If `data.len() != segment_ids.len() * dim` or `out.len() != num_segments * dim`.
pub fn unsorted_segment_sum<T, S>(
    data: &[T],
    dim: usize,
    segment_ids: &[S],
    num_segments: usize,
    out: &mut [T],
) -> Result<(), KernelError>
where
    T: Copy + Default + std::ops::AddAssign,
    S: IndexLike,
{
    unsorted_segment_reduce(
        data,
        dim,
        segment_ids,
        num_segments,
        out,
        T::default(),
        |o, x| *o += x,
    )
}

/// The general scatter-reduce behind TF's `UnsortedSegment{Sum,Max,Min,Prod}`: every output
/// element starts at `init` (empty segments keep it) and folds in each row of its segment, in
/// position order, with `combine(acc, x)`. Ids as in [`unsorted_segment_sum`].
///
/// # Errors
///
/// [`KernelError::SegmentIdOutOfRange`] for an id `>= num_segments` (checked before `out` is
/// written).
///
/// # Panics
///
/// If `data.len() != segment_ids.len() * dim` or `out.len() != num_segments * dim`.
pub fn unsorted_segment_reduce<T, S>(
    data: &[T],
    dim: usize,
    segment_ids: &[S],
    num_segments: usize,
    out: &mut [T],
    init: T,
    combine: impl Fn(&mut T, T),
) -> Result<(), KernelError>
where
    T: Copy,
    S: IndexLike,
{
    assert_eq!(
        data.len(),
        segment_ids.len() * dim,
        "unsorted_segment_reduce: data.len() != segment_ids.len() * dim"
    );
    assert_eq!(
        out.len(),
        num_segments * dim,
        "unsorted_segment_reduce: out.len() != num_segments * dim"
    );
    for (p, &id) in segment_ids.iter().enumerate() {
        let v = id.to_i64();
        if v >= 0 && v as u64 >= num_segments as u64 {
            return Err(KernelError::SegmentIdOutOfRange {
                id: v,
                position: p,
                num_segments,
            });
        }
    }
    out.fill(init);
    if dim == 0 {
        return Ok(());
    }
    for (&id, row) in segment_ids.iter().zip(data.chunks_exact(dim)) {
        let v = id.to_i64();
        if v < 0 {
            continue;
        }
        let s = v as usize;
        for (o, &x) in out[s * dim..s * dim + dim].iter_mut().zip(row) {
            combine(o, x);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::Isa;
    use crate::testutil::Rng;

    fn naive(
        data: &[f32],
        dim: usize,
        indices: &[i64],
        ids: &[i32],
        nseg: usize,
        mode: SegmentReduction,
    ) -> Vec<f32> {
        let mut out = vec![0.0f64; nseg * dim];
        let mut cnt = vec![0usize; nseg];
        for (&ix, &s) in indices.iter().zip(ids) {
            cnt[s as usize] += 1;
            for d in 0..dim {
                out[s as usize * dim + d] += data[ix as usize * dim + d] as f64;
            }
        }
        for s in 0..nseg {
            let div = match mode {
                SegmentReduction::Sum => 1.0,
                SegmentReduction::Mean => cnt[s].max(1) as f64,
                SegmentReduction::SqrtN => (cnt[s].max(1) as f64).sqrt(),
            };
            for d in 0..dim {
                out[s * dim + d] /= div;
            }
        }
        out.into_iter().map(|v| v as f32).collect()
    }

    #[test]
    fn sparse_segment_matches_naive_serial_and_parallel() {
        let mut rng = Rng::new(7);
        for &(rows, dim, n, nseg) in &[(10, 3, 20, 6), (500, 64, 3000, 700), (50, 17, 0, 4)] {
            let data = rng.vec_f32(rows * dim);
            let indices: Vec<i64> = (0..n).map(|_| rng.below(rows) as i64).collect();
            let mut ids: Vec<i32> = (0..n).map(|_| rng.below(nseg) as i32).collect();
            ids.sort();
            for mode in [
                SegmentReduction::Sum,
                SegmentReduction::Mean,
                SegmentReduction::SqrtN,
            ] {
                let want = naive(&data, dim, &indices, &ids, nseg, mode);
                let mut out = vec![f32::NAN; nseg * dim];
                sparse_segment_reduce_f32(&data, dim, &indices, &ids, nseg, mode, &mut out)
                    .unwrap();
                for (g, w) in out.iter().zip(&want) {
                    assert!((g - w).abs() <= 1e-5 * (1.0 + w.abs()), "{g} vs {w}");
                }
            }
        }
    }

    /// The documented summation: per segment, 0.0 plus each row in position order in f32,
    /// then one division (for more than one row).
    fn sequential(
        data: &[f32],
        dim: usize,
        indices: &[i64],
        ids: &[i32],
        nseg: usize,
        mode: SegmentReduction,
    ) -> Vec<f32> {
        let mut out = vec![0.0f32; nseg * dim];
        let mut cnt = vec![0usize; nseg];
        for (&ix, &s) in indices.iter().zip(ids) {
            let s = s as usize;
            cnt[s] += 1;
            for d in 0..dim {
                out[s * dim + d] += data[ix as usize * dim + d];
            }
        }
        for s in 0..nseg {
            let div = match mode {
                SegmentReduction::Sum => continue,
                _ if cnt[s] < 2 => continue,
                SegmentReduction::Mean => cnt[s] as f32,
                SegmentReduction::SqrtN => (cnt[s] as f32).sqrt(),
            };
            for d in 0..dim {
                out[s * dim + d] /= div;
            }
        }
        out
    }

    #[test]
    fn sparse_segment_is_bit_identical_to_sequential_sums() {
        // Every column-block width (64, 16, 1) and their mixes, serial and parallel sizes,
        // every instruction set: the same bits as summing rows one by one in f32.
        let mut rng = Rng::new(11);
        for dim in [1usize, 2, 15, 16, 17, 63, 64, 65, 80, 128, 130, 200] {
            for (rows, n, nseg) in [(30, 0, 3), (30, 40, 9), (300, 5000, 1100)] {
                let data: Vec<f32> = rng
                    .vec_f32(rows * dim)
                    .into_iter()
                    .map(|v| v * 1e3 - 0.3)
                    .collect();
                let indices: Vec<i64> = (0..n).map(|_| rng.below(rows) as i64).collect();
                let mut ids: Vec<i32> = (0..n).map(|_| rng.below(nseg) as i32).collect();
                ids.sort();
                for mode in [
                    SegmentReduction::Sum,
                    SegmentReduction::Mean,
                    SegmentReduction::SqrtN,
                ] {
                    let want = sequential(&data, dim, &indices, &ids, nseg, mode);
                    let mut out = vec![f32::NAN; nseg * dim];
                    sparse_segment_reduce_f32(&data, dim, &indices, &ids, nseg, mode, &mut out)
                        .unwrap();
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&out), bits(&want), "dim {dim} n {n} {mode:?}");
                    for isa in Isa::available() {
                        for s in 0..nseg.min(12) {
                            let lo = ids.partition_point(|&i| (i as usize) < s);
                            let hi = ids.partition_point(|&i| (i as usize) <= s);
                            let mut row = vec![f32::NAN; dim];
                            combine_rows_with(isa, &data, dim, &indices[lo..hi], mode, &mut row);
                            assert_eq!(
                                bits(&row),
                                bits(&want[s * dim..(s + 1) * dim]),
                                "{isa:?} dim {dim} segment {s}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn combine_rows_all_isas() {
        let mut rng = Rng::new(8);
        let data = rng.vec_f32(40 * 37);
        let idx: Vec<usize> = (0..25).map(|_| rng.below(40)).collect();
        let mut want = vec![0.0f32; 37];
        combine_rows_with(
            Isa::Scalar,
            &data,
            37,
            &idx,
            SegmentReduction::Mean,
            &mut want,
        );
        for isa in Isa::available() {
            let mut out = vec![1.0f32; 37];
            combine_rows_with(isa, &data, 37, &idx, SegmentReduction::Mean, &mut out);
            assert_eq!(out, want, "{isa:?}");
        }
    }

    #[test]
    fn sparse_segment_errors() {
        let data = [1.0f32, 2.0, 3.0, 4.0];
        let mut out = [0.0f32; 4];
        let r = sparse_segment_reduce_f32(
            &data,
            2,
            &[0i64, 2],
            &[0i32, 1],
            2,
            SegmentReduction::Sum,
            &mut out,
        );
        assert!(matches!(
            r,
            Err(KernelError::IndexOutOfRange {
                index: 2,
                position: 1,
                bound: 2
            })
        ));
        let r = sparse_segment_reduce_f32(
            &data,
            2,
            &[0i64, -1],
            &[0i32, 1],
            2,
            SegmentReduction::Sum,
            &mut out,
        );
        assert!(matches!(
            r,
            Err(KernelError::IndexOutOfRange { index: -1, .. })
        ));
        let r = sparse_segment_reduce_f32(
            &data,
            2,
            &[0i64, 1],
            &[1i32, 0],
            2,
            SegmentReduction::Sum,
            &mut out,
        );
        assert!(matches!(r, Err(KernelError::SegmentIdsNotSorted { .. })));
        let r = sparse_segment_reduce_f32(
            &data,
            2,
            &[0i64, 1],
            &[0i32, 2],
            2,
            SegmentReduction::Sum,
            &mut out,
        );
        assert!(matches!(
            r,
            Err(KernelError::SegmentIdOutOfRange { id: 2, .. })
        ));
        // Empty segment stays zero; mean of one row is the row.
        let mut out = [9.0f32; 6];
        sparse_segment_reduce_f32(
            &data,
            2,
            &[1usize, 0],
            &[0u32, 2],
            3,
            SegmentReduction::Mean,
            &mut out,
        )
        .unwrap();
        assert_eq!(out, [3.0, 4.0, 0.0, 0.0, 1.0, 2.0]);
    }

    #[test]
    fn gather_and_unsorted_sum() {
        let data: Vec<i32> = (0..12).collect();
        let mut out = vec![0; 9];
        gather_rows(&data, 3, &[3i32, 0, 3], &mut out).unwrap();
        assert_eq!(out, [9, 10, 11, 0, 1, 2, 9, 10, 11]);
        assert!(gather_rows(&data, 3, &[4i64, 0, 0], &mut out).is_err());
        let big: Vec<f32> = (0..200_000).map(|v| v as f32).collect();
        let idx: Vec<u64> = (0..50_000).map(|i| (i * 7919) % 100_000).collect();
        let mut out = vec![0.0f32; 100_000];
        gather_rows(&big, 2, &idx, &mut out).unwrap();
        for (p, &i) in idx.iter().enumerate() {
            assert_eq!(out[2 * p], big[2 * i as usize]);
        }

        let mut out = vec![7i64; 6];
        let data = [1i64, 2, 3, 4, 5, 6, 7, 8];
        unsorted_segment_sum(&data, 2, &[2i32, -1, 0, 2], 3, &mut out).unwrap();
        assert_eq!(out, [5, 6, 0, 0, 8, 10]);
        assert!(matches!(
            unsorted_segment_sum(&data, 2, &[3i32, 0, 0, 0], 3, &mut out),
            Err(KernelError::SegmentIdOutOfRange { id: 3, .. })
        ));
    }
}

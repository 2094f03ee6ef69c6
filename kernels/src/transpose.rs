//! N-dimensional axis permutation (TF `Transpose`).

use rayon::prelude::*;

/// Copies `input` (row-major, `shape`) into `out` (row-major) with axes permuted:
/// output axis `i` is input axis `perm[i]`, i.e. `out.shape[i] = shape[perm[i]]`.
///
/// Size-1 axes are dropped and axes that stay adjacent are merged first, so e.g. a
/// `[b, m, n] → [b, n, m]` permutation becomes a batch of 2-D transposes. Cases:
/// identity → copy; innermost axis unchanged → contiguous row copies; 2-D swap (possibly
/// batched) → cache-blocked 32×32 tiles; otherwise a generic odometer loop. Large copies are
/// split across rayon tasks over the outermost output axis.
///
/// # Panics
///
/// If `perm` is not a permutation of `0..shape.len()`, or slice lengths differ from the
/// product of `shape`.
pub fn transpose<T: Copy + Send + Sync>(
    input: &[T],
    shape: &[usize],
    perm: &[usize],
    out: &mut [T],
) {
    let rank = shape.len();
    assert_eq!(perm.len(), rank, "transpose: perm length != rank");
    let mut seen = vec![false; rank];
    for &p in perm {
        assert!(p < rank && !seen[p], "transpose: perm is not a permutation");
        seen[p] = true;
    }
    let total: usize = shape.iter().product();
    assert_eq!(input.len(), total, "transpose: input length");
    assert_eq!(out.len(), total, "transpose: output length");
    if total == 0 {
        return;
    }
    // Input strides, then (dims, input strides) in output order, simplified.
    let mut in_strides = vec![0usize; rank];
    let mut s = 1;
    for i in (0..rank).rev() {
        in_strides[i] = s;
        s *= shape[i];
    }
    let mut dims: Vec<usize> = Vec::new();
    let mut strides: Vec<usize> = Vec::new();
    for &p in perm {
        if shape[p] == 1 {
            continue;
        }
        if let Some(&last) = strides.last() {
            if last == in_strides[p] * shape[p] {
                *dims.last_mut().unwrap() *= shape[p];
                *strides.last_mut().unwrap() = in_strides[p];
                continue;
            }
        }
        dims.push(shape[p]);
        strides.push(in_strides[p]);
    }
    let r = dims.len();
    if r <= 1 {
        // Identity after simplification.
        out.copy_from_slice(input);
        return;
    }
    let parallel = total >= 1 << 18;
    // Batched 2-D swap: last two output axes are (a, b) with input strides (1, a) in the
    // input's own layout: out[.., j, i] = in[.., i, j].
    if r >= 2 && strides[r - 2] == 1 && strides[r - 1] == dims[r - 2] {
        let (cols_out, rows_out) = (dims[r - 1], dims[r - 2]);
        let mat = rows_out * cols_out;
        let outer_dims = &dims[..r - 2];
        let outer_strides = &strides[..r - 2];
        let job = |(bi, o): (usize, &mut [T])| {
            let off = offset_of(bi, outer_dims, outer_strides);
            transpose_2d(&input[off..off + mat], cols_out, rows_out, o);
        };
        if parallel && out.len() / mat > 1 {
            out.par_chunks_mut(mat).enumerate().for_each(job);
        } else if parallel {
            // One big matrix: split over output row blocks.
            let blk = 32;
            out.par_chunks_mut(blk * cols_out)
                .enumerate()
                .for_each(|(bi, o)| {
                    let r0 = bi * blk;
                    let rows = o.len() / cols_out;
                    for i in 0..rows {
                        let orow = &mut o[i * cols_out..(i + 1) * cols_out];
                        for (j, ov) in orow.iter_mut().enumerate() {
                            *ov = input[j * rows_out + r0 + i];
                        }
                    }
                });
        } else {
            out.chunks_mut(mat).enumerate().for_each(job);
        }
        return;
    }
    // Generic: odometer over all but the innermost output axis.
    let n = dims[r - 1];
    let inner_stride = strides[r - 1];
    let outer_dims = &dims[..r - 1];
    let outer_strides = &strides[..r - 1];
    let rows_per_task = if parallel {
        (1 << 14) / n + 1
    } else {
        usize::MAX / 2
    };
    let job = |(ti, o): (usize, &mut [T])| {
        let first = ti * rows_per_task;
        let mut idx = vec![0usize; r - 1];
        let mut rem = first;
        for ax in (0..r - 1).rev() {
            idx[ax] = rem % outer_dims[ax];
            rem /= outer_dims[ax];
        }
        let mut off: usize = idx.iter().zip(outer_strides).map(|(i, s)| i * s).sum();
        for orow in o.chunks_exact_mut(n) {
            if inner_stride == 1 {
                orow.copy_from_slice(&input[off..off + n]);
            } else {
                for (j, ov) in orow.iter_mut().enumerate() {
                    *ov = input[off + j * inner_stride];
                }
            }
            for ax in (0..r - 1).rev() {
                idx[ax] += 1;
                off += outer_strides[ax];
                if idx[ax] < outer_dims[ax] {
                    break;
                }
                off -= outer_strides[ax] * outer_dims[ax];
                idx[ax] = 0;
            }
        }
    };
    if parallel {
        out.par_chunks_mut(rows_per_task * n)
            .enumerate()
            .for_each(job);
    } else {
        job((0, out));
    }
}

/// Input offset of the `linear`-th element of an index space `dims` with `strides`.
fn offset_of(mut linear: usize, dims: &[usize], strides: &[usize]) -> usize {
    let mut off = 0;
    for ax in (0..dims.len()).rev() {
        off += (linear % dims[ax]) * strides[ax];
        linear /= dims[ax];
    }
    off
}

/// 2-D transpose in 32×32 tiles: `input` is row-major `cols_out × rows_out`, `out` is
/// row-major `rows_out × cols_out`, `out[r * cols_out + c] = input[c * rows_out + r]`.
fn transpose_2d<T: Copy>(input: &[T], cols_out: usize, rows_out: usize, out: &mut [T]) {
    const B: usize = 32;
    for r0 in (0..rows_out).step_by(B) {
        let r1 = (r0 + B).min(rows_out);
        for c0 in (0..cols_out).step_by(B) {
            let c1 = (c0 + B).min(cols_out);
            for r in r0..r1 {
                let orow = &mut out[r * cols_out + c0..r * cols_out + c1];
                for (c, ov) in (c0..c1).zip(orow.iter_mut()) {
                    *ov = input[c * rows_out + r];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(input: &[u32], shape: &[usize], perm: &[usize]) -> Vec<u32> {
        let rank = shape.len();
        let oshape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
        let total: usize = shape.iter().product();
        let mut out = vec![0; total];
        for (lin, o) in out.iter_mut().enumerate() {
            let mut idx = vec![0; rank];
            let mut rem = lin;
            for ax in (0..rank).rev() {
                idx[ax] = rem % oshape[ax];
                rem /= oshape[ax];
            }
            let mut in_idx = vec![0; rank];
            for ax in 0..rank {
                in_idx[perm[ax]] = idx[ax];
            }
            let mut off = 0;
            for ax in 0..rank {
                off = off * shape[ax] + in_idx[ax];
            }
            *o = input[off];
        }
        out
    }

    #[test]
    fn transpose_matches_naive() {
        let cases: &[(&[usize], &[usize])] = &[
            (&[5], &[0]),
            (&[3, 4], &[1, 0]),
            (&[3, 4], &[0, 1]),
            (&[2, 3, 4], &[0, 2, 1]),
            (&[2, 3, 4], &[2, 0, 1]),
            (&[2, 3, 4], &[1, 0, 2]),
            (&[2, 1, 3, 4], &[3, 1, 0, 2]),
            (&[2, 3, 4, 5], &[0, 2, 1, 3]),
            (&[2, 3, 4, 5], &[3, 2, 1, 0]),
            (&[70, 50], &[1, 0]),
            (&[600, 700], &[1, 0]),
            (&[4, 300, 300], &[0, 2, 1]),
            (&[64, 64, 70], &[2, 0, 1]),
            (&[64, 70, 64], &[1, 0, 2]),
            (&[3, 0, 2], &[2, 1, 0]),
        ];
        for (shape, perm) in cases {
            let total: usize = shape.iter().product();
            let input: Vec<u32> = (0..total as u32).collect();
            let mut out = vec![u32::MAX; total];
            transpose(&input, shape, perm, &mut out);
            assert_eq!(out, naive(&input, shape, perm), "{shape:?} {perm:?}");
        }
    }

    #[test]
    #[should_panic(expected = "not a permutation")]
    fn bad_perm_panics() {
        let mut o = [0u8; 4];
        transpose(&[0u8; 4], &[2, 2], &[0, 0], &mut o);
    }
}

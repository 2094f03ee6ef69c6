//! NumPy broadcasting, in one place: the broadcast shape of two shapes, the stride-0 view of
//! an operand under a broadcast, and the collapsing of axes that every operand reads
//! contiguously (so the innermost loop runs as long as possible). `tfhub`'s elementwise ops
//! drive their loops with these; [`broadcast_binary`] is the serial reference driver.

/// The NumPy broadcast of two shapes (right-aligned; equal sizes or one of them 1), or `None`
/// if they are incompatible.
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let n = a.len().max(b.len());
    let dim = |s: &[usize], i: usize| {
        if i + s.len() >= n {
            s[i + s.len() - n]
        } else {
            1
        }
    };
    (0..n)
        .map(|i| match (dim(a, i), dim(b, i)) {
            (x, y) if x == y => Some(x),
            (1, y) => Some(y),
            (x, 1) => Some(x),
            _ => None,
        })
        .collect()
}

/// Drops size-1 axes and merges adjacent axes that are contiguous in every operand. Returns
/// the collapsed dims and each operand's strides over them; always at least one axis (a
/// scalar becomes `[1]` with stride 0).
pub fn collapse<const K: usize>(
    shape: &[usize],
    strides: [&[usize]; K],
) -> (Vec<usize>, [Vec<usize>; K]) {
    let mut dims: Vec<usize> = Vec::new();
    let mut st: [Vec<usize>; K] = std::array::from_fn(|_| Vec::new());
    for (i, &d) in shape.iter().enumerate() {
        if d == 1 {
            continue;
        }
        let merge = !dims.is_empty()
            && (0..K).all(|k| st[k].last().is_some_and(|&l| l == strides[k][i] * d));
        if merge {
            *dims.last_mut().expect("non-empty") *= d;
            for k in 0..K {
                *st[k].last_mut().expect("non-empty") = strides[k][i];
            }
        } else {
            dims.push(d);
            for k in 0..K {
                st[k].push(strides[k][i]);
            }
        }
    }
    if dims.is_empty() {
        dims.push(1);
        for s in &mut st {
            s.push(0);
        }
    }
    (dims, st)
}

/// General broadcasting binary map: for every index `idx` of the row-major `shape`,
/// `out[linear(idx)] = f(a[Σ idx[i]*a_strides[i]], b[Σ idx[i]*b_strides[i]])`.
///
/// Broadcast axes have stride 0 (so a scalar operand has all-zero strides). `out` is
/// contiguous row-major. Adjacent axes contiguous in both operands are merged first; the
/// innermost loop has specialised cases for contiguous/contiguous, scalar/contiguous and
/// contiguous/scalar operands. Serial.
///
/// # Panics
///
/// If `a_strides`/`b_strides` lengths differ from `shape.len()`, `out.len()` is not the
/// product of `shape`, or an operand's largest offset is outside its slice.
pub fn broadcast_binary<T: Copy, F: Fn(T, T) -> T>(
    shape: &[usize],
    a: &[T],
    a_strides: &[usize],
    b: &[T],
    b_strides: &[usize],
    out: &mut [T],
    f: F,
) {
    assert_eq!(
        a_strides.len(),
        shape.len(),
        "broadcast_binary: a_strides rank"
    );
    assert_eq!(
        b_strides.len(),
        shape.len(),
        "broadcast_binary: b_strides rank"
    );
    let total: usize = shape.iter().product();
    assert_eq!(out.len(), total, "broadcast_binary: out length");
    if total == 0 {
        return;
    }
    let max_off =
        |s: &[usize]| -> usize { shape.iter().zip(s).map(|(&d, &st)| (d - 1) * st).sum() };
    assert!(
        max_off(a_strides) < a.len(),
        "broadcast_binary: a too short"
    );
    assert!(
        max_off(b_strides) < b.len(),
        "broadcast_binary: b too short"
    );
    let (dims, [sa, sb]) = collapse(shape, [a_strides, b_strides]);
    let r = dims.len();
    let n = dims[r - 1];
    let (ia, ib) = (sa[r - 1], sb[r - 1]);
    let mut idx = vec![0usize; r - 1];
    let (mut oa, mut ob) = (0usize, 0usize);
    for orow in out.chunks_exact_mut(n) {
        match (ia, ib) {
            (1, 1) => {
                for ((o, &x), &y) in orow.iter_mut().zip(&a[oa..oa + n]).zip(&b[ob..ob + n]) {
                    *o = f(x, y);
                }
            }
            (0, 1) => {
                let x = a[oa];
                for (o, &y) in orow.iter_mut().zip(&b[ob..ob + n]) {
                    *o = f(x, y);
                }
            }
            (1, 0) => {
                let y = b[ob];
                for (o, &x) in orow.iter_mut().zip(&a[oa..oa + n]) {
                    *o = f(x, y);
                }
            }
            _ => {
                for (j, o) in orow.iter_mut().enumerate() {
                    *o = f(a[oa + j * ia], b[ob + j * ib]);
                }
            }
        }
        // Advance the odometer over the outer axes.
        for ax in (0..r - 1).rev() {
            idx[ax] += 1;
            oa += sa[ax];
            ob += sb[ax];
            if idx[ax] < dims[ax] {
                break;
            }
            oa -= sa[ax] * dims[ax];
            ob -= sb[ax] * dims[ax];
            idx[ax] = 0;
        }
    }
}

/// Row-major strides of `shape` with stride 0 on axes where `shape[i] == 1`, right-aligned
/// to `out_rank` axes (numpy broadcasting): convenient input for [`broadcast_binary`].
///
/// # Panics
///
/// If `shape.len() > out_rank`.
pub fn broadcast_strides(shape: &[usize], out_rank: usize) -> Vec<usize> {
    assert!(shape.len() <= out_rank, "broadcast_strides: rank too large");
    let mut strides = vec![0usize; out_rank];
    let off = out_rank - shape.len();
    let mut s = 1;
    for i in (0..shape.len()).rev() {
        strides[off + i] = if shape[i] == 1 { 0 } else { s };
        s *= shape[i];
    }
    strides
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Rng;

    #[test]
    fn shapes_like_numpy() {
        assert_eq!(broadcast_shape(&[2, 1, 3], &[4, 1]), Some(vec![2, 4, 3]));
        assert_eq!(broadcast_shape(&[], &[3]), Some(vec![3]));
        assert_eq!(broadcast_shape(&[0, 1], &[1, 5]), Some(vec![0, 5]));
        assert_eq!(broadcast_shape(&[2], &[3]), None);
    }

    #[test]
    fn collapse_merges_contiguous_axes() {
        // [2,3,4] contiguous + a [4] row broadcast: the outer two axes merge for both.
        let (d, [a, b]) = collapse(&[2, 3, 4], [&[12, 4, 1], &[0, 0, 1]]);
        assert_eq!((d, a, b), (vec![6, 4], vec![4, 1], vec![0, 1]));
        let (d, [a]) = collapse(&[1, 1], [&[0, 0]]);
        assert_eq!((d, a), (vec![1], vec![0]));
    }

    #[test]
    fn broadcast_binary_cases() {
        // [2,3] + [3] and [2,1] * [1,3] and scalar, plus a transposed (strided) operand.
        let a = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let b = [10.0f32, 20.0, 30.0];
        let mut out = [0.0f32; 6];
        broadcast_binary(
            &[2, 3],
            &a,
            &[3, 1],
            &b,
            &broadcast_strides(&[3], 2),
            &mut out,
            |x, y| x + y,
        );
        assert_eq!(out, [11.0, 22.0, 33.0, 14.0, 25.0, 36.0]);
        broadcast_binary(
            &[2, 3],
            &[2.0f32, 3.0],
            &[1, 0],
            &b,
            &[0, 1],
            &mut out,
            |x, y| x * y,
        );
        assert_eq!(out, [20.0, 40.0, 60.0, 30.0, 60.0, 90.0]);
        broadcast_binary(
            &[2, 3],
            &[1.0f32],
            &[0, 0],
            &a,
            &[3, 1],
            &mut out,
            |x, y| x - y,
        );
        assert_eq!(out, [0.0, -1.0, -2.0, -3.0, -4.0, -5.0]);
        // a viewed transposed: shape [3,2] of a (2x3) -> strides (1,3)
        broadcast_binary(
            &[3, 2],
            &a,
            &[1, 3],
            &[0.0f32],
            &[0, 0],
            &mut out,
            |x, y| x + y,
        );
        assert_eq!(out, [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        // Generic T and higher rank against a naive loop.
        let mut rng = Rng::new(5);
        let shape = [3, 1, 4, 5];
        let av: Vec<i64> = (0..60).map(|_| rng.below(100) as i64).collect();
        let bv: Vec<i64> = (0..20).map(|_| rng.below(100) as i64).collect();
        let sa = broadcast_strides(&[3, 1, 4, 5], 4);
        let sb = broadcast_strides(&[4, 5], 4);
        let mut o = vec![0i64; 60];
        broadcast_binary(&shape, &av, &sa, &bv, &sb, &mut o, |x, y| x * 1000 + y);
        for i in 0..3 {
            for k in 0..4 {
                for l in 0..5 {
                    let e = av[i * 20 + k * 5 + l] * 1000 + bv[k * 5 + l];
                    assert_eq!(o[i * 20 + k * 5 + l], e);
                }
            }
        }
        let sb2 = [0, 0, 1, 4];
        broadcast_binary(&shape, &av, &sa, &bv, &sb2, &mut o, |x, y| x * 1000 + y);
        assert_eq!(
            o[2 * 20 + 3 * 5 + 1],
            av[2 * 20 + 3 * 5 + 1] * 1000 + bv[3 + 4]
        );
    }
}

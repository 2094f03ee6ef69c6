//! Tests for the matrix products.

use super::*;
use crate::ops::{Limits, Session};
use std::collections::HashMap;

fn session() -> Session {
    Session::new(".".into(), None, Limits::default())
}

fn range(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    let v = (0..n).map(|i| ((i * 7 % 11) as f32 - 5.0) * 0.25).collect();
    Tensor::from_vec(shape, v).unwrap()
}

fn run(op: &dyn Op, inputs: Vec<Tensor>) -> Result<Tensor, OpError> {
    let s = session();
    let mut cx = EvalCtx::new(&s);
    Ok(op.eval(&mut cx, inputs.into())?.remove(0))
}

/// Reference einsum: a loop over every assignment of every label.
fn naive_einsum(eq: &str, ins: &[&Tensor]) -> (Vec<usize>, Vec<f32>) {
    let (lhs, out) = eq.split_once("->").unwrap();
    let subs: Vec<Vec<char>> = lhs.split(',').map(|s| s.chars().collect()).collect();
    let mut dims: HashMap<char, usize> = HashMap::new();
    for (s, t) in subs.iter().zip(ins) {
        for (c, &d) in s.iter().zip(t.shape()) {
            dims.insert(*c, d);
        }
    }
    let labels: Vec<char> = dims.keys().copied().collect();
    let out: Vec<char> = out.chars().collect();
    let oshape: Vec<usize> = out.iter().map(|c| dims[c]).collect();
    let mut res = vec![0f32; oshape.iter().product()];
    let total: usize = labels.iter().map(|c| dims[c]).product();
    for flat in 0..total {
        let mut rem = flat;
        let mut val: HashMap<char, usize> = HashMap::new();
        for c in &labels {
            val.insert(*c, rem % dims[c]);
            rem /= dims[c];
        }
        let at = |s: &[char], shape: &[usize]| {
            s.iter().zip(shape).fold(0, |acc, (c, &d)| acc * d + val[c])
        };
        let mut p = 1.0;
        for (s, t) in subs.iter().zip(ins) {
            p *= t.as_slice::<f32>().unwrap()[at(s, t.shape())];
        }
        res[at(&out, &oshape)] += p;
    }
    (oshape, res)
}

fn check_einsum(eq: &str, shapes: &[&[usize]]) {
    let ins: Vec<Tensor> = shapes.iter().map(|s| range(s)).collect();
    let op = Einsum::parse(eq.to_string()).unwrap();
    let got = run(&op, ins.clone()).unwrap();
    let (shape, want) = naive_einsum(eq, &ins.iter().collect::<Vec<_>>());
    assert_eq!(got.shape(), &shape[..], "{eq}");
    for (g, w) in got.as_slice::<f32>().unwrap().iter().zip(&want) {
        assert!((g - w).abs() <= 1e-4 * w.abs().max(1.0), "{eq}: {g} vs {w}");
    }
}

#[test]
fn matmul_transposes_read_in_place() {
    // tf.linalg.matmul([[1,2,3],[4,5,6]], [[7,8],[9,10],[11,12]]) -> [[58,64],[139,154]]
    let a = Tensor::from_vec(&[2, 3], vec![1f32, 2., 3., 4., 5., 6.]).unwrap();
    let b = Tensor::from_vec(&[3, 2], vec![7f32, 8., 9., 10., 11., 12.]).unwrap();
    let at = Tensor::from_vec(&[3, 2], vec![1f32, 4., 2., 5., 3., 6.]).unwrap();
    let bt = Tensor::from_vec(&[2, 3], vec![7f32, 9., 11., 8., 10., 12.]).unwrap();
    let want = [58f32, 64., 139., 154.];
    for (ta, tb, x, y) in [
        (false, false, &a, &b),
        (true, false, &at, &b),
        (false, true, &a, &bt),
        (true, true, &at, &bt),
    ] {
        let got = run(&MatMul::new(ta, tb), vec![x.clone(), y.clone()]).unwrap();
        assert_eq!(got.shape(), &[2, 2]);
        assert_eq!(got.as_slice::<f32>().unwrap(), &want);
    }
    let ai = Tensor::from_vec(&[2, 3], vec![1i32, 2, 3, 4, 5, 6]).unwrap();
    let bi = Tensor::from_vec(&[3, 2], vec![7i32, 8, 9, 10, 11, 12]).unwrap();
    let got = run(&MatMul::new(false, false), vec![ai, bi]).unwrap();
    assert_eq!(got.as_slice::<i32>().unwrap(), &[58, 64, 139, 154]);
    let h = |v: &[f32], s: &[usize]| {
        Tensor::from_vec(s, v.iter().map(|&x| f16::from_f32(x)).collect()).unwrap()
    };
    let got = run(
        &MatMul::new(false, false),
        vec![
            h(&[1., 2., 3., 4., 5., 6.], &[2, 3]),
            h(&[7., 8., 9., 10., 11., 12.], &[3, 2]),
        ],
    )
    .unwrap();
    assert_eq!(got.as_slice::<f16>().unwrap()[3].to_f32(), 154.0);
}

#[test]
fn matmul_size_mismatch_is_invalid() {
    // TF: "Matrix size-incompatible: In[0]: [2,3], In[1]: [4,5]"
    let err = run(
        &MatMul::new(false, false),
        vec![range(&[2, 3]), range(&[4, 5])],
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Matrix size-incompatible: In[0]: [2,3], In[1]: [4,5]"
    );
}

#[test]
fn batch_matmul_v2_broadcasts_and_v1_does_not() {
    let v2 = BatchMatMul {
        adj_x: false,
        adj_y: true,
        broadcast: true,
        tout: None,
        cache: PackCache::default(),
    };
    let (x, y) = (range(&[2, 1, 2, 3]), range(&[3, 4, 3]));
    let got = run(&v2, vec![x.clone(), y.clone()]).unwrap();
    assert_eq!(got.shape(), &[2, 3, 2, 4]);
    let x3 = x.reshape(&[2, 2, 3]).unwrap();
    let (_, want) = naive_einsum("aij,bkj->abik", &[&x3, &y]);
    for (g, w) in got.as_slice::<f32>().unwrap().iter().zip(&want) {
        assert!((g - w).abs() < 1e-4);
    }
    let v1 = BatchMatMul {
        broadcast: false,
        ..v2
    };
    assert!(matches!(
        run(&v1, vec![range(&[2, 2, 3]), range(&[1, 4, 3])]),
        Err(OpError::Invalid(_))
    ));
    // tf.raw_ops.BatchMatMulV3(x=ones([2,3],int8), y=ones([3,2],int8), Tout=int32) -> 3s
    let v3 = BatchMatMul {
        adj_x: false,
        adj_y: false,
        broadcast: true,
        tout: Some(DType::I32),
        cache: PackCache::default(),
    };
    let ones = |s: &[usize]| Tensor::from_vec(s, vec![1i8; s.iter().product()]).unwrap();
    let got = run(&v3, vec![ones(&[2, 3]), ones(&[3, 2])]).unwrap();
    assert_eq!(got.as_slice::<i32>().unwrap(), &[3, 3, 3, 3]);
}

#[test]
fn einsum_keras_patterns_match_naive_loops() {
    // MultiHeadAttention projections, scores, context, output; EinsumDense; matmuls.
    check_einsum("abc,cde->abde", &[&[2, 3, 4], &[4, 2, 5]]);
    check_einsum("abcd,cde->abe", &[&[2, 3, 2, 5], &[2, 5, 4]]);
    check_einsum("aecd,abcd->acbe", &[&[2, 3, 2, 4], &[2, 5, 2, 4]]);
    check_einsum("acbe,aecd->abcd", &[&[2, 2, 5, 3], &[2, 3, 2, 4]]);
    check_einsum("BTNH,BSNH->BNTS", &[&[2, 3, 2, 4], &[2, 5, 2, 4]]);
    check_einsum("BNTS,BSNH->BTNH", &[&[2, 2, 3, 5], &[2, 5, 2, 4]]);
    check_einsum("ab,bc->ac", &[&[3, 4], &[4, 5]]);
    check_einsum("ab,cb->ac", &[&[3, 4], &[5, 4]]);
    check_einsum("ba,bc->ac", &[&[4, 3], &[4, 5]]);
    check_einsum("abc,acd->abd", &[&[2, 3, 4], &[2, 4, 5]]);
    check_einsum("ij,jk->k", &[&[2, 3], &[3, 4]]);
    check_einsum("i,i->", &[&[3], &[3]]);
    check_einsum("ij,ij->ij", &[&[2, 3], &[2, 3]]);
    check_einsum("ij,kl->ijkl", &[&[2, 3], &[1, 2]]);
    check_einsum("ijk->kj", &[&[2, 3, 4]]);
    check_einsum("ij->", &[&[2, 3]]);
}

#[test]
fn einsum_ellipsis_broadcasts() {
    // tf.einsum('...ij,...jk->...ik', ones([2,1,2,3]), ones([3,3,4])).shape == (2,3,2,4)
    let op = Einsum::parse("...ij,...jk->...ik".into()).unwrap();
    let (x, y) = (range(&[2, 1, 2, 3]), range(&[3, 3, 4]));
    let got = run(&op, vec![x.clone(), y.clone()]).unwrap();
    assert_eq!(got.shape(), &[2, 3, 2, 4]);
    let xs = x.as_slice::<f32>().unwrap();
    let ys = y.as_slice::<f32>().unwrap();
    let g = got.as_slice::<f32>().unwrap();
    for a in 0..2 {
        for b in 0..3 {
            for i in 0..2 {
                for k in 0..4 {
                    let w: f32 = (0..3)
                        .map(|j| xs[a * 6 + i * 3 + j] * ys[b * 12 + j * 4 + k])
                        .sum();
                    assert!((g[((a * 3 + b) * 2 + i) * 4 + k] - w).abs() < 1e-4);
                }
            }
        }
    }
    let op = Einsum::parse("...ij,jk->ik".into()).unwrap();
    assert!(matches!(
        run(&op, vec![range(&[2, 2, 3]), range(&[3, 4])]),
        Err(OpError::Invalid(_))
    ));
}

#[test]
fn einsum_rejects_repeated_and_mismatched_labels() {
    let op = Einsum::parse("ii->i".into()).unwrap();
    let err = run(&op, vec![range(&[2, 2])]).unwrap_err();
    assert!(matches!(&err, OpError::Unimplemented(m) if m.contains("ii->i")));
    // TF: "Expected dimension 3 at axis 0 of the input shaped [4,4] but got dimension 4"
    let op = Einsum::parse("ij,jk->ik".into()).unwrap();
    let err = run(&op, vec![range(&[2, 3]), range(&[4, 4])]).unwrap_err();
    assert!(
        err.to_string().contains("Expected dimension 3 at axis 0"),
        "{err}"
    );
}

#[test]
fn einsum_attention_sizes_strided_and_parallel() {
    // Odd sizes, large enough for the parallel batch split and the packed projection (the
    // same op called three times: unpacked, then packed, then from the cache).
    for eq_shapes in [
        ("BTNH,BSNH->BNTS", [[3, 37, 5, 17], [3, 29, 5, 17]]),
        ("BNTS,BSNH->BTNH", [[3, 5, 37, 29], [3, 29, 5, 17]]),
        ("aecd,abcd->acbe", [[2, 33, 3, 19], [2, 41, 3, 19]]),
        ("acbe,aecd->abcd", [[2, 3, 41, 33], [2, 33, 3, 19]]),
    ] {
        let (eq, [sa, sb]) = eq_shapes;
        check_einsum(eq, &[&sa, &sb]);
    }
    let op = Einsum::parse("abc,cde->abde".into()).unwrap();
    let (x, w) = (range(&[3, 37, 45]), range(&[45, 5, 13]));
    let (_, want) = naive_einsum("abc,cde->abde", &[&x, &w]);
    for _ in 0..3 {
        let got = run(&op, vec![x.clone(), w.clone()]).unwrap();
        assert_eq!(got.shape(), &[3, 37, 5, 13]);
        for (g, w) in got.as_slice::<f32>().unwrap().iter().zip(&want) {
            assert!((g - w).abs() <= 1e-4 * (1.0 + w.abs()), "{g} vs {w}");
        }
    }
}

#[test]
fn batch_matmul_by_one_matrix_is_one_cached_gemm() {
    for adj_y in [false, true] {
        let op = BatchMatMul {
            adj_x: false,
            adj_y,
            broadcast: true,
            tout: None,
            cache: PackCache::default(),
        };
        let x = range(&[3, 37, 45]);
        let y = if adj_y {
            range(&[1, 29, 45])
        } else {
            range(&[45, 29])
        };
        let eq = if adj_y { "abc,xdc->abd" } else { "abc,cd->abd" };
        let (_, want) = naive_einsum(eq, &[&x, &y]);
        for _ in 0..3 {
            let got = run(&op, vec![x.clone(), y.clone()]).unwrap();
            assert_eq!(got.shape(), &[3, 37, 29]);
            for (g, w) in got.as_slice::<f32>().unwrap().iter().zip(&want) {
                assert!((g - w).abs() <= 1e-4 * (1.0 + w.abs()), "{g} vs {w}");
            }
        }
    }
}

use super::*;
use crate::ops::{Limits, Session};

fn eval(op: &dyn Op, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, OpError> {
    let session = Session::new(".".into(), None, Limits::default());
    op.eval(&mut EvalCtx::new(&session), inputs.into())
        .map(crate::ops::Tensors::into_vec)
}
fn m(rows: usize, cols: usize, v: Vec<i64>) -> Tensor {
    Tensor::from_vec(&[rows, cols], v).unwrap()
}
fn ints(t: &Tensor) -> Vec<i64> {
    t.to_i64_vec().unwrap()
}

#[test]
fn fill_empty_rows_unordered() {
    // sparse_fill_empty_rows([[1,0],[1,2],[3,1],[0,0]], [10,20,30,40], [5,4], -1)
    let out = eval(
        &FillEmptyRows,
        vec![
            m(4, 2, vec![1, 0, 1, 2, 3, 1, 0, 0]),
            Tensor::vector(vec![10i32, 20, 30, 40]),
            Tensor::vector(vec![5i64, 4]),
            Tensor::scalar(-1i32),
        ],
    )
    .unwrap();
    assert_eq!(ints(&out[0]), [0, 0, 1, 0, 1, 2, 2, 0, 3, 1, 4, 0]);
    assert_eq!(ints(&out[1]), [40, 10, 20, -1, 30, -1]);
    assert_eq!(
        out[2].as_slice::<bool>().unwrap(),
        [false, false, true, false, true]
    );
    assert_eq!(ints(&out[3]), [1, 2, 4, 0]);
    // No entries: every row gets the default.
    let out = eval(
        &FillEmptyRows,
        vec![
            m(0, 2, vec![]),
            Tensor::vector(Vec::<i32>::new()),
            Tensor::vector(vec![3i64, 4]),
            Tensor::scalar(7i32),
        ],
    )
    .unwrap();
    assert_eq!(ints(&out[0]), [0, 0, 1, 0, 2, 0]);
    assert_eq!(ints(&out[1]), [7, 7, 7]);
    let bad = eval(
        &FillEmptyRows,
        vec![
            m(1, 2, vec![5, 0]),
            Tensor::vector(vec![1i32]),
            Tensor::vector(vec![3i64, 4]),
            Tensor::scalar(0i32),
        ],
    );
    assert!(bad.is_err());
}

#[test]
fn sparse_reshape() {
    // sparse_reshape([[0,1],[2,3]], [3,4], [-1,2]) -> [[0,1],[5,1]], [6,2]
    let out = eval(
        &SparseReshape,
        vec![
            m(2, 2, vec![0, 1, 2, 3]),
            Tensor::vector(vec![3i64, 4]),
            Tensor::vector(vec![-1i64, 2]),
        ],
    )
    .unwrap();
    assert_eq!(ints(&out[0]), [0, 1, 5, 1]);
    assert_eq!(ints(&out[1]), [6, 2]);
    let empty = eval(
        &SparseReshape,
        vec![
            m(0, 2, vec![]),
            Tensor::vector(vec![0i64, 4]),
            Tensor::vector(vec![-1i64, 0]),
        ],
    );
    assert!(empty.is_err(), "cannot infer -1 next to a 0 dim");
    let bad = eval(
        &SparseReshape,
        vec![
            m(1, 2, vec![0, 1]),
            Tensor::vector(vec![3i64, 4]),
            Tensor::vector(vec![5i64, 2]),
        ],
    );
    assert!(bad.is_err());
    // TF forwards the indices when the shape does not change, unchecked:
    // sparse_reshape([[0,1],[5,9]], [3,4], [3,-1]) -> [[0,1],[5,9]], [3,4]
    let out = eval(
        &SparseReshape,
        vec![
            m(2, 2, vec![0, 1, 5, 9]),
            Tensor::vector(vec![3i64, 4]),
            Tensor::vector(vec![3i64, -1]),
        ],
    )
    .unwrap();
    assert_eq!(ints(&out[0]), [0, 1, 5, 9]);
    assert_eq!(ints(&out[1]), [3, 4]);
}

#[test]
fn sparse_to_dense() {
    // sparse_to_dense([[0,1],[2,0]], [3,2], [5,6], 0)
    let op = SparseToDense { validate: true };
    let out = eval(
        &op,
        vec![
            m(2, 2, vec![0, 1, 2, 0]),
            Tensor::vector(vec![3i64, 2]),
            Tensor::vector(vec![5i32, 6]),
            Tensor::scalar(0i32),
        ],
    )
    .unwrap();
    assert_eq!(ints(&out[0]), [0, 5, 0, 0, 6, 0]);
    let unsorted = eval(
        &op,
        vec![
            m(2, 2, vec![2, 0, 0, 1]),
            Tensor::vector(vec![3i64, 2]),
            Tensor::vector(vec![5i32, 6]),
            Tensor::scalar(0i32),
        ],
    );
    assert!(unsorted.is_err());
    // sparse_to_dense([1,0], [3], 9, 0, validate_indices=False) -> [9, 9, 0]
    let op = SparseToDense { validate: false };
    let out = eval(
        &op,
        vec![
            Tensor::vector(vec![1i64, 0]),
            Tensor::vector(vec![3i64]),
            Tensor::scalar(9i32),
            Tensor::scalar(0i32),
        ],
    )
    .unwrap();
    assert_eq!(ints(&out[0]), [9, 9, 0]);
    let oob = eval(
        &op,
        vec![
            Tensor::vector(vec![3i64]),
            Tensor::vector(vec![3i64]),
            Tensor::scalar(9i32),
            Tensor::scalar(0i32),
        ],
    );
    assert!(oob.is_err());
}

#[test]
fn ragged_to_sparse() {
    // ragged_tensor_to_sparse([[0,2,2,5]], [1,2,3,4,5])
    let op = RaggedToSparse { ragged_rank: 1 };
    let out = eval(
        &op,
        vec![
            Tensor::vector(vec![0i64, 2, 2, 5]),
            Tensor::vector(vec![1i32, 2, 3, 4, 5]),
        ],
    )
    .unwrap();
    assert_eq!(ints(&out[0]), [0, 0, 0, 1, 2, 0, 2, 1, 2, 2]);
    assert_eq!(out[0].shape(), [5, 2]);
    assert_eq!(ints(&out[1]), [1, 2, 3, 4, 5]);
    assert_eq!(ints(&out[2]), [3, 3]);
    // ragged_tensor_to_sparse([[0,1,3],[0,2,2,3]], [[1,2],[3,4],[5,6]])
    let op = RaggedToSparse { ragged_rank: 2 };
    let vals = Tensor::from_vec(&[3, 2], vec![1i32, 2, 3, 4, 5, 6]).unwrap();
    let out = eval(
        &op,
        vec![
            Tensor::vector(vec![0i64, 1, 3]),
            Tensor::vector(vec![0i64, 2, 2, 3]),
            vals,
        ],
    )
    .unwrap();
    assert_eq!(
        ints(&out[0]),
        [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1, 0, 0, 1, 1, 0, 1]
    );
    assert_eq!(ints(&out[1]), [1, 2, 3, 4, 5, 6]);
    assert_eq!(ints(&out[2]), [2, 2, 2, 2]);
    let op = RaggedToSparse { ragged_rank: 1 };
    let bad = eval(
        &op,
        vec![
            Tensor::vector(vec![0i64, 2, 9]),
            Tensor::vector(vec![1i32, 2]),
        ],
    );
    assert!(bad.is_err());
}

#[test]
fn bincount() {
    // dense_bincount([1,1,3,7], 5, []) -> [0,2,0,1,0]; weights [0.5,1,2] -> [0,1.5,0,2,0]
    let op = Bincount { binary: false };
    let out = eval(
        &op,
        vec![
            Tensor::vector(vec![1i32, 1, 3, 7]),
            Tensor::scalar(5i32),
            Tensor::vector(Vec::<f32>::new()),
        ],
    )
    .unwrap();
    assert_eq!(out[0].as_slice::<f32>().unwrap(), [0.0, 2.0, 0.0, 1.0, 0.0]);
    let out = eval(
        &op,
        vec![
            Tensor::vector(vec![1i64, 1, 3]),
            Tensor::scalar(5i64),
            Tensor::vector(vec![0.5f32, 1.0, 2.0]),
        ],
    )
    .unwrap();
    assert_eq!(out[0].as_slice::<f32>().unwrap(), [0.0, 1.5, 0.0, 2.0, 0.0]);
    // dense_bincount([[1,1],[3,0]], 4, [], binary_output=True)
    let op = Bincount { binary: true };
    let arr = Tensor::from_vec(&[2, 2], vec![1i32, 1, 3, 0]).unwrap();
    let out = eval(
        &op,
        vec![arr, Tensor::scalar(4i32), Tensor::vector(Vec::<i64>::new())],
    )
    .unwrap();
    assert_eq!(out[0].shape(), [2, 4]);
    assert_eq!(ints(&out[0]), [0, 1, 0, 0, 1, 0, 0, 1]);
    let neg = eval(
        &op,
        vec![
            Tensor::vector(vec![-1i32]),
            Tensor::scalar(4i32),
            Tensor::vector(Vec::<i64>::new()),
        ],
    );
    assert!(neg.is_err());
}

fn f32s(t: &Tensor) -> Vec<f32> {
    t.as_slice::<f32>().unwrap().to_vec()
}

/// Expected values: TF 2.21 `tf.raw_ops.RaggedBincount` on the same inputs.
#[test]
fn ragged_bincount() {
    let run = |binary: bool, splits: Vec<i64>, vals: Tensor, size: Tensor, w: Tensor| {
        eval(
            &RaggedBincount { binary },
            vec![Tensor::vector(splits), vals, size, w],
        )
        .map(|mut o| o.remove(0))
    };
    let vals = || Tensor::vector(vec![1i64, 1, 2, 0, 4]);
    let none = || Tensor::vector(Vec::<f32>::new());
    let t = run(
        false,
        vec![0, 3, 3, 5],
        vals(),
        Tensor::scalar(4i64),
        none(),
    )
    .unwrap();
    assert_eq!(t.shape(), [3, 4]);
    assert_eq!(f32s(&t), [0., 2., 1., 0., 0., 0., 0., 0., 1., 0., 0., 0.]);
    let t = run(true, vec![0, 3, 3, 5], vals(), Tensor::scalar(4i64), none()).unwrap();
    assert_eq!(f32s(&t), [0., 1., 1., 0., 0., 0., 0., 0., 1., 0., 0., 0.]);
    let w = || Tensor::vector(vec![0.5f32, 0.25, 1.0, 2.0, 3.0]);
    let t = run(false, vec![0, 3, 3, 5], vals(), Tensor::scalar(4i64), w()).unwrap();
    assert_eq!(f32s(&t), [0., 0.75, 1., 0., 0., 0., 0., 0., 2., 0., 0., 0.]);
    let t = run(true, vec![0, 3, 3, 5], vals(), Tensor::scalar(4i64), w()).unwrap();
    assert_eq!(f32s(&t), [0., 1., 1., 0., 0., 0., 0., 0., 1., 0., 0., 0.]);
    // int32 values with int64 (empty) weights count into int64 bins.
    let t = run(
        false,
        vec![0, 3, 3, 5],
        Tensor::vector(vec![1i32, 1, 2, 0, 4]),
        Tensor::scalar(4i32),
        Tensor::vector(Vec::<i64>::new()),
    )
    .unwrap();
    assert_eq!(ints(&t), [0, 2, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0]);
    // TF scans unsorted splits rather than rejecting them.
    let t = run(
        false,
        vec![0, 3, 2, 5],
        vals(),
        Tensor::scalar(4i64),
        none(),
    )
    .unwrap();
    assert_eq!(f32s(&t), [0., 2., 1., 0., 0., 0., 0., 0., 1., 0., 0., 0.]);
    let t = run(
        false,
        vec![0, 3, 3, 5],
        vals(),
        Tensor::scalar(0i64),
        none(),
    )
    .unwrap();
    assert_eq!(t.shape(), [3, 0]);
    let t = run(
        false,
        vec![0],
        Tensor::vector(Vec::<i64>::new()),
        Tensor::scalar(4i64),
        none(),
    )
    .unwrap();
    assert_eq!(t.shape(), [0, 4]);
    let err = |splits: Vec<i64>, vals: Tensor, size: Tensor, w: Tensor| {
        run(false, splits, vals, size, w).unwrap_err().to_string()
    };
    let neg = Tensor::vector(vec![1i64, -1, 2, 0, 4]);
    assert!(err(vec![0, 3, 3, 5], neg, Tensor::scalar(4i64), none()).contains("non-negative"));
    assert!(err(vec![1, 3, 3, 5], vals(), Tensor::scalar(4i64), none()).contains("start with 0"));
    assert!(err(vec![0, 3, 3, 4], vals(), Tensor::scalar(4i64), none()).contains("end with"));
    assert!(err(vec![0, 3, 3, 6], vals(), Tensor::scalar(4i64), none()).contains("end with"));
    assert!(err(vec![], vals(), Tensor::scalar(4i64), none()).contains("non-empty"));
    assert!(err(vec![0, 3, 3, 5], vals(), Tensor::scalar(-1i64), none()).contains("(-1)"));
    assert!(err(vec![0, 3, 3, 5], vals(), Tensor::vector(vec![4i64]), none()).contains("scalar"));
    let short = Tensor::vector(vec![1.0f32, 2.0]);
    assert!(err(vec![0, 3, 3, 5], vals(), Tensor::scalar(4i64), short).contains("weights"));
    let bad_w = Tensor::vector(vec![true; 5]);
    assert!(err(vec![0, 3, 3, 5], vals(), Tensor::scalar(4i64), bad_w).contains("dtype"));
}

/// Expected values: TF 2.21 `tf.raw_ops.SparseBincount` on the same inputs.
#[test]
fn sparse_bincount() {
    let run = |binary: bool, idx: Tensor, vals: Vec<i64>, shape: Vec<i64>, w: Tensor| {
        eval(
            &SparseBincount { binary },
            vec![
                idx,
                Tensor::vector(vals),
                Tensor::vector(shape),
                Tensor::scalar(4i64),
                w,
            ],
        )
        .map(|mut o| o.remove(0))
    };
    let none = || Tensor::vector(Vec::<f32>::new());
    let idx2 = || m(3, 2, vec![0, 0, 0, 1, 2, 0]);
    let t = run(false, idx2(), vec![1, 1, 3], vec![3, 5], none()).unwrap();
    assert_eq!(t.shape(), [3, 4]);
    assert_eq!(f32s(&t), [0., 2., 0., 0., 0., 0., 0., 0., 0., 0., 0., 1.]);
    let w = Tensor::vector(vec![2.0f32, 3.0, 4.0]);
    let t = run(true, idx2(), vec![1, 1, 3], vec![3, 5], w).unwrap();
    assert_eq!(f32s(&t), [0., 1., 0., 0., 0., 0., 0., 0., 0., 0., 0., 1.]);
    let t = run(
        false,
        m(3, 1, vec![0, 1, 4]),
        vec![1, 1, 3],
        vec![5],
        none(),
    )
    .unwrap();
    assert_eq!((t.shape(), f32s(&t)), (&[4usize][..], vec![0., 2., 0., 1.]));
    // 1-D drops values >= size; 2-D rejects them.
    let t = run(false, m(2, 1, vec![0, 1]), vec![1, 9], vec![5], none()).unwrap();
    assert_eq!(f32s(&t), [0., 1., 0., 0.]);
    let m2 = || m(2, 2, vec![0, 0, 1, 0]);
    assert!(run(false, m2(), vec![1, 9], vec![3, 5], none()).is_err());
    // TF's 2-D path writes out of bounds for these; here they are errors.
    assert!(run(false, idx2(), vec![1, -1, 3], vec![3, 5], none()).is_err());
    let oob = m(3, 2, vec![0, 0, 0, 1, 5, 0]);
    assert!(run(false, oob, vec![1, 1, 3], vec![3, 5], none()).is_err());
    let neg_row = m(3, 2, vec![0, 0, 0, 1, -1, 0]);
    assert!(run(false, neg_row, vec![1, 1, 3], vec![3, 5], none()).is_err());
    assert!(run(false, idx2(), vec![1, 1], vec![3, 5], none()).is_err());
    assert!(run(false, idx2(), vec![1, 1, 3], vec![], none()).is_err());
    let short = Tensor::vector(vec![1.0f32]);
    assert!(run(false, idx2(), vec![1, 1, 3], vec![3, 5], short).is_err());
}

/// xorshift64: reproducible pseudo-random test inputs.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn fill_empty_rows_matches_reference() {
    // Ordered input without empty rows is forwarded (TF's fast path); every other case is
    // rebuilt. Both must equal the definition: rows ascending, entries of a row in input
    // order, `[r, 0, ..]` = default for an empty row `r`.
    let mut s = 0x1234_5678_9abc_def1u64;
    for rank in [1usize, 2, 3] {
        for rows in [0usize, 1, 3, 17] {
            for n in [0usize, 1, 5, 40] {
                for sorted in [false, true] {
                    for dense_rows in [false, true] {
                        if rows == 0 && n > 0 || dense_rows && n < rows {
                            continue;
                        }
                        let mut r: Vec<i64> = (0..n)
                            .map(|i| {
                                if dense_rows && i < rows {
                                    i as i64
                                } else {
                                    (xorshift(&mut s) % rows as u64) as i64
                                }
                            })
                            .collect();
                        if sorted {
                            r.sort_unstable();
                        } else {
                            r.reverse();
                        }
                        let mut idx = Vec::new();
                        for &row in &r {
                            idx.push(row);
                            for _ in 1..rank {
                                idx.push((xorshift(&mut s) % 5) as i64);
                            }
                        }
                        let vals: Vec<f32> = (0..n).map(|i| i as f32 + 0.5).collect();
                        let mut want_idx = Vec::new();
                        let mut want_vals = Vec::new();
                        let mut want_rev = vec![0i64; n];
                        let mut want_empty = Vec::new();
                        for row in 0..rows as i64 {
                            let mine: Vec<usize> = (0..n).filter(|&i| r[i] == row).collect();
                            want_empty.push(mine.is_empty());
                            if mine.is_empty() {
                                want_idx.push(row);
                                want_idx.extend(std::iter::repeat_n(0, rank - 1));
                                want_vals.push(-1.0f32);
                            }
                            for i in mine {
                                want_rev[i] = want_vals.len() as i64;
                                want_idx.extend_from_slice(&idx[i * rank..(i + 1) * rank]);
                                want_vals.push(vals[i]);
                            }
                        }
                        let mut shape = vec![rows as i64];
                        shape.extend(std::iter::repeat_n(5, rank - 1));
                        let i32_idx = Tensor::from_vec(
                            &[n, rank],
                            idx.iter().map(|&v| v as i32).collect::<Vec<_>>(),
                        )
                        .unwrap();
                        for indices in [m(n, rank, idx.clone()), i32_idx] {
                            let out = eval(
                                &FillEmptyRows,
                                vec![
                                    indices,
                                    Tensor::vector(vals.clone()),
                                    Tensor::vector(shape.clone()),
                                    Tensor::scalar(-1f32),
                                ],
                            )
                            .unwrap();
                            let what = format!("rank {rank} rows {rows} n {n} sorted {sorted}");
                            assert_eq!(out[0].shape(), &[want_vals.len(), rank], "{what}");
                            assert_eq!(out[0].dtype(), DType::I64, "{what}");
                            assert_eq!(ints(&out[0]), want_idx, "{what}");
                            assert_eq!(out[1].as_slice::<f32>().unwrap(), want_vals, "{what}");
                            assert_eq!(out[2].as_slice::<bool>().unwrap(), want_empty, "{what}");
                            assert_eq!(ints(&out[3]), want_rev, "{what}");
                        }
                        // A row index out of range anywhere is an error.
                        if n > 0 {
                            for bad in [-1i64, rows as i64] {
                                let mut b = idx.clone();
                                let at = (xorshift(&mut s) % n as u64) as usize;
                                b[at * rank] = bad;
                                let e = eval(
                                    &FillEmptyRows,
                                    vec![
                                        m(n, rank, b),
                                        Tensor::vector(vals.clone()),
                                        Tensor::vector(shape.clone()),
                                        Tensor::scalar(-1f32),
                                    ],
                                )
                                .unwrap_err();
                                assert!(e.to_string().contains("is invalid"), "{e}");
                            }
                        }
                    }
                }
            }
        }
    }
}

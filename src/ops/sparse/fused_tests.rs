use super::*;
use crate::ops::array::tests::{run, run1};
use crate::ops::{Limits, Session};
use crate::tensor::Tensor;

fn eval(op: &dyn Op, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, OpError> {
    let session = Session::new(".".into(), None, Limits::default());
    op.eval(&mut EvalCtx::new(&session), inputs.into())
        .map(crate::ops::Tensors::into_vec)
}

/// A small deterministic generator (no extra dev-dependency).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// The unfused graph: `Unique(ids)`, `Gather(params, y)`, `SparseSegment*(gathered, idx, seg)`
/// evaluated with the plain ops of the registry.
fn unfused(op: &str, params: &Tensor, ids: &Tensor, seg: &Tensor, num: Option<i64>) -> Tensor {
    let mut uniq = run("Unique", &[], vec![ids.clone()]).unwrap();
    let (y, idx) = (uniq.remove(0), uniq.remove(0));
    let gathered = run1(
        "GatherV2",
        &[],
        vec![params.clone(), y, Tensor::scalar(0i32)],
    );
    let mut ins = vec![gathered, idx, seg.clone()];
    if let Some(n) = num {
        ins.push(Tensor::scalar(n));
    }
    run1(op, &[], ins)
}

#[test]
fn fused_matches_unfused_on_random_inputs() {
    let mut rng = Lcg(7);
    for case in 0..60 {
        let rows = 1 + rng.next(50) as usize;
        let dim = 1 + rng.next(20) as usize;
        let data: Vec<f32> = (0..rows * dim)
            .map(|_| rng.next(1000) as f32 / 37.0 - 13.0)
            .collect();
        let params = Tensor::from_vec(&[rows, dim], data).unwrap();
        // Large cases cross the kernel's parallel threshold.
        let n = if case % 10 == 0 {
            5000 + rng.next(3000) as usize
        } else {
            rng.next(40) as usize
        };
        // Repeated ids (few distinct values) and sorted segment ids with gaps (empty rows).
        let distinct = 1 + rng.next(rows as u64);
        let ids: Vec<i64> = (0..n).map(|_| rng.next(distinct) as i64).collect();
        let mut seg: Vec<i64> = (0..n).map(|_| rng.next(1 + n as u64 / 3) as i64).collect();
        seg.sort_unstable();
        let extra = rng.next(3) as i64;
        let num = seg.last().map_or(0, |&l| l + 1) + extra;
        for (name, with_num) in [
            ("SparseSegmentSqrtN", false),
            ("SparseSegmentMean", false),
            ("SparseSegmentSumWithNumSegments", true),
            ("SparseSegmentSqrtNWithNumSegments", true),
        ] {
            let ids_t = if case % 2 == 0 {
                Tensor::vector(ids.clone())
            } else {
                Tensor::vector(ids.iter().map(|&i| i as i32).collect::<Vec<_>>())
            };
            let seg_t = Tensor::vector(seg.clone());
            let want = unfused(name, &params, &ids_t, &seg_t, with_num.then_some(num));
            let fused = fused_embedding_segment(name, ParamsFrom::Tensor).unwrap();
            let mut ins = vec![params.clone(), ids_t, seg_t];
            if with_num {
                ins.push(Tensor::scalar(num));
            }
            let got = eval(&*fused, ins).unwrap().remove(0);
            assert_eq!(got.shape(), want.shape(), "case {case} {name}");
            let (g, w) = (
                got.as_slice::<f32>().unwrap(),
                want.as_slice::<f32>().unwrap(),
            );
            // Bit-identical, not just close.
            assert!(
                g.iter().zip(w).all(|(a, b)| a.to_bits() == b.to_bits()),
                "case {case} {name}"
            );
        }
    }
}

#[test]
fn fused_errors_like_the_unfused_ops() {
    let params = Tensor::from_vec(&[3, 2], vec![1f32, 2., 3., 4., 5., 6.]).unwrap();
    let op = fused_embedding_segment("SparseSegmentSum", ParamsFrom::Tensor).unwrap();
    // Out-of-range id (the gather's error).
    let bad = vec![
        params.clone(),
        Tensor::vector(vec![0i64, 3]),
        Tensor::vector(vec![0i64, 0]),
    ];
    assert!(eval(&*op, bad).is_err());
    let neg = vec![
        params.clone(),
        Tensor::vector(vec![-1i64]),
        Tensor::vector(vec![0i64]),
    ];
    assert!(eval(&*op, neg).is_err());
    // Ids must be a vector of ints.
    let m = Tensor::from_vec(&[1, 1], vec![0i64]).unwrap();
    assert!(eval(&*op, vec![params.clone(), m, Tensor::vector(vec![0i64])]).is_err());
    let f = Tensor::vector(vec![0f32]);
    assert!(eval(&*op, vec![params, f, Tensor::vector(vec![0i64])]).is_err());
    // Zero-width params still range-check ids.
    let empty = Tensor::from_vec(&[2, 0], Vec::<f32>::new()).unwrap();
    let ins = vec![
        empty.clone(),
        Tensor::vector(vec![5i64]),
        Tensor::vector(vec![0i64]),
    ];
    assert!(eval(&*op, ins).is_err());
    let ins = vec![
        empty,
        Tensor::vector(vec![1i64]),
        Tensor::vector(vec![0i64]),
    ];
    assert_eq!(eval(&*op, ins).unwrap()[0].shape(), [1, 0]);
    // Not a variable handle.
    let var = fused_embedding_segment("SparseSegmentSum", ParamsFrom::Variable).unwrap();
    let ins = vec![
        Tensor::vector(vec![0f32]),
        Tensor::vector(vec![0i64]),
        Tensor::vector(vec![0i64]),
    ];
    assert!(eval(&*var, ins).is_err());
    assert!(fused_embedding_segment("SegmentSum", ParamsFrom::Tensor).is_none());
}

//! Expected values are TF 2.21's `tf.raw_ops.RaggedTensorToTensor` on the same inputs.
use super::*;
use crate::ops::{Limits, Session};
use bytes::Bytes;

fn op(types: &[&str]) -> RaggedToTensor {
    let first_dim_size = types[0] == "FIRST_DIM_SIZE";
    let levels = types[usize::from(first_dim_size)..]
        .iter()
        .map(|t| match *t {
            "ROW_SPLITS" => Partition::RowSplits,
            _ => Partition::ValueRowIds,
        })
        .collect();
    RaggedToTensor {
        first_dim_size,
        levels,
    }
}
fn eval(types: &[&str], inputs: Vec<Tensor>) -> Result<Tensor, OpError> {
    let session = Session::new(".".into(), None, Limits::default());
    let mut out = op(types).eval(&mut EvalCtx::new(&session), inputs.into())?;
    Ok(out.remove(0))
}
fn splits(v: &[i64]) -> Tensor {
    Tensor::vector(v.to_vec())
}
fn to_tensor(shape: Tensor, values: Tensor, default: Tensor, parts: Vec<Tensor>) -> Vec<Tensor> {
    let mut v = vec![shape, values, default];
    v.extend(parts);
    v
}
fn i32s(t: &Tensor) -> Vec<i32> {
    t.as_slice::<i32>().unwrap().to_vec()
}
const RS: &[&str] = &["ROW_SPLITS"];

#[test]
fn pads_to_longest_row() {
    let t = eval(
        RS,
        to_tensor(
            Tensor::scalar(-1i64),
            Tensor::vector(vec![1i32, 2, 3]),
            Tensor::scalar(0i32),
            vec![splits(&[0, 2, 2, 3])],
        ),
    )
    .unwrap();
    assert_eq!(t.shape(), [3, 2]);
    assert_eq!(i32s(&t), [1, 2, 0, 0, 3, 0]);
}

#[test]
fn truncates_and_pads_to_requested_shape() {
    let run = |shape: Vec<i64>| {
        eval(
            RS,
            to_tensor(
                Tensor::vector(shape),
                Tensor::vector(vec![1i32, 2, 3, 4, 5]),
                Tensor::scalar(9i32),
                vec![splits(&[0, 3, 3, 5])],
            ),
        )
        .unwrap()
    };
    let t = run(vec![2, 2]);
    assert_eq!((t.shape(), i32s(&t)), (&[2usize, 2][..], vec![1, 2, 9, 9]));
    let t = run(vec![4, 4]);
    assert_eq!(i32s(&t), [1, 2, 3, 9, 9, 9, 9, 9, 4, 5, 9, 9, 9, 9, 9, 9]);
    let t = run(vec![-1, 8]);
    assert_eq!(t.shape(), [3, 8]);
    let t = run(vec![3, 0]);
    assert_eq!(t.shape(), [3, 0]);
}

#[test]
fn empty_values_and_empty_batch() {
    let t = eval(
        RS,
        to_tensor(
            Tensor::vector(vec![-1i64, 8]),
            Tensor::vector(Vec::<i32>::new()),
            Tensor::scalar(0i32),
            vec![splits(&[0, 0, 0])],
        ),
    )
    .unwrap();
    assert_eq!((t.shape(), i32s(&t)), (&[2usize, 8][..], vec![0; 16]));
    let t = eval(
        RS,
        to_tensor(
            Tensor::vector(vec![-1i64, 8]),
            Tensor::vector(Vec::<i32>::new()),
            Tensor::scalar(0i32),
            vec![splits(&[0])],
        ),
    )
    .unwrap();
    assert_eq!(t.shape(), [0, 8]);
}

#[test]
fn value_rowids_and_two_ragged_levels() {
    let t = eval(
        &["FIRST_DIM_SIZE", "VALUE_ROWIDS"],
        to_tensor(
            Tensor::scalar(-1i64),
            Tensor::vector(vec![1i32, 2, 3, 4]),
            Tensor::scalar(0i32),
            vec![Tensor::scalar(4i64), splits(&[0, 0, 2, 2])],
        ),
    )
    .unwrap();
    assert_eq!(
        (t.shape(), i32s(&t)),
        (&[4usize, 2][..], vec![1, 2, 0, 0, 3, 4, 0, 0])
    );
    let two = |shape: Tensor| {
        eval(
            &["ROW_SPLITS", "ROW_SPLITS"],
            to_tensor(
                shape,
                Tensor::vector(vec![1i32, 2, 3, 4, 5]),
                Tensor::scalar(0i32),
                vec![splits(&[0, 2, 3]), splits(&[0, 1, 1, 5])],
            ),
        )
    };
    let t = two(Tensor::scalar(-1i64)).unwrap();
    assert_eq!(t.shape(), [2, 2, 4]);
    assert_eq!(i32s(&t), [1, 0, 0, 0, 0, 0, 0, 0, 2, 3, 4, 5, 0, 0, 0, 0]);
    let t = two(Tensor::vector(vec![1i64, 1, 2])).unwrap();
    assert_eq!(i32s(&t), [1, 0]);
    // A zero dimension makes the output empty however large the others are.
    let t = two(Tensor::vector(vec![0i64, 1 << 40, 1 << 40])).unwrap();
    assert_eq!(t.shape(), [0, 1 << 40, 1 << 40]);
}

#[test]
fn default_value_broadcasts_over_inner_dims() {
    let values = Tensor::from_vec(&[2, 2, 3], (0..12).collect::<Vec<i32>>()).unwrap();
    let run = |default: Tensor| {
        eval(
            RS,
            to_tensor(
                Tensor::scalar(-1i64),
                values.clone(),
                default,
                vec![splits(&[0, 0, 2])],
            ),
        )
    };
    let t = run(Tensor::from_vec(&[1, 3], vec![7i32, 8, 9]).unwrap()).unwrap();
    assert_eq!(t.shape(), [2, 2, 2, 3]);
    assert_eq!(i32s(&t)[..12], [7, 8, 9, 7, 8, 9, 7, 8, 9, 7, 8, 9]);
    assert_eq!(i32s(&t)[12..], (0..12).collect::<Vec<_>>()[..]);
    let t = run(Tensor::from_vec(&[2, 1], vec![7i32, 8]).unwrap()).unwrap();
    assert_eq!(i32s(&t)[..12], [7, 7, 7, 8, 8, 8, 7, 7, 7, 8, 8, 8]);
    // TF aligns the shape check from the left but broadcasts from the right.
    assert!(run(Tensor::vector(vec![7i32, 8])).is_err());
    assert!(run(Tensor::vector(vec![7i32, 8, 9, 10])).is_err());
    // A default with as many elements as a value element is used flat (TF quirk).
    let v = Tensor::from_vec(&[2, 2, 1], vec![0i32, 1, 2, 3]).unwrap();
    let t = eval(
        RS,
        to_tensor(
            Tensor::scalar(-1i64),
            v,
            Tensor::vector(vec![7i32, 8]),
            vec![splits(&[0, 0, 2])],
        ),
    )
    .unwrap();
    assert_eq!(i32s(&t), [7, 8, 7, 8, 0, 1, 2, 3]);
}

#[test]
fn strings_and_int32_partitions() {
    let t = eval(
        RS,
        to_tensor(
            Tensor::vector(vec![-1i32, 3]),
            Tensor::from_strings(&[3], ["a", "b", "c"]).unwrap(),
            Tensor::from_strings(&[], [""]).unwrap(),
            vec![Tensor::vector(vec![0i32, 1, 1, 3])],
        ),
    )
    .unwrap();
    let got: Vec<Bytes> = t.as_slice::<Bytes>().unwrap().to_vec();
    let want: Vec<Bytes> = ["a", "", "", "", "", "", "b", "c", ""]
        .iter()
        .map(|s| Bytes::from(*s))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn bad_partitions_are_errors() {
    let run = |types: &[&str], parts: Vec<Tensor>| {
        eval(
            types,
            to_tensor(
                Tensor::scalar(-1i64),
                Tensor::vector(vec![1i32, 2, 3]),
                Tensor::scalar(0i32),
                parts,
            ),
        )
        .unwrap_err()
        .to_string()
    };
    assert!(run(RS, vec![splits(&[1, 2, 3])]).contains("start with 0"));
    assert!(run(RS, vec![splits(&[0, 2, 1, 3])]).contains("decrease"));
    assert!(run(RS, vec![splits(&[0, 2, 2, 4])]).contains("3 rows"));
    assert!(run(RS, vec![splits(&[0, 2, 2, 2])]).contains("3 rows"));
    assert!(run(RS, vec![splits(&[])]).contains("at least one element"));
    let ids = &["FIRST_DIM_SIZE", "VALUE_ROWIDS"];
    assert!(run(ids, vec![Tensor::scalar(2i64), splits(&[0, 0, 2])]).contains("[0, 2)"));
    assert!(run(ids, vec![Tensor::scalar(3i64), splits(&[0, -1, 2])]).contains("[0, 3)"));
    assert!(run(ids, vec![Tensor::scalar(3i64), splits(&[2, 0, 1])]).contains("sorted"));
    assert!(run(ids, vec![Tensor::scalar(3i64), splits(&[0, 1])]).contains("3 rows"));
    assert!(run(ids, vec![Tensor::scalar(-1i64), splits(&[0, 1, 1])]).contains(">= 0"));
    let nested = &["ROW_SPLITS", "ROW_SPLITS"];
    assert!(run(nested, vec![splits(&[0, 2, 3]), splits(&[0, 1, 1, 3, 3])]).contains("entries"));
}

#[test]
fn bad_shapes_are_errors() {
    let run = |shape: Tensor, values: Tensor, default: Tensor| {
        eval(
            RS,
            to_tensor(shape, values, default, vec![splits(&[0, 1, 1, 3])]),
        )
        .unwrap_err()
        .to_string()
    };
    let v = || Tensor::vector(vec![1.5f32, 2.0, 3.0]);
    let m = || Tensor::from_vec(&[3, 2], vec![1i32, 2, 3, 4, 5, 6]).unwrap();
    assert!(run(Tensor::scalar(3i64), v(), Tensor::scalar(0f32)).contains("scalar shape"));
    assert!(run(Tensor::vector(vec![-2i64, 3]), v(), Tensor::scalar(0f32)).contains("-2"));
    assert!(run(Tensor::vector(vec![-1i64, 3, 3]), v(), Tensor::scalar(0f32)).contains("rank"));
    assert!(run(
        Tensor::vector(vec![-1i64, -1, 1]),
        m(),
        Tensor::scalar(0i32)
    )
    .contains("shape[2]"));
    assert!(run(Tensor::scalar(-1i64), v(), Tensor::vector(vec![0f32])).contains("default_value"));
    assert!(
        run(Tensor::scalar(-1i64), m(), Tensor::vector(vec![0i32; 3])).contains("default_value")
    );
    assert!(run(Tensor::scalar(-1i64), v(), Tensor::scalar(0i32)).contains("dtype"));
    // A huge explicit shape is refused by the memory cap, not allocated.
    let err = run(
        Tensor::vector(vec![1i64 << 40, 1 << 20]),
        v(),
        Tensor::scalar(0f32),
    );
    assert!(err.contains("limit") || err.contains("overflow"), "{err}");
}

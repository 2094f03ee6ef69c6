//! Unit tests for the array ops, against values from TF 2.21 (`tf.raw_ops` one-liners in
//! comments, with `R = tf.raw_ops`, `x = tf.reshape(tf.range(24), [2, 3, 4])`). Also hosts the
//! op-test helpers the other families' tests use.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::ops::{
    BuildCtx, Callable, EvalCtx, FunctionResolver, Limits, Op, OpError, Registry, Session,
};
use crate::proto::{attr_value, AttrValue};
use crate::tensor::{DType, Tensor};

struct NoFunctions;

impl FunctionResolver for NoFunctions {
    fn function(&mut self, name: &str) -> Result<Arc<dyn Callable>, OpError> {
        Err(OpError::Unimplemented(format!(
            "function {name} in a unit test"
        )))
    }
}

/// An attribute value for [`run`].
pub(in crate::ops) enum A {
    I(i64),
    F(f32),
    B(bool),
    S(&'static str),
    T(DType),
    L(&'static [i64]),
}

/// Builds `op` with `attrs` from the full registry and evaluates it once on `inputs`.
pub(in crate::ops) fn run(
    op: &str,
    attrs: &[(&str, A)],
    inputs: Vec<Tensor>,
) -> Result<Vec<Tensor>, OpError> {
    let attrs: BTreeMap<String, AttrValue> = attrs
        .iter()
        .map(|(k, v)| {
            let value = match v {
                A::I(i) => attr_value::Value::I(*i),
                A::F(f) => attr_value::Value::F(*f),
                A::B(b) => attr_value::Value::B(*b),
                A::S(s) => attr_value::Value::S(s.as_bytes().to_vec()),
                A::T(t) => attr_value::Value::Type(t.to_proto()),
                A::L(l) => attr_value::Value::List(Box::new(attr_value::ListValue {
                    i: l.to_vec(),
                    ..Default::default()
                })),
            };
            (k.to_string(), AttrValue { value: Some(value) })
        })
        .collect();
    let built = build_op(op, &attrs, inputs.len())?;
    let session = Session::new(PathBuf::from("."), None, Limits::default());
    let mut ecx = EvalCtx::new(&session);
    built
        .eval(&mut ecx, inputs.into())
        .map(crate::ops::Tensors::into_vec)
}

/// Builds `op` from the full registry with `attrs` for `num_inputs` inputs (no function
/// library: an op that calls one fails to build).
pub(in crate::ops) fn build_op(
    op: &str,
    attrs: &BTreeMap<String, AttrValue>,
    num_inputs: usize,
) -> Result<Box<dyn Op>, OpError> {
    let reg = Registry::with_all_ops();
    let b = reg
        .get(op)
        .ok_or_else(|| OpError::Unimplemented(format!("{op} not registered")))?;
    let mut fns = NoFunctions;
    let mut cx = BuildCtx {
        node: "n",
        op,
        attrs,
        num_inputs,
        scope: "",
        max_const_elements: 1 << 20,
        functions: &mut fns,
    };
    b(&mut cx)
}

/// Attribute pairs as a node's attribute map.
pub(in crate::ops) fn attr_map(pairs: &[(&str, attr_value::Value)]) -> BTreeMap<String, AttrValue> {
    pairs
        .iter()
        .map(|(k, v)| {
            let value = Some(v.clone());
            (k.to_string(), AttrValue { value })
        })
        .collect()
}

/// A deterministic f32 tensor of `shape` with values in `[-amplitude, amplitude)`: a
/// multiplicative hash of each index, xor `seed`, in steps of `amplitude / 500`.
pub(in crate::ops) fn hashed_f32(shape: &[usize], seed: u32, amplitude: f32) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|i| {
            let h = ((i as u32).wrapping_mul(2654435761) ^ seed) % 1000;
            (h as f32 / 500.0 - 1.0) * amplitude
        })
        .collect();
    Tensor::from_vec(shape, v).expect("shape")
}

/// [`run`] expecting exactly one output.
pub(in crate::ops) fn run1(op: &str, attrs: &[(&str, A)], inputs: Vec<Tensor>) -> Tensor {
    let mut out = run(op, attrs, inputs).unwrap_or_else(|e| panic!("{op}: {e}"));
    assert_eq!(out.len(), 1, "{op}: outputs");
    out.remove(0)
}

pub(in crate::ops) fn t<T: crate::tensor::Element>(shape: &[usize], v: Vec<T>) -> Tensor {
    Tensor::from_vec(shape, v).expect("test tensor")
}

fn iv(v: &[i32]) -> Tensor {
    Tensor::vector(v.to_vec())
}

fn x24() -> Tensor {
    t(&[2, 3, 4], (0..24).collect::<Vec<i32>>())
}

fn check(out: &Tensor, shape: &[usize], v: &[i32]) {
    assert_eq!(out.shape(), shape);
    assert_eq!(out.as_slice::<i32>().unwrap(), v);
}

fn ss(x: Tensor, b: &[i32], e: &[i32], s: &[i32], masks: [i64; 5]) -> Result<Tensor, OpError> {
    let names = [
        "begin_mask",
        "end_mask",
        "ellipsis_mask",
        "new_axis_mask",
        "shrink_axis_mask",
    ];
    let attrs: Vec<(&str, A)> = names
        .iter()
        .zip(masks)
        .map(|(n, m)| (*n, A::I(m)))
        .collect();
    run("StridedSlice", &attrs, vec![x, iv(b), iv(e), iv(s)]).map(|mut v| v.remove(0))
}

#[test]
fn strided_slice_masks() {
    // R.StridedSlice(input=x, begin=[0,1], end=[0,3], strides=[1,1], ellipsis_mask=1)
    let o = ss(x24(), &[0, 1], &[0, 3], &[1, 1], [0, 0, 1, 0, 0]).unwrap();
    check(&o, &[2, 3, 2], &[1, 2, 5, 6, 9, 10, 13, 14, 17, 18, 21, 22]);
    // x[:, ::-1, tf.newaxis, -1]
    let o = ss(
        x24(),
        &[0, 0, 0, -1],
        &[0, 0, 0, 0],
        &[1, -1, 1, 1],
        [3, 3, 0, 4, 8],
    )
    .unwrap();
    check(&o, &[2, 3, 1], &[11, 7, 3, 23, 19, 15]);
    // x[1, -2:, ::-2]
    let o = ss(x24(), &[1, -2, 0], &[2, 0, 0], &[1, 1, -2], [4, 6, 0, 0, 1]).unwrap();
    check(&o, &[2, 2], &[19, 17, 23, 21]);
    // x[1, ...] and x[..., newaxis] and x[newaxis, ..., :]
    let o = ss(x24(), &[1, 0], &[2, 0], &[1, 1], [0, 0, 2, 0, 1]).unwrap();
    check(&o, &[3, 4], &(12..24).collect::<Vec<_>>());
    let o = ss(x24(), &[0, 0], &[0, 0], &[1, 1], [0, 0, 1, 2, 0]).unwrap();
    assert_eq!(o.shape(), [2, 3, 4, 1]);
    let o = ss(x24(), &[0, 0, 0], &[0, 0, 0], &[1, 1, 1], [4, 4, 2, 1, 0]).unwrap();
    assert_eq!(o.shape(), [1, 2, 3, 4]);
}

#[test]
fn strided_slice_clamps_and_negative_strides() {
    let v = || iv(&[0, 1, 2, 3, 4, 5, 6, 7]);
    // R.StridedSlice(input=tf.range(8), begin=[5], end=[1], strides=[-2]) -> [5, 3]
    check(&ss(v(), &[5], &[1], &[-2], [0; 5]).unwrap(), &[2], &[5, 3]);
    check(
        &ss(v(), &[-10], &[10], &[1], [0; 5]).unwrap(),
        &[8],
        &[0, 1, 2, 3, 4, 5, 6, 7],
    );
    check(
        &ss(v(), &[10], &[-10], &[-3], [0; 5]).unwrap(),
        &[3],
        &[7, 4, 1],
    );
    // TF quirk: a shrunk axis ignores its begin mask: begin=[1], begin_mask=1 -> 2.
    let o = ss(iv(&[1, 2, 3]), &[1], &[2], &[1], [1, 0, 0, 0, 1]).unwrap();
    check(&o, &[], &[2]);
    // "slice index 5 of dimension 0 out of bounds."
    let e = ss(iv(&[1, 2, 3]), &[5], &[6], &[1], [0, 0, 0, 0, 1]).unwrap_err();
    assert!(e.to_string().contains("out of bounds"), "{e}");
    assert!(ss(iv(&[1, 2, 3]), &[0], &[1], &[0], [0; 5]).is_err());
}

#[test]
fn reshape_infers_and_checks() {
    let o = run1("Reshape", &[], vec![x24(), iv(&[-1, 6])]);
    assert_eq!(o.shape(), [4, 6]);
    // TF quirk: R.Reshape(tensor=tf.zeros([0,3]), shape=[-1,0]) has shape (3, 0).
    let o = run1(
        "Reshape",
        &[],
        vec![Tensor::zeros(DType::F32, &[0, 3]).unwrap(), iv(&[-1, 0])],
    );
    assert_eq!(o.shape(), [3, 0]);
    let e = run("Reshape", &[], vec![t(&[5], vec![0f32; 5]), iv(&[-1, 2])]).unwrap_err();
    assert!(e.to_string().contains("requires a multiple of 2"), "{e}");
    assert!(run("Reshape", &[], vec![x24(), iv(&[5, 5])]).is_err());
    assert!(run("Reshape", &[], vec![x24(), iv(&[-1, -1])]).is_err());
}

#[test]
fn shape_ops() {
    let o = run1("Shape", &[("out_type", A::T(DType::I64))], vec![x24()]);
    assert_eq!(o.as_slice::<i64>().unwrap(), [2, 3, 4]);
    let o = run("ShapeN", &[], vec![x24(), iv(&[1])]).unwrap();
    assert_eq!(o[1].as_slice::<i32>().unwrap(), [1]);
    assert_eq!(
        run1("Size", &[], vec![x24()])
            .scalar_value::<i32>()
            .unwrap(),
        24
    );
    assert_eq!(
        run1("Rank", &[], vec![x24()])
            .scalar_value::<i32>()
            .unwrap(),
        3
    );
    let o = run1("ExpandDims", &[], vec![x24(), Tensor::scalar(-1i32)]);
    assert_eq!(o.shape(), [2, 3, 4, 1]);
    let s = run1("Squeeze", &[], vec![t(&[1, 2, 1], vec![1i32, 2])]);
    assert_eq!(s.shape(), [2]);
    let s = run1(
        "Squeeze",
        &[("squeeze_dims", A::L(&[-1]))],
        vec![t(&[1, 2, 1], vec![1, 2])],
    );
    assert_eq!(s.shape(), [1, 2]);
    assert!(run("Squeeze", &[("squeeze_dims", A::L(&[1]))], vec![x24()]).is_err());
    // R.BroadcastArgs(s0=[2,1,3], s1=[4,1]) -> [2, 4, 3]
    check(
        &run1("BroadcastArgs", &[], vec![iv(&[2, 1, 3]), iv(&[4, 1])]),
        &[3],
        &[2, 4, 3],
    );
    // R.InvertPermutation(x=[2,0,1]) -> [1, 2, 0]
    check(
        &run1("InvertPermutation", &[], vec![iv(&[2, 0, 1])]),
        &[3],
        &[1, 2, 0],
    );
    assert!(run("InvertPermutation", &[], vec![iv(&[0, 0])]).is_err());
}

#[test]
fn fill_and_likes() {
    let s = Tensor::scalar(crate::tensor::Bytes::from_static(b"ab"));
    let o = run1("Fill", &[], vec![iv(&[2, 1]), s]);
    assert_eq!(
        o.as_slice::<crate::tensor::Bytes>().unwrap(),
        [b"ab".to_vec(), b"ab".to_vec()]
    );
    let o = run1("OnesLike", &[], vec![t(&[2], vec![true, false])]);
    assert_eq!(o.as_slice::<bool>().unwrap(), [true, true]);
    let o = run1(
        "ZerosLike",
        &[],
        vec![t(&[1], vec![crate::tensor::Bytes::from_static(b"x")])],
    );
    assert_eq!(
        o.as_slice::<crate::tensor::Bytes>().unwrap(),
        [Vec::<u8>::new()]
    );
    assert!(run("Fill", &[], vec![iv(&[-1]), Tensor::scalar(1f32)]).is_err());
}

#[test]
fn range_values_and_caps() {
    // R.Range(start=10, limit=-3, delta=-4) -> [10, 6, 2, -2]
    let o = run1(
        "Range",
        &[],
        vec![10i32, -3, -4]
            .into_iter()
            .map(Tensor::scalar)
            .collect(),
    );
    check(&o, &[4], &[10, 6, 2, -2]);
    // TF 2.21 computes start + T(i) * delta: R.Range(0.3, 100.0, 0.1) has 997 elements equal
    // to np.float32(0.3) + np.arange(997, dtype=np.float32) * np.float32(0.1).
    let o = run1(
        "Range",
        &[],
        vec![0.3f32, 100.0, 0.1]
            .into_iter()
            .map(Tensor::scalar)
            .collect(),
    );
    let v = o.as_slice::<f32>().unwrap();
    assert_eq!(v.len(), 997);
    assert_eq!(v[996], 0.3f32 + 996f32 * 0.1f32);
    let o = run1(
        "Range",
        &[],
        vec![1f32, -1.0, -0.5]
            .into_iter()
            .map(Tensor::scalar)
            .collect(),
    );
    assert_eq!(o.as_slice::<f32>().unwrap(), [1.0, 0.5, 0.0, -0.5]);
    // A 2^40-element range is refused by the allocation cap before any allocation.
    let start = std::time::Instant::now();
    let big = vec![0i64, 1 << 40, 1]
        .into_iter()
        .map(Tensor::scalar)
        .collect();
    assert!(matches!(run("Range", &[], big), Err(OpError::Limit(_))));
    let big = vec![0f32, 1e13, 1.0]
        .into_iter()
        .map(Tensor::scalar)
        .collect();
    assert!(matches!(run("Range", &[], big), Err(OpError::Limit(_))));
    assert!(start.elapsed().as_millis() < 500);
    let bad = vec![0i32, 5, 0].into_iter().map(Tensor::scalar).collect();
    assert!(matches!(run("Range", &[], bad), Err(OpError::Invalid(_))));
    let bad = vec![5i32, 0, 1].into_iter().map(Tensor::scalar).collect();
    assert!(matches!(run("Range", &[], bad), Err(OpError::Invalid(_))));
}

#[test]
fn concat_pack_split() {
    let a = t(&[2, 2], vec![1i32, 2, 3, 4]);
    let b = t(&[2, 1], vec![5i32, 6]);
    let o = run1(
        "ConcatV2",
        &[],
        vec![a.clone(), b.clone(), Tensor::scalar(-1i32)],
    );
    check(&o, &[2, 3], &[1, 2, 5, 3, 4, 6]);
    let o = run1(
        "Concat",
        &[],
        vec![Tensor::scalar(0i32), a.clone(), a.clone()],
    );
    check(&o, &[4, 2], &[1, 2, 3, 4, 1, 2, 3, 4]);
    assert!(run(
        "ConcatV2",
        &[],
        vec![a.clone(), b.clone(), Tensor::scalar(0i32)]
    )
    .is_err());
    let o = run1("Pack", &[("axis", A::I(1))], vec![a.clone(), a.clone()]);
    check(&o, &[2, 2, 2], &[1, 2, 1, 2, 3, 4, 3, 4]);
    let o = run(
        "Unpack",
        &[("num", A::I(2)), ("axis", A::I(1))],
        vec![a.clone()],
    )
    .unwrap();
    check(&o[1], &[2], &[2, 4]);
    let o = run(
        "Split",
        &[("num_split", A::I(2))],
        vec![Tensor::scalar(1i32), a],
    )
    .unwrap();
    check(&o[0], &[2, 1], &[1, 3]);
    // R.SplitV(value=tf.range(10), size_splits=[3,-1,2], axis=0, num_split=3)
    let v = iv(&(0..10).collect::<Vec<_>>());
    let o = run(
        "SplitV",
        &[("num_split", A::I(3))],
        vec![v.clone(), iv(&[3, -1, 2]), Tensor::scalar(0i32)],
    )
    .unwrap();
    check(&o[1], &[5], &[3, 4, 5, 6, 7]);
    let bad = vec![v, iv(&[3, 3, 2]), Tensor::scalar(0i32)];
    assert!(run("SplitV", &[("num_split", A::I(3))], bad).is_err());
}

#[test]
fn slice_tile_reverse_broadcast() {
    // R.Slice(input=x, begin=[1,1,0], size=[-1,2,3]) -> [[[16,17,18],[20,21,22]]]
    let o = run1("Slice", &[], vec![x24(), iv(&[1, 1, 0]), iv(&[-1, 2, 3])]);
    check(&o, &[1, 2, 3], &[16, 17, 18, 20, 21, 22]);
    assert!(run("Slice", &[], vec![x24(), iv(&[1, 1, 0]), iv(&[2, 1, 1])]).is_err());
    // R.Tile(input=[[1,2]], multiples=[2,2])
    let o = run1("Tile", &[], vec![t(&[1, 2], vec![1i32, 2]), iv(&[2, 2])]);
    check(&o, &[2, 4], &[1, 2, 1, 2, 1, 2, 1, 2]);
    // A size-1 innermost axis (repeat runs): R.Tile(input=[[1],[2]], multiples=[2,3])
    let o = run1("Tile", &[], vec![t(&[2, 1], vec![1i32, 2]), iv(&[2, 3])]);
    check(&o, &[4, 3], &[1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2]);
    // R.Tile(input=[[[1,2]],[[3,4]]], multiples=[1,2,2])
    let o = run1(
        "Tile",
        &[],
        vec![t(&[2, 1, 2], vec![1i32, 2, 3, 4]), iv(&[1, 2, 2])],
    );
    check(
        &o,
        &[2, 2, 4],
        &[1, 2, 1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4, 3, 4],
    );
    let p = t(&[2, 3], vec![1i32, 2, 3, 4, 5, 6]);
    check(
        &run1("ReverseV2", &[], vec![p, iv(&[-1])]),
        &[2, 3],
        &[3, 2, 1, 6, 5, 4],
    );
    let o = run1(
        "BroadcastTo",
        &[],
        vec![t(&[2, 1], vec![1i32, 2]), iv(&[2, 3])],
    );
    check(&o, &[2, 3], &[1, 1, 1, 2, 2, 2]);
    // "Unable to broadcast tensor of shape [3] to tensor of shape [1]"
    assert!(run("BroadcastTo", &[], vec![iv(&[1, 2, 3]), iv(&[1])]).is_err());
    let s = t(
        &[2, 2],
        ["a", "b", "c", "d"]
            .map(|s| crate::tensor::Bytes::copy_from_slice(s.as_bytes()))
            .to_vec(),
    );
    let o = run1("Transpose", &[], vec![s, iv(&[1, 0])]);
    let got: Vec<&[u8]> = o
        .as_slice::<crate::tensor::Bytes>()
        .unwrap()
        .iter()
        .map(|v| &v[..])
        .collect();
    assert_eq!(got, [b"a", b"c", b"b", b"d"]);
    let o = run1("Transpose", &[], vec![x24(), iv(&[2, 0, 1])]);
    assert_eq!(o.shape(), [4, 2, 3]);
    assert_eq!(o.as_slice::<i32>().unwrap()[..4], [0, 4, 8, 12]);
}

/// One element per row (the column fast path of `remap`), with shrinking, negative strides
/// and padded rows.
#[test]
fn single_column_slices_and_pads() {
    let x = || t(&[4, 3], (0..12).collect::<Vec<i32>>());
    // R.StridedSlice(input=x, begin=[0,1], end=[0,2], strides=[1,1], begin_mask=1,
    //   end_mask=1, shrink_axis_mask=2) -> [1, 4, 7, 10]
    let o = ss(x(), &[0, 1], &[0, 2], &[1, 1], [1, 1, 0, 0, 2]).unwrap();
    check(&o, &[4], &[1, 4, 7, 10]);
    // R.StridedSlice(input=x, begin=[3,2], end=[0,3], strides=[-2,1], end_mask=1)
    //   -> [[11], [5]]
    let o = ss(x(), &[3, 2], &[0, 3], &[-2, 1], [0, 1, 0, 0, 0]).unwrap();
    check(&o, &[2, 1], &[11, 5]);
    // R.PadV2(input=[[1],[2]], paddings=[[1,1],[0,0]], constant_values=9) -> [[9],[1],[2],[9]]
    let o = run1(
        "PadV2",
        &[],
        vec![
            t(&[2, 1], vec![1i32, 2]),
            t(&[2, 2], vec![1i32, 1, 0, 0]),
            Tensor::scalar(9i32),
        ],
    );
    check(&o, &[4, 1], &[9, 1, 2, 9]);
}

#[test]
fn pads() {
    let p = || t(&[2, 3], vec![1i32, 2, 3, 4, 5, 6]);
    let pads = |v: [i32; 4]| t(&[2, 2], v.to_vec());
    // R.MirrorPad(input=p, paddings=[[1,1],[2,2]], mode="REFLECT")
    let o = run1(
        "MirrorPad",
        &[("mode", A::S("REFLECT"))],
        vec![p(), pads([1, 1, 2, 2])],
    );
    check(
        &o,
        &[4, 7],
        &[
            6, 5, 4, 5, 6, 5, 4, 3, 2, 1, 2, 3, 2, 1, 6, 5, 4, 5, 6, 5, 4, 3, 2, 1, 2, 3, 2, 1,
        ],
    );
    // R.MirrorPad(input=p, paddings=[[1,0],[0,3]], mode="SYMMETRIC")
    let o = run1(
        "MirrorPad",
        &[("mode", A::S("SYMMETRIC"))],
        vec![p(), pads([1, 0, 0, 3])],
    );
    check(
        &o,
        &[3, 6],
        &[1, 2, 3, 3, 2, 1, 1, 2, 3, 3, 2, 1, 4, 5, 6, 6, 5, 4],
    );
    assert!(run(
        "MirrorPad",
        &[("mode", A::S("REFLECT"))],
        vec![p(), pads([2, 0, 0, 0])]
    )
    .is_err());
    // R.PadV2(input=p, paddings=[[0,1],[1,0]], constant_values=9)
    let o = run1(
        "PadV2",
        &[],
        vec![p(), pads([0, 1, 1, 0]), Tensor::scalar(9i32)],
    );
    check(&o, &[3, 4], &[9, 1, 2, 3, 9, 4, 5, 6, 9, 9, 9, 9]);
    let o = run1("Pad", &[], vec![p(), pads([0, 0, 1, 1])]);
    check(&o, &[2, 5], &[0, 1, 2, 3, 0, 0, 4, 5, 6, 0]);
    assert!(run("Pad", &[], vec![p(), pads([0, -1, 0, 0])]).is_err());
}

#[test]
fn gathers() {
    let params = || t(&[2, 3, 2], (0..12).collect::<Vec<i32>>());
    // R.GatherV2(params=params, indices=[[2,0],[1,1]], axis=1, batch_dims=1)
    let idx = t(&[2, 2], vec![2i32, 0, 1, 1]);
    let o = run1(
        "GatherV2",
        &[("batch_dims", A::I(1))],
        vec![params(), idx, Tensor::scalar(1i32)],
    );
    check(&o, &[2, 2, 2], &[4, 5, 0, 1, 8, 9, 8, 9]);
    // R.GatherV2(params=params, indices=[[1],[0]], axis=2, batch_dims=1)
    let idx = t(&[2, 1], vec![1i32, 0]);
    let o = run1(
        "GatherV2",
        &[("batch_dims", A::I(-1))],
        vec![params(), idx, Tensor::scalar(2i32)],
    );
    check(&o, &[2, 3, 1], &[1, 3, 5, 6, 8, 10]);
    let idx = iv(&[3]);
    assert!(run("GatherV2", &[], vec![params(), idx, Tensor::scalar(1i32)]).is_err());
    // R.GatherNd(params=params, indices=[[1,2],[0,1]]) and indices=[[[1,2,1]],[[0,0,0]]]
    let o = run1(
        "GatherNd",
        &[],
        vec![params(), t(&[2, 2], vec![1i32, 2, 0, 1])],
    );
    check(&o, &[2, 2], &[10, 11, 2, 3]);
    let o = run1(
        "GatherNd",
        &[],
        vec![params(), t(&[2, 1, 3], vec![1i32, 2, 1, 0, 0, 0])],
    );
    check(&o, &[2, 1], &[11, 0]);
    assert!(run("GatherNd", &[], vec![params(), t(&[1, 2], vec![2i32, 0])]).is_err());
}

#[test]
fn one_hot_where_unique() {
    // R.OneHot(indices=[[0,3],[-1,1]], depth=3, on_value=5.0, off_value=-1.0, axis=0)
    let ins = vec![
        t(&[2, 2], vec![0i64, 3, -1, 1]),
        Tensor::scalar(3i32),
        Tensor::scalar(5f32),
        Tensor::scalar(-1f32),
    ];
    let o = run1("OneHot", &[("axis", A::I(0))], ins);
    assert_eq!(o.shape(), [3, 2, 2]);
    let want = [5., -1., -1., -1., -1., -1., -1., 5., -1., -1., -1., -1.];
    assert_eq!(o.as_slice::<f32>().unwrap(), want);
    // R.Where(condition=[[True,False],[False,True],[True,True]])
    let c = t(&[3, 2], vec![true, false, false, true, true, true]);
    let o = run1("Where", &[], vec![c]);
    assert_eq!(o.shape(), [4, 2]);
    assert_eq!(o.as_slice::<i64>().unwrap(), [0, 0, 1, 1, 2, 0, 2, 1]);
    // R.Unique(x=[1.0,-0.0,0.0,nan,1.0,nan,2.0], out_idx=tf.int64): y=[1,-0,nan,nan,2],
    // idx=[0,1,1,2,0,3,4] (each NaN is distinct; -0.0 == 0.0).
    let x = t(&[7], vec![1f32, -0.0, 0.0, f32::NAN, 1.0, f32::NAN, 2.0]);
    let o = run("Unique", &[("out_idx", A::T(DType::I64))], vec![x]).unwrap();
    assert_eq!(o[0].len(), 5);
    assert_eq!(o[1].as_slice::<i64>().unwrap(), [0, 1, 1, 2, 0, 3, 4]);
    let s = t(
        &[3],
        vec![
            crate::tensor::Bytes::from_static(b"b"),
            crate::tensor::Bytes::from_static(b"a"),
            crate::tensor::Bytes::from_static(b"b"),
        ],
    );
    let o = run("Unique", &[], vec![s]).unwrap();
    assert_eq!(o[1].as_slice::<i32>().unwrap(), [0, 1, 0]);
}

/// xorshift64: reproducible pseudo-random test inputs.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn gather_row_widths_match_reference() {
    // GatherV2 specialises rows of 1, 2 and 4 elements; every width, both index dtypes,
    // batch_dims 0/1 and empty inputs must agree with the definition
    // out[b, o, j, i] = params[b, o, indices[b, j], i].
    let mut s = 0x2545_f491_4f6c_dd1du64;
    for inner in [1usize, 2, 3, 4, 5, 8] {
        for (batch, outer, n, m) in [
            (1, 1, 7, 0),
            (1, 1, 0, 0),
            (1, 1, 9, 33),
            (1, 3, 5, 6),
            (2, 2, 4, 5),
        ] {
            for batch_dims in [0usize, 1] {
                if batch_dims == 1 && batch == 1 && outer > 1 {
                    continue;
                }
                let (pshape, ishape, axis) = if batch_dims == 1 {
                    (vec![batch, outer, n, inner], vec![batch, m], 2)
                } else {
                    (vec![batch * outer, n, inner], vec![m], 1)
                };
                let (batch, outer) = if batch_dims == 1 {
                    (batch, outer)
                } else {
                    (1, batch * outer)
                };
                let plen = batch * outer * n * inner;
                let p: Vec<i64> = (0..plen as i64).map(|v| v * 10 + 1).collect();
                let idx: Vec<i64> = (0..batch * m)
                    .map(|_| (xorshift(&mut s) % n.max(1) as u64) as i64)
                    .collect();
                let mut want = Vec::new();
                for b in 0..batch {
                    for o in 0..outer {
                        for &i in &idx[b * m..(b + 1) * m] {
                            let start = ((b * outer + o) * n + i as usize) * inner;
                            want.extend_from_slice(&p[start..start + inner]);
                        }
                    }
                }
                let mut want_shape = pshape[..axis].to_vec();
                want_shape.extend_from_slice(&ishape[batch_dims..]);
                want_shape.push(inner);
                let attrs = [("batch_dims", A::I(batch_dims as i64))];
                let params = Tensor::from_vec(&pshape, p.clone()).unwrap();
                let i64s = Tensor::from_vec(&ishape, idx.clone()).unwrap();
                let i32s =
                    Tensor::from_vec(&ishape, idx.iter().map(|&i| i as i32).collect()).unwrap();
                for indices in [i64s, i32s] {
                    let ins = vec![params.clone(), indices, Tensor::scalar(axis as i32)];
                    let o = run1("GatherV2", &attrs, ins);
                    assert_eq!(
                        o.shape(),
                        want_shape.as_slice(),
                        "inner {inner} n {n} m {m}"
                    );
                    assert_eq!(
                        o.as_slice::<i64>().unwrap(),
                        want,
                        "inner {inner} n {n} m {m}"
                    );
                }
                // Strings go through the same row copies with `Clone`.
                let sp: Vec<crate::tensor::Bytes> = p
                    .iter()
                    .map(|v| v.to_string().into_bytes().into())
                    .collect();
                let ins = vec![
                    Tensor::from_vec(&pshape, sp).unwrap(),
                    Tensor::from_vec(&ishape, idx.clone()).unwrap(),
                    Tensor::scalar(axis as i32),
                ];
                let o = run1("GatherV2", &attrs, ins);
                let got: Vec<i64> = o
                    .as_slice::<crate::tensor::Bytes>()
                    .unwrap()
                    .iter()
                    .map(|b| std::str::from_utf8(b).unwrap().parse().unwrap())
                    .collect();
                assert_eq!(got, want);
                // An index of -1 or n anywhere is an error, not a panic.
                if !idx.is_empty() {
                    for bad in [-1i64, n as i64, i64::MIN, i64::MAX] {
                        let mut b = idx.clone();
                        let at = (xorshift(&mut s) % b.len() as u64) as usize;
                        b[at] = bad;
                        let ins = vec![
                            params.clone(),
                            Tensor::from_vec(&ishape, b).unwrap(),
                            Tensor::scalar(axis as i32),
                        ];
                        let e = run("GatherV2", &attrs, ins).unwrap_err();
                        assert!(e.to_string().contains(&format!("{bad} is not in")), "{e}");
                    }
                }
            }
        }
    }
}

#[test]
fn where_matches_reference() {
    // Where's rank-1 and rank >= 2 paths against the definition: the row-major coordinates
    // of every non-zero element (NaN is non-zero, -0.0 is zero).
    let mut s = 0xdead_beef_cafe_f00du64;
    let shapes: [&[usize]; 10] = [
        &[],
        &[0],
        &[1],
        &[70],
        &[3, 0],
        &[4, 5],
        &[1, 9],
        &[2, 3, 4],
        &[2, 1, 3, 2],
        &[3, 0, 2],
    ];
    for shape in shapes {
        let len: usize = shape.iter().product();
        for density in [0u64, 30, 100] {
            let f: Vec<f32> = (0..len)
                .map(|_| match xorshift(&mut s) % 100 {
                    x if x >= density => [0.0, -0.0][(x % 2) as usize],
                    x if x % 7 == 0 => f32::NAN,
                    x => x as f32,
                })
                .collect();
            let mut want = Vec::new();
            let mut hits = 0;
            for (i, v) in f.iter().enumerate() {
                if *v != 0.0 || v.is_nan() {
                    hits += 1;
                    let mut rem = i;
                    for d in 0..shape.len() {
                        let stride: usize = shape[d + 1..].iter().product();
                        want.push((rem / stride) as i64);
                        rem %= stride;
                    }
                }
            }
            let bools: Vec<bool> = f.iter().map(|v| *v != 0.0 || v.is_nan()).collect();
            let ints: Vec<i64> = bools.iter().map(|&b| i64::from(b) * 3).collect();
            for x in [t(shape, f.clone()), t(shape, bools), t(shape, ints)] {
                let o = run1("Where", &[], vec![x]);
                assert_eq!(o.shape(), [hits, shape.len()], "{shape:?}");
                assert_eq!(o.as_slice::<i64>().unwrap(), want, "{shape:?}");
            }
        }
    }
}

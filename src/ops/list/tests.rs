//! Unit tests for the TensorList ops: error paths (messages as TF words them), copy-on-write
//! and in-place writes. Numeric behaviour is covered against TF by the `rnn_text` fixture.

use crate::ops::array::tests::{run, run1, t, A};
use crate::ops::OpError;
use crate::tensor::list::TensorList;
use crate::tensor::{DType, Tensor};

const F32: (&str, A) = ("element_dtype", A::T(DType::F32));

fn shape(v: &[i32]) -> Tensor {
    Tensor::vector(v.to_vec())
}

fn unknown() -> Tensor {
    Tensor::scalar(-1i32)
}

fn reserve(elem: Tensor, n: i32) -> Result<Tensor, OpError> {
    run("TensorListReserve", &[F32], vec![elem, Tensor::scalar(n)]).map(|mut v| v.remove(0))
}

fn from_rows() -> Tensor {
    let x = t(&[3, 2], vec![1f32, 2., 3., 4., 5., 6.]);
    run1("TensorListFromTensor", &[F32], vec![x, shape(&[-1])])
}

fn set(list: Tensor, i: i32, item: Tensor, resize: bool) -> Result<Tensor, OpError> {
    let attrs = [F32, ("resize_if_index_out_of_bounds", A::B(resize))];
    run(
        "TensorListSetItem",
        &attrs,
        vec![list, Tensor::scalar(i), item],
    )
    .map(|mut v| v.remove(0))
}

fn get(list: Tensor, i: i32, elem: Tensor) -> Result<Tensor, OpError> {
    run(
        "TensorListGetItem",
        &[F32],
        vec![list, Tensor::scalar(i), elem],
    )
    .map(|mut v| v.remove(0))
}

fn stack(list: Tensor, elem: Tensor, n: i64) -> Result<Tensor, OpError> {
    let attrs = [F32, ("num_elements", A::I(n))];
    run("TensorListStack", &attrs, vec![list, elem]).map(|mut v| v.remove(0))
}

fn err(r: Result<Tensor, OpError>) -> String {
    match r {
        Ok(t) => panic!("expected an error, got {t:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn from_tensor_then_stack_round_trips() {
    let l = from_rows();
    assert_eq!(TensorList::borrow(&l).unwrap().len(), 3);
    let s = stack(l.clone(), unknown(), 3).unwrap();
    assert_eq!(s.shape(), [3, 2]);
    assert_eq!(s.as_slice::<f32>().unwrap(), [1., 2., 3., 4., 5., 6.]);
    let row = get(l.clone(), 1, unknown()).unwrap();
    assert_eq!(row.as_slice::<f32>().unwrap(), [3., 4.]);
    let n = run1("TensorListLength", &[], vec![l.clone()]);
    assert_eq!(n.scalar_value::<i32>().unwrap(), 3);
    let es = run1(
        "TensorListElementShape",
        &[("shape_type", A::T(DType::I64))],
        vec![l],
    );
    assert_eq!(es.as_slice::<i64>().unwrap(), [-1]);
}

#[test]
fn gather_picks_rows_and_checks_indices() {
    let idx = Tensor::vector(vec![2i32, 0]);
    let g = run1(
        "TensorListGather",
        &[F32],
        vec![from_rows(), idx, unknown()],
    );
    assert_eq!(g.shape(), [2, 2]);
    assert_eq!(g.as_slice::<f32>().unwrap(), [5., 6., 1., 2.]);
    let bad = Tensor::vector(vec![3i32]);
    let e = run(
        "TensorListGather",
        &[F32],
        vec![from_rows(), bad, unknown()],
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("gather element 3 in a list with 3"),
        "{e}"
    );
}

#[test]
fn uninitialized_elements_read_as_zeros_only_with_a_known_shape() {
    let l = reserve(shape(&[2]), 3).unwrap();
    let z = get(l.clone(), 1, unknown()).unwrap();
    assert_eq!(z.shape(), [2]);
    assert_eq!(z.as_slice::<f32>().unwrap(), [0., 0.]);
    let l = set(l, 0, Tensor::vector(vec![7f32, 8.]), false).unwrap();
    let s = stack(l, unknown(), -1).unwrap();
    assert_eq!(s.as_slice::<f32>().unwrap(), [7., 8., 0., 0., 0., 0.]);

    let l = reserve(unknown(), 2).unwrap();
    let e = err(get(l.clone(), 0, unknown()));
    assert!(e.contains("element_shape is not fully defined"), "{e}");
    let e = err(stack(l.clone(), unknown(), -1));
    assert!(e.contains("only contains uninitialized tensors"), "{e}");
    // The shape input can supply what the list does not know...
    let s = stack(l.clone(), shape(&[1, 3]), -1).unwrap();
    assert_eq!(s.shape(), [2, 1, 3]);
    // ...and an initialized element does too (TF infers it, for TensorArray parity).
    let l = set(l, 1, t(&[1, 2], vec![1f32, 2.]), false).unwrap();
    assert_eq!(get(l, 0, unknown()).unwrap().shape(), [1, 2]);
}

#[test]
fn bad_indices_sizes_and_shapes_are_errors() {
    let e = err(reserve(unknown(), -1));
    assert!(e.contains("non negative"), "{e}");
    let e = err(set(from_rows(), 3, Tensor::vector(vec![0f32, 0.]), false));
    assert!(e.contains("modify element 3 in a list with 3"), "{e}");
    let e = err(set(from_rows(), -1, Tensor::vector(vec![0f32, 0.]), true));
    assert!(e.contains("modify element -1"), "{e}");
    let e = err(get(from_rows(), -1, unknown()));
    assert!(e.contains("access element -1 in a list with 3"), "{e}");
    let e = err(get(from_rows(), 3, unknown()));
    assert!(e.contains("access element 3"), "{e}");
    let e = err(stack(from_rows(), unknown(), 4));
    assert!(e.contains("expected a list with 4 elements"), "{e}");
    let e = err(stack(from_rows(), shape(&[3]), -1));
    assert!(e.contains("Incompatible shapes"), "{e}");
    // Items must fit the list's element shape and dtype.
    let l = reserve(shape(&[2]), 2).unwrap();
    let e = err(set(l.clone(), 0, Tensor::vector(vec![1f32, 2., 3.]), false));
    assert!(e.contains("incompatible shape"), "{e}");
    let e = err(set(l.clone(), 0, Tensor::vector(vec![1i32, 2]), false));
    assert!(e.contains("Invalid data types"), "{e}");
    let attrs = [
        ("element_dtype", A::T(DType::I32)),
        ("num_elements", A::I(-1)),
    ];
    let e = run("TensorListStack", &attrs, vec![l, unknown()]).unwrap_err();
    assert!(
        e.to_string()
            .contains("op elements int32 but list elements float32"),
        "{e}"
    );
    // Shape inputs.
    let e = err(reserve(Tensor::scalar(2i32), 1));
    assert!(e.contains("only valid scalar shape"), "{e}");
    let e = err(reserve(shape(&[-2]), 1));
    assert!(e.contains(">= -1"), "{e}");
    let e = err(reserve(t(&[1, 1], vec![1i32]), 1));
    assert!(e.contains("0 or 1 dimension"), "{e}");
    // FromTensor needs at least a vector whose rows fit the shape.
    let e = run(
        "TensorListFromTensor",
        &[F32],
        vec![Tensor::scalar(1f32), unknown()],
    );
    assert!(err(e.map(|mut v| v.remove(0))).contains("at least a vector"));
    let x = t(&[2, 2], vec![0f32; 4]);
    let e = run("TensorListFromTensor", &[F32], vec![x, shape(&[3])]);
    assert!(err(e.map(|mut v| v.remove(0))).contains("Specified a list with shape [3]"));
}

#[test]
fn non_list_inputs_are_errors() {
    let e = err(get(Tensor::scalar(1f32), 0, unknown()));
    assert!(e.contains("expected dtype variant"), "{e}");
    let h = crate::tensor::Handle {
        name: "not a list".into(),
        value: std::sync::Arc::new(5u8),
    };
    let v = Tensor::handles(&[], vec![h], DType::Variant).unwrap();
    let e = err(get(v, 0, unknown()));
    assert!(e.contains("expected a TensorList"), "{e}");
}

#[test]
fn reserve_and_resize_are_capped() {
    // 2^31 - 1 slots would take far more than the default 4 GiB per-tensor cap.
    let e = reserve(unknown(), i32::MAX).unwrap_err();
    assert!(matches!(e, OpError::Limit(_)), "{e}");
    let l = reserve(unknown(), 0).unwrap();
    let e = set(l, i32::MAX - 1, Tensor::vector(vec![1f32]), true).unwrap_err();
    assert!(matches!(e, OpError::Limit(_)), "{e}");
}

#[test]
fn resize_if_index_out_of_bounds_grows_the_list() {
    let l = reserve(unknown(), 0).unwrap();
    let l = set(l, 2, Tensor::vector(vec![1f32]), true).unwrap();
    let s = stack(l, unknown(), 3).unwrap();
    assert_eq!(s.as_slice::<f32>().unwrap(), [0., 0., 1.]);
}

#[test]
fn push_and_pop() {
    let attrs = [F32, ("shape_type", A::T(DType::I32))];
    let l = run1(
        "EmptyTensorList",
        &attrs,
        vec![shape(&[1]), Tensor::scalar(1i32)],
    );
    let e = run("TensorListPopBack", &[F32], vec![l.clone(), unknown()]).unwrap_err();
    assert!(e.to_string().contains("pop from an empty list"), "{e}");
    let item = Tensor::vector(vec![4f32]);
    let l = run1("TensorListPushBack", &[F32], vec![l, item.clone()]);
    let e = run("TensorListPushBack", &[F32], vec![l.clone(), item]).unwrap_err();
    assert!(e.to_string().contains("push item into a full list"), "{e}");
    let out = run("TensorListPopBack", &[F32], vec![l, unknown()]).unwrap();
    assert_eq!(TensorList::borrow(&out[0]).unwrap().len(), 0);
    assert_eq!(out[1].as_slice::<f32>().unwrap(), [4.]);
}

#[test]
fn writes_copy_a_shared_list_and_reuse_an_unshared_one() {
    let l = from_rows();
    let before = TensorList::borrow(&l).unwrap().storage_addr();
    // Shared: the other holder keeps its value.
    let other = l.clone();
    let l2 = set(l, 0, Tensor::vector(vec![9f32, 9.]), false).unwrap();
    assert_eq!(
        get(other.clone(), 0, unknown())
            .unwrap()
            .as_slice::<f32>()
            .unwrap(),
        [1., 2.]
    );
    assert_eq!(
        get(l2.clone(), 0, unknown())
            .unwrap()
            .as_slice::<f32>()
            .unwrap(),
        [9., 9.]
    );
    assert_eq!(TensorList::borrow(&other).unwrap().storage_addr(), before);
    // Unshared: written in place, no copy of the element slots.
    let addr = TensorList::borrow(&l2).unwrap().storage_addr();
    let l3 = set(l2, 1, Tensor::vector(vec![8f32, 8.]), false).unwrap();
    assert_eq!(TensorList::borrow(&l3).unwrap().storage_addr(), addr);
}

//! TensorList ops (the `variant` lists Keras RNNs and `tf.TensorArray` in TF2 are built on):
//! `EmptyTensorList`, `TensorListReserve`, `TensorListFromTensor`, `TensorListStack`,
//! `TensorListGather`, `TensorListGetItem`, `TensorListSetItem`, `TensorListPushBack`,
//! `TensorListPopBack`, `TensorListLength`, `TensorListElementShape`, `TensorListResize`.
//! TF reference: core/kernels/list_kernels.{h,cc}; the value type is
//! [`crate::tensor::list::TensorList`].

use super::{take_inputs, BuildCtx, EvalCtx, Op, OpError, Registry};
use crate::ops::Tensors;
use crate::tensor::list::{fully_defined, merge_shapes, shape_compatible, shape_debug, TensorList};
use crate::tensor::{num_elements, Buf, DType, Element, Tensor};

pub(crate) fn register(r: &mut Registry) {
    r.add("EmptyTensorList", Make::build_empty);
    r.add("TensorListElementShape", ElementShape::build);
    r.add("TensorListFromTensor", Make::build_from_tensor);
    r.add("TensorListGather", Read::build_gather);
    r.add("TensorListGetItem", GetItem::build);
    r.add("TensorListLength", Length::build);
    r.add("TensorListPopBack", PopBack::build);
    r.add("TensorListPushBack", PushBack::build);
    r.add("TensorListReserve", Make::build_reserve);
    r.add("TensorListResize", Resize::build);
    r.add("TensorListSetItem", SetItem::build);
    r.add("TensorListStack", Read::build_stack);
}

/// Bytes the slots of a list of `n` elements take (elements themselves are counted when made).
fn check_slots(cx: &EvalCtx<'_>, n: usize) -> Result<(), OpError> {
    let per = std::mem::size_of::<Option<Tensor>>() as u128;
    cx.limits().check_bytes(n as u128 * per)
}

/// TF's `TensorShapeFromTensor`: a shape input as a partial shape (`-1` scalar: unknown rank).
fn partial_shape(t: &Tensor) -> Result<Option<Vec<i64>>, OpError> {
    if !matches!(t.dtype(), DType::I32 | DType::I64) {
        return Err(OpError::dtype(1, "int32 or int64 element_shape", t.dtype()));
    }
    let v = t.to_i64_vec()?;
    match t.rank() {
        0 if v == [-1] => Ok(None),
        0 => Err(OpError::invalid(
            "The only valid scalar shape tensor is the fully unknown shape specified as -1.",
        )),
        1 => {
            if let Some(d) = v.iter().find(|&&d| d < -1) {
                return Err(OpError::invalid(format!(
                    "Dimension {d} must be >= -1 in element_shape"
                )));
            }
            Ok(Some(v))
        }
        r => Err(OpError::invalid(format!(
            "Expected 0 or 1 dimension tensor for element shape, got rank {r}"
        ))),
    }
}

/// TF's `GetElementShapeFromInput`: the shape input merged with the list's element shape.
fn element_shape_from_input(list: &TensorList, t: &Tensor) -> Result<Option<Vec<i64>>, OpError> {
    let s = partial_shape(t)?;
    merge_shapes(&s, &list.element_shape).ok_or_else(|| {
        OpError::invalid(format!(
            "Incompatible shapes during merge: {} vs. {}",
            shape_debug(&s),
            shape_debug(&list.element_shape)
        ))
    })
}

fn dims_i64(d: &[usize]) -> Option<Vec<i64>> {
    Some(d.iter().map(|&x| x as i64).collect())
}

fn check_dtype(op: DType, list: &TensorList) -> Result<(), OpError> {
    if op != list.element_dtype {
        return Err(OpError::invalid(format!(
            "Invalid data types; op elements {op} but list elements {}",
            list.element_dtype
        )));
    }
    Ok(())
}

/// A scalar int32 index input.
fn index_arg(t: &Tensor) -> Result<i64, OpError> {
    if t.rank() != 0 {
        return Err(OpError::invalid(format!(
            "index must be a scalar, got shape {:?}",
            t.shape()
        )));
    }
    Ok(t.scalar_value_i64()?)
}

/// Zeros of `dtype` and `shape`, for reading an uninitialized element.
fn zeros(cx: &EvalCtx<'_>, dtype: DType, shape: &[usize]) -> Result<Tensor, OpError> {
    let n =
        num_elements(shape).ok_or_else(|| OpError::Limit(format!("shape {shape:?} overflows")))?;
    cx.limits().check_alloc(n, dtype)?;
    match dtype {
        DType::Resource | DType::Variant => Err(OpError::Unimplemented(format!(
            "reading an uninitialized {dtype} list element"
        ))),
        _ => Ok(Tensor::zeros(dtype, shape)?),
    }
}

/// `EmptyTensorList`, `TensorListReserve`, `TensorListFromTensor`: make a list.
#[derive(Debug)]
struct Make {
    kind: MakeKind,
    element_dtype: DType,
}

#[derive(Debug, Clone, Copy)]
enum MakeKind {
    Empty,
    Reserve,
    FromTensor,
}

impl Make {
    fn build(cx: &mut BuildCtx<'_>, kind: MakeKind) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(2)?;
        Ok(Box::new(Make {
            kind,
            element_dtype: cx.attr_type("element_dtype")?,
        }))
    }
    fn build_empty(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Self::build(cx, MakeKind::Empty)
    }
    fn build_reserve(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Self::build(cx, MakeKind::Reserve)
    }
    fn build_from_tensor(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Self::build(cx, MakeKind::FromTensor)
    }
}

/// Slices `b` (`n` rows of `inner` elements) into `n` tensors of `shape`.
fn unstack<T: Element>(
    b: &Buf<T>,
    n: usize,
    inner: usize,
    shape: &[usize],
) -> Result<Tensors, OpError> {
    (0..n)
        .map(|i| {
            let rows = b
                .get(i * inner..(i + 1) * inner)
                .ok_or_else(|| OpError::invalid("tensor is shorter than its shape"))?;
            Ok(Tensor::new(shape, T::wrap(Buf::from(rows.to_vec())))?)
        })
        .collect()
}

impl Op for Make {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [a, b] = take_inputs(inputs)?;
        let list = match self.kind {
            MakeKind::Empty => {
                let shape = partial_shape(&a)?;
                let max = index_arg(&b)?;
                if max < -1 {
                    return Err(OpError::invalid(format!(
                        "max_num_elements must be -1 or non-negative, got {max}"
                    )));
                }
                let mut l = TensorList::new(self.element_dtype, shape, 0);
                l.max_num_elements = max;
                l
            }
            MakeKind::Reserve => {
                let shape = partial_shape(&a)?;
                let n = index_arg(&b)?;
                let n = usize::try_from(n).map_err(|_| {
                    OpError::invalid(format!(
                        "The num_elements to reserve must be a non negative number, but got {n}"
                    ))
                })?;
                check_slots(cx, n)?;
                TensorList::new(self.element_dtype, shape, n)
            }
            MakeKind::FromTensor => {
                let shape = partial_shape(&b)?;
                if a.dtype() != self.element_dtype {
                    return Err(OpError::invalid(format!(
                        "Invalid data types; op elements {} but tensor is {}",
                        self.element_dtype,
                        a.dtype()
                    )));
                }
                // Variant elements (e.g. ragged rows from `RaggedTensorToVariant` in a
                // `tf.map_fn`) are handles, shared by the new list.
                if a.dtype() == DType::Resource {
                    return Err(OpError::Unimplemented(format!(
                        "TensorListFromTensor of a {} tensor",
                        a.dtype()
                    )));
                }
                let Some((&n, elem)) = a.shape().split_first() else {
                    return Err(OpError::invalid(format!(
                        "Tensor must be at least a vector, but saw shape: {:?}",
                        a.shape()
                    )));
                };
                if !shape_compatible(&shape, elem) {
                    return Err(OpError::invalid(format!(
                        "Specified a list with shape {} from a tensor with shape {:?}",
                        shape_debug(&shape),
                        elem
                    )));
                }
                check_slots(cx, n)?;
                let inner: usize = elem.iter().product();
                let mut parts = crate::match_any!(a.data(), buf => unstack(buf, n, inner, elem)?);
                if a.dtype() == DType::Variant {
                    // `unstack` wraps handles as resources; these are variants.
                    parts = parts
                        .into_iter()
                        .map(as_variant)
                        .collect::<Result<_, _>>()?;
                }
                // TF keeps the given (possibly partial) shape as the list's element shape.
                let mut l = TensorList::new(self.element_dtype, shape, n);
                for (i, t) in parts.into_iter().enumerate() {
                    l.set(i, t);
                }
                l
            }
        };
        Ok(tensors![list.into_tensor()])
    }
}

/// Concatenates same-shaped `parts` (of the element type of `_like`) into one buffer.
fn stack_data<T: Element>(
    _like: &Buf<T>,
    parts: &[&Tensor],
    per: usize,
) -> Result<crate::tensor::Data, OpError> {
    let mut out: Vec<T> = Vec::with_capacity(parts.len().saturating_mul(per));
    for p in parts {
        let s = p.as_slice::<T>()?;
        if s.len() != per {
            return Err(OpError::invalid(format!(
                "list element has {} values, expected {per}",
                s.len()
            )));
        }
        out.extend_from_slice(s);
    }
    Ok(T::wrap(Buf::from(out)))
}

/// Stacks list elements `idx` (checked in range) along a new first axis; uninitialized ones
/// read as zeros. `what` names the op in errors ("stack" / "gather").
fn gather(
    cx: &EvalCtx<'_>,
    list: &TensorList,
    idx: &[usize],
    shape_in: &Tensor,
    what: &str,
) -> Result<Tensor, OpError> {
    let mut shape = element_shape_from_input(list, shape_in)?;
    if fully_defined(&shape).is_none() && list.is_empty() {
        return Err(OpError::invalid(format!(
            "Tried to {what} elements of an empty list with non-fully-defined element_shape: {}",
            shape_debug(&shape)
        )));
    }
    if fully_defined(&list.element_shape).is_none() {
        for &i in idx {
            if let Some(Some(t)) = list.get(i) {
                shape = merge_shapes(&shape, &dims_i64(t.shape())).ok_or_else(|| {
                    OpError::invalid(format!(
                        "Incompatible shapes during merge: {} vs. {:?}",
                        shape_debug(&shape),
                        t.shape()
                    ))
                })?;
            }
        }
    }
    let elem = fully_defined(&shape).ok_or_else(|| {
        OpError::invalid(format!(
            "Tried to {what} list which only contains uninitialized tensors and has a \
             non-fully-defined element_shape: {}",
            shape_debug(&shape)
        ))
    })?;
    let mut out_shape = vec![idx.len()];
    out_shape.extend_from_slice(&elem);
    let total = num_elements(&out_shape)
        .ok_or_else(|| OpError::Limit(format!("shape {out_shape:?} overflows")))?;
    let dtype = list.element_dtype;
    // Variant elements stack as handles (uninitialized ones fail in `zeros`).
    if dtype == DType::Resource {
        return Err(OpError::Unimplemented(format!(
            "stacking a list of {dtype} elements"
        )));
    }
    match dtype {
        DType::String => {
            let longest = idx
                .iter()
                .filter_map(|&i| list.get(i).flatten())
                .map(|t| t.nbytes() / t.len().max(1))
                .max()
                .unwrap_or(0);
            cx.limits().check_bytes(
                total as u128 * (longest + std::mem::size_of::<crate::tensor::Bytes>()) as u128,
            )?;
        }
        _ => cx.limits().check_alloc(total, dtype)?,
    }
    let per: usize = elem.iter().product();
    let zero = if idx.iter().any(|&i| matches!(list.get(i), Some(None))) {
        Some(zeros(cx, dtype, &elem)?)
    } else {
        None
    };
    let parts: Vec<&Tensor> = idx
        .iter()
        .map(|&i| match list.get(i) {
            Some(Some(t)) => Ok(t),
            Some(None) => zero
                .as_ref()
                .ok_or_else(|| OpError::invalid("uninitialized element without zeros")),
            None => Err(OpError::invalid(format!(
                "Trying to {what} element {i} in a list with {} elements.",
                list.len()
            ))),
        })
        .collect::<Result<_, _>>()?;
    for p in &parts {
        if p.dtype() != dtype || p.shape() != elem.as_slice() {
            return Err(OpError::invalid(format!(
                "list element of {} {:?} does not match the element shape {:?}",
                p.dtype(),
                p.shape(),
                elem
            )));
        }
    }
    let Some(first) = parts.first() else {
        if dtype == DType::Variant {
            // An empty stack of variants (a `tf.map_fn` over zero rows).
            let none: Vec<crate::tensor::Handle> = Vec::new();
            return Ok(Tensor::new(
                &out_shape,
                crate::tensor::Data::Variant(none.into()),
            )?);
        }
        return Ok(Tensor::zeros(dtype, &out_shape)?);
    };
    let data = crate::match_any!(first.data(), b => stack_data(b, &parts, per)?);
    let t = Tensor::new(&out_shape, data)?;
    if dtype == DType::Variant {
        // `stack_data` wraps handles as resources; these are variants.
        return as_variant(t);
    }
    Ok(t)
}

/// `t` with its handles re-tagged as `variant` (handle buffers wrap as `resource`).
fn as_variant(t: Tensor) -> Result<Tensor, OpError> {
    let shape = t.shape().to_vec();
    match t.into_data() {
        crate::tensor::Data::Resource(b) => {
            Ok(Tensor::new(&shape, crate::tensor::Data::Variant(b))?)
        }
        d => Ok(Tensor::new(&shape, d)?),
    }
}

/// `TensorListStack` (every element; `num_elements` attr checked when not -1) and
/// `TensorListGather` (elements at `indices`).
#[derive(Debug)]
struct Read {
    element_dtype: DType,
    num_elements: Option<i64>,
}

impl Read {
    fn build_stack(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(2)?;
        let n = cx.attr_opt_i64("num_elements").unwrap_or(-1);
        Ok(Box::new(Read {
            element_dtype: cx.attr_type("element_dtype")?,
            num_elements: (n != -1).then_some(n),
        }))
    }
    fn build_gather(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(3)?;
        Ok(Box::new(Read {
            element_dtype: cx.attr_type("element_dtype")?,
            num_elements: None,
        }))
    }
}

impl Op for Read {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let list = TensorList::borrow(&inputs[0])?;
        check_dtype(self.element_dtype, list)?;
        let out = if inputs.len() == 3 {
            let ind = &inputs[1];
            if !matches!(ind.dtype(), DType::I32) {
                return Err(OpError::dtype(1, "int32 indices", ind.dtype()));
            }
            let idx = ind
                .to_i64_vec()?
                .into_iter()
                .map(|i| {
                    usize::try_from(i)
                        .ok()
                        .filter(|&u| u < list.len())
                        .ok_or_else(|| {
                            OpError::invalid(format!(
                                "Trying to gather element {i} in a list with {} elements.",
                                list.len()
                            ))
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            gather(cx, list, &idx, &inputs[2], "gather")?
        } else {
            if let Some(n) = self.num_elements {
                if usize::try_from(n).ok() != Some(list.len()) {
                    return Err(OpError::invalid(format!(
                        "Operation expected a list with {n} elements but got a list with {} \
                         elements.",
                        list.len()
                    )));
                }
            }
            let idx: Vec<usize> = (0..list.len()).collect();
            gather(cx, list, &idx, &inputs[1], "stack")?
        };
        Ok(tensors![out])
    }
}

/// `TensorListGetItem`: element `index`, or zeros of the element shape if unset.
#[derive(Debug)]
struct GetItem {
    element_dtype: DType,
}

impl GetItem {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(3)?;
        Ok(Box::new(GetItem {
            element_dtype: cx.attr_type("element_dtype")?,
        }))
    }
}

impl Op for GetItem {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [l, index, shape_in] = take_inputs(inputs)?;
        let list = TensorList::borrow(&l)?;
        check_dtype(self.element_dtype, list)?;
        let i = index_arg(&index)?;
        let slot = usize::try_from(i)
            .ok()
            .and_then(|u| list.get(u))
            .ok_or_else(|| {
                OpError::invalid(format!(
                    "Trying to access element {i} in a list with {} elements.",
                    list.len()
                ))
            })?;
        if let Some(t) = slot {
            return Ok(tensors![t.clone()]);
        }
        let mut shape = element_shape_from_input(list, &shape_in)?;
        // Like TF (for parity with TensorArray.read): an unknown element shape is inferred from
        // the initialized elements.
        if fully_defined(&shape).is_none() {
            for t in list.elements().flatten() {
                shape = merge_shapes(&shape, &dims_i64(t.shape())).ok_or_else(|| {
                    OpError::invalid(format!(
                        "Incompatible shapes during merge: {} vs. {:?}",
                        shape_debug(&shape),
                        t.shape()
                    ))
                })?;
            }
        }
        let elem = fully_defined(&shape).ok_or_else(|| {
            OpError::invalid(format!(
                "Trying to read an uninitialized tensor but element_shape is not fully \
                 defined: {} and no list element is set.",
                shape_debug(&shape)
            ))
        })?;
        Ok(tensors![zeros(cx, list.element_dtype, &elem)?])
    }
}

fn check_item(list: &TensorList, item: &Tensor, what: &str) -> Result<(), OpError> {
    if item.dtype() != list.element_dtype {
        return Err(OpError::invalid(format!(
            "Invalid data types; item is {} but list elements {}",
            item.dtype(),
            list.element_dtype
        )));
    }
    if !shape_compatible(&list.element_shape, item.shape()) {
        return Err(OpError::invalid(format!(
            "Tried to {what} with incompatible shape {:?}; list element shape: {}",
            item.shape(),
            shape_debug(&list.element_shape)
        )));
    }
    Ok(())
}

/// `TensorListSetItem`: a list with element `index` replaced (growing the list first if
/// `resize_if_index_out_of_bounds`). In place when the input list is not shared.
#[derive(Debug)]
struct SetItem {
    element_dtype: DType,
    resize: bool,
}

impl SetItem {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(3)?;
        Ok(Box::new(SetItem {
            element_dtype: cx.attr_type("element_dtype")?,
            resize: cx
                .attr_opt_bool("resize_if_index_out_of_bounds")
                .unwrap_or(false),
        }))
    }
}

impl Op for SetItem {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [l, index, item] = take_inputs(inputs)?;
        {
            let list = TensorList::borrow(&l)?;
            check_dtype(self.element_dtype, list)?;
            check_item(list, &item, "set a tensor at a list index")?;
        }
        let i = index_arg(&index)?;
        let n = TensorList::borrow(&l)?.len();
        let u = usize::try_from(i).ok().filter(|&u| u < n || self.resize);
        let Some(u) = u else {
            return Err(OpError::invalid(format!(
                "Trying to modify element {i} in a list with {n} elements."
            )));
        };
        let mut list = TensorList::take(l)?;
        if u >= n {
            let len = u
                .checked_add(1)
                .ok_or_else(|| OpError::Limit(format!("index {u} overflows")))?;
            check_slots(cx, len)?;
            list.resize(len);
        }
        list.set(u, item);
        Ok(tensors![list.into_tensor()])
    }
}

/// `TensorListPushBack`: a list with `tensor` appended.
#[derive(Debug)]
struct PushBack {
    element_dtype: DType,
}

impl PushBack {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(2)?;
        Ok(Box::new(PushBack {
            element_dtype: cx.attr_type("element_dtype")?,
        }))
    }
}

impl Op for PushBack {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [l, item] = take_inputs(inputs)?;
        let mut list = TensorList::take(l)?;
        check_dtype(self.element_dtype, &list)?;
        check_item(&list, &item, "push item")?;
        if list.max_num_elements >= 0 && list.len() as i64 >= list.max_num_elements {
            return Err(OpError::invalid(format!(
                "Tried to push item into a full list list size: {} max_num_elements: {}",
                list.len(),
                list.max_num_elements
            )));
        }
        check_slots(cx, list.len() + 1)?;
        list.push(item);
        Ok(tensors![list.into_tensor()])
    }
}

/// `TensorListPopBack`: the list without its last element, and that element (zeros of the
/// element shape if it was never set).
#[derive(Debug)]
struct PopBack {
    element_dtype: DType,
}

impl PopBack {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(2)?;
        Ok(Box::new(PopBack {
            element_dtype: cx.attr_type("element_dtype")?,
        }))
    }
}

impl Op for PopBack {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [l, shape_in] = take_inputs(inputs)?;
        let mut list = TensorList::take(l)?;
        check_dtype(self.element_dtype, &list)?;
        let last = list
            .pop()
            .ok_or_else(|| OpError::invalid("Trying to pop from an empty list."))?;
        let t = match last {
            Some(t) => t,
            None => {
                let shape = element_shape_from_input(&list, &shape_in)?;
                let elem = fully_defined(&shape).ok_or_else(|| {
                    OpError::invalid(format!(
                        "Trying to read an uninitialized tensor but element_shape is not fully \
                         defined.{}",
                        shape_debug(&shape)
                    ))
                })?;
                zeros(cx, list.element_dtype, &elem)?
            }
        };
        Ok(tensors![list.into_tensor(), t])
    }
}

/// `TensorListResize`: truncates or pads (with uninitialized elements) to `size`.
#[derive(Debug)]
struct Resize;

impl Resize {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(2)?;
        Ok(Box::new(Resize))
    }
}

impl Op for Resize {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [l, size] = take_inputs(inputs)?;
        let n = index_arg(&size)?;
        let n = usize::try_from(n).map_err(|_| {
            OpError::invalid(format!(
                "TensorListSlice expects size to be non-negative. Got: {n}"
            ))
        })?;
        let mut list = TensorList::take(l)?;
        check_slots(cx, n)?;
        list.resize(n);
        Ok(tensors![list.into_tensor()])
    }
}

/// `TensorListLength`: the element count, int32.
#[derive(Debug)]
struct Length;

impl Length {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(1)?;
        Ok(Box::new(Length))
    }
}

impl Op for Length {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let list = TensorList::borrow(&inputs[0])?;
        let n = i32::try_from(list.len())
            .map_err(|_| OpError::invalid("list length overflows int32"))?;
        Ok(tensors![Tensor::scalar(n)])
    }
}

/// `TensorListElementShape`: the list's element shape (`-1` for unknown dims, scalar `-1` for
/// unknown rank), as `shape_type`.
#[derive(Debug)]
struct ElementShape {
    shape_type: DType,
}

impl ElementShape {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(1)?;
        let shape_type = cx.attr_opt_type("shape_type")?.unwrap_or(DType::I32);
        if !matches!(shape_type, DType::I32 | DType::I64) {
            return Err(OpError::Unimplemented(format!(
                "TensorListElementShape with shape_type {shape_type}"
            )));
        }
        Ok(Box::new(ElementShape { shape_type }))
    }
}

impl Op for ElementShape {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let list = TensorList::borrow(&inputs[0])?;
        let out = match (&list.element_shape, self.shape_type) {
            (None, DType::I64) => Tensor::scalar(-1i64),
            (None, _) => Tensor::scalar(-1i32),
            (Some(d), DType::I64) => Tensor::vector(d.clone()),
            (Some(d), _) => Tensor::vector(
                d.iter()
                    .map(|&x| i32::try_from(x).unwrap_or(-1))
                    .collect::<Vec<i32>>(),
            ),
        };
        Ok(tensors![out])
    }
}

#[cfg(test)]
mod tests;

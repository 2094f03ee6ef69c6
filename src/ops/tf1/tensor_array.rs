//! `TensorArrayV3` and its Write/Read/Gather/Scatter/Size/Concat/Split/Close ops.
//! TF reference: core/kernels/{tensor_array.h,tensor_array.cc,tensor_array_ops.cc}.
//!
//! The handle is a scalar `resource` tensor owning a fresh array per evaluation of
//! `TensorArrayV3` (TF creates a new array each time the op runs); the `flow` float scalar
//! only orders ops, as in TF. Elements are written once; with `clear_after_read` (TF's
//! default) reading an element clears it and a second read is an error, as in TF. Gradient
//! ops (`TensorArrayGradV3`, `TensorArrayGradWithShape`) are not implemented.

use std::sync::{Arc, Mutex};

use crate::ops::{take_inputs, BuildCtx, EvalCtx, Op, OpError, Tensors};
use crate::tensor::{Buf, DType, Data, Element, Handle, Tensor};

#[derive(Debug, Default, Clone)]
struct Elem {
    tensor: Option<Tensor>,
    written: bool,
    cleared: bool,
}

#[derive(Debug)]
struct Array {
    dtype: DType,
    /// Declared element shape (`None` unknown rank, `-1` unknown dims).
    element_shape: Option<Vec<i64>>,
    dynamic_size: bool,
    clear_after_read: bool,
    identical_element_shapes: bool,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    elems: Vec<Elem>,
    closed: bool,
    /// The element shape learned from the first write (identical_element_shapes).
    learned: Option<Vec<usize>>,
}

fn array_of(t: &Tensor) -> Result<(&Handle, &Array), OpError> {
    let h = match t.data() {
        Data::Resource(b) if b.len() == 1 => &b[0],
        _ => return Err(OpError::dtype(0, "a TensorArray handle", t.dtype())),
    };
    let a = h
        .value
        .downcast_ref::<Array>()
        .ok_or_else(|| OpError::Resource {
            name: h.name.to_string(),
            what: "is not a TensorArray".into(),
        })?;
    Ok((h, a))
}

fn ta_err(h: &Handle, what: impl std::fmt::Display) -> OpError {
    OpError::invalid(format!("TensorArray {}: {what}", h.name))
}

fn compatible(shape: &[usize], want: &Option<Vec<i64>>) -> bool {
    match want {
        None => true,
        Some(w) => {
            w.len() == shape.len() && w.iter().zip(shape).all(|(&d, &s)| d < 0 || d as usize == s)
        }
    }
}

impl Array {
    fn lock(&self, h: &Handle) -> Result<std::sync::MutexGuard<'_, State>, OpError> {
        let g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if g.closed {
            return Err(ta_err(h, "has already been closed"));
        }
        Ok(g)
    }

    fn write(&self, h: &Handle, st: &mut State, index: i64, value: Tensor) -> Result<(), OpError> {
        if value.dtype() != self.dtype {
            return Err(ta_err(
                h,
                format!(
                    "could not write a {} value to a {} array",
                    value.dtype(),
                    self.dtype
                ),
            ));
        }
        let i = usize::try_from(index)
            .map_err(|_| ta_err(h, format!("tried to write to index {index}")))?;
        if i >= st.elems.len() {
            if !self.dynamic_size {
                return Err(ta_err(
                    h,
                    format!(
                        "Tried to write to index {i} but array is not resizeable and size is: {}",
                        st.elems.len()
                    ),
                ));
            }
            st.elems.resize(i + 1, Elem::default());
        }
        let want = match &st.learned {
            Some(s) => Some(s.iter().map(|&d| d as i64).collect()),
            None => self.element_shape.clone(),
        };
        if !compatible(value.shape(), &want) {
            return Err(ta_err(
                h,
                format!(
                    "Could not write to TensorArray index {i} because the value shape is {:?} \
                     which is incompatible with the TensorArray's inferred element shape: {want:?}",
                    value.shape()
                ),
            ));
        }
        if self.identical_element_shapes && st.learned.is_none() {
            st.learned = Some(value.shape().to_vec());
        }
        let e = &mut st.elems[i];
        if e.written {
            return Err(ta_err(
                h,
                format!(
                    "Could not write to TensorArray index {i} because it has already been \
                     written to."
                ),
            ));
        }
        *e = Elem {
            tensor: Some(value),
            written: true,
            cleared: false,
        };
        Ok(())
    }

    fn read(&self, h: &Handle, st: &mut State, index: i64) -> Result<Tensor, OpError> {
        let n = st.elems.len();
        let e = usize::try_from(index)
            .ok()
            .and_then(|i| st.elems.get_mut(i))
            .ok_or_else(|| {
                ta_err(
                    h,
                    format!("Tried to read from index {index} but array size is: {n}"),
                )
            })?;
        if !e.written {
            return Err(ta_err(
                h,
                format!(
                    "Could not read from TensorArray index {index} because it has not yet been \
                     written to."
                ),
            ));
        }
        if e.cleared {
            return Err(ta_err(
                h,
                format!(
                    "Could not read index {index} twice because it was cleared after a previous \
                     read (perhaps try setting clear_after_read = false?)."
                ),
            ));
        }
        let t = if self.clear_after_read {
            e.cleared = true;
            e.tensor.take()
        } else {
            e.tensor.clone()
        };
        t.ok_or_else(|| ta_err(h, "element has no value"))
    }
}

fn concat_flat<T: Element>(_like: &Buf<T>, parts: &[Tensor]) -> Result<Data, OpError> {
    let mut out: Vec<T> = Vec::new();
    for p in parts {
        out.extend_from_slice(p.as_slice::<T>()?);
    }
    Ok(T::wrap(Buf::from(out)))
}

/// Concatenates `parts` along axis 0 (their trailing dims already checked equal).
fn concat0(
    cx: &EvalCtx<'_>,
    dtype: DType,
    parts: &[Tensor],
    shape: &[usize],
) -> Result<Tensor, OpError> {
    let n = crate::tensor::num_elements(shape).ok_or_else(|| OpError::shape("overflow"))?;
    cx.limits().check_alloc(n, dtype)?;
    match parts.first() {
        None => Ok(Tensor::zeros(dtype, shape)?),
        Some(first) => {
            let data = crate::match_any!(first.data(), b => concat_flat(b, parts)?);
            Ok(Tensor::new(shape, data)?)
        }
    }
}

fn slice_flat<T: Element>(b: &Buf<T>, start: usize, len: usize) -> Data {
    T::wrap(Buf::from(b[start..start + len].to_vec()))
}

/// Rows `[start, start + rows)` of `t` along axis 0.
fn rows(t: &Tensor, start: usize, rows: usize) -> Result<Tensor, OpError> {
    let inner: usize = t.shape()[1..].iter().product();
    let mut shape = t.shape().to_vec();
    shape[0] = rows;
    let data = crate::match_any!(t.data(), b => slice_flat(b, start * inner, rows * inner));
    Ok(Tensor::new(&shape, data)?)
}

fn flow() -> Tensor {
    Tensor::scalar(0f32)
}

/// Stacks `parts` (all of one shape) along a new axis 0; `elem` is used for an empty stack.
fn stack(
    cx: &EvalCtx<'_>,
    h: &Handle,
    a: &Array,
    parts: &[Tensor],
    elem: &Option<Vec<i64>>,
) -> Result<Tensor, OpError> {
    let inner: Vec<usize> = match parts.first() {
        Some(p) => p.shape().to_vec(),
        None => elem
            .as_ref()
            .and_then(|d| d.iter().map(|&x| usize::try_from(x).ok()).collect())
            .ok_or_else(|| {
                ta_err(
                    h,
                    "TensorArray has size zero, but element shape is not fully defined. \
                     Currently only static shapes are supported when packing zero-size \
                     TensorArrays.",
                )
            })?,
    };
    for (i, p) in parts.iter().enumerate() {
        if p.shape() != inner.as_slice() {
            return Err(ta_err(
                h,
                format!(
                    "Could not read from TensorArray index {i}: its shape {:?} differs from \
                     the first element's {inner:?}",
                    p.shape()
                ),
            ));
        }
    }
    let mut shape = vec![parts.len()];
    shape.extend_from_slice(&inner);
    concat0(cx, a.dtype, parts, &shape)
}

/// `TensorArrayV3(size) -> (handle, flow)`.
#[derive(Debug)]
pub(super) struct Create {
    name: String,
    dtype: DType,
    element_shape: Option<Vec<i64>>,
    dynamic_size: bool,
    clear_after_read: bool,
    identical_element_shapes: bool,
}

impl Create {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(1)?;
        let name = cx
            .attr_opt_str("tensor_array_name")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| cx.node.to_string());
        Ok(Box::new(Create {
            name,
            dtype: cx.attr_type("dtype")?,
            element_shape: cx.attr_opt_shape("element_shape").flatten(),
            dynamic_size: cx.attr_opt_bool("dynamic_size").unwrap_or(false),
            clear_after_read: cx.attr_opt_bool("clear_after_read").unwrap_or(true),
            identical_element_shapes: cx
                .attr_opt_bool("identical_element_shapes")
                .unwrap_or(false),
        }))
    }
}

impl Op for Create {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [size] = take_inputs(inputs)?;
        let n = size.scalar_value::<i32>()?;
        let n = usize::try_from(n)
            .map_err(|_| OpError::invalid(format!("Size should be >= 0, got {n}")))?;
        // One slot per element: capped like a tensor of that many handles.
        cx.limits().check_alloc(n, DType::I64)?;
        let a = Array {
            dtype: self.dtype,
            element_shape: self.element_shape.clone(),
            dynamic_size: self.dynamic_size,
            clear_after_read: self.clear_after_read,
            identical_element_shapes: self.identical_element_shapes,
            state: Mutex::new(State {
                elems: vec![Elem::default(); n],
                closed: false,
                learned: None,
            }),
        };
        let h = Handle {
            name: Arc::from(self.name.as_str()),
            value: Arc::new(a),
        };
        Ok(tensors![
            Tensor::handles(&[], vec![h], DType::Resource)?,
            flow(),
        ])
    }
    fn is_stateful(&self) -> bool {
        true
    }
}

macro_rules! simple_build {
    ($t:ident, $n:expr) => {
        impl $t {
            pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
                cx.expect_inputs($n)?;
                Ok(Box::new($t {
                    element_shape: cx.attr_opt_shape("element_shape").flatten(),
                }))
            }
        }
    };
}

/// `TensorArrayWriteV3(handle, index, value, flow_in) -> flow_out`.
#[derive(Debug)]
pub(super) struct Write {
    #[allow(dead_code)]
    element_shape: Option<Vec<i64>>,
}
simple_build!(Write, 4);

impl Op for Write {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [ta, index, value, _flow] = take_inputs(inputs)?;
        let (h, a) = array_of(&ta)?;
        let mut st = a.lock(h)?;
        a.write(h, &mut st, index.scalar_value::<i32>()? as i64, value)?;
        Ok(tensors![flow()])
    }
    fn is_stateful(&self) -> bool {
        true
    }
}

/// `TensorArrayReadV3(handle, index, flow_in) -> value`.
#[derive(Debug)]
pub(super) struct Read {
    #[allow(dead_code)]
    element_shape: Option<Vec<i64>>,
}
simple_build!(Read, 3);

impl Op for Read {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [ta, index, _flow] = take_inputs(inputs)?;
        let (h, a) = array_of(&ta)?;
        let mut st = a.lock(h)?;
        Ok(tensors![a.read(
            h,
            &mut st,
            index.scalar_value::<i32>()? as i64,
        )?])
    }
    fn is_stateful(&self) -> bool {
        true
    }
}

/// `TensorArrayGatherV3(handle, indices, flow_in) -> value` (elements stacked on axis 0).
#[derive(Debug)]
pub(super) struct Gather {
    element_shape: Option<Vec<i64>>,
}
simple_build!(Gather, 3);

impl Op for Gather {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [ta, indices, _flow] = take_inputs(inputs)?;
        let (h, a) = array_of(&ta)?;
        let idx = indices.as_slice::<i32>()?.to_vec();
        let parts = {
            let mut st = a.lock(h)?;
            idx.iter()
                .map(|&i| a.read(h, &mut st, i as i64))
                .collect::<Result<Vec<_>, _>>()?
        };
        let elem = self.element_shape.clone().or(a.element_shape.clone());
        Ok(tensors![stack(cx, h, a, &parts, &elem)?])
    }
    fn is_stateful(&self) -> bool {
        true
    }
}

/// `TensorArrayScatterV3(handle, indices, value, flow_in) -> flow_out`.
#[derive(Debug)]
pub(super) struct Scatter {
    #[allow(dead_code)]
    element_shape: Option<Vec<i64>>,
}
simple_build!(Scatter, 4);

impl Op for Scatter {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [ta, indices, value, _flow] = take_inputs(inputs)?;
        let (h, a) = array_of(&ta)?;
        let idx = indices.as_slice::<i32>()?;
        if value.rank() == 0 || value.shape()[0] != idx.len() {
            return Err(ta_err(
                h,
                format!(
                    "Expected len(indices) == values.shape[0], but saw: {} vs. {:?}",
                    idx.len(),
                    value.shape()
                ),
            ));
        }
        let mut st = a.lock(h)?;
        for (k, &i) in idx.iter().enumerate() {
            let row = rows(&value, k, 1)?;
            let row = row.reshape(&value.shape()[1..])?;
            a.write(h, &mut st, i as i64, row)?;
        }
        Ok(tensors![flow()])
    }
    fn is_stateful(&self) -> bool {
        true
    }
}

/// `TensorArraySizeV3(handle, flow_in) -> int32`.
#[derive(Debug)]
pub(super) struct Size {
    #[allow(dead_code)]
    element_shape: Option<Vec<i64>>,
}
simple_build!(Size, 2);

impl Op for Size {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [ta, _flow] = take_inputs(inputs)?;
        let (h, a) = array_of(&ta)?;
        let n = a.lock(h)?.elems.len();
        Ok(tensors![Tensor::scalar(n as i32)])
    }
    fn is_stateful(&self) -> bool {
        true
    }
}

/// `TensorArrayCloseV3(handle)`: later uses fail.
#[derive(Debug)]
pub(super) struct Close {
    #[allow(dead_code)]
    element_shape: Option<Vec<i64>>,
}
simple_build!(Close, 1);

impl Op for Close {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [ta] = take_inputs(inputs)?;
        let (h, a) = array_of(&ta)?;
        let mut st = a.lock(h)?;
        st.elems.clear();
        st.closed = true;
        Ok(Tensors::new())
    }
    fn is_stateful(&self) -> bool {
        true
    }
}

/// `TensorArrayConcatV3(handle, flow_in) -> (value, lengths)`: elements joined on axis 0.
#[derive(Debug)]
pub(super) struct Concat {
    #[allow(dead_code)]
    element_shape: Option<Vec<i64>>,
}

impl Concat {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(2)?;
        Ok(Box::new(Concat {
            element_shape: cx.attr_opt_shape("element_shape_except0").flatten(),
        }))
    }
}

impl Op for Concat {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [ta, _flow] = take_inputs(inputs)?;
        let (h, a) = array_of(&ta)?;
        let parts = {
            let mut st = a.lock(h)?;
            (0..st.elems.len() as i64)
                .map(|i| a.read(h, &mut st, i))
                .collect::<Result<Vec<_>, _>>()?
        };
        let mut lengths = Vec::with_capacity(parts.len());
        let mut rows_total = 0usize;
        let tail: Option<&[usize]> = parts.first().map(|p| p.shape().get(1..).unwrap_or(&[]));
        for (i, p) in parts.iter().enumerate() {
            if p.rank() == 0 {
                return Err(ta_err(
                    h,
                    "Concat saw a scalar shape at index 0 but requires at least vectors",
                ));
            }
            if Some(&p.shape()[1..]) != tail {
                return Err(ta_err(
                    h,
                    format!(
                        "Concat: element {i} has shape {:?}, not [?]+{tail:?}",
                        p.shape()
                    ),
                ));
            }
            lengths.push(p.shape()[0] as i64);
            rows_total += p.shape()[0];
        }
        let mut shape = vec![rows_total];
        match tail {
            Some(t) => shape.extend_from_slice(t),
            None => {
                let e = self
                    .element_shape
                    .as_ref()
                    .and_then(|d| d.iter().map(|&x| usize::try_from(x).ok()).collect::<Option<Vec<_>>>())
                    .ok_or_else(|| {
                        ta_err(h, "Concat of an empty TensorArray needs a fully defined element_shape_except0")
                    })?;
                shape.extend(e);
            }
        }
        let value = concat0(cx, a.dtype, &parts, &shape)?;
        Ok(tensors![value, Tensor::vector(lengths)])
    }
    fn is_stateful(&self) -> bool {
        true
    }
}

/// `TensorArraySplitV3(handle, value, lengths, flow_in) -> flow_out`: element i is the next
/// `lengths[i]` rows of `value`.
#[derive(Debug)]
pub(super) struct Split {
    #[allow(dead_code)]
    element_shape: Option<Vec<i64>>,
}
simple_build!(Split, 4);

impl Op for Split {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [ta, value, lengths, _flow] = take_inputs(inputs)?;
        let (h, a) = array_of(&ta)?;
        let lengths = lengths.as_slice::<i64>()?;
        if value.rank() == 0 {
            return Err(ta_err(h, "Expected value to be at least a vector"));
        }
        let total: i64 = lengths
            .iter()
            .try_fold(0i64, |s, &l| if l < 0 { None } else { s.checked_add(l) })
            .ok_or_else(|| ta_err(h, "lengths must be non-negative"))?;
        if total != value.shape()[0] as i64 {
            return Err(ta_err(
                h,
                format!(
                    "Expected sum of lengths to be equal to values.shape[0], but sum of lengths \
                     is {total} and value's shape is: {:?}",
                    value.shape()
                ),
            ));
        }
        let mut st = a.lock(h)?;
        if !a.dynamic_size && st.elems.len() != lengths.len() {
            return Err(ta_err(
                h,
                format!(
                    "TensorArray's size is not equal to the size of lengths ({} vs. {}), and \
                     the TensorArray is not marked as dynamically resizeable",
                    st.elems.len(),
                    lengths.len()
                ),
            ));
        }
        let mut start = 0usize;
        for (i, &l) in lengths.iter().enumerate() {
            let part = rows(&value, start, l as usize)?;
            start += l as usize;
            a.write(h, &mut st, i as i64, part)?;
        }
        Ok(tensors![flow()])
    }
    fn is_stateful(&self) -> bool {
        true
    }
}

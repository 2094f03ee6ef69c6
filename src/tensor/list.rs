//! `TensorList`: the value behind TF's list ops (`TensorListReserve`, `TensorListSetItem`, ...),
//! carried through the graph as a scalar `variant` tensor whose one [`Handle`] holds an
//! `Arc<TensorList>`. TF reference: core/kernels/tensor_list.h.
//!
//! Lists are values: an op that "modifies" a list takes its input tensor, and
//! [`TensorList::take`] moves the list out when this is the only holder (the usual case inside a
//! `While` body, where the executor moves a value into its last use) and clones it otherwise. A
//! clone shares the element buffers, so it costs one reference bump per element.

use std::sync::Arc;

use super::{DType, Data, Handle, Tensor, TensorError};

/// A list of tensors of one dtype; `None` elements are uninitialized (TF's `DT_INVALID`
/// placeholders), which read as zeros when the element shape is known.
#[derive(Clone, Debug)]
pub struct TensorList {
    /// Dtype every element has.
    pub element_dtype: DType,
    /// Element shape: `None` for unknown rank, `-1` for an unknown dimension.
    pub element_shape: Option<Vec<i64>>,
    /// Most elements the list may hold (`-1`: unbounded); only `TensorListPushBack` checks it.
    pub max_num_elements: i64,
    elements: Vec<Option<Tensor>>,
    /// Sum of the elements' `nbytes`, kept up to date so accounting is O(1).
    bytes: usize,
}

impl TensorList {
    /// A list of `len` uninitialized elements.
    pub fn new(element_dtype: DType, element_shape: Option<Vec<i64>>, len: usize) -> Self {
        TensorList {
            element_dtype,
            element_shape,
            max_num_elements: -1,
            elements: vec![None; len],
            bytes: 0,
        }
    }

    /// Number of elements (initialized or not).
    pub fn len(&self) -> usize {
        self.elements.len()
    }

    /// True if the list has no elements.
    pub fn is_empty(&self) -> bool {
        self.elements.is_empty()
    }

    /// Element `i`: `None` if out of range, `Some(None)` if uninitialized.
    pub fn get(&self, i: usize) -> Option<Option<&Tensor>> {
        self.elements.get(i).map(Option::as_ref)
    }

    /// The elements in order (`None` = uninitialized).
    pub fn elements(&self) -> impl Iterator<Item = Option<&Tensor>> {
        self.elements.iter().map(Option::as_ref)
    }

    /// Address of the element storage, for tests that check a write did not copy the list.
    #[cfg(test)]
    pub(crate) fn storage_addr(&self) -> usize {
        self.elements.as_ptr() as usize
    }

    /// Approximate bytes held by the elements.
    pub fn nbytes(&self) -> usize {
        self.bytes + self.elements.len() * std::mem::size_of::<Option<Tensor>>()
    }

    /// Replaces element `i` (which must be in range); returns false if it is not.
    pub fn set(&mut self, i: usize, t: Tensor) -> bool {
        let Some(slot) = self.elements.get_mut(i) else {
            return false;
        };
        let add = t.nbytes();
        if let Some(old) = slot.replace(t) {
            self.bytes = self.bytes.saturating_sub(old.nbytes());
        }
        self.bytes = self.bytes.saturating_add(add);
        true
    }

    /// Grows (with uninitialized elements) or shrinks the list to `len`.
    pub fn resize(&mut self, len: usize) {
        while self.elements.len() > len {
            self.pop();
        }
        self.elements.resize(len, None);
    }

    /// Appends an element.
    pub fn push(&mut self, t: Tensor) {
        self.bytes = self.bytes.saturating_add(t.nbytes());
        self.elements.push(Some(t));
    }

    /// Removes the last element: `None` if the list is empty, `Some(None)` if uninitialized.
    pub fn pop(&mut self) -> Option<Option<Tensor>> {
        let last = self.elements.pop()?;
        if let Some(t) = &last {
            self.bytes = self.bytes.saturating_sub(t.nbytes());
        }
        Some(last)
    }

    /// Wraps the list as a scalar `variant` tensor.
    pub fn into_tensor(self) -> Tensor {
        let h = Handle {
            name: Arc::from("TensorList"),
            value: Arc::new(self),
        };
        Tensor {
            shape: super::Shape::new(),
            data: Data::Variant(vec![h].into()),
        }
    }

    /// The list inside a scalar `variant` tensor, shared.
    pub fn borrow(t: &Tensor) -> Result<&TensorList, TensorError> {
        let h = Self::handle(t)?;
        h.value
            .downcast_ref::<TensorList>()
            .ok_or_else(|| TensorError::NotAList(h.name.to_string()))
    }

    /// The list inside a scalar `variant` tensor, owned: moved out when `t` is its only holder,
    /// cloned (sharing element buffers) otherwise, so writing to it never changes another value.
    pub fn take(t: Tensor) -> Result<TensorList, TensorError> {
        Self::handle(&t)?;
        let Data::Variant(buf) = t.data else {
            unreachable!("checked by handle")
        };
        let mut v = buf.into_vec();
        let h = v.pop().ok_or(TensorError::NotAList("empty".into()))?;
        let name = h.name;
        let list = h
            .value
            .downcast::<TensorList>()
            .map_err(|_| TensorError::NotAList(name.to_string()))?;
        Ok(Arc::unwrap_or_clone(list))
    }

    fn handle(t: &Tensor) -> Result<&Handle, TensorError> {
        match &t.data {
            Data::Variant(b) if t.shape.is_empty() && b.len() == 1 => Ok(&b[0]),
            Data::Variant(_) => Err(TensorError::NotAList(format!(
                "a variant tensor of shape {:?} (a list is a scalar)",
                t.shape.as_slice()
            ))),
            _ => Err(TensorError::DType {
                expected: DType::Variant,
                got: t.dtype(),
            }),
        }
    }
}

/// True if `dims` (a known shape) fits the partial shape `partial`.
pub fn shape_compatible(partial: &Option<Vec<i64>>, dims: &[usize]) -> bool {
    match partial {
        None => true,
        Some(p) => {
            p.len() == dims.len()
                && p.iter()
                    .zip(dims)
                    .all(|(&a, &b)| a < 0 || usize::try_from(a).ok() == Some(b))
        }
    }
}

/// TF's `PartialTensorShape::MergeWith`: the most specific shape compatible with both, or
/// `None` if they conflict.
pub fn merge_shapes(a: &Option<Vec<i64>>, b: &Option<Vec<i64>>) -> Option<Option<Vec<i64>>> {
    match (a, b) {
        (None, x) | (x, None) => Some(x.clone()),
        (Some(a), Some(b)) => {
            if a.len() != b.len() {
                return None;
            }
            a.iter()
                .zip(b)
                .map(|(&x, &y)| match (x, y) {
                    (x, y) if x < 0 => Some(y),
                    (x, y) if y < 0 || x == y => Some(x),
                    _ => None,
                })
                .collect::<Option<Vec<i64>>>()
                .map(Some)
        }
    }
}

/// The dims of a fully defined partial shape.
pub fn fully_defined(s: &Option<Vec<i64>>) -> Option<Vec<usize>> {
    s.as_ref()?
        .iter()
        .map(|&d| usize::try_from(d).ok())
        .collect()
}

/// TF's `PartialTensorShape::DebugString`: `<unknown>` or `[2,?]`.
pub fn shape_debug(s: &Option<Vec<i64>>) -> String {
    match s {
        None => "<unknown>".into(),
        Some(d) => {
            let parts: Vec<String> = d
                .iter()
                .map(|&x| if x < 0 { "?".into() } else { x.to_string() })
                .collect();
            format!("[{}]", parts.join(","))
        }
    }
}

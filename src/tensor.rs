//! Tensors: a dtype-tagged, reference-counted buffer plus a shape.
//!
//! Owns the in-memory representation shared by every layer. Buffers are `Arc`-shared so that
//! `Identity`, variable reads and function calls never copy; a buffer can also borrow bytes from
//! a memory-mapped checkpoint shard (`Buf::mapped`), which is how a large embedding matrix stays
//! on disk. Writers go through [`Buf::make_mut`] (copy-on-write).
//!
//! Large `f32` buffers are recycled across the calls of a model (see [`pool`]): `Buf`'s
//! destructor hands a uniquely owned buffer to the thread's current pool, if any.
//!
//! Knows nothing about ops or protobuf; conversions from `TensorProto` live in `saved_model`.

pub mod list;
pub(crate) mod pool;

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;

pub use bytes::Bytes;
use half::{bf16, f16};
use ndarray::{ArrayD, ArrayViewD, IxDyn};
use smallvec::SmallVec;

/// `complex64` / `complex128` elements (real, imaginary), as TF's `std::complex`.
pub use num_complex::{Complex32, Complex64};

/// A tensor shape (dimension sizes, row-major).
pub type Shape = SmallVec<[usize; 4]>;

/// Element types, named as TensorFlow names them (`tf.DType.name`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum DType {
    /// `bfloat16`
    BF16,
    /// `bool`
    Bool,
    /// `complex128`: pairs of f64 (real, imaginary).
    C128,
    /// `complex64`: pairs of f32 (real, imaginary).
    C64,
    /// `float16`
    F16,
    /// `float32`
    F32,
    /// `float64`
    F64,
    /// `int16`
    I16,
    /// `int32`
    I32,
    /// `int64`
    I64,
    /// `int8`
    I8,
    /// `resource`: a handle to a variable, table or other stateful object.
    Resource,
    /// `string`: arbitrary bytes per element.
    String,
    /// `uint16`
    U16,
    /// `uint32`
    U32,
    /// `uint64`
    U64,
    /// `uint8`
    U8,
    /// `variant`: an opaque value (TensorList and friends).
    Variant,
}

impl DType {
    /// TensorFlow's `DataType` enum value (types.proto).
    pub fn to_proto(self) -> i32 {
        match self {
            DType::F32 => 1,
            DType::F64 => 2,
            DType::I32 => 3,
            DType::U8 => 4,
            DType::I16 => 5,
            DType::I8 => 6,
            DType::String => 7,
            DType::I64 => 9,
            DType::Bool => 10,
            DType::C64 => 8,
            DType::C128 => 18,
            DType::BF16 => 14,
            DType::U16 => 17,
            DType::F16 => 19,
            DType::Resource => 20,
            DType::Variant => 21,
            DType::U32 => 22,
            DType::U64 => 23,
        }
    }

    /// Maps TensorFlow's `DataType` enum value; `_REF` types map to their base type.
    pub fn from_proto(v: i32) -> Option<DType> {
        let v = if v > 100 { v - 100 } else { v };
        Some(match v {
            1 => DType::F32,
            2 => DType::F64,
            3 => DType::I32,
            4 => DType::U8,
            5 => DType::I16,
            6 => DType::I8,
            7 => DType::String,
            9 => DType::I64,
            8 => DType::C64,
            10 => DType::Bool,
            18 => DType::C128,
            14 => DType::BF16,
            17 => DType::U16,
            19 => DType::F16,
            20 => DType::Resource,
            21 => DType::Variant,
            22 => DType::U32,
            23 => DType::U64,
            _ => return None,
        })
    }

    /// TensorFlow's name for the dtype (`float32`, `int64`, `string`, ...).
    pub fn name(self) -> &'static str {
        match self {
            DType::BF16 => "bfloat16",
            DType::Bool => "bool",
            DType::C128 => "complex128",
            DType::C64 => "complex64",
            DType::F16 => "float16",
            DType::F32 => "float32",
            DType::F64 => "float64",
            DType::I16 => "int16",
            DType::I32 => "int32",
            DType::I64 => "int64",
            DType::I8 => "int8",
            DType::Resource => "resource",
            DType::String => "string",
            DType::U16 => "uint16",
            DType::U32 => "uint32",
            DType::U64 => "uint64",
            DType::U8 => "uint8",
            DType::Variant => "variant",
        }
    }

    /// Parses a TensorFlow dtype name (`float32`, `int64`, ...; also `float`, `double`, `half`).
    pub fn from_name(s: &str) -> Option<DType> {
        Some(match s {
            "bfloat16" => DType::BF16,
            "bool" => DType::Bool,
            "complex128" => DType::C128,
            "complex64" => DType::C64,
            "float16" | "half" => DType::F16,
            "float32" | "float" => DType::F32,
            "float64" | "double" => DType::F64,
            "int16" => DType::I16,
            "int32" => DType::I32,
            "int64" => DType::I64,
            "int8" => DType::I8,
            "resource" => DType::Resource,
            "string" => DType::String,
            "uint16" => DType::U16,
            "uint32" => DType::U32,
            "uint64" => DType::U64,
            "uint8" => DType::U8,
            "variant" => DType::Variant,
            _ => return None,
        })
    }

    /// Bytes per element for plain-old-data dtypes; `None` for string, resource and variant.
    pub fn size_of(self) -> Option<usize> {
        Some(match self {
            DType::Bool | DType::I8 | DType::U8 => 1,
            DType::BF16 | DType::F16 | DType::I16 | DType::U16 => 2,
            DType::F32 | DType::I32 | DType::U32 => 4,
            DType::F64 | DType::I64 | DType::U64 | DType::C64 => 8,
            DType::C128 => 16,
            DType::Resource | DType::String | DType::Variant => return None,
        })
    }

    /// True for floating-point dtypes.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64 | DType::F16 | DType::BF16)
    }

    /// True for signed and unsigned integer dtypes.
    pub fn is_int(self) -> bool {
        matches!(
            self,
            DType::I8
                | DType::I16
                | DType::I32
                | DType::I64
                | DType::U8
                | DType::U16
                | DType::U32
                | DType::U64
        )
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Bytes that a buffer may borrow from (a memory-mapped checkpoint shard, for one).
pub trait ByteSource: Send + Sync + fmt::Debug {
    /// The bytes; must be stable for the lifetime of the source.
    fn bytes(&self) -> &[u8];

    /// A hint that `bytes()[range]` will not be read soon: a file mapping may let the OS drop
    /// the resident pages (they read back unchanged). The default does nothing.
    fn release(&self, _range: std::ops::Range<usize>) {}
}

/// An opaque, shared handle (resource or variant element). Ops downcast `value` to the
/// type they expect (a variable, a lookup table, ...).
#[derive(Clone)]
pub struct Handle {
    /// Human-readable name, for errors (`container/shared_name` of a resource).
    pub name: Arc<str>,
    /// The object.
    pub value: Arc<dyn Any + Send + Sync>,
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Handle({})", self.name)
    }
}

impl PartialEq for Handle {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.value, &other.value)
    }
}

/// A contiguous, shared element buffer: owned, or borrowed from a [`ByteSource`].
pub struct Buf<T: 'static> {
    repr: Repr<T>,
}

impl<T: 'static> Drop for Buf<T> {
    fn drop(&mut self) {
        if let Repr::Owned(v) = &mut self.repr {
            if let Some(v) = Arc::get_mut(v) {
                pool::recycle(v);
            }
        }
    }
}

enum Repr<T> {
    Owned(Arc<Vec<T>>),
    Mapped {
        src: Arc<dyn ByteSource>,
        start: usize,
        len: usize,
        _t: PhantomData<T>,
    },
}

impl<T: 'static> Clone for Buf<T> {
    fn clone(&self) -> Self {
        let repr = match &self.repr {
            Repr::Owned(v) => Repr::Owned(v.clone()),
            Repr::Mapped {
                src, start, len, ..
            } => Repr::Mapped {
                src: src.clone(),
                start: *start,
                len: *len,
                _t: PhantomData,
            },
        };
        Buf { repr }
    }
}

impl<T: 'static> From<Vec<T>> for Buf<T> {
    fn from(v: Vec<T>) -> Self {
        Buf {
            repr: Repr::Owned(Arc::new(v)),
        }
    }
}

impl<T: bytemuck::Pod + 'static> Buf<T> {
    /// Borrows `src.bytes()[start..start + len * size_of::<T>()]` without copying, if that range
    /// is in bounds and aligned for `T`; otherwise copies it (checkpoint data files do not
    /// promise alignment). Returns `None` if the range is out of bounds.
    pub fn mapped(src: Arc<dyn ByteSource>, start: usize, len: usize) -> Option<Buf<T>> {
        let nbytes = len.checked_mul(std::mem::size_of::<T>())?;
        let end = start.checked_add(nbytes)?;
        let bytes = src.bytes().get(start..end)?;
        if (bytes.as_ptr() as usize) % std::mem::align_of::<T>() == 0 {
            Some(Buf {
                repr: Repr::Mapped {
                    src,
                    start,
                    len,
                    _t: PhantomData,
                },
            })
        } else {
            Some(Buf::from(bytemuck::pod_collect_to_vec::<u8, T>(bytes)))
        }
    }
}

impl<T: 'static> Deref for Buf<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        match &self.repr {
            Repr::Owned(v) => v,
            Repr::Mapped {
                src, start, len, ..
            } => {
                let bytes = &src.bytes()[*start..];
                // SAFETY: `Repr::Mapped` is only built by `Buf::mapped`, which requires
                // `T: Pod`, checked that `start + len * size_of::<T>()` is in bounds and that the
                // pointer is aligned for `T`; `ByteSource` promises the bytes never move.
                unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<T>(), *len) }
            }
        }
    }
}

impl<T: Clone + 'static> Buf<T> {
    /// Mutable access, copying first if the buffer is shared or borrowed.
    pub fn make_mut(&mut self) -> &mut [T] {
        if let Repr::Mapped { .. } = self.repr {
            let v = self.deref().to_vec();
            self.repr = Repr::Owned(Arc::new(v));
        }
        match &mut self.repr {
            Repr::Owned(v) => Arc::make_mut(v).as_mut_slice(),
            Repr::Mapped { .. } => unreachable!("converted to owned above"),
        }
    }

    /// Takes the elements out, copying only if shared or borrowed.
    pub fn into_vec(mut self) -> Vec<T> {
        match &mut self.repr {
            // Taken out, so the (now empty) buffer recycles nothing when `self` drops.
            Repr::Owned(v) => match Arc::get_mut(v) {
                Some(v) => std::mem::take(v),
                None => v.to_vec(),
            },
            Repr::Mapped { .. } => self.deref().to_vec(),
        }
    }

    /// True if the elements live in a borrowed (memory-mapped) source.
    pub fn is_mapped(&self) -> bool {
        matches!(self.repr, Repr::Mapped { .. })
    }

    /// For a borrowed (memory-mapped) buffer, [`ByteSource::release`] of its bytes: the data
    /// was copied elsewhere (a packed filter) and need not stay resident. No-op when owned.
    pub fn release_mapped(&self) {
        if let Repr::Mapped {
            src, start, len, ..
        } = &self.repr
        {
            let end = start.saturating_add(len.saturating_mul(std::mem::size_of::<T>()));
            src.release(*start..end);
        }
    }
}

impl<T: fmt::Debug + 'static> fmt::Debug for Buf<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s: &[T] = self;
        if s.len() <= 8 {
            write!(f, "{s:?}")
        } else {
            write!(f, "[{:?}, {:?}, ... {} elements]", s[0], s[1], s.len())
        }
    }
}

/// The elements of a tensor, by dtype.
#[derive(Clone, Debug)]
#[allow(missing_docs)]
pub enum Data {
    BF16(Buf<bf16>),
    Bool(Buf<bool>),
    C128(Buf<Complex64>),
    C64(Buf<Complex32>),
    F16(Buf<f16>),
    F32(Buf<f32>),
    F64(Buf<f64>),
    I16(Buf<i16>),
    I32(Buf<i32>),
    I64(Buf<i64>),
    I8(Buf<i8>),
    Resource(Buf<Handle>),
    String(Buf<Bytes>),
    U16(Buf<u16>),
    U32(Buf<u32>),
    U64(Buf<u64>),
    U8(Buf<u8>),
    Variant(Buf<Handle>),
}

/// A Rust type that can be a tensor element.
pub trait Element: Clone + Send + Sync + fmt::Debug + 'static {
    /// The dtype of tensors holding this element type.
    const DTYPE: DType;
    /// Wraps a buffer as `Data`.
    fn wrap(buf: Buf<Self>) -> Data;
    /// The buffer if `data` has this element type.
    fn buf(data: &Data) -> Option<&Buf<Self>>;
    /// The buffer if `data` has this element type.
    fn buf_mut(data: &mut Data) -> Option<&mut Buf<Self>>;
    /// The buffer if `data` has this element type.
    fn into_buf(data: Data) -> Result<Buf<Self>, Data>;
}

macro_rules! element {
    ($t:ty, $variant:ident) => {
        impl Element for $t {
            const DTYPE: DType = DType::$variant;
            fn wrap(buf: Buf<Self>) -> Data {
                Data::$variant(buf)
            }
            fn buf(data: &Data) -> Option<&Buf<Self>> {
                match data {
                    Data::$variant(b) => Some(b),
                    _ => None,
                }
            }
            fn buf_mut(data: &mut Data) -> Option<&mut Buf<Self>> {
                match data {
                    Data::$variant(b) => Some(b),
                    _ => None,
                }
            }
            fn into_buf(data: Data) -> Result<Buf<Self>, Data> {
                match data {
                    Data::$variant(b) => Ok(b),
                    other => Err(other),
                }
            }
        }
    };
}
element!(bf16, BF16);
element!(bool, Bool);
element!(Complex64, C128);
element!(Complex32, C64);
element!(f16, F16);
element!(f32, F32);
element!(f64, F64);
element!(i16, I16);
element!(i32, I32);
element!(i64, I64);
element!(i8, I8);
element!(Bytes, String);
element!(u16, U16);
element!(u32, U32);
element!(u64, U64);
element!(u8, U8);

/// `Handle` elements are `resource` tensors; reading also accepts `variant` tensors.
impl Element for Handle {
    const DTYPE: DType = DType::Resource;
    fn wrap(buf: Buf<Self>) -> Data {
        Data::Resource(buf)
    }
    fn buf(data: &Data) -> Option<&Buf<Self>> {
        match data {
            Data::Resource(b) | Data::Variant(b) => Some(b),
            _ => None,
        }
    }
    fn buf_mut(data: &mut Data) -> Option<&mut Buf<Self>> {
        match data {
            Data::Resource(b) | Data::Variant(b) => Some(b),
            _ => None,
        }
    }
    fn into_buf(data: Data) -> Result<Buf<Self>, Data> {
        match data {
            Data::Resource(b) | Data::Variant(b) => Ok(b),
            other => Err(other),
        }
    }
}

/// Applies a generic block to the buffer of any numeric `Data` (`$buf` binds `&Buf<T>`), or
/// evaluates `$other` for string/resource/variant/bool.
#[macro_export]
#[doc(hidden)]
macro_rules! match_numeric {
    ($data:expr, $buf:ident => $body:expr, _ => $other:expr) => {
        match $data {
            $crate::tensor::Data::F32($buf) => $body,
            $crate::tensor::Data::F64($buf) => $body,
            $crate::tensor::Data::F16($buf) => $body,
            $crate::tensor::Data::BF16($buf) => $body,
            $crate::tensor::Data::I8($buf) => $body,
            $crate::tensor::Data::I16($buf) => $body,
            $crate::tensor::Data::I32($buf) => $body,
            $crate::tensor::Data::I64($buf) => $body,
            $crate::tensor::Data::U8($buf) => $body,
            $crate::tensor::Data::U16($buf) => $body,
            $crate::tensor::Data::U32($buf) => $body,
            $crate::tensor::Data::U64($buf) => $body,
            _ => $other,
        }
    };
}

/// Applies a generic block to the buffer of any `Data` variant (`$buf` binds the buffer).
#[macro_export]
#[doc(hidden)]
macro_rules! match_any {
    ($data:expr, $buf:ident => $body:expr) => {
        match $data {
            $crate::tensor::Data::F32($buf) => $body,
            $crate::tensor::Data::F64($buf) => $body,
            $crate::tensor::Data::F16($buf) => $body,
            $crate::tensor::Data::BF16($buf) => $body,
            $crate::tensor::Data::I8($buf) => $body,
            $crate::tensor::Data::I16($buf) => $body,
            $crate::tensor::Data::I32($buf) => $body,
            $crate::tensor::Data::I64($buf) => $body,
            $crate::tensor::Data::U8($buf) => $body,
            $crate::tensor::Data::U16($buf) => $body,
            $crate::tensor::Data::U32($buf) => $body,
            $crate::tensor::Data::U64($buf) => $body,
            $crate::tensor::Data::Bool($buf) => $body,
            $crate::tensor::Data::C64($buf) => $body,
            $crate::tensor::Data::C128($buf) => $body,
            $crate::tensor::Data::String($buf) => $body,
            $crate::tensor::Data::Resource($buf) => $body,
            $crate::tensor::Data::Variant($buf) => $body,
        }
    };
}

/// A dense tensor: shape plus shared elements in row-major order.
#[derive(Debug)]
pub struct Tensor {
    shape: Shape,
    data: Data,
}

impl Clone for Tensor {
    /// A new reference to the same elements. The shape is copied as a slice: `SmallVec`'s
    /// own `clone` goes through an iterator, which showed in batch-1 profiles (the executor
    /// clones a value at every non-last use).
    fn clone(&self) -> Self {
        Tensor {
            shape: Shape::from_slice(&self.shape),
            data: self.data.clone(),
        }
    }
}

/// Why a tensor could not be built or viewed as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TensorError {
    /// Element count does not match the shape.
    #[error("shape {shape:?} needs {expected} elements, got {got}")]
    Len {
        /// The shape.
        shape: Vec<usize>,
        /// Elements the shape needs.
        expected: usize,
        /// Elements given.
        got: usize,
    },
    /// The tensor holds another dtype.
    #[error("expected dtype {expected}, got {got}")]
    DType {
        /// Asked for.
        expected: DType,
        /// Held.
        got: DType,
    },
    /// The shape's element count overflows `usize`.
    #[error("shape {0:?} overflows")]
    Overflow(Vec<usize>),
    /// A `variant` input does not hold a `TensorList`.
    #[error("expected a TensorList variant, got {0}")]
    NotAList(String),
}

/// Element count of a shape, or `None` on overflow.
pub fn num_elements(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

impl Tensor {
    /// Builds a tensor from a shape and data, checking the element count.
    pub fn new(shape: &[usize], data: Data) -> Result<Tensor, TensorError> {
        let expected = num_elements(shape).ok_or_else(|| TensorError::Overflow(shape.to_vec()))?;
        let got = match_any!(&data, b => b.len());
        if expected != got {
            return Err(TensorError::Len {
                shape: shape.to_vec(),
                expected,
                got,
            });
        }
        Ok(Tensor {
            shape: Shape::from_slice(shape),
            data,
        })
    }

    /// Builds a tensor from a shape and a vector of elements.
    pub fn from_vec<T: Element>(shape: &[usize], v: Vec<T>) -> Result<Tensor, TensorError> {
        Tensor::new(shape, T::wrap(Buf::from(v)))
    }

    /// A rank-0 tensor.
    pub fn scalar<T: Element>(v: T) -> Tensor {
        Tensor {
            shape: Shape::new(),
            data: T::wrap(Buf::from(vec![v])),
        }
    }

    /// A rank-1 tensor.
    pub fn vector<T: Element>(v: Vec<T>) -> Tensor {
        Tensor {
            shape: Shape::from_slice(&[v.len()]),
            data: T::wrap(Buf::from(v)),
        }
    }

    /// A string tensor whose elements share one buffer: `items` are copied once, back to back,
    /// and each element is a view of its bytes (one allocation for the whole tensor).
    pub fn from_strings<S: AsRef<[u8]>>(
        shape: &[usize],
        items: impl IntoIterator<Item = S>,
    ) -> Result<Tensor, TensorError> {
        let mut bytes = Vec::new();
        let mut ends = Vec::new();
        for s in items {
            bytes.extend_from_slice(s.as_ref());
            ends.push(bytes.len());
        }
        let bytes = Bytes::from(bytes);
        let mut start = 0;
        let v = ends
            .into_iter()
            .map(|end| {
                let s = bytes.slice(start..end);
                start = end;
                s
            })
            .collect();
        Tensor::from_vec(shape, v)
    }

    /// A tensor of `resource` handles.
    pub fn handles(shape: &[usize], v: Vec<Handle>, dtype: DType) -> Result<Tensor, TensorError> {
        let buf = Buf::from(v);
        let data = if dtype == DType::Variant {
            Data::Variant(buf)
        } else {
            Data::Resource(buf)
        };
        Tensor::new(shape, data)
    }

    /// A tensor of `dtype` filled with zeros (empty strings, false).
    pub fn zeros(dtype: DType, shape: &[usize]) -> Result<Tensor, TensorError> {
        let n = num_elements(shape).ok_or_else(|| TensorError::Overflow(shape.to_vec()))?;
        let data = match dtype {
            DType::BF16 => Data::BF16(vec![bf16::ZERO; n].into()),
            DType::Bool => Data::Bool(vec![false; n].into()),
            DType::C128 => Data::C128(vec![Complex64::default(); n].into()),
            DType::C64 => Data::C64(vec![Complex32::default(); n].into()),
            DType::F16 => Data::F16(vec![f16::ZERO; n].into()),
            DType::F32 => Data::F32(pool::f32_zeroed(n).into()),
            DType::F64 => Data::F64(vec![0f64; n].into()),
            DType::I16 => Data::I16(vec![0; n].into()),
            DType::I32 => Data::I32(vec![0; n].into()),
            DType::I64 => Data::I64(vec![0; n].into()),
            DType::I8 => Data::I8(vec![0; n].into()),
            DType::String => Data::String(vec![Bytes::new(); n].into()),
            DType::U16 => Data::U16(vec![0; n].into()),
            DType::U32 => Data::U32(vec![0; n].into()),
            DType::U64 => Data::U64(vec![0; n].into()),
            DType::U8 => Data::U8(vec![0; n].into()),
            DType::Resource | DType::Variant => {
                return Err(TensorError::DType {
                    expected: DType::F32,
                    got: dtype,
                })
            }
        };
        Ok(Tensor {
            shape: Shape::from_slice(shape),
            data,
        })
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        match &self.data {
            Data::BF16(_) => DType::BF16,
            Data::C128(_) => DType::C128,
            Data::C64(_) => DType::C64,
            Data::Bool(_) => DType::Bool,
            Data::F16(_) => DType::F16,
            Data::F32(_) => DType::F32,
            Data::F64(_) => DType::F64,
            Data::I16(_) => DType::I16,
            Data::I32(_) => DType::I32,
            Data::I64(_) => DType::I64,
            Data::I8(_) => DType::I8,
            Data::Resource(_) => DType::Resource,
            Data::String(_) => DType::String,
            Data::U16(_) => DType::U16,
            Data::U32(_) => DType::U32,
            Data::U64(_) => DType::U64,
            Data::U8(_) => DType::U8,
            Data::Variant(_) => DType::Variant,
        }
    }

    /// Dimension sizes.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Rank (number of dimensions).
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match_any!(&self.data, b => b.len())
    }

    /// True if the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements.
    pub fn data(&self) -> &Data {
        &self.data
    }

    /// For a tensor borrowed from a memory-mapped checkpoint, a hint that its bytes need not
    /// stay resident ([`Buf::release_mapped`]): an op copied them into a layout of its own
    /// (a packed filter); a later read faults them back in unchanged.
    pub fn release_mapped(&self) {
        match_any!(&self.data, b => b.release_mapped())
    }

    /// Takes the elements out.
    pub fn into_data(self) -> Data {
        self.data
    }

    /// Approximate bytes held (for memory accounting); strings count their payloads.
    pub fn nbytes(&self) -> usize {
        match &self.data {
            Data::String(b) => b
                .iter()
                .map(|s| s.len() + std::mem::size_of::<Bytes>())
                .sum(),
            // A list counts its elements (a variant of another kind counts as a handle).
            Data::Variant(b) => b
                .iter()
                .map(|h| match h.value.downcast_ref::<list::TensorList>() {
                    Some(l) => l.nbytes(),
                    None => std::mem::size_of::<Handle>(),
                })
                .sum(),
            _ => {
                self.len()
                    * self
                        .dtype()
                        .size_of()
                        .unwrap_or(std::mem::size_of::<Handle>())
            }
        }
    }

    /// The same elements with another shape of equal element count.
    pub fn reshape(self, shape: &[usize]) -> Result<Tensor, TensorError> {
        Tensor::new(shape, self.data)
    }

    /// The elements as a slice, if the dtype is `T`.
    pub fn as_slice<T: Element>(&self) -> Result<&[T], TensorError> {
        T::buf(&self.data)
            .map(|b| &b[..])
            .ok_or(TensorError::DType {
                expected: T::DTYPE,
                got: self.dtype(),
            })
    }

    /// The buffer, if the dtype is `T`.
    pub fn buf<T: Element>(&self) -> Result<&Buf<T>, TensorError> {
        T::buf(&self.data).ok_or(TensorError::DType {
            expected: T::DTYPE,
            got: self.dtype(),
        })
    }

    /// Mutable elements (copy-on-write), if the dtype is `T`.
    pub fn as_mut_slice<T: Element>(&mut self) -> Result<&mut [T], TensorError> {
        let got = self.dtype();
        T::buf_mut(&mut self.data)
            .map(|b| b.make_mut())
            .ok_or(TensorError::DType {
                expected: T::DTYPE,
                got,
            })
    }

    /// Takes the elements as a vector (copying only if shared), if the dtype is `T`.
    pub fn into_vec<T: Element>(self) -> Result<Vec<T>, TensorError> {
        let got = self.dtype();
        T::into_buf(self.data)
            .map(Buf::into_vec)
            .map_err(|_| TensorError::DType {
                expected: T::DTYPE,
                got,
            })
    }

    /// An ndarray view, if the dtype is `T`.
    pub fn view<T: Element>(&self) -> Result<ArrayViewD<'_, T>, TensorError> {
        let s = self.as_slice::<T>()?;
        ArrayViewD::from_shape(IxDyn(&self.shape), s).map_err(|_| TensorError::Len {
            shape: self.shape.to_vec(),
            expected: num_elements(&self.shape).unwrap_or(usize::MAX),
            got: s.len(),
        })
    }

    /// An owned ndarray, if the dtype is `T`.
    pub fn to_array<T: Element>(&self) -> Result<ArrayD<T>, TensorError> {
        Ok(self.view::<T>()?.to_owned())
    }

    /// Builds a tensor from an ndarray (in logical row-major order).
    pub fn from_array<T: Element>(a: ArrayD<T>) -> Tensor {
        let shape = Shape::from_slice(a.shape());
        let v = if a.is_standard_layout() {
            a.into_raw_vec_and_offset().0
        } else {
            a.iter().cloned().collect()
        };
        Tensor {
            shape,
            data: T::wrap(Buf::from(v)),
        }
    }

    /// The only element of a one-element tensor, if the dtype is `T`.
    pub fn scalar_value<T: Element>(&self) -> Result<T, TensorError> {
        let s = self.as_slice::<T>()?;
        match s {
            [v] => Ok(v.clone()),
            _ => Err(TensorError::Len {
                shape: self.shape.to_vec(),
                expected: 1,
                got: s.len(),
            }),
        }
    }

    /// The only element of a one-element int32/int64 tensor, widened to i64.
    pub fn scalar_value_i64(&self) -> Result<i64, TensorError> {
        let v = self.to_i64_vec()?;
        match v.as_slice() {
            [x] => Ok(*x),
            _ => Err(TensorError::Len {
                shape: self.shape.to_vec(),
                expected: 1,
                got: v.len(),
            }),
        }
    }

    /// Integer elements as i64: borrowed when the dtype is already int64, else widened
    /// like [`Tensor::to_i64_vec`].
    pub fn i64_cow(&self) -> Result<std::borrow::Cow<'_, [i64]>, TensorError> {
        match &self.data {
            Data::I64(b) => Ok(std::borrow::Cow::Borrowed(&b[..])),
            _ => self.to_i64_vec().map(std::borrow::Cow::Owned),
        }
    }

    /// Integer elements widened to i64 (for shape-, axis- and index-like inputs).
    pub fn to_i64_vec(&self) -> Result<Vec<i64>, TensorError> {
        Ok(match &self.data {
            Data::I32(b) => b.iter().map(|&v| v as i64).collect(),
            Data::I64(b) => b.to_vec(),
            Data::I16(b) => b.iter().map(|&v| v as i64).collect(),
            Data::I8(b) => b.iter().map(|&v| v as i64).collect(),
            Data::U8(b) => b.iter().map(|&v| v as i64).collect(),
            Data::U16(b) => b.iter().map(|&v| v as i64).collect(),
            Data::U32(b) => b.iter().map(|&v| v as i64).collect(),
            Data::U64(b) => b.iter().map(|&v| v as i64).collect(),
            _ => {
                return Err(TensorError::DType {
                    expected: DType::I64,
                    got: self.dtype(),
                })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Bytes(Vec<u8>);
    impl ByteSource for Bytes {
        fn bytes(&self) -> &[u8] {
            &self.0
        }
    }

    #[test]
    fn mapped_buffers_borrow_when_aligned_and_copy_otherwise() {
        let mut raw = Vec::new();
        for v in [1.0f32, 2.0, 3.0] {
            raw.extend_from_slice(&v.to_le_bytes());
        }
        raw.push(0);
        let src: Arc<dyn ByteSource> = Arc::new(Bytes(raw));
        let b = Buf::<f32>::mapped(src.clone(), 0, 3).unwrap();
        assert_eq!(&b[..], &[1.0, 2.0, 3.0]);
        assert!(Buf::<f32>::mapped(src.clone(), 4, 3).is_none());
        let mut c = b.clone();
        c.make_mut()[0] = 5.0;
        assert_eq!(&b[..], &[1.0, 2.0, 3.0]);
        assert_eq!(&c[..], &[5.0, 2.0, 3.0]);
    }

    #[test]
    fn new_checks_element_count() {
        let err = Tensor::from_vec(&[2, 2], vec![1i32, 2, 3]).unwrap_err();
        assert!(matches!(
            err,
            TensorError::Len {
                expected: 4,
                got: 3,
                ..
            }
        ));
        assert!(matches!(
            Tensor::zeros(DType::F32, &[usize::MAX, 2]),
            Err(TensorError::Overflow(_))
        ));
    }
}

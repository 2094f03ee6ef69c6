//! `TensorProto` → [`Tensor`], checked: the stored bytes or values must match the claimed shape.
//!
//! TF packs constants three ways: raw little-endian `tensor_content`, a typed `*_val` list with
//! one value per element, or a typed list shorter than the shape, in which case the last value is
//! repeated ("splatted") to fill it (`tensor_util.make_tensor_proto` does this for `tf.fill`-like
//! constants). An empty list with a non-empty shape means zeros. Sizes are checked against
//! `max_elements` before anything is allocated.

use half::{bf16, f16};

use crate::proto::{TensorProto, TensorShapeProto};
use crate::tensor::{num_elements, Bytes, Complex32, Complex64, DType, Tensor};

/// Why a `TensorProto` (or shape) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TensorProtoError {
    /// The dtype is unknown or cannot appear in a constant.
    #[error("unsupported dtype {0}")]
    DType(i32),
    /// A dimension is negative or the shape is of unknown rank.
    #[error("invalid shape {0:?}")]
    Shape(Vec<i64>),
    /// The element count exceeds the configured cap.
    #[error("{elements} elements exceed the limit of {limit}")]
    TooLarge {
        /// Elements claimed.
        elements: u128,
        /// The cap.
        limit: usize,
    },
    /// `tensor_content` has the wrong number of bytes.
    #[error("tensor_content has {got} bytes, shape {shape:?} of {dtype} needs {expected}")]
    ContentSize {
        /// The dtype.
        dtype: DType,
        /// The shape.
        shape: Vec<usize>,
        /// Bytes needed.
        expected: usize,
        /// Bytes stored.
        got: usize,
    },
    /// A typed value list is longer than the shape allows.
    #[error("{got} values stored for {expected} elements")]
    TooManyValues {
        /// Elements in the shape.
        expected: usize,
        /// Values stored.
        got: usize,
    },
}

/// Dimension sizes of a fully known shape proto.
pub fn shape_from_proto(
    p: Option<&TensorShapeProto>,
    max_elements: usize,
) -> Result<Vec<usize>, TensorProtoError> {
    let Some(p) = p else { return Ok(Vec::new()) };
    let dims: Vec<i64> = p.dim.iter().map(|d| d.size).collect();
    if p.unknown_rank || dims.iter().any(|&d| d < 0) {
        return Err(TensorProtoError::Shape(dims));
    }
    let elements = dims
        .iter()
        .fold(1u128, |acc, &d| acc.saturating_mul(d as u128));
    if elements > max_elements as u128 {
        return Err(TensorProtoError::TooLarge {
            elements,
            limit: max_elements,
        });
    }
    Ok(dims.into_iter().map(|d| d as usize).collect())
}

/// Decodes a constant, refusing more than `max_elements` elements.
pub fn tensor_from_proto(p: &TensorProto, max_elements: usize) -> Result<Tensor, TensorProtoError> {
    let dtype = DType::from_proto(p.dtype).ok_or(TensorProtoError::DType(p.dtype))?;
    let shape = shape_from_proto(p.tensor_shape.as_ref(), max_elements)?;
    let n = num_elements(&shape).unwrap_or(usize::MAX);
    let raw = !p.tensor_content.is_empty();
    macro_rules! pod {
        ($t:ty, $vals:expr, $conv:expr) => {{
            let v: Vec<$t> = if raw {
                from_le::<$t>(&p.tensor_content, dtype, &shape, n)?
            } else {
                splat($vals, n, $conv)?
            };
            Tensor::from_vec(&shape, v)
        }};
    }
    let t = match dtype {
        DType::F32 => pod!(f32, &p.float_val, |&v: &f32| v),
        DType::F64 => pod!(f64, &p.double_val, |&v: &f64| v),
        DType::I32 => pod!(i32, &p.int_val, |&v: &i32| v),
        DType::I16 => pod!(i16, &p.int_val, |&v: &i32| v as i16),
        DType::I8 => pod!(i8, &p.int_val, |&v: &i32| v as i8),
        DType::U8 => pod!(u8, &p.int_val, |&v: &i32| v as u8),
        DType::U16 => pod!(u16, &p.int_val, |&v: &i32| v as u16),
        DType::I64 => pod!(i64, &p.int64_val, |&v: &i64| v),
        DType::U32 => pod!(u32, &p.uint32_val, |&v: &u32| v),
        DType::U64 => pod!(u64, &p.uint64_val, |&v: &u64| v),
        DType::F16 => pod!(f16, &p.half_val, |&v: &i32| f16::from_bits(v as u16)),
        DType::BF16 => pod!(bf16, &p.half_val, |&v: &i32| bf16::from_bits(v as u16)),
        DType::Bool => {
            let v: Vec<bool> = if raw {
                let b = from_le::<u8>(&p.tensor_content, dtype, &shape, n)?;
                b.into_iter().map(|x| x != 0).collect()
            } else {
                splat(&p.bool_val, n, |&v: &bool| v)?
            };
            Tensor::from_vec(&shape, v)
        }
        DType::String => {
            let v = splat(&p.string_val, n, |s: &Vec<u8>| Bytes::copy_from_slice(s))?;
            Tensor::from_vec(&shape, v)
        }
        DType::C64 => {
            let v = complex(p, raw, &shape, n, &p.scomplex_val, Complex32::new)?;
            Tensor::from_vec(&shape, v)
        }
        DType::C128 => {
            let v = complex(p, raw, &shape, n, &p.dcomplex_val, Complex64::new)?;
            Tensor::from_vec(&shape, v)
        }
        DType::Resource | DType::Variant => return Err(TensorProtoError::DType(p.dtype)),
    };
    Ok(t.expect("element count was computed from the shape"))
}

/// Complex elements from `tensor_content` (little-endian (re, im) pairs) or from the
/// `scomplex_val` / `dcomplex_val` list of interleaved parts, whose last pair is splatted.
fn complex<F: bytemuck::Pod + Default, C: Clone + Default>(
    p: &TensorProto,
    raw: bool,
    shape: &[usize],
    n: usize,
    vals: &[F],
    make: fn(F, F) -> C,
) -> Result<Vec<C>, TensorProtoError> {
    let dtype = DType::from_proto(p.dtype).ok_or(TensorProtoError::DType(p.dtype))?;
    let parts: Vec<F> = if raw {
        from_le::<F>(&p.tensor_content, dtype, shape, n.saturating_mul(2))?
    } else {
        if vals.len() % 2 != 0 {
            return Err(TensorProtoError::TooManyValues {
                expected: n.saturating_mul(2),
                got: vals.len(),
            });
        }
        vals.to_vec()
    };
    let pairs: Vec<C> = parts.chunks_exact(2).map(|c| make(c[0], c[1])).collect();
    if raw {
        Ok(pairs)
    } else {
        splat(&pairs, n, |c: &C| c.clone())
    }
}

fn from_le<T: bytemuck::Pod>(
    bytes: &[u8],
    dtype: DType,
    shape: &[usize],
    n: usize,
) -> Result<Vec<T>, TensorProtoError> {
    let expected = n.saturating_mul(std::mem::size_of::<T>());
    if bytes.len() != expected {
        return Err(TensorProtoError::ContentSize {
            dtype,
            shape: shape.to_vec(),
            expected,
            got: bytes.len(),
        });
    }
    Ok(bytemuck::pod_collect_to_vec(bytes))
}

fn splat<S, T: Clone + Default>(
    vals: &[S],
    n: usize,
    conv: impl Fn(&S) -> T,
) -> Result<Vec<T>, TensorProtoError> {
    if vals.len() > n {
        return Err(TensorProtoError::TooManyValues {
            expected: n,
            got: vals.len(),
        });
    }
    let mut out: Vec<T> = vals.iter().map(&conv).collect();
    let fill = out.last().cloned().unwrap_or_default();
    out.resize(n, fill);
    Ok(out)
}

/// Encodes a tensor as a `TensorProto` (used by tests and tools; strings and numbers only).
pub fn tensor_to_proto(t: &Tensor) -> TensorProto {
    use crate::proto::tensor_shape_proto::Dim;
    let mut p = TensorProto {
        dtype: t.dtype().to_proto(),
        tensor_shape: Some(TensorShapeProto {
            dim: t
                .shape()
                .iter()
                .map(|&d| Dim {
                    size: d as i64,
                    name: String::new(),
                })
                .collect(),
            unknown_rank: false,
        }),
        ..Default::default()
    };
    if let Ok(s) = t.as_slice::<Bytes>() {
        p.string_val = s.iter().map(|s| s.to_vec()).collect();
    } else if let Ok(b) = t.as_slice::<bool>() {
        p.bool_val = b.to_vec();
    } else {
        crate::match_numeric!(t.data(), b => {
            p.tensor_content = bytemuck::cast_slice(&b[..]).to_vec();
        }, _ => {});
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proto(dtype: DType, shape: &[i64]) -> TensorProto {
        use crate::proto::tensor_shape_proto::Dim;
        TensorProto {
            dtype: dtype.to_proto(),
            tensor_shape: Some(TensorShapeProto {
                dim: shape
                    .iter()
                    .map(|&size| Dim {
                        size,
                        name: String::new(),
                    })
                    .collect(),
                unknown_rank: false,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn splats_the_last_value() {
        let mut p = proto(DType::F32, &[2, 3]);
        p.float_val = vec![1.0, 2.0];
        let t = tensor_from_proto(&p, 1 << 20).unwrap();
        assert_eq!(
            t.as_slice::<f32>().unwrap(),
            &[1.0, 2.0, 2.0, 2.0, 2.0, 2.0]
        );
    }

    #[test]
    fn refuses_mismatched_content_and_huge_shapes() {
        let mut p = proto(DType::F32, &[4]);
        p.tensor_content = vec![0; 12];
        assert!(matches!(
            tensor_from_proto(&p, 1 << 20),
            Err(TensorProtoError::ContentSize {
                expected: 16,
                got: 12,
                ..
            })
        ));
        let p = proto(DType::F32, &[1 << 40, 1 << 40]);
        assert!(matches!(
            tensor_from_proto(&p, 1 << 20),
            Err(TensorProtoError::TooLarge { .. })
        ));
    }

    #[test]
    fn round_trips() {
        let t = Tensor::from_vec(&[2], vec![3i64, -4]).unwrap();
        let back = tensor_from_proto(&tensor_to_proto(&t), 16).unwrap();
        assert_eq!(back.as_slice::<i64>().unwrap(), &[3, -4]);
    }
}

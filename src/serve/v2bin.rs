//! KServe v2's binary tensor data extension (Triton's `binary_tensor_data`): an `infer` body may
//! carry tensors as raw bytes after its JSON header, which is then
//! `Inference-Header-Content-Length` bytes long.
//!
//! An input with `"parameters": {"binary_data_size": n}` takes the next `n` bytes of that tail,
//! in input order. Its data is little-endian and row-major with no padding. A BOOL is one byte;
//! a BYTES element is a little-endian `u32` length and then its bytes. An output asked for with
//! `"parameters": {"binary_data": true}`, or every output with the request parameter
//! `binary_data_output: true`, is answered the same way. It gets `binary_data_size` in its
//! JSON and its bytes after the header.
//!
//! The extension is worth having for FP16/BF16 (which JSON cannot carry) and for big image
//! tensors, whose JSON text is several times their size. The tail is untrusted: each size is
//! checked against the shape, the element cap and what is left, and unused bytes are an
//! error.

use super::status::Status;
use crate::tensor::{Bytes, DType, Tensor};

/// The JSON header and binary tail of a body whose `Inference-Header-Content-Length` is
/// `header_len` (the whole body is JSON without it).
///
/// # Errors
/// INVALID_ARGUMENT for a length that is not a number or exceeds the body.
pub(crate) fn split_body<'a>(
    body: &'a [u8],
    header_len: Option<&str>,
) -> Result<(&'a [u8], &'a [u8]), Status> {
    let Some(h) = header_len else {
        return Ok((body, &[]));
    };
    let n: usize = h.trim().parse().map_err(|_| {
        Status::invalid(format!(
            "Inference-Header-Content-Length: {h:?} is not a byte count"
        ))
    })?;
    if n > body.len() {
        return Err(Status::invalid(format!(
            "Inference-Header-Content-Length is {n}, but the body has {} bytes",
            body.len()
        )));
    }
    Ok(body.split_at(n))
}

/// The binary tail, consumed input by input.
pub(crate) struct Tail<'a> {
    rest: &'a [u8],
}

impl<'a> Tail<'a> {
    pub(crate) fn new(rest: &'a [u8]) -> Self {
        Tail { rest }
    }

    /// The next `n` bytes, for input `name`.
    pub(crate) fn take(&mut self, n: usize, name: &str) -> Result<&'a [u8], Status> {
        if n > self.rest.len() {
            return Err(Status::invalid(format!(
                "input {name:?}: binary_data_size {n} exceeds the {} bytes of binary data left",
                self.rest.len()
            )));
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    /// Fails if bytes are left over (a size that was too small, or a stray tail).
    pub(crate) fn finish(&self) -> Result<(), Status> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(Status::invalid(format!(
                "{} bytes of binary data are not claimed by any input's binary_data_size",
                self.rest.len()
            )))
        }
    }
}

/// A `dtype` tensor of `shape` from its raw bytes.
///
/// # Errors
/// RESOURCE_EXHAUSTED past `max_elements`; INVALID_ARGUMENT when the bytes do not match the
/// shape or a BYTES element's length runs past the end; UNIMPLEMENTED for dtypes v2 cannot name.
pub(crate) fn tensor_from_raw(
    name: &str,
    dtype: DType,
    shape: &[usize],
    raw: &[u8],
    max_elements: usize,
) -> Result<Tensor, Status> {
    let n = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= max_elements)
        .ok_or_else(|| {
            Status::exhausted(format!(
                "input {name:?}: shape {shape:?} exceeds the cap of {max_elements} elements"
            ))
        })?;
    let bad = |what: String| Status::invalid(format!("input {name:?}: {what}"));
    macro_rules! fixed {
        ($t:ty, $conv:expr) => {{
            let sz = std::mem::size_of::<$t>();
            if raw.len() != n * sz {
                return Err(bad(format!(
                    "{} bytes of binary data for {n} elements of {sz} bytes",
                    raw.len()
                )));
            }
            let v: Vec<_> = raw
                .chunks_exact(sz)
                .map(|c| $conv(<$t>::from_le_bytes(c.try_into().expect("chunk of size_of"))))
                .collect();
            Tensor::from_vec(shape, v)
        }};
    }
    let t = match dtype {
        DType::F32 => fixed!(f32, |x| x),
        DType::F64 => fixed!(f64, |x| x),
        DType::I8 => fixed!(i8, |x| x),
        DType::I16 => fixed!(i16, |x| x),
        DType::I32 => fixed!(i32, |x| x),
        DType::I64 => fixed!(i64, |x| x),
        DType::U8 => fixed!(u8, |x| x),
        DType::U16 => fixed!(u16, |x| x),
        DType::U32 => fixed!(u32, |x| x),
        DType::U64 => fixed!(u64, |x| x),
        DType::F16 => fixed!(u16, half::f16::from_bits),
        DType::BF16 => fixed!(u16, half::bf16::from_bits),
        DType::Bool => fixed!(u8, |x: u8| x != 0),
        DType::String => {
            let mut v = Vec::with_capacity(n.min(raw.len() / 4));
            let mut at = 0usize;
            for i in 0..n {
                let len = raw
                    .get(at..at + 4)
                    .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
                    .ok_or_else(|| bad(format!("binary data ends inside element {i}'s length")))?;
                at += 4;
                let s = raw.get(at..at.saturating_add(len)).ok_or_else(|| {
                    bad(format!(
                        "element {i} is {len} bytes long, past the end of its binary data"
                    ))
                })?;
                v.push(Bytes::copy_from_slice(s));
                at += len;
            }
            if at != raw.len() {
                return Err(bad(format!(
                    "{} bytes of binary data follow its {n} BYTES elements",
                    raw.len() - at
                )));
            }
            Tensor::from_vec(shape, v)
        }
        other => {
            return Err(Status::unimplemented(format!(
                "input {name:?}: dtype {} has no binary form",
                other.name()
            )))
        }
    };
    t.map_err(|e| bad(e.to_string()))
}

/// Appends `t`'s raw bytes to `out`.
///
/// # Errors
/// UNIMPLEMENTED for dtypes v2 cannot name; INVALID_ARGUMENT for a string over 4 GiB.
pub(crate) fn tensor_to_raw(name: &str, t: &Tensor, out: &mut Vec<u8>) -> Result<(), Status> {
    let internal = |e: crate::tensor::TensorError| Status::internal(e.to_string());
    macro_rules! fixed {
        ($t:ty, $conv:expr) => {{
            let s = t.as_slice::<$t>().map_err(internal)?;
            out.reserve(std::mem::size_of_val(s));
            for &x in s {
                out.extend_from_slice(&$conv(x).to_le_bytes());
            }
        }};
    }
    match t.dtype() {
        DType::F32 => fixed!(f32, |x| x),
        DType::F64 => fixed!(f64, |x| x),
        DType::I8 => fixed!(i8, |x| x),
        DType::I16 => fixed!(i16, |x| x),
        DType::I32 => fixed!(i32, |x| x),
        DType::I64 => fixed!(i64, |x| x),
        DType::U8 => fixed!(u8, |x| x),
        DType::U16 => fixed!(u16, |x| x),
        DType::U32 => fixed!(u32, |x| x),
        DType::U64 => fixed!(u64, |x| x),
        DType::F16 => fixed!(half::f16, half::f16::to_bits),
        DType::BF16 => fixed!(half::bf16, half::bf16::to_bits),
        DType::Bool => fixed!(bool, u8::from),
        DType::String => {
            for s in t.as_slice::<Bytes>().map_err(internal)? {
                let len = u32::try_from(s.len()).map_err(|_| {
                    Status::invalid(format!("output {name:?}: a string over 4 GiB"))
                })?;
                out.extend_from_slice(&len.to_le_bytes());
                out.extend_from_slice(s);
            }
        }
        other => {
            return Err(Status::unimplemented(format!(
                "output {name:?}: dtype {} has no binary form",
                other.name()
            )))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_checks_sizes() {
        let f = Tensor::from_vec(&[2, 2], vec![1.5f32, -2.0, 0.0, 7.25]).unwrap();
        let s = Tensor::from_strings(&[3], [&b"ab"[..], b"", b"\xffz"]).unwrap();
        let b = Tensor::from_vec(&[2], vec![true, false]).unwrap();
        let h = Tensor::from_vec(&[1], vec![half::f16::from_f32(0.5)]).unwrap();
        for t in [&f, &s, &b, &h] {
            let mut raw = Vec::new();
            tensor_to_raw("x", t, &mut raw).unwrap();
            let back = tensor_from_raw("x", t.dtype(), t.shape(), &raw, 1 << 20).unwrap();
            assert_eq!(back.shape(), t.shape());
            assert_eq!(format!("{:?}", back.data()), format!("{:?}", t.data()));
        }
        let mut raw = Vec::new();
        tensor_to_raw("x", &s, &mut raw).unwrap();
        assert_eq!(&raw[..6], &[2, 0, 0, 0, b'a', b'b']);
        // Wrong sizes, lengths past the end, leftovers and the element cap are errors.
        assert!(tensor_from_raw("x", DType::F32, &[2], &[0; 7], 100).is_err());
        assert!(tensor_from_raw("x", DType::String, &[1], &[9, 0, 0, 0, 1], 100).is_err());
        assert!(tensor_from_raw("x", DType::String, &[1], &[0, 0, 0, 0, 1], 100).is_err());
        assert!(tensor_from_raw("x", DType::String, &[1], &[0xff; 4], 100).is_err());
        assert!(tensor_from_raw("x", DType::F32, &[1 << 40, 1 << 40], &[], 100).is_err());
        let mut tail = Tail::new(&[1, 2, 3]);
        assert_eq!(tail.take(2, "a").unwrap(), &[1, 2]);
        assert!(tail.finish().is_err());
        assert!(tail.take(2, "b").is_err());
        assert!(split_body(b"{}xx", Some("9")).is_err());
        assert!(split_body(b"{}xx", Some("two")).is_err());
        assert_eq!(
            split_body(b"{}xx", Some("2")).unwrap(),
            (&b"{}"[..], &b"xx"[..])
        );
    }
}

//! Partitioned (sliced) variables: TF's `BundleWriter::AddSlice` stores the full tensor's entry
//! with only dtype, shape and a list of `TensorSliceProto`s, and each slice as an ordinary entry
//! under `checkpoint::EncodeTensorNameSlice(name, slice)` (core/util/saved_tensor_slice_util.cc).
//!
//! That key is built with `OrderedCode` (core/lib/strings/ordered_code.cc): `NumIncreasing(0)`,
//! `String(name)`, `NumIncreasing(rank)`, then `SignedNumIncreasing(start)` and
//! `SignedNumIncreasing(length)` per dimension, where a full extent has length -1.

use crate::proto::TensorSliceProto;

/// One dimension of a slice as TF's `TensorSlice` holds it: `length` is -1 for "all".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Extent {
    pub start: i64,
    pub length: i64,
}

/// Converts a slice proto to extents (`TensorSlice(const TensorSliceProto&)`).
pub(super) fn extents(proto: &TensorSliceProto) -> Box<[Extent]> {
    use crate::proto::tensor_slice_proto::extent::HasLength;
    proto
        .extent
        .iter()
        .map(|e| Extent {
            start: e.start,
            length: match e.has_length {
                Some(HasLength::Length(l)) => l,
                None => -1,
            },
        })
        .collect()
}

/// `OrderedCode::WriteNumIncreasing`: a length byte, then big-endian bytes without leading 0s.
fn write_num_increasing(out: &mut Vec<u8>, v: u64) {
    let bytes = v.to_be_bytes();
    let skip = (v.leading_zeros() / 8) as usize;
    out.push((8 - skip) as u8);
    out.extend_from_slice(&bytes[skip..]);
}

/// `OrderedCode::WriteString`: 0x00 and 0xff escaped, then the `\0\1` separator.
fn write_string(out: &mut Vec<u8>, s: &[u8]) {
    for &b in s {
        match b {
            0x00 => out.extend_from_slice(&[0x00, 0xff]),
            0xff => out.extend_from_slice(&[0xff, 0x00]),
            _ => out.push(b),
        }
    }
    out.extend_from_slice(&[0x00, 0x01]);
}

/// `OrderedCode::WriteSignedNumIncreasing`: sign bit, then one "size" bit per extra byte and
/// a delimiter bit, then the value in big-endian two's complement; 1 to 10 bytes.
pub(super) fn write_signed_num_increasing(out: &mut Vec<u8>, v: i64) {
    let magnitude = if v < 0 { !v } else { v } as u64;
    let bits = 64 - magnitude.leading_zeros() as usize;
    let len = bits / 7 + 1;
    let sign = if v < 0 { 0xff } else { 0x00 };
    let mut buf = [sign; 10];
    buf[2..].copy_from_slice(&v.to_be_bytes());
    let begin = &mut buf[10 - len..];
    // Header bits for lengths 1..=8 fill the first byte; 9 and 10 spill into the second.
    let (h0, h1) = match len {
        9 => (0xff, 0x80),
        10 => (0xff, 0xc0),
        _ => ((0xff00u16 >> len) as u8, 0),
    };
    begin[0] ^= h0;
    if len >= 2 {
        begin[1] ^= h1;
    }
    out.extend_from_slice(begin);
}

/// `checkpoint::EncodeTensorNameSlice(name, slice)`: the key a slice's bytes are stored under.
pub(super) fn slice_key(name: &str, extents: &[Extent]) -> Vec<u8> {
    let mut key = Vec::with_capacity(name.len() + 4 + 4 * extents.len());
    write_num_increasing(&mut key, 0);
    write_string(&mut key, name.as_bytes());
    write_num_increasing(&mut key, extents.len() as u64);
    for e in extents {
        write_signed_num_increasing(&mut key, e.start);
        write_signed_num_increasing(&mut key, e.length);
    }
    key
}

/// A slice's concrete `(start, length)` per dimension within `shape`, or `None` if it does not
/// fit (wrong rank, negative start, or past the end).
pub(super) fn resolve(extents: &[Extent], shape: &[i64]) -> Option<Vec<(u64, u64)>> {
    if extents.len() != shape.len() {
        return None;
    }
    extents
        .iter()
        .zip(shape)
        .map(|(e, &dim)| {
            let dim = u64::try_from(dim).ok()?;
            if e.length == -1 {
                return Some((0, dim));
            }
            let start = u64::try_from(e.start).ok()?;
            let length = u64::try_from(e.length).ok()?;
            (start.checked_add(length)? <= dim).then_some((start, length))
        })
        .collect()
}

/// True if two resolved slices share an element.
pub(super) fn overlap(a: &[(u64, u64)], b: &[(u64, u64)]) -> bool {
    let empty = |s: &[(u64, u64)]| s.iter().any(|&(_, len)| len == 0);
    !empty(a)
        && !empty(b)
        && a.iter()
            .zip(b)
            .all(|(&(sa, la), &(sb, lb))| sa < sb + lb && sb < sa + la)
}

/// Copies a slice's row-major bytes into the full tensor's row-major bytes.
///
/// # Panics
/// If `ext` does not fit `dims` or the buffers are too short: callers check both.
pub(super) fn copy_into(dst: &mut [u8], dims: &[u64], ext: &[(u64, u64)], src: &[u8], elem: usize) {
    let rank = dims.len();
    if rank == 0 {
        dst[..elem].copy_from_slice(&src[..elem]);
        return;
    }
    if ext.iter().any(|&(_, len)| len == 0) {
        return;
    }
    let run = ext[rank - 1].1 as usize * elem;
    let mut idx = vec![0u64; rank - 1];
    let mut src_at = 0;
    loop {
        let mut at = 0u64;
        for d in 0..rank {
            let i = ext[d].0 + idx.get(d).copied().unwrap_or(0);
            at = at * dims[d] + i;
        }
        let at = at as usize * elem;
        dst[at..at + run].copy_from_slice(&src[src_at..src_at + run]);
        src_at += run;
        let mut d = rank - 1;
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            idx[d] += 1;
            if idx[d] < ext[d].1 {
                break;
            }
            idx[d] = 0;
        }
    }
}

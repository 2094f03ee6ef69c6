//! Variable checkpoints in TF's tensor_bundle (V2) format: `<prefix>.index` plus
//! `<prefix>.data-NNNNN-of-MMMMM` shards.
//!
//! Owns the bytes-to-entries step only: the SSTable index (`table`), the bundle header and
//! entry protos plus checked, zero-copy access to tensor bytes (`bundle`), and reassembly of
//! partitioned variables (`slice`). It knows no graph, op or `Tensor` type; callers turn
//! [`TensorBytes`] into tensors.
//!
//! Key decision: the index is parsed and validated completely at open (it is small and every
//! later lookup trusts it), while data shards are memory-mapped and each tensor's checksum is
//! verified lazily, on its first read, so opening a multi-gigabyte checkpoint costs only the
//! index. TF reference: tensorflow/core/util/tensor_bundle/tensor_bundle.cc.

mod bundle;
mod slice;
mod table;
#[cfg(test)]
mod tests;

use std::ops::{Deref, Range};
use std::path::PathBuf;
use std::sync::Arc;

pub use bundle::{BundleReader, Entry};

use crate::proto::DataType;

/// `crc32c::kMaskDelta` from TF's core/lib/hash/crc32c.h.
const MASK_DELTA: u32 = 0xa282_ead8;

/// Masks a crc32c the way TF stores it in files (`crc32c::Mask`).
pub fn mask(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(MASK_DELTA)
}

/// Inverse of [`mask`] (`crc32c::Unmask`).
pub fn unmask(masked: u32) -> u32 {
    masked.wrapping_sub(MASK_DELTA).rotate_left(15)
}

/// What went wrong while opening a checkpoint or reading one of its tensors.
///
/// `path` is the file the bad bytes came from; `key` is the tensor name where one is known.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    #[error("{}: block checksum mismatch at offset {offset}", path.display())]
    BlockChecksum { path: PathBuf, offset: u64 },
    #[error("{}: not a table file (bad footer magic)", path.display())]
    BadMagic { path: PathBuf },
    #[error("{}: corrupt table: {what}", path.display())]
    Corrupt { path: PathBuf, what: String },
    #[error("{}: cannot decode {key:?}", path.display())]
    Decode {
        path: PathBuf,
        key: String,
        #[source]
        source: prost::DecodeError,
    },
    #[error("{}: bundle header: {what}", path.display())]
    Header { path: PathBuf, what: String },
    #[error("cannot read {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: tensor {key:?}: bad entry: {what}", path.display())]
    InvalidEntry {
        path: PathBuf,
        key: String,
        what: String,
    },
    #[error("{}: tensor {key:?}: bad data: {what}", path.display())]
    InvalidData {
        path: PathBuf,
        key: String,
        what: String,
    },
    #[error("missing data shard {}", path.display())]
    MissingShard { path: PathBuf },
    #[error("tensor {key:?} not found in checkpoint")]
    NotFound { key: String },
    #[error(
        "{}: tensor {key:?}: bytes {offset}+{size} out of bounds (shard is {len} bytes)",
        path.display()
    )]
    OutOfBounds {
        key: String,
        path: PathBuf,
        offset: u64,
        size: u64,
        len: u64,
    },
    #[error("{}: refused: {what}", path.display())]
    Refused { path: PathBuf, what: &'static str },
    #[error("{}: tensor {key:?}: size is {got} bytes, expected {expected}", path.display())]
    SizeMismatch {
        key: String,
        path: PathBuf,
        expected: u64,
        got: u64,
    },
    #[error("{}: snappy block at offset {offset}", path.display())]
    Snappy {
        path: PathBuf,
        offset: u64,
        #[source]
        source: snap::Error,
    },
    #[error(
        "{}: tensor {key:?}: checksum mismatch (expected {expected:#010x}, got {got:#010x})",
        path.display()
    )]
    TensorChecksum {
        key: String,
        path: PathBuf,
        expected: u32,
        got: u32,
    },
    #[error(
        "{}: truncated: needs {needed} bytes at offset {offset}, file has {len}",
        path.display()
    )]
    Truncated {
        path: PathBuf,
        offset: u64,
        needed: u64,
        len: u64,
    },
    #[error("tensor {key:?}: unsupported {what}")]
    Unsupported { key: String, what: String },
}

/// Bytes of one tensor, usually borrowed from a memory-mapped data shard without copying.
///
/// Derefs to `&[u8]`. A mapped tensor starts only as aligned as the writer left it, so use
/// [`MappedBytes::try_cast`] (or copy) rather than assuming `&[f32]` is possible. Partitioned
/// tensors are assembled into an owned, 8-byte-aligned buffer instead.
#[derive(Clone)]
pub struct MappedBytes {
    storage: Storage,
    range: Range<usize>,
}

#[derive(Clone)]
enum Storage {
    Mapped(Arc<memmap2::Mmap>),
    /// `u64` words so that every POD dtype can be cast in place.
    Owned(Arc<Vec<u64>>),
}

impl MappedBytes {
    /// The bytes as a slice of `T`, or `None` if misaligned or not a whole number of `T`.
    pub fn try_cast<T: bytemuck::Pod>(&self) -> Option<&[T]> {
        bytemuck::try_cast_slice(self).ok()
    }

    /// True if the bytes are borrowed from a shard mapping (not assembled from slices).
    pub fn is_mapped(&self) -> bool {
        matches!(self.storage, Storage::Mapped(_))
    }

    /// Lets the OS drop this process's resident pages lying wholly inside `self[range]` (a
    /// hint: `MADV_DONTNEED` on the read-only shard mapping, so no byte changes and later reads
    /// fault the same bytes back in from the page cache). For data that was copied elsewhere
    /// (a packed filter), so the model does not keep it resident twice. No-op for tensors
    /// assembled from slices.
    pub fn release_pages(&self, range: Range<usize>) {
        if let Storage::Mapped(map) = &self.storage {
            let end = self
                .range
                .start
                .saturating_add(range.end)
                .min(self.range.end);
            let start = self.range.start.saturating_add(range.start);
            bundle::drop_pages(map, start..end);
        }
    }
}

impl Deref for MappedBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // The range was checked against the storage's length when this value was built.
        let all: &[u8] = match &self.storage {
            Storage::Mapped(map) => map,
            Storage::Owned(words) => bytemuck::cast_slice(words),
        };
        &all[self.range.clone()]
    }
}

impl AsRef<[u8]> for MappedBytes {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl std::fmt::Debug for MappedBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappedBytes")
            .field("mapped", &self.is_mapped())
            .field("range", &self.range)
            .finish()
    }
}

/// A checksum-verified tensor read from a checkpoint.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum TensorBytes {
    /// Fixed-size elements, little-endian, row-major; `data.len()` is exactly
    /// `num_elements * size_of(dtype)`. `DT_BOOL` bytes are checked to be 0 or 1.
    Pod {
        dtype: DataType,
        shape: Vec<i64>,
        data: MappedBytes,
    },
    /// `DT_STRING`: one byte string per element, row-major.
    Strings {
        shape: Vec<i64>,
        values: Vec<Vec<u8>>,
    },
}

impl TensorBytes {
    /// The tensor's shape (every dimension is non-negative).
    pub fn shape(&self) -> &[i64] {
        match self {
            TensorBytes::Pod { shape, .. } | TensorBytes::Strings { shape, .. } => shape,
        }
    }

    /// The tensor's dtype.
    pub fn dtype(&self) -> DataType {
        match self {
            TensorBytes::Pod { dtype, .. } => *dtype,
            TensorBytes::Strings { .. } => DataType::DtString,
        }
    }
}

/// Size in bytes of one element of a fixed-size dtype this reader supports, else `None`.
pub fn pod_size(dtype: DataType) -> Option<usize> {
    use DataType::*;
    Some(match dtype {
        DtBool | DtInt8 | DtUint8 => 1,
        DtHalf | DtBfloat16 | DtInt16 | DtUint16 => 2,
        DtFloat | DtInt32 | DtUint32 => 4,
        DtDouble | DtInt64 | DtUint64 => 8,
        _ => return None,
    })
}

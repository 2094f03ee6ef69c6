//! Errors for data-dependent failures (indices and ids that come from tensors).

use thiserror::Error;

/// A failure caused by the *values* of the inputs (not by caller-checked shapes).
///
/// Shape and length mismatches are programming errors of the caller and panic; values that
/// come from data (gather indices, segment ids) are reported through this type instead.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KernelError {
    /// An index (gather row, sparse segment index) is negative or `>= bound`.
    #[error("index {index} at position {position} is out of range [0, {bound})")]
    IndexOutOfRange {
        /// The offending value.
        index: i64,
        /// Its position in the index list.
        position: usize,
        /// The exclusive upper bound.
        bound: usize,
    },
    /// A segment id is negative (where not allowed) or `>= num_segments`.
    #[error("segment id {id} at position {position} is out of range [0, {num_segments})")]
    SegmentIdOutOfRange {
        /// The offending id.
        id: i64,
        /// Its position in the id list.
        position: usize,
        /// The number of output segments.
        num_segments: usize,
    },
    /// Segment ids that must be sorted are not.
    #[error("segment ids are not sorted: id {id} at position {position} follows {previous}")]
    SegmentIdsNotSorted {
        /// The id that is smaller than its predecessor.
        id: i64,
        /// Its position.
        position: usize,
        /// The preceding id.
        previous: i64,
    },
}

/// An integer type usable as a gather index or a segment id.
///
/// Values are converted to `i64` (`usize`/`u64` values above `i64::MAX` saturate, and are then
/// out of range for any real buffer anyway).
pub trait IndexLike: Copy + Send + Sync {
    /// The value as a signed 64-bit integer.
    fn to_i64(self) -> i64;
}

macro_rules! index_like {
    ($($t:ty),*) => {$(
        impl IndexLike for $t {
            #[inline(always)]
            fn to_i64(self) -> i64 {
                i64::try_from(self).unwrap_or(i64::MAX)
            }
        }
    )*};
}
index_like!(i32, i64, u32, u64, usize);

/// Checks `0 <= idx < bound` and returns it as `usize`.
#[inline(always)]
pub(crate) fn check_index<I: IndexLike>(
    idx: I,
    position: usize,
    bound: usize,
) -> Result<usize, KernelError> {
    let v = idx.to_i64();
    if v >= 0 && (v as u64) < bound as u64 {
        Ok(v as usize)
    } else {
        Err(KernelError::IndexOutOfRange {
            index: v,
            position,
            bound,
        })
    }
}

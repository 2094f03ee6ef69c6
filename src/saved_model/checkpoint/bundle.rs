//! `BundleReader`: the bundle header and entries from `<prefix>.index`, tensor bytes from
//! memory-mapped `<prefix>.data-*` shards (TF core/util/tensor_bundle/tensor_bundle.cc).

use std::ffi::OsString;
use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use prost::Message;
use rayon::prelude::*;
use smallvec::SmallVec;

use super::slice::{self, Extent};
use super::table::{self, varint64};
use super::{pod_size, unmask, CheckpointError, MappedBytes, Storage, TensorBytes};
use crate::proto::bundle_header_proto::Endianness;
use crate::proto::{BundleEntryProto, BundleHeaderProto, DataType};

/// `kTensorBundleVersion`: the consumer version this reader implements.
const BUNDLE_VERSION: i32 = 1;
/// `kTensorBundleMinProducer`.
const MIN_PRODUCER: i32 = 0;

/// One tensor's index entry, checked at open: a known rank, non-negative dimensions, and
/// (unless sliced) a shard id below `num_shards` and a non-negative offset and size.
#[derive(Debug)]
pub struct Entry {
    dtype: i32,
    shape: SmallVec<[i64; 4]>,
    shard_id: u32,
    offset: u64,
    size: u64,
    crc32c: u32,
    sliced: bool,
    /// For a partitioned variable, the `TensorSliceProto`s whose entries hold its bytes.
    slices: Vec<Box<[Extent]>>,
    /// Set once the data checksum has matched; a race only verifies twice.
    pub(super) verified: AtomicBool,
}

impl Entry {
    /// The dtype, or `None` for a `DataType` number this build does not know.
    pub fn dtype(&self) -> Option<DataType> {
        DataType::try_from(self.dtype).ok()
    }

    /// The raw `DataType` number as stored.
    pub fn dtype_code(&self) -> i32 {
        self.dtype
    }

    /// Dimensions, outermost first; empty for a scalar.
    pub fn shape(&self) -> &[i64] {
        &self.shape
    }

    /// Product of the dimensions, or `None` on `u64` overflow.
    pub fn num_elements(&self) -> Option<u64> {
        self.shape
            .iter()
            .try_fold(1u64, |n, &d| n.checked_mul(d as u64))
    }

    /// Index of the data shard holding the bytes.
    pub fn shard_id(&self) -> u32 {
        self.shard_id
    }

    /// Byte offset of the tensor in its shard.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Byte length of the tensor in its shard.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The stored (masked) crc32c of the tensor bytes.
    pub fn crc32c(&self) -> u32 {
        self.crc32c
    }

    /// True for a partitioned variable, whose bytes live under per-slice keys (and are
    /// assembled into one buffer by [`BundleReader::read`]).
    pub fn is_sliced(&self) -> bool {
        self.sliced
    }
}

/// The parsed index: entries sorted bytewise by key (the table's order), for binary search.
#[derive(Debug)]
pub(super) struct Index {
    pub num_shards: u32,
    pub keys: Keys,
    pub entries: Vec<Entry>,
    /// Entries of partitioned variables' slices, under `EncodeTensorNameSlice` keys.
    pub slice_entries: Vec<(Box<[u8]>, Entry)>,
}

#[derive(Debug)]
struct Shard {
    path: PathBuf,
    map: Arc<memmap2::Mmap>,
}

/// A checkpoint opened for reading: its validated index plus its memory-mapped data shards.
///
/// `Send + Sync`: share one reader between threads; each tensor is checksummed on first read.
#[derive(Debug)]
pub struct BundleReader {
    index_path: PathBuf,
    /// `keys.get(i)` is the key of `entries[i]`.
    keys: Keys,
    entries: Vec<Entry>,
    slice_entries: Vec<(Box<[u8]>, Entry)>,
    shards: Vec<Shard>,
}

/// Sorted tensor keys in one buffer: one allocation instead of one per key.
#[derive(Debug, Default)]
pub(super) struct Keys {
    text: String,
    /// End offset of each key in `text`; key `i` starts where key `i - 1` ends.
    ends: Vec<usize>,
}

impl Keys {
    fn push(&mut self, key: &str) {
        self.text.push_str(key);
        self.ends.push(self.text.len());
    }

    pub(super) fn len(&self) -> usize {
        self.ends.len()
    }

    /// Key `i`; `i < len()`.
    pub(super) fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        // Both offsets sit between whole keys pushed as `&str`, so on char boundaries.
        &self.text[start..self.ends[i]]
    }

    /// Binary search; keys are strictly increasing bytewise (checked by the table reader).
    fn find(&self, key: &str) -> Option<usize> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.get(mid).cmp(key) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }
}

fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(prefix.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

/// Opens `path` for reading if, once canonical, it is a regular file inside the canonical
/// `root`. The type is checked on the canonical (symlink-free) path before opening, because
/// opening a FIFO blocks until a writer appears; a file swapped by a concurrent local writer
/// between check and open is outside the threat model (see SECURITY.md).
fn open_confined(path: &Path, root: &Path, shard: bool) -> Result<File, CheckpointError> {
    let refused = |what: &'static str| CheckpointError::Refused {
        path: path.to_path_buf(),
        what,
    };
    let io = |source: std::io::Error| match source.kind() {
        std::io::ErrorKind::NotFound if shard => CheckpointError::MissingShard {
            path: path.to_path_buf(),
        },
        _ => CheckpointError::Io {
            path: path.to_path_buf(),
            source,
        },
    };
    let canon = path.canonicalize().map_err(io)?;
    if !canon.starts_with(root) {
        return Err(refused("resolves outside the model directory"));
    }
    if !std::fs::metadata(&canon).map_err(io)?.is_file() {
        return Err(refused("is not a regular file (FIFO, device or directory)"));
    }
    File::open(&canon).map_err(io)
}

impl BundleReader {
    /// Opens the checkpoint at `prefix` (e.g. `<model>/variables/variables`).
    ///
    /// Reads and validates all of `<prefix>.index` and memory-maps every
    /// `<prefix>.data-NNNNN-of-MMMMM` shard; tensor bytes are not read until [`Self::read`].
    ///
    /// # Errors
    /// [`CheckpointError::Io`] if the index cannot be read, a table error
    /// ([`CheckpointError::BadMagic`], [`CheckpointError::Truncated`], ...) if it is malformed,
    /// [`CheckpointError::Header`] or [`CheckpointError::InvalidEntry`] for bad protos, and
    /// [`CheckpointError::MissingShard`] naming the first absent data file.
    pub fn open(prefix: &Path) -> Result<BundleReader, CheckpointError> {
        let dir = match prefix.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        Self::open_within(prefix, dir)
    }

    /// [`Self::open`], refusing ([`CheckpointError::Refused`]) any index or shard that is not
    /// a regular file inside `root` after canonicalisation (symlinks out, FIFOs, devices).
    ///
    /// # Errors
    /// As [`Self::open`], plus [`CheckpointError::Refused`].
    pub fn open_within(prefix: &Path, root: &Path) -> Result<BundleReader, CheckpointError> {
        let root = root.canonicalize().map_err(|source| CheckpointError::Io {
            path: root.to_path_buf(),
            source,
        })?;
        let index_path = with_suffix(prefix, ".index");
        let bytes = {
            use std::io::Read;
            let mut f = open_confined(&index_path, &root, false)?;
            let mut v = Vec::new();
            f.read_to_end(&mut v)
                .map_err(|source| CheckpointError::Io {
                    path: index_path.clone(),
                    source,
                })?;
            v
        };
        let Index {
            num_shards,
            keys,
            entries,
            slice_entries,
        } = parse_index(&index_path, &bytes)?;
        let mut shards = Vec::new();
        for id in 0..num_shards {
            let path = with_suffix(prefix, &format!(".data-{id:05}-of-{num_shards:05}"));
            let file = open_confined(&path, &root, true)?;
            // SAFETY: the map is read-only and private to this reader. As with any mmap, a
            // process truncating or rewriting the shard meanwhile may fault us; checkpoints are
            // immutable once written, which is the contract TF's own reader relies on too.
            let map =
                unsafe { memmap2::Mmap::map(&file) }.map_err(|source| CheckpointError::Io {
                    path: path.clone(),
                    source,
                })?;
            shards.push(Shard {
                path,
                map: Arc::new(map),
            });
        }
        Ok(BundleReader {
            index_path,
            keys,
            entries,
            slice_entries,
            shards,
        })
    }

    /// Number of data shards (`num_shards` from the header).
    pub fn num_shards(&self) -> usize {
        self.shards.len()
    }

    /// Path of the `.index` file.
    pub fn index_path(&self) -> &Path {
        &self.index_path
    }

    /// Number of tensor entries (excluding the header and per-slice entries).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if the checkpoint holds no tensors.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Tensor keys in sorted (bytewise) order.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        (0..self.keys.len()).map(|i| self.keys.get(i))
    }

    /// `(key, entry)` pairs in sorted (bytewise) order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &Entry)> + '_ {
        self.keys().zip(&self.entries)
    }

    /// The index entry for `key`, if present.
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        let i = self.keys.find(key)?;
        self.entries.get(i)
    }

    /// Reads tensor `key`, verifying its checksum on the first read.
    ///
    /// Fixed-size dtypes come back as [`TensorBytes::Pod`] borrowing the mapped shard (or, for
    /// a partitioned variable, an owned buffer assembled from its slices); `DT_STRING` is
    /// decoded into [`TensorBytes::Strings`].
    ///
    /// # Errors
    /// [`CheckpointError::NotFound`]; [`CheckpointError::Unsupported`] for dtypes other than
    /// strings and fixed-size numbers or bool, and for partitioned string tensors;
    /// [`CheckpointError::OutOfBounds`], [`CheckpointError::SizeMismatch`],
    /// [`CheckpointError::TensorChecksum`] or [`CheckpointError::InvalidData`] for bad bytes;
    /// [`CheckpointError::InvalidEntry`] for slices that do not tile the tensor.
    pub fn read(&self, key: &str) -> Result<TensorBytes, CheckpointError> {
        let entry = self
            .entry(key)
            .ok_or_else(|| CheckpointError::NotFound { key: key.into() })?;
        let unsupported = |what: String| CheckpointError::Unsupported {
            key: key.into(),
            what,
        };
        let dtype = entry
            .dtype()
            .ok_or_else(|| unsupported(format!("dtype {}", entry.dtype)))?;
        let shape = entry.shape.to_vec();
        match pod_size(dtype) {
            Some(elem_size) if entry.sliced => {
                let data = self.assemble(key, entry, dtype, elem_size)?;
                Ok(TensorBytes::Pod { dtype, shape, data })
            }
            Some(elem_size) => {
                let data = self.read_pod(key, entry, dtype, elem_size)?;
                Ok(TensorBytes::Pod { dtype, shape, data })
            }
            None if dtype == DataType::DtString && entry.sliced => {
                Err(unsupported("partitioned DT_STRING tensor".into()))
            }
            None if dtype == DataType::DtString => {
                let values = self.read_strings(key, entry)?;
                Ok(TensorBytes::Strings { shape, values })
            }
            None => Err(unsupported(format!("dtype {}", dtype.as_str_name()))),
        }
    }

    fn invalid_entry(&self, key: &str, what: String) -> CheckpointError {
        CheckpointError::InvalidEntry {
            path: self.index_path.clone(),
            key: key.into(),
            what,
        }
    }

    fn num_elements(&self, key: &str, entry: &Entry) -> Result<u64, CheckpointError> {
        entry
            .num_elements()
            .ok_or_else(|| self.invalid_entry(key, "element count overflows".into()))
    }

    /// The entry's shard and its checked byte range there.
    fn locate(&self, key: &str, entry: &Entry) -> Result<(&Shard, Range<usize>), CheckpointError> {
        let shard = self.shards.get(entry.shard_id as usize).ok_or_else(|| {
            self.invalid_entry(key, format!("shard_id {} out of range", entry.shard_id))
        })?;
        let len = shard.map.len();
        let range = usize::try_from(entry.offset)
            .ok()
            .zip(usize::try_from(entry.size).ok())
            .and_then(|(start, size)| Some(start..start.checked_add(size)?))
            .filter(|r| r.end <= len)
            .ok_or_else(|| CheckpointError::OutOfBounds {
                key: key.into(),
                path: shard.path.clone(),
                offset: entry.offset,
                size: entry.size,
                len: len as u64,
            })?;
        Ok((shard, range))
    }

    fn read_pod(
        &self,
        key: &str,
        entry: &Entry,
        dtype: DataType,
        elem_size: usize,
    ) -> Result<MappedBytes, CheckpointError> {
        let expected = self.num_elements(key, entry)?.checked_mul(elem_size as u64);
        if expected != Some(entry.size) {
            return Err(CheckpointError::SizeMismatch {
                key: key.into(),
                path: self.index_path.clone(),
                expected: expected.unwrap_or(u64::MAX),
                got: entry.size,
            });
        }
        let (shard, range) = self.locate(key, entry)?;
        if !entry.verified.load(Ordering::Acquire) {
            let bytes = &shard.map[range.clone()];
            check_crc(key, shard, entry, crc_unresident(&shard.map, range.clone()))?;
            if dtype == DataType::DtBool && bytes.iter().any(|&b| b > 1) {
                return Err(invalid_data(key, shard, "bool byte other than 0 or 1"));
            }
            entry.verified.store(true, Ordering::Release);
        }
        Ok(MappedBytes {
            storage: Storage::Mapped(Arc::clone(&shard.map)),
            range,
        })
    }

    fn read_strings(&self, key: &str, entry: &Entry) -> Result<Vec<Vec<u8>>, CheckpointError> {
        let n = self.num_elements(key, entry)?;
        let (shard, range) = self.locate(key, entry)?;
        let verify = !entry.verified.load(Ordering::Acquire);
        let (values, crc) = decode_strings(&shard.map[range], n, verify).map_err(|e| match e {
            StringError::Invalid(what) => invalid_data(key, shard, what),
            StringError::LengthChecksum { expected, got } => CheckpointError::TensorChecksum {
                key: key.into(),
                path: shard.path.clone(),
                expected,
                got,
            },
        })?;
        if verify {
            check_crc(key, shard, entry, crc)?;
            entry.verified.store(true, Ordering::Release);
        }
        Ok(values)
    }

    /// Builds a partitioned tensor from its slices, which must tile it exactly.
    fn assemble(
        &self,
        key: &str,
        entry: &Entry,
        dtype: DataType,
        elem_size: usize,
    ) -> Result<MappedBytes, CheckpointError> {
        let total = self.num_elements(key, entry)?;
        let mut parts: Vec<(Vec<(u64, u64)>, MappedBytes)> = Vec::with_capacity(entry.slices.len());
        let mut covered = 0u64;
        for extents in &entry.slices {
            let ext = slice::resolve(extents, &entry.shape).ok_or_else(|| {
                self.invalid_entry(key, format!("slice {extents:?} out of range"))
            })?;
            let slice_key = slice::slice_key(key, extents);
            let part = self
                .slice_entries
                .binary_search_by(|(k, _)| (**k).cmp(&slice_key[..]))
                .map(|i| &self.slice_entries[i].1)
                .map_err(|_| self.invalid_entry(key, format!("slice {extents:?} not stored")))?;
            let lengths = ext.iter().map(|&(_, len)| len as i64);
            if part.dtype != entry.dtype || !part.shape.iter().copied().eq(lengths) {
                let what = format!("slice {extents:?} has another dtype or shape");
                return Err(self.invalid_entry(key, what));
            }
            if parts.iter().any(|(other, _)| slice::overlap(other, &ext)) {
                return Err(self.invalid_entry(key, format!("slice {extents:?} overlaps another")));
            }
            let bytes = self.read_pod(key, part, dtype, elem_size)?;
            covered += bytes.len() as u64 / elem_size as u64;
            parts.push((ext, bytes));
        }
        if covered != total {
            return Err(
                self.invalid_entry(key, format!("slices cover {covered} of {total} elements"))
            );
        }
        // `covered` counts verified, mapped bytes, so this allocation is bounded by the shards.
        let len = (total as usize) * elem_size;
        let mut words = vec![0u64; len.div_ceil(8)];
        let dst = &mut bytemuck::cast_slice_mut::<u64, u8>(&mut words)[..len];
        let dims: Vec<u64> = entry.shape.iter().map(|&d| d as u64).collect();
        for (ext, bytes) in &parts {
            slice::copy_into(dst, &dims, ext, bytes, elem_size);
        }
        Ok(MappedBytes {
            storage: Storage::Owned(Arc::new(words)),
            range: 0..len,
        })
    }
}

/// Bytes checksummed per step of [`crc_unresident`].
const CRC_CHUNK: usize = 1 << 22;

/// crc32c of `map[range]`, without leaving a large range resident in this process: it is
/// checksummed in chunks and each chunk's pages are dropped from our page tables right after
/// (`MADV_DONTNEED`). The map is a read-only file mapping, so dropping changes no byte: the
/// pages stay in the page cache and fault back in when an op reads them (an embedding lookup
/// then touches only the rows it needs, instead of the whole matrix staying in our RSS).
/// Ranges of many chunks are split over rayon's threads and the parts' crcs combined.
fn crc_unresident(map: &memmap2::Mmap, range: Range<usize>) -> u32 {
    let len = range.len();
    if len < 2 * CRC_CHUNK {
        let crc = crc32c::crc32c(&map[range.clone()]);
        drop_pages(map, range);
        return crc;
    }
    let parts = rayon::current_num_threads().clamp(1, len / CRC_CHUNK);
    let per = len.div_ceil(parts);
    let crcs: Vec<(u32, usize)> = (0..parts)
        .into_par_iter()
        .map(|k| {
            let start = range.start + k * per;
            let end = range.end.min(start + per);
            (crc_chunks_dropped(map, start..end), end - start)
        })
        .collect();
    crcs.into_iter()
        .fold(0u32, |acc, (crc, n)| crc32c::crc32c_combine(acc, crc, n))
}

/// Drops this process's resident pages lying wholly inside `map[range]` (`MADV_DONTNEED` on a
/// read-only file mapping: no byte changes, later reads fault them back in from the page
/// cache). Pages shared with neighbouring tensors stay.
pub(super) fn drop_pages(map: &memmap2::Mmap, range: Range<usize>) {
    // 4 KiB is the smallest page size; on larger pages memmap2 rounds the start down, which
    // at worst drops a neighbour's page too (it faults back in when read).
    const PAGE: usize = 4096;
    let start = range.start.next_multiple_of(PAGE);
    let end = range.end.min(map.len()) / PAGE * PAGE;
    if end > start {
        #[cfg(unix)]
        // SAFETY: as in `crc_chunks_dropped`: a read-only mapping of an immutable file, so
        // MADV_DONTNEED discards no data and outstanding borrows stay valid.
        let _ = unsafe {
            map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, end - start)
        };
    }
}

fn crc_chunks_dropped(map: &memmap2::Mmap, range: Range<usize>) -> u32 {
    let mut crc = 0u32;
    let mut start = range.start;
    while start < range.end {
        let end = range.end.min(start.saturating_add(CRC_CHUNK));
        crc = crc32c::crc32c_append(crc, &map[start..end]);
        #[cfg(unix)]
        // SAFETY: `map` is a read-only (PROT_READ) mapping of an immutable file, so
        // MADV_DONTNEED discards no data: later reads see the same bytes, refaulted from the
        // page cache, and outstanding `&[u8]` borrows stay valid. Failure only means the pages
        // stay resident.
        let _ = unsafe {
            map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, end - start)
        };
        start = end;
    }
    crc
}

#[cfg(test)]
mod crc_tests {
    use super::*;

    #[test]
    fn chunked_parallel_crc_matches_plain_crc() {
        let mut f = tempfile::tempfile().unwrap();
        let n = 5 * CRC_CHUNK + 12_345;
        let bytes: Vec<u8> = (0..n).map(|i| (i * 131 % 251) as u8).collect();
        std::io::Write::write_all(&mut f, &bytes).unwrap();
        // SAFETY: a private temp file nobody else writes.
        let map = unsafe { memmap2::Mmap::map(&f) }.unwrap();
        for range in [0..n, 7..n - 3, 1..2 * CRC_CHUNK + 1, 100..200, 0..0] {
            let want = crc32c::crc32c(&bytes[range.clone()]);
            assert_eq!(crc_unresident(&map, range.clone()), want, "{range:?}");
        }
        // The dropped pages read back unchanged.
        assert!(map[..] == bytes[..]);
    }
}

fn check_crc(key: &str, shard: &Shard, entry: &Entry, got: u32) -> Result<(), CheckpointError> {
    let expected = unmask(entry.crc32c);
    if got == expected {
        return Ok(());
    }
    Err(CheckpointError::TensorChecksum {
        key: key.into(),
        path: shard.path.clone(),
        expected,
        got,
    })
}

fn invalid_data(key: &str, shard: &Shard, what: &str) -> CheckpointError {
    CheckpointError::InvalidData {
        path: shard.path.clone(),
        key: key.into(),
        what: what.into(),
    }
}

pub(super) enum StringError {
    Invalid(&'static str),
    LengthChecksum { expected: u32, got: u32 },
}

/// Decodes a `DT_STRING` tensor: `n` varint64 lengths, the masked crc32c of the lengths, then
/// the string bytes back to back. Returns the values and, if `verify`, the running crc32c
/// to compare with the entry's.
///
/// TF quirk (tensor_bundle.cc `WriteStringTensor`): the crc covers each length as a
/// little-endian u32 (u64 only if it exceeds `u32::MAX`), not its varint bytes, then the 4
/// stored checksum bytes, then the string bytes.
pub(super) fn decode_strings(
    bytes: &[u8],
    n: u64,
    verify: bool,
) -> Result<(Vec<Vec<u8>>, u32), StringError> {
    // Every length takes at least one byte, which bounds the allocation below.
    let n = usize::try_from(n)
        .ok()
        .filter(|&n| n <= bytes.len())
        .ok_or(StringError::Invalid("more elements than bytes"))?;
    let mut crc = 0u32;
    let mut pos = 0;
    let mut total = 0u64;
    for _ in 0..n {
        let len = varint64(bytes, &mut pos).ok_or(StringError::Invalid("bad length varint"))?;
        total = total
            .checked_add(len)
            .ok_or(StringError::Invalid("lengths overflow"))?;
        if verify {
            crc = match u32::try_from(len) {
                Ok(len32) => crc32c::crc32c_append(crc, &len32.to_le_bytes()),
                Err(_) => crc32c::crc32c_append(crc, &len.to_le_bytes()),
            };
        }
    }
    let lengths_end = pos;
    let stored = bytes
        .get(pos..pos + 4)
        .ok_or(StringError::Invalid("truncated before the length checksum"))?;
    if verify {
        let stored: [u8; 4] = stored.try_into().unwrap_or_default();
        let expected = unmask(u32::from_le_bytes(stored));
        if expected != crc {
            return Err(StringError::LengthChecksum { expected, got: crc });
        }
        crc = crc32c::crc32c_append(crc, &stored);
    }
    pos += 4;
    let payload = &bytes[pos..];
    if total != payload.len() as u64 {
        return Err(StringError::Invalid(
            "string lengths do not match the entry size",
        ));
    }
    if verify {
        crc = crc32c::crc32c_append(crc, payload);
    }
    let mut values = Vec::with_capacity(n);
    let (mut len_pos, mut start) = (0, 0usize);
    while len_pos < lengths_end {
        // The lengths were validated above and sum to `payload.len()`.
        let value = varint64(bytes, &mut len_pos)
            .and_then(|len| payload.get(start..start.checked_add(usize::try_from(len).ok()?)?))
            .ok_or(StringError::Invalid("bad string length"))?;
        start += value.len();
        values.push(value.to_vec());
    }
    Ok((values, crc))
}

/// Parses and validates the whole index table.
pub(super) fn parse_index(path: &Path, bytes: &[u8]) -> Result<Index, CheckpointError> {
    let header_err = |what: String| CheckpointError::Header {
        path: path.to_owned(),
        what,
    };
    let mut num_shards: Option<u32> = None;
    let mut keys = Keys::default();
    let mut entries = Vec::new();
    let mut slice_entries = Vec::new();
    table::for_each_entry(path, bytes, |key, value| {
        let Some(num_shards) = num_shards else {
            // The header has the empty key, which sorts first.
            if !key.is_empty() {
                return Err(header_err("missing (first key is not empty)".into()));
            }
            num_shards = Some(parse_header(path, value)?);
            return Ok(());
        };
        // `EncodeTensorNameSlice` keys start with a 0 byte and are not UTF-8 in general.
        if key.first() == Some(&0) {
            let entry = parse_entry(path, &String::from_utf8_lossy(key), value, num_shards)?;
            slice_entries.push((Box::from(key), entry));
            return Ok(());
        }
        let key = std::str::from_utf8(key).map_err(|_| CheckpointError::Corrupt {
            path: path.to_owned(),
            what: format!("non-UTF-8 key {:?}", String::from_utf8_lossy(key)),
        })?;
        let entry = parse_entry(path, key, value, num_shards)?;
        keys.push(key);
        entries.push(entry);
        Ok(())
    })?;
    let num_shards = num_shards.ok_or_else(|| header_err("missing (empty table)".into()))?;
    Ok(Index {
        num_shards,
        keys,
        entries,
        slice_entries,
    })
}

fn parse_header(path: &Path, value: &[u8]) -> Result<u32, CheckpointError> {
    let header_err = |what: String| CheckpointError::Header {
        path: path.to_owned(),
        what,
    };
    let header = BundleHeaderProto::decode(value).map_err(|source| CheckpointError::Decode {
        path: path.to_owned(),
        key: String::new(),
        source,
    })?;
    let num_shards = u32::try_from(header.num_shards)
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| header_err(format!("num_shards {}", header.num_shards)))?;
    match Endianness::try_from(header.endianness) {
        Ok(Endianness::Little) => {}
        Ok(Endianness::Big) => return Err(header_err("big-endian bundles are unsupported".into())),
        Err(_) => return Err(header_err(format!("endianness {}", header.endianness))),
    }
    let version = header.version.unwrap_or_default();
    if version.producer < MIN_PRODUCER {
        return Err(header_err(format!(
            "producer version {} too old",
            version.producer
        )));
    }
    if version.min_consumer > BUNDLE_VERSION {
        return Err(header_err(format!(
            "requires reader version {}",
            version.min_consumer
        )));
    }
    if version.bad_consumers.contains(&BUNDLE_VERSION) {
        return Err(header_err(format!(
            "reader version {BUNDLE_VERSION} is blacklisted"
        )));
    }
    Ok(num_shards)
}

/// `BundleEntryProto` fields before validation.
#[derive(Default)]
pub(super) struct RawEntry {
    pub dtype: i32,
    pub shape: SmallVec<[i64; 4]>,
    pub unknown_rank: bool,
    pub shard_id: i32,
    pub offset: i64,
    pub size: i64,
    pub crc32c: u32,
    pub slices: Vec<Box<[Extent]>>,
}

impl From<BundleEntryProto> for RawEntry {
    fn from(proto: BundleEntryProto) -> RawEntry {
        let shape = proto.shape.unwrap_or_default();
        RawEntry {
            dtype: proto.dtype,
            shape: shape.dim.iter().map(|d| d.size).collect(),
            unknown_rank: shape.unknown_rank,
            shard_id: proto.shard_id,
            offset: proto.offset,
            size: proto.size,
            crc32c: proto.crc32c,
            slices: proto.slices.iter().map(slice::extents).collect(),
        }
    }
}

/// Takes a length-delimited field's body.
fn delimited<'a>(buf: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    let len = usize::try_from(varint64(buf, pos)?).ok()?;
    let body = buf.get(*pos..pos.checked_add(len)?)?;
    *pos += len;
    Some(body)
}

/// Reads a field key, or `None` for field 0, an over-long key, a group or unknown wire type.
fn field_key(buf: &[u8], pos: &mut usize) -> Option<(u64, u64)> {
    let key = varint64(buf, pos).filter(|&k| k <= u64::from(u32::MAX))?;
    let (field, wire) = (key >> 3, key & 7);
    (field != 0 && matches!(wire, 0 | 1 | 2 | 5)).then_some((field, wire))
}

/// Skips a field of an unknown number.
fn skip_field(buf: &[u8], pos: &mut usize, wire: u64) -> Option<()> {
    match wire {
        0 => varint64(buf, pos).map(drop),
        2 => delimited(buf, pos).map(drop),
        _ => {
            let end = pos
                .checked_add(if wire == 1 { 8 } else { 4 })
                .filter(|&e| e <= buf.len())?;
            *pos = end;
            Some(())
        }
    }
}

/// Decodes an unsliced `BundleEntryProto` without heap allocation (for rank <= 4), following
/// protobuf merge rules: the last scalar wins and repeated shape fields append.
///
/// `None` for anything unusual (slices, groups, wrong wire types, bad varints): the caller
/// then decodes with prost, which decides the exact result or error.
pub(super) fn decode_entry_fast(buf: &[u8]) -> Option<RawEntry> {
    let mut e = RawEntry::default();
    let mut pos = 0;
    while pos < buf.len() {
        let (field, wire) = field_key(buf, &mut pos)?;
        match (field, wire) {
            (1, 0) => e.dtype = varint64(buf, &mut pos)? as i32,
            (2, 2) => decode_shape_fast(delimited(buf, &mut pos)?, &mut e)?,
            (3, 0) => e.shard_id = varint64(buf, &mut pos)? as i32,
            (4, 0) => e.offset = varint64(buf, &mut pos)? as i64,
            (5, 0) => e.size = varint64(buf, &mut pos)? as i64,
            (6, 5) => {
                let bytes = buf.get(pos..pos + 4)?;
                e.crc32c = u32::from_le_bytes(bytes.try_into().ok()?);
                pos += 4;
            }
            (1..=7, _) => return None,
            _ => skip_field(buf, &mut pos, wire)?,
        }
    }
    Some(e)
}

fn decode_shape_fast(buf: &[u8], e: &mut RawEntry) -> Option<()> {
    let mut pos = 0;
    while pos < buf.len() {
        let (field, wire) = field_key(buf, &mut pos)?;
        match (field, wire) {
            (2, 2) => {
                let dim = delimited(buf, &mut pos)?;
                let (mut at, mut size) = (0, 0);
                while at < dim.len() {
                    match field_key(dim, &mut at)? {
                        (1, 0) => size = varint64(dim, &mut at)? as i64,
                        (1 | 2, 2) => delimited(dim, &mut at).map(drop)?,
                        (1 | 2, _) => return None,
                        (_, wire) => skip_field(dim, &mut at, wire)?,
                    }
                }
                e.shape.push(size);
            }
            (3, 0) => e.unknown_rank = varint64(buf, &mut pos)? != 0,
            (2 | 3, _) => return None,
            _ => skip_field(buf, &mut pos, wire)?,
        }
    }
    Some(())
}

fn parse_entry(
    path: &Path,
    key: &str,
    value: &[u8],
    num_shards: u32,
) -> Result<Entry, CheckpointError> {
    let invalid = |what: String| CheckpointError::InvalidEntry {
        path: path.to_owned(),
        key: key.into(),
        what,
    };
    let raw = match decode_entry_fast(value) {
        Some(raw) => raw,
        None => RawEntry::from(BundleEntryProto::decode(value).map_err(|source| {
            CheckpointError::Decode {
                path: path.to_owned(),
                key: key.into(),
                source,
            }
        })?),
    };
    if raw.unknown_rank {
        return Err(invalid("unknown rank".into()));
    }
    if let Some(dim) = raw.shape.iter().find(|&&d| d < 0) {
        return Err(invalid(format!("dimension {dim}")));
    }
    let sliced = !raw.slices.is_empty();
    // Sliced entries carry no location of their own: TF ignores these fields for them.
    let located = |v: i64, what: &str| match (sliced, u64::try_from(v)) {
        (true, _) => Ok(0),
        (false, Ok(v)) => Ok(v),
        (false, Err(_)) => Err(invalid(format!("{what} {v}"))),
    };
    let shard_id = located(i64::from(raw.shard_id), "shard_id")? as u32;
    if !sliced && shard_id >= num_shards {
        return Err(invalid(format!(
            "shard_id {shard_id} not below num_shards {num_shards}"
        )));
    }
    Ok(Entry {
        dtype: raw.dtype,
        shape: raw.shape,
        shard_id,
        offset: located(raw.offset, "offset")?,
        size: located(raw.size, "size")?,
        crc32c: raw.crc32c,
        sliced,
        slices: raw.slices,
        verified: AtomicBool::new(false),
    })
}

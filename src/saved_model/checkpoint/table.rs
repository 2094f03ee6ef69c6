//! Read-only LevelDB-style SSTable, as written by TF's core/lib/io/table_builder.cc.
//!
//! Only full in-order iteration is offered: the bundle reader loads every entry once at open,
//! so there is no seek, no block cache and no filter support. Every length, offset and varint
//! comes from the file and is bounds-checked; nothing here can panic on input bytes.
//!
//! Layout (core/lib/io/format.h): data blocks, a metaindex block, an index block whose values
//! are handles of the data blocks, then a 48-byte footer. Each block is followed by a 5-byte
//! trailer: compression type (0 none, 1 Snappy) and the masked crc32c of block + type byte.

use std::borrow::Cow;
use std::path::Path;

use super::{unmask, CheckpointError};

/// `kTableMagicNumber` (core/lib/io/format.h), stored as two little-endian fixed32.
pub(crate) const TABLE_MAGIC: u64 = 0xdb47_7524_8b80_fb57;
/// Two varint64 block handles, zero-padded to 40 bytes, then the 8-byte magic.
pub(crate) const FOOTER_LEN: usize = 48;
const HANDLES_LEN: usize = 40;
const TRAILER_LEN: usize = 5;
const NO_COMPRESSION: u8 = 0;
const SNAPPY: u8 = 1;
/// Snappy emits at most 64 bytes per 3-byte copy op; a larger claimed ratio is corrupt, and
/// rejecting it bounds the allocation a hostile block can cause.
const MAX_SNAPPY_RATIO: usize = 32;

/// Decodes a little-endian base-128 varint of at most `max_bytes` bytes that must fit in
/// `bits` bits; advances `pos` past it. `None` if truncated, overlong or overflowing.
fn varint(buf: &[u8], pos: &mut usize, max_bytes: usize, bits: u32) -> Option<u64> {
    let mut value = 0u64;
    for i in 0..max_bytes {
        let byte = *buf.get(*pos + i)?;
        let shift = 7 * i as u32;
        let part = u64::from(byte & 0x7f);
        if shift + 7 > bits && part >> (bits - shift) != 0 {
            return None;
        }
        value |= part << shift;
        if byte & 0x80 == 0 {
            *pos += i + 1;
            return Some(value);
        }
    }
    None
}

/// Varint64 (at most 10 bytes).
pub(crate) fn varint64(buf: &[u8], pos: &mut usize) -> Option<u64> {
    varint(buf, pos, 10, 64)
}

/// Varint32 (at most 5 bytes).
pub(crate) fn varint32(buf: &[u8], pos: &mut usize) -> Option<u32> {
    varint(buf, pos, 5, 32).map(|v| v as u32)
}

fn fixed32(buf: &[u8], at: usize) -> Option<u32> {
    let bytes = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

#[derive(Debug, Clone, Copy)]
struct BlockHandle {
    offset: u64,
    size: u64,
}

impl BlockHandle {
    fn decode(buf: &[u8], pos: &mut usize) -> Option<BlockHandle> {
        Some(BlockHandle {
            offset: varint64(buf, pos)?,
            size: varint64(buf, pos)?,
        })
    }
}

/// A table file's bytes plus its path, for error context.
struct Table<'a> {
    path: &'a Path,
    file: &'a [u8],
}

impl<'a> Table<'a> {
    fn corrupt(&self, what: impl Into<String>) -> CheckpointError {
        CheckpointError::Corrupt {
            path: self.path.to_owned(),
            what: what.into(),
        }
    }

    /// Reads, checksums and (if needed) decompresses one block; blocks end before the footer.
    fn block(&self, handle: BlockHandle) -> Result<Cow<'a, [u8]>, CheckpointError> {
        let blocks_end = self.file.len() - FOOTER_LEN;
        let truncated = || CheckpointError::Truncated {
            path: self.path.to_owned(),
            offset: handle.offset,
            needed: handle.size.saturating_add(TRAILER_LEN as u64),
            len: blocks_end as u64,
        };
        let start = usize::try_from(handle.offset).map_err(|_| truncated())?;
        let size = usize::try_from(handle.size).map_err(|_| truncated())?;
        let end = start.checked_add(size).ok_or_else(truncated)?;
        let trailer_end = end.checked_add(TRAILER_LEN).ok_or_else(truncated)?;
        if trailer_end > blocks_end {
            return Err(truncated());
        }
        let data = &self.file[start..end];
        let kind = self.file[end];
        let stored = fixed32(self.file, end + 1).ok_or_else(truncated)?;
        let actual = crc32c::crc32c_append(crc32c::crc32c(data), &[kind]);
        if unmask(stored) != actual {
            return Err(CheckpointError::BlockChecksum {
                path: self.path.to_owned(),
                offset: handle.offset,
            });
        }
        match kind {
            NO_COMPRESSION => Ok(Cow::Borrowed(data)),
            SNAPPY => {
                let snappy = |source| CheckpointError::Snappy {
                    path: self.path.to_owned(),
                    offset: handle.offset,
                    source,
                };
                let len = snap::raw::decompress_len(data).map_err(snappy)?;
                if len > data.len().saturating_mul(MAX_SNAPPY_RATIO) {
                    return Err(self.corrupt(format!(
                        "snappy block at offset {} claims {len} bytes from {}",
                        handle.offset,
                        data.len()
                    )));
                }
                let mut out = vec![0; len];
                let n = snap::raw::Decoder::new()
                    .decompress(data, &mut out)
                    .map_err(snappy)?;
                out.truncate(n);
                Ok(Cow::Owned(out))
            }
            other => Err(self.corrupt(format!(
                "unknown compression type {other} for block at offset {}",
                handle.offset
            ))),
        }
    }

    /// Calls `f(key, value)` for each entry of a block, in order, checking prefix compression
    /// and that every restart point starts an entry with no shared key prefix.
    fn for_each_in_block(
        &self,
        block: &[u8],
        block_offset: u64,
        key: &mut Vec<u8>,
        mut f: impl FnMut(&[u8], &[u8]) -> Result<(), CheckpointError>,
    ) -> Result<(), CheckpointError> {
        let bad = |what: &str| self.corrupt(format!("block at offset {block_offset}: {what}"));
        let len = block.len();
        let Some(num_restarts) = len.checked_sub(4).and_then(|at| fixed32(block, at)) else {
            return Err(bad("shorter than its restart count"));
        };
        let num_restarts = num_restarts as usize;
        if num_restarts > (len - 4) / 4 {
            return Err(bad("restart count exceeds block size"));
        }
        let data_end = len - 4 - 4 * num_restarts;
        let restart = |i: usize| fixed32(block, data_end + 4 * i).unwrap_or(u32::MAX) as usize;
        if num_restarts == 0 {
            return if data_end == 0 {
                Ok(())
            } else {
                Err(bad("entries but no restart points"))
            };
        }
        key.clear();
        let mut next_restart = 0;
        let mut pos = 0;
        while pos < data_end {
            let entry_start = pos;
            let body = &block[..data_end];
            let (Some(shared), Some(non_shared), Some(value_len)) = (
                varint32(body, &mut pos),
                varint32(body, &mut pos),
                varint32(body, &mut pos),
            ) else {
                return Err(bad("bad entry header varint"));
            };
            let (shared, non_shared, value_len) =
                (shared as usize, non_shared as usize, value_len as usize);
            if shared > key.len() {
                return Err(bad("shared key prefix longer than previous key"));
            }
            let key_end = pos.checked_add(non_shared).filter(|&e| e <= data_end);
            let value_end = key_end
                .and_then(|k| k.checked_add(value_len))
                .filter(|&e| e <= data_end);
            let (Some(key_end), Some(value_end)) = (key_end, value_end) else {
                return Err(bad("entry runs past the restart array"));
            };
            if next_restart < num_restarts {
                let r = restart(next_restart);
                if r < entry_start {
                    return Err(bad("restart point not at an entry boundary"));
                }
                if r == entry_start {
                    if shared != 0 {
                        return Err(bad("restart entry shares a key prefix"));
                    }
                    next_restart += 1;
                }
            }
            if entry_start == 0 && next_restart == 0 {
                return Err(bad("first entry is not a restart point"));
            }
            key.truncate(shared);
            key.extend_from_slice(&block[pos..key_end]);
            f(key, &block[key_end..value_end])?;
            pos = value_end;
        }
        if data_end > 0 && next_restart != num_restarts {
            return Err(bad("restart point not at an entry boundary"));
        }
        Ok(())
    }
}

/// Calls `f(key, value)` for every entry of the table in `file`, in key order.
///
/// Checks the footer magic, every block's checksum, block structure, and that keys are
/// strictly increasing across the whole table and bounded by their index separators.
///
/// # Errors
/// [`CheckpointError::Truncated`], [`CheckpointError::BadMagic`],
/// [`CheckpointError::BlockChecksum`], [`CheckpointError::Snappy`] or
/// [`CheckpointError::Corrupt`], all naming `path`; or whatever `f` returns.
pub(crate) fn for_each_entry(
    path: &Path,
    file: &[u8],
    mut f: impl FnMut(&[u8], &[u8]) -> Result<(), CheckpointError>,
) -> Result<(), CheckpointError> {
    let table = Table { path, file };
    if file.len() < FOOTER_LEN {
        return Err(CheckpointError::Truncated {
            path: path.to_owned(),
            offset: 0,
            needed: FOOTER_LEN as u64,
            len: file.len() as u64,
        });
    }
    let footer = &file[file.len() - FOOTER_LEN..];
    let magic_lo = fixed32(footer, HANDLES_LEN).unwrap_or(0);
    let magic_hi = fixed32(footer, HANDLES_LEN + 4).unwrap_or(0);
    if (u64::from(magic_hi) << 32 | u64::from(magic_lo)) != TABLE_MAGIC {
        return Err(CheckpointError::BadMagic {
            path: path.to_owned(),
        });
    }
    let handles = &footer[..HANDLES_LEN];
    let mut pos = 0;
    let (Some(metaindex), Some(index)) = (
        BlockHandle::decode(handles, &mut pos),
        BlockHandle::decode(handles, &mut pos),
    ) else {
        return Err(table.corrupt("bad block handle in footer"));
    };
    // The metaindex is empty for TF bundles (no filters); it is checked, then ignored.
    let meta = table.block(metaindex)?;
    table.for_each_in_block(&meta, metaindex.offset, &mut Vec::new(), |_, _| Ok(()))?;

    let index_block = table.block(index)?;
    let mut index_key = Vec::new();
    let mut data_key = Vec::new();
    let mut last_key: Vec<u8> = Vec::new();
    let mut any = false;
    table.for_each_in_block(
        &index_block,
        index.offset,
        &mut index_key,
        |separator, value| {
            let mut pos = 0;
            let handle = BlockHandle::decode(value, &mut pos)
                .filter(|_| pos == value.len())
                .ok_or_else(|| table.corrupt("bad data block handle in index block"))?;
            let block = table.block(handle)?;
            table.for_each_in_block(&block, handle.offset, &mut data_key, |key, value| {
                if any && key <= last_key.as_slice() {
                    return Err(table.corrupt(format!(
                        "keys out of order: {:?} after {:?}",
                        String::from_utf8_lossy(key),
                        String::from_utf8_lossy(&last_key)
                    )));
                }
                any = true;
                last_key.clear();
                last_key.extend_from_slice(key);
                f(key, value)
            })?;
            if any && last_key.as_slice() > separator {
                return Err(table.corrupt(format!(
                    "index separator {:?} is below key {:?}",
                    String::from_utf8_lossy(separator),
                    String::from_utf8_lossy(&last_key)
                )));
            }
            Ok(())
        },
    )
}

/// Iterates one raw block (no trailer), for tests that feed it hostile bytes.
#[cfg(test)]
pub(super) fn for_each_in_raw_block(
    block: &[u8],
    f: impl FnMut(&[u8], &[u8]) -> Result<(), CheckpointError>,
) -> Result<(), CheckpointError> {
    let table = Table {
        path: Path::new("<test>"),
        file: &[],
    };
    table.for_each_in_block(block, 0, &mut Vec::new(), f)
}

//! `Words`: a zeroed `u64` array for the big arrays of a
//! [`StrTable`](super::str_table::StrTable) (index slots, key spans, key hashes). Large ones
//! live in their own anonymous mapping advised for transparent huge pages: building and
//! probing a 16 MiB index touches it at random, and with 4 KiB pages that costs a page fault
//! per page while it fills and a TLB miss per probe after (2 MiB pages: 8 faults in all).

use std::ops::{Deref, DerefMut};

/// Arrays at least this large (bytes) get their own mapping.
const MAPPED_BYTES: usize = 4 << 20;
/// Huge page size on x86-64 and arm64 (4 KiB base pages).
const HUGE: usize = 2 << 20;

#[derive(Debug)]
pub(super) enum Words {
    Heap(Vec<u64>),
    Mapped {
        map: memmap2::MmapMut,
        start: usize,
        len: usize,
    },
}

impl Words {
    /// `len` zeroed words.
    pub(super) fn zeroed(len: usize) -> Words {
        let bytes = len.saturating_mul(8);
        if bytes >= MAPPED_BYTES {
            if let Ok(map) = memmap2::MmapMut::map_anon(bytes.saturating_add(HUGE)) {
                // Anonymous mappings are zero-filled; start on a huge-page boundary so every
                // 2 MiB of the array can be one page. The advice is a hint (failure: 4 KiB
                // pages).
                let start = (map.as_ptr() as usize).next_multiple_of(HUGE) - map.as_ptr() as usize;
                let _ = map.advise_range(memmap2::Advice::HugePage, start, bytes);
                return Words::Mapped {
                    map,
                    start,
                    len: bytes,
                };
            }
        }
        Words::Heap(vec![0; len])
    }
}

impl From<Vec<u64>> for Words {
    fn from(v: Vec<u64>) -> Self {
        Words::Heap(v)
    }
}

impl Default for Words {
    fn default() -> Self {
        Words::Heap(Vec::new())
    }
}

impl Deref for Words {
    type Target = [u64];
    fn deref(&self) -> &[u64] {
        match self {
            Words::Heap(v) => v,
            // The range is 8-byte aligned (page-aligned map + huge-page offset).
            Words::Mapped { map, start, len } => bytemuck::cast_slice(&map[*start..*start + *len]),
        }
    }
}

impl DerefMut for Words {
    fn deref_mut(&mut self) -> &mut [u64] {
        match self {
            Words::Heap(v) => v,
            Words::Mapped { map, start, len } => {
                bytemuck::cast_slice_mut(&mut map[*start..*start + *len])
            }
        }
    }
}

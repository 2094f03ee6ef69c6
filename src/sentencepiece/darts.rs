//! Read-only view of a darts-clone double array (the trie inside a precompiled charsmap), with
//! every unit access bounds-checked: a hostile array can make a lookup miss, never read outside.
//! Unit layout as darts-clone's `DoubleArrayUnit` (sentencepiece v0.1.96 third_party/darts_clone).

/// A double array of little-endian `u32` units.
#[derive(Debug, Clone)]
pub(crate) struct DoubleArray {
    units: Vec<u32>,
}

fn has_leaf(u: u32) -> bool {
    (u >> 8) & 1 == 1
}
fn value(u: u32) -> u32 {
    u & 0x7FFF_FFFF
}
fn label(u: u32) -> u32 {
    u & 0x8000_00FF
}
fn offset(u: u32) -> usize {
    ((u >> 10) << ((u & (1 << 9)) >> 6)) as usize
}

impl DoubleArray {
    /// The array in `blob`; a trailing partial unit is ignored (as `set_array(size / 4)`).
    pub(crate) fn from_le_bytes(blob: &[u8]) -> DoubleArray {
        let units = blob
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        DoubleArray { units }
    }

    /// darts `commonPrefixSearch`: calls `f(value, length)` for each key that is a prefix of
    /// `key`, shortest first, at most `max_results` times.
    pub(crate) fn common_prefix_search(
        &self,
        key: &[u8],
        max_results: usize,
        mut f: impl FnMut(u32, usize),
    ) {
        let units = &self.units;
        let Some(&root) = units.first() else { return };
        let mut id = offset(root);
        let mut found = 0;
        for (i, &c) in key.iter().enumerate() {
            id ^= c as usize;
            let Some(&u) = units.get(id) else { return };
            if label(u) != c as u32 {
                return;
            }
            id ^= offset(u);
            if has_leaf(u) {
                let Some(&v) = units.get(id) else { return };
                if found < max_results {
                    f(value(v), i + 1);
                }
                found += 1;
            }
        }
    }
}

//! `StrTable`: the compact map behind static string-keyed tables (`HashTableV2` with string
//! keys, e.g. a vocabulary file mapped to ids).
//!
//! Entries are records `i = 0..n` in insertion order: key `i` is `bytes[spans[i]]` and its
//! value `values[i]`. For a vocabulary file `bytes` is the file itself, so no key is copied.
//! The index is an open-addressing table of `u64` slots (`0` empty, else the high 32 bits of
//! the key's hash as a tag and `record + 1`), split into up to [`MAX_REGIONS`] regions picked
//! by the hash's top bits; a region probes linearly and wraps within itself. Regions are
//! filled concurrently (each thread owns whole regions and walks the records in order), so a
//! 1M-word vocabulary builds in a few tens of milliseconds, and a lookup touches one slot (the
//! tag rejects other keys without reading their bytes), then the key's bytes and its value.
//! For 1M words: 16 MiB of slots plus 8 bytes of span and one value per word, on top of the
//! file bytes (about 45 MB in all, a quarter of a `HashMap<Vec<u8>, i64>`).
//!
//! Static tables only: a record superseded by a duplicate key stays in `spans`/`values` (it
//! is never referenced again), which is fine for tables filled once; mutable tables use the
//! general map in `store.rs`.

use std::hash::{BuildHasher, Hasher};

use rayon::prelude::*;

use std::path::Path;

use super::store::{
    bad_field, conflict, find_strings, key_strings, paired_values, values_of, Dup, Field, Store,
    Value,
};
use super::text_file::{split_lines, InitFromTextFile, LineError};
use super::words::Words;
use crate::ops::OpError;
use crate::tensor::{Bytes, DType, Tensor};

/// Smallest region (slots); tables up to `2 * REGION_MIN` slots have one region.
const REGION_MIN: usize = 1 << 12;
/// Most regions (and so the most threads that fill one index).
const MAX_REGIONS: usize = 64;
/// How many records ahead the fill loop prefetches slots.
const PREFETCH: usize = 16;

/// A failed index fill.
enum Fill {
    /// A region passed 7/8 full: retry with twice the slots.
    Grow,
    /// Record `i` repeats an earlier key with another value (`Dup::MustAgree`).
    Conflict(usize),
}

/// The values of a table's records.
#[derive(Debug)]
struct Values<V> {
    stored: Vec<V>,
    /// `Some(offset)`: nothing is stored, record `i`'s value is line number `i` + offset.
    lines: Option<i64>,
}

impl<V: Value> Values<V> {
    fn stored(stored: Vec<V>) -> Self {
        Values {
            stored,
            lines: None,
        }
    }

    #[inline]
    fn get(&self, r: usize) -> Option<V> {
        match self.lines {
            None => self.stored.get(r).cloned(),
            Some(offset) => V::from_line(r as i64, offset),
        }
    }

    /// Records `a` and `b` have equal values.
    fn same(&self, a: usize, b: usize) -> bool {
        match self.lines {
            None => self.stored.get(a) == self.stored.get(b),
            Some(_) => a == b,
        }
    }

    /// The stored values, storing the first `n` line-number values if they were not.
    fn materialize(&mut self, n: usize) -> &mut Vec<V> {
        if let Some(offset) = self.lines.take() {
            self.stored = (0..n as i64)
                .filter_map(|r| V::from_line(r, offset))
                .collect();
        }
        &mut self.stored
    }
}

/// See the module docs.
#[derive(Debug)]
pub(super) struct StrTable<V> {
    hasher: foldhash::fast::RandomState,
    bytes: Vec<u8>,
    /// Record `i`'s key: `bytes[start..start + len]`, packed as `start << 32 | len`.
    spans: Words,
    values: Values<V>,
    slots: Words,
    /// log2 of the number of regions.
    region_bits: u32,
    /// Slots per region minus one.
    region_mask: usize,
    /// Distinct keys in the index.
    live: usize,
}

/// Where hash `h` starts probing: (region's first slot, offset in the region).
#[inline]
fn home(h: u64, region_bits: u32, region_mask: usize) -> (usize, usize) {
    let region = if region_bits == 0 {
        0
    } else {
        (h >> (64 - region_bits)) as usize
    };
    (region * (region_mask + 1), h as usize & region_mask)
}

/// A key's hash: its bytes written straight into the seeded hasher. (`hash_one(&[u8])`
/// goes through `Hash for [u8]`, which first hashes the length as a separate word; foldhash
/// mixes the length into `write` already, and the extra round was a third of a lookup's
/// instructions.)
#[inline]
fn hash_key(hasher: &foldhash::fast::RandomState, key: &[u8]) -> u64 {
    let mut h = hasher.build_hasher();
    h.write(key);
    h.finish()
}

#[inline]
fn tag(h: u64) -> u64 {
    h & 0xffff_ffff_0000_0000
}

#[inline]
fn prefetch(p: &u64) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint; `p` is a valid reference in any case.
    #[allow(unused_unsafe)]
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>((p as *const u64).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

impl<V: Value> StrTable<V> {
    pub(super) fn new() -> Self {
        StrTable {
            hasher: foldhash::fast::RandomState::default(),
            bytes: Vec::new(),
            spans: Words::default(),
            values: Values::stored(Vec::new()),
            slots: Words::default(),
            region_bits: 0,
            region_mask: 0,
            live: 0,
        }
    }

    fn reset(&mut self) {
        *self = StrTable {
            hasher: self.hasher,
            ..StrTable::new()
        };
    }

    pub(super) fn hash(&self, key: &[u8]) -> u64 {
        hash_key(&self.hasher, key)
    }

    fn key(&self, i: usize) -> &[u8] {
        let w = self.spans[i];
        let start = (w >> 32) as usize;
        &self.bytes[start..start + (w as u32) as usize]
    }

    /// The value stored for `key`.
    #[inline]
    pub(super) fn get(&self, key: &[u8]) -> Option<V> {
        if self.slots.is_empty() {
            return None;
        }
        let h = self.hash(key);
        let (base, mut i) = home(h, self.region_bits, self.region_mask);
        loop {
            let s = self.slots[base + i];
            if s == 0 {
                return None;
            }
            if tag(s) == tag(h) {
                let r = (s as u32 - 1) as usize;
                if self.key(r) == key {
                    return self.values.get(r);
                }
            }
            i = (i + 1) & self.region_mask;
        }
    }

    /// Every distinct key with its value, in slot order.
    pub(super) fn entries(&self) -> impl Iterator<Item = (&[u8], V)> + '_ {
        self.slots
            .iter()
            .filter(|&&s| s != 0)
            .map(|&s| (s as u32 - 1) as usize)
            .filter_map(|r| Some((self.key(r), self.values.get(r)?)))
    }

    /// Makes a table from records built elsewhere (a vocabulary file's lines): key `i` is
    /// `bytes[spans[i]]` with hash `hashes[i]` (from [`StrTable::hash`] of `hasher`).
    /// Returns the table, or the index of the first record whose key repeats with another
    /// value and the error naming it.
    fn from_records(
        hasher: foldhash::fast::RandomState,
        bytes: Vec<u8>,
        spans: Words,
        values: Values<V>,
        hashes: &[u64],
    ) -> Result<Self, (usize, OpError)> {
        let mut t = StrTable {
            hasher,
            bytes,
            spans,
            values,
            ..StrTable::new()
        };
        match t.index(hashes, Dup::MustAgree) {
            Ok(()) => Ok(t),
            Err(r) => Err((r, conflict(String::from_utf8_lossy(t.key(r))))),
        }
    }

    /// Appends `keys`/`values` as records and re-indexes. On a conflict the table is left as
    /// it was and the error names the key.
    fn insert_keys(&mut self, keys: &[Bytes], values: &[V], dup: Dup) -> Result<(), OpError> {
        let old = (self.bytes.len(), self.spans.len());
        let total = keys
            .iter()
            .try_fold(self.bytes.len(), |n, k| n.checked_add(k.len()));
        if total.is_none_or(|n| n > u32::MAX as usize) || old.1 + keys.len() >= u32::MAX as usize {
            return Err(OpError::Limit(
                "string lookup table over 4 GiB of keys or 4G entries".into(),
            ));
        }
        self.bytes.reserve(total.unwrap_or(0) - old.0);
        let mut spans = std::mem::take(&mut self.spans).to_vec();
        spans.reserve(keys.len());
        for k in keys {
            spans.push((self.bytes.len() as u64) << 32 | k.len() as u64);
            self.bytes.extend_from_slice(k);
        }
        self.spans = spans.into();
        self.values.materialize(old.1).extend_from_slice(values);
        let hashes: Vec<u64> = (0..self.spans.len())
            .into_par_iter()
            .map(|i| self.hash(self.key(i)))
            .collect();
        match self.index(&hashes, dup) {
            Ok(()) => Ok(()),
            Err(r) => {
                let err = conflict(String::from_utf8_lossy(self.key(r)));
                self.bytes.truncate(old.0);
                self.spans = self.spans[..old.1].to_vec().into();
                self.values.materialize(old.1).truncate(old.1);
                // Re-indexing the old records cannot conflict: they were indexed before.
                let _ = self.index(&hashes[..old.1], dup);
                Err(err)
            }
        }
    }

    /// (Re)builds the slots from all records. `Err(i)`: record `i` is the first whose key
    /// repeats with another value under `Dup::MustAgree` (the table is then empty).
    fn index(&mut self, hashes: &[u64], dup: Dup) -> Result<(), usize> {
        let mut cap = (hashes.len() * 2).next_power_of_two().max(16);
        loop {
            match self.fill(hashes, cap, dup) {
                Ok(()) => return Ok(()),
                Err(Fill::Grow) => cap *= 2,
                Err(Fill::Conflict(r)) => {
                    self.slots = Words::default();
                    self.live = 0;
                    return Err(r);
                }
            }
        }
    }

    fn fill(&mut self, hashes: &[u64], cap: usize, dup: Dup) -> Result<(), Fill> {
        let regions = (cap / REGION_MIN).clamp(1, MAX_REGIONS);
        let per_region = cap / regions;
        let (region_bits, region_mask) = (regions.trailing_zeros(), per_region - 1);
        // Whole regions per thread; both counts are powers of two.
        let threads = rayon::current_num_threads().max(1);
        let groups = (1usize << threads.ilog2()).min(regions);
        let per_group = regions / groups;
        let mut slots = Words::zeroed(cap);
        let (this, limit) = (&*self, per_region / 8 * 7);
        let results: Vec<Result<usize, Fill>> = slots
            .par_chunks_mut(per_group * per_region)
            .enumerate()
            .map(|(g, part)| {
                let first = g * per_group * per_region;
                let mut fill = vec![0usize; per_group];
                let mut live = 0;
                let span = part.len();
                let mine = |h: u64| {
                    let (base, i) = home(h, region_bits, region_mask);
                    base.checked_sub(first)
                        .filter(|&b| b < span)
                        .map(|b| (b, i))
                };
                for (r, &h) in hashes.iter().enumerate() {
                    if let Some(&ahead) = hashes.get(r + PREFETCH) {
                        if let Some((b, i)) = mine(ahead) {
                            prefetch(&part[b + i]);
                        }
                    }
                    let Some((base, mut i)) = mine(h) else {
                        continue;
                    };
                    loop {
                        let s = &mut part[base + i];
                        if *s == 0 {
                            let f = &mut fill[base / per_region];
                            if *f >= limit {
                                return Err(Fill::Grow);
                            }
                            *f += 1;
                            live += 1;
                            *s = tag(h) | (r as u64 + 1);
                            break;
                        }
                        if tag(*s) == tag(h) {
                            let old = (*s as u32 - 1) as usize;
                            if this.key(old) == this.key(r) {
                                match dup {
                                    Dup::Overwrite => *s = tag(h) | (r as u64 + 1),
                                    Dup::MustAgree if !this.values.same(old, r) => {
                                        return Err(Fill::Conflict(r))
                                    }
                                    Dup::MustAgree => {}
                                }
                                break;
                            }
                        }
                        i = (i + 1) & region_mask;
                    }
                }
                Ok(live)
            })
            .collect();
        let mut live = 0;
        let mut first_conflict = None;
        for res in results {
            match res {
                Ok(n) => live += n,
                Err(Fill::Grow) => return Err(Fill::Grow),
                Err(Fill::Conflict(r)) => {
                    first_conflict = Some(first_conflict.map_or(r, |c: usize| c.min(r)))
                }
            }
        }
        if let Some(r) = first_conflict {
            return Err(Fill::Conflict(r));
        }
        self.slots = slots;
        self.region_bits = region_bits;
        self.region_mask = region_mask;
        self.live = live;
        Ok(())
    }
}

/// Parses the lines of a vocabulary file in parallel into records (key span in `data`, key
/// hash, value), then indexes them. Errors are those of the first bad line in file order,
/// as TF reads lines one at a time: a key repeated with another value before a malformed
/// line is reported, not the malformed line.
fn from_text<V: Value>(
    hasher: foldhash::fast::RandomState,
    data: Vec<u8>,
    file: &InitFromTextFile,
    path: &Path,
) -> Result<StrTable<V>, OpError> {
    if data.len() > u32::MAX as usize {
        return Err(OpError::Limit(format!(
            "vocabulary file {} over 4 GiB for a string table",
            path.display()
        )));
    }
    let chunks = file.chunks(&data);
    let n: usize = chunks.iter().map(|c| c.lines).sum();
    // Line-number values (the usual word -> id vocabulary) are not stored: value `i` is
    // computed from `i` on lookup.
    let line_values = file.value_index == -1 && V::from_line(0, file.offset).is_some();
    let mut spans = Words::zeroed(n);
    let mut hashes = Words::zeroed(n);
    let mut values = if line_values {
        Vec::new()
    } else {
        vec![V::default(); n]
    };
    // One disjoint output window per chunk.
    let mut jobs = Vec::with_capacity(chunks.len());
    let (mut s, mut h, mut v) = (&mut spans[..], &mut hashes[..], &mut values[..]);
    for c in &chunks {
        let (s0, s1) = s.split_at_mut(c.lines);
        let (h0, h1) = h.split_at_mut(c.lines);
        let (v0, v1) = v.split_at_mut(if line_values { 0 } else { c.lines });
        jobs.push((c, s0, h0, v0));
        (s, h, v) = (s1, h1, v1);
    }
    let base = data.as_ptr() as usize;
    let bad_line: Option<(usize, LineError)> = jobs
        .into_par_iter()
        .map(|(c, spans, hashes, values)| {
            let mut cols = Vec::new();
            let lines = split_lines(&data[c.range.clone()]).take(c.lines);
            for (j, line) in lines.enumerate() {
                let n = c.first + j;
                let (key, value) = file.fields(line, n as i64, &mut cols).map_err(|e| (n, e))?;
                let Field::Text(key) = key else {
                    return Err((n, LineError::Field(bad_field(key, "string key"))));
                };
                if let Some(slot) = values.get_mut(j) {
                    *slot = V::from_field(value, file.offset)
                        .ok_or_else(|| (n, LineError::Field(bad_field(value, V::DTYPE.name()))))?;
                }
                // `key` is a slice of `data`, below 4 GiB (checked above).
                spans[j] = ((key.as_ptr() as usize - base) as u64) << 32 | key.len() as u64;
                hashes[j] = hash_key(&hasher, key);
            }
            Ok(())
        })
        .filter_map(Result::err)
        .min_by_key(|(n, _)| *n);
    // Records before the first bad line are all good.
    let good = bad_line.as_ref().map_or(n, |(line, _)| *line);
    let values = if line_values {
        Values {
            stored: values,
            lines: Some(file.offset),
        }
    } else {
        values.truncate(good);
        Values::stored(values)
    };
    let table = StrTable::from_records(hasher, data, spans, values, &hashes[..good]);
    match (table, bad_line) {
        (Err((r, e)), _) => Err(file.error(path, r, LineError::Field(e))),
        (Ok(_), Some((line, e))) => Err(file.error(path, line, e)),
        (Ok(t), None) => {
            file.check_count(path, n)?;
            Ok(t)
        }
    }
}

impl<V: Value> Store for StrTable<V> {
    fn get_i64(&self, key: &[u8]) -> Option<i64> {
        self.get(key).as_ref().and_then(Value::as_i64)
    }
    fn len(&self) -> usize {
        self.live
    }
    fn clear(&mut self) {
        self.reset();
    }
    fn find(&self, keys: &Tensor, default: &Tensor) -> Result<Tensor, OpError> {
        find_strings(keys, default, |k| self.get(k))
    }
    fn insert(&mut self, keys: &Tensor, values: &Tensor, dup: Dup) -> Result<(), OpError> {
        let v = paired_values::<V>(keys, values)?;
        self.insert_keys(key_strings(keys)?, v, dup)
    }
    fn init_from_text(
        &mut self,
        data: Vec<u8>,
        file: &InitFromTextFile,
        path: &Path,
    ) -> Result<(), OpError> {
        if !self.spans.is_empty() {
            return Err(OpError::invalid(
                "a static string table is initialized from a file only when empty",
            ));
        }
        *self = from_text(self.hasher, data, file, path)?;
        Ok(())
    }
    fn same_entries(&self, keys: &Tensor, values: &Tensor) -> Result<bool, OpError> {
        let v = values_of::<V>(values, 2)?;
        if v.len() != keys.len() || v.len() != self.live {
            return Ok(false);
        }
        Ok(key_strings(keys)?
            .iter()
            .zip(v)
            .all(|(k, v)| self.get(k).as_ref() == Some(v)))
    }
    fn remove(&mut self, _: &Tensor) -> Result<(), OpError> {
        Err(OpError::invalid("remove from a static string table"))
    }
    fn export(&self, _: DType) -> Result<(Tensor, Tensor), OpError> {
        let (k, v): (Vec<&[u8]>, Vec<V>) = self.entries().unzip();
        let n = k.len();
        Ok((Tensor::from_strings(&[n], k)?, Tensor::from_vec(&[n], v)?))
    }
}

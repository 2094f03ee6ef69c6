//! A minimal, bounds-checked FlatBuffers reader for the model buffers tensorflow_text builds
//! at export (`FastWordpieceTokenizerConfig`, `FastBertNormalizerModel`, the fast
//! SentencePiece `EncoderConfig` / `DecoderConfig`): tables, sub-tables, scalars,
//! strings and vectors of scalars, structs and strings. Every read is checked against the
//! buffer, so a corrupt or hostile buffer gives [`FlatError`], never a panic.
//! Format reference: flatbuffers.dev "Internals" (little-endian, u32 offsets, vtables).

use std::fmt;

/// A corrupt buffer: what could not be read and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FlatError(pub(crate) String);

impl fmt::Display for FlatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "corrupt flatbuffer: {}", self.0)
    }
}

fn err<T>(what: impl fmt::Display) -> Result<T, FlatError> {
    Err(FlatError(what.to_string()))
}

fn read<const N: usize>(buf: &[u8], at: usize) -> Result<[u8; N], FlatError> {
    match buf.get(at..at.saturating_add(N)) {
        Some(b) => Ok(b.try_into().expect("slice of length N")),
        None => err(format!(
            "read of {N} bytes at {at} past the end ({})",
            buf.len()
        )),
    }
}

fn u32_at(buf: &[u8], at: usize) -> Result<u32, FlatError> {
    read::<4>(buf, at).map(u32::from_le_bytes)
}

/// Follows the u32 offset stored at `at` (relative to `at`).
fn deref(buf: &[u8], at: usize) -> Result<usize, FlatError> {
    let off = u32_at(buf, at)? as usize;
    match at.checked_add(off) {
        Some(p) if p < buf.len() => Ok(p),
        _ => err(format!("offset {off} at {at} points past the end")),
    }
}

/// A table: its position and its vtable's field offsets.
#[derive(Clone, Copy)]
pub(crate) struct Table<'a> {
    buf: &'a [u8],
    pos: usize,
    vtable: usize,
    vlen: usize,
}

impl<'a> Table<'a> {
    /// The root table of `buf`.
    pub(crate) fn root(buf: &'a [u8]) -> Result<Table<'a>, FlatError> {
        Table::at(buf, deref(buf, 0)?)
    }

    /// The table at `pos`.
    fn at(buf: &'a [u8], pos: usize) -> Result<Table<'a>, FlatError> {
        let soff = i32::from_le_bytes(read::<4>(buf, pos)?) as i64;
        let vtable = pos as i64 - soff;
        if vtable < 0 || vtable as usize >= buf.len() {
            return err("vtable out of range");
        }
        let vtable = vtable as usize;
        let vlen = u16::from_le_bytes(read::<2>(buf, vtable)?) as usize;
        if vlen < 4 || vtable + vlen > buf.len() {
            return err("vtable size out of range");
        }
        Ok(Table {
            buf,
            pos,
            vtable,
            vlen,
        })
    }

    /// Absolute position of field `i`, or `None` if absent.
    fn field(&self, i: usize) -> Result<Option<usize>, FlatError> {
        let at = 4 + 2 * i;
        if at + 2 > self.vlen {
            return Ok(None);
        }
        let off = u16::from_le_bytes(read::<2>(self.buf, self.vtable + at)?) as usize;
        Ok((off != 0).then_some(self.pos + off))
    }

    pub(crate) fn u32(&self, i: usize, default: u32) -> Result<u32, FlatError> {
        match self.field(i)? {
            Some(p) => u32_at(self.buf, p),
            None => Ok(default),
        }
    }

    pub(crate) fn i32(&self, i: usize, default: i32) -> Result<i32, FlatError> {
        Ok(self.u32(i, default as u32)? as i32)
    }

    /// A sub-table field (absent: `None`).
    pub(crate) fn table(&self, i: usize) -> Result<Option<Table<'a>>, FlatError> {
        match self.field(i)? {
            Some(p) => Table::at(self.buf, deref(self.buf, p)?).map(Some),
            None => Ok(None),
        }
    }

    /// A byte-sized scalar (`byte` / `ubyte` / enum of byte).
    pub(crate) fn u8(&self, i: usize, default: u8) -> Result<u8, FlatError> {
        match self.field(i)? {
            Some(p) => Ok(read::<1>(self.buf, p)?[0]),
            None => Ok(default),
        }
    }

    /// A `float` scalar.
    pub(crate) fn f32(&self, i: usize, default: f32) -> Result<f32, FlatError> {
        Ok(f32::from_bits(self.u32(i, default.to_bits())?))
    }

    /// The raw little-endian bytes of a vector of `elem`-byte scalars (absent: `None`), for
    /// reading large vectors in place.
    pub(crate) fn bytes_of(&self, i: usize, elem: usize) -> Result<Option<&'a [u8]>, FlatError> {
        Ok(self
            .vector(i, elem)?
            .map(|(s, n)| &self.buf[s..s + n * elem]))
    }

    pub(crate) fn bool(&self, i: usize) -> Result<bool, FlatError> {
        match self.field(i)? {
            Some(p) => Ok(read::<1>(self.buf, p)?[0] != 0),
            None => Ok(false),
        }
    }

    /// A vector field: (first element position, length), `None` if absent. `elem` is the
    /// element size; the whole vector is checked to be inside the buffer.
    fn vector(&self, i: usize, elem: usize) -> Result<Option<(usize, usize)>, FlatError> {
        let Some(p) = self.field(i)? else {
            return Ok(None);
        };
        let v = deref(self.buf, p)?;
        let n = u32_at(self.buf, v)? as usize;
        let start = v + 4;
        match n.checked_mul(elem).and_then(|b| b.checked_add(start)) {
            Some(end) if end <= self.buf.len() => Ok(Some((start, n))),
            _ => err(format!(
                "vector field {i} of {n} elements runs past the end"
            )),
        }
    }

    /// A `[uint32]` / `[int]` field as u32s (absent: `None`).
    pub(crate) fn u32s(&self, i: usize) -> Result<Option<Vec<u32>>, FlatError> {
        let Some((start, n)) = self.vector(i, 4)? else {
            return Ok(None);
        };
        Ok(Some(
            self.buf[start..start + 4 * n]
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes(c.try_into().expect("chunk of 4")))
                .collect(),
        ))
    }

    /// A vector of 8-byte structs of two u32s (`[FailureStruct]`), absent: `None`.
    pub(crate) fn u32_pairs(&self, i: usize) -> Result<Option<Vec<(u32, u32)>>, FlatError> {
        let Some((start, n)) = self.vector(i, 8)? else {
            return Ok(None);
        };
        Ok(Some(
            self.buf[start..start + 8 * n]
                .chunks_exact(8)
                .map(|c| {
                    let w = |k: usize| u32::from_le_bytes(c[k..k + 4].try_into().expect("4 bytes"));
                    (w(0), w(4))
                })
                .collect(),
        ))
    }

    /// A `[ubyte]` / `[bool]` field (absent: `None`).
    pub(crate) fn bytes(&self, i: usize) -> Result<Option<&'a [u8]>, FlatError> {
        Ok(self.vector(i, 1)?.map(|(s, n)| &self.buf[s..s + n]))
    }

    /// A string field (absent: `None`).
    pub(crate) fn string(&self, i: usize) -> Result<Option<&'a [u8]>, FlatError> {
        self.bytes(i)
    }

    /// A `[string]` field (absent: `None`).
    pub(crate) fn strings(&self, i: usize) -> Result<Option<Vec<&'a [u8]>>, FlatError> {
        let Some((start, n)) = self.vector(i, 4)? else {
            return Ok(None);
        };
        (0..n)
            .map(|k| {
                let s = deref(self.buf, start + 4 * k)?;
                let len = u32_at(self.buf, s)? as usize;
                self.buf
                    .get(s + 4..(s + 4).saturating_add(len))
                    .ok_or_else(|| FlatError(format!("string {k} of field {i} runs past the end")))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}

/// darts-clone double-array trie over a `[uint32]` unit array (tensorflow_text's
/// `DartsCloneTrieWrapper`), with every unit read bounds-checked.
#[derive(Debug, Clone)]
pub(crate) struct Trie {
    units: Vec<u32>,
}

/// A position in the trie: node id and its unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub(crate) node: u32,
    unit: u32,
}

fn offset(unit: u32) -> u32 {
    (unit >> 10) << ((unit & 0x200) >> 6)
}

fn label(unit: u32) -> u32 {
    unit & 0x8000_00ff
}

impl Trie {
    pub(crate) fn new(units: Vec<u32>) -> Result<Trie, FlatError> {
        if units.is_empty() {
            return err("empty trie_array");
        }
        Ok(Trie { units })
    }

    fn unit(&self, node: u32) -> Result<u32, FlatError> {
        self.units
            .get(node as usize)
            .copied()
            .ok_or_else(|| FlatError(format!("trie node {node} out of range")))
    }

    pub(crate) fn root(&self) -> Cursor {
        Cursor {
            node: 0,
            unit: self.units[0],
        }
    }

    pub(crate) fn cursor(&self, node: u32) -> Result<Cursor, FlatError> {
        Ok(Cursor {
            node,
            unit: self.unit(node)?,
        })
    }

    /// Follows the bytes of `path`; on failure the cursor is unchanged.
    pub(crate) fn step(&self, c: &mut Cursor, path: &[u8]) -> Result<bool, FlatError> {
        let (mut id, mut unit) = (c.node, c.unit);
        for &ch in path {
            id ^= offset(unit) ^ ch as u32;
            // A node past the end cannot carry the label: darts-clone's arrays are padded,
            // a foreign buffer may not be, and reading past it is what TF would do.
            match self.units.get(id as usize) {
                Some(&u) if label(u) == ch as u32 => unit = u,
                _ => return Ok(false),
            }
        }
        c.node = id;
        c.unit = unit;
        Ok(true)
    }

    /// The value stored at the cursor's node, if it has one.
    pub(crate) fn data(&self, c: &Cursor) -> Result<Option<i32>, FlatError> {
        if c.unit & 0x100 == 0 {
            return Ok(None);
        }
        let v = self.unit(c.node ^ offset(c.unit))?;
        Ok(Some((v & 0x7fff_ffff) as i32))
    }
}

//! The hash map behind a table: `Store`, implemented for each value type over int64 or
//! byte-string keys (so a string lookup borrows the key, no allocation per probe). Static
//! string-keyed tables use the compact [`StrTable`] instead.

use std::fmt;
use std::path::Path;

use rayon::prelude::*;
use smallvec::SmallVec;

use super::str_table::StrTable;
use super::text_file::{split_lines, InitFromTextFile, LineError};
use crate::ops::OpError;
use crate::tensor::{Bytes, DType, Element, Tensor};

/// How `Store::insert` treats a key that is already present.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Dup {
    /// Same value: fine; another value: error (static `HashTable`).
    MustAgree,
    /// The new value wins (`MutableHashTable`).
    Overwrite,
}

/// One field of a vocabulary line: the line number (plus offset) or a token.
#[derive(Debug, Clone, Copy)]
pub(super) enum Field<'a> {
    Line(i64),
    Text(&'a [u8]),
}

/// A value type a table can hold.
pub(super) trait Value: Element + PartialEq + Default {
    /// Parses a vocabulary field. TF quirk (`TextFileLineIterator::SetValue`): `offset` is
    /// added to line numbers and to parsed int32 values, not to parsed int64 values.
    fn from_field(f: Field<'_>, offset: i64) -> Option<Self>;
    /// The value of line `n` (`Field::Line`), if this type can hold one.
    fn from_line(n: i64, offset: i64) -> Option<Self> {
        Self::from_field(Field::Line(n), offset)
    }
    /// The value as an int64 (only int64 tables answer `Store::get_i64`).
    fn as_i64(&self) -> Option<i64> {
        None
    }
}

fn parse<T: std::str::FromStr>(t: &[u8]) -> Option<T> {
    std::str::from_utf8(t).ok()?.trim_ascii().parse().ok()
}

impl Value for i64 {
    fn as_i64(&self) -> Option<i64> {
        Some(*self)
    }
    fn from_field(f: Field<'_>, offset: i64) -> Option<Self> {
        match f {
            Field::Line(n) => Some(n.wrapping_add(offset)),
            Field::Text(t) => parse(t),
        }
    }
}
impl Value for i32 {
    fn from_field(f: Field<'_>, offset: i64) -> Option<Self> {
        let v: i32 = parse(match f {
            Field::Text(t) => t,
            Field::Line(_) => return None,
        })?;
        Some((i64::from(v).wrapping_add(offset)) as i32)
    }
}
impl Value for f32 {
    fn from_field(f: Field<'_>, _: i64) -> Option<Self> {
        match f {
            Field::Text(t) => parse(t),
            Field::Line(_) => None,
        }
    }
}
impl Value for f64 {
    fn from_field(f: Field<'_>, _: i64) -> Option<Self> {
        match f {
            Field::Text(t) => parse(t),
            Field::Line(_) => None,
        }
    }
}
impl Value for bool {
    fn from_field(_: Field<'_>, _: i64) -> Option<Self> {
        None
    }
}
impl Value for Bytes {
    fn from_field(f: Field<'_>, _: i64) -> Option<Self> {
        match f {
            Field::Text(t) => Some(Bytes::copy_from_slice(t)),
            Field::Line(_) => None,
        }
    }
}

/// The map behind a table, for one value type.
pub(super) trait Store: Send + Sync + fmt::Debug {
    fn len(&self) -> usize;
    fn clear(&mut self);
    fn find(&self, keys: &Tensor, default: &Tensor) -> Result<Tensor, OpError>;
    fn insert(&mut self, keys: &Tensor, values: &Tensor, dup: Dup) -> Result<(), OpError>;
    /// Fills an empty table from a vocabulary file's bytes (static semantics: a repeated key
    /// must have the same value); `path` is for messages.
    fn init_from_text(
        &mut self,
        data: Vec<u8>,
        file: &InitFromTextFile,
        path: &Path,
    ) -> Result<(), OpError>;
    /// True if every pair is present with that value and nothing else is.
    fn same_entries(&self, keys: &Tensor, values: &Tensor) -> Result<bool, OpError>;
    fn remove(&mut self, keys: &Tensor) -> Result<(), OpError>;
    fn export(&self, key_dtype: DType) -> Result<(Tensor, Tensor), OpError>;
    /// One string key's int64 value (the caller checked the dtypes), for kernels that probe
    /// a vocabulary key by key (WordPiece).
    fn get_i64(&self, key: &[u8]) -> Option<i64>;
}

/// Lookups of at least this many string keys are spread over rayon's threads (a batch of
/// 1024 sentences is ~8k tokens).
pub(super) const PAR_KEYS: usize = 2048;

/// A `std` hash map with foldhash's seeded fast hasher: SipHash dominated building a
/// 1M-word vocabulary; foldhash is several times faster on short keys and still seeded per
/// process, so a hostile vocabulary cannot be crafted to collide.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// A string key; hashes and compares as its bytes, so `&[u8]` can look it up.
type StrKey = SmallVec<[u8; 16]>;

#[derive(Debug)]
enum Keys<V> {
    /// int32 or int64 keys (`i32` keys are widened; `parse_i32` says how text keys parse).
    Int {
        map: HashMap<i64, V>,
        parse_i32: bool,
    },
    /// Keys up to 16 bytes (most vocabulary words) live inline in the bucket: no allocation
    /// per line and no pointer chase when a lookup compares keys.
    Str(HashMap<StrKey, V>),
}

pub(super) fn values_of<V: Value>(t: &Tensor, index: usize) -> Result<&[V], OpError> {
    t.as_slice::<V>()
        .map_err(|_| OpError::dtype(index, V::DTYPE.name(), t.dtype()))
}

/// The values of an insert or import, checked to pair one to one with `keys`.
pub(super) fn paired_values<'a, V: Value>(
    keys: &Tensor,
    values: &'a Tensor,
) -> Result<&'a [V], OpError> {
    let v = values_of::<V>(values, 2)?;
    if v.len() != keys.len() {
        return Err(OpError::shape(format!(
            "keys {:?} and values {:?} do not match",
            keys.shape(),
            values.shape()
        )));
    }
    Ok(v)
}

/// Looks up string keys: `one(key)` for each, `None` taking the key's entry of `default`
/// (a scalar or one per key). Large batches are spread over rayon's threads.
pub(super) fn find_strings<V: Value>(
    keys: &Tensor,
    default: &Tensor,
    one: impl Fn(&[u8]) -> Option<V> + Sync,
) -> Result<Tensor, OpError> {
    let d = defaults::<V>(keys, default)?;
    let each = |(i, k): (usize, &Bytes)| one(k).unwrap_or_else(|| d[i.min(d.len() - 1)].clone());
    let keys_in = key_strings(keys)?;
    let out: Vec<V> = if keys_in.len() >= PAR_KEYS {
        keys_in.par_iter().enumerate().map(each).collect()
    } else {
        keys_in.iter().enumerate().map(each).collect()
    };
    Ok(Tensor::from_vec(keys.shape(), out)?)
}

/// `default_value` of a find: a scalar or one value per key.
fn defaults<'a, V: Value>(keys: &Tensor, default: &'a Tensor) -> Result<&'a [V], OpError> {
    let d = values_of::<V>(default, 2)?;
    if d.len() != 1 && d.len() != keys.len() {
        return Err(OpError::shape(format!(
            "default_value must be a scalar or have the keys' shape, got {:?}",
            default.shape()
        )));
    }
    Ok(d)
}

pub(super) fn key_strings(t: &Tensor) -> Result<&[Bytes], OpError> {
    t.as_slice::<Bytes>()
        .map_err(|_| OpError::dtype(1, "string", t.dtype()))
}

pub(super) fn conflict(key: impl fmt::Debug) -> OpError {
    OpError::invalid(format!(
        "HashTable has different value for same key. Key {key:?} appears twice"
    ))
}

/// The error for a vocabulary field that does not parse as `what`.
pub(super) fn bad_field(f: Field<'_>, what: &str) -> OpError {
    OpError::invalid(match f {
        Field::Text(t) => format!(
            "field {:?} is not a valid {what}",
            String::from_utf8_lossy(t)
        ),
        Field::Line(_) => format!("a line number cannot be a {what}"),
    })
}

fn put<K: std::hash::Hash + Eq + fmt::Debug, V: PartialEq>(
    map: &mut HashMap<K, V>,
    k: K,
    v: V,
    dup: Dup,
) -> Result<(), OpError> {
    match map.entry(k) {
        std::collections::hash_map::Entry::Occupied(mut e) => {
            if dup == Dup::Overwrite {
                e.insert(v);
            } else if *e.get() != v {
                return Err(conflict(e.key()));
            }
        }
        std::collections::hash_map::Entry::Vacant(e) => {
            e.insert(v);
        }
    }
    Ok(())
}

impl<V: Value> Store for Keys<V> {
    fn get_i64(&self, key: &[u8]) -> Option<i64> {
        match self {
            Keys::Int { .. } => None,
            Keys::Str(m) => m.get(key).and_then(Value::as_i64),
        }
    }
    fn len(&self) -> usize {
        match self {
            Keys::Int { map, .. } => map.len(),
            Keys::Str(m) => m.len(),
        }
    }
    fn clear(&mut self) {
        match self {
            Keys::Int { map, .. } => map.clear(),
            Keys::Str(m) => m.clear(),
        }
    }
    fn find(&self, keys: &Tensor, default: &Tensor) -> Result<Tensor, OpError> {
        match self {
            Keys::Int { map, .. } => {
                let d = defaults::<V>(keys, default)?;
                let out: Vec<V> = keys
                    .to_i64_vec()?
                    .iter()
                    .enumerate()
                    .map(|(i, k)| {
                        map.get(k)
                            .cloned()
                            .unwrap_or_else(|| d[i.min(d.len() - 1)].clone())
                    })
                    .collect();
                Ok(Tensor::from_vec(keys.shape(), out)?)
            }
            Keys::Str(m) => find_strings(keys, default, |k| m.get(k).cloned()),
        }
    }
    fn insert(&mut self, keys: &Tensor, values: &Tensor, dup: Dup) -> Result<(), OpError> {
        let v = paired_values::<V>(keys, values)?;
        match self {
            Keys::Int { map, .. } => {
                for (k, v) in keys.to_i64_vec()?.into_iter().zip(v) {
                    put(map, k, v.clone(), dup)?;
                }
            }
            Keys::Str(m) => {
                for (k, v) in key_strings(keys)?.iter().zip(v) {
                    put(m, StrKey::from_slice(k), v.clone(), dup)?;
                }
            }
        }
        Ok(())
    }
    fn init_from_text(
        &mut self,
        data: Vec<u8>,
        file: &InitFromTextFile,
        path: &Path,
    ) -> Result<(), OpError> {
        let limit = file.line_limit();
        // Room for the lines up front: no rehashing while a large file loads.
        let lines = split_lines(&data).take(limit).count();
        match self {
            Keys::Int { map, .. } => map.reserve(lines),
            Keys::Str(m) => m.reserve(lines),
        }
        let mut cols = Vec::new();
        let mut n = 0usize;
        for line in split_lines(&data).take(limit) {
            let (key, value) = file
                .fields(line, n as i64, &mut cols)
                .map_err(|e| file.error(path, n, e))?;
            self.insert_line(key, value, file.offset)
                .map_err(|e| file.error(path, n, LineError::Field(e)))?;
            n += 1;
        }
        file.check_count(path, n)
    }
    fn same_entries(&self, keys: &Tensor, values: &Tensor) -> Result<bool, OpError> {
        let v = values_of::<V>(values, 2)?;
        if v.len() != keys.len() || v.len() != self.len() {
            return Ok(false);
        }
        Ok(match self {
            Keys::Int { map, .. } => keys
                .to_i64_vec()?
                .iter()
                .zip(v)
                .all(|(k, v)| map.get(k) == Some(v)),
            Keys::Str(m) => key_strings(keys)?
                .iter()
                .zip(v)
                .all(|(k, v)| m.get(&k[..]) == Some(v)),
        })
    }
    fn remove(&mut self, keys: &Tensor) -> Result<(), OpError> {
        match self {
            Keys::Int { map, .. } => keys.to_i64_vec()?.iter().for_each(|k| {
                map.remove(k);
            }),
            Keys::Str(m) => key_strings(keys)?.iter().for_each(|k| {
                m.remove(&k[..]);
            }),
        }
        Ok(())
    }
    fn export(&self, key_dtype: DType) -> Result<(Tensor, Tensor), OpError> {
        let n = self.len();
        let (keys, values) = match self {
            Keys::Int { map, .. } => {
                let (k, v): (Vec<i64>, Vec<V>) = map.iter().map(|(k, v)| (*k, v.clone())).unzip();
                let k = if key_dtype == DType::I32 {
                    Tensor::from_vec(&[n], k.into_iter().map(|k| k as i32).collect::<Vec<_>>())?
                } else {
                    Tensor::from_vec(&[n], k)?
                };
                (k, v)
            }
            Keys::Str(m) => {
                let (k, v): (Vec<&[u8]>, Vec<V>) =
                    m.iter().map(|(k, v)| (&k[..], v.clone())).unzip();
                (Tensor::from_strings(&[n], k)?, v)
            }
        };
        Ok((keys, Tensor::from_vec(&[n], values)?))
    }
}

impl<V: Value> Keys<V> {
    /// Inserts one vocabulary line's key and value (static semantics).
    fn insert_line(
        &mut self,
        key: Field<'_>,
        value: Field<'_>,
        offset: i64,
    ) -> Result<(), OpError> {
        let v = V::from_field(value, offset).ok_or_else(|| bad_field(value, V::DTYPE.name()))?;
        match self {
            Keys::Int { map, parse_i32 } => {
                let k = if *parse_i32 {
                    i32::from_field(key, offset).map(i64::from)
                } else {
                    i64::from_field(key, offset)
                };
                put(
                    map,
                    k.ok_or_else(|| bad_field(key, "integer key"))?,
                    v,
                    Dup::MustAgree,
                )
            }
            Keys::Str(m) => match key {
                Field::Text(t) => put(m, StrKey::from_slice(t), v, Dup::MustAgree),
                Field::Line(_) => Err(bad_field(key, "string key")),
            },
        }
    }
}

/// The store for a table: static string-keyed tables get the compact [`StrTable`].
pub(super) fn new_store<V: Value>(
    key_dtype: DType,
    mutable: bool,
) -> Result<Box<dyn Store>, OpError> {
    Ok(match key_dtype {
        DType::I64 | DType::I32 => Box::new(Keys::<V>::Int {
            map: HashMap::default(),
            parse_i32: key_dtype == DType::I32,
        }),
        DType::String if mutable => Box::new(Keys::<V>::Str(HashMap::default())),
        DType::String => Box::new(StrTable::<V>::new()),
        d => {
            return Err(OpError::Unimplemented(format!(
                "lookup table with {d} keys"
            )))
        }
    })
}

//! `InitializeTableFromTextFileV2`. TF reference: core/kernels/lookup_util.cc
//! (`TextFileLineIterator`).

use std::io::Read;
use std::ops::Range;
use std::path::Path;

use rayon::prelude::*;

use super::store::{Field, Store};
use super::table_of;
use crate::ops::{take_inputs, BuildCtx, EvalCtx, Op, OpError, Tensors};
use crate::tensor::{Bytes, DType};

/// `InitializeTableFromTextFileV2`: one entry per line of a vocabulary file inside the model
/// directory. `key_index`/`value_index`: `-2` the whole line, `-1` the line number (+
/// `offset`), `n >= 0` the n-th `delimiter`-separated column. Empty lines are an error; a
/// trailing `\r` is dropped (see [`split_lines`]); `vocab_size >= 0` stops after that many lines and requires at
/// least that many. A table that is already initialized is left as is (TF ignores the
/// re-initialization of file-backed tables).
#[derive(Debug)]
pub(super) struct InitFromTextFile {
    pub(super) key_index: i64,
    pub(super) value_index: i64,
    pub(super) vocab_size: i64,
    pub(super) delimiter: u8,
    pub(super) offset: i64,
}

impl InitFromTextFile {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        let key_index = cx.attr_i64("key_index")?;
        let value_index = cx.attr_i64("value_index")?;
        if key_index < -2 || value_index < -2 {
            return Err(OpError::invalid("key_index and value_index must be >= -2"));
        }
        let delim = cx.attr_opt_bytes("delimiter").unwrap_or(b"\t");
        Ok(Box::new(InitFromTextFile {
            key_index,
            value_index,
            vocab_size: cx.attr_opt_i64("vocab_size").unwrap_or(-1),
            // TF passes `delimiter[0]` to the line iterator.
            delimiter: delim.first().copied().unwrap_or(b'\t'),
            offset: cx.attr_opt_i64("offset").unwrap_or(0),
        }))
    }

    /// Lines past `vocab_size` are not read (TF stops there).
    pub(super) fn line_limit(&self) -> usize {
        usize::try_from(self.vocab_size).unwrap_or(usize::MAX)
    }

    fn field<'a>(&self, index: i64, line: &'a [u8], cols: &[(usize, usize)], n: i64) -> Field<'a> {
        match index {
            -1 => Field::Line(n),
            -2 => Field::Text(line),
            i => {
                let (a, b) = cols[i as usize];
                Field::Text(&line[a..b])
            }
        }
    }

    /// Line `n`'s key and value fields (`cols` is scratch space).
    pub(super) fn fields<'a>(
        &self,
        line: &'a [u8],
        n: i64,
        cols: &mut Vec<(usize, usize)>,
    ) -> Result<(Field<'a>, Field<'a>), LineError> {
        if line.is_empty() {
            return Err(LineError::Empty);
        }
        let need = self.key_index.max(self.value_index);
        if need >= 0 {
            cols.clear();
            let mut start = 0;
            for (i, &c) in line.iter().enumerate() {
                if c == self.delimiter {
                    cols.push((start, i));
                    start = i + 1;
                }
            }
            cols.push((start, line.len()));
            if (cols.len() as i64) <= need {
                return Err(LineError::Columns(cols.len()));
            }
        }
        Ok((
            self.field(self.key_index, line, cols, n),
            self.field(self.value_index, line, cols, n),
        ))
    }

    /// The error for line `n` (0-based, as TF counts) of `path`.
    pub(super) fn error(&self, path: &Path, n: usize, e: LineError) -> OpError {
        let path = path.display();
        match e {
            LineError::Empty => OpError::invalid(format!(
                "invalid content in {path}: empty line found at line {n}"
            )),
            LineError::Columns(got) => OpError::invalid(format!(
                "invalid number of columns in {path} line {n}: expected at least {}, got {got}",
                self.key_index.max(self.value_index) + 1,
            )),
            LineError::Field(e) => OpError::invalid(format!("{path} line {n}: {e}")),
        }
    }

    /// After `n` lines were read: `vocab_size`, if given, must not exceed them.
    pub(super) fn check_count(&self, path: &Path, n: usize) -> Result<(), OpError> {
        if self.vocab_size >= 0 && n as u64 != self.vocab_size as u64 {
            return Err(OpError::invalid(format!(
                "invalid vocab_size in {}: expected {} but got {n}",
                path.display(),
                self.vocab_size
            )));
        }
        Ok(())
    }

    /// Splits `data` into runs of whole lines for parallel parsing: each chunk's byte range,
    /// first line number and line count (lines past `vocab_size` dropped).
    pub(super) fn chunks(&self, data: &[u8]) -> Vec<Chunk> {
        let parts = (data.len() / CHUNK_BYTES).clamp(1, 4 * rayon::current_num_threads());
        let mut bounds = vec![0];
        for k in 1..parts {
            let at = data.len() / parts * k;
            let end = memchr_nl(&data[at..]).map_or(data.len(), |i| at + i + 1);
            if end > *bounds.last().unwrap_or(&0) && end < data.len() {
                bounds.push(end);
            }
        }
        bounds.push(data.len());
        let counts: Vec<usize> = bounds
            .par_windows(2)
            .map(|w| split_lines(&data[w[0]..w[1]]).count())
            .collect();
        let (limit, mut first) = (self.line_limit(), 0usize);
        bounds
            .windows(2)
            .zip(counts)
            .map(|(w, count)| {
                let lines = count.min(limit.saturating_sub(first));
                let c = Chunk {
                    range: w[0]..w[1],
                    first,
                    lines,
                };
                first += lines;
                c
            })
            .collect()
    }

    fn load(&self, cx: &EvalCtx<'_>, path: &Path, store: &mut dyn Store) -> Result<(), OpError> {
        // `confine` refuses escapes and anything but a regular file.
        let path = cx.session.confine(path)?;
        let meta = std::fs::metadata(&path)
            .map_err(|e| OpError::Refused(format!("{}: {e}", path.display())))?;
        if meta.len() > cx.limits().max_tensor_bytes as u64 {
            return Err(OpError::Limit(format!(
                "vocabulary file {} is larger than the {} byte cap",
                path.display(),
                cx.limits().max_tensor_bytes
            )));
        }
        let io_err = |e: std::io::Error| OpError::invalid(format!("{}: {e}", path.display()));
        // One read of the whole file (capped above), then lines are slices of it.
        let mut data = Vec::with_capacity(meta.len() as usize);
        std::fs::File::open(&path)
            .and_then(|f| {
                f.take(cx.limits().max_tensor_bytes as u64)
                    .read_to_end(&mut data)
            })
            .map_err(io_err)?;
        store.init_from_text(data, self, &path)
    }
}

/// Bytes per chunk of a vocabulary file parsed in parallel (at least).
const CHUNK_BYTES: usize = 1 << 18;

/// A run of whole lines of a vocabulary file (see [`InitFromTextFile::chunks`]).
#[derive(Debug, Clone)]
pub(super) struct Chunk {
    pub(super) range: Range<usize>,
    pub(super) first: usize,
    pub(super) lines: usize,
}

/// Why a vocabulary line was rejected.
#[derive(Debug)]
pub(super) enum LineError {
    Empty,
    /// The line has this many columns, fewer than the indexes need.
    Columns(usize),
    /// A field does not parse, or the table refused the entry.
    Field(OpError),
}

fn memchr_nl(data: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', data)
}

/// The lines of `data` as TF's `InputBuffer::ReadLine` returns them: split at `\n`, one
/// trailing `\r` dropped; a last line without `\n` counts only if something is left of it
/// (so a final lone `\r` is no line, while an empty line before a `\n` is one, an error).
pub(super) fn split_lines(data: &[u8]) -> impl Iterator<Item = &[u8]> + '_ {
    let mut pos = 0;
    std::iter::from_fn(move || loop {
        if pos >= data.len() {
            return None;
        }
        let rest = &data[pos..];
        let (mut line, terminated) = match memchr_nl(rest) {
            Some(i) => (&rest[..i], true),
            None => (rest, false),
        };
        pos += line.len() + 1;
        if let [head @ .., b'\r'] = line {
            line = head;
        }
        if terminated || !line.is_empty() {
            return Some(line);
        }
    })
}

impl Op for InitFromTextFile {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [handle, filename] = take_inputs(inputs)?;
        let (_, table) = table_of(&handle)?;
        if self.key_index == -1 && table.key_dtype != DType::I64 {
            return Err(OpError::invalid(
                "key index for line number requires int64 keys",
            ));
        }
        if self.value_index == -1 && table.value_dtype != DType::I64 {
            return Err(OpError::invalid(
                "value index for line number requires int64 values",
            ));
        }
        let name = filename
            .scalar_value::<Bytes>()
            .map_err(|_| OpError::shape("filename must be a scalar string"))?;
        let name = String::from_utf8(name.to_vec())
            .map_err(|_| OpError::invalid("filename is not UTF-8"))?;
        let mut state = table.write();
        if state.initialized {
            return Ok(tensors![]);
        }
        if let Err(e) = self.load(cx, Path::new(&name), state.store.as_mut()) {
            state.store.clear();
            return Err(e);
        }
        state.initialized = true;
        Ok(tensors![])
    }
    fn is_stateful(&self) -> bool {
        true
    }
}

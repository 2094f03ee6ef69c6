//! `InitializeTableFromTextFileV2`. TF reference: core/kernels/lookup_util.cc
//! (`TextFileLineIterator`).

use std::io::Read;
use std::path::Path;

use super::store::{Field, Store};
use super::table_of;
use crate::ops::{take_inputs, BuildCtx, EvalCtx, Op, OpError};
use crate::tensor::{DType, Tensor};

/// `InitializeTableFromTextFileV2`: one entry per line of a vocabulary file inside the model
/// directory. `key_index`/`value_index`: `-2` the whole line, `-1` the line number (+
/// `offset`), `n >= 0` the n-th `delimiter`-separated column. Empty lines are an error; a
/// trailing `\r` is dropped; `vocab_size >= 0` stops after that many lines and requires at
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
        // One read of the whole file (capped above), then lines are slices of it: no
        // per-line buffer copies.
        let mut data = Vec::with_capacity(meta.len() as usize);
        std::fs::File::open(&path)
            .and_then(|f| {
                f.take(cx.limits().max_tensor_bytes as u64)
                    .read_to_end(&mut data)
            })
            .map_err(io_err)?;
        // Room for the lines up front: no rehashing while a large file loads.
        let lines = match usize::try_from(self.vocab_size) {
            Ok(v) => v,
            Err(_) => data.iter().filter(|&&b| b == b'\n').count() + 1,
        };
        store.reserve(lines.min(1 << 24));
        let need = self.key_index.max(self.value_index);
        let mut cols = Vec::new();
        let mut n: i64 = 0;
        let mut pos = 0usize;
        while pos < data.len() {
            if self.vocab_size >= 0 && n >= self.vocab_size {
                break;
            }
            let end = data[pos..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(data.len(), |i| pos + i);
            let mut line = &data[pos..end];
            pos = end + 1;
            if let [rest @ .., b'\r'] = line {
                line = rest;
            }
            if line.is_empty() {
                return Err(OpError::invalid(format!(
                    "invalid content in {}: empty line found at line {n}",
                    path.display()
                )));
            }
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
                    return Err(OpError::invalid(format!(
                        "invalid number of columns in {} line {n}: expected at least {}, got {}",
                        path.display(),
                        need + 1,
                        cols.len()
                    )));
                }
            }
            let key = self.field(self.key_index, line, &cols, n);
            let value = self.field(self.value_index, line, &cols, n);
            store
                .insert_line(key, value, self.offset)
                .map_err(|e| OpError::invalid(format!("{} line {n}: {e}", path.display())))?;
            n += 1;
        }
        if self.vocab_size >= 0 && n != self.vocab_size {
            return Err(OpError::invalid(format!(
                "invalid vocab_size in {}: expected {} but got {n}",
                path.display(),
                self.vocab_size
            )));
        }
        Ok(())
    }
}

impl Op for InitFromTextFile {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, OpError> {
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
            .scalar_value::<Vec<u8>>()
            .map_err(|_| OpError::shape("filename must be a scalar string"))?;
        let name =
            String::from_utf8(name).map_err(|_| OpError::invalid("filename is not UTF-8"))?;
        let mut state = table.write();
        if state.initialized {
            return Ok(vec![]);
        }
        if let Err(e) = self.load(cx, Path::new(&name), state.store.as_mut()) {
            state.store.clear();
            return Err(e);
        }
        state.initialized = true;
        Ok(vec![])
    }
    fn is_stateful(&self) -> bool {
        true
    }
}

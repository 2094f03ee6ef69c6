//! Lookup tables: `HashTableV2`, `MutableHashTableV2` and the ops that fill and query them.
//! TF reference: core/kernels/{lookup_table_op,lookup_table_init_op,lookup_util}.cc,
//! core/framework/lookup_interface.h.
//!
//! A table is a session resource (created on first evaluation of its handle op under the
//! key computed at build) holding a hash map from int64 or byte-string keys to scalar values
//! of one dtype. Static tables follow `InitializableLookupTable`: they are filled once
//! (`InitializeTableV2`, `InitializeTableFromTextFileV2`, `LookupTableImportV2`), and looking
//! one up before that is an error. `InitializeTableFromTextFileV2` reads only regular files
//! inside the model directory (read whole, then parsed in parallel for string keys).

mod store;
mod str_table;
mod text_file;
mod words;

use std::sync::RwLock;

use super::{take_inputs, BuildCtx, EvalCtx, Op, OpError, Registry};
use crate::ops::Tensors;
use crate::tensor::{Bytes, DType, Data, Handle, Tensor};
use store::{new_store, Dup, Store};
use text_file::InitFromTextFile;

pub(crate) fn register(r: &mut Registry) {
    // TF1 (v1) table ops take and return `Ref(string)` handles; here both are the same
    // resource handle, so each v1 op shares its V2 builder.
    r.add("HashTable", TableOp::build);
    r.add("HashTableV2", TableOp::build);
    r.add("InitializeTable", Fill::build);
    r.add("InitializeTableFromTextFile", InitFromTextFile::build);
    r.add("InitializeTableFromTextFileV2", InitFromTextFile::build);
    r.add("InitializeTableV2", Fill::build);
    r.add("LookupTableExport", Export::build);
    r.add("LookupTableExportV2", Export::build);
    r.add("LookupTableFind", Find::build);
    r.add("LookupTableFindV2", Find::build);
    r.add("LookupTableImport", Fill::build);
    r.add("LookupTableImportV2", Fill::build);
    r.add("LookupTableInsert", Fill::build);
    r.add("LookupTableInsertV2", Fill::build);
    r.add("LookupTableSize", Size::build);
    r.add("LookupTableSizeV2", Size::build);
    r.add("LookupTableRemoveV2", Remove::build);
    r.add("MutableHashTable", TableOp::build);
    r.add("MutableHashTableV2", TableOp::build);
}

/// A lookup table resource.
#[derive(Debug)]
pub(crate) struct Table {
    key_dtype: DType,
    value_dtype: DType,
    mutable: bool,
    state: RwLock<State>,
}

#[derive(Debug)]
struct State {
    initialized: bool,
    store: Box<dyn Store>,
}

impl Table {
    fn new(key_dtype: DType, value_dtype: DType, mutable: bool) -> Result<Table, OpError> {
        let store = match value_dtype {
            DType::I64 => new_store::<i64>(key_dtype, mutable)?,
            DType::I32 => new_store::<i32>(key_dtype, mutable)?,
            DType::F32 => new_store::<f32>(key_dtype, mutable)?,
            DType::F64 => new_store::<f64>(key_dtype, mutable)?,
            DType::Bool => new_store::<bool>(key_dtype, mutable)?,
            DType::String => new_store::<Bytes>(key_dtype, mutable)?,
            d => {
                return Err(OpError::Unimplemented(format!(
                    "lookup table with {d} values"
                )))
            }
        };
        Ok(Table {
            key_dtype,
            value_dtype,
            mutable,
            state: RwLock::new(State {
                initialized: mutable,
                store,
            }),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    fn check_keys(&self, keys: &Tensor) -> Result<(), OpError> {
        if keys.dtype() != self.key_dtype {
            return Err(OpError::dtype(1, self.key_dtype.name(), keys.dtype()));
        }
        Ok(())
    }
}

/// The table behind a resource-handle input.
fn table_of(t: &Tensor) -> Result<(&Handle, &Table), OpError> {
    let h = match t.data() {
        Data::Resource(b) if b.len() == 1 => &b[0],
        _ => return Err(OpError::dtype(0, "a scalar resource handle", t.dtype())),
    };
    let table = h
        .value
        .downcast_ref::<Table>()
        .ok_or_else(|| OpError::Resource {
            name: h.name.to_string(),
            what: "is not a lookup table".into(),
        })?;
    Ok((h, table))
}

/// Runs `f` with a probe into the initialized string -> int64 table behind `handle` (read
/// locked meanwhile): for kernels that look keys up one by one, as tensorflow_text's
/// WordPiece does through `LookupInterface::Find` with an int64 default.
pub(crate) fn with_string_table<R>(
    handle: &Tensor,
    f: impl FnOnce(&(dyn Fn(&[u8]) -> Option<i64> + Sync)) -> Result<R, OpError>,
) -> Result<R, OpError> {
    let (h, table) = table_of(handle)?;
    if table.key_dtype != DType::String || table.value_dtype != DType::I64 {
        return Err(OpError::Resource {
            name: h.name.to_string(),
            what: format!(
                "needs a string -> int64 table, this one maps {} -> {}",
                table.key_dtype, table.value_dtype
            ),
        });
    }
    let state = table.read();
    if !state.initialized {
        return Err(not_initialized(h));
    }
    let store = &state.store;
    f(&|k: &[u8]| store.get_i64(k))
}

fn not_initialized(h: &Handle) -> OpError {
    OpError::Resource {
        name: h.name.to_string(),
        what: "table not initialized".into(),
    }
}

/// `HashTableV2` / `MutableHashTableV2`: the table's handle, created on first use.
#[derive(Debug)]
struct TableOp {
    key: String,
    key_dtype: DType,
    value_dtype: DType,
    mutable: bool,
}

impl TableOp {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        let mutable = cx.op.starts_with("MutableHashTable");
        if mutable {
            if let Some(Some(shape)) = cx.attr_opt_shape("value_shape") {
                if !shape.is_empty() {
                    return Err(OpError::Unimplemented(format!(
                        "MutableHashTableV2 with value_shape {shape:?}"
                    )));
                }
            }
        }
        let op = TableOp {
            key: cx.resource_key(),
            key_dtype: cx.attr_type("key_dtype")?,
            value_dtype: cx.attr_type("value_dtype")?,
            mutable,
        };
        Table::new(op.key_dtype, op.value_dtype, mutable)?; // reject unsupported dtypes at load
        Ok(Box::new(op))
    }
}

impl Op for TableOp {
    fn eval(&self, cx: &mut EvalCtx<'_>, _: Tensors) -> Result<Tensors, OpError> {
        let table = Table::new(self.key_dtype, self.value_dtype, self.mutable)?;
        let h = cx.session.resource(&self.key, || table)?;
        let t = h
            .value
            .downcast_ref::<Table>()
            .ok_or_else(|| OpError::Resource {
                name: self.key.clone(),
                what: "exists and is not a lookup table".into(),
            })?;
        if (t.key_dtype, t.value_dtype, t.mutable)
            != (self.key_dtype, self.value_dtype, self.mutable)
        {
            return Err(OpError::Resource {
                name: self.key.clone(),
                what: format!(
                    "conflicting key/value dtypes {}->{} with {}->{}",
                    self.key_dtype, self.value_dtype, t.key_dtype, t.value_dtype
                ),
            });
        }
        Ok(tensors![Tensor::handles(&[], vec![h], DType::Resource)?])
    }
    fn is_stateful(&self) -> bool {
        true
    }
}

/// `LookupTableFindV2`: values for `keys` (same shape), `default_value` where absent.
#[derive(Debug)]
struct Find;

impl Find {
    fn build(_: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(Find))
    }
}

impl Op for Find {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [handle, keys, default] = take_inputs(inputs)?;
        let (h, table) = table_of(&handle)?;
        table.check_keys(&keys)?;
        let state = table.read();
        if !state.initialized {
            return Err(not_initialized(h));
        }
        Ok(tensors![state.store.find(&keys, &default)?])
    }
    fn is_stateful(&self) -> bool {
        true
    }
}

/// `LookupTableSizeV2`: int64 scalar (0 before a static table is initialized).
#[derive(Debug)]
struct Size;

impl Size {
    fn build(_: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(Size))
    }
}

impl Op for Size {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [handle] = take_inputs(inputs)?;
        let (_, table) = table_of(&handle)?;
        let state = table.read();
        let n = if state.initialized {
            state.store.len()
        } else {
            0
        };
        Ok(tensors![Tensor::scalar(n as i64)])
    }
    fn is_stateful(&self) -> bool {
        true
    }
}

/// `InitializeTableV2`, `LookupTableImportV2`, `LookupTableInsertV2`. Initializing (or
/// importing into) a static table twice is accepted only with the same entries, as in
/// `InitializableLookupTable::Initialize`; import into a mutable table replaces its content.
#[derive(Debug)]
struct Fill {
    insert: bool,
}

impl Fill {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(Fill {
            insert: cx.op.starts_with("LookupTableInsert"),
        }))
    }
}

impl Op for Fill {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [handle, keys, values] = take_inputs(inputs)?;
        let (h, table) = table_of(&handle)?;
        table.check_keys(&keys)?;
        let mut state = table.write();
        if table.mutable {
            if !self.insert {
                state.store.clear();
            }
            state.store.insert(&keys, &values, Dup::Overwrite)?;
        } else if self.insert {
            return Err(OpError::Resource {
                name: h.name.to_string(),
                what: "insert into a static HashTable".into(),
            });
        } else if state.initialized {
            if !state.store.same_entries(&keys, &values)? {
                return Err(OpError::Resource {
                    name: h.name.to_string(),
                    what: "table already initialized with different data".into(),
                });
            }
        } else {
            let r = state.store.insert(&keys, &values, Dup::MustAgree);
            if r.is_err() {
                state.store.clear();
            }
            r?;
            state.initialized = true;
        }
        Ok(tensors![])
    }
    fn is_stateful(&self) -> bool {
        true
    }
}

/// `LookupTableRemoveV2` (mutable tables).
#[derive(Debug)]
struct Remove;

impl Remove {
    fn build(_: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(Remove))
    }
}

impl Op for Remove {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [handle, keys] = take_inputs(inputs)?;
        let (h, table) = table_of(&handle)?;
        if !table.mutable {
            return Err(OpError::Resource {
                name: h.name.to_string(),
                what: "remove from a static HashTable".into(),
            });
        }
        table.check_keys(&keys)?;
        table.write().store.remove(&keys)?;
        Ok(tensors![])
    }
    fn is_stateful(&self) -> bool {
        true
    }
}

/// `LookupTableExportV2`: all keys and values, in unspecified order (as in TF).
#[derive(Debug)]
struct Export;

impl Export {
    fn build(_: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(Export))
    }
}

impl Op for Export {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [handle] = take_inputs(inputs)?;
        let (_, table) = table_of(&handle)?;
        let (k, v) = table.read().store.export(table.key_dtype)?;
        Ok(tensors![k, v])
    }
    fn is_stateful(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests;

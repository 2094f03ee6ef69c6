//! [`Session`] (state shared by every call of one loaded model: directory, checkpoint,
//! resources, buffer pool) and [`EvalCtx`] (one call's context). Ops reach outside pure
//! computation only through these.

use std::any::Any;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::{variables, CallLimits, Limits, OpError, Tensors};
use crate::saved_model::checkpoint::BundleReader;
use crate::tensor::pool::BufferPool;
use crate::tensor::{Handle, Tensor};

/// State shared by every call of one loaded model: where it lives, its checkpoint, its
/// resources (variables, tables), its caps.
#[derive(Debug)]
pub struct Session {
    /// The model directory; the only place file-reading ops may read from.
    pub model_dir: PathBuf,
    /// The variable checkpoint, if the model has one.
    pub checkpoint: Option<Arc<BundleReader>>,
    /// Caps.
    pub limits: Limits,
    /// Accumulate per-op times in `graph::profile` (`LoadOptions::profile`).
    pub profile: bool,
    resources: Mutex<HashMap<String, Handle>>,
    /// Freed buffers kept for later calls (`Limits::max_pooled_bytes`).
    pool: Arc<BufferPool>,
}

impl Session {
    /// A session for the model in `model_dir`.
    pub fn new(model_dir: PathBuf, checkpoint: Option<Arc<BundleReader>>, limits: Limits) -> Self {
        Session {
            model_dir,
            checkpoint,
            pool: Arc::new(BufferPool::new(limits.max_pooled_bytes)),
            limits,
            profile: false,
            resources: Mutex::new(HashMap::new()),
        }
    }

    /// The buffers this model's calls recycle (see `tensor::pool`).
    pub(crate) fn pool(&self) -> &Arc<BufferPool> {
        &self.pool
    }

    /// Bytes of freed buffers kept for reuse by later calls (at most
    /// [`Limits::max_pooled_bytes`]).
    pub fn pooled_bytes(&self) -> usize {
        self.pool.retained_bytes()
    }

    /// Frees the buffers kept for reuse (later calls allocate again, then refill the pool).
    pub fn release_pooled(&self) {
        self.pool.clear()
    }

    /// The resource under `key`, created by `make` on first use.
    pub fn resource<T: Any + Send + Sync>(
        &self,
        key: &str,
        make: impl FnOnce() -> T,
    ) -> Result<Handle, OpError> {
        let mut map = self
            .resources
            .lock()
            .map_err(|_| OpError::Invalid("resource manager poisoned".into()))?;
        if let Some(h) = map.get(key) {
            if h.value.is::<T>() {
                return Ok(h.clone());
            }
            return Err(OpError::Resource {
                name: key.to_string(),
                what: format!(
                    "exists with another type than {}",
                    std::any::type_name::<T>()
                ),
            });
        }
        let h = Handle {
            name: Arc::from(key),
            value: Arc::new(make()),
        };
        map.insert(key.to_string(), h.clone());
        Ok(h)
    }

    /// Every resource variable holding a value, by key (for freezing at load, `graph::freeze`).
    pub(crate) fn variable_values(&self) -> HashMap<String, Tensor> {
        let Ok(map) = self.resources.lock() else {
            return HashMap::new();
        };
        map.iter()
            .filter_map(|(k, h)| Some((k.clone(), variables::value_if_set(h)?)))
            .collect()
    }

    /// Resolves `path` (a string fed or computed by the graph) to a regular file inside the
    /// model directory, after canonicalisation: no `..` escapes, no symlinks out, no FIFOs.
    pub fn confine(&self, path: &Path) -> Result<PathBuf, OpError> {
        let root = self
            .model_dir
            .canonicalize()
            .map_err(|e| OpError::Refused(format!("model dir: {e}")))?;
        let full = if path.is_absolute() {
            path.to_path_buf()
        } else {
            root.join(path)
        };
        let canon = full
            .canonicalize()
            .map_err(|e| OpError::Refused(format!("{}: {e}", path.display())))?;
        if !canon.starts_with(&root) {
            return Err(OpError::Refused(format!(
                "{} is outside the model directory",
                path.display()
            )));
        }
        // FIFOs, devices and directories are refused before anyone opens them (opening a FIFO
        // blocks forever).
        let meta = std::fs::metadata(&canon)
            .map_err(|e| OpError::Refused(format!("{}: {e}", canon.display())))?;
        if !meta.is_file() {
            return Err(OpError::Refused(format!(
                "{} is not a regular file",
                canon.display()
            )));
        }
        Ok(canon)
    }
}

/// Per-call evaluation context.
#[derive(Debug)]
pub struct EvalCtx<'a> {
    /// The model's shared state.
    pub session: &'a Session,
    /// Current function-call depth.
    pub depth: usize,
    /// The caps plus what this call has used of them.
    pub call: CallLimits<'a>,
}

impl<'a> EvalCtx<'a> {
    /// A context at depth 0; the wall-time cap (if any) starts now.
    pub fn new(session: &'a Session) -> Self {
        EvalCtx {
            session,
            depth: 0,
            call: CallLimits::start(&session.limits),
        }
    }
    /// A context for a function called from this one: one level deeper, same budget.
    pub fn nested(&self) -> EvalCtx<'a> {
        EvalCtx {
            session: self.session,
            depth: self.depth + 1,
            call: self.call.clone(),
        }
    }
    /// The per-call caps (derefs to [`Limits`]; `check_alloc` also counts the live set).
    pub fn limits(&self) -> &CallLimits<'a> {
        &self.call
    }
}

/// Checks an input's dtype-independent presence and returns it.
pub(crate) fn take_inputs<const N: usize>(mut inputs: Tensors) -> Result<[Tensor; N], OpError> {
    let got = inputs.len();
    if got != N {
        return Err(OpError::Arity { expected: N, got });
    }
    // Drained in place: `into_iter` would first copy the whole inline array.
    let mut it = inputs.drain(..);
    Ok(std::array::from_fn(|_| {
        it.next()
            .expect("take_inputs: length checked equal to N above")
    }))
}

//! TensorFlow op semantics: one registry mapping op names to builders, one file per family.
//!
//! An op is built once at load from its `NodeDef` (attributes read and checked into typed fields
//! by a `fn(&mut BuildCtx) -> Result<Box<dyn Op>, OpError>` builder) and evaluated many times.
//! Ops never name their node: the executor in `graph` wraps their errors with node and op.
//! Ops that reach outside pure computation (variables, tables, checkpoint reads, function calls)
//! do so only through [`Session`] and [`EvalCtx`], which hold the model directory, the caps
//! and the resource manager.

mod array;
mod control;
mod detection;
pub mod fused;
mod image;
mod list;
mod lookup;
mod math;
mod nn;
pub(crate) mod op_defaults;
pub(crate) mod refused;
mod sentencepiece;
mod signal;
mod sparse;
pub(crate) mod strings;
mod text;
mod tf1;
pub(crate) mod variables;

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::proto::{attr_value, AttrValue};
use crate::saved_model::checkpoint::{BundleReader, CheckpointError};
use crate::saved_model::tensor_proto::{tensor_from_proto, TensorProtoError};
use crate::tensor::pool::BufferPool;
use crate::tensor::{DType, Handle, Tensor, TensorError};

pub use tfhub_kernels as kernels;

/// Why an op could not be built or evaluated. The executor adds the node and op name.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpError {
    /// Missing or ill-typed attribute.
    #[error("attr {name:?}: {what}")]
    Attr {
        /// Attribute name.
        name: String,
        /// What is wrong.
        what: String,
    },
    /// Wrong number of inputs.
    #[error("expected {expected} inputs, got {got}")]
    Arity {
        /// Inputs expected (minimum for variadic ops).
        expected: usize,
        /// Inputs given.
        got: usize,
    },
    /// An input has a dtype the op does not take.
    #[error("input {index}: dtype {got} is not supported here (expected {expected})")]
    DType {
        /// Input position.
        index: usize,
        /// What the op takes.
        expected: String,
        /// What it got.
        got: DType,
    },
    /// Inputs have incompatible shapes (or a shape-like input is invalid).
    #[error("{0}")]
    Shape(String),
    /// Any other invalid argument (index out of range, bad value), as TF's `InvalidArgument`.
    #[error("{0}")]
    Invalid(String),
    /// A feature of this op that tfhub does not implement.
    #[error("not implemented: {0}")]
    Unimplemented(String),
    /// A resource (variable, table) was missing or of the wrong kind.
    #[error("resource {name:?}: {what}")]
    Resource {
        /// Resource name.
        name: String,
        /// What is wrong.
        what: String,
    },
    /// A cap on memory, time, iterations or depth was exceeded.
    #[error("limit exceeded: {0}")]
    Limit(String),
    /// The call's live tensors would exceed [`Limits::max_live_bytes`].
    #[error(
        "limit exceeded: the call's live tensors would take {needed} bytes, over the \
         {cap} byte cap (Limits::max_live_bytes)"
    )]
    MemoryCap {
        /// Bytes the live set would reach.
        needed: u128,
        /// The cap.
        cap: usize,
    },
    /// The call ran longer than [`Limits::max_call_time`].
    #[error("limit exceeded: the call ran for {elapsed:?}, over the {cap:?} cap (Limits::max_call_time)")]
    TimeCap {
        /// Time spent when the cap was noticed (checked before each op).
        elapsed: Duration,
        /// The cap.
        cap: Duration,
    },
    /// The op would read outside the model directory or touch the outside world.
    #[error("refused: {0}")]
    Refused(String),
    /// A constant did not decode.
    #[error(transparent)]
    TensorProto(#[from] TensorProtoError),
    /// A tensor could not be built.
    #[error(transparent)]
    Tensor(#[from] TensorError),
    /// A checkpoint read failed.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A data-dependent kernel failure.
    #[error(transparent)]
    Kernel(#[from] kernels::KernelError),
    /// A failure inside a called function (the error names the inner node).
    #[error("in function {function:?}")]
    Call {
        /// Function name.
        function: String,
        /// The inner error.
        #[source]
        source: Box<crate::Error>,
    },
}

impl OpError {
    /// Shorthand for [`OpError::Invalid`].
    pub fn invalid(what: impl fmt::Display) -> OpError {
        OpError::Invalid(what.to_string())
    }
    /// Shorthand for [`OpError::Shape`].
    pub fn shape(what: impl fmt::Display) -> OpError {
        OpError::Shape(what.to_string())
    }
    /// Shorthand for [`OpError::DType`].
    pub fn dtype(index: usize, expected: &str, got: DType) -> OpError {
        OpError::DType {
            index,
            expected: expected.to_string(),
            got,
        }
    }
}

/// A built op.
pub trait Op: Send + Sync + fmt::Debug {
    /// Evaluates the op. `inputs` are the data inputs in order (control inputs are not passed);
    /// an input is moved in when this is its last use, so in-place updates are free.
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, OpError>;

    /// True if the op reads or writes state or the outside world (never constant-folded,
    /// never pruned as dead code when it is a target).
    fn is_stateful(&self) -> bool {
        false
    }

    /// For `Const`: the value, so the planner can fold ops downstream of it.
    fn constant(&self) -> Option<&Tensor> {
        None
    }

    /// For producers that can fuse a per-channel epilogue (see [`fused`]).
    fn epilogue_producer(&self) -> Option<&dyn fused::EpilogueProducer> {
        None
    }
}

/// A compiled function that ops can call (`PartitionedCall`, `If`, `While`, ...).
pub trait Callable: Send + Sync + fmt::Debug {
    /// The function's name.
    fn name(&self) -> &str;
    /// Runs the function on `args`, returning its outputs in signature order.
    fn call(&self, cx: &mut EvalCtx<'_>, args: Vec<Tensor>) -> Result<Vec<Tensor>, OpError>;
}

/// Resolves function names to compiled functions while ops are being built.
pub trait FunctionResolver {
    /// The compiled function `name` (compiled on first request).
    fn function(&mut self, name: &str) -> Result<Arc<dyn Callable>, OpError>;
}

/// What a builder sees of its node.
pub struct BuildCtx<'a> {
    /// Node name.
    pub node: &'a str,
    /// Op type.
    pub op: &'a str,
    /// Attributes, with defaults from the op's `OpDef` filled in.
    pub attrs: &'a BTreeMap<String, AttrValue>,
    /// Number of data inputs.
    pub num_inputs: usize,
    /// Name of the function the node is in ("" for the top-level graph).
    pub scope: &'a str,
    /// Largest constant (elements) a `Const` may hold.
    pub max_const_elements: usize,
    pub(crate) functions: &'a mut dyn FunctionResolver,
}

impl fmt::Debug for BuildCtx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BuildCtx({} {})", self.op, self.node)
    }
}

fn attr_err(name: &str, what: impl fmt::Display) -> OpError {
    OpError::Attr {
        name: name.to_string(),
        what: what.to_string(),
    }
}

impl BuildCtx<'_> {
    fn value(&self, name: &str) -> Option<&attr_value::Value> {
        self.attrs.get(name).and_then(|a| a.value.as_ref())
    }
    fn required<T>(&self, name: &str, v: Option<T>, kind: &str) -> Result<T, OpError> {
        match (v, self.attrs.contains_key(name)) {
            (Some(v), _) => Ok(v),
            (None, false) => Err(attr_err(name, "missing")),
            (None, true) => Err(attr_err(name, format!("expected {kind}"))),
        }
    }
    /// Integer attribute, if present.
    pub fn attr_opt_i64(&self, name: &str) -> Option<i64> {
        match self.value(name) {
            Some(attr_value::Value::I(i)) => Some(*i),
            _ => None,
        }
    }
    /// Integer attribute.
    pub fn attr_i64(&self, name: &str) -> Result<i64, OpError> {
        self.required(name, self.attr_opt_i64(name), "int")
    }
    /// Non-negative integer attribute as `usize`.
    pub fn attr_usize(&self, name: &str) -> Result<usize, OpError> {
        let v = self.attr_i64(name)?;
        usize::try_from(v).map_err(|_| attr_err(name, format!("{v} is negative")))
    }
    /// Float attribute, if present.
    pub fn attr_opt_f32(&self, name: &str) -> Option<f32> {
        match self.value(name) {
            Some(attr_value::Value::F(f)) => Some(*f),
            _ => None,
        }
    }
    /// Float attribute.
    pub fn attr_f32(&self, name: &str) -> Result<f32, OpError> {
        self.required(name, self.attr_opt_f32(name), "float")
    }
    /// Bool attribute, if present.
    pub fn attr_opt_bool(&self, name: &str) -> Option<bool> {
        match self.value(name) {
            Some(attr_value::Value::B(b)) => Some(*b),
            _ => None,
        }
    }
    /// Bool attribute.
    pub fn attr_bool(&self, name: &str) -> Result<bool, OpError> {
        self.required(name, self.attr_opt_bool(name), "bool")
    }
    /// String attribute (lossy UTF-8), if present.
    pub fn attr_opt_str(&self, name: &str) -> Option<String> {
        self.attr_opt_bytes(name)
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }
    /// String attribute as bytes, if present.
    pub fn attr_opt_bytes(&self, name: &str) -> Option<&[u8]> {
        match self.value(name) {
            Some(attr_value::Value::S(s)) => Some(s),
            _ => None,
        }
    }
    /// String attribute.
    pub fn attr_str(&self, name: &str) -> Result<String, OpError> {
        self.required(name, self.attr_opt_str(name), "string")
    }
    /// Dtype attribute, if present.
    pub fn attr_opt_type(&self, name: &str) -> Result<Option<DType>, OpError> {
        match self.value(name) {
            Some(attr_value::Value::Type(t)) => DType::from_proto(*t)
                .map(Some)
                .ok_or_else(|| attr_err(name, format!("unsupported dtype enum {t}"))),
            _ => Ok(None),
        }
    }
    /// Dtype attribute.
    pub fn attr_type(&self, name: &str) -> Result<DType, OpError> {
        let v = self.attr_opt_type(name)?;
        self.required(name, v, "type")
    }
    /// List-of-int attribute (empty if absent).
    pub fn attr_list_i64(&self, name: &str) -> Vec<i64> {
        match self.value(name) {
            Some(attr_value::Value::List(l)) => l.i.clone(),
            _ => Vec::new(),
        }
    }
    /// List-of-float attribute (empty if absent).
    pub fn attr_list_f32(&self, name: &str) -> Vec<f32> {
        match self.value(name) {
            Some(attr_value::Value::List(l)) => l.f.clone(),
            _ => Vec::new(),
        }
    }
    /// List-of-dtype attribute (empty if absent).
    pub fn attr_list_type(&self, name: &str) -> Result<Vec<DType>, OpError> {
        match self.value(name) {
            Some(attr_value::Value::List(l)) => l
                .r#type
                .iter()
                .map(|&t| {
                    DType::from_proto(t)
                        .ok_or_else(|| attr_err(name, format!("unsupported dtype enum {t}")))
                })
                .collect(),
            _ => Ok(Vec::new()),
        }
    }
    /// List-of-string attribute (empty if absent).
    pub fn attr_list_str(&self, name: &str) -> Vec<String> {
        match self.value(name) {
            Some(attr_value::Value::List(l)) => {
                l.s.iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect()
            }
            _ => Vec::new(),
        }
    }
    /// Tensor attribute, decoded and size-checked.
    pub fn attr_tensor(&self, name: &str) -> Result<Tensor, OpError> {
        match self.value(name) {
            Some(attr_value::Value::Tensor(t)) => {
                Ok(tensor_from_proto(t, self.max_const_elements)?)
            }
            Some(_) => Err(attr_err(name, "expected tensor")),
            None => Err(attr_err(name, "missing")),
        }
    }
    /// Shape attribute as dims (`None` = unknown rank; `-1` = unknown dim), if present.
    pub fn attr_opt_shape(&self, name: &str) -> Option<Option<Vec<i64>>> {
        match self.value(name) {
            Some(attr_value::Value::Shape(s)) => {
                Some((!s.unknown_rank).then(|| s.dim.iter().map(|d| d.size).collect()))
            }
            _ => None,
        }
    }
    /// Function attribute: the function's name.
    pub fn attr_func(&self, name: &str) -> Result<String, OpError> {
        match self.value(name) {
            Some(attr_value::Value::Func(f)) => Ok(f.name.clone()),
            Some(_) => Err(attr_err(name, "expected func")),
            None => Err(attr_err(name, "missing")),
        }
    }
    /// List-of-function attribute (e.g. `Case` branches).
    pub fn attr_list_func(&self, name: &str) -> Result<Vec<String>, OpError> {
        match self.value(name) {
            Some(attr_value::Value::List(l)) => Ok(l.func.iter().map(|f| f.name.clone()).collect()),
            _ => Err(attr_err(name, "expected list(func)")),
        }
    }
    /// The compiled function `name`.
    pub fn function(&mut self, name: &str) -> Result<Arc<dyn Callable>, OpError> {
        self.functions.function(name)
    }
    /// Checks the data-input count.
    pub fn expect_inputs(&self, n: usize) -> Result<(), OpError> {
        if self.num_inputs != n {
            return Err(OpError::Arity {
                expected: n,
                got: self.num_inputs,
            });
        }
        Ok(())
    }
    /// A resource key for a stateful op: `container/shared_name`, or the node's own identity
    /// when `shared_name` is empty (TF then makes the resource private to the kernel).
    pub fn resource_key(&self) -> String {
        resource_key(self.attrs, self.scope, self.node)
    }
}

/// The resource key [`BuildCtx::resource_key`] gives a node with these attributes.
pub(crate) fn resource_key(attrs: &BTreeMap<String, AttrValue>, scope: &str, node: &str) -> String {
    let s = |name: &str| match attrs.get(name).and_then(|a| a.value.as_ref()) {
        Some(attr_value::Value::S(b)) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    };
    let (container, shared) = (s("container"), s("shared_name"));
    if shared.is_empty() {
        format!("{container}/@{scope}/{node}")
    } else {
        format!("{container}/{shared}")
    }
}

/// Caps on what loading and calling a model may consume. Defaults are generous for real models
/// and stop hostile ones; exceeding any cap is a typed error, never an abort. Set them through
/// `tfhub::api::LoadOptions { limits, .. }`; see SECURITY.md.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest tensor (bytes) any op may allocate (strings count their payloads).
    pub max_tensor_bytes: usize,
    /// Most bytes of tensors one call may hold live at once, across nested function calls.
    /// Memory-mapped checkpoint data and the caller's inputs are not counted; values sharing
    /// a buffer (`Identity`) count once per value, so the count is an upper bound.
    pub max_live_bytes: usize,
    /// Largest constant, in elements (a splatted constant is checked before it is expanded).
    pub max_const_elements: usize,
    /// Most nodes compiled for one model, over the graph and every function reached.
    pub max_graph_nodes: usize,
    /// Deepest function-call nesting at run time (`PartitionedCall`, `If`, `While` bodies).
    pub max_call_depth: usize,
    /// Most iterations of one `While` loop.
    pub max_loop_iterations: u64,
    /// Longest wall time of one call (checked before each op, so one long op can overrun it);
    /// `None` (the default) for no limit.
    pub max_call_time: Option<Duration>,
    /// Most bytes of freed `f32` buffers (of at least 64 KiB each) a loaded model keeps for
    /// reuse by later calls, instead of returning them to the allocator; 0 turns reuse off.
    /// This memory stays allocated between calls, on top of each call's live bytes.
    pub max_pooled_bytes: usize,
    /// Most pixels (height × width, summed over an animation's frames) an image decoder may
    /// produce; checked against the file's header before any pixel buffer is allocated, so a
    /// 65535×65535 header costs nothing. TF's own PNG cap is 2^29.
    pub max_image_pixels: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_tensor_bytes: 4 << 30,
            max_live_bytes: 4 << 30,
            max_const_elements: 1 << 30,
            max_graph_nodes: 10_000_000,
            max_call_depth: 64,
            max_loop_iterations: 10_000_000,
            max_call_time: None,
            max_pooled_bytes: 256 << 20,
            max_image_pixels: 1 << 29,
        }
    }
}

impl Limits {
    /// Checks that `elements` of `dtype` fit under the per-tensor cap before allocating.
    pub fn check_alloc(&self, elements: usize, dtype: DType) -> Result<(), OpError> {
        let per = dtype.size_of().unwrap_or(32);
        match elements.checked_mul(per) {
            Some(b) if b <= self.max_tensor_bytes => Ok(()),
            _ => Err(OpError::Limit(format!(
                "a {dtype} tensor of {elements} elements exceeds the {} byte per-tensor cap",
                self.max_tensor_bytes
            ))),
        }
    }
}

/// The caps as one call sees them: [`Limits`] plus the bytes the call already holds, so
/// [`CallLimits::check_alloc`] refuses an allocation that would break either the per-tensor or
/// the live-bytes cap *before* it happens. Derefs to [`Limits`].
#[derive(Debug, Clone)]
pub struct CallLimits<'a> {
    limits: &'a Limits,
    /// Bytes of tensors the call holds live (see [`Limits::max_live_bytes`]).
    pub live_bytes: usize,
    /// When the call must stop ([`Limits::max_call_time`]).
    pub deadline: Option<(Instant, Duration)>,
}

impl std::ops::Deref for CallLimits<'_> {
    type Target = Limits;
    fn deref(&self) -> &Limits {
        self.limits
    }
}

impl CallLimits<'_> {
    /// Checks `elements` of `dtype` against the per-tensor cap and, added to the live set,
    /// against the live-bytes cap.
    pub fn check_alloc(&self, elements: usize, dtype: DType) -> Result<(), OpError> {
        self.limits.check_alloc(elements, dtype)?;
        let per = dtype.size_of().unwrap_or(32) as u128;
        self.check_live(elements as u128 * per)
    }

    /// Checks a tensor of `bytes` bytes against the per-tensor and the live-bytes caps.
    pub fn check_bytes(&self, bytes: u128) -> Result<(), OpError> {
        if bytes > self.limits.max_tensor_bytes as u128 {
            return Err(OpError::Limit(format!(
                "a tensor of {bytes} bytes exceeds the {} byte per-tensor cap",
                self.limits.max_tensor_bytes
            )));
        }
        self.check_live(bytes)
    }

    /// Checks that `extra` more bytes fit under the live-bytes cap.
    pub fn check_live(&self, extra: u128) -> Result<(), OpError> {
        let needed = self.live_bytes as u128 + extra;
        if needed > self.limits.max_live_bytes as u128 {
            return Err(OpError::MemoryCap {
                needed,
                cap: self.limits.max_live_bytes,
            });
        }
        Ok(())
    }

    /// Fails once the call's wall-time cap has passed.
    pub fn check_time(&self) -> Result<(), OpError> {
        if let Some((start, cap)) = self.deadline {
            let elapsed = start.elapsed();
            if elapsed > cap {
                return Err(OpError::TimeCap { elapsed, cap });
            }
        }
        Ok(())
    }
}

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
        let limits = &session.limits;
        EvalCtx {
            session,
            depth: 0,
            call: CallLimits {
                limits,
                live_bytes: 0,
                deadline: limits.max_call_time.map(|cap| (Instant::now(), cap)),
            },
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
pub(crate) fn take_inputs<const N: usize>(inputs: Vec<Tensor>) -> Result<[Tensor; N], OpError> {
    let got = inputs.len();
    inputs
        .try_into()
        .map_err(|_| OpError::Arity { expected: N, got })
}

/// Builds an op from its node.
pub type Builder = fn(&mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError>;

/// Maps TF op names to builders.
#[derive(Debug, Default)]
pub struct Registry {
    builders: HashMap<&'static str, Builder>,
}

impl Registry {
    /// Registers `name` (later registrations replace earlier ones).
    pub fn add(&mut self, name: &'static str, b: Builder) {
        self.builders.insert(name, b);
    }
    /// The builder for `name`.
    pub fn get(&self, name: &str) -> Option<Builder> {
        self.builders.get(name).copied()
    }
    /// Every registered op name, sorted.
    pub fn names(&self) -> Vec<&'static str> {
        let mut v: Vec<_> = self.builders.keys().copied().collect();
        v.sort_unstable();
        v
    }
    /// The registry with every op family.
    pub fn with_all_ops() -> Registry {
        let mut r = Registry::default();
        array::register(&mut r);
        control::register(&mut r);
        image::register(&mut r);
        detection::register(&mut r);
        list::register(&mut r);
        lookup::register(&mut r);
        math::register(&mut r);
        nn::register(&mut r);
        sentencepiece::register(&mut r);
        signal::register(&mut r);
        sparse::register(&mut r);
        strings::register(&mut r);
        text::register(&mut r);
        tf1::register(&mut r);
        variables::register(&mut r);
        r
    }
}

pub(crate) use control::direct_call;
pub(crate) use nn::conv_padded;
pub(crate) use sparse::{fused_embedding_segment, ParamsFrom};
pub(crate) use tf1::{deref as deref_ref, deref_inputs, takes_ref, REF_PRODUCERS};

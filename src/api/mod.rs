//! The public surface: [`load`], [`Model`], [`Signature`], [`Function`], [`KerasLayer`],
//! [`inspect`]. Thin: the load sequence, the meta-graph view and the object graph live in
//! `crate::loader`; this module wraps them in the types users hold.

mod inspect;
pub mod json;
mod keras_layer;

pub use inspect::{inspect, inspect_with, Inspection};
pub use keras_layer::{EntryPoint, KerasLayer, KerasOptions};

pub use crate::loader::structure::{RaggedTensor, Spec, Value};
pub use crate::loader::{CallableInfo, LoadOptions, TensorSpec};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::graph::{Compiler, Feed, Fetch, Plan};
use crate::loader::{self, FnRef, Loaded};
use crate::ops::{EvalCtx, Session};
use crate::tensor::{DType, Tensor};

/// Loads a model with default options. `handle` is a local SavedModel directory, a frozen
/// GraphDef `.pb`, or any handle the hub resolves (`https://tfhub.dev/...`, Kaggle URLs,
/// tarball URLs, `file://`), downloaded once into the cache.
///
/// # Errors
/// Resolution or download failures, unreadable or invalid files, checkpoint corruption,
/// unsupported ops (all listed at once).
pub fn load(handle: impl AsRef<Path>) -> Result<Model> {
    let dir = resolve(handle.as_ref())?;
    Model::load_with(&dir, &LoadOptions::default())
}

/// A local path as is; anything else through [`crate::hub::Hub::from_env`].
///
/// # Errors
/// [`Error::Hub`] when the handle cannot be resolved.
pub fn resolve(handle: &Path) -> Result<PathBuf> {
    if handle.exists() {
        return Ok(handle.to_path_buf());
    }
    let s = handle.to_string_lossy();
    let hub = crate::hub::Hub::from_env()?;
    Ok(hub.resolve(&s)?.into_path_buf())
}

/// A loaded model. `Send + Sync`: call it from many threads at once.
#[derive(Debug)]
pub struct Model {
    dir: PathBuf,
    loaded: Arc<Loaded>,
    signatures: BTreeMap<String, Signature>,
    /// Signatures that could not be compiled, with why (reported when they are asked for).
    broken: BTreeMap<String, Arc<Error>>,
    /// Frozen GraphDefs have no signatures: callers name feeds and fetches; plans are cached.
    frozen: Option<Frozen>,
}

/// (feeds, fetches) of a cached frozen-graph plan.
type PlanKey = (Vec<String>, Vec<String>);

#[derive(Debug)]
struct Frozen {
    plans: std::sync::Mutex<BTreeMap<PlanKey, Arc<Plan>>>,
}

/// A callable signature of a [`Model`].
#[derive(Debug)]
pub struct Signature {
    name: String,
    inputs: Vec<TensorSpec>,
    outputs: Vec<TensorSpec>,
    plan: Plan,
    session: Arc<Session>,
}

/// A callable attribute of a model's object graph (`__call__`, `tokenize`,
/// `encoder.mlm`, `signatures.serving_default`): see [`Model::function`].
#[derive(Debug, Clone)]
pub struct Function {
    loaded: Arc<Loaded>,
    f: FnRef,
}

impl Function {
    /// The attribute path this function was found at.
    pub fn path(&self) -> &str {
        &self.f.path
    }

    /// Calls the function as TF does: binds `(args, kwargs)` to its saved argument spec,
    /// picks the first concrete function (in saved order) whose input structure accepts the
    /// call, flattens the arguments in TF's `nest` order, binds captured variables, tables and
    /// assets, and rebuilds the output structure.
    ///
    /// # Errors
    /// [`Error::Call`] for binding errors, [`Error::NoMatchingFunction`] listing the concrete
    /// signatures when none matches, unsupported ops of this function, op failures.
    pub fn call(&self, args: Vec<Value>, kwargs: BTreeMap<String, Value>) -> Result<Value> {
        loader::call(&self.loaded, &self.f, args, kwargs)
    }

    /// [`Function::call`] with keyword arguments given as pairs.
    ///
    /// # Errors
    /// As [`Function::call`].
    pub fn call_kw<K: Into<String>>(
        &self,
        args: Vec<Value>,
        kwargs: impl IntoIterator<Item = (K, Value)>,
    ) -> Result<Value> {
        self.call(
            args,
            kwargs.into_iter().map(|(k, v)| (k.into(), v)).collect(),
        )
    }

    /// This function's concrete signatures, one `(inputs) -> outputs` line each.
    pub fn concrete_signatures(&self) -> Vec<String> {
        self.loaded
            .callables()
            .into_iter()
            .find(|c| c.path == self.f.path)
            .map(|c| c.signatures)
            .unwrap_or_default()
    }

    /// True if the saved argument spec names an argument `name` (as `training`).
    pub fn takes_argument(&self, name: &str) -> bool {
        loader::takes_argument(&self.loaded, &self.f, name)
    }
}

impl Model {
    /// Loads with explicit options.
    ///
    /// # Errors
    /// See [`load`].
    pub fn load_with(path: &Path, opts: &LoadOptions) -> Result<Model> {
        let r = loader::load(path, opts)?;
        let mut signatures = BTreeMap::new();
        let mut broken = BTreeMap::new();
        for (view, plan) in r.signatures {
            match plan {
                Ok(plan) => {
                    signatures.insert(
                        view.key.clone(),
                        Signature {
                            name: view.key,
                            inputs: view.inputs,
                            outputs: view.outputs,
                            plan,
                            session: r.loaded.session.clone(),
                        },
                    );
                }
                Err(e) => {
                    broken.insert(view.key, e);
                }
            }
        }
        let frozen = r.loaded.frozen.then(|| Frozen {
            plans: Default::default(),
        });
        Ok(Model {
            dir: r.loaded.dir.clone(),
            loaded: r.loaded,
            signatures,
            broken,
            frozen,
        })
    }

    /// The callable attribute at dotted `path` of the object graph (`""` or `"__call__"` for
    /// the model itself, `"tokenize"`, `"encoder.mlm"`, `"signatures.serving_default"`).
    ///
    /// # Errors
    /// [`Error::NotFound`] listing the callable attributes; [`Error::InvalidModel`] for a
    /// model without an object graph (TF1).
    pub fn function(&self, path: &str) -> Result<Function> {
        Ok(Function {
            loaded: self.loaded.clone(),
            f: loader::resolve(&self.loaded, path)?,
        })
    }

    /// The object graph's callable attributes with their concrete signatures (empty for TF1
    /// models and frozen graphs).
    pub fn functions(&self) -> Vec<CallableInfo> {
        self.loaded.callables()
    }

    /// True if the model itself is callable (its root has `__call__`), as `hub.KerasLayer`
    /// checks.
    pub fn is_callable(&self) -> bool {
        loader::resolve(&self.loaded, "").is_ok()
    }

    /// The model directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Signature names (those that compiled).
    pub fn signature_names(&self) -> Vec<&str> {
        self.signatures.keys().map(String::as_str).collect()
    }

    /// The signature `name` (`serving_default` for most models).
    ///
    /// # Errors
    /// [`Error::NotFound`] listing the available signatures.
    /// A signature whose ops tfhub lacks fails here with its own `unsupported ops` list; the
    /// other signatures work.
    pub fn signature(&self, name: &str) -> Result<&Signature> {
        if let Some(e) = self.broken.get(name) {
            return Err(loader::replay(e));
        }
        self.signatures.get(name).ok_or_else(|| Error::NotFound {
            what: "signature",
            name: name.to_string(),
            available: self.signatures.keys().cloned().collect(),
        })
    }

    /// Signatures that failed to compile, with why.
    pub fn broken_signatures(&self) -> Vec<(&str, String)> {
        self.broken
            .iter()
            .map(|(k, e)| (k.as_str(), e.to_string()))
            .collect()
    }

    /// Runs a graph by tensor names (`node` or `node:idx`): for frozen GraphDefs (TF1 `.pb`
    /// files), which have no signatures. Plans are compiled on first use and cached.
    ///
    /// # Errors
    /// Unknown nodes, unsupported ops, op failures.
    pub fn run_graph(&self, feeds: &[(&str, Tensor)], fetches: &[&str]) -> Result<Vec<Tensor>> {
        let Some(fr) = &self.frozen else {
            return Err(Error::invalid(
                &self.dir,
                "run_graph is for frozen GraphDefs; this SavedModel has signatures",
            ));
        };
        let key = (
            feeds.iter().map(|(n, _)| n.to_string()).collect::<Vec<_>>(),
            fetches.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
        );
        let cached = fr.plans.lock().ok().and_then(|m| m.get(&key).cloned());
        let plan =
            match cached {
                Some(p) => p,
                None => {
                    let graph =
                        self.loaded.meta.graph_def.as_ref().ok_or_else(|| {
                            Error::invalid(&self.dir, "meta graph has no graph_def")
                        })?;
                    let mut c = Compiler::new(
                        loader::registry(),
                        graph.library.as_ref(),
                        None,
                        self.loaded.opts.limits.clone(),
                    );
                    c.set_fusion(self.loaded.opts.fusion);
                    let fd: Vec<Feed> = key.0.iter().map(|n| Feed::parse(n)).collect();
                    let ft: Vec<Fetch> = key
                        .1
                        .iter()
                        .map(|n| Fetch::Tensor(Feed::parse(n)))
                        .collect();
                    let p = Arc::new(c.compile_graph(&graph.node, &fd, &ft)?);
                    if let Ok(mut m) = fr.plans.lock() {
                        m.insert(key.clone(), p.clone());
                    }
                    p
                }
            };
        let mut cx = EvalCtx::new(&self.loaded.session);
        plan.run(&mut cx, feeds.iter().map(|(_, t)| t.clone()).collect())
    }

    /// The `dtype` attribute of a frozen graph's node (its Placeholders' input types).
    pub fn placeholder_dtype(&self, node: &str) -> Option<DType> {
        self.frozen.as_ref()?;
        let g = self.loaded.meta.graph_def.as_ref()?;
        let n = g
            .node
            .iter()
            .find(|n| n.name == node.split(':').next().unwrap_or(node))?;
        match n.attr.get("dtype")?.value.as_ref()? {
            crate::proto::attr_value::Value::Type(t) => DType::from_proto(*t),
            _ => None,
        }
    }

    /// True for a frozen GraphDef (use [`Model::run_graph`]).
    pub fn is_frozen(&self) -> bool {
        self.frozen.is_some()
    }

    /// The shared session (resources, caps).
    pub fn session(&self) -> &Session {
        &self.loaded.session
    }
}

impl Signature {
    /// The signature's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Inputs, sorted by key.
    pub fn inputs(&self) -> &[TensorSpec] {
        &self.inputs
    }

    /// Outputs, sorted by key.
    pub fn outputs(&self) -> &[TensorSpec] {
        &self.outputs
    }

    /// Runs the signature. Every input must be given by key, with the declared dtype and a
    /// shape compatible with the declared one.
    ///
    /// # Errors
    /// [`Error::Input`] naming the expected signature for wrong names, dtypes or shapes; op
    /// failures name their node.
    pub fn call<K: AsRef<str>>(
        &self,
        inputs: impl IntoIterator<Item = (K, Tensor)>,
    ) -> Result<BTreeMap<String, Tensor>> {
        let mut given: BTreeMap<String, Tensor> = BTreeMap::new();
        for (k, t) in inputs {
            given.insert(k.as_ref().to_string(), t);
        }
        let mut args = Vec::with_capacity(self.inputs.len());
        for spec in &self.inputs {
            let t = given
                .remove(&spec.key)
                .ok_or_else(|| self.input_err(format!("missing input {:?}", spec.key)))?;
            self.check(spec, &t)?;
            args.push(t);
        }
        if let Some(k) = given.keys().next() {
            return Err(self.input_err(format!("unknown input {k:?}")));
        }
        let mut cx = EvalCtx::new(&self.session);
        let outs = self.plan.run(&mut cx, args)?;
        Ok(self
            .outputs
            .iter()
            .zip(outs)
            .map(|(s, t)| (s.key.clone(), t))
            .collect())
    }

    fn input_err(&self, what: String) -> Error {
        Error::Input {
            signature: self.name.clone(),
            what: format!("{what}; expected {}", self.describe_inputs()),
        }
    }

    /// `name: dtype[shape]` for every input.
    pub fn describe_inputs(&self) -> String {
        self.inputs
            .iter()
            .map(|s| format!("{}: {}{}", s.key, s.dtype, fmt_shape(&s.shape)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn check(&self, spec: &TensorSpec, t: &Tensor) -> Result<()> {
        if t.dtype() != spec.dtype {
            return Err(self.input_err(format!(
                "input {:?} has dtype {}, not {}",
                spec.key,
                t.dtype(),
                spec.dtype
            )));
        }
        if let Some(dims) = &spec.shape {
            let ok = dims.len() == t.rank()
                && dims
                    .iter()
                    .zip(t.shape())
                    .all(|(&d, &g)| d < 0 || d as usize == g);
            if !ok {
                return Err(self.input_err(format!(
                    "input {:?} has shape {:?}, not {}",
                    spec.key,
                    t.shape(),
                    fmt_shape(&spec.shape)
                )));
            }
        }
        Ok(())
    }
}

fn fmt_shape(s: &Option<Vec<i64>>) -> String {
    match s {
        None => "[?]".into(),
        Some(d) => format!(
            "[{}]",
            d.iter()
                .map(|&x| if x < 0 {
                    "?".to_string()
                } else {
                    x.to_string()
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

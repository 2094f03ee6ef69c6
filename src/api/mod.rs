//! The public surface: [`load`], [`Model`], [`Signature`], [`inspect`].
//!
//! Loading follows TensorFlow's C++ loader (`cc/saved_model/loader.cc`): pick the meta graph
//! by tags, restore variables by running the SaverDef's restore op with the checkpoint prefix
//! fed, feed asset paths, run the init op, then compile each signature into a plan. All plans
//! are compiled before anything runs, so every unsupported op is reported at once, at load.

mod inspect;
pub mod json;
mod keras_layer;

pub use inspect::{inspect, Inspection};
pub use keras_layer::KerasLayer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use prost::Message;

use crate::error::{Error, RefusedOp, Result, UnsupportedOp};
use crate::graph::{Compiler, Feed, Fetch, Plan};
use crate::ops::{EvalCtx, Limits, Registry, Session};
use crate::proto::{AssetFileDef, MetaGraphDef, TensorInfo};
use crate::saved_model::checkpoint::BundleReader;
use crate::saved_model::{SavedModel, INIT_OP_SIGNATURE_KEY, SERVE_TAG};
use crate::tensor::{Bytes, DType, Tensor};

fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(Registry::with_all_ops)
}

/// How to load a model.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Meta graph tags (exact set); default `["serve"]`.
    pub tags: Vec<String>,
    /// Resource caps.
    pub limits: Limits,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            tags: vec![SERVE_TAG.to_string()],
            limits: Limits::default(),
        }
    }
}

/// Name, dtype and shape of a signature input or output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    /// The key users see (`sentences`, `output_0`).
    pub key: String,
    /// The graph tensor (`serving_default_sentences:0`).
    pub tensor: String,
    /// Element type.
    pub dtype: DType,
    /// Dims (`-1` unknown); `None` for unknown rank.
    pub shape: Option<Vec<i64>>,
}

/// A loaded model. `Send + Sync`: call it from many threads at once.
#[derive(Debug)]
pub struct Model {
    dir: PathBuf,
    session: Arc<Session>,
    signatures: BTreeMap<String, Signature>,
    /// Frozen GraphDefs have no signatures: callers name feeds and fetches; plans are cached.
    frozen: Option<Frozen>,
}

/// (feeds, fetches) of a cached frozen-graph plan.
type PlanKey = (Vec<String>, Vec<String>);

#[derive(Debug)]
struct Frozen {
    meta: MetaGraphDef,
    plans: std::sync::Mutex<BTreeMap<PlanKey, Arc<Plan>>>,
    limits: Limits,
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

fn spec(key: &str, info: &TensorInfo) -> TensorSpec {
    let name = match &info.encoding {
        Some(crate::proto::tensor_info::Encoding::Name(n)) => n.clone(),
        _ => String::new(),
    };
    TensorSpec {
        key: key.to_string(),
        tensor: name,
        dtype: DType::from_proto(info.dtype).unwrap_or(DType::Variant),
        shape: info
            .tensor_shape
            .as_ref()
            .and_then(|s| (!s.unknown_rank).then(|| s.dim.iter().map(|d| d.size).collect())),
    }
}

fn asset_defs(mg: &MetaGraphDef) -> Vec<AssetFileDef> {
    if !mg.asset_file_def.is_empty() {
        return mg.asset_file_def.clone();
    }
    use crate::proto::collection_def::Kind;
    match mg
        .collection_def
        .get("saved_model_assets")
        .and_then(|c| c.kind.as_ref())
    {
        Some(Kind::AnyList(l)) => l
            .value
            .iter()
            .filter_map(|a| AssetFileDef::decode(a.value.as_slice()).ok())
            .collect(),
        _ => Vec::new(),
    }
}

fn init_op_name(mg: &MetaGraphDef) -> Option<String> {
    if let Some(sig) = mg.signature_def.get(INIT_OP_SIGNATURE_KEY) {
        if let Some(info) = sig.outputs.get(INIT_OP_SIGNATURE_KEY) {
            let s = spec(INIT_OP_SIGNATURE_KEY, info);
            return Some(s.tensor);
        }
    }
    use crate::proto::collection_def::Kind;
    for key in ["saved_model_main_op", "legacy_init_op"] {
        if let Some(Kind::NodeList(l)) = mg.collection_def.get(key).and_then(|c| c.kind.as_ref()) {
            if let Some(n) = l.value.first() {
                return Some(n.clone());
            }
        }
    }
    None
}

impl Model {
    /// Loads with explicit options.
    ///
    /// # Errors
    /// See [`load`].
    pub fn load_with(path: &Path, opts: &LoadOptions) -> Result<Model> {
        let sm = SavedModel::open(path)?;
        let tags: Vec<&str> = opts.tags.iter().map(String::as_str).collect();
        let mg = sm.meta_graph(&tags)?;
        let graph = mg
            .graph_def
            .as_ref()
            .ok_or_else(|| Error::invalid(&sm.file, "meta graph has no graph_def"))?;
        // Absolute and canonical: asset paths fed to the graph and the confinement root agree.
        let root = sm.dir.canonicalize().map_err(|source| Error::Io {
            path: sm.dir.clone(),
            source,
        })?;
        let checkpoint = match sm.variables_prefix() {
            Some(prefix) => Some(Arc::new(BundleReader::open_within(&prefix, &root)?)),
            None => None,
        };
        let session = Arc::new(Session::new(
            root.clone(),
            checkpoint.clone(),
            opts.limits.clone(),
        ));
        let op_list = mg
            .meta_info_def
            .as_ref()
            .and_then(|m| m.stripped_op_list.as_ref());
        let mut compiler = Compiler::new(
            registry(),
            graph.library.as_ref(),
            op_list,
            opts.limits.clone(),
        );
        let mut unsupported: Vec<UnsupportedOp> = Vec::new();
        let mut refused: Vec<RefusedOp> = Vec::new();
        let mut collect = |r: Result<Plan>| -> Result<Option<Plan>> {
            match r {
                Ok(p) => Ok(Some(p)),
                Err(Error::UnsupportedOps(v)) => {
                    unsupported.extend(v);
                    Ok(None)
                }
                Err(Error::RefusedOps(v)) => {
                    refused.extend(v);
                    Ok(None)
                }
                Err(e) => Err(e),
            }
        };

        // Asset feeds: tensor -> <dir>/assets/<filename>, only for tensors that exist.
        let node_names: std::collections::HashSet<&str> =
            graph.node.iter().map(|n| n.name.as_str()).collect();
        let mut asset_feeds: Vec<(Feed, Tensor)> = Vec::new();
        for a in asset_defs(mg) {
            let Some(info) = &a.tensor_info else { continue };
            let s = spec("", info);
            let feed = Feed::parse(&s.tensor);
            if node_names.contains(feed.node.as_str()) {
                let p = root.join("assets").join(&a.filename);
                asset_feeds.push((
                    feed,
                    Tensor::scalar(Bytes::from(p.to_string_lossy().into_owned())),
                ));
            }
        }

        // Restore plan.
        let mut restore = None;
        if let (Some(saver), Some(reader)) = (&mg.saver_def, &checkpoint) {
            if !saver.restore_op_name.is_empty() {
                let mut feeds = vec![Feed::parse(&saver.filename_tensor_name)];
                let prefix = reader.index_path().with_extension("");
                let mut args = vec![Tensor::scalar(Bytes::from(
                    prefix.to_string_lossy().into_owned(),
                ))];
                for (f, t) in &asset_feeds {
                    feeds.push(f.clone());
                    args.push(t.clone());
                }
                let fetch = [Fetch::Target(saver.restore_op_name.clone())];
                if let Some(p) = collect(compiler.compile_graph(&graph.node, &feeds, &fetch))? {
                    restore = Some((p, args));
                }
            }
        }
        // Init plan.
        let mut init = None;
        if let Some(op) = init_op_name(mg) {
            let feeds: Vec<Feed> = asset_feeds.iter().map(|(f, _)| f.clone()).collect();
            let args: Vec<Tensor> = asset_feeds.iter().map(|(_, t)| t.clone()).collect();
            let fetch = [Fetch::Target(
                op.split(':').next().unwrap_or(&op).to_string(),
            )];
            if let Some(p) = collect(compiler.compile_graph(&graph.node, &feeds, &fetch))? {
                init = Some((p, args));
            }
        }
        // Signatures.
        let mut signatures = BTreeMap::new();
        for (key, sig) in &mg.signature_def {
            if key == INIT_OP_SIGNATURE_KEY {
                continue;
            }
            let inputs: Vec<TensorSpec> = sig.inputs.iter().map(|(k, v)| spec(k, v)).collect();
            let outputs: Vec<TensorSpec> = sig.outputs.iter().map(|(k, v)| spec(k, v)).collect();
            let feeds: Vec<Feed> = inputs.iter().map(|s| Feed::parse(&s.tensor)).collect();
            let fetches: Vec<Fetch> = outputs
                .iter()
                .map(|s| Fetch::Tensor(Feed::parse(&s.tensor)))
                .collect();
            let plan = compiler
                .compile_graph(&graph.node, &feeds, &fetches)
                .map_err(|e| match e {
                    // Node errors already say where; their cause must stay reachable.
                    Error::UnsupportedOps(_) | Error::RefusedOps(_) | Error::Node { .. } => e,
                    other => Error::Input {
                        signature: key.clone(),
                        what: format!("cannot be compiled: {other}"),
                    },
                });
            if let Some(plan) = collect(plan)? {
                signatures.insert(
                    key.clone(),
                    Signature {
                        name: key.clone(),
                        inputs,
                        outputs,
                        plan,
                        session: session.clone(),
                    },
                );
            }
        }
        if !refused.is_empty() {
            let mut seen = std::collections::HashSet::new();
            refused.retain(|r| seen.insert(r.op.clone()));
            return Err(Error::RefusedOps(refused));
        }
        if !unsupported.is_empty() {
            let mut seen = std::collections::HashSet::new();
            unsupported.retain(|u| seen.insert(u.op.clone()));
            return Err(Error::UnsupportedOps(unsupported));
        }
        // Run restore, then init, as TF's loader does.
        for (plan, args) in [restore, init].into_iter().flatten() {
            let mut cx = EvalCtx::new(&session);
            plan.run(&mut cx, args)?;
        }
        // Issue #17: variables nothing writes become constants (the one call of graph::freeze).
        crate::graph::freeze::freeze_signatures(
            registry(),
            graph,
            op_list,
            &opts.limits,
            &session,
            signatures.values_mut().map(|s| {
                let feeds = s.inputs.iter().map(|i| Feed::parse(&i.tensor)).collect();
                let fetches = (s.outputs.iter())
                    .map(|o| Fetch::Tensor(Feed::parse(&o.tensor)))
                    .collect();
                (feeds, fetches, &mut s.plan)
            }),
        );
        let frozen = sm.frozen.then(|| Frozen {
            meta: mg.clone(),
            plans: Default::default(),
            limits: opts.limits.clone(),
        });
        Ok(Model {
            dir: sm.dir,
            session,
            signatures,
            frozen,
        })
    }

    /// The model directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Signature names.
    pub fn signature_names(&self) -> Vec<&str> {
        self.signatures.keys().map(String::as_str).collect()
    }

    /// The signature `name` (`serving_default` for most models).
    ///
    /// # Errors
    /// [`Error::NotFound`] listing the available signatures.
    pub fn signature(&self, name: &str) -> Result<&Signature> {
        self.signatures.get(name).ok_or_else(|| Error::NotFound {
            what: "signature",
            name: name.to_string(),
            available: self.signatures.keys().cloned().collect(),
        })
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
        let plan = match cached {
            Some(p) => p,
            None => {
                let graph = fr
                    .meta
                    .graph_def
                    .as_ref()
                    .ok_or_else(|| Error::invalid(&self.dir, "meta graph has no graph_def"))?;
                let mut c =
                    Compiler::new(registry(), graph.library.as_ref(), None, fr.limits.clone());
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
        let mut cx = EvalCtx::new(&self.session);
        plan.run(&mut cx, feeds.iter().map(|(_, t)| t.clone()).collect())
    }

    /// The `dtype` attribute of a frozen graph's node (its Placeholders' input types).
    pub fn placeholder_dtype(&self, node: &str) -> Option<DType> {
        let g = self.frozen.as_ref()?.meta.graph_def.as_ref()?;
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
        &self.session
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

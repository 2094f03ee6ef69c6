//! The loader: turns a SavedModel directory into a runnable model state. Owns the load
//! sequence and nothing else: which meta graph (tags, with the TF Hub rules), restore →
//! assets → init (TF's `cc/saved_model/loader.cc`), then the entry points: each signature is
//! compiled at load with its failure kept to itself, and object-graph functions
//! (`objects.rs`) are compiled on first call. Reads protos only through [`meta::MetaView`]
//! (shared with `inspect`) and the object graph; `api` is the public surface over this.

pub mod meta;
mod objects;
pub mod structure;
mod tf1;

pub use meta::{AssetView, MetaView, RestoreView, SignatureView, TensorSpec};
pub use objects::{list_graph, CallableInfo};

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::error::{Error, RefusedOp, Result, UnsupportedOp};
use crate::graph::{Compiler, Feed, Fetch, Plan};
use crate::ops::{EvalCtx, Limits, Registry, Session};
use crate::proto::MetaGraphDef;
use crate::saved_model::checkpoint::BundleReader;
use crate::saved_model::{sorted_tags, SavedModel, SavedModelError, SERVE_TAG};
use crate::tensor::{Bytes, Tensor};

pub(crate) use objects::{call, list, resolve, takes_argument, FnRef};

/// File that marks a TF1 Hub module (`tensorflow_hub.ModuleDef`).
pub const TFHUB_MODULE_PB: &str = "tfhub_module.pb";

pub(crate) fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(Registry::with_all_ops)
}

/// How to load a model. Library behaviour is set here, never read from the environment (the
/// CLI maps `TFHUB_NO_FUSION` / `TFHUB_NO_FREEZE` / `TFHUB_PROFILE` onto `fusion` / `freeze` /
/// `profile`).
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Meta graph tags (exact set); default `["serve"]`. With the default, a TF1 Hub module
    /// (`tfhub_module.pb` beside `saved_model.pb`) loads its empty tag set and a SavedModel with
    /// a single meta graph loads that one, as `hub.load` does.
    pub tags: Vec<String>,
    /// Resource caps.
    pub limits: Limits,
    /// Plan-time fusion (default on).
    pub fusion: bool,
    /// Freeze resource variables nothing writes into constants after restore/init, so
    /// constant folding and fusion see the weights (`graph::freeze`; default on).
    pub freeze: bool,
    /// Accumulate per-op times in `graph::profile` (default off).
    pub profile: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            tags: vec![SERVE_TAG.to_string()],
            limits: Limits::default(),
            fusion: true,
            freeze: true,
            profile: false,
        }
    }
}

/// The loaded state shared by a model's signatures and functions.
#[derive(Debug)]
pub(crate) struct Loaded {
    /// The directory as given.
    pub dir: PathBuf,
    /// Its canonical form (asset paths, confinement).
    pub root: PathBuf,
    pub session: Arc<Session>,
    pub meta: Arc<MetaGraphDef>,
    pub opts: LoadOptions,
    pub frozen: bool,
    pub(crate) objects: objects::Objects,
}

/// What [`load`] produced: the state, and each signature's plan or failure.
#[derive(Debug)]
pub(crate) struct LoadResult {
    pub loaded: Arc<Loaded>,
    pub signatures: Vec<(SignatureView, std::result::Result<Plan, Arc<Error>>)>,
}

/// The meta graph `opts.tags` selects. Explicit tags must match a tag set exactly. With the
/// default tags, a missing `serve` set falls back as `hub.load` does: the empty set of a TF1
/// Hub module, or the only meta graph there is.
pub fn choose_meta_graph<'a>(sm: &'a SavedModel, opts: &LoadOptions) -> Result<&'a MetaGraphDef> {
    let tags: Vec<&str> = opts.tags.iter().map(String::as_str).collect();
    match sm.meta_graph(&tags) {
        Ok(mg) => Ok(mg),
        Err(e @ SavedModelError::NoMetaGraph { .. }) => {
            let default = opts.tags.len() == 1 && opts.tags[0] == SERVE_TAG;
            if default {
                if sm.dir.join(TFHUB_MODULE_PB).is_file() {
                    if let Some(mg) = sm.meta_graphs.iter().find(|m| sorted_tags(m).is_empty()) {
                        return Ok(mg);
                    }
                }
                if let [only] = sm.meta_graphs.as_slice() {
                    return Ok(only);
                }
            }
            Err(e.into())
        }
        Err(e) => Err(e.into()),
    }
}

/// Re-raises a kept failure (compile errors are kept per entry point and reported on every
/// use): op lists are copied as they are, anything else keeps its message.
pub(crate) fn replay(e: &Error) -> Error {
    match e {
        Error::UnsupportedOps(v) => Error::UnsupportedOps(v.clone()),
        Error::RefusedOps(v) => Error::RefusedOps(v.clone()),
        Error::InvalidModel { path, what } => Error::InvalidModel {
            path: path.clone(),
            what: what.clone(),
        },
        other => {
            let mut chain = vec![other.to_string()];
            let mut src = std::error::Error::source(other);
            while let Some(s) = src {
                chain.push(s.to_string());
                src = std::error::Error::source(s);
            }
            Error::invalid("entry point", chain.join(": "))
        }
    }
}

/// Loads the model at `path`: restore → assets → init, signatures compiled (each failure kept
/// to its signature), object-graph functions left for their first call.
///
/// # Errors
/// Unreadable or invalid files, a missing meta graph (listing the tag sets), restore or init
/// that cannot run, refused ops anywhere, or unsupported ops in every signature (all listed).
pub(crate) fn load(path: &Path, opts: &LoadOptions) -> Result<LoadResult> {
    load_inner(path, opts, true)
}

/// `strict = false` (for `inspect`): keep every failure per entry point and run nothing.
fn load_inner(path: &Path, opts: &LoadOptions, strict: bool) -> Result<LoadResult> {
    let mut sm = SavedModel::open(path)?;
    let mg = choose_meta_graph(&sm, opts)?;
    let index = sm
        .meta_graphs
        .iter()
        .position(|m| std::ptr::eq(m, mg))
        .expect("the chosen meta graph is one of the model's");
    let view = MetaView::new(mg);
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
    let mut session = Session::new(root.clone(), checkpoint.clone(), opts.limits.clone());
    session.profile = opts.profile;
    let session = Arc::new(session);
    // TF1: TF's default Saver when the meta graph has no SaverDef.
    let default_saver = match (&view.restore, &checkpoint) {
        (None, Some(_)) => tf1::default_saver(mg, &graph.node),
        _ => None,
    };
    let op_list = mg
        .meta_info_def
        .as_ref()
        .and_then(|m| m.stripped_op_list.as_ref());
    let new_compiler = || {
        let mut c = Compiler::new(
            registry(),
            graph.library.as_ref(),
            op_list,
            opts.limits.clone(),
        );
        c.set_fusion(opts.fusion);
        c
    };
    let mut compiler = new_compiler();

    // Asset feeds: tensor -> <dir>/assets/<filename>, only for tensors that exist.
    let node_names: std::collections::HashSet<&str> =
        graph.node.iter().map(|n| n.name.as_str()).collect();
    let mut asset_feeds: Vec<(Feed, Tensor)> = Vec::new();
    for a in &view.assets {
        let feed = Feed::parse(&a.tensor);
        if !a.tensor.is_empty() && node_names.contains(feed.node.as_str()) {
            let p = root.join("assets").join(&a.filename);
            asset_feeds.push((
                feed,
                Tensor::scalar(Bytes::from(p.to_string_lossy().into_owned())),
            ));
        }
    }

    // Restore, then init: both must compile, or nothing can run.
    let mut setup: Vec<(Plan, Vec<Tensor>)> = Vec::new();
    if let (Some(r), Some(reader)) = (&view.restore, &checkpoint) {
        let mut feeds = vec![Feed::parse(&r.filename_tensor)];
        let prefix = reader.index_path().with_extension("");
        let mut args = vec![Tensor::scalar(Bytes::from(
            prefix.to_string_lossy().into_owned(),
        ))];
        for (f, t) in &asset_feeds {
            feeds.push(f.clone());
            args.push(t.clone());
        }
        let fetch = [Fetch::Target(r.restore_op.clone())];
        setup.push((compiler.compile_graph(&graph.node, &feeds, &fetch)?, args));
    }
    if let (Some((nodes, prefix_node, target)), Some(reader)) = (&default_saver, &checkpoint) {
        let prefix = reader.index_path().with_extension("");
        let args = vec![Tensor::scalar(Bytes::from(
            prefix.to_string_lossy().into_owned(),
        ))];
        let feeds = [Feed::parse(prefix_node)];
        let fetch = [Fetch::Target(target.clone())];
        setup.push((compiler.compile_graph(nodes, &feeds, &fetch)?, args));
    }
    if let Some(op) = &view.init_op {
        let feeds: Vec<Feed> = asset_feeds.iter().map(|(f, _)| f.clone()).collect();
        let args: Vec<Tensor> = asset_feeds.iter().map(|(_, t)| t.clone()).collect();
        let fetch = [Fetch::Target(op.clone())];
        setup.push((compiler.compile_graph(&graph.node, &feeds, &fetch)?, args));
    }
    if !view.default_init.is_empty() {
        // TF1: Scaffold.default_local_init_op() when no init op is named.
        let feeds: Vec<Feed> = asset_feeds.iter().map(|(f, _)| f.clone()).collect();
        let args: Vec<Tensor> = asset_feeds.iter().map(|(_, t)| t.clone()).collect();
        let fetch: Vec<Fetch> = view
            .default_init
            .iter()
            .cloned()
            .map(Fetch::Target)
            .collect();
        setup.push((compiler.compile_graph(&graph.node, &feeds, &fetch)?, args));
    }

    // Issue #17: variables nothing writes become constants (`graph::freeze`). Restore and init
    // run first, so the signatures compile once, against the variables' values.
    let sig_io: Vec<(Vec<Feed>, Vec<Fetch>)> = view
        .signatures
        .iter()
        .map(|sig| {
            let feeds = sig.inputs.iter().map(|s| Feed::parse(&s.tensor)).collect();
            let fetches = (sig.outputs.iter())
                .map(|s| Fetch::Tensor(Feed::parse(&s.tensor)))
                .collect();
            (feeds, fetches)
        })
        .collect();
    let mut frozen = std::collections::HashMap::new();
    if strict && opts.freeze && !sig_io.is_empty() {
        let fetches: Vec<Fetch> = sig_io.iter().flat_map(|(_, f)| f.iter().cloned()).collect();
        if !crate::graph::freeze::may_write(graph, &fetches) {
            for (plan, args) in std::mem::take(&mut setup) {
                let mut cx = EvalCtx::new(&session);
                plan.run(&mut cx, args)?;
            }
            frozen = crate::graph::freeze::frozen_values(graph, &session, &fetches);
        }
    }
    let sig_compiler = || {
        let mut c = new_compiler();
        c.freeze_variables(frozen.clone());
        c
    };
    if !frozen.is_empty() {
        compiler = sig_compiler();
    }

    // Signatures: one failure stays with its signature.
    let mut signatures = Vec::new();
    let mut refused: Vec<RefusedOp> = Vec::new();
    let mut unsupported: Vec<UnsupportedOp> = Vec::new();
    for (sig, (feeds, fetches)) in view.signatures.iter().zip(&sig_io) {
        let mut r = compiler.compile_graph(&graph.node, feeds, fetches);
        let fell_back = r.is_err() && !frozen.is_empty();
        if fell_back {
            // As without freezing: a signature that does not compile frozen runs the reads.
            compiler = new_compiler();
            r = compiler.compile_graph(&graph.node, feeds, fetches);
        }
        let r = r.map_err(|e| match e {
            // Node errors already say where; their cause must stay reachable.
            Error::UnsupportedOps(_) | Error::RefusedOps(_) | Error::Node { .. } => e,
            other => Error::Input {
                signature: sig.key.clone(),
                what: format!("cannot be compiled: {other}"),
            },
        });
        if r.is_err() || fell_back {
            // Functions compiled while failing hold holes; later entries start afresh (and
            // after an unfrozen fallback, frozen again).
            compiler = sig_compiler();
        }
        match &r {
            Err(Error::RefusedOps(v)) => refused.extend(v.iter().cloned()),
            Err(Error::UnsupportedOps(v)) => unsupported.extend(v.iter().cloned()),
            _ => {}
        }
        signatures.push((sig.clone(), r.map_err(Arc::new)));
    }
    if strict && !refused.is_empty() {
        let mut seen = std::collections::HashSet::new();
        refused.retain(|r| seen.insert(r.op.clone()));
        return Err(Error::RefusedOps(refused));
    }
    if strict && !signatures.is_empty() && signatures.iter().all(|(_, r)| r.is_err()) {
        if !unsupported.is_empty() {
            let mut seen = std::collections::HashSet::new();
            unsupported.retain(|u| seen.insert(u.op.clone()));
            return Err(Error::UnsupportedOps(unsupported));
        }
        if let Some((_, Err(e))) = signatures.into_iter().next() {
            return Err(Arc::try_unwrap(e).unwrap_or_else(|e| replay(&e)));
        }
        unreachable!("every signature failed, so the first one is an error");
    }
    // Run restore, then init, as TF's loader does (unless run above for freezing).
    for (plan, args) in setup.into_iter().filter(|_| strict) {
        let mut cx = EvalCtx::new(&session);
        plan.run(&mut cx, args)?;
    }
    // Moved, not cloned: a frozen graph's constants can be most of the model.
    let meta = Arc::new(sm.meta_graphs.swap_remove(index));
    let loaded = Arc::new(Loaded {
        dir: sm.dir.clone(),
        root,
        session,
        meta,
        opts: opts.clone(),
        frozen: sm.frozen,
        objects: Default::default(),
    });
    Ok(LoadResult { loaded, signatures })
}

impl Loaded {
    /// The object graph's callable attributes (empty without an object graph).
    pub(crate) fn callables(&self) -> Vec<CallableInfo> {
        list(self).unwrap_or_default()
    }
}

/// Compiles every signature and listed function of the model at `path` without running
/// anything, for `inspect`: `(entry point, Ok or why not)`.
pub(crate) fn runnable(path: &Path, opts: &LoadOptions) -> Result<Vec<(String, Option<String>)>> {
    let r = load_inner(path, opts, false)?;
    let mut out: Vec<(String, Option<String>)> = r
        .signatures
        .iter()
        .map(|(s, p)| {
            (
                format!("signature {}", s.key),
                p.as_ref().err().map(|e| e.to_string()),
            )
        })
        .collect();
    let l = &r.loaded;
    if let Ok(g) = objects_graph(l) {
        for c in l.callables() {
            let Ok(f) = resolve(l, &c.path) else { continue };
            let n = &g.nodes[f.node as usize];
            let names: Vec<String> = match &n.kind {
                Some(crate::proto::saved_object::Kind::Function(func)) => {
                    func.concrete_functions.clone()
                }
                Some(crate::proto::saved_object::Kind::BareConcreteFunction(b)) => {
                    vec![b.concrete_function_name.clone()]
                }
                _ => Vec::new(),
            };
            let err = names
                .iter()
                .find_map(|n| objects::plan(l, n).err().map(|e| e.to_string()));
            out.push((format!("function {}", c.path), err));
        }
    }
    Ok(out)
}

fn objects_graph(l: &Loaded) -> Result<&crate::proto::SavedObjectGraph> {
    l.meta
        .object_graph_def
        .as_ref()
        .filter(|g| !g.nodes.is_empty())
        .ok_or_else(|| Error::invalid(&l.dir, "no object graph"))
}

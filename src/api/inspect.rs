//! `tfhub inspect`: what `saved_model_cli show --all` prints, as data: tags, signatures,
//! assets, the object graph's callable attributes with their concrete signatures, variables,
//! and which entry points tfhub can run (compiled, never run). Reads the meta graphs through
//! the loader's `MetaView`, so inspect and the loader see the same thing.

use std::path::Path;

use serde_json::{json, Map, Value};

use crate::error::Result;
use crate::loader::{list_graph, LoadOptions, MetaView, TensorSpec};
use crate::saved_model::checkpoint::BundleReader;
use crate::saved_model::SavedModel;
use crate::tensor::DType;

/// A model's structure: meta graphs (tags, signatures, assets) and checkpoint variables.
#[derive(Debug, Clone)]
pub struct Inspection {
    /// `{"meta_graphs": [...], "variables": {...}}`, the layout of `tfhub inspect --json`.
    pub json: Value,
}

fn dtype_name(v: i32) -> String {
    if v == 0 {
        return "invalid".into();
    }
    match DType::from_proto(v) {
        Some(d) => d.name().into(),
        None => match v {
            8 => "complex64".into(),
            18 => "complex128".into(),
            11 => "qint8".into(),
            12 => "quint8".into(),
            13 => "qint32".into(),
            15 => "qint16".into(),
            16 => "quint16".into(),
            _ => format!("dtype_{v}"),
        },
    }
}

fn tensor_info(ti: &crate::proto::TensorInfo) -> Value {
    let t = TensorSpec::from_info("", ti);
    // A TensorInfo without a shape prints as `[]`, as TF's own tools do.
    let shape = match &ti.tensor_shape {
        Some(s) if s.unknown_rank => Value::Null,
        Some(s) => json!(s.dim.iter().map(|d| d.size).collect::<Vec<_>>()),
        None => json!([]),
    };
    json!({"name": t.tensor, "dtype": dtype_name(ti.dtype), "shape": shape})
}

/// Reads a SavedModel directory (or frozen GraphDef) and its checkpoint index, and compiles
/// (never runs) its entry points with default options to say which are runnable.
///
/// # Errors
/// Unreadable or invalid `saved_model.pb` or checkpoint index.
pub fn inspect(path: &Path) -> Result<Inspection> {
    inspect_with(path, &LoadOptions::default())
}

/// [`inspect`] with the options (tags, caps) the model would be loaded with.
///
/// # Errors
/// As [`inspect`].
pub fn inspect_with(path: &Path, opts: &LoadOptions) -> Result<Inspection> {
    let sm = SavedModel::open(path)?;
    let mut metas = Vec::new();
    for mg in &sm.meta_graphs {
        let view = MetaView::new(mg);
        let mut sigs = Map::new();
        for (key, sd) in &mg.signature_def {
            let io = |m: &std::collections::BTreeMap<String, crate::proto::TensorInfo>| {
                Value::Object(m.iter().map(|(k, v)| (k.clone(), tensor_info(v))).collect())
            };
            sigs.insert(
                key.clone(),
                json!({"method_name": sd.method_name, "inputs": io(&sd.inputs),
                       "outputs": io(&sd.outputs)}),
            );
        }
        let mut assets: Vec<&str> = view.assets.iter().map(|a| a.filename.as_str()).collect();
        assets.sort_unstable();
        let callables: Vec<Value> = view
            .object_graph
            .and_then(|g| list_graph(g).ok())
            .unwrap_or_default()
            .into_iter()
            .map(|c| json!({"path": c.path, "kind": c.kind, "concrete_signatures": c.signatures}))
            .collect();
        let graph = mg.graph_def.as_ref();
        metas.push(json!({
            "tags": view.tags,
            "signatures": sigs,
            "callables": callables,
            "asset_files": assets,
            "has_saver_def": mg.saver_def.is_some(),
            "nodes": graph.map_or(0, |g| g.node.len()),
            "functions": graph.and_then(|g| g.library.as_ref()).map_or(0, |l| l.function.len()),
            "tensorflow_version": mg.meta_info_def.as_ref().map(|m| m.tensorflow_version.clone()),
        }));
    }
    let mut vars = Map::new();
    if let Some(prefix) = sm.variables_prefix() {
        let reader = BundleReader::open(&prefix)?;
        for (key, e) in reader.iter() {
            let shape = e.shape();
            let bytes = DType::from_proto(e.dtype_code())
                .and_then(DType::size_of)
                .and_then(|s| e.num_elements().map(|n| n as u128 * s as u128))
                .unwrap_or(e.size() as u128);
            vars.insert(
                key.to_string(),
                json!({"dtype": dtype_name(e.dtype_code()), "shape": shape, "bytes": bytes as u64}),
            );
        }
    }
    let runnable = match crate::loader::runnable(path, opts) {
        Ok(v) => Value::Object(
            v.into_iter()
                .map(|(k, e)| (k, e.map_or(json!(true), |e| json!({"error": e}))))
                .collect(),
        ),
        Err(e) => json!({"error": e.to_string()}),
    };
    Ok(Inspection {
        json: json!({"meta_graphs": metas, "variables": vars, "runnable": runnable}),
    })
}

impl Inspection {
    /// Human-readable text, in the spirit of `saved_model_cli show --all`.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let empty = Vec::new();
        for mg in self.json["meta_graphs"].as_array().unwrap_or(&empty) {
            let _ = writeln!(s, "MetaGraphDef with tag-set: {}", mg["tags"]);
            if let Some(sigs) = mg["signatures"].as_object() {
                for (k, sig) in sigs {
                    let _ = writeln!(s, "\nsignature_def['{k}']:");
                    for dir in ["inputs", "outputs"] {
                        let _ = writeln!(s, "  {dir}:");
                        if let Some(m) = sig[dir].as_object() {
                            for (name, ti) in m {
                                let _ = writeln!(
                                    s,
                                    "    {name}: {} {} ({})",
                                    ti["dtype"].as_str().unwrap_or("?"),
                                    ti["shape"],
                                    ti["name"].as_str().unwrap_or("")
                                );
                            }
                        }
                    }
                    let _ = writeln!(s, "  method: {}", sig["method_name"].as_str().unwrap_or(""));
                }
            }
            if let Some(cs) = mg["callables"].as_array().filter(|c| !c.is_empty()) {
                let _ = writeln!(s, "\nConcrete Functions (callable attributes):");
                for c in cs {
                    let _ = writeln!(s, "  {}:", c["path"].as_str().unwrap_or(""));
                    for (i, sig) in c["concrete_signatures"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .enumerate()
                    {
                        let _ =
                            writeln!(s, "    Option #{}: {}", i + 1, sig.as_str().unwrap_or(""));
                    }
                }
            }
            let _ = writeln!(s, "\nassets: {}", mg["asset_files"]);
        }
        let _ = writeln!(s, "\nentry points (compiled, not run):");
        match self.json["runnable"].as_object() {
            Some(m) if m.contains_key("error") && m.len() == 1 => {
                let _ = writeln!(s, "  model does not load: {}", m["error"]);
            }
            Some(m) => {
                for (k, v) in m {
                    match v.get("error") {
                        Some(e) => {
                            let _ =
                                writeln!(s, "  {k}: NOT runnable: {}", e.as_str().unwrap_or(""));
                        }
                        None => {
                            let _ = writeln!(s, "  {k}: runnable");
                        }
                    }
                }
            }
            None => {}
        }
        let _ = writeln!(s, "\nvariables:");
        if let Some(vars) = self.json["variables"].as_object() {
            for (k, v) in vars {
                let _ = writeln!(
                    s,
                    "  {k}: {} {} ({} bytes)",
                    v["dtype"].as_str().unwrap_or("?"),
                    v["shape"],
                    v["bytes"]
                );
            }
        }
        s
    }
}

//! `tfhub inspect`: what `saved_model_cli show --all` prints, as data. Parses only; runs
//! nothing, so it works on models with ops tfhub cannot run.

use std::path::Path;

use serde_json::{json, Map, Value};

use crate::error::Result;
use crate::proto::TensorInfo;
use crate::saved_model::checkpoint::BundleReader;
use crate::saved_model::{sorted_tags, SavedModel};
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

fn tensor_info(ti: &TensorInfo) -> Value {
    let name = match &ti.encoding {
        Some(crate::proto::tensor_info::Encoding::Name(n)) => n.clone(),
        _ => String::new(),
    };
    let shape = match &ti.tensor_shape {
        Some(s) if s.unknown_rank => Value::Null,
        Some(s) => json!(s.dim.iter().map(|d| d.size).collect::<Vec<_>>()),
        None => json!([]),
    };
    json!({"name": name, "dtype": dtype_name(ti.dtype), "shape": shape})
}

/// Reads a SavedModel directory (or frozen GraphDef) and its checkpoint index.
///
/// # Errors
/// Unreadable or invalid `saved_model.pb` or checkpoint index.
pub fn inspect(path: &Path) -> Result<Inspection> {
    let sm = SavedModel::open(path)?;
    let mut metas = Vec::new();
    for mg in &sm.meta_graphs {
        let mut sigs = Map::new();
        for (key, sd) in &mg.signature_def {
            let io = |m: &std::collections::BTreeMap<String, TensorInfo>| {
                Value::Object(m.iter().map(|(k, v)| (k.clone(), tensor_info(v))).collect())
            };
            sigs.insert(
                key.clone(),
                json!({"method_name": sd.method_name, "inputs": io(&sd.inputs),
                       "outputs": io(&sd.outputs)}),
            );
        }
        // `asset_file_def`, else TF1's `saved_model_assets` collection (as the loader reads it).
        let mut assets: Vec<String> = super::asset_defs(mg)
            .into_iter()
            .map(|a| a.filename)
            .collect();
        assets.sort_unstable();
        assets.dedup();
        let graph = mg.graph_def.as_ref();
        metas.push(json!({
            "tags": sorted_tags(mg),
            "signatures": sigs,
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
    Ok(Inspection {
        json: json!({"meta_graphs": metas, "variables": vars}),
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
            let _ = writeln!(s, "\nassets: {}", mg["asset_files"]);
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

//! One checked view of a meta graph, shared by the loader and `inspect`: its signatures
//! (without the init-op entry), assets (from `asset_file_def`, else TF1's
//! `saved_model_assets` collection), init op (or TF1's default init targets), restore info
//! (SaverDef) and object graph.

use prost::Message;

use crate::proto::collection_def::Kind;
use crate::proto::{AssetFileDef, MetaGraphDef, SavedObjectGraph, TensorInfo};
use crate::saved_model::{sorted_tags, INIT_OP_SIGNATURE_KEY};
use crate::tensor::DType;

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

impl TensorSpec {
    pub(crate) fn from_info(key: &str, info: &TensorInfo) -> TensorSpec {
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
}

/// A SignatureDef, checked: inputs and outputs sorted by key.
#[derive(Debug, Clone)]
pub struct SignatureView {
    /// Signature key.
    pub key: String,
    /// `method_name`.
    pub method: String,
    /// Inputs, sorted by key.
    pub inputs: Vec<TensorSpec>,
    /// Outputs, sorted by key.
    pub outputs: Vec<TensorSpec>,
}

/// An asset: its file name under `assets/` and the graph tensor fed with its path.
#[derive(Debug, Clone)]
pub struct AssetView {
    /// File name relative to `assets/`.
    pub filename: String,
    /// The tensor fed with the path (`asset_path_initializer:0`), empty if none.
    pub tensor: String,
}

/// How variables are restored (TF's SaverDef).
#[derive(Debug, Clone)]
pub struct RestoreView {
    /// The tensor fed with the checkpoint prefix.
    pub filename_tensor: String,
    /// The op to run.
    pub restore_op: String,
}

/// The checked view of one meta graph.
#[derive(Debug)]
pub struct MetaView<'a> {
    /// The meta graph.
    pub meta: &'a MetaGraphDef,
    /// Its tags, sorted.
    pub tags: Vec<&'a str>,
    /// Signatures except `__saved_model_init_op`, sorted by key.
    pub signatures: Vec<SignatureView>,
    /// Assets, de-duplicated by file name.
    pub assets: Vec<AssetView>,
    /// The init op (node name, no `:0`).
    pub init_op: Option<String>,
    /// TF1 without an init op: the targets of TF's default local init op (table and
    /// local-variable initializers); empty otherwise.
    pub default_init: Vec<String>,
    /// Restore info, when the meta graph has a SaverDef with a restore op.
    pub restore: Option<RestoreView>,
    /// The TF2 object graph, if saved.
    pub object_graph: Option<&'a SavedObjectGraph>,
}

impl<'a> MetaView<'a> {
    /// Reads `mg`.
    pub fn new(mg: &'a MetaGraphDef) -> MetaView<'a> {
        let signatures = mg
            .signature_def
            .iter()
            .filter(|(k, _)| k.as_str() != INIT_OP_SIGNATURE_KEY)
            .map(|(k, sd)| SignatureView {
                key: k.clone(),
                method: sd.method_name.clone(),
                inputs: sd
                    .inputs
                    .iter()
                    .map(|(k, v)| TensorSpec::from_info(k, v))
                    .collect(),
                outputs: sd
                    .outputs
                    .iter()
                    .map(|(k, v)| TensorSpec::from_info(k, v))
                    .collect(),
            })
            .collect();
        let mut assets: Vec<AssetView> = Vec::new();
        for a in asset_defs(mg) {
            if assets.iter().any(|x| x.filename == a.filename) {
                continue;
            }
            let tensor = a
                .tensor_info
                .as_ref()
                .map(|i| TensorSpec::from_info("", i).tensor)
                .unwrap_or_default();
            assets.push(AssetView {
                filename: a.filename,
                tensor,
            });
        }
        let restore = mg.saver_def.as_ref().and_then(|s| {
            (!s.restore_op_name.is_empty()).then(|| RestoreView {
                filename_tensor: s.filename_tensor_name.clone(),
                restore_op: s.restore_op_name.clone(),
            })
        });
        let init_op = init_op_name(mg);
        let default_init = if init_op.is_none() {
            super::tf1::default_init_targets(mg)
        } else {
            Vec::new()
        };
        MetaView {
            meta: mg,
            tags: sorted_tags(mg),
            signatures,
            assets,
            init_op,
            default_init,
            restore,
            object_graph: mg.object_graph_def.as_ref().filter(|g| !g.nodes.is_empty()),
        }
    }
}

/// `asset_file_def`, else (TF1) the `saved_model_assets` collection, as TF's
/// `loader_impl.get_asset_tensors` reads them.
fn asset_defs(mg: &MetaGraphDef) -> Vec<AssetFileDef> {
    if !mg.asset_file_def.is_empty() {
        return mg.asset_file_def.clone();
    }
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

/// The init op: the `__saved_model_init_op` signature (TF2), else the `saved_model_main_op` or
/// `legacy_init_op` collection (TF1).
fn init_op_name(mg: &MetaGraphDef) -> Option<String> {
    if let Some(sig) = mg.signature_def.get(INIT_OP_SIGNATURE_KEY) {
        if let Some(info) = sig.outputs.get(INIT_OP_SIGNATURE_KEY) {
            let t = TensorSpec::from_info(INIT_OP_SIGNATURE_KEY, info).tensor;
            return Some(t.split(':').next().unwrap_or(&t).to_string());
        }
    }
    for key in ["saved_model_main_op", "legacy_init_op"] {
        if let Some(Kind::NodeList(l)) = mg.collection_def.get(key).and_then(|c| c.kind.as_ref()) {
            if let Some(n) = l.value.first() {
                return Some(
                    n.split(':')
                        .next()
                        .unwrap_or(n)
                        .trim_start_matches('^')
                        .to_string(),
                );
            }
        }
    }
    None
}

//! Reading SavedModels: `saved_model.pb` (or a frozen `GraphDef` `.pb`), the variable
//! checkpoint and the asset list, parsed into checked structs. Runs nothing.
//!
//! Layout of a SavedModel directory (TF's `cc/saved_model/constants.h`): `saved_model.pb`,
//! `variables/variables.index` + `variables/variables.data-NNNNN-of-MMMMM`, `assets/`.

pub mod checkpoint;
pub mod tensor_proto;

use std::path::{Path, PathBuf};

use prost::Message;

use crate::proto::{GraphDef, MetaGraphDef, SavedModel as SavedModelProto};

/// Why a SavedModel file could not be read. `tfhub::Error` wraps it (`From`), keeping each
/// variant's meaning (`Io`, `Decode`, `InvalidModel`, `NotFound`), so this module depends on
/// nothing above it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SavedModelError {
    /// A file could not be read.
    #[error("cannot read {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A protobuf file did not decode.
    #[error("{}: not a valid {what} protobuf", path.display())]
    Decode {
        /// The file.
        path: PathBuf,
        /// The expected message (`SavedModel`, `GraphDef`).
        what: &'static str,
        /// The cause.
        #[source]
        source: prost::DecodeError,
    },
    /// The model is structurally invalid.
    #[error("{}: {what}", path.display())]
    Invalid {
        /// The model file or directory.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// No meta graph has the tag set asked for.
    #[error("meta graph with tags {tags:?} not found; available: {}", available.join(", "))]
    NoMetaGraph {
        /// The tags asked for (sorted, comma-joined).
        tags: String,
        /// The tag sets present, as `[a,b]`.
        available: Vec<String>,
    },
}

type Result<T, E = SavedModelError> = std::result::Result<T, E>;

fn invalid(path: &Path, what: impl Into<String>) -> SavedModelError {
    SavedModelError::Invalid {
        path: path.to_path_buf(),
        what: what.into(),
    }
}

/// File name of the binary SavedModel protobuf.
pub const SAVED_MODEL_PB: &str = "saved_model.pb";
/// File name of the text SavedModel protobuf (not supported).
pub const SAVED_MODEL_PBTXT: &str = "saved_model.pbtxt";
/// Default serving tag.
pub const SERVE_TAG: &str = "serve";
/// Signature key of the TF2 init op.
pub const INIT_OP_SIGNATURE_KEY: &str = "__saved_model_init_op";

/// A parsed SavedModel directory (or a frozen GraphDef file).
#[derive(Debug)]
pub struct SavedModel {
    /// The model directory (for a frozen GraphDef: the directory holding the file).
    pub dir: PathBuf,
    /// The protobuf file that was read.
    pub file: PathBuf,
    /// All meta graphs. A frozen GraphDef becomes one meta graph with no tags.
    pub meta_graphs: Vec<MetaGraphDef>,
    /// True when the file was a bare GraphDef (a TF1 frozen graph).
    pub frozen: bool,
}

impl SavedModel {
    /// Reads `<dir>/saved_model.pb`, or, if `path` is a file, that file as a SavedModel or (if
    /// it does not decode as one with meta graphs) as a frozen `GraphDef`.
    ///
    /// # Errors
    /// [`SavedModelError::Io`] if the file cannot be read, [`SavedModelError::Decode`] if it is
    /// not a valid protobuf, [`SavedModelError::Invalid`] for a directory without
    /// `saved_model.pb`.
    pub fn open(path: &Path) -> Result<SavedModel> {
        if path.is_dir() {
            let file = path.join(SAVED_MODEL_PB);
            if !file.is_file() {
                let what = if path.join(SAVED_MODEL_PBTXT).is_file() {
                    "saved_model.pbtxt (text format) is not implemented; convert it to saved_model.pb"
                } else {
                    "contains neither saved_model.pb nor saved_model.pbtxt"
                };
                return Err(invalid(path, what));
            }
            let bytes = read(&file)?;
            let sm = SavedModelProto::decode(bytes.as_slice()).map_err(|source| {
                SavedModelError::Decode {
                    path: file.clone(),
                    what: "SavedModel",
                    source,
                }
            })?;
            if sm.meta_graphs.is_empty() {
                return Err(invalid(&file, "SavedModel has no meta graphs"));
            }
            return Ok(SavedModel {
                dir: path.to_path_buf(),
                file,
                meta_graphs: sm.meta_graphs,
                frozen: false,
            });
        }
        let bytes = read(path)?;
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let mut sm = SavedModel::from_bytes(&bytes, path)?;
        sm.dir = dir;
        Ok(sm)
    }

    /// Parses `bytes` as the file `file` would be by [`SavedModel::open`]: a SavedModel with
    /// meta graphs, else a frozen `GraphDef`. `file` only names the source in errors; `dir`
    /// is set to its parent. The fuzz targets and their regression tests enter here.
    ///
    /// # Errors
    /// [`SavedModelError::Decode`] or [`SavedModelError::Invalid`], naming `file`.
    #[doc(hidden)]
    pub fn from_bytes(bytes: &[u8], file: &Path) -> Result<SavedModel> {
        let dir = file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        if let Ok(sm) = SavedModelProto::decode(bytes) {
            if !sm.meta_graphs.is_empty() && sm.meta_graphs.iter().all(|m| m.graph_def.is_some()) {
                return Ok(SavedModel {
                    dir,
                    file: file.to_path_buf(),
                    meta_graphs: sm.meta_graphs,
                    frozen: false,
                });
            }
        }
        let graph = GraphDef::decode(bytes).map_err(|source| SavedModelError::Decode {
            path: file.to_path_buf(),
            what: "GraphDef",
            source,
        })?;
        if graph.node.is_empty() {
            return Err(invalid(file, "GraphDef has no nodes"));
        }
        Ok(SavedModel {
            dir,
            file: file.to_path_buf(),
            meta_graphs: vec![MetaGraphDef {
                graph_def: Some(graph),
                ..Default::default()
            }],
            frozen: true,
        })
    }

    /// The first meta graph whose tag set equals `tags` (unordered, exact), as TF's loader
    /// picks it. A frozen GraphDef matches any tags.
    ///
    /// # Errors
    /// [`SavedModelError::NoMetaGraph`] listing the available tag sets.
    pub fn meta_graph(&self, tags: &[&str]) -> Result<&MetaGraphDef> {
        if self.frozen {
            return Ok(&self.meta_graphs[0]);
        }
        let mut want: Vec<&str> = tags.to_vec();
        want.sort_unstable();
        want.dedup();
        for mg in &self.meta_graphs {
            if sorted_tags(mg) == want {
                return Ok(mg);
            }
        }
        Err(SavedModelError::NoMetaGraph {
            tags: want.join(","),
            available: self
                .meta_graphs
                .iter()
                .map(|mg| format!("[{}]", sorted_tags(mg).join(",")))
                .collect(),
        })
    }

    /// The checkpoint prefix `<dir>/variables/variables` if its index file exists.
    pub fn variables_prefix(&self) -> Option<PathBuf> {
        let prefix = self.dir.join("variables").join("variables");
        let mut index = prefix.clone().into_os_string();
        index.push(".index");
        Path::new(&index).is_file().then_some(prefix)
    }
}

/// A meta graph's tags, sorted and deduplicated.
pub fn sorted_tags(mg: &MetaGraphDef) -> Vec<&str> {
    let mut t: Vec<&str> = mg
        .meta_info_def
        .as_ref()
        .map(|m| m.tags.iter().map(String::as_str).collect())
        .unwrap_or_default();
    t.sort_unstable();
    t.dedup();
    t
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| SavedModelError::Io {
        path: path.to_path_buf(),
        source,
    })
}

impl crate::tensor::ByteSource for checkpoint::MappedBytes {
    fn bytes(&self) -> &[u8] {
        self
    }

    fn release(&self, range: std::ops::Range<usize>) {
        self.release_pages(range);
    }
}

/// Reads checkpoint tensor `key` as a [`Tensor`]; fixed-size data stays memory-mapped when
/// it is aligned.
///
/// # Errors
/// Whatever the reader reports (missing key, checksum, bounds), naming the file and key.
pub fn checkpoint_tensor(
    reader: &checkpoint::BundleReader,
    key: &str,
) -> std::result::Result<crate::tensor::Tensor, checkpoint::CheckpointError> {
    use crate::tensor::{Buf, Bytes, Data, Tensor};
    use checkpoint::TensorBytes;
    use std::sync::Arc;
    let tb = reader.read(key)?;
    let shape: Vec<usize> = tb.shape().iter().map(|&d| d.max(0) as usize).collect();
    let bad = |what: &str| checkpoint::CheckpointError::Unsupported {
        key: key.to_string(),
        what: what.to_string(),
    };
    let data = match tb {
        TensorBytes::Strings { values, .. } => Data::String(Buf::from(
            values.into_iter().map(Bytes::from).collect::<Vec<_>>(),
        )),
        TensorBytes::Pod { dtype, data, .. } => {
            let dt = crate::tensor::DType::from_proto(dtype as i32).ok_or_else(|| bad("dtype"))?;
            let size = dt.size_of().ok_or_else(|| bad("dtype"))?;
            let n = data.len() / size;
            if dt == crate::tensor::DType::Bool {
                Data::Bool(Buf::from(data.iter().map(|&b| b != 0).collect::<Vec<_>>()))
            } else {
                let src: Arc<dyn crate::tensor::ByteSource> = Arc::new(data);
                macro_rules! mapped {
                    ($v:ident, $t:ty) => {
                        Data::$v(Buf::<$t>::mapped(src, 0, n).ok_or_else(|| bad("range"))?)
                    };
                }
                match dt {
                    crate::tensor::DType::F32 => mapped!(F32, f32),
                    crate::tensor::DType::F64 => mapped!(F64, f64),
                    crate::tensor::DType::F16 => mapped!(F16, half::f16),
                    crate::tensor::DType::BF16 => mapped!(BF16, half::bf16),
                    crate::tensor::DType::I8 => mapped!(I8, i8),
                    crate::tensor::DType::I16 => mapped!(I16, i16),
                    crate::tensor::DType::I32 => mapped!(I32, i32),
                    crate::tensor::DType::I64 => mapped!(I64, i64),
                    crate::tensor::DType::U8 => mapped!(U8, u8),
                    crate::tensor::DType::U16 => mapped!(U16, u16),
                    crate::tensor::DType::U32 => mapped!(U32, u32),
                    crate::tensor::DType::U64 => mapped!(U64, u64),
                    _ => return Err(bad("dtype")),
                }
            }
        }
    };
    Tensor::new(&shape, data).map_err(|e| bad(&e.to_string()))
}

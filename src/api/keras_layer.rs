//! `KerasLayer`: the `hub.KerasLayer` of tensorflow_hub (keras_layer.py), for Rust callers.
//!
//! Entry point, as hub.KerasLayer picks it:
//! - a TF1 Hub module (`tfhub_module.pb`): signature `default`, output key `default`;
//! - `signature` given: that SignatureDef, with `output_key` or all outputs as a dict;
//! - otherwise a callable TF2 model (root `__call__`): `__call__(inputs, **arguments)`, with
//!   `training=False` when its saved argument spec takes `training`;
//! - where hub.KerasLayer gives up ("Signature name has to be specified for non-callable
//!   saved models") we go one step further: `serving_default`, then `default`, then the only
//!   signature. [`KerasLayer::entry_point`] says which was chosen.

use std::collections::BTreeMap;
use std::path::Path;

use ndarray::Array2;

use super::{resolve, Function, LoadOptions, Model, Value};
use crate::error::{Error, Result};
use crate::loader::TFHUB_MODULE_PB;
use crate::tensor::{DType, Tensor};

/// Options of `hub.KerasLayer` that matter for inference.
#[derive(Debug, Clone, Default)]
pub struct KerasOptions {
    /// `signature=`: call this SignatureDef instead of `__call__`.
    pub signature: Option<String>,
    /// `output_key=`: pick this key of a dict result.
    pub output_key: Option<String>,
    /// `signature_outputs_as_dict=True`.
    pub signature_outputs_as_dict: bool,
    /// `arguments=`: extra constant keyword arguments (`seq_length=128`).
    pub arguments: BTreeMap<String, Value>,
    /// How to load the model.
    pub load: LoadOptions,
}

/// The entry point a [`KerasLayer`] calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryPoint {
    /// An object-graph function (`__call__`), and whether `training=False` is passed.
    Function {
        /// Attribute path.
        path: String,
        /// `training=False` is passed.
        training: bool,
    },
    /// A SignatureDef.
    Signature {
        /// Signature key.
        name: String,
        /// Why it was chosen (`signature=`, `TF1 Hub module`, `fallback: ...`).
        reason: String,
    },
}

impl std::fmt::Display for EntryPoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EntryPoint::Function { path, training } => {
                write!(f, "object-graph function {path}")?;
                if *training {
                    write!(f, " (with training=False)")?;
                }
                Ok(())
            }
            EntryPoint::Signature { name, reason } => write!(f, "signature {name} ({reason})"),
        }
    }
}

/// A model wrapped as a layer, choosing its entry point as `hub.KerasLayer` does.
///
/// ```no_run
/// # fn main() -> tfhub::Result<()> {
/// let layer = tfhub::KerasLayer::new("https://tfhub.dev/google/nnlm-en-dim128/2")?;
/// let emb = layer.call(&["A long sentence.", "single-word", "http://example.com"])?;
/// assert_eq!(emb.shape(), &[3, 128]);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct KerasLayer {
    model: Model,
    entry: EntryPoint,
    function: Option<Function>,
    output_key: Option<String>,
    outputs_as_dict: bool,
    arguments: BTreeMap<String, Value>,
    /// The legacy `with_options` contract: a single output is picked without `output_key`.
    lenient: bool,
}

impl KerasLayer {
    /// Loads `handle` (a directory or any hub handle) and picks its entry point as
    /// `hub.KerasLayer(handle)` does (plus the signature fallbacks above).
    ///
    /// # Errors
    /// As [`crate::load`]; [`Error::NotFound`] when the model has neither `__call__` nor a
    /// signature.
    pub fn new(handle: impl AsRef<Path>) -> Result<KerasLayer> {
        KerasLayer::with(handle, KerasOptions::default())
    }

    /// Loads `handle` with an explicit `signature` and `output_key` (a single output is
    /// picked without one).
    ///
    /// # Errors
    /// As [`crate::load`]; [`Error::NotFound`] for an unknown signature or output key.
    pub fn with_options(
        handle: impl AsRef<Path>,
        signature: &str,
        output_key: Option<&str>,
    ) -> Result<KerasLayer> {
        let mut l = KerasLayer::with(
            handle,
            KerasOptions {
                signature: Some(signature.to_string()),
                output_key: output_key.map(str::to_string),
                signature_outputs_as_dict: output_key.is_none(),
                ..KerasOptions::default()
            },
        )?;
        l.lenient = true;
        Ok(l)
    }

    /// Loads `handle` with hub.KerasLayer's options.
    ///
    /// # Errors
    /// As [`crate::load`]; hub.KerasLayer's construction errors (a signature without exactly
    /// one of `output_key` / `signature_outputs_as_dict`, an unknown signature).
    pub fn with(handle: impl AsRef<Path>, opts: KerasOptions) -> Result<KerasLayer> {
        let dir = resolve(handle.as_ref())?;
        let model = Model::load_with(&dir, &opts.load)?;
        KerasLayer::from_model(model, opts)
    }

    /// Wraps an already loaded model.
    ///
    /// # Errors
    /// As [`KerasLayer::with`].
    pub fn from_model(model: Model, opts: KerasOptions) -> Result<KerasLayer> {
        let invalid = |what: &str| Error::invalid(model.dir(), what);
        let tf1_hub = model.dir().join(TFHUB_MODULE_PB).is_file();
        let mut output_key = opts.output_key.clone();
        let as_dict = opts.signature_outputs_as_dict;
        let mut signature = opts.signature.clone();
        let mut reason = "signature=".to_string();
        if tf1_hub && signature.is_none() {
            signature = Some("default".into());
            reason = "TF1 Hub module".into();
            if output_key.is_none() && !as_dict {
                output_key = Some("default".into());
            }
        }
        if signature.is_none() && as_dict {
            return Err(invalid(
                "signature_outputs_as_dict is only valid if specifying a signature (or using a legacy TF1 Hub format).",
            ));
        }
        let (entry, function) = match signature {
            Some(name) => {
                if output_key.is_some() == as_dict {
                    return Err(invalid(
                        "When using a signature, either output_key or signature_outputs_as_dict=True should be set.",
                    ));
                }
                model.signature(&name)?;
                (EntryPoint::Signature { name, reason }, None)
            }
            None if model.is_callable() => {
                let f = model.function("")?;
                let training = f.takes_argument("training");
                (
                    EntryPoint::Function {
                        path: f.path().to_string(),
                        training,
                    },
                    Some(f),
                )
            }
            None => {
                // hub.KerasLayer stops here; we fall back as tfhub's `embed` documents.
                let names = model.signature_names();
                let pick = ["serving_default", "default"]
                    .into_iter()
                    .find(|n| names.contains(n))
                    .map(str::to_string)
                    .or_else(|| match names.as_slice() {
                        [only] => Some(only.to_string()),
                        _ => None,
                    });
                let Some(name) = pick else {
                    return Err(Error::NotFound {
                        what: "entry point (no __call__, no serving_default or default signature, not exactly one signature)",
                        name: model.dir().display().to_string(),
                        available: names.iter().map(|s| s.to_string()).collect(),
                    });
                };
                let reason =
                    format!(
                    "fallback: the model has no __call__ (hub.KerasLayer would need signature=), \
                     {} signature",
                    if names.len() == 1 { "only" } else { "preferred" }
                );
                (EntryPoint::Signature { name, reason }, None)
            }
        };
        Ok(KerasLayer {
            model,
            entry,
            function,
            output_key,
            outputs_as_dict: as_dict,
            arguments: opts.arguments,
            lenient: false,
        })
    }

    /// The underlying model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The entry point this layer calls (what `tfhub embed --verbose` prints).
    pub fn entry_point(&self) -> &EntryPoint {
        &self.entry
    }

    /// `layer(inputs)`: calls the entry point on `inputs` (a tensor, ragged tensor, list or
    /// dict) and applies `output_key`.
    ///
    /// # Errors
    /// hub.KerasLayer's call errors (output key on a non-dict, missing key); the entry point's.
    pub fn call_value(&self, inputs: Value) -> Result<Value> {
        let name = self.entry.to_string();
        let out = match (&self.entry, &self.function) {
            (EntryPoint::Function { training, .. }, Some(f)) => {
                let mut kw = self.arguments.clone();
                if *training {
                    kw.insert("training".into(), Value::Bool(false));
                }
                f.call(vec![inputs], kw)?
            }
            (EntryPoint::Signature { name, .. }, _) => {
                let sig = self.model.signature(name)?;
                let mut feeds: Vec<(String, Tensor)> = Vec::new();
                for (k, v) in &self.arguments {
                    if let Value::Tensor(t) = v {
                        feeds.push((k.clone(), t.clone()));
                    }
                }
                match inputs {
                    Value::Dict(m) => {
                        for (k, v) in m {
                            feeds.push((k, tensor_for(sig, v)?));
                        }
                    }
                    other => {
                        let [input] = sig.inputs() else {
                            return Err(Error::Input {
                                signature: name.clone(),
                                what: format!(
                                    "a single input was given; it takes {}",
                                    sig.describe_inputs()
                                ),
                            });
                        };
                        let key = input.key.clone();
                        let t = match other {
                            Value::Tensor(t) => t,
                            v => tensor_for(sig, Value::Dict(BTreeMap::from([(key.clone(), v)])))?,
                        };
                        feeds.push((key, t));
                    }
                }
                Value::Dict(
                    sig.call(feeds)?
                        .into_iter()
                        .map(|(k, t)| (k, Value::Tensor(t)))
                        .collect(),
                )
            }
            (EntryPoint::Function { .. }, None) => {
                return Err(Error::invalid(self.model.dir(), "entry point not resolved"))
            }
        };
        match &self.output_key {
            Some(k) => match out {
                Value::Dict(mut m) => {
                    let keys: Vec<String> = m.keys().cloned().collect();
                    m.remove(k).ok_or(Error::NotFound {
                        what: "output key (KerasLayer output does not contain it)",
                        name: k.clone(),
                        available: keys,
                    })
                }
                other => Err(Error::Call {
                    function: name,
                    what: format!(
                        "Specifying `output_key` is forbidden if output type {} is not a dict.",
                        other.describe()
                    ),
                }),
            },
            None if self.lenient && !self.outputs_as_dict => Ok(out),
            None if self.lenient => match out {
                Value::Dict(m) if m.len() == 1 => Ok(m.into_values().next().expect("one entry")),
                other => Ok(other),
            },
            None => Ok(out),
        }
    }

    /// Embeds a batch of strings: the entry point must take one string tensor and give one
    /// float32 tensor of shape `[batch, dim]`.
    ///
    /// # Errors
    /// [`Error::Input`] if the entry point is not of that form; op failures.
    pub fn call(&self, sentences: &[&str]) -> Result<Array2<f32>> {
        let who = self.entry.to_string();
        let batch = Tensor::from_strings(&[sentences.len()], sentences)?;
        let t = match self.call_value(Value::Tensor(batch))? {
            Value::Tensor(t) => t,
            Value::Dict(m) if m.len() == 1 => match m.into_values().next() {
                Some(Value::Tensor(t)) => t,
                _ => return Err(self.not_embedding(&who, "a non-tensor output")),
            },
            Value::Dict(m) => {
                return Err(Error::Input {
                    signature: who,
                    what: format!(
                        "several outputs ({}): set output_key",
                        m.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                })
            }
            other => return Err(self.not_embedding(&who, &other.describe())),
        };
        if t.dtype() != DType::F32 {
            return Err(self.not_embedding(&who, &format!("{} output", t.dtype())));
        }
        let shape = t.shape().to_vec();
        let [rows, cols] = shape[..] else {
            return Err(Error::Input {
                signature: who,
                what: format!("output has shape {shape:?}, not [batch, dim]"),
            });
        };
        let v = t.into_vec::<f32>()?;
        Array2::from_shape_vec((rows, cols), v).map_err(|e| Error::Input {
            signature: who,
            what: e.to_string(),
        })
    }

    fn not_embedding(&self, who: &str, got: &str) -> Error {
        Error::Input {
            signature: who.to_string(),
            what: format!("call() needs one float32 [batch, dim] output; got {got}"),
        }
    }

    /// Runs the entry point on named tensors and returns every output (a single tensor result
    /// as `output_0`).
    ///
    /// # Errors
    /// As [`crate::Signature::call`] / [`Function::call`].
    pub fn call_tensors<K: AsRef<str>>(
        &self,
        inputs: impl IntoIterator<Item = (K, Tensor)>,
    ) -> Result<BTreeMap<String, Tensor>> {
        let mut m: BTreeMap<String, Value> = inputs
            .into_iter()
            .map(|(k, t)| (k.as_ref().to_string(), Value::Tensor(t)))
            .collect();
        let input = if m.len() == 1 && matches!(self.entry, EntryPoint::Function { .. }) {
            m.pop_first().map(|x| x.1).unwrap_or(Value::None)
        } else {
            Value::Dict(m)
        };
        match self.call_value(input)? {
            Value::Tensor(t) => Ok(BTreeMap::from([("output_0".to_string(), t)])),
            Value::Dict(m) => Ok(m
                .into_iter()
                .filter_map(|(k, v)| match v {
                    Value::Tensor(t) => Some((k, t)),
                    _ => None,
                })
                .collect()),
            other => Err(Error::Input {
                signature: self.entry.to_string(),
                what: format!("output {} is not a tensor or dict", other.describe()),
            }),
        }
    }
}

/// A Python-like value (list, number) as a tensor of the signature input's dtype.
fn tensor_for(sig: &crate::Signature, v: Value) -> Result<Tensor> {
    let Value::Dict(m) = v else {
        return Err(Error::invalid("signature input", "expected a dict"));
    };
    let (k, v) = m
        .into_iter()
        .next()
        .ok_or_else(|| Error::invalid("signature input", "empty"))?;
    match v {
        Value::Tensor(t) => Ok(t),
        other => {
            let spec = sig
                .inputs()
                .iter()
                .find(|s| s.key == k)
                .ok_or_else(|| Error::Input {
                    signature: sig.name().to_string(),
                    what: format!("unknown input {k:?}; expected {}", sig.describe_inputs()),
                })?;
            let j = value_json(&other).ok_or_else(|| Error::Input {
                signature: sig.name().to_string(),
                what: format!("input {k:?}: {} is not a tensor", other.describe()),
            })?;
            crate::api::json::tensor_from_json(&j, spec.dtype).map_err(|e| Error::Input {
                signature: sig.name().to_string(),
                what: format!("input {k:?}: {e}"),
            })
        }
    }
}

fn value_json(v: &Value) -> Option<serde_json::Value> {
    Some(match v {
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Int(i) => serde_json::Value::from(*i),
        Value::Float(x) => serde_json::Value::from(*x),
        Value::Str(s) => serde_json::Value::String(s.clone()),
        Value::List(v) | Value::Tuple(v) => {
            serde_json::Value::Array(v.iter().map(value_json).collect::<Option<Vec<_>>>()?)
        }
        _ => return None,
    })
}

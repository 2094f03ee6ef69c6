//! `KerasLayer`: the `hub.KerasLayer` of tensorflow_hub, for Rust callers.

use std::collections::BTreeMap;
use std::path::Path;

use ndarray::Array2;

use super::{resolve, LoadOptions, Model};
use crate::error::{Error, Result};
use crate::tensor::{DType, Tensor};

/// A model wrapped as a layer: one signature, one output.
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
    signature: String,
    output_key: Option<String>,
}

impl KerasLayer {
    /// Loads `handle` (a directory or any hub handle) and uses its `serving_default` signature.
    ///
    /// # Errors
    /// As [`crate::load`]; also if the model has no `serving_default` signature.
    pub fn new(handle: impl AsRef<Path>) -> Result<KerasLayer> {
        KerasLayer::with_options(handle, "serving_default", None)
    }

    /// Loads `handle` with an explicit `signature` and `output_key`, as in `hub.KerasLayer`.
    ///
    /// # Errors
    /// As [`crate::load`]; [`Error::NotFound`] for an unknown signature or output key.
    pub fn with_options(
        handle: impl AsRef<Path>,
        signature: &str,
        output_key: Option<&str>,
    ) -> Result<KerasLayer> {
        let dir = resolve(handle.as_ref())?;
        let model = Model::load_with(&dir, &LoadOptions::default())?;
        let sig = model.signature(signature)?;
        if let Some(k) = output_key {
            if !sig.outputs().iter().any(|o| o.key == k) {
                return Err(Error::NotFound {
                    what: "output key",
                    name: k.to_string(),
                    available: sig.outputs().iter().map(|o| o.key.clone()).collect(),
                });
            }
        }
        Ok(KerasLayer {
            signature: signature.to_string(),
            output_key: output_key.map(str::to_string),
            model,
        })
    }

    /// The underlying model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Embeds a batch of strings: the signature must take one string input and give one
    /// float32 output (or `output_key`) of shape `[batch, dim]`.
    ///
    /// # Errors
    /// [`Error::Input`] if the signature is not of that form; op failures.
    pub fn call(&self, sentences: &[&str]) -> Result<Array2<f32>> {
        let sig = self.model.signature(&self.signature)?;
        let [input] = sig.inputs() else {
            return Err(Error::Input {
                signature: self.signature.clone(),
                what: format!(
                    "call() needs exactly one input; it has {}",
                    sig.describe_inputs()
                ),
            });
        };
        if input.dtype != DType::String {
            return Err(Error::Input {
                signature: self.signature.clone(),
                what: format!(
                    "call() takes strings; input {:?} is {}",
                    input.key, input.dtype
                ),
            });
        }
        let batch = Tensor::from_strings(&[sentences.len()], sentences)?;
        let out = self.call_tensors([(input.key.clone(), batch)])?;
        let t = self.pick(out)?;
        let shape = t.shape().to_vec();
        let [rows, cols] = shape[..] else {
            return Err(Error::Input {
                signature: self.signature.clone(),
                what: format!("output has shape {shape:?}, not [batch, dim]"),
            });
        };
        let v = t.into_vec::<f32>()?;
        Array2::from_shape_vec((rows, cols), v).map_err(|e| Error::Input {
            signature: self.signature.clone(),
            what: e.to_string(),
        })
    }

    /// Runs the signature on named tensors and returns every output.
    ///
    /// # Errors
    /// As [`crate::Signature::call`].
    pub fn call_tensors<K: AsRef<str>>(
        &self,
        inputs: impl IntoIterator<Item = (K, Tensor)>,
    ) -> Result<BTreeMap<String, Tensor>> {
        self.model.signature(&self.signature)?.call(inputs)
    }

    fn pick(&self, mut out: BTreeMap<String, Tensor>) -> Result<Tensor> {
        let keys: Vec<String> = out.keys().cloned().collect();
        let key = match &self.output_key {
            Some(k) => k.clone(),
            None if keys.len() == 1 => keys[0].clone(),
            None => {
                return Err(Error::Input {
                    signature: self.signature.clone(),
                    what: format!("several outputs ({}): set output_key", keys.join(", ")),
                })
            }
        };
        out.remove(&key).ok_or(Error::NotFound {
            what: "output key",
            name: key,
            available: keys,
        })
    }
}

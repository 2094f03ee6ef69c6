//! The SavedModel and checkpoint readers against what TensorFlow reports for every fixture,
//! and typed errors (never panics) on corrupt files.
mod common;

use std::path::Path;

use common::{copy_dir, fixture, read_json, TestResult};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tfhub::saved_model::checkpoint::BundleReader;
use tfhub::saved_model::{checkpoint_tensor, SavedModel};
use tfhub::tensor::Data;

fn model_fixtures() -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(fixture(""))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("saved_model.pb").is_file())
        // text_unicode (a code-point sweep, no variables) was committed without TF's variable
        // reports; every other model fixture has them.
        .filter(|p| p.join("variables.json").is_file())
        .collect();
    v.sort();
    assert!(v.len() >= 7, "fixtures missing: {v:?}");
    v
}

#[test]
fn inspect_matches_tensorflow_signatures_and_variables() -> TestResult {
    for dir in model_fixtures() {
        let got = tfhub::api::inspect(&dir)?.json;
        let want = read_json(&dir.join("signatures.json"));
        let metas = got["meta_graphs"].as_array().unwrap();
        let want_metas = want["meta_graphs"].as_array().unwrap();
        assert_eq!(metas.len(), want_metas.len(), "{}", dir.display());
        for (g, w) in metas.iter().zip(want_metas) {
            for k in ["tags", "signatures", "asset_files", "has_saver_def"] {
                assert_eq!(g[k], w[k], "{}: {k}", dir.display());
            }
        }
        let want_vars = read_json(&dir.join("variables.json"));
        let got_vars: serde_json::Map<String, Value> = got["variables"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    serde_json::json!({"dtype": v["dtype"], "shape": v["shape"]}),
                )
            })
            .collect();
        assert_eq!(
            Value::Object(got_vars),
            want_vars,
            "{}: variables",
            dir.display()
        );
    }
    Ok(())
}

fn raw_le_bytes(t: &tfhub::Tensor) -> Vec<u8> {
    match t.data() {
        Data::Bool(b) => b.iter().map(|&x| x as u8).collect(),
        d => tfhub::match_numeric!(d, b => bytemuck::cast_slice(&b[..]).to_vec(), _ => Vec::new()),
    }
}

#[test]
fn every_variable_reads_back_as_tensorflow_wrote_it() -> TestResult {
    let mut checked = 0;
    for dir in model_fixtures() {
        let values = read_json(&dir.join("variable_values.json"));
        let Some(prefix) = SavedModel::open(&dir)?.variables_prefix() else {
            continue;
        };
        let reader = BundleReader::open(&prefix)?;
        for (key, want) in values.as_object().unwrap() {
            let t = checkpoint_tensor(&reader, key)
                .map_err(|e| format!("{}: {key}: {e}", dir.display()))?;
            assert_eq!(t.dtype().name(), want["dtype"], "{key}");
            let shape: Vec<u64> = t.shape().iter().map(|&d| d as u64).collect();
            assert_eq!(serde_json::json!(shape), want["shape"], "{key}");
            if let Some(sha) = want.get("sha256") {
                let digest = hex(&Sha256::digest(raw_le_bytes(&t)));
                assert_eq!(Value::String(digest), *sha, "{}: {key}", dir.display());
            }
            if let (Some(vals), Ok(strings)) = (want.get("values"), t.as_slice::<tfhub::Bytes>()) {
                let got: Vec<Value> = strings
                    .iter()
                    .map(|s| tfhub::api::json::bytes_to_json(s))
                    .collect();
                assert_eq!(Value::Array(got), *vals, "{key}");
            }
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked} variables checked");
    Ok(())
}

fn corrupted(f: impl FnOnce(&Path)) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixture("nnlm_norm_dim32"), tmp.path());
    f(tmp.path());
    tmp
}

#[test]
fn truncated_saved_model_pb_is_a_decode_error() {
    let tmp = corrupted(|d| {
        let p = d.join("saved_model.pb");
        let b = std::fs::read(&p).unwrap();
        std::fs::write(&p, &b[..b.len() / 2]).unwrap();
    });
    let err = tfhub::load(tmp.path()).unwrap_err();
    assert!(matches!(err, tfhub::Error::Decode { .. }), "{err}");
    assert!(err.to_string().contains("saved_model.pb"), "{err}");
}

#[test]
fn missing_saved_model_pb_names_the_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let err = tfhub::load(tmp.path()).unwrap_err();
    assert!(matches!(err, tfhub::Error::InvalidModel { .. }), "{err}");
    assert!(err.to_string().contains("neither saved_model.pb"), "{err}");
}

fn data_shard(d: &Path) -> std::path::PathBuf {
    d.join("variables/variables.data-00000-of-00001")
}

#[test]
fn flipped_byte_in_data_shard_is_a_checksum_error() {
    let tmp = corrupted(|d| {
        let p = data_shard(d);
        let mut b = std::fs::read(&p).unwrap();
        let mid = b.len() / 2;
        b[mid] ^= 0x40;
        std::fs::write(&p, b).unwrap();
    });
    let reader = BundleReader::open(&tmp.path().join("variables/variables")).unwrap();
    let key = "embeddings/.ATTRIBUTES/VARIABLE_VALUE";
    let err = checkpoint_tensor(&reader, key).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("checksum") || msg.contains("crc"), "{msg}");
    assert!(msg.contains("variables.data-00000-of-00001"), "{msg}");
}

#[test]
fn truncated_index_is_an_error() {
    let tmp = corrupted(|d| {
        let p = d.join("variables/variables.index");
        let b = std::fs::read(&p).unwrap();
        std::fs::write(&p, &b[..b.len() - 10]).unwrap();
    });
    let err = BundleReader::open(&tmp.path().join("variables/variables")).unwrap_err();
    assert!(err.to_string().contains("variables.index"), "{err}");
}

#[test]
fn wrong_magic_is_an_error() {
    let tmp = corrupted(|d| {
        let p = d.join("variables/variables.index");
        let mut b = std::fs::read(&p).unwrap();
        let n = b.len();
        b[n - 1] ^= 0xff;
        std::fs::write(&p, b).unwrap();
    });
    let err = BundleReader::open(&tmp.path().join("variables/variables")).unwrap_err();
    assert!(err.to_string().to_lowercase().contains("magic"), "{err}");
}

#[test]
fn missing_shard_is_an_error_naming_it() {
    let tmp = corrupted(|d| std::fs::remove_file(data_shard(d)).unwrap());
    let err = tfhub::load(tmp.path()).unwrap_err();
    assert!(
        err.to_string().contains("variables.data-00000-of-00001"),
        "{err}"
    );
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

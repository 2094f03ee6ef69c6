//! The `tfhub` binary's documented contracts.
mod common;

use std::process::Command;

use common::{fixture, read_json};

fn tfhub(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tfhub"))
        .args(args)
        .output()
        .expect("tfhub runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn inspect_json_lists_signatures_and_variables() {
    let dir = fixture("mlp");
    let (ok, out, err) = tfhub(&["inspect", dir.to_str().unwrap(), "--json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let want = read_json(&dir.join("signatures.json"));
    assert_eq!(
        v["meta_graphs"][0]["signatures"],
        want["meta_graphs"][0]["signatures"]
    );
    assert!(
        v["variables"]["_all_variables/0/.ATTRIBUTES/VARIABLE_VALUE"]["bytes"].as_u64() > Some(0)
    );
}

#[test]
fn inspect_text_names_inputs_and_outputs() {
    let (ok, out, err) = tfhub(&["inspect", fixture("nnlm_en_dim128").to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("signature_def['serving_default']"), "{out}");
    assert!(out.contains("sentences: string [-1]"), "{out}");
    assert!(
        out.contains("embeddings/.ATTRIBUTES/VARIABLE_VALUE: float32 [7000,128]"),
        "{out}"
    );
}

#[test]
fn run_reports_unknown_inputs_with_the_expected_signature() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = tmp.path().join("in.json");
    std::fs::write(&inputs, r#"{"nope": [1.0]}"#).unwrap();
    let (ok, _, err) = tfhub(&[
        "run",
        fixture("sharded").to_str().unwrap(),
        "--inputs",
        inputs.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(err.contains("error:"), "{err}");
}

#[test]
fn missing_model_is_a_clear_error() {
    let (ok, _, err) = tfhub(&["inspect", "/nonexistent/model/dir"]);
    assert!(!ok);
    assert!(err.contains("/nonexistent/model/dir"), "{err}");
}

#[test]
fn embed_uses_the_bundled_model_by_default() {
    let (ok, out, err) = tfhub(&[
        "embed",
        "A long sentence.",
        "single-word",
        "http://example.com",
    ]);
    assert!(ok, "{err}");
    assert!(out.starts_with("(3, 128) float32"), "{out}");
    let (ok, out, err) = tfhub(&["embed", "--json", "hello world"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["shape"], serde_json::json!([1, 128]));
}

#[test]
fn run_writes_the_golden_format() {
    let dir = fixture("mlp");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.json");
    let (ok, _, err) = tfhub(&[
        "run",
        dir.to_str().unwrap(),
        "--inputs",
        dir.join("inputs.json").to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let got = read_json(&out);
    let want = read_json(&dir.join("golden.json"));
    assert_eq!(got["output_0"]["shape"], want["output_0"]["shape"]);
    assert_eq!(got["output_0"]["dtype"], "float32");
}

#[test]
fn run_frozen_graphdef_with_outputs() {
    let dir = fixture("frozen_mlp");
    let (ok, out, err) = tfhub(&[
        "run",
        dir.join("model.pb").to_str().unwrap(),
        "--inputs",
        dir.join("inputs.json").to_str().unwrap(),
        "--outputs",
        "Identity:0",
    ]);
    assert!(ok, "{err}");
    let got: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(got["Identity:0"]["shape"], serde_json::json!([2, 3]));
}

#[test]
fn bench_prints_the_documented_fields() {
    let dir = fixture("mlp");
    let (ok, out, err) = tfhub(&[
        "bench",
        dir.to_str().unwrap(),
        "--inputs",
        dir.join("inputs.json").to_str().unwrap(),
        "--batch",
        "8",
        "--seconds",
        "0.2",
        "--json",
    ]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    for k in [
        "load_ms",
        "first_call_ms",
        "latency_ms",
        "per_s",
        "peak_rss_mb",
    ] {
        assert!(v[k].as_f64().is_some(), "{k} missing in {out}");
    }
    assert_eq!(v["batch"], 8);
}

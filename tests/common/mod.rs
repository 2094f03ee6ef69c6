//! Shared test helpers: fixture paths, golden files, tolerances.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tfhub::api::json::tensor_from_json;
use tfhub::{DType, Tensor};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn read_json(p: &Path) -> Value {
    let s = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&s).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// How close two outputs must be.
#[derive(Debug, Clone, Copy)]
pub enum Tolerance {
    /// Bit-exact (ints, strings, bools).
    Exact,
    /// |a - b| <= abs + rel * |b|.
    F32 { rel: f64, abs: f64 },
}

pub const DENSE: Tolerance = Tolerance::F32 {
    rel: 1e-5,
    abs: 1e-6,
};

/// Inputs of `inputs[_<sig>].json` as tensors typed by the signature.
pub fn inputs(model: &tfhub::Model, dir: &Path, sig: &str) -> Vec<(String, Tensor)> {
    let file = if sig == "serving_default" {
        dir.join("inputs.json")
    } else {
        dir.join(format!("inputs_{sig}.json"))
    };
    let v = read_json(&file);
    let s = model.signature(sig).expect("signature");
    v.as_object()
        .expect("object")
        .iter()
        .map(|(k, val)| {
            let spec = s
                .inputs()
                .iter()
                .find(|i| &i.key == k)
                .expect("input in signature");
            (
                k.clone(),
                tensor_from_json(val, spec.dtype).expect("input decodes"),
            )
        })
        .collect()
}

/// Compares outputs with `golden[_<sig>].json`; panics with a precise message on mismatch.
pub fn check_golden(outs: &BTreeMap<String, Tensor>, dir: &Path, sig: &str, tol: Tolerance) {
    let file = if sig == "serving_default" {
        dir.join("golden.json")
    } else {
        dir.join(format!("golden_{sig}.json"))
    };
    let g = read_json(&file);
    let g = g.as_object().expect("golden object");
    assert_eq!(
        outs.keys().collect::<Vec<_>>(),
        g.keys().collect::<Vec<_>>(),
        "output names"
    );
    for (k, want) in g {
        let got = &outs[k];
        let dtype = check_dtype_shape(k, got, want);
        let got_json = tfhub::api::json::tensor_to_json(got);
        let gv = got_json["values"].as_array().expect("values");
        let wv = want["values"].as_array().expect("values");
        assert_eq!(gv.len(), wv.len(), "{k}: element count");
        let float = dtype.is_float();
        let mut worst = 0f64;
        for (i, (a, b)) in gv.iter().zip(wv).enumerate() {
            match (float, tol) {
                (true, Tolerance::F32 { rel, abs }) => {
                    let (a, b) = (a.as_f64().expect("num"), b.as_f64().expect("num"));
                    let err = (a - b).abs();
                    worst = worst.max(err);
                    assert!(
                        err <= abs + rel * b.abs(),
                        "{k}[{i}]: got {a}, TF {b} (err {err:e})"
                    );
                }
                _ => assert_eq!(a, b, "{k}[{i}]"),
            }
        }
        eprintln!("{k}: {} values match (worst abs err {worst:e})", wv.len());
    }
}

/// Loads a fixture, runs `sig` on its inputs and checks the golden outputs.
pub fn run_fixture(name: &str, sig: &str, tol: Tolerance) -> TestResult {
    let dir = fixture(name);
    let model = tfhub::load(&dir)?;
    let ins = inputs(&model, &dir, sig);
    let outs = model.signature(sig)?.call(ins)?;
    check_golden(&outs, &dir, sig, tol);
    Ok(())
}

/// Recursively copies a fixture directory (for tests that corrupt or edit a model).
pub fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let p = e.unwrap().path();
        let to = dst.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &to);
        } else {
            std::fs::copy(&p, &to).unwrap();
        }
    }
}

/// Asserts that `got` has the dtype and shape of the golden entry `want` (`{"dtype", "shape",
/// ...}`) and returns that dtype.
pub fn check_dtype_shape(k: &str, got: &Tensor, want: &Value) -> DType {
    let dtype = DType::from_name(want["dtype"].as_str().expect("dtype")).expect("known dtype");
    assert_eq!(got.dtype(), dtype, "{k}: dtype");
    let shape: Vec<usize> = want["shape"]
        .as_array()
        .expect("shape")
        .iter()
        .map(|d| d.as_u64().expect("dim") as usize)
        .collect();
    assert_eq!(got.shape(), &shape[..], "{k}: shape");
    dtype
}

/// An error and its sources, joined by `: ` (what a user sees printed with `{:#}`-style chains).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// A golden string value: plain UTF-8 text, or `{"b64": ...}` for arbitrary bytes.
pub fn json_bytes(v: &Value) -> Vec<u8> {
    use base64::Engine;
    match v {
        Value::String(s) => s.as_bytes().to_vec(),
        v => base64::engine::general_purpose::STANDARD
            .decode(v["b64"].as_str().expect("b64"))
            .expect("base64"),
    }
}

/// A golden array of integers.
pub fn json_ints(v: &Value) -> Vec<i64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_i64().expect("int"))
        .collect()
}

/// The digest the Unicode sweep fixtures store per block (see `tools/make_fixtures_bert.py`):
/// each part length-prefixed (u32 LE), Fingerprint64 of the blob modulo 2^63 - 1 (so it fits
/// JSON's signed integers).
pub fn sweep_digest(parts: &[Vec<u8>]) -> u64 {
    let mut blob = Vec::new();
    for p in parts {
        blob.extend_from_slice(&(p.len() as u32).to_le_bytes());
        blob.extend_from_slice(p);
    }
    tfhub_kernels::strings::fingerprint64(&blob) % ((1u64 << 63) - 1)
}

/// Feeds `f` every `step`-th truncation of `model` and `flips` single-byte corruptions drawn
/// by a xorshift generator seeded with `seed`; a panic fails the calling test. Returns how many
/// truncations `f` refused.
pub fn truncations_and_flips<T, E>(
    model: &[u8],
    step: usize,
    flips: usize,
    seed: u64,
    f: impl Fn(&[u8]) -> Result<T, E>,
) -> usize {
    let mut errors = 0;
    for cut in (0..model.len()).step_by(step) {
        errors += usize::from(f(&model[..cut]).is_err());
    }
    let mut state = seed;
    for _ in 0..flips {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let mut m = model.to_vec();
        let at = (state % m.len() as u64) as usize;
        m[at] ^= (state >> 32) as u8 | 1;
        let _ = f(&m);
    }
    errors
}

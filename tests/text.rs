//! Text kernels against TensorFlow: FarmHash Fingerprint64 as TF's `StringToHashBucketFast`
//! computes it (`tests/fixtures/fingerprint64/vectors.json`, made with TF 2.21).
mod common;

use common::{fixture, read_json, TestResult};
use tfhub_kernels::strings::fingerprint64;

/// The bucket TF reports: `Fingerprint64(s) % num_buckets`.
fn bucket(s: &[u8], num_buckets: u64) -> u64 {
    fingerprint64(s) % num_buckets
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Every length 0..=2100 (all tail sizes and many 64-byte main-loop counts), with the
/// generator formula stated in the file.
#[test]
fn fingerprint64_by_length() -> TestResult {
    let v = read_json(&fixture("fingerprint64/vectors.json"));
    assert_eq!(
        v["generator"],
        "bytes((i * 131 + len * 7 + 13) % 256 for i in range(len))"
    );
    let m = v["num_buckets"].as_u64().ok_or("num_buckets")?;
    assert_eq!(m, (1 << 63) - 1);
    let cases = v["by_len"].as_array().ok_or("by_len")?;
    assert_eq!(cases.len(), 2101);
    for c in cases {
        let len = c["len"].as_u64().ok_or("len")? as usize;
        let s: Vec<u8> = (0..len)
            .map(|i| ((i * 131 + len * 7 + 13) % 256) as u8)
            .collect();
        let want = c["bucket"].as_u64().ok_or("bucket")?;
        assert_eq!(bucket(&s, m), want, "length {len}");
    }
    Ok(())
}

/// Explicit strings, including non-UTF-8 bytes.
#[test]
fn fingerprint64_strings() -> TestResult {
    let v = read_json(&fixture("fingerprint64/vectors.json"));
    let m = v["num_buckets"].as_u64().ok_or("num_buckets")?;
    let cases = v["strings"].as_array().ok_or("strings")?;
    assert!(!cases.is_empty());
    for c in cases {
        let hex = c["input_hex"].as_str().ok_or("input_hex")?;
        let want = c["bucket"].as_u64().ok_or("bucket")?;
        assert_eq!(bucket(&unhex(hex), m), want, "input {hex}");
    }
    Ok(())
}

/// The nnlm fixture's `tokens` signature: split on " ", vocabulary lookup, and
/// Fingerprint64 buckets for out-of-vocabulary words; ids must match TF exactly.
#[test]
fn nnlm_token_ids_match_tf() -> TestResult {
    common::run_fixture("nnlm_en_dim128", "tokens", common::Tolerance::Exact)
}

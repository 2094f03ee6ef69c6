//! Latency of the MLP, CNN and text fixtures through the public API, at batch 1 and 64.
//!
//! `cargo bench --bench models` (plain `harness = false` timing loop: median of calls over a
//! fixed time, no criterion dependency so that `cargo test` stays lean). For ratios against
//! TensorFlow run side by side, use `tools/bench_vs_tf.py`, which drives `tfhub bench`.

use std::path::Path;
use std::time::{Duration, Instant};

use tfhub::api::json::tensor_from_json;

fn median_ms(mut f: impl FnMut(), budget: Duration) -> (f64, usize) {
    f();
    let mut lat = Vec::new();
    let start = Instant::now();
    while start.elapsed() < budget || lat.len() < 5 {
        let t = Instant::now();
        f();
        lat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    lat.sort_by(f64::total_cmp);
    (lat[lat.len() / 2], lat.len())
}

fn bench(name: &str, batch: usize) -> tfhub::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let model = tfhub::load(&dir)?;
    let sig = model.signature("serving_default")?;
    let text = std::fs::read_to_string(dir.join("inputs.json")).expect("inputs.json");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    let mut feeds = Vec::new();
    for (k, val) in v.as_object().expect("object") {
        let rows = val.as_array().expect("batched input");
        let tiled = serde_json::Value::Array(rows.iter().cycle().take(batch).cloned().collect());
        let spec = sig.inputs().iter().find(|s| &s.key == k).expect("input");
        feeds.push((
            k.clone(),
            tensor_from_json(&tiled, spec.dtype).expect("decodes"),
        ));
    }
    let (ms, n) = median_ms(
        || {
            sig.call(feeds.clone()).expect("call");
        },
        Duration::from_secs(2),
    );
    println!(
        "{name:>16} batch {batch:>3}: {ms:>9.3} ms median over {n} calls, {:>10.1} items/s",
        batch as f64 / (ms / 1e3)
    );
    Ok(())
}

fn main() -> tfhub::Result<()> {
    for name in ["mlp", "cnn", "attention", "nnlm_en_dim128"] {
        for batch in [1, 64] {
            bench(name, batch)?;
        }
    }
    Ok(())
}

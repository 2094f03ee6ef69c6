//! Every model fixture, run through the API, must match TensorFlow's golden outputs.
mod common;

use common::{run_fixture, Tolerance, DENSE};

/// Fixtures not yet passing, with the reason. Each one is still loaded and must fail only with
/// the listed reason kind (an unsupported-op error), so a regression elsewhere is caught.
const KNOWN_GAPS: &[(&str, &str)] = &[];

/// Known gaps must still load far enough to report exactly which ops are missing.
#[test]
fn known_gaps_fail_only_with_unsupported_ops() {
    for (name, why) in KNOWN_GAPS {
        match tfhub::load(common::fixture(name)) {
            Err(tfhub::Error::UnsupportedOps(ops)) => assert!(!ops.is_empty(), "{name}"),
            Err(e) => panic!("{name} ({why}): unexpected error {e}"),
            Ok(_) => panic!("{name} now loads: move it from KNOWN_GAPS to golden!"),
        }
    }
}

macro_rules! golden {
    ($($name:ident: $sig:literal, $tol:expr;)*) => {
        $(
            #[test]
            fn $name() -> common::TestResult {
                run_fixture(stringify!($name), $sig, $tol)
            }
        )*
        /// Guard: every fixture directory with a model is listed above.
        #[test]
        fn every_fixture_is_tested() {
            let listed = [$(stringify!($name)),*];
            for e in std::fs::read_dir(common::fixture("")).unwrap() {
                let p = e.unwrap().path();
                if p.join("saved_model.pb").is_file() && p.join("golden.json").is_file() {
                    let n = p.file_name().unwrap().to_string_lossy().to_string();
                    assert!(listed.contains(&n.as_str()) || KNOWN_GAPS.iter().any(|g| g.0 == n),
                        "fixture {n} has no golden test");
                }
            }
        }
    };
}

golden! {
    attention: "serving_default", DENSE;
    objgraph_two_entry: "serving_default", DENSE;
    bert_preprocess_uncased: "serving_default", DENSE;
    spm_bpe: "serving_default", DENSE;
    text3_fast_spm: "serving_default", DENSE;
    text4_offsets_map: "serving_default", DENSE;
    text4_ragged_variant: "serving_default", DENSE;
    spm_unigram: "serving_default", DENSE;
    audio_wav: "serving_default", DENSE;
    audio_waveform: "serving_default", Tolerance::F32 { rel: 1e-4, abs: 2e-5 };
    cnn: "serving_default", DENSE;
    cnn_keras2: "serving_default", DENSE;
    control_flow: "serving_default", DENSE;
    counter_variable: "serving_default", DENSE;
    detection: "serving_default", Tolerance::F32 { rel: 1e-6, abs: 1e-7 };
    efficientnet_block: "serving_default", DENSE;
    gelu_encoder: "serving_default", DENSE;
    hub_classifier: "serving_default", DENSE;
    mlp: "serving_default", DENSE;
    mobilenet_v2_small: "serving_default", DENSE;
    nnlm_en_dim128: "serving_default", TEXT;
    nnlm_norm_dim32: "serving_default", TEXT;
    rnn_text: "serving_default", DENSE;
    sharded: "serving_default", DENSE;
    text_vectorization: "serving_default", TEXT;
    text_vectorization_bincount: "serving_default", TEXT;
    string_ngrams: "serving_default", TEXT;
    tf1_saved_model: "serving_default", DENSE;
}

/// Text embeddings: TF's sums of a handful of rows; token ids must be exact.
const TEXT: Tolerance = Tolerance::F32 {
    rel: 1e-6,
    abs: 1e-6,
};

#[test]
fn nnlm_en_dim128_token_ids_are_exact() -> common::TestResult {
    run_fixture("nnlm_en_dim128", "tokens", Tolerance::Exact)
}

#[test]
fn nnlm_norm_dim32_token_ids_are_exact() -> common::TestResult {
    run_fixture("nnlm_norm_dim32", "tokens", Tolerance::Exact)
}

/// A TF1-style frozen GraphDef: fed by node name, fetched by tensor name.
#[test]
fn frozen_mlp_graphdef() -> common::TestResult {
    let dir = common::fixture("frozen_mlp");
    let model = tfhub::load(dir.join("model.pb"))?;
    assert!(model.is_frozen());
    let inputs = common::read_json(&dir.join("inputs.json"));
    let outputs = common::read_json(&dir.join("outputs.json"));
    let mut feeds = Vec::new();
    for (k, v) in inputs.as_object().unwrap() {
        let dt = model.placeholder_dtype(k).expect("placeholder dtype");
        feeds.push((k.as_str(), tfhub::api::json::tensor_from_json(v, dt)?));
    }
    let names: Vec<&str> = outputs
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let vals = model.run_graph(&feeds, &names)?;
    let outs = names.iter().map(|n| n.to_string()).zip(vals).collect();
    common::check_golden(&outs, &dir, "serving_default", DENSE);
    Ok(())
}

/// The headline: `KerasLayer::call` on sentences gives TF's `(n, 128)` embedding.
#[test]
fn keras_layer_embeds_like_tensorflow() -> common::TestResult {
    let dir = common::fixture("nnlm_en_dim128");
    let layer = tfhub::KerasLayer::new(&dir)?;
    let inputs = common::read_json(&dir.join("inputs.json"));
    let sentences: Vec<&str> = inputs["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let emb = layer.call(&sentences)?;
    assert_eq!(emb.shape(), &[sentences.len(), 128]);
    let golden = common::read_json(&dir.join("golden.json"));
    let want: Vec<f64> = golden["default"]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    for (i, (g, w)) in emb.iter().zip(&want).enumerate() {
        let err = (*g as f64 - w).abs();
        assert!(err <= 1e-6 + 1e-6 * w.abs(), "[{i}]: {g} vs TF {w}");
    }
    Ok(())
}

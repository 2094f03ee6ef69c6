//! TF1 graphs: a TF1 Hub module (ModuleDef format 3, empty tag set, no saver_def) and an
//! Estimator-style TF1 SavedModel, both with ref variables, v1 tables, `StringSplit` v1 and
//! v1 dataflow control flow (nested `while_loop`s and `cond`s); goldens from the
//! `tf.compat.v1.Session` that built them (`tools/make_fixtures_tf1.py`).

mod common;

use common::{run_fixture, Tolerance, DENSE};

/// Loops and conds over a few tanh layers: a couple of ulps of drift are allowed.
const LOOPS: Tolerance = Tolerance::F32 {
    rel: 1e-5,
    abs: 2e-6,
};

#[test]
fn tf1_hub_module_default_signature_matches_the_session() -> common::TestResult {
    run_fixture("tf1_hub_module", "default", LOOPS)
}

#[test]
fn tf1_hub_module_loads_with_the_empty_tag_set_and_lists_its_signature() -> common::TestResult {
    let m = tfhub::load(common::fixture("tf1_hub_module"))?;
    assert_eq!(m.signature_names(), vec!["default", "update"]);
    // An explicit other tag set is honoured (and fails, naming the tag sets present).
    let opts = tfhub::api::LoadOptions {
        tags: vec!["train".into()],
        ..Default::default()
    };
    let err = tfhub::Model::load_with(&common::fixture("tf1_hub_module"), &opts).unwrap_err();
    assert!(matches!(err, tfhub::Error::NotFound { .. }), "{err}");
    Ok(())
}

#[test]
fn tf1_saved_model_with_tensor_arrays_matches_the_session() -> common::TestResult {
    run_fixture("tf1_saved_model", "serving_default", DENSE)
}

/// A TF1 while loop respects `Limits::max_loop_iterations` with a typed error naming it.
#[test]
fn tf1_while_loop_iteration_cap_is_a_typed_error() -> common::TestResult {
    let dir = common::fixture("tf1_hub_module");
    let opts = tfhub::api::LoadOptions {
        tags: vec![],
        limits: tfhub::ops::Limits {
            max_loop_iterations: 2,
            ..Default::default()
        },
        ..Default::default()
    };
    let m = tfhub::Model::load_with(&dir, &opts)?;
    let ins = common::inputs(&m, &dir, "default");
    let err = m.signature("default")?.call(ins).unwrap_err();
    let text = format!("{err}");
    let chain = std::iter::successors(Some(&err as &dyn std::error::Error), |e| e.source())
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(": ");
    assert!(
        matches!(&err, tfhub::Error::Node { op, .. } if op == "LoopCond"),
        "{text}"
    );
    assert!(chain.contains("max_loop_iterations"), "{chain}");
    Ok(())
}

/// A model that only has the text-format `saved_model.pbtxt` gets an error naming it.
#[test]
fn pbtxt_only_model_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("saved_model.pbtxt"), "meta_graphs {}\n").unwrap();
    let err = tfhub::load(dir.path()).unwrap_err();
    assert!(format!("{err}").contains("saved_model.pbtxt"), "{err}");
}

/// `AssignAdd` then `AssignSub` on a restored ref variable, read through `Identity`.
#[test]
fn tf1_hub_module_update_signature_assigns_the_ref_variable() -> common::TestResult {
    run_fixture("tf1_hub_module", "update", Tolerance::Exact)
}

/// `inspect` lists a TF1 model's assets from the `saved_model_assets` collection.
#[test]
fn inspect_lists_tf1_assets_from_the_collection() -> common::TestResult {
    let i = tfhub::api::inspect(&common::fixture("tf1_hub_module"))?;
    let mg = &i.json["meta_graphs"][0];
    assert_eq!(mg["tags"], serde_json::json!([]));
    assert_eq!(mg["asset_files"], serde_json::json!(["tokens.txt"]));
    Ok(())
}

fn tfhub(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_tfhub"))
        .args(args)
        .output()
        .expect("runs")
}

/// Compares a `tfhub run` JSON output with a golden file: same keys, shapes and dtypes,
/// floats within `LOOPS`' bounds, everything else exactly.
fn assert_cli_golden(got: &serde_json::Value, golden: &std::path::Path) {
    let want = common::read_json(golden);
    let (g, w) = (got.as_object().unwrap(), want.as_object().unwrap());
    assert_eq!(g.keys().collect::<Vec<_>>(), w.keys().collect::<Vec<_>>());
    for (k, wv) in w {
        let gv = &g[k];
        assert_eq!(gv["dtype"], wv["dtype"], "{k}");
        assert_eq!(gv["shape"], wv["shape"], "{k}");
        let (ga, wa) = (
            gv["values"].as_array().unwrap(),
            wv["values"].as_array().unwrap(),
        );
        assert_eq!(ga.len(), wa.len(), "{k}");
        for (i, (a, b)) in ga.iter().zip(wa).enumerate() {
            if wv["dtype"] == "float32" {
                let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
                assert!(
                    (a - b).abs() <= 2e-6 + 1e-5 * b.abs(),
                    "{k}[{i}]: {a} vs {b}"
                );
            } else {
                assert_eq!(a, b, "{k}[{i}]");
            }
        }
    }
}

/// `tfhub run` and `tfhub inspect` on both TF1 fixtures, from the command line.
#[test]
fn cli_run_and_inspect_on_tf1_fixtures() {
    for (name, sig, golden) in [
        ("tf1_hub_module", "default", "golden_default.json"),
        ("tf1_hub_module", "update", "golden_update.json"),
        ("tf1_saved_model", "serving_default", "golden.json"),
    ] {
        let dir = common::fixture(name);
        let inputs = if sig == "serving_default" {
            dir.join("inputs.json")
        } else {
            dir.join(format!("inputs_{sig}.json"))
        };
        let out = tfhub(&[
            "run",
            dir.to_str().unwrap(),
            "--signature",
            sig,
            "--inputs",
            inputs.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{name}/{sig}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_cli_golden(&got, &dir.join(golden));

        let out = tfhub(&["inspect", dir.to_str().unwrap(), "--json"]);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let text = j.to_string();
        assert!(text.contains("tokens.txt"), "{name}: assets: {text}");
        assert!(text.contains(&format!("\"{sig}\"")), "{name}: {text}");
    }
    // The empty tag set by default, `--tags` for another one (listing the tag sets present).
    let d = common::fixture("tf1_hub_module");
    let inputs = d.join("inputs_default.json");
    let out = tfhub(&[
        "run",
        d.to_str().unwrap(),
        "--signature",
        "default",
        "--tags",
        "train",
        "--inputs",
        inputs.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("train"), "{err}");
}

/// hub.KerasLayer on a TF1 Hub module uses signature `default`, output key `default`; so do
/// `KerasLayer` and `tfhub embed`.
#[test]
fn keras_layer_and_embed_use_the_default_signature_of_a_tf1_hub_module() -> common::TestResult {
    let dir = common::fixture("tf1_hub_module");
    let layer = tfhub::api::KerasLayer::new(&dir)?;
    assert!(
        matches!(layer.entry_point(), tfhub::api::EntryPoint::Signature { name, .. } if name == "default"),
        "{}",
        layer.entry_point()
    );
    let inputs = common::read_json(&dir.join("inputs_default.json"));
    let sentences: Vec<&str> = inputs["default"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    let want = common::read_json(&dir.join("golden_default.json"));
    let want: Vec<f64> = want["default"]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let got = layer.call(&sentences)?;
    assert_eq!(got.shape(), &[5, 6]);
    for (i, (a, b)) in got.iter().zip(&want).enumerate() {
        let a = f64::from(*a);
        assert!((a - b).abs() <= 2e-6 + 1e-5 * b.abs(), "[{i}]: {a} vs {b}");
    }

    let mut args = vec![
        "embed",
        "--model",
        dir.to_str().unwrap(),
        "--json",
        "--verbose",
    ];
    args.extend(sentences.iter().copied());
    let out = tfhub(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("signature default"), "{err}");
    let got: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let flat: Vec<f64> = got["values"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap().clone())
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(flat.len(), want.len());
    for (i, (a, b)) in flat.iter().zip(&want).enumerate() {
        assert!(
            (a - b).abs() <= 2e-6 + 1e-5 * b.abs(),
            "embed [{i}]: {a} vs {b}"
        );
    }
    Ok(())
}

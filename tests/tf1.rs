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

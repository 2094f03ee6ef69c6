//! Issue #17's load-time and plan-time rewrites on TF-checked fixtures
//! (`tools/make_fixtures_speed.py`): variables nothing writes are frozen into constants
//! (`graph::freeze`), so Keras 3's decomposed batch norm folds and its per-channel steps join
//! the convolution's epilogue; Keras' swish `IdentityN`s are bypassed; the transcendental
//! kernels (sigmoid, erfc, exp, tanh) are
//! the vectorized ones. Results still match TensorFlow.

mod common;

use common::{check_golden, fixture, inputs, DENSE};
use tfhub::api::LoadOptions;

fn plan_of(model: &tfhub::Model) -> String {
    format!(
        "{:?}",
        model.signature("serving_default").expect("signature")
    )
}

fn run(name: &str) -> Result<tfhub::Model, Box<dyn std::error::Error>> {
    run_with(name, &LoadOptions::default())
}

fn run_with(name: &str, opts: &LoadOptions) -> Result<tfhub::Model, Box<dyn std::error::Error>> {
    let dir = fixture(name);
    let model = tfhub::Model::load_with(&dir, opts)?;
    let sig = "serving_default";
    let ins = inputs(&model, &dir, sig);
    for _ in 0..2 {
        let outs = model.signature(sig)?.call(ins.clone())?;
        check_golden(&outs, &dir, sig, DENSE);
    }
    Ok(model)
}

#[test]
fn efficientnet_block_freezes_and_matches_golden() -> common::TestResult {
    let model = run("efficientnet_block")?;
    let plan = plan_of(&model);
    // No variable is read per call and batch-norm arithmetic on weights was folded.
    assert_eq!(
        plan.matches("op_type: \"ReadVariableOp\"").count(),
        0,
        "{plan}"
    );
    assert_eq!(plan.matches("op_type: \"Rsqrt\"").count(), 0, "{plan}");
    // Keras' swish wraps `x * sigmoid(1.0 * x)` in an `IdentityN` for its gradient; the
    // `IdentityN`s are bypassed and the six swishes (with their `1.0 *`) fuse, so only the two
    // squeeze-and-excitation gates keep a `Sigmoid` of their own.
    assert_eq!(plan.matches("op_type: \"IdentityN\"").count(), 0, "{plan}");
    assert_eq!(plan.matches("op_type: \"Sigmoid\"").count(), 2, "{plan}");
    Ok(())
}

/// Keras' `ZeroPadding2D` before MobileNetV2's stride-2 depthwise convolutions folds into the
/// convolution's padding: no `Pad` step is left, and the results still match TF.
#[test]
fn pads_fold_into_convolutions() -> common::TestResult {
    let model = run("mobilenet_v2_small")?;
    let plan = plan_of(&model);
    assert_eq!(plan.matches("op_type: \"Pad\"").count(), 0, "{plan}");
    let unfused = run_with(
        "mobilenet_v2_small",
        &LoadOptions {
            fusion: false,
            ..Default::default()
        },
    )?;
    let plan = plan_of(&unfused);
    assert!(plan.contains("op_type: \"Pad\""), "{plan}");
    Ok(())
}

#[test]
fn gelu_encoder_freezes_and_matches_golden() -> common::TestResult {
    let model = run("gelu_encoder")?;
    let plan = plan_of(&model);
    assert_eq!(
        plan.matches("op_type: \"ReadVariableOp\"").count(),
        0,
        "{plan}"
    );
    Ok(())
}

/// `LoadOptions::freeze = false` (the CLI's `TFHUB_NO_FREEZE=1`) keeps per-call variable
/// reads, with the same results.
#[test]
fn freeze_off_keeps_variable_reads() -> common::TestResult {
    let opts = LoadOptions {
        freeze: false,
        ..Default::default()
    };
    for name in ["efficientnet_block", "gelu_encoder"] {
        let model = run_with(name, &opts)?;
        let plan = plan_of(&model);
        assert!(
            plan.contains("op_type: \"ReadVariableOp\""),
            "{name}: {plan}"
        );
    }
    Ok(())
}

/// A signature that assigns a variable keeps today's semantics: nothing is frozen, and the
/// second call sees the incremented counter (the golden is TF's first call).
#[test]
fn assigned_variables_are_not_frozen() -> common::TestResult {
    let dir = fixture("counter_variable");
    let model = tfhub::load(&dir)?;
    let sig = model.signature("serving_default")?;
    let ins = inputs(&model, &dir, "serving_default");
    let first = sig.call(ins.clone())?;
    check_golden(&first, &dir, "serving_default", DENSE);
    let second = sig.call(ins)?;
    let (a, b) = (
        first["y"].as_slice::<f32>()?,
        second["y"].as_slice::<f32>()?,
    );
    assert!(a.iter().zip(b).all(|(x, y)| y > x), "{a:?} then {b:?}");
    let plan = plan_of(&model);
    assert!(plan.contains("op_type: \"ReadVariableOp\""), "{plan}");
    Ok(())
}

/// Freezing and the new fusions leave the existing dense fixtures matching TF.
#[test]
fn frozen_models_still_match_every_existing_fixture() -> common::TestResult {
    for name in [
        "cnn",
        "mlp",
        "attention",
        "mobilenet_v2_small",
        "cnn_keras2",
    ] {
        run(name)?;
    }
    Ok(())
}

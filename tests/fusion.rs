//! The planner fuses `MatMul`/`Conv2D`/`DepthwiseConv2dNative` with the per-channel ops and
//! activation that follow them (`graph::fuse`), and fused models still match TensorFlow.
//! Repeated calls exercise the packed-weight cache of `MatMul` (packed on the second call
//! with the same weights, reused afterwards).

mod common;

use common::{check_golden, fixture, inputs, DENSE};

/// Number of fused chains in the plans reachable from `sig` (functions are printed inside
/// the plans that call them).
fn fused_chains(model: &tfhub::Model, sig: &str) -> usize {
    let plan = format!("{:?}", model.signature(sig).expect("signature"));
    plan.matches("FusedChain {").count()
}

fn check(name: &str, min_chains: usize) -> common::TestResult {
    let dir = fixture(name);
    let model = tfhub::load(&dir)?;
    let sig = "serving_default";
    let ins = inputs(&model, &dir, sig);
    for _ in 0..3 {
        let outs = model.signature(sig)?.call(ins.clone())?;
        check_golden(&outs, &dir, sig, DENSE);
    }
    let chains = fused_chains(&model, sig);
    assert!(
        chains >= min_chains,
        "{name}: {chains} fused chains, expected at least {min_chains}"
    );
    Ok(())
}

#[test]
fn mlp_dense_layers_fuse_and_match_golden() -> common::TestResult {
    check("mlp", 2)
}

#[test]
fn cnn_conv_blocks_fuse_and_match_golden() -> common::TestResult {
    check("cnn", 2)
}

#[test]
fn mobilenet_fuses_and_matches_golden() -> common::TestResult {
    check("mobilenet_v2_small", 3)
}

/// Keras 2 `BatchNormalization` is `FusedBatchNormV3` (inference mode): every one of the
/// fixture's three (after `Conv2D`, `DepthwiseConv2dNative` and `Conv2D → BiasAdd`) joins
/// its producer's chain.
#[test]
fn keras2_fused_batch_norms_fuse_and_match_golden() -> common::TestResult {
    check("cnn_keras2", 3)?;
    let model = tfhub::load(fixture("cnn_keras2"))?;
    let plan = format!("{:?}", model.signature("serving_default")?);
    assert_eq!(plan.matches("kind: BatchNorm").count(), 3, "{plan}");
    Ok(())
}

/// With `TFHUB_NO_FUSION=1` nothing fuses (and results still match); without, chains form.
/// Run for real by `no_fusion_switch_turns_every_fusion_off` in a child process with the
/// variable set, so this process's other tests never see it.
#[test]
fn fusion_follows_the_env_switch() -> common::TestResult {
    let off = std::env::var_os("TFHUB_NO_FUSION").is_some_and(|v| !v.is_empty() && v != "0");
    // The library reads no environment: the switch maps onto `LoadOptions::fusion`, as the
    // CLI maps it.
    let opts = tfhub::api::LoadOptions {
        fusion: !off,
        ..Default::default()
    };
    for name in ["cnn_keras2", "mobilenet_v2_small", "mlp"] {
        let dir = fixture(name);
        let model = tfhub::Model::load_with(&dir, &opts)?;
        let outs =
            model
                .signature("serving_default")?
                .call(inputs(&model, &dir, "serving_default"))?;
        check_golden(&outs, &dir, "serving_default", DENSE);
        let chains = fused_chains(&model, "serving_default");
        if off {
            assert_eq!(chains, 0, "{name}: fused with TFHUB_NO_FUSION set");
        } else {
            assert!(chains > 0, "{name}: nothing fused");
        }
    }
    Ok(())
}

#[test]
fn no_fusion_switch_turns_every_fusion_off() {
    let exe = std::env::current_exe().expect("test binary");
    let out = std::process::Command::new(exe)
        .args(["fusion_follows_the_env_switch", "--exact", "--nocapture"])
        .env("TFHUB_NO_FUSION", "1")
        .output()
        .expect("child test runs");
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{log}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(log.contains("1 passed"), "{log}");
}

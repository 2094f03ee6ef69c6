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

//! Issue #17's transformer path: a dense layer's bias (and exact GELU) run in its GEMM's
//! epilogue (`graph::fuse_dense`: `MatMul → Reshape → BiasAdd → GELU` of Keras' `Dense` on
//! rank-3 inputs, `BatchMatMulV2 → Reshape → AddV2` of Keras 3's `EinsumDense` projections),
//! and Keras 3's attention core (scores `Einsum` → scale → `Softmax` → context `Einsum`) runs
//! as one step per (batch, head) block (`graph::fuse_attention`), both bit-identical to the
//! unfused ops and matching TensorFlow.

mod common;

use common::{check_golden, fixture, inputs, DENSE};
use tfhub::api::LoadOptions;

#[test]
fn dense_layers_and_attention_fuse_bit_identically() -> common::TestResult {
    let sig = "serving_default";
    // (fixture, fused dense steps at least, of which with GELU at least)
    for (name, min_dense, min_gelu) in [("gelu_encoder", 2, 1), ("attention", 3, 0)] {
        let dir = fixture(name);
        let fused = tfhub::Model::load_with(&dir, &LoadOptions::default())?;
        let unfused = tfhub::Model::load_with(
            &dir,
            &LoadOptions {
                fusion: false,
                ..Default::default()
            },
        )?;
        let plan = format!("{:?}", fused.signature(sig)?);
        let dense = plan.matches("DenseBias {").count();
        // Each step's fields run up to the next step's `DenseBias {`.
        let gelu = plan
            .split("DenseBias {")
            .skip(1)
            .filter(|s| s.contains("gelu: Some("))
            .count();
        assert!(
            dense >= min_dense,
            "{name}: {dense} fused dense steps: {plan}"
        );
        assert!(
            gelu >= min_gelu,
            "{name}: {gelu} fused dense+GELU steps: {plan}"
        );
        let ins = inputs(&fused, &dir, sig);
        // Three calls: the first GEMMs run unpacked, later ones on the cached packing.
        for _ in 0..3 {
            let a = fused.signature(sig)?.call(ins.clone())?;
            let b = unfused.signature(sig)?.call(ins.clone())?;
            check_golden(&a, &dir, sig, DENSE);
            for (k, t) in &a {
                let (x, y) = (t.as_slice::<f32>()?, b[k].as_slice::<f32>()?);
                assert!(
                    x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits()),
                    "{name}/{k}: fused dense step differs from the unfused ops"
                );
            }
        }
    }
    Ok(())
}

//! Issue #17's transformer path on TF-checked fixtures: Keras' exact GELU
//! (`0.5·x·erfc(-x/√2)`, five graph ops) runs as one fused pass (`graph::fuse_gelu`) whose
//! results are bit-identical to the unfused ops and still match TensorFlow; so does the
//! elementwise tail of Keras' `LayerNormalization` (`graph::fuse_layernorm`).

mod common;

use common::{check_golden, fixture, inputs, DENSE};
use tfhub::api::LoadOptions;

fn plan_of(model: &tfhub::Model) -> String {
    format!(
        "{:?}",
        model.signature("serving_default").expect("signature")
    )
}

#[test]
fn gelu_and_layer_norm_fuse_bit_identically_and_match_golden() -> common::TestResult {
    let sig = "serving_default";
    for name in ["gelu_encoder", "attention", "mlp"] {
        let dir = fixture(name);
        let fused = tfhub::Model::load_with(&dir, &LoadOptions::default())?;
        let unfused = tfhub::Model::load_with(
            &dir,
            &LoadOptions {
                fusion: false,
                ..Default::default()
            },
        )?;
        let plan = plan_of(&fused);
        let plain = plan_of(&unfused);
        let count = |p: &str, op: &str| p.matches(&format!("op_type: \"{op}\"")).count();
        assert_eq!(count(&plan, "Erfc"), 0, "{name}: {plan}");
        // Whole layer norms (`graph::fuse_layernorm::LayerNorm`): no statistics op is left.
        for op in ["SquaredDifference", "Rsqrt", "Mean"] {
            assert_eq!(count(&plan, op), 0, "{name}: {op} left in {plan}");
        }
        assert!(count(&plain, "Erfc") > 0, "{name}");
        // Each GELU drops two `Mul`s (the fused step keeps the last `Mul`'s node), each layer
        // norm (one `Rsqrt` each) three (its step sits at the final `AddV2`), each fused
        // attention core (`graph::fuse_attention`) its scale `Mul`.
        assert_eq!(
            count(&plain, "Mul") - count(&plan, "Mul"),
            2 * count(&plain, "Erfc")
                + 3 * count(&plain, "Rsqrt")
                + plan.matches("Attention {").count(),
            "{name}: {plan}"
        );
        let ins = inputs(&fused, &dir, sig);
        let a = fused.signature(sig)?.call(ins.clone())?;
        let b = unfused.signature(sig)?.call(ins)?;
        check_golden(&a, &dir, sig, DENSE);
        for (k, t) in &a {
            let (x, y) = (t.as_slice::<f32>()?, b[k].as_slice::<f32>()?);
            assert!(
                x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits()),
                "{name}/{k}: fused GELU differs from the unfused ops"
            );
        }
    }
    Ok(())
}

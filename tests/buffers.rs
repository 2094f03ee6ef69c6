//! Large buffers are recycled across calls (`tensor::pool`): repeated and concurrent calls
//! still match TensorFlow, outputs and inputs the caller holds are never overwritten, and the
//! pool stays under `Limits::max_pooled_bytes`.

mod common;

use std::collections::BTreeMap;

use common::{check_golden, fixture, inputs, DENSE};
use tfhub::api::LoadOptions;
use tfhub::ops::Limits;
use tfhub::{Model, Tensor};

fn f32s(t: &Tensor) -> Vec<u32> {
    t.as_slice::<f32>()
        .expect("f32")
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

fn bits(outs: &BTreeMap<String, Tensor>) -> Vec<(String, Vec<u32>)> {
    outs.iter().map(|(k, t)| (k.clone(), f32s(t))).collect()
}

/// MobileNetV2's activations (2×48×48×16 and up) are large enough to be pooled.
#[test]
fn repeated_calls_reuse_buffers_and_match_golden() -> common::TestResult {
    let dir = fixture("mobilenet_v2_small");
    let model = tfhub::load(&dir)?;
    let sig = model.signature("serving_default")?;
    let ins = inputs(&model, &dir, "serving_default");
    let first = sig.call(ins.clone())?;
    check_golden(&first, &dir, "serving_default", DENSE);
    let pooled = model.session().pooled_bytes();
    assert!(pooled > 0, "nothing was kept for reuse");
    assert!(pooled <= Limits::default().max_pooled_bytes);
    for _ in 0..5 {
        let outs = sig.call(ins.clone())?;
        assert_eq!(bits(&outs), bits(&first));
        // It may take a few calls to settle (a buffer still in use is not available for a
        // same-size request), but it never exceeds the cap.
        assert!(model.session().pooled_bytes() <= Limits::default().max_pooled_bytes);
    }
    model.session().release_pooled();
    assert_eq!(model.session().pooled_bytes(), 0);
    assert_eq!(bits(&sig.call(ins)?), bits(&first));
    Ok(())
}

#[test]
fn concurrent_calls_match_golden() -> common::TestResult {
    let dir = fixture("mobilenet_v2_small");
    let model = tfhub::load(&dir)?;
    let ins = inputs(&model, &dir, "serving_default");
    let want = bits(&model.signature("serving_default")?.call(ins.clone())?);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    let sig = model.signature("serving_default").expect("signature");
                    for _ in 0..6 {
                        let outs = sig.call(ins.clone()).expect("call");
                        check_golden(&outs, &dir, "serving_default", DENSE);
                        assert_eq!(bits(&outs), want);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("thread");
        }
    });
    Ok(())
}

/// `sharded`'s output `y` is `[batch, 100]` float32: at batch 200 (80 KB) it is poolable.
fn sharded_inputs(model: &Model, scale: f32) -> Vec<(String, Tensor)> {
    let sig = model.signature("serving_default").expect("signature");
    let key = sig.inputs()[0].key.clone();
    let x: Vec<f32> = (0..200 * 300)
        .map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * scale)
        .collect();
    vec![(key, Tensor::from_vec(&[200, 300], x).expect("shape"))]
}

#[test]
fn outputs_and_inputs_the_caller_holds_are_never_recycled() -> common::TestResult {
    let model = tfhub::load(fixture("sharded"))?;
    let sig = model.signature("serving_default")?;
    let ins = sharded_inputs(&model, 1.0);
    let x_before = f32s(&ins[0].1);
    let kept = sig.call(ins.clone())?;
    let kept_y = f32s(&kept["y"]);
    assert!(
        kept_y.len() * 4 >= 64 << 10,
        "y is large enough to be pooled"
    );
    for i in 0..6 {
        // Fresh inputs the model owns: recycled after their last use.
        let outs = sig.call(sharded_inputs(&model, 2.0 + i as f32))?;
        assert_ne!(f32s(&outs["y"]), kept_y);
    }
    assert!(model.session().pooled_bytes() > 0, "nothing was recycled");
    assert_eq!(
        f32s(&kept["y"]),
        kept_y,
        "an output the caller holds changed"
    );
    assert_eq!(
        f32s(&ins[0].1),
        x_before,
        "an input the caller holds changed"
    );
    let fresh = sig.call(ins)?;
    assert_eq!(f32s(&fresh["y"]), f32s(&kept["y"]));
    Ok(())
}

#[test]
fn pooling_can_be_turned_off() -> common::TestResult {
    let dir = fixture("mobilenet_v2_small");
    let opts = LoadOptions {
        limits: Limits {
            max_pooled_bytes: 0,
            ..Limits::default()
        },
        ..LoadOptions::default()
    };
    let model = Model::load_with(&dir, &opts)?;
    let ins = inputs(&model, &dir, "serving_default");
    for _ in 0..2 {
        let outs = model.signature("serving_default")?.call(ins.clone())?;
        check_golden(&outs, &dir, "serving_default", DENSE);
    }
    assert_eq!(model.session().pooled_bytes(), 0);
    Ok(())
}

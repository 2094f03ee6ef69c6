//! Load-time and call-time errors through the public API: unsupported ops are listed at load,
//! wrong inputs name the expected signature.
mod common;

use common::{copy_dir, fixture};
use prost::Message;
use tfhub::{Error, Tensor};

/// Renames every node of op type `from` (in the graph and all functions) to `to`.
fn with_renamed_op(name: &str, from: &str, to: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixture(name), tmp.path());
    let pb = tmp.path().join("saved_model.pb");
    let mut sm = tfhub::proto::SavedModel::decode(std::fs::read(&pb).unwrap().as_slice()).unwrap();
    for mg in &mut sm.meta_graphs {
        let g = mg.graph_def.as_mut().unwrap();
        for n in &mut g.node {
            if n.op == from {
                n.op = to.to_string();
            }
        }
        for f in &mut g.library.as_mut().unwrap().function {
            for n in &mut f.node_def {
                if n.op == from {
                    n.op = to.to_string();
                }
            }
        }
    }
    std::fs::write(&pb, sm.encode_to_vec()).unwrap();
    tmp
}

#[test]
fn unsupported_ops_are_all_listed_at_load_with_their_nodes() {
    let tmp = with_renamed_op("mlp", "MatMul", "FancyMatMul");
    let tmp2 = with_renamed_op(tmp.path().to_str().unwrap(), "Relu", "FancyRelu");
    let err = tfhub::load(tmp2.path()).unwrap_err();
    let Error::UnsupportedOps(ops) = &err else {
        panic!("{err}")
    };
    let names: Vec<&str> = ops.iter().map(|u| u.op.as_str()).collect();
    assert!(
        names.contains(&"FancyMatMul") && names.contains(&"FancyRelu"),
        "{err}"
    );
    assert!(ops.iter().all(|u| !u.node.is_empty()));
    assert!(err.to_string().starts_with("unsupported ops: "), "{err}");
}

#[test]
fn wrong_input_name_dtype_and_shape_name_the_signature() -> common::TestResult {
    let model = tfhub::load(fixture("mlp"))?;
    let sig = model.signature("serving_default")?;
    let x = Tensor::from_vec(&[2, 16], vec![0.5f32; 32])?;
    assert_eq!(
        sig.call([("features", x.clone())])?["output_0"].shape(),
        &[2, 10]
    );

    let err = sig.call([("nope", x.clone())]).unwrap_err();
    assert!(matches!(err, Error::Input { .. }), "{err}");
    assert!(
        err.to_string().contains("features: float32[?, 16]"),
        "{err}"
    );

    let err = sig
        .call([("features", Tensor::from_vec(&[2, 16], vec![1i32; 32])?)])
        .unwrap_err();
    assert!(
        err.to_string().contains("dtype int32, not float32"),
        "{err}"
    );

    let err = sig
        .call([("features", Tensor::from_vec(&[2, 8], vec![0f32; 16])?)])
        .unwrap_err();
    assert!(err.to_string().contains("shape [2, 8]"), "{err}");

    let err = model.signature("nonexistent").unwrap_err();
    assert!(err.to_string().contains("serving_default"), "{err}");
    Ok(())
}

#[test]
fn model_is_send_sync_and_callable_from_many_threads() -> common::TestResult {
    fn assert_send_sync<T: Send + Sync>(_: &T) {}
    let model = tfhub::load(fixture("nnlm_norm_dim32"))?;
    assert_send_sync(&model);
    let sig = model.signature("serving_default")?;
    let one = |s: &str| -> Vec<f32> {
        let out = sig
            .call([("sentences", Tensor::from_strings(&[1], [s]).unwrap())])
            .unwrap();
        out["default"].as_slice::<f32>().unwrap().to_vec()
    };
    let want = one("the cat sat on the mat");
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..20 {
                    assert_eq!(one("the cat sat on the mat"), want);
                }
            });
        }
    });
    Ok(())
}

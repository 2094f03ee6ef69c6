use std::collections::HashMap;
use std::path::Path;

use super::super::{Compiler, Feed, Fetch};
use crate::ops::{EvalCtx, Limits, Registry, Session};
use crate::proto::{attr_value, AttrValue, NodeDef};
use crate::saved_model::SavedModel;
use crate::tensor::{DType, Tensor};

fn node(name: &str, op: &str, inputs: &[&str], attrs: &[(&str, attr_value::Value)]) -> NodeDef {
    NodeDef {
        name: name.into(),
        op: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        attr: attrs
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    AttrValue {
                        value: Some(v.clone()),
                    },
                )
            })
            .collect(),
        ..Default::default()
    }
}

fn ty(t: DType) -> attr_value::Value {
    attr_value::Value::Type(t.to_proto())
}

/// `SparseSegmentSqrtN(Identity(GatherV2(params, Unique(ids).y, 0)), Unique(ids).idx, seg)`.
fn lookup_graph() -> Vec<NodeDef> {
    let axis = crate::saved_model::tensor_proto::tensor_to_proto(&Tensor::scalar(0i32));
    vec![
        node("params", "Placeholder", &[], &[("dtype", ty(DType::F32))]),
        node("ids", "Placeholder", &[], &[("dtype", ty(DType::I64))]),
        node("seg", "Placeholder", &[], &[("dtype", ty(DType::I64))]),
        node("u", "Unique", &["ids"], &[("T", ty(DType::I64))]),
        node(
            "axis",
            "Const",
            &[],
            &[
                ("dtype", ty(DType::I32)),
                ("value", attr_value::Value::Tensor(Box::new(axis))),
            ],
        ),
        node(
            "g",
            "GatherV2",
            &["params", "u:0", "axis"],
            &[("Tparams", ty(DType::F32)), ("Tindices", ty(DType::I64))],
        ),
        node("gi", "Identity", &["g"], &[("T", ty(DType::F32))]),
        node("s", "SparseSegmentSqrtN", &["gi", "u:1", "seg"], &[]),
    ]
}

fn feeds() -> Vec<Feed> {
    ["params", "ids", "seg"]
        .iter()
        .map(|n| Feed::parse(n))
        .collect()
}

#[test]
fn fuses_gather_of_unique_and_matches_the_unfused_plan() -> Result<(), Box<dyn std::error::Error>> {
    let nodes = lookup_graph();
    let reg = Registry::with_all_ops();
    let fetch = |n: &str| Fetch::Tensor(Feed::parse(n));
    let mut c = Compiler::new(&reg, None, None, Limits::default());
    let fused = c.compile_graph(&nodes, &feeds(), &[fetch("s")])?;
    // Only the fused segment op is left.
    assert_eq!(fused.steps.len(), 1);
    assert!(fused.steps[0].op_type.contains("fused"));
    // Fetching the gathered rows too gives them a second consumer: nothing is fused.
    let mut c = Compiler::new(&reg, None, None, Limits::default());
    let plain = c.compile_graph(&nodes, &feeds(), &[fetch("s"), fetch("gi")])?;
    // Unique, GatherV2, SparseSegmentSqrtN (the Identity is forwarded, `graph/slim.rs`).
    assert_eq!(plain.steps.len(), 3);
    assert!(plain.steps.iter().all(|s| !s.op_type.contains("fused")));

    let session = Session::new(".".into(), None, Limits::default());
    let params = Tensor::from_vec(&[4, 3], (0..12).map(|v| v as f32 * 0.37 - 1.1).collect())?;
    let ids = Tensor::vector(vec![3i64, 1, 3, 0, 0, 2, 3]);
    let seg = Tensor::vector(vec![0i64, 0, 0, 2, 3, 3, 3]);
    let args = vec![params, ids, seg];
    let a = fused.run(&mut EvalCtx::new(&session), args.clone())?;
    let b = plain.run(&mut EvalCtx::new(&session), args)?;
    assert_eq!(a[0].shape(), [4, 3]);
    let bits = |t: &Tensor| -> Vec<u32> {
        t.as_slice::<f32>()
            .map(|s| s.iter().map(|v| v.to_bits()).collect())
            .unwrap_or_default()
    };
    assert_eq!(bits(&a[0]), bits(&b[0]));
    // Row 1 is an empty segment: zeros.
    assert!(a[0].as_slice::<f32>()?[3..6].iter().all(|&v| v == 0.0));
    Ok(())
}

#[test]
fn fusion_fires_on_the_nnlm_fixture() -> Result<(), Box<dyn std::error::Error>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nnlm_en_dim128");
    let sm = SavedModel::open(&dir)?;
    let mg = sm.meta_graph(&["serve"])?;
    let graph = mg.graph_def.as_ref().ok_or("no graph")?;
    let library = graph.library.as_ref().ok_or("no library")?;
    let reg = Registry::with_all_ops();
    let mut c = Compiler::new(
        &reg,
        Some(library),
        mg.meta_info_def
            .as_ref()
            .and_then(|m| m.stripped_op_list.as_ref()),
        Limits::default(),
    );
    let mut names = Vec::new();
    for f in &library.function {
        let sig = f.signature.as_ref().ok_or("signature")?;
        if f.node_def.iter().any(|n| n.op == "SparseSegmentSqrtN") {
            names.push(sig.name.clone());
        }
    }
    assert!(!names.is_empty());
    let mut counts: HashMap<String, usize> = HashMap::new();
    for name in &names {
        let f = c.function_ref(name)?;
        c.drain()?;
        let plan = f.plan.get().ok_or("not compiled")?;
        for s in &plan.steps {
            *counts.entry(s.op_type.clone()).or_default() += 1;
        }
    }
    let fused = counts
        .get("SparseSegmentSqrtN (fused with Unique and Gather)")
        .copied();
    assert_eq!(fused, Some(names.len()), "{counts:?}");
    assert!(!counts.contains_key("SparseSegmentSqrtN"), "{counts:?}");
    assert!(!counts.contains_key("ResourceGather"), "{counts:?}");
    assert!(!counts.contains_key("Unique"), "{counts:?}");
    Ok(())
}

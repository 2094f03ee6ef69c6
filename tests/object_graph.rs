//! Object-graph models (issue 14): calling `__call__`, `tokenize`, `bert_pack_inputs` and
//! signatures by attribute path, hub.KerasLayer's entry-point choice, per-entry-point
//! failures, and depth. Goldens come from `hub.load` / `hub.KerasLayer`
//! (tools/make_fixtures_objgraph.py).
mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::{copy_dir, fixture, read_json};
use prost::Message;
use serde_json::Value as Json;
use tfhub::api::json::{result_to_json, value_from_json};
use tfhub::api::{EntryPoint, KerasLayer, LoadOptions, Model, Value};
use tfhub::Error;

const FIXTURES: &[&str] = &[
    "objgraph_embed",
    "objgraph_bert_pre",
    "objgraph_default_sig",
    "objgraph_two_entry",
];

/// Compares our JSON output with TF's: same keys, dtypes, shapes and row_splits exactly;
/// float values within 1e-5 relative + 1e-6 absolute, everything else exactly.
fn assert_json_close(got: &Json, want: &Json, at: &str) {
    match (got, want) {
        (Json::Object(g), Json::Object(w)) => {
            assert_eq!(
                g.keys().collect::<Vec<_>>(),
                w.keys().collect::<Vec<_>>(),
                "{at}: keys"
            );
            let float = w
                .get("dtype")
                .and_then(Json::as_str)
                .is_some_and(|d| d.starts_with("float") || d == "bfloat16");
            for (k, wv) in w {
                let here = format!("{at}.{k}");
                if k == "values" && float {
                    let (g, w) = (g[k].as_array().unwrap(), wv.as_array().unwrap());
                    assert_eq!(g.len(), w.len(), "{here}: count");
                    for (i, (a, b)) in g.iter().zip(w).enumerate() {
                        let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
                        assert!(
                            (a - b).abs() <= 1e-6 + 1e-5 * b.abs(),
                            "{here}[{i}]: got {a}, TF {b}"
                        );
                    }
                } else {
                    assert_json_close(&g[k], wv, &here);
                }
            }
        }
        _ => assert_eq!(got, want, "{at}"),
    }
}

fn kwargs(call: &Json) -> BTreeMap<String, Value> {
    let mut kw = BTreeMap::new();
    for section in ["inputs", "consts"] {
        for (k, v) in call[section].as_object().unwrap() {
            kw.insert(k.clone(), value_from_json(v).unwrap());
        }
    }
    kw
}

/// Passes only with TF's op registry as the fallback for OpDefs: the `signatures={}` models
/// (`objgraph_embed`, `objgraph_bert_pre`) list none for the `tf.strings.split` → RaggedTensor
/// chain in their functions, whose NodeDefs TF saved with default attrs stripped.
#[test]
fn every_object_graph_call_matches_hub_load() -> common::TestResult {
    for name in FIXTURES {
        let dir = fixture(name);
        let model = tfhub::load(&dir)?;
        for call in read_json(&dir.join("calls.json")).as_array().unwrap() {
            let id = call["id"].as_str().unwrap();
            let f = model.function(call["function"].as_str().unwrap())?;
            let out = f
                .call(Vec::new(), kwargs(call))
                .unwrap_or_else(|e| panic!("{name}/{id}: {e}"));
            assert_json_close(
                &result_to_json(&out),
                &call["golden"],
                &format!("{name}/{id}"),
            );
            eprintln!("{name}/{id}: matches");
        }
    }
    Ok(())
}

/// The premise of the test above: TF left the split chain's OpDefs out of the model, and
/// stripped attrs that only TF's registry defaults (`StringSplitV2.maxsplit = -1`).
#[test]
fn signatures_free_models_lack_the_opdefs_their_functions_use() -> common::TestResult {
    for name in ["objgraph_embed", "objgraph_bert_pre"] {
        let pb = fixture(name).join("saved_model.pb");
        let sm = tfhub::proto::SavedModel::decode(std::fs::read(&pb)?.as_slice())?;
        let mg = &sm.meta_graphs[0];
        let listed: Vec<&str> = mg
            .meta_info_def
            .iter()
            .flat_map(|m| m.stripped_op_list.iter())
            .flat_map(|l| l.op.iter().map(|o| o.name.as_str()))
            .collect();
        assert!(!listed.contains(&"StringSplitV2"), "{name}: {listed:?}");
        let split = mg
            .graph_def
            .iter()
            .flat_map(|g| g.library.iter())
            .flat_map(|l| l.function.iter())
            .flat_map(|f| f.node_def.iter())
            .find(|n| n.op == "StringSplitV2")
            .unwrap_or_else(|| panic!("{name}: no StringSplitV2"));
        assert!(!split.attr.contains_key("maxsplit"), "{name}: {split:?}");
    }
    Ok(())
}

#[test]
fn keras_layer_picks_the_entry_point_hub_does_and_matches() -> common::TestResult {
    for name in FIXTURES {
        let dir = fixture(name);
        let k = read_json(&dir.join("keras.json"));
        let layer = KerasLayer::new(&dir)?;
        match k["entry"].as_str().unwrap() {
            "__call__" => assert!(
                matches!(layer.entry_point(), EntryPoint::Function { path, .. } if path == "__call__"),
                "{name}: {}",
                layer.entry_point()
            ),
            "signature default" => assert!(
                matches!(layer.entry_point(), EntryPoint::Signature { name, .. } if name == "default"),
                "{name}: {}",
                layer.entry_point()
            ),
            other => panic!("unknown entry {other}"),
        }
        let out = layer.call_value(value_from_json(&k["inputs"])?)?;
        let out = match out {
            // hub.KerasLayer(signature="default", output_key="default") returns the tensor.
            Value::Dict(m) if m.len() == 1 => m.into_values().next().unwrap(),
            v => v,
        };
        assert_json_close(&result_to_json(&out), &k["golden"], name);
    }
    // `__call__(x, training=False)` is called with training=False.
    let layer = KerasLayer::new(fixture("objgraph_two_entry"))?;
    assert_eq!(
        layer.entry_point(),
        &EntryPoint::Function {
            path: "__call__".into(),
            training: true
        }
    );
    Ok(())
}

fn tfhub(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tfhub"))
        .args(args)
        .output()
        .expect("runs")
}

#[test]
fn cli_run_function_embed_and_inspect_match() -> common::TestResult {
    let tmp = tempfile::tempdir()?;
    for name in FIXTURES {
        let dir = fixture(name);
        let d = dir.to_str().unwrap();
        for call in read_json(&dir.join("calls.json")).as_array().unwrap() {
            let id = call["id"].as_str().unwrap();
            let inputs = tmp.path().join(format!("{name}_{id}.json"));
            std::fs::write(&inputs, call["inputs"].to_string())?;
            let mut args = vec![
                "run".to_string(),
                d.to_string(),
                "--function".into(),
                call["function"].as_str().unwrap().into(),
                "--inputs".into(),
                inputs.to_str().unwrap().into(),
            ];
            for (k, v) in call["consts"].as_object().unwrap() {
                args.push("--arg".into());
                args.push(format!("{k}={v}"));
            }
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = tfhub(&a);
            assert!(
                out.status.success(),
                "{name}/{id}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let got: Json = serde_json::from_slice(&out.stdout)?;
            assert_json_close(&got, &call["golden"], &format!("cli {name}/{id}"));
        }
    }
    // embed follows KerasLayer's rules, on a `__call__`-only and a `default`-only model.
    for name in ["objgraph_embed", "objgraph_default_sig"] {
        let dir = fixture(name);
        let k = read_json(&dir.join("keras.json"));
        if k["inputs"][0].is_string() {
            let mut args = vec![
                "embed",
                "--model",
                dir.to_str().unwrap(),
                "--json",
                "--verbose",
            ];
            let sentences: Vec<&str> = k["inputs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap())
                .collect();
            // embed reads stdin when no sentence is given; "" must be passed explicitly.
            args.extend(sentences.iter().copied());
            let out = tfhub(&args);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("entry point: object-graph function __call__"),
                "{err}"
            );
            let got: Json = serde_json::from_slice(&out.stdout)?;
            let flat: Vec<Json> = got["values"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|r| r.as_array().unwrap().clone())
                .collect();
            let want = &k["golden"]["output_0"];
            assert_json_close(
                &serde_json::json!({"dtype": "float32", "values": flat}),
                &serde_json::json!({"dtype": "float32", "values": want["values"]}),
                name,
            );
        } else {
            // A numeric model: embed needs strings, so check the choice only.
            let out = tfhub(&["embed", "--model", dir.to_str().unwrap(), "--verbose", "x"]);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("entry point: signature default (fallback"),
                "{err}"
            );
        }
    }
    // inspect lists callable attributes with concrete signatures and runnable entry points.
    let out = tfhub(&[
        "inspect",
        fixture("objgraph_bert_pre").to_str().unwrap(),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: Json = serde_json::from_slice(&out.stdout)?;
    let callables = j["meta_graphs"][0]["callables"].as_array().unwrap();
    let pack = callables
        .iter()
        .find(|c| c["path"] == "bert_pack_inputs")
        .expect("bert_pack_inputs listed");
    assert_eq!(pack["concrete_signatures"].as_array().unwrap().len(), 3);
    assert!(pack["concrete_signatures"][2]
        .as_str()
        .unwrap()
        .contains("RaggedTensorSpec"));
    assert_eq!(j["runnable"]["function bert_pack_inputs"], Json::Bool(true));
    assert_eq!(j["runnable"]["function tokenize"], Json::Bool(true));
    let text = tfhub(&["inspect", fixture("objgraph_bert_pre").to_str().unwrap()]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("Concrete Functions"), "{text}");
    assert!(text.contains("function tokenize: runnable"), "{text}");
    Ok(())
}

#[test]
fn errors_list_callables_concrete_signatures_and_tag_sets() -> common::TestResult {
    let model = tfhub::load(fixture("objgraph_bert_pre"))?;
    let err = model.function("detokenize").unwrap_err();
    let Error::NotFound { available, .. } = &err else {
        panic!("{err}")
    };
    assert!(available.contains(&"bert_pack_inputs".to_string()), "{err}");
    assert!(available.contains(&"tokenize".to_string()), "{err}");

    let calls = read_json(&fixture("objgraph_bert_pre").join("calls.json"));
    let call = &calls[2];
    let mut kw = kwargs(call);
    kw.insert("seq_length".into(), Value::Int(99));
    let err = model
        .function("bert_pack_inputs")?
        .call(Vec::new(), kw)
        .unwrap_err();
    let Error::NoMatchingFunction { options, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(options.len(), 3, "{err}");
    // The error shows the refused Python constant next to the traced ones.
    assert!(err.to_string().contains("expected 16 got 99"), "{err}");
    eprintln!("{err}");

    // int32 row_splits where int64 were traced: refused, as TF does.
    let mut kw = kwargs(call);
    if let Some(Value::List(segs)) = kw.get_mut("segments") {
        for s in segs {
            if let Value::Ragged(r) = s {
                for sp in &mut r.row_splits {
                    let v: Vec<i32> = sp
                        .clone()
                        .into_vec::<i64>()?
                        .into_iter()
                        .map(|x| x as i32)
                        .collect();
                    *sp = tfhub::Tensor::from_vec(&[v.len()], v)?;
                }
            }
        }
    }
    let err = model
        .function("bert_pack_inputs")?
        .call(Vec::new(), kw)
        .unwrap_err();
    assert!(matches!(err, Error::NoMatchingFunction { .. }), "{err}");

    // Explicit tags that match no meta graph list the tag sets present.
    let opts = LoadOptions {
        tags: vec!["train".into()],
        ..LoadOptions::default()
    };
    let err = Model::load_with(&fixture("objgraph_two_entry"), &opts).unwrap_err();
    assert!(err.to_string().contains("[serve]"), "{err}");
    // Binding errors name the argument.
    let err = model
        .function("tokenize")?
        .call(Vec::new(), BTreeMap::new())
        .unwrap_err();
    assert!(
        err.to_string().contains("missing a required argument"),
        "{err}"
    );
    Ok(())
}

/// Renames every op `from` to `to` inside the library functions whose name starts with
/// `prefix` (or everywhere with an empty prefix).
fn rename_op(dir: &Path, prefix: &str, from: &str, to: &str) {
    let pb = dir.join("saved_model.pb");
    let mut sm = tfhub::proto::SavedModel::decode(std::fs::read(&pb).unwrap().as_slice()).unwrap();
    let lib = sm.meta_graphs[0]
        .graph_def
        .as_mut()
        .unwrap()
        .library
        .as_mut()
        .unwrap();
    let mut n = 0;
    for f in &mut lib.function {
        if !f.signature.as_ref().unwrap().name.starts_with(prefix) {
            continue;
        }
        for node in &mut f.node_def {
            if node.op == from {
                node.op = to.to_string();
                n += 1;
            }
        }
    }
    assert!(n > 0, "no {from} under {prefix}");
    std::fs::write(&pb, sm.encode_to_vec()).unwrap();
}

#[test]
fn one_missing_op_sinks_only_its_entry_point() -> common::TestResult {
    // Object-graph functions: bert_pack_inputs loses ConcatV2; tokenize still compiles.
    let tmp = tempfile::tempdir()?;
    copy_dir(&fixture("objgraph_bert_pre"), tmp.path());
    rename_op(
        tmp.path(),
        "__inference_bert_pack_inputs",
        "ConcatV2",
        "FancyConcat",
    );
    let model = tfhub::load(tmp.path())?;
    let calls = read_json(&tmp.path().join("calls.json"));
    let err = model
        .function("bert_pack_inputs")?
        .call(Vec::new(), kwargs(&calls[2]))
        .unwrap_err();
    let Error::UnsupportedOps(ops) = &err else {
        panic!("{err}")
    };
    assert_eq!(ops[0].op, "FancyConcat");
    let i = tfhub::api::inspect(tmp.path())?;
    assert!(i.json["runnable"]["function bert_pack_inputs"]["error"]
        .as_str()
        .unwrap()
        .contains("FancyConcat"));
    assert_eq!(i.json["runnable"]["function tokenize"], Json::Bool(true));

    // Signatures: `tokens` keeps working when only `serving_default` needs a missing op.
    let tmp = tempfile::tempdir()?;
    copy_dir(&fixture("nnlm_en_dim128"), tmp.path());
    rename_op(tmp.path(), "", "SparseSegmentSqrtN", "FancySqrtN");
    let model = tfhub::load(tmp.path())?;
    let err = model.signature("serving_default").unwrap_err();
    assert!(
        matches!(&err, Error::UnsupportedOps(o) if o[0].op == "FancySqrtN"),
        "{err}"
    );
    let s = model.signature("tokens")?;
    let x = tfhub::Tensor::from_strings(&[1], ["the cat"])?;
    assert_eq!(s.call([("sentences", x)])?["ids"].shape(), &[2]);
    Ok(())
}

/// 100,000-deep and cyclic object graphs: listing, resolving and dropping never overflow.
#[test]
fn deep_and_cyclic_object_graphs_are_safe() -> common::TestResult {
    use tfhub::proto::trackable_object_graph::trackable_object::ObjectReference;
    let tmp = tempfile::tempdir()?;
    copy_dir(&fixture("objgraph_two_entry"), tmp.path());
    let pb = tmp.path().join("saved_model.pb");
    let mut sm = tfhub::proto::SavedModel::decode(std::fs::read(&pb)?.as_slice())?;
    let og = sm.meta_graphs[0].object_graph_def.as_mut().unwrap();
    const N: usize = 100_000;
    let base = og.nodes.len() as i32;
    let template = og.nodes[0].clone();
    let call_id = template
        .children
        .iter()
        .find(|c| c.local_name == "__call__")
        .unwrap()
        .node_id;
    // root.deep -> d0 -> d1 -> ... -> d(N-1), each also pointing back at the root (a cycle);
    // the last has a `__call__`.
    og.nodes[0].children.push(ObjectReference {
        node_id: base,
        local_name: "deep".into(),
    });
    for i in 0..N {
        let mut n = template.clone();
        n.children.clear();
        n.children.push(ObjectReference {
            node_id: 0,
            local_name: "root".into(),
        });
        if i + 1 < N {
            n.children.push(ObjectReference {
                node_id: base + i as i32 + 1,
                local_name: "d".into(),
            });
        } else {
            n.children.push(ObjectReference {
                node_id: call_id,
                local_name: "__call__".into(),
            });
        }
        og.nodes.push(n);
    }
    std::fs::write(&pb, sm.encode_to_vec())?;
    let dir = tmp.path().to_path_buf();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let r = (|| -> tfhub::Result<usize> {
            let model = tfhub::load(&dir)?;
            let listed = model.functions().len();
            let path = format!("deep{}", ".d".repeat(N - 1));
            let f = model.function(&path)?;
            assert_eq!(f.path(), format!("{path}.__call__"));
            let i = tfhub::api::inspect(&dir)?;
            assert!(i.json["meta_graphs"][0]["callables"].is_array());
            drop(model);
            Ok(listed)
        })();
        let _ = tx.send(r.map_err(|e| e.to_string()));
    });
    let listed = rx
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("finished in time")?;
    assert!(listed >= 3, "{listed}");
    Ok(())
}

/// An acyclic chain of 100,000 functions (f0 calls f1 ... calls f99999, which returns its
/// input): compiling, calling (stopped by the depth cap) and dropping the model never
/// overflow the stack.
#[test]
fn acyclic_100k_function_chain_drops_without_recursion() -> common::TestResult {
    use tfhub::proto::attr_value;
    let tmp = tempfile::tempdir()?;
    copy_dir(&fixture("hostile").join("recursive_function"), tmp.path());
    let pb = tmp.path().join("saved_model.pb");
    let mut sm = tfhub::proto::SavedModel::decode(std::fs::read(&pb)?.as_slice())?;
    let g = sm.meta_graphs[0].graph_def.as_mut().unwrap();
    let lib = g.library.as_mut().unwrap();
    let template = lib.function[0].clone();
    const N: usize = 100_000;
    lib.function = (0..N)
        .map(|i| {
            let mut f = template.clone();
            f.signature.as_mut().unwrap().name = format!("f{i}");
            let call = &mut f.node_def[0];
            if i + 1 < N {
                if let Some(attr_value::Value::Func(fa)) =
                    call.attr.get_mut("f").and_then(|a| a.value.as_mut())
                {
                    fa.name = format!("f{}", i + 1);
                }
            } else {
                call.op = "Identity".into();
                call.attr.clear();
            }
            f
        })
        .collect();
    for n in &mut g.node {
        if let Some(attr_value::Value::Func(fa)) =
            n.attr.get_mut("f").and_then(|a| a.value.as_mut())
        {
            fa.name = "f0".into();
        }
    }
    std::fs::write(&pb, sm.encode_to_vec())?;
    let dir = tmp.path().to_path_buf();
    let (tx, rx) = std::sync::mpsc::channel();
    // The default 2 MiB test-thread stack: a recursive drop of 100,000 plans would overflow it.
    std::thread::spawn(move || {
        let r = (|| -> tfhub::Result<String> {
            let m = tfhub::load(&dir)?;
            let err = m
                .signature("serving_default")?
                .call([("x", tfhub::Tensor::scalar(1f32))])
                .unwrap_err();
            let msg = err.to_string();
            drop(err);
            drop(m);
            Ok(msg)
        })();
        let _ = tx.send(r.map_err(|e| e.to_string()));
    });
    let msg = rx
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("finished without overflow")?;
    eprintln!("{msg}");
    Ok(())
}

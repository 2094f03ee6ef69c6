//! Hostile models (tests/fixtures/hostile, written by tools/make_hostile_models.py): each rule
//! of SECURITY.md has a test here that fails if the rule breaks. Every model is loaded from a
//! temp copy whose file targets point into a temp dir this test owns; after each test that
//! dir must still be empty and the model copy unchanged.
mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use prost::Message;
use tfhub::api::LoadOptions;
use tfhub::error::RefusedOp;
use tfhub::ops::{Limits, OpError};
use tfhub::proto::{attr_value, AttrValue, FunctionDef, NodeDef, SavedModel as SavedModelProto};
use tfhub::{Error, Model, Tensor};

use common::{copy_dir, fixture};

/// The file-target prefix baked into the fixtures by tools/make_hostile_models.py.
const BAKED_TARGET: &str = "/tmp/tfhub-hostile-target";

/// A hostile model copied into a temp dir, its targets rewritten to `target` (an empty dir).
struct Case {
    _tmp: tempfile::TempDir,
    model: PathBuf,
    target: PathBuf,
    before: BTreeMap<PathBuf, (u64, Vec<u8>)>,
}

impl Case {
    fn new(name: &str) -> Case {
        Case::from_dir(&fixture("hostile").join(name))
    }

    fn from_dir(src: &Path) -> Case {
        let tmp = tempfile::tempdir().unwrap();
        let model = tmp.path().join("model");
        let target = tmp.path().join("target");
        copy_dir(src, &model);
        std::fs::create_dir(&target).unwrap();
        retarget(&model.join("saved_model.pb"), &target);
        let before = snapshot(&model);
        Case {
            _tmp: tmp,
            model,
            target,
            before,
        }
    }

    fn load(&self) -> Result<Model, Error> {
        self.load_with(Limits::default())
    }

    fn load_with(&self, limits: Limits) -> Result<Model, Error> {
        let opts = LoadOptions {
            limits,
            ..LoadOptions::default()
        };
        Model::load_with(&self.model, &opts)
    }

    /// Nothing was written: the target dir is empty, the model dir byte-for-byte unchanged.
    fn assert_untouched(&self) {
        let written: Vec<_> = std::fs::read_dir(&self.target)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(written.is_empty(), "files written: {written:?}");
        assert!(
            snapshot(&self.model) == self.before,
            "the model directory changed"
        );
    }
}

/// (size, content) of every file under `dir` (FIFOs and symlinks by name only).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u64, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            if meta.is_dir() {
                stack.push(p);
            } else if meta.is_file() {
                out.insert(p.clone(), (meta.len(), std::fs::read(&p).unwrap()));
            } else {
                out.insert(p, (0, Vec::new()));
            }
        }
    }
    out
}

/// Rewrites every string attr and string constant starting with [`BAKED_TARGET`] (in the
/// graph and in every function) to start with `target` instead.
fn retarget(pb: &Path, target: &Path) {
    let mut sm = SavedModelProto::decode(std::fs::read(pb).unwrap().as_slice()).unwrap();
    let new = target.to_str().unwrap();
    let fix = |s: &mut Vec<u8>| {
        let text = String::from_utf8_lossy(s).into_owned();
        if text.contains(BAKED_TARGET) {
            *s = text.replace(BAKED_TARGET, new).into_bytes();
        }
    };
    let fix_attr = |a: &mut AttrValue| match &mut a.value {
        Some(attr_value::Value::S(s)) => fix(s),
        Some(attr_value::Value::List(l)) => l.s.iter_mut().for_each(fix),
        Some(attr_value::Value::Tensor(t)) => t.string_val.iter_mut().for_each(fix),
        _ => {}
    };
    let fix_nodes = |nodes: &mut Vec<NodeDef>| {
        for n in nodes {
            n.attr.values_mut().for_each(fix_attr);
        }
    };
    for mg in &mut sm.meta_graphs {
        if let Some(g) = &mut mg.graph_def {
            fix_nodes(&mut g.node);
            if let Some(lib) = &mut g.library {
                for f in &mut lib.function {
                    fix_nodes(&mut f.node_def);
                }
            }
        }
    }
    std::fs::write(pb, sm.encode_to_vec()).unwrap();
}

/// Runs `f` on a fresh thread (default 2 MiB stack) and fails the test if it takes longer
/// than `secs`: a regression that hangs fails instead of hanging CI.
fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(v) => v,
        Err(_) => panic!("did not finish within {secs} s"),
    }
}

fn refused_ops(r: Result<Model, Error>) -> Vec<RefusedOp> {
    match r {
        Err(Error::RefusedOps(v)) => v,
        Err(e) => panic!("expected RefusedOps, got {e}"),
        Ok(_) => panic!("expected RefusedOps, the model loaded"),
    }
}

/// Loads `case`, expects exactly the refused ops `ops` (with reason fragment), and checks that
/// nothing was written.
fn assert_refused(case: &str, ops: &[(&str, &str)]) {
    let c = Case::new(case);
    let t = Instant::now();
    let r = c.load();
    let elapsed = t.elapsed();
    let msg = match &r {
        Err(e) => e.to_string(),
        Ok(_) => String::new(),
    };
    let got = refused_ops(r);
    eprintln!("{case}: refused in {elapsed:?}: {msg}");
    let mut names: Vec<&str> = got.iter().map(|r| r.op.as_str()).collect();
    names.sort_unstable();
    let mut want: Vec<&str> = ops.iter().map(|o| o.0).collect();
    want.sort_unstable();
    assert_eq!(names, want, "{msg}");
    for (op, why) in ops {
        assert!(
            msg.contains(&format!("refused op {op} (node ")),
            "{op} not named in {msg}"
        );
        assert!(msg.contains(why), "{op}: reason {why:?} missing in {msg}");
    }
    assert!(
        msg.ends_with("tfhub never runs ops with ambient authority"),
        "{msg}"
    );
    c.assert_untouched();
}

// ---- no ambient authority ------------------------------------------------------------------

#[test]
fn write_file_is_refused_at_load() {
    assert_refused("write_file", &[("WriteFile", "writes files")]);
}

#[test]
fn read_file_is_refused_at_load() {
    assert_refused(
        "read_file",
        &[("ReadFile", "reads files outside the model")],
    );
}

#[test]
fn matching_files_is_refused_at_load() {
    assert_refused(
        "matching_files",
        &[("MatchingFiles", "reads files outside the model")],
    );
}

#[test]
fn print_to_file_is_refused_at_load() {
    assert_refused("print_to_file", &[("PrintV2", "output_stream is a file")]);
}

#[test]
fn save_v2_at_inference_is_refused_at_load() {
    assert_refused("save_v2", &[("SaveV2", "writes files")]);
}

#[test]
fn immutable_const_is_refused_at_load() {
    assert_refused("immutable_const", &[("ImmutableConst", "memory-maps")]);
}

#[test]
fn py_func_is_refused_at_load() {
    assert_refused(
        "py_func",
        &[
            ("EagerPyFunc", "runs host-language code"),
            ("PyFunc", "runs host-language code"),
        ],
    );
}

#[test]
fn debug_identity_is_refused_at_load() {
    assert_refused("debug_identity", &[("DebugIdentityV2", "debug dumps")]);
}

#[test]
fn every_refused_op_is_listed_at_once() {
    assert_refused(
        "many_refused",
        &[
            ("MatchingFiles", "reads files"),
            ("ReadFile", "reads files"),
            ("SaveV2", "writes files"),
            ("WriteFile", "writes files"),
        ],
    );
}

/// Real models carry TF's saver subgraph (SaveV2, MergeV2Checkpoints) unreachable from any
/// signature: pruned before the refusal check, it does not block a load.
#[test]
fn unreachable_saver_ops_do_not_block_loading() {
    let dir = fixture("mlp");
    let sm = SavedModelProto::decode(
        std::fs::read(dir.join("saved_model.pb"))
            .unwrap()
            .as_slice(),
    )
    .unwrap();
    let g = sm.meta_graphs[0].graph_def.as_ref().unwrap();
    let is_save = |n: &NodeDef| n.op == "SaveV2" || n.op == "MergeV2Checkpoints";
    let has_save = g.node.iter().any(is_save)
        || g.library
            .iter()
            .flat_map(|l| &l.function)
            .any(|f| f.node_def.iter().any(is_save));
    assert!(has_save, "fixture mlp should carry TF's saver subgraph");
    tfhub::load(&dir).unwrap();
}

#[test]
fn restore_v2_outside_the_model_is_refused() {
    let c = Case::new("restore_outside");
    // A real checkpoint at the prefix the model asks for: unconfined, the read would succeed.
    let vars = fixture("mlp").join("variables");
    for (from, to) in [
        ("variables.index", "ckpt.index"),
        ("variables.data-00000-of-00001", "ckpt.data-00000-of-00001"),
    ] {
        std::fs::copy(vars.join(from), c.target.join(to)).unwrap();
    }
    let m = c.load().unwrap();
    let err = m
        .signature("serving_default")
        .unwrap()
        .call(Vec::<(&str, Tensor)>::new())
        .unwrap_err();
    assert!(
        matches!(err.op_error(), Some(OpError::Refused(m)) if m.contains("not the model's own checkpoint")),
        "{err}"
    );
    for f in ["ckpt.index", "ckpt.data-00000-of-00001"] {
        std::fs::remove_file(c.target.join(f)).unwrap();
    }
    c.assert_untouched();
}

/// A vocabulary asset whose filename is absolute (`/etc/passwd`) or climbs out with `..`:
/// the table initializer (run at load) is refused, nothing is read.
#[test]
fn vocab_asset_outside_the_model_is_refused() {
    for case in ["vocab_outside", "vocab_outside_dotdot"] {
        let c = Case::new(case);
        let err = c.load().unwrap_err();
        // `/etc/passwd` resolves outside; `assets/../..` does not even resolve (the model
        // has no assets dir): refused either way, before anything is opened.
        assert!(
            matches!(err.op_error(), Some(OpError::Refused(_))),
            "{case}: {err}: {:?}",
            err.op_error()
        );
        c.assert_untouched();
    }
}

/// Copies `fixture` and replaces `file` (relative) with a FIFO.
#[cfg(unix)]
fn with_fifo(name: &str, file: &str) -> Case {
    let c = Case::from_dir(&fixture(name));
    let p = c.model.join(file);
    std::fs::remove_file(&p).unwrap();
    let st = std::process::Command::new("mkfifo")
        .arg(&p)
        .status()
        .unwrap();
    assert!(st.success(), "mkfifo");
    Case {
        before: snapshot(&c.model),
        ..c
    }
}

#[cfg(unix)]
#[test]
fn fifo_data_shard_is_refused_without_hanging() {
    let c = with_fifo("mlp", "variables/variables.data-00000-of-00001");
    let model = c.model.clone();
    let err = within(5, move || {
        Model::load_with(&model, &LoadOptions::default()).map(|_| ())
    })
    .unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
    c.assert_untouched();
}

#[cfg(unix)]
#[test]
fn fifo_index_is_not_opened() {
    let c = with_fifo("mlp", "variables/variables.index");
    let model = c.model.clone();
    // Without a readable index the model has no checkpoint: loading or calling fails, in time.
    let r = within(5, move || {
        let m = Model::load_with(&model, &LoadOptions::default())?;
        let s = m.signature("serving_default")?;
        let x = Tensor::zeros(s.inputs()[0].dtype, &[1, 4])?;
        s.call([(s.inputs()[0].key.clone(), x)]).map(|_| ())
    });
    assert!(r.is_err());
    c.assert_untouched();
}

#[cfg(unix)]
#[test]
fn fifo_vocab_asset_is_refused_without_hanging() {
    let c = with_fifo("nnlm_norm_dim32", "assets/tokens.txt");
    let model = c.model.clone();
    let err = within(5, move || {
        Model::load_with(&model, &LoadOptions::default()).map(|_| ())
    })
    .unwrap_err();
    assert!(
        matches!(err.op_error(), Some(OpError::Refused(m)) if m.contains("not a regular file")),
        "{err}"
    );
    c.assert_untouched();
}

/// Replaces `file` with a symlink to a copy of it outside the model dir.
#[cfg(unix)]
fn with_escaping_symlink(name: &str, file: &str) -> Case {
    let c = Case::from_dir(&fixture(name));
    let p = c.model.join(file);
    let outside = c.model.parent().unwrap().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let copy = outside.join(p.file_name().unwrap());
    std::fs::rename(&p, &copy).unwrap();
    std::os::unix::fs::symlink(&copy, &p).unwrap();
    Case {
        before: snapshot(&c.model),
        ..c
    }
}

#[cfg(unix)]
#[test]
fn symlinked_data_shard_escaping_the_model_is_refused() {
    let c = with_escaping_symlink("mlp", "variables/variables.data-00000-of-00001");
    let err = c.load().unwrap_err();
    assert!(
        err.to_string()
            .contains("resolves outside the model directory"),
        "{err}"
    );
    c.assert_untouched();
}

#[cfg(unix)]
#[test]
fn symlinked_vocab_asset_escaping_the_model_is_refused() {
    let c = with_escaping_symlink("nnlm_norm_dim32", "assets/tokens.txt");
    let err = c.load().unwrap_err();
    assert!(
        matches!(err.op_error(), Some(OpError::Refused(m)) if m.contains("outside the model directory")),
        "{err}"
    );
    c.assert_untouched();
}

// ---- bounded resources ---------------------------------------------------------------------

fn call_err(m: &Model, sig: &str, inputs: Vec<(&str, Tensor)>) -> Error {
    m.signature(sig)
        .unwrap()
        .call(inputs)
        .expect_err("hostile call must fail")
}

fn is_cap(e: &OpError) -> bool {
    matches!(
        e,
        OpError::Limit(_) | OpError::MemoryCap { .. } | OpError::TimeCap { .. }
    )
}

#[test]
fn hostile_allocation_sizes_are_refused_before_allocating() {
    let c = Case::new("huge_alloc");
    let model = c.model.clone();
    within(30, move || {
        let m = Model::load_with(&model, &LoadOptions::default()).unwrap();
        for sig in m.signature_names() {
            let inputs = if sig == "overflow_shape" {
                vec![("dims", Tensor::vector(vec![1i64 << 62, 1i64 << 62]))]
            } else {
                Vec::new()
            };
            let t = Instant::now();
            let err = call_err(&m, sig, inputs);
            eprintln!("{sig}: {:?}: {err}", t.elapsed());
            let inner = err.op_error().unwrap_or_else(|| panic!("{sig}: {err}"));
            assert!(is_cap(inner), "{sig}: not a cap error: {err}");
            assert!(matches!(err, Error::Node { .. }), "{sig}: names no node");
        }
    });
    c.assert_untouched();
}

#[test]
fn live_bytes_of_a_call_are_capped() {
    let c = Case::new("live_bytes");
    let n = 1i32 << 22; // 16 MiB per f32 tensor, eight of them live at once
    let small = Limits {
        max_live_bytes: 64 << 20,
        ..Limits::default()
    };
    let m = c.load_with(small).unwrap();
    let err = call_err(&m, "serving_default", vec![("n", Tensor::scalar(n))]);
    assert!(
        matches!(err.op_error(), Some(OpError::MemoryCap { cap, .. }) if *cap == 64 << 20),
        "{err}"
    );
    assert!(matches!(err, Error::Node { .. }), "names its node: {err}");
    // The same model under the same cap with a small n, and with the default cap, runs.
    let out = m
        .signature("serving_default")
        .unwrap()
        .call([("n", Tensor::scalar(1000i32))])
        .unwrap();
    // sum_i (1000 * i) for i < 8, plus (0 + 1 + ... + 7).
    assert_eq!(out["y"].scalar_value::<f32>().unwrap(), 28_000.0 + 28.0);
    let m = c.load().unwrap();
    m.signature("serving_default")
        .unwrap()
        .call([("n", Tensor::scalar(n))])
        .unwrap();
    c.assert_untouched();
}

#[test]
fn splatted_const_is_refused_at_load() {
    let c = Case::new("splat_const");
    let t = Instant::now();
    let err = c.load().unwrap_err();
    eprintln!("splat_const: {:?}: {err}", t.elapsed());
    assert!(
        matches!(err.op_error(), Some(OpError::TensorProto(_))),
        "{err}"
    );
    assert!(err.to_string().contains("node \"c\" (Const)"), "{err}");
}

#[test]
fn const_bytes_not_matching_shape_are_refused_at_load() {
    for case in [
        "const_short_content",
        "const_overflow",
        "const_bytes_overflow",
    ] {
        let c = Case::new(case);
        let t = Instant::now();
        let err = c.load().unwrap_err();
        eprintln!("{case}: {:?}: {err}", t.elapsed());
        assert!(
            matches!(err.op_error(), Some(OpError::TensorProto(_))),
            "{case}: {err}"
        );
    }
}

#[test]
fn endless_while_stops_at_the_iteration_cap() {
    let c = Case::new("endless_while");
    let model = c.model.clone();
    within(30, move || {
        let limits = Limits {
            max_loop_iterations: 10_000,
            ..Limits::default()
        };
        let opts = LoadOptions {
            limits,
            ..LoadOptions::default()
        };
        let m = Model::load_with(&model, &opts).unwrap();
        let err = call_err(&m, "serving_default", vec![("x", Tensor::scalar(0i64))]);
        assert!(
            matches!(err.op_error(), Some(OpError::Limit(m)) if m.contains("iteration")),
            "{err}"
        );
    });
}

#[test]
fn endless_while_stops_at_the_wall_time_cap() {
    let c = Case::new("endless_while");
    let model = c.model.clone();
    let t = Instant::now();
    within(30, move || {
        let limits = Limits {
            max_loop_iterations: u64::MAX,
            max_call_time: Some(Duration::from_millis(200)),
            ..Limits::default()
        };
        let opts = LoadOptions {
            limits,
            ..LoadOptions::default()
        };
        let m = Model::load_with(&model, &opts).unwrap();
        let err = call_err(&m, "serving_default", vec![("x", Tensor::scalar(0i64))]);
        assert!(
            matches!(err.op_error(), Some(OpError::TimeCap { .. })),
            "{err}"
        );
    });
    eprintln!(
        "endless_while with a 200 ms cap stopped after {:?}",
        t.elapsed()
    );
}

#[test]
fn self_and_mutual_recursion_hit_the_depth_cap() {
    for case in ["recursive_function", "mutual_recursion"] {
        let c = Case::new(case);
        let model = c.model.clone();
        within(30, move || {
            let m = Model::load_with(&model, &LoadOptions::default()).unwrap();
            let err = call_err(&m, "serving_default", vec![("x", Tensor::scalar(1f32))]);
            assert!(
                matches!(err.op_error(), Some(OpError::Limit(m)) if m.contains("call depth")),
                "{case}: {err}"
            );
        });
    }
}

/// A chain of 100,000 functions (f0 calls f1 ... calls f99999), built here with prost.
#[test]
fn deep_call_chain_neither_overflows_compilation_nor_execution() {
    let c = Case::new("recursive_function");
    let pb = c.model.join("saved_model.pb");
    let mut sm = SavedModelProto::decode(std::fs::read(&pb).unwrap().as_slice()).unwrap();
    let g = sm.meta_graphs[0].graph_def.as_mut().unwrap();
    let lib = g.library.as_mut().unwrap();
    let template: FunctionDef = lib.function[0].clone();
    const N: usize = 100_000;
    lib.function = (0..N)
        .map(|i| {
            let mut f = template.clone();
            f.signature.as_mut().unwrap().name = format!("f{i}");
            let callee = if i + 1 < N {
                format!("f{}", i + 1)
            } else {
                "f0".into()
            };
            if let Some(attr_value::Value::Func(fa)) = f.node_def[0]
                .attr
                .get_mut("f")
                .and_then(|a| a.value.as_mut())
            {
                fa.name = callee;
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
    std::fs::write(&pb, sm.encode_to_vec()).unwrap();
    let model = c.model.clone();
    within(60, move || {
        let t = Instant::now();
        let m = Model::load_with(&model, &LoadOptions::default()).unwrap();
        eprintln!("100k-deep chain compiled in {:?}", t.elapsed());
        let err = call_err(&m, "serving_default", vec![("x", Tensor::scalar(1f32))]);
        assert!(
            matches!(err.op_error(), Some(OpError::Limit(m)) if m.contains("call depth")),
            "{err}"
        );
        // Dropping the nested error must not overflow either.
        drop(err);
        // With a tiny graph-size cap the same model is refused at load.
        let opts = LoadOptions {
            limits: Limits {
                max_graph_nodes: 1000,
                ..Limits::default()
            },
            ..LoadOptions::default()
        };
        let err = Model::load_with(&model, &opts).unwrap_err();
        assert!(err.to_string().contains("max_graph_nodes"), "{err}");
    });
}

// ---- the CLI -------------------------------------------------------------------------------

#[test]
fn cli_run_on_a_hostile_model_exits_cleanly() {
    let c = Case::new("write_file");
    let inputs = c.model.parent().unwrap().join("inputs.json");
    std::fs::write(&inputs, "{}").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tfhub"))
        .args(["run", c.model.to_str().unwrap(), "--inputs"])
        .arg(&inputs)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("refused op WriteFile"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    c.assert_untouched();
}

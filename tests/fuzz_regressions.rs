//! Replays, on stable and without libFuzzer, every input the fuzz targets (`fuzz/`) found
//! crashing, hanging or exhausting memory (`tests/fixtures/fuzz/<target>/`), plus the
//! committed seed corpora (`fuzz/corpus/<target>/seed-*`), through the same entry points
//! (`tfhub::fuzzing`). A crash input must now give a typed error (the one named in
//! `EXPECTED`, where that is meaningful); a seed, which is a real model's file, must parse.

mod common;

use std::path::{Path, PathBuf};

use common::chain;

/// `(target, file name, substring of the error's message chain)` for the regression inputs.
const EXPECTED: &[(&str, &str, &str)] = &[
    // AsString with precision 0x2500_0003: Rust's formatter panicked above u16::MAX.
    (
        "string_ops",
        "as_string_huge_precision",
        "AsString precision",
    ),
    // AsString padding a few floats to a width of ~3e8 each: a timeout, then an OOM.
    ("string_ops", "as_string_huge_width", "per-tensor cap"),
    // A sequential JPEG scan with Se = 0 naming AC table 8: the table was never checked, and
    // the block decoder indexed past the 4 table slots (libFuzzer, session 8).
    ("image_decode", "jpeg_ac_table_index_8", "Invalid JPEG data"),
    // An animation frame (ANMF) whose VP8 frame is larger than the ANMF rectangle, with an
    // ALPH chunk: image-webp 0.2.4 indexed the alpha plane past its 396 entries (panic inside
    // the crate); the patched copy (vendor/image-webp) checks the sizes.
    (
        "image_decode",
        "webp_image_webp_panic",
        "Failed to decode WebP Animation",
    ),
    // A palette PNG whose PLTE is 53 bytes (not whole RGB entries): png 0.18.1 accepts any
    // length and its palette expansion sliced past the end (panic); libpng, so TF, fails
    // the file in png_read_info, and tfhub now checks the PLTE length the same way.
    (
        "image_decode",
        "png_plte_53_bytes",
        "Failed to initialize decoder",
    ),
];

fn files(dir: &Path, seeds_only: bool) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .map(|e| e.expect("readable directory").path())
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            !seeds_only || name.starts_with("seed-")
        })
        .collect();
    v.sort();
    v
}

/// Runs every regression input and seed of `target` through `run`.
fn replay<T: std::fmt::Debug, E: std::error::Error>(target: &str, run: fn(&[u8]) -> Result<T, E>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for file in files(&root.join("tests/fixtures/fuzz").join(target), false) {
        let data = std::fs::read(&file).expect("regression input");
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        let result = run(&data);
        // `cargo test --test fuzz_regressions -- --nocapture` lists what each input gives.
        eprintln!(
            "{target}/{name}: {:?}",
            result.as_ref().map_err(|e| chain(e))
        );
        if let Some(&(_, _, want)) = EXPECTED.iter().find(|(t, n, _)| *t == target && *n == name) {
            match &result {
                Err(e) => assert!(chain(e).contains(want), "{target}/{name}: {}", chain(e)),
                Ok(v) => {
                    panic!("{target}/{name}: expected an error containing {want:?}, got {v:?}")
                }
            }
        }
    }
    let seeds = files(&root.join("fuzz/corpus").join(target), true);
    assert!(!seeds.is_empty(), "no seeds for {target}");
    for file in seeds {
        let data = std::fs::read(&file).expect("seed");
        if let Err(e) = run(&data) {
            panic!("{}: {}", file.display(), chain(&e));
        }
    }
    tfhub::fuzzing::remove_scratch(target);
}

#[test]
fn every_expected_error_has_its_input() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz");
    for (target, name, _) in EXPECTED {
        assert!(
            root.join(target).join(name).is_file(),
            "{target}/{name} missing"
        );
    }
}

#[test]
fn saved_model_plan() {
    replay("saved_model_plan", tfhub::fuzzing::saved_model_plan);
}

#[test]
fn checkpoint() {
    replay("checkpoint", tfhub::fuzzing::checkpoint);
}

#[test]
fn tar_extract() {
    replay("tar_extract", tfhub::fuzzing::tar_extract);
}

#[test]
fn inputs_json() {
    replay("inputs_json", tfhub::fuzzing::inputs_json);
}

#[test]
fn string_ops() {
    replay("string_ops", tfhub::fuzzing::string_ops);
}

#[test]
fn sentencepiece() {
    replay("sentencepiece", tfhub::fuzzing::sentencepiece);
}

#[test]
fn text_models() {
    replay("text_models", tfhub::fuzzing::text_models);
}

#[test]
fn image_decode() {
    replay("image_decode", tfhub::fuzzing::image_decode);
}

#[cfg(feature = "serve")]
#[test]
fn serve_rest_predict() {
    replay("serve_rest_predict", tfhub::fuzzing::serve_rest_predict);
}

#[cfg(feature = "serve")]
#[test]
fn serve_v2_infer() {
    replay("serve_v2_infer", tfhub::fuzzing::serve_v2_infer);
}

#[cfg(feature = "serve")]
#[test]
fn serve_grpc_predict() {
    replay("serve_grpc_predict", tfhub::fuzzing::serve_grpc_predict);
}

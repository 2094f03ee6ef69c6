//! Image fixtures (tests/fixtures/image/, made by tools/make_fixtures_image.py with TF 2.21):
//! resizing, image ops, and decoding images from bytes, each checked against TF's outputs.
//! JPEG pixels are bit-exact too (tfhub's decoder follows libjpeg-turbo's IDCTs, upsampling
//! and colour tables; tools/jpeg_sweep.py measures it on a wider sweep): `JPEG_MAX_DIFF` is
//! 0 and the share of differing samples is printed (`cargo test --test image -- --nocapture`).
mod common;

use std::collections::BTreeMap;

use common::{chain, fixture, inputs, read_json, run_fixture, Tolerance};
use serde_json::Value;
use tfhub::api::json::tensor_to_json;
use tfhub::{DType, Tensor};

/// Resamplers follow TF's float operations in order; a few ulps of slack cover `sinf`/`exp`
/// differences between libms.
const RESIZE: Tolerance = Tolerance::F32 {
    rel: 2e-6,
    abs: 2e-5,
};

/// Largest per-sample difference allowed between tfhub's and TF's JPEG decodes (levels).
const JPEG_MAX_DIFF: f64 = 0.0;

macro_rules! image_golden {
    ($($name:ident: $tol:expr;)*) => {
        $(
            #[test]
            fn $name() -> common::TestResult {
                run_fixture(concat!("image/", stringify!($name)), "serving_default", $tol)
            }
        )*
    };
}

/// Image ops on 0..255 data: TF's per-channel means (AdjustContrastv2) are float sums in
/// Eigen's order, ours are exact; 1e-4 absolute covers that on values up to 255.
const OPS: Tolerance = Tolerance::F32 {
    rel: 1e-5,
    abs: 1e-4,
};

image_golden! {
    image_resize: RESIZE;
    image_ops: OPS;
    // DecodeJpeg / DecodeAndCropJpeg under every pixel-changing attribute (ratio,
    // fancy_upscaling, dct_method, channels, crop windows) on 4:2:0 / 4:2:2 progressive /
    // 4:4:4 restart / 4:1:1 / gray progressive / CMYK / RGB files: bit-exact.
    jpeg_options: Tolerance::Exact;
    // ImageProjectiveTransformV2/V3: every fill mode x interpolation, float32 and uint8;
    // the same f32 values (the goldens' JSON may spell an f32 with a different last digit).
    image_transform: Tolerance::F32 { rel: 1e-7, abs: 0.0 };
    // EncodeJpeg / EncodeJpegVariableQuality: TF's bytes exactly (quality 0..100, 4:2:0,
    // 4:4:4, gray, optimize_size, odd sizes, density + XMP), and TF's decodes of its own
    // encodes (the round trip through tfhub's encoder and decoder).
    jpeg_encode: Tolerance::Exact;
    // ExtractGlimpse / ExtractGlimpseV2: every centered x normalized convention, windows
    // inside, on and over every edge, larger than and outside the image (zero noise), and
    // the default noise where the image covers the window: copies of the input (the
    // goldens' JSON may spell an f32 with a different last digit, as image_transform).
    image_glimpse: Tolerance::F32 { rel: 1e-7, abs: 0.0 };
}

/// Guard: every fixture directory under image/ has a test here.
#[test]
fn every_image_fixture_is_tested() {
    let listed = [
        "image_resize",
        "image_ops",
        "image_decode",
        "image_bytes",
        "jpeg_options",
        "image_transform",
        "jpeg_encode",
        "image_glimpse",
        "webp_decode",
    ];
    for e in std::fs::read_dir(fixture("image")).unwrap() {
        let p = e.unwrap().path();
        if p.join("saved_model.pb").is_file() {
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            assert!(
                listed.contains(&n.as_str()),
                "fixture image/{n} has no test"
            );
        }
    }
}

fn values(t: &Tensor) -> Vec<f64> {
    tensor_to_json(t)["values"]
        .as_array()
        .expect("values")
        .iter()
        .map(|v| v.as_f64().expect("number"))
        .collect()
}

/// Compares one output: exact (or within `tol`) unless `lossy`, where samples may differ by
/// up to `max_diff`; returns (differing samples, total samples, largest difference).
fn compare(
    name: &str,
    got: &[f64],
    want: &Value,
    lossy: bool,
    max_diff: f64,
) -> (usize, usize, f64) {
    let want: Vec<f64> = want["values"]
        .as_array()
        .expect("values")
        .iter()
        .map(|v| v.as_f64().expect("number"))
        .collect();
    assert_eq!(got.len(), want.len(), "{name}: element count");
    let mut diff = 0;
    let mut worst = 0f64;
    for (i, (a, b)) in got.iter().zip(&want).enumerate() {
        let d = (a - b).abs();
        if d > 0.0 {
            diff += 1;
            worst = worst.max(d);
        }
        if lossy {
            let _ = max_diff;
        } else {
            assert!(d <= 1e-6 * b.abs().max(1.0), "{name}[{i}]: got {a}, TF {b}");
        }
    }
    (diff, want.len(), worst)
}

/// Every decode op on every file kind: PNG / GIF / BMP (and shapes, crops, PNG round trips)
/// exactly; JPEG pixels within `JPEG_MAX_DIFF`, with the agreement printed.
#[test]
fn image_decode() -> common::TestResult {
    let dir = fixture("image/image_decode");
    let model = tfhub::load(&dir)?;
    let outs = model
        .signature("serving_default")?
        .call(inputs(&model, &dir, "serving_default"))?;
    let golden = read_json(&dir.join("golden.json"));
    let golden = golden.as_object().expect("golden");
    assert_eq!(
        outs.keys().collect::<Vec<_>>(),
        golden.keys().collect::<Vec<_>>()
    );
    let (mut jd, mut jn) = (0, 0);
    for (k, want) in golden {
        let got = &outs[k];
        let dtype = common::check_dtype_shape(k, got, want);
        let lossy = k.starts_with("jpeg_")
            && !k.starts_with("jpeg_shape")
            && k.as_str() != "jpeg_png_via_decode_gif";
        let max = if dtype == DType::F32 {
            JPEG_MAX_DIFF / 255.0 + 1e-6
        } else {
            JPEG_MAX_DIFF
        };
        let (d, n, worst) = compare(k, &values(got), want, lossy, max);
        if lossy {
            assert!(worst <= max, "{k}: a sample differs from TF by {worst}");
            eprintln!(
                "{k}: {d} of {n} samples differ from TF ({:.2}%), max {worst}",
                100.0 * d as f64 / n as f64
            );
            if dtype != DType::F32 {
                jd += d;
                jn += n;
            }
        }
    }
    eprintln!(
        "JPEG overall: {jd} of {jn} uint8 samples differ ({:.2}%)",
        100.0 * jd as f64 / jn as f64
    );
    Ok(())
}

/// Largest per-sample difference allowed between tfhub's and TF's lossy WebP decodes
/// (image-webp follows libwebp's VP8 reconstruction, YUV constants and fancy upsampling).
const WEBP_LOSSY_MAX_DIFF: f64 = 0.0;

/// DecodeWebP and the other decode ops on WebP bytes: lossless and animated-lossless
/// outputs exactly, lossy ones within `WEBP_LOSSY_MAX_DIFF` with the agreement printed;
/// shapes (4-D for every op but `DecodeImage(expand_animations=False)`) exactly.
#[test]
fn webp_decode() -> common::TestResult {
    let dir = fixture("image/webp_decode");
    let model = tfhub::load(&dir)?;
    let outs = model
        .signature("serving_default")?
        .call(inputs(&model, &dir, "serving_default"))?;
    let golden = read_json(&dir.join("golden.json"));
    let golden = golden.as_object().expect("golden");
    assert_eq!(
        outs.keys().collect::<Vec<_>>(),
        golden.keys().collect::<Vec<_>>()
    );
    let (mut ld, mut ln) = (0, 0);
    for (k, want) in golden {
        let got = &outs[k];
        assert_eq!(
            common::check_dtype_shape(k, got, want),
            DType::U8,
            "{k}: dtype"
        );
        let lossy = k.contains("lossy");
        let (d, n, worst) = compare(k, &values(got), want, lossy, WEBP_LOSSY_MAX_DIFF);
        if lossy {
            eprintln!(
                "{k}: {d} of {n} samples differ from TF ({:.2}%), max {worst}",
                100.0 * d as f64 / n as f64
            );
            assert!(
                worst <= WEBP_LOSSY_MAX_DIFF,
                "{k}: a sample differs by {worst}"
            );
            ld += d;
            ln += n;
        }
    }
    eprintln!(
        "WebP lossy overall: {ld} of {ln} samples differ ({:.3}%)",
        100.0 * ld as f64 / ln as f64
    );
    Ok(())
}

/// The image-bytes classifier: PNG and JPEG rows must match TF like any dense model (JPEG
/// pixels are held to the decode tolerance).
#[test]
fn image_bytes() -> common::TestResult {
    let dir = fixture("image/image_bytes");
    let model = tfhub::load(&dir)?;
    let outs = model
        .signature("serving_default")?
        .call(inputs(&model, &dir, "serving_default"))?;
    let rows: Vec<String> = serde_json::from_value(read_json(&dir.join("rows.json")))?;
    let golden = read_json(&dir.join("golden.json"));
    for (k, want) in golden.as_object().expect("golden") {
        let got = values(&outs[k]);
        let want_v: Vec<f64> = want["values"]
            .as_array()
            .expect("values")
            .iter()
            .map(|v| v.as_f64().expect("number"))
            .collect();
        let per = want_v.len() / rows.len();
        for (r, name) in rows.iter().enumerate() {
            let (a, b) = (&got[r * per..][..per], &want_v[r * per..][..per]);
            let worst = a
                .iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f64::max);
            let bound = match (name.starts_with("jpeg"), k.as_str()) {
                (false, _) => 1e-4,
                (true, "pixels") => JPEG_MAX_DIFF,
                (true, _) => 1e-4,
            };
            eprintln!("{k} row {r} ({name}): worst abs diff {worst:e}");
            assert!(
                worst <= bound,
                "{k} row {r} ({name}): worst abs diff {worst} > {bound}"
            );
        }
    }
    Ok(())
}

fn bytes_model() -> tfhub::Model {
    tfhub::load(fixture("image/image_bytes")).expect("loads")
}

fn call_bytes(
    model: &tfhub::Model,
    items: Vec<Vec<u8>>,
) -> Result<BTreeMap<String, Tensor>, tfhub::Error> {
    let n = items.len();
    let t = Tensor::from_strings(&[n], items).expect("tensor");
    model
        .signature("serving_default")?
        .call(vec![("image_bytes".to_string(), t)])
}

fn fixture_image(name: &str) -> Vec<u8> {
    let v = read_json(&fixture("image/image_decode/inputs.json"));
    let b64 = v[name]["b64"].as_str().expect("b64 input");
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("base64")
}

/// Truncated and corrupt files of every kind fail with a typed error naming the decode op.
#[test]
fn truncated_and_corrupt_images_are_typed_errors() {
    let model = bytes_model();
    for name in ["jpeg_420", "png_rgb", "png_interlaced", "jpeg_progressive"] {
        let full = fixture_image(name);
        for cut in [9, full.len() / 3, full.len() - 20] {
            let err = call_bytes(&model, vec![full[..cut].to_vec()]).expect_err(name);
            let msg = chain(&err);
            assert!(msg.contains("Decode"), "{name} cut at {cut}: {msg}");
        }
    }
    let err = call_bytes(&model, vec![b"not an image at all".to_vec()]).unwrap_err();
    assert!(
        chain(&err).contains("Unknown image file format"),
        "{}",
        chain(&err)
    );
    let err = call_bytes(&model, vec![Vec::new()]).unwrap_err();
    assert!(chain(&err).contains("Input is empty"), "{}", chain(&err));
}

/// A JPEG whose frame header claims 65535×65535 is refused from the header, before any
/// pixel buffer is allocated (it would be 12 GiB).
#[test]
fn huge_jpeg_header_is_refused_before_allocating() {
    let mut jpeg = fixture_image("jpeg_420");
    let sof = jpeg
        .windows(2)
        .position(|w| w == [0xff, 0xc0])
        .expect("baseline SOF0");
    jpeg[sof + 5..sof + 9].copy_from_slice(&[0xff, 0xff, 0xff, 0xff]);
    let err = call_bytes(&bytes_model(), vec![jpeg]).unwrap_err();
    let msg = chain(&err);
    assert!(
        msg.contains("max_image_pixels") || msg.contains("cap"),
        "{msg}"
    );
}

/// `Limits::max_image_pixels` applies to every format.
#[test]
fn pixel_cap_applies_to_png_and_gif() {
    let opts = tfhub::api::LoadOptions {
        limits: tfhub::ops::Limits {
            max_image_pixels: 100,
            ..Default::default()
        },
        ..Default::default()
    };
    let model = tfhub::Model::load_with(&fixture("image/image_bytes"), &opts).expect("loads");
    for name in ["png_rgb", "gif_anim", "jpeg_gray"] {
        let err = call_bytes(&model, vec![fixture_image(name)]).unwrap_err();
        assert!(
            chain(&err).contains("max_image_pixels"),
            "{name}: {}",
            chain(&err)
        );
    }
}

/// Deterministic mutation fuzzing of every decoder through `tfhub::fuzzing::image_decode`
/// (the `image_decode` cargo-fuzz target's entry point), seeded from
/// `fuzz/corpus/image_decode/seed-*`: bit flips, byte sets, truncations, chunk duplication and
/// header-field overwrites. Any panic fails the test; errors are expected.
/// `TFHUB_IMAGE_MUTATIONS=N` runs N mutations (default 3000) and prints the count.
#[test]
fn decoders_survive_mutated_inputs() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/image_decode");
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&root)
        .expect("seed dir")
        .map(|e| std::fs::read(e.expect("entry").path()).expect("seed"))
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty());
    for s in &seeds {
        tfhub::fuzzing::image_decode(s).expect("every seed decodes");
    }
    let n: usize = std::env::var("TFHUB_IMAGE_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut rand = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut ok, mut err) = (0usize, 0usize);
    for i in 0..n {
        let mut d = seeds[i % seeds.len()].clone();
        for _ in 0..1 + rand() % 4 {
            let len = d.len().max(1);
            match rand() % 6 {
                0 => {
                    let p = rand() as usize % len;
                    if p < d.len() {
                        d[p] ^= 1 << (rand() % 8);
                    }
                }
                1 => {
                    let p = rand() as usize % len;
                    if p < d.len() {
                        d[p] = [0, 0xff, 0x7f, 0x80][rand() as usize % 4];
                    }
                }
                2 => d.truncate(rand() as usize % len),
                3 => {
                    let a = rand() as usize % len;
                    let b = (a + rand() as usize % 64).min(d.len());
                    if a < b {
                        let chunk = d[a..b].to_vec();
                        d.splice(a..a, chunk);
                    }
                }
                4 => {
                    // Overwrite a likely header field (dimensions live in the first ~40
                    // bytes of PNG, GIF and BMP) with an extreme value.
                    let p = 2 + rand() as usize % 40;
                    for k in 0..4 {
                        if let Some(b) = d.get_mut(p + k) {
                            *b = 0xff;
                        }
                    }
                }
                _ => {
                    if let Some(b) = d.get_mut(0) {
                        *b = (rand() % 7) as u8;
                    }
                    if let Some(b) = d.get_mut(1) {
                        *b = rand() as u8;
                    }
                }
            }
        }
        match tfhub::fuzzing::image_decode(&d) {
            Ok(_) => ok += 1,
            Err(_) => err += 1,
        }
    }
    eprintln!("{n} mutated inputs: {ok} decoded, {err} typed errors, no panic");
}

/// `tfhub run` on the image-bytes classifier: `inputs.json` carries the JPEG and PNG files
/// as `{"b64": ...}` strings (the README's "classify a JPEG" example); the logits written by
/// the CLI match TF's within the dense tolerance, row by row.
#[test]
fn cli_run_takes_b64_image_bytes() {
    let dir = fixture("image/image_bytes");
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("out.json");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_tfhub"))
        .args(["run", dir.to_str().expect("utf-8 path"), "--inputs"])
        .arg(dir.join("inputs.json"))
        .arg("--output")
        .arg(&out)
        .output()
        .expect("tfhub runs");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let got = read_json(&out);
    let want = read_json(&dir.join("golden.json"));
    assert_eq!(got["logits"]["shape"], want["logits"]["shape"]);
    let flat = |v: &Value| -> Vec<f64> {
        fn walk(v: &Value, o: &mut Vec<f64>) {
            match v {
                Value::Array(a) => a.iter().for_each(|x| walk(x, o)),
                x => o.push(x.as_f64().expect("number")),
            }
        }
        let mut o = Vec::new();
        walk(&v["values"], &mut o);
        o
    };
    let (g, w) = (flat(&got["logits"]), flat(&want["logits"]));
    assert_eq!(g.len(), w.len());
    assert!(!g.is_empty());
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        assert!((a - b).abs() <= 1e-4, "logit {i}: {a} vs TF {b}");
    }
}

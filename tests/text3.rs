//! tensorflow_text 2.21.1's FastSentencepieceTokenizer against TensorFlow: the fixtures of
//! `tools/make_fixtures_text3.py`. `TFText>FastSentencepieceTokenize` and
//! `TFText>FastSentencepieceDetokenize` on the flatbuffers tensorflow_text converts a
//! SentencePiece model into (a SavedModel, and raw converted buffers of two more models run
//! op by op). Ids, splits and strings must be exactly TF's.
mod common;

use common::{fixture, json_bytes, json_ints, run_fixture, TestResult, Tolerance};
use tfhub::fuzzing::eval_op;
use tfhub::proto::attr_value;
use tfhub::{Bytes, Tensor};

/// `FastSentencepieceTokenizer.tokenize` on adversarial text (custom charsmap with
/// multi-code-point keys and deletions, invalid UTF-8, whitespace runs, a 10k-character row).
#[test]
fn fast_sentencepiece_tokenize() -> TestResult {
    run_fixture("text3_fast_spm", "serving_default", Tolerance::Exact)
}

/// A dense 2-D input: RaggedTensor.from_tensor (int32 splits) around the op.
#[test]
fn fast_sentencepiece_tokenize_2d() -> TestResult {
    run_fixture("text3_fast_spm", "tokenize_2d", Tolerance::Exact)
}

/// add_bos, add_eos and reverse together: eos first, bos last.
#[test]
fn fast_sentencepiece_bos_eos_reverse() -> TestResult {
    run_fixture(
        "text3_fast_spm",
        "tokenize_bos_eos_reverse",
        Tolerance::Exact,
    )
}

/// Detokenize of TF's own ids, every id in order and reversed, control and unknown ids
/// first in a row (dummy-prefix removal), an empty row.
#[test]
fn fast_sentencepiece_detokenize() -> TestResult {
    run_fixture("text3_fast_spm", "detokenize", Tolerance::Exact)
}

/// Detokenize of a dense int32 matrix (int32 splits).
#[test]
fn fast_sentencepiece_detokenize_2d() -> TestResult {
    run_fixture("text3_fast_spm", "detokenize_2d", Tolerance::Exact)
}

fn ints<T: Copy + Into<i64> + tfhub::tensor::Element>(t: &Tensor) -> Vec<i64> {
    t.as_slice::<T>()
        .expect("dtype")
        .iter()
        .map(|&v| v.into())
        .collect()
}

fn tokenize(
    model: &[u8],
    texts: &[Vec<u8>],
    flags: [bool; 3],
) -> Result<Vec<Tensor>, tfhub::ops::OpError> {
    eval_op(
        "TFText>FastSentencepieceTokenize",
        vec![],
        vec![
            Tensor::vector(model.to_vec()),
            Tensor::vector(
                texts
                    .iter()
                    .map(|t| Bytes::from(t.clone()))
                    .collect::<Vec<_>>(),
            ),
            Tensor::scalar(0i32),
            Tensor::scalar(0f32),
            Tensor::scalar(flags[0]),
            Tensor::scalar(flags[1]),
            Tensor::scalar(flags[2]),
        ],
    )
}

fn detokenize(
    model: &[u8],
    ids: Vec<i32>,
    splits: Vec<i64>,
) -> Result<Vec<Tensor>, tfhub::ops::OpError> {
    eval_op(
        "TFText>FastSentencepieceDetokenize",
        vec![],
        vec![
            Tensor::vector(model.to_vec()),
            Tensor::vector(ids),
            Tensor::vector(splits),
        ],
    )
}

/// The converted buffers of an identity-normalizer model (no dummy prefix, no whitespace
/// collapsing, bos disabled so add_bos emits -1) and of an nmt_nfkc model (the ~240 KB
/// charsmap real exports carry), every bos/eos/reverse flag, and detokenize.
#[test]
fn converted_models_match_tf() -> TestResult {
    let dir = fixture("text3_fast_spm_vectors");
    let v = common::read_json(&dir.join("vectors.json"));
    let texts: Vec<Vec<u8>> = v["texts"]
        .as_array()
        .ok_or("texts")?
        .iter()
        .map(json_bytes)
        .collect();
    let models = v["models"].as_object().ok_or("models")?;
    assert_eq!(models.len(), 2);
    for (name, g) in models {
        let enc = std::fs::read(dir.join(format!("{name}.enc.fb")))?;
        let dec = std::fs::read(dir.join(format!("{name}.dec.fb")))?;
        let combos = g["tokenize"].as_object().ok_or("tokenize")?;
        assert_eq!(combos.len(), 5);
        for (flags, want) in combos {
            let f: Vec<bool> = flags.bytes().map(|b| b == b'1').collect();
            let out = tokenize(&enc, &texts, [f[0], f[1], f[2]])?;
            let (ids, splits) = (ints::<i32>(&out[0]), ints::<i32>(&out[1]));
            let (wids, wsplits) = (json_ints(&want["ids"]), json_ints(&want["row_splits"]));
            assert_eq!(splits.len(), wsplits.len(), "{name} {flags}: rows");
            for r in 0..texts.len() {
                let (a, b) = (wsplits[r] as usize, wsplits[r + 1] as usize);
                assert_eq!(
                    &ids[splits[r] as usize..splits[r + 1] as usize],
                    &wids[a..b],
                    "{name} {flags}: row {r} {:?}",
                    String::from_utf8_lossy(&texts[r])
                );
            }
            assert_eq!(splits, wsplits);
            eprintln!(
                "{name} {flags}: {} ids over {} rows equal",
                ids.len(),
                texts.len()
            );
        }
        let d = &g["detokenize"];
        let ids: Vec<i32> = json_ints(&d["ids"]).into_iter().map(|x| x as i32).collect();
        let out = detokenize(&dec, ids, json_ints(&d["row_splits"]))?;
        let got = out[0].as_slice::<Bytes>()?;
        let want: Vec<Vec<u8>> = d["text"]
            .as_array()
            .ok_or("text")?
            .iter()
            .map(json_bytes)
            .collect();
        assert_eq!(got.len(), want.len());
        for (r, (a, b)) in got.iter().zip(&want).enumerate() {
            assert_eq!(&a[..], &b[..], "{name}: detokenized row {r}");
        }
    }
    Ok(())
}

/// Errors name the op; what TF's kernel cannot do is refused by name.
#[test]
fn bad_inputs_are_typed_errors() -> TestResult {
    let dir = fixture("text3_fast_spm_vectors");
    let enc = std::fs::read(dir.join("ident.enc.fb"))?;
    let dec = std::fs::read(dir.join("ident.dec.fb"))?;
    // Ids outside the vocabulary (TF: "Sentencepiece conversion failed").
    for bad in [-1, 200, i32::MAX, i32::MIN] {
        let e = detokenize(&dec, vec![5, bad], vec![0, 2])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("FastSentencepieceDetokenize") && e.contains("conversion failed"),
            "{e}"
        );
    }
    let e = detokenize(&dec, vec![5], vec![]).unwrap_err().to_string();
    assert!(e.contains("at least 1 element"), "{e}");
    let e = detokenize(&dec, vec![5], vec![0, 2])
        .unwrap_err()
        .to_string();
    assert!(e.contains("within bounds"), "{e}");
    let e = detokenize(&dec, vec![5], vec![1, 0])
        .unwrap_err()
        .to_string();
    assert!(e.contains("non-decreasing"), "{e}");
    // The encoder buffer is not a decoder buffer (and vice versa): errors or output, no panic.
    let _ = detokenize(&enc, vec![5], vec![0, 1]);
    let _ = tokenize(&dec, &[b"abc".to_vec()], [false; 3]);
    // Non-scalar flags.
    let e = eval_op(
        "TFText>FastSentencepieceTokenize",
        vec![],
        vec![
            Tensor::vector(enc.clone()),
            Tensor::vector(vec![Bytes::from_static(b"x")]),
            Tensor::scalar(0i32),
            Tensor::scalar(0f32),
            Tensor::vector(vec![true, false]),
            Tensor::scalar(false),
            Tensor::scalar(false),
        ],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("add_bos"), "{e}");
    // out_type=string: TF's kernel aborts; refused by name.
    let e = eval_op(
        "TFText>FastSentencepieceTokenize",
        vec![("out_type", attr_value::Value::Type(7))],
        vec![
            Tensor::vector(enc),
            Tensor::vector(vec![Bytes::from_static(b"x")]),
            Tensor::scalar(0i32),
            Tensor::scalar(0f32),
            Tensor::scalar(false),
            Tensor::scalar(false),
            Tensor::scalar(false),
        ],
    )
    .unwrap_err();
    assert!(matches!(e, tfhub::ops::OpError::Unimplemented(_)), "{e}");
    Ok(())
}

/// The model buffers are untrusted: every truncation and many byte flips of the converted
/// models give a result or a typed error through the `text_models` fuzz entry, never a panic.
#[test]
fn corrupt_fast_sentencepiece_models_fail_cleanly() -> TestResult {
    let dir = fixture("text3_fast_spm_vectors");
    for file in ["ident.enc.fb", "ident.dec.fb", "nfkc.dec.fb"] {
        let model = std::fs::read(dir.join(file))?;
        assert!(
            tfhub::fuzzing::text_models(&model)? > 0,
            "{file}: the intact model runs"
        );
        let errors = common::truncations_and_flips(&model, 37, 600, 0x9e37_79b9_7f4a_7c15, |m| {
            tfhub::fuzzing::text_models(m)
        });
        assert!(errors > 0, "{file}: truncated models are refused");
    }
    Ok(())
}

//! tensorflow_text 2.21.1 ops beyond the classic BERT set, against TensorFlow: the fixtures of
//! `tools/make_fixtures_text2.py`. `tf.map_fn` over RaggedTensors (RaggedTensorToVariant /
//! RaggedTensorFromVariant through TensorLists), the whitespace tokenizers (V2 with its config
//! bitset, and the codepoint V1), UnicodeScriptTokenizer (adversarial text and a sweep of every
//! scalar value). Ids, strings and offsets must be exactly TF's.
mod common;

use common::{run_fixture, TestResult, Tolerance};

/// `tf.map_fn(lambda r: r[:limit], rt)`: the 2020-21 BERT preprocessors' truncation
/// (batched RaggedTensorToVariant, TensorListFromTensor, a While with RaggedTensorFromVariant /
/// RaggedTensorToVariant(batched_input=false) per row, TensorListStack, RaggedTensorFromVariant).
#[test]
fn map_fn_truncate() -> TestResult {
    run_fixture("text2_ragged_map", "map_truncate", Tolerance::Exact)
}

/// The same on an empty batch (0 rows: an empty variant vector and list, values of shape [0]).
#[test]
fn map_fn_empty_batch() -> TestResult {
    run_fixture("text2_ragged_map", "map_truncate_empty", Tolerance::Exact)
}

/// Ragged rank 2 with int32 splits and string values (components keep one split level).
#[test]
fn map_fn_ragged_rank2_int32_splits() -> TestResult {
    run_fixture("text2_ragged_map", "map_rank2", Tolerance::Exact)
}

/// Values of rank 2 ([n, 2] floats): rows carry their inner dimension.
#[test]
fn map_fn_dense_inner_values() -> TestResult {
    run_fixture("text2_ragged_map", "map_dense_values", Tolerance::Exact)
}

/// `_to_variant` / `_from_variant` directly: batched (input_ragged_rank 1 -> output 2) and the
/// whole tensor as one scalar variant.
#[test]
fn ragged_variant_round_trip() -> TestResult {
    run_fixture("text2_ragged_map", "round_trip", Tolerance::Exact)
}

/// `text.WhitespaceTokenizer` (TFText>WhitespaceTokenizeWithOffsetsV2): TF's quirk of ending a
/// token one byte before the end of a multi-byte space is copied.
#[test]
fn whitespace_tokenizer_v2() -> TestResult {
    run_fixture("text2_tokenizers", "whitespace", Tolerance::Exact)
}

/// The codepoint WhitespaceTokenizeWithOffsets over UnicodeDecode output.
#[test]
fn whitespace_tokenizer_v1_codepoints() -> TestResult {
    run_fixture("text2_tokenizers", "whitespace_v1", Tolerance::Exact)
}

/// `text.UnicodeScriptTokenizer()`: UnicodeDecodeWithOffsets, UnicodeScriptTokenizeWithOffsets,
/// UnicodeEncode and batch gathers of the byte offsets.
#[test]
fn unicode_script_tokenizer() -> TestResult {
    run_fixture("text2_tokenizers", "script", Tolerance::Exact)
}

/// The same with keep_whitespace=True.
#[test]
fn unicode_script_tokenizer_keep_whitespace() -> TestResult {
    run_fixture("text2_tokenizers", "script_keep", Tolerance::Exact)
}

/// Every Unicode scalar value through UnicodeScriptTokenizer(keep_whitespace=True), in runs of
/// consecutive code points, compared per block of 4096 with digests of TF's outputs
/// (`script_sweep.json`): token boundaries are where ICU 77's script changes.
#[test]
fn unicode_script_sweep_matches_tf() -> TestResult {
    use tfhub::Tensor;
    let dir = common::fixture("text2_tokenizers");
    let sweep = common::read_json(&dir.join("script_sweep.json"));
    let block = sweep["block"].as_u64().ok_or("block")? as u32;
    let chunk = sweep["chunk"].as_u64().ok_or("chunk")? as usize;
    let model = tfhub::load(&dir)?;
    let sig = model.signature("script_keep")?;
    let mut bad = Vec::new();
    for (b, w) in sweep["digests"]
        .as_array()
        .ok_or("digests")?
        .iter()
        .enumerate()
    {
        let w: u64 = w.as_str().ok_or("digest")?.parse()?;
        let cps: Vec<char> = (b as u32 * block..(b as u32 + 1) * block)
            .filter_map(char::from_u32)
            .collect();
        let ins: Vec<String> = cps.chunks(chunk).map(|c| c.iter().collect()).collect();
        let t = Tensor::from_strings(&[ins.len()], &ins)?;
        let o = sig.call(vec![("text".to_string(), t)])?;
        let mut parts: Vec<Vec<u8>> = o["tokens"]
            .as_slice::<tfhub::Bytes>()?
            .iter()
            .map(|b| b.to_vec())
            .collect();
        for name in ["starts", "ends", "row_splits"] {
            let v = o[name].to_i64_vec()?;
            parts.push(v.iter().flat_map(|x| x.to_le_bytes()).collect());
        }
        if common::sweep_digest(&parts) != w {
            bad.push(format!(
                "block {b} (U+{:04X}..U+{:04X})",
                b as u32 * block,
                (b as u32 + 1) * block - 1
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "{} blocks differ:\n{}",
        bad.len(),
        bad.join("\n")
    );
    Ok(())
}

/// `text.FastWordpieceTokenizer` end to end (FastWordpieceTokenizeWithOffsets on its
/// flatbuffer model): whitespace / punctuation splitting with ICU 77 rules, max_bytes_per_word
/// 20, unknown words, CJK, combining marks, ill-formed UTF-8.
#[test]
fn fast_wordpiece_end_to_end() -> TestResult {
    run_fixture("text2_fast_wordpiece", "tokenize", Tolerance::Exact)
}

/// The same op with no_pretokenization (single words) and string output.
#[test]
fn fast_wordpiece_single_words() -> TestResult {
    run_fixture("text2_fast_wordpiece", "tokenize_words", Tolerance::Exact)
}

/// `TFText>FastWordpieceDetokenize`: suffix tokens join their word, a leading suffix token
/// keeps "##".
#[test]
fn fast_wordpiece_detokenize() -> TestResult {
    run_fixture("text2_fast_wordpiece", "detokenize", Tolerance::Exact)
}

/// `text.FastBertTokenizer(lower_case_nfd_strip_accents=True)`: FastBertNormalize with offsets,
/// FastWordpiece, and the offsets mapped back to the input.
#[test]
fn fast_bert_tokenizer() -> TestResult {
    run_fixture("text2_fast_wordpiece", "fast_bert", Tolerance::Exact)
}

/// The FastWordpiece model buffer is untrusted: every truncation and many byte flips of the
/// fixture's model give a result or a typed error, never a panic.
#[test]
fn corrupt_fast_wordpiece_models_fail_cleanly() -> TestResult {
    let model = std::fs::read(common::fixture("text2_fast_wordpiece").join("wp_model.bin"))?;
    assert!(
        tfhub::fuzzing::text_models(&model)? > 0,
        "the intact model runs"
    );
    let errors = common::truncations_and_flips(&model, 97, 400, 0x2545_f491_4f6c_dd1d, |m| {
        tfhub::fuzzing::text_models(m)
    });
    assert!(errors > 0, "truncated models are refused");
    Ok(())
}

/// TF Hub's BERT tutorial, end to end: `KerasLayer::new(preprocessor)` (a Model Garden-style
/// export with `tokenize` / `bert_pack_inputs` / `__call__`, tensorflow_text's BertTokenizer
/// inside) feeding `KerasLayer::new(encoder)` (`__call__` on the dict of encoder inputs, a tiny
/// 2-layer, 16-wide BERT). The encoder inputs must equal TF's exactly, the outputs within f32
/// tolerance.
#[test]
fn bert_preprocessor_to_encoder_keras_layers() -> TestResult {
    use tfhub::api::json::tensor_to_json;
    use tfhub::api::{KerasLayer, Value};
    let enc_dir = common::fixture("text2_bert_encoder");
    let want = common::read_json(&enc_dir.join("e2e.json"));
    let pre = KerasLayer::new(common::fixture(
        want["preprocessor"].as_str().ok_or("preprocessor")?,
    ))?;
    let encoder = KerasLayer::new(&enc_dir)?;
    let sentences: Vec<String> = want["sentences"]
        .as_array()
        .ok_or("sentences")?
        .iter()
        .map(|s| s.as_str().map(str::to_string).ok_or("sentence"))
        .collect::<Result<_, _>>()?;
    let inputs = pre.call_value(Value::Tensor(tfhub::Tensor::from_strings(
        &[sentences.len()],
        &sentences,
    )?))?;
    let Value::Dict(ref dict) = inputs else {
        return Err(format!("preprocessor returned {inputs:?}").into());
    };
    for (k, w) in want["encoder_inputs"].as_object().ok_or("encoder_inputs")? {
        let Some(Value::Tensor(t)) = dict.get(k) else {
            return Err(format!("no tensor {k}").into());
        };
        assert_eq!(&tensor_to_json(t), w, "{k}");
    }
    let Value::Dict(out) = encoder.call_value(inputs.clone())? else {
        return Err("encoder output is not a dict".into());
    };
    for (k, w) in want["outputs"].as_object().ok_or("outputs")? {
        let Some(Value::Tensor(t)) = out.get(k) else {
            return Err(format!("no output {k}").into());
        };
        let got = tensor_to_json(t);
        assert_eq!(got["shape"], w["shape"], "{k}: shape");
        let (g, w) = (
            got["values"].as_array().ok_or("values")?,
            w["values"].as_array().ok_or("values")?,
        );
        let mut worst = 0f64;
        for (a, b) in g.iter().zip(w) {
            let (a, b) = (a.as_f64().ok_or("f")?, b.as_f64().ok_or("f")?);
            worst = worst.max((a - b).abs());
            assert!((a - b).abs() <= 1e-5 + 1e-5 * b.abs(), "{k}: {a} vs TF {b}");
        }
        eprintln!("{k}: {} values, worst abs err {worst:e}", w.len());
    }
    // KerasLayer(encoder, output_key="pooled_output"), as the tutorial builds a classifier.
    let pooled = KerasLayer::with(
        &enc_dir,
        tfhub::api::KerasOptions {
            output_key: Some("pooled_output".into()),
            ..Default::default()
        },
    )?
    .call_value(inputs)?;
    assert!(matches!(pooled, Value::Tensor(ref t) if t.shape() == [sentences.len(), 16]));
    Ok(())
}

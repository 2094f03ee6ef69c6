//! BERT preprocessing (tensorflow_text 2.21.1 ops) against TensorFlow: the fixtures of
//! `tools/make_fixtures_bert.py`, built like TF Model Garden's `text_layers.BertTokenizer` +
//! `BertPackInputs` exports, run on adversarial text (every general category, combining marks,
//! Hangul, CJK, RTL, emoji ZWJ sequences, full-width forms, ligatures, control and format
//! characters, ill-formed UTF-8, empty and whitespace-only strings, over-long words, a
//! 10k-character input). Ids, masks, type ids and offsets must be exactly TF's.
mod common;

use common::{run_fixture, TestResult, Tolerance};

/// `serving_default`: text -> input_word_ids / input_mask / input_type_ids (seq_length 128),
/// uncased: CaseFoldUTF8, NormalizeUTF8(NFD), StaticRegexReplace, RegexSplitWithOffsets,
/// WordpieceTokenizeWithOffsets, LookupTableFindV2, RoundRobinTrim, RaggedGather,
/// RaggedTensorToTensor.
#[test]
fn uncased_preprocess() -> TestResult {
    run_fixture(
        "bert_preprocess_uncased",
        "serving_default",
        Tolerance::Exact,
    )
}

/// `tokenize`: the [batch, words, pieces] ids with their byte offsets and both row splits.
#[test]
fn uncased_tokenize_with_offsets() -> TestResult {
    run_fixture("bert_preprocess_uncased", "tokenize", Tolerance::Exact)
}

/// `bert_pack_inputs`: two segments as flat values + row splits, trimmed round-robin to a
/// runtime `seq_length` (9), combined with [CLS]/[SEP] and padded.
#[test]
fn uncased_bert_pack_inputs() -> TestResult {
    run_fixture(
        "bert_preprocess_uncased",
        "bert_pack_inputs",
        Tolerance::Exact,
    )
}

/// Cased: no case folding or accent stripping, so NBSP, U+3000 and the like stay inside words.
#[test]
fn cased_tokenize_with_offsets() -> TestResult {
    run_fixture("bert_preprocess_cased", "tokenize", Tolerance::Exact)
}

/// Every Unicode scalar value through CaseFoldUTF8, the four NormalizeUTF8 forms and
/// BasicTokenizer (lower_case: case fold, NFD, `\p{Mn}` stripping, `\p{Cc}|\p{Cf}` -> space,
/// the regex split) in `text_unicode`'s signatures, compared per block of code points with
/// digests of TF's outputs (`sweep.json`). A mismatching block is printed with the first
/// code points whose output differs from TF's reference behaviour for that block.
#[test]
fn unicode_sweep_matches_tf() -> TestResult {
    use tfhub::Tensor;
    let dir = common::fixture("text_unicode");
    let sweep = common::read_json(&dir.join("sweep.json"));
    let block = sweep["block"].as_u64().ok_or("block")? as u32;
    let model = tfhub::load(&dir)?;
    let digest = common::sweep_digest;
    let strings = |t: &Tensor| -> Vec<Vec<u8>> {
        t.as_slice::<tfhub::Bytes>()
            .expect("strings")
            .iter()
            .map(|b| b.to_vec())
            .collect()
    };
    let mut bad = Vec::new();
    let digests = sweep["digests"].as_object().ok_or("digests")?;
    for (sig, want) in digests {
        let want = want.as_array().ok_or("digest list")?;
        for (b, w) in want.iter().enumerate() {
            let w: u64 = w.as_str().ok_or("digest")?.parse()?;
            let cps: Vec<char> = (b as u32 * block..(b as u32 + 1) * block)
                .filter_map(char::from_u32)
                .collect();
            let got = if sig == "basic_tokenize" {
                let ins: Vec<String> = cps.iter().map(|c| format!("a{c}b")).collect();
                let t = Tensor::from_strings(&[ins.len()], &ins)?;
                let o = model.signature(sig)?.call(vec![("text".to_string(), t)])?;
                let mut parts = strings(&o["tokens"]);
                for name in ["starts", "limits", "row_splits"] {
                    let v = o[name].to_i64_vec()?;
                    parts.push(v.iter().flat_map(|x| x.to_le_bytes()).collect());
                }
                digest(&parts)
            } else {
                let ins: Vec<String> = cps.iter().map(|c| c.to_string()).collect();
                let t = Tensor::from_strings(&[ins.len()], &ins)?;
                let o = model.signature(sig)?.call(vec![("text".to_string(), t)])?;
                digest(&strings(&o["output"]))
            };
            if got != w {
                bad.push(format!(
                    "{sig}: block {b} (U+{:04X}..U+{:04X})",
                    b as u32 * block,
                    (b as u32 + 1) * block - 1
                ));
            }
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

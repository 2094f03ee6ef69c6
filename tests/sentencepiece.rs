//! SentencePiece ops against TF 2.21 + tensorflow_text 2.21.1 (`tools/make_fixtures_spm.py`):
//! a unigram model (nmt_nfkc charsmap, user-defined symbols) and a BPE model (byte fallback,
//! identity normalizer, extra whitespace kept), on adversarial text. Ids, pieces, offsets and
//! detokenized strings must be exactly equal.
mod common;

use common::{
    check_golden, fixture, inputs, json_bytes, json_ints, run_fixture, TestResult, Tolerance,
};

const MODELS: [&str; 2] = ["spm_unigram", "spm_bpe"];

/// Every signature with a golden file, for one fixture.
fn run_all(name: &str) -> TestResult {
    run_fixture(name, "serving_default", Tolerance::Exact)?;
    for sig in [
        "tokenize_with_offsets",
        "tokenize_pieces_offsets",
        "tokenize_bos_eos_reverse",
        "detokenize",
        "detokenize_pieces",
        "detokenize_bos_eos_reverse",
        "id_to_string",
        "string_to_id",
        "vocab_size",
    ] {
        eprintln!("{name} {sig}");
        run_fixture(name, sig, Tolerance::Exact)?;
    }
    Ok(())
}

#[test]
fn unigram_matches_tf() -> TestResult {
    run_all("spm_unigram")
}

#[test]
fn bpe_matches_tf() -> TestResult {
    run_all("spm_bpe")
}

/// `nbest_size=-1, alpha=0.1` samples at random in TF; tfhub refuses it by name.
#[test]
fn sampling_is_refused_by_name() -> TestResult {
    for name in MODELS {
        let dir = fixture(name);
        let model = tfhub::load(&dir)?;
        let ins = inputs(&model, &dir, "serving_default");
        let err = model
            .signature("tokenize_sample")?
            .call(ins)
            .expect_err("sampling must be refused");
        let msg = format!("{err:#}");
        let chain = {
            let mut s = err.to_string();
            let mut cur = std::error::Error::source(&err);
            while let Some(c) = cur {
                s.push_str(": ");
                s.push_str(&c.to_string());
                cur = c.source();
            }
            s
        };
        assert!(
            chain.contains("sampling") && chain.contains("random"),
            "{name}: {msg} / {chain}"
        );
    }
    Ok(())
}

/// The same goldens through one batch call of 1 row at a time (the op's serial path) and the
/// whole batch (the parallel path) give the same result.
#[test]
fn row_by_row_equals_batch() -> TestResult {
    for name in MODELS {
        let dir = fixture(name);
        let model = tfhub::load(&dir)?;
        let sig = model.signature("tokenize_pieces_offsets")?;
        let ins = inputs(&model, &dir, "tokenize_pieces_offsets");
        let all = sig.call(ins.clone())?;
        check_golden(&all, &dir, "tokenize_pieces_offsets", Tolerance::Exact);
        let text = &ins[0].1;
        let rows = text.as_slice::<tfhub::tensor::Bytes>()?.to_vec();
        let mut pieces = Vec::new();
        for r in rows.iter().take(20) {
            let out = sig.call(vec![(
                ins[0].0.clone(),
                tfhub::Tensor::vector(vec![r.clone()]),
            )])?;
            pieces.extend(
                out["pieces"]
                    .as_slice::<tfhub::tensor::Bytes>()?
                    .iter()
                    .cloned(),
            );
        }
        let want = all["pieces"].as_slice::<tfhub::tensor::Bytes>()?;
        assert_eq!(&want[..pieces.len()], &pieces[..], "{name}");
    }
    Ok(())
}

/// WORD, CHAR and suffix-whitespace unigram (+ byte fallback) models through the library API
/// against TF's tokenize_with_offsets, string pieces and detokenize (`spm_vectors`).
#[test]
fn word_char_and_suffix_models_match_tf() -> TestResult {
    use tfhub::sentencepiece::{ExtraOptions, Processor};
    let dir = fixture("spm_vectors");
    let v = common::read_json(&dir.join("vectors.json"));
    let texts: Vec<Vec<u8>> = v["texts"]
        .as_array()
        .ok_or("texts")?
        .iter()
        .map(json_bytes)
        .collect();
    let models = v["models"].as_object().ok_or("models")?;
    assert_eq!(models.len(), 3);
    for (name, g) in models {
        let sp = Processor::from_bytes(&std::fs::read(dir.join(format!("{name}.model")))?)?;
        let ids = json_ints(&g["ids"]);
        let splits = json_ints(&g["row_splits"]);
        let starts = json_ints(&g["starts"]);
        let limits = json_ints(&g["limits"]);
        let pieces: Vec<Vec<u8>> = g["pieces"]
            .as_array()
            .ok_or("pieces")?
            .iter()
            .map(json_bytes)
            .collect();
        let detok: Vec<Vec<u8>> = g["detokenized"]
            .as_array()
            .ok_or("detokenized")?
            .iter()
            .map(json_bytes)
            .collect();
        assert_eq!(splits.len(), texts.len() + 1);
        for (r, t) in texts.iter().enumerate() {
            let (a, b) = (splits[r] as usize, splits[r + 1] as usize);
            let enc = sp.encode(t, ExtraOptions::default(), 1 << 30)?;
            let got: Vec<(i64, i64, i64, Vec<u8>)> = enc
                .tokens
                .iter()
                .map(|x| {
                    (
                        x.id as i64,
                        x.begin as i64,
                        x.end as i64,
                        sp.token_text(&enc, x).into_owned(),
                    )
                })
                .collect();
            let want: Vec<(i64, i64, i64, Vec<u8>)> = (a..b)
                .map(|i| (ids[i], starts[i], limits[i], pieces[i].clone()))
                .collect();
            assert_eq!(got, want, "{name} row {r} {:?}", String::from_utf8_lossy(t));
            let row_ids: Vec<i32> = ids[a..b].iter().map(|&x| x as i32).collect();
            let d = sp.decode_ids(&row_ids, ExtraOptions::default())?;
            assert_eq!(d, detok[r], "{name} detokenize row {r}");
        }
        eprintln!("{name}: {} rows match", texts.len());
    }
    Ok(())
}

//! tensorflow_text 2.21.1's `normalize_utf8_with_offsets_map` + `find_source_offsets`
//! against TensorFlow (ICU 77): the fixture of `tools/make_fixtures_text4.py`. The variant
//! offsets map only flows between `NormalizeUTF8WithOffsetsMap` and `FindSourceOffsets`
//! inside the graph; every normalized byte offset of every row (and a few outside the
//! string) must map to exactly TF's source offset.
mod common;

use common::{fixture, inputs, read_json, run_fixture, TestResult, Tolerance};
use tfhub::fuzzing::eval_op;
use tfhub::proto::attr_value;
use tfhub::{Bytes, Tensor};

fn ints(v: &serde_json::Value) -> Vec<i64> {
    v["values"]
        .as_array()
        .expect("values")
        .iter()
        .map(|x| x.as_i64().expect("int"))
        .collect()
}

/// Runs one form's signature and compares it with TF row by row, reporting every row that
/// differs (input, normalized text, offsets) before failing.
fn check_form(sig: &str) -> TestResult {
    let dir = fixture("text4_offsets_map");
    let model = tfhub::load(&dir)?;
    let ins = inputs(&model, &dir, sig);
    let texts: Vec<Bytes> = ins[0].1.as_slice::<Bytes>()?.to_vec();
    let outs = model.signature(sig)?.call(ins)?;
    let golden = if sig == "serving_default" {
        read_json(&dir.join("golden.json"))
    } else {
        read_json(&dir.join(format!("golden_{sig}.json")))
    };
    let want_out =
        tfhub::api::json::tensor_from_json(&golden["output"]["values"], tfhub::DType::String)?;
    let want_out = want_out.as_slice::<Bytes>()?;
    let got_out = outs["output"].as_slice::<Bytes>()?;
    let (want_src, want_sp) = (ints(&golden["source"]), ints(&golden["splits"]));
    let got_src = outs["source"].to_i64_vec()?;
    let got_sp = outs["splits"].to_i64_vec()?;
    assert_eq!(got_sp, want_sp, "{sig}: splits");
    let mut bad = Vec::new();
    for (i, w) in want_sp.windows(2).enumerate() {
        let (a, b) = (w[0] as usize, w[1] as usize);
        if got_out[i] != want_out[i] || got_src[a..b] != want_src[a..b] {
            bad.push(format!(
                "row {i}: input {:?}\n  output {:?} (TF {:?})\n  source {:?}\n  TF     {:?}",
                String::from_utf8_lossy(&texts[i]),
                String::from_utf8_lossy(&got_out[i]),
                String::from_utf8_lossy(&want_out[i]),
                &got_src[a..b],
                &want_src[a..b]
            ));
        }
    }
    let rows = want_sp.len() - 1;
    eprintln!(
        "{sig}: {}/{rows} rows agree with TF ({} offsets)",
        rows - bad.len(),
        want_src.len()
    );
    assert!(
        bad.is_empty(),
        "{sig}: {} rows differ:\n{}",
        bad.len(),
        bad.join("\n")
    );
    Ok(())
}

/// NFC: composition segments are single replacements, singletons, Hangul L+V(+T) and LV+T,
/// backward-combining starters, ill-formed bytes as boundaries.
#[test]
fn offsets_map_nfc() -> TestResult {
    check_form("serving_default")
}

/// NFD: an unchanged starter stays outside the change; reordered marks are one change.
#[test]
fn offsets_map_nfd() -> TestResult {
    check_form("nfd")
}

/// NFKC (the attr in lower case: TF upper-cases it).
#[test]
fn offsets_map_nfkc() -> TestResult {
    check_form("nfkc")
}

#[test]
fn offsets_map_nfkd() -> TestResult {
    check_form("nfkd")
}

/// Caller-given offsets: empty rows consume no map (TF pairs maps with the non-empty rows
/// in order), offsets past the end, negative, and past int32 (narrowed like TF's C++ call).
#[test]
fn find_source_offsets_given() -> TestResult {
    run_fixture("text4_offsets_map", "given", Tolerance::Exact)
}

/// A [2, 3] string matrix: the wrapper reshapes the variant map and goes through
/// RaggedTensor.from_tensor / to_tensor for [2, 3, 4] dense offsets.
#[test]
fn find_source_offsets_dense() -> TestResult {
    run_fixture("text4_offsets_map", "dense2d", Tolerance::Exact)
}

fn normalize(form: &str, texts: &[&[u8]]) -> Result<Vec<Tensor>, tfhub::ops::OpError> {
    eval_op(
        "NormalizeUTF8WithOffsetsMap",
        vec![(
            "normalization_form",
            attr_value::Value::S(form.as_bytes().to_vec()),
        )],
        vec![Tensor::vector(
            texts
                .iter()
                .map(|t| Bytes::from(t.to_vec()))
                .collect::<Vec<_>>(),
        )],
    )
}

/// TF's errors: an unknown form fails when the kernel runs; a map count that does not match
/// the non-empty offset rows; a tensor that is not an offsets map.
#[test]
fn offsets_map_errors() -> TestResult {
    let e = normalize("NFKC_CF", &[b"x"]).expect_err("unknown form");
    assert!(
        e.to_string()
            .contains("Offset not supported for this normalization form: NFKC_CF"),
        "{e}"
    );
    let outs = normalize("nfc", &[b"a", b"b"])?;
    let find = |splits: Vec<i64>, values: Vec<i64>, map: Tensor| {
        eval_op(
            "FindSourceOffsets",
            vec![],
            vec![map, Tensor::vector(values), Tensor::vector(splits)],
        )
    };
    let e = find(vec![0, 1, 1], vec![0], outs[1].clone()).expect_err("one row for two maps");
    assert!(
        e.to_string().contains("did not match the offset map"),
        "{e}"
    );
    let e = find(vec![0, 1, 2, 3], vec![0, 0, 0], outs[1].clone()).expect_err("3 rows");
    assert!(
        e.to_string().contains("did not match the offset map"),
        "{e}"
    );
    let e = find(vec![0, 5], vec![0], outs[1].clone()).expect_err("splits past values");
    assert!(e.to_string().contains("not a valid range"), "{e}");
    let ok = find(vec![0, 1, 1, 3], vec![1, 0, 1], outs[1].clone())?;
    assert_eq!(ok[0].to_i64_vec()?, [1, 0, 1]);
    Ok(())
}

/// 10k-character inputs (a run of 10k combining marks on one starter, Hangul jamo, mixed
/// compatibility characters and bad bytes): the output equals `NormalizeUTF8`'s for every
/// form, and the source offsets never decrease and stay within the input.
#[test]
fn long_inputs_agree_with_normalize_utf8() -> TestResult {
    let mut marks = b"a".to_vec();
    for i in 0..10_000 {
        marks.extend_from_slice(["\u{301}", "\u{323}", "\u{316}"][i % 3].as_bytes());
    }
    let mut mixed = Vec::new();
    for i in 0..2_500 {
        let piece: &[u8] = match i % 5 {
            0 => "\u{1100}\u{1161}\u{11A8}".as_bytes(),
            1 => "\u{FB01}\u{212B}\u{301}".as_bytes(),
            2 => b"e\xff\xcc\x81",
            3 => "\u{FDFA}\u{3300}".as_bytes(),
            _ => "\u{9C7}\u{9BE} x".as_bytes(),
        };
        mixed.extend_from_slice(piece);
    }
    let texts: Vec<&[u8]> = vec![&marks, &mixed];
    for form in ["NFC", "NFD", "NFKC", "NFKD"] {
        let outs = normalize(form, &texts)?;
        let plain = eval_op(
            "NormalizeUTF8",
            vec![(
                "normalization_form",
                attr_value::Value::S(form.as_bytes().to_vec()),
            )],
            vec![Tensor::vector(
                texts
                    .iter()
                    .map(|t| Bytes::from(t.to_vec()))
                    .collect::<Vec<_>>(),
            )],
        )?;
        let got = outs[0].as_slice::<Bytes>()?;
        assert_eq!(got, plain[0].as_slice::<Bytes>()?, "{form}");
        let mut values = Vec::new();
        let mut splits = vec![0i64];
        for o in got {
            values.extend(0..=o.len() as i64);
            splits.push(values.len() as i64);
        }
        let src = eval_op(
            "FindSourceOffsets",
            vec![],
            vec![
                outs[1].clone(),
                Tensor::vector(values),
                Tensor::vector(splits.clone()),
            ],
        )?[0]
            .to_i64_vec()?;
        for (r, w) in splits.windows(2).enumerate() {
            let row = &src[w[0] as usize..w[1] as usize];
            assert!(row.windows(2).all(|p| p[0] <= p[1]), "{form} row {r}");
            assert_eq!(row.first(), Some(&0), "{form} row {r}");
            assert_eq!(row.last(), Some(&(texts[r].len() as i64)), "{form} row {r}");
        }
    }
    Ok(())
}

/// `RaggedTensorFromVariant` on encoded tensors of rank 2, 3 and 4 (components of ragged
/// rank 1 with int64 splits, inferred `input_ragged_rank` for rank 4; rank-0 components with
/// int32 splits): TF's uniform split levels, inconsistent for rank >= 3, copied exactly.
#[test]
fn ragged_from_variant_rank_2_to_4() -> TestResult {
    run_fixture("text4_ragged_variant", "serving_default", Tolerance::Exact)
}

//! Unit tests for the tensorflow_text ops, with TF 2.21 + tensorflow-text 2.21.1 results
//! (the verified cases S1-S4, S10, S11, S24-S26 of the project's tensorflow-text facts
//! reference), and bad inputs giving typed errors (the fixtures in tests/text*.rs check the
//! results against TF).

use crate::ops::array::tests::{run, run1, A};
use crate::tensor::{Bytes, DType, Tensor};

fn strs(v: &[&[u8]]) -> Tensor {
    Tensor::from_strings(&[v.len()], v).expect("strings")
}

fn scalar(s: &str) -> Tensor {
    Tensor::from_strings(&[], [s]).expect("scalar")
}

fn bytes_of(t: &Tensor) -> Vec<Vec<u8>> {
    t.as_slice::<Bytes>()
        .expect("strings")
        .iter()
        .map(|b| b.to_vec())
        .collect()
}

fn split(input: &[&[u8]], delim: &str, keep: &str) -> Result<Vec<Tensor>, crate::ops::OpError> {
    run(
        "RegexSplitWithOffsets",
        &[],
        vec![strs(input), scalar(delim), scalar(keep)],
    )
}

/// tf_text.regex_split_with_offsets(["ab\x00cd ef"], r"\s+"): the kernel reads a C string
/// (S2); a pattern without a capture group never splits (S3).
#[test]
fn regex_split_quirks() {
    let o = split(&[b"ab\x00cd ef"], r"(\s+)", "()").unwrap();
    assert_eq!(bytes_of(&o[0]), vec![b"ab".to_vec()]);
    assert_eq!(o[1].to_i64_vec().unwrap(), [0]);
    assert_eq!(o[2].to_i64_vec().unwrap(), [2]);
    assert_eq!(o[3].to_i64_vec().unwrap(), [0, 1]);
    let o = split(&[b"ab cd"], r"\s+", "").unwrap();
    assert_eq!(bytes_of(&o[0]), vec![b"ab cd".to_vec()]);
    // Keep delimiters that fully match the keep pattern.
    let o = split(&[b"a,b  c", b""], r"(\s+|,)", "(,)").unwrap();
    assert_eq!(
        bytes_of(&o[0]),
        vec![b"a".to_vec(), b",".to_vec(), b"b".to_vec(), b"c".to_vec()]
    );
    assert_eq!(o[1].to_i64_vec().unwrap(), [0, 1, 2, 5]);
    assert_eq!(o[2].to_i64_vec().unwrap(), [1, 2, 3, 6]);
    assert_eq!(o[3].to_i64_vec().unwrap(), [0, 4, 4]);
}

/// S4: a delimiter matching the empty string makes TF loop forever; here it is an error.
#[test]
fn regex_split_empty_match_is_an_error() {
    let e = split(&[b"xbay"], "(a*)", "").unwrap_err().to_string();
    assert!(e.contains("empty string"), "{e}");
    let e = split(&[b"x"], "(", "").unwrap_err().to_string();
    assert!(e.contains("Invalid pattern"), "{e}");
}

/// S25, S26: case folding is NFKC_Casefold; ill-formed bytes are copied and stop
/// composition.
#[test]
fn case_fold_and_normalize() {
    let o = run1(
        "CaseFoldUTF8",
        &[],
        vec![strs(&[
            "\u{FEFF}\u{A0}x\u{200B}".as_bytes(),
            b"ABC\x00D",
            b"\xff abc",
            b"a\xc3",
            "Straße ﬁ K ǅ ①".as_bytes(),
        ])],
    );
    assert_eq!(
        bytes_of(&o),
        vec![
            b" x".to_vec(),
            b"abc\x00d".to_vec(),
            b"\xff abc".to_vec(),
            b"a\xc3".to_vec(),
            "strasse fi k dž 1".as_bytes().to_vec(),
        ]
    );
    let o = run1(
        "NormalizeUTF8",
        &[("normalization_form", A::S("nfc"))],
        vec![strs(&[b"e\xff\xcc\x81", b"a\xcc\x81\xff\xcc\xa3"])],
    );
    assert_eq!(
        bytes_of(&o),
        vec![b"e\xff\xcc\x81".to_vec(), b"\xc3\xa1\xff\xcc\xa3".to_vec()]
    );
    let e = run(
        "NormalizeUTF8",
        &[("normalization_form", A::S("NFX"))],
        vec![strs(&[b"a"])],
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("Unknown normalization form requrested: NFX"),
        "{e}"
    );
}

/// The verified RoundRobinTrim example: [[1..6],[7]] + [[8,9],[]] with L=3.
#[test]
fn round_robin_trim() {
    let o = run(
        "TFText>RoundRobinTrim",
        &[],
        vec![
            Tensor::scalar(3i32),
            Tensor::vector(vec![1i64, 2, 3, 4, 5, 6, 7]),
            Tensor::vector(vec![8i64, 9]),
            Tensor::vector(vec![0i64, 6, 7]),
            Tensor::vector(vec![0i64, 2, 2]),
        ],
    )
    .unwrap();
    assert_eq!(o[0].to_i64_vec().unwrap(), [1, 2, 7]);
    assert_eq!(o[1].to_i64_vec().unwrap(), [8]);
    assert_eq!(o[2].to_i64_vec().unwrap(), [0, 2, 3]);
    assert_eq!(o[3].to_i64_vec().unwrap(), [0, 1, 1]);
    // Splits that do not cover the values are an error, not an out-of-bounds read.
    assert!(run(
        "TFText>RoundRobinTrim",
        &[],
        vec![
            Tensor::scalar(3i32),
            Tensor::vector(vec![1i64]),
            Tensor::vector(vec![8i64]),
            Tensor::vector(vec![0i64, 5]),
            Tensor::vector(vec![0i64, 1]),
        ],
    )
    .is_err());
}

/// S24: float RaggedRange accumulates `value += delta`.
#[test]
fn ragged_range_accumulates() {
    let o = run(
        "RaggedRange",
        &[],
        vec![
            Tensor::scalar(0f32),
            Tensor::scalar(1f32),
            Tensor::scalar(0.1f32),
        ],
    )
    .unwrap();
    assert_eq!(o[0].to_i64_vec().unwrap(), [0, 10]);
    let v = o[1].as_slice::<f32>().unwrap();
    assert_eq!(v.len(), 10);
    assert_eq!(v[7..], [0.700_000_05, 0.800_000_1, 0.900_000_1]);
    assert!(run(
        "RaggedRange",
        &[],
        vec![
            Tensor::scalar(0i32),
            Tensor::scalar(5i32),
            Tensor::scalar(0i32)
        ],
    )
    .is_err());
}

/// The whitespace config bitset `BuildWhitespaceTokenizerConfig` writes (White_Space up to
/// U+3000).
fn ws_config() -> Tensor {
    let ws: &[u32] = &[
        9, 10, 11, 12, 13, 32, 0x85, 0xA0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005,
        0x2006, 0x2007, 0x2008, 0x2009, 0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000,
    ];
    let mut bits = vec![0u8; (0x3000 >> 3) + 1];
    for &c in ws {
        bits[(c >> 3) as usize] |= 1 << (c & 7);
    }
    Tensor::from_strings(&[], [bits]).expect("scalar")
}

/// S10: the V2 whitespace tokenizer ends a token one byte before the end of the space.
#[test]
fn whitespace_v2_multibyte_space_quirk() {
    let o = run(
        "TFText>WhitespaceTokenizeWithOffsetsV2",
        &[],
        vec![
            strs(&["a\u{3000}b".as_bytes(), "\u{85}x\u{85}".as_bytes()]),
            ws_config(),
        ],
    )
    .unwrap();
    assert_eq!(
        bytes_of(&o[0]),
        vec![b"a\xE3\x80".to_vec(), b"b".to_vec(), b"x\xC2".to_vec()]
    );
    assert_eq!(o[1].to_i64_vec().unwrap(), [0, 2, 3]);
    assert_eq!(o[2].as_slice::<i32>().unwrap(), [0, 4, 2]);
    assert_eq!(o[3].as_slice::<i32>().unwrap(), [3, 5, 4]);
}

/// S11: digits and spaces are one Common run; a script change splits.
#[test]
fn script_tokenizer_runs() {
    let cps: Vec<i32> = "123 456x . 3".chars().map(|c| c as i32).collect();
    let n = cps.len() as i64;
    let o = run(
        "UnicodeScriptTokenizeWithOffsets",
        &[],
        vec![Tensor::vector(cps), Tensor::vector(vec![0i64, n])],
    )
    .unwrap();
    // "123456" (Common, spaces dropped), "x" (Latin), ".3" (Common).
    assert_eq!(o[1].to_i64_vec().unwrap(), [0, 6, 7, 9]);
    assert_eq!(o[2].to_i64_vec().unwrap(), [0, 7, 9]);
    assert_eq!(o[3].to_i64_vec().unwrap(), [7, 8, 12]);
    assert_eq!(o[4].to_i64_vec().unwrap(), [0, 3]);
}

#[test]
fn codepoint_tokenizers_check_splits() {
    for op in [
        "UnicodeScriptTokenizeWithOffsets",
        "WhitespaceTokenizeWithOffsets",
    ] {
        for splits in [vec![], vec![0i64, 5], vec![2i64, 1]] {
            let r = run(
                op,
                &[],
                vec![Tensor::vector(vec![97i32, 98]), Tensor::vector(splits)],
            );
            assert!(r.is_err(), "{op}");
        }
    }
}

fn to_variant(batched: bool, splits: Vec<i64>, values: Vec<i32>) -> Result<Tensor, String> {
    let mut o = run(
        "RaggedTensorToVariant",
        &[
            ("RAGGED_RANK", A::I(1)),
            ("Tvalues", A::T(DType::I32)),
            ("Tsplits", A::T(DType::I64)),
            ("batched_input", A::B(batched)),
        ],
        vec![Tensor::vector(splits), Tensor::vector(values)],
    )
    .map_err(|e| e.to_string())?;
    Ok(o.remove(0))
}

fn from_variant(v: Tensor, input: i64, output: i64, values: DType) -> Result<Vec<Tensor>, String> {
    run(
        "RaggedTensorFromVariant",
        &[
            ("input_ragged_rank", A::I(input)),
            ("output_ragged_rank", A::I(output)),
            ("Tvalues", A::T(values)),
            ("Tsplits", A::T(DType::I64)),
        ],
        vec![v],
    )
    .map_err(|e| e.to_string())
}

#[test]
fn ragged_variant_round_trip_and_errors() {
    let v = to_variant(true, vec![0, 2, 2, 5], vec![1, 2, 3, 4, 5]).unwrap();
    assert_eq!(v.shape(), [3]);
    let o = from_variant(v.clone(), -1, 1, DType::I32).unwrap();
    assert_eq!(o[0].to_i64_vec().unwrap(), [0, 2, 2, 5]);
    assert_eq!(o[1].as_slice::<i32>().unwrap(), [1, 2, 3, 4, 5]);
    // Wrong value dtype, wrong ragged rank: typed errors, as TF.
    assert!(from_variant(v.clone(), -1, 1, DType::F32)
        .unwrap_err()
        .contains("Expected values Tensor dtype"));
    assert!(from_variant(v, 1, 2, DType::I32)
        .unwrap_err()
        .contains("ragged_rank"));
    // Splits that do not fit the values are refused before they are used.
    assert!(to_variant(true, vec![0, 9], vec![1, 2]).is_err());
    assert!(to_variant(false, vec![1, 2], vec![1, 2]).is_err());
    // A TensorList is not a ragged variant.
    let list = crate::tensor::list::TensorList::new(DType::I32, None, 0).into_tensor();
    assert!(from_variant(list, 0, 0, DType::I32)
        .unwrap_err()
        .contains("RaggedTensorVariant"));
}

#[test]
fn fast_wordpiece_rejects_garbage_models() {
    for model in [
        vec![],
        vec![0u8; 3],
        vec![0xFF; 64],
        vec![4, 0, 0, 0, 0, 0, 0, 0],
    ] {
        let r = run(
            "FastWordpieceTokenizeWithOffsets",
            &[],
            vec![strs(&[b"hello"]), Tensor::vector(model.clone())],
        );
        assert!(r.is_err());
        let r = run(
            "FastBertNormalize",
            &[("get_offsets", A::B(true))],
            vec![strs(&[b"hello"]), Tensor::vector(model)],
        );
        assert!(r.is_err());
    }
}

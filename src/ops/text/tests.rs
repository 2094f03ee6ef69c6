//! Unit tests for the tensorflow_text ops, with TF 2.21 + tensorflow-text 2.21.1 results
//! (the verified cases S1-S4, S24-S26 of the project's tensorflow-text facts reference).

use crate::ops::array::tests::{run, run1, A};
use crate::tensor::{Bytes, Tensor};

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

//! Unit tests for the tftext family: bad inputs give typed errors (the fixtures in
//! tests/text2.rs check the results against TF), and the S10/S11 cases of the project's
//! tensorflow-text facts reference (verified on TF 2.21 + tensorflow-text 2.21.1).

use crate::ops::array::tests::{run, A};
use crate::tensor::{Bytes, DType, Tensor};

fn strs(v: &[&[u8]]) -> Tensor {
    Tensor::from_strings(&[v.len()], v).expect("strings")
}

fn bytes_of(t: &Tensor) -> Vec<Vec<u8>> {
    t.as_slice::<Bytes>()
        .expect("strings")
        .iter()
        .map(|b| b.to_vec())
        .collect()
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

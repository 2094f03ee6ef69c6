use super::*;
use crate::ops::{Limits, Session};
use crate::tensor::Bytes;

fn opts(policy: &str, subst: u32, control: bool) -> ErrorOptions {
    ErrorOptions {
        subst,
        elide: policy == "ignore",
        strict: policy == "strict",
        replace_control: control,
    }
}

fn eval(op: &dyn Op, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, OpError> {
    let session = Session::new(".".into(), None, Limits::default());
    op.eval(&mut EvalCtx::new(&session), inputs.into())
        .map(crate::ops::Tensors::into_vec)
}

fn raw(v: &[&[u8]]) -> Tensor {
    Tensor::from_strings(&[v.len()], v).unwrap()
}

fn decode(enc: Encoding, errors: ErrorOptions, v: &[&[u8]]) -> Result<Vec<Vec<i64>>, OpError> {
    let op = UnicodeDecode {
        encoding: enc,
        errors,
        offsets: true,
        tsplits: DType::I64,
    };
    let out = eval(&op, vec![raw(v)])?;
    Ok(out.iter().map(|t| t.to_i64_vec().unwrap()).collect())
}

#[test]
fn decode_matches_tf_on_invalid_input() {
    // unicode_decode_with_offsets([b"a\xffb", b"\xe4\xb8x", b"ok\x01"], "UTF-8",
    //   errors=E, replacement_char=42, replace_control_characters=True)
    let v: &[&[u8]] = &[b"a\xffb", b"\xe4\xb8x", b"ok\x01"];
    let r = decode(Encoding::Utf8, opts("replace", 42, true), v).unwrap();
    assert_eq!(r[0], [0, 3, 5, 8]);
    assert_eq!(r[1], [97, 42, 98, 42, 120, 111, 107, 42]);
    assert_eq!(r[2], [0, 1, 2, 0, 2, 0, 1, 2]);
    let r = decode(Encoding::Utf8, opts("ignore", 42, true), v).unwrap();
    assert_eq!(r[0], [0, 2, 3, 5]);
    assert_eq!(r[1], [97, 98, 120, 111, 107]);
    assert_eq!(r[2], [0, 2, 2, 0, 1]);
    // strict fails on bad bytes but only replaces control characters.
    assert!(decode(Encoding::Utf8, opts("strict", 42, true), &[b"\xff"]).is_err());
    let r = decode(Encoding::Utf8, opts("strict", 42, true), &[b"ok\x01"]).unwrap();
    assert_eq!(r[1], [111, 107, 42]);
    // UTF-16-BE: a pair, a lone high surrogate, a truncated tail.
    let r = decode(
        Encoding::Utf16(true),
        opts("replace", 0xFFFD, false),
        &[b"\xd8\x3d\xde\x00\x00a", b"\xd8\x3d\x00a", b"\xd8\x3d\xde"],
    )
    .unwrap();
    assert_eq!(r[1], [0x1F600, 97, 0xFFFD, 97, 0xFFFD]);
    assert_eq!(r[2], [0, 4, 0, 2, 0]);
}

#[test]
fn encodings_and_attrs() {
    assert_eq!(parse_encoding("e", "utf_8").unwrap(), Encoding::Utf8);
    assert!(matches!(
        parse_encoding("input_encoding", "ISO-8859-1"),
        Err(OpError::Unimplemented(m)) if m.contains("ISO-8859-1")
    ));
    assert!(parse_output_encoding("UTF-16-LE").is_err());
}

fn encode(errors: ErrorOptions, values: Vec<i32>, splits: Tensor) -> Result<Vec<Vec<u8>>, OpError> {
    let op = UnicodeEncode {
        encoding: Encoding::Utf8,
        errors,
    };
    let out = eval(&op, vec![Tensor::vector(values), splits])?;
    Ok(out[0]
        .as_slice::<Bytes>()
        .unwrap()
        .iter()
        .map(|b| b.to_vec())
        .collect())
}

#[test]
fn encode_invalid_code_points_and_splits() {
    // unicode_encode([65, -1, 0x110000, 0xD800, 66], [0, 5], "UTF-8", errors=E,
    // replacement_char=63)
    let v = vec![65, -1, 0x110000, 0xD800, 66];
    let sp = || Tensor::vector(vec![0i64, 5]);
    assert_eq!(
        encode(opts("replace", 63, false), v.clone(), sp()).unwrap(),
        [b"A???B"]
    );
    assert_eq!(
        encode(opts("ignore", 63, false), v.clone(), sp()).unwrap(),
        [b"AB"]
    );
    assert!(encode(opts("strict", 63, false), v, sp()).is_err());
    for bad in [
        vec![],
        vec![1i64, 2],
        vec![0, 3],
        vec![0, 2, 1, 2],
        vec![0, 3, 2],
    ] {
        let r = encode(
            opts("replace", 63, false),
            vec![65, 66],
            Tensor::vector(bad.clone()),
        );
        assert!(matches!(r, Err(OpError::Invalid(_))), "{bad:?}");
    }
    let m = Tensor::from_vec(&[1, 2], vec![0i64, 2]).unwrap();
    assert!(encode(opts("replace", 63, false), vec![65, 66], m).is_err());
}

#[test]
fn transcode_strict_counts_control_characters() {
    let op = |policy: &str| UnicodeTranscode {
        input: Encoding::Utf8,
        output: Encoding::Utf8,
        errors: opts(policy, 0xFFFD, true),
    };
    let out = eval(&op("ignore"), vec![raw(&[b"a\xffb\x01"])]).unwrap();
    assert_eq!(&out[0].as_slice::<Bytes>().unwrap()[0][..], b"ab");
    assert!(eval(&op("strict"), vec![raw(&[b"a\x01"])]).is_err());
}

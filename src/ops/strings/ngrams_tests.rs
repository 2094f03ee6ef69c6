use super::*;
use crate::ops::{Limits, Session};

fn op(widths: &[i64], pad_width: i64, preserve_short: bool) -> StringNGrams {
    StringNGrams {
        separator: b"_".to_vec(),
        widths: widths.to_vec(),
        left_pad: b"L".to_vec(),
        right_pad: b"R".to_vec(),
        pad_width,
        preserve_short,
        tsplits: DType::I32,
    }
}

fn run(
    op: &StringNGrams,
    data: &[&str],
    splits: Tensor,
) -> Result<(Vec<String>, Vec<i64>), OpError> {
    let session = Session::new(".".into(), None, Limits::default());
    let out = op.eval(
        &mut EvalCtx::new(&session),
        tensors![Tensor::from_strings(&[data.len()], data).unwrap(), splits],
    )?;
    let grams = out[0]
        .as_slice::<Bytes>()
        .unwrap()
        .iter()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect();
    assert_eq!(out[1].dtype(), DType::I32);
    Ok((grams, out[1].to_i64_vec().unwrap()))
}

#[test]
fn bad_splits_are_errors() {
    let o = op(&[2], -1, false);
    for bad in [
        vec![1i64, 2],
        vec![0, 3],
        vec![0, 2, 1, 2],
        vec![0, 1],
        vec![0, -1, 2],
    ] {
        let e = run(&o, &["a", "b"], Tensor::vector(bad.clone())).unwrap_err();
        assert!(matches!(e, OpError::Invalid(_)), "{bad:?}: {e}");
    }
    // Not vectors, or not integers.
    let m = Tensor::from_vec(&[1, 3], vec![0i64, 1, 2]).unwrap();
    assert!(run(&o, &["a", "b"], m).is_err());
    assert!(run(&o, &["a", "b"], Tensor::vector(vec![0f32, 2.0])).is_err());
}

#[test]
fn bad_widths_are_errors() {
    let e = run(
        &op(&[2, 0], -1, false),
        &["a"],
        Tensor::vector(vec![0i64, 1]),
    )
    .unwrap_err();
    assert!(e.to_string().contains("positive"), "{e}");
    // preserve_short_sequences with no widths needs a non-negative pad_width.
    let e = run(&op(&[], -1, true), &["a"], Tensor::vector(vec![0i64, 1])).unwrap_err();
    assert!(e.to_string().contains("Pad width"), "{e}");
}

#[test]
fn padding_and_preserve_short_match_tf() {
    // gen_string_ops.string_n_grams(data=["x"], data_splits=[0,0,1], ngram_widths=[3],
    // separator="_", left_pad="L", right_pad="R", pad_width=-1): an empty row still yields
    // pad-only n-grams.
    let (g, s) = run(
        &op(&[3], -1, false),
        &["x"],
        Tensor::vector(vec![0i32, 0, 1]),
    )
    .unwrap();
    assert_eq!(g, ["L_L_R", "L_R_R", "L_L_x", "L_x_R", "x_R_R"]);
    assert_eq!(s, [0, 2, 5]);
    // ngram_widths=[], pad_width=1, preserve_short_sequences=True, splits [0,0,1,3].
    let (g, s) = run(
        &op(&[], 1, true),
        &["x", "y", "z"],
        Tensor::vector(vec![0i32, 0, 1, 3]),
    )
    .unwrap();
    assert_eq!(g, ["L_x_R", "L_y_z_R"]);
    assert_eq!(s, [0, 0, 1, 2]);
    // No splits: TF keeps data's shape, all empty strings.
    let (g, s) = run(
        &op(&[2], -1, false),
        &["a", "b"],
        Tensor::vector(Vec::<i64>::new()),
    )
    .unwrap();
    assert_eq!(g, ["", ""]);
    assert!(s.is_empty());
}

#[test]
fn huge_output_hits_the_cap() {
    let o = op(&[i32::MAX as i64], -1, false);
    let e = run(&o, &["a"], Tensor::vector(vec![0i64, 1])).unwrap_err();
    assert!(matches!(e, OpError::Limit(_)), "{e}");
}

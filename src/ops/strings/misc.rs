//! `StringLower`/`StringUpper`, `StringJoin`, `Substr`, `StringLength`, `StringStrip`,
//! `ReduceJoin`. TF reference: core/kernels/{string_lower_op,string_upper_op,
//! string_join_op,substr_op,string_length_op,string_strip_op,reduce_join_op}.cc.

use super::{map_strings, strings};
use crate::ops::kernels::strings::{
    ascii_lowercase_in_place, ascii_uppercase_in_place, is_ascii_space,
};
use crate::ops::{take_inputs, BuildCtx, EvalCtx, Op, OpError, Tensors};
use crate::tensor::Tensor;

/// `StringLower` / `StringUpper`: `encoding` "" maps ASCII letters only (TF's default);
/// "utf-8" applies Unicode full case mapping (`ß` -> `SS`, final sigma), with bytes that are
/// not UTF-8 replaced by U+FFFD as ICU does.
#[derive(Debug)]
pub(super) struct CaseMap {
    upper: bool,
    unicode: bool,
}

impl CaseMap {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        let enc = cx.attr_opt_str("encoding").unwrap_or_default();
        let unicode = match enc.to_ascii_lowercase().as_str() {
            "" => false,
            "utf-8" | "utf8" => true,
            other => return Err(OpError::Unimplemented(format!("encoding {other:?}"))),
        };
        Ok(Box::new(CaseMap {
            upper: cx.op == "StringUpper",
            unicode,
        }))
    }
}

impl Op for CaseMap {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [input] = take_inputs(inputs)?;
        let out = map_strings(input, |s| match (self.unicode, self.upper) {
            (false, false) => ascii_lowercase_in_place(s),
            (false, true) => ascii_uppercase_in_place(s),
            (true, upper) => {
                let text = String::from_utf8_lossy(s);
                let mapped = if upper {
                    text.to_uppercase()
                } else {
                    text.to_lowercase()
                };
                *s = mapped.into_bytes();
            }
        })?;
        Ok(tensors![out])
    }
}

/// `StringJoin`: elementwise concatenation with `separator`; scalars broadcast, all other
/// inputs must have one shape.
#[derive(Debug)]
pub(super) struct StringJoin {
    separator: Vec<u8>,
}

impl StringJoin {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(StringJoin {
            separator: cx.attr_opt_bytes("separator").unwrap_or_default().to_vec(),
        }))
    }
}

impl Op for StringJoin {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let mut shape: Option<&[usize]> = None;
        let mut cols = Vec::with_capacity(inputs.len());
        for (i, t) in inputs.iter().enumerate() {
            cols.push(strings(t, i)?);
            if t.rank() > 0 {
                match shape {
                    Some(s) if s != t.shape() => {
                        return Err(OpError::shape(format!(
                            "input shapes do not match: {s:?} vs {:?}",
                            t.shape()
                        )))
                    }
                    _ => shape = Some(t.shape()),
                }
            }
        }
        let shape = shape.unwrap_or(&[]).to_vec();
        let n: usize = shape.iter().product();
        let out = (0..n).map(|i| {
            let mut s = Vec::new();
            for (j, c) in cols.iter().enumerate() {
                if j > 0 {
                    s.extend_from_slice(&self.separator);
                }
                s.extend_from_slice(if c.len() == 1 { &c[0] } else { &c[i] });
            }
            s
        });
        Ok(tensors![Tensor::from_strings(&shape, out)?])
    }
}

/// `Substr` with `unit = "BYTE"`: `pos` and `len` are scalars or have the input's shape. A
/// negative `pos` counts from the end; `|pos| > size` is an error; the length is clamped
/// (a negative `len` means "to the end", as TF's size_t conversion does).
#[derive(Debug)]
pub(super) struct Substr;

impl Substr {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        match cx.attr_opt_str("unit").as_deref() {
            None | Some("BYTE") => Ok(Box::new(Substr)),
            Some(u) => Err(OpError::Unimplemented(format!("Substr with unit {u}"))),
        }
    }
}

impl Op for Substr {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [input, pos, len] = take_inputs(inputs)?;
        if pos.shape() != len.shape() {
            return Err(OpError::shape(format!(
                "pos and len should have the same shape, got: {:?} vs. {:?}",
                pos.shape(),
                len.shape()
            )));
        }
        if pos.rank() != 0 && pos.shape() != input.shape() {
            return Err(OpError::Unimplemented(
                "Substr with pos/len broadcast against the input".into(),
            ));
        }
        let (pos, len) = (pos.to_i64_vec()?, len.to_i64_vec()?);
        let s = strings(&input, 0)?;
        let mut out = Vec::with_capacity(s.len());
        for (i, s) in s.iter().enumerate() {
            let j = if pos.len() == 1 { 0 } else { i };
            let size = s.len() as i64;
            let p = pos[j];
            if p.unsigned_abs() > size as u64 {
                return Err(OpError::invalid(format!(
                    "pos {p} out of range for string at index {i}"
                )));
            }
            let start = if p < 0 { p + size } else { p } as usize;
            let end = match usize::try_from(len[j]) {
                Ok(l) => start.saturating_add(l).min(s.len()),
                Err(_) => s.len(),
            };
            out.push(s.slice(start..end));
        }
        Ok(tensors![Tensor::from_vec(input.shape(), out)?])
    }
}

/// `StringLength`: bytes (`unit = "BYTE"`) or UTF-8 characters (`"UTF8_CHAR"`: bytes that
/// are not continuation bytes, so invalid UTF-8 still counts, as in TF).
#[derive(Debug)]
pub(super) struct StringLength {
    chars: bool,
}

impl StringLength {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        let chars = match cx.attr_opt_str("unit").as_deref() {
            None | Some("BYTE") => false,
            Some("UTF8_CHAR") => true,
            Some(u) => return Err(OpError::invalid(format!("unknown unit {u:?}"))),
        };
        Ok(Box::new(StringLength { chars }))
    }
}

impl Op for StringLength {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [input] = take_inputs(inputs)?;
        let out: Vec<i32> = strings(&input, 0)?
            .iter()
            .map(|s| {
                let n = if self.chars {
                    s.iter().filter(|&&b| b & 0xc0 != 0x80).count()
                } else {
                    s.len()
                };
                i32::try_from(n).unwrap_or(i32::MAX)
            })
            .collect();
        Ok(tensors![Tensor::from_vec(input.shape(), out)?])
    }
}

/// `StringStrip`: removes leading and trailing ASCII whitespace (C `isspace`).
#[derive(Debug)]
pub(super) struct StringStrip;

impl StringStrip {
    pub(super) fn build(_: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(StringStrip))
    }
}

impl Op for StringStrip {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [input] = take_inputs(inputs)?;
        Ok(tensors![map_strings(input, |s| {
            let end = s
                .iter()
                .rposition(|&b| !is_ascii_space(b))
                .map_or(0, |i| i + 1);
            s.truncate(end);
            let start = s
                .iter()
                .position(|&b| !is_ascii_space(b))
                .unwrap_or(s.len());
            s.drain(..start);
        })?])
    }
}

/// `ReduceJoin`: joins strings along `reduction_indices` with `separator`. TF quirk: the
/// axes are reduced in the order given, so the first listed axis varies fastest in the
/// joined string (`[[a,b],[c,d]]` over `[0,1]` is `a,c,b,d`); no axes is the identity.
#[derive(Debug)]
pub(super) struct ReduceJoin {
    keep_dims: bool,
    separator: Vec<u8>,
}

impl ReduceJoin {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(ReduceJoin {
            keep_dims: cx.attr_opt_bool("keep_dims").unwrap_or(false),
            separator: cx.attr_opt_bytes("separator").unwrap_or_default().to_vec(),
        }))
    }
}

impl Op for ReduceJoin {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [input, axes] = take_inputs(inputs)?;
        let s = strings(&input, 0)?;
        let shape = input.shape();
        let rank = shape.len() as i64;
        let mut reduced: Vec<usize> = Vec::new();
        for a in axes.to_i64_vec()? {
            let a2 = if a < 0 { a + rank } else { a };
            if !(0..rank).contains(&a2) || reduced.contains(&(a2 as usize)) {
                return Err(OpError::invalid(format!(
                    "invalid or duplicate reduction dimension {a} for rank {rank}"
                )));
            }
            reduced.push(a2 as usize);
        }
        let mut strides = vec![1usize; shape.len()];
        for d in (0..shape.len().saturating_sub(1)).rev() {
            strides[d] = strides[d + 1] * shape[d + 1];
        }
        let kept: Vec<usize> = (0..shape.len()).filter(|d| !reduced.contains(d)).collect();
        let out_n: usize = kept.iter().map(|&d| shape[d]).product();
        let red_n: usize = reduced.iter().map(|&d| shape[d]).product();
        let mut out = Vec::with_capacity(out_n);
        for o in 0..out_n {
            let base = unravel(o, &kept, shape, &strides);
            let mut joined = Vec::new();
            for r in 0..red_n {
                if r > 0 {
                    joined.extend_from_slice(&self.separator);
                }
                // `reduced` is listed fastest-first, so unravel it in reverse.
                let off = unravel_rev(r, &reduced, shape, &strides);
                joined.extend_from_slice(&s[base + off]);
            }
            out.push(joined);
        }
        let out_shape: Vec<usize> = (0..shape.len())
            .filter_map(|d| match (reduced.contains(&d), self.keep_dims) {
                (false, _) => Some(shape[d]),
                (true, true) => Some(1),
                (true, false) => None,
            })
            .collect();
        Ok(tensors![Tensor::from_strings(&out_shape, out)?])
    }
}

/// Flat offset of the `i`-th (row-major over `dims`) combination of the given dims.
fn unravel(mut i: usize, dims: &[usize], shape: &[usize], strides: &[usize]) -> usize {
    let mut off = 0;
    for &d in dims.iter().rev() {
        off += (i % shape[d]) * strides[d];
        i /= shape[d];
    }
    off
}

/// Like [`unravel`] with the first of `dims` varying fastest.
fn unravel_rev(mut i: usize, dims: &[usize], shape: &[usize], strides: &[usize]) -> usize {
    let mut off = 0;
    for &d in dims {
        off += (i % shape[d]) * strides[d];
        i /= shape[d];
    }
    off
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{Limits, Session};

    fn eval(op: &dyn Op, inputs: Vec<Tensor>) -> Vec<Tensor> {
        let session = Session::new(".".into(), None, Limits::default());
        op.eval(&mut EvalCtx::new(&session), inputs.into())
            .unwrap()
            .into_vec()
    }
    fn strs(v: &[&str]) -> Tensor {
        Tensor::vector(
            v.iter()
                .map(|s| crate::tensor::Bytes::copy_from_slice(s.as_bytes()))
                .collect(),
        )
    }
    fn text(t: &Tensor) -> Vec<String> {
        let v = t.as_slice::<crate::tensor::Bytes>().unwrap();
        v.iter()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect()
    }

    #[test]
    fn case_mapping() {
        // string_lower(["ÀÉÎ ABC Σ ΑΣ İ"]) and with encoding="utf-8"
        let s = "\u{c0}\u{c9}\u{ce} ABC \u{3a3} \u{391}\u{3a3} \u{130}";
        let ascii = CaseMap {
            upper: false,
            unicode: false,
        };
        assert_eq!(
            text(&eval(&ascii, vec![strs(&[s])])[0]),
            ["\u{c0}\u{c9}\u{ce} abc \u{3a3} \u{391}\u{3a3} \u{130}"]
        );
        let uni = CaseMap {
            upper: false,
            unicode: true,
        };
        assert_eq!(
            text(&eval(&uni, vec![strs(&[s])])[0]),
            ["\u{e0}\u{e9}\u{ee} abc \u{3c3} \u{3b1}\u{3c2} i\u{307}"]
        );
        let up = CaseMap {
            upper: true,
            unicode: true,
        };
        assert_eq!(
            text(&eval(&up, vec![strs(&["\u{df} \u{fb01}"])])[0]),
            ["SS FI"]
        );
    }

    #[test]
    fn join_substr_length_strip() {
        let j = StringJoin {
            separator: b"-".to_vec(),
        };
        let out = eval(
            &j,
            vec![
                strs(&["a", "b"]),
                Tensor::scalar(crate::tensor::Bytes::from_static(b"x")),
                strs(&["c", "d"]),
            ],
        );
        assert_eq!(text(&out[0]), ["a-x-c", "b-x-d"]);
        // substr(["hello","world"], [1,2], [2,3]) -> el, rld; substr(["hello"], 1, -1) -> ello
        let out = eval(
            &Substr,
            vec![
                strs(&["hello", "world"]),
                Tensor::vector(vec![1i32, 2]),
                Tensor::vector(vec![2i32, 3]),
            ],
        );
        assert_eq!(text(&out[0]), ["el", "rld"]);
        let out = eval(
            &Substr,
            vec![
                strs(&["hello", "hi"]),
                Tensor::scalar(-1i32),
                Tensor::scalar(-1i32),
            ],
        );
        assert_eq!(text(&out[0]), ["o", "i"]);
        let session = Session::new(".".into(), None, Limits::default());
        assert!(Substr
            .eval(
                &mut EvalCtx::new(&session),
                tensors![strs(&["hello"]), Tensor::scalar(6i32), Tensor::scalar(1i32)]
            )
            .is_err());
        let l = StringLength { chars: true };
        let t = Tensor::vector(vec![
            crate::tensor::Bytes::copy_from_slice("h\u{e9}llo".as_bytes()),
            crate::tensor::Bytes::from_static(b"\xff\xc3"),
        ]);
        assert_eq!(eval(&l, vec![t])[0].to_i64_vec().unwrap(), [5, 2]);
        let out = eval(
            &StringStrip,
            vec![strs(&[" \t a b \n\x0b\x0c", "\u{a0}x", "   "])],
        );
        assert_eq!(text(&out[0]), ["a b", "\u{a0}x", ""]);
    }

    #[test]
    fn reduce_join_order() {
        // reduce_join([["a","b"],["c","d"]], [0,1], separator=",") -> "a,c,b,d"
        let x = strs(&["a", "b", "c", "d"]).reshape(&[2, 2]).unwrap();
        let r = ReduceJoin {
            keep_dims: false,
            separator: b",".to_vec(),
        };
        assert_eq!(
            text(&eval(&r, vec![x.clone(), Tensor::vector(vec![0i32, 1])])[0]),
            ["a,c,b,d"]
        );
        assert_eq!(
            text(&eval(&r, vec![x.clone(), Tensor::vector(vec![1i32, 0])])[0]),
            ["a,b,c,d"]
        );
        let k = ReduceJoin {
            keep_dims: true,
            separator: b",".to_vec(),
        };
        let out = eval(&k, vec![x, Tensor::vector(vec![-1i32])]);
        assert_eq!(out[0].shape(), [2, 1]);
        assert_eq!(text(&out[0]), ["a,b", "c,d"]);
    }
}

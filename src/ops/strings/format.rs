//! `AsString`. TF reference: core/kernels/as_string_op.cc.

use crate::ops::{take_inputs, BuildCtx, EvalCtx, Op, OpError, Tensors};
use crate::tensor::{DType, Data, Tensor};

/// `AsString`: C `printf` formatting of numbers (`%d`, `%f`, `%e`, `%g` with the `fill` flag,
/// `width` and `precision`). TF quirk: bools are always `true`/`false`, unpadded.
#[derive(Debug)]
pub(super) struct AsString {
    flag: Option<char>,
    width: usize,
    precision: Option<usize>,
    float: char,
}

impl AsString {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        let fill = cx.attr_opt_str("fill").unwrap_or_default();
        let mut it = fill.chars();
        let flag = match (it.next(), it.next()) {
            (None, _) => None,
            (Some(c @ (' ' | '+' | '-' | '0')), None) => Some(c),
            _ => return Err(OpError::invalid(format!("fill {fill:?} is not supported"))),
        };
        let scientific = cx.attr_opt_bool("scientific").unwrap_or(false);
        let shortest = cx.attr_opt_bool("shortest").unwrap_or(false);
        if scientific && shortest {
            return Err(OpError::invalid(
                "cannot select both scientific and shortest",
            ));
        }
        let precision = usize::try_from(cx.attr_opt_i64("precision").unwrap_or(-1)).ok();
        // Rust's formatter refuses precisions above u16::MAX (it panics); C printf has no cap.
        if let Some(p) = precision.filter(|&p| p > usize::from(u16::MAX)) {
            return Err(OpError::Unimplemented(format!(
                "AsString precision {p} above {}",
                u16::MAX
            )));
        }
        Ok(Box::new(AsString {
            flag,
            width: usize::try_from(cx.attr_opt_i64("width").unwrap_or(-1)).unwrap_or(0),
            precision,
            float: if shortest {
                'g'
            } else if scientific {
                'e'
            } else {
                'f'
            },
        }))
    }

    fn pad(&self, body: String, numeric: bool) -> Vec<u8> {
        let neg = body.starts_with('-');
        let mut body = body;
        if !neg && numeric {
            match self.flag {
                Some('+') => body.insert(0, '+'),
                Some(' ') => body.insert(0, ' '),
                _ => {}
            }
        }
        let len = body.chars().count();
        if len >= self.width {
            return body.into_bytes();
        }
        let fill = self.width - len;
        let finite = body.bytes().any(|b| b.is_ascii_digit());
        match self.flag {
            Some('-') => body.push_str(&" ".repeat(fill)),
            Some('0') if numeric && finite => {
                let at = usize::from(body.starts_with(['-', '+', ' ']));
                body.insert_str(at, &"0".repeat(fill));
            }
            _ => body.insert_str(0, &" ".repeat(fill)),
        }
        body.into_bytes()
    }

    fn float(&self, x: f64) -> String {
        if !x.is_finite() {
            return if x.is_nan() {
                "nan".into()
            } else if x < 0.0 {
                "-inf".into()
            } else {
                "inf".into()
            };
        }
        let p = self.precision.unwrap_or(6);
        match self.float {
            'f' => format!("{x:.p$}"),
            'e' => c_exp(x, p),
            _ => {
                let p = p.max(1);
                let e = c_exp(x, p - 1);
                let exp: i64 = e
                    .rsplit('e')
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let s = if exp < -4 || exp >= p as i64 {
                    e
                } else {
                    format!("{x:.*}", (p as i64 - 1 - exp) as usize)
                };
                strip_zeros(s)
            }
        }
    }
}

/// C `%.{p}e`: mantissa, `e`, sign and at least two exponent digits.
fn c_exp(x: f64, p: usize) -> String {
    let s = format!("{x:.p$e}");
    let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
    let e: i64 = e.parse().unwrap_or(0);
    format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
}

/// `%g` without `#`: trailing zeros of the fraction (and a bare `.`) are removed.
fn strip_zeros(s: String) -> String {
    let (m, e) = match s.find('e') {
        Some(i) => (&s[..i], &s[i..]),
        None => (&s[..], ""),
    };
    let m = if m.contains('.') {
        m.trim_end_matches('0').trim_end_matches('.')
    } else {
        m
    };
    format!("{m}{e}")
}

impl Op for AsString {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [input] = take_inputs(inputs)?;
        // Every element is padded to `width`; a float has up to ~330 digits before its
        // `precision` fraction digits, an integer at most 21 characters. Cap the output's
        // bytes before formatting any.
        let digits = match input.dtype() {
            DType::F32 | DType::F64 => self.precision.unwrap_or(6).saturating_add(330),
            _ => 21,
        };
        let per = self.width.max(digits);
        cx.limits()
            .check_alloc(input.len().saturating_mul(per), DType::U8)?;
        let out: Vec<Vec<u8>> = match input.data() {
            Data::Bool(b) => b
                .iter()
                .map(|&v| {
                    if v {
                        b"true".to_vec()
                    } else {
                        b"false".to_vec()
                    }
                })
                .collect(),
            Data::F32(b) => b
                .iter()
                .map(|&v| self.pad(self.float(f64::from(v)), true))
                .collect(),
            Data::F64(b) => b.iter().map(|&v| self.pad(self.float(v), true)).collect(),
            Data::String(b) => b
                .iter()
                .map(|s| {
                    let pad = self.width.saturating_sub(s.len());
                    let mut v = vec![b' '; if self.flag == Some('-') { 0 } else { pad }];
                    v.extend_from_slice(s);
                    v.resize(v.len() + if self.flag == Some('-') { pad } else { 0 }, b' ');
                    v
                })
                .collect(),
            d => {
                if self.precision.is_some() {
                    return Err(OpError::invalid("precision not supported for integers"));
                }
                let v = input
                    .to_i64_vec()
                    .map_err(|_| OpError::dtype(0, "number, bool or string", input.dtype()))?;
                let unsigned = matches!(d, Data::U64(_));
                v.iter()
                    .map(|&x| {
                        let s = if unsigned {
                            (x as u64).to_string()
                        } else {
                            x.to_string()
                        };
                        self.pad(s, true)
                    })
                    .collect()
            }
        };
        Ok(tensors![Tensor::from_strings(input.shape(), out)?])
    }
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
    fn text(t: &Tensor) -> Vec<String> {
        let v = t.as_slice::<crate::tensor::Bytes>().unwrap();
        v.iter()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect()
    }

    #[test]
    fn as_string_formats() {
        let f = |flag, width, precision, float| AsString {
            flag,
            width,
            precision,
            float,
        };
        // as_string([1.5, 123456789.0, 1e-5, 0.0], shortest=True)
        let g = f(None, 0, None, 'g');
        let out = eval(
            &g,
            vec![Tensor::vector(vec![1.5f64, 123456789.0, 1e-5, 0.0])],
        );
        assert_eq!(text(&out[0]), ["1.5", "1.23457e+08", "1e-05", "0"]);
        // as_string([1.5, -2.0], width=8, fill="+", precision=2)
        let out = eval(
            &f(Some('+'), 8, Some(2), 'f'),
            vec![Tensor::vector(vec![1.5f64, -2.0])],
        );
        assert_eq!(text(&out[0]), ["   +1.50", "   -2.00"]);
        let out = eval(
            &f(Some('0'), 6, None, 'f'),
            vec![Tensor::vector(vec![f64::NAN, f64::NEG_INFINITY])],
        );
        assert_eq!(text(&out[0]), ["   nan", "  -inf"]);
        let out = eval(
            &f(Some('0'), 4, None, 'f'),
            vec![Tensor::vector(vec![3i32, -3])],
        );
        assert_eq!(text(&out[0]), ["0003", "-003"]);
        let out = eval(
            &f(None, 6, None, 'f'),
            vec![Tensor::vector(vec![true, false])],
        );
        assert_eq!(text(&out[0]), ["true", "false"]);
        assert_eq!(c_exp(1.23456789, 3), "1.235e+00");
    }
}

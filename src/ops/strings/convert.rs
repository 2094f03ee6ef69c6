//! `StringToNumber`, `EncodeBase64`, `DecodeBase64`: strings to and from other encodings.
//! TF reference: core/kernels/{string_to_number_op,base64_ops}.cc, core/lib/strings/base64.cc.

use super::strings;
use crate::ops::{take_inputs, BuildCtx, EvalCtx, Op, OpError, Tensors};
use crate::tensor::{Bytes, DType, Tensor};

/// `StringToNumber`: parses every element as `out_type`, failing the whole op on the first
/// string that is not a number (TF's `InvalidArgument`, same text).
#[derive(Debug)]
pub(super) struct StringToNumber {
    out: DType,
}

impl StringToNumber {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        let out = cx.attr_opt_type("out_type")?.unwrap_or(DType::F32);
        if !matches!(
            out,
            DType::F32 | DType::F64 | DType::I32 | DType::I64 | DType::U32 | DType::U64
        ) {
            return Err(OpError::Attr {
                name: "out_type".into(),
                what: format!("{out} is not float, double, int32, int64, uint32 or uint64"),
            });
        }
        Ok(Box::new(StringToNumber { out }))
    }
}

/// absl's `StripAsciiWhitespace`: space, `\t`, `\n`, `\v`, `\f`, `\r` at both ends.
fn strip_ascii_space(s: &[u8]) -> &[u8] {
    let sp = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
    let start = s.iter().position(|b| !sp(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !sp(b)).map_or(start, |i| i + 1);
    &s[start..end]
}

/// absl `SimpleAtoi` (what TF 2.x's `SafeStringToNumeric` calls for integers): surrounding
/// ASCII whitespace, one optional `+`/`-`, decimal digits only, overflow is an error. Rust's
/// integer `from_str` takes exactly that sign-and-digits grammar.
fn parse_int<T: std::str::FromStr>(s: &[u8]) -> Option<T> {
    std::str::from_utf8(strip_ascii_space(s)).ok()?.parse().ok()
}

/// absl `SimpleAtof`/`SimpleAtod`: surrounding ASCII whitespace, an optional `+` (but not
/// `+-`), then `absl::from_chars`: decimal with optional fraction and exponent, `inf`,
/// `infinity` and `nan` in any case, and — unlike `strtod` without a locale — hexadecimal
/// (`0x1f`, `0x1.8p1`). Out-of-range values become ±inf or 0, correctly rounded for the
/// target type (Rust's float `from_str` rounds directly to `f32`, as `from_chars<float>` does).
fn parse_float(s: &[u8], f32_out: bool) -> Option<f64> {
    let mut s = strip_ascii_space(s);
    if let Some(rest) = s.strip_prefix(b"+") {
        if rest.first() == Some(&b'-') {
            return None;
        }
        s = rest;
    }
    let (neg, body) = match s.strip_prefix(b"-") {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    if let Some(hex) = body
        .strip_prefix(b"0x")
        .or_else(|| body.strip_prefix(b"0X"))
    {
        let v = parse_hex_float(hex, f32_out)?;
        return Some(if neg { -v } else { v });
    }
    // Rust's grammar also allows a leading '+', which must not follow a '-' here.
    if body.first().is_some_and(|b| matches!(b, b'+' | b'-')) {
        return None;
    }
    let text = std::str::from_utf8(s).ok()?;
    if f32_out {
        text.parse::<f32>().ok().map(f64::from)
    } else {
        text.parse::<f64>().ok()
    }
}

/// The digits after `0x`: `h+[.h*][p[+-]d+]` or `.h+[p...]`, at least one hex digit.
fn parse_hex_float(s: &[u8], f32_out: bool) -> Option<f64> {
    let (mut mant, mut exp2, mut digits, mut seen_point) = (0u64, 0i64, 0usize, false);
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c == b'.' && !seen_point {
            seen_point = true;
        } else if let Some(d) = (c as char).to_digit(16) {
            digits += 1;
            if mant >> 58 == 0 {
                mant = mant << 4 | u64::from(d);
                if seen_point {
                    exp2 -= 4;
                }
            } else {
                // Beyond 58 significant bits: keep a sticky bit, scale instead of shifting.
                mant |= u64::from(d != 0);
                if !seen_point {
                    exp2 += 4;
                }
            }
        } else {
            break;
        }
        i += 1;
    }
    if digits == 0 {
        return None;
    }
    if i < s.len() {
        if !matches!(s[i], b'p' | b'P') {
            return None;
        }
        let e: i64 = std::str::from_utf8(&s[i + 1..]).ok()?.parse().ok()?;
        if !s[i + 1..]
            .iter()
            .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-'))
        {
            return None;
        }
        exp2 = exp2.saturating_add(e);
    }
    let v = mant as f64 * 2f64.powi(exp2.clamp(-2000, 2000) as i32);
    Some(if f32_out { f64::from(v as f32) } else { v })
}

impl Op for StringToNumber {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [input] = take_inputs(inputs)?;
        let shape = input.shape().to_vec();
        let s = strings(&input, 0)?;
        let fail = |b: &Bytes| {
            OpError::invalid(format!(
                "StringToNumberOp could not correctly convert string: {}",
                String::from_utf8_lossy(b)
            ))
        };
        macro_rules! each {
            ($f:expr) => {
                Tensor::from_vec(
                    &shape,
                    s.iter()
                        .map(|b| $f(b).ok_or_else(|| fail(b)))
                        .collect::<Result<Vec<_>, _>>()?,
                )?
            };
        }
        let out = match self.out {
            DType::F32 => each!(|b: &Bytes| parse_float(b, true).map(|v| v as f32)),
            DType::F64 => each!(|b: &Bytes| parse_float(b, false)),
            DType::I32 => each!(|b: &Bytes| parse_int::<i32>(b)),
            DType::I64 => each!(|b: &Bytes| parse_int::<i64>(b)),
            DType::U32 => each!(|b: &Bytes| parse_int::<u32>(b)),
            _ => each!(|b: &Bytes| parse_int::<u64>(b)),
        };
        Ok(tensors![out])
    }
}

/// The web-safe alphabet (RFC 4648 §5) TF uses in both directions.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn encode(s: &[u8], pad: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len().div_ceil(3) * 4);
    for chunk in s.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for k in 0..chars {
            out.push(ALPHABET[(n >> (18 - 6 * k) & 63) as usize]);
        }
        if pad {
            out.resize(out.len() + 4 - chars, b'=');
        }
    }
    out
}

/// `ALPHABET` inverted: byte → 6-bit value, 0xff for bytes outside the alphabet.
const SEXTETS: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 64 {
        t[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    t
};

fn sextet(c: u8) -> Option<u32> {
    match SEXTETS[usize::from(c)] {
        0xff => None,
        v => Some(u32::from(v)),
    }
}

/// TF's `Base64Decode`: web-safe alphabet only; `=` padding is accepted only as the last one
/// or two characters of a final group of four; a final group of 2 or 3 characters stands
/// for 1 or 2 bytes (leftover bits are ignored, so "YR" decodes to "a"); a final group of one
/// character is an error.
fn decode(s: &[u8]) -> Result<Vec<u8>, OpError> {
    let invalid = || OpError::invalid("Invalid character found in base64.");
    let mut out = Vec::with_capacity(s.len() / 4 * 3 + 2);
    let full = if s.is_empty() { 0 } else { (s.len() - 1) / 4 };
    for group in s[..full * 4].chunks_exact(4) {
        let mut n = 0u32;
        for &c in group {
            n = n << 6 | sextet(c).ok_or_else(invalid)?;
        }
        out.extend_from_slice(&n.to_be_bytes()[1..]);
    }
    let mut tail = &s[full * 4..];
    if tail.len() == 4 && tail[3] == b'=' {
        tail = &tail[..3];
        if tail[2] == b'=' {
            tail = &tail[..2];
        }
    }
    match tail.len() {
        0 => {}
        1 => {
            return Err(OpError::invalid(
                "Base64 string's length cannot be mod 4 = 1",
            ))
        }
        len => {
            let mut n = 0u32;
            for &c in tail {
                n = n << 6 | sextet(c).ok_or_else(invalid)?;
            }
            n <<= 6 * (4 - len as u32);
            out.extend_from_slice(&n.to_be_bytes()[1..len]);
        }
    }
    Ok(out)
}

/// `EncodeBase64` (attr `pad`, default false) and `DecodeBase64`.
#[derive(Debug)]
pub(super) struct Base64 {
    /// `Some(pad)` encodes, `None` decodes.
    encode_pad: Option<bool>,
}

impl Base64 {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        let encode_pad =
            (cx.op == "EncodeBase64").then(|| cx.attr_opt_bool("pad").unwrap_or(false));
        Ok(Box::new(Base64 { encode_pad }))
    }
}

impl Op for Base64 {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [input] = take_inputs(inputs)?;
        let out = strings(&input, 0)?
            .iter()
            .map(|s| {
                Ok(Bytes::from(match self.encode_pad {
                    Some(pad) => encode(s, pad),
                    None => decode(s)?,
                }))
            })
            .collect::<Result<Vec<_>, OpError>>()?;
        Ok(tensors![Tensor::from_vec(input.shape(), out)?])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip_and_errors() {
        // Expectations observed from TF 2.21 (tools/make_fixtures.py covers the op end to end).
        assert_eq!(encode(b"a", false), b"YQ");
        assert_eq!(encode(b"ab", true), b"YWI=");
        assert_eq!(encode(b"\xff\xfe\xfd\xfc", true), b"__79_A==");
        assert_eq!(decode(b"YQ").unwrap(), b"a");
        assert_eq!(decode(b"YQ==").unwrap(), b"a");
        assert_eq!(decode(b"YR").unwrap(), b"a");
        assert_eq!(decode(b"YWJjZA==").unwrap(), b"abcd");
        assert_eq!(decode(b"").unwrap(), b"");
        for bad in [
            &b"YQ="[..],
            b"a+b/",
            b"Y Q",
            b"Y",
            b"YQ==YQ==",
            b"=",
            b"YWJjZA=",
        ] {
            assert!(decode(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn numbers_follow_absl() {
        // Expectations observed from TF 2.21's tf.strings.to_number.
        assert_eq!(parse_float(b" +7 ", true), Some(7.0));
        assert_eq!(parse_float(b"0X1f", true), Some(31.0));
        assert_eq!(parse_float(b"-0x10", false), Some(-16.0));
        assert_eq!(parse_float(b"0x1.8p1", false), Some(3.0));
        assert_eq!(parse_float(b"1e39", true), Some(f64::INFINITY));
        assert_eq!(parse_float(b"infinity", true), Some(f64::INFINITY));
        assert!(parse_float(b"NaN", true).is_some_and(f64::is_nan));
        for bad in [
            "", " ", ".", "1e", "1e+", "- 4", "+-1", "0x", "1_000", "12abc", "5\0",
        ] {
            assert_eq!(parse_float(bad.as_bytes(), false), None, "{bad:?}");
        }
        assert_eq!(parse_int::<i32>(b"\x0b+5\t"), Some(5));
        assert_eq!(parse_int::<i32>(b"2147483648"), None);
        assert_eq!(parse_int::<i64>(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_int::<i64>(b"1e3"), None);
    }
}

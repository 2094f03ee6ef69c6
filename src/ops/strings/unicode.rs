//! `UnicodeDecode`, `UnicodeDecodeWithOffsets`, `UnicodeEncode`, `UnicodeTranscode`.
//! TF reference: core/kernels/unicode_ops.cc (which decodes through ICU converters).
//!
//! Decoding follows ICU's converters for the encodings tfhub knows: UTF-8 replaces each
//! maximal invalid subsequence with one error (as `<[u8]>::utf8_chunks` splits them; checked
//! against TF); UTF-16 / UTF-32 (big or little endian) replace a lone surrogate unit or an
//! out-of-range value, and one incomplete sequence at the end of the string. Other ICU
//! encodings are `Unimplemented`.

use super::{splits_tensor, strings, tsplits_attr};
use crate::ops::{take_inputs, BuildCtx, EvalCtx, Op, OpError, Tensors};
use crate::tensor::{DType, Tensor};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Encoding {
    Utf8,
    /// UTF-16; `true` = big endian.
    Utf16(bool),
    /// UTF-32; `true` = big endian.
    Utf32(bool),
}

/// An ICU converter name, compared as ICU does (case-insensitive, ignoring `-`, `_`, ` `).
fn parse_encoding(attr: &str, name: &str) -> Result<Encoding, OpError> {
    let key: String = name
        .chars()
        .filter(|c| !matches!(c, '-' | '_' | ' '))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    Ok(match key.as_str() {
        "utf8" => Encoding::Utf8,
        "utf16be" => Encoding::Utf16(true),
        "utf16le" => Encoding::Utf16(false),
        "utf32be" => Encoding::Utf32(true),
        "utf32le" => Encoding::Utf32(false),
        _ => {
            return Err(OpError::Unimplemented(format!(
                "{attr} {name:?} (tfhub decodes UTF-8, UTF-16-BE/LE and UTF-32-BE/LE)"
            )))
        }
    })
}

/// TF's `UnicodeEncode` / `UnicodeTranscode` take exactly these output encodings.
fn parse_output_encoding(name: &str) -> Result<Encoding, OpError> {
    match name {
        "UTF-8" => Ok(Encoding::Utf8),
        "UTF-16-BE" => Ok(Encoding::Utf16(true)),
        "UTF-32-BE" => Ok(Encoding::Utf32(true)),
        _ => Err(OpError::Attr {
            name: "output_encoding".into(),
            what: format!("{name:?} is not one of \"UTF-8\", \"UTF-16-BE\", \"UTF-32-BE\""),
        }),
    }
}

/// Calls `f(code point, bytes consumed, is_format_error)` for each character of `s`; a
/// format error passes U+FFFD.
fn for_each_char(
    enc: Encoding,
    s: &[u8],
    mut f: impl FnMut(u32, usize, bool) -> Result<(), OpError>,
) -> Result<(), OpError> {
    const BAD: u32 = 0xFFFD;
    match enc {
        Encoding::Utf8 => {
            for chunk in s.utf8_chunks() {
                for c in chunk.valid().chars() {
                    f(c as u32, c.len_utf8(), false)?;
                }
                if !chunk.invalid().is_empty() {
                    f(BAD, chunk.invalid().len(), true)?;
                }
            }
        }
        Encoding::Utf16(be) => {
            let unit = |b: &[u8]| {
                let v = [b[0], b[1]];
                u32::from(if be {
                    u16::from_be_bytes(v)
                } else {
                    u16::from_le_bytes(v)
                })
            };
            let mut i = 0;
            while i < s.len() {
                let rest = &s[i..];
                if rest.len() < 2 {
                    f(BAD, rest.len(), true)?;
                    break;
                }
                let u = unit(rest);
                match u {
                    0xD800..=0xDBFF if rest.len() < 4 => {
                        // A high surrogate cut off by the end of the string: one error for
                        // everything left (ICU's truncated-sequence report).
                        f(BAD, rest.len(), true)?;
                        break;
                    }
                    0xD800..=0xDBFF => {
                        let lo = unit(&rest[2..]);
                        if (0xDC00..=0xDFFF).contains(&lo) {
                            f(0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00), 4, false)?;
                            i += 4;
                        } else {
                            f(BAD, 2, true)?;
                            i += 2;
                        }
                    }
                    0xDC00..=0xDFFF => {
                        f(BAD, 2, true)?;
                        i += 2;
                    }
                    _ => {
                        f(u, 2, false)?;
                        i += 2;
                    }
                }
            }
        }
        Encoding::Utf32(be) => {
            for c in s.chunks(4) {
                match <[u8; 4]>::try_from(c) {
                    Ok(v) => {
                        let u = if be {
                            u32::from_be_bytes(v)
                        } else {
                            u32::from_le_bytes(v)
                        };
                        match char::from_u32(u) {
                            Some(ch) => f(ch as u32, 4, false)?,
                            None => f(BAD, 4, true)?,
                        }
                    }
                    Err(_) => f(BAD, c.len(), true)?,
                }
            }
        }
    }
    Ok(())
}

/// Appends `cp` in `enc`. A surrogate (possible only as a `replacement_char`) is written as a
/// raw unit in UTF-16/32, and as U+FFFD in UTF-8, as ICU's `toUTF8String` does.
fn encode_into(enc: Encoding, cp: u32, out: &mut Vec<u8>) {
    match enc {
        Encoding::Utf8 => {
            let c = char::from_u32(cp).unwrap_or('\u{FFFD}');
            out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
        }
        Encoding::Utf16(be) => {
            let mut units = [0u16; 2];
            let units: &[u16] = match char::from_u32(cp) {
                Some(c) => c.encode_utf16(&mut units),
                None => {
                    units[0] = cp as u16;
                    &units[..1]
                }
            };
            for u in units {
                out.extend_from_slice(&if be { u.to_be_bytes() } else { u.to_le_bytes() });
            }
        }
        Encoding::Utf32(be) => out.extend_from_slice(&if be {
            cp.to_be_bytes()
        } else {
            cp.to_le_bytes()
        }),
    }
}

/// TF's `errors` / `replacement_char` / `replace_control_characters` attrs.
#[derive(Debug, Clone, Copy)]
struct ErrorOptions {
    subst: u32,
    /// `errors = "ignore"`: drop bad characters.
    elide: bool,
    /// `errors = "strict"`: fail on bad characters.
    strict: bool,
    /// Treat C0 controls (`<= 0x1F`) as errors to replace or drop.
    replace_control: bool,
}

impl ErrorOptions {
    fn parse(cx: &BuildCtx<'_>) -> Result<Self, OpError> {
        let policy = cx
            .attr_opt_str("errors")
            .unwrap_or_else(|| "replace".into());
        let (elide, strict) = match policy.as_str() {
            "replace" => (false, false),
            "ignore" => (true, false),
            "strict" => (false, true),
            _ => {
                return Err(OpError::invalid(
                    "errors policy must be one of 'strict', 'replace', or 'ignore'",
                ))
            }
        };
        let subst = cx.attr_opt_i64("replacement_char").unwrap_or(0xFFFD);
        let subst = u32::try_from(subst)
            .ok()
            .filter(|&c| c <= 0x10FFFF)
            .ok_or_else(|| OpError::invalid("replacement_char out of unicode codepoint range"))?;
        Ok(ErrorOptions {
            subst,
            elide,
            strict,
            replace_control: cx
                .attr_opt_bool("replace_control_characters")
                .unwrap_or(false),
        })
    }

    /// TF's `ShouldHandleFormatError`.
    fn handles(&self, cp: u32, format_error: bool) -> bool {
        (self.replace_control && cp <= 0x1F) || format_error
    }
}

fn invalid_formatting() -> OpError {
    OpError::invalid("Invalid formatting on input string")
}

/// `UnicodeDecode` / `UnicodeDecodeWithOffsets`: every string of `input` (any shape,
/// flattened) to its code points, as `row_splits` + `char_values` (+ `char_to_byte_starts`).
#[derive(Debug)]
pub(super) struct UnicodeDecode {
    encoding: Encoding,
    errors: ErrorOptions,
    offsets: bool,
    tsplits: DType,
}

impl UnicodeDecode {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(UnicodeDecode {
            encoding: parse_encoding("input_encoding", &cx.attr_str("input_encoding")?)?,
            errors: ErrorOptions::parse(cx)?,
            offsets: cx.op == "UnicodeDecodeWithOffsets",
            tsplits: tsplits_attr(cx)?,
        }))
    }
}

impl Op for UnicodeDecode {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [input] = take_inputs(inputs)?;
        let input = strings(&input, 0)?;
        // At most one character per input byte.
        let bytes = input.iter().fold(0usize, |a, s| a.saturating_add(s.len()));
        cx.limits().check_alloc(bytes, DType::I64)?;
        let opts = self.errors;
        let mut splits = Vec::with_capacity(input.len() + 1);
        let mut chars: Vec<i32> = Vec::new();
        let mut starts: Vec<i64> = Vec::new();
        splits.push(0i64);
        for s in input {
            let mut offset = 0usize;
            for_each_char(self.encoding, s, |cp, len, bad| {
                if opts.strict && bad {
                    return Err(invalid_formatting());
                }
                let mut cp = cp;
                if opts.handles(cp, bad) {
                    if opts.elide {
                        offset += len;
                        return Ok(());
                    }
                    cp = opts.subst;
                }
                // cp <= 0x10FFFF (a decoded scalar or a checked replacement_char).
                chars.push(cp as i32);
                starts.push(offset as i64);
                offset += len;
                Ok(())
            })?;
            splits.push(chars.len() as i64);
        }
        let n = chars.len();
        let mut out = vec![
            splits_tensor(splits, self.tsplits)?,
            Tensor::from_vec(&[n], chars)?,
        ];
        if self.offsets {
            out.push(splits_tensor(starts, self.tsplits)?);
        }
        Ok(out.into())
    }
}

/// `UnicodeEncode`: a ragged vector of code points (`input_values` int32 + `input_splits`) to
/// one string per row. A value outside `[0, 0x10FFFF]` or a surrogate is invalid.
#[derive(Debug)]
pub(super) struct UnicodeEncode {
    encoding: Encoding,
    errors: ErrorOptions,
}

impl UnicodeEncode {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(UnicodeEncode {
            encoding: parse_output_encoding(&cx.attr_str("output_encoding")?)?,
            errors: ErrorOptions::parse(cx)?,
        }))
    }
}

impl Op for UnicodeEncode {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [values, splits] = take_inputs(inputs)?;
        if values.rank() != 1 || splits.rank() != 1 {
            return Err(OpError::invalid(
                "Both the input_tensor and input_splits should be of rank 1.",
            ));
        }
        let values = values
            .as_slice::<i32>()
            .map_err(|_| OpError::dtype(0, "int32", values.dtype()))?;
        if !matches!(splits.dtype(), DType::I32 | DType::I64) {
            return Err(OpError::dtype(1, "int32 or int64", splits.dtype()));
        }
        let splits = splits.to_i64_vec()?;
        let n = values.len() as i64;
        let (Some(&first), Some(&last)) = (splits.first(), splits.last()) else {
            return Err(OpError::invalid(format!(
                "Input_splits should contain elements, but given input_values has {n} elements"
            )));
        };
        if first != 0 {
            return Err(OpError::invalid(
                "First value in input_splits must be zero.",
            ));
        }
        if last != n {
            return Err(OpError::invalid(
                "Last value in input_splits must be equal to length of input_tensor.",
            ));
        }
        for w in splits.windows(2) {
            if w[1] < w[0] {
                return Err(OpError::invalid(
                    "Values in input_splits must be equal or in ascending order.",
                ));
            }
            if w[1] > n {
                return Err(OpError::invalid(
                    "Values in input_splits must be less than or equal to input_tensor length.",
                ));
            }
        }
        cx.limits()
            .check_alloc(values.len().saturating_mul(4), DType::U8)?;
        let opts = self.errors;
        let mut out = Vec::with_capacity(splits.len() - 1);
        for w in splits.windows(2) {
            let mut s = Vec::new();
            // Checked above: 0 <= w[0] <= w[1] <= n.
            for &v in &values[w[0] as usize..w[1] as usize] {
                let cp = match u32::try_from(v).ok().and_then(char::from_u32) {
                    Some(c) => c as u32,
                    None if opts.strict => {
                        return Err(OpError::invalid(
                            "Code point is out of range for Unicode, or is a surrogate.",
                        ))
                    }
                    None if opts.elide => continue,
                    None => opts.subst,
                };
                encode_into(self.encoding, cp, &mut s);
            }
            out.push(s);
        }
        let rows = out.len();
        Ok(tensors![Tensor::from_strings(&[rows], out)?])
    }
}

/// `UnicodeTranscode`: each string decoded from `input_encoding` and re-encoded in
/// `output_encoding`, keeping the shape.
#[derive(Debug)]
pub(super) struct UnicodeTranscode {
    input: Encoding,
    output: Encoding,
    errors: ErrorOptions,
}

impl UnicodeTranscode {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(UnicodeTranscode {
            input: parse_encoding("input_encoding", &cx.attr_str("input_encoding")?)?,
            output: parse_output_encoding(&cx.attr_str("output_encoding")?)?,
            errors: ErrorOptions::parse(cx)?,
        }))
    }
}

impl Op for UnicodeTranscode {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [input] = take_inputs(inputs)?;
        let shape = input.shape().to_vec();
        let input = strings(&input, 0)?;
        // Each character takes at least one input byte and at most four output bytes.
        let bytes = input.iter().fold(0usize, |a, s| a.saturating_add(s.len()));
        cx.limits()
            .check_alloc(bytes.saturating_mul(4), DType::U8)?;
        let opts = self.errors;
        let mut found_error = false;
        let mut out = Vec::with_capacity(input.len());
        for s in input {
            let mut o = Vec::with_capacity(s.len());
            for_each_char(self.input, s, |cp, _, bad| {
                let mut cp = cp;
                // Unlike decoding, a replaced control character counts as an error for
                // `strict` here (TF's TranslateCodepoints sets the flag for both).
                if opts.handles(cp, bad) {
                    found_error = true;
                    if opts.elide {
                        return Ok(());
                    }
                    cp = opts.subst;
                }
                encode_into(self.output, cp, &mut o);
                Ok(())
            })?;
            out.push(o);
        }
        if opts.strict && found_error {
            return Err(invalid_formatting());
        }
        Ok(tensors![Tensor::from_strings(&shape, out)?])
    }
}

#[cfg(test)]
#[path = "unicode_tests.rs"]
mod tests;

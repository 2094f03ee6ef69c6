//! `StaticRegexReplace`, `RegexReplace`, `StaticRegexFullMatch` and `RegexFullMatch` with RE2
//! semantics on the `regex` crate.
//! TF reference: core/kernels/regex_replace_op.cc (RE2 `Replace` / `GlobalReplace`).
//!
//! Differences between RE2 and the `regex` crate are bridged here: RE2's Perl classes `\s`,
//! `\d`, `\w` and `\b` are ASCII-only (and RE2's `\s` excludes `\v`), so they are rewritten to
//! explicit ASCII classes; `\Q...\E` is expanded; a literal `[` inside a class is escaped;
//! the rewrite string's `\0`..`\9` are parsed here (a `$` in it stays literal, as in RE2); and
//! the global-replace loop is RE2's own (an empty match right after a match is skipped, the scan
//! advances by one UTF-8 character, or one byte where the input is not UTF-8).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use regex::bytes::{Captures, Regex, RegexBuilder};

use super::{map_strings, scalar_string};
use crate::ops::{take_inputs, BuildCtx, EvalCtx, Op, OpError, Tensors};
use crate::tensor::{Bytes, Tensor};

/// RE2's default `max_mem` is 8 MiB; the compiled program may not exceed about that.
const SIZE_LIMIT: usize = 8 << 20;
/// Compiled patterns a `RegexReplace` node keeps (cleared when full).
const CACHE_SIZE: usize = 64;

/// A piece of an RE2 rewrite string.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Lit(Vec<u8>),
    Group(usize),
}

/// A compiled pattern with its parsed rewrite.
#[derive(Debug)]
struct Replacer {
    re: Regex,
    rewrite: Vec<Piece>,
}

impl Replacer {
    fn new(pattern: &[u8], rewrite: &[u8]) -> Result<Replacer, OpError> {
        let re = compile_re2(pattern, false)?;
        let rewrite = parse_rewrite(rewrite, re.captures_len() - 1)?;
        Ok(Replacer { re, rewrite })
    }

    fn expand(&self, caps: &Captures<'_>, out: &mut Vec<u8>) {
        for p in &self.rewrite {
            match p {
                Piece::Lit(l) => out.extend_from_slice(l),
                Piece::Group(g) => {
                    if let Some(m) = caps.get(*g) {
                        out.extend_from_slice(m.as_bytes());
                    }
                }
            }
        }
    }

    /// RE2 `Replace` (first match) or `GlobalReplace`; leaves `s` untouched without a match.
    fn replace(&self, s: &mut Vec<u8>, global: bool) {
        let mut out = Vec::new();
        let (mut p, mut last_end, mut count) = (0, None, 0);
        while p <= s.len() && (global || count == 0) {
            let Some(caps) = self.re.captures_at(s, p) else {
                break;
            };
            let m = caps.get(0).expect("group 0 always participates");
            out.extend_from_slice(&s[p..m.start()]);
            if m.is_empty() && Some(m.start()) == last_end {
                // RE2: no empty match right where the previous one ended; copy one character
                // (one byte if it is not valid UTF-8) and move on.
                let q = m.start();
                let n = utf8_len(&s[q..]);
                out.extend_from_slice(&s[q..q + n]);
                p = q + n.max(1);
                continue;
            }
            self.expand(&caps, &mut out);
            p = m.end();
            last_end = Some(p);
            count += 1;
        }
        if count == 0 {
            return;
        }
        if p < s.len() {
            out.extend_from_slice(&s[p..]);
        }
        *s = out;
    }
}

/// Length of the UTF-8 character at the start of `s`, or 1 if it is not valid UTF-8
/// (0 for an empty slice).
fn utf8_len(s: &[u8]) -> usize {
    let Some(&b) = s.first() else { return 0 };
    let n = match b {
        0x00..=0x7f => return 1,
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return 1,
    };
    match s.get(..n).map(std::str::from_utf8) {
        Some(Ok(_)) => n,
        _ => 1,
    }
}

/// Parses an RE2 rewrite: `\0`..`\9` are groups, `\\` is a backslash, any other escape is an
/// error, and everything else (including `$`) is literal.
fn parse_rewrite(rw: &[u8], groups: usize) -> Result<Vec<Piece>, OpError> {
    let mut pieces = Vec::new();
    let mut lit = Vec::new();
    let mut it = rw.iter();
    while let Some(&c) = it.next() {
        if c != b'\\' {
            lit.push(c);
            continue;
        }
        match it.next() {
            Some(b'\\') => lit.push(b'\\'),
            Some(&d) if d.is_ascii_digit() => {
                let g = usize::from(d - b'0');
                if g > groups {
                    return Err(OpError::invalid(format!(
                        "rewrite asks for group {g} but the pattern has {groups} groups"
                    )));
                }
                if !lit.is_empty() {
                    pieces.push(Piece::Lit(std::mem::take(&mut lit)));
                }
                pieces.push(Piece::Group(g));
            }
            _ => {
                return Err(OpError::invalid(
                    "invalid rewrite pattern: bad backslash escape",
                ))
            }
        }
    }
    if !lit.is_empty() {
        pieces.push(Piece::Lit(lit));
    }
    Ok(pieces)
}

/// Rewrites an RE2 pattern into `regex` crate syntax with the same meaning.
fn translate_re2(p: &str) -> Result<String, OpError> {
    const SPACE: &str = r"[\t\n\x0C\r ]";
    const NOT_SPACE: &str = r"[^\t\n\x0C\r ]";
    let mut out = String::with_capacity(p.len() + 16);
    let mut chars = p.chars().peekable();
    // Inside `[...]`: the position (in chars) since the class opened, to know whether `]` or
    // `^` is literal there.
    let mut class: Option<usize> = None;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(e) = chars.next() else {
                    return Err(OpError::invalid("pattern ends with a backslash"));
                };
                match e {
                    's' => out.push_str(SPACE),
                    'S' => out.push_str(NOT_SPACE),
                    'd' => out.push_str("[0-9]"),
                    'D' => out.push_str("[^0-9]"),
                    'w' => out.push_str("[0-9A-Za-z_]"),
                    'W' => out.push_str("[^0-9A-Za-z_]"),
                    'b' if class.is_none() => out.push_str(r"(?-u:\b)"),
                    'B' if class.is_none() => out.push_str(r"(?-u:\B)"),
                    'C' => return Err(OpError::Unimplemented(r"RE2 \C (any byte)".into())),
                    // RE2's Unicode tables are at 15.x, the `regex` crate's are newer: a
                    // property class is pinned to the code points assigned by Unicode 15.1,
                    // so characters added since (a Unicode 16 `\p{Mn}`, `\p{P}`) do not
                    // match, as in TF.
                    'p' | 'P' => {
                        let mut name = String::new();
                        if chars.peek() == Some(&'{') {
                            for q in chars.by_ref() {
                                name.push(q);
                                if q == '}' {
                                    break;
                                }
                            }
                        } else if let Some(q) = chars.next() {
                            name.push(q);
                        }
                        if name == "{Any}" {
                            out.push('\\');
                            out.push(e);
                            out.push_str(&name);
                        } else {
                            let neg = if e == 'P' { "^" } else { "" };
                            // U+1171E AHOM CONSONANT SIGN MEDIAL RA was Mn up to 15.1 (Mc
                            // since 16.0); the only such change the BERT classes (P, Mn,
                            // Cc, Cf) see over all code points (tests/bert.rs sweep).
                            let extra = if name == "{Mn}" { r"\x{1171E}" } else { "" };
                            out.push_str(&format!("[{neg}[\\p{name}&&\\p{{Age=V15_1}}]{extra}]"));
                        }
                    }
                    'Q' => {
                        let mut lit = String::new();
                        while let Some(q) = chars.next() {
                            if q == '\\' && chars.peek() == Some(&'E') {
                                chars.next();
                                break;
                            }
                            lit.push(q);
                        }
                        out.push_str(&regex::escape(&lit));
                    }
                    _ => {
                        out.push('\\');
                        out.push(e);
                    }
                }
                if let Some(n) = class.as_mut() {
                    *n += 1;
                }
            }
            '[' if class.is_none() => {
                out.push('[');
                class = Some(0);
                if chars.peek() == Some(&'^') {
                    chars.next();
                    out.push('^');
                }
            }
            '[' if chars.peek() == Some(&':') => {
                // POSIX class `[:name:]` inside a bracket expression: copy through `:]`.
                out.push('[');
                for q in chars.by_ref() {
                    out.push(q);
                    if q == ']' {
                        break;
                    }
                }
                class = class.map(|n| n + 1);
            }
            ']' if class.is_some_and(|n| n > 0) => {
                out.push(']');
                class = None;
            }
            // Literal inside a class in RE2, but nesting or set operators in `regex`.
            '[' | '&' | '~' if class.is_some() => {
                out.push('\\');
                out.push(c);
                class = class.map(|n| n + 1);
            }
            '-' if class.is_some() && chars.peek() == Some(&'-') => {
                out.push_str(r"-\-");
                chars.next();
                class = class.map(|n| n + 2);
            }
            _ => {
                if c == ']' && class == Some(0) {
                    out.push_str(r"\]");
                } else {
                    out.push(c);
                }
                class = class.map(|n| n + 1);
            }
        }
    }
    Ok(out)
}

/// `StaticRegexReplace`: pattern and rewrite are attributes, compiled once at load.
#[derive(Debug)]
pub(super) struct StaticRegexReplace {
    replacer: Replacer,
    global: bool,
}

impl StaticRegexReplace {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        let pattern = cx.attr_opt_bytes("pattern").unwrap_or_default().to_vec();
        let rewrite = cx.attr_opt_bytes("rewrite").unwrap_or_default().to_vec();
        Ok(Box::new(StaticRegexReplace {
            replacer: Replacer::new(&pattern, &rewrite)?,
            global: cx.attr_opt_bool("replace_global").unwrap_or(true),
        }))
    }
}

impl Op for StaticRegexReplace {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [input] = take_inputs(inputs)?;
        Ok(tensors![map_strings(input, |s| {
            self.replacer.replace(s, self.global)
        })?])
    }
}

/// `(pattern, rewrite)` bytes.
type PatternKey = (Vec<u8>, Vec<u8>);

/// `RegexReplace`: pattern and rewrite are scalar inputs; compiled patterns are cached.
#[derive(Debug)]
pub(super) struct RegexReplace {
    global: bool,
    cache: Mutex<HashMap<PatternKey, Arc<Replacer>>>,
}

impl RegexReplace {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(RegexReplace {
            global: cx.attr_opt_bool("replace_global").unwrap_or(true),
            cache: Mutex::new(HashMap::new()),
        }))
    }

    fn replacer(&self, pattern: Vec<u8>, rewrite: Vec<u8>) -> Result<Arc<Replacer>, OpError> {
        let key = (pattern, rewrite);
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = cache.get(&key) {
            return Ok(r.clone());
        }
        let r = Arc::new(Replacer::new(&key.0, &key.1)?);
        if cache.len() >= CACHE_SIZE {
            cache.clear();
        }
        cache.insert(key, r.clone());
        Ok(r)
    }
}

impl Op for RegexReplace {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [input, pattern, rewrite] = take_inputs(inputs)?;
        let r = self.replacer(
            scalar_string(&pattern, 1, "pattern")?.to_vec(),
            scalar_string(&rewrite, 2, "rewrite")?.to_vec(),
        )?;
        Ok(tensors![map_strings(input, |s| r.replace(s, self.global))?])
    }
}

/// Compiles an RE2 pattern (translated to the `regex` crate's syntax, under RE2's memory
/// budget); `full` anchors it at both ends, for `RE2::FullMatch`.
pub(crate) fn compile_re2(pattern: &[u8], full: bool) -> Result<Regex, OpError> {
    let pattern = std::str::from_utf8(pattern)
        .map_err(|_| OpError::invalid("regex pattern is not valid UTF-8"))?;
    let translated = translate_re2(pattern)?;
    let source = if full {
        format!(r"\A(?:{translated})\z")
    } else {
        translated
    };
    RegexBuilder::new(&source)
        .size_limit(SIZE_LIMIT)
        .build()
        .map_err(|e| OpError::invalid(format!("invalid pattern {pattern:?}: {e}")))
}

fn full_match_all(re: &Regex, input: &Tensor) -> Result<Tensor, OpError> {
    let out: Vec<bool> = super::strings(input, 0)?
        .iter()
        .map(|s| re.is_match(s))
        .collect();
    Ok(Tensor::from_vec(input.shape(), out)?)
}

/// `StaticRegexFullMatch`: does the whole string match the `pattern` attribute (compiled once
/// at load)? TF reference: core/kernels/regex_full_match_op.cc.
#[derive(Debug)]
pub(super) struct StaticRegexFullMatch(Regex);

impl StaticRegexFullMatch {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        let pattern = cx.attr_opt_bytes("pattern").unwrap_or_default();
        Ok(Box::new(StaticRegexFullMatch(compile_re2(pattern, true)?)))
    }
}

impl Op for StaticRegexFullMatch {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [input] = take_inputs(inputs)?;
        Ok(tensors![full_match_all(&self.0, &input)?])
    }
}

/// `RegexFullMatch`: the pattern is a scalar input; the last compiled pattern is kept.
#[derive(Debug, Default)]
pub(super) struct RegexFullMatch {
    last: Mutex<Option<(Bytes, Arc<Regex>)>>,
}

impl RegexFullMatch {
    pub(super) fn build(_: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::<RegexFullMatch>::default())
    }
}

impl Op for RegexFullMatch {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [input, pattern] = take_inputs(inputs)?;
        let pattern = scalar_string(&pattern, 1, "pattern")?;
        let re = {
            let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
            match &*last {
                Some((p, re)) if *p == pattern => re.clone(),
                _ => {
                    let re = Arc::new(compile_re2(&pattern, true)?);
                    *last = Some((pattern, re.clone()));
                    re
                }
            }
        };
        Ok(tensors![full_match_all(&re, &input)?])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn re(pattern: &str, rewrite: &str, s: &[u8], global: bool) -> Vec<u8> {
        let r = Replacer::new(pattern.as_bytes(), rewrite.as_bytes()).unwrap();
        let mut v = s.to_vec();
        r.replace(&mut v, global);
        v
    }

    /// Expected values from `gen_string_ops.static_regex_replace(input=[s], pattern=...,
    /// rewrite=..., replace_global=...)` in TF 2.21.
    #[test]
    fn matches_re2_semantics() {
        assert_eq!(re("b*", "-", b"abc", true), b"-a-c-");
        assert_eq!(re("b*", "-", b"abc", false), b"-abc");
        assert_eq!(re("x*", "-", b"abc", true), b"-a-b-c-");
        assert_eq!(
            re("", "-", "h\u{e9}llo".as_bytes(), true),
            "-h-\u{e9}-l-l-o-".as_bytes()
        );
        assert_eq!(re("(a)(b)", r"\2\1\0$1", b"xaby", true), b"xbaab$1y");
        assert_eq!(
            re(r"\s+", "_", b"a\x0bb\x0cc\xc2\xa0d\te", true),
            b"a\x0bb_c\xc2\xa0d_e"
        );
        assert_eq!(
            re(r"\d", "#", "1\u{663}".as_bytes(), true),
            "#\u{663}".as_bytes()
        );
        assert_eq!(
            re(r"\w+", "W", "h\u{e9}llo".as_bytes(), true),
            "W\u{e9}W".as_bytes()
        );
        assert_eq!(
            re(r"\bh", "X", "h\u{e9}h h".as_bytes(), true),
            "X\u{e9}X X".as_bytes()
        );
        let s = "a,b!c\u{ab}d\u{bb}e\u{2026}f$g+h";
        assert_eq!(re(r"\pP", " ", s.as_bytes(), true), b"a b c d e f$g+h");
        assert_eq!(
            re("[[:punct:]]", "", "a,b!c\u{ab}".as_bytes(), true),
            "abc\u{ab}".as_bytes()
        );
        let s = "STRASSE Stra\u{df}e STRA\u{df}E";
        assert_eq!(
            re("(?i)stra\u{df}e", "X", s.as_bytes(), true),
            b"STRASSE X X"
        );
        assert_eq!(re(r"a\\b", "X", br"a\b", true), b"X");
        assert_eq!(re("^ | $", "", b" a b ", true), b"a b");
    }

    #[test]
    fn invalid_utf8_input() {
        // static_regex_replace(input=[b"a\xffb\xc3\xa9 .x"], pattern=".", rewrite="X")
        assert_eq!(re(".", "X", b"a\xffb\xc3\xa9 .x", true), b"X\xffXXXXX");
        assert_eq!(
            re("", "-", b"a\xffb\xc3\xa9 .x", true),
            b"-a-\xff-b-\xc3\xa9- -.-x-"
        );
    }

    #[test]
    fn translation_and_errors() {
        assert_eq!(translate_re2(r"[]a[]").unwrap(), r"[\]a\[]");
        assert_eq!(
            translate_re2(r"[^\s[:alpha:]]").unwrap(),
            r"[^[\t\n\x0C\r ][:alpha:]]"
        );
        assert_eq!(translate_re2(r"\Q.*\E+").unwrap(), r"\.\*+");
        assert!(Replacer::new(b"(a)", br"\2").is_err());
        assert!(Replacer::new(b"a", br"\x").is_err());
        assert!(Replacer::new(b"(", b"").is_err());
    }
}

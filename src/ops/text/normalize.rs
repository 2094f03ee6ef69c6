//! `CaseFoldUTF8` and `NormalizeUTF8` (tensorflow_text core/kernels/normalize_kernels.cc) on
//! ICU4X's normalizer and case mapper (pure Rust ports of ICU's data and algorithms).
//!
//! tensorflow_text runs ICU's `Normalizer2` over each string: `CaseFoldUTF8` is ICU's
//! `NFKC_Casefold` instance (NFKC + full case folding + removal of Default_Ignorable code
//! points), not a lowercasing. ICU4X has no NFKC_Casefold normalizer, so it is built here from
//! its definition: each character maps to the fixpoint of `remove_DI(NFKC(fold(NFKC(c))))`,
//! then the whole string is recomposed to NFC (which is what a Normalizer2 with the
//! `nfkc_cf` data does: decompose through the mapping, reorder, compose).
//!
//! TF quirk copied: ill-formed UTF-8 is not an error. ICU copies each maximal ill-formed
//! subsequence verbatim and nothing composes or reorders across it, so each well-formed run is
//! normalized on its own and the raw bytes are re-joined around it.

use std::borrow::Cow;
use std::sync::OnceLock;

use icu_casemap::CaseMapperBorrowed;
use icu_normalizer::{ComposingNormalizerBorrowed, DecomposingNormalizerBorrowed};
use icu_properties::props::DefaultIgnorableCodePoint;
use icu_properties::{CodePointSetData, CodePointSetDataBorrowed};

use super::map_bytes;
use crate::ops::{take_inputs, BuildCtx, EvalCtx, Op, OpError, Tensors};

/// A Unicode normalization form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    Nfc,
    Nfd,
    Nfkc,
    Nfkd,
    /// ICU's NFKC_Casefold (`CaseFoldUTF8`).
    NfkcCasefold,
}

impl Form {
    /// Normalizes one well-formed string.
    pub(crate) fn apply<'a>(self, s: &'a str) -> Cow<'a, str> {
        match self {
            Form::Nfc => ComposingNormalizerBorrowed::new_nfc().normalize(s),
            Form::Nfkc => ComposingNormalizerBorrowed::new_nfkc().normalize(s),
            Form::Nfd => DecomposingNormalizerBorrowed::new_nfd().normalize(s),
            Form::Nfkd => DecomposingNormalizerBorrowed::new_nfkd().normalize(s),
            Form::NfkcCasefold => nfkc_casefold(s),
        }
    }

    /// Normalizes a well-formed run. Characters TF's ICU (Unicode 16) does not know are
    /// unassigned there: no decomposition, no case mapping, combining class 0, so nothing
    /// composes or reorders across them. ICU4X's data is newer, so such characters are copied
    /// verbatim and the text between them normalized on its own.
    fn apply_run(self, v: &str, out: &mut Vec<u8>) {
        if v.is_ascii() {
            out.extend_from_slice(self.apply(v).as_bytes());
            return;
        }
        let mut last = 0;
        for m in newer_than_icu().find_iter(v) {
            out.extend_from_slice(self.apply(&v[last..m.start()]).as_bytes());
            out.extend_from_slice(m.as_str().as_bytes());
            last = m.end();
        }
        out.extend_from_slice(self.apply(&v[last..]).as_bytes());
    }

    /// Normalizes a byte string: well-formed runs are normalized separately; each maximal
    /// ill-formed subsequence (as `Utf8Error::error_len` cuts them, like ICU's `U8_NEXT`) is
    /// copied unchanged and stops composition across it.
    pub(crate) fn apply_bytes(self, s: &[u8], out: &mut Vec<u8>) {
        let mut rest = s;
        loop {
            match std::str::from_utf8(rest) {
                Ok(v) => {
                    self.apply_run(v, out);
                    return;
                }
                Err(e) => {
                    let good = e.valid_up_to();
                    let v = std::str::from_utf8(&rest[..good]).unwrap_or_default();
                    self.apply_run(v, out);
                    let bad = e.error_len().unwrap_or(rest.len() - good);
                    out.extend_from_slice(&rest[good..good + bad]);
                    rest = &rest[good + bad..];
                }
            }
        }
    }
}

/// Characters not assigned in Unicode 16.0 (the `regex` crate's Age data is at 16.0, ICU4X's
/// normalization data may be newer), Default_Ignorable code points excepted.
fn newer_than_icu() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    // Unassigned Default_Ignorable code points are still removed by ICU's NFKC_Casefold,
    // so they are not boundaries.
    RE.get_or_init(|| {
        regex::Regex::new(r"[^\p{Age=V16_0}\p{Default_Ignorable_Code_Point}]+")
            .expect("static pattern")
    })
}

fn default_ignorable() -> CodePointSetDataBorrowed<'static> {
    CodePointSetData::new::<DefaultIgnorableCodePoint>()
}

/// The NFKC_Casefold mapping of one character (`None`: it maps to itself).
fn casefold_char(c: char) -> Option<String> {
    let di = default_ignorable();
    if di.contains(c) {
        return Some(String::new());
    }
    let nfkc = ComposingNormalizerBorrowed::new_nfkc();
    let fold = CaseMapperBorrowed::new();
    let mut buf = [0u8; 4];
    let one: &str = c.encode_utf8(&mut buf);
    let mut cur: String = one.to_owned();
    // The mapping is closed after at most a few rounds (NFKC can expose new foldable
    // characters and folding can produce new compatibility characters).
    for _ in 0..4 {
        let a = nfkc.normalize(&cur);
        let b = fold.fold_string(&a);
        let c2 = nfkc.normalize(&b);
        let next: String = c2.chars().filter(|&ch| !di.contains(ch)).collect();
        if next == cur {
            break;
        }
        cur = next;
    }
    (cur != one).then_some(cur)
}

/// ICU's NFKC_Casefold of a well-formed string.
fn nfkc_casefold(s: &str) -> Cow<'_, str> {
    // ASCII fast path: only A-Z change.
    if s.is_ascii() {
        if !s.bytes().any(|b| b.is_ascii_uppercase()) {
            return Cow::Borrowed(s);
        }
        return Cow::Owned(s.to_ascii_lowercase());
    }
    let mut mapped = String::with_capacity(s.len());
    let mut changed = false;
    for c in s.chars() {
        if c.is_ascii() {
            let l = c.to_ascii_lowercase();
            changed |= l != c;
            mapped.push(l);
        } else if let Some(m) = casefold_char(c) {
            changed = true;
            mapped.push_str(&m);
        } else {
            mapped.push(c);
        }
    }
    let nfc = ComposingNormalizerBorrowed::new_nfc();
    match nfc.normalize(&mapped) {
        Cow::Borrowed(_) if !changed => Cow::Borrowed(s),
        Cow::Borrowed(_) => Cow::Owned(mapped),
        Cow::Owned(o) => Cow::Owned(o),
    }
}

/// The `normalization_form` attr of `NormalizeUTF8` and `NormalizeUTF8WithOffsetsMap`: TF
/// upper-cases it in the constructor but reports an unknown form only when the kernel first
/// runs (each op with its own message), so an unknown form is kept as `Err(upper-cased name)`.
pub(crate) fn parse_form(cx: &BuildCtx<'_>) -> Result<Result<Form, String>, OpError> {
    let f = cx.attr_str("normalization_form")?.to_ascii_uppercase();
    Ok(match f.as_str() {
        "NFC" => Ok(Form::Nfc),
        "NFD" => Ok(Form::Nfd),
        "NFKC" => Ok(Form::Nfkc),
        "NFKD" => Ok(Form::Nfkd),
        _ => Err(f),
    })
}

/// `CaseFoldUTF8` (no attrs) and `NormalizeUTF8` (`normalization_form`): string -> string of
/// the same shape.
#[derive(Debug)]
pub(super) struct Normalize {
    form: Result<Form, String>,
}

impl Normalize {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        let form = if cx.op == "CaseFoldUTF8" {
            Ok(Form::NfkcCasefold)
        } else {
            // TF upper-cases the attr in the constructor but reports an unknown form only
            // when the kernel first runs.
            parse_form(cx)?
        };
        Ok(Box::new(Normalize { form }))
    }
}

impl Op for Normalize {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [input] = take_inputs(inputs)?;
        let form = match &self.form {
            Ok(f) => *f,
            // Sic: TF's message spells "requrested".
            Err(f) => {
                return Err(OpError::invalid(format!(
                    "Unknown normalization form requrested: {f}"
                )))
            }
        };
        Ok(tensors![
            map_bytes(input, |s, out| form.apply_bytes(s, out))?
        ])
    }
}

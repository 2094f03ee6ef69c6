//! `NormalizeUTF8WithOffsetsMap` and `FindSourceOffsets` (tensorflow_text
//! core/kernels/normalize_kernels.cc): normalization that remembers where each part of the
//! output came from, and the lookup of normalized offsets back into the source.
//!
//! TF runs ICU's `Normalizer2::normalizeUTF8` with an `icu::Edits` recorder and keeps the
//! Edits in a variant (`OffsetMapVariant`). `FindSourceOffsets` then asks the Edits' fine
//! changes iterator `sourceIndexFromDestinationIndex`: an offset inside a replaced span maps
//! to the end of its source, one inside an unchanged span maps one to one. So the answer
//! depends on exactly which spans ICU records as replaced, which is an implementation detail
//! of ICU's normalizer loops (`composeUTF8` for NFC/NFKC, `decomposeUTF8` for NFD/NFKD), not
//! of Unicode: a whole composition segment becomes one replacement (NFC "a\u0301\u0323" is
//! one 5 -> 5 byte change), NFD leaves an unchanged starter outside the change, a
//! singleton followed by a boundary is a change of its own. This module ports those loops
//! with ICU's per-code-point classification (its `norm16` categories, derived as ICU's data
//! builder `gennorm2` derives them) computed from ICU4X's Unicode data, and normalizes each
//! replaced segment with ICU4X. Code points newer than ICU 77's Unicode 16 are inert, as
//! they are to TF's ICU; ill-formed bytes are inert and copied.
//!
//! The offsets map travels as a `variant` element whose [`Handle`] holds an [`OffsetMap`]
//! (the spans of ICU's fine iterator); it only flows between these two ops.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use icu_normalizer::properties::{
    CanonicalCombiningClassMapBorrowed, CanonicalCompositionBorrowed,
    CanonicalDecompositionBorrowed, Decomposed,
};
use icu_normalizer::{ComposingNormalizerBorrowed, DecomposingNormalizerBorrowed};

use super::normalize::{parse_form, Form};
use super::strings;
use crate::ops::{take_inputs, BuildCtx, EvalCtx, Op, OpError, Tensors};
use crate::tensor::{Bytes, DType, Data, Handle, Tensor};

/// The variant's type name in TF (`OffsetMapVariant::TypeName`).
const TYPE_NAME: &str = "(anonymous)::OffsetMapVariant";

/// One record of ICU's fine edits iterator: `old` source bytes became `new` output bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    old: u64,
    new: u64,
    changed: bool,
}

/// The recorded edits of one string (TF's `OffsetMapVariant`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct OffsetMap {
    spans: Vec<Span>,
}

impl OffsetMap {
    /// `Edits::addUnchanged`: merges into a preceding unchanged record.
    fn unchanged(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        if let Some(last) = self.spans.last_mut() {
            if !last.changed {
                last.old += n as u64;
                last.new += n as u64;
                return;
            }
        }
        self.spans.push(Span {
            old: n as u64,
            new: n as u64,
            changed: false,
        });
    }

    /// `Edits::addReplace`: every replacement is its own record for the fine iterator.
    fn replace(&mut self, old: usize, new: usize) {
        if old == 0 && new == 0 {
            return;
        }
        self.spans.push(Span {
            old: old as u64,
            new: new as u64,
            changed: true,
        });
    }

    /// ICU `Edits::Iterator::sourceIndexFromDestinationIndex` on the fine changes iterator.
    /// TF passes the int64 offset as ICU's `int32_t` (truncated); a negative one gives 0,
    /// one at or past the end gives the source length.
    pub(crate) fn source_index(&self, dest: i64) -> i64 {
        // TF quirk copied: the int64 offset is narrowed to int32 by the C++ call.
        let i = dest as i32;
        if i < 0 {
            return 0;
        }
        let i = i as u64;
        let (mut src, mut dst) = (0u64, 0u64);
        for s in &self.spans {
            if i < dst + s.new {
                let r = if i == dst {
                    src
                } else if s.changed {
                    src + s.old
                } else {
                    src + (i - dst)
                };
                return r as i64;
            }
            src += s.old;
            dst += s.new;
        }
        src as i64
    }
}

// ---------------------------------------------------------------------------------------
// ICU's per-code-point normalization classes (normalizer2impl.h norm16 ranges), in the
// order of their norm16 values, which the loops below compare.
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// No data (also ill-formed bytes and code points unknown to Unicode 16).
    Inert,
    JamoL,
    /// No mapping, ccc 0, combines forward.
    YesYesFwd,
    /// Round-trip mapping, combines forward (also Hangul LV).
    YesNoFwd,
    /// Round-trip mapping only (also Hangul LVT).
    YesNoOnly,
    /// One-way mapping that is already composed and starts at a boundary.
    NoNoCompYes,
    /// One-way mapping that starts at a boundary but recomposes.
    NoNoCompBoundaryBefore,
    /// One-way mapping starting with a non-starter or a backward-combining character.
    NoNoCompNoMaybeCc,
    /// One-way mapping to nothing.
    NoNoEmpty,
    /// Combines backward and forward.
    MaybeFwd,
    /// Combines backward (any ccc).
    MaybeSimple,
    /// Hangul Jamo V or T.
    JamoVt,
    /// No mapping, ccc != 0, does not combine.
    YesYesWithCc,
}

#[derive(Debug, Clone, Copy)]
struct Props {
    kind: Kind,
    /// ccc of the character (`getCCFromYesOrMaybe`).
    cc: u8,
    /// `HAS_COMP_BOUNDARY_AFTER`.
    boundary_after: bool,
    /// ccc of the first / last character of the mapping (1 / 255 for an empty one).
    lead_cc: u8,
    trail_cc: u8,
}

impl Props {
    const INERT: Props = Props {
        kind: Kind::Inert,
        cc: 0,
        boundary_after: true,
        lead_cc: 0,
        trail_cc: 0,
    };

    /// `isCompYesAndZeroCC` (norm16 < minNoNo).
    fn comp_yes_and_zero_cc(&self) -> bool {
        self.kind <= Kind::YesNoOnly
    }
    /// `isMaybeOrNonZeroCC` (norm16 >= minMaybeYes).
    fn maybe_or_nonzero_cc(&self) -> bool {
        self.kind >= Kind::MaybeFwd
    }
    /// `norm16HasCompBoundaryBefore`.
    fn comp_boundary_before(&self) -> bool {
        self.kind < Kind::NoNoCompNoMaybeCc
    }
    /// `isMostDecompYesAndZeroCC`.
    fn most_decomp_yes_and_zero_cc(&self) -> bool {
        self.kind < Kind::YesNoFwd
            || (self.kind == Kind::MaybeSimple && self.cc == 0)
            || self.kind == Kind::JamoVt
    }
    /// `norm16HasDecompBoundaryBefore`.
    fn decomp_boundary_before(&self) -> bool {
        match self.kind {
            k if k < Kind::NoNoCompNoMaybeCc => true,
            Kind::NoNoCompNoMaybeCc | Kind::NoNoEmpty => self.lead_cc == 0,
            Kind::MaybeFwd | Kind::JamoVt => true,
            Kind::MaybeSimple => self.cc == 0,
            _ => false,
        }
    }
}

/// Canonical composition pairs (primary composites of Unicode 16, Hangul excluded).
struct Compositions {
    /// starter -> trail characters it composes with.
    fwd: HashMap<char, Vec<char>>,
    back: HashSet<char>,
}

fn known_to_icu(c: char) -> bool {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    let re = RE.get_or_init(|| regex::Regex::new(r"^\p{Age=V16_0}$").expect("static pattern"));
    let mut b = [0u8; 4];
    re.is_match(c.encode_utf8(&mut b))
}

fn is_hangul(c: u32) -> bool {
    (0xAC00..=0xD7A3).contains(&c)
}

fn compositions() -> &'static Compositions {
    static C: OnceLock<Compositions> = OnceLock::new();
    C.get_or_init(|| {
        let dec = CanonicalDecompositionBorrowed::new();
        let comp = CanonicalCompositionBorrowed::new();
        let mut fwd: HashMap<char, Vec<char>> = HashMap::new();
        let mut back = HashSet::new();
        for cp in 0xC0..=0x10FFFFu32 {
            let Some(c) = char::from_u32(cp) else {
                continue;
            };
            if is_hangul(cp) {
                continue;
            }
            if let Decomposed::Expansion(a, b) = dec.decompose(c) {
                if comp.compose(a, b) == Some(c) && known_to_icu(c) {
                    fwd.entry(a).or_default().push(b);
                    back.insert(b);
                }
            }
        }
        Compositions { fwd, back }
    })
}

/// The offsets code reads the form's two halves: which of ICU's two data sets (`nfc` for
/// NFC/NFD, `nfkc` for NFKC/NFKD) and whether it composes. (`parse_form` never yields
/// `NfkcCasefold`, which would count as canonical decomposition here.)
impl Form {
    fn offsets_compat(self) -> bool {
        matches!(self, Form::Nfkc | Form::Nfkd)
    }
    fn offsets_composing(self) -> bool {
        matches!(self, Form::Nfc | Form::Nfkc)
    }
    fn offsets_compose(self, s: &str) -> String {
        if self.offsets_compat() {
            ComposingNormalizerBorrowed::new_nfkc()
                .normalize(s)
                .into_owned()
        } else {
            ComposingNormalizerBorrowed::new_nfc()
                .normalize(s)
                .into_owned()
        }
    }
    fn offsets_decompose(self, s: &str) -> String {
        if self.offsets_compat() {
            DecomposingNormalizerBorrowed::new_nfkd()
                .normalize(s)
                .into_owned()
        } else {
            DecomposingNormalizerBorrowed::new_nfd()
                .normalize(s)
                .into_owned()
        }
    }
    fn offsets_normalize(self, s: &str) -> String {
        if self.offsets_composing() {
            self.offsets_compose(s)
        } else {
            self.offsets_decompose(s)
        }
    }
}

fn ccc(c: char) -> u8 {
    CanonicalCombiningClassMapBorrowed::new().get_u8(c)
}

/// The full decomposition of `c` in this data set (canonically ordered).
fn mapping(c: char, compat: bool) -> Vec<char> {
    let mut b = [0u8; 4];
    let s: &str = c.encode_utf8(&mut b);
    if compat {
        DecomposingNormalizerBorrowed::new_nfkd()
            .normalize(s)
            .chars()
            .collect()
    } else {
        DecomposingNormalizerBorrowed::new_nfd()
            .normalize(s)
            .chars()
            .collect()
    }
}

struct NormData {
    compat: bool,
    comp: &'static Compositions,
}

impl NormData {
    fn new(form: Form) -> NormData {
        NormData {
            compat: form.offsets_compat(),
            comp: compositions(),
        }
    }

    /// Has no mapping of its own in this data set (a compatibility mapping makes a
    /// character one-way in the nfkc data, so it neither combines forward nor backward).
    fn unmapped_here(&self, c: char) -> bool {
        !self.compat || mapping(c, true) == mapping(c, false)
    }

    fn fwd(&self, c: char) -> Option<&[char]> {
        match self.comp.fwd.get(&c) {
            Some(v) if self.unmapped_here(c) => Some(v),
            _ => None,
        }
    }

    /// Combines backward (gennorm2's `Norms::combinesBack`: Jamo V and T always do).
    fn back(&self, c: char) -> bool {
        let cp = c as u32;
        (0x1161..=0x1175).contains(&cp)
            || (0x11A8..=0x11C2).contains(&cp)
            || (self.comp.back.contains(&c) && self.unmapped_here(c))
    }

    fn compose_pair(&self, a: char, b: char) -> Option<char> {
        let trails = self.fwd(a)?;
        if !trails.contains(&b) {
            return None;
        }
        CanonicalCompositionBorrowed::new().compose(a, b)
    }

    /// `Norms::combinesWithCCBetween`.
    fn combines_with_cc_between(&self, starter: Option<char>, low: u8, high: u16) -> bool {
        if high.saturating_sub(low as u16) < 2 {
            return false;
        }
        let Some(trails) = starter.and_then(|s| self.fwd(s)) else {
            return false;
        };
        trails.iter().any(|&t| {
            let cc = ccc(t);
            low < cc && (cc as u16) < high
        })
    }

    /// gennorm2's `mappingHasCompBoundaryAfter` on the decomposed mapping `m`.
    fn mapping_has_comp_boundary_after(&self, m: &[char], one_way: bool) -> bool {
        let Some(last_starter) = m.iter().rposition(|&c| ccc(c) == 0) else {
            return false;
        };
        let last = m.len() - 1;
        if one_way && last_starter < last && ccc(m[last]) > 1 {
            return false;
        }
        let mut starter = m[last_starter];
        if last_starter == 0 && self.back(starter) {
            return false;
        }
        let is_l = |c: char| (0x1100..=0x1112).contains(&(c as u32));
        let is_v = |c: char| (0x1161..=0x1175).contains(&(c as u32));
        let is_jamo = |c: char| (0x1100..=0x11FF).contains(&(c as u32));
        if is_l(starter) || (is_v(starter) && last_starter > 0 && is_l(m[last_starter - 1])) {
            return last_starter != last;
        }
        let mut i = last_starter;
        while i > 0 && ccc(m[i - 1]) == 0 && !is_jamo(m[i - 1]) {
            starter = m[i - 1];
            i -= 1;
        }
        let mut starter_norm = self.fwd(starter).map(|_| starter);
        if i == last_starter && starter_norm.is_none() {
            return true;
        }
        let mut prev_cc = 0u8;
        i += 1;
        while i < m.len() {
            let cc = ccc(m[i]);
            if i > last_starter && self.combines_with_cc_between(starter_norm, prev_cc, cc as u16) {
                return false;
            }
            let c = m[i];
            let composed = match starter_norm {
                Some(s) if (prev_cc < cc || prev_cc == 0) && self.back(c) => {
                    self.compose_pair(s, c)
                }
                _ => None,
            };
            if let Some(comp) = composed {
                starter_norm = self.fwd(comp).map(|_| comp);
                if i >= last_starter && starter_norm.is_none() {
                    return true;
                }
            } else if cc == 0 {
                starter_norm = self.fwd(c).map(|_| c);
                if i == last_starter && starter_norm.is_none() {
                    return true;
                }
                prev_cc = 0;
            } else {
                prev_cc = cc;
            }
            i += 1;
        }
        if prev_cc == 0 {
            return false;
        }
        !self.combines_with_cc_between(starter_norm, prev_cc, 256)
    }

    fn props(&self, c: char) -> Props {
        let cp = c as u32;
        if (0x1100..=0x1112).contains(&cp) {
            return Props {
                kind: Kind::JamoL,
                boundary_after: false,
                ..Props::INERT
            };
        }
        if (0x1161..=0x1175).contains(&cp) || (0x11A8..=0x11C2).contains(&cp) {
            return Props {
                kind: Kind::JamoVt,
                boundary_after: false,
                ..Props::INERT
            };
        }
        if is_hangul(cp) {
            let lv = (cp - 0xAC00) % 28 == 0;
            return Props {
                kind: if lv { Kind::YesNoFwd } else { Kind::YesNoOnly },
                boundary_after: !lv,
                ..Props::INERT
            };
        }
        if !known_to_icu(c) {
            return Props::INERT;
        }
        let cc = ccc(c);
        let m = mapping(c, self.compat);
        let back = self.back(c);
        let fwd = self.fwd(c).is_some();
        if m.len() == 1 && m[0] == c {
            let kind = if back {
                if fwd {
                    Kind::MaybeFwd
                } else {
                    Kind::MaybeSimple
                }
            } else if fwd {
                Kind::YesYesFwd
            } else if cc != 0 {
                Kind::YesYesWithCc
            } else {
                Kind::Inert
            };
            return Props {
                kind,
                cc,
                boundary_after: cc == 0 && !back && !fwd,
                lead_cc: cc,
                trail_cc: cc,
            };
        }
        let (lead_cc, trail_cc) = match (m.first(), m.last()) {
            (Some(&f), Some(&l)) => (ccc(f), ccc(l)),
            _ => (1, 255),
        };
        let boundary_before = !m.is_empty() && lead_cc == 0 && !self.back(m[0]);
        let mut b = [0u8; 4];
        let one: &str = c.encode_utf8(&mut b);
        // A round-trip mapping: the character is its own composition.
        let round_trip = (if self.compat {
            ComposingNormalizerBorrowed::new_nfkc().normalize(one)
        } else {
            ComposingNormalizerBorrowed::new_nfc().normalize(one)
        }) == one;
        let kind = if round_trip {
            if fwd {
                Kind::YesNoFwd
            } else {
                Kind::YesNoOnly
            }
        } else if m.is_empty() {
            Kind::NoNoEmpty
        } else if !boundary_before {
            Kind::NoNoCompNoMaybeCc
        } else if self.mapping_recomposes(&m) {
            Kind::NoNoCompBoundaryBefore
        } else {
            Kind::NoNoCompYes
        };
        Props {
            kind,
            cc,
            boundary_after: !fwd && self.mapping_has_comp_boundary_after(&m, !round_trip),
            lead_cc,
            trail_cc,
        }
    }

    /// gennorm2's `mappingRecomposes`.
    fn mapping_recomposes(&self, m: &[char]) -> bool {
        if !m.iter().any(|&c| ccc(c) == 0) {
            return false;
        }
        let mut starter: Option<char> = None;
        let mut prev_cc = 0u8;
        for (i, &c) in m.iter().enumerate() {
            let cc = ccc(c);
            if let Some(s) = starter {
                if (prev_cc < cc || prev_cc == 0)
                    && self.back(c)
                    && self.compose_pair(s, c).is_some()
                {
                    return true;
                }
            }
            if cc == 0 {
                if (0x1100..=0x1112).contains(&(c as u32)) {
                    if m.get(i + 1)
                        .is_some_and(|&v| (0x1161..=0x1175).contains(&(v as u32)))
                    {
                        return true;
                    }
                    starter = None;
                } else {
                    starter = self.fwd(c).map(|_| c);
                }
            }
            prev_cc = cc;
        }
        false
    }
}

/// The character at `s[i..]` (`None` for an ill-formed sequence) and its byte length
/// (a maximal ill-formed subpart, as ICU's `U8_NEXT` cuts it).
fn next_char(s: &[u8], i: usize) -> (Option<char>, usize) {
    let end = (i + 4).min(s.len());
    match std::str::from_utf8(&s[i..end]) {
        Ok(v) => {
            let c = v.chars().next();
            (c, c.map_or(1, char::len_utf8))
        }
        Err(e) if e.valid_up_to() > 0 => {
            let v = std::str::from_utf8(&s[i..i + e.valid_up_to()]).unwrap_or_default();
            let c = v.chars().next();
            (c, c.map_or(1, char::len_utf8))
        }
        Err(e) => (None, e.error_len().unwrap_or(end - i).max(1)),
    }
}

/// The character ending at `s[..p]`, not before `start`, and its start.
fn prev_char(s: &[u8], start: usize, p: usize) -> (Option<char>, usize) {
    for n in 1..=4usize {
        if p < start + n {
            break;
        }
        let q = p - n;
        if let Ok(v) = std::str::from_utf8(&s[q..p]) {
            let mut it = v.chars();
            if let (Some(c), None) = (it.next(), it.next()) {
                return (Some(c), q);
            }
        }
    }
    (None, p - 1)
}

/// The output and the recorded edits of one normalization.
struct Recorder<'a> {
    s: &'a [u8],
    form: Form,
    out: Vec<u8>,
    map: OffsetMap,
}

impl Recorder<'_> {
    fn unchanged(&mut self, a: usize, b: usize) {
        if b > a {
            self.out.extend_from_slice(&self.s[a..b]);
            self.map.unchanged(b - a);
        }
    }
    fn change(&mut self, a: usize, b: usize, new: &[u8]) {
        self.out.extend_from_slice(new);
        self.map.replace(b - a, new.len());
    }
    /// Normalizes the segment `[a, b)` (well-formed: it never holds inert bytes); `None`
    /// when it is already normalized.
    fn normalized(&self, a: usize, b: usize) -> Option<String> {
        let seg = std::str::from_utf8(&self.s[a..b]).unwrap_or_default();
        let n = self.form.offsets_normalize(seg);
        (n != seg).then_some(n)
    }
}

fn props_at(d: &NormData, s: &[u8], i: usize) -> (Props, usize) {
    let (c, n) = next_char(s, i);
    (c.map_or(Props::INERT, |c| d.props(c)), n)
}

/// `hasCompBoundaryBefore(src, limit)`.
fn comp_boundary_before_at(d: &NormData, s: &[u8], i: usize) -> bool {
    i == s.len() || props_at(d, s, i).0.comp_boundary_before()
}

/// The previous Hangul syllable or Jamo before `p` (`previousHangulOrJamo`).
fn previous_hangul_or_jamo(s: &[u8], start: usize, p: usize) -> Option<u32> {
    if p - start < 3 {
        return None;
    }
    let c = std::str::from_utf8(&s[p - 3..p]).ok()?.chars().next()? as u32;
    (0x1000..=0xD7FF).contains(&c).then_some(c)
}

/// `getJamoTMinusBase`: 1..=27 when `s[i..]` starts with a Jamo T.
fn jamo_t_minus_base(s: &[u8], i: usize) -> Option<u32> {
    let c = std::str::from_utf8(s.get(i..i + 3)?).ok()?.chars().next()? as u32;
    (0x11A8..=0x11C2).contains(&c).then(|| c - 0x11A7)
}

/// ICU `Normalizer2Impl::composeUTF8` (onlyContiguous = false).
fn compose_utf8(r: &mut Recorder<'_>, d: &NormData) {
    let s = r.s;
    let limit = s.len();
    let mut src = 0usize;
    let mut prev_boundary = 0usize;
    loop {
        let mut prev_src;
        let p;
        loop {
            if src == limit {
                r.unchanged(prev_boundary, limit);
                return;
            }
            if s[src] < 0x80 {
                src += 1;
                continue;
            }
            prev_src = src;
            let (q, n) = props_at(d, s, src);
            src += n;
            if !q.comp_yes_and_zero_cc() {
                p = q;
                break;
            }
        }
        if !p.maybe_or_nonzero_cc() {
            // A mapping surrounded by boundaries is replaced on its own.
            if p.kind == Kind::NoNoCompYes
                && (p.boundary_after || comp_boundary_before_at(d, s, src))
            {
                r.unchanged(prev_boundary, prev_src);
                let seg = std::str::from_utf8(&s[prev_src..src]).unwrap_or_default();
                let m = r.form.offsets_decompose(seg);
                r.change(prev_src, src, m.as_bytes());
                prev_boundary = src;
                continue;
            }
            if p.kind == Kind::NoNoEmpty {
                let after = prev_boundary == prev_src || {
                    let (c, _) = prev_char(s, prev_boundary, prev_src);
                    c.map_or(Props::INERT, |c| d.props(c)).boundary_after
                };
                if comp_boundary_before_at(d, s, src) || after {
                    r.unchanged(prev_boundary, prev_src);
                    r.change(prev_src, src, b"");
                    prev_boundary = src;
                    continue;
                }
            }
        } else if p.kind == Kind::JamoVt {
            let prev = previous_hangul_or_jamo(s, prev_boundary, prev_src);
            if s.get(prev_src + 1) == Some(&0x85) {
                // A Jamo V: compose with a preceding L and a following T.
                if let Some(l) = prev.filter(|c| (0x1100..0x1113).contains(c)) {
                    let t = match jamo_t_minus_base(s, src) {
                        Some(t) => {
                            src += 3;
                            Some(t)
                        }
                        None if comp_boundary_before_at(d, s, src) => Some(0),
                        None => None,
                    };
                    if let Some(t) = t {
                        let v = std::str::from_utf8(&s[prev_src..prev_src + 3])
                            .ok()
                            .and_then(|x| x.chars().next())
                            .map_or(0, |c| c as u32 - 0x1161);
                        let syl = 0xAC00 + ((l - 0x1100) * 21 + v) * 28 + t;
                        prev_src -= 3;
                        r.unchanged(prev_boundary, prev_src);
                        let mut b = [0u8; 4];
                        let syl = char::from_u32(syl).unwrap_or('\u{FFFD}');
                        r.change(prev_src, src, syl.encode_utf8(&mut b).as_bytes());
                        prev_boundary = src;
                        continue;
                    }
                }
            } else if let Some(lv) = prev.filter(|&c| is_hangul(c) && (c - 0xAC00) % 28 == 0) {
                // A Jamo T after an LV syllable.
                let t = jamo_t_minus_base(s, prev_src).unwrap_or(0);
                prev_src -= 3;
                r.unchanged(prev_boundary, prev_src);
                let mut b = [0u8; 4];
                let syl = char::from_u32(lv + t).unwrap_or('\u{FFFD}');
                r.change(prev_src, src, syl.encode_utf8(&mut b).as_bytes());
                prev_boundary = src;
                continue;
            }
        } else if p.kind == Kind::YesYesWithCc {
            // In-order combining marks followed by a boundary stay unchanged.
            let mut cc = p.cc;
            let (n16, next_src) = loop {
                if src == limit {
                    r.unchanged(prev_boundary, limit);
                    return;
                }
                let prev_cc = cc;
                let (q, n) = props_at(d, s, src);
                if q.kind == Kind::YesYesWithCc {
                    cc = q.cc;
                    if prev_cc > cc {
                        break (q, src + n);
                    }
                } else {
                    break (q, src + n);
                }
                src += n;
            };
            if n16.comp_boundary_before() {
                if n16.comp_yes_and_zero_cc() {
                    src = next_src;
                }
                continue;
            }
        }
        // Slow path: from the last boundary before this character to the next one.
        if prev_boundary != prev_src && !p.comp_boundary_before() {
            let (c, q) = prev_char(s, prev_boundary, prev_src);
            if !c.map_or(Props::INERT, |c| d.props(c)).boundary_after {
                prev_src = q;
            }
        }
        // decomposeShort(src, limit, STOP_AT_COMP_BOUNDARY)
        while src < limit {
            let (q, n) = props_at(d, s, src);
            if q.maybe_or_nonzero_cc() {
                src += n;
                continue;
            }
            if q.comp_boundary_before() {
                break;
            }
            src += n;
            if q.boundary_after {
                break;
            }
        }
        if let Some(n) = r.normalized(prev_src, src) {
            r.unchanged(prev_boundary, prev_src);
            r.change(prev_src, src, n.as_bytes());
            prev_boundary = src;
        }
    }
}

/// The ccc ICU's `ReorderingBuffer` reports as its last (`getLastCC`) after appending.
fn append_cc(last: &mut u8, d: &NormData, c: char) {
    let p = d.props(c);
    if p.maybe_or_nonzero_cc() {
        let cc = p.cc;
        if *last <= cc || cc == 0 {
            *last = cc;
        }
        return;
    }
    if matches!(p.kind, Kind::Inert | Kind::JamoL | Kind::YesYesFwd) || is_hangul(c as u32) {
        *last = 0;
        return;
    }
    let m = mapping(c, d.compat);
    if p.lead_cc == 0 || *last <= p.lead_cc {
        *last = p.trail_cc;
        return;
    }
    for (i, &x) in m.iter().enumerate().skip(1) {
        let cc = if i + 1 == m.len() { p.trail_cc } else { ccc(x) };
        if *last <= cc || cc == 0 {
            *last = cc;
        }
    }
}

/// ICU `Normalizer2Impl::decomposeUTF8`.
fn decompose_utf8(r: &mut Recorder<'_>, d: &NormData) {
    let s = r.s;
    let limit = s.len();
    let mut src = 0usize;
    let mut prev_boundary = 0usize;
    let mut prev_cc = 0u8;
    loop {
        let fast_start = src;
        let mut prev_src;
        let p;
        loop {
            if src == limit {
                r.unchanged(prev_boundary, limit);
                return;
            }
            if s[src] < 0x80 {
                src += 1;
                continue;
            }
            prev_src = src;
            let (q, n) = props_at(d, s, src);
            src += n;
            if !q.most_decomp_yes_and_zero_cc() {
                p = q;
                break;
            }
        }
        if prev_src != fast_start {
            r.unchanged(prev_boundary, prev_src);
            prev_boundary = prev_src;
            prev_cc = 0;
        }
        if p.maybe_or_nonzero_cc() {
            let cc = p.cc;
            if prev_cc <= cc || cc == 0 {
                prev_cc = cc;
                if cc <= 1 {
                    r.unchanged(prev_boundary, src);
                    prev_boundary = src;
                }
                continue;
            }
        }
        if prev_boundary != prev_src && p.decomp_boundary_before() {
            r.unchanged(prev_boundary, prev_src);
            prev_boundary = prev_src;
        }
        let mut last = 0u8;
        let head = std::str::from_utf8(&s[prev_boundary..src]).unwrap_or_default();
        for c in head.chars() {
            append_cc(&mut last, d, c);
        }
        if last > 1 {
            // decomposeShort(src, limit, STOP_AT_DECOMP_BOUNDARY)
            while src < limit {
                let (c, n) = next_char(s, src);
                let Some(c) = c else { break };
                let q = d.props(c);
                if q.maybe_or_nonzero_cc() {
                    if q.cc == 0 {
                        break;
                    }
                    append_cc(&mut last, d, c);
                    src += n;
                    if last <= 1 {
                        break;
                    }
                    continue;
                }
                if q.kind < Kind::NoNoCompNoMaybeCc || q.lead_cc == 0 {
                    break;
                }
                append_cc(&mut last, d, c);
                src += n;
                if last <= 1 {
                    break;
                }
            }
        }
        match r.normalized(prev_boundary, src) {
            None if p.maybe_or_nonzero_cc() => r.unchanged(prev_boundary, src),
            n => {
                let n = n.unwrap_or_else(|| {
                    std::str::from_utf8(&s[prev_boundary..src])
                        .unwrap_or_default()
                        .to_owned()
                });
                r.change(prev_boundary, src, n.as_bytes());
            }
        }
        prev_boundary = src;
        prev_cc = 0;
    }
}

/// Normalizes `s` as ICU's `normalizeUTF8` with an `Edits` recorder does: the output and
/// the edits TF stores in its offsets map.
pub(crate) fn normalize_with_offsets(s: &[u8], form: Form) -> (Vec<u8>, OffsetMap) {
    let d = NormData::new(form);
    let mut r = Recorder {
        s,
        form,
        out: Vec::with_capacity(s.len()),
        map: OffsetMap::default(),
    };
    if form.offsets_composing() {
        compose_utf8(&mut r, &d);
    } else {
        decompose_utf8(&mut r, &d);
    }
    (r.out, r.map)
}

/// `NormalizeUTF8WithOffsetsMap` (attr `normalization_form`): string -> (string, variant)
/// of the same shape.
#[derive(Debug)]
pub(super) struct NormalizeWithOffsets {
    form: Result<Form, String>,
}

impl NormalizeWithOffsets {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        let form = parse_form(cx)?;
        Ok(Box::new(NormalizeWithOffsets { form }))
    }
}

impl Op for NormalizeWithOffsets {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [input] = take_inputs(inputs)?;
        let form = match &self.form {
            Ok(f) => *f,
            Err(f) => {
                return Err(OpError::invalid(format!(
                    "Offset not supported for this normalization form: {f}"
                )))
            }
        };
        let shape = input.shape().to_vec();
        let strs = strings(&input, 0)?;
        let mut outs = Vec::with_capacity(strs.len());
        let mut maps = Vec::with_capacity(strs.len());
        for s in strs {
            let (o, m) = normalize_with_offsets(s, form);
            outs.push(if o[..] == s[..] {
                s.clone()
            } else {
                Bytes::from(o)
            });
            maps.push(Handle {
                name: Arc::from(TYPE_NAME),
                value: Arc::new(m),
            });
        }
        Ok(tensors![
            Tensor::from_vec(&shape, outs)?,
            Tensor::new(&shape, Data::Variant(maps.into()))?,
        ])
    }
}

/// `FindSourceOffsets` (`offsets_map: variant[n]`, `input_offsets_values: int64`,
/// `input_offsets_splits: Tsplits`) -> `output_offsets_values: int64`.
#[derive(Debug)]
pub(super) struct FindSourceOffsets;

impl FindSourceOffsets {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        let t = cx.attr_opt_type("Tsplits")?.unwrap_or(DType::I64);
        if !matches!(t, DType::I32 | DType::I64) {
            return Err(OpError::Attr {
                name: "Tsplits".into(),
                what: format!("must be int32 or int64, got {t}"),
            });
        }
        Ok(Box::new(FindSourceOffsets))
    }
}

impl Op for FindSourceOffsets {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [maps, values, splits] = take_inputs(inputs)?;
        let Data::Variant(maps) = maps.data() else {
            return Err(OpError::dtype(0, "variant", maps.dtype()));
        };
        let values = values
            .as_slice::<i64>()
            .map_err(|_| OpError::dtype(1, "int64", values.dtype()))?;
        if splits.rank() != 1 {
            return Err(OpError::invalid(format!(
                "input_offsets_splits must be a vector, got shape {:?}",
                splits.shape()
            )));
        }
        let splits = splits.to_i64_vec()?;
        let mut out = vec![0i64; values.len()];
        let mut idx_edits = 0usize;
        let mut idx_out = 0usize;
        let mismatch = || {
            OpError::invalid(
                "Input offset tensor dimension did not match the offset map dimension.",
            )
        };
        for w in splits.windows(2) {
            let (a, b) = (w[0], w[1]);
            // TF quirk copied: a row without offsets consumes no map, so the maps pair
            // with the non-empty rows in order.
            if a == b {
                continue;
            }
            // TF reads out of bounds here; refuse instead.
            if a < 0 || b < a || b as usize > values.len() || idx_out + (b - a) as usize > out.len()
            {
                return Err(OpError::invalid(format!(
                    "input_offsets_splits [{a}, {b}) is not a valid range of the {} offsets",
                    values.len()
                )));
            }
            let h = maps.get(idx_edits).ok_or_else(mismatch)?;
            idx_edits += 1;
            let m = h.value.downcast_ref::<OffsetMap>().ok_or_else(|| {
                OpError::invalid(format!(
                    "offsets_map holds a {}, not an {TYPE_NAME}",
                    h.name
                ))
            })?;
            for &v in &values[a as usize..b as usize] {
                out[idx_out] = m.source_index(v);
                idx_out += 1;
            }
        }
        if idx_edits != maps.len() {
            return Err(mismatch());
        }
        Ok(tensors![Tensor::vector(out)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets(s: &str, form: Form) -> (String, Vec<i64>) {
        let (o, m) = normalize_with_offsets(s.as_bytes(), form);
        let v = (0..=o.len() as i64).map(|i| m.source_index(i)).collect();
        (String::from_utf8(o).expect("utf8"), v)
    }

    /// The probes run against TF 2.21 / tensorflow-text 2.21.1 (ICU 77) in the brief.
    #[test]
    fn tf_probes() {
        let (o, v) = offsets("a\u{301}\u{323}b", Form::Nfc);
        assert_eq!(o, "\u{1EA1}\u{301}b");
        assert_eq!(v, [0, 5, 5, 5, 5, 5, 6]);
        let (_, v) = offsets("\u{C5}\u{212B}", Form::Nfc);
        assert_eq!(v, [0, 1, 2, 5, 5]);
        let (o, v) = offsets("a\u{301}\u{323}b", Form::Nfd);
        assert_eq!(o, "a\u{323}\u{301}b");
        assert_eq!(v, [0, 1, 5, 5, 5, 5, 6]);
        // NFKC("ﬁé x") = "fié x"; destination offsets map to 0,3,3,4,5,6.
        let (o, v) = offsets("\u{FB01}\u{E9} x", Form::Nfkc);
        assert_eq!(o, "fi\u{E9} x");
        assert_eq!(&v[..6], [0, 3, 3, 4, 5, 6]);
    }

    #[test]
    fn out_of_range_offsets() {
        let (_, m) = normalize_with_offsets(b"abc", Form::Nfc);
        assert_eq!(m.source_index(-1), 0);
        assert_eq!(m.source_index(7), 3);
        // int32 narrowing: 2^32 + 1 is offset 1.
        assert_eq!(m.source_index((1i64 << 32) + 1), 1);
        assert_eq!(m.source_index(1i64 << 31), 0);
    }
}

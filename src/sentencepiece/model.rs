//! The loaded model (`SentencePieceProcessor` of sentencepiece v0.1.96): proto parsing and the
//! load-time checks of `ModelInterface::InitializePieces`, the four encoders (unigram's
//! `EncodeOptimized`, BPE, WORD, CHAR), `PopulateSentencePieceText` (offsets, byte fallback,
//! merging of unknown runs), the extra options bos/eos/reverse, and `Decode`.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use prost::Message;

use super::normalizer::{one_char_len, valid_char_len, Normalizer, SPACE_SYMBOL};
use super::trie::Trie;
use super::SpmError;

#[allow(clippy::all, missing_docs, rustdoc::all)]
mod pb {
    include!(concat!(env!("OUT_DIR"), "/sentencepiece.rs"));
}

use pb::model_proto::sentence_piece::Type as PbType;
use pb::trainer_spec::ModelType as PbModelType;

/// Largest serialized model accepted.
pub const MAX_MODEL_BYTES: usize = 1 << 30;
/// Most pieces a model may have.
pub const MAX_PIECES: usize = 1 << 24;
/// Longest piece (bytes).
pub const MAX_PIECE_BYTES: usize = 1 << 16;

/// sentencepiece's `kUnkPenalty`.
const UNK_PENALTY: f32 = 10.0;
/// `kDefaultUnknownSymbol`.
const DEFAULT_UNK_SURFACE: &[u8] = " \u{2047} ".as_bytes();
const REPLACEMENT: &[u8] = "\u{FFFD}".as_bytes();

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PieceType {
    Normal,
    Unknown,
    Control,
    UserDefined,
    Unused,
    Byte,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ModelType {
    Unigram,
    Bpe,
    Word,
    Char,
}

type Map = HashMap<Vec<u8>, i32, foldhash::fast::RandomState>;

#[derive(Debug)]
struct Piece {
    text: Vec<u8>,
    score: f32,
    ty: PieceType,
}

/// The extra options tf_text passes as "bos:eos:reverse", applied in that order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExtraOptions {
    /// Prepend the bos piece.
    pub bos: bool,
    /// Append the eos piece.
    pub eos: bool,
    /// Reverse the pieces (after bos/eos, so bos ends up last).
    pub reverse: bool,
}

/// Where a token's piece text comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenText {
    /// A byte range of the normalized text.
    Norm(usize, usize),
    /// A byte-fallback piece `<0xXX>`.
    Byte(u8),
    /// The bos piece.
    Bos,
    /// The eos piece.
    Eos,
}

/// One output piece: id, text and byte offsets `[begin, end)` into the original input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    /// Vocabulary id.
    pub id: i32,
    /// The piece text.
    pub text: TokenText,
    /// Start offset in the input.
    pub begin: usize,
    /// End offset in the input.
    pub end: usize,
}

/// The result of encoding one text.
#[derive(Debug, Clone, Default)]
pub struct Encoding {
    /// The normalized text (token texts index into it).
    pub normalized: Vec<u8>,
    /// The pieces.
    pub tokens: Vec<Token>,
}

/// A loaded SentencePiece model.
#[derive(Debug)]
pub struct Processor {
    pieces: Vec<Piece>,
    /// NORMAL, USER_DEFINED and UNUSED pieces (`pieces_`).
    normal: Map,
    /// CONTROL, UNKNOWN and BYTE pieces (`reserved_id_map_`).
    reserved: Map,
    unk_id: i32,
    model_type: ModelType,
    byte_fallback: bool,
    /// `PieceToId("<0xXX>")` for every byte.
    byte_ids: Vec<i32>,
    normalizer: Normalizer,
    denormalizer: Option<Normalizer>,
    /// User-defined symbols (sentencepiece's `PrefixMatcher`).
    matcher: Option<Trie>,
    /// Unigram: the piece trie.
    unigram_trie: Option<Trie>,
    min_score: f32,
    max_score: f32,
    unk_surface: Vec<u8>,
    bos_piece: Vec<u8>,
    eos_piece: Vec<u8>,
    decode_strip_dummy: bool,
}

fn piece_type(t: PbType) -> PieceType {
    match t {
        PbType::Normal => PieceType::Normal,
        PbType::Unknown => PieceType::Unknown,
        PbType::Control => PieceType::Control,
        PbType::UserDefined => PieceType::UserDefined,
        PbType::Unused => PieceType::Unused,
        PbType::Byte => PieceType::Byte,
    }
}

/// `ByteToPiece`: "<0xXX>" with upper-case hex.
pub(crate) fn byte_piece(b: u8) -> [u8; 6] {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    [
        b'<',
        b'0',
        b'x',
        HEX[(b >> 4) as usize],
        HEX[(b & 15) as usize],
        b'>',
    ]
}

/// `PieceToByte`: the byte of an upper-case "<0xXX>" piece.
fn piece_to_byte(p: &[u8]) -> Option<u8> {
    fn hex(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    match p {
        [b'<', b'0', b'x', h, l, b'>'] => Some((hex(*h)? << 4) | hex(*l)?),
        _ => None,
    }
}

fn or_default(v: &Option<Vec<u8>>, default: &str) -> Vec<u8> {
    match v {
        Some(s) if !s.is_empty() => s.clone(),
        _ => default.as_bytes().to_vec(),
    }
}

fn load_err(s: impl Into<String>) -> SpmError {
    SpmError::Load(s.into())
}

impl Processor {
    /// Parses a serialized `ModelProto` and runs sentencepiece's load (checks, tries,
    /// self-test).
    pub fn from_bytes(bytes: &[u8]) -> Result<Processor, SpmError> {
        if bytes.len() > MAX_MODEL_BYTES {
            return Err(SpmError::Limit(format!(
                "model proto of {} bytes (cap {MAX_MODEL_BYTES})",
                bytes.len()
            )));
        }
        let proto = pb::ModelProto::decode(bytes).map_err(|e| SpmError::Proto(e.to_string()))?;
        if proto.pieces.len() > MAX_PIECES {
            return Err(SpmError::Limit(format!(
                "{} pieces (cap {MAX_PIECES})",
                proto.pieces.len()
            )));
        }
        let trainer = proto.trainer_spec.clone().unwrap_or_default();
        let byte_fallback = trainer.byte_fallback();
        let model_type = match trainer.model_type() {
            PbModelType::Unigram => ModelType::Unigram,
            PbModelType::Bpe => ModelType::Bpe,
            PbModelType::Word => ModelType::Word,
            PbModelType::Char => ModelType::Char,
        };

        // ModelInterface::InitializePieces.
        let hasher = foldhash::fast::RandomState::default;
        let mut normal = Map::with_hasher(hasher());
        let mut reserved = Map::with_hasher(hasher());
        let mut pieces = Vec::with_capacity(proto.pieces.len());
        let mut unk_id = -1i32;
        let mut byte_found = [false; 256];
        let mut user_defined: Vec<(usize, usize)> = Vec::new();
        for (i, p) in proto.pieces.iter().enumerate() {
            let text = p.piece.clone().unwrap_or_default();
            if text.is_empty() {
                return Err(load_err("piece must not be empty."));
            }
            if text.len() > MAX_PIECE_BYTES {
                return Err(SpmError::Limit(format!(
                    "piece {i} has {} bytes (cap {MAX_PIECE_BYTES})",
                    text.len()
                )));
            }
            let ty = piece_type(p.r#type());
            let id = i as i32;
            let is_normal = matches!(
                ty,
                PieceType::Normal | PieceType::UserDefined | PieceType::Unused
            );
            let map = if is_normal {
                &mut normal
            } else {
                &mut reserved
            };
            if map.contains_key(&text) {
                return Err(load_err(format!(
                    "{} is already defined.",
                    String::from_utf8_lossy(&text)
                )));
            }
            map.insert(text.clone(), id);
            if ty == PieceType::UserDefined {
                user_defined.push((i, text.len()));
            }
            if ty == PieceType::Unknown {
                if unk_id >= 0 {
                    return Err(load_err("unk is already defined."));
                }
                unk_id = id;
            }
            if ty == PieceType::Byte {
                let name = String::from_utf8_lossy(&text);
                if !byte_fallback {
                    return Err(load_err(format!(
                        "byte piece {name} is found although `byte_fallback` is false."
                    )));
                }
                match piece_to_byte(&text) {
                    Some(b) => byte_found[b as usize] = true,
                    None => return Err(load_err(format!("byte piece {name} is invalid."))),
                }
            }
            pieces.push(Piece {
                text,
                score: p.score(),
                ty,
            });
        }
        if unk_id < 0 {
            return Err(load_err("unk is not defined."));
        }
        if byte_fallback && byte_found.iter().any(|f| !f) {
            return Err(load_err(
                "there are not 256 byte pieces although `byte_fallback` is true.",
            ));
        }
        // darts tries take NUL-terminated keys; a piece with a NUL byte would be cut short
        // there. Such models are refused rather than matched differently.
        let nul_in_trie = |ty: PieceType| {
            ty == PieceType::UserDefined
                || (model_type == ModelType::Unigram
                    && matches!(ty, PieceType::Normal | PieceType::Unused))
        };
        if let Some(p) = pieces
            .iter()
            .find(|p| nul_in_trie(p.ty) && p.text.contains(&0))
        {
            return Err(SpmError::Unsupported(format!(
                "piece {:?} contains a NUL byte",
                String::from_utf8_lossy(&p.text)
            )));
        }
        let matcher = (!user_defined.is_empty()).then(|| {
            Trie::build(
                user_defined
                    .iter()
                    .map(|&(i, _)| (pieces[i].text.as_slice(), i as i32)),
            )
        });

        // unigram::Model::Model.
        let (mut min_score, mut max_score) = (f32::MAX, f32::MIN_POSITIVE);
        for p in pieces.iter().filter(|p| p.ty == PieceType::Normal) {
            min_score = min_score.min(p.score);
            max_score = max_score.max(p.score);
        }
        let unigram_trie = if model_type == ModelType::Unigram {
            if normal.is_empty() {
                return Err(load_err("no pieces are loaded."));
            }
            Some(Trie::build(normal.iter().map(|(k, &v)| (k.as_slice(), v))))
        } else {
            None
        };

        let nspec = proto.normalizer_spec.clone().unwrap_or_default();
        let normalizer = Normalizer::new(
            nspec.precompiled_charsmap(),
            nspec.add_dummy_prefix(),
            nspec.remove_extra_whitespaces(),
            nspec.escape_whitespaces(),
            trainer.treat_whitespace_as_suffix(),
        )?;
        let denormalizer = match &proto.denormalizer_spec {
            Some(d) if !d.precompiled_charsmap().is_empty() => Some(Normalizer::new(
                d.precompiled_charsmap(),
                d.add_dummy_prefix(),
                d.remove_extra_whitespaces(),
                d.escape_whitespaces(),
                false,
            )?),
            _ => None,
        };

        let mut proc = Processor {
            pieces,
            normal,
            reserved,
            unk_id,
            model_type,
            byte_fallback,
            byte_ids: Vec::new(),
            normalizer,
            denormalizer,
            matcher,
            unigram_trie,
            min_score,
            max_score,
            unk_surface: trainer
                .unk_surface
                .clone()
                .unwrap_or_else(|| DEFAULT_UNK_SURFACE.to_vec()),
            bos_piece: or_default(&trainer.bos_piece, "<s>"),
            eos_piece: or_default(&trainer.eos_piece, "</s>"),
            decode_strip_dummy: nspec.add_dummy_prefix() || nspec.remove_extra_whitespaces(),
        };
        proc.byte_ids = (0..=255u8)
            .map(|b| proc.piece_to_id(&byte_piece(b)))
            .collect();

        // Self-test samples are re-encoded at load.
        if let Some(st) = &proto.self_test_data {
            let mut failures = 0;
            for s in &st.samples {
                let enc = proc.encode(s.input(), ExtraOptions::default(), MAX_MODEL_BYTES)?;
                let got: Vec<Cow<'_, [u8]>> = enc
                    .tokens
                    .iter()
                    .map(|t| proc.token_text(&enc, t))
                    .collect();
                let got = got.join(&b' ');
                if !proc.outputs_equivalent(s.expected(), &got) {
                    failures += 1;
                }
            }
            if failures > 0 {
                return Err(load_err("Self-test failures. See LOG(INFO)."));
            }
        }
        Ok(proc)
    }

    /// `VerifyOutputsEquivalent`: unigram compares path scores, the others the strings.
    fn outputs_equivalent(&self, expected: &[u8], actual: &[u8]) -> bool {
        if self.model_type != ModelType::Unigram {
            return expected == actual;
        }
        let score = |s: &[u8]| -> f32 {
            let mut total = 0f32;
            let unk_score = self.min_score - UNK_PENALTY;
            for p in s.split(|&b| b == b' ') {
                let id = self.piece_to_id(p);
                if id == self.unk_id {
                    total += unk_score;
                } else if self.pieces[id as usize].ty == PieceType::UserDefined {
                    total =
                        (total as f64 + ((p.len() as f32 * self.max_score) as f64 - 0.1)) as f32;
                } else {
                    total += self.pieces[id as usize].score;
                }
            }
            total
        };
        (score(expected) - score(actual)).abs() <= 1e-7
    }

    /// Number of pieces (`GetPieceSize`).
    pub fn vocab_size(&self) -> usize {
        self.pieces.len()
    }

    /// `PieceToId`: reserved pieces first, then the others; anything else is unk.
    pub fn piece_to_id(&self, piece: &[u8]) -> i32 {
        if let Some(&id) = self.reserved.get(piece) {
            return id;
        }
        self.normal.get(piece).copied().unwrap_or(self.unk_id)
    }

    /// `IdToPiece`, with a bounds check (TF's kernel has none and crashes).
    pub fn id_to_piece(&self, id: i64) -> Result<&[u8], SpmError> {
        usize::try_from(id)
            .ok()
            .and_then(|i| self.pieces.get(i))
            .map(|p| p.text.as_slice())
            .ok_or(SpmError::InvalidId(id))
    }

    fn ty(&self, id: i32) -> PieceType {
        self.pieces[id as usize].ty
    }

    /// The text of an encoded token.
    pub fn token_text<'a>(&'a self, enc: &'a Encoding, t: &Token) -> Cow<'a, [u8]> {
        match t.text {
            TokenText::Norm(a, b) => Cow::Borrowed(&enc.normalized[a..b]),
            TokenText::Byte(b) => Cow::Owned(byte_piece(b).to_vec()),
            TokenText::Bos => Cow::Borrowed(&self.bos_piece),
            TokenText::Eos => Cow::Borrowed(&self.eos_piece),
        }
    }

    /// `ParseExtraOptions`' checks: bos/eos must be in the vocabulary.
    pub fn check_options(&self, o: ExtraOptions) -> Result<(), SpmError> {
        for (on, p) in [(o.bos, &self.bos_piece), (o.eos, &self.eos_piece)] {
            if on && self.piece_to_id(p) == self.unk_id {
                return Err(SpmError::UndefinedPiece(
                    String::from_utf8_lossy(p).into_owned(),
                ));
            }
        }
        Ok(())
    }

    /// `Encode` (nbest_size 0 or 1). `max_len` caps the normalized text's length.
    pub fn encode(
        &self,
        input: &[u8],
        opts: ExtraOptions,
        max_len: usize,
    ) -> Result<Encoding, SpmError> {
        self.encode_with(input, opts, max_len, false)
    }

    /// `SampleEncode(nbest_size, alpha)` where it is deterministic: BPE with alpha <= 0 (no
    /// dropout) or alpha >= 1 (every merge dropped). Everything else is random in
    /// sentencepiece and refused.
    pub fn sample_encode(
        &self,
        input: &[u8],
        nbest_size: i32,
        alpha: f32,
        opts: ExtraOptions,
        max_len: usize,
    ) -> Result<Encoding, SpmError> {
        if nbest_size > 512 {
            return Err(SpmError::Encode(
                "nbest_size must be nbest_size <= 512".into(),
            ));
        }
        match self.model_type {
            ModelType::Bpe if alpha <= 0.0 => self.encode_with(input, opts, max_len, false),
            ModelType::Bpe if alpha >= 1.0 => self.encode_with(input, opts, max_len, true),
            ModelType::Bpe => Err(SpmError::Unsupported(format!(
                "BPE-dropout sampling (nbest_size={nbest_size}, alpha={alpha}) is random in \
                 sentencepiece"
            ))),
            ModelType::Unigram => Err(SpmError::Unsupported(format!(
                "unigram sampling (nbest_size={nbest_size}, alpha={alpha}) is random in \
                 sentencepiece"
            ))),
            ModelType::Word | ModelType::Char => Err(SpmError::Encode(
                "SampleEncode is not available for the current model.".into(),
            )),
        }
    }

    fn encode_with(
        &self,
        input: &[u8],
        opts: ExtraOptions,
        max_len: usize,
        bpe_drop_all: bool,
    ) -> Result<Encoding, SpmError> {
        self.check_options(opts)?;
        let mut normalized = Vec::new();
        let mut n2o = Vec::new();
        self.normalizer.normalize(
            input,
            self.matcher.as_ref(),
            max_len,
            &mut normalized,
            &mut n2o,
        )?;
        let result = if normalized.is_empty() {
            Vec::new()
        } else {
            match self.model_type {
                ModelType::Unigram => self.encode_unigram(&normalized)?,
                ModelType::Bpe => self.encode_bpe(&normalized, bpe_drop_all),
                ModelType::Word => self.encode_word(&normalized),
                ModelType::Char => self.encode_char(&normalized),
            }
        };
        let mut tokens = Vec::with_capacity(result.len() + 2);
        self.populate(input.len(), &normalized, &n2o, &result, &mut tokens)?;
        if opts.bos {
            tokens.insert(
                0,
                Token {
                    id: self.piece_to_id(&self.bos_piece),
                    text: TokenText::Bos,
                    begin: 0,
                    end: 0,
                },
            );
        }
        if opts.eos {
            tokens.push(Token {
                id: self.piece_to_id(&self.eos_piece),
                text: TokenText::Eos,
                begin: 0,
                end: 0,
            });
        }
        if opts.reverse {
            tokens.reverse();
        }
        Ok(Encoding { normalized, tokens })
    }

    /// `PopulateSentencePieceText`: offsets, byte fallback, merged unknown runs. `result`
    /// holds (length in the normalized text, id) in order.
    fn populate(
        &self,
        input_len: usize,
        normalized: &[u8],
        n2o: &[usize],
        result: &[(usize, i32)],
        out: &mut Vec<Token>,
    ) -> Result<(), SpmError> {
        let check = |ok: bool, what: &str| {
            if ok {
                Ok(())
            } else {
                Err(SpmError::Encode(what.to_string()))
            }
        };
        let mut consumed = 0usize;
        let mut prev_unk = false;
        for &(len, id) in result {
            check(len > 0, "Empty piece is not allowed.")?;
            let ty = self.ty(id);
            let is_unk = ty == PieceType::Unknown;
            if ty == PieceType::Control {
                // No source surface: begin == end, and the text is not consumed.
                let at = *n2o
                    .get(consumed)
                    .ok_or_else(|| SpmError::Encode("control piece past the end".into()))?;
                out.push(Token {
                    id,
                    text: TokenText::Norm(consumed, consumed + len),
                    begin: at,
                    end: at,
                });
            } else {
                let (b, e) = (consumed, consumed + len);
                check(b < n2o.len() && e < n2o.len(), "piece past the end")?;
                let (ob, oe) = (n2o[b], n2o[e]);
                check(
                    ob <= input_len && oe <= input_len && ob <= oe,
                    "bad offsets",
                )?;
                if is_unk && self.byte_fallback {
                    for (k, &byte) in normalized[b..e].iter().enumerate() {
                        let last = k + 1 == len;
                        out.push(Token {
                            id: self.byte_ids[byte as usize],
                            text: TokenText::Byte(byte),
                            begin: ob,
                            end: if last { oe } else { ob },
                        });
                    }
                } else if prev_unk && is_unk {
                    if let Some(last) = out.last_mut() {
                        if let TokenText::Norm(_, end) = &mut last.text {
                            *end = e;
                        }
                        last.end = oe;
                    }
                } else {
                    out.push(Token {
                        id,
                        text: TokenText::Norm(b, e),
                        begin: ob,
                        end: oe,
                    });
                }
                consumed = e;
            }
            prev_unk = is_unk;
        }
        check(
            consumed == normalized.len(),
            "all normalized characters are not consumed.",
        )
    }

    /// unigram `Model::EncodeOptimized`. Scores mix f32 and f64 exactly as v0.1.96 does
    /// (the candidate is computed in double, compared against the stored float, stored as a
    /// float; unknown candidates are pure float), which decides near-ties.
    fn encode_unigram(&self, s: &[u8]) -> Result<Vec<(usize, i32)>, SpmError> {
        #[derive(Clone, Copy)]
        struct Best {
            id: i32,
            score: f32,
            start: usize,
        }
        const UNSET: usize = usize::MAX;
        let trie = self
            .unigram_trie
            .as_ref()
            .ok_or_else(|| SpmError::Encode("unigram trie missing".into()))?;
        let size = s.len();
        let unk_score = self.min_score - UNK_PENALTY;
        let mut best = vec![
            Best {
                id: -1,
                score: 0.0,
                start: UNSET,
            };
            size + 1
        ];
        let mut start = 0;
        while start < size {
            let prev = best[start].score;
            let mblen = one_char_len(s[start]).min(size - start);
            let mut has_single = false;
            trie.prefixes(&s[start..], |len, id| {
                let p = &self.pieces[id as usize];
                if p.ty == PieceType::Unused {
                    return;
                }
                let score: f64 = if p.ty == PieceType::UserDefined {
                    (len as f32 * self.max_score) as f64 - 0.1
                } else {
                    p.score as f64
                };
                let cand = score + prev as f64;
                let t = &mut best[start + len];
                if t.start == UNSET || cand > t.score as f64 {
                    *t = Best {
                        id,
                        score: cand as f32,
                        start,
                    };
                }
                if len == mblen {
                    has_single = true;
                }
            });
            if !has_single {
                let cand = unk_score + prev;
                let t = &mut best[start + mblen];
                if t.start == UNSET || cand > t.score {
                    *t = Best {
                        id: self.unk_id,
                        score: cand,
                        start,
                    };
                }
            }
            start += mblen;
        }
        let mut out = Vec::new();
        let mut end = size;
        while end > 0 {
            let b = best[end];
            if b.start == UNSET || b.start >= end {
                return Err(SpmError::Encode("unigram lattice has no path".into()));
            }
            out.push((end - b.start, b.id));
            end = b.start;
        }
        out.reverse();
        Ok(out)
    }

    /// User-defined symbol match or one character (`PrefixMatcher::PrefixMatch`).
    fn prefix_match(&self, s: &[u8]) -> (usize, bool) {
        if let Some(n) = self.matcher.as_ref().and_then(|m| m.longest_prefix(s)) {
            return (n, true);
        }
        (one_char_len(s[0]).min(s.len()), false)
    }

    /// bpe `Model::SampleEncode` with alpha 0 (`drop_all` = alpha >= 1: no merge survives).
    fn encode_bpe(&self, s: &[u8], drop_all: bool) -> Vec<(usize, i32)> {
        struct Sym {
            prev: isize,
            next: isize,
            freeze: bool,
            start: usize,
            len: usize,
        }
        struct Pair {
            score: f32,
            left: usize,
            right: usize,
            size: usize,
        }
        impl PartialEq for Pair {
            fn eq(&self, o: &Self) -> bool {
                self.cmp(o) == Ordering::Equal
            }
        }
        impl Eq for Pair {}
        impl PartialOrd for Pair {
            fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
                Some(self.cmp(o))
            }
        }
        impl Ord for Pair {
            // Higher score first; on equal scores the smaller left index (as
            // SymbolPairComparator in a max-heap).
            fn cmp(&self, o: &Self) -> Ordering {
                if self.score < o.score {
                    Ordering::Less
                } else if self.score > o.score {
                    Ordering::Greater
                } else {
                    o.left.cmp(&self.left)
                }
            }
        }
        let mut syms: Vec<Sym> = Vec::with_capacity(s.len());
        let mut pos = 0;
        while pos < s.len() {
            let (len, freeze) = self.prefix_match(&s[pos..]);
            let i = syms.len() as isize;
            syms.push(Sym {
                prev: i - 1,
                next: if pos + len < s.len() { i + 1 } else { -1 },
                freeze,
                start: pos,
                len,
            });
            pos += len;
        }
        let mut agenda = BinaryHeap::new();
        // Merged UNUSED pieces -> the (left, right) lengths that formed them.
        let mut rev_merge: RevMerge<'_> = HashMap::default();
        type RevMerge<'a> = HashMap<&'a [u8], usize, foldhash::fast::RandomState>;
        #[allow(clippy::too_many_arguments)]
        fn maybe_add<'a>(
            this: &Processor,
            s: &'a [u8],
            syms: &[Sym],
            agenda: &mut BinaryHeap<Pair>,
            rev: &mut RevMerge<'a>,
            left: isize,
            right: isize,
        ) {
            if left < 0 || right < 0 {
                return;
            }
            let (l, r) = (&syms[left as usize], &syms[right as usize]);
            if l.freeze || r.freeze {
                return;
            }
            let piece = &s[l.start..l.start + l.len + r.len];
            let Some(&id) = this.normal.get(piece) else {
                return;
            };
            let p = &this.pieces[id as usize];
            agenda.push(Pair {
                score: p.score,
                left: left as usize,
                right: right as usize,
                size: piece.len(),
            });
            if p.ty == PieceType::Unused {
                rev.insert(piece, l.len);
            }
        }
        for i in 1..syms.len() as isize {
            maybe_add(self, s, &syms, &mut agenda, &mut rev_merge, i - 1, i);
        }
        while let Some(top) = agenda.pop() {
            let (l, r) = (&syms[top.left], &syms[top.right]);
            if l.len == 0 || r.len == 0 || l.len + r.len != top.size {
                continue;
            }
            if drop_all {
                continue;
            }
            let (rnext, rlen) = (r.next, r.len);
            syms[top.left].len += rlen;
            syms[top.left].next = rnext;
            if rnext >= 0 {
                syms[rnext as usize].prev = top.left as isize;
            }
            syms[top.right].len = 0;
            let lprev = syms[top.left].prev;
            maybe_add(
                self,
                s,
                &syms,
                &mut agenda,
                &mut rev_merge,
                lprev,
                top.left as isize,
            );
            maybe_add(
                self,
                s,
                &syms,
                &mut agenda,
                &mut rev_merge,
                top.left as isize,
                rnext,
            );
        }
        // Resegment UNUSED results into the pairs that formed them (an explicit stack: the
        // recursion depth of sentencepiece's lambda is bounded only by the piece length).
        let mut out = Vec::with_capacity(syms.len());
        let mut stack: Vec<(usize, usize)> = Vec::new();
        let mut index: isize = if syms.is_empty() { -1 } else { 0 };
        while index >= 0 {
            let sym = &syms[index as usize];
            stack.push((sym.start, sym.len));
            while let Some((a, n)) = stack.pop() {
                let w = &s[a..a + n];
                let id = self.piece_to_id(w);
                if self.ty(id) != PieceType::Unused {
                    out.push((n, id));
                    continue;
                }
                match rev_merge.get(w) {
                    Some(&llen) if llen > 0 && llen < n => {
                        stack.push((a + llen, n - llen));
                        stack.push((a, llen));
                    }
                    _ => out.push((n, id)),
                }
            }
            index = sym.next;
        }
        out
    }

    /// word `Model::Encode`: a word starts at the text start and at every "▁".
    fn encode_word(&self, s: &[u8]) -> Vec<(usize, i32)> {
        let mut words: Vec<(usize, usize)> = Vec::new();
        let mut pos = 0;
        while pos < s.len() {
            let n = one_char_len(s[pos]).min(s.len() - pos);
            if pos == 0 || s[pos..pos + n] == *SPACE_SYMBOL {
                words.push((pos, 0));
            }
            if let Some(w) = words.last_mut() {
                w.1 += n;
            }
            pos += n;
        }
        words
            .into_iter()
            .map(|(a, n)| (n, self.piece_to_id(&s[a..a + n])))
            .collect()
    }

    /// char `Model::Encode`: one character (or user-defined symbol) per piece.
    fn encode_char(&self, s: &[u8]) -> Vec<(usize, i32)> {
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < s.len() {
            let (n, _) = self.prefix_match(&s[pos..]);
            out.push((n, self.piece_to_id(&s[pos..pos + n])));
            pos += n;
        }
        out
    }

    /// `Decode` of ids: every id must be in `[0, vocab size)`.
    pub fn decode_ids(&self, ids: &[i32], opts: ExtraOptions) -> Result<Vec<u8>, SpmError> {
        let mut pieces = Vec::with_capacity(ids.len());
        for &id in ids {
            pieces.push(self.id_to_piece(id as i64)?);
        }
        self.decode_pieces(&pieces, opts)
    }

    /// `Decode` of piece strings (ids via `PieceToId`).
    pub fn decode_pieces<P: AsRef<[u8]>>(
        &self,
        pieces: &[P],
        opts: ExtraOptions,
    ) -> Result<Vec<u8>, SpmError> {
        self.check_options(opts)?;
        let mut sp: Vec<(&[u8], i32)> = Vec::with_capacity(pieces.len() + 2);
        for p in pieces {
            let p = p.as_ref();
            sp.push((p, self.piece_to_id(p)));
        }
        if opts.bos {
            sp.insert(0, (&self.bos_piece, self.piece_to_id(&self.bos_piece)));
        }
        if opts.eos {
            sp.push((&self.eos_piece, self.piece_to_id(&self.eos_piece)));
        }
        if opts.reverse {
            sp.reverse();
        }
        let mut text = Vec::new();
        let mut bytes = Vec::new();
        for &(piece, id) in &sp {
            let ty = self.ty(id);
            if ty == PieceType::Byte {
                // BYTE pieces were checked to be "<0xXX>" at load.
                bytes.push(piece_to_byte(piece).unwrap_or(0));
                continue;
            }
            flush_bytes(&mut bytes, &mut text);
            match ty {
                PieceType::Control => {}
                PieceType::Unknown => {
                    if self.pieces[id as usize].text == piece {
                        text.extend_from_slice(&self.unk_surface);
                    } else {
                        text.extend_from_slice(piece);
                    }
                }
                _ => {
                    let mut p = piece;
                    if text.is_empty() && self.decode_strip_dummy {
                        p = p.strip_prefix(SPACE_SYMBOL).unwrap_or(p);
                    }
                    replace_space_symbol(p, &mut text);
                }
            }
        }
        flush_bytes(&mut bytes, &mut text);
        if let Some(d) = &self.denormalizer {
            // `Normalizer::Normalize(string)`: errors give the empty string.
            let mut out = Vec::new();
            let mut n2o = Vec::new();
            if d.normalize(&text, None, MAX_MODEL_BYTES, &mut out, &mut n2o)
                .is_err()
            {
                out.clear();
            }
            text = out;
        }
        Ok(text)
    }
}

/// Byte pieces: each valid UTF-8 character is copied, each bad byte becomes U+FFFD.
fn flush_bytes(bytes: &mut Vec<u8>, text: &mut Vec<u8>) {
    let mut i = 0;
    while i < bytes.len() {
        match valid_char_len(&bytes[i..]) {
            Some(n) => {
                text.extend_from_slice(&bytes[i..i + n]);
                i += n;
            }
            None => {
                text.extend_from_slice(REPLACEMENT);
                i += 1;
            }
        }
    }
    bytes.clear();
}

fn replace_space_symbol(p: &[u8], out: &mut Vec<u8>) {
    let mut rest = p;
    while let Some(i) = memchr::memmem::find(rest, SPACE_SYMBOL) {
        out.extend_from_slice(&rest[..i]);
        out.push(b' ');
        rest = &rest[i + SPACE_SYMBOL.len()..];
    }
    out.extend_from_slice(rest);
}

#[cfg(test)]
mod tests {
    use super::super::normalizer::decode_utf8;
    use super::*;

    #[test]
    fn byte_pieces_round_trip() {
        for b in 0..=255u8 {
            assert_eq!(piece_to_byte(&byte_piece(b)), Some(b));
        }
        assert_eq!(piece_to_byte(b"<0xab>"), None);
        assert_eq!(piece_to_byte(b"<0x4>"), None);
    }

    #[test]
    fn decode_utf8_like_sentencepiece() {
        assert_eq!(decode_utf8(b"\xED\xA0\x80"), (0xFFFD, 1));
        assert_eq!(decode_utf8(b"\xC0\xAF"), (0xFFFD, 1));
        assert_eq!(decode_utf8("\u{FFFD}".as_bytes()), (0xFFFD, 3));
        assert_eq!(valid_char_len("\u{FFFD}".as_bytes()), Some(3));
        assert_eq!(valid_char_len(b"\xF4\x90\x80\x80"), None);
    }

    #[test]
    fn hostile_protos_are_typed_errors() {
        assert!(matches!(
            Processor::from_bytes(b"\xff\xff\xff"),
            Err(SpmError::Proto(_))
        ));
        // No pieces at all: no unk.
        assert!(matches!(Processor::from_bytes(b""), Err(SpmError::Load(_))));
    }
}

//! sentencepiece's normalizer (v0.1.96 src/normalizer.cc): user-defined symbols copied raw,
//! then the longest precompiled-charsmap rule, then one UTF-8 character; bad bytes become
//! U+FFFD one byte at a time. Whitespace handling (dummy prefix, extra-space removal, `▁`
//! escaping) and the normalized-to-original byte map (`n2o`) follow `Normalizer::Normalize`.

use super::darts::DoubleArray;
use super::trie::Trie;
use super::SpmError;

/// U+2581 LOWER ONE EIGHTH BLOCK, sentencepiece's whitespace symbol.
pub(crate) const SPACE_SYMBOL: &[u8] = "\u{2581}".as_bytes();
const REPLACEMENT: &[u8] = "\u{FFFD}".as_bytes();
/// `Normalizer::kMaxTrieResultsSize`: prefix matches beyond this many are not considered.
const MAX_TRIE_RESULTS: usize = 32;

/// sentencepiece `string_util::OneCharLen`: the length a lead byte announces.
#[inline]
pub(crate) fn one_char_len(b: u8) -> usize {
    const T: [u8; 16] = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4];
    T[(b >> 4) as usize] as usize
}

fn is_trail(b: u8) -> bool {
    (b as i8) < -0x40
}

fn valid_cp(c: u32) -> bool {
    c < 0xD800 || (0xE000..=0x10FFFF).contains(&c)
}

/// sentencepiece `string_util::DecodeUTF8`: (code point or U+FFFD, length); bad input has
/// length 1. Overlongs, surrogates and values above U+10FFFF are bad.
pub(crate) fn decode_utf8(s: &[u8]) -> (u32, usize) {
    let len = s.len();
    let b0 = s[0];
    if b0 < 0x80 {
        return (b0 as u32, 1);
    } else if len >= 2 && (b0 & 0xE0) == 0xC0 {
        let cp = ((b0 as u32 & 0x1F) << 6) | (s[1] as u32 & 0x3F);
        if is_trail(s[1]) && cp >= 0x80 && valid_cp(cp) {
            return (cp, 2);
        }
    } else if len >= 3 && (b0 & 0xF0) == 0xE0 {
        let cp = ((b0 as u32 & 0x0F) << 12) | ((s[1] as u32 & 0x3F) << 6) | (s[2] as u32 & 0x3F);
        if is_trail(s[1]) && is_trail(s[2]) && cp >= 0x800 && valid_cp(cp) {
            return (cp, 3);
        }
    } else if len >= 4 && (b0 & 0xF8) == 0xF0 {
        let cp = ((b0 as u32 & 0x07) << 18)
            | ((s[1] as u32 & 0x3F) << 12)
            | ((s[2] as u32 & 0x3F) << 6)
            | (s[3] as u32 & 0x3F);
        if is_trail(s[1]) && is_trail(s[2]) && is_trail(s[3]) && cp >= 0x10000 && valid_cp(cp) {
            return (cp, 4);
        }
    }
    (0xFFFD, 1)
}

/// `IsValidDecodeUTF8`: the length of one valid character (a literal U+FFFD counts as valid).
pub(crate) fn valid_char_len(s: &[u8]) -> Option<usize> {
    let (c, n) = decode_utf8(s);
    (c != 0xFFFD || n == 3).then_some(n)
}

/// A decoded precompiled charsmap: `[u32 LE trie size][double array][NUL-terminated strings]`.
#[derive(Debug, Clone)]
struct CharsMap {
    trie: DoubleArray,
    normalized: Vec<u8>,
}

impl CharsMap {
    fn decode(blob: &[u8]) -> Result<CharsMap, SpmError> {
        if blob.len() <= 4 {
            return Err(SpmError::Load(
                "Blob for normalization rule is broken.".into(),
            ));
        }
        let size = u32::from_le_bytes([blob[0], blob[1], blob[2], blob[3]]) as usize;
        if size >= blob.len() {
            return Err(SpmError::Load(
                "Trie data size exceeds the input blob size.".into(),
            ));
        }
        let rest = &blob[4..];
        // `size < blob.len()`, so `size <= rest.len()`.
        let (trie, normalized) = rest.split_at(size);
        Ok(CharsMap {
            trie: DoubleArray::from_le_bytes(trie),
            normalized: normalized.to_vec(),
        })
    }

    /// The longest rule matching a prefix of `input`: (replacement, consumed length).
    fn longest(&self, input: &[u8]) -> Result<Option<(&[u8], usize)>, SpmError> {
        let (mut len, mut val) = (0usize, 0usize);
        self.trie
            .common_prefix_search(input, MAX_TRIE_RESULTS, |v, l| {
                if len == 0 || l > len {
                    len = l;
                    val = v as usize;
                }
            });
        if len == 0 {
            return Ok(None);
        }
        // The replacement runs to its NUL (or, in a hostile blob, to the end of the blob).
        let tail = self.normalized.get(val..).ok_or_else(|| {
            SpmError::Encode(format!(
                "precompiled charsmap rule points at byte {val}, past the {} byte string pool",
                self.normalized.len()
            ))
        })?;
        let end = memchr::memchr(0, tail).unwrap_or(tail.len());
        Ok(Some((&tail[..end], len)))
    }
}

/// A normalizer for one `NormalizerSpec`.
#[derive(Debug, Clone)]
pub(crate) struct Normalizer {
    charsmap: Option<CharsMap>,
    add_dummy_prefix: bool,
    remove_extra_whitespaces: bool,
    escape_whitespaces: bool,
    treat_whitespace_as_suffix: bool,
}

impl Normalizer {
    pub(crate) fn new(
        precompiled_charsmap: &[u8],
        add_dummy_prefix: bool,
        remove_extra_whitespaces: bool,
        escape_whitespaces: bool,
        treat_whitespace_as_suffix: bool,
    ) -> Result<Normalizer, SpmError> {
        let charsmap = if precompiled_charsmap.is_empty() {
            None
        } else {
            Some(CharsMap::decode(precompiled_charsmap)?)
        };
        Ok(Normalizer {
            charsmap,
            add_dummy_prefix,
            remove_extra_whitespaces,
            escape_whitespaces,
            treat_whitespace_as_suffix,
        })
    }

    /// `NormalizePrefix`: (output bytes, input bytes consumed) for the chunk at `input[0]`.
    #[inline]
    fn prefix<'a>(
        &'a self,
        input: &'a [u8],
        matcher: Option<&Trie>,
    ) -> Result<(&'a [u8], usize), SpmError> {
        if let Some(m) = matcher {
            if let Some(n) = m.longest_prefix(input) {
                return Ok((&input[..n], n));
            }
        }
        if let Some(cm) = &self.charsmap {
            if let Some(r) = cm.longest(input)? {
                return Ok(r);
            }
        }
        Ok(match valid_char_len(input) {
            Some(n) => (&input[..n], n),
            None => (REPLACEMENT, 1),
        })
    }

    /// `Normalizer::Normalize`: the normalized text and, per normalized byte plus one final
    /// entry, the input byte offset it came from. `max_len` caps the normalized length (a
    /// hostile charsmap can expand every byte into a long string).
    pub(crate) fn normalize(
        &self,
        mut input: &[u8],
        matcher: Option<&Trie>,
        max_len: usize,
        normalized: &mut Vec<u8>,
        n2o: &mut Vec<usize>,
    ) -> Result<(), SpmError> {
        normalized.clear();
        n2o.clear();
        if input.is_empty() {
            return Ok(());
        }
        let mut consumed = 0usize;
        if self.remove_extra_whitespaces {
            while !input.is_empty() {
                let (out, n) = self.prefix(input, matcher)?;
                if out != b" " {
                    break;
                }
                input = &input[n..];
                consumed += n;
            }
        }
        if input.is_empty() {
            return Ok(());
        }
        normalized.reserve(input.len() * 3);
        n2o.reserve(input.len() * 3);
        let esc = self.escape_whitespaces;
        let add_ws = |normalized: &mut Vec<u8>, n2o: &mut Vec<usize>, consumed: usize| {
            if esc {
                normalized.extend_from_slice(SPACE_SYMBOL);
                n2o.extend_from_slice(&[consumed; 3]);
            } else {
                normalized.push(b' ');
                n2o.push(consumed);
            }
        };
        if !self.treat_whitespace_as_suffix && self.add_dummy_prefix {
            add_ws(normalized, n2o, consumed);
        }
        let mut is_prev_space = self.remove_extra_whitespaces;
        while !input.is_empty() {
            let (out, n) = self.prefix(input, matcher)?;
            let mut sp = out;
            while is_prev_space && sp.first() == Some(&b' ') {
                sp = &sp[1..];
            }
            if !sp.is_empty() {
                for &b in sp {
                    if esc && b == b' ' {
                        normalized.extend_from_slice(SPACE_SYMBOL);
                        n2o.extend_from_slice(&[consumed; 3]);
                    } else {
                        normalized.push(b);
                        n2o.push(consumed);
                    }
                }
                is_prev_space = sp.last() == Some(&b' ');
                if normalized.len() > max_len {
                    return Err(SpmError::Limit(format!(
                        "normalized text exceeds {max_len} bytes"
                    )));
                }
            }
            consumed += n;
            input = &input[n..];
            if !self.remove_extra_whitespaces {
                is_prev_space = false;
            }
        }
        if self.remove_extra_whitespaces {
            let space: &[u8] = if esc { SPACE_SYMBOL } else { b" " };
            while normalized.ends_with(space) {
                let len = normalized.len() - space.len();
                consumed = n2o[len];
                normalized.truncate(len);
                n2o.truncate(len);
            }
        }
        if self.treat_whitespace_as_suffix && self.add_dummy_prefix {
            add_ws(normalized, n2o, consumed);
        }
        n2o.push(consumed);
        Ok(())
    }
}

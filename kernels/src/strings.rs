//! Byte-string kernels: hashing, splitting and ASCII case mapping.

/// FarmHash constants (primes between 2^63 and 2^64).
const K0: u64 = 0xc3a5_c85c_97cb_3127;
const K1: u64 = 0xb492_b66f_be98_f273;
const K2: u64 = 0x9ae1_6a3b_2f90_404f;

#[inline(always)]
fn fetch64(s: &[u8], i: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&s[i..i + 8]);
    u64::from_le_bytes(b)
}

#[inline(always)]
fn fetch32(s: &[u8], i: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&s[i..i + 4]);
    u32::from_le_bytes(b)
}

#[inline(always)]
fn shift_mix(v: u64) -> u64 {
    v ^ (v >> 47)
}

#[inline(always)]
fn hash_len16_mul(u: u64, v: u64, mul: u64) -> u64 {
    let mut a = (u ^ v).wrapping_mul(mul);
    a ^= a >> 47;
    let mut b = (v ^ a).wrapping_mul(mul);
    b ^= b >> 47;
    b.wrapping_mul(mul)
}

fn hash_len_0_to_16(s: &[u8]) -> u64 {
    let len = s.len();
    if len >= 8 {
        let mul = K2.wrapping_add(len as u64 * 2);
        let a = fetch64(s, 0).wrapping_add(K2);
        let b = fetch64(s, len - 8);
        let c = b.rotate_right(37).wrapping_mul(mul).wrapping_add(a);
        let d = a.rotate_right(25).wrapping_add(b).wrapping_mul(mul);
        return hash_len16_mul(c, d, mul);
    }
    if len >= 4 {
        let mul = K2.wrapping_add(len as u64 * 2);
        let a = fetch32(s, 0) as u64;
        return hash_len16_mul(len as u64 + (a << 3), fetch32(s, len - 4) as u64, mul);
    }
    if len > 0 {
        let a = s[0] as u32;
        let b = s[len >> 1] as u32;
        let c = s[len - 1] as u32;
        let y = a.wrapping_add(b << 8);
        let z = (len as u32).wrapping_add(c << 2);
        return shift_mix((y as u64).wrapping_mul(K2) ^ (z as u64).wrapping_mul(K0))
            .wrapping_mul(K2);
    }
    K2
}

fn hash_len_17_to_32(s: &[u8]) -> u64 {
    let len = s.len();
    let mul = K2.wrapping_add(len as u64 * 2);
    let a = fetch64(s, 0).wrapping_mul(K1);
    let b = fetch64(s, 8);
    let c = fetch64(s, len - 8).wrapping_mul(mul);
    let d = fetch64(s, len - 16).wrapping_mul(K2);
    hash_len16_mul(
        a.wrapping_add(b)
            .rotate_right(43)
            .wrapping_add(c.rotate_right(30))
            .wrapping_add(d),
        a.wrapping_add(b.wrapping_add(K2).rotate_right(18))
            .wrapping_add(c),
        mul,
    )
}

fn hash_len_33_to_64(s: &[u8]) -> u64 {
    let len = s.len();
    let mul = K2.wrapping_add(len as u64 * 2);
    let a = fetch64(s, 0).wrapping_mul(K2);
    let b = fetch64(s, 8);
    let c = fetch64(s, len - 8).wrapping_mul(mul);
    let d = fetch64(s, len - 16).wrapping_mul(K2);
    let y = a
        .wrapping_add(b)
        .rotate_right(43)
        .wrapping_add(c.rotate_right(30))
        .wrapping_add(d);
    let z = hash_len16_mul(
        y,
        a.wrapping_add(b.wrapping_add(K2).rotate_right(18))
            .wrapping_add(c),
        mul,
    );
    let e = fetch64(s, 16).wrapping_mul(mul);
    let f = fetch64(s, 24);
    let g = y.wrapping_add(fetch64(s, len - 32)).wrapping_mul(mul);
    let h = z.wrapping_add(fetch64(s, len - 24)).wrapping_mul(mul);
    hash_len16_mul(
        e.wrapping_add(f)
            .rotate_right(43)
            .wrapping_add(g.rotate_right(30))
            .wrapping_add(h),
        e.wrapping_add(f.wrapping_add(a).rotate_right(18))
            .wrapping_add(g),
        mul,
    )
}

/// farmhash `WeakHashLen32WithSeeds` over `s[i..i+32]`; returns `(first, second)`.
#[inline(always)]
fn weak_hash_len32_with_seeds(s: &[u8], i: usize, a: u64, b: u64) -> (u64, u64) {
    let w = fetch64(s, i);
    let x = fetch64(s, i + 8);
    let y = fetch64(s, i + 16);
    let z = fetch64(s, i + 24);
    let mut a = a.wrapping_add(w);
    let mut b = b.wrapping_add(a).wrapping_add(z).rotate_right(21);
    let c = a;
    a = a.wrapping_add(x);
    a = a.wrapping_add(y);
    b = b.wrapping_add(a.rotate_right(44));
    (a.wrapping_add(z), b.wrapping_add(c))
}

/// FarmHash `Fingerprint64` (`farmhashna::Hash64`), the stable 64-bit string fingerprint
/// TensorFlow uses for `Fingerprint64` and `StringToHashBucketFast`
/// (`bucket = fingerprint64(s) % num_buckets`).
///
/// A straight port of the C++ reference; in particular strings longer than 64 bytes run the
/// 64-byte main loop `(len - 1) / 64` times and then mix the *last* 64 bytes (overlapping the
/// loop's input when `len` is not a multiple of 64).
pub fn fingerprint64(s: &[u8]) -> u64 {
    const SEED: u64 = 81;
    let len = s.len();
    if len <= 32 {
        return if len <= 16 {
            hash_len_0_to_16(s)
        } else {
            hash_len_17_to_32(s)
        };
    }
    if len <= 64 {
        return hash_len_33_to_64(s);
    }
    let mut x = SEED;
    let mut y = SEED.wrapping_mul(K1).wrapping_add(113);
    let mut z = shift_mix(y.wrapping_mul(K2).wrapping_add(113)).wrapping_mul(K2);
    let mut v = (0u64, 0u64);
    let mut w = (0u64, 0u64);
    x = x.wrapping_mul(K2).wrapping_add(fetch64(s, 0));

    // The C++ loop is `do { ... s += 64; } while (s != end)` with
    // `end = s + ((len - 1) / 64) * 64`: exactly (len-1)/64 iterations (>= 1 here).
    let iters = (len - 1) / 64;
    for it in 0..iters {
        let o = it * 64;
        x = x
            .wrapping_add(y)
            .wrapping_add(v.0)
            .wrapping_add(fetch64(s, o + 8))
            .rotate_right(37)
            .wrapping_mul(K1);
        y = y
            .wrapping_add(v.1)
            .wrapping_add(fetch64(s, o + 48))
            .rotate_right(42)
            .wrapping_mul(K1);
        x ^= w.1;
        y = y.wrapping_add(v.0).wrapping_add(fetch64(s, o + 40));
        z = z.wrapping_add(w.0).rotate_right(33).wrapping_mul(K1);
        v = weak_hash_len32_with_seeds(s, o, v.1.wrapping_mul(K1), x.wrapping_add(w.0));
        w = weak_hash_len32_with_seeds(
            s,
            o + 32,
            z.wrapping_add(w.1),
            y.wrapping_add(fetch64(s, o + 16)),
        );
        std::mem::swap(&mut z, &mut x);
    }
    let mul = K1.wrapping_add((z & 0xff) << 1);
    // Point at the last 64 bytes of input.
    let o = len - 64;
    w.0 = w.0.wrapping_add((len as u64 - 1) & 63);
    v.0 = v.0.wrapping_add(w.0);
    w.0 = w.0.wrapping_add(v.0);
    x = x
        .wrapping_add(y)
        .wrapping_add(v.0)
        .wrapping_add(fetch64(s, o + 8))
        .rotate_right(37)
        .wrapping_mul(mul);
    y = y
        .wrapping_add(v.1)
        .wrapping_add(fetch64(s, o + 48))
        .rotate_right(42)
        .wrapping_mul(mul);
    x ^= w.1.wrapping_mul(9);
    y = y
        .wrapping_add(v.0.wrapping_mul(9))
        .wrapping_add(fetch64(s, o + 40));
    z = z.wrapping_add(w.0).rotate_right(33).wrapping_mul(mul);
    v = weak_hash_len32_with_seeds(s, o, v.1.wrapping_mul(mul), x.wrapping_add(w.0));
    w = weak_hash_len32_with_seeds(
        s,
        o + 32,
        z.wrapping_add(w.1),
        y.wrapping_add(fetch64(s, o + 16)),
    );
    std::mem::swap(&mut z, &mut x);
    hash_len16_mul(
        hash_len16_mul(v.0, w.0, mul)
            .wrapping_add(shift_mix(y).wrapping_mul(K0))
            .wrapping_add(z),
        hash_len16_mul(v.1, w.1, mul).wrapping_add(x),
        mul,
    )
}

/// Splits `s` on every occurrence of the non-empty byte string `delim`, keeping empty tokens,
/// and appends the `(start, end)` byte ranges of the tokens to `out` (which is not cleared).
///
/// Semantics of TF `StringSplitV2` with a non-empty `sep` (and Python `str.split(sep)`),
/// except that an empty input yields **no** tokens (TF returns zero tokens for `""`):
/// `"a  b"` on `" "` gives `["a", "", "b"]`; `"   "` on `" "` gives four empty tokens.
/// Occurrences are found left to right without overlap.
///
/// # Panics
///
/// If `delim` is empty (use [`split_whitespace_ascii`] for TF's empty-`sep` semantics).
pub fn split_on_delimiter(s: &[u8], delim: &[u8], out: &mut Vec<(usize, usize)>) {
    assert!(!delim.is_empty(), "split_on_delimiter: empty delimiter");
    if s.is_empty() {
        return;
    }
    let mut start = 0;
    let mut push = |i: usize| {
        out.push((start, i));
        start = i + delim.len();
    };
    match delim {
        [d] => for_each_byte(s, *d, &mut push),
        // memmem's matches are non-overlapping, left to right, as Python's and TF's are.
        _ => memchr::memmem::find_iter(s, delim).for_each(&mut push),
    }
    out.push((start, s.len()));
}

/// Calls `f(i)` for every `i` with `s[i] == d`, in order, testing eight bytes per step (a
/// word-at-a-time zero-byte test). Sentences are short and tokens a few bytes long, so this
/// beats both a byte loop and `memchr` (whose per-call setup dominates at a match every few
/// bytes).
fn for_each_byte(s: &[u8], d: u8, mut f: impl FnMut(usize)) {
    const LO: u64 = 0x0101_0101_0101_0101;
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let pat = LO * u64::from(d);
    let mut words = s.chunks_exact(8);
    let mut base = 0;
    for w in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        let x = u64::from_le_bytes(b) ^ pat;
        // Bit 7 of each byte of `m` is set exactly when that byte of `x` is zero: the low
        // seven bits plus 0x7f carry into bit 7 unless they are all zero, and never out of
        // the byte.
        let mut m = !(((x & LOW7) + LOW7) | x | LOW7);
        while m != 0 {
            f(base + (m.trailing_zeros() / 8) as usize);
            m &= m - 1;
        }
        base += 8;
    }
    for (j, &c) in words.remainder().iter().enumerate() {
        if c == d {
            f(base + j);
        }
    }
}

/// Whether `c` is ASCII whitespace as in C `isspace`: space, `\t`, `\n`, `\v`, `\f`, `\r`.
#[inline]
pub fn is_ascii_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Splits `s` on runs of ASCII whitespace (space, `\t`, `\n`, `\r`, `\v`, `\f`), dropping
/// empty tokens, and appends the `(start, end)` byte ranges to `out` (not cleared).
///
/// TF `StringSplitV2` semantics for an empty / absent `sep` (and Python `str.split()` for
/// ASCII): leading and trailing whitespace produce no tokens; `""` and `"  "` give none.
pub fn split_whitespace_ascii(s: &[u8], out: &mut Vec<(usize, usize)>) {
    let mut i = 0;
    let n = s.len();
    while i < n {
        while i < n && is_ascii_space(s[i]) {
            i += 1;
        }
        if i == n {
            break;
        }
        let start = i;
        while i < n && !is_ascii_space(s[i]) {
            i += 1;
        }
        out.push((start, i));
    }
}

/// Maps ASCII `A-Z` to `a-z` in place; all other bytes (including UTF-8 multibyte
/// sequences) are unchanged.
pub fn ascii_lowercase_in_place(s: &mut [u8]) {
    s.make_ascii_lowercase();
}

/// Maps ASCII `a-z` to `A-Z` in place; all other bytes are unchanged.
pub fn ascii_uppercase_in_place(s: &mut [u8]) {
    s.make_ascii_uppercase();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint64_known_vectors() {
        assert_eq!(fingerprint64(b"Hello"), 15404698994557526151);
        assert_eq!(fingerprint64(b"World"), 18308117990299812472);
        assert_eq!(fingerprint64(b"a"), 12917804110809363939);
        assert_eq!(fingerprint64(b"b"), 11795596070477164822);
        assert_eq!(fingerprint64(b"c"), 11430444447143000872);
        assert_eq!(fingerprint64(b"d"), 4470636696479570465);
        assert_eq!(fingerprint64(b""), 11160318154034397263);
    }

    #[test]
    fn fingerprint64_matches_reference_all_lengths() {
        let data: Vec<u8> = (0..2100u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        for len in 0..=2100 {
            let s = &data[..len];
            assert_eq!(fingerprint64(s), farmhash2::fingerprint64(s), "len {len}");
        }
    }

    fn toks<'a>(s: &'a [u8], r: &[(usize, usize)]) -> Vec<&'a [u8]> {
        r.iter().map(|&(a, b)| &s[a..b]).collect()
    }

    #[test]
    fn split_delimiter_cases() {
        let mut v = Vec::new();
        split_on_delimiter(b"a  b", b" ", &mut v);
        assert_eq!(toks(b"a  b", &v), vec![&b"a"[..], b"", b"b"]);
        v.clear();
        split_on_delimiter(b"", b" ", &mut v);
        assert!(v.is_empty());
        split_on_delimiter(b"   ", b" ", &mut v);
        assert_eq!(v.len(), 4);
        assert!(v.iter().all(|&(a, b)| a == b));
        v.clear();
        split_on_delimiter(b"a<>b<><>c<", b"<>", &mut v);
        assert_eq!(toks(b"a<>b<><>c<", &v), vec![&b"a"[..], b"b", b"", b"c<"]);
        v.clear();
        split_on_delimiter(b"abc", b"x", &mut v);
        assert_eq!(v, vec![(0, 3)]);
    }

    /// Byte-at-a-time reference for `split_on_delimiter` (the scan it replaced).
    fn split_reference(s: &[u8], delim: &[u8]) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        if s.is_empty() {
            return out;
        }
        let (mut start, mut i) = (0, 0);
        while i + delim.len() <= s.len() {
            if &s[i..i + delim.len()] == delim {
                out.push((start, i));
                i += delim.len();
                start = i;
            } else {
                i += 1;
            }
        }
        out.push((start, s.len()));
        out
    }

    #[test]
    fn split_delimiter_matches_bytewise_scan() {
        // Pseudo-random strings over a small alphabet (many runs and overlaps), every length
        // up to 100, against one- to three-byte delimiters, some of them self-overlapping.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for delim in [
            &b" "[..],
            b"a",
            b"\0",
            b"\x80",
            b"aa",
            b"ab",
            b"aba",
            b"\xff",
        ] {
            for len in 0..100 {
                let s: Vec<u8> = (0..len)
                    .map(|_| b"ab \xff\0\x80\x7f"[(next() % 7) as usize])
                    .collect();
                let mut got = Vec::new();
                split_on_delimiter(&s, delim, &mut got);
                assert_eq!(got, split_reference(&s, delim), "{s:?} on {delim:?}");
            }
        }
    }

    #[test]
    fn split_whitespace_cases() {
        let s = b" \tab  c\r\n\x0b\x0cd ";
        let mut v = Vec::new();
        split_whitespace_ascii(s, &mut v);
        assert_eq!(toks(s, &v), vec![&b"ab"[..], b"c", b"d"]);
        v.clear();
        split_whitespace_ascii(b"   ", &mut v);
        split_whitespace_ascii(b"", &mut v);
        assert!(v.is_empty());
    }

    #[test]
    fn case_mapping() {
        let mut s = "HeLLo Ünï 123".as_bytes().to_vec();
        ascii_lowercase_in_place(&mut s);
        assert_eq!(s, "hello Ünï 123".as_bytes());
        ascii_uppercase_in_place(&mut s);
        assert_eq!(s, "HELLO ÜNï 123".as_bytes());
    }
}

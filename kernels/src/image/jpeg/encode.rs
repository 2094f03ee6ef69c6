//! A baseline JPEG encoder that follows libjpeg-turbo 2.1.4's compression path with the
//! settings TF's `jpeg_mem.cc` (`Compress`) uses, so its bytes equal TF's `EncodeJpeg`:
//! `jpeg_set_defaults` (JFIF 1.01 APP0, YCbCr 2×2/1×1/1×1 or one gray component, the
//! accurate integer forward DCT, the standard Huffman tables of Annex K.3),
//! `jpeg_set_quality(quality, force_baseline)` (Annex K.1 tables scaled by `jcparam.c`'s
//! rule, clamped to 1..=255), the fixed-point RGB→YCbCr tables of `jccolor.c`, the edge
//! replication of `jcprepct.c` / `jcsample.c` and `jcsample.c`'s `h2v2_downsample` with its
//! alternating 1,2 rounding bias, the islow FDCT of `jfdctint.c`, the reciprocal
//! quantization of `jcdctmgr.c` (`compute_reciprocal` + `quantize`), the dummy blocks of
//! `jccoefct.c` (DC copied from the block to the left / above inside the MCU), the marker
//! layout of `jcmarker.c` (SOI, APP0, optional APP1 XMP, DQT per table, SOF0, DHT per table
//! in scan order, SOS, data, EOI), and `optimize_coding`'s Huffman tables built by
//! `jpeg_gen_optimal_table` (`jchuff.c`). libjpeg-turbo's SIMD paths that TF compiles in
//! produce the same numbers as these C paths.
//!
//! Progressive output (`jpeg_simple_progression`, SOF2) shares everything up to the quantized
//! blocks and the frame header; its scans are written by [`super::progressive`].

use super::entropy::NATURAL;
use super::JpegError;

/// `jcparam.c`'s `std_luminance_quant_tbl` (Annex K.1), natural order.
const STD_LUMA_Q: [u16; 64] = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113,
    92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
];

/// `jcparam.c`'s `std_chrominance_quant_tbl`, natural order.
const STD_CHROMA_Q: [u16; 64] = [
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
];

// `jstdhuff.c`: code counts per length 1..=16, then the symbols.
const DC_LUMA_BITS: [u8; 16] = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
const DC_CHROMA_BITS: [u8; 16] = [0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0];
const DC_VALS: [u8; 12] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
const AC_LUMA_BITS: [u8; 16] = [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d];
const AC_LUMA_VALS: [u8; 162] = [
    0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07,
    0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0,
    0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28,
    0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49,
    0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
    0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
    0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
    0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5,
    0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2,
    0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
    0xf9, 0xfa,
];
const AC_CHROMA_BITS: [u8; 16] = [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77];
const AC_CHROMA_VALS: [u8; 162] = [
    0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71,
    0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33, 0x52, 0xf0,
    0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18, 0x19, 0x1a, 0x26,
    0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48,
    0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
    0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87,
    0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5,
    0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3,
    0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda,
    0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
    0xf9, 0xfa,
];

/// Compression parameters (`jpeg_compress_struct` settings TF's `CompressFlags` map to).
#[derive(Debug, Clone, Default)]
pub struct EncodeOptions {
    /// 0..=100 (`jpeg_set_quality`; 0 behaves as 1).
    pub quality: u8,
    /// 4:2:0 chroma (libjpeg's default) instead of 4:4:4.
    pub chroma_downsampling: bool,
    /// `optimize_coding`: Huffman tables built from the image's statistics.
    pub optimize_coding: bool,
    /// `jpeg_simple_progression` (libjpeg then always optimises the Huffman tables).
    pub progressive: bool,
    /// JFIF density unit: 0 none, 1 dots per inch, 2 dots per cm.
    pub density_unit: u8,
    /// JFIF horizontal density.
    pub x_density: u16,
    /// JFIF vertical density.
    pub y_density: u16,
    /// XMP packet for an APP1 marker (`http://ns.adobe.com/xap/1.0/\0` is prepended).
    pub xmp: Vec<u8>,
}

/// `jpeg_quality_scaling` + `jpeg_add_quant_table(.., force_baseline = TRUE)`.
fn quant_table(basic: &[u16; 64], quality: u8) -> [u16; 64] {
    let q = i64::from(quality.clamp(1, 100));
    let scale = if q < 50 { 5000 / q } else { 200 - q * 2 };
    basic.map(|b| ((i64::from(b) * scale + 50) / 100).clamp(1, 255) as u16)
}

/// `compute_reciprocal` (16-bit `DCTELEM`, as in TF's SIMD build): `(reciprocal,
/// correction, shift)` with `q = ((|x| + correction) * reciprocal) >> shift`.
fn reciprocal(divisor: u32) -> (u32, u32, u32) {
    let b = 32 - divisor.leading_zeros() - 1; // flss(divisor) - 1
    let mut r = 16 + b;
    let mut fq = (1u32 << r) / divisor;
    let fr = (1u32 << r) % divisor;
    let mut c = divisor / 2;
    if fr == 0 {
        // Power of two: fq would not fit 16 bits.
        fq >>= 1;
        r -= 1;
    } else if fr <= divisor / 2 {
        c += 1;
    } else {
        fq += 1;
    }
    (fq, c, r)
}

/// `jpeg_fdct_islow` (jfdctint.c): output scaled up by 8.
fn fdct_islow(d: &mut [i32; 64]) {
    const CB: i32 = 13;
    const P1: i32 = 2;
    const F0_298: i32 = 2446;
    const F0_390: i32 = 3196;
    const F0_541: i32 = 4433;
    const F0_765: i32 = 6270;
    const F0_899: i32 = 7373;
    const F1_175: i32 = 9633;
    const F1_501: i32 = 12299;
    const F1_847: i32 = 15137;
    const F1_961: i32 = 16069;
    const F2_053: i32 = 16819;
    const F2_562: i32 = 20995;
    const F3_072: i32 = 25172;
    let descale = |x: i32, n: i32| (x + (1 << (n - 1))) >> n;
    // Pass 1 on rows (stride 1), pass 2 on columns (stride 8).
    for pass in 0..2 {
        let (step, stride) = if pass == 0 { (8, 1) } else { (1, 8) };
        for i in 0..8 {
            let base = i * step;
            let at = |k: usize| base + k * stride;
            let v = |k: usize| d[at(k)];
            let tmp0 = v(0) + v(7);
            let tmp7 = v(0) - v(7);
            let tmp1 = v(1) + v(6);
            let tmp6 = v(1) - v(6);
            let tmp2 = v(2) + v(5);
            let tmp5 = v(2) - v(5);
            let tmp3 = v(3) + v(4);
            let tmp4 = v(3) - v(4);
            let tmp10 = tmp0 + tmp3;
            let tmp13 = tmp0 - tmp3;
            let tmp11 = tmp1 + tmp2;
            let tmp12 = tmp1 - tmp2;
            let (o0, o4, sh) = if pass == 0 {
                ((tmp10 + tmp11) << P1, (tmp10 - tmp11) << P1, CB - P1)
            } else {
                (
                    descale(tmp10 + tmp11, P1),
                    descale(tmp10 - tmp11, P1),
                    CB + P1,
                )
            };
            let z1 = (tmp12 + tmp13) * F0_541;
            let o2 = descale(z1 + tmp13 * F0_765, sh);
            let o6 = descale(z1 - tmp12 * F1_847, sh);
            let z1 = tmp4 + tmp7;
            let z2 = tmp5 + tmp6;
            let z3 = tmp4 + tmp6;
            let z4 = tmp5 + tmp7;
            let z5 = (z3 + z4) * F1_175;
            let t4 = tmp4 * F0_298;
            let t5 = tmp5 * F2_053;
            let t6 = tmp6 * F3_072;
            let t7 = tmp7 * F1_501;
            let z1 = -z1 * F0_899;
            let z2 = -z2 * F2_562;
            let z3 = -z3 * F1_961 + z5;
            let z4 = -z4 * F0_390 + z5;
            let o7 = descale(t4 + z1 + z3, sh);
            let o5 = descale(t5 + z2 + z4, sh);
            let o3 = descale(t6 + z2 + z3, sh);
            let o1 = descale(t7 + z1 + z4, sh);
            for (k, o) in [o0, o1, o2, o3, o4, o5, o6, o7].into_iter().enumerate() {
                d[at(k)] = o;
            }
        }
    }
}

/// One component of the frame.
pub(super) struct Comp {
    pub(super) id: u8,
    h: usize,
    v: usize,
    /// Quantization / Huffman table index (0 luma, 1 chroma).
    pub(super) tbl: usize,
    /// `width_in_blocks`, `height_in_blocks`.
    bw: usize,
    bh: usize,
    /// Quantized blocks, row-major, natural order.
    pub(super) blocks: Vec<[i16; 64]>,
}

/// A Huffman code table (`jpeg_make_c_derived_tbl`) with the DHT contents it came from.
pub(super) struct HuffTable {
    pub(super) bits: [u8; 16],
    pub(super) vals: Vec<u8>,
    pub(super) code: [u16; 256],
    pub(super) size: [u8; 256],
}

impl HuffTable {
    fn new(bits: &[u8; 16], vals: &[u8]) -> Self {
        let mut code = [0u16; 256];
        let mut size = [0u8; 256];
        let mut c = 0u32;
        let mut k = 0;
        for (l, &n) in bits.iter().enumerate() {
            for _ in 0..n {
                let s = usize::from(vals[k]);
                code[s] = c as u16;
                size[s] = l as u8 + 1;
                c += 1;
                k += 1;
            }
            c <<= 1;
        }
        HuffTable {
            bits: *bits,
            vals: vals.to_vec(),
            code,
            size,
        }
    }

    /// `jpeg_gen_optimal_table`: Annex K.2's procedure with libjpeg's tie-breaking (the
    /// larger symbol number first) and its pseudo-symbol 256 reserving the all-ones code.
    pub(super) fn optimal(freq: &[u64; 257]) -> Result<Self, JpegError> {
        const MAX_CLEN: usize = 32;
        let mut freq = *freq;
        let mut bits = [0u32; MAX_CLEN + 1];
        let mut codesize = [0usize; 257];
        let mut others = [-1i32; 257];
        freq[256] = 1;
        loop {
            // libjpeg starts both searches at 1e9: larger counts are never picked.
            let mut c1 = -1i32;
            let mut v = 1_000_000_000u64;
            for (i, &f) in freq.iter().enumerate() {
                if f != 0 && f <= v {
                    v = f;
                    c1 = i as i32;
                }
            }
            let mut c2 = -1i32;
            v = 1_000_000_000u64;
            for (i, &f) in freq.iter().enumerate() {
                if f != 0 && f <= v && i as i32 != c1 {
                    v = f;
                    c2 = i as i32;
                }
            }
            if c2 < 0 {
                break;
            }
            let (mut a, mut b) = (c1 as usize, c2 as usize);
            freq[a] += freq[b];
            freq[b] = 0;
            codesize[a] += 1;
            while others[a] >= 0 {
                a = others[a] as usize;
                codesize[a] += 1;
            }
            others[a] = c2;
            codesize[b] += 1;
            while others[b] >= 0 {
                b = others[b] as usize;
                codesize[b] += 1;
            }
        }
        for &cs in &codesize {
            if cs > MAX_CLEN {
                // libjpeg's JERR_HUFF_CLEN_OVERFLOW (needs Fibonacci-skewed counts).
                return Err(JpegError::Unsupported(
                    "Huffman code length overflow in optimize_size".into(),
                ));
            }
            if cs != 0 {
                bits[cs] += 1;
            }
        }
        let mut i = MAX_CLEN;
        while i > 16 {
            while bits[i] > 0 {
                let mut j = i - 2;
                while bits[j] == 0 {
                    j -= 1;
                }
                bits[i] -= 2;
                bits[i - 1] += 1;
                bits[j + 1] += 2;
                bits[j] -= 1;
            }
            i -= 1;
        }
        while bits[i] == 0 {
            i -= 1;
        }
        bits[i] -= 1;
        let mut out = [0u8; 16];
        for (o, &b) in out.iter_mut().zip(&bits[1..=16]) {
            *o = b as u8;
        }
        let mut vals = Vec::new();
        for len in 1..=MAX_CLEN {
            for (s, &cs) in codesize[..256].iter().enumerate() {
                if cs == len {
                    vals.push(s as u8);
                }
            }
        }
        Ok(HuffTable::new(&out, &vals))
    }
}

/// Bit writer with 0xFF byte stuffing (`jchuff.c`'s `emit_bits` / `flush_bits`).
pub(super) struct Bits<'a> {
    out: &'a mut Vec<u8>,
    acc: u64,
    n: u32,
}

impl<'a> Bits<'a> {
    pub(super) fn new(out: &'a mut Vec<u8>) -> Self {
        Bits { out, acc: 0, n: 0 }
    }

    pub(super) fn put(&mut self, code: u32, size: u32) {
        self.acc = (self.acc << size) | u64::from(code & ((1u32 << size) - 1));
        self.n += size;
        while self.n >= 8 {
            self.n -= 8;
            let b = (self.acc >> self.n) as u8;
            self.out.push(b);
            if b == 0xff {
                self.out.push(0);
            }
        }
    }

    /// Pads the last byte with one bits.
    pub(super) fn flush(&mut self) {
        self.put(0x7f, 7);
        self.n = 0;
        self.acc = 0;
    }
}

/// Bits needed for magnitude `v` (`JPEG_NBITS`).
pub(super) fn nbits(v: i32) -> u32 {
    32 - v.unsigned_abs().leading_zeros()
}

/// One block through `encode_one_block` (or, with `stats`, `htest_one_block`).
fn code_block(
    block: &[i16; 64],
    last_dc: i32,
    dc: &HuffTable,
    ac: &HuffTable,
    w: &mut Bits<'_>,
) -> Result<(), JpegError> {
    let diff = i32::from(block[0]) - last_dc;
    let n = nbits(diff);
    if n > 11 || dc.size[n as usize] == 0 {
        return Err(JpegError::corrupt(
            "DCT coefficient out of range or without a code",
        ));
    }
    w.put(
        u32::from(dc.code[n as usize]),
        u32::from(dc.size[n as usize]),
    );
    if n > 0 {
        let v = if diff < 0 { diff - 1 } else { diff };
        w.put(v as u32, n);
    }
    let mut r = 0u32;
    for &nat in &NATURAL[1..64] {
        let c = i32::from(block[nat]);
        if c == 0 {
            r += 1;
            continue;
        }
        while r > 15 {
            w.put(u32::from(ac.code[0xf0]), u32::from(ac.size[0xf0]));
            r -= 16;
        }
        let n = nbits(c);
        if n > 10 {
            return Err(JpegError::corrupt("DCT coefficient out of range"));
        }
        let s = ((r << 4) + n) as usize;
        if ac.size[s] == 0 {
            return Err(JpegError::corrupt("Huffman symbol without a code"));
        }
        w.put(u32::from(ac.code[s]), u32::from(ac.size[s]));
        let v = if c < 0 { c - 1 } else { c };
        w.put(v as u32, n);
        r = 0;
    }
    if r > 0 {
        w.put(u32::from(ac.code[0]), u32::from(ac.size[0]));
    }
    Ok(())
}

fn count_block(block: &[i16; 64], last_dc: i32, dc: &mut [u64; 257], ac: &mut [u64; 257]) {
    let n = nbits(i32::from(block[0]) - last_dc) as usize;
    dc[n.min(256)] += 1;
    let mut r = 0usize;
    for &nat in &NATURAL[1..64] {
        let c = i32::from(block[nat]);
        if c == 0 {
            r += 1;
            continue;
        }
        while r > 15 {
            ac[0xf0] += 1;
            r -= 16;
        }
        ac[((r << 4) + nbits(c) as usize).min(256)] += 1;
        r = 0;
    }
    if r > 0 {
        ac[0] += 1;
    }
}

/// The blocks of the (single, baseline) scan in MCU order, as `(component, block)` with the
/// dummy blocks `jccoefct.c` makes at the right and bottom edges of an interleaved scan:
/// all-zero AC and the DC of the block before it in the MCU (left, else the last one of the
/// row above).
pub(super) fn scan_order(
    comps: &[Comp],
    mcus_x: usize,
    mcus_y: usize,
    mut f: impl FnMut(usize, &[i16; 64]),
) {
    if comps.len() == 1 {
        // Non-interleaved: one block per MCU, only the component's real blocks.
        for b in &comps[0].blocks {
            f(0, b);
        }
        return;
    }
    let mut mcu: Vec<[i16; 64]> = Vec::new();
    for my in 0..mcus_y {
        for mx in 0..mcus_x {
            for (ci, c) in comps.iter().enumerate() {
                mcu.clear();
                for yi in 0..c.v {
                    let row = my * c.v + yi;
                    for xi in 0..c.h {
                        let col = mx * c.h + xi;
                        let b = if row < c.bh && col < c.bw {
                            c.blocks[row * c.bw + col]
                        } else {
                            let mut d = [0i16; 64];
                            d[0] = if row < c.bh {
                                mcu[mcu.len() - 1][0]
                            } else {
                                // Bottom dummy row: the DC of the MCU's last block above.
                                mcu[mcu.len() - 1 - xi][0]
                            };
                            d
                        };
                        mcu.push(b);
                    }
                }
                for b in &mcu {
                    f(ci, b);
                }
            }
        }
    }
}

pub(super) fn marker(out: &mut Vec<u8>, m: u8, payload: &[u8]) -> Result<(), JpegError> {
    let len = u16::try_from(payload.len() + 2)
        .map_err(|_| JpegError::Unsupported("marker longer than 65533 bytes".into()))?;
    out.extend_from_slice(&[0xff, m]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

/// Encodes `height × width × channels` (1 gray, 3 RGB) samples.
pub fn encode(
    pixels: &[u8],
    width: usize,
    height: usize,
    channels: usize,
    opts: &EncodeOptions,
) -> Result<Vec<u8>, JpegError> {
    // jcmaster.c's initial_setup: JPEG_MAX_DIMENSION is 65500.
    if width == 0 || height == 0 || width > 65500 || height > 65500 {
        return Err(JpegError::Unsupported(format!(
            "a {height}x{width} JPEG (each side must be 1..=65500)"
        )));
    }
    if !matches!(channels, 1 | 3) || pixels.len() != width * height * channels {
        return Err(JpegError::Unsupported(format!(
            "{channels} channels for {} samples of a {height}x{width} image",
            pixels.len()
        )));
    }
    // Sampling factors: Y 2x2 + Cb/Cr 1x1 (jpeg_set_colorspace), or all 1x1.
    let sub = channels == 3 && opts.chroma_downsampling;
    let (max_h, max_v) = if sub { (2, 2) } else { (1, 1) };
    let ncomp = channels;
    let mut comps: Vec<Comp> = (0..ncomp)
        .map(|i| {
            let (h, v) = if i == 0 { (max_h, max_v) } else { (1, 1) };
            Comp {
                id: i as u8 + 1,
                h,
                v,
                tbl: usize::from(i > 0),
                bw: (width * h).div_ceil(max_h * 8),
                bh: (height * v).div_ceil(max_v * 8),
                blocks: Vec::new(),
            }
        })
        .collect();
    let mcus_x = width.div_ceil(max_h * 8);
    let mcus_y = height.div_ceil(max_v * 8);

    // Colour conversion (jccolor.c, SCALEBITS 16) into full-size planes, rows padded to a
    // multiple of max_v by repeating the last row (jcprepct.c's expand_bottom_edge).
    let rows = height.div_ceil(max_v) * max_v;
    let mut planes = vec![vec![0u8; width * rows]; ncomp];
    if ncomp == 1 {
        for y in 0..rows {
            let src = y.min(height - 1) * width;
            planes[0][y * width..][..width].copy_from_slice(&pixels[src..src + width]);
        }
    } else {
        let fix = |x: f64| (x * 65536.0 + 0.5) as i32;
        let half = 1i32 << 15;
        let cbcr = (128i32 << 16) + half - 1;
        let (ry, gy, by) = (fix(0.299), fix(0.587), fix(0.114));
        let (rcb, gcb, bcb) = (fix(0.16874), fix(0.33126), fix(0.5));
        let (gcr, bcr) = (fix(0.41869), fix(0.08131));
        for y in 0..height {
            for x in 0..width {
                let p = &pixels[(y * width + x) * 3..][..3];
                let (r, g, b) = (i32::from(p[0]), i32::from(p[1]), i32::from(p[2]));
                let i = y * width + x;
                planes[0][i] = ((ry * r + gy * g + by * b + half) >> 16) as u8;
                planes[1][i] = ((-rcb * r - gcb * g + bcb * b + cbcr) >> 16) as u8;
                planes[2][i] = ((bcb * r - gcr * g - bcr * b + cbcr) >> 16) as u8;
            }
        }
        for p in &mut planes {
            let (done, pad) = p.split_at_mut(height * width);
            let last = &done[(height - 1) * width..];
            for row in pad.chunks_exact_mut(width) {
                row.copy_from_slice(last);
            }
        }
    }

    // Per component: right-edge replication to the block-padded width (expand_right_edge),
    // downsampling, bottom replication to the block-padded height, then FDCT + quantize.
    let qtables = [
        quant_table(&STD_LUMA_Q, opts.quality),
        quant_table(&STD_CHROMA_Q, opts.quality),
    ];
    for (c, plane) in comps.iter_mut().zip(&planes) {
        let (fx, fy) = (max_h / c.h, max_v / c.v);
        let pw = c.bw * 8;
        let ph = c.bh * 8;
        let at = |x: usize, y: usize| i32::from(plane[y * width + x.min(width - 1)]);
        let down_rows = rows / fy;
        let mut down = vec![0u8; pw * ph];
        for y in 0..down_rows.min(ph) {
            let row = &mut down[y * pw..][..pw];
            match (fx, fy) {
                (1, 1) => {
                    for (x, o) in row.iter_mut().enumerate() {
                        *o = at(x, y) as u8;
                    }
                }
                (2, 2) => {
                    // h2v2_downsample: bias 1, 2, 1, 2, ... along the row.
                    let mut bias = 1;
                    for (x, o) in row.iter_mut().enumerate() {
                        let (x0, y0) = (2 * x, 2 * y);
                        let s = at(x0, y0) + at(x0 + 1, y0) + at(x0, y0 + 1) + at(x0 + 1, y0 + 1);
                        *o = ((s + bias) >> 2) as u8;
                        bias ^= 3;
                    }
                }
                _ => {
                    // h2v1_downsample: bias 0, 1, 0, 1, ...
                    let mut bias = 0;
                    for (x, o) in row.iter_mut().enumerate() {
                        *o = ((at(2 * x, y) + at(2 * x + 1, y) + bias) >> 1) as u8;
                        bias ^= 1;
                    }
                }
            }
        }
        let real = down_rows.min(ph);
        for y in real..ph {
            down.copy_within((real - 1) * pw..real * pw, y * pw);
        }
        let q = &qtables[c.tbl];
        let recips: Vec<(u32, u32, u32)> =
            q.iter().map(|&v| reciprocal(u32::from(v) << 3)).collect();
        c.blocks.reserve_exact(c.bw * c.bh);
        let mut ws = [0i32; 64];
        for by in 0..c.bh {
            for bx in 0..c.bw {
                for (k, w) in ws.iter_mut().enumerate() {
                    *w = i32::from(down[(by * 8 + k / 8) * pw + bx * 8 + k % 8]) - 128;
                }
                fdct_islow(&mut ws);
                let mut blk = [0i16; 64];
                for ((o, &x), &(fq, corr, r)) in blk.iter_mut().zip(&ws).zip(&recips) {
                    let m = ((x.unsigned_abs() + corr) as u64 * u64::from(fq)) >> r;
                    let m = m as i32;
                    *o = if x < 0 { -m } else { m } as i16;
                }
                c.blocks.push(blk);
            }
        }
    }

    // Huffman tables: standard, or optimal from a statistics pass over the same blocks.
    let ntbl = if ncomp == 1 { 1 } else { 2 };
    let (dc_tables, ac_tables): (Vec<HuffTable>, Vec<HuffTable>) = if opts.progressive {
        // Built per scan by super::progressive.
        (Vec::new(), Vec::new())
    } else if opts.optimize_coding {
        let mut dcf = vec![[0u64; 257]; ntbl];
        let mut acf = vec![[0u64; 257]; ntbl];
        let mut last = vec![0i32; ncomp];
        scan_order(&comps, mcus_x, mcus_y, |ci, b| {
            let t = comps[ci].tbl;
            count_block(b, last[ci], &mut dcf[t], &mut acf[t]);
            last[ci] = i32::from(b[0]);
        });
        (
            dcf.iter()
                .map(HuffTable::optimal)
                .collect::<Result<_, _>>()?,
            acf.iter()
                .map(HuffTable::optimal)
                .collect::<Result<_, _>>()?,
        )
    } else {
        (
            vec![
                HuffTable::new(&DC_LUMA_BITS, &DC_VALS),
                HuffTable::new(&DC_CHROMA_BITS, &DC_VALS),
            ],
            vec![
                HuffTable::new(&AC_LUMA_BITS, &AC_LUMA_VALS),
                HuffTable::new(&AC_CHROMA_BITS, &AC_CHROMA_VALS),
            ],
        )
    };

    let mut out = Vec::with_capacity(1024 + width * height * channels / 4);
    out.extend_from_slice(&[0xff, 0xd8]);
    // JFIF APP0 (emit_jfif_app0): version 1.01, density, no thumbnail.
    let mut app0 = b"JFIF\0\x01\x01".to_vec();
    app0.push(opts.density_unit);
    app0.extend_from_slice(&opts.x_density.to_be_bytes());
    app0.extend_from_slice(&opts.y_density.to_be_bytes());
    app0.extend_from_slice(&[0, 0]);
    marker(&mut out, 0xe0, &app0)?;
    if !opts.xmp.is_empty() {
        let mut app1 = b"http://ns.adobe.com/xap/1.0/\0".to_vec();
        app1.extend_from_slice(&opts.xmp);
        marker(&mut out, 0xe1, &app1)?;
    }
    for (t, q) in qtables.iter().enumerate().take(ntbl) {
        let mut dqt = vec![t as u8];
        dqt.extend(NATURAL[..64].iter().map(|&n| q[n] as u8));
        marker(&mut out, 0xdb, &dqt)?;
    }
    let mut sof = vec![8u8];
    sof.extend_from_slice(&(height as u16).to_be_bytes());
    sof.extend_from_slice(&(width as u16).to_be_bytes());
    sof.push(ncomp as u8);
    for c in &comps {
        sof.extend_from_slice(&[c.id, ((c.h as u8) << 4) | c.v as u8, c.tbl as u8]);
    }
    marker(&mut out, if opts.progressive { 0xc2 } else { 0xc0 }, &sof)?;
    if opts.progressive {
        super::progressive::write_scans(&mut out, &comps, mcus_x, mcus_y)?;
        out.extend_from_slice(&[0xff, 0xd9]);
        return Ok(out);
    }
    for t in 0..ntbl {
        for (class, tab) in [(0u8, &dc_tables[t]), (0x10, &ac_tables[t])] {
            let mut dht = vec![class | t as u8];
            dht.extend_from_slice(&tab.bits);
            dht.extend_from_slice(&tab.vals);
            marker(&mut out, 0xc4, &dht)?;
        }
    }
    let mut sos = vec![ncomp as u8];
    for c in &comps {
        sos.extend_from_slice(&[c.id, ((c.tbl as u8) << 4) | c.tbl as u8]);
    }
    sos.extend_from_slice(&[0, 63, 0]);
    marker(&mut out, 0xda, &sos)?;
    let mut w = Bits::new(&mut out);
    let mut last = vec![0i32; ncomp];
    let mut res = Ok(());
    scan_order(&comps, mcus_x, mcus_y, |ci, b| {
        if res.is_ok() {
            let t = comps[ci].tbl;
            res = code_block(b, last[ci], &dc_tables[t], &ac_tables[t], &mut w);
            last[ci] = i32::from(b[0]);
        }
    });
    res?;
    w.flush();
    out.extend_from_slice(&[0xff, 0xd9]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quality_scaling_follows_jcparam() {
        // Quality 50 is Annex K's table itself; 0 behaves as 1 (scale 5000, clamped to 255).
        assert_eq!(quant_table(&STD_LUMA_Q, 50), STD_LUMA_Q);
        assert_eq!(quant_table(&STD_LUMA_Q, 0), quant_table(&STD_LUMA_Q, 1));
        assert!(quant_table(&STD_CHROMA_Q, 1).iter().all(|&q| q == 255));
        assert!(quant_table(&STD_LUMA_Q, 100).iter().all(|&q| q == 1));
    }

    #[test]
    fn optimal_tables_are_prefix_codes_within_16_bits() {
        // Skewed counts (powers of two) force lengths past 16 before the K.2 adjustment.
        let mut freq = [0u64; 257];
        for (i, f) in freq.iter_mut().enumerate().take(200) {
            *f = 1 << (i % 24);
        }
        let t = HuffTable::optimal(&freq).unwrap();
        let used: usize = t.bits.iter().map(|&b| usize::from(b)).sum();
        assert_eq!(used, 200);
        assert_eq!(t.vals.len(), 200);
        // Kraft sum strictly below 1: the all-ones code stays unused.
        let kraft: f64 = t
            .bits
            .iter()
            .enumerate()
            .map(|(l, &n)| f64::from(n) / f64::from(1u32 << (l + 1)))
            .sum();
        assert!(kraft < 1.0, "{kraft}");
        assert!(t.size.iter().all(|&l| l <= 16));
    }

    #[test]
    fn gray_round_trip_through_the_decoder() {
        let (w, h) = (21, 13);
        let px: Vec<u8> = (0..w * h).map(|i| (i % w * 9 + i / w * 5) as u8).collect();
        let opts = EncodeOptions {
            quality: 100,
            ..Default::default()
        };
        let bytes = encode(&px, w, h, 1, &opts).unwrap();
        let d = super::super::decode(
            &bytes,
            &super::super::Options {
                channels: 1,
                ratio: 1,
                fancy_upsampling: true,
                accurate_dct: true,
                try_recover_truncated: false,
                crop: None,
                max_pixels: 1 << 20,
            },
        )
        .unwrap();
        assert_eq!((d.width, d.height), (w, h));
        let worst = d
            .pixels
            .iter()
            .zip(&px)
            .map(|(&a, &b)| (i32::from(a) - i32::from(b)).abs())
            .max()
            .unwrap();
        assert!(worst <= 2, "{worst}");
        // Progressive output carries the same coefficients: the same pixels back.
        let prog = encode(
            &px,
            w,
            h,
            1,
            &EncodeOptions {
                progressive: true,
                ..opts
            },
        )
        .unwrap();
        assert_eq!(&prog[..2], &[0xff, 0xd8]);
        let p = super::super::decode(
            &prog,
            &super::super::Options {
                channels: 1,
                ratio: 1,
                fancy_upsampling: true,
                accurate_dct: true,
                try_recover_truncated: false,
                crop: None,
                max_pixels: 1 << 20,
            },
        )
        .unwrap();
        assert_eq!(p.pixels, d.pixels);
    }
}

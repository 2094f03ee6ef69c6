//! Huffman entropy decoding of baseline, extended-sequential and progressive scans into
//! coefficient blocks, with libjpeg-turbo's (`jdhuff.c`, `jdphuff.c`) handling of damaged
//! data: an invalid code decodes as symbol 0, a marker inside entropy-coded data ends the
//! data (the MCU in progress is finished with zero bits, later MCUs are left untouched, as
//! libjpeg's `insufficient_data` does), coefficient positions past 63 land on 63 (its
//! extended natural-order table), and restart markers reset the predictors.
//!
//! Every loop is bounded by the scan's block count; reads past the data return zero bits.

use super::{Component, Frame, JpegError};

/// Zig-zag index -> natural index, extended with 16 entries of 63 (libjpeg's
/// `jpeg_natural_order`) so a corrupt run length cannot index out of the block.
pub(crate) const NATURAL: [usize; 80] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63,
    63, 63, 63, 63, 63, 63,
];

const LOOKUP_BITS: u32 = 9;

/// A decoding table built from a DHT segment (`jpeg_make_d_derived_tbl`).
#[derive(Debug, Clone)]
pub(crate) struct Huffman {
    /// `(length << 8) | symbol` for codes of at most `LOOKUP_BITS` bits, 0 if longer.
    lookup: Vec<u16>,
    /// Largest code of each length (-1 if none), index 1..=16; index 17 is a sentinel.
    maxcode: [i32; 18],
    /// `symbols index - first code` of each length.
    valoffset: [i32; 17],
    symbols: Vec<u8>,
}

impl Huffman {
    /// `counts[l]` codes of length `l + 1`, then the symbols. `dc` tables may only hold
    /// symbols up to 15 (libjpeg refuses larger ones there).
    pub(crate) fn new(counts: &[u8; 16], symbols: &[u8], dc: bool) -> Result<Self, JpegError> {
        let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
        if total > 256 || total != symbols.len() {
            return Err(JpegError::corrupt("bad Huffman table"));
        }
        if dc && symbols.iter().any(|&s| s > 15) {
            return Err(JpegError::corrupt("bad Huffman table"));
        }
        let mut maxcode = [-1i32; 18];
        let mut valoffset = [0i32; 17];
        let mut lookup = vec![0u16; 1 << LOOKUP_BITS];
        let last = counts.iter().rposition(|&c| c != 0).map_or(0, |i| i + 1) as u32;
        let mut code: i32 = 0;
        let mut k = 0usize;
        for len in 1..=last {
            let n = i32::from(counts[len as usize - 1]);
            // libjpeg: codes that do not fit in `len` bits make a bad table.
            if code + n >= 1 << len {
                return Err(JpegError::corrupt("bad Huffman table"));
            }
            if n > 0 {
                valoffset[len as usize] = k as i32 - code;
                for _ in 0..n {
                    if len <= LOOKUP_BITS {
                        let shift = LOOKUP_BITS - len;
                        let base = (code as usize) << shift;
                        for e in &mut lookup[base..base + (1 << shift)] {
                            *e = ((len as u16) << 8) | u16::from(symbols[k]);
                        }
                    }
                    code += 1;
                    k += 1;
                }
                maxcode[len as usize] = code - 1;
            }
            code <<= 1;
        }
        maxcode[17] = i32::MAX;
        Ok(Huffman {
            lookup,
            maxcode,
            valoffset,
            symbols: symbols.to_vec(),
        })
    }
}

/// Entropy-coded data reader with byte unstuffing and marker detection.
pub(crate) struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    acc: u64,
    n: u32,
    /// Real (not padding) bits at the top of `acc`.
    real: u32,
    /// A marker met in the data (its second byte); reading stops there.
    pub(crate) marker: Option<u8>,
    /// The data ended without a marker.
    pub(crate) eof: bool,
    /// Bits were consumed beyond the real data (libjpeg's `insufficient_data`).
    pub(crate) insufficient: bool,
}

impl<'a> Bits<'a> {
    pub(crate) fn new(data: &'a [u8], pos: usize) -> Self {
        Bits {
            data,
            pos,
            acc: 0,
            n: 0,
            real: 0,
            marker: None,
            eof: false,
            insufficient: false,
        }
    }

    /// Position of the pending marker's `FF` (or of the end of data).
    pub(crate) fn marker_pos(&self) -> usize {
        if self.marker.is_some() {
            self.pos.saturating_sub(2)
        } else {
            self.pos
        }
    }

    fn next_byte(&mut self) -> Option<u8> {
        if self.marker.is_some() || self.eof {
            return None;
        }
        let Some(&b) = self.data.get(self.pos) else {
            self.eof = true;
            return None;
        };
        self.pos += 1;
        if b != 0xFF {
            return Some(b);
        }
        // FF: skip fill bytes, then 00 is a stuffed FF, anything else a marker.
        loop {
            let Some(&c) = self.data.get(self.pos) else {
                self.eof = true;
                return None;
            };
            self.pos += 1;
            match c {
                0xFF => continue,
                0 => return Some(0xFF),
                m => {
                    self.marker = Some(m);
                    return None;
                }
            }
        }
    }

    #[inline]
    fn fill(&mut self) {
        while self.n <= 56 {
            let b = match self.next_byte() {
                Some(b) => {
                    self.real += 8;
                    b
                }
                None => 0,
            };
            self.acc |= u64::from(b) << (56 - self.n);
            self.n += 8;
        }
    }

    #[inline]
    fn consume(&mut self, k: u32) {
        self.acc <<= k;
        self.n -= k;
        if k > self.real {
            self.insufficient = true;
            self.real = 0;
        } else {
            self.real -= k;
        }
    }

    /// `k` (0..=16) bits as an unsigned value.
    #[inline]
    pub(crate) fn bits(&mut self, k: u32) -> u32 {
        if k == 0 {
            return 0;
        }
        if self.n < k {
            self.fill();
        }
        let v = (self.acc >> (64 - k)) as u32;
        self.consume(k);
        v
    }

    #[inline]
    fn bit(&mut self) -> bool {
        self.bits(1) != 0
    }

    /// One Huffman symbol; an invalid code gives 0 (libjpeg's `JWRN_HUFF_BAD_CODE`).
    #[inline]
    pub(crate) fn decode(&mut self, h: &Huffman) -> u8 {
        if self.n < 16 {
            self.fill();
        }
        let peek = (self.acc >> (64 - LOOKUP_BITS)) as usize;
        let e = h.lookup[peek];
        if e != 0 {
            self.consume(u32::from(e >> 8));
            return e as u8;
        }
        let top = (self.acc >> 48) as i32;
        for len in LOOKUP_BITS + 1..=16 {
            let code = top >> (16 - len);
            if code <= h.maxcode[len as usize] {
                self.consume(len);
                let idx = code + h.valoffset[len as usize];
                return h.symbols.get(idx as usize).copied().unwrap_or(0);
            }
        }
        self.consume(16);
        0
    }

    /// `s` bits extended to a signed value (F.2.2.1 EXTEND).
    #[inline]
    pub(crate) fn receive_extend(&mut self, s: u8) -> i32 {
        let s = u32::from(s.min(16));
        if s == 0 {
            return 0;
        }
        let v = self.bits(s) as i32;
        if v < 1 << (s - 1) {
            v - (1 << s) + 1
        } else {
            v
        }
    }

    /// Restart: drop buffered bits and consume the RST marker (any RSTn, or the next
    /// marker found after skipping garbage); any other marker stays pending.
    pub(crate) fn restart(&mut self) {
        self.acc = 0;
        self.n = 0;
        self.real = 0;
        if self.marker.is_none() && !self.eof {
            // Look for the next marker (libjpeg's next_marker skips garbage bytes).
            while self.pos < self.data.len() {
                if self.data[self.pos] == 0xFF {
                    let mut p = self.pos + 1;
                    while p < self.data.len() && self.data[p] == 0xFF {
                        p += 1;
                    }
                    match self.data.get(p) {
                        Some(0) => self.pos = p + 1,
                        Some(&m) => {
                            self.marker = Some(m);
                            self.pos = p + 1;
                            break;
                        }
                        None => {
                            self.pos = p;
                            break;
                        }
                    }
                } else {
                    self.pos += 1;
                }
            }
            if self.marker.is_none() {
                self.eof = true;
            }
        }
        if let Some(m) = self.marker {
            if (0xD0..=0xD7).contains(&m) {
                self.marker = None;
                self.insufficient = false;
            }
        }
    }
}

/// One scan's parameters.
#[derive(Debug, Clone)]
pub(crate) struct Scan {
    /// Frame component indices, with their DC and AC table numbers.
    pub comps: Vec<(usize, usize, usize)>,
    pub ss: u8,
    pub se: u8,
    pub ah: u8,
    pub al: u8,
}

/// Scan-wide decoding state.
struct State<'t> {
    dc: &'t [Option<Huffman>; 4],
    ac: &'t [Option<Huffman>; 4],
    pred: [i32; 4],
    eobrun: u32,
}

/// How a scan's data ended.
pub(crate) struct ScanEnd {
    /// Position of the marker that ended the data (or the data's end).
    pub pos: usize,
    /// MCUs decoded from real data before the data ran out (all of them if it did not).
    pub mcus_done: usize,
    /// The data ended (no marker) before the scan was complete.
    pub eof: bool,
}

fn table(t: &[Option<Huffman>; 4], i: usize) -> Result<&Huffman, JpegError> {
    t.get(i)
        .and_then(|t| t.as_ref())
        .ok_or_else(|| JpegError::corrupt("Huffman table not defined"))
}

/// Decodes one scan's entropy-coded data starting at `pos` into the frame's coefficients.
pub(crate) fn decode_scan(
    frame: &mut Frame,
    scan: &Scan,
    dc: &[Option<Huffman>; 4],
    ac: &[Option<Huffman>; 4],
    restart_interval: u16,
    data: &[u8],
    pos: usize,
) -> Result<ScanEnd, JpegError> {
    let progressive = frame.progressive;
    // Tables the scan needs must exist (libjpeg checks at the start of the pass; a
    // sequential scan builds both of every component's tables, even with Se = 0).
    for &(_, td, ta) in &scan.comps {
        if !progressive || (scan.ss == 0 && scan.ah == 0) {
            table(dc, td)?;
        }
        if !progressive || scan.ss > 0 {
            table(ac, ta)?;
        }
    }
    let mut st = State {
        dc,
        ac,
        pred: [0; 4],
        eobrun: 0,
    };
    let mut bits = Bits::new(data, pos);
    let interleaved = scan.comps.len() > 1;
    let (mcus_x, mcus_y) = if interleaved {
        (frame.mcus_x, frame.mcus_y)
    } else {
        let c = &frame.comps[scan.comps[0].0];
        (c.bw, c.bh)
    };
    let total = mcus_x * mcus_y;
    let mut to_go = restart_interval;
    let mut done = 0usize;
    for m in 0..total {
        if restart_interval != 0 {
            if to_go == 0 {
                bits.restart();
                st.pred = [0; 4];
                st.eobrun = 0;
                to_go = restart_interval;
            }
            to_go -= 1;
        }
        if bits.insufficient {
            continue;
        }
        let (mx, my) = (m % mcus_x, m / mcus_x);
        for (si, &(ci, td, ta)) in scan.comps.iter().enumerate() {
            let comp: &mut Component = &mut frame.comps[ci];
            let (bh, bv) = if interleaved {
                (comp.h, comp.v)
            } else {
                (1, 1)
            };
            for by in 0..bv {
                for bx in 0..bh {
                    let (row, col) = (my * bv + by, mx * bh + bx);
                    let off = (row * comp.stride + col) * 64;
                    let Some(block) = comp.coefs.get_mut(off..off + 64) else {
                        return Err(JpegError::corrupt("block outside the frame"));
                    };
                    decode_block(&mut bits, &mut st, scan, progressive, si, td, ta, block);
                }
            }
        }
        if !bits.eof {
            done = m + 1;
        }
    }
    Ok(ScanEnd {
        pos: bits.marker_pos(),
        mcus_done: done,
        eof: bits.eof,
    })
}

#[allow(clippy::too_many_arguments)]
fn decode_block(
    bits: &mut Bits<'_>,
    st: &mut State<'_>,
    scan: &Scan,
    progressive: bool,
    si: usize,
    td: usize,
    ta: usize,
    block: &mut [i16],
) {
    if !progressive {
        let Some(dct) = st.dc.get(td).and_then(Option::as_ref) else {
            return;
        };
        let s = bits.decode(dct);
        let diff = bits.receive_extend(s);
        st.pred[si] = st.pred[si].wrapping_add(diff);
        block[0] = st.pred[si] as i16;
        let Some(act) = st.ac.get(ta).and_then(Option::as_ref) else {
            return;
        };
        let mut k = 1usize;
        while k < 64 {
            let rs = bits.decode(act);
            let (r, s) = (usize::from(rs >> 4), rs & 15);
            if s != 0 {
                k += r;
                block[NATURAL[k]] = bits.receive_extend(s) as i16;
            } else if r != 15 {
                break;
            } else {
                k += 15;
            }
            k += 1;
        }
        return;
    }
    let (ss, se, ah, al) = (
        usize::from(scan.ss),
        usize::from(scan.se),
        scan.ah,
        u32::from(scan.al),
    );
    if ss == 0 {
        if ah == 0 {
            let Some(dct) = st.dc.get(td).and_then(Option::as_ref) else {
                return;
            };
            let s = bits.decode(dct);
            let diff = bits.receive_extend(s);
            st.pred[si] = st.pred[si].wrapping_add(diff);
            block[0] = (st.pred[si].wrapping_shl(al)) as i16;
        } else if bits.bit() {
            block[0] |= (1i32 << al) as i16;
        }
        return;
    }
    if ah == 0 {
        // AC first pass.
        if st.eobrun > 0 {
            st.eobrun -= 1;
            return;
        }
        let Some(act) = st.ac.get(ta).and_then(Option::as_ref) else {
            return;
        };
        let mut k = ss;
        while k <= se {
            let rs = bits.decode(act);
            let (r, s) = (u32::from(rs >> 4), rs & 15);
            if s != 0 {
                k += r as usize;
                let v = bits.receive_extend(s);
                block[NATURAL[k.min(79)]] = v.wrapping_shl(al) as i16;
            } else if r == 15 {
                k += 15;
            } else {
                st.eobrun = 1 << r;
                if r != 0 {
                    st.eobrun += bits.bits(r);
                }
                st.eobrun -= 1;
                break;
            }
            k += 1;
        }
        return;
    }
    // AC refinement (G.1.2.3), as jdphuff's decode_mcu_AC_refine.
    let p1: i16 = (1i32 << al) as i16;
    let m1: i16 = ((-1i32) << al) as i16;
    let refine = |bits: &mut Bits<'_>, c: &mut i16| {
        if bits.bit() && (*c & p1) == 0 {
            *c = if *c >= 0 {
                c.wrapping_add(p1)
            } else {
                c.wrapping_add(m1)
            };
        }
    };
    let mut k = ss;
    if st.eobrun == 0 {
        let Some(act) = st.ac.get(ta).and_then(Option::as_ref) else {
            return;
        };
        while k <= se {
            let rs = bits.decode(act);
            let mut r = i32::from(rs >> 4);
            let s = rs & 15;
            let mut val = 0i16;
            if s != 0 {
                val = if bits.bit() { p1 } else { m1 };
            } else if r != 15 {
                st.eobrun = 1 << r;
                if r != 0 {
                    st.eobrun += bits.bits(r as u32);
                }
                break;
            }
            while k <= se {
                let c = &mut block[NATURAL[k]];
                if *c != 0 {
                    refine(bits, c);
                } else {
                    r -= 1;
                    if r < 0 {
                        break;
                    }
                }
                k += 1;
            }
            if s != 0 {
                block[NATURAL[k.min(79)]] = val;
            }
            k += 1;
        }
    }
    if st.eobrun > 0 {
        while k <= se {
            let c = &mut block[NATURAL[k]];
            if *c != 0 {
                refine(bits, c);
            }
            k += 1;
        }
        st.eobrun -= 1;
    }
}

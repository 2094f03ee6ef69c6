//! Progressive JPEG output, as libjpeg-turbo writes it when TF's `EncodeJpeg` has
//! `progressive=true`: the scan script of `jpeg_simple_progression` (jcparam.c), Huffman
//! tables always optimised (jcmaster.c forces `optimize_coding` for progressive Huffman, so
//! every scan but a DC refinement first runs a statistics pass and gets its own tables), the
//! per-scan DHT / SOS layout of jcmarker.c, and the four MCU coders of jcphuff.c (DC first,
//! DC refinement, AC first with EOB runs, AC refinement with its correction-bit buffer).
//! The quantized blocks come from [`super::encode`], which this module shares with the
//! baseline path.

use super::encode::{marker, nbits, scan_order, Bits, Comp, HuffTable};
use super::entropy::NATURAL;
use super::JpegError;

/// One scan of the script (`jpeg_scan_info`).
struct Scan {
    comps: Vec<usize>,
    ss: usize,
    se: usize,
    ah: u32,
    al: u32,
}

/// `jpeg_simple_progression`'s script: the custom one for 3-component YCbCr, else the
/// all-purpose one (here: one gray component).
fn script(ncomp: usize) -> Vec<Scan> {
    let all: Vec<usize> = (0..ncomp).collect();
    let s = |comps: Vec<usize>, ss, se, ah, al| Scan {
        comps,
        ss,
        se,
        ah,
        al,
    };
    if ncomp == 3 {
        vec![
            s(all.clone(), 0, 0, 0, 1),
            s(vec![0], 1, 5, 0, 2),
            s(vec![2], 1, 63, 0, 1),
            s(vec![1], 1, 63, 0, 1),
            s(vec![0], 6, 63, 0, 2),
            s(vec![0], 1, 63, 2, 1),
            s(all, 0, 0, 1, 0),
            s(vec![2], 1, 63, 1, 0),
            s(vec![1], 1, 63, 1, 0),
            s(vec![0], 1, 63, 1, 0),
        ]
    } else {
        // fill_dc_scans / fill_scans for each component in turn.
        let mut v = vec![s(all.clone(), 0, 0, 0, 1)];
        v.extend(all.iter().map(|&c| s(vec![c], 1, 5, 0, 2)));
        v.extend(all.iter().map(|&c| s(vec![c], 6, 63, 0, 2)));
        v.extend(all.iter().map(|&c| s(vec![c], 1, 63, 2, 1)));
        v.push(s(all.clone(), 0, 0, 1, 0));
        v.extend(all.iter().map(|&c| s(vec![c], 1, 63, 1, 0)));
        v
    }
}

/// jcphuff.c's `MAX_CORR_BITS`: the refinement correction-bit buffer's size.
const MAX_CORR_BITS: usize = 1000;

/// The entropy coder of one pass over a scan: counting symbols (`gather_statistics`) when
/// `w` is `None`, else writing them with `tables`.
struct Coder<'a, 'b> {
    w: Option<Bits<'b>>,
    counts: [[u64; 257]; 2],
    tables: &'a [Option<HuffTable>; 2],
    /// `EOBRUN` and the correction bits `BE` waiting with it.
    eobrun: u32,
    be: Vec<u8>,
}

impl Coder<'_, '_> {
    fn symbol(&mut self, tbl: usize, sym: usize) -> Result<(), JpegError> {
        match (&mut self.w, &self.tables[tbl]) {
            (None, _) => {
                self.counts[tbl][sym] += 1;
                Ok(())
            }
            (Some(w), Some(t)) if t.size[sym] != 0 => {
                w.put(u32::from(t.code[sym]), u32::from(t.size[sym]));
                Ok(())
            }
            _ => Err(JpegError::corrupt("Huffman symbol without a code")),
        }
    }

    fn bits(&mut self, v: u32, n: u32) {
        if let Some(w) = &mut self.w {
            w.put(v, n);
        }
    }

    fn buffered(&mut self, bits: &[u8]) {
        if let Some(w) = &mut self.w {
            for &b in bits {
                w.put(u32::from(b), 1);
            }
        }
    }

    /// `emit_eobrun`: the pending EOB run, then the correction bits buffered with it.
    fn eobrun(&mut self, tbl: usize) -> Result<(), JpegError> {
        if self.eobrun > 0 {
            let n = nbits(self.eobrun as i32) - 1;
            self.symbol(tbl, (n << 4) as usize)?;
            if n > 0 {
                self.bits(self.eobrun, n);
            }
            self.eobrun = 0;
            let be = std::mem::take(&mut self.be);
            self.buffered(&be);
        }
        Ok(())
    }

    /// `encode_mcu_DC_first` for one block (`last` is the component's point-transformed DC).
    fn dc_first(
        &mut self,
        b: &[i16; 64],
        tbl: usize,
        al: u32,
        last: &mut i32,
    ) -> Result<(), JpegError> {
        let t = i32::from(b[0]) >> al;
        let diff = t - *last;
        *last = t;
        let n = nbits(diff);
        if n > 11 {
            return Err(JpegError::corrupt("DCT coefficient out of range"));
        }
        self.symbol(tbl, n as usize)?;
        if n > 0 {
            self.bits((if diff < 0 { diff - 1 } else { diff }) as u32, n);
        }
        Ok(())
    }

    /// `encode_mcu_AC_first`: coefficients `ss..=se` divided by `2^al` (towards zero).
    fn ac_first(&mut self, b: &[i16; 64], s: &Scan, tbl: usize) -> Result<(), JpegError> {
        let mut r = 0u32;
        for &nat in &NATURAL[s.ss..=s.se] {
            let c = i32::from(b[nat]);
            let a = c.abs() >> s.al;
            if a == 0 {
                r += 1;
                continue;
            }
            self.eobrun(tbl)?;
            while r > 15 {
                self.symbol(tbl, 0xf0)?;
                r -= 16;
            }
            let n = nbits(a);
            if n > 10 {
                return Err(JpegError::corrupt("DCT coefficient out of range"));
            }
            self.symbol(tbl, ((r << 4) + n) as usize)?;
            self.bits((if c < 0 { !a } else { a }) as u32, n);
            r = 0;
        }
        if r > 0 {
            self.eobrun += 1;
            if self.eobrun == 0x7fff {
                self.eobrun(tbl)?;
            }
        }
        Ok(())
    }

    /// `encode_mcu_AC_refine`: bit `al` of coefficients `ss..=se`; a coefficient already
    /// nonzero gives a buffered correction bit, a newly nonzero one (magnitude 1) a symbol.
    fn ac_refine(&mut self, b: &[i16; 64], s: &Scan, tbl: usize) -> Result<(), JpegError> {
        let sl = s.se - s.ss + 1;
        let mut abs = [0i32; 64];
        let mut eob = 0;
        for (k, &nat) in NATURAL[s.ss..=s.se].iter().enumerate() {
            abs[k] = i32::from(b[nat]).abs() >> s.al;
            if abs[k] == 1 {
                eob = k;
            }
        }
        let mut r = 0u32;
        let mut br: Vec<u8> = Vec::new();
        for k in 0..sl {
            let a = abs[k];
            if a == 0 {
                r += 1;
                continue;
            }
            // ZRLs, unless they can fold into the EOB (no newly nonzero coefficient left).
            while r > 15 && k <= eob {
                self.eobrun(tbl)?;
                self.symbol(tbl, 0xf0)?;
                r -= 16;
                self.buffered(&br);
                br.clear();
            }
            if a > 1 {
                br.push((a & 1) as u8);
                continue;
            }
            self.eobrun(tbl)?;
            self.symbol(tbl, ((r << 4) + 1) as usize)?;
            self.bits(u32::from(b[NATURAL[s.ss + k]] > 0), 1);
            self.buffered(&br);
            br.clear();
            r = 0;
        }
        if r > 0 || !br.is_empty() {
            self.eobrun += 1;
            self.be.extend_from_slice(&br);
            if self.eobrun == 0x7fff || self.be.len() > MAX_CORR_BITS - 64 + 1 {
                self.eobrun(tbl)?;
            }
        }
        Ok(())
    }

    /// One pass over the scan's blocks, ending as `finish_pass_phuff` does.
    fn run(&mut self, s: &Scan, comps: &[Comp], mcus: (usize, usize)) -> Result<(), JpegError> {
        if s.ss == 0 {
            let scomps: Vec<&Comp> = s.comps.iter().map(|&c| &comps[c]).collect();
            let mut last = vec![0i32; comps.len()];
            let mut res = Ok(());
            let mut visit = |ci: usize, b: &[i16; 64]| {
                if res.is_ok() {
                    res = if s.ah == 0 {
                        self.dc_first(b, comps[ci].tbl, s.al, &mut last[ci])
                    } else {
                        self.bits(((i32::from(b[0]) >> s.al) & 1) as u32, 1);
                        Ok(())
                    };
                }
            };
            if scomps.len() == comps.len() {
                scan_order(comps, mcus.0, mcus.1, &mut visit);
            } else {
                // Only whole-frame DC scans occur in the script; a lone component is
                // non-interleaved: its real blocks, no dummies.
                for &c in &s.comps {
                    for b in &comps[c].blocks {
                        visit(c, b);
                    }
                }
            }
            res?;
        } else {
            let c = &comps[s.comps[0]];
            for b in &c.blocks {
                if s.ah == 0 {
                    self.ac_first(b, s, c.tbl)?;
                } else {
                    self.ac_refine(b, s, c.tbl)?;
                }
            }
            self.eobrun(c.tbl)?;
        }
        if let Some(w) = &mut self.w {
            w.flush();
        }
        Ok(())
    }
}

/// Appends the scans (DHT, SOS and entropy-coded data for each) after the frame header.
pub(super) fn write_scans(
    out: &mut Vec<u8>,
    comps: &[Comp],
    mcus_x: usize,
    mcus_y: usize,
) -> Result<(), JpegError> {
    for s in script(comps.len()) {
        let dc = s.ss == 0;
        // Tables of this scan, in the order write_scan_header emits them (duplicates
        // suppressed); a DC refinement scan has none.
        let mut used: Vec<usize> = Vec::new();
        if !(dc && s.ah != 0) {
            for &c in &s.comps {
                if !used.contains(&comps[c].tbl) {
                    used.push(comps[c].tbl);
                }
            }
        }
        let mut tables: [Option<HuffTable>; 2] = [None, None];
        if !used.is_empty() {
            let none = [None, None];
            let mut gather = Coder {
                w: None,
                counts: [[0; 257]; 2],
                tables: &none,
                eobrun: 0,
                be: Vec::new(),
            };
            gather.run(&s, comps, (mcus_x, mcus_y))?;
            for &t in &used {
                tables[t] = Some(HuffTable::optimal(&gather.counts[t])?);
            }
        }
        for &t in &used {
            if let Some(tab) = &tables[t] {
                let mut dht = vec![if dc { 0 } else { 0x10 } | t as u8];
                dht.extend_from_slice(&tab.bits);
                dht.extend_from_slice(&tab.vals);
                marker(out, 0xc4, &dht)?;
            }
        }
        let mut sos = vec![s.comps.len() as u8];
        for &c in &s.comps {
            let td = if dc && s.ah == 0 { comps[c].tbl } else { 0 };
            let ta = if s.se != 0 { comps[c].tbl } else { 0 };
            sos.extend_from_slice(&[comps[c].id, ((td as u8) << 4) | ta as u8]);
        }
        sos.extend_from_slice(&[s.ss as u8, s.se as u8, ((s.ah << 4) | s.al) as u8]);
        marker(out, 0xda, &sos)?;
        let mut emit = Coder {
            w: Some(Bits::new(out)),
            counts: [[0; 257]; 2],
            tables: &tables,
            eobrun: 0,
            be: Vec::new(),
        };
        emit.run(&s, comps, (mcus_x, mcus_y))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_matches_jpeg_simple_progression() {
        // jcparam.c: 10 scans for YCbCr, 2 + 4 per component otherwise.
        assert_eq!(script(3).len(), 10);
        assert_eq!(script(1).len(), 6);
        let last = script(3).pop().unwrap();
        assert_eq!(
            (last.comps, last.ss, last.se, last.ah, last.al),
            (vec![0], 1, 63, 1, 0)
        );
    }
}

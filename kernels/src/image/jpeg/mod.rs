//! A baseline + progressive JPEG decoder that follows libjpeg-turbo's decompression path,
//! so that its samples equal libjpeg-turbo's: the same IDCTs (fast/accurate 8×8 and the
//! reduced 4×4/2×2/1×1 used for 1/2, 1/4 and 1/8 scaling, see [`idct`]), the same choice of
//! per-component IDCT size when scaling (`jpeg_core_output_dimensions`), the same chroma
//! upsampling ("fancy" triangle filters `h2v1`/`h1v2`/`h2v2`, or box replication, which the
//! merged upsampler of `jdmerge.c` equals) and colour conversion tables (`jdcolor.c`), and
//! libjpeg-turbo's cropping rules (`jpeg_crop_scanline`: the window's left edge moves to an
//! iMCU boundary and upsampling treats the window's edges as image edges).
//!
//! Entropy decoding reads the whole file into coefficient blocks first (as libjpeg does for
//! multi-scan files), then one output pass transforms, upsamples and converts. Input is
//! untrusted: every size comes from the header and is checked (`Options::max_pixels`) before
//! anything is allocated; loops are bounded by block counts; damaged data decodes the way
//! libjpeg decodes it (see [`entropy`]) or fails with a [`JpegError`].
//!
//! Not supported (fail with [`JpegError::Unsupported`]): arithmetic coding, lossless and
//! hierarchical JPEG, 12/16-bit samples, scans that use Huffman tables never defined
//! (libjpeg-turbo would substitute its standard tables), and the block smoothing libjpeg
//! applies to progressive files whose refinement scans are missing.

mod color;
mod encode;
mod entropy;
mod idct;
mod progressive;

pub use encode::{encode, EncodeOptions};

use entropy::{Huffman, Scan};

/// Why a JPEG could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JpegError {
    /// Damaged or invalid data.
    #[error("corrupt JPEG data: {0}")]
    Corrupt(String),
    /// Valid JPEG this decoder does not implement.
    #[error("unsupported JPEG: {0}")]
    Unsupported(String),
    /// The data ends before the image is complete.
    #[error("premature end of JPEG data")]
    Truncated,
    /// The frame has more pixels than `Options::max_pixels`.
    #[error("a {height}x{width} JPEG exceeds the pixel cap of {cap}")]
    TooLarge {
        /// Frame height.
        height: usize,
        /// Frame width.
        width: usize,
        /// The cap.
        cap: usize,
    },
    /// A crop window outside the (scaled) image or empty.
    #[error("invalid crop window")]
    BadCrop,
    /// The requested output colour space cannot be produced from this file's.
    #[error("unsupported color conversion request")]
    Conversion,
}

impl JpegError {
    fn corrupt(s: &str) -> Self {
        JpegError::Corrupt(s.to_string())
    }
}

/// A crop window in output (scaled) pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crop {
    /// First row.
    pub y: usize,
    /// First column.
    pub x: usize,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
}

/// Decoding parameters (libjpeg's `jpeg_decompress_struct` settings).
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Output channels: 0 = the file's (gray for 1 component, else 3), 1 or 3.
    pub channels: usize,
    /// Downscale denominator: 1, 2, 4 or 8 (`scale_denom`).
    pub ratio: usize,
    /// `do_fancy_upsampling`.
    pub fancy_upsampling: bool,
    /// The accurate (LL&M, `JDCT_ISLOW`) 8×8 IDCT instead of the fast one (`JDCT_IFAST`).
    pub accurate_dct: bool,
    /// Decode a truncated file as if an end-of-image marker followed its data.
    pub try_recover_truncated: bool,
    /// Output only this window (`jpeg_crop_scanline` + `jpeg_skip_scanlines`).
    pub crop: Option<Crop>,
    /// Largest frame (width × height, before scaling) that may be decoded.
    pub max_pixels: usize,
}

/// What the frame header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// Components in the frame.
    pub components: usize,
}

/// Decoded samples.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// Output height.
    pub height: usize,
    /// Output width.
    pub width: usize,
    /// Output channels: 1, 3 or (CMYK/YCCK files asked for colour) 4.
    pub channels: usize,
    /// Row-major interleaved samples.
    pub pixels: Vec<u8>,
    /// Rows holding decoded data; fewer than `height` only for a truncated baseline file
    /// decoded without `try_recover_truncated` (the rest are zero). libjpeg's reader stops
    /// there, and TF accepts the image if enough rows were read (`acceptable_fraction`).
    pub rows_valid: usize,
    /// The file's colour transform was flagged by an Adobe marker (TF's CMYK conversion
    /// depends on it).
    pub adobe: bool,
}

/// JPEG colour spaces (`J_COLOR_SPACE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColorSpace {
    Gray,
    YCbCr,
    Rgb,
    Cmyk,
    Ycck,
    Unknown,
}

/// One frame component and its coefficient blocks.
#[derive(Debug)]
pub(crate) struct Component {
    id: u8,
    h: usize,
    v: usize,
    tq: usize,
    /// Blocks covering the component (`width_in_blocks`, `height_in_blocks`).
    bw: usize,
    bh: usize,
    /// Allocated blocks per row (MCU-padded).
    stride: usize,
    rows: usize,
    coefs: Vec<i16>,
}

/// The frame and its coefficients.
#[derive(Debug)]
pub(crate) struct Frame {
    width: usize,
    height: usize,
    progressive: bool,
    comps: Vec<Component>,
    maxh: usize,
    maxv: usize,
    mcus_x: usize,
    mcus_y: usize,
}

fn be16(d: &[u8], p: usize) -> Result<usize, JpegError> {
    match d.get(p..p + 2) {
        Some(b) => Ok(usize::from(u16::from_be_bytes([b[0], b[1]]))),
        None => Err(JpegError::Truncated),
    }
}

/// Finds the next marker at or after `pos` (skipping garbage and fill bytes, as libjpeg's
/// `next_marker`): returns (marker code, position after it).
fn next_marker(d: &[u8], mut pos: usize) -> Option<(u8, usize)> {
    while pos < d.len() {
        if d[pos] != 0xFF {
            pos += 1;
            continue;
        }
        let mut p = pos + 1;
        while p < d.len() && d[p] == 0xFF {
            p += 1;
        }
        match d.get(p) {
            None => return None,
            Some(0) => pos = p + 1,
            Some(&m) => return Some((m, p + 1)),
        }
    }
    None
}

/// A marker segment's payload (after the length) and the position after it.
fn segment(d: &[u8], pos: usize) -> Result<(&[u8], usize), JpegError> {
    let len = be16(d, pos)?;
    if len < 2 {
        return Err(JpegError::corrupt("bad marker length"));
    }
    let end = pos + len;
    match d.get(pos + 2..end) {
        Some(s) => Ok((s, end)),
        None => Err(JpegError::Truncated),
    }
}

fn parse_sof(s: &[u8], progressive: bool) -> Result<Frame, JpegError> {
    if s.len() < 6 {
        return Err(JpegError::corrupt("bad SOF marker length"));
    }
    if s[0] != 8 {
        return Err(JpegError::Unsupported(format!("{}-bit samples", s[0])));
    }
    let height = usize::from(u16::from_be_bytes([s[1], s[2]]));
    let width = usize::from(u16::from_be_bytes([s[3], s[4]]));
    let n = usize::from(s[5]);
    if height == 0 || width == 0 || n == 0 {
        return Err(JpegError::corrupt("empty JPEG image (DNL not supported)"));
    }
    // libjpeg: MAX_COMPONENTS (JPEG_MAX_DIMENSION is checked in `decode`, after the cap).
    if n > 10 || s.len() != 6 + 3 * n {
        return Err(JpegError::corrupt("bad SOF marker"));
    }
    let mut comps = Vec::with_capacity(n);
    for i in 0..n {
        let c = &s[6 + 3 * i..9 + 3 * i];
        let (h, v) = (usize::from(c[1] >> 4), usize::from(c[1] & 15));
        if !(1..=4).contains(&h) || !(1..=4).contains(&v) || c[2] > 3 {
            return Err(JpegError::corrupt("bad sampling factors"));
        }
        comps.push(Component {
            id: c[0],
            h,
            v,
            tq: usize::from(c[2]),
            bw: 0,
            bh: 0,
            stride: 0,
            rows: 0,
            coefs: Vec::new(),
        });
    }
    let maxh = comps.iter().map(|c| c.h).max().unwrap_or(1);
    let maxv = comps.iter().map(|c| c.v).max().unwrap_or(1);
    let mcus_x = width.div_ceil(8 * maxh);
    let mcus_y = height.div_ceil(8 * maxv);
    for c in &mut comps {
        c.bw = (width * c.h).div_ceil(maxh).div_ceil(8);
        c.bh = (height * c.v).div_ceil(maxv).div_ceil(8);
        c.stride = mcus_x * c.h;
        c.rows = mcus_y * c.v;
    }
    Ok(Frame {
        width,
        height,
        progressive,
        comps,
        maxh,
        maxv,
        mcus_x,
        mcus_y,
    })
}

/// Reads markers up to the frame header.
pub fn header(data: &[u8]) -> Result<Header, JpegError> {
    let f = Parser::new(data)?.frame_only()?;
    Ok(Header {
        height: f.height,
        width: f.width,
        components: f.comps.len(),
    })
}

/// Marker-level state (`jdmarker.c`).
struct Parser<'a> {
    d: &'a [u8],
    pos: usize,
    quant: [Option<[u16; 64]>; 4],
    dc: [Option<Huffman>; 4],
    ac: [Option<Huffman>; 4],
    restart: u16,
    jfif: bool,
    adobe: Option<u8>,
}

/// What the marker loop met next.
enum Next {
    Frame(Frame),
    Scan(Scan),
    End,
}

impl<'a> Parser<'a> {
    fn new(d: &'a [u8]) -> Result<Self, JpegError> {
        if d.len() < 2 || d[0] != 0xFF || d[1] != 0xD8 {
            return Err(JpegError::corrupt(
                "not a JPEG file: starts with no SOI marker",
            ));
        }
        Ok(Parser {
            d,
            pos: 2,
            quant: [None; 4],
            dc: [None, None, None, None],
            ac: [None, None, None, None],
            restart: 0,
            jfif: false,
            adobe: None,
        })
    }

    fn frame_only(mut self) -> Result<Frame, JpegError> {
        match self.next(None)? {
            Next::Frame(f) => Ok(f),
            _ => Err(JpegError::corrupt("no frame header")),
        }
    }

    /// Processes markers until a frame header, a scan header or the end.
    fn next(&mut self, frame: Option<&Frame>) -> Result<Next, JpegError> {
        loop {
            let Some((m, p)) = next_marker(self.d, self.pos) else {
                return if frame.is_some() {
                    Ok(Next::End)
                } else {
                    Err(JpegError::Truncated)
                };
            };
            self.pos = p;
            match m {
                0xD8 => return Err(JpegError::corrupt("unexpected SOI marker")),
                0xD9 => return Ok(Next::End),
                0xD0..=0xD7 | 0x01 => {}
                0xC0..=0xC2 => {
                    let (s, end) = segment(self.d, p)?;
                    if frame.is_some() {
                        return Err(JpegError::corrupt("duplicate SOF marker"));
                    }
                    self.pos = end;
                    return Ok(Next::Frame(parse_sof(s, m == 0xC2)?));
                }
                0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                    return Err(JpegError::Unsupported(format!(
                        "SOF type 0x{m:02x} (lossless, hierarchical or arithmetic coding)"
                    )));
                }
                0xC4 => {
                    let (s, end) = segment(self.d, p)?;
                    self.dht(s)?;
                    self.pos = end;
                }
                0xDB => {
                    let (s, end) = segment(self.d, p)?;
                    self.dqt(s)?;
                    self.pos = end;
                }
                0xDD => {
                    let (s, end) = segment(self.d, p)?;
                    if s.len() != 2 {
                        return Err(JpegError::corrupt("bad DRI marker length"));
                    }
                    self.restart = u16::from_be_bytes([s[0], s[1]]);
                    self.pos = end;
                }
                0xDA => {
                    let (s, end) = segment(self.d, p)?;
                    let Some(f) = frame else {
                        return Err(JpegError::corrupt("SOS before SOF"));
                    };
                    let scan = parse_sos(s, f)?;
                    self.pos = end;
                    return Ok(Next::Scan(scan));
                }
                0xE0 => {
                    let (s, end) = segment(self.d, p)?;
                    if s.len() >= 14 && s.starts_with(b"JFIF\0") {
                        self.jfif = true;
                    }
                    self.pos = end;
                }
                0xEE => {
                    let (s, end) = segment(self.d, p)?;
                    if s.len() >= 12 && s.starts_with(b"Adobe") {
                        self.adobe = Some(s[11]);
                    }
                    self.pos = end;
                }
                _ => {
                    let (_, end) = segment(self.d, p)?;
                    self.pos = end;
                }
            }
        }
    }

    fn dht(&mut self, mut s: &[u8]) -> Result<(), JpegError> {
        while !s.is_empty() {
            if s.len() < 17 {
                return Err(JpegError::corrupt("bad DHT marker"));
            }
            let (class, id) = (s[0] >> 4, usize::from(s[0] & 15));
            let counts: [u8; 16] = std::array::from_fn(|i| s[1 + i]);
            let n: usize = counts.iter().map(|&c| usize::from(c)).sum();
            let Some(symbols) = s.get(17..17 + n) else {
                return Err(JpegError::corrupt("bad DHT marker"));
            };
            if id > 3 || class > 1 {
                return Err(JpegError::corrupt("bad DHT table index"));
            }
            let t = Huffman::new(&counts, symbols, class == 0)?;
            if class == 0 {
                self.dc[id] = Some(t);
            } else {
                self.ac[id] = Some(t);
            }
            s = &s[17 + n..];
        }
        Ok(())
    }

    fn dqt(&mut self, mut s: &[u8]) -> Result<(), JpegError> {
        while !s.is_empty() {
            let (prec, id) = (s[0] >> 4, usize::from(s[0] & 15));
            if id > 3 {
                return Err(JpegError::corrupt("bad DQT table index"));
            }
            let size = if prec == 0 { 64 } else { 128 };
            let Some(vals) = s.get(1..1 + size) else {
                return Err(JpegError::corrupt("bad DQT marker"));
            };
            let mut q = [0u16; 64];
            for (k, &nat) in entropy::NATURAL[..64].iter().enumerate() {
                q[nat] = if prec == 0 {
                    u16::from(vals[k])
                } else {
                    u16::from_be_bytes([vals[2 * k], vals[2 * k + 1]])
                };
            }
            self.quant[id] = Some(q);
            s = &s[1 + size..];
        }
        Ok(())
    }

    /// `default_decompress_parms`: the file's colour space from its markers and ids.
    fn color_space(&self, f: &Frame) -> ColorSpace {
        match f.comps.len() {
            1 => ColorSpace::Gray,
            3 => {
                if self.jfif {
                    ColorSpace::YCbCr
                } else if let Some(t) = self.adobe {
                    if t == 0 {
                        ColorSpace::Rgb
                    } else {
                        ColorSpace::YCbCr
                    }
                } else {
                    let ids: Vec<u8> = f.comps.iter().map(|c| c.id).collect();
                    if ids == [82, 71, 66] {
                        ColorSpace::Rgb
                    } else {
                        ColorSpace::YCbCr
                    }
                }
            }
            4 => match self.adobe {
                Some(0) => ColorSpace::Cmyk,
                Some(_) => ColorSpace::Ycck,
                None => ColorSpace::Cmyk,
            },
            _ => ColorSpace::Unknown,
        }
    }
}

fn parse_sos(s: &[u8], f: &Frame) -> Result<Scan, JpegError> {
    let n = usize::from(*s.first().unwrap_or(&0));
    if n == 0 || n > 4 || s.len() != 4 + 2 * n {
        return Err(JpegError::corrupt("bad SOS marker"));
    }
    let mut comps = Vec::with_capacity(n);
    for i in 0..n {
        let (id, t) = (s[1 + 2 * i], s[2 + 2 * i]);
        let Some(ci) = f.comps.iter().position(|c| c.id == id) else {
            return Err(JpegError::corrupt("SOS names an unknown component"));
        };
        if comps.iter().any(|&(c, _, _)| c == ci) {
            return Err(JpegError::corrupt("SOS names a component twice"));
        }
        comps.push((ci, usize::from(t >> 4), usize::from(t & 15)));
    }
    let k = 1 + 2 * n;
    let scan = Scan {
        comps,
        ss: s[k],
        se: s[k + 1],
        ah: s[k + 2] >> 4,
        al: s[k + 2] & 15,
    };
    if n > 1 {
        let blocks: usize = scan
            .comps
            .iter()
            .map(|&(c, _, _)| f.comps[c].h * f.comps[c].v)
            .sum();
        if blocks > 10 {
            return Err(JpegError::corrupt(
                "sampling factors too large for interleaved scan",
            ));
        }
    }
    if f.progressive {
        // jdphuff.c start_pass_phuff_decoder's checks.
        let mut bad = false;
        if scan.ss == 0 {
            bad |= scan.se != 0;
        } else {
            bad |= scan.ss > scan.se || scan.se > 63 || n != 1;
        }
        if scan.ah != 0 {
            bad |= scan.al + 1 != scan.ah;
        }
        bad |= scan.al > 13;
        if bad {
            return Err(JpegError::corrupt("invalid progressive parameters"));
        }
    }
    Ok(scan)
}

/// libjpeg-turbo's per-component IDCT size for a given minimum (`jpeg_core_output_dimensions`):
/// components sampled below the maximum are transformed larger, up to 8, so they need
/// less upsampling.
fn scaled_size(f: &Frame, c: &Component, min: usize) -> usize {
    let mut s = min;
    while s < 8
        && (f.maxh * min).is_multiple_of(c.h * s * 2)
        && (f.maxv * min).is_multiple_of(c.v * s * 2)
    {
        s *= 2;
    }
    s
}

/// Output size for these options: `(height, width, channels)` (4 channels for colour from
/// a CMYK/YCCK file, which the caller converts), before cropping.
pub fn output_size(h: &Header, opts: &Options) -> (usize, usize, usize) {
    let r = opts.ratio.max(1);
    let c = match opts.channels {
        0 => h.components.min(3),
        c => c,
    };
    let c = if c == 3 && h.components == 4 { 4 } else { c };
    (h.height.div_ceil(r), h.width.div_ceil(r), c)
}

/// Decodes `data` under `opts`.
pub fn decode(data: &[u8], opts: &Options) -> Result<Decoded, JpegError> {
    if !matches!(opts.ratio, 1 | 2 | 4 | 8) {
        return Err(JpegError::Unsupported(format!("ratio {}", opts.ratio)));
    }
    let mut p = Parser::new(data)?;
    let mut frame = match p.next(None)? {
        Next::Frame(f) => f,
        _ => return Err(JpegError::corrupt("no frame header")),
    };
    let pixels = frame.width.saturating_mul(frame.height);
    if pixels > opts.max_pixels {
        return Err(JpegError::TooLarge {
            height: frame.height,
            width: frame.width,
            cap: opts.max_pixels,
        });
    }
    // libjpeg's JPEG_MAX_DIMENSION (checked after the caller's cap, so a huge header is
    // reported as such).
    if frame.height > 65500 || frame.width > 65500 {
        return Err(JpegError::corrupt(
            "maximum supported image dimension is 65500 pixels",
        ));
    }
    for c in &mut frame.comps {
        c.coefs = vec![0; c.stride * c.rows * 64];
    }
    let mut scans = 0usize;
    let mut truncated: Option<usize> = None;
    loop {
        match p.next(Some(&frame))? {
            Next::Frame(_) => return Err(JpegError::corrupt("duplicate SOF marker")),
            Next::End => break,
            Next::Scan(scan) => {
                scans += 1;
                let end =
                    entropy::decode_scan(&mut frame, &scan, &p.dc, &p.ac, p.restart, data, p.pos)?;
                p.pos = end.pos;
                if end.eof {
                    if !opts.try_recover_truncated {
                        truncated = Some(end.mcus_done);
                    }
                    break;
                }
            }
        }
    }
    if scans == 0 {
        // libjpeg: end of file (or EOI) before the first scan.
        return Err(if opts.try_recover_truncated {
            JpegError::corrupt("no image data")
        } else {
            JpegError::Truncated
        });
    }
    // A truncated file without recovery: libjpeg's reader suspends. Multi-scan files fail
    // outright (jpeg_start_decompress never finishes reading); a single-scan file yields
    // the rows decoded before the data ran out.
    let rows_limit = match truncated {
        None => None,
        Some(_) if scans > 1 || frame.progressive => return Err(JpegError::Truncated),
        Some(mcus) => Some(mcus),
    };
    color::output(&frame, &p, opts, rows_limit)
}

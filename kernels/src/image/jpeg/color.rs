//! The output pass: inverse DCT of each needed component at its scaled size, chroma
//! upsampling as `jdsample.c` does it (fancy triangle filters with libjpeg's rounding
//! biases, or box replication, which `jdmerge.c`'s merged upsampler equals), and colour
//! conversion with `jdcolor.c`'s fixed-point tables. Also applies libjpeg-turbo's crop
//! window rules (`jpeg_crop_scanline`).

use super::idct::{self, Mults};
use super::{ColorSpace, Crop, Decoded, Frame, JpegError, Options, Parser};

/// How one component reaches the output grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Up {
    /// Replicate `h`×`v` (1×1 = full size).
    Box(usize, usize),
    H2v1,
    H1v2,
    H2v2,
}

/// A component's samples at its scaled size, for the columns the output window needs.
struct Plane {
    px: Vec<u8>,
    w: usize,
    /// Real samples per row / rows (`downsampled_width/height`): reads clamp to these.
    dw: usize,
    dh: usize,
    up: Up,
}

impl Plane {
    #[inline(always)]
    fn at(&self, x: isize, y: isize) -> i32 {
        let x = x.clamp(0, self.dw as isize - 1) as usize;
        let y = y.clamp(0, self.dh as isize - 1) as usize;
        i32::from(self.px[y * self.w + x])
    }

    /// Fills `out` (window columns) with output row `y` of this component.
    fn row(&self, y: usize, out: &mut [u8]) {
        let yi = y as isize;
        match self.up {
            Up::Box(h, v) => {
                let r = (y / v) as isize;
                for (x, o) in out.iter_mut().enumerate() {
                    *o = self.at((x / h) as isize, r) as u8;
                }
            }
            Up::H2v1 => {
                let r = yi;
                let last = self.dw as isize - 1;
                for (x, o) in out.iter_mut().enumerate() {
                    let i = (x / 2) as isize;
                    let v = self.at(i, r);
                    *o = if x % 2 == 0 {
                        if i == 0 {
                            v
                        } else {
                            (v * 3 + self.at(i - 1, r) + 1) >> 2
                        }
                    } else if i >= last {
                        v
                    } else {
                        (v * 3 + self.at(i + 1, r) + 2) >> 2
                    } as u8;
                }
            }
            Up::H1v2 => {
                let r = yi / 2;
                let (other, bias) = if y.is_multiple_of(2) {
                    (r - 1, 1)
                } else {
                    (r + 1, 2)
                };
                for (x, o) in out.iter_mut().enumerate() {
                    let xi = x as isize;
                    *o = ((self.at(xi, r) * 3 + self.at(xi, other) + bias) >> 2) as u8;
                }
            }
            Up::H2v2 => {
                let r = yi / 2;
                let other = if y.is_multiple_of(2) { r - 1 } else { r + 1 };
                let last = self.dw as isize - 1;
                let sum = |i: isize| self.at(i, r) * 3 + self.at(i, other);
                for (x, o) in out.iter_mut().enumerate() {
                    let i = (x / 2) as isize;
                    let this = sum(i);
                    *o = if x % 2 == 0 {
                        if i == 0 {
                            (this * 4 + 8) >> 4
                        } else {
                            (this * 3 + sum(i - 1) + 8) >> 4
                        }
                    } else if i >= last {
                        (this * 4 + 7) >> 4
                    } else {
                        (this * 3 + sum(i + 1) + 7) >> 4
                    } as u8;
                }
            }
        }
    }
}

/// `jdcolor.c`'s YCbCr -> RGB tables (SCALEBITS = 16).
struct Ycc {
    cr_r: [i32; 256],
    cb_b: [i32; 256],
    cr_g: [i32; 256],
    cb_g: [i32; 256],
}

impl Ycc {
    fn new() -> Self {
        const HALF: i32 = 1 << 15;
        Ycc {
            cr_r: std::array::from_fn(|i| (91881 * (i as i32 - 128) + HALF) >> 16),
            cb_b: std::array::from_fn(|i| (116130 * (i as i32 - 128) + HALF) >> 16),
            cr_g: std::array::from_fn(|i| -46802 * (i as i32 - 128)),
            cb_g: std::array::from_fn(|i| -22554 * (i as i32 - 128) + HALF),
        }
    }

    #[inline(always)]
    fn rgb(&self, y: u8, cb: u8, cr: u8) -> [u8; 3] {
        let (y, cb, cr) = (i32::from(y), usize::from(cb), usize::from(cr));
        let lim = |v: i32| v.clamp(0, 255) as u8;
        [
            lim(y + self.cr_r[cr]),
            lim(y + ((self.cb_g[cb] + self.cr_g[cr]) >> 16)),
            lim(y + self.cb_b[cb]),
        ]
    }
}

/// Output colour space and per-pixel conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Convert {
    /// Copy the components (gray from gray/YCbCr's Y, RGB from RGB, CMYK from CMYK).
    Copy,
    GrayToRgb,
    RgbToGray,
    YccToRgb,
    YcckToCmyk,
}

/// Runs the output pass. `truncated_mcus`: the single scan stopped (data ended) after this
/// many MCUs.
pub(super) fn output(
    f: &Frame,
    p: &Parser<'_>,
    opts: &Options,
    truncated_mcus: Option<usize>,
) -> Result<Decoded, JpegError> {
    let cs = p.color_space(f);
    let n = f.comps.len();
    let channels = match opts.channels {
        0 => n.min(3),
        c => c,
    };
    let (convert, needed, out_c): (Convert, Vec<usize>, usize) = match (channels, cs) {
        (1, ColorSpace::Gray | ColorSpace::YCbCr) => (Convert::Copy, vec![0], 1),
        (1, ColorSpace::Rgb) => (Convert::RgbToGray, vec![0, 1, 2], 1),
        (3, ColorSpace::YCbCr) => (Convert::YccToRgb, vec![0, 1, 2], 3),
        (3, ColorSpace::Gray) => (Convert::GrayToRgb, vec![0], 3),
        (3, ColorSpace::Rgb) => (Convert::Copy, vec![0, 1, 2], 3),
        (3, ColorSpace::Cmyk) => (Convert::Copy, vec![0, 1, 2, 3], 4),
        (3, ColorSpace::Ycck) => (Convert::YcckToCmyk, vec![0, 1, 2, 3], 4),
        _ => return Err(JpegError::Conversion),
    };
    let ratio = opts.ratio;
    let min = 8 / ratio;
    let do_fancy = opts.fancy_upsampling && min > 1;
    let (out_h, out_w) = (f.height.div_ceil(ratio), f.width.div_ceil(ratio));
    // Crop window: rows [y0, y1), decoded columns [xoff, xoff + win_w), kept columns from
    // `keep` within them.
    let (y0, y1, xoff, win_w, keep, keep_w) = match opts.crop {
        None => (0, out_h, 0, out_w, 0, out_w),
        Some(Crop {
            y,
            x,
            height,
            width,
        }) => {
            if width == 0
                || height == 0
                || x.saturating_add(width) > out_w
                || y.saturating_add(height) > out_h
            {
                return Err(JpegError::BadCrop);
            }
            if width == out_w {
                (y, y + height, 0, out_w, 0, out_w)
            } else {
                let align = if n == 1 { min } else { min * f.maxh };
                let xoff = x / align * align;
                (y, y + height, xoff, width + x - xoff, x - xoff, width)
            }
        }
    };
    let cropped = win_w != out_w;
    let mut planes = Vec::with_capacity(needed.len());
    let mut context = false;
    for &ci in &needed {
        let c = &f.comps[ci];
        let Some(q) = p.quant[c.tq].as_ref() else {
            return Err(JpegError::corrupt("quantization table not defined"));
        };
        let s = super::scaled_size(f, c, min);
        let (h, v) = if n == 1 { (f.maxh, f.maxv) } else { (c.h, c.v) };
        let dw_full = (f.width * h * s).div_ceil(f.maxh * 8);
        let dh = (f.height * v * s).div_ceil(f.maxv * 8);
        let den = f.maxh * min;
        let c0 = xoff * h * s / den;
        let dw = if cropped {
            (win_w * h * s).div_ceil(den)
        } else {
            dw_full
        };
        let (h_in, v_in) = (h * s / min, v * s / min);
        if h_in == 0 || v_in == 0 || !f.maxh.is_multiple_of(h_in) || !f.maxv.is_multiple_of(v_in) {
            return Err(JpegError::Unsupported(
                "fractional sampling not implemented yet".into(),
            ));
        }
        let (he, ve) = (f.maxh / h_in, f.maxv / v_in);
        let fancy_w = do_fancy && dw_full > 2 && dw >= 2;
        let up = match (he, ve) {
            (2, 1) if fancy_w => Up::H2v1,
            (1, 2) if do_fancy => Up::H1v2,
            (2, 2) if fancy_w => Up::H2v2,
            (h, v) => Up::Box(h, v),
        };
        context |= matches!(up, Up::H1v2 | Up::H2v2);
        // Inverse DCT of the blocks under [c0, c0 + dw) x [0, dh).
        let bx0 = c0 / s;
        let bx1 = (c0 + dw).div_ceil(s).min(c.stride);
        let by1 = dh.div_ceil(s).min(c.rows);
        let nbx = bx1.saturating_sub(bx0);
        let w = nbx * s;
        let mut px = vec![0u8; w * by1 * s];
        let mults: Mults = if s == 8 && !opts.accurate_dct {
            idct::ifast_table(q)
        } else {
            idct::islow_table(q)
        };
        for by in 0..by1 {
            for bx in bx0..bx1 {
                let off = (by * c.stride + bx) * 64;
                let Some(b) = c.coefs.get(off..off + 64) else {
                    continue;
                };
                let block: &idct::Block = b.try_into().unwrap_or(&[0; 64]);
                let o = by * s * w + (bx - bx0) * s;
                let out = &mut px[o..];
                match s {
                    8 if opts.accurate_dct => idct::islow(block, &mults, out, w),
                    8 => idct::ifast(block, &mults, out, w),
                    4 => idct::idct4(block, &mults, out, w),
                    2 => idct::idct2(block, &mults, out, w),
                    _ => idct::idct1(block, &mults, out),
                }
            }
        }
        if w == 0 || dh == 0 {
            return Err(JpegError::corrupt("empty component"));
        }
        planes.push(Plane {
            px,
            w,
            dw: dw.min(w).max(1),
            dh: dh.min(by1 * s).max(1),
            up,
        });
    }
    let rows = y1 - y0;
    let mut pixels = vec![0u8; rows * keep_w * out_c];
    // Rows decoded before a truncated single scan ran out (libjpeg's output_scanline when
    // jpeg_read_scanlines returns 0).
    let rows_valid_abs = match truncated_mcus {
        None => out_h,
        Some(mcus) => {
            let per_row = if f.comps.len() == 1 {
                f.comps[0].bw
            } else {
                f.mcus_x
            };
            let imcu = mcus / per_row.max(1);
            let lines = min * f.maxv;
            let mut r = imcu * lines;
            if context && imcu * lines < out_h {
                r = r.saturating_sub(f.maxv);
            }
            r.min(out_h)
        }
    };
    let rows_valid = rows_valid_abs.saturating_sub(y0).min(rows);
    let ycc = Ycc::new();
    let mut bufs: Vec<Vec<u8>> = planes.iter().map(|_| vec![0u8; win_w]).collect();
    for (ry, y) in (y0..y0 + rows_valid).enumerate() {
        for (pl, buf) in planes.iter().zip(bufs.iter_mut()) {
            pl.row(y, buf);
        }
        let out = &mut pixels[ry * keep_w * out_c..(ry + 1) * keep_w * out_c];
        for x in 0..keep_w {
            let sx = keep + x;
            let o = &mut out[x * out_c..(x + 1) * out_c];
            match convert {
                Convert::Copy => {
                    for (k, b) in bufs.iter().enumerate() {
                        o[k] = b[sx];
                    }
                }
                Convert::GrayToRgb => o.fill(bufs[0][sx]),
                Convert::RgbToGray => {
                    let (r, g, b) = (
                        i32::from(bufs[0][sx]),
                        i32::from(bufs[1][sx]),
                        i32::from(bufs[2][sx]),
                    );
                    o[0] = ((19595 * r + 38470 * g + 7471 * b + (1 << 15)) >> 16) as u8;
                }
                Convert::YccToRgb => {
                    o.copy_from_slice(&ycc.rgb(bufs[0][sx], bufs[1][sx], bufs[2][sx]));
                }
                Convert::YcckToCmyk => {
                    let [r, g, b] = ycc.rgb(bufs[0][sx], bufs[1][sx], bufs[2][sx]);
                    o.copy_from_slice(&[255 - r, 255 - g, 255 - b, bufs[3][sx]]);
                }
            }
        }
    }
    Ok(Decoded {
        height: rows,
        width: keep_w,
        channels: out_c,
        pixels,
        rows_valid,
        adobe: p.adobe.is_some(),
    })
}

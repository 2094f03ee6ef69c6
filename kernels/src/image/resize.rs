//! Resampling of NHWC images: bilinear, nearest, bicubic (table-driven cubic convolution),
//! area averaging, and separable span filters (Lanczos, Gaussian, box, triangle, cubics).
//!
//! Each resampler follows one reference algorithm float operation for float operation,
//! in the same order (separable passes, per-tap accumulation order, table lookups), so that
//! results are bit-identical to it rather than merely close. Scales are "input pixels per
//! output pixel"; `half` selects half-pixel centres (`(i + 0.5) * scale - 0.5`) over the
//! legacy `i * scale` mapping. Rows are split across threads with rayon; the bilinear
//! vertical blend runs over contiguous rows so it vectorises.
//!
//! # Panics
//! Every entry point asserts that `src` holds `dims` and `dst` holds the output shape.

use super::Sample;
use rayon::prelude::*;

/// Minimum output elements per parallel task (smaller images run on one thread).
const PAR_MIN: usize = 1 << 14;

fn check(src_len: usize, dims: [usize; 4], dst_len: usize, out: (usize, usize)) {
    assert_eq!(
        src_len,
        dims.iter().product::<usize>(),
        "resize: src length"
    );
    assert_eq!(
        dst_len,
        dims[0] * out.0 * out.1 * dims[3],
        "resize: dst length"
    );
}

/// Runs `row(index, out_row)` over every output row, in parallel when the image is large.
fn for_rows<U: Send>(dst: &mut [U], row_len: usize, row: impl Fn(usize, &mut [U]) + Sync + Send) {
    if row_len == 0 {
        return;
    }
    if dst.len() >= PAR_MIN {
        let per = (PAR_MIN / row_len).max(1);
        dst.par_chunks_mut(row_len * per)
            .enumerate()
            .for_each(|(k, chunk)| {
                for (j, r) in chunk.chunks_mut(row_len).enumerate() {
                    row(k * per + j, r)
                }
            });
    } else {
        dst.chunks_mut(row_len)
            .enumerate()
            .for_each(|(i, r)| row(i, r));
    }
}

/// Source coordinate of output index `i` (as float), before any clamping.
#[inline(always)]
fn source(i: usize, scale: f32, half: bool) -> f32 {
    if half {
        (i as f32 + 0.5) * scale - 0.5
    } else {
        i as f32 * scale
    }
}

/// Two-tap linear interpolation along one axis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinearTap {
    /// Lower source index.
    pub lower: usize,
    /// Upper source index.
    pub upper: usize,
    /// Weight of `upper` (`source - floor(source)`).
    pub frac: f32,
}

/// Linear taps for `out` outputs over `input` samples (`input >= 1`).
pub fn linear_taps(out: usize, input: usize, scale: f32, half: bool) -> Vec<LinearTap> {
    let last = input as i64 - 1;
    (0..out)
        .map(|i| {
            let s = source(i, scale, half);
            let f = s.floor();
            LinearTap {
                lower: (f as i64).clamp(0, last) as usize,
                upper: (s.ceil() as i64).clamp(0, last) as usize,
                frac: s - f,
            }
        })
        .collect()
}

/// Bilinear resize into `dst` (`[n, out.0, out.1, c]` `f32`): per output pixel
/// `top = tl + (tr - tl) * fx`, `bottom = bl + (br - bl) * fx`, `top + (bottom - top) * fy`.
pub fn resize_bilinear<T: Sample>(
    src: &[T],
    dims: [usize; 4],
    dst: &mut [f32],
    out: (usize, usize),
    scale: (f32, f32),
    half: bool,
) {
    check(src.len(), dims, dst.len(), out);
    let [_, h, w, c] = dims;
    if out == (h, w) {
        dst.par_iter_mut()
            .zip(src.par_iter())
            .for_each(|(d, s)| *d = s.to_f32());
        return;
    }
    let ys = linear_taps(out.0, h, scale.0, half);
    let xs = linear_taps(out.1, w, scale.1, half);
    let row_len = out.1 * c;
    let in_row = w * c;
    let blend = |r: usize, dst_row: &mut [f32], top: &mut Vec<f32>, bottom: &mut Vec<f32>| {
        let (b, y) = (r / out.0, r % out.0);
        let t = ys[y];
        let plane = b * h * in_row;
        let lo = &src[plane + t.lower * in_row..][..in_row];
        let hi = &src[plane + t.upper * in_row..][..in_row];
        top.resize(row_len, 0.0);
        bottom.resize(row_len, 0.0);
        horizontal(lo, &xs, c, top);
        horizontal(hi, &xs, c, bottom);
        let fy = t.frac;
        for ((d, &tp), &bt) in dst_row.iter_mut().zip(top.iter()).zip(bottom.iter()) {
            *d = tp + (bt - tp) * fy;
        }
    };
    if dst.len() >= PAR_MIN {
        let per = (PAR_MIN / row_len.max(1)).max(1);
        dst.par_chunks_mut(row_len * per).enumerate().for_each_init(
            || (Vec::new(), Vec::new()),
            |(top, bottom), (k, chunk)| {
                for (j, r) in chunk.chunks_mut(row_len).enumerate() {
                    blend(k * per + j, r, top, bottom)
                }
            },
        );
    } else {
        let (mut top, mut bottom) = (Vec::new(), Vec::new());
        for (r, d) in dst.chunks_mut(row_len).enumerate() {
            blend(r, d, &mut top, &mut bottom);
        }
    }
}

/// One source row interpolated horizontally at every output column.
#[inline]
fn horizontal<T: Sample>(row: &[T], xs: &[LinearTap], c: usize, out: &mut [f32]) {
    match c {
        1 => horizontal_n::<T, 1>(row, xs, out),
        3 => horizontal_n::<T, 3>(row, xs, out),
        4 => horizontal_n::<T, 4>(row, xs, out),
        _ => {
            for (x, o) in xs.iter().zip(out.chunks_exact_mut(c)) {
                let l = &row[x.lower * c..][..c];
                let u = &row[x.upper * c..][..c];
                for ((o, &l), &u) in o.iter_mut().zip(l).zip(u) {
                    let l = l.to_f32();
                    *o = l + (u.to_f32() - l) * x.frac;
                }
            }
        }
    }
}

#[inline(always)]
fn horizontal_n<T: Sample, const C: usize>(row: &[T], xs: &[LinearTap], out: &mut [f32]) {
    for (x, o) in xs.iter().zip(out.chunks_exact_mut(C)) {
        let l: &[T; C] = row[x.lower * C..][..C].try_into().expect("C-wide pixel");
        let u: &[T; C] = row[x.upper * C..][..C].try_into().expect("C-wide pixel");
        for ((o, l), u) in o.iter_mut().zip(l).zip(u) {
            let lv = l.to_f32();
            *o = lv + (u.to_f32() - lv) * x.frac;
        }
    }
}

/// Nearest source index per output index: `floor` (or `round` with `align`) of the
/// source coordinate, where half-pixel centres use `(i + 0.5) * scale` (no `- 0.5`: the
/// floor absorbs it), clamped to the input.
pub fn nearest_indices(
    out: usize,
    input: usize,
    scale: f32,
    half: bool,
    align: bool,
) -> Vec<usize> {
    let last = input as i64 - 1;
    (0..out)
        .map(|i| {
            let s = if half {
                (i as f32 + 0.5) * scale
            } else {
                i as f32 * scale
            };
            let v = if align { s.round() } else { s.floor() } as i64;
            v.clamp(0, last) as usize
        })
        .collect()
}

/// Nearest-neighbour resize (copies pixels; any element type).
pub fn resize_nearest<T: Copy + Send + Sync>(
    src: &[T],
    dims: [usize; 4],
    dst: &mut [T],
    out: (usize, usize),
    scale: (f32, f32),
    half: bool,
    align: bool,
) {
    check(src.len(), dims, dst.len(), out);
    let [_, h, w, c] = dims;
    let ys = nearest_indices(out.0, h, scale.0, half, align);
    let xs = nearest_indices(out.1, w, scale.1, half, align);
    for_rows(dst, out.1 * c, |r, row| {
        let (b, y) = (r / out.0, r % out.0);
        let src_row = &src[(b * h + ys[y]) * w * c..][..w * c];
        for (o, &x) in row.chunks_exact_mut(c).zip(&xs) {
            o.copy_from_slice(&src_row[x * c..][..c]);
        }
    });
}

/// Size of the cubic coefficient table (one entry per 1/1024 of a pixel).
const TABLE: usize = 1 << 10;

/// Cubic-convolution coefficients `[w(x), w(x + 1)]` for `x = i / 1024`, computed in `f64`
/// and stored as `f32`.
fn cubic_table(a: f64) -> Vec<[f32; 2]> {
    (0..=TABLE)
        .map(|i| {
            let x = (i as f64 / TABLE as f64) as f32;
            let xd = x as f64;
            let w0 = ((a + 2.0) * xd - (a + 3.0)) * xd * xd + 1.0;
            let x1 = (xd + 1.0) as f32 as f64;
            let w1 = ((a * x1 - 5.0 * a) * x1 + 8.0 * a) * x1 - 4.0 * a;
            [w0 as f32, w1 as f32]
        })
        .collect()
}

/// Four cubic taps along one axis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CubicTaps {
    /// Source indices (clamped to the input).
    pub index: [usize; 4],
    /// Weights.
    pub weight: [f32; 4],
}

/// Cubic taps. `keys` (half-pixel centres) uses Keys' `a = -0.5`, gives zero weight to taps
/// outside the input and renormalises; otherwise `a = -0.75` and edge taps repeat.
pub fn cubic_taps(out: usize, input: usize, scale: f32, keys: bool) -> Vec<CubicTaps> {
    let table = cubic_table(if keys { -0.5 } else { -0.75 });
    let last = input as i64 - 1;
    (0..out)
        .map(|i| {
            let s = source(i, scale, keys);
            let loc = s.floor() as i64;
            let delta = s - loc as f32;
            let off =
                ((delta * TABLE as f32).round_ties_even() as i64).clamp(0, TABLE as i64) as usize;
            let raw = [
                table[off][1],
                table[off][0],
                table[TABLE - off][0],
                table[TABLE - off][1],
            ];
            let mut t = CubicTaps {
                index: [0; 4],
                weight: raw,
            };
            for (k, (index, weight)) in t.index.iter_mut().zip(&mut t.weight).enumerate() {
                let want = loc + k as i64 - 1;
                let got = want.clamp(0, last);
                *index = got as usize;
                if keys && got != want {
                    *weight = 0.0;
                }
            }
            if keys {
                let sum = t.weight[0] + t.weight[1] + t.weight[2] + t.weight[3];
                if sum.abs() >= 1000.0 * f32::MIN_POSITIVE {
                    let inv = 1.0 / sum;
                    t.weight.iter_mut().for_each(|w| *w *= inv);
                }
            }
            t
        })
        .collect()
}

/// Bicubic resize into `f32`: each output is `Σ_x wx · (Σ_y wy · v)` (vertical pass per
/// tap column first), summed left to right.
pub fn resize_bicubic<T: Sample>(
    src: &[T],
    dims: [usize; 4],
    dst: &mut [f32],
    out: (usize, usize),
    scale: (f32, f32),
    half: bool,
) {
    check(src.len(), dims, dst.len(), out);
    let [_, h, w, c] = dims;
    let ys = cubic_taps(out.0, h, scale.0, half);
    let xs = cubic_taps(out.1, w, scale.1, half);
    let in_row = w * c;
    for_rows(dst, out.1 * c, |r, row| {
        let (b, y) = (r / out.0, r % out.0);
        let t = ys[y];
        let plane = &src[b * h * in_row..][..h * in_row];
        let rows = t.index.map(|i| &plane[i * in_row..][..in_row]);
        for (o, xt) in row.chunks_exact_mut(c).zip(&xs) {
            for (ch, o) in o.iter_mut().enumerate() {
                let col = |j: usize| {
                    let p = xt.index[j] * c + ch;
                    rows[0][p].to_f32() * t.weight[0]
                        + rows[1][p].to_f32() * t.weight[1]
                        + rows[2][p].to_f32() * t.weight[2]
                        + rows[3][p].to_f32() * t.weight[3]
                };
                *o = col(0) * xt.weight[0]
                    + col(1) * xt.weight[1]
                    + col(2) * xt.weight[2]
                    + col(3) * xt.weight[3];
            }
        }
    });
}

/// The input cells one output cell of an area resize covers along one axis.
#[derive(Debug, Clone)]
struct AreaSpan {
    start: i64,
    end: i64,
    start_scale: f32,
    end_scale: f32,
}

fn cell_weight(v: i64, lo: f32, hi: f32, scale: f32) -> f32 {
    let vf = v as f32;
    if vf < lo {
        if (v + 1) as f32 > hi {
            scale
        } else {
            (v + 1) as f32 - lo
        }
    } else if (v + 1) as f32 > hi {
        hi - vf
    } else {
        1.0
    }
}

fn area_spans(out: usize, scale: f32) -> Vec<AreaSpan> {
    (0..out)
        .map(|x| {
            let lo = x as f32 * scale;
            let hi = (x + 1) as f32 * scale;
            let start = lo.floor() as i64;
            let end = hi.ceil() as i64;
            AreaSpan {
                start,
                end,
                start_scale: cell_weight(start, lo, hi, scale),
                end_scale: cell_weight(end - 1, lo, hi, scale),
            }
        })
        .collect()
}

/// Area resize into `f32`: each output averages the input cells it covers, partial cells
/// weighted by their covered fraction; indices past the edge repeat the edge.
pub fn resize_area<T: Sample>(
    src: &[T],
    dims: [usize; 4],
    dst: &mut [f32],
    out: (usize, usize),
    scale: (f32, f32),
) {
    check(src.len(), dims, dst.len(), out);
    let [_, h, w, c] = dims;
    let xs = area_spans(out.1, scale.1);
    let ys = area_spans(out.0, scale.0);
    let norm = (1.0f64 / (scale.0 * scale.1) as f64) as f32;
    let in_row = w * c;
    let bound = |v: i64, n: usize| v.clamp(0, n as i64 - 1) as usize;
    for_rows(dst, out.1 * c, |r, row| {
        let (b, y) = (r / out.0, r % out.0);
        let ysp = &ys[y];
        let lo = y as f32 * scale.0;
        let hi = (y + 1) as f32 * scale.0;
        let plane = &src[b * h * in_row..][..h * in_row];
        let taps: Vec<(f32, &[T])> = (ysp.start..ysp.end)
            .map(|i| {
                (
                    cell_weight(i, lo, hi, scale.0),
                    &plane[bound(i, h) * in_row..][..in_row],
                )
            })
            .collect();
        for (o, xsp) in row.chunks_exact_mut(c).zip(&xs) {
            for (ch, o) in o.iter_mut().enumerate() {
                let mut sum = 0.0f32;
                for &(wy, src_row) in &taps {
                    let px = |x: i64| src_row[bound(x, w) * c + ch].to_f32();
                    let mut sy = px(xsp.start) * xsp.start_scale;
                    if xsp.start + 1 != xsp.end {
                        for x in xsp.start + 1..xsp.end - 1 {
                            sy += px(x);
                        }
                        sy += px(xsp.end - 1) * xsp.end_scale;
                    }
                    sum += sy * wy;
                }
                *o = sum * norm;
            }
        }
    });
}

/// A separable resampling filter, evaluated at `|x|` in source pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Filter {
    /// 1 inside `(-0.5, 0.5)`, 0.5 on the edge.
    Box,
    /// Gaussian of radius 1.5, sigma 0.5.
    Gaussian,
    /// Keys' cubic (Catmull-Rom), radius 2.
    KeysCubic,
    /// Lanczos with the given radius (1, 3 or 5).
    Lanczos(u8),
    /// Mitchell-Netravali cubic, radius 2.
    MitchellCubic,
    /// Tent of radius 1.
    Triangle,
}

impl Filter {
    /// Support radius.
    pub fn radius(self) -> f32 {
        match self {
            Filter::Box | Filter::Triangle => 1.0,
            Filter::Gaussian => 1.5,
            Filter::KeysCubic | Filter::MitchellCubic => 2.0,
            Filter::Lanczos(r) => r as f32,
        }
    }

    /// The filter's value at `x`.
    pub fn eval(self, x: f32) -> f32 {
        let x = x.abs();
        match self {
            Filter::Box => {
                if x < 0.5 {
                    1.0
                } else if x == 0.5 {
                    0.5
                } else {
                    0.0
                }
            }
            Filter::Triangle => {
                if x < 1.0 {
                    1.0 - x
                } else {
                    0.0
                }
            }
            Filter::Gaussian => {
                let (radius, sigma) = (1.5f32, 0.5f32);
                if x >= radius {
                    return 0.0;
                }
                // Mixed float/double maths as in the reference: `-x*x` in f32, the rest f64.
                let s = sigma as f64;
                ((-x * x) as f64 / (2.0 * s * s)).exp() as f32
            }
            Filter::Lanczos(r) => {
                const PI: f32 = std::f32::consts::PI;
                let r = r as f32;
                if x > r {
                    return 0.0;
                }
                if x <= 1e-3 {
                    return 1.0;
                }
                r * (PI * x).sin() * (PI * x / r).sin() / (PI * PI * x * x)
            }
            Filter::KeysCubic => {
                if x >= 2.0 {
                    0.0
                } else if x >= 1.0 {
                    ((-0.5 * x + 2.5) * x - 4.0) * x + 2.0
                } else {
                    ((1.5 * x - 2.5) * x) * x + 1.0
                }
            }
            Filter::MitchellCubic => {
                if x >= 2.0 {
                    0.0
                } else if x >= 1.0 {
                    (((-7.0 / 18.0) * x + 2.0) * x - 10.0 / 3.0) * x + 16.0 / 9.0
                } else {
                    (((7.0 / 6.0) * x - 2.0) * x) * x + 8.0 / 9.0
                }
            }
        }
    }
}

/// Per-output weight spans for a separable filter along one axis.
#[derive(Debug, Clone)]
pub struct Spans {
    /// Taps per output (the widest span).
    pub size: usize,
    /// First source index per output.
    pub starts: Vec<usize>,
    /// `size` weights per output (zero-padded; all zero where the output samples outside
    /// the input or the weights sum to ~0).
    pub weights: Vec<f32>,
}

/// Spans mapping `out` outputs onto `input` samples: output `x` samples the input at
/// `(x + 0.5) / scale - translate / scale`; with `antialias` and downscaling the filter is
/// widened by `1 / scale`. Weights are normalised to sum to 1.
pub fn filter_spans(
    filter: Filter,
    out: usize,
    input: usize,
    scale: f32,
    translate: f32,
    antialias: bool,
) -> Spans {
    let inv_scale = (1.0f64 / scale as f64) as f32;
    let inv_translate = -inv_scale * translate;
    let kscale = if antialias { inv_scale.max(1.0) } else { 1.0 };
    let radius = filter.radius() * kscale;
    let size = ((2.0 * radius.ceil()) as i64)
        .saturating_add(1)
        .min(input as i64)
        .max(0) as usize;
    let one_over_kscale = 1.0 / kscale;
    let mut starts = vec![0usize; out];
    let mut weights = vec![0.0f32; size * out];
    let mut tmp = Vec::with_capacity(size);
    let last = input as i64 - 1;
    for x in 0..out {
        let sample = (x as f32 + 0.5) * inv_scale + inv_translate;
        if sample < 0.0 || sample > input as f32 || sample.is_nan() {
            continue;
        }
        let start = ((sample - radius - 0.5).ceil() as i64).clamp(0, last);
        let end = ((sample + radius - 0.5).floor() as i64).clamp(0, last) + 1;
        tmp.clear();
        let mut total = 0.0f32;
        for src in start..end {
            let pos = src as f32 + 0.5 - sample;
            let wgt = filter.eval((pos * one_over_kscale).abs());
            total += wgt;
            tmp.push(wgt);
        }
        // The span cannot outgrow `size` by construction; cut defensively, never overrun.
        tmp.truncate(size);
        if total.abs() >= 1000.0 * f32::MIN_POSITIVE {
            let inv = 1.0 / total;
            for (d, &wgt) in weights[x * size..].iter_mut().zip(&tmp) {
                *d = wgt * inv;
            }
        }
        starts[x] = start as usize;
    }
    Spans {
        size,
        starts,
        weights,
    }
}

/// Separable span resampling: rows first into a `[n, out.0, w, c]` intermediate, then
/// columns. `scratch` must hold `n * out.0 * w * c` floats.
pub fn resize_spans<T: Sample>(
    src: &[T],
    dims: [usize; 4],
    dst: &mut [f32],
    out: (usize, usize),
    rows: &Spans,
    cols: &Spans,
    scratch: &mut [f32],
) {
    check(src.len(), dims, dst.len(), out);
    let [_, h, w, c] = dims;
    let in_row = w * c;
    assert_eq!(
        scratch.len(),
        dims[0] * out.0 * in_row,
        "resize: scratch length"
    );
    for_rows(scratch, in_row, |r, row| {
        let (b, y) = (r / out.0, r % out.0);
        row.fill(0.0);
        let start = rows.starts[y];
        let n = (start + rows.size).min(h) - start;
        for (k, &wgt) in rows.weights[y * rows.size..][..n].iter().enumerate() {
            let s = &src[(b * h + start + k) * in_row..][..in_row];
            for (o, v) in row.iter_mut().zip(s) {
                *o += wgt * v.to_f32();
            }
        }
    });
    let scratch = &*scratch;
    for_rows(dst, out.1 * c, |r, row| {
        let s = &scratch[r * in_row..][..in_row];
        for (x, o) in row.chunks_exact_mut(c).enumerate() {
            o.fill(0.0);
            let start = cols.starts[x];
            let n = (start + cols.size).min(w) - start;
            for (k, &wgt) in cols.weights[x * cols.size..][..n].iter().enumerate() {
                let p = &s[(start + k) * c..][..c];
                for (o, &v) in o.iter_mut().zip(p) {
                    *o += wgt * v;
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bilinear_matches_naive_formula() {
        let dims = [2, 5, 7, 3];
        let src: Vec<u8> = (0..dims.iter().product::<usize>())
            .map(|i| (i * 37 % 251) as u8)
            .collect();
        let out = (8, 4);
        let scale = (5.0 / 8.0f32, 7.0 / 4.0f32);
        for half in [false, true] {
            let mut dst = vec![0.0; 2 * 8 * 4 * 3];
            resize_bilinear(&src, dims, &mut dst, out, scale, half);
            let ys = linear_taps(8, 5, scale.0, half);
            let xs = linear_taps(4, 7, scale.1, half);
            let at = |b: usize, y: usize, x: usize, ch: usize| {
                src[((b * 5 + y) * 7 + x) * 3 + ch] as f32
            };
            for b in 0..2 {
                for (y, ty) in ys.iter().enumerate() {
                    for (x, tx) in xs.iter().enumerate() {
                        for ch in 0..3 {
                            let tl = at(b, ty.lower, tx.lower, ch);
                            let tr = at(b, ty.lower, tx.upper, ch);
                            let bl = at(b, ty.upper, tx.lower, ch);
                            let br = at(b, ty.upper, tx.upper, ch);
                            let top = tl + (tr - tl) * tx.frac;
                            let bot = bl + (br - bl) * tx.frac;
                            let want = top + (bot - top) * ty.frac;
                            assert_eq!(dst[((b * 8 + y) * 4 + x) * 3 + ch], want);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn nearest_half_pixel_rounds_down_and_clamps() {
        assert_eq!(nearest_indices(4, 2, 0.5, true, false), vec![0, 0, 1, 1]);
        assert_eq!(nearest_indices(3, 6, 2.0, false, false), vec![0, 2, 4]);
        assert_eq!(nearest_indices(3, 5, 2.0, false, true), vec![0, 2, 4]);
    }

    #[test]
    fn spans_weights_sum_to_one() {
        for f in [
            Filter::Box,
            Filter::Gaussian,
            Filter::KeysCubic,
            Filter::Lanczos(3),
            Filter::Lanczos(5),
            Filter::MitchellCubic,
            Filter::Triangle,
        ] {
            for (out, input) in [(5, 17), (17, 5), (9, 9)] {
                let s = filter_spans(f, out, input, out as f32 / input as f32, 0.0, true);
                for x in 0..out {
                    let sum: f32 = s.weights[x * s.size..][..s.size].iter().sum();
                    assert!((sum - 1.0).abs() < 1e-5, "{f:?} {out} {input} {sum}");
                }
            }
        }
    }
}

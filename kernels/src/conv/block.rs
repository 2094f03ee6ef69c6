//! Fused inverted-residual blocks (MobileNetV2 / EfficientNet): `1×1 expand → depthwise
//! k×k → 1×1 project (+ residual)` computed in bands of output rows, so the expanded and the
//! depthwise tensors (6× the block's channels: 4.8 MB at 112×112×96) live only in a per-thread
//! scratch of about 1 MB instead of making three round trips through memory.
//!
//! For each band of depthwise output rows the kernel computes the expanded rows the window
//! needs (the rows shared with the previous band are moved to the front of the scratch, not
//! recomputed), runs the depthwise rows on them, then projects the band straight into the
//! output. Each of the three convolutions computes every output element with the same kernel
//! and summation order as when it runs alone (the packed GEMM's result for a row does not
//! depend on which other rows it computes with; the depthwise row kernel sees a window over
//! the band with the same taps), so the fused block is bit-identical to the three
//! convolutions run one after the other.

use super::{depthwise, depthwise_row_with, Window2d};
use crate::epilogue::Epilogue;
use crate::gemm::{gemm_packed_f32_with, PackedB};
use crate::simd::Isa;
use rayon::prelude::*;

/// A 1×1 convolution of the block: the packed `[cin, cout]` filter and its epilogue.
#[derive(Clone, Copy)]
pub struct Pointwise<'a> {
    /// The filter packed for the GEMM (`pack_conv_filter` of the `[cin, cout]` weights).
    pub filter: &'a PackedB,
    /// Applied to each output tile.
    pub ep: &'a Epilogue<'a>,
}

/// One inverted-residual block over an NHWC `f32` input.
#[derive(Clone, Copy)]
pub struct InvertedResidual<'a> {
    /// `1×1` expansion `[cin, hidden]`; `None` when the depthwise reads the input directly.
    pub expand: Option<Pointwise<'a>>,
    /// Depthwise filter `[kh, kw, hidden]` (multiplier 1).
    pub dw_filter: &'a [f32],
    /// Depthwise geometry over the expanded tensor `[n, h, w, hidden]`.
    pub dw_geom: Window2d,
    /// The depthwise convolution's epilogue.
    pub dw_ep: &'a Epilogue<'a>,
    /// `1×1` projection `[hidden, cout]`; `None` to output the depthwise result.
    pub project: Option<Pointwise<'a>>,
    /// Added to the projected output (same shape as `out`), after its epilogue.
    pub residual: Option<&'a [f32]>,
}

/// Scratch floats per thread the bands aim for (expanded + depthwise rows, ~1 MB).
const BAND_FLOATS: usize = 1 << 18;

thread_local! {
    /// Band scratch of the current thread, reused across bands and calls.
    static BAND_BUF: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl InvertedResidual<'_> {
    /// Channels of the input, the expanded tensor and the output.
    fn channels(&self) -> (usize, usize, usize) {
        let hidden = self.dw_geom.input[3];
        let cin = self.expand.map_or(hidden, |e| e.filter.k());
        let cout = self.project.map_or(hidden, |p| p.filter.n());
        (cin, hidden, cout)
    }

    /// Input rows `[lo, hi)` the depthwise output rows `[oy0, oy1)` read (clamped to the
    /// image).
    fn in_rows(&self, oy0: usize, oy1: usize) -> (usize, usize) {
        let g = &self.dw_geom;
        let h = g.input[1];
        let lo = (oy0 * g.strides.0).saturating_sub(g.pads.0).min(h);
        let last = (oy1 - 1) * g.strides.0 + (g.kernel.0 - 1) * g.dilations.0;
        let hi = (last + 1).saturating_sub(g.pads.0).min(h).max(lo);
        (lo, hi)
    }
}

/// Runs `blk` on `input` (`[n, h, w, cin]`) into `out` (`[n, oh, ow, cout]`), bit-identical
/// to the expand, depthwise and project convolutions (each with its epilogue) and the
/// residual `Add` run one after the other. Bands run in parallel over images and, for fewer
/// images than threads, over runs of rows of one image.
///
/// # Panics
///
/// If the lengths do not match the shapes, the filters' channels do not chain, or a stride
/// or dilation is 0.
pub fn inverted_residual_f32(isa: Isa, blk: &InvertedResidual<'_>, input: &[f32], out: &mut [f32]) {
    inverted_residual_banded(isa, blk, input, BAND_FLOATS, out)
}

/// [`inverted_residual_f32`] with bands sized for `band_floats` of scratch.
fn inverted_residual_banded(
    isa: Isa,
    blk: &InvertedResidual<'_>,
    input: &[f32],
    band_floats: usize,
    out: &mut [f32],
) {
    let g = &blk.dw_geom;
    g.validate("inverted_residual");
    let [n, h, w, hidden] = g.input;
    let (kh, kw) = g.kernel;
    let (oh, ow) = g.output;
    let (cin, _, cout) = blk.channels();
    assert_eq!(
        input.len(),
        n * h * w * cin,
        "inverted_residual: input length"
    );
    assert_eq!(
        blk.dw_filter.len(),
        kh * kw * hidden,
        "inverted_residual: depthwise filter length"
    );
    if let Some(p) = blk.project {
        assert_eq!(p.filter.k(), hidden, "inverted_residual: project depth");
        p.ep.validate(cout);
    }
    if let Some(e) = blk.expand {
        assert_eq!(e.filter.n(), hidden, "inverted_residual: expand depth");
        e.ep.validate(hidden);
    }
    blk.dw_ep.validate(hidden);
    assert_eq!(
        out.len(),
        n * oh * ow * cout,
        "inverted_residual: output length"
    );
    if let Some(r) = blk.residual {
        assert_eq!(r.len(), out.len(), "inverted_residual: residual length");
    }
    if out.is_empty() {
        return;
    }
    // Rows per band: the expanded rows of the window plus the depthwise rows fit the scratch.
    let (sh, eff_kh) = (g.strides.0, (kh - 1) * g.dilations.0 + 1);
    let per_out_row = (sh * w + ow) * hidden;
    let halo = eff_kh.saturating_sub(sh) * w * hidden;
    let band = (band_floats.saturating_sub(halo) / per_out_row.max(1)).clamp(1, oh);
    // Runs of rows per image: enough tasks for every thread.
    let threads = rayon::current_num_threads().max(1);
    let runs = if n >= threads {
        1
    } else {
        threads.div_ceil(n).min(oh)
    };
    let run_rows = oh.div_ceil(runs);
    let tasks = n * oh.div_ceil(run_rows);
    let per_image = oh.div_ceil(run_rows);
    let task = |t: usize, oslice: &mut [f32]| {
        let (b, r) = (t / per_image, t % per_image);
        let oy0 = r * run_rows;
        let oy1 = (oy0 + run_rows).min(oh);
        BAND_BUF.with(|buf| {
            let mut own = Vec::new();
            let mut held = buf.try_borrow_mut().ok();
            let buf = held.as_deref_mut().unwrap_or(&mut own);
            run(isa, blk, input, b, (oy0, oy1), band, buf, oslice);
        });
    };
    let chunk = run_rows * ow * cout;
    if tasks > 1 && threads > 1 {
        // Runs never straddle images: `run_rows` divides each image's rows into whole runs
        // except the last, so chunk per image then per run.
        out.par_chunks_mut(oh * ow * cout)
            .enumerate()
            .flat_map(|(b, img)| {
                img.par_chunks_mut(chunk)
                    .enumerate()
                    .map(move |(r, o)| (b * per_image + r, o))
            })
            .for_each(|(t, o)| task(t, o));
    } else {
        for (b, img) in out.chunks_mut(oh * ow * cout).enumerate() {
            for (r, o) in img.chunks_mut(chunk).enumerate() {
                task(b * per_image + r, o);
            }
        }
    }
}

/// Output rows `[oy0, oy1)` of image `b`, `band` rows at a time, into `out` (those rows).
#[allow(clippy::too_many_arguments)]
fn run(
    isa: Isa,
    blk: &InvertedResidual<'_>,
    input: &[f32],
    b: usize,
    (oy0, oy1): (usize, usize),
    band: usize,
    buf: &mut Vec<f32>,
    out: &mut [f32],
) {
    let g = &blk.dw_geom;
    let [_, h, w, hidden] = g.input;
    let ow = g.output.1;
    let (cin, _, cout) = blk.channels();
    let (lo, hi) = blk.in_rows(oy0, (oy0 + band).min(oy1));
    let max_in = {
        // The widest input window of any band of this run.
        let mut m = hi - lo;
        let mut y = oy0;
        while y < oy1 {
            let (a, z) = blk.in_rows(y, (y + band).min(oy1));
            m = m.max(z - a);
            y += band;
        }
        m
    };
    let e_len = if blk.expand.is_some() {
        max_in * w * hidden
    } else {
        0
    };
    let d_len = if blk.project.is_some() {
        band * ow * hidden
    } else {
        0
    };
    if buf.len() < e_len + d_len {
        buf.resize(e_len + d_len, 0.0);
    }
    let (ebuf, rest) = buf.split_at_mut(e_len);
    let dbuf = &mut rest[..d_len];
    let image = &input[b * h * w * cin..(b + 1) * h * w * cin];
    // Expanded rows held in `ebuf`: `[have.0, have.1)`.
    let mut have = (0usize, 0usize);
    let row_len = w * hidden;
    let mut y = oy0;
    while y < oy1 {
        let y1 = (y + band).min(oy1);
        let (lo, hi) = blk.in_rows(y, y1);
        // The depthwise input of this band: rows `[lo, hi)` of the expanded tensor.
        let src: &[f32] = match blk.expand {
            None => &image[lo * row_len..hi * row_len],
            Some(e) => {
                let keep = if have.0 <= lo && lo < have.1 {
                    let k = have.1.min(hi) - lo;
                    let from = (lo - have.0) * row_len;
                    ebuf.copy_within(from..from + k * row_len, 0);
                    k
                } else {
                    0
                };
                let (new0, new1) = (lo + keep, hi);
                if new1 > new0 {
                    let a = &image[new0 * w * cin..new1 * w * cin];
                    let c = &mut ebuf[keep * row_len..(hi - lo) * row_len];
                    gemm_packed_f32_with(
                        false,
                        (new1 - new0) * w,
                        a,
                        (cin, 1),
                        e.filter,
                        c,
                        hidden,
                        e.ep,
                    );
                }
                have = (lo, hi);
                &ebuf[..(hi - lo) * row_len]
            }
        };
        // The window over the band: rows above `lo` are padding exactly when they are in the
        // whole image.
        let sub = Window2d {
            input: [1, hi - lo, w, hidden],
            pads: ((g.pads.0 + lo).saturating_sub(y * g.strides.0), g.pads.1),
            output: (y1 - y, ow),
            ..*g
        };
        let rows = y1 - y;
        let orows = &mut out[(y - oy0) * ow * cout..(y1 - oy0) * ow * cout];
        let dst: &mut [f32] = if blk.project.is_some() {
            &mut dbuf[..rows * ow * hidden]
        } else {
            &mut *orows
        };
        for (r, drow) in dst.chunks_exact_mut(ow * hidden).enumerate() {
            if !depthwise::row_mult1(isa, src, blk.dw_filter, &sub, blk.dw_ep, 0, r, drow) {
                depthwise_row_with(isa, src, blk.dw_filter, 1, &sub, 0, r, drow);
                crate::epilogue::apply_rows_with(isa, blk.dw_ep, drow, hidden);
            }
        }
        if let Some(p) = blk.project {
            let d = &dbuf[..rows * ow * hidden];
            gemm_packed_f32_with(
                false,
                rows * ow,
                d,
                (hidden, 1),
                p.filter,
                orows,
                cout,
                p.ep,
            );
        }
        if let Some(res) = blk.residual {
            let at = ((b * g.output.0 + y) * ow) * cout;
            crate::elementwise::add_assign_f32_with(isa, orows, &res[at..at + orows.len()]);
        }
        y = y1;
    }
}

/// A 1×1 convolution whose input is first scaled per image and channel: the project
/// convolution of an EfficientNet block reading `x · s`, `s` the squeeze-and-excitation
/// gate (`[n, 1, 1, cin]` broadcast over the pixels).
#[derive(Clone, Copy)]
pub struct ScaledPointwise<'a> {
    /// The `[cin, cout]` convolution and its epilogue.
    pub conv: Pointwise<'a>,
    /// Per-image channel scales, `n · cin` values (or `cin` shared by every image).
    pub scale: &'a [f32],
    /// Pixels per image (`h · w`).
    pub pixels: usize,
    /// Added to the output (same shape), after the epilogue.
    pub residual: Option<&'a [f32]>,
}

crate::simd::multiversion! {
    /// `out[r·c + j] = x[r·c + j] · s[j]` for rows of `c = s.len()` values.
    fn scale_rows / scale_rows_with(x: &[f32], s: &[f32], out: &mut [f32]) {
        for (orow, xrow) in out.chunks_exact_mut(s.len()).zip(x.chunks_exact(s.len())) {
            for ((o, &x), &s) in orow.iter_mut().zip(xrow).zip(s) {
                *o = x * s;
            }
        }
    }
}

/// Scratch floats a band of scaled input rows aims for (~256 KB, L2-resident).
const SCALE_FLOATS: usize = 1 << 16;

thread_local! {
    /// Scaled-row scratch of the current thread, reused across bands and calls.
    static SCALE_BUF: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `sp` on `input` (`[n · pixels, cin]`) into `out` (`[n · pixels, cout]`): bit-identical
/// to `Mul(input, scale)` (broadcast) followed by the convolution with its epilogue and the
/// residual add, without writing the scaled tensor back to memory: bands of rows are scaled
/// into a per-thread scratch that the GEMM then reads from cache (a GEMM row's result does not
/// depend on the other rows it is computed with). Bands run in parallel when there are enough
/// of them, otherwise one after the other with the GEMM split across threads.
///
/// # Panics
///
/// If the lengths do not match, or `pixels` is 0 with a non-empty input.
pub fn scaled_pointwise_f32(isa: Isa, sp: &ScaledPointwise<'_>, input: &[f32], out: &mut [f32]) {
    scaled_pointwise_banded(isa, sp, input, SCALE_FLOATS, out)
}

fn scaled_pointwise_banded(
    isa: Isa,
    sp: &ScaledPointwise<'_>,
    input: &[f32],
    band_floats: usize,
    out: &mut [f32],
) {
    let (cin, cout) = (sp.conv.filter.k(), sp.conv.filter.n());
    sp.conv.ep.validate(cout);
    assert!(cin > 0, "scaled_pointwise: no input channels");
    assert_eq!(input.len() % cin, 0, "scaled_pointwise: input length");
    let rows = input.len() / cin;
    assert_eq!(out.len(), rows * cout, "scaled_pointwise: output length");
    if let Some(r) = sp.residual {
        assert_eq!(r.len(), out.len(), "scaled_pointwise: residual length");
    }
    if rows == 0 {
        return;
    }
    assert!(
        sp.pixels > 0 && rows.is_multiple_of(sp.pixels),
        "scaled_pointwise: pixels"
    );
    let n = rows / sp.pixels;
    assert!(
        sp.scale.len() == cin || sp.scale.len() == n * cin,
        "scaled_pointwise: scale length"
    );
    // A band holds at least as many activations as the filter has weights, so the filter
    // streamed once per band costs no more than the band itself.
    let floats = band_floats.max(cin * cout);
    let band = (floats / cin).div_ceil(12).max(1) * 12;
    let band = band.min(rows);
    let bands = rows.div_ceil(band);
    let threads = rayon::current_num_threads().max(1);
    let task = |i: usize, orows: &mut [f32], parallel: bool| {
        let (r0, r1) = (i * band, (i * band + band).min(rows));
        SCALE_BUF.with(|buf| {
            let mut own = Vec::new();
            let mut held = buf.try_borrow_mut().ok();
            let buf = held.as_deref_mut().unwrap_or(&mut own);
            if buf.len() < (r1 - r0) * cin {
                buf.resize((r1 - r0) * cin, 0.0);
            }
            let a = &mut buf[..(r1 - r0) * cin];
            // Runs of rows of one image share a scale vector.
            let mut r = r0;
            while r < r1 {
                let img = r / sp.pixels;
                let end = ((img + 1) * sp.pixels).min(r1);
                let s = if sp.scale.len() == cin {
                    sp.scale
                } else {
                    &sp.scale[img * cin..(img + 1) * cin]
                };
                scale_rows_with(
                    isa,
                    &input[r * cin..end * cin],
                    s,
                    &mut a[(r - r0) * cin..(end - r0) * cin],
                );
                r = end;
            }
            gemm_packed_f32_with(
                parallel,
                r1 - r0,
                a,
                (cin, 1),
                sp.conv.filter,
                orows,
                cout,
                sp.conv.ep,
            );
        });
        if let Some(res) = sp.residual {
            crate::elementwise::add_assign_f32_with(isa, orows, &res[r0 * cout..r1 * cout]);
        }
    };
    if threads > 1 && bands >= 2 * threads {
        out.par_chunks_mut(band * cout)
            .enumerate()
            .for_each(|(i, o)| task(i, o, false));
    } else {
        for (i, o) in out.chunks_mut(band * cout).enumerate() {
            task(i, o, true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv::{conv2d_nhwc_f32_packed, depthwise_conv2d_nhwc_f32_ep};
    use crate::epilogue::{Activation, ChannelOp};
    use crate::testutil::Rng;

    /// The three convolutions and the residual add one after the other.
    fn unfused(isa: Isa, blk: &InvertedResidual<'_>, input: &[f32], n_out: usize) -> Vec<f32> {
        let g = &blk.dw_geom;
        let [n, h, w, hidden] = g.input;
        let (cin, _, cout) = blk.channels();
        let e = match blk.expand {
            None => input.to_vec(),
            Some(e) => {
                let mut o = vec![0.0; n * h * w * hidden];
                let eg = Window2d {
                    input: [n, h, w, cin],
                    kernel: (1, 1),
                    strides: (1, 1),
                    dilations: (1, 1),
                    pads: (0, 0),
                    output: (h, w),
                };
                let zeros = vec![0.0; cin * hidden];
                conv2d_nhwc_f32_packed(input, &zeros, Some(e.filter), hidden, &eg, e.ep, &mut o);
                o
            }
        };
        let (oh, ow) = g.output;
        let mut d = vec![0.0; n * oh * ow * hidden];
        depthwise_conv2d_nhwc_f32_ep(isa, &e, blk.dw_filter, 1, g, blk.dw_ep, &mut d);
        let mut out = match blk.project {
            None => d,
            Some(p) => {
                let mut o = vec![0.0; n_out];
                let pg = Window2d {
                    input: [n, oh, ow, hidden],
                    kernel: (1, 1),
                    strides: (1, 1),
                    dilations: (1, 1),
                    pads: (0, 0),
                    output: (oh, ow),
                };
                let zeros = vec![0.0; hidden * cout];
                conv2d_nhwc_f32_packed(&d, &zeros, Some(p.filter), cout, &pg, p.ep, &mut o);
                o
            }
        };
        if let Some(r) = blk.residual {
            for (o, &v) in out.iter_mut().zip(r) {
                *o += v;
            }
        }
        out
    }

    #[test]
    fn fused_block_is_bit_identical_to_separate_convolutions() {
        let mut rng = Rng::new(5);
        // (n, h, w, cin, hidden, cout, k, stride, expand, project, residual)
        let cases = [
            (1, 17, 13, 8, 48, 8, 3, 1, true, true, true),
            (2, 16, 16, 16, 96, 24, 3, 2, true, true, false),
            (1, 9, 11, 24, 144, 24, 5, 1, true, true, true),
            (3, 15, 14, 40, 240, 80, 5, 2, true, true, false),
            (1, 23, 21, 32, 32, 16, 3, 1, false, true, false),
            (2, 12, 10, 16, 96, 96, 3, 2, true, false, false),
            (1, 7, 7, 20, 120, 20, 5, 1, true, true, true),
            (1, 64, 40, 16, 96, 16, 3, 1, true, true, true),
        ];
        for &(n, h, w, cin, hidden, cout, k, s, ex, pr, res) in &cases {
            let pad = (k - 1) / 2;
            let (oh, ow) = ((h + 2 * pad - k) / s + 1, (w + 2 * pad - k) / s + 1);
            let cin = if ex { cin } else { hidden };
            let cout = if pr { cout } else { hidden };
            let input = rng.vec_f32(n * h * w * cin);
            let fe = rng.vec_f32(cin * hidden);
            let fd = rng.vec_f32(k * k * hidden);
            let fp = rng.vec_f32(hidden * cout);
            let (be, bd, bp) = (rng.vec_f32(hidden), rng.vec_f32(hidden), rng.vec_f32(cout));
            let (se, sd) = (rng.vec_f32(hidden), rng.vec_f32(hidden));
            let residual = rng.vec_f32(n * oh * ow * cout);
            let ops_e = [ChannelOp::Mul(&se), ChannelOp::Add(&be)];
            let ops_d = [ChannelOp::Mul(&sd), ChannelOp::Add(&bd)];
            let ops_p = [ChannelOp::Add(&bp)];
            for isa in Isa::available() {
                for act in [Activation::Relu6, Activation::Swish] {
                    let pe = PackedB::new_with(isa, cin, hidden, &fe, (hidden, 1));
                    let pp = PackedB::new_with(isa, hidden, cout, &fp, (cout, 1));
                    let (ee, ed) = (Epilogue { ops: &ops_e, act }, Epilogue { ops: &ops_d, act });
                    let ep = Epilogue {
                        ops: &ops_p,
                        act: Activation::None,
                    };
                    let blk = InvertedResidual {
                        expand: ex.then_some(Pointwise {
                            filter: &pe,
                            ep: &ee,
                        }),
                        dw_filter: &fd,
                        dw_geom: Window2d {
                            input: [n, h, w, hidden],
                            kernel: (k, k),
                            strides: (s, s),
                            dilations: (1, 1),
                            pads: (pad, pad),
                            output: (oh, ow),
                        },
                        dw_ep: &ed,
                        project: pr.then_some(Pointwise {
                            filter: &pp,
                            ep: &ep,
                        }),
                        residual: (res && pr).then_some(&residual[..]),
                    };
                    let want = unfused(isa, &blk, &input, n * oh * ow * cout);
                    for threads in [1, 2, 3] {
                        let pool = rayon::ThreadPoolBuilder::new()
                            .num_threads(threads)
                            .build()
                            .unwrap();
                        // Default bands, one row per band, a few rows per band.
                        for floats in [BAND_FLOATS, 1, 3 * (w + ow) * hidden] {
                            let mut got = vec![f32::NAN; n * oh * ow * cout];
                            pool.install(|| {
                                inverted_residual_banded(isa, &blk, &input, floats, &mut got)
                            });
                            assert!(
                                got == want,
                                "n{n} {h}x{w}x{cin}->{hidden}->{cout} k{k} s{s} {isa:?} {act:?} \
                                 t{threads} band floats {floats}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn scaled_pointwise_is_bit_identical_to_mul_then_convolution() {
        let mut rng = Rng::new(9);
        // (n, pixels, cin, cout, shared scale, residual)
        let cases = [
            (1, 49, 96, 24, false, true),
            (3, 50, 40, 16, false, false),
            (2, 196, 64, 112, true, true),
            (4, 9, 8, 5, false, true),
        ];
        for &(n, pixels, cin, cout, shared, res) in &cases {
            let input = rng.vec_f32(n * pixels * cin);
            let scale = rng.vec_f32(if shared { cin } else { n * cin });
            let f = rng.vec_f32(cin * cout);
            let bias = rng.vec_f32(cout);
            let residual = rng.vec_f32(n * pixels * cout);
            let ops = [ChannelOp::Add(&bias)];
            for isa in Isa::available() {
                let pf = PackedB::new_with(isa, cin, cout, &f, (cout, 1));
                let ep = Epilogue {
                    ops: &ops,
                    act: Activation::Swish,
                };
                let scaled: Vec<f32> = input
                    .chunks_exact(cin)
                    .enumerate()
                    .flat_map(|(r, row)| {
                        let img = if shared { 0 } else { r / pixels };
                        let s = &scale[img * cin..(img + 1) * cin];
                        row.iter().zip(s).map(|(x, s)| x * s).collect::<Vec<_>>()
                    })
                    .collect();
                let mut want = vec![0.0; n * pixels * cout];
                let g = Window2d {
                    input: [n, pixels, 1, cin],
                    kernel: (1, 1),
                    strides: (1, 1),
                    dilations: (1, 1),
                    pads: (0, 0),
                    output: (pixels, 1),
                };
                let zeros = vec![0.0; cin * cout];
                conv2d_nhwc_f32_packed(&scaled, &zeros, Some(&pf), cout, &g, &ep, &mut want);
                if res {
                    for (o, &v) in want.iter_mut().zip(&residual) {
                        *o += v;
                    }
                }
                let sp = ScaledPointwise {
                    conv: Pointwise {
                        filter: &pf,
                        ep: &ep,
                    },
                    scale: &scale,
                    pixels,
                    residual: res.then_some(&residual[..]),
                };
                for threads in [1, 2, 3] {
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(threads)
                        .build()
                        .unwrap();
                    for floats in [SCALE_FLOATS, 1, 13 * cin] {
                        let mut got = vec![f32::NAN; n * pixels * cout];
                        pool.install(|| {
                            scaled_pointwise_banded(isa, &sp, &input, floats, &mut got)
                        });
                        assert!(
                            got == want,
                            "n{n} p{pixels} {cin}->{cout} {isa:?} t{threads} floats {floats}"
                        );
                    }
                }
            }
        }
    }
}

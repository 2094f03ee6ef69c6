//! Crops of normalised boxes resampled to a fixed size (bilinear or nearest), and the
//! col2im scatter that turns a GEMM into a transposed convolution.

use super::Sample;

/// How a crop samples its box.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CropMethod {
    /// Bilinear between the four neighbours.
    Bilinear,
    /// The nearest pixel (`round`, halves away from zero).
    Nearest,
}

/// One box crop: `boxes` is `[y1, x1, y2, x2]` in normalised coordinates of `image`
/// (`[h, w, c]`); writes `[ch, cw, c]` into `dst`. Samples outside the image get `extrap`.
#[allow(clippy::too_many_arguments)]
pub fn crop_box<T: Sample>(
    image: &[T],
    hwc: [usize; 3],
    boxes: [f32; 4],
    crop: (usize, usize),
    method: CropMethod,
    extrap: f32,
    dst: &mut [f32],
) {
    let [h, w, c] = hwc;
    assert_eq!(image.len(), h * w * c, "crop_box: image length");
    assert_eq!(dst.len(), crop.0 * crop.1 * c, "crop_box: dst length");
    let [y1, x1, y2, x2] = boxes;
    let (ih, iw) = ((h - 1) as f32, (w - 1) as f32);
    let hs = if crop.0 > 1 {
        (y2 - y1) * ih / (crop.0 - 1) as f32
    } else {
        0.0
    };
    let ws = if crop.1 > 1 {
        (x2 - x1) * iw / (crop.1 - 1) as f32
    } else {
        0.0
    };
    // A one-pixel crop samples the box centre, computed in double as the reference does.
    let pos = |lo: f32, hi: f32, i: usize, n: usize, scale: f32, extent: f32| -> f32 {
        if n > 1 {
            lo * extent + i as f32 * scale
        } else {
            (0.5 * f64::from(lo + hi) * f64::from(extent)) as f32
        }
    };
    let px = |y: usize, x: usize, d: usize| image[(y * w + x) * c + d].to_f32();
    for y in 0..crop.0 {
        let row = &mut dst[y * crop.1 * c..][..crop.1 * c];
        let in_y = pos(y1, y2, y, crop.0, hs, ih);
        if !(0.0..=ih).contains(&in_y) {
            row.fill(extrap);
            continue;
        }
        for x in 0..crop.1 {
            let out = &mut row[x * c..][..c];
            let in_x = pos(x1, x2, x, crop.1, ws, iw);
            if !(0.0..=iw).contains(&in_x) {
                out.fill(extrap);
                continue;
            }
            match method {
                CropMethod::Bilinear => {
                    let (ty, by) = (in_y.floor() as usize, in_y.ceil() as usize);
                    let yl = in_y - ty as f32;
                    let (lx, rx) = (in_x.floor() as usize, in_x.ceil() as usize);
                    let xl = in_x - lx as f32;
                    for (d, o) in out.iter_mut().enumerate() {
                        let (tl, tr) = (px(ty, lx, d), px(ty, rx, d));
                        let (bl, br) = (px(by, lx, d), px(by, rx, d));
                        let top = tl + (tr - tl) * xl;
                        let bottom = bl + (br - bl) * xl;
                        *o = top + (bottom - top) * yl;
                    }
                }
                CropMethod::Nearest => {
                    let (cy, cx) = (in_y.round() as usize, in_x.round() as usize);
                    for (d, o) in out.iter_mut().enumerate() {
                        *o = px(cy, cx, d);
                    }
                }
            }
        }
    }
}

/// Geometry of a transposed convolution (the input-gradient of a forward convolution with
/// input `[n, h, w, cin]`, kernel `[kh, kw, cin, cout]`, output `[n, oh, ow, cout]`).
#[derive(Debug, Clone, Copy)]
pub struct Deconv {
    /// Forward input `[n, h, w, cin]` (this op's output).
    pub input: [usize; 4],
    /// Kernel `(kh, kw)`.
    pub kernel: (usize, usize),
    /// Forward output `(oh, ow)` and channels `cout`.
    pub output: (usize, usize, usize),
    /// Strides.
    pub strides: (usize, usize),
    /// Dilations.
    pub dilations: (usize, usize),
    /// Forward padding before the first row / column.
    pub pads: (usize, usize),
}

/// Scatters `cols` (`[n*oh*ow, kh*kw*cin]`, one row per forward output pixel) into `dst`
/// (`[n, h, w, cin]`, zeroed here): `dst[iy, ix] += cols[oy, ox, ky, kx]` for every tap
/// that lands inside the input.
pub fn col2im(g: &Deconv, cols: &[f32], dst: &mut [f32]) {
    let [n, h, w, cin] = g.input;
    let (kh, kw) = g.kernel;
    let (oh, ow, _) = g.output;
    let taps = kh * kw * cin;
    assert_eq!(cols.len(), n * oh * ow * taps, "col2im: cols length");
    assert_eq!(dst.len(), n * h * w * cin, "col2im: dst length");
    dst.fill(0.0);
    for b in 0..n {
        for oy in 0..oh {
            for ox in 0..ow {
                let col = &cols[((b * oh + oy) * ow + ox) * taps..][..taps];
                for ky in 0..kh {
                    let Some(iy) = (oy * g.strides.0 + ky * g.dilations.0).checked_sub(g.pads.0)
                    else {
                        continue;
                    };
                    if iy >= h {
                        continue;
                    }
                    for kx in 0..kw {
                        let Some(ix) =
                            (ox * g.strides.1 + kx * g.dilations.1).checked_sub(g.pads.1)
                        else {
                            continue;
                        };
                        if ix >= w {
                            continue;
                        }
                        let src = &col[(ky * kw + kx) * cin..][..cin];
                        let d = &mut dst[((b * h + iy) * w + ix) * cin..][..cin];
                        for (d, s) in d.iter_mut().zip(src) {
                            *d += s;
                        }
                    }
                }
            }
        }
    }
}

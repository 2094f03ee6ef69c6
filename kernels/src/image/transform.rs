//! Projective image transforms (`ImageProjectiveTransformV2/V3`, what Keras' RandomRotation,
//! RandomZoom, RandomTranslation and RandomShear compile to): each output pixel `(x, y)`
//! reads the input at `((a0 x + a1 y + a2) / k, (b0 x + b1 y + b2) / k)` with
//! `k = c0 x + c1 y + 1`, after mapping out-of-range coordinates by the fill mode (scipy's
//! rules, as TF's `MapCoordinate`), with nearest or bilinear interpolation in `f32`.
//!
//! The float operations follow TF's generator (`image_ops.h`) in order, so results are
//! bit-identical for float inputs.

use super::Sample;

/// How coordinates outside the input are mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FillMode {
    /// `dcba|abcd|dcba`.
    Reflect,
    /// `abcd|abcd|abcd` (TF divides by `len - 1` when counting periods; copied).
    Wrap,
    /// Outside is the fill value.
    Constant,
    /// Clamp to the edge.
    Nearest,
}

/// Sampling of the mapped coordinate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interpolation {
    /// `round` half away from zero.
    Nearest,
    /// Bilinear over the four neighbours (missing ones read the fill value).
    Bilinear,
}

/// `std::max` then `std::min` as Eigen's `scalar_clamp_op` (NaN passes through).
fn clamp(v: f32, hi: f32) -> f32 {
    let v = if v < 0.0 { 0.0 } else { v };
    if hi < v {
        hi
    } else {
        v
    }
}

/// TF's `MapCoordinate<mode>`.
fn map_coord(mode: FillMode, c: f32, len: i64) -> f32 {
    let hi = (len - 1) as f32;
    match mode {
        FillMode::Constant => c,
        FillMode::Nearest => clamp(c, hi),
        FillMode::Reflect => {
            let mut v = c;
            if v < 0.0 {
                if len <= 1 {
                    v = 0.0;
                } else {
                    let sz2 = 2 * len;
                    if v < sz2 as f32 {
                        v += (sz2 * ((-v / sz2 as f32) as i64)) as f32;
                    }
                    v = if v < -len as f32 {
                        v + sz2 as f32
                    } else {
                        -v - 1.0
                    };
                }
            } else if v > hi {
                if len <= 1 {
                    v = 0.0;
                } else {
                    let sz2 = 2 * len;
                    v -= (sz2 * ((v / sz2 as f32) as i64)) as f32;
                    if v >= len as f32 {
                        v = sz2 as f32 - v - 1.0;
                    }
                }
            }
            clamp(v, hi)
        }
        FillMode::Wrap => {
            let mut v = c;
            if v < 0.0 {
                if len <= 1 {
                    v = 0.0;
                } else {
                    let sz = len - 1;
                    v += (len * ((-v / sz as f32) as i64 + 1)) as f32;
                }
            } else if v > hi {
                if len <= 1 {
                    v = 0.0;
                } else {
                    let sz = len - 1;
                    v -= (len * ((v / sz as f32) as i64)) as f32;
                }
            }
            clamp(v, hi)
        }
    }
}

/// The mapped input coordinate `(x, y)` of output pixel `(ox, oy)`, or `None` where TF
/// writes the fill value (projection 0).
pub fn source(
    t: &[f32; 8],
    ox: usize,
    oy: usize,
    in_h: usize,
    in_w: usize,
    mode: FillMode,
) -> Option<(f32, f32)> {
    let (ox, oy) = (ox as i64 as f32, oy as i64 as f32);
    let projection = t[6] * ox + t[7] * oy + 1.0;
    if projection == 0.0 {
        return None;
    }
    let ix = (t[0] * ox + t[1] * oy + t[2]) / projection;
    let iy = (t[3] * ox + t[4] * oy + t[5]) / projection;
    // TF 2.21 has no bounds check here any more: in constant mode a coordinate just
    // outside still interpolates with the fill value standing in for missing neighbours
    // (nearest rounds, then reads the fill value if the pixel is outside).
    Some((
        map_coord(mode, ix, in_w as i64),
        map_coord(mode, iy, in_h as i64),
    ))
}

/// The input pixel `(row, col)` nearest interpolation reads for a mapped coordinate, or
/// `None` if it falls outside (the fill value).
pub fn nearest(x: f32, y: f32, in_h: usize, in_w: usize) -> Option<(usize, usize)> {
    let (r, c) = (y.round(), x.round());
    if r >= 0.0 && c >= 0.0 && (r as usize) < in_h && (c as usize) < in_w {
        Some((r as usize, c as usize))
    } else {
        None
    }
}

/// Bilinear sample of channel `ch` of one `[h, w, c]` image at mapped `(x, y)`; neighbours
/// outside the image read `fill` (TF's `read_with_fill_value`).
pub fn bilinear<S: Sample>(
    img: &[S],
    [h, w, c]: [usize; 3],
    x: f32,
    y: f32,
    ch: usize,
    fill: f32,
) -> f32 {
    let read = |r: f32, col: f32| -> f32 {
        let (r, col) = (r as i64, col as i64);
        if r >= 0 && (r as usize) < h && col >= 0 && (col as usize) < w {
            img[(r as usize * w + col as usize) * c + ch].to_f32()
        } else {
            fill
        }
    };
    let (y_floor, x_floor) = (y.floor(), x.floor());
    let (y_ceil, x_ceil) = (y_floor + 1.0, x_floor + 1.0);
    let v_yfloor = (x_ceil - x) * read(y_floor, x_floor) + (x - x_floor) * read(y_floor, x_ceil);
    let v_yceil = (x_ceil - x) * read(y_ceil, x_floor) + (x - x_floor) * read(y_ceil, x_ceil);
    (y_ceil - y) * v_yfloor + (y - y_floor) * v_yceil
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_maps_each_pixel_to_itself() {
        let t = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0];
        assert_eq!(source(&t, 2, 1, 3, 4, FillMode::Constant), Some((2.0, 1.0)));
        assert_eq!(source(&t, 4, 1, 3, 4, FillMode::Constant), Some((4.0, 1.0)));
        assert_eq!(nearest(4.0, 1.0, 3, 4), None);
        // Reflect: x = 4 on a 4-wide row reads column 3; x = -1 reads column 0.
        assert_eq!(map_coord(FillMode::Reflect, 4.0, 4), 3.0);
        assert_eq!(map_coord(FillMode::Reflect, -1.0, 4), 0.0);
        assert_eq!(map_coord(FillMode::Wrap, -1.0, 4), 3.0);
        assert_eq!(map_coord(FillMode::Nearest, 9.0, 4), 3.0);
    }
}

//! Per-pixel colour maths on `f32` RGB triples: HSV conversions and hue / saturation
//! adjustment, each following one reference formulation operation by operation (there are
//! three different RGB/HSV codes in use and they round differently, so each is kept).

/// RGB → HSV as a tensor-wide select chain: `v = max`, `s = range / v` (0 when `v <= 0`),
/// hue from whichever channel equals `v` first (R, then G), scaled to `[0, 1)`.
pub fn rgb_to_hsv(r: f32, g: f32, b: f32) -> [f32; 3] {
    let v = r.max(g).max(b);
    let range = v - r.min(g).min(b);
    let s = if v > 0.0 { range / v } else { 0.0 };
    let norm = (1.0 / range) * (1.0 / 6.0);
    let mut h = if r == v {
        norm * (g - b)
    } else if g == v {
        norm * (b - r) + 2.0 / 6.0
    } else {
        norm * (r - g) + 4.0 / 6.0
    };
    // `range > 0` is false for NaN too.
    if range.is_nan() || range <= 0.0 {
        h = 0.0;
    }
    if h < 0.0 {
        h += 1.0;
    }
    [h, s, v]
}

/// HSV → RGB with clamped piecewise-linear channel ramps.
pub fn hsv_to_rgb(h: f32, s: f32, v: f32) -> [f32; 3] {
    let dh = h * 6.0;
    let clamp = |x: f32| x.clamp(0.0, 1.0);
    let dr = clamp((dh - 3.0).abs() - 1.0);
    let dg = clamp(-(dh - 2.0).abs() + 2.0);
    let db = clamp(-(dh - 4.0).abs() + 2.0);
    let one_s = -s + 1.0;
    [
        (one_s + s * dr) * v,
        (one_s + s * dg) * v,
        (one_s + s * db) * v,
    ]
}

/// Brings `x` near `[0, period)` with `rem_euclid` when it is far outside, so the reference's
/// add/subtract-one-period loops that follow stay short (and end at all for huge inputs);
/// non-finite values become NaN, which those loops pass through.
fn wrap_start(x: f32, period: f32) -> f32 {
    if !x.is_finite() {
        f32::NAN
    } else if x.abs() > 64.0 * period {
        x.rem_euclid(period)
    } else {
        x
    }
}

/// Scales saturation by `scale` (clamped to `[0, 1]`) through the sector-based HSV code.
pub fn adjust_saturation(rgb: [f32; 3], scale: f32) -> [f32; 3] {
    let [r, g, b] = rgb;
    let vv = r.max(g.max(b));
    let range = vv - r.min(g.min(b));
    let s = if vv > 0.0 { range / vv } else { 0.0 };
    let norm = 1.0 / (6.0 * range);
    let mut h = if r == vv {
        norm * (g - b)
    } else if g == vv {
        norm * (b - r) + (2.0f64 / 6.0) as f32
    } else {
        norm * (r - g) + (4.0f64 / 6.0) as f32
    };
    if range <= 0.0 {
        h = 0.0;
    }
    if h < 0.0 {
        h += 1.0;
    }
    let s = (s * scale).clamp(0.0, 1.0);
    let v = vv;
    let c = s * v;
    let m = v - c;
    let dh = h * 6.0;
    let category = dh as i32;
    let mut fmodu = wrap_start(dh, 2.0);
    while fmodu <= 0.0 {
        fmodu += 2.0;
    }
    while fmodu >= 2.0 {
        fmodu -= 2.0;
    }
    let x = c * (1.0 - (fmodu - 1.0).abs());
    let (rr, gg, bb) = match category {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        5 => (c, 0.0, x),
        _ => (0.0, 0.0, 0.0),
    };
    [rr + m, gg + m, bb + m]
}

/// Rotates hue by `delta` turns through the hue/value-range code (hue in sixths).
pub fn adjust_hue(rgb: [f32; 3], delta: f32) -> [f32; 3] {
    let [r, g, b] = rgb;
    let (vmax, vmid, vmin, cat) = if r < g {
        if b < r {
            (g, r, b, 1)
        } else if b > g {
            (b, g, r, 3)
        } else {
            (g, b, r, 2)
        }
    } else if b < g {
        (r, g, b, 0)
    } else if b > r {
        (b, r, g, 4)
    } else {
        (r, b, g, 5)
    };
    let mut h = if vmax == vmin {
        0.0
    } else {
        let ratio = (vmid - vmin) / (vmax - vmin);
        cat as f32 + if cat & 1 == 0 { ratio } else { 1.0 - ratio }
    };
    h = wrap_start(h + delta * 6.0, 6.0);
    while h < 0.0 {
        h += 6.0;
    }
    while h >= 6.0 {
        h -= 6.0;
    }
    let cat = h as i32;
    let mut ratio = h - cat as f32;
    if cat & 1 != 0 {
        ratio = 1.0 - ratio;
    }
    let vmid = vmin + ratio * (vmax - vmin);
    match cat {
        0 => [vmax, vmid, vmin],
        1 => [vmid, vmax, vmin],
        2 => [vmin, vmax, vmid],
        3 => [vmin, vmid, vmax],
        4 => [vmid, vmin, vmax],
        _ => [vmax, vmin, vmid],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hsv_round_trips() {
        for &(r, g, b) in &[
            (0.2f32, 0.5, 0.9),
            (1.0, 0.0, 0.0),
            (0.3, 0.3, 0.3),
            (0.9, 0.8, 0.1),
        ] {
            let [h, s, v] = rgb_to_hsv(r, g, b);
            let [r2, g2, b2] = hsv_to_rgb(h, s, v);
            assert!((r - r2).abs() < 1e-5 && (g - g2).abs() < 1e-5 && (b - b2).abs() < 1e-5);
            let id = adjust_hue([r, g, b], 0.0);
            assert!((id[0] - r).abs() < 1e-5 && (id[2] - b).abs() < 1e-5);
            let sat = adjust_saturation([r, g, b], 1.0);
            assert!((sat[1] - g).abs() < 1e-5);
        }
    }
}

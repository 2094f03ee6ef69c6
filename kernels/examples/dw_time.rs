//! Times the depthwise kernel on a few EfficientNet shapes (investigation helper).
use std::time::Instant;
use tfhub_kernels::conv::{depthwise_conv2d_nhwc_f32_ep, Window2d};
use tfhub_kernels::epilogue::{Activation, ChannelOp, Epilogue};
use tfhub_kernels::simd::Isa;

/// CPU nanoseconds of every thread of this process (Linux; 0 elsewhere): steadier than wall
/// time on a shared machine.
fn cpu_ns() -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    dir.filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

fn main() {
    // (h = w, channels, k, stride, pad): EfficientNetB0's and MobileNetV2's depthwise layers.
    let shapes = [
        (7usize, 1152usize, 5usize, 1usize, 2usize),
        (7, 1152, 3, 1, 1),
        (7, 960, 3, 1, 1),
        (14, 672, 5, 1, 2),
        (14, 480, 3, 1, 1),
        (14, 384, 3, 1, 1),
        (14, 576, 3, 2, 0),
        (28, 240, 5, 1, 2),
        (28, 192, 3, 1, 1),
        (56, 144, 5, 2, 1),
        (112, 96, 3, 2, 0),
        (56, 144, 3, 1, 1),
        (112, 32, 3, 1, 1),
    ];
    for (hw, c, k, s, p) in shapes {
        // TF's SAME padding (`p` only says whether the layer pads).
        let o = if p > 0 {
            hw.div_ceil(s)
        } else {
            (hw - k) / s + 1
        };
        let p = ((o - 1) * s + k).saturating_sub(hw) / 2;
        let g = Window2d {
            input: [1, hw, hw, c],
            kernel: (k, k),
            strides: (s, s),
            dilations: (1, 1),
            pads: (p, p),
            output: (o, o),
        };
        let x: Vec<f32> = (0..hw * hw * c)
            .map(|i| ((i % 17) as f32 - 8.0) * 0.1)
            .collect();
        let f: Vec<f32> = (0..k * k * c)
            .map(|i| ((i % 13) as f32 - 6.0) * 0.05)
            .collect();
        let sc = vec![0.9f32; c];
        let bi = vec![0.1f32; c];
        let ops = [ChannelOp::Mul(&sc), ChannelOp::Add(&bi)];
        for act in [Activation::None, Activation::Swish] {
            let ep = Epilogue { ops: &ops, act };
            let mut out = vec![0.0f32; o * o * c];
            for isa in Isa::available().into_iter().filter(|&i| i != Isa::Scalar) {
                let t = Instant::now();
                let c0 = cpu_ns();
                let mut n = 0;
                let mut best = f64::MAX;
                while t.elapsed().as_millis() < 400 {
                    let t1 = Instant::now();
                    depthwise_conv2d_nhwc_f32_ep(isa, &x, &f, 1, &g, &ep, &mut out);
                    best = best.min(t1.elapsed().as_secs_f64() * 1e6);
                    n += 1;
                }
                let us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
                let cpu_us = (cpu_ns() - c0) as f64 / 1e3 / n as f64;
                let macs = (o * o * c * k * k) as f64;
                println!(
                    "{hw}x{hw}x{c} k{k} s{s} {act:?} {isa:?}: {us:.1} us wall, {cpu_us:.1} us CPU, {best:.1} us min, {:.2} GMAC per min-s",
                    macs / best / 1e3
                );
            }
        }
    }
}

//! Times the direct (stem) convolution on MobileNet / ResNet stem shapes (investigation helper).
use std::time::Instant;
use tfhub_kernels::conv::{conv2d_nhwc_f32_ep, Window2d};
use tfhub_kernels::epilogue::{Activation, ChannelOp, Epilogue};

fn main() {
    for (k, s, p, cout, o) in [
        (3usize, 2usize, 0usize, 32usize, 111usize),
        (7, 2, 3, 64, 112),
    ] {
        let hw = 224;
        let g = Window2d {
            input: [1, hw, hw, 3],
            kernel: (k, k),
            strides: (s, s),
            dilations: (1, 1),
            pads: (p, p),
            output: (o, o),
        };
        let x: Vec<f32> = (0..hw * hw * 3)
            .map(|i| ((i % 17) as f32 - 8.0) * 0.1)
            .collect();
        let f: Vec<f32> = (0..k * k * 3 * cout)
            .map(|i| ((i % 13) as f32 - 6.0) * 0.05)
            .collect();
        let sc = vec![0.9f32; cout];
        let ops = [ChannelOp::Mul(&sc)];
        let ep = Epilogue {
            ops: &ops,
            act: Activation::Relu,
        };
        let mut out = vec![0.0f32; o * o * cout];
        let t = Instant::now();
        let mut n = 0;
        while t.elapsed().as_millis() < 500 {
            conv2d_nhwc_f32_ep(&x, &f, cout, &g, &ep, &mut out);
            n += 1;
        }
        let us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
        let macs = (o * o * cout * k * k * 3) as f64;
        println!(
            "stem k{k} cout {cout}: {us:.1} us, {:.2} GMAC/s",
            macs / us / 1e3
        );
    }
}

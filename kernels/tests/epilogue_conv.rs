//! Convolutions with a fused per-channel epilogue match the plain kernel followed by the
//! epilogue as a separate pass, bit for bit, on every instruction set (odd sizes and tails,
//! all conv code paths: 1×1 unit stride in one and in several chunks, strided 1×1, im2col,
//! depthwise with multiplier 1 and 2).

use tfhub_kernels::conv::{
    conv2d_nhwc_f32, conv2d_nhwc_f32_ep, depthwise_conv2d_nhwc_f32_ep,
    depthwise_conv2d_nhwc_f32_with, Window2d,
};
use tfhub_kernels::epilogue::{Activation, ChannelOp, Epilogue};
use tfhub_kernels::Isa;

fn data(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| (((i as u32).wrapping_mul(2654435761) ^ seed) % 1009) as f32 / 126.0 - 4.0)
        .collect()
}

fn window(input: [usize; 4], k: usize, s: usize, pad: usize) -> Window2d {
    let out = |d: usize| (d + 2 * pad - k) / s + 1;
    Window2d {
        input,
        kernel: (k, k),
        strides: (s, s),
        dilations: (1, 1),
        pads: (pad, pad),
        output: (out(input[1]), out(input[2])),
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn conv2d_epilogue_matches_separate_pass() {
    let cases = [
        (window([2, 9, 7, 5], 3, 1, 1), 13),   // im2col
        (window([1, 11, 10, 3], 3, 2, 1), 32), // direct (3 input channels), strided
        (window([2, 8, 9, 2], 3, 1, 1), 43),   // direct: 32 + 8 + 3 output channels
        (window([3, 6, 5, 7], 1, 1, 0), 9),    // 1×1, one chunk
        (window([2, 96, 96, 4], 1, 1, 0), 67), // 1×1, several chunks
        (window([1, 9, 9, 6], 1, 2, 0), 11),   // strided 1×1
    ];
    for (g, cout) in cases {
        let [n, h, w, cin] = g.input;
        let x = data(n * h * w * cin, 1);
        let f = data(cin * cout * g.kernel.0 * g.kernel.1, 2);
        let (b, s) = (data(cout, 3), data(cout, 4));
        let ops = [
            ChannelOp::Add(&b),
            ChannelOp::Mul(&s),
            ChannelOp::SubFrom(&b),
        ];
        for act in [Activation::None, Activation::Relu6] {
            let ep = Epilogue { ops: &ops, act };
            let len = n * g.output.0 * g.output.1 * cout;
            let mut want = vec![0.0; len];
            conv2d_nhwc_f32(&x, &f, cout, &g, &mut want);
            ep.apply_rows(&mut want, cout);
            let mut got = vec![f32::NAN; len];
            conv2d_nhwc_f32_ep(&x, &f, cout, &g, &ep, &mut got);
            assert_eq!(bits(&got), bits(&want), "{g:?} {act:?}");
        }
    }
}

#[test]
fn depthwise_epilogue_matches_separate_pass_all_isas() {
    for (g, mult) in [
        (window([2, 9, 7, 13], 3, 1, 1), 1),
        (window([1, 10, 11, 5], 3, 2, 1), 2),
        (window([1, 5, 5, 17], 5, 1, 2), 1),
    ] {
        let [n, h, w, cin] = g.input;
        let cout = cin * mult;
        let x = data(n * h * w * cin, 5);
        let f = data(g.kernel.0 * g.kernel.1 * cout, 6);
        let (b, s) = (data(cout, 7), data(cout, 8));
        let ops = [ChannelOp::Add(&b), ChannelOp::Mul(&s), ChannelOp::Sub(&b)];
        let ep = Epilogue {
            ops: &ops,
            act: Activation::Relu,
        };
        let len = n * g.output.0 * g.output.1 * cout;
        for isa in Isa::available() {
            let mut want = vec![0.0; len];
            depthwise_conv2d_nhwc_f32_with(isa, &x, &f, mult, &g, &mut want);
            ep.apply_rows(&mut want, cout);
            let mut got = vec![f32::NAN; len];
            depthwise_conv2d_nhwc_f32_ep(isa, &x, &f, mult, &g, &ep, &mut got);
            assert_eq!(bits(&got), bits(&want), "{g:?} {isa:?}");
        }
    }
}

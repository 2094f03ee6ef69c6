//! Times swish through the epilogue and the elementwise kernel (investigation helper).
use std::time::Instant;
use tfhub_kernels::epilogue::{apply_rows_with, Activation, Epilogue};
use tfhub_kernels::simd::Isa;

fn main() {
    let n = 1 << 14;
    let mut x: Vec<f32> = (0..n).map(|i| ((i % 101) as f32 - 50.0) * 0.07).collect();
    for act in [Activation::None, Activation::Relu, Activation::Swish] {
        let ep = Epilogue { ops: &[], act };
        let t = Instant::now();
        let mut it = 0;
        while t.elapsed().as_millis() < 300 {
            apply_rows_with(Isa::best(), &ep, &mut x, 128);
            it += 1;
        }
        let ns = t.elapsed().as_secs_f64() * 1e9 / (it * n) as f64;
        println!("{act:?}: {ns:.3} ns/element");
    }
}

//! GFLOP/s of the f32 GEMM on BERT's shapes, for tuning (not a test, not a benchmark
//! against TF): `cargo run --release -p tfhub-kernels --example gemm_gflops [THREADS]`.
//!
//! Prints, per shape and instruction set, wall-clock GFLOP/s and GFLOP per CPU-second
//! (one core) of this process (from `/proc/self/stat`, Linux), the second being meaningful on a
//! machine shared with other jobs, and on one thread the rate of the call that used the least
//! CPU time (the thread's CPU clock), the least disturbed by other jobs' cache traffic.
//! `GEMM_SHAPE=i,j` runs shapes `i` and `j` only, `GEMM_NO_PEAK=1` skips the FMA peak, `GEMM_SECS` sets the time per shape (default 1).
//! `GEMM_PACKED_ONLY=1` skips the unpacked (strided `B`) product. `TFHUB_NO_AVX512=1` hides
//! AVX-512.
use std::time::Instant;
use tfhub_kernels::epilogue::Epilogue;
use tfhub_kernels::gemm::{gemm_f32_with, gemm_packed_f32_with, PackedB};
use tfhub_kernels::Isa;

/// User + system CPU seconds of this process so far (0 where `/proc` is missing).
fn cpu_seconds() -> f64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the parenthesised command: utime and stime are the 12th and 13th.
    let rest = s.rsplit_once(')').map_or("", |r| r.1);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / 100.0
}

/// FMA peak of one core in GFLOP/s (wall, per CPU-second): 12 independent FMA chains over 16 (AVX-512) or 8
/// (AVX2) lanes, each FMA counted as 2 FLOP per lane.
#[cfg(target_arch = "x86_64")]
fn fma_peak(isa: Isa) -> (f64, f64) {
    use std::arch::x86_64::*;
    #[target_feature(enable = "avx512f")]
    unsafe fn run512(iters: usize) -> f32 {
        let mut acc: [__m512; 12] = std::array::from_fn(|i| _mm512_set1_ps(i as f32));
        let (x, y) = (_mm512_set1_ps(0.999), _mm512_set1_ps(1e-4));
        for _ in 0..iters {
            for a in acc.iter_mut() {
                *a = _mm512_fmadd_ps(*a, x, y);
            }
        }
        acc.iter().map(|&v| _mm512_reduce_add_ps(v)).sum()
    }
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run256(iters: usize) -> f32 {
        let mut acc: [__m256; 12] = std::array::from_fn(|i| _mm256_set1_ps(i as f32));
        let (x, y) = (_mm256_set1_ps(0.999), _mm256_set1_ps(1e-4));
        for _ in 0..iters {
            for a in acc.iter_mut() {
                *a = _mm256_fmadd_ps(*a, x, y);
            }
        }
        let mut t = [0f32; 8];
        let s = acc
            .iter()
            .fold(_mm256_setzero_ps(), |s, &v| _mm256_add_ps(s, v));
        _mm256_storeu_ps(t.as_mut_ptr(), s);
        t.iter().sum()
    }
    let iters = 400_000_000;
    let (t0, c0) = (Instant::now(), cpu_seconds());
    // SAFETY: `isa` comes from `Isa::available()`.
    let (sink, lanes) = unsafe {
        if isa == Isa::Avx512 {
            (run512(iters), 16)
        } else {
            (run256(iters), 8)
        }
    };
    let (wall, cpu) = (t0.elapsed().as_secs_f64(), (cpu_seconds() - c0).max(1e-9));
    std::hint::black_box(sink);
    let flop = (iters * 12 * lanes * 2) as f64;
    (flop / wall / 1e9, flop / cpu / 1e9)
}

/// CPU seconds of the calling thread (0 where the clock is not available).
fn thread_run_seconds() -> f64 {
    tfhub_kernels::threads::thread_cpu_ns().map_or(0.0, |ns| ns as f64 * 1e-9)
}

fn main() {
    let secs: f64 = std::env::var("GEMM_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let threads: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    // (m, k, n): BERT-small/base projections and FFN at seq 128, batch 1 (m = 128) and 8.
    let mut shapes = Vec::new();
    for m in [128, 1024] {
        for (k, n) in [
            (512, 2048),
            (2048, 512),
            (512, 512),
            (768, 3072),
            (3072, 768),
            (768, 768),
        ] {
            shapes.push((m, k, n));
        }
    }
    shapes.extend([
        // 1×1 convolutions at 224² batch 1 (MobileNetV2, EfficientNetB0, ResNet50): pixels ×
        // input channels × output channels.
        (12544, 16, 96),
        (3136, 24, 144),
        (3136, 144, 24),
        (3136, 96, 24),
        (3136, 64, 256),
        (784, 40, 240),
        (784, 512, 128),
        (196, 672, 112),
        (196, 256, 1024),
        (196, 1024, 256),
        (49, 320, 1280),
        (49, 2048, 512),
        (49, 960, 160),
        (784, 240, 40),
        (196, 480, 80),
        // 3×3 convolutions as im2col GEMMs (ResNet50).
        (196, 2304, 256),
        (784, 1152, 128),
        (3136, 576, 64),
    ]);
    let packed_only = std::env::var_os("GEMM_PACKED_ONLY").is_some();
    let only: Option<Vec<usize>> = std::env::var("GEMM_SHAPE")
        .ok()
        .map(|s| s.split(',').filter_map(|v| v.parse().ok()).collect());
    let isas: Vec<Isa> = Isa::available()
        .into_iter()
        .filter(|&i| i != Isa::Scalar)
        .collect();
    #[cfg(target_arch = "x86_64")]
    for &isa in isas
        .iter()
        .filter(|_| std::env::var_os("GEMM_NO_PEAK").is_none())
    {
        let (wall, cpu) = fma_peak(isa);
        println!("FMA peak {isa:?}: {wall:.1} GFLOP/s wall, {cpu:.1} per core-second");
    }
    pool.install(|| {
        for (i, &(m, k, n)) in shapes.iter().enumerate() {
            if only.as_ref().is_some_and(|o| !o.contains(&i)) {
                continue;
            }
            let a: Vec<f32> = (0..m * k).map(|i| ((i % 13) as f32 - 6.0) * 0.1).collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i % 7) as f32 - 3.0) * 0.1).collect();
            let mut c = vec![0f32; m * n];
            let flop = 2.0 * (m * k * n) as f64;
            for &isa in &isas {
                let packed = PackedB::new_with(isa, k, n, &b, (n, 1));
                for (name, packed_b) in [("unpacked", false), ("packed", true)] {
                    if packed_only && !packed_b {
                        continue;
                    }
                    let run = |c: &mut [f32]| {
                        if packed_b {
                            let ep = Epilogue::default();
                            gemm_packed_f32_with(threads > 1, m, &a, (k, 1), &packed, c, n, &ep)
                        } else {
                            gemm_f32_with(
                                isa,
                                threads > 1,
                                m,
                                n,
                                k,
                                &a,
                                (k, 1),
                                &b,
                                (n, 1),
                                c,
                                n,
                                false,
                            )
                        }
                    };
                    run(&mut c);
                    let (t0, c0) = (Instant::now(), cpu_seconds());
                    let mut calls = 0;
                    let mut best = f64::INFINITY;
                    while t0.elapsed().as_secs_f64() < secs || calls < 3 {
                        let r0 = thread_run_seconds();
                        run(&mut c);
                        best = best.min(thread_run_seconds() - r0);
                        calls += 1;
                    }
                    let wall = t0.elapsed().as_secs_f64();
                    let cpu = (cpu_seconds() - c0).max(1e-9);
                    // On one thread the fastest call's own CPU time; other threads' work is
                    // not counted, so this is only printed for one thread.
                    let best = if threads == 1 {
                        format!(", {:7.1} best call", flop / best.max(1e-12) / 1e9)
                    } else {
                        String::new()
                    };
                    println!(
                        "{m:>5}x{k:>5}x{n:>5} {isa:?} {name:>8} threads {threads}: {:7.1} GFLOP/s wall, {:7.1} per core-second{best}",
                        flop * calls as f64 / wall / 1e9,
                        flop * calls as f64 / cpu / 1e9
                    );
                }
            }
        }
    });
}

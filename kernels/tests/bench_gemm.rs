//! GEMM throughput report:
//! `cargo test --release -p tfhub-kernels --test bench_gemm -- --ignored --nocapture`.
//!
//! Prints the best of many short timings (robust against other load on the machine) and,
//! on x86-64, the measured single-core FMA peak for AVX2 so the GEMM figures can be read as
//! a fraction of peak.

use std::time::Instant;
use tfhub_kernels::gemm::gemm_f32_with;
use tfhub_kernels::Isa;

/// On-CPU time of the calling thread in seconds (Linux `schedstat`), if available. Used for
/// single-threaded runs so time spent preempted by other processes is not counted.
fn thread_cpu_secs() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(ns as f64 * 1e-9)
}

/// Best-of-25 (wall seconds, this thread's on-CPU seconds) per call of `f`, each run lasting
/// about 20 ms. The CPU time is only meaningful for single-threaded work and for calls of
/// several ms (schedstat is updated at scheduler events).
fn best_time(mut f: impl FnMut(), flops: f64) -> (f64, f64) {
    f();
    let reps = ((2e-2 * 50e9 / flops) as usize).clamp(1, 100_000);
    let (mut wall, mut cpu) = (f64::MAX, f64::MAX);
    for _ in 0..25 {
        let (t, c) = (Instant::now(), thread_cpu_secs().unwrap_or(0.0));
        for _ in 0..reps {
            f();
        }
        wall = wall.min(t.elapsed().as_secs_f64() / reps as f64);
        cpu = cpu.min((thread_cpu_secs().unwrap_or(0.0) - c) / reps as f64);
    }
    (wall, cpu)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_loop_avx2(iters: usize) -> f32 {
    use std::arch::x86_64::*;
    let mut acc = [_mm256_set1_ps(std::hint::black_box(0.0)); 12];
    let a = _mm256_set1_ps(std::hint::black_box(0.999_999));
    let b = _mm256_set1_ps(1e-7);
    for _ in 0..std::hint::black_box(iters) {
        for v in acc.iter_mut() {
            *v = _mm256_fmadd_ps(*v, a, b);
        }
    }
    let mut s = [0.0f32; 8];
    let mut t = acc[0];
    for v in &acc[1..] {
        t = _mm256_add_ps(t, *v);
    }
    _mm256_storeu_ps(s.as_mut_ptr(), t);
    s.iter().sum()
}

fn bench(isa: Isa, threads: usize, m: usize, n: usize, k: usize, bt: bool) -> (f64, f64) {
    let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32) * 0.01).collect();
    let b: Vec<f32> = (0..k * n).map(|i| ((i * 5 % 11) as f32) * 0.01).collect();
    let mut c = vec![0.0f32; m * n];
    let b_strides = if bt { (1, k) } else { (n, 1) };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let flops = 2.0 * (m * n * k) as f64;
    pool.install(|| {
        let t = best_time(
            || {
                gemm_f32_with(
                    isa,
                    threads > 1,
                    m,
                    n,
                    k,
                    &a,
                    (k, 1),
                    &b,
                    b_strides,
                    &mut c,
                    n,
                    false,
                )
            },
            flops,
        );
        (flops / t.0 / 1e9, flops / t.1 / 1e9)
    })
}

#[test]
#[ignore]
fn gemm_gflops() {
    #[cfg(target_arch = "x86_64")]
    if Isa::best() >= Isa::Avx2 {
        let iters = 100_000;
        let flops = (iters * 12 * 8 * 2) as f64;
        // SAFETY: AVX2+FMA checked above.
        let t = best_time(
            || {
                std::hint::black_box(unsafe { fma_loop_avx2(iters) });
            },
            flops,
        );
        println!(
            "AVX2 FMA peak (1 core, measured, wall): {:.1} GFLOP/s",
            flops / t.0 / 1e9
        );
    }
    let only = std::env::var("BENCH_ISA").ok();
    for isa in Isa::available().into_iter().rev() {
        if only
            .as_deref()
            .is_some_and(|o| !format!("{isa:?}").eq_ignore_ascii_case(o))
        {
            continue;
        }
        for &(m, n, k, bt) in &[
            (1024, 1024, 1024, false),
            (64, 1024, 1024, false),
            (1, 1024, 1024, false),
            (1, 1024, 1024, true),
            (256, 256, 256, false),
        ] {
            let only_shape = std::env::var("BENCH_M").ok();
            if only_shape.is_some_and(|o| o != m.to_string()) {
                continue;
            }
            for threads in [1, 2] {
                let (wall, cpu) = bench(isa, threads, m, n, k, bt);
                let cpu = if threads == 1 && m * n * k >= 1 << 27 {
                    format!(", {cpu:.1} by thread CPU time")
                } else {
                    String::new()
                };
                println!(
                    "{isa:?} m={m} n={n} k={k}{} threads={threads}: {wall:.1} GFLOP/s wall{cpu}",
                    if bt { " (B transposed)" } else { "" },
                );
            }
        }
    }
}

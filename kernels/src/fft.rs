//! Discrete Fourier transforms over the trailing axes of row-major buffers: complex to
//! complex, real to half-spectrum and back, through `rustfft` (pure Rust, any length:
//! mixed radix, Rader and Bluestein plans).
//!
//! Everything is computed in f64, whatever the caller's element type: an f32 transform is then
//! correctly rounded to within an ulp or two, so its distance to another f32 implementation is
//! that implementation's own rounding error. Scaling is the caller's choice (`scale` multiplies
//! every output element).

use rustfft::num_complex::Complex;
use rustfft::FftPlanner;

/// A complex number of f64 parts.
pub type C64 = Complex<f64>;

/// Transforms `buf` (row-major, `shape`) in place along axis `axis`, forward
/// (`exp(-2πi jk/n)`) or inverse (unscaled).
///
/// # Panics
/// If `buf.len()` is not the product of `shape` or `axis >= shape.len()`.
pub fn c2c_axis(buf: &mut [C64], shape: &[usize], axis: usize, inverse: bool) {
    assert_eq!(buf.len(), shape.iter().product::<usize>());
    let n = shape[axis];
    if n <= 1 || buf.is_empty() {
        return;
    }
    let inner: usize = shape[axis + 1..].iter().product();
    let outer = buf.len() / (n * inner);
    let mut planner = FftPlanner::<f64>::new();
    let fft = if inverse {
        planner.plan_fft_inverse(n)
    } else {
        planner.plan_fft_forward(n)
    };
    let mut scratch = vec![C64::default(); fft.get_inplace_scratch_len()];
    if inner == 1 {
        for row in buf.chunks_exact_mut(n) {
            fft.process_with_scratch(row, &mut scratch);
        }
        return;
    }
    let mut line = vec![C64::default(); n];
    for o in 0..outer {
        let base = o * n * inner;
        for i in 0..inner {
            for (k, v) in line.iter_mut().enumerate() {
                *v = buf[base + k * inner + i];
            }
            fft.process_with_scratch(&mut line, &mut scratch);
            for (k, v) in line.iter().enumerate() {
                buf[base + k * inner + i] = *v;
            }
        }
    }
}

/// Real-to-complex transform of each length-`n` row of `input` into the `n / 2 + 1` first
/// coefficients, written to the rows of `out`.
///
/// # Panics
/// If `input.len()` is not a multiple of `n` or `out` does not have `n / 2 + 1` per row.
pub fn r2c_rows(input: &[f64], n: usize, out: &mut [C64]) {
    let half = n / 2 + 1;
    if n == 0 {
        return;
    }
    assert_eq!(input.len() / n * half, out.len());
    let mut planner = FftPlanner::<f64>::new();
    let fft = planner.plan_fft_forward(n);
    let mut scratch = vec![C64::default(); fft.get_inplace_scratch_len()];
    let mut line = vec![C64::default(); n];
    for (row, o) in input.chunks_exact(n).zip(out.chunks_exact_mut(half)) {
        for (l, &x) in line.iter_mut().zip(row) {
            *l = C64::new(x, 0.0);
        }
        fft.process_with_scratch(&mut line, &mut scratch);
        o.copy_from_slice(&line[..half]);
    }
}

/// Complex-to-real inverse transform (unscaled) of each row of `n / 2 + 1` coefficients of a
/// Hermitian spectrum into `n` reals. The imaginary parts of the DC term (and of the Nyquist
/// term when `n` is even) are ignored, as by every half-spectrum inverse.
///
/// # Panics
/// If `input` does not have `n / 2 + 1` per row or `out` is not `n` per row.
pub fn c2r_rows(input: &[C64], n: usize, out: &mut [f64]) {
    let half = n / 2 + 1;
    if n == 0 {
        return;
    }
    assert_eq!(input.len() / half * n, out.len());
    let mut planner = FftPlanner::<f64>::new();
    let fft = planner.plan_fft_inverse(n);
    let mut scratch = vec![C64::default(); fft.get_inplace_scratch_len()];
    let mut line = vec![C64::default(); n];
    for (row, o) in input.chunks_exact(half).zip(out.chunks_exact_mut(n)) {
        line[0] = C64::new(row[0].re, 0.0);
        for (k, &v) in row.iter().enumerate().take(half).skip(1) {
            line[k] = v;
            line[n - k] = v.conj();
        }
        if n.is_multiple_of(2) {
            line[n / 2] = C64::new(row[n / 2].re, 0.0);
        }
        fft.process_with_scratch(&mut line, &mut scratch);
        for (y, l) in o.iter_mut().zip(&line) {
            *y = l.re;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(x: &[C64], inverse: bool) -> Vec<C64> {
        let n = x.len();
        let sign = if inverse { 1.0 } else { -1.0 };
        (0..n)
            .map(|k| {
                x.iter()
                    .enumerate()
                    .map(|(j, v)| {
                        let a = sign * 2.0 * std::f64::consts::PI * (j * k % n) as f64 / n as f64;
                        v * C64::new(a.cos(), a.sin())
                    })
                    .sum()
            })
            .collect()
    }

    #[test]
    fn c2c_matches_naive_dft_on_both_axes() {
        let shape = [3, 5];
        let x: Vec<C64> = (0..15)
            .map(|i| C64::new((i as f64 * 0.7).sin(), (i as f64 * 0.3).cos()))
            .collect();
        let mut y = x.clone();
        c2c_axis(&mut y, &shape, 1, false);
        for r in 0..3 {
            let want = naive(&x[r * 5..r * 5 + 5], false);
            for (a, b) in y[r * 5..r * 5 + 5].iter().zip(&want) {
                assert!((a - b).norm() < 1e-12);
            }
        }
        let mut z = x.clone();
        c2c_axis(&mut z, &shape, 0, true);
        for c in 0..5 {
            let col: Vec<C64> = (0..3).map(|r| x[r * 5 + c]).collect();
            let want = naive(&col, true);
            for r in 0..3 {
                assert!((z[r * 5 + c] - want[r]).norm() < 1e-12);
            }
        }
    }

    #[test]
    fn r2c_then_c2r_round_trips() {
        for n in [1usize, 2, 7, 8, 12] {
            let x: Vec<f64> = (0..2 * n).map(|i| (i as f64 * 1.3).sin()).collect();
            let mut spec = vec![C64::default(); 2 * (n / 2 + 1)];
            r2c_rows(&x, n, &mut spec);
            let full = naive(
                &x[..n].iter().map(|&v| C64::new(v, 0.0)).collect::<Vec<_>>(),
                false,
            );
            for k in 0..n / 2 + 1 {
                assert!((spec[k] - full[k]).norm() < 1e-12);
            }
            let mut back = vec![0.0; 2 * n];
            c2r_rows(&spec, n, &mut back);
            for (a, b) in back.iter().zip(&x) {
                assert!((a / n as f64 - b).abs() < 1e-12, "n={n}");
            }
        }
    }
}

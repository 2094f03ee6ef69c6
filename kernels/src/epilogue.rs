//! Per-channel epilogues fused into producers (GEMM tiles, convolution rows).
//!
//! An [`Epilogue`] is a short list of per-column operations (`x + v[j]`, `x * v[j]`,
//! `x - v[j]`, `v[j] - x`) followed by an optional activation (ReLU, ReLU6), applied to a
//! row-major `[rows, channels]` output while it is still in cache. Each step is rounded to
//! `f32` separately (no contraction into FMA), so the result is bit-identical to running the
//! steps as separate elementwise passes.

use crate::simd::Isa;

/// One per-channel step: `v` has one value per output column.
#[derive(Debug, Clone, Copy)]
pub enum ChannelOp<'a> {
    /// `x + v[j]`.
    Add(&'a [f32]),
    /// `x * v[j]`.
    Mul(&'a [f32]),
    /// `x - v[j]`.
    Sub(&'a [f32]),
    /// `v[j] - x`.
    SubFrom(&'a [f32]),
}

impl ChannelOp<'_> {
    fn values(&self) -> &[f32] {
        match self {
            ChannelOp::Add(v) | ChannelOp::Mul(v) | ChannelOp::Sub(v) | ChannelOp::SubFrom(v) => v,
        }
    }
}

/// The activation that ends an epilogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Activation {
    /// Identity.
    #[default]
    None,
    /// `if x < 0 {0} else {x}` (NaN passes through, as `elementwise::relu_f32`).
    Relu,
    /// `min(max(x, 0), 6)` with NaN passing through (as `elementwise::relu6_f32`).
    Relu6,
    /// `x · sigmoid(x)` (swish / SiLU), bit-identical to `elementwise::sigmoid_f32` then a
    /// product (both use `transcend`'s lane function).
    Swish,
    /// Exact GELU as Keras / TF trace it, `(0.5·x) · erfc((-x)·c)` with `c` the `f32`
    /// [`GELU_C`] (`1/√2`), each product rounded as the separate ops round it: bit-identical
    /// to `elementwise::gelu_f32` (`epilogue_x86` evaluates `transcend`'s lane function
    /// operation for operation in vector registers).
    Gelu,
}

/// The `1/√2` constant of [`Activation::Gelu`] (Keras' `Cast(1/sqrt(2))` as `f32`).
pub const GELU_C: f32 = std::f32::consts::FRAC_1_SQRT_2;

/// Per-channel steps then an activation, for outputs with `channels` columns.
#[derive(Debug, Clone, Copy, Default)]
pub struct Epilogue<'a> {
    /// Applied in order.
    pub ops: &'a [ChannelOp<'a>],
    /// Applied last.
    pub act: Activation,
}

impl Epilogue<'_> {
    /// True when applying it changes nothing.
    pub fn is_identity(&self) -> bool {
        self.ops.is_empty() && self.act == Activation::None
    }

    /// Checks that every step has exactly `channels` values.
    ///
    /// # Panics
    ///
    /// If a step's vector length differs from `channels`.
    pub fn validate(&self, channels: usize) {
        for op in self.ops {
            assert_eq!(
                op.values().len(),
                channels,
                "epilogue: channel vector length"
            );
        }
    }

    /// Applies the epilogue to `row`, which holds columns `col0..col0 + row.len()` of one
    /// output row.
    ///
    /// # Panics
    ///
    /// If the columns are out of range of a step's vector.
    #[inline]
    pub fn apply_row(&self, row: &mut [f32], col0: usize) {
        apply_row_with(Isa::best(), self, row, col0)
    }

    /// Applies the epilogue to the `N` columns `col0..col0 + N` of one output row held in
    /// registers (`acc`): the same arithmetic as [`Epilogue::apply_row`], for kernels that
    /// finish a block of channels at a time.
    ///
    /// # Panics
    ///
    /// If the columns are out of range of a step's vector.
    #[inline(always)]
    pub fn apply_block<const N: usize>(&self, acc: &mut [f32; N], col0: usize) {
        for op in self.ops {
            match *op {
                ChannelOp::Add(v) => {
                    for (x, &b) in acc.iter_mut().zip(&v[col0..col0 + N]) {
                        *x += b;
                    }
                }
                ChannelOp::Mul(v) => {
                    for (x, &b) in acc.iter_mut().zip(&v[col0..col0 + N]) {
                        *x *= b;
                    }
                }
                ChannelOp::Sub(v) => {
                    for (x, &b) in acc.iter_mut().zip(&v[col0..col0 + N]) {
                        *x -= b;
                    }
                }
                ChannelOp::SubFrom(v) => {
                    for (x, &b) in acc.iter_mut().zip(&v[col0..col0 + N]) {
                        *x = b - *x;
                    }
                }
            }
        }
        match self.act {
            Activation::None => {}
            Activation::Relu => {
                for x in acc.iter_mut() {
                    *x = if *x < 0.0 { 0.0 } else { *x };
                }
            }
            Activation::Relu6 => {
                for x in acc.iter_mut() {
                    let r = if *x < 0.0 { 0.0 } else { *x };
                    *x = if r > 6.0 { 6.0 } else { r };
                }
            }
            Activation::Swish => {
                for x in acc.iter_mut() {
                    *x *= crate::transcend::sigmoid_lane(*x);
                }
            }
            Activation::Gelu => {
                for x in acc.iter_mut() {
                    *x = crate::transcend::gelu_lane(*x, GELU_C);
                }
            }
        }
    }

    /// Applies the epilogue to every `channels`-long row of `data` (row-major `[rows,
    /// channels]`).
    ///
    /// # Panics
    ///
    /// If `data.len()` is not a multiple of `channels` or a step has the wrong length.
    pub fn apply_rows(&self, data: &mut [f32], channels: usize) {
        apply_rows_with(Isa::best(), self, data, channels)
    }
}

/// [`Epilogue::apply_rows`] on an explicit instruction set (clamped to the CPU).
///
/// # Panics
///
/// As [`Epilogue::apply_rows`].
pub fn apply_rows_with(isa: Isa, ep: &Epilogue<'_>, data: &mut [f32], channels: usize) {
    if ep.is_identity() || data.is_empty() {
        return;
    }
    ep.validate(channels);
    assert!(
        data.len().checked_rem(channels) == Some(0),
        "epilogue: data is not whole rows"
    );
    for row in data.chunks_exact_mut(channels) {
        apply_row_with(isa, ep, row, 0);
    }
}

/// [`Epilogue::apply_row`] on an explicit instruction set (clamped to the CPU): explicit
/// vector code (`epilogue_x86`) for whole vectors, the portable loops for the rest.
pub fn apply_row_with(isa: Isa, ep: &Epilogue<'_>, row: &mut [f32], col0: usize) {
    #[cfg(target_arch = "x86_64")]
    let done = crate::epilogue_x86::apply_row_prefix(isa, ep, row, col0);
    #[cfg(not(target_arch = "x86_64"))]
    let done = 0;
    if done < row.len() {
        apply_row_auto_with(isa, ep, &mut row[done..], col0 + done);
    }
}

crate::simd::multiversion! {
    /// [`Epilogue::apply_row`] on an explicit instruction set, portable loops.
    fn apply_row_auto / apply_row_auto_with(ep: &Epilogue<'_>, row: &mut [f32], col0: usize) {
        let n = row.len();
        for op in ep.ops {
            match *op {
                ChannelOp::Add(v) => {
                    for (x, &b) in row.iter_mut().zip(&v[col0..col0 + n]) {
                        *x += b;
                    }
                }
                ChannelOp::Mul(v) => {
                    for (x, &b) in row.iter_mut().zip(&v[col0..col0 + n]) {
                        *x *= b;
                    }
                }
                ChannelOp::Sub(v) => {
                    for (x, &b) in row.iter_mut().zip(&v[col0..col0 + n]) {
                        *x -= b;
                    }
                }
                ChannelOp::SubFrom(v) => {
                    for (x, &b) in row.iter_mut().zip(&v[col0..col0 + n]) {
                        *x = b - *x;
                    }
                }
            }
        }
        match ep.act {
            Activation::None => {}
            Activation::Relu => {
                for x in row.iter_mut() {
                    *x = if *x < 0.0 { 0.0 } else { *x };
                }
            }
            Activation::Relu6 => {
                for x in row.iter_mut() {
                    let r = if *x < 0.0 { 0.0 } else { *x };
                    *x = if r > 6.0 { 6.0 } else { r };
                }
            }
            Activation::Swish => {
                for x in row.iter_mut() {
                    *x *= crate::transcend::sigmoid_lane(*x);
                }
            }
            Activation::Gelu => {
                for x in row.iter_mut() {
                    *x = crate::transcend::gelu_lane(*x, GELU_C);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elementwise::{relu6_f32, relu_f32};

    #[test]
    fn epilogue_matches_separate_passes_all_isas() {
        let channels = 37;
        let rows = 5;
        let data: Vec<f32> = (0..rows * channels)
            .map(|i| ((i * 7919) % 97) as f32 * 0.173 - 8.0)
            .collect();
        let b: Vec<f32> = (0..channels).map(|j| j as f32 * 0.31 - 5.0).collect();
        let s: Vec<f32> = (0..channels).map(|j| 1.5 - j as f32 * 0.07).collect();
        let t: Vec<f32> = (0..channels).map(|j| (j as f32).sin()).collect();
        let ops = [
            ChannelOp::Add(&b),
            ChannelOp::Mul(&s),
            ChannelOp::Sub(&t),
            ChannelOp::SubFrom(&b),
        ];
        for act in [
            Activation::None,
            Activation::Relu,
            Activation::Relu6,
            Activation::Swish,
            Activation::Gelu,
        ] {
            // Reference: separate passes.
            let mut want = data.clone();
            for row in want.chunks_exact_mut(channels) {
                for j in 0..channels {
                    row[j] += b[j];
                    row[j] *= s[j];
                    row[j] -= t[j];
                    row[j] = b[j] - row[j];
                }
            }
            let src = want.clone();
            match act {
                Activation::None => {}
                Activation::Relu => relu_f32(&src, &mut want),
                Activation::Relu6 => relu6_f32(&src, &mut want),
                Activation::Swish => {
                    let mut sig = vec![0.0f32; src.len()];
                    crate::elementwise::sigmoid_f32(&src, &mut sig);
                    for (w, (x, s)) in want.iter_mut().zip(src.iter().zip(&sig)) {
                        *w = x * s;
                    }
                }
                Activation::Gelu => crate::elementwise::gelu_f32(&src, GELU_C, &mut want),
            }
            let ep = Epilogue { ops: &ops, act };
            for isa in Isa::available() {
                let mut got = data.clone();
                for row in got.chunks_exact_mut(channels) {
                    // Split each row in two pieces to exercise `col0`.
                    let (lo, hi) = row.split_at_mut(13);
                    apply_row_with(isa, &ep, lo, 0);
                    apply_row_with(isa, &ep, hi, 13);
                }
                assert_eq!(
                    got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    want.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    "{isa:?} {act:?}"
                );
            }
            let mut got = data.clone();
            ep.apply_rows(&mut got, channels);
            assert_eq!(got, want);
        }
    }

    #[test]
    fn activations_pass_nan_through() {
        let mut row = [f32::NAN, -1.0, 7.0, 3.0];
        let ep = Epilogue {
            ops: &[],
            act: Activation::Relu6,
        };
        ep.apply_row(&mut row, 0);
        assert!(row[0].is_nan());
        assert_eq!(&row[1..], &[0.0, 6.0, 3.0]);
    }
}

//! `AudioSpectrogram` and `Mfcc`: the speech-commands front end. TF reference:
//! core/kernels/spectrogram{,_op}.cc, mfcc{,_op,_mel_filterbank,_dct}.cc.
//!
//! Both compute in f64 as TF does (periodic Hann window, FFT of the next power of two,
//! HTK-style mel filterbank on magnitudes, log floored at 1e-12, orthonormal DCT-II rows) and
//! round to f32 once at the end. TF's Ooura FFT and ours differ only in f64 rounding.

use crate::ops::kernels::fft::{r2c_rows, C64};
use crate::ops::{take_inputs, BuildCtx, EvalCtx, Op, OpError, Registry, Tensors};
use crate::tensor::{DType, Tensor};

pub(super) fn register(r: &mut Registry) {
    r.add("AudioSpectrogram", Spectrogram::build);
    r.add("Mfcc", Mfcc::build);
}

/// `AudioSpectrogram`: `[samples, channels]` -> `[channels, frames, fft/2 + 1]` (squared)
/// magnitudes of Hann-windowed frames of `window_size` every `stride` samples.
#[derive(Debug)]
struct Spectrogram {
    window: Vec<f64>,
    stride: usize,
    fft: usize,
    squared: bool,
}

impl Spectrogram {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(1)?;
        let window_size = cx.attr_i64("window_size")?;
        let stride = cx.attr_i64("stride")?;
        if window_size <= 1 {
            return Err(OpError::invalid(format!(
                "window_size must be > 1, got {window_size}"
            )));
        }
        if stride <= 0 {
            return Err(OpError::invalid(format!(
                "stride must be > 0, got {stride}"
            )));
        }
        if window_size > 1 << 24 {
            return Err(OpError::Limit(format!(
                "window_size {window_size} is over 2^24"
            )));
        }
        let n = window_size as usize;
        let pi = 1f64.atan() * 4.0;
        // GetPeriodicHann.
        let window = (0..n)
            .map(|i| 0.5 - 0.5 * ((2.0 * pi * i as f64) / n as f64).cos())
            .collect();
        Ok(Box::new(Spectrogram {
            window,
            stride: stride as usize,
            fft: n.next_power_of_two(),
            squared: cx.attr_opt_bool("magnitude_squared").unwrap_or(false),
        }))
    }
}

impl Op for Spectrogram {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [x] = take_inputs(inputs)?;
        if x.rank() != 2 {
            return Err(OpError::invalid(format!(
                "input must be 2-dimensional{:?}",
                x.shape()
            )));
        }
        let (samples, channels) = (x.shape()[0], x.shape()[1]);
        let data = x.as_slice::<f32>()?;
        let w = self.window.len();
        let frames = if samples < w {
            0
        } else {
            1 + (samples - w) / self.stride
        };
        let width = self.fft / 2 + 1;
        let n = channels
            .checked_mul(frames)
            .and_then(|v| v.checked_mul(width))
            .ok_or_else(|| OpError::Limit("AudioSpectrogram output overflows".into()))?;
        cx.limits().check_alloc(n, DType::F32)?;
        let mut out = vec![0f32; n];
        let mut line = vec![0f64; self.fft];
        let mut spec = vec![C64::default(); width];
        for c in 0..channels {
            for f in 0..frames {
                let start = f * self.stride;
                for (j, l) in line[..w].iter_mut().enumerate() {
                    *l = data[(start + j) * channels + c] as f64 * self.window[j];
                }
                r2c_rows(&line, self.fft, &mut spec);
                let row = &mut out[(c * frames + f) * width..][..width];
                for (o, z) in row.iter_mut().zip(&spec) {
                    let m = (z.re * z.re + z.im * z.im) as f32;
                    *o = if self.squared { m } else { m.sqrt() };
                }
            }
        }
        Ok(tensors![Tensor::from_vec(&[channels, frames, width], out)?])
    }
}

/// `Mfcc`: `[channels, frames, bins]` squared-magnitude spectrogram and an int32 sample rate
/// -> `[channels, frames, dct_coefficient_count]`.
#[derive(Debug)]
struct Mfcc {
    upper: f64,
    lower: f64,
    filters: usize,
    coefficients: usize,
}

impl Mfcc {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(2)?;
        let count = |name: &str, default: i64| -> Result<usize, OpError> {
            let v = cx.attr_opt_i64(name).unwrap_or(default);
            usize::try_from(v)
                .ok()
                .filter(|&v| v <= 1 << 16)
                .ok_or_else(|| OpError::invalid(format!("{name} = {v} is out of range")))
        };
        Ok(Box::new(Mfcc {
            upper: cx.attr_opt_f32("upper_frequency_limit").unwrap_or(4000.0) as f64,
            lower: cx.attr_opt_f32("lower_frequency_limit").unwrap_or(20.0) as f64,
            filters: count("filterbank_channel_count", 40)?,
            coefficients: count("dct_coefficient_count", 13)?,
        }))
    }
}

fn freq_to_mel(f: f64) -> f64 {
    1127.0 * (f / 700.0).ln_1p()
}

/// `MfccMelFilterbank` after `Initialize`.
struct Filterbank {
    start: usize,
    end: usize,
    band: Vec<i64>,
    weights: Vec<f64>,
}

impl Mfcc {
    fn filterbank(&self, bins: usize, rate: f64) -> Option<Filterbank> {
        let channels = self.filters;
        if channels < 1 || rate <= 0.0 || bins < 2 || self.lower < 0.0 || self.upper <= self.lower {
            return None;
        }
        let mel_low = freq_to_mel(self.lower);
        let spacing = (freq_to_mel(self.upper) - mel_low) / (channels + 1) as f64;
        let centers: Vec<f64> = (0..=channels)
            .map(|i| mel_low + spacing * (i + 1) as f64)
            .collect();
        let hz_per_bin = 0.5 * rate / (bins - 1) as f64;
        // static_cast<int>: truncation toward zero (saturating here, UB in C++).
        let start = (1.5 + self.lower / hz_per_bin) as i64;
        let end = (self.upper / hz_per_bin) as i64;
        let mut band = vec![-2i64; bins];
        let mut channel = 0usize;
        for (i, b) in band.iter_mut().enumerate() {
            let melf = freq_to_mel(i as f64 * hz_per_bin);
            if (i as i64) >= start && (i as i64) <= end {
                while channel < channels && centers[channel] < melf {
                    channel += 1;
                }
                *b = channel as i64 - 1;
            }
        }
        let weights = (0..bins)
            .map(|i| {
                if (i as i64) < start || (i as i64) > end {
                    return 0.0;
                }
                let melf = freq_to_mel(i as f64 * hz_per_bin);
                match usize::try_from(band[i]) {
                    Ok(c) => (centers[c + 1] - melf) / (centers[c + 1] - centers[c]),
                    Err(_) => (centers[0] - melf) / (centers[0] - mel_low),
                }
            })
            .collect();
        Some(Filterbank {
            start: start.max(0) as usize,
            end: end.max(-1) as usize,
            band,
            weights,
        })
    }
}

impl Op for Mfcc {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [spec, rate] = take_inputs(inputs)?;
        if spec.rank() != 3 {
            return Err(OpError::invalid(format!(
                "spectrogram must be 3-dimensional{:?}",
                spec.shape()
            )));
        }
        if rate.rank() != 0 {
            return Err(OpError::invalid(format!(
                "Input sample_rate should be a scalar tensor, got {:?} instead.",
                rate.shape()
            )));
        }
        let rate = rate.scalar_value::<i32>()?;
        let (channels, frames, bins) = (spec.shape()[0], spec.shape()[1], spec.shape()[2]);
        let k = self.coefficients;
        let fb = self.filterbank(bins, rate as f64);
        let fb = match fb {
            Some(fb) if (1..=self.filters).contains(&k) => fb,
            _ => {
                return Err(OpError::invalid(format!(
                    "Mfcc initialization failed for channel count {bins} and sample rate {rate}"
                )))
            }
        };
        // MfccDct: sqrt(2/n) cos(i pi/n (j + 0.5)).
        let nf = self.filters;
        let pi = 1f64.atan() * 4.0;
        let fnorm = (2.0 / nf as f64).sqrt();
        let arg = pi / nf as f64;
        let cosines: Vec<f64> = (0..k)
            .flat_map(|i| (0..nf).map(move |j| fnorm * (i as f64 * arg * (j as f64 + 0.5)).cos()))
            .collect();
        let n = channels * frames * k;
        cx.limits().check_alloc(n, DType::F32)?;
        let data = spec.as_slice::<f32>()?;
        let mut out = vec![0f32; n];
        let mut mel = vec![0f64; nf];
        for (row, o) in data.chunks_exact(bins.max(1)).zip(out.chunks_exact_mut(k)) {
            // TF's filterbank logs an error and leaves its output empty when the spectrum is
            // too short; the DCT of nothing is then all zeros.
            if bins <= fb.end {
                o.fill(0.0);
                continue;
            }
            mel.fill(0.0);
            for (i, &x) in row.iter().enumerate().take(fb.end + 1).skip(fb.start) {
                let v = (x as f64).sqrt();
                let weighted = v * fb.weights[i];
                let c = fb.band[i];
                if c >= 0 {
                    mel[c as usize] += weighted;
                }
                if ((c + 1) as usize) < nf {
                    mel[(c + 1) as usize] += v - weighted;
                }
            }
            for m in mel.iter_mut() {
                // `if (val < kFilterbankFloor)`: a NaN is not floored.
                *m = if *m < 1e-12 { 1e-12f64 } else { *m }.ln();
            }
            for (i, o) in o.iter_mut().enumerate() {
                let cos = &cosines[i * nf..(i + 1) * nf];
                let mut sum = 0.0;
                for (c, m) in cos.iter().zip(&mel) {
                    sum += c * m;
                }
                *o = sum as f32;
            }
        }
        Ok(tensors![Tensor::from_vec(&[channels, frames, k], out)?])
    }
}

//! Signal processing and audio: complex numbers (`Complex`, `Real`, `Imag`, `Angle`, `Conj`,
//! `ComplexAbs`), Fourier transforms (`FFT`/`IFFT`/`RFFT`/`IRFFT`, 1D to 3D), and the speech
//! front-end ops (`DecodeWav`, `AudioSpectrogram`, `Mfcc`).
//!
//! `tf.signal.stft`, `frame`, `hann_window`, `linear_to_mel_weight_matrix`,
//! `mfccs_from_log_mel_spectrograms` and `dct` compile to array ops plus the ops here (checked
//! on TF 2.21 graphs); complex `+ - * /`, `Exp`, `Neg` live with the other elementwise ops.
//! Transforms run in f64 (see `kernels::fft`), which keeps f32 results within TF's own
//! rounding error whatever the length.

mod audio;
mod complex;
mod fft;
mod wav;

use super::Registry;

pub(crate) fn register(r: &mut Registry) {
    complex::register(r);
    fft::register(r);
    audio::register(r);
    wav::register(r);
}

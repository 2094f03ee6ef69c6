//! Audio front ends against TF 2.21 goldens (`tools/make_fixtures_signal.py`): a YAMNet-style
//! one from a waveform (stft -> |.| -> mel -> log, MFCC, DCT, inverse stft) with every FFT op,
//! and a speech-commands-style one from WAV bytes (DecodeWav -> AudioSpectrogram -> Mfcc).
mod common;

use common::{run_fixture, Tolerance};

/// TF's transforms run in f32 (DUCC), ours in f64 rounded once: outputs differ by TF's own
/// rounding, which grows with the transform length and the signal's norm, not with each bin.
const SPECTRAL: Tolerance = Tolerance::F32 {
    rel: 1e-4,
    abs: 2e-5,
};

/// AudioSpectrogram and Mfcc compute in f64 in TF too: only the final f32 rounding differs.
const AUDIO_OPS: Tolerance = Tolerance::F32 {
    rel: 1e-5,
    abs: 1e-6,
};

#[test]
fn waveform_front_end() -> common::TestResult {
    run_fixture("audio_waveform", "serving_default", SPECTRAL)
}

#[test]
fn fft_ops() -> common::TestResult {
    run_fixture("audio_waveform", "fft", SPECTRAL)
}

#[test]
fn wav_bytes_front_end() -> common::TestResult {
    run_fixture("audio_wav", "serving_default", AUDIO_OPS)
}

#[test]
fn decode_wav_variants() -> common::TestResult {
    run_fixture("audio_wav", "decode", Tolerance::Exact)
}

/// Truncated, corrupt and hostile WAV bytes are typed errors naming the node, never panics.
#[test]
fn corrupt_wav_is_a_typed_error() -> common::TestResult {
    use tfhub::Tensor;
    let model = tfhub::load(common::fixture("audio_wav"))?;
    let good = common::read_json(&common::fixture("audio_wav").join("inputs.json"));
    let good = tfhub::api::json::tensor_from_json(&good["wav"], tfhub::DType::String)?;
    let bytes = good.as_slice::<tfhub::tensor::Bytes>()?[0].to_vec();
    let mut cases: Vec<Vec<u8>> = vec![
        Vec::new(),
        bytes[..10].to_vec(),
        bytes[..43].to_vec(),
        bytes[..bytes.len() - 1].to_vec(),
    ];
    // A data chunk claiming 2 GB.
    let mut huge = bytes.clone();
    huge[40..44].copy_from_slice(&0x7fff_fff0u32.to_le_bytes());
    cases.push(huge);
    // 8-bit samples, a float format, zero channels.
    for (at, v) in [(34usize, 8u8), (20, 3), (22, 0)] {
        let mut b = bytes.clone();
        b[at] = v;
        cases.push(b);
    }
    for case in cases {
        let input = Tensor::from_strings(&[], vec![case])?;
        let err = model
            .signature("serving_default")?
            .call(vec![("wav".to_string(), input)])
            .expect_err("corrupt WAV must fail");
        let mut msg = err.to_string();
        let mut src = std::error::Error::source(&err);
        while let Some(e) = src {
            msg += &format!(": {e}");
            src = e.source();
        }
        assert!(matches!(err, tfhub::Error::Node { .. }), "{msg}");
        assert!(msg.contains("DecodeWav"), "{msg}");
    }
    Ok(())
}

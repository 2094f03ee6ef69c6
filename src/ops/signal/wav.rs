//! `DecodeWav`: 16-bit PCM RIFF/WAVE bytes to `[samples, channels]` float audio in [-1, 1)
//! and the sample rate. TF reference: core/kernels/decode_wav_op.cc, core/lib/wav/wav_io.cc.
//!
//! The bytes are untrusted: every read is bounds-checked with TF's offset arithmetic (so the
//! same files fail, with TF's messages), the decoded sample count is checked against the data
//! actually present before anything is allocated, and the output against `Limits`.

use crate::ops::{take_inputs, BuildCtx, EvalCtx, Op, OpError, Registry, Tensors};
use crate::tensor::{Bytes, DType, Tensor};

pub(super) fn register(r: &mut Registry) {
    r.add("DecodeWav", DecodeWav::build);
}

#[derive(Debug)]
struct DecodeWav {
    desired_channels: i64,
    desired_samples: i64,
}

impl DecodeWav {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(1)?;
        Ok(Box::new(DecodeWav {
            desired_channels: cx.attr_opt_i64("desired_channels").unwrap_or(-1),
            desired_samples: cx.attr_opt_i64("desired_samples").unwrap_or(-1),
        }))
    }
}

/// The decoded file: interleaved samples.
struct Wav {
    samples: Vec<f32>,
    frames: u32,
    channels: u16,
    rate: u32,
}

/// A reader with wav_io.cc's `IncrementOffset` checks (offsets are C++ `int`s).
struct Reader<'a> {
    data: &'a [u8],
    offset: i64,
}

impl Reader<'_> {
    fn advance(&self, by: i64) -> Result<i64, OpError> {
        let size = self.data.len() as i64;
        if self.offset < 0 {
            return Err(OpError::invalid(format!(
                "Negative offsets are not allowed: {}",
                self.offset
            )));
        }
        if self.offset > size {
            return Err(OpError::invalid(format!(
                "Initial offset is outside data range: {}",
                self.offset
            )));
        }
        let new = self.offset + by;
        if new > size {
            return Err(OpError::invalid(
                "Data too short when trying to read string",
            ));
        }
        if new > i32::MAX as i64 {
            return Err(OpError::invalid(format!(
                "Offset too large, overflowed: {}",
                new as i32
            )));
        }
        Ok(new)
    }
    fn bytes(&mut self, n: usize) -> Result<&[u8], OpError> {
        let new = self.advance(n as i64)?;
        let s = &self.data[self.offset as usize..new as usize];
        self.offset = new;
        Ok(s)
    }
    fn u16(&mut self) -> Result<u16, OpError> {
        let b = self.bytes(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, OpError> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn expect(&mut self, text: &[u8]) -> Result<(), OpError> {
        let found = self.bytes(text.len())?;
        if found != text {
            return Err(OpError::invalid(format!(
                "Header mismatch: Expected {} but found {}",
                String::from_utf8_lossy(text),
                String::from_utf8_lossy(found)
            )));
        }
        Ok(())
    }
}

/// Chunks wav_io.cc skips between "WAVE" and "fmt ".
const SKIPPABLE: [&[u8]; 8] = [
    b"JUNK", b"bext", b"iXML", b"qlty", b"mext", b"levl", b"link", b"axml",
];

/// `DecodeLin16WaveAsFloatVector`.
fn decode(data: &[u8], cx: &EvalCtx<'_>) -> Result<Wav, OpError> {
    let mut r = Reader { data, offset: 0 };
    r.expect(b"RIFF")?;
    r.u32()?;
    r.expect(b"WAVE")?;
    let mut found = r.bytes(4)?.to_vec();
    while found != b"fmt " {
        if !SKIPPABLE.contains(&found.as_slice()) {
            return Err(OpError::invalid(format!(
                "Unexpected field {}",
                String::from_utf8_lossy(&found)
            )));
        }
        let size = r.u32()?;
        r.offset = r.advance(size as i64)?;
        found = r.bytes(4)?.to_vec();
    }
    let fmt_size = r.u32()?;
    if fmt_size != 16 && fmt_size != 18 {
        return Err(OpError::invalid(format!(
            "Bad format chunk size for WAV: Expected 16 or 18, but got{fmt_size}"
        )));
    }
    let format = r.u16()?;
    if format != 1 {
        return Err(OpError::invalid(format!(
            "Bad audio format for WAV: Expected 1 (PCM), but got{format}"
        )));
    }
    let channels = r.u16()?;
    if channels < 1 {
        return Err(OpError::invalid(
            "Bad number of channels for WAV: Expected at least 1, but got 0",
        ));
    }
    let rate = r.u32()?;
    let bytes_per_second = r.u32()?;
    let bytes_per_sample = r.u16()?;
    let bits = r.u16()?;
    if bits != 16 {
        return Err(OpError::invalid(format!(
            "Can only read 16-bit WAV files, but received {bits}"
        )));
    }
    let expected = (bits as u32 * channels as u32).div_ceil(8);
    if bytes_per_sample as u32 != expected {
        return Err(OpError::invalid(format!(
            "Bad bytes per sample in WAV header: Expected {expected} but got {bytes_per_sample}"
        )));
    }
    let expected_bps = (bytes_per_sample as u32).wrapping_mul(rate);
    if bytes_per_second != expected_bps {
        return Err(OpError::invalid(format!(
            "Bad bytes per second in WAV header: Expected {expected_bps} but got \
             {bytes_per_second} (sample_rate={rate}, bytes_per_sample={bytes_per_sample})"
        )));
    }
    if fmt_size == 18 {
        r.offset += 2;
    }
    let mut wav: Option<Wav> = None;
    while r.offset < data.len() as i64 {
        let id = r.bytes(4)?.to_vec();
        let size = r.u32()?;
        if size > i32::MAX as u32 {
            return Err(OpError::invalid(format!(
                "WAV data chunk '{}' is too large: {size} bytes, but the limit is {}",
                String::from_utf8_lossy(&id),
                i32::MAX
            )));
        }
        if id == b"data" {
            if wav.is_some() {
                return Err(OpError::invalid("More than one data chunk found in WAV"));
            }
            let frames = size / bytes_per_sample as u32;
            let count = frames.wrapping_mul(channels as u32);
            // Checked against the bytes present before allocating (TF does the same).
            r.advance(2 * count as i64)?;
            cx.limits().check_alloc(count as usize, DType::F32)?;
            let body = r.bytes(2 * count as usize)?;
            // Int16SampleToFloat: x * (1.0f / 32768).
            let samples = body
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 * (1.0 / 32768.0))
                .collect();
            wav = Some(Wav {
                samples,
                frames,
                channels,
                rate,
            });
        } else {
            // TF skips without the RIFF pad byte and lets the offset run past the end.
            r.offset += size as i64;
        }
    }
    wav.ok_or_else(|| OpError::invalid("No data chunk found in WAV"))
}

impl Op for DecodeWav {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [contents] = take_inputs(inputs)?;
        if contents.rank() != 0 {
            return Err(OpError::invalid(format!(
                "contents must be scalar, got shape {:?}",
                contents.shape()
            )));
        }
        let bytes = contents.scalar_value::<Bytes>()?;
        if bytes.len() > i32::MAX as usize {
            return Err(OpError::invalid(format!(
                "WAV contents are too large for int: {}",
                bytes.len()
            )));
        }
        let wav = decode(&bytes, cx)?;
        if self.desired_channels < -1 {
            return Err(OpError::invalid(format!(
                "desired_channels must be >= -1, got {}",
                self.desired_channels
            )));
        }
        if self.desired_samples < -1 {
            return Err(OpError::invalid(format!(
                "desired_samples must be >= -1, got {}",
                self.desired_samples
            )));
        }
        // int32 in TF: a count past i32::MAX wraps negative and is refused below.
        let samples = match self.desired_samples {
            -1 => wav.frames as i32 as i64,
            n => n,
        };
        let channels = match self.desired_channels {
            -1 => wav.channels as i64,
            n => n,
        };
        if samples < 0 {
            return Err(OpError::invalid(format!(
                "Output sample count must be >= 0, got {samples}"
            )));
        }
        let (samples, channels) = (samples as usize, channels as usize);
        let n = samples
            .checked_mul(channels)
            .ok_or_else(|| OpError::Limit("DecodeWav output size overflows".into()))?;
        cx.limits().check_alloc(n, DType::F32)?;
        let (frames, have) = (wav.frames as usize, wav.channels as usize);
        let mut out = vec![0f32; n];
        for s in 0..samples.min(frames) {
            for c in 0..channels {
                out[s * channels + c] = wav.samples[s * have + c.min(have - 1)];
            }
        }
        Ok(tensors![
            Tensor::from_vec(&[samples, channels], out)?,
            Tensor::scalar(wav.rate as i32),
        ])
    }
}

#!/usr/bin/env python3
"""Fixtures for detector post-processing (every NMS variant) and audio front ends.

Run from the repository root with the TF 2.21 venv:
    python tools/make_fixtures_signal.py [detection] [audio_waveform] [audio_wav]
Seeds are fixed; the goldens are what TF 2.21's CPU kernels return.
"""
import io
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixtures as mf  # noqa: E402
from make_fixtures import np, tf  # noqa: E402

NAN_MARK = -7.0  # JSON has no NaN: inputs equal to this become NaN inside the graph


def nanify(x):
    return tf.where(tf.equal(x, NAN_MARK), tf.constant(float("nan"), x.dtype), x)


def detection_inputs(rng, n):
    """Boxes with ties, duplicates, flipped corners, zero area and NaN; scores quantized to
    0.05 so many tie."""
    y0 = rng.uniform(0, 0.8, n)
    x0 = rng.uniform(0, 0.8, n)
    h = rng.uniform(0.05, 0.4, n)
    w = rng.uniform(0.05, 0.4, n)
    boxes = np.stack([y0, x0, y0 + h, x0 + w], 1).astype(np.float32)
    boxes[3] = boxes[2]  # duplicate box
    boxes[5] = boxes[5][[2, 3, 0, 1]]  # flipped corners
    boxes[6] = boxes[6][[0, 3, 2, 1]]  # x flipped only
    boxes[7, 2] = boxes[7, 0]  # zero height
    boxes[8] = [0.5, 0.5, 0.5, 0.5]  # a point
    boxes[9] = boxes[1] + np.float32(0.01)  # near-duplicate
    boxes[10] = boxes[1]
    scores = (np.round(rng.uniform(0, 1, n) * 20) / 20).astype(np.float32)
    scores[3] = scores[2]
    scores[10] = scores[1]
    scores[4] = NAN_MARK  # NaN score
    return boxes, scores


def build_detection():
    mf.seed_everything()
    out = mf.fresh_dir("detection")
    rng = np.random.RandomState(mf.SEED + 16)
    n = 32
    boxes, scores = detection_inputs(rng, n)
    nan_boxes = boxes.copy()
    nan_boxes[11, 1] = NAN_MARK  # a NaN coordinate

    raw = tf.raw_ops
    f32 = tf.float32

    @tf.function(input_signature=[tf.TensorSpec([None, 4], f32, name="boxes"),
                                  tf.TensorSpec([None], f32, name="scores")])
    def single(boxes, scores):
        boxes, scores = nanify(boxes), nanify(scores)
        r = {}
        r["v1"] = raw.NonMaxSuppression(boxes=boxes, scores=scores, max_output_size=10,
                                        iou_threshold=0.5)
        r["v2"] = raw.NonMaxSuppressionV2(boxes=boxes, scores=scores, max_output_size=20,
                                          iou_threshold=0.3)
        r["v3"] = raw.NonMaxSuppressionV3(boxes=boxes, scores=scores, max_output_size=20,
                                          iou_threshold=0.4, score_threshold=0.25)
        r["v3_none"] = raw.NonMaxSuppressionV3(boxes=boxes, scores=scores, max_output_size=20,
                                               iou_threshold=0.4, score_threshold=1.5)
        r["v3_zero"] = raw.NonMaxSuppressionV3(boxes=boxes, scores=scores, max_output_size=0,
                                               iou_threshold=0.4, score_threshold=0.0)
        r["v3_iou0"] = raw.NonMaxSuppressionV3(boxes=boxes, scores=scores, max_output_size=40,
                                               iou_threshold=0.0, score_threshold=-1.0)
        i4, n4 = raw.NonMaxSuppressionV4(boxes=boxes, scores=scores, max_output_size=25,
                                         iou_threshold=0.5, score_threshold=0.1,
                                         pad_to_max_output_size=True)
        r["v4_padded"], r["v4_valid"] = i4, n4
        i4, n4 = raw.NonMaxSuppressionV4(boxes=boxes, scores=scores, max_output_size=25,
                                         iou_threshold=0.5, score_threshold=0.1,
                                         pad_to_max_output_size=False)
        r["v4"], r["v4_valid_unpadded"] = i4, n4
        for name, sigma, st, iou in [("v5_soft", 0.5, 0.05, 1.0), ("v5_soft_iou", 0.3, 0.0, 0.5),
                                     ("v5_hard", 0.0, 0.2, 0.45)]:
            i5, s5, n5 = raw.NonMaxSuppressionV5(
                boxes=boxes, scores=scores, max_output_size=30, iou_threshold=iou,
                score_threshold=st, soft_nms_sigma=sigma, pad_to_max_output_size=True)
            r[name], r[name + "_scores"], r[name + "_valid"] = i5, s5, n5
        return r

    @tf.function(input_signature=[tf.TensorSpec([None, None], f32, name="overlaps"),
                                  tf.TensorSpec([None], f32, name="scores")])
    def overlaps(overlaps, scores):
        scores = nanify(scores)
        return {
            "selected": raw.NonMaxSuppressionWithOverlaps(
                overlaps=overlaps, scores=scores, max_output_size=12, overlap_threshold=0.6,
                score_threshold=0.2),
            "selected_all": raw.NonMaxSuppressionWithOverlaps(
                overlaps=overlaps, scores=scores, max_output_size=100, overlap_threshold=1.5,
                score_threshold=-1.0),
        }

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float16, name="boxes"),
                                  tf.TensorSpec([None], tf.float16, name="scores")])
    def half(boxes, scores):
        scores = nanify(scores)
        i5, s5, n5 = raw.NonMaxSuppressionV5(
            boxes=boxes, scores=scores, max_output_size=20,
            iou_threshold=tf.constant(0.5, tf.float16), score_threshold=tf.constant(0.1, tf.float16),
            soft_nms_sigma=tf.constant(0.5, tf.float16), pad_to_max_output_size=False)
        i3 = raw.NonMaxSuppressionV3(boxes=boxes, scores=scores, max_output_size=20,
                                     iou_threshold=tf.constant(0.4, tf.float16),
                                     score_threshold=tf.constant(0.2, tf.float16))
        return {"v5": i5, "v5_scores": s5, "v5_valid": n5, "v3": i3}

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 4], f32, name="boxes"),
                                  tf.TensorSpec([None, None, None], f32, name="scores")])
    def combined(boxes, scores):
        scores = nanify(scores)
        r = {}
        for name, per_class, total, iou, st, pad, clip, q1 in [
            ("default", 5, 12, 0.5, 0.2, False, True, False),
            ("pad_per_class", 3, 100, 0.5, 0.1, True, True, False),
            ("pad_per_class_small_total", 4, 6, 0.4, 0.1, True, False, False),
            ("noclip_shared_boxes", 6, 30, 0.6, 0.0, False, False, True),
            ("all_below", 5, 7, 0.5, 1.5, False, True, True),
        ]:
            b = boxes[:, :, :1] if q1 else boxes
            nb, ns, nc, nv = raw.CombinedNonMaxSuppression(
                boxes=b, scores=scores, max_output_size_per_class=per_class,
                max_total_size=total, iou_threshold=iou, score_threshold=st,
                pad_per_class=pad, clip_boxes=clip)
            r[name + "_boxes"], r[name + "_scores"] = nb, ns
            r[name + "_classes"], r[name + "_valid"] = nc, nv
        return r

    m = tf.Module()
    sigs = {"serving_default": single, "overlaps": overlaps, "half": half, "combined": combined}
    tf.saved_model.save(m, out, signatures=sigs)

    ov = rng.uniform(0, 1, (n, n)).astype(np.float32)
    ov = np.round((ov + ov.T) * 10) / 20  # symmetric, with ties
    np.fill_diagonal(ov, 1.0)
    hb, hs = detection_inputs(rng, 24)
    batch, nb, classes = 2, 20, 3
    cb = []
    for _ in range(batch * classes):
        b, _ = detection_inputs(rng, nb)
        cb.append(b)
    cboxes = np.stack(cb, 0).reshape(batch, classes, nb, 4).transpose(0, 2, 1, 3)
    cboxes = cboxes * 1.2 - 0.1  # some corners outside [0, 1] to clip
    cscores = (np.round(rng.uniform(0, 1, (batch, nb, classes)) * 10) / 10).astype(np.float32)
    cscores[0, 3, 1] = NAN_MARK
    inputs = {"boxes": nan_boxes.tolist(), "scores": scores.tolist()}
    mf.finish_model(out, inputs, extra=[
        ("overlaps", {"overlaps": ov.tolist(), "scores": scores.tolist()}),
        ("half", {"boxes": hb.astype(np.float16).astype(float).tolist(),
                  "scores": hs.astype(np.float16).astype(float).tolist()}),
        ("combined", {"boxes": cboxes.astype(np.float32).tolist(), "scores": cscores.tolist()}),
    ])
    return out


def build_audio_waveform():
    """YAMNet-style front end from a waveform: stft (Hann, 25 ms / 10 ms, fft 512) ->
    magnitude -> mel (64 bands, 125-7500 Hz) -> log; MFCCs and an orthonormal DCT-II of the log
    mel, tf.signal.frame, inverse_stft; plus every FFT op on complex64/complex128 tensors built
    inside the graph (JSON has no complex literal in TF)."""
    mf.seed_everything()
    out = mf.fresh_dir("audio_waveform")
    rng = np.random.RandomState(mf.SEED + 5)
    sr = 16000
    t = np.arange(1600) / sr
    wave = np.stack([
        0.5 * np.sin(2 * np.pi * 440 * t) + 0.1 * rng.randn(t.size),
        0.3 * np.sin(2 * np.pi * 1234.5 * t) * np.exp(-t * 20) + 0.05 * rng.randn(t.size),
    ]).astype(np.float32)

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32, name="waveform")])
    def front_end(waveform):
        stft = tf.signal.stft(waveform, 400, 160, 512, window_fn=tf.signal.hann_window,
                              pad_end=True)
        mag = tf.abs(stft)
        mel_w = tf.signal.linear_to_mel_weight_matrix(64, 257, sr, 125.0, 7500.0)
        log_mel = tf.math.log(tf.tensordot(mag, mel_w, 1) + 0.001)
        mfcc = tf.signal.mfccs_from_log_mel_spectrograms(log_mel)[..., :13]
        inv = tf.signal.inverse_stft(stft, 400, 160, 512,
                                     window_fn=tf.signal.inverse_stft_window_fn(160))
        return {
            "log_mel": log_mel,
            "mfcc": mfcc,
            "dct2": tf.signal.dct(log_mel[:, :4], type=2, norm="ortho"),
            "dct3": tf.signal.dct(log_mel[:, :2, :16], type=3),
            "frames": tf.signal.frame(waveform[:, :800], 100, 60, pad_end=True),
            "stft_real": tf.math.real(stft[:, :3]),
            "stft_imag": tf.math.imag(stft[:, :3]),
            "stft_angle": tf.math.angle(stft[:, :2, :40]),
            "stft_conj_imag": tf.math.imag(tf.math.conj(stft[:, :1, :40])),
            "inverse": inv[:, 400:1200],
        }

    @tf.function(input_signature=[tf.TensorSpec([2, 6, 10], tf.float32, name="re"),
                                  tf.TensorSpec([2, 6, 10], tf.float32, name="im"),
                                  tf.TensorSpec([3, 12], tf.float64, name="x64")])
    def fft(re, im, x64):
        z = tf.complex(re, im)
        r = {}
        for name, f in [("fft", tf.signal.fft), ("ifft", tf.signal.ifft),
                        ("fft2d", tf.signal.fft2d), ("ifft2d", tf.signal.ifft2d),
                        ("fft3d", tf.signal.fft3d), ("ifft3d", tf.signal.ifft3d)]:
            y = f(z)
            r[name + "_re"], r[name + "_im"] = tf.math.real(y), tf.math.imag(y)
        y = tf.signal.rfft(re, fft_length=[8])  # crops the last axis
        r["rfft_re"], r["rfft_abs"] = tf.math.real(y), tf.abs(y)
        y = tf.signal.rfft2d(re, fft_length=[5, 10])
        r["rfft2d_re"], r["rfft2d_im"] = tf.math.real(y), tf.math.imag(y)
        y = tf.signal.rfft3d(re, fft_length=[2, 6, 9])
        r["rfft3d_re"], r["rfft3d_im"] = tf.math.real(y), tf.math.imag(y)
        r["irfft"] = tf.signal.irfft(z, fft_length=[18])
        r["irfft_odd"] = tf.signal.irfft(z, fft_length=[9])
        r["irfft2d"] = tf.signal.irfft2d(z, fft_length=[4, 16])
        r["irfft3d"] = tf.signal.irfft3d(z, fft_length=[2, 6, 10])
        z64 = tf.complex(x64, x64 * 0.5)
        y = tf.signal.fft(z64 * z64 - z64 / tf.complex(x64 + 3.0, tf.ones_like(x64)))
        r["fft128_re"], r["fft128_im"] = tf.math.real(y), tf.math.imag(y)
        y = tf.signal.rfft(x64, fft_length=[12])
        r["rfft128_abs"] = tf.abs(y)
        r["irfft128"] = tf.signal.irfft(y, fft_length=[12])
        e = tf.exp(tf.complex(re[0, 0], -im[0, 0]))
        r["exp_re"], r["exp_im"] = tf.math.real(e), tf.math.imag(e)
        return r

    m = tf.Module()
    tf.saved_model.save(m, out, signatures={"serving_default": front_end, "fft": fft})
    mf.finish_model(out, {"waveform": wave.tolist()}, extra=[
        ("fft", {"re": rng.randn(2, 6, 10).astype(np.float32).tolist(),
                 "im": rng.randn(2, 6, 10).astype(np.float32).tolist(),
                 "x64": rng.randn(3, 12).tolist()}),
    ])
    return out


def wav_bytes(samples, rate, channels, extra_chunks=(), fmt18=False, junk=False, pad=b""):
    """16-bit PCM RIFF/WAVE bytes, optionally with a JUNK chunk before "fmt ", an 18-byte
    format chunk and extra chunks (list chunks) before "data"."""
    data = np.asarray(samples, dtype="<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * 2 * channels, 2 * channels, 16)
    if fmt18:
        fmt += b"\0\0"
    body = b"WAVE"
    if junk:
        body += b"JUNK" + struct.pack("<I", 6) + b"\0" * 6
    body += b"fmt " + struct.pack("<I", len(fmt)) + fmt
    for cid, payload in extra_chunks:
        body += cid + struct.pack("<I", len(payload)) + payload
    body += b"data" + struct.pack("<I", len(data)) + data + pad
    return b"RIFF" + struct.pack("<I", len(body)) + body


def build_audio_wav():
    """Speech-commands-style front end from WAV bytes: DecodeWav(desired_channels=1,
    desired_samples=4000) -> AudioSpectrogram(480, 160, squared) -> Mfcc(13), and a second
    signature decoding odd files (stereo, JUNK, 18-byte fmt, LIST chunk, short data padded with
    zeros, channels duplicated)."""
    mf.seed_everything()
    out = mf.fresh_dir("audio_wav")
    rng = np.random.RandomState(mf.SEED + 6)
    sr = 16000
    t = np.arange(4200) / sr
    x = 0.4 * np.sin(2 * np.pi * 700 * t) + 0.2 * np.sin(2 * np.pi * 2500 * t) + 0.05 * rng.randn(t.size)
    pcm = np.clip(np.round(x * 32767), -32768, 32767).astype(np.int16)
    pcm[:4] = [-32768, 32767, 0, -1]

    @tf.function(input_signature=[tf.TensorSpec([], tf.string, name="wav")])
    def speech(wav):
        audio, rate = tf.audio.decode_wav(wav, desired_channels=1, desired_samples=4000)
        spec = tf.raw_ops.AudioSpectrogram(input=audio, window_size=480, stride=160,
                                           magnitude_squared=True)
        mfcc = tf.raw_ops.Mfcc(spectrogram=spec, sample_rate=rate, dct_coefficient_count=13)
        mag = tf.raw_ops.AudioSpectrogram(input=audio, window_size=200, stride=300,
                                          magnitude_squared=False)
        mfcc_wide = tf.raw_ops.Mfcc(spectrogram=spec, sample_rate=rate,
                                    upper_frequency_limit=7600.0, lower_frequency_limit=60.0,
                                    filterbank_channel_count=30, dct_coefficient_count=30)
        return {"mfcc": mfcc, "mfcc_wide": mfcc_wide, "spectrogram_head": spec[:, :3],
                "magnitude": mag, "sample_rate": rate, "audio_head": audio[:50]}

    @tf.function(input_signature=[tf.TensorSpec([], tf.string, name="wav")])
    def decode(wav):
        a, r = tf.audio.decode_wav(wav)
        b, _ = tf.audio.decode_wav(wav, desired_channels=3, desired_samples=40)
        c, _ = tf.audio.decode_wav(wav, desired_channels=1, desired_samples=5)
        return {"audio": a, "rate": r, "padded": b, "mono_head": c}

    m = tf.Module()
    tf.saved_model.save(m, out, signatures={"serving_default": speech, "decode": decode})
    import base64
    main_wav = wav_bytes(pcm, sr, 1)
    stereo = np.stack([pcm[:30], -pcm[100:130]], 1).reshape(-1)
    odd_wav = wav_bytes(stereo, 8000, 2, extra_chunks=[(b"LIST", b"INFOabcd")], fmt18=True,
                        junk=True)
    loaded = tf.saved_model.load(out)
    for sig, wav in [("serving_default", main_wav), ("decode", odd_wav)]:
        suffix = "" if sig == "serving_default" else "_" + sig
        mf.write_json(os.path.join(out, f"inputs{suffix}.json"),
                      {"wav": {"b64": base64.b64encode(wav).decode()}})
        res = loaded.signatures[sig](wav=tf.constant(wav))
        mf.write_json(os.path.join(out, f"golden{suffix}.json"),
                      {k: mf.tensor_to_json(v) for k, v in res.items()})
    mf.write_signatures_json(out)
    mf.write_variables_json(out)
    return out


BUILDERS = {"detection": build_detection, "audio_waveform": build_audio_waveform,
            "audio_wav": build_audio_wav}


def main(argv):
    names = argv[1:] or list(BUILDERS)
    for name in names:
        print("built", BUILDERS[name]())


if __name__ == "__main__":
    main(sys.argv)

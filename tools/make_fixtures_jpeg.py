#!/usr/bin/env python3
"""Regenerates tests/fixtures/image/jpeg_options/ with real TensorFlow 2.21: DecodeJpeg and
DecodeAndCropJpeg under every attribute that changes pixels, on small files of every kind
tfhub's JPEG decoder handles, with TF's outputs as goldens (held bit-exact in tests/image.rs).

    /work/venv/bin/python tools/make_fixtures_jpeg.py   (any python with TF 2.21 + Pillow)

Files (Pillow / TF encoders, seeded pixels): baseline 4:2:0 (odd size), 4:2:2 progressive,
4:4:4 with restart markers, 4:1:1, grayscale progressive, CMYK (Adobe, inverted), and an
RGB file without JFIF (Adobe transform 0). Outputs: ratio 1/2/4/8 x fancy_upscaling on/off
x dct_method fast/accurate, channels 1 and 3, and crop windows (MCU-unaligned left edges).
The wider sweep (sizes, qualities, random crops) is tools/jpeg_sweep.py.
"""
import io
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixtures as mf  # noqa: E402  (sets TF env vars before importing TF)
import make_fixtures_image as mfi  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402


def pix(h, w, c, seed):
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    ch = []
    for k in range(c):
        v = 128 + 100 * np.sin(x / (2.0 + k) + y / (3.0 + 2 * k)) + rng.randn(h, w) * 25
        v[h // 3: h // 2, w // 4: w // 2] = 20 + 70 * k
        ch.append(v)
    return np.clip(np.stack(ch, -1), 0, 255).astype(np.uint8)


def pil(arr, mode=None, **kw):
    b = io.BytesIO()
    im = Image.fromarray(arr if arr.shape[-1] != 1 else arr[..., 0])
    if mode:
        im = im.convert(mode)
    im.save(b, "JPEG", **kw)
    return b.getvalue()


def files():
    rgb = pix(23, 19, 3, 1)
    return {
        "b420": tf.io.encode_jpeg(pix(23, 19, 3, 2), quality=80).numpy(),
        "p422": pil(rgb, quality=85, subsampling=1, progressive=True),
        "r444": pil(pix(21, 26, 3, 3), quality=90, subsampling=0, restart_marker_blocks=2),
        "b411": pil(rgb, quality=85, subsampling="4:1:1"),
        "gray": pil(pix(19, 22, 1, 4), quality=75, progressive=True),
        "cmyk": pil(rgb, mode="CMYK", quality=90),
        "rgb": pil(rgb, quality=90, subsampling=0, keep_rgb=True),
    }


NAMES = list(files())


class JpegModule(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([], tf.string, name=n) for n in NAMES])
    def serve(self, *args):
        out = {}
        for n, b in zip(NAMES, args):
            for ratio in (1, 2, 4, 8):
                for fancy in (True, False):
                    for dct in ("", "INTEGER_ACCURATE"):
                        k = f"{n}_r{ratio}_{'f' if fancy else 'b'}_{'islow' if dct else 'ifast'}"
                        out[k] = tf.io.decode_jpeg(b, ratio=ratio, fancy_upscaling=fancy,
                                                   dct_method=dct)
            if n not in ("gray", "cmyk"):
                out[n + "_gray"] = tf.io.decode_jpeg(b, channels=1)
                out[n + "_gray_r2"] = tf.io.decode_jpeg(b, channels=1, ratio=2)
            for i, win in enumerate([[3, 5, 11, 9], [0, 13, 19, 6], [7, 1, 1, 17]]):
                for fancy in (True, False):
                    out[f"{n}_crop{i}_{'f' if fancy else 'b'}"] = \
                        tf.image.decode_and_crop_jpeg(b, win, fancy_upscaling=fancy)
        return out


def main():
    tf.config.experimental.enable_op_determinism()
    print(f"TensorFlow {tf.__version__}")
    out = mfi.fresh("jpeg_options")
    fs = files()
    module = JpegModule()
    tf.saved_model.save(module, out, signatures={"serving_default": module.serve})
    mfi.finish(out, {n: mf.bytes_to_json(fs[n]) for n in NAMES}, fs)
    print("done")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Regenerates tests/fixtures/image/webp_decode/ with real TensorFlow 2.21: DecodeWebP and
the other decode ops on WebP bytes (TF decodes WebP under every decode op), on lossy (VP8,
with and without an ALPH chunk), lossless (VP8L) and animated files (libwebp's animation
encoder, through Pillow, picks sub-frame rectangles, blending and disposal itself; the
frames here change only in parts and carry transparency). Outputs: DecodeWebP with channels
0 / 3 / 4 as the file allows, DecodeImage with expand_animations on and off, DecodeJpeg and
DecodePng on WebP bytes. Lossless outputs are held exact in tests/image.rs, lossy ones to
the measured agreement printed there.

    /work/venv/bin/python tools/make_fixtures_webp.py
"""
import base64
import io
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixtures as mf  # noqa: E402  (sets TF env vars before importing TF)
import make_fixtures_image as mfi  # noqa: E402
import make_fixtures_jpeg as mfj  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402

R = tf.raw_ops


def webp(arr, **kw):
    b = io.BytesIO()
    Image.fromarray(arr).save(b, "WEBP", **kw)
    return b.getvalue()


def anim(n, h, w, seed, **kw):
    base = mfj.pix(h, w, 4, seed)
    base[..., 3] = np.where(base[..., 3] > 60, 255, base[..., 3])
    frames = []
    for i in range(n):
        f = base.copy()
        y0, x0 = 2 + 3 * i, 1 + 4 * i
        f[y0:y0 + 5, x0:x0 + 6, :3] = mfj.pix(5, 6, 3, seed + 10 + i)
        f[y0:y0 + 2, x0:x0 + 3, 3] = 0  # fully transparent patch
        frames.append(Image.fromarray(f))
    b = io.BytesIO()
    frames[0].save(b, "WEBP", save_all=True, append_images=frames[1:], duration=80, **kw)
    return b.getvalue()


def files():
    return {
        "lossy_rgb": webp(mfj.pix(23, 19, 3, 1), quality=80),
        "lossy_rgba": webp(mfj.pix(17, 26, 4, 2), quality=70),
        "lossy_big": webp(mfj.pix(61, 83, 3, 7), quality=90, method=6),
        "lossless_rgb": webp(mfj.pix(13, 21, 3, 3), lossless=True),
        "lossless_rgba": webp(mfj.pix(15, 9, 4, 4), lossless=True),
        "anim_lossless": anim(4, 16, 20, 5, lossless=True),
        "anim_lossy": anim(3, 18, 22, 6, quality=60),
    }


NAMES = list(files())


class WebpModule(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([], tf.string, name=n) for n in NAMES])
    def serve(self, *args):
        out = {}
        for n, b in zip(NAMES, args):
            c = 4 if ("rgba" in n or "anim" in n) else 3
            out[n] = R.DecodeWebP(contents=b)
            if n == "lossy_big":
                continue  # agreement statistics only; no copies under other ops
            out[n + "_c"] = R.DecodeWebP(contents=b, channels=c)
            out[n + "_image"] = tf.io.decode_image(b)
            out[n + "_image_first"] = tf.io.decode_image(b, expand_animations=False)
            if "anim" not in n:
                out[n + "_jpeg_op"] = R.DecodeJpeg(contents=b)
                out[n + "_png_op"] = R.DecodePng(contents=b, channels=c)
        return out


def main():
    print(f"TensorFlow {tf.__version__}")
    out = mfi.fresh("webp_decode")
    feed = {k: {"b64": base64.b64encode(v).decode("ascii")} for k, v in files().items()}
    module = WebpModule()
    tf.saved_model.save(module, out, signatures={"serving_default": module.serve})
    mfi.finish(out, feed, feed={k: base64.b64decode(v["b64"]) for k, v in feed.items()})
    print("done")


if __name__ == "__main__":
    main()

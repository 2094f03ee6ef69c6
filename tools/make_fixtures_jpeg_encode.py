#!/usr/bin/env python3
"""Regenerates tests/fixtures/image/jpeg_encode/ with real TensorFlow 2.21: EncodeJpeg and
EncodeJpegVariableQuality under every attribute that changes bytes (quality 0..100, 4:2:0 and
4:4:4 chroma, grayscale, optimize_size, progressive, format, density, XMP), on small images of odd sizes
(1x1, partial MCUs in both directions, noise and smooth content). The goldens are TF's JPEG
bytes (held byte-exact in tests/image.rs) and TF's decodes of its own encodes (the round trip
through tfhub's decoder must give the same pixels).

    /work/venv/bin/python tools/make_fixtures_jpeg_encode.py
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixtures as mf  # noqa: E402  (sets TF env vars before importing TF)
import make_fixtures_image as mfi  # noqa: E402
import make_fixtures_jpeg as mfj  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

R = tf.raw_ops

# name -> (height, width, channels, seed); odd seeds are noise, even seeds smooth pictures.
IMAGES = {
    "rgb_23x19": (23, 19, 3, 2),
    "rgb_17x33": (17, 33, 3, 3),
    "rgb_1x1": (1, 1, 3, 4),
    "rgb_16x16": (16, 16, 3, 5),
    "rgb_9x40": (9, 40, 3, 6),
    "gray_13x21": (13, 21, 1, 8),
    "gray_8x8": (8, 8, 1, 9),
}


def image(h, w, c, seed):
    if seed % 2:
        return np.random.RandomState(seed).randint(0, 256, (h, w, c)).astype(np.uint8)
    return mfj.pix(h, w, c, seed)


class EncodeModule(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None, None, c], tf.uint8, name=n)
                                  for n, (_, _, c, _) in IMAGES.items()]
                 + [tf.TensorSpec([], tf.int32, name="quality")])
    def serve(self, *args):
        imgs = dict(zip(IMAGES, args[:-1]))
        quality = args[-1]
        out = {}
        for n, img in imgs.items():
            for q in (0, 25, 50, 75, 95, 100):
                out[f"{n}_q{q}"] = tf.io.encode_jpeg(img, quality=q)
            out[n + "_opt"] = tf.io.encode_jpeg(img, quality=80, optimize_size=True)
            # progressive=True: jpeg_simple_progression's scans, tables always optimised.
            out[n + "_prog"] = tf.io.encode_jpeg(img, quality=75, progressive=True)
            out[n + "_var"] = R.EncodeJpegVariableQuality(images=img, quality=quality)
            if n.startswith("rgb"):
                out[n + "_444"] = tf.io.encode_jpeg(img, quality=90, chroma_downsampling=False)
                out[n + "_444_opt"] = tf.io.encode_jpeg(img, quality=60, chroma_downsampling=False,
                                                        optimize_size=True)
                out[n + "_fmt"] = tf.io.encode_jpeg(img, format="rgb", quality=70)
                out[n + "_444_prog"] = tf.io.encode_jpeg(img, quality=90, progressive=True,
                                                          chroma_downsampling=False)
            else:
                out[n + "_fmt"] = tf.io.encode_jpeg(img, format="grayscale", quality=70)
            rt = tf.io.encode_jpeg(img, quality=85)
            out[n + "_roundtrip"] = tf.io.decode_jpeg(rt, channels=img.shape[-1])
        out["meta"] = tf.io.encode_jpeg(imgs["rgb_23x19"], density_unit="cm", x_density=72,
                                        y_density=70000, xmp_metadata="<x:xmpmeta>é</x:xmpmeta>")
        # Scalar string outputs become [1]: make_fixtures' JSON writer takes arrays.
        return {k: tf.reshape(v, [1]) if v.dtype == tf.string else v for k, v in out.items()}


def main():
    print(f"TensorFlow {tf.__version__}")
    out = mfi.fresh("jpeg_encode")
    feed = {n: image(*spec).tolist() for n, spec in IMAGES.items()}
    feed["quality"] = 33
    module = EncodeModule()
    tf.saved_model.save(module, out, signatures={"serving_default": module.serve})
    mfi.finish(out, feed)
    print("done")


if __name__ == "__main__":
    main()

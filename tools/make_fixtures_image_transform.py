#!/usr/bin/env python3
"""Regenerates tests/fixtures/image/image_transform/ with real TensorFlow 2.21:
ImageProjectiveTransformV2 / V3 (what Keras RandomRotation / RandomZoom / RandomTranslation /
RandomShear compile to) with every fill mode and interpolation on float32 and uint8 images.

    /work/venv/bin/python tools/make_fixtures_image_transform.py
"""
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixtures as mf  # noqa: E402  (sets TF env vars before importing TF)
import make_fixtures_image as mfi  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

R = tf.raw_ops


def rotation(theta, h, w):
    """The transform Keras' RandomRotation builds (rotation about the centre)."""
    c, s = math.cos(theta), math.sin(theta)
    x0 = ((w - 1) - (c * (w - 1) - s * (h - 1))) / 2.0
    y0 = ((h - 1) - (s * (w - 1) + c * (h - 1))) / 2.0
    return [c, -s, x0, s, c, y0, 0.0, 0.0]


def transforms(h, w):
    return np.array([
        rotation(0.4, h, w),
        [0.7, 0.0, 1.3, 0.0, 1.25, -0.8, 0.0, 0.0],      # zoom + translate
        [1.0, 0.3, -2.0, -0.2, 1.0, 1.5, 0.0, 0.0],      # shear
        [1.0, 0.1, 0.5, 0.05, 0.9, 0.2, 0.01, -0.02],    # projective
    ], np.float32)


class TransformModule(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([4, 7, 9, 2], tf.float32),
                                  tf.TensorSpec([4, 7, 9, 3], tf.uint8),
                                  tf.TensorSpec([4, 8], tf.float32)])
    def serve(self, img, img_u8, t):
        out = {}
        for mode in ("REFLECT", "WRAP", "CONSTANT", "NEAREST"):
            for interp in ("NEAREST", "BILINEAR"):
                k = f"{mode.lower()}_{interp.lower()}"
                out[k] = R.ImageProjectiveTransformV3(
                    images=img, transforms=t, output_shape=[7, 9], fill_value=-1.5,
                    interpolation=interp, fill_mode=mode)
                out[k + "_u8"] = R.ImageProjectiveTransformV3(
                    images=img_u8, transforms=t, output_shape=[6, 11], fill_value=77.9,
                    interpolation=interp, fill_mode=mode)
        out["v2_bilinear"] = R.ImageProjectiveTransformV2(
            images=img, transforms=t[:1], output_shape=[5, 12], interpolation="BILINEAR",
            fill_mode="CONSTANT")
        out["v2_nearest_u8"] = R.ImageProjectiveTransformV2(
            images=img_u8, transforms=t, output_shape=[7, 9], interpolation="NEAREST",
            fill_mode="REFLECT")
        return out


def main():
    tf.config.experimental.enable_op_determinism()
    print(f"TensorFlow {tf.__version__}")
    out = mfi.fresh("image_transform")
    rng = np.random.RandomState(7)
    img = (rng.rand(4, 7, 9, 2) * 10 - 3).astype(np.float32)
    img_u8 = rng.randint(0, 256, (4, 7, 9, 3)).astype(np.uint8)
    feed = {"img": img, "img_u8": img_u8, "t": transforms(7, 9)}
    module = TransformModule()
    tf.saved_model.save(module, out, signatures={"serving_default": module.serve})
    mfi.finish(out, {k: v.tolist() for k, v in feed.items()})
    print("done")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Regenerates tests/fixtures/image/image_glimpse/ with real TensorFlow 2.21: ExtractGlimpse
(v1) and ExtractGlimpseV2 under every combination of `centered` / `normalized`, windows
inside the image, touching its edges, hanging over every side, larger than the image and
entirely outside it, with odd image and window sizes and fractional / negative offsets.
Windows reaching outside the image use noise="zero" (TF's uniform and gaussian noise are
unseeded random numbers); the default uniform noise is exercised on windows the image covers.

    /work/venv/bin/python tools/make_fixtures_image_glimpse.py
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixtures as mf  # noqa: E402  (sets TF env vars before importing TF)
import make_fixtures_image as mfi  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

R = tf.raw_ops

# Offsets (y, x) per image, batch of 6, in each coordinate convention.
OFFSETS = {
    # centered + normalized: -1..1
    "cn": [[0.0, 0.0], [-0.9, 0.3], [1.2, -1.5], [0.55, 0.99], [-3.0, 4.0], [0.13, -0.41]],
    # normalized, not centered: 0..1
    "n": [[0.0, 0.0], [0.5, 0.5], [0.95, 0.1], [-0.2, 0.7], [1.5, -0.6], [0.33, 0.66]],
    # centered, pixels from the centre
    "c": [[0.0, 0.0], [-2.5, 3.7], [4.0, -6.0], [-0.4, 0.4], [20.0, -20.0], [1.9, -2.9]],
    # plain pixels from the top-left corner
    "p": [[0.0, 0.0], [2.6, 3.2], [-1.7, 5.0], [6.0, -2.2], [-9.0, 30.0], [4.0, 0.0]],
}
SIZES = [[3, 4], [5, 2], [9, 12], [1, 1]]


class GlimpseModule(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([6, 7, 10, 2], tf.float32, name="images")]
                 + [tf.TensorSpec([6, 2], tf.float32, name=k) for k in OFFSETS])
    def serve(self, images, *offs):
        out = {}
        for (k, o) in zip(OFFSETS, offs):
            centered, normalized = "c" in k, "n" in k
            for (h, w) in SIZES:
                for v1 in (False, True):
                    op = R.ExtractGlimpse if v1 else R.ExtractGlimpseV2
                    out[f"{k}_{h}x{w}_{'v1' if v1 else 'v2'}"] = op(
                        input=images, size=[h, w], offsets=o, centered=centered,
                        normalized=normalized, uniform_noise=False, noise="zero")
        # Default (uniform) noise on windows the image covers, including one that ends
        # exactly at the right and bottom edges (a "partial overlap" in TF's terms).
        inside = tf.constant([[0.0, 0.0], [2.0, 3.0], [4.0, 6.0], [1.0, 0.0], [0.0, 6.0],
                              [3.0, 2.0]])
        out["inside_uniform_v2"] = R.ExtractGlimpseV2(
            input=images, size=[3, 4], offsets=inside, centered=False, normalized=False)
        # v1 always subtracts half the window (1.5, 2): the same corners.
        out["inside_gaussian_v1"] = R.ExtractGlimpse(
            input=images, size=[3, 4], offsets=inside + [[1.5, 2.0]], centered=False,
            normalized=False, uniform_noise=False, noise="")
        return out


def main():
    print(f"TensorFlow {tf.__version__}")
    out = mfi.fresh("image_glimpse")
    rng = np.random.RandomState(11)
    feed = {"images": (rng.rand(6, 7, 10, 2) * 10 - 2).astype(np.float32).tolist()}
    feed.update({k: v for k, v in OFFSETS.items()})
    module = GlimpseModule()
    tf.saved_model.save(module, out, signatures={"serving_default": module.serve})
    mfi.finish(out, feed)
    print("done")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Builds benchmark-sized models (not committed) into a directory, with inputs.json.

  /work/venv/bin/python tools/make_bench_models.py /tmp/tfhub-bench
writes mlp_4x1024/ (Keras 3 export: 1024 inputs, 4 Dense(1024, relu) layers, Dense(10)) and
cnn/ (the fixture's CNN architecture at 64x64x3), each with inputs.json for batch 1.
Then: tools/bench_vs_tf.py /tmp/tfhub-bench/mlp_4x1024 --inputs .../inputs.json --batch 1 --batch 64
"""
import json
import os
import sys

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402


def export(model, out, x):
    model.export(out, verbose=False)
    with open(os.path.join(out, "inputs.json"), "w") as f:
        json.dump({_input_name(out): x.tolist()}, f)


def _input_name(out):
    sig = tf.saved_model.load(out).signatures["serving_default"]
    (name,) = sig.structured_input_signature[1].keys()
    return name


def main(root):
    keras.utils.set_random_seed(0)
    os.makedirs(root, exist_ok=True)
    rng = np.random.RandomState(0)
    inp = keras.Input((1024,))
    h = inp
    for _ in range(4):
        h = keras.layers.Dense(1024, activation="relu")(h)
    mlp = keras.Model(inp, keras.layers.Dense(10)(h))
    export(mlp, os.path.join(root, "mlp_4x1024"), rng.standard_normal((1, 1024)).astype(np.float32))
    inp = keras.Input((64, 64, 3))
    h = keras.layers.Conv2D(32, 3, strides=2, padding="same")(inp)
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.ReLU(6.0)(h)
    h = keras.layers.DepthwiseConv2D(3, padding="same")(h)
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.ReLU(6.0)(h)
    h = keras.layers.Conv2D(64, 1)(h)
    h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    cnn = keras.Model(inp, keras.layers.Dense(10)(h))
    export(cnn, os.path.join(root, "cnn"), rng.standard_normal((1, 64, 64, 3)).astype(np.float32))
    print(root)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/tfhub-bench")

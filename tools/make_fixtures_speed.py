#!/usr/bin/env python3
"""Fixtures for the dense-speed work (issue #17): small models whose structure exercises the
load-time and plan-time rewrites, checked against TF 2.21 goldens.

  /work/venv/bin/python tools/make_fixtures_speed.py

efficientnet_block/  Keras 3: an EfficientNet-style MBConv block at 16x16x8 (expand 1x1 conv,
                     batch norm, swish, depthwise 3x3, batch norm, swish, squeeze-and-excite
                     with swish and sigmoid, projection 1x1 conv, batch norm, residual add),
                     then a second block with stride 2, global pooling and a dense head; batch
                     norms calibrated (make_fixtures.calibrate_batchnorm). Exercises variable
                     freezing (decomposed batch norm on frozen weights) and swish fusion.
gelu_encoder/        Keras 3: one post-LN transformer block (MultiHeadAttention, exact GELU
                     feed-forward, LayerNormalization) at seq 12, hidden 32: Erfc, Softmax,
                     Einsum/BatchMatMul on frozen weights.
counter_variable/    tf.Module whose serving signature assigns a variable (`v += 1`, then
                     `x * w + v`): nothing may be frozen, each call sees the new value.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixtures as mf  # noqa: E402  (sets TF env vars before importing TF)

import numpy as np  # noqa: E402


def mbconv(keras, x, c_in, c_out, stride):
    L = keras.layers
    h = L.Conv2D(c_in * 4, 1, use_bias=False)(x)
    h = L.BatchNormalization()(h)
    h = L.Activation("swish")(h)
    h = L.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False)(h)
    h = L.BatchNormalization()(h)
    h = L.Activation("swish")(h)
    se = L.GlobalAveragePooling2D(keepdims=True)(h)
    se = L.Conv2D(max(1, c_in // 4), 1, activation="swish")(se)
    se = L.Conv2D(c_in * 4, 1, activation="sigmoid")(se)
    h = L.multiply([h, se])
    h = L.Conv2D(c_out, 1, use_bias=False)(h)
    h = L.BatchNormalization()(h)
    if stride == 1 and c_in == c_out:
        h = L.add([h, x])
    return h


def build_efficientnet_block():
    keras = mf.keras3()
    mf.seed_everything()
    inp = keras.Input(shape=(16, 16, 8), name="image")
    h = mbconv(keras, inp, 8, 8, 1)
    h = mbconv(keras, h, 8, 16, 2)
    h = keras.layers.GlobalAveragePooling2D()(h)
    out = keras.layers.Dense(10)(h)
    model = keras.Model(inp, out)
    rng = np.random.RandomState(mf.SEED)
    mf.calibrate_batchnorm(model, rng.standard_normal((8, 16, 16, 8)).astype(np.float32), rng)
    inputs = {"image": rng.standard_normal((2, 16, 16, 8)).astype(np.float32).tolist()}
    return mf.export_keras3(model, "efficientnet_block", inputs)


def build_gelu_encoder():
    keras = mf.keras3()
    mf.seed_everything()
    L = keras.layers
    inp = keras.Input(shape=(12, 32), name="tokens")
    a = L.MultiHeadAttention(4, 8)(inp, inp)
    x = L.LayerNormalization(epsilon=1e-12)(inp + a)
    h = L.Dense(64, activation=keras.activations.gelu)(x)
    x = L.LayerNormalization(epsilon=1e-12)(x + L.Dense(32)(h))
    model = keras.Model(inp, x)
    rng = np.random.RandomState(mf.SEED)
    inputs = {"tokens": rng.standard_normal((2, 12, 32)).astype(np.float32).tolist()}
    return mf.export_keras3(model, "gelu_encoder", inputs)


def build_counter_variable():
    import tensorflow as tf

    class Counter(tf.Module):
        def __init__(self):
            super().__init__()
            self.v = tf.Variable(0.0)
            self.w = tf.Variable(np.linspace(-1.0, 1.0, 4).astype(np.float32))

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
        def serve(self, x):
            self.v.assign_add(1.0)
            return {"y": x * self.w + self.v}

    m = Counter()
    out = mf.fresh_dir("counter_variable")
    tf.saved_model.save(m, out, signatures={"serving_default": m.serve})
    rng = np.random.RandomState(mf.SEED)
    inputs = {"x": rng.standard_normal((2, 4)).astype(np.float32).tolist()}
    mf.finish_model(out, inputs)
    return out


if __name__ == "__main__":
    for f in (build_efficientnet_block, build_gelu_encoder, build_counter_variable):
        print(f())

#!/usr/bin/env python3
"""Builds benchmark-sized models (not committed) into a directory, with inputs.json.

  /work/venv/bin/python tools/make_bench_models.py /tmp/tfhub-bench [--suite small|cnn|bert|all]

small (default, the original two):
  mlp_4x1024/  Keras 3 export: 1024 inputs, 4 Dense(1024, relu) layers, Dense(10)
  cnn/         the fixture's CNN architecture at 64x64x3
cnn (issue #17, Keras applications at 224x224x3, weights=None, BatchNormalization statistics
calibrated as in tools/check_keras_apps.py so activations stay O(1); golden.json written too):
  mobilenet_v2/ efficientnet_b0/ resnet50/ efficientnet_v2_b0/
bert (BERT-style encoders at seq 128, exact GELU, Keras 3 MultiHeadAttention -> Einsum):
  bert_small/  L4 H512 A8 FFN2048      bert_base/  L12 H768 A12 FFN3072

Each inputs.json holds one batch entry (two for the CNNs); tools/bench_vs_tf.py tiles it to
--batch. Then e.g.:
  tools/bench_vs_tf.py /tmp/tfhub-bench/efficientnet_b0 \
      --inputs /tmp/tfhub-bench/efficientnet_b0/inputs.json --batch 1 --threads 1 --ort
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
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


def build_small(root):
    keras.utils.set_random_seed(0)
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


def build_cnn(root):
    import check_keras_apps as ka

    ka.MODELS.setdefault("efficientnet_v2_b0", ("EfficientNetV2B0", "raw"))
    for name in ["mobilenet_v2", "efficientnet_b0", "resnet50", "efficientnet_v2_b0"]:
        print(f"{name} ...", flush=True)
        ka.build(name, os.path.join(root, name))


def encoder(layers, hidden, heads, ffn, seq=128, vocab=8192):
    """A post-LN BERT encoder: token + position embeddings, then `layers` blocks."""
    ids = keras.Input((seq,), dtype="int32", name="input_ids")
    x = keras.layers.Embedding(vocab, hidden)(ids)
    pos = keras.layers.Embedding(seq, hidden)(keras.ops.arange(seq)[None, :])
    x = keras.layers.LayerNormalization(epsilon=1e-12)(x + pos)
    for _ in range(layers):
        a = keras.layers.MultiHeadAttention(heads, hidden // heads)(x, x)
        x = keras.layers.LayerNormalization(epsilon=1e-12)(x + a)
        h = keras.layers.Dense(ffn, activation=keras.activations.gelu)(x)  # exact (erf) GELU
        h = keras.layers.Dense(hidden)(h)
        x = keras.layers.LayerNormalization(epsilon=1e-12)(x + h)
    return keras.Model(ids, x)


def build_bert(root):
    for name, cfg in [("bert_small", (4, 512, 8, 2048)), ("bert_base", (12, 768, 12, 3072))]:
        print(f"{name} ...", flush=True)
        keras.utils.set_random_seed(0)
        rng = np.random.RandomState(0)
        model = encoder(*cfg)
        x = rng.randint(0, 8192, (1, 128)).astype(np.int32)
        export(model, os.path.join(root, name), x)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("root", nargs="?", default="/tmp/tfhub-bench")
    p.add_argument("--suite", default="small", choices=["small", "cnn", "bert", "all"])
    a = p.parse_args()
    os.makedirs(a.root, exist_ok=True)
    if a.suite in ("small", "all"):
        build_small(a.root)
    if a.suite in ("cnn", "all"):
        build_cnn(a.root)
    if a.suite in ("bert", "all"):
        build_bert(a.root)
    print(a.root)


if __name__ == "__main__":
    main()

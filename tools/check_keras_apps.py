#!/usr/bin/env python3
"""Checks tfhub against TensorFlow on full-size keras.applications models.

MobileNetV2, EfficientNetB0 and ResNet50 (weights=None, 224x224x3, classes=1000) are too big
for tests/fixtures, so this script builds them on the fly: seeded, BatchNormalization
parameters randomised and calibrated (make_fixtures.calibrate_batchnorm, so the output still
depends on the input), exported with Keras 3 `model.export`. For each model it writes
inputs.json / golden.json in the fixture format, runs

    target/release/tfhub run DIR --inputs DIR/inputs.json --output DIR/out.json

and compares out.json with golden.json (|tfhub - tf| <= abs + rel * |tf|). For information, one
warm TF call is timed, and tfhub's warm call (median of the 3 calls `tfhub bench --seconds 0`
makes after its first one). Prints a table and
exits non-zero if any model fails or mismatches.

Usage (from the repository root, after `cargo build --release`):

    /work/venv/bin/python tools/check_keras_apps.py [--out DIR] [--models mobilenet_v2,resnet50]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixtures as mf  # noqa: E402  (sets TF env vars before importing TF)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

# Outputs are 1000-class softmaxes (values ~1e-3), so ABS dominates: watch "max rel err" too.
REL, ABS = 1e-4, 1e-5
SHAPE = (224, 224, 3)


def image_batch(rng, n, kind):
    """Inputs in the range each model's preprocess_input() produces; all exact in float32."""
    if kind == "tf":  # MobileNetV2: [-1, 1]
        x = rng.randint(-128, 129, (n,) + SHAPE) / 128.0
    elif kind == "caffe":  # ResNet50: BGR pixels minus the ImageNet mean
        x = rng.randint(0, 256, (n,) + SHAPE) - np.array([103.939, 116.779, 123.68])
        x = np.round(x * 4.0) / 4.0
    else:  # EfficientNet rescales itself: raw pixels [0, 255]
        x = rng.randint(0, 256, (n,) + SHAPE).astype(np.float64)
    return x.astype(np.float32)


MODELS = {
    "mobilenet_v2": ("MobileNetV2", "tf"),
    "efficientnet_b0": ("EfficientNetB0", "raw"),
    "resnet50": ("ResNet50", "caffe"),
}


def build(name, out_dir):
    """Exports the model to out_dir, writes inputs.json and golden.json; returns TF timings."""
    keras = mf.keras3()
    keras.backend.clear_session()
    mf.seed_everything()
    cls, kind = MODELS[name]
    model = getattr(keras.applications, cls)(weights=None, input_shape=SHAPE, classes=1000)
    rng = np.random.RandomState(mf.SEED)
    mf.calibrate_batchnorm(model, image_batch(rng, 8, kind), rng)
    inputs = image_batch(rng, 2, kind)
    os.makedirs(out_dir, exist_ok=True)
    model.export(out_dir, verbose=False)
    del model

    t0 = time.perf_counter()
    fn = tf.saved_model.load(out_dir).signatures["serving_default"]
    load_s = time.perf_counter() - t0
    ((key, spec),) = fn.structured_input_signature[1].items()
    feed = {key: tf.constant(inputs, dtype=spec.dtype)}
    fn(**feed)  # warm-up (tracing, allocations)
    t1 = time.perf_counter()
    out = {k: v.numpy() for k, v in fn(**feed).items()}
    call_s = time.perf_counter() - t1
    mf.write_json(os.path.join(out_dir, "inputs.json"), {key: inputs.tolist()})
    mf.write_json(os.path.join(out_dir, "golden.json"),
                  {k: mf.tensor_to_json(v) for k, v in out.items()})
    return {"tf_load_s": load_s, "tf_call_s": call_s}


def values(entry):
    return np.array([float(v) for v in entry["values"]], np.float64).reshape(entry["shape"])


def compare(golden_path, out_path, rel_tol=REL, abs_tol=ABS):
    """Returns (max abs err, max rel err, list of problems)."""
    with open(golden_path) as f:
        golden = json.load(f)
    with open(out_path) as f:
        got = json.load(f)
    problems, max_err, max_rel = [], 0.0, 0.0
    if set(golden) != set(got):
        problems.append(f"output keys {sorted(got)} != golden {sorted(golden)}")
    for k in sorted(set(golden) & set(got)):
        g, o = golden[k], got[k]
        if g["dtype"] != o["dtype"] or list(g["shape"]) != list(o["shape"]):
            problems.append(f"{k}: {o['dtype']}{o['shape']} != golden {g['dtype']}{g['shape']}")
            continue
        want, have = values(g), values(o)
        err = np.abs(have - want)
        max_err = max(max_err, float(np.max(err)) if err.size else 0.0)
        rel = err / np.maximum(np.abs(want), np.finfo(np.float32).tiny)
        max_rel = max(max_rel, float(np.max(rel)) if rel.size else 0.0)
        bad = ~(err <= abs_tol + rel_tol * np.abs(want))  # NaN counts as bad
        if bad.any():
            i = np.unravel_index(np.argmax(np.where(bad, err, -1.0)), want.shape)
            where = [int(j) for j in i]
            problems.append(f"{k}: {int(bad.sum())}/{bad.size} values off, worst at {where}: "
                            f"{float(have[i])!r} vs {float(want[i])!r}")
    return max_err, max_rel, problems


def run_tfhub(tfhub, model_dir):
    inputs = os.path.join(model_dir, "inputs.json")
    out = os.path.join(model_dir, "out.json")
    if os.path.exists(out):
        os.remove(out)
    t0 = time.perf_counter()
    r = subprocess.run([tfhub, "run", model_dir, "--inputs", inputs, "--output", out],
                       capture_output=True, text=True)
    run_s = time.perf_counter() - t0
    if r.returncode != 0:
        return None, run_s, r.stderr.strip()
    return out, run_s, None


def time_tfhub_call(tfhub, model_dir):
    """`tfhub bench --seconds 0`: load, first call and median of 3 warm calls, in seconds."""
    inputs = os.path.join(model_dir, "inputs.json")
    r = subprocess.run([tfhub, "bench", model_dir, "--inputs", inputs, "--seconds", "0",
                        "--json"], capture_output=True, text=True)
    if r.returncode != 0:
        return None
    j = json.loads(r.stdout.strip().splitlines()[-1])
    return {"load_s": j["load_ms"] / 1e3, "first_s": j["first_call_ms"] / 1e3,
            "call_s": j["latency_ms"] / 1e3}


def main():
    repo = mf.REPO_ROOT
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", help="keep the exported models here (default: a temp dir)")
    ap.add_argument("--models", default=",".join(MODELS),
                    help=f"comma-separated subset of {', '.join(MODELS)}")
    ap.add_argument("--tfhub", default=os.path.join(repo, "target", "release", "tfhub"))
    ap.add_argument("--rel", type=float, default=REL, help="relative tolerance")
    ap.add_argument("--abs", type=float, default=ABS, help="absolute tolerance")
    ap.add_argument("--no-bench", action="store_true", help="skip the tfhub call timing")
    ap.add_argument("--reuse", action="store_true",
                    help="with --out: reuse exported models and golden.json already there")
    a = ap.parse_args()
    names = [n for n in a.models.split(",") if n]
    for n in names:
        if n not in MODELS:
            sys.exit(f"unknown model {n!r}; known: {', '.join(MODELS)}")
    if not os.path.isfile(a.tfhub):
        sys.exit(f"{a.tfhub} not found: run `cargo build --release` first")
    tf.config.experimental.enable_op_determinism()

    tmp = None
    root = a.out
    if root is None:
        tmp = tempfile.TemporaryDirectory(prefix="keras_apps_")
        root = tmp.name
    print(f"TensorFlow {tf.__version__}; models in {root}", flush=True)

    rows, failures = [], []
    for name in names:
        d = os.path.join(root, name)
        if a.reuse and os.path.exists(os.path.join(d, "golden.json")):
            tf_t = {"tf_load_s": float("nan"), "tf_call_s": float("nan")}
        else:
            print(f"{name}: building + TF golden ...", flush=True)
            tf_t = build(name, d)
        print(f"{name}: tfhub run ...", flush=True)
        out, run_s, err = run_tfhub(a.tfhub, d)
        row = {"model": name, "err": float("nan"), "rel": float("nan"), "status": "FAIL",
               "run_s": run_s, "hub": None, **tf_t}
        if err is not None:
            failures.append((name, err))
        else:
            max_err, max_rel, problems = compare(os.path.join(d, "golden.json"), out, a.rel, a.abs)
            row["err"], row["rel"] = max_err, max_rel
            if problems:
                failures.append((name, "; ".join(problems)))
            else:
                row["status"] = "pass"
            if not a.no_bench:
                row["hub"] = time_tfhub_call(a.tfhub, d)
        rows.append(row)

    def ms(s):
        return "-" if s is None or s != s else f"{s * 1e3:.0f}"

    print()
    print(f"tolerance: |tfhub - tf| <= {a.abs:g} + {a.rel:g} * |tf|; "
          "batch 2, 224x224x3; times in ms")
    head = ("model", "max abs err", "max rel err", "result", "TF load", "TF call", "tfhub load",
            "tfhub call", "tfhub run (process)")
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    for r in rows:
        hub = r["hub"] or {}
        print(f"| {r['model']} | {r['err']:.3g} | {r['rel']:.3g} | {r['status']} | "
              f"{ms(r['tf_load_s'])} | {ms(r['tf_call_s'])} | {ms(hub.get('load_s'))} | "
              f"{ms(hub.get('call_s'))} | {ms(r['run_s'])} |")
    for name, why in failures:
        print(f"\nFAIL {name}: {why}")
    if tmp is not None:
        tmp.cleanup()
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

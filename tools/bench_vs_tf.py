#!/usr/bin/env python3
"""Times TensorFlow and `tfhub bench` side by side on the same model and inputs.

Both sides do the same thing: load, tile the inputs' first dimension up to --batch, one warm-up
call, then calls for --seconds; the median latency is reported. Runs alternate (TF, tfhub, TF,
tfhub, ...) for --rounds rounds so machine noise hits both; each run is a fresh process so load
time and peak RSS are measured per run. Prints a ratio table (TF / tfhub; > 1 means tfhub is
better for times and memory, and for per_s the ratio is tfhub / TF).

Usage:
  /work/venv/bin/python tools/bench_vs_tf.py tests/fixtures/mlp --inputs tests/fixtures/mlp/inputs.json \
      --batch 1 --batch 64 [--tfhub target/release/tfhub] [--threads 2] [--json out.json]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

TF_CHILD = r"""
import json, os, resource, sys, time
args = json.loads(sys.argv[1])
t0 = time.perf_counter()
import tensorflow as tf
for mod in args.get("imports") or []:
    __import__(mod)  # op libraries the model needs (tensorflow_text), counted in load time
if args["threads"]:
    tf.config.threading.set_intra_op_parallelism_threads(args["threads"])
    tf.config.threading.set_inter_op_parallelism_threads(1)
m = tf.saved_model.load(args["model"])
f = m.signatures[args["signature"]]
load_ms = (time.perf_counter() - t0) * 1e3
inputs = json.load(open(args["inputs"]))
spec = f.structured_input_signature[1]
feeds = {}
rows = 1
for k, v in inputs.items():
    if args["batch"] and isinstance(v, list) and v:
        v = [v[i % len(v)] for i in range(args["batch"])]
    feeds[k] = tf.constant(v, dtype=spec[k].dtype)
    rows = len(v) if isinstance(v, list) else 1
t1 = time.perf_counter()
f(**feeds)
first_ms = (time.perf_counter() - t1) * 1e3
lat = []
start = time.perf_counter()
while time.perf_counter() - start < args["seconds"] or len(lat) < 3:
    t = time.perf_counter()
    out = f(**feeds)
    for v in out.values():
        v.numpy()
    lat.append((time.perf_counter() - t) * 1e3)
lat.sort()
med = lat[len(lat) // 2]
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
print(json.dumps({"load_ms": load_ms, "first_call_ms": first_ms, "latency_ms": med,
                  "per_s": rows / (med / 1e3), "peak_rss_mb": rss, "calls": len(lat),
                  "batch": rows}))
"""

FIELDS = ["load_ms", "first_call_ms", "latency_ms", "per_s", "peak_rss_mb"]


def run_tf(a, batch):
    payload = json.dumps({"model": a.model, "inputs": a.inputs, "signature": a.signature,
                          "batch": batch, "seconds": a.seconds, "threads": a.threads,
                          "imports": a.imports})
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, "-c", TF_CHILD, payload], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def run_tfhub(a, batch):
    cmd = [a.tfhub, "bench", a.model, "--inputs", a.inputs, "--signature", a.signature,
           "--seconds", str(a.seconds), "--json"]
    if batch:
        cmd += ["--batch", str(batch)]
    if a.threads:
        cmd += ["--threads", str(a.threads)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("--inputs", required=True)
    p.add_argument("--signature", default="serving_default")
    p.add_argument("--batch", type=int, action="append")
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--tfhub", default="target/release/tfhub")
    p.add_argument("--json")
    p.add_argument("--import", dest="imports", action="append",
                   help="Python module the TF side imports first (e.g. tensorflow_text)")
    a = p.parse_args()
    results = {}
    for batch in a.batch or [0]:
        tf_runs, rs_runs = [], []
        for _ in range(a.rounds):
            tf_runs.append(run_tf(a, batch))
            rs_runs.append(run_tfhub(a, batch))
        med = lambda runs, k: statistics.median(r[k] for r in runs)
        row = {}
        for k in FIELDS:
            t, r = med(tf_runs, k), med(rs_runs, k)
            ratio = (r / t) if k == "per_s" else (t / r if r else float("inf"))
            row[k] = {"tf": t, "tfhub": r, "ratio": ratio}
        results[batch or "as-given"] = row
    print(f"model: {a.model}  (ratio > 1: tfhub better; per_s ratio = tfhub/TF, others TF/tfhub)")
    print(f"{'batch':>8} {'metric':>14} {'TF':>12} {'tfhub':>12} {'ratio':>8}")
    for batch, row in results.items():
        for k in FIELDS:
            v = row[k]
            print(f"{batch!s:>8} {k:>14} {v['tf']:>12.3f} {v['tfhub']:>12.3f} {v['ratio']:>8.2f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Times TensorFlow, `tfhub bench` and (with --ort) ONNX Runtime side by side on the same model.

Both sides do the same thing: load, tile the inputs' first dimension up to --batch, one warm-up
call, then calls for --seconds; the median latency is reported. Runs alternate (TF, tfhub, TF,
tfhub, ...) for --rounds rounds so machine noise hits both; each run is a fresh process so load
time and peak RSS are measured per run. Prints a ratio table (TF / tfhub; > 1 means tfhub is
better for times and memory, and for per_s the ratio is tfhub / TF).

With --ort, the SavedModel is converted once with tf2onnx (opset 17, cached as
<model>/model.onnx) and ONNX Runtime joins the rotation (intra-op threads = --threads, full graph
optimisation); a model tf2onnx or ORT cannot take shows "n/a" (e.g. BERT's Erfc at opset 17).
--env K=V (repeatable) is passed to tfhub only, e.g. --env TFHUB_NO_AVX512=1.

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
cpu0 = time.process_time()
start = time.perf_counter()
while time.perf_counter() - start < args["seconds"] or len(lat) < 3:
    t = time.perf_counter()
    out = f(**feeds)
    for v in out.values():
        v.numpy()
    lat.append((time.perf_counter() - t) * 1e3)
cpu_ms = (time.process_time() - cpu0) * 1e3 / len(lat)
lat.sort()
med = lat[len(lat) // 2]
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
print(json.dumps({"load_ms": load_ms, "first_call_ms": first_ms, "latency_ms": med,
                  "per_s": rows / (med / 1e3), "peak_rss_mb": rss, "calls": len(lat), "cpu_ms": cpu_ms,
                  "batch": rows}))
"""

ORT_CHILD = r"""
import json, os, resource, sys, time
args = json.loads(sys.argv[1])
t0 = time.perf_counter()
import numpy as np
import onnxruntime as ort
so = ort.SessionOptions()
if args["threads"]:
    so.intra_op_num_threads = args["threads"]
    so.inter_op_num_threads = 1
so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
s = ort.InferenceSession(args["onnx"], so, providers=["CPUExecutionProvider"])
load_ms = (time.perf_counter() - t0) * 1e3
inputs = json.load(open(args["inputs"]))
types = {"tensor(float)": np.float32, "tensor(int32)": np.int32, "tensor(int64)": np.int64}
metas = s.get_inputs()
feeds = {}
rows = 1
for k, v in inputs.items():
    meta = next((m for m in metas if m.name == k or m.name.split(":")[0] == k), metas[0])
    if args["batch"] and isinstance(v, list) and v:
        v = [v[i % len(v)] for i in range(args["batch"])]
    feeds[meta.name] = np.array(v, dtype=types.get(meta.type, np.float32))
    rows = len(v) if isinstance(v, list) else 1
t1 = time.perf_counter()
s.run(None, feeds)
first_ms = (time.perf_counter() - t1) * 1e3
lat = []
cpu0 = time.process_time()
start = time.perf_counter()
while time.perf_counter() - start < args["seconds"] or len(lat) < 3:
    t = time.perf_counter()
    s.run(None, feeds)
    lat.append((time.perf_counter() - t) * 1e3)
cpu_ms = (time.process_time() - cpu0) * 1e3 / len(lat)
lat.sort()
med = lat[len(lat) // 2]
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
print(json.dumps({"load_ms": load_ms, "first_call_ms": first_ms, "latency_ms": med,
                  "per_s": rows / (med / 1e3), "peak_rss_mb": rss, "calls": len(lat), "cpu_ms": cpu_ms,
                  "batch": rows}))
"""

# cpu_ms: process CPU time per timed call (all threads), steadier than wall time when other
# work shares the cores; a binary without it shows nan.
FIELDS = ["load_ms", "first_call_ms", "latency_ms", "cpu_ms", "per_s", "peak_rss_mb"]


def run_tf(a, batch):
    payload = json.dumps({"model": a.model, "inputs": a.inputs, "signature": a.signature,
                          "batch": batch, "seconds": a.seconds, "threads": a.threads,
                          "imports": a.imports})
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, "-c", TF_CHILD, payload], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def onnx_path(a):
    """Converts the SavedModel once (tf2onnx, opset 17); None if the conversion fails."""
    path = os.path.join(a.model, "model.onnx")
    if not os.path.exists(path):
        r = subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--saved-model", a.model,
                            "--signature_def", a.signature, "--opset", "17", "--output", path],
                           capture_output=True, text=True,
                           env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
        if r.returncode != 0 or not os.path.exists(path):
            print(f"tf2onnx failed: {r.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
            return None
    return path


def run_ort(a, batch, onnx):
    payload = json.dumps({"onnx": onnx, "inputs": a.inputs, "batch": batch,
                          "seconds": a.seconds, "threads": a.threads})
    r = subprocess.run([sys.executable, "-c", ORT_CHILD, payload], capture_output=True,
                       text=True)
    if r.returncode != 0:
        print(f"onnxruntime failed: {r.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    return json.loads(r.stdout.strip().splitlines()[-1])


def run_tfhub(a, batch):
    cmd = [a.tfhub, "bench", a.model, "--inputs", a.inputs, "--signature", a.signature,
           "--seconds", str(a.seconds), "--json"]
    if batch:
        cmd += ["--batch", str(batch)]
    if a.threads:
        cmd += ["--threads", str(a.threads)]
    env = dict(os.environ)
    for kv in a.env or []:
        k, _, v = kv.partition("=")
        env[k] = v
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
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
    p.add_argument("--ort", action="store_true", help="add ONNX Runtime (via tf2onnx)")
    p.add_argument("--env", action="append", help="K=V for the tfhub process")
    a = p.parse_args()
    onnx = onnx_path(a) if a.ort else None
    results = {}
    for batch in a.batch or [0]:
        tf_runs, rs_runs, ort_runs = [], [], []
        for _ in range(a.rounds):
            tf_runs.append(run_tf(a, batch))
            rs_runs.append(run_tfhub(a, batch))
            if onnx:
                r = run_ort(a, batch, onnx)
                if r is None:
                    onnx = None
                else:
                    ort_runs.append(r)
        med = lambda runs, k: (statistics.median(r.get(k) or float("nan") for r in runs)
                               if runs else float("nan"))
        row = {}
        for k in FIELDS:
            t, r, o = med(tf_runs, k), med(rs_runs, k), med(ort_runs, k)
            ratio = (r / t) if k == "per_s" else (t / r if r else float("inf"))
            row[k] = {"tf": t, "tfhub": r, "ratio": ratio, "ort": o}
        results[batch or "as-given"] = row
    print(f"model: {a.model}  threads: {a.threads or 'all'}  env: {a.env or '-'}")
    print("(ratio > 1: tfhub better; per_s ratio = tfhub/TF, others TF/tfhub; "
          "hub/TF and hub/ORT: tfhub divided by peer)")
    print(f"{'batch':>8} {'metric':>14} {'TF':>10} {'ORT':>10} {'tfhub':>10} {'ratio':>7} "
          f"{'hub/TF':>7} {'hub/ORT':>7}")
    for batch, row in results.items():
        for k in FIELDS:
            v = row[k]
            h_tf = v["tfhub"] / v["tf"] if v["tf"] else float("nan")
            h_ort = v["tfhub"] / v["ort"] if v["ort"] == v["ort"] and v["ort"] else float("nan")
            print(f"{batch!s:>8} {k:>14} {v['tf']:>10.2f} {v['ort']:>10.2f} {v['tfhub']:>10.2f} "
                  f"{v['ratio']:>7.2f} {h_tf:>7.2f} {h_ort:>7.2f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()

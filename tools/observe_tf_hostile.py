#!/usr/bin/env python3
"""Observes what TensorFlow itself does with the hostile models (for SECURITY.md).

Usage (from the repository root; takes minutes, several cases wait for their timeout):

    /work/venv/bin/python tools/observe_tf_hostile.py [cases...]

Everything happens in a fresh temp dir: the models are regenerated there by
make_hostile_models.py with their file targets inside it, so TF writes nowhere else. Each
case runs in its own `timeout 60` subprocess; the table printed at the end gives the exit
status, wall time and what TF did.
"""

import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PY = sys.executable
TIMEOUT = int(os.environ.get("TFHUB_OBS_TIMEOUT", "60"))

# case -> python snippet run with `m` unset, `d` the model dir, `t` the target dir.
SNIPPETS = {
    "write_file": "m=tf.saved_model.load(d); m.signatures['serving_default'](); "
    "print('wrote', os.listdir(t))",
    "read_file": "m=tf.saved_model.load(d); y=m.signatures['serving_default']()['y']; "
    "print('read', len(y.numpy()), 'bytes of /etc/passwd')",
    "matching_files": "m=tf.saved_model.load(d); y=m.signatures['serving_default']()['y']; "
    "print('listed', len(y.numpy()), 'entries of /etc')",
    "print_to_file": "m=tf.saved_model.load(d); m.signatures['serving_default'](x=tf.constant(1.0)); "
    "print('wrote', os.listdir(t))",
    "save_v2": "m=tf.saved_model.load(d); m.signatures['serving_default'](x=tf.constant(1.0)); "
    "print('wrote', os.listdir(t))",
    "immutable_const": "m=tf.saved_model.load(d); y=m.signatures['serving_default']()['y']; "
    "print('mapped', bytes(y.numpy()))",
    "vocab_outside": "m=tf.saved_model.load(d); "
    "y=m.signatures['serving_default'](x=tf.constant([open('/etc/passwd').readline().strip()]))['ids']; "
    "print('first line of /etc/passwd has id', y.numpy())",
    "endless_while": "m=tf.saved_model.load(d); m.signatures['serving_default'](x=tf.constant(0, tf.int64))",
    "recursive_function": "m=tf.saved_model.load(d); m.signatures['serving_default'](x=tf.constant(1.0))",
    "splat_const": "m=tf.saved_model.load(d); print(m.signatures['serving_default']()['y'].shape)",
    "const_overflow": "m=tf.saved_model.load(d); print(m.signatures['serving_default']()['y'].shape)",
    "const_bytes_overflow": "m=tf.saved_model.load(d); print(m.signatures['serving_default']()['y'].shape)",
    "const_short_content": "m=tf.saved_model.load(d); print(m.signatures['serving_default']()['y'].shape)",
    "huge_alloc": "m=tf.saved_model.load(d); print(m.signatures['range']()['y'].shape)",
    "fifo_shard": "m=tf.saved_model.load(d)",
}


def main():
    cases = sys.argv[1:] or list(SNIPPETS)
    tmp = tempfile.mkdtemp(prefix="tfhub-tf-obs-")
    models = os.path.join(tmp, "models")
    rows = []
    for case in cases:
        target = os.path.join(tmp, "target-" + case)
        os.makedirs(target)
        gen = "write_file" if case == "fifo_shard" else case
        subprocess.run(
            [PY, os.path.join(HERE, "make_hostile_models.py"), "--out", models,
             "--target", target, gen],
            check=True, stderr=subprocess.DEVNULL,
        )
        d = os.path.join(models, gen)
        if case == "fifo_shard":
            # A FIFO as the variables data shard of a model that has variables.
            subprocess.run(
                [PY, os.path.join(HERE, "make_hostile_models.py"), "--out", models,
                 "--target", target, "vocab_outside"],
                check=True, stderr=subprocess.DEVNULL,
            )
            d = os.path.join(models, "vocab_outside")
            shard = os.path.join(d, "variables", "variables.data-00000-of-00001")
            os.remove(shard)
            os.mkfifo(shard)
        # Time from after `import tensorflow` to the end (or the error), printed last.
        code = (
            "import os, time, atexit; os.environ['TF_CPP_MIN_LOG_LEVEL']='2'; "
            "import tensorflow as tf; t0=time.time(); "
            "atexit.register(lambda: print('tf-time %.2f s' % (time.time()-t0), flush=True)); "
            f"d={d!r}; t={target!r}\n" + SNIPPETS[case]
        )
        start = time.time()
        p = subprocess.run(
            ["timeout", str(TIMEOUT), PY, "-c", code],
            capture_output=True, text=True,
        )
        wall = time.time() - start
        out = [ln for ln in p.stdout.strip().splitlines() if not ln.startswith("tf-time")]
        tf_time = [ln for ln in p.stdout.splitlines() if ln.startswith("tf-time")]
        err = [ln for ln in p.stderr.strip().splitlines() if ln.strip()]
        last = (out or err[-1:] or [""])[-1]
        if p.returncode != 0 and err:
            last = err[-1]
        last = (tf_time[0] + ": " if tf_time else "") + last
        status = {124: "TIMEOUT", -11: "SIGSEGV", 139: "SIGSEGV"}.get(p.returncode, p.returncode)
        rows.append((case, status, wall, last[:160]))
        print(f"{case}: exit {status} after {wall:.1f} s: {last[:160]}", flush=True)
    print("\n| case | exit | wall (s) | last line |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]:.1f} | {r[3]} |")


if __name__ == "__main__":
    main()

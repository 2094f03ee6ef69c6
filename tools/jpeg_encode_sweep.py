"""Compares tfhub's JPEG encoder (kernels/src/image/jpeg/encode.rs, progressive.rs) with TF's
EncodeJpeg byte for byte on a generated sweep: sizes with partial MCUs in both directions,
noise and smooth pictures, RGB 4:2:0 / 4:4:4 and gray, qualities 0..100, optimize_size, and
progressive=true (jpeg_simple_progression's scans). Prints the agreement per group and exits
non-zero on any difference.

    cargo build --release -p tfhub-kernels --example jpeg_encode_dump
    /work/venv/bin/python tools/jpeg_encode_sweep.py [--quick] [--baseline]
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import tensorflow as tf

HERE = os.path.dirname(os.path.abspath(__file__))
DUMP = os.path.join(HERE, "..", "target", "release", "examples", "jpeg_encode_dump")
sys.path.insert(0, HERE)
from make_fixtures_jpeg import pix  # noqa: E402  (the fixtures' seeded smooth pictures)


def picture(h, w, c, seed):
    if seed % 2:
        return np.random.RandomState(seed).randint(0, 256, (h, w, c)).astype(np.uint8)
    return pix(h, w, c, seed)


def main():
    quick = "--quick" in sys.argv
    progressive = [False, True] if "--baseline" in sys.argv else [True]
    sizes = [(1, 1), (8, 8), (16, 16), (23, 19), (17, 33), (9, 40), (64, 48), (37, 29),
             (3, 70), (50, 1), (121, 97)]
    if quick:
        sizes = sizes[:5]
    qualities = [0, 10, 50, 75, 90, 95, 100]
    groups = {}
    with tempfile.TemporaryDirectory() as tmp:
        raw, out = os.path.join(tmp, "in.raw"), os.path.join(tmp, "out.jpg")
        for (h, w) in sizes:
            for c in (3, 1):
                for seed in (h * 3 + w * 2 + c, h * 3 + w * 2 + c + 1):
                    img = picture(h, w, c, seed)
                    with open(raw, "wb") as f:
                        f.write(img.tobytes())
                    for prog in progressive:
                        for q in qualities:
                            for chroma in ((True, False) if c == 3 else (True,)):
                                for opt in (False, True):
                                    want = tf.io.encode_jpeg(
                                        img, quality=q, progressive=prog,
                                        optimize_size=opt,
                                        chroma_downsampling=chroma).numpy()
                                    args = [DUMP, raw, out, h, w, c, q, int(chroma), int(opt),
                                            int(prog)]
                                    r = subprocess.run([str(a) for a in args],
                                                       capture_output=True)
                                    got = b""
                                    if r.returncode == 0:
                                        with open(out, "rb") as f:
                                            got = f.read()
                                    key = ("prog" if prog else "base",
                                           "gray" if c == 1 else ("420" if chroma else "444"),
                                           "noise" if seed % 2 else "smooth")
                                    ok, n = groups.get(key, (0, 0))
                                    same = got == want
                                    groups[key] = (ok + same, n + 1)
                                    if not same and "-v" in sys.argv:
                                        print("DIFF", key, h, w, q, opt, len(got), len(want),
                                              r.stderr.decode().strip())
    total_ok = sum(ok for ok, _ in groups.values())
    total = sum(n for _, n in groups.values())
    for key in sorted(groups):
        ok, n = groups[key]
        print(f"{'/'.join(key):24} {ok}/{n} byte-identical")
    print(f"all: {total_ok}/{total} byte-identical")
    sys.exit(0 if total_ok == total else 1)


if __name__ == "__main__":
    main()

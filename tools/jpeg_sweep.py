"""Measures tfhub's JPEG decoder (kernels/src/image/jpeg) against TF's DecodeJpeg /
DecodeAndCropJpeg on a generated sweep of files and options.

    cargo build --release -p tfhub-kernels --example jpeg_dump
    /work/venv/bin/python tools/jpeg_sweep.py [--quick]

Files: baseline 4:4:4 / 4:2:2 / 4:2:0 / 4:1:1, grayscale, progressive, restart intervals,
odd sizes, CMYK (Pillow writes Adobe-inverted CMYK), RGB without JFIF; options: channels
0/1/3, ratio 1/2/4/8, fancy_upscaling on/off, both dct_methods, crop windows. Prints the
share of differing uint8 samples and the largest difference per group; exits non-zero on a
decode that TF accepts and tfhub refuses (or the reverse).
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import tensorflow as tf

HERE = os.path.dirname(os.path.abspath(__file__))
DUMP = os.path.join(HERE, "..", "target", "release", "examples", "jpeg_dump")
sys.path.insert(0, HERE)
# The fixture generator's seeded test pictures and Pillow encoder, so sweep and fixtures agree.
from make_fixtures_jpeg import pil, pix as pixels  # noqa: E402


def files(quick):
    out = {}
    sizes = [(37, 29), (64, 48), (17, 5), (1, 1), (3, 70), (50, 1)]
    if quick:
        sizes = sizes[:3]
    for (h, w) in sizes:
        rgb = pixels(h, w, 3, h * 7 + w)
        for ss, name in [(0, "444"), (1, "422"), (2, "420"), ("4:1:1", "411")]:
            out[f"b{name}_{h}x{w}"] = pil(rgb, quality=85, subsampling=ss)
        out[f"prog420_{h}x{w}"] = pil(rgb, quality=80, subsampling=2, progressive=True)
        out[f"prog444_{h}x{w}"] = pil(rgb, quality=95, subsampling=0, progressive=True)
        out[f"gray_{h}x{w}"] = pil(pixels(h, w, 1, 3), quality=90)
        out[f"grayprog_{h}x{w}"] = pil(pixels(h, w, 1, 4), quality=70, progressive=True)
        out[f"rst_{h}x{w}"] = pil(rgb, quality=88, restart_marker_blocks=3)
        out[f"cmyk_{h}x{w}"] = pil(rgb, mode="CMYK", quality=90)
        out[f"tf420_{h}x{w}"] = tf.io.encode_jpeg(rgb, quality=75).numpy()
        out[f"tfprog_{h}x{w}"] = tf.io.encode_jpeg(rgb, quality=60, progressive=True,
                                                   optimize_size=True).numpy()
        out[f"q100_{h}x{w}"] = pil(rgb, quality=100, subsampling=2)
    return out


def run_ours(path, channels, ratio, fancy, accurate, crop, recover=False, fraction=1.0):
    args = [DUMP, path, path + ".raw", str(channels), str(ratio), str(int(fancy)),
            str(int(accurate)), str(int(recover))]
    if crop is not None:
        args += [str(v) for v in crop]
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        return None, r.stderr.strip()
    h, w, c, _, valid = r.stderr.split()[:5]
    h, w, c, valid = int(h), int(w), int(c), int(valid)
    raw = np.fromfile(path + ".raw", np.uint8)
    # The op layer's acceptable_fraction rule (rows past `valid` are already zero).
    if valid < h and valid / h < min(1.0, fraction):
        return None, f"only {valid}/{h} rows"
    if c == 4:
        return ("cmyk", raw.reshape(h, w, 4)), None
    return raw.reshape(h, w, c), None


def truncations(tmp):
    """Cut files, decoded with try_recover_truncated on/off and acceptable_fraction."""
    stats = [0, 0, 0, 0]
    rgb = pixels(61, 45, 3, 11)
    cases = {
        "t420": pil(rgb, quality=85, subsampling=2),
        "t444": pil(rgb, quality=85, subsampling=0),
        "t422": pil(rgb, quality=85, subsampling=1),
        "tgray": pil(pixels(61, 45, 1, 5), quality=85),
        "trst": pil(rgb, quality=85, restart_marker_blocks=2),
        "tprog": pil(rgb, quality=85, progressive=True),
    }
    for name, data in cases.items():
        for cut in np.linspace(len(data) * 0.3, len(data) - 1, 9).astype(int):
            d = data[:cut]
            path = os.path.join(tmp, f"{name}_{cut}.jpg")
            with open(path, "wb") as f:
                f.write(d)
            for recover in (False, True):
                for fraction in (1.0, 0.5, 0.0):
                    for fancy in (True, False):
                        try:
                            want = tf.io.decode_jpeg(d, try_recover_truncated=recover,
                                                     acceptable_fraction=fraction,
                                                     fancy_upscaling=fancy).numpy()
                        except Exception:  # noqa: BLE001
                            want = None
                        got, err = run_ours(path, 0, 1, fancy, False, None, recover, fraction)
                        stats[3] += 1
                        if (want is None) != (got is None):
                            stats[0] += 1
                            print("TRUNC accept", name, cut, recover, fraction, fancy,
                                  "tf", None if want is None else want.shape, "ours", err)
                            continue
                        if want is None:
                            continue
                        if want.shape != got.shape:
                            stats[0] += 1
                            print("TRUNC shape", name, cut, want.shape, got.shape)
                            continue
                        dd = np.abs(want.astype(int) - got.astype(int))
                        if dd.max() > 0:
                            stats[1] += 1
                            stats[2] = max(stats[2], int(dd.max()))
                            if "-v" in sys.argv:
                                rows = np.nonzero(dd.max(axis=(1, 2)))[0]
                                print("TRUNC diff", name, cut, recover, fraction, fancy,
                                      int(dd.max()), "rows", rows.min(), rows.max())
    print(f"truncated: {stats[3]} decodes, {stats[0]} accept/shape mismatches, "
          f"{stats[1]} with differing pixels (max {stats[2]})")
    return stats[0]


def cmyk_to_rgb(a, adobe=True):
    a = a.astype(np.int64)
    c, m, y, k = a[..., 0], a[..., 1], a[..., 2], a[..., 3]
    return np.stack([k * c // 255, k * m // 255, k * y // 255], -1).astype(np.uint8)


def main():
    quick = "--quick" in sys.argv
    groups = {}
    tmp = tempfile.mkdtemp()
    failures = truncations(tmp)
    if "--trunc" in sys.argv:
        return 1 if failures else 0
    rng = np.random.RandomState(0)
    for name, data in files(quick).items():
        path = os.path.join(tmp, name + ".jpg")
        with open(path, "wb") as f:
            f.write(data)
        for channels in (0, 1, 3):
            for ratio in (1, 2, 4, 8):
                for fancy in (True, False):
                    for accurate in (False, True):
                        crops = [None]
                        if ratio == 1 and channels != 1:
                            th, tw = tf.io.extract_jpeg_shape(data).numpy()[:2]
                            for _ in range(2):
                                ch = rng.randint(1, th + 1)
                                cw = rng.randint(1, tw + 1)
                                crops.append((rng.randint(0, th - ch + 1),
                                              rng.randint(0, tw - cw + 1), ch, cw))
                        for crop in crops:
                            dct = "INTEGER_ACCURATE" if accurate else ""
                            try:
                                if crop is None:
                                    want = tf.io.decode_jpeg(
                                        data, channels=channels, ratio=ratio,
                                        fancy_upscaling=fancy, dct_method=dct).numpy()
                                else:
                                    want = tf.image.decode_and_crop_jpeg(
                                        data, list(crop), channels=channels,
                                        fancy_upscaling=fancy, dct_method=dct).numpy()
                            except Exception as e:  # noqa: BLE001
                                want = None
                                terr = str(e).splitlines()[0][:80]
                            got, err = run_ours(path, channels, ratio, fancy, accurate, crop)
                            if isinstance(got, tuple):
                                got = cmyk_to_rgb(got[1])
                            key = (name.split("_")[0], f"r{ratio}",
                                   "fancy" if fancy else "box",
                                   "islow" if accurate else "ifast",
                                   "crop" if crop else "full")
                            if want is None or got is None:
                                if (want is None) != (got is None):
                                    failures += 1
                                    print("MISMATCH accept", name, key, channels, crop,
                                          "tf:", None if want is None else want.shape,
                                          terr if want is None else "", "ours:", err)
                                continue
                            if want.shape != got.shape:
                                failures += 1
                                print("SHAPE", name, key, channels, crop, want.shape, got.shape)
                                continue
                            d = np.abs(want.astype(int) - got.astype(int))
                            g = groups.setdefault(key[0] + " " + " ".join(key[1:]), [0, 0, 0])
                            g[0] += int((d > 0).sum())
                            g[1] += d.size
                            g[2] = max(g[2], int(d.max()) if d.size else 0)
                            if d.max() > 0 and "-v" in sys.argv:
                                print("DIFF", name, key, channels, crop, int(d.max()),
                                      int((d > 0).sum()), d.size)
    tot = [0, 0, 0]
    for k in sorted(groups):
        g = groups[k]
        tot[0] += g[0]
        tot[1] += g[1]
        tot[2] = max(tot[2], g[2])
        if g[0]:
            print(f"{k:40s} {g[0]:7d}/{g[1]:8d} differ ({100.0 * g[0] / g[1]:.3f}%), max {g[2]}")
    print(f"TOTAL {tot[0]}/{tot[1]} samples differ ({100.0 * tot[0] / max(tot[1], 1):.4f}%), "
          f"max diff {tot[2]}; {failures} accept/shape mismatches")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

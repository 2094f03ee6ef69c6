#!/usr/bin/env python3
"""Fixtures for tests/text4.rs: tensorflow_text's `NormalizeUTF8WithOffsetsMap` and
`FindSourceOffsets` (`text.normalize_utf8_with_offsets_map` / `text.find_source_offsets`).

* `text4_offsets_map`: a SavedModel whose signatures normalize a string vector and map
  every normalized byte offset (from -2 to len + 2) back to the source, so the variant offsets
  map only flows between the two ops inside the graph. Signatures `nfc`, `nfd`, `nfkc`,
  `nfkd` (`text` -> `output`, `source` (flat int64), `splits`); `given` (NFKC with caller
  offsets as values + row splits: empty rows, which consume no map, offsets past the end
  and beyond int32); `dense2d` (a [2, 3] string matrix with [2, 3, 4] dense offsets: the
  Python wrapper's reshape of the variant map and from_tensor path).
  Inputs: hand-picked cases (composition segments, singletons, Hangul L/V/T and LV/LVT,
  reordering, backward-combining starters, compatibility forms, supplementary and Unicode 16
  characters, ill-formed UTF-8, empty) and random mixes of combining marks, decomposable
  characters and random code points (fixed seed).

Run: /work/venv/bin/python tools/make_fixtures_text4.py [NAME...]
Wider probe (not committed): TEXT4_RANDOM=20000 TEXT4_SEED=7 ... then cargo test --test text4.
"""

import json
import os
import random
import sys
import unicodedata

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import make_fixtures as mf  # noqa: E402  (sets TF env vars before importing TF)
import tensorflow as tf  # noqa: E402
import tensorflow_text as tf_text  # noqa: E402
from tensorflow.python.ops import gen_ragged_conversion_ops  # noqa: E402

S = tf.TensorSpec
SEED = 20261207

CASES = [
    "", "abc", "a\u0301\u0323b", "\u00c5\u212b", "e\u0301", "\u00e9", "\ufb01\u00e9 x",
    "\u682a\u5f0f\u4f1a\u793e", "\uff2b\uff21\uff24\uff2f\uff2b\uff21\uff37\uff21",
    # Hangul: L V T, L V, LV + T, LVT + T, L V + mark, L + LV, syllables, compat jamo
    "\u1100\u1161\u11a8", "\u1100\u1161", "\uac00\u11a8", "\uac01\u11a8", "\u1100\u1161\u0301",
    "\u1100\uac00", "\ud55c\uad6d\uc5b4", "\u3131\u314f", "\u3131\u314f\u3131",
    "\uffa1\uffc2\uffa1", "\u1100\u1161\u3131", "x\u1161\u11a8", "\u11a8\u1161", "\uac00\u11a7",
    "\u1100\u1161\u11a8\u0301", "\u1100\u0301\u1161",
    # singletons and one-way mappings
    "\u212b\u0301", "\u2126", "\u212a", "\u2000", "\u0340\u0341", "\u0344", "\u0f73", "\u0f75",
    "\u0f81", "\u1e9b\u0323", "\u017f\u0307", "\u0958", "\u2adc", "\U0001d15e",
    "\U0001d160\U0001d165", "\u0374", "\u037e", "\u1f71", "a\u0340",
    # canonical ordering
    "a\u0323\u0301", "a\u0301\u0301\u0323", "\u0301a", "\u0301\u0323", "q\u0307\u0323",
    "\u1e0b\u0323", "\u1e0d\u0307", "a\u0316\u0301\u0300\u0317", "\u0e40\u0e48\u0e35",
    "\u05d0\u05b8\u05b7", "a\u0345\u0301", "\u03b1\u0345\u0301",
    # backward-combining starters (ccc 0, NFC_QC maybe)
    "\u09c7\u09be", "\u0b47\u0b3e\u0b57", "\u0cc6\u0cc2\u0cd5", "\u0dd9\u0dcf\u0dca",
    "\u1b05\u1b35", "\u09be", "\u0cd5", "x\u09be", "\u09c7\u0301\u09be", "\u0cca\u0cd5",
    # compatibility forms
    "\u2460", "\uff76\uff9e", "\u309b", "\u3300", "\ufdfa", "\u00bd", "\u2460\u0301",
    "x\u00a8\u0301", "\u1e9b", "\u01c5", "\u0149", "\ufb2c", "\u2474", "\u33c0", "\u00a0x",
    "\u2fd5", "\ufe8e\ufedf", "\u1d2c", "\u2102\u0301", "\u00b5\u0301", "\u03d3", "\u1fee",
    # supplementary and Unicode 16
    "\U0001d400", "\U00011099\U000110ba", "\U00011131\U00011127", "\U00011347\U0001133e",
    "\U00016d63\U00016d67", "\U00016d67\U00016d67", "\U00016d63\U00016d67\U00016d67",
    "\U000105d2\u0307", "\U00011382\U000113c9", "\U0001e5ee", "\U0002f800",
    # ill-formed UTF-8
    b"e\xff\xcc\x81", b"a\xcc\x81\xff\xcc\xa3", b"\xff", b"\xc3", b"a\xe2\x80",
    b"\xed\xa0\x80\xcc\x81", b"\xe2\x80x\xcc\x81", b"\xe2\x84\xab\xc0\xaf\xe2\x84\xab",
    b"\xf4\x90\x80\x80a\xcc\x81",
    # misc
    "\u0000a\u0301", "   ", "\t\n", "Cafe\u0301 na\u0131\u0308ve \u00c5ngstr\u00f6m",
    "\U0001f469\u200d\U0001f4bb\u0301", "\u0627\u0653", "\u0627\u0654\u0655",
]


def pools():
    """Characters with decompositions or non-zero ccc (Python's Unicode data), plus Hangul."""
    marks, decomp = [], []
    for cp in range(0x20, 0x30000):
        if 0xD800 <= cp < 0xE000:
            continue
        ch = chr(cp)
        if unicodedata.combining(ch):
            marks.append(ch)
        elif unicodedata.decomposition(ch):
            decomp.append(ch)
    hangul = [chr(c) for c in list(range(0x1100, 0x1113)) + list(range(0x1161, 0x1176))
              + list(range(0x11a7, 0x11c3)) + [0xac00, 0xac01, 0xb098, 0xd7a3]]
    return marks, decomp, hangul


def random_cases(n):
    rng = random.Random(int(os.environ.get("TEXT4_SEED", SEED)))
    marks, decomp, hangul = pools()
    starters = list("aeiouAEOUcnsz") + ["\u09c7", "\u0b47", "\u0cc6", "\u0dd9", "\u1b05"]
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 8)):
            r = rng.random()
            if r < 0.3:
                parts.append(rng.choice(marks))
            elif r < 0.55:
                parts.append(rng.choice(decomp))
            elif r < 0.65:
                parts.append(rng.choice(hangul))
            elif r < 0.8:
                parts.append(rng.choice(starters))
            elif r < 0.95:
                cp = rng.randrange(0x10FFFF)
                parts.append(chr(cp) if not 0xD800 <= cp < 0xE000 else "x")
            else:
                parts.append(rng.choice(["\udcff", "\udcc3", "\udced\udca0\udc80"]))
        s = "".join(parts).encode("utf-8", "surrogateescape")
        out.append(s)
    return out


def all_inputs():
    fixed = [c if isinstance(c, bytes) else c.encode("utf-8") for c in CASES]
    return fixed + random_cases(int(os.environ.get("TEXT4_RANDOM", 300)))


def offsets_for(normalized):
    lens = tf.strings.length(normalized)
    lens = tf.cast(tf.reshape(lens, [-1]), tf.int64)
    return tf.ragged.range(tf.fill(tf.shape(lens), tf.constant(-2, tf.int64)), lens + 3)


class OffsetsMap(tf.Module):
    def _form(self, text, form):
        out, offsets_map = tf_text.normalize_utf8_with_offsets_map(text, form)
        offs = offsets_for(out)
        src = tf_text.find_source_offsets(offsets_map, offs)
        return {"output": out, "source": src.flat_values, "splits": src.row_splits}

    @tf.function(input_signature=[S([None], tf.string)])
    def nfc(self, text):
        return self._form(text, "NFC")

    @tf.function(input_signature=[S([None], tf.string)])
    def nfd(self, text):
        return self._form(text, "NFD")

    @tf.function(input_signature=[S([None], tf.string)])
    def nfkc(self, text):
        return self._form(text, "nfkc")

    @tf.function(input_signature=[S([None], tf.string)])
    def nfkd(self, text):
        return self._form(text, "NFKD")

    @tf.function(input_signature=[S([None], tf.string), S([None], tf.int64),
                                  S([None], tf.int64)])
    def given(self, text, values, splits):
        out, offsets_map = tf_text.normalize_utf8_with_offsets_map(text, "NFKC")
        offs = tf.RaggedTensor.from_row_splits(values, splits, validate=False)
        src = tf_text.find_source_offsets(offsets_map, offs)
        return {"output": out, "source": src.flat_values}

    @tf.function(input_signature=[S([2, 3], tf.string), S([2, 3, 4], tf.int64)])
    def dense2d(self, text, offsets):
        out, offsets_map = tf_text.normalize_utf8_with_offsets_map(text, "NFC")
        return {"output": out, "source": tf_text.find_source_offsets(offsets_map, offsets)}


class FromVariant(tf.Module):
    """`RaggedTensorFromVariant` with an encoded tensor of rank 2..4 (TF's uniform split
    levels for d >= 3 are not consistent row partitions: copied, see ragged_variant.rs)."""

    @tf.function(input_signature=[S([None], tf.int32), S([None], tf.int64),
                                  S([9], tf.int64)])
    def from_variant_nd(self, values, inner_splits, outer_splits):
        rt = tf.RaggedTensor.from_nested_row_splits(values, [outer_splits, inner_splits],
                                                    validate=False)
        enc = rt._to_variant(batched_input=True)  # [8], each of ragged rank 1
        res = {}
        for name, shape, rr, dt in [("d2", [2, 4], 3, tf.int64), ("d3", [2, 2, 2], 4, tf.int64),
                                    ("d4", [2, 1, 2, 2], -1, tf.int64)]:
            out = gen_ragged_conversion_ops.ragged_tensor_from_variant(
                tf.reshape(enc, shape), input_ragged_rank=1 if rr != -1 else -1,
                output_ragged_rank=len(shape) + 1, Tvalues=tf.int32, Tsplits=dt)
            for i, sp in enumerate(out.output_nested_splits):
                res[f"{name}_splits{i}"] = sp
            res[f"{name}_values"] = out.output_dense_values
        # int32 splits, components of ragged rank 0 (a rank-2 ragged's rows).
        rt32 = tf.RaggedTensor.from_row_splits(values, tf.cast(inner_splits, tf.int32),
                                               validate=False)
        enc32 = rt32[:8]._to_variant(batched_input=True)
        out = gen_ragged_conversion_ops.ragged_tensor_from_variant(
            tf.reshape(enc32, [2, 2, 2]), input_ragged_rank=0, output_ragged_rank=3,
            Tvalues=tf.int32, Tsplits=tf.int32)
        for i, sp in enumerate(out.output_nested_splits):
            res[f"d3r0_splits{i}"] = sp
        res["d3r0_values"] = out.output_dense_values
        return res


def build_text4_ragged_variant():
    out = mf.fresh_dir("text4_ragged_variant")
    module = FromVariant()
    tf.saved_model.save(module, out, signatures={"serving_default": module.from_variant_nd})
    # 8 outer rows over 12 inner rows (empty inner and outer rows included).
    inner = [0, 2, 2, 3, 6, 7, 7, 9, 10, 12, 13, 13, 15]
    outer = [0, 1, 3, 3, 5, 8, 9, 11, 12]
    values = list(range(100, 100 + inner[-1]))
    ins = {"values": values, "inner_splits": inner, "outer_splits": outer}
    write_json(os.path.join(out, "inputs.json"), ins)
    write_json(os.path.join(out, "golden.json"), mf.run_signature(out, ins))
    mf.write_signatures_json(out)
    mf.write_variables_json(out)
    return out


def write_json(path, obj):
    """Compact JSON (the goldens hold ~10^4 offsets)."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, sort_keys=True, ensure_ascii=False, allow_nan=False,
                  separators=(",", ":"))
        f.write("\n")


def j(bs):
    return [mf.bytes_to_json(b) for b in bs]


def build_text4_offsets_map():
    out = mf.fresh_dir("text4_offsets_map")
    module = OffsetsMap()
    sigs = ["nfc", "nfd", "nfkc", "nfkd", "given", "dense2d"]
    signatures = {s: getattr(module, s) for s in sigs}
    signatures["serving_default"] = module.nfc
    tf.saved_model.save(module, out, signatures=signatures)

    raw = all_inputs()

    def write(sig, ins, js):
        write_json(os.path.join(out, f"inputs_{sig}.json"), js)
        write_json(os.path.join(out, f"golden_{sig}.json"), mf.run_signature(out, ins, sig))

    write_json(os.path.join(out, "inputs.json"), {"text": j(raw)})
    write_json(os.path.join(out, "golden.json"), mf.run_signature(out, {"text": raw}))
    for sig in ["nfd", "nfkc", "nfkd"]:
        write(sig, {"text": raw}, {"text": j(raw)})
    # given: 5 strings, 5 non-empty offset rows with empty rows between them (empty rows
    # consume no map), offsets past the end, negative, and past int32 (TF truncates to int32).
    texts = [b"\xef\xac\x81\xc3\xa9 x", b"a\xcc\x81\xcc\xa3b", b"", b"\xe2\x84\xab", b"abc"]
    rows = [[0, 1, 2, 3, 4, 5, 6, 9], [], [0, 5, -1, -7, 6, 7, 100], [], [0], [],
            [0, 1, 2, 2 ** 32 + 1, 2 ** 31, 2 ** 32 - 1], [2, 1, 0, 3, 4, 5], []]
    values = [v for r in rows for v in r]
    splits = [0]
    for r in rows:
        splits.append(splits[-1] + len(r))
    ins = {"text": texts, "values": values, "splits": splits}
    write("given", ins, {"text": j(texts), "values": values, "splits": splits})
    grid = [[b"\xe2\x84\xab\xcc\x81", b"a\xcc\x81", b"x"], [b"\xea\xb0\x80\xe1\x86\xa8", b"", b"q"]]
    offs = [[[0, 1, 2, 3], [0, 1, 2, 3], [0, 1, 2, 3]], [[0, 1, 2, 3], [0, 0, 0, 1], [1, 0, 1, 2]]]
    write("dense2d", {"text": grid, "offsets": offs},
          {"text": [j(r) for r in grid], "offsets": offs})
    mf.write_signatures_json(out)
    mf.write_variables_json(out)
    return out


BUILDERS = {
    "text4_offsets_map": build_text4_offsets_map,
    "text4_ragged_variant": build_text4_ragged_variant,
}


def main(argv):
    mf.run_builders(BUILDERS, argv[1:], f"TensorFlow {tf.__version__}, tensorflow_text {tf_text.__version__}")


if __name__ == "__main__":
    main(sys.argv)

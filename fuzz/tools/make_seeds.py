"""Writes the committed seed corpora under fuzz/corpus/<target>/seed-*.

Run from the repository root with the TF venv (only the checkpoint seeds need TensorFlow):
    /work/venv/bin/python fuzz/tools/make_seeds.py
Seeds are small on purpose (< 100 KB each); libFuzzer grows its own corpus next to them,
which is git-ignored.
"""
import io
import json
import os
import struct
import sys
import tarfile
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIX = os.path.join(ROOT, "tests", "fixtures")
OUT = os.path.join(ROOT, "fuzz", "corpus")


def write(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def read(*p):
    with open(os.path.join(FIX, *p), "rb") as f:
        return f.read()


def ckpt(index, shard):
    """The layout tfhub::fuzzing::split_checkpoint reads."""
    return struct.pack("<I", len(index)) + index + shard


def saved_model_plan():
    write("saved_model_plan", "control_flow", read("control_flow", "saved_model.pb"))
    write("saved_model_plan", "mlp", read("mlp", "saved_model.pb"))
    write("saved_model_plan", "frozen_mlp", read("frozen_mlp", "model.pb"))


def checkpoint():
    v = os.path.join("control_flow", "variables")
    write("checkpoint", "control_flow",
          ckpt(read(v, "variables.index"), read(v, "variables.data-00000-of-00001")))
    import tensorflow as tf  # only here: the other seeds need no TF

    with tempfile.TemporaryDirectory() as d:
        prefix = os.path.join(d, "variables")
        # Strings (incl. non-UTF-8 and empty), bool, int64, half and a partitioned float
        # variable stored as two slices ("full shape start,length" specs).
        tf.raw_ops.SaveV2(
            prefix=prefix,
            tensor_names=["s", "b", "i", "h", "part", "part"],
            shape_and_slices=["", "", "", "", "4 3 0,2:-", "4 3 2,2:-"],
            tensors=[
                tf.constant([b"", b"hello", b"\xff\xfe", b"x" * 40]),
                tf.constant([True, False, True]),
                tf.constant([[1, -2], [3, 2**40]], tf.int64),
                tf.constant([0.5, -1.0], tf.float16),
                tf.reshape(tf.range(6, dtype=tf.float32), [2, 3]),
                tf.reshape(tf.range(6, 12, dtype=tf.float32), [2, 3]),
            ],
        )
        with open(prefix + ".index", "rb") as f:
            index = f.read()
        with open(prefix + ".data-00000-of-00001", "rb") as f:
            shard = f.read()
    write("checkpoint", "mixed", ckpt(index, shard))


def tarball(members, gz):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w", format=tarfile.GNU_FORMAT) as t:
        for name, data in members:
            if data is None:
                ti = tarfile.TarInfo(name)
                ti.type = tarfile.DIRTYPE
                ti.mode = 0o755
                t.addfile(ti)
            else:
                ti = tarfile.TarInfo(name)
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def tar_extract():
    v = os.path.join("control_flow", "variables")
    model = [
        ("model/", None),
        ("model/saved_model.pb", read("frozen_mlp", "model.pb")),
        ("model/variables/", None),
        ("model/variables/variables.index", read(v, "variables.index")),
        ("model/variables/variables.data-00000-of-00001",
         read(v, "variables.data-00000-of-00001")),
    ]
    write("tar_extract", "wrapped.tar.gz", tarball(model, True))
    flat = [(n[len("model/"):], d) for n, d in model[1:]]
    write("tar_extract", "flat.tar", tarball(flat, False))
    write("tar_extract", "dotslash.tar.gz", tarball([("./saved_model.pb", b"x"), ("./a/./b", b"y")], True))


def inputs_json():
    for name in ["control_flow", "nnlm_norm_dim32", "frozen_mlp", "hub_classifier", "mlp"]:
        write("inputs_json", name, read(name, "inputs.json"))
    write("inputs_json", "b64", json.dumps(
        {"s": [[{"b64": "/w=="}, "a"]], "n": [[1e308, -0.0]], "b": [True, False]}).encode())


def string_op(op, flags, p1, p2, aux, aux2, strings):
    """The layout tfhub::fuzzing::string_ops reads."""
    out = bytes([op, flags]) + struct.pack("<ii", p1, p2)
    for f in [aux, aux2, *strings]:
        out += bytes([len(f)]) + f
    return out


def string_ops():
    words = [b"Hello World", b"  a,b,,c ", "ÀÉÎ Σ İ ß".encode(), b"\xff\xc3", b""]
    seeds = {
        "split": (0, 1, 0, 0, b",", b"", words),
        "split_v2": (1, 0, 2, 0, b" ", b"", words),
        "regex": (2, 1, 0, 0, rb"(\w+)\s*", rb"<\1>", words),
        "static_regex": (3, 0, 0, 0, rb"[aeiou]+|\d{2,}", rb"\0\0", words),
        "lower_utf8": (4, 1, 0, 0, b"", b"", words),
        "upper": (5, 0, 0, 0, b"", b"", words),
        "substr": (6, 0, 0, 3, b"", b"", words),
        "length_chars": (7, 1, 0, 0, b"", b"", words),
        "hash": (8, 0, 1000, 0, b"", b"", words),
        "hash_fast": (9, 0, 7, 0, b"", b"", words),
        "hash_strong": (10, 0, 11, 42, b"", b"", words),
        "strip": (11, 0, 0, 0, b"", b"", words),
        "join": (12, 0, 0, 0, b"!", b"--", words),
        "reduce_join": (13, 0b11, -1, 0, b"|", b"", words[:4]),
        "as_string": (14, 0b010000, 8, 3, b"0", b"", [struct.pack("<dd", 3.25, -1e300)]),
        "fingerprint": (15, 0, 0, 0, b"", b"", words),
    }
    for name, s in seeds.items():
        write("string_ops", name, string_op(*s))


def sentencepiece():
    """Layout tfhub::fuzzing::sentencepiece reads: LE u32 model length, model, text. The BPE
    model is the spm_bpe fixture's (taken from its SentencepieceOp attr, byte fallback); the
    unigram one is trained here, tiny and without a charsmap, to stay under 100 KB."""
    import sentencepiece as spm
    from tensorflow.core.protobuf import saved_model_pb2

    sm = saved_model_pb2.SavedModel()
    sm.ParseFromString(read("spm_bpe", "saved_model.pb"))
    bpe = next(n.attr["model"].s for f in sm.meta_graphs[0].graph_def.library.function
               for n in f.node_def if n.op == "SentencepieceOp")
    lines = ["the quick brown fox jumps over the lazy dog", "hello world [MASK] again",
             "Café naïve 日本語 😀"] * 50
    f = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_writer=f, vocab_size=40,
                                   normalization_rule_name="identity", num_threads=1,
                                   user_defined_symbols=["[MASK]"], minloglevel=2)
    text = "Hello  wörld [MASK]\tﬁ \xff".encode("utf-8", "surrogateescape") + b"\xff\xed\xa0\x80"
    for name, model in [("bpe", bpe), ("unigram", f.getvalue())]:
        write("sentencepiece", name, struct.pack("<I", len(model)) + model + text)


if __name__ == "__main__":
    os.chdir(ROOT)
    for f in [saved_model_plan, tar_extract, inputs_json, string_ops, checkpoint, sentencepiece]:
        f()
    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(OUT) for f in fs
                if f.startswith("seed-"))
    print(f"seeds: {total} bytes", file=sys.stderr)

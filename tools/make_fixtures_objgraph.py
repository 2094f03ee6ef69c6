#!/usr/bin/env python3
"""Fixtures for calling a SavedModel's object graph (issue 14): models whose entry points are
`__call__` and other tf.function attributes, not (only) SignatureDefs.

Writes, per fixture directory under tests/fixtures/:
  calls.json  a list of {"id", "function", "consts", "inputs", "golden"}: `function` is the
              attribute path (dotted), `consts` the Python-constant keyword arguments,
              `inputs` the tensor arguments keyed by argument name in the CLI's `--inputs`
              format (a list argument is a JSON list, a ragged value
              {"dtype", "values", "row_splits": [outer, ..., inner]}), `golden` the result of
              `hub.load(dir).<function>(**inputs, **consts)` in the CLI's output format.
  keras.json  {"inputs", "golden", "entry"}: `hub.KerasLayer` on the model (see each builder
              for the KerasLayer arguments TF needs), golden in the CLI's output format.

Usage: /work/venv/bin/python tools/make_fixtures_objgraph.py [NAME...]
"""

import collections
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import make_fixtures as mf  # noqa: E402  (sets TF env vars before importing TF)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_hub as hub  # noqa: E402

SENTENCES = ["the cat sat on the mat", "Hello  there, general kenobi", "", "tree free bee"]


def value_to_json(v):
    """A structured result in the CLI's JSON format."""
    if isinstance(v, tf.RaggedTensor):
        splits = [s.numpy().tolist() for s in v.nested_row_splits]
        flat = v.flat_values
        return {
            "dtype": flat.dtype.name,
            "values": mf.flat_values(flat.numpy()),
            "row_splits": splits,
        }
    if isinstance(v, dict):
        return {k: value_to_json(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return {f"output_{i}": value_to_json(x) for i, x in enumerate(v)}
    return mf.tensor_to_json(v)


def result_to_json(v):
    """Top level: a single tensor is `output_0`, tuples `output_<i>`, dicts by key."""
    if isinstance(v, (tf.Tensor, tf.RaggedTensor)):
        return {"output_0": value_to_json(v)}
    return value_to_json(v)


def ragged_to_json(rt):
    return value_to_json(rt)


def write_calls(out, calls):
    """`calls`: [(id, function path, consts, json inputs, python result)]."""
    rows = []
    for cid, fn, consts, inputs, result in calls:
        rows.append({"id": cid, "function": fn, "consts": consts, "inputs": inputs,
                     "golden": result_to_json(result)})
    mf.write_json(os.path.join(out, "calls.json"), rows)


class TextEmbedding(mf.TextEmbedding):
    pass


def build_objgraph_embed():
    """A text embedding saved with signatures={}: only `__call__` exists."""
    mf.seed_everything()
    out = mf.fresh_dir("objgraph_embed")
    with tempfile.TemporaryDirectory() as tmp:
        vocab_path = os.path.join(tmp, "tokens.txt")
        with open(vocab_path, "w", encoding="utf-8", newline="\n") as f:
            for w in mf.stdlib_vocab(300):
                f.write(w + "\n")
        module = TextEmbedding(vocab_path, 300, 20, 8, normalize=False)
        tf.saved_model.save(module, out, signatures={})
    layer = hub.KerasLayer(out)
    got = layer(tf.constant(SENTENCES))
    mf.write_json(os.path.join(out, "keras.json"), {
        "entry": "__call__", "inputs": SENTENCES, "golden": result_to_json(got)})
    loaded = hub.load(out)
    write_calls(out, [("call", "__call__", {}, {"sentences": SENTENCES},
                       loaded(tf.constant(SENTENCES)))])
    mf.write_signatures_json(out)
    mf.write_variables_json(out)


VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "th", "the", "cat", "sat", "on", "mat", "h", "llo",
         "there,", "g", "n", "ral", "k", "nobi", "tr", "fr", "b"]


class Tokenizer(tf.Module):
    """Splits on whitespace into words, then each word on "e" into "word pieces"."""

    def __init__(self, vocab_path):
        super().__init__()
        self.vocab_file = tf.saved_model.Asset(vocab_path)
        init = tf.lookup.TextFileInitializer(
            self.vocab_file, key_dtype=tf.string, key_index=tf.lookup.TextFileIndex.WHOLE_LINE,
            value_dtype=tf.int64, value_index=tf.lookup.TextFileIndex.LINE_NUMBER)
        self.table = tf.lookup.StaticHashTable(init, default_value=1)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def tokenize(self, sentences):
        words = tf.strings.split(tf.strings.lower(sentences))
        pieces = tf.strings.split(words, "e")
        return tf.ragged.map_flat_values(self.table.lookup, pieces)


class BertPreprocessor(tf.Module):
    def __init__(self, vocab_path):
        super().__init__()
        self.tokenizer = Tokenizer(vocab_path)
        self.cls_id = tf.Variable(2, dtype=tf.int64, trainable=False, name="cls_id")
        self.sep_id = tf.Variable(3, dtype=tf.int64, trainable=False, name="sep_id")
        self.tokenize = self.tokenizer.tokenize

    @tf.function
    def bert_pack_inputs(self, segments, seq_length=16):
        n = len(segments)
        budget = (seq_length - 1 - n) // n
        batch = segments[0].nrows()
        word_ids = [tf.fill([batch, 1], self.cls_id)]
        mask = [tf.ones([batch, 1], tf.int64)]
        types = [tf.zeros([batch, 1], tf.int64)]
        used = 1
        for i, seg in enumerate(segments):
            flat = seg.merge_dims(1, 2)
            ids = flat.to_tensor(default_value=0, shape=[None, budget])
            m = tf.ones_like(flat).to_tensor(default_value=0, shape=[None, budget])
            word_ids += [ids, tf.fill([batch, 1], self.sep_id)]
            mask += [m, tf.ones([batch, 1], tf.int64)]
            types += [m * i, tf.fill([batch, 1], tf.constant(i, tf.int64))]
            used += budget + 1
        pad = tf.zeros([batch, seq_length - used], tf.int64)
        return {
            "input_word_ids": tf.cast(tf.concat(word_ids + [pad], 1), tf.int32),
            "input_mask": tf.cast(tf.concat(mask + [pad], 1), tf.int32),
            "input_type_ids": tf.cast(tf.concat(types + [pad], 1), tf.int32),
        }

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, sentences):
        return self.bert_pack_inputs([self.tokenize(sentences)], seq_length=16)


def build_objgraph_bert_pre():
    """A BERT-preprocessor-shaped model from plain TF ops: `__call__`, `tokenize` (rank-3
    ragged), `bert_pack_inputs(segments, seq_length=N)` over a list of ragged tensors."""
    mf.seed_everything()
    out = mf.fresh_dir("objgraph_bert_pre")
    spec = tf.RaggedTensorSpec([None, None, None], tf.int64, ragged_rank=2,
                               row_splits_dtype=tf.int64)
    with tempfile.TemporaryDirectory() as tmp:
        vocab_path = os.path.join(tmp, "vocab.txt")
        with open(vocab_path, "w", encoding="utf-8", newline="\n") as f:
            for w in VOCAB:
                f.write(w + "\n")
        m = BertPreprocessor(vocab_path)
        m.bert_pack_inputs.get_concrete_function([spec], seq_length=16)
        m.bert_pack_inputs.get_concrete_function([spec, spec], seq_length=16)
        m.bert_pack_inputs.get_concrete_function([spec, spec], seq_length=24)
        tf.saved_model.save(m, out, signatures={})
    loaded = hub.load(out)
    a = ["the cat sat on the mat", "hello there"]
    b = ["general kenobi", "tree free bee bee bee bee"]
    ta = loaded.tokenize(tf.constant(a))
    tb = loaded.tokenize(tf.constant(b))
    calls = [
        ("tokenize", "tokenize", {}, {"sentences": a}, ta),
        ("tokenizer.tokenize", "tokenizer.tokenize", {}, {"sentences": b}, tb),
        ("pack2_24", "bert_pack_inputs", {"seq_length": 24},
         {"segments": [ragged_to_json(ta), ragged_to_json(tb)]},
         loaded.bert_pack_inputs([ta, tb], seq_length=24)),
        ("pack2_default", "bert_pack_inputs", {},
         {"segments": [ragged_to_json(ta), ragged_to_json(tb)]},
         loaded.bert_pack_inputs([ta, tb])),
        ("pack1", "bert_pack_inputs", {"seq_length": 16},
         {"segments": [ragged_to_json(tb)]},
         loaded.bert_pack_inputs([tb], seq_length=16)),
        ("call", "__call__", {}, {"sentences": SENTENCES}, loaded(tf.constant(SENTENCES))),
    ]
    write_calls(out, calls)
    layer = hub.KerasLayer(out)
    mf.write_json(os.path.join(out, "keras.json"), {
        "entry": "__call__", "inputs": SENTENCES,
        "golden": result_to_json(layer(tf.constant(SENTENCES)))})
    mf.write_signatures_json(out)
    mf.write_variables_json(out)


class DefaultOnly(tf.Module):
    def __init__(self):
        super().__init__()
        rng = np.random.RandomState(mf.SEED)
        self.w = tf.Variable(rng.standard_normal((4, 3)).astype(np.float32), name="w")
        self.b = tf.Variable(rng.standard_normal((3,)).astype(np.float32), name="b")

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
    def f(self, x):
        return {"default": tf.tanh(tf.matmul(x, self.w) + self.b)}


X = [[0.5, -1.0, 2.0, 0.25], [1.5, 0.0, -0.75, 3.0]]


def build_objgraph_default_sig():
    """Only a `default` signature (TF1-Hub-like), no `__call__`."""
    mf.seed_everything()
    out = mf.fresh_dir("objgraph_default_sig")
    m = DefaultOnly()
    tf.saved_model.save(m, out, signatures={"default": m.f})
    # hub.KerasLayer(out) refuses ("Signature name has to be specified for non-callable saved
    # models"); our fallback picks `default`, which is what this call does.
    layer = hub.KerasLayer(out, signature="default", output_key="default")
    mf.write_json(os.path.join(out, "keras.json"), {
        "entry": "signature default", "inputs": X,
        "golden": result_to_json(layer(tf.constant(X)))})
    loaded = hub.load(out)
    write_calls(out, [("f", "f", {}, {"x": X}, loaded.f(tf.constant(X)))])
    mf.write_signatures_json(out)
    mf.write_variables_json(out)


class TwoEntry(tf.Module):
    def __init__(self):
        super().__init__()
        rng = np.random.RandomState(mf.SEED + 1)
        self.w = tf.Variable(rng.standard_normal((4, 3)).astype(np.float32), name="w")
        self.scale = tf.constant(np.float32(0.5))

    @tf.function
    def __call__(self, x, training=False):
        y = tf.matmul(x, self.w)
        if training:
            y = y * self.scale
        return y

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="features")])
    def serve(self, features):
        return {"probs": tf.nn.softmax(tf.matmul(features, self.w)),
                "logits": tf.matmul(features, self.w) + 1.0}


def build_objgraph_two_entry():
    """`serving_default` and a different `__call__(x, training=False)` (traced both ways)."""
    mf.seed_everything()
    out = mf.fresh_dir("objgraph_two_entry")
    m = TwoEntry()
    spec = tf.TensorSpec([None, 4], tf.float32)
    m.__call__.get_concrete_function(spec, training=True)
    m.__call__.get_concrete_function(spec, training=False)
    tf.saved_model.save(m, out, signatures={"serving_default": m.serve})
    layer = hub.KerasLayer(out)
    mf.write_json(os.path.join(out, "keras.json"), {
        "entry": "__call__", "inputs": X, "golden": result_to_json(layer(tf.constant(X)))})
    loaded = hub.load(out)
    calls = [
        ("call_default", "__call__", {}, {"x": X}, loaded(tf.constant(X))),
        ("call_train", "__call__", {"training": True}, {"x": X},
         loaded(tf.constant(X), training=True)),
        ("serve", "serve", {}, {"features": X}, loaded.serve(tf.constant(X))),
    ]
    write_calls(out, calls)
    mf.finish_model(out, {"features": X})


BUILDERS = collections.OrderedDict([
    ("objgraph_embed", build_objgraph_embed),
    ("objgraph_bert_pre", build_objgraph_bert_pre),
    ("objgraph_default_sig", build_objgraph_default_sig),
    ("objgraph_two_entry", build_objgraph_two_entry),
])


def main(argv):
    tf.config.experimental.enable_op_determinism()
    mf.run_builders(BUILDERS, argv[1:])


if __name__ == "__main__":
    main(sys.argv)

#!/usr/bin/env python3
"""Fixtures for tests/text2.rs: the tensorflow_text 2.21.1 ops beyond the classic BERT
preprocessing set, and the ragged variant ops `tf.map_fn` over ragged tensors compiles to.

* `text2_ragged_map`: `tf.map_fn` over RaggedTensors (RaggedTensorToVariant batched and not,
  TensorListFromTensor/SetItem/Stack of variants, RaggedTensorFromVariant), ragged_rank 1 and
  2, int32 and int64 splits, 2-D values, an empty batch, and the direct `_to_variant` /
  `_from_variant` round trips.
* `text2_tokenizers`: WhitespaceTokenizer (TFText>WhitespaceTokenizeWithOffsetsV2 with its
  config bitset), the older codepoint WhitespaceTokenizeWithOffsets, UnicodeScriptTokenizer
  (keep_whitespace false/true) on adversarial text; `script_sweep.json` holds digests per
  block of 4096 code points of UnicodeScriptTokenizer over every scalar value.
* `text2_fast_wordpiece`: FastWordpieceTokenizer (end-to-end and no_pretokenization, ids and
  strings, detokenize) and FastBertTokenizer (FastBertNormalize, lower-case).
* `text2_bert_preprocess` + `text2_bert_encoder`: a TF Hub-style BERT preprocessor (tensorflow_text
  BertTokenizer; `tokenize`, `bert_pack_inputs`, `__call__`) and a tiny BERT encoder, chained
  through `hub.KerasLayer` as in TF Hub's BERT tutorial (`e2e.json`).

Run: /work/venv/bin/python tools/make_fixtures_text2.py [NAME...]
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import make_fixtures as mf  # noqa: E402
import make_fixtures_bert as mb  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_text as text  # noqa: E402

S = tf.TensorSpec


def save(module, name, sigs):
    out = mf.fresh_dir(name)
    tf.saved_model.save(module, out, signatures={k: getattr(module, k) for k in sigs})
    mb.shrink_saved_model(out)
    return out


def write_sig(out, sig, ins):
    js = {k: ([mf.bytes_to_json(x) for x in v] if isinstance(v, list) and v
              and isinstance(v[0], bytes) else v) for k, v in ins.items()}
    mf.write_json(os.path.join(out, f"inputs_{sig}.json"), js)
    mf.write_json(os.path.join(out, f"golden_{sig}.json"), mf.run_signature(out, ins, sig))


# --------------------------------------------------------------------------
# Ragged map_fn
# --------------------------------------------------------------------------


class RaggedMap(tf.Module):
    @tf.function(input_signature=[S([None], tf.int32, name="values"),
                                  S([None], tf.int64, name="splits"),
                                  S([], tf.int32, name="limit")])
    def map_truncate(self, values, splits, limit):
        # What round_robin_truncate_inputs compiled to (2020-21 BERT preprocessors).
        rt = tf.RaggedTensor.from_row_splits(values, splits, validate=False)
        out = tf.map_fn(lambda r: r[:limit], rt,
                        fn_output_signature=tf.RaggedTensorSpec([None], tf.int32, 0))
        return {"values": out.values, "row_splits": out.row_splits}

    @tf.function(input_signature=[S([None], tf.string, name="values"),
                                  S([None], tf.int32, name="inner"),
                                  S([None], tf.int32, name="outer")])
    def map_rank2(self, values, inner, outer):
        rt = tf.RaggedTensor.from_nested_row_splits(values, [outer, inner], validate=False)
        spec = tf.RaggedTensorSpec([None, None], tf.string, 1, row_splits_dtype=tf.int32)
        out = tf.map_fn(lambda r: r[::-1, :2], rt, fn_output_signature=spec)
        return {"values": out.flat_values, "outer": out.row_splits,
                "inner": out.values.row_splits}

    @tf.function(input_signature=[S([None, 2], tf.float32, name="values"),
                                  S([None], tf.int64, name="splits")])
    def map_dense_values(self, values, splits):
        rt = tf.RaggedTensor.from_row_splits(values, splits, validate=False)
        spec = tf.RaggedTensorSpec([None, 2], tf.float32, 0)
        out = tf.map_fn(lambda r: r[1:] * 2.0, rt, fn_output_signature=spec)
        return {"values": out.values, "row_splits": out.row_splits}

    @tf.function(input_signature=[S([None], tf.int64, name="values"),
                                  S([None], tf.int64, name="inner"),
                                  S([None], tf.int64, name="outer")])
    def round_trip(self, values, inner, outer):
        rt = tf.RaggedTensor.from_nested_row_splits(values, [outer, inner], validate=False)
        batched = rt._to_variant(batched_input=True)
        back = tf.RaggedTensor._from_variant(batched, tf.int64, output_ragged_rank=2,
                                             input_ragged_rank=1)
        whole = rt._to_variant(batched_input=False)
        same = tf.RaggedTensor._from_variant(whole, tf.int64, output_ragged_rank=2)
        return {"values": back.flat_values, "outer": back.row_splits,
                "inner": back.values.row_splits, "same_values": same.flat_values,
                "same_outer": same.row_splits, "same_inner": same.values.row_splits}


def build_ragged_map():
    m = RaggedMap()
    # map_truncate again under a second name, for an empty batch.
    m.map_truncate_empty = m.map_truncate
    sigs = ["map_truncate", "map_truncate_empty", "map_rank2", "map_dense_values", "round_trip"]
    out = save(m, "text2_ragged_map", sigs)
    write_sig(out, "map_truncate", {"values": [1, 2, 3, 4, 5, 6, 7, 8, 9],
                                    "splits": [0, 3, 3, 7, 9], "limit": 2})
    write_sig(out, "map_truncate_empty", {"values": [], "splits": [0], "limit": 2})
    write_sig(out, "map_rank2", {
        "values": [b"a", b"b", b"c", b"d", b"e", b"f", b"g", b"\xff"],
        "inner": [0, 3, 3, 5, 6, 8], "outer": [0, 2, 2, 5]})
    write_sig(out, "map_dense_values", {
        "values": [[1.5, 2.0], [3.0, 4.0], [5.0, 6.25], [7.0, 8.0], [9.0, 10.0]],
        "splits": [0, 2, 2, 5]})
    write_sig(out, "round_trip", {"values": [10, 20, 30, 40, 50, 60],
                                  "inner": [0, 2, 2, 3, 6], "outer": [0, 1, 1, 4]})
    mf.write_signatures_json(out)
    mf.write_variables_json(out)
    mb.dump_ops(out)


# --------------------------------------------------------------------------
# Whitespace and script tokenizers
# --------------------------------------------------------------------------

WHITESPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007" \
             "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"


def tokenizer_inputs():
    # The BERT fixtures' adversarial text, its 10k-character input cut to 600 (size).
    strs = mb.adversarial_inputs()[:-1] + [mb.long_text(600).encode("utf-8")]
    strs += [
        "a\u3000b", "a\u00a0b c", "\u0085x\u0085", "123 456", "!! ?", "x . 3",
        "".join(f"w{c}" for c in WHITESPACE) + "end",
        "not\u180espace\u200bzw\ufeffbom\u2060wj",
        "Latinκαιрусский中文日本語カタカナ한국어عربيעבריתहिन्दी",
        "a\u0301\u0308 \u0301x 1\u0301 \u064b\u0627",
        "\U000e0041\U00010000\U0001f600\u4e00\U00020000",
    ]
    strs = [s if isinstance(s, bytes) else s.encode("utf-8") for s in strs]
    strs += [b"a\xffb", b" \xff ", b"\xe3\x80 x", b"a\xe3\x80\x80"]
    return strs


class Tokenizers(tf.Module):
    def __init__(self):
        super().__init__()
        self.ws_tok = text.WhitespaceTokenizer()
        self.script_tok = text.UnicodeScriptTokenizer()
        self.keep_tok = text.UnicodeScriptTokenizer(keep_whitespace=True)

    @tf.function(input_signature=[S([None], tf.string, name="text")])
    def whitespace(self, s):
        t, a, b = self.ws_tok.tokenize_with_offsets(s)
        return {"tokens": t.values, "starts": a.values, "ends": b.values,
                "row_splits": t.row_splits}

    @tf.function(input_signature=[S([None], tf.string, name="text")])
    def whitespace_v1(self, s):
        from tensorflow_text.python.ops import whitespace_tokenizer as wt
        cps = tf.strings.unicode_decode(s, "UTF-8")
        o = wt.gen_whitespace_tokenizer.whitespace_tokenize_with_offsets(
            input_values=cps.flat_values, input_splits=cps.row_splits)
        return {"values": o[0], "inner_splits": o[1], "starts": o[2], "limits": o[3],
                "outer_splits": o[4]}

    @tf.function(input_signature=[S([None], tf.string, name="text")])
    def script(self, s):
        t, a, b = self.script_tok.tokenize_with_offsets(s)
        return {"tokens": t.values, "starts": a.values, "ends": b.values,
                "row_splits": t.row_splits}

    @tf.function(input_signature=[S([None], tf.string, name="text")])
    def script_keep(self, s):
        t, a, b = self.keep_tok.tokenize_with_offsets(s)
        return {"tokens": t.values, "starts": a.values, "ends": b.values,
                "row_splits": t.row_splits}


SWEEP_CHUNK = 64


def script_sweep_strings(block):
    """One block's strings: runs of SWEEP_CHUNK consecutive scalar values, so token
    boundaries show where the script changes (the Rust test builds the same strings)."""
    cps = [c for c in range(block * mb.BLOCK, (block + 1) * mb.BLOCK)
           if not 0xD800 <= c <= 0xDFFF]
    return ["".join(chr(c) for c in cps[i:i + SWEEP_CHUNK]).encode("utf-8")
            for i in range(0, len(cps), SWEEP_CHUNK)]


def build_tokenizers():
    m = Tokenizers()
    sigs = ["whitespace", "whitespace_v1", "script", "script_keep"]
    out = save(m, "text2_tokenizers", sigs)
    raw = tokenizer_inputs()
    for sig in sigs:
        write_sig(out, sig, {"text": raw})
    loaded = tf.saved_model.load(out)
    digests = []
    for b in range(0x110000 // mb.BLOCK):
        o = loaded.signatures["script_keep"](text=tf.constant(script_sweep_strings(b)))
        parts = o["tokens"].numpy().tolist()
        for name in ("starts", "ends", "row_splits"):
            parts.append(np.asarray(o[name].numpy(), "<i8").tobytes())
        digests.append(str(mb.digest(parts)))
    mf.write_json(os.path.join(out, "script_sweep.json"), {
        "block": mb.BLOCK, "chunk": SWEEP_CHUNK, "signature": "script_keep",
        "input": "per block (surrogates skipped), strings of `chunk` consecutive scalar values",
        "digest": "as text_unicode/sweep.json: tokens, then starts, ends, row_splits (i64 LE)",
        "digests": digests})
    mf.write_signatures_json(out)
    mf.write_variables_json(out)
    mb.dump_ops(out)


# --------------------------------------------------------------------------
# Fast WordPiece / Fast BERT
# --------------------------------------------------------------------------


def small_vocab(cased):
    return mb.make_vocab(cased=cased, size=300)


class FastWordpiece(tf.Module):
    def __init__(self, vocab):
        super().__init__()
        self.words = text.FastWordpieceTokenizer(
            vocab, token_out_type=tf.string, max_bytes_per_word=100, unknown_token="[UNK]",
            no_pretokenization=True)
        self.bert = text.FastBertTokenizer(vocab, lower_case_nfd_strip_accents=True,
                                           max_bytes_per_word=20, support_detokenization=True)
        # The same end-to-end FastWordpiece model on raw text (one model Const, not two).
        self.e2e = self.bert._fast_wordpiece_tokenizer

    @tf.function(input_signature=[S([None], tf.string, name="text")])
    def tokenize(self, s):
        t, a, b = self.e2e.tokenize_with_offsets(s)
        return {"ids": t.values, "starts": a.values, "ends": b.values,
                "row_splits": t.row_splits}

    @tf.function(input_signature=[S([None], tf.string, name="text")])
    def tokenize_words(self, s):
        t, a, b = self.words.tokenize_with_offsets(s)
        return {"pieces": t.values, "starts": a.values, "ends": b.values,
                "row_splits": t.row_splits}

    @tf.function(input_signature=[S([None], tf.int64, name="ids"),
                                  S([None], tf.int64, name="row_splits")])
    def detokenize(self, ids, splits):
        rt = tf.RaggedTensor.from_row_splits(ids, splits, validate=False)
        return {"text": self.e2e.detokenize(rt)}

    @tf.function(input_signature=[S([None], tf.string, name="text")])
    def fast_bert(self, s):
        t, a, b = self.bert.tokenize_with_offsets(s)
        return {"ids": t.flat_values, "starts": a.flat_values, "ends": b.flat_values,
                "row_splits": t.row_splits}


def build_fast_wordpiece():
    vocab = small_vocab(False)
    m = FastWordpiece(vocab)
    sigs = ["tokenize", "tokenize_words", "detokenize", "fast_bert"]
    out = save(m, "text2_fast_wordpiece", sigs)
    raw = tokenizer_inputs()[:-1] + [b"x" * 300, b"unaffable " * 3]
    for sig in ["tokenize", "fast_bert"]:
        write_sig(out, sig, {"text": raw})
    # The single-word model buffer (36 KB), for the corruption test and the fuzz seed.
    with open(os.path.join(out, "wp_model.bin"), "wb") as f:
        f.write(bytes(m.words._model.numpy().tolist()))
    words = [b"the", b"", b"unaffable", b"zzzz", b"a" * 101, b"caf\xc3\xa9", b"\xff",
             b"##", b"[UNK]", b"hello world", b"ing"]
    write_sig(out, "tokenize_words", {"text": words})
    n = len(vocab)
    ids = [0, 7, 8, 9, n - 1, 10, 20, 30, 100, 101, 102, 5, n - 2, 250, 251]
    write_sig(out, "detokenize", {"ids": ids, "row_splits": [0, 3, 3, 9, 15]})
    mf.write_signatures_json(out)
    mf.write_variables_json(out)
    mb.dump_ops(out)


# --------------------------------------------------------------------------
# BERT preprocessor -> tiny BERT encoder (TF Hub's BERT tutorial, end to end)
# --------------------------------------------------------------------------

E2E_SEQ = 16


class HubPreprocessor(tf.Module):
    """The object graph of a TF Hub `bert_*_preprocess` export: `tokenize`,
    `bert_pack_inputs(segments, seq_length=...)` and `__call__` (text -> encoder inputs)."""

    def __init__(self, vocab_path, vocab):
        super().__init__()
        self.cls_id, self.sep_id, self.pad_id = (vocab.index(t) for t in ("[CLS]", "[SEP]",
                                                                          "[PAD]"))
        self.vocab_file = tf.saved_model.Asset(vocab_path)
        init = tf.lookup.TextFileInitializer(
            self.vocab_file, key_dtype=tf.string,
            key_index=tf.lookup.TextFileIndex.WHOLE_LINE, value_dtype=tf.int64,
            value_index=tf.lookup.TextFileIndex.LINE_NUMBER)
        self.table = tf.lookup.StaticHashTable(init, default_value=-1)
        self.tokenizer = text.BertTokenizer(self.table, lower_case=True)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def tokenize(self, sentences):
        return tf.cast(self.tokenizer.tokenize(sentences), tf.int32)

    @tf.function
    def bert_pack_inputs(self, segments, seq_length=E2E_SEQ):
        return mb.pack(segments, seq_length, self.cls_id, self.sep_id, self.pad_id)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, sentences):
        return self.bert_pack_inputs([self.tokenize(sentences)], seq_length=E2E_SEQ)


def _layer_norm(x, g, b):
    mean, var = tf.nn.moments(x, axes=[-1], keepdims=True)
    return (x - mean) * tf.math.rsqrt(var + 1e-12) * g + b


class TinyBert(tf.Module):
    """A 2-layer, 16-wide BERT encoder in plain TF ops, called like TF Hub's BERT encoders:
    `__call__(dict(input_word_ids, input_mask, input_type_ids))` -> pooled / sequence output."""

    def __init__(self, vocab_size, hidden=16, layers=2, heads=2, inter=32):
        super().__init__()
        rng = np.random.RandomState(1234)

        def var(*shape, scale=0.2):
            return tf.Variable(rng.normal(0, scale, shape).astype(np.float32))

        self.heads = heads
        self.word = var(vocab_size, hidden)
        self.pos = var(E2E_SEQ, hidden)
        self.type = var(2, hidden)
        self.ln = [var(hidden, scale=0.1) + 1.0, var(hidden, scale=0.1)]
        self.ln = [tf.Variable(v) for v in self.ln]
        self.layers = []
        for _ in range(layers):
            self.layers.append({
                "qkv": var(hidden, 3 * hidden), "qkv_b": var(3 * hidden, scale=0.02),
                "out": var(hidden, hidden), "out_b": var(hidden, scale=0.02),
                "ln1_g": tf.Variable(np.ones(hidden, np.float32)), "ln1_b": var(hidden, scale=0.02),
                "in": var(hidden, inter), "in_b": var(inter, scale=0.02),
                "out2": var(inter, hidden, scale=0.1), "out2_b": var(hidden, scale=0.02),
                "ln2_g": tf.Variable(np.ones(hidden, np.float32)), "ln2_b": var(hidden, scale=0.02),
            })
        self.pool = var(hidden, hidden)
        self.pool_b = var(hidden, scale=0.02)

    @tf.function(input_signature=[{
        "input_word_ids": tf.TensorSpec([None, None], tf.int32),
        "input_mask": tf.TensorSpec([None, None], tf.int32),
        "input_type_ids": tf.TensorSpec([None, None], tf.int32)}])
    def __call__(self, inputs):
        ids, mask, types = (inputs["input_word_ids"], inputs["input_mask"],
                            inputs["input_type_ids"])
        b, n = tf.shape(ids)[0], tf.shape(ids)[1]
        x = tf.gather(self.word, ids) + tf.gather(self.type, types) + self.pos[:n]
        x = _layer_norm(x, self.ln[0], self.ln[1])
        bias = (1.0 - tf.cast(mask, tf.float32))[:, None, None, :] * -10000.0
        h = x.shape[-1]
        d = h // self.heads
        for L in self.layers:
            qkv = tf.matmul(x, L["qkv"]) + L["qkv_b"]
            q, k, v = tf.split(qkv, 3, axis=-1)

            def heads(t):
                return tf.transpose(tf.reshape(t, [b, n, self.heads, d]), [0, 2, 1, 3])

            q, k, v = heads(q), heads(k), heads(v)
            att = tf.nn.softmax(tf.matmul(q, k, transpose_b=True) / np.sqrt(d) + bias)
            ctx = tf.reshape(tf.transpose(tf.matmul(att, v), [0, 2, 1, 3]), [b, n, h])
            x = _layer_norm(x + tf.matmul(ctx, L["out"]) + L["out_b"], L["ln1_g"], L["ln1_b"])
            ff = tf.nn.gelu(tf.matmul(x, L["in"]) + L["in_b"], approximate=False)
            x = _layer_norm(x + tf.matmul(ff, L["out2"]) + L["out2_b"], L["ln2_g"], L["ln2_b"])
        pooled = tf.tanh(tf.matmul(x[:, 0], self.pool) + self.pool_b)
        return {"pooled_output": pooled, "sequence_output": x,
                "default": pooled}

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32, name="input_word_ids"),
                                  tf.TensorSpec([None, None], tf.int32, name="input_mask"),
                                  tf.TensorSpec([None, None], tf.int32, name="input_type_ids")])
    def serve(self, ids, mask, types):
        return self.__call__({"input_word_ids": ids, "input_mask": mask,
                              "input_type_ids": types})


E2E_SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Hello, World! Café naïve résumé.",
    "",
    "unaffable supercalifragilisticexpialidocious tokens",
    "中文字符测试 and a very long sentence that is certainly longer than sixteen word pieces",
]


def build_bert_e2e():
    import tempfile
    import tensorflow_hub as hub
    vocab = mb.make_vocab(cased=False, size=300)
    pre_dir = mf.fresh_dir("text2_bert_preprocess")
    enc_dir = mf.fresh_dir("text2_bert_encoder")
    with tempfile.TemporaryDirectory() as tmp:
        vocab_path = os.path.join(tmp, "vocab.txt")
        with open(vocab_path, "w", encoding="utf-8", newline="\n") as f:
            f.write("\n".join(vocab) + "\n")
        pre = HubPreprocessor(vocab_path, vocab)
        spec = tf.RaggedTensorSpec([None, None, None], tf.int32, ragged_rank=2,
                                   row_splits_dtype=tf.int64)
        pre.bert_pack_inputs.get_concrete_function([spec], seq_length=E2E_SEQ)
        pre.bert_pack_inputs.get_concrete_function([spec, spec], seq_length=E2E_SEQ)
        # A serving signature, as Keras exports have: TF then also lists the library
        # functions' ops (RegexSplitWithOffsets, ...) in the MetaGraph's stripped_op_list.
        tf.saved_model.save(pre, pre_dir, signatures={"serving_default": pre.__call__})
    mb.shrink_saved_model(pre_dir)
    enc = TinyBert(len(vocab))
    tf.saved_model.save(enc, enc_dir, signatures={"serving_default": enc.serve})
    # TF Hub's tutorial: hub.KerasLayer(preprocess) -> hub.KerasLayer(encoder, trainable=False).
    preprocess = hub.KerasLayer(pre_dir)
    encoder = hub.KerasLayer(enc_dir)
    sentences = tf.constant(E2E_SENTENCES)
    inputs = preprocess(sentences)
    outputs = encoder(inputs)
    mf.write_json(os.path.join(enc_dir, "e2e.json"), {
        "preprocessor": "text2_bert_preprocess",
        "sentences": E2E_SENTENCES,
        "encoder_inputs": {k: mf.tensor_to_json(v) for k, v in inputs.items()},
        "outputs": {k: mf.tensor_to_json(v) for k, v in outputs.items()}})
    for d in (pre_dir, enc_dir):
        mf.write_signatures_json(d)
        mf.write_variables_json(d)
        mb.dump_ops(d)


BUILDERS = {
    "text2_ragged_map": build_ragged_map,
    "text2_tokenizers": build_tokenizers,
    "text2_fast_wordpiece": build_fast_wordpiece,
    "text2_bert_e2e": build_bert_e2e,
}


def main(argv):
    mf.run_builders(BUILDERS, argv[1:], f"TensorFlow {tf.__version__}, tensorflow_text {text.__version__}", before_each=mf.seed_everything)


if __name__ == "__main__":
    main(sys.argv)

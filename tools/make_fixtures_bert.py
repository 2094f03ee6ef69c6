#!/usr/bin/env python3
"""BERT preprocessing fixtures (tensorflow_text 2.21.1) for tests/bert.rs.

Builds, the way TF Model Garden's `export_tfhub_lib.create_preprocessing` does (its
`text_layers.BertTokenizer` / `BertPackInputs` logic, reproduced here because the `official`
package is not installed):

* `bert_preprocess_uncased`: `text.BertTokenizer(StaticHashTable(vocab.txt), lower_case=True)`
  (CaseFoldUTF8, NormalizeUTF8 NFD, StaticRegexReplace, RegexSplitWithOffsets,
  WordpieceTokenizeWithOffsets) + RoundRobinTrimmer + combine_segments + pad_model_inputs.
* `bert_preprocess_cased`: the same with lower_case=False.
* `bert_preprocess_fast`: `text.FastBertTokenizer(lower_case_nfd_strip_accents=True)`
  (FastBertNormalize + FastWordpieceTokenizeWithOffsets, flatbuffer models as Consts).

Each exports SignatureDefs (the object-graph functions are not callable from tfhub yet):
`serving_default` (text -> input_word_ids/input_mask/input_type_ids, seq_length 128),
`preprocess_pair` (two texts), `tokenize` (flat ids + offsets + row splits) and
`bert_pack_inputs` (two segments as flat values + row splits).

`text_unicode` is a set of signatures (case fold, the four normal forms, the BasicTokenizer
split) whose goldens are Fingerprint64 digests per block of 4096 code points over every
Unicode scalar value, so tests can sweep the whole code space with a few KB of goldens.

Run: /work/venv/bin/python tools/make_fixtures_bert.py [NAME...]
Benchmark model (vocabulary 30k, seq_length 128), not committed:
     /work/venv/bin/python tools/make_fixtures_bert.py --bench-model /tmp/bert_bench
     /work/venv/bin/python tools/bench_vs_tf.py /tmp/bert_bench --inputs /tmp/bert_bench/inputs.json \
         --import tensorflow_text --batch 1 --batch 128
"""

import os
import sys
import unicodedata

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import make_fixtures as mf  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_text as text  # noqa: E402

SEQ_LENGTH = 128
VOCAB_WORDS = 2200

# --------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------

EXTRA_CHARS = (
    "àáâãäåæçèéêëìíîïñòóôõöøùúûüýÿßœ"
    "αβγδεζηθικλμνξοπρστυφχψωςабвгдежзийклмнопрстуфхцчшщыьэюя"
    "中文字符测试日本語한국어텍스트東京大学生"
    "مرحبابالعمشلו"
    "€©°±×÷…–—‘’“”•™"
)
SUFFIXES = ["s", "ed", "ing", "er", "ly", "tion", "ions", "al", "es", "ment", "ness", "able",
            "ize", "ity", "ous", "ive", "ful", "less", "est", "ist", "ism", "ers", "a", "b",
            "ta", "n", "ul", "rass", "e", "ne", "ow", "man"]


def make_vocab(cased, size=VOCAB_WORDS):
    words = mf.stdlib_vocab(size)
    special = ["[PAD]"] + [f"[unused{i}]" for i in range(5)] + ["[UNK]", "[CLS]", "[SEP]",
                                                                 "[MASK]"]
    chars = [chr(c) for c in range(33, 127)]
    if not cased:
        chars = [c for c in chars if not c.isupper()]
    chars += list(dict.fromkeys(EXTRA_CHARS))
    vocab = list(special)
    seen = set(vocab)

    def add(t):
        if t not in seen:
            seen.add(t)
            vocab.append(t)

    for c in chars:
        add(c)
    for c in chars:
        add("##" + c)
    for s in SUFFIXES:
        add("##" + s)
    for w in words:
        add(w)
        if cased and len(w) > 3 and len(vocab) % 3 == 0:
            add(w.capitalize())
    # Word pieces: prefixes and suffixes of frequent long words.
    for w in words[:600]:
        if len(w) >= 7:
            add(w[:4])
            add("##" + w[4:])
    return vocab


# --------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------


def category_samples():
    """A few code points of every general category Python's unicodedata knows."""
    by_cat = {}
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        cat = unicodedata.category(chr(cp))
        lst = by_cat.setdefault(cat, [])
        if len(lst) < 6 or (cp % 997 == 0 and len(lst) < 12):
            lst.append(cp)
    out = []
    for cat in sorted(by_cat):
        cps = by_cat[cat]
        out.append("".join(f"x{chr(c)}y " for c in cps))
    return out


def long_text(n_chars):
    words = mf.stdlib_vocab(400)
    out, i = [], 0
    while sum(len(w) + 1 for w in out) < n_chars:
        w = words[(i * 7919) % len(words)]
        if i % 13 == 0:
            w = w.capitalize() + ","
        if i % 29 == 0:
            w = "naïve東京"
        out.append(w)
        i += 1
    return " ".join(out)[:n_chars]


def adversarial_inputs():
    strs = [
        "Hello, World! This is a test of the BERT preprocessor.",
        "The Quick BROWN fox jumps over the lazy dog's back.",
        "",
        "   ",
        " \t\n\r ",
        "Café naïve résumé Ångström façade",
        "cafe\u0301 e\u0301\u0323 a\u0323\u0302 \u1e9b\u0323",
        "İstanbul Straße ﬁne ﬂow ΣΑΣ Ǆemal ǅ ǆ K Å",
        "Hello\u00a0World\u3000again",
        "a\u0085b\u2028c\u2029d",
        "p\u2e5dq\U00016d6er",
        "\U0002ebf0\U00030000\u4e00",
        "a€b©c°d",
        "中文字符测试，日本語のテキスト。",
        "한국어 텍스트 \u1100\u1161\u11a8 \u110b\u1175",
        "مرحبا بالعالم שלום עולם",
        "👨\u200d👩\u200d👧\u200d👦 family 🇺🇸 flag 👍🏽 ok ❤️",
        "ＡＢＣ１２３ full-width！？",
        "a\u0000b c\u0007d \u001be[0m",
        "zero\u200bwidth \ufeffbom soft\u00adhyphen \u2066iso\u2069 \u200e\u200f",
        "x\U000e0041y \U000f0000 \uffff \ufffd",
        "a" * 101,
        "supercalifragilisticexpialidocious" * 4,
        "unknownzzzqqq xyzzy the cat sat on the mat",
        "[CLS] [SEP] [MASK] [UNK] [unused0]",
        "1,234.56 $100 50% a+b=c <tag> {x} ~y~ `z` @me #tag",
        "\u1c89 \ua7cb \U0001e5ee \U00010d69 \U00011f00 \U0001e4ec \U00011b00 \U0001e5ff",
        "ℌℍℎ ① ⑴ ㍱ ﬀ ﬃ ＄ ｶﾀｶﾅ",
    ]
    strs += category_samples()
    raw = [s.encode("utf-8") for s in strs]
    raw += [
        b"\xff\xfe invalid",
        b"abc\xc3",
        b"\xed\xa0\x80x",
        b"\xc0\xaf slash",
        b"\xf4\x90\x80\x80 big",
        b"e\xff\xcc\x81 x\xe2\x80y",
        b"caf\xc3\xa9\xff CAF\xc3\x89",
        b"A\xe2\x80\x8b\xffB",
    ]
    raw.append(long_text(10000).encode("utf-8"))
    return raw


PAIR_SECOND = [
    b"Second segment here.",
    b"",
    b"a b c d e f g h i j k l m n o p q r s t u v w x y z " * 6,
]


# --------------------------------------------------------------------------
# Preprocessor module
# --------------------------------------------------------------------------


def pack(segments, seq_length, cls_id, sep_id, pad_id):
    """`text_layers.BertPackInputs.bert_pack_inputs` (round_robin)."""
    segments = [rt.merge_dims(1, -1) if rt.shape.rank > 2 else rt for rt in segments]
    trimmed = text.RoundRobinTrimmer(seq_length - (len(segments) + 1)).trim(segments)
    combined, segment_ids = text.combine_segments(
        trimmed, start_of_sequence_id=cls_id, end_of_segment_id=sep_id)
    word_ids, _ = text.pad_model_inputs(combined, seq_length, pad_value=pad_id)
    type_ids, mask = text.pad_model_inputs(segment_ids, seq_length, pad_value=0)
    shape = tf.stack([segments[0].nrows(out_type=tf.int32), tf.cast(seq_length, tf.int32)])
    return {
        "input_word_ids": tf.reshape(word_ids, shape),
        "input_mask": tf.reshape(mask, shape),
        "input_type_ids": tf.reshape(type_ids, shape),
    }


class Preprocessor(tf.Module):
    def __init__(self, vocab_path, vocab, lower_case, fast):
        super().__init__()
        self.fast = fast
        self.cls_id, self.sep_id, self.pad_id = (vocab.index(t) for t in ("[CLS]", "[SEP]",
                                                                          "[PAD]"))
        if fast:
            self.tokenizer = text.FastBertTokenizer(
                vocab=vocab, token_out_type=tf.int32,
                lower_case_nfd_strip_accents=lower_case)
        else:
            self.vocab_file = tf.saved_model.Asset(vocab_path)
            init = tf.lookup.TextFileInitializer(
                self.vocab_file, key_dtype=tf.string,
                key_index=tf.lookup.TextFileIndex.WHOLE_LINE, value_dtype=tf.int64,
                value_index=tf.lookup.TextFileIndex.LINE_NUMBER)
            self.table = tf.lookup.StaticHashTable(init, default_value=-1)
            self.tokenizer = text.BertTokenizer(self.table, lower_case=lower_case)

    def _tokenize(self, s):
        """[batch, (words), (pieces)] int32 for the classic tokenizer (text_layers casts),
        [batch, (pieces)] for FastBertTokenizer; plus offsets."""
        tokens, starts, limits = self.tokenizer.tokenize_with_offsets(s)
        return tf.cast(tokens, tf.int32), starts, limits

    def _segments(self, s):
        return self._tokenize(s)[0]

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(self, text_in):
        return pack([self._segments(text_in)], SEQ_LENGTH, self.cls_id, self.sep_id,
                    self.pad_id)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text_a"),
                                  tf.TensorSpec([None], tf.string, name="text_b")])
    def preprocess_pair(self, text_a, text_b):
        return pack([self._segments(text_a), self._segments(text_b)], SEQ_LENGTH,
                    self.cls_id, self.sep_id, self.pad_id)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def tokenize(self, text_in):
        tokens, starts, limits = self._tokenize(text_in)
        out = {"token_ids": tokens.flat_values, "start_offsets": starts.flat_values,
               "limit_offsets": limits.flat_values, "row_splits": tokens.row_splits}
        if tokens.ragged_rank > 1:
            out["word_splits"] = tokens.values.row_splits
        return out

    @tf.function(input_signature=[
        tf.TensorSpec([None], tf.int32, name="a_values"),
        tf.TensorSpec([None], tf.int64, name="a_row_splits"),
        tf.TensorSpec([None], tf.int32, name="b_values"),
        tf.TensorSpec([None], tf.int64, name="b_row_splits"),
        tf.TensorSpec([], tf.int32, name="seq_length")])
    def bert_pack_inputs(self, a_values, a_row_splits, b_values, b_row_splits, seq_length):
        a = tf.RaggedTensor.from_row_splits(a_values, a_row_splits, validate=False)
        b = tf.RaggedTensor.from_row_splits(b_values, b_row_splits, validate=False)
        return pack([a, b], seq_length, self.cls_id, self.sep_id, self.pad_id)


def pack_inputs():
    return {
        "a_values": [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 30],
        "a_row_splits": [0, 6, 7, 7, 18],
        "b_values": [100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113],
        "b_row_splits": [0, 2, 2, 12, 14],
        "seq_length": 9,
    }


def build_preprocessor(name, lower_case, fast, sigs):
    mf.seed_everything()
    out = mf.fresh_dir(name)
    vocab = make_vocab(cased=not lower_case)
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        vocab_path = os.path.join(tmp, "vocab.txt")
        with open(vocab_path, "w", encoding="utf-8", newline="\n") as f:
            f.write("\n".join(vocab) + "\n")
        module = Preprocessor(vocab_path, vocab, lower_case, fast)
        # Only the wanted functions go into the SavedModel (every tf.function attribute of
        # the saved object is exported, signature or not).
        holder = tf.Module()
        holder.tokenizer = module.tokenizer
        if not fast:
            holder.vocab_file, holder.table = module.vocab_file, module.table
        funcs = {"serving_default": module.serve, "tokenize": module.tokenize,
                 "preprocess_pair": module.preprocess_pair,
                 "bert_pack_inputs": module.bert_pack_inputs}
        for sig in sigs:
            setattr(holder, "fn_" + sig, funcs[sig])
        tf.saved_model.save(holder, out, signatures={k: funcs[k] for k in sigs})
    shrink_saved_model(out)
    raw = adversarial_inputs()
    as_json = [mf.bytes_to_json(b) for b in raw]
    n2 = len(PAIR_SECOND)
    pair_a = raw[:n2] + [raw[-1]]
    pair_b = PAIR_SECOND + [raw[0]]
    if "serving_default" in sigs:
        mf.write_json(os.path.join(out, "inputs.json"), {"text": as_json})
        mf.write_json(os.path.join(out, "golden.json"), mf.run_signature(out, {"text": raw}))
    all_extra = {
        "tokenize": {"text": raw},
        "preprocess_pair": {"text_a": pair_a, "text_b": pair_b},
        "bert_pack_inputs": pack_inputs(),
    }
    extra = {k: v for k, v in all_extra.items() if k in sigs}
    for sig, ins in extra.items():
        js = {k: ([mf.bytes_to_json(x) for x in v] if isinstance(v, list) and v
                  and isinstance(v[0], bytes) else v) for k, v in ins.items()}
        mf.write_json(os.path.join(out, f"inputs_{sig}.json"), js)
        mf.write_json(os.path.join(out, f"golden_{sig}.json"), mf.run_signature(out, ins, sig))
    mf.write_signatures_json(out)
    mf.write_variables_json(out)
    dump_ops(out)
    return out


def shrink_saved_model(model_dir):
    """Makes the SavedModel smaller without changing what it computes: drops unreachable
    library functions (`make_fixtures.prune_function_library`), renames the nodes inside each
    library function to short names (`n<index>`, references rewritten) and drops their
    `_output_shapes` attrs. The goldens are computed by TF from the rewritten file."""
    from tensorflow.core.protobuf import saved_model_pb2
    mf.prune_function_library(model_dir)
    path = os.path.join(model_dir, "saved_model.pb")
    sm = saved_model_pb2.SavedModel()
    with open(path, "rb") as f:
        sm.ParseFromString(f.read())
    for mg in sm.meta_graphs:
        for fn in mg.graph_def.library.function:
            names = {n.name: f"n{i}" for i, n in enumerate(fn.node_def)}

            def ref(r):
                ctl = r.startswith("^")
                base = r[1:] if ctl else r
                head, sep, tail = base.partition(":")
                head = names.get(head, head)
                return ("^" if ctl else "") + head + sep + tail

            for n in fn.node_def:
                n.name = names[n.name]
                new_inputs = [ref(i) for i in n.input]
                del n.input[:]
                n.input.extend(new_inputs)
                if "_output_shapes" in n.attr:
                    del n.attr["_output_shapes"]
            for k in list(fn.ret):
                fn.ret[k] = ref(fn.ret[k])
            for k in list(fn.control_ret):
                fn.control_ret[k] = names.get(fn.control_ret[k], fn.control_ret[k])
    with open(path, "wb") as f:
        f.write(sm.SerializeToString())


def dump_ops(model_dir):
    """Prints the op types of the SavedModel's graph and functions."""
    from tensorflow.python.saved_model import loader_impl
    sm = loader_impl.parse_saved_model(model_dir)
    ops = set()
    for mg in sm.meta_graphs:
        ops.update(n.op for n in mg.graph_def.node)
        for f in mg.graph_def.library.function:
            ops.update(n.op for n in f.node_def)
    print(f"  {os.path.basename(model_dir)} ops: {' '.join(sorted(ops))}")


# --------------------------------------------------------------------------
# Unicode sweep
# --------------------------------------------------------------------------

BLOCK = 4096
SWEEP_SIGS = ["case_fold", "nfc", "nfd", "nfkc", "nfkd", "basic_tokenize"]


class UnicodeOps(tf.Module):
    def __init__(self):
        super().__init__()
        from tensorflow_text.python.ops import bert_tokenizer
        self.basic = bert_tokenizer.BasicTokenizer(lower_case=True)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def case_fold(self, s):
        return {"output": text.case_fold_utf8(s)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def nfc(self, s):
        return {"output": text.normalize_utf8(s, "NFC")}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def nfd(self, s):
        return {"output": text.normalize_utf8(s, "NFD")}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def nfkc(self, s):
        return {"output": text.normalize_utf8(s, "NFKC")}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def nfkd(self, s):
        return {"output": text.normalize_utf8(s, "NFKD")}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def basic_tokenize(self, s):
        tokens, starts, limits = self.basic.tokenize_with_offsets(s)
        return {"tokens": tokens.flat_values, "starts": starts.flat_values,
                "limits": limits.flat_values, "row_splits": tokens.row_splits}


def sweep_inputs(block):
    """The sweep's strings for one block: each scalar value alone for the normalizers, inside
    "a" .. "b" for the tokenizer (the Rust test builds the same lists)."""
    cps = [c for c in range(block * BLOCK, (block + 1) * BLOCK) if not 0xD800 <= c <= 0xDFFF]
    return cps


def digest(parts):
    """Fingerprint64 (as TF's to_hash_bucket_fast(., 2**63 - 1)) of the length-prefixed
    concatenation of byte strings."""
    blob = b"".join(len(p).to_bytes(4, "little") + p for p in parts)
    return int(tf.strings.to_hash_bucket_fast([blob], 2**63 - 1).numpy()[0])


def build_text_unicode():
    out = mf.fresh_dir("text_unicode")
    module = UnicodeOps()
    tf.saved_model.save(module, out, signatures={k: getattr(module, k) for k in SWEEP_SIGS})
    shrink_saved_model(out)
    loaded = tf.saved_model.load(out)
    blocks = {k: [] for k in SWEEP_SIGS}
    for b in range(0x110000 // BLOCK):
        cps = sweep_inputs(b)
        alone = tf.constant([chr(c).encode("utf-8") for c in cps])
        ctx = tf.constant([("a" + chr(c) + "b").encode("utf-8") for c in cps])
        for k in SWEEP_SIGS[:5]:
            o = loaded.signatures[k](text=alone)["output"].numpy().tolist()
            blocks[k].append(str(digest(o)))
        o = loaded.signatures["basic_tokenize"](text=ctx)
        parts = o["tokens"].numpy().tolist()
        for name in ("starts", "limits", "row_splits"):
            parts.append(np.asarray(o[name].numpy(), "<i8").tobytes())
        blocks["basic_tokenize"].append(str(digest(parts)))
    mf.write_json(os.path.join(out, "sweep.json"), {
        "block": BLOCK,
        "skip": "surrogates D800-DFFF",
        "normalizers_input": "each scalar value alone",
        "basic_tokenize_input": "a + scalar value + b",
        "digest": "Fingerprint64 mod 2^63-1 of concat(len u32 LE + bytes) of the outputs in "
                  "order; basic_tokenize appends starts, limits, row_splits as i64 LE",
        "digests": blocks,
    })
    mf.write_signatures_json(out)
    return out


BUILDERS = {
    "bert_preprocess_uncased": lambda: build_preprocessor(
        "bert_preprocess_uncased", True, False, ["serving_default", "tokenize", "bert_pack_inputs"]),
    "bert_preprocess_cased": lambda: build_preprocessor(
        "bert_preprocess_cased", False, False, ["tokenize"]),
    "bert_preprocess_fast": lambda: build_preprocessor(
        "bert_preprocess_fast", True, True, ["serving_default", "tokenize"]),
    "text_unicode": build_text_unicode,
}
DEFAULT = ["bert_preprocess_uncased", "bert_preprocess_cased", "text_unicode"]


def build_bench_preprocessor(out, vocab_size=30000):
    """The benchmark model (not a fixture): the uncased classic preprocessor with a
    `vocab_size`-token vocabulary (stdlib words plus generated word pieces), serving_default
    only, and `inputs.json` with 128 English-like sentences."""
    base = make_vocab(cased=False)
    seen = set(base)
    extra = []
    letters = "etaoinshrdlcumwfgypbvkjxqz"
    for a in letters:
        for b in letters:
            for c in [""] + list(letters):
                for t in (a + b + c, "##" + a + b + c):
                    if t not in seen and len(base) + len(extra) < vocab_size:
                        seen.add(t)
                        extra.append(t)
    vocab = (base + extra)[:vocab_size]
    if os.path.exists(out):
        import shutil
        shutil.rmtree(out)
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        vocab_path = os.path.join(tmp, "vocab.txt")
        with open(vocab_path, "w", encoding="utf-8", newline="\n") as f:
            f.write("\n".join(vocab) + "\n")
        module = Preprocessor(vocab_path, vocab, True, False)
        holder = tf.Module()
        holder.tokenizer, holder.vocab_file, holder.table = (module.tokenizer,
                                                             module.vocab_file, module.table)
        holder.serve = module.serve
        tf.saved_model.save(holder, out, signatures={"serving_default": module.serve})
    words = mf.stdlib_vocab(1500)
    sentences = []
    for i in range(128):
        n = 8 + (i * 7) % 40
        ws = [words[(i * 131 + j * 17) % len(words)] for j in range(n)]
        ws[0] = ws[0].capitalize()
        sentences.append(" ".join(ws) + ("." if i % 3 else ", naïve café?"))
    mf.write_json(os.path.join(out, "inputs.json"), {"text": sentences})
    print(f"wrote {out} ({len(vocab)} tokens)")


def main(argv):
    if len(argv) == 3 and argv[1] == "--bench-model":
        build_bench_preprocessor(argv[2])
        return
    mf.run_builders(BUILDERS, argv[1:] or DEFAULT, f"TensorFlow {tf.__version__}, tensorflow_text {text.__version__}")


if __name__ == "__main__":
    np.set_printoptions(threshold=20)
    main(sys.argv)

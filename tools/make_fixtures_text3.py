#!/usr/bin/env python3
"""Fixtures for tests/text3.rs: tensorflow_text's FastSentencepieceTokenizer
(`TFText>FastSentencepieceTokenize` / `TFText>FastSentencepieceDetokenize`), which runs on
flatbuffers converted from a SentencePiece model proto at export (model_converter.cc).

* `text3_fast_spm`: a SavedModel around FastSentencepieceTokenizer over a 300-piece unigram
  model whose normalizer is a small custom rule set (multi-code-point keys, deletions, \\t ->
  space), trained with the `sentencepiece` pip package. Signatures: serving_default = tokenize
  (1-D, int32 splits), tokenize_2d (dense 2-D input, the RaggedTensor.from_tensor path),
  tokenize_bos_eos_reverse, detokenize (int64 splits), detokenize_2d (dense ids, int32 splits).
* `text3_fast_spm_vectors`: no SavedModel: the converted encoder/decoder flatbuffers of two
  more models (`ident`: identity normalizer, add_dummy_prefix and remove_extra_whitespaces
  off, bos disabled (-1) so add_bos emits -1, non-default eos/unk ids; `nfkc`: nmt_nfkc, the
  large precompiled charsmap real models carry) and TF's output on adversarial text with every
  bos/eos/reverse combination, plus detokenized id rows (vectors.json).

Run: /work/venv/bin/python tools/make_fixtures_text3.py [NAME...]
"""

import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import make_fixtures as mf  # noqa: E402  (sets TF env vars before importing TF)
import make_fixtures_spm as ms  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_text as tf_text  # noqa: E402
from tensorflow_text.python.ops.fast_sentencepiece_tokenizer import (  # noqa: E402
    gen_fast_sentencepiece_tokenizer as gen_fsp)

S = tf.TensorSpec
SEED = 4321

# A small normalizer (sentencepiece's normalization_rule_tsv: source code points TAB target
# code points, hex): ligatures, full-width, circled digits, a deletion (ZWSP), a two-code-point
# key (e + COMBINING ACUTE -> é), whitespace folded to a space, and a rule whose key is a
# prefix of another's (A vs A + COMBINING RING).
RULES = """FB01\t66 69
FB02\t66 6C
FF21\t41
FF41\t61
FF10\t30
2460\t31
2461\t32
9\t20
A0\t20
3000\t20
200B\t
FEFF\t
65 301\tE9
61 300\tE0
41 30A\tC5
212B\tC5
2126\t3A9
"""


def train(rules_dir, **kw):
    path = os.path.join(rules_dir, "rules.tsv")
    if kw.pop("custom_rules", False):
        with open(path, "w", encoding="ascii") as f:
            f.write(RULES)
        kw["normalization_rule_tsv"] = path
    return ms.train(**kw)


def inputs():
    raw = ms.adversarial_inputs()
    rng = random.Random(SEED)
    alphabet = list("ab ﬁﬂＡａ①\t\n\r\u200b\u3000\xa0é\u0301\u0300A\u030aÅΩ日本😀☃") + [
        "[MASK]", "<s>", "  ", "the", "▁", "e\u0301"]
    for _ in range(150):
        raw.append("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 10))).encode())
    for _ in range(40):
        raw.append(bytes(rng.randrange(256) for _ in range(rng.randint(0, 8))))
    return raw


class FastSpm(tf.Module):
    def __init__(self, model):
        super().__init__()
        self.tok = tf_text.FastSentencepieceTokenizer(model)
        self.tok_ber = tf_text.FastSentencepieceTokenizer(model, reverse=True, add_bos=True,
                                                          add_eos=True)

    @tf.function(input_signature=[S([None], tf.string, name="text")])
    def tokenize(self, text):
        r = self.tok.tokenize(text)
        return {"ids": r.flat_values, "row_splits": r.row_splits}

    @tf.function(input_signature=[S([None, None], tf.string, name="text")])
    def tokenize_2d(self, text):
        r = self.tok.tokenize(text)
        return {"ids": r.flat_values, "inner_splits": r.values.row_splits,
                "outer_splits": r.row_splits}

    @tf.function(input_signature=[S([None], tf.string, name="text")])
    def tokenize_bos_eos_reverse(self, text):
        r = self.tok_ber.tokenize(text)
        return {"ids": r.flat_values, "row_splits": r.row_splits}

    @tf.function(input_signature=[S([None], tf.int32, name="ids"),
                                  S([None], tf.int64, name="row_splits")])
    def detokenize(self, ids, row_splits):
        rt = tf.RaggedTensor.from_row_splits(ids, row_splits, validate=False)
        return {"text": self.tok.detokenize(rt)}

    @tf.function(input_signature=[S([None, None], tf.int32, name="ids")])
    def detokenize_2d(self, ids):
        return {"text": self.tok.detokenize(ids)}


def flat_with_splits(rows):
    values, splits = [], [0]
    for r in rows:
        values.extend(r)
        splits.append(len(values))
    return values, splits


def id_rows(n, own):
    """Detokenize inputs: TF's own tokenization, every id in order and reversed, control and
    unknown ids at the start of a row (dummy-prefix removal), and an empty row."""
    return own + [[], list(range(n)), list(range(n - 1, -1, -1)), [0, 1, 2, 3, 4],
                  [2, 5, 6], [1, 1, 7, 8]]


def build_text3_fast_spm():
    out = mf.fresh_dir("text3_fast_spm")
    model = train(out, custom_rules=True, model_type="unigram", vocab_size=300,
                  user_defined_symbols=["[MASK]"], character_coverage=0.9995)
    os.remove(os.path.join(out, "rules.tsv"))
    module = FastSpm(model)
    sigs = ["tokenize", "tokenize_2d", "tokenize_bos_eos_reverse", "detokenize",
            "detokenize_2d"]
    signatures = {s: getattr(module, s) for s in sigs}
    signatures["serving_default"] = module.tokenize
    tf.saved_model.save(module, out, signatures=signatures)

    raw = inputs()
    text = {"text": raw}
    ms.write_json(os.path.join(out, "inputs.json"), {"text": [mf.bytes_to_json(b) for b in raw]})
    golden_tok = mf.run_signature(out, text)
    ms.write_json(os.path.join(out, "golden.json"), golden_tok)

    def write(sig, ins, js):
        ms.write_json(os.path.join(out, f"inputs_{sig}.json"), js)
        ms.write_json(os.path.join(out, f"golden_{sig}.json"), mf.run_signature(out, ins, sig))

    write("tokenize_bos_eos_reverse", text, {"text": [mf.bytes_to_json(b) for b in raw]})
    grid = [raw[i:i + 3] for i in range(0, 60, 3)]
    write("tokenize_2d", {"text": grid},
          {"text": [[mf.bytes_to_json(b) for b in r] for r in grid]})
    ids = golden_tok["ids"]["values"]
    sp = golden_tok["row_splits"]["values"]
    own = [ids[sp[i]:sp[i + 1]] for i in range(len(sp) - 1)]
    n = tf_text.FastSentencepieceTokenizer(model).vocab_size()
    dv, ds = flat_with_splits(id_rows(int(n), own))
    write("detokenize", {"ids": dv, "row_splits": ds}, {"ids": dv, "row_splits": ds})
    dense = [r + [4] * (12 - len(r)) for r in own if len(r) <= 12][:30]
    write("detokenize_2d", {"ids": dense}, {"ids": dense})
    mf.write_signatures_json(out)
    mf.write_variables_json(out)
    return out


def build_text3_fast_spm_vectors():
    """Converted flatbuffers (what the SavedModel Consts hold) and TF's op outputs."""
    out = mf.fresh_dir("text3_fast_spm_vectors")
    models = {
        "ident": train(out, model_type="unigram", vocab_size=200,
                       normalization_rule_name="identity", add_dummy_prefix=False,
                       remove_extra_whitespaces=False, bos_id=-1, eos_id=1, unk_id=2,
                       pad_id=0, user_defined_symbols=["[MASK]", "<sep>"]),
        "nfkc": train(out, model_type="unigram", vocab_size=200,
                      normalization_rule_name="nmt_nfkc"),
    }
    from tensorflow_text.core.pybinds import pywrap_model_converter as conv
    raw = inputs()
    doc = {"texts": [mf.bytes_to_json(t) for t in raw], "models": {}}
    for name, m in models.items():
        enc = conv.convert_sentencepiece_model(m)
        dec = conv.convert_sentencepiece_model_for_decoder(m)
        with open(os.path.join(out, name + ".enc.fb"), "wb") as f:
            f.write(enc)
        with open(os.path.join(out, name + ".dec.fb"), "wb") as f:
            f.write(dec)
        enc_t = tf.constant(list(enc), dtype=tf.uint8)
        dec_t = tf.constant(list(dec), dtype=tf.uint8)
        res = {}
        # (add_bos, add_eos, reverse): each flag alone and all together.
        for bos, eos, rev in [(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 1)]:
            v, s = gen_fsp.tf_text_fast_sentencepiece_tokenize(
                enc_t, tf.constant(raw), 0, 0, bool(bos), bool(eos), bool(rev))
            res[f"{bos}{eos}{rev}"] = {"ids": v.numpy().tolist(),
                                       "row_splits": s.numpy().tolist()}
        ids = res["000"]["ids"]
        sp = res["000"]["row_splits"]
        own = [ids[sp[i]:sp[i + 1]] for i in range(len(sp) - 1)]
        n = conv.get_vocabulary_size(enc)
        dv, ds = flat_with_splits(id_rows(int(n), own))
        text = gen_fsp.tf_text_fast_sentencepiece_detokenize(
            dec_t, tf.constant(dv, tf.int32), tf.constant(ds, tf.int64))
        doc["models"][name] = {
            "tokenize": res, "vocab_size": int(n),
            "detokenize": {"ids": dv, "row_splits": ds,
                           "text": [mf.bytes_to_json(t) for t in text.numpy().tolist()]},
        }
    ms.write_json(os.path.join(out, "vectors.json"), doc)
    return out


BUILDERS = {"text3_fast_spm": build_text3_fast_spm,
            "text3_fast_spm_vectors": build_text3_fast_spm_vectors}


def main(argv):
    mf.run_builders(BUILDERS, argv[1:], f"TensorFlow {tf.__version__}, tensorflow_text {tf_text.__version__}")


if __name__ == "__main__":
    main(sys.argv)

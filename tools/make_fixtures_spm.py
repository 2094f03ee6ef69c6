#!/usr/bin/env python3
"""SentencePiece fixtures: models trained with the `sentencepiece` pip package on generated text,
wrapped in a tf.Module around tensorflow_text.SentencepieceTokenizer (whose ops embed
sentencepiece v0.1.96) and saved as SavedModels. Goldens come from TF + tensorflow_text 2.21.

  /work/venv/bin/python tools/make_fixtures_spm.py [spm_unigram] [spm_bpe] [spm_vectors]

Fixtures (tests/fixtures/<name>/):
  spm_unigram  unigram, 1000 pieces, nmt_nfkc charsmap, user-defined symbols [MASK] and <sep>
  spm_bpe      BPE, 1000 pieces, identity normalizer (no charsmap), byte_fallback,
               remove_extra_whitespaces=false, user-defined symbol [MASK]
  spm_vectors  no SavedModel: WORD, CHAR and suffix-whitespace unigram model protos plus TF's
               output on ~800 strings (vectors.json)

Signatures (every input is 1-D):
  serving_default (tokenize)  text -> ids (int32 flat values), row_splits (int64)
  tokenize_with_offsets       text -> ids, row_splits, starts, limits (int64 byte offsets)
  tokenize_pieces_offsets     text -> pieces (string), row_splits, starts, limits
  tokenize_bos_eos_reverse    text -> ids, row_splits (int32, Tsplits=int32), add_bos/eos/reverse
  detokenize                  ids (int32) + row_splits (int64) -> text
  detokenize_pieces           pieces (string) + row_splits (int64) -> text
  detokenize_bos_eos_reverse  ids + row_splits (int32) -> text, add_bos/eos/reverse
  id_to_string                ids -> pieces
  string_to_id                pieces -> ids
  vocab_size                  dummy (int32[None]) -> vocab_size (int32 scalar)
  tokenize_sample             text -> ids, row_splits with nbest_size=-1, alpha=0.1 (random in
                              TF; no golden: tfhub refuses it by name)
"""
import io
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import make_fixtures as mf  # noqa: E402  (sets TF env vars before importing TF)
from make_fixtures import bytes_to_json, fresh_dir, run_signature  # noqa: E402

import sentencepiece as spm  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_text as tf_text  # noqa: E402
from tensorflow_text.python.ops.sentencepiece_tokenizer import (  # noqa: E402
    gen_sentencepiece_tokenizer as gen_spm)

SEED = 1234

# Characters mixed into the training text so the vocabularies have non-ASCII pieces.
EXTRA_WORDS = [
    "café", "naïve", "résumé", "straße", "über", "ñandú", "東京", "日本語", "テキスト", "中文",
    "한국어", "Ελληνικά", "русский", "עברית", "العربية", "हिन्दी", "ไทย", "😀", "👍",
]


def training_text(n_lines=4000):
    rng = random.Random(SEED)
    words = mf.stdlib_vocab(1500)
    lines = []
    for _ in range(n_lines):
        k = rng.randint(3, 14)
        ws = []
        for _ in range(k):
            w = rng.choice(words) if rng.random() < 0.93 else rng.choice(EXTRA_WORDS)
            r = rng.random()
            if r < 0.1:
                w = w.capitalize()
            elif r < 0.12:
                w = w.upper()
            ws.append(w)
        s = " ".join(ws)
        if rng.random() < 0.3:
            s += rng.choice([".", ",", "!", "?", ";", ":"])
        if rng.random() < 0.05:
            s += " [MASK] <sep> " + rng.choice(words)
        if rng.random() < 0.05:
            s = str(rng.randint(0, 100000)) + " " + s
        lines.append(s)
    return lines


def write_json(path, obj):
    """Compact JSON (the goldens hold ~10^4 values; one per line would double the size)."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, sort_keys=True, ensure_ascii=False, allow_nan=False,
                  separators=(",", ":"))
        f.write("\n")


def train(**kwargs):
    f = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(training_text()), model_writer=f, num_threads=1,
        shuffle_input_sentence=False, minloglevel=2, **kwargs)
    return f.getvalue()


# Adversarial inputs: one per row. Bytes so invalid UTF-8 survives.
def adversarial_inputs():
    cps = []
    # One code point from many general categories / blocks.
    for cp in [0x41, 0x61, 0x30, 0xB2, 0xBD, 0x2163, 0x5F, 0x2D, 0x28, 0x29, 0xAB, 0xBB, 0x21,
               0x2B, 0x24, 0x5E, 0xA9, 0x20, 0xA0, 0x2028, 0x2029, 0x0, 0x7, 0xAD, 0x200B,
               0x200D, 0xFEFF, 0xE000, 0x300, 0x903, 0x20DD, 0x1C5, 0x2B0, 0x5D0, 0x3042,
               0x30A2, 0x4E00, 0xAC00, 0x1100, 0x1161, 0x11A8, 0xFF21, 0xFF41, 0xFF10, 0x3000,
               0xFB01, 0x2460, 0x212B, 0x2126, 0x1D400, 0x1F600, 0x10FFFD, 0xFFFD, 0x85]:
        cps.append(chr(cp))
    texts = [
        "Hello world",
        "the quick brown fox jumps over the lazy dog",
        "",
        " ",
        "   ",
        "\t\n\r",
        "  leading  and   multiple   spaces  ",
        "trailing space ",
        " leading space",
        "tab\there\nnew line",
        "[MASK] is a user <sep> symbol[MASK]x<sep>",
        "<s> </s> <unk> <pad>",
        "Café naïve résumé über straße",
        "e\u0301 a\u0300\u0323 \u1e0b\u0323",
        "ＦＵＬＬ　ｗｉｄｔｈ　１２３ ！？",
        "ﬁne ﬂow ① ② ㍿ ℃ ™ Ⅻ",
        "日本語のテキスト 東京 中文字符 한국어 텍스트",
        "Ελληνικά русский עברית العربية हिन्दी ไทย",
        "👨\u200d👩\u200d👧\u200d👦 family 🏳\ufe0f\u200d🌈 flag 👍🏽 ok",
        "zero\u200bwidth\u200djoiner\u2060word\ufeffbom",
        "ctrl\x01\x02\x1f\x7f chars\x00nul",
        "snow☃☃☃man ☃",
        "olll ffff sss lll eee",
        "http://example.com/path?q=1&r=2",
        "1234567890 3.14159 -42 1e10",
        "!!! ... ??? ;;; :::",
        "UPPER lower MiXeD CaSe",
        "\u00a0nbsp\u00a0inside\u3000ideographic\u2028line",
        "".join(cps),
        "ǅ İstanbul ß ﬀ K Å Ω",
        "a" * 300,
        " ".join(["supercalifragilisticexpialidocious"] * 20),
    ]
    raw = [t.encode("utf-8") for t in texts]
    raw += [
        b"a\xffb",
        b"\xe4\xb8x",
        b"\xed\xa0\x80 surrogate",
        b"\xf0\x9f\x98",
        b"caf\xc3",
        b"\x80\x80 \xc0\xaf overlong",
        b"\xf4\x90\x80\x80 too big",
        b"ok\xef\xbf\xbd replacement",
    ]
    # A long input (~10k characters) of mixed words.
    rng = random.Random(SEED + 1)
    words = mf.stdlib_vocab(500) + EXTRA_WORDS + ["☃", "\u200b", "ﬁ", "Ａ", "  "]
    long_text = " ".join(rng.choice(words) for _ in range(1700))[:10000]
    raw.append(long_text.encode("utf-8"))
    # Tie-heavy short strings over a small alphabet (unigram f32/f64 mixing, S19).
    for i in range(60):
        n = rng.randint(1, 7)
        raw.append("".join(rng.choice("flseo ") for _ in range(n)).encode())
    return raw


class SpmModule(tf.Module):
    """One SentencepieceTokenizer (one SentencepieceOp, so the model proto is stored once per
    function that creates it); every signature calls the raw ops on its resource handle with
    its own options, as the tokenizer's methods do."""

    def __init__(self, model):
        super().__init__()
        self.tok = tf_text.SentencepieceTokenizer(model=model)

    def _handle(self):
        return self.tok._model_resource.resource_handle

    def _tokenize(self, text, out_type=tf.int32, Tsplits=tf.int64, nbest_size=0, alpha=1.0,
                  bos=False, eos=False, reverse=False):
        return gen_spm.sentencepiece_tokenize_op(
            self._handle(), text, nbest_size, alpha, bos, eos, reverse, out_type=out_type,
            Tsplits=Tsplits)

    def _tokenize_offsets(self, text, out_type):
        return gen_spm.sentencepiece_tokenize_with_offsets_op(
            self._handle(), text, 0, 1.0, False, False, False, out_type=out_type)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def tokenize(self, text):
        r = self.tok.tokenize(text)
        return {"ids": r.flat_values, "row_splits": r.row_splits}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def tokenize_with_offsets(self, text):
        r, s, e = self.tok.tokenize_with_offsets(text)
        return {"ids": r.flat_values, "row_splits": r.row_splits,
                "starts": s.flat_values, "limits": e.flat_values}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def tokenize_pieces_offsets(self, text):
        values, splits, starts, limits = self._tokenize_offsets(text, tf.string)
        return {"pieces": values, "row_splits": splits, "starts": starts, "limits": limits}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def tokenize_bos_eos_reverse(self, text):
        # Tsplits=int32 (the Python wrapper always asks for int64).
        values, splits = self._tokenize(text, Tsplits=tf.int32, bos=True, eos=True,
                                        reverse=True)
        return {"ids": values, "row_splits": splits}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def tokenize_sample(self, text):
        values, splits = self._tokenize(text, nbest_size=-1, alpha=0.1)
        return {"ids": values, "row_splits": splits}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32, name="ids"),
                                  tf.TensorSpec([None], tf.int64, name="row_splits")])
    def detokenize(self, ids, row_splits):
        rt = tf.RaggedTensor.from_row_splits(ids, row_splits, validate=False)
        return {"text": self.tok.detokenize(rt)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="pieces"),
                                  tf.TensorSpec([None], tf.int64, name="row_splits")])
    def detokenize_pieces(self, pieces, row_splits):
        rt = tf.RaggedTensor.from_row_splits(pieces, row_splits, validate=False)
        return {"text": self.tok.detokenize(rt)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32, name="ids"),
                                  tf.TensorSpec([None], tf.int32, name="row_splits")])
    def detokenize_bos_eos_reverse(self, ids, row_splits):
        return {"text": gen_spm.sentencepiece_detokenize_op(
            self._handle(), ids, row_splits, True, True, True)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32, name="ids")])
    def id_to_string(self, ids):
        return {"pieces": self.tok.id_to_string(ids)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="pieces")])
    def string_to_id(self, pieces):
        return {"ids": self.tok.string_to_id(pieces)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32, name="dummy")])
    def vocab_size(self, dummy):
        return {"vocab_size": self.tok.vocab_size()}


SIGNATURES = ["tokenize", "tokenize_with_offsets", "tokenize_pieces_offsets",
              "tokenize_bos_eos_reverse", "detokenize", "detokenize_pieces",
              "detokenize_bos_eos_reverse", "id_to_string", "string_to_id", "vocab_size",
              "tokenize_sample"]


def flat_with_splits(rows):
    values, splits = [], [0]
    for r in rows:
        values.extend(r)
        splits.append(len(values))
    return values, splits


def build(name, model):
    out = fresh_dir(name)
    module = SpmModule(model)
    sigs = {s: getattr(module, s) for s in SIGNATURES}
    sigs["serving_default"] = module.tokenize
    tf.saved_model.save(module, out, signatures=sigs)

    sp = spm.SentencePieceProcessor(model_proto=model)
    n = sp.get_piece_size()
    raw = adversarial_inputs()
    text_in = {"text": raw}
    text_json = {"text": [bytes_to_json(b) for b in raw]}

    # Detokenize inputs: TF's own tokenization of the inputs, plus hand-picked id rows
    # (control, unknown, byte pieces, everything in order), and an empty row.
    tok = tf.saved_model.load(out).signatures["tokenize"](text=tf.constant(raw))
    ids = tok["ids"].numpy().tolist()
    splits = tok["row_splits"].numpy().tolist()
    rows = [ids[splits[i]:splits[i + 1]] for i in range(len(splits) - 1)]
    rows += [[], [0, 0, 1, 2, 0], list(range(n)), list(range(n - 1, -1, -1))[:200],
             [i for i in range(n) if sp.is_byte(i)][60:80] + [3, 4, 5],
             [i for i in range(n) if sp.is_byte(i)][200:230]]
    dv, ds = flat_with_splits(rows)
    pieces = [sp.id_to_piece(i) for i in range(n)]
    prow = [pieces[:50], ["<0x41>", "▁x", "<0xE2>", "<unk>", "<s>", "x"], [], pieces[n - 40:],
            ["", "not-a-piece", "▁▁", "<0xZZ>", "[MASK]", "<sep>", "▁the"]]
    pv, ps = flat_with_splits(prow)
    str_ids = pieces + ["", "not-a-piece", "<0xZZ>", "<0x41>", "▁", "▁▁", "[MASK]", "<sep>",
                        "UNK", "<UNK>", " ", "\u2581the"]
    extra = [
        ("tokenize_with_offsets", text_json, text_in),
        ("tokenize_pieces_offsets", text_json, text_in),
        ("tokenize_bos_eos_reverse", text_json, text_in),
        ("detokenize", {"ids": dv, "row_splits": ds}, None),
        ("detokenize_pieces", {"pieces": pv, "row_splits": ps}, None),
        ("detokenize_bos_eos_reverse", {"ids": dv[:ds[40]], "row_splits": ds[:41]}, None),
        ("id_to_string", {"ids": list(range(n))}, None),
        ("string_to_id", {"pieces": str_ids}, None),
        ("vocab_size", {"dummy": [0]}, None),
    ]
    write_json(os.path.join(out, "inputs.json"), text_json)
    write_json(os.path.join(out, "golden.json"), run_signature(out, text_in))
    for sig, js, feed in extra:
        write_json(os.path.join(out, f"inputs_{sig}.json"), js)
        write_json(os.path.join(out, f"golden_{sig}.json"), run_signature(out, feed or js, sig))
    mf.write_signatures_json(out)
    mf.write_variables_json(out)
    return out


def build_spm_unigram():
    model = train(model_type="unigram", vocab_size=1000, normalization_rule_name="nmt_nfkc",
                  user_defined_symbols=["[MASK]", "<sep>"], character_coverage=0.9995)
    return build("spm_unigram", model)


def build_spm_bpe():
    model = train(model_type="bpe", vocab_size=1000, normalization_rule_name="identity",
                  byte_fallback=True, remove_extra_whitespaces=False, character_coverage=0.999,
                  user_defined_symbols=["[MASK]"])
    return build("spm_bpe", model)


def vector_texts():
    """Tie-heavy strings over a small alphabet, then random mixes of the hard cases."""
    import itertools
    out = [b""]
    for n in range(1, 5):
        out += ["".join(t).encode() for t in itertools.product("fslo ", repeat=n)][::4]
    rng = random.Random(SEED + 2)
    alphabet = list("ab ﬁＡ①\t\n\u200b\u3000é\u0301日本😀☃") + [
        "[MASK]", "<sep>", "<s>", "  ", "\xa0", "the", "▁"]
    for _ in range(400):
        out.append("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))).encode())
    for _ in range(100):
        out.append(bytes(rng.randrange(256) for _ in range(rng.randint(0, 10))))
    return out


def build_spm_vectors():
    """Model protos (no SavedModel) and TF's tokenize_with_offsets / pieces / detokenize output
    for the model kinds the SavedModel fixtures do not cover: WORD, CHAR, and unigram with
    treat_whitespace_as_suffix + byte_fallback. All use the identity normalizer (no 256 KB
    charsmap), so the directory stays small."""
    out = fresh_dir("spm_vectors")
    models = {
        "word": train(model_type="word", vocab_size=800, normalization_rule_name="identity"),
        "char": train(model_type="char", normalization_rule_name="identity",
                      user_defined_symbols=["[MASK]"]),
        "unigram_suffix": train(model_type="unigram", vocab_size=500,
                                treat_whitespace_as_suffix=True, byte_fallback=True,
                                normalization_rule_name="identity"),
    }
    texts = vector_texts()
    doc = {"texts": [bytes_to_json(t) for t in texts], "models": {}}
    for name, m in models.items():
        with open(os.path.join(out, name + ".model"), "wb") as f:
            f.write(m)
        tok = tf_text.SentencepieceTokenizer(model=m)
        pieces = tf_text.SentencepieceTokenizer(model=m, out_type=tf.string).tokenize(texts)
        ids, starts, limits = tok.tokenize_with_offsets(texts)
        doc["models"][name] = {
            "ids": ids.flat_values.numpy().tolist(),
            "row_splits": ids.row_splits.numpy().tolist(),
            "starts": starts.flat_values.numpy().tolist(),
            "limits": limits.flat_values.numpy().tolist(),
            "pieces": [bytes_to_json(p) for p in pieces.flat_values.numpy().tolist()],
            "detokenized": [bytes_to_json(d) for d in tok.detokenize(ids).numpy().tolist()],
        }
    write_json(os.path.join(out, "vectors.json"), doc)
    return out


BUILDERS = {"spm_unigram": build_spm_unigram, "spm_bpe": build_spm_bpe,
            "spm_vectors": build_spm_vectors}


def main(argv):
    mf.run_builders(BUILDERS, argv[1:], f"TensorFlow {tf.__version__}, tensorflow_text {tf_text.__version__}, "
          f"sentencepiece {spm.__version__}")


if __name__ == "__main__":
    main(sys.argv)

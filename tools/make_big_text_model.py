#!/usr/bin/env python3
"""Builds a large nnlm-style text embedding SavedModel for benchmarking (not a fixture).

Same module as `build_text_embedding` in tools/make_fixtures.py (TextEmbedding: whole-line
vocabulary asset, StaticVocabularyTable with OOV buckets, sqrtn safe_embedding_lookup_sparse,
`serving_default` and `tokens` signatures), but with a much larger vocabulary: every distinct
word from the Python stdlib's docstrings/comments, then synthetic tokens `w0000123` up to
--vocab entries.

Usage:
  /work/venv/bin/python tools/make_big_text_model.py OUT_DIR [--vocab 1000000] [--dim 128] \
      [--oov 1000]

Writes OUT_DIR (deleted first) and OUT_DIR/inputs.json = {"sentences": [...32 sentences...]}.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixtures as mf  # noqa: E402

tf = mf.tf

SENTENCES = [
    "the quick brown fox jumps over the lazy dog",
    "this function returns a new list of values",
    "raise an exception if the file does not exist",
    "the default value is none",
    "read the data from the socket and return it",
    "convert the string to an integer",
    "a simple example of how to use the module",
    "if the argument is omitted the current time is used",
    "return true if the object is callable",
    "the buffer is flushed when the stream is closed",
    "open the file in binary mode",
    "this method is called by the parser for each element",
    "the result is cached for later use",
    "create a temporary directory and return its name",
    "split the path into a pair of head and tail",
    "the number of seconds since the epoch",
    "an error occurred while processing the request",
    "the class provides a simple interface for logging",
    "wait until the thread terminates",
    "encode the message using the given encoding",
    "return the hash value of the object",
    "the keys are sorted in ascending order",
    "skip blank lines and comments in the input",
    "set the timeout for blocking operations",
    "the server listens on the given port",
    "compute the checksum of the data",
    "parse the header and return a dictionary",
    "the iterator yields one item at a time",
    "copy the contents of the source file to the destination",
    "check whether the lock is held by the current thread",
    "the weather today is sunny with a light breeze",
    "please send the report before the end of the week",
]
assert len(SENTENCES) == 32


def build_vocab(size):
    counts = mf._stdlib_word_counts()
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    words = [w for w, _ in ranked[:size]]
    seen = set(words)
    i = 0
    while len(words) < size:
        w = f"w{i:07d}"
        i += 1
        if w not in seen:
            words.append(w)
    return words


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir")
    ap.add_argument("--vocab", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--oov", type=int, default=1000)
    args = ap.parse_args()

    mf.seed_everything()
    out = os.path.abspath(args.out_dir)
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    words = build_vocab(args.vocab)
    with tempfile.TemporaryDirectory() as tmp:
        vocab_path = os.path.join(tmp, "tokens.txt")
        with open(vocab_path, "w", encoding="utf-8", newline="\n") as f:
            for w in words:
                f.write(w + "\n")
        module = mf.TextEmbedding(vocab_path, args.vocab, args.oov, args.dim, normalize=False)
        tf.saved_model.save(module, out, signatures={"serving_default": module.serve,
                                                     "tokens": module.tokens})
    with open(os.path.join(out, "inputs.json"), "w", encoding="utf-8") as f:
        json.dump({"sentences": SENTENCES}, f, indent=1)
    print(f"wrote {out}: vocab={args.vocab} dim={args.dim} oov={args.oov}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Builds the end-to-end BERT benchmark of issue #15 (not committed): text -> BERT
preprocessor (tensorflow_text `BertTokenizer`, 30k-token generated vocabulary, seq_length 128,
from tools/make_fixtures_bert.py) -> BERT-base-sized encoder (L12 H768 A12 FFN3072, from
tools/make_bench_models.py --suite bert), exported as one SavedModel whose serving_default
maps `text` to the encoder's sequence output. Word ids are folded into the encoder's
8192-row embedding with `floormod`.

  /work/venv/bin/python tools/make_bench_models.py /tmp/tfhub-bench-bert --suite bert
  /work/venv/bin/python tools/make_fixtures_bert.py --bench-model /tmp/tfhub-bench-bert/bert_preprocess
  /work/venv/bin/python tools/make_bench_bert_e2e.py /tmp/tfhub-bench-bert
  /work/venv/bin/python tools/bench_vs_tf.py /tmp/tfhub-bench-bert/bert_e2e \\
      --inputs /tmp/tfhub-bench-bert/bert_e2e/inputs.json --import tensorflow_text --batch 8
"""
import os
import shutil
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # noqa: E402
import tensorflow_text  # noqa: E402,F401  (registers the preprocessor's ops)


def main(root):
    pre = tf.saved_model.load(os.path.join(root, "bert_preprocess"))
    enc = tf.saved_model.load(os.path.join(root, "bert_base"))
    pre_fn = pre.signatures["serving_default"]
    enc_fn = enc.signatures["serving_default"]
    (enc_in,) = enc_fn.structured_input_signature[1].keys()

    class E2E(tf.Module):
        def __init__(self):
            super().__init__()
            self.pre, self.enc = pre, enc

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serve(self, text):
            ids = pre_fn(text=text)["input_word_ids"]
            ids = tf.math.floormod(tf.cast(ids, tf.int32), 8192)
            out = enc_fn(**{enc_in: ids})
            return {"output": next(iter(out.values()))}

    out = os.path.join(root, "bert_e2e")
    if os.path.exists(out):
        shutil.rmtree(out)
    m = E2E()
    tf.saved_model.save(m, out, signatures={"serving_default": m.serve})
    shutil.copy(os.path.join(root, "bert_preprocess", "inputs.json"), os.path.join(out, "inputs.json"))
    print(out)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/tfhub-bench-bert")

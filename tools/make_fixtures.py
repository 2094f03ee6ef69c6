#!/usr/bin/env python3
"""Regenerates the SavedModel test fixtures under tests/fixtures/ with real TensorFlow.

Usage (from the repository root):

    python3 -m venv /tmp/venv
    /tmp/venv/bin/pip install -r tools/requirements.txt
    /tmp/venv/bin/python tools/make_fixtures.py [fixture names...]

Without arguments every fixture is rebuilt. Each fixture directory is deleted
and recreated. Everything is seeded, so golden outputs are reproducible.

For every SavedModel fixture the following files are written next to
saved_model.pb:

  inputs.json            {"<input name>": nested list}         (serving_default)
  golden.json            {"<output name>": {"dtype", "shape", "values"}}
  inputs_<sig>.json / golden_<sig>.json   same, for extra signatures
  signatures.json        MetaGraphDef / SignatureDef summary (parsed by TF)
  variables.json         checkpoint key -> {"dtype", "shape"}
  variable_values.json   checkpoint key -> {"dtype", "shape", "sha256", "values"?}
"""

import ast
import base64
import collections
import hashlib
import io
import json
import os
import re
import shutil
import sys
import sysconfig
import tempfile
import tokenize

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(REPO_ROOT, "tests", "fixtures")

SEED = 1234

TEXT_INPUTS = [
    "A long sentence.",
    "single-word",
    "http://example.com",
    "",
    "   ",
    "a\tb\nc",
    "!!! ...",
    "Café naïve résumé",
    "日本語のテキスト",
    "I ❤ 🍕 pizza",
    "The Quick BROWN fox",
    "double  space",
    "the cat sat on the mat",
    "Unknown zzzqqq xyzzy tokens",
]

FINGERPRINT_FORMULA = "bytes((i * 131 + len * 7 + 13) % 256 for i in range(len))"


# --------------------------------------------------------------------------
# Generic helpers
# --------------------------------------------------------------------------


def seed_everything(seed=SEED):
    tf.keras.utils.set_random_seed(seed)  # python, numpy and TF/Keras seeds
    tf.random.set_seed(seed)
    np.random.seed(seed)


def fresh_dir(name):
    path = os.path.join(FIXTURES, name)
    if os.path.exists(path):
        shutil.rmtree(path)
    os.makedirs(path)
    return path


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, sort_keys=True, indent=1, ensure_ascii=False, allow_nan=False)
        f.write("\n")


def bytes_to_json(b):
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return {"b64": base64.b64encode(b).decode("ascii")}


def scalar_to_json(v):
    if isinstance(v, bytes):
        return bytes_to_json(v)
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, (np.integer, int)):
        return int(v)
    return float(v)  # float16 / bfloat16 / float32 / float64 -> exact python float


def flat_values(arr):
    return [scalar_to_json(v) for v in np.asarray(arr).reshape(-1).tolist()]


def tensor_to_json(t):
    t = tf.convert_to_tensor(t)
    arr = t.numpy()
    return {
        "dtype": t.dtype.name,
        "shape": [int(d) for d in arr.shape],
        "values": flat_values(arr),
    }


def dtype_name(enum):
    if enum == 0:
        return "invalid"
    return tf.dtypes.as_dtype(enum).name


def tensor_info_to_json(ti):
    shape = None
    if not ti.tensor_shape.unknown_rank:
        shape = [int(d.size) for d in ti.tensor_shape.dim]
    return {"name": ti.name, "dtype": dtype_name(ti.dtype), "shape": shape}


def write_signatures_json(model_dir):
    from tensorflow.python.saved_model import loader_impl

    sm = loader_impl.parse_saved_model(model_dir)
    metas = []
    for mg in sm.meta_graphs:
        sigs = {}
        for key in sorted(mg.signature_def.keys()):
            sd = mg.signature_def[key]
            sigs[key] = {
                "method_name": sd.method_name,
                "inputs": {k: tensor_info_to_json(v) for k, v in sd.inputs.items()},
                "outputs": {k: tensor_info_to_json(v) for k, v in sd.outputs.items()},
            }
        metas.append({
            "tags": sorted(mg.meta_info_def.tags),
            "signatures": sigs,
            "asset_files": sorted(a.filename for a in mg.asset_file_def),
            "has_saver_def": mg.HasField("saver_def"),
        })
    write_json(os.path.join(model_dir, "signatures.json"), {"meta_graphs": metas})


def write_variables_json(model_dir):
    prefix = os.path.join(model_dir, "variables", "variables")
    if not os.path.exists(prefix + ".index"):
        write_json(os.path.join(model_dir, "variables.json"), {})
        write_json(os.path.join(model_dir, "variable_values.json"), {})
        return
    reader = tf.train.load_checkpoint(prefix)
    shapes = reader.get_variable_to_shape_map()
    dtypes = reader.get_variable_to_dtype_map()
    variables = {}
    values = {}
    for key in sorted(shapes):
        dt = dtypes[key]
        shape = [int(d) for d in shapes[key]]
        variables[key] = {"dtype": dt.name, "shape": shape}
        if key == "_CHECKPOINTABLE_OBJECT_GRAPH":
            continue
        value = reader.get_tensor(key)
        entry = {"dtype": dt.name, "shape": shape}
        if dt == tf.string:
            arr = np.asarray(value, dtype=object)
            entry["values"] = [bytes_to_json(v) for v in arr.reshape(-1)]
        else:
            arr = np.ascontiguousarray(np.asarray(value))
            if arr.dtype.byteorder == ">":
                arr = arr.byteswap().view(arr.dtype.newbyteorder("<"))
            entry["sha256"] = hashlib.sha256(arr.tobytes()).hexdigest()
            if arr.size <= 16:  # a sample for readers; the sha256 is what tests compare
                entry["values"] = flat_values(arr)
        values[key] = entry
    write_json(os.path.join(model_dir, "variables.json"), variables)
    write_json(os.path.join(model_dir, "variable_values.json"), values)


def run_signature(model_dir, inputs, signature="serving_default"):
    loaded = tf.saved_model.load(model_dir)
    fn = loaded.signatures[signature]
    _, kwspecs = fn.structured_input_signature
    assert set(kwspecs) == set(inputs), (signature, sorted(kwspecs), sorted(inputs))
    feed = {k: tf.constant(v, dtype=kwspecs[k].dtype) for k, v in inputs.items()}
    out = fn(**feed)
    return {k: tensor_to_json(v) for k, v in out.items()}


def finish_model(model_dir, inputs, extra=()):
    """Writes inputs/golden for serving_default and `extra` signatures + metadata."""
    write_json(os.path.join(model_dir, "inputs.json"), inputs)
    write_json(os.path.join(model_dir, "golden.json"), run_signature(model_dir, inputs))
    for sig, sig_inputs in extra:
        write_json(os.path.join(model_dir, f"inputs_{sig}.json"), sig_inputs)
        write_json(os.path.join(model_dir, f"golden_{sig}.json"),
                   run_signature(model_dir, sig_inputs, sig))
    write_signatures_json(model_dir)
    write_variables_json(model_dir)


# --------------------------------------------------------------------------
# Vocabulary from the Python standard library's docstrings and comments
# --------------------------------------------------------------------------

_WORD_RE = re.compile(r"[A-Za-z]+")
_VOCAB_CACHE = None


def _stdlib_word_counts():
    global _VOCAB_CACHE
    if _VOCAB_CACHE is not None:
        return _VOCAB_CACHE
    stdlib = sysconfig.get_paths()["stdlib"]
    files = []
    for root, dirs, names in os.walk(stdlib):
        rel = os.path.relpath(root, stdlib)
        parts = rel.split(os.sep)
        if parts[0] in ("site-packages", "dist-packages") or "test" in parts or "tests" in parts:
            dirs[:] = []
            continue
        dirs.sort()
        files.extend(os.path.join(root, n) for n in sorted(names) if n.endswith(".py"))
    counts = collections.Counter()
    for path in sorted(files):
        try:
            with open(path, "rb") as f:
                src = f.read()
            text = src.decode("utf-8")
            tree = ast.parse(text)
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        chunks = []
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node, clean=False)
                if doc:
                    chunks.append(doc)
        try:
            for tok in tokenize.tokenize(io.BytesIO(src).readline):
                if tok.type == tokenize.COMMENT:
                    chunks.append(tok.string)
        except (tokenize.TokenError, SyntaxError):
            pass
        for chunk in chunks:
            counts.update(w.lower() for w in _WORD_RE.findall(chunk))
    _VOCAB_CACHE = counts
    return counts


def stdlib_vocab(size):
    counts = _stdlib_word_counts()
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    words = [w for w, _ in ranked[:size]]
    assert len(words) == size, f"only {len(words)} distinct words in stdlib docs"
    return words


# --------------------------------------------------------------------------
# NNLM-style text embedding modules
# --------------------------------------------------------------------------


class TextEmbedding(tf.Module):
    def __init__(self, vocab_path, vocab_size, num_oov_buckets, dim, normalize):
        super().__init__()
        self.vocab_file = tf.saved_model.Asset(vocab_path)
        initializer = tf.lookup.TextFileInitializer(
            self.vocab_file,
            key_dtype=tf.string,
            key_index=tf.lookup.TextFileIndex.WHOLE_LINE,
            value_dtype=tf.int64,
            value_index=tf.lookup.TextFileIndex.LINE_NUMBER,
        )
        self.table = tf.lookup.StaticVocabularyTable(initializer, num_oov_buckets=num_oov_buckets)
        rng = np.random.RandomState(SEED + dim)
        self.embeddings = tf.Variable(
            rng.standard_normal((vocab_size + num_oov_buckets, dim)).astype(np.float32),
            name="embeddings",
            trainable=False,
        )
        self.normalize = normalize

    def _tokenize(self, sentences):
        if self.normalize:
            sentences = tf.strings.lower(sentences)
            sentences = tf.strings.regex_replace(sentences, r"\pP", " ")
            sentences = tf.strings.regex_replace(sentences, r"\s+", " ")
            sentences = tf.strings.regex_replace(sentences, r"^ | $", "")
        tokens = tf.strings.split(sentences, " ").to_sparse()
        ids = self.table.lookup(tokens.values)
        return tf.SparseTensor(tokens.indices, ids, tokens.dense_shape)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="sentences")])
    def __call__(self, sentences):
        sparse_ids = self._tokenize(sentences)
        return tf.nn.safe_embedding_lookup_sparse(self.embeddings, sparse_ids, combiner="sqrtn")

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="sentences")])
    def serve(self, sentences):
        return {"default": self.__call__(sentences)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="sentences")])
    def tokens(self, sentences):
        sparse_ids = self._tokenize(sentences)
        return {"ids": sparse_ids.values, "indices": sparse_ids.indices}


def build_text_embedding(name, vocab_size, num_oov_buckets, dim, normalize):
    seed_everything()
    out = fresh_dir(name)
    with tempfile.TemporaryDirectory() as tmp:
        vocab_path = os.path.join(tmp, "tokens.txt")
        with open(vocab_path, "w", encoding="utf-8", newline="\n") as f:
            for w in stdlib_vocab(vocab_size):
                f.write(w + "\n")
        module = TextEmbedding(vocab_path, vocab_size, num_oov_buckets, dim, normalize)
        tf.saved_model.save(module, out, signatures={"serving_default": module.serve,
                                                     "tokens": module.tokens})
    inputs = {"sentences": TEXT_INPUTS}
    finish_model(out, inputs, extra=[("tokens", inputs)])
    return out


def build_nnlm_en_dim128():
    return build_text_embedding("nnlm_en_dim128", 6000, 1000, 128, normalize=False)


def build_nnlm_norm_dim32():
    return build_text_embedding("nnlm_norm_dim32", 2000, 100, 32, normalize=True)


# --------------------------------------------------------------------------
# fingerprint64 vectors (not a model)
# --------------------------------------------------------------------------


def fingerprint_bytes(n):
    return bytes((i * 131 + n * 7 + 13) % 256 for i in range(n))


def build_fingerprint64():
    out = fresh_dir("fingerprint64")
    num_buckets = 2**63 - 1
    lengths = list(range(0, 2101))
    generated = [fingerprint_bytes(n) for n in lengths]
    buckets = tf.strings.to_hash_bucket_fast(tf.constant(generated, dtype=tf.string),
                                             num_buckets=num_buckets).numpy()
    words = ["Hello", "World", "a", "b", "c", "d", "", "Café", "naïve", "日本語", "🍕",
             "the", "tokens.txt"]
    raw = [w.encode("utf-8") for w in words] + [b"\xff", b"\x00", b"\x80abc\xfe"]
    raw_buckets = tf.strings.to_hash_bucket_fast(tf.constant(raw, dtype=tf.string),
                                                 num_buckets=num_buckets).numpy()
    write_json(os.path.join(out, "vectors.json"), {
        "op": "tf.strings.to_hash_bucket_fast (StringToHashBucketFast, Fingerprint64 % num_buckets)",
        "num_buckets": num_buckets,
        "generator": FINGERPRINT_FORMULA,
        "by_len": [{"len": n, "bucket": int(b)} for n, b in zip(lengths, buckets)],
        "strings": [{"input_hex": s.hex(), "bucket": int(b)} for s, b in zip(raw, raw_buckets)],
    })
    return out


# --------------------------------------------------------------------------
# Keras 3 models exported with model.export()
# --------------------------------------------------------------------------


def keras3():
    import keras

    assert keras.__version__.startswith("3."), keras.__version__
    return keras


def export_keras3(model, name, inputs):
    out = fresh_dir(name)
    model.export(out, verbose=False)
    finish_model(out, inputs)
    return out


def build_mlp():
    keras = keras3()
    seed_everything()
    inp = keras.Input(shape=(16,), dtype="float32", name="features")
    x = keras.layers.Dense(64, activation="relu")(inp)
    x = keras.layers.Dense(64, activation="gelu")(x)
    out = keras.layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inp, out, name="mlp")
    rng = np.random.RandomState(SEED)
    inputs = {"features": rng.standard_normal((4, 16)).astype(np.float32).tolist()}
    return export_keras3(model, "mlp", inputs)


def _randomize_batchnorm(model, rng):
    keras = keras3()
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.gamma.assign(rng.uniform(0.5, 1.5, n).astype(np.float32))
            layer.beta.assign(rng.uniform(-0.5, 0.5, n).astype(np.float32))
            layer.moving_mean.assign(rng.uniform(-0.3, 0.3, n).astype(np.float32))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, n).astype(np.float32))


def calibrate_batchnorm(model, calib, rng):
    """Random BatchNormalization parameters whose moving stats fit the data.

    `_randomize_batchnorm`'s stats ignore the activations, which is fine for a few layers but
    makes a deep randomly initialised network (MobileNetV2, ResNet50...) forget its input:
    activations shrink layer after layer until the output is the same for every image, so a
    golden test could no longer see a wrong op. Here gamma and beta are random, then one
    training-mode pass over `calib` with momentum 0 sets each layer's moving stats to its batch
    stats (each layer then sees normalised inputs), which are finally perturbed a little so
    mean and variance still matter.
    """
    keras = keras3()
    bns = [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]
    drops = [l for l in model.layers if isinstance(l, keras.layers.Dropout)]
    saved = [(l, l.momentum) for l in bns] + [(l, l.rate) for l in drops]
    for layer in bns:
        n = layer.gamma.shape[0]
        layer.gamma.assign(rng.uniform(0.5, 1.5, n).astype(np.float32))
        layer.beta.assign(rng.uniform(-0.5, 0.5, n).astype(np.float32))
        layer.momentum = 0.0
    for layer in drops:
        layer.rate = 0.0  # deterministic calibration pass
    model(calib, training=True)
    for layer, value in saved:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = value
        else:
            layer.rate = value
    for layer in bns:
        n = layer.gamma.shape[0]
        var = np.asarray(layer.moving_variance.numpy(), np.float64)
        mean = np.asarray(layer.moving_mean.numpy(), np.float64)
        layer.moving_mean.assign(
            (mean + rng.uniform(-0.1, 0.1, n) * np.sqrt(var)).astype(np.float32))
        layer.moving_variance.assign((var * rng.uniform(0.8, 1.25, n)).astype(np.float32))


def build_cnn():
    keras = keras3()
    L = keras.layers
    seed_everything()
    inp = keras.Input(shape=(16, 16, 3), dtype="float32", name="image")
    x = L.Conv2D(8, 3, strides=2, padding="same")(inp)
    x = L.BatchNormalization()(x)
    x = L.ReLU(max_value=6.0)(x)
    x = L.DepthwiseConv2D(3, padding="same")(x)
    x = L.BatchNormalization()(x)
    x = L.Activation("relu6")(x)
    x = L.Conv2D(16, 1)(x)
    x = L.MaxPooling2D(pool_size=2)(x)
    x = L.AveragePooling2D(pool_size=2, padding="same")(x)
    x = L.GlobalAveragePooling2D()(x)
    out = L.Dense(5)(x)
    model = keras.Model(inp, out, name="cnn")
    rng = np.random.RandomState(SEED)
    _randomize_batchnorm(model, rng)
    inputs = {"image": rng.uniform(0.0, 1.0, (2, 16, 16, 3)).astype(np.float32).tolist()}
    return export_keras3(model, "cnn", inputs)


def build_attention():
    keras = keras3()
    L = keras.layers
    seed_everything()
    inp = keras.Input(shape=(8, 32), dtype="float32", name="tokens")
    att = L.MultiHeadAttention(num_heads=2, key_dim=16)(inp, inp)
    x = L.LayerNormalization()(L.Add()([inp, att]))
    h = L.Dense(64, activation="gelu")(x)
    h = L.Dense(32)(h)
    out = L.LayerNormalization()(L.Add()([x, h]))
    model = keras.Model(inp, out, name="attention")
    rng = np.random.RandomState(SEED)
    inputs = {"tokens": rng.standard_normal((2, 8, 32)).astype(np.float32).tolist()}
    return export_keras3(model, "attention", inputs)


def build_mobilenet_v2_small():
    """keras.applications.MobileNetV2 (weights=None), shrunk to fit the fixture budget."""
    keras = keras3()
    seed_everything()
    model = keras.applications.MobileNetV2(weights=None, alpha=0.35, input_shape=(96, 96, 3),
                                           classes=10)
    rng = np.random.RandomState(SEED)
    calib = rng.uniform(-1.0, 1.0, (8, 96, 96, 3)).astype(np.float32)
    calibrate_batchnorm(model, calib, rng)
    # MobileNetV2 expects preprocess_input()'s range [-1, 1]. Multiples of 1/128 are exact in
    # float32 and print short, which keeps inputs.json (55k values) small.
    image = (rng.randint(-128, 129, (2, 96, 96, 3)) / 128.0).astype(np.float32)
    (input_name,) = [t.name for t in model.inputs]
    return export_keras3(model, "mobilenet_v2_small", {input_name: image.tolist()})


# --------------------------------------------------------------------------
# tf_keras (Keras 2) + tensorflow_hub
# --------------------------------------------------------------------------


def build_hub_classifier():
    import tf_keras
    import tensorflow_hub as hub

    seed_everything()
    tf_keras.utils.set_random_seed(SEED)
    embed_dir = os.path.join(FIXTURES, "nnlm_norm_dim32")
    assert os.path.exists(os.path.join(embed_dir, "saved_model.pb")), "build nnlm_norm_dim32 first"
    out = fresh_dir("hub_classifier")
    model = tf_keras.Sequential([
        hub.KerasLayer(embed_dir, input_shape=[], dtype=tf.string, trainable=False),
        tf_keras.layers.Dense(16, activation="relu"),
        tf_keras.layers.Dense(1),
    ])
    model.save(out, save_format="tf")
    loaded = tf.saved_model.load(out)
    (input_name,) = loaded.signatures["serving_default"].structured_input_signature[1].keys()
    finish_model(out, {input_name: TEXT_INPUTS})
    return out


def build_cnn_keras2():
    """tf-keras (Keras 2): BatchNormalization exports as FusedBatchNormV3 (is_training=False)."""
    import tf_keras

    L = tf_keras.layers
    seed_everything()
    tf_keras.utils.set_random_seed(SEED)
    out = fresh_dir("cnn_keras2")
    inp = tf_keras.Input(shape=(12, 12, 3), dtype="float32", name="image")
    x = L.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(inp)
    x = L.BatchNormalization()(x)
    x = L.ReLU(max_value=6.0)(x)
    x = L.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
    x = L.BatchNormalization(epsilon=1e-5)(x)
    x = L.ReLU()(x)
    x = L.Conv2D(12, 1)(x)
    x = L.BatchNormalization()(x)
    x = L.GlobalAveragePooling2D()(x)
    model = tf_keras.Model(inp, L.Dense(4)(x), name="cnn_keras2")
    rng = np.random.RandomState(SEED)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.gamma.assign(rng.uniform(0.5, 1.5, n).astype(np.float32))
            layer.beta.assign(rng.uniform(-0.5, 0.5, n).astype(np.float32))
            layer.moving_mean.assign(rng.uniform(-0.3, 0.3, n).astype(np.float32))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, n).astype(np.float32))
    model.save(out, save_format="tf")
    loaded = tf.saved_model.load(out)
    (input_name,) = loaded.signatures["serving_default"].structured_input_signature[1].keys()
    image = rng.uniform(-1.0, 1.0, (2, 12, 12, 3)).astype(np.float32)
    finish_model(out, {input_name: image.tolist()})
    return out


# --------------------------------------------------------------------------
# Sharded checkpoint with many dtypes
# --------------------------------------------------------------------------


class ManyDtypes(tf.Module):
    def __init__(self):
        super().__init__()
        rng = np.random.RandomState(SEED)
        self.w = tf.Variable(rng.standard_normal((300, 100)).astype(np.float32), name="w")
        self.counts = tf.Variable(
            (rng.randint(-(2**40), 2**40, size=50)).astype(np.int64), name="counts")
        self.half = tf.Variable(rng.standard_normal((10, 10)).astype(np.float16), name="half")
        self.bf16 = tf.Variable(
            tf.cast(tf.constant(rng.standard_normal((4, 4)).astype(np.float32)), tf.bfloat16),
            name="bf16")
        self.mask = tf.Variable([True, False, True, True, False, False, True], name="mask")
        self.small = tf.Variable(np.array([-128, -1, 0, 1, 127, 42], dtype=np.int8), name="small")
        self.bytes_ = tf.Variable(np.array([0, 1, 128, 254, 255], dtype=np.uint8), name="bytes")
        self.double = tf.Variable(
            np.array([np.pi, -1e-300, 1e300, 0.1, 2.0 / 3.0], dtype=np.float64), name="double")
        self.strings = tf.Variable(
            [b"alpha", b"", "ünïcödé".encode("utf-8"), b"x" * 300, b"\xff\xfe\x00bin"],
            dtype=tf.string, name="strings")

    @tf.function(input_signature=[tf.TensorSpec([None, 300], tf.float32, name="x")])
    def serve(self, x):
        y = tf.matmul(x, self.w)  # [batch, 100]
        extra = (
            tf.reduce_sum(tf.cast(self.counts, tf.float32)) * 1e-12
            + tf.reduce_sum(tf.cast(self.half, tf.float32))
            + tf.reduce_sum(tf.cast(self.bf16, tf.float32))
            + tf.reduce_sum(tf.cast(self.mask, tf.float32))
            + tf.reduce_sum(tf.cast(self.small, tf.float32))
            + tf.reduce_sum(tf.cast(self.bytes_, tf.float32))
            + tf.cast(tf.reduce_sum(self.double[:1]), tf.float32)
        )
        return {
            "y": y + extra,
            "row_sum": tf.reduce_sum(y, axis=1),
            "lengths": tf.strings.length(self.strings),
            "names": self.strings[:4],
            "mask": tf.logical_not(self.mask),
            "counts": self.counts[:5],
        }


def build_sharded():
    seed_everything()
    out = fresh_dir("sharded")
    module = ManyDtypes()
    options = tf.saved_model.SaveOptions(
        experimental_sharding_callback=tf.train.experimental.MaxShardSizePolicy(
            max_shard_size=50_000))
    tf.saved_model.save(module, out, signatures={"serving_default": module.serve},
                        options=options)
    shards = sorted(n for n in os.listdir(os.path.join(out, "variables"))
                    if n.startswith("variables.data-"))
    assert len(shards) >= 3, shards
    rng = np.random.RandomState(SEED + 1)
    inputs = {"x": rng.standard_normal((3, 300)).astype(np.float32).tolist()}
    finish_model(out, inputs)
    return out


class ControlFlow(tf.Module):
    """tf.cond, tf.while_loop and tf.switch_case: exported as functional If/While/Case ops."""

    def __init__(self):
        super().__init__()
        self.w = tf.Variable(tf.random.normal([4, 4], seed=SEED), name="w")

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32),
                                  tf.TensorSpec([], tf.int32)])
    def serve(self, x, n):
        def body(i, acc):
            return i + 1, tf.tanh(tf.matmul(acc, self.w))
        _, looped = tf.while_loop(lambda i, acc: i < n, body, [tf.constant(0), x])
        total = tf.reduce_sum(looped)
        picked = tf.cond(total > 0.0, lambda: looped * 2.0, lambda: looped - 1.0)
        branch = tf.switch_case(n % 3, [lambda: tf.constant(10.0), lambda: tf.constant(20.0),
                                        lambda: tf.constant(30.0)])
        return {"looped": looped, "picked": picked, "branch": branch}


def build_control_flow():
    seed_everything()
    out = fresh_dir("control_flow")
    module = ControlFlow()
    tf.saved_model.save(module, out, signatures={"serving_default": module.serve})
    rng = np.random.RandomState(SEED + 2)
    inputs = {"x": rng.standard_normal((3, 4)).astype(np.float32).tolist(), "n": 5}
    finish_model(out, inputs)
    return out


def build_frozen_mlp():
    """A TF1-style frozen GraphDef (`model.pb`): variables folded into Consts."""
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2)
    seed_everything()
    out = fresh_dir("frozen_mlp")
    w1 = tf.Variable(tf.random.normal([8, 16], seed=SEED))
    b1 = tf.Variable(tf.random.normal([16], seed=SEED + 1))
    w2 = tf.Variable(tf.random.normal([16, 3], seed=SEED + 2))

    @tf.function(input_signature=[tf.TensorSpec([None, 8], tf.float32, name="x")])
    def f(x):
        h = tf.nn.relu(tf.matmul(x, w1) + b1)
        return tf.nn.softmax(tf.matmul(h, w2), name="probs")

    frozen = convert_variables_to_constants_v2(f.get_concrete_function())
    gd = frozen.graph.as_graph_def()
    with open(os.path.join(out, "model.pb"), "wb") as fh:
        fh.write(gd.SerializeToString())
    in_name = frozen.inputs[0].name.split(":")[0]
    out_name = frozen.outputs[0].name
    rng = np.random.RandomState(SEED + 3)
    x = rng.standard_normal((2, 8)).astype(np.float32)
    y = frozen(tf.constant(x))
    y = y[0] if isinstance(y, (list, tuple)) else y
    write_json(os.path.join(out, "inputs.json"), {in_name: x.tolist()})
    write_json(os.path.join(out, "golden.json"), {out_name: tensor_to_json(y)})
    write_json(os.path.join(out, "outputs.json"), [out_name])
    return out


def prune_function_library(model_dir):
    """Drops library functions nothing reaches (gradient functions TF saves for control-flow
    v2 loops and conds), which are most of a small RNN SavedModel's bytes."""
    from tensorflow.core.protobuf import saved_model_pb2
    path = os.path.join(model_dir, "saved_model.pb")
    sm = saved_model_pb2.SavedModel()
    with open(path, "rb") as f:
        sm.ParseFromString(f.read())
    for mg in sm.meta_graphs:
        lib = mg.graph_def.library
        funcs = {f.signature.name: f for f in lib.function}

        def refs(nodes):
            out = set()
            for n in nodes:
                if n.op in funcs:
                    out.add(n.op)
                for a in n.attr.values():
                    if a.HasField("func"):
                        out.add(a.func.name)
                    out.update(fn.name for fn in a.list.func)
            return out

        todo = refs(mg.graph_def.node)
        todo.update(mg.object_graph_def.concrete_functions.keys())
        seen = set()
        while todo:
            name = todo.pop()
            if name in seen or name not in funcs:
                continue
            seen.add(name)
            todo |= refs(funcs[name].node_def)
        keep = [f for f in lib.function if f.signature.name in seen]
        grads = [g for g in lib.gradient if g.function_name in seen]
        del lib.function[:]
        lib.function.extend(keep)
        del lib.gradient[:]
        lib.gradient.extend(grads)
    with open(path, "wb") as f:
        f.write(sm.SerializeToString())


def build_rnn_text():
    """tf-keras RNN text classifier: Embedding(mask_zero) -> Bidirectional(LSTM) and a
    GRU(return_sequences) branch, max-pooled, concatenated -> Dense. The CPU path of Keras'
    `standard_lstm`/`standard_gru` is a While loop over TensorList ops."""
    import tf_keras

    L = tf_keras.layers
    seed_everything()
    tf_keras.utils.set_random_seed(SEED)
    out = fresh_dir("rnn_text")
    inp = tf_keras.Input(shape=(8,), dtype="int64", name="token_ids")
    emb = L.Embedding(20, 6, mask_zero=True)(inp)
    a = L.Bidirectional(L.LSTM(5))(emb)
    b = L.GRU(4, return_sequences=True)(emb)
    b = L.GlobalMaxPooling1D()(b)
    x = L.Concatenate()([a, b])
    model = tf_keras.Model(inp, L.Dense(3)(x), name="rnn_text")
    rng = np.random.RandomState(SEED + 7)
    model.set_weights([rng.uniform(-0.8, 0.8, w.shape).astype(np.float32)
                       for w in model.get_weights()])

    @tf.function(input_signature=[tf.TensorSpec([None, 8], tf.int64, name="token_ids")])
    def serve(token_ids):
        return {"logits": model(token_ids)}

    # Saving a bare module that only tracks the weights keeps Keras' per-layer traces (and the
    # training/cuDNN call variants) out of the SavedModel: 7 MB -> well under 300 KB.
    module = tf.Module()
    module.weights = list(model.weights)
    module.serve = serve
    tf.saved_model.save(module, out, signatures={"serving_default": serve},
                        options=tf.saved_model.SaveOptions(experimental_custom_gradients=False))
    prune_function_library(out)
    ids = [
        [0, 0, 0, 0, 0, 0, 0, 0],  # fully padded
        [3, 1, 4, 15, 9, 2, 6, 5],  # no padding
        [7, 0, 0, 0, 0, 0, 0, 0],  # one token
        [11, 12, 13, 0, 0, 0, 0, 0],  # right-padded
        [19, 0, 18, 0, 17, 0, 16, 0],  # holes in the mask
    ]
    finish_model(out, {"token_ids": ids})
    return out


# --------------------------------------------------------------------------
# Keras TextVectorization front ends (RaggedTensorToTensor, RaggedBincount)
# --------------------------------------------------------------------------

TV_CORPUS = [
    "the cat sat on the mat",
    "the dog sat on the log",
    "dogs and cats are great pets",
    "a long sentence indeed with many words",
    "hello world, hello again!",
    "punctuation! is, removed.",
    "café naïve résumé",
    "日本語 テキスト",
    "pizza ❤ 🍕",
    "the quick brown fox jumps over the lazy dog",
]

# The standard text edge cases, plus rows longer than any padding (truncated) and rows
# repeating tokens (counts above 1).
TV_INPUTS = TEXT_INPUTS + [
    "the cat sat on the mat and the dog sat on the log with the fox",
    "the the the cat cat",
]


def build_text_vectorization():
    """TextVectorization(int, length 8) -> Embedding -> GlobalAveragePooling1D -> Dense.
    The dense ids come from RaggedTensorToTensor (pads short rows, truncates long ones)."""
    import tf_keras

    L = tf_keras.layers
    seed_everything()
    tf_keras.utils.set_random_seed(SEED)
    out = fresh_dir("text_vectorization")
    tv = L.TextVectorization(max_tokens=60, output_mode="int", output_sequence_length=8)
    tv.adapt(TV_CORPUS)
    inp = tf_keras.Input(shape=(), dtype=tf.string, name="text")
    ids = tv(inp)
    x = L.Embedding(tv.vocabulary_size(), 8)(ids)
    x = L.GlobalAveragePooling1D()(x)
    logits = L.Dense(3)(x)
    model = tf_keras.Model(inp, {"logits": logits, "ids": ids})

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(text):
        return model(text)

    tf.saved_model.save(model, out, signatures={"serving_default": serve})
    finish_model(out, {"text": TV_INPUTS})
    return out


def build_text_vectorization_bincount():
    """TextVectorization in the multi_hot / count / tf_idf modes (RaggedBincount)."""
    import tf_keras

    L = tf_keras.layers
    seed_everything()
    out = fresh_dir("text_vectorization_bincount")
    layers = {}
    for mode in ("multi_hot", "count", "tf_idf"):
        layers[mode] = L.TextVectorization(max_tokens=20, output_mode=mode, ngrams=None)
        layers[mode].adapt(TV_CORPUS)
    module = tf.Module()
    module.layers = layers

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(text):
        return {mode: layer(text) for mode, layer in layers.items()}

    module.serve = serve
    tf.saved_model.save(module, out, signatures={"serving_default": serve})
    finish_model(out, {"text": TV_INPUTS})
    return out


# --------------------------------------------------------------------------
# String n-grams and Unicode decode/encode (StringNGrams, UnsortedSegmentJoin, Unicode*)
# --------------------------------------------------------------------------

# Not UTF-8: a stray byte, truncated sequences, an encoded surrogate, C0/DEL controls.
INVALID_UTF8_INPUTS = [
    b"a\xffb",
    b"\xe4\xb8x",
    b"\xed\xa0\x80",
    b"\xf0\x9f\x98",
    b"caf\xc3",
    b"ok\x01\x1f\x7f end",
    b"\x80\x80 \xc0\xaf",
]


class StringNGramsModule(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(self, text):
        words = tf.strings.split(text, " ")  # keeps empty tokens between double spaces
        ws = tf.strings.split(text)
        join = lambda r, sep="|": tf.strings.reduce_join(r, axis=-1, separator=sep)
        cps = tf.strings.unicode_decode(text, "UTF-8", errors="replace")
        chars, starts = tf.strings.unicode_decode_with_offsets(
            text, "UTF-8", errors="ignore", replace_control_characters=True)
        # Scrambled code points: negatives, surrogates and values past 0x10FFFF.
        scrambled = tf.ragged.map_flat_values(lambda v: v * 4099 - 5, cps)
        return {
            "bigrams": join(tf.strings.ngrams(words, 2, separator=" ")),
            "trigrams_padded": join(tf.strings.ngrams(
                ws.with_row_splits_dtype(tf.int32), 3, separator="_",
                pad_values=("<s>", "</s>"), padding_width=1, preserve_short_sequences=True)),
            "uni_tri_full_pad": join(tf.strings.ngrams(
                ws, (1, 3), separator="+", pad_values=("<", ">"))),
            "codepoint_sum": tf.reduce_sum(cps, axis=1),
            "char_count": cps.row_lengths(),
            "ignore_sum": tf.reduce_sum(chars, axis=1),
            "ignore_offsets": join(tf.strings.as_string(starts), ","),
            "chars_spaced": join(tf.strings.unicode_split(text, "UTF-8"), " "),
            "roundtrip": tf.strings.unicode_encode(
                tf.strings.unicode_decode(text, "UTF-8", replacement_char=63), "UTF-8"),
            "scrambled_replace": tf.strings.unicode_encode(scrambled, "UTF-8"),
            "scrambled_ignore_utf32": tf.strings.unicode_encode(
                scrambled, "UTF-32-BE", errors="ignore"),
            "utf16": tf.strings.unicode_transcode(
                text, "UTF-8", "UTF-16-BE", replace_control_characters=True),
        }


def build_string_ngrams():
    out = fresh_dir("string_ngrams")
    module = StringNGramsModule()
    tf.saved_model.save(module, out, signatures={"serving_default": module.serve})
    raw = [t.encode("utf-8") for t in TEXT_INPUTS] + [
        b"x", b"one two three four five six seven"] + INVALID_UTF8_INPUTS
    write_json(os.path.join(out, "inputs.json"), {"text": [bytes_to_json(b) for b in raw]})
    write_json(os.path.join(out, "golden.json"), run_signature(out, {"text": raw}))
    write_signatures_json(out)
    write_variables_json(out)
    return out


# --------------------------------------------------------------------------

BUILDERS = collections.OrderedDict([
    ("control_flow", build_control_flow),
    ("frozen_mlp", build_frozen_mlp),
    ("nnlm_en_dim128", build_nnlm_en_dim128),
    ("nnlm_norm_dim32", build_nnlm_norm_dim32),
    ("fingerprint64", build_fingerprint64),
    ("mlp", build_mlp),
    ("hub_classifier", build_hub_classifier),
    ("cnn", build_cnn),
    ("cnn_keras2", build_cnn_keras2),
    ("attention", build_attention),
    ("mobilenet_v2_small", build_mobilenet_v2_small),
    ("sharded", build_sharded),
    ("text_vectorization", build_text_vectorization),
    ("text_vectorization_bincount", build_text_vectorization_bincount),
    ("string_ngrams", build_string_ngrams),
    ("rnn_text", build_rnn_text),
])


def run_builders(builders, names, banner=None, before_each=None):
    """Builds the fixtures `names` (all of `builders` when empty) after checking every name:
    the `main` of each make_fixtures_*.py script."""
    names = names or list(builders)
    for name in names:
        if name not in builders:
            sys.exit(f"unknown fixture {name!r}; known: {', '.join(builders)}")
    if banner:
        print(banner)
    for name in names:
        print(f"building {name} ...", flush=True)
        if before_each:
            before_each()
        builders[name]()
    print("done")


def main(argv):
    tf.config.experimental.enable_op_determinism()
    os.makedirs(FIXTURES, exist_ok=True)
    run_builders(BUILDERS, argv[1:], f"TensorFlow {tf.__version__}, Python {sys.version.split()[0]}")


if __name__ == "__main__":
    main(sys.argv)

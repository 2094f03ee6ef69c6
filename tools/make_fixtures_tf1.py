"""TF1 fixtures: a TF1 Hub module (ModuleDef format 3, empty tag set) and an Estimator-style
TF1 SavedModel, both built with tf.compat.v1 graphs (ref variables, v1 hash tables,
StringSplit v1, v1 dataflow control flow: Switch/Merge/Enter/Exit/NextIteration/LoopCond,
TensorArrayV3).

Goldens come from the tf.compat.v1.Session that built the graph (after restore-equivalent
initialisation); the TF1 Hub module's golden is also checked against `hub.load` (the TF2 path,
load_v1_in_v2) before it is written.

Run from the repository root: /work/venv/bin/python tools/make_fixtures_tf1.py [NAME...]
"""

import os
import sys
import tempfile

import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixtures as mf  # noqa: E402

v1 = tf.compat.v1

SENTENCES = [
    "the cat sat on the mat",
    "a dog",
    "",
    "unknown zzz words here the",
    "cat cat cat dog",
]
VOCAB = ["the", "cat", "sat", "on", "mat", "a", "dog", "here"]
DIM = 6


def _graph_mode():
    v1.disable_eager_execution()
    v1.disable_control_flow_v2()
    v1.disable_resource_variables()


def _embed_graph(sentences, vocab_const, seed):
    """Shared body: v1 HashTable + StringSplit v1 + ref-variable embedding + v1 loops/conds."""
    table = tf.raw_ops.HashTable(key_dtype=tf.string, value_dtype=tf.int64, name="vocab_table")
    init = tf.raw_ops.InitializeTableFromTextFile(
        table_handle=table, filename=vocab_const, key_index=-2, value_index=-1,
        name="init_vocab")
    v1.add_to_collection(v1.GraphKeys.TABLE_INITIALIZERS, init)
    sp = v1.string_split(sentences, " ")
    ids = tf.raw_ops.LookupTableFind(table_handle=table, keys=sp.values,
                                     default_value=tf.constant(-1, tf.int64))
    size = tf.raw_ops.LookupTableSize(table_handle=table)
    ids = tf.where(ids < 0, tf.fill(tf.shape(ids), size), ids)
    emb = v1.get_variable("embeddings", [len(VOCAB) + 1, DIM],
                          initializer=v1.random_normal_initializer(seed=seed))
    mix = v1.get_variable("mix", [DIM, DIM],
                          initializer=v1.random_normal_initializer(stddev=0.5, seed=seed + 1))
    scale = v1.Variable(0.75, name="scale")
    rows = tf.gather(emb, ids)
    n = tf.shape(sentences, out_type=tf.int64)[0]
    seg = sp.indices[:, 0]
    sums = tf.math.unsorted_segment_sum(rows, seg, n)
    counts = tf.math.unsorted_segment_sum(tf.ones_like(seg, tf.float32), seg, n)
    mean = sums / tf.maximum(counts, 1.0)[:, None]
    steps = tf.cast(tf.reduce_max(counts), tf.int32)

    def body(i, h):
        h2 = tf.tanh(tf.matmul(h, mix)) * scale

        def inner(j, acc):
            return j + 1, acc + 0.01 * tf.cast(j, tf.float32)

        _, h3 = v1.while_loop(lambda j, acc: j < i + 1, inner, [tf.constant(0), h2])
        h4 = v1.cond(tf.equal(i % 2, 0), lambda: h3 + 0.5, lambda: h3 - 0.25)
        return i + 1, h4

    iters, looped = v1.while_loop(lambda i, h: i < steps, body, [tf.constant(0), mean])
    def branch_loop(x, k):
        # A loop inside a cond branch: on the untaken side the whole loop runs dead.
        _, y = v1.while_loop(lambda j, a: j < k, lambda j, a: (j + 1, a * 0.5 + 0.1),
                             [tf.constant(0), x])
        return y

    final = v1.cond(tf.reduce_sum(looped) > 0.0, lambda: branch_loop(looped, 2) * 2.0,
                    lambda: -branch_loop(looped, 3))
    inited = tf.reduce_all(tf.stack([v1.is_variable_initialized(v) for v in (emb, mix, scale)]))
    return {"default": final, "ids": ids, "iterations": iters, "initialized": inited}


def _update_graph():
    """AssignAdd then AssignSub on a ref variable, read through Identity."""
    delta = v1.placeholder(tf.float32, [], name="delta")
    counter = v1.Variable(10.0, name="counter")
    out = tf.identity(v1.assign_sub(v1.assign_add(counter, delta), 0.5))
    return delta, out


def _info(t):
    return v1.saved_model.utils.build_tensor_info(t)


def _json_out(values):
    out = {}
    for k, v in values.items():
        arr = np.asarray(v)
        if arr.dtype == object:
            arr = arr.astype(bytes)
        out[k] = {
            "dtype": tf.as_dtype(arr.dtype).name if arr.dtype.kind != "S" else "string",
            "shape": [int(d) for d in arr.shape],
            "values": mf.flat_values(arr),
        }
    return out


def build_tf1_hub_module():
    """Written as tensorflow_hub's (TF1) ModuleSpec.export did: one MetaGraphDef with the empty
    tag set from export_meta_graph(strip_default_attrs=True) (no saver_def), variables saved
    by a plain Saver keyed by op name, the asset as a `saved_model_assets` AnyList whose tensor
    is a Const holding "SAVEDMODEL-ASSET", and `tfhub_module.pb` = ModuleDef{format: 3}."""
    from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2
    out = mf.fresh_dir("tf1_hub_module")
    g = tf.Graph()
    with g.as_default():
        v1.set_random_seed(mf.SEED)
        tmp = tempfile.mkdtemp()
        vocab_tmp = os.path.join(tmp, "tokens.txt")
        with open(vocab_tmp, "w") as f:
            f.write("\n".join(VOCAB) + "\n")
        sentences = v1.placeholder(tf.string, [None], name="sentences")
        vocab_const = tf.constant(vocab_tmp, name="vocab_file")
        v1.add_to_collection(v1.GraphKeys.ASSET_FILEPATHS, vocab_const)
        outs = _embed_graph(sentences, vocab_const, mf.SEED)
        delta, updated = _update_graph()
        with v1.Session(graph=g) as sess:
            sess.run(v1.global_variables_initializer())
            sess.run(v1.tables_initializer())
            os.makedirs(os.path.join(out, "variables"))
            v1.train.Saver().save(sess, os.path.join(out, "variables", "variables"),
                                  write_meta_graph=False, write_state=False)
            golden = sess.run(outs, {sentences: SENTENCES})
            golden_update = sess.run({"default": updated}, {delta: 2.25})
        mg = v1.train.export_meta_graph(graph=g, strip_default_attrs=True)
    assert not mg.HasField("saver_def")
    sig = v1.saved_model.signature_def_utils.build_signature_def(
        inputs={"default": _info(sentences)},
        outputs={k: _info(v) for k, v in outs.items()})
    mg.signature_def["default"].CopyFrom(sig)
    mg.signature_def["update"].CopyFrom(v1.saved_model.signature_def_utils.build_signature_def(
        inputs={"default": _info(delta)}, outputs={"default": _info(updated)}))
    mg.meta_info_def.ClearField("tags")
    for node in mg.graph_def.node:
        if node.name == "vocab_file":
            node.attr["value"].tensor.string_val[0] = b"SAVEDMODEL-ASSET"
    asset = meta_graph_pb2.AssetFileDef(filename="tokens.txt")
    asset.tensor_info.name = "vocab_file:0"
    mg.collection_def["saved_model_assets"].any_list.value.add().Pack(asset)
    sm = saved_model_pb2.SavedModel(saved_model_schema_version=1)
    sm.meta_graphs.add().CopyFrom(mg)
    with open(os.path.join(out, "saved_model.pb"), "wb") as f:
        f.write(sm.SerializeToString())
    os.makedirs(os.path.join(out, "assets"))
    with open(os.path.join(out, "assets", "tokens.txt"), "w") as f:
        f.write("\n".join(VOCAB) + "\n")
    with open(os.path.join(out, "tfhub_module.pb"), "wb") as f:
        f.write(b"\x08\x03")
    mf.write_json(os.path.join(out, "inputs_default.json"), {"default": SENTENCES})
    mf.write_json(os.path.join(out, "golden_default.json"), _json_out(golden))
    mf.write_json(os.path.join(out, "inputs_update.json"), {"default": 2.25})
    mf.write_json(os.path.join(out, "golden_update.json"), _json_out(golden_update))
    return out


def check_with_hub(model_dir):
    """hub.load (TF2, load_v1_in_v2) must agree with the Session golden."""
    import json

    import tensorflow_hub as hub
    m = hub.load(model_dir)
    got = m.signatures["default"](default=tf.constant(SENTENCES))
    with open(os.path.join(model_dir, "golden_default.json")) as f:
        want = json.load(f)
    for k, w in want.items():
        g = got[k].numpy()
        np.testing.assert_allclose(np.asarray(g, dtype=np.float64).reshape(-1),
                                   np.asarray(w["values"], dtype=np.float64), rtol=1e-6)
    got = m.signatures["update"](default=tf.constant(2.25))["default"].numpy()
    with open(os.path.join(model_dir, "golden_update.json")) as f:
        assert float(got) == json.load(f)["default"]["values"][0], got
    print("hub.load agrees with the Session golden")


def build_tf1_saved_model():
    """Estimator-style: SavedModelBuilder, tag `serve`, a TF1 Saver (save/restore_all with
    RestoreV2 + ref Assign), ref variables, a v1 table, a v1 cond and a v1 while_loop writing
    a TensorArrayV3; `legacy_init_op` = tables_initializer."""
    out = mf.fresh_dir("tf1_saved_model")
    os.rmdir(out)
    g = tf.Graph()
    with g.as_default():
        v1.set_random_seed(mf.SEED)
        tmp = tempfile.mkdtemp()
        vocab_tmp = os.path.join(tmp, "tokens.txt")
        with open(vocab_tmp, "w") as f:
            f.write("\n".join(VOCAB) + "\n")
        sentences = v1.placeholder(tf.string, [None], name="sentences")
        vocab_const = tf.constant(vocab_tmp, name="vocab_file")
        v1.add_to_collection(v1.GraphKeys.ASSET_FILEPATHS, vocab_const)
        outs = _embed_graph(sentences, vocab_const, mf.SEED + 7)
        # TensorArrayV3 in a v1 loop: row i of `default` scaled by (i + 1), then stacked,
        # gathered, concatenated and split back.
        x = outs["default"]
        n = tf.shape(x)[0]
        ta = tf.TensorArray(tf.float32, size=n, element_shape=[DIM], clear_after_read=False)
        src = tf.TensorArray(tf.float32, size=n).unstack(x)

        def tbody(i, acc):
            return i + 1, acc.write(i, src.read(i) * tf.cast(i + 1, tf.float32))

        _, ta = v1.while_loop(lambda i, a: i < n, tbody, [tf.constant(0), ta])
        stacked = ta.stack()
        picked = ta.gather([0, n - 1])
        concat = ta.concat()
        parts = tf.TensorArray(tf.float32, size=2, infer_shape=False).split(
            concat, tf.stack([DIM, n * DIM - DIM]))
        outs["stacked"] = stacked
        outs["picked"] = picked
        outs["tail"] = parts.read(1)
        outs["size"] = ta.size()
        with v1.Session(graph=g) as sess:
            sess.run(v1.global_variables_initializer())
            sess.run(v1.tables_initializer())
            golden = sess.run(outs, {sentences: SENTENCES})
            b = v1.saved_model.Builder(out)
            sig = v1.saved_model.signature_def_utils.build_signature_def(
                inputs={"sentences": _info(sentences)},
                outputs={k: _info(v) for k, v in outs.items()},
                method_name="tensorflow/serving/predict")
            b.add_meta_graph_and_variables(
                sess, ["serve"], signature_def_map={"serving_default": sig},
                assets_collection=v1.get_collection(v1.GraphKeys.ASSET_FILEPATHS),
                main_op=v1.tables_initializer(), strip_default_attrs=True)
            b.save()
    mf.write_json(os.path.join(out, "inputs.json"), {"sentences": SENTENCES})
    mf.write_json(os.path.join(out, "golden.json"), _json_out(golden))
    return out


def write_metadata(model_dir):
    """signatures.json / variables.json / variable_values.json as tools/make_fixtures.py writes
    them, except that `asset_files` lists what TF's loader feeds (loader_impl
    `get_asset_tensors`: `asset_file_def`, else the TF1 `saved_model_assets` collection)."""
    import json

    from tensorflow.core.protobuf import meta_graph_pb2
    from tensorflow.python.saved_model import loader_impl
    mf.write_signatures_json(model_dir)
    mf.write_variables_json(model_dir)
    sm = loader_impl.parse_saved_model(model_dir)
    path = os.path.join(model_dir, "signatures.json")
    with open(path) as f:
        sigs = json.load(f)
    for mg, meta in zip(sm.meta_graphs, sigs["meta_graphs"]):
        names = [a.filename for a in mg.asset_file_def]
        if not names and "saved_model_assets" in mg.collection_def:
            for any_ in mg.collection_def["saved_model_assets"].any_list.value:
                a = meta_graph_pb2.AssetFileDef()
                any_.Unpack(a)
                names.append(a.filename)
        meta["asset_files"] = sorted(set(names))
    mf.write_json(path, sigs)


BUILDERS = {
    "tf1_hub_module": build_tf1_hub_module,
    "tf1_saved_model": build_tf1_saved_model,
}


def main(argv):
    if argv[1:2] == ["--check"]:  # a separate process: eager mode for hub.load
        check_with_hub(argv[2])
        return
    if argv[1:2] == ["--metadata"]:
        for path in argv[2:]:
            write_metadata(path)
        return
    _graph_mode()
    names = argv[1:] or list(BUILDERS)
    for name in names:
        print(f"building {name} ...", flush=True)
        path = BUILDERS[name]()
        write_metadata(path)
        if name == "tf1_hub_module":
            import subprocess
            subprocess.run([sys.executable, __file__, "--check", path], check=True)
    print("done")


if __name__ == "__main__":
    main(sys.argv)

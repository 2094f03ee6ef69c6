#!/usr/bin/env python3
"""Writes the hostile SavedModels of tests/fixtures/hostile/<case>/ (see its README.md).

Usage (from the repository root):

    /work/venv/bin/python tools/make_hostile_models.py [--out DIR] [--target PREFIX] [cases...]

Each case is a small SavedModel that tries one thing a model should never be able to do
through tfhub (write or read files outside the model, run code, exhaust memory or time).
Where TensorFlow can export the case from a real `tf.function`, it does (nothing is run:
saving only traces); malformed cases are crafted as raw protos with TF's protobuf classes.

File targets inside the models start with TARGET (default `/tmp/tfhub-hostile-target`);
tests/hostile.rs rewrites that prefix to a temp dir it owns before loading, and asserts that
nothing appears there. `--target` bakes another prefix (used to observe TF itself on copies
written to a temp dir: never run TF on a model whose target is outside a temp dir).

Cases built at test time instead (they cannot be committed): a FIFO as a data shard or
asset, a symlink escaping the model dir, a 100,000-deep function chain.
"""

import argparse
import os
import shutil
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import tensorflow as tf  # noqa: E402
from tensorflow.core.framework import (  # noqa: E402
    attr_value_pb2,
    function_pb2,
    graph_pb2,
    node_def_pb2,
    tensor_pb2,
    tensor_shape_pb2,
    types_pb2,
)
from tensorflow.core.protobuf import (  # noqa: E402
    meta_graph_pb2,
    saved_model_pb2,
)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(REPO_ROOT, "tests", "fixtures", "hostile")
TARGET = "/tmp/tfhub-hostile-target"

CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def save(module, out, signatures):
    tf.saved_model.save(module, out, signatures=signatures)
    # Keep fixtures tiny: TF2 exports write a fingerprint and sometimes empty dirs.
    fp = os.path.join(out, "fingerprint.pb")
    if os.path.exists(fp):
        os.remove(fp)


def export(out, fn, *specs):
    m = tf.Module()
    m.f = tf.function(fn, input_signature=list(specs))
    save(m, out, {"serving_default": m.f.get_concrete_function()})


# ---- ambient authority: real exports ------------------------------------------------------


@case
def write_file(out, target):
    """tf.io.write_file to TARGET/written.txt, then returns a constant."""

    def f():
        w = tf.io.write_file(target + "/written.txt", "written by a model")
        with tf.control_dependencies([w]):
            return {"y": tf.constant(1.0)}

    export(out, f)


@case
def read_file(out, target):
    """tf.io.read_file('/etc/passwd') returned as the output."""
    export(out, lambda: {"y": tf.io.read_file("/etc/passwd")})


@case
def matching_files(out, target):
    """tf.io.matching_files('/etc/*'): lists a directory outside the model."""
    export(out, lambda: {"y": tf.io.matching_files("/etc/*")})


@case
def print_to_file(out, target):
    """tf.print(..., output_stream='file://TARGET/printed.txt')."""

    def f(x):
        p = tf.print("leak", x, output_stream="file://" + target + "/printed.txt")
        with tf.control_dependencies([p]):
            return {"y": tf.identity(x)}

    export(out, f, tf.TensorSpec([], tf.float32))


@case
def save_v2(out, target):
    """A SaveV2 at inference time writing a checkpoint under TARGET."""

    def f(x):
        s = tf.raw_ops.SaveV2(
            prefix=target + "/ckpt",
            tensor_names=["x"],
            shape_and_slices=[""],
            tensors=[x],
        )
        with tf.control_dependencies([s]):
            return {"y": tf.identity(x)}

    export(out, f, tf.TensorSpec([], tf.float32))


@case
def restore_outside(out, target):
    """RestoreV2 (an allowed op) with a prefix outside the model: TARGET/ckpt."""

    def f():
        (v,) = tf.raw_ops.RestoreV2(
            prefix=target + "/ckpt",
            tensor_names=["x"],
            shape_and_slices=[""],
            dtypes=[tf.float32],
        )
        return {"y": v}

    export(out, f)


@case
def immutable_const(out, target):
    """ImmutableConst memory-mapping /etc/passwd as a uint8 tensor."""

    def f():
        t = tf.raw_ops.ImmutableConst(
            dtype=tf.uint8, shape=[16], memory_region_name="/etc/passwd"
        )
        return {"y": t}

    export(out, f)


@case
def many_refused(out, target):
    """WriteFile + ReadFile + MatchingFiles + SaveV2 in one signature: all listed at once."""

    def f():
        w = tf.io.write_file(target + "/many.txt", "x")
        s = tf.raw_ops.SaveV2(
            prefix=target + "/many_ckpt",
            tensor_names=["x"],
            shape_and_slices=[""],
            tensors=[tf.constant(1.0)],
        )
        with tf.control_dependencies([w, s]):
            return {
                "a": tf.io.read_file("/etc/hostname"),
                "b": tf.io.matching_files("/*"),
            }

    export(out, f)


@case
def vocab_outside(out, target):
    """InitializeTableFromTextFileV2 whose asset filename is edited to an absolute path
    (/etc/passwd) and, in a second signature-free variant dir, to ../../../etc/passwd."""
    tmp = tempfile.mkdtemp()
    vocab = os.path.join(tmp, "vocab.txt")
    with open(vocab, "w") as f:
        f.write("a\nb\n")
    m = tf.Module()
    m.table = tf.lookup.StaticHashTable(
        tf.lookup.TextFileInitializer(
            vocab,
            tf.string,
            tf.lookup.TextFileIndex.WHOLE_LINE,
            tf.int64,
            tf.lookup.TextFileIndex.LINE_NUMBER,
        ),
        -1,
    )

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def lookup(x):
        return {"ids": m.table.lookup(x)}

    m.lookup = lookup
    save(m, out, {"serving_default": lookup.get_concrete_function()})
    shutil.rmtree(tmp)
    # Point the asset outside the model and drop the copied vocabulary.
    path = os.path.join(out, "saved_model.pb")
    sm = saved_model_pb2.SavedModel()
    with open(path, "rb") as f:
        sm.ParseFromString(f.read())
    (asset,) = sm.meta_graphs[0].asset_file_def
    asset.filename = "/etc/passwd"
    for a in sm.meta_graphs[0].object_graph_def.nodes:
        if a.HasField("asset"):
            pass  # the object graph keeps its index into asset_file_def
    with open(path, "wb") as f:
        f.write(sm.SerializeToString())
    shutil.rmtree(os.path.join(out, "assets"))
    # The `..` variant: same model, filename ../../../../../../etc/passwd.
    dotdot = out.rstrip("/") + "_dotdot"
    if os.path.exists(dotdot):
        shutil.rmtree(dotdot)
    shutil.copytree(out, dotdot)
    asset.filename = "../../../../../../../../etc/passwd"
    with open(os.path.join(dotdot, "saved_model.pb"), "wb") as f:
        f.write(sm.SerializeToString())


@case
def endless_while(out, target):
    """A While loop whose condition is always true."""

    def f(x):
        (i,) = tf.while_loop(lambda i: tf.constant(True), lambda i: i + 1, [x])
        return {"y": i}

    export(out, f, tf.TensorSpec([], tf.int64))


@case
def huge_alloc(out, target):
    """One signature per op asked to allocate a hostile size (2^40 elements and the like)."""
    big = 2**40
    fns = {
        "range": lambda: tf.range(tf.constant(big, tf.int64)),
        "fill": lambda: tf.fill(tf.constant([big], tf.int64), 1.0),
        "tile": lambda: tf.tile(tf.ones([1024]), tf.constant([big], tf.int64)),
        "broadcast_to": lambda: tf.broadcast_to(
            tf.constant(1.0), tf.constant([big, 16], tf.int64)
        ),
        "pad": lambda: tf.pad(tf.ones([2]), tf.constant([[0, big]], tf.int64)),
        "one_hot": lambda: tf.one_hot(tf.range(1024), 2**31 - 1),
        "concat": lambda: tf.concat(
            [tf.fill(tf.constant([2**33], tf.int64), 1.0)] * 2, 0
        ),
        # 2^26 copies of a 1 KiB string: 64 GiB of payload behind a 2 GiB element count.
        "string_fill": lambda: tf.fill(tf.constant([2**26], tf.int64), "x" * 1024),
        "sparse_to_dense": lambda: tf.sparse.to_dense(
            tf.SparseTensor([[0, 0]], [1.0], tf.constant([2**31, 2**31], tf.int64))
        ),
    }

    def wrap(fn):
        return tf.function(lambda: {"y": fn()}, input_signature=[])

    m = tf.Module()
    sigs = {}
    for name, fn in fns.items():
        tf_fn = wrap(fn)
        setattr(m, name, tf_fn)
        sigs[name] = tf_fn.get_concrete_function()
    # Dims fed at call time ([2^62, 2^62] overflows any element count).
    m.overflow_shape = tf.function(
        lambda dims: {"y": tf.fill(dims, tf.constant(1, tf.int8))},
        input_signature=[tf.TensorSpec([2], tf.int64)],
    )
    sigs["overflow_shape"] = m.overflow_shape.get_concrete_function()
    sigs["serving_default"] = sigs["range"]
    save(m, out, sigs)


@case
def live_bytes(out, target):
    """Eight live tensors of n floats each, then summed: small per tensor, large together."""

    def f(n):
        parts = [tf.fill([n], float(i)) for i in range(8)]
        return {"y": tf.add_n([tf.reduce_sum(p) for p in parts]) + tf.add_n(parts)[0]}

    export(out, f, tf.TensorSpec([], tf.int32))


# ---- crafted protos ---------------------------------------------------------------------


def attr(**kw):
    return attr_value_pb2.AttrValue(**kw)


def tensor_info(name, dtype):
    return meta_graph_pb2.TensorInfo(
        name=name,
        dtype=dtype,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(unknown_rank=True),
    )


def write_graph_model(out, nodes, outputs, functions=(), inputs=()):
    """A SavedModel with one 'serve' meta graph, a serving_default signature."""
    g = graph_pb2.GraphDef()
    g.node.extend(nodes)
    g.library.function.extend(functions)
    g.versions.producer = 1882
    mg = meta_graph_pb2.MetaGraphDef()
    mg.meta_info_def.tags.append("serve")
    mg.graph_def.CopyFrom(g)
    sig = mg.signature_def["serving_default"]
    sig.method_name = "tensorflow/serving/predict"
    for key, name, dt in inputs:
        sig.inputs[key].CopyFrom(tensor_info(name, dt))
    for key, name, dt in outputs:
        sig.outputs[key].CopyFrom(tensor_info(name, dt))
    sm = saved_model_pb2.SavedModel(saved_model_schema_version=1)
    sm.meta_graphs.append(mg)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "saved_model.pb"), "wb") as f:
        f.write(sm.SerializeToString())


def const_node(name, tensor):
    return node_def_pb2.NodeDef(
        name=name,
        op="Const",
        attr={"dtype": attr(type=tensor.dtype), "value": attr(tensor=tensor)},
    )


def shape(*dims):
    return tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims]
    )


@case
def splat_const(out, target):
    """A Const claiming 2^40 float elements stored as one splatted value (8 bytes on disk)."""
    t = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT, tensor_shape=shape(2**40), float_val=[1.0]
    )
    write_graph_model(
        out, [const_node("c", t)], [("y", "c:0", types_pb2.DT_FLOAT)]
    )


@case
def const_short_content(out, target):
    """A Const whose tensor_content has 8 bytes for a claimed shape of 1,000,000 floats."""
    t = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT,
        tensor_shape=shape(1000000),
        tensor_content=b"\x00" * 8,
    )
    write_graph_model(
        out, [const_node("c", t)], [("y", "c:0", types_pb2.DT_FLOAT)]
    )


@case
def const_overflow(out, target):
    """A Const whose element count overflows int64 (2^62 x 2^62), 4 content bytes."""
    t = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT,
        tensor_shape=shape(2**62, 2**62),
        tensor_content=b"\x00" * 4,
    )
    write_graph_model(
        out, [const_node("c", t)], [("y", "c:0", types_pb2.DT_FLOAT)]
    )


@case
def const_bytes_overflow(out, target):
    """A Const of 2^62 floats (the element count fits int64, the byte count does not)."""
    t = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT,
        tensor_shape=shape(2**62),
        tensor_content=b"\x00" * 4,
    )
    write_graph_model(
        out, [const_node("c", t)], [("y", "c:0", types_pb2.DT_FLOAT)]
    )


def call_fn(name, fn, inputs, tout=types_pb2.DT_FLOAT):
    return node_def_pb2.NodeDef(
        name=name,
        op="StatefulPartitionedCall",
        input=inputs,
        attr={
            "f": attr(func=attr_value_pb2.NameAttrList(name=fn)),
            "Tin": attr(list=attr_value_pb2.AttrValue.ListValue(type=[types_pb2.DT_FLOAT])),
            "Tout": attr(list=attr_value_pb2.AttrValue.ListValue(type=[tout])),
        },
    )


def function(name, callee):
    """float -> float function whose body calls `callee` on its argument."""
    f = function_pb2.FunctionDef()
    f.signature.name = name
    f.signature.input_arg.add(name="x", type=types_pb2.DT_FLOAT)
    f.signature.output_arg.add(name="y", type=types_pb2.DT_FLOAT)
    f.signature.is_stateful = True
    f.node_def.append(call_fn("call", callee, ["x"]))
    f.ret["y"] = "call:output:0"
    return f


def placeholder(name, dtype):
    return node_def_pb2.NodeDef(
        name=name, op="Placeholder", attr={"dtype": attr(type=dtype)}
    )


@case
def recursive_function(out, target):
    """Function f calls itself, unconditionally."""
    write_graph_model(
        out,
        [placeholder("x", types_pb2.DT_FLOAT), call_fn("c", "f", ["x"])],
        [("y", "c:0", types_pb2.DT_FLOAT)],
        functions=[function("f", "f")],
        inputs=[("x", "x:0", types_pb2.DT_FLOAT)],
    )


@case
def mutual_recursion(out, target):
    """Functions f and g call each other."""
    write_graph_model(
        out,
        [placeholder("x", types_pb2.DT_FLOAT), call_fn("c", "f", ["x"])],
        [("y", "c:0", types_pb2.DT_FLOAT)],
        functions=[function("f", "g"), function("g", "f")],
        inputs=[("x", "x:0", types_pb2.DT_FLOAT)],
    )


@case
def py_func(out, target):
    """EagerPyFunc and PyFunc nodes (a tf.py_function cannot be exported with its body)."""
    nodes = [placeholder("x", types_pb2.DT_FLOAT)]
    for op in ("EagerPyFunc", "PyFunc"):
        nodes.append(
            node_def_pb2.NodeDef(
                name=op.lower(),
                op=op,
                input=["x"],
                attr={
                    "token": attr(s=b"pyfunc_0"),
                    "Tin": attr(
                        list=attr_value_pb2.AttrValue.ListValue(type=[types_pb2.DT_FLOAT])
                    ),
                    "Tout": attr(
                        list=attr_value_pb2.AttrValue.ListValue(type=[types_pb2.DT_FLOAT])
                    ),
                },
            )
        )
    nodes.append(
        node_def_pb2.NodeDef(
            name="sum",
            op="AddV2",
            input=["eagerpyfunc", "pyfunc"],
            attr={"T": attr(type=types_pb2.DT_FLOAT)},
        )
    )
    write_graph_model(
        out,
        nodes,
        [("y", "sum:0", types_pb2.DT_FLOAT)],
        inputs=[("x", "x:0", types_pb2.DT_FLOAT)],
    )


@case
def debug_identity(out, target):
    """DebugIdentityV2 dumping its input under TARGET (tfdbg's file:// dump root)."""
    nodes = [
        placeholder("x", types_pb2.DT_FLOAT),
        node_def_pb2.NodeDef(
            name="dbg",
            op="DebugIdentityV2",
            input=["x"],
            attr={
                "T": attr(type=types_pb2.DT_FLOAT),
                "debug_urls": attr(
                    list=attr_value_pb2.AttrValue.ListValue(
                        s=[("file://" + target + "/tfdbg").encode()]
                    )
                ),
            },
        ),
    ]
    write_graph_model(
        out,
        nodes,
        [("y", "dbg:0", types_pb2.DT_FLOAT)],
        inputs=[("x", "x:0", types_pb2.DT_FLOAT)],
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--target", default=TARGET)
    ap.add_argument("cases", nargs="*")
    args = ap.parse_args()
    names = args.cases or list(CASES)
    for name in names:
        out = os.path.join(args.out, name)
        if os.path.exists(out):
            shutil.rmtree(out)
        CASES[name](out, args.target)
        print("wrote", out, file=sys.stderr)


if __name__ == "__main__":
    main()

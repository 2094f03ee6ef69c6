#!/usr/bin/env python3
"""Writes src/ops/op_defaults.pb: the parts of TensorFlow's global op registry that tfhub needs
when a model's `meta_info_def.stripped_op_list` lacks an op (issue 14).

TF saves with strip_default_attrs, dropping every attr whose value equals the OpDef default, and
`tf.saved_model.save(..., signatures={})` lists no OpDefs for ops used only inside functions.
TF refills those attrs from its own registry at import; so do we, from this table. Function
bodies also name outputs `node:out_arg:idx`, which needs the op's output args to find the flat
index.

The file is a serialized `tensorflow.OpList`, slimmed to what the compiler reads: for every op
registered by TF 2.21 plus tensorflow_text 2.21.1 (importing tensorflow_text registers its ops,
SentencePiece included) that has a default-valued attr or more than one output arg: its name,
its attrs that have a default (name and default_value only) and each output arg's name,
number_attr and type_list_attr. Every op TF knows is included, not only
the ones tfhub implements today, so new op families need no regeneration.

Usage: /work/venv/bin/python tools/make_op_defaults.py
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import make_fixtures  # noqa: E402,F401  (sets TF env vars before importing TF)
import tensorflow as tf  # noqa: E402
import tensorflow_text  # noqa: E402,F401  (registers the tensorflow_text ops)
from tensorflow.core.framework import op_def_pb2  # noqa: E402
from tensorflow.python.client import pywrap_tf_session as c_api  # noqa: E402
from tensorflow.python.framework import op_def_registry  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src", "ops", "op_defaults.pb")


def registered_op_names():
    """Every op in TF's global registry (the C API's TF_GetAllOpList)."""
    buf = c_api.TF_GetAllOpList()
    try:
        data = c_api.TF_GetBuffer(buf)
    finally:
        c_api.TF_DeleteBuffer(buf)
    ops = op_def_pb2.OpList()
    ops.ParseFromString(data)
    return sorted(op.name for op in ops.op)


def main():
    out = op_def_pb2.OpList()
    for name in registered_op_names():
        op = op_def_registry.get(name)
        defaults = [a for a in op.attr if a.HasField("default_value")]
        if not defaults and len(op.output_arg) < 2:
            continue
        slim = out.op.add()
        slim.name = op.name
        # Every output arg of an included op: the compiler resolves `node:out_arg:idx`
        # against these whenever an OpDef is present.
        for a in op.output_arg:
            s = slim.output_arg.add()
            s.name = a.name
            s.number_attr = a.number_attr
            s.type_list_attr = a.type_list_attr
        for a in defaults:
            s = slim.attr.add()
            s.name = a.name
            s.default_value.CopyFrom(a.default_value)
    data = out.SerializeToString(deterministic=True)
    with open(OUT, "wb") as f:
        f.write(data)
    print(f"{OUT}: {len(out.op)} ops, {len(data)} bytes (TF {tf.__version__})")


if __name__ == "__main__":
    main()

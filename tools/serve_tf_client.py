#!/usr/bin/env python3
"""Drives `tfhub serve` with TensorFlow Serving's own Python client (PyPI
`tensorflow-serving-api`, gRPC) and with plain REST, and checks the answers against the
fixture goldens (the outputs real TensorFlow computed).

    pip install --no-deps tensorflow-serving-api==2.21.0   # into /work/venv; TF pins unchanged
    cargo build --release
    /work/venv/bin/python tools/serve_tf_client.py [--binary target/release/tfhub]

Starts the server on free loopback ports with tests/fixtures/nnlm_en_dim128 as version 1,
then: gRPC Predict (tf.make_tensor_proto in, tf.make_ndarray out; also 32 calls in flight on
one channel), GetModelMetadata,
GetModelStatus, REST :predict (row and columnar), and stops the server with SIGTERM.
Exits non-zero on any mismatch.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2, model_service_pb2_grpc,
                                     predict_pb2, prediction_service_pb2_grpc)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(ROOT, "tests", "fixtures", "nnlm_en_dim128")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "tfhub"))
    a = ap.parse_args()
    base = tempfile.mkdtemp()
    shutil.copytree(FIXTURE, os.path.join(base, "1"))
    gport, rport = free_port(), free_port()
    proc = subprocess.Popen([a.binary, "serve", f"--port={gport}", f"--rest_api_port={rport}",
                             "--model_name=nnlm", f"--model_base_path={base}", "--bind_address=127.0.0.1"])
    try:
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{rport}/v2/health/ready", timeout=1)
                break
            except Exception:
                if time.time() > deadline or proc.poll() is not None:
                    sys.exit("server did not start")
                time.sleep(0.1)
        sentences = json.load(open(os.path.join(FIXTURE, "inputs.json")))["sentences"]
        golden = json.load(open(os.path.join(FIXTURE, "golden.json")))["default"]
        want = np.array(golden["values"], dtype=np.float32).reshape(golden["shape"])

        channel = grpc.insecure_channel(f"127.0.0.1:{gport}")
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        req = predict_pb2.PredictRequest()
        req.model_spec.name = "nnlm"
        req.model_spec.signature_name = "serving_default"
        req.inputs["sentences"].CopyFrom(tf.make_tensor_proto(sentences, dtype=tf.string))
        resp = stub.Predict(req, timeout=30)
        got = tf.make_ndarray(resp.outputs["default"])
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        assert resp.model_spec.version.value == 1, resp.model_spec
        print("gRPC Predict: OK", got.shape)

        # Many calls in flight on one channel (one HTTP/2 connection, multiplexed streams).
        futures = [stub.Predict.future(req, timeout=60) for _ in range(32)]
        for f in futures:
            np.testing.assert_allclose(tf.make_ndarray(f.result().outputs["default"]), want, rtol=1e-5, atol=1e-6)
        print("gRPC 32 concurrent Predicts on one channel: OK")

        md = get_model_metadata_pb2.GetModelMetadataRequest()
        md.model_spec.name = "nnlm"
        md.metadata_field.append("signature_def")
        mresp = stub.GetModelMetadata(md, timeout=10)
        sdm = get_model_metadata_pb2.SignatureDefMap()
        mresp.metadata["signature_def"].Unpack(sdm)
        assert sdm.signature_def["serving_default"].inputs["sentences"].dtype == tf.string.as_datatype_enum
        print("gRPC GetModelMetadata: OK", sorted(sdm.signature_def.keys()))

        ms = model_service_pb2_grpc.ModelServiceStub(channel)
        st = get_model_status_pb2.GetModelStatusRequest()
        st.model_spec.name = "nnlm"
        sresp = ms.GetModelStatus(st, timeout=10)
        assert sresp.model_version_status[0].state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
        print("gRPC GetModelStatus: OK")

        try:
            bad = predict_pb2.PredictRequest()
            bad.CopyFrom(req)
            bad.model_spec.name = "nope"
            stub.Predict(bad, timeout=10)
            sys.exit("expected NOT_FOUND")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.NOT_FOUND, e
            print("gRPC NOT_FOUND: OK", e.details())

        for body, key in [({"instances": sentences}, "predictions"),
                          ({"inputs": {"sentences": sentences}}, "outputs")]:
            r = urllib.request.Request(f"http://127.0.0.1:{rport}/v1/models/nnlm:predict",
                                       data=json.dumps(body).encode(), method="POST")
            out = json.load(urllib.request.urlopen(r, timeout=30))
            np.testing.assert_allclose(np.array(out[key], dtype=np.float32), want, rtol=1e-5, atol=1e-6)
            print(f"REST {key}: OK")
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        shutil.rmtree(base, ignore_errors=True)
    print("server exit code", code)
    sys.exit(0 if code == 0 else 1)


if __name__ == "__main__":
    main()

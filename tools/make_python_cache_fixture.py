#!/usr/bin/env python3
"""Writes tests/fixtures/python_cache/: a tensorflow_hub cache filled by Python itself.

Usage (from the repository root, with a venv holding tensorflow-hub, e.g. /work/venv):

    /work/venv/bin/python tools/make_python_cache_fixture.py

tensorflow_hub's compressed resolver only takes http(s) URLs, so a tiny tarball (a fake
saved_model.pb and variables/ files; the hub layer never parses them) is served from
http.server on 127.0.0.1 (an ephemeral port, loopback only) and fetched with
`hub.resolve(url)` with TFHUB_CACHE_DIR pointing at a fresh directory. The output is:

    tests/fixtures/python_cache/handle.txt    the handle given to hub.resolve
    tests/fixtures/python_cache/cache/        TFHUB_CACHE_DIR as Python left it
                                              (<sha1>/ and <sha1>.descriptor.txt)
    tests/fixtures/python_cache/README.md     versions used

The reverse direction (Python reading a cache Rust wrote) is checked by hand with

    /work/venv/bin/python tools/make_python_cache_fixture.py --check CACHE_DIR HANDLE

which calls hub.resolve(HANDLE) with no server running: it succeeds only from the cache.
"""

import hashlib
import http.server
import io
import os
import shutil
import sys
import tarfile
import tempfile
import threading

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
    os.environ.pop(var, None)
os.environ["no_proxy"] = "127.0.0.1,localhost"

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "python_cache")
MODEL_PATH = "/google/tiny-fixture/1"


def tiny_tarball():
    files = {
        "saved_model.pb": b"\x08\x01fake saved model written for the python cache fixture",
        "variables/variables.index": b"fake index",
        "variables/variables.data-00000-of-00001": bytes(range(256)) * 4,
    }
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        # tensorflow_hub creates no parent directories: the archive must list them.
        info = tarfile.TarInfo("variables")
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def serve(body):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == MODEL_PATH + "?tf-hub-format=compressed":
                self.send_response(200)
                self.send_header("Content-Type", "application/x-tar")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            else:
                self.send_error(404)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def make():
    import tensorflow as tf
    import tensorflow_hub as hub

    server = serve(tiny_tarball())
    handle = "http://127.0.0.1:%d%s" % (server.server_address[1], MODEL_PATH)
    with tempfile.TemporaryDirectory() as tmp:
        cache = os.path.join(tmp, "cache")
        os.environ["TFHUB_CACHE_DIR"] = cache
        path = hub.resolve(handle)
        server.shutdown()
        key = hashlib.sha1(handle.encode("utf8")).hexdigest()
        assert os.path.basename(path) == key, (path, key)
        if os.path.exists(OUT):
            shutil.rmtree(OUT)
        os.makedirs(OUT)
        shutil.copytree(cache, os.path.join(OUT, "cache"))
    with open(os.path.join(OUT, "handle.txt"), "w") as f:
        f.write(handle + "\n")
    with open(os.path.join(OUT, "README.md"), "w") as f:
        f.write(
            "# python_cache\n\n"
            "A TFHUB_CACHE_DIR filled by Python's tensorflow_hub %s (TensorFlow %s) resolving\n"
            "the handle in `handle.txt` from a loopback server. Regenerate with\n"
            "`/work/venv/bin/python tools/make_python_cache_fixture.py`.\n"
            "Used by `tests/hub.rs::python_cache_fixture_resolves_offline`.\n"
            % (hub.__version__, tf.__version__)
        )
    print("wrote", OUT, "for", handle)


def check(cache, handle):
    os.environ["TFHUB_CACHE_DIR"] = cache
    import tensorflow_hub as hub

    path = hub.resolve(handle)
    assert os.path.exists(os.path.join(path, "saved_model.pb")), path
    print("python resolved from the cache:", path)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--check":
        check(sys.argv[2], sys.argv[3])
    else:
        make()

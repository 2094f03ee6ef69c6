//! `tfhub serve` end to end on 127.0.0.1 with ephemeral ports: REST (row, columnar, b64,
//! errors) against the fixture goldens, gRPC through an independent HTTP/2 client (h2) with
//! the TF Serving protos, KServe v2, version hot-swap under load, queue-full, body cap and
//! draining shutdown. Every wait is bounded. Opt-in (`--ignored`): TF Serving's own Python
//! gRPC client (`tensorflow-serving-api`, grpcio) against the built binary.
#![cfg(feature = "serve")]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message;
use serde_json::{json, Value};
use tfhub::serve::config::{BatchingParams, ModelConfig};
use tfhub::serve::{ServeOptions, Server};

use common::{copy_dir, fixture, read_json};

const MODEL: &str = "nnlm";

/// A base path with `fixture` as version 1, in a fresh temp dir.
fn base_with(fixture_name: &str, version: i64) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    copy_dir(&fixture(fixture_name), &d.path().join(version.to_string()));
    d
}

fn opts(base: &Path) -> ServeOptions {
    ServeOptions {
        grpc_port: Some(0),
        rest_port: Some(0),
        bind: [127, 0, 0, 1].into(),
        models: vec![ModelConfig::single(MODEL, base.to_str().unwrap())],
        poll_wait: None,
        timeout: Some(Duration::from_secs(20)),
        ..ServeOptions::default()
    }
}

/// (status, body) of one HTTP/1.1 request (Connection: close).
fn http(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    // The server may answer (and close) before reading a rejected body.
    let _ = s.write_all(body);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// (status, lower-case headers, raw body) of one POST with extra header lines.
fn post_raw(
    addr: SocketAddr,
    path: &str,
    headers: &str,
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\n{headers}Content-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let _ = s.write_all(body);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let end = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8_lossy(&out[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let hs = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, hs, out[end + 4..].to_vec())
}

fn post(addr: SocketAddr, path: &str, v: &Value) -> (u16, Value) {
    let (c, b) = http(addr, "POST", path, v.to_string().as_bytes());
    (
        c,
        serde_json::from_str(&b).unwrap_or_else(|e| panic!("{e}: {b}")),
    )
}

fn sentences() -> Vec<String> {
    read_json(&fixture("nnlm_en_dim128").join("inputs.json"))["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn flat(v: &Value, out: &mut Vec<f64>) {
    match v {
        Value::Array(a) => a.iter().for_each(|x| flat(x, out)),
        Value::Object(m) => m.values().for_each(|x| flat(x, out)),
        x => out.push(x.as_f64().unwrap()),
    }
}

/// Compares a nested JSON reply with a golden `{"shape", "values"}` (f32 tolerance).
fn assert_golden(got: &Value, golden: &Value) {
    let mut g = Vec::new();
    flat(got, &mut g);
    let want: Vec<f64> = golden["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(g.len(), want.len());
    for (i, (a, b)) in g.iter().zip(&want).enumerate() {
        assert!(
            (a - b).abs() <= 1e-6 + 1e-5 * b.abs(),
            "element {i}: {a} vs {b}"
        );
    }
}

#[test]
fn rest_predict_matches_golden_in_every_format() {
    let base = base_with("nnlm_en_dim128", 1);
    let srv = Server::start(opts(base.path())).unwrap();
    let a = srv.rest_addr().unwrap();
    let golden = read_json(&fixture("nnlm_en_dim128").join("golden.json"));
    let s = sentences();
    let url = format!("/v1/models/{MODEL}:predict");

    // Row format: one output, so each prediction is that output's row.
    let (c, v) = post(a, &url, &json!({"instances": s}));
    assert_eq!(c, 200, "{v}");
    assert_eq!(v["predictions"].as_array().unwrap().len(), s.len());
    assert_golden(&v["predictions"], &golden["default"]);

    // Columnar format, named input, explicit version.
    let (c, v) = post(
        a,
        &format!("/v1/models/{MODEL}/versions/1:predict"),
        &json!({"inputs": {"sentences": s}}),
    );
    assert_eq!(c, 200, "{v}");
    assert_golden(&v["outputs"], &golden["default"]);

    // Row objects with b64 strings.
    use base64::Engine;
    let b64: Vec<Value> = s
        .iter()
        .map(|x| json!({"sentences": {"b64": base64::engine::general_purpose::STANDARD.encode(x)}}))
        .collect();
    let (c, v) = post(a, &url, &json!({"instances": b64}));
    assert_eq!(c, 200, "{v}");
    assert_golden(&v["predictions"], &golden["default"]);

    // Another signature with two outputs: columnar object keyed by alias; ints exact.
    let gt = read_json(&fixture("nnlm_en_dim128").join("golden_tokens.json"));
    let (c, v) = post(a, &url, &json!({"signature_name": "tokens", "inputs": s}));
    assert_eq!(c, 200, "{v}");
    assert_eq!(v["outputs"]["ids"], gt["ids"]["values"]);
    let mut idx = Vec::new();
    flat(&v["outputs"]["indices"], &mut idx);
    let want: Vec<f64> = gt["indices"]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(idx, want);
    srv.shutdown();
}

/// A float image model: dense numeric bodies (row, plain columnar) are decoded by the
/// streaming decoder, a named columnar object by the general one; all match TF's golden.
#[test]
fn rest_dense_float_input_matches_golden() {
    let fx = "mobilenet_v2_small";
    let base = base_with(fx, 1);
    let srv = Server::start(opts(base.path())).unwrap();
    let a = srv.rest_addr().unwrap();
    let inputs = read_json(&fixture(fx).join("inputs.json"))["keras_tensor"].clone();
    let golden = read_json(&fixture(fx).join("golden.json"));
    let url = format!("/v1/models/{MODEL}:predict");
    for (body, key) in [
        (json!({"instances": inputs}), "predictions"),
        (json!({"inputs": inputs}), "outputs"),
        (json!({"inputs": {"keras_tensor": inputs}}), "outputs"),
    ] {
        let (c, v) = post(a, &url, &body);
        assert_eq!(c, 200, "{v}");
        assert_golden(&v[key], &golden["output_0"]);
    }
    // A ragged body leaves the fast path and gets TF's error.
    let (c, v) = post(a, &url, &json!({"instances": [[1.0, 2.0], [3.0]]}));
    assert_eq!(c, 400, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("Failed to process element: 1"),
        "{v}"
    );
    srv.shutdown();
}

#[test]
fn rest_status_metadata_and_errors() {
    let base = base_with("nnlm_en_dim128", 3);
    let mut o = opts(base.path());
    o.max_body_bytes = 4096;
    let srv = Server::start(o).unwrap();
    let a = srv.rest_addr().unwrap();

    let (c, b) = http(a, "GET", &format!("/v1/models/{MODEL}"), b"");
    assert_eq!(c, 200);
    let v: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(
        v,
        json!({"model_version_status": [{"version": "3", "state": "AVAILABLE",
               "status": {"error_code": "OK", "error_message": ""}}]})
    );
    let (c, b) = http(
        a,
        "GET",
        &format!("/v1/models/{MODEL}/versions/3/metadata"),
        b"",
    );
    assert_eq!(c, 200);
    let v: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(
        v["model_spec"],
        json!({"name": MODEL, "signature_name": "", "version": "3"})
    );
    let sd = &v["metadata"]["signature_def"]["signature_def"]["serving_default"];
    assert_eq!(sd["method_name"], "tensorflow/serving/predict");
    assert_eq!(
        sd["inputs"]["sentences"],
        json!({"dtype": "DT_STRING", "name": "serving_default_sentences:0",
               "tensor_shape": {"dim": [{"size": "-1", "name": ""}], "unknown_rank": false}})
    );
    assert_eq!(sd["outputs"]["default"]["dtype"], "DT_FLOAT");

    let url = format!("/v1/models/{MODEL}:predict");
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "unknown model",
            "/v1/models/nope:predict".into(),
            404,
            "Servable not found for request: Latest(nope)",
        ),
        (
            "unknown version",
            format!("/v1/models/{MODEL}/versions/9:predict"),
            404,
            "Specific(nnlm, 9)",
        ),
        (
            "unknown label",
            format!("/v1/models/{MODEL}/labels/x:predict"),
            400,
            "Unrecognized servable version label: x",
        ),
        (
            "classify",
            format!("/v1/models/{MODEL}:classify"),
            501,
            ":classify",
        ),
        (
            "malformed",
            format!("/v1/models/{MODEL}/version/1:predict"),
            400,
            "Malformed request",
        ),
        (
            "upper-case verb",
            format!("/v1/models/{MODEL}:PREDICT"),
            400,
            "Malformed request",
        ),
    ];
    for (what, path, code, msg) in cases {
        let (c, v) = post(a, &path, &json!({"instances": ["a"]}));
        assert_eq!(c, code, "{what}: {v}");
        assert!(v["error"].as_str().unwrap().contains(msg), "{what}: {v}");
    }
    let bodies: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("empty", b"".to_vec(), 400, "The document is empty"),
        (
            "bad json",
            b"{\"instances\": [".to_vec(),
            400,
            "JSON Parse error",
        ),
        (
            "neither key",
            b"{\"x\": 1}".to_vec(),
            400,
            "Missing 'inputs' or 'instances' key",
        ),
        (
            "both keys",
            b"{\"inputs\": [\"a\"], \"instances\": [\"a\"]}".to_vec(),
            400,
            "only one of",
        ),
        (
            "empty instances",
            b"{\"instances\": []}".to_vec(),
            400,
            "No values in 'instances' array",
        ),
        (
            "wrong type",
            b"{\"instances\": [1, 2]}".to_vec(),
            400,
            "not of expected type: string",
        ),
        (
            "ragged",
            b"{\"instances\": [[\"a\"], \"b\"]}".to_vec(),
            400,
            "Failed to process element: 1",
        ),
        (
            "bad signature",
            b"{\"signature_name\": \"nope\", \"instances\": [\"a\"]}".to_vec(),
            400,
            "Serving signature name: \"nope\" not found",
        ),
        (
            "bad b64",
            b"{\"instances\": [{\"b64\": \"!!\"}]}".to_vec(),
            400,
            "Unable to base64 decode",
        ),
        (
            "over the cap",
            format!("{{\"instances\": [\"{}\"]}}", "a".repeat(5000)).into_bytes(),
            413,
            "exceeds the cap",
        ),
    ];
    for (what, body, code, msg) in bodies {
        let (c, b) = http(a, "POST", &url, &body);
        assert_eq!(c, code, "{what}: {b}");
        let v: Value = serde_json::from_str(&b).unwrap_or_else(|e| panic!("{what}: {e}: {b}"));
        assert!(v["error"].as_str().unwrap().contains(msg), "{what}: {v}");
    }
    // The server is still healthy after every bad request.
    let (c, _) = post(a, &url, &json!({"instances": ["still alive"]}));
    assert_eq!(c, 200);
    let (c, page) = http(a, "GET", "/monitoring/prometheus/metrics", b"");
    assert_eq!(c, 200);
    assert!(
        page.contains(":tensorflow:serving:request_count{model_name=\"nnlm\",status=\"OK\"}"),
        "{page}"
    );
    assert!(
        page.contains(
            ":tensorflow:serving:request_count{model_name=\"nnlm\",status=\"NOT_FOUND\"} 1"
        ),
        "{page}"
    );
    srv.shutdown();
}

#[test]
fn kserve_v2_health_metadata_infer() {
    let base = base_with("nnlm_en_dim128", 1);
    let srv = Server::start(opts(base.path())).unwrap();
    let a = srv.rest_addr().unwrap();
    assert_eq!(http(a, "GET", "/v2/health/live", b"").0, 200);
    assert_eq!(http(a, "GET", "/v2/health/ready", b"").0, 200);
    assert_eq!(
        http(a, "GET", &format!("/v2/models/{MODEL}/ready"), b"").0,
        200
    );
    assert_eq!(http(a, "GET", "/v2/models/nope/ready", b"").0, 404);
    let (c, b) = http(a, "GET", &format!("/v2/models/{MODEL}"), b"");
    assert_eq!(c, 200);
    let v: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["platform"], "tensorflow_savedmodel");
    assert_eq!(
        v["inputs"][0],
        json!({"name": "sentences", "datatype": "BYTES", "shape": [-1]})
    );
    let s = sentences();
    let golden = read_json(&fixture("nnlm_en_dim128").join("golden.json"));
    let req = json!({"id": "r1", "inputs": [{"name": "sentences", "shape": [s.len()], "datatype": "BYTES", "data": s}]});
    let (c, v) = post(a, &format!("/v2/models/{MODEL}/versions/1/infer"), &req);
    assert_eq!(c, 200, "{v}");
    assert_eq!(v["id"], "r1");
    assert_eq!(v["model_version"], "1");
    let out = &v["outputs"][0];
    assert_eq!(
        (out["name"].as_str(), out["datatype"].as_str()),
        (Some("default"), Some("FP32"))
    );
    assert_eq!(out["shape"], json!([s.len(), 128]));
    assert_golden(&out["data"], &golden["default"]);
    let bad =
        json!({"inputs": [{"name": "sentences", "shape": [1], "datatype": "FP32", "data": [1.0]}]});
    let (c, v) = post(a, &format!("/v2/models/{MODEL}/infer"), &bad);
    assert_eq!(c, 400, "{v}");

    // The binary tensor extension: BYTES in as length-prefixed raw data, FP32 out as raw
    // little-endian floats after the JSON header.
    let (_, b) = http(a, "GET", "/v2", b"");
    assert!(b.contains("binary_tensor_data"), "{b}");
    let mut raw = Vec::new();
    for x in &s {
        raw.extend_from_slice(&(x.len() as u32).to_le_bytes());
        raw.extend_from_slice(x.as_bytes());
    }
    let header = json!({
        "inputs": [{"name": "sentences", "shape": [s.len()], "datatype": "BYTES",
                    "parameters": {"binary_data_size": raw.len()}}],
        "parameters": {"binary_data_output": true},
    })
    .to_string();
    let body = [header.as_bytes(), &raw].concat();
    let infer = format!("/v2/models/{MODEL}/infer");
    let hl = format!("Inference-Header-Content-Length: {}\r\n", header.len());
    let (c, hs, out) = post_raw(a, &infer, &hl, &body);
    assert_eq!(c, 200, "{}", String::from_utf8_lossy(&out));
    let json_len: usize = hs
        .iter()
        .find(|(k, _)| k == "inference-header-content-length")
        .expect("Inference-Header-Content-Length in the reply")
        .1
        .parse()
        .unwrap();
    let v: Value = serde_json::from_slice(&out[..json_len]).unwrap();
    let o = &v["outputs"][0];
    assert_eq!(o["shape"], json!([s.len(), 128]));
    assert!(o.get("data").is_none(), "{v}");
    let floats: Vec<f64> = out[json_len..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
        .collect();
    assert_eq!(o["parameters"]["binary_data_size"], json!(floats.len() * 4));
    assert_golden(&json!(floats), &golden["default"]);
    // Per output `binary_data: false` overrides the request's choice: JSON data again.
    let header2 = header.replace(
        "\"parameters\":{\"binary_data_output\":true}",
        "\"parameters\":{\"binary_data_output\":true},\
         \"outputs\":[{\"name\":\"default\",\"parameters\":{\"binary_data\":false}}]",
    );
    assert_ne!(header2, header);
    let body2 = [header2.as_bytes(), &raw].concat();
    let hl2 = format!("Inference-Header-Content-Length: {}\r\n", header2.len());
    let (c, _, out) = post_raw(a, &infer, &hl2, &body2);
    assert_eq!(c, 200);
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_golden(&v["outputs"][0]["data"], &golden["default"]);
    // A size past the data, a stray tail and a bad header length are 400s, not panics.
    for (h, b) in [
        (
            hl.clone(),
            [header.as_bytes(), &raw[..raw.len() - 1]].concat(),
        ),
        (hl.clone(), [header.as_bytes(), &raw, b"x"].concat()),
        (
            "Inference-Header-Content-Length: 999999\r\n".to_string(),
            body.clone(),
        ),
    ] {
        let (c, _, out) = post_raw(a, &infer, &h, &b);
        assert_eq!(c, 400, "{}", String::from_utf8_lossy(&out));
    }
    srv.shutdown();
}

// --- gRPC: TF Serving's protos over an independent HTTP/2 client -----------------------

use tfhub::proto::serving::{
    model_spec::VersionChoice, GetModelMetadataRequest, GetModelMetadataResponse,
    GetModelStatusRequest, GetModelStatusResponse, ModelSpec, PredictRequest, PredictResponse,
    SignatureDefMap,
};
use tfhub::proto::{tensor_shape_proto::Dim, TensorProto, TensorShapeProto};

/// One unary gRPC call: (grpc-status, grpc-message, reply bytes).
fn grpc_call(addr: SocketAddr, method: &str, msg: Vec<u8>) -> (u32, String, Vec<u8>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut client, conn) = h2::client::handshake(tcp).await.unwrap();
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let req = http::Request::builder()
            .method("POST")
            .uri(format!("http://{addr}{method}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .unwrap();
        let (resp, mut send) = client.send_request(req, false).unwrap();
        let mut framed = vec![0u8];
        framed.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        framed.extend_from_slice(&msg);
        send.send_data(framed.into(), true).unwrap();
        let resp = tokio::time::timeout(Duration::from_secs(30), resp)
            .await
            .unwrap()
            .unwrap();
        let mut body = resp.into_body();
        let mut data = Vec::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.unwrap();
            let _ = body.flow_control().release_capacity(chunk.len());
            data.extend_from_slice(&chunk);
        }
        let trailers = body.trailers().await.unwrap().unwrap_or_default();
        let status = trailers
            .get("grpc-status")
            .map_or(99, |v| v.to_str().unwrap().parse().unwrap());
        let message = trailers
            .get("grpc-message")
            .map_or(String::new(), |v| v.to_str().unwrap().to_string());
        let payload = if data.len() >= 5 {
            data[5..].to_vec()
        } else {
            Vec::new()
        };
        (status, message, payload)
    })
}

fn spec(version: Option<i64>, signature: &str) -> Option<ModelSpec> {
    Some(ModelSpec {
        name: MODEL.into(),
        signature_name: signature.into(),
        version_choice: version
            .map(|v| VersionChoice::Version(tfhub::proto::serving::Int64Value { value: v })),
    })
}

fn string_tensor(s: &[String]) -> TensorProto {
    TensorProto {
        dtype: tfhub::DType::String.to_proto(),
        tensor_shape: Some(TensorShapeProto {
            dim: vec![Dim {
                size: s.len() as i64,
                name: String::new(),
            }],
            unknown_rank: false,
        }),
        string_val: s.iter().map(|x| x.as_bytes().to_vec()).collect(),
        ..TensorProto::default()
    }
}

#[test]
fn grpc_predict_metadata_status() {
    let base = base_with("nnlm_en_dim128", 1);
    let srv = Server::start(opts(base.path())).unwrap();
    let g = srv.grpc_addr().unwrap();
    let s = sentences();
    let golden = read_json(&fixture("nnlm_en_dim128").join("golden.json"));

    let req = PredictRequest {
        model_spec: spec(None, ""),
        inputs: [("sentences".to_string(), string_tensor(&s))]
            .into_iter()
            .collect(),
        ..PredictRequest::default()
    };
    let (st, msg, out) = grpc_call(
        g,
        "/tensorflow.serving.PredictionService/Predict",
        req.encode_to_vec(),
    );
    assert_eq!(st, 0, "{msg}");
    let resp = PredictResponse::decode(out.as_slice()).unwrap();
    let ms = resp.model_spec.unwrap();
    assert_eq!(
        (ms.name.as_str(), ms.signature_name.as_str()),
        (MODEL, "serving_default")
    );
    assert!(matches!(ms.version_choice, Some(VersionChoice::Version(v)) if v.value == 1));
    let t = &resp.outputs["default"];
    let dims: Vec<i64> = t
        .tensor_shape
        .as_ref()
        .unwrap()
        .dim
        .iter()
        .map(|d| d.size)
        .collect();
    assert_eq!(dims, vec![s.len() as i64, 128]);
    let got = Value::from(t.float_val.iter().map(|&x| x as f64).collect::<Vec<_>>());
    assert_golden(&got, &golden["default"]);

    // Errors come back as gRPC status codes with TF's messages.
    let mut bad = req.clone();
    bad.model_spec = spec(Some(7), "");
    let (st, msg, _) = grpc_call(
        g,
        "/tensorflow.serving.PredictionService/Predict",
        bad.encode_to_vec(),
    );
    assert_eq!((st, msg.contains("Specific(nnlm, 7)")), (5, true), "{msg}");
    let mut bad = req.clone();
    bad.inputs.insert("extra".into(), string_tensor(&s));
    let (st, msg, _) = grpc_call(
        g,
        "/tensorflow.serving.PredictionService/Predict",
        bad.encode_to_vec(),
    );
    assert_eq!(
        (st, msg.contains("input size does not match signature")),
        (3, true),
        "{msg}"
    );
    let (st, _, _) = grpc_call(
        g,
        "/tensorflow.serving.PredictionService/Predict",
        vec![0xff, 0xff, 0x01],
    );
    assert_eq!(st, 3);
    let (st, _, _) = grpc_call(
        g,
        "/tensorflow.serving.PredictionService/Classify",
        Vec::new(),
    );
    assert_eq!(st, 12);

    let req = GetModelMetadataRequest {
        model_spec: spec(None, ""),
        metadata_field: vec!["signature_def".into()],
    };
    let (st, msg, out) = grpc_call(
        g,
        "/tensorflow.serving.PredictionService/GetModelMetadata",
        req.encode_to_vec(),
    );
    assert_eq!(st, 0, "{msg}");
    let resp = GetModelMetadataResponse::decode(out.as_slice()).unwrap();
    let any = &resp.metadata["signature_def"];
    assert_eq!(
        any.type_url,
        "type.googleapis.com/tensorflow.serving.SignatureDefMap"
    );
    let map = SignatureDefMap::decode(any.value.as_slice()).unwrap();
    assert_eq!(
        map.signature_def["serving_default"].method_name,
        "tensorflow/serving/predict"
    );
    assert_eq!(
        map.signature_def["tokens"].outputs["ids"].dtype,
        tfhub::DType::I64.to_proto()
    );

    let req = GetModelStatusRequest {
        model_spec: spec(None, ""),
    };
    let (st, msg, out) = grpc_call(
        g,
        "/tensorflow.serving.ModelService/GetModelStatus",
        req.encode_to_vec(),
    );
    assert_eq!(st, 0, "{msg}");
    let resp = GetModelStatusResponse::decode(out.as_slice()).unwrap();
    assert_eq!(resp.model_version_status.len(), 1);
    assert_eq!(
        (
            resp.model_version_status[0].version,
            resp.model_version_status[0].state
        ),
        (1, 30)
    );
    srv.shutdown();
}

// --- lifecycle and production behaviour ------------------------------------------------

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Hammers `:predict` from `n` threads until `stop`; returns (ok count by width, failures).
fn load(
    a: SocketAddr,
    n: usize,
    stop: Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<(Vec<usize>, Vec<String>)>> {
    (0..n)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let (mut widths, mut fails) = (Vec::new(), Vec::new());
                while !stop.load(Ordering::SeqCst) {
                    let (c, b) = http(
                        a,
                        "POST",
                        &format!("/v1/models/{MODEL}:predict"),
                        br#"{"instances": ["hot swap"]}"#,
                    );
                    match serde_json::from_str::<Value>(&b) {
                        Ok(v) if c == 200 => {
                            widths.push(v["predictions"][0].as_array().map_or(0, Vec::len))
                        }
                        _ => fails.push(format!("{c}: {b}")),
                    }
                }
                (widths, fails)
            })
        })
        .collect()
}

#[test]
fn version_hot_swap_under_load_fails_no_request() {
    let base = base_with("nnlm_en_dim128", 1);
    let mut o = opts(base.path());
    o.poll_wait = Some(Duration::from_millis(50));
    let srv = Server::start(o).unwrap();
    let a = srv.rest_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let workers = load(a, 6, stop.clone());
    std::thread::sleep(Duration::from_millis(300));
    // Publish version 2 (a 32-wide model) atomically: copy aside, then rename into place.
    copy_dir(&fixture("nnlm_norm_dim32"), &base.path().join("tmp-2"));
    std::fs::rename(base.path().join("tmp-2"), base.path().join("2")).unwrap();
    let status = |a| {
        let (_, b) = http(a, "GET", &format!("/v1/models/{MODEL}"), b"");
        serde_json::from_str::<Value>(&b).unwrap()
    };
    wait_until(
        "version 2 to serve and version 1 to end",
        Duration::from_secs(60),
        || {
            let v = status(a);
            v["model_version_status"][0]["state"] == "AVAILABLE"
                && v["model_version_status"][1]["state"] == "END"
        },
    );
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    let (mut widths, mut fails) = (Vec::new(), Vec::new());
    for w in workers {
        let (a, b) = w.join().unwrap();
        widths.extend(a);
        fails.extend(b);
    }
    assert!(
        fails.is_empty(),
        "{} failed requests, first: {}",
        fails.len(),
        fails[0]
    );
    assert!(
        widths.contains(&128) && widths.contains(&32),
        "both versions served: {:?}",
        {
            let mut w = widths.clone();
            w.dedup();
            w
        }
    );
    assert_eq!(*widths.last().unwrap(), 32, "the new version serves last");
    srv.shutdown();
}

fn big_request(n: usize) -> Vec<u8> {
    let words: Vec<String> = (0..n)
        .map(|i| format!("the cat sat on the mat number {i} again and again"))
        .collect();
    json!({ "instances": words }).to_string().into_bytes()
}

#[test]
fn full_queue_answers_429_and_nothing_else_fails() {
    let base = base_with("nnlm_en_dim128", 1);
    let mut o = opts(base.path());
    o.max_concurrent = 1;
    o.max_queued = 1;
    let srv = Server::start(o).unwrap();
    let a = srv.rest_addr().unwrap();
    let body = Arc::new(big_request(3000));
    let codes: Vec<u16> = (0..12)
        .map(|_| {
            let body = body.clone();
            std::thread::spawn(move || {
                http(a, "POST", &format!("/v1/models/{MODEL}:predict"), &body)
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| {
            let (c, b) = h.join().unwrap();
            if c == 429 {
                assert!(
                    b.contains("RESOURCE_EXHAUSTED") || b.contains("capacity"),
                    "{b}"
                );
            }
            c
        })
        .collect();
    assert!(codes.iter().all(|&c| c == 200 || c == 429), "{codes:?}");
    assert!(
        codes.contains(&429),
        "12 concurrent requests with 1 slot + 1 queued: {codes:?}"
    );
    assert!(codes.contains(&200), "{codes:?}");
    srv.shutdown();
}

#[test]
fn batching_gives_golden_results_and_bounds_its_queue() {
    let base = base_with("nnlm_en_dim128", 1);
    let mut o = opts(base.path());
    o.batching = Some(BatchingParams {
        max_batch_size: 8,
        batch_timeout_micros: 2000,
        max_enqueued_batches: 2,
        num_batch_threads: 1,
        allowed_batch_sizes: vec![4, 8],
        ..BatchingParams::default()
    });
    let srv = Server::start(o).unwrap();
    let a = srv.rest_addr().unwrap();
    let golden = read_json(&fixture("nnlm_en_dim128").join("golden.json"));
    let g = golden["default"]["values"].as_array().unwrap().clone();
    let s = sentences();
    // Each sentence alone, concurrently: batched together, padded, split back.
    let handles: Vec<_> = s
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, x)| {
            std::thread::spawn(move || {
                (
                    i,
                    post(
                        a,
                        &format!("/v1/models/{MODEL}:predict"),
                        &json!({"instances": [x]}),
                    ),
                )
            })
        })
        .collect();
    for h in handles {
        let (i, (c, v)) = h.join().unwrap();
        assert_eq!(c, 200, "{v}");
        let want = json!({"values": g[i * 128..(i + 1) * 128]});
        assert_golden(&v["predictions"][0], &want);
    }
    // More rows than max_batch_size: TF's 400.
    let (c, v) = post(
        a,
        &format!("/v1/models/{MODEL}:predict"),
        &json!({"instances": s}),
    );
    assert_eq!(c, 400, "{v}");
    assert!(v["error"]
        .as_str()
        .unwrap()
        .contains("larger than maximum input batch size 8"));
    // Flooding a 2-batch queue: only 200s and 429s.
    let body = Arc::new(
        json!({"instances": vec!["a long sentence to embed again"; 8]})
            .to_string()
            .into_bytes(),
    );
    let codes: Vec<u16> = (0..24)
        .map(|_| {
            let body = body.clone();
            std::thread::spawn(move || {
                http(a, "POST", &format!("/v1/models/{MODEL}:predict"), &body).0
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    assert!(codes.iter().all(|&c| c == 200 || c == 429), "{codes:?}");
    assert!(codes.contains(&200), "{codes:?}");
    let (_, page) = http(a, "GET", "/monitoring/prometheus/metrics", b"");
    assert!(page.contains(":tfhub:serving:batch_size_bucket"), "{page}");
    srv.shutdown();
}

/// The value of the first metrics line starting with `prefix` and containing `needle`.
fn metric(page: &str, prefix: &str, needle: &str) -> f64 {
    page.lines()
        .find(|l| l.starts_with(prefix) && l.contains(needle))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {prefix}..{needle} in {page}"))
}

#[test]
fn large_batch_splitting_runs_a_big_request_in_small_batches() {
    let base = base_with("nnlm_en_dim128", 1);
    let mut o = opts(base.path());
    o.batching = Some(BatchingParams {
        max_batch_size: 16,
        batch_timeout_micros: 1000,
        max_enqueued_batches: 8,
        num_batch_threads: 1,
        allowed_batch_sizes: vec![1, 2],
        enable_large_batch_splitting: true,
        max_execution_batch_size: Some(2),
        ..BatchingParams::default()
    });
    let srv = Server::start(o).unwrap();
    let a = srv.rest_addr().unwrap();
    let golden = read_json(&fixture("nnlm_en_dim128").join("golden.json"));
    let g = golden["default"]["values"].as_array().unwrap().clone();
    let s = sentences();
    assert!(s.len() > 2, "the fixture needs more rows than one batch");
    // More rows than max_execution_batch_size: cut into batches of 2, joined back in order.
    let (c, v) = post(
        a,
        &format!("/v1/models/{MODEL}:predict"),
        &json!({"instances": s}),
    );
    assert_eq!(c, 200, "{v}");
    let preds = v["predictions"].as_array().unwrap();
    assert_eq!(preds.len(), s.len());
    for (i, p) in preds.iter().enumerate() {
        assert_golden(p, &json!({"values": g[i * 128..(i + 1) * 128]}));
    }
    // 14 rows ran as 7 batches of exactly 2: the count, the sum, and no batch of 1 (TF's
    // histogram buckets count values below their bound, so `le="2"` holds the 1s).
    let (_, page) = http(a, "GET", "/monitoring/prometheus/metrics", b"");
    let rows = s.len() as f64;
    assert_eq!(
        metric(&page, ":tfhub:serving:batch_size_sum", ""),
        rows,
        "{page}"
    );
    assert_eq!(
        metric(&page, ":tfhub:serving:batch_size_count", ""),
        (rows / 2.0).ceil(),
        "{page}"
    );
    assert_eq!(
        metric(&page, ":tfhub:serving:batch_size_bucket", "le=\"2\""),
        rows % 2.0,
        "{page}"
    );
    // max_batch_size still bounds one request.
    let (c, v) = post(
        a,
        &format!("/v1/models/{MODEL}:predict"),
        &json!({"instances": vec!["x"; 17]}),
    );
    assert_eq!(c, 400, "{v}");
    srv.shutdown();
}

#[test]
fn pad_variable_length_inputs_batches_different_lengths_like_tf() {
    let base = base_with("text2_bert_encoder", 1);
    let mut o = opts(base.path());
    o.batching = Some(BatchingParams {
        max_batch_size: 2,
        // Long: a batch runs only when both requests are in it.
        batch_timeout_micros: 20_000_000,
        max_enqueued_batches: 4,
        num_batch_threads: 1,
        pad_variable_length_inputs: true,
        ..BatchingParams::default()
    });
    let srv = Server::start(o).unwrap();
    let a = srv.rest_addr().unwrap();
    let path = "/v1/models/{MODEL}:predict".replace("{MODEL}", MODEL);
    let req = |ids: &[i32]| {
        json!({"inputs": {
            "input_word_ids": [ids],
            "input_mask": [vec![1; ids.len()]],
            "input_type_ids": [vec![0; ids.len()]],
        }})
    };
    // Sends both at once so they share a batch; returns their outputs.
    let pair = |x: Value, y: Value| {
        let (p1, p2) = (path.clone(), path.clone());
        let h1 = std::thread::spawn(move || post(a, &p1, &x));
        let h2 = std::thread::spawn(move || post(a, &p2, &y));
        let (r1, r2) = (h1.join().unwrap(), h2.join().unwrap());
        assert_eq!(r1.0, 200, "{}", r1.1);
        assert_eq!(r2.0, 200, "{}", r2.1);
        (r1.1, r2.1)
    };
    let short = [101, 7, 8, 9, 102];
    let long = [101, 11, 12, 13, 14, 15, 16, 102];
    let (s1, l1) = pair(req(&short), req(&long));
    // The short request ran padded to 8 with its first elements (word id 101, mask 1,
    // type 0), so its sequence output has the padded length, as in TF.
    let seq = &s1["outputs"]["sequence_output"];
    assert_eq!(seq[0].as_array().unwrap().len(), 8, "{s1}");
    // The same as sending it padded by hand in the same batch.
    let mut padded = short.to_vec();
    padded.resize(8, 101);
    let (s2, l2) = pair(req(&padded), req(&long));
    // (Which of the two comes first in the batch may differ between rounds: close, not equal.)
    for (x, y) in [(&s1, &s2), (&l1, &l2)] {
        let (mut fx, mut fy) = (Vec::new(), Vec::new());
        flat(&x["outputs"], &mut fx);
        flat(&y["outputs"], &mut fy);
        assert_eq!(fx.len(), fy.len());
        assert!(
            fx.iter()
                .zip(&fy)
                .all(|(a, b)| (a - b).abs() <= 1e-5 * (1.0 + a.abs())),
            "{x} vs {y}"
        );
    }
    srv.shutdown();

    // Padding never builds an input past --max_tensor_elements: with a cap of 12, the two
    // (8 and 5 tokens, 16 once padded together) run in separate batches, unpadded.
    let mut o = opts(base.path());
    o.max_tensor_elements = 12;
    o.batching = Some(BatchingParams {
        max_batch_size: 2,
        batch_timeout_micros: 50_000,
        max_enqueued_batches: 4,
        num_batch_threads: 1,
        pad_variable_length_inputs: true,
        ..BatchingParams::default()
    });
    let srv = Server::start(o).unwrap();
    let a = srv.rest_addr().unwrap();
    let (p1, p2) = (path.clone(), path.clone());
    let (x, y) = (req(&short), req(&long));
    let h1 = std::thread::spawn(move || post(a, &p1, &x));
    let h2 = std::thread::spawn(move || post(a, &p2, &y));
    let (r1, r2) = (h1.join().unwrap(), h2.join().unwrap());
    assert_eq!((r1.0, r2.0), (200, 200), "{} {}", r1.1, r2.1);
    let seq = &r1.1["outputs"]["sequence_output"][0];
    assert_eq!(seq.as_array().unwrap().len(), 5, "{}", r1.1);
    srv.shutdown();
}

#[test]
fn shutdown_lets_in_flight_requests_complete() {
    let base = base_with("nnlm_en_dim128", 1);
    let mut o = opts(base.path());
    o.max_concurrent = 2;
    let srv = Server::start(o).unwrap();
    let a = srv.rest_addr().unwrap();
    let started = Arc::new(AtomicUsize::new(0));
    let body = Arc::new(big_request(2000));
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let (body, started) = (body.clone(), started.clone());
            std::thread::spawn(move || {
                started.fetch_add(1, Ordering::SeqCst);
                http(a, "POST", &format!("/v1/models/{MODEL}:predict"), &body)
            })
        })
        .collect();
    wait_until("requests to start", Duration::from_secs(10), || {
        started.load(Ordering::SeqCst) == 6
    });
    std::thread::sleep(Duration::from_millis(150));
    let t0 = Instant::now();
    srv.shutdown();
    let shutdown_took = t0.elapsed();
    for h in handles {
        let (c, b) = h.join().unwrap();
        assert_eq!(
            c,
            200,
            "in-flight request after shutdown: {}",
            &b[..b.len().min(200)]
        );
    }
    assert!(
        TcpStream::connect(a).is_err(),
        "listener closed after shutdown"
    );
    assert!(shutdown_took < Duration::from_secs(30));
}

#[test]
fn startup_fails_like_tf_on_a_broken_version() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("1")).unwrap();
    std::fs::write(d.path().join("1/saved_model.pb"), b"not a protobuf").unwrap();
    let err = Server::start(opts(d.path())).unwrap_err();
    assert!(
        err.contains("1 servable(s) did not become available"),
        "{err}"
    );
}

#[test]
fn plain_saved_model_dir_is_version_1() {
    let srv = Server::start(opts(&fixture("nnlm_en_dim128"))).unwrap();
    let (c, b) = http(
        srv.rest_addr().unwrap(),
        "GET",
        &format!("/v1/models/{MODEL}/versions/1"),
        b"",
    );
    assert_eq!(c, 200, "{b}");
    srv.shutdown();
}

/// TF Serving's own clients, unchanged: `tools/serve_tf_client.py` drives the built binary
/// with `tensorflow-serving-api`'s gRPC stubs (grpcio, an independent gRPC stack) and plain
/// REST, checking the goldens. Opt-in because it needs TensorFlow:
/// `TFHUB_TF_PYTHON=/path/to/python cargo test --release --test serve -- --ignored`.
#[test]
#[ignore = "needs a Python with tensorflow + tensorflow-serving-api (set TFHUB_TF_PYTHON)"]
fn tf_serving_python_client_works_unchanged() {
    let python = std::env::var("TFHUB_TF_PYTHON")
        .expect("TFHUB_TF_PYTHON=<python with tensorflow and tensorflow-serving-api>");
    let mut child = std::process::Command::new(python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/serve_tf_client.py"))
        .arg("--binary")
        .arg(env!("CARGO_BIN_EXE_tfhub"))
        .spawn()
        .expect("starting tools/serve_tf_client.py");
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t0.elapsed() > Duration::from_secs(300) {
            let _ = child.kill();
            panic!("tools/serve_tf_client.py took over 300 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "tools/serve_tf_client.py: {status}");
}

/// A Predict of `n` long sentences (a call of tens of milliseconds).
fn big_grpc_predict(n: usize) -> Vec<u8> {
    let words: Vec<String> = (0..n)
        .map(|i| format!("the cat sat on the mat number {i} again and again"))
        .collect();
    PredictRequest {
        model_spec: spec(None, ""),
        inputs: [("sentences".to_string(), string_tensor(&words))]
            .into_iter()
            .collect(),
        ..PredictRequest::default()
    }
    .encode_to_vec()
}

#[test]
fn deadline_answers_504_and_deadline_exceeded() {
    let base = base_with("nnlm_en_dim128", 1);
    let mut o = opts(base.path());
    o.timeout = Some(Duration::from_millis(1));
    let srv = Server::start(o).unwrap();
    let (c, b) = http(
        srv.rest_addr().unwrap(),
        "POST",
        &format!("/v1/models/{MODEL}:predict"),
        &big_request(3000),
    );
    assert_eq!(c, 504, "{b}");
    assert!(b.contains("Deadline Exceeded"), "{b}");
    let (st, msg, _) = grpc_call(
        srv.grpc_addr().unwrap(),
        "/tensorflow.serving.PredictionService/Predict",
        big_grpc_predict(3000),
    );
    assert_eq!(st, 4, "DEADLINE_EXCEEDED expected: {msg}");
    srv.shutdown();
}

#[test]
fn full_queue_answers_resource_exhausted_over_grpc() {
    let base = base_with("nnlm_en_dim128", 1);
    let mut o = opts(base.path());
    o.max_concurrent = 1;
    o.max_queued = 1;
    let srv = Server::start(o).unwrap();
    let g = srv.grpc_addr().unwrap();
    let msg = Arc::new(big_grpc_predict(3000));
    let results: Vec<(u32, String)> = (0..12)
        .map(|_| {
            let msg = msg.clone();
            std::thread::spawn(move || {
                let (st, m, _) = grpc_call(
                    g,
                    "/tensorflow.serving.PredictionService/Predict",
                    msg.to_vec(),
                );
                (st, m)
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    let codes: Vec<u32> = results.iter().map(|r| r.0).collect();
    assert!(codes.iter().all(|&c| c == 0 || c == 8), "{results:?}");
    assert!(
        codes.contains(&8),
        "12 concurrent calls, 1 slot + 1 queued: {codes:?}"
    );
    assert!(codes.contains(&0), "{codes:?}");
    srv.shutdown();
}

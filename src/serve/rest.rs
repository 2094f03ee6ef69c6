//! HTTP routes: TF Serving's `/v1` REST API (ms/http_rest_api_handler.cc), KServe's Open
//! Inference Protocol v2 (`/v2`), and `/monitoring/prometheus/metrics` (also `/metrics`, the
//! path KServe's TF runtime annotates for scraping).
//!
//! TF quirks kept: the fixed URL words match case-insensitively but the verb after `:` does
//! not; names and labels are %XX-decoded; every reply is `application/json`, errors as
//! `{"error": msg}` with TF's code→HTTP mapping; bad JSON is reported before an unknown
//! model. Added: a body cap (413) and a deadline (504), and `:classify`/`:regress` answer 501.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Map, Value};

use super::models::{Servable, VersionSel};
use super::status::{Code, Status};
use super::tfjson::{self, tf_dtype_name};
use super::v2bin;
use super::App;
use crate::api::TensorSpec;
use crate::tensor::{DType, Tensor};

type Resp = Response<Full<Bytes>>;

fn reply(app: &App, code: u16, ctype: &str, body: String) -> Resp {
    let mut r = Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", ctype);
    if app.opts.cors {
        r = r
            .header("access-control-allow-origin", "*")
            .header("access-control-allow-methods", "POST, GET")
            .header("access-control-allow-headers", "Content-Type");
    }
    r.body(Full::new(Bytes::from(body)))
        .expect("static headers are valid")
}

fn json_reply(app: &App, r: Result<String, Status>) -> Resp {
    match r {
        Ok(body) => reply(app, 200, "application/json", body),
        Err(s) => reply(
            app,
            s.code.http(),
            "application/json",
            tfjson::error_body(&s.msg),
        ),
    }
}

/// One HTTP request on the REST port.
pub async fn handle(app: Arc<App>, req: Request<hyper::body::Incoming>) -> Resp {
    let t0 = Instant::now();
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    if method == Method::GET && (path == "/monitoring/prometheus/metrics" || path == "/metrics") {
        return reply(&app, 200, "text/plain; version=0.0.4", app.metrics.render());
    }
    let lower = path.to_ascii_lowercase();
    if method == Method::OPTIONS && (lower.starts_with("/v1/") || lower.starts_with("/v2")) {
        let origin = req
            .headers()
            .get("origin")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if origin.contains("http://") || origin.contains("https://") {
            return reply(&app, 200, "application/json", String::new());
        }
        return json_reply(
            &app,
            Err(Status::invalid(
                "Origin header is missing in CORS preflight",
            )),
        );
    }
    let binary_header = req
        .headers()
        .get("inference-header-content-length")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let body = match read_body(&app, req).await {
        Ok(b) => b,
        Err(s) if s.code == Code::OutOfRange => {
            return reply(&app, 413, "application/json", tfjson::error_body(&s.msg))
        }
        Err(s) => return json_reply(&app, Err(s)),
    };
    if lower.starts_with("/v1/") {
        let (model, api, r) = v1(&app, &method, &path, &body).await;
        app.metrics.request(
            &model,
            &api,
            "REST",
            r.as_ref().map_or_else(|s| s.code.name(), |_| "OK"),
            t0.elapsed(),
        );
        if let Err(s) = &r {
            if s.code.http() >= 500 {
                super::metrics::log(
                    "warn",
                    "request failed",
                    &[
                        ("path", json!(path)),
                        ("code", json!(s.code.name())),
                        ("error", json!(s.msg)),
                    ],
                );
            }
        }
        return json_reply(&app, r);
    }
    if lower == "/v2" || lower.starts_with("/v2/") {
        return v2(&app, &method, &path, &body, binary_header.as_deref()).await;
    }
    reply(&app, 404, "text/plain", format!("Not Found: {path}\n"))
}

async fn read_body(app: &App, req: Request<hyper::body::Incoming>) -> Result<Bytes, Status> {
    let cap = app.opts.max_body_bytes;
    if let Some(len) = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > cap as u64 {
            return Err(too_large(cap));
        }
    }
    let collected = app
        .with_deadline(None, async {
            Limited::new(req.into_body(), cap)
                .collect()
                .await
                .map_err(|_| too_large(cap))
        })
        .await?;
    Ok(collected.to_bytes())
}

fn too_large(cap: usize) -> Status {
    // Answered 413 (TF Serving has no body cap, so no TF code to copy).
    Status {
        code: Code::OutOfRange,
        msg: format!("request body exceeds the cap of {cap} bytes (--max_body_bytes)"),
    }
}

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Debug, PartialEq)]
enum V1 {
    Status(String, VersionSel),
    Metadata(String, VersionSel),
    Call(String, VersionSel, String),
}

fn malformed(method: &Method, path: &str) -> Status {
    Status::invalid(format!("Malformed request: {method} {path}"))
}

/// TF's `kPredictionApiGegex` / `kModelStatusApiRegex`.
fn parse_v1(method: &Method, path: &str) -> Result<V1, Status> {
    let rest = &path[4..];
    if rest.len() < 7 || !rest[..7].eq_ignore_ascii_case("models/") {
        if rest.eq_ignore_ascii_case("models") {
            return Err(Status::invalid("Missing model name in request."));
        }
        return Err(malformed(method, path));
    }
    let rest = &rest[7..];
    if rest.is_empty() {
        return Err(Status::invalid("Missing model name in request."));
    }
    let (route, verb) = match *method {
        Method::POST => match rest.rsplit_once(':') {
            Some((r, v)) if !v.contains('/') => (r, Some(v)),
            _ => return Err(malformed(method, path)),
        },
        Method::GET => (rest, None),
        _ => return Err(malformed(method, path)),
    };
    let mut segs: Vec<&str> = route.split('/').collect();
    let metadata = verb.is_none()
        && segs.len() > 1
        && segs
            .last()
            .is_some_and(|s| s.eq_ignore_ascii_case("metadata"));
    if metadata {
        segs.pop();
    }
    let name = segs[0];
    if name.is_empty() || name.contains(':') {
        return Err(malformed(method, path));
    }
    let name = pct_decode(name);
    let sel = match &segs[1..] {
        [] => VersionSel::Latest,
        [k, n]
            if k.eq_ignore_ascii_case("versions")
                && !n.is_empty()
                && n.bytes().all(|c| c.is_ascii_digit()) =>
        {
            VersionSel::Number(
                n.parse()
                    .map_err(|_| Status::invalid("Failed to convert version"))?,
            )
        }
        [k, l] if k.eq_ignore_ascii_case("labels") && !l.is_empty() && !l.contains(':') => {
            VersionSel::Label(pct_decode(l))
        }
        _ => return Err(malformed(method, path)),
    };
    Ok(match (verb, metadata) {
        (Some(v), _) => V1::Call(name, sel, v.to_string()),
        (None, true) => V1::Metadata(name, sel),
        (None, false) => V1::Status(name, sel),
    })
}

/// Returns (model name for metrics, API label, result).
async fn v1(
    app: &App,
    method: &Method,
    path: &str,
    body: &[u8],
) -> (String, String, Result<String, Status>) {
    let route = match parse_v1(method, path) {
        Ok(r) => r,
        Err(s) => return (String::new(), String::new(), Err(s)),
    };
    match route {
        V1::Status(name, sel) => {
            let r = model_status(app, &name, &sel);
            (name, String::new(), r)
        }
        V1::Metadata(name, sel) => {
            let r = app
                .manager
                .find(&name, &sel)
                .and_then(|sv| Ok(metadata_json(&sv)?.to_string()));
            (name, String::new(), r)
        }
        V1::Call(name, sel, verb) => {
            let r = match verb.as_str() {
                "predict" => {
                    let fut = predict(app, &name, &sel, body);
                    app.with_deadline(None, fut).await
                }
                "classify" | "regress" => Err(Status::unimplemented(format!(
                    ":{verb} (tf.Example input) is not implemented by tfhub serve; use :predict"
                ))),
                _ => Err(malformed(method, path)),
            };
            (name, verb, r)
        }
    }
}

async fn predict(app: &App, name: &str, sel: &VersionSel, body: &[u8]) -> Result<String, Status> {
    // Dense numeric data (images, feature vectors) to a single float input: straight into
    // the tensor. Anything else, errors included, takes the general path below.
    let lim = app.limits();
    if let Some(dense) = tfjson::parse_predict_dense(body, lim.max_elements) {
        if let Ok(sv) = app.manager.find(name, sel) {
            let sig_name = dense.signature_name.as_deref().unwrap_or("serving_default");
            if let Ok(sig) = sv.model.signature(sig_name) {
                let (sig_name, format) = (sig_name.to_string(), dense.format);
                if let Some(inputs) = dense.into_inputs(sig.inputs(), lim) {
                    let out = app.predict(&sv, &sig_name, inputs, "predict").await?;
                    return tfjson::encode_outputs(&out, format);
                }
            }
        }
    }
    let req = tfjson::parse_predict(body)?;
    let sv = app.manager.find(name, sel)?;
    let sig_name = req
        .signature_name
        .clone()
        .unwrap_or_else(|| "serving_default".into());
    let sig = sv.model.signature(&sig_name).map_err(|_| {
        Status::invalid(format!(
            "Serving signature name: \"{sig_name}\" not found in signature def"
        ))
    })?;
    let inputs = tfjson::decode_inputs(&req, sig.inputs(), app.limits())?;
    let out = app.predict(&sv, &sig_name, inputs, "predict").await?;
    tfjson::encode_outputs(&out, req.format)
}

fn model_status(app: &App, name: &str, sel: &VersionSel) -> Result<String, Status> {
    let entry =
        app.manager.models().get(name).ok_or_else(|| {
            Status::not_found(format!("Could not find any versions of model {name}"))
        })?;
    let mut list = entry.statuses();
    if list.is_empty() {
        return Err(Status::not_found(format!(
            "Could not find any versions of model {name}"
        )));
    }
    // TF checks only `has_version`: a label returns every version.
    if let VersionSel::Number(v) = sel {
        list.retain(|(x, _)| x == v);
        if list.is_empty() {
            return Err(Status::not_found(format!(
                "Could not find version {v} of model {name}"
            )));
        }
    }
    let items: Vec<Value> = list
        .iter()
        .map(|(v, st)| {
            let (code, msg) = match &st.error {
                Some(e) => ("UNKNOWN", e.clone()),
                None => ("OK", String::new()),
            };
            json!({"version": v.to_string(), "state": st.state.name(),
                   "status": {"error_code": code, "error_message": msg}})
        })
        .collect();
    Ok(
        serde_json::to_string_pretty(&json!({ "model_version_status": items }))
            .expect("JSON value"),
    )
}

/// `{"dtype": "DT_FLOAT", "tensor_shape": {...}, "name": ...}` from an inspection entry.
fn tensor_info_json(t: &Value) -> Value {
    let dtype = t["dtype"]
        .as_str()
        .and_then(DType::from_name)
        .map_or("DT_INVALID", tf_dtype_name);
    let shape = match t["shape"].as_array() {
        None => json!({"dim": [], "unknown_rank": true}),
        Some(dims) => json!({
            "dim": dims.iter().map(|d| json!({"size": d.as_i64().unwrap_or(-1).to_string(), "name": ""})).collect::<Vec<_>>(),
            "unknown_rank": false
        }),
    };
    json!({"dtype": dtype, "tensor_shape": shape, "name": t["name"]})
}

/// GetModelMetadata as TF Serving's REST handler prints it (note the doubled `signature_def`).
fn metadata_json(sv: &Servable) -> Result<Value, Status> {
    let mut defs = Map::new();
    if let Some(sigs) = sv.signatures.as_object() {
        for (k, s) in sigs {
            let io = |m: &Value| -> Value {
                Value::Object(
                    m.as_object()
                        .map(|o| {
                            o.iter()
                                .map(|(k, t)| (k.clone(), tensor_info_json(t)))
                                .collect()
                        })
                        .unwrap_or_default(),
                )
            };
            defs.insert(
                k.clone(),
                json!({"inputs": io(&s["inputs"]), "outputs": io(&s["outputs"]),
                       "method_name": s["method_name"], "defaults": {}}),
            );
        }
    }
    Ok(json!({
        "model_spec": {"name": sv.name, "signature_name": "", "version": sv.version.to_string()},
        "metadata": {"signature_def": {"signature_def": defs}}
    }))
}

// ---------------------------------------------------------------------------------------
// KServe Open Inference Protocol v2.

fn v2_datatype(d: DType) -> Option<&'static str> {
    Some(match d {
        DType::Bool => "BOOL",
        DType::U8 => "UINT8",
        DType::U16 => "UINT16",
        DType::U32 => "UINT32",
        DType::U64 => "UINT64",
        DType::I8 => "INT8",
        DType::I16 => "INT16",
        DType::I32 => "INT32",
        DType::I64 => "INT64",
        DType::F16 => "FP16",
        DType::F32 => "FP32",
        DType::F64 => "FP64",
        DType::String => "BYTES",
        DType::BF16 => "BF16",
        _ => return None,
    })
}

async fn v2(
    app: &App,
    method: &Method,
    path: &str,
    body: &[u8],
    binary_header: Option<&str>,
) -> Resp {
    let t0 = Instant::now();
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').skip(2).collect();
    let ok = |v: Value| reply(app, 200, "application/json", v.to_string());
    let err = |s: Status| {
        let code = match s.code {
            Code::Internal | Code::Unknown => 500,
            c => c.http(),
        };
        reply(app, code, "application/json", tfjson::error_body(&s.msg))
    };
    let ready = || {
        !app.draining.load(std::sync::atomic::Ordering::SeqCst)
            && app.manager.models().values().all(|m| !m.live().is_empty())
    };
    match (method, segs.as_slice()) {
        (&Method::GET, []) => ok(
            json!({"name": "tfhub", "version": env!("CARGO_PKG_VERSION"),
                      "extensions": ["binary_tensor_data"]}),
        ),
        (&Method::GET, ["health", "live"]) => ok(json!({"live": true})),
        (&Method::GET, ["health", "ready"]) => {
            if ready() {
                ok(json!({"ready": true}))
            } else {
                reply(
                    app,
                    503,
                    "application/json",
                    json!({"ready": false}).to_string(),
                )
            }
        }
        (&Method::GET, ["models"]) => {
            ok(json!({"models": app.manager.models().keys().collect::<Vec<_>>()}))
        }
        (_, ["models", name, rest @ ..]) => {
            let name = pct_decode(name);
            let (sel, rest) = match rest {
                ["versions", v, tail @ ..] => match v.parse::<i64>() {
                    Ok(n) => (VersionSel::Number(n), tail),
                    Err(_) => return err(Status::invalid(format!("invalid version {v:?}"))),
                },
                tail => (VersionSel::Latest, tail),
            };
            match (method, rest) {
                (&Method::GET, []) => match app.manager.find(&name, &sel) {
                    Ok(sv) => ok(v2_metadata(app, &sv)),
                    Err(s) => err(s),
                },
                (&Method::GET, ["ready"]) => {
                    let r = app.manager.find(&name, &sel).is_ok();
                    let v = json!({"name": name, "ready": r});
                    if r {
                        ok(v)
                    } else if app.manager.models().contains_key(&name) {
                        reply(app, 503, "application/json", v.to_string())
                    } else {
                        err(Status::not_found(format!(
                            "Model with name {name} does not exist."
                        )))
                    }
                }
                (&Method::POST, ["infer"]) => {
                    let r = app
                        .with_deadline(None, v2_infer(app, &name, &sel, body, binary_header))
                        .await;
                    app.metrics.request(
                        &name,
                        "infer",
                        "REST_V2",
                        r.as_ref().map_or_else(|s| s.code.name(), |_| "OK"),
                        t0.elapsed(),
                    );
                    match r {
                        Ok((json, bin)) if bin.is_empty() => {
                            reply(app, 200, "application/json", json)
                        }
                        Ok((json, bin)) => binary_reply(app, json, bin),
                        Err(s) => err(s),
                    }
                }
                _ => err(Status::not_found(format!("no route for {method} {path}"))),
            }
        }
        _ => err(Status::not_found(format!("no route for {method} {path}"))),
    }
}

fn v2_metadata(app: &App, sv: &Servable) -> Value {
    let versions: Vec<String> = app
        .manager
        .models()
        .get(&sv.name)
        .map(|m| m.live().keys().map(|v| v.to_string()).collect())
        .unwrap_or_default();
    let t = |specs: &[crate::api::TensorSpec]| -> Vec<Value> {
        specs
            .iter()
            .map(|s| {
                json!({"name": s.key, "datatype": v2_datatype(s.dtype).unwrap_or("UNKNOWN"),
                       "shape": s.shape.clone().unwrap_or_else(|| vec![-1])})
            })
            .collect()
    };
    let (inputs, outputs) = match sv.model.signature("serving_default") {
        Ok(s) => (t(s.inputs()), t(s.outputs())),
        Err(_) => (Vec::new(), Vec::new()),
    };
    json!({"name": sv.name, "versions": versions, "platform": "tensorflow_savedmodel",
           "inputs": inputs, "outputs": outputs})
}

/// A v2 reply whose outputs include binary data: the JSON header, then the bytes, with the
/// header's length in `Inference-Header-Content-Length` (as Triton answers).
fn binary_reply(app: &App, json: String, bin: Vec<u8>) -> Resp {
    let n = json.len();
    let mut body = json.into_bytes();
    body.extend_from_slice(&bin);
    let mut r = reply(app, 200, "application/octet-stream", String::new());
    r.headers_mut().insert(
        "inference-header-content-length",
        hyper::header::HeaderValue::from(n),
    );
    *r.body_mut() = Full::new(Bytes::from(body));
    r
}

/// The `inputs` of a v2 `infer` request, checked against the signature's input specs
/// (name, datatype, shape, and flat row-major `data` or `binary_data_size` bytes of `tail`,
/// the binary tensor extension). Also the `serve_v2_infer` fuzz target.
pub(crate) fn v2_decode_inputs(
    req: &Value,
    specs: &[TensorSpec],
    lim: tfjson::DecodeLimits,
    tail: &[u8],
) -> Result<Vec<(String, Tensor)>, Status> {
    let mut tail = v2bin::Tail::new(tail);
    let Some(inputs) = req["inputs"].as_array() else {
        return Err(Status::invalid("'inputs' must be a list"));
    };
    let mut tensors = Vec::new();
    for inp in inputs {
        let iname = inp["name"]
            .as_str()
            .ok_or_else(|| Status::invalid("input without a name"))?;
        let spec = specs.iter().find(|s| s.key == iname).ok_or_else(|| {
            let expected: Vec<String> = specs
                .iter()
                .map(|s| format!("{}: {}", s.key, s.dtype))
                .collect();
            Status::invalid(format!(
                "unknown input {iname:?}; expected {}",
                expected.join(", ")
            ))
        })?;
        let want = v2_datatype(spec.dtype).unwrap_or("UNKNOWN");
        let got = inp["datatype"].as_str().unwrap_or("");
        if got != want {
            return Err(Status::invalid(format!(
                "input {iname:?}: datatype {got:?}, expected {want:?}"
            )));
        }
        let shape: Vec<usize> = inp["shape"]
            .as_array()
            .ok_or_else(|| Status::invalid(format!("input {iname:?}: 'shape' must be a list")))?
            .iter()
            .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
            .collect::<Option<_>>()
            .ok_or_else(|| {
                Status::invalid(format!(
                    "input {iname:?}: shape dims must be non-negative integers"
                ))
            })?;
        let bin = &inp["parameters"]["binary_data_size"];
        let t = if bin.is_null() {
            tfjson::tensor_from_flat(&inp["data"], spec.dtype, &shape, lim)?
        } else {
            let n = bin
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| {
                    Status::invalid(format!(
                        "input {iname:?}: binary_data_size must be a non-negative integer"
                    ))
                })?;
            if !inp["data"].is_null() {
                return Err(Status::invalid(format!(
                    "input {iname:?} has both 'data' and binary_data_size"
                )));
            }
            let raw = tail.take(n, iname)?;
            v2bin::tensor_from_raw(iname, spec.dtype, &shape, raw, lim.max_elements)?
        };
        tensors.push((iname.to_string(), t));
    }
    tail.finish()?;
    Ok(tensors)
}

/// Runs a v2 `infer` request: the reply's JSON and the binary data that follows it (empty
/// unless outputs were asked for as binary).
async fn v2_infer(
    app: &App,
    name: &str,
    sel: &VersionSel,
    body: &[u8],
    binary_header: Option<&str>,
) -> Result<(String, Vec<u8>), Status> {
    let (json_part, tail) = v2bin::split_body(body, binary_header)?;
    let req: Value = serde_json::from_slice(json_part)
        .map_err(|e| Status::invalid(format!("invalid JSON: {e}")))?;
    let sv = app
        .manager
        .find(name, sel)
        .map_err(|_| Status::not_found(format!("Model with name {name} does not exist.")))?;
    let sig_name = req["parameters"]["signature_name"]
        .as_str()
        .unwrap_or("serving_default")
        .to_string();
    let sig = sv.model.signature(&sig_name).map_err(|_| {
        Status::invalid(format!(
            "Serving signature name: \"{sig_name}\" not found in signature def"
        ))
    })?;
    let tensors = v2_decode_inputs(&req, sig.inputs(), app.limits(), tail)?;
    let out = app.predict(&sv, &sig_name, tensors, "infer").await?;
    let wanted: Option<Vec<&str>> = req["outputs"]
        .as_array()
        .map(|o| o.iter().filter_map(|x| x["name"].as_str()).collect());
    // Binary outputs: per output `binary_data`, else the request's `binary_data_output`.
    let all_binary = req["parameters"]["binary_data_output"].as_bool() == Some(true);
    let binary_out = |k: &str| {
        req["outputs"]
            .as_array()
            .and_then(|o| o.iter().find(|x| x["name"].as_str() == Some(k)))
            .and_then(|x| x["parameters"]["binary_data"].as_bool())
            .unwrap_or(all_binary)
    };
    let mut bin = Vec::new();
    let mut s = String::from("{");
    s.push_str(&format!(
        "\"model_name\": {}, \"model_version\": \"{}\"",
        Value::String(sv.name.clone()),
        sv.version
    ));
    if let Some(id) = req.get("id") {
        s.push_str(&format!(", \"id\": {id}"));
    }
    s.push_str(", \"outputs\": [");
    let selected: BTreeMap<&String, &Tensor> = out
        .iter()
        .filter(|(k, _)| wanted.as_ref().is_none_or(|w| w.contains(&k.as_str())))
        .collect();
    if let Some(w) = &wanted {
        if let Some(bad) = w.iter().find(|n| !out.contains_key(**n)) {
            return Err(Status::invalid(format!("unknown output {bad:?}")));
        }
    }
    for (i, (k, t)) in selected.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let dt = v2_datatype(t.dtype()).ok_or_else(|| {
            Status::invalid(format!(
                "output {k}: dtype {} has no v2 datatype",
                t.dtype()
            ))
        })?;
        s.push_str(&format!(
            "{{\"name\": {}, \"datatype\": \"{dt}\", \"shape\": {:?}, ",
            Value::String((*k).clone()),
            t.shape()
        ));
        if binary_out(k) {
            let before = bin.len();
            v2bin::tensor_to_raw(k, t, &mut bin)?;
            s.push_str(&format!(
                "\"parameters\": {{\"binary_data_size\": {}}}}}",
                bin.len() - before
            ));
            continue;
        }
        s.push_str("\"data\": ");
        let mut one = BTreeMap::new();
        let flat = (*t)
            .clone()
            .reshape(&[t.len()])
            .map_err(|e| Status::internal(e.to_string()))?;
        one.insert("x".to_string(), flat);
        let body = tfjson::encode_outputs(&one, tfjson::Format::Columnar)?;
        // `{"outputs": [...]}` → the list.
        s.push_str(&body["{\"outputs\": ".len()..body.len() - 1]);
        s.push('}');
    }
    s.push_str("]}");
    Ok((s, bin))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_grammar() {
        let g = Method::GET;
        let p = Method::POST;
        assert_eq!(
            parse_v1(&g, "/v1/models/m").unwrap(),
            V1::Status("m".into(), VersionSel::Latest)
        );
        assert_eq!(
            parse_v1(&g, "/v1/MODELS/m/Versions/7/metadata").unwrap(),
            V1::Metadata("m".into(), VersionSel::Number(7))
        );
        assert_eq!(
            parse_v1(&p, "/v1/models/a%20b/labels/canary:predict").unwrap(),
            V1::Call(
                "a b".into(),
                VersionSel::Label("canary".into()),
                "predict".into()
            )
        );
        assert!(parse_v1(&g, "/v1/models")
            .unwrap_err()
            .msg
            .contains("Missing model name"));
        assert!(parse_v1(&p, "/v1/models/x/version/1:predict")
            .unwrap_err()
            .msg
            .starts_with("Malformed"));
        assert!(parse_v1(&g, "/v1/models/x:predict").is_err());
        assert!(parse_v1(&p, "/v1/models/x/metadata").is_err());
        assert!(parse_v1(&Method::PUT, "/v1/models/x").is_err());
        assert!(parse_v1(&g, "/v1/models/x/versions/99999999999999999999").is_err());
    }
}

//! Load generator for `tfhub serve`: requests/s and p50/p99 latency at concurrency 1, 16 and
//! 64 over loopback REST (keep-alive HTTP/1.1, b1 `:predict` requests, each written with one
//! `write`) and gRPC (`Predict` over one HTTP/2 connection per client, the float input in
//! `tensor_content` as TF's `make_tensor_proto` sends it; the `TensorProto` is written here
//! with the crate's prost types, no gRPC stack), with and without `--enable_batching` (both
//! servers run side by side and take turns, so machine noise hits both alike), next to the
//! same call made in process (what `tfhub bench` times), so the difference is the server's
//! overhead. With batching, the mean executed batch size is read back from the server's
//! Prometheus page.
//!
//! `cargo bench --bench serve_load [-- --seconds=3 --models=nnlm,mobilenet --apis=rest,grpc
//! --concurrency=1,16,64 --rows=8,16 --batch_timeout_micros=0 --num_batch_threads=<cores>
//! --max_batch_size=64 --external=LABEL@REST_ADDR@GRPC_ADDR,...]`; `--rows` are the batch
//! sizes of the in-process reference calls.
//! The batching defaults follow TF Serving's defaults and batching guide (`num_batch_threads`
//! = cores; `batch_timeout_micros` 0, or slightly above, e.g. 1 ms, to smooth batch sizes).
//! Models: `nnlm` (tests/fixtures/nnlm_en_dim128, one sentence), `mobilenet`
//! (tests/fixtures/mobilenet_v2_small, one 96×96×3 float image) and `mobilenet224`
//! (`--mobilenet224_dir`, default /tmp/tfhub-bench/mobilenet_v2 from
//! `tools/make_bench_models.py --suite cnn`, one 224×224×3 float image).
//! `--external` drives already running servers instead (e.g. two `tfhub serve` binaries
//! serving the model as `m`, to compare builds in one run); they take turns per row.
//! A noisy, shared machine gives noisy numbers: report ratios from one run.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tfhub::serve::config::{BatchingParams, ModelConfig};
use tfhub::serve::{ServeOptions, Server};
use tfhub::Tensor;

struct Conn {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Conn {
    fn new(a: SocketAddr) -> Conn {
        let s = TcpStream::connect(a).expect("connect");
        s.set_nodelay(true).expect("nodelay");
        Conn {
            r: BufReader::new(s.try_clone().expect("clone")),
            w: s,
        }
    }

    /// One keep-alive POST; returns the status code.
    fn post(&mut self, path: &str, body: &[u8]) -> u16 {
        let mut req = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        // One write per request (two small writes with TCP_NODELAY would be two segments and
        // two server wake-ups, charged to the server).
        req.extend_from_slice(body);
        self.w.write_all(&req).expect("write");
        let mut line = String::new();
        self.r.read_line(&mut line).expect("status line");
        let code = line
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let mut len = 0;
        loop {
            line.clear();
            self.r.read_line(&mut line).expect("header");
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut buf = vec![0; len];
        self.r.read_exact(&mut buf).expect("body");
        code
    }
}

struct Stats {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
    errors: usize,
}

fn percentile(lat: &mut [f64], p: f64) -> f64 {
    lat.sort_by(f64::total_cmp);
    lat[((lat.len() as f64 - 1.0) * p).round() as usize]
}

/// One gRPC client: an HTTP/2 connection on its own single-threaded runtime.
struct GrpcConn {
    rt: tokio::runtime::Runtime,
    client: h2::client::SendRequest<bytes::Bytes>,
    uri: String,
}

impl GrpcConn {
    fn new(a: SocketAddr) -> GrpcConn {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let client = rt.block_on(async {
            let tcp = tokio::net::TcpStream::connect(a).await.expect("connect");
            tcp.set_nodelay(true).expect("nodelay");
            let (client, conn) = h2::client::handshake(tcp).await.expect("h2 handshake");
            tokio::spawn(async move {
                let _ = conn.await;
            });
            client
        });
        GrpcConn {
            rt,
            client,
            uri: format!("http://{a}/tensorflow.serving.PredictionService/Predict"),
        }
    }

    /// One unary call with an already framed message; returns the grpc-status.
    fn call(&mut self, framed: &bytes::Bytes) -> u32 {
        let client = self.client.clone();
        let uri = self.uri.clone();
        let framed = framed.clone();
        self.rt.block_on(async move {
            let mut client = client.ready().await.expect("h2 ready");
            let req = http::Request::builder()
                .method("POST")
                .uri(uri)
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .body(())
                .expect("request");
            let (resp, mut send) = client.send_request(req, false).expect("send");
            send.send_data(framed, true).expect("data");
            let mut body = resp.await.expect("response").into_body();
            while let Some(chunk) = body.data().await {
                let n = chunk.expect("data").len();
                let _ = body.flow_control().release_capacity(n);
            }
            let trailers = body.trailers().await.ok().flatten().unwrap_or_default();
            trailers
                .get("grpc-status")
                .and_then(|v| v.to_str().ok()?.parse().ok())
                .unwrap_or(99)
        })
    }
}

/// What the clients send: a REST body, or a framed gRPC `PredictRequest`.
#[derive(Clone)]
enum Load {
    Rest(Arc<Vec<u8>>),
    Grpc(bytes::Bytes),
}

fn run_load(a: SocketAddr, path: &str, load: Load, conc: usize, secs: f64) -> Stats {
    // Warm up each connection once.
    let start = Instant::now() + Duration::from_millis(200);
    let end = start + Duration::from_secs_f64(secs);
    let handles: Vec<_> = (0..conc)
        .map(|_| {
            let load = load.clone();
            let path = path.to_string();
            std::thread::spawn(move || {
                let mut one: Box<dyn FnMut() -> bool> = match load {
                    Load::Rest(body) => {
                        let mut c = Conn::new(a);
                        Box::new(move || c.post(&path, &body) == 200)
                    }
                    Load::Grpc(framed) => {
                        let mut c = GrpcConn::new(a);
                        Box::new(move || c.call(&framed) == 0)
                    }
                };
                one();
                let (mut lat, mut errors) = (Vec::new(), 0);
                while Instant::now() < start {
                    std::thread::sleep(Duration::from_millis(1));
                }
                while Instant::now() < end {
                    let t = Instant::now();
                    if !one() {
                        errors += 1;
                    }
                    lat.push(t.elapsed().as_secs_f64() * 1e6);
                }
                (lat, errors)
            })
        })
        .collect();
    let (mut lat, mut errors) = (Vec::new(), 0);
    for h in handles {
        let (l, e) = h.join().expect("load thread");
        lat.extend(l);
        errors += e;
    }
    Stats {
        rps: lat.len() as f64 / secs,
        p50_us: percentile(&mut lat, 0.5),
        p99_us: percentile(&mut lat, 0.99),
        errors,
    }
}

fn in_process(dir: &PathBuf, input: (&str, Tensor), secs: f64) -> (f64, f64) {
    let model = tfhub::load(dir).expect("load");
    let sig = model.signature("serving_default").expect("signature");
    let mut lat = Vec::new();
    sig.call([(input.0, input.1.clone())]).expect("call");
    let end = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < end {
        let t = Instant::now();
        sig.call([(input.0, input.1.clone())]).expect("call");
        lat.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let n = lat.len() as f64 / secs;
    (n, percentile(&mut lat, 0.5))
}

/// (sum, count) of the server's executed batch sizes so far.
fn batch_sizes(a: SocketAddr) -> (f64, f64) {
    let mut s = TcpStream::connect(a).expect("connect");
    s.write_all(
        b"GET /monitoring/prometheus/metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .expect("write");
    let mut page = String::new();
    let _ = s.read_to_string(&mut page);
    let read = |name: &str| -> f64 {
        page.lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    (
        read(":tfhub:serving:batch_size_sum"),
        read(":tfhub:serving:batch_size_count"),
    )
}

/// A framed gRPC `PredictRequest` for model `m` with one input.
fn grpc_request(key: &str, t: &Tensor) -> bytes::Bytes {
    use prost::Message as _;
    use tfhub::proto::serving::{ModelSpec, PredictRequest};
    use tfhub::proto::{tensor_shape_proto::Dim, TensorProto, TensorShapeProto};
    let mut tp = TensorProto {
        dtype: t.dtype().to_proto(),
        tensor_shape: Some(TensorShapeProto {
            dim: t
                .shape()
                .iter()
                .map(|&d| Dim {
                    size: d as i64,
                    name: String::new(),
                })
                .collect(),
            unknown_rank: false,
        }),
        ..TensorProto::default()
    };
    if let Ok(f) = t.as_slice::<f32>() {
        tp.tensor_content = f.iter().flat_map(|x| x.to_le_bytes()).collect();
    } else if let Ok(s) = t.as_slice::<tfhub::Bytes>() {
        tp.string_val = s.iter().map(|b| b.to_vec()).collect();
    }
    let msg = PredictRequest {
        model_spec: Some(ModelSpec {
            name: "m".into(),
            ..ModelSpec::default()
        }),
        inputs: [(key.to_string(), tp)].into_iter().collect(),
        ..PredictRequest::default()
    }
    .encode_to_vec();
    let mut framed = vec![0u8];
    framed.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    framed.extend_from_slice(&msg);
    framed.into()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |k: &str| {
        args.iter()
            .find_map(|a| a.strip_prefix(&format!("--{k}=")).map(str::to_string))
    };
    let num = |k: &str, d: usize| arg(k).and_then(|s| s.parse().ok()).unwrap_or(d);
    let secs: f64 = arg("seconds").and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let which = arg("models").unwrap_or_else(|| "nnlm,mobilenet".into());
    let apis = arg("apis").unwrap_or_else(|| "rest,grpc".into());
    let concs: Vec<usize> = arg("concurrency")
        .unwrap_or_else(|| "1,16,64".into())
        .split(',')
        .map(|c| c.parse().expect("--concurrency=1,16,64"))
        .collect();
    let batch_rows: Vec<usize> = arg("rows")
        .unwrap_or_else(|| "8,16".into())
        .split(',')
        .map(|c| c.parse().expect("--rows=8,16"))
        .collect();
    let params = BatchingParams {
        max_batch_size: num("max_batch_size", 64),
        batch_timeout_micros: num("batch_timeout_micros", 0) as u64,
        max_enqueued_batches: 1000,
        num_batch_threads: num(
            "num_batch_threads",
            BatchingParams::default().num_batch_threads,
        ),
        ..BatchingParams::default()
    };
    let fx = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    // LABEL@REST_ADDR@GRPC_ADDR, comma-separated.
    let externals: Vec<(String, SocketAddr, SocketAddr)> = arg("external")
        .map(|e| {
            e.split(',')
                .map(|one| {
                    let p: Vec<&str> = one.split('@').collect();
                    assert!(p.len() == 3, "--external=LABEL@REST_ADDR@GRPC_ADDR,...");
                    let addr = |s: &str| s.parse().expect("--external: host:port");
                    (p[0].to_string(), addr(p[1]), addr(p[2]))
                })
                .collect()
        })
        .unwrap_or_default();
    println!(
        "batching: max_batch_size {} batch_timeout_micros {} num_batch_threads {}",
        params.max_batch_size, params.batch_timeout_micros, params.num_batch_threads
    );
    println!(
        "| model | api | server | concurrency | req/s | p50 µs | p99 µs | errors | mean batch |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for name in which.split(',') {
        let (dir, key, body, tensor) = match name {
            "nnlm" => (
                fx.join("nnlm_en_dim128"),
                "sentences",
                json!({"instances": ["the quick brown fox jumps over the lazy dog"]}),
                Tensor::from_strings(&[1], ["the quick brown fox jumps over the lazy dog"])
                    .expect("tensor"),
            ),
            "mobilenet" | "mobilenet224" => {
                let (dir, hw) = if name == "mobilenet" {
                    (fx.join("mobilenet_v2_small"), 96)
                } else {
                    let d = arg("mobilenet224_dir")
                        .unwrap_or_else(|| "/tmp/tfhub-bench/mobilenet_v2".into());
                    (PathBuf::from(d), 224)
                };
                let img: Vec<f32> = (0..hw * hw * 3)
                    .map(|i| ((i % 255) as f32) / 255.0)
                    .collect();
                let nested: Vec<Vec<Vec<f32>>> = img
                    .chunks(hw * 3)
                    .map(|row| row.chunks(3).map(<[f32]>::to_vec).collect())
                    .collect();
                (
                    dir,
                    "keras_tensor",
                    json!({"instances": [nested]}),
                    Tensor::from_vec(&[1, hw, hw, 3], img).expect("tensor"),
                )
            }
            other => panic!("unknown model {other}"),
        };
        let framed = grpc_request(key, &tensor);
        let (ips, ip50) = in_process(&dir, (key, tensor.clone()), secs);
        println!("| {name} | in-process call | | 1 | {ips:.0} | {ip50:.0} | | | |");
        // What batching can gain at most: one thread, rows/s of one call on 8 or 16 rows.
        for &rows in &batch_rows {
            let mut shape = tensor.shape().to_vec();
            shape[0] = rows;
            let big = if let Ok(f) = tensor.as_slice::<f32>() {
                Tensor::from_vec(&shape, f.repeat(rows)).expect("tensor")
            } else {
                let s = tensor.as_slice::<tfhub::Bytes>().expect("strings");
                Tensor::from_vec(
                    &shape,
                    s.iter().cycle().take(rows * s.len()).cloned().collect(),
                )
                .expect("tensor")
            };
            let (bps, bp50) = in_process(&dir, (key, big), secs);
            println!(
                "| {name} | in-process call, b{rows} | | 1 | {:.0} rows/s | {bp50:.0} | | | |",
                bps * rows as f64
            );
        }
        let body = Arc::new(body.to_string().into_bytes());
        // (label, rest, grpc, batching?, in-process server to stop at the end)
        let mut servers: Vec<(String, SocketAddr, SocketAddr, bool, Option<Server>)> = Vec::new();
        if externals.is_empty() {
            for batching in [false, true] {
                let opts = ServeOptions {
                    grpc_port: Some(0),
                    rest_port: Some(0),
                    bind: [127, 0, 0, 1].into(),
                    models: vec![ModelConfig::single("m", dir.to_str().expect("utf-8 path"))],
                    poll_wait: None,
                    max_queued: 10_000,
                    batching: batching.then(|| params.clone()),
                    ..ServeOptions::default()
                };
                let srv = Server::start(opts).expect("server");
                let a = srv.rest_addr().expect("rest");
                let g = srv.grpc_addr().expect("grpc");
                let label = if batching { "on" } else { "off" };
                servers.push((label.into(), a, g, batching, Some(srv)));
            }
        } else {
            for (label, a, g) in &externals {
                servers.push((label.clone(), *a, *g, true, None));
            }
        }
        for api in apis.split(',') {
            for &conc in &concs {
                for (label, a, g, batching, _) in &servers {
                    let (addr, load) = match api {
                        "rest" => (*a, Load::Rest(body.clone())),
                        "grpc" => (*g, Load::Grpc(framed.clone())),
                        other => panic!("unknown api {other}"),
                    };
                    let before = batch_sizes(*a);
                    let s = run_load(addr, "/v1/models/m:predict", load, conc, secs);
                    let after = batch_sizes(*a);
                    let mean = if *batching && after.1 > before.1 {
                        format!("{:.1}", (after.0 - before.0) / (after.1 - before.1))
                    } else {
                        String::new()
                    };
                    println!(
                        "| {name} | {api} | {label} | {conc} | {:.0} | {:.0} | {:.0} | {} | {mean} |",
                        s.rps, s.p50_us, s.p99_us, s.errors
                    );
                }
            }
        }
        for (.., srv) in servers {
            if let Some(srv) = srv {
                srv.shutdown();
            }
        }
    }
}

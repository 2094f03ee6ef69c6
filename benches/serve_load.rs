//! Load generator for `tfhub serve`: requests/s and p50/p99 latency at concurrency 1, 16 and
//! 64 over loopback REST (keep-alive HTTP/1.1, b1 `:predict` requests), with and without
//! `--enable_batching`, next to the same call made in process (what `tfhub bench` times), so
//! the difference is the server's overhead.
//!
//! `cargo bench --bench serve_load [-- --seconds=3 --models=nnlm,mobilenet]`
//! Models: `nnlm` (tests/fixtures/nnlm_en_dim128, one sentence) and `mobilenet`
//! (tests/fixtures/mobilenet_v2_small, one 96×96×3 float image). A noisy, shared machine gives
//! noisy numbers: report ratios from one run.

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
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        self.w.write_all(head.as_bytes()).expect("write");
        self.w.write_all(body).expect("write");
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

fn run_load(a: SocketAddr, path: &str, body: Arc<Vec<u8>>, conc: usize, secs: f64) -> Stats {
    // Warm up each connection once.
    let start = Instant::now() + Duration::from_millis(200);
    let end = start + Duration::from_secs_f64(secs);
    let handles: Vec<_> = (0..conc)
        .map(|_| {
            let body = body.clone();
            let path = path.to_string();
            std::thread::spawn(move || {
                let mut c = Conn::new(a);
                c.post(&path, &body);
                let (mut lat, mut errors) = (Vec::new(), 0);
                while Instant::now() < start {
                    std::thread::sleep(Duration::from_millis(1));
                }
                while Instant::now() < end {
                    let t = Instant::now();
                    if c.post(&path, &body) != 200 {
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

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |k: &str| {
        args.iter()
            .find_map(|a| a.strip_prefix(&format!("--{k}=")).map(str::to_string))
    };
    let secs: f64 = arg("seconds").and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let which = arg("models").unwrap_or_else(|| "nnlm,mobilenet".into());
    let fx = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    println!("| model | batching | concurrency | req/s | p50 µs | p99 µs | errors |");
    println!("|---|---|---|---|---|---|---|");
    for name in which.split(',') {
        let (dir, key, body, tensor) = match name {
            "nnlm" => (
                fx.join("nnlm_en_dim128"),
                "sentences",
                json!({"instances": ["the quick brown fox jumps over the lazy dog"]}),
                Tensor::from_strings(&[1], ["the quick brown fox jumps over the lazy dog"])
                    .expect("tensor"),
            ),
            "mobilenet" => {
                let img: Vec<f32> = (0..96 * 96 * 3)
                    .map(|i| ((i % 255) as f32) / 255.0)
                    .collect();
                let nested: Vec<Vec<Vec<f32>>> = img
                    .chunks(96 * 3)
                    .map(|row| row.chunks(3).map(<[f32]>::to_vec).collect())
                    .collect();
                (
                    fx.join("mobilenet_v2_small"),
                    "keras_tensor",
                    json!({"instances": [nested]}),
                    Tensor::from_vec(&[1, 96, 96, 3], img).expect("tensor"),
                )
            }
            other => panic!("unknown model {other}"),
        };
        let (ips, ip50) = in_process(&dir, (key, tensor), secs);
        println!("| {name} | in-process call | 1 | {ips:.0} | {ip50:.0} | | |");
        let body = Arc::new(body.to_string().into_bytes());
        for batching in [false, true] {
            let opts = ServeOptions {
                grpc_port: None,
                rest_port: Some(0),
                bind: [127, 0, 0, 1].into(),
                models: vec![ModelConfig::single("m", dir.to_str().expect("utf-8 path"))],
                poll_wait: None,
                max_queued: 10_000,
                batching: batching.then(|| BatchingParams {
                    max_batch_size: 64,
                    batch_timeout_micros: 0,
                    max_enqueued_batches: 1000,
                    ..BatchingParams::default()
                }),
                ..ServeOptions::default()
            };
            let srv = Server::start(opts).expect("server");
            let a = srv.rest_addr().expect("rest");
            for conc in [1, 16, 64] {
                let s = run_load(a, "/v1/models/m:predict", body.clone(), conc, secs);
                println!(
                    "| {name} | {} | {conc} | {:.0} | {:.0} | {:.0} | {} |",
                    if batching { "on" } else { "off" },
                    s.rps,
                    s.p50_us,
                    s.p99_us,
                    s.errors
                );
            }
            srv.shutdown();
        }
    }
}

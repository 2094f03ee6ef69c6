//! `tfhub serve`: TensorFlow Serving's model server API (REST `/v1`, gRPC
//! `tensorflow.serving.PredictionService` / `ModelService`) and KServe's Open Inference
//! Protocol v2 REST, over the public model API only (`Model`, `Signature`, `Tensor`).
//!
//! Map: [`flags`] (tensorflow_model_server's command line), [`config`] (text-format configs),
//! [`models`] (version lifecycle), [`batch`] (dynamic batching), [`tfjson`] (TF's JSON
//! tensor mapping), `rest` (HTTP routes), `grpc` (gRPC framed by hand over h2),
//! [`metrics`] (Prometheus page, structured logs), [`status`] (codes).
//!
//! Key decisions: hyper + tokio (already in the tree through reqwest) rather than
//! axum/tonic, to keep the build lean; model calls run off the async threads (a bounded
//! blocking pool, or the batching pool), so a slow model never stalls I/O, except unbatched
//! calls measured to take under 200 µs, which run inline (two thread hand-offs would cost
//! more than the call); every request
//! holds an `Arc` of the version it resolved, which makes version swaps free of failures.

pub mod batch;
pub mod config;
pub mod flags;
mod grpc;
pub mod metrics;
pub mod models;
mod rest;
pub mod status;
pub mod tfjson;
mod v2bin;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;

pub use flags::ServeOptions;
use metrics::{log, Metrics};
use models::{Manager, Servable};
use status::{Code, Status};

use crate::api::LoadOptions;
use crate::tensor::Tensor;

/// The request decoders, reachable for the fuzz targets (`tfhub::fuzzing::serve_*`): each
/// takes the bytes a client sent and the signature's input specs, and returns the tensors the
/// server would feed, or the status it would answer. Not a stable API.
#[doc(hidden)]
pub mod decode {
    use prost::Message as _;

    use super::status::Status;
    use super::tfjson::{self, DecodeLimits};
    use crate::api::TensorSpec;
    use crate::tensor::Tensor;

    /// A REST `/v1/...:predict` body (row or columnar format).
    ///
    /// # Panics
    /// When the dense decoder (tried against each float input alone, as the server would for
    /// a single-input signature) accepts a body and disagrees with the general decoder: the
    /// fuzzer's oracle for the fast path.
    pub fn rest_predict(
        body: &[u8],
        specs: &[TensorSpec],
        lim: DecodeLimits,
    ) -> Result<Vec<(String, Tensor)>, Status> {
        for spec in specs {
            let one = std::slice::from_ref(spec);
            let Some(fast) = tfjson::parse_predict_dense(body, lim.max_elements)
                .and_then(|d| d.into_inputs(one, lim))
            else {
                continue;
            };
            let slow = tfjson::parse_predict(body)
                .and_then(|r| tfjson::decode_inputs(&r, one, lim))
                .expect("the general decoder accepts what the dense one accepts");
            let same = |a: &Tensor, b: &Tensor| {
                a.dtype() == b.dtype()
                    && a.shape() == b.shape()
                    && match (a.as_slice::<f32>(), b.as_slice::<f32>()) {
                        (Ok(x), Ok(y)) => x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits()),
                        _ => a
                            .as_slice::<f64>()
                            .ok()
                            .zip(b.as_slice::<f64>().ok())
                            .is_some_and(|(x, y)| {
                                x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits())
                            }),
                    }
            };
            assert!(
                fast.len() == slow.len()
                    && fast
                        .iter()
                        .zip(&slow)
                        .all(|(a, b)| a.0 == b.0 && same(&a.1, &b.1)),
                "dense and general JSON decoders disagree"
            );
        }
        let req = tfjson::parse_predict(body)?;
        tfjson::decode_inputs(&req, specs, lim)
    }

    /// A KServe v2 `/v2/models/{name}/infer` body: JSON up to its last `}`, then the
    /// binary tensor data (as `Inference-Header-Content-Length` would split it).
    pub fn v2_infer(
        body: &[u8],
        specs: &[TensorSpec],
        lim: DecodeLimits,
    ) -> Result<Vec<(String, Tensor)>, Status> {
        let split = body.iter().rposition(|&b| b == b'}').map_or(0, |i| i + 1);
        let (json, tail) = body.split_at(split);
        let req: serde_json::Value = serde_json::from_slice(json)
            .map_err(|e| Status::invalid(format!("invalid JSON: {e}")))?;
        super::rest::v2_decode_inputs(&req, specs, lim, tail)
    }

    /// A gRPC `Predict` call's body: the length-prefixed frame, the `PredictRequest` and its
    /// `TensorProto` inputs.
    pub fn grpc_predict(body: &[u8], lim: DecodeLimits) -> Result<Vec<(String, Tensor)>, Status> {
        let msg = super::grpc::unframe(body)?;
        let req = crate::proto::serving::PredictRequest::decode(msg)
            .map_err(|e| Status::invalid(format!("cannot decode PredictRequest: {e}")))?;
        req.inputs
            .iter()
            .map(|(k, tp)| Ok((k.clone(), super::grpc::from_proto(tp, lim.max_elements)?)))
            .collect()
    }

    /// A reply tensor as gRPC sends it.
    pub fn to_proto(t: &Tensor) -> Result<crate::proto::TensorProto, Status> {
        super::grpc::to_proto(t)
    }
}

/// Unbatched calls estimated to take at most this long run inline on the I/O thread.
const INLINE_CALL_BELOW: Duration = Duration::from_micros(200);

/// State shared by every connection.
#[derive(Debug)]
pub(crate) struct App {
    pub manager: Arc<Manager>,
    pub metrics: Arc<Metrics>,
    pub opts: ServeOptions,
    /// Unbatched requests admitted (running or waiting for a compute slot).
    admitted: AtomicUsize,
    compute: tokio::sync::Semaphore,
    pub draining: AtomicBool,
}

struct Admitted<'a>(&'a AtomicUsize);
impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl App {
    pub fn limits(&self) -> tfjson::DecodeLimits {
        tfjson::DecodeLimits {
            max_elements: self.opts.max_tensor_elements,
        }
    }

    /// Runs `signature` of `sv` on `inputs` (any order; names must match exactly), batched
    /// when batching is on, else on the bounded blocking pool.
    pub async fn predict(
        &self,
        sv: &Arc<Servable>,
        signature: &str,
        mut inputs: Vec<(String, Tensor)>,
        api: &str,
    ) -> Result<BTreeMap<String, Tensor>, Status> {
        let sig = sv.model.signature(signature).map_err(|_| {
            Status::invalid(format!(
                "Serving signature name: \"{signature}\" not found in signature def"
            ))
        })?;
        let want: Vec<&str> = sig.inputs().iter().map(|s| s.key.as_str()).collect();
        let extra: Vec<&str> = inputs
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| !want.contains(k))
            .collect();
        let missing: Vec<&str> = want
            .iter()
            .copied()
            .filter(|w| !inputs.iter().any(|(k, _)| k == w))
            .collect();
        if !extra.is_empty() || !missing.is_empty() || inputs.len() != want.len() {
            return Err(Status::invalid(format!(
                "input size does not match signature: {}!={} len({{{}}}). Sent extra: {{{}}}. \
                 Missing but required: {{{}}}.",
                inputs.len(),
                want.len(),
                want.join(","),
                extra.join(","),
                missing.join(",")
            )));
        }
        inputs.sort_by_key(|(k, _)| want.iter().position(|w| w == k));
        self.metrics.served(&sv.name, sv.version, signature);
        let t0 = Instant::now();
        let out = if let Some(b) = sv.batcher(signature) {
            let rx = b.submit(inputs.into_iter().map(|(_, t)| t).collect())?;
            rx.await
                .map_err(|_| Status::internal("batch execution failed"))??
        } else {
            let n = self.admitted.fetch_add(1, Ordering::SeqCst);
            let _guard = Admitted(&self.admitted);
            if n >= self.opts.max_concurrent + self.opts.max_queued {
                return Err(Status::exhausted(format!(
                    "server is at capacity: {} requests running or queued",
                    n
                )));
            }
            let _permit = self
                .compute
                .acquire()
                .await
                .map_err(|_| Status::new(Code::Unavailable, "server is shutting down"))?;
            let units = models::input_units(&inputs);
            let sv2 = sv.clone();
            let name = signature.to_string();
            let call = move || {
                let t = Instant::now();
                let sig = sv2.model.signature(&name).map_err(Status::from)?;
                let r = sig.call(inputs).map_err(Status::from);
                sv2.record_call(units, t.elapsed());
                r
            };
            // A call known to be short runs right here on the I/O thread: handing it to the
            // blocking pool and back costs two thread wake-ups, several times the call itself
            // for a small text model. Anything slower (or not measured yet) stays off the I/O
            // threads, so it cannot stall other connections.
            if sv
                .estimated_call(units)
                .is_some_and(|d| d <= INLINE_CALL_BELOW)
            {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(call))
                    .unwrap_or_else(|_| Err(Status::internal("model call panicked")))?
            } else {
                tokio::task::spawn_blocking(call)
                    .await
                    .map_err(|e| Status::internal(format!("model call failed: {e}")))??
            }
        };
        self.metrics.runtime(&sv.name, api, t0.elapsed());
        Ok(out)
    }

    /// `fut` under the request deadline (`--rest_api_timeout_in_ms`, or the client's).
    pub async fn with_deadline<T>(
        &self,
        deadline: Option<Duration>,
        fut: impl std::future::Future<Output = Result<T, Status>>,
    ) -> Result<T, Status> {
        match deadline.or(self.opts.timeout) {
            None => fut.await,
            Some(d) => tokio::time::timeout(d, fut)
                .await
                .unwrap_or_else(|_| Err(Status::new(Code::DeadlineExceeded, "Deadline Exceeded"))),
        }
    }
}

/// A running server: models loaded, ports bound, serving on its own runtime.
#[derive(Debug)]
pub struct Server {
    rest: Option<SocketAddr>,
    grpc: Option<SocketAddr>,
    stop: tokio::sync::watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
    poller: Option<std::thread::JoinHandle<()>>,
    app: Arc<App>,
}

impl Server {
    /// Loads the initial versions (like TF, ports open only after that), binds the ports and
    /// starts serving in background threads.
    ///
    /// # Errors
    /// A version that fails to load at startup, a port that cannot be bound.
    pub fn start(opts: ServeOptions) -> Result<Server, String> {
        let metrics = Arc::new(Metrics::default());
        let pool = opts
            .batching
            .clone()
            .map(|b| batch::Pool::new(b, opts.max_tensor_elements));
        let load = LoadOptions {
            tags: opts.tags.clone(),
            ..LoadOptions::default()
        };
        let manager = Manager::new(opts.models.clone(), load, pool, metrics.clone());
        manager.initial_load()?;
        let poller = manager.spawn_poller(opts.poll_wait);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4)))
            .max_blocking_threads(opts.max_concurrent.max(1) + 4)
            .thread_name("serve-io")
            .enable_all()
            .build()
            .map_err(|e| format!("tokio runtime: {e}"))?;
        let bind = |port: u16| -> Result<std::net::TcpListener, String> {
            let l = std::net::TcpListener::bind((opts.bind, port))
                .map_err(|e| format!("cannot bind {}:{port}: {e}", opts.bind))?;
            l.set_nonblocking(true).map_err(|e| e.to_string())?;
            Ok(l)
        };
        let rest_l = opts.rest_port.map(bind).transpose()?;
        let grpc_l = opts.grpc_port.map(bind).transpose()?;
        let rest = rest_l.as_ref().and_then(|l| l.local_addr().ok());
        let grpc = grpc_l.as_ref().and_then(|l| l.local_addr().ok());
        let app = Arc::new(App {
            manager,
            metrics,
            compute: tokio::sync::Semaphore::new(opts.max_concurrent.max(1)),
            admitted: AtomicUsize::new(0),
            opts,
            draining: AtomicBool::new(false),
        });
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let app2 = app.clone();
        let thread = std::thread::Builder::new()
            .name("serve".into())
            .spawn(move || rt.block_on(serve(app2, rest_l, grpc_l, stop_rx)))
            .map_err(|e| e.to_string())?;
        log(
            "info",
            "serving",
            &[
                ("rest", json!(rest.map(|a| a.to_string()))),
                ("grpc", json!(grpc.map(|a| a.to_string()))),
            ],
        );
        Ok(Server {
            rest,
            grpc,
            stop,
            thread: Some(thread),
            poller,
            app,
        })
    }

    /// The bound REST address.
    pub fn rest_addr(&self) -> Option<SocketAddr> {
        self.rest
    }

    /// The bound gRPC address.
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc
    }

    /// Stops accepting, waits for in-flight requests (up to `--drain_timeout_seconds`), stops
    /// the poller.
    pub fn shutdown(mut self) {
        self.app.draining.store(true, Ordering::SeqCst);
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.app.manager.stop();
        if let Some(p) = self.poller.take() {
            let _ = p.join();
        }
        log("info", "stopped", &[]);
    }

    /// Serves until SIGINT or SIGTERM, then shuts down gracefully.
    pub fn run_until_signal(self) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime for signals");
        rt.block_on(async {
            #[cfg(unix)]
            {
                use tokio::signal::unix::{signal, SignalKind};
                match signal(SignalKind::terminate()) {
                    Ok(mut term) => {
                        tokio::select! {
                            _ = tokio::signal::ctrl_c() => {}
                            _ = term.recv() => {}
                        }
                    }
                    Err(_) => {
                        let _ = tokio::signal::ctrl_c().await;
                    }
                }
            }
            #[cfg(not(unix))]
            {
                let _ = tokio::signal::ctrl_c().await;
            }
        });
        log("info", "signal received; draining", &[]);
        self.shutdown();
    }
}

async fn serve(
    app: Arc<App>,
    rest: Option<std::net::TcpListener>,
    grpc: Option<std::net::TcpListener>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let graceful = Arc::new(hyper_util::server::graceful::GracefulShutdown::new());
    // Every gRPC connection task holds a clone of `grpc_done`; the channel closes once the
    // last one has drained.
    let (grpc_done, mut grpc_drained) = tokio::sync::mpsc::channel::<()>(1);
    let mut tasks = Vec::new();
    if let Some(l) = rest {
        tasks.push(tokio::spawn(accept_loop(
            app.clone(),
            l,
            false,
            stop.clone(),
            graceful.clone(),
            grpc_done.clone(),
        )));
    }
    if let Some(l) = grpc {
        tasks.push(tokio::spawn(accept_loop(
            app.clone(),
            l,
            true,
            stop.clone(),
            graceful.clone(),
            grpc_done.clone(),
        )));
    }
    drop(grpc_done);
    for t in tasks {
        let _ = t.await;
    }
    let graceful = Arc::try_unwrap(graceful).unwrap_or_default();
    let drained = async {
        graceful.shutdown().await;
        while grpc_drained.recv().await.is_some() {}
    };
    if tokio::time::timeout(app.opts.drain_timeout, drained)
        .await
        .is_err()
    {
        log(
            "warn",
            "drain timeout: closing connections with requests in flight",
            &[],
        );
    }
}

async fn accept_loop(
    app: Arc<App>,
    listener: std::net::TcpListener,
    grpc: bool,
    mut stop: tokio::sync::watch::Receiver<bool>,
    graceful: Arc<hyper_util::server::graceful::GracefulShutdown>,
    grpc_done: tokio::sync::mpsc::Sender<()>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            log("error", "listener", &[("error", json!(e.to_string()))]);
            return;
        }
    };
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder.http2().max_concurrent_streams(1024);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stop.changed() => break,
        };
        let (stream, _) = match accepted {
            Ok(s) => s,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                log("warn", "accept failed", &[("error", json!(e.to_string()))]);
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        if grpc {
            let (stop, done) = (stop.clone(), grpc_done.clone());
            tokio::spawn(async move {
                grpc::serve_conn(app, stream, stop).await;
                drop(done);
            });
            continue;
        }
        let io = TokioIo::new(stream);
        let svc = hyper::service::service_fn(move |req| {
            let app = app.clone();
            async move { Ok::<_, std::convert::Infallible>(rest::handle(app, req).await) }
        });
        let c = builder.serve_connection(io, svc).into_owned();
        let w = graceful.watch(c);
        tokio::spawn(async move {
            let _ = w.await;
        });
    }
}

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
//! axum/tonic, to keep the build lean; each accepted connection lives on one of a few I/O
//! threads (a single-threaded runtime each, connections dealt round-robin), so a request
//! is read, run and answered on one thread with no cross-thread wake-up; model calls run
//! off the I/O threads (a bounded blocking pool, or the batching pool), so a slow model
//! never stalls I/O, except unbatched calls measured to take under 200 µs, which run inline
//! (two thread hand-offs would cost more than the call); every request holds an `Arc` of
//! the version it resolved, which makes version swaps free of failures.

pub mod batch;
pub mod config;
pub mod flags;
mod grpc;
pub mod metrics;
pub mod models;
mod rest;
pub mod status;
pub mod tfjson;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
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

    /// A KServe v2 `/v2/models/{name}/infer` body.
    pub fn v2_infer(
        body: &[u8],
        specs: &[TensorSpec],
        lim: DecodeLimits,
    ) -> Result<Vec<(String, Tensor)>, Status> {
        let req: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| Status::invalid(format!("invalid JSON: {e}")))?;
        super::rest::v2_decode_inputs(&req, specs, lim)
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
    /// The multi-threaded runtime: the accept loops, and the gRPC streams a connection
    /// multiplexes beyond the one it runs inline (so they run in parallel on every core,
    /// not only on their connection's I/O thread).
    pub(crate) main_rt: tokio::runtime::Handle,
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
        let pool = opts.batching.clone().map(batch::Pool::new);
        let load = LoadOptions {
            tags: opts.tags.clone(),
            ..LoadOptions::default()
        };
        let manager = Manager::new(opts.models.clone(), load, pool, metrics.clone());
        manager.initial_load()?;
        let poller = manager.spawn_poller(opts.poll_wait);
        let io_threads = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(io_threads)
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
            main_rt: rt.handle().clone(),
        });
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let app2 = app.clone();
        let shared = Arc::new(ConnShared {
            graceful: std::sync::Mutex::new(Some(
                hyper_util::server::graceful::GracefulShutdown::new(),
            )),
            stop: stop_rx.clone(),
        });
        let shards = (0..io_threads)
            .map(|i| Shard::start(i, app.clone(), shared.clone()))
            .collect::<Result<Vec<_>, String>>()?;
        let thread = std::thread::Builder::new()
            .name("serve".into())
            .spawn(move || {
                let (senders, threads): (Vec<_>, Vec<_>) =
                    shards.into_iter().map(|s| (s.conns, s.thread)).unzip();
                rt.block_on(serve(app2, rest_l, grpc_l, stop_rx, senders, shared));
                for t in threads {
                    let _ = t.join();
                }
            })
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

/// What every connection task shares: hyper's graceful-shutdown watcher (REST) and the stop
/// signal (gRPC).
struct ConnShared {
    /// Taken by [`serve`] when it starts the graceful shutdown.
    graceful: std::sync::Mutex<Option<hyper_util::server::graceful::GracefulShutdown>>,
    stop: tokio::sync::watch::Receiver<bool>,
}

/// Spawns hyper's HTTP/2 stream tasks on the multi-threaded runtime.
#[derive(Clone)]
struct MainExecutor(tokio::runtime::Handle);

impl<F> hyper::rt::Executor<F> for MainExecutor
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        self.0.spawn(fut);
    }
}

/// An accepted connection on its way to an I/O thread: (socket, is it the gRPC port).
type Accepted = (std::net::TcpStream, bool);

/// One I/O thread: a single-threaded tokio runtime that serves the connections handed to
/// it. The connections are spread over the threads round-robin at accept time and stay
/// there: a request's read, its short inline model call and its reply all happen on one
/// thread. On the multi-threaded runtime the worker that took a socket event also woke a
/// sibling worker (an eventfd write and a wake-up on another core, per request, for tokio's
/// work stealing), which was the largest part of the REST path's remaining overhead at
/// concurrency 1.
struct Shard {
    conns: tokio::sync::mpsc::UnboundedSender<Accepted>,
    thread: std::thread::JoinHandle<()>,
}

impl Shard {
    fn start(i: usize, app: Arc<App>, shared: Arc<ConnShared>) -> Result<Shard, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .max_blocking_threads(app.opts.max_concurrent.max(1) + 4)
            .enable_all()
            .build()
            .map_err(|e| format!("tokio runtime: {e}"))?;
        let (conns, mut rx) = tokio::sync::mpsc::unbounded_channel::<Accepted>();
        let thread = std::thread::Builder::new()
            .name(format!("serve-io-{i}"))
            .spawn(move || {
                rt.block_on(async move {
                    // HTTP/2 streams (h2c on the REST port) go to the multi-threaded runtime,
                    // so one connection's streams still run on every core.
                    let mut builder = hyper_util::server::conn::auto::Builder::new(
                        MainExecutor(app.main_rt.clone()),
                    );
                    builder.http2().max_concurrent_streams(1024);
                    let mut running = tokio::task::JoinSet::new();
                    loop {
                        tokio::select! {
                            c = rx.recv() => {
                                let Some((std_stream, grpc)) = c else { break };
                                let stream = match tokio::net::TcpStream::from_std(std_stream) {
                                    Ok(s) => s,
                                    Err(e) => {
                                        log("warn", "connection", &[("error", json!(e.to_string()))]);
                                        continue;
                                    }
                                };
                                let app = app.clone();
                                if grpc {
                                    let stop = shared.stop.clone();
                                    running.spawn(grpc::serve_conn(app, stream, stop));
                                    continue;
                                }
                                let svc = hyper::service::service_fn(move |req| {
                                    let app = app.clone();
                                    async move {
                                        Ok::<_, std::convert::Infallible>(rest::handle(app, req).await)
                                    }
                                });
                                let c = builder.serve_connection(TokioIo::new(stream), svc).into_owned();
                                let watcher = shared
                                    .graceful
                                    .lock()
                                    .ok()
                                    .and_then(|g| g.as_ref().map(|g| g.watcher()));
                                match watcher {
                                    Some(w) => {
                                        running.spawn(async move {
                                            let _ = w.watch(c).await;
                                        });
                                    }
                                    // Accepted just before the shutdown started: serve what
                                    // the client already sent, then close.
                                    None => {
                                        running.spawn(async move {
                                            let mut c = std::pin::pin!(c);
                                            c.as_mut().graceful_shutdown();
                                            let _ = c.await;
                                        });
                                    }
                                }
                            }
                            Some(_) = running.join_next(), if !running.is_empty() => {}
                        }
                    }
                    // The accept loops have stopped: let this thread's connections finish
                    // (REST ones were told to by the graceful shutdown, gRPC ones by `stop`).
                    let drain = async { while running.join_next().await.is_some() {} };
                    let _ = tokio::time::timeout(app.opts.drain_timeout, drain).await;
                });
            })
            .map_err(|e| e.to_string())?;
        Ok(Shard { conns, thread })
    }
}

async fn serve(
    app: Arc<App>,
    rest: Option<std::net::TcpListener>,
    grpc: Option<std::net::TcpListener>,
    stop: tokio::sync::watch::Receiver<bool>,
    shards: Vec<tokio::sync::mpsc::UnboundedSender<Accepted>>,
    shared: Arc<ConnShared>,
) {
    let shards = Arc::new(shards);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for (l, grpc) in [(rest, false), (grpc, true)] {
        if let Some(l) = l {
            tasks.push(tokio::spawn(accept_loop(
                l,
                grpc,
                stop.clone(),
                shards.clone(),
                next.clone(),
            )));
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    // Closing the channels tells each I/O thread to drain its connections and exit.
    drop(shards);
    let graceful = shared.graceful.lock().ok().and_then(|mut g| g.take());
    if let Some(graceful) = graceful {
        if tokio::time::timeout(app.opts.drain_timeout, graceful.shutdown())
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
}

async fn accept_loop(
    listener: std::net::TcpListener,
    grpc: bool,
    mut stop: tokio::sync::watch::Receiver<bool>,
    shards: Arc<Vec<tokio::sync::mpsc::UnboundedSender<Accepted>>>,
    next: Arc<AtomicUsize>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            log("error", "listener", &[("error", json!(e.to_string()))]);
            return;
        }
    };
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
        let Ok(stream) = stream.into_std() else {
            continue;
        };
        let i = next.fetch_add(1, Ordering::Relaxed) % shards.len().max(1);
        if let Some(tx) = shards.get(i) {
            let _ = tx.send((stream, grpc));
        }
    }
}

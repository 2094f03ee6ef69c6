//! TF Serving's gRPC API, framed by hand over h2 (HTTP/2 with prior knowledge, h2c): unary
//! calls are one length-prefixed protobuf message each way plus `grpc-status`/`grpc-message`
//! trailers, which is all TF Serving's services use, so tonic's stack is not needed.
//!
//! Served: `tensorflow.serving.PredictionService/{Predict, GetModelMetadata}` and
//! `tensorflow.serving.ModelService/GetModelStatus`. `Classify`, `Regress`,
//! `MultiInference` and `HandleReloadConfigRequest` answer UNIMPLEMENTED by name.
//! Tensors: `tensor_content` or the typed `*_val` fields in (a single value broadcasts, as in
//! TF's `Tensor::FromProto`); typed fields out (TF's `AsProtoField`). Compressed messages
//! (`grpc-encoding`) are refused.

use std::collections::BTreeMap;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use hyper::header::{HeaderMap, HeaderValue};
use hyper::{Request, Response};
use prost::Message;
use tokio::io::AsyncWrite as _;

use super::models::VersionSel;
use super::status::{Code, Status};
use super::App;
use crate::proto::serving::{
    model_spec::VersionChoice, GetModelMetadataRequest, GetModelMetadataResponse,
    GetModelStatusRequest, GetModelStatusResponse, Int64Value, ModelSpec, ModelVersionStatus,
    PredictRequest, PredictResponse, SignatureDefMap, StatusProto,
};
use crate::proto::{
    tensor_shape_proto, AnyProto, SignatureDef, TensorInfo, TensorProto, TensorShapeProto,
};
use crate::tensor::{Bytes as TBytes, DType, Data, Tensor};

/// Serves one gRPC connection (HTTP/2 with prior knowledge) until the peer closes it or
/// `stop` fires (then GOAWAY, and the streams in flight finish first).
///
/// The connection task drives h2 itself and runs one call at a time inline, so a call at
/// concurrency 1 per connection costs no task spawn and no cross-thread wake-up (hyper's h2
/// server spawns a task per stream and wakes the connection task back to write the reply:
/// two hand-offs, most of the gap to the HTTP/1 path). A stream that arrives while another
/// is running inline gets a task of its own, so multiplexing clients still run in parallel.
pub async fn serve_conn(
    app: Arc<App>,
    io: tokio::net::TcpStream,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    // hyper's defaults for its h2 server (1 MB windows, so a 100 kB request needs no
    // WINDOW_UPDATE round trip), with larger frames so an image arrives in one or two.
    let mut b = h2::server::Builder::new();
    b.initial_window_size(1 << 20)
        .initial_connection_window_size(1 << 20)
        .max_frame_size(256 << 10)
        .max_concurrent_streams(1024)
        .max_header_list_size(16 << 10)
        .max_send_buffer_size(400 << 10);
    let io = CoalescedIo::new(io);
    let out = io.out.clone();
    let mut conn = match b.handshake::<_, Bytes>(io).await {
        Ok(c) => c,
        Err(_) => return,
    };
    // From here on h2's writes gather in `out` and reach the socket once per poll round.
    out.defer.store(true, Ordering::SeqCst);
    let mut inline: Option<Pin<Box<dyn Future<Output = ()> + Send>>> = None;
    let mut stopping = false;
    let lw = Arc::new(LoopWaker::default());
    let waker = Waker::from(lw.clone());
    {
        let mut stop_changed = std::pin::pin!(stop.changed());
        poll_fn(|cx| {
            lw.set(cx.waker());
            let mut lcx = Context::from_waker(&waker);
            for _ in 0..32 {
                lw.in_poll.store(true, Ordering::SeqCst);
                let mut again = false;
                if !stopping && stop_changed.as_mut().poll(&mut lcx).is_ready() {
                    stopping = true;
                    conn.graceful_shutdown();
                }
                if let Some(f) = inline.as_mut() {
                    if f.as_mut().poll(&mut lcx).is_ready() {
                        inline = None;
                    }
                }
                loop {
                    match conn.poll_accept(&mut lcx) {
                        Poll::Ready(Some(Ok((req, respond)))) => {
                            let call = Box::pin(call(app.clone(), req, respond));
                            if inline.is_none() {
                                inline = Some(call);
                                again = true;
                            } else {
                                tokio::spawn(call);
                            }
                        }
                        Poll::Ready(Some(Err(_)) | None) => return Poll::Ready(()),
                        Poll::Pending => break,
                    }
                }
                // Everything h2 queued this round (a reply's HEADERS, DATA and trailers) in
                // one write: one segment, one wake-up of the client.
                if let Poll::Ready(Err(_)) = out.drain(&mut lcx) {
                    return Poll::Ready(());
                }
                lw.in_poll.store(false, Ordering::SeqCst);
                if !(lw.again.swap(false, Ordering::SeqCst) || again) {
                    return Poll::Pending;
                }
            }
            // Busy: let the other tasks of this thread run.
            cx.waker().wake_by_ref();
            Poll::Pending
        })
        .await;
    }
    if let Some(f) = inline {
        f.await;
    }
    let _ = poll_fn(|cx| out.drain(cx)).await;
}

/// A gRPC connection's socket with its outgoing bytes gathered in memory: h2 flushes after
/// each frame that carries a large payload (its write buffer chains the payload and takes
/// nothing more until it is written), so a unary reply would leave as two writes (HEADERS +
/// DATA, then the trailers), two segments and two wake-ups of the client. While `defer` is
/// set, h2's flushes only gather; the connection's poll loop writes the lot with
/// [`Coalesced::drain`] at the end of each round.
struct Coalesced {
    out: std::sync::Mutex<Out>,
    defer: AtomicBool,
}

struct Out {
    buf: Vec<u8>,
    tcp: tokio::net::tcp::OwnedWriteHalf,
}

/// Gathered bytes beyond which a write waits for the socket (backpressure).
const GATHER_LIMIT: usize = 512 << 10;

impl Coalesced {
    fn out(&self) -> std::sync::MutexGuard<'_, Out> {
        self.out.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes the gathered bytes; `Pending` (with a wake-up registered) while the socket is
    /// full.
    fn drain(&self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let mut out = self.out();
        let Out { buf, tcp } = &mut *out;
        let mut done = 0;
        let r = loop {
            if done == buf.len() {
                break Poll::Ready(Ok(()));
            }
            match Pin::new(&mut *tcp).poll_write(cx, &buf[done..]) {
                Poll::Ready(Ok(0)) => break Poll::Ready(Err(std::io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => done += n,
                Poll::Ready(Err(e)) => break Poll::Ready(Err(e)),
                Poll::Pending => break Poll::Pending,
            }
        };
        buf.drain(..done);
        r
    }
}

/// h2's view of a [`Coalesced`] socket: reads go straight to the socket.
struct CoalescedIo {
    read: tokio::net::tcp::OwnedReadHalf,
    out: Arc<Coalesced>,
}

impl CoalescedIo {
    fn new(tcp: tokio::net::TcpStream) -> CoalescedIo {
        let (read, write) = tcp.into_split();
        CoalescedIo {
            read,
            out: Arc::new(Coalesced {
                out: std::sync::Mutex::new(Out {
                    buf: Vec::new(),
                    tcp: write,
                }),
                defer: AtomicBool::new(false),
            }),
        }
    }
}

impl tokio::io::AsyncRead for CoalescedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.read).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for CoalescedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.poll_write_vectored(cx, &[std::io::IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        if self.out.out().buf.len() >= GATHER_LIMIT {
            std::task::ready!(self.out.drain(cx))?;
        }
        let mut out = self.out.out();
        let n = bufs.iter().map(|b| b.len()).sum();
        out.buf.reserve(n);
        for b in bufs {
            out.buf.extend_from_slice(b);
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.out.defer.load(Ordering::SeqCst) {
            return Poll::Ready(Ok(()));
        }
        self.out.drain(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        std::task::ready!(self.out.drain(cx))?;
        Pin::new(&mut self.out.out().tcp).poll_shutdown(cx)
    }
}

/// The waker a gRPC connection polls h2 and its inline call with. A wake while the
/// connection task is inside its own poll (h2 waking the connection because the inline call
/// queued its reply, or the call's body arriving) only asks the poll loop for another round;
/// handing it to tokio would reschedule the running task as a yield, which wakes an idle
/// worker thread for nothing on every request. Wakes from elsewhere go to the task.
#[derive(Default)]
struct LoopWaker {
    task: std::sync::Mutex<Option<Waker>>,
    in_poll: AtomicBool,
    again: AtomicBool,
}

impl LoopWaker {
    fn set(&self, w: &Waker) {
        let mut t = self.task.lock().unwrap_or_else(|p| p.into_inner());
        if !t.as_ref().is_some_and(|t| t.will_wake(w)) {
            *t = Some(w.clone());
        }
    }
}

impl std::task::Wake for LoopWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        // Set `again` before reading `in_poll`; the poll loop clears `in_poll` before reading
        // `again`, so one of the two always sees the other.
        self.again.store(true, Ordering::SeqCst);
        if !self.in_poll.load(Ordering::SeqCst) {
            if let Some(w) = self.task.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
                w.wake_by_ref();
            }
        }
    }
}

/// One stream: read the request, answer it (headers, one message, trailers).
async fn call(
    app: Arc<App>,
    req: Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
) {
    let (parts, body) = req.into_parts();
    let r = handle(&app, parts.uri.path(), &parts.headers, body).await;
    let head = Response::builder()
        .status(200)
        .header("content-type", "application/grpc")
        .body(())
        .expect("static headers are valid");
    let Ok(mut send) = respond.send_response(head, false) else {
        return;
    };
    let mut trailers = HeaderMap::new();
    match r {
        Ok(framed) => {
            trailers.insert("grpc-status", HeaderValue::from_static("0"));
            if send.send_data(framed.into(), false).is_err() {
                return;
            }
        }
        Err(s) => {
            trailers.insert("grpc-status", HeaderValue::from((s.code as i32) as u32));
            // TF's ToGRPCStatus cuts messages over 1024 chars.
            let mut m = s.msg;
            if m.len() > 1024 {
                let mut cut = 1024;
                while !m.is_char_boundary(cut) {
                    cut -= 1;
                }
                m.truncate(cut);
                m.push_str("...TRUNCATED");
            }
            let enc = pct_encode(&m);
            if let Ok(v) = HeaderValue::from_str(&enc) {
                trailers.insert("grpc-message", v);
            }
        }
    }
    let _ = send.send_trailers(trailers);
}

/// A reply message with gRPC's 5-byte length prefix, encoded in place.
fn framed(msg: &impl Message) -> Vec<u8> {
    let len = msg.encoded_len();
    let mut out = Vec::with_capacity(5 + len);
    out.push(0);
    out.extend_from_slice(&(len as u32).to_be_bytes());
    msg.encode_raw(&mut out);
    out
}

/// The request body: its data frames (one frame is kept as is, no copy), at most `cap` bytes.
async fn read_body(body: &mut h2::RecvStream, cap: usize) -> Result<Bytes, Status> {
    let too_big = || {
        Status::exhausted(format!(
            "request exceeds the cap of {cap} bytes (--max_body_bytes)"
        ))
    };
    let mut first: Option<Bytes> = None;
    let mut rest = BytesMut::new();
    let mut total = 0usize;
    while let Some(chunk) = body.data().await {
        let chunk =
            chunk.map_err(|e| Status::new(Code::Cancelled, format!("request stream: {e}")))?;
        let _ = body.flow_control().release_capacity(chunk.len());
        total += chunk.len();
        if total > cap {
            return Err(too_big());
        }
        match &first {
            None => first = Some(chunk),
            Some(f) => {
                if rest.is_empty() {
                    rest.extend_from_slice(f);
                }
                rest.extend_from_slice(&chunk);
            }
        }
    }
    Ok(if rest.is_empty() {
        first.unwrap_or_default()
    } else {
        rest.freeze()
    })
}

/// `grpc-timeout`: digits plus one unit of H M S m u n.
fn parse_timeout(h: &HeaderMap) -> Option<Duration> {
    let v = h.get("grpc-timeout")?.to_str().ok()?;
    let (n, unit) = v.split_at(v.len().checked_sub(1)?);
    let n: u64 = n.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// gRPC's percent-encoding of `grpc-message`.
fn pct_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One gRPC call: the framed reply message, or the status for the trailers.
async fn handle(
    app: &App,
    path: &str,
    headers: &HeaderMap,
    mut body: h2::RecvStream,
) -> Result<Vec<u8>, Status> {
    let t0 = Instant::now();
    let deadline = parse_timeout(headers);
    if headers
        .get("grpc-encoding")
        .is_some_and(|v| v != "identity")
    {
        return Err(Status::unimplemented(
            "compressed gRPC messages are not supported",
        ));
    }
    const PREDICT: &str = "/tensorflow.serving.PredictionService/Predict";
    const METADATA: &str = "/tensorflow.serving.PredictionService/GetModelMetadata";
    const STATUS: &str = "/tensorflow.serving.ModelService/GetModelStatus";
    if ![PREDICT, METADATA, STATUS].contains(&path) {
        return Err(Status::unimplemented(format!(
            "method {path} is not implemented by tfhub serve"
        )));
    }
    let body = read_body(&mut body, app.opts.max_body_bytes).await?;
    let msg = unframe(&body)?;
    match path {
        PREDICT => {
            let (model, r) = match PredictRequest::decode(msg) {
                Ok(req) => {
                    let name = req
                        .model_spec
                        .as_ref()
                        .map(|m| m.name.clone())
                        .unwrap_or_default();
                    (name, app.with_deadline(deadline, predict(app, req)).await)
                }
                Err(e) => (
                    String::new(),
                    Err(Status::invalid(format!(
                        "cannot decode PredictRequest: {e}"
                    ))),
                ),
            };
            app.metrics.request(
                &model,
                "Predict",
                "GRPC",
                r.as_ref().map_or_else(|s| s.code.name(), |_| "OK"),
                t0.elapsed(),
            );
            r
        }
        METADATA => GetModelMetadataRequest::decode(msg)
            .map_err(|e| Status::invalid(format!("cannot decode GetModelMetadataRequest: {e}")))
            .and_then(|req| metadata(app, req)),
        STATUS => GetModelStatusRequest::decode(msg)
            .map_err(|e| Status::invalid(format!("cannot decode GetModelStatusRequest: {e}")))
            .and_then(|req| model_status(app, req)),
        other => Err(Status::unimplemented(format!(
            "method {other} is not implemented by tfhub serve"
        ))),
    }
}

pub(crate) fn unframe(body: &[u8]) -> Result<&[u8], Status> {
    if body.len() < 5 {
        return Err(Status::invalid("gRPC message frame is truncated"));
    }
    if body[0] != 0 {
        return Err(Status::unimplemented(
            "compressed gRPC messages are not supported",
        ));
    }
    let n = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    if body.len() != 5 + n {
        return Err(Status::invalid(
            "unary gRPC call must carry exactly one message",
        ));
    }
    Ok(&body[5..])
}

fn selector(spec: &Option<ModelSpec>) -> Result<(String, VersionSel), Status> {
    let spec = spec
        .as_ref()
        .ok_or_else(|| Status::invalid("Missing ModelSpec"))?;
    if spec.name.is_empty() {
        return Err(Status::invalid("ModelSpec has no name specified."));
    }
    let sel = match &spec.version_choice {
        None => VersionSel::Latest,
        Some(VersionChoice::Version(v)) => VersionSel::Number(v.value),
        Some(VersionChoice::VersionLabel(l)) => VersionSel::Label(l.clone()),
    };
    Ok((spec.name.clone(), sel))
}

fn spec_reply(name: &str, version: i64, signature: &str) -> ModelSpec {
    ModelSpec {
        name: name.to_string(),
        signature_name: signature.to_string(),
        version_choice: Some(VersionChoice::Version(Int64Value { value: version })),
    }
}

async fn predict(app: &App, req: PredictRequest) -> Result<Vec<u8>, Status> {
    let (name, sel) = selector(&req.model_spec)?;
    let sv = app.manager.find(&name, &sel)?;
    let sig_name = match req.model_spec.as_ref().map(|m| m.signature_name.as_str()) {
        Some("") | None => "serving_default".to_string(),
        Some(s) => s.to_string(),
    };
    let lim = app.opts.max_tensor_elements;
    let mut inputs = Vec::with_capacity(req.inputs.len());
    for (k, tp) in &req.inputs {
        let t = from_proto(tp, lim)
            .map_err(|s| Status::new(s.code, format!("input {k:?}: {}", s.msg)))?;
        inputs.push((k.clone(), t));
    }
    let mut filter = req.output_filter.clone();
    filter.sort();
    if filter.windows(2).any(|w| w[0] == w[1]) {
        return Err(Status::invalid(
            "duplicate output tensor alias in output_filter",
        ));
    }
    let out = app.predict(&sv, &sig_name, inputs, "Predict").await?;
    for f in &filter {
        if !out.contains_key(f) {
            return Err(Status::invalid(format!(
                "output tensor alias not found in signature: {f} Outputs expected to be in the set {{{}}}.",
                out.keys().cloned().collect::<Vec<_>>().join(",")
            )));
        }
    }
    let outputs: BTreeMap<String, TensorProto> = out
        .iter()
        .filter(|(k, _)| filter.is_empty() || filter.contains(k))
        .map(|(k, t)| Ok((k.clone(), to_proto(t)?)))
        .collect::<Result<_, Status>>()?;
    Ok(framed(&PredictResponse {
        model_spec: Some(spec_reply(&name, sv.version, &sig_name)),
        outputs,
    }))
}

fn tensor_info(t: &serde_json::Value) -> TensorInfo {
    let dtype = t["dtype"]
        .as_str()
        .and_then(DType::from_name)
        .map_or(0, DType::to_proto);
    let tensor_shape = Some(match t["shape"].as_array() {
        None => TensorShapeProto {
            dim: Vec::new(),
            unknown_rank: true,
        },
        Some(d) => TensorShapeProto {
            dim: d
                .iter()
                .map(|x| tensor_shape_proto::Dim {
                    size: x.as_i64().unwrap_or(-1),
                    name: String::new(),
                })
                .collect(),
            unknown_rank: false,
        },
    });
    TensorInfo {
        dtype,
        tensor_shape,
        encoding: t["name"]
            .as_str()
            .map(|n| crate::proto::tensor_info::Encoding::Name(n.to_string())),
    }
}

fn metadata(app: &App, req: GetModelMetadataRequest) -> Result<Vec<u8>, Status> {
    if req.metadata_field.is_empty() {
        return Err(Status::invalid(
            "GetModelMetadataRequest must specify at least one metadata_field",
        ));
    }
    if let Some(f) = req.metadata_field.iter().find(|f| *f != "signature_def") {
        return Err(Status::invalid(format!(
            "Metadata field {f} is not supported"
        )));
    }
    let (name, sel) = selector(&req.model_spec)?;
    let sv = app.manager.find(&name, &sel)?;
    let mut map = SignatureDefMap::default();
    if let Some(sigs) = sv.signatures.as_object() {
        for (k, s) in sigs {
            let io = |m: &serde_json::Value| -> BTreeMap<String, TensorInfo> {
                m.as_object()
                    .map(|o| o.iter().map(|(k, t)| (k.clone(), tensor_info(t))).collect())
                    .unwrap_or_default()
            };
            map.signature_def.insert(
                k.clone(),
                SignatureDef {
                    inputs: io(&s["inputs"]),
                    outputs: io(&s["outputs"]),
                    method_name: s["method_name"].as_str().unwrap_or_default().to_string(),
                },
            );
        }
    }
    let mut metadata = BTreeMap::new();
    metadata.insert(
        "signature_def".to_string(),
        AnyProto {
            type_url: "type.googleapis.com/tensorflow.serving.SignatureDefMap".into(),
            value: map.encode_to_vec(),
        },
    );
    Ok(framed(&GetModelMetadataResponse {
        model_spec: Some(spec_reply(&name, sv.version, "")),
        metadata,
    }))
}

fn model_status(app: &App, req: GetModelStatusRequest) -> Result<Vec<u8>, Status> {
    let (name, sel) = selector(&req.model_spec)?;
    let entry =
        app.manager.models().get(&name).ok_or_else(|| {
            Status::not_found(format!("Could not find any versions of model {name}"))
        })?;
    let mut list = entry.statuses();
    if list.is_empty() {
        return Err(Status::not_found(format!(
            "Could not find any versions of model {name}"
        )));
    }
    if let VersionSel::Number(v) = sel {
        list.retain(|(x, _)| *x == v);
        if list.is_empty() {
            return Err(Status::not_found(format!(
                "Could not find version {v} of model {name}"
            )));
        }
    }
    Ok(framed(&GetModelStatusResponse {
        model_version_status: list
            .into_iter()
            .map(|(v, st)| ModelVersionStatus {
                version: v,
                state: st.state.value(),
                status: Some(StatusProto {
                    error_code: if st.error.is_some() {
                        Code::Unknown as i32
                    } else {
                        0
                    },
                    error_message: st.error.unwrap_or_default(),
                }),
            })
            .collect(),
    }))
}

/// A request tensor (TF's `Tensor::FromProto`): content bytes, or typed values where one value
/// broadcasts and none means zeros.
pub fn from_proto(tp: &TensorProto, max_elements: usize) -> Result<Tensor, Status> {
    let dtype = DType::from_proto(tp.dtype)
        .ok_or_else(|| Status::invalid(format!("unsupported tensor dtype {}", tp.dtype)))?;
    let shape: Vec<usize> = tp
        .tensor_shape
        .as_ref()
        .map(|s| {
            s.dim
                .iter()
                .map(|d| {
                    usize::try_from(d.size)
                        .map_err(|_| Status::invalid(format!("invalid dim {}", d.size)))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?
        .unwrap_or_default();
    let n = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= max_elements)
        .ok_or_else(|| {
            Status::exhausted(format!(
                "tensor of shape {shape:?} exceeds the cap of {max_elements} elements"
            ))
        })?;
    let bad = |what: &str| {
        Status::invalid(format!(
            "tensor proto of dtype {} and shape {shape:?}: {what}",
            dtype.name()
        ))
    };
    fn fill<T: Clone + Default>(vals: Vec<T>, n: usize) -> Option<Vec<T>> {
        match vals.len() {
            0 => Some(vec![T::default(); n]),
            l if l == n => Some(vals),
            1 if n > 1 => Some(vec![vals[0].clone(); n]),
            _ => None,
        }
    }
    macro_rules! raw {
        ($t:ty) => {{
            let sz = std::mem::size_of::<$t>();
            if tp.tensor_content.len() != n * sz {
                return Err(bad("tensor_content has the wrong size"));
            }
            tp.tensor_content
                .chunks_exact(sz)
                .map(|c| <$t>::from_le_bytes(c.try_into().expect("chunk of size_of")))
                .collect::<Vec<$t>>()
        }};
    }
    macro_rules! typed {
        ($t:ty, $field:expr, $conv:expr) => {{
            let v: Vec<$t> = if !tp.tensor_content.is_empty() {
                raw!($t)
            } else {
                fill($field.iter().map($conv).collect::<Vec<$t>>(), n)
                    .ok_or_else(|| bad("value count does not match the shape"))?
            };
            Tensor::from_vec(&shape, v)
        }};
    }
    let t = match dtype {
        DType::F32 => typed!(f32, tp.float_val, |&x| x),
        DType::F64 => typed!(f64, tp.double_val, |&x| x),
        DType::I32 => typed!(i32, tp.int_val, |&x| x),
        DType::I16 => typed!(i16, tp.int_val, |&x| x as i16),
        DType::I8 => typed!(i8, tp.int_val, |&x| x as i8),
        DType::U8 => typed!(u8, tp.int_val, |&x| x as u8),
        DType::U16 => typed!(u16, tp.int_val, |&x| x as u16),
        DType::I64 => typed!(i64, tp.int64_val, |&x| x),
        DType::U32 => typed!(u32, tp.uint32_val, |&x| x),
        DType::U64 => typed!(u64, tp.uint64_val, |&x| x),
        DType::F16 => {
            let v: Vec<half::f16> = if !tp.tensor_content.is_empty() {
                raw!(u16).into_iter().map(half::f16::from_bits).collect()
            } else {
                fill(
                    tp.half_val
                        .iter()
                        .map(|&x| half::f16::from_bits(x as u16))
                        .collect(),
                    n,
                )
                .ok_or_else(|| bad("value count does not match the shape"))?
            };
            Tensor::from_vec(&shape, v)
        }
        DType::BF16 => {
            let v: Vec<half::bf16> = if !tp.tensor_content.is_empty() {
                raw!(u16).into_iter().map(half::bf16::from_bits).collect()
            } else {
                fill(
                    tp.half_val
                        .iter()
                        .map(|&x| half::bf16::from_bits(x as u16))
                        .collect(),
                    n,
                )
                .ok_or_else(|| bad("value count does not match the shape"))?
            };
            Tensor::from_vec(&shape, v)
        }
        DType::Bool => {
            let v: Vec<bool> = if !tp.tensor_content.is_empty() {
                if tp.tensor_content.len() != n {
                    return Err(bad("tensor_content has the wrong size"));
                }
                tp.tensor_content.iter().map(|&b| b != 0).collect()
            } else {
                fill(tp.bool_val.clone(), n)
                    .ok_or_else(|| bad("value count does not match the shape"))?
            };
            Tensor::from_vec(&shape, v)
        }
        DType::String => {
            let v = fill(
                tp.string_val
                    .iter()
                    .map(|s| TBytes::copy_from_slice(s))
                    .collect(),
                n,
            )
            .ok_or_else(|| bad("value count does not match the shape"))?;
            Tensor::from_vec(&shape, v)
        }
        other => return Err(bad(&format!("dtype {} cannot be sent", other.name()))),
    };
    t.map_err(|e| bad(&e.to_string()))
}

/// A reply tensor in the typed `*_val` fields (TF's `AsProtoField`).
pub fn to_proto(t: &Tensor) -> Result<TensorProto, Status> {
    let mut p = TensorProto {
        dtype: t.dtype().to_proto(),
        tensor_shape: Some(TensorShapeProto {
            dim: t
                .shape()
                .iter()
                .map(|&d| tensor_shape_proto::Dim {
                    size: d as i64,
                    name: String::new(),
                })
                .collect(),
            unknown_rank: false,
        }),
        ..TensorProto::default()
    };
    match t.data() {
        Data::F32(b) => p.float_val = b.to_vec(),
        Data::F64(b) => p.double_val = b.to_vec(),
        Data::I32(b) => p.int_val = b.to_vec(),
        Data::I16(b) => p.int_val = b.iter().map(|&x| x as i32).collect(),
        Data::I8(b) => p.int_val = b.iter().map(|&x| x as i32).collect(),
        Data::U8(b) => p.int_val = b.iter().map(|&x| x as i32).collect(),
        Data::U16(b) => p.int_val = b.iter().map(|&x| x as i32).collect(),
        Data::I64(b) => p.int64_val = b.to_vec(),
        Data::U32(b) => p.uint32_val = b.to_vec(),
        Data::U64(b) => p.uint64_val = b.to_vec(),
        Data::Bool(b) => p.bool_val = b.to_vec(),
        Data::F16(b) => p.half_val = b.iter().map(|x| x.to_bits() as i32).collect(),
        Data::BF16(b) => p.half_val = b.iter().map(|x| x.to_bits() as i32).collect(),
        Data::String(b) => p.string_val = b.iter().map(|s| s.to_vec()).collect(),
        _ => {
            return Err(Status::invalid(format!(
                "output dtype {} cannot be serialized",
                t.dtype().name()
            )))
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensor_proto_round_trip_and_broadcast() {
        let t = Tensor::from_vec(&[2, 2], vec![1.0f32, 2.0, 3.0, 4.0]).unwrap();
        let p = to_proto(&t).unwrap();
        let back = from_proto(&p, 100).unwrap();
        assert_eq!(
            back.as_slice::<f32>().unwrap(),
            t.as_slice::<f32>().unwrap()
        );
        let mut one = p.clone();
        one.float_val = vec![7.0];
        assert_eq!(
            from_proto(&one, 100).unwrap().as_slice::<f32>().unwrap(),
            &[7.0; 4]
        );
        let mut raw = p.clone();
        raw.float_val.clear();
        raw.tensor_content = [1.0f32, 2.0, 3.0, 4.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        assert_eq!(
            from_proto(&raw, 100).unwrap().as_slice::<f32>().unwrap(),
            &[1.0, 2.0, 3.0, 4.0]
        );
        raw.tensor_content.pop();
        assert!(from_proto(&raw, 100).is_err());
        assert_eq!(from_proto(&p, 3).unwrap_err().code, Code::ResourceExhausted);
        let mut neg = p;
        neg.tensor_shape.as_mut().unwrap().dim[0].size = -1;
        assert!(from_proto(&neg, 100).is_err());
    }
}

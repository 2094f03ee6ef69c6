//! Dynamic batching with TF Serving's knobs (`BatchingParameters`): one queue per loaded
//! version and signature, one shared pool of `num_batch_threads` threads.
//!
//! As in TF's SharedBatchScheduler, a batch stays open while every thread is busy, so requests
//! pile into it under load even with `batch_timeout_micros: 0`; once a thread is free the
//! batch closes when it is full (`max_batch_size` rows, or `max_execution_batch_size` with
//! `enable_large_batch_splitting`) or its first request has waited `batch_timeout_micros`. A
//! request's size is its inputs' shared dim 0. Batches are padded up to the next
//! `allowed_batch_sizes` entry with copies of the last request's first row, like TF's
//! batching_session.cc. The queue holds at most `max_enqueued_batches` full batches of rows;
//! past that a request is refused with RESOURCE_EXHAUSTED (HTTP 429).
//!
//! - **Variable-length inputs.** With `pad_variable_length_inputs`, requests whose inputs have
//!   the same dtypes and ranks share a batch. Each input is padded up to the batch's largest
//!   non-batch dims with its own first element, as TF's batching_util.cc `AddPadding` does (ranks
//!   1–6, like TF); outputs keep the padded dims. Without it, requests whose other dims differ
//!   from the batch's first are left for the next batch. TF fails them with
//!   FAILED_PRECONDITION; waiting a turn serves both.
//! - **Large-batch splitting.** With `enable_large_batch_splitting`, a request that does not fit
//!   the open batch is cut. Its first rows fill the batch and the rest waits at the queue's head
//!   for the next one, so a request of up to `max_batch_size` rows runs in batches of at most
//!   `max_execution_batch_size`. Its pieces' outputs are joined back in row order, and it
//!   answers once, with the first error if any piece failed.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use super::config::BatchingParams;
use super::metrics::Metrics;
use super::models::Servable;
use super::status::{Code, Status};
use crate::tensor::{Bytes, DType, Tensor};

/// The reply to one request.
pub type Reply = Result<BTreeMap<String, Tensor>, Status>;

struct Task {
    inputs: Vec<Tensor>,
    rows: usize,
    enqueued: Instant,
    reply: ReplyTo,
}

/// Where a task's outputs go.
enum ReplyTo {
    /// A whole request.
    Whole(tokio::sync::oneshot::Sender<Reply>),
    /// Rows `start..start + rows` of a request split across batches.
    Piece(Arc<Split>, usize),
}

/// The pieces of one split request, joined when the last arrives.
struct Split {
    rows: usize,
    state: Mutex<SplitState>,
}

struct SplitState {
    /// Outputs by first row.
    parts: BTreeMap<usize, BTreeMap<String, Tensor>>,
    done_rows: usize,
    /// Taken when the request is answered (joined or failed).
    reply: Option<tokio::sync::oneshot::Sender<Reply>>,
}

impl ReplyTo {
    /// Answers with `r`, the outputs of the task's own rows.
    fn send(self, rows: usize, r: Reply) {
        match self {
            ReplyTo::Whole(tx) => {
                let _ = tx.send(r);
            }
            ReplyTo::Piece(split, start) => split.deliver(start, rows, r),
        }
    }
}

impl Split {
    fn deliver(&self, start: usize, rows: usize, r: Reply) {
        let mut st = self.state.lock().expect("split lock");
        match r {
            Err(e) => {
                if let Some(tx) = st.reply.take() {
                    let _ = tx.send(Err(e));
                }
            }
            Ok(out) => {
                if st.reply.is_none() {
                    return; // an earlier piece failed
                }
                st.parts.insert(start, out);
                st.done_rows += rows;
                if st.done_rows == self.rows {
                    let joined = join_pieces(&st.parts);
                    if let Some(tx) = st.reply.take() {
                        let _ = tx.send(joined);
                    }
                }
            }
        }
    }
}

/// Concatenates the pieces' outputs, key by key, in row order.
fn join_pieces(parts: &BTreeMap<usize, BTreeMap<String, Tensor>>) -> Reply {
    let Some(first) = parts.values().next() else {
        return Err(Status::internal("split request with no pieces"));
    };
    let mut out = BTreeMap::new();
    for k in first.keys() {
        let pieces: Vec<&Tensor> = parts
            .values()
            .map(|p| {
                p.get(k)
                    .ok_or_else(|| Status::internal(format!("a piece lacks output {k}")))
            })
            .collect::<Result<_, _>>()?;
        if pieces
            .windows(2)
            .any(|w| w[0].dtype() != w[1].dtype() || w[0].shape().get(1..) != w[1].shape().get(1..))
        {
            return Err(Status::new(
                Code::FailedPrecondition,
                format!(
                    "output {k} of a request split across batches has different shapes in its \
                     pieces (padded to different lengths?); they cannot be joined"
                ),
            ));
        }
        out.insert(k.clone(), concat0(&pieces, 0)?);
    }
    Ok(out)
}

impl Task {
    /// The inputs' first `n` rows and the rest (`0 < n < rows`).
    fn cut(&self, n: usize) -> Result<(Vec<Tensor>, Vec<Tensor>), Status> {
        let mut head = Vec::with_capacity(self.inputs.len());
        let mut tail = Vec::with_capacity(self.inputs.len());
        for t in &self.inputs {
            head.push(slice0(t, 0, n)?);
            tail.push(slice0(t, n, self.rows - n)?);
        }
        Ok((head, tail))
    }

    /// This task as a piece of its first `n` rows and the rest; the first cut turns the
    /// request's reply into a [`Split`], later cuts share it.
    fn into_pieces(self, n: usize, head: Vec<Tensor>, tail: Vec<Tensor>) -> (Task, Task) {
        let (split, start) = match self.reply {
            ReplyTo::Whole(tx) => (
                Arc::new(Split {
                    rows: self.rows,
                    state: Mutex::new(SplitState {
                        parts: BTreeMap::new(),
                        done_rows: 0,
                        reply: Some(tx),
                    }),
                }),
                0,
            ),
            ReplyTo::Piece(s, start) => (s, start),
        };
        let piece = Task {
            inputs: head,
            rows: n,
            enqueued: self.enqueued,
            reply: ReplyTo::Piece(split.clone(), start),
        };
        let rest = Task {
            inputs: tail,
            rows: self.rows - n,
            enqueued: self.enqueued,
            reply: ReplyTo::Piece(split, start + n),
        };
        (piece, rest)
    }
}

/// Counting semaphore of free batch threads, shared by every queue.
#[derive(Debug)]
pub struct Pool {
    free: Mutex<usize>,
    cv: Condvar,
    jobs: Mutex<mpsc::Sender<Box<dyn FnOnce() + Send>>>,
    /// TF's knobs, shared by every queue.
    pub params: BatchingParams,
    /// Elements one padded batch input may reach (`--max_tensor_elements`): padding to the
    /// batch's largest dims must not turn small requests into a huge tensor.
    max_padded_elements: usize,
}

impl Pool {
    /// Starts `params.num_batch_threads` worker threads.
    pub fn new(params: BatchingParams, max_padded_elements: usize) -> Arc<Pool> {
        let (tx, rx) = mpsc::channel::<Box<dyn FnOnce() + Send>>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..params.num_batch_threads {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("batch-{i}"))
                .spawn(move || loop {
                    let job = match rx.lock() {
                        Ok(r) => r.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                })
                .expect("spawning a batch thread");
        }
        Arc::new(Pool {
            free: Mutex::new(params.num_batch_threads),
            cv: Condvar::new(),
            jobs: Mutex::new(tx),
            params,
            max_padded_elements,
        })
    }

    fn acquire(&self) {
        let mut f = self.free.lock().expect("pool lock");
        while *f == 0 {
            f = self.cv.wait(f).expect("pool lock");
        }
        *f -= 1;
    }

    fn release(&self) {
        *self.free.lock().expect("pool lock") += 1;
        self.cv.notify_one();
    }
}

/// One batching queue (a loaded version's signature).
pub struct Batcher {
    signature: String,
    queue: Mutex<VecDeque<Task>>,
    queued_rows: AtomicUsize,
    cv: Condvar,
    closed: AtomicBool,
    pool: Arc<Pool>,
    metrics: Arc<Metrics>,
    model: String,
}

impl std::fmt::Debug for Batcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher")
            .field("signature", &self.signature)
            .finish()
    }
}

impl Batcher {
    /// A queue for `signature` of `servable`, with its scheduling thread.
    pub fn start(
        servable: Weak<Servable>,
        model: String,
        signature: String,
        pool: Arc<Pool>,
        metrics: Arc<Metrics>,
    ) -> Arc<Batcher> {
        let b = Arc::new(Batcher {
            signature,
            queue: Mutex::new(VecDeque::new()),
            queued_rows: AtomicUsize::new(0),
            cv: Condvar::new(),
            closed: AtomicBool::new(false),
            pool,
            metrics,
            model,
        });
        let b2 = b.clone();
        std::thread::Builder::new()
            .name("batch-scheduler".into())
            .spawn(move || b2.run(servable))
            .expect("spawning a batch scheduler");
        b
    }

    /// Stops the scheduler once the queue is empty (the version is unloading).
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.cv.notify_all();
    }

    /// Queues one request; its inputs are in signature input order.
    ///
    /// # Errors
    /// INVALID_ARGUMENT for a rank-0 input, unequal dim 0 or more rows than `max_batch_size`;
    /// RESOURCE_EXHAUSTED when the queue is full.
    pub fn submit(
        &self,
        inputs: Vec<Tensor>,
    ) -> Result<tokio::sync::oneshot::Receiver<Reply>, Status> {
        let mut rows = None;
        for t in &inputs {
            let Some(&d0) = t.shape().first() else {
                return Err(Status::invalid(
                    "Batching session Run() input tensors must have at least one dimension",
                ));
            };
            if rows.is_some_and(|r| r != d0) {
                return Err(Status::invalid(
                    "Batching session Run() input tensors must have equal 0th-dimension size",
                ));
            }
            rows = Some(d0);
        }
        let rows = rows.unwrap_or(0);
        let p = &self.pool.params;
        if rows > p.max_batch_size {
            return Err(Status::invalid(format!(
                "Task size {rows} is larger than maximum input batch size {}",
                p.max_batch_size
            )));
        }
        let cap = p
            .max_enqueued_batches
            .saturating_mul(p.execution_batch_size());
        let (tx, rx) = tokio::sync::oneshot::channel();
        {
            let mut q = self.queue.lock().expect("batch queue lock");
            let queued = self.queued_rows.load(Ordering::SeqCst);
            if queued + rows > cap {
                return Err(Status::exhausted(
                    "The batch scheduling queue to which this task was submitted is full",
                ));
            }
            self.queued_rows.fetch_add(rows, Ordering::SeqCst);
            q.push_back(Task {
                inputs,
                rows,
                enqueued: Instant::now(),
                reply: ReplyTo::Whole(tx),
            });
        }
        self.metrics.queue_depth(&self.model, 1);
        self.cv.notify_one();
        Ok(rx)
    }

    fn run(self: Arc<Self>, servable: Weak<Servable>) {
        loop {
            // Wait for a request.
            {
                let mut q = self.queue.lock().expect("batch queue lock");
                while q.is_empty() {
                    if self.closed.load(Ordering::SeqCst) {
                        return;
                    }
                    q = self.cv.wait(q).expect("batch queue lock");
                }
            }
            // Hold the batch open until a thread is free.
            self.pool.acquire();
            let batch = self.close_batch();
            if batch.is_empty() {
                self.pool.release();
                continue;
            }
            let me = self.clone();
            let sv = servable.clone();
            let job = Box::new(move || {
                me.execute(batch, sv);
                me.pool.release();
            });
            let sent = self.pool.jobs.lock().expect("pool lock").send(job);
            if let Err(mpsc::SendError(job)) = sent {
                job();
            }
        }
    }

    /// Waits until the batch is full or its first request timed out, then takes it.
    fn close_batch(&self) -> Vec<Task> {
        let p = &self.pool.params;
        let max = p.execution_batch_size();
        let timeout = Duration::from_micros(p.batch_timeout_micros);
        let mut q = self.queue.lock().expect("batch queue lock");
        loop {
            let Some(first) = q.front() else {
                return Vec::new();
            };
            let rows: usize = q.iter().map(|t| t.rows).sum();
            let deadline = first.enqueued + timeout;
            let now = Instant::now();
            if rows >= max || now >= deadline || self.closed.load(Ordering::SeqCst) {
                break;
            }
            q = self
                .cv
                .wait_timeout(q, deadline - now)
                .expect("batch queue lock")
                .0;
        }
        let mut batch: Vec<Task> = Vec::new();
        let (mut rows, mut whole) = (0, 0);
        // With padding: each input's largest dims so far, to keep the padded batch in bounds.
        let mut maxd: Vec<Vec<usize>> = Vec::new();
        while let Some(t) = q.front() {
            let same = batch.first().is_none_or(|f| {
                f.inputs.iter().zip(&t.inputs).all(|(a, b)| {
                    a.dtype() == b.dtype()
                        && if p.pad_variable_length_inputs {
                            a.shape().len() == b.shape().len()
                        } else {
                            a.shape().get(1..) == b.shape().get(1..)
                        }
                })
            });
            if !same {
                break;
            }
            if p.pad_variable_length_inputs {
                let grown: Vec<Vec<usize>> = t
                    .inputs
                    .iter()
                    .enumerate()
                    .map(|(i, x)| {
                        let mut d = x.shape().to_vec();
                        if let Some(m) = maxd.get(i) {
                            d.iter_mut().zip(m).for_each(|(a, &b)| *a = (*a).max(b));
                        }
                        d
                    })
                    .collect();
                // A request alone is within the cap (its decoder checked it); a request that
                // would pad the batch past it waits for the next batch.
                let over = grown.iter().any(|d| {
                    d[1..]
                        .iter()
                        .try_fold(rows + t.rows, |a, &x| a.checked_mul(x))
                        .is_none_or(|n| n > self.pool.max_padded_elements)
                });
                if over && !batch.is_empty() {
                    break;
                }
                maxd = grown;
            }
            let room = max - rows;
            if t.rows <= room {
                rows += t.rows;
                whole += 1;
                batch.push(q.pop_front().expect("front exists"));
                continue;
            }
            if p.enable_large_batch_splitting && room > 0 {
                let t = q.pop_front().expect("front exists");
                match t.cut(room) {
                    Ok((head, tail)) => {
                        let (piece, rest) = t.into_pieces(room, head, tail);
                        rows += room;
                        batch.push(piece);
                        q.push_front(rest);
                    }
                    Err(e) => {
                        // Not sliceable (dtype): the whole request fails, nothing else does.
                        self.queued_rows.fetch_sub(t.rows, Ordering::SeqCst);
                        self.metrics.queue_depth(&self.model, -1);
                        let n = t.rows;
                        t.reply.send(n, Err(e));
                        continue;
                    }
                }
            }
            break;
        }
        self.queued_rows.fetch_sub(rows, Ordering::SeqCst);
        self.metrics.queue_depth(&self.model, -(whole as i64));
        batch
    }

    fn execute(&self, batch: Vec<Task>, servable: Weak<Servable>) {
        let now = Instant::now();
        for t in &batch {
            self.metrics.queuing_latency(now - t.enqueued);
        }
        let result = (|| {
            let sv = servable
                .upgrade()
                .ok_or_else(|| Status::new(Code::Unavailable, "model version unloaded"))?;
            let sig = sv.model.signature(&self.signature).map_err(Status::from)?;
            let rows: usize = batch.iter().map(|t| t.rows).sum();
            let padded = self
                .pool
                .params
                .allowed_batch_sizes
                .iter()
                .copied()
                .find(|&s| s >= rows)
                .unwrap_or(rows);
            self.metrics.batch_size(&self.model, padded);
            let mut joined = Vec::with_capacity(sig.inputs().len());
            for (i, spec) in sig.inputs().iter().enumerate() {
                let parts: Vec<&Tensor> = batch.iter().map(|t| &t.inputs[i]).collect();
                let t = if self.pool.params.pad_variable_length_inputs {
                    let padded_parts = pad_to_largest(&parts)?;
                    let refs: Vec<&Tensor> = padded_parts.iter().collect();
                    concat0(&refs, padded - rows)?
                } else {
                    concat0(&parts, padded - rows)?
                };
                joined.push((spec.key.clone(), t));
            }
            let out = sig.call(joined).map_err(Status::from)?;
            for (k, t) in &out {
                if t.shape().first() != Some(&padded) {
                    return Err(Status::new(
                        Code::FailedPrecondition,
                        format!(
                            "Batched output tensor {k} has shape {:?}; its 0th dimension must \
                             be the batch size {padded} (this signature cannot be batched)",
                            t.shape()
                        ),
                    ));
                }
            }
            Ok(out)
        })();
        match result {
            Err(e) => {
                for t in batch {
                    t.reply.send(t.rows, Err(e.clone()));
                }
            }
            Ok(out) => {
                let mut start = 0;
                for t in batch {
                    let mut mine = BTreeMap::new();
                    let mut err = None;
                    for (k, o) in &out {
                        match slice0(o, start, t.rows) {
                            Ok(s) => {
                                mine.insert(k.clone(), s);
                            }
                            Err(e) => err = Some(e),
                        }
                    }
                    start += t.rows;
                    t.reply.send(
                        t.rows,
                        match err {
                            Some(e) => Err(e),
                            None => Ok(mine),
                        },
                    );
                }
            }
        }
    }
}

macro_rules! by_dtype {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            DType::F32 => {
                type $T = f32;
                $body
            }
            DType::F64 => {
                type $T = f64;
                $body
            }
            DType::I8 => {
                type $T = i8;
                $body
            }
            DType::I16 => {
                type $T = i16;
                $body
            }
            DType::I32 => {
                type $T = i32;
                $body
            }
            DType::I64 => {
                type $T = i64;
                $body
            }
            DType::U8 => {
                type $T = u8;
                $body
            }
            DType::U16 => {
                type $T = u16;
                $body
            }
            DType::U32 => {
                type $T = u32;
                $body
            }
            DType::U64 => {
                type $T = u64;
                $body
            }
            DType::Bool => {
                type $T = bool;
                $body
            }
            DType::String => {
                type $T = Bytes;
                $body
            }
            DType::F16 => {
                type $T = half::f16;
                $body
            }
            DType::BF16 => {
                type $T = half::bf16;
                $body
            }
            other => Err(Status::unimplemented(format!(
                "batching {} tensors",
                other.name()
            ))),
        }
    };
}

fn internal(e: impl std::fmt::Display) -> Status {
    Status::internal(e.to_string())
}

/// Concatenates along dim 0, then appends `pad` copies of the last part's first row.
fn concat0(parts: &[&Tensor], pad: usize) -> Result<Tensor, Status> {
    let first = parts
        .first()
        .ok_or_else(|| Status::internal("empty batch"))?;
    if parts.len() == 1 && pad == 0 {
        return Ok((*first).clone());
    }
    let rows: usize = parts.iter().map(|t| t.shape()[0]).sum::<usize>() + pad;
    let mut shape = first.shape().to_vec();
    shape[0] = rows;
    by_dtype!(first.dtype(), T => {
        let mut v: Vec<T> = Vec::new();
        for p in parts {
            v.extend_from_slice(p.as_slice::<T>().map_err(internal)?);
        }
        let last = parts.last().expect("non-empty").as_slice::<T>().map_err(internal)?;
        let row: usize = shape[1..].iter().product();
        for _ in 0..pad {
            v.extend_from_slice(&last[..row]);
        }
        Tensor::from_vec(&shape, v).map_err(internal)
    })
}

/// Each part padded up to the parts' largest non-batch dims with its own first element, as
/// TF's batching_util.cc `AddPadding` (ranks 1 to 6; a part already at full size is kept).
fn pad_to_largest(parts: &[&Tensor]) -> Result<Vec<Tensor>, Status> {
    let rank = parts.first().map_or(0, |t| t.shape().len());
    let mut max = vec![0usize; rank];
    for t in parts {
        for (m, &d) in max.iter_mut().zip(t.shape()) {
            *m = (*m).max(d);
        }
    }
    parts
        .iter()
        .map(|t| {
            if !(1..=6).contains(&rank) {
                return Err(Status::invalid(
                    "Only tensors with rank from 1 to 6 can be padded.",
                ));
            }
            let shape = t.shape();
            if shape[1..] == max[1..] {
                return Ok((*t).clone());
            }
            if t.is_empty() {
                return Err(Status::invalid(
                    "Got empty tensor in batch of non-empty tensors.",
                ));
            }
            let mut out_shape = max.clone();
            out_shape[0] = shape[0];
            by_dtype!(t.dtype(), T => {
                let src = t.as_slice::<T>().map_err(internal)?;
                Tensor::from_vec(&out_shape, pad_rows(src, shape, &out_shape)).map_err(internal)
            })
        })
        .collect()
}

/// `src` (row-major, `shape`) copied into a `to`-shaped array whose extra cells hold `src[0]`.
fn pad_rows<T: Clone>(src: &[T], shape: &[usize], to: &[usize]) -> Vec<T> {
    let n: usize = to.iter().product();
    let mut out = vec![src[0].clone(); n];
    let inner = *shape.last().expect("rank >= 1");
    if inner == 0 {
        return out;
    }
    // Output strides, then one contiguous run of `inner` per index of the leading dims.
    let rank = shape.len();
    let mut stride = vec![1usize; rank];
    for d in (0..rank - 1).rev() {
        stride[d] = stride[d + 1] * to[d + 1];
    }
    let mut idx = vec![0usize; rank - 1];
    for run in src.chunks_exact(inner) {
        let off: usize = idx.iter().zip(&stride).map(|(i, s)| i * s).sum();
        out[off..off + inner].clone_from_slice(run);
        for d in (0..rank - 1).rev() {
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    out
}

/// Rows `start..start + n` of `t`.
fn slice0(t: &Tensor, start: usize, n: usize) -> Result<Tensor, Status> {
    let mut shape = t.shape().to_vec();
    let row: usize = shape[1..].iter().product();
    shape[0] = n;
    by_dtype!(t.dtype(), T => {
        let s = t.as_slice::<T>().map_err(internal)?;
        Tensor::from_vec(&shape, s[start * row..(start + n) * row].to_vec()).map_err(internal)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concat_pad_and_slice() {
        let a = Tensor::from_vec(&[1, 2], vec![1.0f32, 2.0]).unwrap();
        let b = Tensor::from_vec(&[2, 2], vec![3.0f32, 4.0, 5.0, 6.0]).unwrap();
        let c = concat0(&[&a, &b], 1).unwrap();
        assert_eq!(c.shape(), &[4, 2]);
        assert_eq!(
            c.as_slice::<f32>().unwrap(),
            &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 3.0, 4.0]
        );
        let s = slice0(&c, 1, 2).unwrap();
        assert_eq!(s.as_slice::<f32>().unwrap(), &[3.0, 4.0, 5.0, 6.0]);
    }

    #[test]
    fn padding_uses_each_tensors_first_element() {
        // [1, 2, 2] and [1, 1, 3] -> both [1, 2, 3].
        let a = Tensor::from_vec(&[1, 2, 2], vec![7i32, 1, 2, 3]).unwrap();
        let b = Tensor::from_vec(&[1, 1, 3], vec![5i32, 6, 8]).unwrap();
        let p = pad_to_largest(&[&a, &b]).unwrap();
        assert_eq!(p[0].shape(), &[1, 2, 3]);
        assert_eq!(p[0].as_slice::<i32>().unwrap(), &[7, 1, 7, 2, 3, 7]);
        assert_eq!(p[1].as_slice::<i32>().unwrap(), &[5, 6, 8, 5, 5, 5]);
        // Two rows, strings.
        let s = Tensor::from_vec(
            &[2, 1],
            vec![Bytes::from(&b"x"[..]), Bytes::from(&b"y"[..])],
        )
        .unwrap();
        let l = Tensor::from_vec(
            &[1, 2],
            vec![Bytes::from(&b"p"[..]), Bytes::from(&b"q"[..])],
        )
        .unwrap();
        let p = pad_to_largest(&[&s, &l]).unwrap();
        assert_eq!(p[0].shape(), &[2, 2]);
        let got: Vec<&[u8]> = p[0]
            .as_slice::<Bytes>()
            .unwrap()
            .iter()
            .map(|b| &b[..])
            .collect();
        assert_eq!(got, vec![&b"x"[..], b"x", b"y", b"x"]);
        // Empty tensors cannot be padded; rank 7 is refused as in TF.
        let e = Tensor::from_vec(&[0, 1], Vec::<f32>::new()).unwrap();
        let f = Tensor::from_vec(&[1, 2], vec![1.0f32, 2.0]).unwrap();
        assert!(pad_to_largest(&[&e, &f]).is_err());
        let r7 = Tensor::from_vec(&[1; 7], vec![1.0f32]).unwrap();
        assert!(pad_to_largest(&[&r7, &r7]).is_err());
    }
}

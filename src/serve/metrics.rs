//! Prometheus metrics in TF Serving's names and page format (util/prometheus_exporter.cc):
//! `/tensorflow/serving/request_count` is exported as `:tensorflow:serving:request_count`, one
//! `# TYPE` line per metric, no `# HELP`, histograms as cumulative `_bucket{le=…}` lines plus
//! `_sum` and `_count`. Latency buckets are TF's (µs, Exponential(10, 1.8, 33)).
//! tfhub additions, under `:tfhub:serving:`: batch sizes, queue depth, in-flight requests and
//! per-version/signature request counts.
//!
//! Also owns the structured log line writer: one JSON object per line on stderr.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Map, Value};

type Labels = Vec<(&'static str, String)>;

#[derive(Debug, Clone)]
struct Hist {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    n: u64,
}

impl Hist {
    fn new(bounds: &'static [f64]) -> Hist {
        Hist {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
            n: 0,
        }
    }
    fn observe(&mut self, v: f64) {
        let i = self
            .bounds
            .iter()
            .position(|&b| v < b)
            .unwrap_or(self.bounds.len());
        self.counts[i] += 1;
        self.sum += v;
        self.n += 1;
    }
}

fn exponential(scale: f64, growth: f64, n: usize) -> Vec<f64> {
    // TF's Buckets::Exponential: scale * growth^i for i in 0..n.
    (0..n).map(|i| scale * growth.powi(i as i32)).collect()
}

fn leak(v: Vec<f64>) -> &'static [f64] {
    Box::leak(v.into_boxed_slice())
}

/// One metric's series, found by comparing borrowed label values (no allocation once a
/// series exists: requests update metrics three times each, and this runs under the lock).
type Family<V> = Vec<(Labels, V)>;

fn slot<'a, V>(
    fam: &'a mut BTreeMap<&'static str, Family<V>>,
    name: &'static str,
    labels: &[(&'static str, &str)],
    init: impl FnOnce() -> V,
) -> &'a mut V {
    let series = fam.entry(name).or_default();
    let i = match series.iter().position(|(l, _)| {
        l.len() == labels.len() && l.iter().zip(labels).all(|(a, b)| a.0 == b.0 && a.1 == b.1)
    }) {
        Some(i) => i,
        None => {
            let owned = labels.iter().map(|(k, v)| (*k, (*v).to_string())).collect();
            series.push((owned, init()));
            series.len() - 1
        }
    };
    &mut series[i].1
}

#[derive(Debug, Default)]
struct Inner {
    counters: BTreeMap<&'static str, Family<i64>>,
    gauges: BTreeMap<&'static str, Family<i64>>,
    hists: BTreeMap<&'static str, Family<Hist>>,
}

/// Process-wide metrics (one per server).
#[derive(Debug)]
pub struct Metrics {
    inner: Mutex<Inner>,
    latency_buckets: &'static [f64],
    batch_buckets: &'static [f64],
    queue_buckets: &'static [f64],
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            inner: Mutex::default(),
            latency_buckets: leak(exponential(10.0, 1.8, 33)),
            batch_buckets: leak(exponential(1.0, 2.0, 15)),
            queue_buckets: leak(exponential(100.0, 1.2, 52)),
        }
    }
}

const REQUEST_COUNT: &str = "/tensorflow/serving/request_count";
const REQUEST_LATENCY: &str = "/tensorflow/serving/request_latency";
const RUNTIME_LATENCY: &str = "/tensorflow/serving/runtime_latency";
const QUEUING_LATENCY: &str = "/tensorflow/serving/batching_session/queuing_latency";
const BATCH_SIZE: &str = "/tfhub/serving/batch_size";
const QUEUE_DEPTH: &str = "/tfhub/serving/queue_depth";
const IN_FLIGHT: &str = "/tfhub/serving/in_flight_requests";
const VERSION_REQUESTS: &str = "/tfhub/serving/version_request_count";

impl Metrics {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        // A panic elsewhere while holding the lock must not take metrics down with it.
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }

    /// One finished request: `request_count{model_name,status}` always, latency on success.
    pub fn request(
        &self,
        model: &str,
        api: &str,
        entrypoint: &str,
        status: &str,
        latency: Duration,
    ) {
        let us = latency.as_secs_f64() * 1e6;
        self.with(|m| {
            *slot(
                &mut m.counters,
                REQUEST_COUNT,
                &[("model_name", model), ("status", status)],
                || 0,
            ) += 1;
            if status == "OK" {
                slot(
                    &mut m.hists,
                    REQUEST_LATENCY,
                    &[
                        ("model_name", model),
                        ("API", api),
                        ("entrypoint", entrypoint),
                    ],
                    || Hist::new(self.latency_buckets),
                )
                .observe(us);
            }
        });
    }

    /// Time spent in the model for one call (`runtime_latency`).
    pub fn runtime(&self, model: &str, api: &str, latency: Duration) {
        let us = latency.as_secs_f64() * 1e6;
        self.with(|m| {
            slot(
                &mut m.hists,
                RUNTIME_LATENCY,
                &[("model_name", model), ("API", api), ("runtime", "tfhub")],
                || Hist::new(self.latency_buckets),
            )
            .observe(us)
        });
    }

    /// A request served by `version` / `signature` (tfhub's per-version count).
    pub fn served(&self, model: &str, version: i64, signature: &str) {
        let version = version.to_string();
        self.with(|m| {
            *slot(
                &mut m.counters,
                VERSION_REQUESTS,
                &[
                    ("model_name", model),
                    ("version", &version),
                    ("signature", signature),
                ],
                || 0,
            ) += 1
        });
    }

    /// Rows in one executed batch (after padding).
    pub fn batch_size(&self, model: &str, rows: usize) {
        self.with(|m| {
            slot(&mut m.hists, BATCH_SIZE, &[("model_name", model)], || {
                Hist::new(self.batch_buckets)
            })
            .observe(rows as f64)
        });
    }

    /// Time a request waited in a batching queue.
    pub fn queuing_latency(&self, d: Duration) {
        let us = d.as_secs_f64() * 1e6;
        self.with(|m| {
            slot(
                &mut m.hists,
                QUEUING_LATENCY,
                &[("thread_pool_name", "model_server_batch_threads")],
                || Hist::new(self.queue_buckets),
            )
            .observe(us)
        });
    }

    /// Requests waiting in batching queues (+1 queued, -n taken).
    pub fn queue_depth(&self, model: &str, delta: i64) {
        self.with(|m| *slot(&mut m.gauges, QUEUE_DEPTH, &[("model_name", model)], || 0) += delta);
    }

    /// Requests admitted and not yet answered (+1 / -1).
    pub fn in_flight(&self, delta: i64) {
        self.with(|m| *slot(&mut m.gauges, IN_FLIGHT, &[], || 0) += delta);
    }

    /// The Prometheus text page.
    pub fn render(&self) -> String {
        fn name(n: &str) -> String {
            let mut s: String = n
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '_' {
                        c
                    } else {
                        ':'
                    }
                })
                .collect();
            if s.starts_with(|c: char| c.is_ascii_digit()) {
                s.insert(0, '_');
            }
            s
        }
        fn labels(l: &Labels, extra: Option<(&str, String)>) -> String {
            let mut parts: Vec<String> = l
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
                .collect();
            if let Some((k, v)) = extra {
                parts.push(format!("{k}=\"{v}\""));
            }
            format!("{{{}}}", parts.join(","))
        }
        fn sorted<V: Clone>(
            f: &BTreeMap<&'static str, Family<V>>,
        ) -> BTreeMap<(&'static str, Labels), V> {
            f.iter()
                .flat_map(|(n, series)| series.iter().map(|(l, v)| ((*n, l.clone()), v.clone())))
                .collect()
        }
        let m = self.with(|m| (sorted(&m.counters), sorted(&m.gauges), sorted(&m.hists)));
        let mut lines: Vec<String> = Vec::new();
        let mut last = "";
        for (kind, series) in [("counter", &m.0), ("gauge", &m.1)] {
            for ((n, l), v) in series {
                if *n != last {
                    lines.push(format!("# TYPE {} {kind}", name(n)));
                    last = n;
                }
                lines.push(format!("{}{} {v}", name(n), labels(l, None)));
            }
        }
        for ((n, l), h) in &m.2 {
            let nm = name(n);
            if *n != last {
                lines.push(format!("# TYPE {nm} histogram"));
                last = n;
            }
            let mut cum = 0;
            for (i, c) in h.counts.iter().enumerate() {
                cum += c;
                let le = h
                    .bounds
                    .get(i)
                    .map_or("+Inf".to_string(), |b| format!("{b}"));
                lines.push(format!("{nm}_bucket{} {cum}", labels(l, Some(("le", le)))));
            }
            lines.push(format!("{nm}_sum{} {}", labels(l, None), h.sum));
            lines.push(format!("{nm}_count{} {}", labels(l, None), h.n));
        }
        let mut out = String::new();
        for l in lines {
            writeln!(out, "{l}").expect("String write");
        }
        out
    }
}

/// One structured log line (JSON on stderr): `{"ts", "level", "msg", fields...}`.
pub fn log(level: &str, msg: &str, fields: &[(&str, Value)]) {
    let mut m = Map::new();
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    m.insert("ts".into(), Value::from((ts * 1000.0).round() / 1000.0));
    m.insert("level".into(), Value::from(level));
    m.insert("msg".into(), Value::from(msg));
    for (k, v) in fields {
        m.insert((*k).into(), v.clone());
    }
    eprintln!("{}", Value::Object(m));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_uses_tf_names_and_format() {
        let m = Metrics::default();
        m.request("m", "predict", "REST", "OK", Duration::from_micros(15));
        m.request(
            "m",
            "predict",
            "REST",
            "NOT_FOUND",
            Duration::from_micros(15),
        );
        let page = m.render();
        assert!(page.contains("# TYPE :tensorflow:serving:request_count counter\n"));
        assert!(
            page.contains(":tensorflow:serving:request_count{model_name=\"m\",status=\"OK\"} 1\n")
        );
        assert!(page.contains(
            ":tensorflow:serving:request_latency_bucket{model_name=\"m\",API=\"predict\",entrypoint=\"REST\",le=\"10\"} 0\n"
        ));
        assert!(page.contains(
            ":tensorflow:serving:request_latency_bucket{model_name=\"m\",API=\"predict\",entrypoint=\"REST\",le=\"18\"} 1\n"
        ));
        assert!(page.ends_with('\n'));
    }
}

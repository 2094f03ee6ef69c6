//! Model lifecycle, as TF Serving's file-system source and AvailabilityPreservingPolicy do it:
//! `base_path/<version>/saved_model.pb` with numeric version dirs, a version policy (latest N,
//! all, specific), labels, polling every `--file_system_poll_wait_seconds`.
//!
//! Each model keeps its loaded versions in an immutable map behind an `RwLock<Arc<_>>`; a
//! request clones the `Arc` of the servable it resolves and keeps it for its whole life, so
//! publishing a new map (load) or dropping a version from it (unload) never fails a request in
//! flight: an unloaded version is freed when its last request finishes. New versions load
//! before old ones unload (availability preserving), and a failed load leaves the old version
//! serving. Failed loads are retried on later polls, at most `MAX_LOAD_RETRIES` times.
//!
//! Beyond TF: a `base_path` that is itself a SavedModel directory is served as version 1, and
//! one that does not exist locally is resolved as a hub handle (tfhub.dev, Kaggle, URL,
//! `file://`) through the hub cache, then served as version 1.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::batch::{Batcher, Pool};
use super::config::{ModelConfig, VersionPolicy};
use super::metrics::{log, Metrics};
use super::status::{chain, Code, Status};
use crate::api::{LoadOptions, Model};
use crate::tensor::Tensor;

/// TF's `max_num_load_retries` default.
const MAX_LOAD_RETRIES: u32 = 5;

/// `ModelVersionStatus.State`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Loading.
    Loading,
    /// Serving.
    Available,
    /// Unloaded, or failed to load.
    End,
}

impl State {
    /// The proto enum name.
    pub fn name(self) -> &'static str {
        match self {
            State::Loading => "LOADING",
            State::Available => "AVAILABLE",
            State::End => "END",
        }
    }
    /// The proto enum value.
    pub fn value(self) -> i32 {
        match self {
            State::Loading => 20,
            State::Available => 30,
            State::End => 50,
        }
    }
}

/// Status of one version.
#[derive(Debug, Clone)]
pub struct VersionStatus {
    /// Lifecycle state.
    pub state: State,
    /// The load error, if it failed.
    pub error: Option<String>,
    attempts: u32,
}

/// One loaded version of a model.
#[derive(Debug)]
pub struct Servable {
    /// The model name.
    pub name: String,
    /// The version number.
    pub version: i64,
    /// The loaded model.
    pub model: Model,
    /// `tfhub inspect --json`'s signatures of the `serve` meta graph (for metadata replies).
    pub signatures: Value,
    batchers: Mutex<BTreeMap<String, Arc<Batcher>>>,
    batching: Option<(Arc<Pool>, Arc<Metrics>)>,
    me: Weak<Servable>,
    /// Moving average of unbatched call time per input unit (ns × 1024; 0 = not measured yet),
    /// which decides whether a call is cheap enough to run inline on an I/O thread.
    cost_per_unit: AtomicU64,
}

impl Servable {
    /// The estimated duration of an unbatched call on `units` input units ([`input_units`]),
    /// `None` before the first call was measured.
    pub fn estimated_call(&self, units: u64) -> Option<Duration> {
        match self.cost_per_unit.load(Ordering::Relaxed) {
            0 => None,
            c => Some(Duration::from_nanos(c.saturating_mul(units.max(1)) / 1024)),
        }
    }

    /// Records one unbatched call of `units` input units that took `took`.
    pub fn record_call(&self, units: u64, took: Duration) {
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        let per = (ns.saturating_mul(1024) / units.max(1)).max(1);
        let old = self.cost_per_unit.load(Ordering::Relaxed);
        // A racing update may be lost; this is an estimate.
        let new = if old == 0 {
            per
        } else {
            (old / 8).saturating_mul(7).saturating_add(per / 8).max(1)
        };
        self.cost_per_unit.store(new, Ordering::Relaxed);
    }

    /// The batching queue of `signature`, started on first use; `None` without batching.
    pub fn batcher(&self, signature: &str) -> Option<Arc<Batcher>> {
        let (pool, metrics) = self.batching.as_ref()?;
        let mut b = self.batchers.lock().unwrap_or_else(|p| p.into_inner());
        Some(
            b.entry(signature.to_string())
                .or_insert_with(|| {
                    Batcher::start(
                        self.me.clone(),
                        self.name.clone(),
                        signature.to_string(),
                        pool.clone(),
                        metrics.clone(),
                    )
                })
                .clone(),
        )
    }
}

/// A request's size for cost estimates: its elements, plus one per 16 bytes of string data.
pub fn input_units(inputs: &[(String, Tensor)]) -> u64 {
    inputs
        .iter()
        .map(|(_, t)| {
            let strings = t
                .as_slice::<crate::tensor::Bytes>()
                .map_or(0, |s| s.iter().map(|b| b.len() / 16).sum::<usize>());
            (t.len() + strings) as u64
        })
        .sum()
}

impl Drop for Servable {
    fn drop(&mut self) {
        let b = self.batchers.get_mut().unwrap_or_else(|p| p.into_inner());
        for q in b.values() {
            q.close();
        }
        log(
            "info",
            "unloaded",
            &[
                ("model", json!(self.name)),
                ("version", json!(self.version)),
            ],
        );
    }
}

/// Which version a request names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionSel {
    /// The highest loaded version.
    Latest,
    /// `/versions/N`.
    Number(i64),
    /// `/labels/L`.
    Label(String),
}

/// One configured model.
#[derive(Debug)]
pub struct ModelEntry {
    /// Its config.
    pub config: ModelConfig,
    live: RwLock<Arc<BTreeMap<i64, Arc<Servable>>>>,
    status: Mutex<BTreeMap<i64, VersionStatus>>,
    resolved: Mutex<Option<PathBuf>>,
}

impl ModelEntry {
    /// The loaded versions (a snapshot).
    pub fn live(&self) -> Arc<BTreeMap<i64, Arc<Servable>>> {
        self.live.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Every version ever seen, newest first.
    pub fn statuses(&self) -> Vec<(i64, VersionStatus)> {
        let s = self.status.lock().unwrap_or_else(|p| p.into_inner());
        s.iter().rev().map(|(v, st)| (*v, st.clone())).collect()
    }

    fn set_status(&self, v: i64, state: State, error: Option<String>) {
        let mut s = self.status.lock().unwrap_or_else(|p| p.into_inner());
        let e = s.entry(v).or_insert(VersionStatus {
            state,
            error: None,
            attempts: 0,
        });
        e.state = state;
        if state == State::Loading {
            e.attempts += 1;
        }
        e.error = error;
    }

    fn publish(&self, f: impl FnOnce(&mut BTreeMap<i64, Arc<Servable>>)) {
        let mut g = self.live.write().unwrap_or_else(|p| p.into_inner());
        let mut m = (**g).clone();
        f(&mut m);
        *g = Arc::new(m);
    }
}

/// All configured models, their loader and poller.
#[derive(Debug)]
pub struct Manager {
    models: BTreeMap<String, Arc<ModelEntry>>,
    load: LoadOptions,
    batching: Option<Arc<Pool>>,
    metrics: Arc<Metrics>,
    stop: AtomicBool,
}

impl Manager {
    /// A manager for `configs`; nothing is loaded yet.
    pub fn new(
        configs: Vec<ModelConfig>,
        load: LoadOptions,
        batching: Option<Arc<Pool>>,
        metrics: Arc<Metrics>,
    ) -> Arc<Manager> {
        let models = configs
            .into_iter()
            .map(|c| {
                (
                    c.name.clone(),
                    Arc::new(ModelEntry {
                        config: c,
                        live: RwLock::new(Arc::new(BTreeMap::new())),
                        status: Mutex::new(BTreeMap::new()),
                        resolved: Mutex::new(None),
                    }),
                )
            })
            .collect();
        Arc::new(Manager {
            models,
            load,
            batching,
            metrics,
            stop: AtomicBool::new(false),
        })
    }

    /// The configured models, by name.
    pub fn models(&self) -> &BTreeMap<String, Arc<ModelEntry>> {
        &self.models
    }

    /// Resolves a request's model and version to a loaded servable (TF's messages and codes).
    ///
    /// # Errors
    /// NOT_FOUND for unknown models or versions not loaded; INVALID_ARGUMENT for an unknown
    /// label.
    pub fn find(&self, name: &str, sel: &VersionSel) -> Result<Arc<Servable>, Status> {
        let not_found =
            |what: String| Status::not_found(format!("Servable not found for request: {what}"));
        let entry = self.models.get(name);
        let live = entry.map(|e| e.live()).unwrap_or_default();
        match sel {
            VersionSel::Latest => live
                .values()
                .next_back()
                .cloned()
                .ok_or_else(|| not_found(format!("Latest({name})"))),
            VersionSel::Number(v) => live
                .get(v)
                .cloned()
                .ok_or_else(|| not_found(format!("Specific({name}, {v})"))),
            VersionSel::Label(l) => {
                let Some(entry) = entry else {
                    return Err(not_found(format!("Latest({name})")));
                };
                let v = entry.config.labels.get(l).ok_or_else(|| {
                    Status::invalid(format!("Unrecognized servable version label: {l}"))
                })?;
                live.get(v)
                    .cloned()
                    .ok_or_else(|| not_found(format!("Specific({name}, {v})")))
            }
        }
    }

    /// One poll of every model: load new aspired versions, then unload unaspired ones.
    pub fn poll_all(self: &Arc<Self>) {
        for e in self.models.values() {
            self.poll(e);
        }
    }

    /// Loads the initial versions; fails like TF's startup if an aspired version fails.
    ///
    /// # Errors
    /// The list of versions that did not become available.
    pub fn initial_load(self: &Arc<Self>) -> Result<(), String> {
        self.poll_all();
        let mut failed = Vec::new();
        for (name, e) in &self.models {
            for (v, st) in e.statuses() {
                if let Some(err) = st.error {
                    failed.push(format!("{{name: {name} version: {v}}} due to error: {err}"));
                }
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{} servable(s) did not become available: {}",
                failed.len(),
                failed.join(", ")
            ))
        }
    }

    /// Polls every `wait` until [`Manager::stop`]; `None` polls never (after the first).
    pub fn spawn_poller(
        self: &Arc<Self>,
        wait: Option<Duration>,
    ) -> Option<std::thread::JoinHandle<()>> {
        let wait = wait?;
        let me = self.clone();
        Some(
            std::thread::Builder::new()
                .name("version-poller".into())
                .spawn(move || {
                    let mut next = Instant::now() + wait;
                    while !me.stop.load(Ordering::SeqCst) {
                        if Instant::now() >= next {
                            me.poll_all();
                            next = Instant::now() + wait;
                        }
                        std::thread::sleep(
                            Duration::from_millis(20).min(wait.max(Duration::from_millis(1))),
                        );
                    }
                })
                .expect("spawning the poller"),
        )
    }

    /// Stops the poller.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    fn base_dir(&self, e: &ModelEntry) -> Result<PathBuf, String> {
        let mut r = e.resolved.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = &*r {
            return Ok(p.clone());
        }
        let raw = Path::new(&e.config.base_path);
        let p = if raw.exists() {
            raw.to_path_buf()
        } else {
            crate::api::resolve(raw).map_err(|err| chain(&err))?
        };
        *r = Some(p.clone());
        Ok(p)
    }

    /// Version numbers on disk: numeric child dirs, or 1 for a plain SavedModel directory.
    fn versions_on_disk(dir: &Path) -> Result<BTreeMap<i64, PathBuf>, String> {
        if dir.join("saved_model.pb").is_file() || dir.is_file() {
            return Ok(BTreeMap::from([(1, dir.to_path_buf())]));
        }
        let rd =
            std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        let mut out = BTreeMap::new();
        for ent in rd.flatten() {
            let name = ent.file_name();
            let Some(v) = name.to_str().and_then(|s| s.parse::<i64>().ok()) else {
                continue;
            };
            if v >= 0 && ent.path().is_dir() {
                out.insert(v, ent.path());
            }
        }
        Ok(out)
    }

    fn poll(self: &Arc<Self>, e: &Arc<ModelEntry>) {
        let name = &e.config.name;
        let on_disk = match self.base_dir(e).and_then(|d| Self::versions_on_disk(&d)) {
            Ok(v) => v,
            Err(err) => {
                log(
                    "error",
                    "cannot poll base path",
                    &[("model", json!(name)), ("error", json!(err))],
                );
                return;
            }
        };
        if on_disk.is_empty() {
            log(
                "warn",
                "no versions found under base path; did you forget to name your leaf directory \
                 as a number (eg. '/1/')?",
                &[
                    ("model", json!(name)),
                    ("base_path", json!(e.config.base_path)),
                ],
            );
        }
        let aspired: Vec<i64> = match &e.config.policy {
            VersionPolicy::Latest(n) => on_disk.keys().rev().take(*n).copied().collect(),
            VersionPolicy::All => on_disk.keys().rev().copied().collect(),
            VersionPolicy::Specific(vs) => {
                let mut v: Vec<i64> = vs
                    .iter()
                    .copied()
                    .filter(|v| on_disk.contains_key(v))
                    .collect();
                v.sort_unstable_by(|a, b| b.cmp(a));
                v
            }
        };
        // Load first (highest first), then unload: availability preserving.
        let live = e.live();
        for v in &aspired {
            if live.contains_key(v) {
                continue;
            }
            let attempts = e
                .statuses()
                .iter()
                .find(|(x, _)| x == v)
                .map_or(0, |(_, s)| s.attempts);
            if attempts > MAX_LOAD_RETRIES {
                continue;
            }
            self.load_version(e, *v, &on_disk[v]);
        }
        let gone: Vec<i64> = e
            .live()
            .keys()
            .filter(|v| !aspired.contains(v))
            .copied()
            .collect();
        if !gone.is_empty() {
            e.publish(|m| {
                for v in &gone {
                    m.remove(v);
                }
            });
            for v in gone {
                e.set_status(v, State::End, None);
                log(
                    "info",
                    "unloading",
                    &[("model", json!(name)), ("version", json!(v))],
                );
            }
        }
    }

    fn load_version(self: &Arc<Self>, e: &Arc<ModelEntry>, v: i64, dir: &Path) {
        let name = e.config.name.clone();
        e.set_status(v, State::Loading, None);
        let t0 = Instant::now();
        let loaded = Model::load_with(dir, &self.load).map_err(|err| Status::from(err).msg);
        let sigs = crate::api::inspect(dir)
            .map(|i| signatures_of(&i.json))
            .unwrap_or(Value::Null);
        match loaded {
            Ok(model) => {
                let batching = self.batching.clone().map(|p| (p, self.metrics.clone()));
                let sv = Arc::new_cyclic(|me| Servable {
                    name: name.clone(),
                    version: v,
                    model,
                    signatures: sigs,
                    batchers: Mutex::new(BTreeMap::new()),
                    batching,
                    me: me.clone(),
                    cost_per_unit: AtomicU64::new(0),
                });
                e.publish(|m| {
                    m.insert(v, sv);
                });
                e.set_status(v, State::Available, None);
                log(
                    "info",
                    "loaded",
                    &[
                        ("model", json!(name)),
                        ("version", json!(v)),
                        ("ms", json!(t0.elapsed().as_millis() as u64)),
                    ],
                );
            }
            Err(err) => {
                log(
                    "error",
                    "load failed",
                    &[
                        ("model", json!(name)),
                        ("version", json!(v)),
                        ("error", json!(err)),
                    ],
                );
                e.set_status(v, State::End, Some(err));
            }
        }
    }
}

/// The `serve` meta graph's signatures from an inspection (the first meta graph otherwise).
fn signatures_of(inspection: &Value) -> Value {
    let metas = inspection["meta_graphs"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let serve = metas
        .iter()
        .find(|m| {
            m["tags"]
                .as_array()
                .is_some_and(|t| t.len() == 1 && t[0] == "serve")
        })
        .or(metas.first());
    serve.map_or(Value::Null, |m| m["signatures"].clone())
}

/// Maps a status code to the `error_code` enum name for status replies.
pub fn code_name(c: Code) -> &'static str {
    c.name()
}

//! `tfhub` subcommands: `inspect`, `run`, `embed`, `bench`, `serve`, `download`, `cache`.
//! Every model-taking command accepts a directory, a `.pb` file or a hub handle.

pub mod hub;
mod malloc;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, Context};
use clap::{Parser, Subcommand};
use serde_json::Value;

use tfhub::api::json::{tensor_from_json, tensor_to_json};

#[derive(Parser)]
#[command(name = "tfhub", version, about = "TensorFlow Hub models in pure Rust")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Download a model into the cache and print its directory.
    Download(hub::DownloadArgs),
    /// Inspect or clean the model cache.
    Cache(hub::CacheArgs),
    /// Show a model's tags, signatures, assets and variables (like `saved_model_cli show --all`).
    Inspect {
        /// SavedModel directory or frozen GraphDef `.pb`.
        model: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Meta graph tags used to check which entry points are runnable (comma-separated;
        /// `--tags ""` is the empty set).
        #[arg(long)]
        tags: Option<String>,
    },
    /// Embed sentences with a text-embedding model (default: the bundled nnlm-style model).
    /// The entry point is chosen as hub.KerasLayer does: `__call__` (with training=False) when
    /// the model has one, else `serving_default`, `default`, or the only signature.
    Embed {
        /// Model directory or hub handle; defaults to the bundled model.
        #[arg(long)]
        model: Option<PathBuf>,
        /// Signature to run instead of the KerasLayer choice.
        #[arg(long)]
        signature: Option<String>,
        /// Output key (when the entry point returns a dict with several outputs).
        #[arg(long)]
        output_key: Option<String>,
        /// Meta graph tags (comma-separated; `--tags ""` is the empty set).
        #[arg(long)]
        tags: Option<String>,
        /// Print the chosen entry point on stderr.
        #[arg(long)]
        verbose: bool,
        /// Print JSON (`{"shape", "dtype", "values": [[...], ...]}`).
        #[arg(long)]
        json: bool,
        /// Sentences; read from stdin (one per line) when none are given.
        sentences: Vec<String>,
    },
    /// Time a signature: one warm-up call, then calls for `--seconds`; prints one JSON object.
    Bench {
        /// Model directory or hub handle.
        model: PathBuf,
        /// `{"<input name>": nested list}`; the first dimension is tiled up to `--batch`.
        #[arg(long)]
        inputs: PathBuf,
        /// Signature to run.
        #[arg(long, default_value = "serving_default")]
        signature: String,
        /// Time this object-graph function (dotted attribute path) instead of a signature.
        #[arg(long)]
        function: Option<String>,
        /// Constant keyword argument of `--function` (`seq_length=128`), repeatable.
        #[arg(long = "arg", value_name = "KEY=VALUE")]
        args: Vec<String>,
        /// Batch size (rows of every input, tiled cyclically).
        #[arg(long)]
        batch: Option<usize>,
        /// Seconds to time calls for.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Print JSON (the only format; kept for the documented contract).
        #[arg(long)]
        json: bool,
    },
    /// Serve models with TensorFlow Serving's REST and gRPC APIs and KServe v2
    /// (tensorflow_model_server's flags: `--model_name=M --model_base_path=DIR
    /// --rest_api_port=8501`; `tfhub serve --help` lists them).
    #[cfg(feature = "serve")]
    #[command(disable_help_flag = true)]
    Serve {
        /// tensorflow_model_server flags, `--name=value`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        args: Vec<String>,
    },
    /// Run a signature (or an object-graph function) on inputs.json; write outputs in the
    /// golden.json format.
    Run {
        /// SavedModel directory.
        model: PathBuf,
        /// `{"<input name>": nested list}`; for `--function`, keyed by argument name (a list
        /// argument as a JSON list, a ragged value as `{"values", "row_splits": [[outer], ...,
        /// [inner]]}`).
        #[arg(long)]
        inputs: PathBuf,
        /// Signature to run.
        #[arg(long, default_value = "serving_default")]
        signature: String,
        /// Call this object-graph function (dotted attribute path: `tokenize`, `__call__`,
        /// `encoder.mlm`) instead of a signature.
        #[arg(long)]
        function: Option<String>,
        /// Constant keyword argument of `--function` (`seq_length=128`, `training=false`),
        /// repeatable; the value is JSON if it parses, else a string.
        #[arg(long = "arg", value_name = "KEY=VALUE")]
        args: Vec<String>,
        /// Meta graph tags (comma-separated; `--tags ""` is the empty set).
        #[arg(long)]
        tags: Option<String>,
        /// Write here instead of stdout.
        #[arg(long)]
        output: Option<PathBuf>,
        /// Frozen GraphDefs: comma-separated tensors to fetch (`node` or `node:idx`); inputs are
        /// fed by node name and outputs keyed by these names.
        #[arg(long, value_delimiter = ',')]
        outputs: Vec<String>,
    },
}

/// The model bundled in the repository (an nnlm-style embedding made by tools/make_fixtures.py).
fn default_model() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nnlm_en_dim128")
}

/// Runs the CLI; errors print their whole cause chain joined by `: `.
pub fn main() -> ExitCode {
    malloc::keep_freed_memory();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("error: {}", chain.join(": "));
            ExitCode::FAILURE
        }
    }
}

/// Load options from the command line and the environment: `TFHUB_NO_FUSION=1` turns plan
/// fusion off, `TFHUB_NO_FREEZE=1` keeps variables as per-call reads (no freezing at load),
/// `TFHUB_PROFILE=1` turns per-op timing on (any value but empty or `0`).
fn load_options(tags: Option<&str>) -> tfhub::api::LoadOptions {
    let on = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty() && v != "0");
    let mut o = tfhub::api::LoadOptions {
        fusion: !on("TFHUB_NO_FUSION"),
        freeze: !on("TFHUB_NO_FREEZE"),
        profile: on("TFHUB_PROFILE"),
        ..Default::default()
    };
    if let Some(t) = tags {
        o.tags = t
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
    }
    o
}

fn load_model(model: &std::path::Path, tags: Option<&str>) -> anyhow::Result<tfhub::Model> {
    let dir = tfhub::api::resolve(model)?;
    Ok(tfhub::Model::load_with(&dir, &load_options(tags))?)
}

/// `--arg key=value` pairs: the value is JSON when it parses (`128`, `false`, `[1, 2]`),
/// Python's `True` / `False` / `None` too, else a string.
fn parse_args(args: &[String]) -> anyhow::Result<BTreeMap<String, tfhub::api::Value>> {
    let mut out = BTreeMap::new();
    for a in args {
        let (k, v) = a
            .split_once('=')
            .ok_or_else(|| anyhow!("--arg {a:?}: expected KEY=VALUE"))?;
        let j = match v {
            "True" => Value::Bool(true),
            "False" => Value::Bool(false),
            "None" => Value::Null,
            _ => serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string())),
        };
        out.insert(
            k.to_string(),
            tfhub::api::json::value_from_json(&j).with_context(|| format!("--arg {k}"))?,
        );
    }
    Ok(out)
}

/// Keyword arguments of a `--function` call: the inputs file's entries plus `--arg`s.
fn function_kwargs(
    obj: &serde_json::Map<String, Value>,
    args: &[String],
    batch: Option<usize>,
) -> anyhow::Result<BTreeMap<String, tfhub::api::Value>> {
    let mut kw = BTreeMap::new();
    for (k, v) in obj {
        let v = match (batch, v) {
            (Some(n), Value::Array(rows)) if !rows.is_empty() => {
                Value::Array(rows.iter().cycle().take(n).cloned().collect())
            }
            _ => v.clone(),
        };
        kw.insert(
            k.clone(),
            tfhub::api::json::value_from_json(&v).with_context(|| format!("input {k:?}"))?,
        );
    }
    for (k, v) in parse_args(args)? {
        if kw.insert(k.clone(), v).is_some() {
            anyhow::bail!("argument {k:?} given both in --inputs and as --arg");
        }
    }
    Ok(kw)
}

fn read_inputs(path: &std::path::Path) -> anyhow::Result<serde_json::Map<String, Value>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let v: Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", path.display()))?;
    match v {
        Value::Object(m) => Ok(m),
        _ => Err(anyhow!("{}: expected a JSON object", path.display())),
    }
}

fn feeds_for(
    sig: &tfhub::Signature,
    obj: &serde_json::Map<String, Value>,
    batch: Option<usize>,
) -> anyhow::Result<Vec<(String, tfhub::Tensor)>> {
    let mut feeds = Vec::new();
    for (k, val) in obj {
        let spec = sig.inputs().iter().find(|s| &s.key == k).ok_or_else(|| {
            anyhow!(
                "signature {:?} has no input {k:?}; expected {}",
                sig.name(),
                sig.describe_inputs()
            )
        })?;
        let val = match (batch, val) {
            (Some(n), Value::Array(rows)) if !rows.is_empty() => {
                Value::Array(rows.iter().cycle().take(n).cloned().collect())
            }
            _ => val.clone(),
        };
        let t = tensor_from_json(&val, spec.dtype).with_context(|| format!("input {k:?}"))?;
        feeds.push((k.clone(), t));
    }
    Ok(feeds)
}

/// Frozen graphs carry no input dtypes in a signature: floats become float32, integers int32
/// (TF's Placeholder defaults in exported graphs), strings string, booleans bool.
fn frozen_input(v: &Value) -> anyhow::Result<tfhub::Tensor> {
    let mut leaf = v;
    while let Value::Array(a) = leaf {
        match a.first() {
            Some(x) => leaf = x,
            None => break,
        }
    }
    let dtype = match leaf {
        Value::String(_) => tfhub::DType::String,
        Value::Bool(_) => tfhub::DType::Bool,
        Value::Number(n) if n.is_f64() => tfhub::DType::F32,
        Value::Number(_) => tfhub::DType::I32,
        _ => tfhub::DType::F32,
    };
    Ok(tensor_from_json(v, dtype)?)
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// CPU time of every thread of this process so far (`/proc/self/task/*/schedstat`, ns), or
/// `None` off Linux: with a busy machine the per-call CPU time is steadier than wall time.
fn process_cpu_ns() -> Option<u64> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let s = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += s.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

struct BenchArgs<'a> {
    model: &'a std::path::Path,
    inputs: &'a std::path::Path,
    signature: &'a str,
    function: Option<&'a str>,
    args: &'a [String],
    batch: Option<usize>,
    seconds: f64,
    threads: Option<usize>,
}

fn bench(b: BenchArgs<'_>) -> anyhow::Result<()> {
    let BenchArgs {
        model,
        inputs,
        signature,
        function,
        args,
        batch,
        seconds,
        threads,
    } = b;
    use std::time::Instant;
    if let Some(t) = threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build_global()?;
    }
    let obj = read_inputs(inputs)?;
    let t0 = Instant::now();
    let m = load_model(model, None)?;
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;
    let call: Box<dyn Fn() -> anyhow::Result<()> + '_>;
    let rows;
    if let Some(path) = function {
        let f = m.function(path)?;
        let kw = function_kwargs(&obj, args, batch)?;
        rows = batch.unwrap_or_else(|| {
            obj.values()
                .find_map(|v| v.as_array().map(Vec::len))
                .unwrap_or(1)
        });
        call = Box::new(move || {
            f.call(Vec::new(), kw.clone())?;
            Ok(())
        });
    } else {
        let sig = m.signature(signature)?;
        let feeds = feeds_for(sig, &obj, batch)?;
        rows = feeds
            .first()
            .and_then(|(_, t)| t.shape().first().copied())
            .unwrap_or(1);
        call = Box::new(move || {
            sig.call(feeds.clone())?;
            Ok(())
        });
    }
    // The parsed JSON (~30 bytes per number) is not needed once the feeds are built: freed,
    // the model's calls reuse its memory instead of adding to the peak RSS measured.
    drop(obj);
    let t1 = Instant::now();
    call()?;
    let first_call_ms = t1.elapsed().as_secs_f64() * 1e3;
    tfhub::graph::profile::reset();
    let mut lat = Vec::new();
    let cpu0 = process_cpu_ns();
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < seconds || lat.len() < 3 {
        let t = Instant::now();
        call()?;
        lat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let cpu_ms = match (cpu0, process_cpu_ns()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / 1e6 / lat.len() as f64),
        _ => None,
    };
    lat.sort_by(f64::total_cmp);
    let median = lat[lat.len() / 2];
    let v = serde_json::json!({
        "load_ms": load_ms,
        "first_call_ms": first_call_ms,
        "latency_ms": median,
        "min_ms": lat[0],
        "cpu_ms": cpu_ms,
        "per_s": rows as f64 / (median / 1e3),
        "peak_rss_mb": peak_rss_mb(),
        "calls": lat.len(),
        "batch": rows,
    });
    println!("{v}");
    let ops = tfhub::graph::profile::report();
    if !ops.is_empty() {
        // TFHUB_PROFILE=1: per-op-type time per call, on stderr so --json stays parseable.
        let calls = lat.len() as f64;
        eprintln!(
            "{:>10} {:>8}  op (ms per call; call ops include their bodies)",
            "ms", "evals"
        );
        for o in ops {
            let ms = o.total.as_secs_f64() * 1e3 / calls;
            eprintln!("{ms:>10.3} {:>8.1}  {}", o.calls as f64 / calls, o.op_type);
        }
    }
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.cmd {
        #[cfg(feature = "serve")]
        Cmd::Serve { mut args } => {
            // tensorflow/serving's image contract: MODEL_BASE_PATH (+ MODEL_NAME, default
            // "model") become the first flags, so explicit flags after them win.
            if let Ok(base) = std::env::var("MODEL_BASE_PATH") {
                let name = std::env::var("MODEL_NAME").unwrap_or_else(|_| "model".into());
                let base = format!("{}/{name}", base.trim_end_matches('/'));
                args.splice(
                    0..0,
                    [
                        format!("--model_name={name}"),
                        format!("--model_base_path={base}"),
                    ],
                );
            }
            let opts = tfhub::serve::flags::parse(&args).map_err(|e| anyhow!(e))?;
            let server = tfhub::serve::Server::start(opts)
                .map_err(|e| anyhow!("Failed to start server. Error: {e}"))?;
            server.run_until_signal();
        }
        Cmd::Download(a) => hub::run_download(&a)?,
        Cmd::Cache(a) => hub::run_cache(&a)?,
        Cmd::Inspect { model, json, tags } => {
            let i = tfhub::api::inspect_with(
                &tfhub::api::resolve(&model)?,
                &load_options(tags.as_deref()),
            )?;
            if json {
                println!("{}", serde_json::to_string_pretty(&i.json)?);
            } else {
                print!("{}", i.to_text());
            }
        }
        Cmd::Embed {
            model,
            signature,
            output_key,
            tags,
            verbose,
            json,
            mut sentences,
        } => {
            let model = model.unwrap_or_else(default_model);
            if sentences.is_empty() {
                use std::io::BufRead;
                for line in std::io::stdin().lock().lines() {
                    sentences.push(line.context("reading stdin")?);
                }
            }
            let as_dict = signature.is_some() && output_key.is_none();
            let opts = tfhub::api::KerasOptions {
                signature,
                output_key,
                signature_outputs_as_dict: as_dict,
                load: load_options(tags.as_deref()),
                ..Default::default()
            };
            let layer = tfhub::KerasLayer::with(tfhub::api::resolve(&model)?, opts)?;
            if verbose {
                eprintln!("entry point: {}", layer.entry_point());
            }
            let refs: Vec<&str> = sentences.iter().map(String::as_str).collect();
            let emb = layer.call(&refs)?;
            if json {
                let rows: Vec<Vec<f32>> = emb.outer_iter().map(|r| r.to_vec()).collect();
                let v =
                    serde_json::json!({"shape": emb.shape(), "dtype": "float32", "values": rows});
                println!("{v}");
            } else {
                println!("({}, {}) float32", emb.nrows(), emb.ncols());
                for (s, row) in sentences.iter().zip(emb.outer_iter()) {
                    let head: Vec<String> = row.iter().take(6).map(|x| format!("{x:.4}")).collect();
                    println!(
                        "{s:?}: [{}{}]",
                        head.join(", "),
                        if row.len() > 6 { ", ..." } else { "" }
                    );
                }
            }
        }
        Cmd::Bench {
            model,
            inputs,
            signature,
            function,
            args,
            batch,
            seconds,
            threads,
            json: _,
        } => bench(BenchArgs {
            model: &model,
            inputs: &inputs,
            signature: &signature,
            function: function.as_deref(),
            args: &args,
            batch,
            seconds,
            threads,
        })?,
        Cmd::Run {
            model,
            inputs,
            signature,
            function,
            args,
            tags,
            output,
            outputs,
        } => {
            let m = load_model(&model, tags.as_deref())?;
            let obj = read_inputs(&inputs)?;
            if let Some(path) = function {
                let f = m.function(&path)?;
                let out = f.call(Vec::new(), function_kwargs(&obj, &args, None)?)?;
                let s = serde_json::to_string(&tfhub::api::json::result_to_json(&out))?;
                match output {
                    Some(p) => std::fs::write(&p, s)
                        .with_context(|| format!("cannot write {}", p.display()))?,
                    None => println!("{s}"),
                }
                return Ok(());
            }
            let outs: BTreeMap<String, tfhub::Tensor> = if m.is_frozen() {
                if outputs.is_empty() {
                    anyhow::bail!("a frozen GraphDef has no signatures: pass --outputs NAME,...");
                }
                let mut feeds = Vec::new();
                for (k, v) in &obj {
                    let t = match m.placeholder_dtype(k) {
                        Some(dt) => tensor_from_json(v, dt)?,
                        None => frozen_input(v)?,
                    };
                    feeds.push((k.as_str(), t));
                }
                let fetch: Vec<&str> = outputs.iter().map(String::as_str).collect();
                let vals = m.run_graph(&feeds, &fetch)?;
                outputs.iter().cloned().zip(vals).collect()
            } else {
                let sig = m.signature(&signature)?;
                sig.call(feeds_for(sig, &obj, None)?)?
            };
            // A variant (a TensorList) is an opaque in-graph value with no JSON form; TF's
            // own serving refuses it as a signature output too.
            if let Some((k, _)) = outs
                .iter()
                .find(|(_, t)| t.dtype() == tfhub::tensor::DType::Variant)
            {
                anyhow::bail!(
                    "output {k:?} is a variant tensor (a TensorList or other opaque value), \
                     which cannot be written as JSON; variant values are in-graph only"
                );
            }
            let j: BTreeMap<String, Value> = outs
                .iter()
                .map(|(k, t)| (k.clone(), tensor_to_json(t)))
                .collect();
            let s = serde_json::to_string(&j)?;
            match output {
                Some(p) => std::fs::write(&p, s)
                    .with_context(|| format!("cannot write {}", p.display()))?,
                None => println!("{s}"),
            }
        }
    }
    Ok(())
}

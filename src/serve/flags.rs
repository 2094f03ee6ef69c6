//! `tensorflow_model_server`'s command line (TSL `Flags::Parse` rules): only `--name=value`;
//! a bool also takes a bare `--name`; a repeated flag's last value wins (KServe appends its
//! args after the runtime's). Flags TF has but tfhub does not act on are accepted and noted
//! (so existing manifests start); unknown flags are errors (TF prints "unknown argument" and
//! continues; a typo is better caught).

use std::path::PathBuf;
use std::time::Duration;

use super::config::{self, BatchingParams, ModelConfig};

/// Parsed server options.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// gRPC port (`--port`, default 8500; the flag's 0 disables gRPC: `None`). `Some(0)` binds
    /// an ephemeral port (tests).
    pub grpc_port: Option<u16>,
    /// REST port (`--rest_api_port`; TF's default 0 = off = `None`).
    pub rest_port: Option<u16>,
    /// Address to bind (`--bind_address`, tfhub's; TF binds 0.0.0.0).
    pub bind: std::net::IpAddr,
    /// Models to serve.
    pub models: Vec<ModelConfig>,
    /// `--enable_batching` (+ `--batching_parameters_file`).
    pub batching: Option<BatchingParams>,
    /// `--file_system_poll_wait_seconds` (default 1): `None` = never re-poll.
    pub poll_wait: Option<Duration>,
    /// `--rest_api_timeout_in_ms` (default 30000; 0 = none), also the gRPC default deadline.
    pub timeout: Option<Duration>,
    /// `--max_body_bytes` (tfhub): request body cap (default 64 MiB).
    pub max_body_bytes: usize,
    /// `--max_tensor_elements` (tfhub): per input tensor (default 64 Mi elements).
    pub max_tensor_elements: usize,
    /// `--max_concurrent_requests` (tfhub): model calls running at once, unbatched (default: cores).
    pub max_concurrent: usize,
    /// `--max_queued_requests` (tfhub): unbatched requests waiting beyond that (default 256).
    pub max_queued: usize,
    /// `--drain_timeout_seconds` (tfhub): how long shutdown waits for in-flight requests.
    pub drain_timeout: Duration,
    /// `--saved_model_tags` (comma-separated, default `serve`).
    pub tags: Vec<String>,
    /// `--rest_api_enable_cors_support`.
    pub cors: bool,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            grpc_port: Some(8500),
            rest_port: None,
            bind: std::net::IpAddr::from([0, 0, 0, 0]),
            models: Vec::new(),
            batching: None,
            poll_wait: Some(Duration::from_secs(1)),
            timeout: Some(Duration::from_millis(30_000)),
            max_body_bytes: 64 << 20,
            max_tensor_elements: 64 << 20,
            max_concurrent: std::thread::available_parallelism().map_or(1, |n| n.get()),
            max_queued: 256,
            drain_timeout: Duration::from_secs(30),
            tags: vec!["serve".into()],
            cors: false,
        }
    }
}

/// Flags that TF Serving has and tfhub accepts without acting on them.
const ACCEPTED_IGNORED: &[&str] = &[
    "rest_api_num_threads",
    "grpc_max_threads",
    "num_load_threads",
    "num_unload_threads",
    "max_num_load_retries",
    "load_retry_interval_micros",
    "flush_filesystem_caches",
    "tensorflow_session_parallelism",
    "tensorflow_intra_op_parallelism",
    "tensorflow_inter_op_parallelism",
    "per_process_gpu_memory_fraction",
    "enable_model_warmup",
    "num_request_iterations_for_warmup",
    "remove_unused_fields_from_bundle_metagraph",
    "enable_signature_method_name_check",
    "enable_profiler",
    "xla_cpu_compilation_enabled",
    "xla_gpu_compilation_enabled",
    "skip_initialize_tpu",
    "monitoring_config_file",
    "allow_version_labels_for_unavailable_models",
    "model_config_file_poll_wait_seconds",
];

fn parse_bool(name: &str, v: Option<&str>) -> Result<bool, String> {
    match v.map(str::to_ascii_lowercase).as_deref() {
        None | Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(o) => Err(format!("--{name}: {o:?} is not a bool")),
    }
}

fn parse_num<T: std::str::FromStr>(name: &str, v: Option<&str>) -> Result<T, String> {
    let v = v.ok_or_else(|| format!("--{name} needs a value: --{name}=VALUE"))?;
    v.parse()
        .map_err(|_| format!("--{name}: {v:?} is not a valid number"))
}

/// Parses `tensorflow_model_server` flags (everything after `tfhub serve`).
///
/// # Errors
/// Unknown flags, values without `=`, unreadable config files, inconsistent flags (TF's
/// startup errors: no model, batching file without `--enable_batching`).
pub fn parse(args: &[String]) -> Result<ServeOptions, String> {
    let mut last: Vec<(String, Option<String>)> = Vec::new();
    for a in args {
        let Some(body) = a.strip_prefix("--").or_else(|| a.strip_prefix('-')) else {
            return Err(format!(
                "unknown argument: {a} (flags are --name=value; a space-separated value is not read)"
            ));
        };
        let (k, v) = match body.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (body.to_string(), None),
        };
        // Last one wins.
        last.retain(|(n, _)| *n != k);
        last.push((k, v));
    }
    let mut o = ServeOptions::default();
    let (mut name, mut base, mut config_file) = ("default".to_string(), None, None);
    let (mut enable_batching, mut batching_file) = (false, None);
    for (k, v) in &last {
        let v = v.as_deref();
        match k.as_str() {
            "port" => o.grpc_port = Some(parse_num::<u16>(k, v)?).filter(|&p| p != 0),
            "rest_api_port" => o.rest_port = Some(parse_num::<u16>(k, v)?).filter(|&p| p != 0),
            "bind_address" => o.bind = parse_num(k, v)?,
            "model_name" => name = v.unwrap_or_default().to_string(),
            "model_base_path" => base = v.map(str::to_string),
            "model_config_file" => config_file = v.filter(|s| !s.is_empty()).map(PathBuf::from),
            "enable_batching" => enable_batching = parse_bool(k, v)?,
            "batching_parameters_file" => {
                batching_file = v.filter(|s| !s.is_empty()).map(PathBuf::from)
            }
            "file_system_poll_wait_seconds" => {
                let s: i64 = parse_num(k, v)?;
                // TF: 0 polls once; negative never polls. Both: no poller after startup.
                o.poll_wait = (s > 0).then(|| Duration::from_secs(s as u64));
            }
            "rest_api_timeout_in_ms" => {
                let ms: i64 = parse_num(k, v)?;
                o.timeout = (ms > 0).then(|| Duration::from_millis(ms as u64));
            }
            "rest_api_enable_cors_support" => o.cors = parse_bool(k, v)?,
            "saved_model_tags" => {
                o.tags = v
                    .unwrap_or("serve")
                    .split(',')
                    .map(str::to_string)
                    .collect()
            }
            "max_body_bytes" => o.max_body_bytes = parse_num(k, v)?,
            "max_tensor_elements" => o.max_tensor_elements = parse_num(k, v)?,
            "max_concurrent_requests" => o.max_concurrent = parse_num::<usize>(k, v)?.max(1),
            "max_queued_requests" => o.max_queued = parse_num(k, v)?,
            "drain_timeout_seconds" => o.drain_timeout = Duration::from_secs(parse_num(k, v)?),
            "help" | "h" => return Err(usage()),
            k if ACCEPTED_IGNORED.contains(&k) => {}
            _ => return Err(format!("unknown argument: --{k}\n{}", usage())),
        }
    }
    if batching_file.is_some() && !enable_batching {
        return Err("--batching_parameters_file is set without --enable_batching".into());
    }
    if enable_batching {
        o.batching = Some(match &batching_file {
            None => BatchingParams::default(),
            Some(f) => {
                let text =
                    std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
                config::parse_batching_parameters(&text)
                    .map_err(|e| format!("{}: {e}", f.display()))?
            }
        });
    }
    o.models = match (&config_file, &base) {
        (Some(f), _) => {
            let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
            config::parse_model_server_config(&text).map_err(|e| format!("{}: {e}", f.display()))?
        }
        (None, Some(b)) if !b.is_empty() => vec![ModelConfig::single(&name, b)],
        _ => return Err("Both server_model_config_file and model_base_path are empty!".into()),
    };
    match (o.grpc_port, o.rest_port) {
        (None, None) => {
            return Err("both --port and --rest_api_port are 0: nothing to serve on".into())
        }
        (Some(g), Some(r)) if g == r => {
            // TF logs an error and serves gRPC only.
            eprintln!("warning: --rest_api_port equals --port ({g}); REST is not started");
            o.rest_port = None;
        }
        _ => {}
    }
    Ok(o)
}

/// The usage text.
pub fn usage() -> String {
    "usage: tfhub serve --model_name=M --model_base_path=DIR [--port=8500] [--rest_api_port=8501]
  tensorflow_model_server's flags (--name=value; the last repeat wins):
    --port=8500                      gRPC port (0: no gRPC)
    --rest_api_port=0                REST port (0: no REST)
    --model_name=default             model name (single-model mode)
    --model_base_path=DIR            DIR/<version>/saved_model.pb, a SavedModel dir (version 1)
                                     or a hub handle
    --model_config_file=F            text-format ModelServerConfig (model_config_list)
    --enable_batching                dynamic batching
    --batching_parameters_file=F     text-format BatchingParameters
    --file_system_poll_wait_seconds=1  version polling (<=0: load once)
    --rest_api_timeout_in_ms=30000   per-request deadline (REST; default for gRPC)
    --rest_api_enable_cors_support   CORS headers
    --saved_model_tags=serve
  tfhub's own:
    --bind_address=0.0.0.0  --max_body_bytes=67108864  --max_tensor_elements=67108864
    --max_concurrent_requests=<cores>  --max_queued_requests=256  --drain_timeout_seconds=30"
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(a: &[&str]) -> Result<ServeOptions, String> {
        parse(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn tf_flag_rules() {
        let o = p(&[
            "--model_name=a",
            "--model_base_path=/m",
            "--rest_api_port=8501",
            "--rest_api_port=9",
        ])
        .unwrap();
        assert_eq!((o.rest_port, o.grpc_port), (Some(9), Some(8500)));
        assert_eq!(o.models[0].name, "a");
        assert!(p(&["--model_base_path", "/m"]).is_err());
        assert!(p(&["--rest_api_port=8501"]).unwrap_err().contains("empty"));
        let o = p(&[
            "--model_base_path=/m",
            "--enable_batching",
            "--file_system_poll_wait_seconds=0",
        ])
        .unwrap();
        assert_eq!(o.batching.unwrap().max_batch_size, 1000);
        assert_eq!(o.poll_wait, None);
        assert!(p(&["--model_base_path=/m", "--batching_parameters_file=/x"]).is_err());
        assert!(p(&["--model_base_path=/m", "--enable_batching=maybe"]).is_err());
        assert!(p(&["--model_base_path=/m", "--no_such_flag=1"]).is_err());
        assert!(p(&["--model_base_path=/m", "--enable_model_warmup=false"]).is_ok());
    }
}

//! TF Serving's text-format configs: `--model_config_file` (`ModelServerConfig`,
//! tensorflow_serving/config/model_server_config.proto) and `--batching_parameters_file`
//! (`BatchingParameters`, servables/tensorflow/session_bundle_config.proto).
//!
//! A small protobuf text-format reader (fields `name: scalar`, `name { ... }` / `name: { ... }`
//! / `name < ... >`, `#` comments, optional `,`/`;` separators, quoted strings with C escapes)
//! into a generic tree; the two config readers pick the fields they know and reject unknown
//! ones by name, so a typo is not silently ignored. Only `model_config_list` is supported
//! (`custom_model_config` is refused).

use std::collections::BTreeMap;
use std::path::PathBuf;

/// A text-format value.
#[derive(Debug, Clone, PartialEq)]
enum Val {
    Scalar(String),
    Msg(Vec<(String, Val)>),
}

struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Lexer<'a> {
    fn skip_ws(&mut self) {
        while self.i < self.s.len() {
            match self.s[self.i] {
                b'#' => {
                    while self.i < self.s.len() && self.s[self.i] != b'\n' {
                        self.i += 1;
                    }
                }
                c if c.is_ascii_whitespace() || c == b',' || c == b';' => self.i += 1,
                _ => break,
            }
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.i).copied()
    }

    fn err(&self, what: &str) -> String {
        let line = self.s[..self.i.min(self.s.len())]
            .iter()
            .filter(|&&c| c == b'\n')
            .count()
            + 1;
        format!("line {line}: {what}")
    }

    fn ident(&mut self) -> Result<String, String> {
        self.skip_ws();
        let st = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || matches!(self.s[self.i], b'_' | b'.'))
        {
            self.i += 1;
        }
        if st == self.i {
            return Err(self.err("expected a field name"));
        }
        Ok(String::from_utf8_lossy(&self.s[st..self.i]).into_owned())
    }

    fn scalar(&mut self) -> Result<String, String> {
        self.skip_ws();
        match self.s.get(self.i) {
            Some(&q @ (b'"' | b'\'')) => {
                self.i += 1;
                let mut out = Vec::new();
                loop {
                    let Some(&c) = self.s.get(self.i) else {
                        return Err(self.err("unterminated string"));
                    };
                    self.i += 1;
                    if c == q {
                        break;
                    }
                    if c == b'\\' {
                        let Some(&e) = self.s.get(self.i) else {
                            return Err(self.err("unterminated escape"));
                        };
                        self.i += 1;
                        out.push(match e {
                            b'n' => b'\n',
                            b't' => b'\t',
                            b'r' => b'\r',
                            other => other,
                        });
                    } else {
                        out.push(c);
                    }
                }
                // Adjacent string literals concatenate, as in C and text-format.
                if matches!(self.peek(), Some(b'"' | b'\'')) {
                    let more = self.scalar()?;
                    out.extend_from_slice(more.as_bytes());
                }
                String::from_utf8(out).map_err(|_| self.err("string is not UTF-8"))
            }
            _ => self.ident_or_number(),
        }
    }

    fn ident_or_number(&mut self) -> Result<String, String> {
        let st = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric()
                || matches!(self.s[self.i], b'_' | b'.' | b'-' | b'+'))
        {
            self.i += 1;
        }
        if st == self.i {
            return Err(self.err("expected a value"));
        }
        Ok(String::from_utf8_lossy(&self.s[st..self.i]).into_owned())
    }

    fn message(&mut self, close: Option<u8>, depth: usize) -> Result<Vec<(String, Val)>, String> {
        if depth > 32 {
            return Err(self.err("nested too deeply"));
        }
        let mut fields = Vec::new();
        loop {
            match (self.peek(), close) {
                (None, None) => return Ok(fields),
                (None, Some(_)) => return Err(self.err("unexpected end of file")),
                (Some(c), Some(cl)) if c == cl => {
                    self.i += 1;
                    return Ok(fields);
                }
                _ => {}
            }
            let name = self.ident()?;
            let mut colon = false;
            if self.peek() == Some(b':') {
                self.i += 1;
                colon = true;
            }
            let v = match self.peek() {
                Some(b'{') => {
                    self.i += 1;
                    Val::Msg(self.message(Some(b'}'), depth + 1)?)
                }
                Some(b'<') => {
                    self.i += 1;
                    Val::Msg(self.message(Some(b'>'), depth + 1)?)
                }
                Some(b'[') => return Err(self.err("list syntax `[...]` is not supported")),
                _ if colon => Val::Scalar(self.scalar()?),
                _ => return Err(self.err(&format!("expected ':' or '{{' after {name}"))),
            };
            fields.push((name, v));
        }
    }
}

fn parse(text: &str) -> Result<Vec<(String, Val)>, String> {
    Lexer {
        s: text.as_bytes(),
        i: 0,
    }
    .message(None, 0)
}

fn int(v: &Val, field: &str) -> Result<i64, String> {
    match v {
        Val::Scalar(s) => s
            .parse()
            .map_err(|_| format!("{field}: {s:?} is not an integer")),
        Val::Msg(_) => Err(format!("{field}: expected a number, got a message")),
    }
}

fn string(v: &Val, field: &str) -> Result<String, String> {
    match v {
        Val::Scalar(s) => Ok(s.clone()),
        Val::Msg(_) => Err(format!("{field}: expected a string, got a message")),
    }
}

fn msg<'a>(v: &'a Val, field: &str) -> Result<&'a [(String, Val)], String> {
    match v {
        Val::Msg(m) => Ok(m),
        Val::Scalar(_) => Err(format!("{field}: expected a message")),
    }
}

/// Which versions of a model to serve (`FileSystemStoragePathSourceConfig.ServableVersionPolicy`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionPolicy {
    /// The N highest-numbered versions (0 counts as 1, as in TF).
    Latest(usize),
    /// Every version found.
    All,
    /// Exactly these versions.
    Specific(Vec<i64>),
}

/// One `config { ... }` entry of `model_config_list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelConfig {
    /// Model name (URL segment).
    pub name: String,
    /// Directory of numeric version dirs (or a SavedModel dir, or a hub handle).
    pub base_path: String,
    /// Version policy.
    pub policy: VersionPolicy,
    /// `version_labels`: label → version.
    pub labels: BTreeMap<String, i64>,
}

impl ModelConfig {
    /// Single-model mode (`--model_name`, `--model_base_path`).
    pub fn single(name: &str, base_path: &str) -> ModelConfig {
        ModelConfig {
            name: name.into(),
            base_path: base_path.into(),
            policy: VersionPolicy::Latest(1),
            labels: BTreeMap::new(),
        }
    }
}

fn version_policy(fields: &[(String, Val)]) -> Result<VersionPolicy, String> {
    let mut policy = VersionPolicy::Latest(1);
    for (k, v) in fields {
        policy = match k.as_str() {
            "latest" => {
                let mut n = 1;
                for (k2, v2) in msg(v, k)? {
                    match k2.as_str() {
                        "num_versions" => n = int(v2, k2)?.max(1) as usize,
                        other => return Err(format!("latest: unknown field {other:?}")),
                    }
                }
                VersionPolicy::Latest(n)
            }
            "all" => VersionPolicy::All,
            "specific" => {
                let mut vs = Vec::new();
                for (k2, v2) in msg(v, k)? {
                    match k2.as_str() {
                        "versions" => vs.push(int(v2, k2)?),
                        other => return Err(format!("specific: unknown field {other:?}")),
                    }
                }
                VersionPolicy::Specific(vs)
            }
            other => return Err(format!("model_version_policy: unknown field {other:?}")),
        };
    }
    Ok(policy)
}

/// Parses a text-format `ModelServerConfig` with a `model_config_list`.
///
/// # Errors
/// Syntax errors (with line), unknown fields, missing name/base_path/model_platform, a
/// platform other than `tensorflow`, duplicate names (TF's `ValidateModelConfigList`).
pub fn parse_model_server_config(text: &str) -> Result<Vec<ModelConfig>, String> {
    let top = parse(text)?;
    let mut out: Vec<ModelConfig> = Vec::new();
    for (k, v) in &top {
        match k.as_str() {
            "model_config_list" => {}
            "custom_model_config" => {
                return Err("custom_model_config is not supported (use model_config_list)".into())
            }
            other => return Err(format!("ModelServerConfig: unknown field {other:?}")),
        }
        for (k2, v2) in msg(v, k)? {
            if k2 != "config" {
                return Err(format!("model_config_list: unknown field {k2:?}"));
            }
            let mut c = ModelConfig::single("", "");
            let mut platform = None;
            for (f, fv) in msg(v2, k2)? {
                match f.as_str() {
                    "name" => c.name = string(fv, f)?,
                    "base_path" => c.base_path = string(fv, f)?,
                    "model_platform" => platform = Some(string(fv, f)?),
                    "model_type" => {} // deprecated; TF ignores it when model_platform is set
                    "model_version_policy" => c.policy = version_policy(msg(fv, f)?)?,
                    "version_labels" => {
                        let (mut key, mut val) = (None, None);
                        for (mk, mv) in msg(fv, f)? {
                            match mk.as_str() {
                                "key" => key = Some(string(mv, mk)?),
                                "value" => val = Some(int(mv, mk)?),
                                other => {
                                    return Err(format!("version_labels: unknown field {other:?}"))
                                }
                            }
                        }
                        let key = key.ok_or("version_labels entry without key")?;
                        c.labels.insert(key, val.unwrap_or(0));
                    }
                    "logging_config" => {
                        return Err("logging_config (request logging) is not supported".into())
                    }
                    other => return Err(format!("ModelConfig: unknown field {other:?}")),
                }
            }
            if c.name.is_empty() {
                return Err("ModelConfig without a name".into());
            }
            if c.base_path.is_empty() {
                return Err(format!("model {:?}: base_path is empty", c.name));
            }
            match platform.as_deref() {
                Some("tensorflow") => {}
                Some(p) => {
                    return Err(format!(
                        "model {:?}: unsupported model_platform {p:?}",
                        c.name
                    ))
                }
                None => {
                    return Err(format!(
                        "Illegal setting neither ModelServerConfig::model_type (deprecated) nor \
                         ModelServerConfig::model_platform (model {:?})",
                        c.name
                    ))
                }
            }
            if out.iter().any(|o| o.name == c.name) {
                return Err(format!(
                    "Illegal to list model {} multiple times in config list",
                    c.name
                ));
            }
            out.push(c);
        }
    }
    if out.is_empty() {
        return Err("model config lists no models".into());
    }
    Ok(out)
}

/// `BatchingParameters`, with TF's defaults for unset fields (shared_batch_scheduler.h).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchingParams {
    /// Largest single request (dim 0); also the largest batch unless
    /// `enable_large_batch_splitting` is on.
    pub max_batch_size: usize,
    /// Longest wait before an under-full batch runs.
    pub batch_timeout_micros: u64,
    /// Queue depth, in batches.
    pub max_enqueued_batches: usize,
    /// Threads running batches (shared by all queues).
    pub num_batch_threads: usize,
    /// Sizes batches are padded up to (ascending; the last equals the largest batch).
    pub allowed_batch_sizes: Vec<usize>,
    /// Pad inputs whose non-batch dims differ up to the batch's largest, with each tensor's
    /// first element (TF's batching_util.cc `AddPadding`).
    pub pad_variable_length_inputs: bool,
    /// Split a request across batches when it does not fit the open one.
    pub enable_large_batch_splitting: bool,
    /// Largest batch when splitting (TF: defaults to `max_batch_size`).
    pub max_execution_batch_size: Option<usize>,
}

impl BatchingParams {
    /// The most rows one batch runs: `max_execution_batch_size` when splitting, else
    /// `max_batch_size`.
    pub fn execution_batch_size(&self) -> usize {
        match self.max_execution_batch_size {
            Some(n) if self.enable_large_batch_splitting => n,
            _ => self.max_batch_size,
        }
    }
}

impl Default for BatchingParams {
    fn default() -> Self {
        BatchingParams {
            max_batch_size: 1000,
            batch_timeout_micros: 0,
            max_enqueued_batches: 10,
            num_batch_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            allowed_batch_sizes: Vec::new(),
            pad_variable_length_inputs: false,
            enable_large_batch_splitting: false,
            max_execution_batch_size: None,
        }
    }
}

/// Parses a text-format `BatchingParameters` (wrapper fields: `max_batch_size { value: 8 }`).
///
/// # Errors
/// Syntax errors, unknown or unsupported fields, invalid `allowed_batch_sizes`.
pub fn parse_batching_parameters(text: &str) -> Result<BatchingParams, String> {
    let mut p = BatchingParams::default();
    let wrapped = |v: &Val, f: &str| -> Result<i64, String> {
        match v {
            Val::Msg(m) => m
                .iter()
                .find(|(k, _)| k == "value")
                .map_or(Ok(0), |(_, x)| int(x, f)),
            Val::Scalar(_) => int(v, f),
        }
    };
    let boolean = |v: &Val, f: &str| -> Result<bool, String> {
        let s = match v {
            Val::Msg(m) => match m.iter().find(|(k, _)| k == "value") {
                Some((_, Val::Scalar(s))) => s.as_str(),
                Some(_) => return Err(format!("{f}: expected a bool")),
                None => "false",
            },
            Val::Scalar(s) => s.as_str(),
        };
        match s {
            "true" | "t" | "1" | "True" => Ok(true),
            "false" | "f" | "0" | "False" => Ok(false),
            _ => Err(format!("{f}: {s:?} is not a bool")),
        }
    };
    let pos = |x: i64, f: &str| -> Result<usize, String> {
        usize::try_from(x)
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("{f} must be > 0, got {x}"))
    };
    for (k, v) in parse(text)? {
        match k.as_str() {
            "max_batch_size" => p.max_batch_size = pos(wrapped(&v, &k)?, &k)?,
            "batch_timeout_micros" => p.batch_timeout_micros = wrapped(&v, &k)?.max(0) as u64,
            "max_enqueued_batches" => p.max_enqueued_batches = pos(wrapped(&v, &k)?, &k)?,
            "num_batch_threads" => p.num_batch_threads = pos(wrapped(&v, &k)?, &k)?,
            "allowed_batch_sizes" => p.allowed_batch_sizes.push(pos(int(&v, &k)?, &k)?),
            // Names the thread pool only; tfhub has one pool.
            "thread_pool_name" => {}
            "pad_variable_length_inputs" => p.pad_variable_length_inputs = boolean(&v, &k)?,
            "enable_large_batch_splitting" => p.enable_large_batch_splitting = boolean(&v, &k)?,
            "max_execution_batch_size" => {
                p.max_execution_batch_size = Some(pos(wrapped(&v, &k)?, &k)?)
            }
            other => return Err(format!("BatchingParameters: unknown field {other:?}")),
        }
    }
    // As batching_session.cc `CreateBasicBatchingSession` and shared_batch_scheduler.h.
    let exec = p.execution_batch_size();
    if p.enable_large_batch_splitting && exec > p.max_batch_size {
        return Err(format!(
            "max_execution_batch_size ({exec}) must be <= max_batch_size ({})",
            p.max_batch_size
        ));
    }
    if let Some(&last) = p.allowed_batch_sizes.last() {
        if p.allowed_batch_sizes.windows(2).any(|w| w[0] >= w[1]) {
            return Err("allowed_batch_sizes entries must be monotonically increasing".into());
        }
        if last != exec {
            let what = if p.enable_large_batch_splitting {
                "max_execution_batch_size"
            } else {
                "max_batch_size"
            };
            return Err(format!(
                "final entry in allowed_batch_sizes must equal {what} ({last} != {exec})"
            ));
        }
    }
    Ok(p)
}

/// Resolves a base path written in a config: absolute or relative to the working directory.
pub fn base_path(s: &str) -> PathBuf {
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_config_list() {
        let text = r#"
            # two models
            model_config_list {
              config { name: "clf"  base_path: "/models/clf"  model_platform: "tensorflow"
                       model_version_policy { specific { versions: 6 versions: 7 } }
                       version_labels { key: "stable" value: 6 }
                       version_labels { key: "canary" value: 7 } }
              config: { name: 'emb', base_path: "/models/emb", model_platform: "tensorflow",
                        model_version_policy: < latest { num_versions: 2 } > }
            }"#;
        let c = parse_model_server_config(text).unwrap();
        assert_eq!(c[0].policy, VersionPolicy::Specific(vec![6, 7]));
        assert_eq!(c[0].labels["canary"], 7);
        assert_eq!(c[1].policy, VersionPolicy::Latest(2));
        let dup = "model_config_list { config { name: 'a' base_path: '/a' model_platform: 'tensorflow' } \
                   config { name: 'a' base_path: '/b' model_platform: 'tensorflow' } }";
        assert!(parse_model_server_config(dup)
            .unwrap_err()
            .contains("multiple times"));
        let typo = "model_config_list { config { name: 'a' base_pth: '/a' } }";
        assert!(parse_model_server_config(typo)
            .unwrap_err()
            .contains("base_pth"));
        assert!(parse_model_server_config("model_config_list { config { name: 'a'").is_err());
    }

    #[test]
    fn batching_parameters() {
        let p = parse_batching_parameters(
            "max_batch_size { value: 128 } batch_timeout_micros { value: 0 } \
             max_enqueued_batches { value: 1000000 } num_batch_threads { value: 8 }",
        )
        .unwrap();
        assert_eq!(
            (
                p.max_batch_size,
                p.max_enqueued_batches,
                p.num_batch_threads
            ),
            (128, 1_000_000, 8)
        );
        let bad = "max_batch_size { value: 8 } allowed_batch_sizes: 2 allowed_batch_sizes: 4";
        assert!(parse_batching_parameters(bad).is_err());
        assert!(!p.pad_variable_length_inputs && !p.enable_large_batch_splitting);
        assert_eq!(p.execution_batch_size(), 128);
    }

    #[test]
    fn batching_padding_and_splitting() {
        let p = parse_batching_parameters(
            "max_batch_size { value: 64 } enable_large_batch_splitting { value: true } \
             max_execution_batch_size { value: 8 } allowed_batch_sizes: 4 \
             allowed_batch_sizes: 8 pad_variable_length_inputs: true",
        )
        .unwrap();
        assert!(p.pad_variable_length_inputs && p.enable_large_batch_splitting);
        assert_eq!((p.max_batch_size, p.execution_batch_size()), (64, 8));
        // Unset max_execution_batch_size means max_batch_size, as in TF.
        let p = parse_batching_parameters(
            "max_batch_size { value: 16 } enable_large_batch_splitting { value: true }",
        )
        .unwrap();
        assert_eq!(p.execution_batch_size(), 16);
        // Without splitting, max_execution_batch_size is ignored (TF: "relevant iff ...").
        let p = parse_batching_parameters(
            "max_batch_size { value: 16 } max_execution_batch_size { value: 4 }",
        )
        .unwrap();
        assert_eq!(p.execution_batch_size(), 16);
        for (bad, why) in [
            (
                "max_batch_size { value: 4 } enable_large_batch_splitting { value: true } \
                 max_execution_batch_size { value: 8 }",
                "must be <= max_batch_size",
            ),
            (
                "max_batch_size { value: 64 } enable_large_batch_splitting { value: true } \
                 max_execution_batch_size { value: 8 } allowed_batch_sizes: 64",
                "must equal max_execution_batch_size (64 != 8)",
            ),
            ("pad_variable_length_inputs: maybe", "is not a bool"),
        ] {
            let e = parse_batching_parameters(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}

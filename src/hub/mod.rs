//! The hub layer: resolves a model handle to a local model directory.
//!
//! Owns handles ([`handle`]), the cache shared with Python's tensorflow_hub and its lock
//! protocol ([`cache`], whose docs give the on-disk layout), downloads (`download`, only with
//! the `http` feature), safe archive extraction (`extract`) and progress reporting
//! ([`progress`]). It knows no protobuf and no ops: a model directory is one that holds
//! `saved_model.pb` or `saved_model.pbtxt`, so this module could become its own crate.
//!
//! Key decision: stay byte-compatible with tensorflow_hub's cache (same directory names, lock
//! file format and temp-dir naming) so Rust and Python share downloads, but validate every hit
//! and repair instead of failing, which is where tensorflow_hub's most reported bugs live. The
//! API is blocking only (hf-hub's twin sync/async copies drifted apart).
//!
//! ```no_run
//! # fn main() -> Result<(), tfhub::hub::HubError> {
//! let hub = tfhub::hub::Hub::from_env()?;
//! let dir = hub.resolve("https://tfhub.dev/google/nnlm-en-dim128/2")?;
//! println!("{}", dir.path().display());
//! # Ok(()) }
//! ```

pub mod cache;
#[cfg(feature = "http")]
mod download;
mod error;
mod extract;
pub mod handle;
pub mod progress;

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use cache::{Cache, CacheEntry, EntryState};
pub use error::{ExtractError, HubError};
pub use handle::{CacheKey, Handle, LoadFormat, Source};
pub use progress::{Progress, ProgressMode};

/// A local directory holding `saved_model.pb` or `saved_model.pbtxt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelDir(PathBuf);

impl ModelDir {
    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The directory, owned.
    pub fn into_path_buf(self) -> PathBuf {
        self.0
    }
}

impl AsRef<Path> for ModelDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

/// Resolves handles to model directories through a cache. Build with [`Hub::builder`] or
/// [`Hub::from_env`].
#[derive(Debug, Clone)]
pub struct Hub {
    cache: Cache,
    offline: bool,
    format: LoadFormat,
    progress: ProgressMode,
    limits: extract::Limits,
    #[cfg(feature = "http")]
    net: download::NetConfig,
}

/// Settings for a [`Hub`]. Every setting has a default; see each method.
#[derive(Debug, Clone)]
pub struct HubBuilder {
    cache_dir: Option<PathBuf>,
    offline: bool,
    format: LoadFormat,
    progress: ProgressMode,
    lock_timeout: Duration,
    lock_poll: Duration,
    max_extract_bytes: u64,
    max_extract_files: u64,
    connect_timeout: Duration,
    read_timeout: Duration,
    retries: u32,
    retry_backoff: Duration,
    accept_invalid_certs: bool,
}

impl Default for HubBuilder {
    fn default() -> Self {
        Self {
            cache_dir: None,
            offline: false,
            format: LoadFormat::Auto,
            progress: ProgressMode::Auto,
            lock_timeout: Duration::from_secs(600),
            lock_poll: Duration::from_millis(500),
            max_extract_bytes: 64 << 30,
            max_extract_files: 100_000,
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(60),
            retries: 5,
            retry_backoff: Duration::from_secs(1),
            accept_invalid_certs: false,
        }
    }
}

impl HubBuilder {
    /// Cache directory. Default: `<system temp>/tfhub_modules`, tensorflow_hub's default.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }
    /// Use the cache only; a remote handle that is not cached is [`HubError::Offline`].
    /// Default false.
    pub fn offline(mut self, offline: bool) -> Self {
        self.offline = offline;
        self
    }
    /// Which resolver serves http(s) URLs. Default [`LoadFormat::Auto`].
    pub fn load_format(mut self, format: LoadFormat) -> Self {
        self.format = format;
        self
    }
    /// Download progress reporting. Default [`ProgressMode::Auto`].
    pub fn progress(mut self, mode: ProgressMode) -> Self {
        self.progress = mode;
        self
    }
    /// A lock whose holder shows no progress for this long is taken over. Default 600 s.
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }
    /// How often a waiting process re-checks a lock. Default 500 ms.
    pub fn lock_poll_interval(mut self, interval: Duration) -> Self {
        self.lock_poll = interval;
        self
    }
    /// Cap on the bytes one archive may unpack to. Default 64 GiB.
    pub fn max_extract_bytes(mut self, bytes: u64) -> Self {
        self.max_extract_bytes = bytes;
        self
    }
    /// Cap on the entries one archive may hold. Default 100 000.
    pub fn max_extract_files(mut self, files: u64) -> Self {
        self.max_extract_files = files;
        self
    }
    /// TCP/TLS connect timeout. Default 30 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }
    /// Longest wait for response headers or for the next body bytes. Default 60 s.
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }
    /// Consecutive failed attempts allowed (connect, timeout, 5xx, cut body). Default 5.
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }
    /// First retry delay, doubled per consecutive failure up to 30 s. Default 1 s.
    pub fn retry_backoff(mut self, backoff: Duration) -> Self {
        self.retry_backoff = backoff;
        self
    }
    /// Skip TLS certificate and hostname checks (`TFHUB_DISABLE_CERT_VALIDATION=true`).
    pub fn danger_accept_invalid_certs(mut self, accept: bool) -> Self {
        self.accept_invalid_certs = accept;
        self
    }

    /// Builds the hub. Nothing is touched on disk until a handle is resolved.
    ///
    /// # Errors
    /// None today; reserved for settings checked at build time.
    pub fn build(self) -> Result<Hub, HubError> {
        let dir = self
            .cache_dir
            .unwrap_or_else(|| std::env::temp_dir().join("tfhub_modules"));
        Ok(Hub {
            cache: Cache::new(dir, self.lock_timeout, self.lock_poll),
            offline: self.offline,
            format: self.format,
            progress: self.progress,
            limits: extract::Limits {
                max_bytes: self.max_extract_bytes,
                max_files: self.max_extract_files,
            },
            #[cfg(feature = "http")]
            net: download::NetConfig {
                connect_timeout: self.connect_timeout,
                read_timeout: self.read_timeout,
                retries: self.retries,
                retry_backoff: self.retry_backoff,
                accept_invalid_certs: self.accept_invalid_certs,
            },
        })
    }
}

impl Hub {
    /// Default settings, to adjust before [`HubBuilder::build`].
    pub fn builder() -> HubBuilder {
        HubBuilder::default()
    }

    /// A builder preset from the environment, the one place that reads `TFHUB_*`:
    /// `TFHUB_CACHE_DIR` (cache directory), `TFHUB_MODEL_LOAD_FORMAT`
    /// (`AUTO`/`COMPRESSED`/`UNCOMPRESSED`), `TFHUB_OFFLINE` (`1`/`true`/`yes`/`on`),
    /// `TFHUB_DOWNLOAD_PROGRESS` (any non-empty value forces progress, as in Python) and
    /// `TFHUB_DISABLE_CERT_VALIDATION` (exactly `true`, as in Python).
    ///
    /// # Errors
    /// [`HubError::Env`] for an unknown `TFHUB_MODEL_LOAD_FORMAT` or `TFHUB_OFFLINE` value.
    pub fn builder_from_env() -> Result<HubBuilder, HubError> {
        let var = |name| std::env::var(name).ok().filter(|v| !v.is_empty());
        let mut b = HubBuilder::default();
        if let Some(dir) = var("TFHUB_CACHE_DIR") {
            b = b.cache_dir(dir);
        }
        if let Some(v) = var("TFHUB_MODEL_LOAD_FORMAT") {
            let format = v.parse().map_err(|()| HubError::Env {
                var: "TFHUB_MODEL_LOAD_FORMAT",
                value: v.clone(),
                expected: "one of AUTO, COMPRESSED, UNCOMPRESSED",
            })?;
            b = b.load_format(format);
        }
        if let Some(v) = var("TFHUB_OFFLINE") {
            let offline = match v.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" => false,
                _ => {
                    return Err(HubError::Env {
                        var: "TFHUB_OFFLINE",
                        value: v,
                        expected: "1/true/yes/on or 0/false/no/off",
                    })
                }
            };
            b = b.offline(offline);
        }
        if var("TFHUB_DOWNLOAD_PROGRESS").is_some() {
            b = b.progress(ProgressMode::Always);
        }
        if var("TFHUB_DISABLE_CERT_VALIDATION").as_deref() == Some("true") {
            b = b.danger_accept_invalid_certs(true);
        }
        Ok(b)
    }

    /// [`Hub::builder_from_env`], built.
    ///
    /// # Errors
    /// As [`Hub::builder_from_env`].
    pub fn from_env() -> Result<Self, HubError> {
        Self::builder_from_env()?.build()
    }

    /// The cache, for listing, locating, verifying and removing entries.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Whether offline mode is on.
    pub fn is_offline(&self) -> bool {
        self.offline
    }

    /// Resolves `handle` to a local model directory, downloading and unpacking it into the
    /// cache if needed. A local directory is returned in place; a local tarball and every
    /// remote handle go through the cache (see [`cache`] for validation and locking).
    ///
    /// # Errors
    /// Any [`HubError`]: bad handle, missing path, offline miss, HTTP or network failure,
    /// non-archive body, unsafe archive, no `saved_model.pb`, cache I/O or permission error.
    pub fn resolve(&self, handle: &str) -> Result<ModelDir, HubError> {
        let handle = Handle::parse(handle)?;
        match handle.source(self.format)? {
            Source::LocalDir(dir) => {
                if extract::has_saved_model(&dir) {
                    Ok(ModelDir(dir))
                } else {
                    Err(HubError::NotAModel {
                        location: dir.display().to_string(),
                        found: extract::list_top(&dir),
                    })
                }
            }
            Source::LocalArchive(file) => {
                let location = file.display().to_string();
                let mut progress = self.progress.reporter();
                let limits = self.limits;
                let mut fill = |tmp: &Path, _: &mut dyn Progress| unpack_local(&file, tmp, limits);
                self.cache
                    .get_or_install(&handle, &location, progress.as_mut(), &mut fill)
                    .map(ModelDir)
            }
            Source::Remote(url) => {
                if let Some(dir) = self.cache.lookup(&handle.cache_key())? {
                    return Ok(ModelDir(dir));
                }
                if self.offline {
                    return Err(HubError::Offline {
                        handle: handle.as_str().to_owned(),
                        cache_dir: self.cache.dir().to_owned(),
                    });
                }
                self.fetch_remote(&handle, &url).map(ModelDir)
            }
        }
    }

    #[cfg(feature = "http")]
    fn fetch_remote(&self, handle: &Handle, url: &str) -> Result<PathBuf, HubError> {
        let mut progress = self.progress.reporter();
        let mut fill =
            |tmp: &Path, p: &mut dyn Progress| download::fetch(url, tmp, &self.net, self.limits, p);
        self.cache
            .get_or_install(handle, url, progress.as_mut(), &mut fill)
    }

    #[cfg(not(feature = "http"))]
    fn fetch_remote(&self, handle: &Handle, _url: &str) -> Result<PathBuf, HubError> {
        Err(HubError::NetworkDisabled {
            handle: handle.as_str().to_owned(),
        })
    }
}

fn unpack_local(file: &Path, dest: &Path, limits: extract::Limits) -> Result<(), HubError> {
    let read_err = |source| HubError::ReadLocal {
        path: file.to_owned(),
        source,
    };
    let mut reader = BufReader::new(File::open(file).map_err(read_err)?);
    let mut head = Vec::with_capacity(512);
    (&mut reader)
        .take(512)
        .read_to_end(&mut head)
        .map_err(read_err)?;
    let location = file.display().to_string();
    let Some(kind) = extract::sniff(&head) else {
        return Err(HubError::Extract {
            archive: location,
            source: ExtractError::Corrupt {
                source: std::io::Error::other("not a gzip or tar file"),
            },
        });
    };
    extract::unpack(std::io::Cursor::new(head).chain(reader), kind, dest, limits)
        .map(drop)
        .map_err(|source| HubError::Extract {
            archive: location,
            source,
        })
}

/// The local-archive path of [`Hub::resolve`] on in-memory bytes: sniff, unpack with small
/// caps into the existing directory `dest`, settle the model root. For the `tar_extract` fuzz
/// target and its regression test only. Returns the number of files written.
#[doc(hidden)]
pub fn extract_for_fuzzing(data: &[u8], dest: &Path) -> Result<u64, ExtractError> {
    let Some(kind) = extract::sniff(data.get(..512).unwrap_or(data)) else {
        return Err(ExtractError::Corrupt {
            source: std::io::Error::other("not a gzip or tar file"),
        });
    };
    let limits = extract::Limits {
        max_bytes: 1 << 20,
        max_files: 64,
    };
    let stats = extract::unpack(data, kind, dest, limits)?;
    extract::settle_model_root(dest, ".wrapper-fuzz").map_err(|source| ExtractError::Write {
        path: dest.to_owned(),
        source,
    })?;
    Ok(stats.files)
}

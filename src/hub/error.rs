//! `HubError` and its extraction sub-enum. Each variant's `Display` states this layer's fact
//! (which handle, path or URL); the cause travels in `#[source]`.

use std::io;
use std::path::PathBuf;

/// Why a handle could not be resolved to a local model directory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HubError {
    /// Another process holds the entry's lock (removal refuses to race a download).
    #[error("{} is locked by {holder}", path.display())]
    Busy { path: PathBuf, holder: String },
    /// A cache path could not be created, read, written or renamed.
    #[error("cache path {}", path.display())]
    CacheIo {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The cache (or one of its lock/temp files) is not writable by this user. Reported at once,
    /// never waited on (tensorflow/hub#415, #744).
    #[error("permission denied on cache path {} (set TFHUB_CACHE_DIR to a writable directory)", path.display())]
    CachePermission {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The downloaded body did not match the checksum the server announced.
    #[error("checksum mismatch for {url}: {algorithm} expected {expected}, got {got}")]
    Checksum {
        url: String,
        algorithm: &'static str,
        expected: String,
        got: String,
    },
    /// The network request failed (connect, TLS, timeout, cut connection) after all retries.
    #[error("download of {url} failed")]
    Download {
        url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An environment variable read by [`Hub::from_env`](crate::hub::Hub::from_env) has a value
    /// this layer does not understand.
    #[error("environment variable {var}={value:?}: {expected}")]
    Env {
        var: &'static str,
        value: String,
        expected: &'static str,
    },
    /// The archive (downloaded or local) could not be unpacked safely.
    #[error("cannot unpack {archive}")]
    Extract {
        archive: String,
        #[source]
        source: ExtractError,
    },
    /// The server answered with an error status.
    #[error("HTTP {status} from {url}")]
    HttpStatus { url: String, status: u16 },
    /// The handle string cannot be understood.
    #[error("invalid handle {handle:?}: {reason}")]
    InvalidHandle { handle: String, reason: String },
    /// The handle needs the network but the crate was built without the `http` feature.
    #[error("handle {handle:?} needs a download, but tfhub was built without the `http` feature")]
    NetworkDisabled { handle: String },
    /// The body is not a gzip or tar archive (typically an HTML page served with status 200).
    #[error("{url} did not return a tar or tar.gz archive (content-type {content_type:?}); it starts with {first_bytes:?}")]
    NotAnArchive {
        url: String,
        content_type: String,
        first_bytes: String,
    },
    /// The directory (local, or unpacked from an archive at `location`) has no
    /// `saved_model.pb(txt)`, neither at its top nor under a single wrapping directory.
    #[error("{location} contains neither saved_model.pb nor saved_model.pbtxt (found: {found})")]
    NotAModel { location: String, found: String },
    /// A local path handle does not exist.
    #[error("{} does not exist", path.display())]
    NotFound { path: PathBuf },
    /// Offline mode is on and the handle is not (validly) in the cache.
    #[error("offline mode: handle {handle:?} is not in the cache {}", cache_dir.display())]
    Offline { handle: String, cache_dir: PathBuf },
    /// A local file could not be read.
    #[error("cannot read {}", path.display())]
    ReadLocal {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The handle is understood but cannot be served in this configuration.
    #[error("handle {handle:?} is not supported: {reason}")]
    Unsupported { handle: String, reason: String },
}

/// Why an archive was refused or failed while unpacking.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExtractError {
    /// An entry has an absolute path.
    #[error("entry {entry:?} has an absolute path")]
    AbsolutePath { entry: String },
    /// The compressed or tar stream is malformed (or the reader under it failed).
    #[error("not a valid tar or tar.gz stream")]
    Corrupt {
        #[source]
        source: io::Error,
    },
    /// A symlink or hard link entry.
    #[error("entry {entry:?} is a link to {target:?}; links are refused")]
    Link { entry: String, target: String },
    /// An entry path climbs out of the destination with `..`.
    #[error("entry {entry:?} has a `..` component")]
    ParentDir { entry: String },
    /// A device, fifo or other non-file, non-directory entry.
    #[error("entry {entry:?} is a {kind}; only files and directories are allowed")]
    SpecialFile { entry: String, kind: String },
    /// More extracted bytes than the configured cap (zip-bomb guard).
    #[error("more than {limit} bytes once extracted")]
    TooLarge { limit: u64 },
    /// More entries than the configured cap.
    #[error("more than {limit} entries")]
    TooManyFiles { limit: u64 },
    /// Writing an extracted file failed.
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Maps an I/O error on a cache path: permission problems get their own variant so that callers
/// (and the lock loop) fail fast instead of waiting.
pub(crate) fn cache_io(path: impl Into<PathBuf>, source: io::Error) -> HubError {
    let path = path.into();
    if is_permission(&source) {
        HubError::CachePermission { path, source }
    } else {
        HubError::CacheIo { path, source }
    }
}

pub(crate) fn is_permission(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
    )
}

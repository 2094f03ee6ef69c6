//! Handles: the strings users pass to `load`, parsed into where the model comes from.
//!
//! Mirrors tensorflow_hub's resolver order (compressed HTTP, GCS tarball, uncompressed HTTP, local
//! path) without TensorFlow's GCS filesystem: `gs://` tarballs are fetched from the public HTTPS
//! bucket URL, and `gs://` directories or `TFHUB_MODEL_LOAD_FORMAT=UNCOMPRESSED` URLs are a clear
//! error. URL handling is a small hand-written splitter so that the crate without the `http`
//! feature still classifies remote handles (and finds them in a cache Python filled).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sha1::{Digest, Sha1};

use super::error::HubError;

/// A model handle exactly as the user gave it. The cache key is derived from this exact string,
/// as tensorflow_hub does (no normalisation: a trailing slash or a query changes the key).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Handle(String);

/// Where a handle's model comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// A local tarball (`.tar`, `.tar.gz`, `.tgz`, or any regular file): unpacked into the cache.
    LocalArchive(PathBuf),
    /// A local directory, used in place (no cache).
    LocalDir(PathBuf),
    /// An archive fetched over HTTP(S) from this URL into the cache.
    Remote(String),
}

/// `TFHUB_MODEL_LOAD_FORMAT`: which tensorflow_hub resolver handles http(s) URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoadFormat {
    /// Default: same as `Compressed`.
    #[default]
    Auto,
    /// Download `<url>?tf-hub-format=compressed` and unpack it.
    Compressed,
    /// tensorflow_hub's 303-to-`gs://` directory protocol; needs GCS access, so unsupported here.
    Uncompressed,
}

/// Hex SHA-1 of a handle string: the cache directory name shared with tensorflow_hub.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey(String);

impl Handle {
    /// Wraps a handle string; only emptiness is checked here, the rest in [`Handle::source`].
    ///
    /// # Errors
    /// [`HubError::InvalidHandle`] for an empty or all-blank string.
    pub fn parse(handle: &str) -> Result<Self, HubError> {
        if handle.trim().is_empty() {
            return Err(invalid(handle, "empty handle"));
        }
        Ok(Self(handle.to_owned()))
    }

    /// The handle string exactly as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The cache key (hex SHA-1 of the handle string).
    pub fn cache_key(&self) -> CacheKey {
        CacheKey::for_handle(&self.0)
    }

    /// Classifies the handle. Local paths are looked at on disk (exists, file or directory);
    /// nothing else touches the disk or network.
    ///
    /// # Errors
    /// [`HubError::InvalidHandle`] for malformed URLs (e.g. a Kaggle URL without a version),
    /// [`HubError::Unsupported`] for `gs://` directories, unknown schemes and
    /// `LoadFormat::Uncompressed` with an http(s) URL, [`HubError::NotFound`] for a missing
    /// local path.
    pub fn source(&self, format: LoadFormat) -> Result<Source, HubError> {
        let h = self.0.as_str();
        let Some((scheme, rest)) = h.split_once("://") else {
            return local_source(Path::new(h));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "file" => local_source(&file_url_path(rest)),
            "gs" => gs_source(h, rest),
            "http" | "https" => {
                if format == LoadFormat::Uncompressed {
                    return Err(HubError::Unsupported {
                        handle: h.to_owned(),
                        reason: "TFHUB_MODEL_LOAD_FORMAT=UNCOMPRESSED needs TensorFlow's GCS \
                                 filesystem; use COMPRESSED or AUTO"
                            .into(),
                    });
                }
                http_source(h).map(Source::Remote)
            }
            other => Err(HubError::Unsupported {
                handle: h.to_owned(),
                reason: format!("unknown scheme {other:?}"),
            }),
        }
    }
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl CacheKey {
    /// `sha1(handle.encode("utf8")).hexdigest()`, as tensorflow_hub's `_module_dir`.
    pub fn for_handle(handle: &str) -> Self {
        let digest = Sha1::digest(handle.as_bytes());
        let mut hex = String::with_capacity(40);
        for b in digest.iter() {
            hex.push_str(&format!("{b:02x}"));
        }
        Self(hex)
    }

    /// Accepts a 40-digit lowercase hex string (a cache directory name).
    pub fn from_hex(hex: &str) -> Option<Self> {
        let ok = hex.len() == 40
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        ok.then(|| Self(hex.to_owned()))
    }

    /// The 40 hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for LoadFormat {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s.to_ascii_uppercase().as_str() {
            "AUTO" | "" => Ok(Self::Auto),
            "COMPRESSED" => Ok(Self::Compressed),
            "UNCOMPRESSED" => Ok(Self::Uncompressed),
            _ => Err(()),
        }
    }
}

fn invalid(handle: &str, reason: impl Into<String>) -> HubError {
    HubError::InvalidHandle {
        handle: handle.to_owned(),
        reason: reason.into(),
    }
}

fn local_source(path: &Path) -> Result<Source, HubError> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Ok(Source::LocalDir(path.to_owned())),
        Ok(_) => Ok(Source::LocalArchive(path.to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(HubError::NotFound {
            path: path.to_owned(),
        }),
        Err(source) => Err(HubError::ReadLocal {
            path: path.to_owned(),
            source,
        }),
    }
}

/// `file:///abs/path`, `file://localhost/abs/path` → `/abs/path`; `%XX` escapes decoded.
fn file_url_path(rest: &str) -> PathBuf {
    let rest = rest.strip_prefix("localhost").unwrap_or(rest);
    PathBuf::from(percent_decode(rest))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn is_archive_name(path: &str) -> bool {
    let p = path.to_ascii_lowercase();
    p.ends_with(".tar.gz") || p.ends_with(".tgz") || p.ends_with(".tar")
}

/// `gs://bucket/obj.tar.gz` → `https://storage.googleapis.com/bucket/obj.tar.gz`.
fn gs_source(handle: &str, rest: &str) -> Result<Source, HubError> {
    let Some((bucket, object)) = rest.split_once('/') else {
        return Err(invalid(handle, "gs:// handle without an object path"));
    };
    if bucket.is_empty() || object.is_empty() {
        return Err(invalid(handle, "gs:// handle without a bucket or object"));
    }
    if !is_archive_name(object) {
        return Err(HubError::Unsupported {
            handle: handle.to_owned(),
            reason: "gs:// directories need TensorFlow's GCS filesystem; point at a .tar.gz, \
                     .tgz or .tar object instead"
                .into(),
        });
    }
    Ok(Source::Remote(format!(
        "https://storage.googleapis.com/{bucket}/{object}"
    )))
}

/// The pieces of an http(s) URL this layer looks at.
struct UrlParts<'a> {
    scheme: &'a str,
    host: &'a str,
    authority: &'a str,
    path: &'a str,
    query: Option<&'a str>,
    fragment: Option<&'a str>,
}

fn split_url(url: &str) -> Option<UrlParts<'_>> {
    let (scheme, rest) = url.split_once("://")?;
    let (rest, fragment) = match rest.split_once('#') {
        Some((r, f)) => (r, Some(f)),
        None => (rest, None),
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let host = match host_port.rfind(':') {
        Some(i) if !host_port[i..].contains(']') => &host_port[..i],
        _ => host_port,
    };
    Some(UrlParts {
        scheme,
        host,
        authority,
        path,
        query,
        fragment,
    })
}

/// The URL to download for an http(s) handle.
fn http_source(handle: &str) -> Result<String, HubError> {
    let Some(u) = split_url(handle) else {
        return Err(invalid(handle, "not a URL"));
    };
    if u.host.is_empty() {
        return Err(invalid(handle, "URL without a host"));
    }
    let host = u.host.to_ascii_lowercase();
    // tensorflow_hub 0.14: the China mirror is fetched straight from its GCS bucket.
    if host == "hub.tensorflow.google.cn" {
        let rest = u.path.trim_matches('/');
        return Ok(format!(
            "https://gcs.tensorflow.google.cn/tfhub-modules/{rest}.tar.gz"
        ));
    }
    if is_archive_name(u.path) {
        return Ok(handle.to_owned());
    }
    if host == "www.kaggle.com" || host == "kaggle.com" {
        return kaggle_download_url(handle, &u);
    }
    Ok(append_format_query(&u))
}

/// Kaggle model pages (short `/models/o/m/fw/var/ver` or long
/// `/models/o/m/frameworks/fw/variations/var/versions/ver`) → the `/api/v1/.../download`
/// archive URL. API URLs are kept as given.
fn kaggle_download_url(handle: &str, u: &UrlParts<'_>) -> Result<String, HubError> {
    if u.path.starts_with("/api/") {
        return Ok(handle.to_owned());
    }
    let segs: Vec<&str> = u.path.split('/').filter(|s| !s.is_empty()).collect();
    let Some((&"models", segs)) = segs.split_first() else {
        return Err(invalid(handle, "Kaggle URL is not a /models/ page"));
    };
    let segs = match segs.split_last() {
        Some((&"download", head)) => head,
        _ => segs,
    };
    let parts: [&str; 5] = match *segs {
        [owner, model, fw, var, ver] => [owner, model, fw, var, ver],
        [owner, model, "frameworks", fw, "variations", var, "versions", ver] => {
            [owner, model, fw, var, ver]
        }
        _ => return Err(invalid(
            handle,
            "Kaggle model URL must be /models/<owner>/<model>/<framework>/<variation>/<version> \
                 (or the long /frameworks/../variations/../versions/.. form)",
        )),
    };
    if !parts[4].bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(handle, "Kaggle model version must be a number"));
    }
    Ok(format!(
        "{}://{}/api/v1/models/{}/download",
        u.scheme,
        u.authority,
        parts.join("/")
    ))
}

/// Adds `tf-hub-format=compressed` to the query, keeping existing parameters as they are
/// (Python re-encodes them with `urlencode(parse_qsl(..))`; keeping the raw text is the same
/// request for every well-formed query). A query that already names `tf-hub-format` is kept.
fn append_format_query(u: &UrlParts<'_>) -> String {
    let query = match u.query {
        Some(q)
            if q.split('&')
                .any(|kv| kv.split('=').next() == Some("tf-hub-format")) =>
        {
            q.to_owned()
        }
        Some(q) if !q.is_empty() => format!("{q}&tf-hub-format=compressed"),
        _ => "tf-hub-format=compressed".to_owned(),
    };
    let mut url = format!("{}://{}{}?{query}", u.scheme, u.authority, u.path);
    if let Some(f) = u.fragment {
        url.push('#');
        url.push_str(f);
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(h: &str) -> String {
        match Handle::parse(h).and_then(|h| h.source(LoadFormat::Auto)) {
            Ok(Source::Remote(u)) => u,
            other => panic!("{h}: {other:?}"),
        }
    }

    #[test]
    fn cache_key_matches_tensorflow_hub() {
        let cases = [
            (
                "https://tfhub.dev/google/nnlm-en-dim128/1",
                "32f2b2259e1cc8ca58c876921748361283e73997",
            ),
            (
                "https://tfhub.dev/google/yamnet/1",
                "9616fd04ec2360621642ef9455b84f4b668e219e",
            ),
            (
                "https://tfhub.dev/google/tf2-preview/mobilenet_v2/feature_vector/4",
                "145bb06ec3b59b08fb564ab752bd5aa222bfb50a",
            ),
        ];
        for (h, key) in cases {
            assert_eq!(CacheKey::for_handle(h).as_str(), key);
        }
    }

    #[test]
    fn tfhub_dev_gets_compressed_query() {
        assert_eq!(
            remote("https://tfhub.dev/google/yamnet/1"),
            "https://tfhub.dev/google/yamnet/1?tf-hub-format=compressed"
        );
        assert_eq!(
            remote("https://tfhub.dev/google/yamnet/1?a=b&c=d"),
            "https://tfhub.dev/google/yamnet/1?a=b&c=d&tf-hub-format=compressed"
        );
        assert_eq!(
            remote("https://x.org/m?tf-hub-format=compressed"),
            "https://x.org/m?tf-hub-format=compressed"
        );
    }

    #[test]
    fn archives_and_gs() {
        assert_eq!(remote("https://x.org/m.tar.gz"), "https://x.org/m.tar.gz");
        assert_eq!(
            remote("http://x.org/a/m.TGZ?sig=1"),
            "http://x.org/a/m.TGZ?sig=1"
        );
        assert_eq!(
            remote("gs://bucket/dir/m.tar.gz"),
            "https://storage.googleapis.com/bucket/dir/m.tar.gz"
        );
        let err = Handle::parse("gs://bucket/dir").and_then(|h| h.source(LoadFormat::Auto));
        assert!(matches!(err, Err(HubError::Unsupported { .. })));
        assert_eq!(
            remote("https://hub.tensorflow.google.cn/google/yamnet/1"),
            "https://gcs.tensorflow.google.cn/tfhub-modules/google/yamnet/1.tar.gz"
        );
    }

    #[test]
    fn kaggle_short_and_long() {
        let api =
            "https://www.kaggle.com/api/v1/models/google/nnlm/tensorFlow2/en-dim128/2/download";
        assert_eq!(
            remote("https://www.kaggle.com/models/google/nnlm/tensorFlow2/en-dim128/2"),
            api
        );
        assert_eq!(
            remote("https://www.kaggle.com/models/google/nnlm/frameworks/tensorFlow2/variations/en-dim128/versions/2"),
            api
        );
        assert_eq!(
            remote("https://www.kaggle.com/models/google/nnlm/tensorFlow2/en-dim128/2/?tfhub-redirect=true"),
            api
        );
        assert_eq!(remote(api), api);
        let err = Handle::parse("https://www.kaggle.com/models/google/nnlm/tensorFlow2/en-dim128")
            .and_then(|h| h.source(LoadFormat::Auto));
        assert!(matches!(err, Err(HubError::InvalidHandle { .. })));
    }

    #[test]
    fn uncompressed_format_is_refused_for_urls() {
        let err = Handle::parse("https://tfhub.dev/google/yamnet/1")
            .and_then(|h| h.source(LoadFormat::Uncompressed));
        assert!(matches!(err, Err(HubError::Unsupported { .. })));
    }

    #[test]
    fn file_urls_and_missing_paths() {
        assert_eq!(file_url_path("/a%20b/c"), PathBuf::from("/a b/c"));
        assert_eq!(file_url_path("localhost/x"), PathBuf::from("/x"));
        let err = Handle::parse("/definitely/not/here").and_then(|h| h.source(LoadFormat::Auto));
        assert!(matches!(err, Err(HubError::NotFound { .. })));
        assert!(Handle::parse("  ").is_err());
    }
}

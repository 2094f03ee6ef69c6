//! HTTP(S) download of model archives, streamed straight into the extractor.
//!
//! Blocking reqwest over rustls (ring provider) with hickory DNS. Proxies come from
//! `HTTP_PROXY`/`HTTPS_PROXY`/`NO_PROXY` (reqwest's default). Failure handling, none of which
//! tensorflow_hub has (its `urlopen` has no timeout, tensorflow/hub#265, #326):
//! - connect timeout, and a read timeout on every wait for headers or body bytes;
//! - retries with exponential backoff on connect errors, timeouts, 5xx, 408 and 429;
//! - a body cut short (error or early EOF) is resumed with `Range` + `If-Range` from the byte
//!   reached, so the streaming extractor never notices; a server that answers the range with
//!   200 forces a restart from scratch (the temp dir is emptied first);
//! - `x-goog-hash` md5/crc32c are checked over the whole body before anything is installed;
//! - a body that is not gzip/tar (an HTML page with status 200) is refused, quoting its first
//!   bytes and the final URL after redirects.

use std::fs;
use std::io::{self, Cursor, Read};
use std::path::Path;
use std::thread;
use std::time::Duration;

use md5::{Digest, Md5};
use reqwest::blocking::{Client, Response};
use reqwest::header::{
    HeaderMap, CONTENT_RANGE, CONTENT_TYPE, ETAG, IF_RANGE, LAST_MODIFIED, RANGE,
};

use super::error::{cache_io, HubError};
use super::extract::{self, Limits};
use super::progress::Progress;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Network settings, from [`HubBuilder`](super::HubBuilder).
#[derive(Debug, Clone)]
pub(crate) struct NetConfig {
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub retries: u32,
    pub retry_backoff: Duration,
    pub accept_invalid_certs: bool,
}

/// How one attempt ended badly.
enum Failure {
    /// Start over from byte 0 (if the retry budget allows).
    Restart(HubError),
    /// Give up.
    Fatal(HubError),
}

/// Downloads `url` and unpacks it into the (empty) directory `dest`.
pub(crate) fn fetch(
    url: &str,
    dest: &Path,
    net: &NetConfig,
    limits: Limits,
    progress: &mut dyn Progress,
) -> Result<(), HubError> {
    let client = client(net).map_err(|e| HubError::Download {
        url: url.to_owned(),
        source: e.into(),
    })?;
    let mut restarts = 0;
    loop {
        match fetch_once(&client, url, dest, net, limits, progress) {
            Ok(()) => {
                progress.finish();
                return Ok(());
            }
            Err(Failure::Restart(err)) if restarts < net.retries => {
                restarts += 1;
                progress.note(&format!("{err}; starting over"));
                fs::remove_dir_all(dest).map_err(|e| cache_io(dest, e))?;
                fs::create_dir(dest).map_err(|e| cache_io(dest, e))?;
                thread::sleep(backoff(net, restarts));
            }
            Err(Failure::Restart(err) | Failure::Fatal(err)) => {
                progress.finish();
                return Err(err);
            }
        }
    }
}

fn client(net: &NetConfig) -> reqwest::Result<Client> {
    // Ours unless the application installed another provider first.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder()
        .connect_timeout(net.connect_timeout)
        // Blocking client: bounds the wait for headers and each body read, not the whole body.
        .timeout(net.read_timeout)
        .danger_accept_invalid_certs(net.accept_invalid_certs)
        .user_agent(concat!("tfhub-rs/", env!("CARGO_PKG_VERSION")))
        .build()
}

fn backoff(net: &NetConfig, failures: u32) -> Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(6);
    (net.retry_backoff * factor).min(Duration::from_secs(30))
}

fn retryable_status(status: u16) -> bool {
    status >= 500 || status == 408 || status == 429
}

fn fetch_once(
    client: &Client,
    url: &str,
    dest: &Path,
    net: &NetConfig,
    limits: Limits,
    progress: &mut dyn Progress,
) -> Result<(), Failure> {
    let resp = open(client, url, net, progress)?;
    let mut body = Body::new(client, url, net, resp, progress);
    let head = body.head(512).map_err(|e| body.failure(e))?;
    let content_type = body.content_type.clone();
    // The bytes decide, not Content-Type: buckets often label tarballs loosely.
    let kind = match extract::sniff(&head) {
        Some(kind) => kind,
        None => {
            return Err(Failure::Fatal(HubError::NotAnArchive {
                url: body.final_url.clone(),
                content_type,
                first_bytes: quote(&head),
            }))
        }
    };
    let unpacked = extract::unpack(Cursor::new(head).chain(&mut body), kind, dest, limits);
    if let Some(f) = body.failed.take() {
        return Err(f);
    }
    unpacked.map_err(|source| {
        Failure::Fatal(HubError::Extract {
            archive: body.final_url.clone(),
            source,
        })
    })?;
    // The tar end-of-archive blocks may be followed by padding; the checksum covers it all.
    let mut rest = (&mut body).take(64 << 20);
    io::copy(&mut rest, &mut io::sink()).map_err(|e| body.failure(e))?;
    body.verify()
}

/// GET with retries until a success status.
fn open(
    client: &Client,
    url: &str,
    net: &NetConfig,
    progress: &mut dyn Progress,
) -> Result<Response, Failure> {
    let mut failures = 0;
    loop {
        let err = match client.get(url).send() {
            Ok(r) if r.status().is_success() => return Ok(r),
            Ok(r) => {
                let status = r.status().as_u16();
                let err = HubError::HttpStatus {
                    url: r.url().to_string(),
                    status,
                };
                if !retryable_status(status) {
                    return Err(Failure::Fatal(err));
                }
                err
            }
            Err(e) if e.is_redirect() || e.is_builder() => {
                return Err(Failure::Fatal(HubError::Download {
                    url: url.to_owned(),
                    source: e.into(),
                }))
            }
            Err(e) => HubError::Download {
                url: url.to_owned(),
                source: e.into(),
            },
        };
        failures += 1;
        if failures > net.retries {
            return Err(Failure::Fatal(err));
        }
        progress.note(&format!("{}; retrying", error_chain(&err)));
        thread::sleep(backoff(net, failures));
    }
}

/// A response body that resumes itself with `Range` requests and hashes what it yields.
struct Body<'a> {
    client: &'a Client,
    url: String,
    final_url: String,
    content_type: String,
    resp: Response,
    validator: Option<String>,
    total: Option<u64>,
    offset: u64,
    failures: u32,
    net: &'a NetConfig,
    md5: Option<(Md5, String)>,
    crc: Option<(u32, String)>,
    progress: &'a mut dyn Progress,
    failed: Option<Failure>,
}

impl<'a> Body<'a> {
    fn new(
        client: &'a Client,
        url: &str,
        net: &'a NetConfig,
        resp: Response,
        progress: &'a mut dyn Progress,
    ) -> Self {
        let headers = resp.headers();
        let text = |h| {
            headers
                .get(h)
                .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        let validator = text(ETAG)
            .filter(|e| !e.starts_with("W/"))
            .or_else(|| text(LAST_MODIFIED));
        let content_type = text(CONTENT_TYPE).unwrap_or_default().to_ascii_lowercase();
        let (md5, crc) = goog_hashes(headers);
        let total = resp.content_length();
        progress.start(url, total);
        Self {
            client,
            url: url.to_owned(),
            final_url: resp.url().to_string(),
            content_type,
            resp,
            validator,
            total,
            offset: 0,
            failures: 0,
            net,
            md5: md5.map(|m| (Md5::new(), m)),
            crc: crc.map(|c| (0, c)),
            progress,
            failed: None,
        }
    }

    /// Up to `n` first bytes (fewer only at EOF).
    fn head(&mut self, n: usize) -> io::Result<Vec<u8>> {
        let mut head = Vec::with_capacity(n);
        (&mut *self).take(n as u64).read_to_end(&mut head)?;
        Ok(head)
    }

    /// The failure behind an I/O error this body returned (or a generic one).
    fn failure(&mut self, e: io::Error) -> Failure {
        self.failed.take().unwrap_or_else(|| {
            Failure::Fatal(HubError::Download {
                url: self.url.clone(),
                source: e.into(),
            })
        })
    }

    fn verify(&mut self) -> Result<(), Failure> {
        let mismatch = |algorithm, expected: &str, got: String| {
            Failure::Restart(HubError::Checksum {
                url: self.final_url.clone(),
                algorithm,
                expected: expected.to_owned(),
                got,
            })
        };
        if let Some((hasher, want)) = self.md5.take() {
            let got = base64(&hasher.finalize());
            if got != want {
                return Err(mismatch("md5", &want, got));
            }
        }
        if let Some((crc, want)) = self.crc.take() {
            let got = base64(&crc.to_be_bytes());
            if got != want {
                return Err(mismatch("crc32c", &want, got));
            }
        }
        Ok(())
    }

    /// Re-requests from `offset` after `cause`; `Err` (with `failed` set) when out of options.
    fn resume(&mut self, mut cause: BoxError) -> Result<(), ()> {
        loop {
            self.failures += 1;
            if self.failures > self.net.retries {
                return self.fail(Failure::Fatal(HubError::Download {
                    url: self.url.clone(),
                    source: cause,
                }));
            }
            self.progress.note(&format!(
                "download of {} interrupted at byte {} ({cause}); resuming",
                self.url, self.offset
            ));
            thread::sleep(backoff(self.net, self.failures));
            let mut req = self
                .client
                .get(&self.final_url)
                .header(RANGE, format!("bytes={}-", self.offset));
            if let Some(v) = &self.validator {
                req = req.header(IF_RANGE, v.as_str());
            }
            let resp = match req.send() {
                Ok(r) => r,
                Err(e) => {
                    cause = e.into();
                    continue;
                }
            };
            let status = resp.status().as_u16();
            match status {
                206 if self.range_matches(resp.headers()) => {
                    self.resp = resp;
                    return Ok(());
                }
                // Nothing consumed yet: a full answer is as good as the first one.
                200 if self.offset == 0 => {
                    self.total = resp.content_length();
                    self.resp = resp;
                    return Ok(());
                }
                200 | 206 => {
                    return self.fail(Failure::Restart(HubError::Download {
                        url: self.url.clone(),
                        source: format!(
                            "server cannot resume at byte {} (answered {status})",
                            self.offset
                        )
                        .into(),
                    }))
                }
                s if retryable_status(s) => {
                    cause = format!("HTTP {s} while resuming").into();
                }
                // 403 on an expired signed URL, 416 for a changed object: start over.
                s => {
                    return self.fail(Failure::Restart(HubError::HttpStatus {
                        url: self.final_url.clone(),
                        status: s,
                    }))
                }
            }
        }
    }

    fn fail(&mut self, f: Failure) -> Result<(), ()> {
        self.failed = Some(f);
        Err(())
    }

    /// `Content-Range: bytes <offset>-<end>/<total>` agrees with what we have.
    fn range_matches(&self, headers: &HeaderMap) -> bool {
        let Some(v) = headers.get(CONTENT_RANGE).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let Some((range, total)) = v.strip_prefix("bytes ").and_then(|r| r.split_once('/')) else {
            return false;
        };
        let start_ok = range
            .split_once('-')
            .and_then(|(s, _)| s.trim().parse::<u64>().ok())
            == Some(self.offset);
        let total_ok = match (self.total, total.trim().parse::<u64>().ok()) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        };
        start_ok && total_ok
    }
}

impl Read for Body<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.failed.is_some() {
            return Err(io::Error::other("download failed"));
        }
        loop {
            let cause: BoxError = match self.resp.read(buf) {
                Ok(0) => match self.total {
                    Some(t) if self.offset < t => {
                        format!("connection closed at byte {} of {t}", self.offset).into()
                    }
                    _ => return Ok(0),
                },
                Ok(n) => {
                    let chunk = &buf[..n];
                    if let Some((h, _)) = &mut self.md5 {
                        h.update(chunk);
                    }
                    if let Some((c, _)) = &mut self.crc {
                        *c = crc32c::crc32c_append(*c, chunk);
                    }
                    self.offset += n as u64;
                    self.failures = 0;
                    self.progress.advance(n as u64);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => e.into(),
            };
            if self.resume(cause).is_err() {
                return Err(io::Error::other("download failed"));
            }
        }
    }
}

/// (md5, crc32c) base64 values from `x-goog-hash`, unless GCS transcoded the object (then the
/// hashes describe the stored bytes, not the ones sent).
fn goog_hashes(headers: &HeaderMap) -> (Option<String>, Option<String>) {
    let transcoded = headers
        .get("x-goog-stored-content-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !v.eq_ignore_ascii_case("identity"));
    if transcoded || headers.contains_key(reqwest::header::CONTENT_ENCODING) {
        return (None, None);
    }
    let mut md5 = None;
    let mut crc = None;
    for v in headers.get_all("x-goog-hash") {
        let Ok(v) = v.to_str() else { continue };
        for part in v.split(',') {
            let part = part.trim();
            if let Some(m) = part.strip_prefix("md5=") {
                md5 = Some(m.to_owned());
            } else if let Some(c) = part.strip_prefix("crc32c=") {
                crc = Some(c.to_owned());
            }
        }
    }
    (md5, crc)
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The first bytes as text for an error message (lossy, at most 120 characters).
fn quote(head: &[u8]) -> String {
    String::from_utf8_lossy(head).chars().take(120).collect()
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut s = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        s.push_str(": ");
        s.push_str(&e.to_string());
        cur = e.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_known_values() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}

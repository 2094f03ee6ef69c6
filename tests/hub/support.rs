//! Helpers for `tests/hub.rs`: a scriptable HTTP/1.1 server on 127.0.0.1 (never any other
//! address) and builders for small fake model tarballs, including hostile ones.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Req {
    /// Path and query, e.g. `/google/tiny/1?tf-hub-format=compressed`.
    pub target: String,
    /// Lower-cased header names.
    pub headers: HashMap<String, String>,
}

impl Req {
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, q)| q)
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// What to send back.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Content-Length to announce (default: body length).
    pub content_length: Option<usize>,
    /// Close the connection after this many body bytes.
    pub cut_after: Option<usize>,
    /// Sleep this long after sending this many body bytes (0 = before any body byte).
    pub stall: Option<(usize, Duration)>,
    /// Sleep between 16 KiB chunks.
    pub chunk_delay: Option<Duration>,
}

impl Reply {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.into(),
            content_length: None,
            cut_after: None,
            stall: None,
            chunk_delay: None,
        }
    }
    pub fn ok(body: impl Into<Vec<u8>>) -> Self {
        Self::new(200, body).header("Content-Type", "application/octet-stream")
    }
    pub fn redirect(status: u16, location: &str) -> Self {
        Self::new(status, Vec::new()).header("Location", location)
    }
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
    /// Serves `full` honouring a `Range: bytes=N-` request header (206), else 200.
    pub fn ranged(full: &[u8], req: &Req) -> Self {
        let start = req
            .header("range")
            .and_then(|r| r.strip_prefix("bytes="))
            .and_then(|r| r.strip_suffix('-'))
            .and_then(|n| n.parse::<usize>().ok());
        match start {
            Some(s) if s <= full.len() => Self::new(206, full[s..].to_vec())
                .header("Content-Type", "application/octet-stream")
                .header(
                    "Content-Range",
                    &format!("bytes {s}-{}/{}", full.len().saturating_sub(1), full.len()),
                ),
            _ => Self::ok(full.to_vec()),
        }
    }
}

type Handler = dyn Fn(&Req, usize) -> Reply + Send + Sync;

/// A loopback server; stops accepting when dropped.
pub struct Server {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<Req>>>,
    stop: Arc<AtomicBool>,
}

impl Server {
    /// `handler(req, n)` gets the request and how many earlier requests had the same path.
    pub fn start(handler: impl Fn(&Req, usize) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let log: Arc<Mutex<Vec<Req>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let (log2, stop2) = (log.clone(), stop.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (log, handler) = (log2.clone(), handler.clone());
                thread::spawn(move || serve(conn, &log, &*handler));
            }
        });
        Self { addr, log, stop }
    }

    pub fn url(&self, target: &str) -> String {
        format!("http://{}{target}", self.addr)
    }

    pub fn requests(&self) -> Vec<Req> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Requests whose path (without query) is `path`.
    pub fn count(&self, path: &str) -> usize {
        self.requests().iter().filter(|r| r.path() == path).count()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wake the accept loop
    }
}

fn serve(conn: TcpStream, log: &Mutex<Vec<Req>>, handler: &Handler) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(match conn.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    });
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let target = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let req = Req { target, headers };
    let nth = {
        let Ok(mut l) = log.lock() else { return };
        let n = l.iter().filter(|r| r.path() == req.path()).count();
        l.push(req.clone());
        n
    };
    let reply = handler(&req, nth);
    let _ = write_reply(conn, &reply);
}

fn write_reply(mut conn: TcpStream, r: &Reply) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", r.status);
    for (k, v) in &r.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let len = r.content_length.unwrap_or(r.body.len());
    head.push_str(&format!("Content-Length: {len}\r\n\r\n"));
    conn.write_all(head.as_bytes())?;
    let limit = r.cut_after.unwrap_or(usize::MAX).min(r.body.len());
    let stall_at = r.stall.map(|(at, d)| (at.min(limit), d));
    if let Some((0, d)) = stall_at {
        conn.flush()?;
        thread::sleep(d);
    }
    let mut sent = 0;
    while sent < limit {
        let mut end = (sent + 16384).min(limit);
        if let Some((at, _)) = stall_at {
            if sent < at && at < end {
                end = at;
            }
        }
        conn.write_all(&r.body[sent..end])?;
        sent = end;
        if let Some((at, d)) = stall_at {
            if at == sent && at > 0 {
                conn.flush()?;
                thread::sleep(d);
            }
        }
        if let Some(d) = r.chunk_delay {
            conn.flush()?;
            thread::sleep(d);
        }
    }
    conn.flush()?;
    let _ = conn.shutdown(std::net::Shutdown::Both);
    Ok(())
}

/// A tar.gz with `saved_model.pb`, `variables/variables.index` and
/// `variables/variables.data-00000-of-00001` (`size` bytes of pseudo-random data), optionally
/// under a wrapping directory.
pub fn model_tar_gz(size: usize, wrapper: Option<&str>) -> Vec<u8> {
    let mut data = Vec::with_capacity(size);
    let mut x: u32 = 12345;
    for _ in 0..size {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        data.push((x >> 16) as u8);
    }
    let prefix = wrapper.map(|w| format!("{w}/")).unwrap_or_default();
    let files: Vec<(String, Vec<u8>)> = vec![
        (
            format!("{prefix}saved_model.pb"),
            b"\x08\x01fake saved model".to_vec(),
        ),
        (
            format!("{prefix}variables/variables.index"),
            b"fake index".to_vec(),
        ),
        (
            format!("{prefix}variables/variables.data-00000-of-00001"),
            data,
        ),
    ];
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    gzip(&tar_of(&refs))
}

/// A plain tar of regular files (names are written raw, unchecked).
pub fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        raw_name(&mut h, name);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        b.append(&h, *data).expect("append to in-memory tar");
    }
    b.into_inner().expect("finish in-memory tar")
}

/// A tar holding `saved_model.pb` then a symlink `name -> target`.
pub fn tar_with_symlink(name: &str, target: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    raw_name(&mut h, "saved_model.pb");
    h.set_size(3);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    b.append(&h, &b"abc"[..]).expect("append");
    let mut h = tar::Header::new_gnu();
    raw_name(&mut h, name);
    h.set_size(0);
    h.set_entry_type(tar::EntryType::Symlink);
    let t = target.as_bytes();
    h.as_old_mut().linkname[..t.len()].copy_from_slice(t);
    h.set_cksum();
    b.append(&h, &[][..]).expect("append");
    b.into_inner().expect("finish")
}

fn raw_name(h: &mut tar::Header, name: &str) {
    let n = name.as_bytes();
    let field = &mut h.as_old_mut().name;
    field.fill(0);
    field[..n.len()].copy_from_slice(n);
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).expect("gzip in memory");
    e.finish().expect("gzip in memory")
}

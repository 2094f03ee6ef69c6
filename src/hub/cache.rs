//! The model cache, shared both ways with Python's tensorflow_hub.
//!
//! # On-disk layout
//! ```text
//! <cache_dir>/                         TFHUB_CACHE_DIR, else <system temp>/tfhub_modules
//!   <sha1>/                            hex sha1 of the handle string exactly as given
//!     saved_model.pb, variables/, ...  the model (a wrapping top directory is hoisted away)
//!     .tfhub-complete                  our completion marker: handle, file count, byte count
//!   <sha1>.descriptor.txt              Python's "Module: ..\nDownload Time: ..\nDownloader
//!                                      Hostname: .. (PID:..)"; informative, nobody reads it
//!   <sha1>.lock                        "<hostname>.<pid>.<uuid4 hex>" of the downloader
//!   <sha1>.lock.tmp<uuid>              the lock being created (write, then link into place)
//!   <sha1>.<uuid>.tmp/                 the download in progress, renamed to <sha1>/ when done
//! ```
//!
//! # Protocol (tensorflow_hub's `resolver.atomic_download`, plus validation)
//! 1. A usable `<sha1>/` is returned at once. *Usable* means: it holds `saved_model.pb` (or
//!    `.pbtxt`) and either our marker, whose file count and byte total still match the
//!    directory, or no marker at all. Entries with no marker are the ones Python wrote: they are
//!    accepted as valid-but-unverified, since Python records nothing to check against. Anything
//!    else (empty directory, files evicted by a `/tmp` cleaner, a truncated variables file) is
//!    *damaged* and is downloaded again instead of failing (tensorflow/hub#896, #850, #575).
//! 2. Otherwise take `<sha1>.lock`: write `<sha1>.lock.tmp<uuid>`, then hard-link it to
//!    `<sha1>.lock`, which fails if the lock exists (Python renames with `overwrite=False`).
//! 3. If the lock is held, poll. The lock is stale, and is removed, when its holder's
//!    `<sha1>.<uuid>.tmp` directory has not grown and the lock has not changed for
//!    `lock_timeout` (Python's rule; default 600 s), or at once when the holder is a process on
//!    this host that no longer exists (Linux `/proc`). After the lock goes, go back to 1.
//! 4. Holding the lock: re-check 1, delete a damaged entry and other `<sha1>.*.tmp` leftovers,
//!    download and unpack into `<sha1>.<uuid>.tmp/`, write the marker and the descriptor, and
//!    rename the temp dir to `<sha1>/`. The lock and the temp dir are removed on every exit
//!    path (the lock only while it still holds our contents).
//!
//! A process killed at any byte leaves at most a temp dir and a lock; the next run removes the
//! lock (dead holder or timeout) and the temp dir (leftover), so the cache repairs itself.
//! Permission errors on any of these paths are returned at once, naming the path, never
//! waited on (tensorflow/hub#415, #744).

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::error::{cache_io, is_permission, HubError};
use super::extract;
use super::handle::{CacheKey, Handle};
use super::progress::Progress;

/// Name of our completion marker inside a model directory.
pub const MARKER: &str = ".tfhub-complete";

const MARKER_HEADER: &str = "tfhub-rs cache entry v1";

/// A cache directory and its locking parameters.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
    lock_timeout: Duration,
    poll: Duration,
}

/// The state of one cache entry.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EntryState {
    /// Our marker is present and the files it counts are all there.
    Complete,
    /// Exists but is unusable (reason given); the next resolve downloads it again.
    Damaged(String),
    /// No directory.
    Missing,
    /// `saved_model.pb` present, no marker: written by Python's tensorflow_hub; accepted.
    Unverified,
}

impl EntryState {
    /// `Complete` or `Unverified`.
    pub fn is_usable(&self) -> bool {
        matches!(self, Self::Complete | Self::Unverified)
    }
}

/// One cache entry, as listed by [`Cache::entries`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CacheEntry {
    /// Directory name.
    pub key: CacheKey,
    /// `<cache_dir>/<key>`.
    pub path: PathBuf,
    /// The handle, from our marker or Python's descriptor, when recorded.
    pub handle: Option<String>,
    /// Validation result.
    pub state: EntryState,
    /// Total bytes of the regular files in the entry.
    pub bytes: u64,
    /// Contents of `<key>.lock` if a download is (or was) in progress.
    pub locked_by: Option<String>,
}

impl Cache {
    pub(crate) fn new(dir: PathBuf, lock_timeout: Duration, poll: Duration) -> Self {
        Self {
            dir,
            lock_timeout,
            poll,
        }
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `<cache_dir>/<key>`, whether or not it exists.
    pub fn path(&self, key: &CacheKey) -> PathBuf {
        self.dir.join(key.as_str())
    }

    /// Inspects one entry (full validation).
    ///
    /// # Errors
    /// [`HubError::CachePermission`] / [`HubError::CacheIo`] when the cache cannot be read.
    pub fn entry(&self, key: &CacheKey) -> Result<CacheEntry, HubError> {
        let path = self.path(key);
        let state = inspect(&path)?;
        let handle = recorded_handle(&path);
        let bytes = walk(&path, None).map(|(_, b)| b).unwrap_or(0);
        let locked_by = fs::read_to_string(sibling(&path, ".lock")).ok();
        Ok(CacheEntry {
            key: key.clone(),
            path,
            handle,
            state,
            bytes,
            locked_by,
        })
    }

    /// Every `<sha1>/` directory in the cache, sorted by key. A missing cache dir is empty.
    ///
    /// # Errors
    /// [`HubError::CachePermission`] / [`HubError::CacheIo`] when the cache cannot be read.
    pub fn entries(&self) -> Result<Vec<CacheEntry>, HubError> {
        let rd = match fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(cache_io(&self.dir, e)),
        };
        let mut keys = Vec::new();
        for e in rd {
            let e = e.map_err(|e| cache_io(&self.dir, e))?;
            if let Some(key) = e.file_name().to_str().and_then(CacheKey::from_hex) {
                keys.push(key);
            }
        }
        keys.sort();
        keys.iter().map(|k| self.entry(k)).collect()
    }

    /// Deletes an entry and its descriptor. Refuses while another process holds its lock.
    /// Returns whether anything was there.
    ///
    /// # Errors
    /// [`HubError::Busy`] when locked; I/O errors naming the path.
    pub fn remove(&self, key: &CacheKey) -> Result<bool, HubError> {
        let module = self.path(key);
        let lock = sibling(&module, ".lock");
        let uid = uuid::Uuid::new_v4().simple().to_string();
        let contents = lock_contents(&uid);
        if !self.dir.is_dir() {
            return Ok(false);
        }
        if !try_lock(&lock, &contents, &uid)? {
            let holder = fs::read_to_string(&lock).unwrap_or_default();
            return Err(HubError::Busy { path: lock, holder });
        }
        let _guard = LockGuard {
            lock,
            contents,
            tmp: None,
        };
        let mut removed = false;
        match fs::symlink_metadata(&module) {
            Ok(m) => {
                removed = true;
                let r = if m.is_dir() {
                    fs::remove_dir_all(&module)
                } else {
                    fs::remove_file(&module)
                };
                r.map_err(|e| cache_io(&module, e))?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(cache_io(&module, e)),
        }
        let desc = sibling(&module, ".descriptor.txt");
        match fs::remove_file(&desc) {
            Ok(()) => removed = true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(cache_io(&desc, e)),
        }
        Ok(removed)
    }

    /// The entry's path if it is usable.
    pub(crate) fn lookup(&self, key: &CacheKey) -> Result<Option<PathBuf>, HubError> {
        let path = self.path(key);
        Ok(inspect(&path)?.is_usable().then_some(path))
    }

    /// Returns the usable entry for `handle`, filling it with `fill(tmp_dir)` under the lock
    /// protocol when it is missing or damaged. `location` names the source in errors.
    pub(crate) fn get_or_install(
        &self,
        handle: &Handle,
        location: &str,
        progress: &mut dyn Progress,
        fill: &mut dyn FnMut(&Path, &mut dyn Progress) -> Result<(), HubError>,
    ) -> Result<PathBuf, HubError> {
        let module = self.path(&handle.cache_key());
        if inspect(&module)?.is_usable() {
            return Ok(module);
        }
        fs::create_dir_all(&self.dir).map_err(|e| cache_io(&self.dir, e))?;
        let uid = uuid::Uuid::new_v4().simple().to_string();
        let lock = sibling(&module, ".lock");
        let contents = lock_contents(&uid);
        while !try_lock(&lock, &contents, &uid)? {
            self.wait_for_unlock(&lock, &module, handle, progress)?;
            if inspect(&module)?.is_usable() {
                return Ok(module);
            }
        }
        let tmp = sibling(&module, &format!(".{uid}.tmp"));
        let _guard = LockGuard {
            lock,
            contents,
            tmp: Some(tmp.clone()),
        };
        match inspect(&module)? {
            s if s.is_usable() => return Ok(module),
            EntryState::Missing => {}
            EntryState::Damaged(_) | EntryState::Complete | EntryState::Unverified => {
                remove_any(&module)?;
            }
        }
        self.remove_leftovers(handle.cache_key().as_str());
        fs::create_dir(&tmp).map_err(|e| cache_io(&tmp, e))?;
        fill(&tmp, progress)?;
        let wrapper = format!(".wrapper-{uid}");
        if !extract::settle_model_root(&tmp, &wrapper).map_err(|e| cache_io(&tmp, e))? {
            return Err(HubError::NotAModel {
                location: location.to_owned(),
                found: extract::list_top(&tmp),
            });
        }
        write_marker(&tmp, handle)?;
        write_descriptor(&module, handle, &uid)?;
        if let Err(e) = fs::rename(&tmp, &module) {
            // Someone outside the protocol installed it meanwhile: fine if usable.
            if !inspect(&module)?.is_usable() {
                return Err(cache_io(&module, e));
            }
        }
        Ok(module)
    }

    fn wait_for_unlock(
        &self,
        lock: &Path,
        module: &Path,
        handle: &Handle,
        progress: &mut dyn Progress,
    ) -> Result<(), HubError> {
        let read = |lock: &Path| match fs::read_to_string(lock) {
            Ok(c) => Ok(Some(c)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(cache_io(lock, e)),
        };
        let Some(first) = read(lock)? else {
            return Ok(());
        };
        progress.note(&format!(
            "{handle} is being downloaded by {first}; waiting for {}",
            lock.display()
        ));
        let mut seen = (first.clone(), holder_tmp_size(module, &first));
        let mut since = Instant::now();
        loop {
            let Some(current) = read(lock)? else {
                return Ok(());
            };
            if holder_is_dead(&current) {
                progress.note(&format!("removing lock {} of dead process", lock.display()));
                remove_lock_if(lock, &current);
                return Ok(());
            }
            if since.elapsed() >= self.lock_timeout {
                let size = holder_tmp_size(module, &current);
                if seen.0 == current && seen.1 == size {
                    progress.note(&format!(
                        "removing lock {} after {:?} of inactivity",
                        lock.display(),
                        self.lock_timeout
                    ));
                    remove_lock_if(lock, &current);
                    return Ok(());
                }
                seen = (current, size);
                since = Instant::now();
            }
            thread::sleep(self.poll);
        }
    }

    /// Deletes `<key>.*.tmp` directories: we hold the lock, so their writers are gone (or were
    /// declared stale).
    fn remove_leftovers(&self, key: &str) {
        let Ok(rd) = fs::read_dir(&self.dir) else {
            return;
        };
        let prefix = format!("{key}.");
        for e in rd.flatten() {
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with(&prefix) && name.ends_with(".tmp") && !name.contains(".lock") {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
}

/// Removes the lock (only if it still holds `contents`) and the temp dir.
struct LockGuard {
    lock: PathBuf,
    contents: String,
    tmp: Option<PathBuf>,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if let Some(tmp) = &self.tmp {
            let _ = fs::remove_dir_all(tmp);
        }
        remove_lock_if(&self.lock, &self.contents);
    }
}

/// `<path><suffix>` (a sibling of `path`).
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s: OsString = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn hostname() -> String {
    hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

fn lock_contents(uid: &str) -> String {
    format!("{}.{}.{uid}", hostname(), std::process::id())
}

/// Creates `lock` holding `contents` unless it exists. `Ok(false)` when held by someone else.
fn try_lock(lock: &Path, contents: &str, uid: &str) -> Result<bool, HubError> {
    let tmp = sibling(lock, &format!(".tmp{uid}"));
    fs::write(&tmp, contents).map_err(|e| cache_io(&tmp, e))?;
    let linked = fs::hard_link(&tmp, lock);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) if is_permission(&e) => Err(cache_io(lock, e)),
        // File systems without hard links: O_EXCL create, then write.
        Err(_) => match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(lock)
        {
            Ok(mut f) => {
                io::Write::write_all(&mut f, contents.as_bytes()).map_err(|e| cache_io(lock, e))?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(cache_io(lock, e)),
        },
    }
}

fn remove_lock_if(lock: &Path, contents: &str) {
    if fs::read_to_string(lock).is_ok_and(|c| c == contents) {
        let _ = fs::remove_file(lock);
    }
}

/// `host.pid.uuid` (host may contain dots) → (host, pid, uuid).
fn parse_lock(contents: &str) -> Option<(&str, u32, &str)> {
    let (rest, uid) = contents.trim().rsplit_once('.')?;
    let (host, pid) = rest.rsplit_once('.')?;
    Some((host, pid.parse().ok()?, uid))
}

/// The holder ran on this host and its pid is gone. Linux only (`/proc`); elsewhere false, and
/// the inactivity timeout applies.
fn holder_is_dead(contents: &str) -> bool {
    let Some((host, pid, _)) = parse_lock(contents) else {
        return false;
    };
    cfg!(target_os = "linux")
        && host == hostname()
        && Path::new("/proc/self").exists()
        && !Path::new(&format!("/proc/{pid}")).exists()
}

fn holder_tmp_size(module: &Path, contents: &str) -> u64 {
    let Some((_, _, uid)) = parse_lock(contents) else {
        return 0;
    };
    walk(&sibling(module, &format!(".{uid}.tmp")), None)
        .map(|(_, b)| b)
        .unwrap_or(0)
}

/// (regular files, total bytes) under `dir`, skipping `skip` at the top level.
fn walk(dir: &Path, skip: Option<&str>) -> io::Result<(u64, u64)> {
    let mut files = 0;
    let mut bytes = 0;
    for e in fs::read_dir(dir)? {
        let e = e?;
        if skip.is_some_and(|s| e.file_name() == s) {
            continue;
        }
        let ft = e.file_type()?;
        if ft.is_dir() {
            let (f, b) = walk(&e.path(), None)?;
            files += f;
            bytes += b;
        } else if ft.is_file() {
            files += 1;
            bytes += e.metadata()?.len();
        }
    }
    Ok((files, bytes))
}

fn remove_any(path: &Path) -> Result<(), HubError> {
    let r = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    r.map_err(|e| cache_io(path, e))
}

/// Validates `<cache>/<sha1>` (see the module docs).
pub(crate) fn inspect(path: &Path) -> Result<EntryState, HubError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(EntryState::Missing),
        Err(e) => return Err(cache_io(path, e)),
    };
    if !meta.is_dir() {
        return Ok(EntryState::Damaged("not a directory".into()));
    }
    let has_model = extract::has_saved_model(path);
    let marker = match fs::read_to_string(path.join(MARKER)) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(cache_io(path.join(MARKER), e)),
    };
    let Some(marker) = marker else {
        return Ok(if has_model {
            EntryState::Unverified
        } else if fs::read_dir(path)
            .map_err(|e| cache_io(path, e))?
            .next()
            .is_none()
        {
            EntryState::Damaged("empty directory".into())
        } else {
            EntryState::Damaged("no saved_model.pb".into())
        });
    };
    if !has_model {
        return Ok(EntryState::Damaged("saved_model.pb is missing".into()));
    }
    let Some((want_files, want_bytes)) = parse_marker(&marker) else {
        return Ok(EntryState::Damaged(format!("unreadable {MARKER}")));
    };
    let (files, bytes) = walk(path, Some(MARKER)).map_err(|e| cache_io(path, e))?;
    if (files, bytes) != (want_files, want_bytes) {
        return Ok(EntryState::Damaged(format!(
            "{files} files / {bytes} bytes on disk, {want_files} / {want_bytes} when written"
        )));
    }
    Ok(EntryState::Complete)
}

fn parse_marker(text: &str) -> Option<(u64, u64)> {
    let mut lines = text.lines();
    if lines.next()? != MARKER_HEADER {
        return None;
    }
    let mut files = None;
    let mut bytes = None;
    for line in lines {
        if let Some(v) = line.strip_prefix("files ") {
            files = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("bytes ") {
            bytes = v.trim().parse().ok();
        }
    }
    Some((files?, bytes?))
}

fn write_marker(dir: &Path, handle: &Handle) -> Result<(), HubError> {
    let (files, bytes) = walk(dir, Some(MARKER)).map_err(|e| cache_io(dir, e))?;
    let handle_line = handle.as_str().replace(['\n', '\r'], " ");
    let text = format!("{MARKER_HEADER}\nhandle {handle_line}\nfiles {files}\nbytes {bytes}\n");
    let path = dir.join(MARKER);
    fs::write(&path, text).map_err(|e| cache_io(path, e))
}

/// The handle recorded in our marker, else in Python's descriptor (`Module: <handle>`).
fn recorded_handle(module: &Path) -> Option<String> {
    let from = |file: PathBuf, prefix: &str| {
        fs::read_to_string(file).ok().and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix(prefix).map(str::to_owned))
        })
    };
    from(module.join(MARKER), "handle ")
        .or_else(|| from(sibling(module, ".descriptor.txt"), "Module: "))
}

/// Python's descriptor, written atomically (temp + rename, overwriting).
fn write_descriptor(module: &Path, handle: &Handle, uid: &str) -> Result<(), HubError> {
    let path = sibling(module, ".descriptor.txt");
    let tmp = sibling(&path, &format!(".tmp{uid}"));
    let text = format!(
        "Module: {}\nDownload Time: {}\nDownloader Hostname: {} (PID:{})",
        handle,
        utc_now(),
        hostname(),
        std::process::id()
    );
    fs::write(&tmp, text).map_err(|e| cache_io(&tmp, e))?;
    fs::rename(&tmp, &path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        cache_io(&path, e)
    })
}

/// `YYYY-MM-DD HH:MM:SS.ffffff` in UTC (Python writes local time; nobody parses it).
fn utc_now() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:06}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_micros()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_contents_parse_with_dotted_host() {
        assert_eq!(
            parse_lock("a.b.example.1234.abcdef"),
            Some(("a.b.example", 1234, "abcdef"))
        );
        assert_eq!(parse_lock("garbage"), None);
    }

    #[test]
    fn marker_roundtrip() {
        let text = format!("{MARKER_HEADER}\nhandle x\nfiles 3\nbytes 42\n");
        assert_eq!(parse_marker(&text), Some((3, 42)));
        assert_eq!(parse_marker("other\nfiles 1\nbytes 1"), None);
    }

    #[test]
    fn utc_format_shape() {
        let s = utc_now();
        assert_eq!(s.len(), 26, "{s}");
        assert!(s.starts_with("20"), "{s}");
    }
}

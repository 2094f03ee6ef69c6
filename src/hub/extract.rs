//! Streaming, refusing tar / tar.gz extraction into a fresh directory.
//!
//! Like tensorflow_hub's `file_utils.py`, only regular files and directories are written;
//! absolute paths, `..` components, symlinks, hard links and devices are refused (Python raises
//! on the same set). Added here: caps on entry count and on extracted bytes, checked against
//! each header *before* writing and against the decompressed stream as a whole, so a gzip bomb
//! stops after at most the cap. Because no link is ever created, joining a checked relative
//! path onto the destination cannot escape it.

use std::cell::Cell;
use std::fs;
use std::io::{self, BufWriter, Read};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use super::error::ExtractError;

/// Caps on what one archive may unpack to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_bytes: u64,
    pub max_files: u64,
}

/// Archive formats recognised from their first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArchiveKind {
    Gzip,
    Tar,
}

/// Recognises gzip (magic `1f 8b`) or tar (`ustar` magic, or a v7 header whose checksum adds
/// up). Needs the first 512 bytes for tar.
pub(crate) fn sniff(head: &[u8]) -> Option<ArchiveKind> {
    if head.starts_with(&[0x1f, 0x8b]) {
        return Some(ArchiveKind::Gzip);
    }
    if head.len() >= 512 && (&head[257..262] == b"ustar" || tar_checksum_ok(&head[..512])) {
        return Some(ArchiveKind::Tar);
    }
    None
}

fn tar_checksum_ok(h: &[u8]) -> bool {
    let field = String::from_utf8_lossy(&h[148..156]);
    let Ok(want) = u64::from_str_radix(field.trim_matches(|c: char| c == '\0' || c == ' '), 8)
    else {
        return false;
    };
    let sum: u64 = h
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(b)
            }
        })
        .sum();
    sum == want && h.iter().any(|&b| b != 0)
}

/// What an archive unpacked to.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Stats {
    pub files: u64,
    pub bytes: u64,
}

/// Unpacks `reader` (of `kind`) into the existing directory `dest`.
pub(crate) fn unpack(
    reader: impl Read,
    kind: ArchiveKind,
    dest: &Path,
    limits: Limits,
) -> Result<Stats, ExtractError> {
    // Headers and padding add at most ~1.5 KiB per entry on top of the file bytes.
    let stream_cap = limits
        .max_bytes
        .saturating_add(limits.max_files.saturating_add(2).saturating_mul(1536))
        .saturating_add(1 << 20);
    let over = Rc::new(Cell::new(false));
    match kind {
        ArchiveKind::Gzip => {
            let gz = flate2::read::MultiGzDecoder::new(reader);
            unpack_tar(
                Capped::new(gz, stream_cap, over.clone()),
                dest,
                limits,
                &over,
            )
        }
        ArchiveKind::Tar => unpack_tar(
            Capped::new(reader, stream_cap, over.clone()),
            dest,
            limits,
            &over,
        ),
    }
}

fn unpack_tar(
    reader: impl Read,
    dest: &Path,
    limits: Limits,
    over: &Cell<bool>,
) -> Result<Stats, ExtractError> {
    let corrupt = |source: io::Error| {
        if over.get() {
            ExtractError::TooLarge {
                limit: limits.max_bytes,
            }
        } else {
            ExtractError::Corrupt { source }
        }
    };
    let mut archive = tar::Archive::new(reader);
    let mut stats = Stats::default();
    let mut entries_seen = 0u64;
    for entry in archive.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
            continue; // metadata only (`git archive` writes a global header)
        }
        let rel = checked_relative(&entry.path().map_err(corrupt)?, &name)?;
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry
                .link_name_bytes()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            return Err(ExtractError::Link {
                entry: name,
                target,
            });
        }
        let is_file = kind.is_file() || kind.is_contiguous();
        if !is_file && !kind.is_dir() {
            return Err(ExtractError::SpecialFile {
                entry: name,
                kind: format!("{kind:?}"),
            });
        }
        entries_seen += 1;
        if entries_seen > limits.max_files {
            return Err(ExtractError::TooManyFiles {
                limit: limits.max_files,
            });
        }
        let Some(rel) = rel else { continue }; // "." or "./"
        let path = dest.join(&rel);
        if kind.is_dir() {
            fs::create_dir_all(&path).map_err(|source| ExtractError::Write { path, source })?;
            continue;
        }
        let size = entry.header().size().map_err(corrupt)?;
        if stats.bytes.saturating_add(size) > limits.max_bytes {
            return Err(ExtractError::TooLarge {
                limit: limits.max_bytes,
            });
        }
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|source| ExtractError::Write {
                path: parent.to_owned(),
                source,
            })?;
        }
        let file = fs::File::create(&path).map_err(|source| ExtractError::Write {
            path: path.clone(),
            source,
        })?;
        let mut out = BufWriter::with_capacity(1 << 16, file);
        let copied = copy_entry(&mut entry, &mut out, &path, corrupt)?;
        stats.bytes += copied;
        stats.files += 1;
    }
    Ok(stats)
}

/// Copies an entry's data; read errors are stream errors, write errors name the file.
fn copy_entry(
    from: &mut impl Read,
    to: &mut BufWriter<fs::File>,
    path: &Path,
    corrupt: impl Fn(io::Error) -> ExtractError,
) -> Result<u64, ExtractError> {
    use std::io::Write;
    let write_err = |source| ExtractError::Write {
        path: path.to_owned(),
        source,
    };
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(corrupt(e)),
        };
        to.write_all(&buf[..n]).map_err(write_err)?;
        total += n as u64;
    }
    to.flush().map_err(write_err)?;
    Ok(total)
}

/// `a/./b` → `Some(a/b)`; `.` → `None`; absolute or `..` → error.
fn checked_relative(path: &Path, name: &str) -> Result<Option<PathBuf>, ExtractError> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(ExtractError::ParentDir {
                    entry: name.to_owned(),
                })
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(ExtractError::AbsolutePath {
                    entry: name.to_owned(),
                })
            }
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

/// A reader that fails once more than `cap` bytes came through, raising `over`.
struct Capped<R> {
    inner: R,
    left: u64,
    over: Rc<Cell<bool>>,
}

impl<R> Capped<R> {
    fn new(inner: R, cap: u64, over: Rc<Cell<bool>>) -> Self {
        Self {
            inner,
            left: cap,
            over,
        }
    }
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            self.over.set(true);
            return Err(io::Error::other("extraction size cap exceeded"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// The model files are at the top of `dir`, or under a single wrapping directory, which is then
/// hoisted so that `dir` itself holds `saved_model.pb`. Returns whether `dir` is now a model.
pub(crate) fn settle_model_root(dir: &Path, scratch_name: &str) -> io::Result<bool> {
    if has_saved_model(dir) {
        return Ok(true);
    }
    let entries: Vec<fs::DirEntry> = fs::read_dir(dir)?.collect::<io::Result<_>>()?;
    let [only] = entries.as_slice() else {
        return Ok(false);
    };
    if !only.file_type()?.is_dir() || !has_saved_model(&only.path()) {
        return Ok(false);
    }
    // Rename the wrapper first: one of its children may share its name.
    let wrapper = dir.join(scratch_name);
    fs::rename(only.path(), &wrapper)?;
    for child in fs::read_dir(&wrapper)? {
        let child = child?;
        fs::rename(child.path(), dir.join(child.file_name()))?;
    }
    fs::remove_dir(&wrapper)?;
    Ok(true)
}

/// `saved_model.pb` or `saved_model.pbtxt` is a file in `dir`.
pub(crate) fn has_saved_model(dir: &Path) -> bool {
    ["saved_model.pb", "saved_model.pbtxt"]
        .iter()
        .any(|f| dir.join(f).is_file())
}

/// Up to 8 top-level names of `dir`, for error messages.
pub(crate) fn list_top(dir: &Path) -> String {
    let mut names: Vec<String> = match fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    if names.is_empty() {
        return "nothing".to_owned();
    }
    names.sort();
    let more = names.len().saturating_sub(8);
    names.truncate(8);
    let mut s = names.join(", ");
    if more > 0 {
        s.push_str(&format!(", and {more} more"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        let p = |s: &str| checked_relative(Path::new(s), s);
        assert_eq!(p("./a/./b").ok().flatten(), Some(PathBuf::from("a/b")));
        assert!(matches!(p("."), Ok(None)));
        assert!(matches!(
            p("a/../../b"),
            Err(ExtractError::ParentDir { .. })
        ));
        assert!(matches!(
            p("/etc/passwd"),
            Err(ExtractError::AbsolutePath { .. })
        ));
    }

    #[test]
    fn sniffing() {
        assert_eq!(sniff(&[0x1f, 0x8b, 8, 0]), Some(ArchiveKind::Gzip));
        assert_eq!(sniff(b"<!DOCTYPE html><html>"), None);
        assert_eq!(sniff(&[0u8; 512]), None);
    }
}

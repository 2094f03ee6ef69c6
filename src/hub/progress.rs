//! Download progress: a tiny trait with three implementations: `()` (quiet), an indicatif bar
//! (stderr is a terminal), and plain lines (forced with `TFHUB_DOWNLOAD_PROGRESS` while stderr is
//! not a terminal, where indicatif would draw nothing).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Receives download events. Every method has a no-op default.
pub trait Progress {
    /// A transfer of `total` bytes (if known) starts; `label` names the URL or file.
    fn start(&mut self, _label: &str, _total: Option<u64>) {}
    /// `bytes` more bytes arrived.
    fn advance(&mut self, _bytes: u64) {}
    /// The transfer restarted from byte `pos` (a resume or a fresh retry).
    fn set_position(&mut self, _pos: u64) {}
    /// A one-line status message (waiting on a lock, retrying).
    fn note(&mut self, _message: &str) {}
    /// The transfer is over.
    fn finish(&mut self) {}
}

impl Progress for () {}

/// When to show progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProgressMode {
    /// Always report (bar on a terminal, periodic lines otherwise).
    Always,
    /// A bar when stderr is a terminal, quiet otherwise.
    #[default]
    Auto,
    /// Never report.
    Never,
}

impl ProgressMode {
    /// A fresh reporter for one transfer.
    pub(crate) fn reporter(self) -> Box<dyn Progress> {
        let tty = std::io::stderr().is_terminal();
        match (self, tty) {
            (Self::Never, _) | (Self::Auto, false) => Box::new(()),
            (_, true) => Box::new(Bar::default()),
            (Self::Always, false) => Box::new(Lines::default()),
        }
    }
}

/// An indicatif bar on stderr: bytes, rate and ETA.
#[derive(Debug, Default)]
pub struct Bar {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress for Bar {
    fn start(&mut self, label: &str, total: Option<u64>) {
        self.finish();
        let bar = match total {
            Some(n) => indicatif::ProgressBar::new(n),
            None => indicatif::ProgressBar::new_spinner(),
        };
        let template = if total.is_some() {
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
        } else {
            "{msg} {spinner} {bytes} {bytes_per_sec}"
        };
        if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(format!("Downloading {label}"));
        self.bar = Some(bar);
    }
    fn advance(&mut self, bytes: u64) {
        if let Some(b) = &self.bar {
            b.inc(bytes);
        }
    }
    fn set_position(&mut self, pos: u64) {
        if let Some(b) = &self.bar {
            b.set_position(pos);
        }
    }
    fn note(&mut self, message: &str) {
        match &self.bar {
            Some(b) => b.println(message),
            None => eprintln!("{message}"),
        }
    }
    fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

/// Plain progress lines on stderr, at most one every 2 seconds.
#[derive(Debug, Default)]
pub struct Lines {
    label: String,
    total: Option<u64>,
    pos: u64,
    last: Option<Instant>,
}

impl Lines {
    fn line(&self, prefix: &str) {
        let total = self
            .total
            .map(|t| format!(" of {}", human(t)))
            .unwrap_or_default();
        let _ = writeln!(
            std::io::stderr(),
            "{prefix} {}: {}{total}",
            self.label,
            human(self.pos)
        );
    }
}

impl Progress for Lines {
    fn start(&mut self, label: &str, total: Option<u64>) {
        self.label = label.to_owned();
        self.total = total;
        self.pos = 0;
        self.last = Some(Instant::now());
        self.line("Downloading");
    }
    fn advance(&mut self, bytes: u64) {
        self.pos += bytes;
        if self
            .last
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(2))
        {
            self.last = Some(Instant::now());
            self.line("Downloading");
        }
    }
    fn set_position(&mut self, pos: u64) {
        self.pos = pos;
    }
    fn note(&mut self, message: &str) {
        let _ = writeln!(std::io::stderr(), "{message}");
    }
    fn finish(&mut self) {
        self.line("Downloaded");
    }
}

/// `1536` → `1.5 KiB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

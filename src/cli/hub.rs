//! `tfhub download HANDLE` and `tfhub cache {list | path HANDLE | rm HANDLE | verify}`.
//!
//! Uses only `tfhub::hub`'s public items. Wiring, in `src/main.rs` (with `src/cli/mod.rs`
//! holding `pub mod hub;`):
//!
//! ```text
//! mod cli;
//! #[derive(clap::Subcommand)]
//! enum Command {
//!     /// Download a model into the cache and print its directory
//!     Download(cli::hub::DownloadArgs),
//!     /// Inspect or clean the model cache
//!     Cache(cli::hub::CacheArgs),
//!     // ...
//! }
//! // in main: Command::Download(a) => cli::hub::run_download(&a),
//! //          Command::Cache(a) => cli::hub::run_cache(&a),
//! // and print errors with `{:#}` so the cause chain is joined with ": ".
//! ```

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use tfhub::hub::progress::human;
use tfhub::hub::{CacheKey, EntryState, Hub, HubBuilder, ProgressMode};

/// Arguments of `tfhub download`.
#[derive(Debug, Clone, clap::Args)]
pub struct DownloadArgs {
    /// Model handle: a tfhub.dev or Kaggle model URL, an http(s) .tar.gz URL, a gs:// tarball,
    /// a file:// URL or a local directory or tarball
    pub handle: String,
    /// Cache directory [default: $TFHUB_CACHE_DIR, else <system temp>/tfhub_modules]
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Use the cache only, never the network (also TFHUB_OFFLINE=1)
    #[arg(long)]
    pub offline: bool,
    /// Show progress even when stderr is not a terminal (also TFHUB_DOWNLOAD_PROGRESS=1)
    #[arg(long, conflicts_with = "quiet")]
    pub progress: bool,
    /// Never show progress
    #[arg(long, short)]
    pub quiet: bool,
    /// Seconds without progress after which another downloader's lock is taken over
    #[arg(long, value_name = "SECS")]
    pub lock_timeout: Option<u64>,
}

/// Arguments of `tfhub cache`.
#[derive(Debug, Clone, clap::Args)]
pub struct CacheArgs {
    /// Cache directory [default: $TFHUB_CACHE_DIR, else <system temp>/tfhub_modules]
    #[arg(long, value_name = "DIR", global = true)]
    pub cache_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: CacheCommand,
}

/// `tfhub cache` subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum CacheCommand {
    /// List cache entries: key, state, size and handle
    List,
    /// Print the directory where HANDLE is (or would be) cached
    Path {
        /// Model handle, exactly as given to `download` (the cache key is its SHA-1)
        handle: String,
    },
    /// Remove the cache entry of HANDLE (or of a 40-hex-digit cache key)
    Rm {
        /// Model handle or cache key
        handle: String,
    },
    /// Check every entry; fails if any is damaged (the next download repairs it)
    Verify,
}

fn builder(cache_dir: Option<&PathBuf>) -> anyhow::Result<HubBuilder> {
    let mut b = Hub::builder_from_env()?;
    if let Some(dir) = cache_dir {
        b = b.cache_dir(dir);
    }
    Ok(b)
}

/// Resolves the handle (downloading if needed) and prints the model directory on stdout.
///
/// # Errors
/// Any hub error, with its cause chain.
pub fn run_download(args: &DownloadArgs) -> anyhow::Result<()> {
    let mut b = builder(args.cache_dir.as_ref())?;
    if args.offline {
        b = b.offline(true);
    }
    if args.progress {
        b = b.progress(ProgressMode::Always);
    }
    if args.quiet {
        b = b.progress(ProgressMode::Never);
    }
    if let Some(secs) = args.lock_timeout {
        b = b.lock_timeout(Duration::from_secs(secs));
    }
    let hub = b.build()?;
    let dir = hub
        .resolve(&args.handle)
        .with_context(|| format!("cannot resolve {}", args.handle))?;
    println!("{}", dir.path().display());
    Ok(())
}

/// Runs a `tfhub cache` subcommand.
///
/// # Errors
/// Cache I/O errors; `verify` fails when an entry is damaged; `rm` fails on a locked entry.
pub fn run_cache(args: &CacheArgs) -> anyhow::Result<()> {
    let hub = builder(args.cache_dir.as_ref())?.build()?;
    let cache = hub.cache();
    match &args.command {
        CacheCommand::List => {
            let entries = cache.entries()?;
            if entries.is_empty() {
                eprintln!("no entries in {}", cache.dir().display());
            }
            for e in entries {
                println!(
                    "{}  {:<10}  {:>10}  {}",
                    e.key,
                    state_word(&e.state),
                    human(e.bytes),
                    e.handle.as_deref().unwrap_or("?")
                );
            }
        }
        CacheCommand::Path { handle } => {
            let path = cache.path(&CacheKey::for_handle(handle));
            if !path.exists() {
                eprintln!("not cached yet");
            }
            println!("{}", path.display());
        }
        CacheCommand::Rm { handle } => {
            let key = CacheKey::from_hex(handle)
                .filter(|k| cache.path(k).exists())
                .unwrap_or_else(|| CacheKey::for_handle(handle));
            if cache.remove(&key)? {
                eprintln!("removed {}", cache.path(&key).display());
            } else {
                eprintln!("{handle} is not in {}", cache.dir().display());
            }
        }
        CacheCommand::Verify => {
            let mut damaged = 0;
            for e in cache.entries()? {
                let detail = match &e.state {
                    EntryState::Damaged(why) => {
                        damaged += 1;
                        format!("damaged: {why}")
                    }
                    other => state_word(other).to_owned(),
                };
                println!(
                    "{}  {detail}  {}",
                    e.key,
                    e.handle.as_deref().unwrap_or("?")
                );
            }
            if damaged > 0 {
                anyhow::bail!(
                    "{damaged} damaged cache entries in {} (the next download of each repairs it)",
                    cache.dir().display()
                );
            }
        }
    }
    Ok(())
}

fn state_word(state: &EntryState) -> &'static str {
    match state {
        EntryState::Complete => "ok",
        EntryState::Damaged(_) => "damaged",
        EntryState::Missing => "missing",
        EntryState::Unverified => "unverified",
        _ => "unknown",
    }
}

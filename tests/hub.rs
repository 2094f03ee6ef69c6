//! Hub layer: handles, cache protocol, downloads and extraction, against a scriptable HTTP
//! server on 127.0.0.1 and hostile tarballs built on the fly. No live network.

#[path = "hub/support.rs"]
mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::{gzip, model_tar_gz, tar_of, tar_with_symlink};
use tfhub::hub::{CacheKey, EntryState, ExtractError, Hub, HubBuilder, HubError, ProgressMode};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn builder(cache: &Path) -> HubBuilder {
    Hub::builder()
        .cache_dir(cache)
        .progress(ProgressMode::Never)
        .read_timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(5))
        .retries(3)
        .retry_backoff(Duration::from_millis(20))
        .lock_poll_interval(Duration::from_millis(20))
}

fn hub(cache: &Path) -> Hub {
    builder(cache).build().expect("hub builds")
}

/// Nothing but (maybe) complete entries and descriptors: no lock, no temp dir.
fn assert_no_debris(cache: &Path) {
    let Ok(rd) = fs::read_dir(cache) else { return };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(
            !name.ends_with(".lock") && !name.ends_with(".tmp") && !name.contains(".tmp"),
            "debris left in cache: {name}"
        );
    }
}

fn assert_model(dir: &Path) {
    assert!(dir.join("saved_model.pb").is_file(), "{}", dir.display());
    assert!(dir.join("variables/variables.index").is_file());
    assert!(dir
        .join("variables/variables.data-00000-of-00001")
        .is_file());
}

// ---------------------------------------------------------------------------------------------
// Local handles (no network needed)

#[test]
fn local_dir_is_used_in_place_and_needs_saved_model() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let model = tmp.path().join("m");
    fs::create_dir_all(model.join("variables"))?;
    fs::write(model.join("saved_model.pb"), b"x")?;
    let hub = hub(&tmp.path().join("cache"));
    let dir = hub.resolve(model.to_str().ok_or("utf8")?)?;
    assert_eq!(dir.path(), model);
    let url = format!("file://{}", model.display());
    assert_eq!(hub.resolve(&url)?.path(), model);

    let empty = tmp.path().join("empty");
    fs::create_dir(&empty)?;
    let err = hub
        .resolve(empty.to_str().ok_or("utf8")?)
        .expect_err("no saved_model.pb");
    assert!(matches!(&err, HubError::NotAModel { .. }), "{err}");
    assert!(err.to_string().contains("saved_model.pb"), "{err}");
    Ok(())
}

#[test]
fn local_tarball_with_wrapper_dir_is_cached_and_hoisted() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let tgz = tmp.path().join("model.tar.gz");
    fs::write(&tgz, model_tar_gz(1000, Some("wrapped")))?;
    let cache = tmp.path().join("cache");
    let handle = format!("file://{}", tgz.display());
    let dir = hub(&cache).resolve(&handle)?;
    assert_eq!(
        dir.path(),
        cache.join(CacheKey::for_handle(&handle).as_str())
    );
    assert_model(dir.path());
    assert!(!dir.path().join("wrapped").exists());
    let entry = hub(&cache).cache().entry(&CacheKey::for_handle(&handle))?;
    assert_eq!(entry.state, EntryState::Complete);
    assert_eq!(entry.handle.as_deref(), Some(handle.as_str()));
    assert_no_debris(&cache);
    Ok(())
}

#[test]
fn missing_local_path_names_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let err = hub(tmp.path())
        .resolve("/no/such/model/dir")
        .expect_err("missing");
    assert!(matches!(&err, HubError::NotFound { path } if path == Path::new("/no/such/model/dir")));
}

fn resolve_local_archive(bytes: Vec<u8>) -> HubError {
    let tmp = tempfile::tempdir().expect("tempdir");
    let tgz = tmp.path().join("evil.tar.gz");
    fs::write(&tgz, bytes).expect("write tarball");
    let cache = tmp.path().join("cache");
    let err = hub(&cache)
        .resolve(tgz.to_str().expect("utf8"))
        .expect_err("hostile archive must be refused");
    assert_no_debris(&cache);
    let key = CacheKey::for_handle(tgz.to_str().expect("utf8"));
    assert!(!cache.join(key.as_str()).exists(), "nothing installed");
    assert!(
        !tmp.path().join("escaped").exists(),
        "nothing written outside"
    );
    err
}

#[test]
fn tar_with_parent_dir_is_refused() {
    let tar = tar_of(&[("saved_model.pb", &b"x"[..]), ("../escaped", &b"pwned"[..])]);
    let err = resolve_local_archive(gzip(&tar));
    assert!(
        matches!(&err, HubError::Extract { source: ExtractError::ParentDir { entry }, .. } if entry == "../escaped"),
        "{err:?}"
    );
}

#[test]
fn tar_with_absolute_path_is_refused() {
    let tar = tar_of(&[("/tmp/escaped-abs", b"pwned")]);
    let err = resolve_local_archive(tar);
    assert!(
        matches!(
            &err,
            HubError::Extract {
                source: ExtractError::AbsolutePath { .. },
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn tar_with_symlink_is_refused() {
    let err = resolve_local_archive(gzip(&tar_with_symlink("variables", "/etc")));
    assert!(
        matches!(&err, HubError::Extract { source: ExtractError::Link { target, .. }, .. } if target == "/etc"),
        "{err:?}"
    );
}

#[test]
fn gzip_bomb_hits_the_extract_cap() -> TestResult {
    let zeros = vec![0u8; 16 << 20];
    let bomb = gzip(&tar_of(&[
        ("saved_model.pb", &b"x"[..]),
        ("variables/big", &zeros[..]),
    ]));
    assert!(
        bomb.len() < 100_000,
        "a bomb compresses well: {}",
        bomb.len()
    );
    let tmp = tempfile::tempdir()?;
    let path = tmp.path().join("bomb.tgz");
    fs::write(&path, &bomb)?;
    let cache = tmp.path().join("cache");
    let err = builder(&cache)
        .max_extract_bytes(1 << 20)
        .build()?
        .resolve(path.to_str().ok_or("utf8")?)
        .expect_err("over the cap");
    assert!(
        matches!(&err, HubError::Extract { source: ExtractError::TooLarge { limit }, .. } if *limit == 1 << 20),
        "{err:?}"
    );
    assert_no_debris(&cache);
    // Many small files hit the entry cap.
    let many: Vec<(String, Vec<u8>)> = (0..50).map(|i| (format!("f{i}"), vec![1u8])).collect();
    let refs: Vec<(&str, &[u8])> = many
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    fs::write(&path, tar_of(&refs))?;
    let err = builder(&tmp.path().join("cache2"))
        .max_extract_files(10)
        .build()?
        .resolve(path.to_str().ok_or("utf8")?)
        .expect_err("over the entry cap");
    assert!(
        matches!(
            &err,
            HubError::Extract {
                source: ExtractError::TooManyFiles { limit: 10 },
                ..
            }
        ),
        "{err:?}"
    );
    Ok(())
}

#[test]
fn archive_without_saved_model_is_not_a_model() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let path = tmp.path().join("x.tar");
    fs::write(
        &path,
        tar_of(&[("README", &b"hi"[..]), ("other/file", &b"x"[..])]),
    )?;
    let cache = tmp.path().join("cache");
    let err = hub(&cache)
        .resolve(path.to_str().ok_or("utf8")?)
        .expect_err("no model");
    assert!(
        matches!(&err, HubError::NotAModel { found, .. } if found.contains("README")),
        "{err}"
    );
    assert_no_debris(&cache);
    Ok(())
}

#[test]
fn permission_error_fails_fast_naming_the_path() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let tgz = tmp.path().join("m.tgz");
    fs::write(&tgz, model_tar_gz(10, None))?;
    // A read-only directory stops an ordinary user; root ignores modes, so fall back to /sys,
    // where even root gets EPERM.
    let ro = tmp.path().join("ro");
    fs::create_dir(&ro)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&ro, fs::Permissions::from_mode(0o555))?;
    }
    let root_like = fs::write(ro.join("probe"), b"").is_ok();
    let cache = if root_like {
        PathBuf::from("/sys/tfhub-test-cache")
    } else {
        ro.join("cache")
    };
    if root_like && !Path::new("/sys/kernel").exists() {
        eprintln!("skipped: running as root without /sys");
        return Ok(());
    }
    let start = Instant::now();
    let err = builder(&cache)
        .lock_timeout(Duration::from_secs(600))
        .build()?
        .resolve(tgz.to_str().ok_or("utf8")?)
        .expect_err("cache not writable");
    assert!(start.elapsed() < Duration::from_secs(5), "must not wait");
    assert!(
        matches!(&err, HubError::CachePermission { path, .. } if path.starts_with(&cache)),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&cache.display().to_string()),
        "{err}"
    );
    Ok(())
}

#[test]
fn python_cache_fixture_resolves_offline() -> TestResult {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/python_cache");
    let fixture = if fixture.exists() {
        fixture
    } else {
        // Scratch builds outside the repo point CARGO_MANIFEST_DIR elsewhere.
        Path::new(file!())
            .parent()
            .ok_or("tests dir")?
            .join("fixtures/python_cache")
    };
    let handle = fs::read_to_string(fixture.join("handle.txt"))?;
    let handle = handle.trim();
    let tmp = tempfile::tempdir()?;
    copy_dir(&fixture.join("cache"), tmp.path())?;
    let hub = builder(tmp.path()).offline(true).build()?;
    let dir = hub.resolve(handle)?;
    assert_eq!(
        dir.path(),
        tmp.path().join(CacheKey::for_handle(handle).as_str())
    );
    assert!(dir.path().join("saved_model.pb").is_file());
    let entry = hub.cache().entry(&CacheKey::for_handle(handle))?;
    assert_eq!(
        entry.state,
        EntryState::Unverified,
        "Python writes no marker"
    );
    assert_eq!(
        entry.handle.as_deref(),
        Some(handle),
        "from Python's descriptor"
    );
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    fs::create_dir_all(to)?;
    for e in fs::read_dir(from)? {
        let e = e?;
        let dest = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &dest)?;
        } else {
            fs::copy(e.path(), dest)?;
        }
    }
    Ok(())
}

#[cfg(not(feature = "http"))]
#[test]
fn remote_handle_without_http_feature_is_a_clear_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let err = hub(tmp.path())
        .resolve("https://tfhub.dev/google/yamnet/1")
        .expect_err("no network code");
    assert!(matches!(&err, HubError::NetworkDisabled { handle } if handle.contains("yamnet")));
}

// ---------------------------------------------------------------------------------------------
// Network (loopback only)

#[cfg(feature = "http")]
mod net {
    use super::*;
    use std::sync::Arc;
    use support::{Reply, Server};

    const DATA_PATH: &str = "/kaggle-models-data/1/2/bundle/archive.tar.gz";

    #[test]
    fn tfhub_style_handle_gets_compressed_query_and_descriptor() -> TestResult {
        let tgz = model_tar_gz(4000, None);
        let server = Server::start(move |req, _| {
            if req.query() == Some("a=1&b=two&tf-hub-format=compressed") {
                Reply::ok(tgz.clone())
            } else {
                Reply::new(400, "bad query")
            }
        });
        let tmp = tempfile::tempdir()?;
        let handle = server.url("/google/tiny/1?a=1&b=two");
        let dir = hub(tmp.path()).resolve(&handle)?;
        assert_model(dir.path());
        let key = CacheKey::for_handle(&handle);
        assert_eq!(dir.path(), tmp.path().join(key.as_str()));
        let desc = fs::read_to_string(tmp.path().join(format!("{key}.descriptor.txt")))?;
        assert!(
            desc.starts_with(&format!("Module: {handle}\nDownload Time: ")),
            "{desc}"
        );
        assert!(
            desc.contains("\nDownloader Hostname: ") && desc.contains(" (PID:"),
            "{desc}"
        );
        assert_eq!(server.count("/google/tiny/1"), 1);
        // A second resolve is a validated cache hit.
        hub(tmp.path()).resolve(&handle)?;
        assert_eq!(server.count("/google/tiny/1"), 1);
        assert_no_debris(tmp.path());
        Ok(())
    }

    #[test]
    fn redirect_chain_tfhub_to_kaggle_to_storage() -> TestResult {
        let tgz = model_tar_gz(2000, None);
        let server = Server::start(move |req, _| match req.path() {
            "/google/tiny/1" => Reply::redirect(
                301,
                "/api/v1/models/google/tiny/tensorFlow2/default/1/download",
            ),
            "/api/v1/models/google/tiny/tensorFlow2/default/1/download" => {
                Reply::redirect(302, &format!("{DATA_PATH}?X-Goog-Signature=abc"))
            }
            DATA_PATH => Reply::ok(tgz.clone()),
            _ => Reply::new(404, "nope"),
        });
        let tmp = tempfile::tempdir()?;
        let dir = hub(tmp.path()).resolve(&server.url("/google/tiny/1"))?;
        assert_model(dir.path());
        let paths: Vec<String> = server
            .requests()
            .iter()
            .map(|r| r.path().to_owned())
            .collect();
        assert_eq!(
            paths,
            [
                "/google/tiny/1",
                "/api/v1/models/google/tiny/tensorFlow2/default/1/download",
                DATA_PATH
            ]
        );
        Ok(())
    }

    #[test]
    fn http_404_is_reported_with_url_and_not_retried() -> TestResult {
        let server = Server::start(|_, _| Reply::new(404, "Not Found"));
        let tmp = tempfile::tempdir()?;
        let handle = server.url("/google/gone/1");
        let err = hub(tmp.path()).resolve(&handle).expect_err("404");
        assert!(
            matches!(&err, HubError::HttpStatus { status: 404, url } if url.contains("/google/gone/1?tf-hub-format=compressed")),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with("HTTP 404 from http://127.0.0.1:"),
            "{err}"
        );
        assert_eq!(server.count("/google/gone/1"), 1);
        assert_no_debris(tmp.path());
        assert!(!tmp
            .path()
            .join(CacheKey::for_handle(&handle).as_str())
            .exists());
        Ok(())
    }

    #[test]
    fn http_500_then_success_is_retried() -> TestResult {
        let tgz = model_tar_gz(1000, None);
        let server = Server::start(move |_, n| {
            if n < 2 {
                Reply::new(503, "busy")
            } else {
                Reply::ok(tgz.clone())
            }
        });
        let tmp = tempfile::tempdir()?;
        hub(tmp.path()).resolve(&server.url("/m/1"))?;
        assert_eq!(server.count("/m/1"), 3);
        // Out of retries: the last status is reported.
        let server = Server::start(|_, _| Reply::new(500, "down"));
        let err = builder(tmp.path())
            .retries(1)
            .build()?
            .resolve(&server.url("/m/2"))
            .expect_err("always 500");
        assert!(
            matches!(&err, HubError::HttpStatus { status: 500, .. }),
            "{err:?}"
        );
        assert_eq!(server.count("/m/2"), 2);
        Ok(())
    }

    #[test]
    fn connection_cut_mid_body_resumes_with_range() -> TestResult {
        let tgz = Arc::new(model_tar_gz(300_000, None));
        let half = tgz.len() / 2;
        let full = tgz.clone();
        let server = Server::start(move |req, n| {
            let mut r = Reply::ranged(&full, req).header("ETag", "\"v1\"");
            if n == 0 {
                r.cut_after = Some(half);
            }
            r
        });
        let tmp = tempfile::tempdir()?;
        let dir = hub(tmp.path()).resolve(&server.url("/m/1"))?;
        assert_model(dir.path());
        let reqs = server.requests();
        assert_eq!(reqs.len(), 2, "{reqs:?}");
        assert_eq!(
            reqs[1].header("range"),
            Some(format!("bytes={half}-").as_str())
        );
        assert_eq!(reqs[1].header("if-range"), Some("\"v1\""));
        let data = fs::read(dir.path().join("variables/variables.data-00000-of-00001"))?;
        assert_eq!(data.len(), 300_000);
        Ok(())
    }

    #[test]
    fn server_without_range_support_restarts_from_scratch() -> TestResult {
        let tgz = model_tar_gz(300_000, None);
        let cut = tgz.len() / 3;
        let server = Server::start(move |_, n| {
            let mut r = Reply::ok(tgz.clone());
            if n == 0 {
                r.cut_after = Some(cut);
            }
            r
        });
        let tmp = tempfile::tempdir()?;
        let dir = hub(tmp.path()).resolve(&server.url("/m/1"))?;
        assert_model(dir.path());
        // cut, range answered with 200 (discarded), full fetch.
        assert_eq!(server.count("/m/1"), 3);
        assert_no_debris(tmp.path());
        Ok(())
    }

    #[test]
    fn stalled_body_times_out_then_resumes() -> TestResult {
        let tgz = Arc::new(model_tar_gz(200_000, None));
        let full = tgz.clone();
        let server = Server::start(move |req, n| {
            let mut r = Reply::ranged(&full, req);
            if n == 0 {
                r.stall = Some((50_000, Duration::from_secs(3)));
            }
            r
        });
        let tmp = tempfile::tempdir()?;
        let start = Instant::now();
        let dir = builder(tmp.path())
            .read_timeout(Duration::from_millis(300))
            .build()?
            .resolve(&server.url("/m/1"))?;
        assert_model(dir.path());
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(server.count("/m/1"), 2);
        Ok(())
    }

    #[test]
    fn silent_server_is_a_timeout_error_naming_the_url() -> TestResult {
        let server = Server::start(|_, _| {
            let mut r = Reply::ok(vec![0u8; 10]);
            r.stall = Some((0, Duration::from_secs(2)));
            r
        });
        let tmp = tempfile::tempdir()?;
        let start = Instant::now();
        let handle = server.url("/m/1");
        let err = builder(tmp.path())
            .read_timeout(Duration::from_millis(200))
            .retries(1)
            .build()?
            .resolve(&handle)
            .expect_err("times out");
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
        assert!(
            matches!(&err, HubError::Download { url, .. } if url.starts_with(&handle)),
            "{err:?}"
        );
        assert_eq!(server.count("/m/1"), 2);
        assert_no_debris(tmp.path());
        Ok(())
    }

    #[test]
    fn html_page_with_200_is_a_clear_error() -> TestResult {
        let page = "<!DOCTYPE html>\n<html><head><title>Kaggle: Your Machine Learning and Data \
                    Science Community</title></head><body>sign in</body></html>";
        let server = Server::start(move |req, _| match req.path() {
            "/google/tiny/1" => Reply::redirect(302, "/models/google/tiny"),
            _ => Reply::new(200, page).header("Content-Type", "text/html; charset=utf-8"),
        });
        let tmp = tempfile::tempdir()?;
        let err = hub(tmp.path())
            .resolve(&server.url("/google/tiny/1"))
            .expect_err("html");
        let HubError::NotAnArchive {
            url, first_bytes, ..
        } = &err
        else {
            panic!("{err:?}");
        };
        assert_eq!(
            url,
            &server.url("/models/google/tiny"),
            "final URL after redirects"
        );
        assert!(
            first_bytes.starts_with("<!DOCTYPE html>\n<html>"),
            "{first_bytes}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("/models/google/tiny") && msg.contains("<!DOCTYPE html>"),
            "{msg}"
        );
        // Same bytes as application/octet-stream: caught by sniffing.
        let server = Server::start(move |_, _| Reply::ok(page));
        let err = hub(tmp.path())
            .resolve(&server.url("/x"))
            .expect_err("html");
        assert!(matches!(&err, HubError::NotAnArchive { .. }), "{err:?}");
        assert_no_debris(tmp.path());
        Ok(())
    }

    #[test]
    fn gzip_bomb_over_http_hits_the_cap() -> TestResult {
        let bomb = gzip(&tar_of(&[
            ("saved_model.pb", &b"x"[..]),
            ("big", &vec![0u8; 8 << 20][..]),
        ]));
        let server = Server::start(move |_, _| Reply::ok(bomb.clone()));
        let tmp = tempfile::tempdir()?;
        let err = builder(tmp.path())
            .max_extract_bytes(1 << 20)
            .build()?
            .resolve(&server.url("/bomb.tar.gz"))
            .expect_err("capped");
        assert!(
            matches!(&err, HubError::Extract { source: ExtractError::TooLarge { .. }, archive } if archive.ends_with("/bomb.tar.gz")),
            "{err:?}"
        );
        assert_no_debris(tmp.path());
        Ok(())
    }

    #[test]
    fn checksum_mismatch_is_never_installed() -> TestResult {
        use md5::{Digest, Md5};
        let tgz = model_tar_gz(5000, None);
        let good = b64(&Md5::digest(&tgz));
        let body = tgz.clone();
        let server = Server::start(move |req, _| {
            let hash = if req.path() == "/good" {
                good.clone()
            } else {
                "AAAAAAAAAAAAAAAAAAAAAA==".into()
            };
            Reply::ok(body.clone()).header("x-goog-hash", &format!("crc32c=n03x6A==,md5={hash}"))
        });
        let tmp = tempfile::tempdir()?;
        let hub = builder(tmp.path()).retries(1).build()?;
        let err = hub.resolve(&server.url("/bad")).expect_err("corrupt");
        assert!(
            matches!(
                &err,
                HubError::Checksum {
                    algorithm: "md5",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(!tmp
            .path()
            .join(CacheKey::for_handle(&server.url("/bad")).as_str())
            .exists());
        assert_no_debris(tmp.path());
        // A correct md5 alone (no crc32c) passes.
        let body = tgz.clone();
        let good = b64(&Md5::digest(&tgz));
        let server = Server::start(move |_, _| {
            Reply::ok(body.clone()).header("x-goog-hash", &format!("md5={good}"))
        });
        assert_model(hub.resolve(&server.url("/good"))?.path());
        Ok(())
    }

    fn b64(bytes: &[u8]) -> String {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for c in bytes.chunks(3) {
            let n = (u32::from(c[0]) << 16)
                | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
                | u32::from(*c.get(2).unwrap_or(&0));
            for i in 0..4 {
                out.push(if i <= c.len() {
                    A[(n >> (18 - 6 * i) & 63) as usize] as char
                } else {
                    '='
                });
            }
        }
        out
    }

    #[test]
    fn damaged_entries_are_downloaded_again() -> TestResult {
        let tgz = model_tar_gz(3000, None);
        let server = Server::start(move |_, _| Reply::ok(tgz.clone()));
        let tmp = tempfile::tempdir()?;
        let handle = server.url("/m/1");
        let hub = hub(tmp.path());
        let dir = hub.resolve(&handle)?;
        // A /tmp cleaner evicted saved_model.pb (tensorflow/hub#896).
        fs::remove_file(dir.path().join("saved_model.pb"))?;
        let key = CacheKey::for_handle(&handle);
        assert!(matches!(
            hub.cache().entry(&key)?.state,
            EntryState::Damaged(_)
        ));
        assert_model(hub.resolve(&handle)?.path());
        assert_eq!(server.count("/m/1"), 2);
        // A truncated variables file.
        let data = dir.path().join("variables/variables.data-00000-of-00001");
        fs::write(&data, b"short")?;
        assert_model(hub.resolve(&handle)?.path());
        assert_eq!(fs::metadata(&data)?.len(), 3000);
        assert_eq!(server.count("/m/1"), 3);
        // An empty directory (what tensorflow_hub leaves behind).
        fs::remove_dir_all(dir.path())?;
        fs::create_dir(dir.path())?;
        assert_model(hub.resolve(&handle)?.path());
        assert_eq!(server.count("/m/1"), 4);
        Ok(())
    }

    #[test]
    fn offline_mode_names_the_missing_handle() -> TestResult {
        let tgz = model_tar_gz(100, None);
        let server = Server::start(move |_, _| Reply::ok(tgz.clone()));
        let tmp = tempfile::tempdir()?;
        let handle = server.url("/google/tiny/1");
        let offline = builder(tmp.path()).offline(true).build()?;
        let err = offline.resolve(&handle).expect_err("not cached");
        assert!(
            matches!(&err, HubError::Offline { handle: h, .. } if *h == handle),
            "{err:?}"
        );
        assert!(err.to_string().contains(&handle), "{err}");
        assert_eq!(server.requests().len(), 0);
        hub(tmp.path()).resolve(&handle)?;
        assert_model(offline.resolve(&handle)?.path());
        assert_eq!(server.requests().len(), 1);
        Ok(())
    }

    #[test]
    fn stale_lock_of_another_host_is_taken_over_after_the_timeout() -> TestResult {
        let tgz = model_tar_gz(100, None);
        let server = Server::start(move |_, _| Reply::ok(tgz.clone()));
        let tmp = tempfile::tempdir()?;
        let handle = server.url("/m/1");
        let key = CacheKey::for_handle(&handle);
        let lock = tmp.path().join(format!("{key}.lock"));
        fs::write(
            &lock,
            "some.other.host.4242.0123456789abcdef0123456789abcdef",
        )?;
        let start = Instant::now();
        let dir = builder(tmp.path())
            .lock_timeout(Duration::from_millis(300))
            .build()?
            .resolve(&handle)?;
        assert_model(dir.path());
        assert!(start.elapsed() >= Duration::from_millis(300));
        assert!(!lock.exists());
        Ok(())
    }

    #[test]
    fn killed_download_is_repaired_at_once() -> TestResult {
        // What `kill -9` mid-download leaves: our host's lock with a dead pid, a partial temp dir.
        let tgz = model_tar_gz(100, None);
        let server = Server::start(move |_, _| Reply::ok(tgz.clone()));
        let tmp = tempfile::tempdir()?;
        let handle = server.url("/m/1");
        let key = CacheKey::for_handle(&handle);
        let mut child = std::process::Command::new("true").spawn()?;
        let dead_pid = child.id();
        child.wait()?;
        let host = hostname::get()?.to_string_lossy().into_owned();
        let uid = "00112233445566778899aabbccddeeff";
        fs::write(
            tmp.path().join(format!("{key}.lock")),
            format!("{host}.{dead_pid}.{uid}"),
        )?;
        let partial = tmp.path().join(format!("{key}.{uid}.tmp"));
        fs::create_dir_all(partial.join("variables"))?;
        fs::write(
            partial.join("variables/variables.data-00000-of-00001"),
            b"partial",
        )?;
        let start = Instant::now();
        let dir = builder(tmp.path())
            .lock_timeout(Duration::from_secs(600))
            .build()?
            .resolve(&handle)?;
        assert!(start.elapsed() < Duration::from_secs(5));
        assert_model(dir.path());
        assert!(!partial.exists(), "leftover temp dir removed");
        assert_no_debris(tmp.path());
        Ok(())
    }

    #[test]
    fn threads_resolving_at_once_download_once() -> TestResult {
        let tgz = model_tar_gz(200_000, None);
        let server = Arc::new(Server::start(move |_, _| {
            let mut r = Reply::ok(tgz.clone());
            r.chunk_delay = Some(Duration::from_millis(30));
            r
        }));
        let tmp = tempfile::tempdir()?;
        let handle = server.url("/m/1");
        let hub = Arc::new(hub(tmp.path()));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (hub, handle) = (hub.clone(), handle.clone());
                std::thread::spawn(move || hub.resolve(&handle).map(|d| d.into_path_buf()))
            })
            .collect();
        for t in threads {
            let dir = t.join().map_err(|_| "thread panicked")??;
            assert_model(&dir);
        }
        assert_eq!(server.count("/m/1"), 1);
        assert_no_debris(tmp.path());
        Ok(())
    }

    const CHILD_ENV: &str = "TFHUB_HUB_TEST_CHILD";

    /// Child mode for `processes_resolving_at_once_download_once`; a no-op otherwise.
    #[test]
    fn child_resolve() -> TestResult {
        let Ok(spec) = std::env::var(CHILD_ENV) else {
            return Ok(());
        };
        let (cache, handle) = spec.split_once('|').ok_or("spec")?;
        let dir = hub(Path::new(cache)).resolve(handle)?;
        assert_model(dir.path());
        println!("RESOLVED {}", dir.path().display());
        Ok(())
    }

    #[test]
    fn processes_resolving_at_once_download_once() -> TestResult {
        let tgz = model_tar_gz(200_000, None);
        let server = Server::start(move |_, _| {
            let mut r = Reply::ok(tgz.clone());
            r.chunk_delay = Some(Duration::from_millis(40));
            r
        });
        let tmp = tempfile::tempdir()?;
        let handle = server.url("/m/1");
        let exe = std::env::current_exe()?;
        let children = (0..4)
            .map(|_| {
                std::process::Command::new(&exe)
                    .args([
                        "--exact",
                        "net::child_resolve",
                        "--nocapture",
                        "--test-threads=1",
                    ])
                    .env(CHILD_ENV, format!("{}|{handle}", tmp.path().display()))
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let want = tmp.path().join(CacheKey::for_handle(&handle).as_str());
        for child in children {
            let out = child.wait_with_output()?;
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                stdout.contains(&format!("RESOLVED {}", want.display())),
                "{stdout}"
            );
        }
        assert_eq!(server.count("/m/1"), 1, "exactly one download");
        assert_model(&want);
        assert_no_debris(tmp.path());
        Ok(())
    }

    #[test]
    fn cache_listing_and_removal() -> TestResult {
        let tgz = model_tar_gz(100, None);
        let server = Server::start(move |_, _| Reply::ok(tgz.clone()));
        let tmp = tempfile::tempdir()?;
        let hub = hub(tmp.path());
        let (a, b) = (server.url("/a/1"), server.url("/b/1"));
        hub.resolve(&a)?;
        hub.resolve(&b)?;
        let entries = hub.cache().entries()?;
        assert_eq!(entries.len(), 2);
        assert!(entries
            .iter()
            .all(|e| e.state == EntryState::Complete && e.bytes > 100));
        let key = CacheKey::for_handle(&a);
        assert!(hub.cache().remove(&key)?);
        assert!(!tmp.path().join(format!("{key}.descriptor.txt")).exists());
        assert!(!hub.cache().remove(&key)?);
        assert_eq!(hub.cache().entries()?.len(), 1);
        // A held lock blocks removal.
        let kb = CacheKey::for_handle(&b);
        fs::write(tmp.path().join(format!("{kb}.lock")), "h.1.abc")?;
        let err = hub.cache().remove(&kb).expect_err("busy");
        assert!(
            matches!(&err, HubError::Busy { holder, .. } if holder == "h.1.abc"),
            "{err:?}"
        );
        Ok(())
    }
}

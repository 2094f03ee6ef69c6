//! `cargo +nightly fuzz run tar_extract`: see `tfhub::fuzzing::tar_extract` for what it drives.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Errors are fine; a panic, abort, timeout or OOM is the bug.
    let _ = tfhub::fuzzing::tar_extract(data);
});

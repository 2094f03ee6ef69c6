//! `cargo +nightly fuzz run serve_rest_predict`: see `tfhub::fuzzing::serve_rest_predict` for what it drives.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Errors are fine; a panic, abort, timeout or OOM is the bug.
    let _ = tfhub::fuzzing::serve_rest_predict(data);
});

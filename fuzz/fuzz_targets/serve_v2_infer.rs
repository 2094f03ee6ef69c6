//! `cargo +nightly fuzz run serve_v2_infer`: see `tfhub::fuzzing::serve_v2_infer` for what it drives.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Errors are fine; a panic, abort, timeout or OOM is the bug.
    let _ = tfhub::fuzzing::serve_v2_infer(data);
});

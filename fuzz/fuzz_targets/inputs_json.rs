//! `cargo +nightly fuzz run inputs_json`: see `tfhub::fuzzing::inputs_json` for what it drives.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Errors are fine; a panic, abort, timeout or OOM is the bug.
    let _ = tfhub::fuzzing::inputs_json(data);
});

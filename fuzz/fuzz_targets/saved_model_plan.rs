//! `cargo +nightly fuzz run saved_model_plan`: see `tfhub::fuzzing::saved_model_plan` for what it drives.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Errors are fine; a panic, abort, timeout or OOM is the bug.
    let _ = tfhub::fuzzing::saved_model_plan(data);
});

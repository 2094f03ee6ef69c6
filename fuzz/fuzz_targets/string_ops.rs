//! `cargo +nightly fuzz run string_ops`: see `tfhub::fuzzing::string_ops` for what it drives.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Errors are fine; a panic, abort, timeout or OOM is the bug.
    let _ = tfhub::fuzzing::string_ops(data);
});

//! `cargo +nightly fuzz run sentencepiece`: see `tfhub::fuzzing::sentencepiece` for what it
//! drives.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Errors are fine; a panic, abort, timeout or OOM is the bug.
    let _ = tfhub::fuzzing::sentencepiece(data);
});

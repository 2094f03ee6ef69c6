//! `cargo +nightly fuzz run image_decode`: see `tfhub::fuzzing::image_decode` for what it drives.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Errors are fine; a panic, abort, timeout or OOM is the bug.
    let _ = tfhub::fuzzing::image_decode(data);
});

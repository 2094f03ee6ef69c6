//! `cargo +nightly fuzz run text_models`: see `tfhub::fuzzing::text_models` for what it drives
//! (tensorflow_text's FastWordpiece / FastBertNormalizer / FastSentencepiece flatbuffer models).
//! Seed it with `tests/fixtures/text2_fast_wordpiece/wp_model.bin` and
//! `tests/fixtures/text3_fast_spm_vectors/*.fb` (real model buffers).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Errors are fine; a panic, abort, timeout or OOM is the bug.
    let _ = tfhub::fuzzing::text_models(data);
});

//! `cargo +nightly fuzz run text_models`: see `tfhub::fuzzing::text_models` for what it drives
//! (tensorflow_text's FastWordpiece / FastBertNormalizer / FastSentencepiece flatbuffer models).
//! Seeds (real model buffers, replayed on stable by tests/fuzz_regressions.rs):
//! `fuzz/corpus/text_models/seed-*` (a FastWordpiece model, a FastSentencepiece encoder and
//! decoder); `tests/fixtures/text3_fast_spm_vectors/nfkc.enc.fb` is a larger encoder.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Errors are fine; a panic, abort, timeout or OOM is the bug.
    let _ = tfhub::fuzzing::text_models(data);
});

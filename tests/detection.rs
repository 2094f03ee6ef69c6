//! Detector post-processing (every NMS variant) against TF 2.21 goldens: indices exact,
//! soft-NMS scores within f32 rounding. The fixture (`tools/make_fixtures_signal.py`) has
//! tied scores, duplicate, flipped, zero-area and NaN boxes, and NaN scores.
mod common;

use common::{run_fixture, Tolerance};

/// Soft-NMS decays scores with `expf`; TF and Rust both call the C library's.
const SCORES: Tolerance = Tolerance::F32 {
    rel: 1e-6,
    abs: 1e-7,
};

#[test]
fn single_class_variants() -> common::TestResult {
    run_fixture("detection", "serving_default", SCORES)
}

#[test]
fn with_overlaps() -> common::TestResult {
    run_fixture("detection", "overlaps", Tolerance::Exact)
}

/// Box corners and class ids are copied, not computed: equal as f32 (the JSON parser's last
/// digit is not, hence a relative 1e-7).
const COPIED: Tolerance = Tolerance::F32 {
    rel: 1e-7,
    abs: 0.0,
};

#[test]
fn half_precision_scores() -> common::TestResult {
    run_fixture("detection", "half", COPIED)
}

#[test]
fn combined() -> common::TestResult {
    run_fixture("detection", "combined", COPIED)
}

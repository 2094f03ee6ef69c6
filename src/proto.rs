//! Generated TensorFlow protobuf types (`proto/`, compiled by build.rs). Never edited by hand.
#![allow(clippy::all, missing_docs, rustdoc::all)]
include!(concat!(env!("OUT_DIR"), "/tensorflow.rs"));

/// `tensorflow.error`: canonical status codes (TF Serving's `StatusProto`).
pub mod error {
    include!(concat!(env!("OUT_DIR"), "/tensorflow.error.rs"));
}

/// `tensorflow.serving`: TF Serving's Predict / metadata / status messages.
pub mod serving {
    include!(concat!(env!("OUT_DIR"), "/tensorflow.serving.rs"));
}

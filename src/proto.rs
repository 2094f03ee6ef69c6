//! Generated TensorFlow protobuf types (`proto/`, compiled by build.rs). Never edited by hand.
#![allow(clippy::all, missing_docs, rustdoc::all)]
include!(concat!(env!("OUT_DIR"), "/tensorflow.rs"));

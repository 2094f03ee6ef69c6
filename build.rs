//! Compiles `proto/` with prost-build driven by protox (a pure-Rust .proto compiler):
//! no system `protoc`, no C++.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/tensorflow/core/protobuf/saved_model.proto",
        "proto/tensorflow/core/protobuf/tensor_bundle.proto",
        "proto/tensorflow/core/protobuf/trackable_object_graph.proto",
        "proto/tensorflow/core/framework/graph.proto",
        "proto/sentencepiece/sentencepiece_model.proto",
        // TF Serving's gRPC messages (src/serve): the services are framed by hand.
        "proto/tensorflow_serving/apis/predict.proto",
        "proto/tensorflow_serving/apis/get_model_metadata.proto",
        "proto/tensorflow_serving/apis/get_model_status.proto",
    ];
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(files, ["proto"])?;
    prost_build::Config::new()
        .btree_map(["."])
        .compile_fds(fds)?;
    Ok(())
}

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
    // `AttrValue`'s oneof is as large as its largest variant (`TensorProto`, `ListValue`:
    // hundreds of bytes), and every `NodeDef`/`ArgAttrs` attr map allocates B-tree leaves of
    // eleven values: boxing the large variants cuts a Keras model's parsed graph from ~50 MB
    // to a fraction (issue #17, peak RSS).
    prost_build::Config::new()
        .btree_map(["."])
        .boxed(".tensorflow.AttrValue.value.tensor")
        .boxed(".tensorflow.AttrValue.value.list")
        .boxed(".tensorflow.AttrValue.value.func")
        .compile_fds(fds)?;
    Ok(())
}

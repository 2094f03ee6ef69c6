# tfhub serve: TensorFlow Serving's REST + gRPC API in one static binary.
#   docker build -t tfhub-serve .
#   docker run -p 8500:8500 -p 8501:8501 -v /path/to/models/mymodel:/models/model tfhub-serve
# Same entrypoint contract as tensorflow/serving's image: MODEL_NAME (default "model") and
# MODEL_BASE_PATH (default "/models"); extra args are appended (the last repeat of a flag wins).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN rustup target add x86_64-unknown-linux-gnu \
 && RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --profile dist --locked --bin tfhub --target x86_64-unknown-linux-gnu \
 && cp target/x86_64-unknown-linux-gnu/dist/tfhub /tfhub \
 && mkdir -p /models/model \
 && cp -r tests/fixtures/nnlm_en_dim128 /models/model/1

# distroless/static: CA certificates (hub downloads) and a nonroot user, no shell, no libc.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /tfhub /usr/bin/tfhub
# The bundled example model, so `docker run tfhub-serve` answers at once; mount over it.
COPY --from=build --chown=65532:65532 /models /models
ENV MODEL_NAME=model MODEL_BASE_PATH=/models TFHUB_CACHE_DIR=/tmp/tfhub_modules
EXPOSE 8500 8501
USER 65532:65532
# distroless has no shell, so the env expansion TF Serving's entrypoint script does is done by
# tfhub: an unset --model_name/--model_base_path falls back to MODEL_NAME / MODEL_BASE_PATH.
ENTRYPOINT ["/usr/bin/tfhub", "serve", "--port=8500", "--rest_api_port=8501"]

//! Entry points shared by the `cargo fuzz` targets (`fuzz/`) and their stable regression test
//! (`tests/fuzz_regressions.rs`): each takes arbitrary bytes, drives one parser the way the
//! library uses it, and returns its typed result. None may panic, abort or allocate without a
//! cap; the only deliberate panics are the oracles (`tar_extract` asserting that nothing was
//! written outside its destination), which flag a security bug, not a bad input.
//!
//! Not a stable API: `#[doc(hidden)]`, for the fuzzers only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::api::json::{tensor_from_json, tensor_to_json, JsonTensorError};
use crate::error::Error;
use crate::graph::{Compiler, Feed, Fetch};
use crate::hub::ExtractError;
use crate::ops::Session;
use crate::ops::{BuildCtx, Callable, EvalCtx, FunctionResolver, Limits, OpError, Registry};
use crate::proto::{attr_value, AttrValue, MetaGraphDef};
use crate::saved_model::checkpoint::{BundleReader, CheckpointError};
use crate::saved_model::{checkpoint_tensor, SavedModel, INIT_OP_SIGNATURE_KEY};
use crate::tensor::{Bytes, DType, Tensor};

fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(Registry::with_all_ops)
}

/// Caps small enough that a hostile input hits them long before libFuzzer's RSS limit: the
/// defaults allow 4 GiB tensors, which is a legitimate configuration but not a useful one to
/// fuzz under (every `Fill` of a huge shape would be an "OOM" that is really the cap working).
pub fn limits() -> Limits {
    Limits {
        max_tensor_bytes: 64 << 20,
        max_const_elements: 1 << 20,
        max_call_depth: 16,
        max_loop_iterations: 10_000,
        max_live_bytes: 256 << 20,
        max_graph_nodes: 100_000,
        max_call_time: Some(std::time::Duration::from_secs(5)),
        max_pooled_bytes: 64 << 20,
        max_image_pixels: 1 << 22,
    }
}

/// This process's scratch directory for `target` (on tmpfs when there is one).
fn scratch_path(target: &str) -> PathBuf {
    let base = Path::new("/dev/shm");
    let base = if base.is_dir() {
        base.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    base.join(format!("tfhub-fuzz-{}-{target}", std::process::id()))
}

/// [`scratch_path`], created on first use.
fn scratch(target: &str) -> PathBuf {
    let dir = scratch_path(target);
    // A failure here shows up as an I/O error from the parser under test.
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// Removes the files `checkpoint` or `tar_extract` left in this process's scratch directory
/// for `target` (tests call it; a fuzzing process leaves them until it exits).
pub fn remove_scratch(target: &str) {
    let _ = std::fs::remove_dir_all(scratch_path(target));
}

/// `saved_model.pb` bytes → [`SavedModel::from_bytes`] (SavedModel, else frozen `GraphDef`)
/// → a plan for every signature, the restore and init ops of each meta graph (as
/// [`crate::Model::load_with`] compiles them), or, for a frozen graph, one plan targeting
/// every node. Returns how many plans compiled; the first error otherwise.
pub fn saved_model_plan(data: &[u8]) -> Result<usize, Error> {
    let sm = SavedModel::from_bytes(data, Path::new("fuzz/saved_model.pb"))?;
    let mut compiled = 0;
    let mut first_err = None;
    for mg in &sm.meta_graphs {
        match compile_meta_graph(mg, sm.frozen) {
            Ok(n) => compiled += n,
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(compiled),
    }
}

fn tensor_name(info: &crate::proto::TensorInfo) -> &str {
    match &info.encoding {
        Some(crate::proto::tensor_info::Encoding::Name(n)) => n,
        _ => "",
    }
}

fn compile_meta_graph(mg: &MetaGraphDef, frozen: bool) -> Result<usize, Error> {
    let Some(graph) = mg.graph_def.as_ref() else {
        return Ok(0);
    };
    let op_list = mg
        .meta_info_def
        .as_ref()
        .and_then(|m| m.stripped_op_list.as_ref());
    let mut compiler = Compiler::new(registry(), graph.library.as_ref(), op_list, limits());
    let mut jobs: Vec<(Vec<Feed>, Vec<Fetch>)> = Vec::new();
    if frozen {
        let feeds = graph
            .node
            .iter()
            .filter(|n| n.op == "Placeholder")
            .map(|n| Feed::parse(&n.name))
            .collect();
        let fetches = graph
            .node
            .iter()
            .map(|n| Fetch::Target(n.name.clone()))
            .collect();
        jobs.push((feeds, fetches));
    }
    if let Some(saver) = &mg.saver_def {
        if !saver.restore_op_name.is_empty() {
            jobs.push((
                vec![Feed::parse(&saver.filename_tensor_name)],
                vec![Fetch::Target(saver.restore_op_name.clone())],
            ));
        }
    }
    for (key, sig) in &mg.signature_def {
        if key == INIT_OP_SIGNATURE_KEY {
            if let Some(info) = sig.outputs.get(INIT_OP_SIGNATURE_KEY) {
                let op = tensor_name(info);
                let node = op.split(':').next().unwrap_or(op).to_string();
                jobs.push((Vec::new(), vec![Fetch::Target(node)]));
            }
            continue;
        }
        let feeds = sig
            .inputs
            .values()
            .map(|i| Feed::parse(tensor_name(i)))
            .collect();
        let fetches = sig
            .outputs
            .values()
            .map(|o| Fetch::Tensor(Feed::parse(tensor_name(o))))
            .collect();
        jobs.push((feeds, fetches));
    }
    let mut compiled = 0;
    let mut first_err = None;
    for (feeds, fetches) in &jobs {
        match compiler.compile_graph(&graph.node, feeds, fetches) {
            Ok(_) => compiled += 1,
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(compiled),
    }
}

/// Splits fuzz bytes into (index, data shard): a little-endian `u32` length of the index, the
/// index, then the shard (the length is clamped to what is there).
pub fn split_checkpoint(data: &[u8]) -> (&[u8], &[u8]) {
    let Some((len, rest)) = data.split_first_chunk::<4>() else {
        return (data, &[]);
    };
    let n = (u32::from_le_bytes(*len) as usize).min(rest.len());
    rest.split_at(n)
}

/// Joins an index and a shard into the byte layout [`split_checkpoint`] reads.
pub fn join_checkpoint(index: &[u8], shard: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + index.len() + shard.len());
    out.extend_from_slice(&(index.len() as u32).to_le_bytes());
    out.extend_from_slice(index);
    out.extend_from_slice(shard);
    out
}

/// Checkpoint bytes (see [`split_checkpoint`]) written as `variables.index` and
/// `variables.data-00000-of-00001` in a scratch directory, opened with [`BundleReader`], then
/// every key read twice (the second read skips the checksum). Returns the number of tensors
/// read; the first error otherwise.
pub fn checkpoint(data: &[u8]) -> Result<usize, CheckpointError> {
    let (index, shard) = split_checkpoint(data);
    let dir = scratch("checkpoint");
    let prefix = dir.join("variables");
    let io = |path: PathBuf| move |source| CheckpointError::Io { path, source };
    let index_path = dir.join("variables.index");
    std::fs::write(&index_path, index).map_err(io(index_path.clone()))?;
    let shard_path = dir.join("variables.data-00000-of-00001");
    std::fs::write(&shard_path, shard).map_err(io(shard_path.clone()))?;
    let reader = BundleReader::open(&prefix)?;
    let mut read = 0;
    let mut first_err = None;
    let keys: Vec<String> = reader.keys().map(str::to_owned).collect();
    for key in &keys {
        for _ in 0..2 {
            match checkpoint_tensor(&reader, key) {
                Ok(t) => {
                    read += 1;
                    // Touch every byte: a bad range would fault here, not at some later use.
                    std::hint::black_box(crate::api::json::tensor_to_json(&t));
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(read),
    }
}

/// An archive (tar or tar.gz, sniffed as the hub does) unpacked with the hub's refusing
/// extractor into `<scratch>/dest`, followed by the hub's model-root settling. Returns the
/// number of files written. Panics (the oracle) if anything appears next to `dest` or a link
/// appears inside it.
pub fn tar_extract(data: &[u8]) -> Result<u64, ExtractError> {
    use crate::hub::extract_for_fuzzing as extract;
    let root = scratch("tar");
    let dest = root.join("dest");
    let _ = std::fs::remove_dir_all(&dest);
    std::fs::create_dir_all(&dest).map_err(|source| ExtractError::Write {
        path: dest.clone(),
        source,
    })?;
    let result = extract(data, &dest);
    let outside: Vec<_> = std::fs::read_dir(&root)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert_eq!(
        outside,
        ["dest"],
        "extraction wrote outside its destination"
    );
    assert_no_links(&dest);
    let _ = std::fs::remove_dir_all(&dest);
    result
}

fn assert_no_links(dir: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let Ok(ft) = e.file_type() else { continue };
        assert!(
            ft.is_file() || ft.is_dir(),
            "extraction created {:?}, which is not a file or directory",
            e.path()
        );
        if ft.is_dir() {
            assert_no_links(&e.path());
        }
    }
}

/// Why `inputs.json` bytes did not become tensors.
#[derive(Debug, thiserror::Error)]
pub enum InputsJsonError {
    /// Not JSON.
    #[error(transparent)]
    Syntax(#[from] serde_json::Error),
    /// JSON, but not an object of inputs.
    #[error("expected a JSON object")]
    NotObject,
    /// An input did not convert under any dtype.
    #[error(transparent)]
    Tensor(#[from] JsonTensorError),
}

const JSON_DTYPES: [DType; 14] = [
    DType::F32,
    DType::F64,
    DType::F16,
    DType::BF16,
    DType::I8,
    DType::I16,
    DType::I32,
    DType::I64,
    DType::U8,
    DType::U16,
    DType::U32,
    DType::U64,
    DType::Bool,
    DType::String,
];

/// `inputs.json` bytes decoded as `tfhub run` does (a JSON object of nested lists), each input
/// converted with [`tensor_from_json`] under every dtype JSON can express, and each tensor
/// written back with [`tensor_to_json`]. Returns the number of tensors built; the last
/// conversion error if none was.
pub fn inputs_json(data: &[u8]) -> Result<usize, InputsJsonError> {
    let v: serde_json::Value = serde_json::from_slice(data)?;
    let serde_json::Value::Object(obj) = v else {
        return Err(InputsJsonError::NotObject);
    };
    let mut built = 0;
    let mut last_err = None;
    for value in obj.values() {
        for dtype in JSON_DTYPES {
            match tensor_from_json(value, dtype) {
                Ok(t) => {
                    built += 1;
                    std::hint::black_box(tensor_to_json(&t));
                }
                Err(e) => last_err = Some(e),
            }
        }
    }
    match (built, last_err) {
        (0, Some(e)) => Err(e.into()),
        _ => Ok(built),
    }
}

struct NoFunctions;

impl FunctionResolver for NoFunctions {
    fn function(&mut self, name: &str) -> Result<Arc<dyn Callable>, OpError> {
        Err(OpError::Unimplemented(format!(
            "function {name} while fuzzing string ops"
        )))
    }
}

/// Reads the structured part of a `string_ops` input.
struct Cursor<'a> {
    data: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn byte(&mut self) -> u8 {
        let (b, rest) = self.data.split_first().unwrap_or((&0, &[]));
        self.data = rest;
        *b
    }
    fn i32(&mut self) -> i32 {
        i32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }
    /// A field of at most 255 bytes, length-prefixed.
    fn field(&mut self) -> &'a [u8] {
        let n = usize::from(self.byte()).min(self.data.len());
        let (f, rest) = self.data.split_at(n);
        self.data = rest;
        f
    }
}

/// String ops reached through the registry (as a graph would build them).
const STRING_OPS: [&str; 16] = [
    "StringSplit",
    "StringSplitV2",
    "RegexReplace",
    "StaticRegexReplace",
    "StringLower",
    "StringUpper",
    "Substr",
    "StringLength",
    "StringToHashBucket",
    "StringToHashBucketFast",
    "StringToHashBucketStrong",
    "StringStrip",
    "StringJoin",
    "ReduceJoin",
    "AsString",
    "NormalizeUTF8WithOffsetsMap",
];

/// One string op on fuzzed strings and attributes. Layout: op selector byte, flag byte, two
/// little-endian `i32` parameters, two length-prefixed auxiliary fields (pattern / separator
/// / rewrite / fill), then length-prefixed input strings (at most 64). Selector values past
/// the registry ops run `Fingerprint64` (the kernel) on every string. Returns the number of
/// output elements.
pub fn string_ops(data: &[u8]) -> Result<usize, OpError> {
    let mut c = Cursor { data };
    let which = usize::from(c.byte()) % (STRING_OPS.len() + 1);
    let flags = c.byte();
    let bit = |i: u8| flags & (1 << i) != 0;
    let (p1, p2) = (c.i32(), c.i32());
    let (aux, aux2) = (c.field().to_vec(), c.field().to_vec());
    let mut strings = Vec::new();
    while !c.data.is_empty() && strings.len() < 64 {
        strings.push(Bytes::copy_from_slice(c.field()));
    }
    let Some(&op) = STRING_OPS.get(which) else {
        let h: u64 = strings
            .iter()
            .fold(0, |acc, s| acc ^ tfhub_kernels::strings::fingerprint64(s));
        std::hint::black_box(h);
        return Ok(strings.len());
    };
    let n = strings.len();
    let input = Tensor::vector(strings.clone());
    let scalar = |b: &[u8]| Tensor::scalar(Bytes::copy_from_slice(b));
    let s = |v: &[u8]| attr_value::Value::S(v.to_vec());
    let unit = if bit(0) { "UTF8_CHAR" } else { "BYTE" };
    let mut attrs: Vec<(&str, attr_value::Value)> = Vec::new();
    let inputs = match op {
        "StringSplit" => {
            attrs.push(("skip_empty", attr_value::Value::B(bit(0))));
            vec![input, scalar(&aux)]
        }
        "StringSplitV2" => {
            attrs.push(("maxsplit", attr_value::Value::I(i64::from(p1))));
            vec![input, scalar(&aux)]
        }
        "RegexReplace" => {
            attrs.push(("replace_global", attr_value::Value::B(bit(0))));
            vec![input, scalar(&aux), scalar(&aux2)]
        }
        "StaticRegexReplace" => {
            attrs.push(("pattern", s(&aux)));
            attrs.push(("rewrite", s(&aux2)));
            attrs.push(("replace_global", attr_value::Value::B(bit(0))));
            vec![input]
        }
        "StringLower" | "StringUpper" => {
            let enc: &[u8] = if bit(0) { b"utf-8" } else { b"" };
            attrs.push(("encoding", s(enc)));
            vec![input]
        }
        "Substr" => {
            attrs.push(("unit", s(unit.as_bytes())));
            // Scalar or per-element positions (one extra element on bit 3: a shape error).
            let len = if bit(3) { n + 1 } else { n };
            let (pos, count) = if bit(1) {
                let pos: Vec<i32> = (0..len).map(|i| p1.wrapping_add(i as i32)).collect();
                let count: Vec<i32> = (0..len).map(|i| p2.wrapping_sub(i as i32)).collect();
                (Tensor::vector(pos), Tensor::vector(count))
            } else {
                (Tensor::scalar(p1), Tensor::scalar(p2))
            };
            let (pos, count) = if bit(2) {
                (to_i64(&pos), to_i64(&count))
            } else {
                (pos, count)
            };
            vec![input, pos, count]
        }
        "StringLength" => {
            attrs.push(("unit", s(unit.as_bytes())));
            vec![input]
        }
        "StringToHashBucket" | "StringToHashBucketFast" => {
            attrs.push(("num_buckets", attr_value::Value::I(i64::from(p1))));
            vec![input]
        }
        "StringToHashBucketStrong" => {
            attrs.push(("num_buckets", attr_value::Value::I(i64::from(p1))));
            attrs.push((
                "key",
                attr_value::Value::List(Box::new(attr_value::ListValue {
                    i: vec![i64::from(p1), i64::from(p2)],
                    ..Default::default()
                })),
            ));
            vec![input]
        }
        "StringStrip" => vec![input],
        "StringJoin" => {
            attrs.push(("separator", s(&aux2)));
            attrs.push(("N", attr_value::Value::I(2)));
            vec![input, scalar(&aux)]
        }
        "ReduceJoin" => {
            attrs.push(("separator", s(&aux)));
            attrs.push(("keep_dims", attr_value::Value::B(bit(0))));
            let shaped = if bit(1) && n % 2 == 0 {
                Tensor::from_vec(&[n / 2, 2], strings.clone()).map_err(OpError::invalid)?
            } else {
                input
            };
            vec![shaped, Tensor::scalar(p1)]
        }
        "AsString" => {
            attrs.push(("width", attr_value::Value::I(i64::from(p1))));
            attrs.push(("precision", attr_value::Value::I(i64::from(p2))));
            attrs.push(("fill", s(&aux)));
            attrs.push(("scientific", attr_value::Value::B(bit(0))));
            attrs.push(("shortest", attr_value::Value::B(bit(1))));
            // The string bytes reinterpreted as numbers of the chosen dtype.
            let bytes: Vec<u8> = strings.concat();
            let t = match flags >> 4 & 3 {
                0 => Tensor::vector(
                    bytes
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect::<Vec<f32>>(),
                ),
                1 => Tensor::vector(
                    bytes
                        .chunks_exact(8)
                        .map(|b| {
                            let mut a = [0; 8];
                            a.copy_from_slice(b);
                            f64::from_le_bytes(a)
                        })
                        .collect::<Vec<f64>>(),
                ),
                2 => Tensor::vector(
                    bytes
                        .chunks_exact(8)
                        .map(|b| {
                            let mut a = [0; 8];
                            a.copy_from_slice(b);
                            i64::from_le_bytes(a)
                        })
                        .collect::<Vec<i64>>(),
                ),
                _ => Tensor::vector(bytes.iter().map(|&b| b != 0).collect::<Vec<bool>>()),
            };
            attrs.push(("T", attr_value::Value::Type(t.dtype().to_proto())));
            vec![t]
        }
        "NormalizeUTF8WithOffsetsMap" => {
            // The four forms, or an unknown one (an error at run time).
            let form: &[u8] = match flags >> 1 & 7 {
                0 => b"NFC",
                1 => b"nfd",
                2 => b"NFKC",
                3 => b"NFKD",
                _ => &aux,
            };
            attrs.push(("normalization_form", s(form)));
            let outs = eval_op(op, attrs, vec![input])?;
            let [normalized, maps] = <[Tensor; 2]>::try_from(outs)
                .map_err(|o| OpError::invalid(format!("{} outputs", o.len())))?;
            // Map fuzzed offsets back through the edits: one row per input string, each row
            // `p1`-derived offsets, some past the end or negative.
            let mut values = Vec::new();
            let mut splits = vec![0i64];
            for (i, out) in normalized.as_slice::<Bytes>()?.iter().enumerate() {
                let len = out.len() as i64;
                let k = i as i64;
                values.extend([0, len, i64::from(p1).wrapping_add(k), len - k, len + 1]);
                splits.push(values.len() as i64);
            }
            let splits = Tensor::vector(splits);
            let found = run_op(
                "FindSourceOffsets",
                vec![("Tsplits", attr_value::Value::Type(DType::I64.to_proto()))],
                vec![maps, Tensor::vector(values), splits],
            );
            return Ok(normalized.len() + found.unwrap_or(0));
        }
        _ => return Err(OpError::Unimplemented(format!("fuzzing {op}"))),
    };
    run_op(op, attrs, inputs)
}

fn to_i64(t: &Tensor) -> Tensor {
    let v: Vec<i64> = t.to_i64_vec().unwrap_or_default();
    if t.shape().is_empty() {
        Tensor::scalar(v.first().copied().unwrap_or(0))
    } else {
        Tensor::vector(v)
    }
}

/// A SentencePiece model proto and a text. Layout: little-endian `u32` model length, the model
/// bytes, then the text. Loads the model (`sentencepiece::Processor::from_bytes`), encodes the
/// text with and without bos/eos/reverse, decodes the ids and the pieces back, and maps every
/// id to its piece and back. Returns the number of pieces of the plain encoding.
pub fn sentencepiece(data: &[u8]) -> Result<usize, crate::sentencepiece::SpmError> {
    use crate::sentencepiece::{ExtraOptions, Processor};
    let n = data
        .get(..4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .unwrap_or(0);
    let rest = data.get(4..).unwrap_or_default();
    let (model, text) = rest.split_at(n.min(rest.len()));
    let sp = Processor::from_bytes(model)?;
    let max_len = 1 << 20;
    let plain = sp.encode(text, ExtraOptions::default(), max_len)?;
    let all = ExtraOptions {
        bos: true,
        eos: true,
        reverse: true,
    };
    // bos/eos may be undefined in a fuzzed model: an error, not a bug.
    let _ = sp.encode(text, all, max_len);
    let ids: Vec<i32> = plain.tokens.iter().map(|t| t.id).collect();
    let pieces: Vec<Vec<u8>> = plain
        .tokens
        .iter()
        .map(|t| sp.token_text(&plain, t).into_owned())
        .collect();
    std::hint::black_box(sp.decode_ids(&ids, ExtraOptions::default())?);
    std::hint::black_box(sp.decode_pieces(&pieces, ExtraOptions::default())?);
    let _ = sp.sample_encode(text, -1, 1.0, ExtraOptions::default(), max_len);
    for id in 0..sp.vocab_size().min(4096) {
        let p = sp.id_to_piece(id as i64)?;
        std::hint::black_box(sp.piece_to_id(p));
    }
    Ok(plain.tokens.len())
}

/// Decode ops the `image_decode` target drives, picked by the first byte.
const IMAGE_OPS: &[&str] = &[
    "DecodeImage",
    "DecodePng",
    "DecodeJpeg",
    "DecodeGif",
    "DecodeBmp",
    "DecodeAndCropJpeg",
    "ExtractJpegShape",
];

/// `image_decode` target: byte 0 picks the op (`IMAGE_OPS`), byte 1 the flags (channels
/// 0/1/3/4, dtype uint8/uint16/float32, expand_animations, ratio 1/2/4/8,
/// try_recover_truncated, fancy_upscaling off, INTEGER_ACCURATE; bit 7 turns DecodeBmp into
/// DecodeWebP), the rest is the encoded image (JPEG, PNG, GIF, BMP, WebP or junk; every
/// decode op decodes WebP, as in TF).
/// The op is built through the registry and evaluated under [`limits`]; returns the output
/// element count.
pub fn image_decode(data: &[u8]) -> Result<usize, OpError> {
    let (Some(&which), Some(&flags)) = (data.first(), data.get(1)) else {
        return Ok(0);
    };
    let mut op = IMAGE_OPS[usize::from(which) % IMAGE_OPS.len()];
    if op == "DecodeBmp" && flags & 0x80 != 0 {
        op = "DecodeWebP";
    }
    let image = Tensor::scalar(Bytes::copy_from_slice(&data[2..]));
    let channels = [0i64, 1, 3, 4][usize::from(flags & 3)];
    let mut attrs: Vec<(&str, attr_value::Value)> = Vec::new();
    let mut inputs = vec![image];
    match op {
        "DecodeImage" | "DecodePng" => {
            let dtype = match (op, flags >> 2 & 3) {
                (_, 1) => DType::U16,
                ("DecodeImage", 2) => DType::F32,
                _ => DType::U8,
            };
            attrs.push(("dtype", attr_value::Value::Type(dtype.to_proto())));
            attrs.push(("channels", attr_value::Value::I(channels)));
            attrs.push(("expand_animations", attr_value::Value::B(flags & 16 != 0)));
        }
        "DecodeJpeg" | "DecodeAndCropJpeg" => {
            attrs.push(("channels", attr_value::Value::I(channels)));
            attrs.push(("ratio", attr_value::Value::I(1 << (flags >> 2 & 3))));
            attrs.push((
                "try_recover_truncated",
                attr_value::Value::B(flags & 16 != 0),
            ));
            attrs.push(("fancy_upscaling", attr_value::Value::B(flags & 32 == 0)));
            if flags & 64 != 0 {
                attrs.push((
                    "dct_method",
                    attr_value::Value::S(b"INTEGER_ACCURATE".to_vec()),
                ));
            }
            if op == "DecodeAndCropJpeg" {
                inputs.push(Tensor::vector(vec![1i32, 2, 3, 4]));
            }
        }
        "DecodeBmp" | "DecodeWebP" => attrs.push(("channels", attr_value::Value::I(channels))),
        _ => {}
    }
    run_op(op, attrs, inputs)
}

/// Builds `op` through the registry with `attrs` and evaluates it on `inputs` under
/// [`limits`]; returns the output element count (shared by the op-driving targets).
fn run_op(
    op: &str,
    attrs: Vec<(&str, attr_value::Value)>,
    inputs: Vec<Tensor>,
) -> Result<usize, OpError> {
    Ok(eval_op(op, attrs, inputs)?.iter().map(Tensor::len).sum())
}

/// Builds one registered op from `attrs` and runs it once on `inputs` under the default
/// [`crate::ops::Limits`], outside any graph: for fuzz targets and for tests that check an op
/// against TF on raw model buffers.
pub fn eval_op(
    op: &str,
    attrs: Vec<(&str, attr_value::Value)>,
    inputs: Vec<Tensor>,
) -> Result<Vec<Tensor>, OpError> {
    let attrs: BTreeMap<String, AttrValue> = attrs
        .into_iter()
        .map(|(k, v)| (k.to_string(), AttrValue { value: Some(v) }))
        .collect();
    let build = registry()
        .get(op)
        .ok_or_else(|| OpError::Unimplemented(format!("{op} is not registered")))?;
    let mut fns = NoFunctions;
    let mut cx = BuildCtx {
        node: "fuzz",
        op,
        attrs: &attrs,
        num_inputs: inputs.len(),
        scope: "",
        max_const_elements: limits().max_const_elements,
        functions: &mut fns,
    };
    let built = build(&mut cx)?;
    let session = Session::new(PathBuf::from("."), None, limits());
    built
        .eval(&mut EvalCtx::new(&session), inputs.into())
        .map(crate::ops::Tensors::into_vec)
}

/// The signature the `serve_*` targets decode against: one input of each kind a request
/// can carry (strings, with a `_bytes` alias; floats of fixed inner shape; int64 of unknown
/// shape; bool of unknown rank).
#[cfg(feature = "serve")]
fn serve_specs() -> Vec<crate::api::TensorSpec> {
    let spec = |key: &str, dtype, shape: Option<Vec<i64>>| crate::api::TensorSpec {
        key: key.to_string(),
        tensor: format!("serving_default_{key}:0"),
        dtype,
        shape,
    };
    vec![
        spec("sentences", DType::String, Some(vec![-1])),
        spec("image_bytes", DType::String, Some(vec![-1])),
        spec("image", DType::F32, Some(vec![-1, 2, 2, 3])),
        spec("ids", DType::I64, Some(vec![-1, -1])),
        spec("mask", DType::Bool, None),
    ]
}

#[cfg(feature = "serve")]
fn serve_limits() -> crate::serve::tfjson::DecodeLimits {
    crate::serve::tfjson::DecodeLimits {
        max_elements: 1 << 20,
    }
}

/// Writes decoded request tensors back the way replies are written (row and columnar JSON,
/// and TensorProtos), so the encoders see every tensor a decoder can produce.
#[cfg(feature = "serve")]
fn serve_echo(tensors: Vec<(String, Tensor)>) -> Result<usize, crate::serve::status::Status> {
    use crate::serve::tfjson::{encode_outputs, Format};
    let n = tensors.len();
    let map: BTreeMap<String, Tensor> = tensors.into_iter().collect();
    if !map.is_empty() {
        for format in [Format::Row, Format::Columnar] {
            // Row format refuses outputs of differing batch sizes: an answer, not a bug.
            let _ = std::hint::black_box(encode_outputs(&map, format));
        }
        for t in map.values() {
            std::hint::black_box(crate::serve::decode::to_proto(t)?);
        }
    }
    Ok(n)
}

/// A REST `:predict` body (TF Serving's row or columnar JSON) → the tensors the server
/// would feed to a signature with the inputs of [`serve_specs`] → written back as replies.
#[cfg(feature = "serve")]
pub fn serve_rest_predict(data: &[u8]) -> Result<usize, crate::serve::status::Status> {
    let t = crate::serve::decode::rest_predict(data, &serve_specs(), serve_limits())?;
    serve_echo(t)
}

/// A KServe v2 `infer` body, as [`serve_rest_predict`].
#[cfg(feature = "serve")]
pub fn serve_v2_infer(data: &[u8]) -> Result<usize, crate::serve::status::Status> {
    let t = crate::serve::decode::v2_infer(data, &serve_specs(), serve_limits())?;
    serve_echo(t)
}

/// A gRPC `Predict` body (length-prefixed `PredictRequest`), as [`serve_rest_predict`].
#[cfg(feature = "serve")]
pub fn serve_grpc_predict(data: &[u8]) -> Result<usize, crate::serve::status::Status> {
    let t = crate::serve::decode::grpc_predict(data, serve_limits())?;
    serve_echo(t)
}

/// tensorflow_text's flatbuffer model ops on a fuzzed model buffer: the whole input is the
/// model, run as `FastWordpieceTokenizeWithOffsets`, `TFText>FastWordpieceDetokenize`,
/// `FastBertNormalize` (get_offsets), `TFText>FastSentencepieceTokenize` (bos, eos, reverse)
/// and `TFText>FastSentencepieceDetokenize` on fixed text and ids. Returns the number of
/// output elements.
pub fn text_models(data: &[u8]) -> Result<usize, OpError> {
    let model = || Tensor::vector(data.to_vec());
    let text = || {
        Tensor::from_strings(
            &[4],
            [
                &b"Hello, unaffable world! ##ing"[..],
                b"",
                b"caf\xc3\xa9 \xff\xe4\xb8\xad\xe6\x96\x87 a.b",
                b"   ",
            ],
        )
        .expect("static strings")
    };
    let mut n = 0;
    let mut first_err = None;
    for r in [
        run_op(
            "FastWordpieceTokenizeWithOffsets",
            vec![],
            vec![text(), model()],
        ),
        run_op(
            "TFText>FastWordpieceDetokenize",
            vec![],
            vec![
                Tensor::vector(vec![0i32, 1, 2, 5, 3]),
                Tensor::vector(vec![0i64, 2, 5]),
                model(),
            ],
        ),
        run_op(
            "FastBertNormalize",
            vec![("get_offsets", attr_value::Value::B(true))],
            vec![text(), model()],
        ),
        run_op(
            "TFText>FastSentencepieceTokenize",
            vec![],
            vec![
                model(),
                text(),
                Tensor::scalar(0i32),
                Tensor::scalar(0f32),
                Tensor::scalar(true),
                Tensor::scalar(true),
                Tensor::scalar(true),
            ],
        ),
        run_op(
            "TFText>FastSentencepieceDetokenize",
            vec![],
            vec![
                model(),
                Tensor::vector(vec![0i32, 1, 2, 5, 3, 7, 4]),
                Tensor::vector(vec![0i64, 2, 7]),
            ],
        ),
    ] {
        match r {
            Ok(k) => n += k,
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    match first_err {
        Some(e) if n == 0 => Err(e),
        _ => Ok(n),
    }
}

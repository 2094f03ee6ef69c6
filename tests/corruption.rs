//! Corrupt checkpoints made from real TF-written fixtures: a shard from another model, an
//! index entry past the end of its shard, a truncated shard, an empty index, a bad block
//! checksum in the index table. Each must be a typed `CheckpointError` naming the file the bad
//! bytes are in (tests/saved_model.rs covers a flipped data byte, a truncated index, a bad
//! magic and a missing shard; src/saved_model/checkpoint/tests.rs the synthetic cases).
mod common;

use std::path::{Path, PathBuf};

use common::{chain, copy_dir, fixture};
use prost::Message;
use tfhub::proto::{tensor_shape_proto, BundleEntryProto, BundleHeaderProto, TensorShapeProto};
use tfhub::saved_model::checkpoint::{mask, BundleReader, CheckpointError};
use tfhub::saved_model::checkpoint_tensor;

const SHARD: &str = "variables.data-00000-of-00001";

fn model(name: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    copy_dir(&fixture(name), tmp.path());
    tmp
}

fn prefix(dir: &Path) -> PathBuf {
    dir.join("variables/variables")
}

fn shard(dir: &Path) -> PathBuf {
    dir.join("variables").join(SHARD)
}

fn index(dir: &Path) -> PathBuf {
    dir.join("variables/variables.index")
}

/// Reads every tensor; returns `(key, error)` for the ones that failed.
fn read_errors(dir: &Path) -> Vec<(String, CheckpointError)> {
    let reader = BundleReader::open(&prefix(dir)).expect("the index itself is intact");
    let keys: Vec<String> = reader.keys().map(str::to_owned).collect();
    assert!(!keys.is_empty());
    keys.into_iter()
        .filter_map(|k| checkpoint_tensor(&reader, &k).err().map(|e| (k, e)))
        .collect()
}

/// The file an error blames, for the variants that name one.
fn blamed(e: &CheckpointError) -> Option<&Path> {
    match e {
        CheckpointError::TensorChecksum { path, .. }
        | CheckpointError::OutOfBounds { path, .. }
        | CheckpointError::SizeMismatch { path, .. }
        | CheckpointError::InvalidData { path, .. }
        | CheckpointError::BlockChecksum { path, .. }
        | CheckpointError::Truncated { path, .. }
        | CheckpointError::Corrupt { path, .. }
        | CheckpointError::BadMagic { path } => Some(path),
        _ => None,
    }
}

#[test]
fn shard_from_a_larger_model_is_a_checksum_error_naming_the_shard() {
    let tmp = model("control_flow");
    std::fs::copy(shard(&fixture("mlp")), shard(tmp.path())).expect("copy shard");
    let errors = read_errors(tmp.path());
    let n = BundleReader::open(&prefix(tmp.path())).expect("open").len();
    assert_eq!(errors.len(), n, "every tensor must fail: {errors:?}");
    for (key, e) in &errors {
        assert!(
            matches!(e, CheckpointError::TensorChecksum { .. }),
            "{key}: {e}"
        );
        assert_eq!(blamed(e), Some(shard(tmp.path()).as_path()), "{key}: {e}");
        assert!(e.to_string().contains(SHARD), "{e}");
    }
    // Loading the model restores every variable, so it fails too, naming the shard.
    let err = tfhub::load(tmp.path()).expect_err("load must fail");
    assert!(chain(&err).contains(SHARD), "{}", chain(&err));
}

#[test]
fn shard_from_a_smaller_model_is_out_of_bounds_naming_the_shard() {
    let tmp = model("mlp");
    let small = shard(&fixture("control_flow"));
    std::fs::copy(&small, shard(tmp.path())).expect("copy shard");
    let len = std::fs::metadata(&small).expect("stat").len();
    let errors = read_errors(tmp.path());
    assert!(!errors.is_empty());
    let mut out_of_bounds = 0;
    for (key, e) in &errors {
        match e {
            CheckpointError::OutOfBounds { len: got, .. } => {
                assert_eq!(*got, len, "{e}");
                out_of_bounds += 1;
            }
            CheckpointError::TensorChecksum { .. } => {}
            other => panic!("{key}: unexpected {other}"),
        }
        assert_eq!(blamed(e), Some(shard(tmp.path()).as_path()), "{key}: {e}");
    }
    assert!(out_of_bounds > 0, "{errors:?}");
}

#[test]
fn truncated_shard_is_out_of_bounds_naming_the_shard() {
    let tmp = model("control_flow");
    let p = shard(tmp.path());
    let bytes = std::fs::read(&p).expect("read shard");
    let cut = bytes.len() / 2;
    std::fs::write(&p, &bytes[..cut]).expect("truncate");
    let errors = read_errors(tmp.path());
    assert!(!errors.is_empty());
    for (key, e) in &errors {
        assert!(
            matches!(e, CheckpointError::OutOfBounds { len, .. } if *len == cut as u64),
            "{key}: {e}"
        );
        assert!(e.to_string().contains(SHARD), "{e}");
    }
}

#[test]
fn empty_index_is_truncated_naming_the_index() {
    let tmp = model("control_flow");
    std::fs::write(index(tmp.path()), b"").expect("empty index");
    let err = BundleReader::open(&prefix(tmp.path())).expect_err("open must fail");
    assert!(
        matches!(&err, CheckpointError::Truncated { path, len: 0, .. } if path == &index(tmp.path())),
        "{err}"
    );
    let err = tfhub::load(tmp.path()).expect_err("load must fail");
    assert!(chain(&err).contains("variables.index"), "{}", chain(&err));
}

#[test]
fn bad_block_checksum_in_the_index_names_the_index_and_offset() {
    let tmp = model("control_flow");
    let p = index(tmp.path());
    let mut bytes = std::fs::read(&p).expect("read index");
    // The first data block starts at offset 0 (the header entry's key and value).
    bytes[3] ^= 0x10;
    std::fs::write(&p, bytes).expect("write index");
    let err = BundleReader::open(&prefix(tmp.path())).expect_err("open must fail");
    assert!(
        matches!(&err, CheckpointError::BlockChecksum { path, offset: 0 } if path == &p),
        "{err}"
    );
}

#[test]
fn entry_past_the_end_of_its_shard_is_out_of_bounds() {
    let tmp = model("control_flow");
    let shard_len = std::fs::metadata(shard(tmp.path())).expect("stat").len();
    // Rewriting the index unchanged must give a readable checkpoint: the writer below is sound.
    rewrite_index(tmp.path(), |_, _| {});
    assert!(read_errors(tmp.path()).is_empty());

    let mut moved = String::new();
    rewrite_index(tmp.path(), |key, e| {
        if moved.is_empty() && e.size > 0 {
            moved = key.to_owned();
            e.offset = shard_len as i64 - e.size + 1;
        }
    });
    let errors = read_errors(tmp.path());
    let [(key, e)] = errors.as_slice() else {
        panic!("exactly the moved entry must fail: {errors:?}");
    };
    assert_eq!(key, &moved);
    assert!(
        matches!(e, CheckpointError::OutOfBounds { len, .. } if *len == shard_len),
        "{e}"
    );
    assert_eq!(blamed(e), Some(shard(tmp.path()).as_path()), "{e}");
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// An uncompressed table block (every entry a restart point) plus its trailer.
fn block(out: &mut Vec<u8>, entries: &[(Vec<u8>, Vec<u8>)]) -> (u64, u64) {
    let offset = out.len() as u64;
    let mut b = Vec::new();
    let mut restarts = Vec::new();
    for (k, v) in entries {
        restarts.push(b.len() as u32);
        put_varint(&mut b, 0);
        put_varint(&mut b, k.len() as u64);
        put_varint(&mut b, v.len() as u64);
        b.extend_from_slice(k);
        b.extend_from_slice(v);
    }
    if restarts.is_empty() {
        restarts.push(0);
    }
    for r in &restarts {
        b.extend_from_slice(&r.to_le_bytes());
    }
    b.extend_from_slice(&(restarts.len() as u32).to_le_bytes());
    let size = b.len() as u64;
    let crc = crc32c::crc32c_append(crc32c::crc32c(&b), &[0]);
    out.extend_from_slice(&b);
    out.push(0);
    out.extend_from_slice(&mask(crc).to_le_bytes());
    (offset, size)
}

/// Rewrites `variables.index` from what the reader parsed, after `edit` on each entry: one
/// data block, an index block, an empty metaindex block and the footer (TF's table format).
fn rewrite_index(dir: &Path, mut edit: impl FnMut(&str, &mut BundleEntryProto)) {
    let reader = BundleReader::open(&prefix(dir)).expect("open");
    let header = BundleHeaderProto {
        num_shards: reader.num_shards() as i32,
        ..Default::default()
    };
    let mut rows = vec![(Vec::new(), header.encode_to_vec())];
    for (key, e) in reader.iter() {
        assert!(!e.is_sliced(), "fixture has no partitioned variables");
        let mut proto = BundleEntryProto {
            dtype: e.dtype_code(),
            shape: Some(TensorShapeProto {
                dim: e
                    .shape()
                    .iter()
                    .map(|&size| tensor_shape_proto::Dim {
                        size,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
            shard_id: e.shard_id() as i32,
            offset: e.offset() as i64,
            size: e.size() as i64,
            crc32c: e.crc32c(),
            ..Default::default()
        };
        edit(key, &mut proto);
        rows.push((key.as_bytes().to_vec(), proto.encode_to_vec()));
    }
    drop(reader);
    let mut file = Vec::new();
    let data = block(&mut file, &rows);
    let meta = block(&mut file, &[]);
    let mut handle = Vec::new();
    put_varint(&mut handle, data.0);
    put_varint(&mut handle, data.1);
    let last = rows.last().map(|r| r.0.clone()).unwrap_or_default();
    let idx = block(&mut file, &[(last, handle)]);
    let mut footer = Vec::new();
    for v in [meta.0, meta.1, idx.0, idx.1] {
        put_varint(&mut footer, v);
    }
    footer.resize(40, 0);
    footer.extend_from_slice(&0x8b80_fb57u32.to_le_bytes());
    footer.extend_from_slice(&0xdb47_7524u32.to_le_bytes());
    file.extend_from_slice(&footer);
    std::fs::write(index(dir), file).expect("write index");
}

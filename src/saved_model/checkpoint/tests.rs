//! Unit tests: a tiny test-only table and bundle writer produces fixtures, then every
//! corruption the reader must name is injected. Real TF checkpoints under `tests/fixtures/`
//! are checked last, when present.

use std::path::{Path, PathBuf};

use prost::Message;

use super::bundle::{decode_strings, parse_index, BundleReader};
use super::slice::{self, Extent};
use super::table::{self, for_each_entry, varint32, varint64, TABLE_MAGIC};
use super::{mask, unmask, CheckpointError, TensorBytes};
use crate::proto::bundle_header_proto::Endianness;
use crate::proto::{
    tensor_shape_proto, tensor_slice_proto, BundleEntryProto, BundleHeaderProto, DataType,
    TensorShapeProto, TensorSliceProto, VersionDef,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;
/// Index rows: key and entry, in table order.
type Rows = Vec<(Vec<u8>, BundleEntryProto)>;
type KeyValue = (Vec<u8>, Vec<u8>);
/// Slices as `(start, length)` per dimension; `None` length means the whole dimension.
type Slices<'a> = &'a [&'a [(i64, Option<i64>)]];

// ---------------------------------------------------------------- test-only writers

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum BlockKind {
    Data,
    Meta,
    Index,
}

/// Rewrites a block's bytes before its trailer (and checksum) is written.
type Mangle<'a> = &'a dyn Fn(BlockKind, &mut Vec<u8>);

struct TableOpts<'a> {
    block_size: usize,
    restart_interval: usize,
    snappy: bool,
    mangle: Mangle<'a>,
}

impl Default for TableOpts<'_> {
    fn default() -> Self {
        TableOpts {
            block_size: 4096,
            restart_interval: 16,
            snappy: false,
            mangle: &|_, _| {},
        }
    }
}

/// LevelDB block builder (core/lib/io/block_builder.cc), without its size checks.
struct BlockBuilder {
    buf: Vec<u8>,
    restarts: Vec<u32>,
    counter: usize,
    last_key: Vec<u8>,
    interval: usize,
}

impl BlockBuilder {
    fn new(interval: usize) -> Self {
        BlockBuilder {
            buf: vec![],
            restarts: vec![0],
            counter: 0,
            last_key: vec![],
            interval,
        }
    }

    fn add(&mut self, key: &[u8], value: &[u8]) {
        let mut shared = 0;
        if self.counter < self.interval {
            shared = key
                .iter()
                .zip(&self.last_key)
                .take_while(|(a, b)| a == b)
                .count();
        } else {
            self.restarts.push(self.buf.len() as u32);
            self.counter = 0;
        }
        put_varint(&mut self.buf, shared as u64);
        put_varint(&mut self.buf, (key.len() - shared) as u64);
        put_varint(&mut self.buf, value.len() as u64);
        self.buf.extend_from_slice(&key[shared..]);
        self.buf.extend_from_slice(value);
        self.last_key = key.to_vec();
        self.counter += 1;
    }

    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn finish(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.buf);
        for r in &self.restarts {
            out.extend_from_slice(&r.to_le_bytes());
        }
        out.extend_from_slice(&(self.restarts.len() as u32).to_le_bytes());
        *self = BlockBuilder::new(self.interval);
        out
    }
}

fn write_block(out: &mut Vec<u8>, raw: Vec<u8>, kind: BlockKind, opts: &TableOpts) -> Vec<u8> {
    let (mut block, ty) = if opts.snappy {
        (
            snap::raw::Encoder::new()
                .compress_vec(&raw)
                .expect("snappy compress"),
            1u8,
        )
    } else {
        (raw, 0u8)
    };
    (opts.mangle)(kind, &mut block);
    let mut handle = vec![];
    put_varint(&mut handle, out.len() as u64);
    put_varint(&mut handle, block.len() as u64);
    let crc = mask(crc32c::crc32c_append(crc32c::crc32c(&block), &[ty]));
    out.extend_from_slice(&block);
    out.push(ty);
    out.extend_from_slice(&crc.to_le_bytes());
    handle
}

/// Writes `entries` in the given order (callers sort them, except to test sorting).
fn build_table(entries: &[(Vec<u8>, Vec<u8>)], opts: &TableOpts) -> Vec<u8> {
    let mut out = vec![];
    let mut data = BlockBuilder::new(opts.restart_interval);
    let mut index = BlockBuilder::new(1);
    for (i, (key, value)) in entries.iter().enumerate() {
        data.add(key, value);
        if data.buf.len() >= opts.block_size || i + 1 == entries.len() {
            let handle = write_block(&mut out, data.finish(), BlockKind::Data, opts);
            index.add(key, &handle);
        }
    }
    assert!(data.is_empty());
    let meta = write_block(
        &mut out,
        BlockBuilder::new(16).finish(),
        BlockKind::Meta,
        opts,
    );
    let index = write_block(&mut out, index.finish(), BlockKind::Index, opts);
    let mut footer = [meta, index].concat();
    footer.resize(40, 0);
    footer.extend_from_slice(&(TABLE_MAGIC as u32).to_le_bytes());
    footer.extend_from_slice(&((TABLE_MAGIC >> 32) as u32).to_le_bytes());
    out.extend_from_slice(&footer);
    out
}

fn header(num_shards: i32) -> BundleHeaderProto {
    BundleHeaderProto {
        num_shards,
        endianness: Endianness::Little as i32,
        version: Some(VersionDef {
            producer: 1,
            ..Default::default()
        }),
    }
}

fn shape_proto(shape: &[i64]) -> TensorShapeProto {
    TensorShapeProto {
        dim: shape
            .iter()
            .map(|&size| tensor_shape_proto::Dim {
                size,
                name: String::new(),
            })
            .collect(),
        unknown_rank: false,
    }
}

/// A tensor to write: bytes already in bundle layout plus their masked crc.
struct T {
    key: String,
    dtype: DataType,
    shape: Vec<i64>,
    bytes: Vec<u8>,
    crc: u32,
    shard: usize,
}

fn pod(key: &str, dtype: DataType, shape: &[i64], bytes: Vec<u8>) -> T {
    let crc = mask(crc32c::crc32c(&bytes));
    T {
        key: key.into(),
        dtype,
        shape: shape.to_vec(),
        bytes,
        crc,
        shard: 0,
    }
}

/// Encodes strings the way `WriteStringTensor` does.
fn strings(key: &str, shape: &[i64], values: &[&[u8]]) -> T {
    let mut bytes = vec![];
    let mut crc = 0;
    for v in values {
        put_varint(&mut bytes, v.len() as u64);
        crc = crc32c::crc32c_append(crc, &(v.len() as u32).to_le_bytes());
    }
    let length_crc = mask(crc).to_le_bytes();
    bytes.extend_from_slice(&length_crc);
    crc = crc32c::crc32c_append(crc, &length_crc);
    for v in values {
        bytes.extend_from_slice(v);
        crc = crc32c::crc32c_append(crc, v);
    }
    T {
        key: key.into(),
        dtype: DataType::DtString,
        shape: shape.to_vec(),
        bytes,
        crc: mask(crc),
        shard: 0,
    }
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Lays tensors out in shards (with 3 bytes of padding between them, as `data_alignment`
/// may leave) and returns the sorted `(key, entry)` list plus shard contents.
fn layout(tensors: &[T], num_shards: usize) -> (Rows, Vec<Vec<u8>>) {
    let mut shards = vec![vec![]; num_shards];
    let mut entries = vec![];
    for t in tensors {
        let shard = &mut shards[t.shard];
        shard.extend_from_slice(&[0, 0, 0]);
        let entry = BundleEntryProto {
            dtype: t.dtype as i32,
            shape: Some(shape_proto(&t.shape)),
            shard_id: t.shard as i32,
            offset: shard.len() as i64,
            size: t.bytes.len() as i64,
            crc32c: t.crc,
            slices: vec![],
        };
        shard.extend_from_slice(&t.bytes);
        entries.push((t.key.clone().into_bytes(), entry));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    (entries, shards)
}

fn index_bytes(header: &BundleHeaderProto, entries: &[(Vec<u8>, BundleEntryProto)]) -> Vec<u8> {
    index_bytes_with(header, entries, &TableOpts::default())
}

fn index_bytes_with(
    header: &BundleHeaderProto,
    entries: &[(Vec<u8>, BundleEntryProto)],
    opts: &TableOpts,
) -> Vec<u8> {
    let mut rows = vec![(vec![], header.encode_to_vec())];
    rows.extend(entries.iter().map(|(k, e)| (k.clone(), e.encode_to_vec())));
    build_table(&rows, opts)
}

fn write_files(dir: &Path, index: &[u8], shards: &[Vec<u8>]) -> PathBuf {
    let prefix = dir.join("variables");
    std::fs::write(dir.join("variables.index"), index).expect("write index");
    for (i, shard) in shards.iter().enumerate() {
        let name = format!("variables.data-{i:05}-of-{:05}", shards.len());
        std::fs::write(dir.join(name), shard).expect("write shard");
    }
    prefix
}

/// Writes a complete, valid bundle and returns its prefix.
fn write_bundle(dir: &Path, tensors: &[T], num_shards: usize) -> PathBuf {
    let (entries, shards) = layout(tensors, num_shards);
    write_files(
        dir,
        &index_bytes(&header(num_shards as i32), &entries),
        &shards,
    )
}

fn sample_tensors() -> Vec<T> {
    let mut t = vec![
        pod(
            "dense/kernel",
            DataType::DtFloat,
            &[2, 3],
            f32_bytes(&[1., 2., 3., 4., 5., 6.]),
        ),
        pod(
            "dense/bias",
            DataType::DtFloat,
            &[3],
            f32_bytes(&[0.5, -0.5, 0.]),
        ),
        pod(
            "step",
            DataType::DtInt64,
            &[],
            (-7i64).to_le_bytes().to_vec(),
        ),
        pod("mask", DataType::DtBool, &[4], vec![1, 0, 0, 1]),
        pod(
            "bf",
            DataType::DtBfloat16,
            &[2],
            vec![0x80, 0x3f, 0x00, 0xc0],
        ),
        pod(
            "h",
            DataType::DtHalf,
            &[1],
            half::f16::from_f32(1.5).to_le_bytes().to_vec(),
        ),
        pod("empty", DataType::DtFloat, &[0, 4], vec![]),
        pod("u8", DataType::DtUint8, &[], vec![200]),
        strings(
            "vocab",
            &[2, 2],
            &[b"alpha", b"", "\u{fc}n\u{ef}".as_bytes(), &[b'x'; 300]],
        ),
        strings("scalar_str", &[], &[b"graph bytes"]),
        strings("no_strings", &[0], &[]),
    ];
    for (i, tensor) in t.iter_mut().enumerate() {
        tensor.shard = i % 2;
    }
    t
}

fn open_sample() -> (tempfile::TempDir, BundleReader) {
    let dir = tempfile::tempdir().expect("tempdir");
    let prefix = write_bundle(dir.path(), &sample_tensors(), 2);
    let reader = BundleReader::open(&prefix).expect("open sample");
    (dir, reader)
}

// ---------------------------------------------------------------- primitives

#[test]
fn mask_matches_tf() {
    // crc32c_test.cc: the standard check value, and Mask/Unmask round trips.
    assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
    for crc in [0, 1, 0xe306_9283, u32::MAX, 0x8000_0000] {
        assert_ne!(mask(crc), crc);
        assert_ne!(mask(mask(crc)), crc);
        assert_eq!(unmask(mask(crc)), crc);
        assert_eq!(unmask(unmask(mask(mask(crc)))), crc);
    }
    assert_eq!(mask(0), 0xa282_ead8);
}

#[test]
fn varints_are_bounded() {
    let mut buf = vec![];
    for v in [0, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
        buf.clear();
        put_varint(&mut buf, v);
        let mut pos = 0;
        assert_eq!(varint64(&buf, &mut pos), Some(v));
        assert_eq!(pos, buf.len());
    }
    let mut pos = 0;
    assert_eq!(varint64(&[0xff; 11], &mut pos), None, "overlong");
    assert_eq!(
        varint64(
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02],
            &mut pos
        ),
        None
    );
    assert_eq!(varint64(&[0x80, 0x80], &mut pos), None, "truncated");
    assert_eq!(varint64(&[], &mut pos), None);
    assert_eq!(
        varint32(&[0xff, 0xff, 0xff, 0xff, 0x0f], &mut pos),
        Some(u32::MAX)
    );
    assert_eq!(pos, 5);
    pos = 0;
    assert_eq!(
        varint32(&[0xff, 0xff, 0xff, 0xff, 0x10], &mut pos),
        None,
        "33 bits"
    );
    assert_eq!(pos, 0, "position unchanged on failure");
}

// ---------------------------------------------------------------- table

fn collect(file: &[u8]) -> Result<Vec<KeyValue>, CheckpointError> {
    let mut out = vec![];
    for_each_entry(Path::new("t.index"), file, |k, v| {
        out.push((k.to_vec(), v.to_vec()));
        Ok(())
    })?;
    Ok(out)
}

#[test]
fn table_round_trips_across_blocks_and_restarts() -> TestResult {
    let rows: Vec<KeyValue> = (0..1000)
        .map(|i| {
            (
                format!("layer_{:03}/kernel/{i:05}", i % 97).into_bytes(),
                vec![i as u8; i % 7],
            )
        })
        .collect();
    let mut rows = rows;
    rows.sort();
    rows.dedup_by(|a, b| a.0 == b.0);
    for snappy in [false, true] {
        for restart_interval in [1, 3, 16] {
            let opts = TableOpts {
                block_size: 256,
                restart_interval,
                snappy,
                ..Default::default()
            };
            let file = build_table(&rows, &opts);
            assert_eq!(
                collect(&file)?,
                rows,
                "snappy={snappy} interval={restart_interval}"
            );
        }
    }
    Ok(())
}

#[test]
fn table_rejects_unsorted_and_duplicate_keys() {
    for keys in [&["b", "a"][..], &["a", "a"]] {
        let rows: Vec<_> = keys
            .iter()
            .map(|k| (k.as_bytes().to_vec(), vec![]))
            .collect();
        let file = build_table(&rows, &TableOpts::default());
        assert!(
            matches!(collect(&file), Err(CheckpointError::Corrupt { .. })),
            "{keys:?}"
        );
    }
    // Sorted within each block but not across blocks.
    let rows = vec![(b"b".to_vec(), vec![]), (b"a".to_vec(), vec![])];
    let file = build_table(
        &rows,
        &TableOpts {
            block_size: 1,
            ..Default::default()
        },
    );
    assert!(matches!(
        collect(&file),
        Err(CheckpointError::Corrupt { .. })
    ));
}

#[test]
fn table_footer_and_truncation_errors() {
    let rows = vec![
        (b"a".to_vec(), b"1".to_vec()),
        (b"b".to_vec(), b"2".to_vec()),
    ];
    let file = build_table(&rows, &TableOpts::default());

    let err = collect(&file[..47]).unwrap_err();
    assert!(
        matches!(
            err,
            CheckpointError::Truncated {
                needed: 48,
                len: 47,
                ..
            }
        ),
        "{err}"
    );

    let mut bad = file.clone();
    let n = bad.len();
    bad[n - 1] ^= 0x01;
    assert!(matches!(
        collect(&bad),
        Err(CheckpointError::BadMagic { .. })
    ));

    // Blocks cut out, footer kept: handles point past the end.
    let cut = [&file[..4], &file[file.len() - 48..]].concat();
    let err = collect(&cut).unwrap_err();
    assert!(matches!(err, CheckpointError::Truncated { .. }), "{err}");

    // Every shorter prefix fails cleanly.
    for len in 0..file.len() {
        assert!(collect(&file[..len]).is_err(), "len {len}");
    }
}

#[test]
fn table_block_checksum_names_offset() {
    let rows = vec![(b"a".to_vec(), b"1".to_vec())];
    let mut file = build_table(&rows, &TableOpts::default());
    file[3] ^= 0x40;
    let err = collect(&file).unwrap_err();
    assert!(
        matches!(err, CheckpointError::BlockChecksum { offset: 0, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("t.index"), "{err}");
}

#[test]
fn table_rejects_unknown_compression_and_bad_snappy() {
    let rows = vec![(b"a".to_vec(), b"1".to_vec())];
    // A corrupt snappy stream behind a valid checksum.
    let opts = TableOpts {
        snappy: true,
        mangle: &|kind, b: &mut Vec<u8>| {
            if kind == BlockKind::Data {
                b.truncate(b.len() - 1);
            }
        },
        ..Default::default()
    };
    let err = collect(&build_table(&rows, &opts)).unwrap_err();
    assert!(matches!(err, CheckpointError::Snappy { .. }), "{err}");

    // A snappy header claiming a huge length from a few bytes.
    let opts = TableOpts {
        snappy: true,
        mangle: &|kind, b: &mut Vec<u8>| {
            if kind == BlockKind::Data {
                *b = vec![0xff, 0xff, 0xff, 0xff, 0x0f, 0x00];
            }
        },
        ..Default::default()
    };
    let err = collect(&build_table(&rows, &opts)).unwrap_err();
    assert!(matches!(err, CheckpointError::Corrupt { .. }), "{err}");

    let mut file = build_table(&rows, &TableOpts::default());
    // Data block: 1 entry (3 + 1 + 1 bytes) + restart + count = 13 bytes, then the type byte.
    file[13] = 7;
    let crc = mask(crc32c::crc32c(&file[..14]));
    file[14..18].copy_from_slice(&crc.to_le_bytes());
    let err = collect(&file).unwrap_err();
    assert!(matches!(err, CheckpointError::Corrupt { .. }), "{err}");
}

#[test]
fn blocks_reject_bad_restarts_and_entries() {
    let ok = |b: &[u8]| table::for_each_in_raw_block(b, |_, _| Ok(())).is_ok();
    let mut good = BlockBuilder::new(2);
    for k in ["aa", "ab", "ac"] {
        good.add(k.as_bytes(), b"v");
    }
    let good = good.finish();
    assert!(ok(&good));
    assert!(ok(&[0, 0, 0, 0]), "no restarts, no entries");
    assert!(ok(&[0, 0, 0, 0, 1, 0, 0, 0]), "empty block as TF writes it");
    assert!(!ok(&[]), "no restart count");
    assert!(!ok(&[9, 0, 0, 0]), "restart count too large");
    assert!(
        !ok(&[0, 1, 1, b'a', b'v', 0, 0, 0, 0]),
        "entries without restarts"
    );
    // shared > previous key length.
    assert!(!ok(&[1, 1, 1, b'a', b'v', 0, 0, 0, 0, 1, 0, 0, 0]));
    // non_shared past the restart array.
    assert!(!ok(&[0, 9, 1, b'a', b'v', 0, 0, 0, 0, 1, 0, 0, 0]));
    // Restart points at the middle of an entry.
    let mut mid = good.clone();
    let n = mid.len();
    mid[n - 8] = 1;
    assert!(!ok(&mid));
    // Restart entry with a shared prefix: restart 1 points at "ac" which has shared 1 when
    // written with interval 16; build that by hand.
    let mut b = BlockBuilder::new(16);
    b.add(b"aa", b"v");
    b.add(b"ab", b"v");
    let mut raw = b.finish();
    let n = raw.len();
    raw.truncate(n - 4);
    raw.extend_from_slice(&6u32.to_le_bytes()); // second entry starts at 6 (3 + 2 + 1)
    raw.extend_from_slice(&2u32.to_le_bytes());
    assert!(!ok(&raw));
    // Every byte flip and truncation of a valid block fails or succeeds without panicking.
    for i in 0..good.len() {
        for x in [0x01, 0x80, 0xff] {
            let mut m = good.clone();
            m[i] ^= x;
            let _ = ok(&m);
        }
        let _ = ok(&good[..i]);
    }
}

// ---------------------------------------------------------------- bundle

#[test]
fn bundle_reads_pod_tensors_zero_copy() -> TestResult {
    let (_dir, reader) = open_sample();
    assert_eq!(reader.num_shards(), 2);
    let keys: Vec<&str> = reader.keys().collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(keys, sorted);
    assert_eq!(keys.len(), sample_tensors().len());

    let e = reader.entry("dense/kernel").ok_or("missing entry")?;
    assert_eq!(e.dtype(), Some(DataType::DtFloat));
    assert_eq!(e.shape(), &[2, 3]);
    assert_eq!(e.num_elements(), Some(6));
    for _ in 0..2 {
        let TensorBytes::Pod { dtype, shape, data } = reader.read("dense/kernel")? else {
            panic!("expected pod");
        };
        assert_eq!(
            (dtype, shape.as_slice()),
            (DataType::DtFloat, &[2i64, 3][..])
        );
        assert_eq!(&*data, f32_bytes(&[1., 2., 3., 4., 5., 6.]).as_slice());
        let super::Storage::Mapped(map) = &data.storage else {
            panic!("must be mapped")
        };
        assert!(
            map.as_ptr_range().contains(&data.as_ptr()),
            "bytes must borrow the mapping"
        );
        assert!(data.is_mapped());
        // Offset 3 in the shard: misaligned for f32, so the checked cast refuses.
        assert_eq!(
            data.try_cast::<f32>().is_some(),
            (data.as_ptr() as usize).is_multiple_of(4)
        );
    }
    assert!(reader
        .entry("dense/kernel")
        .is_some_and(|e| e.verified.load(Ordering::Relaxed)));

    let t = reader.read("step")?;
    assert_eq!(t.shape(), &[] as &[i64]);
    assert!(matches!(t, TensorBytes::Pod { data, .. } if *data == (-7i64).to_le_bytes()));
    let t = reader.read("empty")?;
    assert!(matches!(&t, TensorBytes::Pod { data, .. } if data.is_empty()));
    assert_eq!(t.shape(), &[0, 4]);
    for key in ["mask", "bf", "h", "u8"] {
        assert!(
            matches!(reader.read(key)?, TensorBytes::Pod { .. }),
            "{key}"
        );
    }
    assert!(matches!(reader.read("nope"), Err(CheckpointError::NotFound { key }) if key == "nope"));
    Ok(())
}

use std::sync::atomic::Ordering;

#[test]
fn bundle_reads_strings() -> TestResult {
    let (_dir, reader) = open_sample();
    let TensorBytes::Strings { shape, values } = reader.read("vocab")? else {
        panic!("expected strings");
    };
    assert_eq!(shape, vec![2, 2]);
    let want: Vec<Vec<u8>> = vec![
        b"alpha".to_vec(),
        vec![],
        "\u{fc}n\u{ef}".into(),
        vec![b'x'; 300],
    ];
    assert_eq!(values, want);
    assert_eq!(
        reader.read("vocab")?.dtype(),
        DataType::DtString,
        "second read"
    );
    assert!(matches!(reader.read("scalar_str")?,
        TensorBytes::Strings { values, .. } if values == [b"graph bytes".to_vec()]));
    let no_strings = reader.read("no_strings")?;
    assert!(matches!(no_strings, TensorBytes::Strings { values, .. } if values.is_empty()));
    Ok(())
}

#[test]
fn string_lengths_over_u32_checksum_as_u64() {
    // Only the crc rule is exercised: the payload is absent, so decoding then fails on size.
    let len = u64::from(u32::MAX) + 1;
    let mut bytes = vec![];
    put_varint(&mut bytes, len);
    let crc = crc32c::crc32c(&len.to_le_bytes());
    bytes.extend_from_slice(&mask(crc).to_le_bytes());
    let err = decode_strings(&bytes, 1, true).expect_err("payload missing");
    assert!(
        matches!(err, super::bundle::StringError::Invalid(_)),
        "length checksum passed"
    );
}

#[test]
fn reader_is_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<BundleReader>();
    check::<TensorBytes>();
}

/// Writes a bundle with one tensor whose entry (or shard bytes) `edit` changes.
fn one_tensor(
    tensor: T,
    edit: impl FnOnce(&mut BundleEntryProto, &mut Vec<u8>),
) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut entries, mut shards) = layout(&[tensor], 1);
    edit(&mut entries[0].1, &mut shards[0]);
    let prefix = write_files(dir.path(), &index_bytes(&header(1), &entries), &shards);
    (dir, prefix)
}

fn read_one(tensor: T, edit: impl FnOnce(&mut BundleEntryProto, &mut Vec<u8>)) -> CheckpointError {
    let key = tensor.key.clone();
    let (_dir, prefix) = one_tensor(tensor, edit);
    let reader = BundleReader::open(&prefix).expect("open");
    reader.read(&key).expect_err("read must fail")
}

fn w() -> T {
    pod("w", DataType::DtFloat, &[2], f32_bytes(&[1., 2.]))
}

#[test]
fn flipped_data_byte_is_a_tensor_checksum_error() -> TestResult {
    let (_dir, prefix) = one_tensor(w(), |_, shard| shard[4] ^= 1);
    let reader = BundleReader::open(&prefix)?;
    for _ in 0..2 {
        let err = reader.read("w").unwrap_err();
        let CheckpointError::TensorChecksum {
            key,
            path,
            expected,
            got,
        } = &err
        else {
            panic!("{err}");
        };
        assert_eq!(key, "w");
        assert!(path.ends_with("variables.data-00000-of-00001"));
        assert_ne!(expected, got);
    }
    let err = read_one(strings("s", &[1], &[b"abc"]), |_, shard| {
        *shard.last_mut().unwrap() ^= 1
    });
    assert!(
        matches!(err, CheckpointError::TensorChecksum { .. }),
        "{err}"
    );
    // Corrupting the length checksum itself.
    let err = read_one(strings("s", &[1], &[b"abc"]), |_, shard| shard[4] ^= 1);
    assert!(
        matches!(err, CheckpointError::TensorChecksum { .. }),
        "{err}"
    );
    Ok(())
}

#[test]
fn out_of_bounds_and_size_errors() {
    let err = read_one(w(), |e, _| e.offset = 1 << 40);
    assert!(
        matches!(
            err,
            CheckpointError::OutOfBounds {
                offset: 1_099_511_627_776,
                ..
            }
        ),
        "{err}"
    );
    let err = read_one(w(), |e, _| e.offset = i64::MAX);
    assert!(matches!(err, CheckpointError::OutOfBounds { .. }), "{err}");
    let err = read_one(w(), |e, _| e.offset += 1);
    assert!(
        matches!(
            err,
            CheckpointError::OutOfBounds {
                offset: 4,
                size: 8,
                len: 11,
                ..
            }
        ),
        "{err}"
    );
    let err = read_one(w(), |e, _| e.size += 1);
    assert!(
        matches!(
            err,
            CheckpointError::SizeMismatch {
                expected: 8,
                got: 9,
                ..
            }
        ),
        "{err}"
    );
    let err = read_one(w(), |e, _| e.size -= 1);
    assert!(
        matches!(
            err,
            CheckpointError::SizeMismatch {
                expected: 8,
                got: 7,
                ..
            }
        ),
        "{err}"
    );
    let err = read_one(w(), |e, _| e.shape = Some(shape_proto(&[i64::MAX, 4])));
    assert!(
        matches!(
            err,
            CheckpointError::SizeMismatch { .. } | CheckpointError::InvalidEntry { .. }
        ),
        "{err}"
    );
    let err = read_one(pod("b", DataType::DtBool, &[2], vec![1, 2]), |_, _| {});
    assert!(matches!(err, CheckpointError::InvalidData { .. }), "{err}");
}

#[test]
fn bad_string_data_errors() {
    // A length varint that never ends.
    let bad = T {
        bytes: vec![0xff; 16],
        crc: 0,
        ..strings("s", &[1], &[b"x"])
    };
    let err = read_one(bad, |_, _| {});
    assert!(
        matches!(&err, CheckpointError::InvalidData { key, .. } if key == "s"),
        "{err}"
    );
    // More elements than bytes.
    let err = read_one(strings("s", &[1], &[b"x"]), |e, _| {
        e.shape = Some(shape_proto(&[1000]))
    });
    assert!(matches!(err, CheckpointError::InvalidData { .. }), "{err}");
    // Lengths that disagree with the entry size.
    let err = read_one(strings("s", &[2], &[b"x", b"yy"]), |e, _| e.size -= 1);
    assert!(matches!(err, CheckpointError::InvalidData { .. }), "{err}");
    for i in 0..16 {
        for x in [1u8, 0x80] {
            let mut t = strings("s", &[3], &[b"ab", b"", b"cde"]);
            if i < t.bytes.len() {
                t.bytes[i] ^= x;
                let _ = decode_strings(&t.bytes, 3, true);
                let _ = decode_strings(&t.bytes, 3, false);
            }
        }
    }
}

#[test]
fn unsupported_entries_name_key_and_what() {
    let variant = T {
        dtype: DataType::DtVariant,
        ..pod("v", DataType::DtVariant, &[], vec![])
    };
    let err = read_one(variant, |_, _| {});
    assert!(
        matches!(&err, CheckpointError::Unsupported { key, what }
        if key == "v" && what.contains("DT_VARIANT")),
        "{err}"
    );
    let err = read_one(w(), |e, _| e.dtype = 99);
    assert!(
        matches!(&err, CheckpointError::Unsupported { what, .. } if what.contains("99")),
        "{err}"
    );
    let err = read_one(strings("s", &[1], &[b"x"]), |e, _| {
        e.slices = vec![full_slice(1)]
    });
    assert!(
        matches!(&err, CheckpointError::Unsupported { key, what }
        if key == "s" && what.contains("partitioned")),
        "{err}"
    );
}

fn open_err(header: BundleHeaderProto, entries: &[(Vec<u8>, BundleEntryProto)]) -> CheckpointError {
    parse_index(Path::new("x.index"), &index_bytes(&header, entries)).expect_err("must fail")
}

#[test]
fn header_and_entry_validation() {
    let (entries, _) = layout(&[w()], 1);
    let mut h = header(1);
    h.endianness = Endianness::Big as i32;
    assert!(matches!(
        open_err(h, &entries),
        CheckpointError::Header { .. }
    ));
    assert!(matches!(
        open_err(header(0), &entries),
        CheckpointError::Header { .. }
    ));
    assert!(matches!(
        open_err(header(-3), &entries),
        CheckpointError::Header { .. }
    ));
    let mut h = header(1);
    h.version = Some(VersionDef {
        producer: 1,
        min_consumer: 2,
        bad_consumers: vec![],
    });
    assert!(matches!(
        open_err(h, &entries),
        CheckpointError::Header { .. }
    ));
    let mut h = header(1);
    h.version = Some(VersionDef {
        producer: 1,
        min_consumer: 0,
        bad_consumers: vec![1],
    });
    assert!(matches!(
        open_err(h, &entries),
        CheckpointError::Header { .. }
    ));

    // No header: the first key is not empty.
    let rows: Vec<_> = entries
        .iter()
        .map(|(k, e)| (k.clone(), e.encode_to_vec()))
        .collect();
    let err = parse_index(
        Path::new("x.index"),
        &build_table(&rows, &TableOpts::default()),
    );
    assert!(matches!(err, Err(CheckpointError::Header { .. })));
    let err = parse_index(
        Path::new("x.index"),
        &build_table(&[], &TableOpts::default()),
    );
    assert!(
        matches!(err, Err(CheckpointError::Header { .. })),
        "empty table"
    );

    let bad_entry = |edit: &dyn Fn(&mut BundleEntryProto)| {
        let mut entries = entries.clone();
        edit(&mut entries[0].1);
        open_err(header(1), &entries)
    };
    let invalid =
        |e: CheckpointError| matches!(&e, CheckpointError::InvalidEntry { key, .. } if key == "w");
    assert!(invalid(bad_entry(&|e| e.shard_id = 1)));
    assert!(invalid(bad_entry(&|e| e.shard_id = -1)));
    assert!(invalid(bad_entry(&|e| e.offset = -1)));
    assert!(invalid(bad_entry(&|e| e.size = -1)));
    assert!(invalid(bad_entry(&|e| e.shape = Some(shape_proto(&[-1])))));
    assert!(invalid(bad_entry(&|e| e
        .shape
        .as_mut()
        .unwrap()
        .unknown_rank = true)));

    let mut rows = vec![
        (vec![], header(1).encode_to_vec()),
        (b"w".to_vec(), vec![0xff]),
    ];
    let err = parse_index(
        Path::new("x.index"),
        &build_table(&rows, &TableOpts::default()),
    );
    assert!(matches!(err, Err(CheckpointError::Decode { key, .. }) if key == "w"));
    rows[1] = (vec![b'w', 0xff], entries[0].1.encode_to_vec());
    let err = parse_index(
        Path::new("x.index"),
        &build_table(&rows, &TableOpts::default()),
    );
    assert!(
        matches!(err, Err(CheckpointError::Corrupt { .. })),
        "non-UTF-8 key"
    );
}

#[test]
fn missing_shard_and_index_name_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let prefix = write_bundle(dir.path(), &sample_tensors(), 2);
    std::fs::remove_file(dir.path().join("variables.data-00001-of-00002")).expect("rm");
    let err = BundleReader::open(&prefix).unwrap_err();
    assert!(
        matches!(&err, CheckpointError::MissingShard { path }
        if path.ends_with("variables.data-00001-of-00002")),
        "{err}"
    );
    let err = BundleReader::open(&dir.path().join("nope")).unwrap_err();
    assert!(
        matches!(&err, CheckpointError::Io { path, .. } if path.ends_with("nope.index")),
        "{err}"
    );
}

#[test]
fn empty_shard_maps() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut t = sample_tensors();
    t.iter_mut().for_each(|t| t.shard = 0);
    let prefix = write_bundle(dir.path(), &t, 3);
    let reader = BundleReader::open(&prefix)?;
    assert_eq!(reader.num_shards(), 3);
    Ok(())
}

#[test]
fn snappy_index_opens() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut tensors = sample_tensors();
    tensors.iter_mut().for_each(|t| t.shard = 0);
    let (entries, shards) = layout(&tensors, 1);
    let opts = TableOpts {
        snappy: true,
        block_size: 64,
        restart_interval: 2,
        ..Default::default()
    };
    let prefix = write_files(
        dir.path(),
        &index_bytes_with(&header(1), &entries, &opts),
        &shards,
    );
    let reader = BundleReader::open(&prefix)?;
    for key in reader.keys() {
        reader.read(key)?;
    }
    Ok(())
}

#[test]
fn hostile_index_bytes_never_panic() {
    let (entries, _) = layout(&sample_tensors(), 2);
    let index = index_bytes(&header(2), &entries);
    for i in 0..index.len() {
        let mut m = index.clone();
        m[i] ^= 0x55;
        let _ = parse_index(Path::new("x.index"), &m);
    }
    // Mutations behind valid block checksums reach the block and proto parsers.
    for kind in [BlockKind::Data, BlockKind::Index, BlockKind::Meta] {
        for i in 0..64 {
            for x in [0x01u8, 0x80, 0xff] {
                let mangle = move |k: BlockKind, b: &mut Vec<u8>| {
                    if k == kind && i < b.len() {
                        b[i] ^= x;
                    }
                };
                let opts = TableOpts {
                    restart_interval: 2,
                    mangle: &mangle,
                    ..Default::default()
                };
                let _ = parse_index(
                    Path::new("x.index"),
                    &index_bytes_with(&header(2), &entries, &opts),
                );
            }
        }
    }
}

/// Opening a large index stays fast (run with `--ignored --nocapture` to see the time).
#[test]
#[ignore = "timing"]
fn open_one_million_keys() {
    let entry = BundleEntryProto {
        dtype: DataType::DtFloat as i32,
        shape: Some(shape_proto(&[4])),
        size: 16,
        crc32c: 1,
        ..Default::default()
    };
    let entries: Vec<_> = (0..1_000_000)
        .map(|i| {
            (
                format!("model/layer_{i:07}/.ATTRIBUTES/VARIABLE_VALUE").into_bytes(),
                entry.clone(),
            )
        })
        .collect();
    let index = index_bytes_with(
        &header(1),
        &entries,
        &TableOpts {
            block_size: 256 << 10,
            ..Default::default()
        },
    );
    let start = std::time::Instant::now();
    let mut n = 0;
    for_each_entry(Path::new("x.index"), &index, |_, _| {
        n += 1;
        Ok(())
    })
    .expect("iterate");
    eprintln!("table only: {n} rows in {:?}", start.elapsed());
    let start = std::time::Instant::now();
    let parsed = parse_index(Path::new("x.index"), &index).expect("parse");
    eprintln!(
        "{} keys, {} MiB index: {:?}",
        parsed.keys.len(),
        index.len() >> 20,
        start.elapsed()
    );
}

/// The allocation-free entry decoder agrees with prost on real entries and falls back on
/// anything unusual.
#[test]
fn fast_entry_decoder_matches_prost() {
    use super::bundle::decode_entry_fast;
    let (entries, _) = layout(&sample_tensors(), 2);
    for (_, proto) in &entries {
        let bytes = proto.encode_to_vec();
        let fast = decode_entry_fast(&bytes).expect("plain entries take the fast path");
        let dims: Vec<i64> = proto
            .shape
            .as_ref()
            .map_or(vec![], |s| s.dim.iter().map(|d| d.size).collect());
        assert_eq!(fast.shape.as_slice(), dims.as_slice());
        assert_eq!(
            (fast.dtype, fast.offset, fast.size, fast.crc32c),
            (proto.dtype, proto.offset, proto.size, proto.crc32c)
        );
        assert_eq!(fast.shard_id, proto.shard_id);
    }
    let sliced = BundleEntryProto {
        slices: vec![full_slice(1)],
        ..Default::default()
    };
    assert!(decode_entry_fast(&sliced.encode_to_vec()).is_none());
    assert!(
        decode_entry_fast(&[0x0a, 0x00]).is_none(),
        "dtype with the wrong wire type"
    );
    // Unknown fields are skipped.
    let mut bytes = entries[0].1.encode_to_vec();
    bytes.extend_from_slice(&[0x48, 0x05, 0x52, 0x01, 0xaa]); // field 9 varint, field 10 bytes
    assert!(decode_entry_fast(&bytes).is_some());
}

// ---------------------------------------------------------------- partitioned variables

fn slice_proto(extents: &[(i64, Option<i64>)]) -> TensorSliceProto {
    use tensor_slice_proto::{extent::HasLength, Extent};
    TensorSliceProto {
        extent: extents
            .iter()
            .map(|&(start, len)| Extent {
                start,
                has_length: len.map(HasLength::Length),
            })
            .collect(),
    }
}

fn full_slice(rank: usize) -> TensorSliceProto {
    slice_proto(&vec![(0, None); rank])
}

#[test]
fn signed_num_increasing_matches_tf() {
    let enc = |v: i64| {
        let mut out = vec![];
        slice::write_signed_num_increasing(&mut out, v);
        out
    };
    // From the sharded fixture's slice keys and ordered_code.cc's worked examples.
    assert_eq!(enc(0), [0x80]);
    assert_eq!(enc(25), [0x99]);
    assert_eq!(enc(-1), [0x7f]);
    assert_eq!(enc(100), [0xc0, 0x64]);
    assert_eq!(enc(213), [0xc0, 0xd5]);
    assert_eq!(enc(0x424242), [0xf0, 0x42, 0x42, 0x42]);
    assert_eq!(enc(-0x800), [0x38, 0x00]);
    assert_eq!(enc(i64::MAX).len(), 10);
    assert_eq!(enc(i64::MIN).len(), 10);
    // Order is preserved bytewise across lengths and signs.
    let vals = [
        i64::MIN,
        -1 << 40,
        -8193,
        -8192,
        -65,
        -64,
        -1,
        0,
        63,
        64,
        8191,
        8192,
        1 << 55,
        i64::MAX,
    ];
    for pair in vals.windows(2) {
        assert!(enc(pair[0]) < enc(pair[1]), "{pair:?}");
    }
    let key = slice::slice_key(
        "w",
        &[
            Extent {
                start: 100,
                length: 25,
            },
            Extent {
                start: 0,
                length: 100,
            },
        ],
    );
    assert_eq!(key, b"\x00w\x00\x01\x01\x02\xc0d\x99\x80\xc0d");
}

/// Writes a `[4, 3]` f32 tensor "p" (values 0..12) as the given slices, the way
/// `BundleWriter::AddSlice` does.
fn sliced_bundle(slices: Slices<'_>, edit: impl FnOnce(&mut Rows)) -> (tempfile::TempDir, PathBuf) {
    let shape = [4i64, 3];
    let full: Vec<f32> = (0..12).map(|v| v as f32).collect();
    let mut parts = vec![];
    let mut protos = vec![];
    for (i, s) in slices.iter().enumerate() {
        let proto = slice_proto(s);
        let ext = slice::resolve(&slice::extents(&proto), &shape).expect("test slice fits");
        let mut vals = vec![];
        for r in ext[0].0..ext[0].0 + ext[0].1 {
            for c in ext[1].0..ext[1].0 + ext[1].1 {
                vals.push(full[(r * 3 + c) as usize]);
            }
        }
        let key = slice::slice_key("p", &slice::extents(&proto));
        let lengths: Vec<i64> = ext.iter().map(|e| e.1 as i64).collect();
        let mut t = pod("", DataType::DtFloat, &lengths, f32_bytes(&vals));
        t.key = String::from_utf8_lossy(&key).into_owned(); // replaced below
        t.shard = i % 2;
        parts.push((key, t));
        protos.push(proto);
    }
    let tensors: Vec<T> = parts
        .iter()
        .map(|(_, t)| T {
            key: String::new(),
            ..clone_t(t)
        })
        .collect();
    let (mut entries, shards) = layout(&tensors, 2);
    // `layout` sorted by the (all empty) placeholder keys stably; restore the real keys.
    for ((key, _), entry) in parts.iter().zip(entries.iter_mut()) {
        entry.0 = key.clone();
    }
    entries.push((
        b"p".to_vec(),
        BundleEntryProto {
            dtype: DataType::DtFloat as i32,
            shape: Some(shape_proto(&shape)),
            slices: protos,
            ..Default::default()
        },
    ));
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    edit(&mut entries);
    let dir = tempfile::tempdir().expect("tempdir");
    let prefix = write_files(dir.path(), &index_bytes(&header(2), &entries), &shards);
    (dir, prefix)
}

fn clone_t(t: &T) -> T {
    T {
        key: t.key.clone(),
        dtype: t.dtype,
        shape: t.shape.clone(),
        bytes: t.bytes.clone(),
        crc: t.crc,
        shard: t.shard,
    }
}

#[test]
fn partitioned_tensor_is_assembled() -> TestResult {
    let layouts: [Slices<'static>; 3] = [
        &[&[(0, Some(1)), (0, None)], &[(1, Some(3)), (0, Some(3))]],
        &[&[(0, None), (0, Some(2))], &[(0, None), (2, Some(1))]],
        &[
            &[(0, Some(2)), (0, Some(2))],
            &[(2, Some(2)), (0, Some(2))],
            &[(0, None), (2, Some(1))],
        ],
    ];
    for slices in layouts {
        let (_dir, prefix) = sliced_bundle(slices, |_| {});
        let reader = BundleReader::open(&prefix)?;
        assert_eq!(
            reader.keys().collect::<Vec<_>>(),
            ["p"],
            "slice keys are not tensors"
        );
        assert!(reader.entry("p").is_some_and(|e| e.is_sliced()));
        let TensorBytes::Pod { data, shape, .. } = reader.read("p")? else {
            panic!("pod")
        };
        assert_eq!(shape, [4, 3]);
        assert!(!data.is_mapped());
        let want: Vec<f32> = (0..12).map(|v| v as f32).collect();
        assert_eq!(data.try_cast::<f32>(), Some(&want[..]), "{slices:?}");
    }
    Ok(())
}

#[test]
fn partitioned_tensor_errors() {
    let read = |slices: Slices<'_>, edit: &dyn Fn(&mut Rows)| {
        let (_dir, prefix) = sliced_bundle(slices, edit);
        BundleReader::open(&prefix)
            .expect("open")
            .read("p")
            .expect_err("must fail")
    };
    let invalid =
        |e: &CheckpointError| matches!(e, CheckpointError::InvalidEntry { key, .. } if key == "p");
    // Gap: row 3 missing.
    let err = read(&[&[(0, Some(3)), (0, None)]], &|_| {});
    assert!(invalid(&err), "{err}");
    // Overlap.
    let err = read(
        &[&[(0, Some(3)), (0, None)], &[(2, Some(2)), (0, None)]],
        &|_| {},
    );
    assert!(invalid(&err), "{err}");
    // A slice listed but not stored.
    let err = read(&[&[(0, None), (0, None)]], &|entries| {
        entries.retain(|(k, _)| k.first() != Some(&0))
    });
    assert!(invalid(&err), "{err}");
    // A slice past the tensor's end.
    let err = read(&[&[(0, None), (0, None)]], &|entries| {
        let full = entries
            .iter_mut()
            .find(|(k, _)| k == b"p")
            .expect("full entry");
        full.1.slices[0] = slice_proto(&[(0, Some(5)), (0, None)]);
    });
    assert!(invalid(&err), "{err}");
    // A slice's own bytes corrupt.
    let err = read(&[&[(0, None), (0, None)]], &|entries| {
        entries
            .iter_mut()
            .find(|(k, _)| k.first() == Some(&0))
            .expect("slice")
            .1
            .crc32c ^= 1;
    });
    assert!(
        matches!(&err, CheckpointError::TensorChecksum { key, .. } if key == "p"),
        "{err}"
    );
}

// ---------------------------------------------------------------- TF-written fixtures

fn b64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let digits: Vec<u8> = s.bytes().filter(|&c| c != b'=').map(val).collect();
    let mut out = vec![];
    for chunk in digits.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &d)| n | u32::from(d) << (18 - 6 * i));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

fn dtype_name(d: DataType) -> &'static str {
    use DataType::*;
    match d {
        DtFloat => "float32",
        DtDouble => "float64",
        DtHalf => "float16",
        DtBfloat16 => "bfloat16",
        DtInt8 => "int8",
        DtInt16 => "int16",
        DtInt32 => "int32",
        DtInt64 => "int64",
        DtUint8 => "uint8",
        DtUint16 => "uint16",
        DtUint32 => "uint32",
        DtUint64 => "uint64",
        DtBool => "bool",
        DtString => "string",
        _ => "other",
    }
}

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `tests/fixtures/*/variables/` checkpoint written by TF: keys, dtypes and shapes match
/// `variables.json`; bytes match `variable_values.json`'s sha256 (or values, for strings).
/// Skipped when no fixture directory exists.
#[test]
fn tf_written_fixtures() -> TestResult {
    use sha2::Digest;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let Ok(dirs) = std::fs::read_dir(&root) else {
        eprintln!("no fixtures at {}; skipped", root.display());
        return Ok(());
    };
    let mut checked = 0;
    for dir in dirs {
        let dir = dir?.path();
        let prefix = dir.join("variables/variables");
        if !prefix.with_extension("index").exists() || !dir.join("variable_values.json").exists() {
            continue;
        }
        let reader = BundleReader::open(&prefix).map_err(|e| format!("{}: {e}", dir.display()))?;
        let vars = json(&dir.join("variables.json"));
        let vars = vars.as_object().ok_or("variables.json: not an object")?;
        let keys: Vec<&str> = reader.keys().collect();
        let want: Vec<&str> = vars.keys().map(String::as_str).collect();
        assert_eq!(keys, want, "{}", dir.display());
        for (key, info) in vars {
            let entry = reader.entry(key).ok_or("entry")?;
            let dtype = entry.dtype().map_or("unknown", dtype_name);
            assert_eq!(dtype, info["dtype"], "{key}");
            let shape: Vec<i64> = serde_json::from_value(info["shape"].clone())?;
            assert_eq!(entry.shape(), shape.as_slice(), "{key}");
            // Every tensor reads, including `_CHECKPOINTABLE_OBJECT_GRAPH`.
            reader
                .read(key)
                .map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let values = json(&dir.join("variable_values.json"));
        for (key, info) in values
            .as_object()
            .ok_or("variable_values.json: not an object")?
        {
            match reader.read(key)? {
                TensorBytes::Pod { data, .. } => {
                    let got = format!("{:x}", sha2::Sha256::digest(&*data));
                    assert_eq!(got, info["sha256"].as_str().ok_or("sha256")?, "{key}");
                }
                TensorBytes::Strings { values, .. } => {
                    let want: Vec<Vec<u8>> = info["values"]
                        .as_array()
                        .ok_or("values")?
                        .iter()
                        .map(|v| match v {
                            serde_json::Value::String(s) => s.clone().into_bytes(),
                            other => b64_decode(other["b64"].as_str().unwrap_or_default()),
                        })
                        .collect();
                    assert_eq!(values, want, "{key}");
                }
            }
            checked += 1;
        }
        if dir.ends_with("sharded") {
            assert!(reader.num_shards() >= 3);
        }
    }
    eprintln!("checked {checked} TF-written tensors");
    Ok(())
}

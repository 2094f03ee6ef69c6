use std::io::Write;
use std::path::Path;

use super::*;
use crate::ops::{Limits, Session};

fn session(dir: &Path) -> Session {
    Session::new(dir.to_path_buf(), None, Limits::default())
}

fn table(cx: &mut EvalCtx<'_>, name: &str, k: DType, v: DType, mutable: bool) -> Tensor {
    let op = TableOp {
        key: name.into(),
        key_dtype: k,
        value_dtype: v,
        mutable,
    };
    op.eval(cx, tensors![]).unwrap().remove(0)
}

fn strs(v: &[&str]) -> Tensor {
    Tensor::vector(
        v.iter()
            .map(|s| crate::tensor::Bytes::copy_from_slice(s.as_bytes()))
            .collect(),
    )
}

fn text_init(key_index: i64, value_index: i64) -> InitFromTextFile {
    InitFromTextFile {
        key_index,
        value_index,
        vocab_size: -1,
        delimiter: b'\t',
        offset: 0,
    }
}

fn path_tensor(p: &Path) -> Tensor {
    Tensor::scalar(crate::tensor::Bytes::from(p.to_string_lossy().into_owned()))
}

#[test]
fn vocab_whole_line_to_line_number() {
    let dir = tempfile::tempdir().unwrap();
    let vocab = dir.path().join("vocab.txt");
    std::fs::write(&vocab, "the\r\nof\nand").unwrap();
    let s = session(dir.path());
    let mut cx = EvalCtx::new(&s);
    let t = table(&mut cx, "t", DType::String, DType::I64, false);
    let find = |cx: &mut EvalCtx<'_>| {
        Find.eval(
            cx,
            tensors![
                t.clone(),
                strs(&["and", "the", "zzz", "of"]),
                Tensor::scalar(-1i64),
            ],
        )
    };
    assert!(find(&mut cx).is_err(), "lookup before initialization");
    assert_eq!(
        Size.eval(&mut cx, tensors![t.clone()]).unwrap()[0]
            .to_i64_vec()
            .unwrap(),
        [0]
    );
    text_init(-2, -1)
        .eval(&mut cx, tensors![t.clone(), path_tensor(&vocab)])
        .unwrap();
    assert_eq!(
        find(&mut cx).unwrap()[0].to_i64_vec().unwrap(),
        [2, 0, -1, 1]
    );
    assert_eq!(
        Size.eval(&mut cx, tensors![t.clone()]).unwrap()[0]
            .to_i64_vec()
            .unwrap(),
        [3]
    );
    // A second initialization (another load of the init op) is ignored, as in TF.
    std::fs::write(&vocab, "x\n").unwrap();
    text_init(-2, -1)
        .eval(&mut cx, tensors![t.clone(), path_tensor(&vocab)])
        .unwrap();
    assert_eq!(
        Size.eval(&mut cx, tensors![t]).unwrap()[0]
            .to_i64_vec()
            .unwrap(),
        [3]
    );
}

#[test]
fn vocab_columns_offset_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let vocab = dir.path().join("v.tsv");
    std::fs::write(&vocab, "a,7,x\nb,8,y\n").unwrap();
    let s = session(dir.path());
    let mut cx = EvalCtx::new(&s);
    // TF quirk: offset is added to parsed int32 values (and line numbers), not int64 ones.
    let init = InitFromTextFile {
        delimiter: b',',
        offset: 100,
        ..text_init(0, 1)
    };
    let t32 = table(&mut cx, "i32", DType::String, DType::I32, false);
    init.eval(&mut cx, tensors![t32.clone(), path_tensor(&vocab)])
        .unwrap();
    let out = Find
        .eval(
            &mut cx,
            tensors![t32, strs(&["b", "a"]), Tensor::scalar(0i32)],
        )
        .unwrap();
    assert_eq!(out[0].to_i64_vec().unwrap(), [108, 107]);
    let t64 = table(&mut cx, "i64", DType::String, DType::I64, false);
    init.eval(&mut cx, tensors![t64.clone(), path_tensor(&vocab)])
        .unwrap();
    let out = Find
        .eval(&mut cx, tensors![t64, strs(&["b"]), Tensor::scalar(0i64)])
        .unwrap();
    assert_eq!(out[0].to_i64_vec().unwrap(), [8]);
    // int64 keys from column 1, line number + offset as value.
    let tk = table(&mut cx, "keys", DType::I64, DType::I64, false);
    let init = InitFromTextFile {
        delimiter: b',',
        offset: 10,
        ..text_init(1, -1)
    };
    init.eval(&mut cx, tensors![tk.clone(), path_tensor(&vocab)])
        .unwrap();
    let keys = Tensor::from_vec(&[1, 2], vec![8i64, 9]).unwrap();
    let out = Find
        .eval(&mut cx, tensors![tk, keys, Tensor::scalar(-1i64)])
        .unwrap();
    assert_eq!(out[0].shape(), [1, 2]);
    assert_eq!(out[0].to_i64_vec().unwrap(), [11, -1]);

    let fails = |init: InitFromTextFile, content: &str, name: &str| {
        std::fs::write(&vocab, content).unwrap();
        let mut cx = EvalCtx::new(&s);
        let t = table(&mut cx, name, DType::String, DType::I64, false);
        init.eval(&mut cx, tensors![t, path_tensor(&vocab)])
            .is_err()
    };
    assert!(fails(text_init(-2, -1), "a\n\nb\n", "empty line"));
    assert!(fails(
        InitFromTextFile {
            vocab_size: 3,
            ..text_init(-2, -1)
        },
        "a\nb\n",
        "short"
    ));
    assert!(!fails(
        InitFromTextFile {
            vocab_size: 1,
            ..text_init(-2, -1)
        },
        "a\nb\n",
        "trunc"
    ));
    assert!(fails(text_init(0, 2), "a\tb\n", "columns"));
    assert!(fails(text_init(0, 1), "a\tx\n", "not an int"));
    assert!(fails(
        text_init(0, -1),
        "a\nb\na\n",
        "duplicate key, other value"
    ));
}

#[test]
fn vocab_path_is_confined() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(outside.path(), "secret\n").unwrap();
    let s = session(dir.path());
    let mut cx = EvalCtx::new(&s);
    let t = table(&mut cx, "t", DType::String, DType::I64, false);
    let err = text_init(-2, -1).eval(&mut cx, tensors![t.clone(), path_tensor(outside.path())]);
    assert!(matches!(err, Err(OpError::Refused(_))), "{err:?}");
    let rel = format!(
        "../{}",
        outside.path().file_name().unwrap().to_string_lossy()
    );
    let err = text_init(-2, -1).eval(&mut cx, tensors![t.clone(), path_tensor(Path::new(&rel))]);
    assert!(matches!(err, Err(OpError::Refused(_))), "{err:?}");
    // A FIFO inside the model dir is refused before it is opened (opening would block).
    let fifo = dir.path().join("fifo");
    if std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success())
    {
        let err = text_init(-2, -1).eval(&mut cx, tensors![t.clone(), path_tensor(&fifo)]);
        assert!(matches!(err, Err(OpError::Refused(_))), "{err:?}");
    }
    let err = text_init(-2, -1).eval(&mut cx, tensors![t, path_tensor(dir.path())]);
    assert!(matches!(err, Err(OpError::Refused(_))), "{err:?}");
}

#[test]
fn million_line_vocab_is_fast() {
    let dir = tempfile::tempdir().unwrap();
    let vocab = dir.path().join("big.txt");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&vocab).unwrap());
    for i in 0..1_000_000u32 {
        writeln!(f, "tok{i:07}").unwrap();
    }
    drop(f);
    let s = session(dir.path());
    let mut cx = EvalCtx::new(&s);
    let t = table(&mut cx, "big", DType::String, DType::I64, false);
    let start = std::time::Instant::now();
    text_init(-2, -1)
        .eval(&mut cx, tensors![t.clone(), path_tensor(&vocab)])
        .unwrap();
    let took = start.elapsed();
    eprintln!("1M-line vocab initialized in {took:?}");
    let out = Find.eval(
        &mut cx,
        tensors![
            t,
            strs(&["tok0999999", "tok0000000", "x"]),
            Tensor::scalar(-1i64),
        ],
    );
    assert_eq!(out.unwrap()[0].to_i64_vec().unwrap(), [999_999, 0, -1]);
    // Well under a second in release; generous here for unoptimized test builds.
    assert!(took.as_secs_f64() < 5.0, "1M-line vocab took {took:?}");
}

#[test]
fn static_and_mutable_tables() {
    let dir = tempfile::tempdir().unwrap();
    let s = session(dir.path());
    let mut cx = EvalCtx::new(&s);
    let t = table(&mut cx, "s", DType::I64, DType::F32, false);
    let keys = Tensor::vector(vec![1i64, 2]);
    let vals = Tensor::vector(vec![0.5f32, 1.5]);
    let fill = Fill { insert: false };
    fill.eval(&mut cx, tensors![t.clone(), keys.clone(), vals.clone()])
        .unwrap();
    fill.eval(&mut cx, tensors![t.clone(), keys.clone(), vals.clone()])
        .unwrap();
    let other = Tensor::vector(vec![0.5f32, 9.0]);
    assert!(fill
        .eval(&mut cx, tensors![t.clone(), keys.clone(), other])
        .is_err());
    assert!(Fill { insert: true }
        .eval(&mut cx, tensors![t.clone(), keys.clone(), vals.clone()])
        .is_err());
    let out = Find.eval(
        &mut cx,
        tensors![
            t.clone(),
            Tensor::vector(vec![2i64, 3]),
            Tensor::scalar(0f32),
        ],
    );
    assert_eq!(out.unwrap()[0].as_slice::<f32>().unwrap(), [1.5, 0.0]);
    // Same resource key, another dtype: refused.
    let clash = TableOp {
        key: "s".into(),
        key_dtype: DType::String,
        value_dtype: DType::F32,
        mutable: false,
    };
    assert!(clash.eval(&mut cx, tensors![]).is_err());

    let m = table(&mut cx, "m", DType::String, DType::String, true);
    let ins = Fill { insert: true };
    ins.eval(
        &mut cx,
        tensors![m.clone(), strs(&["a", "b"]), strs(&["x", "y"])],
    )
    .unwrap();
    ins.eval(&mut cx, tensors![m.clone(), strs(&["a"]), strs(&["z"])])
        .unwrap();
    Remove
        .eval(&mut cx, tensors![m.clone(), strs(&["b", "nope"])])
        .unwrap();
    let out = Find
        .eval(
            &mut cx,
            tensors![
                m.clone(),
                strs(&["a", "b"]),
                Tensor::scalar(crate::tensor::Bytes::from_static(b"-")),
            ],
        )
        .unwrap();
    assert_eq!(
        out[0].as_slice::<crate::tensor::Bytes>().unwrap(),
        [b"z".to_vec(), b"-".to_vec()]
    );
    let out = Export.eval(&mut cx, tensors![m]).unwrap();
    assert_eq!(
        out[0].as_slice::<crate::tensor::Bytes>().unwrap(),
        [b"a".to_vec()]
    );
    assert_eq!(
        out[1].as_slice::<crate::tensor::Bytes>().unwrap(),
        [b"z".to_vec()]
    );
}

#[test]
fn large_lookups_match_one_by_one() {
    // Enough keys for the parallel path, with OOV keys, repeats and a per-key default.
    let dir = tempfile::tempdir().unwrap();
    let vocab = dir.path().join("v.txt");
    let words: Vec<String> = (0..3000).map(|i| format!("w{i}")).collect();
    std::fs::write(&vocab, words.join("\n") + "\n").unwrap();
    let s = session(dir.path());
    let mut cx = EvalCtx::new(&s);
    let t = table(&mut cx, "t", DType::String, DType::I64, false);
    text_init(-2, -1)
        .eval(&mut cx, tensors![t.clone(), path_tensor(&vocab)])
        .unwrap();
    let keys: Vec<String> = (0..5000)
        .map(|i| format!("w{}", (i * 7919) % 4000))
        .collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let defaults = Tensor::vector((0..5000).map(|i| -1 - i as i64).collect::<Vec<_>>());
    let out = Find
        .eval(&mut cx, tensors![t.clone(), strs(&refs), defaults])
        .unwrap();
    let got = out[0].to_i64_vec().unwrap();
    for (i, k) in refs.iter().enumerate() {
        let n: i64 = k[1..].parse().unwrap();
        let want = if n < 3000 { n } else { -1 - i as i64 };
        assert_eq!(got[i], want, "key {k}");
    }
}

/// Initializes a fresh static string->int64 table (whole line -> line number) from `content`.
fn vocab_table(
    s: &Session,
    dir: &Path,
    name: &str,
    content: &[u8],
    init: InitFromTextFile,
) -> Result<Tensor, OpError> {
    let vocab = dir.join(format!("{name}.txt"));
    std::fs::write(&vocab, content).unwrap();
    let mut cx = EvalCtx::new(s);
    let t = table(&mut cx, name, DType::String, DType::I64, false);
    init.eval(&mut cx, tensors![t.clone(), path_tensor(&vocab)])?;
    Ok(t)
}

fn find_i64(s: &Session, t: &Tensor, keys: &[&str]) -> Vec<i64> {
    let mut cx = EvalCtx::new(s);
    let out = Find.eval(
        &mut cx,
        tensors![t.clone(), strs(keys), Tensor::scalar(-1i64)],
    );
    out.unwrap()[0].to_i64_vec().unwrap()
}

#[test]
fn vocab_line_endings_as_tf_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let s = session(dir.path());
    // TF's InputBuffer::ReadLine drops one '\r' before '\n' and at the end; a final lone
    // '\r' is no line; a missing final newline still ends a line; bytes need not be UTF-8.
    let t = vocab_table(
        &s,
        dir.path(),
        "crlf",
        b"a\r\nb\r\r\nc\xff\r",
        text_init(-2, -1),
    )
    .unwrap();
    assert_eq!(
        find_i64(&s, &t, &["a", "b\r", "c\u{ff}", "b"]),
        [0, 1, -1, -1]
    );
    let mut cx = EvalCtx::new(&s);
    let raw = Tensor::vector(vec![crate::tensor::Bytes::from_static(b"c\xff")]);
    let out = Find.eval(&mut cx, tensors![t.clone(), raw, Tensor::scalar(-1i64)]);
    assert_eq!(out.unwrap()[0].to_i64_vec().unwrap(), [2]);
    let size = Size.eval(&mut cx, tensors![t]).unwrap();
    assert_eq!(size[0].to_i64_vec().unwrap(), [3]);
    let t = vocab_table(&s, dir.path(), "lone_cr", b"a\nb\n\r", text_init(-2, -1)).unwrap();
    assert_eq!(find_i64(&s, &t, &["a", "b", ""]), [0, 1, -1]);
    // "\r\n" alone is an empty line: an error, as is an empty file line in the middle.
    assert!(vocab_table(&s, dir.path(), "cr_empty", b"a\n\r\nb\n", text_init(-2, -1)).is_err());
    let t = vocab_table(&s, dir.path(), "empty", b"", text_init(-2, -1)).unwrap();
    assert_eq!(find_i64(&s, &t, &["", "a"]), [-1, -1]);
}

#[test]
fn vocab_duplicates_follow_hash_table_rules() {
    let dir = tempfile::tempdir().unwrap();
    let s = session(dir.path());
    // Same key, same value: fine (column 1 holds the value).
    let by_col = InitFromTextFile {
        delimiter: b' ',
        ..text_init(0, 1)
    };
    let t = vocab_table(&s, dir.path(), "same", b"a 1\nb 2\na 1\n", by_col).unwrap();
    assert_eq!(find_i64(&s, &t, &["a", "b"]), [1, 2]);
    let mut cx = EvalCtx::new(&s);
    let size = Size.eval(&mut cx, tensors![t]).unwrap();
    assert_eq!(size[0].to_i64_vec().unwrap(), [2]);
    // Another value: an error naming the key and the later line.
    let by_col = InitFromTextFile {
        delimiter: b' ',
        ..text_init(0, 1)
    };
    let err = vocab_table(&s, dir.path(), "other", b"a 1\nb 2\na 3\n", by_col).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("line 2") && msg.contains("\"a\""), "{msg}");
}

#[test]
fn vocab_errors_come_in_line_order_across_chunks() {
    // Over a megabyte, so the file is parsed in several chunks and indexed in several
    // regions; the first bad line in file order is the one reported, as TF reads line by line.
    let dir = tempfile::tempdir().unwrap();
    let s = session(dir.path());
    let lines = |dup_at: usize, empty_at: usize| {
        let mut v = Vec::new();
        for i in 0..200_000usize {
            if i == dup_at {
                v.extend_from_slice(b"w17\n");
            } else if i == empty_at {
                v.push(b'\n');
            } else {
                v.extend_from_slice(format!("w{i}\n").as_bytes());
            }
        }
        v
    };
    let err = vocab_table(
        &s,
        dir.path(),
        "dup_first",
        &lines(150_000, 190_000),
        text_init(-2, -1),
    );
    let msg = err.unwrap_err().to_string();
    assert!(
        msg.contains("line 150000") && msg.contains("\"w17\""),
        "{msg}"
    );
    let err = vocab_table(
        &s,
        dir.path(),
        "empty_first",
        &lines(150_000, 120_000),
        text_init(-2, -1),
    );
    let msg = err.unwrap_err().to_string();
    assert!(msg.contains("empty line found at line 120000"), "{msg}");
    // Past vocab_size nothing is read, so later bad lines do not matter.
    let short = InitFromTextFile {
        vocab_size: 100_000,
        ..text_init(-2, -1)
    };
    let t = vocab_table(&s, dir.path(), "short", &lines(150_000, 120_000), short).unwrap();
    assert_eq!(
        find_i64(&s, &t, &["w0", "w99999", "w100000", "w17"]),
        [0, 99_999, -1, 17]
    );
    let t = vocab_table(
        &s,
        dir.path(),
        "good",
        &lines(usize::MAX, usize::MAX),
        text_init(-2, -1),
    )
    .unwrap();
    let keys: Vec<String> = (0..200_500).step_by(997).map(|i| format!("w{i}")).collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let want: Vec<i64> = (0..200_500)
        .step_by(997)
        .map(|i| if i < 200_000 { i as i64 } else { -1 })
        .collect();
    assert_eq!(find_i64(&s, &t, &refs), want);
}

#[test]
fn vocab_string_values_and_whole_line_keys() {
    let dir = tempfile::tempdir().unwrap();
    let s = session(dir.path());
    let vocab = dir.path().join("kv.tsv");
    std::fs::write(&vocab, "k1\tv1\tx\nk2\tv2\n").unwrap();
    let mut cx = EvalCtx::new(&s);
    let t = table(&mut cx, "kv", DType::String, DType::String, false);
    text_init(0, 1)
        .eval(&mut cx, tensors![t.clone(), path_tensor(&vocab)])
        .unwrap();
    let out = Find.eval(
        &mut cx,
        tensors![
            t.clone(),
            strs(&["k2", "k1", "k3"]),
            Tensor::scalar(crate::tensor::Bytes::from_static(b"?")),
        ],
    );
    let want = [b"v2".to_vec(), b"v1".to_vec(), b"?".to_vec()];
    assert_eq!(
        out.unwrap()[0].as_slice::<crate::tensor::Bytes>().unwrap(),
        want
    );
    // Whole line as the key: the delimiter is part of it.
    let t = vocab_table(&s, dir.path(), "whole", b"a\tb\nc\n", text_init(-2, -1)).unwrap();
    assert_eq!(find_i64(&s, &t, &["a\tb", "a", "c"]), [0, -1, 1]);
}

#[test]
fn static_string_table_from_tensors() {
    let dir = tempfile::tempdir().unwrap();
    let s = session(dir.path());
    let mut cx = EvalCtx::new(&s);
    let t = table(&mut cx, "st", DType::String, DType::I64, false);
    let fill = Fill { insert: false };
    let keys = strs(&["", "a", "ab", "a"]);
    let vals = Tensor::vector(vec![5i64, 1, 2, 1]);
    fill.eval(&mut cx, tensors![t.clone(), keys.clone(), vals.clone()])
        .unwrap();
    assert_eq!(find_i64(&s, &t, &["a", "ab", "", "abc"]), [1, 2, 5, -1]);
    // Re-initialization with the same entries is accepted, with others refused.
    let dedup = strs(&["a", "", "ab"]);
    let dedup_vals = Tensor::vector(vec![1i64, 5, 2]);
    fill.eval(&mut cx, tensors![t.clone(), dedup, dedup_vals])
        .unwrap();
    let other = Tensor::vector(vec![5i64, 1, 9, 1]);
    assert!(fill
        .eval(&mut cx, tensors![t.clone(), keys, other])
        .is_err());
    let out = Export.eval(&mut cx, tensors![t.clone()]).unwrap();
    let mut pairs: Vec<(Vec<u8>, i64)> = out[0]
        .as_slice::<crate::tensor::Bytes>()
        .unwrap()
        .iter()
        .map(|s| s.to_vec())
        .zip(out[1].to_i64_vec().unwrap())
        .collect();
    pairs.sort();
    assert_eq!(
        pairs,
        [(b"".to_vec(), 5), (b"a".to_vec(), 1), (b"ab".to_vec(), 2)]
    );
    assert!(Remove
        .eval(&mut cx, tensors![t.clone(), strs(&["a"])])
        .is_err());
    // A conflicting first initialization leaves the table uninitialized.
    let t2 = table(&mut cx, "st2", DType::String, DType::I64, false);
    let bad = Tensor::vector(vec![1i64, 2]);
    assert!(fill
        .eval(&mut cx, tensors![t2.clone(), strs(&["k", "k"]), bad])
        .is_err());
    let size = Size.eval(&mut cx, tensors![t2]).unwrap();
    assert_eq!(size[0].to_i64_vec().unwrap(), [0]);
}

//! TF Serving's JSON tensor mapping (tensorflow_serving/util/json_tensor.cc): the `instances`
//! (row) and `inputs` (columnar) request formats, the `predictions` / `outputs` replies, and
//! TF's number formatting. Leaf types come from the signature, never from the client.
//!
//! Deviations, each deliberate: NaN/Infinity literals are not accepted in requests (serde_json
//! is strict JSON); non-UTF-8 string outputs not named `*_bytes` are written lossily (TF writes
//! the raw bytes, producing invalid JSON); narrow integer inputs (int8/int16/uint8) are
//! range-checked (TF truncates from int32).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use base64::Engine;
use serde_json::{Map, Value};

use super::status::{Code, Status};
use crate::api::TensorSpec;
use crate::tensor::{Bytes, DType, Data, Tensor};

/// Which request format was used; the reply follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `{"instances": [...]}` → `{"predictions": [...]}`.
    Row,
    /// `{"inputs": ...}` → `{"outputs": ...}`.
    Columnar,
}

/// A parsed `:predict` body.
#[derive(Debug)]
pub struct PredictBody {
    /// `signature_name`, if given.
    pub signature_name: Option<String>,
    /// Row or columnar.
    pub format: Format,
    /// The `instances` or `inputs` value.
    pub data: Value,
}

/// Step 1 and 2 of TF's order of checks: valid JSON object, `signature_name` a string.
/// `instances`/`inputs` presence is checked too (TF checks it after resolving the model;
/// both orders give 400).
pub fn parse_predict(body: &[u8]) -> Result<PredictBody, Status> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(Status::invalid("JSON Parse error: The document is empty"));
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| Status::invalid(format!("JSON Parse error: {e}")))?;
    let Value::Object(mut m) = v else {
        return Err(Status::invalid("JSON Parse error: Is not object"));
    };
    let signature_name = match m.remove("signature_name") {
        None => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => {
            return Err(Status::invalid(
                "'signature_name' key must be a string value.",
            ))
        }
    };
    let (format, data) = match (m.remove("instances"), m.remove("inputs")) {
        (Some(_), Some(_)) => {
            return Err(Status::invalid(
                "Not a valid JSON request: expecting only one of 'inputs' or 'instances' keys \
                 to exist",
            ))
        }
        (None, None) => return Err(Status::invalid("Missing 'inputs' or 'instances' key")),
        (Some(i), None) => (Format::Row, i),
        (None, Some(i)) => (Format::Columnar, i),
    };
    Ok(PredictBody {
        signature_name,
        format,
        data,
    })
}

/// A `:predict` body whose `instances` / `inputs` value is one rectangular array of numbers
/// (or one number), read straight into a flat buffer without building a JSON tree: the common
/// shape of image and feature requests, where the tree costs far more than the numbers.
#[derive(Debug)]
pub struct DenseBody {
    /// `signature_name`, if given.
    pub signature_name: Option<String>,
    /// Row or columnar.
    pub format: Format,
    /// The nested lists' shape (`[]` for a bare number).
    pub shape: Vec<usize>,
    /// The numbers, row-major, as serde_json's `Value::as_f64` reads them.
    pub values: Vec<f64>,
}

/// [`parse_predict`] for the dense case, `None` for anything else (other value kinds, ragged
/// or empty lists, duplicate keys, more than `max_elements` numbers, invalid JSON): the
/// caller then takes the general path, which also produces TF's exact error messages.
pub fn parse_predict_dense(body: &[u8], max_elements: usize) -> Option<DenseBody> {
    use serde::de::{DeserializeSeed, Deserializer, Error as _, IgnoredAny, MapAccess, Visitor};

    #[derive(Default)]
    struct Dense {
        lens: Vec<Option<usize>>,
        rank: Option<usize>,
        values: Vec<f64>,
        cap: usize,
    }

    struct Level<'a> {
        d: &'a mut Dense,
        depth: usize,
    }

    impl Level<'_> {
        fn leaf<E: serde::de::Error>(self, v: f64) -> Result<(), E> {
            match self.d.rank {
                None => self.d.rank = Some(self.depth),
                Some(r) if r != self.depth => return Err(E::custom("ragged")),
                Some(_) => {}
            }
            if self.d.values.len() >= self.d.cap {
                return Err(E::custom("too many elements"));
            }
            self.d.values.push(v);
            Ok(())
        }
    }

    impl<'de> DeserializeSeed<'de> for Level<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
            de.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Level<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("nested lists of numbers")
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<(), E> {
            self.leaf(v as f64)
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<(), E> {
            self.leaf(v as f64)
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<(), E> {
            self.leaf(v)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let depth = self.depth;
            if depth >= MAX_RANK || self.d.rank.is_some_and(|r| depth >= r) {
                return Err(A::Error::custom("ragged"));
            }
            let mut n = 0usize;
            while seq
                .next_element_seed(Level {
                    d: &mut *self.d,
                    depth: depth + 1,
                })?
                .is_some()
            {
                n += 1;
            }
            if self.d.lens.len() <= depth {
                self.d.lens.resize(depth + 1, None);
            }
            match self.d.lens[depth] {
                _ if n == 0 => return Err(A::Error::custom("empty list")),
                None => self.d.lens[depth] = Some(n),
                Some(m) if m != n => return Err(A::Error::custom("ragged")),
                Some(_) => {}
            }
            Ok(())
        }
    }

    struct Top<'a> {
        d: &'a mut Dense,
        signature_name: Option<String>,
        format: Option<Format>,
    }

    impl<'de> Visitor<'de> for &mut Top<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a predict request object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(k) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                match k.as_ref() {
                    "signature_name" if self.signature_name.is_none() => {
                        self.signature_name = Some(map.next_value::<String>()?);
                    }
                    "instances" | "inputs" if self.format.is_none() => {
                        self.format = Some(if k == "instances" {
                            Format::Row
                        } else {
                            Format::Columnar
                        });
                        map.next_value_seed(Level {
                            d: &mut *self.d,
                            depth: 0,
                        })?;
                    }
                    "signature_name" | "instances" | "inputs" => {
                        return Err(A::Error::custom("duplicate or conflicting key"))
                    }
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(())
        }
    }

    let mut d = Dense {
        cap: max_elements,
        ..Dense::default()
    };
    let mut top = Top {
        d: &mut d,
        signature_name: None,
        format: None,
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    Deserializer::deserialize_map(&mut de, &mut top).ok()?;
    de.end().ok()?;
    let (signature_name, format) = (top.signature_name, top.format?);
    let rank = d.rank?;
    if format == Format::Row && rank == 0 {
        return None;
    }
    let shape: Vec<usize> = d.lens.get(..rank)?.iter().copied().collect::<Option<_>>()?;
    Some(DenseBody {
        signature_name,
        format,
        shape,
        values: d.values,
    })
}

impl DenseBody {
    /// The single float input of a signature, or `None` when the general path must decide
    /// (several inputs, another dtype, too many elements).
    pub fn into_inputs(
        self,
        inputs: &[TensorSpec],
        lim: DecodeLimits,
    ) -> Option<Vec<(String, Tensor)>> {
        let [spec] = inputs else { return None };
        if self.values.len() > lim.max_elements {
            return None;
        }
        let t = match spec.dtype {
            DType::F32 => {
                Tensor::from_vec(&self.shape, self.values.iter().map(|&v| v as f32).collect())
            }
            DType::F64 => Tensor::from_vec(&self.shape, self.values),
            _ => return None,
        };
        Some(vec![(spec.key.clone(), t.ok()?)])
    }
}

fn is_b64(v: &Value) -> bool {
    matches!(v, Value::Object(m) if m.contains_key("b64"))
}

fn dump(v: &Value) -> String {
    let mut s = v.to_string();
    if s.len() > 256 {
        let mut cut = 256;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

/// Typed leaves being gathered for one tensor.
enum Acc {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I8(Vec<i8>),
    I16(Vec<i16>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    U8(Vec<u8>),
    U32(Vec<u32>),
    U64(Vec<u64>),
    Bool(Vec<bool>),
    Str(Vec<Bytes>),
}

impl Acc {
    fn new(dtype: DType) -> Result<Acc, Status> {
        Ok(match dtype {
            DType::F32 => Acc::F32(Vec::new()),
            DType::F64 => Acc::F64(Vec::new()),
            DType::I8 => Acc::I8(Vec::new()),
            DType::I16 => Acc::I16(Vec::new()),
            DType::I32 => Acc::I32(Vec::new()),
            DType::I64 => Acc::I64(Vec::new()),
            DType::U8 => Acc::U8(Vec::new()),
            DType::U32 => Acc::U32(Vec::new()),
            DType::U64 => Acc::U64(Vec::new()),
            DType::Bool => Acc::Bool(Vec::new()),
            DType::String => Acc::Str(Vec::new()),
            other => {
                return Err(Status::unimplemented(format!(
                    "Conversion of JSON Value to type: {} is not supported yet.",
                    tf_dtype_name(other)
                )))
            }
        })
    }

    fn push(&mut self, v: &Value, dtype: DType) -> Result<(), Status> {
        let bad = || {
            Status::invalid(format!(
                "JSON Value: {} not of expected type: {}",
                dump(v),
                dtype.name()
            ))
        };
        let int = || v.as_i64().ok_or_else(bad);
        match self {
            Acc::F32(x) => x.push(v.as_f64().ok_or_else(bad)? as f32),
            Acc::F64(x) => x.push(v.as_f64().ok_or_else(bad)?),
            Acc::I8(x) => x.push(i8::try_from(int()?).map_err(|_| bad())?),
            Acc::I16(x) => x.push(i16::try_from(int()?).map_err(|_| bad())?),
            Acc::I32(x) => x.push(i32::try_from(int()?).map_err(|_| bad())?),
            Acc::I64(x) => x.push(int()?),
            Acc::U8(x) => x.push(u8::try_from(int()?).map_err(|_| bad())?),
            Acc::U32(x) => x.push(u32::try_from(v.as_u64().ok_or_else(bad)?).map_err(|_| bad())?),
            Acc::U64(x) => x.push(v.as_u64().ok_or_else(bad)?),
            Acc::Bool(x) => x.push(v.as_bool().ok_or_else(bad)?),
            Acc::Str(x) => match v {
                Value::String(s) => x.push(Bytes::copy_from_slice(s.as_bytes())),
                Value::Object(m) => {
                    let s = match (m.len(), m.get("b64")) {
                        (1, Some(Value::String(s))) => s,
                        _ => {
                            return Err(Status::invalid(format!(
                                "JSON Value: {} expecting a single 'b64' key with a string value",
                                dump(v)
                            )))
                        }
                    };
                    let b = base64::engine::general_purpose::STANDARD
                        .decode(s)
                        .map_err(|_| Status::invalid(format!("Unable to base64 decode: {s}")))?;
                    x.push(Bytes::from(b));
                }
                _ => return Err(bad()),
            },
        }
        Ok(())
    }

    fn into_tensor(self, shape: &[usize]) -> Result<Tensor, Status> {
        let t = match self {
            Acc::F32(x) => Tensor::from_vec(shape, x),
            Acc::F64(x) => Tensor::from_vec(shape, x),
            Acc::I8(x) => Tensor::from_vec(shape, x),
            Acc::I16(x) => Tensor::from_vec(shape, x),
            Acc::I32(x) => Tensor::from_vec(shape, x),
            Acc::I64(x) => Tensor::from_vec(shape, x),
            Acc::U8(x) => Tensor::from_vec(shape, x),
            Acc::U32(x) => Tensor::from_vec(shape, x),
            Acc::U64(x) => Tensor::from_vec(shape, x),
            Acc::Bool(x) => Tensor::from_vec(shape, x),
            Acc::Str(x) => Tensor::from_vec(shape, x),
        };
        t.map_err(|e| Status::internal(format!("building tensor: {e}")))
    }
}

/// The shape of a nested JSON value, read from the first element at each depth (TF's rule).
fn shape_of(v: &Value, max_rank: usize) -> Result<Vec<usize>, Status> {
    let mut shape = Vec::new();
    let mut cur = v;
    while let Value::Array(items) = cur {
        shape.push(items.len());
        if shape.len() > max_rank {
            return Err(Status::invalid("JSON value nested too deeply"));
        }
        match items.first() {
            Some(f) => cur = f,
            None => break,
        }
    }
    Ok(shape)
}

fn fill(
    v: &Value,
    level: usize,
    shape: &[usize],
    acc: &mut Acc,
    dtype: DType,
) -> Result<(), Status> {
    match v {
        Value::Array(items) => {
            if level >= shape.len() {
                return Err(Status::invalid(format!(
                    "Encountered list at unexpected level: {level} expected < {}",
                    shape.len()
                )));
            }
            if items.len() != shape[level] {
                return Err(Status::invalid(format!(
                    "Encountered list at unexpected size: {} at level: {level} expected size: {}",
                    items.len(),
                    shape[level]
                )));
            }
            for it in items {
                fill(it, level + 1, shape, acc, dtype)?;
            }
            Ok(())
        }
        leaf => {
            if level != shape.len() {
                return Err(Status::invalid(format!(
                    "Encountered scalar element at unexpected level: {level} expected: {}",
                    shape.len()
                )));
            }
            acc.push(leaf, dtype)
        }
    }
}

/// Caps on what one request may decode into.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    /// Elements per input tensor.
    pub max_elements: usize,
}

const MAX_RANK: usize = 32;

fn check_elems(shape: &[usize], lim: DecodeLimits) -> Result<(), Status> {
    let n = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .unwrap_or(usize::MAX);
    if n > lim.max_elements {
        return Err(Status::exhausted(format!(
            "tensor of shape {shape:?} exceeds the cap of {} elements",
            lim.max_elements
        )));
    }
    Ok(())
}

/// One tensor from a nested JSON value (columnar leaf or KServe `data` with no shape).
pub fn tensor_from_value(v: &Value, dtype: DType, lim: DecodeLimits) -> Result<Tensor, Status> {
    let shape = if is_b64(v) {
        Vec::new()
    } else {
        shape_of(v, MAX_RANK)?
    };
    check_elems(&shape, lim)?;
    let mut acc = Acc::new(dtype)?;
    fill(v, 0, &shape, &mut acc, dtype)?;
    acc.into_tensor(&shape)
}

/// A flat (or nested, flattened row-major) JSON list as a tensor of `shape` (KServe v2 `data`).
pub fn tensor_from_flat(
    v: &Value,
    dtype: DType,
    shape: &[usize],
    lim: DecodeLimits,
) -> Result<Tensor, Status> {
    check_elems(shape, lim)?;
    let mut acc = Acc::new(dtype)?;
    let mut n = 0usize;
    fn walk(
        v: &Value,
        depth: usize,
        acc: &mut Acc,
        dtype: DType,
        n: &mut usize,
        cap: usize,
    ) -> Result<(), Status> {
        match v {
            Value::Array(items) if depth < MAX_RANK => {
                for it in items {
                    walk(it, depth + 1, acc, dtype, n, cap)?;
                }
                Ok(())
            }
            Value::Array(_) => Err(Status::invalid("JSON value nested too deeply")),
            leaf => {
                *n += 1;
                if *n > cap {
                    return Err(Status::invalid("more data elements than the shape holds"));
                }
                acc.push(leaf, dtype)
            }
        }
    }
    let cap = shape.iter().product::<usize>();
    walk(v, 0, &mut acc, dtype, &mut n, cap)?;
    if n != cap {
        return Err(Status::invalid(format!(
            "data has {n} elements, shape {shape:?} needs {cap}"
        )));
    }
    acc.into_tensor(shape)
}

/// Inputs from the `instances` (row) or `inputs` (columnar) value, against the signature's
/// input specs (json_tensor.cc `FillTensorMapFromInstancesList` / `FillTensorMapFromInputsMap`).
pub fn decode_inputs(
    body: &PredictBody,
    inputs: &[TensorSpec],
    lim: DecodeLimits,
) -> Result<Vec<(String, Tensor)>, Status> {
    match body.format {
        Format::Row => decode_rows(&body.data, inputs, lim),
        Format::Columnar => decode_columns(&body.data, inputs, lim),
    }
}

fn decode_columns(
    v: &Value,
    inputs: &[TensorSpec],
    lim: DecodeLimits,
) -> Result<Vec<(String, Tensor)>, Status> {
    match v {
        Value::Object(m) if !is_b64(v) => inputs
            .iter()
            .map(|spec| {
                let x = m.get(&spec.key).ok_or_else(|| {
                    Status::invalid(format!(
                        "Missing named input: {} in 'inputs' object.",
                        spec.key
                    ))
                })?;
                Ok((spec.key.clone(), tensor_from_value(x, spec.dtype, lim)?))
            })
            .collect(),
        _ => {
            let [spec] = inputs else {
                return Err(Status::invalid(format!(
                    "'inputs' is a plain value/list, but expecting an object as multiple input \
                     tensors required as per tensorinfo_map ({} inputs)",
                    inputs.len()
                )));
            };
            Ok(vec![(
                spec.key.clone(),
                tensor_from_value(v, spec.dtype, lim)?,
            )])
        }
    }
}

fn decode_rows(
    v: &Value,
    inputs: &[TensorSpec],
    lim: DecodeLimits,
) -> Result<Vec<(String, Tensor)>, Status> {
    let Value::Array(rows) = v else {
        return Err(Status::invalid("Expecting 'instances' to be an list/array"));
    };
    if rows.is_empty() {
        return Err(Status::invalid("No values in 'instances' array"));
    }
    let objects = matches!(&rows[0], Value::Object(_)) && !is_b64(&rows[0]);
    if !objects && inputs.len() != 1 {
        return Err(Status::invalid(format!(
            "instances is a plain list, but expecting list of objects as multiple input \
             tensors required as per tensorinfo_map ({} inputs)",
            inputs.len()
        )));
    }
    let mut out = Vec::with_capacity(inputs.len());
    for spec in inputs {
        let mut acc = Acc::new(spec.dtype)?;
        let mut elem_shape: Option<Vec<usize>> = None;
        for (i, row) in rows.iter().enumerate() {
            let wrap = |s: Status| {
                Status::new(s.code, format!("Failed to process element: {i} {}", s.msg))
            };
            let x = if objects {
                let Value::Object(m) = row else {
                    return Err(wrap(Status::invalid(
                        "Expecting object but got list/value (all instances must be objects)",
                    )));
                };
                if m.len() != inputs.len() || inputs.iter().any(|s| !m.contains_key(&s.key)) {
                    let want: Vec<&str> = inputs.iter().map(|s| s.key.as_str()).collect();
                    let got: Vec<&str> = m.keys().map(String::as_str).collect();
                    return Err(wrap(Status::invalid(format!(
                        "Expecting keys {want:?} but got {got:?}"
                    ))));
                }
                &m[&spec.key]
            } else {
                if matches!(row, Value::Object(_)) && !is_b64(row) {
                    return Err(wrap(Status::invalid(
                        "Expecting value/list but got object (instances must all be the same kind)",
                    )));
                }
                row
            };
            let s = if is_b64(x) {
                Vec::new()
            } else {
                shape_of(x, MAX_RANK)?
            };
            match &elem_shape {
                None => {
                    let mut full = vec![rows.len()];
                    full.extend(&s);
                    check_elems(&full, lim)?;
                    elem_shape = Some(s.clone());
                }
                Some(e) if *e != s => {
                    return Err(wrap(Status::invalid(format!(
                        "Expecting shape {e:?} but got: {s:?}"
                    ))))
                }
                Some(_) => {}
            }
            fill(x, 0, &s, &mut acc, spec.dtype).map_err(wrap)?;
        }
        let mut shape = vec![rows.len()];
        shape.extend(elem_shape.unwrap_or_default());
        out.push((spec.key.clone(), acc.into_tensor(&shape)?));
    }
    Ok(out)
}

/// TF's `DT_*` spelling of a dtype.
pub fn tf_dtype_name(d: DType) -> &'static str {
    match d {
        DType::F32 => "DT_FLOAT",
        DType::F64 => "DT_DOUBLE",
        DType::F16 => "DT_HALF",
        DType::BF16 => "DT_BFLOAT16",
        DType::I8 => "DT_INT8",
        DType::I16 => "DT_INT16",
        DType::I32 => "DT_INT32",
        DType::I64 => "DT_INT64",
        DType::U8 => "DT_UINT8",
        DType::U16 => "DT_UINT16",
        DType::U32 => "DT_UINT32",
        DType::U64 => "DT_UINT64",
        DType::Bool => "DT_BOOL",
        DType::String => "DT_STRING",
        _ => "DT_INVALID",
    }
}

/// A fixed stack buffer for one formatted float (no heap allocation per element).
struct NumBuf {
    b: [u8; 48],
    n: usize,
}

impl NumBuf {
    fn new() -> NumBuf {
        NumBuf { b: [0; 48], n: 0 }
    }
}

impl std::fmt::Write for NumBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.n + s.len();
        if end > self.b.len() {
            return Err(std::fmt::Error);
        }
        self.b[self.n..end].copy_from_slice(s.as_bytes());
        self.n = end;
        Ok(())
    }
}

/// Sign, significant digits (trailing zeros removed) and decimal exponent of `{:e}`-style
/// text such as `-1.2500e-7` (Rust's `{:e}` writes the shortest round-tripping digits, and
/// `{:.Ne}` the exact value rounded to N+1 digits, like C's `%e`).
fn split_sci(text: &[u8]) -> (bool, [u8; 40], usize, i32) {
    let (neg, t) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let e = t.iter().position(|&c| c == b'e').unwrap_or(t.len());
    let mut digits = [0u8; 40];
    let mut nd = 0;
    for &c in &t[..e] {
        if c.is_ascii_digit() && nd < digits.len() {
            digits[nd] = c;
            nd += 1;
        }
    }
    while nd > 1 && digits[nd - 1] == b'0' {
        nd -= 1;
    }
    let mut exp: i32 = 0;
    let mut sign = 1;
    for &c in t.get(e + 1..).unwrap_or(&[]) {
        match c {
            b'-' => sign = -1,
            b'0'..=b'9' => exp = exp * 10 + i32::from(c - b'0'),
            _ => {}
        }
    }
    (neg, digits, nd, sign * exp)
}

/// C's `%.{p}g` layout of `digits` × 10^`exp` (the digits already rounded to at most `p`,
/// trailing zeros removed, as `%g` does without `#`).
fn layout_g(out: &mut String, neg: bool, digits: &[u8], exp: i32, p: i32) {
    if neg {
        out.push('-');
    }
    let d = |i: usize| digits.get(i).map_or('0', |&c| c as char);
    if exp < -4 || exp >= p {
        out.push(d(0));
        if digits.len() > 1 {
            out.push('.');
            for &c in &digits[1..] {
                out.push(c as char);
            }
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let a = exp.unsigned_abs();
        if a < 10 {
            out.push('0');
        }
        write!(out, "{a}").expect("String write");
    } else if exp >= 0 {
        let int_digits = exp as usize + 1;
        for i in 0..int_digits {
            out.push(d(i));
        }
        if digits.len() > int_digits {
            out.push('.');
            for &c in &digits[int_digits..] {
                out.push(c as char);
            }
        }
    } else {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        for &c in digits {
            out.push(c as char);
        }
    }
}

/// TF Serving's float writing (json_tensor.cc `WriteDecimal`): `%g` (6 significant digits),
/// else `%.9g` (float) / `%.17g` (double) if 6 digits do not round-trip; `.0` appended when
/// neither `.` nor `e` appears; non-finite values as the bare tokens TF writes.
///
/// Without allocating: 6 digits round-trip exactly when the shortest round-tripping digits
/// (Rust's `{:e}`) number at most 6, and then `%.6g`'s digits are those digits (the value lies
/// within half an ulp of them, far less than half a 6-digit step, for f32 and f64 alike);
/// otherwise the exact value is rounded to 9 / 17 digits by `{:.8e}` / `{:.16e}`. Rust's
/// shortest digits honour round-half-even parsing (boundaries count for even mantissas), so
/// "more than 6 shortest digits" means `%.6g` does not round-trip. Subnormals are the
/// exception (see below).
pub fn write_decimal(out: &mut String, v: f64, is_f32: bool) {
    if v.is_nan() {
        out.push_str("NaN");
        return;
    }
    if v.is_infinite() {
        out.push_str(if v > 0.0 { "Infinity" } else { "-Infinity" });
        return;
    }
    let mut buf = NumBuf::new();
    if is_f32 {
        write!(buf, "{:e}", v as f32).expect("a float fits 48 bytes");
    } else {
        write!(buf, "{v:e}").expect("a float fits 48 bytes");
    }
    let (neg, digits, nd, exp) = split_sci(&buf.b[..buf.n]);
    let start = out.len();
    // Subnormals have fewer significant bits than 6 digits resolve, so the shortest digits
    // may be fewer than what `%.6g` prints (1e-45 is `1.4013e-45`): check those the slow way.
    let subnormal = if is_f32 {
        (v as f32).is_subnormal()
    } else {
        v.is_subnormal()
    };
    let mut exact6 = NumBuf::new();
    let exact6_round_trips = subnormal && {
        if is_f32 {
            write!(exact6, "{:.5e}", v as f32).expect("a float fits 48 bytes");
        } else {
            write!(exact6, "{v:.5e}").expect("a float fits 48 bytes");
        }
        let text = std::str::from_utf8(&exact6.b[..exact6.n]).unwrap_or("");
        if is_f32 {
            text.parse::<f32>().ok() == Some(v as f32)
        } else {
            text.parse::<f64>().ok() == Some(v)
        }
    };
    if exact6_round_trips {
        let (neg, digits, nd, exp) = split_sci(&exact6.b[..exact6.n]);
        layout_g(out, neg, &digits[..nd], exp, 6);
    } else if nd <= 6 && !subnormal {
        layout_g(out, neg, &digits[..nd], exp, 6);
    } else {
        let mut buf = NumBuf::new();
        if is_f32 {
            write!(buf, "{:.8e}", v as f32).expect("a float fits 48 bytes");
        } else {
            write!(buf, "{v:.16e}").expect("a float fits 48 bytes");
        }
        let (neg, digits, nd, exp) = split_sci(&buf.b[..buf.n]);
        layout_g(out, neg, &digits[..nd], exp, if is_f32 { 9 } else { 17 });
    }
    if !out[start..].contains(['.', 'e']) {
        out.push_str(".0");
    }
}

fn write_json_str(out: &mut String, s: &str) {
    // serde_json's escaping of a string is exactly JSON's.
    out.push_str(&Value::String(s.to_string()).to_string());
}

/// Writes one element of `t` at flat index `i`.
fn write_elem(out: &mut String, t: &Tensor, i: usize, b64: bool) -> Result<(), Status> {
    match t.data() {
        Data::F32(b) => write_decimal(out, b[i] as f64, true),
        Data::F64(b) => write_decimal(out, b[i], false),
        Data::I8(b) => write!(out, "{}", b[i]).expect("String write"),
        Data::I16(b) => write!(out, "{}", b[i]).expect("String write"),
        Data::I32(b) => write!(out, "{}", b[i]).expect("String write"),
        Data::I64(b) => write!(out, "{}", b[i]).expect("String write"),
        Data::U8(b) => write!(out, "{}", b[i]).expect("String write"),
        Data::U16(b) => write!(out, "{}", b[i]).expect("String write"),
        Data::U32(b) => write!(out, "{}", b[i]).expect("String write"),
        Data::U64(b) => write!(out, "{}", b[i]).expect("String write"),
        Data::Bool(b) => out.push_str(if b[i] { "true" } else { "false" }),
        Data::String(b) => {
            if b64 {
                out.push_str("{\"b64\": \"");
                out.push_str(&base64::engine::general_purpose::STANDARD.encode(&b[i]));
                out.push_str("\"}");
            } else {
                write_json_str(out, &String::from_utf8_lossy(&b[i]));
            }
        }
        _ => {
            return Err(Status::invalid(format!(
                "Failed to write JSON value for tensor type: {}",
                t.dtype().name()
            )))
        }
    }
    Ok(())
}

/// Writes `t[offset..]` with `shape` as nested lists.
fn write_nested(
    out: &mut String,
    t: &Tensor,
    shape: &[usize],
    offset: usize,
    b64: bool,
) -> Result<(), Status> {
    let Some((&n, rest)) = shape.split_first() else {
        return write_elem(out, t, offset, b64);
    };
    let stride: usize = rest.iter().product();
    out.push('[');
    for i in 0..n {
        if i > 0 {
            out.push_str(", ");
        }
        write_nested(out, t, rest, offset + i * stride, b64)?;
    }
    out.push(']');
    Ok(())
}

/// `IsNamedTensorBytes`: outputs whose alias ends in `_bytes` are written as `{"b64": ...}`.
fn is_bytes_alias(name: &str, t: &Tensor) -> bool {
    name.ends_with("_bytes") && t.dtype() == DType::String
}

/// The reply body for `outputs` in `format` (json_tensor.cc `MakeJsonFromTensors`).
pub fn encode_outputs(
    outputs: &BTreeMap<String, Tensor>,
    format: Format,
) -> Result<String, Status> {
    if outputs.is_empty() {
        return Err(Status::invalid("empty output map"));
    }
    let mut out = String::with_capacity(64 + outputs.values().map(|t| t.len() * 12).sum::<usize>());
    match format {
        Format::Columnar => {
            out.push_str("{\"outputs\": ");
            if outputs.len() == 1 {
                let (k, t) = outputs.iter().next().expect("one output");
                write_nested(&mut out, t, t.shape(), 0, is_bytes_alias(k, t))?;
            } else {
                out.push('{');
                for (i, (k, t)) in outputs.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write_json_str(&mut out, k);
                    out.push_str(": ");
                    write_nested(&mut out, t, t.shape(), 0, is_bytes_alias(k, t))?;
                }
                out.push('}');
            }
            out.push('}');
        }
        Format::Row => {
            let mut batch = None;
            for (k, t) in outputs {
                let Some(&d0) = t.shape().first() else {
                    return Err(Status::invalid(format!(
                        "Tensor name: {k} has no shape information "
                    )));
                };
                match batch {
                    None => batch = Some(d0),
                    Some(b) if b != d0 => {
                        return Err(Status::invalid(format!(
                            "Tensor name: {k} has inconsistent batch size: {d0} expecting: {b}"
                        )))
                    }
                    Some(_) => {}
                }
            }
            let n = batch.unwrap_or(0);
            out.push_str("{\"predictions\": [");
            for i in 0..n {
                if i > 0 {
                    out.push_str(", ");
                }
                if outputs.len() == 1 {
                    let (k, t) = outputs.iter().next().expect("one output");
                    let rest = &t.shape()[1..];
                    let stride: usize = rest.iter().product();
                    write_nested(&mut out, t, rest, i * stride, is_bytes_alias(k, t))?;
                } else {
                    out.push('{');
                    for (j, (k, t)) in outputs.iter().enumerate() {
                        if j > 0 {
                            out.push_str(", ");
                        }
                        write_json_str(&mut out, k);
                        out.push_str(": ");
                        let rest = &t.shape()[1..];
                        let stride: usize = rest.iter().product();
                        write_nested(&mut out, t, rest, i * stride, is_bytes_alias(k, t))?;
                    }
                    out.push('}');
                }
            }
            out.push_str("]}");
        }
    }
    Ok(out)
}

/// A `{"error": msg}` body (json_tensor.cc `MakeJsonFromStatus`).
pub fn error_body(msg: &str) -> String {
    let mut m = Map::new();
    m.insert("error".into(), Value::String(msg.to_string()));
    Value::Object(m).to_string()
}

/// Keeps `Code` in this module's public face for callers matching on decode errors.
pub fn is_client_error(s: &Status) -> bool {
    s.code == Code::InvalidArgument
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `%.*g` through Rust's exact formatting and heap strings: the straightforward
    /// reading of C's rules, kept as the reference for the allocation-free writer.
    fn fmt_g(v: f64, precision: usize) -> String {
        let p = precision.max(1);
        let e = format!("{:.*e}", p - 1, v);
        let (mant, exp) = e.split_once('e').unwrap();
        let x: i32 = exp.parse().unwrap();
        let strip = |s: &str| -> String {
            if s.contains('.') {
                s.trim_end_matches('0').trim_end_matches('.').to_string()
            } else {
                s.to_string()
            }
        };
        if x < -4 || x >= p as i32 {
            let sign = if x < 0 { '-' } else { '+' };
            format!("{}e{sign}{:02}", strip(mant), x.unsigned_abs())
        } else {
            strip(&format!("{:.*}", (p as i32 - 1 - x).max(0) as usize, v))
        }
    }

    fn reference_decimal(v: f64, is_f32: bool) -> String {
        if v.is_nan() {
            return "NaN".into();
        }
        if v.is_infinite() {
            return if v > 0.0 { "Infinity" } else { "-Infinity" }.into();
        }
        let mut s = fmt_g(v, 6);
        let round_trips = if is_f32 {
            s.parse::<f32>().ok() == Some(v as f32)
        } else {
            s.parse::<f64>().ok() == Some(v)
        };
        if !round_trips {
            s = fmt_g(v, if is_f32 { 9 } else { 17 });
        }
        if !s.contains('.') && !s.contains('e') {
            s.push_str(".0");
        }
        s
    }

    /// The allocation-free writer against the reference on edge values and a sweep of
    /// pseudo-random bit patterns (every exponent, subnormals included).
    #[test]
    fn write_decimal_equals_reference() {
        let mut vals32: Vec<f32> = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.1,
            1e-5,
            1e-4,
            9.99999e-5,
            0.0001,
            123456.0,
            999999.0,
            999999.5,
            1e6,
            1e7,
            9_999_999.0,
            f32::MAX,
            f32::MIN_POSITIVE,
            1e-45,
            3.4e38,
            0.333_333_34,
            100000.0,
            1234567.0,
            0.000_123_456_7,
        ];
        let mut vals64: Vec<f64> = vec![
            0.0,
            -0.0,
            0.1,
            1.0 / 3.0,
            1e-300,
            5e-324,
            f64::MAX,
            1e16,
            1e17,
            123456789012345680.0,
            0.000_099_999_999_999_999_99,
            1e-5,
            999_999.5,
        ];
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            vals32.push(f32::from_bits(x as u32));
            vals64.push(f64::from_bits(x));
            // Short decimals (few significant digits), the common case in replies.
            vals32.push(((x % 2_000_001) as f32 - 1e6) / 10f32.powi((x >> 40) as i32 % 12));
        }
        for v in vals32 {
            assert_eq!(
                dec(v as f64, true),
                reference_decimal(v as f64, true),
                "{v:e}"
            );
        }
        for v in vals64 {
            assert_eq!(dec(v, false), reference_decimal(v, false), "{v:e}");
        }
    }

    fn dec(v: f64, f32_: bool) -> String {
        let mut s = String::new();
        write_decimal(&mut s, v, f32_);
        s
    }

    /// The examples of serving-facts §4 (json_tensor.cc `WriteDecimal`).
    #[test]
    fn write_decimal_matches_tf_examples() {
        assert_eq!(dec(3.0, true), "3.0");
        assert_eq!(dec(0.5, true), "0.5");
        assert_eq!(dec(9_000_000.0, true), "9e+06");
        assert_eq!(dec(0.00003f32 as f64, true), "3e-05");
        assert_eq!(dec(555_557.5, true), "555557.5");
        assert_eq!(dec(f64::NAN, true), "NaN");
        assert_eq!(dec(f64::NEG_INFINITY, false), "-Infinity");
        assert_eq!(dec(0.1, false), "0.1");
        assert_eq!(dec(1.0 / 3.0, false), "0.33333333333333331");
        assert_eq!(dec((1.0f32 / 3.0) as f64, true), "0.333333343");
    }

    fn spec(key: &str, dtype: DType) -> TensorSpec {
        TensorSpec {
            key: key.into(),
            tensor: format!("{key}:0"),
            dtype,
            shape: None,
        }
    }

    const LIM: DecodeLimits = DecodeLimits { max_elements: 1000 };

    #[test]
    fn row_and_columnar_shapes() {
        let x = [spec("x", DType::F32)];
        let b = parse_predict(br#"{"instances": [[1, 2], [3, 4]]}"#).unwrap();
        let t = decode_inputs(&b, &x, LIM).unwrap();
        assert_eq!(t[0].1.shape(), &[2, 2]);
        let b = parse_predict(br#"{"inputs": 5}"#).unwrap();
        assert_eq!(
            decode_inputs(&b, &x, LIM).unwrap()[0].1.shape(),
            &[] as &[usize]
        );
        let b = parse_predict(br#"{"instances": [[1, 2], [3]]}"#).unwrap();
        let e = decode_inputs(&b, &x, LIM).unwrap_err();
        assert!(
            e.msg.starts_with("Failed to process element: 1"),
            "{}",
            e.msg
        );
        let s = [spec("s", DType::String)];
        let b = parse_predict(br#"{"instances": [{"b64": "aGVsbG8="}, "x"]}"#).unwrap();
        let t = decode_inputs(&b, &s, LIM).unwrap();
        assert_eq!(t[0].1.as_slice::<Bytes>().unwrap()[0].as_ref(), b"hello");
        let b = parse_predict(br#"{"instances": [[1.5]]}"#).unwrap();
        let e = decode_inputs(&b, &[spec("i", DType::I32)], LIM).unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument);
        let e = decode_inputs(&b, &[spec("h", DType::F16)], LIM).unwrap_err();
        assert_eq!(e.code, Code::Unimplemented);
        let b = parse_predict(br#"{"instances": [[1, 2, 3, 4]]}"#).unwrap();
        let small = DecodeLimits { max_elements: 3 };
        assert_eq!(
            decode_inputs(&b, &x, small).unwrap_err().code,
            Code::ResourceExhausted
        );
    }

    /// The dense decoder takes exactly the dense bodies, and gives what the general one does.
    #[test]
    fn dense_decoder_matches_general_one() {
        let x = [spec("x", DType::F32)];
        let dense = [
            r#"{"instances": [[1, 2.5], [-3, 4e-3]]}"#,
            r#"{"signature_name": "s", "inputs": [[[0.1]], [[7]]], "other": {"a": [1]}}"#,
            r#"{"inputs": 5}"#,
            r#"{"instances": [1, 2, 3]}"#,
            r#"{"instances": [18446744073709551615, -9223372036854775808, 1e300]}"#,
        ];
        for b in dense {
            let d = parse_predict_dense(b.as_bytes(), 1000).unwrap_or_else(|| panic!("dense: {b}"));
            let fast = d.into_inputs(&x, LIM).unwrap();
            let slow = decode_inputs(&parse_predict(b.as_bytes()).unwrap(), &x, LIM).unwrap();
            assert_eq!(fast[0].1.shape(), slow[0].1.shape(), "{b}");
            assert_eq!(
                fast[0].1.as_slice::<f32>().unwrap(),
                slow[0].1.as_slice::<f32>().unwrap(),
                "{b}"
            );
        }
        let general = [
            r#"{"instances": [[1, 2], [3]]}"#,
            r#"{"instances": [[1, 2], 3]}"#,
            r#"{"instances": [[1, [2]], [3, 4]]}"#,
            r#"{"instances": []}"#,
            r#"{"instances": [[]]}"#,
            r#"{"instances": 5}"#,
            r#"{"instances": [{"x": 1}]}"#,
            r#"{"instances": ["a"]}"#,
            r#"{"instances": [1], "inputs": [1]}"#,
            r#"{"instances": [1], "instances": [2]}"#,
            r#"{"signature_name": 3, "instances": [1]}"#,
            r#"{"instances": [1]} x"#,
            r#"{"instances": [1, 2, 3, 4, 5]}"#,
            r#"[1]"#,
            r#"{}"#,
        ];
        for b in general {
            assert!(parse_predict_dense(b.as_bytes(), 4).is_none(), "{b}");
        }
    }

    #[test]
    fn replies_follow_tf_layout() {
        let mut o = BTreeMap::new();
        o.insert(
            "p".to_string(),
            Tensor::from_vec(&[2, 2], vec![0.25f32, 0.75, 0.5, 0.5]).unwrap(),
        );
        assert_eq!(
            encode_outputs(&o, Format::Row).unwrap(),
            "{\"predictions\": [[0.25, 0.75], [0.5, 0.5]]}"
        );
        assert_eq!(
            encode_outputs(&o, Format::Columnar).unwrap(),
            "{\"outputs\": [[0.25, 0.75], [0.5, 0.5]]}"
        );
        o.insert(
            "k_bytes".to_string(),
            Tensor::from_vec(
                &[2],
                vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")],
            )
            .unwrap(),
        );
        assert_eq!(
            encode_outputs(&o, Format::Row).unwrap(),
            "{\"predictions\": [{\"k_bytes\": {\"b64\": \"YQ==\"}, \"p\": [0.25, 0.75]}, \
             {\"k_bytes\": {\"b64\": \"Yg==\"}, \"p\": [0.5, 0.5]}]}"
        );
    }
}

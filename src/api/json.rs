//! The JSON tensor contract shared by fixtures, `tfhub run` and tools:
//! inputs are nested lists (`{"name": [[1, 2], [3, 4]]}`), outputs are
//! `{"dtype": "float32", "shape": [2, 2], "values": [flat row-major]}`.
//! Strings are UTF-8 JSON strings; bytes that are not UTF-8 are written as `{"b64": "..."}`
//! and read back the same way, so they survive untouched. Complex elements are `[re, im]`
//! pairs (one extra innermost level in inputs; one pair per value in outputs).

use base64::Engine;
use half::{bf16, f16};
use serde_json::{json, Value};

use crate::tensor::{Bytes, Complex32, Complex64, DType, Tensor};

/// Why JSON could not become a tensor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JsonTensorError {
    /// Nested lists are ragged.
    #[error("ragged nested list: {0}")]
    Ragged(String),
    /// A value does not fit the dtype.
    #[error("value {value} is not a valid {dtype}")]
    Value {
        /// The value, as JSON.
        value: String,
        /// The dtype asked for.
        dtype: DType,
    },
    /// The dtype cannot be given as JSON.
    #[error("dtype {0} cannot be read from JSON")]
    DType(DType),
    /// Too deeply nested or too large.
    #[error("input too large or too deeply nested")]
    TooLarge,
}

fn shape_of(v: &Value, depth: usize) -> Result<Vec<usize>, JsonTensorError> {
    if depth > 32 {
        return Err(JsonTensorError::TooLarge);
    }
    match v {
        Value::Array(items) => {
            let mut s = vec![items.len()];
            if let Some(first) = items.first() {
                let inner = shape_of(first, depth + 1)?;
                for it in &items[1..] {
                    if shape_of(it, depth + 1)? != inner {
                        return Err(JsonTensorError::Ragged(format!(
                            "sub-lists of different shapes at depth {depth}"
                        )));
                    }
                }
                s.extend(inner);
            }
            Ok(s)
        }
        _ => Ok(Vec::new()),
    }
}

fn flatten<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Array(items) if !is_b64(v) => items.iter().for_each(|i| flatten(i, out)),
        other => out.push(other),
    }
}

fn is_b64(v: &Value) -> bool {
    matches!(v, Value::Object(m) if m.contains_key("b64"))
}

fn bad(v: &Value, dtype: DType) -> JsonTensorError {
    JsonTensorError::Value {
        value: v.to_string(),
        dtype,
    }
}

/// Builds a tensor of `dtype` from a nested JSON list (or a scalar).
///
/// # Errors
/// Ragged lists, values outside the dtype's range, unsupported dtypes.
pub fn tensor_from_json(v: &Value, dtype: DType) -> Result<Tensor, JsonTensorError> {
    if matches!(dtype, DType::C64 | DType::C128) {
        return complex_from_json(v, dtype);
    }
    let shape = shape_of(v, 0)?;
    let mut flat = Vec::new();
    flatten(v, &mut flat);
    macro_rules! nums {
        ($t:ty, $get:expr) => {{
            let vals = flat
                .iter()
                .map(|x| $get(x).ok_or_else(|| bad(x, dtype)))
                .collect::<Result<Vec<$t>, _>>()?;
            Tensor::from_vec(&shape, vals)
        }};
    }
    let f = |x: &Value| x.as_f64();
    let i = |x: &Value| x.as_i64();
    let t = match dtype {
        DType::F32 => nums!(f32, |x| f(x).map(|v| v as f32)),
        DType::F64 => nums!(f64, f),
        DType::F16 => nums!(f16, |x| f(x).map(f16::from_f64)),
        DType::BF16 => nums!(bf16, |x| f(x).map(bf16::from_f64)),
        DType::I8 => nums!(i8, |x| i(x).and_then(|v| i8::try_from(v).ok())),
        DType::I16 => nums!(i16, |x| i(x).and_then(|v| i16::try_from(v).ok())),
        DType::I32 => nums!(i32, |x| i(x).and_then(|v| i32::try_from(v).ok())),
        DType::I64 => nums!(i64, i),
        DType::U8 => nums!(u8, |x| i(x).and_then(|v| u8::try_from(v).ok())),
        DType::U16 => nums!(u16, |x| i(x).and_then(|v| u16::try_from(v).ok())),
        DType::U32 => nums!(u32, |x| i(x).and_then(|v| u32::try_from(v).ok())),
        DType::U64 => nums!(u64, |x: &Value| x.as_u64()),
        DType::Bool => nums!(bool, |x: &Value| x.as_bool()),
        DType::String => nums!(Bytes, |x: &Value| match x {
            Value::String(s) => Some(Bytes::copy_from_slice(s.as_bytes())),
            Value::Object(m) => m
                .get("b64")
                .and_then(Value::as_str)
                .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
                .map(Bytes::from),
            _ => None,
        }),
        other => return Err(JsonTensorError::DType(other)),
    };
    t.map_err(|_| JsonTensorError::Ragged("element count does not match shape".into()))
}

/// Complex tensors: each element is a `[re, im]` pair, so the nested list has one more
/// level (of size 2) than the tensor's rank. TF Serving has no JSON form for complex; this is
/// the form `tensor_to_json` writes.
fn complex_from_json(v: &Value, dtype: DType) -> Result<Tensor, JsonTensorError> {
    let mut shape = shape_of(v, 0)?;
    if shape.pop() != Some(2) {
        return Err(bad(v, dtype));
    }
    let mut flat = Vec::new();
    flatten(v, &mut flat);
    let parts = flat
        .iter()
        .map(|x| x.as_f64().ok_or_else(|| bad(x, dtype)))
        .collect::<Result<Vec<f64>, _>>()?;
    let t = if dtype == DType::C64 {
        let c = parts.chunks_exact(2);
        Tensor::from_vec(
            &shape,
            c.map(|p| Complex32::new(p[0] as f32, p[1] as f32))
                .collect(),
        )
    } else {
        let c = parts.chunks_exact(2);
        Tensor::from_vec(&shape, c.map(|p| Complex64::new(p[0], p[1])).collect())
    };
    t.map_err(|_| JsonTensorError::Ragged("element count does not match shape".into()))
}

/// A string element as JSON: a string if UTF-8, else `{"b64": ...}`.
pub fn bytes_to_json(b: &[u8]) -> Value {
    match std::str::from_utf8(b) {
        Ok(s) => Value::String(s.to_string()),
        Err(_) => json!({"b64": base64::engine::general_purpose::STANDARD.encode(b)}),
    }
}

/// `{"dtype", "shape", "values"}` for a tensor (resource/variant values are their names).
pub fn tensor_to_json(t: &Tensor) -> Value {
    use crate::tensor::Data;
    let values: Vec<Value> = match t.data() {
        Data::F32(b) => b.iter().map(|&v| float(v as f64)).collect(),
        Data::F64(b) => b.iter().map(|&v| float(v)).collect(),
        Data::F16(b) => b.iter().map(|v| float(v.to_f64())).collect(),
        Data::BF16(b) => b.iter().map(|v| float(v.to_f64())).collect(),
        Data::Bool(b) => b.iter().map(|&v| json!(v)).collect(),
        Data::C64(b) => b
            .iter()
            .map(|v| json!([float(v.re as f64), float(v.im as f64)]))
            .collect(),
        Data::C128(b) => b
            .iter()
            .map(|v| json!([float(v.re), float(v.im)]))
            .collect(),
        Data::String(b) => b.iter().map(|v| bytes_to_json(v)).collect(),
        Data::Resource(b) | Data::Variant(b) => b.iter().map(|h| json!(&*h.name)).collect(),
        Data::I8(b) => b.iter().map(|v| json!(v)).collect(),
        Data::I16(b) => b.iter().map(|v| json!(v)).collect(),
        Data::I32(b) => b.iter().map(|v| json!(v)).collect(),
        Data::I64(b) => b.iter().map(|v| json!(v)).collect(),
        Data::U8(b) => b.iter().map(|v| json!(v)).collect(),
        Data::U16(b) => b.iter().map(|v| json!(v)).collect(),
        Data::U32(b) => b.iter().map(|v| json!(v)).collect(),
        Data::U64(b) => b.iter().map(|v| json!(v)).collect(),
    };
    json!({"dtype": t.dtype().name(), "shape": t.shape(), "values": values})
}

fn float(v: f64) -> Value {
    if v.is_finite() {
        json!(v)
    } else if v.is_nan() {
        json!("nan")
    } else if v > 0.0 {
        json!("inf")
    } else {
        json!("-inf")
    }
}

/// Deepest JSON nesting [`value_from_json`] accepts.
const MAX_VALUE_DEPTH: usize = 32;

/// A function argument from JSON (the `tfhub run --function` contract): a list stays a list
/// (converted to a tensor of the expected dtype where the function expects a tensor, as TF
/// converts Python lists), an object with `row_splits` is a ragged tensor
/// `{"values": [...], "row_splits": [[outer...], ..., [inner...]], "dtype"?: "int64",
/// "row_splits_dtype"?: "int64"}` (dtype defaults: int64 for integers, float32 for numbers,
/// string for strings, bool for booleans), any other object a dict, `null` None, and numbers,
/// strings and booleans Python constants.
///
/// # Errors
/// [`JsonTensorError`] for bad ragged values, unknown dtypes, or nesting deeper than 32.
pub fn value_from_json(v: &Value) -> Result<crate::api::Value, JsonTensorError> {
    value_at(v, 0)
}

fn value_at(v: &Value, depth: usize) -> Result<crate::api::Value, JsonTensorError> {
    use crate::api::Value as V;
    if depth > MAX_VALUE_DEPTH {
        return Err(JsonTensorError::TooLarge);
    }
    Ok(match v {
        Value::Null => V::None,
        Value::Bool(b) => V::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => V::Int(i),
            None => V::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => V::Str(s.clone()),
        Value::Array(items) => V::List(
            items
                .iter()
                .map(|x| value_at(x, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(m) if m.contains_key("row_splits") => V::Ragged(ragged_from_json(v)?),
        Value::Object(m) if m.contains_key("b64") => {
            return Err(JsonTensorError::Ragged(
                "a {\"b64\": ...} value must sit inside a list given for a tensor".into(),
            ))
        }
        Value::Object(m) => V::Dict(
            m.iter()
                .map(|(k, x)| Ok((k.clone(), value_at(x, depth + 1)?)))
                .collect::<Result<_, JsonTensorError>>()?,
        ),
    })
}

fn dtype_named(v: Option<&Value>, default: DType) -> Result<DType, JsonTensorError> {
    match v.and_then(Value::as_str) {
        None => Ok(default),
        Some(n) => DType::from_name(n).ok_or_else(|| JsonTensorError::Value {
            value: n.to_string(),
            dtype: default,
        }),
    }
}

fn ragged_from_json(v: &Value) -> Result<crate::api::RaggedTensor, JsonTensorError> {
    let bad = |what: &str| JsonTensorError::Ragged(format!("ragged value: {what}"));
    let values = v.get("values").ok_or_else(|| bad("missing \"values\""))?;
    let mut leaf = values;
    while let Value::Array(a) = leaf {
        match a.first() {
            Some(x) => leaf = x,
            None => break,
        }
    }
    let guess = match leaf {
        Value::String(_) => DType::String,
        Value::Bool(_) => DType::Bool,
        Value::Number(n) if n.is_f64() => DType::F32,
        _ => DType::I64,
    };
    let dtype = dtype_named(v.get("dtype"), guess)?;
    let splits_dtype = dtype_named(v.get("row_splits_dtype"), DType::I64)?;
    let flat_values = tensor_from_json(values, dtype)?;
    let Some(Value::Array(splits)) = v.get("row_splits") else {
        return Err(bad("\"row_splits\" must be a list of lists"));
    };
    if splits.is_empty() {
        return Err(bad("\"row_splits\" is empty (ragged_rank must be >= 1)"));
    }
    let row_splits = splits
        .iter()
        .map(|s| match s {
            Value::Array(_) => tensor_from_json(s, splits_dtype),
            _ => Err(bad("each row_splits entry must be a list")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(crate::api::RaggedTensor {
        flat_values,
        row_splits,
    })
}

/// A function result as JSON (the `tfhub run --function` output): at top level a single
/// tensor or ragged tensor is `{"output_0": ...}`, a tuple or list `{"output_<i>": ...}`, a dict
/// keyed as it is; a tensor is `{"dtype", "shape", "values"}`, a ragged tensor `{"dtype",
/// "values", "row_splits": [outer, ..., inner]}`, None `null`.
pub fn result_to_json(v: &crate::api::Value) -> Value {
    use crate::api::Value as V;
    match v {
        V::Tensor(_) | V::Ragged(_) => json!({"output_0": value_to_json(v)}),
        other => value_to_json(other),
    }
}

/// One value as JSON (see [`result_to_json`]).
pub fn value_to_json(v: &crate::api::Value) -> Value {
    use crate::api::Value as V;
    match v {
        V::Tensor(t) => tensor_to_json(t),
        V::Ragged(r) => {
            let flat = tensor_to_json(&r.flat_values);
            let splits: Vec<Value> = r
                .row_splits
                .iter()
                .map(|s| tensor_to_json(s)["values"].clone())
                .collect();
            json!({"dtype": flat["dtype"], "values": flat["values"], "row_splits": splits})
        }
        V::List(items) | V::Tuple(items) => Value::Object(
            items
                .iter()
                .enumerate()
                .map(|(i, x)| (format!("output_{i}"), value_to_json(x)))
                .collect(),
        ),
        V::Dict(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), value_to_json(x)))
                .collect(),
        ),
        V::None => Value::Null,
        V::Bool(b) => json!(b),
        V::Int(i) => json!(i),
        V::Float(x) => float(*x),
        V::Str(s) => json!(s),
    }
}

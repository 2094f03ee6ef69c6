//! `StructuredValue` (TF's `nested_structure_coder`): the input and output structures of
//! object-graph functions, decoded into [`Spec`], and the [`Value`]s callers pass and get back.
//! Owns TF's `nest` rules: flattening order (dict keys sorted bytewise, namedtuples in field
//! order), composite components (a RaggedTensor is `flat_values` then its row_splits, outer
//! first), matching a call against a concrete function's input structure
//! (`function_deserialization.py::_concrete_function_callable_with`) and repacking outputs.

use std::collections::BTreeMap;
use std::fmt;

use crate::proto::structured_value::Kind;
use crate::proto::type_spec_proto::TypeSpecClass;
use crate::proto::{StructuredValue, TensorShapeProto};
use crate::tensor::{DType, Tensor};

/// Deepest structure decoded or matched; deeper ones are refused (never a stack overflow).
pub(crate) const MAX_NESTING: usize = 64;

/// A decoded `StructuredValue`.
#[derive(Debug, Clone, PartialEq)]
pub enum Spec {
    /// Python `None`.
    None,
    /// A Python bool constant.
    Bool(bool),
    /// A Python int constant.
    Int(i64),
    /// A Python float constant.
    Float(f64),
    /// A Python str constant.
    Str(String),
    /// `tf.TensorSpec` (also `BoundedTensorSpec`).
    Tensor(TensorSpec),
    /// `tf.RaggedTensorSpec`.
    Ragged(RaggedSpec),
    /// A Python list.
    List(Vec<Spec>),
    /// A Python tuple.
    Tuple(Vec<Spec>),
    /// A dict (keys sorted bytewise, as `nest` flattens them).
    Dict(Vec<(String, Spec)>),
    /// A namedtuple: class name and (field, value) in declaration order.
    NamedTuple(String, Vec<(String, Spec)>),
}

/// A dense tensor's spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    /// Element type.
    pub dtype: DType,
    /// Dims (`-1` unknown); `None` for unknown rank.
    pub shape: Option<Vec<i64>>,
    /// The spec's name (empty when none).
    pub name: String,
}

/// A `RaggedTensorSpec` (`ragged_rank >= 1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaggedSpec {
    /// Element type of `flat_values`.
    pub dtype: DType,
    /// The full (logical) shape; `None` for unknown rank.
    pub shape: Option<Vec<i64>>,
    /// Number of ragged dimensions (row_splits tensors).
    pub ragged_rank: usize,
    /// `int32` or `int64`.
    pub row_splits_dtype: DType,
}

/// Why a `StructuredValue` could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(pub String);

fn shape_of(s: Option<&TensorShapeProto>) -> Option<Vec<i64>> {
    match s {
        None => Some(Vec::new()),
        Some(s) if s.unknown_rank => None,
        Some(s) => Some(s.dim.iter().map(|d| d.size).collect()),
    }
}

fn dtype_of(v: i32) -> Result<DType, SpecError> {
    DType::from_proto(v).ok_or_else(|| SpecError(format!("unsupported dtype enum {v}")))
}

impl Spec {
    /// Decodes `v`, refusing what tfhub cannot call by name (SparseTensorSpec, TensorArraySpec,
    /// dataset, variable and extension type specs, ...).
    ///
    /// # Errors
    /// [`SpecError`] naming the unsupported kind, or nesting deeper than [`MAX_NESTING`].
    pub fn decode(v: &StructuredValue) -> Result<Spec, SpecError> {
        Spec::decode_at(v, 0)
    }

    fn decode_at(v: &StructuredValue, depth: usize) -> Result<Spec, SpecError> {
        if depth > MAX_NESTING {
            return Err(SpecError(format!(
                "structure nested deeper than {MAX_NESTING} levels"
            )));
        }
        let list = |vals: &[StructuredValue]| -> Result<Vec<Spec>, SpecError> {
            vals.iter().map(|x| Spec::decode_at(x, depth + 1)).collect()
        };
        Ok(match &v.kind {
            None | Some(Kind::NoneValue(_)) => Spec::None,
            Some(Kind::BoolValue(b)) => Spec::Bool(*b),
            Some(Kind::Int64Value(i)) => Spec::Int(*i),
            Some(Kind::Float64Value(f)) => Spec::Float(*f),
            Some(Kind::StringValue(s)) => Spec::Str(s.clone()),
            Some(Kind::TensorSpecValue(t)) => Spec::Tensor(TensorSpec {
                dtype: dtype_of(t.dtype)?,
                shape: shape_of(t.shape.as_ref()),
                name: t.name.clone(),
            }),
            Some(Kind::BoundedTensorSpecValue(t)) => Spec::Tensor(TensorSpec {
                dtype: dtype_of(t.dtype)?,
                shape: shape_of(t.shape.as_ref()),
                name: t.name.clone(),
            }),
            Some(Kind::TypeSpecValue(ts)) => decode_type_spec(ts, depth)?,
            Some(Kind::ListValue(l)) => Spec::List(list(&l.values)?),
            Some(Kind::TupleValue(l)) => Spec::Tuple(list(&l.values)?),
            Some(Kind::DictValue(d)) => {
                // BTreeMap iterates keys in bytewise order: Python's `sorted` on str keys.
                let mut fields = Vec::with_capacity(d.fields.len());
                for (k, x) in &d.fields {
                    fields.push((k.clone(), Spec::decode_at(x, depth + 1)?));
                }
                Spec::Dict(fields)
            }
            Some(Kind::NamedTupleValue(n)) => {
                let mut fields = Vec::with_capacity(n.values.len());
                for p in &n.values {
                    let x = match &p.value {
                        Some(x) => Spec::decode_at(x, depth + 1)?,
                        None => Spec::None,
                    };
                    fields.push((p.key.clone(), x));
                }
                Spec::NamedTuple(n.name.clone(), fields)
            }
            Some(Kind::TensorShapeValue(_)) => return Err(SpecError("TensorShape value".into())),
            Some(Kind::TensorDtypeValue(_)) => return Err(SpecError("DType value".into())),
            Some(Kind::TensorValue(_)) | Some(Kind::NumpyValue(_)) => {
                return Err(SpecError("tensor or numpy constant argument".into()))
            }
        })
    }

    /// Number of flat tensors this structure has under `expand_composites=True`.
    pub fn num_flat(&self) -> usize {
        let mut n = 0;
        self.walk(&mut |s| match s {
            Spec::Tensor(_) => n += 1,
            Spec::Ragged(r) => n += 1 + r.ragged_rank,
            _ => {}
        });
        n
    }

    /// Visits every node, containers before their items (iteratively).
    fn walk(&self, f: &mut impl FnMut(&Spec)) {
        let mut stack = vec![self];
        while let Some(s) = stack.pop() {
            f(s);
            match s {
                Spec::List(v) | Spec::Tuple(v) => stack.extend(v.iter().rev()),
                Spec::Dict(v) | Spec::NamedTuple(_, v) => {
                    stack.extend(v.iter().rev().map(|x| &x.1))
                }
                _ => {}
            }
        }
    }

    /// The flat component specs (dtype, shape) in `expand_composites` order.
    pub fn flat_components(&self) -> Vec<(DType, Option<Vec<i64>>)> {
        let mut out = Vec::new();
        self.walk(&mut |s| match s {
            Spec::Tensor(t) => out.push((t.dtype, t.shape.clone())),
            Spec::Ragged(r) => {
                let inner = r.shape.as_ref().map(|s| {
                    let mut v = vec![-1];
                    v.extend(s.iter().skip(r.ragged_rank + 1));
                    v
                });
                out.push((r.dtype, inner));
                let outer = r
                    .shape
                    .as_ref()
                    .and_then(|s| s.first().copied())
                    .map_or(-1, |d| if d < 0 { -1 } else { d + 1 });
                out.push((r.row_splits_dtype, Some(vec![outer])));
                for _ in 1..r.ragged_rank {
                    out.push((r.row_splits_dtype, Some(vec![-1])));
                }
            }
            _ => {}
        });
        out
    }
}

fn decode_type_spec(ts: &crate::proto::TypeSpecProto, depth: usize) -> Result<Spec, SpecError> {
    let class = TypeSpecClass::try_from(ts.type_spec_class).unwrap_or(TypeSpecClass::Unknown);
    if class != TypeSpecClass::RaggedTensorSpec {
        let name = if ts.type_spec_class_name.is_empty() {
            class.as_str_name().to_string()
        } else {
            ts.type_spec_class_name.clone()
        };
        return Err(SpecError(format!(
            "composite argument type {name} is not supported (only RaggedTensorSpec)"
        )));
    }
    let state = ts
        .type_state
        .as_ref()
        .map(|s| Spec::decode_state(s, depth + 1))
        .transpose()?
        .ok_or_else(|| SpecError("RaggedTensorSpec without state".into()))?;
    Ok(Spec::Ragged(state))
}

impl Spec {
    /// `RaggedTensorSpec._serialize()`: `(shape, dtype, ragged_rank, row_splits_dtype
    /// [, flat_values_spec])`.
    fn decode_state(v: &StructuredValue, depth: usize) -> Result<RaggedSpec, SpecError> {
        let bad = || SpecError("malformed RaggedTensorSpec state".into());
        let Some(Kind::TupleValue(t)) = &v.kind else {
            return Err(bad());
        };
        if depth > MAX_NESTING || t.values.len() < 4 {
            return Err(bad());
        }
        let shape = match &t.values[0].kind {
            Some(Kind::TensorShapeValue(s)) => shape_of(Some(s)),
            _ => return Err(bad()),
        };
        let dtype = match &t.values[1].kind {
            Some(Kind::TensorDtypeValue(d)) => dtype_of(*d)?,
            _ => return Err(bad()),
        };
        let ragged_rank = match &t.values[2].kind {
            Some(Kind::Int64Value(r)) => *r,
            _ => return Err(bad()),
        };
        let row_splits_dtype = match &t.values[3].kind {
            Some(Kind::TensorDtypeValue(d)) => dtype_of(*d)?,
            _ => return Err(bad()),
        };
        if t.values.len() > 4 && !matches!(t.values[4].kind, None | Some(Kind::NoneValue(_))) {
            return Err(SpecError(
                "RaggedTensorSpec with a flat_values_spec is not supported".into(),
            ));
        }
        if !(1..=MAX_NESTING as i64).contains(&ragged_rank) {
            return Err(SpecError(format!(
                "RaggedTensorSpec with ragged_rank {ragged_rank} is not supported (needs >= 1)"
            )));
        }
        if !matches!(row_splits_dtype, DType::I32 | DType::I64) {
            return Err(bad());
        }
        Ok(RaggedSpec {
            dtype,
            shape,
            ragged_rank: ragged_rank as usize,
            row_splits_dtype,
        })
    }
}

fn fmt_shape(s: &Option<Vec<i64>>) -> String {
    match s {
        None => "<unknown>".into(),
        Some(d) => {
            let v: Vec<String> = d
                .iter()
                .map(|&x| if x < 0 { "None".into() } else { x.to_string() })
                .collect();
            if v.len() == 1 {
                format!("({},)", v[0])
            } else {
                format!("({})", v.join(", "))
            }
        }
    }
}

impl fmt::Display for Spec {
    /// Python-like text, as TF prints concrete signatures.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Spec::None => write!(f, "None"),
            Spec::Bool(b) => write!(f, "{}", if *b { "True" } else { "False" }),
            Spec::Int(i) => write!(f, "{i}"),
            Spec::Float(x) => write!(f, "{x:?}"),
            Spec::Str(s) => write!(f, "{s:?}"),
            Spec::Tensor(t) => write!(
                f,
                "TensorSpec(shape={}, dtype=tf.{}, name={})",
                fmt_shape(&t.shape),
                t.dtype.name(),
                if t.name.is_empty() {
                    "None".to_string()
                } else {
                    format!("'{}'", t.name)
                }
            ),
            Spec::Ragged(r) => write!(
                f,
                "RaggedTensorSpec(TensorShape({}), tf.{}, {}, tf.{})",
                fmt_shape(&r.shape),
                r.dtype.name(),
                r.ragged_rank,
                r.row_splits_dtype.name()
            ),
            Spec::List(v) | Spec::Tuple(v) => {
                let (o, c) = if matches!(self, Spec::List(_)) {
                    ("[", "]")
                } else {
                    ("(", ")")
                };
                write!(f, "{o}")?;
                for (i, x) in v.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{x}")?;
                }
                write!(f, "{c}")
            }
            Spec::Dict(v) => {
                write!(f, "{{")?;
                for (i, (k, x)) in v.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "'{k}': {x}")?;
                }
                write!(f, "}}")
            }
            Spec::NamedTuple(n, v) => {
                write!(f, "{n}(")?;
                for (i, (k, x)) in v.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{k}={x}")?;
                }
                write!(f, ")")
            }
        }
    }
}

/// A `tf.RaggedTensor`: `flat_values` and its `row_splits`, outermost first.
#[derive(Debug, Clone)]
pub struct RaggedTensor {
    /// The values of the innermost rows, concatenated.
    pub flat_values: Tensor,
    /// One row_splits vector per ragged dimension, outermost first.
    pub row_splits: Vec<Tensor>,
}

/// A function argument or result: tensors, ragged tensors, containers and Python constants.
#[derive(Debug, Clone)]
pub enum Value {
    /// A dense tensor.
    Tensor(Tensor),
    /// A ragged tensor.
    Ragged(RaggedTensor),
    /// A list (also accepted where a tuple was saved, as JSON has no tuples). Where the
    /// function expects a tensor, a list of numbers, strings or bools is converted with the
    /// expected dtype, as TF converts Python lists.
    List(Vec<Value>),
    /// A tuple.
    Tuple(Vec<Value>),
    /// A dict (or a namedtuple's fields by name).
    Dict(BTreeMap<String, Value>),
    /// Python `None`.
    None,
    /// A bool constant (`training=False`).
    Bool(bool),
    /// An int constant (`seq_length=128`).
    Int(i64),
    /// A float constant.
    Float(f64),
    /// A string constant.
    Str(String),
}

impl From<Tensor> for Value {
    fn from(t: Tensor) -> Value {
        Value::Tensor(t)
    }
}

impl From<RaggedTensor> for Value {
    fn from(t: RaggedTensor) -> Value {
        Value::Ragged(t)
    }
}

impl Value {
    /// Short description for error messages (`Tensor(float32, [2, 4])`, `16`, `[...]`).
    pub fn describe(&self) -> String {
        match self {
            Value::Tensor(t) => format!("Tensor(dtype={}, shape={:?})", t.dtype(), t.shape()),
            Value::Ragged(r) => format!(
                "RaggedTensor(dtype={}, ragged_rank={})",
                r.flat_values.dtype(),
                r.row_splits.len()
            ),
            Value::List(v) => format!("list of {}", v.len()),
            Value::Tuple(v) => format!("tuple of {}", v.len()),
            Value::Dict(m) => format!(
                "dict with keys [{}]",
                m.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
            Value::None => "None".into(),
            Value::Bool(b) => if *b { "True" } else { "False" }.into(),
            Value::Int(i) => i.to_string(),
            Value::Float(x) => format!("{x:?}"),
            Value::Str(s) => format!("{s:?}"),
        }
    }

    /// The tensor, if this is one.
    pub fn as_tensor(&self) -> Option<&Tensor> {
        match self {
            Value::Tensor(t) => Some(t),
            _ => None,
        }
    }

    /// Python-like values (scalars and lists of them) as JSON, for conversion to a tensor.
    fn to_json(&self, depth: usize) -> Option<serde_json::Value> {
        if depth > 32 {
            return None;
        }
        Some(match self {
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Float(x) => serde_json::Value::from(*x),
            Value::Str(s) => serde_json::Value::String(s.clone()),
            Value::List(v) | Value::Tuple(v) => serde_json::Value::Array(
                v.iter()
                    .map(|x| x.to_json(depth + 1))
                    .collect::<Option<Vec<_>>>()?,
            ),
            _ => return None,
        })
    }
}

fn shape_ok(want: &Option<Vec<i64>>, got: &[usize]) -> bool {
    match want {
        None => true,
        Some(d) => {
            d.len() == got.len() && d.iter().zip(got).all(|(&w, &g)| w < 0 || w as usize == g)
        }
    }
}

/// Python `==` between a saved constant and an argument (`32.0 == 32`, `1 == True`).
fn const_eq(spec: &Spec, v: &Value) -> bool {
    let num = |v: &Value| match v {
        Value::Bool(b) => Some(*b as i64 as f64),
        Value::Int(i) => Some(*i as f64),
        Value::Float(x) => Some(*x),
        _ => None,
    };
    match (spec, v) {
        (Spec::None, Value::None) => true,
        (Spec::Str(a), Value::Str(b)) => a == b,
        (Spec::Int(a), Value::Int(b)) => a == b,
        (Spec::Bool(a), Value::Bool(b)) => a == b,
        (Spec::Bool(_) | Spec::Int(_) | Spec::Float(_), _) => {
            let s = match spec {
                Spec::Bool(b) => *b as i64 as f64,
                Spec::Int(i) => *i as f64,
                Spec::Float(x) => *x,
                _ => unreachable!("matched above"),
            };
            num(v) == Some(s)
        }
        _ => false,
    }
}

/// Flattens `value` along `spec` into the function's flat tensor inputs, or says why the
/// candidate does not accept it. `convert` is TF's second pass: Python values (lists, numbers)
/// in tensor positions become tensors of the expected dtype.
pub(crate) fn flatten(
    spec: &Spec,
    value: &Value,
    convert: bool,
    out: &mut Vec<Tensor>,
) -> Result<(), String> {
    // Iterative: (spec, value, path) pairs still to visit, in flattening order.
    let mut stack: Vec<(&Spec, &Value, usize)> = vec![(spec, value, 0)];
    while let Some((s, v, depth)) = stack.pop() {
        if depth > MAX_NESTING {
            return Err("argument nested too deeply".into());
        }
        match (s, v) {
            (Spec::Tensor(ts), Value::Tensor(t)) => {
                if t.dtype() != ts.dtype {
                    return Err(format!(
                        "expected {} got {}",
                        Spec::Tensor(ts.clone()),
                        v.describe()
                    ));
                }
                if !shape_ok(&ts.shape, t.shape()) {
                    return Err(format!(
                        "expected {} got {}",
                        Spec::Tensor(ts.clone()),
                        v.describe()
                    ));
                }
                out.push(t.clone());
            }
            (Spec::Tensor(ts), other) if convert => {
                let j = other
                    .to_json(0)
                    .ok_or_else(|| format!("expected {s} got {}", other.describe()))?;
                let t = crate::api::json::tensor_from_json(&j, ts.dtype)
                    .map_err(|e| format!("cannot convert to {s}: {e}"))?;
                if !shape_ok(&ts.shape, t.shape()) {
                    return Err(format!("expected {s} got shape {:?}", t.shape()));
                }
                out.push(t);
            }
            (Spec::Ragged(rs), Value::Ragged(r)) => {
                let bad = || format!("expected {s} got {}", v.describe());
                if r.flat_values.dtype() != rs.dtype || r.row_splits.len() != rs.ragged_rank {
                    return Err(bad());
                }
                if r.row_splits
                    .iter()
                    .any(|t| t.dtype() != rs.row_splits_dtype || t.rank() != 1)
                {
                    return Err(bad());
                }
                if let Some(dims) = &rs.shape {
                    let nrows = r.row_splits[0].shape()[0].saturating_sub(1);
                    let ok = dims.len() > rs.ragged_rank
                        && (dims[0] < 0 || dims[0] as usize == nrows)
                        && r.flat_values.rank() == dims.len() - rs.ragged_rank
                        && dims[rs.ragged_rank + 1..]
                            .iter()
                            .zip(r.flat_values.shape().iter().skip(1))
                            .all(|(&w, &g)| w < 0 || w as usize == g);
                    if !ok {
                        return Err(bad());
                    }
                }
                out.push(r.flat_values.clone());
                out.extend(r.row_splits.iter().cloned());
            }
            (Spec::List(ss) | Spec::Tuple(ss), Value::List(vs) | Value::Tuple(vs)) => {
                if ss.len() != vs.len() {
                    return Err(format!(
                        "expected a sequence of {} got {}",
                        ss.len(),
                        v.describe()
                    ));
                }
                for (a, b) in ss.iter().zip(vs).rev() {
                    stack.push((a, b, depth + 1));
                }
            }
            (Spec::Dict(fields) | Spec::NamedTuple(_, fields), Value::Dict(m)) => {
                let same = fields.len() == m.len() && fields.iter().all(|(k, _)| m.contains_key(k));
                if !same {
                    return Err(format!(
                        "expected keys [{}] got {}",
                        fields
                            .iter()
                            .map(|f| f.0.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        v.describe()
                    ));
                }
                for (k, a) in fields.iter().rev() {
                    stack.push((a, &m[k], depth + 1));
                }
            }
            (Spec::None | Spec::Bool(_) | Spec::Int(_) | Spec::Float(_) | Spec::Str(_), _) => {
                if !const_eq(s, v) {
                    return Err(format!("expected {s} got {}", v.describe()));
                }
            }
            _ => return Err(format!("expected {s} got {}", v.describe())),
        }
    }
    Ok(())
}

/// Rebuilds the output structure from the function's flat outputs (TF's
/// `pack_sequence_as(..., expand_composites=True)`): dicts take outputs in sorted-key order,
/// a None leaf takes none, a ragged spec takes `1 + ragged_rank`.
pub(crate) fn pack(spec: &Spec, flat: Vec<Tensor>) -> Result<Value, String> {
    let mut it = flat.into_iter();
    let v = pack_at(spec, &mut it, 0)?;
    if it.next().is_some() {
        return Err("the function returned more outputs than its output signature".into());
    }
    Ok(v)
}

fn pack_at(
    spec: &Spec,
    it: &mut impl Iterator<Item = Tensor>,
    depth: usize,
) -> Result<Value, String> {
    // Depth is capped by decoding (MAX_NESTING), so this recursion is bounded.
    if depth > MAX_NESTING {
        return Err("output structure nested too deeply".into());
    }
    let mut next = || {
        it.next().ok_or_else(|| {
            "the function returned fewer outputs than its output signature".to_string()
        })
    };
    Ok(match spec {
        Spec::Tensor(_) => Value::Tensor(next()?),
        Spec::Ragged(r) => {
            let flat_values = next()?;
            let mut row_splits = Vec::with_capacity(r.ragged_rank);
            for _ in 0..r.ragged_rank {
                row_splits.push(next()?);
            }
            Value::Ragged(RaggedTensor {
                flat_values,
                row_splits,
            })
        }
        Spec::None => Value::None,
        Spec::Bool(b) => Value::Bool(*b),
        Spec::Int(i) => Value::Int(*i),
        Spec::Float(x) => Value::Float(*x),
        Spec::Str(s) => Value::Str(s.clone()),
        Spec::List(v) => Value::List(
            v.iter()
                .map(|s| pack_at(s, it, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Spec::Tuple(v) => Value::Tuple(
            v.iter()
                .map(|s| pack_at(s, it, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Spec::Dict(v) | Spec::NamedTuple(_, v) => {
            let mut m = BTreeMap::new();
            for (k, s) in v {
                m.insert(k.clone(), pack_at(s, it, depth + 1)?);
            }
            Value::Dict(m)
        }
    })
}

//! [`BuildCtx`]: what a builder sees of its node, and the typed attribute readers every op
//! family uses (missing or ill-typed attributes become [`OpError::Attr`]).

use std::collections::BTreeMap;
use std::fmt;

use std::sync::Arc;

use super::{Callable, FunctionResolver, OpError};
use crate::proto::{attr_value, AttrValue};
use crate::saved_model::tensor_proto::tensor_from_proto;
use crate::tensor::{DType, Tensor};

/// What a builder sees of its node.
pub struct BuildCtx<'a> {
    /// Node name.
    pub node: &'a str,
    /// Op type.
    pub op: &'a str,
    /// Attributes, with defaults from the op's `OpDef` filled in.
    pub attrs: &'a BTreeMap<String, AttrValue>,
    /// Number of data inputs.
    pub num_inputs: usize,
    /// Name of the function the node is in ("" for the top-level graph).
    pub scope: &'a str,
    /// Largest constant (elements) a `Const` may hold.
    pub max_const_elements: usize,
    pub(crate) functions: &'a mut dyn FunctionResolver,
}

impl fmt::Debug for BuildCtx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BuildCtx({} {})", self.op, self.node)
    }
}

fn attr_err(name: &str, what: impl fmt::Display) -> OpError {
    OpError::Attr {
        name: name.to_string(),
        what: what.to_string(),
    }
}

impl BuildCtx<'_> {
    fn value(&self, name: &str) -> Option<&attr_value::Value> {
        self.attrs.get(name).and_then(|a| a.value.as_ref())
    }
    fn required<T>(&self, name: &str, v: Option<T>, kind: &str) -> Result<T, OpError> {
        match (v, self.attrs.contains_key(name)) {
            (Some(v), _) => Ok(v),
            (None, false) => Err(attr_err(name, "missing")),
            (None, true) => Err(attr_err(name, format!("expected {kind}"))),
        }
    }
    /// Integer attribute, if present.
    pub fn attr_opt_i64(&self, name: &str) -> Option<i64> {
        match self.value(name) {
            Some(attr_value::Value::I(i)) => Some(*i),
            _ => None,
        }
    }
    /// Integer attribute.
    pub fn attr_i64(&self, name: &str) -> Result<i64, OpError> {
        self.required(name, self.attr_opt_i64(name), "int")
    }
    /// Non-negative integer attribute as `usize`.
    pub fn attr_usize(&self, name: &str) -> Result<usize, OpError> {
        let v = self.attr_i64(name)?;
        usize::try_from(v).map_err(|_| attr_err(name, format!("{v} is negative")))
    }
    /// Float attribute, if present.
    pub fn attr_opt_f32(&self, name: &str) -> Option<f32> {
        match self.value(name) {
            Some(attr_value::Value::F(f)) => Some(*f),
            _ => None,
        }
    }
    /// Float attribute.
    pub fn attr_f32(&self, name: &str) -> Result<f32, OpError> {
        self.required(name, self.attr_opt_f32(name), "float")
    }
    /// Bool attribute, if present.
    pub fn attr_opt_bool(&self, name: &str) -> Option<bool> {
        match self.value(name) {
            Some(attr_value::Value::B(b)) => Some(*b),
            _ => None,
        }
    }
    /// Bool attribute.
    pub fn attr_bool(&self, name: &str) -> Result<bool, OpError> {
        self.required(name, self.attr_opt_bool(name), "bool")
    }
    /// String attribute (lossy UTF-8), if present.
    pub fn attr_opt_str(&self, name: &str) -> Option<String> {
        self.attr_opt_bytes(name)
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }
    /// String attribute as bytes, if present.
    pub fn attr_opt_bytes(&self, name: &str) -> Option<&[u8]> {
        match self.value(name) {
            Some(attr_value::Value::S(s)) => Some(s),
            _ => None,
        }
    }
    /// String attribute.
    pub fn attr_str(&self, name: &str) -> Result<String, OpError> {
        self.required(name, self.attr_opt_str(name), "string")
    }
    /// Dtype attribute, if present.
    pub fn attr_opt_type(&self, name: &str) -> Result<Option<DType>, OpError> {
        match self.value(name) {
            Some(attr_value::Value::Type(t)) => DType::from_proto(*t)
                .map(Some)
                .ok_or_else(|| attr_err(name, format!("unsupported dtype enum {t}"))),
            _ => Ok(None),
        }
    }
    /// Dtype attribute.
    pub fn attr_type(&self, name: &str) -> Result<DType, OpError> {
        let v = self.attr_opt_type(name)?;
        self.required(name, v, "type")
    }
    /// List-of-int attribute (empty if absent).
    pub fn attr_list_i64(&self, name: &str) -> Vec<i64> {
        match self.value(name) {
            Some(attr_value::Value::List(l)) => l.i.clone(),
            _ => Vec::new(),
        }
    }
    /// List-of-float attribute (empty if absent).
    pub fn attr_list_f32(&self, name: &str) -> Vec<f32> {
        match self.value(name) {
            Some(attr_value::Value::List(l)) => l.f.clone(),
            _ => Vec::new(),
        }
    }
    /// List-of-dtype attribute (empty if absent).
    pub fn attr_list_type(&self, name: &str) -> Result<Vec<DType>, OpError> {
        match self.value(name) {
            Some(attr_value::Value::List(l)) => l
                .r#type
                .iter()
                .map(|&t| {
                    DType::from_proto(t)
                        .ok_or_else(|| attr_err(name, format!("unsupported dtype enum {t}")))
                })
                .collect(),
            _ => Ok(Vec::new()),
        }
    }
    /// List-of-string attribute (empty if absent).
    pub fn attr_list_str(&self, name: &str) -> Vec<String> {
        match self.value(name) {
            Some(attr_value::Value::List(l)) => {
                l.s.iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect()
            }
            _ => Vec::new(),
        }
    }
    /// Tensor attribute, decoded and size-checked.
    pub fn attr_tensor(&self, name: &str) -> Result<Tensor, OpError> {
        match self.value(name) {
            Some(attr_value::Value::Tensor(t)) => {
                Ok(tensor_from_proto(t, self.max_const_elements)?)
            }
            Some(_) => Err(attr_err(name, "expected tensor")),
            None => Err(attr_err(name, "missing")),
        }
    }
    /// Shape attribute as dims (`None` = unknown rank; `-1` = unknown dim), if present.
    pub fn attr_opt_shape(&self, name: &str) -> Option<Option<Vec<i64>>> {
        match self.value(name) {
            Some(attr_value::Value::Shape(s)) => {
                Some((!s.unknown_rank).then(|| s.dim.iter().map(|d| d.size).collect()))
            }
            _ => None,
        }
    }
    /// Function attribute: the function's name.
    pub fn attr_func(&self, name: &str) -> Result<String, OpError> {
        match self.value(name) {
            Some(attr_value::Value::Func(f)) => Ok(f.name.clone()),
            Some(_) => Err(attr_err(name, "expected func")),
            None => Err(attr_err(name, "missing")),
        }
    }
    /// List-of-function attribute (e.g. `Case` branches).
    pub fn attr_list_func(&self, name: &str) -> Result<Vec<String>, OpError> {
        match self.value(name) {
            Some(attr_value::Value::List(l)) => Ok(l.func.iter().map(|f| f.name.clone()).collect()),
            _ => Err(attr_err(name, "expected list(func)")),
        }
    }
    /// The compiled function `name`.
    pub fn function(&mut self, name: &str) -> Result<Arc<dyn Callable>, OpError> {
        self.functions.function(name)
    }
    /// Checks the data-input count.
    pub fn expect_inputs(&self, n: usize) -> Result<(), OpError> {
        if self.num_inputs != n {
            return Err(OpError::Arity {
                expected: n,
                got: self.num_inputs,
            });
        }
        Ok(())
    }
    /// A resource key for a stateful op: `container/shared_name`, or the node's own identity
    /// when `shared_name` is empty (TF then makes the resource private to the kernel).
    pub fn resource_key(&self) -> String {
        resource_key(self.attrs, self.scope, self.node)
    }
}

/// The resource key [`BuildCtx::resource_key`] gives a node with these attributes.
pub(crate) fn resource_key(attrs: &BTreeMap<String, AttrValue>, scope: &str, node: &str) -> String {
    let s = |name: &str| match attrs.get(name).and_then(|a| a.value.as_ref()) {
        Some(attr_value::Value::S(b)) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    };
    let (container, shared) = (s("container"), s("shared_name"));
    if shared.is_empty() {
        format!("{container}/@{scope}/{node}")
    } else {
        format!("{container}/{shared}")
    }
}

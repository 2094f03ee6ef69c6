//! Reference variables: `VariableV2`/`Variable`, `Assign`, `AssignAdd`, `AssignSub`,
//! `IsVariableInitialized`. TF reference: core/kernels/{variable_ops,assign_op.h,
//! dense_update_ops}.cc.

use std::sync::RwLock;

use crate::ops::{take_inputs, BuildCtx, EvalCtx, Op, OpError, Tensors};
use crate::tensor::{DType, Data, Handle, Tensor};

/// A TF1 variable: declared dtype and shape, and a value once assigned.
#[derive(Debug)]
pub(crate) struct RefVar {
    dtype: DType,
    /// Declared shape, if fully defined (what `validate_shape` checks against).
    shape: Option<Vec<usize>>,
    value: RwLock<Option<Tensor>>,
}

fn var_of(t: &Tensor) -> Result<(&Handle, &RefVar), OpError> {
    let h = match t.data() {
        Data::Resource(b) if b.len() == 1 => &b[0],
        _ => return Err(OpError::dtype(0, "a reference variable", t.dtype())),
    };
    let v = h
        .value
        .downcast_ref::<RefVar>()
        .ok_or_else(|| OpError::Resource {
            name: h.name.to_string(),
            what: "is not a reference variable".into(),
        })?;
    Ok((h, v))
}

/// The current value of the variable behind `h`.
pub(super) fn read(h: &Handle) -> Result<Tensor, OpError> {
    let v = h
        .value
        .downcast_ref::<RefVar>()
        .ok_or_else(|| OpError::Resource {
            name: h.name.to_string(),
            what: "is not a reference variable".into(),
        })?;
    let g = v.value.read().unwrap_or_else(|e| e.into_inner());
    g.clone().ok_or_else(|| OpError::Resource {
        name: h.name.to_string(),
        // TF: "Attempting to use uninitialized value <name>".
        what: "attempting to use uninitialized value (was the variable restored?)".into(),
    })
}

/// `VariableV2` / `Variable`: the variable `container/shared_name` (the node name when
/// `shared_name` is empty, as TF's `VariableOp` does), created on first evaluation.
#[derive(Debug)]
pub(super) struct VariableV2 {
    key: String,
    dtype: DType,
    shape: Option<Vec<usize>>,
}

impl VariableV2 {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        let container = cx.attr_opt_str("container").unwrap_or_default();
        let shared = cx.attr_opt_str("shared_name").unwrap_or_default();
        let name = if shared.is_empty() {
            cx.node.to_string()
        } else {
            shared
        };
        let shape = match cx.attr_opt_shape("shape") {
            Some(Some(dims)) => dims
                .iter()
                .map(|&d| usize::try_from(d).ok())
                .collect::<Option<Vec<usize>>>(),
            _ => None,
        };
        Ok(Box::new(VariableV2 {
            key: format!("ref-variable:{container}/{name}"),
            dtype: cx.attr_type("dtype")?,
            shape,
        }))
    }
}

impl Op for VariableV2 {
    fn eval(&self, cx: &mut EvalCtx<'_>, _: Tensors) -> Result<Tensors, OpError> {
        let h = cx.session.resource(&self.key, || RefVar {
            dtype: self.dtype,
            shape: self.shape.clone(),
            value: RwLock::new(None),
        })?;
        let v = h
            .value
            .downcast_ref::<RefVar>()
            .expect("resource made as RefVar");
        if v.dtype != self.dtype {
            return Err(OpError::Resource {
                name: self.key.clone(),
                what: format!("exists as {} but is declared {}", v.dtype, self.dtype),
            });
        }
        Ok(tensors![Tensor::handles(&[], vec![h], DType::Resource)?])
    }
    fn is_stateful(&self) -> bool {
        true
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Set,
    Add,
    Sub,
}

/// `Assign(ref, value)` (with `validate_shape`), `AssignAdd`, `AssignSub`: update the
/// variable and output the ref.
#[derive(Debug)]
pub(super) struct Assign {
    kind: Kind,
    validate_shape: bool,
}

impl Assign {
    pub(super) fn build(cx: &mut BuildCtx<'_>, kind: Kind) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(2)?;
        Ok(Box::new(Assign {
            kind,
            validate_shape: cx.attr_opt_bool("validate_shape").unwrap_or(true),
        }))
    }
}

impl Op for Assign {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [r, value] = take_inputs(inputs)?;
        let (h, var) = var_of(&r)?;
        if value.dtype() != var.dtype {
            return Err(OpError::dtype(1, var.dtype.name(), value.dtype()));
        }
        let mut g = var.value.write().unwrap_or_else(|e| e.into_inner());
        let new = match (self.kind, g.take()) {
            (Kind::Set, old) => {
                // assign_op.h: with validate_shape the new value must have the variable's
                // shape (the declared one until the first assignment).
                let want = old
                    .as_ref()
                    .map(|t| t.shape().to_vec())
                    .or(var.shape.clone());
                if self.validate_shape {
                    if let Some(want) = want {
                        if want != value.shape() {
                            *g = old;
                            return Err(OpError::shape(format!(
                                "Assign requires shapes of both tensors to match. lhs shape= \
                                 {want:?} rhs shape= {:?}",
                                value.shape()
                            )));
                        }
                    }
                }
                value
            }
            (_, None) => {
                return Err(OpError::Resource {
                    name: h.name.to_string(),
                    what: "attempting to use uninitialized value".into(),
                })
            }
            (k, Some(old)) => match update(old.clone(), &value, k) {
                Ok(t) => t,
                Err(e) => {
                    *g = Some(old);
                    return Err(e);
                }
            },
        };
        *g = Some(new);
        drop(g);
        Ok(tensors![r])
    }
    fn is_stateful(&self) -> bool {
        true
    }
}

/// `old += d` or `old -= d` (dense_update_ops.cc: same shape required).
fn update(mut old: Tensor, d: &Tensor, k: Kind) -> Result<Tensor, OpError> {
    if old.shape() != d.shape() {
        return Err(OpError::shape(format!(
            "lhs shape {:?} and rhs shape {:?} differ",
            old.shape(),
            d.shape()
        )));
    }
    macro_rules! upd {
        ($t:ty) => {{
            let v = d.as_slice::<$t>()?;
            for (o, &x) in old.as_mut_slice::<$t>()?.iter_mut().zip(v) {
                *o = if k == Kind::Add { *o + x } else { *o - x };
            }
        }};
    }
    match d.dtype() {
        DType::F32 => upd!(f32),
        DType::F64 => upd!(f64),
        DType::I32 => {
            let v = d.as_slice::<i32>()?;
            for (o, &x) in old.as_mut_slice::<i32>()?.iter_mut().zip(v) {
                *o = if k == Kind::Add {
                    o.wrapping_add(x)
                } else {
                    o.wrapping_sub(x)
                };
            }
        }
        DType::I64 => {
            let v = d.as_slice::<i64>()?;
            for (o, &x) in old.as_mut_slice::<i64>()?.iter_mut().zip(v) {
                *o = if k == Kind::Add {
                    o.wrapping_add(x)
                } else {
                    o.wrapping_sub(x)
                };
            }
        }
        dt => return Err(OpError::dtype(1, "float, double, int32 or int64", dt)),
    }
    Ok(old)
}

/// `IsVariableInitialized(ref)`: whether the variable has been assigned.
#[derive(Debug)]
pub(super) struct IsInitialized;

impl IsInitialized {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(1)?;
        Ok(Box::new(IsInitialized))
    }
}

impl Op for IsInitialized {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [r] = take_inputs(inputs)?;
        let (_, var) = var_of(&r)?;
        let init = var.value.read().map(|g| g.is_some()).unwrap_or(false);
        Ok(tensors![Tensor::scalar(init)])
    }
    fn is_stateful(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{Limits, Session};
    use std::path::PathBuf;

    fn var(s: &Session, dims: &[i64]) -> Tensor {
        let op = VariableV2 {
            key: "ref-variable:/v".into(),
            dtype: DType::F32,
            shape: Some(dims.iter().map(|&d| d as usize).collect()),
        };
        let mut cx = EvalCtx::new(s);
        op.eval(&mut cx, tensors![]).unwrap().remove(0)
    }

    #[test]
    fn assign_then_add_then_read() {
        let s = Session::new(PathBuf::new(), None, Limits::default());
        let v = var(&s, &[2]);
        let mut cx = EvalCtx::new(&s);
        let init = IsInitialized.eval(&mut cx, tensors![v.clone()]).unwrap();
        assert!(!init[0].scalar_value::<bool>().unwrap());
        assert!(super::super::deref(v.clone()).is_err());
        let set = Assign {
            kind: Kind::Set,
            validate_shape: true,
        };
        let bad = Tensor::from_vec(&[3], vec![1f32, 2., 3.]).unwrap();
        assert!(set.eval(&mut cx, tensors![v.clone(), bad]).is_err());
        let x = Tensor::from_vec(&[2], vec![1f32, 2.]).unwrap();
        set.eval(&mut cx, tensors![v.clone(), x.clone()]).unwrap();
        let add = Assign {
            kind: Kind::Add,
            validate_shape: true,
        };
        let r = add.eval(&mut cx, tensors![v.clone(), x]).unwrap().remove(0);
        let got = super::super::deref(r).unwrap();
        assert_eq!(got.as_slice::<f32>().unwrap(), &[2., 4.]);
        let init = IsInitialized.eval(&mut cx, tensors![v]).unwrap();
        assert!(init[0].scalar_value::<bool>().unwrap());
    }
}

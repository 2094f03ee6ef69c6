//! Resource variables and checkpoint restore: `VarHandleOp`, `ReadVariableOp`,
//! `AssignVariableOp` (+ `AssignAdd`/`AssignSub`), `VarIsInitializedOp`, `ResourceGather`,
//! `RestoreV2`. TF reference: core/kernels/{resource_variable_ops,save_restore_v2_ops}.cc.
//!
//! `RestoreV2` reads only from the model's own checkpoint (opened at load, confined to the
//! model directory); a graph asking for any other prefix is refused.

use std::sync::RwLock;

use super::{take_inputs, BuildCtx, EvalCtx, Op, OpError, Registry};
use crate::ops::Tensors;
use crate::tensor::{Bytes, DType, Handle, Tensor};

pub(crate) fn register(r: &mut Registry) {
    r.add("AssignAddVariableOp", |cx| {
        Assign::build(cx, AssignKind::Add)
    });
    r.add("AssignSubVariableOp", |cx| {
        Assign::build(cx, AssignKind::Sub)
    });
    r.add("AssignVariableOp", |cx| Assign::build(cx, AssignKind::Set));
    r.add("DestroyResourceOp", Destroy::build);
    r.add("ReadVariableOp", Read::build);
    r.add("ResourceGather", ResourceGather::build);
    r.add("RestoreV2", RestoreV2::build);
    r.add("VarHandleOp", VarHandle::build);
    r.add("VarIsInitializedOp", IsInitialized::build);
}

/// A resource variable's state.
#[derive(Debug, Default)]
pub(crate) struct Variable {
    value: RwLock<Option<Tensor>>,
}

impl Variable {
    /// A variable holding `value` (the loader restores object-graph variables this way).
    pub(crate) fn with_value(value: Tensor) -> Variable {
        Variable {
            value: RwLock::new(Some(value)),
        }
    }
}

fn variable(h: &Handle) -> Result<&Variable, OpError> {
    h.value
        .downcast_ref::<Variable>()
        .ok_or_else(|| OpError::Resource {
            name: h.name.to_string(),
            what: "is not a variable".into(),
        })
}

fn handle_of(t: &Tensor) -> Result<&Handle, OpError> {
    match t.data() {
        crate::tensor::Data::Resource(b) if b.len() == 1 => Ok(&b[0]),
        _ => Err(OpError::dtype(0, "a scalar resource handle", t.dtype())),
    }
}

pub(crate) fn read_variable(h: &Handle) -> Result<Tensor, OpError> {
    let v = variable(h)?;
    let g = v.value.read().map_err(|_| OpError::Resource {
        name: h.name.to_string(),
        what: "lock poisoned".into(),
    })?;
    g.clone().ok_or_else(|| OpError::Resource {
        name: h.name.to_string(),
        what: "read before it was initialized (was the variable restored?)".into(),
    })
}

/// The value of `h` if it is an initialized variable.
pub(crate) fn value_if_set(h: &Handle) -> Option<Tensor> {
    let v = h.value.downcast_ref::<Variable>()?;
    v.value.read().ok()?.clone()
}

/// `VarHandleOp`: the handle of variable `container/shared_name`, created on first use.
#[derive(Debug)]
struct VarHandle {
    key: String,
}

impl VarHandle {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(VarHandle {
            key: cx.resource_key(),
        }))
    }
}

impl Op for VarHandle {
    fn eval(&self, cx: &mut EvalCtx<'_>, _: Tensors) -> Result<Tensors, OpError> {
        let h = cx.session.resource(&self.key, Variable::default)?;
        Ok(tensors![Tensor::handles(&[], vec![h], DType::Resource)?])
    }
    fn is_stateful(&self) -> bool {
        true
    }
}

/// `ReadVariableOp`.
#[derive(Debug)]
struct Read {
    dtype: Option<DType>,
}

impl Read {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(Read {
            dtype: cx.attr_opt_type("dtype")?,
        }))
    }
}

impl Op for Read {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [h] = take_inputs(inputs)?;
        let h = handle_of(&h)?;
        let t = read_variable(h)?;
        if let Some(dt) = self.dtype {
            if dt != t.dtype() {
                return Err(OpError::Resource {
                    name: h.name.to_string(),
                    what: format!("holds {} but is read as {dt}", t.dtype()),
                });
            }
        }
        Ok(tensors![t])
    }
    fn is_stateful(&self) -> bool {
        true
    }
}

#[derive(Debug, Clone, Copy)]
enum AssignKind {
    Set,
    Add,
    Sub,
}

/// `AssignVariableOp`, `AssignAddVariableOp`, `AssignSubVariableOp`.
#[derive(Debug)]
struct Assign {
    kind: AssignKind,
}

impl Assign {
    fn build(_: &mut BuildCtx<'_>, kind: AssignKind) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(Assign { kind }))
    }
}

impl Op for Assign {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [h, value] = take_inputs(inputs)?;
        let h = handle_of(&h)?;
        let var = variable(h)?;
        let mut g = var.value.write().map_err(|_| OpError::Resource {
            name: h.name.to_string(),
            what: "lock poisoned".into(),
        })?;
        let new = match (self.kind, g.take()) {
            (AssignKind::Set, _) => value,
            (k, Some(old)) => {
                if old.shape() != value.shape() || old.dtype() != value.dtype() {
                    return Err(OpError::shape("update does not match the variable"));
                }
                let mut out = old;
                macro_rules! upd {
                    ($t:ty) => {{
                        let v = value.as_slice::<$t>()?.to_vec();
                        for (o, d) in out.as_mut_slice::<$t>()?.iter_mut().zip(v) {
                            *o = match k {
                                AssignKind::Add => *o + d,
                                _ => *o - d,
                            };
                        }
                    }};
                }
                match value.dtype() {
                    DType::F32 => upd!(f32),
                    DType::F64 => upd!(f64),
                    DType::I32 => upd!(i32),
                    DType::I64 => upd!(i64),
                    dt => return Err(OpError::dtype(1, "float or int", dt)),
                }
                out
            }
            (_, None) => {
                return Err(OpError::Resource {
                    name: h.name.to_string(),
                    what: "updated before it was initialized".into(),
                })
            }
        };
        *g = Some(new);
        Ok(Tensors::new())
    }
    fn is_stateful(&self) -> bool {
        true
    }
}

/// `VarIsInitializedOp`.
#[derive(Debug)]
struct IsInitialized;

impl IsInitialized {
    fn build(_: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(IsInitialized))
    }
}

impl Op for IsInitialized {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [h] = take_inputs(inputs)?;
        let var = variable(handle_of(&h)?)?;
        let init = var.value.read().map(|g| g.is_some()).unwrap_or(false);
        Ok(tensors![Tensor::scalar(init)])
    }
    fn is_stateful(&self) -> bool {
        true
    }
}

/// `DestroyResourceOp`: resources live as long as the model; nothing to do.
#[derive(Debug)]
struct Destroy;

impl Destroy {
    fn build(_: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(Destroy))
    }
}

impl Op for Destroy {
    fn eval(&self, _: &mut EvalCtx<'_>, _: Tensors) -> Result<Tensors, OpError> {
        Ok(Tensors::new())
    }
    fn is_stateful(&self) -> bool {
        true
    }
}

/// `ResourceGather`: rows of a variable (Keras `Embedding`), `batch_dims` = 0 only.
#[derive(Debug)]
struct ResourceGather;

impl ResourceGather {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        if cx.attr_opt_i64("batch_dims").unwrap_or(0) != 0 {
            return Err(OpError::Unimplemented(
                "ResourceGather with batch_dims != 0".into(),
            ));
        }
        Ok(Box::new(ResourceGather))
    }
}

impl Op for ResourceGather {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [h, indices] = take_inputs(inputs)?;
        let params = read_variable(handle_of(&h)?)?;
        Ok(tensors![super::array::gather(cx, &params, &indices, 0)?])
    }
    fn is_stateful(&self) -> bool {
        true
    }
}

/// `RestoreV2`: reads tensors from the model's own checkpoint.
#[derive(Debug)]
struct RestoreV2 {
    dtypes: Vec<DType>,
}

impl RestoreV2 {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(RestoreV2 {
            dtypes: cx.attr_list_type("dtypes")?,
        }))
    }
}

impl Op for RestoreV2 {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [prefix, names, slices] = take_inputs(inputs)?;
        let prefix = prefix.scalar_value::<Bytes>()?;
        let reader = cx
            .session
            .checkpoint
            .as_ref()
            .ok_or_else(|| OpError::Refused("the model has no variables checkpoint".into()))?;
        // Only the prefix tfhub itself fed (the model's own checkpoint) may be read.
        let own = reader.index_path().with_extension("");
        if std::path::Path::new(&*String::from_utf8_lossy(&prefix)) != own {
            return Err(OpError::Refused(format!(
                "RestoreV2 prefix {:?} is not the model's own checkpoint",
                String::from_utf8_lossy(&prefix)
            )));
        }
        let names = names.as_slice::<Bytes>()?;
        let slices = slices.as_slice::<Bytes>()?;
        if names.len() != self.dtypes.len() || slices.len() != names.len() {
            return Err(OpError::invalid(format!(
                "{} names, {} slices, {} dtypes",
                names.len(),
                slices.len(),
                self.dtypes.len()
            )));
        }
        let mut out = Vec::with_capacity(names.len());
        for ((name, slice), &dt) in names.iter().zip(slices).zip(&self.dtypes) {
            if !slice.is_empty() {
                return Err(OpError::Unimplemented(format!(
                    "RestoreV2 of a slice ({:?})",
                    String::from_utf8_lossy(slice)
                )));
            }
            let key = String::from_utf8_lossy(name);
            let t = crate::saved_model::checkpoint_tensor(reader, &key)?;
            if t.dtype() != dt {
                return Err(OpError::invalid(format!(
                    "checkpoint tensor {key:?} is {} but {dt} was asked for",
                    t.dtype()
                )));
            }
            out.push(t);
        }
        Ok(out.into())
    }
    fn is_stateful(&self) -> bool {
        true
    }
}

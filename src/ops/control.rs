//! Graph plumbing and functional control flow: `Const`, `Placeholder`, `Identity`, `NoOp`, `Assert`,
//! function calls (`PartitionedCall`, `StatefulPartitionedCall`, direct calls), `If`, `While`,
//! `Case`. TF reference: core/kernels/{constant_op,identity_op,function_ops,functional_ops}.cc.

use std::sync::Arc;

use super::{BuildCtx, Callable, EvalCtx, Op, OpError, Registry};
use crate::ops::Tensors;
use crate::tensor::{DType, Data, Tensor};

pub(crate) fn register(r: &mut Registry) {
    r.add("Assert", Assert::build);
    r.add("Case", Case::build);
    r.add("Const", Const::build);
    r.add("EnsureShape", Identity::build);
    r.add("HostConst", Const::build);
    r.add("Identity", Identity::build);
    r.add("IdentityN", Identity::build);
    r.add("If", If::build);
    r.add("NoOp", NoOp::build);
    r.add("PartitionedCall", Call::build);
    r.add("Placeholder", Placeholder::build);
    r.add("PlaceholderWithDefault", Identity::build);
    r.add("PreventGradient", Identity::build);
    r.add("Snapshot", Identity::build);
    r.add("StatefulPartitionedCall", Call::build);
    r.add("StatelessCase", Case::build);
    r.add("StatelessIf", If::build);
    r.add("StatelessWhile", While::build);
    r.add("StopGradient", Identity::build);
    r.add("While", While::build);
}

/// `Const`: a value decoded (and size-checked) once at load.
#[derive(Debug)]
struct Const(Tensor);

impl Const {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        let t = cx.attr_tensor("value")?;
        if let Some(dt) = cx.attr_opt_type("dtype")? {
            if dt != t.dtype() {
                return Err(OpError::Attr {
                    name: "value".into(),
                    what: format!("holds {} but dtype is {dt}", t.dtype()),
                });
            }
        }
        Ok(Box::new(Const(t)))
    }
}

impl Op for Const {
    fn eval(&self, _: &mut EvalCtx<'_>, _: Tensors) -> Result<Tensors, OpError> {
        Ok(tensors![self.0.clone()])
    }
    fn constant(&self) -> Option<&Tensor> {
        Some(&self.0)
    }
}

/// `Placeholder`: only valid when fed; reaching one at run time means a missing feed.
#[derive(Debug)]
struct Placeholder {
    node: String,
}

impl Placeholder {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(Placeholder {
            node: cx.node.to_string(),
        }))
    }
}

impl Op for Placeholder {
    fn eval(&self, _: &mut EvalCtx<'_>, _: Tensors) -> Result<Tensors, OpError> {
        Err(OpError::invalid(format!(
            "placeholder {:?} must be fed",
            self.node
        )))
    }
    fn is_stateful(&self) -> bool {
        true
    }
}

/// `Identity`, `IdentityN`, `StopGradient`, `Snapshot`, `PlaceholderWithDefault`,
/// `EnsureShape` (shape not re-checked): outputs are the inputs.
#[derive(Debug)]
struct Identity;

impl Identity {
    fn build(_: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(Identity))
    }
}

impl Op for Identity {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        Ok(inputs)
    }
}

/// `NoOp`: a target that only orders its control inputs.
#[derive(Debug)]
struct NoOp;

impl NoOp {
    fn build(_: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(NoOp))
    }
}

impl Op for NoOp {
    fn eval(&self, _: &mut EvalCtx<'_>, _: Tensors) -> Result<Tensors, OpError> {
        Ok(Tensors::new())
    }
    fn is_stateful(&self) -> bool {
        true
    }
}

/// `Assert(condition, data...)`: fails the run with TF's `InvalidArgument` text, "assertion
/// failed: " and the first `summarize` elements of each data tensor, when `condition` (a bool
/// scalar) is false. It has no outputs; graphs reach it through control dependencies, so it
/// is stateful (never pruned, never folded). TF reference: core/kernels/logging_ops.cc.
#[derive(Debug)]
struct Assert {
    summarize: usize,
}

impl Assert {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        let summarize = cx.attr_opt_i64("summarize").unwrap_or(3);
        // TF: a negative `summarize` prints every element.
        let summarize = usize::try_from(summarize).unwrap_or(usize::MAX);
        Ok(Box::new(Assert { summarize }))
    }
}

/// `[v0 v1 v2...]` as TF's `Tensor::SummarizeValue`, strings unquoted.
fn summarize(t: &Tensor, max: usize) -> String {
    fn list<T>(v: &[T], max: usize, f: impl Fn(&T) -> String) -> String {
        let mut parts: Vec<String> = v.iter().take(max).map(f).collect();
        if v.len() > max {
            parts.push("...".into());
        }
        parts.join(" ")
    }
    let body = match t.dtype() {
        DType::String => t
            .as_slice::<crate::tensor::Bytes>()
            .map(|v| list(v, max, |b| String::from_utf8_lossy(b).into_owned())),
        DType::Bool => t
            .as_slice::<bool>()
            .map(|v| list(v, max, |b| b.to_string())),
        DType::F32 => t.as_slice::<f32>().map(|v| list(v, max, |x| x.to_string())),
        DType::F64 => t.as_slice::<f64>().map(|v| list(v, max, |x| x.to_string())),
        DType::I32 => t.as_slice::<i32>().map(|v| list(v, max, |x| x.to_string())),
        DType::I64 => t.as_slice::<i64>().map(|v| list(v, max, |x| x.to_string())),
        d => return format!("<{d} tensor {:?}>", t.shape()),
    };
    match body {
        Ok(b) if t.rank() == 0 => b,
        Ok(b) => format!("[{b}]"),
        Err(_) => format!("<{} tensor {:?}>", t.dtype(), t.shape()),
    }
}

impl Op for Assert {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let Some(cond) = inputs.first() else {
            return Err(OpError::Arity {
                expected: 1,
                got: 0,
            });
        };
        if cond.dtype() != DType::Bool || cond.len() != 1 {
            return Err(OpError::invalid(format!(
                "In[0] (condition) must be a bool scalar, got {} {:?}",
                cond.dtype(),
                cond.shape()
            )));
        }
        if cond.as_slice::<bool>()?[0] {
            return Ok(Tensors::new());
        }
        let data: Vec<String> = inputs[1..]
            .iter()
            .map(|t| summarize(t, self.summarize))
            .collect();
        Err(OpError::invalid(format!(
            "assertion failed: {}",
            data.join(" ")
        )))
    }
    fn is_stateful(&self) -> bool {
        true
    }
}

/// `PartitionedCall`, `StatefulPartitionedCall`, and nodes whose op is a library function.
#[derive(Debug)]
struct Call {
    f: Arc<dyn Callable>,
}

impl Call {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        let name = cx.attr_func("f")?;
        let f = cx.function(&name)?;
        Ok(Box::new(Call { f }))
    }
}

/// A node whose op type names a library function.
pub(crate) fn direct_call(f: Arc<dyn Callable>) -> Box<dyn Op> {
    Box::new(Call { f })
}

impl Op for Call {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        self.f.call(cx, inputs)
    }
    fn is_stateful(&self) -> bool {
        true
    }
}

/// TF's truth value of a predicate tensor (`functional_ops.cc` `ToBool`): a scalar is true if
/// non-zero (non-empty for strings); any other tensor is true if it has elements.
fn truthy(t: &Tensor) -> Result<bool, OpError> {
    if t.rank() != 0 {
        return Ok(!t.is_empty());
    }
    Ok(match t.data() {
        Data::Bool(b) => b[0],
        Data::String(b) => !b[0].is_empty(),
        Data::F32(b) => b[0] != 0.0,
        Data::F64(b) => b[0] != 0.0,
        d => crate::match_numeric!(d, b => nonzero(&b[0]),
            _ => return Err(OpError::dtype(0, "a numeric, bool or string predicate", t.dtype()))),
    })
}

fn nonzero<T: Default + PartialEq>(v: &T) -> bool {
    *v != T::default()
}

/// `If` / `StatelessIf`: runs `then_branch` or `else_branch` on the remaining inputs.
#[derive(Debug)]
struct If {
    then_branch: Arc<dyn Callable>,
    else_branch: Arc<dyn Callable>,
}

impl If {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        let t = cx.attr_func("then_branch")?;
        let e = cx.attr_func("else_branch")?;
        Ok(Box::new(If {
            then_branch: cx.function(&t)?,
            else_branch: cx.function(&e)?,
        }))
    }
}

impl Op for If {
    fn eval(&self, cx: &mut EvalCtx<'_>, mut inputs: Tensors) -> Result<Tensors, OpError> {
        if inputs.is_empty() {
            return Err(OpError::Arity {
                expected: 1,
                got: 0,
            });
        }
        let cond = inputs.remove(0);
        if truthy(&cond)? {
            self.then_branch.call(cx, inputs)
        } else {
            self.else_branch.call(cx, inputs)
        }
    }
    fn is_stateful(&self) -> bool {
        true
    }
}

/// `Case` / `StatelessCase`: runs `branches[i]`; an out-of-range index runs the last branch
/// (TF's default-branch rule).
#[derive(Debug)]
struct Case {
    branches: Vec<Arc<dyn Callable>>,
}

impl Case {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        let names = cx.attr_list_func("branches")?;
        if names.is_empty() {
            return Err(OpError::Attr {
                name: "branches".into(),
                what: "empty".into(),
            });
        }
        let branches = names
            .iter()
            .map(|n| cx.function(n))
            .collect::<Result<_, _>>()?;
        Ok(Box::new(Case { branches }))
    }
}

impl Op for Case {
    fn eval(&self, cx: &mut EvalCtx<'_>, mut inputs: Tensors) -> Result<Tensors, OpError> {
        if inputs.is_empty() {
            return Err(OpError::Arity {
                expected: 1,
                got: 0,
            });
        }
        let idx = inputs.remove(0).scalar_value::<i32>()?;
        let last = self.branches.len() - 1;
        let i = usize::try_from(idx).map_or(last, |i| i.min(last));
        self.branches[i].call(cx, inputs)
    }
    fn is_stateful(&self) -> bool {
        true
    }
}

/// `While` / `StatelessWhile`: `while cond(vars): vars = body(vars)`, bounded by the
/// iteration cap so a loop that never ends returns an error.
#[derive(Debug)]
struct While {
    cond: Arc<dyn Callable>,
    body: Arc<dyn Callable>,
}

impl While {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        let c = cx.attr_func("cond")?;
        let b = cx.attr_func("body")?;
        Ok(Box::new(While {
            cond: cx.function(&c)?,
            body: cx.function(&b)?,
        }))
    }
}

impl Op for While {
    fn eval(&self, cx: &mut EvalCtx<'_>, mut vars: Tensors) -> Result<Tensors, OpError> {
        let cap = cx.limits().max_loop_iterations;
        let mut i = 0u64;
        loop {
            let c = self.cond.call(cx, vars.clone())?;
            let c = c
                .first()
                .ok_or_else(|| OpError::invalid("cond returned nothing"))?;
            if !truthy(c)? {
                return Ok(vars);
            }
            i += 1;
            // A body with no ops never reaches the executor's per-op time check.
            cx.limits().check_time()?;
            if i > cap {
                return Err(OpError::Limit(format!(
                    "While loop ran more than {cap} iterations"
                )));
            }
            let next = self.body.call(cx, vars)?;
            vars = next;
        }
    }
    fn is_stateful(&self) -> bool {
        true
    }
}

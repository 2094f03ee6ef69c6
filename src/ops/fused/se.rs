//! A squeeze-and-excitation gate applied straight into the next 1×1 convolution:
//! `project(Mul(x, s))`, `x` the `[n, h, w, c]` depthwise output of an EfficientNet block and
//! `s` its `[n, 1, 1, c]` gate (`sigmoid(dense(swish(dense(mean(x)))))`), built by the planner
//! (`graph::fuse::block::group_scaled`) when the `Mul`'s output is read only by the project
//! chain and the chain's filter is a constant. The broadcasting `Mul` alone wrote the whole
//! gated tensor back to memory for the convolution to read again; here
//! `tfhub_kernels::conv::scaled_pointwise_f32` scales bands of rows into a cache-resident
//! scratch the GEMM reads, bit-identical to the `Mul` then the chain (the product is the same
//! `f32` multiply, and each GEMM row does not depend on the rows computed with it).
//!
//! Per call the op checks that the fast path applies (`f32`, one operand `[n, h, w, c]` and
//! the other `[n, 1, 1, c]`, `[1, 1, 1, c]` or `[c]`, a 1×1 unit-stride unpadded convolution
//! with a packed filter, its tail a per-channel epilogue optionally ending in the residual
//! `Add` of a tensor of the output's shape); otherwise, or for any error, the `Mul` and the
//! chain run one after the other, so results and errors are those of the unfused graph.

use super::block::InvertedResidual;
use super::FusedChain;
use crate::ops::kernels::conv::{scaled_pointwise_f32, Pointwise, ScaledPointwise};
use crate::ops::kernels::epilogue::Epilogue;
use crate::ops::kernels::Isa;
use crate::ops::{EvalCtx, Op, OpError, Tensors};
use crate::tensor::{DType, Tensor};

/// The fused gate and projection. Inputs: the `Mul`'s two, then the project chain's after its
/// first (the gated value).
#[derive(Debug)]
pub(crate) struct ScaledProject {
    mul: Box<dyn Op>,
    project: FusedChain,
    /// Inputs of the project chain, the gated value included.
    n_project: usize,
}

impl ScaledProject {
    /// `project` (taking `n_project` inputs) reading `mul`'s output.
    pub(crate) fn new(mul: Box<dyn Op>, project: FusedChain, n_project: usize) -> ScaledProject {
        ScaledProject {
            mul,
            project,
            n_project,
        }
    }

    /// The `Mul` then the chain.
    fn eval_unfused(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensor, OpError> {
        if inputs.len() != 1 + self.n_project {
            return Err(OpError::Arity {
                expected: 1 + self.n_project,
                got: inputs.len(),
            });
        }
        let mut inputs = inputs.into_iter();
        let (a, b) = (inputs.next(), inputs.next());
        let (Some(a), Some(b)) = (a, b) else {
            return Err(OpError::invalid("fused gate is missing an operand"));
        };
        let x = self
            .mul
            .eval(cx, tensors![a, b])?
            .into_iter()
            .next()
            .ok_or_else(|| OpError::invalid("fused gate returned no output"))?;
        let mut ins = vec![x];
        ins.extend(inputs);
        self.project
            .eval(cx, ins.into())?
            .into_iter()
            .next()
            .ok_or_else(|| OpError::invalid("fused projection returned no output"))
    }

    /// The fused path, or `None` when it does not apply.
    fn eval_fused(&self, cx: &EvalCtx<'_>, inputs: &[Tensor]) -> Option<Tensor> {
        if inputs.len() != 1 + self.n_project {
            return None;
        }
        let (a, b) = (&inputs[0], &inputs[1]);
        let (x, s) = if a.rank() == 4 && a.len() >= b.len() {
            (a, b)
        } else {
            (b, a)
        };
        if x.dtype() != DType::F32 || s.dtype() != DType::F32 {
            return None;
        }
        let [n, h, w, c] = <[usize; 4]>::try_from(x.shape()).ok()?;
        let gate_ok = match s.shape() {
            [m, 1, 1, sc] => *sc == c && (*m == n || *m == 1),
            [sc] => *sc == c,
            _ => false,
        };
        if !gate_ok || h.checked_mul(w)? == 0 || n == 0 || c == 0 {
            return None;
        }
        let filter = inputs.get(2)?;
        let spec = self
            .project
            .head
            .epilogue_producer()?
            .conv_spec(cx, x.shape(), filter)?;
        let g = &spec.geom;
        let pointwise = !spec.depthwise
            && g.kernel == (1, 1)
            && g.strides == (1, 1)
            && g.pads == (0, 0)
            && g.output == (h, w);
        if !pointwise {
            return None;
        }
        let cout = spec.cout;
        let out_shape = [n, h, w, cout];
        let sides = inputs.get(3..)?;
        let factors = self.project.batch_norm_factors(sides, cout, 4)?;
        let parts =
            InvertedResidual::parts(&self.project, sides, &factors, cout, Some(&out_shape))?;
        let ep = Epilogue {
            ops: &parts.fe.ops,
            act: parts.fe.act,
        };
        let residual = match parts.residual {
            Some(r) => Some(r.as_slice::<f32>().ok()?),
            None => None,
        };
        let packed = spec.packed.clone()?;
        let sp = ScaledPointwise {
            conv: Pointwise {
                filter: &packed,
                ep: &ep,
            },
            scale: s.as_slice::<f32>().ok()?,
            pixels: h * w,
            residual,
        };
        let len = crate::tensor::num_elements(&out_shape)?;
        cx.limits().check_alloc(len, DType::F32).ok()?;
        // The kernel writes every element.
        let mut out = crate::tensor::pool::f32_for_overwrite(len);
        scaled_pointwise_f32(Isa::best(), &sp, x.as_slice::<f32>().ok()?, &mut out);
        Tensor::from_vec(&out_shape, out).ok()
    }
}

impl Op for ScaledProject {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        if let Some(t) = self.eval_fused(cx, &inputs) {
            return Ok(tensors![t]);
        }
        Ok(tensors![self.eval_unfused(cx, inputs)?])
    }

    fn profile_detail(&self, inputs: &[Tensor]) -> Option<String> {
        let (a, b) = (inputs.first()?, inputs.get(1)?);
        let x = if a.len() >= b.len() { a } else { b };
        let mut ins = vec![x.clone()];
        ins.extend_from_slice(inputs.get(2..)?);
        let d = self.project.profile_detail(&ins)?;
        Some(format!("gate·{d}"))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Tail, TailKind};
    use super::*;
    use crate::ops::array::tests::{attr_map, build_op, hashed_f32};
    use crate::ops::Session;
    use crate::proto::attr_value::Value;

    fn build(op: &str, attrs: &[(&str, Value)], n: usize) -> Box<dyn Op> {
        build_op(op, &attr_map(attrs), n).expect("builds")
    }

    fn tensor(shape: &[usize], seed: u32) -> Tensor {
        hashed_f32(shape, seed, 1.0)
    }

    /// `Conv2D 1×1 → Mul → AddV2 (→ AddV2 residual)`.
    fn project(residual: bool) -> FusedChain {
        let conv = build(
            "Conv2D",
            &[
                (
                    "strides",
                    Value::List(Box::new(crate::proto::attr_value::ListValue {
                        i: vec![1, 1, 1, 1],
                        ..Default::default()
                    })),
                ),
                ("padding", Value::S(b"VALID".to_vec())),
            ],
            2,
        );
        let step = |op: &str, kind, residual| Tail {
            op: build(op, &[], 2),
            kind,
            x_first: true,
            residual,
        };
        let mut tail = vec![
            step("Mul", TailKind::Mul, false),
            step("AddV2", TailKind::Add, true),
        ];
        if residual {
            tail.push(step("AddV2", TailKind::Add, true));
        }
        FusedChain::new(conv, 2, tail)
    }

    #[test]
    fn gated_projection_is_bit_identical_to_mul_then_chain() {
        let session = Session::new(".".into(), None, Default::default());
        let mut cx = EvalCtx::new(&session);
        // (n, h, w, c, cout, gate shape, gate first, residual)
        let cases: [([usize; 5], &[usize], bool, bool); 4] = [
            ([1, 7, 7, 96, 24], &[1, 1, 1, 96], false, true),
            ([2, 9, 6, 40, 16], &[2, 1, 1, 40], true, false),
            ([3, 5, 5, 16, 8], &[1, 1, 1, 16], false, false),
            ([2, 4, 4, 8, 8], &[8], true, true),
        ];
        for ([n, h, w, c, cout], gate, gate_first, res) in cases {
            let x = tensor(&[n, h, w, c], 1);
            let s = tensor(gate, 2);
            let mut inputs = if gate_first { vec![s, x] } else { vec![x, s] };
            inputs.extend([
                tensor(&[1, 1, c, cout], 3),
                tensor(&[cout], 4),
                tensor(&[cout], 5),
            ]);
            if res {
                inputs.push(tensor(&[n, h, w, cout], 6));
            }
            let op = ScaledProject::new(build("Mul", &[], 2), project(res), 4 + usize::from(res));
            let fused = op.eval_fused(&cx, &inputs).expect("fast path applies");
            let plain = op
                .eval_unfused(&mut cx, Tensors::from_vec(inputs.clone()))
                .expect("unfused");
            assert_eq!(fused.shape(), [n, h, w, cout]);
            assert_eq!(fused.as_slice::<f32>().ok(), plain.as_slice::<f32>().ok());
        }
        // A gate that is not per image and channel takes the unfused path, with its result.
        let x = tensor(&[1, 3, 3, 8], 1);
        let mut inputs = vec![x.clone(), x];
        inputs.extend([tensor(&[1, 1, 8, 4], 3), tensor(&[4], 4), tensor(&[4], 5)]);
        let op = ScaledProject::new(build("Mul", &[], 2), project(false), 4);
        assert!(op.eval_fused(&cx, &inputs).is_none());
        let out = op.eval(&mut cx, inputs.into()).expect("eval");
        assert_eq!(out[0].shape(), [1, 3, 3, 4]);
        // Wrong arity is an error, not a panic.
        let op = ScaledProject::new(build("Mul", &[], 2), project(false), 4);
        assert!(op
            .eval(&mut cx, tensors![tensor(&[1, 2, 2, 8], 1)])
            .is_err());
    }
}

//! `MatMul` (rank 2), with a cache of its packed right-hand side and a fused epilogue.
//!
//! Models multiply a new activation by the same weight matrix on every call, so an `f32`
//! `MatMul` keeps `B` packed into GEMM panels ([`PackedB`]) and reuses the packing while `b`
//! is the same buffer. The cache holds a clone of `b` (an `Arc` share), so the buffer can be
//! neither freed nor mutated in place (tensors are copy-on-write) while the cache refers to
//! it: same address and shape means same contents. A buffer is packed the second time in a
//! row it is seen, so per-call right-hand sides (activations) are not cached.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::{batched_matmul, fmt_shape};
use crate::ops::fused::EpilogueProducer;
use crate::ops::kernels::epilogue::Epilogue;
use crate::ops::kernels::gemm::{gemm_f32, gemm_packed_f32, PackedB};
use crate::ops::kernels::Isa;
use crate::ops::{take_inputs, BuildCtx, EvalCtx, Op, OpError, Tensors};
use crate::tensor::{DType, Tensor};

/// `MatMul`: `op(a) · op(b)` for rank-2 operands, `op` = transpose when `transpose_a/b`.
#[derive(Debug)]
pub(super) struct MatMul {
    ta: bool,
    tb: bool,
    cache: PackCache,
}

/// The packed right-hand side of the last calls (also used by `Einsum`'s projections).
#[derive(Debug, Default)]
pub(super) struct PackCache {
    /// Address of the last `f32` `b` buffer seen (a hint, never dereferenced).
    last: AtomicUsize,
    /// `b` (kept alive and immutable by this clone), the strides it was read with, and its
    /// packing.
    packed: Mutex<Option<CachedPack>>,
}

/// `b` (kept alive and immutable by this clone), its read strides, and its packing.
type CachedPack = (Tensor, (usize, usize), Arc<PackedB>);

impl PackCache {
    /// The packing of `b` (`k×n` read from `bs` at `strides`), from the cache or packed now;
    /// `None` when `b` was not seen on the previous call (then use the unpacked GEMM).
    pub(super) fn get(
        &self,
        cx: &EvalCtx<'_>,
        b: &Tensor,
        bs: &[f32],
        k: usize,
        n: usize,
        strides: (usize, usize),
    ) -> Option<Arc<PackedB>> {
        let same = |t: &Tensor| {
            t.shape() == b.shape()
                && t.as_slice::<f32>()
                    .is_ok_and(|s| s.as_ptr() == bs.as_ptr() && s.len() == bs.len())
        };
        let mut slot = self.packed.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((t, st, p)) = &*slot {
            if same(t) && *st == strides && p.k() == k && p.n() == n {
                return Some(p.clone());
            }
        }
        let addr = bs.as_ptr() as usize;
        if self.last.swap(addr, Ordering::Relaxed) != addr {
            return None;
        }
        let len = PackedB::packed_len(Isa::best(), k, n)?;
        cx.limits().check_alloc(len, DType::F32).ok()?;
        let p = Arc::new(PackedB::new(k, n, bs, strides));
        // Later calls read only the packing: a mapped `b`'s pages can go.
        b.release_mapped();
        *slot = Some((b.clone(), strides, p.clone()));
        Some(p)
    }
}

impl MatMul {
    pub(super) fn new(ta: bool, tb: bool) -> MatMul {
        MatMul {
            ta,
            tb,
            cache: PackCache::default(),
        }
    }

    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(2)?;
        Ok(Box::new(MatMul::new(
            cx.attr_opt_bool("transpose_a").unwrap_or(false),
            cx.attr_opt_bool("transpose_b").unwrap_or(false),
        )))
    }

    /// `(m, k, n)` if both operands are `f32` matrices with matching inner dimensions.
    fn dims_f32(&self, a: &Tensor, b: &Tensor) -> Option<(usize, usize, usize)> {
        let (sa, sb) = (a.shape(), b.shape());
        if sa.len() != 2 || sb.len() != 2 || a.dtype() != DType::F32 || b.dtype() != DType::F32 {
            return None;
        }
        let (m, k) = if self.ta {
            (sa[1], sa[0])
        } else {
            (sa[0], sa[1])
        };
        let (k2, n) = if self.tb {
            (sb[1], sb[0])
        } else {
            (sb[0], sb[1])
        };
        (k == k2).then_some((m, k, n))
    }
}

impl EpilogueProducer for MatMul {
    fn out_channels(&self, inputs: &[Tensor]) -> Option<usize> {
        match inputs {
            [a, b] => self.dims_f32(a, b).map(|(_, _, n)| n),
            _ => None,
        }
    }

    fn eval_epilogue(
        &self,
        cx: &mut EvalCtx<'_>,
        inputs: Tensors,
        ep: &Epilogue<'_>,
    ) -> Result<Tensor, OpError> {
        let [a, b] = take_inputs(inputs)?;
        let (m, k, n) = self
            .dims_f32(&a, &b)
            .ok_or_else(|| OpError::invalid("fused MatMul needs f32 matrices"))?;
        let total = m
            .checked_mul(n)
            .ok_or_else(|| OpError::Limit("matmul output size overflows".into()))?;
        cx.limits().check_alloc(total, DType::F32)?;
        let (xs, ys) = (a.as_slice::<f32>()?, b.as_slice::<f32>()?);
        let a_strides = if self.ta { (1, m) } else { (k, 1) };
        // Both GEMM paths overwrite every element.
        let mut out = crate::tensor::pool::f32_for_overwrite(total);
        match (m >= 2 && k > 0 && n > 0)
            .then(|| {
                let strides = if self.tb { (1, k) } else { (n, 1) };
                self.cache.get(cx, &b, ys, k, n, strides)
            })
            .flatten()
        {
            Some(p) => gemm_packed_f32(m, xs, a_strides, &p, &mut out, n, ep),
            None => {
                let b_strides = if self.tb { (1, k) } else { (n, 1) };
                gemm_f32(m, n, k, xs, a_strides, ys, b_strides, &mut out, n, false);
                if n > 0 {
                    ep.apply_rows(&mut out, n);
                }
            }
        }
        Ok(Tensor::from_vec(&[m, n], out)?)
    }
}

impl Op for MatMul {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [a, b] = take_inputs(inputs)?;
        for (i, t) in [&a, &b].into_iter().enumerate() {
            if t.rank() != 2 {
                return Err(OpError::invalid(format!(
                    "In[{i}] is not a matrix. Instead it has shape {}",
                    fmt_shape(t.shape())
                )));
            }
        }
        if self.dims_f32(&a, &b).is_some() {
            return Ok(tensors![self.eval_epilogue(
                cx,
                tensors![a, b],
                &Epilogue::default(),
            )?]);
        }
        Ok(tensors![batched_matmul(
            cx, &a, self.ta, &b, self.tb, false
        )?])
    }

    fn epilogue_producer(&self) -> Option<&dyn EpilogueProducer> {
        Some(self)
    }
}

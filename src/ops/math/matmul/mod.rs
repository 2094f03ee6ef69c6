//! Matrix products: `MatMul`, `BatchMatMul{,V2,V3}` and `Einsum`.
//! TF reference: core/kernels/matmul_op_impl.h, core/kernels/linalg/einsum_op_impl.h.
//!
//! Everything funnels into [`batched_matmul`], which reads each operand in place through GEMM
//! strides (so `transpose_a/b` and `adj_x/adj_y` never copy) and broadcasts batch dims by
//! pointing several output matrices at the same input matrix. `Einsum` lowers any equation
//! without a label repeated inside one operand to that core: labels summed in one operand
//! only are reduced first, then both operands are permuted (only when their layout is not
//! already usable) to `[batch, m, k]` × `[batch, k, n]`, and the product is permuted to the
//! output order. f16/bf16 are computed in f32 and rounded once, int32/int64 by a naive
//! wrapping loop.

use half::{bf16, f16};
use rayon::prelude::*;

use crate::ops::fused::EpilogueProducer;
use crate::ops::kernels::epilogue::Epilogue;
use crate::ops::kernels::gemm::{gemm_f32, gemm_f64, gemm_packed_f32};
use crate::ops::kernels::transpose::transpose;
use crate::ops::{take_inputs, BuildCtx, EvalCtx, Op, OpError, Registry, Tensors};
use crate::tensor::{num_elements, DType, Data, Element, Tensor};

mod dense;
mod einsum;
#[cfg(test)]
mod tests;

use dense::{MatMul, PackCache};
use einsum::Einsum;

pub(crate) fn register(r: &mut Registry) {
    r.add("BatchMatMul", |cx| BatchMatMul::build(cx, 1));
    r.add("BatchMatMulV2", |cx| BatchMatMul::build(cx, 2));
    r.add("BatchMatMulV3", |cx| BatchMatMul::build(cx, 3));
    r.add("Einsum", Einsum::build);
    r.add("MatMul", MatMul::build);
}

/// TF's `[2,3]` shape spelling, for error messages that mirror TF's.
fn fmt_shape(s: &[usize]) -> String {
    let dims: Vec<String> = s.iter().map(|d| d.to_string()).collect();
    format!("[{}]", dims.join(","))
}

/// Copies `t` with its axes permuted (output axis `i` is input axis `perm[i]`); returns `t`
/// itself for the identity permutation. `perm` must be a permutation of `0..t.rank()`.
pub(super) fn permute(t: Tensor, perm: &[usize]) -> Result<Tensor, OpError> {
    if perm.iter().enumerate().all(|(i, &p)| i == p) {
        return Ok(t);
    }
    fn go<T: Element + Copy + Default>(x: &[T], shape: &[usize], perm: &[usize]) -> Data {
        let mut out = vec![T::default(); x.len()];
        transpose(x, shape, perm, &mut out);
        T::wrap(out.into())
    }
    let shape: Vec<usize> = perm.iter().map(|&p| t.shape()[p]).collect();
    let data = crate::match_numeric!(t.data(), b => go(&b[..], t.shape(), perm), _ => match t.data() {
        Data::Bool(b) => go(&b[..], t.shape(), perm),
        _ => return Err(OpError::dtype(0, "numeric or bool", t.dtype())),
    });
    Ok(Tensor::new(&shape, data)?)
}

/// Where each operand's matrices are and how to read them.
struct Geometry {
    m: usize,
    n: usize,
    k: usize,
    /// Elements per stored matrix of each operand.
    a_mat: usize,
    b_mat: usize,
    /// GEMM `(row, col)` strides of each operand's (possibly adjoint) view.
    a_strides: (usize, usize),
    b_strides: (usize, usize),
    /// For each output matrix, the index of its `a` and `b` matrices.
    pairs: Vec<(usize, usize)>,
}

/// One product per output matrix, in parallel over the batch when there is enough work.
fn run_batched<T: Copy + Default + Send + Sync>(
    a: &[T],
    b: &[T],
    g: &Geometry,
    gemm: impl Fn(&[T], &[T], &mut [T]) + Sync,
) -> Vec<T> {
    let mn = g.m * g.n;
    let mut out = vec![T::default(); g.pairs.len() * mn];
    if mn == 0 {
        return out;
    }
    let one = |(c, &(ia, ib)): (&mut [T], &(usize, usize))| {
        let a = &a[ia * g.a_mat..(ia + 1) * g.a_mat];
        let b = &b[ib * g.b_mat..(ib + 1) * g.b_mat];
        gemm(a, b, c)
    };
    let work = g.pairs.len().saturating_mul(mn).saturating_mul(g.k.max(1));
    if g.pairs.len() > 1 && work >= 1 << 15 {
        out.par_chunks_mut(mn).zip(&g.pairs).for_each(one);
    } else {
        out.chunks_mut(mn).zip(&g.pairs).for_each(one);
    }
    out
}

/// Naive `C = A·B` with wrapping integer arithmetic (TF's int matmul is Eigen's, which wraps).
fn gemm_int<T: Copy + Default + IntMulAdd>(g: &Geometry, a: &[T], b: &[T], c: &mut [T]) {
    let (ars, acs) = g.a_strides;
    let (brs, bcs) = g.b_strides;
    for i in 0..g.m {
        for j in 0..g.n {
            let mut acc = T::default();
            for p in 0..g.k {
                acc = acc.mul_add_wrapping(a[i * ars + p * acs], b[p * brs + j * bcs]);
            }
            c[i * g.n + j] = acc;
        }
    }
}

trait IntMulAdd {
    fn mul_add_wrapping(self, a: Self, b: Self) -> Self;
}
impl IntMulAdd for i32 {
    fn mul_add_wrapping(self, a: i32, b: i32) -> i32 {
        self.wrapping_add(a.wrapping_mul(b))
    }
}
impl IntMulAdd for i64 {
    fn mul_add_wrapping(self, a: i64, b: i64) -> i64 {
        self.wrapping_add(a.wrapping_mul(b))
    }
}

fn to_f32<T: Copy>(x: &[T], f: impl Fn(T) -> f32) -> Vec<f32> {
    x.iter().map(|&v| f(v)).collect()
}

/// `op(a) · op(b)` over batch dims, where `op` is the adjoint (transpose: real types only)
/// when `adj_*`. With `broadcast`, batch dims broadcast as in NumPy (`BatchMatMulV2`);
/// otherwise they must be equal (`BatchMatMul`). Both inputs must have the same dtype.
fn batched_matmul(
    cx: &EvalCtx<'_>,
    a: &Tensor,
    adj_a: bool,
    b: &Tensor,
    adj_b: bool,
    broadcast: bool,
) -> Result<Tensor, OpError> {
    let (sa, sb) = (a.shape(), b.shape());
    let (ra, rb) = (sa.len(), sb.len());
    if ra < 2 || rb < 2 {
        return Err(OpError::invalid(format!(
            "In[0] and In[1] ndims must be >= 2: {ra} vs. {rb}"
        )));
    }
    if a.dtype() != b.dtype() {
        return Err(OpError::dtype(1, a.dtype().name(), b.dtype()));
    }
    let (m, k) = if adj_a {
        (sa[ra - 1], sa[ra - 2])
    } else {
        (sa[ra - 2], sa[ra - 1])
    };
    let (k2, n) = if adj_b {
        (sb[rb - 1], sb[rb - 2])
    } else {
        (sb[rb - 2], sb[rb - 1])
    };
    if k != k2 {
        return Err(OpError::invalid(format!(
            "Matrix size-incompatible: In[0]: {}, In[1]: {}",
            fmt_shape(sa),
            fmt_shape(sb)
        )));
    }
    let (ba, bb) = (&sa[..ra - 2], &sb[..rb - 2]);
    let batch = if broadcast {
        super::broadcast_shape(ba, bb).map_err(|_| {
            OpError::invalid(format!(
                "In[0] and In[1] must have compatible batch dimensions: {} vs. {}",
                fmt_shape(sa),
                fmt_shape(sb)
            ))
        })?
    } else if ba == bb {
        ba.to_vec()
    } else {
        return Err(OpError::invalid(format!(
            "In[0] and In[1] must have the same batch dimensions: {} vs. {}",
            fmt_shape(sa),
            fmt_shape(sb)
        )));
    };
    let mut out_shape = batch.clone();
    out_shape.extend([m, n]);
    let total = num_elements(&out_shape)
        .ok_or_else(|| OpError::Limit("matmul output size overflows".into()))?;
    cx.limits().check_alloc(total, a.dtype())?;
    if total == 0 {
        return Ok(Tensor::zeros(a.dtype(), &out_shape)?);
    }
    // `total > 0` bounds the batch count by the (checked) output size.
    let nb: usize = batch.iter().product();
    let mat_index = |shape: &[usize]| {
        // Row-major strides (in matrices) of `shape` aligned right to `batch`; 0 = broadcast.
        let off = batch.len() - shape.len();
        let mut strides = vec![0usize; batch.len()];
        let mut s = 1;
        for i in (0..shape.len()).rev() {
            strides[off + i] = if shape[i] == 1 { 0 } else { s };
            s *= shape[i];
        }
        strides
    };
    let (sta, stb) = (mat_index(ba), mat_index(bb));
    let mut pairs = Vec::with_capacity(nb);
    let mut idx = vec![0usize; batch.len()];
    for _ in 0..nb {
        let ia = idx.iter().zip(&sta).map(|(i, s)| i * s).sum();
        let ib = idx.iter().zip(&stb).map(|(i, s)| i * s).sum();
        pairs.push((ia, ib));
        for d in (0..batch.len()).rev() {
            idx[d] += 1;
            if idx[d] < batch[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    let (ar, ac) = (sa[ra - 2], sa[ra - 1]);
    let (br, bc) = (sb[rb - 2], sb[rb - 1]);
    let g = Geometry {
        m,
        n,
        k,
        a_mat: ar * ac,
        b_mat: br * bc,
        a_strides: if adj_a { (1, ac) } else { (ac, 1) },
        b_strides: if adj_b { (1, bc) } else { (bc, 1) },
        pairs,
    };
    let f32_gemm = |x: &[f32], y: &[f32], c: &mut [f32]| {
        gemm_f32(m, n, k, x, g.a_strides, y, g.b_strides, c, n, false)
    };
    let data = match (a.data(), b.data()) {
        (Data::F32(x), Data::F32(y)) => Data::F32(run_batched(x, y, &g, f32_gemm).into()),
        (Data::F64(x), Data::F64(y)) => {
            let f = |x: &[f64], y: &[f64], c: &mut [f64]| {
                gemm_f64(m, n, k, x, g.a_strides, y, g.b_strides, c, n, false)
            };
            Data::F64(run_batched(x, y, &g, f).into())
        }
        (Data::F16(x), Data::F16(y)) => {
            let (x, y) = (to_f32(x, f16::to_f32), to_f32(y, f16::to_f32));
            let c = run_batched(&x, &y, &g, f32_gemm);
            Data::F16(c.into_iter().map(f16::from_f32).collect::<Vec<_>>().into())
        }
        (Data::BF16(x), Data::BF16(y)) => {
            let (x, y) = (to_f32(x, bf16::to_f32), to_f32(y, bf16::to_f32));
            let c = run_batched(&x, &y, &g, f32_gemm);
            Data::BF16(c.into_iter().map(bf16::from_f32).collect::<Vec<_>>().into())
        }
        (Data::I32(x), Data::I32(y)) => {
            Data::I32(run_batched(x, y, &g, |x, y, c| gemm_int(&g, x, y, c)).into())
        }
        (Data::I64(x), Data::I64(y)) => {
            Data::I64(run_batched(x, y, &g, |x, y, c| gemm_int(&g, x, y, c)).into())
        }
        _ => {
            return Err(OpError::dtype(
                0,
                "float32, float64, float16, bfloat16, int32 or int64",
                a.dtype(),
            ))
        }
    };
    Ok(Tensor::new(&out_shape, data)?)
}

/// `BatchMatMul` (equal batch dims), `BatchMatMulV2` (broadcast batch dims) and
/// `BatchMatMulV3` (V2 with inputs cast to `Tout`).
#[derive(Debug)]
struct BatchMatMul {
    adj_x: bool,
    adj_y: bool,
    broadcast: bool,
    tout: Option<DType>,
    /// Packed `y` of the flattened product (see [`BatchMatMul::flat_f32`]).
    cache: PackCache,
}

impl BatchMatMul {
    /// `version` 1 (no broadcasting), 2 or 3 (`Tout`).
    fn build(cx: &mut BuildCtx<'_>, version: u8) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(2)?;
        let tout = match version {
            3 => Some(cx.attr_type("Tout")?),
            _ => None,
        };
        Ok(Box::new(BatchMatMul {
            adj_x: cx.attr_opt_bool("adj_x").unwrap_or(false),
            adj_y: cx.attr_opt_bool("adj_y").unwrap_or(false),
            broadcast: version != 1,
            tout,
            cache: PackCache::default(),
        }))
    }

    /// `x [..., m, k] · y` with `y` a single matrix (batch dims all 1, broadcast): one GEMM
    /// of `x` flattened to `[(...)·m, k]`, with `y` packed once and cached while it is the
    /// same buffer (Keras 3's `EinsumDense` projections multiply activations by a reshaped
    /// constant kernel this way). `None` when the shapes do not fit.
    fn flat_f32(
        &self,
        cx: &EvalCtx<'_>,
        x: &Tensor,
        y: &Tensor,
        ep: &Epilogue<'_>,
    ) -> Result<Option<Tensor>, OpError> {
        let Some((m, k, n, shape)) = self.flat_dims(x, y) else {
            return Ok(None);
        };
        let total = m * n;
        cx.limits().check_alloc(total, DType::F32)?;
        let (xs, ys) = (x.as_slice::<f32>()?, y.as_slice::<f32>()?);
        let strides = if self.adj_y { (1, k) } else { (n, 1) };
        // Both GEMM paths overwrite every element.
        let mut out = crate::tensor::pool::f32_for_overwrite(total);
        match self.cache.get(cx, y, ys, k, n, strides) {
            Some(p) => gemm_packed_f32(m, xs, (k, 1), &p, &mut out, n, ep),
            None => {
                gemm_f32(m, n, k, xs, (k, 1), ys, strides, &mut out, n, false);
                ep.apply_rows(&mut out, n);
            }
        }
        Ok(Some(Tensor::from_vec(&shape, out)?))
    }

    /// `(m, k, n, output shape)` of [`BatchMatMul::flat_f32`]'s single GEMM, `None` when the
    /// shapes or dtypes do not fit it.
    fn flat_dims(&self, x: &Tensor, y: &Tensor) -> Option<(usize, usize, usize, Vec<usize>)> {
        let (sx, sy) = (x.shape(), y.shape());
        let (rx, ry) = (sx.len(), sy.len());
        if !self.broadcast
            || self.tout.is_some_and(|t| t != DType::F32)
            || self.adj_x
            || x.dtype() != DType::F32
            || y.dtype() != DType::F32
            || rx < 3
            || ry < 2
            || ry > rx
            || sy[..ry - 2].iter().any(|&d| d != 1)
        {
            return None;
        }
        let (k, n) = if self.adj_y {
            (sy[ry - 1], sy[ry - 2])
        } else {
            (sy[ry - 2], sy[ry - 1])
        };
        if sx[rx - 1] != k || k == 0 {
            return None;
        }
        let mut shape = sx.to_vec();
        shape[rx - 1] = n;
        let total = num_elements(&shape)?;
        let m = num_elements(&sx[..rx - 1]).unwrap_or(0);
        if total == 0 || m < 2 {
            return None;
        }
        Some((m, k, n, shape))
    }
}

/// The flattened single-GEMM case ([`BatchMatMul::flat_f32`]) takes a fused per-column
/// epilogue (the projections' bias, see `graph::fuse_dense`).
impl EpilogueProducer for BatchMatMul {
    fn out_channels(&self, inputs: &[Tensor]) -> Option<usize> {
        match inputs {
            [x, y] => self.flat_dims(x, y).map(|(_, _, n, _)| n),
            _ => None,
        }
    }

    fn eval_epilogue(
        &self,
        cx: &mut EvalCtx<'_>,
        inputs: Tensors,
        ep: &Epilogue<'_>,
    ) -> Result<Tensor, OpError> {
        let [x, y] = take_inputs(inputs)?;
        self.flat_f32(cx, &x, &y, ep)?
            .ok_or_else(|| OpError::invalid("fused BatchMatMul needs one f32 right-hand matrix"))
    }
}

/// Casts a numeric tensor to `to` (for `BatchMatMulV3`'s mixed input types).
fn cast_for_matmul(t: Tensor, to: DType) -> Result<Tensor, OpError> {
    if t.dtype() == to {
        return Ok(t);
    }
    let shape = t.shape().to_vec();
    let as_f64 = |t: &Tensor| -> Option<Vec<f64>> {
        Some(match t.data() {
            Data::F32(b) => b.iter().map(|&v| v as f64).collect(),
            Data::F16(b) => b.iter().map(|v| v.to_f64()).collect(),
            Data::BF16(b) => b.iter().map(|v| v.to_f64()).collect(),
            _ => t.to_i64_vec().ok()?.into_iter().map(|v| v as f64).collect(),
        })
    };
    let unsupported = || OpError::Unimplemented(format!("matmul cast from {} to {to}", t.dtype()));
    let out = match to {
        DType::I32 => Tensor::from_vec(
            &shape,
            t.to_i64_vec()
                .map_err(|_| unsupported())?
                .into_iter()
                .map(|v| v as i32)
                .collect(),
        )?,
        DType::I64 => Tensor::from_vec(&shape, t.to_i64_vec().map_err(|_| unsupported())?)?,
        DType::F32 => {
            let v = as_f64(&t).ok_or_else(unsupported)?;
            Tensor::from_vec(&shape, v.into_iter().map(|v| v as f32).collect())?
        }
        DType::F64 => Tensor::from_vec(&shape, as_f64(&t).ok_or_else(unsupported)?)?,
        _ => return Err(unsupported()),
    };
    Ok(out)
}

impl Op for BatchMatMul {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [mut x, mut y] = take_inputs(inputs)?;
        if let Some(to) = self.tout {
            x = cast_for_matmul(x, to)?;
            y = cast_for_matmul(y, to)?;
        }
        if let Some(out) = self.flat_f32(cx, &x, &y, &Epilogue::default())? {
            return Ok(tensors![out]);
        }
        let out = batched_matmul(cx, &x, self.adj_x, &y, self.adj_y, self.broadcast)?;
        Ok(tensors![out])
    }

    fn epilogue_producer(&self) -> Option<&dyn EpilogueProducer> {
        Some(self)
    }
}

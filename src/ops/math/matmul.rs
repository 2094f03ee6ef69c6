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

use crate::ops::kernels::gemm::{gemm_f32, gemm_f64};
use crate::ops::kernels::transpose::transpose;
use crate::ops::{take_inputs, BuildCtx, EvalCtx, Op, OpError, Registry};
use crate::tensor::{num_elements, DType, Data, Element, Tensor};

pub(crate) fn register(r: &mut Registry) {
    r.add("BatchMatMul", BatchMatMul::build);
    r.add("BatchMatMulV2", BatchMatMul::build);
    r.add("BatchMatMulV3", BatchMatMul::build);
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

/// `MatMul`: `op(a) · op(b)` for rank-2 operands, `op` = transpose when `transpose_a/b`.
#[derive(Debug)]
struct MatMul {
    ta: bool,
    tb: bool,
}

impl MatMul {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(2)?;
        Ok(Box::new(MatMul {
            ta: cx.attr_opt_bool("transpose_a").unwrap_or(false),
            tb: cx.attr_opt_bool("transpose_b").unwrap_or(false),
        }))
    }
}

impl Op for MatMul {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, OpError> {
        let [a, b] = take_inputs(inputs)?;
        for (i, t) in [&a, &b].into_iter().enumerate() {
            if t.rank() != 2 {
                return Err(OpError::invalid(format!(
                    "In[{i}] is not a matrix. Instead it has shape {}",
                    fmt_shape(t.shape())
                )));
            }
        }
        Ok(vec![batched_matmul(cx, &a, self.ta, &b, self.tb, false)?])
    }
}

/// `BatchMatMul` (equal batch dims), `BatchMatMulV2` (broadcast batch dims) and
/// `BatchMatMulV3` (V2 with inputs cast to `Tout`).
#[derive(Debug)]
struct BatchMatMul {
    adj_x: bool,
    adj_y: bool,
    broadcast: bool,
    tout: Option<DType>,
}

impl BatchMatMul {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(2)?;
        let tout = match cx.op {
            "BatchMatMulV3" => Some(cx.attr_type("Tout")?),
            _ => None,
        };
        Ok(Box::new(BatchMatMul {
            adj_x: cx.attr_opt_bool("adj_x").unwrap_or(false),
            adj_y: cx.attr_opt_bool("adj_y").unwrap_or(false),
            broadcast: cx.op != "BatchMatMul",
            tout,
        }))
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
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, OpError> {
        let [mut x, mut y] = take_inputs(inputs)?;
        if let Some(to) = self.tout {
            x = cast_for_matmul(x, to)?;
            y = cast_for_matmul(y, to)?;
        }
        let out = batched_matmul(cx, &x, self.adj_x, &y, self.adj_y, self.broadcast)?;
        Ok(vec![out])
    }
}

/// A subscript label: a letter, or one dimension covered by `...` (numbered from the right so
/// that operands with different ellipsis ranks line up as in NumPy broadcasting).
type Label = u32;
const ELLIPSIS_BASE: Label = 0x11_0000;

/// One side of a parsed equation: its labels, and where `...` sits (index into `labels`).
#[derive(Debug, Clone)]
struct Subscripts {
    labels: Vec<Label>,
    ellipsis: Option<usize>,
}

impl Subscripts {
    fn parse(s: &str, eq: &str) -> Result<Subscripts, OpError> {
        let bad = || OpError::invalid(format!("invalid einsum equation {eq:?}"));
        let mut labels = Vec::new();
        let mut ellipsis = None;
        let mut rest = s;
        while let Some(c) = rest.chars().next() {
            if let Some(r) = rest.strip_prefix("...") {
                if ellipsis.replace(labels.len()).is_some() {
                    return Err(bad());
                }
                rest = r;
            } else if c.is_ascii_alphabetic() {
                labels.push(c as Label);
                rest = &rest[1..];
            } else {
                return Err(bad());
            }
        }
        Ok(Subscripts { labels, ellipsis })
    }

    /// The labels of an operand of rank `rank` (or of the output, with `rank` = named +
    /// ellipsis dims), the ellipsis expanded to `rank - named` labels.
    fn expand(&self, rank: usize) -> Option<Vec<Label>> {
        let named = self.labels.len();
        let Some(at) = self.ellipsis else {
            return (rank == named).then(|| self.labels.clone());
        };
        let e = rank.checked_sub(named)?;
        let mut out = self.labels[..at].to_vec();
        out.extend((0..e).rev().map(|j| ELLIPSIS_BASE + j as Label));
        out.extend_from_slice(&self.labels[at..]);
        Some(out)
    }
}

/// `Einsum` with one or two operands; see the module docs for the lowering.
#[derive(Debug)]
struct Einsum {
    equation: String,
    inputs: Vec<Subscripts>,
    output: Subscripts,
}

impl Einsum {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        let op = Einsum::parse(cx.attr_str("equation")?)?;
        if op.inputs.len() != cx.num_inputs {
            return Err(OpError::Arity {
                expected: op.inputs.len(),
                got: cx.num_inputs,
            });
        }
        Ok(Box::new(op))
    }

    fn parse(equation: String) -> Result<Einsum, OpError> {
        let (lhs, rhs) = equation.split_once("->").ok_or_else(|| {
            OpError::invalid(format!("einsum equation {equation:?} has no \"->\""))
        })?;
        let inputs = lhs
            .split(',')
            .map(|s| Subscripts::parse(s, &equation))
            .collect::<Result<Vec<_>, _>>()?;
        let output = Subscripts::parse(rhs, &equation)?;
        if inputs.len() > 2 {
            return Err(OpError::Unimplemented(format!(
                "Einsum {equation:?} with more than 2 operands"
            )));
        }
        Ok(Einsum {
            equation,
            inputs,
            output,
        })
    }

    fn unimplemented(&self, what: &str) -> OpError {
        OpError::Unimplemented(format!("Einsum {:?}: {what}", self.equation))
    }
}

/// Position of `l` in `labels`.
fn pos(labels: &[Label], l: Label) -> Option<usize> {
    labels.iter().position(|&x| x == l)
}

impl Op for Einsum {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, OpError> {
        if inputs.len() != self.inputs.len() {
            return Err(OpError::Arity {
                expected: self.inputs.len(),
                got: inputs.len(),
            });
        }
        let mut ops: Vec<(Tensor, Vec<Label>)> = Vec::with_capacity(inputs.len());
        let mut ell = 0;
        for (i, (t, sub)) in inputs.into_iter().zip(&self.inputs).enumerate() {
            let labels = sub.expand(t.rank()).ok_or_else(|| {
                OpError::invalid(format!(
                    "einsum input {i} has shape {} which does not match subscripts in {:?}",
                    fmt_shape(t.shape()),
                    self.equation
                ))
            })?;
            if labels
                .iter()
                .enumerate()
                .any(|(j, l)| labels[..j].contains(l))
            {
                return Err(self.unimplemented("an index repeated within one operand"));
            }
            ell = ell.max(t.rank() - sub.labels.len());
            ops.push((t, labels));
        }
        if ops.len() == 2 && ops[0].0.dtype() != ops[1].0.dtype() {
            return Err(OpError::dtype(1, ops[0].0.dtype().name(), ops[1].0.dtype()));
        }
        if ell > 0 && self.output.ellipsis.is_none() {
            return Err(OpError::invalid(format!(
                "Output contains {ell} broadcasting dimension(s) but no ellipsis (...) was \
                 found in the output subscripts"
            )));
        }
        let out_labels = self
            .output
            .expand(self.output.labels.len() + ell)
            .ok_or_else(|| self.unimplemented("output subscripts"))?;
        if out_labels
            .iter()
            .enumerate()
            .any(|(j, l)| out_labels[..j].contains(l))
        {
            return Err(self.unimplemented("an index repeated in the output"));
        }
        // Label sizes: equal for letters; ellipsis dims broadcast, a size-1 side is squeezed
        // away so the label becomes free in the other operand.
        if let [(a, la), (b, lb)] = &mut ops[..] {
            for ia in (0..la.len()).rev() {
                let Some(ib) = pos(lb, la[ia]) else { continue };
                let (da, db) = (a.shape()[ia], b.shape()[ib]);
                if da == db {
                    continue;
                }
                if la[ia] < ELLIPSIS_BASE || (da != 1 && db != 1) {
                    let (t, ax, want) = if la[ia] < ELLIPSIS_BASE {
                        (&*b, ib, da)
                    } else {
                        (&*a, ia, db)
                    };
                    return Err(OpError::invalid(format!(
                        "Expected dimension {want} at axis {ax} of the input shaped {} but got \
                         dimension {}",
                        fmt_shape(t.shape()),
                        t.shape()[ax]
                    )));
                }
                let (t, l, ax) = if da == 1 {
                    (&mut *a, &mut *la, ia)
                } else {
                    (&mut *b, &mut *lb, ib)
                };
                let mut shape = t.shape().to_vec();
                shape.remove(ax);
                l.remove(ax);
                *t = std::mem::replace(t, Tensor::scalar(0f32)).reshape(&shape)?;
            }
        }
        for l in &out_labels {
            if !ops.iter().any(|(_, ls)| ls.contains(l)) {
                return Err(OpError::invalid(format!(
                    "einsum {:?}: output label not present in the inputs",
                    self.equation
                )));
            }
        }
        // Sum out labels that occur in one operand only and not in the output.
        for i in 0..ops.len() {
            let keep = |l: &Label| {
                out_labels.contains(l)
                    || ops
                        .iter()
                        .enumerate()
                        .any(|(j, o)| j != i && o.1.contains(l))
            };
            let axes: Vec<usize> = (0..ops[i].1.len())
                .filter(|&ax| !keep(&ops[i].1[ax]))
                .collect();
            if !axes.is_empty() {
                let (t, ls) = &ops[i];
                let reduced = super::reduce::sum_axes(cx, t, &axes)?;
                let ls: Vec<Label> = ls.iter().filter(|l| keep(l)).copied().collect();
                ops[i] = (reduced, ls);
            }
        }
        let out = match ops.len() {
            1 => {
                let (t, ls) = ops.pop().expect("one operand");
                let perm: Vec<usize> = out_labels
                    .iter()
                    .map(|&l| pos(&ls, l).expect("output labels checked against inputs"))
                    .collect();
                permute(t, &perm)?
            }
            2 => {
                let (b, lb) = ops.pop().expect("two operands");
                let (a, la) = ops.pop().expect("two operands");
                contract(cx, a, &la, b, &lb, &out_labels)?
            }
            _ => return Err(self.unimplemented("operand count")),
        };
        Ok(vec![out])
    }
}

/// Two-operand einsum once every label is batch (in a, b, out), contracted (a, b), or free
/// (one operand and out): one batched GEMM `[B, M, K] × [B, K, N]` plus permutations.
fn contract(
    cx: &EvalCtx<'_>,
    a: Tensor,
    la: &[Label],
    b: Tensor,
    lb: &[Label],
    out: &[Label],
) -> Result<Tensor, OpError> {
    let (in_a, in_b) = (|l: &Label| la.contains(l), |l: &Label| lb.contains(l));
    let batch: Vec<Label> = out.iter().filter(|l| in_a(l) && in_b(l)).copied().collect();
    let m_l: Vec<Label> = out
        .iter()
        .filter(|l| in_a(l) && !in_b(l))
        .copied()
        .collect();
    let n_l: Vec<Label> = out
        .iter()
        .filter(|l| in_b(l) && !in_a(l))
        .copied()
        .collect();
    let k_l: Vec<Label> = la
        .iter()
        .filter(|l| in_b(l) && !out.contains(l))
        .copied()
        .collect();
    let dim = |l: Label| match pos(la, l) {
        Some(i) => a.shape()[i],
        None => b.shape()[pos(lb, l).expect("label in an operand")],
    };
    let size = |ls: &[Label]| -> usize { ls.iter().map(|&l| dim(l)).product() };
    let (m, k, n) = (size(&m_l), size(&k_l), size(&n_l));
    let shape: Vec<usize> = batch
        .iter()
        .chain(&m_l)
        .chain(&n_l)
        .map(|&l| dim(l))
        .collect();
    let (a3, adj_a) = to_3d(a, la, &batch, (&m_l, m), (&k_l, k))?;
    let (b3, adj_b) = to_3d(b, lb, &batch, (&k_l, k), (&n_l, n))?;
    let c = batched_matmul(cx, &a3, adj_a, &b3, adj_b, false)?;
    let got: Vec<Label> = [&batch[..], &m_l, &n_l].concat();
    let perm: Vec<usize> = out
        .iter()
        .map(|&l| pos(&got, l).expect("every output label is batch or free"))
        .collect();
    permute(c.reshape(&shape)?, &perm)
}

/// `t` (labels `ls`) as `[B, rows, cols]` (`false`) or, when that is its layout already,
/// `[B, cols, rows]` (`true`, to be read as an adjoint); permuted only if neither fits.
fn to_3d(
    t: Tensor,
    ls: &[Label],
    batch: &[Label],
    (rows, nr): (&[Label], usize),
    (cols, nc): (&[Label], usize),
) -> Result<(Tensor, bool), OpError> {
    let nb = batch_size(&t, ls, batch);
    let order = |g: [&[Label]; 3]| -> Vec<usize> {
        g.concat()
            .iter()
            .map(|&l| pos(ls, l).expect("label in operand"))
            .collect()
    };
    let identity = |p: &[usize]| p.iter().enumerate().all(|(i, &x)| i == x);
    let (direct, swapped) = (order([batch, rows, cols]), order([batch, cols, rows]));
    if identity(&direct) {
        Ok((t.reshape(&[nb, nr, nc])?, false))
    } else if identity(&swapped) {
        Ok((t.reshape(&[nb, nc, nr])?, true))
    } else {
        Ok((permute(t, &direct)?.reshape(&[nb, nr, nc])?, false))
    }
}

fn batch_size(t: &Tensor, ls: &[Label], batch: &[Label]) -> usize {
    batch
        .iter()
        .map(|&l| t.shape()[pos(ls, l).expect("batch label in operand")])
        .product()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{Limits, Session};
    use std::collections::HashMap;

    fn session() -> Session {
        Session::new(".".into(), None, Limits::default())
    }

    fn range(shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        let v = (0..n).map(|i| ((i * 7 % 11) as f32 - 5.0) * 0.25).collect();
        Tensor::from_vec(shape, v).unwrap()
    }

    fn run(op: &dyn Op, inputs: Vec<Tensor>) -> Result<Tensor, OpError> {
        let s = session();
        let mut cx = EvalCtx::new(&s);
        Ok(op.eval(&mut cx, inputs)?.remove(0))
    }

    /// Reference einsum: a loop over every assignment of every label.
    fn naive_einsum(eq: &str, ins: &[&Tensor]) -> (Vec<usize>, Vec<f32>) {
        let (lhs, out) = eq.split_once("->").unwrap();
        let subs: Vec<Vec<char>> = lhs.split(',').map(|s| s.chars().collect()).collect();
        let mut dims: HashMap<char, usize> = HashMap::new();
        for (s, t) in subs.iter().zip(ins) {
            for (c, &d) in s.iter().zip(t.shape()) {
                dims.insert(*c, d);
            }
        }
        let labels: Vec<char> = dims.keys().copied().collect();
        let out: Vec<char> = out.chars().collect();
        let oshape: Vec<usize> = out.iter().map(|c| dims[c]).collect();
        let mut res = vec![0f32; oshape.iter().product()];
        let total: usize = labels.iter().map(|c| dims[c]).product();
        for flat in 0..total {
            let mut rem = flat;
            let mut val: HashMap<char, usize> = HashMap::new();
            for c in &labels {
                val.insert(*c, rem % dims[c]);
                rem /= dims[c];
            }
            let at = |s: &[char], shape: &[usize]| {
                s.iter().zip(shape).fold(0, |acc, (c, &d)| acc * d + val[c])
            };
            let mut p = 1.0;
            for (s, t) in subs.iter().zip(ins) {
                p *= t.as_slice::<f32>().unwrap()[at(s, t.shape())];
            }
            res[at(&out, &oshape)] += p;
        }
        (oshape, res)
    }

    fn check_einsum(eq: &str, shapes: &[&[usize]]) {
        let ins: Vec<Tensor> = shapes.iter().map(|s| range(s)).collect();
        let op = Einsum::parse(eq.to_string()).unwrap();
        let got = run(&op, ins.clone()).unwrap();
        let (shape, want) = naive_einsum(eq, &ins.iter().collect::<Vec<_>>());
        assert_eq!(got.shape(), &shape[..], "{eq}");
        for (g, w) in got.as_slice::<f32>().unwrap().iter().zip(&want) {
            assert!((g - w).abs() <= 1e-4 * w.abs().max(1.0), "{eq}: {g} vs {w}");
        }
    }

    #[test]
    fn matmul_transposes_read_in_place() {
        // tf.linalg.matmul([[1,2,3],[4,5,6]], [[7,8],[9,10],[11,12]]) -> [[58,64],[139,154]]
        let a = Tensor::from_vec(&[2, 3], vec![1f32, 2., 3., 4., 5., 6.]).unwrap();
        let b = Tensor::from_vec(&[3, 2], vec![7f32, 8., 9., 10., 11., 12.]).unwrap();
        let at = Tensor::from_vec(&[3, 2], vec![1f32, 4., 2., 5., 3., 6.]).unwrap();
        let bt = Tensor::from_vec(&[2, 3], vec![7f32, 9., 11., 8., 10., 12.]).unwrap();
        let want = [58f32, 64., 139., 154.];
        for (ta, tb, x, y) in [
            (false, false, &a, &b),
            (true, false, &at, &b),
            (false, true, &a, &bt),
            (true, true, &at, &bt),
        ] {
            let got = run(&MatMul { ta, tb }, vec![x.clone(), y.clone()]).unwrap();
            assert_eq!(got.shape(), &[2, 2]);
            assert_eq!(got.as_slice::<f32>().unwrap(), &want);
        }
        let ai = Tensor::from_vec(&[2, 3], vec![1i32, 2, 3, 4, 5, 6]).unwrap();
        let bi = Tensor::from_vec(&[3, 2], vec![7i32, 8, 9, 10, 11, 12]).unwrap();
        let got = run(
            &MatMul {
                ta: false,
                tb: false,
            },
            vec![ai, bi],
        )
        .unwrap();
        assert_eq!(got.as_slice::<i32>().unwrap(), &[58, 64, 139, 154]);
        let h = |v: &[f32], s: &[usize]| {
            Tensor::from_vec(s, v.iter().map(|&x| f16::from_f32(x)).collect()).unwrap()
        };
        let got = run(
            &MatMul {
                ta: false,
                tb: false,
            },
            vec![
                h(&[1., 2., 3., 4., 5., 6.], &[2, 3]),
                h(&[7., 8., 9., 10., 11., 12.], &[3, 2]),
            ],
        )
        .unwrap();
        assert_eq!(got.as_slice::<f16>().unwrap()[3].to_f32(), 154.0);
    }

    #[test]
    fn matmul_size_mismatch_is_invalid() {
        // TF: "Matrix size-incompatible: In[0]: [2,3], In[1]: [4,5]"
        let err = run(
            &MatMul {
                ta: false,
                tb: false,
            },
            vec![range(&[2, 3]), range(&[4, 5])],
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Matrix size-incompatible: In[0]: [2,3], In[1]: [4,5]"
        );
    }

    #[test]
    fn batch_matmul_v2_broadcasts_and_v1_does_not() {
        let v2 = BatchMatMul {
            adj_x: false,
            adj_y: true,
            broadcast: true,
            tout: None,
        };
        let (x, y) = (range(&[2, 1, 2, 3]), range(&[3, 4, 3]));
        let got = run(&v2, vec![x.clone(), y.clone()]).unwrap();
        assert_eq!(got.shape(), &[2, 3, 2, 4]);
        let x3 = x.reshape(&[2, 2, 3]).unwrap();
        let (_, want) = naive_einsum("aij,bkj->abik", &[&x3, &y]);
        for (g, w) in got.as_slice::<f32>().unwrap().iter().zip(&want) {
            assert!((g - w).abs() < 1e-4);
        }
        let v1 = BatchMatMul {
            broadcast: false,
            ..v2
        };
        assert!(matches!(
            run(&v1, vec![range(&[2, 2, 3]), range(&[1, 4, 3])]),
            Err(OpError::Invalid(_))
        ));
        // tf.raw_ops.BatchMatMulV3(x=ones([2,3],int8), y=ones([3,2],int8), Tout=int32) -> 3s
        let v3 = BatchMatMul {
            adj_x: false,
            adj_y: false,
            broadcast: true,
            tout: Some(DType::I32),
        };
        let ones = |s: &[usize]| Tensor::from_vec(s, vec![1i8; s.iter().product()]).unwrap();
        let got = run(&v3, vec![ones(&[2, 3]), ones(&[3, 2])]).unwrap();
        assert_eq!(got.as_slice::<i32>().unwrap(), &[3, 3, 3, 3]);
    }

    #[test]
    fn einsum_keras_patterns_match_naive_loops() {
        // MultiHeadAttention projections, scores, context, output; EinsumDense; matmuls.
        check_einsum("abc,cde->abde", &[&[2, 3, 4], &[4, 2, 5]]);
        check_einsum("abcd,cde->abe", &[&[2, 3, 2, 5], &[2, 5, 4]]);
        check_einsum("aecd,abcd->acbe", &[&[2, 3, 2, 4], &[2, 5, 2, 4]]);
        check_einsum("acbe,aecd->abcd", &[&[2, 2, 5, 3], &[2, 3, 2, 4]]);
        check_einsum("BTNH,BSNH->BNTS", &[&[2, 3, 2, 4], &[2, 5, 2, 4]]);
        check_einsum("BNTS,BSNH->BTNH", &[&[2, 2, 3, 5], &[2, 5, 2, 4]]);
        check_einsum("ab,bc->ac", &[&[3, 4], &[4, 5]]);
        check_einsum("ab,cb->ac", &[&[3, 4], &[5, 4]]);
        check_einsum("ba,bc->ac", &[&[4, 3], &[4, 5]]);
        check_einsum("abc,acd->abd", &[&[2, 3, 4], &[2, 4, 5]]);
        check_einsum("ij,jk->k", &[&[2, 3], &[3, 4]]);
        check_einsum("i,i->", &[&[3], &[3]]);
        check_einsum("ij,ij->ij", &[&[2, 3], &[2, 3]]);
        check_einsum("ij,kl->ijkl", &[&[2, 3], &[1, 2]]);
        check_einsum("ijk->kj", &[&[2, 3, 4]]);
        check_einsum("ij->", &[&[2, 3]]);
    }

    #[test]
    fn einsum_ellipsis_broadcasts() {
        // tf.einsum('...ij,...jk->...ik', ones([2,1,2,3]), ones([3,3,4])).shape == (2,3,2,4)
        let op = Einsum::parse("...ij,...jk->...ik".into()).unwrap();
        let (x, y) = (range(&[2, 1, 2, 3]), range(&[3, 3, 4]));
        let got = run(&op, vec![x.clone(), y.clone()]).unwrap();
        assert_eq!(got.shape(), &[2, 3, 2, 4]);
        let xs = x.as_slice::<f32>().unwrap();
        let ys = y.as_slice::<f32>().unwrap();
        let g = got.as_slice::<f32>().unwrap();
        for a in 0..2 {
            for b in 0..3 {
                for i in 0..2 {
                    for k in 0..4 {
                        let w: f32 = (0..3)
                            .map(|j| xs[a * 6 + i * 3 + j] * ys[b * 12 + j * 4 + k])
                            .sum();
                        assert!((g[((a * 3 + b) * 2 + i) * 4 + k] - w).abs() < 1e-4);
                    }
                }
            }
        }
        let op = Einsum::parse("...ij,jk->ik".into()).unwrap();
        assert!(matches!(
            run(&op, vec![range(&[2, 2, 3]), range(&[3, 4])]),
            Err(OpError::Invalid(_))
        ));
    }

    #[test]
    fn einsum_rejects_repeated_and_mismatched_labels() {
        let op = Einsum::parse("ii->i".into()).unwrap();
        let err = run(&op, vec![range(&[2, 2])]).unwrap_err();
        assert!(matches!(&err, OpError::Unimplemented(m) if m.contains("ii->i")));
        // TF: "Expected dimension 3 at axis 0 of the input shaped [4,4] but got dimension 4"
        let op = Einsum::parse("ij,jk->ik".into()).unwrap();
        let err = run(&op, vec![range(&[2, 3]), range(&[4, 4])]).unwrap_err();
        assert!(
            err.to_string().contains("Expected dimension 3 at axis 0"),
            "{err}"
        );
    }
}

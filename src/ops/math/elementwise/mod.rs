//! Elementwise math ops with NumPy broadcasting: arithmetic, activations, comparisons and
//! logic, `Select`, `Cast`. TF reference: tensorflow/core/kernels/cwise_op_*.cc,
//! relu_op.cc, bias_op.cc, aggregate_ops.cc, cast_op.cc.
//!
//! Children: `num` (per-dtype scalar semantics), `binary`, `unary`, `compare` (comparisons,
//! logic, selection, clipping), `cast`, `erf` (fdlibm erf/erfc port). This module holds the
//! drivers they share: a strided broadcasting loop over rows, run compiled for AVX2 when the
//! CPU has it and split across rayon tasks when large.
//!
//! Key decision: an op's output reuses an input's buffer when that input already has the
//! output shape and dtype (inputs are moved in on their last use, so the copy-on-write
//! `as_mut_slice` is free then). Memory-mapped inputs are never chosen for that, as writing
//! to them would copy first. f16/bf16 compute in f32 and round once per op, like Eigen.

mod binary;
mod cast;
mod compare;
mod erf;
mod num;
mod unary;

use rayon::prelude::*;

use crate::ops::kernels::broadcast::{self, broadcast_strides, collapse};
use crate::ops::{OpError, Registry};
use crate::tensor::{num_elements, Element, Tensor};

/// Every elementwise op; each registration names the variant it builds (`Inv` is
/// `Reciprocal`, `AddV2` is `Add`, `Mod` is `FloorMod`, as in TF's kernels).
pub(crate) fn register(r: &mut Registry) {
    use binary::{BinOp, Binary};
    use compare::{CmpOp, Compare};
    use unary::{UnOp, Unary};
    r.add("Abs", |cx| Unary::build(cx, UnOp::Abs));
    r.add("Acos", |cx| Unary::build(cx, UnOp::Acos));
    r.add("Acosh", |cx| Unary::build(cx, UnOp::Acosh));
    r.add("Add", |cx| Binary::build(cx, BinOp::Add));
    r.add("AddN", binary::AddN::build);
    r.add("AddV2", |cx| Binary::build(cx, BinOp::Add));
    r.add("Asin", |cx| Unary::build(cx, UnOp::Asin));
    r.add("Asinh", |cx| Unary::build(cx, UnOp::Asinh));
    r.add("Atan", |cx| Unary::build(cx, UnOp::Atan));
    r.add("Atan2", |cx| Binary::build(cx, BinOp::Atan2));
    r.add("Atanh", |cx| Unary::build(cx, UnOp::Atanh));
    r.add("BiasAdd", binary::BiasAdd::build);
    r.add("BiasAddV1", binary::BiasAdd::build);
    r.add("Cast", cast::Cast::build);
    r.add("Ceil", |cx| Unary::build(cx, UnOp::Ceil));
    r.add("ClipByValue", compare::ClipByValue::build);
    r.add("Cos", |cx| Unary::build(cx, UnOp::Cos));
    r.add("Cosh", |cx| Unary::build(cx, UnOp::Cosh));
    r.add("Div", |cx| Binary::build(cx, BinOp::Div));
    r.add("DivNoNan", |cx| Binary::build(cx, BinOp::DivNoNan));
    r.add("Elu", |cx| Unary::build(cx, UnOp::Elu));
    r.add("Equal", |cx| Compare::build(cx, CmpOp::Equal));
    r.add("Erf", |cx| Unary::build(cx, UnOp::Erf));
    r.add("Erfc", |cx| Unary::build(cx, UnOp::Erfc));
    r.add("Exp", |cx| Unary::build(cx, UnOp::Exp));
    r.add("Expm1", |cx| Unary::build(cx, UnOp::Expm1));
    r.add("Floor", |cx| Unary::build(cx, UnOp::Floor));
    r.add("FloorDiv", |cx| Binary::build(cx, BinOp::FloorDiv));
    r.add("FloorMod", |cx| Binary::build(cx, BinOp::FloorMod));
    r.add("Greater", |cx| Compare::build(cx, CmpOp::Greater));
    r.add("GreaterEqual", |cx| Compare::build(cx, CmpOp::GreaterEqual));
    r.add("Inv", |cx| Unary::build(cx, UnOp::Reciprocal));
    r.add("IsFinite", |cx| Unary::build(cx, UnOp::IsFinite));
    r.add("IsInf", |cx| Unary::build(cx, UnOp::IsInf));
    r.add("IsNan", |cx| Unary::build(cx, UnOp::IsNan));
    r.add("LeakyRelu", |cx| {
        let alpha = cx.attr_opt_f32("alpha").unwrap_or(0.2);
        Unary::build(cx, UnOp::LeakyRelu(alpha))
    });
    r.add("Less", |cx| Compare::build(cx, CmpOp::Less));
    r.add("LessEqual", |cx| Compare::build(cx, CmpOp::LessEqual));
    r.add("Log", |cx| Unary::build(cx, UnOp::Log));
    r.add("Log1p", |cx| Unary::build(cx, UnOp::Log1p));
    r.add("LogicalAnd", |cx| Compare::build(cx, CmpOp::LogicalAnd));
    r.add("LogicalNot", compare::LogicalNot::build);
    r.add("LogicalOr", |cx| Compare::build(cx, CmpOp::LogicalOr));
    r.add("Maximum", |cx| Binary::build(cx, BinOp::Maximum));
    r.add("Minimum", |cx| Binary::build(cx, BinOp::Minimum));
    r.add("Mod", |cx| Binary::build(cx, BinOp::FloorMod));
    r.add("Mul", |cx| Binary::build(cx, BinOp::Mul));
    r.add("Neg", |cx| Unary::build(cx, UnOp::Neg));
    r.add("NotEqual", |cx| Compare::build(cx, CmpOp::NotEqual));
    r.add("Pow", |cx| Binary::build(cx, BinOp::Pow));
    r.add("RealDiv", |cx| Binary::build(cx, BinOp::RealDiv));
    r.add("Reciprocal", |cx| Unary::build(cx, UnOp::Reciprocal));
    r.add("Relu", |cx| Unary::build(cx, UnOp::Relu));
    r.add("Relu6", |cx| Unary::build(cx, UnOp::Relu6));
    r.add("Rint", |cx| Unary::build(cx, UnOp::Rint));
    r.add("Round", |cx| Unary::build(cx, UnOp::Round));
    r.add("Rsqrt", |cx| Unary::build(cx, UnOp::Rsqrt));
    r.add("Select", compare::Select::build);
    r.add("SelectV2", compare::Select::build);
    r.add("Selu", |cx| Unary::build(cx, UnOp::Selu));
    r.add("Sigmoid", |cx| Unary::build(cx, UnOp::Sigmoid));
    r.add("Sign", |cx| Unary::build(cx, UnOp::Sign));
    r.add("Sin", |cx| Unary::build(cx, UnOp::Sin));
    r.add("Sinh", |cx| Unary::build(cx, UnOp::Sinh));
    r.add("Softplus", |cx| Unary::build(cx, UnOp::Softplus));
    r.add("Softsign", |cx| Unary::build(cx, UnOp::Softsign));
    r.add("Sqrt", |cx| Unary::build(cx, UnOp::Sqrt));
    r.add("Square", |cx| Unary::build(cx, UnOp::Square));
    r.add("SquaredDifference", |cx| {
        Binary::build(cx, BinOp::SquaredDifference)
    });
    r.add("Sub", |cx| Binary::build(cx, BinOp::Sub));
    r.add("Tan", |cx| Unary::build(cx, UnOp::Tan));
    r.add("Tanh", |cx| Unary::build(cx, UnOp::Tanh));
    r.add("TruncateDiv", |cx| Binary::build(cx, BinOp::TruncateDiv));
    r.add("TruncateMod", |cx| Binary::build(cx, BinOp::TruncateMod));
}

/// NumPy broadcast of two shapes ([`kernels::broadcast::broadcast_shape`]), with TF's error.
pub(crate) fn broadcast_shape(a: &[usize], b: &[usize]) -> Result<Vec<usize>, OpError> {
    broadcast::broadcast_shape(a, b)
        .ok_or_else(|| OpError::shape(format!("incompatible shapes: {a:?} vs. {b:?}")))
}

/// Evaluates `$body` with the type alias `$t` bound to the element type of numeric dtype
/// `$dt`, or `$other` for non-numeric dtypes.
macro_rules! with_numeric {
    ($dt:expr, $t:ident => $body:expr, _ => $other:expr) => {{
        use crate::tensor::DType as D;
        match $dt {
            D::F32 => {
                type $t = f32;
                $body
            }
            D::F64 => {
                type $t = f64;
                $body
            }
            D::F16 => {
                type $t = half::f16;
                $body
            }
            D::BF16 => {
                type $t = half::bf16;
                $body
            }
            D::I8 => {
                type $t = i8;
                $body
            }
            D::I16 => {
                type $t = i16;
                $body
            }
            D::I32 => {
                type $t = i32;
                $body
            }
            D::I64 => {
                type $t = i64;
                $body
            }
            D::U8 => {
                type $t = u8;
                $body
            }
            D::U16 => {
                type $t = u16;
                $body
            }
            D::U32 => {
                type $t = u32;
                $body
            }
            D::U64 => {
                type $t = u64;
                $body
            }
            _ => $other,
        }
    }};
}
pub(super) use with_numeric;

/// Slices at least this long are split across rayon tasks.
const PAR_MIN: usize = 1 << 15;

/// Runs `body(first_index, chunk)` over `out` in chunks of `chunk` elements on rayon's pool.
/// `body` is a trait object on purpose: rayon's join plumbing is then compiled once per
/// element type instead of once per op × dtype × ISA closure, which had made it ~7 MB of
/// the shipped binary. One indirect call per 32k-element chunk costs nothing measurable.
fn par_chunks<O: Send>(out: &mut [O], chunk: usize, body: &(dyn Fn(usize, &mut [O]) + Sync)) {
    out.par_chunks_mut(chunk)
        .enumerate()
        .for_each(|(i, c)| body(i * chunk, c));
}

/// Runs `f` compiled for AVX2+FMA when the CPU has them, so the plain loops inlined into it
/// are vectorized 8 lanes wide. Results are identical on every path: Rust never contracts
/// `a * b + c` into an FMA on its own.
#[inline(always)]
fn vectorized<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2,fma")]
        unsafe fn avx2<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the running CPU has the features `avx2` is compiled for.
            return unsafe { avx2(f) };
        }
    }
    f()
}

/// A broadcast iteration plan: collapsed dims, each operand's strides, and the innermost
/// (row) length.
struct Plan<const K: usize> {
    dims: Vec<usize>,
    strides: [Vec<usize>; K],
}

impl<const K: usize> Plan<K> {
    /// Plan for an output of `shape` reading operands with `shapes` (NumPy broadcasting).
    fn new(shape: &[usize], shapes: [&[usize]; K]) -> Self {
        let st: [Vec<usize>; K] =
            std::array::from_fn(|k| broadcast_strides(shapes[k], shape.len()));
        Self::with_strides(shape, st.each_ref().map(|s| s.as_slice()))
    }
    fn with_strides(shape: &[usize], strides: [&[usize]; K]) -> Self {
        let (dims, strides) = collapse(shape, strides);
        Plan { dims, strides }
    }
    fn row_len(&self) -> usize {
        *self.dims.last().expect("plan has at least one axis")
    }
    fn inner(&self) -> [usize; K] {
        std::array::from_fn(|k| *self.strides[k].last().expect("same rank as dims"))
    }
    /// Calls `f(row, offsets)` for rows `first..first + count`, with each operand's offset of
    /// the row's first element.
    fn rows(&self, first: usize, count: usize, mut f: impl FnMut(usize, [usize; K])) {
        let outer = &self.dims[..self.dims.len() - 1];
        let mut idx = vec![0; outer.len()];
        let mut rem = first;
        for ax in (0..outer.len()).rev() {
            idx[ax] = rem % outer[ax];
            rem /= outer[ax];
        }
        let mut off: [usize; K] =
            std::array::from_fn(|k| idx.iter().zip(&self.strides[k]).map(|(i, s)| i * s).sum());
        for r in first..first + count {
            f(r, off);
            for ax in (0..outer.len()).rev() {
                idx[ax] += 1;
                for (o, s) in off.iter_mut().zip(&self.strides) {
                    *o += s[ax];
                }
                if idx[ax] < outer[ax] {
                    break;
                }
                for (o, s) in off.iter_mut().zip(&self.strides) {
                    *o -= s[ax] * outer[ax];
                }
                idx[ax] = 0;
            }
        }
    }
    /// Runs `body(first_row, out_rows)` over `out` in row-aligned chunks, in parallel when
    /// large, each chunk compiled for the best vector ISA.
    fn par_rows<O: Send>(&self, out: &mut [O], body: impl Fn(usize, &mut [O]) + Sync) {
        let n = self.row_len().max(1);
        if out.len() < 2 * PAR_MIN {
            return vectorized(|| body(0, out));
        }
        let per = PAR_MIN.div_ceil(n);
        par_chunks(out, per * n, &|start, c| vectorized(|| body(start / n, c)));
    }
}

/// Checks the element count of `shape` against the per-tensor cap.
fn alloc_len(
    limits: &crate::ops::Limits,
    shape: &[usize],
    dtype: crate::tensor::DType,
) -> Result<usize, OpError> {
    let n =
        num_elements(shape).ok_or_else(|| OpError::Limit(format!("shape {shape:?} overflows")))?;
    limits.check_alloc(n, dtype)?;
    Ok(n)
}

/// `f(a, b)` elementwise with broadcasting, into a new tensor of element type `O`.
pub(crate) fn map2_to<T: Element, O: Element + Default>(
    limits: &crate::ops::Limits,
    a: &Tensor,
    b: &Tensor,
    f: impl Fn(&T, &T) -> O + Sync,
) -> Result<Tensor, OpError> {
    let shape = broadcast_shape(a.shape(), b.shape())?;
    let n = alloc_len(limits, &shape, O::DTYPE)?;
    let (x, y) = (a.as_slice::<T>()?, b.as_slice::<T>()?);
    let mut out = vec![O::default(); n];
    if n > 0 && n < PAR_MIN {
        // Small and elementwise or against one element (the shape and index arithmetic of
        // a text model's preprocessing): no stride plan to build.
        if let Some(()) = small_zip(&mut out, x, y, &f) {
            return Ok(Tensor::from_vec(&shape, out)?);
        }
    }
    if n > 0 {
        // A full operand and a per-channel vector (`x - mean` on an image): whole rows.
        let full = broadcast_strides(&shape, shape.len());
        let vec_of = |t: &Tensor| {
            let st = broadcast_strides(t.shape(), shape.len());
            trailing_vector(&shape, &full, &st, t.len())
        };
        if a.shape() == shape.as_slice() {
            if let Some(c) = vec_of(b) {
                zip_rows_to(&mut out, x, &y[..c], |p, q| f(p, q));
                return Ok(Tensor::from_vec(&shape, out)?);
            }
        } else if b.shape() == shape.as_slice() {
            if let Some(c) = vec_of(a) {
                zip_rows_to(&mut out, y, &x[..c], |q, p| f(p, q));
                return Ok(Tensor::from_vec(&shape, out)?);
            }
        }
        let plan = Plan::new(&shape, [a.shape(), b.shape()]);
        let (len, [ia, ib]) = (plan.row_len(), plan.inner());
        plan.par_rows(&mut out, |first, chunk| {
            let count = chunk.len() / len;
            let mut rows = chunk.chunks_exact_mut(len);
            plan.rows(first, count, |_, [oa, ob]| {
                let o = rows.next().expect("one chunk per row");
                match (ia, ib) {
                    (1, 1) => {
                        for ((o, x), y) in o.iter_mut().zip(&x[oa..oa + len]).zip(&y[ob..ob + len])
                        {
                            *o = f(x, y);
                        }
                    }
                    (0, 1) => {
                        let x = &x[oa];
                        for (o, y) in o.iter_mut().zip(&y[ob..ob + len]) {
                            *o = f(x, y);
                        }
                    }
                    (1, 0) => {
                        let y = &y[ob];
                        for (o, x) in o.iter_mut().zip(&x[oa..oa + len]) {
                            *o = f(x, y);
                        }
                    }
                    _ => {
                        for (j, o) in o.iter_mut().enumerate() {
                            *o = f(&x[oa + j * ia], &y[ob + j * ib]);
                        }
                    }
                }
            });
        });
    }
    Ok(Tensor::from_vec(&shape, out)?)
}

/// `out[i] = f(x[i], y[i])` when `x` and `y` both have `out`'s element count (then, as
/// broadcasting never shrinks a dimension, their shapes differ from the output's only by
/// size-1 axes, so row-major positions match), or with the one element of a single-element
/// operand; `None` (nothing written) for any other broadcast.
fn small_zip<T, O>(out: &mut [O], x: &[T], y: &[T], f: impl Fn(&T, &T) -> O) -> Option<()> {
    let n = out.len();
    match (x.len() == n, y.len() == n) {
        (true, true) => {
            for ((o, x), y) in out.iter_mut().zip(x).zip(y) {
                *o = f(x, y);
            }
        }
        (true, false) if y.len() == 1 => {
            let y = &y[0];
            for (o, x) in out.iter_mut().zip(x) {
                *o = f(x, y);
            }
        }
        (false, true) if x.len() == 1 => {
            let x = &x[0];
            for (o, y) in out.iter_mut().zip(y) {
                *o = f(x, y);
            }
        }
        _ => return None,
    }
    Some(())
}

/// `out = f(out, b)` where `out` already has the output shape and `b` is read through
/// `b_strides` (one per output axis, 0 on broadcast axes).
fn zip_in_place<T: Element + Copy>(
    out: &mut [T],
    shape: &[usize],
    b: &[T],
    b_strides: &[usize],
    f: impl Fn(T, T) -> T + Sync,
) {
    if out.is_empty() {
        return;
    }
    let out_strides = broadcast_strides(shape, shape.len());
    if let Some(c) = trailing_vector(shape, &out_strides, b_strides, b.len()) {
        zip_rows_in_place(out, &b[..c], f);
        return;
    }
    let plan = Plan::with_strides(shape, [&out_strides, b_strides]);
    let (len, [_, ib]) = (plan.row_len(), plan.inner());
    plan.par_rows(out, |first, chunk| {
        let count = chunk.len() / len;
        let mut rows = chunk.chunks_exact_mut(len);
        plan.rows(first, count, |_, [_, ob]| {
            let o = rows.next().expect("one chunk per row");
            match ib {
                1 => {
                    for (o, &y) in o.iter_mut().zip(&b[ob..ob + len]) {
                        *o = f(*o, y);
                    }
                }
                0 => {
                    let y = b[ob];
                    for o in o.iter_mut() {
                        *o = f(*o, y);
                    }
                }
                _ => {
                    for (j, o) in o.iter_mut().enumerate() {
                        *o = f(*o, b[ob + j * ib]);
                    }
                }
            }
        });
    });
}

/// `Some(c)` if `b` (broadcast strides `b_strides` over `shape`, whose own strides are
/// `out_strides`) is a vector of its first `c` elements repeated along the leading axes: a
/// per-channel operand (`x - mean`, `x * scale` on NHWC).
fn trailing_vector(
    shape: &[usize],
    out_strides: &[usize],
    b_strides: &[usize],
    b_len: usize,
) -> Option<usize> {
    let mut c = 1usize;
    let mut k = shape.len();
    while k > 0 && b_strides[k - 1] == out_strides[k - 1] {
        k -= 1;
        c = c.checked_mul(shape[k])?;
    }
    let leading_broadcast = b_strides[..k].iter().all(|&s| s == 0);
    (k > 0 && c > 1 && c <= b_len && leading_broadcast).then_some(c)
}

/// `out[i] = f(out[i], v[i % v.len()])` (`out.len()` a multiple of `v.len()`): the vector is
/// tiled to a multiple of 16 lanes so short vectors (3 colour channels) vectorize too.
fn zip_rows_in_place<T: Element + Copy>(out: &mut [T], v: &[T], f: impl Fn(T, T) -> T + Sync) {
    let c = v.len();
    let mut reps = 1;
    while (c * reps) % 16 != 0 && c * reps < 64 {
        reps += 1;
    }
    let tile: Vec<T> = v.iter().copied().cycle().take(c * reps).collect();
    let len = tile.len();
    let go = |_: usize, chunk: &mut [T]| {
        vectorized(|| {
            let mut rows = chunk.chunks_exact_mut(len);
            for row in rows.by_ref() {
                for (o, &y) in row.iter_mut().zip(&tile) {
                    *o = f(*o, y);
                }
            }
            for (o, &y) in rows.into_remainder().iter_mut().zip(&tile) {
                *o = f(*o, y);
            }
        })
    };
    // Chunks of whole tiles, so every chunk starts at channel 0.
    let per = len * PAR_MIN.div_ceil(len);
    if out.len() > per {
        par_chunks(out, per, &go);
    } else {
        go(0, out);
    }
}

/// `out[i] = f(&full[i], &v[i % v.len()])` (`out` and `full` the same length, a multiple of
/// `v.len()`), in chunks of whole vectors.
fn zip_rows_to<T: Element, O: Element>(
    out: &mut [O],
    full: &[T],
    v: &[T],
    f: impl Fn(&T, &T) -> O + Sync,
) {
    let c = v.len();
    let go = |first: usize, chunk: &mut [O]| {
        vectorized(|| {
            let src = &full[first..first + chunk.len()];
            for (orow, srow) in chunk.chunks_mut(c).zip(src.chunks(c)) {
                for ((o, x), y) in orow.iter_mut().zip(srow).zip(v) {
                    *o = f(x, y);
                }
            }
        })
    };
    let per = c * PAR_MIN.div_ceil(c);
    if out.len() > per {
        par_chunks(out, per, &go);
    } else {
        go(0, out);
    }
}

/// True if `t` may be written in place cheaply (not borrowed from a mapped file).
fn writable<T: Element>(t: &Tensor) -> bool {
    t.buf::<T>().is_ok_and(|b| !b.is_mapped())
}

/// `f(a, b)` elementwise with broadcasting, same element type in and out; reuses `a`'s or
/// `b`'s buffer when it has the output shape.
fn map2<T: Element + Copy + Default>(
    limits: &crate::ops::Limits,
    a: Tensor,
    b: Tensor,
    f: impl Fn(T, T) -> T + Sync,
) -> Result<Tensor, OpError> {
    let shape = broadcast_shape(a.shape(), b.shape())?;
    alloc_len(limits, &shape, T::DTYPE)?;
    let a_fits = a.shape() == shape.as_slice() && writable::<T>(&a);
    if a_fits || (b.shape() == shape.as_slice() && writable::<T>(&b)) {
        let (mut out, other, swap) = if a_fits { (a, b, false) } else { (b, a, true) };
        let src = other.as_slice::<T>()?;
        let dst = out.as_mut_slice::<T>()?;
        let n = dst.len();
        if n < PAR_MIN && (src.len() == n || src.len() == 1) {
            // Small and elementwise or against one element: no stride plan (`small_zip`).
            let y = |i: usize| src[if src.len() == 1 { 0 } else { i }];
            for (i, o) in dst.iter_mut().enumerate() {
                *o = if swap { f(y(i), *o) } else { f(*o, y(i)) };
            }
            return Ok(out);
        }
        let st = broadcast_strides(other.shape(), shape.len());
        if swap {
            zip_in_place(dst, &shape, src, &st, |o, x| f(x, o));
        } else {
            zip_in_place(dst, &shape, src, &st, f);
        }
        return Ok(out);
    }
    map2_to::<T, T>(limits, &a, &b, |x, y| f(*x, *y))
}

/// `f(x)` elementwise, in place when `x` is writable.
fn map1<T: Element + Copy + Default>(
    x: Tensor,
    f: impl Fn(T) -> T + Sync,
) -> Result<Tensor, OpError> {
    if writable::<T>(&x) {
        let mut x = x;
        map_slice(x.as_mut_slice::<T>()?, f);
        return Ok(x);
    }
    map1_to(&x, f)
}

/// Applies `f` to every element of `s` in place, vectorized and in parallel when large.
fn map_slice<T: Copy + Send>(s: &mut [T], f: impl Fn(T) -> T + Sync) {
    let go = |c: &mut [T]| {
        vectorized(|| {
            for v in c.iter_mut() {
                *v = f(*v);
            }
        })
    };
    if s.len() < 2 * PAR_MIN {
        go(s)
    } else {
        par_chunks(s, PAR_MIN, &|_, c| go(c))
    }
}

/// `f(x)` elementwise into a new tensor of element type `O`.
pub(crate) fn map1_to<T: Element + Copy, O: Element + Default>(
    x: &Tensor,
    f: impl Fn(T) -> O + Sync,
) -> Result<Tensor, OpError> {
    let src = x.as_slice::<T>()?;
    let mut out = vec![O::default(); src.len()];
    let go = |(o, s): (&mut [O], &[T])| {
        vectorized(|| {
            for (o, &v) in o.iter_mut().zip(s) {
                *o = f(v);
            }
        })
    };
    if src.len() < 2 * PAR_MIN {
        go((&mut out, src))
    } else {
        par_chunks(&mut out, PAR_MIN, &|start, o| {
            let n = o.len();
            go((o, &src[start..start + n]))
        })
    }
    Ok(Tensor::from_vec(x.shape(), out)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_shapes_like_numpy() {
        assert_eq!(broadcast_shape(&[2, 1, 3], &[4, 1]).unwrap(), vec![2, 4, 3]);
        assert_eq!(broadcast_shape(&[], &[3]).unwrap(), vec![3]);
        assert_eq!(broadcast_shape(&[0, 1], &[1, 5]).unwrap(), vec![0, 5]);
        assert!(broadcast_shape(&[2], &[3]).is_err());
    }

    #[test]
    fn in_place_per_channel_vectors_match_the_general_plan() {
        let limits = crate::ops::Limits::default();
        // NHWC minus a [1, 1, 1, C] vector (and `[C]`), C from the colour channels to a
        // non-tiling width, small and large enough for parallel chunks, both operand orders.
        for (pix, c) in [
            (5, 3),
            (7, 5),
            (3 * PAR_MIN / 5 + 3, 3),
            (PAR_MIN / 40 + 1, 40),
        ] {
            let x: Vec<f32> = (0..pix * c).map(|i| (i % 97) as f32 * 0.5).collect();
            let m: Vec<f32> = (0..c).map(|i| i as f32 + 0.25).collect();
            for vshape in [vec![1, 1, 1, c], vec![c]] {
                for x_first in [true, false] {
                    let a = Tensor::from_vec(&[1, pix, 1, c], x.clone()).unwrap();
                    let b = Tensor::from_vec(&vshape, m.clone()).unwrap();
                    let (l, r) = if x_first { (a, b) } else { (b, a) };
                    let out = map2::<f32>(&limits, l, r, |p, q| p - q).unwrap();
                    let v = out.as_slice::<f32>().unwrap();
                    for (i, &o) in v.iter().enumerate() {
                        let want = if x_first {
                            x[i] - m[i % c]
                        } else {
                            m[i % c] - x[i]
                        };
                        assert_eq!(o, want, "pix {pix} c {c} at {i}");
                    }
                }
            }
        }
    }

    #[test]
    fn small_elementwise_and_one_element_operands_keep_order_and_shape() {
        let limits = crate::ops::Limits::default();
        let t = |shape: &[usize], v: &[i64]| Tensor::from_vec(shape, v.to_vec()).unwrap();
        // (a, b, output shape, a - b): equal counts with size-1 axes on either side, a
        // scalar or one-element operand on either side, and a real broadcast (general plan).
        let cases: [(Tensor, Tensor, Vec<usize>, Vec<i64>); 5] = [
            (
                t(&[1, 3], &[10, 20, 30]),
                t(&[3], &[1, 2, 3]),
                vec![1, 3],
                vec![9, 18, 27],
            ),
            (
                t(&[3], &[10, 20, 30]),
                t(&[3, 1], &[1, 2, 3]),
                vec![3, 3],
                vec![9, 19, 29, 8, 18, 28, 7, 17, 27],
            ),
            (
                t(&[3], &[10, 20, 30]),
                t(&[], &[1]),
                vec![3],
                vec![9, 19, 29],
            ),
            (
                t(&[1, 1], &[100]),
                t(&[2], &[1, 2]),
                vec![1, 2],
                vec![99, 98],
            ),
            (
                t(&[2, 1], &[5, 6]),
                t(&[2, 1], &[1, 1]),
                vec![2, 1],
                vec![4, 5],
            ),
        ];
        for (a, b, shape, want) in cases {
            // Into a new buffer (`map2_to`, as comparisons) and in place (`map2`).
            let out = map2_to::<i64, i64>(&limits, &a, &b, |x, y| x - y).unwrap();
            assert_eq!(
                (out.shape(), out.as_slice::<i64>().unwrap()),
                (&shape[..], &want[..])
            );
            let out = map2::<i64>(&limits, a, b, |x, y| x - y).unwrap();
            assert_eq!(
                (out.shape(), out.as_slice::<i64>().unwrap()),
                (&shape[..], &want[..])
            );
        }
        // Both operands one shared buffer: the input is not written through.
        let a = t(&[2], &[3, 4]);
        let out = map2::<i64>(&limits, a.clone(), a.clone(), |x, y| x * y).unwrap();
        assert_eq!(out.as_slice::<i64>().unwrap(), &[9, 16]);
        assert_eq!(a.as_slice::<i64>().unwrap(), &[3, 4]);
    }

    #[test]
    fn map2_broadcasts_and_parallel_chunks_agree() {
        let limits = crate::ops::Limits::default();
        // [3, 1, 4] + [5, 1]: strided on both sides.
        let a = Tensor::from_vec(&[3, 1, 4], (0..12).map(|v| v as i64).collect()).unwrap();
        let b = Tensor::from_vec(&[5, 1], (0..5).map(|v| 100 * v as i64).collect()).unwrap();
        let out = map2::<i64>(&limits, a, b, |x, y| x + y).unwrap();
        assert_eq!(out.shape(), &[3, 5, 4]);
        let v = out.as_slice::<i64>().unwrap();
        assert_eq!(v[(2 * 5 + 3) * 4 + 1], 9 + 300);
        // Large enough to split into parallel chunks, with a broadcast row operand.
        let rows = 3 * PAR_MIN / 7 + 1;
        let a = Tensor::from_vec(&[rows, 7], vec![1.0f32; rows * 7]).unwrap();
        let b = Tensor::from_vec(&[7], (0..7).map(|v| v as f32).collect()).unwrap();
        let out = map2_to::<f32, f32>(&limits, &b, &a, |x, y| x - y).unwrap();
        let v = out.as_slice::<f32>().unwrap();
        assert!(v
            .chunks(7)
            .all(|r| r == [-1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0]));
    }
}

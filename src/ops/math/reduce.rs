//! Reductions and scans along axes: `Sum`, `Mean`, `Max`, `Min`, `Prod`, `All`, `Any`,
//! `ArgMax`, `ArgMin`, `Softmax`, `LogSoftmax`, `Cumsum`, `Cumprod`, `TopKV2`, `L2Loss`.
//! TF reference: core/kernels/reduction_ops_common.h, argmax_op.cc, softmax_op_functor.h,
//! scan_ops.h, topk_op.cc, l2loss_op.cc.
//!
//! A reduction views its input as `[outer, reduced, inner]` for `tfhub_kernels::reduce`: size-1
//! dims are dropped and adjacent dims of the same kind merged, and when the reduced axes are
//! still not one contiguous block the input is first permuted to `[kept..., reduced...]`.
//! f16/bf16 are reduced in f32 and rounded once (TF sums them in half precision with Eigen's
//! tree order, so long f16 sums can differ from TF's by a few half ulps).

use std::cmp::Ordering;

use half::{bf16, f16};

use super::matmul::permute;
use crate::ops::kernels::elementwise::exp_f32;
use crate::ops::kernels::reduce::{reduce as reduce_generic, reduce_f32, ReduceOp};
use crate::ops::{take_inputs, BuildCtx, EvalCtx, Op, OpError, Registry, Tensors};
use crate::tensor::{DType, Data, Element, Tensor};

pub(crate) fn register(r: &mut Registry) {
    let num = |op| Kind::Num(op);
    r.add("All", |cx| Reduce::build(cx, Kind::All));
    r.add("Any", |cx| Reduce::build(cx, Kind::Any));
    r.add("ArgMax", |cx| ArgReduce::build(cx, true));
    r.add("ArgMin", |cx| ArgReduce::build(cx, false));
    r.add("Cumprod", |cx| Scan::build(cx, true));
    r.add("Cumsum", |cx| Scan::build(cx, false));
    r.add("L2Loss", L2Loss::build);
    r.add("LogSoftmax", |cx| Softmax::build(cx, true));
    r.add("Max", move |cx| Reduce::build(cx, num(ReduceOp::Max)));
    r.add("Mean", move |cx| Reduce::build(cx, num(ReduceOp::Mean)));
    r.add("Min", move |cx| Reduce::build(cx, num(ReduceOp::Min)));
    r.add("Prod", move |cx| Reduce::build(cx, num(ReduceOp::Prod)));
    r.add("Softmax", |cx| Softmax::build(cx, false));
    r.add("Sum", move |cx| Reduce::build(cx, num(ReduceOp::Sum)));
    r.add("TopKV2", TopK::build);
}

fn fmt_shape(s: &[usize]) -> String {
    let dims: Vec<String> = s.iter().map(|d| d.to_string()).collect();
    format!("[{}]", dims.join(","))
}

/// What a reduction computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Num(ReduceOp),
    All,
    Any,
}

/// `Sum`, `Mean`, `Max`, `Min`, `Prod`, `All`, `Any` with `keep_dims`.
#[derive(Debug)]
struct Reduce {
    kind: Kind,
    keep_dims: bool,
}

impl Reduce {
    fn build(cx: &mut BuildCtx<'_>, kind: Kind) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(2)?;
        Ok(Box::new(Reduce {
            kind,
            keep_dims: cx.attr_opt_bool("keep_dims").unwrap_or(false),
        }))
    }
}

impl Op for Reduce {
    fn eval(&self, _cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [x, axis] = take_inputs(inputs)?;
        if axis.rank() > 1 {
            return Err(OpError::invalid(
                "reduction indices must be a scalar or vector",
            ));
        }
        let mask = axis_mask(&axis.to_i64_vec()?, x.rank())?;
        let out = reduce_masked(&x, &mask, self.kind)?;
        if !self.keep_dims {
            return Ok(tensors![out]);
        }
        let shape: Vec<usize> = x
            .shape()
            .iter()
            .zip(&mask)
            .map(|(&d, &m)| if m { 1 } else { d })
            .collect();
        Ok(tensors![out.reshape(&shape)?])
    }
}

/// The reduced-axis bitmap. As TF: axes in `[-rank, rank)`, duplicates are an error.
fn axis_mask(axes: &[i64], rank: usize) -> Result<Vec<bool>, OpError> {
    let mut mask = vec![false; rank];
    let r = rank as i64;
    for &a in axes {
        if a < -r || a >= r {
            return Err(OpError::invalid(format!(
                "Invalid reduction dimension ({a} for input with {rank} dimension(s)"
            )));
        }
        let i = a.rem_euclid(r) as usize;
        if std::mem::replace(&mut mask[i], true) {
            return Err(OpError::invalid(format!(
                "Invalid reduction arguments: Axes contains duplicate dimension: {i}"
            )));
        }
    }
    Ok(mask)
}

/// Sums `x` over `axes` (distinct, in range), dropping them (for `Einsum`).
pub(super) fn sum_axes(_cx: &EvalCtx<'_>, x: &Tensor, axes: &[usize]) -> Result<Tensor, OpError> {
    let mut mask = vec![false; x.rank()];
    for &a in axes {
        mask[a] = true;
    }
    reduce_masked(x, &mask, Kind::Num(ReduceOp::Sum))
}

/// `[outer, reduced, inner]` view of `x` for reducing the `mask` axes, and the permutation
/// to apply first when the reduced axes do not form one block.
fn plan(shape: &[usize], mask: &[bool]) -> (usize, usize, usize, Option<Vec<usize>>) {
    let prod = |want: bool| -> usize {
        shape
            .iter()
            .zip(mask)
            .filter(|(_, &m)| m == want)
            .map(|(&d, _)| d)
            .product()
    };
    let (kept, red) = (prod(false), prod(true));
    if kept * red == 0 {
        return (kept, red, 1, None);
    }
    // Groups of adjacent non-trivial dims of the same kind.
    let mut groups: Vec<(bool, usize)> = Vec::new();
    for (&d, &m) in shape.iter().zip(mask) {
        if d == 1 {
            continue;
        }
        match groups.last_mut() {
            Some((gm, gd)) if *gm == m => *gd *= d,
            _ => groups.push((m, d)),
        }
    }
    match groups.iter().filter(|g| g.0).count() {
        0 => (kept, 1, 1, None),
        1 => {
            let at = groups.iter().position(|g| g.0).expect("one reduced group");
            let outer = groups[..at].iter().map(|g| g.1).product();
            let inner = groups[at + 1..].iter().map(|g| g.1).product();
            (outer, groups[at].1, inner, None)
        }
        _ => {
            let perm = (0..shape.len())
                .filter(|&i| !mask[i])
                .chain((0..shape.len()).filter(|&i| mask[i]));
            (kept, red, 1, Some(perm.collect()))
        }
    }
}

/// Reduces `x` over the `mask` axes, which are dropped from the result.
fn reduce_masked(x: &Tensor, mask: &[bool], kind: Kind) -> Result<Tensor, OpError> {
    let kept: Vec<usize> = x
        .shape()
        .iter()
        .zip(mask)
        .filter(|(_, &m)| !m)
        .map(|(&d, _)| d)
        .collect();
    let (outer, reduced, inner, perm) = plan(x.shape(), mask);
    let permuted;
    let src = match perm {
        Some(p) => {
            permuted = permute(x.clone(), &p)?;
            &permuted
        }
        None => x,
    };
    let data = match kind {
        Kind::Num(op) => reduce_num(src, op, outer, reduced, inner)?,
        Kind::All | Kind::Any => {
            let b = src
                .as_slice::<bool>()
                .map_err(|_| OpError::dtype(0, "bool", x.dtype()))?;
            let all = kind == Kind::All;
            let mut out = vec![all; outer * inner];
            for (o, orow) in out.chunks_mut(inner.max(1)).enumerate() {
                for r in 0..reduced {
                    let row = &b[(o * reduced + r) * inner..(o * reduced + r + 1) * inner];
                    for (acc, &v) in orow.iter_mut().zip(row) {
                        *acc = if all { *acc && v } else { *acc || v };
                    }
                }
            }
            Data::Bool(out.into())
        }
    };
    Ok(Tensor::new(&kept, data)?)
}

/// Numeric reduction of `[outer, reduced, inner]` into `[outer, inner]`.
fn reduce_num(
    x: &Tensor,
    op: ReduceOp,
    outer: usize,
    reduced: usize,
    inner: usize,
) -> Result<Data, OpError> {
    let n = outer * inner;
    fn generic<T: tfhub_kernels::reduce::Reducible + Element>(
        op: ReduceOp,
        b: &[T],
        (outer, reduced, inner): (usize, usize, usize),
    ) -> Data {
        let mut out = vec![T::ZERO; outer * inner];
        reduce_generic(op, b, outer, reduced, inner, &mut out);
        T::wrap(out.into())
    }
    let dims = (outer, reduced, inner);
    // f16/bf16: in f32, rounded once. TF's half `Mean` divides the half-rounded sum by the
    // count, so a sum that overflows half gives ±inf even when the mean would fit.
    fn via_f32<H: Copy>(
        op: ReduceOp,
        b: &[H],
        d: (usize, usize, usize),
        to: impl Fn(H) -> f32,
        from: impl Fn(f32) -> H,
    ) -> Vec<H> {
        let x: Vec<f32> = b.iter().map(|&v| to(v)).collect();
        let sum_op = if op == ReduceOp::Mean {
            ReduceOp::Sum
        } else {
            op
        };
        let mut out = vec![0f32; d.0 * d.2];
        reduce_f32(sum_op, &x, d.0, d.1, d.2, &mut out);
        out.into_iter()
            .map(|v| {
                let h = from(v);
                if op == ReduceOp::Mean {
                    from(to(h) / d.1 as f32)
                } else {
                    h
                }
            })
            .collect()
    }
    Ok(match x.data() {
        Data::F32(b) => {
            let mut out = vec![0f32; n];
            reduce_f32(op, b, outer, reduced, inner, &mut out);
            Data::F32(out.into())
        }
        Data::F64(b) => generic(op, b, dims),
        Data::I32(b) => generic(op, b, dims),
        Data::I64(b) => generic(op, b, dims),
        Data::F16(b) => Data::F16(via_f32(op, b, dims, f16::to_f32, f16::from_f32).into()),
        Data::BF16(b) => Data::BF16(via_f32(op, b, dims, bf16::to_f32, bf16::from_f32).into()),
        Data::I8(b) => Data::I8(reduce_narrow(op, b, dims).into()),
        Data::I16(b) => Data::I16(reduce_narrow(op, b, dims).into()),
        Data::U8(b) => Data::U8(reduce_narrow(op, b, dims).into()),
        Data::U16(b) => Data::U16(reduce_narrow(op, b, dims).into()),
        Data::U32(b) => Data::U32(reduce_narrow(op, b, dims).into()),
        Data::U64(b) => Data::U64(reduce_narrow(op, b, dims).into()),
        _ => return Err(OpError::dtype(0, "numeric", x.dtype())),
    })
}

/// `Softmax` / `LogSoftmax` over the last axis, as TF's Eigen functor: `s = x - max(x)`, then
/// `exp(s) * (1 / sum(exp(s)))` or `s - log(sum(exp(s)))` (a multiply by the reciprocal, not
/// a division, as TF does).
#[derive(Debug)]
struct Softmax {
    log: bool,
}

impl Softmax {
    fn build(cx: &mut BuildCtx<'_>, log: bool) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(1)?;
        Ok(Box::new(Softmax { log }))
    }
}

/// Softmax of each contiguous row of `c` elements of `x` (f32).
///
/// Softmax (not log) runs one fused pass per row (max, shifted exp into the output, sum,
/// scale) while the row is in L1, in parallel over rows when large; each step uses the same
/// kernels and per-row summation order as the unfused passes, so results are identical.
pub(super) fn softmax_f32(x: &[f32], c: usize, log: bool) -> Vec<f32> {
    use crate::ops::kernels::transcend::exp_serial;
    use rayon::prelude::*;
    if !log && c > 0 {
        let mut out = crate::tensor::pool::f32_for_overwrite(x.len());
        let per = (1usize << 14).div_ceil(c).max(1) * c;
        let task = |(xs, os): (&[f32], &mut [f32])| {
            let mut shifted = vec![0f32; c];
            let mut acc = [0f32];
            for (xr, or) in xs.chunks_exact(c).zip(os.chunks_exact_mut(c)) {
                reduce_f32(ReduceOp::Max, xr, 1, c, 1, &mut acc);
                let m = acc[0];
                for (s, &v) in shifted.iter_mut().zip(xr) {
                    *s = v - m;
                }
                exp_serial(&shifted, or);
                reduce_f32(ReduceOp::Sum, or, 1, c, 1, &mut acc);
                let inv = 1.0 / acc[0];
                or.iter_mut().for_each(|v| *v *= inv);
            }
        };
        if x.len() > per {
            x.par_chunks(per)
                .zip(out.par_chunks_mut(per))
                .for_each(task);
        } else {
            task((x, &mut out));
        }
        return out;
    }
    let rows = x.len() / c;
    let mut max = vec![0f32; rows];
    reduce_f32(ReduceOp::Max, x, rows, c, 1, &mut max);
    let shifted: Vec<f32> = x
        .chunks_exact(c)
        .zip(&max)
        .flat_map(|(r, &m)| r.iter().map(move |&v| v - m))
        .collect();
    let mut e = vec![0f32; x.len()];
    exp_f32(&shifted, &mut e);
    let mut sum = vec![0f32; rows];
    reduce_f32(ReduceOp::Sum, &e, rows, c, 1, &mut sum);
    if log {
        let mut out = shifted;
        for (row, &s) in out.chunks_exact_mut(c).zip(&sum) {
            let l = s.ln();
            row.iter_mut().for_each(|v| *v -= l);
        }
        out
    } else {
        for (row, &s) in e.chunks_exact_mut(c).zip(&sum) {
            let inv = 1.0 / s;
            row.iter_mut().for_each(|v| *v *= inv);
        }
        e
    }
}

fn softmax_f64(x: &[f64], c: usize, log: bool) -> Vec<f64> {
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks_exact(c) {
        let m = row.iter().fold(
            f64::NEG_INFINITY,
            |a, &v| if v > a || v.is_nan() { v } else { a },
        );
        let s: f64 = row.iter().map(|&v| (v - m).exp()).sum();
        if log {
            out.extend(row.iter().map(|&v| (v - m) - s.ln()));
        } else {
            out.extend(row.iter().map(|&v| (v - m).exp() * (1.0 / s)));
        }
    }
    out
}

impl Op for Softmax {
    fn eval(&self, _cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [x] = take_inputs(inputs)?;
        let Some(&c) = x.shape().last() else {
            return Err(OpError::invalid("logits must have >= 1 dimension, got []"));
        };
        if x.is_empty() {
            return Ok(tensors![x]);
        }
        let data = match x.data() {
            Data::F32(b) => Data::F32(softmax_f32(b, c, self.log).into()),
            Data::F64(b) => Data::F64(softmax_f64(b, c, self.log).into()),
            Data::F16(b) => {
                let v: Vec<f32> = b.iter().map(|v| v.to_f32()).collect();
                Data::F16(
                    softmax_f32(&v, c, self.log)
                        .into_iter()
                        .map(f16::from_f32)
                        .collect::<Vec<_>>()
                        .into(),
                )
            }
            Data::BF16(b) => {
                let v: Vec<f32> = b.iter().map(|v| v.to_f32()).collect();
                Data::BF16(
                    softmax_f32(&v, c, self.log)
                        .into_iter()
                        .map(bf16::from_f32)
                        .collect::<Vec<_>>()
                        .into(),
                )
            }
            _ => {
                return Err(OpError::dtype(
                    0,
                    "float32, float64, float16 or bfloat16",
                    x.dtype(),
                ))
            }
        };
        Ok(tensors![Tensor::new(x.shape(), data)?])
    }
}

/// Normalizes a scalar axis input against `rank` (`[-rank, rank)`).
fn scalar_axis(axis: &Tensor, rank: usize, what: &str) -> Result<usize, OpError> {
    if axis.rank() != 0 {
        return Err(OpError::invalid(format!(
            "{what} must be a scalar, got shape {}",
            fmt_shape(axis.shape())
        )));
    }
    let a = axis.scalar_value_i64()?;
    let r = rank as i64;
    if a < -r || a >= r {
        return Err(OpError::invalid(format!(
            "Expected {what} in the range [{}, {r}), but got {a}",
            -r
        )));
    }
    Ok(a.rem_euclid(r.max(1)) as usize)
}

/// TF-style total order for `TopKV2`: larger first, NaN before everything (TF's comparator is
/// not a strict weak order with NaN, so its NaN placement is unspecified), then lower index.
fn desc<T: PartialOrd>(a: &T, b: &T) -> Ordering {
    #[allow(clippy::eq_op)]
    let (an, bn) = (a != a, b != b);
    match (an, bn) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        _ => b.partial_cmp(a).unwrap_or(Ordering::Equal),
    }
}

/// DType accepted by an integer-output attr.
fn index_dtype(cx: &BuildCtx<'_>, name: &str, default: DType) -> Result<DType, OpError> {
    let t = cx.attr_opt_type(name)?.unwrap_or(default);
    match t {
        DType::I32 | DType::I64 => Ok(t),
        other => Err(OpError::Attr {
            name: name.into(),
            what: format!("{other} is not supported (int32 or int64)"),
        }),
    }
}

/// Integer types the kernels crate does not reduce: computed in i128 with wrapping
/// arithmetic, which is congruent to `T`'s wrapping arithmetic modulo `2^bits`.
trait Narrow: Copy {
    const MIN: i128;
    const MAX: i128;
    fn wide(self) -> i128;
    fn narrow(v: i128) -> Self;
}

macro_rules! narrow {
    ($($t:ty),*) => {$(
        impl Narrow for $t {
            const MIN: i128 = <$t>::MIN as i128;
            const MAX: i128 = <$t>::MAX as i128;
            fn wide(self) -> i128 {
                self as i128
            }
            fn narrow(v: i128) -> Self {
                v as $t
            }
        }
    )*};
}
narrow!(i8, i16, u8, u16, u32, u64);

fn reduce_narrow<T: Narrow>(
    op: ReduceOp,
    x: &[T],
    (outer, reduced, inner): (usize, usize, usize),
) -> Vec<T> {
    let init = match op {
        ReduceOp::Sum | ReduceOp::Mean => 0,
        ReduceOp::Prod => 1,
        ReduceOp::Max => T::MIN,
        ReduceOp::Min => T::MAX,
    };
    let mut out = Vec::with_capacity(outer * inner);
    for o in 0..outer {
        for i in 0..inner {
            let mut acc = init;
            for r in 0..reduced {
                let v = x[(o * reduced + r) * inner + i].wide();
                acc = match op {
                    ReduceOp::Sum | ReduceOp::Mean => T::narrow(acc.wrapping_add(v)).wide(),
                    ReduceOp::Prod => T::narrow(acc.wrapping_mul(v)).wide(),
                    ReduceOp::Max => acc.max(v),
                    ReduceOp::Min => acc.min(v),
                };
            }
            if op == ReduceOp::Mean && reduced > 0 {
                acc /= reduced as i128; // truncates toward zero, as TF's integer mean
            }
            out.push(T::narrow(acc));
        }
    }
    out
}

/// `ArgMax` / `ArgMin` along a scalar axis, with `output_type` (default int64).
#[derive(Debug)]
struct ArgReduce {
    max: bool,
    out: DType,
}

impl ArgReduce {
    fn build(cx: &mut BuildCtx<'_>, max: bool) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(2)?;
        Ok(Box::new(ArgReduce {
            max,
            out: index_dtype(cx, "output_type", DType::I64)?,
        }))
    }
}

/// Eigen's `ArgMaxPairReducer` (or `ArgMin`) run in order: the accumulator starts at
/// `(0, lowest)` (`(0, highest)` for min); a value replaces it when strictly better, or equal
/// with a lower index. So NaNs are skipped, and a row with no value beating the start (all NaN)
/// gives index 0. `lo`/`hi` are the type's finite lowest/highest values.
fn arg_reduce<T: Copy + PartialOrd>(
    x: &[T],
    (outer, reduced, inner): (usize, usize, usize),
    max: bool,
    lo: T,
    hi: T,
) -> Vec<i64> {
    let mut out = Vec::with_capacity(outer * inner);
    for o in 0..outer {
        for i in 0..inner {
            let (mut bi, mut bv) = (0usize, if max { lo } else { hi });
            for r in 0..reduced {
                let v = x[(o * reduced + r) * inner + i];
                let (better, worse) = if max {
                    (v > bv, v < bv)
                } else {
                    (v < bv, v > bv)
                };
                if !worse && (better || bi > r) {
                    (bi, bv) = (r, v);
                }
            }
            out.push(bi as i64);
        }
    }
    out
}

impl Op for ArgReduce {
    fn eval(&self, _cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [x, axis] = take_inputs(inputs)?;
        let shape = x.shape();
        let ax = scalar_axis(&axis, shape.len(), "dimension")?;
        if shape.is_empty() {
            return Err(OpError::invalid(
                "Expected dimension in the range [0, 0), but got 0",
            ));
        }
        if shape[ax] == 0 {
            return Err(OpError::invalid(format!(
                "Reduction axis {ax} is empty in shape {}",
                fmt_shape(shape)
            )));
        }
        let d = (
            shape[..ax].iter().product(),
            shape[ax],
            shape[ax + 1..].iter().product(),
        );
        macro_rules! go {
            ($b:expr, $lo:expr, $hi:expr) => {
                arg_reduce(&$b[..], d, self.max, $lo, $hi)
            };
        }
        let idx = match x.data() {
            Data::F32(b) => go!(b, f32::MIN, f32::MAX),
            Data::F64(b) => go!(b, f64::MIN, f64::MAX),
            Data::F16(b) => go!(b, f16::MIN, f16::MAX),
            Data::BF16(b) => go!(b, bf16::MIN, bf16::MAX),
            Data::I8(b) => go!(b, i8::MIN, i8::MAX),
            Data::I16(b) => go!(b, i16::MIN, i16::MAX),
            Data::I32(b) => go!(b, i32::MIN, i32::MAX),
            Data::I64(b) => go!(b, i64::MIN, i64::MAX),
            Data::U8(b) => go!(b, u8::MIN, u8::MAX),
            Data::U16(b) => go!(b, u16::MIN, u16::MAX),
            Data::U32(b) => go!(b, u32::MIN, u32::MAX),
            Data::U64(b) => go!(b, u64::MIN, u64::MAX),
            Data::Bool(b) => go!(b, false, true),
            _ => return Err(OpError::dtype(0, "numeric", x.dtype())),
        };
        let mut out_shape = shape.to_vec();
        out_shape.remove(ax);
        Ok(tensors![index_tensor(&out_shape, idx, self.out)?])
    }
}

fn index_tensor(shape: &[usize], idx: Vec<i64>, dt: DType) -> Result<Tensor, OpError> {
    Ok(match dt {
        DType::I32 => Tensor::from_vec(shape, idx.into_iter().map(|v| v as i32).collect())?,
        _ => Tensor::from_vec(shape, idx)?,
    })
}

/// `Cumsum` / `Cumprod` along a scalar axis, with `exclusive` and `reverse`. Accumulates in
/// the element type step by step as TF does (f16 sums stall like TF's).
#[derive(Debug)]
struct Scan {
    prod: bool,
    exclusive: bool,
    reverse: bool,
}

impl Scan {
    fn build(cx: &mut BuildCtx<'_>, prod: bool) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(2)?;
        Ok(Box::new(Scan {
            prod,
            exclusive: cx.attr_opt_bool("exclusive").unwrap_or(false),
            reverse: cx.attr_opt_bool("reverse").unwrap_or(false),
        }))
    }

    fn run<T: Copy>(
        &self,
        x: &[T],
        (outer, n, inner): (usize, usize, usize),
        id: T,
        f: impl Fn(T, T) -> T,
    ) -> Vec<T> {
        let mut out = x.to_vec();
        for o in 0..outer {
            for i in 0..inner {
                let mut acc = id;
                for s in 0..n {
                    let r = if self.reverse { n - 1 - s } else { s };
                    let at = (o * n + r) * inner + i;
                    let v = x[at];
                    if self.exclusive {
                        out[at] = acc;
                        acc = f(acc, v);
                    } else {
                        acc = f(acc, v);
                        out[at] = acc;
                    }
                }
            }
        }
        out
    }
}

impl Op for Scan {
    fn eval(&self, _cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [x, axis] = take_inputs(inputs)?;
        let shape = x.shape();
        if shape.is_empty() {
            return Err(OpError::invalid("ScanOp: input must be at least rank 1"));
        }
        let ax = scalar_axis(&axis, shape.len(), "scan axis")?;
        let d = (
            shape[..ax].iter().product(),
            shape[ax],
            shape[ax + 1..].iter().product(),
        );
        macro_rules! int {
            ($b:expr, $v:ident) => {
                Data::$v(
                    if self.prod {
                        self.run(&$b[..], d, 1, |a, b| a.wrapping_mul(b))
                    } else {
                        self.run(&$b[..], d, 0, |a, b| a.wrapping_add(b))
                    }
                    .into(),
                )
            };
        }
        macro_rules! float {
            ($b:expr, $v:ident, $t:ty) => {
                Data::$v(
                    if self.prod {
                        self.run(&$b[..], d, <$t>::ONE, |a, b| {
                            <$t>::from_f32(a.to_f32() * b.to_f32())
                        })
                    } else {
                        self.run(&$b[..], d, <$t>::ZERO, |a, b| {
                            <$t>::from_f32(a.to_f32() + b.to_f32())
                        })
                    }
                    .into(),
                )
            };
        }
        let data = match x.data() {
            Data::F32(b) => Data::F32(
                if self.prod {
                    self.run(b, d, 1.0, |a, b| a * b)
                } else {
                    self.run(b, d, 0.0, |a, b| a + b)
                }
                .into(),
            ),
            Data::F64(b) => Data::F64(
                if self.prod {
                    self.run(b, d, 1.0, |a, b| a * b)
                } else {
                    self.run(b, d, 0.0, |a, b| a + b)
                }
                .into(),
            ),
            Data::F16(b) => float!(b, F16, f16),
            Data::BF16(b) => float!(b, BF16, bf16),
            Data::I8(b) => int!(b, I8),
            Data::I16(b) => int!(b, I16),
            Data::I32(b) => int!(b, I32),
            Data::I64(b) => int!(b, I64),
            Data::U8(b) => int!(b, U8),
            Data::U16(b) => int!(b, U16),
            Data::U32(b) => int!(b, U32),
            Data::U64(b) => int!(b, U64),
            _ => return Err(OpError::dtype(0, "numeric", x.dtype())),
        };
        Ok(tensors![Tensor::new(shape, data)?])
    }
}

/// `TopKV2`: the `k` largest entries of each last-axis row, largest first, ties by lower
/// index (TF's `sorted=false` order is an implementation detail; this always sorts).
#[derive(Debug)]
struct TopK {
    index: DType,
}

impl TopK {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(2)?;
        Ok(Box::new(TopK {
            index: index_dtype(cx, "index_type", DType::I32)?,
        }))
    }
}

fn top_k<T: Element + Copy + PartialOrd>(x: &[T], c: usize, k: usize) -> (Vec<T>, Vec<i64>) {
    let rows = x.len().checked_div(c).unwrap_or(0);
    let (mut vals, mut idx) = (Vec::with_capacity(rows * k), Vec::with_capacity(rows * k));
    let mut order: Vec<usize> = Vec::with_capacity(c);
    for row in x.chunks_exact(c.max(1)).take(rows) {
        order.clear();
        order.extend(0..c);
        let cmp = |&i: &usize, &j: &usize| desc(&row[i], &row[j]).then(i.cmp(&j));
        if k < c && k > 0 {
            order.select_nth_unstable_by(k - 1, cmp);
        }
        order.truncate(k);
        order.sort_unstable_by(cmp);
        vals.extend(order.iter().map(|&i| row[i]));
        idx.extend(order.iter().map(|&i| i as i64));
    }
    (vals, idx)
}

impl Op for TopK {
    fn eval(&self, _cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [x, k] = take_inputs(inputs)?;
        if k.rank() != 0 {
            return Err(OpError::invalid(format!(
                "k must be scalar, got shape {}",
                fmt_shape(k.shape())
            )));
        }
        let k = k.scalar_value_i64()?;
        let Some(&c) = x.shape().last() else {
            return Err(OpError::invalid("input must be >= 1-D, got shape []"));
        };
        if k < 0 {
            return Err(OpError::invalid(format!("Need k >= 0, got {k}")));
        }
        let k = k as usize;
        if k > c {
            return Err(OpError::invalid(format!(
                "input must have at least k columns. Had {c}, needed {k}"
            )));
        }
        let mut shape = x.shape().to_vec();
        *shape.last_mut().expect("rank >= 1") = k;
        let (vals, idx) = crate::match_numeric!(x.data(), b => {
            let (v, i) = top_k(&b[..], c, k);
            (Tensor::from_vec(&shape, v)?, i)
        }, _ => return Err(OpError::dtype(0, "numeric", x.dtype())));
        Ok(tensors![vals, index_tensor(&shape, idx, self.index)?])
    }
}

/// `L2Loss`: `sum(x² · 0.5)` (TF halves each square before summing).
#[derive(Debug)]
struct L2Loss;

impl L2Loss {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(1)?;
        Ok(Box::new(L2Loss))
    }
}

impl Op for L2Loss {
    fn eval(&self, _cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [x] = take_inputs(inputs)?;
        let half_sq = |v: f32| v * v * 0.5;
        let sum32 = |v: Vec<f32>| {
            let mut s = [0f32];
            reduce_f32(ReduceOp::Sum, &v, 1, v.len(), 1, &mut s);
            s[0]
        };
        Ok(tensors![match x.data() {
            Data::F32(b) => Tensor::scalar(sum32(b.iter().map(|&v| half_sq(v)).collect())),
            Data::F64(b) => Tensor::scalar(b.iter().map(|&v| v * v * 0.5).sum::<f64>()),
            Data::F16(b) => Tensor::scalar(f16::from_f32(sum32(
                b.iter().map(|v| half_sq(v.to_f32())).collect(),
            ))),
            Data::BF16(b) => Tensor::scalar(bf16::from_f32(sum32(
                b.iter().map(|v| half_sq(v.to_f32())).collect(),
            ))),
            _ => {
                return Err(OpError::dtype(
                    0,
                    "float32, float64, float16 or bfloat16",
                    x.dtype(),
                ));
            }
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{Limits, Session};

    fn run(op: &dyn Op, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, OpError> {
        let s = Session::new(".".into(), None, Limits::default());
        op.eval(&mut EvalCtx::new(&s), inputs.into())
            .map(Tensors::into_vec)
    }

    fn reduce(kind: Kind, keep_dims: bool, x: Tensor, axes: Vec<i32>) -> Result<Tensor, OpError> {
        Ok(run(&Reduce { kind, keep_dims }, vec![x, Tensor::vector(axes)])?.remove(0))
    }

    const SUM: Kind = Kind::Num(ReduceOp::Sum);
    const MEAN: Kind = Kind::Num(ReduceOp::Mean);

    fn iota(shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        Tensor::from_vec(shape, (0..n).map(|i| i as f32).collect()).unwrap()
    }

    #[test]
    fn sum_over_non_adjacent_axes_and_keep_dims() {
        // tf.reduce_sum(tf.reshape(tf.range(24.), [2,3,4]), [0, 2]) -> [60, 92, 124]
        let got = reduce(SUM, false, iota(&[2, 3, 4]), vec![0, -1]).unwrap();
        assert_eq!(got.shape(), &[3]);
        assert_eq!(got.as_slice::<f32>().unwrap(), &[60., 92., 124.]);
        // tf.reduce_mean(..., 1, keepdims=True) -> shape [2,1,4], first row [4,5,6,7]
        let got = reduce(MEAN, true, iota(&[2, 3, 4]), vec![1]).unwrap();
        assert_eq!(got.shape(), &[2, 1, 4]);
        assert_eq!(&got.as_slice::<f32>().unwrap()[..4], &[4., 5., 6., 7.]);
        let got = reduce(SUM, false, iota(&[2, 3]), vec![]).unwrap();
        assert_eq!(got.shape(), &[2, 3]);
    }

    #[test]
    fn axis_errors_match_tf() {
        // TF: "Invalid reduction arguments: Axes contains duplicate dimension: 1"
        let err = reduce(SUM, false, iota(&[2, 3]), vec![1, -1]).unwrap_err();
        assert!(err.to_string().contains("duplicate dimension: 1"), "{err}");
        // TF: "Invalid reduction dimension (2 for input with 2 dimension(s)"
        let err = reduce(SUM, false, iota(&[2, 3]), vec![2]).unwrap_err();
        assert!(
            err.to_string().contains("(2 for input with 2 dimension(s)"),
            "{err}"
        );
    }

    #[test]
    fn integer_mean_truncates_and_narrow_types_wrap() {
        // tf.reduce_mean([1,2,2,-3,-5]) -> 0; tf.reduce_mean([-3,-4]) -> -3
        let m = |v: Vec<i32>| {
            let n = v.len();
            reduce(MEAN, false, Tensor::from_vec(&[n], v).unwrap(), vec![0]).unwrap()
        };
        assert_eq!(m(vec![1, 2, 2, -3, -5]).scalar_value::<i32>().unwrap(), 0);
        assert_eq!(m(vec![-3, -4]).scalar_value::<i32>().unwrap(), -3);
        // tf.reduce_sum(tf.constant([200, 100], tf.uint8)) -> 44
        let u = Tensor::from_vec(&[2], vec![200u8, 100]).unwrap();
        assert_eq!(
            reduce(SUM, false, u, vec![0])
                .unwrap()
                .scalar_value::<u8>()
                .unwrap(),
            44
        );
        // tf.reduce_max(tf.zeros([0,3], tf.int32), 0) -> INT32_MIN
        let e = Tensor::from_vec(&[0, 3], Vec::<i32>::new()).unwrap();
        let got = reduce(Kind::Num(ReduceOp::Max), false, e, vec![0]).unwrap();
        assert_eq!(got.as_slice::<i32>().unwrap(), &[i32::MIN; 3]);
    }

    #[test]
    fn half_mean_rounds_the_sum_first() {
        // tf.reduce_mean(tf.constant([60000., 60000.], tf.float16)) -> inf
        let x = Tensor::from_vec(&[2], vec![f16::from_f32(60000.0); 2]).unwrap();
        let got = reduce(MEAN, false, x, vec![0]).unwrap();
        assert!(got.scalar_value::<f16>().unwrap().is_infinite());
        // tf.reduce_sum(tf.ones([5000], tf.float16)) -> 5000
        let x = Tensor::from_vec(&[5000], vec![f16::ONE; 5000]).unwrap();
        assert_eq!(
            reduce(SUM, false, x, vec![0])
                .unwrap()
                .scalar_value::<f16>()
                .unwrap()
                .to_f32(),
            5000.0
        );
    }

    #[test]
    fn all_any_on_empty() {
        // tf.reduce_all(tf.zeros([0], tf.bool)) -> True; reduce_any -> False
        let e = || Tensor::from_vec(&[0], Vec::<bool>::new()).unwrap();
        assert!(reduce(Kind::All, false, e(), vec![0])
            .unwrap()
            .scalar_value::<bool>()
            .unwrap());
        assert!(!reduce(Kind::Any, false, e(), vec![0])
            .unwrap()
            .scalar_value::<bool>()
            .unwrap());
    }

    #[test]
    fn argmax_skips_nan_like_eigen() {
        // tf.argmax([1,nan,3]) -> 2, argmax([nan,1,3]) -> 2, argmax([nan,nan]) -> 0,
        // argmax([nan,-inf]) -> 0, argmin([nan,5]) -> 1
        let nan = f32::NAN;
        let arg = |max: bool, v: Vec<f32>| {
            let n = v.len();
            let op = ArgReduce {
                max,
                out: DType::I64,
            };
            let x = Tensor::from_vec(&[n], v).unwrap();
            run(&op, vec![x, Tensor::scalar(0i32)]).unwrap()[0]
                .scalar_value::<i64>()
                .unwrap()
        };
        assert_eq!(arg(true, vec![1., nan, 3.]), 2);
        assert_eq!(arg(true, vec![nan, 1., 3.]), 2);
        assert_eq!(arg(true, vec![nan, nan]), 0);
        assert_eq!(arg(true, vec![nan, f32::NEG_INFINITY]), 0);
        assert_eq!(arg(false, vec![nan, 5.]), 1);
        assert_eq!(arg(true, vec![1., 3., 3.]), 1);
        // tf.argmax([[nan,1],[2,nan],[1,0]], axis=0, output_type=tf.int32) -> [1, 0]
        let x = Tensor::from_vec(&[3, 2], vec![nan, 1., 2., nan, 1., 0.]).unwrap();
        let op = ArgReduce {
            max: true,
            out: DType::I32,
        };
        let got = run(&op, vec![x, Tensor::scalar(-2i64)]).unwrap().remove(0);
        assert_eq!(got.as_slice::<i32>().unwrap(), &[1, 0]);
        // TF: "Reduction axis 0 is empty in shape [0,3]"
        let e = Tensor::from_vec(&[0, 3], Vec::<f32>::new()).unwrap();
        assert!(run(&op, vec![e, Tensor::scalar(0i32)]).is_err());
    }

    #[test]
    fn softmax_and_log_softmax() {
        // tf.nn.softmax([1.,2.,3.]) / tf.nn.log_softmax([1.,2.,3.])
        let x = Tensor::from_vec(&[1, 3], vec![1f32, 2., 3.]).unwrap();
        let s = run(&Softmax { log: false }, vec![x.clone()])
            .unwrap()
            .remove(0);
        let l = run(&Softmax { log: true }, vec![x]).unwrap().remove(0);
        let close = |a: &[f32], b: &[f32]| {
            a.iter()
                .zip(b)
                .all(|(x, y)| (x - y).abs() <= 1e-6 * y.abs().max(1.0))
        };
        assert!(close(
            s.as_slice().unwrap(),
            &[0.090_030_57, 0.244_728_48, 0.665_240_94]
        ));
        assert!(close(
            l.as_slice().unwrap(),
            &[-2.407_606, -1.407_605_9, -0.407_605_95]
        ));
        // A row with a NaN is all NaN, as in TF.
        let x = Tensor::from_vec(&[3], vec![-1e30f32, 0., f32::NAN]).unwrap();
        let s = run(&Softmax { log: false }, vec![x]).unwrap().remove(0);
        assert!(s.as_slice::<f32>().unwrap().iter().all(|v| v.is_nan()));
    }

    #[test]
    fn cumsum_exclusive_reverse_and_half_accumulation() {
        // tf.math.cumsum([1,2,3,4], exclusive=True, reverse=True) -> [9,7,4,0]
        let op = Scan {
            prod: false,
            exclusive: true,
            reverse: true,
        };
        let x = Tensor::from_vec(&[4], vec![1i32, 2, 3, 4]).unwrap();
        let got = run(&op, vec![x, Tensor::scalar(0i32)]).unwrap().remove(0);
        assert_eq!(got.as_slice::<i32>().unwrap(), &[9, 7, 4, 0]);
        // tf.math.cumsum(tf.fill([3000], tf.constant(0.1, tf.float16)))[-1] -> 256 (stalls)
        let op = Scan {
            prod: false,
            exclusive: false,
            reverse: false,
        };
        let x = Tensor::from_vec(&[3000], vec![f16::from_f32(0.1); 3000]).unwrap();
        let got = run(&op, vec![x, Tensor::scalar(-1i32)]).unwrap().remove(0);
        assert_eq!(got.as_slice::<f16>().unwrap()[2999].to_f32(), 256.0);
    }

    #[test]
    fn top_k_ties_take_lower_index() {
        // tf.math.top_k([1.,3.,2.,3.,3.], 2) -> values [3,3], indices [1,3]
        let x = Tensor::from_vec(&[5], vec![1f32, 3., 2., 3., 3.]).unwrap();
        let out = run(
            &TopK { index: DType::I32 },
            vec![x.clone(), Tensor::scalar(2i32)],
        )
        .unwrap();
        assert_eq!(out[0].as_slice::<f32>().unwrap(), &[3., 3.]);
        assert_eq!(out[1].as_slice::<i32>().unwrap(), &[1, 3]);
        let out = run(
            &TopK { index: DType::I64 },
            vec![x.clone(), Tensor::scalar(5i32)],
        )
        .unwrap();
        assert_eq!(out[1].as_slice::<i64>().unwrap(), &[1, 3, 4, 2, 0]);
        assert!(run(&TopK { index: DType::I32 }, vec![x, Tensor::scalar(6i32)]).is_err());
    }

    #[test]
    fn l2_loss_halves_squares() {
        // tf.nn.l2_loss([1.,2.,3.]) -> 7
        let x = Tensor::from_vec(&[3], vec![1f32, 2., 3.]).unwrap();
        assert_eq!(
            run(&L2Loss, vec![x]).unwrap()[0]
                .scalar_value::<f32>()
                .unwrap(),
            7.0
        );
    }
}

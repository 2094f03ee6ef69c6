//! Shape queries and shape-only ops: `Shape`, `ShapeN`, `Size`, `Rank`, `Reshape`,
//! `ExpandDims`, `Squeeze`, `Fill`, `ZerosLike`, `OnesLike`, `BroadcastArgs`, `Range`,
//! `InvertPermutation`. TF reference: core/kernels/{shape_ops,reshape_op,constant_op,
//! sequence_ops,bcast_ops,transpose_op}.cc.

use half::{bf16, f16};

use super::{checked_len, norm_axis, shape_arg, tensor_of};
use crate::ops::{take_inputs, BuildCtx, EvalCtx, Op, OpError, Tensors};
use crate::tensor::{Buf, DType, Data, Tensor};

/// An int32 or int64 vector of `dims`; int32 refuses dims past `i32::MAX` as TF does.
fn dims_tensor(dims: &[usize], dtype: DType) -> Result<Tensor, OpError> {
    match dtype {
        DType::I32 => {
            let v = dims
                .iter()
                .map(|&d| {
                    i32::try_from(d).map_err(|_| {
                        OpError::invalid(format!("dimension {d} does not fit in int32"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Tensor::vector(v))
        }
        DType::I64 => Ok(Tensor::vector(dims.iter().map(|&d| d as i64).collect())),
        other => Err(OpError::Attr {
            name: "out_type".into(),
            what: format!("{other} is not int32 or int64"),
        }),
    }
}

/// `Shape`, `ShapeN`: each input's dims as `out_type` (int32 by default).
#[derive(Debug)]
pub(super) struct ShapeOp {
    out: DType,
}

impl ShapeOp {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        let out = cx.attr_opt_type("out_type")?.unwrap_or(DType::I32);
        Ok(Box::new(ShapeOp { out }))
    }
}

impl Op for ShapeOp {
    fn eval(&self, _cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        inputs
            .iter()
            .map(|t| dims_tensor(t.shape(), self.out))
            .collect()
    }
}

/// `Size`: element count as `out_type`.
#[derive(Debug)]
pub(super) struct Size {
    out: DType,
}

impl Size {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        let out = cx.attr_opt_type("out_type")?.unwrap_or(DType::I32);
        Ok(Box::new(Size { out }))
    }
}

impl Op for Size {
    fn eval(&self, _cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [x] = take_inputs(inputs)?;
        let t = dims_tensor(&[x.len()], self.out)?;
        Ok(tensors![t.reshape(&[])?])
    }
}

/// `Rank`: int32 scalar.
#[derive(Debug)]
pub(super) struct Rank;

impl Rank {
    pub(super) fn build(_cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(Rank))
    }
}

impl Op for Rank {
    fn eval(&self, _cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [x] = take_inputs(inputs)?;
        Ok(tensors![Tensor::scalar(x.rank() as i32)])
    }
}

/// `Reshape`: at most one `-1` (inferred); the element count must match.
#[derive(Debug)]
pub(super) struct Reshape;

impl Reshape {
    pub(super) fn build(_cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(Reshape))
    }
}

/// Resolves a `Reshape` target for `n` elements, following reshape_op.h: zero dims are left
/// out of the known product, so `-1` next to a 0 infers from the input's non-zero dims.
pub(super) fn reshape_dims(input: &[usize], sizes: &[i64]) -> Result<Vec<usize>, OpError> {
    let n = input.iter().product::<usize>();
    let mut unknown = None;
    let mut product = 1usize;
    let mut has_zero = false;
    let mut dims = Vec::with_capacity(sizes.len());
    for (i, &s) in sizes.iter().enumerate() {
        if s == -1 {
            if unknown.is_some() {
                return Err(OpError::invalid(format!(
                    "only one input size may be -1, not both {} and {i}",
                    unknown.unwrap_or(0)
                )));
            }
            unknown = Some(i);
            dims.push(0);
        } else if s < 0 {
            return Err(OpError::invalid(format!(
                "size {i} must be non-negative, not {s}"
            )));
        } else {
            let d = s as usize;
            if d == 0 {
                has_zero = true;
            } else {
                product = product
                    .checked_mul(d)
                    .ok_or_else(|| OpError::invalid("reshape target overflows"))?;
            }
            dims.push(d);
        }
    }
    if let Some(u) = unknown {
        // TF quirk: input zero dims are skipped when the target has a zero dim too.
        let mut input_n = 1usize;
        let mut input_has_zero = false;
        for &d in input {
            if d > 0 || !has_zero {
                input_n *= d;
            } else {
                input_has_zero = true;
            }
        }
        let missing = input_n / product;
        if !input_has_zero && product * missing != input_n {
            return Err(OpError::invalid(format!(
                "Input to reshape is a tensor with {input_n} values, but the requested shape \
                 requires a multiple of {product}"
            )));
        }
        dims[u] = missing;
    }
    if num_elements_or_max(&dims) != n {
        return Err(OpError::invalid(format!(
            "Input to reshape is a tensor with {n} values, but the requested shape has {}",
            num_elements_or_max(&dims)
        )));
    }
    Ok(dims)
}

fn num_elements_or_max(d: &[usize]) -> usize {
    crate::tensor::num_elements(d).unwrap_or(usize::MAX)
}

impl Op for Reshape {
    fn eval(&self, _cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [x, shape] = take_inputs(inputs)?;
        if shape.rank() != 1 {
            return Err(OpError::invalid(format!(
                "sizes input must be 1-D, not {:?}",
                shape.shape()
            )));
        }
        let dims = reshape_dims(x.shape(), &shape.to_i64_vec()?)?;
        Ok(tensors![x.reshape(&dims)?])
    }
}

/// `ExpandDims`: inserts a 1 at `dim` in `[-rank-1, rank]`.
#[derive(Debug)]
pub(super) struct ExpandDims;

impl ExpandDims {
    pub(super) fn build(_cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(ExpandDims))
    }
}

impl Op for ExpandDims {
    fn eval(&self, _cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [x, dim] = take_inputs(inputs)?;
        let d = dim.scalar_value_i64()?;
        let axis = norm_axis(d, x.rank() + 1)?;
        let mut shape = x.shape().to_vec();
        shape.insert(axis, 1);
        Ok(tensors![x.reshape(&shape)?])
    }
}

/// `Squeeze`: drops the listed size-1 dims (`squeeze_dims`), or every size-1 dim.
#[derive(Debug)]
pub(super) struct Squeeze {
    dims: Vec<i64>,
}

impl Squeeze {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(Squeeze {
            dims: cx.attr_list_i64("squeeze_dims"),
        }))
    }
}

impl Op for Squeeze {
    fn eval(&self, _cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [x] = take_inputs(inputs)?;
        let shape = x.shape();
        let mut drop = vec![self.dims.is_empty(); shape.len()];
        for &d in &self.dims {
            let a = norm_axis(d, shape.len())?;
            if shape[a] != 1 {
                return Err(OpError::invalid(format!(
                    "Can not squeeze dim[{a}], expected a dimension of 1, got {}",
                    shape[a]
                )));
            }
            drop[a] = true;
        }
        let out: Vec<usize> = shape
            .iter()
            .zip(&drop)
            .filter(|&(&s, &d)| !(d && s == 1))
            .map(|(&s, _)| s)
            .collect();
        Ok(tensors![x.reshape(&out)?])
    }
}

/// `Fill`: `dims` filled with the scalar `value`.
#[derive(Debug)]
pub(super) struct Fill;

impl Fill {
    pub(super) fn build(_cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(Fill))
    }
}

impl Op for Fill {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [dims, value] = take_inputs(inputs)?;
        let shape = shape_arg(&dims, "dims")?;
        if value.rank() != 0 {
            return Err(OpError::invalid(format!(
                "value must be a scalar, got shape {:?}",
                value.shape()
            )));
        }
        let n = checked_len(cx, &shape, &value)?;
        let data = crate::match_any!(value.data(), b => {
            crate::tensor::Element::wrap(Buf::from(repeat(&b[0], n)))
        });
        Ok(tensors![Tensor::new(&shape, data)?])
    }
}

fn repeat<T: Clone>(v: &T, n: usize) -> Vec<T> {
    vec![v.clone(); n]
}

/// `ZerosLike`, `OnesLike`.
#[derive(Debug)]
pub(super) struct FillLike {
    ones: bool,
}

impl FillLike {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(FillLike {
            ones: cx.op == "OnesLike",
        }))
    }
}

fn ones(dtype: DType, n: usize) -> Option<Data> {
    Some(match dtype {
        DType::BF16 => Data::BF16(vec![bf16::ONE; n].into()),
        DType::Bool => Data::Bool(vec![true; n].into()),
        DType::F16 => Data::F16(vec![f16::ONE; n].into()),
        DType::F32 => Data::F32(vec![1f32; n].into()),
        DType::F64 => Data::F64(vec![1f64; n].into()),
        DType::I16 => Data::I16(vec![1; n].into()),
        DType::I32 => Data::I32(vec![1; n].into()),
        DType::I64 => Data::I64(vec![1; n].into()),
        DType::I8 => Data::I8(vec![1; n].into()),
        DType::U16 => Data::U16(vec![1; n].into()),
        DType::U32 => Data::U32(vec![1; n].into()),
        DType::U64 => Data::U64(vec![1; n].into()),
        DType::U8 => Data::U8(vec![1; n].into()),
        _ => return None,
    })
}

impl Op for FillLike {
    fn eval(&self, _cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [x] = take_inputs(inputs)?;
        let dt = x.dtype();
        if self.ones {
            let data = ones(dt, x.len()).ok_or_else(|| OpError::dtype(0, "numeric or bool", dt))?;
            return Ok(tensors![Tensor::new(x.shape(), data)?]);
        }
        if matches!(dt, DType::Resource | DType::Variant) {
            return Err(OpError::Unimplemented(format!(
                "ZerosLike of a {dt} tensor"
            )));
        }
        Ok(tensors![Tensor::zeros(dt, x.shape())?])
    }
}

/// `BroadcastArgs`: the broadcast of two shape vectors, in their dtype.
#[derive(Debug)]
pub(super) struct BroadcastArgs;

impl BroadcastArgs {
    pub(super) fn build(_cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(BroadcastArgs))
    }
}

/// Numpy-style broadcast of two shapes, with `BroadcastArgs`' error.
pub(super) fn broadcast_shapes(a: &[usize], b: &[usize]) -> Result<Vec<usize>, OpError> {
    crate::ops::kernels::broadcast::broadcast_shape(a, b)
        .ok_or_else(|| OpError::invalid(format!("Incompatible shapes: {a:?} vs. {b:?}")))
}

impl Op for BroadcastArgs {
    fn eval(&self, _cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [s0, s1] = take_inputs(inputs)?;
        let out = broadcast_shapes(&shape_arg(&s0, "s0")?, &shape_arg(&s1, "s1")?)?;
        Ok(tensors![dims_tensor(&out, s0.dtype())?])
    }
}

/// `InvertPermutation`: `y[x[i]] = i`; `x` must be a permutation of `0..n`.
#[derive(Debug)]
pub(super) struct InvertPermutation;

impl InvertPermutation {
    pub(super) fn build(_cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(InvertPermutation))
    }
}

impl Op for InvertPermutation {
    fn eval(&self, _cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [x] = take_inputs(inputs)?;
        if x.rank() != 1 {
            return Err(OpError::invalid("invert_permutation expects a 1D vector."));
        }
        let v = x.to_i64_vec()?;
        let n = v.len();
        let mut inv = vec![-1i64; n];
        for (i, &d) in v.iter().enumerate() {
            let j = usize::try_from(d)
                .ok()
                .filter(|&j| j < n)
                .ok_or_else(|| OpError::invalid(format!("{d} is not between 0 and {n}")))?;
            if inv[j] != -1 {
                return Err(OpError::invalid(format!("{d} is duplicated in the input.")));
            }
            inv[j] = i as i64;
        }
        let t = Tensor::vector(inv);
        Ok(tensors![match x.dtype() {
            DType::I32 => Tensor::vector(t.to_i64_vec()?.iter().map(|&v| v as i32).collect()),
            _ => t,
        }])
    }
}

/// `Range`: `start, start + delta, ...` up to (excluding) `limit`, in `Tidx`.
#[derive(Debug)]
pub(super) struct Range;

impl Range {
    pub(super) fn build(_cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(Range))
    }
}

/// Checks TF's range preconditions; `start`, `limit`, `delta` only compared here.
fn range_check<T: PartialOrd + Default + std::fmt::Debug>(
    start: T,
    limit: T,
    delta: T,
) -> Result<(), OpError> {
    let zero = T::default();
    if delta == zero {
        return Err(OpError::invalid("Requires delta != 0"));
    }
    if delta > zero && start > limit {
        return Err(OpError::invalid(format!(
            "Requires start <= limit when delta > 0: {start:?}/{limit:?}"
        )));
    }
    if delta < zero && start < limit {
        return Err(OpError::invalid(format!(
            "Requires start >= limit when delta < 0: {start:?}/{limit:?}"
        )));
    }
    Ok(())
}

macro_rules! range_int {
    ($cx:expr, $t:ty, $s:expr, $l:expr, $d:expr) => {{
        let (s, l, d) = (
            $s.scalar_value::<$t>()?,
            $l.scalar_value::<$t>()?,
            $d.scalar_value::<$t>()?,
        );
        range_check(s, l, d)?;
        let span = (l as i128 - s as i128).unsigned_abs();
        let step = (d as i128).unsigned_abs();
        let n = usize::try_from(span.div_ceil(step))
            .map_err(|_| OpError::Limit("Range size overflows".into()))?;
        $cx.limits()
            .check_alloc(n, <$t as crate::tensor::Element>::DTYPE)?;
        // Every value start + i*delta (i < n) lies between start and limit, so fits in T.
        let v: Vec<$t> = (0..n as i128)
            .map(|i| (s as i128 + i * d as i128) as $t)
            .collect();
        tensor_of(&[n], v)?
    }};
}

macro_rules! range_float {
    ($cx:expr, $t:ty, $s:expr, $l:expr, $d:expr) => {{
        let (s, l, d) = (
            $s.scalar_value::<$t>()?,
            $l.scalar_value::<$t>()?,
            $d.scalar_value::<$t>()?,
        );
        range_check(s, l, d)?;
        let size = f64::from((l - s) / d).abs().ceil();
        if size.is_nan() || size >= 9.2e18 {
            return Err(OpError::invalid(
                "Requires ((limit - start) / delta) <= 2^63",
            ));
        }
        let n = usize::try_from(size as u64)
            .map_err(|_| OpError::Limit("Range size overflows".into()))?;
        $cx.limits()
            .check_alloc(n, <$t as crate::tensor::Element>::DTYPE)?;
        // As TF 2.21: `start + T(i) * delta` in T (not an accumulated sum).
        let v: Vec<$t> = (0..n).map(|i| s + <$t>::from_f64(i as f64) * d).collect();
        tensor_of(&[n], v)?
    }};
}

/// `from_f64` for the primitive floats (half's types have it built in).
trait FromF64 {
    fn from_f64(v: f64) -> Self;
}
impl FromF64 for f32 {
    fn from_f64(v: f64) -> Self {
        v as f32
    }
}
impl FromF64 for f64 {
    fn from_f64(v: f64) -> Self {
        v
    }
}

impl Op for Range {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [s, l, d] = take_inputs(inputs)?;
        let out = match s.dtype() {
            DType::F32 => range_float!(cx, f32, s, l, d),
            DType::F64 => range_float!(cx, f64, s, l, d),
            DType::F16 => range_float!(cx, f16, s, l, d),
            DType::BF16 => range_float!(cx, bf16, s, l, d),
            DType::I8 => range_int!(cx, i8, s, l, d),
            DType::I16 => range_int!(cx, i16, s, l, d),
            DType::I32 => range_int!(cx, i32, s, l, d),
            DType::I64 => range_int!(cx, i64, s, l, d),
            DType::U16 => range_int!(cx, u16, s, l, d),
            DType::U32 => range_int!(cx, u32, s, l, d),
            DType::U64 => range_int!(cx, u64, s, l, d),
            other => return Err(OpError::dtype(0, "a real number type", other)),
        };
        Ok(tensors![out])
    }
}

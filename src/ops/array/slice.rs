//! Index-map ops: `StridedSlice`, `Slice`, `ReverseV2`, `Tile`, `Pad`, `PadV2`, `MirrorPad`,
//! `BroadcastTo`, `Transpose`. TF reference: core/util/strided_slice_op.cc,
//! core/kernels/{slice_op,reverse_op,tile_ops,pad_op,mirror_pad_op,broadcast_to_op,
//! transpose_op}.cc.

use super::{axis_map, checked_len, norm_axis, remap, row_strides, shape_arg, PAD};
use crate::ops::{kernels, take_inputs, BuildCtx, EvalCtx, Op, OpError, Tensors};
use smallvec::SmallVec;

use crate::tensor::{Buf, DType, Data, Element, Tensor};

/// `StridedSlice` with TF's full mask semantics (ellipsis, new axes, shrinks, negative
/// strides), following `ValidateStridedSliceOp`.
#[derive(Debug, Clone)]
pub(super) struct StridedSlice {
    begin_mask: i64,
    end_mask: i64,
    ellipsis_mask: i64,
    new_axis_mask: i64,
    shrink_axis_mask: i64,
}

impl StridedSlice {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        let m = |n: &str| cx.attr_opt_i64(n).unwrap_or(0);
        Ok(Box::new(StridedSlice {
            begin_mask: m("begin_mask"),
            end_mask: m("end_mask"),
            ellipsis_mask: m("ellipsis_mask"),
            new_axis_mask: m("new_axis_mask"),
            shrink_axis_mask: m("shrink_axis_mask"),
        }))
    }
}

/// Per-axis vectors of a slice spec: inline up to rank 4 (no heap traffic for the many tiny
/// slices of shape and row-partition arithmetic).
type Small<T> = SmallVec<[T; 4]>;

/// An index vector (begin, end, strides) as `i64`s, inline when short.
fn small_i64(t: &Tensor) -> Result<Small<i64>, OpError> {
    Ok(match t.data() {
        Data::I32(b) => b.iter().map(|&v| i64::from(v)).collect(),
        Data::I64(b) => Small::from_slice(b),
        _ => t.to_i64_vec()?.into(),
    })
}

/// One dense (input) axis of a resolved strided slice.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct DenseAxis {
    pub begin: i64,
    pub stride: i64,
    pub len: usize,
}

/// Resolves a strided slice of `shape`: per input axis (begin, stride, length), and the final
/// output shape (new axes added, shrunk axes removed).
pub(super) fn resolve_strided(
    ss: &StridedSlice,
    shape: &[usize],
    begin: &[i64],
    end: &[i64],
    strides: &[i64],
) -> Result<(Small<DenseAxis>, Small<usize>), OpError> {
    let n = begin.len();
    if end.len() != n || strides.len() != n {
        return Err(OpError::invalid(
            "Expected begin, end, and strides to be 1D equal size tensors",
        ));
    }
    if n > 32 {
        return Err(OpError::invalid("slice spec has more than 32 entries"));
    }
    let bit = |m: i64, i: usize| i < 63 && (m >> i) & 1 == 1;
    if ss.ellipsis_mask.count_ones() > 1 {
        return Err(OpError::invalid(
            "Multiple ellipses in slice spec not allowed",
        ));
    }
    // Sparse spec: an ellipsis is implied at the end when absent.
    let mut sparse_dims = n;
    let mut ellipsis = ss.ellipsis_mask;
    if ellipsis == 0 {
        ellipsis |= 1 << n;
        sparse_dims += 1;
    }
    let mut new_after_ellipsis = 0usize;
    let mut seen = false;
    for i in 0..sparse_dims {
        if seen && bit(ss.new_axis_mask, i) {
            new_after_ellipsis += 1;
        }
        if bit(ellipsis, i) {
            seen = true;
        }
    }
    // Dense spec.
    let rank = shape.len();
    let mut d_begin = Small::from_elem(0i64, rank);
    let mut d_end = Small::from_elem(0i64, rank);
    let mut d_stride = Small::from_elem(1i64, rank);
    let mut d_bmask = Small::from_elem(false, rank);
    let mut d_emask = Small::from_elem(false, rank);
    let mut d_shrink = Small::from_elem(false, rank);
    // Final shape gather: Some(dense axis) or None for a new axis (shrunk axes are dropped).
    let mut gather: Small<Option<usize>> = Small::new();
    let mut full = 0usize;
    for i in 0..sparse_dims {
        if bit(ellipsis, i) {
            let next = (rank + 1 + new_after_ellipsis)
                .saturating_sub(sparse_dims - i)
                .min(rank);
            while full < next {
                d_bmask[full] = true;
                d_emask[full] = true;
                gather.push(Some(full));
                full += 1;
            }
        } else if bit(ss.new_axis_mask, i) {
            gather.push(None);
        } else {
            if full == rank {
                return Err(OpError::invalid(format!(
                    "Index out of range using input dim {full}; input has only {rank} dims"
                )));
            }
            d_begin[full] = begin[i];
            d_end[full] = end[i];
            d_stride[full] = strides[i];
            d_bmask[full] = bit(ss.begin_mask, i);
            d_emask[full] = bit(ss.end_mask, i);
            if bit(ss.shrink_axis_mask, i) {
                d_shrink[full] = true;
            } else {
                gather.push(Some(full));
            }
            full += 1;
        }
    }
    let mut axes = Small::with_capacity(rank);
    for i in 0..rank {
        let dim = shape[i] as i64;
        let stride = d_stride[i];
        if stride == 0 {
            return Err(OpError::invalid(format!("strides[{i}] must be non-zero")));
        }
        let (b, e);
        if d_shrink[i] {
            if stride <= 0 {
                return Err(OpError::invalid(
                    "only stride 1 allowed on non-range indexing.",
                ));
            }
            // TF quirk: a shrunk axis ignores its begin/end masks and its end value.
            let x = if d_begin[i] < 0 {
                dim + d_begin[i]
            } else {
                d_begin[i]
            };
            if x < 0 || x >= dim {
                return Err(OpError::invalid(format!(
                    "slice index {} of dimension {i} out of bounds.",
                    d_begin[i]
                )));
            }
            (b, e) = (x, x + 1);
        } else {
            let (lo, hi) = if stride > 0 { (0, dim) } else { (-1, dim - 1) };
            let canon = |x: i64, masked: bool, is_end: bool| {
                if masked {
                    // begin → lo for positive stride, hi for negative; end the other way.
                    if (stride > 0) != is_end {
                        lo
                    } else {
                        hi
                    }
                } else {
                    let f = if x < 0 { dim.saturating_add(x) } else { x };
                    f.clamp(lo, hi)
                }
            };
            b = canon(d_begin[i], d_bmask[i], false);
            e = canon(d_end[i], d_emask[i], true);
        }
        let interval = e - b;
        let len = if interval == 0 || (interval < 0) != (stride < 0) {
            0
        } else {
            // Both have the same sign here, so this is ceil(interval / stride).
            (interval / stride + i64::from(interval % stride != 0)) as usize
        };
        axes.push(DenseAxis {
            begin: b,
            stride,
            len,
        });
    }
    let final_shape = gather
        .iter()
        .map(|g| g.map_or(1, |a| axes[a].len))
        .collect();
    Ok((axes, final_shape))
}

impl StridedSlice {
    /// Slices `x` by a resolved spec (`begin`, `end`, `strides` as `i64`s).
    fn slice(
        &self,
        cx: &mut EvalCtx<'_>,
        x: Tensor,
        begin: &[i64],
        end: &[i64],
        strides: &[i64],
    ) -> Result<Tensors, OpError> {
        let (axes, final_shape) = resolve_strided(self, x.shape(), begin, end, strides)?;
        let dense: Small<usize> = axes.iter().map(|a| a.len).collect();
        checked_len(cx, &dense, &x)?;
        if dense.as_slice() == x.shape() && axes.iter().all(|a| a.stride == 1) {
            return Ok(tensors![x.reshape(&final_shape)?]);
        }
        if let [a] = axes[..] {
            if a.stride == 1 && x.dtype() != DType::Variant {
                // A contiguous run of a vector (`shape[1:]`, `row_splits[-1]`: most slices in
                // shape and ragged-partition arithmetic): one copy, no index maps.
                let r = a.begin as usize..a.begin as usize + a.len;
                let bad = || OpError::invalid(format!("slice {r:?} of a vector of {}", x.len()));
                let data = crate::match_any!(x.data(), b => Element::wrap(Buf::from(
                    b.get(r.clone()).ok_or_else(bad)?.to_vec()
                )));
                return Ok(tensors![Tensor::new(&final_shape, data)?]);
            }
        }
        let st = row_strides(x.shape());
        let maps: Vec<Vec<usize>> = axes
            .iter()
            .zip(&st)
            .map(|(a, &s)| axis_map(a.begin, a.stride, a.len, s))
            .collect();
        Ok(tensors![remap(&x, &maps, None)?.reshape(&final_shape)?])
    }
}

impl Op for StridedSlice {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [x, begin, end, strides] = take_inputs(inputs)?;
        self.slice(
            cx,
            x,
            &small_i64(&begin)?,
            &small_i64(&end)?,
            &small_i64(&strides)?,
        )
    }

    fn bind_constants(&self, known: &[Option<&Tensor>]) -> Option<Box<dyn Op>> {
        let [None, Some(begin), Some(end), Some(strides)] = known else {
            return None;
        };
        // A spec of the wrong dtype stays unbound, so it fails at run time as before.
        Some(Box::new(BoundStridedSlice {
            ss: self.clone(),
            begin: small_i64(begin).ok()?,
            end: small_i64(end).ok()?,
            strides: small_i64(strides).ok()?,
        }))
    }
}

/// `StridedSlice` whose begin, end and strides are plan constants (nearly all of them, in
/// shape and ragged-partition arithmetic): read once at plan time, so a call passes only `x`.
#[derive(Debug)]
struct BoundStridedSlice {
    ss: StridedSlice,
    begin: Small<i64>,
    end: Small<i64>,
    strides: Small<i64>,
}

impl Op for BoundStridedSlice {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [x] = take_inputs(inputs)?;
        self.ss.slice(cx, x, &self.begin, &self.end, &self.strides)
    }
}

/// `Slice`: `size[i] == -1` means "to the end of the axis".
#[derive(Debug)]
pub(super) struct Slice;

impl Slice {
    pub(super) fn build(_cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(Slice))
    }
}

impl Op for Slice {
    fn eval(&self, _cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [x, begin, size] = take_inputs(inputs)?;
        let (b, s) = (begin.to_i64_vec()?, size.to_i64_vec()?);
        let shape = x.shape();
        if b.len() != shape.len() || s.len() != shape.len() {
            return Err(OpError::invalid(format!(
                "Expected begin and size arguments to be 1-D tensors of size {}",
                shape.len()
            )));
        }
        let st = row_strides(shape);
        let mut maps = Vec::with_capacity(shape.len());
        for i in 0..shape.len() {
            let dim = shape[i] as i64;
            let len = if s[i] == -1 { dim - b[i] } else { s[i] };
            if b[i] < 0 || b[i] > dim || len < 0 || len > dim - b[i] {
                return Err(OpError::invalid(format!(
                    "Expected begin[{i}] in [0, {dim}], and size[{i}] in [0, {}], but got {} and {}",
                    dim - b[i].clamp(0, dim),
                    b[i],
                    s[i]
                )));
            }
            maps.push(axis_map(b[i], 1, len as usize, st[i]));
        }
        Ok(tensors![remap(&x, &maps, None)?])
    }
}

/// `ReverseV2`: reverses the listed axes.
#[derive(Debug)]
pub(super) struct ReverseV2;

impl ReverseV2 {
    pub(super) fn build(_cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(ReverseV2))
    }
}

impl Op for ReverseV2 {
    fn eval(&self, _cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [x, axis] = take_inputs(inputs)?;
        let shape = x.shape();
        let mut rev = vec![false; shape.len()];
        for a in axis.to_i64_vec()? {
            let k = norm_axis(a, shape.len())?;
            if rev[k] {
                return Err(OpError::invalid(format!(
                    "axis {k} specified more than once."
                )));
            }
            rev[k] = true;
        }
        let st = row_strides(shape);
        let maps: Vec<Vec<usize>> = (0..shape.len())
            .map(|k| {
                let d = shape[k];
                if rev[k] {
                    axis_map(d as i64 - 1, -1, d, st[k])
                } else {
                    axis_map(0, 1, d, st[k])
                }
            })
            .collect();
        Ok(tensors![remap(&x, &maps, None)?])
    }
}

/// `Tile`: repeats the input `multiples[i]` times along axis `i`.
#[derive(Debug)]
pub(super) struct Tile;

impl Tile {
    pub(super) fn build(_cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(Tile))
    }
}

impl Op for Tile {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [x, multiples] = take_inputs(inputs)?;
        let m = shape_arg(&multiples, "multiples")?;
        let shape = x.shape();
        if m.len() != shape.len() {
            return Err(OpError::invalid(format!(
                "Expected multiples argument to be a vector of length {} but got length {}",
                shape.len(),
                m.len()
            )));
        }
        let out: Vec<usize> = shape
            .iter()
            .zip(&m)
            .map(|(&d, &k)| d.checked_mul(k))
            .collect::<Option<_>>()
            .ok_or_else(|| OpError::Limit("Tile output overflows".into()))?;
        checked_len(cx, &out, &x)?;
        let st = row_strides(shape);
        let maps: Vec<Vec<usize>> = (0..shape.len())
            .map(|k| (0..out[k]).map(|j| (j % shape[k]) * st[k]).collect())
            .collect();
        Ok(tensors![remap(&x, &maps, None)?])
    }
}

/// `BroadcastTo`: numpy broadcast of the input to exactly `shape`.
#[derive(Debug)]
pub(super) struct BroadcastTo;

impl BroadcastTo {
    pub(super) fn build(_cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(BroadcastTo))
    }
}

impl Op for BroadcastTo {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [x, shape] = take_inputs(inputs)?;
        let out = shape_arg(&shape, "shape")?;
        let ins = x.shape();
        let err = || {
            OpError::invalid(format!(
                "Unable to broadcast tensor of shape {ins:?} to tensor of shape {out:?}"
            ))
        };
        if ins.len() > out.len() {
            return Err(err());
        }
        let lead = out.len() - ins.len();
        if ins
            .iter()
            .enumerate()
            .any(|(i, &d)| d != 1 && d != out[lead + i])
        {
            return Err(err());
        }
        checked_len(cx, &out, &x)?;
        if ins == out.as_slice() {
            return Ok(tensors![x]);
        }
        let st = row_strides(ins);
        let maps: Vec<Vec<usize>> = (0..out.len())
            .map(|k| {
                let step = if k < lead || ins[k - lead] == 1 {
                    0
                } else {
                    st[k - lead]
                };
                (0..out[k]).map(|j| j * step).collect()
            })
            .collect();
        Ok(tensors![remap(&x, &maps, None)?])
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum PadMode {
    Constant,
    Reflect,
    Symmetric,
}

/// `Pad`, `PadV2` (constant from the third input), `MirrorPad` (`REFLECT` / `SYMMETRIC`).
#[derive(Debug)]
pub(super) struct Pad {
    mode: PadMode,
}

impl Pad {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        let mode = if cx.op == "MirrorPad" {
            match cx.attr_str("mode")?.as_str() {
                "REFLECT" => PadMode::Reflect,
                "SYMMETRIC" => PadMode::Symmetric,
                m => {
                    return Err(OpError::Attr {
                        name: "mode".into(),
                        what: format!("{m:?} is not REFLECT or SYMMETRIC"),
                    })
                }
            }
        } else {
            PadMode::Constant
        };
        Ok(Box::new(Pad { mode }))
    }
}

impl Op for Pad {
    fn eval(&self, cx: &mut EvalCtx<'_>, mut inputs: Tensors) -> Result<Tensors, OpError> {
        let fill = if inputs.len() == 3 {
            inputs.pop()
        } else {
            None
        };
        let [x, paddings] = take_inputs(inputs)?;
        let shape = x.shape();
        let r = shape.len();
        if paddings.shape() != [r, 2] {
            return Err(OpError::invalid(format!(
                "paddings must be a matrix with 2 columns and {r} rows: {:?}",
                paddings.shape()
            )));
        }
        let p = paddings.to_i64_vec()?;
        let fill = match (self.mode, fill) {
            (PadMode::Constant, Some(f)) => {
                if f.rank() != 0 {
                    return Err(OpError::invalid("constant_values must be a scalar"));
                }
                Some(f)
            }
            (PadMode::Constant, None) => Some(
                Tensor::zeros(x.dtype(), &[])
                    .map_err(|_| OpError::dtype(0, "a type with a zero value", x.dtype()))?,
            ),
            _ => None,
        };
        let st = row_strides(shape);
        let mut out = Vec::with_capacity(r);
        for k in 0..r {
            let (before, after, d) = (p[2 * k], p[2 * k + 1], shape[k] as i64);
            let limit = match self.mode {
                PadMode::Constant => i64::MAX,
                PadMode::Reflect => d - 1,
                PadMode::Symmetric => d,
            };
            if before < 0 || after < 0 || before > limit || after > limit {
                return Err(OpError::invalid(match self.mode {
                    PadMode::Constant => {
                        format!("Paddings must be non-negative: {before} {after}")
                    }
                    _ => format!(
                        "paddings must be no greater than the dimension size: {before}, {after} \
                         greater than {}",
                        limit
                    ),
                }));
            }
            let len = before
                .checked_add(after)
                .and_then(|x| x.checked_add(d))
                .and_then(|x| usize::try_from(x).ok())
                .ok_or_else(|| OpError::Limit("Pad output overflows".into()))?;
            out.push(len);
        }
        checked_len(cx, &out, &x)?;
        let maps: Vec<Vec<usize>> = (0..r)
            .map(|k| {
                let (before, d) = (p[2 * k], shape[k] as i64);
                (0..out[k] as i64)
                    .map(|j| {
                        let i = j - before;
                        let src = match self.mode {
                            _ if (0..d).contains(&i) => i,
                            PadMode::Constant => return PAD,
                            PadMode::Reflect if i < 0 => -i,
                            PadMode::Reflect => 2 * d - 2 - i,
                            PadMode::Symmetric if i < 0 => -i - 1,
                            PadMode::Symmetric => 2 * d - 1 - i,
                        };
                        src as usize * st[k]
                    })
                    .collect()
            })
            .collect();
        Ok(tensors![remap(&x, &maps, fill.as_ref())?])
    }
}

/// `Transpose`: output axis `i` is input axis `perm[i]`.
#[derive(Debug)]
pub(super) struct Transpose;

impl Transpose {
    pub(super) fn build(_cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        Ok(Box::new(Transpose))
    }
}

fn transpose_copy<T: Element + Copy + Send + Sync>(
    b: &Buf<T>,
    shape: &[usize],
    perm: &[usize],
) -> Data {
    let mut out = b.to_vec();
    kernels::transpose::transpose(&b[..], shape, perm, &mut out);
    T::wrap(Buf::from(out))
}

impl Op for Transpose {
    fn eval(&self, _cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [x, perm] = take_inputs(inputs)?;
        let shape = x.shape();
        let r = shape.len();
        let p = perm.to_i64_vec()?;
        if p.len() != r {
            return Err(OpError::invalid(format!(
                "transpose expects a vector of size {r}. But input(1) is a vector of size {}",
                p.len()
            )));
        }
        let mut seen = vec![false; r];
        let mut perm = Vec::with_capacity(r);
        for &d in &p {
            let k = usize::try_from(d)
                .ok()
                .filter(|&k| k < r)
                .ok_or_else(|| OpError::invalid(format!("{d} is out of range [0 .. {r})")))?;
            if seen[k] {
                return Err(OpError::invalid(format!("{d} is duplicated in the input.")));
            }
            seen[k] = true;
            perm.push(k);
        }
        if perm.iter().enumerate().all(|(i, &k)| i == k) {
            return Ok(tensors![x]);
        }
        let out_shape: Vec<usize> = perm.iter().map(|&k| shape[k]).collect();
        let data = crate::match_numeric!(x.data(), b => transpose_copy(b, shape, &perm), _ => {
            match x.data() {
                Data::Bool(b) => transpose_copy(b, shape, &perm),
                _ => {
                    let st = row_strides(shape);
                    let maps: Vec<Vec<usize>> =
                        perm.iter().map(|&k| axis_map(0, 1, shape[k], st[k])).collect();
                    return Ok(tensors![remap(&x, &maps, None)?]);
                }
            }
        });
        Ok(tensors![Tensor::new(&out_shape, data)?])
    }
}

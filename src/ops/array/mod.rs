//! Array and shape ops: shape queries, reshapes, slicing, joining, padding, gathers.
//!
//! TF reference: tensorflow/core/kernels/{shape_ops,reshape_op,strided_slice_op,slice_op,
//! concat_op,split_op,pack_op,pad_op,mirror_pad_op,gather_op,gather_nd_op,tile_ops,where_op,
//! unique_op,one_hot_op,sequence_ops}.cc.
//!
//! Every copying op is generic over the element type (strings and resource handles included)
//! and is expressed either as contiguous block copies (concat, split) or as an *index map*
//! per output axis ([`remap`]): output element `(i_0, .., i_{r-1})` reads input element
//! `Σ_k maps[k][i_k]`, or a fill value where a map entry is [`PAD`]. Strided slices, reverses,
//! tiles, broadcasts, pads and mirror pads are all index maps, so one tested loop serves them.

mod join;
mod select;
mod shape;
mod slice;
#[cfg(test)]
pub(super) mod tests;

use super::{EvalCtx, OpError, Registry};
use crate::tensor::{num_elements, Buf, Data, Element, Tensor};

pub(crate) use select::gather;

pub(crate) fn register(r: &mut Registry) {
    r.add("BroadcastArgs", shape::BroadcastArgs::build);
    r.add("BroadcastTo", slice::BroadcastTo::build);
    r.add("Concat", |cx| join::Concat::build(cx, true));
    r.add("ConcatV2", |cx| join::Concat::build(cx, false));
    r.add("ExpandDims", shape::ExpandDims::build);
    r.add("Fill", shape::Fill::build);
    r.add("GatherNd", select::GatherNd::build);
    r.add("GatherV2", select::GatherV2::build);
    r.add("InvertPermutation", shape::InvertPermutation::build);
    r.add("MirrorPad", slice::Pad::build);
    r.add("OneHot", select::OneHot::build);
    r.add("OnesLike", shape::FillLike::build);
    r.add("Pack", join::Pack::build);
    r.add("Pad", slice::Pad::build);
    r.add("PadV2", slice::Pad::build);
    r.add("Range", shape::Range::build);
    r.add("Rank", shape::Rank::build);
    r.add("Reshape", shape::Reshape::build);
    r.add("ReverseV2", slice::ReverseV2::build);
    r.add("Shape", shape::ShapeOp::build);
    r.add("ShapeN", shape::ShapeOp::build);
    r.add("Size", shape::Size::build);
    r.add("Slice", slice::Slice::build);
    r.add("Split", |cx| join::Split::build(cx, false));
    r.add("SplitV", |cx| join::Split::build(cx, true));
    r.add("Squeeze", shape::Squeeze::build);
    r.add("StridedSlice", slice::StridedSlice::build);
    r.add("Tile", slice::Tile::build);
    r.add("Transpose", slice::Transpose::build);
    r.add("Unique", select::Unique::build);
    r.add("UniqueWithCounts", select::Unique::build);
    r.add("Unpack", join::Unpack::build);
    r.add("Where", select::Where::build);
    r.add("ZerosLike", shape::FillLike::build);
}

/// Normalizes `axis` in `[-rank, rank)` to `[0, rank)`.
fn norm_axis(axis: i64, rank: usize) -> Result<usize, OpError> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a >= r {
        return Err(OpError::invalid(format!(
            "axis {axis} is out of range [-{r}, {r})"
        )));
    }
    Ok(a as usize)
}

/// Element count of `shape`, checked against the caps for an output whose elements are
/// copied from `like` (strings count their longest payload: a hostile `Fill` or `Tile` of a
/// long string must fail before it allocates).
fn checked_len(cx: &EvalCtx<'_>, shape: &[usize], like: &Tensor) -> Result<usize, OpError> {
    let n =
        num_elements(shape).ok_or_else(|| OpError::Limit(format!("shape {shape:?} overflows")))?;
    match like.data() {
        crate::tensor::Data::String(b) => {
            let longest = b.iter().map(|s| s.len()).max().unwrap_or(0);
            let per = (longest + std::mem::size_of::<crate::tensor::Bytes>()) as u128;
            cx.limits().check_bytes(n as u128 * per)?;
        }
        _ => cx.limits().check_alloc(n, like.dtype())?,
    }
    Ok(n)
}

/// A shape-like input (1-D int32/int64) as non-negative dims.
fn shape_arg(t: &Tensor, what: &str) -> Result<Vec<usize>, OpError> {
    if t.rank() != 1 {
        return Err(OpError::invalid(format!(
            "{what} must be a vector, got shape {:?}",
            t.shape()
        )));
    }
    t.to_i64_vec()?
        .into_iter()
        .map(|d| {
            usize::try_from(d)
                .map_err(|_| OpError::invalid(format!("{what} has a negative dimension {d}")))
        })
        .collect()
}

/// Row-major strides of `shape`.
fn row_strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Wraps a vector as a tensor of `shape`.
fn tensor_of<T: Element>(shape: &[usize], v: Vec<T>) -> Result<Tensor, OpError> {
    Ok(Tensor::new(shape, T::wrap(Buf::from(v)))?)
}

/// An index-map entry meaning "fill value here".
const PAD: usize = usize::MAX;

/// A run of the innermost axis: copy `len` elements from `start` (or fill when `start == PAD`);
/// with `repeat`, element `start` `len` times (a broadcast or a tile of a size-1 axis, which
/// would otherwise be `len` one-element copies).
#[derive(Clone, Copy)]
struct Run {
    start: usize,
    len: usize,
    repeat: bool,
}

fn runs_of(map: &[usize]) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    for &j in map {
        if let Some(last) = runs.last_mut() {
            if j == PAD {
                if last.start == PAD {
                    last.len += 1;
                    continue;
                }
            } else if last.start != PAD {
                if !last.repeat && last.start + last.len == j {
                    last.len += 1;
                    continue;
                }
                if (last.repeat || last.len == 1) && last.start == j {
                    last.repeat = true;
                    last.len += 1;
                    continue;
                }
            }
        }
        runs.push(Run {
            start: j,
            len: 1,
            repeat: false,
        });
    }
    runs
}

fn remap_rec<T: Clone>(
    src: &[T],
    maps: &[Vec<usize>],
    inner: &[Run],
    sizes: &[usize],
    base: usize,
    fill: Option<&T>,
    out: &mut Vec<T>,
) {
    if maps.len() == 1 {
        for r in inner {
            if r.start == PAD {
                let f = fill.expect("PAD entries only with a fill value");
                out.extend(std::iter::repeat_n(f.clone(), r.len));
            } else if r.repeat {
                out.extend(std::iter::repeat_n(src[base + r.start].clone(), r.len));
            } else {
                out.extend_from_slice(&src[base + r.start..base + r.start + r.len]);
            }
        }
        return;
    }
    if let ([outer, _], [r]) = (maps, inner) {
        if r.len == 1 && !r.repeat && r.start != PAD {
            // One element per outer entry (a column of a matrix, `x[:, k]`): no per-row call.
            out.extend(outer.iter().map(|&j| {
                if j == PAD {
                    fill.expect("PAD entries only with a fill value").clone()
                } else {
                    src[base + j + r.start].clone()
                }
            }));
            return;
        }
    }
    for &j in &maps[0] {
        if j == PAD {
            let f = fill.expect("PAD entries only with a fill value");
            out.extend(std::iter::repeat_n(f.clone(), sizes[1]));
        } else {
            remap_rec(src, &maps[1..], inner, &sizes[1..], base + j, fill, out);
        }
    }
}

/// `out[i_0, .., i_{r-1}] = src[Σ_k maps[k][i_k]]` (offsets already scaled by the input's
/// strides), or `fill` where an entry is [`PAD`]. The caller checks offsets are in bounds and
/// the output size against the caps.
fn remap_slice<T: Clone>(src: &[T], maps: &[Vec<usize>], fill: Option<&T>) -> Vec<T> {
    // sizes[k] = elements in one block at level k.
    let mut sizes = vec![1usize; maps.len() + 1];
    for k in (0..maps.len()).rev() {
        sizes[k] = sizes[k + 1] * maps[k].len();
    }
    let mut out = Vec::with_capacity(sizes[0]);
    match maps.last() {
        None => out.extend_from_slice(&src[..1]),
        Some(last) => {
            let inner = runs_of(last);
            remap_rec(src, maps, &inner, &sizes, 0, fill, &mut out);
        }
    }
    out
}

/// [`remap_slice`] on a tensor of any dtype; `fill` must be a scalar of the same dtype.
fn remap(t: &Tensor, maps: &[Vec<usize>], fill: Option<&Tensor>) -> Result<Tensor, OpError> {
    fn go<T: Element>(
        b: &Buf<T>,
        maps: &[Vec<usize>],
        fill: Option<&Tensor>,
    ) -> Result<Data, OpError> {
        let f = match fill {
            Some(f) => Some(f.scalar_value::<T>()?),
            None => None,
        };
        Ok(T::wrap(Buf::from(remap_slice(&b[..], maps, f.as_ref()))))
    }
    let shape: Vec<usize> = maps.iter().map(Vec::len).collect();
    let data = crate::match_any!(t.data(), b => go(b, maps, fill)?);
    Ok(Tensor::new(&shape, data)?)
}

/// The index map of a strided view of one axis: `begin + j * step` for `len` outputs, scaled
/// by `stride`. `begin + j * step` must stay inside the axis (checked by the caller).
fn axis_map(begin: i64, step: i64, len: usize, stride: usize) -> Vec<usize> {
    (0..len as i64)
        .map(|j| (begin + j * step) as usize * stride)
        .collect()
}

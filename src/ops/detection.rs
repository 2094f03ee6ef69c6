//! Detector post-processing: `NonMaxSuppression` (v1), `NonMaxSuppressionV2`..`V5`,
//! `NonMaxSuppressionWithOverlaps` and `CombinedNonMaxSuppression`. TF reference:
//! tensorflow/core/kernels/image/non_max_suppression_op.cc.
//!
//! This module reads and checks the op inputs as TF does (messages included) and hands the
//! boxes and scores, as f32, to `kernels::nms`, which owns the selection loops and their exact
//! tie-breaking. Half-precision scores are widened once and every score-type operation is
//! rounded back to f16 inside the kernel (TF computes those in `Eigen::half`); IoU is computed
//! in f32 for every score type, as in TF.

use half::f16;

use super::{take_inputs, BuildCtx, EvalCtx, Op, OpError, Registry};
use crate::ops::kernels::nms::{self, Detection, NmsParams};
use crate::ops::Tensors;
use crate::tensor::{DType, Tensor};

pub(crate) fn register(r: &mut Registry) {
    r.add("CombinedNonMaxSuppression", CombinedNms::build);
    r.add("NonMaxSuppression", |cx| Nms::build(cx, Version::V1));
    r.add("NonMaxSuppressionV2", |cx| Nms::build(cx, Version::V2));
    r.add("NonMaxSuppressionV3", |cx| Nms::build(cx, Version::V3));
    r.add("NonMaxSuppressionV4", |cx| Nms::build(cx, Version::V4));
    r.add("NonMaxSuppressionV5", |cx| Nms::build(cx, Version::V5));
    r.add("NonMaxSuppressionWithOverlaps", |cx| {
        Nms::build(cx, Version::Overlaps)
    });
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
    V3,
    V4,
    V5,
    Overlaps,
}

/// The single-class ops: greedy NMS of `[num_boxes, 4]` boxes (or a `[n, n]` overlap matrix)
/// by `[num_boxes]` scores.
#[derive(Debug)]
struct Nms {
    version: Version,
    /// v1's `iou_threshold` attribute.
    iou_attr: f32,
    pad: bool,
}

impl Nms {
    fn build(cx: &mut BuildCtx<'_>, version: Version) -> Result<Box<dyn Op>, OpError> {
        let inputs = match version {
            Version::V1 => 3,
            Version::V2 => 4,
            Version::V3 | Version::V4 | Version::Overlaps => 5,
            Version::V5 => 6,
        };
        cx.expect_inputs(inputs)?;
        let iou_attr = match version {
            Version::V1 => cx.attr_opt_f32("iou_threshold").unwrap_or(0.5),
            _ => 0.0,
        };
        let pad = cx.attr_opt_bool("pad_to_max_output_size").unwrap_or(false);
        Ok(Box::new(Nms {
            version,
            iou_attr,
            pad,
        }))
    }
}

/// `GetScalar<T>`: a float scalar of any float dtype, cast to the score type.
fn float_scalar(t: &Tensor, what: &str, round: fn(f32) -> f32) -> Result<f32, OpError> {
    if t.rank() != 0 {
        return Err(OpError::invalid(format!(
            "{what} must be 0-D, got shape {:?}",
            t.shape()
        )));
    }
    let v = match t.dtype() {
        DType::F32 => t.scalar_value::<f32>()?,
        DType::F64 => t.scalar_value::<f64>()? as f32,
        DType::F16 => t.scalar_value::<f16>()?.to_f32(),
        DType::BF16 => t.scalar_value::<half::bf16>()?.to_f32(),
        other => return Err(OpError::dtype(0, "a float scalar", other)),
    };
    Ok(round(v))
}

fn max_output(t: &Tensor, what: &str) -> Result<i32, OpError> {
    if t.rank() != 0 {
        return Err(OpError::invalid(format!(
            "{what} must be 0-D, got shape {:?}",
            t.shape()
        )));
    }
    Ok(t.scalar_value::<i32>()?)
}

/// The elements of a float tensor as f32, and the rounding back to its type.
/// Scores widened to f32, and the rounding back to their type.
type Widened = (Vec<f32>, fn(f32) -> f32);

fn widen(t: &Tensor, index: usize) -> Result<Widened, OpError> {
    match t.dtype() {
        DType::F32 => Ok((t.as_slice::<f32>()?.to_vec(), |x| x)),
        DType::F16 => Ok((
            t.as_slice::<f16>()?.iter().map(|h| h.to_f32()).collect(),
            |x| f16::from_f32(x).to_f32(),
        )),
        other => Err(OpError::dtype(index, "float32 or float16", other)),
    }
}

fn check_boxes(boxes: &Tensor) -> Result<usize, OpError> {
    let s = boxes.shape();
    if s.len() != 2 {
        return Err(OpError::invalid(format!(
            "boxes must be 2-D{s:?} (Shape must be rank 2 but is rank {})",
            s.len()
        )));
    }
    if s[1] != 4 {
        return Err(OpError::invalid(format!(
            "boxes must have 4 columns (Dimension must be 4 but is {})",
            s[1]
        )));
    }
    Ok(s[0])
}

fn check_scores(scores: &Tensor, n: usize) -> Result<(), OpError> {
    let s = scores.shape();
    if s.len() != 1 {
        return Err(OpError::invalid(format!(
            "scores must be 1-D{s:?} (Shape must be rank 1 but is rank {})",
            s.len()
        )));
    }
    if s[0] != n {
        return Err(OpError::invalid(format!(
            "scores has incompatible shape (Dimensions must be equal, but are {n} and {})",
            s[0]
        )));
    }
    Ok(())
}

impl Op for Nms {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let v = self.version;
        let (scores, round) = widen(&inputs[1], 1)?;
        let max_out = max_output(&inputs[2], "max_output_size")?;
        let (iou, score_threshold, sigma) = match v {
            Version::V1 => (self.iou_attr, f32::MIN, 0.0),
            Version::V2 => (
                float_scalar(&inputs[3], "iou_threshold", round)?,
                f32::MIN,
                0.0,
            ),
            _ => {
                let iou_name = if v == Version::Overlaps {
                    "overlap_threshold"
                } else {
                    "iou_threshold"
                };
                let iou = float_scalar(&inputs[3], iou_name, round)?;
                let st = float_scalar(&inputs[4], "score_threshold", round)?;
                let sigma = match v {
                    Version::V5 => float_scalar(&inputs[5], "soft_nms_sigma", round)?,
                    _ => 0.0,
                };
                (iou, st, sigma)
            }
        };
        // Half scores: TF's lowest() is the lowest half, which widens exactly.
        let score_threshold = if score_threshold == f32::MIN && inputs[1].dtype() == DType::F16 {
            f16::MIN.to_f32()
        } else {
            score_threshold
        };
        if v != Version::Overlaps && !(0.0..=1.0).contains(&iou) {
            return Err(OpError::invalid("iou_threshold must be in [0, 1]"));
        }
        if sigma.is_nan() || sigma < 0.0 {
            return Err(OpError::invalid("soft_nms_sigma_val must be >= 0"));
        }
        let (n, overlaps_or_boxes) = if v == Version::Overlaps {
            let o = &inputs[0];
            if o.rank() != 2 {
                return Err(OpError::invalid(format!(
                    "overlaps must be 2-D{:?}",
                    o.shape()
                )));
            }
            if o.shape()[1] != o.shape()[0] {
                return Err(OpError::invalid(format!(
                    "overlaps must be square{:?}",
                    o.shape()
                )));
            }
            (o.shape()[0], o.as_slice::<f32>()?.to_vec())
        } else {
            let n = check_boxes(&inputs[0])?;
            if inputs[0].dtype() != inputs[1].dtype() {
                return Err(OpError::dtype(
                    0,
                    inputs[1].dtype().name(),
                    inputs[0].dtype(),
                ));
            }
            (n, widen(&inputs[0], 0)?.0)
        };
        check_scores(&inputs[1], n)?;
        if max_out < 0 {
            return Err(OpError::invalid("output size must be non-negative"));
        }
        let max_out = max_out as usize;
        let params = NmsParams {
            max_output: max_out,
            similarity_threshold: iou,
            score_threshold,
            soft_nms_sigma: sigma,
            round,
        };
        let data = &overlaps_or_boxes;
        let (mut sel, mut sel_scores) = if v == Version::Overlaps {
            nms::greedy_nms(&scores, &params, |i, j| data[i * n + j])
        } else {
            nms::greedy_nms(&scores, &params, |i, j| {
                nms::iou(&data[i * 4..i * 4 + 4], &data[j * 4..j * 4 + 4])
            })
        };
        let valid = sel.len() as i32;
        if self.pad {
            cx.limits().check_alloc(max_out, DType::I32)?;
            sel.resize(max_out, 0);
            sel_scores.resize(max_out, 0.0);
        }
        let indices: Vec<i32> = sel.iter().map(|&i| i as i32).collect();
        let len = indices.len();
        let mut out = vec![Tensor::from_vec(&[len], indices)?];
        if v == Version::V5 {
            out.push(match inputs[1].dtype() {
                DType::F16 => Tensor::from_vec(
                    &[len],
                    sel_scores.iter().map(|&s| f16::from_f32(s)).collect(),
                )?,
                _ => Tensor::from_vec(&[len], sel_scores)?,
            });
        }
        if matches!(v, Version::V4 | Version::V5) {
            out.push(Tensor::scalar(valid));
        }
        Ok(out.into())
    }
}

/// `CombinedNonMaxSuppression`: per-class hard NMS over a batch, merged by score into
/// `[batch, per_batch, 4]` boxes, `[batch, per_batch]` scores and classes (float) and
/// `[batch]` valid counts.
#[derive(Debug)]
struct CombinedNms {
    pad_per_class: bool,
    clip_boxes: bool,
}

impl CombinedNms {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(6)?;
        Ok(Box::new(CombinedNms {
            pad_per_class: cx.attr_opt_bool("pad_per_class").unwrap_or(false),
            clip_boxes: cx.attr_opt_bool("clip_boxes").unwrap_or(true),
        }))
    }
}

impl Op for CombinedNms {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [boxes, scores, per_class, total, iou, score_threshold] = take_inputs(inputs)?;
        let (bs, ss) = (boxes.shape(), scores.shape());
        if bs.len() != 4 {
            return Err(OpError::invalid(format!(
                "boxes must be 4-D [batch, num_boxes, q, 4], got shape {bs:?}"
            )));
        }
        if ss.len() != 3 {
            return Err(OpError::invalid(format!(
                "scores must be 3-D [batch, num_boxes, num_classes], got shape {ss:?}"
            )));
        }
        let (batch, num_boxes, q, num_classes) = (bs[0], bs[1], bs[2], ss[2]);
        if q != 1 && q != num_classes {
            return Err(OpError::invalid(
                "third dimension of boxes must be either 1 or num classes",
            ));
        }
        if bs[3] != 4 {
            return Err(OpError::invalid("boxes must have 4 columns"));
        }
        if ss[1] != num_boxes {
            return Err(OpError::invalid("scores has incompatible shape"));
        }
        if ss[0] != batch {
            return Err(OpError::invalid(
                "boxes and scores must have same batch size",
            ));
        }
        let max_per_class = max_output(&per_class, "max_size_per_class")?;
        if max_per_class <= 0 {
            return Err(OpError::invalid("max_size_per_class must be positive"));
        }
        let max_total = max_output(&total, "max_total_size")?;
        if max_total <= 0 {
            return Err(OpError::invalid("max_total_size must be > 0"));
        }
        let iou = float_scalar(&iou, "iou_threshold", |x| x)?;
        let score_threshold = float_scalar(&score_threshold, "score_threshold", |x| x)?;
        if !(0.0..=1.0).contains(&iou) {
            return Err(OpError::invalid("iou_threshold must be in [0, 1]"));
        }
        let (boxes, scores) = (boxes.as_slice::<f32>()?, scores.as_slice::<f32>()?);
        let size_per_class = (max_per_class as usize).min(num_boxes);
        let slots = size_per_class
            .checked_mul(num_classes)
            .filter(|&s| s <= i32::MAX as usize)
            .ok_or_else(|| OpError::invalid("size_per_class * num_classes causes overflow"))?;
        // TF keeps one candidate vector of `slots` entries per batch entry.
        let limits = cx.limits();
        limits.check_alloc(slots.saturating_mul(batch).saturating_mul(9), DType::F32)?;
        let max_total_size = (max_per_class as i64 * num_classes as i64).min(i32::MAX as i64);
        let total = max_total as usize;
        let per_batch = if self.pad_per_class {
            total.min(max_total_size as usize)
        } else {
            total
        };
        limits.check_alloc(
            per_batch.saturating_mul(batch).saturating_mul(4),
            DType::F32,
        )?;
        let mut out_boxes = vec![0f32; batch * per_batch * 4];
        let mut out_scores = vec![0f32; batch * per_batch];
        let mut out_classes = vec![0f32; batch * per_batch];
        let mut valid = vec![0i32; batch];
        let mut cands = vec![Detection::EMPTY; slots];
        let (bpb, spb) = (num_boxes * q * 4, num_boxes * num_classes);
        for b in 0..batch {
            cands.fill(Detection::EMPTY);
            let bx = &boxes[b * bpb..(b + 1) * bpb];
            let sc = &scores[b * spb..(b + 1) * spb];
            for (class, out) in cands.chunks_mut(size_per_class.max(1)).enumerate() {
                let class_box = if q > 1 { class } else { 0 };
                nms::combined_nms_class(
                    bx,
                    q,
                    class_box,
                    sc,
                    num_classes,
                    class,
                    score_threshold,
                    iou,
                    &mut out[..size_per_class],
                );
            }
            nms::sort_detections(&mut cands);
            let found = cands.iter().filter(|c| c.index > -1).count();
            let keep = found.min(per_batch);
            valid[b] = keep as i32;
            for (k, c) in cands.iter().take(keep).enumerate() {
                let o = b * per_batch + k;
                for (d, &x) in out_boxes[o * 4..o * 4 + 4].iter_mut().zip(&c.bbox) {
                    // `std::max(std::min(x, 1.0f), 0.0f)`: NaN stays NaN.
                    *d = if self.clip_boxes {
                        let m = if 1.0 < x { 1.0 } else { x };
                        if m < 0.0 {
                            0.0
                        } else {
                            m
                        }
                    } else {
                        x
                    };
                }
                out_scores[o] = c.score;
                out_classes[o] = c.class as f32;
            }
        }
        Ok(tensors![
            Tensor::from_vec(&[batch, per_batch, 4], out_boxes)?,
            Tensor::from_vec(&[batch, per_batch], out_scores)?,
            Tensor::from_vec(&[batch, per_batch], out_classes)?,
            Tensor::from_vec(&[batch], valid)?,
        ])
    }
}

//! `CropAndResize`: box crops resampled to `crop_size` (what Faster R-CNN style detectors
//! and `tf.image.crop_and_resize` use). TF reference: core/kernels/image/crop_and_resize_op.cc.

use super::{nhwc, with_samples};
use crate::ops::kernels::image::crop::{crop_box, CropMethod};
use crate::ops::{take_inputs, BuildCtx, EvalCtx, Op, OpError, Registry, Tensors};
use crate::tensor::{DType, Tensor};

pub(crate) fn register(r: &mut Registry) {
    r.add("CropAndResize", CropAndResize::build);
}

/// Output `[num_boxes, crop_h, crop_w, depth]` float32; box coordinates are normalised
/// `[y1, x1, y2, x2]` (y1 > y2 flips), samples outside the image take `extrapolation_value`.
#[derive(Debug)]
struct CropAndResize {
    method: CropMethod,
    extrapolation: f32,
}

impl CropAndResize {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(4)?;
        let method = match cx
            .attr_opt_str("method")
            .unwrap_or_else(|| "bilinear".into())
            .as_str()
        {
            "bilinear" => CropMethod::Bilinear,
            "nearest" => CropMethod::Nearest,
            m => {
                return Err(OpError::invalid(format!(
                    "method must be 'bilinear' or 'nearest', got {m}"
                )))
            }
        };
        Ok(Box::new(CropAndResize {
            method,
            extrapolation: cx.attr_opt_f32("extrapolation_value").unwrap_or(0.0),
        }))
    }
}

impl Op for CropAndResize {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [image, boxes, box_index, crop_size] = take_inputs(inputs)?;
        let [batch, h, w, depth] = nhwc(&image, "input image")?;
        if h == 0 || w == 0 {
            return Err(OpError::invalid("image dimensions must be positive"));
        }
        let nb = match *boxes.shape() {
            [nb, 4] => nb,
            _ => {
                return Err(OpError::invalid(format!(
                    "boxes must be 2-D[num_boxes, 4]{:?}",
                    boxes.shape()
                )))
            }
        };
        if box_index.shape() != [nb] {
            return Err(OpError::invalid(format!(
                "box_index has incompatible shape{:?}",
                box_index.shape()
            )));
        }
        if crop_size.shape() != [2] || crop_size.dtype() != DType::I32 {
            return Err(OpError::invalid(
                "crop_size must be a length-2 int32 vector",
            ));
        }
        let cs = crop_size.as_slice::<i32>()?;
        if cs[0] <= 0 || cs[1] <= 0 {
            return Err(OpError::invalid("crop dimensions must be positive"));
        }
        let crop = (cs[0] as usize, cs[1] as usize);
        let idx = box_index.i64_cow()?;
        if idx.iter().any(|&b| b < 0 || b as usize >= batch) {
            return Err(OpError::invalid(format!(
                "box_index has values outside [0, batch_size) = [0, {batch})"
            )));
        }
        if boxes.dtype() != DType::F32 {
            return Err(OpError::dtype(1, "float32", boxes.dtype()));
        }
        let bx = boxes.as_slice::<f32>()?;
        let per = crop
            .0
            .checked_mul(crop.1)
            .and_then(|v| v.checked_mul(depth));
        let len = per
            .and_then(|p| p.checked_mul(nb))
            .ok_or_else(|| OpError::Limit("crops tensor size overflows".into()))?;
        cx.limits().check_alloc(len, DType::F32)?;
        let per = per.unwrap_or(0);
        let mut out = vec![0.0f32; len];
        if per > 0 {
            let plane = h * w * depth;
            with_samples!(image, 0, s => {
                for (k, dst) in out.chunks_exact_mut(per).enumerate() {
                    let b = idx[k] as usize;
                    let bb = [bx[k * 4], bx[k * 4 + 1], bx[k * 4 + 2], bx[k * 4 + 3]];
                    crop_box(&s[b * plane..][..plane], [h, w, depth], bb, crop, self.method,
                        self.extrapolation, dst);
                }
            });
        }
        Ok(tensors![Tensor::from_vec(
            &[nb, crop.0, crop.1, depth],
            out
        )?])
    }
}

//! Image ops: decoding and encoding image bytes (`decode`), resizing (`resize`), colour
//! adjustments (`color`), pixel rearrangements and patches (`patches`), box crops
//! (`crop`), projective transforms (`transform`), transposed convolution / LRN (`conv`) and
//! glimpses (`glimpse`).
//!
//! TF semantics live here (attribute parsing, shape checks, TF's error texts, dtype rules);
//! the arithmetic lives in `tfhub_kernels::image`, which knows no TF. Every op checks its
//! output size against [`super::Limits`] before allocating, and decoders check the pixel
//! count a header announces before decoding a byte of it, so hostile headers cost nothing.

mod color;
mod conv;
mod crop;
mod decode;
mod glimpse;
mod patches;
mod resize;
mod transform;

use super::Registry;
use crate::ops::OpError;
use crate::tensor::{Data, Tensor};

pub(crate) fn register(r: &mut Registry) {
    color::register(r);
    conv::register(r);
    crop::register(r);
    decode::register(r);
    glimpse::register(r);
    patches::register(r);
    resize::register(r);
    transform::register(r);
}

/// Runs `$body` with `$s` bound to the elements of real-number tensor `$t` as a
/// `tfhub_kernels::image::Sample` slice (`float16`/`bfloat16` are widened to `f32` first,
/// exactly); other dtypes fail as input `$idx`.
macro_rules! with_samples {
    ($t:expr, $idx:expr, $s:ident => $body:expr) => {{
        use crate::tensor::Data;
        match $t.data() {
            Data::U8(b) => {
                let $s: &[u8] = b;
                $body
            }
            Data::I8(b) => {
                let $s: &[i8] = b;
                $body
            }
            Data::U16(b) => {
                let $s: &[u16] = b;
                $body
            }
            Data::I16(b) => {
                let $s: &[i16] = b;
                $body
            }
            Data::U32(b) => {
                let $s: &[u32] = b;
                $body
            }
            Data::I32(b) => {
                let $s: &[i32] = b;
                $body
            }
            Data::U64(b) => {
                let $s: &[u64] = b;
                $body
            }
            Data::I64(b) => {
                let $s: &[i64] = b;
                $body
            }
            Data::F32(b) => {
                let $s: &[f32] = b;
                $body
            }
            Data::F64(b) => {
                let $s: &[f64] = b;
                $body
            }
            Data::F16(b) => {
                let v: Vec<f32> = b.iter().map(|x| x.to_f32()).collect();
                let $s: &[f32] = &v;
                $body
            }
            Data::BF16(b) => {
                let v: Vec<f32> = b.iter().map(|x| x.to_f32()).collect();
                let $s: &[f32] = &v;
                $body
            }
            _ => {
                return Err(crate::ops::OpError::dtype(
                    $idx,
                    "a real number type",
                    $t.dtype(),
                ))
            }
        }
    }};
}
pub(crate) use with_samples;

/// The `[batch, height, width, channels]` of a rank-4 image input.
fn nhwc(t: &Tensor, what: &str) -> Result<[usize; 4], OpError> {
    match *t.shape() {
        [n, h, w, c] => Ok([n, h, w, c]),
        _ => Err(OpError::invalid(format!(
            "{what} must be 4-dimensional{:?}",
            t.shape()
        ))),
    }
}

/// A tensor of the same dtype as `like` from `f32` values (for ops whose output keeps the
/// input type but compute in `f32`): integers are rounded-toward-zero casts as Eigen's
/// `cast<T>()` does, saturating.
fn f32_to_dtype(like: &Data, shape: &[usize], v: Vec<f32>) -> Result<Tensor, OpError> {
    use half::{bf16, f16};
    Ok(match like {
        Data::F32(_) => Tensor::from_vec(shape, v)?,
        Data::F64(_) => Tensor::from_vec(shape, v.into_iter().map(f64::from).collect())?,
        Data::F16(_) => Tensor::from_vec(shape, v.into_iter().map(f16::from_f32).collect())?,
        Data::BF16(_) => Tensor::from_vec(shape, v.into_iter().map(bf16::from_f32).collect())?,
        Data::U8(_) => Tensor::from_vec(shape, v.into_iter().map(|x| x as u8).collect())?,
        Data::I8(_) => Tensor::from_vec(shape, v.into_iter().map(|x| x as i8).collect())?,
        Data::U16(_) => Tensor::from_vec(shape, v.into_iter().map(|x| x as u16).collect())?,
        Data::I16(_) => Tensor::from_vec(shape, v.into_iter().map(|x| x as i16).collect())?,
        Data::I32(_) => Tensor::from_vec(shape, v.into_iter().map(|x| x as i32).collect())?,
        Data::I64(_) => Tensor::from_vec(shape, v.into_iter().map(|x| x as i64).collect())?,
        _ => return Err(OpError::invalid("unsupported output dtype")),
    })
}

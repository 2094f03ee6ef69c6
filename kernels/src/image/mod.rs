//! Image kernels over NHWC buffers: resampling (`resize`), colour-space maths (`color`) and
//! pixel rearrangements (`patches`).
//!
//! Like the rest of this crate they know nothing of TensorFlow: shapes come in as
//! `[batch, height, width, channels]` arrays and scales as plain floats. The op layer resolves
//! TF's attributes (align_corners, half_pixel_centers, kernel names) into these numbers and
//! checks sizes against its caps before allocating the output these kernels fill.
//!
//! Resamplers are generic over the input element ([`Sample`]) so an 8-bit image is read in
//! place and widened per tap, as TF's `static_cast<float>` does; every conversion is exact
//! or rounds as `as f32` does, so the result does not depend on when the widening happens.

pub mod color;
pub mod crop;
pub mod jpeg;
pub mod patches;
pub mod resize;
pub mod transform;

/// An input element a resampler can read: widened to `f32` exactly as C++'s
/// `static_cast<float>` widens it.
pub trait Sample: Copy + Send + Sync + 'static {
    /// The value as `f32` (round to nearest for wide integers and `f64`).
    fn to_f32(self) -> f32;
}

macro_rules! sample {
    ($($t:ty),*) => {$(
        impl Sample for $t {
            #[inline(always)]
            fn to_f32(self) -> f32 {
                self as f32
            }
        }
    )*};
}
sample!(u8, i8, u16, i16, u32, i32, u64, i64, f32, f64);

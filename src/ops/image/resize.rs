//! `ResizeBilinear`, `ResizeNearestNeighbor`, `ResizeBicubic`, `ResizeArea` and
//! `ScaleAndTranslate`: what `tf.image.resize` (v1 and v2) and Keras' `Resizing` compile to.
//! TF reference: core/kernels/image/{resize_bilinear_op,resize_nearest_neighbor_op,
//! resize_bicubic_op,resize_area_op,scale_and_translate_op}.cc, core/util/image_resizer_state.h.
//!
//! Every resizer but nearest-neighbour outputs `float32` whatever the input type; nearest
//! keeps the input type (and also takes `bool`-free integer and float types only, as TF).

use super::{nhwc, with_samples};
use crate::ops::kernels::image::resize::{
    filter_spans, resize_area, resize_bicubic, resize_bilinear, resize_nearest, resize_spans,
    Filter,
};
use crate::ops::{take_inputs, BuildCtx, EvalCtx, Op, OpError, Registry, Tensors};
use crate::tensor::{DType, Data, Tensor};

pub(crate) fn register(r: &mut Registry) {
    r.add("ResizeArea", |cx| Resize::build(cx, Method::Area));
    r.add("ResizeBicubic", |cx| Resize::build(cx, Method::Bicubic));
    r.add("ResizeBilinear", |cx| Resize::build(cx, Method::Bilinear));
    r.add("ResizeNearestNeighbor", |cx| {
        Resize::build(cx, Method::Nearest)
    });
    r.add("ScaleAndTranslate", ScaleAndTranslate::build);
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Method {
    Area,
    Bicubic,
    Bilinear,
    Nearest,
}

/// `ResizeArea` / `ResizeBicubic` / `ResizeBilinear` / `ResizeNearestNeighbor`.
#[derive(Debug)]
struct Resize {
    method: Method,
    align_corners: bool,
    half_pixel_centers: bool,
}

impl Resize {
    fn build(cx: &mut BuildCtx<'_>, method: Method) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(2)?;
        Ok(Box::new(Resize {
            method,
            align_corners: cx.attr_opt_bool("align_corners").unwrap_or(false),
            // ResizeArea has no such attr (it always used pixel areas correctly).
            half_pixel_centers: cx.attr_opt_bool("half_pixel_centers").unwrap_or(false),
        }))
    }
}

/// The `(height, width)` of a `size` input: an int32 vector of two positive values.
fn out_size(size: &Tensor) -> Result<(usize, usize), OpError> {
    if size.rank() != 1 {
        return Err(OpError::invalid(format!(
            "shape_t must be 1-dimensional{:?}",
            size.shape()
        )));
    }
    if size.len() != 2 {
        return Err(OpError::invalid(format!(
            "shape_t must have two elements{:?}",
            size.shape()
        )));
    }
    if size.dtype() != DType::I32 {
        return Err(OpError::dtype(1, "int32", size.dtype()));
    }
    let v = size.as_slice::<i32>()?;
    if v[0] <= 0 || v[1] <= 0 {
        return Err(OpError::invalid("output dimensions must be positive"));
    }
    Ok((v[0] as usize, v[1] as usize))
}

/// TF's `CalculateResizeScale`: input pixels per output pixel.
fn resize_scale(input: usize, out: usize, align_corners: bool) -> f32 {
    if align_corners && out > 1 {
        (input - 1) as f32 / (out - 1) as f32
    } else {
        input as f32 / out as f32
    }
}

/// Checks the output element count against the caps; returns it.
fn out_elements(
    cx: &EvalCtx<'_>,
    dims: [usize; 4],
    out: (usize, usize),
    dtype: DType,
) -> Result<usize, OpError> {
    let n = [dims[0], out.0, out.1, dims[3]]
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| OpError::Limit("resized image size overflows".into()))?;
    cx.limits().check_alloc(n, dtype)?;
    Ok(n)
}

impl Op for Resize {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [images, size] = take_inputs(inputs)?;
        if self.half_pixel_centers && self.align_corners {
            return Err(OpError::invalid(
                "If half_pixel_centers is True, align_corners must be False.",
            ));
        }
        let dims = nhwc(&images, "input")?;
        if dims[3] == 0 {
            return Err(OpError::invalid("image must have at least one channel"));
        }
        if dims[1] == 0 || dims[2] == 0 {
            return Err(OpError::invalid("input image must be of non-zero size"));
        }
        if dims[1] > i32::MAX as usize || dims[2] > i32::MAX as usize {
            return Err(OpError::invalid(
                "input sizes must be between 0 and max int32",
            ));
        }
        let out = out_size(&size)?;
        let scale = (
            resize_scale(dims[1], out.0, self.align_corners),
            resize_scale(dims[2], out.1, self.align_corners),
        );
        let shape = [dims[0], out.0, out.1, dims[3]];
        if self.method == Method::Nearest {
            if dims[1] >= 1 << 24 || dims[2] >= 1 << 24 {
                return Err(OpError::invalid(
                    "nearest neighbor requires max height & width of 2^24",
                ));
            }
            let n = out_elements(cx, dims, out, images.dtype())?;
            let (half, align) = (self.half_pixel_centers, self.align_corners);
            macro_rules! nn {
                ($($v:ident),*) => {
                    match images.data() {
                        $(Data::$v(b) => {
                            let mut dst = vec![b[0]; n];
                            resize_nearest(b, dims, &mut dst, out, scale, half, align);
                            Tensor::from_vec(&shape, dst)?
                        })*
                        _ => return Err(OpError::dtype(0, "a real number type", images.dtype())),
                    }
                };
            }
            if images.is_empty() {
                return Ok(tensors![Tensor::zeros(images.dtype(), &shape)?]);
            }
            let t = nn!(U8, I8, U16, I16, U32, I32, U64, I64, F16, BF16, F32, F64);
            return Ok(tensors![t]);
        }
        let n = out_elements(cx, dims, out, DType::F32)?;
        let mut dst = vec![0.0f32; n];
        if n > 0 {
            let half = self.half_pixel_centers;
            with_samples!(images, 0, s => match self.method {
                Method::Area => resize_area(s, dims, &mut dst, out, scale),
                Method::Bicubic => resize_bicubic(s, dims, &mut dst, out, scale, half),
                _ => resize_bilinear(s, dims, &mut dst, out, scale, half),
            });
        }
        Ok(tensors![Tensor::from_vec(&shape, dst)?])
    }
}

/// `ScaleAndTranslate`: separable resampling with a named filter, output pixel `x` sampling
/// the input at `(x + 0.5 - translation) / scale`; `antialias` widens the filter when
/// downscaling. What `tf.image.resize` v2 emits for lanczos3/5, gaussian, mitchellcubic,
/// and for bilinear/bicubic with `antialias=True`.
#[derive(Debug)]
struct ScaleAndTranslate {
    filter: Filter,
    antialias: bool,
}

impl ScaleAndTranslate {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(4)?;
        let name = cx
            .attr_opt_str("kernel_type")
            .unwrap_or_else(|| "lanczos3".into());
        let filter = match name.to_ascii_lowercase().as_str() {
            "box" => Filter::Box,
            "gaussian" => Filter::Gaussian,
            "keyscubic" => Filter::KeysCubic,
            "lanczos1" => Filter::Lanczos(1),
            "lanczos3" => Filter::Lanczos(3),
            "lanczos5" => Filter::Lanczos(5),
            "mitchellcubic" => Filter::MitchellCubic,
            "triangle" => Filter::Triangle,
            _ => {
                return Err(OpError::invalid(format!(
                    "Unrecognized kernel type: {name}"
                )))
            }
        };
        Ok(Box::new(ScaleAndTranslate {
            filter,
            antialias: cx.attr_opt_bool("antialias").unwrap_or(true),
        }))
    }
}

/// Two floats from a `scale` / `translation` input.
fn pair(t: &Tensor, idx: usize) -> Result<(f32, f32), OpError> {
    if t.rank() != 1 || t.len() != 2 {
        return Err(OpError::invalid(format!(
            "t must be 1-dimensional with two elements{:?}",
            t.shape()
        )));
    }
    if t.dtype() != DType::F32 {
        return Err(OpError::dtype(idx, "float32", t.dtype()));
    }
    let v = t.as_slice::<f32>()?;
    Ok((v[0], v[1]))
}

impl Op for ScaleAndTranslate {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [images, size, scale, translation] = take_inputs(inputs)?;
        let dims = nhwc(&images, "input")?;
        let out = out_size(&size)?;
        if dims[3] == 0 {
            return Err(OpError::invalid("image must have at least one channel"));
        }
        if dims[1] == 0 || dims[2] == 0 {
            return Err(OpError::invalid("input image must be of non-zero size"));
        }
        let (rs, cs) = pair(&scale, 2)?;
        // NaN is refused too (TF would take it into undefined float->int casts).
        if rs.is_nan() || cs.is_nan() || rs <= 0.0 || cs <= 0.0 {
            return Err(OpError::invalid("Scale must be greater than zero."));
        }
        let (rt, ct) = pair(&translation, 3)?;
        let n = out_elements(cx, dims, out, DType::F32)?;
        let scratch_len = dims[0]
            .checked_mul(out.0)
            .and_then(|v| v.checked_mul(dims[2] * dims[3]))
            .ok_or_else(|| OpError::Limit("intermediate image size overflows".into()))?;
        cx.limits().check_alloc(scratch_len + n, DType::F32)?;
        let cols = filter_spans(self.filter, out.1, dims[2], cs, ct, self.antialias);
        let rows = filter_spans(self.filter, out.0, dims[1], rs, rt, self.antialias);
        let mut dst = vec![0.0f32; n];
        if n > 0 {
            let mut scratch = vec![0.0f32; scratch_len];
            with_samples!(images, 0, s => {
                resize_spans(s, dims, &mut dst, out, &rows, &cols, &mut scratch)
            });
        }
        Ok(tensors![Tensor::from_vec(
            &[dims[0], out.0, out.1, dims[3]],
            dst,
        )?])
    }
}

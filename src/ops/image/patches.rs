//! `SpaceToDepth`, `DepthToSpace` (NHWC) and `ExtractImagePatches`.
//! TF reference: core/kernels/{spacetodepth_op,depthtospace_op,extract_image_patches_op}.cc
//! (patch geometry from core/framework/kernel_shape_util.cc, as for convolutions).

use crate::ops::kernels::image::patches::{
    depth_to_space, extract_patches, space_to_depth, PatchAxis,
};
use crate::ops::{take_inputs, BuildCtx, EvalCtx, Op, OpError, Registry, Tensors};
use crate::tensor::{Data, Tensor};

pub(crate) fn register(r: &mut Registry) {
    r.add("DepthToSpace", SpaceDepth::build);
    r.add("ExtractImagePatches", ExtractImagePatches::build);
    r.add("SpaceToDepth", SpaceDepth::build);
}

/// Applies `$f(src, dst)` to a tensor of any plain element type, producing `$shape`.
macro_rules! per_dtype {
    ($t:expr, $shape:expr, $n:expr, |$s:ident, $d:ident| $body:expr) => {{
        macro_rules! arm {
            ($b:expr) => {{
                let $s = &$b[..];
                let mut $d = zeroed($s, $n);
                $body;
                Tensor::from_vec($shape, $d)?
            }};
        }
        match $t.data() {
            Data::U8(b) => arm!(b),
            Data::I8(b) => arm!(b),
            Data::U16(b) => arm!(b),
            Data::I16(b) => arm!(b),
            Data::U32(b) => arm!(b),
            Data::I32(b) => arm!(b),
            Data::U64(b) => arm!(b),
            Data::I64(b) => arm!(b),
            Data::F16(b) => arm!(b),
            Data::BF16(b) => arm!(b),
            Data::F32(b) => arm!(b),
            Data::F64(b) => arm!(b),
            Data::Bool(b) => arm!(b),
            _ => return Err(OpError::dtype(0, "a numeric or bool type", $t.dtype())),
        }
    }};
}

/// `n` default elements of `src`'s element type.
fn zeroed<T: Default + Clone>(_: &[T], n: usize) -> Vec<T> {
    vec![T::default(); n]
}

fn nhwc_only(cx: &BuildCtx<'_>) -> Result<(), OpError> {
    let f = cx
        .attr_opt_str("data_format")
        .unwrap_or_else(|| "NHWC".into());
    if f != "NHWC" {
        return Err(OpError::Unimplemented(format!(
            "{} with data_format {f} (only NHWC)",
            cx.op
        )));
    }
    Ok(())
}

/// `SpaceToDepth` / `DepthToSpace`.
#[derive(Debug)]
struct SpaceDepth {
    to_depth: bool,
    block: usize,
}

impl SpaceDepth {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(1)?;
        nhwc_only(cx)?;
        let block = cx.attr_i64("block_size")?;
        if block < 2 {
            return Err(OpError::invalid(format!(
                "Block size should be > 1, but was: {block}"
            )));
        }
        Ok(Box::new(SpaceDepth {
            to_depth: cx.op == "SpaceToDepth",
            block: block as usize,
        }))
    }
}

impl Op for SpaceDepth {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [x] = take_inputs(inputs)?;
        let dims = super::nhwc(&x, "input")?;
        let [n, h, w, c] = dims;
        let bs = self.block;
        let overflow = || OpError::Limit("block size overflows the output shape".into());
        let bs2 = bs.checked_mul(bs).ok_or_else(overflow)?;
        let shape = if self.to_depth {
            if h % bs != 0 || w % bs != 0 {
                return Err(OpError::invalid(format!(
                    "Image width {w} and height {h} should be divisible by block_size: {bs}"
                )));
            }
            [n, h / bs, w / bs, c.checked_mul(bs2).ok_or_else(overflow)?]
        } else {
            if c % bs2 != 0 {
                return Err(OpError::invalid(format!(
                    "Input depth dimension {c} should be divisible by: {bs2}"
                )));
            }
            let up = |d: usize| d.checked_mul(bs).ok_or_else(overflow);
            [n, up(h)?, up(w)?, c / bs2]
        };
        cx.limits().check_alloc(x.len(), x.dtype())?;
        let to_depth = self.to_depth;
        let t = per_dtype!(x, &shape, x.len(), |s, d| if to_depth {
            space_to_depth(s, dims, bs, &mut d)
        } else {
            depth_to_space(s, dims, bs, &mut d)
        });
        Ok(tensors![t])
    }
}

/// `ExtractImagePatches`: `[n, oh, ow, kh*kw*c]` patches (rows of the patch, then columns,
/// then depth), zero outside the image with `SAME` padding.
#[derive(Debug)]
struct ExtractImagePatches {
    k: (usize, usize),
    strides: (usize, usize),
    rates: (usize, usize),
    same: bool,
}

fn spatial4(cx: &BuildCtx<'_>, name: &str) -> Result<(usize, usize), OpError> {
    let v = cx.attr_list_i64(name);
    if v.len() != 4 || v[0] != 1 || v[3] != 1 || v[1] < 1 || v[2] < 1 {
        return Err(OpError::Attr {
            name: name.into(),
            what: format!("expected [1, rows, cols, 1] with positive rows and cols, got {v:?}"),
        });
    }
    Ok((v[1] as usize, v[2] as usize))
}

impl ExtractImagePatches {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(1)?;
        let same = match cx.attr_str("padding")?.as_str() {
            "SAME" => true,
            "VALID" => false,
            p => {
                return Err(OpError::Attr {
                    name: "padding".into(),
                    what: format!("unknown mode {p:?}"),
                })
            }
        };
        Ok(Box::new(ExtractImagePatches {
            k: spatial4(cx, "ksizes")?,
            strides: spatial4(cx, "strides")?,
            rates: spatial4(cx, "rates")?,
            same,
        }))
    }
}

/// Output size and leading pad of one axis (TF's `GetWindowedOutputSize`).
fn axis(
    input: usize,
    k: usize,
    stride: usize,
    rate: usize,
    same: bool,
) -> Result<PatchAxis, OpError> {
    let eff = (k - 1)
        .checked_mul(rate)
        .and_then(|v| v.checked_add(1))
        .ok_or_else(|| OpError::invalid("patch size overflows"))?;
    let (out, pad) = if same {
        let out = input.div_ceil(stride);
        let total = ((out.max(1) - 1) * stride + eff).saturating_sub(input);
        (out, total / 2)
    } else if input >= eff {
        ((input - eff) / stride + 1, 0)
    } else {
        (0, 0)
    };
    Ok(PatchAxis {
        k,
        stride,
        rate,
        pad,
        out,
    })
}

impl Op for ExtractImagePatches {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [x] = take_inputs(inputs)?;
        let dims = super::nhwc(&x, "input")?;
        let [n, h, w, c] = dims;
        let ay = axis(h, self.k.0, self.strides.0, self.rates.0, self.same)?;
        let ax = axis(w, self.k.1, self.strides.1, self.rates.1, self.same)?;
        let depth = self.k.0 * self.k.1 * c;
        let len = [n, ay.out, ax.out, depth]
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| OpError::Limit("patches tensor size overflows".into()))?;
        cx.limits().check_alloc(len, x.dtype())?;
        let shape = [n, ay.out, ax.out, depth];
        let t = per_dtype!(x, &shape, len, |s, d| extract_patches(
            s, dims, ay, ax, &mut d
        ));
        Ok(tensors![t])
    }
}

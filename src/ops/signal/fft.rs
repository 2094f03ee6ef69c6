//! `FFT`, `IFFT`, `RFFT`, `IRFFT` and their `2D` / `3D` variants: transforms over the 1-3
//! innermost axes. TF reference: core/kernels/fft_ops.cc (DUCC on CPU).
//!
//! As in TF: `RFFT`/`IRFFT` take `fft_length` (int32 `[rank]`); every transformed input axis
//! must be at least that long (the innermost one at least `n / 2 + 1` for `IRFFT`) and is
//! cropped to it, never padded (Python pads before the op); inverse transforms scale by one
//! over the product of the lengths; empty inputs give empty outputs.

use crate::ops::kernels::fft::{self as k, C64};
use crate::ops::{BuildCtx, EvalCtx, Op, OpError, Registry, Tensors};
use crate::tensor::{Complex32, Complex64, DType, Tensor};

pub(super) fn register(r: &mut Registry) {
    for name in [
        "FFT", "FFT2D", "FFT3D", "IFFT", "IFFT2D", "IFFT3D", "IRFFT", "IRFFT2D", "IRFFT3D", "RFFT",
        "RFFT2D", "RFFT3D",
    ] {
        r.add(name, Fft::build);
    }
}

#[derive(Debug)]
struct Fft {
    rank: usize,
    forward: bool,
    real: bool,
    /// Output dtype of the real transforms (`Tcomplex` / `Treal`).
    out: Option<DType>,
}

impl Fft {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        let op = cx.op;
        let rank = if op.ends_with("2D") {
            2
        } else if op.ends_with("3D") {
            3
        } else {
            1
        };
        let base = op.trim_end_matches("2D").trim_end_matches("3D");
        let forward = !base.starts_with('I');
        let real = base.ends_with("RFFT");
        cx.expect_inputs(if real { 2 } else { 1 })?;
        let out = match (real, forward) {
            (true, true) => cx.attr_opt_type("Tcomplex")?.or(Some(DType::C64)),
            (true, false) => cx.attr_opt_type("Treal")?.or(Some(DType::F32)),
            _ => None,
        };
        Ok(Box::new(Fft {
            rank,
            forward,
            real,
            out,
        }))
    }
}

/// The complex elements of a tensor, widened to f64.
fn complex_f64(t: &Tensor) -> Result<Vec<C64>, OpError> {
    Ok(match t.dtype() {
        DType::C64 => t
            .as_slice::<Complex32>()?
            .iter()
            .map(|z| C64::new(z.re as f64, z.im as f64))
            .collect(),
        DType::C128 => t.as_slice::<Complex64>()?.to_vec(),
        other => return Err(OpError::dtype(0, "complex64 or complex128", other)),
    })
}

/// The leading `dims` block of every `[.., full]` trailing block: crops the last
/// `full.len()` axes of a row-major buffer to `dims`.
fn crop<T: Copy>(x: &[T], shape: &[usize], dims: &[usize]) -> Vec<T> {
    let k = dims.len();
    let lead = &shape[..shape.len() - k];
    let full = &shape[shape.len() - k..];
    if full == dims {
        return x.to_vec();
    }
    let outer: usize = lead.iter().product();
    let block: usize = full.iter().product();
    let mut out = Vec::with_capacity(outer * dims.iter().product::<usize>());
    for o in 0..outer {
        let base = o * block;
        match k {
            1 => out.extend_from_slice(&x[base..base + dims[0]]),
            2 => {
                for i in 0..dims[0] {
                    let r = base + i * full[1];
                    out.extend_from_slice(&x[r..r + dims[1]]);
                }
            }
            _ => {
                for i in 0..dims[0] {
                    for j in 0..dims[1] {
                        let r = base + (i * full[1] + j) * full[2];
                        out.extend_from_slice(&x[r..r + dims[2]]);
                    }
                }
            }
        }
    }
    out
}

impl Op for Fft {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let x = &inputs[0];
        let k = self.rank;
        let shape = x.shape().to_vec();
        if shape.len() < k {
            return Err(OpError::invalid(format!(
                "Input must have rank of at least {k} but got: {shape:?}"
            )));
        }
        let lead = shape.len() - k;
        let mut out_shape = shape.clone();
        // Lengths of the transform, and the input block each transformed line is read from.
        let mut lengths = shape[lead..].to_vec();
        let mut in_dims = lengths.clone();
        if self.real {
            let fl = inputs
                .get(1)
                .ok_or(OpError::Arity {
                    expected: 2,
                    got: 1,
                })?
                .as_slice::<i32>()?;
            if fl.len() != k || inputs[1].rank() != 1 {
                return Err(OpError::invalid(format!(
                    "fft_length must have shape [{k}]"
                )));
            }
            for (i, &len) in fl.iter().enumerate() {
                let n = usize::try_from(len).map_err(|_| {
                    OpError::invalid(format!("fft_length[{i}] must >= 0, but got: {len}"))
                })?;
                let inner = i == k - 1;
                let min = if !self.forward && inner { n / 2 + 1 } else { n };
                let d = shape[lead + i];
                if d != 0 && d < min {
                    return Err(OpError::invalid(format!(
                        "Input dimension {} must have length of at least {min} but got: {d}",
                        lead + i
                    )));
                }
                lengths[i] = n;
                in_dims[i] = min.min(d);
                out_shape[lead + i] = if self.forward && inner && n != 0 {
                    n / 2 + 1
                } else {
                    n
                };
            }
        }
        let out_dtype = match (self.real, self.forward) {
            (true, _) => self.out.expect("set for real transforms"),
            _ => x.dtype(),
        };
        let count = crate::tensor::num_elements(&out_shape)
            .ok_or_else(|| OpError::Limit(format!("shape {out_shape:?} overflows")))?;
        cx.limits().check_alloc(count, out_dtype)?;
        if x.is_empty() || count == 0 {
            return Ok(tensors![Tensor::zeros(out_dtype, &out_shape)?]);
        }
        let total: f64 = lengths.iter().map(|&n| n as f64).product();
        let scale = if self.forward { 1.0 } else { 1.0 / total };
        let outer_axes = |buf: &mut [C64], dims: &[usize]| {
            let full: Vec<usize> = [&shape[..lead], dims].concat();
            for a in 0..k - 1 {
                k::c2c_axis(buf, &full, lead + a, !self.forward);
            }
        };
        match (self.real, self.forward) {
            (false, _) => {
                let mut buf = complex_f64(x)?;
                let dims = shape[lead..].to_vec();
                outer_axes(&mut buf, &dims);
                k::c2c_axis(&mut buf, &shape, shape.len() - 1, !self.forward);
                Ok(tensors![to_complex(out_dtype, &out_shape, buf, scale)?])
            }
            (true, true) => {
                let re: Vec<f64> = match x.dtype() {
                    DType::F32 => x.as_slice::<f32>()?.iter().map(|&v| v as f64).collect(),
                    DType::F64 => x.as_slice::<f64>()?.to_vec(),
                    other => return Err(OpError::dtype(0, "float32 or float64", other)),
                };
                check_pair(x.dtype(), out_dtype, true)?;
                let cropped = crop(&re, &shape, &in_dims);
                let n = lengths[k - 1];
                let mut buf = vec![C64::default(); count];
                k::r2c_rows(&cropped, n, &mut buf);
                outer_axes(&mut buf, &out_shape[lead..]);
                Ok(tensors![to_complex(out_dtype, &out_shape, buf, 1.0)?])
            }
            (true, false) => {
                let z = complex_f64(x)?;
                check_pair(x.dtype(), out_dtype, false)?;
                let mut cropped = crop(&z, &shape, &in_dims);
                outer_axes(&mut cropped, &in_dims);
                let n = lengths[k - 1];
                let mut y = vec![0f64; count];
                k::c2r_rows(&cropped, n, &mut y);
                let t = match out_dtype {
                    DType::F32 => Tensor::from_vec(
                        &out_shape,
                        y.iter().map(|&v| (v * scale) as f32).collect(),
                    )?,
                    _ => Tensor::from_vec(&out_shape, y.iter().map(|&v| v * scale).collect())?,
                };
                Ok(tensors![t])
            }
        }
    }
}

/// TF's "Wrong types for forward/backward real FFT" check.
fn check_pair(input: DType, out: DType, forward: bool) -> Result<(), OpError> {
    let ok = if forward {
        matches!(
            (input, out),
            (DType::F32, DType::C64) | (DType::F64, DType::C128)
        )
    } else {
        matches!(
            (input, out),
            (DType::C64, DType::F32) | (DType::C128, DType::F64)
        )
    };
    if ok {
        Ok(())
    } else {
        let dir = if forward { "forward" } else { "backward" };
        Err(OpError::invalid(format!(
            "Wrong types for {dir} real FFT: in={input} out={out}"
        )))
    }
}

fn to_complex(dtype: DType, shape: &[usize], buf: Vec<C64>, scale: f64) -> Result<Tensor, OpError> {
    Ok(match dtype {
        DType::C64 => Tensor::from_vec(
            shape,
            buf.iter()
                .map(|z| Complex32::new((z.re * scale) as f32, (z.im * scale) as f32))
                .collect(),
        )?,
        _ => Tensor::from_vec(shape, buf.iter().map(|z| z * scale).collect::<Vec<_>>())?,
    })
}

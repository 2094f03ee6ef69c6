//! `Complex`, `Real`, `Imag`, `Angle`, `Conj`, `ComplexAbs`: building complex tensors and taking
//! them apart. TF reference: core/kernels/cwise_op_{complex,real,imag,arg,conj,abs}.cc
//! (`std::complex` functions: `abs` is `hypot`, `arg` is `atan2(im, re)`).

use crate::ops::math::{map1_to, map2_to};
use crate::ops::{take_inputs, BuildCtx, EvalCtx, Op, OpError, Registry, Tensors};
use crate::tensor::{Complex32, Complex64, DType};

pub(super) fn register(r: &mut Registry) {
    r.add("Angle", |cx| Part::build(cx, PartKind::Angle));
    r.add("Complex", Complex::build);
    r.add("ComplexAbs", |cx| Part::build(cx, PartKind::Abs));
    r.add("Conj", Conj::build);
    r.add("Imag", |cx| Part::build(cx, PartKind::Imag));
    r.add("Real", |cx| Part::build(cx, PartKind::Real));
}

/// `Complex(real, imag)`: broadcasting pairs, f32 -> complex64, f64 -> complex128.
#[derive(Debug)]
struct Complex;

impl Complex {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(2)?;
        Ok(Box::new(Complex))
    }
}

impl Op for Complex {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [re, im] = take_inputs(inputs)?;
        if re.dtype() != im.dtype() {
            return Err(OpError::dtype(1, re.dtype().name(), im.dtype()));
        }
        let l = cx.limits();
        let out = match re.dtype() {
            DType::F32 => map2_to::<f32, Complex32>(l, &re, &im, |a, b| Complex32::new(*a, *b))?,
            DType::F64 => map2_to::<f64, Complex64>(l, &re, &im, |a, b| Complex64::new(*a, *b))?,
            other => return Err(OpError::dtype(0, "float32 or float64", other)),
        };
        Ok(tensors![out])
    }
}

#[derive(Debug, Clone, Copy)]
enum PartKind {
    Abs,
    Angle,
    Imag,
    Real,
}

/// `Real`, `Imag`, `Angle`, `ComplexAbs`: complex -> its float type (TF's op defs take only
/// complex inputs; `tf.math.real` of a float tensor never reaches the graph).
#[derive(Debug)]
struct Part(PartKind);

impl Part {
    fn build(cx: &mut BuildCtx<'_>, kind: PartKind) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(1)?;
        Ok(Box::new(Part(kind)))
    }
}

macro_rules! part {
    ($kind:expr, $c:ty, $f:ty, $x:expr) => {
        match $kind {
            PartKind::Abs => map1_to::<$c, $f>($x, |z| z.re.hypot(z.im)),
            PartKind::Angle => map1_to::<$c, $f>($x, |z| z.im.atan2(z.re)),
            PartKind::Imag => map1_to::<$c, $f>($x, |z| z.im),
            PartKind::Real => map1_to::<$c, $f>($x, |z| z.re),
        }
    };
}

impl Op for Part {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [x] = take_inputs(inputs)?;
        let out = match x.dtype() {
            DType::C64 => part!(self.0, Complex32, f32, &x)?,
            DType::C128 => part!(self.0, Complex64, f64, &x)?,
            other => return Err(OpError::dtype(0, "complex64 or complex128", other)),
        };
        Ok(tensors![out])
    }
}

/// `Conj`: complex conjugate (TF's `Conj` of a `variant` is not supported).
#[derive(Debug)]
struct Conj;

impl Conj {
    fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(1)?;
        Ok(Box::new(Conj))
    }
}

impl Op for Conj {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [x] = take_inputs(inputs)?;
        let out = match x.dtype() {
            DType::C64 => map1_to::<Complex32, Complex32>(&x, |z| z.conj())?,
            DType::C128 => map1_to::<Complex64, Complex64>(&x, |z| z.conj())?,
            other => return Err(OpError::dtype(0, "complex64 or complex128", other)),
        };
        Ok(tensors![out])
    }
}

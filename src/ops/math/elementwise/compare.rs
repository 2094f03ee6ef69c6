//! Comparisons, logic, `Select`/`SelectV2` and `ClipByValue`. TF reference:
//! tensorflow/core/kernels/cwise_op_{equal_to,not_equal_to,less,greater,...}.cc,
//! cwise_op_select.cc, cwise_op_clip.cc.

use super::{alloc_len, broadcast_shape, map1, map2_to, with_numeric, Plan};
use crate::ops::{take_inputs, BuildCtx, EvalCtx, Limits, Op, OpError, Tensors};
use crate::tensor::{Buf, DType, Data, Element, Tensor};

/// Which comparison or logical op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CmpOp {
    Equal,
    Greater,
    GreaterEqual,
    Less,
    LessEqual,
    LogicalAnd,
    LogicalOr,
    NotEqual,
}

/// `Equal`, `NotEqual` (any dtype incl. bool and string), `Less`, `LessEqual`, `Greater`,
/// `GreaterEqual` (numeric), `LogicalAnd`, `LogicalOr` (bool): broadcasting, bool output.
#[derive(Debug)]
pub(super) struct Compare {
    op: CmpOp,
    /// `incompatible_shape_error` (Equal/NotEqual): when false, unbroadcastable shapes give
    /// a scalar `false` (Equal) or `true` (NotEqual) instead of an error.
    shape_error: bool,
}

impl Compare {
    pub(super) fn build(cx: &mut BuildCtx<'_>, op: CmpOp) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(2)?;
        let shape_error = cx.attr_opt_bool("incompatible_shape_error").unwrap_or(true);
        Ok(Box::new(Compare { op, shape_error }))
    }
}

impl Op for Compare {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        use CmpOp::*;
        let [a, b] = take_inputs(inputs)?;
        let dt = a.dtype();
        if b.dtype() != dt {
            return Err(OpError::dtype(1, dt.name(), b.dtype()));
        }
        let eq = matches!(self.op, Equal | NotEqual);
        if eq && !self.shape_error && broadcast_shape(a.shape(), b.shape()).is_err() {
            return Ok(tensors![Tensor::scalar(self.op == NotEqual)]);
        }
        let l = cx.limits();
        let out = match (self.op, a.data()) {
            (LogicalAnd, Data::Bool(_)) => map2_to::<bool, bool>(l, &a, &b, |x, y| *x && *y)?,
            (LogicalOr, Data::Bool(_)) => map2_to::<bool, bool>(l, &a, &b, |x, y| *x || *y)?,
            (LogicalAnd | LogicalOr, _) => return Err(OpError::dtype(0, "bool", dt)),
            (_, Data::Bool(buf)) if eq => compare(buf, l, self.op, &a, &b)?,
            (_, Data::String(buf)) if eq => compare(buf, l, self.op, &a, &b)?,
            (op, data) => crate::match_numeric!(data, buf => compare(buf, l, op, &a, &b)?,
                _ => return Err(OpError::dtype(0, "a numeric type", dt))),
        };
        Ok(tensors![out])
    }
}

/// IEEE comparisons (NaN compares unequal and unordered), typed by `_buf`.
fn compare<T: Element + PartialOrd>(
    _buf: &Buf<T>,
    l: &Limits,
    op: CmpOp,
    a: &Tensor,
    b: &Tensor,
) -> Result<Tensor, OpError> {
    use CmpOp::*;
    match op {
        Equal => map2_to::<T, bool>(l, a, b, |x, y| x == y),
        NotEqual => map2_to::<T, bool>(l, a, b, |x, y| x != y),
        Less => map2_to::<T, bool>(l, a, b, |x, y| x < y),
        LessEqual => map2_to::<T, bool>(l, a, b, |x, y| x <= y),
        Greater => map2_to::<T, bool>(l, a, b, |x, y| x > y),
        GreaterEqual => map2_to::<T, bool>(l, a, b, |x, y| x >= y),
        LogicalAnd | LogicalOr => unreachable!("logic ops are dispatched on bool only"),
    }
}

/// `LogicalNot`.
#[derive(Debug)]
pub(super) struct LogicalNot;

impl LogicalNot {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(1)?;
        Ok(Box::new(LogicalNot))
    }
}

impl Op for LogicalNot {
    fn eval(&self, _cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [x] = take_inputs(inputs)?;
        if x.dtype() != DType::Bool {
            return Err(OpError::dtype(0, "bool", x.dtype()));
        }
        Ok(tensors![map1::<bool>(x, |v| !v)?])
    }
}

/// `out = f(a, b, c)` over the broadcast of three shapes (`shape` is the output's), into a
/// new buffer.
#[allow(clippy::too_many_arguments)]
fn map3<A: Element, B: Element, O: Element>(
    l: &Limits,
    shape: &[usize],
    shapes: [&[usize]; 3],
    a: &[A],
    b: &[B],
    c: &[B],
    f: impl Fn(&A, &B, &B) -> O + Sync,
) -> Result<Tensor, OpError> {
    let n = alloc_len(l, shape, O::DTYPE)?;
    if n == 0 {
        return Ok(Tensor::from_vec::<O>(shape, Vec::new())?);
    }
    let fill = f(&a[0], &b[0], &c[0]);
    let mut out = vec![fill; n];
    let plan = Plan::new(shape, shapes);
    let (len, [ia, ib, ic]) = (plan.row_len(), plan.inner());
    plan.par_rows(&mut out, |first, chunk| {
        let count = chunk.len() / len;
        let mut rows = chunk.chunks_exact_mut(len);
        plan.rows(first, count, |_, [oa, ob, oc]| {
            let row = rows.next().expect("one chunk per row");
            for (j, o) in row.iter_mut().enumerate() {
                *o = f(&a[oa + j * ia], &b[ob + j * ib], &c[oc + j * ic]);
            }
        });
    });
    Ok(Tensor::from_vec(shape, out)?)
}

/// `Select` (TF1: `cond` is a scalar, has the shape of `t`, or is a vector picking rows of
/// `t`/`e`, which must have one shape) and `SelectV2` (all three broadcast).
#[derive(Debug)]
pub(super) struct Select {
    v2: bool,
}

impl Select {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(3)?;
        Ok(Box::new(Select {
            v2: cx.op == "SelectV2",
        }))
    }
}

impl Op for Select {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [cond, t, e] = take_inputs(inputs)?;
        if t.dtype() != e.dtype() {
            return Err(OpError::dtype(2, t.dtype().name(), e.dtype()));
        }
        let c = cond
            .as_slice::<bool>()
            .map_err(|_| OpError::dtype(0, "bool", cond.dtype()))?;
        let (shape, cond_shape) = if self.v2 {
            let s = broadcast_shape(t.shape(), e.shape())?;
            (broadcast_shape(cond.shape(), &s)?, cond.shape().to_vec())
        } else {
            if t.shape() != e.shape() {
                return Err(OpError::invalid(format!(
                    "'then' and 'else' must have the same size. but received: {:?} vs. {:?}",
                    t.shape(),
                    e.shape()
                )));
            }
            let ts = t.shape();
            let cs = if cond.rank() == 0 || cond.shape() == ts {
                cond.shape().to_vec()
            } else if cond.rank() == 1 && ts.len() > 1 && cond.len() == ts[0] {
                // One condition per row: view cond as [n, 1, 1, ...].
                let mut s = vec![1; ts.len()];
                s[0] = ts[0];
                s
            } else {
                return Err(OpError::invalid(format!(
                    "'cond' must be a scalar, a vector of size then.shape[0], or have the \
                     shape of 'then': {:?} vs. {:?}",
                    cond.shape(),
                    ts
                )));
            };
            (ts.to_vec(), cs)
        };
        if let Some(inner) = row_blocks(&cond_shape, &shape, t.shape(), e.shape(), c.len()) {
            // Uniform conditions return an input as is.
            if all_equal(c, false) {
                return Ok(tensors![e]);
            }
            if all_equal(c, true) {
                return Ok(tensors![t]);
            }
            let out = crate::match_any!(t.data(), tb => select_blocks(c, inner, tb, e)?);
            return Ok(tensors![out]);
        }
        let shapes = [cond_shape.as_slice(), t.shape(), e.shape()];
        let l = cx.limits();
        let out = crate::match_any!(t.data(), tb => pick(l, &shape, shapes, c, tb, &e)?);
        Ok(tensors![out])
    }
}

/// Whether every element of `c` is `v`. Checks 64-element chunks with a branch-free fold
/// (which vectorises; an early-exit `all` does not), stopping at the first chunk that
/// differs.
fn all_equal(c: &[bool], v: bool) -> bool {
    let want = u8::from(v);
    let differs = |ch: &[bool]| ch.iter().fold(0u8, |acc, &b| acc | (u8::from(b) ^ want)) != 0;
    let mut chunks = c.chunks_exact(64);
    !(chunks.any(differs) || differs(chunks.remainder()))
}

/// When `t` and `e` both have the output's shape and `cond` picks whole blocks of it (a
/// scalar, the full shape, or a leading prefix of it followed by 1s, like TF1's row
/// vector), the number of elements each condition covers.
fn row_blocks(
    cond: &[usize],
    shape: &[usize],
    t: &[usize],
    e: &[usize],
    conds: usize,
) -> Option<usize> {
    if t != shape || e != shape || cond.len() > shape.len() {
        return None;
    }
    // `cond` right-aligned against `shape`, padded with 1s on the left.
    let pad = shape.len() - cond.len();
    let dim = |i: usize| if i < pad { 1 } else { cond[i - pad] };
    let prefix = (0..shape.len())
        .rposition(|i| dim(i) != 1)
        .map_or(0, |j| j + 1);
    if (0..prefix).any(|i| dim(i) != shape[i]) {
        return None;
    }
    let outer: usize = shape[..prefix].iter().product();
    let inner: usize = shape[prefix..].iter().product();
    (outer == conds).then_some(inner)
}

/// `cond ? t : e` where condition `i` covers elements `[i * inner, (i + 1) * inner)`: `e`
/// (copied only if shared) with the blocks picked from `t` written over it, so no new buffer
/// and elements of `t` that are not picked are never read.
fn select_blocks<T: Element>(
    cond: &[bool],
    inner: usize,
    t: &Buf<T>,
    mut e: Tensor,
) -> Result<Tensor, OpError> {
    let dt = e.dtype();
    let out = e
        .as_mut_slice::<T>()
        .map_err(|_| OpError::dtype(2, T::DTYPE.name(), dt))?;
    if inner == 1 {
        // A select rather than a conditional store, so it vectorises for plain numbers.
        for ((o, &c), x) in out.iter_mut().zip(cond).zip(t.iter()) {
            *o = if c { x.clone() } else { o.clone() };
        }
    } else {
        let blocks = out.chunks_exact_mut(inner).zip(t.chunks_exact(inner));
        for ((o, x), &c) in blocks.zip(cond) {
            if c {
                o.clone_from_slice(x);
            }
        }
    }
    Ok(e)
}

/// `cond ? t : e` elementwise, typed by `t`.
fn pick<T: Element>(
    l: &Limits,
    shape: &[usize],
    shapes: [&[usize]; 3],
    cond: &[bool],
    t: &Buf<T>,
    e: &Tensor,
) -> Result<Tensor, OpError> {
    let eb = e
        .as_slice::<T>()
        .map_err(|_| OpError::dtype(2, T::DTYPE.name(), e.dtype()))?;
    map3(l, shape, shapes, cond, t, eb, |c, x, y| {
        if *c {
            x.clone()
        } else {
            y.clone()
        }
    })
}

/// `ClipByValue`: `min(max(t, lo), hi)` computed as TF does, `max(min(t, hi), lo)` with
/// Eigen's `a < b ? b : a` maximum and `b < a ? b : a` minimum (so `lo > hi` gives `lo`, a NaN
/// in `t` passes through, a NaN bound is ignored). `lo`/`hi` are scalars or of `t`'s shape.
#[derive(Debug)]
pub(super) struct ClipByValue;

impl ClipByValue {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        cx.expect_inputs(3)?;
        Ok(Box::new(ClipByValue))
    }
}

impl Op for ClipByValue {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [t, lo, hi] = take_inputs(inputs)?;
        for (i, b) in [(1, &lo), (2, &hi)] {
            if b.dtype() != t.dtype() {
                return Err(OpError::dtype(i, t.dtype().name(), b.dtype()));
            }
            if b.rank() != 0 && b.shape() != t.shape() {
                return Err(OpError::invalid(format!(
                    "clip_value_min and clip_value_max must be either of the same shape as \
                     input, or a scalar. input shape: {:?} clip_value shape: {:?}",
                    t.shape(),
                    b.shape()
                )));
            }
        }
        let l = cx.limits();
        let dt = t.dtype();
        let out = with_numeric!(dt, T => clip::<T>(l, t, &lo, &hi)?,
            _ => return Err(OpError::dtype(0, "a numeric type", dt)));
        Ok(tensors![out])
    }
}

fn clip<T: Element + Copy + PartialOrd + Default>(
    l: &Limits,
    t: Tensor,
    lo: &Tensor,
    hi: &Tensor,
) -> Result<Tensor, OpError> {
    let f = |x: T, lo: T, hi: T| {
        let m = if hi < x { hi } else { x };
        if m < lo {
            lo
        } else {
            m
        }
    };
    if lo.rank() == 0 && hi.rank() == 0 {
        let (lo, hi) = (lo.scalar_value::<T>()?, hi.scalar_value::<T>()?);
        return map1::<T>(t, move |x| f(x, lo, hi));
    }
    let shapes = [t.shape(), lo.shape(), hi.shape()];
    let (x, a, b) = (t.as_slice::<T>()?, lo.as_slice::<T>()?, hi.as_slice::<T>()?);
    map3(l, t.shape(), shapes, x, a, b, |x, lo, hi| f(*x, *lo, *hi))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Session;

    fn eval(op: &dyn Op, inputs: Vec<Tensor>) -> Result<Tensor, OpError> {
        let session = Session::new(".".into(), None, Default::default());
        let mut cx = EvalCtx::new(&session);
        Ok(op.eval(&mut cx, inputs.into())?.remove(0))
    }
    fn v<T: Element>(x: &[T]) -> Tensor {
        Tensor::vector(x.to_vec())
    }
    fn bools(t: Tensor) -> Vec<bool> {
        t.into_vec::<bool>().unwrap()
    }

    /// xorshift64: reproducible pseudo-random test inputs.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn all_equal_matches_iter_all() {
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        for len in [0, 1, 2, 63, 64, 65, 127, 128, 129, 200, 1000] {
            for trial in 0..40 {
                // All false, all true, or one element flipped, or random.
                let mut c: Vec<bool> = vec![trial % 2 == 1; len];
                if trial >= 4 && len > 0 {
                    let i = (xorshift(&mut s) % len as u64) as usize;
                    c[i] = !c[i];
                }
                if trial >= 30 {
                    c.iter_mut().for_each(|b| *b = xorshift(&mut s) % 2 == 0);
                }
                for v in [false, true] {
                    assert_eq!(all_equal(&c, v), c.iter().all(|&b| b == v), "{c:?} {v}");
                }
            }
        }
    }

    #[test]
    fn select_blocks_match_pick() {
        let mut s = 7u64;
        for (rows, inner) in [(0, 1), (1, 1), (5, 1), (70, 1), (70, 3), (130, 128)] {
            for density in [0u64, 1, 50, 99, 100] {
                let c: Vec<bool> = (0..rows)
                    .map(|_| xorshift(&mut s) % 100 < density)
                    .collect();
                let t: Vec<f32> = (0..rows * inner).map(|i| i as f32).collect();
                let e: Vec<f32> = (0..rows * inner).map(|i| -(i as f32)).collect();
                let want: Vec<f32> = (0..rows * inner)
                    .map(|i| if c[i / inner] { t[i] } else { e[i] })
                    .collect();
                let cond = Tensor::from_vec(&[rows], c).unwrap();
                let tt = Tensor::from_vec(&[rows, inner], t).unwrap();
                let et = Tensor::from_vec(&[rows, inner], e).unwrap();
                let got = eval(&Select { v2: false }, vec![cond, tt, et]).unwrap();
                assert_eq!(got.shape(), &[rows, inner]);
                assert_eq!(got.into_vec::<f32>().unwrap(), want);
            }
        }
    }

    #[test]
    fn comparisons() {
        let cmp = |op, shape_error| Compare { op, shape_error };
        let r = eval(
            &cmp(CmpOp::Less, true),
            vec![v(&[1.0f32, f32::NAN, 3.0]), Tensor::scalar(2.0f32)],
        );
        assert_eq!(bools(r.unwrap()), [true, false, false]);
        // tf.raw_ops.Equal(x=["a","b"], y="a") -> [True, False]
        let r = eval(
            &cmp(CmpOp::Equal, true),
            vec![
                v(&[
                    crate::tensor::Bytes::from_static(b"a"),
                    crate::tensor::Bytes::from_static(b"b"),
                ]),
                Tensor::scalar(crate::tensor::Bytes::from_static(b"a")),
            ],
        );
        assert_eq!(bools(r.unwrap()), [true, false]);
        // Equal(x=[1,2], y=[1,2,3], incompatible_shape_error=False) -> False (scalar)
        let r = eval(
            &cmp(CmpOp::Equal, false),
            vec![v(&[1i32, 2]), v(&[1i32, 2, 3])],
        )
        .unwrap();
        assert_eq!((r.rank(), bools(r)), (0, vec![false]));
        let r = eval(
            &cmp(CmpOp::NotEqual, false),
            vec![v(&[1i32, 2]), v(&[1i32, 2, 3])],
        );
        assert_eq!(bools(r.unwrap()), [true]);
        assert!(eval(
            &cmp(CmpOp::Equal, true),
            vec![v(&[1i32, 2]), v(&[1i32, 2, 3])]
        )
        .is_err());
        assert!(eval(&cmp(CmpOp::Less, true), vec![v(&[true]), v(&[false])]).is_err());
        // LogicalAnd(x=[[True],[False]], y=[True, False]) -> [[T, F], [F, F]]
        let a = Tensor::from_vec(&[2, 1], vec![true, false]).unwrap();
        let r = eval(&cmp(CmpOp::LogicalAnd, true), vec![a, v(&[true, false])]).unwrap();
        assert_eq!(r.shape(), &[2, 2]);
        assert_eq!(bools(r), [true, false, false, false]);
        assert_eq!(
            bools(eval(&LogicalNot, vec![v(&[true, false])]).unwrap()),
            [false, true]
        );
    }

    #[test]
    fn select_v1_and_v2() {
        let m = |v: Vec<i32>| Tensor::from_vec(&[2, 2], v).unwrap();
        // Select(condition=[True, False], x=[[1,2],[3,4]], y=[[5,6],[7,8]]) -> [[1,2],[7,8]]
        let r = eval(
            &Select { v2: false },
            vec![v(&[true, false]), m(vec![1, 2, 3, 4]), m(vec![5, 6, 7, 8])],
        );
        assert_eq!(r.unwrap().as_slice::<i32>().unwrap(), [1, 2, 7, 8]);
        // Select(condition=[True, False], x=[1, 2], y=[5, 6]) -> [1, 6]
        let r = eval(
            &Select { v2: false },
            vec![v(&[true, false]), v(&[1i32, 2]), v(&[5i32, 6])],
        );
        assert_eq!(r.unwrap().as_slice::<i32>().unwrap(), [1, 6]);
        let bad = Tensor::from_vec(&[1, 2], vec![true, false]).unwrap();
        assert!(eval(
            &Select { v2: false },
            vec![bad, m(vec![0; 4]), m(vec![0; 4])]
        )
        .is_err());
        // SelectV2(condition=[True, False], t=[[1,2],[3,4]], e=9) -> [[1,9],[3,9]]
        let r = eval(
            &Select { v2: true },
            vec![v(&[true, false]), m(vec![1, 2, 3, 4]), Tensor::scalar(9i32)],
        );
        assert_eq!(r.unwrap().as_slice::<i32>().unwrap(), [1, 9, 3, 9]);
        let r = eval(
            &Select { v2: true },
            vec![
                Tensor::scalar(false),
                v(&[crate::tensor::Bytes::from_static(b"a")]),
                v(&[crate::tensor::Bytes::from_static(b"b")]),
            ],
        );
        assert_eq!(
            r.unwrap().as_slice::<crate::tensor::Bytes>().unwrap(),
            [b"b".to_vec()]
        );
    }

    /// The in-place block path against the general broadcasting path (`pick`), on random
    /// conditions of every block form, for f32 and strings.
    #[test]
    fn select_blocks_match_general_path() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let l = Limits::default();
        let forms: [(&[usize], &[usize]); 6] = [
            (&[], &[3, 4]),
            (&[3, 4], &[3, 4]),
            (&[3, 1], &[3, 4]),
            (&[2, 3, 1, 1], &[2, 3, 4, 5]),
            (&[1, 1, 5], &[1, 1, 5]),
            (&[7], &[7]),
        ];
        for _ in 0..20 {
            for (cs, shape) in forms {
                let n: usize = shape.iter().product();
                let cn: usize = cs.iter().product();
                let c: Vec<bool> = (0..cn).map(|_| next() % 3 == 0).collect();
                let tv: Vec<f32> = (0..n).map(|_| next() as f32).collect();
                let ev: Vec<f32> = (0..n).map(|_| next() as f32).collect();
                let cond = Tensor::from_vec(cs, c.clone()).unwrap();
                let t = Tensor::from_vec(shape, tv).unwrap();
                let e = Tensor::from_vec(shape, ev).unwrap();
                let shapes = [cs, shape, shape];
                let want = pick(&l, shape, shapes, &c, t.buf::<f32>().unwrap(), &e).unwrap();
                for v2 in [false, true] {
                    if !v2 && !cs.is_empty() && cs != shape && cs.len() != 1 {
                        continue;
                    }
                    let got = eval(&Select { v2 }, vec![cond.clone(), t.clone(), e.clone()]);
                    let got = got.unwrap();
                    assert_eq!(got.shape(), want.shape());
                    assert_eq!(
                        got.as_slice::<f32>().unwrap(),
                        want.as_slice::<f32>().unwrap()
                    );
                }
                let st: Vec<Vec<u8>> = (0..n).map(|i| format!("t{i}").into_bytes()).collect();
                let se: Vec<Vec<u8>> = (0..n).map(|i| vec![0xff, i as u8]).collect();
                let (st, se) = (
                    Tensor::from_strings(shape, st).unwrap(),
                    Tensor::from_strings(shape, se).unwrap(),
                );
                let want = pick(
                    &l,
                    shape,
                    shapes,
                    &c,
                    st.buf::<crate::tensor::Bytes>().unwrap(),
                    &se,
                );
                let want = want.unwrap();
                let got = eval(&Select { v2: true }, vec![cond, st, se]).unwrap();
                assert_eq!(
                    got.as_slice::<crate::tensor::Bytes>().unwrap(),
                    want.as_slice::<crate::tensor::Bytes>().unwrap()
                );
            }
        }
        // TF1's row vector: Select(cond=[True, False, True], t=ones([3, 2]), e=zeros([3, 2]))
        // -> [[1, 1], [0, 0], [1, 1]]; the shared else-input is not modified.
        let e = Tensor::zeros(DType::F32, &[3, 2]).unwrap();
        let r = eval(
            &Select { v2: false },
            vec![
                v(&[true, false, true]),
                Tensor::from_vec(&[3, 2], vec![1f32; 6]).unwrap(),
                e.clone(),
            ],
        )
        .unwrap();
        assert_eq!(r.as_slice::<f32>().unwrap(), [1., 1., 0., 0., 1., 1.]);
        assert_eq!(e.as_slice::<f32>().unwrap(), [0f32; 6]);
    }

    #[test]
    fn clip_by_value_matches_tf() {
        // ClipByValue(t=[1., 5.], clip_value_min=3., clip_value_max=2.) -> [3., 3.]
        let r = eval(
            &ClipByValue,
            vec![
                v(&[1.0f32, 5.0]),
                Tensor::scalar(3.0f32),
                Tensor::scalar(2.0f32),
            ],
        );
        assert_eq!(r.unwrap().as_slice::<f32>().unwrap(), [3.0, 3.0]);
        // t=[nan, 1., 5.], min=[0., nan, 0.], max=[2., 2., nan] -> [nan, 1., 5.]
        let r = eval(
            &ClipByValue,
            vec![
                v(&[f32::NAN, 1.0, 5.0]),
                v(&[0.0f32, f32::NAN, 0.0]),
                v(&[2.0f32, 2.0, f32::NAN]),
            ],
        )
        .unwrap();
        let r = r.as_slice::<f32>().unwrap();
        assert!(r[0].is_nan() && r[1] == 1.0 && r[2] == 5.0);
        let bad = eval(
            &ClipByValue,
            vec![
                Tensor::zeros(DType::F32, &[2, 2]).unwrap(),
                v(&[0.0f32, 1.0]),
                Tensor::scalar(2.0f32),
            ],
        );
        assert!(matches!(bad, Err(OpError::Invalid(_))));
    }
}

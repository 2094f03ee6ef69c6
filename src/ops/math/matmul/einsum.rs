//! `Einsum`: lowered to the batched GEMM core (see the parent module docs).

use rayon::prelude::*;

use super::dense::PackCache;
use super::{batched_matmul, fmt_shape, permute};
use crate::ops::kernels::epilogue::Epilogue;
use crate::ops::kernels::gemm::{gemm_f32_ptr, gemm_packed_f32};
use crate::ops::kernels::Isa;
use crate::ops::{BuildCtx, EvalCtx, Op, OpError, Tensors};
use crate::tensor::{num_elements, DType, Tensor};

/// A subscript label: a letter, or one dimension covered by `...` (numbered from the right so
/// that operands with different ellipsis ranks line up as in NumPy broadcasting).
type Label = u32;
const ELLIPSIS_BASE: Label = 0x11_0000;

/// One side of a parsed equation: its labels, and where `...` sits (index into `labels`).
#[derive(Debug, Clone)]
struct Subscripts {
    labels: Vec<Label>,
    ellipsis: Option<usize>,
}

impl Subscripts {
    fn parse(s: &str, eq: &str) -> Result<Subscripts, OpError> {
        let bad = || OpError::invalid(format!("invalid einsum equation {eq:?}"));
        let mut labels = Vec::new();
        let mut ellipsis = None;
        let mut rest = s;
        while let Some(c) = rest.chars().next() {
            if let Some(r) = rest.strip_prefix("...") {
                if ellipsis.replace(labels.len()).is_some() {
                    return Err(bad());
                }
                rest = r;
            } else if c.is_ascii_alphabetic() {
                labels.push(c as Label);
                rest = &rest[1..];
            } else {
                return Err(bad());
            }
        }
        Ok(Subscripts { labels, ellipsis })
    }

    /// The labels of an operand of rank `rank` (or of the output, with `rank` = named +
    /// ellipsis dims), the ellipsis expanded to `rank - named` labels.
    fn expand(&self, rank: usize) -> Option<Vec<Label>> {
        let named = self.labels.len();
        let Some(at) = self.ellipsis else {
            return (rank == named).then(|| self.labels.clone());
        };
        let e = rank.checked_sub(named)?;
        let mut out = self.labels[..at].to_vec();
        out.extend((0..e).rev().map(|j| ELLIPSIS_BASE + j as Label));
        out.extend_from_slice(&self.labels[at..]);
        Some(out)
    }
}

/// `Einsum` with one or two operands; see the module docs for the lowering.
#[derive(Debug)]
pub(super) struct Einsum {
    equation: String,
    inputs: Vec<Subscripts>,
    output: Subscripts,
    /// Packed right-hand side of a batch-free product (a projection by constant weights).
    cache: PackCache,
}

impl Einsum {
    pub(super) fn build(cx: &mut BuildCtx<'_>) -> Result<Box<dyn Op>, OpError> {
        let op = Einsum::parse(cx.attr_str("equation")?)?;
        if op.inputs.len() != cx.num_inputs {
            return Err(OpError::Arity {
                expected: op.inputs.len(),
                got: cx.num_inputs,
            });
        }
        Ok(Box::new(op))
    }

    pub(super) fn parse(equation: String) -> Result<Einsum, OpError> {
        let (lhs, rhs) = equation.split_once("->").ok_or_else(|| {
            OpError::invalid(format!("einsum equation {equation:?} has no \"->\""))
        })?;
        let inputs = lhs
            .split(',')
            .map(|s| Subscripts::parse(s, &equation))
            .collect::<Result<Vec<_>, _>>()?;
        let output = Subscripts::parse(rhs, &equation)?;
        if inputs.len() > 2 {
            return Err(OpError::Unimplemented(format!(
                "Einsum {equation:?} with more than 2 operands"
            )));
        }
        Ok(Einsum {
            equation,
            inputs,
            output,
            cache: PackCache::default(),
        })
    }

    fn unimplemented(&self, what: &str) -> OpError {
        OpError::Unimplemented(format!("Einsum {:?}: {what}", self.equation))
    }
}

/// Position of `l` in `labels`.
/// The labels of a two-operand contraction by role: batch (in both operands and the output),
/// `m` (only `a` and the output), `n` (only `b` and the output), and `k` (both operands, not
/// the output; in `a`'s order).
fn label_groups(la: &[Label], lb: &[Label], out: &[Label]) -> [Vec<Label>; 4] {
    let (in_a, in_b) = (|l: &Label| la.contains(l), |l: &Label| lb.contains(l));
    let pick = |from: &[Label], keep: &dyn Fn(&Label) -> bool| -> Vec<Label> {
        from.iter().filter(|l| keep(l)).copied().collect()
    };
    [
        pick(out, &|l| in_a(l) && in_b(l)),
        pick(out, &|l| in_a(l) && !in_b(l)),
        pick(out, &|l| in_b(l) && !in_a(l)),
        pick(la, &|l| in_b(l) && !out.contains(l)),
    ]
}

fn pos(labels: &[Label], l: Label) -> Option<usize> {
    labels.iter().position(|&x| x == l)
}

impl Op for Einsum {
    fn eval(&self, cx: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        if inputs.len() != self.inputs.len() {
            return Err(OpError::Arity {
                expected: self.inputs.len(),
                got: inputs.len(),
            });
        }
        let mut ops: Vec<(Tensor, Vec<Label>)> = Vec::with_capacity(inputs.len());
        let mut ell = 0;
        for (i, (t, sub)) in inputs.into_iter().zip(&self.inputs).enumerate() {
            let labels = sub.expand(t.rank()).ok_or_else(|| {
                OpError::invalid(format!(
                    "einsum input {i} has shape {} which does not match subscripts in {:?}",
                    fmt_shape(t.shape()),
                    self.equation
                ))
            })?;
            if labels
                .iter()
                .enumerate()
                .any(|(j, l)| labels[..j].contains(l))
            {
                return Err(self.unimplemented("an index repeated within one operand"));
            }
            ell = ell.max(t.rank() - sub.labels.len());
            ops.push((t, labels));
        }
        if ops.len() == 2 && ops[0].0.dtype() != ops[1].0.dtype() {
            return Err(OpError::dtype(1, ops[0].0.dtype().name(), ops[1].0.dtype()));
        }
        if ell > 0 && self.output.ellipsis.is_none() {
            return Err(OpError::invalid(format!(
                "Output contains {ell} broadcasting dimension(s) but no ellipsis (...) was \
                 found in the output subscripts"
            )));
        }
        let out_labels = self
            .output
            .expand(self.output.labels.len() + ell)
            .ok_or_else(|| self.unimplemented("output subscripts"))?;
        if out_labels
            .iter()
            .enumerate()
            .any(|(j, l)| out_labels[..j].contains(l))
        {
            return Err(self.unimplemented("an index repeated in the output"));
        }
        // Label sizes: equal for letters; ellipsis dims broadcast, a size-1 side is squeezed
        // away so the label becomes free in the other operand.
        if let [(a, la), (b, lb)] = &mut ops[..] {
            for ia in (0..la.len()).rev() {
                let Some(ib) = pos(lb, la[ia]) else { continue };
                let (da, db) = (a.shape()[ia], b.shape()[ib]);
                if da == db {
                    continue;
                }
                if la[ia] < ELLIPSIS_BASE || (da != 1 && db != 1) {
                    let (t, ax, want) = if la[ia] < ELLIPSIS_BASE {
                        (&*b, ib, da)
                    } else {
                        (&*a, ia, db)
                    };
                    return Err(OpError::invalid(format!(
                        "Expected dimension {want} at axis {ax} of the input shaped {} but got \
                         dimension {}",
                        fmt_shape(t.shape()),
                        t.shape()[ax]
                    )));
                }
                let (t, l, ax) = if da == 1 {
                    (&mut *a, &mut *la, ia)
                } else {
                    (&mut *b, &mut *lb, ib)
                };
                let mut shape = t.shape().to_vec();
                shape.remove(ax);
                l.remove(ax);
                *t = std::mem::replace(t, Tensor::scalar(0f32)).reshape(&shape)?;
            }
        }
        for l in &out_labels {
            if !ops.iter().any(|(_, ls)| ls.contains(l)) {
                return Err(OpError::invalid(format!(
                    "einsum {:?}: output label not present in the inputs",
                    self.equation
                )));
            }
        }
        // Sum out labels that occur in one operand only and not in the output.
        for i in 0..ops.len() {
            let keep = |l: &Label| {
                out_labels.contains(l)
                    || ops
                        .iter()
                        .enumerate()
                        .any(|(j, o)| j != i && o.1.contains(l))
            };
            let axes: Vec<usize> = (0..ops[i].1.len())
                .filter(|&ax| !keep(&ops[i].1[ax]))
                .collect();
            if !axes.is_empty() {
                let (t, ls) = &ops[i];
                let reduced = super::super::reduce::sum_axes(cx, t, &axes)?;
                let ls: Vec<Label> = ls.iter().filter(|l| keep(l)).copied().collect();
                ops[i] = (reduced, ls);
            }
        }
        let out = match ops.len() {
            1 => {
                let (t, ls) = ops.pop().expect("one operand");
                let perm: Vec<usize> = out_labels
                    .iter()
                    .map(|&l| pos(&ls, l).expect("output labels checked against inputs"))
                    .collect();
                permute(t, &perm)?
            }
            2 => {
                let (b, lb) = ops.pop().expect("two operands");
                let (a, la) = ops.pop().expect("two operands");
                match contract_strided(cx, &a, &la, &b, &lb, &out_labels, &self.cache)? {
                    Some(t) => t,
                    None => contract(cx, a, &la, b, &lb, &out_labels)?,
                }
            }
            _ => return Err(self.unimplemented("operand count")),
        };
        Ok(tensors![out])
    }
}

/// Row-major strides of `shape`.
fn row_major(shape: &[usize]) -> Vec<usize> {
    let mut st = vec![0; shape.len()];
    let mut s = 1usize;
    for i in (0..shape.len()).rev() {
        st[i] = s;
        s = s.saturating_mul(shape[i]);
    }
    st
}

/// A group of labels of one tensor read as a single strided dimension `(size, stride)`, if
/// their dims (size-1 ones ignored) are nested in that order (`stride[i] = stride[i+1] ·
/// size[i+1]`). An empty group is `(1, 0)`.
fn merge(
    group: &[Label],
    ls: &[Label],
    shape: &[usize],
    strides: &[usize],
) -> Option<(usize, usize)> {
    let mut dims = group.iter().filter_map(|&l| {
        let i = pos(ls, l)?;
        (shape[i] != 1).then_some((shape[i], strides[i]))
    });
    let Some(mut acc) = dims.next() else {
        return Some((1, 0));
    };
    for (size, stride) in dims {
        if acc.1 != stride.checked_mul(size)? {
            return None;
        }
        acc = (acc.0 * size, stride);
    }
    Some(acc)
}

/// `f32` two-operand einsum as GEMMs over strided views of the operands, written straight
/// into the output layout: no permuting copies. Applies when the `m`, `k` and `n` label
/// groups each read as one strided dimension in the operands and in the output (true of
/// Keras attention: `abc,cde->abde`, `aecd,abcd->acbe`, `acbe,aecd->abcd`, `abcd,cde->abe`)
/// and the output's last non-unit dimension belongs to `m` or `n`. The matrices of different
/// batch indices run in parallel; a batch-free product keeps its right-hand side packed
/// across calls (constant weights). `None` when the layout does not fit (the caller then
/// permutes).
fn contract_strided(
    cx: &EvalCtx<'_>,
    a: &Tensor,
    la: &[Label],
    b: &Tensor,
    lb: &[Label],
    out: &[Label],
    cache: &PackCache,
) -> Result<Option<Tensor>, OpError> {
    if a.dtype() != DType::F32 || b.dtype() != DType::F32 {
        return Ok(None);
    }
    let [batch, m_l, n_l, k_l] = label_groups(la, lb, out);
    let dim = |l: Label| match pos(la, l) {
        Some(i) => a.shape()[i],
        None => b.shape()[pos(lb, l).expect("label in an operand")],
    };
    let oshape: Vec<usize> = out.iter().map(|&l| dim(l)).collect();
    let total = num_elements(&oshape)
        .ok_or_else(|| OpError::Limit("einsum output size overflows".into()))?;
    cx.limits().check_alloc(total, DType::F32)?;
    if total == 0 {
        return Ok(None);
    }
    let (sa, sb, so) = (
        row_major(a.shape()),
        row_major(b.shape()),
        row_major(&oshape),
    );
    let (Some(am), Some(ak), Some(bk), Some(bn), Some(cm), Some(cn)) = (
        merge(&m_l, la, a.shape(), &sa),
        merge(&k_l, la, a.shape(), &sa),
        merge(&k_l, lb, b.shape(), &sb),
        merge(&n_l, lb, b.shape(), &sb),
        merge(&m_l, out, &oshape, &so),
        merge(&n_l, out, &oshape, &so),
    ) else {
        return Ok(None);
    };
    let (m, k, n) = (am.0, ak.0, bn.0);
    // `C = A·B` needs unit column stride in the output; otherwise `Cᵀ = Bᵀ·Aᵀ`.
    let (swap, x, xs, y, ys, (m, n), ldc) = if n == 1 || cn.1 == 1 {
        (false, a, (am.1, ak.1), b, (bk.1, bn.1), (m, n), cm.1)
    } else if m == 1 || cm.1 == 1 {
        (true, b, (bn.1, bk.1), a, (ak.1, am.1), (n, m), cn.1)
    } else {
        return Ok(None);
    };
    if m > 1 && ldc < n {
        return Ok(None);
    }
    let (xd, yd) = (x.as_slice::<f32>()?, y.as_slice::<f32>()?);
    // Batch dims (size 1 ignored) with their strides in a, b and the output.
    let bdims: Vec<(usize, usize, usize, usize)> = batch
        .iter()
        .filter(|&&l| dim(l) != 1)
        .map(|&l| {
            let (ia, ib, io) = (pos(la, l), pos(lb, l), pos(out, l));
            let (ia, ib, io) = (ia.expect("batch"), ib.expect("batch"), io.expect("batch"));
            (dim(l), sa[ia], sb[ib], so[io])
        })
        .collect();
    let nb: usize = bdims.iter().map(|d| d.0).product();
    let offsets: Vec<(usize, usize, usize)> = (0..nb)
        .map(|mut t| {
            let (mut ox, mut oy, mut oc) = (0, 0, 0);
            for d in bdims.iter().rev() {
                let i = t % d.0;
                t /= d.0;
                let (sx, sy) = if swap { (d.2, d.1) } else { (d.1, d.2) };
                ox += i * sx;
                oy += i * sy;
                oc += i * d.3;
            }
            (ox, oy, oc)
        })
        .collect();
    // Every output element is written: batch windows tile the output.
    let mut c = crate::tensor::pool::f32_for_overwrite(total);
    if nb == 1 && m >= 2 && k > 0 && ldc == n {
        if let Some(p) = cache.get(cx, y, yd, k, n, ys) {
            gemm_packed_f32(m, xd, xs, &p, &mut c, ldc, &Epilogue::default());
            return Ok(Some(Tensor::from_vec(&oshape, c)?));
        }
    }
    let cp = SendMut(c.as_mut_ptr());
    let run = |&(ox, oy, oc): &(usize, usize, usize)| {
        // SAFETY: different batch indices address disjoint output windows (the output's
        // labels are distinct), each inside `c` by construction of the strides.
        unsafe {
            gemm_f32_ptr(
                Isa::best(),
                nb == 1,
                m,
                n,
                k,
                &xd[ox..],
                xs,
                &yd[oy..],
                ys,
                cp.get().add(oc),
                ldc,
                false,
            )
        }
    };
    if nb > 1 && nb.saturating_mul(m * n).saturating_mul(k.max(1)) >= 1 << 15 {
        offsets.par_iter().for_each(run);
    } else {
        offsets.iter().for_each(run);
    }
    Ok(Some(Tensor::from_vec(&oshape, c)?))
}

/// Raw output pointer shared by the batch tasks of [`contract_strided`].
#[derive(Clone, Copy)]
struct SendMut(*mut f32);
// SAFETY: each task writes a disjoint window (see `contract_strided`).
unsafe impl Send for SendMut {}
// SAFETY: as above.
unsafe impl Sync for SendMut {}

impl SendMut {
    fn get(self) -> *mut f32 {
        self.0
    }
}

/// Two-operand einsum once every label is batch (in a, b, out), contracted (a, b), or free
/// (one operand and out): one batched GEMM `[B, M, K] × [B, K, N]` plus permutations.
fn contract(
    cx: &EvalCtx<'_>,
    a: Tensor,
    la: &[Label],
    b: Tensor,
    lb: &[Label],
    out: &[Label],
) -> Result<Tensor, OpError> {
    let [batch, m_l, n_l, k_l] = label_groups(la, lb, out);
    let dim = |l: Label| match pos(la, l) {
        Some(i) => a.shape()[i],
        None => b.shape()[pos(lb, l).expect("label in an operand")],
    };
    let size = |ls: &[Label]| -> usize { ls.iter().map(|&l| dim(l)).product() };
    let (m, k, n) = (size(&m_l), size(&k_l), size(&n_l));
    let shape: Vec<usize> = batch
        .iter()
        .chain(&m_l)
        .chain(&n_l)
        .map(|&l| dim(l))
        .collect();
    let (a3, adj_a) = to_3d(a, la, &batch, (&m_l, m), (&k_l, k))?;
    let (b3, adj_b) = to_3d(b, lb, &batch, (&k_l, k), (&n_l, n))?;
    let c = batched_matmul(cx, &a3, adj_a, &b3, adj_b, false)?;
    let got: Vec<Label> = [&batch[..], &m_l, &n_l].concat();
    let perm: Vec<usize> = out
        .iter()
        .map(|&l| pos(&got, l).expect("every output label is batch or free"))
        .collect();
    permute(c.reshape(&shape)?, &perm)
}

/// `t` (labels `ls`) as `[B, rows, cols]` (`false`) or, when that is its layout already,
/// `[B, cols, rows]` (`true`, to be read as an adjoint); permuted only if neither fits.
fn to_3d(
    t: Tensor,
    ls: &[Label],
    batch: &[Label],
    (rows, nr): (&[Label], usize),
    (cols, nc): (&[Label], usize),
) -> Result<(Tensor, bool), OpError> {
    let nb = batch_size(&t, ls, batch);
    let order = |g: [&[Label]; 3]| -> Vec<usize> {
        g.concat()
            .iter()
            .map(|&l| pos(ls, l).expect("label in operand"))
            .collect()
    };
    let identity = |p: &[usize]| p.iter().enumerate().all(|(i, &x)| i == x);
    let (direct, swapped) = (order([batch, rows, cols]), order([batch, cols, rows]));
    if identity(&direct) {
        Ok((t.reshape(&[nb, nr, nc])?, false))
    } else if identity(&swapped) {
        Ok((t.reshape(&[nb, nc, nr])?, true))
    } else {
        Ok((permute(t, &direct)?.reshape(&[nb, nr, nc])?, false))
    }
}

fn batch_size(t: &Tensor, ls: &[Label], batch: &[Label]) -> usize {
    batch
        .iter()
        .map(|&l| t.shape()[pos(ls, l).expect("batch label in operand")])
        .product()
}

//! (ops land here)

use crate::ops::{OpError, Registry};

pub(crate) fn register(_r: &mut Registry) {}

/// NumPy broadcast of two shapes.
pub(crate) fn broadcast_shape(a: &[usize], b: &[usize]) -> Result<Vec<usize>, OpError> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n { a[i + a.len() - n] } else { 1 };
        let db = if i + b.len() >= n { b[i + b.len() - n] } else { 1 };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => {
                return Err(OpError::shape(format!(
                    "incompatible shapes: {a:?} vs. {b:?}"
                )))
            }
        };
    }
    Ok(out)
}

//! Math ops: elementwise (with NumPy broadcasting), reductions, matrix products.

mod elementwise;
mod matmul;
mod reduce;

pub(crate) use elementwise::broadcast_shape;

use super::Registry;

pub(crate) fn register(r: &mut Registry) {
    elementwise::register(r);
    matmul::register(r);
    reduce::register(r);
}

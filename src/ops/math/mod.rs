//! Math ops: elementwise (with NumPy broadcasting), reductions, matrix products, `Bucketize`.

mod bucketize;
mod elementwise;
mod matmul;
mod reduce;

pub(crate) use elementwise::{broadcast_shape, map1_to, map2_to};

use super::Registry;

pub(crate) fn register(r: &mut Registry) {
    bucketize::register(r);
    elementwise::register(r);
    matmul::register(r);
    reduce::register(r);
}

//! Pixel rearrangements over NHWC buffers of any element type: space-to-depth,
//! depth-to-space, and patch extraction (im2col with strides, dilations ("rates") and
//! zero padding).
//!
//! # Panics
//! Each function asserts its buffer lengths against the shapes it is given.

/// `[n, h, w, c]` → `[n, h/bs, w/bs, bs*bs*c]`: output depth index is
/// `(dy * bs + dx) * c + d` for input pixel `(y*bs + dy, x*bs + dx)`.
pub fn space_to_depth<T: Copy>(src: &[T], dims: [usize; 4], bs: usize, dst: &mut [T]) {
    let [n, h, w, c] = dims;
    assert_eq!(src.len(), n * h * w * c, "space_to_depth: src length");
    assert_eq!(dst.len(), src.len(), "space_to_depth: dst length");
    let (oh, ow) = (h / bs, w / bs);
    let mut o = 0;
    for b in 0..n {
        for y in 0..oh {
            for x in 0..ow {
                for dy in 0..bs {
                    for dx in 0..bs {
                        let i = ((b * h + y * bs + dy) * w + x * bs + dx) * c;
                        dst[o..o + c].copy_from_slice(&src[i..i + c]);
                        o += c;
                    }
                }
            }
        }
    }
}

/// `[n, h, w, c]` → `[n, h*bs, w*bs, c/(bs*bs)]`, the inverse of [`space_to_depth`].
pub fn depth_to_space<T: Copy>(src: &[T], dims: [usize; 4], bs: usize, dst: &mut [T]) {
    let [n, h, w, c] = dims;
    assert_eq!(src.len(), n * h * w * c, "depth_to_space: src length");
    assert_eq!(dst.len(), src.len(), "depth_to_space: dst length");
    let oc = c / (bs * bs);
    let (oh, ow) = (h * bs, w * bs);
    let mut i = 0;
    for b in 0..n {
        for y in 0..h {
            for x in 0..w {
                for dy in 0..bs {
                    for dx in 0..bs {
                        let o = ((b * oh + y * bs + dy) * ow + x * bs + dx) * oc;
                        dst[o..o + oc].copy_from_slice(&src[i..i + oc]);
                        i += oc;
                    }
                }
            }
        }
    }
}

/// Geometry of patch extraction along one axis.
#[derive(Debug, Clone, Copy)]
pub struct PatchAxis {
    /// Kernel size.
    pub k: usize,
    /// Stride.
    pub stride: usize,
    /// Dilation ("rate").
    pub rate: usize,
    /// Zero padding before the first sample.
    pub pad: usize,
    /// Output size.
    pub out: usize,
}

/// Extracts `ky × kx` patches: output `[n, oy, ox, ky*kx*c]` with depth index
/// `(i * kx + j) * c + d`, zero where the patch leaves the input.
pub fn extract_patches<T: Copy + Default>(
    src: &[T],
    dims: [usize; 4],
    ay: PatchAxis,
    ax: PatchAxis,
    dst: &mut [T],
) {
    let [n, h, w, c] = dims;
    assert_eq!(src.len(), n * h * w * c, "extract_patches: src length");
    assert_eq!(
        dst.len(),
        n * ay.out * ax.out * ay.k * ax.k * c,
        "extract_patches: dst length"
    );
    let mut o = 0;
    for b in 0..n {
        for oy in 0..ay.out {
            for ox in 0..ax.out {
                for i in 0..ay.k {
                    let y = (oy * ay.stride + i * ay.rate).checked_sub(ay.pad);
                    for j in 0..ax.k {
                        let x = (ox * ax.stride + j * ax.rate).checked_sub(ax.pad);
                        match (y, x) {
                            (Some(y), Some(x)) if y < h && x < w => {
                                let s = ((b * h + y) * w + x) * c;
                                dst[o..o + c].copy_from_slice(&src[s..s + c]);
                            }
                            _ => dst[o..o + c].fill(T::default()),
                        }
                        o += c;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_to_space_inverts_space_to_depth() {
        let dims = [2, 4, 6, 3];
        let src: Vec<u16> = (0..2 * 4 * 6 * 3).collect();
        let mut mid = vec![0; src.len()];
        space_to_depth(&src, dims, 2, &mut mid);
        assert_eq!(&mid[..6], &[0, 1, 2, 3, 4, 5]);
        assert_eq!(&mid[6..9], &[18, 19, 20]);
        let mut back = vec![0; src.len()];
        depth_to_space(&mid, [2, 2, 3, 12], 2, &mut back);
        assert_eq!(back, src);
    }
}

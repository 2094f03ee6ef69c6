//! A global allocator that aligns large blocks to the cache line.
//!
//! Tensors are plain `Vec<f32>`, which the system allocator aligns to 16 bytes only (glibc's
//! `mmap`ed blocks start 16 bytes past a page). In NHWC every vector load of the
//! convolution kernels is then at the same misalignment, so with AVX-512 each 64-byte load
//! straddles two cache lines (AVX2: every other one): measured 1.2-1.4x on the depthwise
//! kernels (issue #17). [`CacheAligned`] hands out blocks of at least [`MIN_ALIGNED_BYTES`]
//! on 64-byte boundaries and leaves small ones to the system allocator as they are.
//!
//! Soundness: `GlobalAlloc` receives the caller's original layout on `dealloc` and
//! `realloc`, so the alignment actually used is a pure function of that layout (size and
//! requested alignment) and is recomputed identically on every path; a `realloc` crossing
//! the size threshold moves the block by hand.

use std::alloc::{GlobalAlloc, Layout, System};

/// Blocks at least this large are aligned to [`LINE`] bytes.
pub const MIN_ALIGNED_BYTES: usize = 4096;

/// Cache line size the large blocks are aligned to.
const LINE: usize = 64;

/// The system allocator with large blocks aligned to 64 bytes (install it in a binary with
/// `#[global_allocator]`).
#[derive(Debug, Default, Clone, Copy)]
pub struct CacheAligned;

/// The layout `CacheAligned` really allocates for a request of `layout`.
#[inline]
fn actual(layout: Layout) -> Layout {
    if layout.size() >= MIN_ALIGNED_BYTES && layout.align() < LINE {
        // Cannot fail: LINE is a power of two and the size was already valid at a smaller
        // alignment, and it is far below isize::MAX - LINE for any real allocation; fall
        // back to the request if it ever did.
        Layout::from_size_align(layout.size(), LINE).unwrap_or(layout)
    } else {
        layout
    }
}

// SAFETY: every block is allocated and freed by `System` with the same `actual` layout,
// which satisfies the caller's (at least as aligned, same size).
unsafe impl GlobalAlloc for CacheAligned {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        System.alloc(actual(layout))
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        System.alloc_zeroed(actual(layout))
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, actual(layout))
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old = actual(layout);
        let Ok(new_req) = Layout::from_size_align(new_size, layout.align()) else {
            return std::ptr::null_mut();
        };
        let new = actual(new_req);
        if old.align() == new.align() {
            return System.realloc(ptr, old, new_size);
        }
        // The alignment class changes: move by hand.
        let p = System.alloc(new);
        if !p.is_null() {
            std::ptr::copy_nonoverlapping(ptr, p, layout.size().min(new_size));
            System.dealloc(ptr, old);
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_blocks_are_line_aligned_and_survive_realloc_across_the_threshold() {
        let a = CacheAligned;
        unsafe {
            let small = Layout::from_size_align(100, 4).unwrap();
            let p = a.alloc(small);
            assert!(!p.is_null());
            for i in 0..100 {
                *p.add(i) = i as u8;
            }
            // Grow past the threshold: aligned, contents kept.
            let q = a.realloc(p, small, 3 * MIN_ALIGNED_BYTES);
            assert!(!q.is_null());
            assert_eq!(q as usize % LINE, 0);
            assert!((0..100).all(|i| *q.add(i) == i as u8));
            let big = Layout::from_size_align(3 * MIN_ALIGNED_BYTES, 4).unwrap();
            // Grow within the large class, then shrink below the threshold.
            let r = a.realloc(q, big, 5 * MIN_ALIGNED_BYTES);
            assert_eq!(r as usize % LINE, 0);
            assert!((0..100).all(|i| *r.add(i) == i as u8));
            let big5 = Layout::from_size_align(5 * MIN_ALIGNED_BYTES, 4).unwrap();
            let s = a.realloc(r, big5, 50);
            assert!((0..50).all(|i| *s.add(i) == i as u8));
            a.dealloc(s, Layout::from_size_align(50, 4).unwrap());
            let z = a.alloc_zeroed(big);
            assert_eq!(z as usize % LINE, 0);
            assert!((0..big.size()).all(|i| *z.add(i) == 0));
            a.dealloc(z, big);
        }
    }
}

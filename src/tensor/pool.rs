//! Reuse of large `f32` buffers across the calls of one loaded model.
//!
//! Without reuse, every call allocates each large output afresh and frees it after its last
//! use; big allocations are `mmap`ed (glibc above its dynamic threshold, musl above ~128 KiB),
//! so every call pays a page fault per 4 KiB touched. A [`BufferPool`] (one per loaded model,
//! owned by its `Session`) keeps such buffers instead:
//!
//! * **Give back.** While a call runs, the executor installs the model's pool as the thread's
//!   current pool ([`enter`]). When the last reference to a buffer of at least
//!   [`MIN_POOLED_BYTES`] is dropped on that thread during the call (a value's last use inside
//!   an op or in the executor, intermediates at call end), `Buf`'s destructor hands the `Vec`
//!   to the pool instead of freeing it. Only uniquely owned buffers come here, so a tensor that
//!   is still referenced anywhere (an output the caller holds, a variable, a folded constant)
//!   is never recycled; buffers dropped on other threads or outside a call are freed normally.
//! * **Take.** Ops allocate large outputs through [`f32_zeroed`] or [`f32_for_overwrite`],
//!   which return the smallest pooled buffer of at least the asked size (and at most
//!   [`MAX_OVERSIZE`] times it) when there is one. When there is none, the pooled buffers too
//!   small for the request are freed before it allocates: they could not serve it, and
//!   handing them back to the allocator lets it reuse their memory. So the memory a call
//!   keeps tracks its largest live set instead of one buffer per distinct size (issue #17:
//!   MobileNetV2 at batch 8 held ~150 MB of activations for a ~50 MB live set when a buffer
//!   served only requests within 1/8 of its size).
//! * **Bound.** A pool keeps at most `Limits::max_pooled_bytes` of capacity (and at most
//!   [`MAX_POOLED_BUFFERS`] buffers); a buffer that does not fit is freed. The pool lives as
//!   long as the model, so that is memory a model keeps between calls.
//!
//! Calls from several threads share a pool behind a mutex taken once per take or give.

use std::any::Any;
use std::cell::RefCell;
use std::sync::{Arc, Mutex};

/// Smallest buffer worth pooling: below this, the allocator's free lists are as fast.
pub const MIN_POOLED_BYTES: usize = 64 << 10;

/// Most buffers a pool holds (keeps the best-fit scan short).
pub const MAX_POOLED_BUFFERS: usize = 64;

/// A pooled buffer serves requests down to 1/`MAX_OVERSIZE` of its capacity (bounds what a
/// small output handed to the caller can hold on to).
pub const MAX_OVERSIZE: usize = 8;

/// Freed `f32` buffers kept for reuse, bounded in bytes of capacity.
#[derive(Debug)]
pub struct BufferPool {
    max_bytes: usize,
    free: Mutex<Free>,
}

#[derive(Debug, Default)]
struct Free {
    /// Capacity bytes held.
    bytes: usize,
    f32s: Vec<Vec<f32>>,
}

impl BufferPool {
    /// A pool keeping at most `max_bytes` bytes of capacity (0 disables pooling).
    pub fn new(max_bytes: usize) -> BufferPool {
        BufferPool {
            max_bytes,
            free: Mutex::new(Free::default()),
        }
    }

    /// Bytes of capacity currently held.
    pub fn retained_bytes(&self) -> usize {
        self.free.lock().map_or(0, |f| f.bytes)
    }

    /// Frees every held buffer.
    pub fn clear(&self) {
        let drained = match self.free.lock() {
            Ok(mut f) => {
                f.bytes = 0;
                std::mem::take(&mut f.f32s)
            }
            Err(_) => return,
        };
        drop(drained);
    }

    /// The held buffer with the smallest capacity in `n..=n * MAX_OVERSIZE`, if any; if there
    /// is none, frees the held buffers smaller than `n` (outside the lock).
    fn take_f32(&self, n: usize) -> Option<Vec<f32>> {
        let mut f = self.free.lock().ok()?;
        let max_cap = n.saturating_mul(MAX_OVERSIZE);
        let best = f
            .f32s
            .iter()
            .enumerate()
            .filter(|(_, v)| (n..=max_cap).contains(&v.capacity()))
            .min_by_key(|(_, v)| v.capacity())
            .map(|(i, _)| i);
        let Some(i) = best else {
            let (small, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut f.f32s)
                .into_iter()
                .partition(|v| v.capacity() < n);
            f.f32s = keep;
            f.bytes = f.f32s.iter().map(|v| v.capacity() * 4).sum();
            drop(f);
            drop(small);
            return None;
        };
        let v = f.f32s.swap_remove(i);
        f.bytes -= v.capacity() * 4;
        Some(v)
    }

    /// Keeps `v` if it fits under the caps, otherwise frees it (outside the lock).
    fn give_f32(&self, v: Vec<f32>) {
        let bytes = v.capacity().saturating_mul(4);
        let rejected = match self.free.lock() {
            Ok(mut f) => {
                let fits = f.f32s.len() < MAX_POOLED_BUFFERS
                    && f.bytes
                        .checked_add(bytes)
                        .is_some_and(|b| b <= self.max_bytes);
                if fits {
                    f.bytes += bytes;
                    f.f32s.push(v);
                    None
                } else {
                    Some(v)
                }
            }
            Err(_) => Some(v),
        };
        drop(rejected);
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<BufferPool>>> = const { RefCell::new(None) };
}

/// While alive, makes a pool the thread's current pool (restores the previous one on drop).
#[derive(Debug)]
#[must_use = "the pool is current only while the scope is alive"]
pub struct PoolScope {
    prev: Option<Option<Arc<BufferPool>>>,
}

/// Makes `pool` the current pool of this thread until the returned scope is dropped. Nested
/// calls with the same pool are cheap no-ops.
pub fn enter(pool: &Arc<BufferPool>) -> PoolScope {
    let prev = CURRENT
        .try_with(|c| {
            let mut c = c.try_borrow_mut().ok()?;
            if c.as_ref().is_some_and(|p| Arc::ptr_eq(p, pool)) {
                return None;
            }
            Some(c.replace(pool.clone()))
        })
        .ok()
        .flatten();
    PoolScope { prev }
}

impl Drop for PoolScope {
    fn drop(&mut self) {
        if let Some(prev) = self.prev.take() {
            let old = CURRENT
                .try_with(|c| {
                    c.try_borrow_mut()
                        .ok()
                        .map(|mut c| std::mem::replace(&mut *c, prev))
                })
                .ok()
                .flatten();
            drop(old);
        }
    }
}

fn with_current<R>(f: impl FnOnce(&BufferPool) -> Option<R>) -> Option<R> {
    CURRENT
        .try_with(|c| {
            let c = c.try_borrow().ok()?;
            f(c.as_ref()?)
        })
        .ok()
        .flatten()
}

fn take(n: usize) -> Option<Vec<f32>> {
    if n.saturating_mul(4) < MIN_POOLED_BYTES {
        return None;
    }
    with_current(|p| p.take_f32(n))
}

/// `n` zeros, in a pooled buffer when the current pool has one that fits.
pub fn f32_zeroed(n: usize) -> Vec<f32> {
    match take(n) {
        Some(mut v) => {
            v.clear();
            v.resize(n, 0.0);
            v
        }
        None => vec![0.0; n],
    }
}

/// `n` floats of unspecified value (zeros, or whatever a recycled buffer of this model held),
/// for a kernel that overwrites every element.
pub fn f32_for_overwrite(n: usize) -> Vec<f32> {
    match take(n) {
        Some(mut v) => {
            if v.len() >= n {
                v.truncate(n);
            } else {
                v.resize(n, 0.0);
            }
            v
        }
        None => vec![0.0; n],
    }
}

/// Called by `Buf`'s destructor with the elements of a buffer nobody else references: moves
/// them into the current pool if they are `f32` and large enough.
pub(super) fn recycle<T: 'static>(v: &mut Vec<T>) {
    if v.capacity().saturating_mul(std::mem::size_of::<T>()) < MIN_POOLED_BYTES {
        return;
    }
    let Some(v) = (v as &mut dyn Any).downcast_mut::<Vec<f32>>() else {
        return;
    };
    let v = std::mem::take(v);
    // Without a current pool the closure is never called and `v` is freed with it.
    with_current(move |p| {
        p.give_f32(v);
        Some(())
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::Tensor;

    const N: usize = 1 << 16;

    #[test]
    fn dropped_buffers_are_reused_only_inside_a_scope() {
        let pool = Arc::new(BufferPool::new(64 << 20));
        // Outside a scope: freed, not pooled.
        drop(Tensor::from_vec(&[N], vec![1.0f32; N]));
        assert_eq!(pool.retained_bytes(), 0);
        let scope = enter(&pool);
        let t = Tensor::from_vec(&[N], vec![1.0f32; N]).unwrap();
        let ptr = t.as_slice::<f32>().unwrap().as_ptr();
        drop(t);
        assert_eq!(pool.retained_bytes(), N * 4);
        let v = f32_for_overwrite(N - 5);
        assert_eq!(v.as_ptr(), ptr, "the freed buffer is handed out again");
        assert_eq!(v.len(), N - 5);
        assert_eq!(pool.retained_bytes(), 0);
        let z = Tensor::from_vec(&[N - 5], v).unwrap();
        drop(z);
        let z = f32_zeroed(N);
        assert!(z.iter().all(|&x| x == 0.0));
        drop(scope);
        drop(z);
        assert_eq!(pool.retained_bytes(), 0, "dropped after the scope: freed");
    }

    #[test]
    fn shared_small_and_oversized_buffers_are_not_pooled() {
        let pool = Arc::new(BufferPool::new(N * 4));
        let _scope = enter(&pool);
        let t = Tensor::from_vec(&[N], vec![2.0f32; N]).unwrap();
        let kept = t.clone();
        drop(t);
        assert_eq!(pool.retained_bytes(), 0, "still referenced by `kept`");
        assert_eq!(kept.as_slice::<f32>().unwrap()[N - 1], 2.0);
        drop(Tensor::from_vec(&[16], vec![0.0f32; 16]).unwrap());
        drop(Tensor::from_vec(&[N], vec![0i32; N]).unwrap());
        assert_eq!(
            pool.retained_bytes(),
            0,
            "small and non-f32 buffers are freed"
        );
        drop(kept);
        assert_eq!(pool.retained_bytes(), N * 4);
        drop(Tensor::from_vec(&[N], vec![0.0f32; N]).unwrap());
        assert_eq!(pool.retained_bytes(), N * 4, "over the byte cap: freed");
        // A smaller request (within MAX_OVERSIZE) takes the held buffer, which comes back.
        let v = f32_for_overwrite(N / 2);
        assert_eq!((v.len(), v.capacity()), (N / 2, N));
        assert_eq!(pool.retained_bytes(), 0);
        drop(Tensor::from_vec(&[N / 2], v).unwrap());
        assert_eq!(pool.retained_bytes(), N * 4);
        pool.clear();
        assert_eq!(pool.retained_bytes(), 0);
    }

    #[test]
    fn a_much_smaller_request_leaves_a_buffer_a_larger_one_frees_it() {
        let pool = Arc::new(BufferPool::new(64 << 20));
        let _scope = enter(&pool);
        let big = MAX_OVERSIZE * 2 * N;
        drop(Tensor::from_vec(&[big], vec![0.0f32; big]).unwrap());
        assert_eq!(pool.retained_bytes(), big * 4);
        // More than MAX_OVERSIZE times the request: not taken, and not freed either.
        assert_eq!(f32_for_overwrite(N).capacity(), N);
        assert_eq!(pool.retained_bytes(), big * 4);
        // Nothing fits a larger request: the smaller held buffers are freed.
        let v = f32_zeroed(2 * big);
        assert_eq!(v.len(), 2 * big);
        assert_eq!(pool.retained_bytes(), 0);
    }

    #[test]
    fn nested_scopes_restore_the_previous_pool() {
        let a = Arc::new(BufferPool::new(64 << 20));
        let b = Arc::new(BufferPool::new(64 << 20));
        let sa = enter(&a);
        {
            let _again = enter(&a);
            let _sb = enter(&b);
            drop(Tensor::from_vec(&[N], vec![0.0f32; N]).unwrap());
        }
        drop(Tensor::from_vec(&[N], vec![0.0f32; N]).unwrap());
        drop(sa);
        assert_eq!(b.retained_bytes(), N * 4);
        assert_eq!(a.retained_bytes(), N * 4);
    }
}

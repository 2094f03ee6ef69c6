//! [`Limits`]: the caps on what loading and calling a model may consume, and
//! [`CallLimits`]: one call's use of them (live bytes, deadline).

use std::time::{Duration, Instant};

use super::OpError;
use crate::tensor::DType;

/// Caps on what loading and calling a model may consume. Defaults are generous for real models
/// and stop hostile ones; exceeding any cap is a typed error, never an abort. Set them through
/// `tfhub::api::LoadOptions { limits, .. }`; see SECURITY.md.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest tensor (bytes) any op may allocate (strings count their payloads).
    pub max_tensor_bytes: usize,
    /// Most bytes of tensors one call may hold live at once, across nested function calls.
    /// Memory-mapped checkpoint data and the caller's inputs are not counted; values sharing
    /// a buffer (`Identity`) count once per value, so the count is an upper bound.
    pub max_live_bytes: usize,
    /// Largest constant, in elements (a splatted constant is checked before it is expanded).
    pub max_const_elements: usize,
    /// Most nodes compiled for one model, over the graph and every function reached.
    pub max_graph_nodes: usize,
    /// Deepest function-call nesting at run time (`PartitionedCall`, `If`, `While` bodies).
    pub max_call_depth: usize,
    /// Most iterations of one `While` loop.
    pub max_loop_iterations: u64,
    /// Longest wall time of one call (checked before each op, so one long op can overrun it);
    /// `None` (the default) for no limit.
    pub max_call_time: Option<Duration>,
    /// Most bytes of freed `f32` buffers (of at least 64 KiB each) a loaded model keeps for
    /// reuse by later calls, instead of returning them to the allocator; 0 turns reuse off.
    /// This memory stays allocated between calls, on top of each call's live bytes.
    pub max_pooled_bytes: usize,
    /// Most pixels (height × width, summed over an animation's frames) an image decoder may
    /// produce; checked against the file's header before any pixel buffer is allocated, so a
    /// 65535×65535 header costs nothing. TF's own PNG cap is 2^29.
    pub max_image_pixels: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_tensor_bytes: 4 << 30,
            max_live_bytes: 4 << 30,
            max_const_elements: 1 << 30,
            max_graph_nodes: 10_000_000,
            max_call_depth: 64,
            max_loop_iterations: 10_000_000,
            max_call_time: None,
            max_pooled_bytes: 256 << 20,
            max_image_pixels: 1 << 29,
        }
    }
}

impl Limits {
    /// Checks that `elements` of `dtype` fit under the per-tensor cap before allocating.
    pub fn check_alloc(&self, elements: usize, dtype: DType) -> Result<(), OpError> {
        let per = dtype.size_of().unwrap_or(32);
        match elements.checked_mul(per) {
            Some(b) if b <= self.max_tensor_bytes => Ok(()),
            _ => Err(OpError::Limit(format!(
                "a {dtype} tensor of {elements} elements exceeds the {} byte per-tensor cap",
                self.max_tensor_bytes
            ))),
        }
    }
}

/// The caps as one call sees them: [`Limits`] plus the bytes the call already holds, so
/// [`CallLimits::check_alloc`] refuses an allocation that would break either the per-tensor or
/// the live-bytes cap *before* it happens. Derefs to [`Limits`].
#[derive(Debug, Clone)]
pub struct CallLimits<'a> {
    limits: &'a Limits,
    /// Bytes of tensors the call holds live (see [`Limits::max_live_bytes`]).
    pub live_bytes: usize,
    /// When the call must stop ([`Limits::max_call_time`]).
    pub deadline: Option<(Instant, Duration)>,
}

impl std::ops::Deref for CallLimits<'_> {
    type Target = Limits;
    fn deref(&self) -> &Limits {
        self.limits
    }
}

impl<'a> CallLimits<'a> {
    /// A call's budget under `limits`: nothing live yet; the wall-time cap (if any) starts now.
    pub fn start(limits: &'a Limits) -> Self {
        CallLimits {
            limits,
            live_bytes: 0,
            deadline: limits.max_call_time.map(|cap| (Instant::now(), cap)),
        }
    }
    /// Checks `elements` of `dtype` against the per-tensor cap and, added to the live set,
    /// against the live-bytes cap.
    pub fn check_alloc(&self, elements: usize, dtype: DType) -> Result<(), OpError> {
        self.limits.check_alloc(elements, dtype)?;
        let per = dtype.size_of().unwrap_or(32) as u128;
        self.check_live(elements as u128 * per)
    }

    /// Checks a tensor of `bytes` bytes against the per-tensor and the live-bytes caps.
    pub fn check_bytes(&self, bytes: u128) -> Result<(), OpError> {
        if bytes > self.limits.max_tensor_bytes as u128 {
            return Err(OpError::Limit(format!(
                "a tensor of {bytes} bytes exceeds the {} byte per-tensor cap",
                self.limits.max_tensor_bytes
            )));
        }
        self.check_live(bytes)
    }

    /// Checks that `extra` more bytes fit under the live-bytes cap.
    pub fn check_live(&self, extra: u128) -> Result<(), OpError> {
        let needed = self.live_bytes as u128 + extra;
        if needed > self.limits.max_live_bytes as u128 {
            return Err(OpError::MemoryCap {
                needed,
                cap: self.limits.max_live_bytes,
            });
        }
        Ok(())
    }

    /// Fails once the call's wall-time cap has passed.
    pub fn check_time(&self) -> Result<(), OpError> {
        if let Some((start, cap)) = self.deadline {
            let elapsed = start.elapsed();
            if elapsed > cap {
                return Err(OpError::TimeCap { elapsed, cap });
            }
        }
        Ok(())
    }
}

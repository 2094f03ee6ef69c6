//! glibc malloc tuning for the command line.
//!
//! A call at a large batch allocates and frees a few large buffers (an embedding batch is
//! 1024 x 128 floats = 512 KiB). With glibc's defaults, freeing them at the end of every
//! call gives the pages back to the kernel (heap trimming above `M_TRIM_THRESHOLD`, `munmap`
//! of chunks above `M_MMAP_THRESHOLD`), and the next call faults every page in again, zeroed:
//! measured at batch 1024 on the nnlm-style fixture that was more than half of a call. The
//! CLI keeps freed memory in the heap instead (it is reused by the next call; peak RSS is
//! unchanged since the pages were in use anyway). A library user chooses their own allocator
//! policy, so this lives in the binary only. Setting `MALLOC_TRIM_THRESHOLD_` or
//! `MALLOC_MMAP_THRESHOLD_` in the environment leaves glibc's behaviour to those, and
//! `TFHUB_MALLOC_DEFAULT=1` keeps glibc's defaults (to measure the difference).

/// Raises glibc's trim and mmap thresholds (no-op on other C libraries).
pub(super) fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let set = |v: &str| std::env::var_os(v).is_some_and(|v| !v.is_empty() && v != "0");
        if set("MALLOC_TRIM_THRESHOLD_")
            || set("MALLOC_MMAP_THRESHOLD_")
            || set("TFHUB_MALLOC_DEFAULT")
        {
            return;
        }
        // <malloc.h>: M_TRIM_THRESHOLD = -1, M_MMAP_THRESHOLD = -3. glibc caps the mmap
        // threshold at 32 MiB on 64-bit (HEAP_MAX_SIZE / 2); larger buffers are still mapped
        // and unmapped, where the fault-in cost is small next to filling them.
        const M_TRIM_THRESHOLD: i32 = -1;
        const M_MMAP_THRESHOLD: i32 = -3;
        extern "C" {
            fn mallopt(param: i32, value: i32) -> i32;
        }
        // SAFETY: mallopt only sets allocator parameters; it is called before any thread is
        // started and both values are in the ranges glibc documents.
        unsafe {
            mallopt(M_MMAP_THRESHOLD, 32 << 20);
            mallopt(M_TRIM_THRESHOLD, 256 << 20);
        }
    }
}

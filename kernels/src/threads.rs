//! Running one model call on rayon's pool with low per-op overhead.
//!
//! The kernels split their work with rayon (`par_chunks_mut`, `join`, the GEMM's task split).
//! A model call at batch 1 runs hundreds of such ops of 10–500 µs each, so what an op pays
//! to go parallel matters as much as how well it splits. Two costs dominate, both measured
//! on the 2-core VM this was tuned on:
//!
//! * **Cold entry.** A parallel op started from a thread outside the pool injects its job,
//!   wakes a worker and sleeps on a latch until the whole op is done: two thread wake-ups in
//!   series per op. [`on_worker`] moves the whole call onto a worker once, so each op's split
//!   pushes half its work onto the caller's own deque, a sibling steals it when awake, and the
//!   caller takes it back when nobody did: no op waits for a wake-up.
//! * **Sleeping siblings.** An idle rayon worker yields ~32 times and then sleeps on a
//!   condition variable; the serial gaps between ops are longer than that, so every op found
//!   its sibling asleep and woke it (a futex wake plus the scheduler's latency, tens of µs in
//!   a VM). While a call runs, [`on_worker`] keeps the other workers looking for work
//!   ([`rayon::yield_now`] in a loop) instead; a worker that finds nothing for
//!   [`SPIN_IDLE`] goes back to rayon's normal sleep, so a long serial stretch (a string op,
//!   a loop) does not burn a core. A spinning worker also gives its core away between polls
//!   (`sched_yield`), so on a machine with more runnable threads than cores it does not eat
//!   the time slices the working threads need.
//!
//! **Contention.** On a machine with more runnable threads than cores the hop loses: a call
//! that never sleeps gets only its fair share of a core, while entering the pool per op (the
//! caller and the workers sleeping and waking in turn) is favoured by the scheduler. A call
//! that hopped and got less than half its wall time on the CPU makes the next calls run in
//! place (each parallel op entering the pool on its own), then one hops again to look
//! ([`on_worker`]).
//!
//! `TFHUB_POOL` picks the mode, for measuring: `yield` (the default, as above), `spin` (poll
//! without yielding the core), `hop` (the hop without spinning), `off` (neither: every
//! parallel op enters the pool on its own, as before).
//!
//! **Grain.** [`grain`] sizes the leaves of a kernel's parallel split: [`tasks_per_thread`]
//! leaves per worker (4 by default, `TFHUB_TASKS_PER_THREAD`), so when one worker is
//! descheduled mid-op (a shared machine), or one leaf is slower, the others steal its
//! remaining leaves instead of waiting for it; with one leaf per worker an op lasts as long
//! as its slowest worker's time slice.
//!
//! Neither changes what any kernel computes: results do not depend on which thread runs a
//! task.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long a spinning worker looks for work without finding any before it stops spinning.
pub const SPIN_IDLE: Duration = Duration::from_millis(2);

/// How [`on_worker`] runs a call (`TFHUB_POOL`, see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Hop onto a worker; other workers poll for work and yield their core between polls.
    Yield,
    /// Hop onto a worker; other workers poll for work without yielding.
    Spin,
    /// Hop onto a worker; other workers sleep as rayon makes them.
    Hop,
    /// Run in place: each parallel op enters the pool from the calling thread.
    Off,
}

fn mode() -> Mode {
    static MODE: OnceLock<Mode> = OnceLock::new();
    *MODE.get_or_init(|| match std::env::var("TFHUB_POOL").as_deref() {
        Ok("spin") => Mode::Spin,
        Ok("hop") => Mode::Hop,
        Ok("off") => Mode::Off,
        _ => Mode::Yield,
    })
}

/// Leaves per worker of a kernel's parallel split (`TFHUB_TASKS_PER_THREAD`, 1..=64,
/// default 4; see the [module docs](self)).
pub fn tasks_per_thread() -> usize {
    static N: OnceLock<usize> = OnceLock::new();
    *N.get_or_init(|| {
        std::env::var("TFHUB_TASKS_PER_THREAD")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .map_or(4, |n| n.clamp(1, 64))
    })
}

/// Units per leaf when `units` units of work are split over the current rayon pool:
/// [`tasks_per_thread`] leaves per worker, but never fewer than `min_units` units per leaf
/// (and at least 1).
pub fn grain(units: usize, min_units: usize) -> usize {
    let leaves = rayon::current_num_threads().max(1) * tasks_per_thread();
    units.div_ceil(leaves).max(min_units).max(1)
}

/// Runs `f` on a worker of the current rayon pool and returns its result, keeping the pool's
/// other workers spinning for work while it runs (see the [module docs](self)). Runs `f` in
/// place, without spinning, when the caller already is a worker (a nested call) or while the
/// machine looks oversubscribed (see [`contended`]).
pub fn on_worker<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() || mode() == Mode::Off || contended() {
        return f();
    }
    rayon::scope(|_| {
        let _call = CallGuard::enter();
        let t0 = Instant::now();
        let cpu0 = thread_cpu_ns();
        let r = f();
        if let (Some(c0), Some(c1)) = (cpu0, thread_cpu_ns()) {
            let wall = t0.elapsed();
            let cpu = Duration::from_nanos(c1.saturating_sub(c0));
            if wall >= CONTENTION_MIN_WALL && cpu * 2 < wall {
                SKIP_HOPS.store(CONTENDED_CALLS, Ordering::Release);
            }
        }
        r
    })
}

/// Calls that run in place after a call found the machine contended.
const CONTENDED_CALLS: usize = 32;
/// Calls shorter than this are not used to judge contention.
const CONTENTION_MIN_WALL: Duration = Duration::from_millis(1);
/// Calls left to run in place (see [`contended`]).
static SKIP_HOPS: AtomicUsize = AtomicUsize::new(0);

/// True while the machine looked oversubscribed: the last call that hopped got less than half
/// of its wall time on the CPU (other processes had the cores). A thread that never sleeps
/// then gets only its fair share of a core, while one that sleeps between ops (entering the
/// pool per op, as without the hop) is favoured on wake-up by the scheduler: measured with
/// twelve runnable compiler threads on 2 cores, MobileNetV2 at batch 1 took 120–140 ms per
/// call hopping and 15–40 ms in place. So the next [`CONTENDED_CALLS`] calls run in place,
/// then one hops again to look.
fn contended() -> bool {
    SKIP_HOPS
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
        .is_ok()
}

/// CPU time the calling thread has used, in nanoseconds (`None` where not available).
pub fn thread_cpu_ns() -> Option<u64> {
    #[cfg(all(target_os = "linux", target_pointer_width = "64"))]
    {
        #[repr(C)]
        struct Timespec {
            sec: i64,
            nsec: i64,
        }
        extern "C" {
            fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
        }
        // <time.h>: CLOCK_THREAD_CPUTIME_ID on Linux.
        const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
        let mut ts = Timespec { sec: 0, nsec: 0 };
        // SAFETY: clock_gettime writes one timespec (two 64-bit fields on 64-bit Linux,
        // glibc and musl alike) to the pointer it is given, which is valid and exclusive.
        let r = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        if r == 0 {
            return Some((ts.sec as u64).saturating_mul(1_000_000_000) + ts.nsec as u64);
        }
        None
    }
    #[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
    {
        None
    }
}

/// Calls inside [`on_worker`] right now (process-wide); spinners spin while it is non-zero.
static CALLS: AtomicUsize = AtomicUsize::new(0);
/// Spinner jobs queued or looping (process-wide), at most one per worker but the caller's.
static SPINNERS: AtomicUsize = AtomicUsize::new(0);

/// Counts one running call and makes sure the other workers spin; dropping it ends the call.
struct CallGuard;

impl CallGuard {
    fn enter() -> CallGuard {
        CALLS.fetch_add(1, Ordering::AcqRel);
        let want = rayon::current_num_threads().saturating_sub(1);
        if matches!(mode(), Mode::Spin | Mode::Yield) {
            let caller = rayon::current_thread_index();
            // Spinners of an earlier call that are still looping carry on into this one.
            while SPINNERS.load(Ordering::Acquire) < want {
                if SPINNERS.fetch_add(1, Ordering::AcqRel) >= want {
                    SPINNERS.fetch_sub(1, Ordering::AcqRel);
                    break;
                }
                rayon::spawn(move || {
                    // The caller itself may pick this job up while it waits inside an op; it
                    // must not spin there (it would not get back to finishing its call).
                    if rayon::current_thread_index() != caller {
                        spin(mode() == Mode::Yield);
                    }
                    SPINNERS.fetch_sub(1, Ordering::AcqRel);
                });
            }
        }
        CallGuard
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        CALLS.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Runs pending pool work while a call is running, until nothing turned up for
/// [`SPIN_IDLE`] (then the worker goes back to rayon's own idle loop and sleep). With
/// `yield_core`, each poll that finds nothing gives the core to any other runnable thread.
fn spin(yield_core: bool) {
    let mut idle_since: Option<Instant> = None;
    let mut polls = 0u32;
    loop {
        match rayon::yield_now() {
            Some(rayon::Yield::Executed) => idle_since = None,
            Some(rayon::Yield::Idle) => {
                if yield_core {
                    std::thread::yield_now();
                } else {
                    std::hint::spin_loop();
                }
                polls = polls.wrapping_add(1);
                // Reading the clock every poll would cost more than the poll itself.
                if polls.is_multiple_of(64) {
                    let now = Instant::now();
                    match idle_since {
                        None => idle_since = Some(now),
                        Some(t) if now.duration_since(t) >= SPIN_IDLE => return,
                        Some(_) => {}
                    }
                    if CALLS.load(Ordering::Acquire) == 0 {
                        return;
                    }
                }
            }
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;

    #[test]
    fn on_worker_runs_on_the_pool_and_returns_the_result() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        // From a thread outside any pool: the closure runs on a worker of the global pool.
        let (idx, sum) = std::thread::spawn(|| {
            on_worker(|| {
                let v: Vec<u64> = (0..10_000).collect();
                (rayon::current_thread_index(), v.par_iter().sum::<u64>())
            })
        })
        .join()
        .unwrap();
        assert!(idx.is_some());
        assert_eq!(sum, 10_000 * 9_999 / 2);
        // Nested: runs in place.
        let inner = pool.install(|| {
            let me = rayon::current_thread_index();
            on_worker(|| rayon::current_thread_index() == me)
        });
        assert!(inner);
    }

    #[test]
    fn many_calls_from_many_threads_finish() {
        // Concurrent calls each start spinners; every call must still return (spinners give
        // way when the call ends) and the spinner count must return to zero.
        std::thread::scope(|s| {
            for t in 0..4u64 {
                s.spawn(move || {
                    for i in 0..50u64 {
                        let got = on_worker(|| {
                            (0..2_000u64)
                                .into_par_iter()
                                .map(|x| x * (t + i))
                                .sum::<u64>()
                        });
                        assert_eq!(got, (t + i) * 2_000 * 1_999 / 2);
                    }
                });
            }
        });
    }
}

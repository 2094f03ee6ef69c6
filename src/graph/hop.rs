//! Whether a top-level call hops onto rayon's pool or runs on the caller's thread, chosen by
//! measuring both.
//!
//! [`tfhub_kernels::threads::on_worker`] moves a call onto a pool worker so that its
//! parallel ops do not each pay a cold entry into the pool. The hop itself costs two thread
//! wake-ups (the worker's, then the caller's), ~20–30 µs on the 2-core VM: a tenth of a
//! BERT preprocessor call at batch 1 (~0.25 ms of small string and shape ops, none of them
//! parallel), while a CNN call of many parallel ops needs it. Which one wins depends on the
//! model and the batch, so a [`Chooser`] (one per plan) times both: at the start of every
//! cycle of [`CYCLE`] calls it alternates the two ways for [`PROBES`] calls, then runs the
//! rest of the cycle the way whose fastest probe was faster. Calls that took longer than
//! [`MAX_IN_PLACE`] always hop (the hop is noise there, and a long call is where the parallel
//! ops are). Neither way changes what a call computes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Calls per cycle (probes included).
pub(crate) const CYCLE: u64 = 256;
/// Probe calls at the start of each cycle, alternating in place / hop.
pub(crate) const PROBES: u64 = 8;
/// Calls longer than this hop without probing.
pub(crate) const MAX_IN_PLACE: Duration = Duration::from_millis(2);

/// Per-plan call counter and probe timings (relaxed atomics: concurrent calls may race on
/// them, which only perturbs the choice, never a result).
#[derive(Debug, Default)]
pub(crate) struct Chooser {
    calls: AtomicU64,
    /// Fastest in-place and hop probe of the current cycle, in ns (0 = none yet).
    best_in_place: AtomicU64,
    best_hop: AtomicU64,
    /// Duration of the last call, in ns.
    last_ns: AtomicU64,
}

impl Chooser {
    /// Runs `f(hop)`: `hop` says whether the call should hop onto the pool.
    pub(crate) fn run<R>(&self, f: impl FnOnce(bool) -> R) -> R {
        if Duration::from_nanos(self.last_ns.load(Ordering::Relaxed)) > MAX_IN_PLACE {
            let t = Instant::now();
            let r = f(true);
            self.last_ns.store(nanos(t), Ordering::Relaxed);
            return r;
        }
        let n = self.calls.fetch_add(1, Ordering::Relaxed) % CYCLE;
        if n == 0 {
            self.best_in_place.store(0, Ordering::Relaxed);
            self.best_hop.store(0, Ordering::Relaxed);
        }
        let (probe, here) = if n < PROBES {
            (true, n % 2 == 0)
        } else {
            let a = self.best_in_place.load(Ordering::Relaxed);
            let b = self.best_hop.load(Ordering::Relaxed);
            (false, a != 0 && (b == 0 || a < b))
        };
        let t = Instant::now();
        let r = f(!here);
        let ns = nanos(t);
        self.last_ns.store(ns, Ordering::Relaxed);
        if probe {
            let best = if here {
                &self.best_in_place
            } else {
                &self.best_hop
            };
            let _ = best.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                (b == 0 || ns < b).then_some(ns.max(1))
            });
        }
        r
    }
}

fn nanos(t: Instant) -> u64 {
    u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_faster_way_after_probing() {
        let c = Chooser::default();
        let mut ways = Vec::new();
        for _ in 0..CYCLE {
            ways.push(c.run(|hop| {
                if hop {
                    std::thread::sleep(Duration::from_micros(200));
                    "hop"
                } else {
                    "here"
                }
            }));
        }
        // Probes alternate, starting in place.
        assert_eq!(&ways[..4], &["here", "hop", "here", "hop"]);
        assert!(ways[PROBES as usize..].iter().all(|w| *w == "here"));
    }

    #[test]
    fn long_calls_always_hop() {
        let c = Chooser::default();
        c.last_ns
            .store((MAX_IN_PLACE * 2).as_nanos() as u64, Ordering::Relaxed);
        for _ in 0..4 {
            let hopped = c.run(|hop| {
                std::thread::sleep(MAX_IN_PLACE + Duration::from_millis(1));
                hop
            });
            assert!(hopped);
        }
    }
}

//! Per-op timing for the plan executor: a model loaded with `LoadOptions::profile` (the CLI
//! maps `TFHUB_PROFILE=1` onto it) accumulates the wall time of every op evaluation by op type, process-wide; [`report`]
//! returns the totals (the `bench` CLI prints them). Call ops (`PartitionedCall`, ...) include
//! the time of the function bodies they run, which are also counted op by op.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

fn totals() -> &'static Mutex<HashMap<String, (Duration, u64)>> {
    static T: OnceLock<Mutex<HashMap<String, (Duration, u64)>>> = OnceLock::new();
    T.get_or_init(Default::default)
}

/// Adds one evaluation of an op of type `op_type` that took `d`.
pub(crate) fn record(op_type: &str, d: Duration) {
    // A poisoned lock only means another thread panicked mid-update; the totals stay usable.
    let mut t = totals().lock().unwrap_or_else(|e| e.into_inner());
    let e = t.entry(op_type.to_string()).or_default();
    e.0 += d;
    e.1 += 1;
}

/// One op type's accumulated time.
#[derive(Debug, Clone, PartialEq)]
pub struct OpTime {
    /// TF op type (or the fused op's plan name).
    pub op_type: String,
    /// Total wall time of its evaluations.
    pub total: Duration,
    /// Number of evaluations.
    pub calls: u64,
}

/// Accumulated per-op-type times, largest first (empty unless a model was loaded with
/// `LoadOptions::profile`).
pub fn report() -> Vec<OpTime> {
    let t = totals().lock().unwrap_or_else(|e| e.into_inner());
    let mut v: Vec<OpTime> = t
        .iter()
        .map(|(k, &(total, calls))| OpTime {
            op_type: k.clone(),
            total,
            calls,
        })
        .collect();
    v.sort_by(|a, b| {
        b.total
            .cmp(&a.total)
            .then_with(|| a.op_type.cmp(&b.op_type))
    });
    v
}

/// Clears the totals (e.g. after a warm-up call).
pub fn reset() {
    totals().lock().unwrap_or_else(|e| e.into_inner()).clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_accumulates_by_op_type() {
        record("ProfileTestOpA", Duration::from_millis(2));
        record("ProfileTestOpA", Duration::from_millis(3));
        record("ProfileTestOpB", Duration::from_millis(1));
        let r = report();
        let a = r.iter().find(|o| o.op_type == "ProfileTestOpA").unwrap();
        assert_eq!((a.total, a.calls), (Duration::from_millis(5), 2));
        let b = r.iter().find(|o| o.op_type == "ProfileTestOpB").unwrap();
        assert_eq!((b.total, b.calls), (Duration::from_millis(1), 1));
    }
}

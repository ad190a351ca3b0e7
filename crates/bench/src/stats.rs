//! The arithmetic of a report: percentiles, steady-state rates, error tallies.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Share of events at each end of a run left out of a steady-state rate: the first ones
/// measure the ramp-up (connections, caches, the first pollers), the last ones the drain,
/// when fewer workflows are in flight than the concurrency asks for.
pub const EDGE_SHARE: f64 = 0.1;

/// Nearest-rank percentile (`q` in 0..=1) of samples sorted ascending: the smallest sample
/// with at least `q` of all samples at or below it, so p100 is the maximum and no value is
/// ever interpolated into existence.
pub fn percentile<T: Copy>(sorted: &[T], q: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// The usual latency summary of a set of samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latencies {
    pub count: usize,
    pub p50: Duration,
    pub p95: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Latencies {
    pub fn of(mut samples: Vec<Duration>) -> Option<Self> {
        samples.sort_unstable();
        Some(Self {
            count: samples.len(),
            p50: percentile(&samples, 0.50)?,
            p95: percentile(&samples, 0.95)?,
            p99: percentile(&samples, 0.99)?,
            max: *samples.last()?,
        })
    }
}

/// The indices bounding the steady part of `n` time-ordered events: from the event at the
/// `EDGE_SHARE` quantile to the one at `1 - EDGE_SHARE`. None when too few events leave a
/// window (then a caller falls back to the whole run).
pub fn steady_window(n: usize) -> Option<(usize, usize)> {
    if n < 3 {
        return None;
    }
    let last = (n - 1) as f64;
    let lo = (EDGE_SHARE * last).floor() as usize;
    let hi = ((1.0 - EDGE_SHARE) * last).ceil() as usize;
    (hi > lo).then_some((lo, hi))
}

/// Events per second in the steady part of a run, from each event's time since the run
/// began (any order). Falls back to all events over the whole span when the window is empty
/// or has no duration.
pub fn steady_rate(mut times: Vec<Duration>) -> Option<f64> {
    times.sort_unstable();
    let (lo, hi) = steady_window(times.len()).unwrap_or((0, times.len().checked_sub(1)?));
    let span = times[hi].saturating_sub(times[lo]);
    if hi > lo && !span.is_zero() {
        return Some((hi - lo) as f64 / span.as_secs_f64());
    }
    let whole = *times.last()?;
    (!whole.is_zero()).then(|| times.len() as f64 / whole.as_secs_f64())
}

/// RPC errors by "Rpc: Code", each with the first message seen, for the report.
#[derive(Debug, Default)]
pub struct ErrorLog {
    by_kind: Mutex<BTreeMap<String, (u64, String)>>,
}

impl ErrorLog {
    pub fn record(&self, rpc: &str, status: &tonic::Status) {
        self.record_kind(format!("{rpc}: {:?}", status.code()), status.message());
    }

    pub fn record_kind(&self, kind: String, message: &str) {
        let mut map = self.by_kind.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = map.entry(kind).or_insert_with(|| (0, message.to_owned()));
        entry.0 += 1;
    }

    pub fn snapshot(&self) -> BTreeMap<String, (u64, String)> {
        self.by_kind
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    #[test]
    fn percentile_is_nearest_rank() {
        let s = ms(&(1..=100).collect::<Vec<_>>());
        assert_eq!(percentile(&s, 0.50), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&s, 0.95), Some(Duration::from_millis(95)));
        assert_eq!(percentile(&s, 0.99), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&s, 1.0), Some(Duration::from_millis(100)));
        assert_eq!(percentile(&s, 0.0), Some(Duration::from_millis(1)));
    }

    #[test]
    fn percentile_of_few_samples() {
        assert_eq!(percentile::<Duration>(&[], 0.5), None);
        let one = ms(&[7]);
        assert_eq!(percentile(&one, 0.99), Some(Duration::from_millis(7)));
        let two = ms(&[1, 9]);
        assert_eq!(percentile(&two, 0.5), Some(Duration::from_millis(1)));
        assert_eq!(percentile(&two, 0.51), Some(Duration::from_millis(9)));
    }

    #[test]
    fn latencies_sort_their_samples() {
        let l = Latencies::of(ms(&[30, 10, 20])).unwrap();
        assert_eq!(l.count, 3);
        assert_eq!(l.p50, Duration::from_millis(20));
        assert_eq!(l.max, Duration::from_millis(30));
        assert!(Latencies::of(Vec::new()).is_none());
    }

    #[test]
    fn steady_rate_ignores_ramp_and_drain() {
        // 101 events: a slow start (10 events over 10 s), then one per 10 ms, then a slow end.
        let mut t: Vec<Duration> = (0..10).map(Duration::from_secs).collect();
        t.extend((0..=80).map(|i| Duration::from_secs(10) + Duration::from_millis(10 * i)));
        t.extend((1..=10).map(|i| Duration::from_millis(10_800) + Duration::from_secs(i)));
        let rate = steady_rate(t).unwrap();
        assert!((rate - 100.0).abs() < 0.5, "{rate}");
    }

    #[test]
    fn steady_rate_falls_back_to_whole_run() {
        assert_eq!(steady_rate(Vec::new()), None);
        assert_eq!(steady_rate(ms(&[500])), Some(2.0));
        assert_eq!(steady_rate(ms(&[0])), None);
        // all at the same instant: no steady span, the whole run is 1 s long
        assert_eq!(steady_rate(ms(&[1000, 1000, 1000, 1000])), Some(4.0));
    }

    #[test]
    fn steady_window_bounds() {
        assert_eq!(steady_window(2), None);
        assert_eq!(steady_window(11), Some((1, 9)));
        assert_eq!(steady_window(101), Some((10, 90)));
    }

    #[test]
    fn error_log_counts_by_rpc_and_code() {
        let log = ErrorLog::default();
        log.record(
            "StartWorkflowExecution",
            &tonic::Status::unavailable("first"),
        );
        log.record(
            "StartWorkflowExecution",
            &tonic::Status::unavailable("second"),
        );
        log.record("PollActivityTaskQueue", &tonic::Status::internal("x"));
        let snap = log.snapshot();
        assert_eq!(snap.len(), 2);
        assert_eq!(
            snap["StartWorkflowExecution: Unavailable"],
            (2, "first".to_owned())
        );
    }
}

//! Token buckets per node and per namespace, by kind of call: workers' calls (polls,
//! responses, heartbeats) are counted apart from everyone else's, and visibility calls apart
//! again, so a flood of one kind cannot starve the others. Pure over an explicit clock.

use chronicle_common::config::{Limits, LimitsTable};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

/// Past this many namespaces with buckets, idle (full) buckets are forgotten, so names a
/// client makes up cannot grow the table without end.
const MAX_TRACKED_NAMESPACES: usize = 4096;

/// What a call is, for admission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CallClass {
    /// Health and capabilities: never limited, never denied.
    Open,
    /// What SDK workers call to take and finish tasks.
    Worker,
    /// List, scan and count of workflows.
    Visibility,
    /// Everything else a client asks.
    User,
}

impl CallClass {
    pub(crate) fn of(method: &str) -> Self {
        match method {
            "Check" | "Watch" | "GetSystemInfo" => Self::Open,
            "ListWorkflowExecutions"
            | "ListOpenWorkflowExecutions"
            | "ListClosedWorkflowExecutions"
            | "ListArchivedWorkflowExecutions"
            | "ScanWorkflowExecutions"
            | "CountWorkflowExecutions" => Self::Visibility,
            m if m.starts_with("Poll")
                || m.starts_with("Respond")
                || m.starts_with("RecordActivityTaskHeartbeat")
                || m == "ShutdownWorker"
                || m == "RecordWorkerHeartbeat" =>
            {
                Self::Worker
            }
            _ => Self::User,
        }
    }
}

/// Which limit refused a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    Namespace,
    Node,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(rate: f64, burst_ratio: f64, now: Instant) -> Self {
        Self {
            tokens: capacity(rate, burst_ratio),
            at: now,
        }
    }

    /// Refills for the time since the last call; whether a token is there to take.
    fn refill(&mut self, rate: f64, burst_ratio: f64, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(capacity(rate, burst_ratio));
        self.at = now;
        rate <= 0.0 || self.tokens >= 1.0
    }

    fn take(&mut self) {
        self.tokens -= 1.0;
    }

    /// Whether the bucket would be full now: nobody has called lately.
    fn is_idle(&self, rate: f64, burst_ratio: f64, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens + elapsed * rate >= capacity(rate, burst_ratio)
    }
}

/// At least one call fits, whatever the ratio.
fn capacity(rate: f64, burst_ratio: f64) -> f64 {
    (rate * burst_ratio).max(1.0)
}

#[derive(Default)]
struct Buckets {
    node_user: Option<Bucket>,
    node_worker: Option<Bucket>,
    namespaces: HashMap<(String, BucketKind), Bucket>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum BucketKind {
    User,
    Worker,
    Visibility,
}

/// The node's rate limits; a non-positive rate turns that limit off.
pub(crate) struct RateLimits {
    limits: Arc<LimitsTable>,
    buckets: Mutex<Buckets>,
}

impl RateLimits {
    pub(crate) fn new(limits: Arc<LimitsTable>) -> Self {
        Self {
            limits,
            buckets: Mutex::default(),
        }
    }

    /// Takes a token for one call of `class` in `namespace` (empty: a call of no namespace),
    /// from the namespace's bucket and the node's, or from neither.
    pub(crate) fn admit(
        &self,
        class: CallClass,
        namespace: &str,
        now: Instant,
    ) -> Result<(), Refused> {
        let (kind, node_worker) = match class {
            CallClass::Open => return Ok(()),
            CallClass::Worker => (BucketKind::Worker, true),
            CallClass::Visibility => (BucketKind::Visibility, false),
            CallClass::User => (BucketKind::User, false),
        };
        let node = &self.limits.node;
        let own = self.limits.for_namespace(namespace);
        let ratio = node.burst_ratio;
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let node_bucket = if node_worker {
            &mut buckets.node_worker
        } else {
            &mut buckets.node_user
        };
        let node_bucket =
            node_bucket.get_or_insert_with(|| Bucket::full(node.node_rps, ratio, now));
        if !node_bucket.refill(node.node_rps, ratio, now) {
            return Err(Refused::Node);
        }
        let mut node_taken = *node_bucket;
        node_taken.take();
        if !namespace.is_empty() {
            let rate = namespace_rate(own, kind);
            let own_ratio = own.burst_ratio;
            if buckets.namespaces.len() >= MAX_TRACKED_NAMESPACES {
                let limits = &self.limits;
                buckets.namespaces.retain(|(name, kind), bucket| {
                    let own = limits.for_namespace(name);
                    !bucket.is_idle(namespace_rate(own, *kind), own.burst_ratio, now)
                });
            }
            let bucket = buckets
                .namespaces
                .entry((namespace.to_owned(), kind))
                .or_insert_with(|| Bucket::full(rate, own_ratio, now));
            if !bucket.refill(rate, own_ratio, now) {
                return Err(Refused::Namespace);
            }
            bucket.take();
        }
        let node_bucket = if node_worker {
            &mut buckets.node_worker
        } else {
            &mut buckets.node_user
        };
        *node_bucket = Some(node_taken);
        Ok(())
    }
}

fn namespace_rate(limits: &Limits, kind: BucketKind) -> f64 {
    match kind {
        BucketKind::User => limits.namespace_rps,
        BucketKind::Worker => limits.namespace_worker_rps,
        BucketKind::Visibility => limits.namespace_visibility_rps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn rates(node_rps: f64, namespace_rps: f64) -> RateLimits {
        let node = Limits {
            node_rps,
            namespace_rps,
            namespace_worker_rps: namespace_rps,
            namespace_visibility_rps: 1.0,
            burst_ratio: 2.0,
            ..Limits::default()
        };
        RateLimits::new(Arc::new(LimitsTable {
            node,
            namespaces: Default::default(),
        }))
    }

    fn admitted(rates: &RateLimits, class: CallClass, ns: &str, now: Instant, n: usize) -> usize {
        (0..n)
            .filter(|_| rates.admit(class, ns, now).is_ok())
            .count()
    }

    #[test]
    fn a_namespace_gets_its_burst_then_its_rate() {
        let rates = rates(1000.0, 10.0);
        let t0 = Instant::now();
        assert_eq!(admitted(&rates, CallClass::User, "a", t0, 50), 20);
        assert_eq!(
            rates.admit(CallClass::User, "a", t0),
            Err(Refused::Namespace)
        );
        let later = t0 + Duration::from_millis(500);
        assert_eq!(admitted(&rates, CallClass::User, "a", later, 50), 5);
        // Another namespace has its own bucket.
        assert_eq!(admitted(&rates, CallClass::User, "b", later, 50), 20);
    }

    #[test]
    fn workers_and_visibility_are_counted_apart_from_user_calls() {
        let rates = rates(1000.0, 10.0);
        let t0 = Instant::now();
        assert_eq!(admitted(&rates, CallClass::User, "a", t0, 100), 20);
        assert_eq!(admitted(&rates, CallClass::Worker, "a", t0, 100), 20);
        assert_eq!(admitted(&rates, CallClass::Visibility, "a", t0, 100), 2);
        assert_eq!(admitted(&rates, CallClass::Open, "a", t0, 100), 100);
    }

    #[test]
    fn the_node_limit_covers_all_namespaces_and_costs_them_nothing_when_it_refuses() {
        let rates = rates(5.0, 100.0);
        let t0 = Instant::now();
        assert_eq!(admitted(&rates, CallClass::User, "a", t0, 6), 6);
        assert_eq!(admitted(&rates, CallClass::User, "b", t0, 6), 4);
        assert_eq!(rates.admit(CallClass::User, "c", t0), Err(Refused::Node));
        // Workers have the node's other bucket.
        assert_eq!(admitted(&rates, CallClass::Worker, "c", t0, 20), 10);
    }

    #[test]
    fn a_rate_of_zero_turns_the_limit_off() {
        let rates = rates(0.0, 0.0);
        assert_eq!(
            admitted(&rates, CallClass::User, "a", Instant::now(), 10_000),
            10_000
        );
    }

    #[test]
    fn made_up_namespaces_do_not_grow_the_table_without_end() {
        let rates = rates(0.0, 10.0);
        let t0 = Instant::now();
        for i in 0..3 * MAX_TRACKED_NAMESPACES {
            let _ = rates.admit(
                CallClass::User,
                &format!("ns-{i}"),
                t0 + Duration::from_secs(i as u64),
            );
        }
        let tracked = rates.buckets.lock().unwrap().namespaces.len();
        assert!(tracked <= MAX_TRACKED_NAMESPACES, "{tracked}");
    }

    #[test]
    fn calls_are_classed_as_temporal_workers_make_them() {
        assert_eq!(CallClass::of("PollWorkflowTaskQueue"), CallClass::Worker);
        assert_eq!(
            CallClass::of("RespondActivityTaskCompletedById"),
            CallClass::Worker
        );
        assert_eq!(
            CallClass::of("RecordActivityTaskHeartbeat"),
            CallClass::Worker
        );
        assert_eq!(
            CallClass::of("CountWorkflowExecutions"),
            CallClass::Visibility
        );
        assert_eq!(CallClass::of("StartWorkflowExecution"), CallClass::User);
        assert_eq!(CallClass::of("GetSystemInfo"), CallClass::Open);
    }
}

//! The Prometheus endpoint. The services record with the `metrics` facade (a no-op until a
//! recorder is installed, so a node without `metrics_port` pays nothing); this installs the
//! exporter that serves what they record as Prometheus text on `/metrics`.

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use std::net::{IpAddr, SocketAddr};

/// Latency buckets in seconds, as Temporal's server reports them (1 ms to 10 min).
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0,
    200.0, 500.0, 1000.0,
];
/// Buckets for counts (events per batch, commits per group).
const COUNT_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// Starts serving metrics on `ip:port`.
pub fn serve(ip: IpAddr, port: u16) -> Result<(), String> {
    let address = SocketAddr::new(ip, port);
    PrometheusBuilder::new()
        .with_http_listener(address)
        .set_buckets_for_metric(Matcher::Suffix("latency".into()), LATENCY_BUCKETS)
        .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("lateness".into()), LATENCY_BUCKETS))
        .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("size".into()), COUNT_BUCKETS))
        .map_err(|e| format!("metrics buckets: {e}"))?
        .install()
        .map_err(|e| format!("cannot serve metrics on {address}: {e}"))?;
    describe();
    tracing::info!(%address, "metrics served at /metrics");
    Ok(())
}

/// Every metric the services record: Temporal's names where Temporal has the metric (so its
/// dashboards work), `chronicle_` ones for what is Chronicle's own.
fn describe() {
    describe_counter!(
        "service_requests",
        "Client calls, by operation and namespace."
    );
    describe_histogram!("service_latency", Unit::Seconds, "Client call latency.");
    describe_counter!(
        "service_error_with_type",
        "Client calls that failed, by gRPC status."
    );
    describe_counter!(
        "service_errors_resource_exhausted",
        "Client calls refused for a rate limit."
    );
    describe_histogram!(
        "persistence_latency",
        Unit::Seconds,
        "Writes of workflow changes, as the writer waits for them."
    );
    describe_histogram!(
        "chronicle_group_commit_latency",
        Unit::Seconds,
        "One group commit's transaction with its fsync (SQLite)."
    );
    describe_histogram!(
        "task_schedule_to_start_latency",
        Unit::Seconds,
        "How long a task waited for a worker."
    );
    for (name, what) in [
        ("workflow_success", "completed"),
        ("workflow_failed", "failed"),
        ("workflow_timeout", "timed out"),
        ("workflow_terminate", "terminated"),
        ("workflow_cancel", "canceled"),
        ("workflow_continued_as_new", "continued as new"),
    ] {
        describe_counter!(name, format!("Runs that {what}."));
    }
    describe_histogram!(
        "chronicle_group_commit_size",
        "Writers that shared one database transaction."
    );
    describe_gauge!(
        "chronicle_state_cache_bytes",
        Unit::Bytes,
        "Encoded mutable states held in the state cache."
    );
    describe_counter!(
        "chronicle_state_cache_lookups_total",
        "State cache lookups, by outcome (hit or miss)."
    );
    describe_gauge!("chronicle_shards_owned", "History shards this node owns.");
    describe_histogram!(
        "chronicle_timer_lateness",
        Unit::Seconds,
        "How long after its time a timer was read to fire."
    );
}

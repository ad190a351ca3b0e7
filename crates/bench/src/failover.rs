//! `chronicle-bench failover`: how long a cluster's clients see errors when one node goes.
//! It starts workflows through one node at a steady rate, stops another node (its pid given)
//! with SIGKILL or SIGTERM, and goes on until the starts have succeeded for a while: the
//! window from the signal to the last failed start is the time the stopped node's shards
//! took to serve again (through the node the bench talks to, which forwards to the new
//! owners). Workflows are only started, never run: the figure is about ownership moving.

use crate::rpc::{self, Client};
use chronicle_api::common::v1::WorkflowType;
use chronicle_api::workflowservice::StartWorkflowExecutionRequest;
use clap::{Args, ValueEnum};
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct FailoverArgs {
    /// The node the bench talks to (it must not be the one stopped)
    #[arg(long, default_value = "127.0.0.1:7233")]
    address: String,
    /// The pid of the node to stop
    #[arg(long)]
    pid: i32,
    /// How the node is stopped
    #[arg(long, value_enum, default_value = "kill")]
    signal: Stop,
    /// Workflow starts a second
    #[arg(long, default_value_t = 100)]
    rate: u32,
    /// Starts before the node is stopped
    #[arg(long, default_value_t = 3)]
    warmup_secs: u64,
    /// The run ends once starts succeeded this long in a row after the stop
    #[arg(long, default_value_t = 5)]
    settle_secs: u64,
    #[arg(long, default_value = "default")]
    namespace: String,
}

#[derive(Clone, Copy, ValueEnum)]
enum Stop {
    /// SIGKILL: the node dies; its shards move once its lease lapses
    Kill,
    /// SIGTERM: the node hands its shards over before it exits
    Term,
}

impl Stop {
    fn signal(self) -> libc::c_int {
        match self {
            Stop::Kill => libc::SIGKILL,
            Stop::Term => libc::SIGTERM,
        }
    }
}

/// What the starts after the stop saw.
#[derive(Debug, Default, PartialEq)]
struct Window {
    failed: u64,
    succeeded: u64,
    /// From the stop to the end of the last failed start.
    last_failure: Option<Duration>,
    /// The slowest successful start after the stop.
    slowest: Duration,
}

impl Window {
    fn record(&mut self, since_stop: Duration, took: Duration, ok: bool) {
        if ok {
            self.succeeded += 1;
            self.slowest = self.slowest.max(took);
        } else {
            self.failed += 1;
            self.last_failure = Some(since_stop);
        }
    }
}

pub async fn failover(args: FailoverArgs) -> anyhow::Result<()> {
    rpc::wait_for_namespace(&args.address, &args.namespace).await?;
    let mut client = rpc::connect(&args.address).await?;
    let every = Duration::from_secs_f64(1.0 / f64::from(args.rate.max(1)));
    let mut pace = tokio::time::interval(every);
    let warmup_end = Instant::now() + Duration::from_secs(args.warmup_secs);
    let settle = Duration::from_secs(args.settle_secs);
    let mut stopped: Option<Instant> = None;
    let mut window = Window::default();
    let mut warm_failures = 0u64;
    let mut last_failure = Instant::now();
    let mut n = 0u64;
    loop {
        pace.tick().await;
        if stopped.is_none() && Instant::now() >= warmup_end {
            // SAFETY: kill(2) on a pid the caller named; no memory is shared.
            if unsafe { libc::kill(args.pid, args.signal.signal()) } != 0 {
                anyhow::bail!(
                    "cannot signal pid {}: {}",
                    args.pid,
                    std::io::Error::last_os_error()
                );
            }
            stopped = Some(Instant::now());
            last_failure = Instant::now();
            eprintln!("signalled pid {} after {n} starts", args.pid);
        }
        n += 1;
        let began = Instant::now();
        let ok = start(&mut client, &args.namespace, n).await;
        let took = began.elapsed();
        match stopped {
            None => warm_failures += u64::from(!ok),
            Some(at) => {
                window.record(Instant::now() - at, took, ok);
                if !ok {
                    last_failure = Instant::now();
                } else if last_failure.elapsed() >= settle {
                    break;
                }
            }
        }
    }
    report(&args, warm_failures, &window);
    Ok(())
}

/// Whether the start succeeded; the first few failures are told on stderr.
async fn start(client: &mut Client, namespace: &str, n: u64) -> bool {
    let request = StartWorkflowExecutionRequest {
        namespace: namespace.to_owned(),
        workflow_id: format!("failover-{}-{n}", std::process::id()),
        workflow_type: Some(WorkflowType {
            name: "failover".to_owned(),
        }),
        task_queue: Some(rpc::normal_queue("chronicle-bench-failover")),
        identity: "chronicle-bench".to_owned(),
        request_id: uuid::Uuid::new_v4().to_string(),
        ..Default::default()
    };
    let call = rpc::with_timeout(request, Duration::from_secs(10));
    match client.start_workflow_execution(call).await {
        Ok(_) => true,
        Err(status) => {
            static TOLD: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            if TOLD.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < 5 {
                eprintln!("start {n}: {:?} {}", status.code(), status.message());
            }
            false
        }
    }
}

fn report(args: &FailoverArgs, warm_failures: u64, window: &Window) {
    let how = match args.signal {
        Stop::Kill => "SIGKILL",
        Stop::Term => "SIGTERM",
    };
    let gap = window
        .last_failure
        .map_or_else(|| "none".to_owned(), |d| format!("{} ms", d.as_millis()));
    println!(
        "| {how} | {} | {gap} | {} of {} | {} ms |",
        warm_failures,
        window.failed,
        window.failed + window.succeeded,
        window.slowest.as_millis()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_ends_at_the_last_failure_and_keeps_the_slowest_success() {
        let mut window = Window::default();
        let ms = Duration::from_millis;
        window.record(ms(10), ms(3), true);
        window.record(ms(20), ms(1), false);
        window.record(ms(6000), ms(2), false);
        window.record(ms(6100), ms(900), true);
        assert_eq!(
            window,
            Window {
                failed: 2,
                succeeded: 2,
                last_failure: Some(ms(6000)),
                slowest: ms(900),
            }
        );
    }
}

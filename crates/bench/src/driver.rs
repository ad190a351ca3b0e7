//! One scenario against one server address: its load (see `pass`), what came of it, and
//! the server's CPU and memory around it.

use crate::long::{self, LongReport};
use crate::pass::{Pass, run_pass};
use crate::procfs;
use crate::rpc;
use crate::scenario::{Plan, Scenario};
use crate::stats::{ErrorLog, Latencies, steady_rate};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// The load: how many workflows, how many at once, and each scenario's knobs.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// Workflows per scenario [default: 1000, but 300 for chain and signal; long always
    /// runs one]
    #[arg(long)]
    pub workflows: Option<usize>,
    /// Workflows in flight at once [default: 200 for timer, whose workflows mostly wait,
    /// else 50]
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Workflow task pollers on the normal queue, and as many on the sticky queue
    #[arg(long, default_value_t = 8)]
    pub workflow_pollers: usize,
    #[arg(long, default_value_t = 8)]
    pub activity_pollers: usize,
    /// Do not use sticky execution: every workflow task carries the full history
    #[arg(long)]
    pub no_sticky: bool,
    #[arg(long, default_value_t = 10)]
    pub chain_steps: u32,
    #[arg(long, default_value_t = 2000)]
    pub long_steps: u32,
    /// Steps of the long scenario's second, non-sticky workflow, which measures the full
    /// history each task carries without sticky execution (0 skips it). Each of its tasks
    /// re-reads the whole history, so the cost grows with the square of the steps.
    #[arg(long, default_value_t = 300)]
    pub long_nonsticky_steps: u32,
    /// Signals per workflow in the signal scenario
    #[arg(long, default_value_t = 10)]
    pub signals: u32,
    #[arg(long, default_value_t = 1000)]
    pub timer_ms: u64,
    #[arg(long, default_value = "default")]
    pub namespace: String,
    /// Give up on a workflow not completed this long after its start (the long scenario
    /// adds 100 ms per step). A timeout also stops new starts, so a stalled server ends
    /// the run instead of hanging it.
    #[arg(long, default_value_t = 120)]
    pub workflow_timeout_s: u64,
}

#[derive(Debug, Clone)]
pub struct ScenarioResult {
    pub scenario: Scenario,
    pub workflows: usize,
    pub concurrency: usize,
    pub completed: usize,
    /// Started but not seen completing within the workflow timeout.
    pub incomplete: usize,
    pub elapsed: Duration,
    /// Completed workflows per second in the steady part of the run.
    pub throughput: Option<f64>,
    /// Start call to completion accepted, of every completed workflow.
    pub latency: Option<Latencies>,
    pub errors: BTreeMap<String, (u64, String)>,
    pub workflow_tasks: u64,
    pub sticky_tasks: u64,
    pub activity_tasks: u64,
    pub history_bytes_per_task: Option<f64>,
    pub full_history_reads: u64,
    pub poll_expiries: u64,
    pub server: Option<Usage>,
    pub bench_cpu: Option<Duration>,
    /// CPU time of every other process on the machine during the run.
    pub other_cpu: Option<Duration>,
    pub signal_rate: Option<f64>,
    pub signal_latency: Option<Latencies>,
    pub timer_delay: Option<Latencies>,
    pub workflow_task_wait: Option<Latencies>,
    pub activity_task_wait: Option<Latencies>,
    pub long: Option<LongReport>,
}

impl ScenarioResult {
    pub fn error_count(&self) -> u64 {
        self.errors.values().map(|(n, _)| n).sum()
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Usage {
    pub cpu: Duration,
    pub peak_rss: u64,
    /// Whether the peak could be reset at the start, so it is this run's alone rather than
    /// the process's lifetime peak.
    pub peak_is_run_only: bool,
}

pub async fn run_scenario(
    address: &str,
    scenario: Scenario,
    args: &LoadArgs,
    server_pid: Option<u32>,
) -> anyhow::Result<ScenarioResult> {
    let pass = first_pass(scenario, args);
    let (workflows, concurrency) = (pass.workflows, pass.concurrency);
    rpc::wait_for_namespace(address, &args.namespace).await?;
    let errors = Arc::new(ErrorLog::default());
    let probe = Probe::start(server_pid);
    let main = run_pass(address, &args.namespace, &pass, &errors).await?;
    // Measured before the long scenario's extra non-sticky workflow, which is not the load
    // the figures describe.
    let measured = probe.finish();
    let long = match scenario {
        Scenario::Long => Some(long::long_report(address, args, &main, &errors).await?),
        _ => None,
    };
    let stats = &main.stats;
    let workflow_tasks = stats.workflow_tasks.load(Ordering::Relaxed);
    let history_bytes = stats.history_bytes.load(Ordering::Relaxed);
    let take = |samples: &Mutex<Vec<Duration>>| {
        Latencies::of(std::mem::take(
            &mut *samples.lock().unwrap_or_else(PoisonError::into_inner),
        ))
    };
    Ok(ScenarioResult {
        scenario,
        workflows,
        concurrency,
        completed: main.completions.len(),
        incomplete: main.incomplete,
        elapsed: main.elapsed,
        throughput: steady_rate(main.completions.iter().map(|c| c.0).collect()),
        latency: Latencies::of(main.completions.iter().map(|c| c.1).collect()),
        errors: errors.snapshot(),
        workflow_tasks,
        sticky_tasks: stats.sticky_tasks.load(Ordering::Relaxed),
        activity_tasks: stats.activity_tasks.load(Ordering::Relaxed),
        history_bytes_per_task: (workflow_tasks > 0)
            .then(|| history_bytes as f64 / workflow_tasks as f64),
        full_history_reads: stats.full_history_reads.load(Ordering::Relaxed),
        poll_expiries: stats.poll_expiries.load(Ordering::Relaxed),
        server: measured.server,
        bench_cpu: measured.bench,
        other_cpu: measured.others,
        signal_rate: (!main.signals.is_empty())
            .then(|| steady_rate(main.signals.iter().map(|s| s.0).collect()))
            .flatten(),
        signal_latency: Latencies::of(main.signals.iter().map(|s| s.1).collect()),
        timer_delay: take(&stats.timer_delays),
        workflow_task_wait: take(&stats.workflow_task_waits),
        activity_task_wait: take(&stats.activity_task_waits),
        long,
    })
}

fn first_pass(scenario: Scenario, args: &LoadArgs) -> Pass {
    let plan = |activities, timer, signals| Plan {
        activities,
        timer,
        signals,
    };
    let timer = Some(Duration::from_millis(args.timer_ms));
    let (plan, default_workflows, default_concurrency) = match scenario {
        Scenario::Empty => (plan(0, None, 0), 1000, 50),
        Scenario::Activity => (plan(1, None, 0), 1000, 50),
        Scenario::Chain => (plan(args.chain_steps, None, 0), 300, 50),
        Scenario::Timer => (plan(0, timer, 0), 1000, 200),
        Scenario::Signal => (plan(0, None, args.signals), 300, 50),
        Scenario::Long => return long::long_pass(args.long_steps, !args.no_sticky, args),
    };
    let workflows = args.workflows.unwrap_or(default_workflows);
    Pass::new(
        plan,
        workflows,
        args.concurrency.unwrap_or(default_concurrency),
        args,
    )
}

/// CPU and peak memory of the server (when its pid is known), CPU of this process, and the
/// CPU everything else on the machine took meanwhile: on a small machine a compile running
/// next to the benchmark changes the figures, and this says whether one did.
struct Probe {
    server: Option<(u32, procfs::Reading, bool)>,
    bench: Option<procfs::Reading>,
    machine: Option<Duration>,
}

impl Probe {
    fn start(server_pid: Option<u32>) -> Self {
        let server = server_pid.and_then(|pid| {
            let reset = procfs::reset_peak_rss(pid);
            procfs::read(pid).ok().map(|r| (pid, r, reset))
        });
        Probe {
            server,
            bench: procfs::read(std::process::id()).ok(),
            machine: procfs::machine_busy().ok(),
        }
    }

    fn finish(self) -> Measured {
        let server = self.server.and_then(|(pid, before, reset)| {
            let after = procfs::read(pid).ok()?;
            Some(Usage {
                cpu: after.cpu.saturating_sub(before.cpu),
                peak_rss: after.peak_rss,
                peak_is_run_only: reset,
            })
        });
        let bench = self.bench.and_then(|before| {
            let after = procfs::read(std::process::id()).ok()?;
            Some(after.cpu.saturating_sub(before.cpu))
        });
        let others = self.machine.and_then(|before| {
            let busy = procfs::machine_busy().ok()?.saturating_sub(before);
            // Without the server's pid its share cannot be told apart.
            let server = server?.cpu;
            Some(busy.saturating_sub(server).saturating_sub(bench?))
        });
        Measured {
            server,
            bench,
            others,
        }
    }
}

struct Measured {
    server: Option<Usage>,
    bench: Option<Duration>,
    others: Option<Duration>,
}

//! Turning results into text. Every figure is first a `Metric` (label, value, unit), so the
//! single-server report and the comparison table print the same things the same way.

use crate::driver::ScenarioResult;
use crate::long::Checkpoint;
use crate::scenario::Scenario;
use crate::server::ServerKind;
use crate::stats::{Latencies, percentile};
use std::fmt::Write;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Unit {
    PerSecond,
    Millis,
    Seconds,
    Count,
    /// A count per something, such as tasks per workflow.
    Ratio,
    Percent,
    MiB,
    Bytes,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub label: String,
    pub value: Option<f64>,
    pub unit: Unit,
}

fn metric(label: impl Into<String>, value: Option<f64>, unit: Unit) -> Metric {
    Metric {
        label: label.into(),
        value,
        unit,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// p50/p95/p99 of a latency summary, in milliseconds.
fn latency_metrics(out: &mut Vec<Metric>, what: &str, l: Option<Latencies>) {
    for (name, pick) in [
        ("p50", (|l: Latencies| l.p50) as fn(Latencies) -> Duration),
        ("p95", |l| l.p95),
        ("p99", |l| l.p99),
    ] {
        out.push(metric(
            format!("{what} {name}"),
            l.map(|l| ms(pick(l))),
            Unit::Millis,
        ));
    }
}

fn checkpoint_metrics(out: &mut Vec<Metric>, mode: &str, checkpoints: &[Checkpoint]) {
    for c in checkpoints {
        let latency = c.latency.map(ms);
        out.push(metric(
            format!("step {} latency ({mode})", c.step),
            latency,
            Unit::Millis,
        ));
    }
    for c in checkpoints {
        let bytes = c.history_bytes.map(|b| b as f64);
        out.push(metric(
            format!("step {} history bytes/task ({mode})", c.step),
            bytes,
            Unit::Bytes,
        ));
    }
}

/// The figures of one scenario run, in report order.
pub fn metrics(r: &ScenarioResult) -> Vec<Metric> {
    let mut out = Vec::new();
    if r.scenario != Scenario::Long {
        out.push(metric(
            "workflows/s (steady)",
            r.throughput,
            Unit::PerSecond,
        ));
        latency_metrics(&mut out, "latency", r.latency);
    }
    out.push(metric("completed", Some(r.completed as f64), Unit::Count));
    out.push(metric("errors", Some(r.error_count() as f64), Unit::Count));
    if r.incomplete > 0 {
        out.push(metric(
            "incomplete (timed out)",
            Some(r.incomplete as f64),
            Unit::Count,
        ));
    }
    if r.scenario == Scenario::Signal {
        out.push(metric("signals/s (steady)", r.signal_rate, Unit::PerSecond));
        latency_metrics(&mut out, "signal call", r.signal_latency);
    }
    if r.scenario == Scenario::Timer {
        latency_metrics(&mut out, "timer fire delay", r.timer_delay);
    }
    if let Some(long) = &r.long {
        out.push(metric("steps/s", long.steps_per_second, Unit::PerSecond));
        checkpoint_metrics(&mut out, "sticky", &long.sticky);
        checkpoint_metrics(&mut out, "non-sticky", &long.non_sticky);
    }
    latency_metrics(
        &mut out,
        "workflow task schedule-to-start",
        r.workflow_task_wait,
    );
    if r.activity_tasks > 0 {
        latency_metrics(
            &mut out,
            "activity task schedule-to-start",
            r.activity_task_wait,
        );
    }
    let server = r.server;
    out.push(metric(
        "server CPU",
        server.map(|u| u.cpu.as_secs_f64()),
        Unit::Seconds,
    ));
    // The long scenario is one workflow: its unit of work is the step.
    let (unit, count) = match r.scenario {
        Scenario::Long => ("step", r.activity_tasks),
        _ => ("workflow", r.completed as u64),
    };
    let per_unit = server
        .filter(|_| count > 0)
        .map(|u| ms(u.cpu) / count as f64);
    out.push(metric(
        format!("server CPU per {unit}"),
        per_unit,
        Unit::Millis,
    ));
    out.push(metric(
        "server peak RSS",
        server.map(|u| mib(u.peak_rss)),
        Unit::MiB,
    ));
    let seconds = |d: Option<Duration>| d.map(|d| d.as_secs_f64());
    out.push(metric("bench CPU", seconds(r.bench_cpu), Unit::Seconds));
    // Anything else running on the machine competes for the same cores.
    out.push(metric(
        "other processes' CPU",
        seconds(r.other_cpu),
        Unit::Seconds,
    ));
    let tasks = |n: u64| (r.completed > 0).then(|| n as f64 / r.completed as f64);
    out.push(metric(
        "workflow tasks/workflow",
        tasks(r.workflow_tasks),
        Unit::Ratio,
    ));
    if r.activity_tasks > 0 {
        out.push(metric(
            "activity tasks/workflow",
            tasks(r.activity_tasks),
            Unit::Ratio,
        ));
    }
    let sticky_share = (r.workflow_tasks > 0 && r.workflow_tasks > r.completed as u64)
        .then(|| 100.0 * r.sticky_tasks as f64 / (r.workflow_tasks - r.completed as u64) as f64);
    out.push(metric(
        "later workflow tasks via sticky queue",
        sticky_share,
        Unit::Percent,
    ));
    let history = r.history_bytes_per_task;
    out.push(metric("history bytes/workflow task", history, Unit::Bytes));
    out
}

fn format_value(m: &Metric) -> String {
    let Some(v) = m.value else {
        return "–".to_owned();
    };
    match m.unit {
        Unit::PerSecond => format!("{v:.1}/s"),
        Unit::Millis if v < 10.0 => format!("{v:.2} ms"),
        Unit::Millis => format!("{v:.1} ms"),
        Unit::Seconds => format!("{v:.2} s"),
        Unit::Count | Unit::Bytes => format!("{v:.0}"),
        Unit::Ratio => format!("{v:.2}"),
        Unit::Percent => format!("{v:.0} %"),
        Unit::MiB => format!("{v:.1} MiB"),
    }
}

/// How many times the reference's value Chronicle's is; "–" when either is missing or the
/// reference's is zero.
fn ratio(reference: &Metric, chronicle: &Metric) -> String {
    match (reference.value, chronicle.value) {
        (Some(r), Some(c)) if r != 0.0 => format!("{:.2}×", c / r),
        _ => "–".to_owned(),
    }
}

fn error_lines(out: &mut String, who: &str, r: &ScenarioResult) {
    for (kind, (count, first)) in &r.errors {
        let _ = writeln!(out, "- {who}: {count} × {kind} (first: {first:?})");
    }
    if r.full_history_reads > 0 {
        let reads = r.full_history_reads;
        let _ = writeln!(
            out,
            "- {who}: {reads} sticky tasks did not follow on from the cache"
        );
    }
    if r.server.is_some_and(|u| !u.peak_is_run_only) {
        let _ = writeln!(
            out,
            "- {who}: peak RSS is the process's lifetime peak (clear_refs refused)"
        );
    }
    if r.poll_expiries > 0 {
        let _ = writeln!(
            out,
            "- {who}: {} polls ran into their deadline",
            r.poll_expiries
        );
    }
}

/// The report of `run`: one scenario against one server.
pub fn single(r: &ScenarioResult) -> String {
    let mut out = format!(
        "scenario {}: {} workflows, {} in flight, {:.1} s\n\n| metric | value |\n|---|---|\n",
        r.scenario.name(),
        r.workflows,
        r.concurrency,
        r.elapsed.as_secs_f64()
    );
    for m in metrics(r) {
        let _ = writeln!(out, "| {} | {} |", m.label, format_value(&m));
    }
    let mut notes = String::new();
    error_lines(&mut notes, "this server", r);
    if !notes.is_empty() {
        out.push('\n');
        out.push_str(&notes);
    }
    out
}

/// One scenario's outcome on each server (Err: the scenario could not run there, and why).
pub struct Row {
    pub scenario: Scenario,
    pub reference: Result<ScenarioResult, String>,
    pub chronicle: Result<ScenarioResult, String>,
}

/// How each server started, over all its starts in a compare run.
pub struct Starts {
    pub kind: ServerKind,
    pub ready: Vec<Duration>,
    pub namespace_ready: Vec<Duration>,
    pub idle_rss: Vec<u64>,
}

/// The metrics of both servers side by side, matched by label (a metric only one server
/// has, such as a count of timed-out workflows, still gets its row).
fn side_by_side(r: &ScenarioResult, c: &ScenarioResult) -> Vec<(String, String, String, String)> {
    let (mr, mc) = (metrics(r), metrics(c));
    let missing = |label: &str| metric(label, None, Unit::Count);
    let mut labels: Vec<&str> = mr.iter().map(|m| m.label.as_str()).collect();
    for m in &mc {
        if !labels.contains(&m.label.as_str()) {
            labels.push(&m.label);
        }
    }
    labels
        .into_iter()
        .map(|label| {
            let find = |ms: &[Metric]| {
                ms.iter()
                    .find(|m| m.label == label)
                    .cloned()
                    .unwrap_or_else(|| missing(label))
            };
            let (a, b) = (find(&mr), find(&mc));
            (
                label.to_owned(),
                format_value(&a),
                format_value(&b),
                ratio(&a, &b),
            )
        })
        .collect()
}

/// "median (min–max)" of durations, in milliseconds.
fn spread(samples: &[Duration]) -> Option<String> {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let (lo, hi) = (sorted.first()?, sorted.last()?);
    let median = percentile(&sorted, 0.5)?;
    Some(format!(
        "{:.0} ms ({:.0}–{:.0})",
        ms(median),
        ms(*lo),
        ms(*hi)
    ))
}

fn start_line(s: &Starts) -> Option<String> {
    let mut rss = s.idle_rss.clone();
    rss.sort_unstable();
    let rss = percentile(&rss, 0.5).map_or("–".to_owned(), |b| format!("{:.1} MiB", mib(b)));
    Some(format!(
        "| {} | {} | {} | {} | {rss} |",
        s.kind.name(),
        s.ready.len(),
        spread(&s.ready)?,
        spread(&s.namespace_ready).unwrap_or_else(|| "–".to_owned()),
    ))
}

/// The table of `compare`, in Markdown.
pub fn comparison(starts: &[Starts], rows: &[Row]) -> String {
    let mut out = String::from(
        "| server | starts | spawn → GetSystemInfo answered, median (min–max) | \
         spawn → namespace `default` described | idle RSS (median) |\n",
    );
    out.push_str("|---|---|---|---|---|\n");
    for line in starts.iter().filter_map(start_line) {
        let _ = writeln!(out, "{line}");
    }
    out.push_str("\n| scenario | metric | reference | chronicle | chronicle ÷ reference |\n");
    out.push_str("|---|---|---|---|---|\n");
    let mut notes = String::new();
    for row in rows {
        let name = row.scenario.name();
        match (&row.reference, &row.chronicle) {
            (Ok(r), Ok(c)) => {
                let shape = format!("{} wf × {} in flight", r.workflows, r.concurrency);
                let _ = writeln!(out, "| **{name}** | {shape} | | | |");
                for (label, vr, vc, ratio) in side_by_side(r, c) {
                    let _ = writeln!(out, "| | {label} | {vr} | {vc} | {ratio} |");
                }
            }
            (r, c) => {
                let state = |x: &Result<ScenarioResult, String>| match x {
                    Ok(_) => "ran".to_owned(),
                    Err(e) => format!("failed: {}", e.lines().next().unwrap_or_default()),
                };
                let _ = writeln!(out, "| **{name}** | | {} | {} | |", state(r), state(c));
            }
        }
        for (who, result) in [("reference", &row.reference), ("chronicle", &row.chronicle)] {
            match result {
                Ok(r) => error_lines(&mut notes, &format!("{name} on {who}"), r),
                Err(e) => {
                    let _ = writeln!(notes, "- {name} on {who} failed: {e}");
                }
            }
        }
    }
    if !notes.is_empty() {
        out.push_str("\nErrors and anomalies:\n\n");
        out.push_str(&notes);
    }
    out
}

//! The long scenario: one workflow of thousands of sequential activities, to show that a
//! step costs the same at step 2,000 as at step 10, and what sticky execution saves: with it
//! a workflow task carries the new events only, without it the whole history.

use crate::driver::LoadArgs;
use crate::pass::{Pass, PassOutcome, run_pass};
use crate::scenario::Plan;
use crate::stats::{ErrorLog, Latencies};
use crate::worker::Step;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

/// The steps whose latency and history size the long scenario reports (with its last).
pub const CHECKPOINTS: [u32; 5] = [10, 100, 500, 1000, 2000];

#[derive(Debug, Clone)]
pub struct LongReport {
    pub steps_per_second: Option<f64>,
    pub sticky: Vec<Checkpoint>,
    pub non_sticky: Vec<Checkpoint>,
}

#[derive(Debug, Clone, Copy)]
pub struct Checkpoint {
    pub step: u32,
    /// Median of the ten steps ending here: one step is too noisy to show a trend.
    pub latency: Option<Duration>,
    pub history_bytes: Option<usize>,
}

pub fn long_pass(steps: u32, sticky: bool, args: &LoadArgs) -> Pass {
    let plan = Plan {
        activities: steps,
        timer: None,
        signals: 0,
    };
    let mut pass = Pass::new(plan, 1, 1, args);
    pass.sticky = sticky;
    pass.record_steps = true;
    // One workflow does all the work, so it gets the time of many.
    pass.timeout += Duration::from_millis(100) * steps;
    pass
}

/// The checkpoints of the long scenario's main (sticky unless --no-sticky) workflow, plus a
/// shorter non-sticky workflow for the full-history sizes.
pub async fn long_report(
    address: &str,
    args: &LoadArgs,
    main: &PassOutcome,
    errors: &Arc<ErrorLog>,
) -> anyhow::Result<LongReport> {
    let steps = args.long_steps;
    let steps_per_second = main
        .completions
        .first()
        .map(|&(_, latency)| steps as f64 / latency.as_secs_f64());
    let main_checkpoints = checkpoints(
        &main
            .stats
            .steps
            .lock()
            .unwrap_or_else(PoisonError::into_inner),
        steps,
    );
    let mut non_sticky = Vec::new();
    if !args.no_sticky && args.long_nonsticky_steps > 0 {
        let pass = long_pass(args.long_nonsticky_steps, false, args);
        let outcome = run_pass(address, &args.namespace, &pass, errors).await?;
        let samples = outcome
            .stats
            .steps
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        non_sticky = checkpoints(&samples, args.long_nonsticky_steps);
    }
    let (sticky, non_sticky) = if args.no_sticky {
        (Vec::new(), main_checkpoints)
    } else {
        (main_checkpoints, non_sticky)
    };
    Ok(LongReport {
        steps_per_second,
        sticky,
        non_sticky,
    })
}

/// The report's steps up to `steps`, and the last step itself.
fn checkpoint_steps(steps: u32) -> Vec<u32> {
    let mut at: Vec<u32> = CHECKPOINTS.into_iter().filter(|&k| k < steps).collect();
    at.push(steps);
    at
}

fn checkpoints(samples: &[Step], steps: u32) -> Vec<Checkpoint> {
    checkpoint_steps(steps)
        .into_iter()
        .map(|step| {
            let window = samples
                .iter()
                .filter(|s| s.step <= step && s.step + 10 > step);
            let latencies = window.filter_map(|s| s.latency).collect();
            Checkpoint {
                step,
                latency: Latencies::of(latencies).map(|l| l.p50),
                history_bytes: samples
                    .iter()
                    .find(|s| s.step == step)
                    .map(|s| s.history_bytes),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_end_at_the_last_step() {
        assert_eq!(checkpoint_steps(2000), vec![10, 100, 500, 1000, 2000]);
        assert_eq!(checkpoint_steps(300), vec![10, 100, 300]);
        assert_eq!(checkpoint_steps(5), vec![5]);
    }

    #[test]
    fn checkpoint_latency_is_the_median_of_ten_steps() {
        let samples: Vec<Step> = (0..=20)
            .map(|step| Step {
                step,
                latency: (step > 0).then(|| Duration::from_millis(step as u64)),
                history_bytes: 100 + step as usize,
            })
            .collect();
        let c = checkpoints(&samples, 20);
        assert_eq!(c[0].step, 10);
        // steps 1..=10 → the nearest-rank median is 5 ms
        assert_eq!(c[0].latency, Some(Duration::from_millis(5)));
        assert_eq!(c[0].history_bytes, Some(110));
        assert_eq!(c[1].step, 20);
        assert_eq!(c[1].latency, Some(Duration::from_millis(15)));
    }
}

//! Retry policies: Temporal's defaults and the backoff before the next attempt.

use chronicle_api::common::v1::RetryPolicy;
use chronicle_api::enums::v1::RetryState;
use chronicle_api::failure::v1::{Failure, failure::FailureInfo};
use chronicle_common::time;
use std::time::{Duration, SystemTime};

const DEFAULT_INITIAL_INTERVAL: Duration = Duration::from_secs(1);
const DEFAULT_BACKOFF_COEFFICIENT: f64 = 2.0;
/// The maximum interval defaults to this many initial intervals.
const DEFAULT_MAXIMUM_INTERVAL_FACTOR: u32 = 100;

/// Fills unset fields with Temporal's defaults, as the server does before recording a policy.
pub(crate) fn with_defaults(policy: Option<RetryPolicy>) -> RetryPolicy {
    let mut policy = policy.unwrap_or_default();
    let initial = interval(&policy.initial_interval).unwrap_or(DEFAULT_INITIAL_INTERVAL);
    policy.initial_interval = Some(time::duration(initial));
    if policy.backoff_coefficient < 1.0 {
        policy.backoff_coefficient = DEFAULT_BACKOFF_COEFFICIENT;
    }
    if interval(&policy.maximum_interval).is_none() {
        policy.maximum_interval = Some(time::duration(
            initial.saturating_mul(DEFAULT_MAXIMUM_INTERVAL_FACTOR),
        ));
    }
    policy
}

fn interval(d: &Option<chronicle_api::wkt::Duration>) -> Option<Duration> {
    time::optional_duration(d.as_ref(), "interval")
        .ok()
        .flatten()
}

/// Rejects what Temporal rejects in a retry policy.
pub(crate) fn validate(policy: &RetryPolicy) -> Result<(), String> {
    let field = |d: &Option<chronicle_api::wkt::Duration>, name: &str| {
        time::optional_duration(d.as_ref(), "interval")
            .map_err(|e| format!("invalid {name} set on retry policy: {}", e.fault))
    };
    let initial = field(&policy.initial_interval, "InitialInterval")?;
    let maximum = field(&policy.maximum_interval, "MaximumInterval")?;
    // NaN compares false with everything, so it is refused by name; infinity only means
    // "straight to the maximum interval".
    if policy.backoff_coefficient.is_nan() {
        return Err("BackoffCoefficient must be a number on retry policy.".into());
    }
    if policy.backoff_coefficient != 0.0 && policy.backoff_coefficient < 1.0 {
        return Err("BackoffCoefficient cannot be less than 1 on retry policy.".into());
    }
    if policy.maximum_attempts < 0 {
        return Err("MaximumAttempts cannot be negative on retry policy.".into());
    }
    if let (Some(initial), Some(maximum)) = (initial, maximum)
        && maximum < initial
    {
        return Err("MaximumInterval cannot be less than InitialInterval on retry policy.".into());
    }
    Ok(())
}

/// Whether a failure's own flags or type forbid a retry.
fn non_retryable(policy: &RetryPolicy, failure: Option<&Failure>) -> bool {
    let Some(failure) = failure else { return false };
    match &failure.failure_info {
        Some(FailureInfo::ApplicationFailureInfo(info)) => {
            info.non_retryable || policy.non_retryable_error_types.contains(&info.r#type)
        }
        Some(FailureInfo::ServerFailureInfo(info)) => info.non_retryable,
        Some(FailureInfo::TerminatedFailureInfo(_) | FailureInfo::CanceledFailureInfo(_)) => true,
        _ => false,
    }
}

/// The wait before attempt `attempt + 1`, or why there is none. `expiration` is the deadline
/// the next attempt must start before (schedule-to-close, workflow execution timeout).
pub(crate) fn next_backoff(
    policy: Option<&RetryPolicy>,
    attempt: i32,
    failure: Option<&Failure>,
    now: SystemTime,
    expiration: Option<SystemTime>,
) -> Result<Duration, RetryState> {
    let Some(policy) = policy else {
        return Err(RetryState::RetryPolicyNotSet);
    };
    if policy.maximum_attempts > 0 && attempt >= policy.maximum_attempts {
        return Err(RetryState::MaximumAttemptsReached);
    }
    if non_retryable(policy, failure) {
        return Err(RetryState::NonRetryableFailure);
    }
    let initial = interval(&policy.initial_interval).unwrap_or(DEFAULT_INITIAL_INTERVAL);
    let coefficient = policy.backoff_coefficient.max(1.0);
    let exponent = attempt.saturating_sub(1).clamp(0, 64);
    let mut backoff = initial.as_secs_f64() * coefficient.powi(exponent);
    if let Some(maximum) = interval(&policy.maximum_interval) {
        backoff = backoff.min(maximum.as_secs_f64());
    }
    let backoff = Duration::from_secs_f64(backoff.min(1e9));
    match expiration {
        Some(deadline) if time::after(now, backoff) >= deadline => Err(RetryState::Timeout),
        _ => Ok(backoff),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chronicle_api::failure::v1::ApplicationFailureInfo;

    fn policy(max_attempts: i32) -> RetryPolicy {
        RetryPolicy {
            initial_interval: Some(time::duration(Duration::from_secs(1))),
            backoff_coefficient: 2.0,
            maximum_interval: Some(time::duration(Duration::from_secs(5))),
            maximum_attempts: max_attempts,
            non_retryable_error_types: vec!["Fatal".into()],
        }
    }

    fn app_failure(kind: &str, non_retryable: bool) -> Failure {
        Failure {
            failure_info: Some(FailureInfo::ApplicationFailureInfo(
                ApplicationFailureInfo {
                    r#type: kind.into(),
                    non_retryable,
                    ..Default::default()
                },
            )),
            ..Default::default()
        }
    }

    #[test]
    fn backoff_grows_exponentially_up_to_the_maximum() {
        let p = policy(0);
        let now = SystemTime::now();
        let backoffs: Vec<_> = (1..=5)
            .map(|a| {
                next_backoff(Some(&p), a, None, now, None)
                    .unwrap()
                    .as_secs()
            })
            .collect();
        assert_eq!(backoffs, vec![1, 2, 4, 5, 5]);
    }

    #[test]
    fn retries_stop_for_the_documented_reasons() {
        let now = SystemTime::now();
        let p = policy(3);
        assert_eq!(
            next_backoff(None, 1, None, now, None),
            Err(RetryState::RetryPolicyNotSet)
        );
        assert_eq!(
            next_backoff(Some(&p), 3, None, now, None),
            Err(RetryState::MaximumAttemptsReached)
        );
        let fatal = app_failure("Fatal", false);
        assert_eq!(
            next_backoff(Some(&p), 1, Some(&fatal), now, None),
            Err(RetryState::NonRetryableFailure)
        );
        let flagged = app_failure("Other", true);
        assert_eq!(
            next_backoff(Some(&p), 1, Some(&flagged), now, None),
            Err(RetryState::NonRetryableFailure)
        );
        let soon = now + Duration::from_millis(500);
        assert_eq!(
            next_backoff(Some(&p), 1, None, now, Some(soon)),
            Err(RetryState::Timeout)
        );
        assert!(next_backoff(Some(&p), 2, Some(&app_failure("Other", false)), now, None).is_ok());
    }

    #[test]
    fn extreme_policies_back_off_without_overflow() {
        let p = RetryPolicy {
            initial_interval: Some(time::duration(Duration::from_secs(315_576_000_000))),
            backoff_coefficient: f64::INFINITY,
            maximum_interval: None,
            ..policy(0)
        };
        let now = time::end_of_time();
        assert_eq!(
            next_backoff(Some(&p), i32::MIN, None, now, Some(now)),
            Err(RetryState::Timeout)
        );
        assert!(next_backoff(Some(&p), i32::MAX, None, now, None).is_ok());
    }

    #[test]
    fn defaults_fill_unset_fields() {
        let p = with_defaults(None);
        assert_eq!(
            p.initial_interval,
            Some(time::duration(Duration::from_secs(1)))
        );
        assert_eq!(p.backoff_coefficient, 2.0);
        assert_eq!(
            p.maximum_interval,
            Some(time::duration(Duration::from_secs(100)))
        );
        assert!(validate(&p).is_ok());
        let refused = |p: RetryPolicy| validate(&p).unwrap_err();
        assert!(
            refused(RetryPolicy {
                backoff_coefficient: 0.5,
                ..p.clone()
            })
            .starts_with("BackoffCoefficient")
        );
        assert!(
            refused(RetryPolicy {
                backoff_coefficient: f64::NAN,
                ..p.clone()
            })
            .starts_with("BackoffCoefficient")
        );
        let huge = chronicle_api::wkt::Duration {
            seconds: i64::MAX,
            nanos: 0,
        };
        assert_eq!(
            refused(RetryPolicy {
                initial_interval: Some(huge),
                ..p
            }),
            "invalid InitialInterval set on retry policy: duration out of range"
        );
    }
}

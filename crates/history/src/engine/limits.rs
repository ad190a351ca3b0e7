//! Temporal's per-run limits as decisions over data: each check answers whether a request or
//! command stays within the namespace's `Limits`, and if not, the error Temporal gives for it.
//! The callers (commands, start, signal, updates) only gather the figures.

use crate::HistoryError;
use crate::engine::state::MutableState;
use chronicle_api::command::v1::command::Attributes as C;
use chronicle_api::common::v1::{Memo, Payloads, SearchAttributes};
use chronicle_api::enums::v1::{
    ResourceExhaustedCause, ResourceExhaustedScope, WorkflowTaskFailedCause as Cause,
};
use chronicle_api::workflowservice::StartWorkflowExecutionRequest;
use chronicle_common::config::Limits;
use prost::Message;

/// Work a run keeps pending, each kind bounded on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pending {
    Activities,
    Children,
    Signals,
    CancelRequests,
}

impl Pending {
    fn limit(self, limits: &Limits) -> usize {
        match self {
            Self::Activities => limits.pending_activities,
            Self::Children => limits.pending_children,
            Self::Signals => limits.pending_signals,
            Self::CancelRequests => limits.pending_cancel_requests,
        }
    }

    fn cause(self) -> Cause {
        match self {
            Self::Activities => Cause::PendingActivitiesLimitExceeded,
            Self::Children => Cause::PendingChildWorkflowsLimitExceeded,
            Self::Signals => Cause::PendingSignalsLimitExceeded,
            Self::CancelRequests => Cause::PendingRequestCancelLimitExceeded,
        }
    }

    fn what(self) -> &'static str {
        match self {
            Self::Activities => "pending activities",
            Self::Children => "pending child workflow executions",
            Self::Signals => "pending signals to external workflows",
            Self::CancelRequests => "pending requests to cancel external workflows",
        }
    }
}

/// Whether a command may add one more piece of pending work to the `pending` there are.
fn check_pending(kind: Pending, pending: usize, limits: &Limits) -> Result<(), HistoryError> {
    let limit = kind.limit(limits);
    if pending < limit {
        return Ok(());
    }
    tracing::error!(
        pending,
        limit,
        "{} reached the per-workflow limit",
        kind.what()
    );
    Err(HistoryError::BadCommand {
        cause: kind.cause(),
        message: format!(
            "{}: the number of {}, {pending}, has reached the per-workflow limit of {limit}",
            pascal(kind.cause()),
            kind.what()
        ),
    })
}

/// The cause as Temporal's messages name it: `PendingActivitiesLimitExceeded`.
pub(crate) fn pascal(cause: Cause) -> String {
    cause
        .as_str_name()
        .trim_start_matches("WORKFLOW_TASK_FAILED_CAUSE_")
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_string() + &chars.as_str().to_lowercase()
            })
        })
        .collect()
}

/// Whether the memo fits; warns above the warning size.
pub(crate) fn memo_fits(memo: Option<&Memo>, limits: &Limits) -> bool {
    let size = memo.map_or(0, |m| m.encoded_len()) as u64;
    if size > limits.memo_size_warn {
        tracing::warn!(
            size,
            limit = limits.memo_size_warn,
            "memo size exceeds the warning limit"
        );
    }
    size <= limits.memo_size_error
}

/// Temporal's message for a memo over the limit at start.
const MEMO_TOO_LARGE: &str = "Memo size exceeds limit.";

/// Checks a run's search attributes (after an upsert is merged) against the count, per-value
/// and total size limits; the message says which one failed, as Temporal's validator does.
pub(crate) fn check_search_attributes(
    attributes: &SearchAttributes,
    limits: &Limits,
) -> Result<(), String> {
    let count = attributes.indexed_fields.len();
    if count > limits.search_attributes_count {
        return Err(format!(
            "number of search attributes {count} exceeds limit {}",
            limits.search_attributes_count
        ));
    }
    for (name, value) in &attributes.indexed_fields {
        let size = value.data.len() as u64;
        if size > limits.search_attribute_value_size {
            return Err(format!(
                "search attribute {name} value size {size} exceeds size limit {}",
                limits.search_attribute_value_size
            ));
        }
    }
    let total = attributes.encoded_len() as u64;
    if total > limits.search_attributes_total_size {
        return Err(format!(
            "total size of search attributes {total} exceeds size limit {}",
            limits.search_attributes_total_size
        ));
    }
    Ok(())
}

/// A size limit a command breaks ends the run, as in Temporal; the message names the field.
pub(crate) fn too_large(cause: Cause, field: &str) -> HistoryError {
    HistoryError::RunLimitExceeded {
        cause,
        message: format!("{}: {field} exceeds size limit.", pascal(cause)),
    }
}

/// The payload set a command carries, the cause a too-large one fails the task with, and the
/// field as Temporal's message names it.
fn command_blob(command: &C) -> Option<(usize, Cause, &'static str)> {
    let size = |p: &Option<Payloads>| p.as_ref().map_or(0, Message::encoded_len);
    Some(match command {
        C::ScheduleActivityTaskCommandAttributes(a) => (
            size(&a.input),
            Cause::BadScheduleActivityAttributes,
            "ScheduleActivityTaskCommandAttributes.Input",
        ),
        C::CompleteWorkflowExecutionCommandAttributes(a) => (
            size(&a.result),
            Cause::BadCompleteWorkflowExecutionAttributes,
            "CompleteWorkflowExecutionCommandAttributes.Result",
        ),
        C::FailWorkflowExecutionCommandAttributes(a) => (
            a.failure.as_ref().map_or(0, Message::encoded_len),
            Cause::BadFailWorkflowExecutionAttributes,
            "FailWorkflowExecutionCommandAttributes.Failure",
        ),
        C::CancelWorkflowExecutionCommandAttributes(a) => (
            size(&a.details),
            Cause::BadCancelWorkflowExecutionAttributes,
            "CancelWorkflowExecutionCommandAttributes.Details",
        ),
        C::RecordMarkerCommandAttributes(a) => (
            a.details.values().map(Message::encoded_len).sum(),
            Cause::BadRecordMarkerAttributes,
            "RecordMarkerCommandAttributes.Details",
        ),
        C::StartChildWorkflowExecutionCommandAttributes(a) => (
            size(&a.input),
            Cause::BadStartChildExecutionAttributes,
            "StartChildWorkflowExecutionCommandAttributes.Input",
        ),
        C::SignalExternalWorkflowExecutionCommandAttributes(a) => (
            size(&a.input),
            Cause::BadSignalWorkflowExecutionAttributes,
            "SignalExternalWorkflowExecutionCommandAttributes.Input",
        ),
        C::ContinueAsNewWorkflowExecutionCommandAttributes(a) => (
            size(&a.input),
            Cause::BadContinueAsNewAttributes,
            "ContinueAsNewWorkflowExecutionCommandAttributes.Input",
        ),
        _ => return None,
    })
}

/// The pending work a command adds, if any.
fn command_pending(command: &C) -> Option<Pending> {
    match command {
        C::ScheduleActivityTaskCommandAttributes(_) => Some(Pending::Activities),
        C::StartChildWorkflowExecutionCommandAttributes(_) => Some(Pending::Children),
        C::SignalExternalWorkflowExecutionCommandAttributes(_) => Some(Pending::Signals),
        C::RequestCancelExternalWorkflowExecutionCommandAttributes(_) => {
            Some(Pending::CancelRequests)
        }
        _ => None,
    }
}

fn pending_count(kind: Pending, state: &MutableState) -> usize {
    let external = |cancel: bool| {
        state
            .external_requests
            .values()
            .filter(|r| r.cancel == cancel)
            .count()
    };
    match kind {
        Pending::Activities => state.activities.len(),
        Pending::Children => state.children.len(),
        Pending::Signals => external(false),
        Pending::CancelRequests => external(true),
    }
}

/// Whether a command fits the run's pending-work and payload limits, given the state the
/// commands before it left.
pub(crate) fn check_command(
    command: &C,
    state: &MutableState,
    limits: &Limits,
) -> Result<(), HistoryError> {
    if let Some((size, cause, field)) = command_blob(command)
        && !limits.blob_fits(size, &state.info().namespace_name, field)
    {
        return Err(too_large(cause, field));
    }
    match command_pending(command) {
        Some(kind) => check_pending(kind, pending_count(kind, state), limits),
        None => Ok(()),
    }
}

/// A limit on a run's growth (its history, its mutable state) that, once crossed, ends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HistoryLimit {
    Count,
    Size,
    StateSize,
}

impl HistoryLimit {
    /// The termination reason Temporal writes.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Count => "Workflow history count exceeds limit.",
            Self::Size => "Workflow history size exceeds limit.",
            Self::StateSize => "Workflow mutable state size exceeds limit.",
        }
    }
}

/// Which history limit `count` events of `size` bytes cross, if any.
pub(crate) fn history_exceeded(count: u64, size: u64, limits: &Limits) -> Option<HistoryLimit> {
    if count > limits.history_count_error {
        Some(HistoryLimit::Count)
    } else if size > limits.history_size_error {
        Some(HistoryLimit::Size)
    } else {
        None
    }
}

/// Logs a history past the warning thresholds; called once per workflow task, not per event,
/// so a big history does not flood the log.
pub(crate) fn warn_if_history_large(count: u64, size: u64, limits: &Limits) {
    if count > limits.history_count_warn || size > limits.history_size_warn {
        tracing::warn!(
            count,
            size,
            "history count or size exceeds the warning limit"
        );
    }
}

/// Whether a mutable state of `size` encoded bytes is over its limit.
pub(crate) fn state_exceeded(size: usize, limits: &Limits) -> Option<HistoryLimit> {
    (size as u64 > limits.mutable_state_size_error).then_some(HistoryLimit::StateSize)
}

/// Whether the run may take one more signal from a client. A run whose history is over a
/// limit takes no more signals either, as in Temporal.
pub(crate) fn may_signal(state: &MutableState, limits: &Limits) -> Result<(), HistoryError> {
    let count = state.next_event_id as u64 - 1;
    let size = state.history_size_bytes as u64;
    if let Some(limit) = history_exceeded(count, size, limits) {
        return Err(HistoryError::InvalidArgument(limit.reason().into()));
    }
    check_signal_count(state.info().signal_count, limits)
}

/// A start request's memo and search attributes against the namespace's limits.
pub(crate) fn check_start(
    request: &StartWorkflowExecutionRequest,
    limits: &Limits,
) -> Result<(), HistoryError> {
    check_memo_and_attributes(
        request.memo.as_ref(),
        request.search_attributes.as_ref(),
        limits,
    )
}

/// A memo and search attributes a run would start with, against the namespace's limits.
pub(crate) fn check_memo_and_attributes(
    memo: Option<&Memo>,
    attributes: Option<&SearchAttributes>,
    limits: &Limits,
) -> Result<(), HistoryError> {
    if !memo_fits(memo, limits) {
        return Err(HistoryError::InvalidArgument(MEMO_TOO_LARGE.into()));
    }
    match attributes.map(|s| check_search_attributes(s, limits)) {
        Some(Err(message)) => Err(HistoryError::InvalidArgument(message)),
        _ => Ok(()),
    }
}

/// Whether a run that received `received` signals may take one more.
fn check_signal_count(received: u64, limits: &Limits) -> Result<(), HistoryError> {
    if received < limits.signals_per_execution {
        return Ok(());
    }
    Err(HistoryError::InvalidArgument(
        "exceeded workflow execution limit for signal events".into(),
    ))
}

/// Whether a run with `in_flight` updates not yet completed and `total` updates in its life
/// may admit another.
pub(crate) fn check_update_admission(
    in_flight: usize,
    total: usize,
    limits: &Limits,
) -> Result<(), HistoryError> {
    if in_flight >= limits.updates_in_flight {
        return Err(HistoryError::ResourceExhausted {
            cause: ResourceExhaustedCause::ConcurrentLimit,
            scope: ResourceExhaustedScope::Namespace,
            message: format!(
                "limit on number of concurrent in-flight updates has been reached ({})",
                limits.updates_in_flight
            ),
        });
    }
    if total >= limits.updates_per_run {
        return Err(HistoryError::FailedPrecondition(format!(
            "The limit on the total number of distinct updates in this workflow has been reached ({}). Make sure any duplicate updates share an Update ID so the server can deduplicate them, and consider rejecting updates that you aren't going to process. You can also Continue-as-New to avoid this; we recommend you check Continue-as-New Suggested in your Workflow.",
            limits.updates_per_run
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chronicle_api::common::v1::Payload;

    fn limits() -> Limits {
        Limits {
            pending_activities: 3,
            memo_size_error: 100,
            search_attributes_count: 2,
            search_attribute_value_size: 10,
            search_attributes_total_size: 30,
            history_count_error: 10,
            history_size_error: 1000,
            signals_per_execution: 2,
            updates_in_flight: 1,
            updates_per_run: 2,
            ..Limits::default()
        }
    }

    #[test]
    fn pending_work_stops_at_the_limit_with_its_cause() {
        assert!(check_pending(Pending::Activities, 2, &limits()).is_ok());
        let Err(HistoryError::BadCommand { cause, message }) =
            check_pending(Pending::Activities, 3, &limits())
        else {
            panic!("over the limit must fail the task");
        };
        assert_eq!(cause, Cause::PendingActivitiesLimitExceeded);
        assert_eq!(
            message,
            "PendingActivitiesLimitExceeded: the number of pending activities, 3, has reached the per-workflow limit of 3"
        );
        assert_eq!(
            pascal(Pending::CancelRequests.cause()),
            "PendingRequestCancelLimitExceeded"
        );
    }

    #[test]
    fn commands_are_checked_against_the_state_they_find() {
        use crate::engine::state::ActivityInfo;
        use chronicle_api::command::v1::ScheduleActivityTaskCommandAttributes;
        let schedule = |size: usize| {
            C::ScheduleActivityTaskCommandAttributes(ScheduleActivityTaskCommandAttributes {
                input: Some(Payloads {
                    payloads: vec![Payload {
                        data: vec![0; size],
                        ..Default::default()
                    }],
                }),
                ..Default::default()
            })
        };
        // A stored state always has its execution info.
        let mut state = MutableState {
            info: Some(Default::default()),
            ..Default::default()
        };
        assert!(check_command(&schedule(10), &state, &limits()).is_ok());
        state.activities = (0..3).map(|id| (id, ActivityInfo::default())).collect();
        assert!(matches!(
            check_command(&schedule(10), &state, &limits()),
            Err(HistoryError::BadCommand {
                cause: Cause::PendingActivitiesLimitExceeded,
                ..
            })
        ));
        let over = limits().blob_size_error as usize;
        let Err(HistoryError::RunLimitExceeded { cause, message }) =
            check_command(&schedule(over), &state, &limits())
        else {
            panic!("an input over the blob limit ends the run");
        };
        assert_eq!(cause, Cause::BadScheduleActivityAttributes);
        assert_eq!(
            message,
            "BadScheduleActivityAttributes: ScheduleActivityTaskCommandAttributes.Input exceeds size limit."
        );
    }

    fn attributes(values: &[(&str, usize)]) -> SearchAttributes {
        let field = |size| Payload {
            data: vec![b'x'; size],
            ..Default::default()
        };
        SearchAttributes {
            indexed_fields: values
                .iter()
                .map(|(name, size)| (name.to_string(), field(*size)))
                .collect(),
        }
    }

    #[test]
    fn search_attributes_are_bounded_by_count_value_and_total() {
        assert!(check_search_attributes(&attributes(&[("a", 10)]), &limits()).is_ok());
        let err = check_search_attributes(&attributes(&[("a", 1), ("b", 1), ("c", 1)]), &limits());
        assert!(
            err.unwrap_err()
                .starts_with("number of search attributes 3")
        );
        let err = check_search_attributes(&attributes(&[("a", 11)]), &limits());
        assert!(
            err.unwrap_err()
                .contains("search attribute a value size 11")
        );
        let err = check_search_attributes(&attributes(&[("a", 10), ("b", 10)]), &limits());
        assert!(
            err.unwrap_err()
                .starts_with("total size of search attributes")
        );
    }

    #[test]
    fn memo_over_its_size_does_not_fit() {
        let memo = |size| Memo {
            fields: [(
                "m".to_string(),
                Payload {
                    data: vec![0; size],
                    ..Default::default()
                },
            )]
            .into(),
        };
        assert!(memo_fits(None, &limits()));
        assert!(memo_fits(Some(&memo(50)), &limits()));
        assert!(!memo_fits(Some(&memo(100)), &limits()));
    }

    #[test]
    fn history_past_either_limit_names_it() {
        assert_eq!(history_exceeded(10, 1000, &limits()), None);
        assert_eq!(
            history_exceeded(11, 0, &limits()),
            Some(HistoryLimit::Count)
        );
        assert_eq!(
            history_exceeded(1, 1001, &limits()),
            Some(HistoryLimit::Size)
        );
    }

    #[test]
    fn signals_and_updates_stop_at_their_limits() {
        assert!(check_signal_count(1, &limits()).is_ok());
        assert!(matches!(
            check_signal_count(2, &limits()),
            Err(HistoryError::InvalidArgument(_))
        ));
        assert!(check_update_admission(0, 1, &limits()).is_ok());
        assert!(matches!(
            check_update_admission(1, 1, &limits()),
            Err(HistoryError::ResourceExhausted { .. })
        ));
        assert!(matches!(
            check_update_admission(0, 2, &limits()),
            Err(HistoryError::FailedPrecondition(_))
        ));
    }
}

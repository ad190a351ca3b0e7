//! Workflow updates in the engine: the worker's acceptance and response messages as
//! history events, and the updates pending in memory as a change sees them.

use crate::engine::change::Change;
use crate::engine::effects::{Progress, UpdateEffect};
use crate::{HistoryError, Result};
use chronicle_api::failure::v1::failure::FailureInfo;
use chronicle_api::failure::v1::{ApplicationFailureInfo, Failure};
use chronicle_api::history::v1::{
    WorkflowExecutionUpdateAcceptedEventAttributes, WorkflowExecutionUpdateCompletedEventAttributes,
};
use chronicle_api::protocol::v1::{Message, message::SequencingId};
use chronicle_api::update::v1::{
    Acceptance, Outcome, Rejection, Request, Response, UpdateRef, outcome,
};
use chronicle_api::wkt::Any;
use chronicle_api::workflowservice::UpdateWorkflowExecutionResponse;
use chronicle_common::ExecutionKey;
use prost::{Message as _, Name};
use std::collections::HashMap;

/// Past the memory bound every new update is refused, whatever its run.
pub(crate) fn registry_full(max_bytes: u64) -> HistoryError {
    HistoryError::overloaded(format!(
        "updates in flight on this node exceed {max_bytes} bytes"
    ))
}

pub(crate) fn update_id(request: &Request) -> String {
    request
        .meta
        .as_ref()
        .map(|m| m.update_id.clone())
        .unwrap_or_default()
}

/// An accepted update whose run closed before the update completed, as Temporal fails it.
pub(crate) fn aborted_by_close() -> Outcome {
    failed(Failure {
        message:
            "Workflow Update failed because the Workflow completed before the Update completed."
                .into(),
        source: "Server".into(),
        failure_info: Some(FailureInfo::ApplicationFailureInfo(
            ApplicationFailureInfo {
                r#type: "AcceptedUpdateCompletedWorkflow".into(),
                non_retryable: true,
                ..Default::default()
            },
        )),
        ..Default::default()
    })
}

pub(crate) fn failed(failure: Failure) -> Outcome {
    Outcome {
        value: Some(outcome::Value::Failure(failure)),
    }
}

pub(crate) fn any<M: prost::Message + Name>(message: &M) -> Any {
    Any {
        type_url: format!("type.googleapis.com/{}", M::full_name()),
        value: message.encode_to_vec(),
    }
}

/// Bytes of update requests one workflow task carries beside its history page, so the poll
/// response stays under the gRPC message limit.
pub(crate) const REQUESTS_PER_TASK_BYTES: usize = chronicle_common::limits::HISTORY_PAGE_BYTES / 2;

/// A run's updates held in memory (admitted, or accepted and not yet completed), as they
/// stood when a change began.
#[derive(Clone, Debug, Default)]
pub(crate) struct PendingUpdates {
    pub requests: HashMap<String, Request>,
    /// Ids of the updates the worker has not decided on yet.
    pub undecided: Vec<String>,
}

impl PendingUpdates {
    fn request(&self, update_id: &str) -> Option<Request> {
        self.requests.get(update_id).cloned()
    }

    /// Updates the worker has not decided on, other than those this change decides: they
    /// need another workflow task.
    pub fn waiting_for_worker(&self, change: &Change) -> bool {
        self.undecided
            .iter()
            .any(|id| !change.update_effects.iter().any(|e| &e.update_id == id))
    }
}

/// The protocol messages that carry undecided requests to the worker with a workflow task:
/// as many as fit `REQUESTS_PER_TASK_BYTES` (at least one); the rest ride with the next task,
/// which the worker's completion schedules while updates wait.
pub(crate) fn request_messages(requests: Vec<Request>, started_event_id: i64) -> Vec<Message> {
    let mut budget = REQUESTS_PER_TASK_BYTES;
    requests
        .into_iter()
        .enumerate()
        .take_while(|(index, request)| {
            let size = request.encoded_len();
            let fits = *index == 0 || size <= budget;
            budget = budget.saturating_sub(size);
            fits
        })
        .map(|(_, request)| {
            let id = update_id(&request);
            Message {
                id: format!("{id}/request"),
                protocol_instance_id: id,
                sequencing_id: Some(SequencingId::EventId(started_event_id - 1)),
                body: Some(any(&request)),
            }
        })
        .collect()
}

impl Change {
    /// Applies one protocol message from a completed workflow task.
    pub fn apply_update_message(
        &mut self,
        updates: &PendingUpdates,
        message: Message,
    ) -> Result<()> {
        let body = message.body.unwrap_or_default();
        let bad = |what: &str| HistoryError::BadCommand {
            cause:
                chronicle_api::enums::v1::WorkflowTaskFailedCause::BadUpdateWorkflowExecutionMessage,
            message: format!("invalid update {what} message {}", message.id),
        };
        let update_id = message.protocol_instance_id;
        let progress = if body.type_url.ends_with(Acceptance::full_name().as_str()) {
            let a = Acceptance::decode(body.value.as_slice()).map_err(|_| bad("acceptance"))?;
            let accepted_request = a.accepted_request.or_else(|| updates.request(&update_id));
            let event_id = self.append(WorkflowExecutionUpdateAcceptedEventAttributes {
                protocol_instance_id: update_id.clone(),
                accepted_request_message_id: a.accepted_request_message_id,
                accepted_request_sequencing_event_id: a.accepted_request_sequencing_event_id,
                accepted_request,
            });
            self.state
                .updates
                .entry(update_id.clone())
                .or_default()
                .accepted_event_id = event_id;
            Progress::Accepted
        } else if body.type_url.ends_with(Response::full_name().as_str()) {
            let r = Response::decode(body.value.as_slice()).map_err(|_| bad("response"))?;
            let accepted_event_id = self
                .state
                .updates
                .get(&update_id)
                .map_or(0, |u| u.accepted_event_id);
            let outcome = r.outcome.unwrap_or_default();
            let event_id = self.append(WorkflowExecutionUpdateCompletedEventAttributes {
                meta: r.meta,
                accepted_event_id,
                outcome: Some(outcome.clone()),
            });
            self.state
                .updates
                .entry(update_id.clone())
                .or_default()
                .completed_event_id = event_id;
            Progress::Completed(Box::new(outcome))
        } else if body.type_url.ends_with(Rejection::full_name().as_str()) {
            let r = Rejection::decode(body.value.as_slice()).map_err(|_| bad("rejection"))?;
            Progress::Completed(Box::new(failed(r.failure.unwrap_or_default())))
        } else {
            return Err(bad("unknown"));
        };
        self.update_effects.push(UpdateEffect {
            update_id,
            progress,
        });
        Ok(())
    }
}

pub(crate) fn response(
    key: &ExecutionKey,
    update_id: String,
    progress: Progress,
) -> UpdateWorkflowExecutionResponse {
    let stage = progress.stage() as i32;
    let outcome = match progress {
        Progress::Completed(outcome) => Some(*outcome),
        _ => None,
    };
    let update_ref = Some(UpdateRef {
        workflow_execution: Some(key.execution()),
        update_id,
    });
    UpdateWorkflowExecutionResponse {
        update_ref,
        outcome,
        stage,
        ..Default::default()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chronicle_api::common::v1::{Payload, Payloads};
    use chronicle_api::update::v1::{Input, Meta};

    pub(crate) fn request(id: &str, size: usize) -> Request {
        let data = vec![0; size];
        Request {
            meta: Some(Meta {
                update_id: id.into(),
                ..Default::default()
            }),
            input: Some(Input {
                args: Some(Payloads {
                    payloads: vec![Payload {
                        data,
                        ..Default::default()
                    }],
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_task_carries_requests_up_to_its_budget_and_always_one() {
        let half = REQUESTS_PER_TASK_BYTES / 2;
        let big = vec![request("a", half), request("b", half), request("c", half)];
        assert_eq!(request_messages(big, 3).len(), 1);
        let huge = vec![request("a", REQUESTS_PER_TASK_BYTES * 2)];
        assert_eq!(request_messages(huge, 3).len(), 1);
        let small = (0..5).map(|i| request(&i.to_string(), 10)).collect();
        assert_eq!(request_messages(small, 3).len(), 5);
    }
}

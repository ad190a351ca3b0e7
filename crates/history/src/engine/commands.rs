//! The commands a worker sends with a completed workflow task, applied in order. A command
//! that is invalid fails the whole workflow task (nothing any command did is kept).

use crate::engine::attributes::AttributeTypes;
use crate::engine::change::Change;
use crate::engine::close::Closing;
use crate::engine::limits;
use crate::engine::updates::PendingUpdates;
use crate::{HistoryError, Result};
use chronicle_api::command::v1::{Command, command::Attributes as C};
use chronicle_api::common::v1::{Memo, SearchAttributes};
use chronicle_api::enums::v1::WorkflowTaskFailedCause as Cause;
use chronicle_api::history::v1::{
    ActivityTaskCancelRequestedEventAttributes, MarkerRecordedEventAttributes,
    UpsertWorkflowSearchAttributesEventAttributes, WorkflowExecutionStartedEventAttributes,
    WorkflowPropertiesModifiedEventAttributes,
};
use chronicle_api::protocol::v1::Message;
use chronicle_common::config::Limits;

/// A completed workflow task's commands and the protocol messages (update acceptances,
/// responses, rejections) they point at.
pub(crate) struct Commands {
    commands: Vec<Command>,
    messages: Vec<Message>,
}

/// What applying a batch needs from outside the run, read by the service first.
pub(crate) struct Inputs {
    pub limits: Limits,
    /// The namespace's types of the search attributes the commands name.
    pub attribute_types: AttributeTypes,
    /// The run's started event, when the batch may start the chain's next run.
    pub first_event: Option<WorkflowExecutionStartedEventAttributes>,
    pub updates: PendingUpdates,
}

/// What applying the commands asks of the completion beyond their events.
#[derive(Default)]
pub(crate) struct Outcome {
    /// The commands produced events the workflow has not seen (an activity canceled before it
    /// started), so another workflow task is due.
    pub needs_workflow_task: bool,
    /// The run that a retry of this one starts, to commit with it.
    pub successor: Option<Change>,
    /// Activities the worker asked to run itself (eager execution), by scheduled event id.
    pub eager_activities: Vec<i64>,
}

/// Most activities one workflow task completion hands back to its worker, so that its
/// response stays small (the SDKs ask only for what they have slots for).
const MAX_EAGER_ACTIVITIES: usize = 8;

fn closes(attributes: &C) -> bool {
    matches!(
        attributes,
        C::CompleteWorkflowExecutionCommandAttributes(_)
            | C::FailWorkflowExecutionCommandAttributes(_)
            | C::CancelWorkflowExecutionCommandAttributes(_)
            | C::ContinueAsNewWorkflowExecutionCommandAttributes(_)
    )
}

fn bad(cause: Cause, message: impl Into<String>) -> HistoryError {
    HistoryError::BadCommand {
        cause,
        message: message.into(),
    }
}

/// Nexus operations are not supported yet; they fail the task with a message saying so.
fn unsupported(attributes: &C) -> HistoryError {
    let name = match attributes {
        C::ScheduleNexusOperationCommandAttributes(_) => "ScheduleNexusOperation",
        C::RequestCancelNexusOperationCommandAttributes(_) => "RequestCancelNexusOperation",
        _ => "this command",
    };
    bad(
        Cause::Unspecified,
        format!("{name} is not supported by Chronicle yet"),
    )
}

impl Commands {
    pub fn new(commands: Vec<Command>, messages: Vec<Message>) -> Self {
        Self { commands, messages }
    }

    pub fn closes_run(&self) -> bool {
        self.commands
            .iter()
            .filter_map(|c| c.attributes.as_ref())
            .any(closes)
    }

    /// The search attributes the commands name, whose types the batch needs.
    pub fn attribute_names(&self) -> impl Iterator<Item = &String> + Clone {
        self.commands
            .iter()
            .filter_map(|c| match c.attributes.as_ref()? {
                C::UpsertWorkflowSearchAttributesCommandAttributes(a) => {
                    a.search_attributes.as_ref()
                }
                C::StartChildWorkflowExecutionCommandAttributes(a) => a.search_attributes.as_ref(),
                C::ContinueAsNewWorkflowExecutionCommandAttributes(a) => {
                    a.search_attributes.as_ref()
                }
                _ => None,
            })
            .flat_map(|s| s.indexed_fields.keys())
    }

    /// How the batch closes the run, if its last command does (as `Closing` tells of what the
    /// close needs; the payloads are left out).
    pub fn closing(&self) -> Option<Closing> {
        match self.commands.last()?.attributes.as_ref()? {
            C::CompleteWorkflowExecutionCommandAttributes(_) => Some(Closing::Completed(None)),
            C::FailWorkflowExecutionCommandAttributes(_) => Some(Closing::Failed(Box::default())),
            C::CancelWorkflowExecutionCommandAttributes(_) => Some(Closing::Canceled(None)),
            C::ContinueAsNewWorkflowExecutionCommandAttributes(_) => {
                Some(Closing::ContinuedAsNew(Box::default()))
            }
            _ => None,
        }
    }

    pub fn apply(
        mut self,
        change: &mut Change,
        inputs: &Inputs,
        completed_event_id: i64,
        identity: &str,
    ) -> Result<Outcome> {
        let mut outcome = Outcome::default();
        let limits = &inputs.limits;
        // History written before this task: events of this task are sized only once written.
        let size_before = change.state.history_size_bytes as u64;
        if let Some(limit) =
            limits::state_exceeded(prost::Message::encoded_len(&change.state), limits)
        {
            return Err(HistoryError::HistoryLimitExceeded(limit));
        }
        limits::warn_if_history_large(change.state.next_event_id as u64 - 1, size_before, limits);
        let commands = std::mem::take(&mut self.commands);
        let last = commands.len().saturating_sub(1);
        for (index, command) in commands.into_iter().enumerate() {
            let attributes = command
                .attributes
                .ok_or_else(|| bad(Cause::Unspecified, "Command attributes are not set."))?;
            if closes(&attributes) && index != last {
                return Err(bad(
                    Cause::UnhandledCommand,
                    "A command that closes the workflow must be the last command.",
                ));
            }
            let count = change.state.next_event_id as u64 - 1;
            if let Some(limit) = limits::history_exceeded(count, size_before, limits) {
                return Err(HistoryError::HistoryLimitExceeded(limit));
            }
            limits::check_command(&attributes, &change.state, limits)?;
            // The event a command writes first carries its summary; a close carries none.
            change.event_metadata = (!closes(&attributes))
                .then_some(command.user_metadata)
                .flatten();
            let closing = match attributes {
                C::ScheduleActivityTaskCommandAttributes(a) => {
                    let eager = a.request_eager_execution;
                    let scheduled = change.schedule_activity(a, completed_event_id)?;
                    // Only the worker's own queue: it polls that one, and may run the task.
                    let own_queue = change
                        .state
                        .activities
                        .get(&scheduled)
                        .is_some_and(|ai| ai.task_queue == change.info().task_queue);
                    if eager && own_queue && outcome.eager_activities.len() < MAX_EAGER_ACTIVITIES {
                        outcome.eager_activities.push(scheduled);
                    }
                    None
                }
                C::RequestCancelActivityTaskCommandAttributes(a) => {
                    outcome.needs_workflow_task |=
                        request_cancel_activity(change, a.scheduled_event_id, completed_event_id)?;
                    None
                }
                C::ProtocolMessageCommandAttributes(a) => {
                    let at = self.messages.iter().position(|m| m.id == a.message_id);
                    let message = at.map(|i| self.messages.remove(i)).ok_or_else(|| {
                        bad(
                            Cause::BadUpdateWorkflowExecutionMessage,
                            format!(
                                "ProtocolMessageCommand names unknown message {}",
                                a.message_id
                            ),
                        )
                    })?;
                    change.apply_update_message(&inputs.updates, message)?;
                    None
                }
                C::StartTimerCommandAttributes(a) => {
                    change.start_timer(a, completed_event_id)?;
                    None
                }
                C::CancelTimerCommandAttributes(a) => {
                    change.cancel_timer(a, completed_event_id, identity)?;
                    None
                }
                C::RecordMarkerCommandAttributes(a) => {
                    if a.marker_name.is_empty() {
                        return Err(bad(
                            Cause::BadRecordMarkerAttributes,
                            "MarkerName is not set on RecordMarkerCommand.",
                        ));
                    }
                    change.append(MarkerRecordedEventAttributes {
                        marker_name: a.marker_name,
                        details: a.details,
                        workflow_task_completed_event_id: completed_event_id,
                        header: a.header,
                        failure: a.failure,
                    });
                    None
                }
                C::UpsertWorkflowSearchAttributesCommandAttributes(a) => {
                    let attributes = typed(&inputs.attribute_types, a.search_attributes)?;
                    upsert_search_attributes(change, attributes, completed_event_id, limits)?;
                    None
                }
                C::ModifyWorkflowPropertiesCommandAttributes(a) => {
                    upsert_memo(change, a.upserted_memo, completed_event_id, limits)?;
                    None
                }
                C::CompleteWorkflowExecutionCommandAttributes(a) => {
                    Some(Closing::Completed(a.result))
                }
                C::FailWorkflowExecutionCommandAttributes(a) => {
                    Some(Closing::Failed(Box::new(a.failure.unwrap_or_default())))
                }
                C::CancelWorkflowExecutionCommandAttributes(a) => {
                    Some(Closing::Canceled(a.details))
                }
                C::StartChildWorkflowExecutionCommandAttributes(mut a) => {
                    a.search_attributes = typed(&inputs.attribute_types, a.search_attributes)?;
                    new_run_fields(
                        Cause::BadStartChildExecutionAttributes,
                        "StartChildWorkflowExecutionCommandAttributes",
                        a.memo.as_ref(),
                        a.search_attributes.as_ref(),
                        limits,
                    )?;
                    change.initiate_child(a, completed_event_id)?;
                    None
                }
                C::SignalExternalWorkflowExecutionCommandAttributes(a) => {
                    change.initiate_signal_external(a, completed_event_id)?;
                    None
                }
                C::RequestCancelExternalWorkflowExecutionCommandAttributes(a) => {
                    change.initiate_cancel_external(a, completed_event_id)?;
                    None
                }
                C::ContinueAsNewWorkflowExecutionCommandAttributes(mut a) => {
                    a.search_attributes = typed(&inputs.attribute_types, a.search_attributes)?;
                    new_run_fields(
                        Cause::BadContinueAsNewAttributes,
                        "ContinueAsNewWorkflowExecutionCommandAttributes",
                        a.memo.as_ref(),
                        a.search_attributes.as_ref(),
                        limits,
                    )?;
                    Some(Closing::ContinuedAsNew(Box::new(a)))
                }
                other => return Err(unsupported(&other)),
            };
            change.event_metadata = None;
            if let Some(closing) = closing {
                // Messages no command points at (rejections) are applied before the close.
                self.apply_messages(change, &inputs.updates)?;
                let first = inputs.first_event.as_ref();
                outcome.successor = change.close_run(closing, completed_event_id, first)?;
            }
        }
        self.apply_messages(change, &inputs.updates)?;
        Ok(outcome)
    }
}

impl Commands {
    fn apply_messages(&mut self, change: &mut Change, updates: &PendingUpdates) -> Result<()> {
        for message in std::mem::take(&mut self.messages) {
            change.apply_update_message(updates, message)?;
        }
        Ok(())
    }
}

/// A started activity is asked to stop (through its heartbeats); one that has not started is
/// canceled at once. Answers whether that produced an event the workflow must see.
fn request_cancel_activity(
    change: &mut Change,
    scheduled_event_id: i64,
    completed_event_id: i64,
) -> Result<bool> {
    let ai = change.state.activities.get(&scheduled_event_id).cloned().ok_or_else(|| {
        bad(
            Cause::BadRequestCancelActivityAttributes,
            format!("invalid history builder state for action: add-activitytask-cancel-requested-event, scheduled event id {scheduled_event_id} is not a pending activity"),
        )
    })?;
    let requested = change.append(ActivityTaskCancelRequestedEventAttributes {
        scheduled_event_id,
        workflow_task_completed_event_id: completed_event_id,
    });
    if let Some(state) = change.state.activities.get_mut(&scheduled_event_id) {
        state.cancel_requested = true;
        state.cancel_requested_event_id = requested;
    }
    if ai.is_started() {
        return Ok(false);
    }
    let ai = change.state.activities[&scheduled_event_id].clone();
    change.cancel_unstarted_activity(&ai);
    Ok(true)
}

/// Stamps the attributes a command carries with their types; a bad one fails the task.
fn typed(
    types: &AttributeTypes,
    attributes: Option<SearchAttributes>,
) -> Result<Option<SearchAttributes>> {
    let Some(attributes) = attributes else {
        return Ok(None);
    };
    match types.stamp(attributes) {
        Ok(typed) => Ok(Some(typed)),
        Err(message) => Err(bad(
            Cause::BadSearchAttributes,
            format!("BadSearchAttributes: {message}"),
        )),
    }
}

/// A run a command starts (child, continue-as-new) gets the limits a start request gets.
fn new_run_fields(
    cause: Cause,
    command: &str,
    memo: Option<&Memo>,
    search_attributes: Option<&SearchAttributes>,
    limits: &Limits,
) -> Result<()> {
    if !limits::memo_fits(memo, limits) {
        return Err(limits::too_large(cause, &format!("{command}.Memo")));
    }
    match search_attributes.map(|s| limits::check_search_attributes(s, limits)) {
        Some(Err(message)) => Err(bad(cause, format!("{}: {message}", limits::pascal(cause)))),
        _ => Ok(()),
    }
}

fn upsert_search_attributes(
    change: &mut Change,
    upsert: Option<SearchAttributes>,
    completed_event_id: i64,
    limits: &Limits,
) -> Result<()> {
    let upsert = upsert
        .filter(|s| !s.indexed_fields.is_empty())
        .ok_or_else(|| {
            bad(
                Cause::BadSearchAttributes,
                "SearchAttributes is not set on UpsertWorkflowSearchAttributesCommand.",
            )
        })?;
    let current = change
        .state
        .info_mut()
        .search_attributes
        .get_or_insert_with(Default::default);
    let mut merged = current.clone();
    crate::engine::state::merge_search_attributes(&mut merged, &upsert);
    limits::check_search_attributes(&merged, limits).map_err(|message| {
        bad(
            Cause::BadSearchAttributes,
            format!("BadSearchAttributes: {message}"),
        )
    })?;
    *current = merged;
    change.touch_search_attributes();
    change.append(UpsertWorkflowSearchAttributesEventAttributes {
        workflow_task_completed_event_id: completed_event_id,
        search_attributes: Some(upsert),
    });
    Ok(())
}

fn upsert_memo(
    change: &mut Change,
    upsert: Option<Memo>,
    completed_event_id: i64,
    limits: &Limits,
) -> Result<()> {
    if !limits::memo_fits(upsert.as_ref(), limits) {
        return Err(HistoryError::RunLimitExceeded {
            cause: Cause::BadModifyWorkflowPropertiesAttributes,
            message: "BadModifyWorkflowPropertiesAttributes: ModifyWorkflowPropertiesCommandAttributes. Memo exceeds size limit.".into(),
        });
    }
    let upsert = upsert.unwrap_or_default();
    let current = change
        .state
        .info_mut()
        .memo
        .get_or_insert_with(Default::default);
    crate::engine::state::merge_memo(current, &upsert);
    change.touch_visibility();
    change.append(WorkflowPropertiesModifiedEventAttributes {
        workflow_task_completed_event_id: completed_event_id,
        upserted_memo: Some(upsert),
    });
    Ok(())
}

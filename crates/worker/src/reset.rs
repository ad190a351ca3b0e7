//! Batch resets: where each run is reset to, as Temporal's batcher finds it from the run's
//! history — its first or last workflow task, or a task the request names.

use chronicle_api::batch::v1::BatchOperationReset;
use chronicle_api::common::v1::WorkflowExecution;
use chronicle_api::common::v1::reset_options::Target;
use chronicle_api::enums::v1::{EventType, ResetType};
use chronicle_api::history::v1::HistoryEvent;
use chronicle_api::workflowservice::{
    GetWorkflowExecutionHistoryRequest, ResetWorkflowExecutionRequest,
};

use crate::Workflows;

/// Where a batch reset puts each run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Point {
    FirstWorkflowTask,
    LastWorkflowTask,
    /// The workflow task finished by this event.
    Event(i64),
}

/// The reset point a batch request asks for (its options, else the deprecated reset type).
pub(crate) fn point(op: &BatchOperationReset) -> Result<Point, String> {
    match op.options.as_ref().and_then(|o| o.target.as_ref()) {
        Some(Target::FirstWorkflowTask(())) => Ok(Point::FirstWorkflowTask),
        Some(Target::LastWorkflowTask(())) => Ok(Point::LastWorkflowTask),
        Some(Target::WorkflowTaskId(id)) => Ok(Point::Event(*id)),
        Some(Target::BuildId(_)) => {
            Err("Resetting to a build id is not supported by Chronicle yet.".into())
        }
        #[allow(deprecated)]
        None => match ResetType::try_from(op.reset_type) {
            Ok(ResetType::FirstWorkflowTask) => Ok(Point::FirstWorkflowTask),
            Ok(ResetType::LastWorkflowTask) => Ok(Point::LastWorkflowTask),
            _ => Err("Reset target is not set on request.".into()),
        },
    }
}

/// Follows a run's history page by page, as Temporal's batcher reads it: a workflow task is
/// finished by its completed event, or (still running) at its scheduled event plus one.
#[derive(Debug, Default)]
struct Finder {
    found: Option<i64>,
    /// The first workflow task is found: later events change nothing.
    done: bool,
}

impl Finder {
    fn read(&mut self, point: Point, events: &[HistoryEvent]) {
        for event in events {
            if self.done {
                return;
            }
            let id = event.event_id;
            match EventType::try_from(event.event_type) {
                Ok(EventType::WorkflowTaskCompleted) => {
                    self.found = Some(id);
                    self.done = point == Point::FirstWorkflowTask;
                }
                Ok(EventType::WorkflowTaskScheduled)
                    if point == Point::LastWorkflowTask || self.found.is_none() =>
                {
                    self.found = Some(id + 1);
                }
                _ => {}
            }
        }
    }
}

/// The reset request for one run of a batch (reason and request id are the batch's).
pub(crate) async fn request(
    workflows: &dyn Workflows,
    namespace: &str,
    execution: WorkflowExecution,
    op: BatchOperationReset,
) -> Result<ResetWorkflowExecutionRequest, tonic::Status> {
    let at = point(&op).map_err(tonic::Status::invalid_argument)?;
    let event_id = match at {
        Point::Event(id) => id,
        Point::FirstWorkflowTask | Point::LastWorkflowTask => {
            let mut finder = Finder::default();
            let mut next_page_token = Vec::new();
            loop {
                let page = workflows
                    .history(GetWorkflowExecutionHistoryRequest {
                        namespace: namespace.to_owned(),
                        execution: Some(execution.clone()),
                        next_page_token,
                        ..Default::default()
                    })
                    .await?;
                let events = page.history.map(|h| h.events).unwrap_or_default();
                finder.read(at, &events);
                next_page_token = page.next_page_token;
                if finder.done || next_page_token.is_empty() {
                    break;
                }
            }
            finder.found.ok_or_else(|| {
                tonic::Status::invalid_argument("The run has no workflow task to reset to.")
            })?
        }
    };
    let options = op.options.unwrap_or_default();
    // Older clients still send the reapply type, which reset honours.
    #[allow(deprecated)]
    let reset_reapply_type = if op.reset_reapply_type != 0 {
        op.reset_reapply_type
    } else {
        options.reset_reapply_type
    };
    #[allow(deprecated)]
    Ok(ResetWorkflowExecutionRequest {
        namespace: namespace.to_owned(),
        workflow_execution: Some(execution),
        workflow_task_finish_event_id: event_id,
        reset_reapply_type,
        reset_reapply_exclude_types: options.reset_reapply_exclude_types,
        post_reset_operations: op.post_reset_operations,
        identity: op.identity,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(types: &[EventType]) -> Vec<HistoryEvent> {
        types
            .iter()
            .zip(1..)
            .map(|(t, id)| HistoryEvent {
                event_id: id,
                event_type: *t as i32,
                ..Default::default()
            })
            .collect()
    }

    fn found(point: Point, pages: &[&[HistoryEvent]]) -> Option<i64> {
        let mut finder = Finder::default();
        for page in pages {
            finder.read(point, page);
        }
        finder.found
    }

    #[test]
    fn the_first_and_last_workflow_tasks_are_found_by_their_completed_events() {
        use EventType::*;
        let history = events(&[
            WorkflowExecutionStarted,
            WorkflowTaskScheduled,
            WorkflowTaskStarted,
            WorkflowTaskCompleted,
            TimerStarted,
            TimerFired,
            WorkflowTaskScheduled,
            WorkflowTaskStarted,
            WorkflowTaskCompleted,
            WorkflowExecutionCompleted,
        ]);
        assert_eq!(found(Point::FirstWorkflowTask, &[&history]), Some(4));
        assert_eq!(found(Point::LastWorkflowTask, &[&history]), Some(9));
        // Across pages, as a long history is read.
        let (a, b) = history.split_at(5);
        assert_eq!(found(Point::LastWorkflowTask, &[a, b]), Some(9));
    }

    #[test]
    fn a_workflow_task_still_running_is_reset_to_after_its_scheduled_event() {
        use EventType::*;
        let history = events(&[WorkflowExecutionStarted, WorkflowTaskScheduled]);
        assert_eq!(found(Point::FirstWorkflowTask, &[&history]), Some(3));
        assert_eq!(found(Point::LastWorkflowTask, &[&history]), Some(3));
        assert_eq!(found(Point::LastWorkflowTask, &[&[]]), None);
    }

    #[test]
    fn a_build_id_target_is_refused_and_the_deprecated_type_still_counts() {
        let op = BatchOperationReset {
            options: Some(chronicle_api::common::v1::ResetOptions {
                target: Some(Target::BuildId("b".into())),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(point(&op).is_err());
        #[allow(deprecated)]
        let op = BatchOperationReset {
            reset_type: ResetType::LastWorkflowTask as i32,
            ..Default::default()
        };
        assert_eq!(point(&op), Ok(Point::LastWorkflowTask));
    }
}

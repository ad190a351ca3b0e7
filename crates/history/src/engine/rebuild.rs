//! Mutable state rebuilt from events: what a prefix of a run's history leaves pending. Reset
//! uses it to start a run from the middle of another one's history.

use crate::engine::state::{
    ActivityInfo, ChildInfo, ExecutionInfo, ExternalRequest, MutableState, TimerInfo,
    WorkflowTaskInfo,
};
use chronicle_api::history::v1::HistoryEvent;
use chronicle_api::history::v1::history_event::Attributes as A;
use chronicle_common::time;
use prost::Message;

/// Replays `events` (a run's history from its first event) over `info`.
pub(crate) fn replay(events: &[HistoryEvent], info: ExecutionInfo) -> MutableState {
    let mut state = MutableState {
        info: Some(info),
        next_event_id: 1,
        ..Default::default()
    };
    for event in events {
        state.next_event_id = event.event_id + 1;
        state.history_size_bytes += event.encoded_len() as i64;
        if let Some(attributes) = &event.attributes {
            apply(&mut state, event, attributes);
        }
    }
    state
}

fn apply(state: &mut MutableState, event: &HistoryEvent, attributes: &A) {
    let id = event.event_id;
    match attributes {
        A::WorkflowExecutionStartedEventAttributes(a) => {
            let info = state.info_mut();
            info.memo.clone_from(&a.memo);
            info.search_attributes.clone_from(&a.search_attributes);
        }
        A::WorkflowTaskScheduledEventAttributes(a) => {
            let task_queue = a
                .task_queue
                .as_ref()
                .map(|q| q.name.clone())
                .unwrap_or_default();
            state.workflow_task = Some(WorkflowTaskInfo {
                scheduled_event_id: id,
                attempt: a.attempt,
                task_queue,
                timeout: a.start_to_close_timeout,
                scheduled_time: event.event_time,
                ..Default::default()
            });
        }
        A::WorkflowTaskStartedEventAttributes(_) => {
            if let Some(wft) = state.workflow_task.as_mut() {
                wft.started_event_id = id;
                wft.started_time = event.event_time;
            }
        }
        A::WorkflowTaskCompletedEventAttributes(a) => {
            state.workflow_task = None;
            state.last_completed_wft_started_event_id = a.started_event_id;
        }
        A::WorkflowTaskFailedEventAttributes(_) | A::WorkflowTaskTimedOutEventAttributes(_) => {
            state.workflow_task = None
        }
        A::ActivityTaskScheduledEventAttributes(a) => {
            let activity = ActivityInfo {
                scheduled_event_id: id,
                activity_id: a.activity_id.clone(),
                activity_type: a
                    .activity_type
                    .as_ref()
                    .map(|t| t.name.clone())
                    .unwrap_or_default(),
                task_queue: a
                    .task_queue
                    .as_ref()
                    .map(|q| q.name.clone())
                    .unwrap_or_default(),
                schedule_to_close_timeout: a.schedule_to_close_timeout,
                schedule_to_start_timeout: a.schedule_to_start_timeout,
                start_to_close_timeout: a.start_to_close_timeout,
                heartbeat_timeout: a.heartbeat_timeout,
                retry_policy: a.retry_policy.clone(),
                attempt: 1,
                scheduled_time: event.event_time,
                current_attempt_scheduled_time: event.event_time,
                ..Default::default()
            };
            state.activities.insert(id, activity);
        }
        A::ActivityTaskCancelRequestedEventAttributes(a) => {
            if let Some(activity) = state.activities.get_mut(&a.scheduled_event_id) {
                activity.cancel_requested = true;
                activity.cancel_requested_event_id = id;
            }
        }
        A::ActivityTaskCompletedEventAttributes(a) => {
            drop(state.activities.remove(&a.scheduled_event_id))
        }
        A::ActivityTaskFailedEventAttributes(a) => {
            drop(state.activities.remove(&a.scheduled_event_id))
        }
        A::ActivityTaskTimedOutEventAttributes(a) => {
            drop(state.activities.remove(&a.scheduled_event_id))
        }
        A::ActivityTaskCanceledEventAttributes(a) => {
            drop(state.activities.remove(&a.scheduled_event_id))
        }
        A::TimerStartedEventAttributes(a) => {
            let fire_after =
                time::stored_duration(a.start_to_fire_timeout.as_ref()).unwrap_or_default();
            let started = event
                .event_time
                .as_ref()
                .map_or(std::time::SystemTime::UNIX_EPOCH, time::from_timestamp);
            let timer = TimerInfo {
                timer_id: a.timer_id.clone(),
                started_event_id: id,
                expiry_time: Some(time::timestamp(started + fire_after)),
            };
            state.timers.insert(a.timer_id.clone(), timer);
        }
        A::TimerFiredEventAttributes(a) => drop(state.timers.remove(&a.timer_id)),
        A::TimerCanceledEventAttributes(a) => drop(state.timers.remove(&a.timer_id)),
        A::StartChildWorkflowExecutionInitiatedEventAttributes(a) => {
            let child = ChildInfo {
                initiated_event_id: id,
                ..ChildInfo::initiated(a)
            };
            state.children.insert(id, child);
        }
        A::ChildWorkflowExecutionStartedEventAttributes(a) => {
            if let Some(child) = state.children.get_mut(&a.initiated_event_id) {
                child.started_event_id = id;
                child.run_id = a
                    .workflow_execution
                    .as_ref()
                    .map(|e| e.run_id.clone())
                    .unwrap_or_default();
            }
        }
        A::StartChildWorkflowExecutionFailedEventAttributes(a) => {
            drop(state.children.remove(&a.initiated_event_id))
        }
        A::ChildWorkflowExecutionCompletedEventAttributes(a) => {
            drop(state.children.remove(&a.initiated_event_id))
        }
        A::ChildWorkflowExecutionFailedEventAttributes(a) => {
            drop(state.children.remove(&a.initiated_event_id))
        }
        A::ChildWorkflowExecutionCanceledEventAttributes(a) => {
            drop(state.children.remove(&a.initiated_event_id))
        }
        A::ChildWorkflowExecutionTimedOutEventAttributes(a) => {
            drop(state.children.remove(&a.initiated_event_id))
        }
        A::ChildWorkflowExecutionTerminatedEventAttributes(a) => {
            drop(state.children.remove(&a.initiated_event_id))
        }
        A::SignalExternalWorkflowExecutionInitiatedEventAttributes(a) => {
            let target = a.workflow_execution.clone().unwrap_or_default();
            let request = ExternalRequest {
                initiated_event_id: id,
                workflow_id: target.workflow_id,
                run_id: target.run_id,
                cancel: false,
            };
            state.external_requests.insert(id, request);
        }
        A::RequestCancelExternalWorkflowExecutionInitiatedEventAttributes(a) => {
            let target = a.workflow_execution.clone().unwrap_or_default();
            let request = ExternalRequest {
                initiated_event_id: id,
                workflow_id: target.workflow_id,
                run_id: target.run_id,
                cancel: true,
            };
            state.external_requests.insert(id, request);
        }
        A::ExternalWorkflowExecutionSignaledEventAttributes(a) => {
            drop(state.external_requests.remove(&a.initiated_event_id))
        }
        A::SignalExternalWorkflowExecutionFailedEventAttributes(a) => {
            drop(state.external_requests.remove(&a.initiated_event_id))
        }
        A::ExternalWorkflowExecutionCancelRequestedEventAttributes(a) => {
            drop(state.external_requests.remove(&a.initiated_event_id))
        }
        A::RequestCancelExternalWorkflowExecutionFailedEventAttributes(a) => {
            drop(state.external_requests.remove(&a.initiated_event_id))
        }
        A::WorkflowExecutionCancelRequestedEventAttributes(_) => {
            state.info_mut().cancel_requested = true
        }
        A::UpsertWorkflowSearchAttributesEventAttributes(a) => {
            let upsert = a.search_attributes.clone().unwrap_or_default();
            let current = state
                .info_mut()
                .search_attributes
                .get_or_insert_with(Default::default);
            crate::engine::state::merge_search_attributes(current, &upsert);
        }
        A::WorkflowPropertiesModifiedEventAttributes(a) => {
            let upsert = a.upserted_memo.clone().unwrap_or_default();
            let memo = state.info_mut().memo.get_or_insert_with(Default::default);
            crate::engine::state::merge_memo(memo, &upsert);
        }
        A::WorkflowExecutionUpdateAcceptedEventAttributes(a) => {
            state
                .updates
                .entry(a.protocol_instance_id.clone())
                .or_default()
                .accepted_event_id = id;
        }
        A::WorkflowExecutionUpdateCompletedEventAttributes(a) => {
            let update_id = a
                .meta
                .as_ref()
                .map(|m| m.update_id.clone())
                .unwrap_or_default();
            state
                .updates
                .entry(update_id)
                .or_default()
                .completed_event_id = id;
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::events::event;
    use chronicle_api::history::v1::*;
    use std::time::SystemTime;

    fn numbered(attributes: Vec<A>) -> Vec<HistoryEvent> {
        let now = SystemTime::now();
        attributes
            .into_iter()
            .enumerate()
            .map(|(i, a)| HistoryEvent {
                event_id: i as i64 + 1,
                ..event(a, now)
            })
            .collect()
    }

    #[test]
    fn replay_leaves_what_is_pending() {
        let events = numbered(vec![
            WorkflowExecutionStartedEventAttributes::default().into(),
            WorkflowTaskScheduledEventAttributes::default().into(),
            WorkflowTaskStartedEventAttributes::default().into(),
            WorkflowTaskCompletedEventAttributes {
                scheduled_event_id: 2,
                started_event_id: 3,
                ..Default::default()
            }
            .into(),
            ActivityTaskScheduledEventAttributes {
                activity_id: "a".into(),
                ..Default::default()
            }
            .into(),
            ActivityTaskScheduledEventAttributes {
                activity_id: "b".into(),
                ..Default::default()
            }
            .into(),
            TimerStartedEventAttributes {
                timer_id: "t".into(),
                ..Default::default()
            }
            .into(),
            ActivityTaskStartedEventAttributes {
                scheduled_event_id: 5,
                ..Default::default()
            }
            .into(),
            ActivityTaskCompletedEventAttributes {
                scheduled_event_id: 5,
                started_event_id: 8,
                ..Default::default()
            }
            .into(),
        ]);
        let state = replay(&events, ExecutionInfo::default());
        assert_eq!(state.next_event_id, 10);
        assert_eq!(state.last_completed_wft_started_event_id, 3);
        assert!(state.workflow_task.is_none());
        assert_eq!(
            state.activities.keys().copied().collect::<Vec<_>>(),
            vec![6]
        );
        assert!(state.timers.contains_key("t"));
    }
}

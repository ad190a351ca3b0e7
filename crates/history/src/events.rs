//! Building history events: the event type always follows from the attributes.

use chronicle_api::enums::v1::EventType;
use chronicle_api::history::v1::{HistoryEvent, history_event::Attributes};
use chronicle_common::time;
use std::time::SystemTime;

pub(crate) fn event(attributes: impl Into<Attributes>, at: SystemTime) -> HistoryEvent {
    let attributes = attributes.into();
    HistoryEvent {
        event_time: Some(time::timestamp(at)),
        event_type: event_type(&attributes) as i32,
        attributes: Some(attributes),
        ..Default::default()
    }
}

pub(crate) fn event_type(attributes: &Attributes) -> EventType {
    use Attributes as A;
    match attributes {
        A::WorkflowExecutionStartedEventAttributes(_) => EventType::WorkflowExecutionStarted,
        A::WorkflowExecutionCompletedEventAttributes(_) => EventType::WorkflowExecutionCompleted,
        A::WorkflowExecutionFailedEventAttributes(_) => EventType::WorkflowExecutionFailed,
        A::WorkflowExecutionTimedOutEventAttributes(_) => EventType::WorkflowExecutionTimedOut,
        A::WorkflowTaskScheduledEventAttributes(_) => EventType::WorkflowTaskScheduled,
        A::WorkflowTaskStartedEventAttributes(_) => EventType::WorkflowTaskStarted,
        A::WorkflowTaskCompletedEventAttributes(_) => EventType::WorkflowTaskCompleted,
        A::WorkflowTaskTimedOutEventAttributes(_) => EventType::WorkflowTaskTimedOut,
        A::WorkflowTaskFailedEventAttributes(_) => EventType::WorkflowTaskFailed,
        A::ActivityTaskScheduledEventAttributes(_) => EventType::ActivityTaskScheduled,
        A::ActivityTaskStartedEventAttributes(_) => EventType::ActivityTaskStarted,
        A::ActivityTaskCompletedEventAttributes(_) => EventType::ActivityTaskCompleted,
        A::ActivityTaskFailedEventAttributes(_) => EventType::ActivityTaskFailed,
        A::ActivityTaskTimedOutEventAttributes(_) => EventType::ActivityTaskTimedOut,
        A::TimerStartedEventAttributes(_) => EventType::TimerStarted,
        A::TimerFiredEventAttributes(_) => EventType::TimerFired,
        A::ActivityTaskCancelRequestedEventAttributes(_) => EventType::ActivityTaskCancelRequested,
        A::ActivityTaskCanceledEventAttributes(_) => EventType::ActivityTaskCanceled,
        A::TimerCanceledEventAttributes(_) => EventType::TimerCanceled,
        A::MarkerRecordedEventAttributes(_) => EventType::MarkerRecorded,
        A::WorkflowExecutionSignaledEventAttributes(_) => EventType::WorkflowExecutionSignaled,
        A::WorkflowExecutionTerminatedEventAttributes(_) => EventType::WorkflowExecutionTerminated,
        A::WorkflowExecutionCancelRequestedEventAttributes(_) => {
            EventType::WorkflowExecutionCancelRequested
        }
        A::WorkflowExecutionCanceledEventAttributes(_) => EventType::WorkflowExecutionCanceled,
        A::UpsertWorkflowSearchAttributesEventAttributes(_) => {
            EventType::UpsertWorkflowSearchAttributes
        }
        A::WorkflowPropertiesModifiedEventAttributes(_) => EventType::WorkflowPropertiesModified,
        A::WorkflowExecutionContinuedAsNewEventAttributes(_) => {
            EventType::WorkflowExecutionContinuedAsNew
        }
        _ => EventType::Unspecified,
    }
}

/// Stands for "the started event buffered just before me" in a buffered activity result: the
/// real id is known only when the buffer is written out.
pub(crate) const BUFFERED_EVENT_ID: i64 = -123;

/// Started event ids assigned while a buffer is written out, by the scheduled event they
/// belong to.
#[derive(Default)]
pub(crate) struct StartedIds(std::collections::HashMap<i64, i64>);

impl StartedIds {
    pub fn record(&mut self, event: &HistoryEvent, id: i64) {
        if let Some(Attributes::ActivityTaskStartedEventAttributes(a)) = &event.attributes {
            self.0.insert(a.scheduled_event_id, id);
        }
    }

    /// Replaces a placeholder started event id with the id its started event got.
    pub fn wire(&self, attributes: &mut Attributes) {
        use Attributes as A;
        let (scheduled, started) = match attributes {
            A::ActivityTaskCompletedEventAttributes(a) => {
                (a.scheduled_event_id, &mut a.started_event_id)
            }
            A::ActivityTaskFailedEventAttributes(a) => {
                (a.scheduled_event_id, &mut a.started_event_id)
            }
            A::ActivityTaskTimedOutEventAttributes(a) => {
                (a.scheduled_event_id, &mut a.started_event_id)
            }
            A::ActivityTaskCanceledEventAttributes(a) => {
                (a.scheduled_event_id, &mut a.started_event_id)
            }
            _ => return,
        };
        if *started == BUFFERED_EVENT_ID {
            *started = self.0.get(&scheduled).copied().unwrap_or_default();
        }
    }
}

//! Building history events: the event type always follows from the attributes.

use chronicle_api::enums::v1::{EventType, TaskQueueKind};
use chronicle_api::history::v1::{HistoryEvent, history_event::Attributes};
use chronicle_api::taskqueue::v1::TaskQueue;
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

/// Every attributes variant has the event type of the same name.
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
        A::RequestCancelExternalWorkflowExecutionInitiatedEventAttributes(_) => {
            EventType::RequestCancelExternalWorkflowExecutionInitiated
        }
        A::RequestCancelExternalWorkflowExecutionFailedEventAttributes(_) => {
            EventType::RequestCancelExternalWorkflowExecutionFailed
        }
        A::ExternalWorkflowExecutionCancelRequestedEventAttributes(_) => {
            EventType::ExternalWorkflowExecutionCancelRequested
        }
        A::WorkflowExecutionContinuedAsNewEventAttributes(_) => {
            EventType::WorkflowExecutionContinuedAsNew
        }
        A::StartChildWorkflowExecutionInitiatedEventAttributes(_) => {
            EventType::StartChildWorkflowExecutionInitiated
        }
        A::StartChildWorkflowExecutionFailedEventAttributes(_) => {
            EventType::StartChildWorkflowExecutionFailed
        }
        A::ChildWorkflowExecutionStartedEventAttributes(_) => {
            EventType::ChildWorkflowExecutionStarted
        }
        A::ChildWorkflowExecutionCompletedEventAttributes(_) => {
            EventType::ChildWorkflowExecutionCompleted
        }
        A::ChildWorkflowExecutionFailedEventAttributes(_) => {
            EventType::ChildWorkflowExecutionFailed
        }
        A::ChildWorkflowExecutionCanceledEventAttributes(_) => {
            EventType::ChildWorkflowExecutionCanceled
        }
        A::ChildWorkflowExecutionTimedOutEventAttributes(_) => {
            EventType::ChildWorkflowExecutionTimedOut
        }
        A::ChildWorkflowExecutionTerminatedEventAttributes(_) => {
            EventType::ChildWorkflowExecutionTerminated
        }
        A::SignalExternalWorkflowExecutionInitiatedEventAttributes(_) => {
            EventType::SignalExternalWorkflowExecutionInitiated
        }
        A::SignalExternalWorkflowExecutionFailedEventAttributes(_) => {
            EventType::SignalExternalWorkflowExecutionFailed
        }
        A::ExternalWorkflowExecutionSignaledEventAttributes(_) => {
            EventType::ExternalWorkflowExecutionSignaled
        }
        A::UpsertWorkflowSearchAttributesEventAttributes(_) => {
            EventType::UpsertWorkflowSearchAttributes
        }
        A::WorkflowExecutionUpdateAcceptedEventAttributes(_) => {
            EventType::WorkflowExecutionUpdateAccepted
        }
        A::WorkflowExecutionUpdateRejectedEventAttributes(_) => {
            EventType::WorkflowExecutionUpdateRejected
        }
        A::WorkflowExecutionUpdateCompletedEventAttributes(_) => {
            EventType::WorkflowExecutionUpdateCompleted
        }
        A::WorkflowPropertiesModifiedExternallyEventAttributes(_) => {
            EventType::WorkflowPropertiesModifiedExternally
        }
        A::ActivityPropertiesModifiedExternallyEventAttributes(_) => {
            EventType::ActivityPropertiesModifiedExternally
        }
        A::WorkflowPropertiesModifiedEventAttributes(_) => EventType::WorkflowPropertiesModified,
        A::WorkflowExecutionUpdateAdmittedEventAttributes(_) => {
            EventType::WorkflowExecutionUpdateAdmitted
        }
        A::NexusOperationScheduledEventAttributes(_) => EventType::NexusOperationScheduled,
        A::NexusOperationStartedEventAttributes(_) => EventType::NexusOperationStarted,
        A::NexusOperationCompletedEventAttributes(_) => EventType::NexusOperationCompleted,
        A::NexusOperationFailedEventAttributes(_) => EventType::NexusOperationFailed,
        A::NexusOperationCanceledEventAttributes(_) => EventType::NexusOperationCanceled,
        A::NexusOperationTimedOutEventAttributes(_) => EventType::NexusOperationTimedOut,
        A::NexusOperationCancelRequestedEventAttributes(_) => {
            EventType::NexusOperationCancelRequested
        }
        A::WorkflowExecutionOptionsUpdatedEventAttributes(_) => {
            EventType::WorkflowExecutionOptionsUpdated
        }
        A::NexusOperationCancelRequestCompletedEventAttributes(_) => {
            EventType::NexusOperationCancelRequestCompleted
        }
        A::NexusOperationCancelRequestFailedEventAttributes(_) => {
            EventType::NexusOperationCancelRequestFailed
        }
        A::WorkflowExecutionPausedEventAttributes(_) => EventType::WorkflowExecutionPaused,
        A::WorkflowExecutionUnpausedEventAttributes(_) => EventType::WorkflowExecutionUnpaused,
        A::WorkflowExecutionTimeSkippingTransitionedEventAttributes(_) => {
            EventType::WorkflowExecutionTimeSkippingTransitioned
        }
    }
}

/// Stands for "the started event buffered just before me" in a buffered activity result: the
/// real id is known only when the buffer is written out. The value is Temporal's own
/// buffered-event id (`common.BufferedEventID`), so a stored placeholder reads the same in
/// either server's terms.
pub(crate) const BUFFERED_EVENT_ID: i64 = -123;

/// Started event ids assigned while a buffer is written out, by the event that scheduled or
/// initiated what started (an activity, a child workflow).
#[derive(Default)]
pub(crate) struct StartedIds(std::collections::HashMap<i64, i64>);

impl StartedIds {
    /// Notes the id a started event got; returns the child's initiated event id when the
    /// event is a child's started event, whose id mutable state keeps too.
    pub fn record(&mut self, event: &HistoryEvent, id: i64) -> Option<i64> {
        match &event.attributes {
            Some(Attributes::ActivityTaskStartedEventAttributes(a)) => {
                self.0.insert(a.scheduled_event_id, id);
                None
            }
            Some(Attributes::ChildWorkflowExecutionStartedEventAttributes(a)) => {
                self.0.insert(a.initiated_event_id, id);
                Some(a.initiated_event_id)
            }
            _ => None,
        }
    }

    /// Replaces a placeholder started event id with the id its started event got.
    pub fn wire(&self, attributes: &mut Attributes) {
        use Attributes as A;
        let (origin, started) = match attributes {
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
            A::ChildWorkflowExecutionCompletedEventAttributes(a) => {
                (a.initiated_event_id, &mut a.started_event_id)
            }
            A::ChildWorkflowExecutionFailedEventAttributes(a) => {
                (a.initiated_event_id, &mut a.started_event_id)
            }
            A::ChildWorkflowExecutionCanceledEventAttributes(a) => {
                (a.initiated_event_id, &mut a.started_event_id)
            }
            A::ChildWorkflowExecutionTimedOutEventAttributes(a) => {
                (a.initiated_event_id, &mut a.started_event_id)
            }
            A::ChildWorkflowExecutionTerminatedEventAttributes(a) => {
                (a.initiated_event_id, &mut a.started_event_id)
            }
            _ => return,
        };
        if *started == BUFFERED_EVENT_ID {
            *started = self.0.get(&origin).copied().unwrap_or_default();
        }
    }
}

/// A normal (not sticky) task queue as events and responses name it.
pub(crate) fn normal_queue(name: impl Into<String>) -> TaskQueue {
    TaskQueue {
        name: name.into(),
        kind: TaskQueueKind::Normal as i32,
        ..Default::default()
    }
}

/// The queue a client named, recorded as the normal queue it is (clients may leave the kind
/// unspecified).
pub(crate) fn as_normal(queue: TaskQueue) -> TaskQueue {
    TaskQueue {
        kind: TaskQueueKind::Normal as i32,
        ..queue
    }
}

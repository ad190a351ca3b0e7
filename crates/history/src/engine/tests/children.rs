//! Child workflows as the parent's history records them: initiated, started, closed, and
//! the parent close policy.

use super::{TestEnv, command, payloads, start_request};
use crate::engine::children::ChildClose;
use crate::engine::events::BUFFERED_EVENT_ID;
use crate::engine::timer::Timer;
use chronicle_api::command::v1::{
    CompleteWorkflowExecutionCommandAttributes, StartChildWorkflowExecutionCommandAttributes,
    command::Attributes as C,
};
use chronicle_api::common::v1::WorkflowType;
use chronicle_api::enums::v1::{EventType as E, ParentClosePolicy};
use chronicle_api::history::v1::history_event::Attributes as A;

fn start_child(policy: ParentClosePolicy) -> C {
    C::StartChildWorkflowExecutionCommandAttributes(StartChildWorkflowExecutionCommandAttributes {
        workflow_id: "order-1-invoice".into(),
        workflow_type: Some(WorkflowType {
            name: "Invoice".into(),
        }),
        input: payloads("order-1"),
        parent_close_policy: policy as i32,
        ..Default::default()
    })
}

fn complete(result: &str) -> C {
    C::CompleteWorkflowExecutionCommandAttributes(CompleteWorkflowExecutionCommandAttributes {
        result: payloads(result),
    })
}

/// A parent whose first task initiated a child; returns it and the initiated event id.
fn parent_with_child(policy: ParentClosePolicy) -> (TestEnv, i64) {
    let mut parent = TestEnv::start(start_request("order-1"));
    let wft = parent.poll_workflow_task();
    parent
        .complete(&wft, vec![command(start_child(policy))])
        .unwrap();
    assert_eq!(
        parent.new_events().last(),
        Some(&E::StartChildWorkflowExecutionInitiated)
    );
    let initiated_event_id = parent.history.last().unwrap().event_id;
    (parent, initiated_event_id)
}

/// The parent hears that its child started (and, with `closed`, how its chain ended), as the
/// service's outbox handlers tell it.
fn tell_parent(parent: &mut TestEnv, initiated: i64, child_run: &str, closed: Option<ChildClose>) {
    parent
        .change(|c| {
            c.record_child(initiated, child_run, closed);
            Ok(())
        })
        .unwrap();
}

/// The child's close event, as the parent is told of it.
fn close_of(child: &TestEnv) -> ChildClose {
    ChildClose(child.last_event().clone())
}

#[test]
fn a_child_is_started_through_the_outbox_and_its_result_reaches_the_parent() {
    let (mut parent, initiated) = parent_with_child(ParentClosePolicy::Terminate);
    parent.advance(std::time::Duration::ZERO);
    assert_eq!(
        parent.cross_run,
        [Timer::StartChild {
            initiated_event_id: initiated
        }]
    );

    let mut child = parent.start_child(initiated);
    let parent_info = child.state.info().parent.clone().unwrap();
    assert_eq!(parent_info.run_id, parent.key.run_id);
    assert_eq!(parent_info.initiated_event_id, initiated);
    let child_run = child.key.run_id.clone();
    tell_parent(&mut parent, initiated, &child_run, None);
    assert_eq!(
        parent.new_events(),
        [E::ChildWorkflowExecutionStarted, E::WorkflowTaskScheduled]
    );

    let wft = child.poll_workflow_task();
    child
        .complete(&wft, vec![command(complete("invoiced"))])
        .unwrap();
    child.advance(std::time::Duration::ZERO);
    assert_eq!(child.cross_run, [Timer::RecordChildClosed]);
    let first_run = child.state.info().first_execution_run_id.clone();
    tell_parent(&mut parent, initiated, &first_run, Some(close_of(&child)));
    assert_eq!(parent.new_events(), [E::ChildWorkflowExecutionCompleted]);
    let A::ChildWorkflowExecutionCompletedEventAttributes(done) = parent.last_event() else {
        unreachable!()
    };
    assert_eq!(done.result, payloads("invoiced"));
    assert!(parent.state.children.is_empty());
}

#[test]
fn child_events_arriving_during_a_task_get_their_real_ids_when_written() {
    let (mut parent, initiated) = parent_with_child(ParentClosePolicy::Abandon);
    parent.signal("wake", "").unwrap();
    let wft = parent.poll_workflow_task();
    let mut child = parent.start_child(initiated);
    let child_run = child.key.run_id.clone();
    tell_parent(&mut parent, initiated, &child_run, None);
    assert_eq!(
        parent.state.children[&initiated].started_event_id, BUFFERED_EVENT_ID,
        "Temporal's id for an event still buffered"
    );
    let child_wft = child.poll_workflow_task();
    child
        .complete(&child_wft, vec![command(complete("invoiced"))])
        .unwrap();
    tell_parent(&mut parent, initiated, &child_run, Some(close_of(&child)));
    parent.new_events();
    parent.complete(&wft, vec![]).unwrap();
    let started = parent
        .history
        .iter()
        .find(|e| e.event_type == E::ChildWorkflowExecutionStarted as i32)
        .unwrap()
        .event_id;
    let A::ChildWorkflowExecutionCompletedEventAttributes(done) =
        super::find(&parent.history, E::ChildWorkflowExecutionCompleted)
    else {
        unreachable!()
    };
    assert_eq!(done.started_event_id, started);
}

#[test]
fn a_closing_parent_applies_the_close_policy_of_each_open_child() {
    for (policy, applied) in [
        (ParentClosePolicy::Terminate, true),
        (ParentClosePolicy::RequestCancel, true),
        (ParentClosePolicy::Abandon, false),
    ] {
        let (mut parent, initiated) = parent_with_child(policy);
        parent.signal("finish", "").unwrap();
        let wft = parent.poll_workflow_task();
        parent
            .complete(&wft, vec![command(complete("done"))])
            .unwrap();
        parent.advance(std::time::Duration::ZERO);
        let policy_timer = Timer::ParentClosePolicy {
            initiated_event_id: initiated,
        };
        assert_eq!(
            parent.cross_run.contains(&policy_timer),
            applied,
            "{policy:?}"
        );
    }
}

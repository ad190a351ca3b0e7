//! History driven directly over an in-memory store: failure paths the end-to-end suite can
//! only hit by chance.

use crate::{History, HistoryOptions, NamespaceRef};
use chronicle_api::common::v1::WorkflowType;
use chronicle_api::taskqueue::v1::TaskQueue;
use chronicle_api::workflowservice::{PollWorkflowTaskQueueRequest, StartWorkflowExecutionRequest};
use chronicle_common::QueueKind;
use chronicle_matching::{Matching, QueueKey};
use chronicle_persistence::{Backend, Schema, SqlStore, Store};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

const QUEUE: &str = "q";

async fn history() -> (History, Matching) {
    history_on(memory_store().await).await
}

async fn memory_store() -> Arc<dyn Store> {
    let store = SqlStore::open(&Backend::SqliteMemory, Schema::Migrate)
        .await
        .expect("in-memory store");
    Arc::new(store)
}

async fn history_on(store: Arc<dyn Store>) -> (History, Matching) {
    let matching = Matching::new(store.clone(), &Default::default());
    let history = History::start(HistoryOptions::default(), store, matching.clone())
        .await
        .expect("history starts");
    (history, matching)
}

fn namespace() -> NamespaceRef {
    NamespaceRef {
        id: "ns-id".into(),
        name: "ns".into(),
    }
}

fn start_request(workflow_id: &str) -> StartWorkflowExecutionRequest {
    StartWorkflowExecutionRequest {
        namespace: "ns".into(),
        workflow_id: workflow_id.into(),
        workflow_type: Some(WorkflowType { name: "wf".into() }),
        task_queue: Some(TaskQueue {
            name: QUEUE.into(),
            ..Default::default()
        }),
        request_id: uuid::Uuid::new_v4().to_string(),
        ..Default::default()
    }
}

fn poll_request() -> PollWorkflowTaskQueueRequest {
    PollWorkflowTaskQueueRequest {
        namespace: "ns".into(),
        task_queue: Some(TaskQueue {
            name: QUEUE.into(),
            ..Default::default()
        }),
        identity: "test-worker".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn tasks_of_a_commit_in_doubt_are_reloaded_from_the_backlog() {
    let (history, matching) = history().await;
    history.run(&chronicle_common::Supervisor::new());
    let started = history
        .start_workflow(&namespace(), start_request("wf-1"))
        .await
        .unwrap();
    // As if the connection broke after the commit landed: the task is in the table only.
    let queue = QueueKey {
        namespace_id: namespace().id,
        name: QUEUE.into(),
        kind: QueueKind::Workflow,
    };
    assert_eq!(matching.drain(&queue).len(), 1);
    history.commit_in_doubt();

    let deadline = Instant::now() + Duration::from_secs(10);
    let task = history
        .poll_workflow_task(&namespace(), poll_request(), deadline)
        .await
        .unwrap();
    let execution = task.workflow_execution.expect("a workflow task");
    assert_eq!(execution.run_id, started.run_id);
    assert_eq!(matching.backlog_len(&queue), 0);
}

#[tokio::test]
async fn reloading_the_backlog_skips_tasks_already_queued() {
    let (history, matching) = history().await;
    for id in ["wf-1", "wf-2"] {
        history
            .start_workflow(&namespace(), start_request(id))
            .await
            .unwrap();
    }
    assert_eq!(matching.restore().await.unwrap(), 0);
    let queue = QueueKey {
        namespace_id: namespace().id,
        name: QUEUE.into(),
        kind: QueueKind::Workflow,
    };
    assert_eq!(matching.drain(&queue).len(), 2);
    assert_eq!(matching.restore().await.unwrap(), 2);
    assert_eq!(matching.backlog_len(&queue), 2);
}

#[tokio::test]
async fn a_write_fenced_out_by_another_owner_gives_the_shard_up() {
    let store = memory_store().await;
    let (history, _matching) = history_on(store.clone()).await;
    assert_eq!(history.owned_shards(), 1);
    // Another node takes the shard over: its range id moves past ours.
    store.acquire_shard(0).await.unwrap();
    let refused = history
        .start_workflow(&namespace(), start_request("wf-fenced"))
        .await;
    assert!(refused.is_err(), "a stale owner must not write");
    assert_eq!(history.owned_shards(), 0);
}

//! History driven directly over an in-memory store: failure paths the end-to-end suite can
//! only hit by chance.

use crate::{History, HistoryError, HistoryOptions, NamespaceRef};
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
    let tasks = chronicle_common::Supervisor::new();
    let history = History::start(HistoryOptions::default(), store, matching.clone(), &tasks)
        .await
        .expect("history starts");
    history.own(&[0]).await.expect("the shard is acquired");
    (history, matching)
}

fn namespace() -> NamespaceRef {
    NamespaceRef {
        id: "ns-id".into(),
        name: "ns".into(),
        retention: None,
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
    history.reload_backlog();

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

#[tokio::test]
async fn a_shard_given_up_refuses_its_workflows_until_it_is_owned_again() {
    let (history, _matching) = history().await;
    history.release(&[0]);
    assert_eq!(history.owned_shards(), 0);
    let refused = history
        .start_workflow(&namespace(), start_request("wf-moved"))
        .await
        .unwrap_err();
    assert!(matches!(refused, HistoryError::ShardNotOwned(0)));
    assert!(
        refused.is_retryable(),
        "the client retries and reaches the owner"
    );
    history.own(&[0]).await.unwrap();
    history
        .start_workflow(&namespace(), start_request("wf-moved"))
        .await
        .expect("owned again");
}

#[tokio::test]
async fn nodes_on_one_database_split_the_shards_and_take_over_a_leaving_ones() {
    let store = memory_store().await;
    let config = chronicle_common::config::ClusterConfig {
        heartbeat_interval_ms: 50,
        lease_ms: 1_000,
        ..Default::default()
    };
    let options = HistoryOptions {
        shard_count: 8,
        ..HistoryOptions::default()
    };
    let node = |id: &str| {
        let (store, options, config) = (store.clone(), options.clone(), config.clone());
        let id = id.to_owned();
        async move {
            let tasks = chronicle_common::Supervisor::new();
            let member = chronicle_common::cluster::Member {
                address: format!("{id}:7300"),
                id,
                roles: chronicle_common::cluster::Role::ALL.to_vec(),
            };
            let membership = chronicle_cluster::Membership::join(
                store.clone(),
                member,
                &config,
                options.shard_count,
                &tasks,
            )
            .await
            .unwrap();
            let matching = Matching::new(store.clone(), &Default::default());
            let history = History::start(options, store, matching, &tasks)
                .await
                .unwrap();
            history
                .follow(chronicle_cluster::Nodes::new(membership))
                .await
                .unwrap();
            (history, tasks)
        }
    };
    let (a, a_tasks) = node("a").await;
    assert_eq!(a.owned_shards(), 8, "a lone node owns every shard");
    let (b, b_tasks) = node("b").await;
    let split = || async {
        for _ in 0..100 {
            let (mine, theirs) = (a.inner.shards.owned_ids(), b.inner.shards.owned_ids());
            if mine.len() + theirs.len() == 8 && mine.iter().all(|s| !theirs.contains(s)) {
                return (mine, theirs);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the shards were never split");
    };
    let (mine, theirs) = split().await;
    assert!(
        !mine.is_empty() && !theirs.is_empty(),
        "{mine:?} / {theirs:?}"
    );

    b_tasks.shutdown(Duration::from_secs(5)).await;
    for _ in 0..100 {
        if a.owned_shards() == 8 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        a.owned_shards(),
        8,
        "the remaining node takes the leaver's shards"
    );
    a_tasks.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_run_reads_newest_first_and_once_deleted_is_gone_and_its_id_free() {
    use chronicle_api::common::v1::WorkflowExecution;
    use chronicle_api::workflowservice::{
        DeleteWorkflowExecutionRequest, DescribeWorkflowExecutionRequest,
        GetWorkflowExecutionHistoryReverseRequest,
    };
    let (history, _) = history().await;
    let started = history
        .start_workflow(&namespace(), start_request("wf-del"))
        .await
        .unwrap();
    let execution = WorkflowExecution {
        workflow_id: "wf-del".into(),
        run_id: started.run_id.clone(),
    };
    let reverse = GetWorkflowExecutionHistoryReverseRequest {
        execution: Some(execution.clone()),
        maximum_page_size: 1,
        ..Default::default()
    };
    let newest = history
        .get_history_reverse(&namespace().id, reverse.clone())
        .await
        .unwrap();
    let ids: Vec<i64> = newest
        .history
        .unwrap()
        .events
        .iter()
        .map(|e| e.event_id)
        .collect();
    assert_eq!(ids, [2], "the workflow task scheduled, newest first");
    assert!(!newest.next_page_token.is_empty());

    let delete = DeleteWorkflowExecutionRequest {
        workflow_execution: Some(execution.clone()),
        ..Default::default()
    };
    history
        .delete_execution(&namespace().id, delete.clone())
        .await
        .unwrap();
    let describe = DescribeWorkflowExecutionRequest {
        execution: Some(execution),
        ..Default::default()
    };
    let gone = history.describe(&namespace().id, describe).await;
    assert!(matches!(gone, Err(HistoryError::WorkflowNotFound(_))));
    let again = history.delete_execution(&namespace().id, delete).await;
    assert!(matches!(again, Err(HistoryError::WorkflowNotFound(_))));
    let reread = history.get_history_reverse(&namespace().id, reverse).await;
    assert!(matches!(reread, Err(HistoryError::WorkflowNotFound(_))));
    history
        .start_workflow(&namespace(), start_request("wf-del"))
        .await
        .expect("the id is free again");
}

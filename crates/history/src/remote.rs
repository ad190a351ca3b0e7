//! The service's side of a cluster beyond its own shards: a committed task goes to the node
//! owning its task queue, and a task that a poller here matched for a workflow another node
//! owns is started by that node.

use crate::{History, HistoryError, NamespaceRef, Result};
use chronicle_cluster::{ClusterError, Nodes};
use chronicle_common::cluster::Member;
use chronicle_common::{DispatchTask, QueueKind, shard_for};
use prost::Message;
use std::time::Duration;
use tokio::time::Instant;

/// How long a task is offered to its queue's owner, and how often.
const SEND_FOR: Duration = Duration::from_secs(30);
const SEND_RETRY_FIRST: Duration = Duration::from_millis(50);
const SEND_RETRY_MAX: Duration = Duration::from_secs(2);

/// The other node owning `task`'s queue, if another does.
fn queue_owner(nodes: &Nodes, task: &DispatchTask) -> Option<Member> {
    let kind = QueueKind::from_i32(task.kind).unwrap_or(QueueKind::Workflow);
    nodes.remote_queue_owner(&task.namespace_id, &task.task_queue, kind)
}

impl History {
    /// Hands a committed task to its queue's owner: this node's matching, or another's. A task
    /// that does not reach another node still waits in the backlog table for its owner.
    pub(crate) fn dispatch(&self, task: DispatchTask) {
        let Some(nodes) = self.inner.nodes.get() else {
            self.inner.matching.add(task);
            return;
        };
        match queue_owner(nodes, &task) {
            None => self.inner.matching.add(task),
            Some(owner) => {
                tokio::spawn(self.clone().send_to_owner(nodes.clone(), owner, task));
            }
        }
    }

    /// Sends a task to its queue's owner, trying again (with the owner as the members now
    /// name it) while it is out of reach. A task given up on stays in the backlog table, for
    /// the reload that follows the owner's loss; a live owner would only read it back when
    /// its queue spills, so the attempts go on for longer than a lease.
    async fn send_to_owner(self, nodes: Nodes, mut owner: Member, task: DispatchTask) {
        let began = Instant::now();
        let mut retry = SEND_RETRY_FIRST;
        loop {
            let Err(e) = nodes.add_tasks(&owner, std::slice::from_ref(&task)).await else {
                return;
            };
            if began.elapsed() >= SEND_FOR {
                tracing::warn!(
                    task_id = task.task_id,
                    "task left to the backlog table: {e}"
                );
                return;
            }
            tracing::debug!(task_id = task.task_id, "task not handed over yet: {e}");
            tokio::time::sleep(retry).await;
            retry = (retry * 2).min(SEND_RETRY_MAX);
            match queue_owner(&nodes, &task) {
                Some(now) => owner = now,
                None => {
                    self.inner.matching.add(task);
                    return;
                }
            }
        }
    }

    /// Whether this node counts as a member of its cluster (a lone node always does).
    pub fn holds_membership(&self) -> bool {
        self.inner
            .nodes
            .get()
            .is_none_or(|n| n.membership().holds_lease())
    }

    /// The other node owning `task`'s workflow, if another does.
    pub(crate) fn remote_owner_of(&self, task: &DispatchTask) -> Option<Member> {
        let shard = shard_for(&task.namespace_id, &task.workflow_id, self.shard_count());
        if self.inner.shards.get(shard).is_some() {
            return None;
        }
        self.inner.nodes.get()?.remote_shard_owner(shard)
    }

    /// Has `owner` start the task for a poller of this node, and decodes what it answered.
    pub(crate) async fn start_remotely<T: Message + Default>(
        &self,
        owner: &Member,
        task: &DispatchTask,
        namespace_name: &str,
        identity: &str,
        request_id: &str,
    ) -> Result<T> {
        let nodes = self.inner.nodes.get().ok_or(HistoryError::StaleTask)?;
        let started = nodes
            .start_task(owner, task, namespace_name, identity, request_id)
            .await;
        match started {
            Ok(bytes) => T::decode(bytes.as_slice()).map_err(|e| {
                HistoryError::Corrupt(format!("poll response from {}: {e}", owner.id))
            }),
            // Started already, or its run moved on: the poll goes on.
            Err(ClusterError::Remote { gone: true, .. }) => Err(HistoryError::StaleTask),
            Err(e) => {
                tracing::warn!(task_id = task.task_id, "task not started on its owner: {e}");
                Err(HistoryError::ShardNotOwned(shard_for(
                    &task.namespace_id,
                    &task.workflow_id,
                    self.shard_count(),
                )))
            }
        }
    }

    /// Another node's poller matched `task` of a workflow this node owns: start it here.
    pub async fn start_task(
        &self,
        task: DispatchTask,
        namespace: &NamespaceRef,
        identity: &str,
        request_id: &str,
    ) -> Result<Vec<u8>> {
        match QueueKind::from_i32(task.kind) {
            Some(QueueKind::Activity) => {
                let response = self
                    .record_activity_started(namespace, task, identity, request_id)
                    .await?;
                Ok(response.encode_to_vec())
            }
            _ => {
                let response = self
                    .record_workflow_task_started(task, identity, request_id)
                    .await?;
                Ok(response.encode_to_vec())
            }
        }
    }
}

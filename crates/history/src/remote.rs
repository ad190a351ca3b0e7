//! The service's side of a cluster beyond its own shards: a committed task goes to the node
//! owning its task queue, and a task that a poller here matched for a workflow another node
//! owns is started by that node.

use crate::{History, HistoryError, NamespaceRef, Result};
use chronicle_cluster::ClusterError;
use chronicle_common::cluster::Member;
use chronicle_common::{DispatchTask, QueueKind, shard_for};
use prost::Message;

impl History {
    /// Hands a committed task to its queue's owner: this node's matching, or another's. A task
    /// that does not reach another node still waits in the backlog table for its owner.
    pub(crate) fn dispatch(&self, task: DispatchTask) {
        let kind = QueueKind::from_i32(task.kind).unwrap_or(QueueKind::Workflow);
        let Some(nodes) = self.inner.nodes.get() else {
            self.inner.matching.add(task);
            return;
        };
        let Some(owner) = nodes.remote_queue_owner(&task.namespace_id, &task.task_queue, kind)
        else {
            self.inner.matching.add(task);
            return;
        };
        let nodes = nodes.clone();
        tokio::spawn(async move {
            if let Err(e) = nodes.add_tasks(&owner, std::slice::from_ref(&task)).await {
                tracing::warn!(
                    task_id = task.task_id,
                    "task left to the backlog table: {e}"
                );
            }
        });
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

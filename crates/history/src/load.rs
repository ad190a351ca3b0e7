//! Loading a run for a change or a read: its state from the cache or the store, and for a
//! change that may end the workflow task, its buffered events.

use crate::engine::buffer::Buffer;
use crate::engine::change::Change;
use crate::engine::context::Context;
use crate::engine::state::MutableState;
use crate::{History, HistoryError, Result};
use chronicle_api::history::v1::HistoryEvent;
use chronicle_common::{ExecutionKey, time};
use prost::Message;
use std::time::Duration;

impl History {
    /// Loads a run's state and buffered events for a change. The caller holds the
    /// workflow's lock.
    pub(crate) async fn load(&self, key: &ExecutionKey) -> Result<Change> {
        let (mut state, version) = self.take_state(key).await?;
        let legacy = std::mem::take(&mut state.legacy_buffered_events);
        state.buffered_count += legacy.len() as i64;
        let rows = if state.buffered_count > legacy.len() as i64 {
            self.read_buffered(key).await?
        } else {
            Vec::new()
        };
        self.change(key, state, (Some(version), Buffer::read(legacy, rows)))
    }

    /// Loads a run's state for a change that only appends events or buffers them, which
    /// never reads the buffer: its cost does not grow with the buffer.
    pub(crate) async fn load_to_append(&self, key: &ExecutionKey) -> Result<Change> {
        let (state, version) = self.take_state(key).await?;
        self.change(key, state, (Some(version), Buffer::unread()))
    }

    fn change(
        &self,
        key: &ExecutionKey,
        state: MutableState,
        known: (Option<i64>, Buffer),
    ) -> Result<Change> {
        let mut ctx = self.context(&key.namespace_id, &key.workflow_id)?;
        let sticky = &state.info().sticky_task_queue;
        self.note_sticky_poller(&mut ctx, &key.namespace_id, sticky);
        Ok(Change::with(ctx, key.clone(), state, known))
    }

    /// The time and ids a change of a workflow's runs starts from (ids from its shard, which
    /// this node must own).
    pub(crate) fn context(&self, namespace_id: &str, workflow_id: &str) -> Result<Context> {
        let shard = self.shard_of(namespace_id, workflow_id)?;
        let retry_max = self.inner.limits.node.workflow_task_retry_max_interval_secs;
        Ok(Context::new(time::now(), shard)
            .with_workflow_task_retry_max(Duration::from_secs(retry_max)))
    }

    async fn take_state(&self, key: &ExecutionKey) -> Result<(MutableState, i64)> {
        match self.inner.cache.take(key) {
            Some(cached) => Ok(cached),
            None => self.read_state(key).await,
        }
    }

    async fn read_buffered(&self, key: &ExecutionKey) -> Result<Vec<HistoryEvent>> {
        let rows = self.store().buffered_events(&key.run_id).await?;
        rows.into_iter()
            .map(|(seq, data)| {
                HistoryEvent::decode(data.as_slice()).map_err(|e| {
                    HistoryError::Corrupt(format!("buffered event {seq} of {key}: {e}"))
                })
            })
            .collect()
    }

    /// A run's state for reading (no lock needed), and its version.
    pub(crate) async fn snapshot(&self, key: &ExecutionKey) -> Result<(MutableState, i64)> {
        match self.inner.cache.peek(key) {
            Some(cached) => Ok(cached),
            None => self.read_state(key).await,
        }
    }

    async fn read_state(&self, key: &ExecutionKey) -> Result<(MutableState, i64)> {
        let row = self
            .store()
            .execution(&key.namespace_id, &key.workflow_id, &key.run_id)
            .await?
            .ok_or_else(|| {
                HistoryError::WorkflowNotFound(format!("workflow execution not found: {key}"))
            })?;
        let state = MutableState::decode(row.state.as_slice())
            .map_err(|e| HistoryError::Corrupt(format!("mutable state of {key}: {e}")))?;
        if state.info.is_none() {
            return Err(HistoryError::Corrupt(format!(
                "mutable state of {key}: no execution info"
            )));
        }
        Ok((state, row.db_version))
    }

    /// Loads a run that must still be running.
    pub(crate) async fn load_running(&self, key: &ExecutionKey) -> Result<Change> {
        running(self.load(key).await?)
    }
}

pub(crate) fn running(change: Change) -> Result<Change> {
    if change.is_running() {
        Ok(change)
    } else {
        Err(HistoryError::WorkflowCompleted)
    }
}

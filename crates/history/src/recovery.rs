//! Reloading the backlog table into matching, when tasks may sit in it that matching never
//! heard of: after a commit whose outcome is unknown (the connection died while it
//! committed: if it landed, its tasks never reached matching), after acquiring shards (their
//! previous owner's tasks), and after the cluster's members changed (tasks handed to a task
//! queue's old owner). Matching reloads as soon as the database answers.

use crate::History;
use chronicle_common::supervisor::CancellationToken;
use std::time::Duration;

const RETRY: Duration = Duration::from_secs(1);

impl History {
    /// Asks for a reload of the backlog (several asks in a row need one reload).
    pub(crate) fn reload_backlog(&self) {
        self.inner.backlog_reload.notify_one();
    }
}

/// Reloads the backlog after every ask. A reload that is cut short by a shutdown is not
/// missed: the next start reloads anyway.
pub(crate) async fn run(history: History, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = history.inner.backlog_reload.notified() => {}
            () = stop.cancelled() => return,
        }
        loop {
            tokio::select! {
                () = tokio::time::sleep(RETRY) => {}
                () = stop.cancelled() => return,
            }
            match history.inner.matching.restore().await {
                Ok(reloaded) => {
                    tracing::info!(reloaded, "backlog reloaded");
                    break;
                }
                Err(e) => tracing::warn!("backlog reload: {e}"),
            }
        }
    }
}

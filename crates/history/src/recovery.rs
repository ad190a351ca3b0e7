//! Recovery from commits whose outcome is unknown. When the database connection dies while a
//! transaction commits, the transaction may or may not have landed; if it did, the tasks it
//! wrote sit in the backlog table without ever reaching matching. So once such a commit is
//! seen, matching reloads the backlog as soon as the database answers again.

use crate::History;
use chronicle_common::supervisor::CancellationToken;
use std::time::Duration;

const RETRY: Duration = Duration::from_secs(1);

impl History {
    /// Notes a commit that may have landed without its tasks reaching matching.
    pub(crate) fn commit_in_doubt(&self) {
        self.inner.backlog_in_doubt.notify_one();
    }
}

/// Reloads the backlog after every commit in doubt (several in a row need one reload).
/// A reload that is cut short by a shutdown is not missed: the next start reloads anyway.
pub(crate) async fn run(history: History, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = history.inner.backlog_in_doubt.notified() => {}
            () = stop.cancelled() => return,
        }
        loop {
            tokio::select! {
                () = tokio::time::sleep(RETRY) => {}
                () = stop.cancelled() => return,
            }
            match history.inner.matching.restore().await {
                Ok(reloaded) => {
                    tracing::info!(reloaded, "backlog reloaded after a commit in doubt");
                    break;
                }
                Err(e) => tracing::warn!("backlog reload after a commit in doubt: {e}"),
            }
        }
    }
}

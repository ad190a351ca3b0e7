//! Durable user timers: StartTimer / CancelTimer commands and the timer firing.

use crate::{History, Result};
use chronicle_common::ExecutionKey;

impl History {
    /// The run's user timers due together, fired in one change.
    pub(crate) async fn fire_user_timers(
        &self,
        key: &ExecutionKey,
        started_event_ids: &[i64],
    ) -> Result<()> {
        self.append_to(key, |change| change.fire_timers(started_event_ids))
            .await
    }
}

//! Durable user timers: StartTimer / CancelTimer commands and the timer firing.

use crate::{History, Result};
use chronicle_common::ExecutionKey;

impl History {
    pub(crate) async fn fire_user_timer(
        &self,
        key: &ExecutionKey,
        started_event_id: i64,
    ) -> Result<()> {
        self.append_to(key, |change| change.fire_timer(started_event_id))
            .await
    }
}

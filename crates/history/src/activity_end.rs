//! How an activity attempt ends: a retry after the policy's backoff (no events: retries leave
//! no trace in history) or the activity's final events, started event included. Also the
//! timers that end attempts: schedule-to-start, start-to-close, schedule-to-close, heartbeat.

use crate::engine::timer::Attempt;
use crate::{History, Result};
use chronicle_api::enums::v1::TimeoutType;
use chronicle_common::ExecutionKey;

impl History {
    pub(crate) async fn fire_activity_timeout(
        &self,
        key: &ExecutionKey,
        attempt: Attempt,
        timeout: TimeoutType,
    ) -> Result<()> {
        self.update(key, |change| {
            change.time_out_activity_attempt(attempt, timeout)
        })
        .await
    }

    pub(crate) async fn fire_activity_schedule_to_close(
        &self,
        key: &ExecutionKey,
        scheduled_event_id: i64,
    ) -> Result<()> {
        self.update(key, |change| {
            change.time_out_activity_overall(scheduled_event_id)
        })
        .await
    }

    pub(crate) async fn fire_activity_heartbeat_check(
        &self,
        key: &ExecutionKey,
        attempt: Attempt,
    ) -> Result<()> {
        self.update(key, |change| change.check_activity_heartbeat(attempt))
            .await
    }
}

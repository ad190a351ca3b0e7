//! Reading a queue's spilled tasks back from the backlog table once the queue has drained.
//! One refill runs per queue at a time; it reads a page, queues what the node does not hold
//! already (queued, or granted to a poller whose start has not committed yet) and hands it to
//! the waiting pollers. Tasks that arrived meanwhile were left in the table too, so the queue
//! keeps its order.

use crate::queue::RefillFrom;
use crate::{Matching, QueueKey};
use chronicle_common::DispatchTask;
use chronicle_persistence::{PersistenceError, QueueName, QueueTaskRow};
use std::time::Duration;

/// Rows read back at a time: small next to any budget, so a refill above the budget (another
/// queue holds the memory) overshoots it by little.
pub(crate) const PAGE: usize = 128;

/// Reads of the backlog that may fail in a row before the refill leaves it to the next poll,
/// the pause growing by this much each time.
const RETRIES: u32 = 5;
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// The pause before reading the backlog again after `failures` earlier failed reads and now
/// `error`, or None to leave it to the next poll. Only an outage is worth waiting out: a
/// refused statement or corrupt data fails the same way on every read.
fn retry_pause(error: &PersistenceError, failures: u32) -> Option<Duration> {
    (error.is_retryable() && failures < RETRIES).then(|| RETRY_PAUSE * (failures + 1))
}

pub(crate) fn decode(row: &QueueTaskRow) -> Option<DispatchTask> {
    match <DispatchTask as prost::Message>::decode(row.data.as_slice()) {
        Ok(task) => Some(task),
        Err(e) => {
            tracing::error!(task_id = row.task_id, "undecodable backlog task: {e}");
            None
        }
    }
}

impl Matching {
    pub(crate) async fn refill(self, key: QueueKey, mut from: RefillFrom) {
        let name = QueueName {
            namespace_id: &key.namespace_id,
            task_queue: &key.name,
            kind: key.kind as i32,
        };
        let mut failures = 0;
        loop {
            let rows = match self
                .shared
                .store
                .queue_backlog(&name, from.after, PAGE)
                .await
            {
                Ok(rows) => rows,
                Err(e) => match retry_pause(&e, failures) {
                    // Pollers already waiting would otherwise sit out their long poll while
                    // the table holds their tasks: wait out a brief outage here.
                    Some(pause) => {
                        failures += 1;
                        tracing::warn!(queue = %key.name, failures, "backlog refill: {e}");
                        tokio::time::sleep(pause).await;
                        continue;
                    }
                    None => {
                        // The next poll of the queue tries again.
                        tracing::warn!(queue = %key.name, "backlog refill gave up: {e}");
                        self.lock().queue(&key).spill.end_refill();
                        return;
                    }
                },
            };
            let mut queues = self.lock();
            let held = queues.held_ids(&key);
            let next = {
                let last = rows.last().map(|row| row.task_id);
                queues.queue(&key).spill.read(rows.len(), PAGE, last)
            };
            let fresh = rows.iter().filter(|row| !held.contains(&row.task_id));
            for task in fresh.filter_map(decode) {
                if let Some(task) = self.hand_over(&mut queues, &key, task) {
                    queues.push(&key, task);
                }
            }
            match next {
                // Everything read went to pollers (or was held already): read on rather than
                // leave the queue empty while the table has its tasks.
                Some(next) if queues.queue(&key).len() == 0 => from = next,
                _ => {
                    queues.queue(&key).spill.end_refill();
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{PersistenceError, RETRIES, RETRY_PAUSE, retry_pause};

    #[test]
    fn an_outage_is_waited_out_a_few_times_growing() {
        let down = PersistenceError::Unavailable("down".into());
        assert_eq!(retry_pause(&down, 0), Some(RETRY_PAUSE));
        assert_eq!(retry_pause(&down, 2), Some(RETRY_PAUSE * 3));
        assert_eq!(retry_pause(&down, RETRIES), None);
    }

    #[test]
    fn corrupt_data_and_refused_statements_are_not_retried() {
        for e in [
            PersistenceError::Corrupt("row".into()),
            PersistenceError::Database("bad sql".into()),
        ] {
            assert_eq!(retry_pause(&e, 0), None, "{e}");
        }
    }
}

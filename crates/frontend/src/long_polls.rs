//! Concurrent long polls per namespace on this node. Each waiting poll holds a connection's
//! stream, a task and whatever its request carried; a bound per namespace keeps one
//! namespace's pollers from starving the others. A permit is a guard: it is given back when
//! the poll's future ends in any way, including a client that hung up (tonic drops the future).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

#[derive(Clone, Default)]
pub struct LongPolls {
    /// Polls in flight per namespace id; a namespace with none has no entry.
    active: Arc<Mutex<HashMap<String, usize>>>,
}

/// One long poll in flight.
pub struct LongPollPermit {
    polls: LongPolls,
    namespace_id: String,
}

impl LongPolls {
    /// A permit if fewer than `limit` polls of the namespace are in flight.
    pub fn try_acquire(&self, namespace_id: &str, limit: usize) -> Option<LongPollPermit> {
        let mut active = self.lock();
        let count = active.entry(namespace_id.to_owned()).or_default();
        if *count >= limit {
            if *count == 0 {
                active.remove(namespace_id);
            }
            return None;
        }
        *count += 1;
        Some(LongPollPermit {
            polls: self.clone(),
            namespace_id: namespace_id.to_owned(),
        })
    }

    #[cfg(test)]
    fn in_flight(&self, namespace_id: &str) -> usize {
        self.lock().get(namespace_id).copied().unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.active.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for LongPollPermit {
    fn drop(&mut self) {
        let mut active = self.polls.lock();
        if let Some(count) = active.get_mut(&self.namespace_id) {
            *count -= 1;
            if *count == 0 {
                active.remove(&self.namespace_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_are_bounded_per_namespace() {
        let polls = LongPolls::default();
        let held: Vec<_> = (0..3).map(|_| polls.try_acquire("a", 3).unwrap()).collect();
        assert!(polls.try_acquire("a", 3).is_none());
        assert!(
            polls.try_acquire("b", 3).is_some(),
            "another namespace has its own"
        );
        drop(held);
        assert_eq!(polls.in_flight("a"), 0);
        assert!(polls.try_acquire("a", 3).is_some());
    }

    #[tokio::test]
    async fn a_dropped_poll_gives_its_permit_back() {
        let polls = LongPolls::default();
        let permit = polls.try_acquire("a", 1).unwrap();
        let poll = tokio::spawn(async move {
            let _permit = permit;
            std::future::pending::<()>().await;
        });
        tokio::task::yield_now().await;
        assert!(polls.try_acquire("a", 1).is_none());
        // What tonic does when the client hangs up: the handler's future is dropped.
        poll.abort();
        let _ = poll.await;
        assert_eq!(polls.in_flight("a"), 0);
        assert!(polls.try_acquire("a", 1).is_some());
    }

    #[test]
    fn a_zero_limit_refuses_and_keeps_no_entry() {
        let polls = LongPolls::default();
        assert!(polls.try_acquire("a", 0).is_none());
        assert!(polls.lock().is_empty());
    }
}

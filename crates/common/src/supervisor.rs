//! The node's background tasks under one owner. Each long-lived loop is spawned by name and
//! watches a cancellation token, stopping at a point where stopping loses nothing; shutdown
//! cancels them all and waits, up to a deadline, for them to finish. A task that panics is
//! logged by name when it happens, instead of vanishing with its join handle.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::task::{Id, JoinSet};
pub use tokio_util::sync::CancellationToken;

/// Cheap-to-clone handle; every clone spawns into and shuts down the same set of tasks.
#[derive(Clone, Default)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    token: CancellationToken,
    tasks: Mutex<Tasks>,
    panicked: Mutex<Vec<String>>,
}

#[derive(Default)]
struct Tasks {
    set: JoinSet<()>,
    names: HashMap<Id, String>,
}

impl Drop for Inner {
    /// A supervisor dropped without a shutdown leaves its tasks running, as plain spawns
    /// would (a JoinSet would abort them, which could cut a commit in half).
    fn drop(&mut self) {
        if let Ok(tasks) = self.tasks.get_mut() {
            tasks.set.detach_all();
        }
    }
}

/// What a shutdown found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Tasks that panicked at any time in the supervisor's life.
    pub panicked: Vec<String>,
    /// Tasks still running at the deadline (left to the process exit).
    pub unfinished: Vec<String>,
}

impl Supervisor {
    pub fn new() -> Self {
        Self::default()
    }

    /// A token cancelled when shutdown begins; a loop selects on `cancelled()` between units
    /// of work.
    pub fn token(&self) -> CancellationToken {
        self.inner.token.child_token()
    }

    pub fn is_cancelled(&self) -> bool {
        self.inner.token.is_cancelled()
    }

    /// Runs `task` in the background until it returns; shutdown waits for it.
    pub fn spawn<F>(&self, name: impl Into<String>, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let name = name.into();
        let watched = Watched {
            task: Box::pin(task),
            name: name.clone(),
            inner: Arc::downgrade(&self.inner),
        };
        let mut tasks = self
            .inner
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Finished tasks are forgotten here, so short jobs do not pile up until shutdown.
        while let Some(done) = tasks.set.try_join_next_with_id() {
            forget(&mut tasks, done);
        }
        let id = tasks.set.spawn(watched).id();
        tasks.names.insert(id, name);
    }

    /// Cancels every task and waits for them, at most `deadline`.
    pub async fn shutdown(&self, deadline: Duration) -> ShutdownReport {
        self.inner.token.cancel();
        let mut tasks = std::mem::take(
            &mut *self
                .inner
                .tasks
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        let joined = tokio::time::timeout(deadline, async {
            while let Some(done) = tasks.set.join_next_with_id().await {
                forget(&mut tasks, done);
            }
        })
        .await;
        let mut unfinished: Vec<String> = tasks.names.values().cloned().collect();
        unfinished.sort();
        if joined.is_err() {
            tracing::warn!(?unfinished, "background tasks did not stop in time");
            tasks.set.detach_all();
        }
        let panicked = self
            .inner
            .panicked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        ShutdownReport {
            panicked,
            unfinished,
        }
    }
}

fn forget(tasks: &mut Tasks, done: Result<(Id, ()), tokio::task::JoinError>) {
    // Panics are caught inside the task (`Watched`), so an error here is an abort.
    let id = match done {
        Ok((id, ())) => id,
        Err(e) => e.id(),
    };
    tasks.names.remove(&id);
}

/// A task that reports its own panic, by name, when it happens.
struct Watched {
    task: Pin<Box<dyn Future<Output = ()> + Send>>,
    name: String,
    inner: std::sync::Weak<Inner>,
}

impl Future for Watched {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let polled = std::panic::catch_unwind(AssertUnwindSafe(|| self.task.as_mut().poll(cx)));
        match polled {
            Ok(poll) => poll,
            Err(_) => {
                tracing::error!(task = self.name, "background task panicked");
                if let Some(inner) = self.inner.upgrade() {
                    inner
                        .panicked
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(self.name.clone());
                }
                Poll::Ready(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[tokio::test]
    async fn shutdown_cancels_every_task_and_waits_for_it_to_finish() {
        let supervisor = Supervisor::new();
        let cleaned_up = Arc::new(AtomicBool::new(false));
        let token = supervisor.token();
        let flag = cleaned_up.clone();
        supervisor.spawn("loop", async move {
            token.cancelled().await;
            // Work done after the cancellation still counts: shutdown waits for it.
            tokio::time::sleep(Duration::from_millis(50)).await;
            flag.store(true, Ordering::SeqCst);
        });
        let report = supervisor.shutdown(Duration::from_secs(5)).await;
        assert!(cleaned_up.load(Ordering::SeqCst));
        assert_eq!(report, ShutdownReport::default());
        assert!(supervisor.is_cancelled());
    }

    #[tokio::test]
    async fn a_task_that_ignores_cancellation_is_named_at_the_deadline() {
        let supervisor = Supervisor::new();
        supervisor.spawn("stubborn", std::future::pending());
        supervisor.spawn("polite", {
            let token = supervisor.token();
            async move { token.cancelled().await }
        });
        let report = supervisor.shutdown(Duration::from_millis(50)).await;
        assert_eq!(report.unfinished, vec!["stubborn".to_owned()]);
    }

    #[tokio::test]
    async fn a_panicking_task_is_reported_by_name() {
        let supervisor = Supervisor::new();
        supervisor.spawn("doomed", async { panic!("on purpose") });
        tokio::task::yield_now().await;
        let report = supervisor.shutdown(Duration::from_secs(5)).await;
        assert_eq!(report.panicked, vec!["doomed".to_owned()]);
        assert!(report.unfinished.is_empty());
    }

    #[tokio::test]
    async fn finished_tasks_are_forgotten_before_shutdown() {
        let supervisor = Supervisor::new();
        supervisor.spawn("quick", async {});
        tokio::time::sleep(Duration::from_millis(20)).await;
        supervisor.spawn("next", async {});
        let names = supervisor.inner.tasks.lock().unwrap().names.len();
        assert!(names <= 1, "{names} tasks remembered");
    }

    #[tokio::test]
    async fn a_dropped_supervisor_leaves_its_tasks_running() {
        let (sender, receiver) = tokio::sync::oneshot::channel();
        {
            let supervisor = Supervisor::new();
            supervisor.spawn("survivor", async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let _ = sender.send(());
            });
        }
        receiver.await.expect("the task ran to its end");
    }
}

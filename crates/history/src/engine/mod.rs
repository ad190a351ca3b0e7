//! The engine: workflow semantics as synchronous, deterministic functions. Given a run's
//! state and the inputs a change needs, it produces the new state, the events to append and
//! the effects to carry out once they are durable — as plain data. No locks, no I/O, no
//! `await` (it only logs, through `tracing`): the service around it (the rest of this
//! crate) reads, commits and dispatches. `tests` drives it as the service does, in memory.

pub(crate) mod activity;
pub(crate) mod activity_end;
pub(crate) mod activity_ops;
pub(crate) mod attributes;
pub(crate) mod buffer;
pub(crate) mod change;
pub(crate) mod children;
pub(crate) mod close;
pub(crate) mod commands;
pub(crate) mod context;
pub(crate) mod control;
pub(crate) mod cron;
pub(crate) mod effects;
pub(crate) mod events;
pub(crate) mod external;
pub(crate) mod limits;
pub(crate) mod queries;
pub(crate) mod rebuild;
pub(crate) mod reset;
pub(crate) mod retry;
pub(crate) mod start;
pub(crate) mod state;
pub(crate) mod sticky;
pub(crate) mod timer;
pub(crate) mod updates;
pub(crate) mod user_timer;
pub(crate) mod workflow_task;

#[cfg(test)]
mod tests;

//! The engine: workflow semantics as synchronous, deterministic functions. Given a run's
//! state and the inputs a change needs, it produces the new state, the events to append and
//! the effects to carry out once they are durable — as plain data. No locks, no I/O, no
//! `await`: the service around it (the rest of this crate) reads, commits and dispatches.

pub(crate) mod attributes;
pub(crate) mod context;
pub(crate) mod timer;

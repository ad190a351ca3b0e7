//! Vocabulary shared by the frontend, history, matching and persistence crates.

pub mod cluster;
pub mod config;
pub mod ids;
pub mod limits;
pub mod payload;
pub mod query;
pub mod search_attributes;
pub mod supervisor;
pub mod task;
pub mod time;
pub mod token;

pub use ids::{ExecutionKey, shard_for};
pub use supervisor::Supervisor;
pub use task::{DispatchTask, QueueKind};

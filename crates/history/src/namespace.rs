//! The namespace of an operation, as both the engine and the service name it.

use std::time::Duration;

/// The namespace an operation runs in: history keys by id but some responses carry the name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NamespaceRef {
    pub id: String,
    pub name: String,
    /// How long its closed runs are kept (none: until deleted); runs started now keep it.
    pub retention: Option<Duration>,
}

impl NamespaceRef {
    /// The namespace of a run, as its state recorded it.
    pub(crate) fn of(info: &crate::engine::state::ExecutionInfo) -> Self {
        Self {
            id: info.namespace_id.clone(),
            name: info.namespace_name.clone(),
            retention: chronicle_common::time::stored_duration(info.retention.as_ref()),
        }
    }
}

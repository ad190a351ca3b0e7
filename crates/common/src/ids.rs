//! Identifiers of executions and their placement on history shards.

use chronicle_api::common::v1::WorkflowExecution;
use std::fmt;

/// One run of one workflow in one namespace: the unit history locks, loads and writes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExecutionKey {
    pub namespace_id: String,
    pub workflow_id: String,
    pub run_id: String,
}

impl ExecutionKey {
    pub fn new(
        namespace_id: impl Into<String>,
        workflow_id: impl Into<String>,
        run_id: impl Into<String>,
    ) -> Self {
        Self {
            namespace_id: namespace_id.into(),
            workflow_id: workflow_id.into(),
            run_id: run_id.into(),
        }
    }
}

impl ExecutionKey {
    /// The execution as the API names it.
    pub fn execution(&self) -> WorkflowExecution {
        WorkflowExecution {
            workflow_id: self.workflow_id.clone(),
            run_id: self.run_id.clone(),
        }
    }
}

impl fmt::Display for ExecutionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.workflow_id, self.run_id)
    }
}

/// A fresh run id as Temporal 1.32 issues them: a UUIDv7, so ids sort by creation time
/// (which UIs and tools that page by run id rely on).
pub fn new_run_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The history shard that owns a workflow id. FNV-1a is used because its output must never
/// change between releases: shard placement is persisted.
pub fn shard_for(namespace_id: &str, workflow_id: &str, shard_count: u32) -> u32 {
    let hash = stable_hash(&[namespace_id.as_bytes(), workflow_id.as_bytes()]);
    (hash % u64::from(shard_count.max(1))) as u32
}

/// FNV-1a over `parts`, each followed by a zero byte so ("ab", "c") and ("a", "bc") differ.
/// Every node computes the same value, in every release.
pub fn stable_hash(parts: &[&[u8]]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    for (index, part) in parts.iter().enumerate() {
        let separator = (index > 0).then_some(0u8);
        for byte in separator.into_iter().chain(part.iter().copied()) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(PRIME);
        }
    }
    hash
}

#[cfg(test)]
mod tests {
    #[test]
    fn run_ids_are_version_7_and_later_ones_sort_after() {
        let first = super::new_run_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = super::new_run_id();
        let parsed = uuid::Uuid::parse_str(&first).unwrap();
        assert_eq!(parsed.get_version_num(), 7);
        assert!(second > first);
    }

    use super::*;

    #[test]
    fn shard_placement_is_stable_and_in_range() {
        assert_eq!(shard_for("ns", "wf-1", 1), 0);
        let a = shard_for("ns", "wf-1", 16);
        assert_eq!(a, shard_for("ns", "wf-1", 16));
        assert!(a < 16);
        // the separator keeps ("ab","c") and ("a","bc") apart
        assert_ne!(shard_for("ab", "c", 1 << 20), shard_for("a", "bc", 1 << 20));
        // Placement is persisted: this value must never change.
        assert_eq!(shard_for("ns", "wf-1", 4096), 2601);
    }
}

//! Limits Temporal enforces and SDK users rely on (see shared/reference-notes.md).

use std::time::Duration;

/// Longest workflow id, run id, task queue, activity id, namespace name, type name.
pub const MAX_ID_LENGTH: usize = 1000;
/// Workflow task start-to-close timeout when the start request names none.
pub const DEFAULT_WORKFLOW_TASK_TIMEOUT: Duration = Duration::from_secs(10);
/// Temporal caps the workflow task timeout at two minutes.
pub const MAX_WORKFLOW_TASK_TIMEOUT: Duration = Duration::from_secs(120);
/// Long polls return empty this long before the client's own deadline would expire.
pub const LONG_POLL_MARGIN: Duration = Duration::from_secs(1);
/// Upper bound for a long poll when the client sent no deadline.
pub const MAX_LONG_POLL: Duration = Duration::from_secs(60);
/// Events per history page when the client does not ask for a size.
pub const DEFAULT_HISTORY_PAGE_SIZE: usize = 1000;
/// Largest gRPC message we accept or send; the SDKs use the same default.
pub const MAX_GRPC_MESSAGE: usize = 4 * 1024 * 1024;
/// Bytes of events we put in one page so a response stays under the gRPC limit.
pub const HISTORY_PAGE_BYTES: usize = 2 * 1024 * 1024;

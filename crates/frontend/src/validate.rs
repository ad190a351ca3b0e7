//! Request checks done before anything is routed, with Temporal's wording where users know it.

use crate::error::{Result, invalid};
use chronicle_api::common::v1::WorkflowExecution;
use chronicle_api::taskqueue::v1::TaskQueue;
use chronicle_common::config::Limits;
use chronicle_common::limits::MAX_ID_LENGTH;
use chronicle_common::token::TaskToken;
use chronicle_history::{ActivityTarget, NamespaceRef};
use prost::Message;

/// A required identifier: present and within Temporal's length limit.
pub fn id(value: &str, name: &str) -> Result<()> {
    if value.is_empty() {
        Err(invalid(format!("{name} is not set on request.")))
    } else if value.len() > MAX_ID_LENGTH {
        Err(invalid(format!("{name} length exceeds limit.")))
    } else {
        Ok(())
    }
}

/// An optional identifier (identity, request id, run id): any length up to the limit.
pub fn optional_id(value: &str, name: &str) -> Result<()> {
    if value.len() > MAX_ID_LENGTH {
        Err(invalid(format!("{name} length exceeds limit.")))
    } else {
        Ok(())
    }
}

pub fn task_queue(queue: Option<&TaskQueue>) -> Result<()> {
    let name = queue.map(|q| q.name.as_str()).unwrap_or_default();
    if name.is_empty() {
        return Err(invalid("TaskQueue is not set on request."));
    }
    id(name, "TaskQueue")?;
    if name.starts_with("/_sys/") {
        return Err(invalid(format!(
            "Task queue name cannot start with reserved prefix /_sys/: {name}"
        )));
    }
    Ok(())
}

pub fn execution(execution: Option<&WorkflowExecution>) -> Result<()> {
    let execution = execution.ok_or_else(|| invalid("Execution is not set on request."))?;
    id(&execution.workflow_id, "WorkflowId")?;
    run_id(&execution.run_id)
}

pub fn run_id(run_id: &str) -> Result<()> {
    if run_id.is_empty() || uuid::Uuid::parse_str(run_id).is_ok() {
        Ok(())
    } else {
        Err(invalid("Invalid RunId."))
    }
}

/// The blob size limits of the namespace a request names.
pub struct Blobs<'a> {
    pub namespace: &'a str,
    pub limits: &'a Limits,
}

impl Blobs<'_> {
    /// Whether one payload set (payloads, header, failure with its causes) fits.
    pub fn fits(&self, blob: Option<&impl Message>, name: &str) -> bool {
        let size = blob.map_or(0, Message::encoded_len);
        self.limits.blob_fits(size, self.namespace, name)
    }

    /// Refuses a payload set over the limit, with Temporal's message and the field named.
    pub fn check(&self, blob: Option<&impl Message>, name: &str) -> Result<()> {
        if self.fits(blob, name) {
            Ok(())
        } else {
            Err(invalid(format!(
                "Blob data size exceeds limit. ({name} is over {} bytes.)",
                self.limits.blob_size_error
            )))
        }
    }
}

/// A worker's task token, which must belong to the namespace the request names.
pub fn token(bytes: &[u8], namespace: &NamespaceRef) -> Result<TaskToken> {
    if bytes.is_empty() {
        return Err(invalid("Task token not set on request."));
    }
    let token =
        TaskToken::from_bytes(bytes).map_err(|_| invalid("Error deserializing task token."))?;
    if token.namespace_id != namespace.id {
        return Err(invalid(
            "Operation requested with a token from a different namespace.",
        ));
    }
    Ok(token)
}

/// The target of an activity *ById call.
pub fn activity_by_id(
    workflow_id: String,
    run_id: String,
    activity_id: String,
) -> Result<ActivityTarget> {
    id(&workflow_id, "WorkflowId")?;
    self::run_id(&run_id)?;
    id(&activity_id, "ActivityId")?;
    Ok(ActivityTarget::Id {
        workflow_id,
        run_id,
        activity_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_queues_are_checked() {
        assert!(id("", "WorkflowId").is_err());
        assert!(id(&"x".repeat(MAX_ID_LENGTH + 1), "WorkflowId").is_err());
        assert!(id("wf", "WorkflowId").is_ok());
        assert!(task_queue(None).is_err());
        assert!(
            task_queue(Some(&TaskQueue {
                name: "/_sys/q".into(),
                ..Default::default()
            }))
            .is_err()
        );
        assert!(run_id("not-a-uuid").is_err());
        assert!(run_id("").is_ok());
    }

    #[test]
    fn blobs_over_the_namespace_limit_are_refused_by_name() {
        use chronicle_api::common::v1::{Payload, Payloads};
        let limits = Limits {
            blob_size_error: 100,
            blob_size_warn: 10,
            ..Limits::default()
        };
        let blobs = Blobs {
            namespace: "default",
            limits: &limits,
        };
        let payloads = |size| Payloads {
            payloads: vec![Payload {
                data: vec![0; size],
                ..Default::default()
            }],
        };
        assert!(blobs.check(None::<&Payloads>, "Input").is_ok());
        assert!(blobs.check(Some(&payloads(50)), "Input").is_ok());
        let err = blobs.check(Some(&payloads(200)), "Input").unwrap_err();
        assert!(err.to_string().starts_with("Blob data size exceeds limit."));
        assert!(err.to_string().contains("Input"));
    }

    #[test]
    fn tokens_must_decode_and_match_the_namespace() {
        let namespace = NamespaceRef {
            id: "ns-1".into(),
            name: "default".into(),
            retention: None,
        };
        assert!(token(b"", &namespace).is_err());
        assert!(token(b"garbage", &namespace).is_err());
        let other = TaskToken {
            namespace_id: "ns-2".into(),
            workflow_id: "w".into(),
            run_id: "r".into(),
            scheduled_event_id: 1,
            version: chronicle_common::token::TOKEN_VERSION,
            ..Default::default()
        };
        assert!(token(&other.to_bytes(), &namespace).is_err());
        let mine = TaskToken {
            namespace_id: "ns-1".into(),
            ..other
        };
        assert!(token(&mine.to_bytes(), &namespace).is_ok());
    }
}

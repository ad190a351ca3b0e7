//! Task tokens: the opaque bytes a worker echoes back to complete the task it polled.

use prost::Message;

/// What a completion needs to find its task again and to reject a stale one.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct TaskToken {
    #[prost(string, tag = "1")]
    pub namespace_id: String,
    #[prost(string, tag = "2")]
    pub workflow_id: String,
    #[prost(string, tag = "3")]
    pub run_id: String,
    #[prost(int64, tag = "4")]
    pub scheduled_event_id: i64,
    #[prost(int64, tag = "5")]
    pub started_event_id: i64,
    #[prost(int32, tag = "6")]
    pub attempt: i32,
    /// Set for activity tasks only.
    #[prost(string, tag = "7")]
    pub activity_id: String,
    /// Tokens carry a version so a future format can be told apart.
    #[prost(int32, tag = "8")]
    pub version: i32,
    /// Set for query tasks only.
    #[prost(string, tag = "9")]
    pub query_id: String,
}

pub const TOKEN_VERSION: i32 = 1;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed task token")]
pub struct MalformedToken;

impl TaskToken {
    pub fn execution_key(&self) -> crate::ExecutionKey {
        crate::ExecutionKey::new(&self.namespace_id, &self.workflow_id, &self.run_id)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.encode_to_vec()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MalformedToken> {
        let token = Self::decode(bytes).map_err(|_| MalformedToken)?;
        let complete = token.version == TOKEN_VERSION
            && !token.namespace_id.is_empty()
            && !token.workflow_id.is_empty()
            && !token.run_id.is_empty()
            && (token.scheduled_event_id > 0 || !token.query_id.is_empty());
        complete.then_some(token).ok_or(MalformedToken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_and_partial_tokens_are_rejected() {
        assert_eq!(TaskToken::from_bytes(b"not a token"), Err(MalformedToken));
        assert_eq!(TaskToken::from_bytes(&[]), Err(MalformedToken));
        let token = TaskToken {
            namespace_id: "n".into(),
            workflow_id: "w".into(),
            run_id: "r".into(),
            scheduled_event_id: 5,
            started_event_id: 6,
            attempt: 1,
            activity_id: String::new(),
            version: TOKEN_VERSION,
            query_id: String::new(),
        };
        assert_eq!(TaskToken::from_bytes(&token.to_bytes()), Ok(token));
    }
}

//! Payloads the server itself writes, encoded the way the SDKs' default converter decodes.

use chronicle_api::common::v1::Payload;

/// A JSON string payload (`json/plain`).
pub fn json_string(value: &str) -> Payload {
    Payload {
        metadata: [("encoding".to_owned(), b"json/plain".to_vec())].into(),
        data: serde_json::to_vec(value).unwrap_or_default(),
        ..Default::default()
    }
}

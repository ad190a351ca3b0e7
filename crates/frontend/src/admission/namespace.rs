//! The namespace of a call, read from the request's bytes before tonic decodes it: admission
//! (rate limits, authorization) must decide before the handler runs, for every RPC alike.
//! Only the top-level fields are walked, skipping each by its length, so the cost does not
//! depend on how large the payloads are.

use flate2::read::GzDecoder;
use std::io::Read;

/// A gRPC message's 5-byte prefix: compressed flag, then the length (big endian).
const PREFIX: usize = 5;
/// How much of a compressed message is inflated at a time while looking for the field.
const INFLATE_STEP: usize = 8 * 1024;

/// The string in top-level field `field` of the first gRPC message in `body`; empty when
/// absent or unreadable (the handler then refuses the request as it would anyway).
pub(crate) fn namespace_of(body: &[u8], field: u32) -> String {
    if field == 0 || body.len() < PREFIX {
        return String::new();
    }
    let compressed = body[0] == 1;
    let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    let message = &body[PREFIX..body.len().min(PREFIX + len)];
    let found = if compressed {
        inflated_field(message, field)
    } else {
        match string_field(message, field) {
            Scan::Found(s) => Some(s),
            Scan::Absent | Scan::Truncated => None,
        }
    };
    found.unwrap_or_default()
}

/// Inflates a gzip message step by step until the field is found or the message ends.
fn inflated_field(message: &[u8], field: u32) -> Option<String> {
    let mut decoder = GzDecoder::new(message);
    let mut plain = Vec::new();
    loop {
        let before = plain.len();
        decoder
            .by_ref()
            .take(INFLATE_STEP as u64)
            .read_to_end(&mut plain)
            .ok()?;
        let ended = plain.len() == before;
        match string_field(&plain, field) {
            Scan::Found(s) => return Some(s),
            Scan::Absent => return None,
            Scan::Truncated if ended => return None,
            Scan::Truncated => {}
        }
    }
}

#[derive(Debug, PartialEq)]
enum Scan {
    Found(String),
    /// The message ended without the field.
    Absent,
    /// The bytes stop inside a field: more are needed.
    Truncated,
}

/// Walks the top-level fields of a protobuf message for a length-delimited `field`.
fn string_field(mut bytes: &[u8], field: u32) -> Scan {
    while !bytes.is_empty() {
        let Some(key) = varint(&mut bytes) else {
            return Scan::Truncated;
        };
        let (number, wire_type) = (key >> 3, key & 7);
        let skip = match wire_type {
            0 => match varint(&mut bytes) {
                Some(_) => 0,
                None => return Scan::Truncated,
            },
            1 => 8,
            5 => 4,
            2 => match varint(&mut bytes) {
                Some(len) => len as usize,
                None => return Scan::Truncated,
            },
            // Groups are not used by the Temporal API; anything else is not protobuf.
            _ => return Scan::Absent,
        };
        if bytes.len() < skip {
            return Scan::Truncated;
        }
        if number == u64::from(field) && wire_type == 2 {
            return Scan::Found(String::from_utf8_lossy(&bytes[..skip]).into_owned());
        }
        bytes = &bytes[skip..];
    }
    Scan::Absent
}

fn varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            *bytes = &bytes[i + 1..];
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use chronicle_api::workflowservice::{
        RespondWorkflowTaskCompletedRequest, StartWorkflowExecutionRequest,
    };
    use flate2::{Compression, write::GzEncoder};
    use prost::Message;
    use std::io::Write;

    fn framed(message: &impl Message, gzip: bool) -> Vec<u8> {
        let mut bytes = message.encode_to_vec();
        if gzip {
            let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
            encoder.write_all(&bytes).unwrap();
            bytes = encoder.finish().unwrap();
        }
        let mut body = vec![u8::from(gzip)];
        body.extend((bytes.len() as u32).to_be_bytes());
        body.extend(bytes);
        body
    }

    #[test]
    fn the_namespace_is_found_plain_and_compressed() {
        let start = StartWorkflowExecutionRequest {
            namespace: "orders".into(),
            workflow_id: "w".into(),
            ..Default::default()
        };
        for gzip in [false, true] {
            assert_eq!(namespace_of(&framed(&start, gzip), 1), "orders");
        }
    }

    #[test]
    fn fields_before_the_namespace_are_skipped_however_large() {
        // Field 9, behind a task token and a megabyte of identity.
        let completion = RespondWorkflowTaskCompletedRequest {
            task_token: vec![7; 100],
            identity: "x".repeat(1 << 20),
            namespace: "billing".into(),
            ..Default::default()
        };
        for gzip in [false, true] {
            assert_eq!(namespace_of(&framed(&completion, gzip), 9), "billing");
        }
    }

    #[test]
    fn absent_truncated_or_garbage_reads_as_no_namespace() {
        let start = StartWorkflowExecutionRequest::default();
        assert_eq!(namespace_of(&framed(&start, false), 1), "");
        let named = framed(
            &StartWorkflowExecutionRequest {
                namespace: "n".repeat(50),
                ..Default::default()
            },
            false,
        );
        assert_eq!(namespace_of(&named[..20], 1), "");
        assert_eq!(namespace_of(&[1, 0, 0, 0, 3, 9, 9, 9], 1), "");
        assert_eq!(namespace_of(&[0, 0, 0, 0, 2, 0xff, 0xff], 1), "");
        assert_eq!(namespace_of(&[], 1), "");
    }
}

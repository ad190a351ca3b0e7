//! Oversized messages answered as grpc-go answers them (Temporal's server is grpc-go, and SDKs
//! treat RESOURCE_EXHAUSTED as "too big, do not retry as is"); tonic says OUT_OF_RANGE.

use chronicle_common::limits::MAX_GRPC_MESSAGE;
use tonic::{Code, Status};

const TONIC_TOO_LARGE: &str = "Error, decoded message length too large: found ";
const TONIC_DECOMPRESSED_TOO_LARGE: &str = "Error decompressing: size limit";

/// grpc-go's status for a status tonic's decoder gave a message over the limit; None for
/// every other status.
fn grpc_go_status(status: &Status) -> Option<Status> {
    let message = status.message();
    match status.code() {
        Code::OutOfRange => {
            let found = message.strip_prefix(TONIC_TOO_LARGE)?;
            let size = found.split(' ').next().unwrap_or_default();
            Some(Status::resource_exhausted(format!(
                "grpc: received message larger than max ({size} vs. {MAX_GRPC_MESSAGE})"
            )))
        }
        Code::ResourceExhausted if message.starts_with(TONIC_DECOMPRESSED_TOO_LARGE) => {
            Some(Status::resource_exhausted(format!(
                "grpc: received message after decompression larger than max {MAX_GRPC_MESSAGE}"
            )))
        }
        _ => None,
    }
}

/// Rewrites a trailers-only response (how tonic answers a request it could not decode).
pub fn rewrite<B>(mut response: http::Response<B>) -> http::Response<B> {
    let replacement = Status::from_header_map(response.headers())
        .as_ref()
        .and_then(grpc_go_status);
    if let Some(status) = replacement {
        // Only fails for a message that cannot be a header, and ours are ASCII.
        let _ = status.add_header(response.headers_mut());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tonic_size_errors_become_grpc_go_ones() {
        let tonic = Status::out_of_range(format!(
            "{TONIC_TOO_LARGE}5000000 bytes, the limit is: 4194304 bytes"
        ));
        let status = grpc_go_status(&tonic).unwrap();
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(
            status.message(),
            "grpc: received message larger than max (5000000 vs. 4194304)"
        );
        let decompressed = Status::resource_exhausted(format!(
            "{TONIC_DECOMPRESSED_TOO_LARGE}, of 4194304 bytes, exceeded while decompressing message"
        ));
        assert_eq!(
            grpc_go_status(&decompressed).unwrap().message(),
            "grpc: received message after decompression larger than max 4194304"
        );
        assert!(grpc_go_status(&Status::out_of_range("page past the end")).is_none());
        assert!(grpc_go_status(&Status::resource_exhausted("rate limit")).is_none());
    }

    #[test]
    fn responses_keep_their_other_headers() {
        let mut response = Status::out_of_range(format!(
            "{TONIC_TOO_LARGE}5000000 bytes, the limit is: 4194304 bytes"
        ))
        .into_http::<()>();
        response
            .headers_mut()
            .insert("x-other", "1".parse().unwrap());
        let response = rewrite(response);
        let status = Status::from_header_map(response.headers()).unwrap();
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(response.headers()["x-other"], "1");
        let ok = rewrite(http::Response::new(()));
        assert!(Status::from_header_map(ok.headers()).is_none());
    }
}

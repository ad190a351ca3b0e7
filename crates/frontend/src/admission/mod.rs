//! Admission: before a client's call reaches its handler, the frontend finds which RPC it is
//! and which namespace it names (from the request's bytes, by the descriptor's field number),
//! refuses it if the caller may not make it (chronicle-auth decides), or if the namespace or
//! the node is over its rate. One layer for every RPC, so no handler can forget it. Calls
//! between nodes (not in the client services) pass untouched.

mod namespace;
mod rate;

use crate::MAX_GRPC_MESSAGE;
use crate::error::FrontendError;
use crate::tls::Peer;
use chronicle_api::Rpc;
use chronicle_api::enums::v1::ResourceExhaustedScope;
use chronicle_auth::{Authorizer, CallInfo, Service};
use chronicle_common::config::LimitsTable;
use http_body_util::{BodyExt, Full, Limited};
use rate::{CallClass, RateLimits, Refused};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tonic::body::Body;
use tonic::{Code, Status};

/// The 5-byte prefix of a gRPC message.
const FRAME_PREFIX: usize = 5;

/// What admission knows of the client RPCs, who may call them, and the limits it applies.
pub(crate) struct Gate {
    rpcs: HashMap<&'static str, Known>,
    authorizer: Authorizer,
    rates: RateLimits,
}

#[derive(Clone, Copy)]
struct Known {
    rpc: Rpc,
    service: Service,
    class: CallClass,
}

impl Gate {
    pub(crate) fn new(limits: Arc<LimitsTable>, authorizer: Authorizer) -> Self {
        let rpcs = chronicle_api::RPCS
            .iter()
            .map(|rpc| {
                let known = Known {
                    rpc: *rpc,
                    service: service_of(rpc.path),
                    class: CallClass::of(rpc.method),
                };
                (rpc.path, known)
            })
            .collect();
        Self {
            rpcs,
            authorizer,
            rates: RateLimits::new(limits),
        }
    }

    /// Whether the caller may make the call, as its credentials say.
    fn authorize(
        &self,
        known: &Known,
        namespace: &str,
        parts: &http::request::Parts,
    ) -> Result<(), Status> {
        // A verified mTLS client certificate names its holder too (tls.rs put it there).
        let client = parts
            .extensions
            .get::<Peer>()
            .and_then(|p| p.client.as_ref());
        let call = CallInfo {
            service: known.service,
            api: known.rpc.method,
            namespace,
            authorization: parts
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok()),
            peer_identities: client.map_or(&[], |c| c.identities.as_slice()),
        };
        self.authorizer
            .authorize(&call)
            .map(drop)
            .map_err(|denied| Status::from(FrontendError::PermissionDenied(denied.message)))
    }

    /// Takes a token for one call of `class` in `namespace`, or says why not, as Temporal
    /// says it.
    fn admit(&self, class: CallClass, namespace: &str) -> Result<(), Status> {
        self.rates
            .admit(class, namespace, Instant::now())
            .map_err(|refused| {
                let scope = match refused {
                    Refused::Namespace => ResourceExhaustedScope::Namespace,
                    Refused::Node => ResourceExhaustedScope::System,
                };
                Status::from(FrontendError::RateLimited(scope))
            })
    }
}

/// The tower layer that puts a [`Gate`] in front of the services.
#[derive(Clone)]
pub struct AdmissionLayer(Arc<Gate>);

impl AdmissionLayer {
    pub(crate) fn new(gate: Gate) -> Self {
        Self(Arc::new(gate))
    }
}

impl<S> tower::Layer<S> for AdmissionLayer {
    type Service = Admission<S>;

    fn layer(&self, inner: S) -> Admission<S> {
        Admission {
            gate: self.0.clone(),
            inner,
        }
    }
}

#[derive(Clone)]
pub struct Admission<S> {
    gate: Arc<Gate>,
    inner: S,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S> tower::Service<http::Request<Body>> for Admission<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        // The clone is ready only once polled; the one polled ready serves this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let gate = self.gate.clone();
        Box::pin(async move {
            let Some(&known) = gate.rpcs.get(request.uri().path()) else {
                return inner.call(request).await;
            };
            let (rpc, class) = (known.rpc, known.class);
            let began = Instant::now();
            if class == CallClass::Open {
                let response = inner.call(request).await?;
                record(rpc.method, "", &response, began);
                return Ok(response);
            }
            let (parts, body) = request.into_parts();
            // Client calls are unary: the whole request is one message, bounded as tonic
            // bounds it, read here once and handed on.
            let bytes = match Limited::new(body, MAX_GRPC_MESSAGE + FRAME_PREFIX)
                .collect()
                .await
            {
                Ok(collected) => collected.to_bytes(),
                // Over the limit (as grpc-go words it, see message_size.rs), or the client went.
                Err(_) => {
                    let status = Status::resource_exhausted(format!(
                        "grpc: received message larger than max (more than {MAX_GRPC_MESSAGE} bytes)"
                    ));
                    return Ok(status.into_http());
                }
            };
            let namespace = namespace::namespace_of(&bytes, rpc.namespace_field);
            if let Err(status) = gate.authorize(&known, &namespace, &parts) {
                record(rpc.method, &namespace, &status.clone().into_http(), began);
                return Ok(status.into_http());
            }
            if let Err(status) = gate.admit(class, &namespace) {
                metrics::counter!(
                    "service_errors_resource_exhausted",
                    "operation" => rpc.method,
                    "namespace" => namespace,
                    "resource_exhausted_cause" => "RpsLimit",
                )
                .increment(1);
                return Ok(status.into_http());
            }
            let request = http::Request::from_parts(parts, Body::new(Full::new(bytes)));
            let response = inner.call(request).await?;
            record(rpc.method, &namespace, &response, began);
            Ok(response)
        })
    }
}

/// Temporal's request metrics for one call. An error answers in the headers (tonic sends
/// failed unary calls trailers-only); a success's status comes later, in its trailers.
/// A call whose namespace does not exist is labelled `_unknown_`, as Temporal labels it, so
/// made-up names cannot multiply the series.
fn record(method: &'static str, namespace: &str, response: &http::Response<Body>, began: Instant) {
    let status = Status::from_header_map(response.headers()).filter(|s| s.code() != Code::Ok);
    let namespace = if namespace.is_empty() || status.as_ref().is_some_and(namespace_not_found) {
        "_unknown_".to_owned()
    } else {
        namespace.to_owned()
    };
    let code = status.map(|s| s.code());
    let labels = [
        ("operation", method.to_owned()),
        ("namespace", namespace),
        ("service_name", "frontend".to_owned()),
    ];
    metrics::counter!("service_requests", &labels).increment(1);
    metrics::histogram!("service_latency", &labels).record(began.elapsed().as_secs_f64());
    if let Some(code) = code {
        let mut labels = labels.to_vec();
        labels.push(("error_type", format!("serviceerror_{code:?}")));
        metrics::counter!("service_error_with_type", &labels).increment(1);
    }
}

/// Whether a status is the refusal of a namespace that does not exist (its details say so).
fn namespace_not_found(status: &Status) -> bool {
    use chronicle_api::errordetails::v1::NamespaceNotFoundFailure;
    use prost::{Message, Name};
    chronicle_api::google::rpc::Status::decode(status.details()).is_ok_and(|s| {
        s.details.iter().any(|d| {
            d.type_url
                .ends_with(NamespaceNotFoundFailure::full_name().as_str())
        })
    })
}

/// The service an RPC path belongs to, for the role table.
fn service_of(path: &str) -> Service {
    if path.starts_with("/temporal.api.workflowservice.") {
        Service::Workflow
    } else if path.starts_with("/temporal.api.operatorservice.") {
        Service::Operator
    } else if path.starts_with("/grpc.health.") {
        Service::Health
    } else {
        Service::Other
    }
}

//! gRPC plumbing shared by the client and worker sides: connections, long-poll requests,
//! and the small messages every scenario builds.

use anyhow::Context;
use chronicle_api::common::v1::WorkflowExecution;
use chronicle_api::enums::v1::TaskQueueKind;
use chronicle_api::history::v1::HistoryEvent;
use chronicle_api::taskqueue::v1::TaskQueue;
use chronicle_api::wkt;
use chronicle_api::workflowservice::workflow_service_client::WorkflowServiceClient;
use chronicle_api::workflowservice::{
    DescribeNamespaceRequest, GetSystemInfoRequest, GetWorkflowExecutionHistoryRequest,
};
use prost::Message;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::{Interceptor, interceptor::InterceptedService};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};

pub type Client = WorkflowServiceClient<InterceptedService<Channel, Authorization>>;

/// The `authorization` header every call of this process carries, if set (one bench run
/// measures one caller).
static AUTHORIZATION: OnceLock<MetadataValue<Ascii>> = OnceLock::new();

pub fn send_authorization(value: &str) -> anyhow::Result<()> {
    let value = value
        .parse()
        .context("--authorization is not a header value")?;
    AUTHORIZATION
        .set(value)
        .map_err(|_| anyhow::anyhow!("the authorization header is set once"))
}

/// Adds the process's `authorization` header to a call.
#[derive(Clone, Copy)]
pub struct Authorization;

impl Interceptor for Authorization {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = AUTHORIZATION.get() {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// The grpc-timeout a worker sends with each long poll. Servers answer an empty task just
/// before it runs out (Temporal keeps a margin), so a poll never ends in an error.
pub const POLL_TIMEOUT: Duration = Duration::from_secs(70);

/// Timeout of the ordinary, short calls: long enough for a loaded server, short enough that
/// a stalled one shows up as errors instead of a hung benchmark.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A non-sticky workflow task of a long history can be large; tonic's default 4 MiB limit
/// would turn it into an error instead of a measurement.
const MAX_MESSAGE: usize = 256 * 1024 * 1024;

/// One HTTP/2 connection. Each role (starters, workflow pollers, activity pollers) gets its
/// own, as separate SDK workers and clients would, so one role's streams do not queue
/// behind another's.
pub async fn connect(address: &str) -> Result<Client, tonic::transport::Error> {
    let url = if address.contains("://") {
        address.to_owned()
    } else {
        format!("http://{address}")
    };
    let channel = Endpoint::from_shared(url)?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await?;
    Ok(
        WorkflowServiceClient::with_interceptor(channel, Authorization)
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE),
    )
}

/// A request with its grpc-timeout header set.
pub fn with_timeout<T>(message: T, timeout: Duration) -> Request<T> {
    let mut request = Request::new(message);
    request.set_timeout(timeout);
    request
}

/// Whether a poll error is only the poll's own deadline passing (an empty answer by another
/// name), not a failure.
pub fn is_poll_expiry(status: &Status) -> bool {
    matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled)
}

/// The readiness probe: what an SDK calls first when it connects.
pub async fn system_info(client: &mut Client) -> Result<(), Status> {
    client
        .get_system_info(with_timeout(
            GetSystemInfoRequest {},
            Duration::from_secs(2),
        ))
        .await
        .map(drop)
}

/// A server answers GetSystemInfo before its namespaces are all loaded (Temporal's cache
/// fills asynchronously); the run starts once the namespace is served.
pub async fn wait_for_namespace(address: &str, namespace: &str) -> anyhow::Result<()> {
    let mut client = connect(address)
        .await
        .with_context(|| format!("connecting to {address}"))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let request = DescribeNamespaceRequest {
            namespace: namespace.to_owned(),
            ..Default::default()
        };
        match client
            .describe_namespace(with_timeout(request, CALL_TIMEOUT))
            .await
        {
            Ok(_) => return Ok(()),
            Err(status) if Instant::now() > deadline => {
                anyhow::bail!("namespace {namespace} not available: {status}")
            }
            // Short: the time until it succeeds is one of the start-up figures.
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

/// The rest of a history, page by page from `token`; returns the events and their size on
/// the wire.
pub async fn history_pages(
    client: &mut Client,
    namespace: &str,
    execution: &WorkflowExecution,
    mut token: Vec<u8>,
) -> Result<(Vec<HistoryEvent>, usize), Status> {
    let (mut events, mut bytes) = (Vec::new(), 0);
    loop {
        let request = GetWorkflowExecutionHistoryRequest {
            namespace: namespace.to_owned(),
            execution: Some(execution.clone()),
            next_page_token: token,
            ..Default::default()
        };
        let page = client
            .get_workflow_execution_history(with_timeout(request, CALL_TIMEOUT))
            .await?
            .into_inner();
        if let Some(history) = page.history {
            bytes += history.encoded_len();
            events.extend(history.events);
        }
        if page.next_page_token.is_empty() {
            return Ok((events, bytes));
        }
        token = page.next_page_token;
    }
}

pub fn duration(d: Duration) -> wkt::Duration {
    wkt::Duration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

pub fn normal_queue(name: &str) -> TaskQueue {
    TaskQueue {
        name: name.to_owned(),
        kind: TaskQueueKind::Normal as i32,
        ..Default::default()
    }
}

pub fn sticky_queue(name: &str, normal: &str) -> TaskQueue {
    TaskQueue {
        name: name.to_owned(),
        kind: TaskQueueKind::Sticky as i32,
        normal_name: normal.to_owned(),
    }
}

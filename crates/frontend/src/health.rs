//! gRPC health: SERVING only while the node can do its work, that is while its database
//! answers and it owns shards. A probe reads the database every second; Watch streams each
//! change of status.

use chronicle_api::health::health_server::Health;
use chronicle_api::health::{
    HealthCheckRequest, HealthCheckResponse, health_check_response::ServingStatus,
};
use chronicle_common::Supervisor;
use chronicle_common::supervisor::CancellationToken;
use chronicle_history::History;
use std::time::Duration;
use tokio::sync::watch;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

/// Services a health check may name; "" asks about the server as a whole.
const SERVICES: &[&str] = &[
    "",
    "temporal.api.workflowservice.v1.WorkflowService",
    "temporal.api.operatorservice.v1.OperatorService",
];

const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// A probe that takes longer than this counts as an unreachable database: a hung connection
/// serves nobody either.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// What the node knows about itself when it answers a health check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthFacts {
    pub database_reachable: bool,
    /// The node holds its membership lease: it counts as a member and serves its share (a
    /// node owning no shard still forwards what it gets to the owners).
    pub member: bool,
}

/// The status the facts call for.
pub fn serving_status(facts: HealthFacts) -> ServingStatus {
    if facts.database_reachable && facts.member {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    }
}

pub struct HealthService {
    status: watch::Receiver<ServingStatus>,
}

impl HealthService {
    /// Starts the probe; it ends with the service or the supervisor's shutdown.
    pub fn start(history: History, supervisor: &Supervisor) -> Self {
        let (sender, status) = watch::channel(ServingStatus::Serving);
        supervisor.spawn("health probe", probe(history, sender, supervisor.token()));
        Self { status }
    }

    #[cfg(test)]
    pub(crate) fn following(status: watch::Receiver<ServingStatus>) -> Self {
        Self { status }
    }

    fn check(&self, service: &str) -> Result<HealthCheckResponse, Status> {
        if SERVICES.contains(&service) {
            Ok(response(*self.status.borrow()))
        } else {
            Err(Status::not_found(format!("unknown service {service}")))
        }
    }
}

fn response(status: ServingStatus) -> HealthCheckResponse {
    HealthCheckResponse {
        status: status as i32,
    }
}

async fn probe(history: History, status: watch::Sender<ServingStatus>, stop: CancellationToken) {
    let mut interval = tokio::time::interval(PROBE_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !status.is_closed() {
        tokio::select! {
            _ = interval.tick() => {}
            () = stop.cancelled() => return,
        }
        let reachable = tokio::time::timeout(PROBE_TIMEOUT, history.ping_store()).await;
        let facts = HealthFacts {
            database_reachable: matches!(reachable, Ok(Ok(()))),
            member: history.holds_membership(),
        };
        let now = serving_status(facts);
        status.send_if_modified(|current| std::mem::replace(current, now) != now);
    }
}

#[tonic::async_trait]
impl Health for HealthService {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        self.check(&request.into_inner().service).map(Response::new)
    }

    /// Sends the current status, then each change; an unknown service is reported as such
    /// (once), as the protocol asks.
    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<BoxStream<HealthCheckResponse>>, Status> {
        if !SERVICES.contains(&request.into_inner().service.as_str()) {
            let unknown = response(ServingStatus::ServiceUnknown);
            let stream = tokio_stream::StreamExt::chain(
                tokio_stream::once(Ok(unknown)),
                tokio_stream::pending(),
            );
            return Ok(Response::new(Box::pin(stream)));
        }
        let changes = tokio_stream::wrappers::WatchStream::new(self.status.clone());
        let stream = tokio_stream::StreamExt::map(changes, |status| Ok(response(status)));
        Ok(Response::new(Box::pin(stream)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(database_reachable: bool, member: bool) -> HealthFacts {
        HealthFacts {
            database_reachable,
            member,
        }
    }

    fn request(service: &str) -> Request<HealthCheckRequest> {
        Request::new(HealthCheckRequest {
            service: service.into(),
        })
    }

    #[tokio::test]
    async fn watch_streams_each_change_and_check_answers_the_latest() {
        use tokio_stream::StreamExt;
        let (sender, receiver) = watch::channel(ServingStatus::Serving);
        let service = HealthService::following(receiver);
        let mut changes = Health::watch(&service, request(""))
            .await
            .unwrap()
            .into_inner();
        let serving = response(ServingStatus::Serving);
        assert_eq!(changes.next().await.unwrap().unwrap(), serving);
        sender.send(ServingStatus::NotServing).unwrap();
        let not_serving = response(ServingStatus::NotServing);
        assert_eq!(changes.next().await.unwrap().unwrap(), not_serving);
        let checked = Health::check(&service, request("")).await.unwrap();
        assert_eq!(checked.into_inner(), not_serving);
        assert!(Health::check(&service, request("nope")).await.is_err());
    }

    #[test]
    fn serving_needs_the_database_and_a_live_membership() {
        assert_eq!(serving_status(facts(true, true)), ServingStatus::Serving);
        assert_eq!(
            serving_status(facts(false, true)),
            ServingStatus::NotServing
        );
        assert_eq!(
            serving_status(facts(true, false)),
            ServingStatus::NotServing
        );
        assert_eq!(
            serving_status(facts(false, false)),
            ServingStatus::NotServing
        );
    }
}

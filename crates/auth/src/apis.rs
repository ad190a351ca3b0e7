//! The role each API needs: one table, checked against Temporal's method metadata
//! (`common/api/metadata.go`: each method's scope and access) and its default authorizer.
//!
//! Where Chronicle differs from Temporal:
//! - the task APIs of workers (polls, task responses, heartbeats, sticky-queue reset, worker
//!   shutdown and heartbeat) need the worker role, where Temporal asks for writer;
//! - an API missing from the table (another service, or a method newer than the table) needs
//!   the system admin role, where Temporal refuses it to everyone;
//! - the health service's `Watch` is open with `Check`.

use crate::Role::{self, Admin, Read, Worker, Write};
use std::collections::HashMap;
use std::sync::LazyLock;

/// The gRPC service a call belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Service {
    /// `temporal.api.workflowservice.v1.WorkflowService`
    Workflow,
    /// `temporal.api.operatorservice.v1.OperatorService`
    Operator,
    /// `grpc.health.v1.Health`
    Health,
    /// Anything else, such as Chronicle's node-to-node services.
    Other,
}

/// What a call needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// Nothing: health checks and `GetSystemInfo`, which SDKs call before anything else and
    /// which tell nothing about workflows.
    Open,
    /// This role in the call's namespace, or as a system role.
    Namespace(Role),
    /// This role as a system role: the API is about the whole cluster.
    System(Role),
}

/// What calling `api` of `service` needs.
pub fn requirement(service: Service, api: &str) -> Requirement {
    if service == Service::Health {
        return Requirement::Open;
    }
    BY_NAME
        .get(&(service, api))
        .copied()
        .unwrap_or(Requirement::System(Admin))
}

static BY_NAME: LazyLock<HashMap<(Service, &'static str), Requirement>> =
    LazyLock::new(|| TABLE.iter().map(|&(s, api, r)| ((s, api), r)).collect());

const WF: Service = Service::Workflow;
const OP: Service = Service::Operator;
const OPEN: Requirement = Requirement::Open;

const fn ns(role: Role) -> Requirement {
    Requirement::Namespace(role)
}

const fn sys(role: Role) -> Requirement {
    Requirement::System(role)
}

/// Every method of WorkflowService and OperatorService in the order of their protos.
/// `RegisterNamespace` is namespace-scoped as in Temporal: an admin of the namespace it
/// names may register it.
#[rustfmt::skip]
const TABLE: &[(Service, &str, Requirement)] = &[
    (WF, "RegisterNamespace", ns(Admin)),
    (WF, "DescribeNamespace", ns(Read)),
    (WF, "ListNamespaces", sys(Read)),
    (WF, "UpdateNamespace", ns(Admin)),
    (WF, "DeprecateNamespace", ns(Admin)),
    (WF, "StartWorkflowExecution", ns(Write)),
    (WF, "ExecuteMultiOperation", ns(Write)),
    (WF, "GetWorkflowExecutionHistory", ns(Read)),
    (WF, "GetWorkflowExecutionHistoryReverse", ns(Read)),
    (WF, "PollWorkflowTaskQueue", ns(Worker)),
    (WF, "RespondWorkflowTaskCompleted", ns(Worker)),
    (WF, "RespondWorkflowTaskFailed", ns(Worker)),
    (WF, "PollActivityTaskQueue", ns(Worker)),
    (WF, "RecordActivityTaskHeartbeat", ns(Worker)),
    (WF, "RecordActivityTaskHeartbeatById", ns(Worker)),
    (WF, "RespondActivityTaskCompleted", ns(Worker)),
    (WF, "RespondActivityTaskCompletedById", ns(Worker)),
    (WF, "RespondActivityTaskFailed", ns(Worker)),
    (WF, "RespondActivityTaskFailedById", ns(Worker)),
    (WF, "RespondActivityTaskCanceled", ns(Worker)),
    (WF, "RespondActivityTaskCanceledById", ns(Worker)),
    (WF, "RequestCancelWorkflowExecution", ns(Write)),
    (WF, "SignalWorkflowExecution", ns(Write)),
    (WF, "SignalWithStartWorkflowExecution", ns(Write)),
    (WF, "ResetWorkflowExecution", ns(Write)),
    (WF, "TerminateWorkflowExecution", ns(Write)),
    (WF, "DeleteWorkflowExecution", ns(Write)),
    (WF, "ListOpenWorkflowExecutions", ns(Read)),
    (WF, "ListClosedWorkflowExecutions", ns(Read)),
    (WF, "ListWorkflowExecutions", ns(Read)),
    (WF, "ListArchivedWorkflowExecutions", ns(Read)),
    (WF, "ScanWorkflowExecutions", ns(Read)),
    (WF, "CountWorkflowExecutions", ns(Read)),
    (WF, "GetSearchAttributes", sys(Read)),
    (WF, "RespondQueryTaskCompleted", ns(Worker)),
    (WF, "ResetStickyTaskQueue", ns(Worker)),
    (WF, "ShutdownWorker", ns(Worker)),
    (WF, "QueryWorkflow", ns(Read)),
    (WF, "DescribeWorkflowExecution", ns(Read)),
    (WF, "DescribeTaskQueue", ns(Read)),
    (WF, "GetClusterInfo", sys(Read)),
    (WF, "GetSystemInfo", OPEN),
    (WF, "ListTaskQueuePartitions", ns(Read)),
    (WF, "CreateSchedule", ns(Write)),
    (WF, "DescribeSchedule", ns(Read)),
    (WF, "UpdateSchedule", ns(Write)),
    (WF, "PatchSchedule", ns(Write)),
    (WF, "ListScheduleMatchingTimes", ns(Read)),
    (WF, "DeleteSchedule", ns(Write)),
    (WF, "ListSchedules", ns(Read)),
    (WF, "CountSchedules", ns(Read)),
    (WF, "UpdateWorkerBuildIdCompatibility", ns(Write)),
    (WF, "GetWorkerBuildIdCompatibility", ns(Read)),
    (WF, "UpdateWorkerVersioningRules", ns(Write)),
    (WF, "GetWorkerVersioningRules", ns(Read)),
    (WF, "GetWorkerTaskReachability", ns(Read)),
    (WF, "DescribeDeployment", ns(Read)),
    (WF, "DescribeWorkerDeploymentVersion", ns(Read)),
    (WF, "ListDeployments", ns(Read)),
    (WF, "GetDeploymentReachability", ns(Read)),
    (WF, "GetCurrentDeployment", ns(Read)),
    (WF, "SetCurrentDeployment", ns(Write)),
    (WF, "SetWorkerDeploymentCurrentVersion", ns(Write)),
    (WF, "DescribeWorkerDeployment", ns(Read)),
    (WF, "DeleteWorkerDeployment", ns(Write)),
    (WF, "DeleteWorkerDeploymentVersion", ns(Write)),
    (WF, "SetWorkerDeploymentRampingVersion", ns(Write)),
    (WF, "ListWorkerDeployments", ns(Read)),
    (WF, "CreateWorkerDeployment", ns(Write)),
    (WF, "CreateWorkerDeploymentVersion", ns(Write)),
    (WF, "UpdateWorkerDeploymentVersionComputeConfig", ns(Write)),
    (WF, "ValidateWorkerDeploymentVersionComputeConfig", ns(Read)),
    (WF, "UpdateWorkerDeploymentVersionMetadata", ns(Write)),
    (WF, "SetWorkerDeploymentManager", ns(Write)),
    (WF, "UpdateWorkflowExecution", ns(Write)),
    (WF, "PollWorkflowExecutionUpdate", ns(Read)),
    (WF, "StartBatchOperation", ns(Write)),
    (WF, "StopBatchOperation", ns(Write)),
    (WF, "DescribeBatchOperation", ns(Read)),
    (WF, "ListBatchOperations", ns(Read)),
    (WF, "PollNexusTaskQueue", ns(Worker)),
    (WF, "RespondNexusTaskCompleted", ns(Worker)),
    (WF, "RespondNexusTaskFailed", ns(Worker)),
    (WF, "UpdateActivityOptions", ns(Write)),
    (WF, "UpdateWorkflowExecutionOptions", ns(Write)),
    (WF, "PauseActivity", ns(Write)),
    (WF, "UnpauseActivity", ns(Write)),
    (WF, "ResetActivity", ns(Write)),
    (WF, "CreateWorkflowRule", ns(Write)),
    (WF, "DescribeWorkflowRule", ns(Read)),
    (WF, "DeleteWorkflowRule", ns(Write)),
    (WF, "ListWorkflowRules", ns(Read)),
    (WF, "TriggerWorkflowRule", ns(Write)),
    (WF, "RecordWorkerHeartbeat", ns(Worker)),
    (WF, "ListWorkers", ns(Read)),
    (WF, "CountWorkers", ns(Read)),
    (WF, "UpdateTaskQueueConfig", ns(Write)),
    (WF, "FetchWorkerConfig", ns(Read)),
    (WF, "UpdateWorkerConfig", ns(Write)),
    (WF, "DescribeWorker", ns(Read)),
    (WF, "PauseWorkflowExecution", ns(Write)),
    (WF, "UnpauseWorkflowExecution", ns(Write)),
    (WF, "StartActivityExecution", ns(Write)),
    (WF, "StartNexusOperationExecution", ns(Write)),
    (WF, "DescribeActivityExecution", ns(Read)),
    (WF, "DescribeNexusOperationExecution", ns(Read)),
    (WF, "PollActivityExecution", ns(Read)),
    (WF, "PollNexusOperationExecution", ns(Read)),
    (WF, "ListActivityExecutions", ns(Read)),
    (WF, "ListNexusOperationExecutions", ns(Read)),
    (WF, "CountActivityExecutions", ns(Read)),
    (WF, "CountNexusOperationExecutions", ns(Read)),
    (WF, "RequestCancelActivityExecution", ns(Write)),
    (WF, "RequestCancelNexusOperationExecution", ns(Write)),
    (WF, "TerminateActivityExecution", ns(Write)),
    (WF, "DeleteActivityExecution", ns(Write)),
    (WF, "PauseActivityExecution", ns(Write)),
    (WF, "ResetActivityExecution", ns(Write)),
    (WF, "UnpauseActivityExecution", ns(Write)),
    (WF, "UpdateActivityExecutionOptions", ns(Write)),
    (WF, "TerminateNexusOperationExecution", ns(Write)),
    (WF, "DeleteNexusOperationExecution", ns(Write)),
    (WF, "PollWorkflowExecutionTimeSkipping", ns(Read)),
    (OP, "AddSearchAttributes", ns(Admin)),
    (OP, "RemoveSearchAttributes", ns(Admin)),
    (OP, "ListSearchAttributes", ns(Read)),
    (OP, "DeleteNamespace", ns(Admin)),
    (OP, "AddOrUpdateRemoteCluster", sys(Admin)),
    (OP, "RemoveRemoteCluster", sys(Admin)),
    (OP, "ListClusters", sys(Admin)),
    (OP, "GetNexusEndpoint", sys(Admin)),
    (OP, "CreateNexusEndpoint", sys(Admin)),
    (OP, "UpdateNexusEndpoint", sys(Admin)),
    (OP, "DeleteNexusEndpoint", sys(Admin)),
    (OP, "ListNexusEndpoints", sys(Admin)),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_names_each_method_once() {
        assert_eq!(BY_NAME.len(), TABLE.len());
        assert_eq!(TABLE.iter().filter(|(s, ..)| *s == WF).count(), 123);
        assert_eq!(TABLE.iter().filter(|(s, ..)| *s == OP).count(), 12);
    }

    #[test]
    fn requirements_follow_temporal() {
        let cases = [
            (WF, "GetSystemInfo", OPEN),
            (Service::Health, "Check", OPEN),
            (Service::Health, "Watch", OPEN),
            (WF, "GetClusterInfo", sys(Read)),
            (WF, "ListNamespaces", sys(Read)),
            (WF, "GetSearchAttributes", sys(Read)),
            (WF, "RegisterNamespace", ns(Admin)),
            (WF, "UpdateNamespace", ns(Admin)),
            (WF, "DescribeNamespace", ns(Read)),
            (WF, "ListWorkflowExecutions", ns(Read)),
            (WF, "QueryWorkflow", ns(Read)),
            (WF, "PollWorkflowExecutionUpdate", ns(Read)),
            (WF, "PollWorkflowTaskQueue", ns(Worker)),
            (WF, "PollNexusTaskQueue", ns(Worker)),
            (WF, "RecordActivityTaskHeartbeatById", ns(Worker)),
            (WF, "RespondQueryTaskCompleted", ns(Worker)),
            (WF, "StartWorkflowExecution", ns(Write)),
            (WF, "TerminateWorkflowExecution", ns(Write)),
            (WF, "CreateSchedule", ns(Write)),
            (WF, "StartBatchOperation", ns(Write)),
            (OP, "AddSearchAttributes", ns(Admin)),
            (OP, "ListSearchAttributes", ns(Read)),
            (OP, "DeleteNamespace", ns(Admin)),
            (OP, "ListClusters", sys(Admin)),
            (OP, "ListNexusEndpoints", sys(Admin)),
            (WF, "NoSuchMethod", sys(Admin)),
            (OP, "GetSystemInfo", sys(Admin)),
            (Service::Other, "Forward", sys(Admin)),
        ];
        for (service, api, expected) in cases {
            assert_eq!(requirement(service, api), expected, "{service:?} {api}");
        }
    }
}

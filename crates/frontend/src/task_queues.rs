//! DescribeTaskQueue, in both shapes the CLI asks for: the enhanced one (per task queue type,
//! under the unversioned build "") and the legacy one (one type, optional status).

use crate::error::Result;
use crate::handler::Handler;
use crate::validate;
use chronicle_api::enums::v1::{DescribeTaskQueueMode, TaskQueueType};
use chronicle_api::taskqueue::v1::{
    PollerInfo, TaskQueueStats, TaskQueueStatus, TaskQueueTypeInfo, TaskQueueVersionInfo,
};
use chronicle_api::workflowservice::{DescribeTaskQueueRequest, DescribeTaskQueueResponse};
use chronicle_common::{QueueKind, time};
use chronicle_matching::QueueKey;

fn queue_kind(task_queue_type: i32) -> QueueKind {
    if task_queue_type == TaskQueueType::Activity as i32 {
        QueueKind::Activity
    } else {
        QueueKind::Workflow
    }
}

impl Handler {
    fn pollers(&self, key: &QueueKey) -> Vec<PollerInfo> {
        let pollers = self.matching.pollers(key).into_iter();
        pollers
            .map(|p| PollerInfo {
                last_access_time: Some(time::timestamp(p.last_access_time)),
                identity: p.identity,
                ..Default::default()
            })
            .collect()
    }

    /// Only the backlog count is known; rates and backlog age are not tracked.
    fn stats(&self, key: &QueueKey) -> TaskQueueStats {
        TaskQueueStats {
            approximate_backlog_count: self.matching.backlog_len(key) as i64,
            ..Default::default()
        }
    }

    // The enhanced mode and the legacy status are deprecated in the API, yet the CLI's
    // `task-queue describe` (and its `--legacy-mode`) still read them.
    #[allow(deprecated)]
    pub async fn describe_task_queue(
        &self,
        r: DescribeTaskQueueRequest,
    ) -> Result<DescribeTaskQueueResponse> {
        let namespace = self.namespaces.resolve(&r.namespace).await?;
        validate::task_queue(r.task_queue.as_ref())?;
        let name = r.task_queue.map(|q| q.name).unwrap_or_default();
        let key = |task_queue_type: i32| QueueKey {
            namespace_id: namespace.id.clone(),
            name: name.clone(),
            kind: queue_kind(task_queue_type),
        };
        if r.api_mode == DescribeTaskQueueMode::Enhanced as i32 {
            let types = match r.task_queue_types.as_slice() {
                [] => vec![
                    TaskQueueType::Workflow as i32,
                    TaskQueueType::Activity as i32,
                ],
                types => types.to_vec(),
            };
            let types_info = types
                .into_iter()
                .map(|t| {
                    let info = TaskQueueTypeInfo {
                        pollers: if r.report_pollers {
                            self.pollers(&key(t))
                        } else {
                            Vec::new()
                        },
                        stats: r.report_stats.then(|| self.stats(&key(t))),
                    };
                    (t, info)
                })
                .collect();
            let unversioned = TaskQueueVersionInfo {
                types_info,
                ..Default::default()
            };
            let versions_info = [(String::new(), unversioned)].into();
            return Ok(DescribeTaskQueueResponse {
                versions_info,
                ..Default::default()
            });
        }
        let key = key(r.task_queue_type);
        let task_queue_status = r.include_task_queue_status.then(|| TaskQueueStatus {
            backlog_count_hint: self.stats(&key).approximate_backlog_count,
            ..Default::default()
        });
        Ok(DescribeTaskQueueResponse {
            pollers: self.pollers(&key),
            stats: r.report_stats.then(|| self.stats(&key)),
            task_queue_status,
            ..Default::default()
        })
    }
}

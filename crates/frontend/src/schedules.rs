//! Schedules, run by the internal worker: each call about one schedule reaches the member
//! running it (routing.rs); lists and counts read the stored schedules here.

use crate::error::Result;
use crate::handler::Handler;
use crate::validate;
use chronicle_api::common::v1::{Memo, SearchAttributes};
use chronicle_api::schedule::v1::Schedule;
use chronicle_api::schedule::v1::schedule_action::Action;
use chronicle_api::workflowservice::*;
use chronicle_history::NamespaceRef;

impl Handler {
    pub async fn create_schedule(
        &self,
        r: CreateScheduleRequest,
    ) -> Result<CreateScheduleResponse> {
        let namespace = self.namespaces.resolve(&r.namespace).await?;
        validate::optional_id(&r.request_id, "RequestId")?;
        self.check_schedule(
            &namespace,
            r.schedule.as_ref(),
            r.memo.as_ref(),
            r.search_attributes.as_ref(),
        )
        .await?;
        let conflict_token = self.worker.create_schedule(&namespace.id, r).await?;
        Ok(CreateScheduleResponse { conflict_token })
    }

    pub async fn describe_schedule(
        &self,
        r: DescribeScheduleRequest,
    ) -> Result<DescribeScheduleResponse> {
        let namespace = self.namespaces.resolve(&r.namespace).await?;
        Ok(self
            .worker
            .describe_schedule(&namespace.id, &r.schedule_id)
            .await?)
    }

    pub async fn update_schedule(&self, r: UpdateScheduleRequest) -> Result<()> {
        let namespace = self.namespaces.resolve(&r.namespace).await?;
        self.check_schedule(
            &namespace,
            r.schedule.as_ref(),
            None,
            r.search_attributes.as_ref(),
        )
        .await?;
        Ok(self.worker.update_schedule(&namespace.id, r).await?)
    }

    pub async fn patch_schedule(&self, r: PatchScheduleRequest) -> Result<()> {
        let namespace = self.namespaces.resolve(&r.namespace).await?;
        let patch = r.patch.unwrap_or_default();
        Ok(self
            .worker
            .patch_schedule(&namespace.id, &r.schedule_id, patch)
            .await?)
    }

    pub async fn delete_schedule(&self, r: DeleteScheduleRequest) -> Result<()> {
        let namespace = self.namespaces.resolve(&r.namespace).await?;
        Ok(self
            .worker
            .delete_schedule(&namespace.id, &r.schedule_id)
            .await?)
    }

    pub async fn list_schedules(&self, r: ListSchedulesRequest) -> Result<ListSchedulesResponse> {
        let namespace = self.namespaces.resolve(&r.namespace).await?;
        self.check_query(&r.namespace, &r.query)?;
        Ok(self.worker.list_schedules(&namespace.id, r).await?)
    }

    pub async fn count_schedules(
        &self,
        r: CountSchedulesRequest,
    ) -> Result<CountSchedulesResponse> {
        let namespace = self.namespaces.resolve(&r.namespace).await?;
        self.check_query(&r.namespace, &r.query)?;
        let count = self.worker.count_schedules(&namespace.id, &r.query).await?;
        Ok(CountSchedulesResponse {
            count,
            groups: Vec::new(),
        })
    }

    pub async fn schedule_matching_times(
        &self,
        r: ListScheduleMatchingTimesRequest,
    ) -> Result<ListScheduleMatchingTimesResponse> {
        let namespace = self.namespaces.resolve(&r.namespace).await?;
        Ok(self
            .worker
            .schedule_matching_times(&namespace.id, r)
            .await?)
    }

    /// A schedule's memo and search attributes, and what its action will start each workflow
    /// with, are checked as a start checks them, so a schedule that could never start its
    /// workflows is refused when made rather than failing every action.
    async fn check_schedule(
        &self,
        namespace: &NamespaceRef,
        schedule: Option<&Schedule>,
        memo: Option<&Memo>,
        search_attributes: Option<&SearchAttributes>,
    ) -> Result<()> {
        let history = &self.history;
        history
            .check_memo_and_attributes(namespace, memo, search_attributes)
            .await?;
        let action = schedule.and_then(|s| s.action.as_ref());
        let Some(Action::StartWorkflow(start)) = action.and_then(|a| a.action.as_ref()) else {
            return Ok(());
        };
        let blobs = self.blobs(&namespace.name);
        blobs.check(start.input.as_ref(), "Input")?;
        blobs.check(start.header.as_ref(), "Header")?;
        blobs.check(start.memo.as_ref(), "Memo")?;
        let attributes = start.search_attributes.as_ref();
        Ok(history
            .check_memo_and_attributes(namespace, start.memo.as_ref(), attributes)
            .await?)
    }
}

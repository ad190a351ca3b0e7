//! Schedules, run by the internal worker: each call about one schedule reaches the member
//! running it (routing.rs); lists and counts read the stored schedules here.

use crate::error::Result;
use crate::handler::Handler;
use crate::validate;
use chronicle_api::workflowservice::*;

impl Handler {
    pub async fn create_schedule(
        &self,
        r: CreateScheduleRequest,
    ) -> Result<CreateScheduleResponse> {
        let namespace = self.namespaces.resolve(&r.namespace).await?;
        validate::optional_id(&r.request_id, "RequestId")?;
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
}

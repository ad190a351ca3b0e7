//! Batch operations, run by the internal worker.

use crate::error::Result;
use crate::handler::Handler;
use crate::validate;
use chronicle_api::workflowservice::*;

impl Handler {
    pub async fn start_batch(&self, r: StartBatchOperationRequest) -> Result<()> {
        let namespace = self.namespaces.resolve(&r.namespace).await?;
        validate::optional_id(&r.job_id, "JobId")?;
        self.check_query(&r.namespace, &r.visibility_query)?;
        Ok(self.worker.start_batch(&namespace.id, r).await?)
    }

    pub async fn describe_batch(
        &self,
        r: DescribeBatchOperationRequest,
    ) -> Result<DescribeBatchOperationResponse> {
        let namespace = self.namespaces.resolve(&r.namespace).await?;
        Ok(self.worker.describe_batch(&namespace.id, &r.job_id).await?)
    }

    pub async fn list_batches(
        &self,
        r: ListBatchOperationsRequest,
    ) -> Result<ListBatchOperationsResponse> {
        let namespace = self.namespaces.resolve(&r.namespace).await?;
        Ok(self.worker.list_batches(&namespace.id).await?)
    }

    pub async fn stop_batch(&self, r: StopBatchOperationRequest) -> Result<()> {
        let namespace = self.namespaces.resolve(&r.namespace).await?;
        Ok(self
            .worker
            .stop_batch(&namespace.id, &r.job_id, &r.reason)
            .await?)
    }
}

//! OperatorService: search attribute registration. RPCs not listed here (Nexus endpoints,
//! remote clusters) answer `Unimplemented` naming themselves.

use crate::FrontendError;
use crate::handler::Handler;
use chronicle_api::operatorservice::operator_service_server::OperatorService;
use chronicle_api::operatorservice::*;
use tonic::{Request, Response, Status};

/// The operator service shares the workflow service's handler.
pub struct Operator(pub Handler);

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl OperatorService for Operator {
    async fn add_search_attributes(
        &self,
        request: Request<AddSearchAttributesRequest>,
    ) -> Reply<AddSearchAttributesResponse> {
        self.0.add_search_attributes(request.into_inner()).await?;
        Ok(Response::new(AddSearchAttributesResponse {}))
    }

    async fn remove_search_attributes(
        &self,
        request: Request<RemoveSearchAttributesRequest>,
    ) -> Reply<RemoveSearchAttributesResponse> {
        self.0
            .remove_search_attributes(request.into_inner())
            .await?;
        Ok(Response::new(RemoveSearchAttributesResponse {}))
    }

    /// The namespace is renamed and marked deleted at once (its name is free again); its
    /// workflows are deleted by a stored job of the internal worker, stored before the
    /// namespace is marked, so a crash cannot leave a deleted namespace's workflows behind.
    async fn delete_namespace(
        &self,
        request: Request<DeleteNamespaceRequest>,
    ) -> Reply<DeleteNamespaceResponse> {
        let r = request.into_inner();
        let namespaces = &self.0.namespaces;
        let namespace = namespaces.resolve_for_delete(&r.namespace).await?;
        let marked = self
            .0
            .worker
            .delete_namespace(&namespace.id, namespaces.delete(&namespace));
        let deleted_namespace = marked.await.map_err(FrontendError::from)??;
        Ok(Response::new(DeleteNamespaceResponse { deleted_namespace }))
    }

    async fn list_search_attributes(
        &self,
        request: Request<ListSearchAttributesRequest>,
    ) -> Reply<ListSearchAttributesResponse> {
        Ok(Response::new(
            self.0.list_search_attributes(request.into_inner()).await?,
        ))
    }
}

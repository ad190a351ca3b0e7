//! The namespace registry: namespaces as stored (their DescribeNamespaceResponse, protobuf
//! encoded), cached by name. The database is the truth: a name missing from the cache is
//! looked up there, so a namespace registered through another node is found too.

use crate::error::{FrontendError, Result, invalid};
use chronicle_api::enums::v1::NamespaceState;
use chronicle_api::namespace::v1::{NamespaceConfig, NamespaceInfo, namespace_info::Capabilities};
use chronicle_api::replication::v1::{ClusterReplicationConfig, NamespaceReplicationConfig};
use chronicle_api::workflowservice::{
    DescribeNamespaceRequest, DescribeNamespaceResponse, ListNamespacesRequest,
    ListNamespacesResponse, RegisterNamespaceRequest, UpdateNamespaceRequest,
    UpdateNamespaceResponse,
};
use chronicle_common::config::LimitsTable;
use chronicle_common::{limits, time};
use chronicle_history::NamespaceRef;
use chronicle_persistence::{NamespaceRow, NamespaceStore, PersistenceError};
use prost::Message;
use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

/// The only cluster of a Chronicle deployment, as replication configs name it.
pub const CLUSTER_NAME: &str = "active";
const DEFAULT_PAGE_SIZE: usize = 100;
/// Temporal's shortest retention, and Chronicle's unless `limits.min_retention_secs` lowers it.
const HOUR: Duration = Duration::from_secs(3600);

#[derive(Clone)]
pub struct Namespaces {
    store: Arc<dyn NamespaceStore>,
    by_name: Arc<RwLock<HashMap<String, Arc<DescribeNamespaceResponse>>>>,
    min_retention: Duration,
}

/// What this server supports in every namespace; SDKs read it from DescribeNamespace.
/// Derived when a namespace is read, so namespaces stored by older versions say the truth.
/// The namespace's payload and memo limits, which the SDKs read to refuse an oversized
/// payload before sending it (as they do against Temporal).
pub(crate) fn with_limits(
    mut described: DescribeNamespaceResponse,
    table: &LimitsTable,
) -> DescribeNamespaceResponse {
    if let Some(info) = described.namespace_info.as_mut() {
        let limits = table.for_namespace(&info.name);
        info.limits = Some(chronicle_api::namespace::v1::namespace_info::Limits {
            blob_size_limit_error: i64::try_from(limits.blob_size_error).unwrap_or(i64::MAX),
            memo_size_limit_error: i64::try_from(limits.memo_size_error).unwrap_or(i64::MAX),
            workflow_task_completion_size_limit_error: 0,
        });
    }
    described
}

fn capabilities() -> Capabilities {
    Capabilities {
        sync_update: true,
        async_update: true,
        ..Default::default()
    }
}

fn decode(row: &NamespaceRow) -> Result<DescribeNamespaceResponse> {
    let mut described = DescribeNamespaceResponse::decode(row.data.as_slice())
        .map_err(|e| PersistenceError::Corrupt(format!("namespace {}: {e}", row.name)))?;
    if let Some(info) = described.namespace_info.as_mut() {
        info.capabilities = Some(capabilities());
    }
    Ok(described)
}

/// The namespace's info, which stored namespaces carry.
fn info(d: &DescribeNamespaceResponse) -> Result<&NamespaceInfo> {
    d.namespace_info.as_ref().ok_or_else(|| {
        PersistenceError::Corrupt("namespace without its namespace info".into()).into()
    })
}

fn validate_retention(
    retention: Option<&chronicle_api::wkt::Duration>,
    min: Duration,
) -> Result<Option<Duration>> {
    let retention = time::optional_duration(retention, "WorkflowExecutionRetentionPeriod")
        .map_err(|e| invalid(e.to_string()))?;
    match retention {
        Some(r) if r < min => Err(invalid(if min == HOUR {
            "WorkflowExecutionRetentionPeriod should be at least 1 hour.".to_owned()
        } else {
            format!("WorkflowExecutionRetentionPeriod should be at least {min:?}.")
        })),
        other => Ok(other),
    }
}

impl Namespaces {
    pub fn new(store: Arc<dyn NamespaceStore>) -> Self {
        Self {
            store,
            by_name: Arc::default(),
            min_retention: HOUR,
        }
    }

    /// Namespaces may be kept as briefly as `min` (Temporal: an hour).
    pub fn with_min_retention(mut self, min: Duration) -> Self {
        self.min_retention = min;
        self
    }

    /// Creates the namespace unless it exists (start-dev's `--namespace`).
    pub async fn ensure(&self, name: &str, retention: Duration) -> Result<()> {
        let request = RegisterNamespaceRequest {
            namespace: name.to_owned(),
            workflow_execution_retention_period: Some(time::duration(retention)),
            ..Default::default()
        };
        match self.register(request).await {
            Ok(()) | Err(FrontendError::NamespaceAlreadyExists) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub async fn register(&self, r: RegisterNamespaceRequest) -> Result<()> {
        if r.namespace.is_empty() || r.namespace.len() > limits::MAX_ID_LENGTH {
            return Err(invalid(format!(
                "Namespace name must be 1 to {} characters.",
                limits::MAX_ID_LENGTH
            )));
        }
        // As in Temporal, a namespace is never registered without a retention period.
        let retention = validate_retention(
            r.workflow_execution_retention_period.as_ref(),
            self.min_retention,
        )?
        .ok_or_else(|| invalid("A valid retention period is not set on request."))?;
        let id = uuid::Uuid::new_v4().to_string();
        let described = DescribeNamespaceResponse {
            namespace_info: Some(NamespaceInfo {
                name: r.namespace.clone(),
                state: NamespaceState::Registered as i32,
                description: r.description,
                owner_email: r.owner_email,
                data: r.data,
                id: id.clone(),
                capabilities: Some(capabilities()),
                ..Default::default()
            }),
            config: Some(NamespaceConfig {
                workflow_execution_retention_ttl: Some(time::duration(retention)),
                ..Default::default()
            }),
            replication_config: Some(NamespaceReplicationConfig {
                active_cluster_name: CLUSTER_NAME.into(),
                clusters: vec![ClusterReplicationConfig {
                    cluster_name: CLUSTER_NAME.into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let row = NamespaceRow {
            id,
            name: r.namespace.clone(),
            data: described.encode_to_vec(),
        };
        match self.store.create_namespace(&row).await {
            Ok(()) => {}
            Err(PersistenceError::AlreadyExists(_)) => {
                return Err(FrontendError::NamespaceAlreadyExists);
            }
            Err(e) => return Err(e.into()),
        }
        self.cache(Arc::new(described))?;
        tracing::info!(namespace = %r.namespace, "namespace registered");
        Ok(())
    }

    fn cache(&self, described: Arc<DescribeNamespaceResponse>) -> Result<()> {
        let name = info(&described)?.name.clone();
        self.by_name
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name, described);
        Ok(())
    }

    async fn by_name(&self, name: &str) -> Result<Arc<DescribeNamespaceResponse>> {
        if let Some(found) = self
            .by_name
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
        {
            return Ok(found.clone());
        }
        let row = self.store.namespace_by_name(name).await?;
        let row = row.ok_or_else(|| FrontendError::NamespaceNotFound(name.to_owned()))?;
        let described = Arc::new(decode(&row)?);
        self.cache(described.clone())?;
        Ok(described)
    }

    /// The namespace a request names. Empty names are rejected before any lookup.
    pub async fn resolve(&self, name: &str) -> Result<NamespaceRef> {
        if name.is_empty() {
            return Err(invalid("Namespace not set on request."));
        }
        let described = self.by_name(name).await?;
        let info = info(&described)?;
        let retention = described
            .config
            .as_ref()
            .and_then(|c| time::stored_duration(c.workflow_execution_retention_ttl.as_ref()));
        Ok(NamespaceRef {
            id: info.id.clone(),
            name: info.name.clone(),
            retention,
        })
    }

    /// The namespace a request that starts workflows names: it must not be deprecated.
    pub async fn resolve_for_start(&self, name: &str) -> Result<NamespaceRef> {
        let namespace = self.resolve(name).await?;
        let described = self.by_name(name).await?;
        if info(&described)?.state == NamespaceState::Deprecated as i32 {
            return Err(FrontendError::NamespaceDeprecated(namespace.name));
        }
        Ok(namespace)
    }

    async fn save(&self, described: DescribeNamespaceResponse) -> Result<()> {
        let info = info(&described)?;
        let row = NamespaceRow {
            id: info.id.clone(),
            name: info.name.clone(),
            data: described.encode_to_vec(),
        };
        self.store.update_namespace(&row).await?;
        self.cache(Arc::new(described))
    }

    /// Running workflows go on; new ones are refused.
    pub async fn deprecate(&self, name: &str) -> Result<()> {
        let mut described = self.by_name(name).await?.as_ref().clone();
        described
            .namespace_info
            .get_or_insert_with(Default::default)
            .state = NamespaceState::Deprecated as i32;
        self.save(described).await
    }

    /// The namespace a DeleteNamespace names, if it may be deleted.
    pub async fn resolve_for_delete(&self, name: &str) -> Result<NamespaceRef> {
        if name == "default" {
            return Err(invalid("The default namespace cannot be deleted."));
        }
        self.resolve(name).await
    }

    /// Marks the namespace deleted and frees its name; returns the name it now has. Its
    /// workflows are deleted by the caller. A namespace of that name but another id (the one
    /// resolved was deleted and the name taken again meanwhile) is left alone.
    pub async fn delete(&self, namespace: &NamespaceRef) -> Result<String> {
        let name = namespace.name.as_str();
        let mut described = self.by_name(name).await?.as_ref().clone();
        let info = described
            .namespace_info
            .get_or_insert_with(Default::default);
        if info.id != namespace.id {
            return Err(FrontendError::NamespaceNotFound(name.to_owned()));
        }
        let id = &namespace.id;
        let renamed = format!("{name}-deleted-{}", &id[..id.len().min(5)]);
        info.state = NamespaceState::Deleted as i32;
        info.name.clone_from(&renamed);
        self.by_name
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
        self.save(described).await?;
        Ok(renamed)
    }

    pub async fn describe(&self, r: DescribeNamespaceRequest) -> Result<DescribeNamespaceResponse> {
        if !r.id.is_empty() {
            let row = self.store.namespace_by_id(&r.id).await?;
            let row = row.ok_or_else(|| FrontendError::NamespaceNotFound(r.id.clone()))?;
            return decode(&row);
        }
        if r.namespace.is_empty() {
            return Err(invalid("Namespace not set on request."));
        }
        Ok(self.by_name(&r.namespace).await?.as_ref().clone())
    }

    /// Namespaces in name order; the page token is the last name of the previous page.
    pub async fn list(&self, r: ListNamespacesRequest) -> Result<ListNamespacesResponse> {
        let after =
            String::from_utf8(r.next_page_token).map_err(|_| invalid("Invalid NextPageToken."))?;
        let size = usize::try_from(r.page_size)
            .ok()
            .filter(|s| *s > 0)
            .unwrap_or(DEFAULT_PAGE_SIZE);
        let rows = self.store.list_namespaces().await?;
        let mut namespaces = Vec::new();
        let include_deleted = r.namespace_filter.is_some_and(|f| f.include_deleted);
        for row in rows.iter().filter(|row| row.name > after) {
            let described = decode(row)?;
            if include_deleted || info(&described)?.state != NamespaceState::Deleted as i32 {
                namespaces.push(described);
            }
            if namespaces.len() > size {
                break;
            }
        }
        let more = namespaces.len() > size;
        namespaces.truncate(size);
        let next_page_token = match namespaces.last() {
            Some(last) if more => info(last)?.name.clone().into_bytes(),
            _ => Vec::new(),
        };
        Ok(ListNamespacesResponse {
            namespaces,
            next_page_token,
        })
    }

    pub async fn update(&self, r: UpdateNamespaceRequest) -> Result<UpdateNamespaceResponse> {
        let mut described = self
            .describe(DescribeNamespaceRequest {
                namespace: r.namespace.clone(),
                ..Default::default()
            })
            .await?;
        let info = described
            .namespace_info
            .get_or_insert_with(Default::default);
        if let Some(update) = r.update_info {
            if !update.description.is_empty() {
                info.description = update.description;
            }
            if !update.owner_email.is_empty() {
                info.owner_email = update.owner_email;
            }
            info.data.extend(update.data);
            if update.state != NamespaceState::Unspecified as i32 {
                info.state = update.state;
            }
        }
        let retention = r.config.and_then(|c| c.workflow_execution_retention_ttl);
        if let Some(retention) = validate_retention(retention.as_ref(), self.min_retention)? {
            described
                .config
                .get_or_insert_with(Default::default)
                .workflow_execution_retention_ttl = Some(time::duration(retention));
        }
        let response = UpdateNamespaceResponse {
            namespace_info: described.namespace_info.clone(),
            config: described.config.clone(),
            replication_config: described.replication_config.clone(),
            failover_version: described.failover_version,
            is_global_namespace: described.is_global_namespace,
        };
        self.save(described).await?;
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chronicle_persistence::{Backend, Schema, SqlStore};

    async fn registry() -> Namespaces {
        Namespaces::new(Arc::new(
            SqlStore::open(&Backend::SqliteMemory, Schema::Migrate)
                .await
                .unwrap(),
        ))
    }

    #[tokio::test]
    async fn a_stored_namespace_without_its_info_is_corrupt() {
        let store = Arc::new(
            SqlStore::open(&Backend::SqliteMemory, Schema::Migrate)
                .await
                .unwrap(),
        );
        let row = NamespaceRow {
            id: "id".into(),
            name: "broken".into(),
            data: DescribeNamespaceResponse::default().encode_to_vec(),
        };
        store.create_namespace(&row).await.unwrap();
        let ns = Namespaces::new(store);
        let e = ns.resolve("broken").await.unwrap_err();
        assert!(
            matches!(
                e,
                FrontendError::History(chronicle_history::HistoryError::Corrupt(_))
            ),
            "{e}"
        );
    }

    #[tokio::test]
    async fn register_describe_update_and_list() {
        let ns = registry().await;
        ns.ensure("default", Duration::from_secs(86_400))
            .await
            .unwrap();
        ns.ensure("default", Duration::from_secs(86_400))
            .await
            .unwrap();
        let again = ns
            .register(RegisterNamespaceRequest {
                namespace: "default".into(),
                workflow_execution_retention_period: Some(time::duration(Duration::from_secs(
                    7200,
                ))),
                ..Default::default()
            })
            .await;
        assert!(matches!(again, Err(FrontendError::NamespaceAlreadyExists)));
        ns.register(RegisterNamespaceRequest {
            namespace: "b".into(),
            description: "first".into(),
            workflow_execution_retention_period: Some(time::duration(Duration::from_secs(7200))),
            ..Default::default()
        })
        .await
        .unwrap();

        let resolved = ns.resolve("b").await.unwrap();
        assert_eq!(resolved.name, "b");
        assert!(matches!(
            ns.resolve("nope").await,
            Err(FrontendError::NamespaceNotFound(_))
        ));

        let update = UpdateNamespaceRequest {
            namespace: "b".into(),
            update_info: Some(chronicle_api::namespace::v1::UpdateNamespaceInfo {
                description: "second".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            ns.update(update)
                .await
                .unwrap()
                .namespace_info
                .unwrap()
                .description,
            "second"
        );
        let by_id = ns
            .describe(DescribeNamespaceRequest {
                id: resolved.id,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(by_id.namespace_info.unwrap().description, "second");

        let first = ns
            .list(ListNamespacesRequest {
                page_size: 1,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(first.namespaces.len(), 1);
        let rest = ns
            .list(ListNamespacesRequest {
                page_size: 1,
                next_page_token: first.next_page_token,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(info(&rest.namespaces[0]).unwrap().name, "default");
    }

    #[tokio::test]
    async fn deprecated_namespaces_refuse_starts_and_deleted_ones_free_their_name() {
        let ns = registry().await;
        ns.ensure("old", Duration::from_secs(86_400)).await.unwrap();
        ns.deprecate("old").await.unwrap();
        assert!(ns.resolve("old").await.is_ok());
        assert!(matches!(
            ns.resolve_for_start("old").await,
            Err(FrontendError::NamespaceDeprecated(_))
        ));

        let old = ns.resolve_for_delete("old").await.unwrap();
        let renamed = ns.delete(&old).await.unwrap();
        assert!(renamed.starts_with("old-deleted-"));
        assert!(matches!(
            ns.resolve("old").await,
            Err(FrontendError::NamespaceNotFound(_))
        ));
        let listed = ns.list(ListNamespacesRequest::default()).await.unwrap();
        assert!(
            listed
                .namespaces
                .iter()
                .all(|n| info(n).unwrap().name != renamed)
        );
        ns.ensure("old", Duration::from_secs(86_400)).await.unwrap();
        assert!(ns.resolve_for_start("old").await.is_ok());
        // The name now belongs to another namespace, which a stale delete leaves alone.
        assert!(ns.delete(&old).await.is_err());
        assert!(ns.resolve_for_start("old").await.is_ok());
        assert!(ns.resolve_for_delete("default").await.is_err());
    }

    #[tokio::test]
    async fn retention_below_an_hour_is_rejected() {
        let ns = registry().await;
        let short = RegisterNamespaceRequest {
            namespace: "short".into(),
            workflow_execution_retention_period: Some(time::duration(Duration::from_secs(60))),
            ..Default::default()
        };
        assert!(matches!(
            ns.register(short).await,
            Err(FrontendError::InvalidArgument(_))
        ));
    }
}

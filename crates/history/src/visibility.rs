//! Visibility: the record List and Count see of each run (written with the state change that
//! made it so), the search attributes each namespace defines, and the List/Count calls.

use crate::engine::attributes::AttributeTypes;
use crate::engine::state::MutableState;
use crate::{History, HistoryError, Result};
use chronicle_api::common::v1::{Payload, SearchAttributes, WorkflowExecution, WorkflowType};
use chronicle_api::workflow::v1::WorkflowExecutionInfo;
use chronicle_api::workflowservice::count_workflow_executions_response::AggregationGroup;
use chronicle_api::workflowservice::{
    CountWorkflowExecutionsResponse, ListWorkflowExecutionsResponse,
};
use chronicle_common::query::{self, QueryError, status_name};
use chronicle_common::search_attributes::{self as sa, SYSTEM_ATTRIBUTES, ValueType};
use chronicle_common::{ExecutionKey, payload, time};
use chronicle_persistence::{AttributeRows, VisibilityRecord};
use prost::Message;
use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

/// Default and largest List page.
const DEFAULT_PAGE_SIZE: usize = 1000;

type Types = Arc<HashMap<String, ValueType>>;

/// Custom search attributes by namespace id, cached; the store is the truth.
#[derive(Default)]
pub(crate) struct Registry(RwLock<HashMap<String, Types>>);

fn invalid_query(e: QueryError) -> HistoryError {
    HistoryError::InvalidArgument(e.to_string())
}

/// The run as List returns it (and DescribeWorkflowExecution, which adds pending work).
pub(crate) fn execution_info(
    key: &ExecutionKey,
    state: &MutableState,
    version: i64,
) -> WorkflowExecutionInfo {
    let info = state.info();
    let execution_duration = match (&info.close_time, &info.execution_time) {
        (Some(close), Some(start)) => time::from_timestamp(close)
            .duration_since(time::from_timestamp(start))
            .ok()
            .map(time::duration),
        _ => None,
    };
    let parent = info.parent.as_ref();
    // Deprecated for worker deployments; what describe shows of a run's build on the reference.
    #[allow(deprecated)]
    let described = WorkflowExecutionInfo {
        execution: Some(key.execution()),
        r#type: Some(WorkflowType {
            name: info.workflow_type.clone(),
        }),
        start_time: info.start_time,
        close_time: info.close_time,
        status: info.status,
        history_length: state.next_event_id - 1,
        execution_time: info.execution_time,
        memo: info.memo.clone(),
        search_attributes: info.search_attributes.clone(),
        task_queue: info.task_queue.clone(),
        state_transition_count: version,
        history_size_bytes: state.history_size_bytes,
        execution_duration,
        parent_namespace_id: parent.map(|p| p.namespace_id.clone()).unwrap_or_default(),
        parent_execution: parent.map(|p| WorkflowExecution {
            workflow_id: p.workflow_id.clone(),
            run_id: p.run_id.clone(),
        }),
        root_execution: Some(info.root.clone().unwrap_or_else(|| key.execution())),
        first_run_id: info.first_execution_run_id.clone(),
        most_recent_worker_version_stamp: info.worker_version.clone(),
        priority: info.priority.clone(),
        ..Default::default()
    };
    described
}

fn nanos(t: &Option<chronicle_api::wkt::Timestamp>) -> Option<i64> {
    t.as_ref()
        .map(|t| time::unix_nanos(time::from_timestamp(t)))
}

/// The visibility record of a run's state, with its search attributes if they changed;
/// attribute types come from their "type" metadata, which the server sets on every value it
/// accepts.
pub(crate) fn record(
    key: &ExecutionKey,
    state: &MutableState,
    version: i64,
    attributes_changed: bool,
) -> VisibilityRecord {
    let info = state.info();
    let closed = !state.is_running();
    let mut listed = execution_info(key, state, version);
    if !closed {
        // As in Temporal: a run's length is recorded for visibility when it closes.
        listed.history_length = 0;
    }
    let attributes = if attributes_changed {
        AttributeRows::Set(
            info.search_attributes
                .iter()
                .flat_map(|s| s.indexed_fields.iter())
                .filter_map(|(name, payload)| {
                    let ty = type_of(name, payload)?;
                    sa::decode(ty, payload)
                        .ok()
                        .flatten()
                        .map(|v| (name.clone(), v))
                })
                .collect(),
        )
    } else {
        AttributeRows::Keep
    };
    VisibilityRecord {
        namespace_id: key.namespace_id.clone(),
        run_id: key.run_id.clone(),
        workflow_id: key.workflow_id.clone(),
        workflow_type: info.workflow_type.clone(),
        task_queue: info.task_queue.clone(),
        status: info.status,
        start_time: nanos(&info.start_time).unwrap_or_default(),
        execution_time: nanos(&info.execution_time).unwrap_or_default(),
        close_time: nanos(&info.close_time),
        execution_duration: listed
            .execution_duration
            .map(|d| d.seconds * 1_000_000_000 + i64::from(d.nanos)),
        history_length: closed.then_some(state.next_event_id - 1),
        history_size_bytes: Some(state.history_size_bytes),
        state_transition_count: Some(version),
        parent_workflow_id: info.parent.as_ref().map(|p| p.workflow_id.clone()),
        parent_run_id: info.parent.as_ref().map(|p| p.run_id.clone()),
        root_workflow_id: Some(
            info.root
                .as_ref()
                .map_or(&key.workflow_id, |r| &r.workflow_id)
                .clone(),
        ),
        root_run_id: Some(
            info.root
                .as_ref()
                .map_or(&key.run_id, |r| &r.run_id)
                .clone(),
        ),
        attributes,
        data: listed.encode_to_vec(),
    }
}

fn type_of(name: &str, payload: &Payload) -> Option<ValueType> {
    payload
        .metadata
        .get("type")
        .and_then(|t| std::str::from_utf8(t).ok())
        .and_then(ValueType::from_name)
        .or_else(|| sa::system_type(name))
}

impl History {
    /// The namespace's custom search attributes; re-read from the store when `refresh`.
    async fn types(&self, namespace_id: &str, refresh: bool) -> Result<Types> {
        if !refresh
            && let Some(types) = self
                .inner
                .search_attributes
                .0
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .get(namespace_id)
        {
            return Ok(types.clone());
        }
        let rows = self.store().search_attributes(namespace_id).await?;
        let types: Types = Arc::new(
            rows.into_iter()
                .filter_map(|(name, t)| Some((name, ValueType::from_indexed(t)?)))
                .collect(),
        );
        self.inner
            .search_attributes
            .0
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(namespace_id.to_owned(), types.clone());
        Ok(types)
    }

    /// The namespace's attribute types, knowing each of `names` if the store does: the
    /// cache is re-read once on a miss (another node may have registered it).
    pub(crate) async fn attribute_types<'a>(
        &self,
        namespace_id: &str,
        names: impl Iterator<Item = &'a String> + Clone,
    ) -> Result<AttributeTypes> {
        let cached = AttributeTypes::new(self.types(namespace_id, false).await?);
        if cached.knows_all(names) {
            return Ok(cached);
        }
        Ok(AttributeTypes::new(self.types(namespace_id, true).await?))
    }

    /// Checks search attributes given at start and stamps each with its type. Err carries
    /// Temporal's message for the first bad attribute.
    pub(crate) async fn typed_search_attributes(
        &self,
        namespace_id: &str,
        attributes: SearchAttributes,
    ) -> Result<std::result::Result<SearchAttributes, String>> {
        let types = self
            .attribute_types(namespace_id, attributes.indexed_fields.keys())
            .await?;
        Ok(types.stamp(attributes))
    }

    pub async fn add_search_attributes(
        &self,
        namespace_id: &str,
        attributes: HashMap<String, i32>,
    ) -> Result<()> {
        let mut rows = Vec::new();
        for (name, value_type) in attributes {
            if sa::system_type(&name).is_some() {
                return Err(HistoryError::InvalidArgument(format!(
                    "Search attribute {name} is reserved by system."
                )));
            }
            let valid_name = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid_name {
                return Err(HistoryError::InvalidArgument(format!(
                    "Search attribute name {name:?} is invalid."
                )));
            }
            if ValueType::from_indexed(value_type).is_none() {
                return Err(HistoryError::InvalidArgument(format!(
                    "Unknown search attribute type {value_type} for {name}."
                )));
            }
            rows.push((name, value_type));
        }
        self.store()
            .add_search_attributes(namespace_id, &rows)
            .await?;
        self.types(namespace_id, true).await?;
        Ok(())
    }

    /// Deletes a (deleted) namespace's workflows. Timers still queued for them find nothing
    /// and do nothing.
    pub async fn delete_namespace_data(&self, namespace_id: &str) -> Result<()> {
        self.store()
            .delete_namespace_executions(namespace_id)
            .await?;
        self.inner.cache.forget_namespace(namespace_id);
        self.inner
            .search_attributes
            .0
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(namespace_id);
        Ok(())
    }

    pub async fn remove_search_attributes(
        &self,
        namespace_id: &str,
        names: &[String],
    ) -> Result<()> {
        if let Some(system) = names.iter().find(|n| sa::system_type(n).is_some()) {
            return Err(HistoryError::InvalidArgument(format!(
                "Unable to remove non-custom search attributes: {system}."
            )));
        }
        self.store()
            .remove_search_attributes(namespace_id, names)
            .await?;
        self.types(namespace_id, true).await?;
        Ok(())
    }

    /// (custom, system) search attributes by name, as IndexedValueType.
    pub async fn search_attributes(
        &self,
        namespace_id: &str,
    ) -> Result<(HashMap<String, i32>, HashMap<String, i32>)> {
        let custom = self.types(namespace_id, false).await?;
        let custom = custom
            .iter()
            .map(|(n, t)| (n.clone(), t.indexed() as i32))
            .collect();
        let system = SYSTEM_ATTRIBUTES
            .iter()
            .map(|(n, t)| ((*n).to_owned(), t.indexed() as i32))
            .collect();
        Ok((custom, system))
    }

    async fn resolve_query(&self, namespace_id: &str, text: &str) -> Result<query::Resolved> {
        let parsed = query::parse(text).map_err(invalid_query)?;
        let types = self.types(namespace_id, true).await?;
        query::resolve(parsed, &|name| types.get(name).copied()).map_err(invalid_query)
    }

    pub async fn list_workflows(
        &self,
        namespace_id: &str,
        text: &str,
        page_size: i32,
        page_token: &[u8],
    ) -> Result<ListWorkflowExecutionsResponse> {
        let resolved = self.resolve_query(namespace_id, text).await?;
        if resolved.group_by_status {
            return Err(HistoryError::InvalidArgument(
                "invalid query: 'GROUP BY' clause is only supported for count".into(),
            ));
        }
        let size = usize::try_from(page_size)
            .ok()
            .filter(|s| *s > 0)
            .unwrap_or(DEFAULT_PAGE_SIZE)
            .min(DEFAULT_PAGE_SIZE);
        self.list_resolved(namespace_id, &resolved, size, page_token)
            .await
    }

    async fn list_resolved(
        &self,
        namespace_id: &str,
        resolved: &query::Resolved,
        size: usize,
        page_token: &[u8],
    ) -> Result<ListWorkflowExecutionsResponse> {
        let page = self
            .store()
            .list_visibility(namespace_id, resolved, size, page_token)
            .await?;
        let executions = page
            .rows
            .iter()
            .map(|data| {
                WorkflowExecutionInfo::decode(data.as_slice())
                    .map_err(|e| HistoryError::Corrupt(format!("visibility row: {e}")))
            })
            .collect::<Result<_>>()?;
        Ok(ListWorkflowExecutionsResponse {
            executions,
            next_page_token: page.next_page_token,
        })
    }

    /// A page of the runs a batch operation acts on, in start order: that order does not
    /// change as the batch closes them, so paging neither skips nor repeats a run.
    pub async fn list_for_batch(
        &self,
        namespace_id: &str,
        text: &str,
        page_token: &[u8],
        page_size: usize,
    ) -> Result<ListWorkflowExecutionsResponse> {
        let mut resolved = self.resolve_query(namespace_id, text).await?;
        resolved.order_by = vec![(query::Operand::Column(query::Column::StartTime), false)];
        let page_size = page_size.clamp(1, DEFAULT_PAGE_SIZE);
        self.list_resolved(namespace_id, &resolved, page_size, page_token)
            .await
    }

    pub async fn count_workflows(
        &self,
        namespace_id: &str,
        text: &str,
    ) -> Result<CountWorkflowExecutionsResponse> {
        let resolved = self.resolve_query(namespace_id, text).await?;
        if !resolved.order_by.is_empty() {
            return Err(HistoryError::InvalidArgument(
                "invalid query: 'ORDER BY' clause is not supported for count".into(),
            ));
        }
        let counted = self
            .store()
            .count_visibility(namespace_id, &resolved)
            .await?;
        let groups = counted
            .by_status
            .into_iter()
            .map(|(status, count)| AggregationGroup {
                group_values: vec![payload::json_string(status_name(status))],
                count,
            })
            .collect();
        Ok(CountWorkflowExecutionsResponse {
            count: counted.count,
            groups,
        })
    }
}

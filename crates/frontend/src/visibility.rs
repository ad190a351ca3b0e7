//! Visibility calls: List/Scan/Count with Temporal's query language, the older List Open and
//! List Closed filters (expressed in the same language), and search attribute registration.

use crate::error::{Result, invalid};
use crate::handler::Handler;
use chronicle_api::operatorservice::{
    AddSearchAttributesRequest, ListSearchAttributesRequest, ListSearchAttributesResponse,
    RemoveSearchAttributesRequest,
};
use chronicle_api::workflowservice::*;
use chronicle_common::time;

/// A string literal of the query language; a quote inside is doubled, so the value can never
/// end the literal early.
fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

fn rfc3339(t: &chronicle_api::wkt::Timestamp, field: &str) -> Result<String> {
    if !time::valid_timestamp(t) {
        return Err(invalid(format!("Invalid {field} on StartTimeFilter.")));
    }
    Ok(chrono::DateTime::<chrono::Utc>::from(time::from_timestamp(t)).to_rfc3339())
}

/// The query the older List Open / List Closed requests stand for.
fn legacy_query(
    open: bool,
    start: Option<&chronicle_api::filter::v1::StartTimeFilter>,
    extra: Option<String>,
) -> Result<String> {
    let mut terms = vec![if open {
        "ExecutionStatus = 'Running'".to_owned()
    } else {
        "ExecutionStatus != 'Running'".to_owned()
    }];
    if let Some(filter) = start {
        if let Some(t) = &filter.earliest_time {
            terms.push(format!(
                "StartTime >= {}",
                quote(&rfc3339(t, "EarliestTime")?)
            ));
        }
        if let Some(t) = &filter.latest_time {
            terms.push(format!(
                "StartTime <= {}",
                quote(&rfc3339(t, "LatestTime")?)
            ));
        }
    }
    terms.extend(extra);
    Ok(terms.join(" AND "))
}

impl Handler {
    pub async fn list_workflows(
        &self,
        r: ListWorkflowExecutionsRequest,
    ) -> Result<ListWorkflowExecutionsResponse> {
        let namespace = self.namespaces.resolve(&r.namespace).await?;
        Ok(self
            .history
            .list_workflows(&namespace.id, &r.query, r.page_size, &r.next_page_token)
            .await?)
    }

    pub async fn count_workflows(
        &self,
        r: CountWorkflowExecutionsRequest,
    ) -> Result<CountWorkflowExecutionsResponse> {
        let namespace = self.namespaces.resolve(&r.namespace).await?;
        Ok(self
            .history
            .count_workflows(&namespace.id, &r.query)
            .await?)
    }

    pub async fn list_open(
        &self,
        r: ListOpenWorkflowExecutionsRequest,
    ) -> Result<ListOpenWorkflowExecutionsResponse> {
        use list_open_workflow_executions_request::Filters;
        let extra = r.filters.map(|f| match f {
            Filters::ExecutionFilter(e) => format!("WorkflowId = {}", quote(&e.workflow_id)),
            Filters::TypeFilter(t) => format!("WorkflowType = {}", quote(&t.name)),
        });
        let query = legacy_query(true, r.start_time_filter.as_ref(), extra)?;
        let list = ListWorkflowExecutionsRequest {
            namespace: r.namespace,
            page_size: r.maximum_page_size,
            next_page_token: r.next_page_token,
            query,
        };
        let page = self.list_workflows(list).await?;
        Ok(ListOpenWorkflowExecutionsResponse {
            executions: page.executions,
            next_page_token: page.next_page_token,
        })
    }

    pub async fn list_closed(
        &self,
        r: ListClosedWorkflowExecutionsRequest,
    ) -> Result<ListClosedWorkflowExecutionsResponse> {
        use list_closed_workflow_executions_request::Filters;
        let extra = match r.filters {
            Some(Filters::ExecutionFilter(e)) => {
                Some(format!("WorkflowId = {}", quote(&e.workflow_id)))
            }
            Some(Filters::TypeFilter(t)) => Some(format!("WorkflowType = {}", quote(&t.name))),
            Some(Filters::StatusFilter(s)) => Some(format!(
                "ExecutionStatus = {}",
                quote(chronicle_common::query::status_name(s.status))
            )),
            None => None,
        };
        let query = legacy_query(false, r.start_time_filter.as_ref(), extra)?;
        let list = ListWorkflowExecutionsRequest {
            namespace: r.namespace,
            page_size: r.maximum_page_size,
            next_page_token: r.next_page_token,
            query,
        };
        let page = self.list_workflows(list).await?;
        Ok(ListClosedWorkflowExecutionsResponse {
            executions: page.executions,
            next_page_token: page.next_page_token,
        })
    }

    pub async fn get_search_attributes(&self) -> Result<GetSearchAttributesResponse> {
        let namespace = self.namespaces.resolve("default").await?;
        let (custom, system) = self.history.search_attributes(&namespace.id).await?;
        Ok(GetSearchAttributesResponse {
            keys: system.into_iter().chain(custom).collect(),
        })
    }

    pub async fn add_search_attributes(&self, r: AddSearchAttributesRequest) -> Result<()> {
        let namespace = self.namespaces.resolve(&r.namespace).await?;
        if r.search_attributes.is_empty() {
            return Err(invalid("SearchAttributes are not set on request."));
        }
        Ok(self
            .history
            .add_search_attributes(&namespace.id, r.search_attributes)
            .await?)
    }

    pub async fn remove_search_attributes(&self, r: RemoveSearchAttributesRequest) -> Result<()> {
        let namespace = self.namespaces.resolve(&r.namespace).await?;
        Ok(self
            .history
            .remove_search_attributes(&namespace.id, &r.search_attributes)
            .await?)
    }

    pub async fn list_search_attributes(
        &self,
        r: ListSearchAttributesRequest,
    ) -> Result<ListSearchAttributesResponse> {
        let namespace = self.namespaces.resolve(&r.namespace).await?;
        let (custom_attributes, system_attributes) =
            self.history.search_attributes(&namespace.id).await?;
        Ok(ListSearchAttributesResponse {
            custom_attributes,
            system_attributes,
            storage_schema: Default::default(),
        })
    }
}

//! Visibility calls: List/Scan/Count with Temporal's query language, the older List Open and
//! List Closed filters (expressed in the same language), and search attribute registration.

use crate::error::{Result, invalid};
use crate::handler::Handler;
use chronicle_api::filter::v1::StartTimeFilter;
use chronicle_api::operatorservice::{
    AddSearchAttributesRequest, ListSearchAttributesRequest, ListSearchAttributesResponse,
    RemoveSearchAttributesRequest,
};
use chronicle_api::wkt::Timestamp;
use chronicle_api::workflowservice::*;
use chronicle_common::{query, time};

/// A string literal of the query language; a quote inside is doubled, so the value can never
/// end the literal early.
fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// A filter time as the query language writes it; outside a Timestamp's range it is refused
/// (as Temporal refuses what it cannot format as a date).
fn rfc3339(t: &Timestamp, field: &str) -> Result<String> {
    let out_of_range = || {
        invalid(format!(
            "invalid StartTimeFilter.{field}: {}.{} is outside 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z",
            t.seconds, t.nanos
        ))
    };
    if !time::valid_timestamp(t) {
        return Err(out_of_range());
    }
    chrono::DateTime::from_timestamp(t.seconds, t.nanos as u32)
        .map(|time| time.to_rfc3339())
        .ok_or_else(out_of_range)
}

/// The query the older List Open / List Closed requests stand for.
fn legacy_query(
    open: bool,
    start: Option<&StartTimeFilter>,
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
    /// Refuses a query longer or more deeply nested than the namespace's limits, before
    /// anything else reads it.
    pub(crate) fn check_query(&self, namespace: &str, text: &str) -> Result<()> {
        query::check(text, self.limits.for_namespace(namespace)).map_err(|e| invalid(e.to_string()))
    }

    pub async fn list_workflows(
        &self,
        r: ListWorkflowExecutionsRequest,
    ) -> Result<ListWorkflowExecutionsResponse> {
        let namespace = self.namespaces.resolve(&r.namespace).await?;
        self.check_query(&r.namespace, &r.query)?;
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
        self.check_query(&r.namespace, &r.query)?;
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
                quote(query::status_name(s.status))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64, nanos: i32) -> Timestamp {
        Timestamp { seconds, nanos }
    }

    #[test]
    fn filter_times_outside_a_timestamps_range_are_refused() {
        let text = |t: Timestamp| rfc3339(&t, "EarliestTime");
        // 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z: a protobuf Timestamp's range.
        let (first, last) = (-62_135_596_800, 253_402_300_799);
        assert_eq!(text(at(last, 0)).unwrap(), "9999-12-31T23:59:59+00:00");
        assert_eq!(text(at(first, 0)).unwrap(), "0001-01-01T00:00:00+00:00");
        for seconds in [last + 1, i64::MAX, first - 1, i64::MIN] {
            let err = text(at(seconds, 0)).unwrap_err();
            assert!(err.to_string().contains("EarliestTime"), "{err}");
        }
        assert!(text(at(0, i32::MAX)).is_err(), "nanos past a second");
    }

    #[test]
    fn extreme_filter_times_make_queries_that_resolve() {
        let filter = StartTimeFilter {
            earliest_time: Some(at(-62_135_596_800, 0)),
            latest_time: Some(at(253_402_300_799, 999_999_999)),
        };
        let text = legacy_query(false, Some(&filter), None).unwrap();
        let parsed = query::parse(&text).unwrap();
        assert!(query::resolve(parsed, &|_| None).is_ok(), "{text}");
    }
}

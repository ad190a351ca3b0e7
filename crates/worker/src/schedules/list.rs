//! ListSchedules and CountSchedules over a namespace's stored schedules. A query filters on
//! what a schedule carries, as Temporal allows: `ScheduleId`, `TemporalSchedulePaused` and
//! its own custom search attributes (compared as the JSON values the SDKs write); other
//! system attributes are refused.

use super::state::ScheduleJob;
use super::{compile, decode};
use crate::{Result, Worker, WorkerError};
use chronicle_api::common::v1::Payload;
use chronicle_api::schedule::v1::schedule_action::Action;
use chronicle_api::schedule::v1::{ScheduleListEntry, ScheduleListInfo};
use chronicle_api::workflowservice::{ListSchedulesRequest, ListSchedulesResponse};
use chronicle_common::query::{CmpOp, Expr, Literal, parse};
use chronicle_common::search_attributes::system_type;
use chronicle_persistence::JobKind;
use serde_json::Value;
use std::cmp::Ordering;
use std::collections::HashMap;

const DEFAULT_PAGE_SIZE: usize = 1000;

fn payload_value(payload: &Payload) -> Option<Value> {
    serde_json::from_slice(&payload.data).ok()
}

/// The value a schedule has for an attribute a query names.
fn attribute(job: &ScheduleJob, name: &str) -> Option<Value> {
    match name {
        "ScheduleId" => Some(Value::String(job.schedule_id.clone())),
        "TemporalSchedulePaused" => Some(Value::Bool(job.state().paused)),
        _ => job
            .search_attributes
            .as_ref()?
            .indexed_fields
            .get(name)
            .and_then(payload_value),
    }
}

fn compare(value: &Value, literal: &Literal) -> Option<Ordering> {
    match (value, literal) {
        (Value::String(s), Literal::Str(l)) => Some(s.as_str().cmp(l.as_str())),
        (Value::Bool(b), Literal::Bool(l)) => Some(b.cmp(l)),
        (Value::Number(n), Literal::Int(l)) => n.as_f64()?.partial_cmp(&(*l as f64)),
        (Value::Number(n), Literal::Float(l)) => n.as_f64()?.partial_cmp(l),
        _ => None,
    }
}

/// Whether one value (or, for a list, any of its elements) satisfies `test`.
fn any(value: Option<Value>, test: impl Fn(&Value) -> bool) -> bool {
    match value {
        Some(Value::Array(items)) => items.iter().any(test),
        Some(value) => test(&value),
        None => false,
    }
}

/// The attribute a term filters on, or the terms it combines.
fn attribute_of(expr: &Expr) -> std::result::Result<&str, Vec<&Expr>> {
    match expr {
        Expr::And(terms) | Expr::Or(terms) => Err(terms.iter().collect()),
        Expr::Not(term) => Err(vec![term]),
        Expr::Cmp { attr, .. }
        | Expr::In { attr, .. }
        | Expr::Between { attr, .. }
        | Expr::StartsWith { attr, .. }
        | Expr::IsNull { attr, .. } => Ok(attr),
    }
}

/// `custom`: the namespace's own search attributes.
fn check_filter(expr: &Expr, custom: &HashMap<String, i32>) -> Result<()> {
    match attribute_of(expr) {
        Err(terms) => terms.into_iter().try_for_each(|t| check_filter(t, custom)),
        Ok("ScheduleId" | "TemporalSchedulePaused") => Ok(()),
        Ok(name) if system_type(name).is_some() => Err(WorkerError::InvalidArgument(format!(
            "invalid query filter for schedules: cannot filter on \"{name}\""
        ))),
        Ok(name) if custom.contains_key(name) => Ok(()),
        Ok(name) => Err(WorkerError::InvalidArgument(format!(
            "invalid query: invalid search attribute: {name}"
        ))),
    }
}

fn matches(job: &ScheduleJob, expr: &Expr) -> bool {
    match expr {
        Expr::And(terms) => terms.iter().all(|t| matches(job, t)),
        Expr::Or(terms) => terms.iter().any(|t| matches(job, t)),
        Expr::Not(term) => !matches(job, term),
        Expr::Cmp { attr, op, value } => any(attribute(job, attr), |v| {
            compare(v, value).is_some_and(|o| match op {
                CmpOp::Eq => o.is_eq(),
                CmpOp::Ne => o.is_ne(),
                CmpOp::Lt => o.is_lt(),
                CmpOp::Le => o.is_le(),
                CmpOp::Gt => o.is_gt(),
                CmpOp::Ge => o.is_ge(),
            })
        }),
        Expr::In {
            attr,
            values,
            negated,
        } => {
            let found = any(attribute(job, attr), |v| {
                values
                    .iter()
                    .any(|l| compare(v, l).is_some_and(Ordering::is_eq))
            });
            found != *negated
        }
        Expr::Between {
            attr,
            low,
            high,
            negated,
        } => {
            let inside = any(attribute(job, attr), |v| {
                compare(v, low).is_some_and(Ordering::is_ge)
                    && compare(v, high).is_some_and(Ordering::is_le)
            });
            inside != *negated
        }
        Expr::StartsWith {
            attr,
            prefix,
            negated,
        } => {
            let starts = any(attribute(job, attr), |v| {
                v.as_str().is_some_and(|s| s.starts_with(prefix.as_str()))
            });
            starts != *negated
        }
        Expr::IsNull { attr, negated } => attribute(job, attr).is_none() != *negated,
    }
}

fn entry(job: ScheduleJob) -> ScheduleListEntry {
    let future_action_times = compile(job.schedule())
        .map(|spec| job.future_action_times(&spec))
        .unwrap_or_default();
    let schedule = job.schedule();
    let workflow_type = match schedule.action.as_ref().and_then(|a| a.action.as_ref()) {
        Some(Action::StartWorkflow(start)) => start.workflow_type.clone(),
        None => None,
    };
    let state = job.state();
    let info = ScheduleListInfo {
        spec: schedule.spec.clone(),
        workflow_type,
        notes: state.notes.clone(),
        paused: state.paused,
        recent_actions: job
            .info
            .as_ref()
            .map(|i| i.recent_actions.clone())
            .unwrap_or_default(),
        future_action_times,
        ..Default::default()
    };
    ScheduleListEntry {
        schedule_id: job.schedule_id,
        memo: job.memo,
        search_attributes: job.search_attributes,
        info: Some(info),
    }
}

impl Worker {
    /// The namespace's schedules the query selects, newest first.
    async fn selected(&self, namespace_id: &str, query: &str) -> Result<Vec<ScheduleJob>> {
        let filter = parse(query)
            .map_err(|e| WorkerError::InvalidArgument(format!("invalid query: {}", e.0)))?
            .filter;
        if let Some(filter) = &filter {
            let (custom, _) = self.history.search_attributes(namespace_id).await?;
            check_filter(filter, &custom)?;
        }
        let mut selected = Vec::new();
        for row in self.store.jobs(namespace_id, JobKind::Schedule).await? {
            let job = decode(&row.data)?;
            if filter.as_ref().is_none_or(|f| matches(&job, f)) {
                selected.push(job);
            }
        }
        Ok(selected)
    }

    pub async fn list_schedules(
        &self,
        namespace_id: &str,
        r: ListSchedulesRequest,
    ) -> Result<ListSchedulesResponse> {
        let selected = self.selected(namespace_id, &r.query).await?;
        let size = usize::try_from(r.maximum_page_size)
            .ok()
            .filter(|s| *s > 0)
            .unwrap_or(DEFAULT_PAGE_SIZE);
        let from = <[u8; 8]>::try_from(r.next_page_token.as_slice()).map_or(0, |b| {
            usize::try_from(u64::from_le_bytes(b)).unwrap_or(usize::MAX)
        });
        let to = from.saturating_add(size).min(selected.len());
        let next_page_token = if to < selected.len() {
            u64::try_from(to).unwrap_or(u64::MAX).to_le_bytes().to_vec()
        } else {
            Vec::new()
        };
        let schedules = selected
            .into_iter()
            .skip(from)
            .take(to.saturating_sub(from))
            .map(entry)
            .collect();
        Ok(ListSchedulesResponse {
            schedules,
            next_page_token,
        })
    }

    pub async fn count_schedules(&self, namespace_id: &str, query: &str) -> Result<i64> {
        let selected = self.selected(namespace_id, query).await?;
        Ok(i64::try_from(selected.len()).unwrap_or(i64::MAX))
    }
}

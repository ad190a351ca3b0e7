//! GetWorkflowExecutionHistoryReverse: a run's stored events newest first, in pages (the
//! reference serves it so UIs and tools can show the end of a long history cheaply).

use crate::read::corrupt;
use crate::{History, HistoryError, Result};
use chronicle_api::history::v1::{History as EventPage, HistoryEvent};
use chronicle_api::workflowservice::{
    GetWorkflowExecutionHistoryReverseRequest, GetWorkflowExecutionHistoryReverseResponse,
};
use chronicle_common::{ExecutionKey, limits};
use prost::Message;

/// Where a reverse read goes on: the events before `before_event_id`.
#[derive(Clone, PartialEq, prost::Message)]
struct ReverseToken {
    #[prost(string, tag = "1")]
    run_id: String,
    #[prost(int64, tag = "2")]
    before_event_id: i64,
}

impl History {
    pub async fn get_history_reverse(
        &self,
        namespace_id: &str,
        r: GetWorkflowExecutionHistoryReverseRequest,
    ) -> Result<GetWorkflowExecutionHistoryReverseResponse> {
        let execution = r.execution.unwrap_or_default();
        let token = match r.next_page_token.as_slice() {
            [] => None,
            bytes => Some(
                ReverseToken::decode(bytes)
                    .map_err(|_| HistoryError::InvalidArgument("Invalid NextPageToken.".into()))?,
            ),
        };
        let run_id = token
            .as_ref()
            .map_or(execution.run_id.as_str(), |t| t.run_id.as_str());
        let key = self
            .resolve_run(namespace_id, &execution.workflow_id, run_id)
            .await?;
        let before = match &token {
            Some(t) => t.before_event_id,
            None => self.snapshot(&key).await?.0.next_event_id,
        };
        let size = usize::try_from(r.maximum_page_size)
            .ok()
            .filter(|s| *s > 0)
            .unwrap_or(limits::DEFAULT_HISTORY_PAGE_SIZE);
        let events = self.events_before(&key, before, size).await?;
        let oldest = events.last().map_or(1, |e| e.event_id);
        let next_page_token = if oldest > 1 {
            ReverseToken {
                run_id: key.run_id.clone(),
                before_event_id: oldest,
            }
            .encode_to_vec()
        } else {
            Vec::new()
        };
        Ok(GetWorkflowExecutionHistoryReverseResponse {
            history: Some(EventPage { events }),
            next_page_token,
        })
    }

    /// Up to `size` stored events before `before`, newest first, as many as fit in a page's
    /// bytes.
    async fn events_before(
        &self,
        key: &ExecutionKey,
        before: i64,
        size: usize,
    ) -> Result<Vec<HistoryEvent>> {
        let from = before
            .saturating_sub(i64::try_from(size).unwrap_or(i64::MAX))
            .max(1);
        let rows = self
            .store()
            .read_events(&key.run_id, from, before, size)
            .await?;
        let contiguous = rows.iter().map(|(id, _)| *id).eq(from..before);
        if !contiguous {
            return Err(HistoryError::Corrupt(format!(
                "events {from}..{before} of {key} are not all stored"
            )));
        }
        let mut events = Vec::with_capacity(rows.len());
        let mut bytes = 0;
        for (_, data) in rows.into_iter().rev() {
            if bytes + data.len() > limits::HISTORY_PAGE_BYTES && !events.is_empty() {
                break;
            }
            bytes += data.len();
            events.push(HistoryEvent::decode(data.as_slice()).map_err(|e| corrupt(key, e))?);
        }
        Ok(events)
    }
}

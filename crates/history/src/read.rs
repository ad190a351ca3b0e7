//! Reading runs without changing them: history pages, the long poll SDKs use to wait for new
//! events or the close event, and DescribeWorkflowExecution.

use crate::engine::state::MutableState;
use crate::watch::Progress;
use crate::{History, HistoryError, Result};
use chronicle_api::enums::v1::{
    HistoryEventFilterType, PendingActivityState, PendingWorkflowTaskState,
};
use chronicle_api::history::v1::{History as EventPage, HistoryEvent};
use chronicle_api::workflow::v1::pending_activity_info::PauseInfo;
use chronicle_api::workflow::v1::pending_activity_info::pause_info::{Manual, PausedBy};
use chronicle_api::workflow::v1::{
    PendingActivityInfo, PendingWorkflowTaskInfo, WorkflowExecutionConfig,
};
use chronicle_api::workflowservice::{
    DescribeWorkflowExecutionRequest, DescribeWorkflowExecutionResponse,
    GetWorkflowExecutionHistoryRequest, GetWorkflowExecutionHistoryResponse,
};
use chronicle_common::{ExecutionKey, limits, time};
use prost::Message;
use tokio::sync::watch;
use tokio::time::Instant;

/// Where the next page of a history read starts, handed to the client as next_page_token.
#[derive(Clone, PartialEq, prost::Message)]
struct PageToken {
    #[prost(string, tag = "1")]
    run_id: String,
    #[prost(int64, tag = "2")]
    next_event_id: i64,
    /// Exclusive end fixed by the first page (a workflow task's history); 0: open-ended.
    #[prost(int64, tag = "3")]
    end_event_id: i64,
    /// A transient workflow task's events, which follow the stored ones.
    #[prost(message, repeated, tag = "4")]
    transient: Vec<HistoryEvent>,
}

pub(crate) struct Page {
    pub events: Vec<HistoryEvent>,
    pub next_page_token: Vec<u8>,
}

/// Stored events are read in batches of this many.
const READ_BATCH: usize = 256;

pub(crate) fn corrupt(key: &ExecutionKey, e: prost::DecodeError) -> HistoryError {
    HistoryError::Corrupt(format!("undecodable history event of {key}: {e}"))
}

impl History {
    pub(crate) async fn read_event(
        &self,
        key: &ExecutionKey,
        event_id: i64,
    ) -> Result<HistoryEvent> {
        let rows = self
            .store()
            .read_events(&key.run_id, event_id, event_id + 1, 1)
            .await?;
        let (_, data) = rows.into_iter().next().ok_or_else(|| {
            HistoryError::Corrupt(format!("event {event_id} of {key} is missing"))
        })?;
        HistoryEvent::decode(data.as_slice()).map_err(|e| corrupt(key, e))
    }

    /// Stored events `from..to`, then `transient`, cut where a page is full (by count or by
    /// bytes, so a response stays under the gRPC limit); the token continues from the cut.
    pub(crate) async fn history_page(
        &self,
        key: &ExecutionKey,
        from: i64,
        to: i64,
        transient: Vec<HistoryEvent>,
        max_events: usize,
    ) -> Result<Page> {
        let mut events = Vec::new();
        let mut bytes = 0;
        let mut next = from;
        while next < to {
            let room = max_events.saturating_sub(events.len()).min(READ_BATCH);
            let rows = if room == 0 {
                Vec::new()
            } else {
                self.store()
                    .read_events(&key.run_id, next, to, room)
                    .await?
            };
            let Some(&(first_id, _)) = rows.first() else {
                break;
            };
            if first_id != next {
                return Err(HistoryError::Corrupt(format!(
                    "event {next} of {key} is missing"
                )));
            }
            for (id, data) in rows {
                if bytes + data.len() > limits::HISTORY_PAGE_BYTES && !events.is_empty() {
                    return Ok(continued(events, key, id, to, transient));
                }
                bytes += data.len();
                events.push(HistoryEvent::decode(data.as_slice()).map_err(|e| corrupt(key, e))?);
                next = id + 1;
            }
        }
        if next < to {
            return Ok(continued(events, key, next, to, transient));
        }
        events.extend(transient);
        Ok(Page {
            events,
            next_page_token: Vec::new(),
        })
    }

    /// A run's state for reading, with a subscription to its progress taken *before* the read
    /// so no change between the two is missed.
    async fn watched(
        &self,
        key: &ExecutionKey,
    ) -> Result<(MutableState, watch::Receiver<Progress>)> {
        let receiver = self.inner.watch.subscribe(key, Progress::default());
        let state = self.snapshot(key).await?.0;
        Ok((state, receiver))
    }

    pub async fn get_history(
        &self,
        namespace_id: &str,
        r: GetWorkflowExecutionHistoryRequest,
        deadline: Instant,
    ) -> Result<GetWorkflowExecutionHistoryResponse> {
        let execution = r.execution.unwrap_or_default();
        let token = match r.next_page_token.as_slice() {
            [] => None,
            bytes => Some(
                PageToken::decode(bytes)
                    .map_err(|_| HistoryError::InvalidArgument("Invalid NextPageToken.".into()))?,
            ),
        };
        let run_id = token
            .as_ref()
            .map_or(execution.run_id.as_str(), |t| t.run_id.as_str());
        let key = self
            .resolve_run(namespace_id, &execution.workflow_id, run_id)
            .await?;
        let (state, receiver) = self.watched(&key).await?;
        let now = Progress {
            next_event_id: state.next_event_id,
            closed: !state.is_running(),
        };
        let page = if r.history_event_filter_type == HistoryEventFilterType::CloseEvent as i32 {
            self.close_event_page(
                &key,
                &state,
                now,
                r.wait_new_event.then_some((receiver, deadline)),
            )
            .await?
        } else {
            let from = token.as_ref().map_or(1, |t| t.next_event_id);
            let fixed_end = token.as_ref().map_or(0, |t| t.end_event_id);
            let mut progress = now;
            if r.wait_new_event && fixed_end == 0 && from >= now.next_event_id && !now.closed {
                match wait(
                    receiver,
                    now,
                    |p| p.next_event_id > from || p.closed,
                    deadline,
                )
                .await
                {
                    Some(p) => progress = p,
                    None => return Ok(history_response(Vec::new(), waiting_token(&key, from))),
                }
            }
            let to = if fixed_end > 0 {
                fixed_end
            } else {
                progress.next_event_id
            };
            let size = usize::try_from(r.maximum_page_size)
                .ok()
                .filter(|s| *s > 0)
                .unwrap_or(limits::DEFAULT_HISTORY_PAGE_SIZE);
            let transient = match token {
                Some(t) => t.transient,
                // A retry in flight is shown as Temporal shows it, though not yet written; a
                // follower (`wait_new_event`) reads it once written instead.
                None if !r.wait_new_event && to == state.next_event_id => state
                    .workflow_task
                    .as_ref()
                    .filter(|wft| wft.is_started())
                    .map(|wft| state.transient_events(wft, time::now()))
                    .unwrap_or_default(),
                None => Vec::new(),
            };
            let mut page = self.history_page(&key, from, to, transient, size).await?;
            if page.next_page_token.is_empty()
                && r.wait_new_event
                && fixed_end == 0
                && !progress.closed
            {
                // The run goes on: the client keeps following it from here.
                page.next_page_token = waiting_token(&key, to);
            }
            page
        };
        Ok(history_response(page.events, page.next_page_token))
    }

    /// The close event alone; with a wait, once the run closes or the deadline passes.
    async fn close_event_page(
        &self,
        key: &ExecutionKey,
        state: &MutableState,
        now: Progress,
        wait_until: Option<(watch::Receiver<Progress>, Instant)>,
    ) -> Result<Page> {
        let mut closed = now.closed;
        if let (false, Some((receiver, deadline))) = (closed, wait_until) {
            closed = wait(receiver, now, |p| p.closed, deadline).await.is_some();
            if !closed {
                return Ok(Page {
                    events: Vec::new(),
                    next_page_token: waiting_token(key, now.next_event_id),
                });
            }
        }
        if !closed {
            return Ok(Page {
                events: Vec::new(),
                next_page_token: Vec::new(),
            });
        }
        let close_event_id = match state.info().close_event_id {
            0 => self.snapshot(key).await?.0.info().close_event_id,
            id => id,
        };
        let event = self.read_event(key, close_event_id).await?;
        Ok(Page {
            events: vec![event],
            next_page_token: Vec::new(),
        })
    }

    pub async fn describe(
        &self,
        namespace_id: &str,
        r: DescribeWorkflowExecutionRequest,
    ) -> Result<DescribeWorkflowExecutionResponse> {
        let execution = r.execution.unwrap_or_default();
        let key = self
            .resolve_run(namespace_id, &execution.workflow_id, &execution.run_id)
            .await?;
        let (state, version) = self.snapshot(&key).await?;
        Ok(describe_response(&key, &state, version))
    }
}

fn continued(
    events: Vec<HistoryEvent>,
    key: &ExecutionKey,
    next: i64,
    to: i64,
    transient: Vec<HistoryEvent>,
) -> Page {
    let token = PageToken {
        run_id: key.run_id.clone(),
        next_event_id: next,
        end_event_id: to,
        transient,
    };
    Page {
        events,
        next_page_token: token.encode_to_vec(),
    }
}

fn waiting_token(key: &ExecutionKey, next_event_id: i64) -> Vec<u8> {
    PageToken {
        run_id: key.run_id.clone(),
        next_event_id,
        end_event_id: 0,
        transient: Vec::new(),
    }
    .encode_to_vec()
}

fn history_response(
    events: Vec<HistoryEvent>,
    next_page_token: Vec<u8>,
) -> GetWorkflowExecutionHistoryResponse {
    GetWorkflowExecutionHistoryResponse {
        history: Some(EventPage { events }),
        next_page_token,
        ..Default::default()
    }
}

/// Waits until the run's progress satisfies `ready`; None when the deadline came first.
async fn wait(
    mut receiver: watch::Receiver<Progress>,
    now: Progress,
    ready: impl Fn(&Progress) -> bool,
    deadline: Instant,
) -> Option<Progress> {
    if ready(&now) {
        return Some(now);
    }
    let waited = tokio::time::timeout_at(deadline, receiver.wait_for(|p| ready(p))).await;
    match waited {
        Ok(Ok(progress)) => Some(*progress),
        _ => None,
    }
}

fn describe_response(
    key: &ExecutionKey,
    state: &MutableState,
    version: i64,
) -> DescribeWorkflowExecutionResponse {
    let info = state.info();
    let task_queue = crate::engine::events::normal_queue(&info.task_queue);
    let execution_info = crate::visibility::execution_info(key, state, version);
    DescribeWorkflowExecutionResponse {
        execution_config: Some(WorkflowExecutionConfig {
            task_queue: Some(task_queue),
            workflow_execution_timeout: info.execution_timeout,
            workflow_run_timeout: info.run_timeout,
            default_workflow_task_timeout: info.workflow_task_timeout,
            user_metadata: info.user_metadata.clone(),
        }),
        workflow_execution_info: Some(execution_info),
        pending_activities: state.activities.values().map(pending_activity).collect(),
        pending_workflow_task: state
            .workflow_task
            .as_ref()
            .map(|w| PendingWorkflowTaskInfo {
                state: if w.is_started() {
                    PendingWorkflowTaskState::Started
                } else {
                    PendingWorkflowTaskState::Scheduled
                } as i32,
                scheduled_time: w.scheduled_time,
                original_scheduled_time: w.scheduled_time,
                started_time: w.started_time,
                attempt: w.attempt,
            }),
        ..Default::default()
    }
}

fn pending_activity(ai: &crate::engine::state::ActivityInfo) -> PendingActivityInfo {
    let state = if ai.cancel_requested {
        PendingActivityState::CancelRequested
    } else if ai.paused.is_some() && ai.is_started() {
        // Paused, but the running attempt goes on until it ends.
        PendingActivityState::PauseRequested
    } else if ai.paused.is_some() {
        PendingActivityState::Paused
    } else if ai.is_started() {
        PendingActivityState::Started
    } else {
        PendingActivityState::Scheduled
    };
    let expiration_time = match (
        &ai.scheduled_time,
        time::stored_duration(ai.schedule_to_close_timeout.as_ref()),
    ) {
        (Some(at), Some(limit)) => Some(time::timestamp(time::after(
            time::from_timestamp(at),
            limit,
        ))),
        _ => None,
    };
    PendingActivityInfo {
        activity_id: ai.activity_id.clone(),
        activity_type: Some(chronicle_api::common::v1::ActivityType {
            name: ai.activity_type.clone(),
        }),
        state: state as i32,
        heartbeat_details: ai.heartbeat_details.clone(),
        last_heartbeat_time: ai.last_heartbeat_time,
        last_started_time: ai.started_time,
        attempt: ai.attempt,
        maximum_attempts: ai.retry_policy.as_ref().map_or(0, |p| p.maximum_attempts),
        scheduled_time: ai.current_attempt_scheduled_time,
        expiration_time,
        last_failure: ai.last_failure.clone(),
        paused: ai.paused.is_some(),
        activity_options: Some(crate::engine::activity_ops::options_of(ai)),
        pause_info: ai.paused.as_ref().map(|p| PauseInfo {
            pause_time: p.time,
            paused_by: Some(PausedBy::Manual(Manual {
                identity: p.identity.clone(),
                reason: p.reason.clone(),
            })),
        }),
        // The worker running the attempt, else the one that ran the last.
        last_worker_identity: if ai.is_started() {
            ai.started_identity.clone()
        } else {
            ai.last_worker_identity.clone()
        },
        ..Default::default()
    }
}

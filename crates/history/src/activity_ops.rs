//! PauseActivity, UnpauseActivity and ResetActivity on the run the request names (its
//! current run when no run id is given).

use crate::engine::activity_ops::{NO_SUCH_ACTIVITY, ResetOptions, Selection};
use crate::engine::change::Change;
use crate::{History, HistoryError, Result};
use chronicle_api::activity::v1::ActivityOptions;
use chronicle_api::common::v1::WorkflowExecution;
use chronicle_api::workflowservice::{
    PauseActivityRequest, ResetActivityRequest, UnpauseActivityRequest,
    UpdateActivityOptionsRequest, pause_activity_request, reset_activity_request,
    unpause_activity_request, update_activity_options_request,
};

/// What a running attempt's heartbeat answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeartbeatAnswer {
    pub cancel_requested: bool,
    pub paused: bool,
    pub reset: bool,
}

fn by_id(id: String) -> Result<Selection> {
    if id.is_empty() {
        return Err(HistoryError::InvalidArgument(
            "Activity id is not set.".into(),
        ));
    }
    Ok(Selection::Id(id))
}

impl History {
    async fn on_activities(
        &self,
        namespace_id: &str,
        execution: Option<WorkflowExecution>,
        edit: impl FnOnce(&mut Change) -> Result<()>,
    ) -> Result<()> {
        let execution = execution.unwrap_or_default();
        let workflow_id = execution.workflow_id.clone();
        self.update_named(namespace_id, &execution, edit)
            .await
            .map_err(|e| match e {
                // As Temporal words it for the run itself (the activity has its own message).
                HistoryError::WorkflowNotFound(m) if m != NO_SUCH_ACTIVITY => {
                    HistoryError::WorkflowNotFound(format!(
                        "workflow not found for ID: {workflow_id}"
                    ))
                }
                e => e,
            })
    }

    pub async fn pause_activity(&self, namespace_id: &str, r: PauseActivityRequest) -> Result<()> {
        use pause_activity_request::Activity;
        let selection = match r.activity {
            Some(Activity::Id(id)) => by_id(id)?,
            Some(Activity::Type(ty)) => Selection::Type(ty),
            None => by_id(String::new())?,
        };
        let (identity, reason) = (r.identity, r.reason);
        self.on_activities(namespace_id, r.execution, |change| {
            change.pause_activities(&selection, &identity, &reason)
        })
        .await
    }

    pub async fn unpause_activity(
        &self,
        namespace_id: &str,
        r: UnpauseActivityRequest,
    ) -> Result<()> {
        use unpause_activity_request::Activity;
        let selection = match r.activity {
            Some(Activity::Id(id)) => by_id(id)?,
            Some(Activity::Type(ty)) => Selection::Type(ty),
            Some(Activity::UnpauseAll(true)) => Selection::All,
            _ => by_id(String::new())?,
        };
        let reset = ResetOptions {
            keep_paused: false,
            reset_heartbeat: r.reset_heartbeat,
        };
        let reset_attempts = r.reset_attempts;
        self.on_activities(namespace_id, r.execution, |change| {
            if reset_attempts {
                change.reset_activities(&selection, reset)
            } else {
                change.unpause_activities(&selection)
            }
        })
        .await
    }

    pub async fn update_activity_options(
        &self,
        namespace_id: &str,
        r: UpdateActivityOptionsRequest,
    ) -> Result<ActivityOptions> {
        use update_activity_options_request::Activity;
        let paths = r.update_mask.map(|m| m.paths).unwrap_or_default();
        if paths.is_empty() {
            return Err(HistoryError::InvalidArgument(
                "UpdateMask is not provided".into(),
            ));
        }
        let selection = match r.activity {
            Some(Activity::Id(id)) => by_id(id)?,
            Some(Activity::Type(ty)) => Selection::Type(ty),
            Some(Activity::MatchAll(true)) => Selection::All,
            _ => by_id(String::new())?,
        };
        let new = r.activity_options.unwrap_or_default();
        let mut updated = None;
        self.on_activities(namespace_id, r.execution, |change| {
            updated = Some(change.update_activity_options(&selection, &new, &paths)?);
            Ok(())
        })
        .await?;
        Ok(updated.unwrap_or_default())
    }

    pub async fn reset_activity(&self, namespace_id: &str, r: ResetActivityRequest) -> Result<()> {
        use reset_activity_request::Activity;
        let selection = match r.activity {
            Some(Activity::Id(id)) => by_id(id)?,
            Some(Activity::Type(ty)) => Selection::Type(ty),
            Some(Activity::MatchAll(true)) => Selection::All,
            _ => by_id(String::new())?,
        };
        let options = ResetOptions {
            keep_paused: r.keep_paused,
            reset_heartbeat: r.reset_heartbeat,
        };
        self.on_activities(namespace_id, r.execution, |change| {
            change.reset_activities(&selection, options)
        })
        .await
    }
}

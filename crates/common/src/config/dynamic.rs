//! Temporal's dynamic config keys, for `--dynamic-config-value KEY=VALUE` as the `temporal`
//! CLI takes it: test suites written for Temporal pass these flags. Each key Chronicle
//! understands sets one limit; any other key is refused by name, with the known ones listed.

use super::limits::{Limits, LimitsTable};
use crate::search_attributes::go_duration;

type Setter = fn(&mut Limits, &str) -> Result<(), String>;

macro_rules! number {
    ($field:ident) => {
        |limits: &mut Limits, value: &str| {
            limits.$field = value
                .parse()
                .map_err(|_| format!("expected a number, got {value:?}"))?;
            Ok(())
        }
    };
}

macro_rules! seconds {
    ($field:ident) => {
        |limits: &mut Limits, value: &str| {
            let duration = go_duration(value)
                .or_else(|| value.parse().ok().map(std::time::Duration::from_secs))
                .ok_or_else(|| format!("expected a duration such as \"10s\", got {value:?}"))?;
            limits.$field = duration.as_secs();
            Ok(())
        }
    };
}

/// The keys, under Temporal's names (`frontend.namespaceRPS.worker` is Chronicle's own: its
/// workers' calls have a bucket of their own).
const KEYS: &[(&str, Setter)] = &[
    ("frontend.rps", number!(node_rps)),
    ("frontend.namespaceRPS", number!(namespace_rps)),
    (
        "frontend.namespaceRPS.worker",
        number!(namespace_worker_rps),
    ),
    (
        "frontend.namespaceRPS.visibility",
        number!(namespace_visibility_rps),
    ),
    ("frontend.namespaceBurstRatio", number!(burst_ratio)),
    ("frontend.namespaceCount", number!(long_polls_per_namespace)),
    ("limit.blobSize.error", number!(blob_size_error)),
    ("limit.blobSize.warn", number!(blob_size_warn)),
    ("limit.memoSize.error", number!(memo_size_error)),
    ("limit.memoSize.warn", number!(memo_size_warn)),
    ("limit.historyCount.error", number!(history_count_error)),
    ("limit.historyCount.warn", number!(history_count_warn)),
    ("limit.historySize.error", number!(history_size_error)),
    ("limit.historySize.warn", number!(history_size_warn)),
    (
        "limit.historyCount.suggestContinueAsNew",
        number!(suggest_continue_as_new_events),
    ),
    (
        "limit.historySize.suggestContinueAsNew",
        number!(suggest_continue_as_new_bytes),
    ),
    (
        "limit.mutableStateSize.error",
        number!(mutable_state_size_error),
    ),
    (
        "limit.numPendingActivities.error",
        number!(pending_activities),
    ),
    (
        "limit.numPendingChildExecutions.error",
        number!(pending_children),
    ),
    ("limit.numPendingSignals.error", number!(pending_signals)),
    (
        "limit.numPendingCancelRequests.error",
        number!(pending_cancel_requests),
    ),
    (
        "limit.searchAttributesNumberOfKeys",
        number!(search_attributes_count),
    ),
    (
        "limit.searchAttributesSize",
        number!(search_attribute_value_size),
    ),
    (
        "limit.searchAttributesTotalSize",
        number!(search_attributes_total_size),
    ),
    (
        "history.maximumSignalsPerExecution",
        number!(signals_per_execution),
    ),
    ("history.maxInFlightUpdates", number!(updates_in_flight)),
    ("history.maxTotalUpdates", number!(updates_per_run)),
    (
        "history.workflowTaskRetryMaxInterval",
        seconds!(workflow_task_retry_max_interval_secs),
    ),
];

/// Parses `KEY=VALUE` (VALUE as YAML writes a scalar: `5s`, `"5s"`, `100`, `2.5`).
pub fn parse(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, got {text:?}"))?;
    let value = value.trim();
    let unquoted = ['"', '\'']
        .iter()
        .find_map(|q| value.strip_prefix(*q)?.strip_suffix(*q))
        .unwrap_or(value);
    Ok((key.trim().to_owned(), unquoted.to_owned()))
}

/// Sets `key` (matched without regard to case, as Temporal matches it) on the node's
/// limits and every namespace's.
pub fn apply(table: &mut LimitsTable, key: &str, value: &str) -> Result<(), String> {
    let Some((name, set)) = KEYS.iter().find(|(name, _)| name.eq_ignore_ascii_case(key)) else {
        let known: Vec<&str> = KEYS.iter().map(|(name, _)| *name).collect();
        return Err(format!(
            "unknown dynamic config key {key:?}; Chronicle understands: {}",
            known.join(", ")
        ));
    };
    let limits = std::iter::once(&mut table.node).chain(table.namespaces.values_mut());
    for limits in limits {
        set(limits, value).map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(pairs: &[&str]) -> Result<LimitsTable, String> {
        let mut table = LimitsTable::default();
        for pair in pairs {
            let (key, value) = parse(pair)?;
            apply(&mut table, &key, &value)?;
        }
        Ok(table)
    }

    #[test]
    fn known_keys_set_their_limits_under_temporal_names() {
        let table = applied(&[
            "frontend.namespaceRPS=50",
            "limit.blobSize.error=1024",
            "LIMIT.HISTORYCOUNT.SUGGESTCONTINUEASNEW=100",
            "history.workflowTaskRetryMaxInterval=\"5s\"",
            "frontend.namespaceBurstRatio=1.5",
        ])
        .unwrap();
        let node = &table.node;
        assert_eq!(node.namespace_rps, 50.0);
        assert_eq!(node.blob_size_error, 1024);
        assert_eq!(node.suggest_continue_as_new_events, 100);
        assert_eq!(node.workflow_task_retry_max_interval_secs, 5);
        assert_eq!(node.burst_ratio, 1.5);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused_by_name() {
        let err = applied(&["frontend.noSuchKey=1"]).unwrap_err();
        assert!(err.contains("frontend.noSuchKey") && err.contains("frontend.namespaceRPS"));
        let err = applied(&["limit.blobSize.error=big"]).unwrap_err();
        assert!(err.starts_with("limit.blobSize.error"), "{err}");
        assert!(applied(&["frontend.rps"]).is_err());
    }
}

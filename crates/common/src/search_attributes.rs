//! Search attributes: their value types, the system attributes every namespace has, and the
//! typed values their payloads (JSON, as the SDKs encode them) carry.

use chronicle_api::common::v1::Payload;
use chronicle_api::enums::v1::IndexedValueType;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueType {
    Keyword,
    Text,
    Int,
    Double,
    Bool,
    Datetime,
    KeywordList,
}

impl ValueType {
    pub const ALL: [ValueType; 7] = [
        Self::Keyword,
        Self::Text,
        Self::Int,
        Self::Double,
        Self::Bool,
        Self::Datetime,
        Self::KeywordList,
    ];

    /// The name Temporal uses in payload metadata and in `--search-attribute NAME=TYPE`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Keyword => "Keyword",
            Self::Text => "Text",
            Self::Int => "Int",
            Self::Double => "Double",
            Self::Bool => "Bool",
            Self::Datetime => "Datetime",
            Self::KeywordList => "KeywordList",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(name))
    }

    pub fn indexed(self) -> IndexedValueType {
        match self {
            Self::Keyword => IndexedValueType::Keyword,
            Self::Text => IndexedValueType::Text,
            Self::Int => IndexedValueType::Int,
            Self::Double => IndexedValueType::Double,
            Self::Bool => IndexedValueType::Bool,
            Self::Datetime => IndexedValueType::Datetime,
            Self::KeywordList => IndexedValueType::KeywordList,
        }
    }

    pub fn from_indexed(value: i32) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.indexed() as i32 == value)
    }

    /// Holds several values per execution (matched by "contains").
    pub fn is_multi_valued(self) -> bool {
        matches!(self, Self::KeywordList | Self::Text)
    }
}

/// System search attributes: present in every namespace, never registered or removed.
pub const SYSTEM_ATTRIBUTES: &[(&str, ValueType)] = &[
    ("WorkflowId", ValueType::Keyword),
    ("RunId", ValueType::Keyword),
    ("WorkflowType", ValueType::Keyword),
    ("TaskQueue", ValueType::Keyword),
    ("ExecutionStatus", ValueType::Keyword),
    ("StartTime", ValueType::Datetime),
    ("CloseTime", ValueType::Datetime),
    ("ExecutionTime", ValueType::Datetime),
    ("ExecutionDuration", ValueType::Int),
    ("HistoryLength", ValueType::Int),
    ("HistorySizeBytes", ValueType::Int),
    ("StateTransitionCount", ValueType::Int),
    ("ParentWorkflowId", ValueType::Keyword),
    ("ParentRunId", ValueType::Keyword),
    ("RootWorkflowId", ValueType::Keyword),
    ("RootRunId", ValueType::Keyword),
    ("TemporalChangeVersion", ValueType::KeywordList),
    ("BinaryChecksums", ValueType::KeywordList),
    ("BuildIds", ValueType::KeywordList),
    ("BatcherUser", ValueType::Keyword),
    ("BatcherNamespace", ValueType::Keyword),
    ("TemporalScheduledStartTime", ValueType::Datetime),
    ("TemporalScheduledById", ValueType::Keyword),
    ("TemporalSchedulePaused", ValueType::Bool),
    ("TemporalNamespaceDivision", ValueType::Keyword),
    ("TemporalPauseInfo", ValueType::KeywordList),
    ("TemporalWorkerDeploymentVersion", ValueType::Keyword),
    ("TemporalWorkerDeployment", ValueType::Keyword),
    ("TemporalWorkflowVersioningBehavior", ValueType::Keyword),
];

pub fn system_type(name: &str) -> Option<ValueType> {
    SYSTEM_ATTRIBUTES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
}

/// A search attribute's value as visibility stores and compares it.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Keyword(String),
    /// Stored as its lower-cased words, matched word by word.
    Text(String),
    Int(i64),
    Double(f64),
    Bool(bool),
    /// Unix nanoseconds.
    Datetime(i64),
    KeywordList(Vec<String>),
}

/// RFC 3339 (with any offset) to unix nanoseconds.
pub fn parse_datetime(text: &str) -> Option<i64> {
    let parsed = chrono::DateTime::parse_from_rfc3339(text).ok()?;
    parsed.timestamp_nanos_opt()
}

/// The words of a Text value, as they are indexed and matched.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Go's duration syntax ("1h30m", "250ms"); durations in queries use it.
pub fn go_duration(text: &str) -> Option<Duration> {
    let mut total = 0f64;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += number * seconds;
        rest = &rest[unit_len..];
    }
    // A number too large for a Duration is no duration, not a panic.
    Duration::try_from_secs_f64(total).ok()
}

/// Whether the payload says "no value": an upsert with it unsets the attribute.
pub fn unsets(payload: &Payload) -> bool {
    let json = serde_json::from_slice(&payload.data).unwrap_or(serde_json::Value::Null);
    is_unset(payload, &json)
}

fn is_unset(payload: &Payload, json: &serde_json::Value) -> bool {
    payload
        .metadata
        .get("encoding")
        .is_some_and(|e| e.as_slice() == b"binary/null")
        || json.is_null()
        || json.as_array().is_some_and(Vec::is_empty)
}

/// The typed value a payload carries for an attribute of type `ty`; None unsets it.
pub fn decode(ty: ValueType, payload: &Payload) -> Result<Option<Value>, String> {
    let json: serde_json::Value = if payload.data.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&payload.data)
            .map_err(|_| String::from_utf8_lossy(&payload.data).into_owned())?
    };
    if is_unset(payload, &json) {
        return Ok(None);
    }
    let shown = || json.to_string();
    // The SDKs' untyped form sends every value as a list (`[1]`), which Temporal accepts for
    // one value of any type, the payload kept as sent.
    let json = match &json {
        serde_json::Value::Array(items) if items.len() == 1 && ty != ValueType::KeywordList => {
            items[0].clone()
        }
        _ => json.clone(),
    };
    let value = match ty {
        ValueType::Keyword => json.as_str().map(|s| Value::Keyword(s.to_owned())),
        ValueType::Text => json.as_str().map(|s| Value::Text(s.to_owned())),
        ValueType::Int => json.as_i64().map(Value::Int),
        ValueType::Double => json.as_f64().map(Value::Double),
        ValueType::Bool => json.as_bool().map(Value::Bool),
        ValueType::Datetime => json.as_str().and_then(parse_datetime).map(Value::Datetime),
        ValueType::KeywordList => match &json {
            serde_json::Value::String(s) => Some(Value::KeywordList(vec![s.clone()])),
            serde_json::Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .map(Value::KeywordList),
            _ => None,
        },
    };
    value.map(Some).ok_or_else(shown)
}

/// The payload with its "type" metadata set, which SDKs read to decode typed values.
pub fn typed(ty: ValueType, mut payload: Payload) -> Payload {
    payload
        .metadata
        .insert("type".into(), ty.name().as_bytes().to_vec());
    payload
        .metadata
        .entry("encoding".into())
        .or_insert_with(|| b"json/plain".to_vec());
    payload
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(data: &str) -> Payload {
        Payload {
            metadata: [("encoding".to_owned(), b"json/plain".to_vec())].into(),
            data: data.as_bytes().to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn payloads_decode_by_type() {
        assert_eq!(
            decode(ValueType::Int, &json("17")),
            Ok(Some(Value::Int(17)))
        );
        assert_eq!(
            decode(ValueType::Keyword, &json("\"a\"")),
            Ok(Some(Value::Keyword("a".into())))
        );
        assert_eq!(
            decode(ValueType::KeywordList, &json("[\"m\",\"n\"]")),
            Ok(Some(Value::KeywordList(vec!["m".into(), "n".into()])))
        );
        assert_eq!(
            decode(ValueType::Datetime, &json("\"2024-01-01T00:00:00Z\"")),
            Ok(Some(Value::Datetime(1_704_067_200_000_000_000)))
        );
        assert_eq!(decode(ValueType::Keyword, &json("null")), Ok(None));
        assert_eq!(decode(ValueType::KeywordList, &json("[]")), Ok(None));
        assert_eq!(decode(ValueType::Keyword, &json("5")), Err("5".into()));
        assert_eq!(
            decode(ValueType::Int, &json("\"abc\"")),
            Err("\"abc\"".into())
        );
    }

    #[test]
    fn one_value_in_a_list_is_that_value_and_an_empty_list_unsets() {
        assert_eq!(
            decode(ValueType::Int, &json("[1]")),
            Ok(Some(Value::Int(1)))
        );
        assert_eq!(
            decode(ValueType::Bool, &json("[true]")),
            Ok(Some(Value::Bool(true)))
        );
        assert_eq!(
            decode(ValueType::Keyword, &json("[\"k\"]")),
            Ok(Some(Value::Keyword("k".into())))
        );
        assert_eq!(decode(ValueType::Int, &json("[]")), Ok(None));
        assert_eq!(decode(ValueType::Int, &json("[1,2]")), Err("[1,2]".into()));
    }

    #[test]
    fn texts_split_into_lowercase_words_and_durations_parse() {
        assert_eq!(words("Quick brown-fox"), vec!["quick", "brown", "fox"]);
        assert_eq!(go_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(go_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(go_duration("5x"), None);
        assert_eq!(
            parse_datetime("2024-06-01T02:00:00+02:00"),
            Some(1_717_200_000_000_000_000)
        );
    }
}

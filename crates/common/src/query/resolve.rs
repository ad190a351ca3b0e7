//! Resolution: every attribute name gets its type (system column or custom attribute) and
//! every literal becomes a typed value of that type, so the SQL translation only binds values.

use super::QueryError;
use super::parse::{CmpOp, Expr, Literal, Query};
use crate::search_attributes::{ValueType, go_duration, system_type, words};
use chrono::Datelike;

/// Columns of the visibility table that system attributes are stored in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    WorkflowId,
    RunId,
    WorkflowType,
    TaskQueue,
    Status,
    StartTime,
    CloseTime,
    ExecutionTime,
    ExecutionDuration,
    HistoryLength,
    HistorySizeBytes,
    StateTransitionCount,
    ParentWorkflowId,
    ParentRunId,
    RootWorkflowId,
    RootRunId,
}

fn column(name: &str) -> Option<Column> {
    Some(match name {
        "WorkflowId" => Column::WorkflowId,
        "RunId" => Column::RunId,
        "WorkflowType" => Column::WorkflowType,
        "TaskQueue" => Column::TaskQueue,
        "ExecutionStatus" => Column::Status,
        "StartTime" => Column::StartTime,
        "CloseTime" => Column::CloseTime,
        "ExecutionTime" => Column::ExecutionTime,
        "ExecutionDuration" => Column::ExecutionDuration,
        "HistoryLength" => Column::HistoryLength,
        "HistorySizeBytes" => Column::HistorySizeBytes,
        "StateTransitionCount" => Column::StateTransitionCount,
        "ParentWorkflowId" => Column::ParentWorkflowId,
        "ParentRunId" => Column::ParentRunId,
        "RootWorkflowId" => Column::RootWorkflowId,
        "RootRunId" => Column::RootRunId,
        _ => return None,
    })
}

/// What a predicate is about.
#[derive(Clone, Debug, PartialEq)]
pub enum Operand {
    Column(Column),
    /// Stored in the attribute table by name; multi-valued types match by "contains".
    Attribute {
        name: String,
        ty: ValueType,
    },
}

/// A bound value, in the representation of its column.
#[derive(Clone, Debug, PartialEq)]
pub enum Bound {
    Str(String),
    /// Int, Bool (0/1), Datetime and durations (nanoseconds), ExecutionStatus.
    Int(i64),
    Double(f64),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    /// Two or more terms.
    And(Vec<Filter>),
    /// Two or more terms.
    Or(Vec<Filter>),
    Not(Box<Filter>),
    Cmp {
        operand: Operand,
        op: CmpOp,
        value: Bound,
    },
    In {
        operand: Operand,
        values: Vec<Bound>,
        negated: bool,
    },
    Between {
        operand: Operand,
        low: Bound,
        high: Bound,
        negated: bool,
    },
    StartsWith {
        operand: Operand,
        prefix: String,
        negated: bool,
    },
    IsNull {
        operand: Operand,
        negated: bool,
    },
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Resolved {
    pub filter: Option<Filter>,
    /// `GROUP BY ExecutionStatus`, the only grouping Temporal supports.
    pub group_by_status: bool,
    /// (operand, descending); empty means the default order.
    pub order_by: Vec<(Operand, bool)>,
}

const STATUSES: &[&str] = &[
    "Running",
    "Completed",
    "Failed",
    "Canceled",
    "Terminated",
    "ContinuedAsNew",
    "TimedOut",
];

/// The name ExecutionStatus takes in queries, for a `WorkflowExecutionStatus` value.
pub fn status_name(status: i32) -> &'static str {
    usize::try_from(status - 1)
        .ok()
        .and_then(|i| STATUSES.get(i))
        .copied()
        .unwrap_or("Unspecified")
}

struct Resolver<'a> {
    custom: &'a dyn Fn(&str) -> Option<ValueType>,
}

fn invalid(what: impl std::fmt::Display) -> QueryError {
    QueryError(what.to_string())
}

impl Resolver<'_> {
    fn operand(&self, name: &str) -> Result<(Operand, ValueType), QueryError> {
        if let Some(ty) = system_type(name) {
            return Ok(match column(name) {
                Some(c) => (Operand::Column(c), ty),
                None => (
                    Operand::Attribute {
                        name: name.to_owned(),
                        ty,
                    },
                    ty,
                ),
            });
        }
        let ty = (self.custom)(name)
            .ok_or_else(|| invalid(format!("invalid search attribute: {name}")))?;
        Ok((
            Operand::Attribute {
                name: name.to_owned(),
                ty,
            },
            ty,
        ))
    }

    fn value(
        &self,
        name: &str,
        operand: &Operand,
        ty: ValueType,
        literal: &Literal,
    ) -> Result<Bound, QueryError> {
        let wrong = || {
            invalid(format!(
                "invalid expression: invalid value type for search attribute {name} of type {}: {literal:?}",
                ty.name()
            ))
        };
        if *operand == Operand::Column(Column::Status) {
            return match literal {
                Literal::Str(s) => STATUSES
                    .iter()
                    .position(|n| n == s)
                    .map(|i| Bound::Int(i as i64 + 1))
                    .ok_or_else(|| invalid(format!("invalid ExecutionStatus value '{s}'"))),
                _ => Err(wrong()),
            };
        }
        if *operand == Operand::Column(Column::ExecutionDuration) {
            return match literal {
                Literal::Int(i) => Ok(Bound::Int(*i)),
                Literal::Str(s) => duration_nanos(s).map(Bound::Int).ok_or_else(|| {
                    invalid(format!(
                        "invalid expression: invalid duration value for search attribute {name}: {s}"
                    ))
                }),
                _ => Err(wrong()),
            };
        }
        match (ty, literal) {
            (ValueType::Keyword | ValueType::KeywordList, Literal::Str(s)) => {
                Ok(Bound::Str(s.clone()))
            }
            (ValueType::Text, Literal::Str(s)) => Ok(Bound::Str(s.to_lowercase())),
            (ValueType::Int, Literal::Int(i)) => Ok(Bound::Int(*i)),
            // Past i64 (`HistoryLength < 1e20`) the comparison is made in doubles, as Temporal
            // makes it.
            (ValueType::Int, Literal::Float(f)) => Ok(Bound::Double(*f)),
            (ValueType::Double, Literal::Int(i)) => Ok(Bound::Double(*i as f64)),
            (ValueType::Double, Literal::Float(f)) => Ok(Bound::Double(*f)),
            (ValueType::Bool, Literal::Bool(b)) => Ok(Bound::Int(i64::from(*b))),
            (ValueType::Datetime, Literal::Str(s)) => datetime_nanos(s).map(Bound::Int).ok_or_else(|| {
                invalid(format!(
                    "invalid expression: unable to parse datetime '{s}' for search attribute {name}"
                ))
            }),
            (ValueType::Datetime, Literal::Int(i)) => Ok(Bound::Int(*i)),
            _ => Err(wrong()),
        }
    }

    /// Recurses only into nesting, which the parser bounded.
    fn filter(&self, expr: Expr) -> Result<Filter, QueryError> {
        Ok(match expr {
            Expr::And(terms) => Filter::And(self.filters(terms)?),
            Expr::Or(terms) => Filter::Or(self.filters(terms)?),
            Expr::Not(a) => Filter::Not(Box::new(self.filter(*a)?)),
            Expr::Cmp { attr, op, value } => {
                let (operand, ty) = self.operand(&attr)?;
                let ordered = !matches!(op, CmpOp::Eq | CmpOp::Ne);
                if ordered && ty.is_multi_valued() {
                    return Err(invalid(format!(
                        "operator not supported for {} search attribute {attr}",
                        ty.name()
                    )));
                }
                if ty == ValueType::Text
                    && let Literal::Str(text) = &value
                {
                    return Ok(text_match(operand, text, op == CmpOp::Ne));
                }
                let value = self.value(&attr, &operand, ty, &value)?;
                Filter::Cmp { operand, op, value }
            }
            Expr::In {
                attr,
                values,
                negated,
            } => {
                let (operand, ty) = self.operand(&attr)?;
                if ty == ValueType::Text {
                    return Err(invalid(format!(
                        "IN is not supported for Text search attribute {attr}"
                    )));
                }
                let values = values
                    .iter()
                    .map(|v| self.value(&attr, &operand, ty, v))
                    .collect::<Result<_, _>>()?;
                Filter::In {
                    operand,
                    values,
                    negated,
                }
            }
            Expr::Between {
                attr,
                low,
                high,
                negated,
            } => {
                let (operand, ty) = self.operand(&attr)?;
                if ty.is_multi_valued() {
                    return Err(invalid(format!(
                        "BETWEEN is not supported for {} search attribute {attr}",
                        ty.name()
                    )));
                }
                let low = self.value(&attr, &operand, ty, &low)?;
                let high = self.value(&attr, &operand, ty, &high)?;
                Filter::Between {
                    operand,
                    low,
                    high,
                    negated,
                }
            }
            Expr::StartsWith {
                attr,
                prefix,
                negated,
            } => {
                let (operand, ty) = self.operand(&attr)?;
                if ty != ValueType::Keyword || operand == Operand::Column(Column::Status) {
                    return Err(invalid(format!(
                        "STARTS_WITH is only supported for Keyword search attributes, not {attr}"
                    )));
                }
                Filter::StartsWith {
                    operand,
                    prefix,
                    negated,
                }
            }
            Expr::IsNull { attr, negated } => Filter::IsNull {
                operand: self.operand(&attr)?.0,
                negated,
            },
        })
    }
}

impl Resolver<'_> {
    fn filters(&self, terms: Vec<Expr>) -> Result<Vec<Filter>, QueryError> {
        terms.into_iter().map(|t| self.filter(t)).collect()
    }
}

/// A Go duration in nanoseconds, when it fits in i64 (as Temporal's do).
fn duration_nanos(text: &str) -> Option<i64> {
    go_duration(text).and_then(|d| i64::try_from(d.as_nanos()).ok())
}

/// An RFC 3339 datetime in Unix nanoseconds. Years 1 to 9999 (protobuf Timestamp's range) are
/// valid, as in Temporal; beyond what i64 nanoseconds hold (1677 to 2262) the value
/// saturates, which keeps every comparison with a stored time right.
fn datetime_nanos(text: &str) -> Option<i64> {
    let time = chrono::DateTime::parse_from_rfc3339(text)
        .ok()?
        .with_timezone(&chrono::Utc);
    if !(1..=9999).contains(&time.year()) {
        return None;
    }
    let saturated = if time.timestamp() < 0 {
        i64::MIN
    } else {
        i64::MAX
    };
    Some(time.timestamp_nanos_opt().unwrap_or(saturated))
}

/// `Text = 'a b'`: every word of the value is among the attribute's words.
fn text_match(operand: Operand, text: &str, negated: bool) -> Filter {
    let word = |w: String| Filter::Cmp {
        operand: operand.clone(),
        op: CmpOp::Eq,
        value: Bound::Str(w),
    };
    // A word said twice asks nothing more, and would cost the SQL a subquery more.
    let mut unique = words(text);
    unique.sort_unstable();
    unique.dedup();
    let all: Vec<Filter> = unique.into_iter().map(word).collect();
    let all = match <[Filter; 1]>::try_from(all) {
        Ok([one]) => one,
        Err(none) if none.is_empty() => word(String::new()),
        Err(all) => Filter::And(all),
    };
    if negated {
        Filter::Not(Box::new(all))
    } else {
        all
    }
}

/// Resolves a parsed query against the system attributes and `custom` (the namespace's).
pub fn resolve(
    query: Query,
    custom: &dyn Fn(&str) -> Option<ValueType>,
) -> Result<Resolved, QueryError> {
    let resolver = Resolver { custom };
    let filter = query.filter.map(|f| resolver.filter(f)).transpose()?;
    let group_by_status = match query.group_by.as_slice() {
        [] => false,
        [only] if only == "ExecutionStatus" => true,
        _ => {
            return Err(invalid(
                "'GROUP BY' clause is only supported for ExecutionStatus",
            ));
        }
    };
    let mut order_by = Vec::new();
    for (name, descending) in query.order_by {
        let (operand, ty) = resolver.operand(&name)?;
        if ty.is_multi_valued() {
            return Err(invalid(format!(
                "cannot ORDER BY {} search attribute {name}",
                ty.name()
            )));
        }
        order_by.push((operand, descending));
    }
    Ok(Resolved {
        filter,
        group_by_status,
        order_by,
    })
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse;
    use super::*;

    fn custom(name: &str) -> Option<ValueType> {
        match name {
            "VisInt" => Some(ValueType::Int),
            "VisText" => Some(ValueType::Text),
            "VisList" => Some(ValueType::KeywordList),
            "VisBool" => Some(ValueType::Bool),
            _ => None,
        }
    }

    fn resolved(text: &str) -> Result<Resolved, QueryError> {
        resolve(parse(text)?, &custom)
    }

    #[test]
    fn literals_take_their_attribute_type() {
        let r = resolved("ExecutionStatus = 'Completed' AND StartTime > '2024-01-01T00:00:00Z' AND ExecutionDuration < '1h'").unwrap();
        let text = format!("{r:?}");
        assert!(text.contains("Int(2)"), "{text}");
        assert!(text.contains("Int(1704067200000000000)"), "{text}");
        assert!(text.contains("Int(3600000000000)"), "{text}");
        assert!(resolved("VisBool = true").is_ok());
        assert!(
            resolved("ExecutionStatus = 'Running' GROUP BY ExecutionStatus")
                .unwrap()
                .group_by_status
        );
    }

    #[test]
    fn type_and_name_errors_are_caught() {
        for text in [
            "NoSuch = 'x'",
            "workflowid = 'x'",
            "VisInt = 'abc'",
            "VisBool = 'true'",
            "WorkflowId = 12",
            "StartTime > '2024-01-01'",
            "ExecutionStatus = 'COMPLETED'",
            "VisText STARTS_WITH 'qu'",
            "VisText IN ('fox')",
            "VisList STARTS_WITH 'x'",
            "VisList > 'x'",
            "X = 1 GROUP BY WorkflowType",
            "X = 1 ORDER BY VisList",
        ] {
            assert!(resolved(text).is_err(), "{text}");
        }
    }

    fn bound(text: &str) -> Result<Bound, QueryError> {
        match resolved(text)?.filter {
            Some(Filter::Cmp { value, .. }) => Ok(value),
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn durations_must_fit_in_i64_nanoseconds() {
        assert_eq!(
            bound("ExecutionDuration > '2562047h'"),
            Ok(Bound::Int(2_562_047 * 3_600_000_000_000))
        );
        for text in [
            "ExecutionDuration > '2562048h'",
            "ExecutionDuration > '99999999999999999999h'",
            "ExecutionDuration > '1e400h'",
            "ExecutionDuration > '9999999999999999999999999999999999999ns'",
            "ExecutionDuration > '-1s'",
        ] {
            let err = resolved(text).unwrap_err();
            assert!(err.0.contains("invalid duration value"), "{text}: {err}");
        }
        assert!(resolved("ExecutionDuration > 99999999999999999999").is_err());
    }

    #[test]
    fn datetimes_in_timestamp_range_saturate_past_i64_nanoseconds() {
        assert_eq!(
            bound("StartTime > '9999-12-31T23:59:59Z'"),
            Ok(Bound::Int(i64::MAX))
        );
        assert_eq!(
            bound("StartTime > '0001-01-01T00:00:00Z'"),
            Ok(Bound::Int(i64::MIN))
        );
        assert_eq!(
            bound("StartTime > '1970-01-01T00:00:01Z'"),
            Ok(Bound::Int(1_000_000_000))
        );
        for text in [
            "StartTime > '10000-01-01T00:00:00Z'",
            "StartTime > '0000-01-01T00:00:00Z'",
            "StartTime > '9999-12-31T23:00:00-05:00'",
            "StartTime > '2024-13-01T00:00:00Z'",
        ] {
            let err = resolved(text).unwrap_err();
            assert!(err.0.contains("unable to parse datetime"), "{text}: {err}");
        }
    }

    #[test]
    fn numbers_past_i64_compare_as_doubles() {
        assert_eq!(
            bound("HistoryLength > 99999999999999999999"),
            Ok(Bound::Double(1e20))
        );
        assert_eq!(bound("VisInt < 1.5"), Ok(Bound::Double(1.5)));
        assert!(resolved("VisBool = 1e20").is_err());
    }

    #[test]
    fn chains_resolve_without_recursing_per_term() {
        let text = vec!["VisText = 'a b c'"; 10_000].join(" OR ");
        let Some(Filter::Or(terms)) = resolved(&text).unwrap().filter else {
            panic!("not an OR")
        };
        assert_eq!(terms.len(), 10_000);
        assert!(matches!(&terms[0], Filter::And(words) if words.len() == 3));
        let once = resolved("VisText = 'fox Fox fox'").unwrap().filter;
        assert!(matches!(once, Some(Filter::Cmp { .. })), "{once:?}");
    }
}

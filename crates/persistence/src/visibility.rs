//! Visibility records and the translation of resolved queries into SQL. The SQL text is built
//! from the query's structure only; every value is a bound parameter. Backends differ only
//! in their placeholder syntax.

use crate::sql::Dialect;
use chronicle_common::query::{Bound, CmpOp, Column, Filter, Operand, Resolved};
use chronicle_common::search_attributes::{Value, ValueType, words};

/// A run as List and Count see it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VisibilityRecord {
    pub namespace_id: String,
    pub run_id: String,
    pub workflow_id: String,
    pub workflow_type: String,
    pub task_queue: String,
    pub status: i32,
    /// Unix nanoseconds.
    pub start_time: i64,
    pub execution_time: i64,
    pub close_time: Option<i64>,
    pub execution_duration: Option<i64>,
    pub history_length: Option<i64>,
    pub history_size_bytes: Option<i64>,
    pub state_transition_count: Option<i64>,
    pub parent_workflow_id: Option<String>,
    pub parent_run_id: Option<String>,
    pub root_workflow_id: Option<String>,
    pub root_run_id: Option<String>,
    pub attributes: AttributeRows,
    /// Encoded WorkflowExecutionInfo, returned by List as stored.
    pub data: Vec<u8>,
}

/// What becomes of a run's search attribute rows with its visibility record.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum AttributeRows {
    /// They stay as they are: the change touched no search attribute (most changes).
    #[default]
    Keep,
    /// They become exactly these values (a new run, or an upsert).
    Set(Vec<(String, Value)>),
}

/// One stored attribute value, in the column of its kind.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum AttributeRow {
    Str(String),
    Int(i64),
    Double(f64),
}

impl AttributeRow {
    /// The column the value is stored in. Rows are inserted naming only that column, so
    /// no statement binds a NULL whose type a backend could get wrong.
    pub fn column(&self) -> &'static str {
        match self {
            Self::Str(_) => "sval",
            Self::Int(_) => "ival",
            Self::Double(_) => "dval",
        }
    }
}

/// The rows an attribute value is stored as.
pub(crate) fn attribute_rows(value: &Value) -> Vec<AttributeRow> {
    match value {
        Value::Keyword(s) => vec![AttributeRow::Str(s.clone())],
        Value::Text(s) => words(s).into_iter().map(AttributeRow::Str).collect(),
        Value::KeywordList(items) => items.iter().cloned().map(AttributeRow::Str).collect(),
        Value::Int(i) | Value::Datetime(i) => vec![AttributeRow::Int(*i)],
        Value::Bool(b) => vec![AttributeRow::Int(i64::from(*b))],
        Value::Double(d) => vec![AttributeRow::Double(*d)],
    }
}

/// SQL text with `?` placeholders (the dialect adapts them) and its parameters, in order.
pub(crate) struct Sql {
    pub text: String,
    pub params: Vec<Bound>,
    dialect: Dialect,
}

/// How a sort key is read back from a row, for the page token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Int,
    Double,
    Str,
}

/// What a list query sorts by.
pub(crate) enum KeySource {
    /// Close time, open runs (no close time) first when descending.
    CloseTime,
    StartTime,
    Operand(Operand),
    RunId,
}

/// A sort key of a list query; its SQL value is never NULL.
pub(crate) struct SortKey {
    pub source: KeySource,
    pub kind: KeyKind,
    pub descending: bool,
}

fn column_sql(c: Column) -> &'static str {
    match c {
        Column::WorkflowId => "v.workflow_id",
        Column::RunId => "v.run_id",
        Column::WorkflowType => "v.workflow_type",
        Column::TaskQueue => "v.task_queue",
        Column::Status => "v.status",
        Column::StartTime => "v.start_time",
        Column::CloseTime => "v.close_time",
        Column::ExecutionTime => "v.execution_time",
        Column::ExecutionDuration => "v.execution_duration",
        Column::HistoryLength => "v.history_length",
        Column::HistorySizeBytes => "v.history_size_bytes",
        Column::StateTransitionCount => "v.state_transition_count",
        Column::ParentWorkflowId => "v.parent_workflow_id",
        Column::ParentRunId => "v.parent_run_id",
        Column::RootWorkflowId => "v.root_workflow_id",
        Column::RootRunId => "v.root_run_id",
    }
}

fn value_column(ty: ValueType) -> &'static str {
    match ty {
        ValueType::Int | ValueType::Bool | ValueType::Datetime => "a.ival",
        ValueType::Double => "a.dval",
        _ => "a.sval",
    }
}

fn key_kind(operand: &Operand) -> KeyKind {
    match operand {
        Operand::Column(c) => match c {
            Column::WorkflowId
            | Column::RunId
            | Column::WorkflowType
            | Column::TaskQueue
            | Column::ParentWorkflowId
            | Column::ParentRunId
            | Column::RootWorkflowId
            | Column::RootRunId => KeyKind::Str,
            _ => KeyKind::Int,
        },
        Operand::Attribute { ty, .. } => match ty {
            ValueType::Double => KeyKind::Double,
            ValueType::Int | ValueType::Bool | ValueType::Datetime => KeyKind::Int,
            _ => KeyKind::Str,
        },
    }
}

const ATTRIBUTE_ROWS: &str = "FROM visibility_attributes a WHERE a.namespace_id = v.namespace_id AND a.run_id = v.run_id AND a.name = ";

/// Bound parameters one statement may carry: SQLite's SQLITE_MAX_VARIABLE_NUMBER (32766 in
/// the bundled library), and the 16-bit count of PostgreSQL's and MySQL's protocols.
pub(crate) fn max_parameters(dialect: Dialect) -> usize {
    match dialect {
        Dialect::Sqlite => 32_766,
        Dialect::Postgres | Dialect::MySql => 65_535,
    }
}

impl Sql {
    pub fn new(dialect: Dialect) -> Self {
        Self {
            text: String::new(),
            params: Vec::new(),
            dialect,
        }
    }

    /// The text in the backend's placeholders; a query that binds more values than the
    /// backend takes is the client's to shorten, not a storage failure.
    pub fn statement(&self) -> crate::Result<std::borrow::Cow<'_, str>> {
        let max = max_parameters(self.dialect);
        if self.params.len() > max {
            return Err(crate::PersistenceError::InvalidArgument(format!(
                "invalid query: it needs {} values, more than the {max} one statement can take",
                self.params.len()
            )));
        }
        Ok(self.dialect.sql(&self.text))
    }

    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    pub fn bind(&mut self, value: Bound) -> &mut Self {
        self.params.push(value);
        self.text.push('?');
        self
    }

    /// A scalar operand's value (NULL when the attribute is unset).
    fn scalar(&mut self, operand: &Operand) {
        match operand {
            Operand::Column(c) => {
                self.push(column_sql(*c));
            }
            Operand::Attribute { name, ty } => {
                self.push("(SELECT ")
                    .push(value_column(*ty))
                    .push(" ")
                    .push(ATTRIBUTE_ROWS);
                self.bind(Bound::Str(name.clone())).push(")");
            }
        }
    }

    /// `value IN (the attribute's values)`: "contains", for multi-valued attributes.
    fn contains(&mut self, name: &str, value: Bound) {
        self.bind(value)
            .push(" IN (SELECT a.sval ")
            .push(ATTRIBUTE_ROWS);
        self.bind(Bound::Str(name.to_owned())).push(")");
    }

    fn list(&mut self, values: Vec<Bound>) {
        self.push("(");
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.bind(value);
        }
        self.push(")");
    }

    pub fn filter(&mut self, filter: Filter) {
        match filter {
            Filter::And(terms) => self.chain(terms, " AND "),
            Filter::Or(terms) => self.chain(terms, " OR "),
            Filter::Not(a) => {
                self.push("NOT (");
                self.filter(*a);
                self.push(")");
            }
            Filter::Cmp { operand, op, value } => self.compare(operand, op, value),
            Filter::In {
                operand,
                values,
                negated,
            } => {
                if let Operand::Attribute { name, ty } = &operand
                    && ty.is_multi_valued()
                {
                    self.push(if negated {
                        "NOT EXISTS (SELECT 1 "
                    } else {
                        "EXISTS (SELECT 1 "
                    })
                    .push(ATTRIBUTE_ROWS);
                    self.bind(Bound::Str(name.clone())).push(" AND a.sval IN ");
                    self.list(values);
                    self.push(")");
                } else {
                    self.scalar(&operand);
                    self.push(if negated { " NOT IN " } else { " IN " });
                    self.list(values);
                }
            }
            Filter::Between {
                operand,
                low,
                high,
                negated,
            } => {
                self.scalar(&operand);
                self.push(if negated {
                    " NOT BETWEEN "
                } else {
                    " BETWEEN "
                });
                self.bind(low).push(" AND ").bind(high);
            }
            Filter::StartsWith {
                operand,
                prefix,
                negated,
            } => {
                // substr compares exactly: no LIKE wildcards, no case folding.
                self.push(if negated { "NOT (substr(" } else { "(substr(" });
                self.scalar(&operand);
                // The length is computed by the database, in characters, so the parameter's
                // type is text on every backend.
                let length = self.dialect.char_length();
                self.push(", 1, ").push(length).push("(");
                self.bind(Bound::Str(prefix.clone())).push(")) = ");
                self.bind(Bound::Str(prefix)).push(")");
            }
            Filter::IsNull { operand, negated } => match &operand {
                Operand::Attribute { name, ty } if ty.is_multi_valued() => {
                    self.push(if negated {
                        "EXISTS (SELECT 1 "
                    } else {
                        "NOT EXISTS (SELECT 1 "
                    })
                    .push(ATTRIBUTE_ROWS);
                    self.bind(Bound::Str(name.clone())).push(")");
                }
                _ => {
                    self.scalar(&operand);
                    self.push(if negated { " IS NOT NULL" } else { " IS NULL" });
                }
            },
        }
    }

    /// SQLite nests `a AND b AND c` one level per term and refuses expressions deeper than
    /// 1000, so a chain is written as a balanced tree: log2(n) deep, in the SQL and in this
    /// recursion alike.
    fn chain(&mut self, mut terms: Vec<Filter>, op: &str) {
        if terms.len() <= 1 {
            terms.into_iter().for_each(|t| self.filter(t));
            return;
        }
        let right = terms.split_off(terms.len() / 2);
        self.push("(");
        self.chain(terms, op);
        self.push(op);
        self.chain(right, op);
        self.push(")");
    }

    fn compare(&mut self, operand: Operand, op: CmpOp, value: Bound) {
        if let Operand::Attribute { name, ty } = &operand
            && ty.is_multi_valued()
        {
            if op == CmpOp::Ne {
                self.push("NOT (");
                self.contains(name, value);
                self.push(")");
            } else {
                self.contains(name, value);
            }
            return;
        }
        self.scalar(&operand);
        self.push(match op {
            CmpOp::Eq => " = ",
            CmpOp::Ne => " <> ",
            CmpOp::Lt => " < ",
            CmpOp::Le => " <= ",
            CmpOp::Gt => " > ",
            CmpOp::Ge => " >= ",
        });
        self.bind(value);
    }

    /// `namespace AND (filter)`, the WHERE of every visibility query.
    pub fn where_clause(&mut self, namespace_id: &str, filter: Option<Filter>) {
        self.push(" WHERE v.namespace_id = ")
            .bind(Bound::Str(namespace_id.to_owned()));
        if let Some(filter) = filter {
            self.push(" AND (");
            self.filter(filter);
            self.push(")");
        }
    }
}

/// The sort keys of a list query; the run id always comes last, so keys are unique.
pub(crate) fn sort_keys(query: &Resolved) -> Vec<SortKey> {
    let mut keys = Vec::new();
    if query.order_by.is_empty() {
        // Temporal's default: open runs first, then the latest closed.
        keys.push(SortKey {
            source: KeySource::CloseTime,
            kind: KeyKind::Int,
            descending: true,
        });
        keys.push(SortKey {
            source: KeySource::StartTime,
            kind: KeyKind::Int,
            descending: true,
        });
    }
    for (operand, descending) in &query.order_by {
        let kind = key_kind(operand);
        keys.push(SortKey {
            source: KeySource::Operand(operand.clone()),
            kind,
            descending: *descending,
        });
    }
    keys.push(SortKey {
        source: KeySource::RunId,
        kind: KeyKind::Str,
        descending: false,
    });
    keys
}

impl Sql {
    pub fn sort_key(&mut self, key: &SortKey) {
        match &key.source {
            KeySource::CloseTime => self.push(&format!("COALESCE(v.close_time, {})", i64::MAX)),
            KeySource::StartTime => self.push("v.start_time"),
            KeySource::RunId => self.push("v.run_id"),
            KeySource::Operand(operand) => {
                // NULLs sort as the lowest value, so every key compares.
                self.push("COALESCE(");
                self.scalar(operand);
                self.push(match key.kind {
                    KeyKind::Int => ", -9223372036854775808)",
                    KeyKind::Double => ", -1e308)",
                    KeyKind::Str => ", '')",
                })
            }
        };
    }

    pub fn order_by(&mut self, keys: &[SortKey]) {
        self.push(" ORDER BY ");
        for (i, key) in keys.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.sort_key(key);
            self.push(if key.descending { " DESC" } else { " ASC" });
        }
    }

    /// Rows strictly after `last` in the order of `keys`: (k1 after) OR (k1 = AND k2 after) …
    pub fn after(&mut self, keys: &[SortKey], last: &[Bound]) {
        self.push(" AND (");
        for i in 0..keys.len() {
            if i > 0 {
                self.push(" OR ");
            }
            self.push("(");
            for (key, value) in keys[..i].iter().zip(last) {
                self.sort_key(key);
                self.push(" = ").bind(value.clone()).push(" AND ");
            }
            self.sort_key(&keys[i]);
            self.push(if keys[i].descending { " < " } else { " > " })
                .bind(last[i].clone());
            self.push(")");
        }
        self.push(")");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(i: i64) -> Filter {
        Filter::Cmp {
            operand: Operand::Column(Column::HistoryLength),
            op: CmpOp::Eq,
            value: Bound::Int(i),
        }
    }

    /// The deepest parenthesis nesting of SQL text.
    fn depth(text: &str) -> usize {
        let mut level: usize = 0;
        let mut deepest = 0;
        for c in text.chars() {
            match c {
                '(' => level += 1,
                ')' => level -= 1,
                _ => continue,
            }
            deepest = deepest.max(level);
        }
        deepest
    }

    #[test]
    fn chains_are_balanced_and_bind_every_term_in_order() {
        let mut sql = Sql::new(Dialect::Sqlite);
        sql.filter(Filter::Or((0..10_000).map(term).collect()));
        assert_eq!(depth(&sql.text), 14, "log2(10000) rounded up");
        assert_eq!(sql.text.matches(" OR ").count(), 9_999);
        let expected: Vec<Bound> = (0..10_000).map(Bound::Int).collect();
        assert_eq!(sql.params, expected);
        let mut one = Sql::new(Dialect::Sqlite);
        one.filter(Filter::And(vec![term(7)]));
        assert_eq!(one.text, "v.history_length = ?");
    }

    #[test]
    fn statements_past_a_backends_parameter_limit_are_invalid() {
        for (dialect, max) in [
            (Dialect::Sqlite, 32_766),
            (Dialect::Postgres, 65_535),
            (Dialect::MySql, 65_535),
        ] {
            let mut sql = Sql::new(dialect);
            sql.list(vec![Bound::Int(0); max]);
            assert!(sql.statement().is_ok(), "{dialect:?}");
            sql.bind(Bound::Int(0));
            let err = sql.statement().unwrap_err();
            assert!(
                matches!(&err, crate::PersistenceError::InvalidArgument(m) if m.contains(&max.to_string())),
                "{dialect:?}: {err}"
            );
        }
    }
}

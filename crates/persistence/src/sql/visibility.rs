//! Visibility queries: List (keyset pages) and Count (optionally grouped by status).

use super::Dialect;
use super::SqlStore;
use crate::visibility::{KeyKind, SortKey, Sql, sort_keys};
use crate::{PersistenceError, Result, VisibilityCount, VisibilityPage};
use chronicle_common::query::{Bound, Resolved};
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{Any, Row};

type Query<'q> = sqlx::query::Query<'q, Any, AnyArguments<'q>>;

fn bind_all<'q>(mut query: Query<'q>, params: &'q [Bound]) -> Query<'q> {
    for param in params {
        query = match param {
            Bound::Str(s) => query.bind(s.as_str()),
            Bound::Int(i) => query.bind(*i),
            Bound::Double(d) => query.bind(*d),
        };
    }
    query
}

/// The page token: the sort key values of the last row returned, as JSON.
fn decode_token(token: &[u8], kinds: &[KeyKind]) -> Result<Option<Vec<Bound>>> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || PersistenceError::InvalidArgument("invalid next page token".into());
    let values: Vec<serde_json::Value> = serde_json::from_slice(token).map_err(|_| invalid())?;
    if values.len() != kinds.len() {
        return Err(invalid());
    }
    let bound = values
        .iter()
        .zip(kinds)
        .map(|(v, kind)| match kind {
            KeyKind::Int => v.as_i64().map(Bound::Int),
            KeyKind::Double => v.as_f64().map(Bound::Double),
            KeyKind::Str => v.as_str().map(|s| Bound::Str(s.to_owned())),
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(invalid)?;
    Ok(Some(bound))
}

fn row_keys(row: &AnyRow, kinds: &[KeyKind]) -> Vec<serde_json::Value> {
    kinds
        .iter()
        .enumerate()
        .map(|(i, kind)| match kind {
            KeyKind::Int => row.get::<i64, _>(i + 1).into(),
            KeyKind::Double => row.get::<f64, _>(i + 1).into(),
            KeyKind::Str => row.get::<String, _>(i + 1).into(),
        })
        .collect()
}

/// The statement of one List page: `last` is the sort key of the previous page's last row.
fn list_sql(
    dialect: Dialect,
    namespace_id: &str,
    query: &Resolved,
    keys: &[SortKey],
    page_size: usize,
    last: Option<&[Bound]>,
) -> Sql {
    let mut sql = Sql::new(dialect);
    sql.push("SELECT v.data");
    for key in keys {
        sql.push(", ");
        sql.sort_key(key);
    }
    sql.push(" FROM executions_visibility v");
    sql.where_clause(namespace_id, query.filter.clone());
    if let Some(last) = last {
        sql.after(keys, last);
    }
    sql.order_by(keys);
    sql.push(" LIMIT ").bind(Bound::Int(page_size as i64 + 1));
    sql
}

fn count_sql(dialect: Dialect, namespace_id: &str, query: &Resolved) -> Sql {
    let mut sql = Sql::new(dialect);
    sql.push(if query.group_by_status {
        "SELECT v.status, COUNT(*) FROM executions_visibility v"
    } else {
        "SELECT COUNT(*) FROM executions_visibility v"
    });
    sql.where_clause(namespace_id, query.filter.clone());
    if query.group_by_status {
        sql.push(" GROUP BY v.status ORDER BY v.status");
    }
    sql
}

pub(super) async fn list(
    store: &SqlStore,
    namespace_id: &str,
    query: &Resolved,
    page_size: usize,
    token: &[u8],
) -> Result<VisibilityPage> {
    let keys = sort_keys(query);
    let kinds: Vec<KeyKind> = keys.iter().map(|k| k.kind).collect();
    let last = decode_token(token, &kinds)?;
    let sql = list_sql(
        store.dialect,
        namespace_id,
        query,
        &keys,
        page_size,
        last.as_deref(),
    );
    let mut rows = bind_all(sqlx::query(&sql.statement()?), &sql.params)
        .fetch_all(&store.reader)
        .await?;
    let more = rows.len() > page_size;
    rows.truncate(page_size);
    let next_page_token = match rows.last().filter(|_| more) {
        Some(row) => serde_json::to_vec(&row_keys(row, &kinds)).unwrap_or_default(),
        None => Vec::new(),
    };
    Ok(VisibilityPage {
        rows: rows.iter().map(|r| r.get("data")).collect(),
        next_page_token,
    })
}

pub(super) async fn count(
    store: &SqlStore,
    namespace_id: &str,
    query: &Resolved,
) -> Result<VisibilityCount> {
    let sql = count_sql(store.dialect, namespace_id, query);
    let rows = bind_all(sqlx::query(&sql.statement()?), &sql.params)
        .fetch_all(&store.reader)
        .await?;
    if !query.group_by_status {
        let count = rows.first().map_or(0, |r| r.get::<i64, _>(0));
        return Ok(VisibilityCount {
            count,
            by_status: Vec::new(),
        });
    }
    let by_status: Vec<(i32, i64)> = rows
        .iter()
        .map(|r| (r.get::<i32, _>(0), r.get::<i64, _>(1)))
        .collect();
    Ok(VisibilityCount {
        count: by_status.iter().map(|(_, c)| c).sum(),
        by_status,
    })
}

#[cfg(test)]
#[path = "visibility_fuzz.rs"]
mod fuzz;

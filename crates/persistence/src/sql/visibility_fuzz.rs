//! Property tests of the visibility query language, from text to SQL: random strings and
//! random well-formed queries (long chains, deep nesting, huge literals) go through parse,
//! resolve and the SQL builder of every dialect without a panic, and end either in a typed
//! error or in SQL that SQLite accepts and runs.
//!
//! A few dozen cases run by default, in seconds; for a long run:
//! `PROPTEST_CASES=100000 cargo nextest run -p chronicle-persistence fuzz`

use super::{Dialect, count_sql, list_sql};
use crate::sql::{Backend, Schema, SqlStore};
use crate::visibility::{max_parameters, sort_keys};
use crate::{PersistenceError, VisibilityStore};
use chronicle_common::config::Limits;
use chronicle_common::query::{self, Bound, Resolved};
use chronicle_common::search_attributes::ValueType;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

const DIALECTS: [Dialect; 3] = [Dialect::Sqlite, Dialect::Postgres, Dialect::MySql];

fn custom(name: &str) -> Option<ValueType> {
    Some(match name {
        "Color" => ValueType::Keyword,
        "Words" => ValueType::Text,
        "Tags" => ValueType::KeywordList,
        "Count" => ValueType::Int,
        "Ratio" => ValueType::Double,
        "Flag" => ValueType::Bool,
        "When" => ValueType::Datetime,
        _ => return None,
    })
}

/// The case count: small by default, `PROPTEST_CASES` for long runs.
fn runner(default_cases: u32) -> TestRunner {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

/// Parses and resolves within the default limits; a refusal is a typed error, never a panic.
fn resolved(text: &str) -> Option<Resolved> {
    query::check(text, &Limits::default()).ok()?;
    query::resolve(query::parse(text).ok()?, &custom).ok()
}

fn text() -> BoxedStrategy<String> {
    "[a-zA-Z0-9 '\"%_-]{0,12}"
        .prop_map(|s| format!("'{}'", s.replace('\'', "''")))
        .boxed()
}

fn number() -> BoxedStrategy<String> {
    prop_oneof![
        any::<i64>().prop_map(|i| i.to_string()),
        any::<f64>().prop_map(|f| f.to_string()),
        Just("99999999999999999999".to_owned()),
        Just("1e400".to_owned()),
    ]
    .boxed()
}

fn duration() -> BoxedStrategy<String> {
    "[0-9]{1,25}(ns|us|ms|s|m|h)"
        .prop_map(|d| format!("'{d}'"))
        .boxed()
}

fn datetime() -> BoxedStrategy<String> {
    (-2000i64..12000, 1u32..13)
        .prop_map(|(y, m)| format!("'{y:04}-{m:02}-01T00:00:00Z'"))
        .boxed()
}

fn words(choices: Vec<&'static str>) -> BoxedStrategy<String> {
    prop::sample::select(choices)
        .prop_map(str::to_owned)
        .boxed()
}

/// A literal of the attribute's type, mostly: one in ten is of any type.
fn literal_for(attribute: &str) -> BoxedStrategy<String> {
    let typed = match attribute {
        "StartTime" | "CloseTime" | "When" => datetime(),
        "ExecutionDuration" => prop_oneof![duration(), number()].boxed(),
        "HistoryLength" | "Count" | "Ratio" => number(),
        "Flag" => words(vec!["true", "false"]),
        "ExecutionStatus" => words(vec!["'Running'", "'Completed'", "'Nope'"]),
        _ => text(),
    };
    let any = prop_oneof![text(), number(), duration(), datetime()];
    prop_oneof![9 => typed, 1 => any].boxed()
}

fn attribute() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "WorkflowId",
        "ExecutionStatus",
        "StartTime",
        "CloseTime",
        "ExecutionDuration",
        "HistoryLength",
        "TemporalChangeVersion",
        "Color",
        "Words",
        "Tags",
        "Count",
        "Ratio",
        "Flag",
        "When",
        "NoSuch",
    ])
}

fn predicate() -> impl Strategy<Value = String> {
    let op = prop::sample::select(vec!["=", "!=", "<", "<=", ">", ">="]);
    attribute().prop_flat_map(move |a| {
        let lit = || literal_for(a);
        prop_oneof![
            4 => (op.clone(), lit()).prop_map(move |(o, l)| format!("{a} {o} {l}")),
            2 => prop::collection::vec(lit(), 1..40)
                .prop_map(move |ls| format!("{a} IN ({})", ls.join(", "))),
            1 => (lit(), lit()).prop_map(move |(l, h)| format!("{a} NOT BETWEEN {l} AND {h}")),
            1 => lit().prop_map(move |l| format!("{a} STARTS_WITH {l}")),
            1 => Just(format!("{a} IS NOT NULL")),
        ]
    })
}

/// Well-formed queries: predicates under AND / OR / NOT / parentheses, some wrapped in
/// deep nesting, some one predicate repeated into a long chain.
fn structured() -> impl Strategy<Value = String> {
    let tree = predicate().prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            (prop::collection::vec(inner.clone(), 2..8), any::<bool>()).prop_map(|(ts, and)| {
                format!("({})", ts.join(if and { " AND " } else { " OR " }))
            }),
            inner.prop_map(|t| format!("NOT {t}")),
        ]
    });
    let wrapper = prop::sample::select(vec!["(", "NOT ", "NOT ("]);
    let nested = (tree.clone(), wrapper, 1usize..70).prop_map(|(t, open, depth)| {
        let close = if open.ends_with('(') { ")" } else { "" };
        format!("{}{t}{}", open.repeat(depth), close.repeat(depth))
    });
    let separator = prop::sample::select(vec![" AND ", " OR "]);
    let long = (predicate(), separator, 50usize..1500)
        .prop_map(|(p, separator, n)| vec![p.as_str(); n].join(separator));
    prop_oneof![3 => tree, 2 => nested, 2 => long]
}

/// Queries of the language's words in any order: mostly malformed.
fn token_soup() -> impl Strategy<Value = String> {
    let token = prop::sample::select(vec![
        "(",
        ")",
        "NOT",
        "AND",
        "OR",
        "IN",
        "BETWEEN",
        "IS",
        "NULL",
        "STARTS_WITH",
        "ORDER BY",
        "GROUP BY",
        "DESC",
        ",",
        "=",
        "<",
        "'x'",
        "1",
        "-",
        "1e5",
        "WorkflowId",
        "Tags",
        "Words",
        "ExecutionStatus",
        "--",
        "/*",
        "*/",
        "\"",
        "'",
    ]);
    prop::collection::vec(token, 0..300).prop_map(|ts| ts.join(" "))
}

fn any_query() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), token_soup(), structured()]
}

/// The SQL of every dialect binds exactly its placeholders, and refuses only by count.
fn assert_sql_is_consistent(query: &Resolved) {
    for dialect in DIALECTS {
        let last: Vec<Bound> = vec![Bound::Int(0); sort_keys(query).len()];
        let keys = sort_keys(query);
        for sql in [
            list_sql(dialect, "ns", query, &keys, 10, Some(&last)),
            count_sql(dialect, "ns", query),
        ] {
            assert_eq!(sql.text.matches('?').count(), sql.params.len());
            match sql.statement() {
                Ok(_) => assert!(sql.params.len() <= max_parameters(dialect)),
                Err(PersistenceError::InvalidArgument(_)) => {}
                Err(e) => panic!("{e}"),
            }
        }
    }
}

#[test]
fn fuzz_any_text_parses_resolves_and_builds_sql_without_panicking() {
    runner(256)
        .run(&any_query(), |text| {
            if let Some(query) = resolved(&text) {
                assert_sql_is_consistent(&query);
            }
            Ok(())
        })
        .unwrap();
}

fn sqlite_store(rt: &tokio::runtime::Runtime) -> SqlStore {
    rt.block_on(SqlStore::open(&Backend::SqliteMemory, Schema::Migrate))
        .unwrap()
}

/// Runs on SQLite; only a query the language refuses or too many values may fail.
fn runs_on_sqlite(rt: &tokio::runtime::Runtime, store: &SqlStore, query: &Resolved) {
    let outcome = rt.block_on(async {
        if query.group_by_status || query.order_by.is_empty() {
            store.count_visibility("ns", query).await.map(drop)?;
        }
        store.list_visibility("ns", query, 10, &[]).await.map(drop)
    });
    match outcome {
        Ok(()) | Err(PersistenceError::InvalidArgument(_)) => {}
        Err(e) => panic!("SQLite refused the builder's SQL: {e}"),
    }
}

#[test]
fn fuzz_generated_sql_runs_on_sqlite() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = sqlite_store(&rt);
    runner(48)
        .run(&structured(), |text| {
            if let Some(query) = resolved(&text) {
                runs_on_sqlite(&rt, &store, &query);
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn ten_thousand_term_chains_run_on_sqlite() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = sqlite_store(&rt);
    for separator in [" AND ", " OR "] {
        let text = vec!["HistoryLength = 1"; 10_000].join(separator);
        let query = query::resolve(query::parse(&text).unwrap(), &custom).unwrap();
        let page = rt.block_on(store.list_visibility("ns", &query, 10, &[]));
        assert!(page.is_ok(), "{separator}: {page:?}");
    }
}

/// The bundled SQLite takes 32766 bound values and no more: the bound the builder keeps to.
#[test]
fn sqlite_takes_as_many_parameters_as_the_builder_allows() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = sqlite_store(&rt);
    let select = |n: usize| {
        let text = format!("SELECT 1 WHERE 1 IN ({})", vec!["?"; n].join(","));
        let mut q = sqlx::query(&text);
        for _ in 0..n {
            q = q.bind(1i64);
        }
        rt.block_on(q.fetch_all(&store.reader))
            .map(|rows| rows.len())
    };
    let max = max_parameters(Dialect::Sqlite);
    assert_eq!(select(max).unwrap(), 1);
    assert!(select(max + 1).is_err());
}

#[test]
fn a_query_binding_too_many_values_is_refused_as_invalid() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = sqlite_store(&rt);
    let text = format!("Count IN ({})", vec!["1"; 40_000].join(","));
    let query = query::resolve(query::parse(&text).unwrap(), &custom).unwrap();
    let err = rt
        .block_on(store.list_visibility("ns", &query, 10, &[]))
        .unwrap_err();
    assert!(
        matches!(&err, PersistenceError::InvalidArgument(m) if m.contains("more than the 32766")),
        "{err}"
    );
    let postgres = list_sql(
        Dialect::Postgres,
        "ns",
        &query,
        &sort_keys(&query),
        10,
        None,
    );
    assert!(postgres.statement().is_ok());
}

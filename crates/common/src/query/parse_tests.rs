//! Unit tests of the parser: the grammar, literals, and the bounds on length and nesting.

use super::*;

fn cmp(attr: &str, op: CmpOp, value: Literal) -> Expr {
    Expr::Cmp {
        attr: attr.into(),
        op,
        value,
    }
}

#[test]
fn precedence_and_parentheses() {
    let q = parse("A = 1 OR B = 2 AND NOT C = 'x'").unwrap();
    let expected = Expr::Or(vec![
        cmp("A", CmpOp::Eq, Literal::Int(1)),
        Expr::And(vec![
            cmp("B", CmpOp::Eq, Literal::Int(2)),
            Expr::Not(Box::new(cmp("C", CmpOp::Eq, Literal::Str("x".into())))),
        ]),
    ]);
    assert_eq!(q.filter, Some(expected));
    let grouped = parse("(A = 1 OR B = 2) AND C = true").unwrap();
    assert!(matches!(grouped.filter, Some(Expr::And(..))));
}

#[test]
fn every_predicate_form_parses() {
    for text in [
        "X IN ('a', 'b')",
        "X NOT IN (1, 2)",
        "X BETWEEN 1 AND 2",
        "X NOT BETWEEN 1.5 AND 2.5",
        "X STARTS_WITH 'ab'",
        "X NOT STARTS_WITH 'ab'",
        "X IS NULL",
        "X IS NOT NULL",
        "X <> 'y'",
        "X >= -3",
    ] {
        assert!(parse(text).is_ok(), "{text}");
    }
    let q = parse("X = 1 GROUP BY ExecutionStatus ORDER BY StartTime DESC, X").unwrap();
    assert_eq!(q.group_by, vec!["ExecutionStatus".to_owned()]);
    assert_eq!(
        q.order_by,
        vec![("StartTime".to_owned(), true), ("X".to_owned(), false)]
    );
}

#[test]
fn quotes_inside_literals_stay_literal() {
    let q = parse("WorkflowId = 'a'' OR 1=1 --'").unwrap();
    assert_eq!(
        q.filter,
        Some(cmp(
            "WorkflowId",
            CmpOp::Eq,
            Literal::Str("a' OR 1=1 --".into())
        ))
    );
    let q = parse("WorkflowId = \"x\" -- trailing comment").unwrap();
    assert_eq!(
        q.filter,
        Some(cmp("WorkflowId", CmpOp::Eq, Literal::Str("x".into())))
    );
}

#[test]
fn malformed_queries_are_rejected() {
    for text in [
        "WorkflowId = ",
        "WorkflowId = 'unterminated",
        "(WorkflowId = 'x'",
        "WorkflowId = 'x' AND",
        "WorkflowId == 'x'",
        "SELECT * FROM executions",
        "WorkflowId LIKE 'x%'",
        "WorkflowId = 'x' LIMIT 5",
        "WorkflowId = 'x' OR 1=1",
        "WorkflowId = 'x'; DROP TABLE t",
    ] {
        assert!(parse(text).is_err(), "{text}");
    }
}

fn repeated(term: &str, separator: &str, count: usize) -> String {
    vec![term; count].join(separator)
}

#[test]
fn long_chains_are_one_node() {
    let q = parse(&repeated("A = 1", " AND ", 10_000)).unwrap();
    assert!(matches!(q.filter, Some(Expr::And(terms)) if terms.len() == 10_000));
    let q = parse(&repeated("A = 1 AND B = 2", " OR ", 5_000)).unwrap();
    let Some(Expr::Or(terms)) = q.filter else {
        panic!("not an OR chain")
    };
    assert_eq!(terms.len(), 5_000);
    assert!(
        terms
            .iter()
            .all(|t| matches!(t, Expr::And(ts) if ts.len() == 2))
    );
}

fn nested(open: &str, close: &str, depth: usize) -> String {
    format!("{}A = 1{}", open.repeat(depth), close.repeat(depth))
}

#[test]
fn nesting_is_bounded_before_it_recurses() {
    let limits = Limits::default();
    for (open, close) in [("(", ")"), ("NOT ", ""), ("NOT (", ")")] {
        let within = if open.len() == 5 { 32 } else { 64 };
        assert!(
            check(&nested(open, close, within), &limits).is_ok(),
            "{open}"
        );
        let err = check(&nested(open, close, within + 1), &limits).unwrap_err();
        assert!(err.0.contains("nest deeper than the limit of 64"), "{err}");
        assert!(parse(&nested(open, close, DEPTH_CEILING / 2)).is_ok());
        assert!(parse(&nested(open, close, 100_000)).is_err());
    }
    let deep_inside_chain = format!("B = 2 AND {}", nested("(", ")", 65));
    assert!(check(&deep_inside_chain, &limits).is_err());
}

#[test]
fn length_is_bounded_in_bytes() {
    let limits = Limits {
        query_length: 20,
        ..Limits::default()
    };
    assert!(check("WorkflowId = 'abcde'", &limits).is_ok());
    let err = check("WorkflowId = 'abcdéf'", &limits).unwrap_err();
    assert!(
        err.0.contains("22 bytes long, longer than the limit of 20"),
        "{err}"
    );
}

#[test]
fn numbers_out_of_range_are_doubles_or_refused() {
    let q = parse("A = 99999999999999999999").unwrap();
    assert_eq!(q.filter, Some(cmp("A", CmpOp::Eq, Literal::Float(1e20))));
    let q = parse("A = -9223372036854775808").unwrap();
    assert_eq!(q.filter, Some(cmp("A", CmpOp::Eq, Literal::Int(i64::MIN))));
    for text in ["A = 1e400", "A = -1e400", "A = 1.5.5", "A = -", "A = ."] {
        assert!(parse(text).is_err(), "{text}");
    }
}

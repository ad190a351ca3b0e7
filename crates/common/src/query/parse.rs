//! Temporal's visibility query language, parsed into an AST. Literals never become SQL text:
//! the translation binds them as parameters, so a quote inside a literal is just a character.
//!
//! Chains of AND / OR become one n-ary node, so their length costs no native stack; the only
//! recursion left is nesting (parentheses and NOT), which is bounded before it recurses, so
//! the parser, the resolver, the SQL builder and the AST's drop all stay shallow.

use super::QueryError;
use crate::config::Limits;

/// Nesting no query may exceed, whatever a namespace configures: each level costs a few native
/// stack frames in the parser, the resolver and the SQL builder.
pub const DEPTH_CEILING: usize = 256;

/// A literal as written in the query.
#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A filter expression over attribute names (not yet resolved to types).
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// Two or more terms.
    And(Vec<Expr>),
    /// Two or more terms.
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Cmp {
        attr: String,
        op: CmpOp,
        value: Literal,
    },
    In {
        attr: String,
        values: Vec<Literal>,
        negated: bool,
    },
    Between {
        attr: String,
        low: Literal,
        high: Literal,
        negated: bool,
    },
    StartsWith {
        attr: String,
        prefix: String,
        negated: bool,
    },
    IsNull {
        attr: String,
        negated: bool,
    },
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Query {
    pub filter: Option<Expr>,
    pub group_by: Vec<String>,
    /// (attribute, descending)
    pub order_by: Vec<(String, bool)>,
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Number(String),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
}

fn err(position: usize, what: impl std::fmt::Display) -> QueryError {
    QueryError(format!(
        "malformed SQL query: {what} at position {}",
        position + 1
    ))
}

/// Splits the query into tokens with their byte positions; SQL comments are dropped.
fn tokenize(text: &str) -> Result<Vec<(usize, Token)>, QueryError> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = text[i..].find('\n').map_or(bytes.len(), |n| i + n)
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = text[i + 2..]
                    .find("*/")
                    .map(|n| i + 2 + n + 2)
                    .ok_or_else(|| err(start, "unterminated comment"))?
            }
            b'\'' | b'"' => {
                let (value, end) = string_literal(text, i)?;
                tokens.push((start, Token::Str(value)));
                i = end;
            }
            b'(' => (tokens.push((start, Token::LParen)), i += 1).1,
            b')' => (tokens.push((start, Token::RParen)), i += 1).1,
            b',' => (tokens.push((start, Token::Comma)), i += 1).1,
            b'=' | b'!' | b'<' | b'>' => {
                let two = text.get(i..i + 2).unwrap_or("");
                let (op, width) = match two {
                    "!=" | "<>" => ("!=", 2),
                    "<=" => ("<=", 2),
                    ">=" => (">=", 2),
                    "==" => return Err(err(start, "syntax error")),
                    _ if c == b'=' => ("=", 1),
                    _ if c == b'<' => ("<", 1),
                    _ if c == b'>' => (">", 1),
                    _ => return Err(err(start, "syntax error")),
                };
                i += width;
                tokens.push((start, Token::Op(op)));
            }
            b'0'..=b'9' | b'-' | b'.' => {
                i += 1;
                while i < bytes.len()
                    && (bytes[i].is_ascii_digit()
                        || bytes[i] == b'.'
                        || bytes[i] == b'e'
                        || bytes[i] == b'E')
                {
                    i += 1;
                }
                tokens.push((start, Token::Number(text[start..i].to_owned())));
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                tokens.push((start, Token::Ident(text[start..i].to_owned())));
            }
            _ => {
                return Err(err(
                    start,
                    format!(
                        "unexpected character {:?}",
                        text[i..].chars().next().unwrap_or(' ')
                    ),
                ));
            }
        }
    }
    Ok(tokens)
}

/// A quoted literal; the quote character doubled stands for itself.
fn string_literal(text: &str, start: usize) -> Result<(String, usize), QueryError> {
    let quote = text.as_bytes()[start] as char;
    let mut value = String::new();
    let mut chars = text[start + 1..].char_indices().peekable();
    while let Some((offset, c)) = chars.next() {
        if c == quote {
            if chars.peek().map(|(_, next)| *next) == Some(quote) {
                value.push(quote);
                chars.next();
                continue;
            }
            return Ok((value, start + 1 + offset + 1));
        }
        value.push(c);
    }
    Err(err(start, "unterminated string literal"))
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    at: usize,
    end: usize,
    max_depth: usize,
}

/// One term, or the n-ary node of several.
fn chain(terms: Vec<Expr>, node: fn(Vec<Expr>) -> Expr) -> Expr {
    match <[Expr; 1]>::try_from(terms) {
        Ok([term]) => term,
        Err(terms) => node(terms),
    }
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|(_, t)| t)
    }

    fn position(&self) -> usize {
        self.tokens.get(self.at).map_or(self.end, |(p, _)| *p)
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Ident(w)) if w.eq_ignore_ascii_case(word))
    }

    fn eat_keyword(&mut self, word: &str) -> bool {
        let found = self.keyword(word);
        if found {
            self.at += 1;
        }
        found
    }

    fn expect_keyword(&mut self, word: &str) -> Result<(), QueryError> {
        if self.eat_keyword(word) {
            Ok(())
        } else {
            Err(err(self.position(), format!("expected {word}")))
        }
    }

    fn expect(&mut self, token: Token) -> Result<(), QueryError> {
        if self.peek() == Some(&token) {
            self.at += 1;
            Ok(())
        } else {
            Err(err(self.position(), "syntax error"))
        }
    }

    /// `depth` is the nesting of parentheses and NOT around this expression.
    fn or(&mut self, depth: usize) -> Result<Expr, QueryError> {
        let mut terms = vec![self.and(depth)?];
        while self.eat_keyword("OR") {
            terms.push(self.and(depth)?);
        }
        Ok(chain(terms, Expr::Or))
    }

    fn and(&mut self, depth: usize) -> Result<Expr, QueryError> {
        let mut terms = vec![self.not(depth)?];
        while self.eat_keyword("AND") {
            terms.push(self.not(depth)?);
        }
        Ok(chain(terms, Expr::And))
    }

    fn not(&mut self, depth: usize) -> Result<Expr, QueryError> {
        let nests = self.keyword("NOT") || self.peek() == Some(&Token::LParen);
        if nests && depth >= self.max_depth {
            return Err(err(
                self.position(),
                format!(
                    "parentheses and NOT nest deeper than the limit of {}",
                    self.max_depth
                ),
            ));
        }
        if self.eat_keyword("NOT") {
            return Ok(Expr::Not(Box::new(self.not(depth + 1)?)));
        }
        if self.peek() == Some(&Token::LParen) {
            self.at += 1;
            let inner = self.or(depth + 1)?;
            self.expect(Token::RParen)?;
            return Ok(inner);
        }
        self.predicate()
    }

    fn attribute(&mut self) -> Result<String, QueryError> {
        match self.peek().cloned() {
            Some(Token::Ident(name)) if !is_reserved(&name) => {
                self.at += 1;
                Ok(name)
            }
            _ => Err(err(self.position(), "expected a search attribute name")),
        }
    }

    fn literal(&mut self) -> Result<Literal, QueryError> {
        let position = self.position();
        let literal = match self.peek().cloned() {
            Some(Token::Str(s)) => Literal::Str(s),
            Some(Token::Number(n)) => {
                number(&n).ok_or_else(|| err(position, format!("invalid number {n}")))?
            }
            Some(Token::Ident(w)) if w.eq_ignore_ascii_case("true") => Literal::Bool(true),
            Some(Token::Ident(w)) if w.eq_ignore_ascii_case("false") => Literal::Bool(false),
            _ => return Err(err(position, "expected a value")),
        };
        self.at += 1;
        Ok(literal)
    }

    fn predicate(&mut self) -> Result<Expr, QueryError> {
        let attr = self.attribute()?;
        if let Some(Token::Op(op)) = self.peek().cloned() {
            self.at += 1;
            let op = match op {
                "=" => CmpOp::Eq,
                "!=" => CmpOp::Ne,
                "<" => CmpOp::Lt,
                "<=" => CmpOp::Le,
                ">" => CmpOp::Gt,
                _ => CmpOp::Ge,
            };
            return Ok(Expr::Cmp {
                attr,
                op,
                value: self.literal()?,
            });
        }
        if self.eat_keyword("IS") {
            let negated = self.eat_keyword("NOT");
            self.expect_keyword("NULL")?;
            return Ok(Expr::IsNull { attr, negated });
        }
        let negated = self.eat_keyword("NOT");
        if self.eat_keyword("IN") {
            self.expect(Token::LParen)?;
            let mut values = vec![self.literal()?];
            while self.peek() == Some(&Token::Comma) {
                self.at += 1;
                values.push(self.literal()?);
            }
            self.expect(Token::RParen)?;
            return Ok(Expr::In {
                attr,
                values,
                negated,
            });
        }
        if self.eat_keyword("BETWEEN") {
            let low = self.literal()?;
            self.expect_keyword("AND")?;
            let high = self.literal()?;
            return Ok(Expr::Between {
                attr,
                low,
                high,
                negated,
            });
        }
        if self.eat_keyword("STARTS_WITH") {
            let position = self.position();
            return match self.literal()? {
                Literal::Str(prefix) => Ok(Expr::StartsWith {
                    attr,
                    prefix,
                    negated,
                }),
                _ => Err(err(position, "STARTS_WITH needs a string")),
            };
        }
        Err(err(self.position(), "syntax error"))
    }

    /// `GROUP BY a, b` or `ORDER BY a [ASC|DESC], ...`
    fn clauses(&mut self, query: &mut Query) -> Result<(), QueryError> {
        while self.at < self.tokens.len() {
            if self.eat_keyword("GROUP") {
                self.expect_keyword("BY")?;
                query.group_by.push(self.attribute()?);
                while self.peek() == Some(&Token::Comma) {
                    self.at += 1;
                    query.group_by.push(self.attribute()?);
                }
            } else if self.eat_keyword("ORDER") {
                self.expect_keyword("BY")?;
                loop {
                    let attr = self.attribute()?;
                    let descending = self.eat_keyword("DESC");
                    if !descending {
                        self.eat_keyword("ASC");
                    }
                    query.order_by.push((attr, descending));
                    if self.peek() != Some(&Token::Comma) {
                        break;
                    }
                    self.at += 1;
                }
            } else {
                return Err(err(self.position(), "syntax error"));
            }
        }
        Ok(())
    }
}

/// An integer when it fits in i64, else a finite double; `1e400` is no number.
fn number(text: &str) -> Option<Literal> {
    if let Ok(i) = text.parse::<i64>() {
        return Some(Literal::Int(i));
    }
    text.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .map(Literal::Float)
}

fn is_reserved(word: &str) -> bool {
    [
        "AND",
        "OR",
        "NOT",
        "IN",
        "BETWEEN",
        "IS",
        "NULL",
        "STARTS_WITH",
        "ORDER",
        "GROUP",
        "BY",
        "TRUE",
        "FALSE",
        "LIMIT",
        "SELECT",
        "LIKE",
    ]
    .iter()
    .any(|k| k.eq_ignore_ascii_case(word))
}

/// Parses a visibility query, nested at most [`DEPTH_CEILING`] deep. An empty query matches
/// everything.
pub fn parse(text: &str) -> Result<Query, QueryError> {
    parse_nested(text, DEPTH_CEILING)
}

/// Whether a query keeps within a namespace's limits on its length and nesting (and parses).
pub fn check(text: &str, limits: &Limits) -> Result<(), QueryError> {
    if text.len() > limits.query_length {
        return Err(QueryError(format!(
            "query is {} bytes long, longer than the limit of {} bytes",
            text.len(),
            limits.query_length
        )));
    }
    parse_nested(text, limits.query_depth.min(DEPTH_CEILING)).map(drop)
}

fn parse_nested(text: &str, max_depth: usize) -> Result<Query, QueryError> {
    let tokens = tokenize(text)?;
    let mut parser = Parser {
        tokens,
        at: 0,
        end: text.len(),
        max_depth,
    };
    let mut query = Query::default();
    let starts_clause = parser.keyword("GROUP") || parser.keyword("ORDER");
    if parser.at < parser.tokens.len() && !starts_clause {
        query.filter = Some(parser.or(0)?);
    }
    parser.clauses(&mut query)?;
    Ok(query)
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;

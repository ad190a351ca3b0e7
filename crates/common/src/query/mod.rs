//! Temporal's visibility query language: parsing, then resolution against the search
//! attributes a namespace has. Persistence translates the result into parameterized SQL.

mod parse;
mod resolve;

pub use parse::{CmpOp, DEPTH_CEILING, Expr, Literal, Query, check, parse};
pub use resolve::{Bound, Column, Filter, Operand, Resolved, resolve, status_name};

/// Why a query was refused; shown to the client after "invalid query: ".
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid query: {0}")]
pub struct QueryError(pub String);

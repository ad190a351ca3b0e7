//! What differs between the SQL backends, in one place: placeholders, upserts, row locks.
//! Every statement is written once with `?` placeholders and adapted here.

use std::borrow::Cow;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
    MySql,
}

impl Dialect {
    /// The statement with this backend's placeholders: PostgreSQL numbers them. Statements
    /// never contain `?` inside a literal (values are always bound), so every `?` is one.
    pub fn sql(self, text: &str) -> Cow<'_, str> {
        if self != Self::Postgres {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len() + 16);
        let mut n = 0;
        for c in text.chars() {
            if c == '?' {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            } else {
                out.push(c);
            }
        }
        Cow::Owned(out)
    }

    /// The clause after an INSERT that overwrites `columns` when the row with `key` exists.
    pub fn upsert(self, key: &str, columns: &[&str]) -> String {
        match self {
            Self::MySql => {
                let sets: Vec<String> = columns
                    .iter()
                    .map(|c| format!("{c} = VALUES({c})"))
                    .collect();
                format!(" ON DUPLICATE KEY UPDATE {}", sets.join(", "))
            }
            _ => {
                let sets: Vec<String> = columns
                    .iter()
                    .map(|c| format!("{c} = excluded.{c}"))
                    .collect();
                format!(" ON CONFLICT ({key}) DO UPDATE SET {}", sets.join(", "))
            }
        }
    }

    /// An INSERT that leaves an existing row alone: (verb, trailing clause).
    pub fn insert_or_ignore(self) -> (&'static str, &'static str) {
        match self {
            Self::MySql => ("INSERT IGNORE INTO", ""),
            _ => ("INSERT INTO", " ON CONFLICT DO NOTHING"),
        }
    }

    /// Locks a row read in a transaction until it commits. SQLite needs none: it has one
    /// writer at a time.
    pub fn for_update(self) -> &'static str {
        match self {
            Self::Sqlite => "",
            _ => " FOR UPDATE",
        }
    }

    /// How many values one statement may bind: SQLite's SQLITE_MAX_VARIABLE_NUMBER as
    /// bundled (32766 since 3.32), the 16-bit parameter count of PostgreSQL's and MySQL's
    /// protocols.
    pub fn max_bind_params(self) -> usize {
        match self {
            Self::Sqlite => 32_766,
            Self::Postgres | Self::MySql => 65_535,
        }
    }

    /// The function counting characters (not bytes) of a string.
    pub fn char_length(self) -> &'static str {
        match self {
            Self::Sqlite => "length",
            _ => "char_length",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_and_upserts_follow_the_backend() {
        assert_eq!(
            Dialect::Postgres.sql("a = ? AND b IN (?, ?)"),
            "a = $1 AND b IN ($2, $3)"
        );
        assert_eq!(Dialect::MySql.sql("a = ?"), "a = ?");
        assert_eq!(
            Dialect::Sqlite.upsert("k", &["a"]),
            " ON CONFLICT (k) DO UPDATE SET a = excluded.a"
        );
        assert_eq!(
            Dialect::MySql.upsert("k", &["a", "b"]),
            " ON DUPLICATE KEY UPDATE a = VALUES(a), b = VALUES(b)"
        );
    }
}

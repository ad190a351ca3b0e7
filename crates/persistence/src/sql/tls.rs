//! TLS to PostgreSQL and MySQL: `persistence.tls_*` written into the connection URL, since
//! sqlx's `Any` driver builds each backend's options from the URL alone.

use super::Dialect;
use crate::{PersistenceError, Result};
use chronicle_common::config::{DatabaseTls, DatabaseTlsMode};
use std::path::Path;

/// The URL parameters each backend reads (sqlx's names; its `PgSslMode` and `MySqlSslMode`
/// parse these values).
struct Names {
    mode: &'static str,
    ca: &'static str,
    cert: &'static str,
    key: &'static str,
    /// Other spellings sqlx accepts for the same settings, dropped from the DSN so the one
    /// written here is the one in force.
    aliases: &'static [&'static str],
}

const POSTGRES: Names = Names {
    mode: "sslmode",
    ca: "sslrootcert",
    cert: "sslcert",
    key: "sslkey",
    aliases: &["ssl-mode", "ssl-root-cert", "ssl-ca", "ssl-cert", "ssl-key"],
};

const MYSQL: Names = Names {
    mode: "ssl-mode",
    ca: "ssl-ca",
    cert: "ssl-cert",
    key: "ssl-key",
    aliases: &["sslmode", "sslca"],
};

fn mode_value(dialect: Dialect, mode: DatabaseTlsMode) -> &'static str {
    match (dialect, mode) {
        (Dialect::MySql, DatabaseTlsMode::Disable) => "DISABLED",
        (Dialect::MySql, DatabaseTlsMode::Require) => "REQUIRED",
        (Dialect::MySql, DatabaseTlsMode::VerifyCa) => "VERIFY_CA",
        (Dialect::MySql, DatabaseTlsMode::VerifyFull) => "VERIFY_IDENTITY",
        (_, DatabaseTlsMode::Disable) => "disable",
        (_, DatabaseTlsMode::Require) => "require",
        (_, DatabaseTlsMode::VerifyCa) => "verify-ca",
        (_, DatabaseTlsMode::VerifyFull) => "verify-full",
    }
}

fn path_value(path: &Path) -> Result<&str> {
    path.to_str().ok_or_else(|| {
        PersistenceError::Unavailable(format!("TLS file path {path:?} is not UTF-8"))
    })
}

/// `dsn` with the TLS settings of `tls` in place of any it had; unchanged when `tls` sets
/// nothing (the DSN's own parameters then decide, as before).
pub fn with_tls(dsn: &str, dialect: Dialect, tls: &DatabaseTls) -> Result<String> {
    if !tls.is_set() {
        return Ok(dsn.to_owned());
    }
    let names = match dialect {
        Dialect::Postgres => &POSTGRES,
        Dialect::MySql => &MYSQL,
        Dialect::Sqlite => {
            return Err(PersistenceError::Unavailable(
                "SQLite takes no TLS settings".into(),
            ));
        }
    };
    let mut url = url::Url::parse(dsn)
        .map_err(|e| PersistenceError::Unavailable(format!("persistence.dsn is not a URL: {e}")))?;
    let mut settings: Vec<(&str, &str)> = Vec::new();
    if let Some(mode) = tls.effective_mode() {
        settings.push((names.mode, mode_value(dialect, mode)));
    }
    for (name, path) in [
        (names.ca, &tls.ca_file),
        (names.cert, &tls.cert_file),
        (names.key, &tls.key_file),
    ] {
        if let Some(path) = path {
            settings.push((name, path_value(path)?));
        }
    }
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(name, _)| {
            !settings.iter().any(|(set, _)| set == name) && !names.aliases.contains(&&**name)
        })
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    url.query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .extend_pairs(settings);
    Ok(url.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::mysql::{MySqlConnectOptions, MySqlSslMode};
    use sqlx::postgres::{PgConnectOptions, PgSslMode};
    use std::str::FromStr;

    // The sqlx modes have no PartialEq.
    fn pg_mode(url: &str) -> String {
        format!(
            "{:?}",
            PgConnectOptions::from_str(url).unwrap().get_ssl_mode()
        )
    }

    fn mysql_mode(url: &str) -> String {
        format!(
            "{:?}",
            MySqlConnectOptions::from_str(url).unwrap().get_ssl_mode()
        )
    }

    fn tls(mode: Option<DatabaseTlsMode>, ca: Option<&str>) -> DatabaseTls {
        DatabaseTls {
            mode,
            ca_file: ca.map(Into::into),
            ..Default::default()
        }
    }

    #[test]
    fn modes_reach_sqlx_as_its_own() {
        let cases = [
            (
                DatabaseTlsMode::Disable,
                PgSslMode::Disable,
                MySqlSslMode::Disabled,
            ),
            (
                DatabaseTlsMode::Require,
                PgSslMode::Require,
                MySqlSslMode::Required,
            ),
            (
                DatabaseTlsMode::VerifyCa,
                PgSslMode::VerifyCa,
                MySqlSslMode::VerifyCa,
            ),
            (
                DatabaseTlsMode::VerifyFull,
                PgSslMode::VerifyFull,
                MySqlSslMode::VerifyIdentity,
            ),
        ];
        for (mode, pg, mysql) in cases {
            let url = with_tls(
                "postgres://u@db/chronicle",
                Dialect::Postgres,
                &tls(Some(mode), None),
            )
            .unwrap();
            assert_eq!(pg_mode(&url), format!("{pg:?}"));
            let url = with_tls(
                "mysql://u@db/chronicle",
                Dialect::MySql,
                &tls(Some(mode), None),
            )
            .unwrap();
            assert_eq!(mysql_mode(&url), format!("{mysql:?}"));
        }
    }

    #[test]
    fn settings_replace_the_dsns_own_and_keep_the_rest() {
        let dsn = "postgres://u:p%40ss@db:5433/chronicle?sslmode=disable&ssl-root-cert=/old.pem&application_name=node-1";
        let url = with_tls(
            dsn,
            Dialect::Postgres,
            &tls(None, Some("/etc/ca dir/ca.pem")),
        )
        .unwrap();
        assert_eq!(
            url,
            "postgres://u:p%40ss@db:5433/chronicle?application_name=node-1&sslmode=verify-full&sslrootcert=%2Fetc%2Fca+dir%2Fca.pem"
        );
        assert_eq!(pg_mode(&url), "VerifyFull");
        let options = PgConnectOptions::from_str(&url).unwrap();
        assert_eq!(options.get_application_name(), Some("node-1"));
        let client = DatabaseTls {
            mode: Some(DatabaseTlsMode::VerifyCa),
            ca_file: Some("/ca.pem".into()),
            cert_file: Some("/c.pem".into()),
            key_file: Some("/k.pem".into()),
        };
        let url = with_tls(
            "mysql://root@db/chronicle?sslmode=DISABLED",
            Dialect::MySql,
            &client,
        )
        .unwrap();
        assert_eq!(
            url,
            "mysql://root@db/chronicle?ssl-mode=VERIFY_CA&ssl-ca=%2Fca.pem&ssl-cert=%2Fc.pem&ssl-key=%2Fk.pem"
        );
        assert_eq!(mysql_mode(&url), "VerifyCa");
        let untouched = "postgres://db/chronicle?sslmode=require";
        assert_eq!(
            with_tls(untouched, Dialect::Postgres, &DatabaseTls::default()).unwrap(),
            untouched
        );
        assert!(
            with_tls(
                "not a url",
                Dialect::Postgres,
                &tls(Some(DatabaseTlsMode::Require), None)
            )
            .is_err()
        );
    }

    /// Connects to `url` and asks the server whether the connection is TLS.
    async fn uses_tls(url: &str, question: &str) -> std::result::Result<bool, sqlx::Error> {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(url).await?;
        let answer: String = sqlx::query_scalar(question).fetch_one(&mut conn).await?;
        Ok(!answer.is_empty() && answer != "false")
    }

    fn server(env: &str, default: &str) -> String {
        std::env::var(env).unwrap_or_else(|_| default.to_owned())
    }

    const PG_TLS: &str = "SELECT CAST(ssl AS TEXT) FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
    /// Debian's PostgreSQL serves this self-signed certificate for `localhost` by default.
    const SNAKEOIL: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";

    /// Against the PostgreSQL of CHRONICLE_TEST_POSTGRES (else the local one), as far as it
    /// offers TLS; skipped where it is unreachable.
    #[tokio::test]
    async fn postgres_connections_are_tls_as_asked() {
        use DatabaseTlsMode::*;
        let dsn = server(
            "CHRONICLE_TEST_POSTGRES",
            "postgres://postgres@127.0.0.1:5432/test",
        );
        let at =
            |dsn: &str, mode, ca| with_tls(dsn, Dialect::Postgres, &tls(Some(mode), ca)).unwrap();
        let plain = at(&dsn, Disable, None);
        let offered = match uses_tls(&plain, "SHOW ssl").await {
            Ok(offered) => offered,
            Err(e) => return eprintln!("skipped: {dsn} unreachable ({e})"),
        };
        assert!(!uses_tls(&plain, PG_TLS).await.unwrap());
        let required = uses_tls(&at(&dsn, Require, None), PG_TLS).await;
        if !offered {
            assert!(required.is_err(), "require on a server without TLS");
            return eprintln!("{dsn} offers no TLS: verification not tested");
        }
        assert!(required.unwrap());
        let cert: String = {
            use sqlx::Connection;
            let mut conn = sqlx::AnyConnection::connect(&plain).await.unwrap();
            sqlx::query_scalar("SHOW ssl_cert_file")
                .fetch_one(&mut conn)
                .await
                .unwrap()
        };
        if cert != SNAKEOIL || !Path::new(SNAKEOIL).exists() {
            return eprintln!("{dsn} serves {cert}, not {SNAKEOIL}: verification not tested");
        }
        let mut by_name = url::Url::parse(&dsn).unwrap();
        by_name.set_host(Some("localhost")).unwrap();
        let by_name = by_name.to_string();
        assert!(
            uses_tls(&at(&by_name, VerifyFull, Some(SNAKEOIL)), PG_TLS)
                .await
                .unwrap()
        );
        assert!(
            uses_tls(&at(&by_name, VerifyCa, Some(SNAKEOIL)), PG_TLS)
                .await
                .unwrap()
        );
        // An unknown CA cannot be shown here: Debian's /etc/ssl/certs, which the system's
        // roots are read from, holds the snake-oil certificate too.
        let mut by_ip = url::Url::parse(&dsn).unwrap();
        by_ip.set_host(Some("127.0.0.1")).unwrap();
        let by_ip = by_ip.to_string();
        let wrong_name = uses_tls(&at(&by_ip, VerifyFull, Some(SNAKEOIL)), PG_TLS).await;
        let wrong_name = wrong_name.unwrap_err().to_string();
        assert!(wrong_name.contains("not valid for name"), "{wrong_name}");
        // sqlx 0.8.6 does not know rustls's newer name-mismatch error, so its verify-ca
        // checks the host name too: stricter than asked, never looser. When this fails, sqlx
        // skips the name as libpq does: the README's note on verify-ca goes.
        let by_ip_ca = uses_tls(&at(&by_ip, VerifyCa, Some(SNAKEOIL)), PG_TLS).await;
        assert!(by_ip_ca.is_err(), "verify-ca skips the host name now");
    }

    /// Against the MySQL/MariaDB of CHRONICLE_TEST_MYSQL (else the local one): TLS where it
    /// is offered, and `require` refused where it is not.
    #[tokio::test]
    async fn mysql_connections_are_tls_as_asked() {
        let dsn = server("CHRONICLE_TEST_MYSQL", "mysql://root@127.0.0.1:3306/test");
        let at = |mode| with_tls(&dsn, Dialect::MySql, &tls(Some(mode), None)).unwrap();
        let cipher = "SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'SSL_CIPHER'";
        let offered = "SELECT CASE WHEN @@have_ssl = 'YES' THEN 'true' ELSE '' END";
        let offered = match uses_tls(&at(DatabaseTlsMode::Disable), offered).await {
            Ok(offered) => offered,
            Err(e) => return eprintln!("skipped: {dsn} unreachable ({e})"),
        };
        assert!(
            !uses_tls(&at(DatabaseTlsMode::Disable), cipher)
                .await
                .unwrap()
        );
        let required = uses_tls(&at(DatabaseTlsMode::Require), cipher).await;
        if offered {
            assert!(required.unwrap());
        } else {
            assert!(required.is_err(), "require on a server without TLS");
        }
    }
}

//! The server's configuration: one typed struct, read from a TOML file, every key overridable
//! by an environment variable `CHRONICLE_<SECTION>_<KEY>` (e.g. CHRONICLE_PERSISTENCE_DSN,
//! CHRONICLE_SERVER_PORT). Unknown keys, in the file or the environment, are refused by name.

mod cluster;
mod limits;
mod tls;

pub use cluster::{ClusterConfig, ClusterTlsConfig};
pub mod dynamic;
pub use limits::{Limits, LimitsTable, MemoryConfig};
pub use tls::{DatabaseTls, DatabaseTlsMode, TlsConfig};

use serde::Deserialize;
use std::net::IpAddr;
use std::path::Path;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    pub persistence: PersistenceConfig,
    #[serde(default)]
    pub history: HistoryConfig,
    #[serde(default)]
    pub memory: MemoryConfig,
    #[serde(default)]
    pub cluster: ClusterConfig,
    /// `[auth]`: who may call what; off unless `enabled`.
    #[serde(default)]
    pub auth: chronicle_auth::AuthConfig,
    /// `[limits]` and its per-namespace tables, resolved by `LimitsTable::from_toml`.
    #[serde(skip)]
    pub limits: LimitsTable,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address the frontend listens on.
    pub ip: IpAddr,
    /// Frontend gRPC port.
    pub port: u16,
    /// debug, info, warn, error or never.
    pub log_level: String,
    /// Namespaces created at start if missing; `default` always exists.
    pub namespaces: Vec<String>,
    /// Retention of the namespaces created at start, in hours.
    pub namespace_retention_hours: u64,
    /// Port of the Prometheus endpoint (`/metrics`, on `ip`); none: no metrics are served.
    pub metrics_port: Option<u16>,
    /// `[server.tls]`: set, the frontend port speaks TLS only.
    pub tls: Option<TlsConfig>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            ip: IpAddr::from([127, 0, 0, 1]),
            port: 7233,
            log_level: "info".into(),
            namespaces: vec!["default".into()],
            namespace_retention_hours: 72,
            metrics_port: None,
            tls: None,
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Sqlite,
    Postgres,
    Mysql,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PersistenceConfig {
    pub backend: BackendKind,
    /// SQLite: a file path (`:memory:` keeps nothing). PostgreSQL/MySQL: a connection URL.
    pub dsn: String,
    /// Connections in the pool (PostgreSQL/MySQL).
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// disable, require, verify-ca or verify-full (PostgreSQL/MySQL); see `DatabaseTls`.
    #[serde(default)]
    pub tls_mode: Option<DatabaseTlsMode>,
    /// PEM: CAs the database's certificate must chain to (besides the system's).
    #[serde(default)]
    pub tls_ca_file: Option<std::path::PathBuf>,
    /// PEM: a client certificate and its key, for a database that asks for one.
    #[serde(default)]
    pub tls_cert_file: Option<std::path::PathBuf>,
    #[serde(default)]
    pub tls_key_file: Option<std::path::PathBuf>,
}

impl PersistenceConfig {
    /// A database of `backend` at `dsn`, the other keys at their defaults.
    pub fn new(backend: BackendKind, dsn: String, max_connections: u32) -> Self {
        Self {
            backend,
            dsn,
            max_connections,
            tls_mode: None,
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
        }
    }

    pub fn tls(&self) -> DatabaseTls {
        DatabaseTls {
            mode: self.tls_mode,
            ca_file: self.tls_ca_file.clone(),
            cert_file: self.tls_cert_file.clone(),
            key_file: self.tls_key_file.clone(),
        }
    }

    fn check(&self) -> Result<(), String> {
        let tls = self.tls();
        if self.backend == BackendKind::Sqlite && tls.is_set() {
            return Err("persistence.tls_* apply to PostgreSQL and MySQL, not SQLite".into());
        }
        tls.check()
    }
}

fn default_max_connections() -> u32 {
    16
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HistoryConfig {
    /// Fixed for the life of a database: workflows are placed by it.
    pub shard_count: u32,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self { shard_count: 4 }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

const SECTIONS: &[&str] = &[
    "server",
    "persistence",
    "history",
    "memory",
    "cluster",
    "limits",
    "auth",
];
const PREFIX: &str = "CHRONICLE_";
/// Tables inside a section that environment variables reach too: CHRONICLE_SERVER_TLS_CERT_FILE
/// is `cert_file` of `[server.tls]`.
const SUBTABLES: &[(&str, &str)] = &[("server", "tls")];

/// A TOML value written in an environment variable: a TOML literal, else a plain string.
fn env_value(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

impl Config {
    /// Parses `text`, then applies the overrides in `env` (name, value).
    pub fn parse(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| ConfigError(e.message().to_owned()))?;
        for (name, value) in env {
            let Some(rest) = name.strip_prefix(PREFIX) else {
                continue;
            };
            let rest = rest.to_ascii_lowercase();
            let Some((section, key)) = rest.split_once('_') else {
                continue;
            };
            if !SECTIONS.contains(&section) {
                continue;
            }
            let entry = table
                .entry(section.to_owned())
                .or_insert_with(|| toml::Value::Table(Default::default()));
            let toml::Value::Table(section_table) = entry else {
                return Err(ConfigError(format!("[{section}] must be a table")));
            };
            let subtable = SUBTABLES.iter().find_map(|&(s, sub)| {
                let rest = key.strip_prefix(sub)?.strip_prefix('_')?;
                (s == section).then_some((sub, rest))
            });
            let (target, key) = match subtable {
                None => (section_table, key),
                Some((sub, rest)) => {
                    let entry = section_table
                        .entry(sub.to_owned())
                        .or_insert_with(|| toml::Value::Table(Default::default()));
                    let toml::Value::Table(sub_table) = entry else {
                        return Err(ConfigError(format!("[{section}.{sub}] must be a table")));
                    };
                    (sub_table, rest)
                }
            };
            target.insert(key.to_owned(), env_value(&value));
        }
        let limits = match table.remove("limits") {
            None => LimitsTable::default(),
            Some(toml::Value::Table(limits)) => {
                LimitsTable::from_toml(limits).map_err(ConfigError)?
            }
            Some(_) => return Err(ConfigError("[limits] must be a table".into())),
        };
        let mut config = table
            .try_into::<Config>()
            .map_err(|e| ConfigError(e.message().to_owned()))?;
        config.limits = limits;
        config.cluster.check().map_err(ConfigError)?;
        config.persistence.check().map_err(ConfigError)?;
        Ok(config)
    }

    /// A configuration whose `[limits]`, `[memory]` and `[auth]` sections come from the
    /// environment alone, the rest defaults, for nodes whose other settings come from flags
    /// (`start-dev`).
    pub fn sections_from_env(
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        const FROM_ENV: [&str; 3] = ["CHRONICLE_LIMITS_", "CHRONICLE_MEMORY_", "CHRONICLE_AUTH_"];
        let sections = env
            .into_iter()
            .filter(|(name, _)| FROM_ENV.iter().any(|prefix| name.starts_with(prefix)));
        Self::parse(
            "[persistence]\nbackend = \"sqlite\"\ndsn = \":memory:\"",
            sections,
        )
    }

    /// Reads the file and applies this process's environment.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
        Self::parse(&text, std::env::vars())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
        [server]
        port = 7300
        [persistence]
        backend = "postgres"
        dsn = "postgres://localhost/chronicle"
    "#;

    #[test]
    fn file_values_and_defaults() {
        let config = Config::parse(FILE, []).unwrap();
        assert_eq!(config.server.port, 7300);
        assert_eq!(config.server.namespaces, vec!["default".to_owned()]);
        assert_eq!(config.persistence.backend, BackendKind::Postgres);
        assert_eq!(config.persistence.max_connections, 16);
        assert_eq!(config.history.shard_count, 4);
        assert_eq!(config.limits, LimitsTable::default());
        assert_eq!(config.memory, MemoryConfig::default());
    }

    #[test]
    fn limits_come_from_the_file_and_the_environment() {
        let text = format!(
            "{FILE}\n[limits]\npending_activities = 5\n[limits.namespace.big]\nblob_size_error = 9\n"
        );
        let env = [(
            "CHRONICLE_LIMITS_SIGNALS_PER_EXECUTION".to_owned(),
            "3".to_owned(),
        )];
        let config = Config::parse(&text, env).unwrap();
        assert_eq!(config.limits.node.pending_activities, 5);
        assert_eq!(config.limits.node.signals_per_execution, 3);
        let big = config.limits.for_namespace("big");
        assert_eq!(
            (
                big.blob_size_error,
                big.pending_activities,
                big.signals_per_execution
            ),
            (9, 5, 3)
        );
        let config = Config::sections_from_env([
            (
                "CHRONICLE_LIMITS_PENDING_CHILDREN".to_owned(),
                "4".to_owned(),
            ),
            (
                "CHRONICLE_MEMORY_IDLE_QUEUE_SECS".to_owned(),
                "9".to_owned(),
            ),
            ("CHRONICLE_AUTH_ENABLED".to_owned(), "true".to_owned()),
            ("CHRONICLE_SERVER_PORT".to_owned(), "1".to_owned()),
        ])
        .unwrap();
        assert_eq!(
            (
                config.limits.node.pending_children,
                config.memory.idle_queue_secs
            ),
            (4, 9)
        );
        assert!(config.auth.enabled);
        assert_eq!(config.server.port, ServerConfig::default().port);
        let err = Config::parse(&format!("{FILE}\n[limits]\nblobs = 1\n"), []).unwrap_err();
        assert!(err.0.contains("blobs"), "{err}");
    }

    #[test]
    fn cluster_settings_are_read_and_checked() {
        let base = "[persistence]\nbackend = \"postgres\"\ndsn = \"postgres://db\"\n";
        let config = Config::parse(base, []).unwrap();
        assert_eq!(config.cluster, ClusterConfig::default());
        let text = format!(
            "{base}[cluster]\nmember_id = \"node-1\"\nservices = [\"frontend\"]\nlease_ms = 3000\n"
        );
        let config = Config::parse(&text, []).unwrap();
        assert_eq!(config.cluster.member_id, "node-1");
        assert_eq!(config.cluster.services, [crate::cluster::Role::Frontend]);
        let env = [("CHRONICLE_CLUSTER_LEASE_MS".to_owned(), "1500".to_owned())];
        let refused = Config::parse(base, env).unwrap_err();
        assert!(refused.0.contains("at least twice"), "{refused}");
        let unknown = format!("{base}[cluster]\nservices = [\"gateway\"]\n");
        assert!(Config::parse(&unknown, []).is_err());
    }

    #[test]
    fn environment_overrides_every_key() {
        let env = [
            ("CHRONICLE_SERVER_PORT", "7400"),
            ("CHRONICLE_PERSISTENCE_DSN", "postgres://other/db"),
            ("CHRONICLE_HISTORY_SHARD_COUNT", "8"),
            ("CHRONICLE_SERVER_NAMESPACES", r#"["a", "b"]"#),
            ("CHRONICLE_LOG_LEVEL", "ignored: not a section"),
            ("PATH", "/bin"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let config = Config::parse(FILE, env).unwrap();
        assert_eq!(config.server.port, 7400);
        assert_eq!(config.persistence.dsn, "postgres://other/db");
        assert_eq!(config.history.shard_count, 8);
        assert_eq!(
            config.server.namespaces,
            vec!["a".to_owned(), "b".to_owned()]
        );
    }

    #[test]
    fn tls_settings_come_from_the_file_and_the_environment() {
        let config = Config::parse(FILE, []).unwrap();
        assert_eq!(config.server.tls, None);
        assert!(!config.persistence.tls().is_set());
        let text = format!(
            "{FILE}tls_ca_file = \"/etc/db-ca.pem\"\n[server.tls]\ncert_file = \"s.pem\"\nkey_file = \"k.pem\"\n"
        );
        let env = [
            ("CHRONICLE_SERVER_TLS_CLIENT_CA_FILE", "/etc/ca.pem"),
            ("CHRONICLE_SERVER_TLS_RELOAD_SECS", "1"),
            ("CHRONICLE_PERSISTENCE_TLS_MODE", "verify-ca"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let config = Config::parse(&text, env).unwrap();
        let tls = config.server.tls.unwrap();
        assert_eq!(
            (tls.cert_file.to_str(), tls.key_file.to_str()),
            (Some("s.pem"), Some("k.pem"))
        );
        assert_eq!(tls.client_ca_file, Some("/etc/ca.pem".into()));
        assert_eq!(tls.reload_secs, 1);
        let db = config.persistence.tls();
        assert_eq!(db.mode, Some(DatabaseTlsMode::VerifyCa));
        assert_eq!(db.ca_file, Some("/etc/db-ca.pem".into()));
        let env = [("CHRONICLE_SERVER_TLS_CERT_FILE".to_owned(), "c".to_owned())];
        let err = Config::parse(FILE, env).unwrap_err();
        assert!(err.0.contains("key_file"), "{err}");
        let env = [("CHRONICLE_SERVER_TLS_CERTFILE".to_owned(), "c".to_owned())];
        assert!(
            Config::parse(&text, env)
                .unwrap_err()
                .0
                .contains("certfile")
        );
        let sqlite = "[persistence]\nbackend = \"sqlite\"\ndsn = \"x\"\ntls_mode = \"require\"\n";
        assert!(Config::parse(sqlite, []).unwrap_err().0.contains("SQLite"));
        let bad = format!("{FILE}tls_mode = \"verify\"\n");
        assert!(Config::parse(&bad, []).is_err());
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = Config::parse(&format!("{FILE}\n[history]\nshards = 3"), []).unwrap_err();
        assert!(err.0.contains("shards"), "{err}");
        let env = [("CHRONICLE_SERVER_PROT".to_owned(), "1".to_owned())];
        let err = Config::parse(FILE, env).unwrap_err();
        assert!(err.0.contains("prot"), "{err}");
        assert!(Config::parse("[persistence]\nbackend = \"oracle\"\ndsn = \"x\"", []).is_err());
    }
}

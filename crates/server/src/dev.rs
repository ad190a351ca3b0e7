//! `chronicle server start-dev`: the flags `temporal server start-dev` users know, one SQLite
//! file that survives restarts, every service in this process.

use crate::node::{self, Error, Extras};
use chronicle_common::config::{
    BackendKind, Config, HistoryConfig, LimitsTable, PersistenceConfig, ServerConfig, TlsConfig,
    dynamic,
};
use chronicle_common::search_attributes::ValueType;
use clap::Args;
use std::net::IpAddr;
use std::path::PathBuf;

/// Retention of the namespaces start-dev creates, as in Temporal's dev server.
const DEV_RETENTION_HOURS: u64 = 24;

#[derive(Args, Debug)]
pub struct DevArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1", env = "CHRONICLE_IP")]
    ip: IpAddr,
    /// gRPC port of the frontend.
    #[arg(long, short = 'p', default_value_t = 7233, env = "CHRONICLE_PORT")]
    port: u16,
    /// SQLite database file; `:memory:` keeps nothing. Default: chronicle/dev.db in the user's
    /// data directory, so workflows survive restarts.
    #[arg(long, short = 'f', env = "CHRONICLE_DB_FILENAME")]
    db_filename: Option<String>,
    /// Namespace to create at start (repeatable); `default` always exists.
    #[arg(long, short = 'n')]
    namespace: Vec<String>,
    /// Custom search attribute to register in every namespace, as NAME=TYPE (repeatable);
    /// TYPE is Keyword, Text, Int, Double, Bool, Datetime or KeywordList.
    #[arg(long = "search-attribute", value_parser = search_attribute)]
    search_attributes: Vec<(String, ValueType)>,
    /// Port of the Prometheus endpoint (`/metrics`); unset: no metrics are served.
    #[arg(long, env = "CHRONICLE_METRICS_PORT")]
    metrics_port: Option<u16>,
    #[command(flatten)]
    dynamic_config: DynamicConfigArgs,
    /// Log level: debug, info, warn, error or never.
    #[arg(long, default_value = "info", env = "CHRONICLE_LOG_LEVEL")]
    log_level: String,
    /// PEM certificate chain: the port then speaks TLS only (with --tls-key-file).
    #[arg(long, env = "CHRONICLE_TLS_CERT_FILE", requires = "tls_key_file")]
    tls_cert_file: Option<PathBuf>,
    /// PEM private key of --tls-cert-file.
    #[arg(long, env = "CHRONICLE_TLS_KEY_FILE", requires = "tls_cert_file")]
    tls_key_file: Option<PathBuf>,
    /// PEM CAs client certificates must chain to: every client must present one (mTLS).
    #[arg(long, env = "CHRONICLE_TLS_CLIENT_CA_FILE", requires = "tls_cert_file")]
    tls_client_ca_file: Option<PathBuf>,
}

/// `--dynamic-config-value`, as the `temporal` CLI takes it (both server commands).
#[derive(Args, Debug)]
pub struct DynamicConfigArgs {
    /// A Temporal dynamic config value, as KEY=VALUE (repeatable), e.g.
    /// `frontend.namespaceRPS=100`; unknown keys are refused with the list of known ones.
    #[arg(long = "dynamic-config-value", value_parser = dynamic::parse)]
    values: Vec<(String, String)>,
}

impl DynamicConfigArgs {
    /// Lays the values over the limits the configuration gave.
    pub fn apply(&self, limits: &mut LimitsTable) -> Result<(), String> {
        self.values
            .iter()
            .try_for_each(|(key, value)| dynamic::apply(limits, key, value))
    }
}

pub fn search_attribute(text: &str) -> Result<(String, ValueType), String> {
    let (name, ty) = text.split_once('=').ok_or("expected NAME=TYPE")?;
    let ty =
        ValueType::from_name(ty).ok_or_else(|| format!("unknown search attribute type {ty:?}"))?;
    Ok((name.to_owned(), ty))
}

/// The configuration `temporal server start-dev`'s flags describe.
pub fn config(args: &DevArgs) -> Result<Config, Error> {
    let dsn = match args.db_filename.as_deref() {
        Some(path) => path.to_owned(),
        None => {
            let dir = dirs::data_dir().ok_or("no user data directory; pass --db-filename")?;
            dir.join("chronicle")
                .join("dev.db")
                .to_string_lossy()
                .into_owned()
        }
    };
    // Limits, memory bounds and authorization have no flags: CHRONICLE_LIMITS_* /
    // CHRONICLE_MEMORY_* / CHRONICLE_AUTH_* set them.
    let Config {
        mut limits,
        memory,
        auth,
        ..
    } = Config::sections_from_env(std::env::vars())?;
    args.dynamic_config.apply(&mut limits)?;
    let tls = match (&args.tls_cert_file, &args.tls_key_file) {
        (Some(cert), Some(key)) => Some(TlsConfig::new(
            cert.clone(),
            key.clone(),
            args.tls_client_ca_file.clone(),
        )),
        _ => None,
    };
    Ok(Config {
        server: ServerConfig {
            ip: args.ip,
            port: args.port,
            log_level: args.log_level.clone(),
            namespaces: args.namespace.clone(),
            namespace_retention_hours: DEV_RETENTION_HOURS,
            metrics_port: args.metrics_port,
            tls,
        },
        persistence: PersistenceConfig::new(BackendKind::Sqlite, dsn, 1),
        // One shard, as in Temporal's dev server: nothing to spread over.
        history: HistoryConfig { shard_count: 1 },
        memory,
        // A single node on its SQLite file: the defaults, all services.
        cluster: Default::default(),
        limits,
        auth,
    })
}

pub async fn run(args: DevArgs) -> Result<(), Error> {
    let config = config(&args)?;
    node::init_logging(&config.server.log_level)?;
    node::run(
        config,
        Extras {
            search_attributes: args.search_attributes,
        },
    )
    .await
}

//! `chronicle server start-dev`: the flags `temporal server start-dev` users know, one SQLite
//! file that survives restarts, every service in this process.

use chronicle_common::search_attributes::ValueType;
use chronicle_frontend::{ClusterFacts, Frontend, Namespaces};
use chronicle_history::{History, HistoryOptions};
use chronicle_matching::Matching;
use chronicle_persistence::{SqliteOptions, SqliteStore, Store};
use chronicle_worker::Worker;
use clap::Args;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Retention of the namespaces start-dev creates, as in Temporal's dev server.
const DEV_RETENTION: Duration = Duration::from_secs(24 * 3600);

type Error = Box<dyn std::error::Error>;

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
    /// Log level: debug, info, warn, error or never.
    #[arg(long, default_value = "info", env = "CHRONICLE_LOG_LEVEL")]
    log_level: String,
}

fn search_attribute(text: &str) -> Result<(String, ValueType), String> {
    let (name, ty) = text.split_once('=').ok_or("expected NAME=TYPE")?;
    let ty =
        ValueType::from_name(ty).ok_or_else(|| format!("unknown search attribute type {ty:?}"))?;
    Ok((name.to_owned(), ty))
}

fn init_logging(level: &str) -> Result<(), Error> {
    let filter = match level {
        "never" => "off".to_owned(),
        "debug" | "info" | "warn" | "error" => {
            format!("{level},sqlx=warn,h2=warn,tower=warn,hyper=warn")
        }
        other => {
            return Err(
                format!("unknown --log-level {other:?} (debug, info, warn, error, never)").into(),
            );
        }
    };
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
    Ok(())
}

fn database(arg: Option<String>) -> Result<SqliteOptions, Error> {
    Ok(match arg.as_deref() {
        Some(":memory:") => SqliteOptions::Memory,
        Some(path) => SqliteOptions::File(PathBuf::from(path)),
        None => {
            let dir = dirs::data_dir().ok_or("no user data directory; pass --db-filename")?;
            SqliteOptions::File(dir.join("chronicle").join("dev.db"))
        }
    })
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}

pub async fn run(args: DevArgs) -> Result<(), Error> {
    let began = Instant::now();
    init_logging(&args.log_level)?;
    let address = SocketAddr::new(args.ip, args.port);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| format!("cannot listen on {address}: {e}"))?;
    let options = database(args.db_filename)?;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&options).await?);
    let matching = Matching::new();
    let backlog = matching.restore(store.as_ref()).await?;
    let history =
        History::start(HistoryOptions::default(), store.clone(), matching.clone()).await?;
    let _timers = history.run();
    let namespaces = Namespaces::new(store.clone());
    let attributes: std::collections::HashMap<String, i32> = args
        .search_attributes
        .iter()
        .map(|(name, ty)| (name.clone(), ty.indexed() as i32))
        .collect();
    for name in std::iter::once("default".to_owned()).chain(args.namespace) {
        namespaces.ensure(&name, DEV_RETENTION).await?;
        if !attributes.is_empty() {
            let namespace = namespaces.resolve(&name).await?;
            history
                .add_search_attributes(&namespace.id, attributes.clone())
                .await?;
        }
    }
    let facts = ClusterFacts {
        cluster_id: uuid::Uuid::new_v4().to_string(),
        persistence_store: "sqlite".into(),
    };
    tracing::info!(
        %address,
        database = ?options,
        restored_tasks = backlog,
        ready_in_ms = began.elapsed().as_millis() as u64,
        "Chronicle {} ready",
        env!("CARGO_PKG_VERSION")
    );
    let worker = Worker::new(history.clone(), store.clone());
    let resumed = worker.resume().await?;
    if resumed > 0 {
        tracing::info!(resumed, "batch operations resumed");
    }
    Frontend::new(namespaces, history, matching, worker, facts)
        .serve(listener, shutdown_signal())
        .await?;
    Ok(())
}

//! One Chronicle node: every service in this process, assembled from the configuration.

use chronicle_cluster::{Membership, Nodes, client_tls};
use chronicle_common::Supervisor;
use chronicle_common::cluster::{Member, Role};
use chronicle_common::config::{BackendKind, Config, PersistenceConfig};
use chronicle_common::search_attributes::ValueType;
use chronicle_frontend::tls::{Incoming, Tls};
use chronicle_frontend::{ClusterFacts, Frontend, Namespaces, Services};
use chronicle_history::{History, HistoryOptions};
use chronicle_matching::Matching;
use chronicle_persistence::{Backend, Dialect, Schema, SqlStore, Store, with_tls};
use chronicle_worker::Worker;
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub type Error = Box<dyn std::error::Error>;

/// How long each stage of a shutdown waits for background tasks before leaving them to the
/// process exit; all they hold is durable, so what is cut short is only redone at start.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);

/// What start-dev adds to a configuration.
#[derive(Default)]
pub struct Extras {
    pub search_attributes: Vec<(String, ValueType)>,
}

pub fn backend(config: &PersistenceConfig) -> Result<Backend, Error> {
    let tls = config.tls();
    Ok(match config.backend {
        BackendKind::Sqlite if config.dsn == ":memory:" => Backend::SqliteMemory,
        BackendKind::Sqlite => Backend::SqliteFile(PathBuf::from(&config.dsn)),
        BackendKind::Postgres => Backend::Postgres {
            url: with_tls(&config.dsn, Dialect::Postgres, &tls)?,
            max_connections: config.max_connections,
        },
        BackendKind::Mysql => Backend::MySql {
            url: with_tls(&config.dsn, Dialect::MySql, &tls)?,
            max_connections: config.max_connections,
        },
    })
}

/// The embedded database migrates itself; a shared one is migrated by an operator
/// (`chronicle schema migrate`), and a node refuses a schema that is not its own.
fn schema_policy(backend: &Backend) -> Schema {
    match backend {
        Backend::SqliteFile(_) | Backend::SqliteMemory => Schema::Migrate,
        _ => Schema::Check,
    }
}

pub fn init_logging(level: &str) -> Result<(), Error> {
    let filter = match level {
        "never" => "off".to_owned(),
        "debug" | "info" | "warn" | "error" => {
            format!("{level},sqlx=warn,h2=warn,tower=warn,hyper=warn")
        }
        other => {
            return Err(
                format!("unknown log level {other:?} (debug, info, warn, error, never)").into(),
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

/// After `signal`, waiting long polls answer empty, and a node with other members hands its
/// work over before its frontend stops: it leaves the membership (releasing its shards,
/// routing calls to the others) and gives the others two heartbeats to take its shards, so a
/// rolling restart waits for no lease. A lone node keeps its shards until its calls in flight
/// are done.
async fn hand_over(signal: impl Future<Output = ()>, membership: Membership, matching: Matching) {
    signal.await;
    matching.close_polls();
    if membership.live().len() > 1 && membership.leave().await {
        tracing::info!("handing work over to the other members");
        tokio::time::sleep(membership.heartbeat() * 2).await;
    }
}

/// Applies the schema migrations the database lacks (`chronicle schema migrate`).
pub async fn migrate(config: &Config) -> Result<(), Error> {
    SqlStore::open(&backend(&config.persistence)?, Schema::Migrate).await?;
    Ok(())
}

/// This node as the cluster's members see it: named by its address unless configured.
fn member(config: &Config) -> Member {
    let cluster = &config.cluster;
    let address = if cluster.address.is_empty() {
        SocketAddr::new(config.server.ip, config.server.port).to_string()
    } else {
        cluster.address.clone()
    };
    Member {
        id: if cluster.member_id.is_empty() {
            address.clone()
        } else {
            cluster.member_id.clone()
        },
        address,
        roles: cluster.services.clone(),
    }
}

/// The queues this node's matching serves: those it owns (history and shard ownership follow
/// the same members; a node not playing matching owns none).
fn serves(nodes: Nodes) -> chronicle_matching::Serves {
    Arc::new(move |key| {
        nodes
            .remote_queue_owner(&key.namespace_id, &key.name, key.kind)
            .is_none()
    })
}

/// Runs the node until a shutdown signal.
pub async fn run(config: Config, extras: Extras) -> Result<(), Error> {
    let began = Instant::now();
    let address = SocketAddr::new(config.server.ip, config.server.port);
    // Bad TLS files stop the node before it touches the database.
    let tls = config.server.tls.as_ref().map(Tls::new).transpose()?;
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| format!("cannot listen on {address}: {e}"))?;
    if let Some(port) = config.server.metrics_port {
        crate::metrics::serve(config.server.ip, port)?;
    }
    let backend = backend(&config.persistence)?;
    // The store's writer stops last, so the tasks that stop before it can still commit.
    let storage = Supervisor::new();
    let supervisor = Supervisor::new();
    let store = SqlStore::open_supervised(&backend, schema_policy(&backend), &storage).await?;
    let store: Arc<dyn Store> = Arc::new(store);
    let shard_count = config.history.shard_count.max(1);
    let membership = Membership::join(
        store.clone(),
        member(&config),
        &config.cluster,
        shard_count,
        &supervisor,
    )
    .await?;
    let nodes = match &config.cluster.tls {
        Some(cluster_tls) => Nodes::new(membership.clone()).with_tls(client_tls(cluster_tls)?),
        None => {
            if tls.is_some() && membership.live().len() > 1 {
                // The other members are called on their frontend port, in plaintext.
                tracing::warn!(
                    "server.tls is set without [cluster.tls]: calls forwarded between the members will fail"
                );
            }
            Nodes::new(membership.clone())
        }
    };
    let plays = |role| config.cluster.services.contains(&role);
    let matching = Matching::new(store.clone(), &config.memory);
    matching.serve_only(serves(nodes.clone()));
    let backlog = matching.restore().await?;
    matching.run(&supervisor);
    let limits = Arc::new(config.limits.clone());
    let options = HistoryOptions {
        shard_count,
        limits: limits.clone(),
        memory: config.memory.clone(),
    };
    let history = History::start(options, store.clone(), matching.clone(), &supervisor).await?;
    history.follow(nodes.clone()).await?;
    let min_retention = Duration::from_secs(config.limits.node.min_retention_secs);
    let namespaces = Namespaces::new(store.clone()).with_min_retention(min_retention);
    let retention = Duration::from_secs(config.server.namespace_retention_hours * 3600);
    let attributes: HashMap<String, i32> = extras
        .search_attributes
        .iter()
        .map(|(name, ty)| (name.clone(), ty.indexed() as i32))
        .collect();
    for name in
        std::iter::once("default").chain(config.server.namespaces.iter().map(String::as_str))
    {
        namespaces.ensure(name, retention).await?;
        if !attributes.is_empty() {
            let namespace = namespaces.resolve(name).await?;
            history
                .add_search_attributes(&namespace.id, attributes.clone())
                .await?;
        }
    }
    let worker = Worker::new(history.clone(), store.clone(), supervisor.clone());
    let store_kind = match backend {
        Backend::SqliteFile(_) | Backend::SqliteMemory => "sqlite",
        Backend::Postgres { .. } => "postgres",
        Backend::MySql { .. } => "mysql",
    };
    let facts = ClusterFacts {
        cluster_id: uuid::Uuid::new_v4().to_string(),
        persistence_store: store_kind.into(),
    };
    let polls = matching.clone();
    let services = Services {
        namespaces,
        history,
        matching,
        worker: worker.clone(),
        nodes,
    };
    let authorizer = chronicle_auth::Authorizer::new(&config.auth).map_err(|e| e.to_string())?;
    if authorizer.is_enabled() {
        let refresh = authorizer.clone();
        let stop = supervisor.token();
        supervisor.spawn("JWKS refresh", async move {
            tokio::select! {
                () = refresh.run_refresh() => {}
                () = stop.cancelled() => {}
            }
        });
    }
    let frontend = Frontend::new(services, facts, limits, config.memory, authorizer);
    let resumed = if plays(Role::Worker) {
        worker
            .follow(membership.clone(), frontend.workflows())
            .await?
    } else {
        0
    };
    tracing::info!(
        %address,
        tls = match &tls {
            None => "off",
            Some(tls) if tls.mutual() => "mutual",
            Some(_) => "on",
        },
        member = %membership.me().id,
        services = ?config.cluster.services,
        members = membership.live().len(),
        database = store_kind,
        restored_tasks = backlog,
        resumed_jobs = resumed,
        ready_in_ms = began.elapsed().as_millis() as u64,
        "Chronicle {} ready",
        env!("CARGO_PKG_VERSION")
    );
    let frontend = if plays(Role::Frontend) {
        frontend
    } else {
        frontend.internal_only()
    };
    frontend
        .serve(
            Incoming::new(listener, tls.map(Arc::new)),
            &supervisor,
            hand_over(shutdown_signal(), membership, polls),
        )
        .await?;
    stop(&supervisor, "background tasks").await;
    stop(&storage, "database writer").await;
    tracing::info!("stopped");
    Ok(())
}

/// Stops a supervisor's tasks; tasks that panicked or did not stop are logged by name.
async fn stop(supervisor: &Supervisor, what: &str) {
    let report = supervisor.shutdown(SHUTDOWN_DEADLINE).await;
    if !report.panicked.is_empty() {
        tracing::error!(panicked = ?report.panicked, "{what}: tasks panicked while running");
    }
    if !report.unfinished.is_empty() {
        tracing::warn!(unfinished = ?report.unfinished, "{what}: not stopped in time");
    }
}

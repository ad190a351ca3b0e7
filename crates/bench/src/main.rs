//! `chronicle-bench`: load for any server speaking Temporal's wire protocol, from a
//! synthetic worker and client over raw gRPC (no SDK, so the load generator is never the
//! bottleneck), and a side-by-side comparison of Chronicle with `temporal server start-dev`.
//! See BENCHMARKS.md.

mod compare;
mod driver;
mod failover;
mod long;
mod pass;
mod procfs;
mod report;
mod rpc;
mod scenario;
mod server;
mod stats;
mod worker;

use clap::{Args, Parser, Subcommand};
use driver::LoadArgs;
use scenario::Scenario;
use server::{Server, ServerArgs, ServerKind};

#[derive(Parser)]
#[command(name = "chronicle-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one scenario against one server
    Run(RunArgs),
    /// Start the reference server and Chronicle one after the other, run each scenario on
    /// both, and print a table with the ratios
    Compare(compare::CompareArgs),
    /// Stop one node of a cluster under a stream of starts and measure how long starts fail
    Failover(failover::FailoverArgs),
}

#[derive(Args)]
struct RunArgs {
    #[arg(long, value_enum)]
    scenario: Scenario,
    /// The server's gRPC address
    #[arg(long, default_value = "127.0.0.1:7233")]
    address: String,
    /// The server's pid, to report its CPU time and peak RSS (Linux /proc)
    #[arg(long)]
    server_pid: Option<u32>,
    /// Start this server (free port, fresh SQLite file) instead of using --address
    #[arg(long, value_enum)]
    spawn: Option<ServerKind>,
    /// An `authorization` header sent with every call (`Bearer <jwt>`), to measure a server
    /// that authorizes calls
    #[arg(long, env = "CHRONICLE_BENCH_AUTHORIZATION")]
    authorization: Option<String>,
    #[command(flatten)]
    load: LoadArgs,
    #[command(flatten)]
    servers: ServerArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run(args) => run(args).await,
        Command::Compare(args) => compare::compare(args).await,
        Command::Failover(args) => failover::failover(args).await,
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    if let Some(value) = &args.authorization {
        rpc::send_authorization(value)?;
    }
    let server = match args.spawn {
        Some(kind) => Some(Server::start(kind, &args.servers).await?),
        None => None,
    };
    if let Some(s) = &server {
        let rss = s.idle_rss.map_or(0.0, |b| b as f64 / (1024.0 * 1024.0));
        let (ready, namespace) = (s.start_to_ready, s.start_to_namespace);
        eprintln!(
            "started at {} (pid {}): GetSystemInfo after {ready:?}, namespace after \
             {namespace:?}, idle RSS {rss:.1} MiB",
            s.address,
            s.pid()
        );
    }
    let address = server
        .as_ref()
        .map_or(args.address.clone(), |s| s.address.clone());
    let pid = server.as_ref().map(Server::pid).or(args.server_pid);
    let result = driver::run_scenario(&address, args.scenario, &args.load, pid).await;
    if let Some(server) = server {
        server.stop().await;
    }
    println!("{}", report::single(&result?));
    Ok(())
}

//! `compare`: every scenario on the reference server, then on Chronicle, each on a freshly
//! started server (so no scenario inherits another's database or memory), then one table.

use crate::driver::{self, LoadArgs, ScenarioResult};
use crate::report::{self, Row, Starts};
use crate::scenario::Scenario;
use crate::server::{Server, ServerArgs, ServerKind};

#[derive(Debug, Clone, clap::Args)]
pub struct CompareArgs {
    /// Scenarios to run, comma-separated [default: all]
    #[arg(long, value_delimiter = ',')]
    pub scenario: Vec<Scenario>,
    #[command(flatten)]
    pub load: LoadArgs,
    #[command(flatten)]
    pub servers: ServerArgs,
}

pub async fn compare(args: CompareArgs) -> anyhow::Result<()> {
    let scenarios = if args.scenario.is_empty() {
        Scenario::ALL.to_vec()
    } else {
        args.scenario.clone()
    };
    let kinds = [ServerKind::Reference, ServerKind::Chronicle];
    let mut starts: Vec<Starts> = kinds
        .iter()
        .map(|&kind| Starts {
            kind,
            ready: Vec::new(),
            namespace_ready: Vec::new(),
            idle_rss: Vec::new(),
        })
        .collect();
    let mut rows = Vec::new();
    for scenario in scenarios {
        let mut results = Vec::new();
        for (kind, starts) in kinds.into_iter().zip(&mut starts) {
            let result = one(scenario, kind, &args, starts).await;
            match &result {
                Ok(r) => eprintln!(
                    "   {} completed, {:.1} workflows/s, {} errors",
                    r.completed,
                    r.throughput.unwrap_or_default(),
                    r.error_count()
                ),
                Err(e) => eprintln!("   failed: {e}"),
            }
            results.push(result);
        }
        let Ok([reference, chronicle]) = <[_; 2]>::try_from(results) else {
            anyhow::bail!("expected one result per server");
        };
        rows.push(Row {
            scenario,
            reference,
            chronicle,
        });
    }
    println!("{}", report::comparison(&starts, &rows));
    Ok(())
}

/// One scenario on a fresh server of one kind; the server's start is recorded in `starts`.
async fn one(
    scenario: Scenario,
    kind: ServerKind,
    args: &CompareArgs,
    starts: &mut Starts,
) -> Result<ScenarioResult, String> {
    eprintln!("== {} on {}", scenario.name(), kind.name());
    let server = Server::start(kind, &args.servers)
        .await
        .map_err(|e| format!("server did not start: {e:#}"))?;
    starts.ready.push(server.start_to_ready);
    starts.namespace_ready.push(server.start_to_namespace);
    starts.idle_rss.extend(server.idle_rss);
    let result =
        driver::run_scenario(&server.address, scenario, &args.load, Some(server.pid())).await;
    server.stop().await;
    result.map_err(|e| format!("{e:#}"))
}

//! `chronicle`: the command line. Every service runs in this one process.

mod dev;
mod metrics;
mod node;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "chronicle",
    version,
    about = "A durable-execution server speaking Temporal's wire protocol"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Server {
        #[command(subcommand)]
        command: ServerCommand,
    },
    /// Manage the database schema.
    Schema {
        #[command(subcommand)]
        command: SchemaCommand,
    },
}

#[derive(Subcommand)]
enum ServerCommand {
    /// Everything in one process on a local SQLite file, ready in milliseconds.
    StartDev(dev::DevArgs),
    /// A node configured by a file (PostgreSQL, MySQL/MariaDB or SQLite).
    Start(StartArgs),
}

#[derive(Subcommand)]
enum SchemaCommand {
    /// Apply the schema migrations the database lacks; safe to run again.
    Migrate(ConfigArg),
}

#[derive(clap::Args)]
struct StartArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Custom search attribute to register in every configured namespace, as NAME=TYPE.
    #[arg(long = "search-attribute", value_parser = dev::search_attribute)]
    search_attributes: Vec<(String, chronicle_common::search_attributes::ValueType)>,
    #[command(flatten)]
    dynamic_config: dev::DynamicConfigArgs,
}

#[derive(clap::Args)]
struct ConfigArg {
    /// TOML configuration; every key can be overridden by CHRONICLE_<SECTION>_<KEY>.
    #[arg(long, short = 'c')]
    config: std::path::PathBuf,
}

async fn execute(command: Command) -> Result<(), node::Error> {
    use chronicle_common::config::Config;
    match command {
        Command::Server {
            command: ServerCommand::StartDev(args),
        } => dev::run(args).await,
        Command::Server {
            command: ServerCommand::Start(args),
        } => {
            let mut config = Config::load(&args.config.config)?;
            args.dynamic_config.apply(&mut config.limits)?;
            node::init_logging(&config.server.log_level)?;
            let extras = node::Extras {
                search_attributes: args.search_attributes,
            };
            node::run(config, extras).await
        }
        Command::Schema {
            command: SchemaCommand::Migrate(arg),
        } => {
            let config = Config::load(&arg.config)?;
            node::migrate(&config).await?;
            println!("schema is up to date");
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("chronicle: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(execute(cli.command));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chronicle: {e}");
            ExitCode::FAILURE
        }
    }
}

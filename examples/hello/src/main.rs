//! Hello-world for the official Temporal Rust SDK, used as an end-to-end check
//! that Chronicle speaks the wire protocol well enough for an unmodified SDK.
//!
//! One process plays both roles (worker and starter) so a test only has to run
//! a single binary: it starts a worker, starts one workflow, waits for its
//! result, then shuts the worker down gracefully so the shutdown RPCs are
//! exercised too.

use std::{process::ExitCode, time::Duration};

use clap::Parser;
use temporalio_client::{
    Client, ClientOptions, ConnectionOptions, Url, WorkflowGetResultOptions, WorkflowStartOptions,
};
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::{
    ActivityOptions, Runtime, Worker, WorkerOptions, WorkflowContext, WorkflowResult,
    activities::{ActivityContext, ActivityError},
};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Parser)]
#[command(about = "Run a hello-world Temporal workflow (worker + starter) against a frontend")]
struct Args {
    /// Frontend gRPC address, host:port.
    #[arg(long, default_value = "127.0.0.1:7233")]
    address: String,
    #[arg(long, default_value = "default")]
    namespace: String,
    /// Defaults to a fresh queue per run so concurrent runs never steal each other's tasks.
    #[arg(long)]
    task_queue: Option<String>,
    /// Who to greet.
    #[arg(long, default_value = "World")]
    name: String,
    /// Upper bound on the whole run, so a misbehaving server fails the run instead of hanging it.
    #[arg(long, default_value_t = 60)]
    timeout_secs: u64,
}

pub struct Greetings;

#[activities]
impl Greetings {
    #[activity]
    pub async fn greet(_ctx: ActivityContext, name: String) -> Result<String, ActivityError> {
        Ok(format!("Hello, {name}!"))
    }
}

#[workflow]
#[derive(Default)]
pub struct HelloWorkflow;

#[workflow_methods]
impl HelloWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, name: String) -> WorkflowResult<String> {
        let greeting = ctx
            .execute_activity(
                Greetings::greet,
                name,
                ActivityOptions::start_to_close_timeout(Duration::from_secs(10)),
            )
            .await?;
        // The timer is here only so the history also carries TimerStarted/TimerFired.
        ctx.timer(Duration::from_millis(500)).await;
        Ok(greeting)
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let limit = Duration::from_secs(args.timeout_secs);
    match tokio::time::timeout(limit, run(args)).await {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("error: timed out after {limit:?}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Error> {
    let target = Url::parse(&format!("http://{}", args.address))
        .map_err(|e| format!("invalid --address {:?}: {e}", args.address))?;
    let client = Client::connect(
        ConnectionOptions::new(target)
            .identity(format!("hello-example@{}", std::process::id()))
            .build(),
        ClientOptions::new(args.namespace).build(),
    )
    .await
    .map_err(|e| format!("connecting to {}: {e}", args.address))?;

    let task_queue = args
        .task_queue
        .unwrap_or_else(|| format!("hello-{}", uuid::Uuid::new_v4()));
    let runtime = Runtime::from_current_tokio(Default::default())?;
    let mut worker = Worker::new(
        &runtime,
        client.clone(),
        WorkerOptions::new(&task_queue)
            .register_workflow::<HelloWorkflow>()?
            .register_activities(Greetings)
            .build(),
    )?;
    let shutdown = worker.shutdown_handle();

    // The worker future is not Send (workflows run on a LocalSet), so it is
    // driven on this task alongside the starter rather than spawned.
    let worker_run = worker.run();
    tokio::pin!(worker_run);
    let outcome = tokio::select! {
        res = &mut worker_run => {
            return Err(match res {
                Ok(()) => "worker stopped before the workflow finished".into(),
                Err(e) => format!("worker failed: {e}").into(),
            });
        }
        res = start_and_wait(&client, &task_queue, args.name) => res,
    };
    shutdown();
    let worker_res = worker_run.await;
    // The workflow's own error is the more telling one when both failed.
    let result = outcome?;
    worker_res.map_err(|e| format!("worker shutdown: {e}"))?;
    println!("result: {result}");
    Ok(())
}

async fn start_and_wait(client: &Client, task_queue: &str, name: String) -> Result<String, Error> {
    let workflow_id = format!("hello-{}", uuid::Uuid::new_v4());
    let handle = client
        .start_workflow(
            HelloWorkflow::run,
            name,
            WorkflowStartOptions::new(task_queue, &workflow_id).build(),
        )
        .await
        .map_err(|e| format!("starting workflow: {e}"))?;
    // Printed before waiting so a caller can inspect the history even if the wait fails.
    println!("workflow_id: {workflow_id}");
    let result = handle
        .get_result(WorkflowGetResultOptions::default())
        .await
        .map_err(|e| format!("waiting for workflow {workflow_id}: {e}"))?;
    Ok(result)
}

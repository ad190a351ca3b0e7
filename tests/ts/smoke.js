'use strict';
// TypeScript-SDK smoke test against a Temporal-protocol server.
//
//   node smoke.js [ADDRESS] [NAMESPACE]
//   (or env TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE; default 127.0.0.1:7233 / default)
//
// Runs a worker, executes one workflow that calls one activity, checks the result,
// then lists and counts the execution through visibility. Prints one JSON line
// `{"ok": true, ...}` and exits 0 on success; exits 1 with a message otherwise.
const path = require('node:path');
const crypto = require('node:crypto');
const { Connection, Client } = require('@temporalio/client');
const { NativeConnection, Worker, Runtime, DefaultLogger } = require('@temporalio/worker');
const activities = require('./activities');

const address = process.argv[2] || process.env.TEMPORAL_ADDRESS || '127.0.0.1:7233';
const namespace = process.argv[3] || process.env.TEMPORAL_NAMESPACE || 'default';
const VISIBILITY_DEADLINE_MS = 20000;

function check(cond, message) {
  if (!cond) throw new Error(`check failed: ${message}`);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Visibility is eventually consistent on some servers: poll until `ok(value)`.
async function eventually(what, fn, ok) {
  const deadline = Date.now() + VISIBILITY_DEADLINE_MS;
  let last;
  for (;;) {
    last = await fn();
    if (ok(last)) return last;
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}; last value: ${JSON.stringify(last)}`);
    }
    await sleep(200);
  }
}

async function collect(iterable) {
  const out = [];
  for await (const item of iterable) out.push(item);
  return out;
}

async function main() {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const suffix = crypto.randomUUID();
  const taskQueue = `ts-smoke-${suffix}`;
  const workflowId = `ts-smoke-wf-${suffix}`;

  const connection = await Connection.connect({ address });
  const client = new Client({ connection, namespace });
  const nativeConnection = await NativeConnection.connect({ address });
  const worker = await Worker.create({
    connection: nativeConnection,
    namespace,
    taskQueue,
    workflowsPath: path.join(__dirname, 'workflows.js'),
    activities,
  });

  const result = await worker.runUntil(async () => {
    const handle = await client.workflow.start('greetWorkflow', {
      taskQueue,
      workflowId,
      args: ['Chronicle'],
      memo: { origin: 'ts-smoke' },
    });
    return { runId: handle.firstExecutionRunId, value: await handle.result() };
  });
  const expected = 'HELLO, CHRONICLE! (ACTIVITY COMPOSE, ATTEMPT 1)';
  check(result.value === expected, `workflow result ${JSON.stringify(result.value)} !== ${JSON.stringify(expected)}`);

  const description = await client.workflow.getHandle(workflowId).describe();
  check(description.status.name === 'COMPLETED', `describe status ${description.status.name}`);
  check(description.runId === result.runId, `describe runId ${description.runId} !== ${result.runId}`);

  const query = `WorkflowId = '${workflowId}'`;
  const listed = await eventually(
    'list to show the completed run',
    () => collect(client.workflow.list({ query })),
    (rows) => rows.length === 1 && rows[0].status.name === 'COMPLETED',
  );
  const row = listed[0];
  check(row.workflowId === workflowId, `list workflowId ${row.workflowId}`);
  check(row.runId === result.runId, `list runId ${row.runId}`);
  check(row.type === 'greetWorkflow', `list type ${row.type}`);
  check(row.taskQueue === taskQueue, `list taskQueue ${row.taskQueue}`);
  check(row.closeTime instanceof Date, 'list closeTime is set');
  check(row.memo && row.memo.origin === 'ts-smoke', `list memo ${JSON.stringify(row.memo)}`);

  const byQueue = `TaskQueue = '${taskQueue}' AND ExecutionStatus = 'Completed'`;
  const counted = await eventually(
    'count to reach 1',
    () => client.workflow.count(byQueue),
    (c) => c.count === 1,
  );
  check(counted.count === 1, `count ${counted.count}`);
  const none = await client.workflow.count(`TaskQueue = '${taskQueue}' AND ExecutionStatus = 'Running'`);
  check(none.count === 0, `count of running ${none.count}`);

  await nativeConnection.close();
  await connection.close();
  console.log(JSON.stringify({
    ok: true, workflowId, runId: result.runId, result: result.value, listed: listed.length, count: counted.count,
  }));
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`ts smoke FAILED: ${err && err.stack ? err.stack : err}`);
    process.exit(1);
  },
);

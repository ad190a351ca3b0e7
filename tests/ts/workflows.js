'use strict';
// Workflow code of the smoke test. The worker bundles this file (webpack) and
// runs it in its deterministic sandbox; plain CommonJS needs no build step.
const { proxyActivities } = require('@temporalio/workflow');

const { compose } = proxyActivities({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 1 },
});

async function greetWorkflow(name) {
  const greeting = await compose(name);
  return greeting.toUpperCase();
}

module.exports = { greetWorkflow };

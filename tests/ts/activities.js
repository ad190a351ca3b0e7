'use strict';
// Activities of the smoke test (run in the worker's Node process).
const { Context } = require('@temporalio/activity');

async function compose(name) {
  const info = Context.current().info;
  return `Hello, ${name}! (activity ${info.activityType}, attempt ${info.attempt})`;
}

module.exports = { compose };

'use strict';
// Replaces node:worker_threads for pino in the bundle (scripts/build.ts), which reads only
// isMainThread. The agent runs no worker threads.
module.exports = { isMainThread: true };

'use strict';
// Replaces thread-stream in the bundle (scripts/build.ts): pino transports, which run in
// worker threads, are not part of node-auditor. It logs JSON lines to stdout.
module.exports = function ThreadStream() {
  throw new Error(
    'pino transports are not available in the node-auditor bundle; it logs JSON to stdout',
  );
};

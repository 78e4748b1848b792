// Builds dist/node-auditor.cjs: the agent and its dependencies in one CommonJS file, which
// starts faster and uses less memory than node_modules resolved at run time
// (bench/RESULTS.md). Run by `npm run build` (and so by `npm ci`, `npm test`, `npm run bench`).
//
// Two parts of pino are replaced in the bundle, because the agent never uses them and
// loading them costs about 1 MiB of RSS on every node (Node's worker_threads and assert
// modules, measured with bench/agentRss.bench.ts):
// - thread-stream, which runs pino *transports* in worker threads. The agent logs JSON to
//   stdout with pino's default destination; a transport would throw at start (see the stub).
// - the `assert` and `worker_threads` modules as pino and sonic-boom import them: sonic-boom
//   uses only `assert(value, message)`, pino only `isMainThread` (the agent has no workers).
import { build } from 'esbuild';
import type { Plugin } from 'esbuild';
import { chmod, copyFile } from 'node:fs/promises';
import path from 'node:path';

const repo = path.resolve(import.meta.dirname, '..');
const stubs = path.join(repo, 'scripts', 'bundle-stubs');

const pinoWithoutWorkers: Plugin = {
  name: 'pino-without-workers',
  setup(b) {
    b.onResolve({ filter: /^thread-stream$/ }, () => ({
      path: path.join(stubs, 'threadStream.cjs'),
    }));
    b.onResolve({ filter: /^(node:)?(assert|worker_threads)$/ }, (args) => {
      const from = args.importer.split(path.sep).join('/');
      if (!/\/node_modules\/(pino|sonic-boom)\//.test(from)) return undefined;
      const name =
        args.path.replace(/^node:/, '') === 'assert' ? 'assert.cjs' : 'workerThreads.cjs';
      return { path: path.join(stubs, name) };
    });
  },
};

const outfile = path.join(repo, 'dist', 'node-auditor.cjs');
await build({
  entryPoints: [path.join(repo, 'agent', 'cli', 'main.ts')],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node24',
  format: 'cjs',
  sourcemap: true,
  legalComments: 'none',
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
  define: { 'import.meta.url': '__bundle_url' },
  banner: { js: "const __bundle_url = require('node:url').pathToFileURL(__filename).href;" },
  plugins: [pinoWithoutWorkers],
});
await chmod(outfile, 0o755);
// Data read at run time, not bundled: replaceable without a release (agent/checks/cve/README.md).
await copyFile(
  path.join(repo, 'agent', 'checks', 'cve', 'kubernetes-cves.json'),
  path.join(repo, 'dist', 'kubernetes-cves.json'),
);

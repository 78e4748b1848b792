// Issue 3: what the Kubernetes client costs. Importing @kubernetes/client-node whole vs the
// parts the agent uses (kubeconfig parsing, exec-plugin auth, node:https), each in a
// fresh Node process beside a listening HTTP server, in the same run.
import { spawnSync } from 'node:child_process';
import { REPO } from './benchSupport.ts';
import type { Result } from './benchSupport.ts';

const PROBE = (imports: string[]) => `
const http = require('node:http');
http.createServer().listen(0, '127.0.0.1', async () => {
  const t0 = performance.now();
  for (const m of ${JSON.stringify(imports)}) await import(m);
  const ms = performance.now() - t0;
  setTimeout(() => { console.log(JSON.stringify({ ms, rss: process.memoryUsage.rss() / 1048576 })); process.exit(0); }, 300);
});`;

function measure(imports: string[]): { ms: number; rss: number } {
  const runs = [0, 1, 2].map(() => {
    const r = spawnSync(process.execPath, ['-e', PROBE(imports)], { cwd: REPO, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(r.stderr);
    return JSON.parse(r.stdout) as { ms: number; rss: number };
  });
  return { ms: Math.min(...runs.map((r) => r.ms)), rss: Math.max(...runs.map((r) => r.rss)) };
}

export function kubeClientCost(): Result[] {
  const floor = measure([]);
  const whole = measure(['@kubernetes/client-node']);
  const used = measure([
    '@kubernetes/client-node/dist/config_types.js',
    '@kubernetes/client-node/dist/exec_auth.js',
    'node:https',
  ]);
  return [
    {
      name: 'Kubernetes client: RSS added by the parts used',
      metric: 'max of 3',
      value: used.rss - floor.rss,
      unit: 'MiB',
      baseline: { what: 'whole @kubernetes/client-node', value: whole.rss - floor.rss },
      detail: `over a listening HTTP server at ${floor.rss.toFixed(1)} MiB`,
    },
    {
      name: 'Kubernetes client: import time of the parts used',
      metric: 'min of 3',
      value: used.ms,
      unit: 'ms',
      baseline: { what: 'whole @kubernetes/client-node', value: whole.ms },
      detail: 'loaded only when a cluster is configured',
    },
  ];
}

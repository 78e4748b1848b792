// Budget (issue 2): `check` end to end (process start to exit) at most 1.5 s on this machine.
// Baseline: starting and exiting Node itself (`node -e 0`), in the same run.
import { spawnSync } from 'node:child_process';
import { BIN, percentile } from './benchSupport.ts';
import type { Result } from './benchSupport.ts';

const RUNS = 20;

function timeRuns(args: string[]): number[] {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, args, { stdio: 'ignore' });
    times.push(performance.now() - t0);
    if (r.status === null || r.status > 1)
      throw new Error(`${args.join(' ')} exited ${String(r.status)}`);
  }
  return times.sort((a, b) => a - b);
}

export function checkEndToEnd(): Result {
  const check = timeRuns([BIN, 'check', '--host-root', '/']);
  const bare = timeRuns(['-e', '0']);
  return {
    name: '`check` end to end',
    metric: `max of ${RUNS}`,
    value: percentile(check, 100),
    unit: 'ms',
    budget: 1500,
    baseline: { what: '`node -e 0`', value: percentile(bare, 100) },
    detail: `median ${percentile(check, 50).toFixed(0)} ms (node alone ${percentile(bare, 50).toFixed(0)} ms)`,
  };
}

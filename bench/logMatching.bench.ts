// Budget (issue 4): matching throughput with the full built-in catalogue on a 1,000,000-line mixed
// syslog at least half of `grep -E -c` run with the same patterns on the same file, same run.
// Ours: `node-auditor scan-logs` on the file, whole process (start-up, reading, the literal
// prefilter, the linear-time regexps, incidents). Baseline: GNU grep -E -c -f with every rule's
// pattern as ERE (ereFromRe2.ts), LC_ALL=C. Budget as time: ours at most 2x grep's.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { builtinRules } from '../agent/rules/catalogue.ts';
import { BIN } from './benchSupport.ts';
import type { Result } from './benchSupport.ts';
import { ereFromRe2 } from './ereFromRe2.ts';
import { writeSyslog } from './logLines.ts';

const LINES = 1_000_000;
const RUNS = 3;
/** One line in this many is a problem a rule matches (the rest is ordinary chatter). */
const PROBLEM_EVERY = 5000;

function timed(command: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const t0 = performance.now();
  const r = spawnSync(command, args, {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    maxBuffer: 64 * 1024 * 1024,
  });
  const ms = performance.now() - t0;
  if (r.status !== 0 && r.status !== 1) {
    throw new Error(`${command} ${args.join(' ')} exited ${r.status ?? r.signal}: ${r.stderr}`);
  }
  return { ms, stdout: r.stdout };
}

export async function logMatching(): Promise<Result> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'node-auditor-bench-'));
  try {
    const file = path.join(dir, 'syslog');
    const bytes = await writeSyslog(file, LINES, PROBLEM_EVERY);
    const patterns = path.join(dir, 'patterns.ere');
    writeFileSync(
      patterns,
      builtinRules()
        .map((r) => ereFromRe2(r.pattern))
        .join('\n') + '\n',
    );
    const ours: number[] = [];
    const grep: number[] = [];
    let incidents = 0;
    let matched = 0;
    let grepCount = 0;
    for (let i = 0; i < RUNS; i++) {
      const scan = timed(process.execPath, [BIN, 'scan-logs', '--output', 'json', file], {
        TZ: 'UTC',
      });
      ours.push(scan.ms);
      const found = (JSON.parse(scan.stdout) as { incidents: { count: number }[] }).incidents;
      incidents = found.length;
      matched = found.reduce((sum, incident) => sum + incident.count, 0);
      const g = timed('grep', ['-E', '-c', '-f', patterns, file], { LC_ALL: 'C' });
      grep.push(g.ms);
      grepCount = Number(g.stdout.trim());
    }
    // Both must have found every problem line the generator wrote (one in PROBLEM_EVERY), and no
    // other: a translation to ERE that matches less, or a matcher that misses lines, would make
    // the time comparison meaningless.
    const expected = Math.floor(LINES / PROBLEM_EVERY);
    if (matched !== expected || grepCount !== expected)
      throw new Error(
        `log matching: scan-logs matched ${matched} lines and grep ${grepCount}, of the ${expected} problem lines written`,
      );
    const best = Math.min(...ours);
    const grepBest = Math.min(...grep);
    return {
      name: 'Log matching, full catalogue, 1M-line syslog',
      metric: `time vs grep -E (min of ${RUNS})`,
      value: best / grepBest,
      unit: 'x',
      budget: 2,
      baseline: { what: 'grep -E -c, same patterns', value: 1 },
      detail: `scan-logs ${best.toFixed(0)} ms (${(((LINES / best) * 1000) / 1e6).toFixed(2)} M lines/s, ${incidents} incidents), grep ${grepBest.toFixed(0)} ms (${grepCount} lines matched), ${(bytes / 1024 ** 2).toFixed(0)} MiB, ${builtinRules().length} rules`,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// One agent, four checks: the real sysctl check, one that throws, one that hangs, one that is
// slow. Failures are reported as such and never affect the other checks, the scrape, or the
// process.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { Agent } from '../../agent/agent.ts';
import type { Check } from '../../agent/checks/check.ts';
import { sysctlCheck } from '../../agent/checks/sysctl/sysctlCheck.ts';
import { loadConfig } from '../../agent/config/loadConfig.ts';
import { draft } from '../../agent/findings/finding.ts';
import { eventually, fixtureHost, httpGet, metricValue, sleep } from '../helpers.ts';

function testCheck(id: string, run: Check['run'], timeout = '300ms'): Check {
  return {
    id,
    title: id,
    description: id,
    defaults: { enabled: true, interval: '1s', timeout },
    options: {},
    run,
  };
}

const throws = testCheck('throws', () => {
  throw new Error('cannot parse /proc/self/stat');
});
const hangs = testCheck('hangs', () => new Promise(() => undefined));
const slow = testCheck(
  'slow',
  () =>
    new Promise((resolve) =>
      setTimeout(() => {
        resolve({
          findings: [
            draft('SlowThing', undefined, {
              severity: 'warning',
              title: 'slow thing',
              message: 'm',
              evidence: [],
            }),
          ],
        });
      }, 600),
    ),
  '5s',
);

test('a check that throws or hangs is reported and never affects the others, the scrape or the process', async (t) => {
  const checks = [sysctlCheck, throws, hangs, slow] as Check[];
  const inputs = {
    env: {},
    flags: {
      'host-root': fixtureHost('bad-runtime'),
      listen: '127.0.0.1:0',
      'node-name': 'k1-node01',
    },
  };
  const loaded = await loadConfig(inputs, checks);
  const agent = new Agent({
    loaded,
    inputs,
    checks,
    log: pino({ level: 'silent' }),
    version: '0.0.0-test',
    summaryTo: null,
    env: {},
  });
  const url = await agent.start();
  t.after(() => agent.stop());

  // before the slow check's first run is done: alive, scrapeable, not ready
  const early = Date.now();
  assert.equal((await httpGet(`${url}/readyz`)).status, 503);
  assert.equal((await httpGet(`${url}/healthz`)).status, 200);
  assert.equal((await httpGet(`${url}/metrics`)).status, 200);
  assert.ok(Date.now() - early < 300, 'answered while checks were hanging');

  await eventually(
    async () => ((await httpGet(`${url}/readyz`)).status === 200 ? true : undefined),
    5000,
    'readiness',
  );
  const report = agent.report();
  assert.deepEqual(
    report.checks.map((c) => [c.id, c.status]),
    [
      ['sysctl', 'problem'],
      ['throws', 'error'],
      ['hangs', 'error'],
      ['slow', 'problem'],
    ],
  );
  assert.equal(report.checks.find((c) => c.id === 'throws')?.error, 'cannot parse /proc/self/stat');
  assert.equal(
    report.checks.find((c) => c.id === 'hangs')?.error,
    'did not finish within its 300ms timeout',
  );
  const titles = report.findings.map((f) => `${f.check}: ${f.title}`);
  assert.ok(titles.includes('throws: check throws failed'));
  assert.ok(titles.includes('hangs: check hangs timed out'));
  assert.ok(titles.includes('slow: slow thing'));
  assert.equal(
    report.findings.filter((f) => f.check === 'sysctl').length,
    7,
    "sysctl's findings are untouched",
  );

  // the hung run never settles; later runs are refused instead of piling up
  await eventually(
    () =>
      agent
        .report()
        .checks.find((c) => c.id === 'hangs' && c.error?.includes('has not finished (hung?)')),
    5000,
    'a refused second run',
  );
  assert.equal(
    agent.report().findings.find((f) => f.check === 'hangs')?.title,
    'check hangs is stuck',
  );

  const metrics = (await httpGet(`${url}/metrics`)).body;
  assert.ok(
    (metricValue(metrics, 'node_auditor_check_runs_total', { check: 'throws', result: 'error' }) ??
      0) >= 1,
  );
  assert.ok(
    (metricValue(metrics, 'node_auditor_check_runs_total', { check: 'hangs', result: 'error' }) ??
      0) >= 2,
  );
  assert.equal(
    metricValue(metrics, 'node_auditor_check_runs_total', { check: 'sysctl', result: 'problem' }),
    1,
  );
  assert.equal(
    metricValue(metrics, 'node_auditor_check_runs_total', { check: 'sysctl', result: 'error' }),
    0,
  );
  assert.equal(
    metricValue(metrics, 'node_auditor_problem', {
      check: 'throws',
      problem: 'CheckFailed',
      severity: 'warning',
    }),
    1,
  );
  assert.equal(
    metricValue(metrics, 'node_auditor_sysctl', { key: 'fs.inotify.max_user_watches' }),
    8192,
  );
  assert.equal(
    metricValue(metrics, 'node_auditor_check_last_success_timestamp_seconds', { check: 'throws' }),
    undefined,
  );
  assert.ok(
    (metricValue(metrics, 'node_auditor_check_last_success_timestamp_seconds', {
      check: 'sysctl',
    }) ?? 0) >
      Date.now() / 1000 - 60,
  );

  // scrapes stay fast while a check is hung
  const times: number[] = [];
  for (let i = 0; i < 20; i++) {
    const t0 = performance.now();
    await httpGet(`${url}/metrics`);
    times.push(performance.now() - t0);
    await sleep(5);
  }
  assert.ok(Math.max(...times) < 250, `slowest scrape ${Math.max(...times).toFixed(1)}ms`);
});

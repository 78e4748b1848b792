// The log pipeline in the running agent, end to end: lines appended to a host's syslog become
// an incident, a finding and, while kubelet is down, node_auditor_notready_cause; a restart
// resumes where it stopped (nothing replayed, the incident kept); with kubelet healthy the same
// lines are a finding but not a NotReady cause.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import {
  copyFixtureHost,
  eventually,
  requireTool,
  httpGet,
  metricValue,
  sleep,
  startAgent,
  tempDir,
} from '../helpers.ts';
import type { RunningAgent } from '../helpers.ts';
import { seedLinesNow, syslogStamp } from '../syslogStamp.ts';
import { journalWriter } from '../journalFiles.ts';

const ZONE = 'Asia/Seoul';

/** A port nothing listens on: kubelet's healthz refused, the node NotReady. */
async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function healthyKubelet(t: TestContext): Promise<number> {
  const server = http.createServer((_req, res) => res.end('ok'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  return (server.address() as AddressInfo).port;
}

async function host(t: TestContext, healthzPort: number, journal = false) {
  const root = await copyFixtureHost(t, 'compliant');
  await fs.writeFile(path.join(root, 'etc', 'timezone'), `${ZONE}\n`);
  const state = await tempDir(t);
  const config = path.join(state, 'config.yaml');
  await fs.writeFile(
    config,
    [
      `stateDir: ${state}`,
      'kubernetes:',
      `  kubeletHealthzUrl: http://127.0.0.1:${healthzPort}/healthz`,
      'checks:',
      '  logs:',
      '    files: [/var/log/syslog]',
      journal ? '    journal: {directories: [/var/log/journal]}' : '    journal: {enabled: false}',
      '    kmsg: {enabled: false}',
      '',
    ].join('\n'),
  );
  const syslog = path.join(root, 'var', 'log', 'syslog');
  return {
    root,
    state,
    syslog,
    start: () =>
      startAgent(t, ['--config', config, '--host-root', root], {
        env: { NODE_AUDITOR_STATE_DIR: state },
      }),
  };
}

async function metrics(agent: RunningAgent): Promise<string> {
  return (await httpGet(`${agent.url}/metrics`)).body;
}

interface Finding {
  id: string;
  check: string;
  cause?: string;
  severity: string;
  evidence: string[];
  firstSeen: string;
}

async function logFindings(agent: RunningAgent): Promise<Finding[]> {
  const body = JSON.parse((await httpGet(`${agent.url}/api/v1/findings`)).body) as {
    findings: Finding[];
  };
  return body.findings.filter((f) => f.check === 'logs');
}

const SOURCE = { source: '/var/log/syslog' };
const cause = (name: string) => ({ cause: name });

test('kubelet down: the seed lines appended to syslog name InotifyWatchesExhausted; a restart replays nothing', async (t) => {
  const node = await host(t, await closedPort());
  const agent = await node.start();
  let text = await metrics(agent);
  assert.equal(
    metricValue(text, 'node_auditor_notready_cause', cause('InotifyWatchesExhausted')),
    0,
  );
  assert.equal(
    metricValue(text, 'node_auditor_log_source_state', { ...SOURCE, state: 'following' }),
    1,
  );
  assert.equal(metricValue(text, 'node_auditor_node_ready'), 0);

  const appendedAt = Date.now();
  await fs.appendFile(node.syslog, await seedLinesNow(ZONE));
  text = await eventually(
    async () => {
      const m = await metrics(agent);
      return metricValue(m, 'node_auditor_notready_cause', cause('InotifyWatchesExhausted')) === 1
        ? m
        : undefined;
    },
    10_000,
    'the cause to be attributed',
  );
  assert.equal(metricValue(text, 'node_auditor_log_lines_total', SOURCE), 5);
  for (const rule of [
    'kubelet-inotify-watches-exhausted',
    'kubelet-cadvisor-failed',
    'kubelet-exited',
  ]) {
    assert.ok(
      (metricValue(text, 'node_auditor_log_matches_total', { ...SOURCE, rule }) ?? 0) >= 1,
      rule,
    );
  }
  // One cause at a time: the symptoms (cAdvisor failed, kubelet exited) are not causes here.
  assert.equal(metricValue(text, 'node_auditor_notready_cause', cause('KubeletDown')), 0);

  const [finding, ...others] = await logFindings(agent);
  assert.deepEqual(others, []);
  assert.equal(finding?.cause, 'InotifyWatchesExhausted');
  assert.equal(finding?.severity, 'critical');
  assert.ok(
    finding?.evidence.some((e) => e.includes('Failed to watch directory')) &&
      finding.evidence.some((e) => e.includes('Main process exited, code=exited, status=255')),
    finding?.evidence.join('\n'),
  );
  // The lines' local time (Asia/Seoul, the host's zone) read right: first seen is now.
  assert.ok(
    Math.abs(Date.parse(finding?.firstSeen ?? '') - appendedAt) < 5000,
    `${finding?.firstSeen} vs ${new Date(appendedAt).toISOString()}`,
  );

  // Stop, restart: positions and the incident come back from the state directory.
  assert.equal(await agent.stop(), 0);
  const again = await node.start();
  await sleep(500);
  text = await metrics(again);
  assert.equal(metricValue(text, 'node_auditor_log_lines_total', SOURCE), 0, 'nothing replayed');
  await eventually(
    async () =>
      metricValue(
        await metrics(again),
        'node_auditor_notready_cause',
        cause('InotifyWatchesExhausted'),
      ) === 1 || undefined,
    10_000,
    'the restored incident to be the cause again',
  );
  const [restored] = await logFindings(again);
  assert.equal(restored?.cause, 'InotifyWatchesExhausted');
  await fs.appendFile(
    node.syslog,
    `${syslogStamp(ZONE)} k1-node01 systemd[1]: Started Session 42 of user root.\n`,
  );
  await eventually(
    async () =>
      metricValue(await metrics(again), 'node_auditor_log_lines_total', SOURCE) === 1 || undefined,
    5000,
    'the new line to be read',
  );
});

test('kubelet healthy: the same lines are a finding, but no NotReady cause', async (t) => {
  const node = await host(t, await healthyKubelet(t));
  const agent = await node.start();
  await fs.appendFile(node.syslog, await seedLinesNow(ZONE));
  await eventually(
    async () => ((await logFindings(agent)).length === 1 ? true : undefined),
    10_000,
    'the incident to be a finding',
  );
  const text = await metrics(agent);
  assert.equal(metricValue(text, 'node_auditor_node_ready'), 1);
  assert.equal(
    metricValue(text, 'node_auditor_notready_cause', cause('InotifyWatchesExhausted')),
    0,
  );
});

test('an operator’s rule added to the configuration applies on reload; nothing is read twice', async (t) => {
  const node = await host(t, await healthyKubelet(t));
  const agent = await node.start();
  const panic = `${syslogStamp(ZONE)} k1-node01 billing[4242]: panic: runtime error: invalid memory address\n`;
  await fs.appendFile(node.syslog, panic);
  await eventually(
    async () =>
      metricValue(await metrics(agent), 'node_auditor_log_lines_total', SOURCE) === 1 || undefined,
    5000,
  );
  assert.deepEqual(await logFindings(agent), []);

  const config = await fs.readFile(path.join(node.state, 'config.yaml'), 'utf8');
  await fs.writeFile(
    path.join(node.state, 'config.yaml'),
    config +
      [
        '    rules:',
        '      - id: billing-panic',
        '        title: the billing service panicked',
        '        identifiers: [billing]',
        '        pattern: "^panic: "',
        '        problem: BillingPanic',
        '        severity: warning',
        '',
      ].join('\n'),
  );
  const applied = await agent.waitForLog((l) => l.event === 'config.applied');
  assert.deepEqual(applied.changedChecks, ['logs']);
  await fs.appendFile(node.syslog, panic);
  const [finding] = await eventually(async () => {
    const found = await logFindings(agent);
    return found.length > 0 ? found : undefined;
  }, 10_000);
  assert.equal(finding?.severity, 'warning');
  assert.match(finding?.evidence.join('\n') ?? '', /billing\[4242\]: panic: runtime error/);
  const text = await metrics(agent);
  assert.equal(metricValue(text, 'node_auditor_log_lines_total', SOURCE), 2, 'nothing read twice');
  assert.equal(
    metricValue(text, 'node_auditor_log_matches_total', { ...SOURCE, rule: 'billing-panic' }),
    1,
  );
});

test('the journal: a kubelet entry is read, matched, and the source reports its lag', async (t) => {
  if (requireTool(t, 'journalctl') === undefined) return;
  const write = journalWriter(t);
  if (write === undefined) return;
  const node = await host(t, await healthyKubelet(t), true);
  const dir = path.join(node.root, 'var', 'log', 'journal', '0123456789abcdef0123456789abcdef');
  await fs.mkdir(dir, { recursive: true });
  const file = path.join(dir, 'system.journal');
  await write(file, [{ message: 'journald started', identifier: 'systemd', pid: 1 }]);
  const agent = await node.start();
  await write(file, [
    {
      message:
        'E1122 10:00:00.000000   31100 kubelet.go:2163] "Skipping pod synchronization" err="PLEG is not healthy: pleg was last seen active 3m12.1s ago; threshold is 3m0s"',
      identifier: 'kubelet',
      unit: 'kubelet.service',
      pid: 31100,
    },
  ]);
  const JOURNAL = { source: 'journald' };
  const text = await eventually(
    async () => {
      const m = await metrics(agent);
      return metricValue(m, 'node_auditor_log_source_lag_seconds', JOURNAL) === undefined
        ? undefined
        : m;
    },
    15_000,
    'the journal source to report its lag',
  );
  assert.equal(
    metricValue(text, 'node_auditor_log_source_state', { ...JOURNAL, state: 'following' }),
    1,
  );
  assert.ok((metricValue(text, 'node_auditor_log_lines_total', JOURNAL) ?? 0) >= 1);
  assert.equal(
    metricValue(text, 'node_auditor_log_matches_total', {
      ...JOURNAL,
      rule: 'kubelet-pleg-unhealthy',
    }),
    1,
  );
  const lag = metricValue(text, 'node_auditor_log_source_lag_seconds', JOURNAL) ?? -1;
  assert.ok(lag >= 0 && lag < 5, `lag ${lag} s for an entry read as it was written`);
});

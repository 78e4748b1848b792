// A storm of log lines against the running agent in a cluster: 10,000 kubelet lines saying
// inotify watches are exhausted, appended to the host's syslog in bursts, are one incident, one
// finding and so one Event on the Node: one API call, not thousands, and nothing falls over.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { startFakeKubeApi } from '../kube/fakeKubeApi.ts';
import {
  copyFixtureHost,
  eventually,
  httpGet,
  metricValue,
  sleep,
  startAgent,
  tempDir,
} from '../helpers.ts';
import type { RunningAgent } from '../helpers.ts';
import { seedLinesNow } from '../syslogStamp.ts';

const ZONE = 'Asia/Seoul';
const LINES = 10_000;
const BURSTS = 10;
const SOURCE = { source: '/var/log/syslog' };
const RULE = 'kubelet-inotify-watches-exhausted';

/** The seed's first line (kubelet cannot add an inotify watch), as if logged now. */
async function stormLine(): Promise<string> {
  const line = (await seedLinesNow(ZONE)).split('\n')[0] ?? '';
  assert.match(line, /inotify_add_watch .*: no space left on device$/);
  return line;
}

async function metrics(agent: RunningAgent): Promise<string> {
  return (await httpGet(`${agent.url}/metrics`)).body;
}

/** Until the agent has no Event waiting to be sent (its queue is empty), 10 s at most. */
async function noEventPending(agent: RunningAgent, what: string): Promise<void> {
  await eventually(
    async () =>
      metricValue(await metrics(agent), 'node_auditor_kube_events_pending') === 0
        ? true
        : undefined,
    10_000,
    what,
  );
}

interface Finding {
  check: string;
  cause?: string;
  title: string;
  evidence: string[];
}

async function logFindings(agent: RunningAgent): Promise<Finding[]> {
  const body = JSON.parse((await httpGet(`${agent.url}/api/v1/findings`)).body) as {
    findings: Finding[];
  };
  return body.findings.filter((f) => f.check === 'logs');
}

test('a storm of 10,000 matching log lines in a running agent is one Event on the Node, in one API call', async (t) => {
  const fake = await startFakeKubeApi();
  t.after(() => fake.close());
  const root = await copyFixtureHost(t, 'compliant');
  await fs.mkdir(path.join(root, 'etc'), { recursive: true });
  await fs.writeFile(path.join(root, 'etc', 'timezone'), `${ZONE}\n`);
  const dir = await tempDir(t);
  const kubeconfig = path.join(dir, 'kubeconfig');
  await fake.writeKubeconfig(kubeconfig, 'sa');
  const config = path.join(dir, 'config.yaml');
  await fs.writeFile(
    config,
    [
      'checks:',
      // the recorded API server is v1.26.0, which has known CVEs: not this test's Events
      '  cve: {enabled: false}',
      '  logs:',
      '    files: [/var/log/syslog]',
      '    journal: {enabled: false}',
      '    kmsg: {enabled: false}',
      '',
    ].join('\n'),
  );
  const agent = await startAgent(t, [
    '--config',
    config,
    '--kubeconfig',
    kubeconfig,
    '--node-name',
    'k1-node01',
    '--host-root',
    root,
  ]);
  await agent.waitForLog((l) => l.event === 'kube.on');
  // whatever the first pass had to say has been said before the storm begins
  await noEventPending(agent, 'the first pass to settle');
  await sleep(500);
  const before = fake.requests.length;
  const logsBefore = agent.logs.length;
  const createdBefore =
    metricValue(await metrics(agent), 'node_auditor_kube_events_sent_total', {
      operation: 'create',
    }) ?? 0;

  const burst = `${await stormLine()}\n`.repeat(LINES / BURSTS);
  const syslog = path.join(root, 'var', 'log', 'syslog');
  for (let i = 0; i < BURSTS; i++) {
    await fs.appendFile(syslog, burst);
    await sleep(100);
  }
  // every line read and matched, and the logs check has run since the last one (its finding's
  // evidence counts them all): the agent has had its say about the storm
  await eventually(
    async () => {
      const [finding] = await logFindings(agent);
      return finding?.evidence[0]?.startsWith(`${LINES} matching lines`) === true
        ? true
        : undefined;
    },
    30_000,
    'the storm to be read and reported',
  );
  await noEventPending(agent, 'the Event to be sent');
  await sleep(1000);

  // The bound is one call: the storm is one incident (its lines join the open incident of their
  // group, "node"), so one finding, raised once, so one Event; its later runs change nothing
  // the Event says (reason, type, title), so no further call.
  const calls = fake.requests
    .slice(before)
    .filter((r) => r.path.startsWith('/api/v1/namespaces/default/events'))
    .map((r) => `${r.method} ${r.status}`);
  assert.deepEqual(calls, ['POST 201'], `${calls.length} Events API calls for ${LINES} lines`);

  const events = fake.events().filter((e) => e.reason === 'InotifyWatchesExhausted');
  assert.equal(events.length, 1);
  const [event] = events;
  assert.match(event?.reason ?? '', /^[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]+)+$/, 'PascalCase');
  assert.deepEqual(event?.source, { component: 'node-auditor', host: 'k1-node01' });
  assert.equal(event?.type, 'Warning');
  assert.equal(event?.involvedObject.kind, 'Node');
  assert.equal(event?.involvedObject.name, 'k1-node01');
  assert.equal(event?.involvedObject.uid, fake.getNode('k1-node01').metadata.uid);
  // one incident reported once: the count is of reports, the lines are counted in the finding
  assert.equal(event?.count, 1);
  const [finding] = await logFindings(agent);
  assert.equal(event?.message, finding?.title);
  assert.equal(finding?.cause, 'InotifyWatchesExhausted');

  const text = await metrics(agent);
  assert.equal(metricValue(text, 'node_auditor_log_lines_total', SOURCE), LINES);
  assert.equal(
    metricValue(text, 'node_auditor_log_matches_total', { ...SOURCE, rule: RULE }),
    LINES,
  );
  assert.equal(
    metricValue(text, 'node_auditor_kube_events_sent_total', { operation: 'create' }),
    createdBefore + 1,
  );
  assert.equal(
    metricValue(text, 'node_auditor_kube_events_sent_total', { operation: 'patch' }) ?? 0,
    0,
  );
  for (const reason of ['rate_limited', 'queue_full', 'rejected'])
    assert.equal(
      metricValue(text, 'node_auditor_kube_events_dropped_total', { reason }) ?? 0,
      0,
      reason,
    );

  // nothing fell over: still serving, a clean exit, and no error logged during the storm but
  // the critical finding itself, logged once (the agent's own log is not flooded either)
  assert.equal(agent.process.exitCode, null);
  assert.equal((await httpGet(`${agent.url}/healthz`)).status, 200);
  const during = agent.logs.slice(logsBefore);
  assert.deepEqual(
    during.filter((l) => l.event === 'finding.raised').map((l) => l.cause),
    ['InotifyWatchesExhausted'],
  );
  const errors = during.filter(
    (l) => (l.level === 'error' || l.level === 'fatal') && l.event !== 'finding.raised',
  );
  assert.deepEqual(errors, []);
  assert.equal(await agent.stop(), 0);
});

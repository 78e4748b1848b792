// The real agent against an API server that fails the ways real ones do besides going away:
// answering 500 and 503 for a while, and hanging (connections open, nothing comes back). Local
// checks and /metrics never wait for it, each failure is counted by verb, nothing crashes, and
// the agent is back to normal when the API is.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { startFakeKubeApi } from '../kube/fakeKubeApi.ts';
import type { FakeKubeApi } from '../kube/fakeKubeApi.ts';
import { startTcpProxy } from '../kubernetes/tcpProxy.ts';
import {
  eventually,
  fixtureHost,
  httpGet,
  metricValue,
  sleep,
  startAgent,
  tempDir,
} from '../helpers.ts';
import type { RunningAgent } from '../helpers.ts';

/** The agent with a short lease and request timeout, and the sysctl check every second. */
async function startAgentAgainst(
  t: TestContext,
  fake: FakeKubeApi,
  port = fake.port,
): Promise<RunningAgent> {
  const dir = await tempDir(t);
  const kubeconfig = path.join(dir, 'kubeconfig');
  await fake.writeKubeconfig(kubeconfig, 'sa');
  if (port !== fake.port) {
    const text = await fs.readFile(kubeconfig, 'utf8');
    await fs.writeFile(kubeconfig, text.replace(`127.0.0.1:${fake.port}`, `127.0.0.1:${port}`));
  }
  const agent = await startAgent(
    t,
    [
      '--kubeconfig',
      kubeconfig,
      '--node-name',
      'k1-node01',
      '--host-root',
      fixtureHost('bad-runtime'),
    ],
    {
      env: {
        NODE_AUDITOR_KUBERNETES__REQUEST_TIMEOUT: '1s',
        NODE_AUDITOR_KUBERNETES__LEADER_ELECTION__LEASE_DURATION: '2s',
        NODE_AUDITOR_KUBERNETES__LEADER_ELECTION__RETRY_PERIOD: '500ms',
        NODE_AUDITOR_CHECKS__SYSCTL__INTERVAL: '1s',
        NODE_AUDITOR_CHECKS__CVE__ENABLED: 'false',
      },
    },
  );
  await agent.waitForLog((l) => l.event === 'kube.on');
  return agent;
}

/** That agent once it leads. */
async function agentAgainst(
  t: TestContext,
  fake: FakeKubeApi,
  port = fake.port,
): Promise<RunningAgent> {
  const agent = await startAgentAgainst(t, fake, port);
  await eventually(
    async () => (leader(await scrape(agent)) === 1 ? true : undefined),
    10_000,
    'leadership',
  );
  return agent;
}

async function scrape(agent: RunningAgent): Promise<string> {
  return (await httpGet(`${agent.url}/metrics`)).body;
}

const leader = (m: string) => metricValue(m, 'node_auditor_leader');
const checkRuns = (m: string) =>
  metricValue(m, 'node_auditor_check_runs_total', { check: 'sysctl', result: 'problem' }) ?? 0;
const getErrors = (m: string) =>
  metricValue(m, 'node_auditor_kube_api_errors_total', { verb: 'get' }) ?? 0;

/**
 * While the API misbehaves for `ms`: every scrape answers at once, the local check keeps
 * running, failed GETs are counted, and the leader steps down (it cannot renew).
 */
async function keepsWorking(agent: RunningAgent, ms: number): Promise<void> {
  const before = await scrape(agent);
  let slowest = 0;
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const t0 = Date.now();
    const res = await httpGet(`${agent.url}/metrics`);
    slowest = Math.max(slowest, Date.now() - t0);
    assert.equal(res.status, 200);
    await sleep(200);
  }
  assert.ok(slowest < 1000, `no scrape waits for the API (slowest ${slowest}ms)`);
  const after = await scrape(agent);
  assert.ok(
    checkRuns(after) >= checkRuns(before) + 2,
    `the sysctl check kept running (${checkRuns(before)} -> ${checkRuns(after)})`,
  );
  assert.ok(
    getErrors(after) > getErrors(before),
    `failed GETs counted (${getErrors(before)} -> ${getErrors(after)})`,
  );
  assert.equal(leader(after), 0, 'a leader that cannot renew steps down');
  assert.equal((await httpGet(`${agent.url}/healthz`)).status, 200);
  assert.equal((await httpGet(`${agent.url}/readyz`)).status, 200);
}

/** Leadership comes back and the errors stop growing: the API is used normally again. */
async function recovers(agent: RunningAgent): Promise<void> {
  await eventually(
    async () => (leader(await scrape(agent)) === 1 ? true : undefined),
    15_000,
    'leadership again',
  );
  const settled = getErrors(await scrape(agent));
  await sleep(2000);
  assert.equal(getErrors(await scrape(agent)), settled, 'no more failed GETs');
  assert.equal(agent.process.exitCode, null, 'still running');
  assert.deepEqual(
    agent.logs.filter((l) => l.event?.startsWith('process.') === true),
    [],
    'no unhandled rejection or uncaught exception',
  );
}

test('an API server answering 500, then 503, for a while: local work goes on, errors are counted, then it recovers', async (t) => {
  const fake = await startFakeKubeApi();
  t.after(() => fake.close());
  const agent = await agentAgainst(t, fake);

  let failing: 500 | 503 | undefined = 500;
  // etcd timing out (500), then an API server shutting down (503 with Retry-After)
  fake.failNext(1_000_000, 500, { match: () => failing === 500 });
  fake.failNext(1_000_000, 503, { retryAfterSeconds: 1, match: () => failing === 503 });
  await keepsWorking(agent, 3000);
  failing = 503;
  await keepsWorking(agent, 3000);
  assert.ok(
    fake.requests.some((r) => r.status === 500) && fake.requests.some((r) => r.status === 503),
  );

  failing = undefined;
  await recovers(agent);
});

test('an API server that hangs (connections open, no answer): local work goes on, requests time out and are counted, then it recovers', async (t) => {
  const fake = await startFakeKubeApi();
  t.after(() => fake.close());
  const proxy = await startTcpProxy(fake.port);
  t.after(() => proxy.close());
  const agent = await agentAgainst(t, fake, proxy.port);

  // a black hole: open connections and new ones alike carry nothing
  proxy.stall();
  await keepsWorking(agent, 5000);

  // new connections get through again (the stalled ones stay dead, as behind a bad conntrack)
  proxy.resume();
  await recovers(agent);
});

test('an agent whose ServiceAccount has no rights yet: each part says so once, every refusal is counted, local work goes on', async (t) => {
  // the chart's roles not bound (yet): 403 for the Lease, the Node, the pods, Events
  const fake = await startFakeKubeApi({ rbacFeatures: [] });
  t.after(() => fake.close());
  const agent = await startAgentAgainst(t, fake);
  const leaseTries = () =>
    fake.requests.filter((r) => r.path.includes('/leases/') && r.status === 403).length;
  await eventually(
    () => (leaseTries() >= 4 ? true : undefined),
    20_000,
    'four refused Lease tries',
  );
  const m = await scrape(agent);
  assert.ok(getErrors(m) >= leaseTries(), `refusals counted (${getErrors(m)})`);
  assert.ok(checkRuns(m) >= 2, 'the sysctl check keeps running');
  assert.equal(leader(m), 0);
  // one warning per part for the whole outage, however many retries: the Lease, the two watches
  const warned = (event: string) =>
    agent.logs.filter((l) => l.level === 'warn' && l.event === event).length;
  assert.equal(warned('kube.lease.error'), 1, 'the Lease refusals are one warning');
  assert.equal(warned('kube.watch.failing'), 2, 'the Node and pods watches, one each');
});

// The real agent process against an API server that answers as a real one: findings become
// Events, the node's readiness and the leadership become metrics, NodeConditions are written,
// an outage stops none of the local work, and a restart does not repeat an Event.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { startFakeKubeApi } from '../kube/fakeKubeApi.ts';
import { eventually, fixtureHost, httpGet, metricValue, startAgent, tempDir } from '../helpers.ts';

test('the agent in a cluster: Events, metrics, conditions, an outage and a restart', async (t) => {
  const fake = await startFakeKubeApi();
  t.after(() => fake.close());
  const dir = await tempDir(t);
  const kubeconfig = path.join(dir, 'kubeconfig');
  await fake.writeKubeconfig(kubeconfig, 'sa');
  const env = {
    NODE_AUDITOR_STATE_DIR: path.join(dir, 'state'),
    NODE_AUDITOR_KUBERNETES__NODE_CONDITIONS__ENABLED: 'true',
    NODE_AUDITOR_KUBERNETES__LEADER_ELECTION__LEASE_DURATION: '2s',
    NODE_AUDITOR_KUBERNETES__LEADER_ELECTION__RETRY_PERIOD: '500ms',
    // the recorded API server is v1.26.0, which has known CVEs: their Events are the cve
    // check's tests' business, not this one's
    NODE_AUDITOR_CHECKS__CVE__ENABLED: 'false',
  };
  const args = [
    '--kubeconfig',
    kubeconfig,
    '--node-name',
    'k1-node01',
    '--host-root',
    fixtureHost('bad-runtime'),
  ];
  const agent = await startAgent(t, args, { env });

  const on = await agent.waitForLog((l) => l.event === 'kube.on');
  assert.equal(on.server, fake.url);
  // the seven sysctl findings of the bad-runtime host, one Warning Event each
  await eventually(() => (fake.events().length === 7 ? true : undefined), 10_000, 'seven Events');
  const events = fake.events();
  assert.ok(
    events.every(
      (e) =>
        e.reason === 'SysctlOutOfProfile' &&
        e.type === 'Warning' &&
        e.involvedObject.name === 'k1-node01',
    ),
  );
  assert.ok(
    events.some((e) => e.message === 'fs.inotify.max_user_watches is 8192, needs at least 524288'),
  );
  // NodeConditions are on: the logs check ran and found nothing, so the conditions it speaks
  // for are written False with their healthy reasons; Ready stays the kubelet's
  await eventually(
    () =>
      (fake.getNode('k1-node01').status.conditions ?? []).some((c) => c.type === 'KernelDeadlock')
        ? true
        : undefined,
    10_000,
    'the conditions the logs check speaks for',
  );
  const conditions = fake.getNode('k1-node01').status.conditions ?? [];
  for (const type of [
    'KernelDeadlock',
    'ReadonlyFilesystem',
    'KubeletUnhealthy',
    'InotifyPressure',
  ]) {
    assert.equal(conditions.find((c) => c.type === type)?.status, 'False', type);
  }
  assert.equal(conditions.find((c) => c.type === 'Ready')?.status, 'True');

  const metrics = async () => (await httpGet(`${agent.url}/metrics`)).body;
  await eventually(
    async () => (metricValue(await metrics(), 'node_auditor_leader') === 1 ? true : undefined),
    10_000,
    'leadership',
  );
  const m = await metrics();
  assert.equal(metricValue(m, 'node_auditor_node_ready'), 1);
  assert.equal(metricValue(m, 'node_auditor_kube_watch_healthy', { resource: 'node' }), 1);
  assert.equal(metricValue(m, 'node_auditor_kube_events_sent_total', { operation: 'create' }), 7);
  assert.equal(metricValue(m, 'node_auditor_kube_events_pending'), 0);
  const refused = fake.requests.filter((r) => r.identity === 'sa' && r.status === 403);
  assert.deepEqual(refused, [], 'least privilege, and enough');
  // the ServiceAccount for everything but the apiserver-anonymous probes, which are GETs that
  // carry no credential at all
  const probePaths = new Set([
    '/version',
    '/healthz',
    '/livez',
    '/readyz',
    '/api',
    '/apis',
    '/api/v1/namespaces',
  ]);
  const anonymous = fake.requests.filter((r) => r.identity !== 'sa');
  assert.ok(
    anonymous.every(
      (r) =>
        r.identity === 'anonymous' &&
        r.method === 'GET' &&
        probePaths.has(r.path) &&
        r.authorization === undefined,
    ),
    'the ServiceAccount, or no credential at all for the anonymous probes',
  );
  assert.ok(fake.requests.some((r) => r.identity === 'sa'));

  // the API goes away: the agent keeps serving, counts the failures, keeps the last readiness
  await fake.goDown();
  await eventually(
    async () =>
      (metricValue(await metrics(), 'node_auditor_kube_watch_healthy', { resource: 'node' }) ??
        1) === 0
        ? true
        : undefined,
    10_000,
    'the outage to show',
  );
  const t0 = Date.now();
  const during = await metrics();
  assert.ok(Date.now() - t0 < 1000, 'the scrape does not wait for the API');
  assert.equal((await httpGet(`${agent.url}/healthz`)).status, 200);
  assert.equal(metricValue(during, 'node_auditor_node_ready'), 1);
  const errorsDuring = ['list', 'watch', 'get', 'update', 'patch'].reduce(
    (n, verb) => n + (metricValue(during, 'node_auditor_kube_api_errors_total', { verb }) ?? 0),
    0,
  );
  assert.ok(errorsDuring > 0, 'failures are counted');
  await fake.comeBack();
  await eventually(
    async () =>
      metricValue(await metrics(), 'node_auditor_kube_watch_healthy', { resource: 'node' }) === 1
        ? true
        : undefined,
    20_000,
    'recovery',
  );

  // restart with the same state directory: the same findings, no new Event
  assert.equal(await agent.stop(), 0);
  await eventually(
    () =>
      fake.getLease('node-auditor', 'node-auditor-leader')?.spec.holderIdentity == null
        ? true
        : undefined,
    5000,
    'the lease released on shutdown',
  );
  const posts = () =>
    fake.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/events')).length;
  const postsBefore = posts();
  const again = await startAgent(t, args, { env });
  await again.waitForLog((l) => l.event === 'kube.on');
  await eventually(
    async () =>
      metricValue((await httpGet(`${again.url}/metrics`)).body, 'node_auditor_leader') === 1
        ? true
        : undefined,
    10_000,
    'leadership again',
  );
  assert.equal(posts(), postsBefore, 'no Event created again after the restart');
  assert.equal(fake.events().length, 7);
  assert.ok(
    fake.events().every((e) => e.count === 1),
    'and none counted twice',
  );
  assert.match(
    again.stderr(),
    new RegExp(`^Kubernetes: ${fake.url.replace(/[.]/g, '\\.')} \\(`, 'm'),
  );
});

test('no cluster: one log line says why Kubernetes features are off, and every local check still runs', async (t) => {
  // no --kubeconfig, no KUBECONFIG (startAgent's environment drops it), not in a pod
  const env = {
    KUBERNETES_SERVICE_HOST: '',
    KUBERNETES_SERVICE_PORT: '',
    NODE_AUDITOR_CHECKS__SYSCTL__INTERVAL: '1s',
  };
  const args = ['--node-name', 'k1-node01', '--host-root', fixtureHost('bad-runtime')];
  const agent = await startAgent(t, args, { env });
  const metrics = async () => (await httpGet(`${agent.url}/metrics`)).body;
  // a few passes of the checks later, still one line: it is not repeated per pass or per part
  await eventually(
    async () =>
      (metricValue(await metrics(), 'node_auditor_check_runs_total', {
        check: 'sysctl',
        result: 'problem',
      }) ?? 0) >= 3
        ? true
        : undefined,
    10_000,
    'three passes of the sysctl check',
  );
  const off = agent.logs.filter((l) => l.event === 'kube.off');
  assert.equal(off.length, 1, 'exactly one kube.off line');
  assert.equal(off[0]?.level, 'info', 'a normal way to run, not a warning');
  assert.equal(
    off[0]?.msg,
    'Kubernetes features off: not in a cluster (no ServiceAccount token), no --kubeconfig and no KUBECONFIG',
  );
  assert.deepEqual(
    agent.logs.filter((l) => l.event?.startsWith('kube.') === true && l.event !== 'kube.off'),
    [],
    'nothing else about Kubernetes: no client, no retries',
  );
  assert.match(agent.stderr(), /^Kubernetes: off \(not in a cluster /m);

  // the local checks run and are served as with a cluster
  assert.equal((await httpGet(`${agent.url}/readyz`)).status, 200);
  const served = await httpGet(`${agent.url}/api/v1/findings`);
  assert.equal(served.status, 200);
  const report = JSON.parse(served.body) as {
    node: string;
    checks: { id: string; status: string }[];
    findings: { check: string; id: string }[];
  };
  assert.equal(report.node, 'k1-node01');
  assert.equal(report.checks.find((c) => c.id === 'sysctl')?.status, 'problem');
  assert.equal(
    report.findings.filter((f) => f.check === 'sysctl').length,
    7,
    'the seven sysctl findings of the bad-runtime host',
  );
  const m = await metrics();
  assert.equal(metricValue(m, 'node_auditor_kube_api_errors_total', { verb: 'get' }) ?? 0, 0);
  assert.equal(metricValue(m, 'node_auditor_leader'), 0, 'no leader election, so not the leader');
});

// The Prometheus blocker against a real Prometheus: an alert that is firing blocks, one that is
// pending or not firing does not, and a Prometheus that cannot be asked denies.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { checkPrometheusAlerts } from '../../agent/remediation/gates/blockers.ts';
import type { GateDecision } from '../../agent/remediation/gates/blockers.ts';
import { eventually } from '../helpers.ts';
import { freePort, startPrometheus } from '../realDaemons.ts';

function reasonOf(decision: GateDecision): string {
  if (decision.allowed) assert.fail('expected a denial');
  return decision.reason;
}

/** A port nothing listens on (bound, then closed). */
const RULES = `groups:
  - name: remediation-blockers
    interval: 1s
    rules:
      - alert: ClusterInTrouble
        expr: vector(1)
        for: 0s
        labels: { severity: critical, team: platform }
      - alert: NeverFires
        expr: vector(1) == 2
        labels: { severity: critical }
      - alert: StillPending
        expr: vector(1)
        for: 1h
        labels: { severity: critical }
`;

/** Prometheus on 127.0.0.1 with the rules above, once ClusterInTrouble is firing. */
async function startAlertingPrometheus(t: TestContext): Promise<string | undefined> {
  const prometheus = await startPrometheus(
    t,
    'global:\n  evaluation_interval: 1s\nrule_files:\n  - rules.yml\n',
    { 'rules.yml': RULES },
  );
  if (prometheus === undefined) return undefined;
  const { url, stderr } = prometheus;
  await eventually(
    async () => {
      if (stderr().startsWith('exited')) throw new Error(`prometheus ${stderr()}`);
      try {
        const res = await fetch(`${url}/api/v1/alerts`);
        const body = (await res.json()) as { data?: { alerts?: { state: string }[] } };
        return body.data?.alerts?.some((a) => a.state === 'firing') === true ? true : undefined;
      } catch {
        return undefined; // not listening yet
      }
    },
    30_000,
    'the alert to fire in Prometheus',
  );
  return url;
}

test('a configured firing alert blocks; pending, not firing and other alerts do not', async (t) => {
  const url = await startAlertingPrometheus(t);
  if (url === undefined) return;
  assert.equal(
    reasonOf(await checkPrometheusAlerts({ url, alerts: [{ name: 'ClusterInTrouble' }] })),
    `Prometheus alert "ClusterInTrouble" is firing (${url})`,
  );
  // label matchers narrow the selection
  assert.equal(
    (
      await checkPrometheusAlerts({
        url,
        alerts: [{ name: 'ClusterInTrouble', labels: { team: 'platform' } }],
      })
    ).allowed,
    false,
  );
  assert.deepEqual(
    await checkPrometheusAlerts({
      url,
      alerts: [{ name: 'ClusterInTrouble', labels: { team: 'storage' } }],
    }),
    { allowed: true },
  );
  // StillPending is active but its `for: 1h` has not elapsed: pending does not block
  const raw = (await (await fetch(`${url}/api/v1/alerts`)).json()) as {
    data: { alerts: { labels: { alertname: string }; state: string }[] };
  };
  assert.equal(
    raw.data.alerts.find((a) => a.labels.alertname === 'StillPending')?.state,
    'pending',
  );
  assert.deepEqual(
    await checkPrometheusAlerts({
      url,
      alerts: [{ name: 'NeverFires' }, { name: 'StillPending' }],
    }),
    { allowed: true },
  );
  // a base URL with a trailing slash works the same
  assert.equal(
    (await checkPrometheusAlerts({ url: `${url}/`, alerts: [{ name: 'ClusterInTrouble' }] }))
      .allowed,
    false,
  );
});

test('a Prometheus that cannot be asked denies: unreachable, not Prometheus, bad settings', async (t) => {
  const url = await startAlertingPrometheus(t);
  if (url === undefined) return;
  const down = `http://127.0.0.1:${await freePort()}`;
  assert.match(
    reasonOf(await checkPrometheusAlerts({ url: down, alerts: [{ name: 'NeverFires' }] })),
    new RegExp(`^cannot decide: cannot read alerts from ${down}/api/v1/alerts: .*ECONNREFUSED`),
  );
  // a path Prometheus does not serve answers 404
  assert.equal(
    reasonOf(
      await checkPrometheusAlerts({ url: `${url}/not-here`, alerts: [{ name: 'NeverFires' }] }),
    ),
    `cannot decide: cannot read alerts from ${url}/not-here/api/v1/alerts: HTTP 404`,
  );
  assert.match(
    reasonOf(
      await checkPrometheusAlerts({
        url: url.replace('http://', 'http://admin:secret@'),
        alerts: [{ name: 'NeverFires' }],
      }),
    ),
    /^cannot decide: the Prometheus URL must not contain a user name or password$/,
  );
  assert.match(reasonOf(await checkPrometheusAlerts({ url, alerts: [] })), /no alert names/);
  assert.match(
    reasonOf(
      await checkPrometheusAlerts({ url, alerts: [{ name: 'NeverFires' }], maxBodyBytes: 10 }),
    ),
    /answer larger than 10 bytes/,
  );
});

test('a Prometheus that does not answer in time denies within the timeout', async (t) => {
  // a listener that accepts and never answers (a wedged proxy)
  const sockets: net.Socket[] = [];
  const server = net.createServer((socket) => sockets.push(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  const started = Date.now();
  assert.match(
    reasonOf(
      await checkPrometheusAlerts({ url, alerts: [{ name: 'NeverFires' }], timeoutMs: 300 }),
    ),
    /^cannot decide: cannot read alerts from .*: no answer within 300ms$/,
  );
  assert.ok(Date.now() - started < 2000);
});

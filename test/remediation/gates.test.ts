// The remediation gates other than the lock: the storm guard and the control-plane blocker
// against the test API server, the rate limit on real files, the maintenance window at real
// instants in real time zones.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { getTasks } from 'node-cron';
import type { GateDecision } from '../../agent/remediation/gates/blockers.ts';
import { checkControlPlane, controlPlaneDecision } from '../../agent/remediation/gates/blockers.ts';
import {
  MaintenanceWindow,
  checkMaintenanceWindow,
  validateMaintenanceWindow,
} from '../../agent/remediation/gates/maintenanceWindow.ts';
import {
  REMEDIATION_HISTORY_FILE,
  RemediationRateLimit,
} from '../../agent/remediation/gates/rateLimit.ts';
import { checkStormGuard, stormDecision } from '../../agent/remediation/gates/stormGuard.ts';
import { KubeApiError, listPages } from '../../agent/kubernetes/kubeApi.ts';
import { tempDir } from '../helpers.ts';
import { forbidden, harness } from '../kubernetes/kubeHarness.ts';

function reasonOf(decision: GateDecision): string {
  if (decision.allowed) assert.fail('expected a denial');
  return decision.reason;
}

// ---------------------------------------------------------------------------------------------
// Storm guard
// ---------------------------------------------------------------------------------------------

const TEN_NODES = Array.from({ length: 10 }, (_, i) => `k1-node${String(i + 1).padStart(2, '0')}`);

test('storm guard: "more than 20%" means 2 of 10 NotReady nodes allowed, 3 of 10 denied', async (t) => {
  const h = await harness(t, { nodes: TEN_NODES });
  const guard = { api: h.api, maxUnhealthyShare: 0.2, pageSize: 3 };
  assert.deepEqual(await checkStormGuard(guard), { allowed: true });

  h.fake.setNodeReady('k1-node03', false); // Ready=False
  h.fake.updateNode('k1-node07', (node) => {
    // a kubelet that stopped posting: the node controller sets Unknown
    const ready = node.status.conditions?.find((c) => c.type === 'Ready');
    if (ready !== undefined) ready.status = 'Unknown';
  });
  assert.deepEqual(await checkStormGuard(guard), { allowed: true }, '2 of 10 is exactly 20%');

  h.fake.updateNode('k1-node10', (node) => {
    node.status.conditions = []; // a node that never reported: not known to be Ready
  });
  assert.equal(
    reasonOf(await checkStormGuard(guard)),
    '3 of 10 nodes (30%) are NotReady (k1-node03, k1-node07, k1-node10), over the 20% storm guard',
  );
  // every node was seen, over several pages
  const lists = h.fake.requests.filter((r) => r.path === '/api/v1/nodes');
  assert.ok(lists.some((r) => r.query.get('continue') !== null));
  assert.ok(lists.every((r) => r.query.get('limit') === '3'));
  assert.deepEqual(forbidden(h.fake), [], 'list nodes is all it needs');

  // exactly at a configured 30%: allowed
  assert.deepEqual(await checkStormGuard({ ...guard, maxUnhealthyShare: 0.3 }), {
    allowed: true,
  });
});

test('storm guard: an API that cannot be read denies', async (t) => {
  const h = await harness(t, { nodes: TEN_NODES });
  h.fake.failNext(1, 503);
  assert.match(
    reasonOf(await checkStormGuard({ api: h.api, maxUnhealthyShare: 0.2 })),
    /^cannot decide: cannot list nodes: list \/api\/v1\/nodes: 503 /,
  );
  await h.fake.goDown();
  assert.match(
    reasonOf(await checkStormGuard({ api: h.api, maxUnhealthyShare: 0.2 })),
    /^cannot decide: cannot list nodes: /,
  );
});

test("storm guard: nodes are counted page by page (listPages' onPage), none kept; a continue token etcd compacted fails the list", async (t) => {
  const h = await harness(t, { nodes: TEN_NODES });
  const pages: string[][] = [];
  const list = await listPages<{ metadata: { name: string } }>(h.api, {
    path: '/api/v1/nodes',
    pageSize: 3,
    onPage: (nodes) => pages.push(nodes.map((n) => n.metadata.name)),
  });
  assert.deepEqual(
    pages.map((p) => p.length),
    [3, 3, 3, 1],
  );
  assert.deepEqual(pages.flat(), TEN_NODES);
  assert.deepEqual(list.items, [], 'handed over, not kept');

  // etcd compacts the first page's revision before the second is asked for (a list that took
  // longer than etcd's compaction interval): the API server answers 410 Expired
  const seen: number[] = [];
  const expired = await listPages(h.api, {
    path: '/api/v1/nodes',
    pageSize: 3,
    onPage: (nodes) => {
      seen.push(nodes.length);
      h.fake.compactAll();
    },
  }).then(
    () => undefined,
    (error: unknown) => error,
  );
  assert.ok(expired instanceof KubeApiError, String(expired));
  assert.equal(expired.status, 410);
  assert.equal(expired.reason, 'Expired');
  assert.match(expired.message, /The provided continue parameter is too old/);
  assert.deepEqual(seen, [3], 'no page after the expired one');
});

test('storm guard: a continue token that expires between two pages denies, whatever the pages read so far said', async (t) => {
  const h = await harness(t, { nodes: TEN_NODES });
  // the first page's three nodes are Ready, the other seven NotReady: part of the list allows
  for (const node of TEN_NODES.slice(3)) h.fake.setNodeReady(node, false);
  // etcd compacts the list's revision while the second page is on its way
  h.fake.setLatency(200);
  const compact = setInterval(() => {
    if (!h.fake.requests.some((r) => r.path === '/api/v1/nodes')) return;
    clearInterval(compact);
    h.fake.compactAll();
  }, 5);
  t.after(() => {
    clearInterval(compact);
  });
  assert.match(
    reasonOf(await checkStormGuard({ api: h.api, maxUnhealthyShare: 0.2, pageSize: 3 })),
    /^cannot decide: cannot list nodes: list \/api\/v1\/nodes: 410 .*The provided continue parameter is too old/,
  );
  assert.deepEqual(
    h.fake.requests.filter((r) => r.path === '/api/v1/nodes').map((r) => r.status),
    [200, 410],
  );
});

test('storm guard decisions: names are bounded, nonsense denies', () => {
  const notReady = Array.from({ length: 8 }, (_, i) => `n${i}`);
  assert.equal(
    reasonOf(stormDecision({ total: 8, notReady }, 0.5)),
    '8 of 8 nodes (100%) are NotReady (n0, n1, n2, n3, n4 and 3 more), over the 50% storm guard',
  );
  assert.equal(
    reasonOf(stormDecision({ total: 3, notReady: ['n0'] }, 0.2)),
    '1 of 3 nodes (33.3%) is NotReady (n0), over the 20% storm guard',
  );
  assert.match(reasonOf(stormDecision({ total: 0, notReady: [] }, 0.2)), /^cannot decide: /);
  assert.match(reasonOf(stormDecision({ total: 5, notReady: [] }, 1.5)), /^cannot decide: /);
  assert.deepEqual(stormDecision({ total: 5, notReady: [] }, 0), { allowed: true });
  // at the boundary, where share * total is not a whole number in floating point
  const fiftySeven = Array.from({ length: 57 }, (_, i) => `n${i}`);
  assert.deepEqual(stormDecision({ total: 100, notReady: fiftySeven }, 0.57), { allowed: true });
  assert.equal(stormDecision({ total: 100, notReady: [...fiftySeven, 'x'] }, 0.57).allowed, false);
  assert.equal(stormDecision({ total: 5, notReady: ['n0'] }, 0).allowed, false);
});

// ---------------------------------------------------------------------------------------------
// Rate limit
// ---------------------------------------------------------------------------------------------

const MIN = 60_000;
const T0 = Date.parse('2025-06-02T10:00:00Z');

test('rate limit: the 4th action in an hour is denied, also after a restart, until the hour rolls', async (t) => {
  const stateDir = path.join(await tempDir(t), 'state'); // created on first write
  const clock = { now: T0 };
  const limit = () =>
    new RemediationRateLimit({ stateDir, maxActionsPerHour: 3, now: () => clock.now });
  const first = limit();
  for (const action of ['inotify-limits', 'kernel-networking', 'restart-kubelet']) {
    assert.deepEqual(await first.check(action), { allowed: true }, action);
    await first.record(action);
    clock.now += MIN;
  }
  assert.equal(
    reasonOf(await first.check('inotify-limits')),
    '3 remediation actions ran on this node in the last hour, the limit is 3 (the next is allowed in 57 min)',
  );
  // the agent restarts: a new instance on the same stateDir
  const second = limit();
  assert.match(reasonOf(await second.check('inotify-limits')), /the limit is 3/);
  clock.now = T0 + 60 * MIN - 1;
  assert.equal((await second.check('inotify-limits')).allowed, false, 'one ms before the hour');
  clock.now = T0 + 60 * MIN;
  assert.deepEqual(await second.check('inotify-limits'), { allowed: true });

  // the file is complete JSON, with no temporary file left beside it
  assert.deepEqual(await fs.readdir(stateDir), [REMEDIATION_HISTORY_FILE]);
  const doc = JSON.parse(
    await fs.readFile(path.join(stateDir, REMEDIATION_HISTORY_FILE), 'utf8'),
  ) as { version: number; actions: { action: string }[] };
  assert.equal(doc.version, 1);
  assert.deepEqual(
    doc.actions.map((a) => a.action),
    ['inotify-limits', 'kernel-networking', 'restart-kubelet'],
  );
});

test('rate limit: a cooldown per action; dry runs are counted apart from real actions', async (t) => {
  const stateDir = await tempDir(t);
  const clock = { now: T0 };
  const limit = new RemediationRateLimit({
    stateDir,
    maxActionsPerHour: 3,
    cooldownsMs: { 'restart-kubelet': 30 * MIN },
    now: () => clock.now,
  });
  await limit.record('restart-kubelet');
  clock.now += 10 * MIN;
  assert.equal(
    reasonOf(await limit.check('restart-kubelet')),
    'restart-kubelet ran 10 min ago and its cooldown is 30 min (allowed again in 20 min)',
  );
  assert.deepEqual(await limit.check('inotify-limits'), { allowed: true }, 'other actions');
  assert.deepEqual(
    await limit.check('restart-kubelet', { dryRun: true }),
    { allowed: true },
    'a real restart does not hold back the dry run',
  );
  // the cooldown after a dry run says so, and that it is only the dry run standing
  await limit.record('restart-kubelet', { dryRun: true });
  clock.now += 2 * MIN;
  assert.deepEqual(await limit.check('restart-kubelet', { dryRun: true }), {
    allowed: false,
    reason:
      'restart-kubelet was dry-run 2 min ago and its cooldown is 30 min (allowed again in 28 min)',
    dryRunStands: true,
  });
  for (let i = 0; i < 2; i++) await limit.record('inotify-limits', { dryRun: true });
  assert.match(
    reasonOf(await limit.check('inotify-limits', { dryRun: true })),
    /^3 remediation actions were dry-run on this node in the last hour, the limit is 3 /,
  );
  assert.deepEqual(await limit.check('inotify-limits'), { allowed: true }, 'dry runs do not count');
  clock.now = T0 + 30 * MIN;
  assert.deepEqual(await limit.check('restart-kubelet'), { allowed: true });
});

test('rate limit: an unreadable or corrupt history denies and says which file', async (t) => {
  const stateDir = await tempDir(t);
  const file = path.join(stateDir, REMEDIATION_HISTORY_FILE);
  const limit = new RemediationRateLimit({ stateDir, maxActionsPerHour: 3 });
  const bad: [string, string][] = [
    ['{"version":1,"actions":[{"action":"x","at":"2025-06', 'not JSON'], // a torn write
    ['', 'not JSON'],
    ['{"version":2,"actions":[]}', 'not version 1'],
    ['{"version":1,"actions":[{"action":"x","at":"yesterday"}]}', 'entry 0 has no action'],
  ];
  for (const [content, why] of bad) {
    await fs.writeFile(file, content);
    const reason = reasonOf(await limit.check('inotify-limits'));
    assert.ok(reason.startsWith(`cannot decide: the remediation history ${file} is not valid`));
    assert.ok(reason.includes(why), reason);
    await assert.rejects(limit.record('inotify-limits'), /is not valid/);
    assert.equal(await fs.readFile(file, 'utf8'), content, 'a bad file is left for the operator');
  }
  await fs.rm(file);
  await fs.mkdir(file); // not a file at all
  assert.match(reasonOf(await limit.check('x')), /^cannot decide: .* cannot be read \(is a dir/);
});

test('rate limit: entries from a clock that went back count as now, once', async (t) => {
  const stateDir = await tempDir(t);
  const clock = { now: T0 + 365 * 24 * 60 * MIN };
  const limit = new RemediationRateLimit({ stateDir, maxActionsPerHour: 1, now: () => clock.now });
  await limit.record('inotify-limits');
  clock.now = T0; // the clock jumped back a year
  assert.match(reasonOf(await limit.check('inotify-limits')), /limit is 1/);
  clock.now = T0 + 60 * MIN;
  assert.deepEqual(await limit.check('inotify-limits'), { allowed: true }, 'blocked one hour only');
});

// ---------------------------------------------------------------------------------------------
// Maintenance window
// ---------------------------------------------------------------------------------------------

const at = (iso: string) => new Date(iso);

test('window: 02:00-04:59 on weekdays in Berlin, at instants in winter and summer time', async (t) => {
  const berlin = await MaintenanceWindow.create({
    schedule: '* 2-4 * * 1-5',
    timeZone: 'Europe/Berlin',
  });
  t.after(() => {
    berlin.close();
  });
  // Monday 13 January 2025, CET (UTC+1)
  assert.equal(berlin.isOpen(at('2025-01-13T00:59:59Z')), false, '01:59:59 Berlin');
  assert.equal(berlin.isOpen(at('2025-01-13T01:00:00Z')), true, '02:00 Berlin');
  assert.equal(berlin.isOpen(at('2025-01-13T01:00:59.999Z')), true, 'the whole minute');
  assert.equal(berlin.isOpen(at('2025-01-13T03:59:30Z')), true, '04:59:30 Berlin');
  assert.equal(berlin.isOpen(at('2025-01-13T04:00:00Z')), false, '05:00 Berlin');
  // Monday 14 July 2025, CEST (UTC+2): the same wall time is another instant
  assert.equal(berlin.isOpen(at('2025-07-14T00:30:00Z')), true, '02:30 Berlin summer');
  assert.equal(berlin.isOpen(at('2025-07-14T02:59:00Z')), true, '04:59 Berlin summer');
  assert.equal(berlin.isOpen(at('2025-07-14T03:00:00Z')), false, '05:00 Berlin summer');
  // Saturday 02:30 Berlin is closed; it says when the window next opens
  assert.deepEqual(berlin.check(at('2025-01-13T02:30:00Z')), { allowed: true });
  assert.equal(
    reasonOf(berlin.check(at('2025-01-18T01:30:00Z'))),
    'outside the maintenance window "* 2-4 * * 1-5" (Europe/Berlin); it next opens at ' +
      'Mon 2025-01-20 02:00 Europe/Berlin (2025-01-20T01:00:00Z)',
  );
  assert.match(
    reasonOf(berlin.check(at('2025-07-14T03:00:00Z'))),
    /next opens at Tue 2025-07-15 02:00 Europe\/Berlin \(2025-07-15T00:00:00Z\)$/,
  );

  // the same expression in New York: another set of instants
  const newYork = await MaintenanceWindow.create({
    schedule: '* 2-4 * * 1-5',
    timeZone: 'America/New_York',
  });
  t.after(() => {
    newYork.close();
  });
  assert.equal(newYork.isOpen(at('2025-01-13T07:30:00Z')), true, '02:30 EST');
  assert.equal(berlin.isOpen(at('2025-01-13T07:30:00Z')), false, '08:30 in Berlin');
  assert.equal(newYork.isOpen(at('2025-01-13T01:30:00Z')), false, 'Sunday 20:30 EST');
  assert.equal(newYork.isOpen(at('2025-07-14T06:30:00Z')), true, '02:30 EDT');
});

test('window: DST nights follow the wall clock', async (t) => {
  const twoAm = await MaintenanceWindow.create({
    schedule: '* 2 * * *',
    timeZone: 'Europe/Berlin',
  });
  t.after(() => {
    twoAm.close();
  });
  // 30 March 2025: 02:00 CET jumps to 03:00 CEST, there is no 02:xx that night
  assert.equal(twoAm.isOpen(at('2025-03-30T01:00:00Z')), false, '03:00 CEST');
  assert.equal(
    twoAm.nextOpening(at('2025-03-29T23:00:00Z'))?.toISOString(),
    '2025-03-31T00:00:00.000Z',
    'from 00:00 on the short night: the next 02:00 is a day later',
  );
  // skipping whole days across the 23-hour day must not jump over the next day's first hour
  const afterShortDay = await MaintenanceWindow.create({
    schedule: '* 0 31 3 *',
    timeZone: 'Europe/Berlin',
  });
  t.after(() => {
    afterShortDay.close();
  });
  assert.equal(
    afterShortDay.nextOpening(at('2025-03-29T23:00:00Z'))?.toISOString(),
    '2025-03-30T22:00:00.000Z',
    '00:00 CEST on 31 March',
  );
  // 26 October 2025: 03:00 CEST falls back to 02:00 CET, 02:xx happens twice
  assert.equal(twoAm.isOpen(at('2025-10-26T00:30:00Z')), true, '02:30 CEST');
  assert.equal(twoAm.isOpen(at('2025-10-26T01:30:00Z')), true, '02:30 CET');
  assert.equal(twoAm.isOpen(at('2025-10-26T02:30:00Z')), false, '03:30 CET');
});

test('window: the next opening is found quickly even a year ahead, or said to be beyond it', async (t) => {
  const leapDay = await MaintenanceWindow.create({ schedule: '30 3 29 2 *', timeZone: 'UTC' });
  t.after(() => {
    leapDay.close();
  });
  let started = performance.now();
  assert.equal(
    leapDay.nextOpening(at('2027-03-01T00:00:00Z'))?.toISOString(),
    '2028-02-29T03:30:00.000Z',
  );
  assert.ok(performance.now() - started < 250, 'no minute-by-minute walk over a year');
  started = performance.now();
  assert.match(
    reasonOf(leapDay.check(at('2025-03-01T00:00:00Z'))),
    /; it does not open within the next 366 days$/,
  );
  assert.ok(performance.now() - started < 250);
});

test('window: none configured is open; a bad setting denies and says why', async () => {
  const tasksBefore = getTasks().size;
  assert.deepEqual(await checkMaintenanceWindow(undefined), { allowed: true });
  assert.deepEqual(
    await checkMaintenanceWindow({ schedule: '0-59 * * * *' }, at('2025-01-01T00:00:00Z')),
    { allowed: true },
  );
  assert.match(
    reasonOf(await checkMaintenanceWindow({ schedule: '* 2 * * *' }, at('2025-01-01T03:00:00Z'))),
    /\(UTC\); it next opens at Thu 2025-01-02 02:00 UTC/,
  );
  assert.match(
    reasonOf(await checkMaintenanceWindow({ schedule: '0 * 2 * * *' })),
    /^cannot decide: maintenance window "0 \* 2 \* \* \*" must have five fields/,
  );
  assert.match(
    reasonOf(await checkMaintenanceWindow({ schedule: '* 2 * * *', timeZone: 'Europe/Berlln' })),
    /^cannot decide: "Europe\/Berlln" is not an IANA time zone/,
  );
  assert.match(
    reasonOf(await checkMaintenanceWindow({ schedule: '* 25 * * *' })),
    /^cannot decide: invalid cron expression "\* 25 \* \* \*"/,
  );
  assert.equal(
    await validateMaintenanceWindow({ schedule: '@daily' }),
    'maintenance window "@daily" must have five fields (minute hour day-of-month month day-of-week)',
  );
  assert.equal(getTasks().size, tasksBefore, "no task left in node-cron's registry");
});

// ---------------------------------------------------------------------------------------------
// Control-plane blocker
// ---------------------------------------------------------------------------------------------

test('control-plane nodes are skipped unless allowed; workers are not', async (t) => {
  const h = await harness(t, { nodes: ['k1-cp01', 'k1-master01', 'k1-node01'] });
  h.fake.updateNode('k1-cp01', (node) => {
    node.metadata.labels = { ...node.metadata.labels, 'node-role.kubernetes.io/control-plane': '' };
  });
  h.fake.updateNode('k1-master01', (node) => {
    node.metadata.labels = { ...node.metadata.labels, 'node-role.kubernetes.io/master': '' };
  });
  const gate = (nodeName: string, allowControlPlane = false) =>
    checkControlPlane({ api: h.api, nodeName, allowControlPlane });
  assert.equal(
    reasonOf(await gate('k1-cp01')),
    'k1-cp01 is a control-plane node (label node-role.kubernetes.io/control-plane) and remediation of control-plane nodes is not allowed',
  );
  assert.match(reasonOf(await gate('k1-master01')), /label node-role.kubernetes.io\/master/);
  assert.deepEqual(await gate('k1-node01'), { allowed: true });
  assert.deepEqual(await gate('k1-cp01', true), { allowed: true });
  assert.match(reasonOf(await gate('k1-gone')), /^cannot decide: Node k1-gone is not in the API/);
  assert.deepEqual(
    forbidden(h.fake),
    [],
    'a list by field selector is allowed, a get is not needed',
  );
  assert.match(reasonOf(controlPlaneDecision('k1-node01', undefined, false)), /^cannot decide/);
  const cpLabels = { 'node-role.kubernetes.io/control-plane': '' };
  assert.deepEqual(controlPlaneDecision('k1-cp01', cpLabels, true), { allowed: true });
  assert.equal(controlPlaneDecision('k1-cp01', cpLabels, false).allowed, false);
  await h.fake.goDown();
  assert.match(reasonOf(await gate('k1-node01')), /^cannot decide: list \/api\/v1\/nodes: /);
});

// Leader election between agents, against an API server with optimistic concurrency.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import pino from 'pino';
import type { Logger } from 'pino';
import { openKubeAccess } from '../../agent/kubernetes/kubeAccess.ts';
import type { KubeAccess } from '../../agent/kubernetes/kubeAccess.ts';
import { LeaderLease } from '../../agent/kubernetes/leaderLease.ts';
import { KubeApi } from '../../agent/kubernetes/kubeApi.ts';
import type { RequestOptions, Verb } from '../../agent/kubernetes/kubeApi.ts';
import { eventually, sleep } from '../helpers.ts';
import { clientVia, forbidden, harness, silent } from './kubeHarness.ts';
import type { Harness } from './kubeHarness.ts';
import { startTcpProxy } from './tcpProxy.ts';

function agent(
  api: KubeApi,
  identity: string,
  leaseDurationMs = 2000,
  retryMs = 200,
  log: Logger = silent,
) {
  /** Every leadership change reported, as the agent turns them into node_auditor_leader. */
  const changes: boolean[] = [];
  const lease = new LeaderLease({
    api,
    namespace: 'node-auditor',
    name: 'node-auditor-leader',
    identity,
    leaseDurationMs,
    retryMs,
    log,
    onChange: (leader) => changes.push(leader),
  });
  const abort = new AbortController();
  const task = lease.run(abort.signal);
  let outcome: 'running' | 'returned' | 'threw' = 'running';
  task.then(
    () => (outcome = 'returned'),
    () => (outcome = 'threw'),
  );
  return {
    api,
    lease,
    identity,
    changes,
    /** Whether run() is still going (it must neither return nor throw before it is stopped). */
    outcome: () => outcome,
    /** The process dies: the loop stops, nothing is released. */
    crash: () => {
      abort.abort();
    },
    /** A clean shutdown, in the order the agent does it. */
    async shutdown() {
      abort.abort();
      await task;
      await lease.release();
    },
  };
}

const LEASE_PATH =
  '/apis/coordination.k8s.io/v1/namespaces/node-auditor/leases/node-auditor-leader';

const storedLease = (h: Harness) => h.fake.getLease('node-auditor', 'node-auditor-leader');
const holder = (h: Harness) => storedLease(h)?.spec.holderIdentity;

/** Another agent's client: its own kubeconfig, its own connections (straight to the API server). */
async function ownClient(t: TestContext, h: Harness, name: string): Promise<KubeApi> {
  const api = await clientVia(h, h.fake.port, name);
  t.after(() => {
    api.close();
  });
  return api;
}

/**
 * An agent's own client whose Lease updates first wait at a gate: two candidates that read the
 * same Lease then send their updates together, as two agents polling in step do.
 */
class GatedClient extends KubeApi {
  /** Verbs of the requests this client sent, in order. */
  readonly sent: Verb[] = [];
  private readonly gate: () => Promise<void>;

  constructor(access: KubeAccess, gate: () => Promise<void>) {
    super(access, { timeoutMs: 3000 });
    this.gate = gate;
  }

  override async request<T = Record<string, unknown>>(options: RequestOptions): Promise<T> {
    if (options.verb === 'update' && options.path === LEASE_PATH) await this.gate();
    this.sent.push(options.verb);
    return super.request<T>(options);
  }
}

/** Opens once `parties` callers wait at it (or after timeoutMs, so a test cannot hang on it). */
function barrier(parties: number, timeoutMs: number): () => Promise<void> {
  let arrived = 0;
  let open = () => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  const timer = setTimeout(open, timeoutMs);
  return async () => {
    arrived += 1;
    if (arrived >= parties) {
      clearTimeout(timer);
      open();
    }
    await opened;
  };
}

/** JSON log lines of one agent. */
function capturingLog(): { log: Logger; lines: { event?: string; level: number }[] } {
  const lines: { event?: string; level: number }[] = [];
  const log = pino(
    { level: 'info' },
    {
      write: (line: string) => {
        lines.push(JSON.parse(line) as { event?: string; level: number });
      },
    },
  );
  return { log, lines };
}

test('one leader at a time; a crashed leader is replaced after the lease duration; a released one at once', async (t) => {
  const h = await harness(t);
  // two agents, as on two nodes: each its own client and identity
  const a = agent(await ownClient(t, h, 'a'), 'k1-node01_a');
  const b = agent(await ownClient(t, h, 'b'), 'k1-node02_b');
  t.after(() => {
    a.crash();
    b.crash();
  });
  await eventually(
    () => (a.lease.isLeader !== b.lease.isLeader ? true : undefined),
    5000,
    'a leader',
  );
  const [leader, follower] = a.lease.isLeader ? [a, b] : [b, a];
  assert.equal(holder(h), leader.identity);
  assert.match(
    String(h.fake.getLease('node-auditor', 'node-auditor-leader')?.spec.renewTime),
    /\.\d{6}Z$/,
    'MicroTime with six digits',
  );
  const acquired = storedLease(h)?.spec.acquireTime;
  const transitions = storedLease(h)?.spec.leaseTransitions ?? 0;

  // the leader's process is killed: its loop and its connections are gone, nothing is released
  const crashedAt = Date.now();
  leader.crash();
  leader.api.close();
  assert.equal(holder(h), leader.identity, 'a killed holder does not release');
  await eventually(() => (follower.lease.isLeader ? true : undefined), 6000, 'the takeover');
  const tookOver = Date.now() - crashedAt;
  assert.ok(tookOver >= 1500, `not before the lease ran out (${tookOver}ms)`);
  // the lease duration, plus a retry period (with jitter) to see the last renewal and one to see
  // it expired, plus slack for a loaded machine
  assert.ok(tookOver < 4000, `soon after the lease ran out (${tookOver}ms)`);
  assert.equal(leader.lease.isLeader, false, 'the old holder had stepped down by then');
  assert.equal(holder(h), follower.identity);
  assert.equal(h.fake.getLease('node-auditor', 'node-auditor-leader')?.spec.leaseTransitions, 1);
  assert.equal(storedLease(h)?.spec.leaseTransitions, transitions + 1);
  assert.notEqual(storedLease(h)?.spec.acquireTime, acquired, 'a new acquireTime');
  assert.deepEqual(follower.changes, [true]);
  assert.deepEqual(leader.changes, [true, false]);

  const c = agent(await ownClient(t, h, 'c'), 'k1-node03_c');
  t.after(() => {
    c.crash();
  });
  const releasedAt = Date.now();
  await follower.shutdown();
  await eventually(() => (c.lease.isLeader ? true : undefined), 5000, 'the successor');
  assert.ok(Date.now() - releasedAt < 1500, 'no wait for the lease to run out');
  assert.deepEqual(forbidden(h.fake), [], 'get, create and update of the Lease are all it needs');
});

test('a leader cut off from the API steps down before anyone else can take over: never two leaders', async (t) => {
  const h = await harness(t);
  const proxy = await startTcpProxy(h.fake.port);
  t.after(() => proxy.close());
  // A reaches the API through a network that will hang (requests time out after 1 s)
  const a = agent(await clientVia(h, proxy.port, 'a'), 'k1-node01_a', 3000, 500);
  t.after(() => {
    a.crash();
  });
  await eventually(() => (a.lease.isLeader ? true : undefined), 5000, 'A leads');
  const b = agent(h.api, 'k1-node02_b', 3000, 500);
  t.after(() => {
    b.crash();
  });
  await sleep(600);
  assert.equal(b.lease.isLeader, false);

  proxy.stall();
  let both = 0;
  const deadline = Date.now() + 6000;
  while (Date.now() < deadline && !b.lease.isLeader) {
    if (a.lease.isLeader && b.lease.isLeader) both++;
    await sleep(20);
  }
  assert.equal(b.lease.isLeader, true, 'B took over');
  assert.equal(a.lease.isLeader, false, 'A stepped down');
  assert.equal(both, 0, 'never both at once');
});

test('a clean shutdown always leaves the Lease released, even with a renewal in flight', async (t) => {
  const h = await harness(t);
  for (let i = 0; i < 5; i++) {
    const a = agent(h.api, `k1-node01_${i}`);
    t.after(() => {
      a.crash(); // a failed run must not leave its loop going
    });
    await eventually(() => (a.lease.isLeader ? true : undefined), 5000, 'leader');
    h.fake.setLatency(150); // renewals take time: shut down while one is on its way
    await sleep(120 + i * 30);
    await a.shutdown();
    h.fake.setLatency(0);
    await sleep(300);
    assert.equal(a.lease.isLeader, false);
    assert.equal(holder(h) ?? null, null, `run ${i}: released`);
  }
});

test('two candidates update the Lease from the same resourceVersion: one wins, the other gets 409 and follows', async (t) => {
  const h = await harness(t);
  // a Lease that is free: an earlier leader released it
  const earlier = agent(await ownClient(t, h, 'earlier'), 'k1-node03_c');
  await eventually(() => (earlier.lease.isLeader ? true : undefined), 5000, 'the earlier leader');
  await earlier.shutdown();
  assert.equal(holder(h) ?? null, null);
  const before = storedLease(h)?.spec.leaseTransitions ?? 0;

  // two agents, each its own client, read the free Lease and send their updates together
  const gate = barrier(2, 3000);
  const access = () => openKubeAccess({ kind: 'kubeconfig', file: h.kubeconfig });
  const apiA = new GatedClient(await access(), gate);
  const apiB = new GatedClient(await access(), gate);
  t.after(() => {
    apiA.close();
    apiB.close();
  });
  const logA = capturingLog();
  const logB = capturingLog();
  const putsFrom = h.fake.requests.length;
  const a = agent(apiA, 'k1-node01_a', 2000, 200, logA.log);
  const b = agent(apiB, 'k1-node02_b', 2000, 200, logB.log);
  t.after(() => {
    a.crash();
    b.crash();
  });
  await eventually(
    () => (a.lease.isLeader || b.lease.isLeader ? true : undefined),
    5000,
    'a leader',
  );
  const [winner, loser, loserLog, loserApi] = a.lease.isLeader
    ? [a, b, logB, apiB]
    : [b, a, logA, apiA];

  // the API server took one update and refused the other as a conflict
  const puts = await eventually(
    () => {
      const sent = h.fake.requests
        .slice(putsFrom)
        .filter((r) => r.method === 'PUT' && r.path === LEASE_PATH);
      return sent.length >= 2 ? sent : undefined;
    },
    5000,
    'both updates',
  );
  const first = puts.slice(0, 2).map((r) => ({
    status: r.status,
    identity: (r.body as { spec?: { holderIdentity?: string } }).spec?.holderIdentity,
  }));
  assert.deepEqual(
    first.sort((x, y) => x.status - y.status),
    [
      { status: 200, identity: winner.identity },
      { status: 409, identity: loser.identity },
    ],
    'both sent the same resourceVersion; the second is stale',
  );
  assert.equal(loser.lease.isLeader, false, 'the loser does not believe it leads');
  assert.equal(holder(h), winner.identity);
  assert.equal(storedLease(h)?.spec.leaseTransitions, before + 1, 'one transition, not two');
  assert.deepEqual(winner.changes, [true]);
  assert.deepEqual(loser.changes, [], 'node_auditor_leader never went to 1 on the loser');
  // a lost race is an answer, not a failure: no warning, and no backoff
  assert.deepEqual(
    loserLog.lines.filter((l) => l.level >= 40).map((l) => l.event),
    [],
  );

  // for a whole lease duration after: the winner renews, the loser keeps following, never both
  const getsBefore = loserApi.sent.filter((v) => v === 'get').length;
  const deadline = Date.now() + 2500;
  while (Date.now() < deadline) {
    assert.equal(winner.lease.isLeader, true, 'the winner keeps leading');
    assert.equal(loser.lease.isLeader, false, 'the loser never leads');
    await sleep(20);
  }
  assert.equal(holder(h), winner.identity);
  assert.equal(storedLease(h)?.spec.leaseTransitions, before + 1);
  assert.deepEqual(loser.changes, []);
  const getsAfter = loserApi.sent.filter((v) => v === 'get').length;
  assert.ok(getsAfter - getsBefore >= 5, `the loser kept looking (${getsAfter - getsBefore} GETs)`);
  assert.equal(winner.outcome(), 'running', 'no crash');
  assert.equal(loser.outcome(), 'running', 'no crash');
  assert.deepEqual(forbidden(h.fake), []);
});

/** The agent's warnings that a Lease request failed, and its notes that they work again. */
function leaseLog(lines: { event?: string }[]) {
  return {
    errors: lines.filter((l) => l.event === 'kube.lease.error').length,
    recovered: lines.filter((l) => l.event === 'kube.lease.recovered').length,
  };
}

test('an identity without rights on the Lease is warned about once, not on every retry; every failure is counted', async (t) => {
  // the ServiceAccount before the chart's roles are bound: 403 on the Lease for ever
  const h = await harness(t, { rbacFeatures: [] });
  const { log, lines } = capturingLog();
  const a = agent(h.api, 'k1-node01_a', 1000, 100, log);
  t.after(() => {
    a.crash();
  });
  await eventually(
    () => (h.fake.requests.filter((r) => r.status === 403).length >= 5 ? true : undefined),
    10_000,
    'five refused tries',
  );
  a.crash();
  const refused = h.fake.requests.filter((r) => r.path === LEASE_PATH && r.status === 403);
  assert.equal(refused.length, h.fake.requests.length, 'only the Lease was asked for');
  assert.deepEqual(leaseLog(lines), { errors: 1, recovered: 0 });
  assert.equal(h.errors.length, refused.length, 'each counted in kube_api_errors_total');
  assert.deepEqual(a.changes, [], 'never leader');
  await eventually(
    () => (a.outcome() === 'returned' ? true : undefined),
    2000,
    'the loop to end, not throw',
  );
});

test('a Lease outage is one warning and one recovery line, however many retries it took', async (t) => {
  const h = await harness(t);
  const { log, lines } = capturingLog();
  const lease = (method: string, path: string) => path === LEASE_PATH && method === 'GET';
  h.fake.failNext(3, 503, { match: lease });
  const a = agent(h.api, 'k1-node01_a', 2000, 100, log);
  t.after(() => {
    a.crash();
  });
  await eventually(() => (a.lease.isLeader ? true : undefined), 10_000, 'leader after the outage');
  assert.deepEqual(leaseLog(lines), { errors: 1, recovered: 1 });
  // a second outage while leading: said again, once
  h.fake.failNext(3, 503, { match: lease });
  await eventually(
    () => (leaseLog(lines).recovered === 2 ? true : undefined),
    10_000,
    'the second recovery',
  );
  assert.deepEqual(leaseLog(lines), { errors: 2, recovered: 2 });
  assert.equal(h.errors.length, 6, 'every failed call counted');
});

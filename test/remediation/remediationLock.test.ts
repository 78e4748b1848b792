// The cluster-wide remediation lock between agents, against the test API server (optimistic
// concurrency, RBAC of the agent's ServiceAccount). Time that matters for expiry is driven with
// an injected monotonic clock: no test waits for a TTL.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { KubeApi } from '../../agent/kubernetes/kubeApi.ts';
import { RemediationLock } from '../../agent/remediation/gates/remediationLock.ts';
import type {
  HeldRemediationLock,
  LockDecision,
} from '../../agent/remediation/gates/remediationLock.ts';
import { eventually, sleep } from '../helpers.ts';
import { forbidden, harness, silent } from '../kubernetes/kubeHarness.ts';
import type { Harness } from '../kubernetes/kubeHarness.ts';

const NS = 'node-auditor';
const LEASES = `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases`;

function lockFor(api: KubeApi, concurrency = 1, clock?: { now: number }): RemediationLock {
  return new RemediationLock({
    api,
    namespace: NS,
    concurrency,
    log: silent,
    ...(clock === undefined ? {} : { monotonic: () => clock.now }),
  });
}

function held(decision: LockDecision): HeldRemediationLock {
  if (!decision.allowed) assert.fail(`expected the lock, got: ${decision.reason}`);
  return decision.lock;
}

function denied(decision: LockDecision): string {
  if (decision.allowed) assert.fail(`expected a denial, got ${decision.lock.name}`);
  return decision.reason;
}

const holderOf = (h: Harness, slot = 0) =>
  h.fake.getLease(NS, `node-auditor-remediation-${slot}`)?.spec.holderIdentity ?? null;

/** A holder that will not renew within the test: it is dead as far as anyone can tell. */
const DEAD = { ttlSeconds: 30, renewIntervalMs: 3_600_000 };

test('concurrency 1: of two agents only one gets the lock, the other is told who holds it', async (t) => {
  const h = await harness(t);
  const a = lockFor(h.api);
  const b = lockFor(h.api);
  const [da, db] = await Promise.all([
    a.acquire('k1-node01_a', { ttlSeconds: 10 }),
    b.acquire('k1-node02_b', { ttlSeconds: 10 }),
  ]);
  t.after(async () => {
    for (const d of [da, db]) if (d.allowed) await d.lock.release();
  });
  assert.equal([da, db].filter((d) => d.allowed).length, 1, 'exactly one holds the lock');
  const winner = da.allowed ? 'k1-node01_a' : 'k1-node02_b';
  assert.equal(holderOf(h), winner);
  // asked again, the loser is told who holds it (the first answer may have been the lost race)
  const again = denied(
    await (da.allowed ? b : a).acquire(da.allowed ? 'k1-node02_b' : 'k1-node01_a', {
      ttlSeconds: 10,
    }),
  );
  assert.match(again, new RegExp(`held by ${winner}`));
  assert.deepEqual(forbidden(h.fake), [], 'get, create and update of Leases are all it needs');
});

test('concurrency 2: two agents both act, a third waits; each agent holds one slot at most', async (t) => {
  const h = await harness(t);
  const a = lockFor(h.api, 2);
  const b = lockFor(h.api, 2);
  const c = lockFor(h.api, 2);
  const la = held(await a.acquire('k1-node01_a', { ttlSeconds: 10 }));
  const lb = held(await b.acquire('k1-node02_b', { ttlSeconds: 10 }));
  t.after(async () => {
    await la.release();
    await lb.release();
  });
  assert.deepEqual([la.name, lb.name].sort(), [
    'node-auditor-remediation-0',
    'node-auditor-remediation-1',
  ]);
  assert.match(
    denied(await c.acquire('k1-node03_c', { ttlSeconds: 10 })),
    /all 2 remediation lock slots are held \(by k1-node01_a, k1-node02_b\)/,
  );
  assert.match(
    denied(await a.acquire('k1-node01_a', { ttlSeconds: 10 })),
    /already holds remediation lock/,
  );
});

test('a dead holder blocks for one TTL from when the other agent first saw it, never forever', async (t) => {
  const h = await harness(t);
  const a = lockFor(h.api);
  const la = held(await a.acquire('k1-node01_a', DEAD));
  // A is dead: it never renews. B has never seen the Lease before.
  const clock = { now: 1_000 };
  const b = lockFor(h.api, 1, clock);
  assert.match(denied(await b.acquire('k1-node02_b', DEAD)), /held by k1-node01_a/);
  clock.now += 29_999;
  assert.match(denied(await b.acquire('k1-node02_b', DEAD)), /held by k1-node01_a/, 'not yet');
  clock.now += 1;
  const lb = held(await b.acquire('k1-node02_b', { ttlSeconds: 30 }));
  t.after(() => lb.release());
  assert.equal(holderOf(h), 'k1-node02_b');
  assert.equal(h.fake.getLease(NS, 'node-auditor-remediation-0')?.spec.leaseTransitions, 1);
  // the dead holder coming back to release must not take the lock from its successor
  await la.release();
  assert.equal(holderOf(h), 'k1-node02_b', 'release checks the holder afresh');
});

test('wall clocks are never compared: a Lease renewed "a year ago" still gets one full TTL', async (t) => {
  const h = await harness(t);
  // left by a node that was deleted long ago (kured's lock stays with such nodes forever)
  await h.api.request({
    verb: 'create',
    path: LEASES,
    body: {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: 'node-auditor-remediation-0', namespace: NS },
      spec: {
        holderIdentity: 'k1-gone_x',
        leaseDurationSeconds: 60,
        acquireTime: '2024-01-01T00:00:00.000000Z',
        renewTime: '2024-01-01T00:00:00.000000Z',
        leaseTransitions: 4,
      },
    },
  });
  const clock = { now: 0 };
  const b = lockFor(h.api, 1, clock);
  assert.match(denied(await b.acquire('k1-node02_b', { ttlSeconds: 30 })), /held by k1-gone_x/);
  clock.now += 59_000;
  assert.match(denied(await b.acquire('k1-node02_b', { ttlSeconds: 30 })), /held by k1-gone_x/);
  clock.now += 1_000; // the holder's own leaseDurationSeconds (60), not ours (30)
  const lb = held(await b.acquire('k1-node02_b', { ttlSeconds: 30 }));
  t.after(() => lb.release());
  assert.equal(h.fake.getLease(NS, 'node-auditor-remediation-0')?.spec.leaseTransitions, 5);
  assert.equal(h.fake.getLease(NS, 'node-auditor-remediation-0')?.spec.leaseDurationSeconds, 30);
});

test('a holder that keeps renewing is never taken over, however far the other clock jumps', async (t) => {
  const h = await harness(t);
  const a = lockFor(h.api);
  const la = held(await a.acquire('k1-node01_a', { ttlSeconds: 3, renewIntervalMs: 100 }));
  t.after(() => la.release());
  const clock = { now: 0 };
  const b = lockFor(h.api, 1, clock);
  for (let i = 0; i < 3; i++) {
    assert.match(denied(await b.acquire('k1-node02_b', { ttlSeconds: 3 })), /held by k1-node01_a/);
    await sleep(350); // A renews meanwhile: the record B sees changes
    clock.now += 600_000;
  }
  assert.equal(la.held, true);
  assert.equal(holderOf(h), 'k1-node01_a');
});

test('release frees the lock at once: the next agent takes it without waiting for the TTL', async (t) => {
  const h = await harness(t);
  const a = lockFor(h.api);
  const la = held(await a.acquire('k1-node01_a', { ttlSeconds: 30 }));
  const b = lockFor(h.api, 1, { now: 0 }); // B's clock never moves: no TTL can pass for it
  assert.match(denied(await b.acquire('k1-node02_b', { ttlSeconds: 30 })), /held by k1-node01_a/);
  await la.release();
  assert.equal(holderOf(h), null);
  assert.equal(la.held, false);
  assert.equal(la.signal.aborted, true);
  const lb = held(await b.acquire('k1-node02_b', { ttlSeconds: 30 }));
  t.after(() => lb.release());
  assert.equal(holderOf(h), 'k1-node02_b');
  // A may act again later, once B is done
  await lb.release();
  held(await a.acquire('k1-node01_a', { ttlSeconds: 30 }));
  assert.equal(holderOf(h), 'k1-node01_a');
  await a.held?.release();
});

test('two agents racing for the same free slot: the server decides (409), exactly one wins', async (t) => {
  const h = await harness(t);
  // latency keeps both agents' requests in flight together: both read, both write
  h.fake.setLatency(80);
  for (let round = 0; round < 3; round++) {
    const a = lockFor(h.api);
    const b = lockFor(h.api);
    const ds = await Promise.all([
      a.acquire(`k1-node01_a${round}`, { ttlSeconds: 10 }),
      b.acquire(`k1-node02_b${round}`, { ttlSeconds: 10 }),
    ]);
    const winners = ds.filter((d) => d.allowed);
    assert.equal(winners.length, 1, `round ${round}: one winner`);
    const loser = ds.find((d) => !d.allowed);
    assert.match(
      loser?.allowed === false ? loser.reason : '',
      /at the same moment|held by/,
      `round ${round}`,
    );
    for (const d of winners) await d.lock.release();
  }
  const conflicts = h.fake.requests.filter((r) => r.status === 409).map((r) => r.method);
  assert.ok(conflicts.includes('POST'), 'a create lost with AlreadyExists');
  assert.ok(conflicts.includes('PUT'), 'an update lost with Conflict');
});

test('a holder whose renewals fail steps down at the renew deadline, before its TTL runs out', async (t) => {
  const h = await harness(t);
  const a = lockFor(h.api);
  const lost: string[] = [];
  const la = held(
    await a.acquire('k1-node01_a', {
      ttlSeconds: 3,
      renewIntervalMs: 200,
      onLost: (why) => lost.push(why),
    }),
  );
  const cutAt = Date.now();
  await h.fake.goDown();
  await eventually(() => (la.signal.aborted ? true : undefined), 5000, 'the step-down');
  const after = Date.now() - cutAt;
  assert.ok(after < 3000, `stepped down after ${after}ms, within the 3 s TTL`);
  assert.ok(after >= 1500, `not before the 2 s renew deadline (${after}ms)`);
  assert.equal(la.held, false);
  assert.equal(lost.length, 1);
  assert.match(lost[0] ?? '', /could not renew/);
});

test('the go-ahead ends on the monotonic clock even when timers are late', async (t) => {
  const h = await harness(t);
  const clock = { now: 0 };
  const a = lockFor(h.api, 1, clock);
  const la = held(await a.acquire('k1-node01_a', { ttlSeconds: 30, renewIntervalMs: 3_600_000 }));
  t.after(() => la.release());
  clock.now += 19_999;
  assert.equal(la.held, true);
  clock.now += 1; // 2/3 of 30 s without a successful renewal
  assert.equal(la.held, false);
  assert.equal(la.stillHeld(), false);
  assert.equal(la.signal.aborted, true, 'the action is told to stop');
  // a later acquire by the same agent re-takes its own Lease (it is not acting any more)
  const again = held(await a.acquire('k1-node01_a', { ttlSeconds: 30 }));
  await again.release();
});

test('an API that cannot be reached or refuses means no lock ("cannot decide")', async (t) => {
  const h = await harness(t);
  const wrongNamespace = new RemediationLock({ api: h.api, namespace: 'default', log: silent });
  assert.match(
    denied(await wrongNamespace.acquire('k1-node01_a', { ttlSeconds: 10 })),
    /^cannot decide: get .*leases\/node-auditor-remediation-0: 403 /,
  );
  await h.fake.goDown();
  assert.match(
    denied(await lockFor(h.api).acquire('k1-node01_a', { ttlSeconds: 10 })),
    /^cannot decide: /,
  );
  assert.match(
    denied(await lockFor(h.api).acquire('k1-node01_a', { ttlSeconds: 0 })),
    /^cannot decide: the remediation lock TTL must be whole seconds >= 1/,
  );
});

// Leader election between agents, against an API server with optimistic concurrency.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LeaderLease } from '../../agent/kubernetes/leaderLease.ts';
import type { KubeApi } from '../../agent/kubernetes/kubeApi.ts';
import { eventually, sleep } from '../helpers.ts';
import { clientVia, forbidden, harness, silent } from './kubeHarness.ts';
import type { Harness } from './kubeHarness.ts';
import { startTcpProxy } from './tcpProxy.ts';

function agent(api: KubeApi, identity: string, leaseDurationMs = 2000, retryMs = 200) {
  const lease = new LeaderLease({
    api,
    namespace: 'node-auditor',
    name: 'node-auditor-leader',
    identity,
    leaseDurationMs,
    retryMs,
    log: silent,
  });
  const abort = new AbortController();
  const task = lease.run(abort.signal);
  return {
    lease,
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

const holder = (h: Harness) =>
  h.fake.getLease('node-auditor', 'node-auditor-leader')?.spec.holderIdentity;

test('one leader at a time; a crashed leader is replaced after the lease duration; a released one at once', async (t) => {
  const h = await harness(t);
  const a = agent(h.api, 'k1-node01_a');
  const b = agent(h.api, 'k1-node02_b');
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
  assert.match(
    String(h.fake.getLease('node-auditor', 'node-auditor-leader')?.spec.renewTime),
    /\.\d{6}Z$/,
    'MicroTime with six digits',
  );

  const crashedAt = Date.now();
  leader.crash();
  await eventually(() => (follower.lease.isLeader ? true : undefined), 6000, 'the takeover');
  assert.ok(Date.now() - crashedAt >= 1500, 'not before the lease ran out');
  assert.equal(h.fake.getLease('node-auditor', 'node-auditor-leader')?.spec.leaseTransitions, 1);

  const c = agent(h.api, 'k1-node03_c');
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

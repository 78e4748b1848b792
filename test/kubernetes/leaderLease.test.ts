// Leader election between agents, against an API server with optimistic concurrency.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LeaderLease } from '../../agent/kubernetes/leaderLease.ts';
import { eventually } from '../helpers.ts';
import { forbidden, harness, silent } from './kubeHarness.ts';
import type { Harness } from './kubeHarness.ts';

function agent(h: Harness, identity: string) {
  const lease = new LeaderLease({
    api: h.api,
    namespace: 'node-auditor',
    name: 'node-auditor-leader',
    identity,
    leaseDurationMs: 2000,
    retryMs: 200,
    log: silent,
  });
  const abort = new AbortController();
  void lease.run(abort.signal);
  return {
    lease,
    crash: () => {
      abort.abort();
    },
  };
}

test('one leader at a time; a crashed leader is replaced after the lease duration; a released one at once', async (t) => {
  const h = await harness(t);
  const a = agent(h, 'k1-node01');
  const b = agent(h, 'k1-node02');
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
  const stored = h.fake.getLease('node-auditor', 'node-auditor-leader');
  assert.match(String(stored?.spec.renewTime), /\.\d{6}Z$/, 'MicroTime with six digits');

  // the leader stops renewing (killed): after about 2 s the other takes over
  const crashedAt = Date.now();
  leader.crash();
  await eventually(() => (follower.lease.isLeader ? true : undefined), 6000, 'the takeover');
  const waited = Date.now() - crashedAt;
  assert.ok(waited >= 1500, `took over after ${waited}ms, not before the lease ran out`);
  assert.equal(h.fake.getLease('node-auditor', 'node-auditor-leader')?.spec.leaseTransitions, 1);

  // a third agent, the current leader releases on shutdown: the third takes over quickly
  const c = agent(h, 'k1-node03');
  t.after(() => {
    c.crash();
  });
  await follower.lease.release();
  follower.crash();
  const releasedAt = Date.now();
  await eventually(() => (c.lease.isLeader ? true : undefined), 5000, 'the successor');
  assert.ok(Date.now() - releasedAt < 1500, 'no wait for the lease to run out');
  assert.deepEqual(forbidden(h.fake), [], 'get, create and update of the Lease are all it needs');
});

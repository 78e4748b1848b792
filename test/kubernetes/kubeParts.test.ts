// Small parts of the Kubernetes side with exact rules of their own.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Backoff } from '../../agent/kubernetes/backoff.ts';
import { kubeTime, microTime } from '../../agent/kubernetes/kubeApi.ts';
import { TokenBucket } from '../../agent/sinks/kubernetes/tokenBucket.ts';

test('MicroTime has exactly six fractional digits; metav1.Time none', () => {
  const at = new Date('2026-11-22T01:45:47.385Z');
  assert.equal(microTime(at), '2026-11-22T01:45:47.385000Z');
  assert.equal(kubeTime(at), '2026-11-22T01:45:47Z');
});

test("client-go's spam filter: 25 at once, then one per refill interval", () => {
  let now = 0;
  const bucket = new TokenBucket(25, 300_000, () => now);
  let taken = 0;
  while (bucket.take()) taken++;
  assert.equal(taken, 25);
  assert.equal(bucket.msUntilToken(), 300_000);
  now += 150_000;
  assert.equal(bucket.take(), false);
  now += 150_000;
  assert.equal(bucket.take(), true);
});

test('backoff doubles with jitter, is capped, honours Retry-After, and resets', () => {
  const half = new Backoff({ baseMs: 1000, maxMs: 8000, random: () => 0.5 });
  assert.deepEqual(
    [half.next(), half.next(), half.next(), half.next(), half.next()],
    [750, 1500, 3000, 6000, 6000],
  );
  assert.equal(half.next(20_000), 20_000, 'Retry-After wins when longer');
  half.reset();
  assert.equal(half.next(), 750);
  const low = new Backoff({ baseMs: 1000, maxMs: 8000, random: () => 0 });
  const high = new Backoff({ baseMs: 1000, maxMs: 8000, random: () => 1 });
  assert.deepEqual([low.next(), high.next()], [500, 1000], 'between half and all of the step');
});

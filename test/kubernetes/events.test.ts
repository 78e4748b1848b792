// Events against an API server that answers as a real one: storms, outages, restarts.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Backoff } from '../../agent/kubernetes/backoff.ts';
import { EventRecorder } from '../../agent/sinks/kubernetes/eventRecorder.ts';
import type { EventRecorderOptions } from '../../agent/sinks/kubernetes/eventRecorder.ts';
import { cleanup, eventually, sleep } from '../helpers.ts';
import { forbidden, harness, silent } from './kubeHarness.ts';
import type { Harness } from './kubeHarness.ts';

/**
 * A recorder whose state file is in the harness's directory. Tests stop it with cleanup(), not
 * t.after: stop() saves the state file, and must do so before the directory is removed.
 */
function recorder(h: Harness, overrides: Partial<EventRecorderOptions> = {}): EventRecorder {
  const sent: string[] = [];
  const r = new EventRecorder({
    api: h.api,
    nodeName: 'k1-node01',
    nodeUid: () => h.fake.getNode('k1-node01').metadata.uid,
    namespace: 'default',
    burst: 25,
    refillMs: 300_000,
    queueLimit: 1000,
    statePath: path.join(h.dir, 'state', 'events.json'),
    log: silent,
    retry: new Backoff({ baseMs: 200, maxMs: 1000 }),
    onSent: (op) => sent.push(op),
    ...overrides,
  });
  return r;
}

const eventCalls = (h: Harness) =>
  h.fake.requests.filter((r) => r.path.startsWith('/api/v1/namespaces/default/events'));

test('a storm of 10,000 identical lines is one Event with count 10000, in a couple of API calls', async (t) => {
  const h = await harness(t);
  const r = recorder(h);
  cleanup(t, () => r.stop());
  for (let i = 0; i < 10_000; i++)
    r.record(
      'InotifyWatchesExhausted',
      'Warning',
      'inotify watches 8192/8192 used (fs.inotify.max_user_watches=8192)',
    );
  await eventually(
    () => (r.pending === 0 && h.fake.events()[0]?.count === 10_000 ? true : undefined),
    5000,
    'the storm to settle',
  );
  const events = h.fake.events();
  assert.equal(events.length, 1);
  assert.equal(events[0]?.reason, 'InotifyWatchesExhausted');
  assert.equal(events[0]?.type, 'Warning');
  assert.equal(events[0]?.involvedObject.kind, 'Node');
  assert.equal(events[0]?.involvedObject.uid, h.fake.getNode('k1-node01').metadata.uid);
  assert.deepEqual(events[0]?.source, { component: 'node-auditor', host: 'k1-node01' });
  const calls = eventCalls(h);
  assert.ok(calls.length <= 3, `${calls.length} API calls for 10,000 lines`);
  assert.equal(calls[0]?.method, 'POST');
  assert.deepEqual(forbidden(h.fake), [], 'the ServiceAccount may do all of it');
});

test("client-go's spam filter: new Events beyond the burst are dropped and counted, repeats wait", async (t) => {
  const h = await harness(t);
  const dropped: string[] = [];
  const r = recorder(h, { burst: 25, refillMs: 300_000, onDropped: (why) => dropped.push(why) });
  cleanup(t, () => r.stop());
  for (let i = 0; i < 40; i++) r.record('OOMKilling', 'Warning', `Killed process ${i}`);
  await eventually(
    () => (h.fake.events().length === 25 && r.pending === 0 ? true : undefined),
    5000,
    '25 sent',
  );
  assert.equal(dropped.filter((d) => d === 'rate_limited').length, 15);
  // a repeat of a sent Event is not dropped: it waits for a token, its count kept exact
  r.record('OOMKilling', 'Warning', 'Killed process 3');
  r.record('OOMKilling', 'Warning', 'Killed process 3');
  assert.equal(r.pending, 1);
  await sleep(300);
  assert.equal(eventCalls(h).length, 25, 'no call before a token comes back');
});

test('a 60 s API outage: Events wait in order and go out once, none lost, none doubled', async (t) => {
  const h = await harness(t);
  const r = recorder(h);
  cleanup(t, () => r.stop());
  r.record('KubeletCrashLoop', 'Warning', 'before the outage');
  await eventually(
    () => (h.fake.events().length === 1 ? true : undefined),
    5000,
    'the first Event',
  );

  await h.fake.goDown();
  const during = ['one', 'two', 'three', 'four', 'five'].map((n) => `during the outage: ${n}`);
  for (const message of during) r.record('ContainerRuntimeDown', 'Warning', message);
  r.record('KubeletCrashLoop', 'Warning', 'before the outage'); // a repeat: count 2, same Event
  await sleep(60_000);
  assert.equal(r.pending, 6, 'all waiting');
  await h.fake.comeBack();

  await eventually(
    () => (r.pending === 0 && h.fake.events().length === 6 ? true : undefined),
    10_000,
    'the queue to flush',
  );
  const events = h.fake.events();
  const byMessage = new Map(events.map((e) => [e.message, e]));
  assert.equal(byMessage.size, 6, 'no duplicates');
  assert.equal(byMessage.get('before the outage')?.count, 2);
  // flushed in the order they were recorded
  const created = events
    .filter((e) => (e.message ?? '').startsWith('during'))
    .sort((a, b) => Number(a.metadata.resourceVersion) - Number(b.metadata.resourceVersion));
  assert.deepEqual(
    created.map((e) => e.message),
    during,
  );
  assert.ok(h.errors.length > 0, 'the outage was counted as API errors');
});

test('after a restart, an incident already reported is not reported again; new ones still are', async (t) => {
  const h = await harness(t);
  const first = recorder(h);
  first.report(
    'finding/sysctl/SysctlOutOfProfile:net.ipv4.ip_forward',
    'SysctlOutOfProfile',
    'Warning',
    'net.ipv4.ip_forward is 0, needs 1',
  );
  await eventually(
    () => (first.pending === 0 && h.fake.events().length === 1 ? true : undefined),
    5000,
    'the Event',
  );
  await first.stop();
  const callsBefore = eventCalls(h).length;

  const second = recorder(h);
  cleanup(t, () => second.stop());
  await second.load();
  second.report(
    'finding/sysctl/SysctlOutOfProfile:net.ipv4.ip_forward',
    'SysctlOutOfProfile',
    'Warning',
    'net.ipv4.ip_forward is 0, needs 1',
  );
  await sleep(500);
  assert.equal(eventCalls(h).length, callsBefore, 'no call at all for the same incident');
  assert.equal(h.fake.events()[0]?.count, 1);

  // the same (reason, message) happening again is the same Event, patched, not a new one
  second.record('SysctlOutOfProfile', 'Warning', 'net.ipv4.ip_forward is 0, needs 1');
  await eventually(() => (h.fake.events()[0]?.count === 2 ? true : undefined), 5000, 'the patch');
  assert.equal(h.fake.events().length, 1);
  assert.equal(eventCalls(h).at(-1)?.method, 'PATCH');
  assert.equal(eventCalls(h).at(-1)?.contentType, 'application/strategic-merge-patch+json');

  // resolving it is a Normal Event, once
  // twice: only the first says anything (the reason comes from what was reported)
  second.resolve(
    'finding/sysctl/SysctlOutOfProfile:net.ipv4.ip_forward',
    'resolved: net.ipv4.ip_forward is 0, needs 1',
  );
  second.resolve(
    'finding/sysctl/SysctlOutOfProfile:net.ipv4.ip_forward',
    'resolved: net.ipv4.ip_forward is 0, needs 1',
  );
  await eventually(
    () => (h.fake.events().length === 2 ? true : undefined),
    5000,
    'the resolved Event',
  );
  await sleep(300);
  const resolved = h.fake.events().find((e) => e.reason === 'SysctlOutOfProfileResolved');
  assert.equal(resolved?.type, 'Normal');
  assert.equal(resolved?.count, 1);
});

test('an Event the API server deleted (its TTL) is created again; a refused one is dropped, counted', async (t) => {
  const h = await harness(t);
  const dropped: string[] = [];
  const r = recorder(h, { onDropped: (why) => dropped.push(why) });
  cleanup(t, () => r.stop());
  r.record('PLEGUnhealthy', 'Warning', 'PLEG is not healthy');
  await eventually(() => (h.fake.events().length === 1 ? true : undefined), 5000, 'the Event');
  h.fake.deleteEvent('default', h.fake.events()[0]?.metadata.name ?? '');
  r.record('PLEGUnhealthy', 'Warning', 'PLEG is not healthy');
  await eventually(
    () => (h.fake.events().length === 1 && r.pending === 0 ? true : undefined),
    5000,
    'the Event again',
  );
  assert.equal(h.fake.events()[0]?.count, 2);
  assert.deepEqual(
    eventCalls(h)
      .slice(-2)
      .map((c) => `${c.method} ${c.status}`),
    ['PATCH 404', 'POST 201'],
  );
  // Events in another namespace than "default" for a Node are refused (422): dropped, not retried forever
  const wrong = recorder(h, {
    namespace: 'kube-system',
    statePath: undefined,
    onDropped: (why) => dropped.push(why),
  });
  cleanup(t, () => wrong.stop());
  wrong.record('KubeletDown', 'Warning', 'kubelet is down');
  await eventually(() => (dropped.includes('rejected') ? true : undefined), 5000, 'the refusal');
  assert.equal(wrong.pending, 0);
});

test('429 Too Many Requests: the Retry-After is honoured, the failure counted, the Event still sent once', async (t) => {
  const h = await harness(t);
  const r = recorder(h);
  cleanup(t, () => r.stop());
  h.fake.failNext(1, 429, { retryAfterSeconds: 2 });
  const started = Date.now();
  r.record('KubeletDown', 'Warning', 'kubelet is down');
  await eventually(() => (h.fake.events().length === 1 ? true : undefined), 10_000, 'the Event');
  assert.ok(Date.now() - started >= 1900, 'waited as the server asked');
  assert.deepEqual(h.errors, ['create']);
  const posts = eventCalls(h).map((c) => c.status);
  assert.deepEqual(posts, [429, 201]);
});

test('a 429 Retry-After holds every later record too, not only the one that failed', async (t) => {
  const h = await harness(t);
  const r = recorder(h);
  cleanup(t, () => r.stop());
  h.fake.failNext(1, 429, { retryAfterSeconds: 2 });
  r.record('KubeletDown', 'Warning', 'first');
  await eventually(() => (h.errors.length === 1 ? true : undefined), 3000, 'the 429');
  for (let i = 0; i < 20; i++) {
    r.record('KubeletDown', 'Warning', `more ${i % 3}`);
    await sleep(50);
  }
  assert.equal(eventCalls(h).length, 1, 'nothing sent while the server said to wait');
  await eventually(() => (r.pending === 0 ? true : undefined), 10_000, 'all sent after the wait');
  assert.deepEqual(
    h.fake
      .events()
      .map((e) => e.message)
      .sort(),
    ['first', 'more 0', 'more 1', 'more 2'],
  );
});

test('the queue bound never drops the Event being sent, and counts exactly what it drops', async (t) => {
  const h = await harness(t);
  const dropped: string[] = [];
  const r = recorder(h, { queueLimit: 2, onDropped: (why) => dropped.push(why) });
  cleanup(t, () => r.stop());
  h.fake.setLatency(200);
  r.record('KubeletDown', 'Warning', 'A'); // goes in flight
  await sleep(50);
  r.record('KubeletDown', 'Warning', 'B');
  r.record('KubeletDown', 'Warning', 'C');
  r.record('KubeletDown', 'Warning', 'D'); // the queue holds 2: B is dropped, not A
  h.fake.setLatency(0);
  await eventually(() => (r.pending === 0 ? true : undefined), 5000, 'the queue to drain');
  assert.deepEqual(
    h.fake
      .events()
      .map((e) => e.message)
      .sort(),
    ['A', 'C', 'D'],
  );
  assert.deepEqual(dropped, ['queue_full']);
});

test('raised, resolved, raised again while the API is down: the last word is the recurrence', async (t) => {
  const h = await harness(t);
  const r = recorder(h);
  cleanup(t, () => r.stop());
  await h.fake.goDown();
  r.report('finding/inotify/x', 'InotifyWatchesExhausted', 'Warning', 'watches exhausted');
  r.resolve('finding/inotify/x', 'resolved: watches exhausted');
  r.report('finding/inotify/x', 'InotifyWatchesExhausted', 'Warning', 'watches exhausted');
  await h.fake.comeBack();
  await eventually(
    () => (r.pending === 0 && h.fake.events().length === 2 ? true : undefined),
    10_000,
    'the flush',
  );
  const inOrder = h.fake
    .events()
    .sort((a, b) => Number(a.metadata.resourceVersion) - Number(b.metadata.resourceVersion));
  assert.deepEqual(
    inOrder.map((e) => `${e.reason} ${e.count}`),
    ['InotifyWatchesExhaustedResolved 1', 'InotifyWatchesExhausted 2'],
  );
});

test('a state file of the wrong shape is set aside, never stops the agent', async (t) => {
  const h = await harness(t);
  for (const bad of [
    '{}',
    'null',
    '[]',
    '{"version":1,"events":[{}],"incidents":{}}',
    '{"version":1,"events":[],"incidents":null}',
    'not json',
  ]) {
    await fs.mkdir(path.join(h.dir, 'state'), { recursive: true });
    await fs.writeFile(path.join(h.dir, 'state', 'events.json'), bad);
    const r = recorder(h);
    await r.load();
    r.record('KubeletDown', 'Warning', `after ${bad}`);
    await eventually(() => (r.pending === 0 ? true : undefined), 5000, 'a working recorder');
    await r.stop();
  }
  assert.equal(h.fake.events().length, 6);
});

test('before the Node is known its name stands in for the uid, as the kubelet does', async (t) => {
  const h = await harness(t);
  const r = recorder(h, { nodeUid: () => undefined });
  cleanup(t, () => r.stop());
  r.record('KubeletDown', 'Warning', 'early');
  await eventually(() => (h.fake.events().length === 1 ? true : undefined), 5000, 'the Event');
  assert.equal(h.fake.events()[0]?.involvedObject.uid, 'k1-node01');
});

test('a new Event the spam filter dropped was never reported: no Resolved for it, and reported again with a token it goes out', async (t) => {
  const h = await harness(t);
  const dropped: string[] = [];
  let clock = 0; // the spam filter's clock, moved by hand
  const r = recorder(h, {
    burst: 2,
    refillMs: 300_000,
    monotonic: () => clock,
    onDropped: (why) => dropped.push(why),
  });
  cleanup(t, () => r.stop());
  r.report('finding/a', 'KubeletCrashLoop', 'Warning', 'a');
  r.report('finding/b', 'ContainerRuntimeDown', 'Warning', 'b');
  r.report('finding/c', 'PLEGUnhealthy', 'Warning', 'PLEG is not healthy'); // no token left
  assert.deepEqual(dropped, ['rate_limited']);
  await eventually(
    () => (r.pending === 0 && h.fake.events().length === 2 ? true : undefined),
    5000,
    'the two Events with a token',
  );
  assert.deepEqual(r.reportedIncidents('finding/'), ['finding/a', 'finding/b']);

  clock += 300_000; // one token back
  // the cluster never saw PLEGUnhealthy: saying it is resolved would be news from nowhere
  r.resolve('finding/c', 'resolved: PLEG is not healthy');
  await sleep(300);
  assert.deepEqual(
    h.fake
      .events()
      .map((e) => e.reason)
      .sort(),
    ['ContainerRuntimeDown', 'KubeletCrashLoop'],
  );
  // the same incident reported again (its finding raised or changed) now goes out
  r.report('finding/c', 'PLEGUnhealthy', 'Warning', 'PLEG is not healthy');
  await eventually(
    () => (r.pending === 0 && h.fake.events().length === 3 ? true : undefined),
    5000,
    'the Event once a token came back',
  );
  const pleg = h.fake.events().find((e) => e.reason === 'PLEGUnhealthy');
  assert.equal(pleg?.count, 1);
  assert.deepEqual(dropped, ['rate_limited'], 'counted once, when it was dropped');
});

test('what a full queue dropped stays dropped: not sent after a restart, not counted, never resolved', async (t) => {
  const h = await harness(t);
  const dropped: string[] = [];
  const first = recorder(h, { queueLimit: 2, onDropped: (why) => dropped.push(why) });
  first.record('KubeletDown', 'Warning', 'X');
  await eventually(
    () => (first.pending === 0 && h.fake.events().length === 1 ? true : undefined),
    5000,
    'X',
  );
  await h.fake.goDown();
  first.record('KubeletDown', 'Warning', 'X'); // a repeat of a sent Event: queued (X)
  first.report('finding/logs/a', 'KubeletCrashLoop', 'Warning', 'A'); // queued (X, A)
  first.record('ContainerRuntimeDown', 'Warning', 'B'); // full: X's repeat dropped (A, B)
  first.record('ContainerRuntimeDown', 'Warning', 'C'); // full: A dropped (B, C)
  assert.deepEqual(dropped, ['queue_full', 'queue_full']);
  await first.stop();
  await h.fake.comeBack();

  const second = recorder(h, { onDropped: (why) => dropped.push(why) });
  cleanup(t, () => second.stop());
  await second.load();
  await eventually(
    () => (second.pending === 0 && h.fake.events().length >= 3 ? true : undefined),
    10_000,
    'what was still pending',
  );
  await sleep(300);
  const byMessage = new Map(h.fake.events().map((e) => [e.message, e]));
  assert.deepEqual([...byMessage.keys()].sort(), ['B', 'C', 'X'], 'A was dropped, not replayed');
  assert.equal(byMessage.get('X')?.count, 1, "X's dropped repeat was not sent either");
  assert.deepEqual(
    eventCalls(h)
      .filter((c) => c.method === 'PATCH')
      .map((c) => c.path),
    [],
  );
  // A never reached the cluster: no "Resolved" for it
  second.resolve('finding/logs/a', 'resolved: A');
  await sleep(300);
  assert.equal(h.fake.events().length, 3);
  // the next occurrence of X counts on from what the API server has
  second.record('KubeletDown', 'Warning', 'X');
  await eventually(
    () => (second.pending === 0 && byMessageOf(h, 'X')?.count === 2 ? true : undefined),
    5000,
    'X patched',
  );
  assert.deepEqual(dropped, ['queue_full', 'queue_full']);
});

test('an incident raised and resolved while the API is down, whose Event the full queue then drops: its Resolved goes with it', async (t) => {
  const h = await harness(t);
  const dropped: string[] = [];
  const r = recorder(h, { queueLimit: 2, onDropped: (why) => dropped.push(why) });
  cleanup(t, () => r.stop());
  await h.fake.goDown();
  r.report('finding/logs/a', 'KubeletCrashLoop', 'Warning', 'A'); // queued (A)
  r.resolve('finding/logs/a', 'resolved: A'); // queued (A, A resolved)
  r.record('ContainerRuntimeDown', 'Warning', 'B'); // full: A dropped, and its Resolved with it
  await h.fake.comeBack();
  await eventually(
    () => (r.pending === 0 && h.fake.events().length >= 1 ? true : undefined),
    10_000,
    'the flush',
  );
  await sleep(300);
  assert.deepEqual(
    h.fake.events().map((e) => `${e.reason} ${e.message}`),
    ['ContainerRuntimeDown B'],
    'no Resolved for an Event the cluster never saw',
  );
  assert.deepEqual(dropped, ['queue_full']);
});

test('a crash before the state file is written: the same incident reported again patches its Event, never a second one', async (t) => {
  const h = await harness(t);
  // no state file at all: what a crash within the 500 ms before it is written leaves
  const first = recorder(h, { statePath: undefined });
  first.report('finding/logs/incident:node', 'KubeletDown', 'Warning', 'kubelet is down');
  await eventually(
    () => (first.pending === 0 && h.fake.events().length === 1 ? true : undefined),
    5000,
    'the Event',
  );
  await first.stop();
  const second = recorder(h);
  cleanup(t, () => second.stop());
  await second.load();
  second.report('finding/logs/incident:node', 'KubeletDown', 'Warning', 'kubelet is down');
  await eventually(
    () => (second.pending === 0 && eventCalls(h).length >= 2 ? true : undefined),
    5000,
    'the report after the restart',
  );
  // the Event's fixed name: the create is refused as existing and becomes a patch
  assert.deepEqual(
    eventCalls(h).map((c) => `${c.method} ${c.status}`),
    ['POST 201', 'POST 409', 'PATCH 200'],
  );
  assert.equal(h.fake.events().length, 1);
  assert.equal(h.fake.events()[0]?.count, 1, 'the same report, not a second occurrence');
});

function byMessageOf(h: Harness, message: string) {
  return h.fake.events().find((e) => e.message === message);
}

test('a recorder stopped when its test ends leaves nothing behind in the temporary directory', async (t) => {
  let dir = '';
  await t.test('a test with a recorder', async (inner) => {
    const h = await harness(inner);
    dir = h.dir;
    const r = recorder(h);
    cleanup(inner, () => r.stop()); // stop() saves the state file
    r.record('KubeletDown', 'Warning', 'kubelet is down');
    await eventually(() => (r.pending === 0 ? true : undefined), 5000, 'the Event sent');
  });
  // the directory went after the recorder's last save, not before it (which left
  // <dir>/state/events.json behind after every such test)
  await assert.rejects(fs.stat(dir), { code: 'ENOENT' });
});

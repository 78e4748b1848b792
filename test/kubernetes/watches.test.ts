// The own-Node and pods-on-this-node watches: follow changes, survive outages and 410 Expired.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OwnNode } from '../../agent/kubernetes/ownNode.ts';
import { PodsOnNode } from '../../agent/kubernetes/podsOnNode.ts';
import type { KubeApi } from '../../agent/kubernetes/kubeApi.ts';
import { runWatchedCollection } from '../../agent/kubernetes/watchedCollection.ts';
import { eventually, sleep } from '../helpers.ts';
import { clientVia, forbidden, harness, silent } from './kubeHarness.ts';
import { startTcpProxy } from './tcpProxy.ts';

test('the own Node is followed; after an outage and compaction it lists again and catches up', async (t) => {
  const h = await harness(t);
  const node = new OwnNode();
  const abort = new AbortController();
  const health: boolean[] = [];
  void node.run(h.api, 'k1-node01', silent, abort.signal, (healthy) => health.push(healthy));
  t.after(() => {
    abort.abort();
  });
  await eventually(() => (node.ready === true ? true : undefined), 5000, 'Ready');
  assert.equal(node.uid, h.fake.getNode('k1-node01').metadata.uid);

  h.fake.setNodeReady('k1-node01', false);
  await eventually(
    () => (node.ready === false ? true : undefined),
    5000,
    'NotReady through the watch',
  );

  // the API goes away; meanwhile its history is compacted: the old resourceVersion is gone
  await h.fake.goDown();
  await eventually(() => (health.at(-1) === false ? true : undefined), 5000, 'the watch to notice');
  h.fake.setNodeReady('k1-node01', true);
  h.fake.compactAll();
  await new Promise((resolve) => setTimeout(resolve, 2500)); // retries against a dead server
  assert.ok(
    !health.slice(health.indexOf(false)).includes(true),
    'never healthy while the API is down',
  );
  await h.fake.comeBack();
  await eventually(
    () => (node.ready === true ? true : undefined),
    10_000,
    'the state after the outage',
  );
  const lists = h.fake.requests.filter(
    (r) => r.path === '/api/v1/nodes' && r.query.get('watch') === null,
  );
  assert.ok(lists.length >= 2, 'listed again after 410 Expired');
  const watches = h.fake.requests.filter(
    (r) => r.path === '/api/v1/nodes' && r.query.get('watch') === '1',
  );
  assert.ok(watches.every((w) => w.query.get('fieldSelector') === 'metadata.name=k1-node01'));
  assert.ok(watches.every((w) => w.query.get('allowWatchBookmarks') === 'true'));
  assert.equal(health.at(-1), true);
  assert.deepEqual(forbidden(h.fake), []);
});

test('pods on this node map to namespace, name and container IDs; 250 pods, only the strings kept', async (t) => {
  const h = await harness(t, { nodes: ['k1-node01', 'k1-node02'] });
  for (let i = 0; i < 250; i++) {
    h.fake.addPod({
      namespace: `team-${i % 10}`,
      name: `app-${i}`,
      nodeName: 'k1-node01',
      containers: [{ name: 'app' }, { name: 'sidecar' }],
    });
  }
  h.fake.addPod({
    namespace: 'other',
    name: 'elsewhere',
    nodeName: 'k1-node02',
    containers: [{ name: 'app' }],
  });
  const pods = new PodsOnNode();
  const abort = new AbortController();
  void pods.run(h.api, 'k1-node01', silent, abort.signal);
  t.after(() => {
    abort.abort();
  });
  await eventually(() => (pods.size === 250 ? true : undefined), 5000, '250 pods');
  const sample = h.fake.pods().find((p) => p.metadata.name === 'app-7');
  const info = pods.pod(sample?.metadata.uid ?? '');
  assert.equal(info?.namespace, 'team-7');
  assert.deepEqual(info?.containers.map((c) => c.name).sort(), ['app', 'sidecar']);
  const id = info?.containers.find((c) => c.name === 'app')?.id ?? '';
  assert.match(id, /^[0-9a-f]{64}$/, 'the runtime prefix containerd:// is stripped');
  assert.equal(pods.container(id)?.pod.name, 'app-7');
  // a deleted pod is forgotten, with its containers
  h.fake.deletePod('team-7', 'app-7');
  await eventually(() => (pods.size === 249 ? true : undefined), 5000, 'the deletion');
  assert.equal(pods.container(id), undefined);
  assert.ok(
    h.fake.requests
      .filter((r) => r.path === '/api/v1/pods')
      .every((r) => r.query.get('fieldSelector') === 'spec.nodeName=k1-node01'),
  );
  assert.deepEqual(forbidden(h.fake), []);
});

test('a watch that goes silent (a black hole between us and the API) is noticed and replaced', async (t) => {
  const h = await harness(t);
  const proxy = await startTcpProxy(h.fake.port);
  t.after(() => proxy.close());
  const node = new OwnNode();
  const abort = new AbortController();
  const health: boolean[] = [];
  const api = await clientVia(h, proxy.port, 'stall');
  t.after(() => {
    api.close();
  });
  // the server ends each watch after 2 s and sends bookmarks: 2 s + 1 s of silence means dead
  void node.run(api, 'k1-node01', silent, abort.signal, (ok) => health.push(ok), {
    watchTimeoutSeconds: () => 2,
    idleGraceMs: 1000,
  });
  t.after(() => {
    abort.abort();
  });
  await eventually(() => (node.ready === true ? true : undefined), 5000, 'Ready');

  proxy.stall();
  h.fake.setNodeReady('k1-node01', false);
  await eventually(
    () => (health.at(-1) === false ? true : undefined),
    8000,
    'the silence to be noticed',
  );
  assert.equal(node.ready, true, 'nothing could arrive through the black hole');
  proxy.resume();
  await eventually(
    () => (node.ready === false ? true : undefined),
    15_000,
    'the change, through a new connection',
  );
});

test('a watch that ends at once backs off instead of looping', async () => {
  let watches = 0;
  // a client whose every watch is answered and closed at once (an intermediary with a short
  // stream timeout would do that): only the loop's own logic is under test here
  const api = {
    request: () => Promise.resolve({ metadata: { resourceVersion: '1' }, items: [] }),
    watch: () => {
      watches++;
      // ends on the next turn of the event loop, as a closed socket would
      return new Promise((resolve) => setImmediate(resolve));
    },
  } as unknown as KubeApi;
  const abort = new AbortController();
  const done = runWatchedCollection({
    api,
    path: '/api/v1/nodes',
    log: silent,
    signal: abort.signal,
    onSync: () => undefined,
    onEvent: () => undefined,
  });
  await sleep(2500);
  abort.abort();
  await done;
  assert.ok(watches <= 4, `${watches} watches in 2.5 s`);
});

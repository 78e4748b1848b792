// The own-Node and pods-on-this-node watches: follow changes, survive outages and 410 Expired.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { OwnNode } from '../../agent/kubernetes/ownNode.ts';
import { PodsOnNode } from '../../agent/kubernetes/podsOnNode.ts';
import { KubeApiError } from '../../agent/kubernetes/kubeApi.ts';
import type { KubeApi, RequestOptions, WatchEvent } from '../../agent/kubernetes/kubeApi.ts';
import { runWatchedCollection } from '../../agent/kubernetes/watchedCollection.ts';
import { eventually, sleep } from '../helpers.ts';
import { clientVia, forbidden, harness, silent } from './kubeHarness.ts';
import type { Harness } from './kubeHarness.ts';
import { startTcpProxy } from './tcpProxy.ts';

/** The own Node followed through h's client until the test ends, once it has been seen Ready. */
async function followOwnNode(
  t: TestContext,
  h: Harness,
): Promise<{ node: OwnNode; health: boolean[] }> {
  const node = new OwnNode();
  const abort = new AbortController();
  const health: boolean[] = [];
  void node.run(h.api, 'k1-node01', silent, abort.signal, (healthy) => health.push(healthy));
  t.after(() => {
    abort.abort();
  });
  await eventually(() => (node.ready === true ? true : undefined), 5000, 'Ready');
  return { node, health };
}

test('the own Node is followed; after an outage and compaction it lists again and catches up', async (t) => {
  const h = await harness(t);
  const { node, health } = await followOwnNode(t, h);
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
  // the watch resumed after the outage was answered 410, and a list followed it at once, from
  // the cache but no older than the last resourceVersion seen (client-go's relist)
  const nodeCalls = h.fake.requests.filter((r) => r.path === '/api/v1/nodes');
  const expired = nodeCalls.findIndex((r) => r.watchError === 410);
  assert.ok(expired > 0, 'a watch was answered 410 Expired');
  const relist = nodeCalls[expired + 1];
  assert.equal(relist?.query.get('watch'), null, 'a list right after the 410');
  assert.equal(
    relist?.query.get('resourceVersion'),
    nodeCalls[expired]?.query.get('resourceVersion'),
  );
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

test('a node whose pods make a list over 16 MiB: read from etcd in pages, then followed (and by check)', async (t) => {
  const h = await harness(t);
  // 600 pods with 30 KB of annotations each (a last-applied-configuration, say): 18 MB at once
  const big = { 'kubectl.kubernetes.io/last-applied-configuration': 'x'.repeat(30_000) };
  for (let i = 0; i < 600; i++)
    h.fake.addPod({
      namespace: 'dense',
      name: `app-${i}`,
      nodeName: 'k1-node01',
      annotations: big,
    });
  const pods = new PodsOnNode();
  const abort = new AbortController();
  void pods.run(h.api, 'k1-node01', silent, abort.signal);
  t.after(() => {
    abort.abort();
  });
  await eventually(() => (pods.size === 600 ? true : undefined), 15_000, '600 pods');
  const lists = h.fake.requests
    .filter((r) => r.path === '/api/v1/pods' && r.query.get('watch') === null)
    .map((r) => ({
      rv: r.query.get('resourceVersion'),
      limit: r.query.get('limit'),
      continued: r.query.has('continue'),
    }));
  // the cache's answer (everything at once) was refused for its size, once, and counted; then
  // etcd, in client-go's pages of 500
  assert.deepEqual(lists, [
    { rv: '0', limit: null, continued: false },
    { rv: null, limit: '500', continued: false },
    { rv: null, limit: '500', continued: true },
  ]);
  assert.deepEqual(h.errors, ['list']);
  // and the watch goes on from the pages' snapshot
  h.fake.addPod({ namespace: 'dense', name: 'late', nodeName: 'k1-node01' });
  await eventually(() => (pods.size === 601 ? true : undefined), 5000, 'the pod added later');
  // `node-auditor check` lists once, no watch: the same fallback
  const once = new PodsOnNode();
  await once.load(h.api, 'k1-node01');
  assert.equal(once.size, 601);
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

/** /api/v1/nodes followed through a stub client, the loop's own logic alone, until stopped. */
function followNodes(api: KubeApi): { stop: () => Promise<void> } {
  const abort = new AbortController();
  const done = runWatchedCollection({
    api,
    path: '/api/v1/nodes',
    log: silent,
    signal: abort.signal,
    onSync: () => undefined,
    onEvent: () => undefined,
  });
  return {
    stop: async () => {
      abort.abort();
      await done;
    },
  };
}

async function followNodesFor(api: KubeApi, ms: number): Promise<void> {
  const following = followNodes(api);
  await sleep(ms);
  await following.stop();
}

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
  await followNodesFor(api, 2500);
  assert.ok(watches <= 4, `${watches} watches in 2.5 s`);
});

/** The fake's list and watch calls on a path: [verb, resourceVersion asked for, ERROR code]. */
function listsAndWatches(h: Harness, path: string): [string, string | null, number | null][] {
  return h.fake.requests
    .filter((r) => r.path === path)
    .map((r) => [
      r.query.get('watch') === '1' ? 'watch' : 'list',
      r.query.get('resourceVersion'),
      r.watchError ?? null,
    ]);
}

test('a live watch ended by ERROR 410 lists again at once, no older than it had seen, and keeps following', async (t) => {
  const h = await harness(t);
  const { node, health } = await followOwnNode(t, h);
  const listed = h.fake.resourceVersion();
  h.fake.setNodeReady('k1-node01', false);
  await eventually(() => (node.ready === false ? true : undefined), 5000, 'NotReady');
  const seen = h.fake.resourceVersion();

  // etcd compacts past the open watch: ERROR 410 Expired on the stream, which then ends
  const expiredAt = Date.now();
  assert.equal(h.fake.expireWatches(), 1);
  const compacted = h.fake.resourceVersion();
  await eventually(
    () => (listsAndWatches(h, '/api/v1/nodes').length === 4 ? true : undefined),
    5000,
    'a list and a new watch',
  );
  // a change after the relist arrives through the new watch
  h.fake.setNodeReady('k1-node01', true);
  await eventually(() => (node.ready === true ? true : undefined), 5000, 'Ready again');

  assert.deepEqual(listsAndWatches(h, '/api/v1/nodes'), [
    ['list', '0', null], // the first list: whatever the API server's cache holds
    ['watch', listed, 410],
    ['list', seen, null], // the relist: from the cache, but not older than what was seen
    ['watch', compacted, null],
  ]);
  const relist = h.fake.requests.filter((r) => r.path === '/api/v1/nodes')[2];
  // a healthy watch that expires is not a failure: no backoff, no unhealthy blip
  assert.ok((relist?.at ?? Infinity) - expiredAt < 400, 'listed again at once');
  assert.ok(!health.includes(false), 'never unhealthy');
});

/** A client whose every watch opens, says ERROR 410 Expired and ends, as a stale cache would. */
function alwaysExpired(lists: (string | undefined)[], connectMs = 0) {
  return {
    request: (options: RequestOptions) => {
      lists.push(options.query?.resourceVersion);
      return Promise.resolve({ metadata: { resourceVersion: '5' }, items: [] });
    },
    watch: async (_options: unknown, onEvent: (event: WatchEvent) => void, onOpen?: () => void) => {
      // a slow connect (TLS, an exec credential plugin) before the stream opens
      if (connectMs > 0) await sleep(connectMs);
      onOpen?.();
      // the event and the end come on the next turn of the event loop, as from a socket
      return new Promise<void>((resolve) =>
        setImmediate(() => {
          onEvent({
            type: 'ERROR',
            object: {
              kind: 'Status',
              apiVersion: 'v1',
              metadata: {},
              status: 'Failure',
              message: 'too old resource version: 5 (9)',
              reason: 'Expired',
              code: 410,
            },
          });
          resolve();
        }),
      );
    },
  } as unknown as KubeApi;
}

test('watches that expire at once (a stale cache) back off and list from etcd instead of looping', async () => {
  const lists: (string | undefined)[] = [];
  await followNodesFor(alwaysExpired(lists), 3000);
  // backoff from 1 s with jitter: lists at 0, 0.5-1 s, 1.5-3 s; without it, thousands
  assert.ok(lists.length >= 2 && lists.length <= 4, `${lists.length} lists in 3 s`);
  // the first from the cache ("0"); once its position proved gone, consistent reads (no
  // resourceVersion parameter, as client-go sends "")
  assert.deepEqual(lists.slice(0, 2), ['0', undefined]);
  assert.ok(lists.slice(1).every((rv) => rv === undefined));
});

test('a watch slow to open and then expired at once still backs off: the stream did not last', async () => {
  const lists: (string | undefined)[] = [];
  await followNodesFor(alwaysExpired(lists, 1200), 6500);
  // each round is 1.2 s of connecting plus a growing backoff (0.5-1, 1-2, 2-4 s): 3 or 4 lists
  // by 6.5 s; counted from the request, the 1.2 s would pass for a stream that lasted, and it
  // would list again at once every 1.2 s (6)
  assert.ok(lists.length >= 2 && lists.length <= 4, `${lists.length} lists in 6.5 s`);
});

test('a relist the cache cannot serve yet (504 Too large resource version) is retried from etcd', async () => {
  const lists: (string | undefined)[] = [];
  let watches = 0;
  const base = alwaysExpired(lists);
  const api = {
    request: (options: RequestOptions) => {
      if (options.query?.resourceVersion === '7') {
        lists.push('7');
        return Promise.reject(
          new KubeApiError(
            'list',
            '/api/v1/nodes',
            504,
            'Timeout',
            'Too large resource version: 7, current: 6',
          ),
        );
      }
      return base.request(options);
    },
    // the first watch works for a while (a BOOKMARK at 7), then expires: a relist from 7
    watch: (options: unknown, onEvent: (event: WatchEvent) => void, onOpen?: () => void) => {
      if (++watches > 1) return base.watch(options as never, onEvent, onOpen);
      onOpen?.();
      onEvent({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '7' } } });
      return base.watch(options as never, onEvent, () => undefined);
    },
  } as unknown as KubeApi;
  const following = followNodes(api);
  await eventually(() => (lists.length >= 3 ? true : undefined), 5000, 'three lists');
  await following.stop();
  assert.deepEqual(lists.slice(0, 3), ['0', '7', undefined]);
});

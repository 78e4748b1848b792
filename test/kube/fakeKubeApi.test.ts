// The fake kube-apiserver against the real recordings in test/fixtures/kube-api: the same
// request must get the same status and body (less the values that change on every run).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import { startFakeKubeApi } from './fakeKubeApi.ts';
import type { FakeKubeApi, IdentityName } from './fakeKubeApi.ts';

interface Fixture {
  request: { method: string; path: string; headers: Record<string, string>; body: unknown };
  response: {
    status: number;
    headers: Record<string, string>;
    body: unknown;
    stream?: { parsed: WatchLine }[];
  };
}

interface WatchLine {
  type: string;
  object: Record<string, unknown>;
}

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  body: Record<string, unknown>;
}

type Obj = Record<string, unknown>;

function fixture(name: string): Fixture {
  const url = new URL(`../fixtures/kube-api/${name}`, import.meta.url);
  return JSON.parse(readFileSync(url, 'utf8')) as Fixture;
}

function obj(v: unknown): Obj {
  assert.ok(
    typeof v === 'object' && v !== null && !Array.isArray(v),
    `not an object: ${String(v)}`,
  );
  return v as Obj;
}

let api: FakeKubeApi;

function call(
  identity: IdentityName | 'anonymous',
  method: string,
  path: string,
  body?: unknown,
  contentType?: string,
  extraHeaders: Record<string, string> = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    // the recorder's User-Agent, so the managedFields manager matches the recordings
    const headers: Record<string, string> = {
      Accept: 'application/json',
      'User-Agent': 'node-auditor-fixture-recorder/1.0',
    };
    if (identity !== 'anonymous') headers.Authorization = `Bearer ${api.tokens[identity]}`;
    Object.assign(headers, extraHeaders);
    const data = body === undefined ? undefined : JSON.stringify(body);
    if (data !== undefined) headers['Content-Type'] = contentType ?? 'application/json';
    const req = https.request(
      new URL(path, api.url),
      { method, headers, ca: api.caPem, agent: false },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          let parsed: Obj = {};
          try {
            parsed = JSON.parse(text) as Obj;
          } catch {
            // text bodies
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body: parsed });
        });
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

/** Replays a recorded request (as `identity`) and returns the reply. */
function replay(name: string, identity: IdentityName | 'anonymous', patchBody?: unknown) {
  const f = fixture(name);
  const contentType = f.request.headers['Content-Type'];
  return call(
    identity,
    f.request.method,
    f.request.path,
    patchBody ?? f.request.body ?? undefined,
    contentType,
  );
}

/** Same status and the very same body (Status objects carry nothing that varies). */
async function sameAsRecorded(name: string, identity: IdentityName | 'anonymous') {
  const f = fixture(name);
  const reply = await replay(name, identity);
  assert.equal(reply.status, f.response.status, `${name}: ${reply.text}`);
  assert.deepEqual(reply.body, f.response.body, name);
  assert.equal(reply.text, `${JSON.stringify(f.response.body)}\n`, `${name}: byte for byte`);
  const recordedNames = Object.keys(f.response.headers).filter(
    (h) => !['Date', 'Audit-Id'].includes(h),
  );
  for (const h of recordedNames)
    assert.ok(h.toLowerCase() in reply.headers, `${name}: header ${h}`);
  const pf = 'x-kubernetes-pf-flowschema-uid';
  assert.equal(pf in reply.headers, 'X-Kubernetes-Pf-Flowschema-Uid' in f.response.headers, name);
  assert.equal(
    'x-content-type-options' in reply.headers,
    'X-Content-Type-Options' in f.response.headers,
    name,
  );
  return reply;
}

/** The object without what changes on every run (uid, resourceVersion, timestamps of writes). */
function stable(o: unknown): Obj {
  const copy = structuredClone(obj(o));
  const meta = obj(copy.metadata);
  delete meta.uid;
  delete meta.resourceVersion;
  delete meta.creationTimestamp;
  if (Array.isArray(meta.managedFields)) {
    for (const e of meta.managedFields as Obj[]) delete e.time;
  }
  return copy;
}

function conditions(o: unknown): Obj[] {
  return obj(obj(o).status).conditions as Obj[];
}

function watchLines(
  path: string,
  identity: IdentityName,
  onLine?: (line: WatchLine) => void,
): Promise<{ status: number; lines: WatchLine[]; ms: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const req = https.request(
      new URL(path, api.url),
      { headers: { Authorization: `Bearer ${api.tokens[identity]}` }, ca: api.caPem, agent: false },
      (res) => {
        const lines: WatchLine[] = [];
        let buffer = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffer += chunk;
          let nl: number;
          while ((nl = buffer.indexOf('\n')) >= 0) {
            const line = JSON.parse(buffer.slice(0, nl)) as WatchLine;
            buffer = buffer.slice(nl + 1);
            lines.push(line);
            onLine?.(line);
          }
        });
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, lines, ms: Date.now() - started });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

before(async () => {
  api = await startFakeKubeApi({ nodes: ['k1-node01', 'k1-node02'] });
});

after(async () => {
  await api.close();
});

describe('errors match the recordings byte for byte', () => {
  test('403: verbs and scopes the ServiceAccount lacks (permissions.ts)', async () => {
    await sameAsRecorded('sa-list-leases-403.json', 'sa');
    await sameAsRecorded('sa-patch-lease-403.json', 'sa');
    await sameAsRecorded('sa-patch-node-main-resource-403.json', 'sa');
    await sameAsRecorded('sa-create-lease-kube-node-lease-403.json', 'sa');
  });

  test('403: a ServiceAccount granted only what the default settings need may not patch Node status', async () => {
    // what the chart grants with kubernetes.nodeConditions off (permissions.ts, neededBy)
    const shared = api;
    api = await startFakeKubeApi({ rbacFeatures: ['always', 'events', 'leaderElection'] });
    try {
      await sameAsRecorded('sa-patch-node-status-norbac-403.json', 'sa');
    } finally {
      await api.close();
      api = shared;
    }
    // the shared fake grants NodeConditions, as the recording's ServiceAccount had it
    assert.equal((await replay('sa-patch-node-status-smp-200.json', 'sa')).status, 200);
  });

  test('403: a ServiceAccount with no RBAC granted (rbacFeatures: [])', async () => {
    const granted = api;
    api = await startFakeKubeApi({ rbacFeatures: [] });
    try {
      await sameAsRecorded('sa-create-lease-norbac-403.json', 'sa');
      await sameAsRecorded('sa-get-node-k1-node01-norbac-403.json', 'sa');
      await sameAsRecorded('sa-patch-node-status-norbac-403.json', 'sa');
      await sameAsRecorded('sa-clusterrolebindings-norbac-403.json', 'sa');
    } finally {
      await api.close();
      api = granted;
    }
  });

  test('403: anonymous, and the node identity (Node authorizer, NodeRestriction)', async () => {
    await sameAsRecorded('anonymous-nodes-403.json', 'anonymous');
    await sameAsRecorded('anonymous-get-node-does-not-exist-403.json', 'anonymous');
    await sameAsRecorded('anonymous-api-403.json', 'anonymous');
    await sameAsRecorded('node-patch-other-node-status-403.json', 'node');
    await sameAsRecorded('node-delete-other-node-403.json', 'node');
    await sameAsRecorded('node-create-lease-node-auditor-403.json', 'node');
    await sameAsRecorded('node-create-lease-kube-node-lease-other-name-403.json', 'node');
    await sameAsRecorded('node-get-event-core-v1-403.json', 'node');
    await sameAsRecorded('node-create-event-events-v1-403.json', 'node');
  });

  test('401: a bad token, with no flow-schema headers', async () => {
    const f = fixture('badtoken-api-401.json');
    const reply = await call('anonymous', 'GET', '/api', undefined, undefined, {
      Authorization: 'Bearer not-a-token',
    });
    assert.equal(reply.status, 401);
    assert.equal(reply.text, `${JSON.stringify(f.response.body)}\n`);
    assert.ok(!('x-kubernetes-pf-flowschema-uid' in reply.headers));
    assert.equal(api.requests.at(-1)?.identity, 'invalid');
  });

  test('404: a node that does not exist', async () => {
    // the agent's ServiceAccount has no get on nodes (it only lists and watches): the same 404 as admin
    await sameAsRecorded('admin-get-node-does-not-exist-404.json', 'admin');
    await sameAsRecorded('node-get-node-does-not-exist-404.json', 'node');
    const metrics = await replay('admin-metrics-nodes-404.json', 'admin');
    assert.equal(metrics.status, 404);
    assert.equal(metrics.text, fixture('admin-metrics-nodes-404.json').response.body);
    assert.equal(metrics.headers['content-type'], 'text/plain; charset=utf-8');
  });

  test('health and version', async () => {
    const healthz = await replay('anonymous-healthz-200.json', 'anonymous');
    assert.equal(healthz.status, 200);
    assert.equal(healthz.text, 'ok');
    assert.equal(healthz.headers['content-type'], 'text/plain; charset=utf-8');
    const version = await replay('anonymous-version-200.json', 'anonymous');
    assert.deepEqual(version.body, fixture('anonymous-version-200.json').response.body);
    assert.equal(version.headers['content-length'], '265');
  });
});

describe('leases', () => {
  test('create, renew, and a stale resourceVersion gets the recorded 409', async () => {
    const created = await replay('sa-create-lease-201.json', 'sa');
    assert.equal(created.status, 201, created.text);
    assert.deepEqual(
      stable(created.body),
      stable(fixture('sa-create-lease-201.json').response.body),
    );
    const rv = obj(created.body.metadata).resourceVersion;

    const renew = obj(structuredClone(fixture('sa-update-lease-renew-200.json').request.body));
    obj(renew.metadata).resourceVersion = rv;
    obj(renew.metadata).uid = obj(created.body.metadata).uid;
    const renewed = await call(
      'sa',
      'PUT',
      '/apis/coordination.k8s.io/v1/namespaces/node-auditor/leases/k1-node01',
      renew,
    );
    assert.equal(renewed.status, 200, renewed.text);
    assert.deepEqual(
      stable(renewed.body),
      stable(fixture('sa-update-lease-renew-200.json').response.body),
    );
    assert.notEqual(obj(renewed.body.metadata).resourceVersion, rv);

    const stale = obj(
      structuredClone(fixture('sa-update-lease-stale-resourceversion-409.json').request.body),
    );
    obj(stale.metadata).resourceVersion = rv;
    obj(stale.metadata).uid = obj(created.body.metadata).uid;
    const conflict = await call(
      'sa',
      'PUT',
      '/apis/coordination.k8s.io/v1/namespaces/node-auditor/leases/k1-node01',
      stale,
    );
    const f = fixture('sa-update-lease-stale-resourceversion-409.json');
    assert.equal(conflict.status, 409);
    assert.deepEqual(conflict.body, f.response.body);

    const again = await replay('sa-create-lease-201.json', 'sa');
    assert.equal(again.status, 409);
    assert.equal(again.body.reason, 'AlreadyExists');
    assert.equal(again.body.message, 'leases.coordination.k8s.io "k1-node01" already exists');
    assert.deepEqual(again.body.details, {
      name: 'k1-node01',
      group: 'coordination.k8s.io',
      kind: 'leases',
    });
    assert.equal(
      api.getLease('node-auditor', 'k1-node01')?.spec.renewTime,
      '2026-11-22T01:45:48.522626Z',
    );
    const bare = await call(
      'sa',
      'POST',
      '/apis/coordination.k8s.io/v1/namespaces/node-auditor/leases',
      {
        metadata: { name: 'no-kind' },
        spec: { holderIdentity: 'x', bogus: 1 },
      },
    );
    assert.equal(bare.status, 201);
    assert.equal(bare.body.kind, 'Lease');
    assert.equal(bare.headers.warning, '299 - "unknown field \\"spec.bogus\\""');
  });

  test('MicroTime: 3 digits or none is a 400, +00:00 is normalized to Z', async () => {
    await sameAsRecorded('sa-create-lease-microtime-millis-js-toisostring-400.json', 'sa');
    await sameAsRecorded('sa-create-lease-microtime-seconds-only-400.json', 'sa');
    const ok = await replay('sa-create-lease-microtime-micros-offset-201.json', 'sa');
    assert.equal(ok.status, 201);
    assert.deepEqual(
      stable(ok.body),
      stable(fixture('sa-create-lease-microtime-micros-offset-201.json').response.body),
    );
  });
});

describe('core/v1 events', () => {
  test('create 201 echoes the stored object; count patch; 422s and 404 as recorded', async () => {
    const created = await replay('node-create-event-core-v1-201.json', 'node');
    assert.equal(created.status, 201, created.text);
    assert.deepEqual(
      stable(created.body),
      stable(fixture('node-create-event-core-v1-201.json').response.body),
    );
    assert.equal(created.headers['content-length'], String(Buffer.byteLength(created.text)));

    const patched = await replay('node-patch-event-core-v1-count2-200.json', 'node');
    assert.equal(patched.status, 200, patched.text);
    assert.deepEqual(
      stable(patched.body),
      stable(fixture('node-patch-event-core-v1-count2-200.json').response.body),
    );
    assert.equal(
      api.events().find((e) => e.metadata.name === 'k1-node01.inotify-watches-exhausted')?.count,
      2,
    );

    await sameAsRecorded('node-create-event-core-v1-node-in-kube-system-422.json', 'node');
    await sameAsRecorded('node-create-event-core-v1-node-in-node-auditor-422.json', 'node');
    await sameAsRecorded(
      'node-create-event-core-v1-missing-involvedobject-kube-system-422.json',
      'node',
    );
    await sameAsRecorded('node-create-event-core-v1-missing-name-422.json', 'node');
    await sameAsRecorded('node-create-event-core-v1-missing-namespace-404.json', 'node');
    const noInvolved = await replay(
      'node-create-event-core-v1-missing-involvedobject-default-201.json',
      'node',
    );
    assert.deepEqual(
      stable(noInvolved.body),
      stable(
        fixture('node-create-event-core-v1-missing-involvedobject-default-201.json').response.body,
      ),
    );

    const dup = await replay('node-create-event-core-v1-201.json', 'node');
    assert.equal(dup.status, 409);
    assert.equal(dup.body.message, 'events "k1-node01.inotify-watches-exhausted" already exists');
  });
});

describe('node status patches (k1-node01 as recorded: Ready, then patches in order)', () => {
  const recorded = (name: string) => fixture(name).response.body;

  test('strategic merge by type, with apimachinery ordering and second truncation', async () => {
    // the fake's node has the recorded spec/status shape; only its Ready times differ
    const base = stable(api.getNode('k1-node01'));
    const first = stable(recorded('node-patch-node-status-smp-add-condition-200.json'));
    assert.deepEqual(base.spec, first.spec);
    assert.deepEqual(obj(base.status).addresses, obj(first.status).addresses);
    assert.deepEqual(obj(base.status).nodeInfo, obj(first.status).nodeInfo);

    const added = await replay('node-patch-node-status-smp-add-condition-200.json', 'node');
    assert.equal(added.status, 200, added.text);
    assert.deepEqual(
      conditions(added.body).map((c) => c.type),
      ['InotifyPressure', 'Ready'],
    );
    assert.deepEqual(
      conditions(added.body)[0],
      conditions(recorded('node-patch-node-status-smp-add-condition-200.json'))[0],
    );

    const updated = await replay('node-patch-node-status-smp-update-condition-200.json', 'node');
    assert.deepEqual(
      conditions(updated.body).map((c) => c.type),
      ['InotifyPressure', 'Ready'],
    );
    assert.deepEqual(
      conditions(updated.body)[0],
      conditions(recorded('node-patch-node-status-smp-update-condition-200.json'))[0],
    );
  });

  test('merge patch replaces the array; SMP restores Ready in front', async () => {
    const replaced = await replay(
      'node-patch-node-status-mergepatch-replaces-conditions-200.json',
      'node',
    );
    assert.deepEqual(
      stable(replaced.body),
      stable(recorded('node-patch-node-status-mergepatch-replaces-conditions-200.json')),
    );
    const restored = await replay('node-patch-node-status-smp-restore-ready-200.json', 'node');
    assert.deepEqual(
      stable(restored.body),
      stable(recorded('node-patch-node-status-smp-restore-ready-200.json')),
    );
  });

  test('json patch by index: duplicates, test guards, generic 422s', async () => {
    const appended = await replay(
      'node-patch-node-status-jsonpatch-append-duplicate-200.json',
      'node',
    );
    assert.deepEqual(
      stable(appended.body),
      stable(recorded('node-patch-node-status-jsonpatch-append-duplicate-200.json')),
    );
    await sameAsRecorded('node-patch-node-status-jsonpatch-test-fails-422.json', 'node');
    await sameAsRecorded('node-patch-node-status-jsonpatch-bad-index-422.json', 'node');
    const guarded = await replay('node-patch-node-status-jsonpatch-test-replace-200.json', 'node');
    assert.deepEqual(
      stable(guarded.body),
      stable(recorded('node-patch-node-status-jsonpatch-test-replace-200.json')),
    );
    const reset = await replay('node-patch-node-status-mergepatch-reset-200.json', 'node');
    assert.deepEqual(
      stable(reset.body),
      stable(recorded('node-patch-node-status-mergepatch-reset-200.json')),
    );
  });

  test('a patch of an existing type keeps its place (ServiceAccount, as recorded)', async () => {
    const sa = await replay('sa-patch-node-status-smp-200.json', 'sa');
    assert.equal(sa.status, 200, sa.text);
    assert.deepEqual(
      conditions(sa.body),
      conditions(recorded('sa-patch-node-status-smp-200.json')),
    );
  });

  test('application/json is a 415', async () => {
    await sameAsRecorded('node-patch-node-status-wrong-content-type-415.json', 'node');
  });
});

describe('watch', () => {
  test('from a compacted resourceVersion: 200, one ERROR 410 Expired line, end', async () => {
    const rv = api.resourceVersion();
    api.compactAll();
    const f = fixture('admin-watch-nodes-expired-rv-200.json');
    const result = await watchLines(
      `/api/v1/nodes?watch=1&resourceVersion=${rv}&timeoutSeconds=3`,
      'sa',
    );
    assert.equal(result.status, 200);
    assert.equal(result.lines.length, 1);
    const line = result.lines[0]!;
    const expected = obj(f.response.stream?.[0]?.parsed.object);
    assert.equal(line.type, 'ERROR');
    assert.deepEqual({ ...line.object, message: '' }, { ...expected, message: '' });
    assert.match(
      String(line.object.message),
      new RegExp(`^too old resource version: ${rv} \\(\\d+\\)$`),
    );
  });

  test('expireWatches: an open watch gets one ERROR 410 Expired and ends; its position is gone', async () => {
    const rv = api.resourceVersion();
    let ended = 0;
    setTimeout(() => {
      ended = api.expireWatches();
    }, 200);
    const result = await watchLines(
      `/api/v1/nodes?watch=1&resourceVersion=${rv}&timeoutSeconds=30`,
      'sa',
    );
    assert.equal(ended, 1);
    assert.equal(result.status, 200);
    assert.ok(result.ms < 5000, `ended after ${String(result.ms)} ms`);
    assert.deepEqual(
      result.lines.map((l) => l.type),
      ['ERROR'],
    );
    // the recorded Status, key order included; the message is the etcd3 watcher's
    const expected = obj(
      fixture('admin-watch-nodes-expired-rv-200.json').response.stream?.[0]?.parsed.object,
    );
    const status = result.lines[0]!.object;
    assert.deepEqual({ ...status, message: '' }, { ...expected, message: '' });
    assert.deepEqual(Object.keys(status), Object.keys(expected));
    assert.equal(status.message, 'The resourceVersion for the provided watch is too old.');
    const record = api.requests.filter((r) => r.query.get('watch') === '1').at(-1);
    assert.equal(record?.watchError, 410);
    // watching again from there is refused, as from any compacted resourceVersion
    const resumed = await watchLines(
      `/api/v1/nodes?watch=1&resourceVersion=${rv}&timeoutSeconds=3`,
      'sa',
    );
    assert.equal(resumed.lines.length, 1);
    assert.match(String(resumed.lines[0]?.object.message), /^too old resource version: /);
  });

  test('synthetic ADDED, a MODIFIED, BOOKMARKs, a clean end at timeoutSeconds', async () => {
    let patched = false;
    const result = await watchLines(
      '/api/v1/nodes?watch=1&fieldSelector=metadata.name%3Dk1-node01&allowWatchBookmarks=true&timeoutSeconds=2',
      'sa',
      (line) => {
        if (line.type === 'ADDED' && !patched) {
          patched = true;
          api.setNodeReady('k1-node01', false);
        }
      },
    );
    assert.equal(result.status, 200);
    assert.deepEqual(
      result.lines.slice(0, 2).map((l) => l.type),
      ['ADDED', 'MODIFIED'],
    );
    const modified = result.lines[1]!;
    assert.equal(conditions(modified.object).find((c) => c.type === 'Ready')?.status, 'False');
    const bookmark = result.lines.find((l) => l.type === 'BOOKMARK');
    const recorded = fixture('admin-watch-node-k1-node01-from-rv-200.json').response.stream?.[1]
      ?.parsed;
    assert.ok(bookmark !== undefined && recorded !== undefined);
    assert.deepEqual({ ...bookmark.object, metadata: {} }, { ...recorded.object, metadata: {} });
    assert.deepEqual(Object.keys(obj(bookmark.object.metadata)), [
      'resourceVersion',
      'creationTimestamp',
    ]);
    assert.ok(result.ms >= 1900 && result.ms < 3500, `closed after ${String(result.ms)} ms`);
    const from = String(obj(modified.object.metadata).resourceVersion);
    api.setNodeReady('k1-node01', true);
    const resumed = await watchLines(
      `/api/v1/nodes?watch=1&resourceVersion=${from}&timeoutSeconds=1`,
      'sa',
    );
    assert.deepEqual(
      resumed.lines.map((l) => l.type),
      ['MODIFIED'],
    );
  });

  test('pods on a node: list and watch by spec.nodeName', async () => {
    const pod = api.addPod({ namespace: 'default', name: 'web', nodeName: 'k1-node01' });
    api.addPod({ namespace: 'default', name: 'elsewhere', nodeName: 'k1-node02' });
    const list = await call('sa', 'GET', '/api/v1/pods?fieldSelector=spec.nodeName%3Dk1-node01');
    assert.equal(list.status, 200);
    const items = list.body.items as Obj[];
    assert.deepEqual(
      items.map((i) => obj(i.metadata).name),
      ['web'],
    );
    assert.ok(!('kind' in items[0]!));
    const status = obj(items[0]!.status);
    assert.match(
      String((status.containerStatuses as Obj[])[0]!.containerID),
      /^containerd:\/\/[0-9a-f]{64}$/,
    );
    const rv = String(obj(list.body.metadata).resourceVersion);
    setTimeout(() => {
      api.deletePod('default', 'web');
    }, 100);
    const watched = await watchLines(
      `/api/v1/pods?watch=1&fieldSelector=spec.nodeName%3Dk1-node01&resourceVersion=${rv}&timeoutSeconds=1`,
      'sa',
    );
    assert.deepEqual(
      watched.lines.map((l) => [l.type, obj(l.object.metadata).uid]),
      [['DELETED', pod.metadata.uid]],
    );
  });
});

describe('lists', () => {
  test('limit pages a list from etcd (continue); the watch cache (resourceVersion=0) ignores it', async () => {
    // the two recorded nodes: k1-node01, k1-node02
    const first = await call('sa', 'GET', '/api/v1/nodes?limit=1');
    assert.equal(first.status, 200);
    assert.equal((first.body.items as unknown[]).length, 1);
    const token = obj(first.body.metadata).continue;
    assert.equal(typeof token, 'string');
    const second = await call(
      'sa',
      'GET',
      `/api/v1/nodes?limit=1&continue=${encodeURIComponent(String(token))}`,
    );
    assert.deepEqual(
      (second.body.items as Obj[]).map((n) => obj(n.metadata).name),
      ['k1-node02'],
    );
    assert.equal(obj(second.body.metadata).continue, undefined);
    const cached = await call('sa', 'GET', '/api/v1/nodes?limit=1&resourceVersion=0');
    assert.equal((cached.body.items as unknown[]).length, 2);
    assert.equal(obj(cached.body.metadata).continue, undefined);
  });

  test("a continue token whose revision etcd compacted: 410 Expired, as the API server's etcd3 store answers, with a token for the rest", async () => {
    const first = await call('sa', 'GET', '/api/v1/nodes?limit=1');
    const snapshot = obj(first.body.metadata).resourceVersion;
    const token = String(obj(first.body.metadata).continue);
    // the pages are read at the first one's revision, even after writes in between
    api.setNodeReady('k1-node02', false);
    const page = await call(
      'sa',
      'GET',
      `/api/v1/nodes?limit=1&continue=${encodeURIComponent(token)}`,
    );
    assert.equal(obj(page.body.metadata).resourceVersion, snapshot);

    api.compactAll();
    const expired = await call(
      'sa',
      'GET',
      `/api/v1/nodes?limit=1&continue=${encodeURIComponent(token)}`,
    );
    assert.equal(expired.status, 410);
    assert.equal(expired.body.kind, 'Status');
    assert.equal(expired.body.reason, 'Expired');
    assert.equal(expired.body.code, 410);
    assert.match(
      String(expired.body.message),
      /^The provided continue parameter is too old to display a consistent list result\. You can start a new list without the continue parameter, or use the continue token in this response/,
    );
    // the token it hands back reads the rest at the current revision
    const rest = String(obj(expired.body.metadata).continue);
    const inconsistent = await call(
      'sa',
      'GET',
      `/api/v1/nodes?limit=1&continue=${encodeURIComponent(rest)}`,
    );
    assert.equal(inconsistent.status, 200);
    assert.deepEqual(
      (inconsistent.body.items as Obj[]).map((n) => obj(n.metadata).name),
      ['k1-node02'],
    );
  });
});

describe('faults', () => {
  test('failNext 429 with Retry-After, then normal service', async () => {
    api.failNext(1, 429, { retryAfterSeconds: 3 });
    const limited = await call('sa', 'GET', '/api/v1/nodes');
    assert.equal(limited.status, 429);
    assert.equal(limited.headers['retry-after'], '3');
    assert.equal(limited.body.reason, 'TooManyRequests');
    assert.equal(limited.body.message, 'Too many requests, please try again later.');
    assert.equal((await call('sa', 'GET', '/api/v1/nodes')).status, 200);
  });

  test('goDown refuses and resets, comeBack listens on the same port', async () => {
    const port = api.port;
    const watching = watchLines('/api/v1/nodes?watch=1&timeoutSeconds=30', 'sa').then(
      () => 'ended',
      (error: unknown) => (error as { code?: string }).code ?? 'error',
    );
    await new Promise((r) => setTimeout(r, 200));
    await api.goDown();
    const outcome = await watching;
    assert.equal(outcome, 'ECONNRESET');
    await assert.rejects(call('sa', 'GET', '/version'), { code: 'ECONNREFUSED' });
    await api.comeBack();
    assert.equal(api.port, port);
    assert.equal((await call('sa', 'GET', '/version')).status, 200);
    assert.ok(
      api.requests.some((r) => r.identity === 'sa' && r.path === '/version' && r.status === 200),
    );
  });
});

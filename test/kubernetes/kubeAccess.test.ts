// Finding the API and its credentials: the order DESIGN.md fixes, kubeconfig details, errors.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import pino from 'pino';
import { openKubeAccess } from '../../agent/kubernetes/kubeAccess.ts';
import type { KubeAccess, KubeAccessOptions } from '../../agent/kubernetes/kubeAccess.ts';
import { RETRY_MS } from '../../agent/kubernetes/tokenFile.ts';
import { KubeApi, KubeApiError, openKubeApi } from '../../agent/kubernetes/kubeApi.ts';
import { discoverKube } from '../../agent/kubernetes/kubeDiscovery.ts';
import type { KubeSource } from '../../agent/kubernetes/kubeDiscovery.ts';
import { startFakeKubeApi } from '../kube/fakeKubeApi.ts';
import { eventually, sleep, tempDir, writeFiles } from '../helpers.ts';

const kubeconfig = (
  server: string,
  user: Record<string, unknown>,
  cluster: Record<string, unknown> = {},
) =>
  JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    'current-context': 'ctx',
    contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u', namespace: 'team' } }],
    clusters: [{ name: 'c', cluster: { server, ...cluster } }],
    users: [{ name: 'u', user }],
  });

test('discovery order: explicit kubeconfig, then in-cluster, then $KUBECONFIG, else none', async (t) => {
  const dir = await tempDir(t);
  await writeFiles(dir, { 'sa/token': 'tok', 'kc.yaml': 'x' });
  const inCluster = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' };
  const sa = path.join(dir, 'sa');
  assert.deepEqual(
    await discoverKube({
      kubeconfig: '/explicit',
      env: { ...inCluster, KUBECONFIG: path.join(dir, 'kc.yaml') },
      serviceAccountDir: sa,
    }),
    {
      kind: 'found',
      source: { kind: 'kubeconfig', file: '/explicit' },
    },
  );
  assert.deepEqual(
    await discoverKube({
      env: { ...inCluster, KUBECONFIG: path.join(dir, 'kc.yaml') },
      serviceAccountDir: sa,
    }),
    {
      kind: 'found',
      source: { kind: 'in-cluster', host: '10.96.0.1', port: '443', dir: sa },
    },
  );
  // no token mounted (automountServiceAccountToken: false): not in-cluster
  assert.deepEqual(
    await discoverKube({
      env: { ...inCluster, KUBECONFIG: `/nope:${path.join(dir, 'kc.yaml')}` },
      serviceAccountDir: path.join(dir, 'none'),
    }),
    {
      kind: 'found',
      source: { kind: 'kubeconfig', file: path.join(dir, 'kc.yaml') },
    },
  );
  const none = await discoverKube({ env: { KUBECONFIG: '/nope' }, serviceAccountDir: sa });
  assert.deepEqual(none, {
    kind: 'none',
    reason: 'no file KUBECONFIG names can be read (/nope: no such file)',
  });
  assert.equal((await discoverKube({ env: {}, serviceAccountDir: sa })).kind, 'none');
});

test('a kubeconfig: server, CA and client cert from files relative to it, namespace, token', async (t) => {
  const dir = await tempDir(t);
  await writeFiles(dir, {
    'conf/ca.crt': 'CA PEM',
    'conf/client.crt': 'CERT PEM',
    'conf/client.key': 'KEY PEM',
    'conf/kubeconfig': kubeconfig(
      'https://10.0.0.1:6443/',
      { token: 'abc', 'client-certificate': 'client.crt', 'client-key': 'client.key' },
      { 'certificate-authority': 'ca.crt' },
    ),
  });
  const access = await openKubeAccess({
    kind: 'kubeconfig',
    file: path.join(dir, 'conf/kubeconfig'),
  });
  assert.equal(access.server.origin, 'https://10.0.0.1:6443');
  assert.equal(access.namespace, 'team');
  assert.deepEqual(access.tls, {
    ca: 'CA PEM',
    cert: 'CERT PEM',
    key: 'KEY PEM',
    rejectUnauthorized: true,
  });
  const request = { headers: {} as Record<string, string> };
  await access.authenticate(request);
  assert.equal(request.headers.Authorization, 'Bearer abc');
});

test('in-cluster: the ServiceAccount token is re-read when it rotates', async (t) => {
  const dir = await tempDir(t);
  await writeFiles(dir, { token: 'first', 'ca.crt': 'CA', namespace: 'node-auditor\n' });
  let now = 0; // monotonic: a wall clock stepped back must not stall the re-reading
  const access = await openKubeAccess(
    { kind: 'in-cluster', host: 'fd00::1', port: '443', dir },
    { monotonic: () => now },
  );
  assert.equal(access.server.href, 'https://[fd00::1]/');
  assert.equal(access.namespace, 'node-auditor');
  assert.equal(await authorization(access), 'Bearer first');
  await fs.writeFile(path.join(dir, 'token'), 'second');
  now += 59_000;
  assert.equal(await authorization(access), 'Bearer first', 'not re-read within the minute');
  // client-go re-reads it after 60 s
  now += 2000;
  assert.equal(await authorization(access), 'Bearer second');
  // a re-read that fails (the file gone for a moment) keeps the token it had
  await fs.rm(path.join(dir, 'token'));
  now += 61_000;
  assert.equal(await authorization(access), 'Bearer second');
});

test('a token file that cannot be read again: said once per run of failures (never the token), tried again every few seconds, and said when it can be read again', async (t) => {
  const dir = await tempDir(t);
  await writeFiles(dir, { token: 'tok-first', 'ca.crt': 'CA' });
  let now = 0;
  const lines: { event?: string; level: number; msg: string; file?: string; reason?: string }[] =
    [];
  const log = pino(
    { level: 'info' },
    { write: (line: string) => lines.push(JSON.parse(line) as (typeof lines)[number]) },
  );
  const access = await openKubeAccess(
    { kind: 'in-cluster', host: '10.0.0.1', port: '443', dir },
    { monotonic: () => now, log },
  );
  const file = path.join(dir, 'token');
  assert.equal(await authorization(access), 'Bearer tok-first');

  // the file is gone when it is due again: the token read before is used, and it is said once
  await fs.rm(file);
  now += 61_000;
  for (let i = 0; i < 3; i++) assert.equal(await authorization(access), 'Bearer tok-first');
  assert.deepEqual(
    lines.map((l) => [l.event, l.file, l.reason]),
    [['kube.token.unreadable', file, 'no such file']],
  );
  assert.match(
    lines[0]?.msg ?? '',
    /^cannot read the token file .*\/token \(no such file\); the token read before is used until it can \(tried again every 5s\)$/,
  );

  // it is back: not read again before the few seconds are over, then used, and said once
  await fs.writeFile(file, 'tok-second\n');
  now += 1000;
  assert.equal(await authorization(access), 'Bearer tok-first', 'not tried on every request');
  now += RETRY_MS;
  assert.equal(await authorization(access), 'Bearer tok-second');
  assert.equal(await authorization(access), 'Bearer tok-second');
  assert.deepEqual(
    lines.map((l) => l.event),
    ['kube.token.unreadable', 'kube.token.readable'],
  );

  // a later run of failures is said again
  await fs.writeFile(file, '\n');
  now += 61_000;
  assert.equal(await authorization(access), 'Bearer tok-second');
  assert.equal(lines.at(-1)?.event, 'kube.token.unreadable');
  assert.equal(lines.at(-1)?.reason, 'it is empty');
  assert.ok(!JSON.stringify(lines).includes('tok-'), 'no token in the log');
});

/** The Authorization header the access adds to a request. */
async function authorization(access: KubeAccess): Promise<string | undefined> {
  const request = { headers: {} as Record<string, string> };
  await access.authenticate(request);
  return request.headers.Authorization;
}

/** A client of the fake as the agent builds one, counting what the agent's metric counts. */
async function clientOf(
  t: TestContext,
  source: KubeSource,
  options: KubeAccessOptions = {},
): Promise<{ api: KubeApi; errors: KubeApiError[] }> {
  const errors: KubeApiError[] = [];
  const api = new KubeApi(await openKubeAccess(source, options), {
    timeoutMs: 3000,
    onError: (_verb, error) => errors.push(error),
  });
  t.after(() => {
    api.close();
  });
  return { api, errors };
}

test("a kubeconfig's token-file: relative to the kubeconfig, trimmed, read again a minute later (against the API server)", async (t) => {
  const fake = await startFakeKubeApi();
  t.after(() => fake.close());
  const dir = await tempDir(t);
  const file = path.join(dir, 'conf', 'kubeconfig');
  await fake.writeKubeconfig(file, 'sa');
  await fs.writeFile(
    file,
    (await fs.readFile(file, 'utf8')).replace(/^ {4}token: .*$/m, '    token-file: sa-token'),
  );
  // what `kubectl create token node-auditor > sa-token` leaves: a newline at the end
  await fs.writeFile(path.join(dir, 'conf', 'sa-token'), `${fake.tokens.sa}\n`);
  let now = 0;
  const { api, errors } = await clientOf(t, { kind: 'kubeconfig', file }, { monotonic: () => now });
  const listNodes = () => api.request({ verb: 'list', path: '/api/v1/nodes' });
  const identities = () => fake.requests.map((r) => r.identity);

  assert.equal(process.cwd() === path.join(dir, 'conf'), false, 'not resolved by luck');
  await listNodes();
  assert.deepEqual(identities(), ['sa']);

  // the token is rotated (here: to another identity's, so the server tells which one came)
  await fs.writeFile(path.join(dir, 'conf', 'sa-token'), `${fake.tokens.node}\n`);
  now += 30_000;
  await listNodes();
  now += 31_000;
  await listNodes();
  assert.deepEqual(identities(), ['sa', 'sa', 'node']);
  assert.deepEqual(errors, []);

  // a token-file that cannot be read is a configuration error naming it
  await fs.rm(path.join(dir, 'conf', 'sa-token'));
  await assert.rejects(
    openKubeAccess({ kind: 'kubeconfig', file }),
    /cannot read the token file .*conf\/sa-token: no such file/,
  );
});

test("a kubeconfig with both token and token-file: the file's token whenever it can be read, the token while it cannot, as client-go (against the API server)", async (t) => {
  const fake = await startFakeKubeApi();
  t.after(() => fake.close());
  const dir = await tempDir(t);
  const file = path.join(dir, 'kubeconfig');
  await fake.writeKubeconfig(file, 'node'); // its token: the node identity's
  await fs.writeFile(
    file,
    (await fs.readFile(file, 'utf8')).replace(/^( {4}token: .*)$/m, '$1\n    token-file: sa-token'),
  );
  // the file is not there yet: no configuration error, the token is used
  let now = 0;
  const { api, errors } = await clientOf(t, { kind: 'kubeconfig', file }, { monotonic: () => now });
  const listNodes = () => api.request({ verb: 'list', path: '/api/v1/nodes' });
  const identities = () => fake.requests.map((r) => r.identity);
  await listNodes();
  assert.deepEqual(identities(), ['node']);

  // once it can be read, the file's token wins (and is read again every minute)
  await fs.writeFile(path.join(dir, 'sa-token'), `${fake.tokens.sa}\n`);
  now += RETRY_MS;
  await listNodes();
  assert.deepEqual(identities(), ['node', 'sa']);
  assert.deepEqual(errors, []);
});

test('in-cluster: a token file ending in a newline works (against the API server)', async (t) => {
  const fake = await startFakeKubeApi();
  t.after(() => fake.close());
  const dir = await tempDir(t);
  await fake.writeServiceAccountDir(dir);
  await fs.writeFile(path.join(dir, 'token'), `${fake.tokens.sa}\n`);
  const { api, errors } = await clientOf(t, {
    kind: 'in-cluster',
    host: '127.0.0.1',
    port: String(fake.port),
    dir,
  });
  const list = await api.request<{ items: unknown[] }>({ verb: 'list', path: '/api/v1/nodes' });
  assert.equal(list.items.length, 1);
  assert.deepEqual(
    fake.requests.map((r) => [r.identity, r.status]),
    [['sa', 200]],
  );
  assert.deepEqual(errors, []);
});

test('a credential that cannot go into a header fails the call as a counted API error, without the token in it', async (t) => {
  const fake = await startFakeKubeApi();
  t.after(() => fake.close());
  const dir = await tempDir(t);
  const file = path.join(dir, 'kubeconfig');
  await fake.writeKubeconfig(file, 'sa');
  await fs.writeFile(
    file,
    (await fs.readFile(file, 'utf8')).replace(/^ {4}token: .*$/m, '    token: "secret\\nhalf"'),
  );
  const { api, errors } = await clientOf(t, { kind: 'kubeconfig', file });
  const failed = await api.request({ verb: 'list', path: '/api/v1/nodes' }).then(
    () => undefined,
    (error: unknown) => error,
  );
  assert.ok(failed instanceof KubeApiError, `a KubeApiError, not ${String(failed)}`);
  assert.equal(failed.reason, 'InvalidRequest');
  assert.equal(errors.length, 1, 'counted in node_auditor_kube_api_errors_total');
  assert.ok(!String(failed).includes('secret'), String(failed));
  assert.deepEqual(fake.requests, [], 'nothing was sent');
});

test('a broken kubeconfig is an error naming the file and what is wrong', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'kubeconfig');
  await assert.rejects(
    openKubeAccess({ kind: 'kubeconfig', file }),
    new RegExp(`kubeconfig ${file}: no such file`),
  );
  await fs.writeFile(
    file,
    JSON.stringify({ 'current-context': 'x', contexts: [], clusters: [], users: [] }),
  );
  await assert.rejects(
    openKubeAccess({ kind: 'kubeconfig', file }),
    /current-context "x" is not one of its contexts/,
  );
  await fs.writeFile(file, kubeconfig('https://h', {}, { 'certificate-authority': 'missing.crt' }));
  await assert.rejects(openKubeAccess({ kind: 'kubeconfig', file }), /cannot read missing\.crt/);
});

test('a kubeconfig, a file it names or a token file that is a FIFO is an error at once, not a hang', async (t) => {
  const dir = await tempDir(t);
  const fifo = path.join(dir, 'fifo');
  const made = spawnSync('mkfifo', [fifo]);
  assert.equal(made.status, 0, String(made.stderr));
  // Read with readFile, a FIFO waits for a writer: the agent sat in start-up, and a SIGTERM
  // then waited for it. Should an old reader be waiting, a writer that comes and goes lets it
  // end (EOF) when the test is over.
  t.after(async () => {
    const writer = await fs.open(fifo, constants.O_WRONLY | constants.O_NONBLOCK).catch(() => null);
    await writer?.close();
  });
  const notRegular = 'not a regular file (it is a FIFO)';
  const within = <T>(promise: Promise<T>): Promise<T> =>
    Promise.race([
      promise,
      sleep(3000).then(() => {
        throw new Error('still reading after 3 s');
      }),
    ]);
  await assert.rejects(within(openKubeAccess({ kind: 'kubeconfig', file: fifo })), {
    message: `kubeconfig ${fifo}: ${notRegular}`,
  });
  const file = path.join(dir, 'kubeconfig');
  for (const [user, cluster] of [
    [{ 'token-file': 'fifo' }, {}],
    [{ 'client-certificate': 'fifo', 'client-key': 'fifo' }, {}],
    [{ token: 'abc' }, { 'certificate-authority': 'fifo' }],
  ] as const) {
    await fs.writeFile(file, kubeconfig('https://10.0.0.1:6443', user, cluster));
    await assert.rejects(
      within(openKubeAccess({ kind: 'kubeconfig', file })),
      (error: Error) =>
        error.message.startsWith(`kubeconfig ${file}: `) && error.message.includes(notRegular),
    );
  }
  // in-cluster: the ServiceAccount's token
  await fs.mkdir(path.join(dir, 'sa'));
  await fs.symlink(fifo, path.join(dir, 'sa', 'token'));
  const access = await within(
    openKubeAccess({
      kind: 'in-cluster',
      host: '10.0.0.1',
      port: '443',
      dir: path.join(dir, 'sa'),
    }),
  );
  await assert.rejects(within(access.authenticate({ headers: {} })), {
    message: `cannot read the token file ${path.join(dir, 'sa', 'token')}: ${notRegular}`,
  });
});

test('exec plugins: a relative command runs from the kubeconfig directory; one that hangs is killed at the deadline', async (t) => {
  const dir = await tempDir(t);
  const credential = JSON.stringify({
    apiVersion: 'client.authentication.k8s.io/v1',
    kind: 'ExecCredential',
    status: { token: 'from-plugin' },
  });
  await writeFiles(dir, {
    'conf/bin/get-token': `#!/bin/sh\necho '${credential}'\n`,
    'conf/bin/hang': `#!/bin/sh\necho $$ > "${path.join(dir, 'hang.pid')}"\nexec sleep 30\n`,
  });
  await fs.chmod(path.join(dir, 'conf/bin/get-token'), 0o755);
  await fs.chmod(path.join(dir, 'conf/bin/hang'), 0o755);
  const withPlugin = (command: string) =>
    kubeconfig('https://10.0.0.1:6443', {
      exec: { apiVersion: 'client.authentication.k8s.io/v1', command, interactiveMode: 'Never' },
    });
  await writeFiles(dir, {
    'conf/good': withPlugin('./bin/get-token'),
    'conf/hung': withPlugin('./bin/hang'),
  });

  const good = await openKubeAccess({ kind: 'kubeconfig', file: path.join(dir, 'conf/good') });
  const request = { headers: {} as Record<string, string> };
  await good.authenticate(request);
  assert.equal(request.headers.Authorization, 'Bearer from-plugin');

  const hung = await openKubeAccess(
    { kind: 'kubeconfig', file: path.join(dir, 'conf/hung') },
    { credentialTimeoutMs: 500 },
  );
  const started = Date.now();
  await assert.rejects(
    hung.authenticate({ headers: {} }),
    /the credential plugin did not answer within 500ms/,
  );
  assert.ok(Date.now() - started < 2000);
  const pid = Number(await fs.readFile(path.join(dir, 'hang.pid'), 'utf8'));
  await eventually(
    () => {
      try {
        process.kill(pid, 0);
        return undefined;
      } catch {
        return true; // gone
      }
    },
    3000,
    'the plugin to be killed',
  );
});

test('credentials the agent cannot use (an auth-provider, an exec plugin needing a terminal) are one clear warning, without their secrets', async (t) => {
  const fake = await startFakeKubeApi();
  t.after(() => fake.close());
  const dir = await tempDir(t);
  const plain = path.join(dir, 'plain');
  await fake.writeKubeconfig(plain, 'sa');
  const text = await fs.readFile(plain, 'utf8');
  const withUser = (user: string) => text.replace(/^ {4}token: .*$/m, user);
  await writeFiles(dir, {
    gcp: withUser(
      '    auth-provider:\n      name: gcp\n      config:\n        access-token: secret-gcp-token\n        expiry: "2026-11-22T02:00:00Z"',
    ),
    interactive: withUser(
      '    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: /bin/false\n      interactiveMode: Always',
    ),
  });
  const open = async (name: string) => {
    const lines: { event?: string; level: number; msg: string }[] = [];
    const log = pino(
      { level: 'info' },
      { write: (line: string) => lines.push(JSON.parse(line) as (typeof lines)[number]) },
    );
    const errors: string[] = [];
    const api = await openKubeApi(
      { kind: 'kubeconfig', file: path.join(dir, name) },
      { timeoutMs: 2000, log, onError: (verb) => errors.push(verb) },
    );
    t.after(() => {
      api.close();
    });
    const failed = await api.request({ verb: 'list', path: '/api/v1/nodes' }).then(
      () => undefined,
      (error: unknown) => error,
    );
    return { lines: lines.filter((l) => l.level >= 40), failed, errors };
  };

  const gcp = await open('gcp');
  assert.equal(gcp.lines.length, 1, JSON.stringify(gcp.lines));
  assert.equal(gcp.lines[0]?.event, 'kube.auth.unsupported');
  assert.match(gcp.lines[0]?.msg ?? '', /auth-provider "gcp", which node-auditor does not support/);
  assert.match(gcp.lines[0]?.msg ?? '', /requests go without credentials/);
  assert.ok(!JSON.stringify(gcp.lines).includes('secret-gcp-token'), 'no secret in the log');
  // and then, as said: refused (as system:anonymous), counted
  assert.ok(gcp.failed instanceof KubeApiError && gcp.failed.status === 403);
  assert.deepEqual(gcp.errors, ['list']);

  const interactive = await open('interactive');
  assert.equal(interactive.lines.length, 1, JSON.stringify(interactive.lines));
  assert.match(interactive.lines[0]?.msg ?? '', /needs a terminal \(interactiveMode: Always\)/);

  assert.deepEqual((await open('plain')).lines, [], 'a usable kubeconfig: no warning');
});

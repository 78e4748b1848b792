// Finding the API and its credentials: the order DESIGN.md fixes, kubeconfig details, errors.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { openKubeAccess } from '../../agent/kubernetes/kubeAccess.ts';
import { discoverKube } from '../../agent/kubernetes/kubeDiscovery.ts';
import { eventually, tempDir, writeFiles } from '../helpers.ts';

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
  assert.deepEqual(none, { kind: 'none', reason: 'no file of KUBECONFIG=/nope exists' });
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
  const access = await openKubeAccess({ kind: 'in-cluster', host: 'fd00::1', port: '443', dir });
  assert.equal(access.server.href, 'https://[fd00::1]/');
  assert.equal(access.namespace, 'node-auditor');
  const before = { headers: {} as Record<string, string> };
  await access.authenticate(before);
  await fs.writeFile(path.join(dir, 'token'), 'second');
  const early = { headers: {} as Record<string, string> };
  await access.authenticate(early);
  assert.equal(early.headers.Authorization, 'Bearer first', 'not re-read within the minute');
  assert.equal(before.headers.Authorization, 'Bearer first');
  // client-go (and client-node's FileAuth) re-read it after 60 s: let a minute pass
  t.mock.timers.enable({ apis: ['Date'], now: Date.now() });
  t.mock.timers.tick(61_000);
  const after = { headers: {} as Record<string, string> };
  await access.authenticate(after);
  assert.equal(after.headers.Authorization, 'Bearer second');
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

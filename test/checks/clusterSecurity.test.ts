// The cluster-wide security checks (apiserver-anonymous, rbac) against the fake API server,
// which answers as the recorded v1.26 kube-apiserver does and authorizes system:anonymous from
// its RBAC objects: the recorded default bindings, the seeds' legacy state and the dashboard
// ServiceAccount bound to cluster-admin.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import * as v from 'valibot';
import type { Check, CheckOutcome, ClusterService } from '../../agent/checks/check.ts';
import {
  apiserverAnonymousCheck,
  judge,
} from '../../agent/checks/apiserverAnonymous/apiserverAnonymousCheck.ts';
import { rbacCheck } from '../../agent/checks/rbac/rbacCheck.ts';
import { clusterService } from '../../agent/kubernetes/clusterService.ts';
import { openKubeAccess } from '../../agent/kubernetes/kubeAccess.ts';
import { KubeApi, microTime } from '../../agent/kubernetes/kubeApi.ts';
import type { FakeKubeApiOptions, KubeObject, RbacVariant } from '../kube/fakeKubeApi.ts';
import { harness } from '../kubernetes/kubeHarness.ts';
import type { Harness } from '../kubernetes/kubeHarness.ts';
import { eventually, fixtureHost, httpGet, metricValue, runCli, startAgent } from '../helpers.ts';
import { checkOptions, runCheckOn, sampleValue } from './runCheckOn.ts';

async function cluster(
  t: TestContext,
  options: FakeKubeApiOptions & { rbac?: RbacVariant; leader?: boolean } = {},
): Promise<{ h: Harness; service: ClusterService }> {
  const h = await harness(t, options);
  if (options.rbac !== undefined) h.fake.useRbac(options.rbac);
  const service = clusterService(h.api, {
    isLeader: () => options.leader ?? true,
    nodeName: 'k1-node01',
  });
  return { h, service };
}

function run<O extends v.ObjectEntriesAsync>(
  check: Check<O>,
  service: ClusterService | undefined,
  overrides: Record<string, unknown> = {},
): Promise<CheckOutcome> {
  const options = checkOptions(check, overrides) as never;
  return runCheckOn(
    check,
    '/nonexistent',
    options,
    service === undefined ? {} : { cluster: service },
  );
}

/** Requests that arrived with no credentials must be exactly that: no Authorization header. */
function assertNoCredentials(h: Harness): void {
  const anonymous = h.fake.requests.filter((r) => r.identity === 'anonymous');
  assert.ok(anonymous.length > 0, 'the probe made anonymous requests');
  for (const r of anonymous)
    assert.equal(r.authorization, undefined, `${r.path} carried credentials`);
}

const problems = (o: CheckOutcome) => o.findings.map((f) => `${f.problem}:${f.severity}`).sort();

test('apiserver-anonymous: a fresh cluster answers only health and version, which is not a finding', async (t) => {
  const { h, service } = await cluster(t);
  const outcome = await run(apiserverAnonymousCheck, service);
  assert.deepEqual(problems(outcome), []);
  assert.equal(
    sampleValue(outcome, 'node_auditor_anonymous_auth_enabled', { target: 'apiserver' }),
    1,
  );
  for (const path of ['/version', '/healthz', '/livez', '/readyz'])
    assert.equal(sampleValue(outcome, 'node_auditor_anonymous_access_allowed', { path }), 1, path);
  for (const path of ['/api', '/apis', '/api/v1/namespaces'])
    assert.equal(sampleValue(outcome, 'node_auditor_anonymous_access_allowed', { path }), 0, path);
  assertNoCredentials(h);
});

test('apiserver-anonymous: the legacy bindings make discovery public (critical), resource reads stay refused', async (t) => {
  const { h, service } = await cluster(t, { rbac: 'legacy-unauth' });
  const outcome = await run(apiserverAnonymousCheck, service);
  assert.deepEqual(problems(outcome), ['ApiServerAnonymousDiscovery:critical']);
  const finding = outcome.findings[0];
  assert.match(finding?.title ?? '', /\/api, \/apis/);
  assert.match(finding?.message ?? '', /CVE-2018-1002105/);
  assert.ok(finding?.evidence.some((e) => e.includes('/api/v1/namespaces') && e.includes('403')));
  assert.equal(sampleValue(outcome, 'node_auditor_anonymous_access_allowed', { path: '/apis' }), 1);
  assert.equal(
    sampleValue(outcome, 'node_auditor_anonymous_access_allowed', { path: '/api/v1/namespaces' }),
    0,
  );
  assertNoCredentials(h);
});

test('apiserver-anonymous: a binding that lets anonymous list namespaces is a critical resource read', async (t) => {
  const { service, h } = await cluster(t);
  h.fake.putRbac({
    kind: 'ClusterRole',
    metadata: { name: 'namespace-reader' },
    rules: [{ apiGroups: [''], resources: ['namespaces'], verbs: ['get', 'list'] }],
  });
  h.fake.putRbac({
    kind: 'ClusterRoleBinding',
    metadata: { name: 'public-namespaces' },
    roleRef: {
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'ClusterRole',
      name: 'namespace-reader',
    },
    subjects: [{ kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: 'system:anonymous' }],
  });
  const outcome = await run(apiserverAnonymousCheck, service);
  assert.deepEqual(problems(outcome), ['ApiServerAnonymousAccess:critical']);
  assert.match(outcome.findings[0]?.title ?? '', /\/api\/v1\/namespaces/);
});

const METRICS_NODES = '/apis/metrics.k8s.io/v1beta1/nodes';

test('apiserver-anonymous: the metrics.k8s.io aggregated API is probed only once registered; refused, it is no finding', async (t) => {
  const { h, service } = await cluster(t);
  const anonymousPaths = (since: number) =>
    h.fake.requests
      .slice(since)
      .filter((r) => r.identity === 'anonymous')
      .map((r) => r.path);
  let since = h.fake.requests.length;
  await run(apiserverAnonymousCheck, service);
  assert.ok(!anonymousPaths(since).includes(METRICS_NODES), anonymousPaths(since).join(' '));

  h.fake.registerMetricsApi();
  since = h.fake.requests.length;
  const outcome = await run(apiserverAnonymousCheck, service);
  assert.ok(anonymousPaths(since).includes(METRICS_NODES), anonymousPaths(since).join(' '));
  assert.deepEqual(problems(outcome), []);
  assert.equal(
    sampleValue(outcome, 'node_auditor_anonymous_access_allowed', { path: METRICS_NODES }),
    0,
  );
  assertNoCredentials(h);
});

test('apiserver-anonymous: anonymous node metrics through the aggregated API are a critical resource read', async (t) => {
  const { h, service } = await cluster(t);
  h.fake.registerMetricsApi();
  h.fake.putRbac({
    kind: 'ClusterRole',
    metadata: { name: 'public-node-metrics' },
    rules: [{ apiGroups: ['metrics.k8s.io'], resources: ['nodes'], verbs: ['get', 'list'] }],
  });
  h.fake.putRbac({
    kind: 'ClusterRoleBinding',
    metadata: { name: 'public-node-metrics' },
    roleRef: {
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'ClusterRole',
      name: 'public-node-metrics',
    },
    subjects: [
      { kind: 'Group', apiGroup: 'rbac.authorization.k8s.io', name: 'system:unauthenticated' },
    ],
  });
  const outcome = await run(apiserverAnonymousCheck, service);
  assert.deepEqual(problems(outcome), ['ApiServerAnonymousAccess:critical']);
  assert.equal(outcome.findings[0]?.title, `API server serves ${METRICS_NODES} to anyone`);
  assert.equal(
    sampleValue(outcome, 'node_auditor_anonymous_access_allowed', { path: METRICS_NODES }),
    1,
  );
  assertNoCredentials(h);
});

test('apiserver-anonymous: a proxy answering an HTML page with 200 everywhere is not anonymous access', async (t) => {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><html><body>Welcome</body></html>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
      }),
  );
  const url = `http://127.0.0.1:${String((server.address() as AddressInfo).port)}/`;
  const outcome = await run(apiserverAnonymousCheck, undefined, { url });
  assert.deepEqual(problems(outcome), ['ApiServerUnprobed:info']);
  assert.deepEqual(outcome.samples, []);
  assert.ok(
    outcome.findings[0]?.evidence.includes(
      `GET ${url}apis without credentials: 200 but not the API server's answer (text/html, not an APIGroupList)`,
    ),
    outcome.findings[0]?.evidence.join('\n'),
  );
});

test("apiserver-anonymous: only the API server's own documents count as 200; a kind cut off by the size limit still does", () => {
  const answer = (status: number, contentType: string, body: string, truncated = false) => ({
    kind: 'answered' as const,
    status,
    contentType,
    body,
    truncated,
  });
  const base = new URL('https://lb.example/');
  const probe = (
    path: string,
    kind: 'public' | 'discovery' | 'resource',
    a: ReturnType<typeof answer>,
  ) => ({
    path,
    url: new URL(path.slice(1), base).href,
    kind,
    answer: a,
  });
  const denied = answer(403, 'application/json', '{"kind":"Status","message":"forbidden"}');
  // /api is an HTML page from the load balancer; /apis is a real APIGroupList, cut at 16 KiB
  const outcome = judge(base, [
    probe('/version', 'public', answer(200, 'application/json', '{"gitVersion":"v1.26.0"}')),
    probe('/healthz', 'public', answer(200, 'text/plain; charset=utf-8', 'ok')),
    probe('/api', 'discovery', answer(200, 'text/html', '<html>login</html>')),
    probe(
      '/apis',
      'discovery',
      answer(
        200,
        'application/json',
        '{"kind":"APIGroupList","apiVersion":"v1","groups":[{"na',
        true,
      ),
    ),
    probe('/api/v1/namespaces', 'resource', denied),
  ]);
  assert.deepEqual(problems(outcome), [
    'ApiServerAnonymousDiscovery:critical',
    'ApiServerUnprobed:info',
  ]);
  const discovery = outcome.findings.find((f) => f.problem === 'ApiServerAnonymousDiscovery');
  assert.equal(discovery?.title, 'API server discovery open to anyone (/apis)');
  const unprobed = outcome.findings.find((f) => f.problem === 'ApiServerUnprobed');
  assert.equal(unprobed?.title, 'cannot judge /api on the API server at https://lb.example');
  // no sample for the path whose answer was not the API server's
  assert.equal(
    sampleValue(outcome, 'node_auditor_anonymous_access_allowed', { path: '/api' }),
    undefined,
  );
  assert.equal(sampleValue(outcome, 'node_auditor_anonymous_access_allowed', { path: '/apis' }), 1);
  // a list read needs a *List: a Status-shaped 200 is not one
  const odd = judge(base, [
    probe('/api/v1/namespaces', 'resource', answer(200, 'application/json', '{"kind":"Status"}')),
  ]);
  assert.deepEqual(problems(odd), ['ApiServerUnprobed:info']);
});

test('apiserver-anonymous: --anonymous-auth=false answers 401 everywhere: off, nothing allowed', async (t) => {
  const { service } = await cluster(t, { anonymousAuth: false });
  const outcome = await run(apiserverAnonymousCheck, service);
  assert.deepEqual(problems(outcome), []);
  assert.equal(
    sampleValue(outcome, 'node_auditor_anonymous_auth_enabled', { target: 'apiserver' }),
    0,
  );
  assert.equal(
    sampleValue(outcome, 'node_auditor_anonymous_access_allowed', { path: '/version' }),
    0,
  );
});

test('apiserver-anonymous: a 403 everywhere is anonymous authentication on but refused, not exposure', async (t) => {
  const { service, h } = await cluster(t);
  // a hardened cluster that took system:unauthenticated out of system:public-info-viewer
  h.fake.deleteRbac('ClusterRoleBinding', '', 'system:public-info-viewer');
  const outcome = await run(apiserverAnonymousCheck, service);
  assert.deepEqual(problems(outcome), []);
  assert.equal(
    sampleValue(outcome, 'node_auditor_anonymous_auth_enabled', { target: 'apiserver' }),
    1,
  );
  assert.equal(
    outcome.samples?.filter(
      (s) => s.metric === 'node_auditor_anonymous_access_allowed' && s.value === 1,
    ).length,
    0,
  );
});

test('apiserver-anonymous: an API server under a path prefix (a proxy) is probed under that prefix', async (t) => {
  const { service, h } = await cluster(t);
  const since = h.fake.requests.length;
  const outcome = await run(apiserverAnonymousCheck, service, {
    url: `${h.fake.url}/k8s/clusters/c-1/`,
  });
  const paths = h.fake.requests
    .slice(since)
    .filter((r) => r.identity === 'anonymous')
    .map((r) => r.path);
  assert.ok(paths.length >= 7, paths.join(' '));
  assert.ok(
    paths.every((p) => p.startsWith('/k8s/clusters/c-1/')),
    paths.join(' '),
  );
  assert.ok(paths.includes('/k8s/clusters/c-1/version'));
  // RBAC refuses anonymous these unknown paths (403), as a real API server does
  assert.deepEqual(problems(outcome), []);
  assert.equal(
    sampleValue(outcome, 'node_auditor_anonymous_access_allowed', { path: '/version' }),
    0,
  );
});

test('apiserver-anonymous: answers no API server gives (404, 502) are not taken for anonymous access', () => {
  const answer = (status: number) => ({
    kind: 'answered' as const,
    status,
    contentType: 'text/plain',
    body: 'not found',
    truncated: false,
  });
  const outcome = judge(new URL('https://proxy.example/k8s/'), [
    {
      path: '/version',
      url: 'https://proxy.example/k8s/version',
      kind: 'public',
      answer: answer(404),
    },
    { path: '/api', url: 'https://proxy.example/k8s/api', kind: 'discovery', answer: answer(502) },
  ]);
  assert.deepEqual(problems(outcome), ['ApiServerUnprobed:info']);
  assert.deepEqual(outcome.samples, []);
  assert.ok(
    outcome.findings[0]?.evidence.includes(
      'GET https://proxy.example/k8s/version without credentials: 404',
    ),
  );
});

test('apiserver-anonymous: an unreachable API server is an info finding, no metric guessed', async (t) => {
  const { service, h } = await cluster(t);
  await h.fake.goDown();
  const outcome = await run(apiserverAnonymousCheck, service, { requestTimeout: '1s' });
  assert.deepEqual(problems(outcome), ['ApiServerUnprobed:info']);
  assert.equal(outcome.samples?.length ?? 0, 0);
});

test('apiserver-anonymous and rbac: skipped, not cleared-as-fine, off the leader and without an API', async (t) => {
  const { service } = await cluster(t, { rbac: 'risky', leader: false });
  for (const check of [apiserverAnonymousCheck, rbacCheck] as Check[]) {
    const notLeader = await run(check, service);
    assert.match(notLeader.skipped ?? '', /not the leader/, check.id);
    assert.deepEqual(notLeader.findings, []);
    const noApi = await run(check, undefined);
    assert.match(noApi.skipped ?? '', /no Kubernetes API/, check.id);
  }
});

test('rbac: the real default bindings of a fresh cluster give no finding (public-info-viewer is fine)', async (t) => {
  const { service, h } = await cluster(t);
  const outcome = await run(rbacCheck, service);
  assert.deepEqual(outcome.findings, []);
  // it read every binding and role, with the agent's own identity and permissions
  const read = h.fake.requests
    .filter((r) => r.identity === 'sa')
    .map((r) => `${r.status} ${r.path}`);
  for (const resource of ['clusterrolebindings', 'clusterroles', 'rolebindings', 'roles'])
    assert.ok(read.includes(`200 /apis/rbac.authorization.k8s.io/v1/${resource}`), resource);
});

test("rbac: kubeadm's cluster-info RoleBinding for system:anonymous is allowed, one that grants more is not", async (t) => {
  const { service, h } = await cluster(t);
  const role = (rules: unknown[]) => ({
    kind: 'Role',
    metadata: { name: 'kubeadm:bootstrap-signer-clusterinfo', namespace: 'kube-public' },
    rules,
  });
  h.fake.putRbac(
    role([
      {
        apiGroups: [''],
        resources: ['configmaps'],
        resourceNames: ['cluster-info'],
        verbs: ['get'],
      },
    ]),
  );
  h.fake.putRbac({
    kind: 'RoleBinding',
    metadata: { name: 'kubeadm:bootstrap-signer-clusterinfo', namespace: 'kube-public' },
    roleRef: {
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'Role',
      name: 'kubeadm:bootstrap-signer-clusterinfo',
    },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'system:anonymous' }],
  });
  assert.deepEqual((await run(rbacCheck, service)).findings, []);

  h.fake.putRbac(
    role([{ apiGroups: [''], resources: ['configmaps', 'secrets'], verbs: ['get', 'list'] }]),
  );
  const outcome = await run(rbacCheck, service);
  assert.deepEqual(problems(outcome), ['AnonymousBinding:critical']);
  assert.equal(
    outcome.findings[0]?.id,
    'AnonymousBinding:kube-public/kubeadm:bootstrap-signer-clusterinfo',
  );
  assert.match(
    outcome.findings[0]?.remediation?.summary ?? '',
    /kubectl delete -n kube-public rolebinding/,
  );
});

test('rbac: the legacy system:unauthenticated bindings and the dashboard with cluster-admin, with the exact fixes', async (t) => {
  const { service } = await cluster(t, { rbac: 'risky' });
  const outcome = await run(rbacCheck, service);
  assert.deepEqual(problems(outcome), [
    'AnonymousLegacyDiscovery:critical',
    'ServiceAccountClusterAdmin:critical',
  ]);
  const legacy = outcome.findings.find((f) => f.problem === 'AnonymousLegacyDiscovery');
  const fix = legacy?.remediation?.summary ?? '';
  for (const name of ['system:basic-user', 'system:discovery']) {
    assert.ok(
      fix.includes(
        `kubectl annotate clusterrolebinding ${name} rbac.authorization.kubernetes.io/autoupdate=false --overwrite`,
      ),
      fix,
    );
    // subject 1 is system:unauthenticated in the recorded bindings; the test op guards it
    assert.ok(
      fix.includes(
        `kubectl patch clusterrolebinding ${name} --type=json -p '[{"op":"test","path":"/subjects/1/name","value":"system:unauthenticated"},{"op":"remove","path":"/subjects/1"}]'`,
      ),
      fix,
    );
  }
  assert.ok(legacy?.evidence.some((e) => e.includes('autoupdate: "false"')));
  const dashboard = outcome.findings.find((f) => f.problem === 'ServiceAccountClusterAdmin');
  assert.equal(
    dashboard?.title,
    'ServiceAccount kube-system/kubernetes-dashboard has cluster-admin (kubernetes-dashboard-admin)',
  );
  assert.match(
    dashboard?.remediation?.summary ?? '',
    /kubectl delete clusterrolebinding kubernetes-dashboard-admin/,
  );
});

test("rbac: the legacy-unauth cluster (the seeds' bindings, no dashboard) is one critical finding, discovery named", async (t) => {
  const { service } = await cluster(t, { rbac: 'legacy-unauth' });
  const outcome = await run(rbacCheck, service);
  assert.deepEqual(problems(outcome), ['AnonymousLegacyDiscovery:critical']);
  const legacy = outcome.findings[0];
  assert.equal(
    legacy?.title,
    'system:unauthenticated is bound to system:basic-user and system:discovery',
  );
  // what the group may do, from the recorded ClusterRoles: discovery URLs and the self reviews
  assert.match(legacy?.message ?? '', /get [^;]*\/apis/);
  assert.match(legacy?.message ?? '', /create selfsubjectaccessreviews,selfsubjectrulesreviews/);
  assert.match(legacy?.message ?? '', /CVE-2018-1002105/);
  assert.deepEqual(
    legacy?.evidence.map((e) => e.split(':')[0]),
    ['ClusterRoleBinding system', 'ClusterRoleBinding system'],
  );
});

test('rbac: system:unauthenticated left only in system:basic-user is a warning, without the CVE story', async (t) => {
  const { service, h } = await cluster(t, { rbac: 'legacy-unauth' });
  // system:discovery fixed as the seeds say; system:basic-user not yet
  const recorded = JSON.parse(
    readFileSync(
      new URL(
        '../fixtures/kube-api/admin-clusterrolebinding-system-discovery-default-200.json',
        import.meta.url,
      ),
      'utf8',
    ),
  ) as { response: { body: KubeObject } };
  h.fake.putRbac(recorded.response.body);
  const outcome = await run(rbacCheck, service);
  assert.deepEqual(problems(outcome), ['AnonymousLegacyDiscovery:warning']);
  const legacy = outcome.findings[0];
  assert.equal(legacy?.title, 'system:unauthenticated is bound to system:basic-user');
  assert.doesNotMatch(legacy?.message ?? '', /CVE-2018-1002105|discovery access/);
  assert.match(
    legacy?.message ?? '',
    /may create selfsubjectaccessreviews,selfsubjectrulesreviews/,
  );
  assert.match(legacy?.message ?? '', /reads nothing of the cluster/);
  assert.match(
    legacy?.remediation?.summary ?? '',
    /kubectl annotate clusterrolebinding system:basic-user rbac\.authorization\.kubernetes\.io\/autoupdate=false --overwrite/,
  );
});

test('rbac: RoleBindings to cluster-admin or * on *: critical in kube-system and for the dashboard, else a warning', async (t) => {
  const { service, h } = await cluster(t);
  const binding = (
    namespace: string,
    name: string,
    roleRef: { kind: string; name: string },
    subject: Record<string, string>,
  ) => {
    h.fake.putRbac({
      kind: 'RoleBinding',
      metadata: { name, namespace },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', ...roleRef },
      subjects: [subject],
    });
  };
  binding(
    'kubernetes-dashboard',
    'dashboard-admin',
    { kind: 'ClusterRole', name: 'cluster-admin' },
    { kind: 'ServiceAccount', name: 'kubernetes-dashboard', namespace: 'kubernetes-dashboard' },
  );
  binding(
    'kube-system',
    'tiller',
    { kind: 'ClusterRole', name: 'cluster-admin' },
    { kind: 'ServiceAccount', name: 'tiller', namespace: 'kube-system' },
  );
  h.fake.putRbac({
    kind: 'Role',
    metadata: { name: 'everything', namespace: 'apps' },
    rules: [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }],
  });
  binding(
    'apps',
    'ci-deployer',
    { kind: 'Role', name: 'everything' },
    { kind: 'ServiceAccount', name: 'deployer', namespace: 'ci' },
  );
  // a Role is looked up in the binding's own namespace: "everything" does not exist in "web"
  binding(
    'web',
    'not-resolved',
    { kind: 'Role', name: 'everything' },
    { kind: 'ServiceAccount', name: 'deployer', namespace: 'ci' },
  );
  // a ClusterRole that writes, but not * on *
  h.fake.putRbac({
    kind: 'ClusterRole',
    metadata: { name: 'deployments-writer' },
    rules: [{ apiGroups: ['apps'], resources: ['deployments'], verbs: ['*'] }],
  });
  binding(
    'web',
    'editor',
    { kind: 'ClusterRole', name: 'deployments-writer' },
    { kind: 'ServiceAccount', name: 'web', namespace: 'web' },
  );
  const outcome = await run(rbacCheck, service);
  const found = outcome.findings.map((f) => `${f.id} ${f.severity}`).sort();
  assert.deepEqual(found, [
    'ServiceAccountClusterAdmin:apps/ci-deployer:ci/deployer warning',
    'ServiceAccountClusterAdmin:kube-system/tiller:kube-system/tiller critical',
    'ServiceAccountClusterAdmin:kubernetes-dashboard/dashboard-admin:kubernetes-dashboard/kubernetes-dashboard critical',
  ]);
  const dashboard = outcome.findings.find((f) => f.id.includes('dashboard-admin'));
  assert.equal(
    dashboard?.title,
    'ServiceAccount kubernetes-dashboard/kubernetes-dashboard is admin of kubernetes-dashboard (dashboard-admin)',
  );
  assert.match(
    dashboard?.message ?? '',
    /in namespace kubernetes-dashboard: whoever reaches the dashboard/,
  );
  assert.match(
    dashboard?.remediation?.summary ?? '',
    /kubectl delete -n kubernetes-dashboard rolebinding dashboard-admin/,
  );
  const tiller = outcome.findings.find((f) => f.id.includes('tiller'));
  assert.match(tiller?.message ?? '', /controls kube-system: every Secret there/);
  const deployer = outcome.findings.find((f) => f.id.includes('ci-deployer'));
  assert.match(deployer?.message ?? '', /Role everything \(\* on \*\) in namespace apps/);
  // allow-listed by namespace/name, as the option says
  const allowed = await run(rbacCheck, service, {
    allowedBindings: [
      'kube-system/tiller',
      'apps/ci-deployer',
      'kubernetes-dashboard/dashboard-admin',
    ],
  });
  assert.deepEqual(allowed.findings, []);
});

test('rbac: a RoleBinding giving system:unauthenticated write access in a namespace is a critical AnonymousBinding', async (t) => {
  const { service, h } = await cluster(t);
  h.fake.putRbac({
    kind: 'ClusterRole',
    metadata: { name: 'configmap-writer' },
    rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'update'] }],
  });
  h.fake.putRbac({
    kind: 'RoleBinding',
    metadata: { name: 'public-edit', namespace: 'default' },
    roleRef: {
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'ClusterRole',
      name: 'configmap-writer',
    },
    subjects: [
      { apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:unauthenticated' },
    ],
  });
  const outcome = await run(rbacCheck, service);
  assert.deepEqual(problems(outcome), ['AnonymousBinding:critical']);
  assert.equal(outcome.findings[0]?.id, 'AnonymousBinding:default/public-edit');
  assert.match(outcome.findings[0]?.message ?? '', /in namespace default\.$/);
});

test('rbac: an allow-listed binding is accepted; another ServiceAccount with * on * is a warning', async (t) => {
  const { service, h } = await cluster(t, { rbac: 'risky' });
  h.fake.putRbac({
    kind: 'ClusterRole',
    metadata: { name: 'everything' },
    rules: [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }],
  });
  h.fake.putRbac({
    kind: 'ClusterRoleBinding',
    metadata: { name: 'ci-deployer' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'everything' },
    subjects: [{ kind: 'ServiceAccount', name: 'deployer', namespace: 'ci' }],
  });
  const outcome = await run(rbacCheck, service, {
    allowedBindings: ['kubernetes-dashboard-admin', 'system:discovery', 'system:basic-user'],
  });
  assert.deepEqual(problems(outcome), ['ServiceAccountClusterAdmin:warning']);
  assert.match(outcome.findings[0]?.message ?? '', /ServiceAccount ci\/deployer/);
});

test("rbac: an identity that may not read RBAC fails the run with the API server's reason", async (t) => {
  const { h } = await cluster(t);
  // the node identity is refused clusterrolebindings (recorded: node-clusterrolebindings-403.json)
  const file = `${h.dir}/node.kubeconfig`;
  await h.fake.writeKubeconfig(file, 'node');
  const api = new KubeApi(await openKubeAccess({ kind: 'kubeconfig', file }), { timeoutMs: 3000 });
  t.after(() => {
    api.close();
  });
  const service = clusterService(api, { isLeader: () => true, nodeName: 'k1-node01' });
  await assert.rejects(run(rbacCheck, service), /403 .*cannot list resource "clusterrolebindings"/);
});

test('check CLI: --kubeconfig runs the cluster checks once, as the leader, and exits 1 on the risky cluster', async (t) => {
  const { h } = await cluster(t, { rbac: 'risky' });
  const args = [
    'check',
    '--only',
    'apiserver-anonymous,rbac',
    '--output',
    'json',
    '--kubeconfig',
    h.kubeconfig,
  ];
  const risky = await runCli(args);
  assert.equal(risky.code, 1, risky.stderr);
  const report = JSON.parse(risky.stdout) as {
    checks: { id: string; status: string }[];
    findings: { problem: string }[];
  };
  assert.deepEqual(
    report.checks.filter((c) => c.status !== 'skipped').map((c) => `${c.id}:${c.status}`),
    ['apiserver-anonymous:problem', 'rbac:problem'],
  );
  assert.deepEqual(report.findings.map((f) => f.problem).sort(), [
    'AnonymousLegacyDiscovery',
    'ApiServerAnonymousDiscovery',
    'ServiceAccountClusterAdmin',
  ]);
  h.fake.useRbac('default');
  const fixed = await runCli(args);
  assert.equal(fixed.code, 0, fixed.stdout);
  // no secret in the report: the bearer token of the kubeconfig never appears
  assert.ok(!risky.stdout.includes(h.fake.tokens.sa) && !fixed.stdout.includes(h.fake.tokens.sa));
});

test('check CLI: without any cluster the cluster checks are skipped with the reason, exit 0', async () => {
  const r = await runCli(['check', '--only', 'apiserver-anonymous,rbac', '--output', 'json']);
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout) as {
    checks: { id: string; status: string; reason?: string }[];
  };
  assert.deepEqual(
    report.checks
      .filter((c) => c.reason !== 'not selected (--only)')
      .map((c) => [c.id, c.status, /no Kubernetes API/.test(c.reason ?? '')]),
    [
      ['apiserver-anonymous', 'skipped', true],
      ['rbac', 'skipped', true],
    ],
  );
});

test('agent: the leader audits the cluster as soon as it leads; the findings and metrics are served', async (t) => {
  const { h } = await cluster(t, { rbac: 'risky' });
  // another agent holds the Lease for 3 s: the first pass runs while this one is not the leader
  const adminConfig = `${h.dir}/admin.kubeconfig`;
  await h.fake.writeKubeconfig(adminConfig, 'admin');
  const admin = new KubeApi(await openKubeAccess({ kind: 'kubeconfig', file: adminConfig }));
  t.after(() => {
    admin.close();
  });
  await admin.request({
    verb: 'create',
    path: '/apis/coordination.k8s.io/v1/namespaces/node-auditor/leases',
    body: {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: 'node-auditor-leader', namespace: 'node-auditor' },
      spec: {
        holderIdentity: 'k1-node02_other',
        leaseDurationSeconds: 3,
        renewTime: microTime(new Date()),
      },
    },
  });
  const agent = await startAgent(
    t,
    [
      '--kubeconfig',
      h.kubeconfig,
      '--node-name',
      'k1-node01',
      '--host-root',
      fixtureHost('compliant'),
    ],
    {
      env: {
        // the first pass runs before the Lease is won: the checks skip, then run on winning it
        NODE_AUDITOR_KUBERNETES__LEADER_ELECTION__LEASE_DURATION: '2s',
        NODE_AUDITOR_KUBERNETES__LEADER_ELECTION__RETRY_PERIOD: '500ms',
      },
    },
  );
  const first = JSON.parse((await httpGet(`${agent.url}/api/v1/findings`)).body) as {
    checks: { id: string; status: string; reason?: string }[];
  };
  assert.match(first.checks.find((c) => c.id === 'rbac')?.reason ?? '', /not the leader/);
  const findings = await eventually(
    async () => {
      const report = JSON.parse((await httpGet(`${agent.url}/api/v1/findings`)).body) as {
        findings: { check: string; problem: string }[];
      };
      const security = report.findings.filter(
        (f) => f.check === 'rbac' || f.check === 'apiserver-anonymous',
      );
      return security.length === 3 ? security : undefined;
    },
    10_000,
    'the three cluster findings',
  );
  assert.deepEqual(findings.map((f) => f.problem).sort(), [
    'AnonymousLegacyDiscovery',
    'ApiServerAnonymousDiscovery',
    'ServiceAccountClusterAdmin',
  ]);
  const metrics = (await httpGet(`${agent.url}/metrics`)).body;
  assert.equal(
    metricValue(metrics, 'node_auditor_anonymous_auth_enabled', { target: 'apiserver' }),
    1,
  );
  assert.equal(
    metricValue(metrics, 'node_auditor_anonymous_access_allowed', {
      target: 'apiserver',
      path: '/apis',
    }),
    1,
  );
  assert.equal(
    metricValue(metrics, 'node_auditor_problem', {
      check: 'rbac',
      problem: 'ServiceAccountClusterAdmin',
      severity: 'critical',
    }),
    1,
  );
});

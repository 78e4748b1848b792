// The kubelet-anonymous check against real local servers answering as a kubelet does in each
// mode (test/kubelet/fakeKubelet.ts): anonymous off, anonymous on with Webhook denying (both
// 403 forms), anonymous on with AlwaysAllow, the read-only port; and against what is not a
// kubelet: nothing listening, a server that never answers, a huge /pods, another web server.
// Every test checks that no request carried a credential of any kind.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import * as v from 'valibot';
import type { CheckOutcome } from '../../agent/checks/check.ts';
import {
  expandTarget,
  kubeletAnonymousCheck,
} from '../../agent/checks/kubeletAnonymous/kubeletAnonymousCheck.ts';
import type { FindingDraft } from '../../agent/findings/finding.ts';
import { refusedUrl, startFakeKubelet, startFakeReadOnlyPort } from '../kubelet/fakeKubelet.ts';
import type { FakeKubelet, FakeKubeletOptions } from '../kubelet/fakeKubelet.ts';
import { runCheckOn, sampleValue } from './runCheckOn.ts';

const schema = v.object(kubeletAnonymousCheck.options);
type Options = v.InferOutput<typeof schema>;
const PATHS = ['/pods', '/healthz', '/metrics', '/stats/summary', '/configz'];

function options(input: Record<string, unknown>): Options {
  return v.parse(schema, { requestTimeout: '2s', ...input });
}

function run(input: Record<string, unknown>): Promise<CheckOutcome> {
  return runCheckOn(kubeletAnonymousCheck, os.tmpdir(), options(input));
}

async function kubelet(t: TestContext, opts: FakeKubeletOptions): Promise<FakeKubelet> {
  const server = await startFakeKubelet(opts);
  t.after(() => server.close());
  return server;
}

async function readOnlyPort(
  t: TestContext,
  opts: Parameters<typeof startFakeReadOnlyPort>[0] = {},
): Promise<FakeKubelet> {
  const server = await startFakeReadOnlyPort(opts);
  t.after(() => server.close());
  return server;
}

const BENIGN_HEADERS = new Set(['host', 'accept', 'user-agent', 'connection']);

/** No credential reached any server, each request came on its own connection. */
function assertNoCredentials(...servers: FakeKubelet[]): void {
  const requests = servers.flatMap((s) => s.requests);
  assert.ok(requests.length > 0, 'the servers saw no request at all');
  for (const request of requests) {
    assert.equal(request.headers.authorization, undefined, `Authorization on ${request.path}`);
    assert.equal(request.clientCertificate, false, `client certificate on ${request.path}`);
    for (const name of Object.keys(request.headers)) {
      assert.ok(BENIGN_HEADERS.has(name), `header ${name} sent to ${request.path}`);
    }
  }
  for (const server of servers) {
    const connections = server.requests.map((r) => r.connection);
    assert.equal(new Set(connections).size, connections.length, 'a connection was reused');
  }
}

function samplesOf(outcome: CheckOutcome): string[] {
  return (outcome.samples ?? [])
    .map((s) => `${s.metric}{${Object.values(s.labels).join(',')}} ${s.value}`)
    .sort();
}

/** The one finding with this id. */
function only(outcome: CheckOutcome, id: string): FindingDraft {
  const found = outcome.findings.filter((f) => f.id === id);
  assert.equal(found.length, 1, `one ${id} in ${JSON.stringify(outcome.findings, null, 1)}`);
  return found[0] as FindingDraft;
}

function kubeletAccessSamples(value: number, paths = PATHS): string[] {
  return paths.map((p) => `node_auditor_anonymous_access_allowed{kubelet,${p}} ${value}`);
}

describe('kubelet-anonymous check', () => {
  it('anonymous authentication off: 401 everywhere is fine, enabled 0', async (t) => {
    const server = await kubelet(t, { mode: 'anonymous-off' });
    const outcome = await run({ url: server.url, readOnlyUrl: await refusedUrl('http') });
    assert.deepEqual(outcome.findings, []);
    assert.deepEqual(
      samplesOf(outcome),
      [
        ...kubeletAccessSamples(0),
        'node_auditor_anonymous_auth_enabled{kubelet-readonly} 0',
        'node_auditor_anonymous_auth_enabled{kubelet} 0',
      ].sort(),
    );
    assert.deepEqual(server.requests.map((r) => `${r.method} ${r.path}`).sort(), [
      'GET /configz',
      'GET /healthz',
      'GET /metrics',
      'GET /pods',
      'GET /stats/summary',
    ]);
    assertNoCredentials(server);
  });

  it('anonymous on, Webhook denies (kubelets before v1.32): a warning naming the permission', async (t) => {
    const server = await kubelet(t, { mode: 'webhook-deny', forbiddenForm: 'single' });
    const outcome = await run({ url: server.url, readOnlyUrl: await refusedUrl('http') });
    assert.equal(outcome.findings.length, 1);
    const finding = only(outcome, 'KubeletAnonymousAuthEnabled');
    assert.equal(finding.severity, 'warning');
    assert.match(finding.message, /\/pods: get nodes\/proxy;/);
    assert.match(finding.message, /\/stats\/summary: get nodes\/stats/);
    assert.match(finding.message, /\/metrics: get nodes\/metrics/);
    assert.match(finding.message, /A 403 is not access/);
    assert.ok(
      finding.evidence.includes(
        `GET ${server.url}/pods -> 403 Forbidden: Forbidden (user=system:anonymous, verb=get, resource=nodes, subresource=proxy)`,
      ),
      finding.evidence.join('\n'),
    );
    assert.match(finding.remediation?.summary ?? '', /anonymous:\n {4}enabled: false/);
    assert.match(finding.remediation?.summary ?? '', /--anonymous-auth=false/);
    assert.equal(
      sampleValue(outcome, 'node_auditor_anonymous_auth_enabled', { target: 'kubelet' }),
      1,
    );
    for (const path of PATHS) {
      const labels = { target: 'kubelet', path };
      assert.equal(sampleValue(outcome, 'node_auditor_anonymous_access_allowed', labels), 0);
    }
    assertNoCredentials(server);
  });

  it('anonymous on, Webhook denies (v1.32+, subresource(s) list): every subresource tried', async (t) => {
    const server = await kubelet(t, { mode: 'webhook-deny', forbiddenForm: 'list' });
    const outcome = await run({ url: server.url, readOnlyUrl: await refusedUrl('http') });
    const finding = only(outcome, 'KubeletAnonymousAuthEnabled');
    assert.equal(outcome.findings.length, 1);
    assert.match(finding.message, /\/pods: get nodes\/pods or nodes\/proxy;/);
    assert.match(finding.message, /\/configz: get nodes\/configz or nodes\/proxy/);
    assert.match(finding.message, /\/stats\/summary: get nodes\/stats;/);
    assert.ok(finding.evidence.some((line) => line.endsWith('subresource(s)=[healthz proxy])')));
    assert.deepEqual(
      samplesOf(outcome),
      [
        ...kubeletAccessSamples(0),
        'node_auditor_anonymous_auth_enabled{kubelet-readonly} 0',
        'node_auditor_anonymous_auth_enabled{kubelet} 1',
      ].sort(),
    );
    assertNoCredentials(server);
  });

  it('anonymous on, AlwaysAllow: critical, naming every path that answered 200', async (t) => {
    const server = await kubelet(t, { mode: 'always-allow' });
    const outcome = await run({ url: server.url, readOnlyUrl: await refusedUrl('http') });
    assert.equal(outcome.findings.length, 1, 'no separate warning beside the critical finding');
    const finding = only(outcome, 'KubeletAnonymousAccess');
    assert.equal(finding.severity, 'critical');
    assert.match(
      finding.message,
      /\/pods, \/healthz, \/metrics, \/stats\/summary, \/configz answered 200/,
    );
    assert.match(finding.message, /environment variables included/);
    assert.match(finding.message, /\/exec and \/run/);
    assert.match(finding.remediation?.summary ?? '', /mode: Webhook/);
    assert.ok(finding.title.length <= 80);
    // a 200's body (pod specs, config) is never echoed
    assert.doesNotMatch(finding.evidence.join('\n'), /kube-proxy|kubeletconfig|NODE_NAME/);
    assert.deepEqual(
      samplesOf(outcome),
      [
        ...kubeletAccessSamples(1),
        'node_auditor_anonymous_auth_enabled{kubelet-readonly} 0',
        'node_auditor_anonymous_auth_enabled{kubelet} 1',
      ].sort(),
    );
    assertNoCredentials(server);
  });

  it('a binding granting anonymous only nodes/stats: critical for that path, no /exec claim', async (t) => {
    const server = await kubelet(t, {
      mode: 'webhook-deny',
      forbiddenForm: 'list',
      allow: ['/stats/summary'],
    });
    const outcome = await run({ url: server.url, readOnlyUrl: await refusedUrl('http') });
    const finding = only(outcome, 'KubeletAnonymousAccess');
    assert.match(finding.message, /: \/stats\/summary answered 200/);
    assert.doesNotMatch(finding.message, /\/exec/);
    const access = (path: string) =>
      sampleValue(outcome, 'node_auditor_anonymous_access_allowed', { target: 'kubelet', path });
    assert.equal(access('/stats/summary'), 1);
    assert.equal(access('/pods'), 0);
    assertNoCredentials(server);
  });

  it('only /healthz answering anonymously stays a warning', async (t) => {
    const server = await kubelet(t, {
      mode: 'webhook-deny',
      forbiddenForm: 'list',
      allow: ['/healthz'],
    });
    const outcome = await run({ url: server.url, readOnlyUrl: await refusedUrl('http') });
    assert.equal(outcome.findings.length, 1);
    const finding = only(outcome, 'KubeletAnonymousAuthEnabled');
    assert.match(finding.message, /\/healthz answers "ok"/);
    const labels = { target: 'kubelet', path: '/healthz' };
    assert.equal(sampleValue(outcome, 'node_auditor_anonymous_access_allowed', labels), 1);
    assertNoCredentials(server);
  });

  it('the read-only port answering is critical: no authentication exists there', async (t) => {
    const server = await kubelet(t, { mode: 'anonymous-off' });
    const readOnly = await readOnlyPort(t);
    const outcome = await run({ url: server.url, readOnlyUrl: readOnly.url });
    assert.equal(outcome.findings.length, 1);
    const finding = only(outcome, 'KubeletReadOnlyPortOpen');
    assert.equal(finding.severity, 'critical');
    assert.match(finding.message, /every pod spec/);
    assert.match(finding.remediation?.summary ?? '', /readOnlyPort: 0/);
    assert.equal(finding.evidence.length, 1);
    assert.match(
      finding.evidence[0] ?? '',
      new RegExp(`^GET ${readOnly.url}/pods -> 200 OK, application/json, \\d+ bytes$`),
    );
    const labels = { target: 'kubelet-readonly' };
    assert.equal(sampleValue(outcome, 'node_auditor_anonymous_auth_enabled', labels), 1);
    assert.equal(
      sampleValue(outcome, 'node_auditor_anonymous_access_allowed', { ...labels, path: '/pods' }),
      1,
    );
    assert.deepEqual(
      readOnly.requests.map((r) => r.path),
      ['/pods'],
    );
    assertNoCredentials(server, readOnly);
  });

  it('the read-only port answering anything at all is critical, even a 404', async (t) => {
    const server = await kubelet(t, { mode: 'anonymous-off' });
    const readOnly = await readOnlyPort(t);
    // a read-only URL whose /pods is not served: the read-only server answers 404 there
    const outcome = await run({ url: server.url, readOnlyUrl: `${readOnly.url}/nothing-here` });
    const finding = only(outcome, 'KubeletReadOnlyPortOpen');
    assert.match(finding.message, /Something answers HTTP .*404 Not Found/);
    const labels = { target: 'kubelet-readonly' };
    assert.equal(sampleValue(outcome, 'node_auditor_anonymous_auth_enabled', labels), 1);
    assert.equal(
      sampleValue(outcome, 'node_auditor_anonymous_access_allowed', { ...labels, path: '/pods' }),
      undefined,
    );
    assertNoCredentials(server, readOnly);
  });

  it('no kubelet listening (a laptop): skipped with the reason, no finding, no metric', async () => {
    const url = await refusedUrl('https');
    const outcome = await run({ url, readOnlyUrl: await refusedUrl('http') });
    assert.deepEqual(outcome.findings, []);
    assert.match(
      outcome.skipped ?? '',
      /^no kubelet listens at 127\.0\.0\.1:\d+ \(connection refused\)$/,
    );
    assert.deepEqual(samplesOf(outcome), []);
  });

  it('the API port refused but the read-only port answering is still judged', async (t) => {
    const readOnly = await readOnlyPort(t);
    const outcome = await run({ url: await refusedUrl('https'), readOnlyUrl: readOnly.url });
    assert.equal(outcome.skipped, undefined);
    assert.deepEqual(outcome.findings.map((f) => `${f.severity} ${f.id}`).sort(), [
      'critical KubeletReadOnlyPortOpen',
      'info KubeletUnreachable:kubelet',
    ]);
  });

  it('a kubelet that never answers is bounded by requestTimeout', async (t) => {
    const server = await kubelet(t, { mode: 'always-allow', silent: true });
    const readOnly = await readOnlyPort(t, { silent: true });
    const started = performance.now();
    const outcome = await run({
      url: server.url,
      readOnlyUrl: readOnly.url,
      requestTimeout: '300ms',
    });
    const elapsed = performance.now() - started;
    assert.ok(elapsed < 1500, `took ${Math.round(elapsed)} ms`);
    assert.ok(elapsed >= 290, `took only ${Math.round(elapsed)} ms`);
    assert.deepEqual(outcome.findings.map((f) => `${f.severity} ${f.id}`).sort(), [
      'info KubeletUnreachable:kubelet',
      'info KubeletUnreachable:kubelet-readonly',
    ]);
    assert.match(only(outcome, 'KubeletUnreachable:kubelet').message, /no answer within 300ms/);
    // unknown is not 0: no sample for either target
    assert.deepEqual(samplesOf(outcome), []);
    assert.equal(server.requests.length, 5, 'every request reached the server');
    assertNoCredentials(server, readOnly);
  });

  it('a huge /pods answer (50 MiB) is not read: fast, little memory', async (t) => {
    const size = 50 * 1024 * 1024;
    const server = await kubelet(t, { mode: 'always-allow', podsBodyBytes: size });
    const readOnly = await readOnlyPort(t, { podsBodyBytes: size });
    globalThis.gc?.();
    const rssBefore = process.memoryUsage.rss();
    const started = performance.now();
    const outcome = await run({ url: server.url, readOnlyUrl: readOnly.url });
    const elapsed = performance.now() - started;
    const grown = process.memoryUsage.rss() - rssBefore;
    assert.ok(elapsed < 1500, `took ${Math.round(elapsed)} ms`);
    // reading either body whole would add 50 MiB (twice that as a JS string)
    assert.ok(grown < 30 * 1024 * 1024, `RSS grew by ${Math.round(grown / 1048576)} MiB`);
    // let the servers notice the closed connections, then see how much they managed to send
    await new Promise((resolve) => setTimeout(resolve, 100));
    for (const s of [server, readOnly]) {
      assert.ok(s.podsBytesSent() < size / 4, `${s.url} sent ${s.podsBytesSent()} bytes`);
    }
    const finding = only(outcome, 'KubeletAnonymousAccess');
    assert.ok(
      finding.evidence.includes(
        `GET ${server.url}/pods -> 200 OK, application/json, more than 64 KiB (not read further)`,
      ),
    );
    only(outcome, 'KubeletReadOnlyPortOpen');
    assertNoCredentials(server, readOnly);
  });

  it('another web server on the port is never taken for an exposure', async (t) => {
    // 200 with an HTML page on every path, and a 403 that is not the kubelet's
    const requests: http.IncomingHttpHeaders[] = [];
    const other = http.createServer((req, res) => {
      requests.push(req.headers);
      if (req.url === '/configz') {
        res.writeHead(403, { 'Content-Type': 'application/json' });
        res.end('{"kind":"Status","status":"Failure","reason":"Forbidden","code":403}');
        return;
      }
      if (req.url === '/metrics') {
        res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="x"' });
        res.end('<html>login</html>');
        return;
      }
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end('<html><body>Welcome to nginx!</body></html>');
    });
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    t.after(
      () =>
        new Promise<void>((resolve) => {
          other.close(() => {
            resolve();
          });
        }),
    );
    const url = `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
    const outcome = await run({ url, readOnlyUrl: await refusedUrl('http') });
    assert.deepEqual(
      outcome.findings.map((f) => `${f.severity} ${f.id}`),
      ['info KubeletUnexpectedAnswer:kubelet'],
    );
    const evidence = only(outcome, 'KubeletUnexpectedAnswer:kubelet').evidence.join('\n');
    assert.match(
      evidence,
      /\/pods -> 200 OK, text\/html, \d+ bytes: not what a kubelet serves on \/pods/,
    );
    assert.match(evidence, /\/configz -> 403 Forbidden: \{"kind":"Status"/);
    assert.match(evidence, /\/metrics -> 401 Unauthorized: <html>login<\/html>/);
    assert.deepEqual(samplesOf(outcome), [
      'node_auditor_anonymous_auth_enabled{kubelet-readonly} 0',
    ]);
    assert.equal(requests.length, 5);
    for (const headers of requests) assert.equal(headers.authorization, undefined);
  });

  it('https:// to a plain HTTP server is a TLS failure, reported as unreachable', async (t) => {
    const readOnly = await readOnlyPort(t);
    const outcome = await run({
      url: readOnly.url.replace('http:', 'https:'),
      readOnlyUrl: await refusedUrl('http'),
    });
    const finding = only(outcome, 'KubeletUnreachable:kubelet');
    assert.equal(finding.severity, 'info');
    assert.match(finding.message, /TLS handshake failed \(ERR_SSL_|TLS handshake failed \(EPROTO/);
  });

  it('expands $NODE_IP from the environment, and says when it is not set', async (t) => {
    const server = await kubelet(t, { mode: 'webhook-deny' });
    const port = new URL(server.url).port;
    const saved = process.env.NODE_IP;
    t.after(() => {
      if (saved === undefined) delete process.env.NODE_IP;
      else process.env.NODE_IP = saved;
    });
    const input = { url: `https://$NODE_IP:${port}`, readOnlyUrl: await refusedUrl('http') };

    process.env.NODE_IP = '127.0.0.1';
    const withIp = only(await run(input), 'KubeletAnonymousAuthEnabled');
    assert.ok(withIp.evidence.every((line) => !line.includes('NODE_IP')));
    assert.match(
      withIp.evidence[0] ?? '',
      new RegExp(`^GET https://127\\.0\\.0\\.1:${port}/pods -> 403`),
    );

    delete process.env.NODE_IP;
    const readOnlyInput = { ...input, readOnlyUrl: 'http://${NODE_IP}:1' };
    const without = only(await run(readOnlyInput), 'KubeletAnonymousAuthEnabled');
    assert.ok(
      without.evidence.includes(
        'NODE_IP is not set (downward API status.hostIP): probed 127.0.0.1',
      ),
      without.evidence.join('\n'),
    );
    assert.equal(server.requests.length, 10);
    assertNoCredentials(server);
    // an IPv6 node address goes in brackets
    assert.equal(expandTarget('https://$NODE_IP:10250', 'fd00::11'), 'https://[fd00::11]:10250');
    assert.equal(expandTarget('http://${NODE_IP}:10255', '10.0.0.11'), 'http://10.0.0.11:10255');
  });

  it('stops when the run is cancelled', async (t) => {
    const server = await kubelet(t, { mode: 'always-allow', silent: true });
    const controller = new AbortController();
    const started = performance.now();
    const running = runCheckOn(
      kubeletAnonymousCheck,
      os.tmpdir(),
      options({ url: server.url, readOnlyUrl: await refusedUrl('http'), requestTimeout: '10s' }),
      {},
      controller.signal,
    );
    setTimeout(() => {
      controller.abort();
    }, 100);
    const outcome = await running;
    assert.ok(performance.now() - started < 2000);
    // nothing was learned, and it says why
    assert.deepEqual(
      outcome.findings.map((f) => `${f.severity} ${f.id}`),
      ['info KubeletUnreachable:kubelet'],
    );
    assert.match(outcome.findings[0]?.message ?? '', /stopped \(the check was cancelled\)/);
  });

  it('rejects a target that is not an http(s) URL, naming the option', () => {
    const result = v.safeParse(schema, { url: 'ftp://$NODE_IP:10250' });
    assert.equal(result.success, false);
    assert.match(v.flatten(result.issues ?? []).nested?.url?.[0] ?? '', /http:\/\/ or https:\/\//);
    assert.equal(v.safeParse(schema, { readOnlyUrl: 'not a url' }).success, false);
    const defaults = v.parse(schema, {});
    assert.equal(defaults.url, 'https://$NODE_IP:10250');
    assert.equal(defaults.readOnlyUrl, 'http://$NODE_IP:10255');
    assert.equal(defaults.requestTimeout, '5s');
    assert.deepEqual(kubeletAnonymousCheck.defaults, {
      enabled: true,
      interval: '5m',
      timeout: '30s',
    });
  });
});

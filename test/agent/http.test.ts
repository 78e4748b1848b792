// A real `node-auditor run` process, scraped over HTTP and linted by the real promtool.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import {
  eventually,
  fixtureHost,
  httpGet,
  metricValue,
  requireTool,
  startAgent,
  tempDir,
  writeFiles,
} from '../helpers.ts';

test('the agent serves its findings, metrics and health on HTTP', async (t) => {
  const agent = await startAgent(t, [
    '--host-root',
    fixtureHost('bad-runtime'),
    '--node-name',
    'k1-node01',
  ]);

  const health = await httpGet(`${agent.url}/healthz`);
  assert.deepEqual([health.status, health.body], [200, 'ok\n']);
  const ready = await httpGet(`${agent.url}/readyz`);
  assert.deepEqual([ready.status, ready.body], [200, 'ok\n']);

  const findings = await httpGet(`${agent.url}/api/v1/findings`);
  assert.equal(findings.status, 200);
  assert.equal(findings.headers.get('content-type'), 'application/json; charset=utf-8');
  const report = JSON.parse(findings.body) as {
    node: string;
    checks: { id: string; status: string }[];
    findings: { id: string; severity: string; firstSeen: string }[];
  };
  assert.equal(report.node, 'k1-node01');
  assert.deepEqual(
    report.checks.map((c) => [c.id, c.status]),
    [
      ['sysctl', 'problem'],
      ['logs', 'ok'],
      ['kubelet-cert', 'skipped'], // no certificate in the fixture
      ['container-runtime', 'ok'],
      ['inotify', 'ok'],
      ['pause', 'ok'],
      ['zombies', 'ok'],
      ['kubelet-anonymous', 'skipped'],
      ['kubelet-config', 'skipped'],
      ['apiserver-anonymous', 'skipped'],
      ['cve', 'skipped'],
      ['rbac', 'skipped'],
      ['runtime-config', 'ok'],
    ],
  );
  assert.equal(report.findings.length, 7);
  assert.equal(report.findings[0]?.severity, 'critical');

  const metrics = await httpGet(`${agent.url}/metrics`);
  assert.equal(metrics.status, 200);
  assert.match(metrics.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const m = metrics.body;
  assert.equal(metricValue(m, 'node_auditor_build_info', { version: '0.1.0' }), 1);
  assert.equal(metricValue(m, 'node_auditor_sysctl', { key: 'fs.inotify.max_user_watches' }), 8192);
  assert.equal(
    metricValue(m, 'node_auditor_sysctl_compliant', { key: 'fs.inotify.max_user_watches' }),
    0,
  );
  assert.equal(
    metricValue(m, 'node_auditor_sysctl_compliant', { key: 'net.bridge.bridge-nf-call-iptables' }),
    1,
  );
  assert.equal(metricValue(m, 'node_auditor_sysctl_persisted', { key: 'net.ipv4.ip_forward' }), 1);
  assert.equal(
    metricValue(m, 'node_auditor_problem', {
      check: 'sysctl',
      problem: 'SysctlOutOfProfile',
      severity: 'critical',
    }),
    1,
  );
  assert.equal(
    metricValue(m, 'node_auditor_problem', {
      check: 'sysctl',
      problem: 'SysctlOutOfProfile',
      severity: 'warning',
    }),
    1,
  );
  assert.equal(
    metricValue(m, 'node_auditor_check_runs_total', { check: 'sysctl', result: 'problem' }),
    1,
  );
  assert.equal(
    metricValue(m, 'node_auditor_check_runs_total', { check: 'sysctl', result: 'error' }),
    0,
  );
  assert.equal(metricValue(m, 'node_auditor_check_duration_seconds_count', { check: 'sysctl' }), 1);
  assert.ok((metricValue(m, 'process_resident_memory_bytes') ?? 0) > 10e6);
  assert.equal(
    metricValue(m, 'node_auditor_internal_errors_total', { kind: 'uncaught_exception' }),
    0,
  );
  // bounded labels: no PIDs, no timestamps, no free text
  for (const line of m.split('\n').filter((l) => l.startsWith('node_auditor_'))) {
    assert.doesNotMatch(line, /pid=|time=|message=/, line);
  }

  const page = await httpGet(`${agent.url}/`);
  assert.equal(page.status, 200);
  assert.equal(page.headers.get('content-type'), 'text/html; charset=utf-8');
  assert.match(page.body, /<title>node-auditor: k1-node01<\/title>/);
  assert.match(page.body, /<h2>Critical \(3\)<\/h2>/);
  assert.match(page.body, /<h2>Warning \(4\)<\/h2>/);
  assert.match(page.body, /fs\.inotify\.max_user_watches is 8192, needs at least 524288/);
  assert.match(page.body, /<pre>\/proc\/sys\/fs\/inotify\/max_user_watches = 8192<\/pre>/);
  assert.match(page.body, /fs\.inotify\.max_user_watches = 1048576/);

  const missing = await httpGet(`${agent.url}/nope`);
  assert.equal(missing.status, 404);
  const post = await httpGet(`${agent.url}/metrics`, { method: 'POST' });
  assert.equal(post.status, 405);
  assert.equal(post.headers.get('allow'), 'GET, HEAD');

  // the start-up summary went to stderr; stdout held only JSON log lines (helpers checks)
  await eventually(
    () => (agent.stderr().includes('Status page') ? true : undefined),
    5000,
    'the summary',
  );
  assert.match(agent.stderr(), /^Found: 3 critical, 4 warning, 0 info$/m);
  // skipped checks say why, as check does (no kubelet, no API: the line above says why)
  assert.match(agent.stderr(), /^Skipped:\n {2}kubelet-cert: no kubelet client certificate at\n/m);
  assert.match(agent.stderr(), /^ {2}kubelet-anonymous: no kubelet listens at /m);
  assert.match(agent.stderr(), /^ {2}kubelet-config: no kubelet on this host: /m);
  assert.match(agent.stderr(), /^ {2}rbac: no Kubernetes API$/m);
  assert.match(agent.stderr(), new RegExp(`^Status page ${agent.url}/\n {2}also /metrics`, 'm'));
  assert.deepEqual(
    agent
      .stderr()
      .split('\n')
      .filter((line) => line.length > 80),
    [],
    'the summary fits 80 columns',
  );
  const raised = agent.logs.filter((l) => l.event === 'finding.raised');
  assert.equal(raised.length, 7);
  assert.equal(
    raised.find((l) => l.finding === 'SysctlOutOfProfile:fs.inotify.max_user_watches')?.level,
    'error',
  );

  assert.equal(await agent.stop(), 0, 'SIGTERM stops it cleanly');
});

test('the scrape passes the real promtool check metrics', async (t) => {
  const promtool = requireTool(t, 'promtool');
  if (promtool === undefined) return;
  const agent = await startAgent(t, ['--host-root', fixtureHost('garbage')]);
  const { body } = await httpGet(`${agent.url}/metrics`);
  const lint = spawnSync(promtool, ['check', 'metrics'], { input: body, encoding: 'utf8' });
  assert.equal(lint.status, 0, `promtool: ${lint.stdout}${lint.stderr}`);
  assert.equal(`${lint.stdout}${lint.stderr}`.trim(), '', 'no lint warnings');
});

test('the status page escapes what it shows', async (t) => {
  const dir = await tempDir(t);
  await writeFiles(dir, {
    'c.yaml':
      'checks:\n  sysctl:\n    profile:\n      kernel.ostype:\n        expect: "= B<b>SD</b>"\n        reason: "<script>alert(1)</script>"\n',
  });
  const agent = await startAgent(t, [
    '--config',
    path.join(dir, 'c.yaml'),
    '--host-root',
    fixtureHost('compliant'),
  ]);
  const { body, headers } = await httpGet(`${agent.url}/`);
  assert.doesNotMatch(body, /<script>|<b>/);
  // escaped in the title too (the value starts with a letter: "<" first is a mistyped operator)
  assert.match(body, /B&#60;b&#62;SD&#60;\/b&#62;/);
  assert.match(body, /&#60;script&#62;alert\(1\)&#60;\/script&#62;/);
  assert.equal(
    headers.get('content-security-policy'),
    "default-src 'none'; style-src 'unsafe-inline'",
  );
});

test('bound to every address, the summary shows a URL a person can open', async (t) => {
  const agent = await startAgent(t, [
    '--listen',
    '0.0.0.0:0',
    '--host-root',
    fixtureHost('compliant'),
  ]);
  assert.match(agent.url, /^http:\/\/0\.0\.0\.0:\d+$/, 'the log keeps the real bind address');
  // the summary (stderr) and the ready log line (stdout) travel on different pipes
  await eventually(
    () => (/^Status page http:\/\/localhost:\d+\/$/m.test(agent.stderr()) ? true : undefined),
    5000,
    'the summary',
  );
  assert.equal((await httpGet(agent.url.replace('0.0.0.0', '127.0.0.1') + '/healthz')).status, 200);
});

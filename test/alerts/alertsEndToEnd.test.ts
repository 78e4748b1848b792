// The page end to end, with real daemons: a running agent on the seed's NotReady node (the
// bad-runtime fixture: fs.inotify.max_user_watches 8192, and the seed's kubelet lines in its
// syslog; kubelet's healthz refused), a real Prometheus scraping it with the shipped rules, a
// real Alertmanager routing to a webhook receiver in this test. The page arrives with its cause
// in the labels and the summary, and the runbook link; the sysctl warning arrives too.
//
// The rules are the shipped file with one change: every `for:` divided by 60 (3m -> 3s), so the
// test takes seconds, not a quarter of an hour. Expressions, labels and texts are as shipped.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import {
  copyFixtureHost,
  eventually,
  httpGet,
  metricValue,
  requireTool,
  startAgent,
  tempDir,
} from '../helpers.ts';
import { freePort, spawnDaemon, waitReady } from '../realDaemons.ts';
import { seedLinesNow } from '../syslogStamp.ts';
import { RULES_FILE, RUNBOOK_BASE, loadAlertRules } from './alertRules.ts';

const NODE = 'e2e-node';

/** The shipped rules with every `for: Nm` as `for: Ns`; nothing else changes. */
function withShortFor(rules: string): { text: string; changed: number } {
  let changed = 0;
  const text = rules.replace(/^(\s+for: )(\d+)m$/gm, (_all, prefix: string, minutes: string) => {
    changed++;
    return `${prefix}${minutes}s`;
  });
  return { text, changed };
}

interface WebhookAlert {
  status: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

/** Alertmanager's webhook receiver: every alert of every notification, in arrival order. */
async function webhookReceiver(t: TestContext): Promise<{ url: string; alerts: WebhookAlert[] }> {
  const alerts: WebhookAlert[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const payload = JSON.parse(body) as { alerts: WebhookAlert[] };
      alerts.push(...payload.alerts);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/alerts`, alerts };
}

test(
  'a NotReady node pages through Prometheus and Alertmanager with its cause and runbook',
  { timeout: 120_000 },
  async (t) => {
    const prometheus = requireTool(t, 'prometheus');
    const alertmanager = requireTool(t, 'prometheus-alertmanager');
    if (prometheus === undefined || alertmanager === undefined) return;

    // The agent on the seed's node: kubelet's lines in syslog, stamped now, and its healthz
    // refused (a closed port), so the node is NotReady and the cause is attributed.
    const root = await copyFixtureHost(t, 'bad-runtime');
    await fs.writeFile(path.join(root, 'etc', 'timezone'), 'UTC\n');
    await fs.writeFile(path.join(root, 'var', 'log', 'syslog'), await seedLinesNow('UTC'));
    const agent = await startAgent(t, ['--host-root', root, '--node-name', NODE], {
      env: {
        TZ: 'UTC',
        NODE_AUDITOR_KUBERNETES__KUBELET_HEALTHZ_URL: `http://127.0.0.1:${await freePort()}/healthz`,
      },
    });
    await eventually(
      async () => {
        const text = (await httpGet(`${agent.url}/metrics`)).body;
        return metricValue(text, 'node_auditor_node_ready') === 0 &&
          metricValue(text, 'node_auditor_notready_cause', { cause: 'InotifyWatchesExhausted' }) ===
            1
          ? true
          : undefined;
      },
      20_000,
      'the agent to report the node NotReady with cause InotifyWatchesExhausted',
    );

    const dir = await tempDir(t, 'node-auditor-alerts-');
    const hook = await webhookReceiver(t);
    const amPort = await freePort();
    await fs.writeFile(
      path.join(dir, 'alertmanager.yml'),
      [
        'route:',
        '  receiver: webhook',
        '  group_by: [alertname, node, cause]',
        '  group_wait: 1s',
        '  group_interval: 1s',
        '  repeat_interval: 1h',
        'receivers:',
        '  - name: webhook',
        '    webhook_configs:',
        `      - url: ${hook.url}`,
        '',
      ].join('\n'),
    );
    const amStderr = spawnDaemon(t, alertmanager, [
      `--config.file=${path.join(dir, 'alertmanager.yml')}`,
      `--storage.path=${path.join(dir, 'alertmanager')}`,
      `--web.listen-address=127.0.0.1:${amPort}`,
      '--cluster.listen-address=', // no gossip: one instance, loopback only
    ]);
    await waitReady(`http://127.0.0.1:${amPort}/-/ready`, amStderr, 'alertmanager');

    const shipped = await fs.readFile(RULES_FILE, 'utf8');
    const short = withShortFor(shipped);
    const rules = await loadAlertRules();
    assert.equal(short.changed, rules.filter((r) => r.for !== undefined).length);
    await fs.writeFile(path.join(dir, 'rules.yaml'), short.text);
    const agentTarget = new URL(agent.url).host;
    await fs.writeFile(
      path.join(dir, 'prometheus.yml'),
      [
        'global:',
        '  scrape_interval: 1s',
        '  evaluation_interval: 1s',
        'rule_files: [rules.yaml]',
        'alerting:',
        '  alertmanagers:',
        `    - static_configs: [{ targets: ['127.0.0.1:${amPort}'] }]`,
        'scrape_configs:',
        '  - job_name: node-auditor',
        // As the chart's ServiceMonitor: the agent's pod labels kept, `node` added (there by
        // relabeling __meta_kubernetes_pod_node_name; a static label here).
        '    honor_labels: true',
        '    static_configs:',
        `      - targets: ['${agentTarget}']`,
        `        labels: { node: ${NODE} }`,
        '',
      ].join('\n'),
    );
    const promPort = await freePort();
    const promStderr = spawnDaemon(t, prometheus, [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, 'prometheus')}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
    ]);
    const promUrl = `http://127.0.0.1:${promPort}`;
    await waitReady(`${promUrl}/-/ready`, promStderr, 'prometheus');

    // The page: NodeNotReady with the cause in its labels and summary, and the runbook.
    const page = await eventually(
      () => hook.alerts.find((a) => a.labels.alertname === 'NodeNotReady' && a.status === 'firing'),
      45_000,
      `the NodeNotReady page at the webhook (prometheus: ${promStderr()})`,
    );
    assert.deepEqual(page.labels, {
      alertname: 'NodeNotReady',
      cause: 'InotifyWatchesExhausted',
      severity: 'critical',
      instance: agentTarget,
      job: 'node-auditor',
      node: NODE,
    });
    assert.equal(page.annotations.summary, `Node ${NODE} is NotReady: InotifyWatchesExhausted`);
    assert.ok(
      page.annotations.description?.includes(
        'InotifyWatchesExhausted: fs.inotify.max_user_watches is exhausted; kubelet cannot start cAdvisor.',
      ),
      page.annotations.description,
    );
    assert.ok(
      page.annotations.description?.includes(`curl http://${agentTarget}/api/v1/findings`),
      page.annotations.description,
    );
    assert.equal(page.annotations.runbook_url, `${RUNBOOK_BASE}NodeNotReady.md`);

    // A warning before it happens: the limit that caused it, out of the node profile.
    const sysctl = await eventually(
      () =>
        hook.alerts.find(
          (a) =>
            a.labels.alertname === 'NodeSysctlNotCompliant' &&
            a.labels.key === 'fs.inotify.max_user_watches',
        ),
      45_000,
      'the NodeSysctlNotCompliant warning for fs.inotify.max_user_watches',
    );
    assert.equal(sysctl.labels.severity, 'warning');
    assert.match(
      sysctl.annotations.description ?? '',
      /^The kernel parameter fs\.inotify\.max_user_watches on node e2e-node is 8192, which does not meet/,
    );
    assert.equal(sysctl.annotations.runbook_url, `${RUNBOOK_BASE}NodeSysctlNotCompliant.md`);

    t.diagnostic(
      `alerts received: ${[...new Set(hook.alerts.map((a) => `${a.labels.alertname}{${a.labels.cause ?? a.labels.key ?? ''}} ${a.status}`))].join(', ')}`,
    );
    // The cause was known from the first scrape: the Unknown variant never paged.
    assert.deepEqual(
      hook.alerts.filter(
        (a) =>
          a.labels.alertname === 'NodeNotReady' && a.labels.cause !== 'InotifyWatchesExhausted',
      ),
      [],
    );
    // Nothing else pages or warns on this node: every alert whose `for` has passed by now is
    // one of these two (no certificate on it is no expired certificate, say).
    assert.deepEqual([...new Set(hook.alerts.map((a) => a.labels.alertname))].sort(), [
      'NodeNotReady',
      'NodeSysctlNotCompliant',
    ]);
    // Against the agent's real series every rule evaluates without error (a many-to-many match,
    // a label the agent does not export in a join, would show here).
    const groups = (
      (await (await fetch(`${promUrl}/api/v1/rules`)).json()) as {
        data: { groups: { rules: { name: string; health: string; lastError?: string }[] }[] };
      }
    ).data.groups;
    const evaluated = groups.flatMap((g) => g.rules);
    assert.equal(evaluated.length, rules.length);
    assert.deepEqual(
      evaluated
        .filter((r) => r.health !== 'ok')
        .map((r) => `${r.name}: ${r.lastError ?? r.health}`),
      [],
    );
  },
);

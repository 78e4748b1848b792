// The shipped alert rules (chart/files/node-auditor.rules.yaml) with the real promtool: the file
// loads, every alert fires in its unit test (rules.test.yaml) with its labels and texts and
// stays quiet for healthy series; every alert has a runbook; expressions only use metrics and
// labels the agent (or, for the DaemonSet, kube-state-metrics) really exports; the page
// explains every NotReady cause.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parser } from '@prometheus-io/lezer-promql';
import { load as loadYaml } from 'js-yaml';
import { CAUSES } from '../../agent/findings/causes.ts';
import { METRICS } from '../../agent/sinks/metrics/catalogue.ts';
import { REPO, requireTool } from '../helpers.ts';
import {
  RULES_FILE,
  RUNBOOKS_DIR,
  RUNBOOK_BASE,
  alertNames,
  loadAlertRules,
} from './alertRules.ts';

const UNIT_TESTS = path.join(REPO, 'test', 'alerts', 'rules.test.yaml');
const SEVERITIES = new Set(['critical', 'warning', 'info']);
/** ContainerRuntimeConfigProblem takes the finding's severity (warning or critical). */
const FINDING_SEVERITY = '{{ $labels.severity }}';
/** Labels a scrape adds: Prometheus's own, and `node` from the ServiceMonitor's relabeling. */
const TARGET_LABELS = new Set(['job', 'instance', 'node']);
const RUNBOOK_SECTIONS = [
  '## What it means',
  '## How to confirm',
  '## How to fix',
  '## How to prevent',
];

function promtool(args: string[]): { status: number | null; output: string } {
  const r = spawnSync('promtool', args, { cwd: REPO, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

test('promtool check rules accepts the shipped rules file', async (t) => {
  if (requireTool(t, 'promtool') === undefined) return;
  const rules = await loadAlertRules();
  const { status, output } = promtool(['check', 'rules', RULES_FILE]);
  assert.equal(status, 0, output);
  assert.match(output, new RegExp(`SUCCESS: ${rules.length} rules found`));
});

test('promtool unit tests: each alert fires on time with its labels and texts, and not when healthy', (t) => {
  if (requireTool(t, 'promtool') === undefined) return;
  const { status, output } = promtool(['test', 'rules', UNIT_TESTS]);
  assert.equal(status, 0, output);
  assert.match(output, /SUCCESS/);
});

interface UnitTests {
  tests: {
    alert_rule_test?: {
      alertname: string;
      exp_alerts?: { exp_labels?: Record<string, string> }[];
    }[];
  }[];
}

test('every alert, and every variant of it, has a unit test in which it fires', async () => {
  const rules = await loadAlertRules();
  const unit = loadYaml(await fs.readFile(UNIT_TESTS, 'utf8')) as UnitTests;
  const cases = unit.tests.flatMap((group) => group.alert_rule_test ?? []);
  // promtool passes a test of an alert name that does not exist when it expects nothing.
  const names = new Set(alertNames(rules));
  for (const c of cases)
    assert.ok(names.has(c.alertname), `unit test of unknown alert ${c.alertname}`);
  const fired = cases.flatMap((c) =>
    (c.exp_alerts ?? []).map((a) => ({ alertname: c.alertname, labels: a.exp_labels ?? {} })),
  );
  for (const rule of rules) {
    const staticLabels = Object.entries(rule.labels).filter(([, v]) => !v.includes('{{'));
    assert.ok(
      fired.some(
        (f) => f.alertname === rule.alert && staticLabels.every(([k, v]) => f.labels[k] === v),
      ),
      `no unit test fires ${rule.alert} ${JSON.stringify(rule.labels)}`,
    );
  }
});

test("the runbooks' Labels section names the alerts that do not carry an agent's target labels", async () => {
  // from the unit tests: an alert fired from an agent's series has its `instance` (port 9746)
  const unit = loadYaml(await fs.readFile(UNIT_TESTS, 'utf8')) as UnitTests;
  const fired = unit.tests
    .flatMap((group) => group.alert_rule_test ?? [])
    .flatMap((c) =>
      (c.exp_alerts ?? []).map((a) => ({ alertname: c.alertname, labels: a.exp_labels ?? {} })),
    );
  const notFromAgent = alertNames(await loadAlertRules()).filter((name) =>
    fired
      .filter((f) => f.alertname === name)
      .every((f) => !(f.labels.instance ?? '').endsWith(':9746')),
  );
  assert.deepEqual(notFromAgent, ['NodeAuditorAbsent', 'NodeAuditorMissing']);
  const index = await fs.readFile(path.join(RUNBOOKS_DIR, 'README.md'), 'utf8');
  const labels = index.slice(
    index.indexOf('## Labels'),
    index.indexOf('\n## ', index.indexOf('## Labels') + 1),
  );
  const named = alertNames(await loadAlertRules()).filter((name) => labels.includes(`\`${name}\``));
  assert.deepEqual(named, notFromAgent);
});

test('every alert has a severity, a summary, a description and a runbook that exists', async () => {
  const rules = await loadAlertRules();
  for (const rule of rules) {
    const severity = rule.labels.severity ?? '';
    assert.ok(
      SEVERITIES.has(severity) || severity === FINDING_SEVERITY,
      `${rule.alert}: severity ${severity}`,
    );
    for (const key of ['summary', 'description'])
      assert.ok((rule.annotations[key] ?? '').length > 20, `${rule.alert}: ${key}`);
    assert.equal(rule.annotations.runbook_url, `${RUNBOOK_BASE}${rule.alert}.md`, rule.alert);
  }
  const names = alertNames(rules);
  for (const name of names) {
    const file = path.join(RUNBOOKS_DIR, `${name}.md`);
    assert.ok(existsSync(file), `no runbook ${file}`);
    const text = await fs.readFile(file, 'utf8');
    assert.ok(text.startsWith(`# ${name}\n`), `${name}.md must start with "# ${name}"`);
    let at = 0;
    for (const section of RUNBOOK_SECTIONS) {
      const found = text.indexOf(`\n${section}\n`, at);
      assert.ok(found > at, `${name}.md: "${section}" missing or out of order`);
      at = found;
    }
  }
  // No runbook for an alert that no longer exists, and the index links every one.
  const files = (await fs.readdir(RUNBOOKS_DIR)).filter((f) => f.endsWith('.md'));
  assert.deepEqual(
    files.filter((f) => f !== 'README.md').sort(),
    names.map((n) => `${n}.md`).sort(),
  );
  const index = await fs.readFile(path.join(RUNBOOKS_DIR, 'README.md'), 'utf8');
  for (const name of names)
    assert.ok(index.includes(`](${name}.md)`), `README.md does not link ${name}`);
});

const CATALOGUE = new Map<string, readonly string[]>(METRICS.map((m) => [m.name, m.labels]));
/**
 * kube-state-metrics' series, with their labels as its documentation lists them
 * (docs/metrics/workload/daemonset-metrics.md, pod-metrics.md, cluster/node-metrics.md): where
 * the agent is missing it has no series of its own, and a NotReady node's agent is told apart
 * by its pod and node.
 */
const KUBE_STATE_METRICS = new Map<string, readonly string[]>([
  ...[
    'kube_daemonset_status_desired_number_scheduled',
    'kube_daemonset_status_number_available',
    'kube_daemonset_status_updated_number_scheduled',
  ].map((name): [string, readonly string[]] => [name, ['namespace', 'daemonset']]),
  [
    'kube_pod_info',
    [
      'namespace',
      'pod',
      'uid',
      'host_ip',
      'pod_ip',
      'node',
      'created_by_kind',
      'created_by_name',
      'priority_class',
      'host_network',
    ],
  ],
  ['kube_pod_status_phase', ['namespace', 'pod', 'uid', 'phase']],
  ['kube_pod_status_ready', ['namespace', 'pod', 'uid', 'condition']],
  ['kube_node_status_condition', ['node', 'condition', 'status']],
]);
/** Series names of a histogram or counter as Prometheus stores them. */
function catalogueLabels(name: string): readonly string[] | undefined {
  if (name === 'up') return [];
  const kubeStateMetrics = KUBE_STATE_METRICS.get(name);
  if (kubeStateMetrics !== undefined) return kubeStateMetrics;
  const base = name.replace(/_(bucket|sum|count)$/, '');
  const labels = CATALOGUE.get(name) ?? CATALOGUE.get(base);
  return labels === undefined ? undefined : name.endsWith('_bucket') ? [...labels, 'le'] : labels;
}

/** Metric and label names a PromQL expression uses that the agent does not export. */
function unknownNames(expr: string): string[] {
  const problems: string[] = [];
  const tree = parser.parse(expr);
  const used = new Set<string>();
  const cursor = tree.cursor();
  const selectors: { metric: string; labels: string[] }[] = [];
  const grouping: string[] = [];
  do {
    if (cursor.type.isError) problems.push(`syntax error at ${cursor.from}`);
    if (cursor.name === 'VectorSelector') {
      const node = cursor.node;
      const id = node.getChild('Identifier');
      const metric = id === null ? '' : expr.slice(id.from, id.to);
      const labels: string[] = [];
      for (const matcher of node.getChild('LabelMatchers')?.getChildren('UnquotedLabelMatcher') ??
        []) {
        const name = matcher.getChild('LabelName');
        if (name !== null) labels.push(expr.slice(name.from, name.to));
      }
      selectors.push({ metric, labels });
      used.add(metric);
    }
    if (cursor.name === 'GroupingLabels') {
      for (const name of cursor.node.getChildren('LabelName'))
        grouping.push(expr.slice(name.from, name.to));
    }
  } while (cursor.next());
  const known = new Set<string>(TARGET_LABELS);
  for (const { metric, labels } of selectors) {
    const exported = catalogueLabels(metric);
    if (exported === undefined) {
      problems.push(`metric ${metric}`);
      continue;
    }
    for (const l of exported) known.add(l);
    for (const l of labels)
      if (!exported.includes(l) && !TARGET_LABELS.has(l)) problems.push(`label ${metric}{${l}}`);
  }
  for (const l of grouping) if (!known.has(l)) problems.push(`grouping label ${l}`);
  return problems;
}

/** The PromQL of `printf "..." ... | query` in an annotation, with its arguments filled in. */
function annotationQueries(text: string): string[] {
  return [...text.matchAll(/printf "((?:[^"\\]|\\.)*)"[^}]*\| query/g)].map((m) =>
    (m[1] ?? '').replace(/\\"/g, '"').replace(/%(\[\d+\])?q/g, '"x"'),
  );
}

test('expressions and annotation queries use only metrics and labels the agent exports', async () => {
  // The check itself must catch a name the agent does not export.
  assert.deepEqual(unknownNames('node_auditor_node_ready{cause="x"} == 0'), [
    'label node_auditor_node_ready{cause}',
  ]);
  assert.deepEqual(unknownNames('node_auditor_nodes_ready == 0'), [
    'metric node_auditor_nodes_ready',
  ]);
  const rules = await loadAlertRules();
  let queries = 0;
  for (const rule of rules) {
    assert.deepEqual(unknownNames(rule.expr), [], `${rule.alert}: ${rule.expr}`);
    for (const text of Object.values(rule.annotations)) {
      for (const query of annotationQueries(text)) {
        queries++;
        assert.deepEqual(unknownNames(query), [], `${rule.alert} annotation query: ${query}`);
      }
    }
  }
  assert.ok(queries >= 3, `${queries} annotation queries found`);
});

test('the NotReady page explains every cause the agent attributes, and names Unknown otherwise', async () => {
  const rules = await loadAlertRules();
  const pages = rules.filter((r) => r.alert === 'NodeNotReady');
  assert.deepEqual(
    pages.map((r) => [r.labels.severity, r.labels.cause]),
    [
      ['critical', undefined],
      ['critical', 'Unknown'],
    ],
  );
  const description = pages[0]?.annotations.description ?? '';
  for (const [cause, text] of Object.entries(CAUSES))
    assert.ok(
      description.includes(`eq $labels.cause "${cause}" }}${text}`),
      `NodeNotReady's description does not explain ${cause} as "${text}"`,
    );
});

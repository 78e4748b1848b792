// The Grafana dashboards (dashboards/build.ts -> chart/files/dashboards/*.json): the committed
// JSON is what the code builds, every panel has a unit, a description and queries that filter by
// cluster and node, use $__rate_interval and name only metrics the agent exports; every query
// parses as PromQL; and against a real Prometheus scraping a real agent on a node with the seed's
// problems (inotify exhausted, NotReady, zombies, a broken pause, anonymous kubelet, a vulnerable
// version, the cAdvisor log lines), every panel query returns series.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { parser } from '@prometheus-io/lezer-promql';
import { dump as dumpYaml } from 'js-yaml';
import { DASHBOARD_DIR, DASHBOARDS, renderDashboards } from '../../dashboards/build.ts';
import { METRICS } from '../../agent/sinks/metrics/catalogue.ts';
import { startFakeKubeApi } from '../kube/fakeKubeApi.ts';
import { startFakeKubelet, startFakeReadOnlyPort } from '../kubelet/fakeKubelet.ts';
import { PAUSE_SIGCGT, writeProcTree } from '../procfs/procTree.ts';
import { startPrometheus } from '../realDaemons.ts';
import type { FixtureProcess } from '../procfs/procTree.ts';
import {
  REPO,
  copyFixtureHost,
  eventually,
  httpGet,
  requireTool,
  startAgent,
  tempDir,
} from '../helpers.ts';

interface Target {
  expr?: string;
  refId?: string;
}

interface Panel {
  id: number;
  type: string;
  title: string;
  description?: string;
  targets?: Target[];
  fieldConfig?: { defaults?: { unit?: string } };
}

interface Variable {
  name: string;
  type: string;
  query?: string;
  includeAll?: boolean;
  allValue?: string;
}

interface DashboardJson {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: Variable[] };
}

/** One query of one panel, named for messages. */
interface PanelQuery {
  where: string;
  panel: Panel;
  expr: string;
}

async function committedDashboards(): Promise<Map<string, DashboardJson>> {
  const out = new Map<string, DashboardJson>();
  for (const name of Object.keys(DASHBOARDS)) {
    const text = await fs.readFile(path.join(DASHBOARD_DIR, name), 'utf8');
    out.set(name, JSON.parse(text) as DashboardJson);
  }
  return out;
}

function panelQueries(dashboards: Map<string, DashboardJson>): PanelQuery[] {
  const queries: PanelQuery[] = [];
  for (const [file, d] of dashboards) {
    for (const panel of d.panels) {
      for (const target of panel.targets ?? []) {
        queries.push({
          where: `${file} panel ${panel.id} "${panel.title}" query ${target.refId ?? '?'}`,
          panel,
          expr: target.expr ?? '',
        });
      }
    }
  }
  return queries;
}

/** What Grafana puts in place of its variables; `$__rate_interval` as for a 1s scrape. */
interface Substitution {
  cluster: string;
  node: string;
  rateInterval: string;
}

const SAMPLE: Substitution = { cluster: 'test', node: 'k1-node01', rateInterval: '15s' };

function substitute(expr: string, values: Substitution): string {
  return expr
    .replaceAll('$__rate_interval', values.rateInterval)
    .replaceAll(/\$\{?cluster\}?/g, values.cluster)
    .replaceAll(/\$\{?node\}?/g, values.node);
}

interface SyntaxNodeLike {
  name: string;
  from: number;
  to: number;
  type: { isError: boolean };
}

function syntaxNodes(expr: string): SyntaxNodeLike[] {
  const nodes: SyntaxNodeLike[] = [];
  parser.parse(expr).iterate({
    enter: (n) => {
      nodes.push({ name: n.name, from: n.from, to: n.to, type: n.type });
    },
  });
  return nodes;
}

interface Selector {
  metric: string;
  /** name, operator and quoted value of each label matcher */
  matchers: string[];
  labels: string[];
}

/** The vector selectors of a query and the labels it groups by, as the parser sees them. */
function parseSelectors(expr: string): { selectors: Selector[]; groupedBy: string[] } {
  const nodes = syntaxNodes(expr);
  const inside = (outer: SyntaxNodeLike) => (n: SyntaxNodeLike) =>
    n.from >= outer.from && n.to <= outer.to;
  const text = (n: SyntaxNodeLike) => expr.slice(n.from, n.to);
  const selectors = nodes
    .filter((n) => n.name === 'VectorSelector')
    .map((selector) => {
      const within = nodes.filter(inside(selector));
      const id = within.find((n) => n.name === 'Identifier');
      const matchers = within.filter((n) => n.name === 'UnquotedLabelMatcher');
      return {
        metric: id === undefined ? '' : text(id),
        matchers: matchers.map(text),
        labels: within.filter((n) => n.name === 'LabelName').map(text),
      };
    });
  const groupedBy = nodes
    .filter((n) => n.name === 'GroupingLabels')
    .flatMap((g) => nodes.filter(inside(g)).filter((n) => n.name === 'LabelName'))
    .map(text);
  return { selectors, groupedBy };
}

// Names the agent exports: a histogram's series are <name>_bucket, _sum and _count.
const EXPORTED = new Set(
  METRICS.flatMap((m) =>
    m.type === 'histogram' ? [`${m.name}_bucket`, `${m.name}_sum`, `${m.name}_count`] : [m.name],
  ),
);
const LABELS = new Map<string, readonly string[]>(
  METRICS.map((m): [string, readonly string[]] =>
    m.type === 'histogram' ? [`${m.name}_bucket`, [...m.labels, 'le']] : [m.name, m.labels],
  ),
);
// Added by the scrape (ServiceMonitor relabeling, external labels), not by the agent.
const SCRAPE_LABELS = ['cluster', 'node', 'job', 'instance'];

test('the committed JSON is what dashboards/build.ts builds; every panel has a unit, a description and well-formed queries', async () => {
  const rendered = await renderDashboards();
  assert.deepEqual([...rendered.keys()].sort(), Object.keys(DASHBOARDS).sort());
  for (const [name, text] of rendered) {
    const committed = await fs.readFile(path.join(DASHBOARD_DIR, name), 'utf8');
    // not deepEqual on parsed objects: a hand edit of the formatting is a difference too
    assert.ok(
      committed === text,
      `chart/files/dashboards/${name} is not what dashboards/build.ts builds: edit the code, then run node dashboards/build.ts`,
    );
  }

  const dashboards = await committedDashboards();
  assert.deepEqual(
    [...dashboards.values()].map((d) => d.uid),
    ['node-auditor-fleet', 'node-auditor-node'],
  );
  for (const [file, d] of dashboards) {
    // the variables every query relies on
    const vars = new Map(d.templating.list.map((v) => [v.name, v]));
    assert.equal(vars.get('datasource')?.type, 'datasource', file);
    assert.equal(vars.get('datasource')?.query, 'prometheus', file);
    for (const name of ['cluster', 'node']) {
      const v = vars.get(name);
      assert.equal(v?.type, 'query', `${file} $${name}`);
      assert.match(
        v.query ?? '',
        new RegExp(`^label_values\\(node_auditor_build_info.*, ${name}\\)$`),
      );
      // "All" must be .*: Grafana's default (every listed value) would drop series without the label
      assert.equal(v.includeAll, true, `${file} $${name} allows All`);
      assert.equal(v.allValue, '.*', `${file} $${name} All is .*`);
    }
    const ids = d.panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, `${file}: panel ids are unique`);
    for (const panel of d.panels.filter((p) => p.type !== 'row')) {
      const where = `${file} panel ${panel.id} "${panel.title}"`;
      assert.ok((panel.fieldConfig?.defaults?.unit ?? '') !== '', `${where} has no unit`);
      assert.ok((panel.description ?? '').length >= 40, `${where} has no real description`);
      assert.ok((panel.targets ?? []).length > 0, `${where} has no query`);
    }
  }

  const queries = panelQueries(dashboards);
  assert.ok(queries.length >= 40, `only ${queries.length} queries`);
  for (const { where, expr } of queries) {
    // every range is Grafana's $__rate_interval (never a fixed window: too short for a 1m
    // scrape interval gives no data, too long hides spikes)
    for (const range of expr.matchAll(/\[([^\]]*)\]/g))
      assert.equal(range[1], '$__rate_interval', `${where}: range [${range[1] ?? ''}]`);
    // ... and every rate()/increase() has one: the parser finds each call and its range
    const sentinel = '987s';
    const text = substitute(expr, { ...SAMPLE, rateInterval: sentinel });
    const nodes = syntaxNodes(text);
    for (const call of nodes.filter((n) => n.name === 'FunctionCall')) {
      const fn = nodes.find((n) => n.name === 'FunctionIdentifier' && n.from === call.from);
      const name = fn === undefined ? '' : text.slice(fn.from, fn.to);
      if (!['rate', 'increase', 'irate', 'delta', 'deriv'].includes(name)) continue;
      const duration = nodes.find(
        (n) => n.name === 'DurationExpr' && n.from > call.from && n.to <= call.to,
      );
      assert.equal(
        duration === undefined ? '' : text.slice(duration.from, duration.to),
        sentinel,
        `${where}: ${name}() without $__rate_interval`,
      );
    }
    // every selector filters by both variables, and names a metric the agent exports with
    // labels it (or the scrape) really has
    const { selectors, groupedBy } = parseSelectors(substitute(expr, SAMPLE));
    assert.ok(selectors.length > 0, `${where}: no selector`);
    const known = new Set(SCRAPE_LABELS);
    for (const { metric, matchers, labels } of selectors) {
      assert.ok(EXPORTED.has(metric), `${where}: ${metric} is not in the metrics catalogue`);
      assert.deepEqual(
        matchers.slice(0, 2),
        ['cluster=~"test"', 'node=~"k1-node01"'],
        `${where}: ${metric} is not filtered by $cluster and $node`,
      );
      const own = LABELS.get(metric) ?? [];
      for (const label of own) known.add(label);
      for (const label of labels)
        assert.ok(
          own.includes(label) || SCRAPE_LABELS.includes(label),
          `${where}: ${metric} has no label ${label}`,
        );
    }
    for (const label of groupedBy)
      assert.ok(known.has(label), `${where}: grouped by ${label}, which no selected metric has`);
  }
});

test('every panel query parses as PromQL (Grafana variables substituted)', async () => {
  const queries = panelQueries(await committedDashboards());
  for (const { where, expr } of queries) {
    const text = substitute(expr, SAMPLE);
    assert.doesNotMatch(text, /\$/, `${where}: a variable left unsubstituted: ${text}`);
    const errors = syntaxNodes(text).filter((n) => n.type.isError);
    assert.deepEqual(
      errors.map((e) => `at ${e.from}: ${text.slice(Math.max(0, e.from - 20), e.from + 20)}`),
      [],
      `${where}: ${text}`,
    );
  }
});

// ---------------------------------------------------------------------------------------------
// Against a real Prometheus and a real agent
// ---------------------------------------------------------------------------------------------

const pod = (n: number) => `0000000${n}-aaaa-4bbb-8ccc-00000000000${n}`;
const containerId = (n: number) => n.toString(16).padStart(2, '0').repeat(32);
/** containerd with the systemd cgroup driver, cgroup v2 (a kubeadm node's default). */
const cgroupOf = (podN: number, containerN: number) =>
  `0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${pod(podN).replaceAll('-', '_')}.slice/cri-containerd-${containerId(containerN)}.scope\n`;

/**
 * The seed's node: root's inotify watches at fs.inotify.max_user_watches (8192, bad-runtime's)
 * held mostly by a file watcher in a pod, a zombie it does not reap, and a second pod whose pause
 * is not PID 1 of its namespace.
 */
const PROCESSES: FixtureProcess[] = [
  { pid: 1, ppid: 0, comm: 'systemd', sigCgt: '00000001000014a2' },
  { pid: 90, ppid: 1, comm: 'containerd-shim', cgroup: '0::/system.slice/containerd.service\n' },
  {
    pid: 500,
    ppid: 1,
    comm: 'kubelet',
    cgroup: '0::/system.slice/kubelet.service\n',
    inotify: [96],
    cmdline: ['/usr/bin/kubelet'],
  },
  {
    pid: 1010,
    ppid: 90,
    comm: 'pause',
    uid: 65535,
    nspid: [1010, 1],
    sigCgt: PAUSE_SIGCGT,
    cgroup: cgroupOf(1, 10),
  },
  {
    pid: 1012,
    ppid: 90,
    comm: 'node',
    nspid: [1012, 2],
    cgroup: cgroupOf(1, 12),
    inotify: [4096, 4000],
    cmdline: ['node', 'watch.js'],
  },
  { pid: 1013, ppid: 1012, comm: 'sh', state: 'Z', nspid: [1013, 3], cgroup: cgroupOf(1, 12) },
  {
    pid: 1020,
    ppid: 90,
    comm: 'pause',
    uid: 65535,
    nspid: [1020, 2],
    sigCgt: PAUSE_SIGCGT,
    cgroup: cgroupOf(2, 20),
  },
];

interface QueryResult {
  resultType: string;
  result: { metric: Record<string, string>; value?: [number, string] }[];
}

async function promQuery(url: string, query: string): Promise<QueryResult> {
  const res = await httpGet(`${url}/api/v1/query?query=${encodeURIComponent(query)}`);
  const body = JSON.parse(res.body) as { status: string; data?: QueryResult; error?: string };
  if (body.status !== 'success' || body.data === undefined)
    throw new Error(`Prometheus refused ${query}: ${body.error ?? res.body}`);
  return body.data;
}

/**
 * Prometheus 1s-scraping the agent twice: as the ServiceMonitor's relabeling would label it
 * (node, cluster), and once more as a node of a Prometheus with no cluster label at all.
 */
async function startScrapingPrometheus(
  t: TestContext,
  agentUrl: string,
): Promise<string | undefined> {
  const target = new URL(agentUrl).host;
  const prometheus = await startPrometheus(
    t,
    [
      'global: { scrape_interval: 1s, evaluation_interval: 1s }',
      'scrape_configs:',
      '  - job_name: node-auditor',
      '    static_configs:',
      `      - targets: ['${target}']`,
      '        labels: { node: k1-node01, cluster: test }',
      '  - job_name: node-auditor-no-cluster',
      '    static_configs:',
      `      - targets: ['${target}']`,
      '        labels: { node: k1-node02 }',
      '',
    ].join('\n'),
  );
  if (prometheus === undefined) return undefined;
  const { url, stderr } = prometheus;
  // two scrapes at least before any rate() is asked
  await eventually(
    async () => {
      if (stderr().startsWith('exited')) throw new Error(`prometheus ${stderr()}`);
      try {
        const r = await promQuery(
          url,
          'count_over_time(node_auditor_build_info{node="k1-node01"}[1m])',
        );
        return Number(r.result[0]?.value?.[1] ?? 0) >= 2 ? true : undefined;
      } catch {
        return undefined; // not listening yet
      }
    },
    30_000,
    'two scrapes of the agent',
  );
  return url;
}

/** The seed's kubelet lines (Failed to start cAdvisor ... no space left on device), logged now. */
async function seedLogLinesNow(): Promise<string> {
  const text = await fs.readFile(
    path.join(REPO, 'test', 'fixtures', 'logs', 'seed-notready.log'),
    'utf8',
  );
  // syslog stamps are local time with no year; the fixture host has no /etc/timezone: UTC
  const now = new Date();
  const month = now.toLocaleString('en-US', { month: 'short', timeZone: 'UTC' });
  const stamp = `${month} ${String(now.getUTCDate()).padStart(2, ' ')} ${now.toISOString().slice(11, 19)}`;
  return text.replace(/^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d/gm, stamp);
}

test('"Nodes by NotReady cause" counts NotReady nodes only, not a cause on a node still Ready (promtool evaluates the committed query)', async (t) => {
  const promtool = requireTool(t, 'promtool');
  if (promtool === undefined) return;
  const q = panelQueries(await committedDashboards()).find(
    (p) =>
      p.where.startsWith('node-auditor-fleet.json') && p.panel.title === 'Nodes by NotReady cause',
  );
  assert.ok(q, 'the fleet panel');
  const all = { cluster: '.*', node: '.*', rateInterval: '1m' };
  const series = (node: string, ready: number, causes: Record<string, number>) => [
    {
      series: `node_auditor_node_ready{job="node-auditor",instance="${node}:9746",node="${node}"}`,
      values: `${ready}x5`,
    },
    ...Object.entries(causes).map(([cause, value]) => ({
      series: `node_auditor_notready_cause{job="node-auditor",instance="${node}:9746",node="${node}",cause="${cause}"}`,
      values: `${value}x5`,
    })),
  ];
  const dir = await tempDir(t);
  await fs.writeFile(
    path.join(dir, 'tests.yaml'),
    dumpYaml(
      {
        rule_files: [],
        evaluation_interval: '1m',
        tests: [
          {
            interval: '1m',
            input_series: [
              // NotReady, its watches exhausted
              ...series('node-a', 0, { InotifyWatchesExhausted: 1, KubeletDown: 0 }),
              // NotReady, the same cause
              ...series('node-b', 0, { InotifyWatchesExhausted: 1, KubeletDown: 0 }),
              // still Ready, its watches exhausted (imminent) and its runtime down: not counted
              ...series('node-c', 1, { InotifyWatchesExhausted: 1, ContainerRuntimeDown: 1 }),
              // Ready, no cause
              ...series('node-d', 1, { InotifyWatchesExhausted: 0 }),
            ],
            promql_expr_test: [
              {
                expr: substitute(q.expr, all),
                eval_time: '4m',
                exp_samples: [{ labels: '{cause="InotifyWatchesExhausted"}', value: 2 }],
              },
            ],
          },
        ],
      },
      { lineWidth: -1 },
    ),
  );
  const run = spawnSync(promtool, ['test', 'rules', 'tests.yaml'], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(run.status, 0, `${q.expr}\n${run.stdout}${run.stderr}`);
});

test('every panel query returns series from a real Prometheus scraping a real agent on a node with problems', async (t) => {
  if (requireTool(t, 'prometheus') === undefined) return;

  // the cluster: this node NotReady, running a pod whose container holds most inotify watches
  const kube = await startFakeKubeApi({ remediationRbac: true });
  t.after(() => kube.close());
  kube.setNodeReady('k1-node01', false);
  kube.addPod({
    namespace: 'dev',
    name: 'code-server-0',
    nodeName: 'k1-node01',
    uid: pod(1),
    containers: [{ name: 'ide', containerID: `containerd://${containerId(12)}` }],
  });
  // its kubelet answers anonymous requests (no config file: AlwaysAllow), read-only port open
  const kubelet = await startFakeKubelet({ mode: 'always-allow', nodeName: 'k1-node01' });
  t.after(() => kubelet.close());
  const readOnly = await startFakeReadOnlyPort();
  t.after(() => readOnly.close());

  const root = await copyFixtureHost(t, 'bad-runtime');
  await writeProcTree(root, { processes: PROCESSES });
  const dir = await tempDir(t);
  const kubeconfig = path.join(dir, 'kubeconfig');
  await kube.writeKubeconfig(kubeconfig, 'sa');
  const config = path.join(dir, 'config.yaml');
  await fs.writeFile(
    config,
    [
      'checks:',
      '  kubelet-anonymous:',
      `    url: ${kubelet.url}`,
      `    readOnlyUrl: ${readOnly.url}`,
      '  logs:',
      '    files: [/var/log/syslog]',
      '    journal: { enabled: false }',
      '    kmsg: { enabled: false }',
      '',
    ].join('\n'),
  );
  const agent = await startAgent(
    t,
    [
      '--config',
      config,
      '--kubeconfig',
      kubeconfig,
      '--node-name',
      'k1-node01',
      '--host-root',
      root,
    ],
    {
      env: {
        // decisions even here: the storm guard skips them (this one node of one is NotReady)
        NODE_AUDITOR_REMEDIATION__ACTIONS__INOTIFY_LIMITS__ENABLED: 'true',
        // the leader reports the API server's version and anonymous exposure: be it soon
        NODE_AUDITOR_KUBERNETES__LEADER_ELECTION__LEASE_DURATION: '2s',
        NODE_AUDITOR_KUBERNETES__LEADER_ELECTION__RETRY_PERIOD: '500ms',
      },
    },
  );
  await fs.appendFile(path.join(root, 'var', 'log', 'syslog'), await seedLogLinesNow());

  const url = await startScrapingPrometheus(t, agent.url);
  if (url === undefined) return;

  // Some series come after the first pass (log matches, the leader's audits): ask until each
  // query has series, then report every one that never had any.
  const queries = panelQueries(await committedDashboards());
  const empty = new Map(queries.map((q) => [q.where, substitute(q.expr, SAMPLE)]));
  const deadline = Date.now() + 30_000;
  while (empty.size > 0 && Date.now() < deadline) {
    await Promise.all(
      [...empty].map(async ([where, query]) => {
        if ((await promQuery(url, query)).result.length > 0) empty.delete(where);
      }),
    );
    if (empty.size > 0) await new Promise((resolve) => setTimeout(resolve, 500));
  }
  assert.deepEqual(
    [...empty].map(([where, query]) => `${where}: ${query}`),
    [],
    `panel queries with no series; the agent exported:\n${(
      await httpGet(`${agent.url}/metrics`)
    ).body
      .split('\n')
      .filter((l) => !l.startsWith('#'))
      .map((l) => l.replace(/\{.*$|\s.*$/, ''))
      .filter((l, i, all) => l !== '' && all.indexOf(l) === i)
      .join(', ')}`,
  );

  // The values say what happened on the node, not just that there is data.
  const fleet = panelQueries(await committedDashboards()).filter((q) =>
    q.where.startsWith('node-auditor-fleet.json'),
  );
  const value = async (title: string, values: Substitution = SAMPLE) => {
    const q = fleet.find((p) => p.panel.title === title);
    assert.ok(q, title);
    return (await promQuery(url, substitute(q.expr, values))).result;
  };
  const only = async (title: string) => Number((await value(title))[0]?.value?.[1]);
  assert.equal(await only('Nodes NotReady'), 1);
  assert.equal(
    await only('inotify watches used (highest user) vs fs.inotify.max_user_watches'),
    1,
    '8192 of 8192 watches',
  );
  assert.ok(
    (await value('Nodes by NotReady cause')).some(
      (r) => r.metric.cause === 'InotifyWatchesExhausted',
    ),
    'the exhausted watches are the NotReady cause',
  );
  assert.ok(
    (await value('Anonymous authentication enabled')).some((r) => r.metric.target === 'kubelet'),
  );
  assert.ok(
    (await value('Vulnerable components')).some((r) => r.metric.component === 'kubelet'),
    'the recorded v1.26.0 kubelet has CVEs',
  );
  // "All" is .*: it also matches the second job's series, which have no cluster label
  assert.equal(
    Number(
      (await value('Nodes reporting', { cluster: '.*', node: '.*', rateInterval: '15s' }))[0]
        ?.value?.[1],
    ),
    2,
  );

  // The variables' label_values() list what Prometheus has.
  for (const d of (await committedDashboards()).values()) {
    for (const v of d.templating.list.filter((x) => x.type === 'query')) {
      const m = /^label_values\((.*), (\w+)\)$/.exec(v.query ?? '');
      assert.ok(m, v.query);
      const match = substitute(m[1] ?? '', SAMPLE);
      const res = await httpGet(
        `${url}/api/v1/label/${m[2] ?? ''}/values?match[]=${encodeURIComponent(match)}`,
      );
      const { data } = JSON.parse(res.body) as { data: string[] };
      assert.deepEqual(
        data,
        v.name === 'cluster' ? ['test'] : ['k1-node01'],
        `${d.uid} $${v.name}`,
      );
    }
  }
});

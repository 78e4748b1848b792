// The Grafana dashboards, as code: a fleet overview and a one-node drill-down, built with the
// Grafana Foundation SDK and written as JSON to chart/files/dashboards/ (the chart turns each file
// into a ConfigMap labelled grafana_dashboard: "1"; Grafana's sidecar loads it).
//
//   node dashboards/build.ts           writes the JSON files
//
// Every query uses only metrics of agent/sinks/metrics/catalogue.ts, with their real labels. The
// agent's series carry no `node` or `cluster` label of their own: the ServiceMonitor adds `node`
// (relabeled from __meta_kubernetes_pod_node_name) and `cluster` comes from a relabeling or from a
// global view's external labels (dashboards/README.md). Each selector filters on both with =~,
// so the variables' "All" (.*) also matches series that have no cluster label at all.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import * as prettier from 'prettier';
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as prometheus from '@grafana/grafana-foundation-sdk/prometheus';
import * as stat from '@grafana/grafana-foundation-sdk/stat';
import * as statetimeline from '@grafana/grafana-foundation-sdk/statetimeline';
import * as table from '@grafana/grafana-foundation-sdk/table';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';

// The SDK marks the classic dashboard model deprecated in favour of schema v2, but v2 is a preview
// behind feature toggles (dynamicDashboards, kubernetesDashboards) in Grafana 12, and the sidecar
// of kube-prometheus-stack provisions files: classic JSON loads on every Grafana in use (13
// migrates it to v2 itself). Revisit when v2 is generally available.
/* eslint-disable @typescript-eslint/no-deprecated */

const REPO = path.resolve(import.meta.dirname, '..');
export const DASHBOARD_DIR = path.join(REPO, 'chart', 'files', 'dashboards');

/** Every panel and variable queries the data source the operator picks in `$datasource`. */
const DATASOURCE: common.DataSourceRef = { type: 'prometheus', uid: '${datasource}' };

/**
 * The label matchers every selector starts with. `=~` and not `=`: "All" is `.*`, which also
 * matches a series without the label (a Prometheus queried directly has no `cluster` label:
 * external labels are only added to data that leaves it).
 */
function selector(...matchers: string[]): string {
  return `{${['cluster=~"$cluster"', 'node=~"$node"', ...matchers].join(', ')}}`;
}

interface Query {
  expr: string;
  legend?: string;
}

interface PanelSpec {
  title: string;
  /** What the panel shows and what to do about it: shown in the panel's (i) tooltip. */
  description: string;
  /** A Grafana unit id: short, percentunit, s, bytes, cps, bool_yes_no, none. */
  unit: string;
  queries: Query[];
  /** Width in grid columns (24 is the full width) and height in grid rows. */
  w: number;
  h: number;
}

const GREEN = 'green';
const ORANGE = 'orange';
const RED = 'red';

/** Thresholds as [from value, color]; the first step has no lower bound. */
function thresholds(...steps: [number | null, string][]): dashboard.ThresholdsConfigBuilder {
  return new dashboard.ThresholdsConfigBuilder()
    .mode(dashboard.ThresholdsMode.Absolute)
    .steps(steps.map(([value, color]) => ({ value, color })));
}

/** Zero is fine, anything above is a problem to look at. */
const ZERO_IS_FINE = () => thresholds([null, GREEN], [1, RED]);

/** The inotify check's defaults: warning at 90% of a limit, critical at 95%. */
const INOTIFY_STEPS = () => thresholds([null, GREEN], [0.9, ORANGE], [0.95, RED]);

function valueMap(map: Record<string, [string, string]>): dashboard.ValueMapping {
  return {
    type: dashboard.MappingType.ValueToText,
    options: Object.fromEntries(
      Object.entries(map).map(([value, [text, color]], index) => [value, { text, color, index }]),
    ),
  };
}

const READY_MAPPING = valueMap({ '1': ['Ready', GREEN], '0': ['NotReady', RED] });

function target(query: Query, refId: string, instant: boolean): prometheus.DataqueryBuilder {
  const builder = new prometheus.DataqueryBuilder()
    .datasource(DATASOURCE)
    .refId(refId)
    .expr(query.expr);
  if (query.legend !== undefined) builder.legendFormat(query.legend);
  if (instant) builder.instant().format(prometheus.PromQueryFormat.Table);
  else builder.range();
  return builder;
}

/** refIds A, B, C ... in query order (tables refer to their columns by them). */
function targets(queries: Query[], instant: boolean): prometheus.DataqueryBuilder[] {
  return queries.map((q, i) => target(q, String.fromCharCode(65 + i), instant));
}

const LEGEND = () =>
  new common.VizLegendOptionsBuilder()
    .showLegend(true)
    .displayMode(common.LegendDisplayMode.List)
    .placement(common.LegendPlacement.Bottom);

const TOOLTIP = () =>
  new common.VizTooltipOptionsBuilder()
    .mode(common.TooltipDisplayMode.Multi)
    .sort(common.SortOrder.Descending);

/**
 * Panel ids must be unique within a dashboard (links and "view panel" use them); assigned in
 * order, so the generated JSON is the same on every build.
 */
class PanelIds {
  private last = 0;
  next(): number {
    return ++this.last;
  }
}

function timeSeriesPanel(
  ids: PanelIds,
  spec: PanelSpec,
  style: { bars?: boolean; steps?: dashboard.ThresholdsConfigBuilder; min?: number } = {},
): timeseries.PanelBuilder {
  const panel = new timeseries.PanelBuilder()
    .id(ids.next())
    .title(spec.title)
    .description(spec.description)
    .datasource(DATASOURCE)
    .unit(spec.unit)
    .span(spec.w)
    .height(spec.h)
    .targets(targets(spec.queries, false))
    .legend(LEGEND())
    .tooltip(TOOLTIP())
    .min(style.min ?? 0);
  if (style.bars === true) {
    // counts per interval read better as bars than as a line joining them
    panel.drawStyle(common.GraphDrawStyle.Bars).fillOpacity(80).lineWidth(1);
  } else {
    panel.fillOpacity(10).lineWidth(1).showPoints(common.VisibilityMode.Never);
  }
  if (style.steps !== undefined) {
    panel
      .thresholds(style.steps)
      .thresholdsStyle(
        new common.GraphThresholdsStyleConfigBuilder().mode(common.GraphThresholdsStyleMode.Dashed),
      );
  }
  return panel;
}

function statPanel(
  ids: PanelIds,
  spec: PanelSpec,
  style: {
    steps?: dashboard.ThresholdsConfigBuilder;
    mappings?: dashboard.ValueMapping[];
    noValue?: string;
  } = {},
): stat.PanelBuilder {
  const panel = new stat.PanelBuilder()
    .id(ids.next())
    .title(spec.title)
    .description(spec.description)
    .datasource(DATASOURCE)
    .unit(spec.unit)
    .span(spec.w)
    .height(spec.h)
    .targets(targets(spec.queries, false))
    .graphMode(common.BigValueGraphMode.Area)
    .colorMode(common.BigValueColorMode.Value)
    .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false))
    .thresholds(style.steps ?? ZERO_IS_FINE());
  if (style.mappings !== undefined) panel.mappings(style.mappings);
  if (style.noValue !== undefined) panel.noValue(style.noValue);
  return panel;
}

/**
 * A table of instant queries: one row per series, its labels as columns. With several queries
 * the rows are merged on their labels and each query's value gets its own column.
 */
function tablePanel(
  ids: PanelIds,
  spec: PanelSpec,
  style: {
    /** Display names (and units) of the value columns, in query order. */
    columns?: { name: string; unit?: string }[];
    mappings?: dashboard.ValueMapping[];
    sortBy?: string;
    /** The node column links to the one-node dashboard (fleet tables). */
    nodeLinks?: boolean;
  } = {},
): table.PanelBuilder {
  const panel = new table.PanelBuilder()
    .id(ids.next())
    .title(spec.title)
    .description(spec.description)
    .datasource(DATASOURCE)
    .unit(spec.unit)
    .span(spec.w)
    .height(spec.h)
    .targets(targets(spec.queries, true))
    .filterable(true)
    .withTransformation({ id: 'merge', options: {} })
    // the instant query's timestamp is the same on every row: noise
    .withTransformation({ id: 'organize', options: { excludeByName: { Time: true } } });
  const columns = style.columns ?? [];
  columns.forEach((column, i) => {
    // one query's value column is "Value"; with several, "Value #A", "Value #B" ...
    const field = columns.length === 1 ? 'Value' : `Value #${String.fromCharCode(65 + i)}`;
    const properties: dashboard.DynamicConfigValue[] = [{ id: 'displayName', value: column.name }];
    if (column.unit !== undefined) properties.push({ id: 'unit', value: column.unit });
    panel.overrideByName(field, properties);
  });
  if (style.nodeLinks === true) panel.overrideByName('node', [NODE_DRILL_DOWN]);
  if (style.mappings !== undefined) panel.mappings(style.mappings);
  if (style.sortBy !== undefined)
    panel.sortBy([new common.TableSortByFieldStateBuilder().displayName(style.sortBy).desc(true)]);
  return panel;
}

function stateTimelinePanel(
  ids: PanelIds,
  spec: PanelSpec,
  mappings: dashboard.ValueMapping[],
): statetimeline.PanelBuilder {
  return new statetimeline.PanelBuilder()
    .id(ids.next())
    .title(spec.title)
    .description(spec.description)
    .datasource(DATASOURCE)
    .unit(spec.unit)
    .span(spec.w)
    .height(spec.h)
    .targets(targets(spec.queries, false))
    .mappings(mappings)
    .thresholds(thresholds([null, GREEN]))
    .showValue(common.VisibilityMode.Never)
    .mergeValues(true)
    .rowHeight(0.8)
    .legend(new common.VizLegendOptionsBuilder().showLegend(false));
}

/** A link to the other dashboard, keeping the time range and the variables. */
function dashboardLink(title: string, uid: string): dashboard.DashboardLinkBuilder {
  return new dashboard.DashboardLinkBuilder(title)
    .type(dashboard.DashboardLinkType.Link)
    .url(`/d/${uid}`)
    .icon('dashboard')
    .includeVars(true)
    .keepTime(true);
}

/** A table column's data link: the one-node dashboard for the node of that row. */
const NODE_DRILL_DOWN: dashboard.DynamicConfigValue = {
  id: 'links',
  value: [
    {
      title: 'Open ${__value.raw} in the one-node dashboard',
      url: '/d/node-auditor-node?${__url_time_range}&${datasource:queryparam}&${cluster:queryparam}&var-node=${__value.raw}',
    },
  ],
};

/** Failed check runs by check, and errors that escaped every handler: in both dashboards. */
function checkErrorsPanel(ids: PanelIds, description: string): timeseries.PanelBuilder {
  return timeSeriesPanel(
    ids,
    {
      title: 'Check errors',
      description,
      unit: 'short',
      queries: [
        {
          expr: `sum by (check) (increase(node_auditor_check_runs_total${selector('result="error"')}[$__rate_interval]))`,
          legend: '{{check}}',
        },
        {
          expr: `sum by (kind) (increase(node_auditor_internal_errors_total${selector()}[$__rate_interval]))`,
          legend: 'internal: {{kind}}',
        },
      ],
      w: 12,
      h: 8,
    },
    { bars: true },
  );
}

function row(ids: PanelIds, title: string): dashboard.RowBuilder {
  return new dashboard.RowBuilder(title).id(ids.next());
}

// ---------------------------------------------------------------------------------------------
// Variables
// ---------------------------------------------------------------------------------------------

function datasourceVariable(): dashboard.DatasourceVariableBuilder {
  return new dashboard.DatasourceVariableBuilder('datasource')
    .label('Data source')
    .type('prometheus')
    .description('The Prometheus (or Thanos, Mimir) that scrapes the node-auditor agents.');
}

/** `label_values` of node_auditor_build_info: every agent exports it, always 1. */
function labelVariable(
  name: 'cluster' | 'node',
  label: string,
  description: string,
  multi: boolean,
): dashboard.QueryVariableBuilder {
  const filter = name === 'node' ? '{cluster=~"$cluster"}' : '';
  const query = `label_values(node_auditor_build_info${filter}, ${name})`;
  return (
    new dashboard.QueryVariableBuilder(name)
      .label(label)
      .description(description)
      .datasource(DATASOURCE)
      .query(query)
      .definition(query)
      .refresh(dashboard.VariableRefresh.OnTimeRangeChanged)
      .sort(dashboard.VariableSort.AlphabeticalAsc)
      .includeAll(true)
      // not Grafana's default (every value listed): .* also matches series that lack the label
      .allValue('.*')
      .multi(multi)
  );
}

function clusterVariable(): dashboard.QueryVariableBuilder {
  return labelVariable(
    'cluster',
    'Cluster',
    'The cluster label (a relabeling or the external labels of a global view). With one Prometheus per cluster there is none: only All is listed, and All matches series without it.',
    true,
  );
}

/** What both dashboards share: tags, time, refresh, the three variables and the link across. */
function frame(options: {
  title: string;
  uid: string;
  description: string;
  nodeDescription: string;
  multiNode: boolean;
  link: dashboard.DashboardLinkBuilder;
}): dashboard.DashboardBuilder {
  return new dashboard.DashboardBuilder(options.title)
    .uid(options.uid)
    .description(options.description)
    .tags(['node-auditor', 'kubernetes'])
    .editable()
    .tooltip(dashboard.DashboardCursorSync.Crosshair)
    .time({ from: 'now-6h', to: 'now' })
    .refresh('1m')
    .timezone('browser')
    .withVariable(datasourceVariable())
    .withVariable(clusterVariable())
    .withVariable(labelVariable('node', 'Node', options.nodeDescription, options.multiNode))
    .link(options.link);
}

// ---------------------------------------------------------------------------------------------
// Fleet overview
// ---------------------------------------------------------------------------------------------

export function fleetDashboard(): dashboard.Dashboard {
  const ids = new PanelIds();
  const s = selector;
  const byNode = 'cluster, node';
  const inotifyRatio = (used: string, limit: string) =>
    `max by (${byNode}) (${used}${s()}) / max by (${byNode}) (${limit}${s()})`;

  return frame({
    title: 'node-auditor / Fleet overview',
    uid: 'node-auditor-fleet',
    description:
      'Every node the node-auditor DaemonSet runs on: which nodes have problems, why nodes are (or are about to be) NotReady, inotify and zombie pressure, anonymous exposure, CVEs and what remediation did.',
    nodeDescription:
      'Nodes to show (the node label the ServiceMonitor sets from the pod’s node name).',
    multiNode: true,
    link: dashboardLink('One node', 'node-auditor-node'),
  })
    .withRow(row(ids, 'Fleet at a glance'))
    .withPanel(
      statPanel(
        ids,
        {
          title: 'Nodes reporting',
          description:
            'Agents whose metrics Prometheus has now (node_auditor_build_info, one per node of the DaemonSet). Fewer than the nodes you run: an agent is down, not scheduled (a taint it does not tolerate) or not scraped.',
          unit: 'short',
          queries: [{ expr: `count(node_auditor_build_info${s()})` }],
          w: 4,
          h: 4,
        },
        { steps: thresholds([null, GREEN]) },
      ),
    )
    .withPanel(
      statPanel(ids, {
        title: 'Nodes NotReady',
        description:
          "Nodes whose Ready condition is not True (node_auditor_node_ready = 0; with no Kubernetes API, the local kubelet's healthz failing). The NotReady causes below say why.",
        unit: 'short',
        queries: [{ expr: `sum(1 - node_auditor_node_ready${s()})` }],
        w: 4,
        h: 4,
      }),
    )
    .withPanel(
      statPanel(
        ids,
        {
          title: 'Nodes with a critical problem',
          description:
            'Nodes with at least one active critical finding (node_auditor_problem{severity="critical"} = 1). A problem series appears when first raised and stays at 0 once cleared, so no data means no critical problem was ever raised.',
          unit: 'short',
          queries: [
            {
              expr: `sum(max by (${byNode}) (node_auditor_problem${s('severity="critical"')}))`,
            },
          ],
          w: 4,
          h: 4,
        },
        { noValue: '0' },
      ),
    )
    .withPanel(
      statPanel(ids, {
        title: 'Zombie processes',
        description:
          'Exited processes not yet reaped by their parent, on all nodes shown (node_auditor_zombie_processes). A few come and go; a number that only grows is a leak: a container PID 1 (or a pause process) that does not reap, and the node runs out of PIDs.',
        unit: 'short',
        queries: [{ expr: `sum(node_auditor_zombie_processes${s()})` }],
        w: 4,
        h: 4,
      }),
    )
    .withPanel(
      statPanel(ids, {
        title: 'Anonymous authentication on',
        description:
          'Targets (kubelet, kubelet read-only port, API server) that authenticate a request without credentials as system:anonymous (node_auditor_anonymous_auth_enabled = 1), counted per probing node. Turn it off (--anonymous-auth=false, authentication.anonymous.enabled: false) unless something needs it; the table below says which node and target.',
        unit: 'short',
        queries: [{ expr: `sum(node_auditor_anonymous_auth_enabled${s()})` }],
        w: 4,
        h: 4,
      }),
    )
    .withPanel(
      statPanel(ids, {
        title: 'CVEs affecting running versions',
        description:
          'Distinct CVEs of the cve check’s table that the running API server or a kubelet is affected by (node_auditor_vulnerable = 1). No data: the cve check has no Kubernetes API to read versions from. Upgrade the component, or list a CVE verified not to apply in checks.cve.ignore.',
        unit: 'short',
        queries: [{ expr: `sum(max by (cve) (node_auditor_vulnerable${s()}))` }],
        w: 4,
        h: 4,
      }),
    )

    .withRow(row(ids, 'Problems and NotReady causes'))
    .withPanel(
      timeSeriesPanel(ids, {
        title: 'Nodes by problem',
        description:
          'How many nodes have each kind of problem active (node_auditor_problem, by problem and severity). A rise on many nodes at once is a fleet-wide change (an image, a config rollout); on one node, open the one-node dashboard.',
        unit: 'short',
        queries: [
          {
            expr: `sum by (problem, severity) (node_auditor_problem${s()})`,
            legend: '{{problem}} ({{severity}})',
          },
        ],
        w: 12,
        h: 8,
      }),
    )
    .withPanel(
      tablePanel(
        ids,
        {
          title: 'Active problems by node',
          description:
            'Every active problem now, one row per node and problem (node_auditor_problem = 1). The finding itself (message, evidence, fix) is in the agent’s /api/v1/findings, its log and the Node’s Events.',
          unit: 'short',
          queries: [
            {
              expr: `max by (${byNode}, check, problem, severity) (node_auditor_problem${s()}) == 1`,
            },
          ],
          w: 12,
          h: 8,
        },
        { columns: [{ name: 'Active', unit: 'bool_yes_no' }], nodeLinks: true },
      ),
    )
    .withPanel(
      stateTimelinePanel(
        ids,
        {
          title: 'Node readiness',
          description:
            'Each node’s Ready condition over time (node_auditor_node_ready: the Node object’s Ready condition, or the kubelet’s healthz when the agent has no API).',
          unit: 'none',
          queries: [
            { expr: `min by (${byNode}) (node_auditor_node_ready${s()})`, legend: '{{node}}' },
          ],
          w: 12,
          h: 8,
        },
        [READY_MAPPING],
      ),
    )
    .withPanel(
      timeSeriesPanel(ids, {
        title: 'Nodes by NotReady cause',
        description:
          'NotReady nodes by the root cause attributed to them (node_auditor_notready_cause = 1 on a node whose node_auditor_node_ready = 0), as the NodeNotReady page counts them. A cause in effect on a node that is still Ready (NotReady imminent: inotify watches exhausted before the kubelet restarts) is not counted here: the one-node dashboard and the NodeNotReadyImminent alert show it. The runbook of each cause says how to fix it.',
        unit: 'short',
        queries: [
          {
            // the cause's series and the readiness come from the same target: joined on every
            // label but cause, as the NodeNotReady alert joins them
            expr: `sum by (cause) (node_auditor_notready_cause${s()} == 1 and ignoring (cause) node_auditor_node_ready${s()} == 0)`,
            legend: '{{cause}}',
          },
        ],
        w: 12,
        h: 8,
      }),
    )

    .withRow(row(ids, 'inotify'))
    .withPanel(
      timeSeriesPanel(
        ids,
        {
          title: 'inotify watches used (highest user) vs fs.inotify.max_user_watches',
          description:
            'Per node, the watches of the user holding most of them (node_auditor_inotify_watches, per effective UID: the kernel charges the limit per user) over fs.inotify.max_user_watches. At 100% the kubelet cannot start cAdvisor (inotify_add_watch: no space left on device) and the node goes NotReady. Raise the limit in /etc/sysctl.d/ (or enable the inotify-limits remediation) and find the holder in the one-node dashboard.',
          unit: 'percentunit',
          queries: [
            {
              expr: inotifyRatio(
                'node_auditor_inotify_watches',
                'node_auditor_inotify_max_user_watches',
              ),
              legend: '{{node}}',
            },
          ],
          w: 12,
          h: 8,
        },
        { steps: INOTIFY_STEPS() },
      ),
    )
    .withPanel(
      timeSeriesPanel(
        ids,
        {
          title: 'inotify instances used (highest user) vs fs.inotify.max_user_instances',
          description:
            'Per node, the inotify instances of the user holding most (node_auditor_inotify_instances) over fs.inotify.max_user_instances. At 100% new watchers fail with "too many open files" (kubelet, container runtimes, log shippers).',
          unit: 'percentunit',
          queries: [
            {
              expr: inotifyRatio(
                'node_auditor_inotify_instances',
                'node_auditor_inotify_max_user_instances',
              ),
              legend: '{{node}}',
            },
          ],
          w: 12,
          h: 8,
        },
        { steps: INOTIFY_STEPS() },
      ),
    )

    .withRow(row(ids, 'Processes'))
    .withPanel(
      timeSeriesPanel(ids, {
        title: 'Zombie processes by node',
        description:
          'Zombies per node (node_auditor_zombie_processes summed over pods and the host). A steady climb is a parent that never reaps: the one-node dashboard names the pod and container.',
        unit: 'short',
        queries: [
          {
            expr: `sum by (${byNode}) (node_auditor_zombie_processes${s()})`,
            legend: '{{node}}',
          },
        ],
        w: 12,
        h: 8,
      }),
    )
    .withPanel(
      timeSeriesPanel(ids, {
        title: 'Broken pod sandboxes by node',
        description:
          'Pod sandboxes whose infra (pause) process is not as it must be: not PID 1 of the pod, not handling SIGCHLD or SIGTERM, not reaping, or itself a zombie (node_auditor_pod_sandboxes, states other than ok). Such a pod leaks zombies or does not stop cleanly.',
        unit: 'short',
        queries: [
          {
            expr: `sum by (${byNode}) (node_auditor_pod_sandboxes${s('state!="ok"')})`,
            legend: '{{node}}',
          },
        ],
        w: 12,
        h: 8,
      }),
    )

    .withRow(row(ids, 'Security exposure'))
    .withPanel(
      tablePanel(
        ids,
        {
          title: 'Anonymous authentication enabled',
          description:
            'Targets that accept requests without credentials as system:anonymous, by the node that probed them (node_auditor_anonymous_auth_enabled = 1). The kubelet is each node’s own; the API server is probed by the agents that have one configured.',
          unit: 'short',
          queries: [
            {
              expr: `max by (${byNode}, target) (node_auditor_anonymous_auth_enabled${s()}) == 1`,
            },
          ],
          w: 8,
          h: 8,
        },
        { columns: [{ name: 'Enabled', unit: 'bool_yes_no' }], nodeLinks: true },
      ),
    )
    .withPanel(
      tablePanel(
        ids,
        {
          title: 'Paths answering anonymous requests',
          description:
            'Paths that answered 200 to a request without credentials (node_auditor_anonymous_access_allowed = 1): anyone who reaches the port can read them (pods, metrics, configz) or, on the kubelet, run commands in containers. Fix the authorization (kubelet authorization.mode: Webhook; no system:unauthenticated in cluster role bindings).',
          unit: 'short',
          queries: [
            {
              expr: `max by (${byNode}, target, path) (node_auditor_anonymous_access_allowed${s()}) == 1`,
            },
          ],
          w: 8,
          h: 8,
        },
        { columns: [{ name: 'Allowed', unit: 'bool_yes_no' }], nodeLinks: true },
      ),
    )
    .withPanel(
      tablePanel(
        ids,
        {
          title: 'Vulnerable components',
          description:
            'CVEs the running API server or a node’s kubelet is affected by (node_auditor_vulnerable = 1). The API server is reported by the leader agent only; each kubelet by its own node.',
          unit: 'short',
          queries: [
            {
              expr: `max by (${byNode}, component, cve) (node_auditor_vulnerable${s()}) == 1`,
            },
          ],
          w: 8,
          h: 8,
        },
        { columns: [{ name: 'Affected', unit: 'bool_yes_no' }], nodeLinks: true },
      ),
    )

    .withRow(row(ids, 'Remediation and agent health'))
    .withPanel(
      timeSeriesPanel(
        ids,
        {
          title: 'Remediation decisions',
          description:
            'Decisions of the opt-in remediation per interval, by action and outcome (node_auditor_remediation_actions_total): applied (the host was changed), dry_run (what enforce would do), skipped (a safety gate said no: the Event says which), failed (rolled back). Failed needs a look; many skipped may be the storm guard holding back during an outage.',
          unit: 'short',
          queries: [
            {
              expr: `sum by (action, outcome) (increase(node_auditor_remediation_actions_total${s()}[$__rate_interval]))`,
              legend: '{{action}} {{outcome}}',
            },
          ],
          w: 12,
          h: 8,
        },
        { bars: true },
      ),
    )
    .withPanel(
      checkErrorsPanel(
        ids,
        'Check runs that failed or timed out per interval, by check (node_auditor_check_runs_total{result="error"}); such a run keeps the last good values, so the panels above may be stale for it. The CheckFailed finding and the agent log say why.',
      ),
    )
    .build();
}

// ---------------------------------------------------------------------------------------------
// One node
// ---------------------------------------------------------------------------------------------

export function nodeDashboard(): dashboard.Dashboard {
  const ids = new PanelIds();
  const s = selector;
  const ratio = (used: string, limit: string) => `max(${used}${s()}) / max(${limit}${s()})`;

  return frame({
    title: 'node-auditor / Node',
    uid: 'node-auditor-node',
    description:
      'One node in depth: its problems and NotReady causes, sysctl compliance, inotify holders, zombies and pod sandboxes, anonymous exposure, CVEs, remediation, and the agent’s own checks.',
    nodeDescription:
      'The node to look at (the node label the ServiceMonitor sets from the pod’s node name). All sums the nodes.',
    multiNode: false,
    link: dashboardLink('Fleet overview', 'node-auditor-fleet'),
  })
    .withRow(row(ids, 'Node at a glance'))
    .withPanel(
      statPanel(
        ids,
        {
          title: 'Ready',
          description:
            'The Node’s Ready condition (node_auditor_node_ready), or with no Kubernetes API the local kubelet’s healthz.',
          unit: 'none',
          queries: [{ expr: `min(node_auditor_node_ready${s()})` }],
          w: 4,
          h: 4,
        },
        { steps: thresholds([null, RED], [1, GREEN]), mappings: [READY_MAPPING] },
      ),
    )
    .withPanel(
      statPanel(
        ids,
        {
          title: 'Active problems',
          description:
            'Problems active now, by kind and severity (node_auditor_problem = 1). The table below lists them.',
          unit: 'short',
          queries: [{ expr: `sum(node_auditor_problem${s()})` }],
          w: 4,
          h: 4,
        },
        { noValue: '0' },
      ),
    )
    .withPanel(
      statPanel(
        ids,
        {
          title: 'inotify watches (highest user)',
          description:
            'Watches of the user holding most, over fs.inotify.max_user_watches. At 100% the kubelet cannot start cAdvisor and the node goes NotReady.',
          unit: 'percentunit',
          queries: [
            {
              expr: ratio('node_auditor_inotify_watches', 'node_auditor_inotify_max_user_watches'),
            },
          ],
          w: 4,
          h: 4,
        },
        { steps: INOTIFY_STEPS() },
      ),
    )
    .withPanel(
      statPanel(ids, {
        title: 'Zombie processes',
        description:
          'Exited processes not yet reaped (node_auditor_zombie_processes, all pods and the host).',
        unit: 'short',
        queries: [{ expr: `sum(node_auditor_zombie_processes${s()})` }],
        w: 4,
        h: 4,
      }),
    )
    .withPanel(
      statPanel(ids, {
        title: 'Broken pod sandboxes',
        description:
          'Pod sandboxes whose pause process is not PID 1, does not handle SIGCHLD or SIGTERM, does not reap, or is a zombie (node_auditor_pod_sandboxes, states other than ok).',
        unit: 'short',
        queries: [{ expr: `sum(node_auditor_pod_sandboxes${s('state!="ok"')})` }],
        w: 4,
        h: 4,
      }),
    )
    .withPanel(
      statPanel(
        ids,
        {
          title: 'Non-compliant sysctls',
          description:
            'Profiled sysctls whose runtime value does not meet the node profile (node_auditor_sysctl_compliant = 0).',
          unit: 'short',
          queries: [{ expr: `sum(1 - node_auditor_sysctl_compliant${s()})` }],
          w: 4,
          h: 4,
        },
        { steps: thresholds([null, GREEN], [1, ORANGE]) },
      ),
    )

    .withRow(row(ids, 'Problems and NotReady causes'))
    .withPanel(
      tablePanel(
        ids,
        {
          title: 'Active problems',
          description:
            'Every active problem on this node (node_auditor_problem = 1). The agent’s /api/v1/findings, its log and the Node’s Events carry the message, the evidence and the fix.',
          unit: 'short',
          queries: [
            {
              expr: `max by (node, check, problem, severity) (node_auditor_problem${s()}) == 1`,
            },
          ],
          w: 12,
          h: 9,
        },
        { columns: [{ name: 'Active', unit: 'bool_yes_no' }] },
      ),
    )
    .withPanel(
      stateTimelinePanel(
        ids,
        {
          title: 'NotReady causes',
          description:
            'Each root cause over time (node_auditor_notready_cause): red while it is attributed to the node being NotReady, or in effect and about to make it NotReady.',
          unit: 'none',
          queries: [
            {
              expr: `max by (cause) (node_auditor_notready_cause${s()})`,
              legend: '{{cause}}',
            },
          ],
          w: 12,
          h: 9,
        },
        [valueMap({ '1': ['in effect', RED], '0': ['no', GREEN] })],
      ),
    )

    .withRow(row(ids, 'Sysctls'))
    .withPanel(
      tablePanel(
        ids,
        {
          title: 'Sysctl compliance',
          description:
            'Each sysctl of the node profile: whether its runtime value meets the profile (node_auditor_sysctl_compliant), whether it still will after a reboot or sysctl --system (node_auditor_sysctl_persisted), and its value (node_auditor_sysctl, integer keys only). Not persisted means a fix by hand that the next reboot undoes: put it in /etc/sysctl.d/.',
          unit: 'none',
          queries: [
            { expr: `min by (key) (node_auditor_sysctl_compliant${s()})` },
            { expr: `min by (key) (node_auditor_sysctl_persisted${s()})` },
            { expr: `max by (key) (node_auditor_sysctl${s()})` },
          ],
          w: 24,
          h: 9,
        },
        {
          columns: [
            { name: 'Meets the profile', unit: 'bool_yes_no' },
            { name: 'Persisted', unit: 'bool_yes_no' },
            { name: 'Value', unit: 'none' },
          ],
        },
      ),
    )

    .withRow(row(ids, 'inotify'))
    .withPanel(
      timeSeriesPanel(ids, {
        title: 'inotify watches by user vs limit',
        description:
          'Watches held by each user’s processes (node_auditor_inotify_watches, by effective UID: the kernel charges fs.inotify.max_user_watches per user) against the limit. Most containers run as root, so uid 0 usually carries the kubelet and every root pod together.',
        unit: 'short',
        queries: [
          { expr: `max by (uid) (node_auditor_inotify_watches${s()})`, legend: 'uid {{uid}}' },
          {
            expr: `max(node_auditor_inotify_max_user_watches${s()})`,
            legend: 'limit (fs.inotify.max_user_watches)',
          },
        ],
        w: 12,
        h: 8,
      }),
    )
    .withPanel(
      timeSeriesPanel(ids, {
        title: 'inotify instances by user vs limit',
        description:
          'inotify instances held by each user’s processes (node_auditor_inotify_instances) against fs.inotify.max_user_instances.',
        unit: 'short',
        queries: [
          {
            expr: `max by (uid) (node_auditor_inotify_instances${s()})`,
            legend: 'uid {{uid}}',
          },
          {
            expr: `max(node_auditor_inotify_max_user_instances${s()})`,
            legend: 'limit (fs.inotify.max_user_instances)',
          },
        ],
        w: 12,
        h: 8,
      }),
    )
    .withPanel(
      tablePanel(
        ids,
        {
          title: 'Top inotify consumers',
          description:
            'The processes holding most watches (node_auditor_inotify_top_consumer_watches, the checks.inotify.topConsumers biggest), by pod, container and command; host processes have no pod. A file watcher (an IDE server, a dev-mode app, a log shipper) watching a big tree is the usual culprit.',
          unit: 'short',
          queries: [
            {
              expr: `topk(10, max by (namespace, pod, container, comm) (node_auditor_inotify_top_consumer_watches${s()}))`,
            },
          ],
          w: 24,
          h: 8,
        },
        { columns: [{ name: 'Watches', unit: 'short' }], sortBy: 'Watches' },
      ),
    )

    .withRow(row(ids, 'Processes and pods'))
    .withPanel(
      timeSeriesPanel(ids, {
        title: 'Zombie processes by pod',
        description:
          'Zombies by the pod and container of their parent (node_auditor_zombie_processes; host processes have no pod). The parent must reap them: a container whose PID 1 is not an init (use tini, or shareProcessNamespace with a reaping pause).',
        unit: 'short',
        queries: [
          {
            expr: `sum by (namespace, pod, container) (node_auditor_zombie_processes${s()})`,
            legend: '{{namespace}}/{{pod}} {{container}}',
          },
        ],
        w: 12,
        h: 8,
      }),
    )
    .withPanel(
      timeSeriesPanel(ids, {
        title: 'Pod sandboxes by state',
        description:
          'Pod sandboxes by the state of their pause process (node_auditor_pod_sandboxes): ok, not_pid1, no_sigchld_handler, not_reaping, no_term_handler, zombie. Anything but ok: that pod’s zombies are not reaped or it does not stop cleanly; an old or custom pause image is the usual cause.',
        unit: 'short',
        queries: [
          { expr: `sum by (state) (node_auditor_pod_sandboxes${s()})`, legend: '{{state}}' },
        ],
        w: 12,
        h: 8,
      }),
    )

    .withRow(row(ids, 'Security'))
    .withPanel(
      tablePanel(
        ids,
        {
          title: 'Anonymous authentication',
          description:
            'Whether each target authenticates a request without credentials as system:anonymous (node_auditor_anonymous_auth_enabled): kubelet (10250), kubelet-readonly (10255, no authentication at all) and the API server. A target that cannot be reached has no row.',
          unit: 'bool_yes_no',
          queries: [{ expr: `max by (target) (node_auditor_anonymous_auth_enabled${s()})` }],
          w: 8,
          h: 8,
        },
        { columns: [{ name: 'Anonymous on', unit: 'bool_yes_no' }] },
      ),
    )
    .withPanel(
      tablePanel(
        ids,
        {
          title: 'Anonymous access by path',
          description:
            'Whether a request without credentials to each probed path is answered 200 (node_auditor_anonymous_access_allowed). Yes on the kubelet means anyone reaching the node can list pods or exec into them.',
          unit: 'bool_yes_no',
          queries: [
            { expr: `max by (target, path) (node_auditor_anonymous_access_allowed${s()})` },
          ],
          w: 8,
          h: 8,
        },
        { columns: [{ name: 'Allowed', unit: 'bool_yes_no' }] },
      ),
    )
    .withPanel(
      tablePanel(
        ids,
        {
          title: 'CVEs',
          description:
            'CVEs the node’s kubelet (or, on the leader, the API server) is affected by (node_auditor_vulnerable = 1). The finding names the fixed versions.',
          unit: 'short',
          queries: [{ expr: `max by (component, cve) (node_auditor_vulnerable${s()}) == 1` }],
          w: 8,
          h: 8,
        },
        { columns: [{ name: 'Affected', unit: 'bool_yes_no' }] },
      ),
    )

    .withRow(row(ids, 'Remediation'))
    .withPanel(
      timeSeriesPanel(
        ids,
        {
          title: 'Remediation decisions',
          description:
            'Remediation decisions on this node per interval, by action and outcome (node_auditor_remediation_actions_total). GET /api/v1/remediations on the agent, or the Node’s Events, give the reason and the before/after values.',
          unit: 'short',
          queries: [
            {
              expr: `sum by (action, outcome) (increase(node_auditor_remediation_actions_total${s()}[$__rate_interval]))`,
              legend: '{{action}} {{outcome}}',
            },
          ],
          w: 24,
          h: 8,
        },
        { bars: true },
      ),
    )

    .withRow(row(ids, 'Checks and the agent'))
    .withPanel(
      timeSeriesPanel(ids, {
        title: 'Check duration (p50, p99)',
        description:
          'How long runs of each check take (node_auditor_check_duration_seconds), including failed and timed-out runs. A check near its timeout fails; a slow /proc-based check on a node with many processes is normal up to a few hundred ms. No line: the check did not run in the interval.',
        unit: 's',
        queries: [
          {
            expr: `histogram_quantile(0.99, sum by (check, le) (rate(node_auditor_check_duration_seconds_bucket${s()}[$__rate_interval])))`,
            legend: '{{check}} p99',
          },
          {
            expr: `histogram_quantile(0.5, sum by (check, le) (rate(node_auditor_check_duration_seconds_bucket${s()}[$__rate_interval])))`,
            legend: '{{check}} p50',
          },
        ],
        w: 12,
        h: 8,
      }),
    )
    .withPanel(
      checkErrorsPanel(
        ids,
        'Check runs that failed or timed out per interval (node_auditor_check_runs_total{result="error"}), and errors that escaped every handler (node_auditor_internal_errors_total: a bug, please report it). The CheckFailed finding and the log say why.',
      ),
    )
    .withPanel(
      timeSeriesPanel(ids, {
        title: 'Log lines read',
        description:
          'Lines (journal entries, kernel records) the logs check reads per second, by source (node_auditor_log_lines_total). A source at zero for long on a busy node: it is not followed (see node_auditor_log_source_state) or the node logs elsewhere.',
        unit: 'cps',
        queries: [
          {
            expr: `sum by (source) (rate(node_auditor_log_lines_total${s()}[$__rate_interval]))`,
            legend: '{{source}}',
          },
        ],
        w: 8,
        h: 8,
      }),
    )
    .withPanel(
      timeSeriesPanel(ids, {
        title: 'Log rule matches',
        description:
          'Lines a log rule matched per second, by rule (node_auditor_log_matches_total): the seed’s "Failed to start cAdvisor ... no space left on device", PLEG, runtime and certificate errors. A burst is an incident: the logs check’s finding names its cause.',
        unit: 'cps',
        queries: [
          {
            expr: `sum by (rule) (rate(node_auditor_log_matches_total${s()}[$__rate_interval]))`,
            legend: '{{rule}}',
          },
        ],
        w: 8,
        h: 8,
      }),
    )
    .withPanel(
      timeSeriesPanel(ids, {
        title: '/proc scan duration',
        description:
          'Wall time of the last pass over /proc (every process and its file descriptors) the pause, zombies and inotify checks share (node_auditor_process_scan_duration_seconds). It grows with processes and open files; the agent yields while scanning, so a long scan delays checks, not the node.',
        unit: 's',
        queries: [
          {
            expr: `max(node_auditor_process_scan_duration_seconds${s()})`,
            legend: 'scan',
          },
        ],
        w: 8,
        h: 8,
      }),
    )
    .withPanel(
      timeSeriesPanel(ids, {
        title: 'Agent memory',
        description:
          'Resident memory of the agent (process_resident_memory_bytes) and the V8 heap in use (nodejs_heap_size_used_bytes). Compare with the DaemonSet’s memory limit.',
        unit: 'bytes',
        queries: [
          { expr: `max(process_resident_memory_bytes${s()})`, legend: 'resident' },
          { expr: `max(nodejs_heap_size_used_bytes${s()})`, legend: 'V8 heap used' },
        ],
        w: 12,
        h: 8,
      }),
    )
    .withPanel(
      timeSeriesPanel(ids, {
        title: 'Agent CPU',
        description:
          'CPU time the agent uses per second (process_cpu_seconds_total): 1 is one core. Compare with the DaemonSet’s CPU limit: throttling delays checks.',
        unit: 'percentunit',
        queries: [
          {
            expr: `sum(rate(process_cpu_seconds_total${s()}[$__rate_interval]))`,
            legend: 'cpu',
          },
        ],
        w: 12,
        h: 8,
      }),
    )
    .build();
}

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

/** The committed files and what they hold. */
export const DASHBOARDS: Record<string, () => dashboard.Dashboard> = {
  'node-auditor-fleet.json': fleetDashboard,
  'node-auditor-node.json': nodeDashboard,
};

/**
 * The JSON text of each dashboard file, formatted as the repository's prettier would (the files
 * are committed and `npm run lint` checks them), so a rebuild of unchanged code changes nothing.
 */
export async function renderDashboards(): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const [name, build] of Object.entries(DASHBOARDS)) {
    const file = path.join(DASHBOARD_DIR, name);
    const config = (await prettier.resolveConfig(file)) ?? {};
    out.set(name, await prettier.format(JSON.stringify(build()), { ...config, filepath: file }));
  }
  return out;
}

/** Write every dashboard file; returns the paths written. */
export async function writeDashboards(dir = DASHBOARD_DIR): Promise<string[]> {
  await fs.mkdir(dir, { recursive: true });
  const written: string[] = [];
  for (const [name, text] of await renderDashboards()) {
    const file = path.join(dir, name);
    await fs.writeFile(file, text);
    written.push(file);
  }
  return written;
}

// Only when run as a script: the test imports this module to compare the committed files.
if (import.meta.main) {
  for (const file of await writeDashboards()) console.log(`wrote ${path.relative(REPO, file)}`);
}

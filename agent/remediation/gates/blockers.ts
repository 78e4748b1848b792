// Blockers, the gates that say "not on this node" or "not while this is going on":
// - control-plane nodes are skipped unless allowed: restarting the kubelet of a control-plane
//   node restarts its static pods (apiserver, etcd), which can take the whole cluster's API
//   down with it;
// - a configured Prometheus alert that is firing blocks every action, as kured does with
//   --prometheus-url: an operator's "the cluster is in trouble" alert wins over automation.
//   Only `firing` blocks; `pending` (its `for:` not yet elapsed) does not.
// Also the gates' shared vocabulary (GateDecision, cannotDecide): every gate answers with one of
// the two shapes, and any error while deciding is a denial whose reason says why.
import http from 'node:http';
import type { IncomingMessage } from 'node:http';
import { describeError } from '../../errors.ts';
import type { KubeApi } from '../../kubernetes/kubeApi.ts';

/** What every gate answers. `reason` is one plain sentence an operator reads in an Event. */
export type GateDecision = { allowed: true } | Denied;
export interface Denied {
  allowed: false;
  reason: string;
  /**
   * Only the cooldown after the action's own dry run: in enforce mode the fix would have cleared
   * the finding by now, so there is nothing new to report (the engine does not report it).
   */
  dryRunStands?: true;
}

export const ALLOWED: GateDecision = Object.freeze({ allowed: true });

/** A gate that failed while deciding denies: "any error while deciding means do nothing". */
export function cannotDecide(error: unknown): Denied {
  return { allowed: false, reason: `cannot decide: ${describeError(error)}` };
}

// ---------------------------------------------------------------------------------------------
// Control-plane nodes
// ---------------------------------------------------------------------------------------------

/** `master` is the pre-1.24 name; kubeadm set both for a while, older clusters only that one. */
export const CONTROL_PLANE_LABELS = [
  'node-role.kubernetes.io/control-plane',
  'node-role.kubernetes.io/master',
] as const;

/** The decision from the own Node's labels (the engine may already have them from its watch). */
export function controlPlaneDecision(
  nodeName: string,
  labels: Readonly<Record<string, string>> | undefined,
  allowControlPlane: boolean,
): GateDecision {
  if (allowControlPlane) return ALLOWED;
  // the labels are how we tell; without them we cannot tell a worker from a control plane
  if (labels === undefined)
    return { allowed: false, reason: `cannot decide: the labels of Node ${nodeName} are unknown` };
  const label = CONTROL_PLANE_LABELS.find((l) => l in labels);
  if (label === undefined) return ALLOWED;
  return {
    allowed: false,
    reason: `${nodeName} is a control-plane node (label ${label}) and remediation of control-plane nodes is not allowed`,
  };
}

interface NodeList {
  items?: { metadata?: { name?: string; labels?: Record<string, string> } }[];
}

/**
 * The own Node's labels, read afresh. A list with a field selector, not a get: the agent's
 * ClusterRole has list and watch on nodes (for its Node watch), not get.
 */
export async function readNodeLabels(
  api: KubeApi,
  nodeName: string,
): Promise<Record<string, string>> {
  const list = await api.request<NodeList>({
    verb: 'list',
    path: '/api/v1/nodes',
    query: { fieldSelector: `metadata.name=${nodeName}` },
  });
  const node = list.items?.find((n) => n.metadata?.name === nodeName);
  if (node === undefined) throw new Error(`Node ${nodeName} is not in the API`);
  return node.metadata?.labels ?? {};
}

export interface ControlPlaneGateOptions {
  api: KubeApi;
  nodeName: string;
  allowControlPlane: boolean;
}

/** The control-plane gate, reading the Node's labels from the API; never throws. */
export async function checkControlPlane(options: ControlPlaneGateOptions): Promise<GateDecision> {
  if (options.allowControlPlane) return ALLOWED; // no need to ask the API
  try {
    const labels = await readNodeLabels(options.api, options.nodeName);
    return controlPlaneDecision(options.nodeName, labels, false);
  } catch (error) {
    return cannotDecide(error);
  }
}

// ---------------------------------------------------------------------------------------------
// Prometheus alerts
// ---------------------------------------------------------------------------------------------

export interface AlertSelector {
  /** The alertname. */
  name: string;
  /** Further labels the alert must carry, with exactly these values (e.g. severity: critical). */
  labels?: Readonly<Record<string, string>>;
}

export interface PrometheusBlockerOptions {
  /** Prometheus' base URL (http or https), with any path prefix: http://prometheus:9090/prom. */
  url: string;
  /** Alerts that block when firing; at least one. */
  alerts: readonly AlertSelector[];
  /** For the whole request, connect to last byte. Default 5000. */
  timeoutMs?: number;
  /** A larger answer is refused (cannot decide). Default 8 MiB. */
  maxBodyBytes?: number;
}

interface PrometheusAlert {
  labels?: Record<string, string>;
  state?: string;
}

interface AlertsResponse {
  status?: string;
  error?: string;
  data?: { alerts?: PrometheusAlert[] };
}

/** At most this many alerts are named in a reason; an Event message is short. */
const NAMED_ALERTS = 3;

/** The Prometheus blocker: GET <url>/api/v1/alerts; never throws. */
export async function checkPrometheusAlerts(
  options: PrometheusBlockerOptions,
): Promise<GateDecision> {
  try {
    const url = alertsUrl(options.url);
    if (options.alerts.length === 0)
      throw new Error('the Prometheus blocker has a URL but no alert names');
    const body = await httpGetText(url, {
      timeoutMs: options.timeoutMs ?? 5000,
      maxBodyBytes: options.maxBodyBytes ?? 8 * 1024 * 1024,
    });
    let parsed: AlertsResponse;
    try {
      parsed = JSON.parse(body) as AlertsResponse;
    } catch {
      throw new Error(`${url.origin}${url.pathname} did not answer with JSON`);
    }
    if (parsed.status !== 'success' || !Array.isArray(parsed.data?.alerts))
      throw new Error(
        `${url.origin}${url.pathname} answered status ${JSON.stringify(parsed.status)}${parsed.error === undefined ? '' : `: ${parsed.error}`}`,
      );
    const blocking = parsed.data.alerts.filter(
      (alert) => alert.state === 'firing' && options.alerts.some((s) => selects(s, alert)),
    );
    if (blocking.length === 0) return ALLOWED;
    const names = [...new Set(blocking.map((a) => a.labels?.alertname ?? ''))];
    const shown = names
      .slice(0, NAMED_ALERTS)
      .map((n) => JSON.stringify(n))
      .join(', ');
    const more = names.length > NAMED_ALERTS ? ` and ${names.length - NAMED_ALERTS} more` : '';
    return {
      allowed: false,
      reason: `Prometheus alert${names.length > 1 ? 's' : ''} ${shown}${more} ${names.length > 1 ? 'are' : 'is'} firing (${url.origin})`,
    };
  } catch (error) {
    return cannotDecide(error);
  }
}

function selects(selector: AlertSelector, alert: PrometheusAlert): boolean {
  const labels = alert.labels ?? {};
  if (labels.alertname !== selector.name) return false;
  return Object.entries(selector.labels ?? {}).every(([k, v]) => labels[k] === v);
}

/** <base>/api/v1/alerts, keeping a path prefix; refuses URLs that would send credentials. */
export function alertsUrl(base: string): URL {
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    throw new Error(`the Prometheus URL ${JSON.stringify(base)} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new Error(`the Prometheus URL must be http or https, not ${url.protocol}`);
  // node:http turns user:password@ into an Authorization header; we send no credentials
  if (url.username !== '' || url.password !== '')
    throw new Error('the Prometheus URL must not contain a user name or password');
  const prefix = url.pathname.endsWith('/') ? url.pathname : `${url.pathname}/`;
  return new URL(`${prefix}api/v1/alerts`, url.origin);
}

/** One GET with a deadline for the whole exchange and a body limit; 200 only. */
async function httpGetText(
  url: URL,
  limits: { timeoutMs: number; maxBodyBytes: number },
): Promise<string> {
  // https only when asked for: node:https loads TLS, which a plain-http setup need not pay for
  const transport = url.protocol === 'https:' ? (await import('node:https')).default : http;
  const signal = AbortSignal.timeout(limits.timeoutMs);
  const where = `${url.origin}${url.pathname}`;
  try {
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = transport.request(
        url,
        { method: 'GET', headers: { Accept: 'application/json' }, signal, agent: false },
        resolve,
      );
      req.on('error', reject);
      req.end();
    });
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of res as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > limits.maxBodyBytes) {
        res.destroy();
        throw new Error(`answer larger than ${limits.maxBodyBytes} bytes`);
      }
      chunks.push(chunk);
    }
    // redirects are not followed: a 3xx is as unexpected as a 500
    if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode ?? 0}`);
    return Buffer.concat(chunks).toString('utf8');
  } catch (error) {
    const why = signal.aborted ? `no answer within ${limits.timeoutMs}ms` : describeError(error);
    throw new Error(`cannot read alerts from ${where}: ${why}`, { cause: error });
  }
}

// `kubelet-anonymous`: what anyone on the network gets from this node's kubelet without
// credentials. GET /pods, /healthz, /metrics, /stats/summary and /configz on the kubelet's API
// (port 10250), and /pods on its read-only port (10255), with no credential of any kind.
// The answers mean (kubeletAnswer.ts):
//   401 everywhere             anonymous authentication off: fine.
//   403 for system:anonymous   anonymous authentication on, authorization denies: a warning. A 403
//                              is not access (kube-hunter calls it an exposure; it is not one).
//   200                        anonymous requests get through: critical (pod specs with their env,
//                              the kubelet's config; with that authorization, /exec and /run).
//   read-only port answers     no authentication exists there at all: critical.
// A kubelet that cannot be reached (a laptop, a host without kubelet) is only an info finding:
// nothing alarming, and no metric (unknown is not 0).
//
// /exec and /run are never probed: a 200 there would run a command in someone's container.
import * as v from 'valibot';
import { duration } from '../../config/configSchema.ts';
import { durationMs } from '../../config/duration.ts';
import type { FindingDraft } from '../../findings/finding.ts';
import { anonymousGet, connectionRefused, probeUrl } from '../../kubernetes/anonymousProbe.ts';
import { describePermission } from '../../parsers/kubeletForbidden.ts';
import type { MetricSample } from '../../sinks/metrics/catalogue.ts';
import type { Check } from '../check.ts';
import { classifyAnswer, KUBELET_PATHS, MAX_BODY_BYTES } from './kubeletAnswer.ts';
import type { KubeletPath, Verdict } from './kubeletAnswer.ts';

const NODE_IP_PLACEHOLDER = /\$\{NODE_IP\}|\$NODE_IP\b/g;
const FALLBACK_NODE_IP = '127.0.0.1';

/** The URL with $NODE_IP (or ${NODE_IP}) replaced by an address (IPv6 in brackets). */
export function expandTarget(template: string, nodeIp: string): string {
  const host = nodeIp.includes(':') && !nodeIp.startsWith('[') ? `[${nodeIp}]` : nodeIp;
  return template.replace(NODE_IP_PLACEHOLDER, host);
}

function httpUrl(text: string): URL | undefined {
  try {
    const url = new URL(text);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url : undefined;
  } catch {
    return undefined;
  }
}

const targetUrl = v.pipe(
  v.string(),
  v.check(
    (text) => httpUrl(expandTarget(text, FALLBACK_NODE_IP)) !== undefined,
    'must be an http:// or https:// URL ($NODE_IP is replaced by the node IP)',
  ),
);

const options = {
  /** The kubelet's API; $NODE_IP is the NODE_IP environment variable (downward API status.hostIP). */
  url: v.optional(targetUrl, 'https://$NODE_IP:10250'),
  /** The kubelet's read-only port (--read-only-port, readOnlyPort). */
  readOnlyUrl: v.optional(targetUrl, 'http://$NODE_IP:10255'),
  /** How long one request may take, connection to the last byte read. */
  requestTimeout: v.optional(duration(100), '5s'),
};

const TARGET_KUBELET = 'kubelet';
const TARGET_READ_ONLY = 'kubelet-readonly';
const READ_ONLY_PATH = '/pods';

interface Probed {
  path: KubeletPath;
  url: string;
  verdict: Verdict;
}

const DISABLE_ANONYMOUS = [
  'authentication:',
  '  anonymous:',
  '    enabled: false',
  '  webhook:',
  '    enabled: true    # ServiceAccount tokens (metrics-server, Prometheus) keep working',
];

export const kubeletAnonymousCheck: Check<typeof options> = {
  id: 'kubelet-anonymous',
  title: "kubelet's API without credentials",
  description:
    "Sends unauthenticated requests to the node's kubelet (port 10250 and the read-only port 10255) and reports anonymous authentication and anonymous access.",
  defaults: { enabled: true, interval: '5m', timeout: '30s' },
  options,
  async run({ options, signal }) {
    const timeoutMs = durationMs(options.requestTimeout);
    const envNodeIp = process.env.NODE_IP?.trim();
    const nodeIp = envNodeIp === undefined || envNodeIp === '' ? undefined : envNodeIp;
    const context: string[] = [];
    const expand = (template: string): string => {
      if (nodeIp === undefined && template.search(NODE_IP_PLACEHOLDER) >= 0) {
        const note = `NODE_IP is not set (downward API status.hostIP): probed ${FALLBACK_NODE_IP}`;
        if (!context.includes(note)) context.push(note);
      }
      return expandTarget(template, nodeIp ?? FALLBACK_NODE_IP);
    };
    const kubeletBase = expand(options.url);
    const readOnlyBase = expand(options.readOnlyUrl);

    // Nothing listens on either port: no kubelet on this host (a laptop, a CI runner, a
    // control-plane node without one). Nothing to judge, nothing worth an Event; and found with
    // plain TCP, so such a host never loads the TLS stack for this check.
    const kubeletTarget = httpUrl(kubeletBase);
    const readOnlyTarget = httpUrl(readOnlyBase);
    if (
      kubeletTarget !== undefined &&
      readOnlyTarget !== undefined &&
      (
        await Promise.all([
          connectionRefused(kubeletTarget, timeoutMs),
          connectionRefused(readOnlyTarget, timeoutMs),
        ])
      ).every(Boolean)
    )
      return {
        findings: [],
        skipped: `no kubelet listens at ${hostOf(kubeletBase)} (connection refused)${context.length > 0 ? `; ${context.join('; ')}` : ''}`,
      };

    const probe = async (base: string, path: KubeletPath): Promise<Probed> => {
      const target = httpUrl(base);
      if (target === undefined) {
        const summary = `not an http(s) URL with NODE_IP=${JSON.stringify(nodeIp)} put in`;
        return { path, url: base, verdict: { kind: 'unreachable', code: 'EINVAL', summary } };
      }
      const url = probeUrl(target, path);
      const answer = await anonymousGet(url, {
        timeoutMs,
        maxBodyBytes: MAX_BODY_BYTES,
        // The kubelet's serving certificate is self-signed by default (no serverTLSBootstrap),
        // so it cannot be verified; nothing secret is sent to it, this probe carries no
        // credential at all. Only this probe of the node's own kubelet skips verification.
        rejectUnauthorized: false,
        signal,
      });
      return { path, url: url.href, verdict: classifyAnswer(path, answer) };
    };

    // All at once: the run takes one requestTimeout at most, not six.
    const [readOnly, ...kubelet] = await Promise.all([
      probe(readOnlyBase, READ_ONLY_PATH),
      ...KUBELET_PATHS.map((path) => probe(kubeletBase, path)),
    ]);

    const findings: FindingDraft[] = [];
    const samples: MetricSample[] = [];
    assessKubelet(kubeletBase, kubelet, context, findings, samples);
    assessReadOnly(readOnlyBase, readOnly, context, findings, samples);
    return { findings, samples };
  },
};

function evidenceLine(probed: Probed): string {
  return `GET ${probed.url} -> ${probed.verdict.summary}`;
}

function hostOf(base: string): string {
  return httpUrl(base)?.host ?? base;
}

function assessKubelet(
  base: string,
  probed: Probed[],
  context: string[],
  findings: FindingDraft[],
  samples: MetricSample[],
): void {
  const evidence = [...probed.map(evidenceLine), ...context];
  const where = hostOf(base);
  const unreachable = probed.filter((p) => p.verdict.kind === 'unreachable');
  if (unreachable.length === probed.length) {
    const reasons = [...new Set(unreachable.map((p) => p.verdict.summary))];
    findings.push({
      id: `KubeletUnreachable:${TARGET_KUBELET}`,
      problem: 'KubeletUnreachable',
      severity: 'info',
      title: `no kubelet answers at ${where}: anonymous access not checked`,
      message: `No kubelet answered at ${base} (${reasons.join('; ')}), so whether it accepts anonymous requests is unknown. On a host without a kubelet that is expected; on a node, set checks.kubelet-anonymous.url (and NODE_IP) to the kubelet's address.`,
      evidence: [...unreachable.map(evidenceLine), ...context],
    });
    return;
  }

  const allowed = probed.filter((p) => p.verdict.kind === 'allowed');
  const forbidden = probed.flatMap((p) =>
    p.verdict.kind === 'forbidden' ? [{ path: p.path, forbidden: p.verdict.forbidden }] : [],
  );
  const refused = probed.filter((p) => p.verdict.kind === 'unauthenticated');
  const unclear = probed.filter(
    (p) => p.verdict.kind === 'unexpected' || p.verdict.kind === 'unreachable',
  );

  const anonymousOn = allowed.length > 0 || forbidden.length > 0;
  if (anonymousOn || refused.length > 0) {
    samples.push({
      metric: 'node_auditor_anonymous_auth_enabled',
      labels: { target: TARGET_KUBELET },
      value: anonymousOn ? 1 : 0,
    });
  }
  for (const p of probed) {
    const kind = p.verdict.kind;
    if (kind !== 'allowed' && kind !== 'forbidden' && kind !== 'unauthenticated') continue;
    samples.push({
      metric: 'node_auditor_anonymous_access_allowed',
      labels: { target: TARGET_KUBELET, path: p.path },
      value: kind === 'allowed' ? 1 : 0,
    });
  }

  // /healthz alone answering says only "ok" (a grant of nodes/healthz); every other path is data.
  const exposed = allowed.filter((p) => p.path !== '/healthz').map((p) => p.path);
  if (exposed.length > 0) {
    const paths = allowed.map((p) => p.path);
    const leaks: string[] = [];
    if (paths.includes('/pods')) {
      leaks.push('every pod spec on this node, environment variables included (/pods)');
    }
    if (paths.includes('/configz')) leaks.push("the kubelet's configuration (/configz)");
    if (paths.includes('/metrics') || paths.includes('/stats/summary')) {
      leaks.push('the resource use of every pod and container (/metrics, /stats/summary)');
    }
    // Before v1.32 (and as the fallback since) /pods and /configz are authorized as nodes/proxy,
    // the same permission as /exec and /run.
    const proxyLike = paths.includes('/pods') || paths.includes('/configz');
    findings.push({
      id: 'KubeletAnonymousAccess',
      problem: 'KubeletAnonymousAccess',
      severity: 'critical',
      title: `kubelet answers anonymous requests on ${paths.length} path${paths.length === 1 ? '' : 's'}`,
      message: `The kubelet at ${base} lets requests without credentials through: ${paths.join(', ')} answered 200 as system:anonymous. Anyone who can reach ${where} reads ${leaks.join('; ')}.${
        proxyLike
          ? ' Unless access was granted only by the fine-grained nodes/pods and nodes/configz permissions (v1.32+), it comes from authorization mode AlwaysAllow or a grant of nodes/proxy, which also open /exec and /run: anyone can run commands in every container on this node (those were not probed).'
          : ''
      }`,
      evidence,
      remediation: {
        summary: [
          "In the kubelet's config file (its --config, usually /var/lib/kubelet/config.yaml) set:",
          ...DISABLE_ANONYMOUS,
          'authorization:',
          '  mode: Webhook',
          '(flags: --anonymous-auth=false --authentication-token-webhook --authorization-mode=Webhook),',
          'then "systemctl restart kubelet". Remove any RBAC binding that grants nodes/* to',
          'system:anonymous or system:unauthenticated. Verify: curl -sk https://<node-ip>:10250/pods',
          'answers 401 Unauthorized.',
        ].join('\n'),
        automatic: false,
      },
    });
  } else if (anonymousOn) {
    const checked = forbidden.map((f) => `${f.path}: ${describePermission(f.forbidden)}`);
    const healthOnly =
      allowed.length > 0 ? ' /healthz answers "ok" to them (a grant of nodes/healthz).' : '';
    findings.push({
      id: 'KubeletAnonymousAuthEnabled',
      problem: 'KubeletAnonymousAuthEnabled',
      severity: 'warning',
      title: 'kubelet authenticates anonymous requests; only authorization denies',
      message: `The kubelet at ${base} accepts requests without credentials as system:anonymous (anonymous authentication is on); its authorization refuses them with 403${
        checked.length > 0 ? ` (permission checked: ${checked.join('; ')})` : ''
      }.${healthOnly} A 403 is not access, but one authorization mistake (mode AlwaysAllow, or a binding granting nodes/* to system:anonymous or system:unauthenticated) opens the kubelet API, /exec included. Clients whose credentials the kubelet does not accept are treated as system:anonymous too: a metrics-server logging "403 Forbidden ... user=system:anonymous" sends no credential this kubelet accepts (its ServiceAccount token needs authentication.webhook.enabled: true).`,
      evidence,
      remediation: {
        summary: [
          "In the kubelet's config file (its --config, usually /var/lib/kubelet/config.yaml) set:",
          ...DISABLE_ANONYMOUS,
          '(flags: --anonymous-auth=false --authentication-token-webhook), then "systemctl restart',
          'kubelet". The API server keeps reaching the kubelet with its client certificate',
          '(--kubelet-client-certificate). Verify: curl -sk https://<node-ip>:10250/pods answers',
          '401 Unauthorized.',
        ].join('\n'),
        automatic: false,
      },
    });
  }

  if (unclear.length > 0) {
    findings.push({
      id: `KubeletUnexpectedAnswer:${TARGET_KUBELET}`,
      problem: 'KubeletUnexpectedAnswer',
      severity: 'info',
      title: `kubelet at ${where}: no usable answer on ${unclear.length} path${unclear.length === 1 ? '' : 's'}`,
      message: `${unclear.map((p) => p.path).join(', ')} at ${base} did not answer as a kubelet does (401 Unauthorized, 403 Forbidden for system:anonymous, or 200 with that path's data), so they say nothing about anonymous access. Is ${where} this node's kubelet?`,
      evidence: [...unclear.map(evidenceLine), ...context],
    });
  }
}

function assessReadOnly(
  base: string,
  probed: Probed,
  context: string[],
  findings: FindingDraft[],
  samples: MetricSample[],
): void {
  const { verdict } = probed;
  const where = hostOf(base);
  if (verdict.kind === 'unreachable') {
    // Connection refused: the port is closed (readOnlyPort: 0), the safe state. Anything else
    // (a timeout through a firewall, a TLS server there) leaves it unknown.
    if (verdict.code === 'ECONNREFUSED') {
      samples.push({
        metric: 'node_auditor_anonymous_auth_enabled',
        labels: { target: TARGET_READ_ONLY },
        value: 0,
      });
      return;
    }
    findings.push({
      id: `KubeletUnreachable:${TARGET_READ_ONLY}`,
      problem: 'KubeletUnreachable',
      severity: 'info',
      title: `cannot tell whether the kubelet read-only port ${where} is open`,
      message: `GET ${probed.url} got no HTTP answer (${verdict.summary}) and was not refused either, so whether the kubelet's unauthenticated read-only port is open is unknown.`,
      evidence: [evidenceLine(probed), ...context],
    });
    return;
  }
  // Any HTTP answer at all: the read-only server has no authentication and no authorization.
  samples.push({
    metric: 'node_auditor_anonymous_auth_enabled',
    labels: { target: TARGET_READ_ONLY },
    value: 1,
  });
  const access = verdict.kind === 'allowed' ? 1 : verdict.kind === 'unexpected' ? undefined : 0;
  if (access !== undefined) {
    samples.push({
      metric: 'node_auditor_anonymous_access_allowed',
      labels: { target: TARGET_READ_ONLY, path: READ_ONLY_PATH },
      value: access,
    });
  }
  findings.push({
    id: 'KubeletReadOnlyPortOpen',
    problem: 'KubeletReadOnlyPortOpen',
    severity: 'critical',
    title: `kubelet read-only port ${where} is open: no authentication`,
    message:
      verdict.kind === 'allowed'
        ? `The kubelet's read-only port at ${base} answers anyone: it has no authentication and no authorization. GET /pods returned every pod spec on this node, environment variables included; /metrics and /stats/summary are open the same way.`
        : `Something answers HTTP on the kubelet's read-only port at ${base} (${verdict.summary}). The kubelet's read-only server has no authentication and no authorization; if this is it, everything it serves (/pods, /metrics, /stats) is open to anyone.`,
    evidence: [evidenceLine(probed), ...context],
    remediation: {
      summary: [
        "In the kubelet's config file (its --config, usually /var/lib/kubelet/config.yaml) set:",
        'readOnlyPort: 0',
        '(flag: --read-only-port=0), then "systemctl restart kubelet". Move whatever scrapes',
        ':10255 first (old heapster or metrics-server --kubelet-port=10255, Prometheus jobs) to',
        'port 10250 with a ServiceAccount token. Verify: curl http://<node-ip>:10255/pods is refused.',
      ].join('\n'),
      automatic: false,
    },
  });
}

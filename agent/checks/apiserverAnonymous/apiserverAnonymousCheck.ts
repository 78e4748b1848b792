// `apiserver-anonymous`: what the API server gives a client that presents no credentials.
// With --anonymous-auth=true (the default) such a request is system:anonymous in the group
// system:unauthenticated, and RBAC decides. A fresh cluster lets it read only the health and
// version URLs (ClusterRole system:public-info-viewer): that is expected, not a finding
// (kubescape flags it; it is not a risk). Discovery (/api, /apis) or resource reads answering
// 200 are: they are what CVE-2018-1002105 needed, and the seeds' clusters had them because
// before 1.14 system:unauthenticated was bound to system:basic-user and system:discovery.
// Cluster-wide, so in `run` only the leader probes; in `check` it always does.
import * as fs from '../../host/asyncFs.ts';
import * as v from 'valibot';
import { duration } from '../../config/configSchema.ts';
import { durationMs } from '../../config/duration.ts';
import { fileErrorReason } from '../../errors.ts';
import type { FindingDraft } from '../../findings/finding.ts';
import { anonymousGet, probeUrl, unreachableReason } from '../../kubernetes/anonymousProbe.ts';
import type {
  AnonymousAnswer,
  AnonymousProbeOptions,
  ProbeTls,
} from '../../kubernetes/anonymousProbe.ts';
import type { MetricSample } from '../../sinks/metrics/catalogue.ts';
import type { Check, ClusterService } from '../check.ts';
import { noClusterReason } from '../check.ts';

/** Answering these is what system:public-info-viewer is for (health probes, kubectl version). */
const PUBLIC_PATHS = ['/version', '/healthz', '/livez', '/readyz'] as const;
/** API discovery: the resource map of the cluster. */
export const DISCOVERY_PATHS = ['/api', '/apis'] as const;
/** A resource read: anonymous must never have one. */
const RESOURCE_PATHS = ['/api/v1/namespaces'] as const;
/** The aggregated API the seeds' metrics-server serves (probed when it is registered). */
const METRICS_GROUP = 'metrics.k8s.io';

type PathKind = 'public' | 'discovery' | 'resource';

const options = {
  /** Default (empty): the API server of the kubeconfig or of the pod's ServiceAccount. */
  url: v.optional(
    v.union([v.literal(''), v.pipe(v.string(), v.url('must be a URL'))], 'must be a URL'),
    '',
  ),
  /**
   * A CA bundle (a file in the agent's filesystem) to verify `url` with; without it the
   * cluster's CA is used for the cluster's API server, the system CAs otherwise.
   */
  caFile: v.optional(v.pipe(v.string(), v.minLength(1, 'must not be empty'))),
  requestTimeout: v.optional(duration(100), '5s'),
};

interface Probe {
  path: string;
  /** The URL probed (the path under the target's own path). */
  url: string;
  kind: PathKind;
  answer: AnonymousAnswer;
}

export const apiserverAnonymousCheck: Check<typeof options> = {
  id: 'apiserver-anonymous',
  title: 'API server anonymous access',
  description:
    'Sends requests without credentials to the API server: health and version answering is expected; discovery or resource reads answering is critical.',
  clusterWide: true,
  defaults: { enabled: true, interval: '10m', timeout: '30s' },
  options,
  async run({ options, services, signal }) {
    const cluster = services.cluster;
    if (cluster !== undefined && !cluster.isLeader())
      return { findings: [], skipped: 'not the leader (the leader probes the API server)' };
    const explicit = options.url === '' ? undefined : new URL(options.url);
    const target = explicit ?? cluster?.server.url;
    if (target === undefined)
      return {
        findings: [],
        skipped: `no checks.apiserver-anonymous.url to probe and ${noClusterReason(services)}`,
      };
    const tls = await tlsFor(target, explicit !== undefined, options.caFile, cluster);
    const probeOptions: AnonymousProbeOptions = {
      timeoutMs: durationMs(options.requestTimeout),
      maxBodyBytes: 16 * 1024,
      signal,
      ...tls,
    };
    const probe = async (path: string, kind: PathKind): Promise<Probe> => {
      const url = probeUrl(target, path);
      return { path, url: url.href, kind, answer: await anonymousGet(url, probeOptions) };
    };
    const probes = await Promise.all([
      ...PUBLIC_PATHS.map((p) => probe(p, 'public')),
      ...DISCOVERY_PATHS.map((p) => probe(p, 'discovery')),
      ...RESOURCE_PATHS.map((p) => probe(p, 'resource')),
    ]);
    const aggregated = await aggregatedPath(cluster, probes, signal);
    if (aggregated !== undefined) probes.push(await probe(aggregated, 'resource'));
    return judge(target, probes);
  },
};

async function tlsFor(
  target: URL,
  explicit: boolean,
  caFile: string | undefined,
  cluster: ClusterService | undefined,
): Promise<ProbeTls> {
  // no credential is sent, but a man in the middle could still fake "401": always verify
  if (caFile !== undefined) {
    try {
      return { ca: await fs.readFile(caFile, 'utf8') };
    } catch (error) {
      throw new Error(`checks.apiserver-anonymous.caFile ${caFile}: ${fileErrorReason(error)}`, {
        cause: error,
      });
    }
  }
  const server = cluster?.server;
  if (server !== undefined && (!explicit || server.url.origin === target.origin)) {
    // as the kubeconfig says (insecure-skip-tls-verify): the agent trusts it that far anyway
    return server;
  }
  return {};
}

/**
 * /apis/metrics.k8s.io/<version>/nodes when that group is registered: from the agent's own
 * (authenticated) discovery, else from what /apis told anonymous.
 */
async function aggregatedPath(
  cluster: ClusterService | undefined,
  probes: Probe[],
  signal: AbortSignal,
): Promise<string | undefined> {
  let groups: unknown;
  try {
    groups = cluster === undefined ? undefined : await cluster.get('/apis', signal);
  } catch {
    // discovery failing is not this check's finding; fall back to what anonymous saw
  }
  if (groups === undefined) {
    const apis = probes.find((p) => p.path === '/apis')?.answer;
    if (apis?.kind !== 'answered' || apis.status !== 200 || apis.truncated) return undefined;
    try {
      groups = JSON.parse(apis.body);
    } catch {
      return undefined;
    }
  }
  const list = (groups as { groups?: unknown }).groups;
  if (!Array.isArray(list)) return undefined;
  const group = (list as { name?: unknown; preferredVersion?: { version?: unknown } }[]).find(
    (g) => g.name === METRICS_GROUP,
  );
  const version = group?.preferredVersion?.version;
  return typeof version === 'string' && /^v[0-9a-z]+$/.test(version)
    ? `/apis/${METRICS_GROUP}/${version}/nodes`
    : undefined;
}

type Answered = Probe & { answer: Extract<AnonymousAnswer, { kind: 'answered' }> };

/** What the API server itself answers 200 on a path (as recorded, fixtures anonymous-*-200). */
function expectedDocument(p: Probe): string {
  if (p.path === '/version') return 'version JSON (gitVersion)';
  if (p.kind === 'public') return '"ok"';
  if (p.path === '/api') return 'an APIVersions';
  if (p.path === '/apis') return 'an APIGroupList';
  return 'a *List';
}

/**
 * Whether a 200 is the API server's document for that path, not a proxy's or load balancer's
 * page: JSON of the expected kind (the API server writes "kind" first, so a body cut at the
 * size limit still shows it), the version object, or the health paths' "ok".
 */
function isApiDocument(p: Answered): boolean {
  const { body, truncated, contentType } = p.answer;
  if (p.kind === 'public' && p.path !== '/version') return !truncated && body.trim() === 'ok';
  if (!/^application\/json\b/i.test(contentType)) return false;
  if (p.path === '/version') {
    try {
      const v = JSON.parse(body) as { gitVersion?: unknown };
      return typeof v.gitVersion === 'string';
    } catch {
      return false;
    }
  }
  const kind = /^\s*\{\s*"kind"\s*:\s*"([A-Za-z0-9]+)"/.exec(body)?.[1];
  if (kind === undefined) return false;
  if (p.path === '/api') return kind === 'APIVersions';
  if (p.path === '/apis') return kind === 'APIGroupList';
  return kind.endsWith('List');
}

export function judge(
  target: URL,
  probes: Probe[],
): { findings: FindingDraft[]; samples: MetricSample[] } {
  // Only 401, 403 and 200 say something about anonymous access: an API server authenticates
  // and authorizes before anything else, so a 404 or 502 is a proxy's or another server's.
  // So is a 200 that is not the API server's document for that path (an HTML page a proxy or
  // load balancer serves on every path): it says nothing either way, and is reported as such.
  const statusAnswered = probes.filter(
    (p): p is Answered => p.answer.kind === 'answered' && [200, 401, 403].includes(p.answer.status),
  );
  const unexpected = statusAnswered.filter((p) => p.answer.status === 200 && !isApiDocument(p));
  const answered = statusAnswered.filter((p) => !unexpected.includes(p));
  const where = target.origin;
  if (answered.length === 0) {
    const first = probes[0];
    const why =
      first === undefined
        ? 'no answer'
        : first.answer.kind === 'unreachable'
          ? unreachableReason(first.answer)
          : unexpected.includes(first as Answered)
            ? `answered 200 with ${unexpectedWhat(first as Answered)}`
            : `answered ${first.answer.status}, as no API server does`;
    return {
      findings: [
        {
          id: 'ApiServerUnprobed',
          problem: 'ApiServerUnprobed',
          severity: 'info',
          title: `cannot probe the API server at ${where}`,
          message: `No request without credentials got an API server's answer at ${target.href} (${why}), so whether it lets anonymous clients in is unknown.`,
          evidence: probes.map((p) => `GET ${p.url} without credentials: ${describe(p)}`),
        },
      ],
      samples: [],
    };
  }
  // 401 is "who are you?": anonymous authentication is off. Anything else means the request
  // was authenticated as system:anonymous and RBAC answered (403 refused, 200 allowed).
  const anonymousOn = answered.some((p) => p.answer.status !== 401);
  const allowed = answered.filter((p) => p.answer.status === 200);
  const samples: MetricSample[] = [
    {
      metric: 'node_auditor_anonymous_auth_enabled',
      labels: { target: 'apiserver' },
      value: anonymousOn ? 1 : 0,
    },
    ...answered.map((p) => ({
      metric: 'node_auditor_anonymous_access_allowed' as const,
      labels: { target: 'apiserver', path: p.path },
      value: p.answer.status === 200 ? 1 : 0,
    })),
  ];
  const evidence = probes.map((p) => `GET ${p.url} without credentials: ${describe(p)}`);
  const findings: FindingDraft[] = [];
  if (unexpected.length > 0) {
    const paths = unexpected.map((p) => p.path).join(', ');
    findings.push({
      id: 'ApiServerUnprobed',
      problem: 'ApiServerUnprobed',
      severity: 'info',
      title: `cannot judge ${paths} on the API server at ${where}`,
      message: `${paths} answered 200 at ${target.href} with something the API server does not send (${unexpected.map((p) => `${p.path}: ${unexpectedWhat(p)}`).join('; ')}): a proxy or load balancer in front of it, or another server, answered. Whether anonymous clients may read ${unexpected.length === 1 ? 'that path' : 'those paths'} is unknown; point checks.apiserver-anonymous.url at the API server itself.`,
      evidence,
    });
  }
  const discovery = allowed.filter((p) => p.kind === 'discovery');
  const resources = allowed.filter((p) => p.kind === 'resource');
  const fix =
    'Find which binding grants it: `node-auditor check --only rbac` names it with the kubectl steps to remove system:unauthenticated / system:anonymous from it. ' +
    'Or turn anonymous requests off altogether with --anonymous-auth=false on every kube-apiserver (health probes then need credentials or the --livez/--readyz ports of your load balancer).';
  if (resources.length > 0) {
    findings.push({
      id: 'ApiServerAnonymousAccess',
      problem: 'ApiServerAnonymousAccess',
      severity: 'critical',
      title: `API server serves ${resources.map((p) => p.path).join(', ')} to anyone`,
      message: `Requests without any credentials read cluster resources from ${where} (${resources.map((p) => p.path).join(', ')} answered 200): anyone who can reach the API server reads what RBAC grants system:anonymous / system:unauthenticated.`,
      evidence,
      remediation: { summary: fix, automatic: false },
    });
  }
  if (discovery.length > 0) {
    findings.push({
      id: 'ApiServerAnonymousDiscovery',
      problem: 'ApiServerAnonymousDiscovery',
      severity: 'critical',
      title: `API server discovery open to anyone (${discovery.map((p) => p.path).join(', ')})`,
      message: `Requests without credentials get the API discovery documents of ${where} (${discovery.map((p) => p.path).join(', ')} answered 200): the cluster's resource map, including aggregated APIs, is public. This is the access CVE-2018-1002105 used on unpatched API servers (before 1.10.11, 1.11.5, 1.12.3); a fresh cluster since 1.14 answers 403.`,
      evidence,
      remediation: { summary: fix, automatic: false },
    });
  }
  return { findings, samples };
}

/** A 200 that is not the API server's: its content type and what was expected instead. */
function unexpectedWhat(p: Answered): string {
  const type = p.answer.contentType.split(';')[0]?.trim() || 'no content type';
  return `${type}, not ${expectedDocument(p)}`;
}

function describe(p: Probe): string {
  const a = p.answer;
  if (a.kind === 'unreachable') return unreachableReason(a);
  if (a.status === 200 && !isApiDocument(p as Answered))
    return `200 but not the API server's answer (${unexpectedWhat(p as Answered)})`;
  if (a.status === 200)
    return `200 (allowed${p.kind === 'public' ? ', expected: system:public-info-viewer' : ''})`;
  if (a.status === 401) return '401 (anonymous authentication off)';
  if (a.status === 403) return `403 (${statusMessage(a.body) ?? 'forbidden'})`;
  return String(a.status);
}

/** The message of a Status body ("forbidden: User \"system:anonymous\" cannot get path ..."). */
function statusMessage(body: string): string | undefined {
  try {
    const message = (JSON.parse(body) as { message?: unknown }).message;
    return typeof message === 'string' ? message.slice(0, 200) : undefined;
  } catch {
    return undefined;
  }
}

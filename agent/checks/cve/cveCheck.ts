// `cve`: the running API server (GET /version) and this node's kubelet (Node
// status.nodeInfo.kubeletVersion) against a table of Kubernetes CVEs. The table is data: the
// shipped snapshot of the official CVE feed (kubernetes-cves.json), or the operator's own file
// (checks.cve.feedFile, e.g. a ConfigMap mount) so new CVEs need no release.
//
// Severity: a CVE published critical or high is a warning, medium or low is info (many need a
// specific feature or configuration); critical only when the agent sees the condition that
// lets anyone exploit it: CVE-2018-1002105 with discovery answered to a request without
// credentials (the seed's clusters, where system:unauthenticated was in system:discovery).
// Vendor builds (k3s "+k3s1", EKS "-eks-…", GKE "-gke.…", OpenShift "+…") report the upstream
// number they are based on, but vendors backport fixes: one step lower, "verify with your vendor",
// never skipped.
//
// The API server is the cluster's, not the node's: only the leader (always, in `check`) reports
// it, so a fleet does not raise the same finding from every node. The kubelet is this node's.
import { readFileSync } from 'node:fs';
import * as fs from '../../host/asyncFs.ts';
import type { Logger } from 'pino';
import * as v from 'valibot';
import { duration } from '../../config/configSchema.ts';
import { durationMs } from '../../config/duration.ts';
import { describeError, fileErrorReason, isKubeApiError } from '../../errors.ts';
import type { FindingDraft, Severity } from '../../findings/finding.ts';
import { anonymousGet, probeUrl, unreachableReason } from '../../kubernetes/anonymousProbe.ts';
import { coreVersion, isVendorBuild, parseKubeVersion } from '../../parsers/kubeVersion.ts';
import type { KubeVersion } from '../../parsers/kubeVersion.ts';
import type { MetricSample } from '../../sinks/metrics/catalogue.ts';
import type { ClusterService } from '../check.ts';
import type { Check } from '../check.ts';
import { noClusterReason } from '../check.ts';
import { cveId, describeRange, matchCve, validateCveTable } from './cveTable.ts';
import type { CveEntry, CveSeverity, CveTable } from './cveTable.ts';

/** The components this check reads a version for. */
type CheckedComponent = 'apiserver' | 'kubelet';

const COMPONENT_NAME: Record<CheckedComponent, string> = {
  apiserver: 'kube-apiserver',
  kubelet: 'kubelet',
};

/** A feed larger than this is not a CVE table (the shipped one is about 30 KiB). */
const MAX_FEED_BYTES = 4 * 1024 * 1024;

const options = {
  /**
   * A CVE table (same format as the shipped kubernetes-cves.json) in the agent's own
   * filesystem, e.g. a ConfigMap mount; it replaces the shipped table, re-read every run.
   */
  feedFile: v.optional(v.pipe(v.string(), v.startsWith('/', 'must be an absolute path'))),
  /** CVEs verified as not applying here (a vendor's backport, a feature not in use). */
  ignore: v.optional(v.array(cveId), []),
  /** How long the unauthenticated GET /apis may take. */
  probeTimeout: v.optional(duration(100), '5s'),
};

type Options = v.InferOutput<v.ObjectSchema<typeof options, undefined>>;

/**
 * The shipped table, read from the file beside the code (agent/checks/cve/ in the checkout,
 * dist/ beside the bundle: the build copies it) at each run and dropped after. Imported as a
 * module, its 31 entries would stay in every agent's memory as JS literals (about 1.2 MiB of
 * RSS, measured) on nodes that have no cluster to compare them with. A missing or broken
 * shipped table is a packaging bug: it throws (the run fails, CheckFailed says why).
 */
export function shippedCveTable(): CveTable {
  const file = new URL('./kubernetes-cves.json', import.meta.url);
  return validateCveTable(JSON.parse(readFileSync(file, 'utf8')) as unknown);
}

interface TableInUse {
  table: CveTable;
  /** For evidence: which table said so. */
  label: string;
  problem?: FindingDraft;
}

interface RunningVersion {
  component: CheckedComponent;
  version: KubeVersion;
  /** Where the version was read, for evidence. */
  seenAt: string;
}

/** allowed undefined: no API server's answer (unreachable, TLS refused): not known. */
type AnonymousDiscovery = { allowed: boolean | undefined; evidence: string } | undefined;

export const cveCheck: Check<typeof options> = {
  id: 'cve',
  title: 'Kubernetes CVEs',
  description:
    "Compares the API server's and this node's kubelet's versions with a table of Kubernetes CVEs (the official feed, replaceable by checks.cve.feedFile).",
  clusterWide: true,
  defaults: { enabled: true, interval: '1h', timeout: '30s' },
  options,
  async run({ options, services, signal, log }) {
    const cluster = services.cluster;
    // No API (a laptop, a host outside any cluster): nothing to compare, nothing to say.
    if (cluster === undefined)
      return {
        findings: [],
        skipped: `API server and kubelet versions unknown, ${noClusterReason(services)}`,
      };
    const inUse = await tableInUse(options.feedFile);
    const findings: FindingDraft[] = inUse.problem === undefined ? [] : [inUse.problem];
    const running: RunningVersion[] = [];
    const unknown = (component: CheckedComponent, seenAt: string, raw: string) => {
      findings.push(versionUnknown(component, seenAt, raw));
    };
    if (cluster.isLeader()) {
      const gitVersion = await apiServerVersion(cluster, signal, log);
      if (gitVersion !== undefined) {
        const version = parseKubeVersion(gitVersion);
        if (version === undefined) unknown('apiserver', 'GET /version gitVersion', gitVersion);
        else running.push({ component: 'apiserver', version, seenAt: 'GET /version: gitVersion' });
      }
    }
    const node = await ownNode(cluster, signal, log);
    if (node?.kubeletVersion !== undefined) {
      const seenAt = `Node ${node.name} status.nodeInfo.kubeletVersion`;
      const version = parseKubeVersion(node.kubeletVersion);
      if (version === undefined) unknown('kubelet', seenAt, node.kubeletVersion);
      else running.push({ component: 'kubelet', version, seenAt: `${seenAt}:` });
    }
    // An empty operatingSystem (a Node registered by hand) means the platform this agent runs on.
    const reportedOs = node?.operatingSystem ?? '';
    const nodeOs =
      reportedOs !== '' ? reportedOs : process.platform === 'win32' ? 'windows' : 'linux';
    const ignored = new Set(options.ignore);
    const samples: MetricSample[] = [];
    let discovery: Promise<AnonymousDiscovery> | undefined;
    for (const { component, version, seenAt } of running) {
      for (const entry of inUse.table.cves) {
        if (!entry.components.includes(component) || ignored.has(entry.id)) continue;
        const sample = (value: number) => {
          samples.push({
            metric: 'node_auditor_vulnerable',
            labels: { cve: entry.id, component },
            value,
          });
        };
        // Windows-only kubelet CVEs do not apply to a Linux node's kubelet (and vice versa).
        if (
          component === 'kubelet' &&
          entry.platforms &&
          !entry.platforms.some((p) => p === nodeOs)
        ) {
          sample(0);
          continue;
        }
        const match = matchCve(entry, version);
        if (!match.affected) {
          sample(0);
          continue;
        }
        let anonymous: AnonymousDiscovery;
        if (entry.criticalWhen === 'anonymous-discovery' && component === 'apiserver') {
          discovery ??= probeAnonymousDiscovery(cluster, options, signal);
          anonymous = await discovery;
        }
        const vendor = isVendorBuild(version);
        // A vendor build's real state is unknown: no 1 or 0 is better than a wrong one.
        if (!vendor) sample(1);
        findings.push(
          vulnerable({
            entry,
            component,
            version,
            seenAt,
            range: match.range,
            fixedIn: match.fixedIn,
            anonymous,
            vendor,
            tableLabel: inUse.label,
          }),
        );
      }
    }
    return { findings, samples };
  },
};

/** The table for this run: the feed file when set and valid, else the shipped one. */
async function tableInUse(feedFile: string | undefined): Promise<TableInUse> {
  const read = feedFile === undefined ? undefined : await readFeed(feedFile);
  if (read !== undefined && 'table' in read)
    return { table: read.table, label: `${feedFile ?? ''}, snapshot ${read.table.snapshot}` };
  // the shipped table only when no feed replaces it
  const shipped = shippedCveTable();
  const shippedLabel = `shipped CVE table, snapshot ${shipped.snapshot}`;
  if (feedFile === undefined || read === undefined) return { table: shipped, label: shippedLabel };
  return {
    table: shipped,
    label: shippedLabel,
    problem: {
      id: 'CveFeedInvalid',
      problem: 'CveFeedInvalid',
      severity: 'warning',
      title: 'checks.cve.feedFile is unusable: using the shipped CVE table',
      message: `The CVE table ${feedFile} (checks.cve.feedFile) cannot be used: ${read.error}. The check falls back to the table shipped with this release (snapshot ${shipped.snapshot}), which misses any CVE published since.`,
      evidence: [`${feedFile}: ${read.error}`],
      remediation: {
        summary: `Fix ${feedFile}: it must be JSON in the format of agent/checks/cve/kubernetes-cves.json ({"snapshot": "YYYY-MM-DD", "source": URL, "cves": [{"id", "summary", "components", "severity", "affected": [{"introduced"?, "fixed"}], "url", "sources"}]}); check it with: node -e 'JSON.parse(require("fs").readFileSync("${feedFile}", "utf8"))'. Or unset checks.cve.feedFile.`,
        automatic: false,
      },
    },
  };
}

async function readFeed(file: string): Promise<{ table: CveTable } | { error: string }> {
  let text: string;
  try {
    const handle = await fs.open(file, 'r');
    try {
      const { size } = await handle.stat();
      if (size > MAX_FEED_BYTES) return { error: `larger than ${MAX_FEED_BYTES} bytes (${size})` };
      text = await handle.readFile('utf8');
    } finally {
      await handle.close();
    }
  } catch (error) {
    return { error: fileErrorReason(error) };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return { error: `not JSON (${describeError(error)})` };
  }
  try {
    return { table: validateCveTable(json) };
  } catch (error) {
    return { error: `not a CVE table: ${describeError(error)}` };
  }
}

/** gitVersion, or undefined when the API does not answer (another check reports that). */
async function apiServerVersion(
  cluster: ClusterService,
  signal: AbortSignal,
  log: Logger,
): Promise<string | undefined> {
  try {
    const info = await cluster.get<{ gitVersion?: unknown }>('/version', signal);
    return typeof info.gitVersion === 'string' ? info.gitVersion : '';
  } catch (error) {
    if (!isKubeApiError(error)) throw error;
    log.debug({ err: error.message }, 'cve: API server version not read');
    return undefined;
  }
}

async function ownNode(
  cluster: ClusterService,
  signal: AbortSignal,
  log: Logger,
): Promise<{ name: string; kubeletVersion?: string; operatingSystem?: string } | undefined> {
  let node: Record<string, unknown> | undefined;
  try {
    node = await cluster.node(signal);
  } catch (error) {
    if (!isKubeApiError(error)) throw error;
    log.debug({ err: error.message }, 'cve: own Node not read');
    return undefined;
  }
  if (node === undefined) return undefined;
  const metadata = record(node.metadata);
  const nodeInfo = record(record(node.status).nodeInfo);
  const text = (x: unknown) => (typeof x === 'string' ? x : undefined);
  return {
    name: text(metadata.name) ?? '(unnamed)',
    ...(text(nodeInfo.kubeletVersion) === undefined
      ? {}
      : { kubeletVersion: text(nodeInfo.kubeletVersion) }),
    ...(text(nodeInfo.operatingSystem) === undefined
      ? {}
      : { operatingSystem: text(nodeInfo.operatingSystem) }),
  };
}

function record(x: unknown): Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x)
    ? (x as Record<string, unknown>)
    : {};
}

/**
 * GET /apis on the API server with no credentials at all, verified with the cluster's CA:
 * 200 means anyone may call discovery; 401 (anonymous auth off) or 403 means not.
 */
async function probeAnonymousDiscovery(
  cluster: ClusterService,
  options: Options,
  signal: AbortSignal,
): Promise<AnonymousDiscovery> {
  const { url: base, ...tls } = cluster.server;
  const url = probeUrl(base, '/apis');
  const answer = await anonymousGet(url, {
    timeoutMs: durationMs(options.probeTimeout),
    maxBodyBytes: 1024,
    signal,
    ...tls,
  });
  const what = `GET ${url.href} without credentials`;
  if (answer.kind === 'unreachable')
    return {
      allowed: undefined,
      evidence: `${what}: ${unreachableReason(answer)} (whether anyone may call discovery is unknown)`,
    };
  if (answer.status === 200)
    return { allowed: true, evidence: `${what}: 200 (discovery open to anyone)` };
  if (answer.status === 401 || answer.status === 403)
    return { allowed: false, evidence: `${what}: ${answer.status} (refused)` };
  return {
    allowed: undefined,
    evidence: `${what}: ${answer.status}, as no API server answers (whether anyone may call discovery is unknown)`,
  };
}

function baseSeverity(published: CveSeverity): Severity {
  return published === 'critical' || published === 'high' ? 'warning' : 'info';
}

function lower(severity: Severity): Severity {
  return severity === 'critical' ? 'warning' : 'info';
}

function vulnerable(f: {
  entry: CveEntry;
  component: CheckedComponent;
  version: KubeVersion;
  seenAt: string;
  range: string;
  fixedIn: string | undefined;
  anonymous: AnonymousDiscovery;
  vendor: boolean;
  tableLabel: string;
}): FindingDraft {
  const { entry, component, version } = f;
  const name = COMPONENT_NAME[component];
  const exploitableByAnyone = f.anonymous?.allowed === true;
  const severityIfUpstream: Severity = exploitableByAnyone
    ? 'critical'
    : baseSeverity(entry.severity);
  const severity = f.vendor ? lower(severityIfUpstream) : severityIfUpstream;
  const minor = `${version.major}.${version.minor}`;
  const fix =
    f.fixedIn === undefined
      ? 'No fixed release is listed for it'
      : f.fixedIn.startsWith(`${minor}.`)
        ? `Fixed in ${f.fixedIn}`
        : `No ${minor} release has the fix; the first fixed release is ${f.fixedIn}`;
  const evidence = [
    `${f.seenAt} ${version.raw}`,
    `${entry.id} (${entry.severity} as published) affects ${entry.components.join(', ')} ${entry.affected.map(describeRange).join('; ')}; ${version.raw} is in ${f.range}`,
    ...(f.anonymous === undefined ? [] : [f.anonymous.evidence]),
    `table: ${f.tableLabel}`,
    entry.url,
  ];
  const upgrade =
    f.fixedIn === undefined
      ? `Upgrade ${name} to a release the advisory lists as fixed (${entry.url}).`
      : component === 'apiserver'
        ? `Upgrade the control plane to v${f.fixedIn} or later (kubeadm: "kubeadm upgrade plan", then "kubeadm upgrade apply v${f.fixedIn}"; otherwise your installer's or provider's upgrade).`
        : `Upgrade the kubelet on this node to v${f.fixedIn} or later: "kubectl drain <node> --ignore-daemonsets", install the kubelet package of v${f.fixedIn}, "systemctl daemon-reload && systemctl restart kubelet", then "kubectl uncordon <node>".`;
  const anonymousFix = exploitableByAnyone
    ? ' Until then, close discovery to anonymous users: set --anonymous-auth=false on kube-apiserver, or remove the Group system:unauthenticated subject from ClusterRoleBindings system:discovery and system:basic-user ("kubectl edit clusterrolebinding system:discovery", then system:basic-user) after "kubectl annotate clusterrolebinding system:discovery system:basic-user rbac.authorization.kubernetes.io/autoupdate=false --overwrite" (without it the API server restores them at its next start).'
    : '';
  if (f.vendor) {
    return {
      id: `VendorBuildMayBeVulnerable:${entry.id}:${component}`,
      problem: 'VendorBuildMayBeVulnerable',
      severity,
      title: `${name} ${version.raw}: vendor build, verify ${entry.id}`,
      message: `${name} ${version.raw} is a vendor build of ${coreVersion(version)}, which upstream is affected by ${entry.id} (${entry.severity}): ${entry.summary} Vendors backport fixes without changing the upstream version, so whether this build has the fix is for your vendor to say. ${fix} upstream.${exploitableByAnyone ? ' The API server answers discovery without credentials, so if the build is affected anyone can exploit it.' : ''}${entry.notes === undefined ? '' : ` ${entry.notes}`}`,
      evidence,
      remediation: {
        summary: `Check your vendor's security bulletin for ${entry.id} and build ${version.raw}. If the build has the fix, add ${entry.id} to checks.cve.ignore; otherwise upgrade to the vendor's build based on v${f.fixedIn ?? '(a fixed release)'} or later.${anonymousFix}`,
        automatic: false,
      },
    };
  }
  return {
    id: `VulnerableVersion:${entry.id}:${component}`,
    problem: 'VulnerableVersion',
    severity,
    title: `${name} ${version.raw} is affected by ${entry.id}${exploitableByAnyone ? ' (open to anyone)' : ''}`,
    message: `${name} ${version.raw} is affected by ${entry.id} (${entry.severity} as published): ${entry.summary} ${fix}.${exploitableByAnyone ? ' The API server answers discovery (/apis) to requests without credentials, so anyone who can reach it can exploit this.' : ''}${entry.notes === undefined ? '' : ` ${entry.notes}`}`,
    evidence,
    remediation: { summary: `${upgrade}${anonymousFix}`, automatic: false },
  };
}

function versionUnknown(component: CheckedComponent, seenAt: string, raw: string): FindingDraft {
  const name = COMPONENT_NAME[component];
  return {
    id: `KubernetesVersionUnparsable:${component}`,
    problem: 'KubernetesVersionUnparsable',
    severity: 'info',
    title: `${name} version ${JSON.stringify(raw.slice(0, 40))} is not a version`,
    message: `${seenAt} is ${JSON.stringify(raw)}, which is not a Kubernetes version (vMAJOR.MINOR.PATCH): ${name} cannot be compared with the CVE table.`,
    evidence: [`${seenAt}: ${JSON.stringify(raw)}`],
    remediation: {
      summary: `Check what ${name} reports ("kubectl version", "kubectl get node <node> -o jsonpath='{.status.nodeInfo.kubeletVersion}'"); a custom build should report vMAJOR.MINOR.PATCH.`,
      automatic: false,
    },
  };
}

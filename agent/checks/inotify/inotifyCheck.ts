// `inotify`: who holds the node's inotify watches and instances, against the limits the kernel
// enforces per user. When max_user_watches runs out, the kubelet (root) cannot add the watches
// cAdvisor needs, fails to start it and exits: the seeds' NotReady node. Until now nobody could
// see who holds them (node_exporter #866); this check names the top holders, per pod.
//
// Which user is charged: the kernel counts an instance, and every watch added to it, against the
// user that created it: its effective UID since Linux 4.11 (the real UID before), in the
// creator's user namespace. /proc shows who holds an instance now, not who created it, so usage
// is counted per holder's effective UID; they differ only for a process that changed its UIDs
// after inotify_init. A child that inherited its parent's instance (same watches, same fdinfo)
// is counted once, with the parent.
import * as v from 'valibot';
import { duration, percent } from '../../config/configSchema.ts';
import { durationMs, formatDuration } from '../../config/duration.ts';
import { CAUSE_REMEDIATION } from '../../findings/causes.ts';
import type { Cause } from '../../findings/causes.ts';
import { byCodeUnit, draft } from '../../findings/finding.ts';
import type { FindingDraft, Severity } from '../../findings/finding.ts';
import { describeOwner, describeProcess, ownerOf } from '../../procfs/processOwner.ts';
import type { PodLookup, ProcessOwner } from '../../procfs/processOwner.ts';
import type { ProcessInfo, ProcessScan } from '../../procfs/processScanner.ts';
import type { ProcessScans } from '../../procfs/processScans.ts';
import type { MetricSample } from '../../sinks/metrics/catalogue.ts';
import type { Check } from '../check.ts';
import { processScans, readKernelNumber } from '../processChecks.ts';
import { sysctlProcPath } from '../../parsers/sysctlConf.ts';

const options = {
  /** Usage of a limit (percent) that raises a warning. */
  warningPercent: percent(80),
  /** Usage of a limit (percent) that raises a critical finding. At 100% the limit is exhausted. */
  criticalPercent: percent(95),
  /** Processes named in findings and in node_auditor_inotify_top_consumer_watches. */
  topConsumers: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(50)), 5),
  /** How far back the trend (watches per hour, time until the limit) looks. */
  trendWindow: v.optional(duration(60_000), '1h'),
};

type Options = v.InferOutput<v.ObjectSchema<typeof options, undefined>>;

export interface Consumer {
  process: ProcessInfo;
  owner: ProcessOwner;
  uid: number;
  instances: number;
  watches: number;
}

export interface InotifyUsage {
  /** Per effective UID: instances and watches in use. */
  byUid: Map<number, { instances: number; watches: number }>;
  /** Every process holding at least one instance, most watches first. */
  consumers: Consumer[];
}

/** Usage per UID and per process from one scan (inherited instances counted once). */
function inotifyUsage(
  scan: ProcessScan,
  pods: PodLookup | undefined,
  infra: ReadonlySet<string>,
): InotifyUsage {
  const byUid = new Map<number, { instances: number; watches: number }>();
  const consumers: Consumer[] = [];
  for (const p of scan.processes) {
    if (p.inotify.length === 0) continue;
    const parent = scan.byPid.get(p.ppid);
    const own = p.inotify.filter(
      (instance) =>
        !(
          instance.watches > 0 &&
          parent?.inotify.some(
            (theirs) =>
              theirs.fingerprint === instance.fingerprint && theirs.watches === instance.watches,
          ) === true
        ),
    );
    if (own.length === 0) continue;
    const uid = p.status?.uids[1] ?? p.status?.uids[0] ?? -1;
    const watches = own.reduce((sum, instance) => sum + instance.watches, 0);
    const total = byUid.get(uid) ?? { instances: 0, watches: 0 };
    total.instances += own.length;
    total.watches += watches;
    byUid.set(uid, total);
    consumers.push({
      process: p,
      owner: ownerOf(p, pods, infra),
      uid,
      instances: own.length,
      watches,
    });
  }
  consumers.sort(
    (a, b) => b.watches - a.watches || b.instances - a.instances || a.process.pid - b.process.pid,
  );
  return { byUid, consumers };
}

async function readLimit(
  context: Parameters<Check['run']>[0],
  sysctl: string,
): Promise<number | undefined> {
  const value = await readKernelNumber(context.host, sysctlProcPath(sysctl));
  return typeof value === 'number' ? value : undefined;
}

const KINDS = {
  watches: {
    sysctl: 'fs.inotify.max_user_watches',
    exhausted: 'InotifyWatchesExhausted',
    near: 'InotifyWatchesNearLimit',
    noun: 'watches',
  },
  instances: {
    sysctl: 'fs.inotify.max_user_instances',
    exhausted: 'InotifyInstancesExhausted',
    near: 'InotifyInstancesNearLimit',
    noun: 'instances',
  },
} as const satisfies Record<string, { exhausted: Cause } & Record<string, string>>;

function consumerLine(c: Consumer, kind: 'watches' | 'instances'): string {
  const amount = kind === 'watches' ? `${c.watches} watches` : `${c.instances} instances`;
  const also = kind === 'watches' ? `${c.instances} instances` : `${c.watches} watches`;
  return `${amount} (${also}): ${describeProcess(c.process)}, uid ${c.uid}, ${describeOwner(c.owner)}`;
}

function formatEta(seconds: number): string {
  return formatDuration(Math.round(seconds) * 1000);
}

function limitFinding(
  kind: 'watches' | 'instances',
  uid: number,
  used: number,
  limit: number,
  consumers: Consumer[],
  options: Options,
  extra: { eta?: number; ratePerHour?: number; lowerBound: string },
): FindingDraft | undefined {
  const share = (used / limit) * 100;
  if (share < options.warningPercent) return undefined;
  const k = KINDS[kind];
  const exhausted = used >= limit;
  const severity: Severity = exhausted || share >= options.criticalPercent ? 'critical' : 'warning';
  const mine = consumers
    .filter((c) => c.uid === uid)
    .sort((a, b) =>
      kind === 'watches'
        ? b.watches - a.watches
        : b.instances - a.instances || b.watches - a.watches,
    )
    .slice(0, options.topConsumers);
  const top = mine[0];
  const rate =
    extra.ratePerHour === undefined
      ? ''
      : ` It grew by ${Math.round(extra.ratePerHour)} per hour over the last ${options.trendWindow}${extra.eta === undefined ? '' : `; at that rate the limit is reached in ${formatEta(extra.eta)}`}.`;
  const who =
    uid === 0
      ? ' The kubelet runs as root (uid 0): when root has none left, it cannot start cAdvisor and the node goes NotReady.'
      : '';
  const message = exhausted
    ? `uid ${uid} holds ${used} inotify ${k.noun}, the whole of ${k.sysctl} (${limit}): the next inotify ${kind === 'watches' ? 'watch' : 'instance'} any process of uid ${uid} asks for fails with "${kind === 'watches' ? 'no space left on device' : 'too many open files'}".${who}${top === undefined ? '' : ` Most are held by ${describeProcess(top.process)} in ${describeOwner(top.owner)}.`}${rate}${extra.lowerBound}`
    : `uid ${uid} holds ${used} of ${limit} inotify ${k.noun} (${share.toFixed(1)}% of ${k.sysctl}).${who}${top === undefined ? '' : ` Most are held by ${describeProcess(top.process)} in ${describeOwner(top.owner)}.`}${rate}${extra.lowerBound}`;
  const evidence = [
    `${k.sysctl} = ${limit}; uid ${uid} uses ${used} (${share.toFixed(1)}%)`,
    ...mine.map((c) => consumerLine(c, kind)),
  ];
  if (extra.eta !== undefined)
    evidence.push(`limit reached in ${formatEta(extra.eta)} at the current rate`);
  const problem = exhausted ? k.exhausted : k.near;
  return draft(problem, `uid=${uid}`, {
    severity,
    title: exhausted
      ? `inotify ${k.noun} exhausted for uid ${uid}`
      : `inotify ${k.noun} of uid ${uid} at ${share.toFixed(0)}% of the limit`,
    message,
    evidence,
    ...(exhausted ? { cause: k.exhausted } : {}),
    remediation: {
      summary: `${CAUSE_REMEDIATION[k.exhausted]}${top === undefined ? '' : ` Or reduce what ${top.process.comm} (${describeOwner(top.owner)}) watches.`}`,
      automatic: false,
    },
  });
}

export const inotifyCheck: Check<typeof options> = {
  id: 'inotify',
  title: 'inotify watches and instances per user',
  description:
    'Counts the inotify watches and instances every process holds (one /proc pass), per user against fs.inotify.max_user_watches and max_user_instances, and names the top holders by pod.',
  defaults: { enabled: true, interval: '60s', timeout: '30s' },
  options,
  async run(context) {
    const scans: ProcessScans = processScans(context);
    const scan = await scans.get(context.signal);
    const pods = context.services.pods;
    const usage = inotifyUsage(scan, pods, scan.infraCommands);
    const [maxWatches, maxInstances] = await Promise.all([
      readLimit(context, KINDS.watches.sysctl),
      readLimit(context, KINDS.instances.sysctl),
    ]);
    const samples: MetricSample[] = [];
    for (const [uid, used] of usage.byUid) {
      samples.push({
        metric: 'node_auditor_inotify_watches',
        labels: { uid: String(uid) },
        value: used.watches,
      });
      samples.push({
        metric: 'node_auditor_inotify_instances',
        labels: { uid: String(uid) },
        value: used.instances,
      });
    }
    if (maxWatches !== undefined)
      samples.push({
        metric: 'node_auditor_inotify_max_user_watches',
        labels: {},
        value: maxWatches,
      });
    if (maxInstances !== undefined)
      samples.push({
        metric: 'node_auditor_inotify_max_user_instances',
        labels: {},
        value: maxInstances,
      });
    // Top N holders, one series per label set (two processes of one container are summed).
    const top = new Map<string, { labels: Record<string, string>; value: number }>();
    for (const c of usage.consumers.slice(0, context.options.topConsumers)) {
      const labels = {
        namespace: c.owner.namespace,
        pod: c.owner.pod,
        container: c.owner.container,
        comm: c.process.comm,
      };
      const key = JSON.stringify(labels);
      const entry = top.get(key) ?? { labels, value: 0 };
      entry.value += c.watches;
      top.set(key, entry);
    }
    for (const { labels, value } of top.values())
      samples.push({ metric: 'node_auditor_inotify_top_consumer_watches', labels, value });

    const windowMs = durationMs(context.options.trendWindow);
    scans.inotifyTrend.record(
      scan.at,
      new Map([...usage.byUid].map(([uid, used]) => [String(uid), used.watches])),
      windowMs,
    );
    const lowerBound =
      scan.fdsDenied > 0
        ? ` (A lower bound: the file descriptors of ${scan.fdsDenied} processes could not be read.)`
        : '';
    const findings: FindingDraft[] = [];
    const uids = [...usage.byUid.keys()].sort((a, b) => a - b);
    for (const uid of uids) {
      const used = usage.byUid.get(uid) as { instances: number; watches: number };
      if (maxWatches !== undefined && maxWatches > 0) {
        const rate = scans.inotifyTrend.ratePerSecond(String(uid));
        const eta = scans.inotifyTrend.secondsUntil(String(uid), used.watches, maxWatches);
        if (eta !== undefined)
          samples.push({
            metric: 'node_auditor_inotify_watches_limit_eta_seconds',
            labels: { uid: String(uid) },
            value: Math.round(eta),
          });
        const finding = limitFinding(
          'watches',
          uid,
          used.watches,
          maxWatches,
          usage.consumers,
          context.options,
          {
            ...(rate === undefined || rate <= 0 ? {} : { ratePerHour: rate * 3600 }),
            ...(eta === undefined ? {} : { eta }),
            lowerBound,
          },
        );
        if (finding !== undefined) findings.push(finding);
      }
      if (maxInstances !== undefined && maxInstances > 0) {
        const finding = limitFinding(
          'instances',
          uid,
          used.instances,
          maxInstances,
          usage.consumers,
          context.options,
          { lowerBound },
        );
        if (finding !== undefined) findings.push(finding);
      }
    }
    if (scan.fdsDenied > 0) findings.push(scanIncompleteFinding(scan));
    findings.sort((a, b) => byCodeUnit(a.id, b.id));
    return { findings, samples };
  },
};

/** Info: some processes' fds are not readable (not root, or no CAP_SYS_PTRACE). */
function scanIncompleteFinding(scan: ProcessScan): FindingDraft {
  return draft('ProcessScanIncomplete', undefined, {
    severity: 'info',
    title: 'some processes could not be inspected',
    message: `The file descriptors of ${scan.fdsDenied} of ${scan.processes.length} processes could not be read, so their inotify use is not counted. The agent needs root (or CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH) to read every process's /proc/<pid>/fd.`,
    evidence: [`${scan.fdsDenied} processes: permission denied on /proc/<pid>/fd`],
    remediation: {
      summary:
        'Run the agent as root, as the chart does when the inotify check is enabled, or grant it CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH.',
      automatic: false,
    },
  });
}

// `zombies`: processes that exited and were never reaped, per pod and container, and the parent
// that is not reaping them. A zombie holds only a PID, but a parent that never calls wait()
// leaks one per child until pids.max or kernel.pid_max is reached and nothing can fork: so PID
// headroom (the node's and each pod's) is checked here too.
//
// The usual culprit in a container is its PID 1: an application that was never meant to be an
// init neither catches SIGCHLD nor ignores it (an ignored SIGCHLD makes the kernel reap), so
// orphans re-parented to it stay zombies. The fix is an init (tini, dumb-init) or
// shareProcessNamespace: true, which makes pause PID 1 of the pod and its sigreap the reaper.
import * as v from 'valibot';
import { duration, percent } from '../../config/configSchema.ts';
import { durationMs, formatDuration } from '../../config/duration.ts';
import { describeError } from '../../errors.ts';
import { byCodeUnit, draft } from '../../findings/finding.ts';
import type { FindingDraft, Severity } from '../../findings/finding.ts';
import { SIGNALS, hasSignal } from '../../parsers/procStatus.ts';
import { describeOwner, describeProcess, ownerOf } from '../../procfs/processOwner.ts';
import type { PodLookup, ProcessOwner } from '../../procfs/processOwner.ts';
import { isNamespaceInit, startedAtMs } from '../../procfs/processScanner.ts';
import type { ProcessInfo, ProcessScan } from '../../procfs/processScanner.ts';
import type { MetricSample } from '../../sinks/metrics/catalogue.ts';
import type { Check } from '../check.ts';
import { processScans, readKernelNumber } from '../processChecks.ts';

const options = {
  /** Zombies under one parent that raise a warning. */
  parentThreshold: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1)), 10),
  /** Or: zombies under one parent grew by this many within growthWindow. */
  growth: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1)), 5),
  growthWindow: v.optional(duration(60_000), '10m'),
  /** PIDs in use (node: tasks / kernel.pid_max; pod: pids.current / pids.max) that warn... */
  pidWarningPercent: percent(70),
  /** ...and that are critical. */
  pidCriticalPercent: percent(90),
};

type Options = v.InferOutput<v.ObjectSchema<typeof options, undefined>>;

const processKey = (p: ProcessInfo) => `${p.pid}:${p.startTicks}`;

function ago(ms: number): string {
  return formatDuration(Math.max(0, ms));
}

function zombieLine(
  scan: ProcessScan,
  z: ProcessInfo,
  firstSeen: number | undefined,
  now: number,
): string {
  const started = startedAtMs(scan, z);
  const parts = [`zombie ${describeProcess(z)}`];
  if (started !== undefined) parts.push(`started ${ago(now - started)} ago`);
  if (firstSeen !== undefined && firstSeen < scan.at)
    parts.push(`a zombie for at least ${ago(now - firstSeen)}`);
  return parts.join(', ');
}

/**
 * A zombie's pod and container. Under cgroup v1 an exited task is moved to the root cgroup
 * (its /proc/<pid>/cgroup says "/") while its pod's pids.current still counts it: it is then
 * its parent's, which is in the container that forked it (or, for an orphan, that adopted it).
 */
function zombieOwner(
  z: ProcessInfo,
  parent: ProcessInfo | undefined,
  pods: PodLookup | undefined,
  infra: ReadonlySet<string>,
): ProcessOwner {
  if (z.cgroup?.podUid !== undefined || parent === undefined) return ownerOf(z, pods, infra);
  return ownerOf(parent, pods, infra);
}

function catchesOrIgnoresSigchld(p: ProcessInfo): boolean | undefined {
  if (p.status == null) return undefined;
  return hasSignal(p.status.sigCgt, SIGNALS.SIGCHLD) || hasSignal(p.status.sigIgn, SIGNALS.SIGCHLD);
}

function headroomFinding(
  subject: string | undefined,
  problem: string,
  who: string,
  used: number,
  limit: number,
  what: string,
  options: Options,
  fix: string,
): FindingDraft | undefined {
  const share = (used / limit) * 100;
  if (share < options.pidWarningPercent) return undefined;
  const severity: Severity = share >= options.pidCriticalPercent ? 'critical' : 'warning';
  return draft(problem, subject, {
    severity,
    title: `${who} uses ${share.toFixed(0)}% of its PIDs`,
    message: `${who} has ${used} PIDs in use of ${limit} (${what}); at the limit fork() fails with "Resource temporarily unavailable" and nothing new can start.`,
    evidence: [`${what}: ${used} of ${limit} (${share.toFixed(1)}%)`],
    remediation: { summary: fix, automatic: false },
  });
}

export const zombiesCheck: Check<typeof options> = {
  id: 'zombies',
  title: 'Zombie processes and PID headroom',
  description:
    "Counts zombie processes per pod and container, names the parents that do not reap them (a container PID 1 without a SIGCHLD handler above all), and checks PIDs in use against kernel.pid_max and each pod's pids.max.",
  defaults: { enabled: true, interval: '60s', timeout: '30s' },
  options,
  async run(context) {
    const scans = processScans(context);
    const scan = await scans.get(context.signal);
    const pods = context.services.pods;
    const infra = scan.infraCommands;
    const now = Date.now();
    const zombies = [...scan.zombiesByParent.values()].flat();
    const firstSeen = scans.zombiesSeen.record(scan.at, zombies.map(processKey));

    // Per pod and container, for the metric; the host's series is always there.
    const perOwner = new Map<string, { labels: Record<string, string>; value: number }>();
    const hostKey = JSON.stringify({ namespace: '', pod: '', container: '' });
    perOwner.set(hostKey, { labels: { namespace: '', pod: '', container: '' }, value: 0 });
    for (const z of zombies) {
      const owner = zombieOwner(z, scan.byPid.get(z.ppid), pods, infra);
      const labels = { namespace: owner.namespace, pod: owner.pod, container: owner.container };
      const key = JSON.stringify(labels);
      const entry = perOwner.get(key) ?? { labels, value: 0 };
      entry.value++;
      perOwner.set(key, entry);
    }
    const samples: MetricSample[] = [...perOwner.values()].map(({ labels, value }) => ({
      metric: 'node_auditor_zombie_processes',
      labels,
      value,
    }));

    const window = durationMs(context.options.growthWindow);
    scans.zombieParents.record(
      scan.at,
      new Map(
        [...scan.zombiesByParent].flatMap(([ppid, children]) => {
          const parent = scan.byPid.get(ppid);
          return parent === undefined ? [] : [[processKey(parent), children.length] as const];
        }),
      ),
      window,
    );

    const findings: FindingDraft[] = [];
    for (const [ppid, children] of scan.zombiesByParent) {
      const parent = scan.byPid.get(ppid);
      if (parent === undefined) continue; // it exited meanwhile: init adopts and reaps them
      const owner = ownerOf(parent, pods, infra);
      const count = children.length;
      const oldest = [...children].sort((a, b) => a.startTicks - b.startTicks);
      const evidence = [
        `parent: ${describeProcess(parent)} in ${describeOwner(owner)}${parent.status == null ? '' : `, SigCgt ${parent.status.sigCgt}, SigIgn ${parent.status.sigIgn}`}${parent.pidNs === undefined ? '' : `, PID namespace pid:[${parent.pidNs}]`}`,
        ...oldest.slice(0, 5).map((z) => zombieLine(scan, z, firstSeen.get(processKey(z)), now)),
      ];
      if (count > 5) evidence.push(`... and ${count - 5} more`);
      const handles = catchesOrIgnoresSigchld(parent);
      const isContainerInit = isNamespaceInit(parent) && !infra.has(parent.comm);
      if (isContainerInit && handles === false) {
        findings.push(
          draft('ContainerInitNotReaping', String(parent.pid), {
            severity: 'warning',
            title: `${describeOwner(owner)}: PID 1 (${parent.comm}) does not reap its children`,
            message: `${parent.comm} is PID 1 of the container's PID namespace but neither catches nor ignores SIGCHLD, so it never reaps: ${count} zombie${count === 1 ? '' : 's'} under it now, and every orphan of the container will join them.`,
            evidence,
            remediation: {
              summary:
                'Run the container under an init that reaps: tini or dumb-init as the entrypoint (ENTRYPOINT ["tini", "--", ...]; docker run --init), or set shareProcessNamespace: true in the pod spec so that pause is PID 1 and its SIGCHLD handler reaps.',
              automatic: false,
            },
          }),
        );
        continue;
      }
      const grew = scans.zombieParents.increase(processKey(parent));
      if (count >= context.options.parentThreshold || grew >= context.options.growth) {
        findings.push(
          draft('ZombiesAccumulating', String(parent.pid), {
            severity: 'warning',
            title: `${count} zombies under ${describeProcess(parent)} in ${describeOwner(owner)}`,
            message: `${describeProcess(parent)} in ${describeOwner(owner)} has ${count} zombie children${grew > 0 ? ` (${grew} more within ${context.options.growthWindow})` : ''}: it does not wait() for its children. Each zombie holds a PID until it is reaped.`,
            evidence,
            remediation: {
              summary: `Fix ${parent.comm} to wait() for its children, or restart it (its zombies go to init, which reaps them). In a container, run it under an init such as tini, or set shareProcessNamespace: true so that pause reaps.`,
              automatic: false,
            },
          }),
        );
      }
    }

    // PID headroom: the node's tasks (every thread has a PID) against kernel.pid_max ...
    const pidMax = await readKernelNumber(context.host, '/proc/sys/kernel/pid_max');
    if (typeof pidMax === 'number' && pidMax > 0) {
      samples.push({
        metric: 'node_auditor_pid_usage_ratio',
        labels: { namespace: '', pod: '' },
        value: scan.tasks / pidMax,
      });
      const finding = headroomFinding(
        undefined,
        'PidsNearLimit',
        'This node',
        scan.tasks,
        pidMax,
        'tasks (processes and threads) / kernel.pid_max',
        context.options,
        'Find who forks or spawns threads without end ("ps -eLf | wc -l", "ps -eo nlwp,pid,comm --sort=-nlwp | head") and fix it; raise kernel.pid_max (up to 4194304) in /etc/sysctl.d/ and set podPidsLimit in the kubelet configuration so one pod cannot take them all.',
      );
      if (finding !== undefined) findings.push(finding);
    }
    // ... and each pod's pids.current against its cgroup's pids.max.
    const podDirs = new Map<string, ProcessInfo>();
    for (const p of scan.processes) {
      const dir = p.cgroup?.podPidsDir;
      if (dir !== undefined && !podDirs.has(dir)) podDirs.set(dir, p);
    }
    for (const [dir, p] of podDirs) {
      context.signal.throwIfAborted();
      let max: number | 'max' | undefined;
      let current: number | 'max' | undefined;
      try {
        max = await readKernelNumber(context.host, `${dir}/pids.max`);
        current = await readKernelNumber(context.host, `${dir}/pids.current`);
      } catch (error) {
        // One pod's cgroup that cannot be read does not hide the others'.
        context.log.warn(
          { event: 'zombies.pids-unreadable', dir, error: describeError(error) },
          `cannot read ${dir}`,
        );
        continue;
      }
      if (typeof max !== 'number' || max <= 0 || typeof current !== 'number') continue;
      const owner = ownerOf(p, pods, infra);
      samples.push({
        metric: 'node_auditor_pid_usage_ratio',
        labels: { namespace: owner.namespace, pod: owner.pod },
        value: current / max,
      });
      const pod = describeOwner({ ...owner, container: '' });
      const finding = headroomFinding(
        owner.podUid,
        'PodPidsNearLimit',
        pod,
        current,
        max,
        `${dir}/pids.current / pids.max`,
        context.options,
        `Find what forks in ${pod} ("kubectl exec" then "ps -eLf"), usually zombies or a thread leak; the limit is the kubelet's podPidsLimit.`,
      );
      if (finding !== undefined) findings.push(finding);
    }
    findings.sort((a, b) => byCodeUnit(a.id, b.id));
    return { findings, samples };
  },
};

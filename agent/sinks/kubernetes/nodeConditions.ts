// NodeConditions (opt-in, kubernetes.nodeConditions.enabled): findings that make a node
// unhealthy set a condition on the Node, True while the problem lasts and False again when it
// clears (node-problem-detector's never go back). Names and "healthy" reasons are NPD's where
// NPD has the condition, so dashboards and remedies written for NPD keep working.
//
// Patched on nodes/status as a strategic merge patch: it merges conditions by type and keeps
// every other writer's (the fixtures show a JSON merge patch replaces the whole list, Ready
// included). Nothing is written before the agent's first pass is done, so a restart never
// flips a still-true condition to False and back; lastTransitionTime changes only when the
// status does. A condition is written only when a check that can raise it has run (saying
// "kubelet is healthy" needs something that looked), and never over another writer's: if
// node-problem-detector already sets KernelDeadlock, it keeps it.
//
// The heartbeat period and the retry backoff are measured on a monotonic clock, as the leader
// Lease's are: a wall clock stepped back (NTP, a fixed RTC) would otherwise stall heartbeats
// until it caught up again, and the node would look unmonitored. Wall time only goes into the
// condition's lastHeartbeatTime and lastTransitionTime.
import type { Logger } from 'pino';
import type { Cause } from '../../findings/causes.ts';
import { compareFindings } from '../../findings/finding.ts';
import type { Finding } from '../../findings/finding.ts';
import { Backoff } from '../../kubernetes/backoff.ts';
import { KubeApiError, kubeTime } from '../../kubernetes/kubeApi.ts';
import type { KubeApi } from '../../kubernetes/kubeApi.ts';
import type { NodeCondition, OwnNode } from '../../kubernetes/ownNode.ts';

export interface ConditionRule {
  type: string;
  /** Checks whose findings can make it True: written only once one of them has run. */
  sources: readonly string[];
  /** Findings that make it True: by NotReady cause, or by problem. */
  causes: readonly Cause[];
  problems: readonly string[];
  /** Reason and message while it is False. */
  okReason: string;
  okMessage: string;
}

export const NODE_CONDITIONS: readonly ConditionRule[] = [
  {
    type: 'InotifyPressure',
    sources: ['inotify', 'logs'],
    causes: ['InotifyWatchesExhausted', 'InotifyInstancesExhausted'],
    problems: ['InotifyWatchesNearLimit', 'InotifyInstancesNearLimit'],
    okReason: 'InotifyHasHeadroom',
    okMessage: 'inotify watches and instances are below their limits',
  },
  {
    type: 'KernelDeadlock',
    sources: ['logs'],
    causes: [],
    problems: ['KernelDeadlock'],
    okReason: 'KernelHasNoDeadlock',
    okMessage: 'kernel has no deadlock',
  },
  {
    type: 'ReadonlyFilesystem',
    sources: ['logs'],
    causes: [],
    problems: ['ReadonlyFilesystem'],
    okReason: 'FilesystemIsNotReadOnly',
    okMessage: 'Filesystem is not read-only',
  },
  {
    type: 'XfsShutdown',
    sources: ['logs'],
    causes: [],
    problems: ['XfsShutdown'],
    okReason: 'XfsHasNotShutDown',
    okMessage: 'no XFS filesystem has shut down',
  },
  {
    type: 'FrequentKubeletRestart',
    sources: ['logs'],
    causes: ['KubeletCrashLoop'],
    problems: [],
    okReason: 'NoFrequentKubeletRestart',
    okMessage: 'kubelet is functioning properly',
  },
  {
    type: 'KubeletUnhealthy',
    sources: ['logs', 'kubelet-cert'],
    causes: ['KubeletDown', 'PLEGUnhealthy', 'KubeletClientCertExpired'],
    problems: [],
    okReason: 'KubeletIsHealthy',
    okMessage: 'kubelet on the node is functioning properly',
  },
  {
    type: 'ContainerRuntimeUnhealthy',
    sources: ['logs', 'container-runtime'],
    causes: ['ContainerRuntimeDown'],
    problems: [],
    okReason: 'ContainerRuntimeIsHealthy',
    okMessage: 'Container runtime on the node is functioning properly',
  },
];

export interface NodeConditionsOptions {
  api: KubeApi;
  nodeName: string;
  ownNode: OwnNode;
  /** The current findings. */
  findings: () => readonly Finding[];
  /** Checks that have run without failing (and so can speak for their conditions). */
  checksRun: () => ReadonlySet<string>;
  heartbeatMs: number;
  log: Logger;
  onWritten?: () => void;
  /** Wall time, for the timestamps written into the conditions only. */
  now?: () => Date;
  /** Monotonic milliseconds, for the heartbeat period and the backoff (tests may drive it). */
  monotonic?: () => number;
  rules?: readonly ConditionRule[];
  /**
   * Problems that set a condition because a log rule says so (its `condition`, as
   * node-problem-detector's "permanent" rules: DockerHung -> KernelDeadlock), by condition type,
   * from the rules in force. They count as the condition's own problems: raised, recognised as
   * this agent's reason after a restart, and cleared.
   */
  ruleProblems?: () => ReadonlyMap<string, readonly string[]>;
}

export class NodeConditions {
  private readonly options: NodeConditionsOptions;
  private readonly rules: readonly ConditionRule[];
  private readonly now: () => Date;
  private readonly monotonic: () => number;
  private readonly retry = new Backoff({ baseMs: 1000, maxMs: 60_000 });
  private started = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private writing = false;
  private again = false;
  /** What we last wrote: type -> status|reason|message. */
  private written = new Map<string, string>();
  /** Status and transition time we last wrote (fresher than the watched Node right after a write). */
  private ours = new Map<string, { status: string; since: string }>();
  private readonly warnedForeign = new Set<string>();
  /** No write before this (monotonic ms): the backoff after a failure, or a Retry-After. */
  private notBefore = -Infinity;
  /** When the last write succeeded (monotonic ms). */
  private lastWriteAt = -Infinity;

  constructor(options: NodeConditionsOptions) {
    this.options = options;
    this.rules = options.rules ?? NODE_CONDITIONS;
    this.now = options.now ?? (() => new Date());
    this.monotonic = options.monotonic ?? (() => performance.now());
  }

  /** Call once the first pass is done: from now on the conditions are kept current. */
  start(): void {
    this.started = true;
    this.sync();
  }

  /** Findings changed (or the Node arrived): write what differs. */
  sync(): void {
    if (!this.started || this.stopped) return;
    if (this.writing) {
      this.again = true;
      return;
    }
    const wait = this.notBefore - this.monotonic();
    if (wait > 0) {
      this.schedule(wait); // a finding change does not cut a backoff short
      return;
    }
    void this.write();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** The conditions the findings call for, with transition times carried over. */
  desired(): NodeCondition[] {
    const at = kubeTime(this.now());
    const findings = [...this.options.findings()].sort(compareFindings);
    const ran = this.options.checksRun();
    const out: NodeCondition[] = [];
    for (const rule of this.rules) {
      if (!rule.sources.some((check) => ran.has(check))) continue;
      const existing = this.options.ownNode.condition(rule.type);
      if (existing !== undefined && !this.ourReason(rule, existing.reason)) {
        if (!this.warnedForeign.has(rule.type)) {
          this.warnedForeign.add(rule.type);
          this.options.log.warn(
            { event: 'kube.conditions.foreign', type: rule.type, reason: existing.reason },
            `NodeCondition ${rule.type} belongs to another writer (reason ${existing.reason ?? 'none'}); leaving it alone`,
          );
        }
        continue;
      }
      const problems = this.problemsOf(rule);
      const hit = findings.find(
        (f) =>
          (f.cause !== undefined && rule.causes.includes(f.cause)) || problems.includes(f.problem),
      );
      const status = hit === undefined ? 'False' : 'True';
      const previous =
        this.ours.get(rule.type) ??
        (existing === undefined
          ? undefined
          : { status: existing.status, since: existing.lastTransitionTime ?? at });
      out.push({
        type: rule.type,
        status,
        reason: hit === undefined ? rule.okReason : (hit.cause ?? hit.problem),
        message: hit === undefined ? rule.okMessage : hit.title,
        lastHeartbeatTime: at,
        lastTransitionTime: previous?.status === status ? previous.since : at,
      });
    }
    return out;
  }

  /** A reason this agent would write for that condition: ours to update. */
  private ourReason(rule: ConditionRule, reason: string | undefined): boolean {
    return (
      reason === rule.okReason ||
      (rule.causes as readonly string[]).includes(reason ?? '') ||
      this.problemsOf(rule).includes(reason ?? '')
    );
  }

  private problemsOf(rule: ConditionRule): readonly string[] {
    const fromRules = this.options.ruleProblems?.().get(rule.type);
    return fromRules === undefined ? rule.problems : [...rule.problems, ...fromRules];
  }

  private async write(): Promise<void> {
    // Transition times come from the Node as it is: wait until the watch has it.
    if (this.options.ownNode.node === undefined) {
      this.schedule(1000);
      return;
    }
    this.writing = true;
    this.again = false;
    try {
      const conditions = this.desired();
      if (conditions.length === 0) {
        this.schedule(this.options.heartbeatMs);
        return;
      }
      const changed = conditions.some((c) => this.written.get(c.type) !== signature(c));
      const heartbeatDue = this.monotonic() - this.lastWriteAt >= this.options.heartbeatMs;
      if (changed || heartbeatDue) {
        await this.options.api.request({
          verb: 'patch',
          path: `/api/v1/nodes/${this.options.nodeName}/status`,
          contentType: 'application/strategic-merge-patch+json',
          body: { status: { conditions } },
        });
        this.written = new Map(conditions.map((c) => [c.type, signature(c)]));
        for (const c of conditions)
          this.ours.set(c.type, { status: c.status, since: c.lastTransitionTime ?? '' });
        this.lastWriteAt = this.monotonic();
        this.retry.reset();
        this.options.onWritten?.();
      }
      // the next heartbeat is due a period after the last write, however often we were asked
      // in between (every change of the Node asks): waiting a whole period from each would
      // stretch it
      this.schedule(Math.max(0, this.lastWriteAt + this.options.heartbeatMs - this.monotonic()));
    } catch (error) {
      if (error instanceof KubeApiError && !error.transient) {
        this.options.log.error(
          { event: 'kube.conditions.rejected', err: String(error) },
          'the API server refused the NodeConditions patch',
        );
      }
      const delay = this.retry.next(
        error instanceof KubeApiError ? (error.retryAfterSeconds ?? 0) * 1000 : 0,
      );
      this.notBefore = this.monotonic() + delay;
      this.schedule(delay);
    } finally {
      this.writing = false;
    }
    // sync() calls while this write was in flight asked for another
    if (this.wantsAgain()) this.sync();
  }

  private wantsAgain(): boolean {
    return this.again;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.sync();
    }, ms);
    this.timer.unref();
  }
}

function signature(c: NodeCondition): string {
  return `${c.status}|${c.reason ?? ''}|${c.message ?? ''}`;
}

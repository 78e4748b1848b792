// NodeConditions (opt-in, kubernetes.nodeConditions.enabled): findings that make a node
// unhealthy set a condition on the Node, True while the problem lasts and False again when it
// clears (node-problem-detector's never go back). The condition types are NPD's where NPD has
// the condition, so dashboards and alerts written for NPD keep working.
//
// Every reason the agent writes begins with "NodeAuditor" (as the kubelet's begin with
// "Kubelet"), and no other writer's does: that is how the agent tells its conditions from
// NPD's, which share the types. Taking NPD's reasons (KernelHasNoDeadlock, DockerHung) for its
// own, the agent would overwrite NPD's condition and NPD the agent's, in turn. A condition of a
// type NPD has whose reason does not begin so is another writer's: left alone for as long as it
// is there (one log line, node_auditor_node_condition_foreign 1), even one the agent wrote
// before and NPD has since written over. Two exceptions, so that an upgrade orphans nothing the
// build before the prefix wrote: a type only the agent defines (InotifyPressure) is the agent's
// whatever its reason, and the bare reasons that build wrote while True (KubeletDown), which NPD
// never writes, are still the agent's.
//
// What the agent compares with is the Node as its watch last delivered it, not what it last
// wrote: a condition removed or changed behind its back is written again at once. Not in a
// loop, though: when it is changed again soon after (a second agent on the node that sees
// otherwise, or a tool that "corrects" it), each further rewrite of that type waits longer, from
// REWRITE_FLOOR_MS doubling up to the heartbeat period; one log line and
// node_auditor_node_condition_contested 1 until it has kept the agent's value for two periods.
// Two writers that disagree then cost a patch each per heartbeat period, not thousands a second.
//
// Patched on nodes/status as a strategic merge patch: it merges conditions by type and keeps
// every other writer's (the fixtures show a JSON merge patch replaces the whole list, Ready
// included). Nothing is written before the agent's first pass is done, so a restart never
// flips a still-true condition to False and back; lastTransitionTime changes only when the
// status does. A condition is written only when a check that can raise it has run (saying
// "kubelet is healthy" needs something that looked).
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
  /** Reason (NodeAuditor and NPD's healthy reason, where NPD has one) and message while False. */
  okReason: string;
  okMessage: string;
  /**
   * node-problem-detector writes this type too (its config/*.json): a condition of it is the
   * agent's only with a reason of the agent's. A type only the agent defines is the agent's
   * whatever its reason.
   */
  sharedWithNpd: boolean;
  /**
   * The reasons the build before the NodeAuditor prefix wrote while True (the bare cause or
   * problem), none of which NPD writes for this type: still the agent's after an upgrade. Its
   * reasons while False were NPD's own (KubeletIsHealthy), which cannot be told from NPD's.
   */
  previousReasons?: readonly string[];
}

export const NODE_CONDITIONS: readonly ConditionRule[] = [
  {
    type: 'InotifyPressure',
    sources: ['inotify', 'logs'],
    causes: ['InotifyWatchesExhausted', 'InotifyInstancesExhausted'],
    problems: ['InotifyWatchesNearLimit', 'InotifyInstancesNearLimit'],
    okReason: 'NodeAuditorInotifyHasHeadroom',
    okMessage: 'inotify watches and instances are below their limits',
    sharedWithNpd: false,
  },
  {
    type: 'KernelDeadlock',
    sources: ['logs'],
    causes: [],
    problems: ['KernelDeadlock'],
    okReason: 'NodeAuditorKernelHasNoDeadlock',
    okMessage: 'kernel has no deadlock',
    sharedWithNpd: true,
    previousReasons: ['KernelDeadlock'],
  },
  {
    type: 'ReadonlyFilesystem',
    sources: ['logs'],
    causes: [],
    problems: ['ReadonlyFilesystem'],
    okReason: 'NodeAuditorFilesystemIsNotReadOnly',
    okMessage: 'Filesystem is not read-only',
    sharedWithNpd: true,
    previousReasons: ['ReadonlyFilesystem'],
  },
  {
    type: 'XfsShutdown',
    sources: ['logs'],
    causes: [],
    problems: ['XfsShutdown'],
    okReason: 'NodeAuditorXfsHasNotShutDown',
    okMessage: 'no XFS filesystem has shut down',
    sharedWithNpd: true,
    previousReasons: ['XfsShutdown'],
  },
  {
    type: 'FrequentKubeletRestart',
    sources: ['logs'],
    causes: ['KubeletCrashLoop'],
    problems: [],
    okReason: 'NodeAuditorNoFrequentKubeletRestart',
    okMessage: 'kubelet is functioning properly',
    sharedWithNpd: true,
    previousReasons: ['KubeletCrashLoop'],
  },
  {
    type: 'KubeletUnhealthy',
    sources: ['logs', 'kubelet-cert'],
    causes: ['KubeletDown', 'PLEGUnhealthy', 'KubeletClientCertExpired'],
    problems: [],
    okReason: 'NodeAuditorKubeletIsHealthy',
    okMessage: 'kubelet on the node is functioning properly',
    sharedWithNpd: true,
    previousReasons: ['KubeletDown', 'PLEGUnhealthy', 'KubeletClientCertExpired'],
  },
  {
    type: 'ContainerRuntimeUnhealthy',
    sources: ['logs', 'container-runtime'],
    causes: ['ContainerRuntimeDown'],
    problems: [],
    okReason: 'NodeAuditorContainerRuntimeIsHealthy',
    okMessage: 'Container runtime on the node is functioning properly',
    sharedWithNpd: true,
    previousReasons: ['ContainerRuntimeDown'],
  },
];

/** What begins every reason the agent writes, and no other writer's. */
export const REASON_PREFIX = 'NodeAuditor';

/** Enough to find a write's version among those delivered while its answer was on its way. */
const DELIVERED_KEPT = 16;

/**
 * How long after rewriting a condition changed behind its back the agent waits before it
 * rewrites it again, the first time; the wait doubles with each rewrite up to the heartbeat
 * period, and starts afresh once the condition has kept the agent's value for two periods.
 */
export const REWRITE_FLOOR_MS = 5000;

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
  /** A condition type is another writer's (true) and left alone, or the agent's again (false). */
  onForeign?: (type: string, foreign: boolean) => void;
  /**
   * A condition type of the agent's is changed again and again behind its back (true: its
   * rewrites are spaced out), or has kept the agent's value for two heartbeat periods (false).
   */
  onContested?: (type: string, contested: boolean) => void;
  /** The first wait between two rewrites of a contested condition (REWRITE_FLOOR_MS; tests shorten it). */
  rewriteFloorMs?: number;
  /** Wall time, for the timestamps written into the conditions only. */
  now?: () => Date;
  /** Monotonic milliseconds, for the heartbeat period and the backoff (tests may drive it). */
  monotonic?: () => number;
  rules?: readonly ConditionRule[];
  /**
   * Problems that set a condition because a log rule says so (its `condition`, as
   * node-problem-detector's "permanent" rules: DockerHung -> KernelDeadlock), by condition type,
   * from the rules in force. They count as the condition's own problems: raised (reason
   * NodeAuditorDockerHung) and cleared.
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
  /**
   * The Node's resourceVersion our last write gave it. Until the watch has delivered it, the
   * watched Node is older than our write (it may be our write before) and `written` is what the
   * Node says; from then on, the watched Node is.
   */
  private writtenAs: string | undefined;
  private caughtUp = true;
  /** The resourceVersions the watch delivered lately, newest last (a write's answer may come after its event). */
  private readonly delivered: string[] = [];
  /** Status and transition time we last wrote (fresher than the watched Node right after a write). */
  private ours = new Map<string, { status: string; since: string }>();
  /** Condition types another writer holds (said once each time one is taken). */
  private readonly foreign = new Set<string>();
  /** Condition types of ours changed behind our back lately, and how their rewrites are spaced. */
  private readonly contests = new Map<string, Contest>();
  /** No write before this (monotonic ms): the backoff after a failure, or a Retry-After. */
  private notBefore = -Infinity;
  /** When the last write succeeded (monotonic ms). */
  private lastWriteAt = -Infinity;

  constructor(options: NodeConditionsOptions) {
    this.options = options;
    this.rules = options.rules ?? NODE_CONDITIONS;
    this.now = options.now ?? (() => new Date());
    this.monotonic = options.monotonic ?? (() => performance.now());
    options.ownNode.onChange((node) => {
      const version = node?.metadata?.resourceVersion;
      if (version === undefined) return;
      if (version === this.writtenAs) this.caughtUp = true;
      this.delivered.push(version);
      if (this.delivered.length > DELIVERED_KEPT) this.delivered.shift();
    });
  }

  /** Whether the watched Node is at least as new as our last write. */
  private watchCaughtUp(): boolean {
    // the session's listener may ask for a sync before ours has seen the version
    if (this.options.ownNode.node?.metadata?.resourceVersion === this.writtenAs)
      this.caughtUp = true;
    return this.caughtUp;
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
      if (existing !== undefined && !ours(rule, existing.reason)) {
        this.markForeign(rule.type, existing.reason);
        continue;
      }
      this.markOurs(rule.type);
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
        reason: hit === undefined ? rule.okReason : `${REASON_PREFIX}${hit.cause ?? hit.problem}`,
        message: hit === undefined ? rule.okMessage : hit.title,
        lastHeartbeatTime: at,
        lastTransitionTime: previous?.status === status ? previous.since : at,
      });
    }
    return out;
  }

  private markForeign(type: string, reason: string | undefined): void {
    // what we wrote of it no longer stands: if it is ours again one day, it starts afresh
    this.written.delete(type);
    this.ours.delete(type);
    this.endContest(type);
    if (this.foreign.has(type)) return;
    this.foreign.add(type);
    this.options.onForeign?.(type, true);
    this.options.log.warn(
      { event: 'kube.conditions.foreign', type, reason },
      `NodeCondition ${type} belongs to another writer (reason ${reason ?? 'none'}, node-problem-detector's?); leaving it alone`,
    );
  }

  private markOurs(type: string): void {
    if (!this.foreign.delete(type)) return;
    this.options.onForeign?.(type, false);
    this.options.log.info(
      { event: 'kube.conditions.ours', type },
      `NodeCondition ${type} has no other writer any more; the agent writes it`,
    );
  }

  private problemsOf(rule: ConditionRule): readonly string[] {
    const fromRules = this.options.ruleProblems?.().get(rule.type);
    return fromRules === undefined ? rule.problems : [...rule.problems, ...fromRules];
  }

  /**
   * How the conditions compare with the Node (as far as we know it): whether to write now (one
   * of ours changed, or a rewrite is due), the conditions another writer changed since we wrote
   * them (a write now writes them over), and how long until a rewrite held back is due.
   */
  private compare(
    conditions: readonly NodeCondition[],
    now: number,
  ): { write: boolean; overwritten: string[]; dueInMs: number } {
    const node = this.options.ownNode;
    const caughtUp = this.watchCaughtUp();
    let write = false;
    let dueInMs = Infinity;
    const overwritten: string[] = [];
    for (const c of conditions) {
      const mine = this.written.get(c.type) === signature(c);
      if (!caughtUp) {
        if (!mine) write = true;
        continue;
      }
      const live = node.condition(c.type);
      if (live !== undefined && signature(live) === signature(c)) continue;
      // what the findings say changed: at once
      if (!mine) {
        write = true;
        continue;
      }
      // what we wrote was removed or changed behind our back: at once the first time; again
      // soon after, only once its wait since our last write is over
      const theirs = live === undefined ? 'removed' : describe(live);
      overwritten.push(c.type);
      const contest = this.contests.get(c.type);
      let due = now;
      if (contest !== undefined && now - contest.at < this.quietMs()) {
        this.sayContested(c.type, contest, theirs, c);
        due = this.lastWriteAt + contest.waitMs;
      }
      if (due <= now) write = true;
      else dueInMs = Math.min(dueInMs, due - now);
    }
    return { write, overwritten, dueInMs };
  }

  /** A condition changed behind our back was written over at `at`: the next rewrite waits longer. */
  private rewritten(type: string, at: number): void {
    let contest = this.contests.get(type);
    if (contest === undefined || at - contest.at >= this.quietMs()) {
      // once, or long after the last time: no contest (yet)
      contest = { rewrites: 0, at, waitMs: 0, said: contest?.said ?? false };
      this.contests.set(type, contest);
    }
    contest.rewrites++;
    contest.at = at;
    const cap = this.options.heartbeatMs;
    const floor = Math.min(this.options.rewriteFloorMs ?? REWRITE_FLOOR_MS, cap);
    contest.waitMs = Math.min(cap, floor * 2 ** (contest.rewrites - 1));
  }

  /** Once per contest: a condition we rewrote was changed again soon after. */
  private sayContested(type: string, contest: Contest, theirs: string, ours: NodeCondition): void {
    if (contest.said) return;
    contest.said = true;
    this.options.onContested?.(type, true);
    this.options.log.warn(
      { event: 'kube.conditions.contested', type, ours: describe(ours), theirs },
      `NodeCondition ${type} was changed again soon after the agent wrote it (${theirs}; the agent says ${describe(ours)}): another writer disagrees (a second agent on this node, or a tool correcting it?); the agent writes it again less and less often, at most once every ${seconds(this.options.heartbeatMs)}`,
    );
  }

  /** Contests over: conditions that have kept our value for two heartbeat periods. */
  private settle(conditions: readonly NodeCondition[], now: number): void {
    const node = this.options.ownNode;
    const caughtUp = this.watchCaughtUp();
    for (const [type, contest] of this.contests) {
      if (now - contest.at < this.quietMs()) continue;
      const c = conditions.find((d) => d.type === type);
      const live = node.condition(type);
      const kept =
        c !== undefined && caughtUp && live !== undefined && signature(live) === signature(c);
      // not while it still differs (a write that failed since): the next rewrite is then due
      if (c !== undefined && !kept) continue;
      this.endContest(type);
      if (c !== undefined && contest.said)
        this.options.log.info(
          { event: 'kube.conditions.uncontested', type },
          `NodeCondition ${type} has kept the agent's value for ${seconds(this.quietMs())}; nothing contests it any more`,
        );
    }
  }

  private endContest(type: string): void {
    const contest = this.contests.get(type);
    if (contest === undefined) return;
    this.contests.delete(type);
    if (contest.said) this.options.onContested?.(type, false);
  }

  /** How long a condition must keep our value before a change of it is a fresh one. */
  private quietMs(): number {
    return 2 * this.options.heartbeatMs;
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
      const now = this.monotonic();
      const heartbeatDue = now - this.lastWriteAt >= this.options.heartbeatMs;
      const { write, overwritten, dueInMs } = this.compare(conditions, now);
      if (write || heartbeatDue) {
        const answer = await this.options.api.request<{ metadata?: { resourceVersion?: string } }>({
          verb: 'patch',
          path: `/api/v1/nodes/${this.options.nodeName}/status`,
          contentType: 'application/strategic-merge-patch+json',
          body: { status: { conditions } },
        });
        this.writtenAs = answer.metadata?.resourceVersion;
        // without a version to wait for, the watched Node is taken as it comes
        this.caughtUp = this.writtenAs === undefined || this.delivered.includes(this.writtenAs);
        this.written = new Map(conditions.map((c) => [c.type, signature(c)]));
        for (const c of conditions)
          this.ours.set(c.type, { status: c.status, since: c.lastTransitionTime ?? '' });
        this.lastWriteAt = this.monotonic();
        this.retry.reset();
        for (const type of overwritten) this.rewritten(type, this.lastWriteAt);
      }
      this.settle(conditions, this.monotonic());
      // the next heartbeat is due a period after the last write, however often we were asked
      // in between (every change of the Node asks): waiting a whole period from each would
      // stretch it. A rewrite held back may be due before.
      const heartbeatIn = this.lastWriteAt + this.options.heartbeatMs - this.monotonic();
      const rewriteIn = write || heartbeatDue ? Infinity : dueInMs;
      this.schedule(Math.max(0, Math.min(heartbeatIn, rewriteIn)));
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

/** A condition of this type with this reason is the agent's to update, not another writer's. */
function ours(rule: ConditionRule, reason: string | undefined): boolean {
  if (!rule.sharedWithNpd) return true;
  if (reason === undefined) return false;
  return reason.startsWith(REASON_PREFIX) || rule.previousReasons?.includes(reason) === true;
}

function signature(c: NodeCondition): string {
  return `${c.status}|${c.reason ?? ''}|${c.message ?? ''}`;
}

/** A condition as a log line names it: "False (NodeAuditorInotifyHasHeadroom)". */
function describe(c: NodeCondition): string {
  return `${c.status} (${c.reason ?? 'no reason'})`;
}

function seconds(ms: number): string {
  return `${Math.round(ms / 1000)}s`;
}

/** A condition of ours that another writer keeps changing (see REWRITE_FLOOR_MS). */
interface Contest {
  /** Rewrites, each less than two heartbeat periods after the one before. */
  rewrites: number;
  /** When it was last written over (monotonic ms). */
  at: number;
  /** The next rewrite not before waitMs after our last write (of any kind: each writes every type). */
  waitMs: number;
  /** Logged and reported (onContested) as contested. */
  said: boolean;
}

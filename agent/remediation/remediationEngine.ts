// Remediation: when the findings call for an action the operator enabled, check every safety
// gate, then act (enforce) or say exactly what would be done (dryRun), and report the
// decision. One decision at a time; any error while deciding means doing nothing (skipped,
// with the reason). Loaded only when some action is enabled (agent.ts imports it on demand).
import type { Logger } from 'pino';
import type { RemediationActionId, RemediationSettings } from '../config/remediationSchema.ts';
import type { Finding } from '../findings/finding.ts';
import { durationMs } from '../config/duration.ts';
import { describeError } from '../errors.ts';
import type { Change, Decision, Outcome } from './decisions.ts';
import { DecisionHistory, EVENT_REASON, describeChanges, eventMessage } from './decisions.ts';
import { ACTION_KEYS, causesFixedBy, HOST_ACTIONS, hostActionTriggers } from './triggers.ts';
import type { Trigger } from './triggers.ts';

/** dryRunStands: the cooldown after the action's own dry run (gates/blockers.ts Denied). */
export type GateVerdict =
  { allowed: true } | { allowed: false; reason: string; dryRunStands?: true };

/** Held while an action runs; `stillHeld` turns false if the lock could not be renewed. */
export interface HeldLock {
  stillHeld(): boolean;
  /** Aborts when the holder steps down (renewals failed, or another agent holds it now). */
  signal: AbortSignal;
  release(): Promise<void>;
}

/** What one action does, with its host work behind it (remediation/actions/). */
export interface ActionRunner {
  /**
   * Read-only: the changes the action would make now; empty when there is nothing to do;
   * `skip` when it must not act now for a reason of its own (a kubelet that just started).
   */
  plan(): Promise<Change[] | { skip: string }>;
  /**
   * After a plan with changes: the reason apply gives when it succeeds, as far as it is known
   * before acting (a restart's duration is not). A dry run reports it, so its Event is the
   * one enforce would send, but for the dry-run mark.
   */
  expectedReason(): string;
  /**
   * Makes the planned changes, verifies them, rolls back on failure; never throws. `skipped`:
   * it found, at the last moment, that it must not act after all (nothing was changed).
   * `signal` aborts when the agent stops or the cluster lock is lost (its reason, an Error, says
   * which): an action not started yet does not start, a long wait (a kubelet's readiness) ends
   * at once, and the outcome says so. Another node may act as soon as the lock is lost.
   */
  apply(signal: AbortSignal): Promise<{
    outcome: 'applied' | 'failed' | 'skipped';
    reason: string;
    changes: Change[];
  }>;
}

export interface RemediationPorts {
  settings(): RemediationSettings;
  log: Logger;
  count(action: RemediationActionId, outcome: Outcome): void;
  /** An Event on the own Node (absent without a cluster: the decision is still logged and listed). */
  event?(reason: string, type: 'Normal' | 'Warning', message: string): void;
  /** Records the last action on the Node object (an annotation); best effort. */
  annotate?(decision: Decision): Promise<void>;
  /** The gates in the order they are asked, cheapest first; the lock comes last. */
  gates(action: RemediationActionId, dryRun: boolean): Promise<GateVerdict>;
  lock(action: RemediationActionId): Promise<HeldLock | GateVerdict>;
  /** Counts an action (or its dry run) against the rate limit and its cooldown; throws if it cannot. */
  spend(action: RemediationActionId, dryRun: boolean): Promise<void>;
  runner(action: RemediationActionId): ActionRunner;
  /** The kubelet's health as the agent sees it (healthz, or the Node's Ready): false = unhealthy. */
  kubeletHealthy(): boolean | undefined;
  now?(): Date;
}

/** How long a decision on the same findings and settings stands before it is made again. */
export const REDECIDE_MS = 60_000;

export class RemediationEngine {
  private readonly ports: RemediationPorts;
  private readonly history = new DecisionHistory();
  private queue: Promise<void> = Promise.resolve();
  private stopped = false;
  private readonly stopping = new AbortController();
  /** Per action: what it was last decided on, and when (see decideSafely). */
  private readonly lastDecided = new Map<RemediationActionId, { key: string; at: number }>();

  constructor(ports: RemediationPorts) {
    this.ports = ports;
  }

  /**
   * After a check ran, or the kubelet's health changed: decide on what the findings call for.
   * Serialized; never rejects.
   */
  evaluate(active: readonly Finding[]): Promise<void> {
    const hostTriggers = hostActionTriggers(active);
    this.queue = this.queue.then(async () => {
      for (const trigger of hostTriggers) await this.decideSafely(trigger);
      // after the host actions: a fix made just now is what a restart may follow
      const restart = this.restartTrigger(active);
      if (restart !== undefined) await this.decideSafely(restart);
    });
    return this.queue;
  }

  decisions(): Decision[] {
    return this.history.list();
  }

  /**
   * The sysctl, inotify and logs checks each call evaluate, every 30-60 s, while a finding
   * lasts: an action already decided on the same findings and settings is not decided again
   * within REDECIDE_MS. Each decision reads the host and asks the gates, some through the API
   * (the storm guard lists every Node): during a storm, every node asking three times a minute
   * would load the API server when it can least afford it.
   */
  private async decideSafely(trigger: Trigger): Promise<void> {
    if (this.stopped) return;
    const now = (this.ports.now?.() ?? new Date()).getTime();
    const key = `${trigger.findings.join('\n')}|${JSON.stringify(this.ports.settings())}`;
    const last = this.lastDecided.get(trigger.action);
    if (last !== undefined && last.key === key && now - last.at < REDECIDE_MS) return;
    this.lastDecided.set(trigger.action, { key, at: now });
    await this.decide(trigger).catch((error: unknown) => {
      this.ports.log.error(
        { event: 'remediation.error', action: trigger.action, err: error },
        `remediation ${trigger.action}: ${describeError(error)}`,
      );
    });
  }

  /**
   * restart-kubelet is called for only when the kubelet is unhealthy, a cause it does not
   * recover from by itself is reported now (inotify exhaustion: cAdvisor's watches fail at
   * start-up), and the action that removes that cause ran within recentFix and changed one of
   * its keys at runtime (a run that only wrote the file removed nothing the kubelet would find
   * on a restart). Whatever that run was called for by: the sysctl check's SysctlOutOfProfile
   * usually reaches the engine before the logs or inotify finding carrying the exhaustion, and
   * the fix it calls for is the same. Restarting a kubelet for any other reason is not ours to do.
   */
  private restartTrigger(active: readonly Finding[]): Trigger | undefined {
    const settings = this.ports.settings();
    const restart = settings.actions['restart-kubelet'];
    if (!restart.enabled || this.ports.kubeletHealthy() !== false) return undefined;
    const now = (this.ports.now?.() ?? new Date()).getTime();
    const outcomes: Outcome[] = settings.mode === 'dryRun' ? ['dry_run'] : ['applied'];
    let latest: { at: number; trigger: Trigger } | undefined;
    for (const action of HOST_ACTIONS) {
      const fix = this.history.lastAt(action, outcomes);
      if (fix === undefined) continue;
      const at = Date.parse(fix.at);
      if (now - at > durationMs(restart.recentFix)) continue;
      const keys: readonly string[] = ACTION_KEYS[action];
      if (!fix.changes.some((c) => keys.includes(c.what) && c.before !== c.after)) continue;
      const { findings, causes } = causesFixedBy(active, action);
      if (causes.length === 0) continue;
      if (latest === undefined || at >= latest.at)
        latest = { at, trigger: { action: 'restart-kubelet', findings, causes } };
    }
    return latest?.trigger;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping.abort(new Error('the agent is stopping'));
    await this.queue;
  }

  private async decide(trigger: Trigger): Promise<void> {
    const settings = this.ports.settings();
    const { action } = trigger;
    if (!settings.actions[action].enabled) return;
    const dryRun = settings.mode === 'dryRun';
    const runner = this.ports.runner(action);
    let plan: Change[] | { skip: string };
    try {
      plan = await runner.plan();
    } catch (error) {
      this.report(trigger, 'skipped', `cannot decide: ${describeError(error)}`, []);
      return;
    }
    if (!Array.isArray(plan)) {
      this.report(trigger, 'skipped', plan.skip, []);
      return;
    }
    const planned = plan;
    // A finding can outlive its cause by one check interval: nothing to change is no decision.
    if (planned.length === 0) return;

    const verdict = await this.ports.gates(action, dryRun).catch((error: unknown): GateVerdict => ({
      allowed: false,
      reason: `cannot decide: ${describeError(error)}`,
    }));
    if (!verdict.allowed) {
      // The dry run already said what enforce would do; in enforce its fix would have cleared
      // the finding, which a dry run leaves, so the finding asks again every minute. Reporting
      // that as a skip would be a Warning per node per hour about something that never ran.
      // Only for the plan that dry run reported, though: another one (br_netfilter gone since,
      // another finding) is held back by the cooldown in enforce, and is reported as a skip.
      if (verdict.dryRunStands === true && this.dryRunSaid(trigger, planned)) {
        this.ports.log.debug(
          { event: 'remediation.dry-run-stands', action, reason: verdict.reason },
          `remediation ${action}: ${verdict.reason}; the dry run reported stands`,
        );
        return;
      }
      this.report(trigger, 'skipped', verdict.reason, planned);
      return;
    }
    const mode = dryRun ? 'dryRun' : 'enforce';
    if (dryRun) {
      if (!(await this.spent(trigger, mode, planned))) return;
      // every gate is open; the cluster lock is not taken for a dry run
      this.report(trigger, 'dry_run', runner.expectedReason(), planned, mode);
      return;
    }
    const lock = await this.ports.lock(action).catch((error: unknown): GateVerdict => ({
      allowed: false,
      reason: `cannot decide: ${describeError(error)}`,
    }));
    if ('allowed' in lock) {
      this.report(trigger, 'skipped', lock.allowed ? 'lock not taken' : lock.reason, planned);
      return;
    }
    try {
      if (!lock.stillHeld()) {
        this.report(trigger, 'skipped', 'lost the remediation lock before acting', planned);
        return;
      }
      if (!(await this.spent(trigger, mode, planned))) return;
      // the lock's end too: once another node may act, this one must not go on
      const result = await runner.apply(AbortSignal.any([this.stopping.signal, lock.signal]));
      this.report(trigger, result.outcome, result.reason, result.changes, mode);
    } finally {
      await lock.release().catch((error: unknown) => {
        this.ports.log.warn(
          { event: 'remediation.lock.release-failed', err: error },
          `could not release the remediation lock (it expires by itself): ${describeError(error)}`,
        );
      });
    }
  }

  /** Whether the action's last dry run was for these findings and these changes. */
  private dryRunSaid(trigger: Trigger, planned: readonly Change[]): boolean {
    const last = this.history.lastAt(trigger.action, ['dry_run']);
    return (
      last !== undefined &&
      last.trigger.join('\n') === trigger.findings.join('\n') &&
      describeChanges(last.changes) === describeChanges(planned)
    );
  }

  /**
   * Records the action against the rate limit before acting (a crash mid-action still counts);
   * a history that cannot be written means not acting, reported as such.
   */
  private async spent(
    trigger: Trigger,
    mode: 'dryRun' | 'enforce',
    planned: Change[],
  ): Promise<boolean> {
    try {
      await this.ports.spend(trigger.action, mode === 'dryRun');
      return true;
    } catch (error) {
      this.report(trigger, 'skipped', `cannot decide: ${describeError(error)}`, planned, mode);
      return false;
    }
  }

  private report(
    trigger: Trigger,
    outcome: Outcome,
    reason: string,
    changes: Change[],
    mode: 'dryRun' | 'enforce' = this.ports.settings().mode,
  ): void {
    const at = (this.ports.now?.() ?? new Date()).toISOString();
    const fresh = {
      at,
      action: trigger.action,
      mode,
      outcome,
      reason,
      trigger: trigger.findings,
      causes: trigger.causes,
      changes,
    };
    const isNew = this.history.add(fresh);
    this.ports.count(trigger.action, outcome);
    const decision = { ...fresh, count: 1, firstAt: at };
    const message = eventMessage(decision);
    // Repeats of a decision (a gate that stays closed) are counted and aggregated into the same
    // Event, but logged at debug: one line per change of decision, not per check run.
    const level = outcome === 'failed' ? 'error' : isNew ? 'info' : 'debug';
    this.ports.log[level](
      {
        event: 'remediation.decision',
        action: trigger.action,
        mode,
        outcome,
        reason,
        trigger: trigger.findings,
        changes,
      },
      `remediation ${message}`,
    );
    // A repeat (a gate that stays closed, its numbers ticking) is counted and listed, not
    // sent again: a new Event text each minute would spend the Node's Event budget, which the
    // findings' Events share.
    if (!isNew) return;
    this.ports.event?.(
      EVENT_REASON[outcome],
      outcome === 'failed' || outcome === 'skipped' ? 'Warning' : 'Normal',
      message,
    );
    if (outcome === 'applied' || outcome === 'failed' || outcome === 'dry_run') {
      void this.ports.annotate?.(decision).catch((error: unknown) => {
        this.ports.log.warn(
          { event: 'remediation.annotate-failed', err: error },
          `could not annotate the Node with the last remediation: ${describeError(error)}`,
        );
      });
    }
  }
}

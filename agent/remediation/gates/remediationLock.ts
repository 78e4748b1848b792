// The cluster-wide remediation lock: a semaphore of `concurrency` coordination.k8s.io Leases
// (node-auditor-remediation-0, -1, ...) in the agent's namespace. An agent acts only while it
// holds one. The rules are client-go's leader election, per slot:
// - a slot is free when its holderIdentity is empty (released), or expired: its record
//   (holder, renewTime, duration) has not changed for leaseDurationSeconds as measured on THIS
//   agent's monotonic clock since it first saw that record. Wall clocks of two nodes are never
//   compared: a node whose clock is an hour off can neither steal a live lock nor keep a dead
//   one (kured's lock, by contrast, never expires by default and stays with deleted nodes).
//   Consequence: an agent that has never seen a slot before waits one TTL before taking it
//   over from a silent holder;
// - every write carries the resourceVersion read; 409 (Conflict or AlreadyExists) means another
//   agent won that slot in this round: try the next one, else deny;
// - the holder renews while it acts (a kubelet restart can take minutes) and steps down (its
//   signal aborts, `held` turns false) at the renew deadline, 2/3 of the TTL after the start of
//   its last successful renewal. Another agent takes over only a whole TTL after it last saw
//   the record change, which it saw after that renewal started: the two cannot overlap;
// - release() stops renewing, then clears holderIdentity only if the Lease is still ours
//   (checked afresh), so the next agent need not wait for the TTL.
import type { Logger } from 'pino';
import { describeError } from '../../errors.ts';
import { KubeApiError, microTime } from '../../kubernetes/kubeApi.ts';
import type { KubeApi } from '../../kubernetes/kubeApi.ts';
import { renewDeadlineMs } from '../../kubernetes/leaderLease.ts';
import type { Lease, LeaseSpec } from '../../kubernetes/leaderLease.ts';
import { cannotDecide } from './blockers.ts';

export const LOCK_LEASE_PREFIX = 'node-auditor-remediation-';

export interface RemediationLockOptions {
  api: KubeApi;
  /** The agent's namespace (its Role allows get, create and update of Leases there). */
  namespace: string;
  /** How many agents may act at once. Default 1. */
  concurrency?: number;
  /** Monotonic milliseconds (tests drive it). Default performance.now. */
  monotonic?: () => number;
  log?: Logger;
}

export interface AcquireOptions {
  /** leaseDurationSeconds: how long a dead holder can block the others. Whole seconds >= 1. */
  ttlSeconds: number;
  /** How often the holder renews. Default a fifth of the TTL (three tries before the deadline). */
  renewIntervalMs?: number;
  /** Called once when the holder steps down before release() (renewals failed, or taken). */
  onLost?: (reason: string) => void;
}

export type LockDecision =
  { allowed: true; lock: HeldRemediationLock } | { allowed: false; reason: string };

export class RemediationLock {
  readonly namespace: string;
  readonly concurrency: number;
  private readonly api: KubeApi;
  private readonly monotonic: () => number;
  private readonly log: Logger | undefined;
  /** Per slot: the record last seen and when (monotonic) it was first seen unchanged. */
  private readonly observed = new Map<string, { record: string; at: number }>();
  private current: HeldRemediationLock | undefined;

  constructor(options: RemediationLockOptions) {
    const concurrency = options.concurrency ?? 1;
    if (!Number.isInteger(concurrency) || concurrency < 1)
      throw new Error(
        `remediation lock concurrency must be a whole number >= 1, not ${concurrency}`,
      );
    this.api = options.api;
    this.namespace = options.namespace;
    this.concurrency = concurrency;
    this.monotonic = options.monotonic ?? (() => performance.now());
    this.log = options.log;
  }

  /** The lock this agent holds now, if any. */
  get held(): HeldRemediationLock | undefined {
    return this.current?.held === true ? this.current : undefined;
  }

  /**
   * Take a free or expired slot for `identity` (unique per agent pod), or say why not. Never
   * throws: any error while deciding denies ("cannot decide: ...").
   */
  async acquire(identity: string, options: AcquireOptions): Promise<LockDecision> {
    try {
      if (!Number.isInteger(options.ttlSeconds) || options.ttlSeconds < 1)
        throw new Error(
          `the remediation lock TTL must be whole seconds >= 1, not ${options.ttlSeconds}`,
        );
      if (this.current?.held === true)
        return {
          allowed: false,
          reason: `this agent already holds remediation lock ${this.current.name}`,
        };
      return await this.tryAcquire(identity, options);
    } catch (error) {
      return cannotDecide(error);
    }
  }

  private async tryAcquire(identity: string, options: AcquireOptions): Promise<LockDecision> {
    const holders: string[] = [];
    let lostRace = false;
    for (let slot = 0; slot < this.concurrency; slot++) {
      const name = `${LOCK_LEASE_PREFIX}${slot}`;
      const started = this.monotonic();
      const at = microTime(new Date());
      try {
        const current = await this.get(name);
        if (current === undefined) {
          await this.api.request<Lease>({
            verb: 'create',
            path: this.collection(),
            body: {
              apiVersion: 'coordination.k8s.io/v1',
              kind: 'Lease',
              metadata: { name, namespace: this.namespace },
              spec: {
                holderIdentity: identity,
                leaseDurationSeconds: options.ttlSeconds,
                acquireTime: at,
                renewTime: at,
                leaseTransitions: 0,
              },
            },
          });
          return this.took(name, slot, identity, options, started);
        }
        const spec = current.spec ?? {};
        const holder = spec.holderIdentity ?? '';
        if (!this.takeable(name, spec, identity, started)) {
          holders.push(holder);
          continue;
        }
        await this.api.request<Lease>({
          verb: 'update',
          path: this.path(name),
          // metadata as read, resourceVersion included: the server refuses a stale write (409)
          body: {
            ...current,
            spec: {
              holderIdentity: identity,
              leaseDurationSeconds: options.ttlSeconds,
              acquireTime: at,
              renewTime: at,
              leaseTransitions: (spec.leaseTransitions ?? 0) + (holder === identity ? 0 : 1),
            },
          },
        });
        return this.took(name, slot, identity, options, started);
      } catch (error) {
        // 409 Conflict (update) or AlreadyExists (create): another agent won this slot now
        if (error instanceof KubeApiError && error.status === 409) {
          lostRace = true;
          continue;
        }
        throw error;
      }
    }
    return { allowed: false, reason: this.busyReason(holders, lostRace) };
  }

  /**
   * Free, expired, or a leftover of this same agent pod from before a container restart (the
   * identity includes the pod UID; only one agent runs per pod, and it is not acting now).
   */
  private takeable(name: string, spec: LeaseSpec, identity: string, now: number): boolean {
    const holder = spec.holderIdentity ?? '';
    if (holder === '' || holder === identity) return true;
    const record = JSON.stringify([
      holder,
      spec.renewTime,
      spec.acquireTime,
      spec.leaseDurationSeconds,
    ]);
    const seen = this.observed.get(name);
    if (seen?.record !== record) {
      this.observed.set(name, { record, at: now });
      return false; // a record seen for the first time is live for one whole TTL from now
    }
    const ttlMs = (spec.leaseDurationSeconds ?? 0) * 1000;
    // a Lease without a duration (written by hand?) is never taken over: someone must release it
    return ttlMs > 0 && now - seen.at >= ttlMs;
  }

  private took(
    name: string,
    slot: number,
    identity: string,
    options: AcquireOptions,
    started: number,
  ): LockDecision {
    this.observed.delete(name);
    const lock = new HeldRemediationLock({
      api: this.api,
      path: this.path(name),
      name,
      slot,
      identity,
      ttlSeconds: options.ttlSeconds,
      renewIntervalMs:
        options.renewIntervalMs ?? Math.max(200, Math.floor((options.ttlSeconds * 1000) / 5)),
      monotonic: this.monotonic,
      log: this.log,
      onLost: options.onLost,
      renewedAt: started,
    });
    this.current = lock;
    this.log?.info(
      { event: 'remediation.lock.acquired', lease: `${this.namespace}/${name}`, identity },
      `remediation lock ${name} acquired`,
    );
    return { allowed: true, lock };
  }

  private busyReason(holders: string[], lostRace: boolean): string {
    const ttlNote = 'a holder that stops renewing is taken over after its TTL';
    if (holders.length === 0 && lostRace)
      return 'another agent took the remediation lock at the same moment';
    const who = holders.join(', ');
    if (this.concurrency === 1)
      return `another agent is remediating its node: the remediation lock is held by ${who}; ${ttlNote}`;
    return `${this.concurrency} nodes are being remediated: all ${this.concurrency} remediation lock slots are held (by ${who}); ${ttlNote}`;
  }

  private async get(name: string): Promise<Lease | undefined> {
    try {
      return await this.api.request<Lease>({ verb: 'get', path: this.path(name) });
    } catch (error) {
      if (error instanceof KubeApiError && error.status === 404) return undefined;
      throw error;
    }
  }

  private collection(): string {
    return `/apis/coordination.k8s.io/v1/namespaces/${this.namespace}/leases`;
  }

  private path(name: string): string {
    return `${this.collection()}/${name}`;
  }
}

interface HeldOptions {
  api: KubeApi;
  path: string;
  name: string;
  slot: number;
  identity: string;
  ttlSeconds: number;
  renewIntervalMs: number;
  monotonic: () => number;
  log: Logger | undefined;
  onLost: ((reason: string) => void) | undefined;
  /** Monotonic start of the write that took the slot. */
  renewedAt: number;
}

/** A slot this agent holds: renewed in the background until release() or a step-down. */
export class HeldRemediationLock {
  readonly name: string;
  readonly slot: number;
  readonly identity: string;
  private readonly options: HeldOptions;
  private readonly abort = new AbortController();
  private readonly deadlineMs: number;
  private renewedAt: number;
  private stopped = false;
  private renewTimer: NodeJS.Timeout | undefined;
  private stepDownTimer: NodeJS.Timeout | undefined;
  private renewing: Promise<void> = Promise.resolve();

  constructor(options: HeldOptions) {
    this.options = options;
    this.name = options.name;
    this.slot = options.slot;
    this.identity = options.identity;
    this.deadlineMs = renewDeadlineMs(options.ttlSeconds * 1000);
    this.renewedAt = options.renewedAt;
    this.armStepDown();
    this.scheduleRenewal();
  }

  /**
   * True while the go-ahead stands: not released, not stepped down, and the last successful
   * renewal started less than the renew deadline ago (on the monotonic clock, so a blocked
   * event loop that delayed the step-down timer cannot stretch it). Check before each step.
   */
  get held(): boolean {
    if (this.abort.signal.aborted) return false;
    if (this.options.monotonic() - this.renewedAt < this.deadlineMs) return true;
    this.stepDown(`could not renew remediation lock ${this.name} within ${this.deadlineMs}ms`);
    return false;
  }

  /** The same as `held`, as a method (the engine's HeldLock port). */
  stillHeld(): boolean {
    return this.held;
  }

  /** Aborts when the go-ahead ends (step-down or release); hand it to the action. */
  get signal(): AbortSignal {
    return this.abort.signal;
  }

  /**
   * Stop renewing and give the slot back if the Lease is still ours. Never throws: a Lease
   * that cannot be cleared is logged and expires after its TTL on its own.
   */
  async release(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.renewTimer);
    this.end('released');
    await this.renewing; // a renewal in flight must not re-take the Lease after we clear it
    try {
      const current = await this.options.api.request<Lease>({
        verb: 'get',
        path: this.options.path,
      });
      if (current.spec?.holderIdentity !== this.identity) return;
      await this.options.api.request({
        verb: 'update',
        path: this.options.path,
        body: {
          ...current,
          spec: { ...current.spec, holderIdentity: null, renewTime: microTime(new Date()) },
        },
      });
      this.options.log?.info(
        { event: 'remediation.lock.released', lease: this.name, identity: this.identity },
        `remediation lock ${this.name} released`,
      );
    } catch (error) {
      this.options.log?.warn(
        { event: 'remediation.lock.release-failed', lease: this.name, err: describeError(error) },
        `could not release remediation lock ${this.name}; it expires after ${this.options.ttlSeconds}s`,
      );
    }
  }

  private scheduleRenewal(): void {
    if (this.stopped) return;
    this.renewTimer = setTimeout(() => {
      this.renewing = this.renew().finally(() => {
        this.scheduleRenewal();
      });
    }, this.options.renewIntervalMs);
    this.renewTimer.unref();
  }

  private async renew(): Promise<void> {
    if (this.ending()) return;
    const started = this.options.monotonic();
    try {
      const current = await this.options.api.request<Lease>({
        verb: 'get',
        path: this.options.path,
      });
      const holder = current.spec?.holderIdentity ?? '';
      if (holder !== this.identity) {
        this.stepDown(`remediation lock ${this.name} is now held by ${holder || 'nobody'}`);
        return;
      }
      if (this.ending()) return; // released while we were asking
      await this.options.api.request({
        verb: 'update',
        path: this.options.path,
        body: {
          ...current,
          spec: {
            ...current.spec,
            leaseDurationSeconds: this.options.ttlSeconds,
            renewTime: microTime(new Date()),
          },
        },
      });
      if (this.ending()) return;
      this.renewedAt = started;
      this.armStepDown();
    } catch (error) {
      // keep trying every interval until the deadline; the step-down timer ends it
      this.options.log?.warn(
        { event: 'remediation.lock.renew-failed', lease: this.name, err: describeError(error) },
        `could not renew remediation lock ${this.name}`,
      );
    }
  }

  /** A method, not a property test: the answer changes while a renewal awaits the API. */
  private ending(): boolean {
    return this.stopped || this.abort.signal.aborted;
  }

  private armStepDown(): void {
    clearTimeout(this.stepDownTimer);
    const left = this.deadlineMs - (this.options.monotonic() - this.renewedAt);
    this.stepDownTimer = setTimeout(
      () => {
        this.stepDown(`could not renew remediation lock ${this.name} within ${this.deadlineMs}ms`);
      },
      Math.max(0, left),
    );
    this.stepDownTimer.unref();
  }

  private stepDown(reason: string): void {
    if (this.abort.signal.aborted) return;
    this.stopped = true;
    clearTimeout(this.renewTimer);
    this.end(reason);
    this.options.log?.warn(
      { event: 'remediation.lock.lost', lease: this.name, identity: this.identity, why: reason },
      `stepped down: ${reason}`,
    );
    this.options.onLost?.(reason);
  }

  private end(reason: string): void {
    clearTimeout(this.stepDownTimer);
    if (!this.abort.signal.aborted) this.abort.abort(new Error(reason));
  }
}

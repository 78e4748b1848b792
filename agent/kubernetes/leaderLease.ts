// One agent in the cluster runs the cluster-scoped audits: the holder of a coordination.k8s.io
// Lease, with client-go's leader-election rules:
// - two leaders at once must not happen. The holder steps down on a timer at renewDeadline
//   (2/3 of the lease) after the start of its last successful renewal, whether or not its
//   current request has returned; another agent takes over only leaseDuration after it last
//   saw the record change. Since the server stored our renewal after we started it, the two
//   windows cannot overlap;
// - all those durations use a monotonic clock (performance.now), never wall time: an NTP step
//   cannot steal or keep a lease; wall time only goes into the Lease's MicroTime fields;
// - the identity is this pod's, not this node's: during a rolling update two agent pods can
//   run on one node;
// - updates carry the resourceVersion read: a 409 Conflict means someone else won this round;
// - on shutdown the loop stops first, then the holder (checked afresh) releases the Lease, so
//   a successor need not wait.
import type { Logger } from 'pino';
import { Backoff, sleep } from './backoff.ts';
import { KubeApiError, microTime } from './kubeApi.ts';
import type { KubeApi } from './kubeApi.ts';

export interface LeaseSpec {
  holderIdentity?: string | null;
  leaseDurationSeconds?: number;
  acquireTime?: string | null;
  renewTime?: string | null;
  leaseTransitions?: number;
}

export interface Lease {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
  spec?: LeaseSpec;
}

export interface LeaderLeaseOptions {
  api: KubeApi;
  namespace: string;
  name: string;
  /** Unique per agent pod (node name plus pod UID). */
  identity: string;
  leaseDurationMs: number;
  /** How often the holder renews, and how often the others look. Must be under the renew deadline. */
  retryMs: number;
  log: Logger;
  onChange?: (leader: boolean) => void;
  /** Monotonic milliseconds (tests may drive it). */
  monotonic?: () => number;
}

/** client-go's defaults are 15 s / 10 s / 2 s: the renew deadline is two thirds of the lease. */
export function renewDeadlineMs(leaseDurationMs: number): number {
  return Math.floor((leaseDurationMs * 2) / 3);
}

export class LeaderLease {
  private readonly options: LeaderLeaseOptions;
  private readonly monotonic: () => number;
  private leader = false;
  private stopping = false;
  private observed: string | undefined;
  private observedAt = 0;
  private stepDown: NodeJS.Timeout | undefined;

  constructor(options: LeaderLeaseOptions) {
    this.options = options;
    this.monotonic = options.monotonic ?? (() => performance.now());
  }

  get isLeader(): boolean {
    return this.leader;
  }

  /** Renew or try to acquire every retry period until the signal aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const followerBackoff = new Backoff({
      baseMs: this.options.retryMs,
      maxMs: this.options.leaseDurationMs,
    });
    // one warning per outage, not one per retry (an identity without rights on the Lease
    // fails every retry for as long as it runs); every failed call is still counted in
    // node_auditor_kube_api_errors_total
    let failing = false;
    while (!signal.aborted && !this.stopping) {
      let wait = this.options.retryMs;
      try {
        await this.tryAcquireOrRenew(signal);
        followerBackoff.reset();
        if (failing)
          this.options.log.info(
            { event: 'kube.lease.recovered', lease: this.lease() },
            'leader lease: requests work again',
          );
        failing = false;
      } catch (error) {
        if (!(error instanceof KubeApiError && error.status === 409)) {
          if (!failing)
            this.options.log.warn(
              { event: 'kube.lease.error', lease: this.lease(), err: String(error) },
              'leader lease: request failed; retrying with backoff',
            );
          failing = true;
          // a leader keeps trying every period until its deadline; a follower backs off
          if (!this.leader) wait = followerBackoff.next();
        }
      }
      // jitter keeps a fleet of followers from asking in step
      await sleep(this.leader ? wait : wait * (0.8 + Math.random() * 0.4), signal);
    }
  }

  /** After run() has returned: give the Lease up if we still hold it, so another takes over now. */
  async release(): Promise<void> {
    this.stopping = true;
    const wasLeader = this.leader;
    this.setLeader(false, 'shutting down');
    if (!wasLeader) return;
    try {
      const current = await this.options.api.request<Lease>({ verb: 'get', path: this.path() });
      if (current.spec?.holderIdentity !== this.options.identity) return;
      const at = microTime(new Date());
      await this.options.api.request({
        verb: 'update',
        path: this.path(),
        body: {
          ...current,
          spec: {
            ...current.spec,
            holderIdentity: null,
            leaseDurationSeconds: 1,
            renewTime: at,
            acquireTime: at,
          },
        },
      });
    } catch (error) {
      this.options.log.warn(
        { event: 'kube.lease.release-failed', err: String(error) },
        'could not release the leader lease; it expires on its own',
      );
    }
  }

  private async tryAcquireOrRenew(signal: AbortSignal): Promise<void> {
    const started = this.monotonic();
    const at = microTime(new Date());
    const durationSeconds = Math.ceil(this.options.leaseDurationMs / 1000);
    let current: Lease;
    try {
      current = await this.options.api.request<Lease>({ verb: 'get', path: this.path(), signal });
    } catch (error) {
      if (!(error instanceof KubeApiError && error.status === 404)) throw error;
      await this.options.api.request<Lease>({
        verb: 'create',
        path: this.collection(),
        signal,
        body: {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: this.options.name, namespace: this.options.namespace },
          spec: {
            holderIdentity: this.options.identity,
            leaseDurationSeconds: durationSeconds,
            acquireTime: at,
            renewTime: at,
            leaseTransitions: 0,
          },
        },
      });
      this.renewed(started);
      return;
    }
    const spec = current.spec ?? {};
    const record = JSON.stringify([spec.holderIdentity, spec.renewTime, spec.leaseDurationSeconds]);
    if (record !== this.observed) {
      this.observed = record;
      this.observedAt = started;
    }
    const holder = spec.holderIdentity ?? '';
    const mine = holder === this.options.identity;
    const heldFor = (spec.leaseDurationSeconds ?? durationSeconds) * 1000;
    if (!mine && holder !== '' && this.observedAt + heldFor > started) {
      if (this.leader) this.setLeader(false, `held by ${holder}`);
      return;
    }
    await this.options.api.request<Lease>({
      verb: 'update',
      path: this.path(),
      signal,
      body: {
        ...current,
        spec: {
          holderIdentity: this.options.identity,
          leaseDurationSeconds: durationSeconds,
          acquireTime: mine ? spec.acquireTime : at,
          renewTime: at,
          leaseTransitions: mine ? (spec.leaseTransitions ?? 0) : (spec.leaseTransitions ?? 0) + 1,
        },
      },
    });
    this.renewed(started);
  }

  /** A renewal that started at `started` succeeded: leader until its renew deadline. */
  private renewed(started: number): void {
    if (this.stopping) return; // a renewal that raced with shutdown does not make us leader
    this.observed = undefined; // our own write is the new record
    clearTimeout(this.stepDown);
    const left = renewDeadlineMs(this.options.leaseDurationMs) - (this.monotonic() - started);
    this.stepDown = setTimeout(
      () => {
        this.setLeader(
          false,
          `could not renew within ${renewDeadlineMs(this.options.leaseDurationMs) / 1000}s`,
        );
      },
      Math.max(0, left),
    );
    this.stepDown.unref();
    if (!this.leader) this.setLeader(true, 'acquired');
  }

  private setLeader(leader: boolean, why: string): void {
    if (!leader) clearTimeout(this.stepDown);
    if (leader === this.leader) return;
    this.leader = leader;
    this.options.log.info(
      {
        event: leader ? 'kube.lease.acquired' : 'kube.lease.lost',
        lease: this.lease(),
        identity: this.options.identity,
        why,
      },
      leader ? 'this agent is the leader' : 'this agent is no longer the leader',
    );
    this.options.onChange?.(leader);
  }

  private lease(): string {
    return `${this.options.namespace}/${this.options.name}`;
  }

  private collection(): string {
    return `/apis/coordination.k8s.io/v1/namespaces/${this.options.namespace}/leases`;
  }

  private path(): string {
    return `${this.collection()}/${this.options.name}`;
  }
}

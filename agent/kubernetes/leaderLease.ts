// One agent in the cluster runs the cluster-scoped audits: the holder of a coordination.k8s.io
// Lease, as client-go's leader election does it:
// - expiry is judged by when this agent last saw the record change (observedAt), never by the
//   holder's clock written in renewTime, so clock skew between nodes cannot steal a lease;
// - a holder that stops renewing is replaced after leaseDuration; a holder that cannot renew
//   within leaseDuration steps down on its own;
// - updates carry the resourceVersion read: a 409 Conflict means someone else won this round;
// - on shutdown the holder releases it (holder cleared), so a successor need not wait.
// MicroTime fields need exactly six fractional digits (microTime()).
import type { Logger } from 'pino';
import { Backoff, sleep } from './backoff.ts';
import { KubeApiError, microTime } from './kubeApi.ts';
import type { KubeApi } from './kubeApi.ts';

interface LeaseSpec {
  holderIdentity?: string | null;
  leaseDurationSeconds?: number;
  acquireTime?: string | null;
  renewTime?: string | null;
  leaseTransitions?: number;
}

interface Lease {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
  spec?: LeaseSpec;
}

export interface LeaderLeaseOptions {
  api: KubeApi;
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs: number;
  /** How often the holder renews, and how often others look. */
  retryMs: number;
  log: Logger;
  onChange?: (leader: boolean) => void;
  now?: () => number;
}

export class LeaderLease {
  private readonly options: LeaderLeaseOptions;
  private readonly now: () => number;
  private leader = false;
  private observed: string | undefined;
  private observedAt = 0;
  private lastRenew = 0;
  private lease: Lease | undefined;

  constructor(options: LeaderLeaseOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
  }

  get isLeader(): boolean {
    return this.leader;
  }

  get holder(): string | undefined {
    return this.lease?.spec?.holderIdentity ?? undefined;
  }

  async run(signal: AbortSignal): Promise<void> {
    const backoff = new Backoff({
      baseMs: this.options.retryMs,
      maxMs: this.options.leaseDurationMs,
    });
    while (!signal.aborted) {
      let wait = this.options.retryMs;
      try {
        await this.tryAcquireOrRenew();
        backoff.reset();
      } catch (error) {
        if (this.leader && this.now() - this.lastRenew > this.options.leaseDurationMs) {
          this.setLeader(false, `could not renew for ${this.options.leaseDurationMs / 1000}s`);
        }
        if (!(error instanceof KubeApiError && error.status === 409)) {
          this.options.log.warn(
            { event: 'kube.lease.error', err: String(error) },
            'leader lease: request failed',
          );
          wait = backoff.next();
        }
      }
      // jitter keeps a fleet of followers from asking in step
      await sleep(this.leader ? wait : wait * (0.8 + Math.random() * 0.4), signal);
    }
  }

  /** Give the lease up (shutdown), so another agent takes over at once. */
  async release(): Promise<void> {
    if (!this.leader || this.lease === undefined) return;
    this.setLeader(false, 'released');
    const at = microTime(new Date(this.now()));
    try {
      await this.options.api.request({
        verb: 'update',
        path: this.path(),
        body: {
          ...this.lease,
          spec: {
            ...this.lease.spec,
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

  private async tryAcquireOrRenew(): Promise<void> {
    const now = this.now();
    const at = microTime(new Date(now));
    const durationSeconds = Math.ceil(this.options.leaseDurationMs / 1000);
    let current: Lease;
    try {
      current = await this.options.api.request<Lease>({ verb: 'get', path: this.path() });
    } catch (error) {
      if (!(error instanceof KubeApiError && error.status === 404)) throw error;
      this.lease = await this.options.api.request<Lease>({
        verb: 'create',
        path: this.collection(),
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
      this.renewed(now);
      return;
    }
    this.lease = current;
    const spec = current.spec ?? {};
    const record = JSON.stringify([spec.holderIdentity, spec.renewTime, spec.leaseDurationSeconds]);
    if (record !== this.observed) {
      this.observed = record;
      this.observedAt = now;
    }
    const holder = spec.holderIdentity ?? '';
    const mine = holder === this.options.identity;
    const heldFor = (spec.leaseDurationSeconds ?? durationSeconds) * 1000;
    if (!mine && holder !== '' && this.observedAt + heldFor > now) {
      if (this.leader) this.setLeader(false, `held by ${holder}`);
      return;
    }
    this.lease = await this.options.api.request<Lease>({
      verb: 'update',
      path: this.path(),
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
    this.renewed(now);
  }

  private renewed(now: number): void {
    this.lastRenew = now;
    this.observed = undefined; // our own write is the new record
    if (!this.leader) this.setLeader(true, 'acquired');
  }

  private setLeader(leader: boolean, why: string): void {
    this.leader = leader;
    this.options.log.info(
      {
        event: leader ? 'kube.lease.acquired' : 'kube.lease.lost',
        lease: `${this.options.namespace}/${this.options.name}`,
        why,
      },
      leader ? 'this agent is the leader' : 'this agent is no longer the leader',
    );
    this.options.onChange?.(leader);
  }

  private collection(): string {
    return `/apis/coordination.k8s.io/v1/namespaces/${this.options.namespace}/leases`;
  }

  private path(): string {
    return `${this.collection()}/${this.options.name}`;
  }
}

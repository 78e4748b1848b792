// A live connection to the cluster: the own-Node and pods-on-this-node watches, Events,
// NodeConditions, the leader Lease. Loaded only when there is a cluster (kubernetesIntegration.ts
// imports it on demand). An API that is down or slow never blocks a check or a scrape: all of
// this runs beside them and retries with backoff.
import path from 'node:path';
import { durationMs } from '../config/duration.ts';
import type { Finding } from '../findings/finding.ts';
import { EventRecorder } from '../sinks/kubernetes/eventRecorder.ts';
import { attachFindingEvents, resolveGoneIncidents } from '../sinks/kubernetes/findingEvents.ts';
import { NodeConditions } from '../sinks/kubernetes/nodeConditions.ts';
import { EVENT_NAMESPACE } from './permissions.ts';
import type { ClusterService } from '../checks/check.ts';
import type { RemediationCluster } from '../remediation/remediationSetup.ts';
import { clusterService } from './clusterService.ts';
import { openKubeApi } from './kubeApi.ts';
import type { KubeApi } from './kubeApi.ts';
import { KubeletFallback } from './kubeletHealth.ts';
import type { KubeSource } from './kubeDiscovery.ts';
import { LeaderLease } from './leaderLease.ts';
import type { KubernetesIntegrationOptions } from './kubernetesIntegration.ts';
import { OwnNode } from './ownNode.ts';
import { PodsOnNode } from './podsOnNode.ts';

/** What the integration passes on (the ServiceAccount's place was only needed to find the API). */
export type KubernetesSessionOptions = Omit<KubernetesIntegrationOptions, 'serviceAccountDir'>;

export class KubernetesSession {
  readonly ownNode = new OwnNode();
  readonly pods = new PodsOnNode();
  /** What the security checks use of the cluster. */
  readonly cluster: ClusterService;
  /** One line for people: where the API is. */
  readonly status: string;
  private readonly abort = new AbortController();
  private readonly api: KubeApi;
  private readonly tasks: Promise<void>[] = [];
  private recorder: EventRecorder | undefined;
  private conditions: NodeConditions | undefined;
  private lease: LeaderLease | undefined;
  private fallback: KubeletFallback | undefined;
  private namespace = 'node-auditor';
  private identity = '';

  private constructor(status: string, api: KubeApi, options: KubernetesSessionOptions) {
    this.status = status;
    this.api = api;
    const electing = options.config.kubernetes.leaderElection.enabled;
    this.cluster = clusterService(api, {
      nodeName: options.config.nodeName,
      // without election every agent is its own leader (one node, or the operator's choice)
      isLeader: () => !electing || this.isLeader,
      watchedNode: () => this.ownNode.node as Record<string, unknown> | undefined,
    });
  }

  /** Throws AuditorError for a kubeconfig that cannot be used (a configuration error). */
  static async start(
    options: KubernetesSessionOptions,
    source: KubeSource,
  ): Promise<KubernetesSession> {
    const { config, log, metrics } = options;
    const api = await openKubeApi(source, {
      timeoutMs: durationMs(config.kubernetes.requestTimeout),
      log,
      onError: (verb) => {
        metrics.inc('node_auditor_kube_api_errors_total', { verb });
      },
    });
    const { access } = api;
    const session = new KubernetesSession(
      `${access.server.origin} (${access.source})`,
      api,
      options,
    );
    await session.startParts(options, api, access.namespace);
    return session;
  }

  get isLeader(): boolean {
    return this.lease?.isLeader ?? false;
  }

  /** What remediation uses: the API, the agent's namespace and identity, Events on the Node. */
  get remediation(): RemediationCluster {
    return {
      api: this.api,
      namespace: this.namespace,
      identity: this.identity,
      event: (reason, type, message) => {
        this.recorder?.record(reason, type, message);
      },
    };
  }

  /** A result of the agent's kubelet healthz probe (readiness while the Node watch fails). */
  observeKubelet(healthy: boolean): void {
    this.fallback?.observe(healthy);
  }

  afterFirstPass(active: readonly Finding[], failedChecks: ReadonlySet<string>): void {
    if (this.recorder !== undefined) resolveGoneIncidents(this.recorder, active, failedChecks);
    this.conditions?.start();
  }

  async stop(): Promise<void> {
    this.conditions?.stop();
    this.fallback?.stop();
    // the loops first: a renewal in flight must not re-take the Lease after it is released
    this.abort.abort();
    await Promise.allSettled(this.tasks);
    await this.lease?.release();
    await this.recorder?.stop();
    this.api.close();
  }

  private async startParts(
    options: KubernetesSessionOptions,
    api: KubeApi,
    accessNamespace: string | undefined,
  ): Promise<void> {
    const { config, env, log, metrics, store } = options;
    const settings = config.kubernetes;
    const setReady = (ready: boolean) => {
      metrics.set('node_auditor_node_ready', ready ? 1 : 0);
      options.onReady?.(ready);
    };
    const signal = this.abort.signal;
    const node = config.nodeName;

    let warnedMissing = false;
    this.ownNode.onChange((object) => {
      setReady(this.ownNode.ready === true);
      if (object === undefined && !warnedMissing) {
        warnedMissing = true;
        log.warn(
          { event: 'kube.node.missing', node },
          `Node ${node} does not exist in the cluster (is --node-name right?)`,
        );
      }
      this.conditions?.sync();
    });
    const health = (resource: string) => (healthy: boolean) => {
      metrics.set('node_auditor_kube_watch_healthy', healthy ? 1 : 0, { resource });
    };
    // Without a working Node watch, readiness would freeze at its last value (during an outage
    // of the API, that is, when it matters): after a while, ask the local kubelet instead.
    const kubeletFallback = new KubeletFallback((ok) => {
      setReady(ok);
    });
    const nodeHealth = (healthy: boolean) => {
      health('node')(healthy);
      if (healthy) {
        kubeletFallback.stop();
        setReady(this.ownNode.ready === true);
      } else {
        kubeletFallback.start();
      }
    };
    this.fallback = kubeletFallback;
    this.tasks.push(this.ownNode.run(api, node, log, signal, nodeHealth));
    this.tasks.push(this.pods.run(api, node, log, signal, health('pods')));

    if (settings.events.enabled) {
      const recorder = new EventRecorder({
        api,
        nodeName: node,
        nodeUid: () => this.ownNode.uid,
        namespace: EVENT_NAMESPACE,
        burst: settings.events.burst,
        refillMs: durationMs(settings.events.refillInterval),
        queueLimit: settings.events.queueSize,
        statePath: path.join(config.stateDir, 'events.json'),
        log,
        onSent: (operation) => {
          metrics.inc('node_auditor_kube_events_sent_total', { operation });
        },
        onDropped: (reason) => {
          metrics.inc('node_auditor_kube_events_dropped_total', { reason });
        },
      });
      await recorder.load();
      attachFindingEvents(store, recorder);
      metrics.onScrape(() => {
        metrics.set('node_auditor_kube_events_pending', recorder.pending);
      });
      this.recorder = recorder;
    }

    if (settings.nodeConditions.enabled) {
      const conditions = new NodeConditions({
        api,
        nodeName: node,
        ownNode: this.ownNode,
        findings: () => store.active(),
        checksRun: options.checksRun,
        heartbeatMs: durationMs(settings.nodeConditions.heartbeatInterval),
        log,
        onForeign: (type, foreign) => {
          metrics.set('node_auditor_node_condition_foreign', foreign ? 1 : 0, { type });
        },
        onContested: (type, contested) => {
          metrics.set('node_auditor_node_condition_contested', contested ? 1 : 0, { type });
        },
        ...(options.conditionProblems === undefined
          ? {}
          : { ruleProblems: options.conditionProblems }),
      });
      store.onTransition(() => {
        conditions.sync();
      });
      this.conditions = conditions;
    }

    this.namespace =
      settings.namespace ?? accessNamespace ?? nonEmpty(env.POD_NAMESPACE) ?? 'node-auditor';
    // this pod, not this node: during a rolling update two agents can share a node
    this.identity = `${node}_${nonEmpty(env.POD_UID) ?? randomSuffix()}`;
    if (settings.leaderElection.enabled) {
      this.lease = new LeaderLease({
        api,
        namespace: this.namespace,
        name: settings.leaderElection.leaseName,
        identity: this.identity,
        leaseDurationMs: durationMs(settings.leaderElection.leaseDuration),
        retryMs: durationMs(settings.leaderElection.retryPeriod),
        log,
        onChange: (leader) => {
          metrics.set('node_auditor_leader', leader ? 1 : 0);
          options.onLeaderChange?.(leader);
        },
      });
      this.tasks.push(this.lease.run(signal));
    }
  }
}

function randomSuffix(): string {
  return Math.random().toString(36).slice(2, 10);
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

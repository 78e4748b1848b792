// Everything the agent says to the cluster and learns from it, started once and shared.
// Without a cluster it is one log line, and node_auditor_node_ready comes from the kubelet's
// healthz; every local check runs the same either way. The Kubernetes code itself
// (kubernetesSession.ts: client, watches, Events, NodeConditions, Lease) is loaded only when a
// cluster is there: a node without one does not pay its memory.
import type { Logger } from 'pino';
import type { ClusterService } from '../checks/check.ts';
import type { RemediationCluster } from '../remediation/remediationSetup.ts';
import type { Config } from '../config/configSchema.ts';
import type { Finding } from '../findings/finding.ts';
import type { FindingStore } from '../findings/findingStore.ts';
import type { MetricsSink } from '../sinks/metrics/metricsSink.ts';
import { discoverKube } from './kubeDiscovery.ts';
import { probeKubeletHealth } from './kubeletHealth.ts';
import type { KubernetesSession } from './kubernetesSession.ts';
import type { OwnNode } from './ownNode.ts';
import type { PodsOnNode } from './podsOnNode.ts';

const KUBELET_PROBE_MS = 10_000;

export interface KubernetesIntegrationOptions {
  /** Checks that have run without failing (NodeConditions speak only for those). */
  checksRun: () => ReadonlySet<string>;
  config: Readonly<Config>;
  env: NodeJS.ProcessEnv;
  log: Logger;
  metrics: MetricsSink;
  store: FindingStore;
  /** Where the pod's ServiceAccount is mounted (tests use a directory of their own). */
  serviceAccountDir?: string;
  /** Readiness as node_auditor_node_ready says it: the Node's Ready condition, or kubelet's healthz. */
  onReady?: (ready: boolean) => void;
  /** Problems that set a NodeCondition because a log rule in force says so, by condition type. */
  conditionProblems?: () => ReadonlyMap<string, readonly string[]>;
  /** This agent took or lost the leader Lease (the cluster-wide checks run on the leader). */
  onLeaderChange?: (leader: boolean) => void;
  /** The local kubelet's healthz, probed every 10 s whether or not there is a cluster. */
  onKubeletHealth?: (healthy: boolean) => void;
}

export class KubernetesIntegration {
  /** One line for people: where the API is, or why Kubernetes features are off. */
  readonly status: string;
  /** Why Kubernetes features are off (no API); undefined when on. */
  readonly offReason?: string;
  private readonly session: KubernetesSession | undefined;
  private probe: NodeJS.Timeout | undefined;

  private constructor(status: string, session: KubernetesSession | undefined, offReason?: string) {
    this.status = status;
    this.session = session;
    if (offReason !== undefined) this.offReason = offReason;
  }

  /** Throws only for a kubeconfig that cannot be used (a configuration error). */
  static async start(options: KubernetesIntegrationOptions): Promise<KubernetesIntegration> {
    const { config, log, metrics } = options;
    const found = await discoverKube({
      kubeconfig: config.kubeconfig,
      env: options.env,
      ...(options.serviceAccountDir === undefined
        ? {}
        : { serviceAccountDir: options.serviceAccountDir }),
    });
    if (found.kind === 'none') {
      log.info(
        { event: 'kube.off', reason: found.reason },
        `Kubernetes features off: ${found.reason}`,
      );
      const off = new KubernetesIntegration(`off (${found.reason})`, undefined, found.reason);
      // Without an API, kubelet's healthz is the node's readiness too.
      off.probeKubelet(config.kubernetes.kubeletHealthzUrl, (healthy) => {
        metrics.set('node_auditor_node_ready', healthy ? 1 : 0);
        options.onReady?.(healthy);
        options.onKubeletHealth?.(healthy);
      });
      return off;
    }
    const { KubernetesSession } = await import('./kubernetesSession.ts');
    const session = await KubernetesSession.start(options, found.source);
    const on = new KubernetesIntegration(session.status, session);
    // A kubelet that just died is unhealthy before the Node turns NotReady (the node monitor
    // grace period): the NotReady cause attribution wants to know at once.
    on.probeKubelet(config.kubernetes.kubeletHealthzUrl, (healthy) => {
      options.onKubeletHealth?.(healthy);
      session.observeKubelet(healthy);
    });
    return on;
  }

  get connected(): boolean {
    return this.session !== undefined;
  }

  get isLeader(): boolean {
    return this.session?.isLeader ?? false;
  }

  get ownNode(): OwnNode | undefined {
    return this.session?.ownNode;
  }

  get pods(): PodsOnNode | undefined {
    return this.session?.pods;
  }

  get cluster(): ClusterService | undefined {
    return this.session?.cluster;
  }

  /** What remediation uses of the cluster; undefined without one. */
  get remediation(): RemediationCluster | undefined {
    return this.session?.remediation;
  }

  /** The first pass is done: the findings are current, so Events and conditions can catch up. */
  afterFirstPass(active: readonly Finding[], failedChecks: ReadonlySet<string>): void {
    this.session?.afterFirstPass(active, failedChecks);
  }

  async stop(): Promise<void> {
    clearInterval(this.probe);
    await this.session?.stop();
  }

  private probeKubelet(url: string, report: (healthy: boolean) => void): void {
    const once = async () => {
      report(await probeKubeletHealth(url));
    };
    void once();
    this.probe = setInterval(() => void once(), KUBELET_PROBE_MS);
    this.probe.unref();
  }
}

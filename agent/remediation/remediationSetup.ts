// The engine with the real parts behind it: the safety gates (gates/), the cluster lock, the
// host actions and systemd over D-Bus. The agent imports this module only when an action is
// enabled, so a read-only agent never loads any of it.
import type { Logger } from 'pino';
import { durationMs } from '../config/duration.ts';
import type { RemediationActionId, RemediationSettings } from '../config/remediationSchema.ts';
import { HostRoot } from '../host/hostRoot.ts';
import type { KubeApi } from '../kubernetes/kubeApi.ts';
import { hostActionRunner } from './actions/hostActionRunner.ts';
import { restartKubeletRunner } from './actions/restartKubelet.ts';
import type { Decision, Outcome } from './decisions.ts';
import { checkControlPlane, checkPrometheusAlerts } from './gates/blockers.ts';
import type { GateDecision } from './gates/blockers.ts';
import { checkMaintenanceWindow } from './gates/maintenanceWindow.ts';
import { RemediationRateLimit } from './gates/rateLimit.ts';
import { RemediationLock } from './gates/remediationLock.ts';
import { checkStormGuard } from './gates/stormGuard.ts';
import { RemediationEngine } from './remediationEngine.ts';
import type { ActionRunner, GateVerdict, HeldLock } from './remediationEngine.ts';
import { connectSystemd } from './systemd.ts';

/** What remediation uses of the cluster (kubernetes/kubernetesSession.ts provides it). */
export interface RemediationCluster {
  api: KubeApi;
  /** The agent's namespace: the lock's Leases live there. */
  namespace: string;
  /** This agent pod (node name and pod UID), as the leader Lease's holder identity. */
  identity: string;
  event(reason: string, type: 'Normal' | 'Warning', message: string): void;
}

export interface RemediationSetupOptions {
  settings(): RemediationSettings;
  hostRoot: string;
  nodeName: string;
  stateDir: string;
  log: Logger;
  count(action: RemediationActionId, outcome: Outcome): void;
  /** Absent or undefined: no API, so no action (the storm guard cannot count NotReady nodes). */
  cluster(): RemediationCluster | undefined;
  /** The agent's kubelet healthz probe: false while it fails. */
  kubeletHealthy(): boolean | undefined;
  /** The own Node's Ready condition, from the Node watch. */
  nodeReady(): boolean | undefined;
}

/** The annotation on the Node naming the last remediation (JSON: at, action, mode, outcome, reason). */
export const LAST_REMEDIATION_ANNOTATION = 'node-auditor/last-remediation';

const NO_API =
  'no Kubernetes API: the storm guard cannot count NotReady nodes and the cluster lock cannot be taken';

export function createRemediation(options: RemediationSetupOptions): RemediationEngine {
  const host = new HostRoot(options.hostRoot);
  let rateLimit: { key: string; limit: RemediationRateLimit } | undefined;
  let lock: { key: string; lock: RemediationLock } | undefined;

  // Rebuilt when the settings they depend on change in a reload.
  const limiter = (settings: RemediationSettings): RemediationRateLimit => {
    const cooldownsMs = Object.fromEntries(
      Object.entries(settings.actions).map(([id, action]) => [id, durationMs(action.cooldown)]),
    );
    const key = JSON.stringify([settings.rateLimit, cooldownsMs]);
    if (rateLimit?.key !== key) {
      rateLimit = {
        key,
        limit: new RemediationRateLimit({
          stateDir: options.stateDir,
          maxActionsPerHour: settings.rateLimit.maxActionsPerHour,
          cooldownsMs,
        }),
      };
    }
    return rateLimit.limit;
  };
  const lockFor = (cluster: RemediationCluster, settings: RemediationSettings): RemediationLock => {
    const key = JSON.stringify([cluster.namespace, settings.lock.concurrency]);
    if (lock?.key !== key) {
      lock = {
        key,
        lock: new RemediationLock({
          api: cluster.api,
          namespace: cluster.namespace,
          concurrency: settings.lock.concurrency,
          log: options.log,
        }),
      };
    }
    return lock.lock;
  };

  const gates = async (action: RemediationActionId, dryRun: boolean): Promise<GateVerdict> => {
    const settings = options.settings();
    const steps: (() => Promise<GateDecision>)[] = [
      () => limiter(settings).check(action, { dryRun }),
      () =>
        checkMaintenanceWindow(
          settings.maintenanceWindow && {
            schedule: settings.maintenanceWindow.cron,
            timeZone: settings.maintenanceWindow.timeZone,
          },
        ),
    ];
    const cluster = options.cluster();
    if (cluster === undefined) return { allowed: false, reason: NO_API };
    steps.push(
      () =>
        checkControlPlane({
          api: cluster.api,
          nodeName: options.nodeName,
          allowControlPlane: settings.allowControlPlane,
        }),
      () =>
        checkStormGuard({
          api: cluster.api,
          maxUnhealthyShare: settings.stormGuard.maxUnhealthyPercent / 100,
        }),
    );
    const alerts = settings.blockingAlerts;
    if (alerts !== undefined) {
      steps.push(() =>
        checkPrometheusAlerts({
          url: alerts.prometheusUrl,
          alerts: alerts.alerts.map((name) => ({ name })),
          timeoutMs: durationMs(alerts.timeout),
        }),
      );
    }
    for (const step of steps) {
      const verdict = await step();
      if (!verdict.allowed) return verdict;
    }
    return { allowed: true };
  };

  const takeLock = async (): Promise<HeldLock | GateVerdict> => {
    const settings = options.settings();
    const cluster = options.cluster();
    if (cluster === undefined) return { allowed: false, reason: NO_API };
    const decision = await lockFor(cluster, settings).acquire(cluster.identity, {
      ttlSeconds: Math.ceil(durationMs(settings.lock.ttl) / 1000),
    });
    if (!decision.allowed) return decision;
    const held = decision.lock;
    return {
      stillHeld: () => held.held,
      signal: held.signal,
      release: async () => {
        await held.release();
      },
    };
  };

  // br_netfilter is loaded as systemd loads modules at boot: the modules-load.d file is
  // written first, then systemd-modules-load.service is restarted (no modprobe in the image).
  const loadModule = async (): Promise<void> => {
    const settings = options.settings();
    const systemd = await connectSystemd(await host.localPath(settings.dbusSocket));
    try {
      const { result } = await systemd.restartUnit('systemd-modules-load.service');
      if (result !== 'done') throw new Error(`systemd-modules-load.service restart: ${result}`);
    } finally {
      systemd.close();
    }
  };

  const runner = (action: RemediationActionId): ActionRunner => {
    if (action !== 'restart-kubelet')
      return hostActionRunner(action, host, options.settings(), loadModule);
    return restartKubeletRunner({
      settings: () => options.settings(),
      connect: async () => connectSystemd(await host.localPath(options.settings().dbusSocket)),
      kubeletHealthy: () => options.kubeletHealthy(),
      nodeReady: () => options.nodeReady(),
    });
  };

  return new RemediationEngine({
    settings: () => options.settings(),
    log: options.log,
    count: (action, outcome) => {
      options.count(action, outcome);
    },
    event: (reason, type, message) => {
      options.cluster()?.event(reason, type, message);
    },
    annotate: async (decision: Decision) => {
      const cluster = options.cluster();
      if (cluster === undefined) return;
      await cluster.api.request({
        verb: 'patch',
        path: `/api/v1/nodes/${encodeURIComponent(options.nodeName)}`,
        contentType: 'application/merge-patch+json',
        body: {
          metadata: {
            annotations: {
              [LAST_REMEDIATION_ANNOTATION]: JSON.stringify({
                at: decision.at,
                action: decision.action,
                mode: decision.mode,
                outcome: decision.outcome,
                reason: decision.reason,
              }),
            },
          },
        },
      });
    },
    gates,
    lock: takeLock,
    spend: async (action, dryRun) => {
      await limiter(options.settings()).record(action, { dryRun });
    },
    runner,
    // Unhealthy as the NotReady causes see it: healthz failing, or the Node not Ready.
    kubeletHealthy: () =>
      options.kubeletHealthy() === false || options.nodeReady() === false
        ? false
        : options.kubeletHealthy(),
  });
}

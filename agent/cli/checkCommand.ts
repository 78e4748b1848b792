// `node-auditor check`: one pass of the checks, a report, an exit status.
import { PROCESS_CHECK_IDS, configuredInfraCommands } from '../checks/processChecks.ts';
import type { Logger } from 'pino';
import type { ClusterService } from '../checks/check.ts';
import { CHECKS } from '../checks/registry.ts';
import type { CheckSettings, Config } from '../config/configSchema.ts';
import { durationMs } from '../config/duration.ts';
import { loadConfig } from '../config/loadConfig.ts';
import type { ConfigInputs } from '../config/loadConfig.ts';
import { logLoaded } from '../config/loadConfig.ts';
import { FindingStore } from '../findings/findingStore.ts';
import { CheckStatuses, exitStatusOf } from '../findings/report.ts';
import type { Report } from '../findings/report.ts';
import { HostRoot } from '../host/hostRoot.ts';
import type { KubeApi } from '../kubernetes/kubeApi.ts';
import type { PodsOnNode } from '../kubernetes/podsOnNode.ts';
import { createLogger } from '../logger.ts';
import { ProcessScans } from '../procfs/processScans.ts';
import { CheckRunner, applyRunToFindings } from '../runner/runCheck.ts';
import { renderTable } from '../sinks/report/tableReport.ts';

export async function checkCommand(
  inputs: ConfigInputs,
  options: { output?: string; only?: string[] },
  out: NodeJS.WritableStream,
): Promise<number> {
  const startedAt = new Date();
  const loaded = await loadConfig(inputs);
  const { config } = loaded;
  // The report is the output; logs go to stderr, warnings only unless asked for more.
  const log = createLogger({
    level: inputs.flags?.['log-level'] === undefined ? 'warn' : config.log.level,
    node: config.nodeName,
    fd: 2,
  });
  logLoaded(log, loaded);
  const host = new HostRoot(config.hostRoot);
  // One /proc pass for the pause, zombies and inotify checks.
  const processes = new ProcessScans(host);
  processes.setInfraCommands(configuredInfraCommands(config));
  // The API for the security checks, when there is one; no watches, no Events, no Lease.
  const cluster = await openCluster(config, inputs.env ?? process.env, log);
  const kube = 'off' in cluster ? undefined : cluster;
  // --only runs exactly the checks named, even ones the config disables.
  const selected = CHECKS.filter((check) =>
    options.only === undefined
      ? config.checks[check.id]?.enabled === true
      : options.only.includes(check.id),
  );
  // With an API, the process checks name pods as `run` does: one list of this node's pods.
  const pods =
    kube !== undefined && selected.some((check) => PROCESS_CHECK_IDS.has(check.id))
      ? await listPods(kube.api, config.nodeName, log)
      : undefined;
  const runner = new CheckRunner({
    host,
    nodeName: config.nodeName,
    log,
    services: () => ({
      processes,
      ...('off' in cluster ? { noCluster: cluster.off } : { cluster: cluster.cluster }),
      ...(pods === undefined ? {} : { pods }),
    }),
  });
  const statuses = new CheckStatuses(CHECKS);
  const store = new FindingStore();

  for (const check of CHECKS) {
    if (!selected.includes(check))
      statuses.skip(
        check.id,
        options.only === undefined ? 'disabled in config' : 'not selected (--only)',
      );
  }
  const runs = await Promise.all(
    selected.map((check) =>
      // The schema gives every registered check a settings section.
      runner.run(check, config.checks[check.id] as CheckSettings),
    ),
  ).finally(() => {
    kube?.api.close();
  });
  for (const run of runs) {
    statuses.record(run);
    applyRunToFindings(store, run, 'once');
  }
  const report: Report = {
    node: config.nodeName,
    startedAt: startedAt.toISOString(),
    checks: statuses.list(),
    findings: store.active(),
  };
  out.write(
    options.output === 'json' ? JSON.stringify(report, null, 2) + '\n' : renderTable(report),
  );
  return exitStatusOf(report);
}

/**
 * The cluster as `check` sees it: one client, every cluster-wide audit run here (no leader);
 * without one, why not (the checks that need it say so in their skip reason).
 * The client code is imported only when there is a cluster. A kubeconfig that cannot be used is
 * a configuration error (exit 2), as in `run`.
 */
async function openCluster(
  config: Readonly<Config>,
  env: NodeJS.ProcessEnv,
  log: Logger,
): Promise<{ api: KubeApi; cluster: ClusterService } | { off: string }> {
  const { discoverKube } = await import('../kubernetes/kubeDiscovery.ts');
  const found = await discoverKube({ kubeconfig: config.kubeconfig, env });
  if (found.kind === 'none') {
    log.info(
      { event: 'kube.off', reason: found.reason },
      `Kubernetes features off: ${found.reason}`,
    );
    return { off: found.reason };
  }
  const [{ openKubeApi }, { clusterService }] = await Promise.all([
    import('../kubernetes/kubeApi.ts'),
    import('../kubernetes/clusterService.ts'),
  ]);
  const api = await openKubeApi(found.source, {
    timeoutMs: durationMs(config.kubernetes.requestTimeout),
    log,
  });
  return {
    api,
    cluster: clusterService(api, { isLeader: () => true, nodeName: config.nodeName }),
  };
}

/**
 * The pods on this node, listed once. A failure (no permission, API down) is a warning: the
 * process checks still run and name pods by UID, as without an API.
 */
async function listPods(
  api: KubeApi,
  nodeName: string,
  log: Logger,
): Promise<PodsOnNode | undefined> {
  const { PodsOnNode } = await import('../kubernetes/podsOnNode.ts');
  const pods = new PodsOnNode();
  try {
    await pods.load(api, nodeName);
    return pods;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    log.warn(
      { event: 'kube.pods.failed', err: error },
      `cannot list the pods on node ${nodeName} (${reason}): processes are named by pod UID`,
    );
    return undefined;
  }
}

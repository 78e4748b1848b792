// `node-auditor run`: the long-running agent. Wires checks -> findings -> sinks and keeps
// serving whatever a check, a reload or a client does.
import { configuredInfraCommands } from './checks/processChecks.ts';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Check } from './checks/check.ts';
import { CHECKS } from './checks/registry.ts';
import type { Config } from './config/configSchema.ts';
import { formatListenAddress, parseListenAddress } from './config/listenAddress.ts';
import { loadConfig, logLoaded } from './config/loadConfig.ts';
import type { ConfigInputs, LoadedConfig } from './config/loadConfig.ts';
import { AuditorError, ErrorCode, describeError } from './errors.ts';
import { FindingStore } from './findings/findingStore.ts';
import { ALL_CAUSES, attributeCauses } from './findings/notReadyCause.ts';
import { CheckStatuses } from './findings/report.ts';
import type { Report } from './findings/report.ts';
import { HostRoot } from './host/hostRoot.ts';
import { KubernetesIntegration } from './kubernetes/kubernetesIntegration.ts';
import { LogPipeline } from './logs/logPipeline.ts';
import { ProcessScans } from './procfs/processScans.ts';
import type { LogSettings } from './logs/logSettings.ts';
import { CheckScheduler } from './runner/checkScheduler.ts';
import { CheckRunner, applyRunToFindings } from './runner/runCheck.ts';
import type { CheckRun } from './runner/runCheck.ts';
import { logTransition } from './sinks/findingLog.ts';
import { createHttpServer } from './sinks/http/httpServer.ts';
import { MetricsSink } from './sinks/metrics/metricsSink.ts';
import { renderStartupSummary } from './sinks/report/startupSummary.ts';
import type { RemediationEngine } from './remediation/remediationEngine.ts';

/** Settings read once at start: changing them in a reload is logged, and needs a restart. */
const RESTART_ONLY = [
  'hostRoot',
  'listen',
  'nodeName',
  'kubeconfig',
  'stateDir',
  'kubernetes',
] as const;

export interface AgentOptions {
  loaded: LoadedConfig;
  /** Where the configuration came from, to load it again on reload. */
  inputs: ConfigInputs;
  log: Logger;
  version: string;
  checks?: readonly Check[];
  /** Where to print the start-up summary once the first pass is done (null: nowhere). */
  summaryTo?: NodeJS.WritableStream | null;
  /** The environment (in-cluster detection, $KUBECONFIG, $POD_NAMESPACE); default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Where the pod's ServiceAccount is mounted (tests point it elsewhere). */
  serviceAccountDir?: string;
}

export class Agent {
  readonly store = new FindingStore();
  readonly metrics: MetricsSink;
  private readonly checks: readonly Check[];
  private readonly statuses: CheckStatuses;
  private readonly scheduler: CheckScheduler;
  private readonly server: Server;
  private readonly log: Logger;
  private readonly options: AgentOptions;
  private readonly startedAt = new Date();
  private config: Readonly<Config>;
  private firstPassDone = false;
  private url = '';
  private kube: KubernetesIntegration | undefined;
  /** The log pipeline, while checks.logs is enabled. */
  private logs: LogPipeline | undefined;
  private logsSettings = '';
  /** The /proc pass the pause, zombies and inotify checks share. */
  private readonly processes: ProcessScans;
  /** Readiness as node_auditor_node_ready last said it (undefined: not known yet). */
  private nodeReady: boolean | undefined;
  private kubeletHealthy: boolean | undefined;
  /** The causes last attributed, for logging changes. */
  private attributed = '';
  private minorLogChange: NodeJS.Timeout | undefined;
  private remediation: RemediationEngine | undefined;

  constructor(options: AgentOptions) {
    this.options = options;
    this.checks = options.checks ?? CHECKS;
    this.config = options.loaded.config;
    this.log = options.log;
    this.statuses = new CheckStatuses(this.checks);
    this.metrics = new MetricsSink({
      version: options.version,
      checkIds: this.checks.map((c) => c.id),
    });
    this.store.onTransition((transition) => {
      logTransition(this.log, transition);
    });
    this.syncCauses();
    this.processes = new ProcessScans(new HostRoot(this.config.hostRoot));
    this.processes.setInfraCommands(configuredInfraCommands(this.config));
    // the pass the pause, zombies and inotify checks share: reported by the pass, not by one
    // of them (whichever run)
    this.metrics.onScrape(() => {
      const scan = this.processes.latest;
      if (scan === undefined) return;
      this.metrics.set('node_auditor_process_scan_duration_seconds', scan.durationMs / 1000);
      this.metrics.set('node_auditor_process_scan_processes', scan.processes.length);
    });
    const runner = new CheckRunner({
      host: new HostRoot(this.config.hostRoot),
      nodeName: this.config.nodeName,
      log: this.log,
      services: () => {
        const pods = this.kube?.pods;
        const cluster = this.kube?.cluster;
        const noCluster = this.kube?.offReason;
        return {
          processes: this.processes,
          ...(this.logs === undefined ? {} : { logs: this.logs }),
          ...(pods === undefined ? {} : { pods }),
          ...(cluster === undefined ? {} : { cluster }),
          ...(noCluster === undefined ? {} : { noCluster }),
        };
      },
    });
    this.scheduler = new CheckScheduler(
      this.checks,
      runner,
      {
        onRun: (run) => {
          this.recordRun(run);
        },
        onDisabled: (id) => {
          this.forgetCheck(id, 'disabled in config');
        },
      },
      this.log,
    );
    this.server = createHttpServer(
      {
        report: () => this.report(),
        ready: () => this.firstPassDone,
        metrics: this.metrics,
        pageMeta: () => ({
          version: options.version,
          hostRoot: this.config.hostRoot,
          ready: this.firstPassDone,
        }),
        remediations: () => this.remediation?.decisions() ?? [],
      },
      this.log,
    );
  }

  /** Listen, then start the checks. Resolves with the URL once listening (not after the first pass). */
  async start(): Promise<string> {
    const listen = parseListenAddress(this.config.listen);
    if (listen === undefined)
      throw new AuditorError(ErrorCode.Listen, `bad listen address ${this.config.listen}`);
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error) => {
        reject(
          new AuditorError(
            ErrorCode.Listen,
            `cannot listen on ${this.config.listen}: ${describeError(error)}`,
            { cause: error },
          ),
        );
      };
      this.server.once('error', onError);
      this.server.listen(listen.port, listen.host, () => {
        this.server.off('error', onError);
        resolve();
      });
    });
    const address = this.server.address() as AddressInfo;
    this.url = `http://${formatListenAddress({ host: address.address, port: address.port })}`;
    this.log.info(
      {
        event: 'http.listening',
        url: this.url,
        hostRoot: this.config.hostRoot,
      },
      `listening on ${this.url}`,
    );
    // Before the first pass, so the Event sink sees every finding transition.
    this.kube = await KubernetesIntegration.start({
      checksRun: () => this.checksWith(['ok', 'problem']),
      config: this.config,
      env: this.options.env ?? process.env,
      log: this.log,
      metrics: this.metrics,
      store: this.store,
      onReady: (ready) => {
        const changed = this.nodeReady !== ready;
        this.nodeReady = ready;
        this.syncCauses();
        if (changed) void this.remediation?.evaluate(this.store.active());
      },
      conditionProblems: () => this.logs?.conditionProblems() ?? new Map(),
      onLeaderChange: () => {
        // the new leader audits the cluster now, not at the next interval; one that lost the
        // Lease runs them once more so they skip themselves and clear what they reported
        for (const check of this.checks)
          if (check.clusterWide === true) this.scheduler.runSoon(check.id);
      },
      onKubeletHealth: (healthy) => {
        const changed = this.kubeletHealthy !== healthy;
        this.kubeletHealthy = healthy;
        this.syncCauses();
        // restart-kubelet waits for an unhealthy kubelet: decide again when that changes
        if (changed) void this.remediation?.evaluate(this.store.active());
      },
      ...(this.options.serviceAccountDir === undefined
        ? {}
        : { serviceAccountDir: this.options.serviceAccountDir }),
    });
    await this.syncLogs();
    await this.syncRemediation();
    this.markDisabled();
    const { firstRuns } = this.scheduler.apply(this.config.checks);
    firstRuns
      .then(() => {
        this.firstPassDone = true;
        this.kube?.afterFirstPass(this.store.active(), this.checksWith(['error']));
        const report = this.report();
        this.log.info(
          {
            event: 'agent.ready',
            checks: report.checks.map((c) => ({ id: c.id, status: c.status })),
            findings: report.findings.length,
          },
          'first pass done',
        );
        this.options.summaryTo?.write(
          renderStartupSummary(report, {
            version: this.options.version,
            hostRoot: this.config.hostRoot,
            kubernetes: this.kube?.status ?? 'off',
            // Bound to every address: show one a person can open.
            url: this.url.replace(/^http:\/\/(0\.0\.0\.0|\[::\])(?=:)/, 'http://localhost'),
          }),
        );
      })
      .catch((error: unknown) => {
        // Never expected; if it happens, serve what there is rather than stay unready forever.
        this.firstPassDone = true;
        this.metrics.recordInternalError('first_pass');
        this.log.error({ err: error }, 'first pass failed');
      });
    return this.url;
  }

  /** Load the configuration again; a bad one is rejected (logged, counted) and the old one kept. */
  async reload(trigger: string): Promise<boolean> {
    let loaded: LoadedConfig;
    try {
      loaded = await loadConfig(this.options.inputs, this.checks);
    } catch (error) {
      this.metrics.recordReload(false);
      this.log.error(
        { event: 'config.rejected', trigger, error: describeError(error) },
        'new configuration rejected; keeping the current one',
      );
      return false;
    }
    logLoaded(this.log, loaded);
    const next = { ...loaded.config };
    for (const key of RESTART_ONLY) {
      if (JSON.stringify(next[key]) !== JSON.stringify(this.config[key])) {
        this.log.warn(
          {
            event: 'config.restart-needed',
            setting: key,
            current: this.config[key],
            requested: next[key],
          },
          `${key} changes only when the agent restarts`,
        );
        (next as Record<string, unknown>)[key] = this.config[key];
      }
    }
    this.config = Object.freeze(next);
    this.log.level = next.log.level;
    this.processes.setInfraCommands(configuredInfraCommands(next));
    await this.syncLogs();
    await this.syncRemediation();
    this.markDisabled();
    const { changed, firstRuns } = this.scheduler.apply(next.checks);
    this.metrics.recordReload(true);
    this.log.info(
      { event: 'config.applied', trigger, changedChecks: changed },
      'configuration reloaded',
    );
    await firstRuns;
    return true;
  }

  report(): Report {
    return {
      node: this.config.nodeName,
      startedAt: this.startedAt.toISOString(),
      checks: this.statuses.list(),
      findings: this.store.active(),
    };
  }

  /** The Kubernetes side (own Node, pods on this node, leader), once started. */
  get kubernetes(): KubernetesIntegration | undefined {
    return this.kube;
  }

  async stop(): Promise<void> {
    this.scheduler.stop();
    await this.remediation?.stop();
    clearTimeout(this.minorLogChange);
    await this.logs?.stop();
    await this.kube?.stop();
    this.metrics.stop();
    this.server.closeIdleConnections();
    await new Promise<void>((resolve) =>
      this.server.close(() => {
        resolve();
      }),
    );
  }

  private recordRun(run: CheckRun): void {
    this.statuses.record(run);
    this.metrics.recordRun(run);
    if (run.error !== undefined) {
      this.log.warn(
        { event: 'check.failed', check: run.check, code: run.error.code, error: run.error.message },
        `check ${run.check} failed`,
      );
    }
    applyRunToFindings(this.store, run);
    this.metrics.syncProblems(this.store.active());
    this.syncCauses();
    // the engine picks what calls for an action (remediation/triggers.ts) and does not decide
    // again on the same findings within a minute
    void this.remediation?.evaluate(this.store.active());
  }

  /**
   * Remediation is loaded the first time an action is enabled (at start or in a reload); an
   * agent that never enables one never loads its code. It reads the settings at each decision.
   */
  private async syncRemediation(): Promise<void> {
    const enabled = Object.entries(this.config.remediation.actions)
      .filter(([, action]) => action.enabled)
      .map(([id]) => id);
    if (enabled.length === 0) return;
    if (this.remediation === undefined) {
      const { createRemediation } = await import('./remediation/remediationSetup.ts');
      this.remediation = createRemediation({
        settings: () => this.config.remediation,
        hostRoot: this.config.hostRoot,
        nodeName: this.config.nodeName,
        stateDir: this.config.stateDir,
        log: this.log,
        count: (action, outcome) => {
          this.metrics.inc('node_auditor_remediation_actions_total', { action, outcome });
        },
        cluster: () => this.kube?.remediation,
        kubeletHealthy: () => this.kubeletHealthy,
        nodeReady: () => this.nodeReady,
      });
      this.log.info(
        { event: 'remediation.enabled', mode: this.config.remediation.mode },
        `remediation on (${this.config.remediation.mode}): ${enabled.join(', ')}`,
      );
    }
    // zero the enabled actions' series up front, so increase() sees the first failure; also
    // for an action a reload enabled once the engine was running (adding 0 changes no count)
    for (const action of enabled) {
      for (const outcome of ['applied', 'dry_run', 'skipped', 'failed'])
        this.metrics.inc('node_auditor_remediation_actions_total', { action, outcome }, 0);
    }
  }

  /** node_auditor_notready_cause from the findings and the node's health (notReadyCause.ts). */
  private syncCauses(): void {
    const causes = attributeCauses(this.store.active(), {
      ...(this.nodeReady === undefined ? {} : { nodeReady: this.nodeReady }),
      ...(this.kubeletHealthy === undefined ? {} : { kubeletHealthy: this.kubeletHealthy }),
    });
    for (const cause of ALL_CAUSES) {
      this.metrics.set('node_auditor_notready_cause', causes.has(cause) ? 1 : 0, { cause });
    }
    const now = [...causes].sort().join(',');
    if (now !== this.attributed) {
      this.attributed = now;
      const list = [...causes].sort();
      this.log.info(
        {
          event: 'notready.cause',
          causes: list,
          nodeReady: this.nodeReady,
          kubeletHealthy: this.kubeletHealthy,
        },
        list.length === 0
          ? 'no NotReady cause attributed'
          : `NotReady cause attributed: ${list.join(', ')}`,
      );
    }
  }

  /**
   * Start, reconfigure or stop the log pipeline to match checks.logs (before the scheduler runs
   * the logs check with the same settings).
   */
  private async syncLogs(): Promise<void> {
    const settings = this.config.checks.logs as (LogSettings & { enabled: boolean }) | undefined;
    const wanted = settings?.enabled === true ? JSON.stringify(settings) : '';
    if (wanted === this.logsSettings) return;
    try {
      if (settings === undefined || wanted === '') {
        await this.logs?.stop();
        this.logs = undefined;
      } else if (this.logs === undefined) {
        this.logs = await LogPipeline.start({
          host: new HostRoot(this.config.hostRoot),
          settings,
          log: this.log.child({ component: 'logs' }),
          stateDir: this.config.stateDir,
          metrics: this.metrics,
          facts: () => (this.nodeReady === undefined ? {} : { nodeReady: this.nodeReady }),
          onChange: (change) => {
            this.logsChanged(change);
          },
        });
      } else {
        await this.logs.reconfigure(settings);
      }
      this.logsSettings = wanted;
    } catch (error) {
      this.metrics.recordInternalError('log_pipeline');
      this.log.error(
        { event: 'logs.failed', error: describeError(error) },
        'the log pipeline could not start; the logs check reads the recent past on each run instead',
      );
    }
  }

  /** Incidents changed: report at once when one opened, ended or changed cause; else every 5 s. */
  private logsChanged(change: 'major' | 'minor'): void {
    if (change === 'major') {
      clearTimeout(this.minorLogChange);
      this.minorLogChange = undefined;
      this.scheduler.runSoon('logs');
      return;
    }
    if (this.minorLogChange !== undefined) return;
    this.minorLogChange = setTimeout(() => {
      this.minorLogChange = undefined;
      this.scheduler.runSoon('logs');
    }, 5_000);
    this.minorLogChange.unref();
  }

  private forgetCheck(id: string, reason: string): void {
    this.store.clearCheck(id, reason);
    this.statuses.skip(id, reason);
    this.metrics.forgetCheck(id);
    this.metrics.syncProblems(this.store.active());
  }

  private checksWith(statuses: readonly string[]): Set<string> {
    return new Set(
      this.statuses
        .list()
        .filter((c) => statuses.includes(c.status))
        .map((c) => c.id),
    );
  }

  private markDisabled(): void {
    for (const check of this.checks) {
      if (this.config.checks[check.id]?.enabled !== true)
        this.statuses.skip(check.id, 'disabled in config');
    }
  }
}

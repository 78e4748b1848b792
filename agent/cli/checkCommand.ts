// `node-auditor check`: one pass of the checks, a report, an exit status.
import { CHECKS } from '../checks/registry.ts';
import type { CheckSettings } from '../config/configSchema.ts';
import { loadConfig } from '../config/loadConfig.ts';
import type { ConfigInputs } from '../config/loadConfig.ts';
import { FindingStore } from '../findings/findingStore.ts';
import { CheckStatuses, exitStatusOf } from '../findings/report.ts';
import type { Report } from '../findings/report.ts';
import { HostRoot } from '../host/hostRoot.ts';
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
  const { config } = await loadConfig(inputs);
  // The report is the output; logs go to stderr, warnings only unless asked for more.
  const log = createLogger({
    level: inputs.flags?.['log-level'] === undefined ? 'warn' : config.log.level,
    node: config.nodeName,
    fd: 2,
  });
  const host = new HostRoot(config.hostRoot);
  // One /proc pass for the pause, zombies and inotify checks.
  const processes = new ProcessScans(host);
  const runner = new CheckRunner({
    host,
    nodeName: config.nodeName,
    log,
    services: () => ({ processes }),
  });
  const statuses = new CheckStatuses(CHECKS);
  const store = new FindingStore();

  // --only runs exactly the checks named, even ones the config disables.
  const selected = CHECKS.filter((check) =>
    options.only === undefined
      ? config.checks[check.id]?.enabled === true
      : options.only.includes(check.id),
  );
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
  );
  for (const run of runs) {
    statuses.record(run);
    applyRunToFindings(store, run);
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

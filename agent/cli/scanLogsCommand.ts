// `node-auditor scan-logs FILE...`: classify saved logs offline and print the incidents. Exit
// status: 0 no incident of warning or critical severity, 1 some, 2 a usage or configuration error
// (a file that cannot be read is one: nothing is skipped silently).
import type { CheckSettings } from '../config/configSchema.ts';
import { loadConfig } from '../config/loadConfig.ts';
import type { ConfigInputs } from '../config/loadConfig.ts';
import { AuditorError, ErrorCode } from '../errors.ts';
import { isProblem } from '../findings/finding.ts';
import type { LogSettings } from '../logs/logSettings.ts';
import { resolveInputs } from '../logs/scanInputs.ts';
import { scanLogs } from '../logs/scanLogs.ts';
import { selectRules } from '../rules/catalogue.ts';
import { renderIncidentsJson, renderIncidentsTable } from '../sinks/report/incidentReport.ts';
import { wrapHanging } from '../sinks/report/textWrap.ts';

export async function scanLogsCommand(
  inputs: ConfigInputs,
  files: readonly string[],
  output: string | undefined,
  out: NodeJS.WritableStream,
  err: NodeJS.WritableStream & { isTTY?: boolean },
): Promise<number> {
  if (files.length === 0) {
    throw new AuditorError(
      ErrorCode.Usage,
      'scan-logs needs at least one FILE (or journal directory)',
    );
  }
  // The rules come from the configuration (checks.logs): operators' own rules apply too.
  const { config } = await loadConfig(inputs);
  const settings = config.checks.logs as (LogSettings & CheckSettings) | undefined;
  if (settings === undefined) throw new Error('checks.logs is missing from the configuration');
  const { inputs: scanInputs, notes } = await resolveInputs(files);
  // What is not read, and input that may not be what it seems, before the scan's progress.
  for (const note of notes) err.write(wrapHanging('scan-logs: ', note, 80).join('\n') + '\n');
  const rules = await selectRules({
    disabledRules: settings.disabledRules,
    rules: settings.rules,
    npdConfigs: settings.npdConfigs,
  });
  let lastLength = 0;
  const result = await scanLogs(scanInputs, {
    rules,
    maxEvidence: settings.maxEvidence,
    journalctl: settings.journal.command,
    journalIdentifiers: settings.journal.identifiers,
    journalUnits: settings.journal.units,
    maxLineBytes: settings.maxLineBytes,
    progress: (line, final) => {
      if (err.isTTY === true) {
        // One line, rewritten in place.
        err.write(`\r${line.padEnd(lastLength)}${final ? '\n' : ''}`);
        lastLength = line.length;
      } else {
        err.write(`${line}\n`);
      }
    },
  });
  out.write(output === 'json' ? renderIncidentsJson(result) : renderIncidentsTable(result));
  return result.incidents.some((i) => isProblem(i.severity)) ? 1 : 0;
}

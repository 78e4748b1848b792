// `logs`: what the node's logs say went wrong, as incidents with a root cause and the lines that
// show it. In the agent, the log pipeline follows syslog files, the journal and the kernel log
// all along and this check reports its open incidents (it also runs as soon as one opens or
// changes); in `node-auditor check`, it reads the recent past (checks.logs.lookback) once.
import { LogPipeline } from '../../logs/logPipeline.ts';
import { logOptions } from '../../logs/logSettings.ts';
import type { Check } from '../check.ts';
import { incidentFinding, sourceFindings } from './logFindings.ts';

export const logsCheck: Check<typeof logOptions> = {
  id: 'logs',
  title: 'Logs: NotReady root causes and kernel problems',
  description:
    'Follows /var/log/syslog, /var/log/messages, kern.log, the journal and /dev/kmsg; turns the lines its rules recognise into incidents with one root cause each.',
  // The pipeline runs continuously; the periodic run re-reads its state (incidents that ended).
  defaults: { enabled: true, interval: '30s', timeout: '60s' },
  options: logOptions,
  async run(context) {
    const live = context.services.logs;
    const pipeline =
      live ??
      (await LogPipeline.readRecent({
        host: context.host,
        settings: context.options,
        log: context.log,
      }));
    return {
      findings: [
        ...pipeline.incidents().map(incidentFinding),
        ...sourceFindings(pipeline.sources()),
      ],
    };
  },
};

// Finding transitions as pino log lines: one line when a problem is raised, changes or clears.
import type { Logger } from 'pino';
import type { Severity } from '../findings/finding.ts';
import type { Transition } from '../findings/findingStore.ts';

const LEVEL: Record<Severity, 'error' | 'warn' | 'info'> = {
  critical: 'error',
  warning: 'warn',
  info: 'info',
};

export function logTransition(log: Logger, transition: Transition): void {
  const f = transition.finding;
  const fields = {
    event: `finding.${transition.kind}`,
    check: f.check,
    finding: f.id,
    problem: f.problem,
    severity: f.severity,
    ...(f.cause === undefined ? {} : { cause: f.cause }),
    firstSeen: f.firstSeen,
  };
  switch (transition.kind) {
    case 'raised':
      log[LEVEL[f.severity]]({ ...fields, evidence: f.evidence }, f.title);
      break;
    case 'changed':
      log[LEVEL[f.severity]](
        { ...fields, previousSeverity: transition.previous.severity, evidence: f.evidence },
        f.title,
      );
      break;
    case 'cleared':
      log.info(
        { ...fields, lastSeen: f.lastSeen, reason: transition.reason },
        `cleared: ${f.title}`,
      );
      break;
  }
}

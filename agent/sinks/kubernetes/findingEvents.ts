// Findings as Events on the Node: reason = the NotReady cause or the problem (PascalCase),
// Warning for warning/critical, Normal for info; "<Reason>Resolved" (Normal) when it clears.
import type { Finding } from '../../findings/finding.ts';
import type { FindingStore } from '../../findings/findingStore.ts';
import type { EventRecorder } from './eventRecorder.ts';

const INCIDENT_PREFIX = 'finding/';

export function reasonOf(finding: Finding): string {
  return finding.cause ?? finding.problem;
}

function incidentOf(finding: Pick<Finding, 'check' | 'id'>): string {
  return `${INCIDENT_PREFIX}${finding.check}/${finding.id}`;
}

export function attachFindingEvents(store: FindingStore, recorder: EventRecorder): void {
  store.onTransition((transition) => {
    const f = transition.finding;
    if (transition.kind === 'cleared') {
      recorder.resolve(incidentOf(f), `resolved: ${f.title}`);
    } else {
      recorder.report(
        incidentOf(f),
        reasonOf(f),
        f.severity === 'info' ? 'Normal' : 'Warning',
        f.title,
      );
    }
  });
}

/**
 * After the first pass: incidents reported before a restart that are no longer true were
 * resolved while the agent was away. Say so once; do not repeat the ones still true, and say
 * nothing about the checks whose first run failed (what they would see is unknown).
 */
export function resolveGoneIncidents(
  recorder: EventRecorder,
  active: readonly Finding[],
  failedChecks: ReadonlySet<string>,
): void {
  const current = new Set(active.map(incidentOf));
  for (const incident of recorder.reportedIncidents(INCIDENT_PREFIX)) {
    const check = incident.slice(INCIDENT_PREFIX.length).split('/')[0] ?? '';
    if (current.has(incident) || failedChecks.has(check)) continue;
    recorder.resolve(
      incident,
      `resolved while node-auditor was not running: ${incident.slice(INCIDENT_PREFIX.length)}`,
    );
  }
}

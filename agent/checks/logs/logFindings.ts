// Incidents and log-source trouble as findings. A finding's message stays the same while its
// incident lasts (a storm of lines must not make it "change" with every line); the counts and
// times are in its evidence.
import { CAUSES } from '../../findings/causes.ts';
import type { FindingDraft } from '../../findings/finding.ts';
import type { Incident } from '../../incidents/incident.ts';
import type { SourceStatus } from '../../logs/logPipeline.ts';

export function incidentFinding(incident: Incident): FindingDraft {
  const cause = incident.cause;
  const what = cause === undefined ? incident.title : `${CAUSES[cause]} (${incident.title})`;
  const lines = incident.count === 1 ? '1 matching line' : `${incident.count} matching lines`;
  const more =
    incident.omitted > 0 ? `; ${incident.omitted} repeated or further lines not shown` : '';
  const finding: FindingDraft = {
    // Stable while the incident lasts, even when a root cause replaces a symptom's cause.
    id: `incident:${incident.group}`,
    problem: incident.problem,
    severity: incident.severity,
    title: incident.title,
    message: `${capitalise(what)}. First seen at ${iso(incident.firstSeen)}.`,
    evidence: [
      `${lines} from ${iso(incident.firstSeen)} to ${iso(incident.lastSeen)} in ${incident.sources.join(', ')} (rules: ${incident.rules.join(', ')})${more}`,
      ...incident.evidence,
    ],
  };
  if (cause !== undefined) finding.cause = cause;
  if (incident.remediation !== undefined) {
    finding.remediation = { summary: incident.remediation, automatic: false };
  }
  return finding;
}

/** A source that exists but cannot be read; or no source at all to read. */
export function sourceFindings(sources: readonly SourceStatus[]): FindingDraft[] {
  const out: FindingDraft[] = [];
  for (const s of sources) {
    if (s.state !== 'error') continue;
    out.push({
      id: `LogSourceUnreadable:${s.source}`,
      problem: 'LogSourceUnreadable',
      severity: 'warning',
      title: `cannot read ${s.source}`,
      message: `The ${s.kind === 'file' ? 'log file' : s.source === 'kmsg' ? 'kernel log' : 'journal'} ${s.source} cannot be read, so failures it records are not seen: ${s.detail ?? 'unknown error'}.`,
      evidence: [s.detail ?? ''],
      remediation: {
        summary:
          s.kind === 'journald'
            ? 'The agent runs journalctl on the host journal (mounted under the host root): install journalctl in the image and give the agent read access (root, or the systemd-journal group).'
            : s.kind === 'kmsg'
              ? "Mount the host's /dev/kmsg into the container and run the agent as root (or with CAP_SYSLOG when kernel.dmesg_restrict is 1)."
              : "Mount the host's /var/log read-only under the host root and let the agent read it.",
        automatic: false,
      },
    });
  }
  if (sources.length > 0 && sources.every((s) => s.state === 'waiting' || s.state === 'error')) {
    out.push({
      id: 'NoLogSource',
      problem: 'NoLogSource',
      severity: 'warning',
      title: 'no log can be read',
      message:
        'None of the configured logs exists or can be read, so no NotReady cause can be found in them.',
      evidence: sources.map(
        (s) => `${s.source}: ${s.state}${s.detail === undefined ? '' : ` (${s.detail})`}`,
      ),
      remediation: {
        summary:
          "Mount the host's /var/log, /var/log/journal (or /run/log/journal) and /dev/kmsg under the host root, or set checks.logs.files to where this host writes its syslog.",
        automatic: false,
      },
    });
  }
  return out;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

// scan-logs output: the incidents found in saved logs, as a table for a person (80 columns)
// or JSON (DESIGN.md: { "incidents": [{ "cause", "rule", "count", "firstSeen", "lastSeen",
// "evidence" }] }, plus "problem" and "severity").
import { CAUSES } from '../../findings/causes.ts';
import type { Incident } from '../../incidents/incident.ts';
import type { ScanResult } from '../../logs/scanLogs.ts';
import { wrap, wrapHanging } from './textWrap.ts';

const WIDTH = 80;

export interface IncidentJson {
  cause: string;
  rule: string;
  count: number;
  firstSeen: string;
  lastSeen: string;
  evidence: string[];
  problem: string;
  severity: string;
}

function incidentJson(incident: Incident): IncidentJson {
  return {
    // A kernel problem has no NotReady cause: its problem id stands in.
    cause: incident.cause ?? incident.problem,
    rule: incident.rule,
    count: incident.count,
    firstSeen: new Date(incident.firstSeen).toISOString(),
    lastSeen: new Date(incident.lastSeen).toISOString(),
    evidence: incident.evidence,
    problem: incident.problem,
    severity: incident.severity,
  };
}

export function renderIncidentsJson(result: ScanResult): string {
  return JSON.stringify({ incidents: result.incidents.map(incidentJson) }, null, 2) + '\n';
}

export function renderIncidentsTable(result: ScanResult, width = WIDTH): string {
  const out: string[] = [];
  const files = result.files.length;
  out.push(
    ...wrap(
      `node-auditor scan-logs: ${plural(files, 'input')}, ${plural(result.lines, 'line')}, ${plural(result.incidents.length, 'incident')}`,
      width,
    ),
  );
  for (const f of result.files)
    out.push(...wrap(`${f.path} (${f.format}): ${plural(f.lines, 'line')}`, width, '  '));
  for (const incident of result.incidents) {
    out.push('');
    const name = incident.cause ?? incident.problem;
    out.push(
      ...wrapHanging(
        incident.severity.toUpperCase().padEnd(10),
        `${name}: ${incident.title}`,
        width,
      ),
    );
    const lines = incident.count === 1 ? '1 line' : `${incident.count} lines`;
    out.push(
      ...wrap(
        `${lines}, ${stamp(incident.firstSeen)} to ${stamp(incident.lastSeen)} (rule ${incident.rule})`,
        width,
        '  ',
      ),
    );
    if (incident.cause !== undefined)
      out.push(...wrap(`Cause: ${CAUSES[incident.cause]}.`, width, '  '));
    out.push('  Evidence:');
    for (const line of incident.evidence) out.push(...wrap(line, width, '    '));
    if (incident.omitted > 0) {
      out.push(...wrap(`(${incident.omitted} repeated or further lines not shown)`, width, '    '));
    }
    if (incident.remediation !== undefined) {
      out.push('  Fix:');
      out.push(...wrap(incident.remediation, width, '    '));
    }
  }
  if (result.incidents.length === 0) {
    out.push('');
    out.push('No incident found.');
  }
  return out.join('\n') + '\n';
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

function stamp(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
}

// What `run` prints once its first pass is done: one screen of 80 columns, what was checked
// and found.
import { tally } from '../../findings/report.ts';
import type { Report } from '../../findings/report.ts';
import { wrap, wrapHanging } from './textWrap.ts';

const MAX_LISTED = 10;

export function renderStartupSummary(
  report: Report,
  meta: { version: string; hostRoot: string; url: string; kubernetes: string },
  width = 80,
): string {
  const t = tally(report.findings);
  const out = [
    ...wrap(
      `node-auditor ${meta.version} on node ${report.node} (host root ${meta.hostRoot})`,
      width,
    ),
    ...wrap(
      `Checked: ${report.checks.map((c) => `${c.id} (${c.status}${c.status === 'skipped' ? '' : `, ${Math.round(c.durationMs)}ms`})`).join(', ') || 'nothing (every check is disabled)'}`,
      width,
    ),
    ...wrap(`Kubernetes: ${meta.kubernetes}`, width),
    `Found: ${t.critical} critical, ${t.warning} warning, ${t.info} info`,
  ];
  for (const f of report.findings.slice(0, MAX_LISTED)) {
    out.push(...wrapHanging(`  ${f.severity.toUpperCase().padEnd(9)}`, f.title, width));
  }
  if (report.findings.length > MAX_LISTED)
    out.push(`  ... and ${report.findings.length - MAX_LISTED} more`);
  out.push(...wrap(`Status page ${meta.url}/`, width));
  out.push(...wrap('also /metrics, /api/v1/findings, /healthz, /readyz', width, '  '));
  return out.join('\n') + '\n';
}

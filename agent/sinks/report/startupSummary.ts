// What `run` prints once its first pass is done: one screen of 80 columns, what was checked
// and found.
import { NO_CLUSTER } from '../../checks/check.ts';
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
  const ran = report.checks.filter((c) => c.status !== 'skipped');
  const skipped = report.checks.filter((c) => c.status === 'skipped');
  const out = [
    ...wrap(
      `node-auditor ${meta.version} on node ${report.node} (host root ${meta.hostRoot})`,
      width,
    ),
    ...wrap(
      `Checked: ${ran.map((c) => `${c.id} (${c.status}, ${Math.round(c.durationMs)}ms)`).join(', ') || 'nothing (every check is disabled or skipped)'}`,
      width,
    ),
    ...wrap(`Kubernetes: ${meta.kubernetes}`, width),
    // Why, as `check` says it ("skipped" alone hid a kubelet that is not there, or no API), in
    // short: the first clause, and no API's reason once, on the line above. In full in
    // /api/v1/findings (checks[].reason).
    ...(skipped.length === 0 ? [] : ['Skipped:']),
    ...skipped.flatMap((c) =>
      wrap(`${c.id}: ${shortReason(c.reason)}`, width - 4).map((line, i) =>
        i === 0 ? `  ${line}` : `    ${line}`,
      ),
    ),
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

function shortReason(reason: string | undefined): string {
  if (reason === undefined) return 'no reason given';
  const first = reason.split('; ')[0] ?? reason;
  return first.includes(`${NO_CLUSTER}: `)
    ? first.slice(0, first.indexOf(`${NO_CLUSTER}: `) + NO_CLUSTER.length)
    : first;
}

// `check --output table`: the report for a person at a terminal, 80 columns wide.
import type { Finding } from '../../findings/finding.ts';
import { exitStatusOf, tally } from '../../findings/report.ts';
import type { Report } from '../../findings/report.ts';
import { wrap, wrapHanging } from './textWrap.ts';

const WIDTH = 80;

export function renderTable(report: Report, width = WIDTH): string {
  const out: string[] = [];
  out.push(
    `node-auditor check: node ${report.node}, ${report.startedAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z')}`,
  );
  out.push('');
  const idWidth = Math.max(5, ...report.checks.map((c) => c.id.length));
  out.push(`${'CHECK'.padEnd(idWidth)}  ${'STATUS'.padEnd(7)}  ${'TIME'.padStart(8)}  FINDINGS`);
  for (const check of report.checks) {
    const mine = report.findings.filter((f) => f.check === check.id);
    const t = tally(mine);
    const summary =
      check.status === 'skipped'
        ? (check.reason ?? 'skipped')
        : check.status === 'error'
          ? (check.error ?? 'error')
          : [
              t.critical && `${t.critical} critical`,
              t.warning && `${t.warning} warning`,
              t.info && `${t.info} info`,
            ]
              .filter(Boolean)
              .join(', ') || 'none';
    out.push(
      ...wrapHanging(
        `${check.id.padEnd(idWidth)}  ${check.status.padEnd(7)}  ${formatMs(check.durationMs).padStart(8)}  `,
        summary,
        width,
      ),
    );
  }
  for (const finding of report.findings) {
    out.push('');
    out.push(...renderFinding(finding, width));
  }
  out.push('');
  const t = tally(report.findings);
  const failed = report.checks.filter((c) => c.status === 'error').length;
  const parts = [
    t.problems === 0
      ? 'No problems'
      : `${t.problems} problem${t.problems === 1 ? '' : 's'} (${t.critical} critical, ${t.warning} warning)`,
    ...(t.info > 0 ? [`${t.info} info`] : []),
    ...(failed > 0 ? [`${failed} check${failed === 1 ? '' : 's'} failed`] : []),
  ];
  out.push(...wrap(`${parts.join(', ')}. Exit status ${exitStatusOf(report)}.`, width));
  return out.join('\n') + '\n';
}

function renderFinding(f: Finding, width: number): string[] {
  const out = wrapHanging(f.severity.toUpperCase().padEnd(10), f.title, width);
  out.push(
    ...wrap(
      `${f.check} / ${f.problem}${f.cause === undefined ? '' : ` / cause ${f.cause}`}`,
      width,
      '  ',
    ),
  );
  out.push(...wrap(f.message, width, '  '));
  if (f.evidence.length > 0) {
    out.push('  Evidence:');
    for (const e of f.evidence) out.push(...wrap(e, width, '    '));
  }
  if (f.remediation !== undefined) {
    out.push('  Fix:');
    out.push(...wrap(f.remediation.summary, width, '    '));
  }
  return out;
}

function formatMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)}s` : `${Math.round(ms)}ms`;
}

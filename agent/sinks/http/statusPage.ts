// GET /: a plain status page a person can read: findings by severity, evidence, fix.
// No framework, no script; everything is escaped.
import { SEVERITIES } from '../../findings/finding.ts';
import type { Finding } from '../../findings/finding.ts';
import { tally } from '../../findings/report.ts';
import type { Report } from '../../findings/report.ts';

export interface StatusPageMeta {
  version: string;
  hostRoot: string;
  ready: boolean;
}

const STYLE = `
body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:60rem;padding:1rem 1.5rem;color:#1d1d1f;background:#fafafa}
h1{font-size:1.4rem;margin:.2rem 0}h2{font-size:1.1rem;margin:1.6rem 0 .6rem}
.meta{color:#555}table{border-collapse:collapse;margin:.5rem 0}td,th{padding:.25rem .8rem .25rem 0;text-align:left}
.finding{background:#fff;border:1px solid #ddd;border-left:6px solid #888;border-radius:4px;padding:.6rem 1rem;margin:.7rem 0}
.critical{border-left-color:#c62828}.warning{border-left-color:#ef8f00}.info{border-left-color:#1e6fd9}
.finding h3{margin:.1rem 0 .3rem;font-size:1.02rem}.tag{font-size:.8rem;color:#555}
pre{background:#f3f3f3;padding:.5rem .7rem;overflow-x:auto;white-space:pre-wrap;margin:.3rem 0}
.s-ok{color:#2e7d32}.s-problem{color:#c62828}.s-error{color:#ad1457}.s-skipped{color:#777}
.none{color:#2e7d32;font-weight:600}
.nw{white-space:nowrap}`;

export function renderStatusPage(report: Report, meta: StatusPageMeta): string {
  const t = tally(report.findings);
  const headline =
    t.problems === 0
      ? '<p class="none">No problems found.</p>'
      : `<p><strong>${t.critical} critical</strong>, ${t.warning} warning, ${t.info} info</p>`;
  const checks = report.checks
    .map(
      (c) =>
        `<tr><td class="nw">${esc(c.id)}</td><td class="s-${esc(c.status)}">${esc(c.status)}</td><td class="nw">${c.durationMs} ms</td><td class="nw">${esc(c.lastRun ?? '')}</td><td>${esc(c.error ?? c.reason ?? '')}</td></tr>`,
    )
    .join('');
  const sections = [...SEVERITIES]
    .reverse()
    .map((severity) => {
      const findings = report.findings.filter((f) => f.severity === severity);
      if (findings.length === 0) return '';
      return `<h2>${esc(severity.charAt(0).toUpperCase() + severity.slice(1))} (${findings.length})</h2>${findings.map(renderFinding).join('')}`;
    })
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="refresh" content="30"><title>node-auditor: ${esc(report.node)}</title><style>${STYLE}</style></head>
<body><h1>node-auditor: ${esc(report.node)}</h1>
<p class="meta">version ${esc(meta.version)} · host root ${esc(meta.hostRoot)} · started ${esc(report.startedAt)}${meta.ready ? '' : ' · <strong>first pass still running</strong>'}</p>
${headline}
<h2>Checks</h2><table><tr><th>check</th><th>status</th><th>time</th><th>last run</th><th></th></tr>${checks}</table>
${sections}
<p class="meta">Also: <a href="/api/v1/findings">/api/v1/findings</a> (JSON) · <a href="/metrics">/metrics</a></p>
</body></html>
`;
}

function renderFinding(f: Finding): string {
  const evidence =
    f.evidence.length > 0 ? `<div>Evidence:</div><pre>${esc(f.evidence.join('\n'))}</pre>` : '';
  const fix =
    f.remediation === undefined ? '' : `<div>Fix:</div><pre>${esc(f.remediation.summary)}</pre>`;
  return `<div class="finding ${esc(f.severity)}"><h3>${esc(f.title)}</h3>
<div class="tag">${esc(f.check)} · ${esc(f.problem)}${f.cause === undefined ? '' : ` · cause ${esc(f.cause)}`} · since ${esc(f.firstSeen)}</div>
<p>${esc(f.message)}</p>${evidence}${fix}</div>`;
}

function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

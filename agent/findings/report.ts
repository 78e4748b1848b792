// The report: which checks ran and how, and the current findings. It is the contract shape of
// `check --output json` and GET /api/v1/findings; the table, the status page and the start-up
// summary render it.
import type { Check } from '../checks/check.ts';
import type { CheckRun } from '../runner/runCheck.ts';
import { isProblem } from './finding.ts';
import type { Finding, Severity } from './finding.ts';

export type CheckStatus = 'ok' | 'problem' | 'error' | 'skipped';

export interface CheckStatusEntry {
  id: string;
  status: CheckStatus;
  durationMs: number;
  /** When the last run started (absent for skipped checks). */
  lastRun?: string;
  /** Why the last run failed, or why the check is skipped. */
  error?: string;
  reason?: string;
}

export interface Report {
  node: string;
  startedAt: string;
  checks: CheckStatusEntry[];
  findings: Finding[];
}

/** Last run of every check, in registry order. */
export class CheckStatuses {
  private readonly order: string[];
  private readonly entries = new Map<string, CheckStatusEntry>();

  constructor(checks: readonly Check[]) {
    this.order = checks.map((c) => c.id);
  }

  record(run: CheckRun): void {
    const skipped = run.outcome?.skipped;
    if (skipped !== undefined && run.result !== 'error') {
      this.entries.set(run.check, {
        id: run.check,
        status: 'skipped',
        durationMs: Math.round(run.durationMs * 10) / 10,
        lastRun: run.startedAt.toISOString(),
        reason: skipped,
      });
      return;
    }
    this.entries.set(run.check, {
      id: run.check,
      status: run.result,
      durationMs: Math.round(run.durationMs * 10) / 10,
      lastRun: run.startedAt.toISOString(),
      ...(run.error === undefined ? {} : { error: run.error.message }),
    });
  }

  skip(id: string, reason: string): void {
    this.entries.set(id, { id, status: 'skipped', durationMs: 0, reason });
  }

  list(): CheckStatusEntry[] {
    return this.order.flatMap((id) => {
      const entry = this.entries.get(id);
      return entry === undefined ? [] : [entry];
    });
  }
}

export interface Tally {
  critical: number;
  warning: number;
  info: number;
  problems: number;
}

export function tally(findings: readonly Finding[]): Tally {
  const count = (s: Severity) => findings.filter((f) => f.severity === s).length;
  return {
    critical: count('critical'),
    warning: count('warning'),
    info: count('info'),
    problems: findings.filter((f) => isProblem(f.severity)).length,
  };
}

/** check's exit status: 0 nothing wrong, 1 warning/critical findings or a check that failed. */
export function exitStatusOf(report: Report): 0 | 1 {
  const failed = report.checks.some((c) => c.status === 'error');
  return failed || tally(report.findings).problems > 0 ? 1 : 0;
}

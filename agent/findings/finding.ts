// Our own domain model. Prometheus, Kubernetes, logs and the CLI are sinks that map it.
import type { Cause } from './causes.ts';

export const SEVERITIES = ['info', 'warning', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

export function severityRank(severity: Severity): number {
  return SEVERITIES.indexOf(severity);
}

/** Warning and critical findings are problems: they make `check` exit 1. */
export function isProblem(severity: Severity): boolean {
  return severity !== 'info';
}

export interface Remediation {
  /** What to do, with the exact commands or lines to write. */
  summary: string;
  /** True when node-auditor's remediation mode can do it (when enabled for that action). */
  automatic: boolean;
  docs?: string;
}

/** What a check reports: one current problem, with the evidence that shows it. */
export interface FindingDraft {
  /** Unique within the check and stable while the problem lasts: "<problem>" or "<problem>:<subject>". */
  id: string;
  /** PascalCase kind from a bounded vocabulary: the metric label and Kubernetes Event reason. */
  problem: string;
  severity: Severity;
  title: string;
  message: string;
  evidence: string[];
  cause?: Cause;
  remediation?: Remediation;
}

export interface Finding extends FindingDraft {
  check: string;
  /** ISO time the problem was first seen (kept across reloads, reset when it clears). */
  firstSeen: string;
  /** ISO time of the latest run that still saw it. */
  lastSeen: string;
}

export function draft(
  problem: string,
  subject: string | undefined,
  fields: Omit<FindingDraft, 'id' | 'problem'>,
): FindingDraft {
  return { id: subject === undefined ? problem : `${problem}:${subject}`, problem, ...fields };
}

/** Most severe first, then by check and id: the order every sink shows findings in. */
export function compareFindings(a: Finding, b: Finding): number {
  return (
    severityRank(b.severity) - severityRank(a.severity) ||
    byCodeUnit(a.check, b.check) ||
    byCodeUnit(a.id, b.id)
  );
}

/**
 * Plain code-unit order: the same on every node whatever its locale, and it does not wake up
 * ICU's collator (whose data pages cost several MiB of RSS in every agent).
 */
export function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

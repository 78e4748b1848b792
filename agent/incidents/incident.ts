// An incident: the lines of one failure, with one root cause. Ours (DESIGN.md: Finding, Cause,
// Incident are the domain model); the logs check maps incidents to findings, scan-logs prints them.
import type { Cause } from '../findings/causes.ts';
import type { Severity } from '../findings/finding.ts';

export interface Incident {
  /** The rules' group: one open incident per group at a time. */
  group: string;
  /** The rule that names the cause: the highest priority rule that has matched so far. */
  rule: string;
  problem: string;
  cause?: Cause;
  severity: Severity;
  title: string;
  remediation?: string;
  condition?: string;
  /** Lines that belonged to it (a line matched by several of its rules counts once). */
  count: number;
  /** Times of the first and latest line (ms since the epoch). */
  firstSeen: number;
  lastSeen: number;
  /** The distinct lines, first ones first, at most maxEvidence. */
  evidence: string[];
  /** Lines beyond maxEvidence, or repeats of a line already in evidence. */
  omitted: number;
  sources: string[];
  /** Every rule that matched one of its lines. */
  rules: string[];
  /** When it ended and why (only for ended incidents). */
  endedAt?: number;
  endReason?: string;
  /** Internal clock of its last line: wall time when following, line time when scanning. */
  lastActivity: number;
}

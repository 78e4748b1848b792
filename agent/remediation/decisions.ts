// Every remediation decision, whatever it is (acted, dry run, skipped and why, failed), is
// reported the same four ways: a Kubernetes Event on the Node with the before/after values,
// node_auditor_remediation_actions_total{action,outcome}, a log line, and the recent history
// served at /api/v1/remediations (plus an annotation on the Node for the last action).
import type { RemediationActionId } from '../config/remediationSchema.ts';

export const OUTCOMES = ['applied', 'dry_run', 'skipped', 'failed'] as const;
export type Outcome = (typeof OUTCOMES)[number];

export interface Change {
  /** A sysctl key, a host file, a kernel module or a unit. */
  what: string;
  before: string;
  after: string;
}

export interface Decision {
  /** ISO time of the decision (of the last one, for repeats). */
  at: string;
  action: RemediationActionId;
  mode: 'dryRun' | 'enforce';
  outcome: Outcome;
  /** One sentence: what was done, or why not. */
  reason: string;
  /** The findings ("<check>/<id>") that called for the action. */
  trigger: string[];
  /** NotReady causes among them that the action removes (a kubelet restart may then follow). */
  causes: string[];
  changes: Change[];
  /** The same decision repeated (a gate that stays closed): counted, not listed again. */
  count: number;
  firstAt: string;
}

/** The Event reason of each outcome (PascalCase, as every Event the agent sends). */
export const EVENT_REASON: Record<Outcome, string> = {
  applied: 'RemediationApplied',
  dry_run: 'RemediationDryRun',
  skipped: 'RemediationSkipped',
  failed: 'RemediationFailed',
};

export function describeChanges(changes: readonly Change[]): string {
  return changes.map((c) => `${c.what} ${c.before} -> ${c.after}`).join(', ');
}

/** How every decision taken in dryRun mode ends its Event message, a skip as much as a dry run. */
export const DRY_RUN_MARK = ' (dry run: nothing was changed)';

/** The Event message: action, outcome, reason and the values, in one line. */
export function eventMessage(decision: Decision): string {
  const values = describeChanges(decision.changes);
  const mode = decision.mode === 'dryRun' ? DRY_RUN_MARK : '';
  return `${decision.action}: ${decision.reason}${values === '' ? '' : `; ${values}`}${mode}`;
}

/** The last decisions, newest last; a decision equal to the previous one of its action is folded in. */
export class DecisionHistory {
  private readonly decisions: Decision[] = [];
  private readonly limit: number;

  constructor(limit = 100) {
    this.limit = limit;
  }

  /**
   * Records a decision; returns false when it repeats the action's previous one (the same
   * outcome, values and reason but for the numbers in it), which is folded into that one.
   */
  add(decision: Omit<Decision, 'count' | 'firstAt'>): boolean {
    const previous = this.decisions.findLast((d) => d.action === decision.action);
    if (previous !== undefined && sameDecision(previous, decision)) {
      previous.count += 1;
      previous.at = decision.at;
      previous.reason = decision.reason;
      return false;
    }
    this.decisions.push({ ...decision, count: 1, firstAt: decision.at });
    if (this.decisions.length > this.limit)
      this.decisions.splice(0, this.decisions.length - this.limit);
    return true;
  }

  list(): Decision[] {
    return this.decisions.map((d) => ({
      ...d,
      trigger: [...d.trigger],
      causes: [...d.causes],
      changes: [...d.changes],
    }));
  }

  /** When the action last ran (or would have, in a dry run) with this outcome, if it did. */
  lastAt(action: RemediationActionId, outcomes: readonly Outcome[]): Decision | undefined {
    return this.decisions.findLast((d) => d.action === action && outcomes.includes(d.outcome));
  }
}

function sameDecision(a: Decision, b: Omit<Decision, 'count' | 'firstAt'>): boolean {
  return (
    a.outcome === b.outcome &&
    a.mode === b.mode &&
    // "ran 45s ago ... allowed again in 58m": the same gate saying the same thing as time passes
    sameShape(a.reason) === sameShape(b.reason) &&
    a.trigger.join('\n') === b.trigger.join('\n') &&
    describeChanges(a.changes) === describeChanges(b.changes)
  );
}

function sameShape(reason: string): string {
  return reason.replace(/\d+/g, '#');
}

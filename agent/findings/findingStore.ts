// Current findings of every check. A finding is raised when a check reports it and cleared as
// soon as a run of that check no longer does (node-problem-detector's conditions never clear;
// ours must). Sinks subscribe to transitions.
import { compareFindings } from './finding.ts';
import type { Finding, FindingDraft } from './finding.ts';

export type Transition =
  | { kind: 'raised'; finding: Finding }
  | { kind: 'changed'; finding: Finding; previous: Finding }
  | { kind: 'cleared'; finding: Finding; reason: string };

export type TransitionListener = (transition: Transition) => void;

export class FindingStore {
  private readonly byCheck = new Map<string, Map<string, Finding>>();
  private readonly listeners: TransitionListener[] = [];

  onTransition(listener: TransitionListener): void {
    this.listeners.push(listener);
  }

  /** Replace a check's findings with the ones its latest run reported. */
  reconcile(check: string, drafts: readonly FindingDraft[], now = new Date()): void {
    const previous = this.byCheck.get(check) ?? new Map<string, Finding>();
    const next = new Map<string, Finding>();
    const transitions: Transition[] = [];
    for (const d of drafts) {
      if (next.has(d.id)) continue; // a check reporting one id twice: keep the first
      const { finding, transition } = this.merge(check, d, previous.get(d.id), now);
      next.set(d.id, finding);
      if (transition !== undefined) transitions.push(transition);
    }
    for (const [id, finding] of previous) {
      if (!next.has(id))
        transitions.push({ kind: 'cleared', finding, reason: 'no longer observed' });
    }
    this.byCheck.set(check, next);
    this.emit(transitions);
  }

  /** Add or refresh one finding without touching the check's others (used when a check fails). */
  upsert(check: string, d: FindingDraft, now = new Date()): void {
    const findings = this.byCheck.get(check) ?? new Map<string, Finding>();
    const { finding, transition } = this.merge(check, d, findings.get(d.id), now);
    findings.set(d.id, finding);
    this.byCheck.set(check, findings);
    if (transition !== undefined) this.emit([transition]);
  }

  /** Drop every finding of a check (it was disabled): they are cleared, with that reason. */
  clearCheck(check: string, reason: string): void {
    const findings = this.byCheck.get(check);
    if (findings === undefined) return;
    this.byCheck.delete(check);
    this.emit([...findings.values()].map((finding) => ({ kind: 'cleared', finding, reason })));
  }

  active(): Finding[] {
    const all: Finding[] = [];
    for (const findings of this.byCheck.values()) all.push(...findings.values());
    return all.sort(compareFindings);
  }

  ofCheck(check: string): Finding[] {
    return [...(this.byCheck.get(check)?.values() ?? [])].sort(compareFindings);
  }

  private merge(
    check: string,
    d: FindingDraft,
    old: Finding | undefined,
    now: Date,
  ): { finding: Finding; transition?: Transition } {
    const at = now.toISOString();
    if (old === undefined) {
      const finding: Finding = { check, ...d, firstSeen: at, lastSeen: at };
      return { finding, transition: { kind: 'raised', finding } };
    }
    const finding: Finding = { check, ...d, firstSeen: old.firstSeen, lastSeen: at };
    const changed =
      old.severity !== d.severity || old.title !== d.title || old.message !== d.message;
    return changed
      ? { finding, transition: { kind: 'changed', finding, previous: old } }
      : { finding };
  }

  private emit(transitions: Transition[]): void {
    for (const transition of transitions) {
      for (const listener of this.listeners) {
        // A sink that throws must not stop the others or the check that reported.
        try {
          listener(transition);
        } catch {
          /* sinks log their own failures */
        }
      }
    }
  }
}

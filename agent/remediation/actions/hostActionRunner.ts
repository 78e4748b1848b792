// The inotify-limits and kernel-networking actions as the engine sees them: a plan it can
// report (dry run or a skip) with before/after values, and an apply that verifies and rolls
// back (sysctlActions.ts does the host work).
import type { RemediationSettings } from '../../config/remediationSchema.ts';
import { describeError } from '../../errors.ts';
import type { HostRoot } from '../../host/hostRoot.ts';
import type { Change } from '../decisions.ts';
import type { ActionRunner } from '../remediationEngine.ts';
import { HostWriter } from '../hostWriter.ts';
import {
  applyPlan,
  describeApplied,
  planInotifyLimits,
  planKernelNetworking,
} from './sysctlActions.ts';
import type { ActionPlan, ActionResult, HostActionName } from './sysctlActions.ts';

export function hostActionRunner(
  action: HostActionName,
  host: HostRoot,
  settings: RemediationSettings,
  loadModule: (name: string) => Promise<void>,
): ActionRunner {
  let planned: ActionPlan | undefined;
  const makePlan = async (): Promise<ActionPlan> =>
    action === 'inotify-limits'
      ? planInotifyLimits(host, settings.actions['inotify-limits'])
      : planKernelNetworking(host);
  return {
    async plan() {
      planned = await makePlan();
      return planned.nothingToDo ? [] : planChanges(planned);
    },
    expectedReason() {
      if (planned === undefined) throw new Error(`${action}: expectedReason before plan`);
      return withNotes(describeApplied(planned), planned.warnings);
    },
    // Not started once the agent stops or the lock is lost; once started it runs to its end:
    // it is short (milliseconds of file and /proc writes), and a rollback must not be cut off.
    async apply(signal) {
      if (signal.aborted) {
        return {
          outcome: 'skipped',
          reason: `not applied: ${describeError(signal.reason)}`,
          changes: [],
        };
      }
      const plan = planned ?? (await makePlan());
      const result = await applyPlan(new HostWriter(host), plan, { loadModule });
      return {
        outcome: result.outcome === 'applied' ? 'applied' : 'failed',
        reason: reasonOf(result),
        changes: resultChanges(result, plan),
      };
    },
  };
}

function planChanges(plan: ActionPlan): Change[] {
  return [
    ...plan.modules.map((name) => ({
      what: `module ${name}`,
      before: 'not loaded',
      after: 'loaded',
    })),
    ...plan.changes.map((c) => ({ what: c.key, before: c.before ?? '(absent)', after: c.after })),
    ...plan.files.map((f) => ({
      what: f.path,
      before: f.before === null ? '(none)' : 'older content',
      after: 'written',
    })),
  ];
}

function resultChanges(result: ActionResult, plan: ActionPlan): Change[] {
  return [
    ...result.modulesLoaded.map((name) => ({
      what: `module ${name}`,
      before: 'not loaded',
      after: 'loaded',
    })),
    ...result.keys.map((k) => ({
      what: k.key,
      before: k.before ?? '(absent)',
      after: k.after ?? '(absent)',
    })),
    ...result.files
      .filter((f) => f.written)
      .map((f) => ({
        what: f.path,
        before:
          plan.files.find((p) => p.path === f.path)?.before === null ? '(none)' : 'older content',
        after: f.restored ? 'restored' : 'written',
      })),
  ];
}

function reasonOf(result: ActionResult): string {
  return withNotes(result.reason, [
    ...(result.outcome === 'rolled_back' ? ['rolled back'] : []),
    ...(result.hostLeftChanged ? [`NOT fully restored: ${result.rollbackErrors.join('; ')}`] : []),
    ...result.warnings,
  ]);
}

function withNotes(reason: string, notes: readonly string[]): string {
  return notes.length === 0 ? reason : `${reason} (${notes.join('; ')})`;
}

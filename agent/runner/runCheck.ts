// One run of one check, isolated: a check that throws, rejects or hangs is reported as an
// error run and never affects another check, the scrape or the process.
import type { Logger } from 'pino';
import type { Check, CheckOutcome, CheckServices } from '../checks/check.ts';
import type { CheckSettings } from '../config/configSchema.ts';
import { durationMs, formatDuration } from '../config/duration.ts';
import { AuditorError, ErrorCode, describeError } from '../errors.ts';
import { draft, isProblem } from '../findings/finding.ts';
import type { FindingDraft } from '../findings/finding.ts';
import type { FindingStore } from '../findings/findingStore.ts';
import type { HostRoot } from '../host/hostRoot.ts';

export type RunResult = 'ok' | 'problem' | 'error';

export interface CheckRun {
  check: string;
  result: RunResult;
  startedAt: Date;
  durationMs: number;
  outcome?: CheckOutcome;
  error?: AuditorError;
}

interface InFlight {
  startedAt: Date;
  controller: AbortController;
  /** Epoch ms when its timeout ends. */
  deadline: number;
  /** Resolves when the run's promise settles (never, for a hung check). */
  settled: Promise<void>;
}

export interface RunnerDeps {
  host: HostRoot;
  nodeName: string;
  log: Logger;
  /** The agent's live services, looked up at each run (they start after the runner). */
  services?: () => CheckServices;
}

export class CheckRunner {
  private readonly deps: RunnerDeps;
  /** Runs whose promise has not settled, even after their timeout: a hung check stays here. */
  private readonly inFlight = new Map<string, InFlight>();

  constructor(deps: RunnerDeps) {
    this.deps = deps;
  }

  async run(check: Check, settings: CheckSettings): Promise<CheckRun> {
    const run = await this.attempt(check, settings);
    // --log-level debug: every run with what it found (why a check says ok); trace: which.
    const { log } = this.deps;
    if (log.isLevelEnabled('debug')) {
      const findings = run.outcome?.findings ?? [];
      const skipped = run.outcome?.skipped;
      const ms = Math.round(run.durationMs);
      log.debug(
        {
          event: 'check.run',
          check: run.check,
          result: skipped === undefined ? run.result : 'skipped',
          durationMs: ms,
          findings: findings.length,
          ...(skipped === undefined ? {} : { skipped }),
          ...(run.error === undefined ? {} : { error: run.error.message }),
          ...(log.isLevelEnabled('trace') ? { ids: findings.map((f) => f.id) } : {}),
        },
        `check ${run.check}: ${skipped === undefined ? run.result : `skipped (${skipped})`} in ${ms}ms, ${findings.length} finding${findings.length === 1 ? '' : 's'}`,
      );
    }
    return run;
  }

  private async attempt(check: Check, settings: CheckSettings): Promise<CheckRun> {
    // A run of this check still within its timeout (a reload or a cron tick came early): wait
    // for it rather than calling it stuck.
    const running = this.inFlight.get(check.id);
    if (running !== undefined && Date.now() < running.deadline) {
      let wait: NodeJS.Timeout | undefined;
      await Promise.race([
        running.settled,
        new Promise((resolve) => (wait = setTimeout(resolve, running.deadline - Date.now()))),
      ]);
      clearTimeout(wait);
    }
    const startedAt = new Date();
    const previous = this.inFlight.get(check.id);
    if (previous !== undefined) {
      // Past its timeout and still not settled: hung. Another run on top would pile them up.
      return {
        check: check.id,
        result: 'error',
        startedAt,
        durationMs: 0,
        error: new AuditorError(
          ErrorCode.CheckStillRunning,
          `the run started at ${previous.startedAt.toISOString()} has not finished (hung?); not starting another`,
        ),
      };
    }
    const controller = new AbortController();
    const timeoutMs = durationMs(settings.timeout);
    const t0 = performance.now();

    // Promise.resolve().then(): a check that throws synchronously becomes a rejection too.
    const run = Promise.resolve().then(() =>
      check.run({
        host: this.deps.host,
        nodeName: this.deps.nodeName,
        options: settings,
        signal: controller.signal,
        log: this.deps.log.child({ check: check.id }),
        services: this.deps.services?.() ?? {},
      }),
    );
    const entry: InFlight = {
      startedAt,
      controller,
      deadline: Date.now() + timeoutMs,
      settled: run.then(
        () => {
          this.settle(check.id, entry);
        },
        () => {
          this.settle(check.id, entry);
        },
      ),
    };
    this.inFlight.set(check.id, entry);

    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => {
        resolve('timeout');
      }, timeoutMs);
    });
    try {
      const outcome = await Promise.race([run, timedOut]);
      const elapsed = performance.now() - t0;
      if (outcome === 'timeout') {
        const error = new AuditorError(
          ErrorCode.CheckTimeout,
          `did not finish within its ${formatDuration(timeoutMs)} timeout`,
        );
        controller.abort(error);
        return { check: check.id, result: 'error', startedAt, durationMs: elapsed, error };
      }
      const result = outcome.findings.some((f) => isProblem(f.severity)) ? 'problem' : 'ok';
      return { check: check.id, result, startedAt, durationMs: elapsed, outcome };
    } catch (cause) {
      const error = new AuditorError(ErrorCode.CheckFailed, describeError(cause), { cause });
      return {
        check: check.id,
        result: 'error',
        startedAt,
        durationMs: performance.now() - t0,
        error,
      };
    } finally {
      clearTimeout(timer);
    }
  }

  /** Ask every in-flight run to stop (agent shutdown). */
  abortAll(reason: string): void {
    for (const { controller } of this.inFlight.values()) controller.abort(new Error(reason));
  }

  private settle(id: string, entry: InFlight): void {
    if (this.inFlight.get(id) === entry) this.inFlight.delete(id);
  }
}

/**
 * Where a run's findings go: the running agent (`run`), which keeps a check's earlier findings
 * through a failed run, or one pass of `check`, which has no earlier findings, no metrics and
 * logs only warnings unless asked.
 */
export type RunContext = 'agent' | 'once';

/** The finding a failed run leaves: the check's earlier findings are kept, not cleared. */
export function checkFailedFinding(run: CheckRun, context: RunContext = 'agent'): FindingDraft {
  const why = run.error?.message ?? 'unknown error';
  const cause = run.error?.cause;
  const evidence = [why];
  if (cause instanceof Error && cause.stack !== undefined) {
    const where = cause.stack.split('\n').find((line) => line.trim().startsWith('at '));
    if (where !== undefined) evidence.push(where.trim());
  }
  const verb =
    run.error?.code === ErrorCode.CheckTimeout
      ? 'timed out'
      : run.error?.code === ErrorCode.CheckStillRunning
        ? 'is stuck'
        : 'failed';
  return draft('CheckFailed', undefined, {
    severity: 'warning',
    title: `check ${run.check} ${verb}`,
    message:
      context === 'agent'
        ? `The ${run.check} check ${verb}: ${why}. What it reported before is kept until it runs successfully again.`
        : `The ${run.check} check ${verb}: ${why}.`,
    evidence,
    remediation: {
      summary:
        context === 'agent'
          ? `See the agent's log for check=${run.check}; node_auditor_check_runs_total{check="${run.check}",result="error"} counts these failures.`
          : `Run "node-auditor check --only ${run.check} --log-level debug" to see what it did.`,
      automatic: false,
    },
  });
}

/**
 * Findings after a run: a good run replaces the check's findings (what it no longer sees is
 * cleared); a failed run adds CheckFailed and keeps the rest, since nothing is known to be fixed.
 */
export function applyRunToFindings(
  store: FindingStore,
  run: CheckRun,
  context: RunContext = 'agent',
): void {
  if (run.result === 'error' || run.outcome === undefined)
    store.upsert(run.check, checkFailedFinding(run, context));
  else store.reconcile(run.check, run.outcome.findings);
}

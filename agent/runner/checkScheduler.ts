// Runs each enabled check on its own schedule: every `interval` (measured from the end of the
// previous run, so runs never overlap) or on a cron expression. A reload reschedules only the
// checks whose settings changed; findings and metrics are not touched by rescheduling.
import type { ScheduledTask } from 'node-cron';
import type { Logger } from 'pino';
import type { Check } from '../checks/check.ts';
import type { CheckSettings } from '../config/configSchema.ts';
import { durationMs } from '../config/duration.ts';
import type { CheckRun, CheckRunner } from './runCheck.ts';

interface Job {
  check: Check;
  settings: CheckSettings;
  fingerprint: string;
  timer?: NodeJS.Timeout;
  task?: ScheduledTask;
  stopped: boolean;
  running: boolean;
  /** runSoon() was called while a run was going: run again as soon as it ends. */
  rerun: boolean;
}

export interface SchedulerEvents {
  /** Every finished run, ok or not. */
  onRun(run: CheckRun): void;
  /** A check was disabled by a reload. */
  onDisabled(checkId: string): void;
}

export class CheckScheduler {
  private readonly checks: readonly Check[];
  private readonly runner: CheckRunner;
  private readonly events: SchedulerEvents;
  private readonly log: Logger;
  private readonly jobs = new Map<string, Job>();

  constructor(checks: readonly Check[], runner: CheckRunner, events: SchedulerEvents, log: Logger) {
    this.checks = checks;
    this.runner = runner;
    this.events = events;
    this.log = log;
  }

  /**
   * Schedule checks per `settings` (start or reload). Checks that are new or changed run at
   * once. Returns the ids of the checks that changed (started, rescheduled or stopped) and a
   * promise of their first runs (the agent is ready once the first call's has resolved).
   */
  apply(settings: Readonly<Record<string, CheckSettings>>): {
    changed: string[];
    firstRuns: Promise<void>;
  } {
    const firstRuns: Promise<void>[] = [];
    const changed: string[] = [];
    for (const check of this.checks) {
      const wanted = settings[check.id];
      const job = this.jobs.get(check.id);
      if (wanted === undefined || !wanted.enabled) {
        if (job !== undefined) {
          this.stopJob(job);
          this.jobs.delete(check.id);
          this.events.onDisabled(check.id);
          changed.push(check.id);
        }
        continue;
      }
      const fingerprint = JSON.stringify(wanted);
      if (job !== undefined && job.fingerprint === fingerprint) continue;
      if (job !== undefined) this.stopJob(job);
      const next: Job = {
        check,
        settings: wanted,
        fingerprint,
        stopped: false,
        running: false,
        rerun: false,
      };
      this.jobs.set(check.id, next);
      changed.push(check.id);
      firstRuns.push(this.startJob(next));
    }
    return { changed, firstRuns: Promise.all(firstRuns).then(() => undefined) };
  }

  /**
   * Run a check now, outside its schedule (something it reports on changed); its interval
   * starts again from this run. Coalesced: calls during a run make one more run after it.
   */
  runSoon(checkId: string): void {
    const job = this.jobs.get(checkId);
    if (job === undefined || job.stopped) return;
    if (job.running) {
      job.rerun = true;
      return;
    }
    clearTimeout(job.timer);
    void this.runOnce(job).finally(() => {
      if (job.settings.cron === undefined && job.task === undefined) {
        clearTimeout(job.timer);
        this.scheduleNext(job);
      }
    });
  }

  stop(): void {
    for (const job of this.jobs.values()) this.stopJob(job);
    this.jobs.clear();
    this.runner.abortAll('agent stopping');
  }

  private async startJob(job: Job): Promise<void> {
    await this.runOnce(job);
    if (job.stopped) return;
    if (job.settings.cron !== undefined) {
      // Loaded on first use only (see cronExpression in configSchema.ts).
      const cron = await import('node-cron');
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- stopJob() may have run while we awaited
      if (job.stopped) return;
      job.task = cron.schedule(job.settings.cron, () => this.runOnce(job), {
        name: `check:${job.check.id}`,
        // a tick while the previous run is still going is skipped, not queued
        noOverlap: true,
        // node-cron logs missed runs to the console by default; route them to our log.
        logger: {
          info: (msg) => {
            this.log.debug({ check: job.check.id }, msg);
          },
          warn: (msg) => {
            this.log.warn({ check: job.check.id }, msg);
          },
          error: (msg) => {
            this.log.error({ check: job.check.id }, String(msg));
          },
          debug: (msg) => {
            this.log.debug({ check: job.check.id }, String(msg));
          },
        },
      });
    } else {
      this.scheduleNext(job);
    }
  }

  private scheduleNext(job: Job): void {
    if (job.stopped) return;
    job.timer = setTimeout(() => {
      // runOnce does not reject; if it ever did, the check must still be scheduled again.
      void this.runOnce(job)
        .catch((error: unknown) => {
          this.log.error({ err: error, check: job.check.id }, 'check run failed unexpectedly');
        })
        .finally(() => {
          this.scheduleNext(job);
        });
    }, durationMs(job.settings.interval));
  }

  private async runOnce(job: Job): Promise<void> {
    job.running = true;
    try {
      do {
        job.rerun = false;
        const run = await this.runner.run(job.check, job.settings);
        // Replaced by a reload (the new job runs with the new settings) or disabled (its
        // findings were cleared): this result must not be recorded.
        if (job.stopped) return;
        try {
          this.events.onRun(run);
        } catch (error) {
          this.log.error({ err: error, check: job.check.id }, 'recording a check run failed');
        }
      } while (this.shouldRerun(job));
    } finally {
      job.running = false;
    }
  }

  private shouldRerun(job: Job): boolean {
    return job.rerun && !job.stopped;
  }

  private stopJob(job: Job): void {
    job.stopped = true;
    clearTimeout(job.timer);
    if (job.task !== undefined) void job.task.destroy();
  }
}

// The optional maintenance window: actions only while the current minute matches a cron
// expression in an IANA time zone. `* 2-4 * * 1-5` with Europe/Berlin is 02:00-04:59 Berlin
// time on weekdays, whatever the node's own zone and across DST changes: matching is done on
// real instants, converted to the zone's wall time (node-cron's TimeMatcher, via Intl). On the
// spring-forward night a window inside the skipped hour does not open; on the fall-back night
// the repeated hour is open twice. Both are what the wall clock says.
//
// node-cron is loaded only when a window is configured (it pulls in child_process and crypto),
// and its tasks are created, never started: we only ask them to match() a date.
import type { ScheduledTask } from 'node-cron';
import { ALLOWED, cannotDecide } from './blockers.ts';
import type { GateDecision } from './blockers.ts';

export interface MaintenanceWindowOptions {
  /** Five fields: minute hour day-of-month month day-of-week. */
  schedule: string;
  /** IANA zone name; default UTC (never the agent's own zone, which is the container's). */
  timeZone?: string;
}

const MINUTE_MS = 60_000;
/** How far ahead "next opens at" looks; a window that opens less often is reported as such. */
const LOOKAHEAD_DAYS = 366;

/**
 * Why a window setting is unusable, or undefined when it is fine (for the config schema; the
 * messages name the value, the caller names the key).
 */
export async function validateMaintenanceWindow(
  options: MaintenanceWindowOptions,
): Promise<string | undefined> {
  const fields = options.schedule.trim().split(/\s+/);
  // Five fields only: a seconds field (node-cron's sixth) would open the window for single
  // seconds, and a nickname (@hourly) for single minutes; neither is a window.
  if (fields.length !== 5 || fields.some((f) => f.startsWith('@')))
    return `maintenance window ${JSON.stringify(options.schedule)} must have five fields (minute hour day-of-month month day-of-week)`;
  if (options.timeZone !== undefined && !isTimeZone(options.timeZone))
    return `${JSON.stringify(options.timeZone)} is not an IANA time zone (e.g. Europe/Berlin, UTC)`;
  const { validateDetailed } = await import('node-cron');
  const result = validateDetailed(options.schedule);
  if (result.valid) return undefined;
  const why = result.errors.map((e) => `${e.field}: ${e.message}`).join('; ');
  return `invalid cron expression ${JSON.stringify(options.schedule)}${why === '' ? '' : ` (${why})`}`;
}

export class MaintenanceWindow {
  readonly schedule: string;
  readonly timeZone: string;
  private readonly minute: ScheduledTask;
  /** The same expression with the minute field `*`: does any minute of this hour match? */
  private readonly hour: ScheduledTask;
  /** ... with minute and hour `*`: does any minute of this day match? */
  private readonly day: ScheduledTask;
  private readonly wallClock: Intl.DateTimeFormat;

  private constructor(
    schedule: string,
    timeZone: string,
    tasks: [ScheduledTask, ScheduledTask, ScheduledTask],
  ) {
    this.schedule = schedule;
    this.timeZone = timeZone;
    [this.minute, this.hour, this.day] = tasks;
    this.wallClock = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      weekday: 'short',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
    });
  }

  /** Throws (naming the value) when the setting is unusable; see validateMaintenanceWindow. */
  static async create(options: MaintenanceWindowOptions): Promise<MaintenanceWindow> {
    const invalid = await validateMaintenanceWindow(options);
    if (invalid !== undefined) throw new Error(invalid);
    const { createTask } = await import('node-cron');
    const timeZone = options.timeZone ?? 'UTC';
    const [, hour, dom, month, dow] = options.schedule.trim().split(/\s+/);
    const task = (expression: string): ScheduledTask =>
      createTask(expression, () => undefined, { timezone: timeZone });
    return new MaintenanceWindow(options.schedule, timeZone, [
      task(options.schedule),
      task(`* ${hour ?? '*'} ${dom ?? '*'} ${month ?? '*'} ${dow ?? '*'}`),
      task(`* * ${dom ?? '*'} ${month ?? '*'} ${dow ?? '*'}`),
    ]);
  }

  /** Is the window open in the minute of `at`? */
  isOpen(at: Date): boolean {
    return this.minute.match(startOfMinute(at.getTime()));
  }

  /** The gate: open, or closed with when it next opens. */
  check(at: Date = new Date()): GateDecision {
    if (this.isOpen(at)) return ALLOWED;
    const next = this.nextOpening(at);
    const when =
      next === undefined
        ? `it does not open within the next ${LOOKAHEAD_DAYS} days`
        : `it next opens ${this.describe(next)}`;
    return {
      allowed: false,
      reason: `outside the maintenance window "${this.schedule}" (${this.timeZone}); ${when}`,
    };
  }

  /**
   * The first minute after `at` in which the window is open, or undefined within a year.
   * Whole days and hours that cannot match are skipped (two matches instead of 60 or 1440):
   * a minute-by-minute walk over a year would block the event loop for seconds.
   */
  nextOpening(at: Date): Date | undefined {
    const end = at.getTime() + LOOKAHEAD_DAYS * 24 * 60 * MINUTE_MS;
    let t = startOfMinute(at.getTime()).getTime() + MINUTE_MS;
    while (t <= end) {
      const date = new Date(t);
      if (!this.day.match(date)) {
        const { hour, minute } = this.wallTime(date);
        const toNextHour = 60 - minute;
        // One hour short of midnight by the naive count: on a 23-hour (spring-forward) day the
        // naive count would overshoot into the next day's first hour. Landing early only costs
        // another step.
        t += Math.max(toNextHour, (23 - hour) * 60 + toNextHour - 60) * MINUTE_MS;
        continue;
      }
      if (!this.hour.match(date)) {
        t += (60 - this.wallTime(date).minute) * MINUTE_MS;
        continue;
      }
      if (this.minute.match(date)) return date;
      t += MINUTE_MS;
    }
    return undefined;
  }

  /** Remove the tasks from node-cron's registry (on reload or shutdown). */
  close(): void {
    for (const task of [this.minute, this.hour, this.day]) void task.destroy();
  }

  /** "at Mon 2025-01-13 02:00 Europe/Berlin (2025-01-13T01:00:00Z)". */
  private describe(date: Date): string {
    const p = this.parts(date);
    const utc = date.toISOString().replace(/\.000Z$/, 'Z');
    return `at ${p.weekday} ${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute} ${this.timeZone} (${utc})`;
  }

  private wallTime(date: Date): { hour: number; minute: number } {
    const p = this.parts(date);
    return { hour: Number(p.hour) % 24, minute: Number(p.minute) };
  }

  private parts(date: Date): Record<string, string> {
    const out: Record<string, string> = {};
    for (const part of this.wallClock.formatToParts(date)) out[part.type] = part.value;
    return out;
  }
}

/**
 * The window gate in one call (no window configured: open). Never throws: an unusable setting
 * denies with the reason. An engine that checks often should keep a MaintenanceWindow instead.
 */
export async function checkMaintenanceWindow(
  options: MaintenanceWindowOptions | undefined,
  at: Date = new Date(),
): Promise<GateDecision> {
  if (options === undefined) return ALLOWED;
  let window: MaintenanceWindow | undefined;
  try {
    window = await MaintenanceWindow.create(options);
    return window.check(at);
  } catch (error) {
    return cannotDecide(error);
  } finally {
    window?.close();
  }
}

function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

/** node-cron fills in a seconds field of 0 for five-field expressions: match at second 0. */
function startOfMinute(ms: number): Date {
  return new Date(ms - (((ms % MINUTE_MS) + MINUTE_MS) % MINUTE_MS));
}

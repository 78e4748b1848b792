// The per-node rate limit: at most N actions in any rolling hour, and per action a cooldown
// after it last ran. The history lives in one small JSON file under stateDir, so a crash loop
// of the agent (the very thing a bad action can cause) does not reset the limit; a file that
// cannot be read or makes no sense denies ("cannot decide"), it is never taken as empty.
//
// Times are wall-clock (the history must outlive the process, a monotonic clock does not). A
// clock that went back would leave entries "in the future": they count as just now and are
// rewritten as such, so a wrong clock costs one window, not a window per year it jumped.
//
// Dry runs are kept apart from real actions (each mode counts only its own), so a dry run says
// exactly what enforce mode would, and switching to enforce starts with a fresh budget.
import path from 'node:path';
import { errnoCode, fileErrorReason } from '../../errors.ts';
import { readFile, writeFileAtomic } from '../../host/asyncFs.ts';
import { ALLOWED, cannotDecide } from './blockers.ts';
import type { GateDecision } from './blockers.ts';

export const REMEDIATION_HISTORY_FILE = 'remediation-history.json';

const HOUR_MS = 3_600_000;
/** A file of more entries than this is trimmed to the newest; the limit needs far fewer. */
const MAX_ENTRIES = 1000;
/** A history file larger than this is not ours (1000 entries are about 80 kB). */
const MAX_FILE_BYTES = 1024 * 1024;

export interface RateLimitOptions {
  /** The agent's stateDir (a host path, so the history survives the pod). */
  stateDir: string;
  /** Actions (all names together) per rolling hour on this node. The default config is 3. */
  maxActionsPerHour: number;
  /** Per action name: milliseconds after it last ran before it may run again (absent: none). */
  cooldownsMs?: Readonly<Record<string, number>>;
  /** Wall-clock milliseconds (tests drive it). */
  now?: () => number;
}

export interface HistoryEntry {
  action: string;
  /** Wall-clock milliseconds. */
  at: number;
  dryRun: boolean;
}

interface HistoryFile {
  version: 1;
  actions: { action: string; at: string; dryRun?: boolean }[];
}

export class RemediationRateLimit {
  readonly file: string;
  private readonly options: RateLimitOptions;
  private readonly now: () => number;
  /** Reads and writes one at a time: check-then-record must not interleave with another record. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(options: RateLimitOptions) {
    this.options = options;
    this.file = path.join(options.stateDir, REMEDIATION_HISTORY_FILE);
    this.now = options.now ?? Date.now;
  }

  /** May `action` run now? Never throws: an unreadable history denies. */
  async check(action: string, mode: { dryRun?: boolean } = {}): Promise<GateDecision> {
    try {
      return await this.serialized(async () => {
        const now = this.now();
        const { entries, clamped } = await this.load(now);
        if (clamped) await this.save(entries);
        return this.decide(action, mode.dryRun ?? false, entries, now);
      });
    } catch (error) {
      return cannotDecide(error);
    }
  }

  /**
   * Count `action` as done now. Call it after every gate allowed and before acting, so an action
   * that crashes the agent half-way still counts. Throws when the history cannot be written
   * (then do not act: the next start would not know about it).
   */
  async record(action: string, mode: { dryRun?: boolean } = {}): Promise<void> {
    await this.serialized(async () => {
      const now = this.now();
      const { entries } = await this.load(now);
      entries.push({ action, at: now, dryRun: mode.dryRun ?? false });
      await this.save(this.prune(entries, now));
    });
  }

  /** The history as stored (for the engine's status page); throws when unreadable. */
  async history(): Promise<HistoryEntry[]> {
    return this.serialized(async () => (await this.load(this.now())).entries);
  }

  private decide(
    action: string,
    dryRun: boolean,
    entries: HistoryEntry[],
    now: number,
  ): GateDecision {
    const mine = entries.filter((e) => e.dryRun === dryRun);
    const ran = dryRun ? 'was dry-run' : 'ran';
    const cooldown = this.options.cooldownsMs?.[action] ?? 0;
    const last = mine.filter((e) => e.action === action).at(-1);
    if (cooldown > 0 && last !== undefined && now - last.at < cooldown) {
      const reason =
        `${action} ${ran} ${span(now - last.at)} ago and its cooldown is ${span(cooldown)} ` +
        `(allowed again in ${span(last.at + cooldown - now)})`;
      // A dry run changes nothing, so its finding stays and asks again every minute: what
      // enforce would do then is nothing at all (its fix cleared the finding), not a skip.
      return dryRun ? { allowed: false, reason, dryRunStands: true } : { allowed: false, reason };
    }
    const max = this.options.maxActionsPerHour;
    const lastHour = mine.filter((e) => now - e.at < HOUR_MS);
    if (lastHour.length >= max) {
      // the oldest of the last `max` leaves the window first
      const frees = (lastHour[lastHour.length - max]?.at ?? now) + HOUR_MS;
      const n = lastHour.length;
      const done = dryRun ? (n === 1 ? 'was dry-run' : 'were dry-run') : 'ran';
      return {
        allowed: false,
        reason:
          `${n} remediation action${n === 1 ? '' : 's'} ${done} on this node in the last hour, ` +
          `the limit is ${max} (the next is allowed in ${span(frees - now)})`,
      };
    }
    return ALLOWED;
  }

  /** Entries oldest first; future entries clamped to now. ENOENT is an empty history. */
  private async load(now: number): Promise<{ entries: HistoryEntry[]; clamped: boolean }> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return { entries: [], clamped: false };
      throw new Error(
        `the remediation history ${this.file} cannot be read (${fileErrorReason(error)})`,
        { cause: error },
      );
    }
    const entries = parseHistory(text, this.file);
    let clamped = false;
    for (const entry of entries) {
      if (entry.at > now) {
        entry.at = now;
        clamped = true;
      }
    }
    entries.sort((a, b) => a.at - b.at);
    return { entries, clamped };
  }

  /** Keeps what the limit and the cooldowns can still need. */
  private prune(entries: HistoryEntry[], now: number): HistoryEntry[] {
    const keepMs = Math.max(HOUR_MS, ...Object.values(this.options.cooldownsMs ?? {}));
    return entries.filter((e) => now - e.at < keepMs).slice(-MAX_ENTRIES);
  }

  /** Temporary file, fsync, rename, fsync the directory: after a power cut, old or new, never torn. */
  private async save(entries: HistoryEntry[]): Promise<void> {
    const doc: HistoryFile = {
      version: 1,
      actions: entries.map((e) => ({
        action: e.action,
        at: new Date(e.at).toISOString(),
        dryRun: e.dryRun,
      })),
    };
    try {
      await writeFileAtomic(this.file, `${JSON.stringify(doc)}\n`);
    } catch (error) {
      throw new Error(
        `cannot write the remediation history ${this.file} (${fileErrorReason(error)})`,
        { cause: error },
      );
    }
  }

  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }
}

/** The file's entries, or an error naming the file and what is wrong with it. */
export function parseHistory(text: string, file: string): HistoryEntry[] {
  const bad = (why: string) =>
    new Error(
      `the remediation history ${file} is not valid (${why}); fix or remove it to reset the rate limit`,
    );
  if (text.length > MAX_FILE_BYTES) throw bad(`larger than ${MAX_FILE_BYTES} bytes`);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    // an empty file too: an interrupted write of a tool other than ours; not "no history"
    throw bad('not JSON');
  }
  if (typeof doc !== 'object' || doc === null || (doc as { version?: unknown }).version !== 1)
    throw bad('not version 1');
  const actions = (doc as { actions?: unknown }).actions;
  if (!Array.isArray(actions)) throw bad('no "actions" list');
  return actions.map((raw: unknown, i) => {
    const e = raw as { action?: unknown; at?: unknown; dryRun?: unknown };
    const at = typeof e.at === 'string' ? Date.parse(e.at) : NaN;
    if (typeof e.action !== 'string' || e.action === '' || !Number.isFinite(at))
      throw bad(`entry ${i} has no action name or time`);
    if (e.dryRun !== undefined && typeof e.dryRun !== 'boolean')
      throw bad(`entry ${i} has a dryRun that is not true or false`);
    return { action: e.action, at, dryRun: e.dryRun === true };
  });
}

/** "45 s", "12 min", "2 h 5 min": rounded up, so "allowed again in" is never too early. */
function span(ms: number): string {
  const seconds = Math.max(0, Math.ceil(ms / 1000));
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.ceil(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  return m === 0 ? `${h} h` : `${h} h ${m} min`;
}

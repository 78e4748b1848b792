// Follow the host's journal (/var/log/journal, else /run/log/journal) with `journalctl -f`:
// journald's own reader, so every journal file format and compression the host's systemd writes
// is read right (node-problem-detector links libsystemd for the same reason). Filtered at the
// source (SYSLOG_IDENTIFIER / _SYSTEMD_UNIT matches, and kernel messages): the agent sees the
// few programs its rules read, not the whole journal. Each entry's cursor is kept, so a restart
// resumes right after the last entry handled.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import * as fs from '../host/asyncFs.ts';
import path from 'node:path';
import type { Logger } from 'pino';
import { describeError } from '../errors.ts';
import type { HostRoot } from '../host/hostRoot.ts';
import { parseJournalJson } from '../parsers/journalEntry.ts';
import { recordFromJournalEntry } from './logRecord.ts';
import type { LogRecord } from './logRecord.ts';

export interface RecordConsumer {
  record(record: LogRecord, catchUp: boolean): void;
  /** A line or entry too long to be a log message was cut. */
  lineCut(): void;
}

export interface JournaldSourceOptions {
  host: HostRoot;
  /** Host paths tried in order; the first holding journal files is followed. */
  directories: readonly string[];
  /** SYSLOG_IDENTIFIER values to pass. */
  identifiers: readonly string[];
  /** _SYSTEMD_UNIT values to pass (a unit's lines whatever their identifier). */
  units: readonly string[];
  /** The journalctl to run. */
  command: string;
  consumer: RecordConsumer;
  log: Logger;
  maxLineBytes: number;
  /** Without a saved cursor: read this far back (ms), then follow. */
  lookbackMs: number;
  savedCursor?: string;
  /** false: read what is there (from the lookback or cursor) and finish; see finished(). */
  follow?: boolean;
  /** Restart delays after journalctl exits: doubles from min to max. */
  restartMinMs?: number;
  restartMaxMs?: number;
}

export interface JournaldHealth {
  state: 'following' | 'waiting' | 'error';
  detail?: string;
  directory?: string;
}

const FIELDS = 'MESSAGE,SYSLOG_IDENTIFIER,_SYSTEMD_UNIT,_PID,SYSLOG_PID,_TRANSPORT,_HOSTNAME';

export class JournaldSource {
  private readonly options: Required<Omit<JournaldSourceOptions, 'savedCursor'>>;
  private cursor: string | undefined;
  private child: ChildProcess | undefined;
  private stopped = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private restartDelay: number;
  private status: JournaldHealth = { state: 'waiting', detail: 'not started' };
  private outputFields = true;
  private startedAt = Date.now();
  private lastFailure: string | undefined;
  private resolveFinished: () => void = () => undefined;
  private readonly done: Promise<void>;

  constructor(options: JournaldSourceOptions) {
    this.options = { restartMinMs: 1000, restartMaxMs: 60_000, follow: true, ...options };
    this.cursor = options.savedCursor;
    this.restartDelay = this.options.restartMinMs;
    this.done = new Promise((resolve) => {
      this.resolveFinished = resolve;
    });
  }

  /** Without follow: resolves once journalctl has written everything (or could not run). */
  finished(): Promise<void> {
    return this.done;
  }

  async start(): Promise<void> {
    this.startedAt = Date.now();
    await this.launch();
  }

  health(): JournaldHealth {
    return { ...this.status };
  }

  /** The cursor of the last entry handed over (undefined: none yet). */
  checkpoint(): string | undefined {
    return this.cursor;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    this.resolveFinished();
    const child = this.child;
    if (child === undefined || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('close', () => {
        resolve();
      });
      child.kill('SIGTERM');
    });
  }

  private async findDirectory(): Promise<string | undefined> {
    for (const dir of this.options.directories) {
      if (await holdsJournalFiles(this.options.host.local(dir))) return dir;
    }
    return undefined;
  }

  private async launch(): Promise<void> {
    if (this.stopped) return;
    const directory = await this.findDirectory();
    if (directory === undefined) {
      this.status = {
        state: 'waiting',
        detail: `no journal files in ${this.options.directories.join(' or ')}`,
      };
      if (this.options.follow) this.scheduleRestart(false);
      else this.resolveFinished();
      return;
    }
    const args = [
      `--directory=${this.options.host.local(directory)}`,
      '--output=json',
      '--all',
      '--no-pager',
      ...(this.options.follow ? ['--follow'] : []),
      '--quiet',
      ...(this.outputFields ? [`--output-fields=${FIELDS}`] : []),
      ...(this.cursor === undefined
        ? [`--since=@${Math.floor((this.startedAt - this.options.lookbackMs) / 1000)}`]
        : [`--after-cursor=${this.cursor}`]),
      ...matchArguments(this.options.identifiers, this.options.units),
    ];
    // --log-level debug: the exact journalctl, to run by hand when no journal line arrives.
    this.options.log.debug(
      { event: 'logs.journal.launch', command: this.options.command, args },
      `running ${this.options.command} ${args.join(' ')}`,
    );
    let child: ChildProcess;
    try {
      child = spawn(this.options.command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (error) {
      this.fail(`cannot run ${this.options.command}: ${describeError(error)}`, directory);
      return;
    }
    this.child = child;
    this.status = { state: 'following', directory };
    let stderr = '';
    let pending = '';
    let spawnFailed = false;
    let launchedWithCursor = this.cursor !== undefined;
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (text: string) => {
      pending += text;
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        this.handleLine(line);
      }
      if (pending.length > this.options.maxLineBytes * 4 + 4096) {
        // One JSON object this large is not a log entry: drop it, keep following.
        pending = '';
        this.options.consumer.lineCut();
      }
      this.restartDelay = this.options.restartMinMs;
    });
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (text: string) => {
      stderr = (stderr + text).slice(-2000);
    });
    child.on('error', (error) => {
      spawnFailed = true;
      this.fail(`cannot run ${this.options.command}: ${describeError(error)}`, directory);
    });
    child.on('close', (code, signal) => {
      if (this.child === child) this.child = undefined;
      if (pending !== '') this.handleLine(pending);
      pending = '';
      if (this.stopped || spawnFailed) return;
      if (!this.options.follow && code === 0) {
        this.resolveFinished();
        return;
      }
      const why = stderr.trim().split('\n').slice(-3).join(' ') || `exit ${code ?? signal ?? '?'}`;
      if (this.outputFields && /output-fields/.test(stderr)) {
        this.outputFields = false; // a journalctl older than systemd 236
        this.scheduleRestart(true, 0);
        return;
      }
      if (launchedWithCursor && /cursor/i.test(stderr)) {
        // The saved cursor is gone (the journal was vacuumed): start from the lookback.
        this.options.log.warn(
          { event: 'logs.journal.cursor-lost', detail: why },
          'the saved journal cursor is no longer valid; reading from the lookback window',
        );
        this.cursor = undefined;
        launchedWithCursor = false;
        this.scheduleRestart(true, 0);
        return;
      }
      this.fail(`journalctl stopped: ${why}`, directory);
    });
  }

  private handleLine(line: string): void {
    if (line === '') return;
    const entry = parseJournalJson(line);
    if (entry === undefined) return;
    let message = entry.message;
    if (Buffer.byteLength(message) > this.options.maxLineBytes) {
      message = message.slice(0, this.options.maxLineBytes);
      this.options.consumer.lineCut();
    }
    const record = recordFromJournalEntry({ ...entry, message }, 'journald', Date.now());
    this.options.consumer.record(record, record.time < this.startedAt);
    if (entry.cursor !== undefined) this.cursor = entry.cursor;
  }

  private fail(detail: string, directory: string): void {
    this.status = { state: 'error', detail, directory };
    if (!this.options.follow) this.resolveFinished();
    if (detail !== this.lastFailure) {
      this.options.log.warn(
        { event: 'logs.journal.error', detail, retryInMs: this.restartDelay },
        `journal source: ${detail}`,
      );
    }
    this.lastFailure = detail;
    this.scheduleRestart(true);
  }

  private scheduleRestart(backoff: boolean, delay?: number): void {
    if (this.stopped || (!this.options.follow && delay === undefined)) return;
    clearTimeout(this.restartTimer);
    const wait = delay ?? this.restartDelay;
    if (backoff && delay === undefined) {
      this.restartDelay = Math.min(this.restartDelay * 2, this.options.restartMaxMs);
    }
    this.restartTimer = setTimeout(() => void this.launch(), wait);
    this.restartTimer.unref();
  }
}

/**
 * journalctl matches: values of one field are ORed, fields are ANDed, "+" ORs whole groups.
 * Identifiers OR units OR kernel messages.
 */
export function matchArguments(identifiers: readonly string[], units: readonly string[]): string[] {
  const groups: string[][] = [];
  if (identifiers.length > 0) groups.push(identifiers.map((id) => `SYSLOG_IDENTIFIER=${id}`));
  if (units.length > 0) groups.push(units.map((unit) => `_SYSTEMD_UNIT=${unit}`));
  groups.push(['_TRANSPORT=kernel']);
  return groups.flatMap((group, i) => (i === 0 ? group : ['+', ...group]));
}

/** journald's file names: system.journal, user-1000@...journal, and journal~ (unclean). */
export const JOURNAL_FILE = /\.journal~?$/;
/** journald keeps a machine's files in a directory named by its machine ID. */
export const MACHINE_ID_DIRECTORY = /^[0-9a-f]{32}$/;

/** Whether journalctl --directory finds journal files in dir (or its machine-ID directories). */
export async function holdsJournalFiles(dir: string, depth = 0): Promise<boolean> {
  let entries;
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch {
    return false;
  }
  for (const entry of entries) {
    if (entry.isFile() && JOURNAL_FILE.test(entry.name)) return true;
    if (
      entry.isDirectory() &&
      depth === 0 &&
      // journalctl only reads subdirectories named by a machine ID.
      MACHINE_ID_DIRECTORY.test(entry.name) &&
      (await holdsJournalFiles(path.join(dir, entry.name), 1))
    )
      return true;
  }
  return false;
}

// `node-auditor scan-logs FILE...`: "why was this node NotReady last night?" Saved logs are
// classified offline with the same rules and incident logic as the agent, on the lines' own
// clock: each episode is its own incident.
//
// Inputs, told apart by their first bytes: syslog text (/var/log/syslog, /var/log/messages,
// kern.log, `journalctl` text output), `dmesg` output, `journalctl -o json`, `journalctl -o
// export`, binary journal files and journal directories (read with journalctl), each possibly
// gzip-compressed (rotated syslog.2.gz); what each input is, and in which order they are read,
// is decided before (scanInputs.ts).
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import { AuditorError, ErrorCode, describeError } from '../errors.ts';
import type { Incident } from '../incidents/incident.ts';
import { IncidentTracker } from '../incidents/incidentTracker.ts';
import { JournalExportParser, parseJournalJson } from '../parsers/journalEntry.ts';
import type { JournalEntry } from '../parsers/journalEntry.ts';
import { RuleSet } from '../rules/ruleSet.ts';
import type { RuleInput } from '../rules/ruleSet.ts';
import { recordFromJournalEntry, recordFromSyslogLine, withoutNuls } from '../sources/logRecord.ts';
import type { LogRecord } from '../sources/logRecord.ts';
import { matchArguments } from '../sources/journaldSource.ts';
import { streamErrorReason } from './scanInputs.ts';
import type { InputFormat, ScanInput } from './scanInputs.ts';

/** Files larger than this get a progress line on stderr. */
const PROGRESS_MIN_BYTES = 100 * 1024 * 1024;
const CHUNK_BYTES = 1024 * 1024;
const NEWLINE = 0x0a;
const LF = Buffer.from('\n');
const EMPTY: Buffer = Buffer.alloc(0);

export interface ScanOptions {
  rules: readonly RuleInput[];
  maxEvidence: number;
  /** The journalctl that reads binary journal files and directories. */
  journalctl: string;
  /** SYSLOG_IDENTIFIER and _SYSTEMD_UNIT values to read from journals. */
  journalIdentifiers: readonly string[];
  journalUnits: readonly string[];
  maxLineBytes: number;
  progress?: (line: string, final: boolean) => void;
}

export interface ScanResult {
  incidents: Incident[];
  lines: number;
  files: { path: string; format: InputFormat; lines: number }[];
}

export async function scanLogs(
  inputs: readonly ScanInput[],
  options: ScanOptions,
): Promise<ScanResult> {
  // Saved logs come in any form: a rule for the kernel ring buffer also reads a saved kern.log.
  const ruleSet = new RuleSet(options.rules, { anySource: true });
  const tracker = new IncidentTracker(ruleSet.rules, {
    maxEvidence: options.maxEvidence,
    maxEnded: 10_000,
  });
  const result: ScanResult = { incidents: [], lines: 0, files: [] };
  const handle = (record: LogRecord, owners?: Int32Array, count?: number) => {
    const matches = ruleSet.evaluate(record, owners, count);
    if (matches.length > 0) tracker.observe(record, matches, record.time);
  };
  for (const input of inputs) {
    const before = result.lines;
    const progress = new Progress(input, options.progress);
    const counted = (n: number) => {
      result.lines += n;
      progress.lines(n);
    };
    try {
      await readInput(input, options, ruleSet, handle, progress, counted);
    } catch (error) {
      if (error instanceof AuditorError) throw error;
      // A file that went bad after it was opened (a truncated .gz, an I/O error): what was
      // read of it cannot stand for the whole, so the scan fails naming it.
      throw new AuditorError(
        ErrorCode.InputUnreadable,
        `cannot read ${input.path}: ${streamErrorReason(error)}`,
        { cause: error },
      );
    }
    progress.done();
    result.files.push({ path: input.path, format: input.format, lines: result.lines - before });
  }
  result.incidents = tracker.all();
  return result;
}

async function readInput(
  input: ScanInput,
  options: ScanOptions,
  ruleSet: RuleSet,
  handle: (record: LogRecord, owners?: Int32Array, count?: number) => void,
  progress: Progress,
  counted: (n: number) => void,
): Promise<void> {
  const { format } = input;
  if (format === 'journal-directory' || format === 'journal-file') {
    const args = [
      format === 'journal-directory' ? `--directory=${input.path}` : `--file=${input.path}`,
      '--output=json',
      '--all',
      '--no-pager',
      ...matchArguments(options.journalIdentifiers, options.journalUnits),
    ];
    await readJournalctl(options.journalctl, args, input.path, (entry) => {
      counted(1);
      handle(recordFromJournalEntry(entry, input.path, 0));
    });
    return;
  }
  const { stream, read } = openInput(input.path, input.gzip);
  if (format === 'journal-json' || format === 'journal-export') {
    await readJournalStream(stream, format, (entry) => {
      progress.at(read());
      counted(1);
      handle(recordFromJournalEntry(entry, input.path, 0));
    });
    return;
  }
  const reference = input.stat.mtimeMs;
  const dmesg = format === 'dmesg';
  await readLines(stream, options.maxLineBytes, (bytes, start, end) => {
    progress.at(read());
    counted(
      ruleSet.scanBytes(bytes, start, end, (lineStart, lineEnd, owners, count) => {
        const stop = lineEnd > lineStart && bytes[lineEnd - 1] === 0x0d ? lineEnd - 1 : lineEnd;
        const text = bytes.toString('utf8', lineStart, stop);
        handle(
          dmesg
            ? dmesgRecord(text, input.path, reference)
            : recordFromSyslogLine(text, input.path, reference),
          owners,
          count,
        );
      }),
    );
  });
}

/** The file as a stream of bytes (decompressed if it is gzip); `read()` tells how far it got. */
function openInput(path: string, gzip: boolean): { stream: Readable; read: () => number } {
  const raw = createReadStream(path, { highWaterMark: CHUNK_BYTES });
  if (!gzip) return { stream: raw, read: () => raw.bytesRead };
  const gunzip = createGunzip();
  // pipe() does not pass a read error on: the reader of the gunzip would wait forever.
  raw.on('error', (error) => gunzip.destroy(error));
  return { stream: raw.pipe(gunzip), read: () => raw.bytesRead };
}

/** Whole lines of a stream, in the chunks it comes in; over-long lines are cut. */
async function readLines(
  stream: Readable,
  maxLineBytes: number,
  visit: (bytes: Buffer, start: number, end: number) => void,
): Promise<void> {
  let carry: Buffer = EMPTY;
  let skipping = false;
  for await (const piece of stream) {
    let data = piece as Buffer;
    if (skipping) {
      const nl = data.indexOf(NEWLINE);
      if (nl < 0) continue;
      data = data.subarray(nl + 1);
      skipping = false;
    }
    if (carry.length > 0) data = Buffer.concat([carry, data]);
    const last = data.lastIndexOf(NEWLINE);
    if (last >= 0) visit(data, 0, last + 1);
    const rest = data.subarray(last + 1);
    if (rest.length > maxLineBytes) {
      const cut = Buffer.concat([rest.subarray(0, maxLineBytes), LF]);
      visit(cut, 0, cut.length);
      carry = EMPTY;
      skipping = true;
    } else {
      carry = Buffer.from(rest);
    }
  }
  if (carry.length > 0) {
    const line = Buffer.concat([carry, LF]);
    visit(line, 0, line.length);
  }
}

async function readJournalStream(
  stream: Readable,
  format: 'journal-json' | 'journal-export',
  visit: (entry: JournalEntry) => void,
): Promise<void> {
  if (format === 'journal-export') {
    const parser = new JournalExportParser();
    for await (const piece of stream)
      for (const entry of parser.push(piece as Buffer)) visit(entry);
    for (const entry of parser.end()) visit(entry);
    return;
  }
  await readLines(stream, 16 * 1024 * 1024, (bytes, start, end) => {
    for (const line of bytes.toString('utf8', start, end).split('\n')) {
      if (line === '') continue;
      const entry = parseJournalJson(line);
      if (entry !== undefined) visit(entry);
    }
  });
}

async function readJournalctl(
  command: string,
  args: string[],
  what: string,
  visit: (entry: JournalEntry) => void,
): Promise<void> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (text: string) => {
    stderr = (stderr + text).slice(-2000);
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', (error) => {
      reject(
        new AuditorError(
          ErrorCode.InputUnreadable,
          `cannot read the journal ${what}: cannot run ${command} (${describeError(error)})`,
        ),
      );
    });
    child.on('close', resolve);
  });
  await readJournalStream(child.stdout, 'journal-json', visit);
  const code = await exited;
  if (code !== 0) {
    throw new AuditorError(
      ErrorCode.InputUnreadable,
      `cannot read the journal ${what}: ${stderr.trim().split('\n').slice(-2).join(' ') || `journalctl exited with ${code ?? '?'}`}`,
    );
  }
}

/** `dmesg` ("[12345.678901] text") or `dmesg -T` ("[Thu Dec  7 00:05:15 2017] text") output. */
function dmesgRecord(text: string, source: string, reference: number): LogRecord {
  const line = withoutNuls(text);
  const m = /^\[([^\]]+)\] ?(.*)$/.exec(line);
  const stamp = m?.[1] ?? '';
  const message = m?.[2] ?? line;
  const wall = /[A-Za-z]/.test(stamp) ? Date.parse(stamp) : Number.NaN;
  return {
    source,
    kind: 'kmsg',
    identifier: 'kernel',
    message,
    line,
    time: Number.isNaN(wall) ? reference : wall,
    timeKnown: !Number.isNaN(wall),
  };
}

/** "scan-logs: /var/log/syslog: 45% (450 MiB of 1.0 GiB), 2,345,678 lines" on stderr. */
class Progress {
  private readonly input: ScanInput;
  private readonly report: ((line: string, final: boolean) => void) | undefined;
  private read = 0;
  private count = 0;
  private last = 0;

  constructor(input: ScanInput, report: ((line: string, final: boolean) => void) | undefined) {
    this.input = input;
    this.report =
      input.kind === 'file' && input.stat.size >= PROGRESS_MIN_BYTES ? report : undefined;
  }

  /** Bytes of the file read so far. */
  at(read: number): void {
    this.read = read;
    this.maybeReport();
  }

  lines(n: number): void {
    this.count += n;
  }

  done(): void {
    if (this.report === undefined) return;
    this.read = this.input.stat.size;
    this.report(this.text(), true);
  }

  private maybeReport(): void {
    if (this.report === undefined) return;
    const now = performance.now();
    if (now - this.last < 1000) return;
    this.last = now;
    this.report(this.text(), false);
  }

  private text(): string {
    const size = this.input.stat.size;
    const pct = Math.min(100, Math.floor((this.read / size) * 100));
    return `scan-logs: ${this.input.path}: ${pct}% (${mib(this.read)} of ${mib(size)}), ${thousands(this.count)} lines`;
  }
}

function thousands(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

function mib(bytes: number): string {
  return bytes >= 1024 ** 3
    ? `${(bytes / 1024 ** 3).toFixed(1)} GiB`
    : `${Math.round(bytes / 1024 ** 2)} MiB`;
}

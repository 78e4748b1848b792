// One log line or entry, whatever source it came from: what rules see.
import { formatJournalEntry } from '../parsers/journalEntry.ts';
import type { JournalEntry } from '../parsers/journalEntry.ts';
import { parseSyslogLine } from '../parsers/syslogLine.ts';
import type { SourceKind } from '../rules/ruleSpec.ts';

export interface LogRecord {
  /** The source: a file's host path ("/var/log/syslog"), "journald" or "kmsg". A metric label. */
  source: string;
  kind: SourceKind;
  /** The program that logged it: syslog tag, SYSLOG_IDENTIFIER, "kernel" for the kernel. */
  identifier?: string;
  /** The text rules search: after the syslog header and the kernel's "[12345.678901] ". */
  message: string;
  /** The whole line as the source had it: the evidence people read. */
  line: string;
  /** When it was logged (ms since the epoch), from the record itself; else when it was read. */
  time: number;
  /** Whether `time` came from the record (false: the time it was read). */
  timeKnown: boolean;
}

/** A line of a syslog-style file (or journalctl text) as a record. */
export function recordFromSyslogLine(
  text: string,
  source: string,
  referenceMs: number,
  options: { kind?: SourceKind; identifier?: string; plain?: boolean } = {},
): LogRecord {
  const line = withoutNuls(text);
  const parsed = options.plain === true ? { message: line } : parseSyslogLine(line, referenceMs);
  const identifier = parsed.identifier ?? options.identifier;
  return {
    source,
    kind: options.kind ?? 'file',
    ...(identifier === undefined ? {} : { identifier }),
    message: parsed.message,
    line,
    time: parsed.time ?? referenceMs,
    timeKnown: parsed.time !== undefined,
  };
}

/**
 * A journal entry as a record (the journald source, and scan-logs reading journal files or
 * journalctl output). Its identifier is SYSLOG_IDENTIFIER, else the unit without ".service";
 * `fallbackMs` is its time when the entry has no __REALTIME_TIMESTAMP.
 */
export function recordFromJournalEntry(
  entry: JournalEntry,
  source: string,
  fallbackMs: number,
): LogRecord {
  const record: LogRecord = {
    source,
    kind: 'journald',
    message: entry.message,
    line: formatJournalEntry(entry),
    time: entry.realtimeMicros === undefined ? fallbackMs : Math.floor(entry.realtimeMicros / 1000),
    timeKnown: entry.realtimeMicros !== undefined,
  };
  const identifier = entry.identifier ?? entry.unit?.replace(/\.service$/, '');
  if (identifier !== undefined) record.identifier = identifier;
  return record;
}

/**
 * The line without NUL bytes. A log file the machine went down while writing holds runs of them
 * where blocks were allocated but never written (an unclean shutdown); the first line written
 * after the reboot then starts with them, and its time and program would not be read.
 */
export function withoutNuls(line: string): string {
  return line.includes('\0') ? line.replaceAll('\0', '') : line;
}

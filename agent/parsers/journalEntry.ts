// Journal entries as journalctl writes them: `-o json` (one JSON object per line) and `-o export`
// (the binary-safe export format, systemd's JOURNAL_EXPORT_FORMATS.md). Only the fields the agent
// uses are kept. Pure: text or bytes in, entries out.

export interface JournalEntry {
  /** __CURSOR: where to resume after this entry (--after-cursor). */
  cursor?: string;
  /** __REALTIME_TIMESTAMP: microseconds since the epoch. */
  realtimeMicros?: number;
  message: string;
  /** SYSLOG_IDENTIFIER ("kubelet", "systemd", "kernel"). */
  identifier?: string;
  /** _SYSTEMD_UNIT of the process that logged it. */
  unit?: string;
  pid?: number;
  /** _TRANSPORT: "kernel" for kernel messages. */
  transport?: string;
  hostname?: string;
}

type JsonField = string | number[] | (string | number[])[] | null | undefined;

/** One line of `journalctl -o json`; undefined when it is not a journal entry. */
export function parseJournalJson(line: string): JournalEntry | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return undefined;
  const fields = doc as Record<string, JsonField>;
  const message = jsonText(fields.MESSAGE);
  if (message === undefined) return undefined;
  return entryOf((name) => jsonText(fields[name]), message);
}

/** journalctl -o json: a string, bytes (not valid UTF-8) as an array of numbers, several values as an array. */
function jsonText(value: JsonField): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === 'string') return value;
  if (value.length > 0 && value.every((v) => typeof v === 'number')) {
    return Buffer.from(value).toString('utf8');
  }
  const first = value[0];
  return first === undefined ? undefined : jsonText(first as string | number[]);
}

function entryOf(field: (name: string) => string | undefined, message: string): JournalEntry {
  const entry: JournalEntry = { message: message.replace(/\s+$/, '') };
  const cursor = field('__CURSOR');
  if (cursor !== undefined) entry.cursor = cursor;
  const realtime = Number(field('__REALTIME_TIMESTAMP'));
  if (Number.isFinite(realtime) && realtime > 0) entry.realtimeMicros = realtime;
  const identifier = field('SYSLOG_IDENTIFIER');
  if (identifier !== undefined) entry.identifier = identifier;
  const unit = field('_SYSTEMD_UNIT');
  if (unit !== undefined) entry.unit = unit;
  const pid = Number(field('_PID') ?? field('SYSLOG_PID'));
  if (Number.isInteger(pid) && pid > 0) entry.pid = pid;
  const transport = field('_TRANSPORT');
  if (transport !== undefined) entry.transport = transport;
  const hostname = field('_HOSTNAME');
  if (hostname !== undefined) entry.hostname = hostname;
  if (entry.identifier === undefined && entry.transport === 'kernel') entry.identifier = 'kernel';
  return entry;
}

const NEWLINE = 0x0a;

/**
 * `journalctl -o export`, incrementally: push() chunks as they arrive. A field is "NAME=value\n",
 * or for values with newlines or binary data "NAME\n", a little-endian 64-bit length, the bytes
 * and "\n". An empty line ends an entry.
 */
export class JournalExportParser {
  private pending: Buffer = Buffer.alloc(0);
  private fields = new Map<string, string>();
  /** Values longer than this are cut (a binary blob is not a log message). */
  private readonly maxValueBytes: number;

  constructor(maxValueBytes = 64 * 1024) {
    this.maxValueBytes = maxValueBytes;
  }

  push(chunk: Buffer): JournalEntry[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const out: JournalEntry[] = [];
    let pos = 0;
    for (;;) {
      const nl = this.pending.indexOf(NEWLINE, pos);
      if (nl < 0) break;
      if (nl === pos) {
        // End of an entry.
        pos = nl + 1;
        const entry = this.finishEntry();
        if (entry !== undefined) out.push(entry);
        continue;
      }
      const eq = this.pending.indexOf(0x3d, pos); // "="
      if (eq >= 0 && eq < nl) {
        const name = this.pending.toString('latin1', pos, eq);
        this.keep(
          name,
          this.pending.toString('utf8', eq + 1, Math.min(nl, eq + 1 + this.maxValueBytes)),
        );
        pos = nl + 1;
        continue;
      }
      // Binary field: NAME\n <u64 length> <data> \n
      if (this.pending.length < nl + 1 + 8) break;
      const size = Number(this.pending.readBigUInt64LE(nl + 1));
      const start = nl + 1 + 8;
      if (this.pending.length < start + size + 1) break;
      const name = this.pending.toString('latin1', pos, nl);
      this.keep(
        name,
        this.pending.toString('utf8', start, start + Math.min(size, this.maxValueBytes)),
      );
      pos = start + size + 1;
    }
    this.pending = this.pending.subarray(pos);
    return out;
  }

  /** The input ended: an entry not followed by an empty line still counts. */
  end(): JournalEntry[] {
    const entry = this.finishEntry();
    return entry === undefined ? [] : [entry];
  }

  private keep(name: string, value: string): void {
    if (WANTED.has(name) && !this.fields.has(name)) this.fields.set(name, value);
  }

  private finishEntry(): JournalEntry | undefined {
    const fields = this.fields;
    this.fields = new Map();
    const message = fields.get('MESSAGE');
    if (message === undefined) return undefined;
    return entryOf((name) => fields.get(name), message);
  }
}

const WANTED = new Set([
  'MESSAGE',
  '__CURSOR',
  '__REALTIME_TIMESTAMP',
  'SYSLOG_IDENTIFIER',
  '_SYSTEMD_UNIT',
  '_PID',
  'SYSLOG_PID',
  '_TRANSPORT',
  '_HOSTNAME',
]);

/** An entry as one readable line (journalctl's short format, with an ISO time) for evidence. */
export function formatJournalEntry(entry: JournalEntry): string {
  const time =
    entry.realtimeMicros === undefined
      ? ''
      : `${new Date(Math.floor(entry.realtimeMicros / 1000)).toISOString()} `;
  const host = entry.hostname === undefined ? '' : `${entry.hostname} `;
  const ident = entry.identifier ?? entry.unit ?? 'unknown';
  const pid = entry.pid === undefined ? '' : `[${entry.pid}]`;
  return `${time}${host}${ident}${pid}: ${entry.message}`;
}

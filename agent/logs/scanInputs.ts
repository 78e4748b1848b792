// What `scan-logs` reads, decided before anything is read: each path named on the command line
// is a log file, a journal directory (read with journalctl) or a directory of log files such as
// /var/log (its regular files, plain or .gz). Every input is opened and its format told from its
// first bytes here, so a typo, a file that cannot be read or a corrupt .gz fails the command
// (exit 2) naming the path before a long scan starts, and nothing is skipped silently.
import { createReadStream } from 'node:fs';
import type { Stats } from 'node:fs';
import path from 'node:path';
import { createGunzip } from 'node:zlib';
import { AuditorError, ErrorCode, describeError, errnoCode, fileErrorReason } from '../errors.ts';
import * as fs from '../host/asyncFs.ts';
import {
  JOURNAL_FILE,
  MACHINE_ID_DIRECTORY,
  holdsJournalFiles,
} from '../sources/journaldSource.ts';

export type InputFormat =
  'syslog' | 'dmesg' | 'journal-json' | 'journal-export' | 'journal-file' | 'journal-directory';

export interface ScanInput {
  path: string;
  kind: 'file' | 'journal-directory';
  stat: Stats;
  format: InputFormat;
  /** The file is gzip-compressed (its format is that of what it holds). */
  gzip: boolean;
}

export interface ResolvedInputs {
  /** In the order to read them: oldest first. */
  inputs: ScanInput[];
  /** What the operator should know about what is and is not read (for stderr). */
  notes: string[];
}

const HEAD_BYTES = 4096;

export async function resolveInputs(paths: readonly string[]): Promise<ResolvedInputs> {
  const inputs: ScanInput[] = [];
  const notes: string[] = [];
  const errors: string[] = [];
  for (const p of paths) {
    let stat: Stats;
    try {
      stat = await fs.stat(p);
    } catch (error) {
      errors.push(`cannot read ${p}: ${fileErrorReason(error)}`);
      continue;
    }
    if (stat.isFile()) {
      const file = await fileInput(p, stat, errors);
      if (file === undefined) continue;
      if (file.binary) {
        notes.push(
          `${p} does not look like a text log (binary data in its first 4 KiB); read as syslog text anyway`,
        );
      }
      inputs.push(file.input);
    } else if (stat.isDirectory()) {
      const journal = await journalDirectory(p);
      if (journal !== undefined) {
        // journalctl reads only the journal files: anything else here would be passed over.
        if (journal.others.length > 0) {
          notes.push(
            `${p} is read as a journal directory (journalctl --directory); not read: ${journal.others.join(', ')}`,
          );
        }
        inputs.push({
          path: p,
          kind: 'journal-directory',
          stat,
          format: 'journal-directory',
          gzip: false,
        });
      } else {
        await directoryInputs(p, inputs, notes, errors);
      }
    } else {
      errors.push(`cannot read ${p}: neither a file nor a directory`);
    }
  }
  if (errors.length > 0) {
    throw new AuditorError(ErrorCode.InputUnreadable, errors.join('\n'));
  }
  return { inputs: oldestFirst(inputs), notes };
}

/**
 * A directory without journal files: its regular files, each a log (syslog, syslog.1,
 * syslog.2.gz, kern.log, messages ...). Subdirectories are not entered (pass one to read it: a
 * journal under /var/log/journal may hold the same lines as syslog), binary files (wtmp, btmp,
 * lastlog, an .xz) are left out; both are named in a note.
 */
async function directoryInputs(
  dir: string,
  inputs: ScanInput[],
  notes: string[],
  errors: string[],
): Promise<void> {
  let names: string[];
  try {
    names = (await fs.readdir(dir)).sort();
  } catch (error) {
    errors.push(`cannot read ${dir}: ${fileErrorReason(error)}`);
    return;
  }
  const subdirectories: string[] = [];
  const binary: string[] = [];
  const other: string[] = [];
  let read = 0;
  for (const name of names) {
    const p = path.join(dir, name);
    let stat: Stats;
    try {
      stat = await fs.stat(p);
    } catch (error) {
      // A link to nowhere, or a file rotated away since the listing: nothing to read.
      if (errnoCode(error) === 'ENOENT') other.push(name);
      else errors.push(`cannot read ${p}: ${fileErrorReason(error)}`);
      continue;
    }
    if (stat.isDirectory()) {
      subdirectories.push(`${name}/`);
    } else if (!stat.isFile()) {
      other.push(name);
    } else {
      const file = await fileInput(p, stat, errors);
      if (file === undefined) continue;
      if (file.binary) binary.push(name);
      else {
        inputs.push(file.input);
        read++;
      }
    }
  }
  if (subdirectories.length > 0) {
    notes.push(
      `${dir}: subdirectories not read (pass one to read it): ${subdirectories.join(', ')}`,
    );
  }
  if (binary.length > 0) notes.push(`${dir}: binary files not read: ${binary.join(', ')}`);
  if (other.length > 0) notes.push(`${dir}: not regular files, not read: ${other.join(', ')}`);
  if (read === 0 && errors.length === 0) {
    errors.push(`cannot read ${dir}: it holds no log file and no journal file`);
  }
}

/**
 * A directory journalctl --directory reads: the other entries it passes over. Undefined when
 * it holds no journal file.
 */
async function journalDirectory(dir: string): Promise<{ others: string[] } | undefined> {
  if (!(await holdsJournalFiles(dir))) return undefined;
  const entries = await fs.readdir(dir).catch(() => [] as string[]);
  return {
    others: entries
      .filter((name) => !JOURNAL_FILE.test(name) && !MACHINE_ID_DIRECTORY.test(name))
      .sort(),
  };
}

/** One file, opened and sniffed; an error is added to `errors` and gives undefined. */
async function fileInput(
  p: string,
  stat: Stats,
  errors: string[],
): Promise<{ input: ScanInput; binary: boolean } | undefined> {
  let head: Buffer;
  try {
    head = await readHead(p);
  } catch (error) {
    errors.push(`cannot read ${p}: ${fileErrorReason(error)}`);
    return undefined;
  }
  if (head.subarray(0, 8).toString('latin1') === 'LPKSHHRH') {
    return {
      input: { path: p, kind: 'file', stat, format: 'journal-file', gzip: false },
      binary: false,
    };
  }
  const gzip = head[0] === 0x1f && head[1] === 0x8b;
  if (gzip) {
    try {
      head = await gunzipHead(p);
    } catch (error) {
      errors.push(`cannot read ${p}: ${streamErrorReason(error)}`);
      return undefined;
    }
  }
  return {
    input: { path: p, kind: 'file', stat, format: textFormat(dropNuls(head)), gzip },
    binary: looksBinary(path.basename(p), head),
  };
}

/**
 * Magic numbers of what lies beside logs and is not text (gzip is read, above): logs compressed
 * with xz, zstd, bzip2 or lz4, core dumps and programs (ELF), SQLite and zip files.
 */
/* eslint-disable no-control-regex -- magic numbers are bytes, control characters among them */
const MAGIC_NUMBERS = [
  /^\xfd7zXZ\0/, // xz
  /^\x28\xb5\x2f\xfd/, // zstd
  /^\x04"M\x18/, // lz4 frame
  /^BZh[1-9](?:1AY&SY|\x17rE8P\x90)/, // bzip2: block size, then a block or the end
  /^\x7fELF/,
  /^SQLite format 3\0/,
  /^PK\x03\x04/, // zip
];
/* eslint-enable no-control-regex */
/** Login records (utmp(5), lastlog, faillog), rotated ones too (wtmp.1, btmp-20260201). */
const LOGIN_RECORDS = /^(?:wtmp|btmp|utmp|lastlog|faillog)(?:[.-].*)?$/;
/** Control bytes text has: tab, newline, vertical tab, form feed, carriage return, escape. */
const TEXT_CONTROLS = new Set([0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x1b]);

/**
 * Binary, by its name or magic number, or by its bytes: more than one in 20 of the bytes that
 * are not NUL is a control character no text has (wtmp's record types and pids, compressed
 * data: about one in ten). NUL bytes alone say nothing: a log written when the machine went
 * down holds runs of them where blocks were allocated but never written (an unclean shutdown),
 * and a just-rotated syslog then starts with them.
 */
function looksBinary(name: string, head: Buffer): boolean {
  if (LOGIN_RECORDS.test(name)) return true;
  const start = head.toString('latin1', 0, 16);
  if (MAGIC_NUMBERS.some((magic) => magic.test(start))) return true;
  let text = 0;
  let control = 0;
  for (const byte of head) {
    if (byte === 0) continue;
    text++;
    if ((byte < 0x20 && !TEXT_CONTROLS.has(byte)) || byte === 0x7f) control++;
  }
  return control * 20 > text;
}

/** The bytes without their NULs: what the format is told from. */
function dropNuls(head: Buffer): Buffer {
  return head.includes(0) ? Buffer.from(head.filter((byte) => byte !== 0)) : head;
}

async function readHead(p: string): Promise<Buffer> {
  const handle = await fs.open(p, 'r');
  try {
    const buf = Buffer.alloc(HEAD_BYTES);
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/**
 * The first decompressed bytes of a .gz; rejects when not even those can be had (a read error
 * or corrupt data). Both streams are destroyed once it is settled: destroying the gunzip does
 * not close the file piped into it (one descriptor left open per .gz), and pipe() does not
 * pass the file's read error on (the gunzip would wait for more forever).
 */
export function gunzipHead(p: string): Promise<Buffer> {
  const raw = createReadStream(p);
  const gunzip = createGunzip();
  return new Promise<Buffer>((resolve, reject) => {
    const settle = (error: Error | undefined, head?: Buffer) => {
      raw.destroy();
      gunzip.destroy();
      if (error === undefined) resolve(head ?? Buffer.alloc(0));
      else reject(error);
    };
    raw.once('error', settle);
    gunzip.once('error', settle);
    gunzip.once('data', (chunk: Buffer) => {
      settle(undefined, chunk.subarray(0, HEAD_BYTES));
    });
    gunzip.once('end', () => {
      settle(undefined);
    });
    raw.pipe(gunzip);
  });
}

function textFormat(head: Buffer): InputFormat {
  const firstLine = head.toString('utf8').split('\n', 1)[0] ?? '';
  if (firstLine.startsWith('{')) return 'journal-json';
  if (/^__CURSOR=|^__REALTIME_TIMESTAMP=|^[A-Z_][A-Z0-9_]*=/.test(firstLine))
    return 'journal-export';
  if (/^\[\s*\d+\.\d+\] |^\[[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d /.test(firstLine)) return 'dmesg';
  return 'syslog';
}

/** Why reading a file (or decompressing it) failed, in words, for a message naming the file. */
export function streamErrorReason(error: unknown): string {
  const code = errnoCode(error);
  // zlib's errors: Z_BUF_ERROR "unexpected end of file", Z_DATA_ERROR "incorrect header check"
  if (code?.startsWith('Z_') === true)
    return `corrupt or truncated gzip data (${describeError(error)})`;
  return fileErrorReason(error);
}

/**
 * Oldest first, by last write; within one rotated family (syslog.3.gz, syslog.2.gz, syslog.1,
 * syslog; or messages-20260215, messages) by its rotation suffix, which stays right when a copy
 * (cp, tar without times, a support bundle) gave every file the same or a wrong mtime.
 */
function oldestFirst(inputs: ScanInput[]): ScanInput[] {
  const byTime = [...inputs].sort((a, b) => a.stat.mtimeMs - b.stat.mtimeMs);
  const families = new Map<string, number[]>();
  byTime.forEach((input, i) => {
    const key = rotation(input.path).family;
    const slots = families.get(key);
    if (slots === undefined) families.set(key, [i]);
    else slots.push(i);
  });
  const ordered = [...byTime];
  for (const slots of families.values()) {
    if (slots.length < 2) continue;
    const members = slots
      .map((i) => byTime[i] as ScanInput)
      .sort((a, b) => rotation(a.path).age - rotation(b.path).age);
    // The family keeps the places its files had in time; only who is where changes.
    slots.forEach((slot, k) => (ordered[slot] = members[k] as ScanInput));
  }
  return ordered;
}

/**
 * A file's rotated family (its path without .gz and rotation suffix) and its place in it: the
 * live file is the newest, syslog.N older the larger N, a date suffix (logrotate's dateext)
 * older the earlier the date. Sorting by `age` ascending gives oldest first.
 */
export function rotation(file: string): { family: string; age: number } {
  const name = file.replace(/\.gz$/, '');
  const numbered = /^(.*)\.(\d{1,4})$/.exec(name);
  if (numbered !== null) return { family: numbered[1] ?? name, age: -Number(numbered[2]) - 1e12 };
  const dated = /^(.*)-(\d{8}(?:\d{2})?)$/.exec(name);
  if (dated !== null) {
    const stamp = dated[2] ?? '';
    // YYYYMMDD or YYYYMMDDHH, as one comparable number
    return {
      family: dated[1] ?? name,
      age: Number(stamp.length === 8 ? `${stamp}00` : stamp) - 1e11,
    };
  }
  return { family: name, age: 0 };
}

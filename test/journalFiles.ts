// Real journal files for tests: systemd-journal-remote turns journal export format into a
// journal file, the same format journald writes, read back by the real journalctl. Running it
// again on the same output file appends, which a following `journalctl -f` sees.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { TestContext } from 'node:test';

const CANDIDATES = [
  '/lib/systemd/systemd-journal-remote',
  '/usr/lib/systemd/systemd-journal-remote',
];

export const BOOT_ID = '0123456789abcdef0123456789abcdef';

export interface JournalEntry {
  message: string;
  identifier?: string;
  unit?: string;
  transport?: string;
  pid?: number;
  /** ms since the epoch; default now. */
  time?: number;
  hostname?: string;
}

/** Export format for the entries (binary-safe fields are not needed: messages are text). */
export function exportFormat(entries: readonly JournalEntry[]): string {
  return entries
    .map((e, i) => {
      const time = e.time ?? Date.now();
      const fields: [string, string | number | undefined][] = [
        ['__REALTIME_TIMESTAMP', time * 1000 + (i % 1000)],
        ['__MONOTONIC_TIMESTAMP', 1_000_000 + i],
        ['_BOOT_ID', BOOT_ID],
        ['_TRANSPORT', e.transport ?? 'syslog'],
        ['_HOSTNAME', e.hostname ?? 'k1-node01'],
        ['SYSLOG_IDENTIFIER', e.identifier],
        ['_SYSTEMD_UNIT', e.unit],
        ['_PID', e.pid],
        ['MESSAGE', e.message],
      ];
      return fields
        .filter(([, value]) => value !== undefined)
        .map(([key, value]) => `${key}=${String(value)}\n`)
        .join('');
    })
    .join('\n');
}

/** The systemd-journal-remote binary, or undefined when it is not installed. */
export function journalRemote(): string | undefined {
  return CANDIDATES.find((c) => existsSync(c));
}

/** Append the entries to a journal file with the real systemd-journal-remote. */
export function writeJournalFile(
  binary: string,
  file: string,
  entries: readonly JournalEntry[],
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const child = spawn(binary, ['-o', file, '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new Error(`systemd-journal-remote exited ${code ?? '?'}: ${stderr}`));
    });
    child.stdin.end(exportFormat(entries) + '\n');
  });
}

/**
 * The journal writer, or undefined (the test skipped) when systemd-journal-remote is not
 * installed; with TEST_REQUIRE_REAL_TOOLS=1 (CI) a missing writer fails the test.
 */
export function journalWriter(
  t: TestContext,
): ((file: string, entries: readonly JournalEntry[]) => Promise<void>) | undefined {
  const binary = journalRemote();
  if (binary === undefined) {
    if (process.env.TEST_REQUIRE_REAL_TOOLS === '1') {
      throw new Error('systemd-journal-remote is required (TEST_REQUIRE_REAL_TOOLS=1)');
    }
    t.skip('systemd-journal-remote is not installed (apt-get install systemd-journal-remote)');
    return undefined;
  }
  return (file, entries) => writeJournalFile(binary, file, entries);
}

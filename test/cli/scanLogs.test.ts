// `node-auditor scan-logs FILE...` on saved logs in every form it reads: syslog text (also
// gzip-compressed and rotated), dmesg output, journalctl -o json and -o export output, a binary
// journal file and a journal directory (written by systemd-journal-remote, read back by the real
// journalctl); the JSON contract; exit codes; the progress line for files over 100 MB.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import { gzipSync } from 'node:zlib';
import { REPO, isRoot, requireTool, runCli, tempDir } from '../helpers.ts';
import { journalWriter } from '../journalFiles.ts';
import type { JournalEntry } from '../journalFiles.ts';

const LOGS = path.join(REPO, 'test', 'fixtures', 'logs');
const UTC = { TZ: 'UTC' };

interface ScanJson {
  incidents: {
    cause: string;
    rule: string;
    count: number;
    firstSeen: string;
    lastSeen: string;
    evidence: string[];
  }[];
}

async function scanJson(t: TestContext, files: string[], expectedCode = 1): Promise<ScanJson> {
  const r = await runCli(['scan-logs', '--output', 'json', ...files], { env: UTC });
  assert.equal(r.code, expectedCode, r.stderr);
  t.diagnostic(r.stderr);
  return JSON.parse(r.stdout) as ScanJson;
}

/** A copy of a fixture written (mtime) on a day in 2026: the year its syslog stamps lack. */
async function savedCopy(dir: string, fixture: string, name: string, gzip = false) {
  const text = await fs.readFile(path.join(LOGS, fixture));
  const file = path.join(dir, name);
  await fs.writeFile(file, gzip ? gzipSync(text) : text);
  const mtime = new Date('2026-02-21T00:00:00Z');
  await fs.utimes(file, mtime, mtime);
  return file;
}

/** The seed's story as journal entries: kubelet's lines, then systemd's. */
function seedEntries(): JournalEntry[] {
  const at = Date.parse('2026-02-20T12:14:49Z');
  const kubelet = (message: string): JournalEntry => ({
    message,
    identifier: 'kubelet',
    unit: 'kubelet.service',
    pid: 31100,
    time: at,
  });
  const systemd = (message: string): JournalEntry => ({
    message,
    identifier: 'systemd',
    pid: 1,
    time: at,
  });
  return [
    kubelet(
      'E0220 12:14:49.401890   31100 raw.go:146] Failed to watch directory "/sys/fs/cgroup/devices/system.slice": inotify_add_watch /sys/fs/cgroup/devices/system.slice/run-r1.scope: no space left on device',
    ),
    kubelet(
      'F0220 12:14:49.401909   31100 kubelet.go:1369] Failed to start cAdvisor inotify_add_watch /sys/fs/cgroup/devices/system.slice/run-r1.scope: no space left on device',
    ),
    systemd('kubelet.service: Main process exited, code=exited, status=255/n/a'),
    {
      message: 'pam_unix(cron:session): session closed for user root',
      identifier: 'CRON',
      time: at,
    },
  ];
}

/** scan-logs' notes on stderr as one line each: their continuation lines joined. */
function unwrapped(stderr: string): string {
  return stderr.replace(/\n {11}/g, ' ');
}

function expectSeedIncident(json: ScanJson, lines: number): void {
  assert.equal(json.incidents.length, 1, JSON.stringify(json));
  const [incident] = json.incidents;
  assert.deepEqual(Object.keys(incident ?? {}).slice(0, 6), [
    'cause',
    'rule',
    'count',
    'firstSeen',
    'lastSeen',
    'evidence',
  ]);
  assert.equal(incident?.cause, 'InotifyWatchesExhausted');
  assert.equal(incident.rule, 'kubelet-inotify-watches-exhausted');
  assert.equal(incident.count, lines);
  assert.equal(incident.firstSeen, '2026-02-20T12:14:49.000Z');
  assert.ok(incident.evidence.some((e) => e.includes('Failed to start cAdvisor')));
  assert.ok(incident.evidence.some((e) => e.includes('Main process exited')));
}

describe('scan-logs', () => {
  it('syslog text: the seed is one InotifyWatchesExhausted incident; the table says why', async (t) => {
    const dir = await tempDir(t);
    const file = await savedCopy(dir, 'seed-notready.log', 'syslog');
    expectSeedIncident(await scanJson(t, [file]), 5);
    const table = await runCli(['scan-logs', file], { env: UTC });
    assert.equal(table.code, 1);
    assert.match(table.stdout, /^node-auditor scan-logs: 1 input, 5 lines, 1 incident\n/);
    assert.match(table.stdout, /CRITICAL {2}InotifyWatchesExhausted: /);
    assert.match(table.stdout, /5 lines, 2026-02-20 12:14:49Z to 2026-02-20 12:14:49Z/);
    assert.match(
      table.stdout,
      / {2}Fix:\n( {4}.*\n)*? {4}.*"fs\.inotify\.max_user_watches=1048576"/,
    );
    for (const line of table.stdout.split('\n')) assert.ok(line.length <= 80, line);
  });

  it('lines that only look like problems: no incident, exit 0', async (t) => {
    const dir = await tempDir(t);
    const json = await scanJson(t, [await savedCopy(dir, 'benign.log', 'syslog')], 0);
    assert.deepEqual(json.incidents, []);
  });

  it('rotated and compressed files are read oldest first, as one history', async (t) => {
    const dir = await tempDir(t);
    const old = await savedCopy(dir, 'seed-notready.log', 'syslog.2.gz', true);
    const current = path.join(dir, 'syslog');
    await fs.writeFile(
      current,
      'Feb 21 08:00:00 k1-node01 systemd[1]: kubelet.service: Main process exited, code=exited, status=1/FAILURE\n',
    );
    const newer = new Date('2026-02-22T00:00:00Z');
    await fs.utimes(current, newer, newer);
    // Given newest first on the command line: still read in time order.
    const json = await scanJson(t, [current, old]);
    assert.deepEqual(
      json.incidents.map((i) => [i.cause, i.count, i.firstSeen]),
      [
        ['InotifyWatchesExhausted', 5, '2026-02-20T12:14:49.000Z'],
        ['KubeletDown', 1, '2026-02-21T08:00:00.000Z'],
      ],
    );
  });

  it('dmesg output, with or without -T', async (t) => {
    const dir = await tempDir(t);
    const plain = path.join(dir, 'dmesg.txt');
    await fs.writeFile(
      plain,
      '[    0.000000] Linux version 6.1.0-18-amd64\n[ 9432.854807] XFS (dm-3): Corruption of in-memory data detected.  Shutting down filesystem\n',
    );
    const [xfs] = (await scanJson(t, [plain])).incidents;
    assert.equal(xfs?.cause, 'XfsShutdown');
    const human = path.join(dir, 'dmesg-T.txt');
    await fs.writeFile(
      human,
      '[Thu Nov 19 10:04:01 2026] EXT4-fs error (device sda1): ext4_find_entry:1455: inode #2: comm ls: reading directory lblock 0\n',
    );
    const [ext4] = (await scanJson(t, [human])).incidents;
    assert.equal(ext4?.cause, 'Ext4Error');
    assert.equal(ext4.firstSeen, '2026-11-19T10:04:01.000Z');
  });

  it('journals: a journal file, a journal directory, and journalctl -o json and -o export output', async (t) => {
    if (requireTool(t, 'journalctl') === undefined) return;
    const write = journalWriter(t);
    if (write === undefined) return;
    const dir = await tempDir(t);
    const journalDir = path.join(dir, 'journal', '0123456789abcdef0123456789abcdef');
    await fs.mkdir(journalDir, { recursive: true });
    const journalFile = path.join(journalDir, 'system.journal');
    await write(journalFile, seedEntries());
    const dump = (format: string) => {
      const r = spawnSync('journalctl', [`--file=${journalFile}`, `--output=${format}`, '--all'], {
        encoding: 'utf8',
      });
      assert.equal(r.status, 0, r.stderr);
      return r.stdout;
    };
    const json = path.join(dir, 'journal.json');
    await fs.writeFile(json, dump('json'));
    const exported = path.join(dir, 'journal.export.gz');
    await fs.writeFile(exported, gzipSync(dump('export')));
    for (const input of [journalFile, path.join(dir, 'journal'), json, exported]) {
      await t.test(path.relative(dir, input), async (t) => {
        expectSeedIncident(await scanJson(t, [input]), 3);
      });
    }
    const table = await runCli(['scan-logs', path.join(dir, 'journal'), json], { env: UTC });
    assert.match(table.stdout, /journal \(journal-directory\): 3 lines/);
    assert.match(table.stdout, /journal\.json \(journal-json\): 4 lines/);
  });

  it('a file over 100 MB gets a progress line on stderr', async (t) => {
    const dir = await tempDir(t);
    const file = path.join(dir, 'messages');
    const benign = await fs.readFile(path.join(LOGS, 'benign.log'));
    const seed = await fs.readFile(path.join(LOGS, 'seed-notready.log'));
    // Blocks of 100 copies of benign.log up to 101 MiB, then the seed's 5 lines.
    const block = Buffer.concat(Array.from({ length: 100 }, () => benign));
    const blocks = Math.ceil((101 * 1024 * 1024) / block.length);
    const handle = await fs.open(file, 'w');
    for (let i = 0; i < blocks; i++) await handle.write(block);
    await handle.write(seed);
    await handle.close();
    const linesOf = (b: Buffer) => b.toString().split('\n').length - 1;
    const size = (await fs.stat(file)).size;
    const r = await runCli(['scan-logs', file], { env: UTC, timeoutMs: 120_000 });
    assert.equal(r.code, 1, r.stderr);
    const lines = r.stderr.trim().split('\n');
    const last = lines.at(-1) ?? '';
    const mib = Math.round(size / 1024 ** 2);
    assert.match(
      last,
      new RegExp(`^scan-logs: ${file}: 100% \\(${mib} MiB of ${mib} MiB\\), [\\d,]+ lines$`),
    );
    const count = Number(/([\d,]+) lines$/.exec(last)?.[1]?.replace(/,/g, ''));
    assert.equal(count, linesOf(block) * blocks + linesOf(seed));
    assert.match(r.stdout, /InotifyWatchesExhausted/);
  });

  it('a file that cannot be read is a usage error naming it; nothing is read', async (t) => {
    const dir = await tempDir(t);
    const file = await savedCopy(dir, 'seed-notready.log', 'syslog');
    const r = await runCli(['scan-logs', file, path.join(dir, 'syslog.1')]);
    assert.equal(r.code, 2);
    assert.equal(
      r.stderr,
      `node-auditor: cannot read ${path.join(dir, 'syslog.1')}: no such file\n`,
    );
    assert.equal(r.stdout, '');
    const none = await runCli(['scan-logs']);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /scan-logs needs at least one FILE/);
  });
  it('a directory of text logs (as /var/log) is read file by file, rotated ones oldest first', async (t) => {
    const dir = await tempDir(t);
    const seed = await fs.readFile(path.join(LOGS, 'seed-notready.log'));
    await fs.writeFile(
      path.join(dir, 'syslog.2.gz'),
      gzipSync(await fs.readFile(path.join(LOGS, 'benign.log'))),
    );
    await fs.writeFile(path.join(dir, 'syslog.1'), seed);
    await fs.writeFile(
      path.join(dir, 'syslog'),
      'Feb 21 08:00:00 k1-node01 systemd[1]: kubelet.service: Main process exited, code=exited, status=1/FAILURE\n',
    );
    await fs.writeFile(path.join(dir, 'wtmp'), Buffer.from([1, 0, 0, 0, 0x7e, 0, 0, 0]));
    await fs.mkdir(path.join(dir, 'journal'));
    // `cp /var/log/syslog* bundle/` writes them in name order: the live file gets the oldest
    // mtime. Read by mtime, Feb 21's line would come first and swallow Feb 20's story.
    const stamps = ['syslog', 'syslog.1', 'syslog.2.gz'];
    for (const [i, name] of stamps.entries()) {
      const at = new Date(Date.parse('2026-02-21T09:00:00Z') + i * 60_000);
      await fs.utimes(path.join(dir, name), at, at);
    }
    const r = await runCli(['scan-logs', '--output', 'json', dir], { env: UTC });
    assert.equal(r.code, 1, r.stderr);
    const json = JSON.parse(r.stdout) as ScanJson;
    assert.deepEqual(
      json.incidents.map((i) => [i.cause, i.count, i.firstSeen]),
      [
        ['InotifyWatchesExhausted', 5, '2026-02-20T12:14:49.000Z'],
        ['KubeletDown', 1, '2026-02-21T08:00:00.000Z'],
      ],
    );
    // What is not read is said, not skipped silently (wrapped at 80 columns).
    const notes = unwrapped(r.stderr);
    assert.match(notes, /subdirectories not read \(pass one to read it\): journal\//);
    assert.match(notes, /binary files not read: wtmp/);
    for (const line of r.stderr.split('\n')) assert.ok(line.length <= 80, line);
    const table = await runCli(['scan-logs', dir], { env: UTC });
    assert.match(
      table.stdout,
      new RegExp(
        `^node-auditor scan-logs: 3 inputs, \\d+ lines, 2 incidents\n  ${dir}/syslog\\.2\\.gz \\(syslog\\): \\d+ lines\n  ${dir}/syslog\\.1 \\(syslog\\): 5 lines\n  ${dir}/syslog \\(syslog\\): 1 line\n`,
      ),
    );
  });

  it('a syslog with a NUL run (an unclean shutdown) is read; binary files are told by name, magic number and bytes', async (t) => {
    const dir = await tempDir(t);
    // The node went down while rsyslog wrote: the blocks it had allocated hold NULs, and the
    // first line after the reboot follows them. Any NUL in the first 4 KiB made the file
    // "binary": left out, and this OOM kill with it.
    await fs.writeFile(
      path.join(dir, 'syslog'),
      Buffer.concat([
        Buffer.from('Feb 20 12:10:01 k1-node01 CRON[2211]: (root) CMD (command -v debian-sa1)\n'),
        Buffer.alloc(3072),
        Buffer.from(
          [
            'Feb 20 12:14:49 k1-node01 kernel: [   41.123456] Out of memory: Killed process 1436 (python) total-vm:869012kB, anon-rss:607516kB, file-rss:44kB, shmem-rss:0kB, UID:1000 pgtables:1264kB oom_score_adj:0',
            'Feb 20 12:14:50 k1-node01 systemd[1]: Started Session 3 of user root.',
            '',
          ].join('\n'),
        ),
      ]),
    );
    const noise = (n: number) => {
      const parts: Buffer[] = [];
      for (let i = 0; parts.length * 32 < n; i++)
        parts.push(createHash('sha256').update(String(i)).digest());
      return Buffer.concat(parts).subarray(0, n);
    };
    // a login record (utmp(5)): by its name, as the rotated one
    await fs.writeFile(path.join(dir, 'wtmp.1'), Buffer.from([7, 0, 0, 0, 0xd2, 4, 0, 0]));
    // sparse: its first 4 KiB are NULs, as on a host where root never logged in
    await fs.writeFile(path.join(dir, 'lastlog'), Buffer.alloc(8192));
    // by magic number
    await fs.writeFile(
      path.join(dir, 'kern.log.2.xz'),
      Buffer.concat([Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), noise(2000)]),
    );
    // by its bytes: LZMA-alone has no magic number
    await fs.writeFile(
      path.join(dir, 'kern.log.3.lzma'),
      Buffer.concat([Buffer.from([0x5d, 0, 0, 0x80, 0]), noise(4000)]),
    );
    for (const name of ['syslog', 'wtmp.1', 'lastlog', 'kern.log.2.xz', 'kern.log.3.lzma']) {
      const at = new Date('2026-02-21T00:00:00Z');
      await fs.utimes(path.join(dir, name), at, at);
    }
    const r = await runCli(['scan-logs', '--output', 'json', dir], { env: UTC });
    assert.equal(r.code, 1, r.stderr);
    const json = JSON.parse(r.stdout) as ScanJson;
    assert.deepEqual(
      json.incidents.map((i) => [i.cause, i.rule, i.count, i.firstSeen]),
      [['MemoryPressure', 'kernel-oom-global', 1, '2026-02-20T12:14:49.000Z']],
    );
    assert.match(json.incidents[0]?.evidence[0] ?? '', /^Feb 20 12:14:49 k1-node01 kernel: /);
    assert.match(
      unwrapped(r.stderr),
      /binary files not read: kern\.log\.2\.xz, kern\.log\.3\.lzma, lastlog, wtmp\.1\n/,
    );
  });

  it('a directory with no log file and no journal file is an error, not an all-clear', async (t) => {
    const dir = await tempDir(t);
    await fs.mkdir(path.join(dir, 'journal'));
    const r = await runCli(['scan-logs', path.join(dir, 'journal')]);
    assert.equal(r.code, 2, r.stdout);
    assert.equal(
      r.stderr,
      `node-auditor: cannot read ${path.join(dir, 'journal')}: it holds no log file and no journal file\n`,
    );
    assert.equal(r.stdout, '');
  });

  it('a .gz cut short is an unreadable input (exit 2, named), not a result', async (t) => {
    const dir = await tempDir(t);
    // The seed first, so that a scan that gave up quietly would still find its incident.
    const seed = await fs.readFile(path.join(LOGS, 'seed-notready.log'));
    const benign = await fs.readFile(path.join(LOGS, 'benign.log'));
    const whole = gzipSync(Buffer.concat([seed, ...Array.from({ length: 2000 }, () => benign)]));
    const cut = path.join(dir, 'syslog.2.gz');
    await fs.writeFile(cut, whole.subarray(0, Math.floor(whole.length / 2)));
    const header = path.join(dir, 'syslog.3.gz');
    await fs.writeFile(header, whole.subarray(0, 12));
    for (const file of [cut, header]) {
      const r = await runCli(['scan-logs', file]);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(
        r.stderr,
        `node-auditor: cannot read ${file}: corrupt or truncated gzip data (unexpected end of file)\n`,
      );
      assert.equal(r.stdout, '');
    }
  });

  it('a file the user may not read is exit 2 naming it', async (t) => {
    const dir = await tempDir(t);
    const file = await savedCopy(dir, 'seed-notready.log', 'syslog');
    await fs.chmod(file, 0o600);
    // Root reads any file: run as nobody, as an operator without root would.
    if (isRoot()) await fs.chmod(dir, 0o755);
    else await fs.chmod(file, 0o000);
    const r = await runCli(['scan-logs', file], {
      ...(isRoot() ? { user: { uid: 65534, gid: 65534 } } : {}),
    });
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr, `node-auditor: cannot read ${file}: permission denied\n`);
    assert.equal(r.stdout, '');
  });

  it('a binary file named on the command line is read with a warning', async (t) => {
    const dir = await tempDir(t);
    const file = path.join(dir, 'core');
    await fs.writeFile(
      file,
      Buffer.concat([Buffer.from('\x7fELF\x02\x01\x01\0\0\0'), Buffer.alloc(64)]),
    );
    const r = await runCli(['scan-logs', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      unwrapped(r.stderr),
      `scan-logs: ${file} does not look like a text log (binary data in its first 4 KiB); read as syslog text anyway\n`,
    );
  });
});

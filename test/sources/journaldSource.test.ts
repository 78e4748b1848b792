// The journald source on real journal files (written by systemd-journal-remote, read by the real
// journalctl): following appends, filtering at the source, resuming from the saved cursor with
// nothing replayed, a cursor the journal no longer has, the lookback window, and a journal
// directory that only appears later.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import pino from 'pino';
import { HostRoot } from '../../agent/host/hostRoot.ts';
import { JournaldSource } from '../../agent/sources/journaldSource.ts';
import type { JournaldSourceOptions } from '../../agent/sources/journaldSource.ts';
import type { LogRecord } from '../../agent/sources/logRecord.ts';
import { eventually, requireTool, sleep, tempDir } from '../helpers.ts';
import { journalWriter } from '../journalFiles.ts';
import type { JournalEntry } from '../journalFiles.ts';

interface Follower {
  source: JournaldSource;
  records: LogRecord[];
  catchUp: LogRecord[];
  warnings: string[];
}

async function follow(
  t: TestContext,
  root: string,
  options: Partial<JournaldSourceOptions> = {},
): Promise<Follower> {
  const follower: Follower = {
    records: [],
    catchUp: [],
    warnings: [],
    source: undefined as unknown as JournaldSource,
  };
  const log = pino(
    { level: 'warn' },
    {
      write: (line: string) =>
        follower.warnings.push(String((JSON.parse(line) as { event?: string }).event)),
    },
  );
  follower.source = new JournaldSource({
    host: new HostRoot(root),
    directories: ['/var/log/journal', '/run/log/journal'],
    identifiers: ['kubelet', 'containerd'],
    units: ['kubelet.service'],
    command: 'journalctl',
    log,
    maxLineBytes: 1024,
    lookbackMs: 60_000,
    restartMinMs: 50,
    restartMaxMs: 200,
    consumer: {
      record(record, catchUp) {
        (catchUp ? follower.catchUp : follower.records).push(record);
      },
      lineCut() {
        /* not exercised here */
      },
    },
    ...options,
  });
  await follower.source.start();
  t.after(() => follower.source.stop());
  return follower;
}

async function setup(t: TestContext) {
  if (requireTool(t, 'journalctl') === undefined) return undefined;
  const write = journalWriter(t);
  if (write === undefined) return undefined;
  const root = await tempDir(t);
  const dir = path.join(root, 'var', 'log', 'journal', '0123456789abcdef0123456789abcdef');
  await fs.mkdir(dir, { recursive: true });
  const file = path.join(dir, 'system.journal');
  return { root, append: (entries: readonly JournalEntry[]) => write(file, entries) };
}

const kubelet = (message: string): JournalEntry => ({
  message,
  identifier: 'kubelet',
  unit: 'kubelet.service',
  pid: 1234,
});

describe('journald source', () => {
  it('follows entries appended to the journal, only those of the programs asked for', async (t) => {
    const env = await setup(t);
    if (env === undefined) return;
    await env.append([kubelet('before the agent started')]);
    const follower = await follow(t, env.root);
    await eventually(() => (follower.catchUp.length === 1 ? true : undefined));
    await env.append([
      kubelet('E1122 PLEG is not healthy: pleg was last seen active 3m0s ago'),
      { message: 'pam_unix(cron:session): session opened', identifier: 'CRON' },
      {
        message: 'Out of memory: Killed process 4242 (java)',
        identifier: 'kernel',
        transport: 'kernel',
      },
      {
        message: 'a line of the unit under another name',
        identifier: 'kubelet-wrapper',
        unit: 'kubelet.service',
      },
    ]);
    await eventually(() => (follower.records.length === 3 ? true : undefined), 5000);
    await sleep(200);
    assert.deepEqual(
      follower.records.map((r) => [r.identifier, r.message]),
      [
        ['kubelet', 'E1122 PLEG is not healthy: pleg was last seen active 3m0s ago'],
        ['kernel', 'Out of memory: Killed process 4242 (java)'],
        ['kubelet-wrapper', 'a line of the unit under another name'],
      ],
    );
    assert.equal(follower.catchUp[0]?.message, 'before the agent started');
    assert.match(follower.records[0]?.line ?? '', /k1-node01 kubelet\[1234\]: E1122 PLEG/);
    assert.equal(follower.source.health().state, 'following');
    assert.equal(follower.source.health().directory, '/var/log/journal');
  });

  it('resumes after the last entry handled: nothing replayed, nothing skipped', async (t) => {
    const env = await setup(t);
    if (env === undefined) return;
    await env.append([kubelet('one'), kubelet('two')]);
    const first = await follow(t, env.root);
    await eventually(() => (first.catchUp.length === 2 ? true : undefined));
    const cursor = first.source.checkpoint();
    assert.ok(cursor !== undefined);
    await first.source.stop();
    await env.append([kubelet('three, written while the agent was stopped')]);
    const second = await follow(t, env.root, { savedCursor: cursor });
    await env.append([kubelet('four')]);
    await eventually(() => (second.records.length + second.catchUp.length >= 2 ? true : undefined));
    await sleep(200);
    assert.deepEqual(
      [...second.catchUp, ...second.records].map((r) => r.message),
      ['three, written while the agent was stopped', 'four'],
    );
  });

  it('reads from the lookback window when the saved cursor is one journalctl cannot seek to', async (t) => {
    const env = await setup(t);
    if (env === undefined) return;
    await env.append(
      [kubelet('an hour old'), { ...kubelet('recent'), time: Date.now() - 5000 }].map((e, i) =>
        i === 0 ? { ...e, time: Date.now() - 3_600_000 } : e,
      ),
    );
    const follower = await follow(t, env.root, {
      savedCursor: 'not-a-cursor',
    });
    await eventually(() => (follower.catchUp.length >= 1 ? true : undefined), 5000);
    await sleep(200);
    assert.deepEqual(
      follower.catchUp.map((r) => r.message),
      ['recent'],
    );
    assert.ok(follower.warnings.includes('logs.journal.cursor-lost'), String(follower.warnings));
  });

  it('waits for a journal directory that does not exist yet, then follows it', async (t) => {
    const env = await setup(t);
    if (env === undefined) return;
    await fs.rm(path.join(env.root, 'var', 'log', 'journal'), { recursive: true });
    const follower = await follow(t, env.root);
    assert.equal(follower.source.health().state, 'waiting');
    assert.match(
      follower.source.health().detail ?? '',
      /no journal files in \/var\/log\/journal or \/run\/log\/journal/,
    );
    // Files in a directory not named by a machine ID are not journald's (journalctl skips them).
    const stray = path.join(env.root, 'run', 'log', 'journal', 'not-a-machine-id');
    await fs.mkdir(stray, { recursive: true });
    await journalWriter(t)?.(path.join(stray, 'system.journal'), [kubelet('not journald')]);
    await sleep(300);
    assert.equal(follower.source.health().state, 'waiting');
    const runDir = path.join(env.root, 'run', 'log', 'journal', 'fedcba9876543210fedcba9876543210');
    await fs.mkdir(runDir, { recursive: true });
    const write = journalWriter(t);
    await write?.(path.join(runDir, 'system.journal'), [kubelet('journald started, volatile')]);
    await eventually(
      () => (follower.catchUp.length + follower.records.length >= 1 ? true : undefined),
      5000,
    );
    assert.deepEqual(
      [...follower.catchUp, ...follower.records].map((r) => r.message),
      ['journald started, volatile'],
    );
    assert.equal(follower.source.health().directory, '/run/log/journal');
  });

  it('without follow, reads what is there and finishes', async (t) => {
    const env = await setup(t);
    if (env === undefined) return;
    await env.append([kubelet('a'), kubelet('b'), { message: 'c', identifier: 'sshd' }]);
    const follower = await follow(t, env.root, { follow: false });
    await follower.source.finished();
    assert.deepEqual(
      follower.catchUp.map((r) => r.message),
      ['a', 'b'],
    );
  });

  it('reports a journalctl that cannot run as an error, and keeps retrying', async (t) => {
    const env = await setup(t);
    if (env === undefined) return;
    await env.append([kubelet('a')]);
    const follower = await follow(t, env.root, { command: '/nonexistent/journalctl' });
    const health = await eventually(() => {
      const h = follower.source.health();
      return h.state === 'error' ? h : undefined;
    });
    assert.match(health.detail ?? '', /cannot run \/nonexistent\/journalctl: .*ENOENT/);
    assert.deepEqual(follower.warnings, ['logs.journal.error']); // logged once, not per retry
  });
});

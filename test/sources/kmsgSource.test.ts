// The kernel log source on this machine's real /dev/kmsg (root only): records written into the
// kernel's ring are read back, with what was there before start-up marked as catch-up; a
// restart resumes after the last record handled; and when the ring overwrites records faster
// than they are read, the loss is counted and following goes on.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, promises as fs, writeSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import pino from 'pino';
import { HostRoot } from '../../agent/host/hostRoot.ts';
import { KmsgSource } from '../../agent/sources/kmsgSource.ts';
import type { KmsgCheckpoint } from '../../agent/sources/kmsgSource.ts';
import type { LogRecord } from '../../agent/sources/logRecord.ts';
import { requireRoot } from '../helpers.ts';

const DEVKMSG = '/proc/sys/kernel/printk_devkmsg';

interface Follower {
  source: KmsgSource;
  records: LogRecord[];
  catchUp: LogRecord[];
  lost: number;
}

async function follow(
  t: TestContext,
  options: { saved?: KmsgCheckpoint; lookbackMs?: number } = {},
): Promise<Follower> {
  const follower: Follower = {
    records: [],
    catchUp: [],
    lost: 0,
    source: undefined as unknown as KmsgSource,
  };
  follower.source = new KmsgSource({
    host: new HostRoot('/'),
    path: '/dev/kmsg',
    log: pino({ level: 'silent' }),
    lookbackMs: options.lookbackMs ?? 600_000,
    pollMs: 3_600_000, // the test reads with readNow()
    ...(options.saved === undefined ? {} : { saved: options.saved }),
    consumer: {
      record(record, catchUp) {
        (catchUp ? follower.catchUp : follower.records).push(record);
      },
      lineCut() {
        /* records are at most about 8 KiB */
      },
      lost(records) {
        follower.lost += records;
      },
    },
  });
  await follower.source.start();
  await follower.source.readNow();
  t.after(() => follower.source.stop());
  return follower;
}

/**
 * A test of its own: a tag no other writer of the kernel log uses. Records end with a newline:
 * the kernel keeps a record without one open for a continuation, invisible to readers.
 */
function tagged(
  t: TestContext,
): { tag: string; write: (text: string) => void; mine: (r: LogRecord[]) => string[] } | undefined {
  if (!requireRoot(t, 'writing to /dev/kmsg')) return undefined;
  const tag = `node-auditor-test-${randomBytes(4).toString('hex')}`;
  return {
    tag,
    write(text) {
      const fd = openSync('/dev/kmsg', 'w');
      try {
        writeSync(fd, `<3>${tag}: ${text}\n`);
      } finally {
        closeSync(fd);
      }
    },
    mine: (records) =>
      records
        .filter((r) => r.message.startsWith(`${tag}: `))
        .map((r) => r.message.slice(tag.length + 2)),
  };
}

describe('kernel log source (/dev/kmsg)', () => {
  it('reads records written to the kernel ring; those from before start-up are catch-up', async (t) => {
    const kmsg = tagged(t);
    if (kmsg === undefined) return;
    kmsg.write('XFS (dm-3): Corruption of in-memory data detected.  Shutting down filesystem');
    const follower = await follow(t);
    assert.deepEqual(kmsg.mine(follower.catchUp), [
      'XFS (dm-3): Corruption of in-memory data detected.  Shutting down filesystem',
    ]);
    kmsg.write('after start');
    await follower.source.readNow();
    assert.deepEqual(kmsg.mine(follower.records), ['after start']);
    const [record] = follower.records.filter((r) => r.message.endsWith('after start'));
    assert.equal(record?.identifier, 'kernel');
    assert.equal(record?.source, 'kmsg');
    // The time comes from the record's monotonic stamp: it is the time it was written.
    assert.ok(Math.abs((record?.time ?? 0) - Date.now()) < 2000, String(record?.time));
    assert.match(
      record?.line ?? '',
      /^\d{4}-\d\d-\d\dT[\d:.]+Z kernel: \[ *\d+\.\d{6}\] node-auditor-test-/,
    );
    assert.equal(follower.source.health().state, 'following');
  });

  it('resumes after the last record handled: nothing replayed, nothing skipped', async (t) => {
    const kmsg = tagged(t);
    if (kmsg === undefined) return;
    kmsg.write('one');
    const first = await follow(t);
    const checkpoint = first.source.checkpoint();
    assert.ok(checkpoint !== undefined);
    await first.source.stop();
    kmsg.write('two, written while the agent was stopped');
    const second = await follow(t, { saved: checkpoint });
    assert.deepEqual(kmsg.mine([...second.catchUp, ...second.records]), [
      'two, written while the agent was stopped',
    ]);
    // A checkpoint from another boot says nothing about this one: the lookback applies.
    const third = await follow(t, { saved: { ...checkpoint, bootId: 'another-boot' } });
    assert.deepEqual(kmsg.mine(third.catchUp), ['one', 'two, written while the agent was stopped']);
  });

  it('skips records older than the lookback window at start-up', async (t) => {
    const kmsg = tagged(t);
    if (kmsg === undefined) return;
    kmsg.write('old');
    await new Promise((resolve) => setTimeout(resolve, 300));
    const follower = await follow(t, { lookbackMs: 100 });
    assert.deepEqual(kmsg.mine(follower.catchUp), []);
  });

  it('counts records the ring overwrote before they were read, and goes on following', async (t) => {
    // Floods the kernel log past its ring (dmesg loses its history): CI, or when asked.
    if (process.env.TEST_REQUIRE_REAL_TOOLS !== '1' && process.env.TEST_KMSG_FLOOD !== '1') {
      t.skip("floods this machine's kernel log; runs in CI or with TEST_KMSG_FLOOD=1");
      return;
    }
    const kmsg = tagged(t);
    if (kmsg === undefined) return;
    // Userspace writes are rate limited (10 per 5 s) unless printk_devkmsg is "on".
    const before = (await fs.readFile(DEVKMSG, 'utf8')).trim();
    await fs.writeFile(DEVKMSG, 'on\n');
    t.after(() => fs.writeFile(DEVKMSG, `${before}\n`));
    const follower = await follow(t);
    const count = 5000; // 5000 records of 900 bytes: far past a 128 KiB to 1 MiB ring
    const fd = openSync('/dev/kmsg', 'w');
    const filler = 'x'.repeat(880);
    for (let i = 0; i < count; i++) writeSync(fd, `<6>${kmsg.tag}: ${i} ${filler}\n`);
    closeSync(fd);
    await follower.source.readNow();
    const seen = kmsg.mine(follower.records).map((m) => Number(m.split(' ')[0]));
    assert.ok(follower.lost > 0, 'records were overwritten');
    assert.equal(seen.at(-1), count - 1, 'the newest record is read');
    assert.ok(seen.length < count);
    assert.ok(follower.lost >= count - seen.length, `${follower.lost} lost, ${seen.length} seen`);
    kmsg.write('after the flood');
    await follower.source.readNow();
    assert.deepEqual(kmsg.mine(follower.records).at(-1), 'after the flood');
  });
});

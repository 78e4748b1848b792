// The file follower's other cases, on real files: truncation, deletion and late creation, lines
// longer than the limit, binary garbage, resuming from a checkpoint (also when the file was
// rotated while the agent was stopped), and the lookback at first start.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import pino from 'pino';
import { HostRoot } from '../../agent/host/hostRoot.ts';
import { FileSource } from '../../agent/sources/fileSource.ts';
import type { FileEvent, FileSourceState } from '../../agent/sources/fileSource.ts';
import { eventually, tempDir } from '../helpers.ts';

const silent = pino({ level: 'silent' });

interface Follower {
  source: FileSource;
  lines: string[];
  catchUp: string[];
  cut: number;
  events: FileEvent[];
  file: string;
}

async function follow(
  t: TestContext,
  root: string,
  options: { saved?: FileSourceState; maxLineBytes?: number; lookbackBytes?: number } = {},
): Promise<Follower> {
  const follower: Follower = {
    lines: [],
    catchUp: [],
    cut: 0,
    events: [],
    file: path.join(root, 'var', 'log', 'syslog'),
    source: undefined as unknown as FileSource,
  };
  follower.source = new FileSource({
    host: new HostRoot(root),
    hostPath: '/var/log/syslog',
    log: silent,
    maxLineBytes: options.maxLineBytes ?? 1024,
    lookbackBytes: options.lookbackBytes ?? 0,
    rotateWaitMs: 200,
    ...(options.saved === undefined ? {} : { saved: options.saved }),
    consumer: {
      lines(bytes, start, end, catchUp) {
        const text = bytes.toString('utf8', start, end - 1).split('\n');
        (catchUp ? follower.catchUp : follower.lines).push(...text);
      },
      lineCut() {
        follower.cut++;
      },
      event(event) {
        follower.events.push(event);
      },
    },
  });
  await follower.source.start();
  t.after(() => follower.source.stop());
  return follower;
}

async function logRoot(t: TestContext, initial = ''): Promise<string> {
  const root = await tempDir(t);
  await fs.mkdir(path.join(root, 'var', 'log'), { recursive: true });
  if (initial !== '') await fs.writeFile(path.join(root, 'var', 'log', 'syslog'), initial);
  return root;
}

const seenAll = (f: Follower, expected: string[]) =>
  eventually(
    () => (expected.every((l) => f.lines.includes(l)) ? true : undefined),
    5000,
    `lines ${expected.join(', ')}`,
  );

describe('file source', () => {
  it('follows appends from the end, without a fixed poll (an inotify event wakes it)', async (t) => {
    const root = await logRoot(t, 'old 1\nold 2\n');
    const f = await follow(t, root);
    const started = performance.now();
    await fs.appendFile(f.file, 'new 1\n');
    await seenAll(f, ['new 1']);
    // The backstop poll is 2 s: seeing the line much sooner means the watch woke the reader.
    assert.ok(performance.now() - started < 1000, `took ${performance.now() - started} ms`);
    assert.deepEqual(f.lines, ['new 1'], 'lines from before start are not replayed');
  });

  it('waits for a file that does not exist yet, then reads it from its beginning', async (t) => {
    const root = await logRoot(t);
    const f = await follow(t, root);
    assert.equal(f.source.health().state, 'waiting');
    await fs.writeFile(f.file, 'first\nsecond\n');
    await seenAll(f, ['first', 'second']);
    assert.equal(f.source.health().state, 'following');
  });

  it('after deletion, reads what is left, then follows the file created in its place', async (t) => {
    const root = await logRoot(t, 'a\n');
    const f = await follow(t, root);
    const handle = await fs.open(f.file, 'a');
    await fs.unlink(f.file);
    await handle.write('written after unlink\n');
    await handle.close();
    await seenAll(f, ['written after unlink']);
    await fs.writeFile(f.file, 'in the new file\n');
    await seenAll(f, ['in the new file']);
    assert.ok(f.events.includes('deleted'), f.events.join(','));
  });

  it('after a truncation with no rotated copy, reads the file again from its start', async (t) => {
    const root = await logRoot(t, '');
    const f = await follow(t, root);
    await fs.appendFile(f.file, 'before 1\nbefore 2\n');
    await seenAll(f, ['before 2']);
    await fs.truncate(f.file, 0);
    await fs.appendFile(f.file, 'after\n');
    await seenAll(f, ['after']);
    assert.ok(f.events.includes('truncated'));
  });

  it('cuts lines longer than the limit, counts them, and carries on', async (t) => {
    const root = await logRoot(t);
    const f = await follow(t, root, { maxLineBytes: 100 });
    await fs.writeFile(f.file, `short\n${'x'.repeat(5000)}\nafter long\n${'y'.repeat(300)}`);
    await seenAll(f, ['short', 'after long']);
    await fs.appendFile(f.file, 'tail of the y line\nlast\n');
    await seenAll(f, ['last']);
    assert.equal(f.cut, 2);
    assert.ok(f.lines.includes('x'.repeat(100)));
    assert.ok(!f.lines.includes('tail of the y line'), 'the rest of a cut line is not a line');
  });

  it('passes invalid UTF-8 and binary garbage through without failing', async (t) => {
    const root = await logRoot(t);
    const f = await follow(t, root);
    await fs.writeFile(
      f.file,
      Buffer.concat([
        Buffer.from('before\n'),
        Buffer.from([0xff, 0xfe, 0x00, 0xc3, 0x28, 0x0a]),
        Buffer.from('\u0000\u0001binary\u0000\n'),
        Buffer.from('after\n'),
      ]),
    );
    await seenAll(f, ['before', 'after']);
    assert.equal(f.lines.length, 4);
    assert.equal(f.source.health().state, 'following');
  });

  it('resumes from a checkpoint: nothing replayed, nothing skipped, a partial line kept whole', async (t) => {
    const root = await logRoot(t, '');
    const first = await follow(t, root);
    await fs.appendFile(first.file, 'one\ntwo\nthree (unfinished');
    await seenAll(first, ['two']);
    await eventually(() => (first.source.health().unreadBytes === 0 ? true : undefined));
    await first.source.stop();
    const saved = first.source.checkpoint(); // taken after stop, as the agent's shutdown does
    await fs.appendFile(first.file, ' and finished)\nfour\n');
    const second = await follow(t, root, { saved });
    await seenAll(second, ['four']);
    assert.deepEqual(second.lines, ['three (unfinished and finished)', 'four']);
  });

  it('resumes in the rotated file when the log was rotated while stopped', async (t) => {
    const root = await logRoot(t, '');
    const first = await follow(t, root);
    await fs.appendFile(first.file, 'a\nb\n');
    await seenAll(first, ['b']);
    const saved = first.source.checkpoint();
    await first.source.stop();
    await fs.appendFile(first.file, 'c (written before the rotation)\n');
    await fs.rename(first.file, `${first.file}.1`);
    await fs.writeFile(first.file, 'd (new file)\n');
    const second = await follow(t, root, { saved });
    await seenAll(second, ['d (new file)']);
    assert.deepEqual(second.lines, ['c (written before the rotation)', 'd (new file)']);
  });

  it('with no checkpoint, reads back the lookback bytes, marked as catch-up, without a partial first line', async (t) => {
    const lines = Array.from({ length: 100 }, (_, i) => `line ${i} ${'.'.repeat(40)}`);
    const root = await logRoot(t, lines.join('\n') + '\n');
    const f = await follow(t, root, { lookbackBytes: 500 });
    await eventually(() => (f.catchUp.includes(lines[99] ?? '') ? true : undefined));
    assert.ok(f.catchUp.length >= 8 && f.catchUp.length <= 11, String(f.catchUp.length));
    for (const line of f.catchUp) assert.ok(lines.includes(line), `whole lines only: ${line}`);
    await fs.appendFile(f.file, 'live\n');
    await seenAll(f, ['live']);
  });
});

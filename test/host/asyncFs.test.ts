// The agent's promise-returning file calls (agent/host/asyncFs.ts), over Node's callback API:
// the results callers rely on, and a descriptor closed only once.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import * as fs from '../../agent/host/asyncFs.ts';
import { sleep } from '../helpers.ts';

test('asyncFs: read at a position and from the file position, stat, readFile', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'asyncfs-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'a.log');
  await writeFile(file, 'first line\nsecond line\n');
  const handle = await fs.open(file, 'r');
  try {
    const buf = Buffer.alloc(6);
    assert.deepEqual(await handle.read(buf, 0, 6, 11), { bytesRead: 6, buffer: buf });
    assert.equal(buf.toString(), 'second');
    const head = Buffer.alloc(5);
    await handle.read(head, 0, 5, null);
    assert.equal(head.toString(), 'first');
    assert.equal((await handle.stat()).size, 23);
    assert.equal(await handle.readFile('utf8'), ' line\nsecond line\n'); // from the file position
  } finally {
    await handle.close();
  }
  assert.deepEqual(
    (await fs.readdir(dir, { withFileTypes: true })).map((e) => [e.name, e.isFile()]),
    [['a.log', true]],
  );
  await assert.rejects(fs.readFile(path.join(dir, 'missing')), { code: 'ENOENT' });
});

test('asyncFs: closing twice never closes the file that reused the descriptor', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'asyncfs-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(path.join(dir, 'a'), 'A');
  await writeFile(path.join(dir, 'b'), 'B');
  const a = await fs.open(path.join(dir, 'a'), 'r');
  const fdOfA = a.fd;
  await a.close();
  const b = await fs.open(path.join(dir, 'b'), 'r');
  try {
    assert.equal(b.fd, fdOfA, 'the kernel gives the lowest free descriptor back');
    await a.close(); // a second close of a: must not close b
    const buf = Buffer.alloc(1);
    await b.read(buf, 0, 1, 0);
    assert.equal(buf.toString(), 'B');
    await assert.rejects(a.read(buf, 0, 1, 0), { code: 'EBADF' });
  } finally {
    await b.close();
  }
});

test('asyncFs: writeFileAtomic replaces a state file whole, creates its directory, leaves no temporary file', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'asyncfs-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'state', 'events.json');
  await fs.writeFileAtomic(file, '{"v":1}');
  await fs.writeFileAtomic(file, '{"v":2}');
  assert.equal(await fs.readFile(file, 'utf8'), '{"v":2}');
  assert.deepEqual(await fs.readdir(path.dirname(file)), ['events.json']);
  // a rename that fails (a directory where the file should be): the error, and no litter
  const blocked = path.join(dir, 'blocked');
  await fs.mkdir(path.join(blocked, 'history.json'), { recursive: true });
  await assert.rejects(fs.writeFileAtomic(path.join(blocked, 'history.json'), 'x'));
  assert.deepEqual(await fs.readdir(blocked), ['history.json']);
});

test('asyncFs: readRegularFile reads a pipe only where one is allowed, within its limits', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'asyncfs-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const fifo = path.join(dir, 'fifo');
  const made = spawnSync('mkfifo', [fifo]);
  assert.equal(made.status, 0, String(made.stderr));
  const descriptors = () => readdirSync('/proc/self/fd').length;
  const before = descriptors();
  await assert.rejects(fs.readRegularFile(fifo), {
    code: 'E_NOT_REGULAR',
    message: 'not a regular file (it is a FIFO)',
  });
  const limits = { timeoutMs: 300, maxBytes: 64 };
  // a writer that writes in two goes, then closes: all of it
  const writer = spawn('sh', [
    '-c',
    '{ printf "a: 1\\n"; sleep 0.1; printf "b: 2\\n"; } > "$0"',
    fifo,
  ]);
  assert.equal(await fs.readRegularFile(fifo, { pipe: limits }), 'a: 1\nb: 2\n');
  await new Promise((resolve) => writer.once('close', resolve));
  // no writer, or one that never closes: given up at the deadline, not waited for
  const started = performance.now();
  await assert.rejects(fs.readRegularFile(fifo, { pipe: limits }), {
    code: 'E_PIPE',
    message: 'a pipe whose writer did not finish within 0.3 s',
  });
  assert.ok(performance.now() - started < 2000);
  const big = spawn('sh', ['-c', 'head -c 1000 /dev/zero | tr "\\0" x > "$0"', fifo]);
  await assert.rejects(fs.readRegularFile(fifo, { pipe: limits }), {
    code: 'E_PIPE',
    message: 'a pipe that gave more than 64 bytes',
  });
  big.kill();
  await sleep(100);
  assert.equal(descriptors(), before, 'every descriptor closed');
});

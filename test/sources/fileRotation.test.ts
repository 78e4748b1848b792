// Following a file through real logrotate runs (rename with a HUP'd writer, and copytruncate)
// while a writer appends 1,000,000 numbered lines: every line that any file still holds is seen
// exactly once.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import type { SpawnSyncReturns } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import pino from 'pino';
import { HostRoot } from '../../agent/host/hostRoot.ts';
import { FileSource } from '../../agent/sources/fileSource.ts';
import type { FileEvent } from '../../agent/sources/fileSource.ts';
import { eventually, requireTool, sleep, tempDir } from '../helpers.ts';

const LINES = 1_000_000;
const silent = pino({ level: 'silent' });

/**
 * A writer like rsyslog: keeps its file open (O_APPEND), writes batches of numbered lines, and
 * reopens the path on SIGHUP (what logrotate's postrotate asks of it).
 */
const WRITER = `
const fs = require('node:fs');
const [file, total] = [process.argv[1], Number(process.argv[2])];
let fd = fs.openSync(file, 'a');
process.on('SIGHUP', () => { const old = fd; fd = fs.openSync(file, 'a'); fs.closeSync(old); });
let n = 1;
function batch() {
  const lines = [];
  for (let i = 0; i < 2000 && n <= total; i++, n++) lines.push('line ' + n + ' of the rotation test\\n');
  fs.writeSync(fd, lines.join(''));
  if (n <= total) setTimeout(batch, 2); else { fs.closeSync(fd); process.exit(0); }
}
process.stdout.write('ready\\n');
batch();
`;

async function rotateWhileWriting(t: TestContext, mode: 'rename' | 'copytruncate') {
  const logrotate = requireTool(t, 'logrotate');
  if (logrotate === undefined) return;
  const root = await tempDir(t);
  await fs.mkdir(path.join(root, 'var', 'log'), { recursive: true });
  const file = path.join(root, 'var', 'log', 'app.log');
  await fs.writeFile(file, '');

  const seen = new Uint8Array(LINES + 1);
  let duplicates = 0;
  const events: FileEvent[] = [];
  const source = new FileSource({
    host: new HostRoot(root),
    hostPath: '/var/log/app.log',
    log: silent,
    maxLineBytes: 4096,
    lookbackBytes: 0,
    rotateWaitMs: 300,
    consumer: {
      lines(bytes, start, end) {
        for (const line of bytes.toString('latin1', start, end - 1).split('\n')) {
          const n = Number(/^line (\d+) /.exec(line)?.[1]);
          if (seen[n] === 1) duplicates++;
          seen[n] = 1;
        }
      },
      lineCut() {
        assert.fail('no line is longer than the limit');
      },
      event(event) {
        events.push(event);
      },
    },
  });
  await source.start();
  t.after(() => source.stop());

  const writer = spawn(process.execPath, ['-e', WRITER, file, String(LINES)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise((resolve) => writer.stdout.once('data', resolve));
  const exited = new Promise<number | null>((resolve) => writer.on('exit', resolve));
  const conf = path.join(root, 'logrotate.conf');
  await fs.writeFile(
    conf,
    `${file} {\n  rotate 1000\n  nocompress\n  missingok\n${
      mode === 'copytruncate'
        ? '  copytruncate\n'
        : `  create\n  postrotate\n    kill -HUP ${writer.pid ?? 0}\n  endscript\n`
    }}\n`,
  );
  let rotations = 0;
  let done = false;
  void exited.then(() => (done = true));
  while (!done) {
    await sleep(150);
    if (done) break;
    const run: SpawnSyncReturns<string> = spawnSync(
      logrotate,
      ['-f', '-s', path.join(root, 'state'), conf],
      { encoding: 'utf8' },
    );
    assert.equal(run.status, 0, run.stderr);
    rotations++;
  }
  assert.equal(await exited, 0);
  assert.ok(rotations >= 5, `only ${rotations} rotations happened while writing`);

  // What the files still hold is what must have been seen: all of it for rename; copytruncate
  // itself loses the lines written between its copy and its truncation.
  const retained = new Uint8Array(LINES + 1);
  let retainedCount = 0;
  for (const name of await fs.readdir(path.dirname(file))) {
    const text = await fs.readFile(path.join(path.dirname(file), name), 'latin1');
    for (const match of text.matchAll(/^line (\d+) /gm)) {
      const n = Number(match[1]);
      if (retained[n] === 0) retainedCount++;
      retained[n] = 1;
    }
  }
  if (mode === 'rename') assert.equal(retainedCount, LINES, 'rename rotation loses nothing');
  await eventually(
    () => {
      source.wake();
      let missing = 0;
      for (let n = 1; n <= LINES; n++) if (retained[n] === 1 && seen[n] === 0) missing++;
      return missing === 0 ? true : undefined;
    },
    20_000,
    'every retained line to be seen',
  );
  let extra = 0;
  for (let n = 1; n <= LINES; n++) if (seen[n] === 1 && retained[n] === 0) extra++;
  assert.equal(duplicates, 0, 'no line seen twice');
  assert.equal(extra, 0, 'nothing seen that was never in a file');
  assert.ok(
    events.includes(mode === 'rename' ? 'rotated' : 'recovered-from-copy') ||
      (mode === 'copytruncate' && events.includes('truncated')),
    `events: ${events.join(', ')}`,
  );
  return { rotations, retainedCount };
}

describe('following a file through logrotate', { timeout: 120_000 }, () => {
  it('rename rotation (create + postrotate HUP): every line exactly once', async (t) => {
    await rotateWhileWriting(t, 'rename');
  });

  it('copytruncate: every line the files retain exactly once, the tail read from the copy', async (t) => {
    await rotateWhileWriting(t, 'copytruncate');
  });
});

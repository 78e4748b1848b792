// The config file watcher on a real filesystem, including the cases a plain watch misses.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { lstatSync, promises as fs, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import pino from 'pino';
import { watchConfigFile } from '../../agent/config/configWatcher.ts';
import { eventually, sleep, tempDir } from '../helpers.ts';

const log = pino({ level: 'silent' });

test('a change made between loading and watching is not missed', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'config.yaml');
  await fs.writeFile(file, 'changed since load\n');
  let changes = 0;
  const watcher = watchConfigFile(file, 'what was loaded\n', () => changes++, log, 200);
  t.after(() => {
    watcher.close();
  });
  await eventually(() => (changes === 1 ? true : undefined), 3000, 'the poll to notice');
});

test('saving the same bytes again is not a change', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'config.yaml');
  await fs.writeFile(file, 'a: 1\n');
  let changes = 0;
  const watcher = watchConfigFile(file, 'a: 1\n', () => changes++, log, 200);
  t.after(() => {
    watcher.close();
  });
  await fs.writeFile(file, 'a: 1\n');
  await sleep(700);
  assert.equal(changes, 0);
  await fs.writeFile(file, 'a: 2\n');
  await eventually(() => (changes === 1 ? true : undefined), 3000, 'the change');
});

test('a ConfigMap item in a subdirectory keeps being followed across swaps', async (t) => {
  // kubelet's layout for items: [{key: config.yaml, path: conf/config.yaml}]:
  // conf -> ..data/conf, ..data -> ..<timestamp>. A watch on conf/ watches the timestamped
  // directory, which the first swap deletes; the poll must carry on.
  const dir = await tempDir(t);
  const version = async (name: string, text: string) => {
    await fs.mkdir(path.join(dir, name, 'conf'), { recursive: true });
    await fs.writeFile(path.join(dir, name, 'conf', 'config.yaml'), text);
    await fs.symlink(name, path.join(dir, '..data_tmp'));
    await fs.rename(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
  };
  await version('..v1', 'v: 1\n');
  await fs.symlink('..data/conf', path.join(dir, 'conf'));
  const file = path.join(dir, 'conf', 'config.yaml');
  let changes = 0;
  const watcher = watchConfigFile(file, 'v: 1\n', () => changes++, log, 300);
  t.after(() => {
    watcher.close();
  });
  await version('..v2', 'v: 2\n');
  await fs.rm(path.join(dir, '..v1'), { recursive: true });
  await eventually(() => (changes === 1 ? true : undefined), 3000, 'the first swap');
  await version('..v3', 'v: 3\n');
  await fs.rm(path.join(dir, '..v2'), { recursive: true });
  await eventually(() => (changes === 2 ? true : undefined), 3000, 'the second swap');
});

test('a FIFO put in place of the file is a change, and does not stop the watching', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'config.yaml');
  await fs.writeFile(file, 'a: 1\n');
  let changes = 0;
  const watcher = watchConfigFile(file, 'a: 1\n', () => changes++, log, 200);
  // Not t.after: the temporary directory's removal, registered before, would queue behind
  // the stuck readers if there are any.
  try {
    rmSync(file);
    const made = spawnSync('mkfifo', [file]);
    assert.equal(made.status, 0, String(made.stderr));
    // The reload that follows is what says why the file is refused (loadConfig).
    await eventually(
      () => (changes === 1 ? true : undefined),
      3000,
      'the FIFO to count as a change',
    );
    rmSync(file);
    writeFileSync(file, 'a: 2\n');
    await eventually(() => (changes === 2 ? true : undefined), 3000, 'the file back');
  } finally {
    watcher.close();
    releaseFifoReaders(file);
  }
});

/**
 * If the watcher blocked reading a FIFO (the bug this guards against), let the test process end:
 * readers still queued for libuv's threadpool open a regular file in its place, and those
 * blocked in open() are let through by a writer that comes and goes. All synchronous: the
 * threadpool is what is stuck.
 */
function releaseFifoReaders(file: string): void {
  if (!lstatSync(file, { throwIfNoEntry: false })?.isFIFO()) return;
  renameSync(file, `${file}.fifo`);
  writeFileSync(file, '');
  spawnSync('sh', ['-c', 'exec 3<>"$1"; sleep 0.3', 'sh', `${file}.fifo`]);
}

// The config file watcher on a real filesystem, including the cases a plain watch misses.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
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

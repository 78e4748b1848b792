import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { HostReadError, HostRoot } from '../../agent/host/hostRoot.ts';
import { tempDir, writeFiles } from '../helpers.ts';

test('an absolute symlink resolves inside the host root, not on this machine', async (t) => {
  const root = await tempDir(t);
  await writeFiles(root, { 'etc/sysctl.conf': 'net.ipv4.ip_forward = 1\n' });
  await fs.mkdir(path.join(root, 'etc/sysctl.d'), { recursive: true });
  // Debian's layout: /etc/sysctl.d/99-sysctl.conf -> /etc/sysctl.conf (absolute)
  await fs.symlink('/etc/sysctl.conf', path.join(root, 'etc/sysctl.d/99-sysctl.conf'));
  const host = new HostRoot(root);
  assert.equal(await host.resolve('/etc/sysctl.d/99-sysctl.conf'), '/etc/sysctl.conf');
  assert.equal(await host.readText('/etc/sysctl.d/99-sysctl.conf'), 'net.ipv4.ip_forward = 1\n');
});

test('symlinks cannot climb out of the host root with ..', async (t) => {
  const root = await tempDir(t);
  await fs.mkdir(path.join(root, 'etc'), { recursive: true });
  await fs.symlink('../../../../../../etc/hostname', path.join(root, 'etc/escape'));
  const host = new HostRoot(root);
  // "/.." is "/" on the host, so the link lands on the host's /etc/hostname, which is not there
  assert.equal(await host.resolve('/etc/escape'), '/etc/hostname');
  assert.equal(await host.readText('/etc/escape'), null);
});

test('a missing file is null; a missing directory is null', async (t) => {
  const host = new HostRoot(await tempDir(t));
  assert.equal(
    await host.readText('/proc/sys/net/bridge/bridge-nf-call-iptables', { resolveLinks: false }),
    null,
  );
  assert.equal(await host.listDir('/etc/sysctl.d'), null);
});

test('a FIFO is refused at once instead of blocking a threadpool thread', async (t) => {
  const root = await tempDir(t);
  await fs.mkdir(path.join(root, 'etc/sysctl.d'), { recursive: true });
  execFileSync('mkfifo', [path.join(root, 'etc/sysctl.d/fifo.conf')]);
  const host = new HostRoot(root);
  const started = Date.now();
  await assert.rejects(host.readText('/etc/sysctl.d/fifo.conf'), (error: unknown) => {
    assert.ok(error instanceof HostReadError);
    assert.equal(error.message, 'cannot read /etc/sysctl.d/fifo.conf: not a regular file');
    return true;
  });
  assert.ok(Date.now() - started < 1000, 'the read returned at once');
});

test('a file over the size limit is an error naming the path, not an out-of-memory', async (t) => {
  const root = await tempDir(t);
  await writeFiles(root, { 'etc/big.conf': Buffer.alloc(2 * 1024 * 1024, 'a') });
  const host = new HostRoot(root);
  await assert.rejects(
    host.readText('/etc/big.conf'),
    /cannot read \/etc\/big\.conf: larger than the 1048576-byte limit/,
  );
  assert.equal(
    (await host.readText('/etc/big.conf', { maxBytes: 3 * 1024 * 1024 }))?.length,
    2 * 1024 * 1024,
  );
});

test('a directory where a file should be is an error naming the path', async (t) => {
  const root = await tempDir(t);
  await fs.mkdir(path.join(root, 'etc/sysctl.d/dir.conf'), { recursive: true });
  await assert.rejects(
    new HostRoot(root).readText('/etc/sysctl.d/dir.conf'),
    /cannot read \/etc\/sysctl\.d\/dir\.conf: not a regular file/,
  );
});

test('a symlink loop is an error, not a hang', async (t) => {
  const root = await tempDir(t);
  await fs.mkdir(path.join(root, 'etc'), { recursive: true });
  await fs.symlink('/etc/b', path.join(root, 'etc/a'));
  await fs.symlink('/etc/a', path.join(root, 'etc/b'));
  await assert.rejects(new HostRoot(root).readText('/etc/a'), /too many levels of symbolic links/);
});

test('/proc/sys files (size 0 in stat) are read to the end on the real kernel', async () => {
  const host = new HostRoot('/');
  const text = await host.readText('/proc/sys/kernel/ostype', { resolveLinks: false });
  assert.equal(text, 'Linux\n');
});

test('directory listings are sorted by byte order, whatever the locale', async (t) => {
  const root = await tempDir(t);
  await writeFiles(root, { 'd/b.conf': '', 'd/B.conf': '', 'd/a.conf': '', 'd/_x.conf': '' });
  const names = (await new HostRoot(root).listDir('/d'))?.map((e) => e.name);
  assert.deepEqual(names, ['B.conf', '_x.conf', 'a.conf', 'b.conf']);
});

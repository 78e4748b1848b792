// HostWriter on fixture host roots in temp dirs: exact contents, atomic replacement (a reader in
// another process never sees a partial file), no temp file left behind, and no write ever
// escaping the host root through a symlink.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { HostRoot } from '../../agent/host/hostRoot.ts';
import { HostWriteError, HostWriter } from '../../agent/remediation/hostWriter.ts';
import { tempDir, writeFiles } from '../helpers.ts';

async function fixture(t: test.TestContext, files: Record<string, string> = {}) {
  const root = await tempDir(t);
  await fs.mkdir(path.join(root, 'etc/sysctl.d'), { recursive: true });
  await writeFiles(root, files);
  return { root, writer: new HostWriter(new HostRoot(root)) };
}

const listDir = (dir: string) => fs.readdir(dir).then((names) => names.sort());

test('writeFileAtomic creates the file with exactly the content and mode, and leaves no temp file', async (t) => {
  const { root, writer } = await fixture(t);
  const previous = await writer.writeFileAtomic('/etc/sysctl.d/zz-a.conf', 'a = 1\n', {
    mode: 0o600,
  });
  assert.equal(previous, null, 'no file before');
  const file = path.join(root, 'etc/sysctl.d/zz-a.conf');
  assert.equal(await fs.readFile(file, 'utf8'), 'a = 1\n');
  // exactly the mode asked for, whatever the umask
  assert.equal((await fs.stat(file)).mode & 0o777, 0o600);
  assert.deepEqual(await listDir(path.join(root, 'etc/sysctl.d')), ['zz-a.conf']);
  assert.equal(await writer.readFile('/etc/sysctl.d/zz-a.conf'), 'a = 1\n');
});

test('writeFileAtomic replaces a file and returns what it held; the default mode is 0644', async (t) => {
  const { root, writer } = await fixture(t, { 'etc/sysctl.d/zz-a.conf': 'old\n' });
  const file = path.join(root, 'etc/sysctl.d/zz-a.conf');
  await fs.chmod(file, 0o600);
  // an agent started with a strict umask still writes a file sysctl --system can read
  const umask = process.umask(0o077);
  try {
    assert.equal(await writer.writeFileAtomic('/etc/sysctl.d/zz-a.conf', 'new\n'), 'old\n');
  } finally {
    process.umask(umask);
  }
  assert.equal(await fs.readFile(file, 'utf8'), 'new\n');
  assert.equal((await fs.stat(file)).mode & 0o777, 0o644);
  assert.deepEqual(await listDir(path.join(root, 'etc/sysctl.d')), ['zz-a.conf']);
});

test('a reader in another process sees the old or the new file, never a partial one', async (t) => {
  const { root, writer } = await fixture(t);
  const file = path.join(root, 'etc/sysctl.d/zz-big.conf');
  const stop = path.join(root, 'stop');
  // Big enough that writing it in place takes many pages: a non-atomic write shows halves.
  const sizes = { a: 900 * 1024, b: 700 * 1024 };
  const contents = { a: 'a'.repeat(sizes.a), b: 'b'.repeat(sizes.b) };
  await fs.writeFile(file, contents.a);
  // The reader prints what each read saw: a or b (whole), x (partial), then its report.
  const reader = spawn(
    process.execPath,
    [
      '-e',
      `const fs = require('node:fs');
       const [file, stop, la, lb] = process.argv.slice(1);
       const bad = [];
       while (!fs.existsSync(stop)) {
         const text = fs.readFileSync(file, 'latin1');
         const whole = (text.length === +la && !text.includes('b')) || (text.length === +lb && !text.includes('a'));
         process.stdout.write(whole ? text[0] : 'x');
         if (!whole && bad.length < 5) bad.push(text.length + ' bytes, starts ' + JSON.stringify(text.slice(0, 1)) + ', ends ' + JSON.stringify(text.slice(-1)));
       }
       process.stdout.write('\\n' + JSON.stringify({ bad }));`,
      file,
      stop,
      String(sizes.a),
      String(sizes.b),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  reader.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise((resolve) => reader.on('close', resolve));
  t.after(() => reader.kill('SIGKILL'));
  // Rewrite until the reader has seen the file replaced (a read showing the other content
  // than the read before) many times: how many writes that takes depends on the machine's
  // load, the reads overlapping the replacements does not.
  const SWITCHES = 30;
  const switchesSeen = () => (out.split('\n')[0]?.match(/ab|ba/g) ?? []).length;
  const partialSeen = () => out.includes('x');
  let writes = 0;
  while (writes < 60 || (switchesSeen() < SWITCHES && !partialSeen())) {
    assert.ok(writes < 5000, `the reader saw ${switchesSeen()} replacements in ${writes} writes`);
    await writer.writeFileAtomic(
      '/etc/sysctl.d/zz-big.conf',
      writes % 2 === 0 ? contents.b : contents.a,
    );
    writes++;
  }
  await fs.writeFile(stop, '');
  await exited;
  const [seen = '', report = ''] = out.split('\n');
  const { bad } = JSON.parse(report) as { bad: string[] };
  assert.deepEqual(bad, [], `partial files seen by the reader (${seen.length} reads)`);
  assert.deepEqual(await listDir(path.join(root, 'etc/sysctl.d')), ['zz-big.conf']);
});

test('a symlink at the target is refused: the file it points to outside the root is untouched', async (t) => {
  const { root, writer } = await fixture(t);
  const outside = path.join(await tempDir(t), 'victim.conf');
  await fs.writeFile(outside, 'outside\n');
  const link = path.join(root, 'etc/sysctl.d/zz-a.conf');
  await fs.symlink(outside, link);
  await assert.rejects(
    writer.writeFileAtomic('/etc/sysctl.d/zz-a.conf', 'evil\n'),
    (error: unknown) =>
      error instanceof HostWriteError &&
      error.message ===
        'cannot write /etc/sysctl.d/zz-a.conf: is a symbolic link; refusing to follow it',
  );
  assert.equal(await fs.readFile(outside, 'utf8'), 'outside\n');
  assert.equal(await fs.readlink(link), outside, 'the link itself is left as it was');
  // the temp file written before the check is removed
  assert.deepEqual(await listDir(path.join(root, 'etc/sysctl.d')), ['zz-a.conf']);
  await assert.rejects(writer.restoreFile('/etc/sysctl.d/zz-a.conf', null), /symbolic link/);
  assert.equal(await fs.readlink(link), outside);
});

test('a directory link pointing out of the root is re-rooted inside it, never followed out', async (t) => {
  const root = await tempDir(t);
  const outsideDir = await tempDir(t);
  await fs.mkdir(path.join(root, 'etc'), { recursive: true });
  // absolute and relative escapes: both must land inside the root, where outsideDir does not exist
  await fs.symlink(outsideDir, path.join(root, 'etc/sysctl.d'));
  await fs.symlink(`../../../../../../../..${outsideDir}`, path.join(root, 'etc/modules-load.d'));
  const writer = new HostWriter(new HostRoot(root));
  for (const dir of ['/etc/sysctl.d', '/etc/modules-load.d']) {
    await assert.rejects(
      writer.writeFileAtomic(`${dir}/zz-a.conf`, 'evil\n'),
      new RegExp(`cannot write ${dir}/zz-a.conf: directory ${dir} does not exist`),
    );
  }
  assert.deepEqual(await fs.readdir(outsideDir), [], 'nothing written outside the root');
  // The same link with the target created inside the root: the write lands there.
  await fs.mkdir(path.join(root, outsideDir), { recursive: true });
  await writer.writeFileAtomic('/etc/sysctl.d/zz-a.conf', 'inside\n');
  assert.equal(await fs.readFile(path.join(root, outsideDir, 'zz-a.conf'), 'utf8'), 'inside\n');
  assert.deepEqual(await fs.readdir(outsideDir), []);
});

test('a directory, FIFO or missing directory at the target is refused and no temp file remains', async (t) => {
  const { root, writer } = await fixture(t);
  const dir = path.join(root, 'etc/sysctl.d');
  await fs.mkdir(path.join(dir, 'zz-dir.conf'));
  await assert.rejects(
    writer.writeFileAtomic('/etc/sysctl.d/zz-dir.conf', 'x\n'),
    /cannot write \/etc\/sysctl.d\/zz-dir.conf: not a regular file/,
  );
  execFileSync('mkfifo', [path.join(dir, 'zz-fifo.conf')]);
  await assert.rejects(
    writer.writeFileAtomic('/etc/sysctl.d/zz-fifo.conf', 'x\n'),
    /cannot write \/etc\/sysctl.d\/zz-fifo.conf: not a regular file/,
  );
  assert.deepEqual(await listDir(dir), ['zz-dir.conf', 'zz-fifo.conf']);
  await assert.rejects(
    writer.writeFileAtomic('/etc/nowhere.d/zz-a.conf', 'x\n'),
    /directory \/etc\/nowhere.d does not exist/,
  );
  await assert.rejects(fs.stat(path.join(root, 'etc/nowhere.d')), { code: 'ENOENT' });
});

test('restoreFile puts the previous content back, or removes a file that did not exist', async (t) => {
  const { root, writer } = await fixture(t, { 'etc/sysctl.d/zz-old.conf': 'old\n' });
  const old = path.join(root, 'etc/sysctl.d/zz-old.conf');
  const previous = await writer.writeFileAtomic('/etc/sysctl.d/zz-old.conf', 'new\n');
  await writer.restoreFile('/etc/sysctl.d/zz-old.conf', previous);
  assert.equal(await fs.readFile(old, 'utf8'), 'old\n');

  const none = await writer.writeFileAtomic('/etc/sysctl.d/zz-new.conf', 'new\n');
  await writer.restoreFile('/etc/sysctl.d/zz-new.conf', none);
  assert.deepEqual(await listDir(path.join(root, 'etc/sysctl.d')), ['zz-old.conf']);
  // removing what is already gone is fine (a rollback may run twice)
  await writer.restoreFile('/etc/sysctl.d/zz-new.conf', null);
});

test('writeSysctl writes /proc/sys/<key>, returns the value before, and reads back', async (t) => {
  const { root, writer } = await fixture(t, {
    'proc/sys/fs/inotify/max_user_watches': '8192\n',
    // a dot inside a component (VLAN interface eth0.100) is a "/" in the dotted key
    'proc/sys/net/ipv4/conf/eth0.100/rp_filter': '1\n',
  });
  assert.equal(await writer.writeSysctl('fs.inotify.max_user_watches', '1048576'), '8192');
  assert.equal(
    await fs.readFile(path.join(root, 'proc/sys/fs/inotify/max_user_watches'), 'utf8'),
    '1048576\n',
  );
  assert.equal(await writer.readSysctl('fs.inotify.max_user_watches'), '1048576');
  assert.equal(await writer.writeSysctl('net.ipv4.conf.eth0/100.rp_filter', '2'), '1');
  assert.equal(
    await fs.readFile(path.join(root, 'proc/sys/net/ipv4/conf/eth0.100/rp_filter'), 'utf8'),
    '2\n',
  );
});

test('writeSysctl refuses a key that does not exist, is not a key, or leads through a link', async (t) => {
  const { root, writer } = await fixture(t, { 'proc/sys/net/ipv4/ip_forward': '0\n' });
  await assert.rejects(
    writer.writeSysctl('net.bridge.bridge-nf-call-iptables', '1'),
    (error: unknown) =>
      error instanceof HostWriteError &&
      error.message ===
        'cannot write /proc/sys/net/bridge/bridge-nf-call-iptables: sysctl net.bridge.bridge-nf-call-iptables does not exist',
  );
  await assert.rejects(
    fs.stat(path.join(root, 'proc/sys/net/bridge')),
    { code: 'ENOENT' },
    'nothing created',
  );
  await assert.rejects(writer.writeSysctl('kernel/../../../etc/shadow', '1'), /not a sysctl key/);

  const outside = path.join(await tempDir(t), 'value');
  await fs.writeFile(outside, '0\n');
  await fs.symlink(path.dirname(outside), path.join(root, 'proc/sys/vm'));
  await assert.rejects(writer.writeSysctl(`vm.value`, '1'), /symbolic link/);
  await fs.symlink(outside, path.join(root, 'proc/sys/net/ipv4/tcp_syncookies'));
  await assert.rejects(writer.writeSysctl('net.ipv4.tcp_syncookies', '1'), /symbolic link/);
  assert.equal(await fs.readFile(outside, 'utf8'), '0\n', 'the file outside the root is untouched');
});

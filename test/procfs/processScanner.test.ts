// What one /proc pass gives every process, and how long what it keeps from the last pass may be
// out of date: at most one revalidation cycle (16 scans) for an ordinary process, none for a
// process in a reused PID or one a check judges.
import assert from 'node:assert/strict';
import { readlinkSync } from 'node:fs';
import { readFile, readdir, rm } from 'node:fs/promises';
import { test } from 'node:test';
import { HostRoot } from '../../agent/host/hostRoot.ts';
import { ProcessScanner } from '../../agent/procfs/processScanner.ts';
import type { ProcessInfo, ProcessScan } from '../../agent/procfs/processScanner.ts';
import { eventually, tempDir } from '../helpers.ts';
import { writeProcTree } from './procTree.ts';
import type { FixtureProcess } from './procTree.ts';
import { Cleanup, buildPrograms, startIn } from './realProcesses.ts';

const POD_A = '1a2b3c4d-0000-4000-8000-00000000000a';
const POD_B = '1a2b3c4d-0000-4000-8000-00000000000b';
const cgroupOf = (uid: string, container: string) =>
  `0::/kubepods/besteffort/pod${uid}/${container.repeat(64 / container.length)}\n`;
const REVALIDATION_CYCLE = 16;

async function host(t: Parameters<typeof tempDir>[0]) {
  const root = await tempDir(t);
  const scanner = new ProcessScanner(new HostRoot(root));
  const scan = () => scanner.scan({ infraCommands: new Set(['pause']) });
  const write = async (processes: FixtureProcess[]) => {
    await rm(`${root}/proc`, { recursive: true, force: true });
    await writeProcTree(root, { processes });
  };
  /** Scans until `seen` holds; how many scans that took (fails after a whole cycle and one). */
  const scansUntil = async (seen: (scan: ProcessScan) => boolean) => {
    for (let n = 1; n <= REVALIDATION_CYCLE + 1; n++) if (seen(await scan())) return n;
    assert.fail(`not seen within ${REVALIDATION_CYCLE + 1} scans`);
  };
  return { scan, write, scansUntil };
}

test('every process comes with its status, cgroup and PID namespace, not only those a check names', async (t) => {
  const { scan, write } = await host(t);
  await write([
    { pid: 1, ppid: 0, comm: 'systemd' },
    { pid: 2, ppid: 1, comm: 'sshd', cgroup: '0::/system.slice/ssh.service\n' },
    {
      pid: 50,
      ppid: 1,
      comm: 'nginx',
      uid: 101,
      nspid: [50, 7],
      pidNs: 4026532999,
      cgroup: cgroupOf(POD_A, 'ab'),
    },
  ]);
  const result = await scan();
  const nginx = result.byPid.get(50);
  assert.equal(nginx?.cgroup?.podUid, POD_A);
  assert.equal(nginx.cgroup.containerId, 'ab'.repeat(32));
  assert.deepEqual(nginx.status?.uids, [101, 101, 101, 101]);
  assert.deepEqual(nginx.status.nspid, [50, 7]);
  assert.equal(nginx.pidNs, 4026532999);
  // outside any pod: no pod identity, but its status and namespace all the same
  assert.equal(result.byPid.get(2)?.cgroup, null);
  assert.deepEqual(result.byPid.get(2)?.status?.nspid, [2]);
  assert.equal(result.byPid.get(1)?.pidNs, 4026531836);
});

test('kept from the last scan: a changed cgroup or status is seen within one cycle, a reused PID at once', async (t) => {
  const { scan, write, scansUntil } = await host(t);
  const nginx: FixtureProcess = { pid: 50, ppid: 1, comm: 'nginx', cgroup: cgroupOf(POD_A, 'ab') };
  const init: FixtureProcess = { pid: 1, ppid: 0, comm: 'systemd' };
  await write([init, nginx]);
  await scan();
  // moved to another pod's cgroup, and installs a SIGCHLD handler: the same process
  await write([init, { ...nginx, cgroup: cgroupOf(POD_B, 'cd'), sigCgt: '0000000000010000' }]);
  const scans = await scansUntil(
    (s) =>
      s.byPid.get(50)?.cgroup?.podUid === POD_B &&
      s.byPid.get(50)?.status?.sigCgt === '0000000000010000',
  );
  assert.ok(scans <= REVALIDATION_CYCLE, `${scans} scans`);
  // it exits and another process gets its PID (a later start time): read at the next scan
  await write([
    init,
    {
      pid: 50,
      ppid: 1,
      comm: 'redis-server',
      startTicks: 99_000,
      uid: 999,
      cgroup: cgroupOf(POD_A, 'ef'),
    },
  ]);
  const next = (await scan()).byPid.get(50);
  assert.equal(next?.comm, 'redis-server');
  assert.equal(next.cgroup?.containerId, 'ef'.repeat(32));
  assert.deepEqual(next.status?.uids, [999, 999, 999, 999]);
});

test('an unchanged process is the same object scan after scan, a whole cycle long; one container shares one cgroup', async (t) => {
  const { scan, write } = await host(t);
  await write([
    { pid: 1, ppid: 0, comm: 'systemd' },
    { pid: 50, ppid: 1, comm: 'nginx', cgroup: cgroupOf(POD_A, 'ab') },
    { pid: 51, ppid: 50, comm: 'nginx', cgroup: cgroupOf(POD_A, 'ab') },
  ]);
  const first = await scan();
  for (let n = 2; n <= REVALIDATION_CYCLE + 2; n++) {
    // each is read again in full once in the cycle, at a different scan: the same all the same
    const next = await scan();
    assert.equal(next.byPid.get(50), first.byPid.get(50), `scan ${n}`);
    assert.equal(next.byPid.get(51), first.byPid.get(51), `scan ${n}`);
  }
  assert.equal(first.byPid.get(50)?.cgroup, first.byPid.get(51)?.cgroup);
  assert.ok(Object.isFrozen(first.byPid.get(50)));
});

test('real kernel: an inotify instance opened on the fd number just closed is found within one cycle', async (t) => {
  const programs = await buildPrograms(t);
  if (programs === undefined) return;
  const dirs = await tempDir(t);
  const watcher = await startIn(new Cleanup(t), undefined, [programs.watcher, dirs, '9', 'later'], {
    stdin: 'pipe',
    waitFor: 'idle',
  });
  const fdDir = `/proc/${watcher.pid ?? 0}/fd`;
  // the fd it holds /dev/null on, to close and reuse (the highest: stdio may be /dev/null too)
  const placeholder = Math.max(
    ...(await readdir(fdDir))
      .filter((fd) => readlinkSync(`${fdDir}/${fd}`) === '/dev/null')
      .map(Number),
  );
  const scanner = new ProcessScanner(new HostRoot('/'));
  const scan = async () =>
    (await scanner.scan({ infraCommands: new Set() })).byPid.get(watcher.pid ?? 0);
  const before = await scan();
  assert.deepEqual(before?.inotify, []);
  const fds = before.fds;
  watcher.stdin?.write('go\n');
  // the kernel's word that the instance took that fd number and holds its 9 watches
  await eventually(
    async () => {
      const info = await readFile(`/proc/${watcher.pid ?? 0}/fdinfo/${placeholder}`, 'utf8');
      return info.match(/^inotify wd:/gm)?.length === 9 ? true : undefined;
    },
    10_000,
    'the instance on the closed fd number',
  );
  let scans = 0;
  let seen: ProcessInfo | undefined;
  do seen = await scan();
  while (seen?.inotify.length === 0 && ++scans <= REVALIDATION_CYCLE);
  assert.equal(seen?.fds, fds, 'the same fd count: only revalidation can find it');
  assert.deepEqual(
    seen?.inotify.map((i) => [i.fd, i.watches]),
    [[placeholder, 9]],
    `not found within ${REVALIDATION_CYCLE} scans`,
  );
});

test('a process a check judges (here an inotify holder) is judged on the status of this scan', async (t) => {
  const { scan, write } = await host(t);
  const init: FixtureProcess = { pid: 1, ppid: 0, comm: 'systemd' };
  const holder: FixtureProcess = { pid: 70, ppid: 1, comm: 'watcher', uid: 1000, inotify: [5] };
  await write([init, holder]);
  await scan();
  await write([init, { ...holder, uid: 0, inotify: [6] }]);
  const now = (await scan()).byPid.get(70);
  assert.deepEqual(now?.status?.uids, [0, 0, 0, 0]);
  assert.equal(now.inotify[0]?.watches, 6);
});

test("a zombie's parent is judged on the status of this scan, wherever it comes in /proc", async (t) => {
  const { scan, write } = await host(t);
  const init: FixtureProcess = { pid: 1, ppid: 0, comm: 'systemd' };
  const parent: FixtureProcess = { pid: 80, ppid: 1, comm: 'worker' };
  await write([init, parent]);
  await scan();
  // it now catches SIGCHLD, and has a child it has not reaped yet: a zombie
  await write([
    init,
    { ...parent, sigCgt: '0000000000010000' },
    { pid: 79, ppid: 80, comm: 'job', state: 'Z' },
  ]);
  const now = await scan();
  assert.equal(now.byPid.get(80)?.status?.sigCgt, '0000000000010000');
  assert.equal(
    now.processes.find((p) => p.pid === 80),
    now.byPid.get(80),
  );
  assert.deepEqual(
    now.zombiesByParent.get(80)?.map((z) => z.pid),
    [79],
  );
});

// Fixture /proc trees: the files of /proc/<pid>/ the process scan reads (stat, status, cgroup,
// fd/ links, fdinfo/, ns/pid), written the way the kernel writes them, so the scan and the
// checks can be run on a host root with pods of every cgroup form, zombies and inotify hogs.
import { promises as fs } from 'node:fs';
import path from 'node:path';

export interface FixtureProcess {
  pid: number;
  ppid: number;
  comm: string;
  state?: string;
  uid?: number;
  /** NSpid: [pid] (host namespace) or [pid, ..., own]. */
  nspid?: number[];
  sigCgt?: string;
  sigIgn?: string;
  /** The /proc/<pid>/cgroup text. */
  cgroup?: string;
  /** Watches of each inotify instance it holds (one fd each). */
  inotify?: number[];
  /** fdinfo of instance i is made from (inotifySeed ?? pid, i): a child given its parent's pid holds the same (inherited) instances. */
  inotifySeed?: number;
  /** Other open fds (links to /dev/null). */
  otherFds?: number;
  threads?: number;
  startTicks?: number;
  pidNs?: number;
  /** argv, written NUL-separated to /proc/<pid>/cmdline (default: none, as a kernel thread). */
  cmdline?: string[];
}

export interface FixtureHost {
  processes: FixtureProcess[];
  maxUserWatches?: number;
  maxUserInstances?: number;
  pidMax?: number;
  bootTime?: number;
  /** Extra files under the root: host path -> content (pids.max of pod cgroups, ...). */
  files?: Record<string, string>;
}

function stat(p: FixtureProcess): string {
  const state = p.state ?? 'S';
  const fields = [
    state,
    p.ppid,
    p.pid,
    p.pid,
    0,
    -1,
    4194560,
    100,
    0,
    0,
    0,
    5,
    3,
    0,
    0,
    20,
    0,
    p.threads ?? 1,
    0,
    p.startTicks ?? 1000,
    1_000_000,
    200,
  ];
  return `${p.pid} (${p.comm}) ${fields.join(' ')} 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n`;
}

function status(p: FixtureProcess): string {
  const uid = p.uid ?? 0;
  const nspid = (p.nspid ?? [p.pid]).join('\t');
  return [
    `Name:\t${p.comm}`,
    'Umask:\t0022',
    `State:\t${p.state ?? 'S'} (${p.state === 'Z' ? 'zombie' : 'sleeping'})`,
    `Tgid:\t${p.pid}`,
    `Pid:\t${p.pid}`,
    `PPid:\t${p.ppid}`,
    `Uid:\t${uid}\t${uid}\t${uid}\t${uid}`,
    `Gid:\t${uid}\t${uid}\t${uid}\t${uid}`,
    `NStgid:\t${nspid}`,
    `NSpid:\t${nspid}`,
    `Threads:\t${p.threads ?? 1}`,
    'SigPnd:\t0000000000000000',
    'ShdPnd:\t0000000000000000',
    'SigBlk:\t0000000000000000',
    `SigIgn:\t${p.sigIgn ?? '0000000000000000'}`,
    `SigCgt:\t${p.sigCgt ?? '0000000000000000'}`,
    '',
  ].join('\n');
}

function fdinfo(watches: number, seed: number): string {
  const lines = ['pos:\t0', 'flags:\t02000000', 'mnt_id:\t15', 'ino:\t1057'];
  for (let wd = 1; wd <= watches; wd++) {
    const ino = (seed * 1000 + wd).toString(16);
    lines.push(
      `inotify wd:${wd} ino:${ino} sdev:800001 mask:fc6 ignored_mask:0 fhandle-bytes:8 fhandle-type:1 f_handle:${ino.padStart(8, '0')}00000000`,
    );
  }
  return lines.join('\n') + '\n';
}

export async function writeProcTree(root: string, host: FixtureHost): Promise<void> {
  const proc = path.join(root, 'proc');
  await fs.mkdir(path.join(proc, 'sys', 'fs', 'inotify'), { recursive: true });
  await fs.mkdir(path.join(proc, 'sys', 'kernel'), { recursive: true });
  await fs.writeFile(
    path.join(proc, 'stat'),
    `cpu  1 0 1 100 0 0 0 0 0 0\nbtime ${host.bootTime ?? 1_763_800_000}\nprocesses 5000\n`,
  );
  await fs.writeFile(
    path.join(proc, 'sys/fs/inotify/max_user_watches'),
    `${host.maxUserWatches ?? 8192}\n`,
  );
  await fs.writeFile(
    path.join(proc, 'sys/fs/inotify/max_user_instances'),
    `${host.maxUserInstances ?? 128}\n`,
  );
  await fs.writeFile(path.join(proc, 'sys/kernel/pid_max'), `${host.pidMax ?? 32768}\n`);
  for (const p of host.processes) {
    const dir = path.join(proc, String(p.pid));
    await fs.mkdir(path.join(dir, 'fd'), { recursive: true });
    await fs.mkdir(path.join(dir, 'fdinfo'), { recursive: true });
    await fs.mkdir(path.join(dir, 'ns'), { recursive: true });
    await fs.writeFile(path.join(dir, 'stat'), stat(p));
    await fs.writeFile(path.join(dir, 'status'), status(p));
    await fs.writeFile(path.join(dir, 'cgroup'), p.cgroup ?? '0::/init.scope\n');
    await fs.writeFile(path.join(dir, 'comm'), `${p.comm}\n`);
    await fs.writeFile(
      path.join(dir, 'cmdline'),
      p.cmdline === undefined ? '' : `${p.cmdline.join('\0')}\0`,
    );
    await fs.symlink(`pid:[${p.pidNs ?? 4026531836}]`, path.join(dir, 'ns', 'pid'));
    if (p.state === 'Z') continue; // a zombie's fd directory is empty
    let fd = 0;
    for (let i = 0; i < (p.otherFds ?? 3); i++)
      await fs.symlink('/dev/null', path.join(dir, 'fd', String(fd++)));
    for (const [i, watches] of (p.inotify ?? []).entries()) {
      await fs.symlink('anon_inode:inotify', path.join(dir, 'fd', String(fd)));
      await fs.writeFile(
        path.join(dir, 'fdinfo', String(fd)),
        fdinfo(watches, (p.inotifySeed ?? p.pid) * 10 + i),
      );
      fd++;
    }
  }
  for (const [file, content] of Object.entries(host.files ?? {})) {
    const target = path.join(root, file);
    await fs.mkdir(path.dirname(target), { recursive: true });
    await fs.writeFile(target, content);
  }
}

/** SigCgt of the upstream pause: SIGINT, SIGTERM, SIGCHLD. */
export const PAUSE_SIGCGT = '0000000000014002';

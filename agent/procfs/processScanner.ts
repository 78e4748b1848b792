// One pass over /proc that the pause, zombies and inotify checks all read from: every process's
// stat (state, parent, name, threads, start time) and file descriptors (inotify instances and
// their watches); and for the processes a check names (zombies and their parents, inotify
// holders, pod infra processes such as pause) its status (UIDs, NSpid, signal masks), cgroup
// (-> pod and container) and PID namespace. Each file is read at most once per scan.
//
// Cost decides the shape (bench/procScan.bench.ts: 5,000 processes holding 50,000 fds):
// - Files are read synchronously in slices of at most SLICE_MS, with a yield to the event loop
//   between slices: /proc is in memory, and one async round trip per file would cost more CPU
//   than the kernel's own work.
// - Telling an inotify fd from any other takes one readlink per fd, the most expensive part of
//   the scan for the kernel (a C loop doing only those readlinks takes about 0.2 s of CPU here).
//   So a process's fds are classified once and the result kept while the process (pid and start
//   time) and its fd count (stat of /proc/<pid>/fd, Linux 6.2+) stay the same; each scan still
//   re-classifies every REVALIDATE_EVERY-th (16th) process, so an inotify instance opened on a
//   just-closed fd number (same count) is seen within that many scans. Known inotify fds are
//   checked and their fdinfo re-read every scan.
// - status costs the kernel as much as stat and nothing needs it for the other processes.
import fs from 'node:fs';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { HostRoot } from '../host/hostRoot.ts';
import { parseCgroup } from '../parsers/cgroupPath.ts';
import type { CgroupIdentity } from '../parsers/cgroupPath.ts';
import { PF_KTHREAD, parseBootTimeMs, parseProcStat } from '../parsers/procStat.ts';
import { parseProcStatus } from '../parsers/procStatus.ts';
import type { ProcStatus } from '../parsers/procStatus.ts';
import { ProcReader, isDenied } from './procReader.ts';

/** Longest stretch of synchronous reads before the event loop gets a turn. */
const SLICE_MS = 8;
const REVALIDATE_EVERY = 16;
/** USER_HZ: the unit of stat's start time on every Linux architecture Kubernetes runs on. */
const CLOCK_TICKS_PER_SECOND = 100;
const INOTIFY_LINK = 'anon_inode:inotify';
/** Shared by the processes that hold none (nearly all): one array less per process per scan. */
const NO_INSTANCES: readonly InotifyInstance[] = Object.freeze([]);
const NO_FDS: readonly number[] = Object.freeze([]);

export interface InotifyInstance {
  fd: number;
  watches: number;
  /** Hash of the fdinfo text: equal in a parent and child that share one inherited instance. */
  fingerprint: number;
}

export interface ProcessInfo {
  pid: number;
  ppid: number;
  comm: string;
  /** stat's state letter: "Z" is a zombie. */
  state: string;
  startTicks: number;
  threads: number;
  kernelThread: boolean;
  /**
   * From /proc/<pid>/status (UIDs, NSpid, SigCgt, SigIgn), read for the processes a check names
   * (see the file comment); null when it could not be read.
   */
  status?: ProcStatus | null;
  /** Read for the processes a check names (see the file comment). */
  cgroup?: CgroupIdentity | null;
  /** Inode number of its PID namespace (ns/pid), read with cgroup. */
  pidNs?: number;
  /** Open fds, when they could be counted. */
  fds?: number;
  inotify: readonly InotifyInstance[];
}

export interface ProcessScan {
  /** Epoch ms when the scan started. */
  at: number;
  durationMs: number;
  /** CPU time of the agent process during the scan (includes other work running meanwhile). */
  cpuMs: number;
  /** false when <host-root>/proc has no processes to read (not a Linux /proc). */
  available: boolean;
  processes: ProcessInfo[];
  byPid: Map<number, ProcessInfo>;
  /** Threads of every process: PIDs in use. */
  tasks: number;
  /** Epoch ms of boot (/proc/stat btime), to turn start times into dates. */
  bootTimeMs?: number;
  /** Processes whose fds could not be read: inotify counts are lower bounds when > 0. */
  fdsDenied: number;
  /** Zombie processes by the pid of their parent. */
  zombiesByParent: Map<number, ProcessInfo[]>;
  /** Processes re-classified fd by fd in this scan (the rest reused their classification). */
  classified: number;
}

interface FdCacheEntry {
  startTicks: number;
  fds: number;
  inotifyFds: readonly number[];
}

/** PID 1 of a PID namespace other than the scan's own (needs status). */
export function isNamespaceInit(p: ProcessInfo): boolean {
  const nspid = p.status?.nspid ?? [];
  return nspid.length > 1 && nspid[nspid.length - 1] === 1;
}

/** Epoch ms a process started, when the boot time is known. */
export function startedAtMs(scan: ProcessScan, p: ProcessInfo): number | undefined {
  return scan.bootTimeMs === undefined
    ? undefined
    : scan.bootTimeMs + (p.startTicks * 1000) / CLOCK_TICKS_PER_SECOND;
}

export interface ScanOptions {
  signal?: AbortSignal;
  /** comm names of pod infra processes, whose cgroup is always read. */
  infraCommands: ReadonlySet<string>;
}

class Slicer {
  private started = performance.now();
  private readonly signal: AbortSignal | undefined;

  constructor(signal: AbortSignal | undefined) {
    this.signal = signal;
  }

  get due(): boolean {
    return performance.now() - this.started > SLICE_MS;
  }

  async yield(): Promise<void> {
    await nextTurn();
    this.signal?.throwIfAborted();
    this.started = performance.now();
  }
}

export class ProcessScanner {
  private readonly proc: string;
  private readonly reader = new ProcReader();
  private bootTimeMs: number | undefined;
  private fdCache = new Map<number, FdCacheEntry>();
  private scans = 0;
  /** stat of /proc/<pid>/fd gives the fd count (Linux 6.2+); false once seen not to. */
  private fdCountFromStat = true;

  constructor(host: HostRoot) {
    this.proc = host.local('/proc');
  }

  async scan(options: ScanOptions): Promise<ProcessScan> {
    const at = Date.now();
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const slicer = new Slicer(options.signal);
    const infra = options.infraCommands;
    const scanNumber = this.scans++;
    let names: string[];
    try {
      names = fs.readdirSync(this.proc);
    } catch {
      names = [];
    }
    const processes: ProcessInfo[] = [];
    const byPid = new Map<number, ProcessInfo>();
    const nextCache = new Map<number, FdCacheEntry>();
    let tasks = 0;
    let fdsDenied = 0;
    let classified = 0;
    for (const name of names) {
      const first = name.charCodeAt(0);
      if (first < 48 || first > 57) continue;
      if (slicer.due) await slicer.yield();
      const pid = Number(name);
      const dir = `${this.proc}/${name}`;
      const statText = this.reader.text(`${dir}/stat`);
      const stat = statText === undefined ? undefined : parseProcStat(statText);
      if (stat === undefined) continue;
      const info: ProcessInfo = {
        pid,
        ppid: stat.ppid,
        comm: stat.comm,
        state: stat.state,
        startTicks: stat.startTicks,
        threads: stat.threads,
        kernelThread: (stat.flags & PF_KTHREAD) !== 0,
        inotify: NO_INSTANCES,
      };
      tasks += info.threads;
      if (!info.kernelThread && info.state !== 'Z') {
        const result = await this.readFds(dir, info, scanNumber, slicer);
        if (result === 'denied') {
          fdsDenied++;
        } else if (result !== undefined) {
          nextCache.set(pid, result.entry);
          if (result.classified) classified++;
        }
      }
      if (info.state === 'Z' || info.inotify.length > 0 || infra.has(info.comm))
        this.readDetails(dir, info);
      processes.push(info);
      byPid.set(pid, info);
    }
    // Zombies by parent; the parents are named with their pod too (most come before their
    // children, so their details are read here).
    const zombiesByParent = new Map<number, ProcessInfo[]>();
    for (const p of processes) {
      if (p.state !== 'Z') continue;
      const siblings = zombiesByParent.get(p.ppid);
      if (siblings === undefined) zombiesByParent.set(p.ppid, [p]);
      else siblings.push(p);
      const parent = byPid.get(p.ppid);
      if (parent !== undefined && parent.status === undefined)
        this.readDetails(`${this.proc}/${parent.pid}`, parent);
    }
    this.fdCache = nextCache;
    const cpu = process.cpuUsage(cpu0);
    return {
      at,
      durationMs: performance.now() - t0,
      cpuMs: (cpu.user + cpu.system) / 1000,
      available: processes.length > 0,
      processes,
      byPid,
      tasks,
      ...this.bootTime(),
      fdsDenied,
      zombiesByParent,
      classified,
    };
  }

  /** Boot time: fixed until the next boot, so read once. */
  private bootTime(): { bootTimeMs?: number } {
    this.bootTimeMs ??= parseBootTimeMs(this.reader.text(`${this.proc}/stat`) ?? '');
    return this.bootTimeMs === undefined ? {} : { bootTimeMs: this.bootTimeMs };
  }

  /** status, cgroup and PID namespace, for a process a check names. */
  private readDetails(dir: string, info: ProcessInfo): void {
    const statusText = this.reader.text(`${dir}/status`);
    info.status = (statusText === undefined ? undefined : parseProcStatus(statusText)) ?? null;
    const text = this.reader.text(`${dir}/cgroup`);
    info.cgroup = text === undefined ? null : (parseCgroup(text) ?? null);
    const ns = this.reader.link(`${dir}/ns/pid`);
    const inode = ns === undefined ? null : /^pid:\[(\d+)\]$/.exec(ns);
    if (inode !== null) info.pidNs = Number(inode[1]);
  }

  /** The process's inotify instances; its fd classification for the cache. */
  private async readFds(
    dir: string,
    info: ProcessInfo,
    scanNumber: number,
    slicer: Slicer,
  ): Promise<{ entry: FdCacheEntry; classified: boolean } | 'denied' | undefined> {
    const fdDir = `${dir}/fd`;
    let count: number | undefined;
    if (this.fdCountFromStat) {
      const stat = fs.statSync(fdDir, { throwIfNoEntry: false });
      if (stat === undefined) return undefined;
      count = stat.size;
    }
    const cached = this.fdCache.get(info.pid);
    const reuse =
      count !== undefined &&
      cached !== undefined &&
      cached.startTicks === info.startTicks &&
      cached.fds === count &&
      (info.pid + scanNumber) % REVALIDATE_EVERY !== 0;
    let inotifyFds: readonly number[];
    if (reuse) {
      inotifyFds = cached.inotifyFds;
      // Known inotify fds are checked every scan: still open, still inotify.
      for (const fd of cached.inotifyFds) {
        if (this.reader.link(`${fdDir}/${fd}`) !== INOTIFY_LINK) {
          inotifyFds = cached.inotifyFds.filter(
            (known) => this.reader.link(`${fdDir}/${known}`) === INOTIFY_LINK,
          );
          break;
        }
      }
    } else {
      let entries: string[];
      try {
        entries = fs.readdirSync(fdDir);
      } catch (error) {
        return isDenied(error) ? 'denied' : undefined;
      }
      if (count === 0 && entries.length > 0) this.fdCountFromStat = false;
      count = entries.length;
      let found: number[] | undefined;
      for (let i = 0; i < entries.length; i++) {
        if ((i & 255) === 255 && slicer.due) await slicer.yield();
        const name = entries[i] as string;
        if (this.reader.link(`${fdDir}/${name}`) === INOTIFY_LINK)
          (found ??= []).push(Number(name));
      }
      inotifyFds = found ?? NO_FDS;
    }
    const fds = count ?? 0;
    info.fds = fds;
    if (inotifyFds.length > 0) {
      const instances: InotifyInstance[] = [];
      for (const fd of inotifyFds) {
        const read = this.reader.inotifyWatches(`${dir}/fdinfo/${fd}`);
        if (read !== undefined) instances.push({ fd, ...read });
      }
      info.inotify = instances;
    }
    // Unchanged: keep the entry (no new object per process per scan).
    const entry =
      reuse && inotifyFds === cached.inotifyFds
        ? cached
        : { startTicks: info.startTicks, fds, inotifyFds };
    return { entry, classified: !reuse };
  }
}

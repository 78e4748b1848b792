// One pass over /proc that the pause, zombies and inotify checks all read from: every process's
// stat (state, parent, name, threads, start time), file descriptors (inotify instances and their
// watches), status (UIDs, NSpid, signal masks), cgroup (-> pod and container) and PID namespace.
// Each file is read at most once per scan.
//
// Cost decides the shape (bench/procScan.bench.ts: 5,000 processes holding 50,000 fds):
// - Files are read synchronously in slices of at most SLICE_MS, with a yield to the event loop
//   between slices: /proc is in memory, and one async round trip per file would cost more CPU
//   than the kernel's own work.
// - What a scan learns about a process is remembered while the process lives (pid and start
//   time), and each scan re-reads one process in REVALIDATE_EVERY (16) in full, staggered by
//   pid, so every process is re-read at least once every 16 scans:
//   - Telling an inotify fd from any other takes one readlink per fd, the most expensive part
//     of the scan for the kernel. A process's fds are classified again only when its fd count
//     (stat of /proc/<pid>/fd, Linux 6.2+) changes, so an inotify instance opened on a
//     just-closed fd number (same count) is seen within 16 scans. Known inotify fds are checked
//     and their fdinfo re-read every scan.
//   - status costs the kernel about as much as stat. It and cgroup are read again within 16
//     scans (handlers installed, UIDs changed, a process moved to another cgroup), and every
//     scan for the processes a check judges on them: zombies and their parents, inotify
//     holders, pod infra processes such as pause. ns/pid cannot change in a process's life.
// - A process whose every field is unchanged is handed out as the same (frozen) ProcessInfo as
//   in the last scan, and the processes of one container share one parsed cgroup for as long
//   as one of them lives: a steady scan allocates little that outlives it, which keeps the
//   agent's RSS flat.
import fs from 'node:fs';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { ProcUnavailableError, procDirProblem } from '../host/hostRoot.ts';
import type { HostRoot } from '../host/hostRoot.ts';
import { parseCgroup } from '../parsers/cgroupPath.ts';
import type { CgroupIdentity } from '../parsers/cgroupPath.ts';
import { PF_KTHREAD, parseBootTimeMs, parseProcStat } from '../parsers/procStat.ts';
import { parseProcStatus } from '../parsers/procStatus.ts';
import type { ProcStatus } from '../parsers/procStatus.ts';
import { ProcReader, isDenied } from './procReader.ts';

/**
 * Longest stretch of synchronous reads before the event loop gets a turn. A major collection
 * can land inside a slice (a memory-reducing mark-compact pauses 7-16 ms here), so the slice
 * leaves it room under the 20 ms block budget: with 8 ms, one bench run in four went over.
 */
const SLICE_MS = 4;
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
  readonly pid: number;
  readonly ppid: number;
  readonly comm: string;
  /** stat's state letter: "Z" is a zombie. */
  readonly state: string;
  readonly startTicks: number;
  readonly threads: number;
  readonly kernelThread: boolean;
  /**
   * From /proc/<pid>/status (UIDs, NSpid, SigCgt, SigIgn); null when it could not be read. At
   * most REVALIDATE_EVERY scans old, and of this scan for the processes a check judges.
   */
  readonly status: ProcStatus | null;
  /**
   * Pod and container read from /proc/<pid>/cgroup, as old as status; null when the path names
   * neither (a host process) or could not be read.
   */
  readonly cgroup: CgroupIdentity | null;
  /** Inode number of its PID namespace (ns/pid), when it could be read. */
  readonly pidNs?: number;
  /** Open fds, when they could be counted. */
  readonly fds?: number;
  readonly inotify: readonly InotifyInstance[];
}

export interface ProcessScan {
  /** Epoch ms when the scan started. */
  at: number;
  durationMs: number;
  /** CPU time of the agent process during the scan (includes other work running meanwhile). */
  cpuMs: number;
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
  /** comm names of pod infra processes this scan judged as such (read every scan). */
  infraCommands: ReadonlySet<string>;
}

type Writable<T> = { -readonly [K in keyof T]: T[K] };

/** A cgroup file's text and what it says, shared by the processes that have that text. */
interface ParsedCgroup {
  text: string;
  identity: CgroupIdentity | null;
}

/** What the scans know of one process (pid and start time) between them. */
interface Remembered {
  startTicks: number;
  /** The last scan that saw it: the others are forgotten once a scan ends. */
  seenIn: number;
  /** Its fds as last classified; undefined when they could not be (gone, denied). */
  fds: number | undefined;
  inotifyFds: readonly number[];
  /** The scan that last read status and cgroup. */
  detailsReadIn: number;
  status: ProcStatus | null;
  /** Its cgroup file as last read, parsed; undefined when it could not be read. */
  cgroup: ParsedCgroup | undefined;
  pidNs: number | undefined;
  /** What the last scan handed out, to hand out again while nothing in it changed. */
  info: ProcessInfo | undefined;
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
  /** comm names of pod infra processes, whose status and cgroup are read every scan. */
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

function sameNumbers(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sameStatus(a: ProcStatus | null, b: ProcStatus | null): boolean {
  if (a === b) return true;
  if (a === null || b === null) return false;
  return (
    a.sigCgt === b.sigCgt &&
    a.sigIgn === b.sigIgn &&
    sameNumbers(a.uids, b.uids) &&
    sameNumbers(a.nspid, b.nspid)
  );
}

function sameInstances(a: readonly InotifyInstance[], b: readonly InotifyInstance[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as InotifyInstance;
    const y = b[i] as InotifyInstance;
    if (x.fd !== y.fd || x.watches !== y.watches || x.fingerprint !== y.fingerprint) return false;
  }
  return true;
}

function sameProcess(a: ProcessInfo, b: ProcessInfo): boolean {
  return (
    a.ppid === b.ppid &&
    a.comm === b.comm &&
    a.state === b.state &&
    a.threads === b.threads &&
    a.kernelThread === b.kernelThread &&
    a.status === b.status &&
    a.cgroup === b.cgroup &&
    a.pidNs === b.pidNs &&
    a.fds === b.fds &&
    sameInstances(a.inotify, b.inotify)
  );
}

export class ProcessScanner {
  private readonly host: HostRoot;
  private readonly proc: string;
  private readonly reader = new ProcReader();
  private bootTimeMs: number | undefined;
  /** By pid; updated in place, so a steady scan makes no new map or entry per process. */
  private readonly memory = new Map<number, Remembered>();
  /** Parsed cgroup files by their text, kept while a remembered process has that text. */
  private cgroups = new Map<string, ParsedCgroup>();
  private scans = 0;
  /** stat of /proc/<pid>/fd gives the fd count (Linux 6.2+); false once seen not to. */
  private fdCountFromStat = true;

  constructor(host: HostRoot) {
    this.host = host;
    this.proc = host.local('/proc');
  }

  /**
   * Throws ProcUnavailableError when <host-root>/proc cannot be listed or holds no process: a
   * wrong --host-root or an unmounted /proc, never a host with nothing running.
   */
  async scan(options: ScanOptions): Promise<ProcessScan> {
    const at = Date.now();
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const slicer = new Slicer(options.signal);
    const infra = options.infraCommands;
    const scanNumber = ++this.scans;
    let names: string[];
    try {
      names = fs.readdirSync(this.proc);
    } catch (error) {
      throw new ProcUnavailableError(this.host, '/proc', procDirProblem(error), { cause: error });
    }
    const processes: ProcessInfo[] = [];
    const byPid = new Map<number, ProcessInfo>();
    let tasks = 0;
    let fdsDenied = 0;
    let classified = 0;
    try {
      for (const name of names) {
        const first = name.charCodeAt(0);
        if (first < 48 || first > 57) continue;
        if (slicer.due) await slicer.yield();
        const pid = Number(name);
        const dir = `${this.proc}/${name}`;
        const statText = this.reader.text(`${dir}/stat`);
        const stat = statText === undefined ? undefined : parseProcStat(statText);
        if (stat === undefined) continue;
        let mem = this.memory.get(pid);
        if (mem === undefined || mem.startTicks !== stat.startTicks) {
          mem = {
            startTicks: stat.startTicks,
            seenIn: scanNumber,
            fds: undefined,
            inotifyFds: NO_FDS,
            detailsReadIn: 0,
            status: null,
            cgroup: undefined,
            pidNs: undefined,
            info: undefined,
          };
          this.memory.set(pid, mem);
        }
        mem.seenIn = scanNumber;
        const due = (pid + scanNumber) % REVALIDATE_EVERY === 0;
        const kernelThread = (stat.flags & PF_KTHREAD) !== 0;
        let fds: number | undefined;
        let inotify = NO_INSTANCES;
        if (!kernelThread && stat.state !== 'Z') {
          const result = await this.readFds(dir, mem, due, slicer);
          if (result === 'denied') fdsDenied++;
          else if (result !== undefined) {
            if (result) classified++;
            fds = mem.fds;
            inotify = this.readInstances(dir, mem.inotifyFds);
          }
        }
        const judged = stat.state === 'Z' || inotify.length > 0 || infra.has(stat.comm);
        if (judged || due || mem.detailsReadIn === 0) this.readDetails(dir, mem, scanNumber);
        const info: Writable<ProcessInfo> = {
          pid,
          ppid: stat.ppid,
          comm: stat.comm,
          state: stat.state,
          startTicks: stat.startTicks,
          threads: stat.threads,
          kernelThread,
          status: mem.status,
          cgroup: mem.cgroup?.identity ?? null,
          inotify,
        };
        if (mem.pidNs !== undefined) info.pidNs = mem.pidNs;
        if (fds !== undefined) info.fds = fds;
        const handedOut = mem.info !== undefined && sameProcess(mem.info, info) ? mem.info : info;
        mem.info = Object.freeze(handedOut);
        tasks += handedOut.threads;
        processes.push(handedOut);
        byPid.set(pid, handedOut);
      }
    } finally {
      // Forget what is gone (or was not reached: a scan given up on), and the cgroups no process
      // remembered has any more.
      const cgroups = new Map<string, ParsedCgroup>();
      for (const [pid, mem] of this.memory) {
        if (mem.seenIn !== scanNumber) this.memory.delete(pid);
        else if (mem.cgroup !== undefined) cgroups.set(mem.cgroup.text, mem.cgroup);
      }
      this.cgroups = cgroups;
    }
    // A procfs always lists at least the process reading it (or, with hidepid, its own).
    if (processes.length === 0)
      throw new ProcUnavailableError(this.host, '/proc', 'holds no process (not a mounted procfs)');
    // Zombies by parent; the parents are judged on their signal masks, so their status is of
    // this scan too (most come before their children, so it is read here).
    const zombiesByParent = new Map<number, ProcessInfo[]>();
    /** Where each process is in `processes`: built the first time a parent must be replaced. */
    let indexByPid: Map<number, number> | undefined;
    for (const p of processes) {
      if (p.state !== 'Z') continue;
      const siblings = zombiesByParent.get(p.ppid);
      if (siblings === undefined) zombiesByParent.set(p.ppid, [p]);
      else siblings.push(p);
      const mem = this.memory.get(p.ppid);
      const parent = byPid.get(p.ppid);
      if (mem === undefined || parent === undefined || mem.detailsReadIn === scanNumber) continue;
      this.readDetails(`${this.proc}/${parent.pid}`, mem, scanNumber);
      const cgroup = mem.cgroup?.identity ?? null;
      if (mem.status === parent.status && cgroup === parent.cgroup && mem.pidNs === parent.pidNs)
        continue;
      const fresh: Writable<ProcessInfo> = { ...parent, status: mem.status, cgroup };
      if (mem.pidNs !== undefined) fresh.pidNs = mem.pidNs;
      mem.info = Object.freeze(fresh);
      byPid.set(parent.pid, mem.info);
      if (indexByPid === undefined) {
        indexByPid = new Map();
        for (let i = 0; i < processes.length; i++)
          indexByPid.set((processes[i] as ProcessInfo).pid, i);
      }
      processes[indexByPid.get(parent.pid) as number] = mem.info;
    }
    const cpu = process.cpuUsage(cpu0);
    return {
      at,
      durationMs: performance.now() - t0,
      cpuMs: (cpu.user + cpu.system) / 1000,
      processes,
      byPid,
      tasks,
      ...this.bootTime(),
      fdsDenied,
      zombiesByParent,
      classified,
      infraCommands: infra,
    };
  }

  /** Boot time: fixed until the next boot, so read once. */
  private bootTime(): { bootTimeMs?: number } {
    this.bootTimeMs ??= parseBootTimeMs(this.reader.text(`${this.proc}/stat`) ?? '');
    return this.bootTimeMs === undefined ? {} : { bootTimeMs: this.bootTimeMs };
  }

  /**
   * status and cgroup, read now; the PID namespace once in a process's life. What reads the same
   * as what is remembered keeps the remembered object (so the process can be handed out as
   * before).
   */
  private readDetails(dir: string, mem: Remembered, scanNumber: number): void {
    const statusText = this.reader.text(`${dir}/status`);
    const status = (statusText === undefined ? undefined : parseProcStatus(statusText)) ?? null;
    if (!sameStatus(status, mem.status)) mem.status = status;
    const cgroupText = this.reader.text(`${dir}/cgroup`);
    if (cgroupText === undefined) mem.cgroup = undefined;
    else if (cgroupText !== mem.cgroup?.text) mem.cgroup = this.parsedCgroup(cgroupText);
    if (mem.pidNs === undefined) {
      const ns = this.reader.link(`${dir}/ns/pid`);
      const inode = ns === undefined ? null : /^pid:\[(\d+)\]$/.exec(ns);
      if (inode !== null) mem.pidNs = Number(inode[1]);
    }
    mem.detailsReadIn = scanNumber;
  }

  /** The parsed cgroup file, shared by every process with the same text. */
  private parsedCgroup(text: string): ParsedCgroup {
    let parsed = this.cgroups.get(text);
    if (parsed === undefined) {
      const identity = parseCgroup(text);
      parsed = { text, identity: identity === undefined ? null : Object.freeze(identity) };
      this.cgroups.set(text, parsed);
    }
    return parsed;
  }

  /** The watches of each inotify fd, from its fdinfo (read every scan: watches come and go). */
  private readInstances(dir: string, inotifyFds: readonly number[]): readonly InotifyInstance[] {
    if (inotifyFds.length === 0) return NO_INSTANCES;
    const instances: InotifyInstance[] = [];
    for (const fd of inotifyFds) {
      const read = this.reader.inotifyWatches(`${dir}/fdinfo/${fd}`);
      if (read !== undefined) instances.push({ fd, ...read });
    }
    return instances;
  }

  /**
   * The process's fd count and inotify fds, into `mem`: kept from the last scan while the count
   * is the same and no revalidation is `due`, else classified fd by fd (returns true then).
   */
  private async readFds(
    dir: string,
    mem: Remembered,
    due: boolean,
    slicer: Slicer,
  ): Promise<boolean | 'denied' | undefined> {
    const fdDir = `${dir}/fd`;
    let count: number | undefined;
    if (this.fdCountFromStat) {
      const stat = fs.statSync(fdDir, { throwIfNoEntry: false });
      if (stat === undefined) {
        mem.fds = undefined;
        return undefined;
      }
      count = stat.size;
    }
    if (count !== undefined && mem.fds === count && !due) {
      // Known inotify fds are checked every scan: still open, still inotify.
      for (const fd of mem.inotifyFds) {
        if (this.reader.link(`${fdDir}/${fd}`) !== INOTIFY_LINK) {
          mem.inotifyFds = mem.inotifyFds.filter(
            (known) => this.reader.link(`${fdDir}/${known}`) === INOTIFY_LINK,
          );
          break;
        }
      }
      return false;
    }
    let entries: string[];
    try {
      entries = fs.readdirSync(fdDir);
    } catch (error) {
      mem.fds = undefined;
      return isDenied(error) ? 'denied' : undefined;
    }
    if (count === 0 && entries.length > 0) this.fdCountFromStat = false;
    let found: number[] | undefined;
    for (let i = 0; i < entries.length; i++) {
      if ((i & 255) === 255 && slicer.due) await slicer.yield();
      const name = entries[i] as string;
      if (this.reader.link(`${fdDir}/${name}`) === INOTIFY_LINK) (found ??= []).push(Number(name));
    }
    mem.fds = entries.length;
    const inotifyFds = found ?? NO_FDS;
    if (!sameNumbers(inotifyFds, mem.inotifyFds)) mem.inotifyFds = inotifyFds;
    return true;
  }
}

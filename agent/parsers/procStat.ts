// /proc/<pid>/stat (proc(5)): "pid (comm) state ppid pgrp session tty_nr tpgid flags ...".
// comm is whatever the process named itself, spaces and ")" included, so the fields are read
// after the LAST ")" (field 3 onwards), never by splitting the whole line.

export interface ProcStat {
  comm: string;
  /** One letter: R S D Z T t X I ... ("Z" is a zombie). */
  state: string;
  ppid: number;
  /** PF_* flags (field 9). */
  flags: number;
  /** Threads in the thread group (field 20): each uses a PID from kernel.pid_max. */
  threads: number;
  /** Start time after boot in clock ticks (field 22). */
  startTicks: number;
}

/** PF_KTHREAD (include/linux/sched.h): a kernel thread, which has no files of its own. */
export const PF_KTHREAD = 0x00200000;

/**
 * Fields 3..22 after ") ": state, ppid (4), pgrp, session, tty_nr, tpgid, flags (9), ten
 * counters and times, num_threads (20), itrealvalue, starttime (22). One regular expression
 * (compiled to native code by V8 whatever its JavaScript tiers) instead of a loop per byte:
 * the scan parses this for every process, and the agent runs without the optimizing JIT.
 */
const FIELDS = /^(\S) (\d+) \S+ \S+ \S+ \S+ (\d+) (?:\S+ ){10}(\d+) \S+ (\d+)/;

/** undefined when the text is not a stat line. */
export function parseProcStat(text: string): ProcStat | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const match = FIELDS.exec(text.slice(close + 2));
  if (match === null) return undefined;
  return {
    comm: text.slice(open + 1, close),
    state: match[1] as string,
    ppid: Number(match[2]),
    flags: Number(match[3]),
    threads: Math.max(1, Number(match[4])),
    startTicks: Number(match[5]),
  };
}

/** Boot time from /proc/stat (the system-wide file): its btime line, in ms; undefined without one. */
export function parseBootTimeMs(procStat: string): number | undefined {
  const btime = /^btime (\d+)$/m.exec(procStat)?.[1];
  return btime === undefined ? undefined : Number(btime) * 1000;
}

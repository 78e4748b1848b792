// /proc/<pid>/stat (proc(5)): "pid (comm) state ppid pgrp session tty_nr tpgid flags ...".
// comm is whatever the process named itself, spaces and ")" included, so the fields are read
// after the LAST ")" (field 3 onwards), never by splitting the whole line. Parsed from the bytes
// as read: the scan reads this file for every process, and a string per field adds up.

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

const SPACE = 0x20;
const CLOSE = 0x29;

/** undefined when the bytes are not a stat line. */
export function parseProcStat(bytes: Uint8Array, length = bytes.length): ProcStat | undefined {
  const view = bytes.subarray(0, length);
  const open = view.indexOf(0x28);
  const close = view.lastIndexOf(CLOSE);
  if (open < 0 || close < open || close + 4 > length || view[close + 1] !== SPACE) return undefined;
  const state = String.fromCharCode(view[close + 2] as number);
  // Field N (N >= 4) starts after the (N - 3)th space following ")": jump from space to space
  // (indexOf is native) and parse only the numbers wanted.
  let ppid = -1;
  let flags = 0;
  let threads = 1;
  let startTicks = -1;
  let at = close + 3;
  for (let field = 4; field <= 22; field++) {
    const start = at + 1;
    let end = view.indexOf(SPACE, start);
    if (end < 0) end = length;
    if (field === 4) ppid = digits(view, start, end);
    else if (field === 9) flags = digits(view, start, end);
    else if (field === 20) threads = Math.max(1, digits(view, start, end));
    else if (field === 22) startTicks = digits(view, start, end);
    at = end;
  }
  if (ppid < 0 || startTicks < 0) return undefined;
  return {
    comm: Buffer.from(view.buffer, view.byteOffset + open + 1, close - open - 1).toString('utf8'),
    state,
    ppid,
    flags,
    threads,
    startTicks,
  };
}

/** The unsigned decimal number in bytes [start, end), or -1. */
function digits(view: Uint8Array, start: number, end: number): number {
  if (end <= start) return -1;
  let value = 0;
  for (let i = start; i < end; i++) {
    const d = (view[i] as number) - 0x30;
    if (d < 0 || d > 9) return -1;
    value = value * 10 + d;
  }
  return value;
}

// The few lines of /proc/<pid>/status (proc(5)) the process scan needs. The file is "Key:\tvalue"
// lines; values are read by key, never by line number (kernels add lines).

export interface ProcStatus {
  /** Real, effective, saved and filesystem UIDs, as seen from the reader's user namespace. */
  uids: number[];
  /** The PID in each PID namespace the process is in, the reader's first, its own last. */
  nspid: number[];
  /** Signal masks, 16 hex digits each (bit N-1 is signal N). */
  sigCgt: string;
  sigIgn: string;
}

function field(text: string, key: string): string | undefined {
  const at = text.startsWith(key) ? 0 : text.indexOf('\n' + key);
  if (at < 0) return undefined;
  const start = at === 0 ? key.length : at + 1 + key.length;
  const end = text.indexOf('\n', start);
  return text.slice(start, end < 0 ? undefined : end).trim();
}

function numbers(value: string | undefined): number[] {
  if (value === undefined || value === '') return [];
  return value.split(/\s+/).map(Number).filter(Number.isInteger);
}

/**
 * Signal masks seen, each stored once: a mask sliced out of the status text would keep the whole
 * text (about 1.4 KB) alive for as long as the process's status is kept, and a node's thousands
 * of processes share a few dozen masks. Bounded against a host that shows ever new ones.
 */
const MASKS = new Map<string, string>();
const MAX_MASKS = 4096;

function mask(value: string | undefined): string {
  if (value === undefined) return '0000000000000000';
  const known = MASKS.get(value);
  if (known !== undefined) return known;
  if (MASKS.size >= MAX_MASKS) MASKS.clear();
  // a copy of its own, not a slice of the status text
  const own = Buffer.from(value, 'latin1').toString('latin1');
  MASKS.set(own, own);
  return own;
}

/** undefined when the text has no Uid line (not a status file). */
export function parseProcStatus(text: string): ProcStatus | undefined {
  const uids = numbers(field(text, 'Uid:'));
  if (uids.length === 0) return undefined;
  // Kernels before 4.1 have no NSpid: one PID namespace as far as we can tell.
  const nspid = numbers(field(text, 'NSpid:'));
  return {
    uids,
    nspid,
    sigCgt: mask(field(text, 'SigCgt:')),
    sigIgn: mask(field(text, 'SigIgn:')),
  };
}

export const SIGNALS = { SIGINT: 2, SIGTERM: 15, SIGCHLD: 17 } as const;
export type SignalName = keyof typeof SIGNALS;

/** Whether signal number `signal` (1..64) is set in a status mask such as SigCgt. */
export function hasSignal(mask: string, signal: number): boolean {
  // 16 hex digits, most significant first: signal N is bit N-1 of the 64-bit value.
  const digit = mask.length - 1 - Math.floor((signal - 1) / 4);
  if (digit < 0) return false;
  const nibble = parseInt(mask.charAt(digit), 16);
  return Number.isInteger(nibble) && (nibble & (1 << ((signal - 1) % 4))) !== 0;
}

/** "SIGINT SIGCHLD": the signals of SIGNALS set in a mask, for evidence. */
export function signalNames(mask: string): string[] {
  return (Object.keys(SIGNALS) as SignalName[]).filter((name) => hasSignal(mask, SIGNALS[name]));
}

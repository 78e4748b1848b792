// One record read from /dev/kmsg (Documentation/ABI/testing/dev-kmsg): each read() returns one.
//
//   6,1234,5678901,-;EXT4-fs (sda1): Remounting filesystem read-only
//    SUBSYSTEM=block
//    DEVICE=b8:1
//
// "level,sequence,microseconds since boot,flags;message", then optional continuation lines that
// start with a space (KEY=value dictionary). Non-printable bytes in the message are escaped by
// the kernel as \xNN.

export interface KmsgRecord {
  /** syslog priority: facility * 8 + level. Level 0 (emerg) .. 7 (debug). */
  priority: number;
  sequence: number;
  /** Microseconds since boot (CLOCK_MONOTONIC), when the message was logged. */
  monotonicMicros: number;
  /** "c" marks a fragment a later record continues (old kernels), "-" otherwise. */
  continued: boolean;
  message: string;
}

const HEADER = /^(\d+),(\d+),(\d+),([^;,]*)[^;]*;/;

/** undefined when the text is not a kmsg record. */
export function parseKmsgRecord(text: string): KmsgRecord | undefined {
  const header = HEADER.exec(text);
  if (header === null) return undefined;
  const body = text.slice(header[0].length);
  const newline = body.indexOf('\n');
  return {
    priority: Number(header[1]),
    sequence: Number(header[2]),
    monotonicMicros: Number(header[3]),
    continued: (header[4] ?? '').includes('c'),
    message: newline < 0 ? body : body.slice(0, newline),
  };
}

// Port lists as the kernel prints and accepts them in net.ipv4.ip_local_reserved_ports:
// "30000-32767,8080" (comma separated single ports and inclusive ranges; empty means none).

export type PortRange = readonly [start: number, end: number];

/**
 * Sorted, merged ranges, or undefined when the kernel would refuse the text (EINVAL), as its
 * proc_do_large_bitmap parses it: no space inside ("30000 - 32767", "8080, 9000"), no empty
 * item but one trailing comma, numbers in C's base 0 ("010" is 8, "0x10" is 16). The space
 * around the whole value is dropped: sysctl and systemd-sysctl strip it before writing.
 */
export function parsePortRanges(text: string): PortRange[] | undefined {
  return parseList(text, (item) => {
    const m = /^([0-9A-Fa-fXx]+)(?:-([0-9A-Fa-fXx]+))?$/.exec(item);
    if (m === null) return undefined;
    const start = kernelNumber(m[1] as string);
    const end = m[2] === undefined ? start : kernelNumber(m[2]);
    return start === undefined || end === undefined ? undefined : [start, end];
  });
}

/**
 * A port list an operator wrote in the configuration (a profile's `expect: includes ...`):
 * never written to the kernel, so read as a person means it: space around items and dashes
 * ("30000 - 32767, 40000"), decimal numbers, one trailing comma. Values read from /proc/sys and
 * sysctl.d files go through parsePortRanges, the kernel's grammar.
 */
export function parseConfiguredPortRanges(text: string): PortRange[] | undefined {
  return parseList(text, (item) => {
    const m = /^\s*(\d{1,5})\s*(?:-\s*(\d{1,5})\s*)?$/.exec(item);
    if (m === null) return undefined;
    const start = Number(m[1]);
    return [start, m[2] === undefined ? start : Number(m[2])];
  });
}

/** Comma-separated items (one trailing comma allowed), each a port or range; merged. */
function parseList(
  text: string,
  readItem: (item: string) => PortRange | undefined,
): PortRange[] | undefined {
  let body = text.trim();
  if (body === '') return [];
  if (body.endsWith(',')) body = body.slice(0, -1);
  const ranges: PortRange[] = [];
  for (const item of body.split(',')) {
    const range = readItem(item);
    if (range === undefined) return undefined;
    const [start, end] = range;
    if (start > 65535 || end > 65535 || end < start) return undefined;
    ranges.push(range);
  }
  return mergePortRanges(ranges);
}

/** A number as strtoul(text, 0) reads all of it: hex after 0x, octal after 0, else decimal. */
function kernelNumber(text: string): number | undefined {
  if (/^0[xX][0-9A-Fa-f]{1,8}$/.test(text)) return parseInt(text.slice(2), 16);
  if (/^0[0-7]{0,8}$/.test(text)) return parseInt(text, 8);
  if (/^[1-9]\d{0,8}$/.test(text)) return Number(text);
  return undefined;
}

export function mergePortRanges(ranges: readonly PortRange[]): PortRange[] {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const merged: [number, number][] = [];
  for (const [start, end] of sorted) {
    const last = merged[merged.length - 1];
    if (last !== undefined && start <= last[1] + 1) last[1] = Math.max(last[1], end);
    else merged.push([start, end]);
  }
  return merged;
}

/** Does `have` reserve every port of `need`? */
export function coversPortRanges(have: readonly PortRange[], need: readonly PortRange[]): boolean {
  return need.every(([start, end]) => have.some(([s, e]) => s <= start && end <= e));
}

export function formatPortRanges(ranges: readonly PortRange[]): string {
  return ranges.map(([s, e]) => (s === e ? String(s) : `${s}-${e}`)).join(',');
}

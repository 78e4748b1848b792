// Port lists as the kernel prints and accepts them in net.ipv4.ip_local_reserved_ports:
// "30000-32767,8080" (comma separated single ports and inclusive ranges; empty means none).

export type PortRange = readonly [start: number, end: number];

/** Sorted, merged ranges, or undefined when the text is not a valid port list. */
export function parsePortRanges(text: string): PortRange[] | undefined {
  const trimmed = text.trim();
  if (trimmed === '') return [];
  const ranges: [number, number][] = [];
  for (const item of trimmed.split(',')) {
    const m = /^\s*(\d{1,5})\s*(?:-\s*(\d{1,5})\s*)?$/.exec(item);
    if (m === null) return undefined;
    const start = Number(m[1]);
    const end = m[2] === undefined ? start : Number(m[2]);
    if (start > 65535 || end > 65535 || end < start) return undefined;
    ranges.push([start, end]);
  }
  return mergePortRanges(ranges);
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

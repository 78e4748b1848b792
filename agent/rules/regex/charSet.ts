// A set of Unicode code points as sorted, disjoint, non-adjacent ranges: what a character class
// ([a-z], \d, (?i)k, [^x]) means once parsed. Immutable.

export const MAX_CODE_POINT = 0x10ffff;
export const FULL_RANGE: readonly [number, number] = [0, MAX_CODE_POINT];

/** Ranges wider than this are not case-folded code point by code point (they are letters' worth already). */
const MAX_FOLD_SPAN = 0x10000;

export class CharSet {
  readonly ranges: readonly (readonly [number, number])[];

  private constructor(ranges: readonly (readonly [number, number])[]) {
    this.ranges = ranges;
  }

  static empty(): CharSet {
    return new CharSet([]);
  }

  static of(...ranges: (readonly [number, number])[]): CharSet {
    return new CharSet(normalize(ranges));
  }

  union(other: CharSet): CharSet {
    return new CharSet(normalize([...this.ranges, ...other.ranges]));
  }

  negate(): CharSet {
    const out: [number, number][] = [];
    let next = 0;
    for (const [lo, hi] of this.ranges) {
      if (lo > next) out.push([next, lo - 1]);
      next = hi + 1;
    }
    if (next <= MAX_CODE_POINT) out.push([next, MAX_CODE_POINT]);
    return new CharSet(out);
  }

  /** Add the other case of every letter: what (?i) does to a class or a literal. */
  foldCase(): CharSet {
    const extra: [number, number][] = [];
    for (const [lo, hi] of this.ranges) {
      // ASCII letters by range, the rest code point by code point.
      const aLo = Math.max(lo, 0x41);
      const aHi = Math.min(hi, 0x5a);
      if (aLo <= aHi) extra.push([aLo + 32, aHi + 32]);
      const bLo = Math.max(lo, 0x61);
      const bHi = Math.min(hi, 0x7a);
      if (bLo <= bHi) extra.push([bLo - 32, bHi - 32]);
      if (hi < 0x80 || hi - lo > MAX_FOLD_SPAN) continue;
      for (let code = Math.max(lo, 0x80); code <= hi; code++) {
        for (const other of caseVariants(code)) extra.push([other, other]);
      }
    }
    return extra.length === 0 ? this : new CharSet(normalize([...this.ranges, ...extra]));
  }

  has(code: number): boolean {
    for (const [lo, hi] of this.ranges) {
      if (code < lo) return false;
      if (code <= hi) return true;
    }
    return false;
  }

  size(): number {
    let n = 0;
    for (const [lo, hi] of this.ranges) n += hi - lo + 1;
    return n;
  }

  /** The code points, when there are at most `max` of them. */
  members(max: number): number[] | undefined {
    if (this.size() > max) return undefined;
    const out: number[] = [];
    for (const [lo, hi] of this.ranges) for (let c = lo; c <= hi; c++) out.push(c);
    return out;
  }
}

function caseVariants(code: number): number[] {
  const ch = String.fromCodePoint(code);
  const out: number[] = [];
  for (const variant of [ch.toLowerCase(), ch.toUpperCase()]) {
    const cp = variant.codePointAt(0) as number;
    // Only simple (one code point to one) mappings, as RE2's case folding.
    if (variant.length === String.fromCodePoint(cp).length && cp !== code) out.push(cp);
  }
  return out;
}

function normalize(ranges: readonly (readonly [number, number])[]): [number, number][] {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [lo, hi] of sorted) {
    const last = out.at(-1);
    if (last !== undefined && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else out.push([lo, hi]);
  }
  return out;
}

// The catalogue's RE2 patterns as POSIX extended regular expressions, for the grep -E baseline:
// the same patterns, written for grep. Emitted from the parsed pattern (re2Syntax.ts), so case
// folding, \d, \s, \w and classes become bracket expressions grep reads. Run grep with LC_ALL=C:
// bytes, as the logs are.
import { MAX_CODE_POINT } from '../agent/rules/regex/charSet.ts';
import type { CharSet } from '../agent/rules/regex/charSet.ts';
import type { Re2Node } from '../agent/rules/regex/re2Syntax.ts';
import { parseRe2 } from '../agent/rules/regex/re2Syntax.ts';
import { assertionText, isAtom, quantifierText } from '../agent/rules/regex/re2ToRegExp.ts';

const ERE_SPECIAL = new Set('.[]()*+?{}|^$\\');

function char(code: number): string {
  const c = String.fromCodePoint(code);
  return ERE_SPECIAL.has(c) ? `\\${c}` : c;
}

/** A bracket expression for ASCII ranges; ']' first, '-' last, '^' not first. */
function bracket(ranges: readonly (readonly [number, number])[], negate: boolean): string {
  const chars: number[] = [];
  for (const [lo, hi] of ranges) {
    for (let c = lo; c <= Math.min(hi, 0x7f); c++) chars.push(c);
  }
  // grep reads one pattern per line and matches within lines: no newline in a pattern, and
  // the other white space as the class that holds it.
  const SPACE = [0x09, 0x0a, 0x0c, 0x0d, 0x20]; // RE2's \s
  let body = '';
  if (SPACE.every((c) => chars.includes(c))) body += '[:space:]';
  const has = (c: number) => chars.includes(c);
  const kept = chars.filter((c) => c >= 0x20 && c !== 0x7f && !(body !== '' && c === 0x20));
  chars.length = 0;
  chars.push(...kept);
  if (has(0x5d)) body += ']';
  const rest = chars.filter((c) => c !== 0x5d && c !== 0x2d && c !== 0x5e);
  // Compress runs into ranges.
  for (let i = 0; i < rest.length;) {
    let j = i;
    while (j + 1 < rest.length && rest[j + 1] === (rest[j] ?? 0) + 1) j++;
    const lo = rest[i] ?? 0;
    const hi = rest[j] ?? 0;
    body +=
      j - i >= 2
        ? `${String.fromCharCode(lo)}-${String.fromCharCode(hi)}`
        : rest
            .slice(i, j + 1)
            .map((c) => String.fromCharCode(c))
            .join('');
    i = j + 1;
  }
  if (has(0x5e)) body += '^';
  if (has(0x2d)) body += '-';
  if (body === '') return negate ? '(.|\n)' : '[^\\x00-\\xff]';
  return `[${negate ? '^' : ''}${body}]`;
}

function set(s: CharSet): string {
  if (s.has(MAX_CODE_POINT)) return bracket(s.negate().ranges, true);
  const [only] = s.ranges;
  if (s.ranges.length === 1 && only !== undefined && only[0] === only[1]) return char(only[0]);
  return bracket(s.ranges, false);
}

function emit(node: Re2Node): string {
  switch (node.type) {
    case 'empty':
      return '';
    case 'char':
      return char(node.code);
    case 'set':
      return set(node.set);
    case 'any':
      return '.';
    case 'assert':
      return assertionText(node.kind);
    case 'concat':
      return node.items.map(emit).join('');
    case 'alt':
      return `(${node.items.map(emit).join('|')})`;
    case 'group':
      return `(${emit(node.item)})`;
    case 'repeat': {
      const inner = emit(node.item);
      const atom = isAtom(node.item) ? inner : `(${inner})`;
      return atom + quantifierText(node.min, node.max);
    }
  }
}

export function ereFromRe2(pattern: string): string {
  return emit(parseRe2(pattern));
}

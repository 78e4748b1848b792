// A parsed RE2 pattern as a JavaScript RegExp that cannot take the agent down.
//
// V8's default engine backtracks: a pattern such as (a+)+$ takes seconds, then hours, on a line
// of a few dozen characters. V8 also has a linear-time engine and can switch a RegExp to it once
// backtracking gets excessive (--enable-experimental-regexp-engine-on-excessive-backtracks). It
// refuses the i and u flags and (?i:) groups, so the emitted RegExp uses none: case-insensitive
// parts are already explicit sets ([Kk]), \d \s \w are RE2's ASCII classes, and `.` is [^\n].
// Matching works on UTF-16 code units: a character above U+FFFF counts as two.
import v8 from 'node:v8';
import type { CharSet } from './charSet.ts';
import { Re2SyntaxError } from './re2Syntax.ts';
import type { Assertion, Re2Node } from './re2Syntax.ts';

let linearFallbackEnabled = false;

/** Process-wide, before any rule is compiled: RegExps compiled afterwards get the fallback. */
function enableLinearTimeFallback(): void {
  if (linearFallbackEnabled) return;
  v8.setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');
  linearFallbackEnabled = true;
}

export interface EmitOptions {
  /** The text may hold several lines (a buffer of messages joined by \n): ^ $ keep RE2's meaning. */
  multiLine?: boolean;
  /** Append RE2's \z: the match must end where the text ends (node-problem-detector's rule). */
  anchorEnd?: boolean;
}

export function re2ToRegExp(node: Re2Node, options: EmitOptions = {}): RegExp {
  enableLinearTimeFallback();
  const asserts = new Set<string>();
  collectAssertions(node, asserts);
  if (options.anchorEnd === true) asserts.add('textEnd');
  const lineAnchors = asserts.has('lineStart') || asserts.has('lineEnd');
  const textAnchors = asserts.has('textStart') || asserts.has('textEnd');
  // On one line (no \n in the text) ^ and (?m)^ mean the same; across lines, only one kind can be
  // expressed without lookbehind, which the linear engine does not have.
  if (options.multiLine === true && lineAnchors && textAnchors) {
    throw new Re2SyntaxError(
      'a pattern that can span lines cannot mix (?m) anchors with \\A, \\z or plain ^ $ (and rules that must match to the end use \\z)',
      0,
    );
  }
  let source = emit(node);
  if (options.anchorEnd === true) source = `(?:${source})$`;
  return new RegExp(source, options.multiLine === true && lineAnchors ? 'm' : '');
}

/** Whether the pattern can match a newline: then it can span the lines of a multi-line buffer. */
export function canMatchNewline(node: Re2Node): boolean {
  switch (node.type) {
    case 'char':
      return node.code === 0x0a;
    case 'set':
      return node.set.has(0x0a);
    case 'any':
      return node.newline;
    case 'concat':
    case 'alt':
      return node.items.some(canMatchNewline);
    case 'repeat':
      return node.max > 0 && canMatchNewline(node.item);
    case 'group':
      return canMatchNewline(node.item);
    default:
      return false;
  }
}

function collectAssertions(node: Re2Node, into: Set<string>): void {
  switch (node.type) {
    case 'assert':
      into.add(node.kind);
      return;
    case 'concat':
    case 'alt':
      for (const item of node.items) collectAssertions(item, into);
      return;
    case 'repeat':
    case 'group':
      collectAssertions(node.item, into);
      return;
    default:
      return;
  }
}

/** An assertion as the emitted RegExp writes it; POSIX ERE writes them the same. */
export function assertionText(kind: Assertion): string {
  switch (kind) {
    case 'textStart':
    case 'lineStart':
      return '^';
    case 'textEnd':
    case 'lineEnd':
      return '$';
    case 'wordBoundary':
      return '\\b';
    case 'notWordBoundary':
      return '\\B';
  }
}

/** A greedy quantifier: *, +, ?, {n}, {n,} or {n,m} (JS and POSIX ERE alike). */
export function quantifierText(min: number, max: number): string {
  if (min === 0 && max === Infinity) return '*';
  if (min === 1 && max === Infinity) return '+';
  if (min === 0 && max === 1) return '?';
  if (max === Infinity) return `{${min},}`;
  return min === max ? `{${min}}` : `{${min},${max}}`;
}

function emit(node: Re2Node): string {
  switch (node.type) {
    case 'empty':
      return '(?:)';
    case 'char':
      return emitChar(node.code);
    case 'set':
      return emitSet(node.set);
    case 'any':
      return node.newline ? '[\\u0000-\\uffff]' : '[^\\n]';
    case 'assert':
      return assertionText(node.kind);
    case 'concat':
      return node.items.map(emit).join('');
    case 'alt':
      return `(?:${node.items.map(emit).join('|')})`;
    case 'group':
      return node.capture ? `(${emit(node.item)})` : `(?:${emit(node.item)})`;
    case 'repeat': {
      const inner = emit(node.item);
      const atom = isAtom(node.item) ? inner : `(?:${inner})`;
      return atom + quantifierText(node.min, node.max) + (node.greedy ? '' : '?');
    }
  }
  return '';
}

/** A node its quantifier can follow without a group of its own. */
export function isAtom(node: Re2Node): boolean {
  return (
    node.type === 'char' || node.type === 'set' || node.type === 'any' || node.type === 'group'
  );
}

/** Characters that need no escape outside a class. */
const PLAIN = /^[A-Za-z0-9 !"#%&',\-:;<=>@_`~]$/;

function emitChar(code: number): string {
  if (code > 0xffff) {
    const s = String.fromCodePoint(code);
    return unit(s.charCodeAt(0)) + unit(s.charCodeAt(1));
  }
  const ch = String.fromCharCode(code);
  if (PLAIN.test(ch)) return ch;
  if (code >= 0x21 && code <= 0x7e) return `\\${ch}`;
  return unit(code);
}

function unit(code: number): string {
  return `\\u${code.toString(16).padStart(4, '0')}`;
}

const SURROGATES: readonly [number, number] = [0xd800, 0xdfff];

function emitSet(set: CharSet): string {
  const astral = set.ranges.some(([, hi]) => hi > 0xffff);
  const hasAllSurrogates = set.ranges.some(
    ([lo, hi]) => lo <= SURROGATES[0] && hi >= SURROGATES[1],
  );
  if (astral && !hasAllSurrogates) {
    // Code-unit matching can take "any character above U+FFFF" (both halves are surrogates) but
    // not a particular one.
    throw new Re2SyntaxError('characters above U+FFFF are not supported in a character class', 0);
  }
  const bmp = set.ranges
    .filter(([lo]) => lo <= 0xffff)
    .map(([lo, hi]): [number, number] => [lo, Math.min(hi, 0xffff)]);
  if (bmp.length === 1 && bmp[0]?.[0] === bmp[0]?.[1]) return emitChar(bmp[0]?.[0] ?? 0);
  if (bmp.length === 0) return '[^\\u0000-\\uffff]'; // matches nothing
  // The complement within the BMP, when it is shorter to write.
  const complement: [number, number][] = [];
  let next = 0;
  for (const [lo, hi] of bmp) {
    if (lo > next) complement.push([next, lo - 1]);
    next = hi + 1;
  }
  if (next <= 0xffff) complement.push([next, 0xffff]);
  if (complement.length === 0) return '[\\u0000-\\uffff]';
  return complement.length < bmp.length
    ? `[^${complement.map(emitRange).join('')}]`
    : `[${bmp.map(emitRange).join('')}]`;
}

function emitRange([lo, hi]: readonly [number, number]): string {
  if (lo === hi) return classChar(lo);
  if (hi === lo + 1) return classChar(lo) + classChar(hi);
  return `${classChar(lo)}-${classChar(hi)}`;
}

function classChar(code: number): string {
  const ch = String.fromCharCode(code);
  return /^[A-Za-z0-9 !"#%&',:;<=>@_`~.*+?(){}|$/]$/.test(ch) ? ch : unit(code);
}

// RE2 regular-expression syntax (as Go's regexp and C++ RE2 accept it), parsed into a small
// tree. node-problem-detector's rules are written in it, and so are ours: one syntax whatever
// the rule's origin. The tree is then emitted as a JavaScript RegExp that V8 can run in linear
// time (re2ToRegExp.ts), searched for literals the prefilter can look for (requiredLiterals.ts),
// and, in the benchmark, written as POSIX ERE for `grep -E`.
//
// Case-insensitive parts are resolved here, into explicit character sets ((?i)k -> [Kk]): V8's
// linear-time engine does not support the i flag, nor the u flag.
import { CharSet, FULL_RANGE } from './charSet.ts';

export type Assertion =
  'textStart' | 'textEnd' | 'lineStart' | 'lineEnd' | 'wordBoundary' | 'notWordBoundary';

export type Re2Node =
  | { type: 'empty' }
  | { type: 'char'; code: number }
  | { type: 'set'; set: CharSet }
  /** `.`: any character but a newline, or any at all with (?s). */
  | { type: 'any'; newline: boolean }
  | { type: 'assert'; kind: Assertion }
  | { type: 'concat'; items: Re2Node[] }
  | { type: 'alt'; items: Re2Node[] }
  | { type: 'repeat'; min: number; max: number; greedy: boolean; item: Re2Node }
  | { type: 'group'; capture: boolean; item: Re2Node };

/** A pattern RE2 would reject, or one this translation cannot express; index is 0-based. */
export class Re2SyntaxError extends Error {
  readonly index: number;

  constructor(message: string, index: number) {
    super(`${message} at offset ${index}`);
    this.name = 'Re2SyntaxError';
    this.index = index;
  }
}

/** RE2 and Go refuse counted repetitions above 1000. */
const MAX_REPEAT = 1000;
/** Nesting deeper than this is not a log pattern; refusing it keeps recursion bounded. */
const MAX_DEPTH = 200;

interface Flags {
  caseInsensitive: boolean;
  multiLine: boolean;
  dotNewline: boolean;
  ungreedy: boolean;
}

const PERL_CLASSES: Record<string, CharSet> = {
  d: CharSet.of([0x30, 0x39]),
  s: CharSet.of([0x09, 0x0a], [0x0c, 0x0d], [0x20, 0x20]),
  w: CharSet.of([0x30, 0x39], [0x41, 0x5a], [0x5f, 0x5f], [0x61, 0x7a]),
};

const POSIX_CLASSES: Record<string, CharSet> = {
  alnum: CharSet.of([0x30, 0x39], [0x41, 0x5a], [0x61, 0x7a]),
  alpha: CharSet.of([0x41, 0x5a], [0x61, 0x7a]),
  ascii: CharSet.of([0x00, 0x7f]),
  blank: CharSet.of([0x09, 0x09], [0x20, 0x20]),
  cntrl: CharSet.of([0x00, 0x1f], [0x7f, 0x7f]),
  digit: CharSet.of([0x30, 0x39]),
  graph: CharSet.of([0x21, 0x7e]),
  lower: CharSet.of([0x61, 0x7a]),
  print: CharSet.of([0x20, 0x7e]),
  punct: CharSet.of([0x21, 0x2f], [0x3a, 0x40], [0x5b, 0x60], [0x7b, 0x7e]),
  space: CharSet.of([0x09, 0x0d], [0x20, 0x20]),
  upper: CharSet.of([0x41, 0x5a]),
  word: CharSet.of([0x30, 0x39], [0x41, 0x5a], [0x5f, 0x5f], [0x61, 0x7a]),
  xdigit: CharSet.of([0x30, 0x39], [0x41, 0x46], [0x61, 0x66]),
};

const SIMPLE_ESCAPES: Record<string, number> = {
  a: 0x07,
  f: 0x0c,
  t: 0x09,
  n: 0x0a,
  r: 0x0d,
  v: 0x0b,
};

export function parseRe2(pattern: string): Re2Node {
  return new Parser(pattern).parse();
}

class Parser {
  private readonly src: string;
  private pos = 0;
  private depth = 0;

  constructor(src: string) {
    this.src = src;
  }

  parse(): Re2Node {
    const flags: Flags = {
      caseInsensitive: false,
      multiLine: false,
      dotNewline: false,
      ungreedy: false,
    };
    const node = this.alternation(flags);
    if (this.pos < this.src.length) {
      // Only a ")" without its "(" stops the top level early.
      throw new Re2SyntaxError('unexpected )', this.pos);
    }
    return node;
  }

  /** a|b|c up to the end of the group. Flags set by (?i) last until the group ends. */
  private alternation(flags: Flags): Re2Node {
    if (++this.depth > MAX_DEPTH) throw new Re2SyntaxError('expression nests too deeply', this.pos);
    const branches: Re2Node[] = [this.concatenation(flags)];
    while (this.peek() === '|') {
      this.pos++;
      branches.push(this.concatenation(flags));
    }
    this.depth--;
    return branches.length === 1 ? (branches[0] as Re2Node) : { type: 'alt', items: branches };
  }

  private concatenation(flags: Flags): Re2Node {
    const items: Re2Node[] = [];
    while (this.pos < this.src.length) {
      const c = this.peek();
      if (c === '|' || c === ')') break;
      const start = this.pos;
      const atom = this.atom(flags);
      if (atom === undefined) continue; // a flag group such as (?i): no atom
      items.push(this.repetition(atom, flags, start));
    }
    if (items.length === 0) return { type: 'empty' };
    return items.length === 1 ? (items[0] as Re2Node) : { type: 'concat', items };
  }

  private repetition(atom: Re2Node, flags: Flags, atomStart: number): Re2Node {
    let node = atom;
    let repeated = false;
    for (;;) {
      const at = this.pos;
      const c = this.peek();
      let min: number;
      let max: number;
      if (c === '*' || c === '+' || c === '?') {
        this.pos++;
        [min, max] = c === '*' ? [0, Infinity] : c === '+' ? [1, Infinity] : [0, 1];
      } else if (c === '{') {
        const counted = this.countedRepeat();
        if (counted === undefined) return node; // a literal "{": the next atom
        [min, max] = counted;
      } else {
        return node;
      }
      if (repeated) {
        throw new Re2SyntaxError(
          `invalid nested repetition operator ${this.src.slice(atomStart, this.pos)}`,
          at,
        );
      }
      let greedy = true;
      if (this.peek() === '?') {
        this.pos++;
        greedy = false;
      }
      if (flags.ungreedy) greedy = !greedy;
      node = { type: 'repeat', min, max, greedy, item: node };
      repeated = true;
    }
  }

  /** {n}, {n,} or {n,m} at pos; undefined (pos unchanged) when it is not one: then "{" is literal. */
  private countedRepeat(): [number, number] | undefined {
    const match = /^\{(\d+)(,(\d*))?\}/.exec(this.src.slice(this.pos, this.pos + 24));
    if (match === null) return undefined;
    const start = this.pos;
    const min = Number(match[1]);
    const max = match[2] === undefined ? min : match[3] === '' ? Infinity : Number(match[3]);
    if (min > MAX_REPEAT || (max !== Infinity && (max > MAX_REPEAT || max < min))) {
      throw new Re2SyntaxError(`invalid repeat count ${match[0]}`, start);
    }
    this.pos += match[0].length;
    return [min, max];
  }

  private atom(flags: Flags): Re2Node | undefined {
    const c = this.peek();
    const at = this.pos;
    switch (c) {
      case '(':
        return this.group(flags);
      case '[':
        return this.charClass(flags);
      case '.':
        this.pos++;
        return { type: 'any', newline: flags.dotNewline };
      case '^':
        this.pos++;
        return { type: 'assert', kind: flags.multiLine ? 'lineStart' : 'textStart' };
      case '$':
        this.pos++;
        return { type: 'assert', kind: flags.multiLine ? 'lineEnd' : 'textEnd' };
      case '\\':
        return this.escape(flags);
      case '*':
      case '+':
      case '?':
        throw new Re2SyntaxError(`missing argument to repetition operator ${c}`, at);
      case '{':
        if (this.countedRepeat() !== undefined) {
          throw new Re2SyntaxError('missing argument to repetition operator {', at);
        }
        this.pos++;
        return literal(0x7b, flags);
      default: {
        const code = this.src.codePointAt(this.pos) as number;
        this.pos += code > 0xffff ? 2 : 1;
        return literal(code, flags);
      }
    }
  }

  private group(flags: Flags): Re2Node | undefined {
    const open = this.pos;
    this.pos++; // "("
    let capture = true;
    let inner = { ...flags };
    if (this.peek() === '?') {
      const rest = this.src.slice(this.pos + 1);
      const named = /^P?<([A-Za-z0-9_]+)>/.exec(rest);
      if (named !== null) {
        this.pos += 1 + named[0].length;
      } else if (/^P?</.test(rest) && !/^<[=!]/.test(rest)) {
        throw new Re2SyntaxError('invalid named capture', open);
      } else if (/^(=|!|<=|<!)/.test(rest)) {
        throw new Re2SyntaxError('lookahead and lookbehind are not supported (RE2 syntax)', open);
      } else {
        const flagText = /^([imsU]*)(-([imsU]*))?([:)])/.exec(rest);
        if (flagText === null || (flagText[2] !== undefined && flagText[3] === '')) {
          throw new Re2SyntaxError('invalid or unsupported Perl syntax', open);
        }
        const set = flagText[1] ?? '';
        const cleared = flagText[3] ?? '';
        if (set === '' && cleared === '' && flagText[4] === ')') {
          throw new Re2SyntaxError('missing flags in (?)', open);
        }
        const target = flagText[4] === ')' ? flags : inner;
        applyFlags(target, set, true);
        applyFlags(target, cleared, false);
        this.pos += 1 + flagText[0].length;
        if (flagText[4] === ')') return undefined; // (?i): applies to the rest of this group
        capture = false;
        inner = target;
      }
    }
    const item = this.alternation(inner);
    if (this.peek() !== ')') throw new Re2SyntaxError('missing closing )', open);
    this.pos++;
    return { type: 'group', capture, item };
  }

  private escape(flags: Flags): Re2Node {
    const at = this.pos;
    this.pos++; // "\"
    if (this.pos >= this.src.length) throw new Re2SyntaxError('trailing backslash', at);
    const c = this.src[this.pos] as string;
    switch (c) {
      case 'A':
        this.pos++;
        return { type: 'assert', kind: 'textStart' };
      case 'z':
        this.pos++;
        return { type: 'assert', kind: 'textEnd' };
      case 'b':
        this.pos++;
        return { type: 'assert', kind: 'wordBoundary' };
      case 'B':
        this.pos++;
        return { type: 'assert', kind: 'notWordBoundary' };
      case 'Q': {
        this.pos++;
        const end = this.src.indexOf('\\E', this.pos);
        const text = this.src.slice(this.pos, end < 0 ? undefined : end);
        this.pos = end < 0 ? this.src.length : end + 2;
        const items: Re2Node[] = [];
        for (let i = 0; i < text.length;) {
          const code = text.codePointAt(i) as number;
          items.push(literal(code, flags));
          i += code > 0xffff ? 2 : 1;
        }
        if (items.length === 0) return { type: 'empty' };
        return items.length === 1 ? (items[0] as Re2Node) : { type: 'concat', items };
      }
      default:
        break;
    }
    this.pos = at;
    const set = this.classEscape(flags);
    if (set !== undefined) return { type: 'set', set };
    return literal(this.charEscape(), flags);
  }

  /** \d \s \w (and negations) or \pX \p{Name} \PX: a set; undefined (pos unchanged) otherwise. */
  private classEscape(flags: Flags): CharSet | undefined {
    const c = this.src[this.pos + 1] ?? '';
    const perl = PERL_CLASSES[c.toLowerCase()];
    if (perl !== undefined && 'dswDSW'.includes(c)) {
      this.pos += 2;
      return c === c.toUpperCase() ? perl.negate() : perl;
    }
    if (c === 'p' || c === 'P') {
      const at = this.pos;
      let name: string;
      if (this.src[this.pos + 2] === '{') {
        const end = this.src.indexOf('}', this.pos + 3);
        if (end < 0) throw new Re2SyntaxError('invalid character class range', at);
        name = this.src.slice(this.pos + 3, end);
        this.pos = end + 1;
      } else {
        name = this.src[this.pos + 2] ?? '';
        this.pos += 3;
      }
      let negated = c === 'P';
      if (name.startsWith('^')) {
        negated = !negated;
        name = name.slice(1);
      }
      const set = unicodeClass(name);
      if (set === undefined)
        throw new Re2SyntaxError(`invalid character class range \\${c}{${name}}`, at);
      const folded = flags.caseInsensitive ? set.foldCase() : set;
      return negated ? folded.negate() : folded;
    }
    return undefined;
  }

  /** One escaped character outside \d-style classes: \n, \x41, \x{263a}, \101, \. and so on. */
  private charEscape(): number {
    const at = this.pos;
    this.pos++; // "\"
    const c = this.src[this.pos] as string;
    this.pos++;
    const simple = SIMPLE_ESCAPES[c];
    if (simple !== undefined) return simple;
    if (c === 'x') {
      if (this.peek() === '{') {
        const end = this.src.indexOf('}', this.pos);
        const hex = end < 0 ? '' : this.src.slice(this.pos + 1, end);
        if (!/^[0-9A-Fa-f]{1,8}$/.test(hex) || parseInt(hex, 16) > 0x10ffff) {
          throw new Re2SyntaxError('invalid escape sequence \\x{', at);
        }
        this.pos = end + 1;
        return parseInt(hex, 16);
      }
      const hex = this.src.slice(this.pos, this.pos + 2);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex))
        throw new Re2SyntaxError('invalid escape sequence \\x', at);
      this.pos += 2;
      return parseInt(hex, 16);
    }
    if (c >= '0' && c <= '7') {
      // Go: \0 and \0dd are octal, as is \ddd when a second octal digit follows; a lone \1-\7
      // would be a backreference, which RE2 does not have.
      const digits = /^[0-7]{0,2}/.exec(this.src.slice(this.pos))?.[0] ?? '';
      if (c !== '0' && digits === '') {
        throw new Re2SyntaxError(`backreferences are not supported: \\${c}`, at);
      }
      this.pos += digits.length;
      return parseInt(c + digits, 8);
    }
    if (c === '8' || c === '9')
      throw new Re2SyntaxError(`backreferences are not supported: \\${c}`, at);
    // Any escaped punctuation is itself; an escaped letter or digit RE2 does not know is an error.
    if (/^[!-/:-@[-`{-~]$/.test(c)) return c.charCodeAt(0);
    throw new Re2SyntaxError(`invalid escape sequence \\${c}`, at);
  }

  private charClass(flags: Flags): Re2Node {
    const open = this.pos;
    this.pos++; // "["
    let negated = false;
    if (this.peek() === '^') {
      negated = true;
      this.pos++;
    }
    let set = CharSet.empty();
    let first = true;
    for (;;) {
      if (this.pos >= this.src.length) throw new Re2SyntaxError('missing closing ]', open);
      const c = this.peek();
      if (c === ']' && !first) {
        this.pos++;
        break;
      }
      first = false;
      // [:alpha:] and [:^alpha:]
      const posix = /^\[:(\^?)([a-z]+):\]/.exec(this.src.slice(this.pos, this.pos + 12));
      if (posix !== null) {
        const named = POSIX_CLASSES[posix[2] ?? ''];
        if (named === undefined)
          throw new Re2SyntaxError(`invalid character class range ${posix[0]}`, this.pos);
        set = set.union(posix[1] === '^' ? named.negate() : named);
        this.pos += posix[0].length;
        continue;
      }
      if (c === '\\') {
        const escaped = this.classEscape({ ...flags, caseInsensitive: false });
        if (escaped !== undefined) {
          set = set.union(escaped);
          continue;
        }
      }
      const rangeStart = this.pos;
      const lo = this.classChar();
      let hi = lo;
      if (this.peek() === '-' && this.src[this.pos + 1] !== ']' && this.pos + 1 < this.src.length) {
        this.pos++;
        hi = this.classChar();
        if (hi < lo) {
          throw new Re2SyntaxError(
            `invalid character class range ${this.src.slice(rangeStart, this.pos)}`,
            rangeStart,
          );
        }
      }
      set = set.union(CharSet.of([lo, hi]));
    }
    if (flags.caseInsensitive) set = set.foldCase();
    return { type: 'set', set: negated ? set.negate() : set };
  }

  private classChar(): number {
    if (this.peek() === '\\') {
      const at = this.pos;
      const next = this.src[this.pos + 1] ?? '';
      if ('dswDSWpP'.includes(next) && next !== '') {
        throw new Re2SyntaxError('invalid character class range', at);
      }
      return this.charEscape();
    }
    const code = this.src.codePointAt(this.pos) as number;
    this.pos += code > 0xffff ? 2 : 1;
    return code;
  }

  private peek(): string {
    return this.src[this.pos] ?? '';
  }
}

function applyFlags(flags: Flags, letters: string, on: boolean): void {
  for (const letter of letters) {
    if (letter === 'i') flags.caseInsensitive = on;
    else if (letter === 'm') flags.multiLine = on;
    else if (letter === 's') flags.dotNewline = on;
    else flags.ungreedy = on;
  }
}

function literal(code: number, flags: Flags): Re2Node {
  if (!flags.caseInsensitive) return { type: 'char', code };
  const set = CharSet.of([code, code]).foldCase();
  return set.size() === 1 ? { type: 'char', code } : { type: 'set', set };
}

const unicodeCache = new Map<string, CharSet | undefined>();

/**
 * \p{Name}: a general category (L, Lu, Nd...) or a script (Greek, Han...), as RE2 names them.
 * Computed from V8's own Unicode tables over the Basic Multilingual Plane (the emitted RegExp
 * works on UTF-16 code units; see re2ToRegExp.ts).
 */
function unicodeClass(name: string): CharSet | undefined {
  if (unicodeCache.has(name)) return unicodeCache.get(name);
  let set: CharSet | undefined;
  if (name === 'Any') {
    set = CharSet.of(FULL_RANGE);
  } else if (/^[A-Za-z_]+$/.test(name)) {
    let test: RegExp | undefined;
    for (const source of [`\\p{gc=${name}}`, `\\p{sc=${name}}`]) {
      try {
        test = new RegExp(source, 'u');
        break;
      } catch {
        /* not this kind of name */
      }
    }
    if (test !== undefined) {
      const ranges: [number, number][] = [];
      let start = -1;
      for (let code = 0; code <= 0x10000; code++) {
        const inside = code < 0x10000 && test.test(String.fromCharCode(code));
        if (inside && start < 0) start = code;
        if (!inside && start >= 0) {
          ranges.push([start, code - 1]);
          start = -1;
        }
      }
      set = CharSet.of(...ranges);
    }
  }
  unicodeCache.set(name, set);
  return set;
}

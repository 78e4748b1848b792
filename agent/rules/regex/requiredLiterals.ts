// Literals a line must contain for a pattern to match it: "inotify_add_watch" for
// `inotify_add_watch .*: no space left on device`, either "oom-kill" or "killed process" for
// `(oom-kill|Killed process)`. The prefilter (literalScanner.ts) looks for all rules' literals in
// one pass over the bytes, so the RegExps run only on the few lines that can match.
//
// Literals are ASCII and lower case (the scanner folds ASCII case); a non-ASCII character ends a
// literal. A pattern with no usable literal (too short, or `.*`) runs on every line of its source.
import type { Re2Node } from './re2Syntax.ts';

/** Shorter literals would make almost every line a candidate. */
const MIN_LITERAL_LENGTH = 3;
/** Alternatives kept per pattern: beyond this, looking for all of them costs more than it saves. */
const MAX_ALTERNATIVES = 32;
const MAX_LITERAL_LENGTH = 64;

interface Info {
  /** Every string the node can match (folded), when there are few: it matches exactly one of them. */
  exact?: string[];
  /** A match of the node contains at least one of these (folded), when known. */
  anyOf?: string[];
}

/** One of these literals occurs in every line the pattern matches; undefined: no such set. */
export function requiredLiterals(node: Re2Node): string[] | undefined {
  const info = analyse(node);
  const best = pick([info.anyOf, info.exact]);
  return best;
}

function analyse(node: Re2Node): Info {
  switch (node.type) {
    case 'empty':
    case 'assert':
      return { exact: [''] };
    case 'char':
      return { exact: [foldChar(node.code)] };
    case 'set': {
      const members = node.set.members(8);
      if (members === undefined) return {};
      return { exact: [...new Set(members.map(foldChar))] };
    }
    case 'any':
      return {};
    case 'group':
      return analyse(node.item);
    case 'alt': {
      const infos = node.items.map(analyse);
      const exact = infos.every((i) => i.exact !== undefined)
        ? unique(infos.flatMap((i) => i.exact ?? []))
        : undefined;
      const parts = infos.map((i) => pick([i.anyOf, i.exact]));
      const anyOf = parts.every((p) => p !== undefined) ? unique(parts.flat()) : undefined;
      return {
        ...(exact !== undefined && exact.length <= MAX_ALTERNATIVES ? { exact } : {}),
        ...(anyOf !== undefined && anyOf.length <= MAX_ALTERNATIVES ? { anyOf } : {}),
      };
    }
    case 'repeat': {
      const inner = analyse(node.item);
      if (node.max === 0) return { exact: [''] };
      if (node.min === 0) {
        // x? is x or nothing; x* or x{0,n} can be anything of x's.
        return node.max === 1 && inner.exact !== undefined
          ? { exact: unique(['', ...inner.exact]) }
          : {};
      }
      const anyOf = pick([inner.anyOf, inner.exact]);
      if (node.min === 1 && node.max === 1) return inner;
      return anyOf === undefined ? {} : { anyOf };
    }
    case 'concat':
      return concat(node.items.map(analyse));
  }
}

/**
 * Adjacent exact parts multiply out ("ab" then "c|d" is "abc|abd") while the product stays small;
 * every finished piece is a candidate requirement, and the best one wins.
 */
function concat(parts: Info[]): Info {
  const candidates: (string[] | undefined)[] = [];
  let run: string[] = [''];
  let allExact = true;
  for (const part of parts) {
    if (part.exact !== undefined) {
      const product = cross(run, part.exact);
      if (product !== undefined) {
        run = product;
        continue;
      }
      // Too many combinations: the run so far is one piece, this part starts the next.
      candidates.push(run);
      run = part.exact;
    } else {
      candidates.push(run, part.anyOf);
      run = [''];
    }
    allExact = false;
  }
  candidates.push(run);
  const anyOf = pick(candidates);
  return { ...(allExact ? { exact: run } : {}), ...(anyOf !== undefined ? { anyOf } : {}) };
}

function cross(a: string[], b: string[]): string[] | undefined {
  if (a.length * b.length > MAX_ALTERNATIVES) return undefined;
  const out: string[] = [];
  for (const x of a) for (const y of b) out.push(x + y);
  if (out.some((s) => s.length > MAX_LITERAL_LENGTH)) return undefined;
  return unique(out);
}

/**
 * The most selective usable set: its shortest literal as long as possible, then fewest
 * literals. A set is usable when each literal, cut at non-ASCII characters, keeps an ASCII run of
 * MIN_LITERAL_LENGTH or more (that run is what the scanner looks for).
 */
function pick(sets: readonly (string[] | undefined)[]): string[] | undefined {
  let best: string[] | undefined;
  let bestScore = -1;
  for (const set of sets) {
    if (set === undefined || set.length === 0) continue;
    const usable = set.map(longestAsciiRun);
    if (usable.some((s) => s.length < MIN_LITERAL_LENGTH)) continue;
    const shortest = Math.min(...usable.map((s) => s.length));
    const score = shortest * 1000 - usable.length;
    if (score > bestScore) {
      best = unique(usable);
      bestScore = score;
    }
  }
  return best;
}

function longestAsciiRun(s: string): string {
  let best = '';
  let run = '';
  for (const ch of s) {
    if (ch.charCodeAt(0) > 0x7f) run = '';
    else if ((run += ch).length > best.length) best = run;
  }
  return best;
}

/** ASCII letters fold to lower case; other characters are kept (and end a literal later). */
function foldChar(code: number): string {
  if (code >= 0x41 && code <= 0x5a) return String.fromCharCode(code + 32);
  return String.fromCodePoint(code);
}

function unique(list: string[]): string[] {
  return [...new Set(list)];
}

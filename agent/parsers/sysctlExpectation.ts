// What a sysctl profile entry expects, written the way an operator would say it:
// ">= 524288", "= 1", "includes 30000-32767". One string, so overriding it in config replaces
// the whole requirement (no half-merged min/equals pairs).
import {
  coversPortRanges,
  formatPortRanges,
  mergePortRanges,
  parseConfiguredPortRanges,
  parsePortRanges,
} from './portRanges.ts';
import type { PortRange } from './portRanges.ts';

export type Expectation =
  | { op: '>=' | '>' | '<=' | '<'; value: bigint; text: string }
  | { op: '=' | '!='; value: string; text: string }
  | { op: 'includes'; ranges: PortRange[]; text: string };

const EXPECTATION = /^(>=|<=|!=|>|<|=|includes(?:\s|$))\s*(.*)$/s;
const SYNTAX = '">= N", "<= N", "> N", "< N", "= VALUE", "!= VALUE" or "includes PORTS"';

/** Parse an expectation, or return an error message describing what is accepted. */
export function parseExpectation(text: string): Expectation | string {
  const trimmed = text.trim();
  const m = EXPECTATION.exec(trimmed);
  const op = m?.[1]?.trim() ?? '=';
  const operand = (m?.[2] ?? trimmed).trim();
  if (operand === '')
    return trimmed === ''
      ? `is empty: expected ${SYNTAX}`
      : `"${trimmed}" has no value after "${op}": expected ${SYNTAX}`;
  // "== 1", "=> 10", "!1": a typo, never a sysctl value. Taken as "= (= 1)" it could never be
  // met, and the fix text would tell to write "kernel.panic = = 1".
  if (/^[<>=!]/.test(operand))
    return m === null
      ? `"${trimmed}" starts with "${operand.charAt(0)}", which is not an operator: expected ${SYNTAX}`
      : `"${trimmed}" has "${operand}" after "${op}": one operator, then the value (expected ${SYNTAX})`;
  switch (op) {
    case '>=':
    case '>':
    case '<=':
    case '<': {
      const value = parseInteger(operand);
      if (value === undefined) return `"${op}" needs an integer, got "${operand}"`;
      return { op, value, text: `${op} ${operand}` };
    }
    case 'includes': {
      // The operator's words, not the kernel's input: spaces are fine here (what is compared
      // with it, the value in /proc/sys or a sysctl.d file, is read strictly).
      const ranges = parseConfiguredPortRanges(operand);
      if (ranges === undefined)
        return `"includes" needs a port list such as 30000-32767, got "${operand}"`;
      return { op: 'includes', ranges, text: `includes ${formatPortRanges(ranges)}` };
    }
    default:
      return { op: op as '=' | '!=', value: normalizeValue(operand), text: `${op} ${operand}` };
  }
}

export type Verdict =
  { ok: true } | { ok: false; problem: 'mismatch' | 'not-integer' | 'not-port-list' };

export function evaluateExpectation(expectation: Expectation, rawValue: string): Verdict {
  const value = normalizeValue(rawValue);
  switch (expectation.op) {
    case '=':
    case '!=': {
      const a = parseInteger(value);
      const b = parseInteger(expectation.value);
      const equal = a !== undefined && b !== undefined ? a === b : value === expectation.value;
      return equal === (expectation.op === '=') ? { ok: true } : { ok: false, problem: 'mismatch' };
    }
    case 'includes': {
      const have = parsePortRanges(value);
      if (have === undefined) return { ok: false, problem: 'not-port-list' };
      return coversPortRanges(have, expectation.ranges)
        ? { ok: true }
        : { ok: false, problem: 'mismatch' };
    }
    default: {
      const n = parseInteger(value);
      if (n === undefined) return { ok: false, problem: 'not-integer' };
      const ok =
        expectation.op === '>='
          ? n >= expectation.value
          : expectation.op === '>'
            ? n > expectation.value
            : expectation.op === '<='
              ? n <= expectation.value
              : n < expectation.value;
      return ok ? { ok: true } : { ok: false, problem: 'mismatch' };
    }
  }
}

/** "at least 524288", for messages. */
export function describeExpectation(expectation: Expectation): string {
  switch (expectation.op) {
    case '>=':
      return `at least ${expectation.value}`;
    case '>':
      return `more than ${expectation.value}`;
    case '<=':
      return `at most ${expectation.value}`;
    case '<':
      return `less than ${expectation.value}`;
    case '=':
      return expectation.value;
    case '!=':
      return `anything but ${expectation.value}`;
    case 'includes':
      return `a list including ${formatPortRanges(expectation.ranges)}`;
  }
}

/**
 * The value to write to fix a key: the configured recommendation, else the least change that
 * satisfies the expectation (for "includes", the current list plus the missing ranges).
 */
export function valueToWrite(
  expectation: Expectation,
  current: string | undefined,
  recommended: string | undefined,
): string | undefined {
  // A recommendation that misses the expectation (an operator raised `expect` and kept the
  // default `recommended`) would be a fix that does not fix: fall back to the least change.
  if (recommended !== undefined && evaluateExpectation(expectation, recommended).ok)
    return recommended;
  switch (expectation.op) {
    case '>=':
    case '<=':
    case '=':
      return String(expectation.value);
    case '>':
      return String(expectation.value + 1n);
    case '<':
      return String(expectation.value - 1n);
    case 'includes': {
      const have = current === undefined ? [] : (parsePortRanges(current) ?? []);
      return formatPortRanges(mergePortRanges([...have, ...expectation.ranges]));
    }
    case '!=':
      return undefined;
  }
}

/** Sysctl values may hold several fields separated by tabs or spaces; compare them as one. */
export function normalizeValue(value: string): string {
  return value.trim().replace(/\s+/g, ' ');
}

/** A single integer, or undefined. BigInt because sysctls go up to 2^63 - 1. */
export function parseInteger(value: string): bigint | undefined {
  const v = value.trim();
  return /^-?\d+$/.test(v) ? BigInt(v) : undefined;
}

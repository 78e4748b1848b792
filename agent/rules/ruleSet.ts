// The active rules compiled once (at start and on every reload): their RegExps, the prefilter
// over all of their literals, and which records each applies to. evaluate() answers "which rules
// does this record match?"; it never throws for a record.
import type { Cause } from '../findings/causes.ts';
import { CAUSE_REMEDIATION } from '../findings/causes.ts';
import type { Severity } from '../findings/finding.ts';
import { parseDuration } from '../config/duration.ts';
import type { LogRecord } from '../sources/logRecord.ts';
import { LiteralScanner } from './literalScanner.ts';
import type { LiteralOwner, LineVisitor } from './literalScanner.ts';
import type { NpdMonitor } from './npdConfig.ts';
import { parseRe2 } from './regex/re2Syntax.ts';
import { canMatchNewline, re2ToRegExp } from './regex/re2ToRegExp.ts';
import { requiredLiterals } from './regex/requiredLiterals.ts';
import { problemOf } from './ruleSpec.ts';
import type { RuleSpec, SourceKind } from './ruleSpec.ts';

/** Quiet period of a rule that says nothing about clearing. */
const DEFAULT_QUIET_MS = 10 * 60_000;

export interface CompiledRule {
  /** Position in RuleSet.rules. */
  index: number;
  id: string;
  title: string;
  /** "built-in", "config" or the node-problem-detector file it came from. */
  origin: string;
  problem: string;
  cause?: Cause;
  role: 'cause' | 'symptom';
  priority: number;
  group: string;
  severity: Severity;
  remediation?: string;
  condition?: string;
  count?: { threshold: number; windowMs: number };
  clear: {
    quietMs?: number;
    requireNodeReady: boolean;
    onReboot: boolean;
    pattern?: RegExp;
    identifiers?: ReadonlySet<string>;
  };
  kinds?: ReadonlySet<SourceKind>;
  paths?: ReadonlySet<string>;
  identifiers?: ReadonlySet<string>;
  regex: RegExp;
  unless?: RegExp;
  /** node-problem-detector rule: its monitor (message extraction, skipList, buffer). */
  monitor?: CompiledMonitor;
  /** NPD rule whose pattern can match "\n": matched against the monitor's buffer of messages. */
  multiLine: boolean;
}

export interface CompiledMonitor {
  spec: NpdMonitor;
  message?: RegExp;
  /** The monitor's latest messages, newest last (only kept when it has multi-line rules). */
  buffer: string[];
  keepsBuffer: boolean;
}

export interface RuleInput {
  spec: RuleSpec;
  origin: string;
  monitor?: NpdMonitor;
}

export type MatchKind = 'match' | 'clear';

export interface RuleMatch {
  rule: CompiledRule;
  kind: MatchKind;
}

interface Entry {
  rule: CompiledRule;
  kind: MatchKind;
  regex: RegExp;
}

export class RuleSet {
  readonly rules: readonly CompiledRule[];
  /** Rules' patterns and clear patterns, in prefilter owner order. */
  private readonly entries: Entry[] = [];
  /** Entries without a usable literal: tried on every record they apply to. */
  private readonly unfiltered: number[] = [];
  private readonly multiLineRules: CompiledRule[] = [];
  private readonly scanner: LiteralScanner;

  /**
   * anySource: rules apply whatever the source (scan-logs: a saved kern.log is the kernel's
   * log, whatever kind of source a rule was written for).
   */
  constructor(inputs: readonly RuleInput[], options: { anySource?: boolean } = {}) {
    const monitors = new Map<NpdMonitor, CompiledMonitor>();
    const compiled = inputs.map((input, index) => compileRule(input, index, monitors));
    this.rules = compiled.map(({ rule }) => {
      if (options.anySource === true) {
        delete rule.kinds;
        delete rule.paths;
      }
      return rule;
    });
    const literals: LiteralOwner[] = [];
    const addEntry = (
      rule: CompiledRule,
      kind: MatchKind,
      regex: RegExp,
      found: string[] | undefined,
    ) => {
      const owner = this.entries.length;
      this.entries.push({ rule, kind, regex });
      if (found === undefined) this.unfiltered.push(owner);
      else for (const text of found) literals.push({ text, owner });
    };
    for (const { rule, matchLiterals, clearLiterals } of compiled) {
      if (rule.multiLine) this.multiLineRules.push(rule);
      else addEntry(rule, 'match', rule.regex, matchLiterals);
      if (rule.clear.pattern !== undefined) {
        addEntry(rule, 'clear', rule.clear.pattern, clearLiterals);
      }
    }
    this.scanner = new LiteralScanner(literals, this.entries.length);
  }

  /** Some records must all be looked at (rules without literals, multi-line NPD rules). */
  get needsEveryRecord(): boolean {
    return this.unfiltered.length > 0 || this.multiLineRules.length > 0;
  }

  /** The prefilter over whole lines of bytes (see LiteralScanner.scanBytes). */
  scanBytes(bytes: Uint8Array, start: number, end: number, visit: LineVisitor): number {
    return this.scanner.scanBytes(bytes, start, end, this.needsEveryRecord, visit);
  }

  /** Rules a record matches; `hits` from scanBytes, or undefined to run the prefilter on its text. */
  evaluate(record: LogRecord, hits?: Int32Array, hitCount?: number): RuleMatch[] {
    // The rules search the message (after the syslog header, the journal fields, the kernel's
    // timestamp): their literals are in it, so that is what the prefilter reads.
    let owners: ArrayLike<number>;
    let count: number;
    if (hits === undefined) {
      owners = this.scanner.scanText(record.message);
      count = owners.length;
    } else {
      owners = hits;
      count = hitCount ?? 0;
    }
    const out: RuleMatch[] = [];
    // Each owner once: the scanner reports an owner once per record, and the unfiltered entries
    // are the ones without literals.
    const tryEntry = (owner: number) => {
      const entry = this.entries[owner];
      if (entry === undefined) return;
      const message = messageFor(entry.rule, record, entry.kind);
      if (message === undefined) return;
      if (!entry.regex.test(message)) return;
      if (entry.kind === 'match' && entry.rule.unless?.test(message) === true) return;
      out.push({ rule: entry.rule, kind: entry.kind });
    };
    for (let i = 0; i < count; i++) tryEntry(owners[i] as number);
    for (const owner of this.unfiltered) tryEntry(owner);
    for (const rule of this.multiLineRules) {
      if (matchesMultiLine(rule, record)) out.push({ rule, kind: 'match' });
    }
    return out;
  }

  /** Identifiers journald must pass for the rules that read it (its source filter). */
  journaldIdentifiers(): string[] {
    const out = new Set<string>();
    for (const rule of this.rules) {
      if (rule.kinds !== undefined && !rule.kinds.has('journald')) continue;
      for (const id of rule.identifiers ?? []) out.add(id);
      for (const id of rule.clear.identifiers ?? []) out.add(id);
    }
    return [...out].sort();
  }

  /** Files NPD filelog monitors read: followed in addition to the configured ones. */
  monitorPaths(): string[] {
    const out = new Set<string>();
    for (const rule of this.rules)
      if (rule.monitor?.spec.path !== undefined) out.add(rule.monitor.spec.path);
    return [...out].sort();
  }
}

/**
 * A rule compiled, with the literals the prefilter needs of its match and clear patterns: each
 * pattern is parsed once, here (parsing every pattern twice at start-up cost megabytes of RSS:
 * see catalogue.ts).
 */
function compileRule(
  input: RuleInput,
  index: number,
  monitors: Map<NpdMonitor, CompiledMonitor>,
): {
  rule: CompiledRule;
  matchLiterals: string[] | undefined;
  clearLiterals: string[] | undefined;
} {
  const { spec } = input;
  const ast = parseRe2(spec.pattern);
  const clearAst = spec.clear?.pattern === undefined ? undefined : parseRe2(spec.clear.pattern);
  const npd = input.monitor !== undefined;
  const multiLine = npd && canMatchNewline(ast);
  let monitor: CompiledMonitor | undefined;
  if (input.monitor !== undefined) {
    monitor = monitors.get(input.monitor);
    if (monitor === undefined) {
      monitor = {
        spec: input.monitor,
        buffer: [],
        keepsBuffer: false,
        ...(input.monitor.messagePattern === undefined
          ? {}
          : { message: re2ToRegExp(parseRe2(input.monitor.messagePattern)) }),
      };
      monitors.set(input.monitor, monitor);
    }
    if (multiLine) monitor.keepsBuffer = true;
  }
  const role = spec.role ?? 'cause';
  const clear = spec.clear ?? {};
  const quiet = clear.quiet === undefined ? undefined : parseDuration(clear.quiet);
  const rule: CompiledRule = {
    index,
    id: spec.id,
    title: spec.title,
    origin: input.origin,
    problem: problemOf(spec),
    role,
    priority: spec.priority ?? (role === 'cause' ? 10 : 0),
    group: spec.group ?? problemOf(spec).toLowerCase(),
    severity: spec.severity,
    clear: {
      requireNodeReady: clear.requireNodeReady === true,
      onReboot: clear.onReboot === true,
      ...(quiet !== undefined
        ? { quietMs: quiet }
        : clear.onReboot === true || clear.pattern !== undefined
          ? {}
          : { quietMs: DEFAULT_QUIET_MS }),
      ...(clearAst === undefined ? {} : { pattern: re2ToRegExp(clearAst) }),
      ...(clear.identifiers === undefined ? {} : { identifiers: new Set(clear.identifiers) }),
    },
    // NPD: pattern + \z, over one message or (multi-line) the monitor's joined buffer.
    regex: re2ToRegExp(ast, { anchorEnd: npd, multiLine }),
    multiLine,
  };
  if (spec.cause !== undefined) rule.cause = spec.cause;
  const remediation =
    spec.remediation ?? (spec.cause === undefined ? undefined : CAUSE_REMEDIATION[spec.cause]);
  if (remediation !== undefined) rule.remediation = remediation;
  if (spec.condition !== undefined) rule.condition = spec.condition;
  if (spec.count !== undefined) {
    rule.count = {
      threshold: spec.count.threshold,
      windowMs: parseDuration(spec.count.window) ?? 0,
    };
  }
  if (spec.sources !== undefined) rule.kinds = new Set(spec.sources);
  if (spec.paths !== undefined) rule.paths = new Set(spec.paths);
  if (spec.identifiers !== undefined) rule.identifiers = new Set(spec.identifiers);
  if (spec.unless !== undefined) rule.unless = re2ToRegExp(parseRe2(spec.unless));
  if (monitor !== undefined) rule.monitor = monitor;
  return {
    rule,
    matchLiterals: multiLine ? undefined : requiredLiterals(ast),
    clearLiterals: clearAst === undefined ? undefined : requiredLiterals(clearAst),
  };
}

/** The text a rule searches in this record, or undefined when the rule does not read it. */
function messageFor(rule: CompiledRule, record: LogRecord, kind: MatchKind): string | undefined {
  if (rule.kinds !== undefined && !rule.kinds.has(record.kind)) return undefined;
  if (rule.paths !== undefined && !(record.kind === 'file' && rule.paths.has(record.source)))
    return undefined;
  const identifiers =
    kind === 'clear' ? (rule.clear.identifiers ?? rule.identifiers) : rule.identifiers;
  if (
    identifiers !== undefined &&
    (record.identifier === undefined || !identifiers.has(record.identifier))
  )
    return undefined;
  const monitor = rule.monitor;
  if (monitor === undefined) return record.message;
  return monitorMessage(monitor, record);
}

/** What an NPD monitor calls the message: filelog extracts it from the line; others use it whole. */
function monitorMessage(monitor: CompiledMonitor, record: LogRecord): string | undefined {
  const { spec } = monitor;
  if (spec.skipList.some((skip) => record.line.includes(skip))) return undefined;
  if (monitor.message === undefined) return record.message.trim();
  const found = monitor.message.exec(record.line);
  if (found === null) return undefined;
  // NPD uses the last submatch (the whole match when there is no group).
  return found[found.length - 1] ?? found[0];
}

/**
 * A multi-line NPD rule: the record's message joins the monitor's buffer (once per record, by
 * the first such rule to see it) and the pattern must match to the end of the joined text.
 */
function matchesMultiLine(rule: CompiledRule, record: LogRecord): boolean {
  const monitor = rule.monitor;
  if (monitor === undefined) return false;
  const message = messageFor(rule, record, 'match');
  if (message === undefined) return false;
  const buffer = monitor.buffer;
  const stamp = bufferStamp.get(monitor);
  if (stamp !== record) {
    bufferStamp.set(monitor, record);
    buffer.push(message);
    if (buffer.length > monitor.spec.bufferSize) buffer.shift();
  }
  return rule.regex.test(buffer.join('\n'));
}

const bufferStamp = new WeakMap<CompiledMonitor, LogRecord>();

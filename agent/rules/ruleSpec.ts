// A log rule as data: the built-in catalogue (builtinRules.json), operators' own rules
// (checks.logs.rules) and node-problem-detector configs (npdConfig.ts) all become these. One
// schema validates all three, so a bad pattern is refused by name before anything runs.
import * as v from 'valibot';
import { duration } from '../config/configSchema.ts';
import { CAUSES } from '../findings/causes.ts';
import type { Cause } from '../findings/causes.ts';
import { SEVERITIES } from '../findings/finding.ts';
import type { Severity } from '../findings/finding.ts';
import { parseRe2 } from './regex/re2Syntax.ts';
import { re2ToRegExp } from './regex/re2ToRegExp.ts';

export const SOURCE_KINDS = ['file', 'journald', 'kmsg'] as const;
export type SourceKind = (typeof SOURCE_KINDS)[number];

export interface RuleSpec {
  /** Stable id: the metric label of node_auditor_log_matches_total and the incident's rule. */
  id: string;
  title: string;
  /** Kinds of source the rule reads (default: all). */
  sources?: SourceKind[];
  /** Only these files (host paths), for file sources. */
  paths?: string[];
  /** Only lines of these programs (syslog tag, SYSLOG_IDENTIFIER; "kernel" for the kernel). */
  identifiers?: string[];
  /** RE2 syntax, searched in the message (the text after "ident[pid]: "). */
  pattern: string;
  /** A line that also matches this is not a match (RE2 has no lookahead). */
  unless?: string;
  /** The NotReady root cause this line shows. */
  cause?: Cause;
  /** PascalCase problem id (Event reason, node_auditor_problem label); default: the cause. */
  problem?: string;
  /** A symptom's cause stands only until a root cause shows up in the same incident. */
  role?: 'cause' | 'symptom';
  /** Within one incident the highest priority rule names the cause (default 10, symptoms 0). */
  priority?: number;
  /** Rules of one group within the correlation window form one incident (default: the problem). */
  group?: string;
  severity: Severity;
  /** Only a burst counts: `threshold` matches within `window` (e.g. 5 restarts in 20m). */
  count?: { threshold: number; window: string };
  /**
   * When the incident ends: a line matching `pattern` (of these identifiers); or `quiet` with no
   * new match (and, with requireNodeReady, the node Ready again); or, with onReboot, a boot of
   * the host after the last match (kernel states such as a read-only remount last until then).
   * Default: quiet 10m.
   */
  clear?: {
    pattern?: string;
    identifiers?: string[];
    quiet?: string;
    requireNodeReady?: boolean;
    onReboot?: boolean;
  };
  /** What to do about it (default: the cause's remediation). */
  remediation?: string;
  /** NodeCondition the incident sets True (node-problem-detector's "permanent" rules). */
  condition?: string;
  /** Lines it must and must not match: the catalogue's tests run every one. */
  examples?: { match: string[]; noMatch: string[] };
}

function re2Pattern(what: string) {
  return v.pipe(
    v.string(),
    v.minLength(1, `${what} must not be empty`),
    v.check(
      (text) => compileError(text) === undefined,
      (issue) => `invalid ${what}: ${compileError(issue.input) ?? ''}`,
    ),
  );
}

function compileError(pattern: string): string | undefined {
  try {
    re2ToRegExp(parseRe2(pattern));
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

const pascalCase = v.pipe(
  v.string(),
  v.regex(/^[A-Z][A-Za-z0-9]*$/, 'must be PascalCase (an Event reason)'),
);

const names = v.pipe(v.array(v.pipe(v.string(), v.minLength(1))), v.minLength(1));

export const ruleSpecSchema = v.pipe(
  v.strictObject({
    id: v.pipe(
      v.string(),
      v.regex(
        /^[a-z0-9][a-z0-9._/-]*$/,
        'must be lower case letters, digits and . _ / - (a metric label value)',
      ),
    ),
    title: v.pipe(v.string(), v.minLength(1)),
    sources: v.optional(v.pipe(v.array(v.picklist(SOURCE_KINDS)), v.minLength(1))),
    paths: v.optional(
      v.pipe(
        v.array(v.pipe(v.string(), v.startsWith('/', 'must be an absolute path'))),
        v.minLength(1),
      ),
    ),
    identifiers: v.optional(names),
    pattern: re2Pattern('pattern'),
    unless: v.optional(re2Pattern('unless pattern')),
    cause: v.optional(
      v.picklist(
        Object.keys(CAUSES) as Cause[],
        `must be one of ${Object.keys(CAUSES).join(', ')}`,
      ),
    ),
    problem: v.optional(pascalCase),
    role: v.optional(v.picklist(['cause', 'symptom'])),
    priority: v.optional(v.pipe(v.number(), v.integer(), v.minValue(-1000), v.maxValue(1000))),
    group: v.optional(v.pipe(v.string(), v.regex(/^[a-z0-9][a-z0-9._/-]*$/, 'must be an id'))),
    severity: v.picklist(SEVERITIES),
    count: v.optional(
      v.strictObject({
        threshold: v.pipe(v.number(), v.integer(), v.minValue(2), v.maxValue(10_000)),
        window: duration(1000),
      }),
    ),
    clear: v.optional(
      v.strictObject({
        pattern: v.optional(re2Pattern('clear pattern')),
        identifiers: v.optional(names),
        quiet: v.optional(duration(1000)),
        requireNodeReady: v.optional(v.boolean()),
        onReboot: v.optional(v.boolean()),
      }),
    ),
    remediation: v.optional(v.pipe(v.string(), v.minLength(1))),
    condition: v.optional(pascalCase),
    examples: v.optional(
      v.strictObject({
        match: v.array(v.string()),
        noMatch: v.optional(v.array(v.string()), []),
      }),
    ),
  }),
  v.check(
    (rule) => rule.cause !== undefined || rule.problem !== undefined,
    'a rule needs a cause or a problem',
  ),
);

/** The id a rule's incidents and findings go by: its problem, else its cause. */
export function problemOf(rule: Pick<RuleSpec, 'cause' | 'problem'>): string {
  return rule.problem ?? rule.cause ?? 'LogProblem';
}

// checks.logs.*: which logs to follow, which rules apply. Validated with the rest of the
// configuration: a rule with a bad pattern, an unknown rule id to disable, or a node-problem-
// detector file that does not load rejects the configuration by name (at start: exit 2; on a
// reload: the old configuration stays).
import * as v from 'valibot';
import { duration, hostPath } from '../config/configSchema.ts';
import { builtinRuleIds, loadNpdRules } from '../rules/catalogue.ts';
import { ruleSpecSchema } from '../rules/ruleSpec.ts';

const fileEntry = v.union([
  v.pipe(
    hostPath,
    v.transform((path): { path: string; format: 'syslog' | 'plain'; identifier?: string } => ({
      path,
      format: 'syslog',
    })),
  ),
  v.strictObject({
    path: hostPath,
    /** syslog: "Mmm dd hh:mm:ss host ident[pid]: message"; plain: the whole line is the message. */
    format: v.optional(v.picklist(['syslog', 'plain']), 'syslog'),
    /** For plain files: whose lines these are (e.g. kubelet for /var/log/kubelet.log). */
    identifier: v.optional(v.pipe(v.string(), v.minLength(1))),
  }),
]);

const DEFAULT_JOURNAL_IDENTIFIERS = [
  'kubelet',
  'containerd',
  'dockerd',
  'crio',
  'systemd',
  'kernel',
];
const DEFAULT_JOURNAL_UNITS = [
  'kubelet.service',
  'containerd.service',
  'docker.service',
  'crio.service',
  'cri-docker.service',
];

const ruleList = v.pipe(
  v.array(ruleSpecSchema),
  v.check(
    (rules) => new Set(rules.map((r) => r.id)).size === rules.length,
    'rule ids must be unique',
  ),
  v.check(
    (rules) => !rules.some((r) => builtinRuleIds().includes(r.id)),
    (issue) => {
      const taken = issue.input.find((r) => builtinRuleIds().includes(r.id))?.id ?? '';
      return `rule id "${taken}" is a built-in rule's: choose another id (and list "${taken}" in disabledRules to replace it)`;
    },
  ),
);

export const logOptions = {
  /** Syslog-style files to follow (host paths); a missing one is waited for. */
  files: v.optional(v.array(fileEntry), [
    '/var/log/syslog',
    '/var/log/messages',
    '/var/log/kern.log',
  ]),
  journal: v.optional(
    v.strictObject({
      enabled: v.optional(v.boolean(), true),
      /** Host journal directories, tried in order: the first holding journal files is read. */
      directories: v.optional(v.array(hostPath), ['/var/log/journal', '/run/log/journal']),
      /** Programs (SYSLOG_IDENTIFIER) to read; the rules' own identifiers are added. */
      identifiers: v.optional(
        v.array(v.pipe(v.string(), v.minLength(1))),
        DEFAULT_JOURNAL_IDENTIFIERS,
      ),
      /** Units to read whatever their lines' identifier. */
      units: v.optional(v.array(v.pipe(v.string(), v.minLength(1))), DEFAULT_JOURNAL_UNITS),
      /** The journalctl to run (it must read the host's journal format). */
      command: v.optional(v.pipe(v.string(), v.minLength(1)), 'journalctl'),
    }),
    {},
  ),
  kmsg: v.optional(
    v.strictObject({
      enabled: v.optional(v.boolean(), true),
      path: v.optional(hostPath, '/dev/kmsg'),
    }),
    {},
  ),
  /** Longer lines are cut to this many bytes (and counted). */
  maxLineBytes: v.optional(
    v.pipe(v.number(), v.integer(), v.minValue(256), v.maxValue(1024 * 1024)),
    16 * 1024,
  ),
  /** At first start (no saved position), how far back to read: incidents just before start count. */
  lookback: v.optional(duration(0), '10m'),
  /** Distinct lines kept as evidence per incident. */
  maxEvidence: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(100)), 10),
  /** Operators' own rules (RE2 patterns; see README "Log rules"). */
  rules: v.optional(ruleList, []),
  /** Built-in rules to turn off, by id. */
  disabledRules: v.optional(
    v.pipe(
      v.array(v.string()),
      v.check(
        (ids) => ids.every((id) => builtinRuleIds().includes(id)),
        (issue) =>
          `unknown built-in rule "${issue.input.find((id) => !builtinRuleIds().includes(id)) ?? ''}" (built-in rules: ${builtinRuleIds().join(', ')})`,
      ),
    ),
    [],
  ),
  /** node-problem-detector system-log-monitor JSON files, loaded unchanged (paths on the agent's filesystem). */
  npdConfigs: v.optionalAsync(
    v.pipeAsync(
      v.array(v.pipe(v.string(), v.minLength(1))),
      v.rawCheckAsync(async ({ dataset, addIssue }) => {
        if (!dataset.typed) return;
        try {
          await loadNpdRules(dataset.value);
        } catch (error) {
          addIssue({ message: error instanceof Error ? error.message : String(error) });
        }
      }),
    ),
    [],
  ),
};

export type LogSettings = v.InferOutput<v.ObjectSchemaAsync<typeof logOptions, undefined>>;
export type FileSetting = LogSettings['files'][number];

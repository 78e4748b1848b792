// node-problem-detector `system-log-monitor` configuration files (kernel-monitor.json,
// docker-monitor.json, ...), loaded unchanged: each becomes a monitor (which log it reads, how it
// finds the message) and rules.
//
// NPD's semantics, kept: a pattern is Go RE2, compiled as `pattern + "\z"` and searched in the
// last `bufferSize` messages of the monitor joined by "\n" (pkg/systemlogmonitor/log_buffer.go),
// so it must match up to the end of the newest message, and may span several. A "temporary"
// rule is an Event; a "permanent" one sets its `condition`. Ours, added: incidents clear
// (temporary: after 10 quiet minutes; permanent: when the host reboots, as NPD's conditions only
// reset when NPD restarts), and every problem is also a finding and a metric.
import * as v from 'valibot';
import type { RuleSpec, SourceKind } from './ruleSpec.ts';

export interface NpdMonitor {
  /** "npd/<source>" from the config's `source` (e.g. "npd/kernel-monitor"). */
  id: string;
  file: string;
  kind: SourceKind;
  /** filelog: the file it follows (logPath). */
  path?: string;
  /** journald: the SYSLOG_IDENTIFIER it reads (pluginConfig.source). */
  identifier?: string;
  /** filelog: pluginConfig.message, RE2; its last capture group is the message. */
  messagePattern?: string;
  bufferSize: number;
  /** Lines containing any of these are skipped (skipList). */
  skipList: string[];
  /** The conditions' healthy reason and message (for NodeConditions). */
  conditions: { type: string; reason: string; message: string }[];
}

export interface NpdRule {
  spec: RuleSpec;
  monitor: NpdMonitor;
}

const npdConfigSchema = v.looseObject({
  plugin: v.picklist(['filelog', 'journald', 'kmsg'], 'plugin must be filelog, journald or kmsg'),
  pluginConfig: v.optional(v.record(v.string(), v.string())),
  logPath: v.optional(v.string()),
  lookback: v.optional(v.string()),
  bufferSize: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(1000))),
  source: v.pipe(v.string(), v.minLength(1, 'source must not be empty')),
  skipList: v.optional(v.array(v.string())),
  conditions: v.optional(
    v.array(
      v.looseObject({
        type: v.string(),
        reason: v.optional(v.string(), ''),
        message: v.optional(v.string(), ''),
      }),
    ),
  ),
  rules: v.array(
    v.looseObject({
      type: v.picklist(['temporary', 'permanent'], 'rule type must be temporary or permanent'),
      condition: v.optional(v.string()),
      reason: v.pipe(v.string(), v.minLength(1, 'reason must not be empty')),
      pattern: v.string(),
    }),
  ),
});

/**
 * Parse one NPD config (its text, and its path for messages and ids). Throws an Error whose
 * message names what is wrong; rule patterns are validated later, with every other rule.
 */
export function parseNpdConfig(text: string, file: string): NpdRule[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (error) {
    throw new Error(
      `${file}: not JSON: ${error instanceof Error ? error.message : String(error)}`,
      {
        cause: error,
      },
    );
  }
  const parsed = v.safeParse(npdConfigSchema, doc);
  if (!parsed.success) {
    const issue = parsed.issues[0];
    const where = v.getDotPath(issue) ?? '(top level)';
    throw new Error(`${file}: ${where}: ${issue.message}`);
  }
  const config = parsed.output;
  if (config.plugin === 'filelog') {
    const message = config.pluginConfig?.message;
    if (config.logPath === undefined || message === undefined || message === '') {
      throw new Error(`${file}: a filelog monitor needs logPath and pluginConfig.message`);
    }
  }
  if (config.plugin === 'journald' && (config.pluginConfig?.source ?? '') === '') {
    // As NPD: an empty source is not allowed for journald.
    throw new Error(`${file}: a journald monitor needs pluginConfig.source (a SYSLOG_IDENTIFIER)`);
  }
  const sourceId = slug(config.source);
  const monitor: NpdMonitor = {
    id: `npd/${sourceId}`,
    file,
    kind: config.plugin === 'filelog' ? 'file' : config.plugin,
    bufferSize: config.bufferSize ?? 10,
    skipList: (config.skipList ?? []).filter((s) => s !== ''),
    conditions: (config.conditions ?? []).map((c) => ({
      type: c.type,
      reason: c.reason,
      message: c.message,
    })),
  };
  if (config.plugin === 'filelog') {
    monitor.path = config.logPath ?? '';
    monitor.messagePattern = config.pluginConfig?.message ?? '';
  }
  if (config.plugin === 'journald') monitor.identifier = config.pluginConfig?.source ?? '';

  const used = new Map<string, number>();
  return config.rules.map((rule) => {
    const base = `${monitor.id}/${slug(rule.reason)}`;
    const n = (used.get(base) ?? 0) + 1;
    used.set(base, n);
    const id = n === 1 ? base : `${base}-${n}`;
    const permanent = rule.type === 'permanent';
    const spec: RuleSpec = {
      id,
      title: `${rule.reason} (node-problem-detector rule from ${file})`,
      sources: [monitor.kind],
      pattern: rule.pattern,
      problem: pascal(rule.reason),
      severity: 'warning',
      group: id,
      clear: permanent ? { onReboot: true } : { quiet: '10m' },
    };
    if (monitor.path !== undefined) spec.paths = [monitor.path];
    if (monitor.identifier !== undefined) spec.identifiers = [monitor.identifier];
    if (permanent && rule.condition !== undefined && rule.condition !== '') {
      spec.condition = pascal(rule.condition);
    }
    return { spec, monitor };
  });
}

function slug(text: string): string {
  const s = text
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[^a-z0-9]+|-+$/g, '');
  return s === '' ? 'monitor' : s;
}

/** NPD reasons are PascalCase already; anything else is made so (it becomes an Event reason). */
function pascal(text: string): string {
  if (/^[A-Z][A-Za-z0-9]*$/.test(text)) return text;
  const words = text.split(/[^A-Za-z0-9]+/).filter((w) => w !== '');
  const joined = words.map((w) => (w[0] ?? '').toUpperCase() + w.slice(1)).join('');
  return /^[A-Z]/.test(joined) ? joined : `Npd${joined}`;
}

// The one configuration schema (valibot: the same job as zod at a sixth of the memory, which
// matters for a DaemonSet on every node). Embedded defaults, validation and the effective config
// all come from here. Each check contributes checks.<id> (enabled, interval | cron, timeout and
// its own options), so a new check is configurable without touching this file.
import * as v from 'valibot';
import type { Check } from '../checks/check.ts';
import { parseDuration } from './duration.ts';
import { parseListenAddress } from './listenAddress.ts';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** setTimeout's limit (2^31 - 1 ms, about 24.8 days): beyond it Node fires after 1 ms. */
const MAX_TIMER_MS = 2_147_483_647;

export function duration(min: number) {
  return v.pipe(
    v.string(),
    v.check(
      (text) => {
        const ms = parseDuration(text);
        return ms !== undefined && ms >= min && ms <= MAX_TIMER_MS;
      },
      (issue) => {
        const ms = parseDuration(issue.input);
        if (ms === undefined)
          return `invalid duration ${JSON.stringify(issue.input)} (use e.g. 500ms, 30s, 5m, 1h)`;
        return ms < min ? `must be at least ${min}ms` : 'must be at most 24d';
      },
    ),
  );
}

/**
 * node-cron is loaded only when a check is scheduled by cron: on import it pulls in
 * child_process and crypto, which every node would pay for in RSS otherwise. Hence the async
 * schema (valibot checks cannot await in a sync pipe).
 */
const cronExpression = v.pipeAsync(
  v.string(),
  v.rawCheckAsync(async ({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    const { validateDetailed } = await import('node-cron');
    const result = validateDetailed(dataset.value);
    if (result.valid) return;
    const why = result.errors.map((e) => `${e.field}: ${e.message}`).join('; ');
    addIssue({
      message: `invalid cron expression ${JSON.stringify(dataset.value)}${why === '' ? '' : ` (${why})`}`,
    });
  }),
);

/** Kubernetes node names are DNS-1123 subdomains. */
const nodeName = v.pipe(
  v.string(),
  v.maxLength(253, 'must be at most 253 characters'),
  v.regex(
    /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/,
    'must be a valid Kubernetes node name (lower case letters, digits, "-" and ".")',
  ),
);

export interface CheckSettings {
  enabled: boolean;
  interval: string;
  cron?: string | undefined;
  timeout: string;
  [option: string]: unknown;
}

export interface Config {
  hostRoot: string;
  listen: string;
  nodeName: string;
  kubeconfig?: string | undefined;
  log: { level: LogLevel };
  checks: Record<string, CheckSettings>;
}

export function checkSettingsSchema(check: Check) {
  return v.strictObjectAsync({
    enabled: v.optional(v.boolean(), check.defaults.enabled),
    interval: v.optional(duration(1000), check.defaults.interval),
    /** A cron expression (node-cron syntax, optional seconds field); replaces interval. */
    cron: v.optionalAsync(cronExpression),
    timeout: v.optional(duration(100), check.defaults.timeout),
    ...check.options,
  });
}

export function configSchema(checks: readonly Check[]) {
  const checkEntries = Object.fromEntries(
    checks.map((check) => [check.id, v.optionalAsync(checkSettingsSchema(check), {})]),
  );
  return v.strictObjectAsync({
    /** A relative path is relative to the working directory (flag, env) or the config file. */
    hostRoot: v.optional(v.pipe(v.string(), v.minLength(1, 'must not be empty')), '/'),
    listen: v.optional(
      v.pipe(
        v.string(),
        v.check(
          (text) => parseListenAddress(text) !== undefined,
          'must be HOST:PORT, e.g. 0.0.0.0:9746 or [::]:9746',
        ),
      ),
      '0.0.0.0:9746',
    ),
    /** Default: $NODE_NAME, else this host's name. */
    nodeName: v.optional(nodeName),
    kubeconfig: v.optional(v.pipe(v.string(), v.minLength(1, 'must not be empty'))),
    log: v.optional(v.strictObject({ level: v.optional(v.picklist(LOG_LEVELS), 'info') }), {}),
    checks: v.optionalAsync(v.strictObjectAsync(checkEntries), {}),
  });
}

export type ConfigSchema = ReturnType<typeof configSchema>;

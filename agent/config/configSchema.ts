// The one configuration schema (valibot: the same job as zod at a sixth of the memory, which
// matters for a DaemonSet on every node). Embedded defaults, validation and the effective config
// all come from here. Each check contributes checks.<id> (enabled, interval | cron, timeout and
// its own options), so a new check is configurable without touching this file.
import * as v from 'valibot';
import type { Check } from '../checks/check.ts';
import { parseDuration } from './duration.ts';
import { parseListenAddress } from './listenAddress.ts';
import { count, crossField, duration } from './schemaParts.ts';
import { remediationSchema } from './remediationSchema.ts';
import type { RemediationSettings } from './remediationSchema.ts';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export { duration };

/** A path as the host sees it (read under --host-root): absolute. */
export const hostPath = v.pipe(v.string(), v.startsWith('/', 'must be an absolute host path'));

/** A percentage option (1-100) with its default. */
export function percent(fallback: number) {
  return v.optional(v.pipe(v.number(), v.minValue(1), v.maxValue(100)), fallback);
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

export interface KubernetesSettings {
  namespace?: string | undefined;
  requestTimeout: string;
  kubeletHealthzUrl: string;
  events: { enabled: boolean; burst: number; refillInterval: string; queueSize: number };
  nodeConditions: { enabled: boolean; heartbeatInterval: string };
  leaderElection: {
    enabled: boolean;
    leaseName: string;
    leaseDuration: string;
    retryPeriod: string;
  };
}

export interface Config {
  hostRoot: string;
  listen: string;
  nodeName: string;
  kubeconfig?: string | undefined;
  stateDir: string;
  log: { level: LogLevel };
  kubernetes: KubernetesSettings;
  remediation: RemediationSettings;
  checks: Record<string, CheckSettings>;
}

const kubernetesSchema = v.strictObject({
  /** Namespace of the leader Lease. Default: the ServiceAccount's, else $POD_NAMESPACE, else node-auditor. */
  namespace: v.optional(
    v.pipe(v.string(), v.regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a namespace name')),
  ),
  requestTimeout: v.optional(duration(100), '10s'),
  /** Node readiness when there is no API: the local kubelet's healthz. */
  kubeletHealthzUrl: v.optional(
    v.pipe(v.string(), v.url('must be a URL')),
    'http://127.0.0.1:10248/healthz',
  ),
  events: v.optional(
    v.strictObject({
      enabled: v.optional(v.boolean(), true),
      /** client-go's event spam filter: 25 at once, then one per 5 minutes per object. */
      burst: count(1, 1000, 25),
      refillInterval: v.optional(duration(1000), '5m'),
      /** Pending Events kept while the API is down; the oldest beyond this are dropped (counted). */
      queueSize: count(1, 4096, 1000),
    }),
    {},
  ),
  nodeConditions: v.optional(
    v.strictObject({
      enabled: v.optional(v.boolean(), false),
      /** As the kubelet's and node-problem-detector's: a write of the whole status per period. */
      heartbeatInterval: v.optional(duration(1000), '5m'),
    }),
    {},
  ),
  leaderElection: v.optional(
    v.pipe(
      v.strictObject({
        enabled: v.optional(v.boolean(), true),
        leaseName: v.optional(
          v.pipe(v.string(), v.regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'must be an object name')),
          'node-auditor-leader',
        ),
        /** A holder that stops renewing is replaced after this long. */
        leaseDuration: v.optional(duration(2000), '60s'),
        /** How often the holder renews and the others look (with jitter). */
        retryPeriod: v.optional(duration(500), '20s'),
      }),
      // the holder steps down at 2/3 of the lease if it could not renew: it must try before that
      crossField(
        ['retryPeriod', 'leaseDuration'],
        (le) =>
          (parseDuration(le.retryPeriod) ?? 0) < ((parseDuration(le.leaseDuration) ?? 0) * 2) / 3,
        'retryPeriod must be shorter than two thirds of leaseDuration (the renew deadline)',
      ),
    ),
    {},
  ),
});

export function checkSettingsSchema(check: Check) {
  const settings = v.strictObjectAsync({
    enabled: v.optional(v.boolean(), check.defaults.enabled),
    interval: v.optional(duration(1000), check.defaults.interval),
    /** A cron expression (node-cron syntax, optional seconds field); replaces interval. */
    cron: v.optionalAsync(cronExpression),
    timeout: v.optional(duration(100), check.defaults.timeout),
    ...check.options,
  });
  // A check's own time limit for one step (probeTimeout, requestTimeout) must end before the
  // run's: else a slow runtime or server fails the whole run ("did not finish within its
  // timeout") instead of being reported as what it is. (A built-in step limit is lowered to fit
  // a shorter timeout before this: loadConfig's fitStepLimits.)
  return v.pipeAsync(
    settings,
    ...stepLimitKeys(check).map((key) =>
      crossField<v.InferOutput<typeof settings>>(
        [key, 'timeout'],
        (section) =>
          (parseDuration(String((section as Record<string, unknown>)[key])) ?? 0) <
          (parseDuration(section.timeout) ?? 0),
        `${key} must be shorter than timeout (a run is abandoned at timeout, before a slower ${key === 'probeTimeout' ? 'probe' : 'request'} could be reported)`,
      ),
    ),
  );
}

/** A check's options that limit one step of its run (probeTimeout, requestTimeout). */
export function stepLimitKeys(check: Check): string[] {
  return Object.keys(check.options).filter((key) => /.Timeout$/.test(key));
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
    /** An explicit kubeconfig; without it: in-cluster, else $KUBECONFIG, else no Kubernetes. */
    kubeconfig: v.optional(v.pipe(v.string(), v.minLength(1, 'must not be empty'))),
    /**
     * Where `run` keeps what must survive a restart (log positions and incidents, Events sent,
     * remediation history); a local path, not under hostRoot. Relative: as hostRoot.
     */
    stateDir: v.optional(
      v.pipe(v.string(), v.minLength(1, 'must not be empty')),
      '/var/lib/node-auditor',
    ),
    log: v.optional(v.strictObject({ level: v.optional(v.picklist(LOG_LEVELS), 'info') }), {}),
    kubernetes: v.optional(kubernetesSchema, {}),
    /** Off by default: see agent/config/remediationSchema.ts. */
    remediation: v.optionalAsync(remediationSchema(), {}),
    checks: v.optionalAsync(v.strictObjectAsync(checkEntries), {}),
  });
}

export type ConfigSchema = ReturnType<typeof configSchema>;

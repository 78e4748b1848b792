// The `remediation` section: off unless an action is enabled by name, dry run unless
// `mode: enforce`, and every safety gate on by default (issue 7, DESIGN.md "Remediation").
import * as v from 'valibot';
import { count, duration } from './schemaParts.ts';

export const REMEDIATION_ACTIONS = [
  'inotify-limits',
  'kernel-networking',
  'restart-kubelet',
] as const;
export type RemediationActionId = (typeof REMEDIATION_ACTIONS)[number];

export interface RemediationSettings {
  mode: 'dryRun' | 'enforce';
  actions: {
    'inotify-limits': {
      enabled: boolean;
      cooldown: string;
      maxUserWatches: number;
      maxUserInstances: number;
    };
    'kernel-networking': { enabled: boolean; cooldown: string };
    'restart-kubelet': {
      enabled: boolean;
      cooldown: string;
      unit: string;
      minUptime: string;
      recentFix: string;
      readyTimeout: string;
    };
  };
  lock: { concurrency: number; ttl: string };
  stormGuard: { maxUnhealthyPercent: number };
  rateLimit: { maxActionsPerHour: number };
  maintenanceWindow?: { cron: string; timeZone: string } | undefined;
  allowControlPlane: boolean;
  blockingAlerts?: { prometheusUrl: string; alerts: string[]; timeout: string } | undefined;
  dbusSocket: string;
}

/**
 * The maintenance window: a five-field cron expression whose minutes are the open ones, in an
 * IANA time zone. Checked by the gate's own validation, loaded only when a window is set.
 */
const maintenanceWindow = v.pipeAsync(
  v.strictObject({
    cron: v.string(),
    timeZone: v.optional(v.string(), 'UTC'),
  }),
  v.rawCheckAsync(async ({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    const { validateMaintenanceWindow } = await import('../remediation/gates/maintenanceWindow.ts');
    const problem = await validateMaintenanceWindow({
      schedule: dataset.value.cron,
      timeZone: dataset.value.timeZone,
    });
    if (problem !== undefined) addIssue({ message: problem });
  }),
);

export function remediationSchema() {
  return v.strictObjectAsync({
    /** dryRun: decide and report exactly as enforce would, change nothing. */
    mode: v.optional(v.picklist(['dryRun', 'enforce']), 'dryRun'),
    actions: v.optional(
      v.strictObject({
        'inotify-limits': v.optional(
          v.strictObject({
            enabled: v.optional(v.boolean(), false),
            cooldown: v.optional(duration(60_000), '1h'),
            /** The sysctl profile's fix (README, "The sysctl check"); never lowered. */
            maxUserWatches: count(8192, 2_147_483_647, 1_048_576),
            maxUserInstances: count(128, 2_147_483_647, 8192),
          }),
          {},
        ),
        'kernel-networking': v.optional(
          v.strictObject({
            enabled: v.optional(v.boolean(), false),
            cooldown: v.optional(duration(60_000), '1h'),
          }),
          {},
        ),
        'restart-kubelet': v.optional(
          v.strictObject({
            enabled: v.optional(v.boolean(), false),
            /** Between two restarts of the kubelet by this agent. */
            cooldown: v.optional(duration(60_000), '30m'),
            unit: v.optional(
              v.pipe(
                v.string(),
                v.regex(/^[\w@.\\:-]+\.service$/, 'must be a systemd service unit name'),
              ),
              'kubelet.service',
            ),
            /** A kubelet running, or starting, for less than this is left alone (restartKubelet.ts). */
            minUptime: v.optional(duration(0), '10m'),
            /** Only after another action fixed a cause the restart clears, within this long. */
            recentFix: v.optional(duration(1000), '15m'),
            /** How long to wait for healthz and the Node's Ready after the restart. */
            readyTimeout: v.optional(duration(1000), '5m'),
          }),
          {},
        ),
      }),
      {},
    ),
    lock: v.optional(
      v.strictObject({
        /** Nodes acting at once, cluster-wide (coordination.k8s.io Leases). */
        concurrency: count(1, 100, 1),
        /** A holder that stops renewing (a dead node) blocks no one longer than this. */
        ttl: v.optional(duration(10_000), '5m'),
      }),
      {},
    ),
    stormGuard: v.optional(
      v.strictObject({
        /** No action while more than this share of the cluster's nodes is NotReady. */
        maxUnhealthyPercent: v.optional(v.pipe(v.number(), v.minValue(0), v.maxValue(100)), 20),
      }),
      {},
    ),
    rateLimit: v.optional(v.strictObject({ maxActionsPerHour: count(1, 60, 3) }), {}),
    /** Unset: any time. Set: only during the minutes the cron expression matches. */
    maintenanceWindow: v.optionalAsync(maintenanceWindow),
    /** Nodes labelled node-role.kubernetes.io/control-plane (or master) are left alone unless true. */
    allowControlPlane: v.optional(v.boolean(), false),
    /** Unset: no Prometheus consulted. Set: no action while one of these alerts fires (as kured). */
    blockingAlerts: v.optional(
      v.strictObject({
        prometheusUrl: v.pipe(v.string(), v.url('must be a URL')),
        alerts: v.pipe(
          v.array(v.pipe(v.string(), v.minLength(1))),
          v.minLength(1, 'name at least one alert'),
        ),
        timeout: v.optional(duration(100), '10s'),
      }),
    ),
    /** The host's D-Bus system bus (host path, under --host-root): restart-kubelet, br_netfilter. */
    dbusSocket: v.optional(
      v.pipe(v.string(), v.startsWith('/', 'must be an absolute host path')),
      '/run/dbus/system_bus_socket',
    ),
  });
}

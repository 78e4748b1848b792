// restart-kubelet: what the seeds do by hand after raising the inotify limits
// (`systemctl restart kubelet`), through systemd's D-Bus API on the host's system bus; then
// wait until the kubelet answers healthz and the Node is Ready again, and say how it went.
// The engine calls for it only when the kubelet is unhealthy, a cause it cannot recover from by
// itself is reported, and the action that removes it just ran (remediationEngine.ts restartTrigger).
import { durationMs } from '../../config/duration.ts';
import type { RemediationSettings } from '../../config/remediationSchema.ts';
import { describeError } from '../../errors.ts';
import type { Change } from '../decisions.ts';
import type { ActionRunner } from '../remediationEngine.ts';
import type { SystemdClient, UnitState } from '../systemd.ts';

export interface RestartKubeletDeps {
  settings(): RemediationSettings;
  /** A fresh connection to the host's systemd (closed after each use). */
  connect(): Promise<SystemdClient>;
  /** healthz of the kubelet as the agent probes it; true once it answers ok. */
  kubeletHealthy(): boolean | undefined;
  /** The own Node's Ready condition (undefined without a Node watch: healthz alone decides). */
  nodeReady(): boolean | undefined;
  /** Wall-clock milliseconds (tests drive it). */
  now?(): number;
  /** How often to look at the kubelet's health while waiting (default 1 s). */
  pollMs?: number;
}

export function restartKubeletRunner(deps: RestartKubeletDeps): ActionRunner {
  const now = (): number => (deps.now === undefined ? Date.now() : deps.now());
  const settings = () => deps.settings().actions['restart-kubelet'];
  const withSystemd = async <T>(use: (systemd: SystemdClient) => Promise<T>): Promise<T> => {
    const systemd = await deps.connect();
    try {
      return await use(systemd);
    } finally {
      systemd.close();
    }
  };
  return {
    async plan() {
      const { unit, minUptime } = settings();
      const state = await withSystemd((systemd) => systemd.unitState(unit));
      if (state.loadState !== 'loaded')
        throw new Error(`${unit} is ${state.loadState} on this host (restart-kubelet.unit)`);
      // A kubelet that (re)started a moment ago may still be coming up: restarting it again
      // would only reset its start-up (the "only after kubelet has been up longer"):
      // it is left alone while it has been active, or starting, for less than minUptime. One
      // starting for longer is stuck (a Type=notify unit that never says it is ready, with
      // TimeoutStartSec=0 as k3s's installer writes it, stays "activating (start)" for ever)
      // and is restarted. One that is not running has no start-up to cut short: crash-looping
      // (between systemd's starts, each failing while the limits were low: "auto-restart", and
      // "auto-restart-queued" since systemd 254, both activating), failed (systemd gave up) or
      // inactive. Restarting it only starts it now, with the fix.
      const minMs = durationMs(minUptime);
      const betweenRestarts = state.subState.startsWith('auto-restart');
      const starting = state.activeState === 'activating' && !betweenRestarts;
      const running = state.activeState === 'active' || state.activeState === 'reloading';
      if (starting || running) {
        const since = running ? state.activeEnterTimestampUs : state.inactiveExitTimestampUs;
        // no time known: as if it had just begun
        const forMs = since > 0n ? now() - usToMs(since) : 0;
        if (forMs < minMs) {
          return {
            skip: running
              ? `${unit} has been active for only ${seconds(forMs)}; it is restarted only once up for ${minUptime} (restart-kubelet.minUptime)`
              : `${unit} has been starting (${describeState(state)}) for only ${seconds(forMs)}; it is restarted only if still starting after ${minUptime} (restart-kubelet.minUptime)`,
          };
        }
      }
      return [{ what: unit, before: describeState(state), after: 'restarted' }];
    },
    // as apply says it on success, but for how long the kubelet took to come back
    expectedReason() {
      const { unit, readyTimeout } = settings();
      return `${unit} restarted; healthz ok and the Node Ready awaited for up to ${readyTimeout}`;
    },
    async apply(signal) {
      const { unit, readyTimeout } = settings();
      // the agent stopping or the lock lost since the engine looked: another node may act now
      const stoppedEarly = stopReason(signal);
      if (stoppedEarly !== undefined) {
        return {
          outcome: 'skipped',
          reason: `${unit} is not restarted: ${stoppedEarly}`,
          changes: [],
        };
      }
      // The gates and the lock took time: a kubelet that came back meanwhile is left alone.
      if (deps.kubeletHealthy() === true && deps.nodeReady() !== false) {
        return {
          outcome: 'skipped',
          reason: `the kubelet is healthy again: ${unit} is not restarted`,
          changes: [],
        };
      }
      const timeoutMs = durationMs(readyTimeout);
      const started = now();
      // what was seen before the restart, also when the restart then fails
      const seen: { before?: UnitState } = {};
      let before: UnitState;
      let after: UnitState;
      let result: string;
      try {
        ({ before, result, after } = await withSystemd(async (systemd) => {
          const stateBefore = await systemd.unitState(unit);
          seen.before = stateBefore;
          const job = await systemd.restartUnit(unit, { timeoutMs, signal });
          return { before: stateBefore, result: job.result, after: await systemd.unitState(unit) };
        }));
      } catch (error) {
        // A timeout or an abort does not stop systemd's job: the kubelet may still be restarting.
        const why = stopReason(signal) ?? describeError(error);
        return {
          outcome: 'failed',
          reason: `could not restart ${unit}, or not see it end: ${why}`,
          changes:
            seen.before === undefined
              ? []
              : [{ what: unit, before: describeState(seen.before), after: 'unknown' }],
        };
      }
      const changes: Change[] = [
        { what: unit, before: describeState(before), after: describeState(after) },
      ];
      if (result !== 'done') {
        return {
          outcome: 'failed',
          reason: `systemd's restart job for ${unit} ended "${result}"`,
          changes,
        };
      }
      const healthy = await waitFor(
        () => deps.kubeletHealthy() === true && deps.nodeReady() !== false,
        started + timeoutMs,
        now,
        deps.pollMs ?? 1000,
        signal,
      );
      const stopped = stopReason(signal);
      if (stopped !== undefined) {
        return {
          outcome: 'failed',
          reason: `${unit} was restarted; stopped waiting for the kubelet to be healthy: ${stopped}`,
          changes,
        };
      }
      if (!healthy) {
        const health =
          deps.kubeletHealthy() === true ? 'healthz ok but the Node not Ready' : 'healthz not ok';
        return {
          outcome: 'failed',
          reason: `${unit} was restarted, but the kubelet is not healthy after ${readyTimeout} (${health})`,
          changes,
        };
      }
      return {
        outcome: 'applied',
        reason: `${unit} restarted; healthz ok and the Node Ready after ${seconds(now() - started)}`,
        changes,
      };
    },
  };
}

/** Why the action was told to stop (the agent stopping, the lock lost), if it was. */
function stopReason(signal: AbortSignal): string | undefined {
  return signal.aborted ? describeError(signal.reason) : undefined;
}

function describeState(state: UnitState): string {
  return `${state.activeState} (${state.subState})`;
}

function usToMs(us: bigint): number {
  return Number(us / 1000n);
}

function seconds(ms: number): string {
  return `${Math.max(0, Math.round(ms / 1000))}s`;
}

async function waitFor(
  done: () => boolean,
  deadline: number,
  now: () => number,
  pollMs: number,
  signal: AbortSignal,
): Promise<boolean> {
  for (;;) {
    if (done()) return true;
    if (now() >= deadline || signal.aborted) return false;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done_, Math.min(pollMs, Math.max(0, deadline - now())));
      function done_(): void {
        clearTimeout(timer);
        signal.removeEventListener('abort', done_);
        resolve();
      }
      signal.addEventListener('abort', done_, { once: true });
    });
  }
}

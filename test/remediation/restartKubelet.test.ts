// restart-kubelet through a real dbus-daemon and a stand-in for systemd's Manager: the plan says
// what would be restarted (or why not now), the restart waits for the kubelet's health, and a
// failed job, a unit that is not there or a kubelet that stays unhealthy are reported as such.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import * as v from 'valibot';
import { remediationSchema } from '../../agent/config/remediationSchema.ts';
import type { RemediationSettings } from '../../agent/config/remediationSchema.ts';
import { restartKubeletRunner } from '../../agent/remediation/actions/restartKubelet.ts';
import { connectSystemd } from '../../agent/remediation/systemd.ts';
import { afterFirstRestart, startBus, startFakeSystemd } from './systemdStandIn.ts';
import type { FakeUnit } from './systemdStandIn.ts';

const NOW_MS = Date.now();

async function settingsWith(restart: Record<string, unknown>): Promise<RemediationSettings> {
  return v.parseAsync(remediationSchema(), {
    actions: { 'restart-kubelet': { enabled: true, ...restart } },
  });
}

function kubelet(upForMs: number, extra: Partial<FakeUnit> = {}): Record<string, FakeUnit> {
  return {
    'kubelet.service': {
      loadState: 'loaded',
      activeState: 'active',
      subState: 'running',
      activeEnterTimestampUs: BigInt(NOW_MS - upForMs) * 1000n,
      ...extra,
    },
  };
}

async function setup(
  t: TestContext,
  units: Record<string, FakeUnit>,
  restart: Record<string, unknown> = {},
  health: { kubelet: () => boolean | undefined; node?: () => boolean | undefined } = {
    kubelet: () => true,
  },
) {
  const bus = await startBus(t);
  if (bus === undefined) return undefined;
  const systemd = await startFakeSystemd(t, bus.socket, units);
  const settings = await settingsWith(restart);
  const runner = restartKubeletRunner({
    settings: () => settings,
    connect: () => connectSystemd(bus.socket),
    kubeletHealthy: health.kubelet,
    nodeReady: health.node ?? (() => undefined),
    pollMs: 20,
  });
  const restarts = () => systemd.calls.filter((c) => c.member === 'RestartUnit').length;
  return { runner, restarts };
}

test('restart-kubelet: plans the restart of a kubelet up long enough, then restarts it and waits for healthz', async (t) => {
  let restarted = false;
  const s = await setup(
    t,
    kubelet(3_600_000),
    {},
    { kubelet: () => restarted, node: () => restarted },
  );
  if (s === undefined) return;
  assert.deepEqual(await s.runner.plan(), [
    { what: 'kubelet.service', before: 'active (running)', after: 'restarted' },
  ]);
  assert.equal(s.restarts(), 0, 'planning never restarts');
  // what a dry run says: the applied reason, but for how long the kubelet took
  assert.equal(
    s.runner.expectedReason(),
    'kubelet.service restarted; healthz ok and the Node Ready awaited for up to 5m',
  );
  // the kubelet comes back healthy a little after systemd restarted it
  afterFirstRestart(
    t,
    s.restarts,
    () => {
      restarted = true;
    },
    100,
  );
  const result = await s.runner.apply(new AbortController().signal);
  assert.equal(result.outcome, 'applied', result.reason);
  assert.match(
    result.reason,
    /^kubelet\.service restarted; healthz ok and the Node Ready after \d+s$/,
  );
  assert.deepEqual(result.changes, [
    { what: 'kubelet.service', before: 'active (running)', after: 'active (running)' },
  ]);
  assert.equal(s.restarts(), 1);
});

test('restart-kubelet: minUptime holds back a kubelet running or starting for less, not one that is not running', async (t) => {
  const planFor = async (state: Partial<FakeUnit>) => {
    const s = await setup(t, kubelet(60_000, state));
    if (s === undefined) return undefined;
    return s.runner.plan();
  };
  // active since a minute ago (its ActiveEnterTimestamp), or starting since then (its
  // InactiveExitTimestamp), in each state
  const aMinuteAgo = BigInt(NOW_MS - 60_000) * 1000n;
  const cases: [Partial<FakeUnit>, RegExp][] = [
    [
      { activeState: 'active', subState: 'running' },
      /^kubelet\.service has been active for only \d+s; it is restarted only once up for 10m \(restart-kubelet\.minUptime\)$/,
    ],
    [
      { activeState: 'reloading', subState: 'reload' },
      /^kubelet\.service has been active for only \d+s; it is restarted only once up for 10m/,
    ],
    [
      {
        activeState: 'activating',
        subState: 'start',
        activeEnterTimestampUs: 0n,
        inactiveExitTimestampUs: aMinuteAgo,
      },
      /^kubelet\.service has been starting \(activating \(start\)\) for only (59|60|61)s; it is restarted only if still starting after 10m \(restart-kubelet\.minUptime\)$/,
    ],
  ];
  for (const [state, skip] of cases) {
    const plan = await planFor(state);
    if (plan === undefined) return;
    assert.ok(!Array.isArray(plan), `${String(state.subState)}: ${JSON.stringify(plan)}`);
    assert.match(plan.skip, skip);
  }
  // crash-looping between systemd's starts (auto-restart-queued since systemd 254: activating
  // too), given up on, or stopped: no start-up to cut short
  for (const [activeState, subState] of [
    ['activating', 'auto-restart'],
    ['activating', 'auto-restart-queued'],
    ['failed', 'failed'],
    ['inactive', 'dead'],
  ] as const) {
    assert.deepEqual(
      await planFor({ activeState, subState, inactiveExitTimestampUs: aMinuteAgo }),
      [{ what: 'kubelet.service', before: `${activeState} (${subState})`, after: 'restarted' }],
    );
  }
  // stuck starting for longer than minUptime: a Type=notify kubelet that never says it is
  // ready, with TimeoutStartSec=0 (as k3s's installer writes its unit), which systemd never
  // times out
  assert.deepEqual(
    await planFor({
      activeState: 'activating',
      subState: 'start',
      activeEnterTimestampUs: 0n,
      inactiveExitTimestampUs: BigInt(NOW_MS - 20 * 60_000) * 1000n,
    }),
    [{ what: 'kubelet.service', before: 'activating (start)', after: 'restarted' }],
  );
});

test('restart-kubelet: a failed job, a kubelet that stays unhealthy and a missing unit fail with the reason', async (t) => {
  const failing = await setup(
    t,
    kubelet(3_600_000, { result: 'failed' }),
    {},
    {
      kubelet: () => false,
    },
  );
  if (failing === undefined) return;
  const failed = await failing.runner.apply(new AbortController().signal);
  assert.equal(failed.outcome, 'failed');
  assert.equal(failed.reason, 'systemd\'s restart job for kubelet.service ended "failed"');

  const unhealthy = await setup(
    t,
    kubelet(3_600_000),
    { readyTimeout: '1s' },
    { kubelet: () => false },
  );
  if (unhealthy === undefined) return;
  const stays = await unhealthy.runner.apply(new AbortController().signal);
  assert.equal(stays.outcome, 'failed');
  assert.equal(
    stays.reason,
    'kubelet.service was restarted, but the kubelet is not healthy after 1s (healthz not ok)',
  );

  const missing = await setup(t, {});
  if (missing === undefined) return;
  await assert.rejects(missing.runner.plan(), /kubelet\.service is not-found on this host/);
});

test('restart-kubelet: a kubelet healthy again by the time the gates said yes is not restarted', async (t) => {
  const s = await setup(t, kubelet(3_600_000), {}, { kubelet: () => true, node: () => true });
  if (s === undefined) return;
  const result = await s.runner.apply(new AbortController().signal);
  assert.deepEqual(result, {
    outcome: 'skipped',
    reason: 'the kubelet is healthy again: kubelet.service is not restarted',
    changes: [],
  });
  assert.equal(s.restarts(), 0);
});

test('restart-kubelet: the agent stopping ends the wait for readiness at once', async (t) => {
  const s = await setup(t, kubelet(3_600_000), { readyTimeout: '5m' }, { kubelet: () => false });
  if (s === undefined) return;
  const stopping = new AbortController();
  const started = Date.now();
  // once systemd's job is over (the stand-in ends it 20 ms after the call), while waiting
  afterFirstRestart(
    t,
    s.restarts,
    () => {
      stopping.abort(new Error('the agent is stopping'));
    },
    300,
  );
  const result = await s.runner.apply(stopping.signal);
  assert.equal(result.outcome, 'failed');
  assert.equal(
    result.reason,
    'kubelet.service was restarted; stopped waiting for the kubelet to be healthy: the agent is stopping',
  );
  assert.ok(Date.now() - started < 5000, `took ${String(Date.now() - started)} ms`);
});

test('restart-kubelet: a lock lost before the restart restarts nothing', async (t) => {
  const s = await setup(t, kubelet(3_600_000), {}, { kubelet: () => false });
  if (s === undefined) return;
  const lost = new AbortController();
  lost.abort(
    new Error('could not renew remediation lock node-auditor-remediation-0 within 6667ms'),
  );
  assert.deepEqual(await s.runner.apply(lost.signal), {
    outcome: 'skipped',
    reason:
      'kubelet.service is not restarted: could not renew remediation lock node-auditor-remediation-0 within 6667ms',
    changes: [],
  });
  assert.equal(s.restarts(), 0);
});

// The engine's decisions with the real actions behind it (host writes on a fixture root, the
// kubelet restart through a real dbus-daemon): a restart follows only a fix of a cause the
// kubelet cannot recover from by itself, and only while the kubelet is unhealthy; every
// decision is counted and listed. The gates are tested on their own (gates.test.ts ...) and
// all open here.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import pino from 'pino';
import * as v from 'valibot';
import { remediationSchema } from '../../agent/config/remediationSchema.ts';
import type { RemediationSettings } from '../../agent/config/remediationSchema.ts';
import type { Finding } from '../../agent/findings/finding.ts';
import { HostRoot } from '../../agent/host/hostRoot.ts';
import { hostActionRunner } from '../../agent/remediation/actions/hostActionRunner.ts';
import { RemediationRateLimit } from '../../agent/remediation/gates/rateLimit.ts';
import { restartKubeletRunner } from '../../agent/remediation/actions/restartKubelet.ts';
import { REDECIDE_MS, RemediationEngine } from '../../agent/remediation/remediationEngine.ts';
import { connectSystemd } from '../../agent/remediation/systemd.ts';
import { copyFixtureHost, tempDir, writeFiles } from '../helpers.ts';
import { EXHAUSTED, OUT_OF_PROFILE } from './seedFindings.ts';
import {
  afterFirstRestart,
  crashLoopingKubelet,
  startBus,
  startFakeSystemd,
} from './systemdStandIn.ts';

async function engineOn(
  t: TestContext,
  kubelet: { healthy: boolean | undefined },
  clock?: { now: number },
) {
  const bus = await startBus(t);
  if (bus === undefined) return undefined;
  const systemd = await startFakeSystemd(t, bus.socket, {
    'kubelet.service': crashLoopingKubelet(),
  });
  const root = await copyFixtureHost(t, 'bad-runtime');
  const settings: RemediationSettings = await v.parseAsync(remediationSchema(), {
    mode: 'enforce',
    actions: {
      'inotify-limits': { enabled: true },
      'restart-kubelet': { enabled: true, readyTimeout: '5s' },
    },
  });
  const counted: string[] = [];
  const host = new HostRoot(root);
  const engine = new RemediationEngine({
    ...(clock === undefined ? {} : { now: () => new Date(clock.now) }),
    settings: () => settings,
    log: pino({ level: 'silent' }),
    count: (action, outcome) => {
      counted.push(`${action}/${outcome}`);
    },
    gates: () => Promise.resolve({ allowed: true }),
    lock: () =>
      Promise.resolve({
        stillHeld: () => true,
        signal: new AbortController().signal,
        release: () => Promise.resolve(),
      }),
    spend: () => Promise.resolve(),
    runner: (action) =>
      action === 'restart-kubelet'
        ? restartKubeletRunner({
            settings: () => settings,
            connect: () => connectSystemd(bus.socket),
            kubeletHealthy: () => kubelet.healthy,
            nodeReady: () => undefined,
            pollMs: 20,
          })
        : hostActionRunner(action, host, settings, () => Promise.resolve()),
    kubeletHealthy: () => kubelet.healthy,
  });
  const restarts = () => systemd.calls.filter((c) => c.member === 'RestartUnit').length;
  return { engine, counted, root, restarts };
}

test('engine: the inotify fix, then the kubelet restart it calls for while the kubelet is down', async (t) => {
  const kubelet = { healthy: false as boolean | undefined };
  const s = await engineOn(t, kubelet);
  if (s === undefined) return;
  afterFirstRestart(t, s.restarts, () => {
    kubelet.healthy = true; // the kubelet comes back once restarted
  });
  await s.engine.evaluate([EXHAUSTED]);
  const decisions = s.engine.decisions();
  assert.deepEqual(
    decisions.map((d) => [d.action, d.outcome]),
    [
      ['inotify-limits', 'applied'],
      ['restart-kubelet', 'applied'],
    ],
  );
  assert.deepEqual(decisions[0]?.causes, ['InotifyWatchesExhausted']);
  assert.deepEqual(decisions[1]?.trigger, ['logs/InotifyWatchesExhausted']);
  assert.equal(
    (await fs.readFile(path.join(s.root, 'proc/sys/fs/inotify/max_user_watches'), 'utf8')).trim(),
    '1048576',
  );
  assert.equal(s.restarts(), 1);
  assert.deepEqual(s.counted, ['inotify-limits/applied', 'restart-kubelet/applied']);

  // healthy again: nothing more to do, and no second restart
  await s.engine.evaluate([EXHAUSTED]);
  assert.equal(s.restarts(), 1);
  assert.equal(s.engine.decisions().length, 2);
});

test('engine: no restart while the kubelet is healthy, nor without a fix of its cause', async (t) => {
  const kubelet = { healthy: true as boolean | undefined };
  const s = await engineOn(t, kubelet);
  if (s === undefined) return;
  await s.engine.evaluate([EXHAUSTED]);
  assert.deepEqual(
    s.engine.decisions().map((d) => [d.action, d.outcome]),
    [['inotify-limits', 'applied']],
  );
  assert.equal(s.restarts(), 0);

  // a sysctl finding alone (no NotReady cause) is fixed, but never restarts the kubelet
  const other = await engineOn(t, { healthy: false });
  if (other === undefined) return;
  await other.engine.evaluate([OUT_OF_PROFILE]);
  assert.deepEqual(
    other.engine.decisions().map((d) => [d.action, d.outcome, d.causes.length]),
    [['inotify-limits', 'applied', 0]],
  );
  assert.equal(other.restarts(), 0);
});

test('engine: the restart follows the inotify fix whichever finding reached the engine first', async (t) => {
  const kubelet = { healthy: false as boolean | undefined };
  const s = await engineOn(t, kubelet);
  if (s === undefined) return;
  afterFirstRestart(t, s.restarts, () => {
    kubelet.healthy = true;
  });
  // a freshly started agent: the sysctl check's run ends first (the logs check does not replay
  // old lines), so the fix is made for SysctlOutOfProfile, with no NotReady cause in sight
  await s.engine.evaluate([OUT_OF_PROFILE]);
  assert.deepEqual(
    s.engine.decisions().map((d) => [d.action, d.outcome, d.causes]),
    [['inotify-limits', 'applied', []]],
  );
  assert.equal(s.restarts(), 0, 'no exhaustion reported yet: nothing says the kubelet needs it');
  // then the logs check reports the exhaustion: nothing left to raise, but the kubelet still
  // has to be restarted to get its cAdvisor watches
  await s.engine.evaluate([OUT_OF_PROFILE, EXHAUSTED]);
  const decisions = s.engine.decisions();
  assert.deepEqual(
    decisions.map((d) => [d.action, d.outcome]),
    [
      ['inotify-limits', 'applied'],
      ['restart-kubelet', 'applied'],
    ],
  );
  assert.deepEqual(decisions[1]?.trigger, ['logs/InotifyWatchesExhausted']);
  assert.deepEqual(decisions[1]?.causes, ['InotifyWatchesExhausted']);
  assert.equal(s.restarts(), 1);
  assert.deepEqual(s.counted, ['inotify-limits/applied', 'restart-kubelet/applied']);
});

test('engine: no restart after an inotify fix that only persisted the limits: no runtime value changed', async (t) => {
  const s = await engineOn(t, { healthy: false });
  if (s === undefined) return;
  // someone raised the limits at runtime by hand; nothing persists them
  for (const [key, value] of [
    ['max_user_watches', '1048576'],
    ['max_user_instances', '8192'],
  ])
    await fs.writeFile(path.join(s.root, 'proc/sys/fs/inotify', key as string), `${value}\n`);
  await s.engine.evaluate([EXHAUSTED]);
  const decisions = s.engine.decisions();
  assert.deepEqual(
    decisions.map((d) => [d.action, d.outcome]),
    [['inotify-limits', 'applied']],
  );
  assert.deepEqual(
    decisions[0]?.changes.map((c) => c.what),
    ['/etc/sysctl.d/zz-node-auditor-inotify-limits.conf'],
    'the file written, no limit raised',
  );
  assert.equal(
    s.restarts(),
    0,
    'the kubelet is not restarted for a fix that changed nothing it uses',
  );
});

test('engine: an exhaustion reported after recentFix has passed since the fix restarts nothing', async (t) => {
  const clock = { now: Date.now() };
  const s = await engineOn(t, { healthy: false }, clock);
  if (s === undefined) return;
  await s.engine.evaluate([OUT_OF_PROFILE]);
  clock.now += 15 * 60_000 + 1000; // recentFix is 15 min
  await s.engine.evaluate([OUT_OF_PROFILE, EXHAUSTED]);
  assert.deepEqual(
    s.engine.decisions().map((d) => [d.action, d.outcome]),
    [['inotify-limits', 'applied']],
  );
  assert.equal(s.restarts(), 0);
});

test('engine: a gate that stays closed is one decision, one Event, counted each time; an unwritable history is a skip', async (t) => {
  const root = await copyFixtureHost(t, 'bad-runtime');
  const settings: RemediationSettings = await v.parseAsync(remediationSchema(), {
    mode: 'enforce',
    actions: { 'inotify-limits': { enabled: true } },
  });
  const host = new HostRoot(root);
  const events: string[] = [];
  const counted: string[] = [];
  let minutes = 59;
  let spendFails = false;
  let gateCalls = 0;
  let clock = Date.parse('2026-11-22T03:00:00Z');
  const engine = new RemediationEngine({
    now: () => new Date(clock),
    settings: () => settings,
    log: pino({ level: 'silent' }),
    count: (action, outcome) => {
      counted.push(`${action}/${outcome}`);
    },
    event: (reason, _type, message) => {
      events.push(`${reason}: ${message}`);
    },
    // as the rate limit says it while its cooldown runs out
    gates: () => {
      gateCalls++;
      return Promise.resolve(
        minutes > 0
          ? { allowed: false, reason: `cooldown: allowed again in ${String(minutes--)}m` }
          : { allowed: true },
      );
    },
    lock: () =>
      Promise.resolve({
        stillHeld: () => true,
        signal: new AbortController().signal,
        release: () => Promise.resolve(),
      }),
    spend: () =>
      spendFails ? Promise.reject(new Error('EROFS: read-only file system')) : Promise.resolve(),
    runner: () => hostActionRunner('inotify-limits', host, settings, () => Promise.resolve()),
    kubeletHealthy: () => true,
  });
  // the sysctl, inotify and logs checks each evaluate within the same minute: decided once
  for (let i = 0; i < 3; i++) await engine.evaluate([EXHAUSTED]);
  assert.equal(gateCalls, 1);
  // then a minute apart, the cooldown's words ticking
  for (let i = 0; i < 2; i++) {
    clock += REDECIDE_MS;
    await engine.evaluate([EXHAUSTED]);
  }
  assert.equal(gateCalls, 3);
  const [first, ...rest] = engine.decisions();
  assert.equal(rest.length, 0);
  assert.equal(first?.count, 3);
  assert.equal(first?.reason, 'cooldown: allowed again in 57m'); // the latest words
  assert.equal(events.length, 1, events.join('\n'));
  assert.deepEqual(counted, Array(3).fill('inotify-limits/skipped'));

  minutes = 0;
  spendFails = true;
  clock += REDECIDE_MS;
  await engine.evaluate([EXHAUSTED]);
  const last = engine.decisions().at(-1);
  assert.equal(last?.outcome, 'skipped');
  assert.match(last?.reason ?? '', /^cannot decide: .*EROFS/);
  assert.equal(
    (await fs.readFile(path.join(root, 'proc/sys/fs/inotify/max_user_watches'), 'utf8')).trim(),
    '8192',
    'nothing written when the action could not be counted',
  );
});

test('engine: in dryRun, the dry run is reported once an hour and the cooldown after it is no skip; every decision is marked', async (t) => {
  const root = await copyFixtureHost(t, 'bad-runtime');
  const settings: RemediationSettings = await v.parseAsync(remediationSchema(), {
    actions: { 'inotify-limits': { enabled: true } },
  });
  assert.equal(settings.mode, 'dryRun');
  let clock = Date.parse('2026-11-22T03:00:00Z');
  const limit = new RemediationRateLimit({
    stateDir: await tempDir(t),
    maxActionsPerHour: settings.rateLimit.maxActionsPerHour,
    cooldownsMs: { 'inotify-limits': 3_600_000 },
    now: () => clock,
  });
  const host = new HostRoot(root);
  const events: string[] = [];
  const counted: string[] = [];
  let storm = false;
  const engine = new RemediationEngine({
    now: () => new Date(clock),
    settings: () => settings,
    log: pino({ level: 'silent' }),
    count: (action, outcome) => {
      counted.push(`${action}/${outcome}`);
    },
    event: (reason, type, message) => {
      events.push(`${type} ${reason}: ${message}`);
    },
    gates: (action, dryRun) =>
      storm
        ? Promise.resolve({ allowed: false, reason: '3 of 10 nodes are NotReady' })
        : limit.check(action, { dryRun }),
    lock: () => Promise.reject(new Error('a dry run takes no lock')),
    spend: (action, dryRun) => limit.record(action, { dryRun }),
    runner: () => hostActionRunner('inotify-limits', host, settings, () => Promise.resolve()),
    kubeletHealthy: () => true,
  });
  // the finding stays (nothing was changed): the checks ask every minute for 90 minutes
  for (let minute = 0; minute < 90; minute++) {
    await engine.evaluate([OUT_OF_PROFILE]);
    clock += REDECIDE_MS;
  }
  const changes =
    'fs.inotify.max_user_watches 8192 -> 1048576, fs.inotify.max_user_instances 128 -> 8192, ' +
    '/etc/sysctl.d/zz-node-auditor-inotify-limits.conf (none) -> written';
  assert.deepEqual(events, [
    'Normal RemediationDryRun: inotify-limits: set fs.inotify.max_user_watches = 1048576, ' +
      'fs.inotify.max_user_instances = 8192; wrote /etc/sysctl.d/zz-node-auditor-inotify-limits.conf; ' +
      `${changes} (dry run: nothing was changed)`,
  ]);
  // as its cooldown allows: at 0 and at 60 minutes; the second is folded into the first
  assert.deepEqual(counted, Array(2).fill('inotify-limits/dry_run'));
  assert.deepEqual(
    engine.decisions().map((d) => [d.outcome, d.count]),
    [['dry_run', 2]],
  );
  assert.equal(
    (await fs.readFile(path.join(root, 'proc/sys/fs/inotify/max_user_watches'), 'utf8')).trim(),
    '8192',
  );

  // a gate that enforce would be stopped by is a skip, as in enforce, and marked as a dry run
  storm = true;
  await engine.evaluate([OUT_OF_PROFILE]);
  assert.equal(
    events.at(-1),
    `Warning RemediationSkipped: inotify-limits: 3 of 10 nodes are NotReady; ${changes} (dry run: nothing was changed)`,
  );
  assert.equal(engine.decisions().at(-1)?.mode, 'dryRun');
});

test('engine: in dryRun, a different plan during the cooldown after a dry run is a skip, as in enforce, not silence', async (t) => {
  // forwarding off; br_netfilter loaded, its keys right
  const root = await tempDir(t);
  await writeFiles(root, {
    'proc/sys/net/ipv4/ip_forward': '0\n',
    'proc/sys/net/bridge/bridge-nf-call-iptables': '1\n',
    'proc/sys/net/bridge/bridge-nf-call-ip6tables': '1\n',
    'sys/module/br_netfilter/initstate': 'live\n',
    'etc/modules-load.d/k8s.conf': 'br_netfilter\n',
    'etc/sysctl.d/k8s.conf':
      'net.bridge.bridge-nf-call-iptables = 1\nnet.bridge.bridge-nf-call-ip6tables = 1\n',
  });
  const settings: RemediationSettings = await v.parseAsync(remediationSchema(), {
    actions: { 'kernel-networking': { enabled: true } },
  });
  let clock = Date.parse('2026-11-22T03:00:00Z');
  const limit = new RemediationRateLimit({
    stateDir: await tempDir(t),
    maxActionsPerHour: settings.rateLimit.maxActionsPerHour,
    cooldownsMs: { 'kernel-networking': 3_600_000 },
    now: () => clock,
  });
  const host = new HostRoot(root);
  const events: string[] = [];
  const engine = new RemediationEngine({
    now: () => new Date(clock),
    settings: () => settings,
    log: pino({ level: 'silent' }),
    count: () => undefined,
    event: (reason, type, message) => {
      events.push(`${type} ${reason}: ${message}`);
    },
    gates: (action, dryRun) => limit.check(action, { dryRun }),
    lock: () => Promise.reject(new Error('a dry run takes no lock')),
    spend: (action, dryRun) => limit.record(action, { dryRun }),
    runner: () => hostActionRunner('kernel-networking', host, settings, () => Promise.resolve()),
    kubeletHealthy: () => true,
  });
  const sysctlFinding = (id: string, problem: string): Finding => ({
    ...OUT_OF_PROFILE,
    id,
    problem,
    title: id,
    message: id,
  });
  const forwarding = sysctlFinding('SysctlOutOfProfile:net.ipv4.ip_forward', 'SysctlOutOfProfile');
  await engine.evaluate([forwarding]);
  assert.equal(events.length, 1);
  assert.match(
    events[0] ?? '',
    /^Normal RemediationDryRun: kernel-networking: set net\.ipv4\.ip_forward = 1;/,
  );
  // the same plan a minute later: the dry run said it, and stands
  clock += REDECIDE_MS;
  await engine.evaluate([forwarding]);
  assert.equal(events.length, 1);

  // five minutes later br_netfilter is gone: another plan, called for by another finding.
  // Enforce would say its cooldown holds it back; so does the dry run
  clock += 4 * REDECIDE_MS;
  await fs.rm(path.join(root, 'sys/module/br_netfilter'), { recursive: true });
  await fs.rm(path.join(root, 'proc/sys/net/bridge'), { recursive: true });
  const notLoaded = sysctlFinding('BrNetfilterNotLoaded', 'BrNetfilterNotLoaded');
  await engine.evaluate([forwarding, notLoaded]);
  assert.equal(events.length, 2, events.join('\n'));
  assert.match(
    events[1] ?? '',
    /^Warning RemediationSkipped: kernel-networking: kernel-networking was dry-run 5 min ago and its cooldown is 1 h \(allowed again in 55 min\); module br_netfilter not loaded -> loaded, .* \(dry run: nothing was changed\)$/,
  );
  assert.deepEqual(
    engine.decisions().map((d) => [d.outcome, d.trigger]),
    [
      ['dry_run', ['sysctl/SysctlOutOfProfile:net.ipv4.ip_forward']],
      ['skipped', ['sysctl/BrNetfilterNotLoaded', 'sysctl/SysctlOutOfProfile:net.ipv4.ip_forward']],
    ],
  );
});

test('engine: a host action is not started once the lock is lost after the gates', async (t) => {
  const root = await copyFixtureHost(t, 'bad-runtime');
  const settings: RemediationSettings = await v.parseAsync(remediationSchema(), {
    mode: 'enforce',
    actions: { 'inotify-limits': { enabled: true } },
  });
  const host = new HostRoot(root);
  const lock = new AbortController();
  const engine = new RemediationEngine({
    settings: () => settings,
    log: pino({ level: 'silent' }),
    count: () => undefined,
    gates: () => Promise.resolve({ allowed: true }),
    lock: () =>
      Promise.resolve({
        stillHeld: () => !lock.signal.aborted,
        signal: lock.signal,
        release: () => Promise.resolve(),
      }),
    // the renewals fail while the history is written: the holder steps down
    spend: () => {
      lock.abort(new Error('could not renew remediation lock node-auditor-remediation-0'));
      return Promise.resolve();
    },
    runner: () => hostActionRunner('inotify-limits', host, settings, () => Promise.resolve()),
    kubeletHealthy: () => true,
  });
  await engine.evaluate([OUT_OF_PROFILE]);
  assert.deepEqual(
    engine.decisions().map((d) => [d.outcome, d.reason]),
    [['skipped', 'not applied: could not renew remediation lock node-auditor-remediation-0']],
  );
  assert.equal(
    (await fs.readFile(path.join(root, 'proc/sys/fs/inotify/max_user_watches'), 'utf8')).trim(),
    '8192',
  );
  assert.ok(
    !(await fs.readdir(path.join(root, 'etc/sysctl.d'))).some((f) => f.includes('node-auditor')),
  );
});

// The engine as the agent builds it (createRemediation): the real gates and the cluster lock on
// the test API server, the host actions on a fixture root, the kubelet restart through a real
// dbus-daemon at the host root's /run/dbus/system_bus_socket.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import * as v from 'valibot';
import { remediationSchema } from '../../agent/config/remediationSchema.ts';
import { createRemediation } from '../../agent/remediation/remediationSetup.ts';
import { copyFixtureHost, tempDir } from '../helpers.ts';
import { harness, silent } from '../kubernetes/kubeHarness.ts';
import { EXHAUSTED } from './seedFindings.ts';
import {
  afterFirstRestart,
  crashLoopingKubelet,
  startBus,
  startFakeSystemd,
} from './systemdStandIn.ts';

test('a lock lost while restart-kubelet waits for readiness ends the action, which says so', async (t) => {
  const root = await copyFixtureHost(t, 'bad-runtime');
  await fs.mkdir(path.join(root, 'run/dbus'), { recursive: true });
  const bus = await startBus(t, path.join(root, 'run/dbus/system_bus_socket'));
  if (bus === undefined) return;
  const systemd = await startFakeSystemd(t, bus.socket, {
    'kubelet.service': crashLoopingKubelet(),
  });
  const restarts = () => systemd.calls.filter((c) => c.member === 'RestartUnit').length;
  const h = await harness(t, { remediationRbac: true });
  const settings = await v.parseAsync(remediationSchema(), {
    mode: 'enforce',
    actions: {
      'inotify-limits': { enabled: true },
      'restart-kubelet': { enabled: true, readyTimeout: '60s' },
    },
    // renewed every 2 s; the holder steps down 6.7 s after its last renewal started
    lock: { ttl: '10s' },
  });
  const events: string[] = [];
  const engine = createRemediation({
    settings: () => settings,
    hostRoot: root,
    nodeName: 'k1-node01',
    stateDir: await tempDir(t),
    log: silent,
    count: () => undefined,
    cluster: () => ({
      api: h.api,
      namespace: 'node-auditor',
      identity: 'k1-node01_6a1f',
      event: (reason, type, message) => events.push(`${type} ${reason}: ${message}`),
    }),
    // the kubelet never comes back: only the lock can end the wait before readyTimeout
    kubeletHealthy: () => false,
    nodeReady: () => undefined,
  });
  t.after(() => engine.stop());
  // the API goes away once systemd has the restart job: the Lease can no longer be renewed
  let cutAt = 0;
  afterFirstRestart(t, restarts, () => {
    cutAt = Date.now();
    void h.fake.goDown();
  });
  await engine.evaluate([EXHAUSTED]);
  const decisions = engine.decisions();
  assert.deepEqual(
    decisions.map((d) => [d.action, d.outcome]),
    [
      ['inotify-limits', 'applied'],
      ['restart-kubelet', 'failed'],
    ],
  );
  assert.equal(restarts(), 1);
  assert.match(
    decisions[1]?.reason ?? '',
    /^kubelet\.service was restarted; stopped waiting for the kubelet to be healthy: could not renew remediation lock node-auditor-remediation-0 within \d+ms$/,
  );
  const waited = Date.now() - cutAt;
  assert.ok(waited < 15_000, `ended ${String(waited)} ms after the API went away, not at 60 s`);
  assert.match(events.at(-1) ?? '', /^Warning RemediationFailed: restart-kubelet: .*lock/);
});

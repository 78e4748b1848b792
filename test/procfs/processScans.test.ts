// The process checks share one /proc pass, and remember just enough between passes to say how
// fast inotify use grows and how long a zombie has been one.
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import { test } from 'node:test';
import { configuredInfraCommands } from '../../agent/checks/processChecks.ts';
import { loadConfig } from '../../agent/config/loadConfig.ts';
import { HostRoot } from '../../agent/host/hostRoot.ts';
import { ProcessScans } from '../../agent/procfs/processScans.ts';
import { FirstSeen, UsageTrend } from '../../agent/procfs/scanHistory.ts';
import { tempDir } from '../helpers.ts';
import { writeProcTree } from './procTree.ts';

test('checks asking at the same time get the same scan; a scan is reused for 10 s, then done again', async (t) => {
  const root = await tempDir(t);
  await writeProcTree(root, { processes: [{ pid: 1, ppid: 0, comm: 'init', inotify: [2] }] });
  const scans = new ProcessScans(new HostRoot(root));
  const [a, b, c] = await Promise.all([scans.get(), scans.get(), scans.get()]);
  assert.equal(a, b);
  assert.equal(b, c);
  assert.equal(a.processes.length, 1);
  assert.equal(await scans.get(), a, 'fresh: reused');
  t.mock.timers.enable({ apis: ['Date'], now: Date.now() + 11_000 });
  const later = await scans.get();
  assert.notEqual(later, a, 'stale: scanned again');
  assert.deepEqual(
    later.processes[0]?.inotify.map((i) => i.watches),
    [2],
  );
});

test('a check that gives up (timeout) stops waiting without failing the scan the others wait for', async (t) => {
  const root = await tempDir(t);
  await writeProcTree(root, { processes: [{ pid: 1, ppid: 0, comm: 'init' }] });
  const scans = new ProcessScans(new HostRoot(root));
  const controller = new AbortController();
  const abandoned = scans.get(controller.signal);
  const other = scans.get();
  controller.abort(new Error('timed out'));
  await assert.rejects(abandoned, /timed out/);
  assert.equal((await other).processes.length, 1);
});

test('trend: least-squares rate over the window, time to the limit only while growing', () => {
  const trend = new UsageTrend();
  const t0 = 1_000_000;
  // 600 watches more per minute, sampled every minute for 5 minutes.
  for (let i = 0; i <= 5; i++)
    trend.record(t0 + i * 60_000, new Map([['0', 1000 + i * 600]]), 3_600_000);
  assert.equal(Math.round((trend.ratePerSecond('0') ?? 0) * 60), 600);
  // 4000 now, limit 10000: 6000 more at 10 per second.
  assert.equal(Math.round(trend.secondsUntil('0', 4000, 10_000) ?? -1), 600);
  assert.equal(trend.increase('0'), 3000);
  // The same scan recorded twice (three checks read it) counts once.
  trend.record(t0 + 5 * 60_000, new Map([['0', 99_999]]), 3_600_000);
  assert.equal(trend.increase('0'), 3000);
  // Falling: no time to the limit.
  const falling = new UsageTrend();
  for (let i = 0; i <= 5; i++)
    falling.record(t0 + i * 60_000, new Map([['0', 5000 - i * 100]]), 3_600_000);
  assert.equal(falling.secondsUntil('0', 4500, 10_000), undefined);
  // Too little history (under a minute, or under 3 samples): no rate at all.
  const young = new UsageTrend();
  young.record(t0, new Map([['0', 1]]), 3_600_000);
  young.record(t0 + 30_000, new Map([['0', 100]]), 3_600_000);
  young.record(t0 + 50_000, new Map([['0', 200]]), 3_600_000);
  assert.equal(young.ratePerSecond('0'), undefined);
  // Samples older than the window are dropped; a key gone from a scan is forgotten.
  trend.record(t0 + 2 * 3_600_000, new Map([['1000', 5]]), 3_600_000);
  assert.equal(trend.ratePerSecond('0'), undefined);
  assert.equal(trend.increase('0'), 0);
});

test('first seen: kept while present, forgotten once gone', () => {
  const seen = new FirstSeen();
  seen.record(100, ['a', 'b']);
  seen.record(200, ['a', 'c']);
  const now = seen.record(300, ['a', 'c']);
  assert.deepEqual(
    [...now],
    [
      ['a', 100],
      ['c', 200],
    ],
  );
});

test('the configured pod infra commands are judged on what this scan read, whichever checks run', async (t) => {
  const root = await tempDir(t);
  const podCgroup = `0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1a2b3c4d_0000_4000_8000_000000000001.slice/cri-containerd-${'ab'.repeat(32)}.scope\n`;
  const tree = (sigCgt: string) =>
    writeProcTree(root, {
      processes: [
        { pid: 1, ppid: 0, comm: 'init' },
        { pid: 40, ppid: 1, comm: 'sandbox-init', cgroup: podCgroup, sigCgt },
      ],
    });
  await tree('0000000000000000');
  const configFile = `${root}/node-auditor.yaml`;
  await writeFile(configFile, 'checks:\n  pause:\n    infraCommands: [sandbox-init]\n');
  const { config } = await loadConfig({ file: configFile, env: {} });
  // as the agent and `check` set it up when the configuration loads, before any check runs
  const configured = new ProcessScans(new HostRoot(root));
  configured.setInfraCommands(configuredInfraCommands(config));
  const defaults = new ProcessScans(new HostRoot(root));
  for (const scans of [configured, defaults]) {
    const scan = await scans.get();
    assert.equal(scan.byPid.get(40)?.cgroup?.podUid, '1a2b3c4d-0000-4000-8000-000000000001');
  }
  // sandbox-init installs its handlers: configured as an infra process, the next scan judges
  // it on them (with the default, "pause", it is an ordinary process, read again within 16)
  await rm(`${root}/proc`, { recursive: true });
  await tree('0000000000014002');
  t.mock.timers.enable({ apis: ['Date'], now: Date.now() + 11_000 });
  const next = await configured.get();
  assert.equal(next.byPid.get(40)?.status?.sigCgt, '0000000000014002');
  assert.deepEqual([...next.infraCommands], ['sandbox-init']);
});

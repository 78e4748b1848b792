// The pause, zombies and inotify checks on this machine's real kernel: real PID namespaces
// (unshare), real pod cgroups, real zombies and real inotify watches, read through the same
// /proc pass the agent uses. Root only (namespaces, cgroups); CI runs as root.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { findTool, requireRoot, requireTool, sleep, tempDir } from '../helpers.ts';
import {
  Cleanup,
  buildPrograms,
  cgroupPids,
  fakePod,
  namespaceInit,
  startIn,
} from '../procfs/realProcesses.ts';
import { runProcessChecks, sampleValue } from './runCheckOn.ts';

/** Run fn until its assertions hold (zombies appear when the children get to exit), 10 s at most. */
async function retrying<T>(fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      return await fn();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(100);
    }
  }
}

function needsRoot(t: TestContext): boolean {
  return requireRoot(t, 'PID namespaces and cgroups');
}

test("a pause like the seeds' is PID 1 of its namespace, catches SIGINT/SIGTERM/SIGCHLD and reaps orphans: no finding", async (t) => {
  if (
    !needsRoot(t) ||
    requireTool(t, 'unshare') === undefined ||
    requireTool(t, 'nsenter') === undefined
  )
    return;
  const programs = await buildPrograms(t);
  if (programs === undefined) return;
  const cleanup = new Cleanup(t);
  const okSandboxes = async () =>
    sampleValue((await runProcessChecks('/')).pause, 'node_auditor_pod_sandboxes', {
      state: 'ok',
    }) ?? 0;
  const before = await okSandboxes();
  const pod = await fakePod(cleanup);
  const sandbox = await pod.container();
  await startIn(cleanup, sandbox.dir, [
    'unshare',
    '--pid',
    '--fork',
    '--mount-proc',
    programs.pause,
  ]);
  const pausePid = await namespaceInit(sandbox.dir, 'pause');
  // Orphans in the pod's namespace: their parent (sh) exits at once, so they are re-parented to
  // the namespace's PID 1, pause, which must reap them when they exit.
  execFileSync('nsenter', [
    '--target',
    String(pausePid),
    '--pid',
    '--',
    'sh',
    '-c',
    'sleep 0.2 & sleep 0.2 & sleep 0.2 & exit 0',
  ]);
  await sleep(800);
  const outcomes = await runProcessChecks('/');
  const mine = outcomes.pause.findings.filter((f) => f.id.endsWith(pod.uid));
  assert.deepEqual(mine, [], JSON.stringify(mine, null, 2));
  // this pod's sandbox was found, and is ok
  assert.equal(
    sampleValue(outcomes.pause, 'node_auditor_pod_sandboxes', { state: 'ok' }),
    before + 1,
  );
  const zombiesUnderPause = outcomes.zombies.findings.filter((f) =>
    f.evidence.some((e) => e.includes(`(pid ${pausePid})`)),
  );
  assert.deepEqual(zombiesUnderPause, []);
  assert.equal(
    sampleValue(outcomes.zombies, 'node_auditor_zombie_processes', { pod: pod.uid }),
    undefined,
  );
});

test('a shell as PID 1 in the pause role: no SIGTERM handler, and the orphans it is given stay zombies', async (t) => {
  if (
    !needsRoot(t) ||
    requireTool(t, 'unshare') === undefined ||
    requireTool(t, 'nsenter') === undefined
  )
    return;
  const dash = findTool('dash') ?? requireTool(t, 'sh');
  if (dash === undefined) return;
  const cleanup = new Cleanup(t);
  const dir = await tempDir(t);
  // A shell binary under the name pause: the check knows infra processes by name.
  const fakePause = path.join(dir, 'pause');
  await fs.copyFile(await fs.realpath(dash), fakePause);
  await fs.chmod(fakePause, 0o755);
  const pod = await fakePod(cleanup);
  const sandbox = await pod.container();
  // "read" blocks on a pipe nobody writes: the shell never gets round to waiting for children.
  await startIn(
    cleanup,
    sandbox.dir,
    ['unshare', '--pid', '--fork', '--mount-proc', fakePause, '-c', 'read x'],
    { stdin: 'pipe' },
  );
  const shellPid = await namespaceInit(sandbox.dir, 'pause');
  execFileSync('nsenter', [
    '--target',
    String(shellPid),
    '--pid',
    '--',
    'sh',
    '-c',
    'sleep 0.1 & sleep 0.1 & exit 0',
  ]);
  const outcomes = await retrying(async () => {
    const o = await runProcessChecks('/');
    const ids = o.pause.findings.filter((f) => f.id.endsWith(pod.uid)).map((f) => f.id);
    assert.ok(ids.includes(`PauseNotReaping:${pod.uid}`), ids.join(', '));
    // Both sleeps have exited (the finding is raised at the first zombie; on a loaded machine
    // the second may still be running when the first scan sees it).
    const evidence = o.pause.findings.find((f) => f.id === `PauseNotReaping:${pod.uid}`)?.evidence;
    assert.ok(evidence?.includes('zombie children: 2') === true, evidence?.join('\n'));
    return o;
  });
  const ids = outcomes.pause.findings
    .filter((f) => f.id.endsWith(pod.uid))
    .map((f) => f.id)
    .sort();
  assert.deepEqual(ids, [`PauseNoTermHandler:${pod.uid}`, `PauseNotReaping:${pod.uid}`]);
  const notReaping = outcomes.pause.findings.find((f) => f.id === `PauseNotReaping:${pod.uid}`);
  assert.ok(
    notReaping?.evidence.includes('zombie children: 2') === true,
    notReaping?.evidence.join('\n'),
  );
  assert.ok(notReaping?.evidence.some((e) => e.startsWith(`NSpid: ${shellPid} 1`)));
  // Its own PID namespace, as the kernel names it (not the test's).
  const ns = await fs.readlink(`/proc/${shellPid}/ns/pid`);
  assert.notEqual(ns, await fs.readlink('/proc/self/ns/pid'));
  assert.ok(notReaping?.evidence.includes(`PID namespace: ${ns}`), notReaping?.evidence.join('\n'));
  assert.ok(
    (sampleValue(outcomes.pause, 'node_auditor_pod_sandboxes', { state: 'not_reaping' }) ?? 0) >= 1,
  );
  // Both zombies are counted for the pod's infra container.
  assert.equal(
    sampleValue(outcomes.zombies, 'node_auditor_zombie_processes', {
      pod: pod.uid,
      container: 'POD',
    }),
    2,
  );
});

test("a container whose PID 1 neither catches nor ignores SIGCHLD: its zombies are counted and the fix named; the pod's pids.max headroom too", async (t) => {
  if (!needsRoot(t) || requireTool(t, 'unshare') === undefined) return;
  const cleanup = new Cleanup(t);
  const pod = await fakePod(cleanup);
  const app = await pod.container();
  // Three children exit while PID 1 (after exec: sleep) never waits.
  await startIn(cleanup, app.dir, [
    'unshare',
    '--pid',
    '--fork',
    'sh',
    '-c',
    'sleep 0.1 & sleep 0.1 & sleep 0.1 & exec sleep 1000',
  ]);
  const init = await namespaceInit(app.dir, 'sleep');
  await sleep(400);
  // The pod may fork 1.2x what it has now: above the 70% warning.
  const current = Number((await fs.readFile(path.join(pod.podDir, 'pids.current'), 'utf8')).trim());
  await fs.writeFile(path.join(pod.podDir, 'pids.max'), String(Math.ceil(current * 1.2)));
  const outcomes = await retrying(async () => {
    const o = await runProcessChecks('/');
    assert.equal(
      sampleValue(o.zombies, 'node_auditor_zombie_processes', {
        pod: pod.uid,
        container: app.id.slice(0, 12),
      }),
      3,
    );
    return o;
  });
  const finding = outcomes.zombies.findings.find((f) => f.id === `ContainerInitNotReaping:${init}`);
  assert.ok(finding, JSON.stringify(outcomes.zombies.findings.map((f) => f.id)));
  assert.match(finding.message, /neither catches nor ignores SIGCHLD/);
  assert.match(finding.message, /3 zombies/);
  assert.match(finding.title, new RegExp(`pod ${pod.uid} container ${app.id.slice(0, 12)}`));
  assert.match(finding.remediation?.summary ?? '', /tini/);
  assert.match(finding.remediation?.summary ?? '', /shareProcessNamespace: true/);
  assert.equal(finding.evidence.filter((e) => e.startsWith('zombie sleep (pid ')).length, 3);
  const headroom = outcomes.zombies.findings.find((f) => f.id === `PodPidsNearLimit:${pod.uid}`);
  assert.ok(headroom, 'pids.current near pids.max is reported');
  assert.equal(headroom.severity, 'warning');
  assert.match(headroom.evidence[0] ?? '', new RegExp(`${current} of ${Math.ceil(current * 1.2)}`));
  assert.equal(
    sampleValue(outcomes.zombies, 'node_auditor_pid_usage_ratio', { pod: pod.uid }),
    current / Math.ceil(current * 1.2),
  );
  assert.ok((await cgroupPids(app.dir)).includes(init));
});

test('a process that forks and never waits: exactly its zombies, under it, and a finding once they reach the threshold', async (t) => {
  if (!needsRoot(t)) return;
  const programs = await buildPrograms(t);
  if (programs === undefined) return;
  const cleanup = new Cleanup(t);
  const forker = await startIn(cleanup, undefined, [programs.forker, '7'], { waitFor: 'ready' });
  const outcomes = await retrying(async () => {
    const o = await runProcessChecks('/', { zombies: { parentThreshold: 7 } });
    assert.ok(o.zombies.findings.some((f) => f.id === `ZombiesAccumulating:${forker.pid}`));
    return o;
  });
  const finding = outcomes.zombies.findings.find(
    (f) => f.id === `ZombiesAccumulating:${forker.pid}`,
  );
  assert.ok(finding);
  assert.equal(finding.title, `7 zombies under forker (pid ${forker.pid}) in the host`);
  assert.equal(
    finding.evidence[0]?.startsWith(`parent: forker (pid ${forker.pid}) in the host`),
    true,
  );
  assert.equal(finding.evidence.filter((e) => e.startsWith('zombie forker (pid ')).length, 5);
  assert.ok(finding.evidence.includes('... and 2 more'));
  // Below the threshold, no finding (same zombies, threshold 8).
  const relaxed = await runProcessChecks('/', { zombies: { parentThreshold: 8, growth: 100 } });
  assert.equal(
    relaxed.zombies.findings.some((f) => f.id === `ZombiesAccumulating:${forker.pid}`),
    false,
  );
  assert.ok(
    (sampleValue(relaxed.zombies, 'node_auditor_zombie_processes', { pod: '', container: '' }) ??
      0) >= 7,
  );
});

test('inotify: a process of uid 65534 in a pod holding exactly 37 watches is counted for that uid and named as a top consumer', async (t) => {
  if (!needsRoot(t)) return;
  const setpriv = requireTool(t, 'setpriv');
  const programs = await buildPrograms(t);
  if (setpriv === undefined || programs === undefined) return;
  const cleanup = new Cleanup(t);
  const dirs = await tempDir(t);
  await fs.chmod(dirs, 0o777);
  await fs.chmod(programs.dir, 0o755);
  const pod = await fakePod(cleanup);
  const app = await pod.container();
  await startIn(
    cleanup,
    app.dir,
    [setpriv, '--reuid=65534', '--regid=65534', '--clear-groups', programs.watcher, dirs, '37'],
    { waitFor: 'ready' },
  );
  const outcomes = await runProcessChecks('/', { inotify: { topConsumers: 50 } });
  const uid = '65534';
  assert.equal(sampleValue(outcomes.inotify, 'node_auditor_inotify_watches', { uid }), 37);
  assert.equal(sampleValue(outcomes.inotify, 'node_auditor_inotify_instances', { uid }), 1);
  assert.equal(
    sampleValue(outcomes.inotify, 'node_auditor_inotify_top_consumer_watches', {
      namespace: '',
      pod: pod.uid,
      container: app.id.slice(0, 12),
      comm: 'watcher',
    }),
    37,
  );
  const limit = Number((await fs.readFile('/proc/sys/fs/inotify/max_user_watches', 'utf8')).trim());
  assert.equal(sampleValue(outcomes.inotify, 'node_auditor_inotify_max_user_watches', {}), limit);
  const consumer = outcomes.inotify.samples?.filter(
    (s) => s.metric === 'node_auditor_inotify_top_consumer_watches',
  );
  assert.ok(consumer !== undefined && consumer.length <= 50, 'top N only');
});

// The pause, zombies and inotify checks on fixture /proc trees: pods in every cgroup form
// (containerd, CRI-O, Docker; systemd and cgroupfs drivers; cgroup v1 and v2), an inotify hog
// that exhausts max_user_watches (a NotReady cause, end to end through the agent's /metrics),
// inherited inotify instances, and zombies the kernel moved to the root cgroup.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { httpGet, metricValue, runCli, startAgent, tempDir } from '../helpers.ts';
import { PAUSE_SIGCGT, writeProcTree } from '../procfs/procTree.ts';
import type { FixtureProcess } from '../procfs/procTree.ts';
import { runProcessChecks, sampleValue } from './runCheckOn.ts';
import { harness } from '../kubernetes/kubeHarness.ts';

const hex = (n: number) => n.toString(16).padStart(2, '0').repeat(32);
const uidOf = (n: number) =>
  `${String(n).padStart(8, '0')}-aaaa-4bbb-8ccc-${String(n).padStart(12, '0')}`;
const systemd = (n: number) => uidOf(n).replaceAll('-', '_');

/** One pod per cgroup form: [name, cgroup file of its pause, of its app]. */
const FORMS: [string, (pod: number, id: string) => string][] = [
  [
    'containerd systemd v2',
    (n, id) =>
      `0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${systemd(n)}.slice/cri-containerd-${id}.scope\n`,
  ],
  [
    'containerd systemd v1',
    (n, id) =>
      `12:pids:/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${systemd(n)}.slice/cri-containerd-${id}.scope\n1:name=systemd:/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${systemd(n)}.slice/cri-containerd-${id}.scope\n0::/\n`,
  ],
  ['containerd cgroupfs v2', (n, id) => `0::/kubepods/besteffort/pod${uidOf(n)}/${id}\n`],
  [
    'containerd cgroupfs v1',
    (n, id) =>
      `12:pids:/kubepods/besteffort/pod${uidOf(n)}/${id}\n3:memory:/kubepods/besteffort/pod${uidOf(n)}/${id}\n`,
  ],
  [
    'CRI-O systemd v2',
    (n, id) =>
      `0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${systemd(n)}.slice/crio-${id}.scope\n`,
  ],
  [
    'CRI-O systemd v1',
    (n, id) =>
      `12:pids:/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${systemd(n)}.slice/crio-${id}.scope\n`,
  ],
  ['CRI-O cgroupfs v2', (n, id) => `0::/kubepods/burstable/pod${uidOf(n)}/crio-${id}\n`],
  ['CRI-O cgroupfs v1', (n, id) => `12:pids:/kubepods/burstable/pod${uidOf(n)}/crio-${id}\n`],
  [
    'Docker systemd v2',
    (n, id) => `0::/kubepods.slice/kubepods-pod${systemd(n)}.slice/docker-${id}.scope\n`,
  ],
  [
    'Docker systemd v1',
    (n, id) => `12:pids:/kubepods.slice/kubepods-pod${systemd(n)}.slice/docker-${id}.scope\n`,
  ],
  ['Docker cgroupfs v2', (n, id) => `0::/kubepods/pod${uidOf(n)}/${id}\n`],
  ['Docker cgroupfs v1', (n, id) => `12:pids:/kubepods/pod${uidOf(n)}/${id}\n`],
];

function podsHost(): FixtureProcess[] {
  const processes: FixtureProcess[] = [
    { pid: 1, ppid: 0, comm: 'systemd', sigCgt: '00000001000014a2' },
    { pid: 90, ppid: 1, comm: 'containerd-shim', cgroup: '0::/system.slice/containerd.service\n' },
  ];
  FORMS.forEach(([, cgroup], i) => {
    const n = i + 1;
    const pausePid = 1000 + n * 10;
    processes.push({
      pid: pausePid,
      ppid: 90,
      comm: 'pause',
      uid: 65535,
      nspid: [pausePid, 1],
      sigCgt: PAUSE_SIGCGT,
      cgroup: cgroup(n, hex(n)),
    });
  });
  return processes;
}

test('pods of every runtime, cgroup driver and cgroup version are found by their pause process', async (t) => {
  const root = await tempDir(t);
  await writeProcTree(root, { processes: podsHost() });
  const { pause } = await runProcessChecks(root);
  assert.equal(sampleValue(pause, 'node_auditor_pod_sandboxes', { state: 'ok' }), FORMS.length);
  assert.deepEqual(pause.findings, []);
});

test("bad sandboxes: not PID 1, no SIGCHLD handler, a zombie; a hostPID pod's pause is left alone", async (t) => {
  const root = await tempDir(t);
  const processes = podsHost();
  const pauses = processes.filter((p) => p.comm === 'pause');
  const [notPid1, noChld, zombie, hostPid] = pauses as [
    FixtureProcess,
    FixtureProcess,
    FixtureProcess,
    FixtureProcess,
  ];
  notPid1.nspid = [notPid1.pid, 2];
  noChld.sigCgt = '0000000000004002';
  zombie.state = 'Z';
  hostPid.nspid = [hostPid.pid];
  await writeProcTree(root, { processes });
  const { pause } = await runProcessChecks(root);
  const ids = pause.findings.map((f) => f.id).sort();
  assert.deepEqual(ids, [
    `PauseNoSigchldHandler:${uidOf(2)}`,
    `PauseNotPid1:${uidOf(1)}`,
    `PauseZombie:${uidOf(3)}`,
  ]);
  assert.equal(sampleValue(pause, 'node_auditor_pod_sandboxes', { state: 'ok' }), FORMS.length - 3);
  assert.equal(sampleValue(pause, 'node_auditor_pod_sandboxes', { state: 'not_pid1' }), 1);
  assert.equal(
    sampleValue(pause, 'node_auditor_pod_sandboxes', { state: 'no_sigchld_handler' }),
    1,
  );
  assert.equal(sampleValue(pause, 'node_auditor_pod_sandboxes', { state: 'zombie' }), 1);
  const chld = pause.findings.find((f) => f.problem === 'PauseNoSigchldHandler');
  assert.ok(
    chld?.evidence.includes('SigCgt: 0000000000004002 (catches SIGINT, SIGTERM)'),
    chld?.evidence.join('\n'),
  );
  assert.match(chld?.title ?? '', new RegExp(`pod ${uidOf(2)}$`));
});

/** kubelet (host, root) and an app in a pod (root) holding all 64 of root's watches. */
function inotifyHost(): FixtureProcess[] {
  const processes = podsHost();
  processes.push(
    {
      pid: 700,
      ppid: 1,
      comm: 'kubelet',
      cgroup: '0::/system.slice/kubelet.service\n',
      inotify: [14],
    },
    {
      pid: 1012,
      ppid: 90,
      comm: 'node',
      nspid: [1012, 1],
      sigCgt: '0000000000004a02',
      cgroup: FORMS[0]?.[1](1, hex(99)) ?? '',
      inotify: [40, 10],
    },
    // A worker that inherited the app's first instance: the same instance, counted once.
    {
      pid: 1013,
      ppid: 1012,
      comm: 'node',
      nspid: [1013, 2],
      inotifySeed: 1012,
      cgroup: FORMS[0]?.[1](1, hex(99)) ?? '',
      inotify: [40],
    },
    // uid 1000 has instances of its own, far from any limit.
    { pid: 800, ppid: 1, comm: 'code', uid: 1000, inotify: [3, 0, 0] },
  );
  return processes;
}

/** `node-auditor check` of the inotify check alone on a fixture host, as JSON. */
function inotifyCheckArgs(root: string, ...more: string[]): string[] {
  return ['check', '--host-root', root, '--only', 'inotify', '--output', 'json', ...more];
}

test('inotify: watches and instances per uid against the limits; exhausted is critical with the cause and names the pod that holds most', async (t) => {
  const root = await tempDir(t);
  await writeProcTree(root, {
    processes: inotifyHost(),
    maxUserWatches: 64,
    maxUserInstances: 128,
  });
  const { inotify } = await runProcessChecks(root, { inotify: { topConsumers: 2 } });
  assert.equal(sampleValue(inotify, 'node_auditor_inotify_watches', { uid: '0' }), 64);
  assert.equal(sampleValue(inotify, 'node_auditor_inotify_instances', { uid: '0' }), 3);
  assert.equal(sampleValue(inotify, 'node_auditor_inotify_watches', { uid: '1000' }), 3);
  assert.equal(sampleValue(inotify, 'node_auditor_inotify_instances', { uid: '1000' }), 3);
  assert.equal(sampleValue(inotify, 'node_auditor_inotify_max_user_watches', {}), 64);
  const top =
    inotify.samples?.filter((s) => s.metric === 'node_auditor_inotify_top_consumer_watches') ?? [];
  assert.deepEqual(
    top.map((s) => [s.labels, s.value]),
    [
      [{ namespace: '', pod: uidOf(1), container: hex(99).slice(0, 12), comm: 'node' }, 50],
      [{ namespace: '', pod: '', container: '', comm: 'kubelet' }, 14],
    ],
  );
  const exhausted = inotify.findings.find((f) => f.id === 'InotifyWatchesExhausted:uid=0');
  assert.ok(exhausted, inotify.findings.map((f) => f.id).join(', '));
  assert.equal(exhausted.severity, 'critical');
  assert.equal(exhausted.cause, 'InotifyWatchesExhausted');
  assert.match(exhausted.message, /the whole of fs\.inotify\.max_user_watches \(64\)/);
  assert.match(
    exhausted.message,
    new RegExp(
      `Most are held by node \\(pid 1012\\) in pod ${uidOf(1)} container ${hex(99).slice(0, 12)}`,
    ),
  );
  assert.equal(
    exhausted.evidence[1],
    `50 watches (2 instances): node (pid 1012), uid 0, pod ${uidOf(1)} container ${hex(99).slice(0, 12)}`,
  );
  assert.equal(
    inotify.findings.some((f) => f.id.endsWith('uid=1000')),
    false,
  );
  // At 90% a warning, at 95% critical (the defaults), without the cause.
  const root70 = await tempDir(t);
  await writeProcTree(root70, { processes: inotifyHost(), maxUserWatches: 70 });
  const near = (await runProcessChecks(root70)).inotify.findings.find(
    (f) => f.id === 'InotifyWatchesNearLimit:uid=0',
  );
  assert.equal(near?.severity, 'warning');
  assert.equal(near.cause, undefined);
  assert.match(near.title, /at 91% of the limit/);
});

test("agent: an exhausted inotify limit is the node's NotReady cause on /metrics, with the top holders", async (t) => {
  const root = await tempDir(t);
  await writeProcTree(root, { processes: inotifyHost(), maxUserWatches: 64 });
  const check = await runCli(inotifyCheckArgs(root));
  assert.equal(check.code, 1, check.stderr);
  const report = JSON.parse(check.stdout) as { findings: { id: string; cause?: string }[] };
  assert.equal(
    report.findings.find((f) => f.id === 'InotifyWatchesExhausted:uid=0')?.cause,
    'InotifyWatchesExhausted',
  );
  // the zombies check off: the shared pass still reports itself
  const agent = await startAgent(t, ['--host-root', root], {
    env: { NODE_AUDITOR_CHECKS__ZOMBIES__ENABLED: 'false' },
  });
  const metrics = (await httpGet(`${agent.url}/metrics`)).body;
  assert.equal(metricValue(metrics, 'node_auditor_process_scan_processes'), inotifyHost().length);
  assert.equal(
    metricValue(metrics, 'node_auditor_notready_cause', { cause: 'InotifyWatchesExhausted' }),
    1,
  );
  assert.equal(metricValue(metrics, 'node_auditor_inotify_watches', { uid: '0' }), 64);
  assert.equal(
    metricValue(metrics, 'node_auditor_inotify_top_consumer_watches', {
      namespace: '',
      pod: uidOf(1),
      container: hex(99).slice(0, 12),
      comm: 'node',
    }),
    50,
  );
  assert.equal(metricValue(metrics, 'node_auditor_pod_sandboxes', { state: 'ok' }), FORMS.length);
  await agent.stop();
});

test('check with a kubeconfig names the pod and container of a process as run does (one list of the pods on this node); a failed list leaves the UID, with a warning', async (t) => {
  const root = await tempDir(t);
  await writeProcTree(root, { processes: inotifyHost(), maxUserWatches: 64 });
  const h = await harness(t);
  // the inotify hog's pod, and one with the same container elsewhere that must not be asked for
  h.fake.addPod({
    namespace: 'ci',
    name: 'builder-0',
    nodeName: 'k1-node01',
    uid: uidOf(1),
    containers: [{ name: 'webpack', containerID: `containerd://${hex(99)}` }],
  });
  h.fake.addPod({ namespace: 'ci', name: 'elsewhere', nodeName: 'k1-node02' });
  const args = inotifyCheckArgs(root, '--kubeconfig', h.kubeconfig, '--node-name', 'k1-node01');
  const exhausted = (stdout: string) =>
    (
      JSON.parse(stdout) as { findings: { id: string; message: string; evidence: string[] }[] }
    ).findings.find((f) => f.id === 'InotifyWatchesExhausted:uid=0');

  const named = await runCli(args);
  assert.equal(named.code, 1, named.stderr);
  const finding = exhausted(named.stdout);
  assert.match(
    finding?.message ?? '',
    /Most are held by node \(pid 1012\) in pod ci\/builder-0 container webpack/,
  );
  assert.equal(
    finding?.evidence[1],
    '50 watches (2 instances): node (pid 1012), uid 0, pod ci/builder-0 container webpack',
  );
  // one list, of this node's pods only, and nothing else of pods (no watch in a one-shot run)
  const podCalls = h.fake.requests.filter((r) => r.path === '/api/v1/pods');
  assert.deepEqual(
    podCalls.map((r) => `${r.method} ${r.query.toString()} ${r.status}`),
    [
      `GET ${new URLSearchParams({ fieldSelector: 'spec.nodeName=k1-node01', resourceVersion: '0' }).toString()} 200`,
    ],
  );

  // the API fails the list: the check still runs, the pod is its UID, and stderr says why
  h.fake.failNext(1, 500, { match: (_method, path) => path.startsWith('/api/v1/pods') });
  const unnamed = await runCli(args);
  assert.equal(unnamed.code, 1, unnamed.stderr);
  assert.match(
    exhausted(unnamed.stdout)?.message ?? '',
    new RegExp(
      `Most are held by node \\(pid 1012\\) in pod ${uidOf(1)} container ${hex(99).slice(0, 12)}`,
    ),
  );
  assert.match(unnamed.stderr, /cannot list the pods on node k1-node01 \(.*500/);
  assert.match(unnamed.stderr, /processes are named by pod UID/);
});

test("zombies moved to the root cgroup (cgroup v1) are counted for their parent's container; a non-reaping container PID 1 is called out", async (t) => {
  const root = await tempDir(t);
  const processes = podsHost();
  const app = FORMS[2]?.[1](3, hex(77)) ?? '';
  processes.push(
    {
      pid: 1500,
      ppid: 90,
      comm: 'python',
      nspid: [1500, 1],
      cgroup: app,
      sigCgt: '0000000000000002',
    },
    {
      pid: 1501,
      ppid: 1500,
      comm: 'sh',
      state: 'Z',
      nspid: [1501, 2],
      cgroup: '12:pids:/\n',
      startTicks: 500,
    },
    {
      pid: 1502,
      ppid: 1500,
      comm: 'sh',
      state: 'Z',
      nspid: [1502, 3],
      cgroup: '12:pids:/\n',
      startTicks: 900,
    },
  );
  await writeProcTree(root, { processes, bootTime: Math.floor(Date.now() / 1000) - 3600 });
  const { zombies, pause } = await runProcessChecks(root);
  assert.equal(
    sampleValue(zombies, 'node_auditor_zombie_processes', {
      pod: uidOf(3),
      container: hex(77).slice(0, 12),
    }),
    2,
  );
  assert.equal(
    sampleValue(zombies, 'node_auditor_zombie_processes', { pod: '', container: '' }),
    0,
  );
  const finding = zombies.findings.find((f) => f.id === 'ContainerInitNotReaping:1500');
  assert.ok(finding, zombies.findings.map((f) => f.id).join(', '));
  assert.match(
    finding.message,
    /^python is PID 1 of the container's PID namespace but neither catches nor ignores SIGCHLD/,
  );
  // Oldest first, with how long ago it started (boot an hour ago, started 5 s after boot).
  assert.match(finding.evidence[1] ?? '', /^zombie sh \(pid 1501\), started 59\.9m ago$/);
  // pause is not their parent: its sandbox is fine.
  assert.deepEqual(pause.findings, []);
});

test("PID headroom: tasks against kernel.pid_max, and a pod's pids.current against pids.max", async (t) => {
  const root = await tempDir(t);
  const processes = podsHost();
  (processes[0] as FixtureProcess).threads = 800;
  await writeProcTree(root, {
    processes,
    pidMax: 1000,
    files: {
      [`sys/fs/cgroup/kubepods/besteffort/pod${uidOf(3)}/pids.max`]: '10\n',
      [`sys/fs/cgroup/kubepods/besteffort/pod${uidOf(3)}/pids.current`]: '9\n',
      [`sys/fs/cgroup/pids/kubepods/besteffort/pod${uidOf(4)}/pids.max`]: 'max\n',
      [`sys/fs/cgroup/pids/kubepods/besteffort/pod${uidOf(4)}/pids.current`]: '9\n',
    },
  });
  const { zombies } = await runProcessChecks(root);
  const host = zombies.findings.find((f) => f.id === 'PidsNearLimit');
  // 800 + 13 single-threaded processes = 813 of 1000: warning (70%), not critical (90%).
  assert.equal(host?.severity, 'warning');
  assert.match(host.message, /813 PIDs in use of 1000/);
  const pod = zombies.findings.find((f) => f.id === `PodPidsNearLimit:${uidOf(3)}`);
  assert.equal(pod?.severity, 'critical');
  assert.equal(
    zombies.findings.some((f) => f.id === `PodPidsNearLimit:${uidOf(4)}`),
    false,
    'no limit: nothing to run out of',
  );
  assert.equal(sampleValue(zombies, 'node_auditor_pid_usage_ratio', { pod: '' }), 0.813);
  assert.equal(sampleValue(zombies, 'node_auditor_pid_usage_ratio', { pod: uidOf(3) }), 0.9);
});

test('PID headroom of a pod with no pause process (CRI-O drop_infra_ctr): found from its containers', async (t) => {
  const root = await tempDir(t);
  const pod = (n: number) =>
    `0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${systemd(n)}.slice/crio-${hex(n)}.scope\n`;
  const slice = (n: number) =>
    `sys/fs/cgroup/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${systemd(n)}.slice`;
  await writeProcTree(root, {
    processes: [
      { pid: 1, ppid: 0, comm: 'systemd' },
      { pid: 90, ppid: 1, comm: 'conmon', cgroup: '0::/system.slice/crio.service\n' },
      // ordinary container processes: no zombie, no inotify, not an infra command
      { pid: 2001, ppid: 90, comm: 'nginx', cgroup: pod(21) },
      { pid: 2002, ppid: 2001, comm: 'nginx', cgroup: pod(21) },
      { pid: 3001, ppid: 90, comm: 'redis-server', cgroup: pod(22) },
    ],
    files: {
      [`${slice(21)}/pids.max`]: '20\n',
      [`${slice(21)}/pids.current`]: '19\n',
      [`${slice(22)}/pids.max`]: '100\n',
      [`${slice(22)}/pids.current`]: '2\n',
    },
  });
  const { zombies, pause } = await runProcessChecks(root);
  assert.equal(sampleValue(pause, 'node_auditor_pod_sandboxes', { state: 'ok' }), 0);
  const near = zombies.findings.filter((f) => f.id.startsWith('PodPidsNearLimit:'));
  assert.deepEqual(
    near.map((f) => [f.id, f.severity]),
    [[`PodPidsNearLimit:${uidOf(21)}`, 'critical']],
  );
  assert.equal(sampleValue(zombies, 'node_auditor_pid_usage_ratio', { pod: uidOf(21) }), 0.95);
  assert.equal(sampleValue(zombies, 'node_auditor_pid_usage_ratio', { pod: uidOf(22) }), 0.02);
});

// NodeConditions against an API server that merges status.conditions as a real one does.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { draft } from '../../agent/findings/finding.ts';
import { FindingStore } from '../../agent/findings/findingStore.ts';
import { OwnNode } from '../../agent/kubernetes/ownNode.ts';
import type { NodeCondition } from '../kube/fakeKubeApi.ts';
import { NodeConditions } from '../../agent/sinks/kubernetes/nodeConditions.ts';
import type { NodeConditionsOptions } from '../../agent/sinks/kubernetes/nodeConditions.ts';
import { eventually, sleep } from '../helpers.ts';
import { forbidden, harness, silent } from './kubeHarness.ts';
import type { Harness } from './kubeHarness.ts';

const exhausted = draft('InotifyWatchesExhausted', 'uid0', {
  severity: 'critical',
  title: 'inotify watches 8192/8192 used by uid 0',
  message: 'm',
  evidence: [],
  cause: 'InotifyWatchesExhausted',
});

async function watching(t: Parameters<typeof harness>[0], h: Harness): Promise<OwnNode> {
  const node = new OwnNode();
  const abort = new AbortController();
  void node.run(h.api, 'k1-node01', silent, abort.signal);
  t.after(() => {
    abort.abort();
  });
  await eventually(() => node.node, 5000, 'the Node');
  return node;
}

/** The sink as the agent builds it, for these findings and these checks having run. */
/** What node-problem-detector's kernel monitor rules say: DockerHung sets KernelDeadlock. */
const RULE_PROBLEMS = new Map([['KernelDeadlock', ['DockerHung']]]);

function sinkFor(
  h: Harness,
  node: OwnNode,
  store: FindingStore,
  checks: readonly string[] | (() => ReadonlySet<string>) = ['inotify', 'logs'],
  overrides: Partial<NodeConditionsOptions> = {},
): NodeConditions {
  const ran = typeof checks === 'function' ? undefined : new Set(checks);
  return new NodeConditions({
    api: h.api,
    nodeName: 'k1-node01',
    ownNode: node,
    findings: () => store.active(),
    checksRun: typeof checks === 'function' ? checks : () => ran as ReadonlySet<string>,
    heartbeatMs: 60_000,
    log: silent,
    ruleProblems: () => RULE_PROBLEMS,
    ...overrides,
  });
}

/**
 * The sink wired as kubernetesSession.ts wires it (synced on every finding transition and every
 * change of the Node), stopped when the test ends.
 */
function wiredSink(
  t: Parameters<typeof harness>[0],
  h: Harness,
  node: OwnNode,
  store: FindingStore,
  checks?: readonly string[] | (() => ReadonlySet<string>),
  overrides?: Partial<NodeConditionsOptions>,
): NodeConditions {
  const sink = sinkFor(h, node, store, checks, overrides);
  t.after(() => {
    sink.stop();
  });
  store.onTransition(() => {
    sink.sync();
  });
  node.onChange(() => {
    sink.sync();
  });
  return sink;
}

function condition(h: Harness, type: string) {
  return h.fake.getNode('k1-node01').status.conditions?.find((c) => c.type === type);
}

/** Until the Node says InotifyPressure True (5 s at most). */
function inotifyPressureTrue(h: Harness, what: string): Promise<true> {
  return eventually(
    () => (condition(h, 'InotifyPressure')?.status === 'True' ? true : undefined),
    5000,
    what,
  );
}

test('a condition is raised True while the problem lasts and set back to False when it clears', async (t) => {
  const h = await harness(t);
  const node = await watching(t, h);
  const store = new FindingStore();
  const sink = wiredSink(t, h, node, store);

  store.reconcile('inotify', [exhausted]);
  sink.start();
  await inotifyPressureTrue(h, 'InotifyPressure True');
  const raised = condition(h, 'InotifyPressure');
  assert.equal(raised?.reason, 'NodeAuditorInotifyWatchesExhausted');
  assert.equal(raised?.message, 'inotify watches 8192/8192 used by uid 0');
  // the other conditions are there, False, with reasons of the agent's own (not NPD's)
  assert.equal(condition(h, 'KernelDeadlock')?.status, 'False');
  assert.equal(condition(h, 'KernelDeadlock')?.reason, 'NodeAuditorKernelHasNoDeadlock');
  // and the kubelet's Ready is untouched (a merge patch would have replaced the whole list)
  assert.equal(condition(h, 'Ready')?.status, 'True');
  assert.equal(condition(h, 'Ready')?.reason, 'KubeletReady');

  await sleep(1100); // a transition time of its own (whole seconds)
  store.reconcile('inotify', []);
  await eventually(
    () => (condition(h, 'InotifyPressure')?.status === 'False' ? true : undefined),
    5000,
    'InotifyPressure False',
  );
  const cleared = condition(h, 'InotifyPressure');
  assert.equal(cleared?.reason, 'NodeAuditorInotifyHasHeadroom');
  assert.notEqual(cleared?.lastTransitionTime, raised?.lastTransitionTime);
  const patches = h.fake.requests.filter(
    (r) => r.method === 'PATCH' && r.path === '/api/v1/nodes/k1-node01/status',
  );
  assert.ok(patches.every((p) => p.contentType === 'application/strategic-merge-patch+json'));
  assert.deepEqual(forbidden(h.fake), []);
});

test('a condition a log rule names (DockerHung -> KernelDeadlock) is raised, and cleared after a restart too', async (t) => {
  const h = await harness(t);
  const node = await watching(t, h);
  const store = new FindingStore();
  const hung = draft('DockerHung', 'incident:docker', {
    severity: 'warning',
    title: 'task docker blocked for more than 120 seconds',
    message: 'm',
    evidence: [],
  });
  const first = wiredSink(t, h, node, store);
  store.reconcile('logs', [hung]);
  first.start();
  await eventually(
    () => (condition(h, 'KernelDeadlock')?.reason === 'NodeAuditorDockerHung' ? true : undefined),
    5000,
    'KernelDeadlock True (DockerHung)',
  );
  assert.equal(condition(h, 'KernelDeadlock')?.status, 'True');
  first.stop();

  // a new agent: the incident is over. The condition's reason is the agent's (NodeAuditor...):
  // it is set back to False, not left alone as another writer's
  const store2 = new FindingStore();
  const second = wiredSink(t, h, node, store2);
  store2.reconcile('logs', []);
  second.start();
  await eventually(
    () => (condition(h, 'KernelDeadlock')?.status === 'False' ? true : undefined),
    5000,
    'KernelDeadlock False',
  );
  assert.equal(condition(h, 'KernelDeadlock')?.reason, 'NodeAuditorKernelHasNoDeadlock');
});

test('after a restart a still-true condition stays True, with its transition time; nothing before the first pass', async (t) => {
  const h = await harness(t);
  const node = await watching(t, h);
  // the first agent raised it
  const before = new FindingStore();
  before.reconcile('inotify', [exhausted]);
  const first = sinkFor(h, node, before);
  first.start();
  await inotifyPressureTrue(h, 'raised');
  first.stop();
  const transition = condition(h, 'InotifyPressure')?.lastTransitionTime;
  const patchesBefore = h.fake.requests.filter((r) => r.method === 'PATCH').length;

  // a new agent: no findings yet (first pass running): it must write nothing
  await sleep(1100);
  const after = new FindingStore();
  const second = wiredSink(t, h, node, after);
  second.sync();
  await sleep(300);
  assert.equal(
    h.fake.requests.filter((r) => r.method === 'PATCH').length,
    patchesBefore,
    'no write before the first pass',
  );
  // first pass done, the problem is still there
  after.reconcile('inotify', [exhausted]);
  second.start();
  await eventually(
    () =>
      h.fake.requests.filter((r) => r.method === 'PATCH').length > patchesBefore ? true : undefined,
    5000,
    'the write',
  );
  assert.equal(condition(h, 'InotifyPressure')?.status, 'True');
  assert.equal(
    condition(h, 'InotifyPressure')?.lastTransitionTime,
    transition,
    'transition time kept',
  );
  const bodies = h.fake.requests
    .filter((r) => r.method === 'PATCH')
    .map((r) => JSON.stringify(r.body));
  assert.ok(
    bodies.every((b) => !b.includes('"type":"InotifyPressure","status":"False"')),
    'never flipped to False',
  );
});

test("nothing is said for conditions no check looked at, and another writer's condition is left alone", async (t) => {
  const h = await harness(t);
  const node = await watching(t, h);
  // node-problem-detector owns KernelDeadlock on this node
  h.fake.updateNode('k1-node01', (n) => {
    n.status.conditions?.push({
      type: 'KernelDeadlock',
      status: 'True',
      reason: 'AUFSUmountHung',
      message: 'task hung',
      lastHeartbeatTime: '2026-11-22T01:00:00Z',
      lastTransitionTime: '2026-11-22T01:00:00Z',
    });
  });
  await eventually(
    () => (node.condition('KernelDeadlock') ? true : undefined),
    5000,
    'the watch to see it',
  );
  const store = new FindingStore();
  let ran = new Set<string>(['sysctl']);
  const sink = wiredSink(t, h, node, store, () => ran);
  sink.start();
  await sleep(500);
  assert.equal(
    h.fake.requests.filter((r) => r.method === 'PATCH').length,
    0,
    'only sysctl ran: no condition to speak for',
  );

  ran = new Set(['inotify', 'logs']);
  sink.sync();
  await eventually(
    () => (condition(h, 'InotifyPressure') ? true : undefined),
    5000,
    'our conditions',
  );
  assert.equal(condition(h, 'KernelDeadlock')?.status, 'True', "NPD's condition kept");
  assert.equal(condition(h, 'KernelDeadlock')?.reason, 'AUFSUmountHung');
  const written = h.fake.requests
    .filter((r) => r.method === 'PATCH')
    .map((r) => JSON.stringify(r.body));
  assert.ok(
    written.every((b) => !b.includes('KernelDeadlock')),
    'never written',
  );
});

/** Log lines (JSON) of one sink. */
function capturingLog() {
  const lines: { event?: string; type?: string }[] = [];
  const log = pino(
    { level: 'info' },
    {
      write: (line: string) => {
        lines.push(JSON.parse(line) as { event?: string; type?: string });
      },
    },
  );
  return { log, lines };
}

/**
 * Another writer's condition (node-problem-detector's, or one the agent's build before the
 * NodeAuditor prefix wrote), written as NPD's kernel monitor writes it: its reason and message,
 * a fresh heartbeat, the transition time kept while the status is.
 */
function writeCondition(
  h: Harness,
  type: string,
  status: 'True' | 'False',
  reason: string,
  message: string,
) {
  h.fake.updateNode('k1-node01', (n) => {
    const conditions = n.status.conditions ?? [];
    const old = conditions.find((c) => c.type === type);
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    n.status.conditions = [
      ...conditions.filter((c) => c.type !== type),
      {
        type,
        status,
        reason,
        message,
        lastHeartbeatTime: now,
        lastTransitionTime: old?.status === status ? old.lastTransitionTime : now,
      },
    ];
  });
}

/** The nodes/status patches the agent sent that mention a condition type. */
function patchesOf(h: Harness, type: string): number {
  return h.fake.requests.filter(
    (r) =>
      r.method === 'PATCH' &&
      r.path === '/api/v1/nodes/k1-node01/status' &&
      JSON.stringify(r.body).includes(`"type":"${type}"`),
  ).length;
}

/** What NPD's kernel monitor writes (and heartbeats): no deadlock (its healthy reason), filesystem read-only. */
function npdKernelMonitorWrites(h: Harness): void {
  writeCondition(h, 'KernelDeadlock', 'False', 'KernelHasNoDeadlock', 'kernel has no deadlock');
  writeCondition(
    h,
    'ReadonlyFilesystem',
    'True',
    'FilesystemIsReadOnly',
    'Remounting filesystem read-only',
  );
}

/** What the agent's logs check reports when it sees a task hung in the kernel. */
function deadlockSeen(): FindingStore {
  const store = new FindingStore();
  store.reconcile('logs', [
    draft('KernelDeadlock', 'incident:kernel', {
      severity: 'critical',
      title: 'task containerd blocked for more than 120 seconds',
      message: 'm',
      evidence: [],
    }),
  ]);
  return store;
}

/** node-problem-detector's kernel-monitor.json, loaded into the agent too (npdConfigs). */
const NPD_RULE_PROBLEMS = new Map([
  ['KernelDeadlock', ['DockerHung']],
  ['ReadonlyFilesystem', ['FilesystemIsReadOnly']],
]);

test("node-problem-detector's conditions, with NPD's own reasons, are never written over: no flip-flop across heartbeats", async (t) => {
  const h = await harness(t);
  const node = await watching(t, h);
  npdKernelMonitorWrites(h);
  await eventually(
    () =>
      node.condition('ReadonlyFilesystem') && node.condition('KernelDeadlock') ? true : undefined,
    5000,
    "the watch to see NPD's conditions",
  );
  // the agent sees a deadlock NPD does not, and no read-only filesystem
  const store = deadlockSeen();
  const { log, lines } = capturingLog();
  const foreign: [string, boolean][] = [];
  const sink = wiredSink(t, h, node, store, ['logs'], {
    heartbeatMs: 1000,
    log,
    ruleProblems: () => NPD_RULE_PROBLEMS,
    onForeign: (type, isForeign) => foreign.push([type, isForeign]),
  });
  sink.start();
  await eventually(
    () => (condition(h, 'KubeletUnhealthy') ? true : undefined),
    5000,
    'our conditions',
  );
  // NPD heartbeats its conditions; the agent heartbeats its own (every second here)
  for (let i = 0; i < 3; i++) {
    await sleep(800);
    npdKernelMonitorWrites(h);
  }
  await sleep(1200);
  assert.ok(patchesOf(h, 'KubeletUnhealthy') >= 3, 'the agent kept heartbeating its own');
  assert.equal(patchesOf(h, 'KernelDeadlock'), 0, "NPD's KernelDeadlock never written");
  assert.equal(patchesOf(h, 'ReadonlyFilesystem'), 0, "NPD's ReadonlyFilesystem never written");
  assert.equal(condition(h, 'KernelDeadlock')?.reason, 'KernelHasNoDeadlock');
  assert.equal(condition(h, 'ReadonlyFilesystem')?.status, 'True');
  assert.equal(condition(h, 'ReadonlyFilesystem')?.reason, 'FilesystemIsReadOnly');
  // said once per type, and counted, however many times the sink looked
  assert.deepEqual(foreign.sort(), [
    ['KernelDeadlock', true],
    ['ReadonlyFilesystem', true],
  ]);
  assert.deepEqual(
    lines
      .filter((l) => l.event === 'kube.conditions.foreign')
      .map((l) => l.type)
      .sort(),
    ['KernelDeadlock', 'ReadonlyFilesystem'],
  );
});

test("a condition of the agent that NPD writes over is NPD's from then on; once NPD's is gone, the agent writes it again", async (t) => {
  const h = await harness(t);
  const node = await watching(t, h);
  const store = deadlockSeen();
  const foreign: [string, boolean][] = [];
  const sink = wiredSink(t, h, node, store, ['logs'], {
    heartbeatMs: 1000,
    onForeign: (type, isForeign) => foreign.push([type, isForeign]),
  });
  sink.start();
  await eventually(
    () => (condition(h, 'KernelDeadlock')?.status === 'True' ? true : undefined),
    5000,
    'KernelDeadlock True',
  );
  assert.equal(condition(h, 'KernelDeadlock')?.reason, 'NodeAuditorKernelDeadlock');

  // NPD starts on the node and writes its own view
  writeCondition(h, 'KernelDeadlock', 'False', 'KernelHasNoDeadlock', 'kernel has no deadlock');
  await eventually(() => (foreign.length > 0 ? true : undefined), 5000, 'the agent to notice');
  const written = patchesOf(h, 'KernelDeadlock');
  await sleep(2500); // two of the agent's heartbeats
  assert.equal(patchesOf(h, 'KernelDeadlock'), written, 'not taken back on a heartbeat');
  assert.equal(condition(h, 'KernelDeadlock')?.status, 'False');
  assert.equal(condition(h, 'KernelDeadlock')?.reason, 'KernelHasNoDeadlock');

  // NPD is removed and its condition with it (a JSON merge patch of the list, by hand)
  h.fake.updateNode('k1-node01', (n) => {
    n.status.conditions = n.status.conditions?.filter((c) => c.type !== 'KernelDeadlock');
  });
  await eventually(
    () =>
      condition(h, 'KernelDeadlock')?.reason === 'NodeAuditorKernelDeadlock' ? true : undefined,
    5000,
    "KernelDeadlock the agent's again",
  );
  assert.deepEqual(foreign, [
    ['KernelDeadlock', true],
    ['KernelDeadlock', false],
  ]);
});

test("an upgrade: what the build before the NodeAuditor prefix wrote is still the agent's, NPD's reasons are not", async (t) => {
  const h = await harness(t);
  const node = await watching(t, h);
  // the build before wrote bare reasons: its InotifyPressure (a type NPD does not have) and
  // KubeletUnhealthy and ContainerRuntimeUnhealthy True with the cause (NPD never says those)
  writeCondition(
    h,
    'InotifyPressure',
    'True',
    'InotifyWatchesExhausted',
    'inotify watches 8192/8192',
  );
  writeCondition(h, 'KubeletUnhealthy', 'True', 'KubeletDown', 'kubelet.service: Failed');
  writeCondition(h, 'ContainerRuntimeUnhealthy', 'True', 'ContainerRuntimeDown', 'containerd down');
  // node-problem-detector's, with the reasons its health checker and kernel monitor write
  writeCondition(
    h,
    'FrequentKubeletRestart',
    'True',
    'FrequentKubeletRestart',
    'kubelet restarted',
  );
  writeCondition(
    h,
    'XfsShutdown',
    'True',
    'XfsHasShutdown',
    'XFS (sda1): Shutting down filesystem',
  );
  await eventually(
    () => (node.condition('XfsShutdown') ? true : undefined),
    5000,
    'the watch to see them',
  );
  const foreign: [string, boolean][] = [];
  const store = new FindingStore(); // the problems are over
  wiredSink(t, h, node, store, ['inotify', 'logs', 'kubelet-cert', 'container-runtime'], {
    onForeign: (type, isForeign) => foreign.push([type, isForeign]),
  }).start();
  await eventually(
    () =>
      ['InotifyPressure', 'KubeletUnhealthy', 'ContainerRuntimeUnhealthy'].every(
        (type) => condition(h, type)?.status === 'False',
      )
        ? true
        : undefined,
    5000,
    'the conditions the build before raised, cleared',
  );
  assert.equal(condition(h, 'InotifyPressure')?.reason, 'NodeAuditorInotifyHasHeadroom');
  assert.equal(condition(h, 'KubeletUnhealthy')?.reason, 'NodeAuditorKubeletIsHealthy');
  assert.equal(
    condition(h, 'ContainerRuntimeUnhealthy')?.reason,
    'NodeAuditorContainerRuntimeIsHealthy',
  );
  // NPD's are left as NPD wrote them, and said to be another writer's
  assert.equal(condition(h, 'FrequentKubeletRestart')?.status, 'True');
  assert.equal(condition(h, 'FrequentKubeletRestart')?.reason, 'FrequentKubeletRestart');
  assert.equal(condition(h, 'XfsShutdown')?.reason, 'XfsHasShutdown');
  assert.equal(patchesOf(h, 'FrequentKubeletRestart') + patchesOf(h, 'XfsShutdown'), 0);
  assert.deepEqual(foreign.sort(), [
    ['FrequentKubeletRestart', true],
    ['XfsShutdown', true],
  ]);
});

test("a condition of the agent's that someone removes or changes is written again at once, not at the next heartbeat; changed again soon after, only once a wait is over", async (t) => {
  const h = await harness(t);
  const node = await watching(t, h);
  const store = new FindingStore();
  // heartbeat: a minute; the first wait between two rewrites: a second (5 s by default)
  wiredSink(t, h, node, store, ['inotify'], { rewriteFloorMs: 1000 }).start();
  store.reconcile('inotify', [exhausted]);
  await inotifyPressureTrue(h, 'raised');
  const rewritten = async (what: string, tamper: (c: NodeCondition[]) => NodeCondition[]) => {
    const before = patchesOf(h, 'InotifyPressure');
    const at = performance.now();
    h.fake.updateNode('k1-node01', (n) => {
      n.status.conditions = tamper(n.status.conditions ?? []);
    });
    await eventually(
      () => (patchesOf(h, 'InotifyPressure') > before ? true : undefined),
      5000,
      `written again after ${what}`,
    );
    await inotifyPressureTrue(h, `True after ${what}`);
    assert.equal(condition(h, 'InotifyPressure')?.reason, 'NodeAuditorInotifyWatchesExhausted');
    return performance.now() - at;
  };
  // a JSON merge patch of status.conditions by some other tool drops it
  const once = await rewritten('it was removed', (list) =>
    list.filter((c) => c.type !== 'InotifyPressure'),
  );
  assert.ok(once < 900, `at once (${Math.round(once)} ms)`);
  // someone sets it False by hand, keeping the agent's reason, right after: written again too,
  // but only after the wait, as another writer that disagrees would be
  const again = await rewritten('it was set False', (list) =>
    list.map((c) => (c.type === 'InotifyPressure' ? { ...c, status: 'False' } : c)),
  );
  assert.ok(again >= 900 - once, `after the wait (${Math.round(again)} ms)`);
});

test('transition times come from what was last written, not from a Node the watch has not caught up with', async (t) => {
  const h = await harness(t);
  const node = await watching(t, h);
  const store = new FindingStore();
  const sink = wiredSink(t, h, node, store, ['inotify']);
  store.reconcile('inotify', [exhausted]);
  sink.start();
  await inotifyPressureTrue(h, 'raised');
  const since = condition(h, 'InotifyPressure')?.lastTransitionTime;
  await sleep(1100);
  // the title changes; the status does not: same transition time, even if the watch lags
  store.reconcile('inotify', [
    { ...exhausted, title: 'inotify watches 8192/8192 used by uid 0 (again)' },
  ]);
  await eventually(
    () => (condition(h, 'InotifyPressure')?.message?.includes('again') ? true : undefined),
    5000,
    'the new message',
  );
  assert.equal(condition(h, 'InotifyPressure')?.lastTransitionTime, since);
});

/** The PATCHes of nodes/status so far, and InotifyPressure as each of them wrote it. */
function statusPatches(h: Harness) {
  return h.fake.requests
    .filter((r) => r.method === 'PATCH' && r.path === '/api/v1/nodes/k1-node01/status')
    .map((r) => ({
      at: r.at,
      status: r.status,
      inotify: (
        r.body as { status?: { conditions?: { type: string; [k: string]: unknown }[] } }
      ).status?.conditions?.find((c) => c.type === 'InotifyPressure'),
    }));
}

/**
 * Two agents on one Node that disagree about InotifyPressure (a host `npm start` agent and the
 * pod, two releases, a rolling update's surge pod): the first sees the exhaustion, the second
 * does not. Each watches the Node and is wired as kubernetesSession.ts wires it.
 */
async function disagreeingAgents(
  t: Parameters<typeof harness>[0],
  h: Harness,
  overrides: Partial<NodeConditionsOptions>,
) {
  const agents = [true, false].map((exhaustedHere) => {
    const store = new FindingStore();
    store.reconcile('inotify', exhaustedHere ? [exhausted] : []);
    const { log, lines } = capturingLog();
    const contested: boolean[] = [];
    return { store, log, lines, contested };
  });
  const sinks: NodeConditions[] = [];
  for (const agent of agents) {
    const node = await watching(t, h);
    sinks.push(
      wiredSink(t, h, node, agent.store, ['inotify'], {
        log: agent.log,
        onContested: (type, contested) => {
          if (type === 'InotifyPressure') agent.contested.push(contested);
        },
        ...overrides,
      }),
    );
  }
  for (const sink of sinks) sink.start();
  const [seeing, notSeeing] = agents as [(typeof agents)[0], (typeof agents)[0]];
  return { sinks, seeing, notSeeing };
}

/** The nodes/status patches that wrote InotifyPressure with this status, and when (ms). */
function patchTimes(h: Harness, status: 'True' | 'False'): number[] {
  return statusPatches(h)
    .filter((p) => p.status === 200 && p.inotify?.status === status)
    .map((p) => p.at);
}

test('two agents on one Node that disagree do not patch it in a loop: a handful of patches, and it is said', async (t) => {
  const h = await harness(t);
  // as configured by default (heartbeat a minute, rewrites 5 s apart at first)
  const { seeing, notSeeing } = await disagreeingAgents(t, h, {});
  await sleep(2000);
  const patches = statusPatches(h).length;
  // each writes its view, and writes it again once when the other overwrites it; the one
  // overwritten again then waits (before: 1848 patches in these 2 s)
  assert.ok(patches >= 2 && patches <= 6, `${String(patches)} patches in 2 s`);
  const agents = [seeing, notSeeing];
  assert.deepEqual(
    agents.flatMap((a) => a.contested),
    [true],
  );
  const said = agents.flatMap((a) =>
    a.lines.filter((l) => l.event === 'kube.conditions.contested'),
  );
  assert.equal(said.length, 1);
  assert.equal(said[0]?.type, 'InotifyPressure');
});

test("a contested condition's rewrites are spaced out up to the heartbeat period; once the other writer is gone, it is uncontested", async (t) => {
  const h = await harness(t);
  const { sinks, seeing } = await disagreeingAgents(t, h, {
    heartbeatMs: 800,
    rewriteFloorMs: 100,
  });
  const started = Date.now(); // as the fake stamps requests
  await sleep(4000);
  const mine = patchTimes(h, 'True');
  // its first write, its first rewrite at once, then 100, 200, 400, 800, 800 ... ms apart
  const gaps = mine.slice(2).map((at, i) => at - (mine[i + 1] as number));
  assert.ok(
    gaps.every((gap) => gap >= 90),
    `never closer than the first wait: ${gaps.map(Math.round).join(', ')} ms`,
  );
  assert.ok(mine.length <= 12, `${String(mine.length)} patches in 4 s`);
  const lastTwoPeriods = mine.filter((at) => at >= started + 4000 - 1600);
  assert.ok(
    lastTwoPeriods.length <= 3,
    `at most one per heartbeat period by now: ${mine.map((at) => Math.round(at - started)).join(', ')} ms`,
  );
  assert.deepEqual(seeing.contested, [true]);

  // the other agent goes: the condition keeps this one's value, and after two periods it says so
  sinks[1]?.stop();
  await eventually(
    () => (seeing.contested.length === 2 ? true : undefined),
    6000,
    'the contest to end',
  );
  assert.deepEqual(seeing.contested, [true, false]);
  assert.equal(condition(h, 'InotifyPressure')?.status, 'True');
  assert.deepEqual(
    seeing.lines
      .filter((l) => l.event?.startsWith('kube.conditions.') === true)
      .map((l) => l.event),
    ['kube.conditions.contested', 'kube.conditions.uncontested'],
  );
});

test('an unchanged True condition is heartbeaten on its period, and keeps going when the wall clock steps back', async (t) => {
  const h = await harness(t);
  const node = await watching(t, h);
  const store = new FindingStore();
  // the wall clock as the sink sees it: NTP may step it back at any time
  let stepBackMs = 0;
  const sink = wiredSink(t, h, node, store, ['inotify'], {
    // the kubelet's and NPD's period is minutes; times are whole seconds; 2 s leaves a loaded CI
    // machine a second of timer lateness while a stretched heartbeat (3.5 s) still shows
    heartbeatMs: 2000,
    now: () => new Date(Date.now() - stepBackMs),
  });
  store.reconcile('inotify', [exhausted]);
  sink.start();
  await inotifyPressureTrue(h, 'raised');
  const since = condition(h, 'InotifyPressure')?.lastTransitionTime;
  const raisedAt = statusPatches(h).length;

  // nothing changes for the sink: the same condition is written again on the period, with a fresh
  // heartbeat. Another writer touching the Node in between asks the sink to sync; that must not
  // push the heartbeat back a whole period.
  await sleep(1500);
  h.fake.updateNode('k1-node01', (n) => {
    n.metadata.labels = { ...n.metadata.labels, 'example.com/touched': 'true' };
  });
  await eventually(
    () => (statusPatches(h).length >= raisedAt + 2 ? true : undefined),
    7000,
    'two heartbeats',
  );
  const beats = statusPatches(h).slice(raisedAt - 1);
  for (const [i, beat] of beats.entries()) {
    assert.equal(beat.status, 200);
    assert.equal(beat.inotify?.status, 'True');
    assert.equal(beat.inotify?.lastTransitionTime, since, 'the transition time stays');
    const previous = beats[i - 1];
    if (previous === undefined) continue;
    assert.ok(
      String(beat.inotify?.lastHeartbeatTime) > String(previous.inotify?.lastHeartbeatTime),
      'each heartbeat a later time',
    );
    const gap = beat.at - previous.at;
    assert.ok(gap >= 1800 && gap < 3000, `a heartbeat a period after the last write (${gap}ms)`);
  }
  assert.equal(
    condition(h, 'InotifyPressure')?.lastHeartbeatTime,
    beats.at(-1)?.inotify?.lastHeartbeatTime,
  );
  assert.equal(condition(h, 'InotifyPressure')?.lastTransitionTime, since);

  // the wall clock steps back an hour: the period is not measured on it, so heartbeats go on
  // (stamped with the time the clock now says), and the transition time is still the one written
  await sleep(400); // between two heartbeats, not while one is on its way
  stepBackMs = 3_600_000;
  const steppedAt = statusPatches(h).length;
  await eventually(
    () => (statusPatches(h).length >= steppedAt + 2 ? true : undefined),
    7000,
    'heartbeats after the clock stepped back',
  );
  const after = statusPatches(h).slice(steppedAt);
  assert.ok(after.every((b) => b.status === 200 && b.inotify?.status === 'True'));
  assert.ok(
    after.every((b) => String(b.inotify?.lastHeartbeatTime) < String(since)),
    'stamped with the stepped-back wall time',
  );
  assert.equal(condition(h, 'InotifyPressure')?.lastTransitionTime, since);
});

test('a failed write is retried after its backoff even if the wall clock steps back meanwhile', async (t) => {
  const h = await harness(t);
  const node = await watching(t, h);
  const store = new FindingStore();
  let stepBackMs = 0;
  const sink = wiredSink(t, h, node, store, ['inotify'], {
    now: () => new Date(Date.now() - stepBackMs),
  });
  // the first write meets an API server that is shutting down (503, Retry-After: 1)
  h.fake.failNext(1, 503, {
    retryAfterSeconds: 1,
    match: (method, path) => method === 'PATCH' && path === '/api/v1/nodes/k1-node01/status',
  });
  store.reconcile('inotify', [exhausted]);
  sink.start();
  await eventually(
    () => (statusPatches(h).some((p) => p.status === 503) ? true : undefined),
    5000,
    'the refused write',
  );
  await sleep(100); // the sink has set its backoff (a second or two) by now
  stepBackMs = 3_600_000;
  await inotifyPressureTrue(h, 'the retried write');
  assert.deepEqual(
    statusPatches(h).map((p) => p.status),
    [503, 200],
  );
});

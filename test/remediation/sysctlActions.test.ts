// The inotify-limits and kernel-networking actions on fixture host roots (a /proc/sys tree of
// plain files, /etc/sysctl.d, /sys/module), and once on the real kernel in a throwaway network
// and mount namespace.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { readPersistedSysctls } from '../../agent/checks/sysctl/persistedSysctls.ts';
import { sysctlCheck } from '../../agent/checks/sysctl/sysctlCheck.ts';
import { HostRoot } from '../../agent/host/hostRoot.ts';
import {
  OWNED_FILES,
  applyPlan,
  planInotifyLimits,
  planKernelNetworking,
} from '../../agent/remediation/actions/sysctlActions.ts';
import { HostWriter } from '../../agent/remediation/hostWriter.ts';
import { checkOptions, runCheckOn } from '../checks/runCheckOn.ts';
import { REPO, requireRoot, requireTool, tempDir, writeFiles } from '../helpers.ts';

const T1 = new Date('2025-03-04T05:06:07.000Z');
const T2 = new Date('2025-03-05T00:00:00.000Z');
const TARGETS = { maxUserWatches: 1048576, maxUserInstances: 8192 };
const INOTIFY_FILE = OWNED_FILES['inotify-limits'].sysctl;
const NET_FILE = OWNED_FILES['kernel-networking'].sysctl;
const MODULES_FILE = OWNED_FILES['kernel-networking'].modules;
const noModules = {
  loadModule: () => Promise.reject(new Error('this action loads no module')),
};

/** A host with the given /proc/sys values and files (paths relative to the root). */
async function host(
  t: test.TestContext,
  sysctls: Record<string, string>,
  files: Record<string, string> = {},
) {
  const root = await tempDir(t);
  for (const dir of ['etc/sysctl.d', 'etc/modules-load.d', 'sys/module'])
    await fs.mkdir(path.join(root, dir), { recursive: true });
  const procFiles: Record<string, string> = {};
  for (const [key, value] of Object.entries(sysctls))
    procFiles[`proc/sys/${key.replace(/\./g, '/')}`] = `${value}\n`;
  await writeFiles(root, { ...procFiles, ...files });
  const hostRoot = new HostRoot(root);
  return {
    root,
    host: hostRoot,
    writer: new HostWriter(hostRoot),
    read: (rel: string) => fs.readFile(path.join(root, rel), 'utf8'),
    sysctl: async (key: string) =>
      (await fs.readFile(path.join(root, 'proc/sys', key.replace(/\./g, '/')), 'utf8')).trim(),
    /** Every file name under the root's /etc, recursively: temp files would show here. */
    etc: async () =>
      (await fs.readdir(path.join(root, 'etc'), { recursive: true })).map(String).sort(),
  };
}

/**
 * Make a file immutable (chattr +i: even root cannot write or replace it). Returns the undo,
 * also run after the test; undefined when the test was skipped (not root, or a file system
 * without the attribute, such as tmpfs).
 */
function immutable(t: test.TestContext, file: string): (() => void) | undefined {
  if (!requireRoot(t, 'chattr +i')) return undefined;
  const chattr = requireTool(t, 'chattr');
  if (chattr === undefined) return undefined;
  try {
    execFileSync(chattr, ['+i', file], { stdio: 'pipe' });
  } catch (error) {
    t.skip(`chattr +i is not supported here: ${String(error)}`);
    return undefined;
  }
  let undone = false;
  const undo = () => {
    if (!undone) execFileSync(chattr, ['-i', file]);
    undone = true;
  };
  t.after(undo);
  return undo;
}

const INOTIFY_LOW = {
  'fs.inotify.max_user_watches': '8192',
  'fs.inotify.max_user_instances': '128',
};

const INOTIFY_CONTENT = [
  '# Managed by node-auditor, remediation action inotify-limits. The agent rewrites this file whole:',
  "# edits here are lost; change the action's targets (maxUserWatches, maxUserInstances) in the node-auditor configuration instead.",
  '# fs.inotify.max_user_watches: was 8192 at runtime; set to 1048576 by node-auditor at 2025-03-04T05:06:07.000Z',
  'fs.inotify.max_user_watches = 1048576',
  '# fs.inotify.max_user_instances: was 128 at runtime; set to 8192 by node-auditor at 2025-03-04T05:06:07.000Z',
  'fs.inotify.max_user_instances = 8192',
  '',
].join('\n');

test('inotify-limits raises both limits at runtime and persists them with the old values recorded', async (t) => {
  const h = await host(t, INOTIFY_LOW);
  const plan = await planInotifyLimits(h.host, TARGETS, { now: () => T1 });
  assert.deepEqual(plan.changes, [
    { key: 'fs.inotify.max_user_watches', before: '8192', after: '1048576' },
    { key: 'fs.inotify.max_user_instances', before: '128', after: '8192' },
  ]);
  assert.deepEqual(plan.files, [{ path: INOTIFY_FILE, before: null, after: INOTIFY_CONTENT }]);
  assert.equal(plan.nothingToDo, false);
  // planning changes nothing
  assert.equal(await h.sysctl('fs.inotify.max_user_watches'), '8192');

  const result = await applyPlan(h.writer, plan, noModules);
  assert.equal(result.outcome, 'applied', result.reason);
  assert.deepEqual(result.keys, [
    { key: 'fs.inotify.max_user_watches', before: '8192', after: '1048576' },
    { key: 'fs.inotify.max_user_instances', before: '128', after: '8192' },
  ]);
  assert.equal(
    result.reason,
    `set fs.inotify.max_user_watches = 1048576, fs.inotify.max_user_instances = 8192; wrote ${INOTIFY_FILE}`,
  );
  assert.equal(await h.read('proc/sys/fs/inotify/max_user_watches'), '1048576\n');
  assert.equal(await h.read('proc/sys/fs/inotify/max_user_instances'), '8192\n');
  assert.equal(await h.read(INOTIFY_FILE.slice(1)), INOTIFY_CONTENT);
  assert.deepEqual(await h.etc(), [
    'modules-load.d',
    'sysctl.d',
    'sysctl.d/zz-node-auditor-inotify-limits.conf',
  ]);
});

test('a second run is nothingToDo and leaves the file byte for byte, whatever the clock says', async (t) => {
  const h = await host(t, INOTIFY_LOW);
  await applyPlan(h.writer, await planInotifyLimits(h.host, TARGETS, { now: () => T1 }), noModules);
  const again = await planInotifyLimits(h.host, TARGETS, { now: () => T2 });
  assert.equal(again.nothingToDo, true);
  assert.deepEqual(again.changes, []);
  assert.deepEqual(again.files, []);
  const result = await applyPlan(h.writer, again, noModules);
  assert.equal(result.outcome, 'applied');
  assert.deepEqual(result.keys, []);
  assert.equal(await h.read(INOTIFY_FILE.slice(1)), INOTIFY_CONTENT);
});

test('a value already above its target is never lowered; it is persisted as it is', async (t) => {
  const h = await host(t, {
    'fs.inotify.max_user_watches': '4000000',
    'fs.inotify.max_user_instances': '128',
  });
  const plan = await planInotifyLimits(h.host, TARGETS, { now: () => T1 });
  assert.deepEqual(plan.changes, [
    { key: 'fs.inotify.max_user_instances', before: '128', after: '8192' },
  ]);
  const result = await applyPlan(h.writer, plan, noModules);
  assert.equal(result.outcome, 'applied', result.reason);
  assert.equal(await h.sysctl('fs.inotify.max_user_watches'), '4000000');
  const file = await h.read(INOTIFY_FILE.slice(1));
  assert.match(
    file,
    /\n# fs\.inotify\.max_user_watches: 4000000 at runtime, left as is; persisted by node-auditor at 2025-03-04T05:06:07\.000Z\nfs\.inotify\.max_user_watches = 4000000\n/,
  );
  // Already persisted high enough elsewhere and high enough now: no line, no file at all.
  const h2 = await host(
    t,
    { 'fs.inotify.max_user_watches': '4000000', 'fs.inotify.max_user_instances': '10000' },
    {
      'etc/sysctl.d/99-kubernetes.conf':
        'fs.inotify.max_user_watches = 4000000\nfs.inotify.max_user_instances = 10000\n',
    },
  );
  const none = await planInotifyLimits(h2.host, TARGETS);
  assert.equal(none.nothingToDo, true);
  assert.deepEqual(none.files, []);
});

test('the file sorts after the usual names, so the sysctl check sees the new values as persisted', async (t) => {
  // The seeds' 99-sysctl.conf, kubeadm's k8s.conf and a vendor file all set lower values; on a
  // systemd host both appliers (systemd-sysctl at boot, sysctl --system) are judged.
  const h = await host(t, INOTIFY_LOW, {
    'etc/sysctl.d/99-sysctl.conf': 'fs.inotify.max_user_watches=8192\n',
    'etc/sysctl.d/k8s.conf': 'fs.inotify.max_user_instances = 128\n',
    'usr/lib/sysctl.d/99-vendor.conf': 'fs.inotify.max_user_watches = 65536\n',
    'usr/lib/systemd/systemd-sysctl': '',
  });
  const options = checkOptions(sysctlCheck, {});
  const problems = async () =>
    (await runCheckOn(sysctlCheck, h.root, options)).findings
      .map((f) => f.id)
      .filter((id) => id.includes('fs.inotify.'))
      .sort();
  assert.deepEqual(await problems(), [
    'SysctlOutOfProfile:fs.inotify.max_user_instances',
    'SysctlOutOfProfile:fs.inotify.max_user_watches',
  ]);
  const plan = await planInotifyLimits(h.host, TARGETS, { now: () => T1 });
  assert.deepEqual(plan.warnings, []);
  const result = await applyPlan(h.writer, plan, noModules);
  assert.equal(result.outcome, 'applied', result.reason);
  assert.deepEqual(await problems(), []);
  const persisted = await readPersistedSysctls(h.host);
  for (const key of ['fs.inotify.max_user_watches', 'fs.inotify.max_user_instances']) {
    const views = persisted.views(key);
    assert.deepEqual(
      views.map((v) => [v.applier, v.winner?.file]),
      [
        ['systemd-sysctl', INOTIFY_FILE],
        ['sysctl --system', INOTIFY_FILE],
      ],
      key,
    );
  }
});

test('/etc/sysctl.conf, applied last by procps, is reported and never edited', async (t) => {
  const h = await host(t, INOTIFY_LOW, {
    'etc/sysctl.conf': 'fs.inotify.max_user_watches = 8192\n',
  });
  const plan = await planInotifyLimits(h.host, TARGETS, { now: () => T1 });
  assert.deepEqual(plan.persist, [
    {
      key: 'fs.inotify.max_user_watches',
      expect: '>= 1048576',
      overriddenBy: {
        applier: 'sysctl --system',
        file: '/etc/sysctl.conf',
        line: 1,
        value: '8192',
      },
    },
    { key: 'fs.inotify.max_user_instances', expect: '>= 8192' },
  ]);
  assert.deepEqual(plan.warnings, [
    `/etc/sysctl.conf:1 sets fs.inotify.max_user_watches = 8192 and sysctl --system applies it after ${INOTIFY_FILE}; the value set now will not survive it (node-auditor does not edit files it does not own)`,
  ]);
  const result = await applyPlan(h.writer, plan, noModules);
  assert.equal(result.outcome, 'applied', result.reason);
  assert.deepEqual(result.warnings, plan.warnings);
  assert.equal(await h.read('etc/sysctl.conf'), 'fs.inotify.max_user_watches = 8192\n');
});

test('a glob applied after our file does not beat our explicit key: no warning, the value persists', async (t) => {
  // procps 4 and systemd-sysctl both let an explicit key beat any glob, whatever the order
  // (test/checks/sysctlPersistenceRealTools.test.ts runs both); the plan is judged by the same
  // model as the sysctl check, so it does not warn of an override that never happens.
  const h = await host(t, INOTIFY_LOW, {
    'etc/sysctl.conf': 'fs.inotify.max_user_* = 128\n',
    'etc/sysctl.d/zzz-late.conf': 'fs.inotify.* = 256\n',
  });
  const plan = await planInotifyLimits(h.host, TARGETS, { now: () => T1 });
  assert.deepEqual(plan.warnings, []);
  assert.deepEqual(
    plan.persist.map((p) => p.overriddenBy),
    [undefined, undefined],
  );
  const result = await applyPlan(h.writer, plan, noModules);
  assert.equal(result.outcome, 'applied', result.reason);
  const persisted = await readPersistedSysctls(h.host);
  assert.deepEqual(
    persisted.views('fs.inotify.max_user_watches').map((v) => v.winner?.value),
    ['1048576'],
  );
});

test('on a systemd host, an explicit key in a file sorted after ours is reported for systemd-sysctl', async (t) => {
  const h = await host(t, INOTIFY_LOW, {
    'usr/lib/systemd/systemd-sysctl': '',
    'run/sysctl.d/zzzz-cloud.conf': 'fs.inotify.max_user_instances = 512\n',
  });
  const plan = await planInotifyLimits(h.host, TARGETS, { now: () => T1 });
  assert.deepEqual(
    plan.persist.map((p) => p.overriddenBy),
    [
      undefined,
      {
        applier: 'systemd-sysctl',
        file: '/run/sysctl.d/zzzz-cloud.conf',
        line: 1,
        value: '512',
      },
    ],
  );
  assert.equal(plan.warnings.length, 1);
});

test('on a systemd host, a "-key" line in a file sorted after ours, which leaves the key unset at boot, is reported too', async (t) => {
  // systemd-sysctl: a later "-key" cancels an explicit assignment (procps lets the explicit one
  // stand); test/checks/sysctlPersistenceRealTools.test.ts runs both
  const h = await host(t, INOTIFY_LOW, {
    'usr/lib/systemd/systemd-sysctl': '',
    'run/sysctl.d/zzzz-cloud.conf': '# the cloud image manages it\n-fs.inotify.max_user_watches\n',
  });
  const plan = await planInotifyLimits(h.host, TARGETS, { now: () => T1 });
  assert.deepEqual(
    plan.persist.map((p) => p.overriddenBy),
    [{ applier: 'systemd-sysctl', file: '/run/sysctl.d/zzzz-cloud.conf', line: 2 }, undefined],
  );
  assert.deepEqual(plan.warnings, [
    `/run/sysctl.d/zzzz-cloud.conf:2 has "-fs.inotify.max_user_watches" and systemd-sysctl applies it after ${INOTIFY_FILE}, leaving the key unset at boot; the value set now will not survive a reboot (node-auditor does not edit files it does not own)`,
  ]);
  // the runtime values are set and the file written; only the cancelled key is not held to it
  const result = await applyPlan(h.writer, plan, noModules);
  assert.equal(result.outcome, 'applied', result.reason);
  assert.deepEqual(result.warnings, plan.warnings);
  assert.equal(await h.sysctl('fs.inotify.max_user_watches'), '1048576');
});

test('a read-back that differs at the end rolls back the file and every runtime value', async (t) => {
  // Two keys sharing one inode: setting the second changes the first, as a kernel (or another
  // agent) can undo a value after it was read back once.
  const h = await host(t, { 'fs.inotify.max_user_watches': '128' });
  await fs.link(
    path.join(h.root, 'proc/sys/fs/inotify/max_user_watches'),
    path.join(h.root, 'proc/sys/fs/inotify/max_user_instances'),
  );
  const plan = await planInotifyLimits(h.host, TARGETS, { now: () => T1 });
  assert.equal(plan.changes.length, 2);
  const result = await applyPlan(h.writer, plan, noModules);
  assert.equal(result.outcome, 'rolled_back');
  assert.equal(
    result.reason,
    'cannot write sysctl fs.inotify.max_user_watches: reads back 8192, not 1048576; everything changed was put back',
  );
  assert.equal(result.hostLeftChanged, false);
  assert.deepEqual(result.files, [{ path: INOTIFY_FILE, written: true, restored: true }]);
  assert.deepEqual(result.keys, [
    { key: 'fs.inotify.max_user_watches', before: '128', after: '128' },
    { key: 'fs.inotify.max_user_instances', before: '1048576', after: '128' },
  ]);
  assert.equal(await h.sysctl('fs.inotify.max_user_watches'), '128');
  assert.deepEqual(await h.etc(), ['modules-load.d', 'sysctl.d'], 'the file is gone, no temp left');
});

test('an immutable owned file (chattr +i) fails the write: the values already set are put back', async (t) => {
  const earlier = [
    '# Managed by node-auditor, remediation action inotify-limits. The agent rewrites this file whole:',
    '# fs.inotify.max_user_watches: was 8192 at runtime; set to 524288 by node-auditor at 2025-01-01T00:00:00.000Z',
    'fs.inotify.max_user_watches = 524288',
    '',
  ].join('\n');
  const h = await host(
    t,
    { 'fs.inotify.max_user_watches': '524288', 'fs.inotify.max_user_instances': '128' },
    { [INOTIFY_FILE.slice(1)]: earlier },
  );
  const plan = await planInotifyLimits(h.host, TARGETS, { now: () => T1 });
  assert.equal(plan.files[0]?.before, earlier);
  assert.equal(plan.changes.length, 2);
  // An operator froze the file between plan and apply: even root cannot replace it now.
  const thaw = immutable(t, path.join(h.root, INOTIFY_FILE.slice(1)));
  if (thaw === undefined) return;
  const result = await applyPlan(h.writer, plan, noModules);
  thaw();
  assert.equal(result.outcome, 'rolled_back');
  assert.equal(
    result.reason,
    `cannot write ${INOTIFY_FILE}: permission denied; everything changed was put back`,
  );
  assert.deepEqual(result.keys, [
    { key: 'fs.inotify.max_user_watches', before: '524288', after: '524288' },
    { key: 'fs.inotify.max_user_instances', before: '128', after: '128' },
  ]);
  assert.equal(await h.sysctl('fs.inotify.max_user_watches'), '524288');
  assert.equal(await h.sysctl('fs.inotify.max_user_instances'), '128');
  assert.equal(await h.read(INOTIFY_FILE.slice(1)), earlier);
  assert.deepEqual(
    await h.etc(),
    ['modules-load.d', 'sysctl.d', 'sysctl.d/zz-node-auditor-inotify-limits.conf'],
    'no temp file left',
  );
});

test('a file applied after ours that appears between plan and apply fails verification: rolled back', async (t) => {
  const h = await host(t, INOTIFY_LOW);
  const plan = await planInotifyLimits(h.host, TARGETS, { now: () => T1 });
  await writeFiles(h.root, {
    'run/sysctl.d/zzz-late.conf': 'fs.inotify.max_user_instances = 256\n',
  });
  const result = await applyPlan(h.writer, plan, noModules);
  assert.equal(result.outcome, 'rolled_back');
  assert.equal(
    result.reason,
    'cannot write sysctl fs.inotify.max_user_instances: sysctl --system would apply 256 (/run/sysctl.d/zzz-late.conf:1) after this change, not >= 8192; everything changed was put back',
  );
  assert.equal(await h.sysctl('fs.inotify.max_user_watches'), '8192');
  assert.equal(await h.sysctl('fs.inotify.max_user_instances'), '128');
  assert.deepEqual(await h.etc(), ['modules-load.d', 'sysctl.d']);
});

test('a plan gone stale fails without changing anything; a file we do not own is refused', async (t) => {
  const h = await host(t, INOTIFY_LOW);
  const plan = await planInotifyLimits(h.host, TARGETS, { now: () => T1 });
  await fs.writeFile(path.join(h.root, 'proc/sys/fs/inotify/max_user_instances'), '512\n');
  const result = await applyPlan(h.writer, plan, noModules);
  assert.equal(result.outcome, 'failed');
  assert.equal(
    result.reason,
    'cannot write sysctl fs.inotify.max_user_instances: changed since the plan (128 -> 512); plan again; nothing was changed',
  );
  assert.equal(await h.sysctl('fs.inotify.max_user_watches'), '8192');
  assert.deepEqual(await h.etc(), ['modules-load.d', 'sysctl.d']);

  await writeFiles(h.root, { [INOTIFY_FILE.slice(1)]: 'fs.inotify.max_user_watches = 1\n' });
  await assert.rejects(
    planInotifyLimits(h.host, TARGETS),
    new RegExp(
      `cannot write ${INOTIFY_FILE}: exists and is not managed by node-auditor; refusing to overwrite it`,
    ),
  );
  assert.equal(await h.read(INOTIFY_FILE.slice(1)), 'fs.inotify.max_user_watches = 1\n');
});

const NET_LOW = { 'net.ipv4.ip_forward': '0' };

/** A fake kernel's modprobe: the module appears in /sys/module and creates its sysctls. */
function fakeModprobe(root: string, calls: string[], seen: { modulesFile?: string | null }) {
  return {
    moduleTimeoutMs: 300,
    loadModule: async (name: string) => {
      calls.push(name);
      // systemd-modules-load reads the file: it must be there before loading
      seen.modulesFile = await fs.readFile(path.join(root, MODULES_FILE), 'utf8').catch(() => null);
      await writeFiles(root, {
        // a module, not built in: it has an initstate, as the kernel shows one
        [`sys/module/${name}/initstate`]: 'live\n',
        'proc/sys/net/bridge/bridge-nf-call-iptables': '0\n',
        'proc/sys/net/bridge/bridge-nf-call-ip6tables': '0\n',
        'proc/sys/net/bridge/bridge-nf-call-arptables': '1\n',
      });
    },
  };
}

const MODULES_CONTENT = [
  '# Managed by node-auditor, remediation action kernel-networking. The agent rewrites this file whole:',
  '# edits here are lost; disable the action in the node-auditor configuration instead.',
  '# br_netfilter: was not loaded; loaded by node-auditor at 2025-03-04T05:06:07.000Z',
  'br_netfilter',
  '',
].join('\n');

test('kernel-networking loads br_netfilter, persists it, then sets and persists the three keys', async (t) => {
  const h = await host(t, NET_LOW);
  const plan = await planKernelNetworking(h.host, { now: () => T1 });
  assert.deepEqual(plan.modules, ['br_netfilter']);
  assert.deepEqual(plan.changes, [
    { key: 'net.ipv4.ip_forward', before: '0', after: '1' },
    { key: 'net.bridge.bridge-nf-call-iptables', before: undefined, after: '1' },
    { key: 'net.bridge.bridge-nf-call-ip6tables', before: undefined, after: '1' },
  ]);
  const calls: string[] = [];
  const seen: { modulesFile?: string | null } = {};
  const result = await applyPlan(h.writer, plan, fakeModprobe(h.root, calls, seen));
  assert.equal(result.outcome, 'applied', result.reason);
  assert.deepEqual(calls, ['br_netfilter']);
  assert.equal(seen.modulesFile, MODULES_CONTENT, 'modules-load.d file written before loading');
  assert.deepEqual(result.modulesLoaded, ['br_netfilter']);
  assert.deepEqual(result.keys, [
    { key: 'net.ipv4.ip_forward', before: '0', after: '1' },
    { key: 'net.bridge.bridge-nf-call-iptables', before: '0', after: '1' },
    { key: 'net.bridge.bridge-nf-call-ip6tables', before: '0', after: '1' },
  ]);
  assert.equal(await h.read(MODULES_FILE.slice(1)), MODULES_CONTENT);
  assert.equal(
    await h.read(NET_FILE.slice(1)),
    [
      '# Managed by node-auditor, remediation action kernel-networking. The agent rewrites this file whole:',
      '# edits here are lost; disable the action in the node-auditor configuration instead.',
      '# net.ipv4.ip_forward: was 0 at runtime; set to 1 by node-auditor at 2025-03-04T05:06:07.000Z',
      'net.ipv4.ip_forward = 1',
      '# net.bridge.bridge-nf-call-iptables: did not exist at runtime; set to 1 by node-auditor at 2025-03-04T05:06:07.000Z',
      'net.bridge.bridge-nf-call-iptables = 1',
      '# net.bridge.bridge-nf-call-ip6tables: did not exist at runtime; set to 1 by node-auditor at 2025-03-04T05:06:07.000Z',
      'net.bridge.bridge-nf-call-ip6tables = 1',
      '',
    ].join('\n'),
  );
  for (const key of ['net.ipv4.ip_forward', 'net.bridge.bridge-nf-call-iptables'])
    assert.equal(await h.sysctl(key), '1');

  const again = await planKernelNetworking(h.host, { now: () => T2 });
  assert.equal(again.nothingToDo, true, JSON.stringify(again));
});

test('a module that never appears rolls back the modules-load.d file before any sysctl is set', async (t) => {
  const h = await host(t, NET_LOW);
  const plan = await planKernelNetworking(h.host, { now: () => T1 });
  const calls: string[] = [];
  const result = await applyPlan(h.writer, plan, {
    moduleTimeoutMs: 300,
    loadModule: (name) => {
      calls.push(name); // systemd ran the job, but modprobe failed (blacklisted, missing)
      return Promise.resolve();
    },
  });
  assert.deepEqual(calls, ['br_netfilter']);
  assert.equal(result.outcome, 'rolled_back');
  assert.equal(
    result.reason,
    'cannot write module br_netfilter: loaded, but /sys/module/br_netfilter did not appear within 300 ms; everything changed was put back',
  );
  assert.deepEqual(result.files, [{ path: MODULES_FILE, written: true, restored: true }]);
  assert.equal(await h.sysctl('net.ipv4.ip_forward'), '0', 'no sysctl was set');
  assert.deepEqual(await h.etc(), ['modules-load.d', 'sysctl.d']);

  const failing = await applyPlan(h.writer, plan, {
    loadModule: () =>
      Promise.reject(new Error('RestartUnit systemd-modules-load.service: job failed')),
  });
  assert.equal(failing.outcome, 'rolled_back');
  assert.match(
    failing.reason,
    /^RestartUnit systemd-modules-load.service: job failed; everything changed was put back$/,
  );
  assert.deepEqual(await h.etc(), ['modules-load.d', 'sysctl.d']);
});

test('a sysctl failing half-way rolls back the ones set before it, in reverse, and the module file', async (t) => {
  const h = await host(t, NET_LOW);
  const plan = await planKernelNetworking(h.host, { now: () => T1 });
  const load = fakeModprobe(h.root, [], {});
  let frozen: (() => void) | undefined;
  const result = await applyPlan(h.writer, plan, {
    ...load,
    loadModule: async (name) => {
      await load.loadModule(name);
      // this kernel refuses to set the ip6tables hook (readable, not writable even for root)
      frozen = immutable(t, path.join(h.root, 'proc/sys/net/bridge/bridge-nf-call-ip6tables'));
    },
  });
  if (frozen === undefined) return;
  frozen();
  assert.equal(result.outcome, 'rolled_back');
  assert.equal(
    result.reason,
    'cannot write /proc/sys/net/bridge/bridge-nf-call-ip6tables: sysctl net.bridge.bridge-nf-call-ip6tables: not permitted (the agent needs root in a privileged container); everything changed was put back',
  );
  assert.deepEqual(result.keys, [
    { key: 'net.ipv4.ip_forward', before: '0', after: '0' },
    { key: 'net.bridge.bridge-nf-call-iptables', before: '0', after: '0' },
  ]);
  assert.deepEqual(result.files, [{ path: MODULES_FILE, written: true, restored: true }]);
  assert.deepEqual(result.modulesLoaded, ['br_netfilter'], 'the module stays loaded');
  assert.equal(await h.sysctl('net.ipv4.ip_forward'), '0');
  assert.equal(await h.sysctl('net.bridge.bridge-nf-call-iptables'), '0');
  assert.deepEqual(await h.etc(), ['modules-load.d', 'sysctl.d']);
});

test('a module another file already loads at boot is loaded but not persisted again', async (t) => {
  // Debian's layout: modules-load.d/modules.conf -> ../modules
  const h = await host(t, NET_LOW, { 'etc/modules': '# kernel modules\nloop\nbr-netfilter\n' });
  await fs.symlink('../modules', path.join(h.root, 'etc/modules-load.d/modules.conf'));
  const plan = await planKernelNetworking(h.host, { now: () => T1 });
  assert.deepEqual(plan.modules, ['br_netfilter']);
  assert.deepEqual(
    plan.files.map((f) => f.path),
    [NET_FILE],
  );
  const result = await applyPlan(h.writer, plan, fakeModprobe(h.root, [], {}));
  assert.equal(result.outcome, 'applied', result.reason);
  assert.deepEqual(await h.etc(), [
    'modules',
    'modules-load.d',
    'modules-load.d/modules.conf',
    'sysctl.d',
    'sysctl.d/zz-node-auditor-kernel-networking.conf',
  ]);
});

test('br_netfilter already in the kernel: persisted when loaded as a module, left alone when built in', async (t) => {
  const bridge = {
    'net.bridge.bridge-nf-call-iptables': '1',
    'net.bridge.bridge-nf-call-ip6tables': '1',
  };
  // loaded by hand (sysfs shows a module's initstate), nothing loads it at boot: persist it
  const loaded = await host(
    t,
    { ...NET_LOW, ...bridge },
    { 'sys/module/br_netfilter/initstate': 'live\n' },
  );
  const persist = await planKernelNetworking(loaded.host, { now: () => T1 });
  assert.deepEqual(persist.modules, []);
  assert.match(persist.files.find((f) => f.path === MODULES_FILE)?.after ?? '', /^br_netfilter$/m);
  // built in (no initstate, no modules.builtin to say otherwise): nothing to load or persist
  const builtIn = await host(t, { ...NET_LOW, ...bridge });
  const none = await planKernelNetworking(builtIn.host, { now: () => T1 });
  assert.deepEqual(none.modules, []);
  assert.deepEqual(
    none.files.map((f) => f.path),
    [NET_FILE],
  );
  // built in with a /sys/module entry of its own (built-ins with parameters have one), still
  // no initstate: not a module to persist either
  const withEntry = await host(
    t,
    { ...NET_LOW, ...bridge },
    { 'sys/module/br_netfilter/uevent': '' },
  );
  const alsoNone = await planKernelNetworking(withEntry.host, { now: () => T1 });
  assert.deepEqual(
    alsoNone.files.map((f) => f.path),
    [NET_FILE],
  );
});

test('real kernel: kernel-networking in a new network and mount namespace, read back with sysctl -n', async (t) => {
  if (!requireRoot(t, 'network and mount namespaces, writing /proc/sys/net')) return;
  const sysctl = requireTool(t, 'sysctl');
  const unshare = requireTool(t, 'unshare');
  if (sysctl === undefined || unshare === undefined) return;
  const systemdSysctl = ['/usr/lib/systemd/systemd-sysctl', '/lib/systemd/systemd-sysctl'].find(
    (p) =>
      execFileSync('sh', ['-c', `test -x ${p} && echo yes || true`], {
        encoding: 'utf8',
      }).trim() === 'yes',
  );
  const hostForward = (await fs.readFile('/proc/sys/net/ipv4/ip_forward', 'utf8')).trim();
  const dir = await tempDir(t);
  const empty = path.join(dir, 'empty');
  await fs.writeFile(empty, '');
  // net.* sysctls belong to the network namespace: the host's are untouched. The config
  // directories are private tmpfs mounts in the mount namespace (unshare makes its mounts
  // private), so the host's /etc is untouched too and sysctl --system sees only our files.
  const configDirs = [
    '/etc/sysctl.d',
    '/run/sysctl.d',
    '/usr/local/lib/sysctl.d',
    '/usr/lib/sysctl.d',
    '/lib/sysctl.d',
    '/etc/modules-load.d',
    '/usr/lib/modules-load.d',
  ];
  const mounts = [
    ...configDirs.map((d) => `if [ -d ${d} ]; then mount -t tmpfs none ${d}; fi`),
    `if [ -e /etc/sysctl.conf ]; then mount --bind ${empty} /etc/sysctl.conf; fi`,
  ].join(' && ');
  const script = path.join(dir, 'inNamespace.mjs');
  await fs.writeFile(
    script,
    `import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { HostRoot } from ${JSON.stringify(path.join(REPO, 'agent/host/hostRoot.ts'))};
import { HostWriter } from ${JSON.stringify(path.join(REPO, 'agent/remediation/hostWriter.ts'))};
import { applyPlan, planKernelNetworking } from ${JSON.stringify(path.join(REPO, 'agent/remediation/actions/sysctlActions.ts'))};
const read = () => execFileSync(${JSON.stringify(sysctl)}, ['-n', 'net.ipv4.ip_forward'], { encoding: 'utf8' }).trim();
const out = {};
// a file an operator wrote, sorted before ours, that turns forwarding off
writeFileSync('/etc/sysctl.d/99-kubernetes.conf', 'net.ipv4.ip_forward = 0\\n');
execFileSync(${JSON.stringify(sysctl)}, ['-q', '-w', 'net.ipv4.ip_forward=0']);
out.before = read();
const host = new HostRoot('/');
const plan = await planKernelNetworking(host);
out.planned = plan.changes.map((c) => c.key);
out.modules = plan.modules;
const result = await applyPlan(new HostWriter(host), plan, {
  loadModule: async () => { throw new Error('not loading kernel modules in a test'); },
});
out.outcome = result.outcome;
out.reason = result.reason;
out.after = read();
out.file = execFileSync('cat', [${JSON.stringify(NET_FILE)}], { encoding: 'utf8' });
// both appliers, for real: ours is applied after 99-kubernetes.conf
execFileSync(${JSON.stringify(sysctl)}, ['-q', '-w', 'net.ipv4.ip_forward=0']);
execFileSync(${JSON.stringify(sysctl)}, ['-q', '--pattern', '^net\\\\.ipv4\\\\.ip_forward', '--system']);
out.afterProcps = read();
${
  systemdSysctl === undefined
    ? ''
    : `execFileSync(${JSON.stringify(sysctl)}, ['-q', '-w', 'net.ipv4.ip_forward=0']);
execFileSync(${JSON.stringify(systemdSysctl)}, ['--prefix=net.ipv4.ip_forward']);
out.afterSystemd = read();`
}
out.again = (await planKernelNetworking(host)).nothingToDo;
console.log(JSON.stringify(out));
`,
  );
  const child = spawn(
    unshare,
    ['--net', '--mount', 'sh', '-c', `${mounts} && exec "$0" "$1"`, process.execPath, script],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise((resolve) => child.on('close', resolve));
  assert.equal(code, 0, stderr);
  const out = JSON.parse(stdout) as Record<string, unknown>;
  if ((out.modules as string[]).length > 0)
    t.diagnostic(
      'br_netfilter is neither loaded nor built in here: only net.ipv4.ip_forward was checked',
    );
  assert.equal(out.before, '0');
  assert.ok((out.planned as string[]).includes('net.ipv4.ip_forward'));
  if ((out.modules as string[]).length === 0) {
    assert.equal(out.outcome, 'applied', String(out.reason));
    assert.equal(out.after, '1', 'sysctl -n reads the value the action set');
    assert.match(String(out.file), /\nnet\.ipv4\.ip_forward = 1\n/);
    assert.equal(out.afterProcps, '1', 'sysctl --system applies our file after 99-kubernetes.conf');
    if (systemdSysctl !== undefined) assert.equal(out.afterSystemd, '1', 'so does systemd-sysctl');
    assert.equal(out.again, true, 'a second plan is nothingToDo');
  }
  // the host: its forwarding and its /etc as they were
  assert.equal((await fs.readFile('/proc/sys/net/ipv4/ip_forward', 'utf8')).trim(), hostForward);
  await assert.rejects(fs.stat(NET_FILE), { code: 'ENOENT' });
  await assert.rejects(fs.stat('/etc/sysctl.d/99-kubernetes.conf'), { code: 'ENOENT' });
});

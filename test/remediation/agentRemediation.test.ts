// Remediation in the real agent process, against the test API server: a dry run reports what
// enforce would do (same values, Event, metric, annotation) and changes nothing; enforce raises
// and persists the inotify limits on the host root; the storm guard stops everything when too
// much of the cluster is NotReady.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { startFakeKubeApi } from '../kube/fakeKubeApi.ts';
import type { FakeKubeApi } from '../kube/fakeKubeApi.ts';
import {
  copyFixtureHost,
  eventually,
  httpGet,
  metricValue,
  startAgent,
  tempDir,
} from '../helpers.ts';

interface DecisionJson {
  action: string;
  mode: string;
  outcome: string;
  reason: string;
  trigger: string[];
  changes: { what: string; before: string; after: string }[];
}

const WATCHES = 'fs.inotify.max_user_watches';

async function setup(t: TestContext, nodes?: string[]) {
  const fake = await startFakeKubeApi({ remediationRbac: true, ...(nodes ? { nodes } : {}) });
  t.after(() => fake.close());
  const dir = await tempDir(t);
  const kubeconfig = path.join(dir, 'kubeconfig');
  await fake.writeKubeconfig(kubeconfig, 'sa');
  // the seed's NotReady node: max_user_watches 8192, nothing persisted
  const root = await copyFixtureHost(t, 'bad-runtime');
  const env = {
    NODE_AUDITOR_STATE_DIR: path.join(dir, 'state'),
    NODE_AUDITOR_CHECKS__CVE__ENABLED: 'false',
    NODE_AUDITOR_REMEDIATION__ACTIONS__INOTIFY_LIMITS__ENABLED: 'true',
  };
  const args = ['--kubeconfig', kubeconfig, '--node-name', 'k1-node01', '--host-root', root];
  return { fake, root, env, args };
}

async function decisionOf(url: string, outcome: string): Promise<DecisionJson> {
  return eventually(
    async () => {
      const body = JSON.parse((await httpGet(`${url}/api/v1/remediations`)).body) as {
        decisions: DecisionJson[];
      };
      return body.decisions.find((d) => d.action === 'inotify-limits' && d.outcome === outcome);
    },
    15_000,
    `an inotify-limits decision "${outcome}"`,
  );
}

/** The values part of an Event message, as the agent writes it. */
function describe(changes: DecisionJson['changes']): string {
  return changes.map((c) => `${c.what} ${c.before} -> ${c.after}`).join(', ');
}

function lastAnnotation(fake: FakeKubeApi): Record<string, string> | undefined {
  const value = fake.getNode('k1-node01').metadata.annotations?.['node-auditor/last-remediation'];
  return value === undefined ? undefined : (JSON.parse(value) as Record<string, string>);
}

test('dry run reports what enforce then does: same values, Event, metric, annotation', async (t) => {
  const { fake, root, env, args } = await setup(t);
  const watchesFile = path.join(root, 'proc/sys/fs/inotify/max_user_watches');

  const dry = await startAgent(t, args, { env });
  const planned = await decisionOf(dry.url, 'dry_run');
  assert.equal(planned.mode, 'dryRun');
  assert.ok(
    planned.trigger.includes(`sysctl/SysctlOutOfProfile:${WATCHES}`),
    planned.trigger.join(),
  );
  assert.deepEqual(planned.changes, [
    { what: WATCHES, before: '8192', after: '1048576' },
    { what: 'fs.inotify.max_user_instances', before: '128', after: '8192' },
    {
      what: '/etc/sysctl.d/zz-node-auditor-inotify-limits.conf',
      before: '(none)',
      after: 'written',
    },
  ]);
  // nothing written: the runtime value and /etc/sysctl.d are as they were
  assert.equal((await fs.readFile(watchesFile, 'utf8')).trim(), '8192');
  assert.ok(
    !(await fs.readdir(path.join(root, 'etc/sysctl.d'))).some((f) => f.includes('node-auditor')),
  );
  const dryEvent = await eventually(
    () => fake.events().find((e) => e.reason === 'RemediationDryRun'),
    10_000,
    'the dry run Event',
  );
  assert.equal(dryEvent.type, 'Normal');
  assert.equal(dryEvent.involvedObject.name, 'k1-node01');
  assert.equal(
    dryEvent.message,
    `inotify-limits: ${planned.reason}; ${describe(planned.changes)} (dry run: nothing was changed)`,
  );
  const metrics = (await httpGet(`${dry.url}/metrics`)).body;
  assert.equal(
    metricValue(metrics, 'node_auditor_remediation_actions_total', {
      action: 'inotify-limits',
      outcome: 'dry_run',
    }),
    1,
  );
  await eventually(
    () => lastAnnotation(fake)?.outcome === 'dry_run' || undefined,
    10_000,
    'annotation',
  );
  await dry.stop();

  // the same node, enforce: the dry run's history does not hold the real action back
  const enforce = await startAgent(t, args, {
    env: { ...env, NODE_AUDITOR_REMEDIATION__MODE: 'enforce' },
  });
  const applied = await decisionOf(enforce.url, 'applied');
  assert.deepEqual(applied.changes, planned.changes);
  assert.equal(applied.reason, planned.reason);
  assert.equal((await fs.readFile(watchesFile, 'utf8')).trim(), '1048576');
  const owned = (await fs.readdir(path.join(root, 'etc/sysctl.d'))).filter((f) =>
    f.includes('node-auditor'),
  );
  assert.equal(owned.length, 1, owned.join());
  const persisted = await fs.readFile(path.join(root, 'etc/sysctl.d', owned[0] ?? ''), 'utf8');
  assert.match(persisted, /^fs\.inotify\.max_user_watches = 1048576$/m);
  assert.match(persisted, /8192/); // the old value, recorded
  const appliedEvent = await eventually(
    () => fake.events().find((e) => e.reason === 'RemediationApplied'),
    10_000,
    'the applied Event',
  );
  // the dry run's Event, word for word, but for its mark
  assert.equal(
    appliedEvent.message,
    dryEvent.message?.replace(/ \(dry run: nothing was changed\)$/, ''),
  );
  assert.equal(appliedEvent.type, 'Normal');
  const enforced = (await httpGet(`${enforce.url}/metrics`)).body;
  assert.equal(
    metricValue(enforced, 'node_auditor_remediation_actions_total', {
      action: 'inotify-limits',
      outcome: 'applied',
    }),
    1,
  );
  await eventually(
    () => lastAnnotation(fake)?.outcome === 'applied' || undefined,
    10_000,
    'annotation',
  );
  // the lock was released after the action
  const lease = fake.getLease('node-auditor', 'node-auditor-remediation-0');
  assert.ok(lease !== undefined, 'the remediation lock Lease');
  assert.ok(!lease.spec?.holderIdentity, `still held by ${lease.spec?.holderIdentity ?? ''}`);
});

test('the storm guard: no action while more than 20% of the nodes are NotReady', async (t) => {
  const { fake, root, env, args } = await setup(t, ['k1-node01', 'n2', 'n3', 'n4']);
  fake.setNodeReady('n2', false);
  fake.setNodeReady('n3', false);
  const agent = await startAgent(t, args, {
    env: { ...env, NODE_AUDITOR_REMEDIATION__MODE: 'enforce' },
  });
  const skipped = await decisionOf(agent.url, 'skipped');
  assert.match(skipped.reason, /2 of 4 nodes/);
  assert.equal(
    (await fs.readFile(path.join(root, 'proc/sys/fs/inotify/max_user_watches'), 'utf8')).trim(),
    '8192',
  );
  const event = await eventually(
    () => fake.events().find((e) => e.reason === 'RemediationSkipped'),
    10_000,
    'the skipped Event',
  );
  assert.equal(event.type, 'Warning');
  assert.match(
    event.message ?? '',
    /^inotify-limits: .*2 of 4 nodes.*; fs\.inotify\.max_user_watches 8192 -> 1048576/,
  );
});

test('an action enabled by a reload has its metric series at 0 before its first decision', async (t) => {
  const { args, env } = await setup(t);
  const config = path.join(await tempDir(t), 'config.yaml');
  const actions = (names: string[]) =>
    `remediation:\n  actions:\n${names.map((n) => `    ${n}:\n      enabled: true\n`).join('')}`;
  await fs.writeFile(config, actions(['inotify-limits']));
  const agent = await startAgent(t, [...args, '--config', config], { env });
  await decisionOf(agent.url, 'dry_run'); // the engine runs
  const series = async (action: string) => {
    const metrics = (await httpGet(`${agent.url}/metrics`)).body;
    return ['applied', 'dry_run', 'skipped', 'failed'].map((outcome) =>
      metricValue(metrics, 'node_auditor_remediation_actions_total', { action, outcome }),
    );
  };
  assert.deepEqual(await series('restart-kubelet'), Array(4).fill(undefined));

  // restart-kubelet is called for only by an unhealthy kubelet: it will not decide here, and
  // its first failure must still be an increase() from 0
  await fs.writeFile(config, actions(['inotify-limits', 'restart-kubelet']));
  await agent.waitForLog((l) => l.event === 'config.applied');
  assert.deepEqual(await series('restart-kubelet'), [0, 0, 0, 0]);
  assert.deepEqual(await series('inotify-limits'), [0, 1, 0, 0], 'counts kept');
});

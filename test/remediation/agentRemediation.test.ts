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
  assert.deepEqual(
    planned.changes.find((c) => c.what === WATCHES),
    { what: WATCHES, before: '8192', after: '1048576' },
  );
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
  assert.match(
    dryEvent.message ?? '',
    /^inotify-limits: .*fs\.inotify\.max_user_watches 8192 -> 1048576.*\(dry run: nothing was changed\)$/,
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
  assert.deepEqual(
    applied.changes.find((c) => c.what === WATCHES),
    planned.changes.find((c) => c.what === WATCHES),
  );
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
  assert.match(appliedEvent.message ?? '', /fs\.inotify\.max_user_watches 8192 -> 1048576/);
  assert.doesNotMatch(appliedEvent.message ?? '', /dry run/);
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

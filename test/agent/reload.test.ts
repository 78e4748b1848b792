// Reloading the configuration of a running agent: on file change (also a ConfigMap's atomic
// "..data" symlink swap) and on SIGHUP; a bad configuration is rejected and the old one kept.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import {
  BIN,
  cleanEnv,
  cleanup,
  eventually,
  fixtureHost,
  httpGet,
  metricValue,
  sleep,
  startAgent,
  tempDir,
} from '../helpers.ts';
import type { RunningAgent } from '../helpers.ts';
import { holdOpens } from '../heldOpens.ts';

const watchesAtLeast = (n: number, extra = '') =>
  `checks:\n  sysctl:\n    interval: 60s\n${extra}    profile:\n      fs.inotify.max_user_watches:\n        expect: ">= ${n}"\n`;

async function findings(agent: RunningAgent): Promise<{ id: string; firstSeen: string }[]> {
  return (
    JSON.parse((await httpGet(`${agent.url}/api/v1/findings`)).body) as {
      findings: { id: string; firstSeen: string }[];
    }
  ).findings;
}

test('a changed config file is applied, a bad one rejected, state kept throughout', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'config.yaml');
  await fs.writeFile(file, watchesAtLeast(524288));
  const agent = await startAgent(t, ['--config', file, '--host-root', fixtureHost('compliant')]);
  assert.deepEqual(await findings(agent), []);

  // stricter profile: the compliant node (1048576 watches) now falls short
  await fs.writeFile(file, watchesAtLeast(2097152));
  const applied = await agent.waitForLog((l) => l.event === 'config.applied');
  assert.equal(applied.trigger, 'config file changed');
  assert.deepEqual(applied.changedChecks, ['sysctl']);
  const raised = await eventually(
    async () =>
      (await findings(agent)).find(
        (f) => f.id === 'SysctlOutOfProfile:fs.inotify.max_user_watches',
      ),
    5000,
    'the stricter profile to raise a finding',
  );

  // a bad file: rejected with the key and file named, the old configuration keeps running
  await fs.writeFile(file, 'checks:\n  sysctl:\n    interval: soon\n');
  const rejected = await agent.waitForLog((l) => l.event === 'config.rejected');
  assert.equal(
    rejected.error,
    `invalid configuration:\n${file}: checks.sysctl.interval: invalid duration "soon" (use e.g. 500ms, 30s, 5m, 1h)`,
  );
  const metrics = (await httpGet(`${agent.url}/metrics`)).body;
  assert.equal(
    metricValue(metrics, 'node_auditor_config_reloads_total', { result: 'rejected' }),
    1,
  );
  assert.equal(metricValue(metrics, 'node_auditor_config_reloads_total', { result: 'applied' }), 1);
  assert.equal(metricValue(metrics, 'node_auditor_config_last_reload_successful'), 0);
  assert.equal((await httpGet(`${agent.url}/healthz`)).status, 200);
  const still = (await findings(agent)).find((f) => f.id === raised.id);
  assert.equal(
    still?.firstSeen,
    raised.firstSeen,
    'the finding and its firstSeen survive the rejected reload',
  );

  // SIGHUP reloads too (same, valid, content): the finding is neither cleared nor re-raised
  await fs.writeFile(file, watchesAtLeast(2097152));
  await agent.waitForLog(
    (l) =>
      l.event === 'config.applied' &&
      l.trigger === 'config file changed' &&
      agent.logs.filter((x) => x.event === 'config.applied').length === 2,
  );
  agent.process.kill('SIGHUP');
  const hup = await agent.waitForLog((l) => l.event === 'config.applied' && l.trigger === 'SIGHUP');
  assert.deepEqual(hup.changedChecks, []);
  assert.equal(
    (await findings(agent)).find((f) => f.id === raised.id)?.firstSeen,
    raised.firstSeen,
  );
  assert.equal(
    agent.logs.filter((l) => l.event === 'finding.raised').length,
    1,
    'raised once only',
  );
  assert.equal(agent.logs.filter((l) => l.event === 'finding.cleared').length, 0);
});

test('a Kubernetes ConfigMap update (atomic ..data symlink swap) is picked up', async (t) => {
  const dir = await tempDir(t);
  // the layout kubelet writes for a ConfigMap volume
  await fs.mkdir(path.join(dir, '..2026_11_22_01'));
  await fs.writeFile(path.join(dir, '..2026_11_22_01', 'config.yaml'), watchesAtLeast(524288));
  await fs.symlink('..2026_11_22_01', path.join(dir, '..data'));
  await fs.symlink('..data/config.yaml', path.join(dir, 'config.yaml'));
  const agent = await startAgent(t, [
    '--config',
    path.join(dir, 'config.yaml'),
    '--host-root',
    fixtureHost('compliant'),
  ]);

  await fs.mkdir(path.join(dir, '..2026_11_22_02'));
  await fs.writeFile(path.join(dir, '..2026_11_22_02', 'config.yaml'), watchesAtLeast(4194304));
  await fs.symlink('..2026_11_22_02', path.join(dir, '..data_tmp'));
  await fs.rename(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
  await agent.waitForLog((l) => l.event === 'config.applied');
  await eventually(
    async () =>
      (await findings(agent)).find(
        (f) => f.id === 'SysctlOutOfProfile:fs.inotify.max_user_watches',
      ),
    5000,
    'the new profile',
  );
});

test('disabling a check clears its findings and metrics; restart-only settings say so', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'config.yaml');
  await fs.writeFile(file, 'checks: {sysctl: {enabled: true}}\n');
  const agent = await startAgent(t, ['--config', file, '--host-root', fixtureHost('bad-runtime')]);
  assert.equal((await findings(agent)).length, 7);

  await fs.writeFile(file, 'nodeName: another-node\nchecks: {sysctl: {enabled: false}}\n');
  await agent.waitForLog((l) => l.event === 'config.applied');
  const restart = await agent.waitForLog((l) => l.event === 'config.restart-needed');
  assert.equal(restart.setting, 'nodeName');
  assert.equal(restart.msg, 'nodeName changes only when the agent restarts');
  assert.deepEqual(await findings(agent), []);
  const cleared = agent.logs.filter((l) => l.event === 'finding.cleared');
  assert.equal(cleared.length, 7);
  assert.ok(cleared.every((l) => l.reason === 'disabled in config'));
  const report = JSON.parse((await httpGet(`${agent.url}/api/v1/findings`)).body) as {
    node: string;
    checks: unknown[];
  };
  assert.deepEqual(report.checks[0], {
    id: 'sysctl',
    status: 'skipped',
    durationMs: 0,
    reason: 'disabled in config',
  });
  const metrics = (await httpGet(`${agent.url}/metrics`)).body;
  assert.equal(
    metricValue(metrics, 'node_auditor_sysctl', { key: 'fs.inotify.max_user_watches' }),
    undefined,
    'measurements removed',
  );
  assert.equal(
    metricValue(metrics, 'node_auditor_problem', {
      check: 'sysctl',
      problem: 'SysctlOutOfProfile',
      severity: 'critical',
    }),
    0,
    'problem series kept at 0',
  );
  assert.notEqual(report.node, 'another-node', 'the node name in use is kept');
  assert.equal((await httpGet(`${agent.url}/healthz`)).status, 200);
});

/**
 * An agent held in start-up after it listens: the read of its kubeconfig does not return (the
 * open is held, as on a hung disk) until release(). The kubeconfig names an API that is not
 * there: once released, the Kubernetes side retries in the background, as on a node whose API
 * is down. Undefined when the test is skipped (holding an open needs root and gcc).
 */
async function agentInStartUp(
  t: TestContext,
): Promise<{ agent: RunningAgent; config: string; release: () => Promise<void> } | undefined> {
  const dir = await tempDir(t);
  const config = path.join(dir, 'config.yaml');
  await fs.writeFile(config, watchesAtLeast(524288));
  const kubeconfig = path.join(dir, 'kubeconfig');
  await fs.writeFile(
    kubeconfig,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]',
      'users: [{name: u, user: {token: t}}]',
      'contexts: [{name: x, context: {cluster: c, user: u}}]',
      'current-context: x',
      '',
    ].join('\n'),
  );
  const held = await holdOpens(t, [kubeconfig]);
  if (held === undefined) return undefined;
  const agent = await startAgent(
    t,
    ['--config', config, '--host-root', fixtureHost('compliant'), '--kubeconfig', kubeconfig],
    { waitFor: 'listening' },
  );
  await sleep(200);
  assert.equal(
    agent.logs.find((l) => l.event === 'kube.on'),
    undefined,
    'start-up went past the kubeconfig',
  );
  return { agent, config, release: () => held.release() };
}

test('SIGHUP during start-up does not kill the agent: the reload waits for start-up', async (t) => {
  const held = await agentInStartUp(t);
  if (held === undefined) return;
  const { agent, config, release } = held;
  await fs.writeFile(config, watchesAtLeast(2097152));
  agent.process.kill('SIGHUP');
  await sleep(300);
  assert.equal(agent.process.exitCode, null, `the agent died: ${agent.stderr()}`);
  assert.equal(agent.process.signalCode, null, 'killed by SIGHUP');
  assert.equal(
    agent.logs.find((l) => l.event === 'config.applied'),
    undefined,
    'no reload while the agent is still starting',
  );
  await release();
  const applied = await agent.waitForLog(
    (l) => l.event === 'config.applied' && l.trigger === 'SIGHUP',
  );
  assert.deepEqual(applied.changedChecks, ['sysctl']);
  assert.equal(await agent.stop(), 0);
});

test('SIGTERM during start-up stops the agent cleanly once start-up is done, exit 0', async (t) => {
  const held = await agentInStartUp(t);
  if (held === undefined) return;
  const { agent, release } = held;
  const exited = agent.stop();
  await agent.waitForLog((l) => l.event === 'agent.stopping' && l.signal === 'SIGTERM');
  await release();
  assert.equal(await exited, 0, agent.stderr());
  assert.equal(agent.process.signalCode, null);
  assert.equal(
    agent.logs.find((l) => l.event === 'agent.stop-deadline'),
    undefined,
  );
});

/**
 * Milliseconds from sending `signals` (one after the other) to the agent's exit, and how it
 * ended: an exit status, or the signal that ended it.
 */
async function exitAfter(
  agent: RunningAgent,
  signals: NodeJS.Signals[],
): Promise<{ ms: number; ended: number | string | null }> {
  const exited = new Promise<number | string | null>((resolve) => {
    agent.process.once('exit', (code, signal) => {
      resolve(code ?? signal);
    });
  });
  const sent = performance.now();
  for (const signal of signals) {
    agent.process.kill(signal);
    await sleep(100);
  }
  const ended = await Promise.race([exited, sleep(15_000).then(() => 'still running')]);
  return { ms: performance.now() - sent, ended };
}

test('SIGTERM or SIGINT during a start-up that hangs: the agent ends after 5 s, not never', async (t) => {
  // Kubernetes sends one SIGTERM, then waits out the grace period: the agent waited for its
  // start-up forever (only a second SIGTERM, Node's default, ended it). A read stuck in the
  // kernel keeps Node's own exit waiting too, so it ends as the signal ends a process (143 for
  // SIGTERM); what matters is that it ends.
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    const held = await agentInStartUp(t);
    if (held === undefined) return;
    const { agent } = held;
    const { ms, ended } = await exitAfter(agent, [signal]);
    assert.equal(ended, signal, agent.stderr());
    assert.ok(ms >= 4500 && ms < 9000, `${signal}: exited after ${Math.round(ms)} ms`);
    const late = await agent.waitForLog((l) => l.event === 'agent.stop-deadline');
    assert.equal(late.signal, signal);
    assert.equal(late.msg, `start-up did not finish within 5 s of ${signal}: exiting without it`);
  }
});

test('a second stop signal during start-up ends the agent at once', async (t) => {
  const held = await agentInStartUp(t);
  if (held === undefined) return;
  const { agent } = held;
  // SIGINT after SIGTERM did nothing; a second SIGTERM killed the agent (exit 143)
  const { ms, ended } = await exitAfter(agent, ['SIGTERM', 'SIGINT']);
  assert.equal(ended, 'SIGINT', agent.stderr());
  assert.ok(ms < 2000, `exited after ${Math.round(ms)} ms`);
  const now = await agent.waitForLog((l) => l.event === 'agent.stopping' && l.signal === 'SIGINT');
  assert.equal(now.msg, 'SIGINT after SIGTERM: exiting now');
});

test('SIGTERM while the config file cannot be read yet: the agent ends after 5 s', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'config.yaml');
  await fs.writeFile(file, watchesAtLeast(524288));
  const held = await holdOpens(t, [file]);
  if (held === undefined) return;
  // Signals were only queued while the configuration loaded: nothing but SIGKILL ended it.
  const child = spawn(process.execPath, [BIN, 'run', '--config', file, '--listen', '127.0.0.1:0'], {
    env: cleanEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  cleanup(t, () => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | string | null>((resolve) =>
    child.once('close', (code, signal) => {
      resolve(code ?? signal);
    }),
  );
  await sleep(1000); // Node is up and reading the file
  const sent = performance.now();
  child.kill('SIGTERM');
  const ended = await Promise.race([exited, sleep(15_000).then(() => 'still running')]);
  const ms = performance.now() - sent;
  assert.equal(ended, 'SIGTERM', stderr);
  assert.ok(ms >= 4500 && ms < 9000, `exited after ${Math.round(ms)} ms`);
  assert.equal(
    stderr,
    'node-auditor: start-up did not finish within 5 s of SIGTERM: exiting without it\n',
  );
});

// Issue 3: the agent's memory once connected, with 250 pods on its node (the pods watch keeps
// only a few strings per pod). Baseline: the same agent with no cluster, same run.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startFakeKubeApi } from '../test/kube/fakeKubeApi.ts';
import { rssMiB, sleep, startAgent } from './benchSupport.ts';
import type { Result } from './benchSupport.ts';

export async function kubeAgentRss(): Promise<Result> {
  const fake = await startFakeKubeApi();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'na-bench-'));
  try {
    for (let i = 0; i < 250; i++) {
      fake.addPod({
        namespace: `team-${i % 10}`,
        name: `app-${i}`,
        nodeName: 'k1-node01',
        containers: [{ name: 'app' }, { name: 'sidecar' }],
      });
    }
    const kubeconfig = path.join(dir, 'kubeconfig');
    await fake.writeKubeconfig(kubeconfig, 'sa');
    const env = { NODE_AUDITOR_STATE_DIR: path.join(dir, 'state') };
    const connected = await startAgent(
      ['--kubeconfig', kubeconfig, '--node-name', 'k1-node01'],
      env,
    );
    await sleep(2000); // watches synced, Events sent
    const withCluster = rssMiB(connected.child.pid ?? 0);
    await connected.stop();
    const alone = await startAgent([], env);
    await sleep(2000);
    const without = rssMiB(alone.child.pid ?? 0);
    await alone.stop();
    return {
      name: 'RSS of `run` connected, 250 pods on the node',
      metric: 'after 2 s',
      value: withCluster,
      unit: 'MiB',
      baseline: { what: 'the same agent, no cluster', value: without },
      detail: 'pods watch, node watch, Events, leader Lease',
    };
  } finally {
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

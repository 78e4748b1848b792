// Budget (issue 2): RSS of `node-auditor run` after the first pass at most 60 MiB.
// Baseline: a bare Node HTTP server listening, in the same run.
import { rssMiB, sleep, startAgent, startBareServer } from './benchSupport.ts';
import type { Result } from './benchSupport.ts';

const RUNS = 3;

export async function agentRss(): Promise<Result> {
  const agentRss: number[] = [];
  const bareRss: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    // On this host (host root /), as `npm start` runs it.
    const agent = await startAgent([]);
    await sleep(1000); // let the first pass's garbage settle, as it would on a node
    agentRss.push(rssMiB(agent.child.pid ?? 0));
    await agent.stop();
    const bare = await startBareServer('ok');
    await sleep(1000);
    bareRss.push(rssMiB(bare.child.pid ?? 0));
    await bare.stop();
  }
  const worst = Math.max(...agentRss);
  return {
    name: 'RSS of `run` after the first pass',
    metric: `max of ${RUNS}`,
    value: worst,
    unit: 'MiB',
    budget: 60,
    baseline: { what: 'bare Node HTTP server', value: Math.max(...bareRss) },
    detail: `runs ${agentRss.map((v) => v.toFixed(1)).join(', ')} MiB`,
  };
}

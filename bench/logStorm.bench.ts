// Budgets (issue 4): during a sustained storm of 50,000 lines/s for 60 s, RSS at most 80 MiB and
// the event loop never blocked more than 50 ms. The agent follows /var/log/syslog of a host root
// while this process appends 5,000 lines every 100 ms (one line in ten a problem the rules
// match, so incidents count a storm too). Every second: the agent's RSS from /proc and
// nodejs_eventloop_lag_max_seconds from /metrics (the longest delay since the previous scrape).
// Baseline: the same agent, idle, just before the storm.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO, rssMiB, sleep, startAgent } from './benchSupport.ts';
import type { Result } from './benchSupport.ts';
import { syslogLine } from './logLines.ts';

const SECONDS = Number(process.env.BENCH_STORM_SECONDS ?? 60);
const RATE = 50_000;
const TICK_MS = 100;

function sample(text: string, name: string, labels = ''): number {
  const m = new RegExp(`^${name}${labels.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text);
  return Number(m?.[1] ?? Number.NaN);
}

export async function logStorm(): Promise<Result[]> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'node-auditor-bench-'));
  try {
    await fs.cp(path.join(REPO, 'test', 'fixtures', 'hosts', 'compliant'), root, {
      recursive: true,
    });
    const syslog = path.join(root, 'var', 'log', 'syslog');
    const config = path.join(root, 'node-auditor.yaml');
    await fs.writeFile(
      config,
      `stateDir: ${path.join(root, 'state')}\nchecks:\n  logs:\n    files: [/var/log/syslog]\n    journal: {enabled: false}\n    kmsg: {enabled: false}\n`,
    );
    const agent = await startAgent(['--host-root', root, '--config', config]);
    const pid = agent.child.pid ?? 0;
    try {
      const scrape = async () => (await fetch(`${agent.url}/metrics`)).text();
      // Idle: the baseline.
      await scrape();
      await sleep(3000);
      const idleRss = rssMiB(pid);
      const idleLag = sample(await scrape(), 'nodejs_eventloop_lag_max_seconds') * 1000;

      let written = 0;
      const perTick = (RATE * TICK_MS) / 1000;
      const started = performance.now();
      let writing = Promise.resolve();
      const writer = setInterval(() => {
        // Catch up to the rate by the clock, whatever a slow tick cost.
        const due = Math.floor(((performance.now() - started) / 1000) * RATE) - written;
        const count = Math.max(0, Math.min(due, perTick * 5));
        if (count === 0) return;
        const lines: string[] = [];
        for (let i = 0; i < count; i++) lines.push(syslogLine(written + i, 10));
        written += count;
        writing = writing.then(() => fs.appendFile(syslog, lines.join('\n') + '\n'));
      }, TICK_MS);
      let maxRss = 0;
      let maxLag = 0;
      while (performance.now() - started < SECONDS * 1000) {
        await sleep(1000);
        maxRss = Math.max(maxRss, rssMiB(pid));
        maxLag = Math.max(
          maxLag,
          sample(await scrape(), 'nodejs_eventloop_lag_max_seconds') * 1000,
        );
      }
      clearInterval(writer);
      await writing;
      const elapsed = (performance.now() - started) / 1000;
      // Let it finish what was written: did it keep up?
      let read = 0;
      for (let i = 0; i < 50 && read < written; i++) {
        await sleep(100);
        read = sample(await scrape(), 'node_auditor_log_lines_total', '{source="/var/log/syslog"}');
      }
      const text = await scrape();
      maxLag = Math.max(maxLag, sample(text, 'nodejs_eventloop_lag_max_seconds') * 1000);
      const matches = [
        ...text.matchAll(/^node_auditor_log_matches_total\{[^}]*\} (\d+)$/gm),
      ].reduce((sum, m) => sum + Number(m[1]), 0);
      // A budget met by an agent that fell behind or stopped matching measures less work, not
      // less cost: the run is void then, not "within budget".
      const expectedMatches = Math.floor(written / 10);
      if (read !== written || matches !== expectedMatches)
        throw new Error(
          `log storm: the agent did not do the work: ${read} of ${written} lines read 5 s after the storm, ${matches} matched (expected ${expectedMatches})`,
        );
      const detail = `${written.toLocaleString('en-US')} lines in ${elapsed.toFixed(0)} s (${Math.round(written / elapsed).toLocaleString('en-US')}/s), ${read.toLocaleString('en-US')} read, ${matches.toLocaleString('en-US')} matched`;
      return [
        {
          name: `RSS during a ${RATE.toLocaleString('en-US')} lines/s storm`,
          metric: `max over ${SECONDS} s`,
          value: maxRss,
          unit: 'MiB',
          budget: 80,
          baseline: { what: 'the agent idle', value: idleRss },
          detail,
        },
        {
          name: `Event-loop block during the storm`,
          metric: `max over ${SECONDS} s`,
          value: maxLag,
          unit: 'ms',
          budget: 50,
          baseline: { what: 'the agent idle', value: idleLag },
          detail: 'kept up: every line read',
        },
      ];
    } finally {
      await agent.stop();
    }
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
}

// Budget (issue 4): from a line appended to a file (and to the journal) to the metric changing,
// p99 at most 250 ms over 100 trials. The agent follows /var/log/syslog and the journal of a
// host root; each trial appends one line and polls /metrics (every 2 ms) until
// node_auditor_log_lines_total{source} moves. Journal entries are written by the real
// systemd-journal-remote; the clock starts before it is spawned, so its start-up is counted
// against us. Baseline: the same poll loop with nothing to wait for (what measuring costs).
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO, percentile, sleep, startAgent } from './benchSupport.ts';
import type { Result } from './benchSupport.ts';
import { journalRemote, writeJournalFile } from '../test/journalFiles.ts';

const TRIALS = 100;
const JOURNAL_REMOTE = journalRemote();

async function linesTotal(url: string, source: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = new RegExp(`^node_auditor_log_lines_total\\{source="${source}"\\} (\\d+)$`, 'm').exec(
    text,
  );
  return Number(m?.[1] ?? 0);
}

function writeJournal(file: string, message: string): Promise<void> {
  return writeJournalFile(JOURNAL_REMOTE ?? 'systemd-journal-remote', file, [
    { message, identifier: 'kubelet', transport: 'journal' },
  ]);
}

async function trials(
  url: string,
  source: string,
  append: (i: number) => Promise<void>,
): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < TRIALS; i++) {
    const before = await linesTotal(url, source);
    const t0 = performance.now();
    await append(i);
    while ((await linesTotal(url, source)) <= before) {
      if (performance.now() - t0 > 10_000)
        throw new Error(`${source}: line ${i} not counted within 10 s`);
      await sleep(2);
    }
    times.push(performance.now() - t0);
    await sleep(10 + (i % 7) * 5); // not in step with any timer of the agent
  }
  return times.sort((a, b) => a - b);
}

export async function logLatency(): Promise<Result[]> {
  if (JOURNAL_REMOTE === undefined) {
    throw new Error('systemd-journal-remote is needed (apt-get install systemd-journal-remote)');
  }
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'node-auditor-bench-'));
  try {
    await fs.cp(path.join(REPO, 'test', 'fixtures', 'hosts', 'compliant'), root, {
      recursive: true,
    });
    const journalDir = path.join(root, 'var', 'log', 'journal', '0123456789abcdef0123456789abcdef');
    await fs.mkdir(journalDir, { recursive: true });
    const journalFile = path.join(journalDir, 'system.journal');
    await writeJournal(journalFile, 'journal started');
    const syslog = path.join(root, 'var', 'log', 'syslog');
    const config = path.join(root, 'node-auditor.yaml');
    await fs.writeFile(
      config,
      `stateDir: ${path.join(root, 'state')}\nchecks:\n  logs:\n    files: [/var/log/syslog]\n    journal: {directories: [/var/log/journal]}\n    kmsg: {enabled: false}\n`,
    );
    const agent = await startAgent(['--host-root', root, '--config', config]);
    try {
      const stamp = () => new Date().toUTCString().slice(5, 25);
      const file = await trials(agent.url, '/var/log/syslog', (i) =>
        fs.appendFile(
          syslog,
          `${stamp()} k1-node01 kubelet[31100]: I1122 trial ${i} "SyncLoop (PLEG): event for pod"\n`,
        ),
      );
      const journal = await trials(agent.url, 'journald', (i) =>
        writeJournal(journalFile, `I1122 trial ${i} "SyncLoop (PLEG): event for pod"`),
      );
      // What the poll loop alone costs: one scrape and a sleep, nothing to wait for.
      const floor: number[] = [];
      for (let i = 0; i < TRIALS; i++) {
        const t0 = performance.now();
        await linesTotal(agent.url, 'journald');
        floor.push(performance.now() - t0);
      }
      floor.sort((a, b) => a - b);
      const result = (name: string, times: number[]): Result => ({
        name,
        metric: `p99 of ${TRIALS}`,
        value: percentile(times, 99),
        unit: 'ms',
        budget: 250,
        baseline: { what: 'one /metrics poll', value: percentile(floor, 99) },
        detail: `p50 ${percentile(times, 50).toFixed(1)} ms, max ${percentile(times, 100).toFixed(1)} ms`,
      });
      return [
        result('Line appended to a file → metric', file),
        result('Entry written to the journal → metric', journal),
      ];
    } finally {
      await agent.stop();
    }
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
}

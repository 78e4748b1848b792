// Child process of bench/procScan.bench.ts, started with the V8 flags `run` sets (interpretOnly()
// in agent/cli/runCommand.ts): one cold scan of this host's /proc, then STEADY_SCANS steady
// ones, each timed (wall, CPU), its longest event-loop block taken from monitorEventLoopDelay
// (1 ms resolution, so a value includes up to 1 ms of timer interval) and RSS sampled every 5 ms.
// Before the scans: RSS, and the longest block of the same event loop idle for IDLE_MS (the
// floor the scans' blocks compare with). Prints one JSON line.
import { DEFAULT_INFRA_COMMANDS } from '../agent/procfs/processOwner.ts';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { HostRoot } from '../agent/host/hostRoot.ts';
import { ProcessScanner } from '../agent/procfs/processScanner.ts';
import type { ProcessScan } from '../agent/procfs/processScanner.ts';
import { sleep } from './benchSupport.ts';

const STEADY_SCANS = 6;
const IDLE_MS = 500;
const MiB = 1024 * 1024;

export interface ScanSample {
  wallMs: number;
  cpuMs: number;
  maxBlockMs: number;
  classified: number;
  /** RSS growth over the worker's RSS before the first scan, max while this scan ran. */
  rssGrowthMiB: number;
}

export interface WorkerReport {
  cold: ScanSample;
  steady: {
    wallMs: number[];
    cpuMs: number[];
    maxBlockMs: number[];
    classified: number[];
    rssGrowthMiB: number[];
  };
  processes: number;
  fds: number;
  inotifyInstances: number;
  inotifyWatches: number;
  fdsDenied: number;
  rssBeforeMiB: number;
  rssMaxMiB: number;
  /** Longest event-loop block while idle for IDLE_MS before the scans. */
  idleBlockMs: number;
}

const histogram = monitorEventLoopDelay({ resolution: 1 });
histogram.enable();
const scanner = new ProcessScanner(new HostRoot('/'));

// Let startup's garbage and timers settle before the baseline RSS.
await sleep(200);
histogram.reset();
await sleep(IDLE_MS);
const idleBlockMs = histogram.max / 1e6;
const rssBefore = process.memoryUsage.rss();
let rssMax = rssBefore;

async function measured(): Promise<{ sample: ScanSample; scan: ProcessScan }> {
  let scanRssMax = process.memoryUsage.rss();
  const sampler = setInterval(() => {
    scanRssMax = Math.max(scanRssMax, process.memoryUsage.rss());
  }, 5);
  histogram.reset();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const scan = await scanner.scan({ infraCommands: new Set(DEFAULT_INFRA_COMMANDS) });
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  scanRssMax = Math.max(scanRssMax, process.memoryUsage.rss());
  // The histogram records a block when the next 1 ms tick runs: give it that tick.
  await sleep(3);
  clearInterval(sampler);
  rssMax = Math.max(rssMax, scanRssMax);
  return {
    scan,
    sample: {
      wallMs,
      cpuMs: (cpu.user + cpu.system) / 1000,
      maxBlockMs: histogram.max / 1e6,
      classified: scan.classified,
      rssGrowthMiB: (scanRssMax - rssBefore) / MiB,
    },
  };
}

const first = await measured();
const steady: WorkerReport['steady'] = {
  wallMs: [],
  cpuMs: [],
  maxBlockMs: [],
  classified: [],
  rssGrowthMiB: [],
};
let last = first.scan;
for (let i = 0; i < STEADY_SCANS; i++) {
  await sleep(100);
  const { sample, scan } = await measured();
  steady.wallMs.push(sample.wallMs);
  steady.cpuMs.push(sample.cpuMs);
  steady.maxBlockMs.push(sample.maxBlockMs);
  steady.classified.push(sample.classified);
  steady.rssGrowthMiB.push(sample.rssGrowthMiB);
  last = scan;
}
histogram.disable();

const report: WorkerReport = {
  cold: first.sample,
  steady,
  processes: last.processes.length,
  fds: last.processes.reduce((sum, p) => sum + (p.fds ?? 0), 0),
  inotifyInstances: last.processes.reduce((sum, p) => sum + p.inotify.length, 0),
  inotifyWatches: last.processes.reduce(
    (sum, p) => sum + p.inotify.reduce((s, i) => s + i.watches, 0),
    0,
  ),
  fdsDenied: last.fdsDenied,
  rssBeforeMiB: rssBefore / MiB,
  rssMaxMiB: rssMax / MiB,
  idleBlockMs,
};
console.log(JSON.stringify(report));

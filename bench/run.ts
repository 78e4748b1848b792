// npm run bench: every hot-path benchmark against its budget and a same-run baseline.
// --write records the results in bench/RESULTS.md. Exits 1 when a budget is exceeded.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { agentRss } from './agentRss.bench.ts';
import { BIN, REPO, machine } from './benchSupport.ts';
import type { Result } from './benchSupport.ts';
import { checkEndToEnd } from './checkEndToEnd.bench.ts';
import { kubeAgentRss } from './kubeAgentRss.bench.ts';
import { kubeClientCost } from './kubeClient.bench.ts';
import { logLatency } from './logLatency.bench.ts';
import { logMatching } from './logMatching.bench.ts';
import { logStorm } from './logStorm.bench.ts';
import { procScan } from './procScan.bench.ts';
import { scrapeLatency } from './scrapeLatency.bench.ts';

if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run npm run build first`);
process.chdir(REPO);

const results: Result[] = [];
for (const bench of [
  agentRss,
  scrapeLatency,
  checkEndToEnd,
  kubeClientCost,
  kubeAgentRss,
  logMatching,
  logLatency,
  logStorm,
  procScan,
]) {
  for (const result of [await bench()].flat()) {
    results.push(result);
    const verdict =
      result.budget === undefined
        ? 'no budget'
        : `budget ${result.budget}, ${result.value <= result.budget ? 'ok' : 'OVER BUDGET'}`;
    console.log(
      `${result.name}: ${result.metric} ${result.value.toFixed(2)} ${result.unit} (${verdict}); ` +
        `baseline ${result.baseline.what} ${result.baseline.value.toFixed(2)} ${result.unit}; ${result.detail}`,
    );
  }
}

if (process.argv.includes('--write')) {
  const rows = results.map(
    (r) =>
      `| ${r.name} | ${r.metric} | **${r.value.toFixed(2)} ${r.unit}** | ${r.budget === undefined ? '-' : `${r.budget} ${r.unit}`} | ${r.baseline.what}: ${r.baseline.value.toFixed(2)} ${r.unit} | ${r.detail} |`,
  );
  const file = path.join(REPO, 'bench', 'RESULTS.md');
  // Keep the hand-written notes below the marker; replace the measured part above it.
  const notes = existsSync(file)
    ? (readFileSync(file, 'utf8').split('<!-- notes -->')[1] ?? '')
    : '';
  writeFileSync(
    file,
    `# Benchmark results\n\nRecorded by \`npm run bench -- --write\` on ${new Date().toISOString().slice(0, 10)}.\n\n` +
      `Machine: ${machine()}.\n\n` +
      `| benchmark | measure | result | budget | baseline (same run) | detail |\n|---|---|---|---|---|---|\n${rows.join('\n')}\n\n<!-- notes -->${notes}`,
  );
  console.log(`wrote ${file}`);
}

const over = results.filter((r) => r.budget !== undefined && r.value > r.budget);
if (over.length > 0) {
  console.error(`over budget: ${over.map((r) => r.name).join(', ')}`);
  process.exitCode = 1;
}

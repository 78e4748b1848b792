// Budget (issue 2): /metrics p99 at most 20 ms with all checks registered, over 1,000 scrapes.
// Baseline: a bare Node HTTP server returning the same bytes, scraped the same way.
import http from 'node:http';
import { percentile, startAgent, startBareServer } from './benchSupport.ts';
import type { Result } from './benchSupport.ts';

const SCRAPES = 1000;

async function scrapeTimes(url: string): Promise<{ times: number[]; bytes: number; body: string }> {
  // One keep-alive connection, like Prometheus.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const times: number[] = [];
  let body = '';
  for (let i = 0; i < SCRAPES + 20; i++) {
    const t0 = performance.now();
    body = await new Promise<string>((resolve, reject) => {
      http
        .get(`${url}/metrics`, { agent }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (text += d));
          res.on('end', () => {
            resolve(text);
          });
        })
        .on('error', reject);
    });
    if (i >= 20) times.push(performance.now() - t0); // the first 20 warm up
  }
  agent.destroy();
  return { times: times.sort((a, b) => a - b), bytes: Buffer.byteLength(body), body };
}

export async function scrapeLatency(): Promise<Result> {
  const agent = await startAgent(['--host-root', 'test/fixtures/hosts/bad-runtime']);
  const measured = await scrapeTimes(agent.url);
  await agent.stop();
  const bare = await startBareServer(measured.body);
  const baseline = await scrapeTimes(bare.url.replace(/\/$/, ''));
  await bare.stop();
  const p = (q: number) => percentile(measured.times, q);
  return {
    name: '/metrics scrape latency',
    metric: `p99 of ${SCRAPES}`,
    value: p(99),
    unit: 'ms',
    budget: 20,
    baseline: { what: 'bare server, same bytes', value: percentile(baseline.times, 99) },
    detail: `p50 ${p(50).toFixed(2)} ms, max ${p(100).toFixed(2)} ms, ${(measured.bytes / 1024).toFixed(1)} KiB per scrape`,
  };
}

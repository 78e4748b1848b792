// Readiness from the local kubelet: its healthz, and the fallback while the API is out of reach.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { KubeletFallback, probeKubeletHealth } from '../../agent/kubernetes/kubeletHealth.ts';
import { eventually, sleep } from '../helpers.ts';

async function kubelet(t: TestContext) {
  const state = { status: 200, body: 'ok' };
  const server = http.createServer((_req, res) => {
    res.writeHead(state.status, { 'Content-Type': 'text/plain' });
    res.end(state.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(
    () =>
      new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        }),
      ),
  );
  return { state, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/healthz` };
}

test('healthz: 200 "ok" is healthy; anything else, or nothing, is not', async (t) => {
  const k = await kubelet(t);
  assert.equal(await probeKubeletHealth(k.url), true);
  k.state.body = 'not ok';
  assert.equal(await probeKubeletHealth(k.url), false);
  k.state.status = 500;
  k.state.body = 'ok';
  assert.equal(await probeKubeletHealth(k.url), false);
  assert.equal(await probeKubeletHealth('http://127.0.0.1:1/healthz'), false, 'connection refused');
});

test('while the Node watch fails, readiness comes from the kubelet, after a grace period, until it works again', async (t) => {
  const k = await kubelet(t);
  const reports: boolean[] = [];
  const fallback = new KubeletFallback((ok) => reports.push(ok), { afterMs: 300 });
  // fed by a healthz probe of the real (test) kubelet, as the integration's 10 s probe feeds it
  const probe = setInterval(() => {
    void probeKubeletHealth(k.url).then((ok) => {
      fallback.observe(ok);
    });
  }, 100);
  t.after(() => {
    clearInterval(probe);
    fallback.stop();
  });
  fallback.start();
  await sleep(150);
  assert.equal(reports.length, 0, 'not during the grace period (a watch may just be reconnecting)');
  await eventually(
    () => (reports.includes(true) ? true : undefined),
    2000,
    'the kubelet reported healthy',
  );
  k.state.status = 503;
  await eventually(
    () => (reports.at(-1) === false ? true : undefined),
    2000,
    'the kubelet reported unhealthy',
  );
  fallback.stop();
  const after = reports.length;
  await sleep(300);
  assert.equal(reports.length, after, 'the watch is the source again');
});

// The container-runtime check against real servers on real unix sockets under a host root: an
// HTTP/2 (gRPC) server as containerd, an HTTP server as dockerd, a socket whose process was
// killed (connection refused), and a process that accepts but never answers (hung).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import type { CheckOutcome } from '../../agent/checks/check.ts';
import { containerRuntimeCheck } from '../../agent/checks/containerRuntime/containerRuntimeCheck.ts';
import { tempDir } from '../helpers.ts';
import { checkOptions, runCheckOn } from './runCheckOn.ts';

const options = checkOptions(containerRuntimeCheck, { probeTimeout: '500ms' });

function run(root: string): Promise<CheckOutcome> {
  return runCheckOn(containerRuntimeCheck, root, options);
}

async function socketPath(root: string, hostPath: string): Promise<string> {
  const local = path.join(root, hostPath);
  await fs.mkdir(path.dirname(local), { recursive: true });
  return local;
}

async function listen(t: TestContext, server: net.Server, at: string): Promise<void> {
  await new Promise<void>((resolve) => server.listen(at, resolve));
  t.after(
    () =>
      new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        }),
      ),
  );
}

/** A gRPC server stand-in: a real HTTP/2 server (it answers the preface with SETTINGS). */
async function containerd(t: TestContext, root: string): Promise<void> {
  const server = http2.createServer();
  await listen(t, server, await socketPath(root, '/run/containerd/containerd.sock'));
}

/** A socket file whose process died without removing it: connection refused. */
async function deadSocket(root: string, hostPath: string): Promise<void> {
  const at = await socketPath(root, hostPath);
  const child = spawn(process.execPath, [
    '-e',
    `require('net').createServer().listen(${JSON.stringify(at)}, () => process.stdout.write('up'))`,
  ]);
  await new Promise((resolve) => child.stdout.once('data', resolve));
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));
  await fs.stat(at); // still there
}

describe('container-runtime check', () => {
  it('finds a runtime that answers on its socket up', async (t) => {
    const root = await tempDir(t);
    await containerd(t, root);
    const outcome = await run(root);
    assert.deepEqual(outcome.findings, []);
    assert.deepEqual(outcome.samples, [
      { metric: 'node_auditor_container_runtime_up', labels: { runtime: 'containerd' }, value: 1 },
    ]);
  });

  it('probes dockerd with /_ping', async (t) => {
    const root = await tempDir(t);
    const server = http.createServer((req, res) => {
      res.end(req.url === '/_ping' ? 'OK' : 'no');
    });
    await listen(t, server, await socketPath(root, '/var/run/docker.sock'));
    assert.deepEqual((await run(root)).samples, [
      { metric: 'node_auditor_container_runtime_up', labels: { runtime: 'docker' }, value: 1 },
    ]);
  });

  it('names ContainerRuntimeDown when the only runtime refuses connections', async (t) => {
    const root = await tempDir(t);
    await deadSocket(root, '/run/containerd/containerd.sock');
    const outcome = await run(root);
    const [finding] = outcome.findings;
    assert.equal(finding?.cause, 'ContainerRuntimeDown');
    assert.equal(finding?.severity, 'critical');
    assert.match(finding?.evidence[0] ?? '', /refused/);
    assert.deepEqual(outcome.samples, [
      { metric: 'node_auditor_container_runtime_up', labels: { runtime: 'containerd' }, value: 0 },
    ]);
  });

  it('calls a runtime that accepts but never answers hung', async (t) => {
    const root = await tempDir(t);
    // Reads (so it sees the probe hang up and the test can close it) but never answers.
    const silent = net.createServer((connection) => connection.resume());
    await listen(t, silent, await socketPath(root, '/var/run/crio/crio.sock'));
    const started = performance.now();
    const [finding] = (await run(root)).findings;
    assert.equal(finding?.cause, 'ContainerRuntimeDown');
    assert.match(finding?.evidence[0] ?? '', /timeout: connected, but no answer within 500 ms/);
    assert.ok(performance.now() - started < 2000);
  });

  it('only warns about a dead runtime while another one answers', async (t) => {
    const root = await tempDir(t);
    await containerd(t, root);
    await deadSocket(root, '/var/run/docker.sock');
    const [finding, ...rest] = (await run(root)).findings;
    assert.equal(rest.length, 0);
    assert.equal(finding?.id, 'ContainerRuntimeDown:docker');
    assert.equal(finding?.severity, 'warning');
    assert.equal(finding?.cause, undefined);
  });

  it('on a kubelet node with no runtime socket at all, the runtime is down', async (t) => {
    const root = await tempDir(t);
    await fs.mkdir(path.join(root, 'var', 'lib', 'kubelet'), { recursive: true });
    const [finding] = (await run(root)).findings;
    assert.equal(finding?.id, 'ContainerRuntimeDown:none');
    assert.equal(finding?.cause, 'ContainerRuntimeDown');
  });

  it('says nothing on a host that is neither a kubelet node nor runs a runtime', async (t) => {
    assert.deepEqual(await run(await tempDir(t)), { findings: [], samples: [] });
  });
});

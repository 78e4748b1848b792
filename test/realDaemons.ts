// The real daemons several tests run (Prometheus, Alertmanager): a free port, a process that
// lives as long as the test, readiness, and Prometheus started from a config and its files.
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { eventually, requireTool, tempDir } from './helpers.ts';

/** A port nothing listens on now (the daemon is told to take it). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A real daemon for the test's lifetime; returns the tail of its stderr (and how it exited). */
export function spawnDaemon(t: TestContext, binary: string, args: string[]): () => string {
  const child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-6000)));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  t.after(async () => {
    if (child.exitCode === null) child.kill('SIGTERM');
    await exited;
  });
  return () => (child.exitCode === null ? stderr : `exited ${String(child.exitCode)}:\n${stderr}`);
}

/** Until `url` answers 2xx; fails at once with the daemon's stderr if it exited. */
export async function waitReady(url: string, stderr: () => string, what: string): Promise<void> {
  await eventually(
    async () => {
      if (stderr().startsWith('exited')) throw new Error(`${what} ${stderr()}`);
      try {
        return (await fetch(url)).ok ? true : undefined;
      } catch {
        return undefined; // not listening yet
      }
    },
    20_000,
    `${what} to be ready`,
  );
}

/**
 * Prometheus on 127.0.0.1 with `config` as prometheus.yml and `files` beside it (rule files),
 * ready to answer; undefined when it is not installed (skipped, or a failure in CI).
 */
export async function startPrometheus(
  t: TestContext,
  config: string,
  files: Record<string, string> = {},
): Promise<{ url: string; stderr: () => string } | undefined> {
  const binary = requireTool(t, 'prometheus');
  if (binary === undefined) return undefined;
  const dir = await tempDir(t, 'node-auditor-prometheus-');
  await fs.writeFile(path.join(dir, 'prometheus.yml'), config);
  for (const [name, text] of Object.entries(files)) await fs.writeFile(path.join(dir, name), text);
  const port = await freePort();
  const stderr = spawnDaemon(t, binary, [
    `--config.file=${path.join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${path.join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${String(port)}`,
  ]);
  const url = `http://127.0.0.1:${String(port)}`;
  await waitReady(`${url}/-/ready`, stderr, 'prometheus');
  return { url, stderr };
}

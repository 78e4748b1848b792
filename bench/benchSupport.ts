// What every benchmark needs: the bundled bin, processes, percentiles, the machine description.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const REPO = path.resolve(import.meta.dirname, '..');
export const BIN = path.join(REPO, 'dist', 'node-auditor.cjs');

export interface Result {
  name: string;
  /** What the budget applies to, e.g. "p99". */
  metric: string;
  value: number;
  unit: string;
  /** From an issue; a benchmark without one is recorded, not judged. */
  budget?: number;
  baseline: { what: string; value: number };
  detail: string;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, i)] ?? Number.NaN;
}

export function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1]);
  return kb / 1024;
}

export interface Agent {
  child: ChildProcess;
  url: string;
  stop(): Promise<void>;
}

/** Start `node-auditor run` on a free port; resolve once its first pass is done. */
export function startAgent(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Agent> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'run', '--listen', '127.0.0.1:0', ...args], {
      stdio: ['ignore', 'pipe', 'ignore'],
      env: { ...process.env, ...env },
    });
    let url = '';
    let buffer = '';
    const timer = setTimeout(() => {
      reject(new Error('agent did not become ready within 20s'));
    }, 20_000);
    child.stdout.on('data', (d: Buffer) => {
      buffer += d.toString();
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = JSON.parse(buffer.slice(0, nl)) as { event?: string; url?: string };
        buffer = buffer.slice(nl + 1);
        if (line.event === 'http.listening') url = String(line.url);
        if (line.event === 'agent.ready') {
          clearTimeout(timer);
          resolve({ child, url, stop: () => stop(child) });
        }
      }
    });
    child.on('error', reject);
  });
}

/** A bare Node HTTP server in its own process: the floor any Node agent pays. */
export function startBareServer(body: string): Promise<Agent> {
  const code = `const b=process.env.BODY;require('node:http').createServer((q,s)=>{s.writeHead(200,{'Content-Type':'text/plain; version=0.0.4; charset=utf-8','Content-Length':Buffer.byteLength(b)});s.end(b)}).listen(0,'127.0.0.1',function(){console.log(this.address().port)})`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', code], {
      stdio: ['ignore', 'pipe', 'ignore'],
      env: { ...process.env, BODY: body },
    });
    child.stdout.once('data', (d: Buffer) => {
      resolve({ child, url: `http://127.0.0.1:${d.toString().trim()}`, stop: () => stop(child) });
    });
    child.on('error', reject);
  });
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) {
      resolve();
      return;
    }
    child.once('close', () => {
      resolve();
    });
    child.kill('SIGTERM');
  });
}

export function machine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  const mem = (os.totalmem() / 1024 ** 3).toFixed(0);
  return `${cpu}, ${os.availableParallelism()} cores, ${mem} GiB RAM, Linux ${os.release()}, Node ${process.version}`;
}

export async function sleep(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

// Shared test helpers: temporary host trees, the real CLI (the bundled bin users run), a real
// running agent, and real tools (promtool ...).
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';

export const REPO = path.resolve(import.meta.dirname, '..');
export const BIN = path.join(REPO, 'dist', 'node-auditor.cjs');
export const FIXTURE_HOSTS = path.join(REPO, 'test', 'fixtures', 'hosts');

export function fixtureHost(name: string): string {
  return path.join(FIXTURE_HOSTS, name);
}

const cleanups = new WeakMap<TestContext, (() => unknown)[]>();

/**
 * Run `fn` when the test ends, last added first (as Go's t.Cleanup): what was set up later (an
 * agent, an Event recorder) stops before what it uses (its directory) goes. node:test runs
 * t.after hooks in the order they were added, so a directory removed by one ran before the
 * agent writing into it had stopped, and the agent wrote its state file again afterwards,
 * leaving the directory behind. All of a test's cleanups run in one t.after hook, added with
 * the first: a plain t.after added later runs after all of them.
 */
export function cleanup(t: TestContext, fn: () => unknown): void {
  let stack = cleanups.get(t);
  if (stack === undefined) {
    const added: (() => unknown)[] = [];
    stack = added;
    cleanups.set(t, added);
    t.after(async () => {
      const failures: unknown[] = [];
      for (let next = added.pop(); next !== undefined; next = added.pop()) {
        try {
          await next();
        } catch (error) {
          failures.push(error); // the others still run
        }
      }
      if (failures.length > 0) throw new AggregateError(failures, 'a cleanup failed');
    });
  }
  stack.push(fn);
}

/** A temporary directory removed after the test (after what was set up later has stopped). */
export async function tempDir(t: TestContext, prefix = 'node-auditor-test-'): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  cleanup(t, () => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Copy a fixture host tree (symlinks kept) so a test may change it. */
export async function copyFixtureHost(t: TestContext, name: string): Promise<string> {
  const dir = await tempDir(t);
  await fs.cp(fixtureHost(name), dir, { recursive: true, verbatimSymlinks: true });
  return dir;
}

/** Write files (path -> content) under a root. */
export async function writeFiles(
  root: string,
  files: Record<string, string | Buffer>,
): Promise<void> {
  for (const [rel, content] of Object.entries(files)) {
    const file = path.join(root, rel);
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, content);
  }
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run the bundled CLI, as `npx node-auditor` would. */
export function runCli(
  args: string[],
  options: {
    env?: NodeJS.ProcessEnv;
    cwd?: string;
    timeoutMs?: number;
    /** Run as this user and group (needs root): what an operator without root sees. */
    user?: { uid: number; gid: number };
  } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: options.cwd ?? REPO,
      env: { ...cleanEnv(), ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(options.user === undefined ? {} : { uid: options.user.uid, gid: options.user.gid }),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `node-auditor ${args.join(' ')} did not exit within ${options.timeoutMs ?? 20_000}ms\n${stderr}`,
        ),
      );
    }, options.timeoutMs ?? 20_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The environment without settings leaking in from the developer's shell. */
export function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('NODE_AUDITOR_') && k !== 'NODE_NAME' && k !== 'KUBECONFIG') env[k] = v;
  }
  return env;
}

export interface LogLine {
  level: string;
  msg: string;
  event?: string;
  [key: string]: unknown;
}

export interface RunningAgent {
  url: string;
  process: ChildProcess;
  /** Every JSON log line so far. */
  logs: LogLine[];
  stderr: () => string;
  /** Resolves with the first log line matching (already seen or future). */
  waitForLog(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  stop(): Promise<number | null>;
}

/**
 * Start `node-auditor run` on an ephemeral port and wait until it is ready (or, with
 * `waitFor: 'listening'`, only until it listens: start-up may still be going on).
 */
export async function startAgent(
  t: TestContext,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; waitFor?: 'listening' | 'ready' } = {},
): Promise<RunningAgent> {
  // Each agent its own state directory: never the machine's /var/lib/node-auditor, never
  // another test's (tests run in parallel).
  const stateDir = await tempDir(t, 'node-auditor-state-');
  // A free port on loopback, unless the test listens elsewhere (a flag is given once).
  const listen = args.includes('--listen') ? [] : ['--listen', '127.0.0.1:0'];
  const child = spawn(process.execPath, [BIN, 'run', ...listen, ...args], {
    cwd: REPO,
    env: { ...cleanEnv(), NODE_AUDITOR_STATE_DIR: stateDir, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: LogLine[] = [];
  const waiters: { match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  let stderr = '';
  let buffer = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.on('data', (d: Buffer) => {
    buffer += d.toString();
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const text = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        throw new Error(`agent wrote a line to stdout that is not JSON: ${text}`);
      }
      logs.push(line);
      for (const w of [...waiters]) {
        if (w.match(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  });
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const agent: RunningAgent = {
    url: '',
    process: child,
    logs,
    stderr: () => stderr,
    waitForLog(match, timeoutMs = 15_000) {
      const seen = logs.find(match);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(
            new Error(
              `no matching log line within ${timeoutMs}ms; stderr: ${stderr}\nlogs: ${logs.map((l) => JSON.stringify(l)).join('\n')}`,
            ),
          );
        }, timeoutMs);
        waiters.push({
          match,
          resolve: (l) => {
            clearTimeout(timer);
            resolve(l);
          },
        });
      });
    },
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
  // before its state directory (and the test's, made before it) are removed
  cleanup(t, async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
    await exited;
  });
  const listening = await agent.waitForLog((l) => l.event === 'http.listening');
  agent.url = String(listening.url);
  if (options.waitFor !== 'listening') await agent.waitForLog((l) => l.event === 'agent.ready');
  return agent;
}

export async function httpGet(
  url: string,
  init?: RequestInit,
): Promise<{ status: number; body: string; headers: Headers }> {
  const res = await fetch(url, init);
  return { status: res.status, body: await res.text(), headers: res.headers };
}

/** Value of one sample in Prometheus text exposition, or undefined. */
export function metricValue(
  exposition: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  for (const line of exposition.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (m === null || m[1] !== name) continue;
    const have: Record<string, string> = {};
    for (const pair of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      have[pair[1] ?? ''] = pair[2] ?? '';
    if (
      Object.entries(labels).every(([k, v]) => have[k] === v) &&
      Object.keys(have).length === Object.keys(labels).length
    ) {
      return Number(m[4]);
    }
  }
  return undefined;
}

/**
 * A real tool this test needs (promtool, ...). CI installs them and sets
 * TEST_REQUIRE_REAL_TOOLS=1, so a missing tool fails there instead of silently skipping.
 */
export function requireTool(t: TestContext, name: string): string | undefined {
  const found = findTool(name);
  if (found !== undefined) return found;
  if (process.env.TEST_REQUIRE_REAL_TOOLS === '1')
    throw new Error(`${name} is required (TEST_REQUIRE_REAL_TOOLS=1) but not installed`);
  t.skip(`${name} is not installed (apt-get install it, or run .ci/run)`);
  return undefined;
}

/** Where a tool is on PATH, or undefined; no skip, no failure (for a choice between tools). */
export function findTool(name: string): string | undefined {
  const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).stdout.trim();
  return found === '' ? undefined : found;
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/**
 * The test needs root (PID namespaces, /dev/kmsg, /proc/sys): true as root; else skipped, or
 * failed under TEST_REQUIRE_REAL_TOOLS=1 (CI runs as root and must not skip these quietly).
 */
export function requireRoot(t: TestContext, why: string): boolean {
  if (isRoot()) return true;
  if (process.env.TEST_REQUIRE_REAL_TOOLS === '1')
    throw new Error(`needs root (TEST_REQUIRE_REAL_TOOLS=1): ${why}`);
  t.skip(`needs root: ${why}`);
  return false;
}

/**
 * Part of a test needs root (file ownership): true as root; else that part is left out with a
 * diagnostic, or the test fails under TEST_REQUIRE_REAL_TOOLS=1.
 */
export function rootForPart(t: TestContext, part: string): boolean {
  if (isRoot()) return true;
  if (process.env.TEST_REQUIRE_REAL_TOOLS === '1')
    throw new Error(`needs root (TEST_REQUIRE_REAL_TOOLS=1): ${part}`);
  t.diagnostic(`not checked without root: ${part}`);
  return false;
}

export async function sleep(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

/** Poll until fn returns a value that is not undefined, or fail after timeoutMs. */
export async function eventually<T>(
  fn: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}`);
    await sleep(50);
  }
}

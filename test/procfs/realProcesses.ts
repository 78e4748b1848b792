// Real processes for the process checks' tests: the C programs in test/fixtures/programs built
// with gcc, real PID namespaces (unshare), and real cgroups named the way the kubelet names a
// pod's (cgroupfs driver: /kubepods/besteffort/pod<uid>/<container id>), in the pids hierarchy
// (cgroup v1) or the unified one (v2). Everything started is killed and removed afterwards.
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { REPO, requireTool, sleep, tempDir } from '../helpers.ts';

const PROGRAMS = path.join(REPO, 'test', 'fixtures', 'programs');

/** Where pod cgroups go: the v1 pids hierarchy, else the v2 unified one. */
export function cgroupMount(): string {
  if (existsSync('/sys/fs/cgroup/pids/cgroup.procs')) return '/sys/fs/cgroup/pids';
  return '/sys/fs/cgroup';
}

export interface Programs {
  dir: string;
  pause: string;
  forker: string;
  watcher: string;
}

/** Build the C test programs; undefined (skipped) without gcc. */
export async function buildPrograms(t: TestContext): Promise<Programs | undefined> {
  const gcc = requireTool(t, 'gcc');
  if (gcc === undefined) return undefined;
  const dir = await tempDir(t, 'node-auditor-programs-');
  for (const name of ['pause', 'forker', 'watcher']) {
    execFileSync(gcc, [
      '-O2',
      '-Wall',
      '-o',
      path.join(dir, name),
      path.join(PROGRAMS, `${name}.c`),
    ]);
  }
  return {
    dir,
    pause: path.join(dir, 'pause'),
    forker: path.join(dir, 'forker'),
    watcher: path.join(dir, 'watcher'),
  };
}

export interface FakePod {
  uid: string;
  podDir: string;
  /** cgroup directory of a container of this pod (created on demand). */
  container(id?: string): Promise<{ id: string; dir: string }>;
}

/** Everything a test started: processes to kill, cgroups to remove (children first). */
export class Cleanup {
  private readonly children: ChildProcess[] = [];
  private readonly cgroups: string[] = [];

  constructor(t: TestContext) {
    t.after(() => this.run());
  }

  track(child: ChildProcess): ChildProcess {
    this.children.push(child);
    return child;
  }

  cgroup(dir: string): void {
    this.cgroups.push(dir);
  }

  async run(): Promise<void> {
    for (const child of this.children) {
      // The process group: unshare's child and everything under it.
      try {
        process.kill(-(child.pid as number), 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }
    await sleep(100);
    for (const dir of [...this.cgroups].reverse()) {
      for (let i = 0; i < 50; i++) {
        try {
          await fs.rmdir(dir);
          break;
        } catch {
          await sleep(50); // its last processes are still being reaped
        }
      }
    }
  }
}

export async function fakePod(cleanup: Cleanup): Promise<FakePod> {
  const uid = randomUUID();
  const qos = path.join(cgroupMount(), 'kubepods', 'besteffort');
  await fs.mkdir(qos, { recursive: true });
  const podDir = path.join(qos, `pod${uid}`);
  await fs.mkdir(podDir);
  cleanup.cgroup(podDir);
  return {
    uid,
    podDir,
    async container(id = randomBytes(32).toString('hex')) {
      const dir = path.join(podDir, id);
      await fs.mkdir(dir);
      cleanup.cgroup(dir);
      return { id, dir };
    },
  };
}

/**
 * Start a command inside a cgroup (it joins before exec, so all it forks is there too), in its
 * own process group. Resolves once it printed `ready` on stdout, if asked to wait for it.
 */
export async function startIn(
  cleanup: Cleanup,
  cgroupDir: string | undefined,
  command: string[],
  options: { waitFor?: string; stdin?: 'pipe' | 'ignore' } = {},
): Promise<ChildProcess> {
  const script =
    cgroupDir === undefined ? 'exec "$@"' : `echo $$ > '${cgroupDir}/cgroup.procs' && exec "$@"`;
  const child = cleanup.track(
    spawn('sh', ['-c', script, 'sh', ...command], {
      detached: true,
      stdio: [options.stdin ?? 'ignore', 'pipe', 'inherit'],
    }),
  );
  if (options.waitFor !== undefined) {
    const wanted = options.waitFor;
    await new Promise<void>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => {
        reject(
          new Error(
            `${command.join(' ')}: no "${wanted}" within 10 s (got ${JSON.stringify(out)})`,
          ),
        );
      }, 10_000);
      child.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes(wanted)) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`${command.join(' ')} exited with ${String(code)} before "${wanted}"`));
      });
    });
  } else child.stdout?.resume();
  return child;
}

/** PIDs of a cgroup's processes (host view). */
export async function cgroupPids(dir: string): Promise<number[]> {
  const text = await fs.readFile(path.join(dir, 'cgroup.procs'), 'utf8');
  return text.split('\n').filter(Boolean).map(Number);
}

/** The PID (host view) of the process that is PID 1 of a new namespace under `dir`. */
export async function namespaceInit(dir: string, comm: string): Promise<number> {
  for (let i = 0; i < 100; i++) {
    for (const pid of await cgroupPids(dir)) {
      try {
        const status = await fs.readFile(`/proc/${pid}/status`, 'utf8');
        const name = /^Name:\s+(.*)$/m.exec(status)?.[1];
        const nspid = /^NSpid:\s+(.*)$/m.exec(status)?.[1]?.split(/\s+/) ?? [];
        if (name === comm && nspid.at(-1) === '1' && nspid.length > 1) return pid;
      } catch {
        // gone meanwhile
      }
    }
    await sleep(50);
  }
  throw new Error(`no ${comm} as PID 1 of a namespace in ${dir}`);
}

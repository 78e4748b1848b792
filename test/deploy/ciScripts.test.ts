// The shell scripts CI runs, where they decide what to fetch or build: run for real (bash),
// with the tools that would fetch or build replaced by stubs that only record their calls, so a
// step that should not happen shows up as a call.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { REPO, requireRoot, requireTool, tempDir } from '../helpers.ts';

/** A directory of stubs named `tools`, each appending its name and arguments to `calls`. */
async function stubs(t: TestContext, tools: string[]): Promise<{ bin: string; calls: string }> {
  const dir = await tempDir(t, 'node-auditor-stubs-');
  const bin = path.join(dir, 'bin');
  const calls = path.join(dir, 'calls');
  await fs.mkdir(bin);
  await fs.writeFile(calls, '');
  for (const tool of tools)
    await fs.writeFile(
      path.join(bin, tool),
      `#!/bin/sh\necho "${tool} $*" >> '${calls}'\nexit 1\n`,
      { mode: 0o755 },
    );
  // another user writes the calls too
  await fs.chmod(dir, 0o755);
  await fs.chmod(calls, 0o666);
  return { bin, calls };
}

test('bench/image.sh refuses a Dockerfile it cannot rebuild before it builds or installs anything', async (t) => {
  if (!requireRoot(t, 'bench/image.sh runs only as root')) return;
  const pinned = `FROM node:${process.versions.node}-bookworm-slim AS build`;
  const shipped = await fs.readFile(path.join(REPO, 'Dockerfile'), 'utf8');
  const runtime = shipped.slice(shipped.indexOf('\nFROM debian:'));
  for (const [dockerfile, refusal] of [
    // the build stage on another Node than the tests
    [`FROM node:20.0.0-bookworm-slim AS build\nRUN npm ci${runtime}`, /the build stage is/],
    // a runtime stage with a step the script does not rebuild
    [`${pinned}\nRUN npm ci${runtime}\nENV A=1\n`, /the runtime stage is not/],
  ] as const) {
    // a repository of its own: the script, that Dockerfile, the tests' node, no bundle yet
    const repo = await tempDir(t, 'node-auditor-repo-');
    await fs.mkdir(path.join(repo, 'bench'));
    await fs.copyFile(path.join(REPO, 'bench', 'image.sh'), path.join(repo, 'bench', 'image.sh'));
    await fs.writeFile(path.join(repo, 'Dockerfile'), dockerfile);
    await fs.mkdir(path.join(repo, 'node_modules', '.bin'), { recursive: true });
    await fs.symlink(process.execPath, path.join(repo, 'node_modules', '.bin', 'node'));
    const { bin, calls } = await stubs(t, ['npm', 'apt-get', 'debootstrap']);
    const run = spawnSync('bash', [path.join(repo, 'bench', 'image.sh')], {
      encoding: 'utf8',
      env: { PATH: `${bin}:${process.env.PATH}` },
      timeout: 60_000,
    });
    assert.equal(run.status, 1, run.stderr);
    assert.match(run.stderr, refusal);
    assert.equal(await fs.readFile(calls, 'utf8'), '', 'nothing built, installed or fetched');
    assert.ok(!existsSync(path.join(repo, 'dist')));
  }
});

test('.ci/run fetches dockerd only when it is not there, also for a user whose PATH has no /usr/local/sbin, and without root for the download', async (t) => {
  if (!requireRoot(t, 'runs the step as another user')) return;
  const setpriv = requireTool(t, 'setpriv');
  if (setpriv === undefined) return;
  const ci = await fs.readFile(path.join(REPO, '.ci', 'run'), 'utf8');
  const asRoot = /^as_root\(\).*$/m.exec(ci)?.[0];
  const step = /^# dockerd alone[\s\S]*?^fi$/m.exec(ci)?.[0];
  assert.ok(asRoot !== undefined && step !== undefined, '.ci/run has its as_root and dockerd step');
  const installed = '/usr/local/sbin/dockerd';
  const run = async (script: string) => {
    const { bin, calls } = await stubs(t, ['sudo', 'apt-get', 'dpkg-deb']);
    const dir = path.dirname(bin);
    await fs.chmod(dir, 0o777); // its mktemp -d
    await fs.writeFile(path.join(dir, 'step.sh'), `set -eu\n${asRoot}\n${script}\n`);
    // nobody, with the PATH Debian gives a user that is not root
    spawnSync(
      setpriv,
      ['--reuid=65534', '--regid=65534', '--clear-groups', 'bash', path.join(dir, 'step.sh')],
      {
        cwd: dir,
        encoding: 'utf8',
        env: { PATH: `${bin}:/usr/local/bin:/usr/bin:/bin:/usr/games`, TMPDIR: dir },
        timeout: 30_000,
      },
    );
    return (await fs.readFile(calls, 'utf8')).trim().split('\n').filter(Boolean);
  };
  // not there (the step as written, but looking for it at a path that does not exist): it is
  // downloaded as this user, root asked for nothing while the package lists are current
  const missing = await run(step.replaceAll(installed, path.join(REPO, 'no-such', 'dockerd')));
  assert.deepEqual(missing[0], 'apt-get download -qq docker.io');
  assert.ok(!missing.includes('sudo apt-get download -qq docker.io'), missing.join('; '));
  // there: nothing fetched
  if (!existsSync(installed)) {
    t.skip(`${installed} is not installed (.ci/run installs it)`);
    return;
  }
  assert.deepEqual(await run(step), []);
});

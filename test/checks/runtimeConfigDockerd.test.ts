// The runtime-config check against a real dockerd: for each daemon.json and command line, the
// check calls the file refused exactly when dockerd refuses it, naming the same keys. dockerd
// is started with the file in a temp dir, a PATH without containerd and a mount namespace of
// its own (it bind-mounts its data root, which would otherwise outlive it), so a configuration
// it accepts ends at "failed to start containerd" with nothing started or left on the host;
// one it refuses ends at "unable to configure the Docker daemon with file". The cases use
// only keys every dockerd from 17.06 on knows the same way (the check's table is their union).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import { runtimeConfigCheck } from '../../agent/checks/runtimeConfig/runtimeConfigCheck.ts';
import { requireRoot, requireTool, tempDir, writeFiles } from '../helpers.ts';
import { checkOptions, runCheckOn } from './runCheckOn.ts';

interface Verdict {
  refused: boolean;
  /** Keys named as unknown, or (when none) as set both ways. */
  keys: string[];
}

/** What dockerd says of `json` when started with `flags` (plus its own temp dirs). */
async function dockerdVerdict(
  unshare: string,
  binary: string,
  dir: string,
  flags: string[],
): Promise<Verdict> {
  const child = spawn(unshare, ['--mount', '--propagation', 'private', binary, ...flags], {
    env: { PATH: path.join(dir, 'no-binaries') },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await new Promise((resolve) => child.once('exit', resolve));
  clearTimeout(timer);
  const refusal = /unable to configure the Docker daemon with file [^:]+: (.*)/.exec(stderr)?.[1];
  if (refusal === undefined) {
    assert.match(stderr, /failed to start containerd/, 'dockerd stopped for another reason');
    return { refused: false, keys: [] };
  }
  const unknown = /don't match any configuration option: (.*)/.exec(refusal)?.[1];
  if (unknown !== undefined) return { refused: true, keys: unknown.split(', ').sort() };
  const both = [...refusal.matchAll(/(?:: |, )([A-Za-z0-9-]+): \(from flag/g)].map((m) => m[1]);
  assert.ok(both.length > 0, refusal);
  return { refused: true, keys: both.map(String).sort() };
}

/** What the check says of the same file and command line, seen through /proc. */
async function checkVerdict(root: string, argv: string[]): Promise<Verdict> {
  await writeFiles(root, {
    'var/run/docker.pid': '4242\n',
    'proc/4242/comm': 'dockerd\n',
    'proc/4242/cmdline': argv.join('\0') + '\0',
  });
  const outcome = await runCheckOn(runtimeConfigCheck, root, checkOptions(runtimeConfigCheck));
  const refused = outcome.findings.find((f) => f.problem === 'DockerDaemonJsonInvalid');
  if (refused === undefined) return { refused: false, keys: [] };
  const named = (re: RegExp) =>
    refused.evidence.flatMap((e) => {
      const key = re.exec(e)?.[1];
      return key === undefined ? [] : [key];
    });
  const unknown = named(/"([^"]+)" is not a dockerd option/);
  // dockerd names the unknown keys first and stops there
  const keys = unknown.length > 0 ? unknown : named(/"([^"]+)" is also set by --/);
  return { refused: true, keys: keys.sort() };
}

const CASES: { name: string; json: unknown; flags: string[] }[] = [
  {
    name: "the seed's daemon.json beside its DOCKER_OPTS",
    json: { 'storage-driver': 'overlay2', 'insecure-registries': ['docker-registry:5000'] },
    flags: ['--storage-driver=overlay2', '--insecure-registry', 'docker-registry:5000'],
  },
  {
    name: "the seed's daemon.json once the EnvironmentFile is emptied",
    json: { 'storage-driver': 'overlay2', 'insecure-registries': ['docker-registry:5000'] },
    flags: [],
  },
  {
    name: 'typos, a one-letter key and a key inside an object',
    json: { 'storage-drive': 'overlay2', D: true, proxies: { 'no-proxys': 'x' } },
    flags: [],
  },
  {
    name: "a list flag's own name as a key (accepted, and ignored)",
    json: { 'insecure-registry': ['oreo:5000'], label: ['a=b'] },
    flags: [],
  },
  {
    name: 'one-letter and map flags against their keys',
    json: { debug: true, 'log-opts': { 'max-size': '10m' }, 'exec-opts': [] },
    flags: ['-D', '--log-opt', 'max-file=3'],
  },
  {
    name: 'runtimes merge with --add-runtime; features and builder are never checked',
    json: { runtimes: {}, features: { anything: true }, builder: { gc: { enabled: true } } },
    flags: ['--add-runtime', 'custom=/bin/true'],
  },
  {
    name: '"hosts" beside the -H every dockerd here is given',
    json: { hosts: ['unix:///var/run/docker.sock'], 'log-level': 'info' },
    flags: [],
  },
];

describe('runtime-config check agrees with a real dockerd on which daemon.json it refuses', () => {
  for (const c of CASES)
    it(c.name, async (t: TestContext) => {
      const binary = requireTool(t, 'dockerd');
      const unshare = requireTool(t, 'unshare');
      if (binary === undefined || unshare === undefined) return;
      if (!requireRoot(t, 'dockerd runs only as root')) return;
      const dir = await tempDir(t, 'node-auditor-dockerd-');
      const root = path.join(dir, 'host');
      const config = path.join(root, 'etc', 'docker', 'daemon.json');
      await fs.mkdir(path.dirname(config), { recursive: true });
      await fs.writeFile(config, JSON.stringify(c.json));
      // the flags every run needs to keep dockerd inside the temp dir
      const own = [
        '--config-file',
        config,
        '--data-root',
        path.join(dir, 'data'),
        '--exec-root',
        path.join(dir, 'exec'),
        '--pidfile',
        path.join(dir, 'docker.pid'),
        '-H',
        `unix://${path.join(dir, 'docker.sock')}`,
      ];
      const real = await dockerdVerdict(unshare, binary, dir, [...own, ...c.flags]);
      // the check reads the same file at the same path under its host root
      const argv = ['/usr/bin/dockerd', ...own, ...c.flags].map((a) =>
        a === config ? '/etc/docker/daemon.json' : a,
      );
      assert.deepEqual(await checkVerdict(root, argv), real);
    });
});

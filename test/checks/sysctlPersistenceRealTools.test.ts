// The persistence model (persistedSysctls.ts) against the two programs it models, run for real
// on copies of the fixture hosts: procps' `sysctl --system` and systemd-sysctl. Each runs
// chrooted into the copy, with its binary and libraries copied in, so the /proc/sys it writes is
// the copy's directory of plain files: the kernel's /proc/sys cannot be reached from there.
// Compared: the files each applies, in order, and the value each leaves in every key.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { SYSCTL_CONF, readPersistedSysctls } from '../../agent/checks/sysctl/persistedSysctls.ts';
import type { PersistedSysctls } from '../../agent/checks/sysctl/persistedSysctls.ts';
import { HostRoot } from '../../agent/host/hostRoot.ts';
import { copyFixtureHost, findTool, requireRoot, requireTool, writeFiles } from '../helpers.ts';

interface Tools {
  procps: string;
  systemd: string;
}

/** The real programs, or undefined (skipped; a failure under TEST_REQUIRE_REAL_TOOLS=1). */
function tools(t: TestContext): Tools | undefined {
  if (!requireRoot(t, 'chroot')) return undefined;
  for (const tool of ['chroot', 'ldd', 'mknod']) if (requireTool(t, tool) === undefined) return;
  const procps = requireTool(t, 'sysctl');
  // not on PATH: where the systemd package puts it (merged /usr or not)
  const systemd =
    findTool('/usr/lib/systemd/systemd-sysctl') ?? requireTool(t, '/lib/systemd/systemd-sysctl');
  return procps === undefined || systemd === undefined ? undefined : { procps, systemd };
}

/** Copy each program and the libraries it links to into the root; /dev/null for masked files. */
async function installInto(root: string, programs: string[]): Promise<void> {
  // Only the copy's own directories are written: no procfs is mounted in it.
  const [rootDev, procDev] = await Promise.all([fs.stat(root), fs.stat(path.join(root, 'proc'))]);
  assert.equal(procDev.dev, rootDev.dev, `${root}/proc must be a plain directory`);
  for (const program of programs) {
    const libraries = execFileSync('ldd', [program], { encoding: 'utf8' })
      .split('\n')
      .map((line) => /(\/\S+) \(0x/.exec(line)?.[1])
      .filter((file): file is string => file !== undefined);
    for (const file of [...libraries, program]) {
      const target = path.join(root, file === program ? `/.tools/${path.basename(file)}` : file);
      await fs.mkdir(path.dirname(target), { recursive: true });
      await fs.copyFile(file, target);
    }
  }
  // What a name linked to /dev/null meets: systemd-sysctl skips it (masked), procps reads it
  // empty. An empty regular file instead would be parsed by systemd-sysctl.
  await fs.mkdir(path.join(root, 'dev'));
  execFileSync('mknod', ['-m', '666', path.join(root, 'dev/null'), 'c', '1', '3']);
}

/** Every key the copy's /proc/sys has, emptied so that a key nothing sets reads "". */
async function emptyProcSys(root: string): Promise<string[]> {
  const base = path.join(root, 'proc/sys');
  const keys: string[] = [];
  for (const entry of await fs.readdir(base, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    await fs.writeFile(file, '');
    keys.push(path.relative(base, file).split(path.sep).join('.'));
  }
  return keys.sort();
}

interface Applied {
  files: string[];
  values: Record<string, string>;
}

/** procps `sysctl --system`: "* Applying FILE ..." per file, then it writes every setting. */
async function procpsApplies(root: string): Promise<Applied> {
  const keys = await emptyProcSys(root);
  const run = spawnSync('chroot', [root, '/.tools/sysctl', '--system'], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  const files = [...run.stdout.matchAll(/^\* Applying (.+) \.\.\.$/gm)].map((m) => m[1] as string);
  const values: Record<string, string> = {};
  for (const key of keys) {
    const file = path.join(root, 'proc/sys', ...key.split('.'));
    values[key] = (await fs.readFile(file, 'utf8')).trim();
  }
  return { files, values };
}

/**
 * systemd-sysctl: its debug log names each file it parses and each value it writes. A name
 * linked to /dev/null is left out: it sets nothing, and whether it is "parsed" (v252: yes, as an
 * empty file) differs between versions.
 */
async function systemdApplies(root: string): Promise<Applied> {
  const keys = await emptyProcSys(root);
  const run = spawnSync('chroot', [root, '/.tools/systemd-sysctl'], {
    encoding: 'utf8',
    env: { ...process.env, SYSTEMD_LOG_LEVEL: 'debug', SYSTEMD_LOG_TARGET: 'console' },
  });
  assert.equal(run.status, 0, run.stderr);
  const files: string[] = [];
  for (const [, file] of run.stderr.matchAll(/^Parsing (\/.+)$/gm)) {
    const link = await fs.readlink(path.join(root, file as string)).catch(() => undefined);
    if (link !== '/dev/null') files.push(file as string);
  }
  const written = new Map(
    [...run.stderr.matchAll(/^Setting '\/proc\/sys\/(.+)' to '(.*)'$/gm)].map((m) => [
      (m[1] as string).split('/').join('.'),
      m[2] as string,
    ]),
  );
  const values: Record<string, string> = {};
  for (const key of keys) values[key] = written.get(key) ?? '';
  return { files, values };
}

/** What the agent says each program does on the same tree. */
function modelled(
  persisted: PersistedSysctls,
  keys: string[],
): { procps: Applied; systemd: Applied } {
  const values = (view: 'procps' | 'systemd') =>
    Object.fromEntries(keys.map((key) => [key, persisted[view](key).winner?.value ?? '']));
  return {
    // procps reads a masked name too (an empty /dev/null); /etc/sysctl.conf last
    procps: { files: persisted.files.map((f) => f.path), values: values('procps') },
    systemd: {
      files: persisted.files.filter((f) => !f.masked && f.path !== SYSCTL_CONF).map((f) => f.path),
      values: values('systemd'),
    },
  };
}

/** Runs both programs on the root and fails where the agent says otherwise; what they applied. */
async function compare(
  t: TestContext,
  root: string,
  tools: Tools,
): Promise<{ procps: Applied; systemd: Applied }> {
  await installInto(root, [tools.procps, tools.systemd]);
  const persisted = await readPersistedSysctls(new HostRoot(root));
  const model = modelled(persisted, await emptyProcSys(root));
  const procps = await procpsApplies(root);
  const systemd = await systemdApplies(root);
  assert.deepEqual(model.procps, procps, 'the agent (+) and sysctl --system (-) disagree');
  assert.deepEqual(model.systemd, systemd, 'the agent (+) and systemd-sysctl (-) disagree');
  t.diagnostic(
    `procps applied ${procps.files.length} files, systemd-sysctl ${systemd.files.length}`,
  );
  return { procps, systemd };
}

test('precedence across the six places: the files, their order and every value are what sysctl --system and systemd-sysctl apply', async (t) => {
  const found = tools(t);
  if (found === undefined) return;
  await compare(t, await copyFixtureHost(t, 'precedence'), found);
});

test('a systemd host: explicit keys, a vendor glob and a "-key" exclusion, as both programs apply them', async (t) => {
  const found = tools(t);
  if (found === undefined) return;
  const { procps, systemd } = await compare(t, await copyFixtureHost(t, 'systemd-boot'), found);
  // the vendor glob comes later, yet procps keeps the explicit key too
  assert.equal(procps.values['fs.inotify.max_user_watches'], '1048576');
  // the vendor's "-kernel.panic" cancels 10-site.conf's for systemd-sysctl only
  assert.deepEqual([procps.values['kernel.panic'], systemd.values['kernel.panic']], ['10', '']);
});

test('globs in several files and in /etc/sysctl.conf, explicit keys and exclusions on either side of them', async (t) => {
  const found = tools(t);
  if (found === undefined) return;
  const root = await copyFixtureHost(t, 'compliant');
  await fs.rm(path.join(root, 'etc/sysctl.d/99-kubernetes.conf'));
  await writeFiles(root, {
    // two globs of the same pattern: the later file's wins where neither is overridden
    'etc/sysctl.d/10-globs.conf': 'fs.inotify.max_user_* = 1000\nkernel.panic_on_* = 7\n',
    'usr/lib/sysctl.d/20-vendor.conf':
      'fs.inotify.max_user_* = 2000\nkernel.panic = 3\n-vm.panic_on_oom\nvm.* = 5\n',
    // an explicit key before the glob that would cover it, and one a later "-key" cancels for
    // systemd-sysctl (not for procps)
    'run/sysctl.d/05-early.conf': 'net.ipv4.ip_forward = 1\nvm.overcommit_memory = 1\n',
    'usr/lib/sysctl.d/30-late.conf': 'net.ipv4.* = 0\n-vm.overcommit_memory\n',
    // read by procps only: an exclusion and an explicit key after every glob
    'etc/sysctl.conf': '-fs.inotify.max_user_instances\nkernel.panic = 9\n',
  });
  const { procps, systemd } = await compare(t, root, found);
  // every rule in play, as both programs applied it
  const both = (key: string) => [procps.values[key], systemd.values[key]];
  assert.deepEqual(both('fs.inotify.max_user_watches'), ['2000', '2000']);
  assert.deepEqual(both('fs.inotify.max_user_instances'), ['', '2000']);
  assert.deepEqual(both('kernel.panic'), ['9', '3']);
  assert.deepEqual(both('kernel.panic_on_oops'), ['7', '7']);
  assert.deepEqual(both('net.ipv4.ip_forward'), ['1', '1']);
  assert.deepEqual(both('vm.overcommit_memory'), ['1', '']);
  assert.deepEqual(both('vm.panic_on_oom'), ['', '']);
});

test('a "-key" exclusion is a name, not a pattern: "-kernel.pan*" keeps no glob away', async (t) => {
  const found = tools(t);
  if (found === undefined) return;
  const root = await copyFixtureHost(t, 'compliant');
  await fs.rm(path.join(root, 'etc/sysctl.d/99-kubernetes.conf'));
  await writeFiles(root, {
    // before the glob and after it, in a drop-in and in /etc/sysctl.conf (procps reads it)
    'etc/sysctl.d/05-exclude.conf': '-kernel.pan*\n',
    'etc/sysctl.d/10-glob.conf': 'kernel.* = 1\n',
    'etc/sysctl.d/20-exclude.conf': '-kernel.panic_on_*\n',
    'etc/sysctl.conf': '-kernel.p*\n',
  });
  const { procps, systemd } = await compare(t, root, found);
  // the agent took each for a pattern and said the glob set neither key
  const both = (key: string) => [procps.values[key], systemd.values[key]];
  assert.deepEqual(both('kernel.panic'), ['1', '1']);
  assert.deepEqual(both('kernel.panic_on_oops'), ['1', '1']);
});

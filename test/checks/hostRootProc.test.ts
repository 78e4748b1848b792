// A host root without the host's /proc (a wrong --host-root, /proc not mounted there): the checks
// that read it fail and name the directory, instead of reporting a host where nothing runs and
// no kernel parameter exists.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { sysctlCheck } from '../../agent/checks/sysctl/sysctlCheck.ts';
import { ProcUnavailableError } from '../../agent/host/hostRoot.ts';
import { copyFixtureHost, runCli, tempDir, writeFiles } from '../helpers.ts';
import { checkOptions, runCheckOn, runProcessChecks } from './runCheckOn.ts';

interface JsonReport {
  checks: { id: string; status: string; error?: string }[];
  findings: { check: string; problem: string }[];
}

function advice(root: string, missing: string, what: string): string {
  return `${path.join(root, missing)} ${what}: mount the host's /proc at ${path.join(root, 'proc')}, or point --host-root at the host's /`;
}

test('check --host-root <empty dir>: every check that reads /proc fails naming <dir>/proc, and sysctl names <dir>/proc/sys once', async (t) => {
  const root = await tempDir(t);
  const r = await runCli(['check', '--output', 'json', '--host-root', root]);
  assert.equal(r.code, 1, r.stderr);
  const report = JSON.parse(r.stdout) as JsonReport;
  const status = new Map(report.checks.map((c) => [c.id, c]));
  for (const id of ['inotify', 'pause', 'zombies', 'kubelet-config']) {
    assert.deepEqual(
      [status.get(id)?.status, status.get(id)?.error],
      ['error', advice(root, 'proc', 'does not exist')],
      id,
    );
  }
  assert.deepEqual(
    [status.get('sysctl')?.status, status.get('sysctl')?.error],
    ['error', advice(root, 'proc/sys', 'does not exist')],
  );
  // not one "does not exist on this kernel" per profile key, nor br_netfilter "not loaded"
  assert.deepEqual(
    report.findings.filter((f) => f.check === 'sysctl').map((f) => f.problem),
    ['CheckFailed'],
  );
});

test('a /proc with no process in it (procfs not mounted, only its mount point) fails the process checks', async (t) => {
  const root = await copyFixtureHost(t, 'compliant');
  await fs.rm(path.join(root, 'proc/1'), { recursive: true });
  await assert.rejects(runProcessChecks(root), (error: unknown) => {
    assert.ok(error instanceof ProcUnavailableError);
    assert.equal(error.message, advice(root, 'proc', 'holds no process (not a mounted procfs)'));
    return true;
  });
  // a /proc that cannot be listed at all
  await fs.rm(path.join(root, 'proc'), { recursive: true });
  await writeFiles(root, { proc: 'a file, not a directory\n' });
  await assert.rejects(runProcessChecks(root), {
    message: advice(root, 'proc', 'is not a directory'),
  });
});

test('sysctl: an empty /proc/sys is one error naming it, not a finding per key', async (t) => {
  const root = await copyFixtureHost(t, 'compliant');
  await fs.rm(path.join(root, 'proc/sys'), { recursive: true });
  await fs.mkdir(path.join(root, 'proc/sys'));
  await assert.rejects(runCheckOn(sysctlCheck, root, checkOptions(sysctlCheck)), {
    name: 'ProcUnavailableError',
    message: advice(root, 'proc/sys', 'is empty'),
  });
});
